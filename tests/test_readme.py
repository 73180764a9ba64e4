"""The README's Quick start is a contract: two commands, and CI runs the test one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

from loxone_trio_exporter.runtime._messages import ReconnectReason

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, flags=re.DOTALL)


def test_quick_start_has_exactly_two_single_line_commands():
    commands = quick_start_commands()
    assert len(commands) == 2
    assert all("\n" not in command for command in commands)
    install_and_run, run_tests = commands
    assert "loxone-trio-exporter" in install_and_run
    assert "pytest" in run_tests


def test_ci_runs_the_readme_test_command_verbatim():
    ci_script = (ROOT / ".ci" / "run").read_text("utf-8")
    assert quick_start_commands()[1] in ci_script
    assert "LOXONE_TEST_STRICT=1" in ci_script


def test_every_reconnect_reason_is_in_the_readme_table():
    text = (ROOT / "README.md").read_text("utf-8")
    table = text.split("| what happened | reason | next try |", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"`([a-z_]+)`", table))
    missing = {reason.value for reason in ReconnectReason} - listed
    assert not missing, f"reasons missing from the README's table: {sorted(missing)}"
