from __future__ import annotations

import subprocess
import sys

from loxone_trio_exporter import __version__
from loxone_trio_exporter.cli import main


def test_version(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"loxone-trio-exporter {__version__} (Python ")


def test_no_arguments_prints_help(capsys):
    assert main([]) == 0
    assert "usage: loxone-trio-exporter" in capsys.readouterr().out


def test_unknown_arguments_are_a_usage_error(capsys):
    assert main(["--no-such-option"]) == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


def test_python_dash_m_runs_the_same_command():
    result = subprocess.run(
        [sys.executable, "-m", "loxone_trio_exporter", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(f"loxone-trio-exporter {__version__}")
