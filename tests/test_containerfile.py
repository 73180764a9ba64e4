"""The Containerfile, read: its instructions checked against what the image must do; the build
arguments' way into ``loxone_exporter_build_info`` and the mounted-config lookup tested on the code
that implements them. tests/test_container.py builds and runs the image with podman, and
tests/test_container_healthcheck.py runs its HEALTHCHECK against a real exporter.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from loxone_trio_exporter.config import CONTAINER_CONFIG_FILE, default_config_file
from loxone_trio_exporter.supervisor import build_info

ROOT = Path(__file__).resolve().parents[1]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = (ROOT / "Containerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_two_stages_on_python_3_13_slim() -> None:
    steps = instructions()
    arg_defaults = dict(
        rest.split("=", 1) for keyword, rest in steps if keyword == "ARG" and "=" in rest
    )
    froms = [rest for keyword, rest in steps if keyword == "FROM"]
    assert len(froms) == 2
    assert froms[0].endswith("AS build")
    images = {f.split()[0].replace("${PYTHON_IMAGE}", arg_defaults["PYTHON_IMAGE"]) for f in froms}
    assert images == {"python:3.13-slim"}
    build_stage = steps[: steps.index(final_stage()[0])]
    assert any(k == "RUN" and "pip wheel" in rest for k, rest in build_stage)
    assert any(
        k == "RUN" and "from=build" in rest and "--no-index" in rest for k, rest in final_stage()
    )


def test_final_stage_runs_as_non_root_with_port_entrypoint_and_run() -> None:
    stage = final_stage()
    values = {keyword: rest for keyword, rest in stage}
    assert values["USER"] == "65532:65532"
    assert values["EXPOSE"] == "9504"
    assert json.loads(values["ENTRYPOINT"]) == ["loxone-trio-exporter"]
    assert json.loads(values["CMD"]) == ["run"]
    args = {rest.split("=")[0] for keyword, rest in stage if keyword == "ARG"}
    assert {"VERSION", "REVISION", "BUILD_DATE"} <= args
    labels = " ".join(rest for keyword, rest in stage if keyword == "LABEL")
    for key in ("title", "version", "revision", "licenses", "description"):
        assert f"org.opencontainers.image.{key}=" in labels
    env = " ".join(rest for keyword, rest in stage if keyword == "ENV")
    assert 'LOXONE_BUILD_VERSION="${VERSION}"' in env
    assert 'LOXONE_BUILD_REVISION="${REVISION}"' in env
    assert 'LOXONE_BUILD_DATE="${BUILD_DATE}"' in env


def test_build_arguments_reach_build_info() -> None:
    info = build_info(
        environ={
            "LOXONE_BUILD_VERSION": "1.2.3",
            "LOXONE_BUILD_REVISION": "abc1234",
            "LOXONE_BUILD_DATE": "2026-12-05",
        }
    )
    assert (info.version, info.revision, info.build_date) == ("1.2.3", "abc1234", "2026-12-05")
    plain = build_info(environ={})
    assert plain.revision == "unknown"
    assert plain.version  # the package version
    # Outside an image: the day the package was installed into this environment.
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", plain.build_date), plain.build_date


def test_run_without_a_file_reads_the_mounted_config(tmp_path: Path) -> None:
    assert CONTAINER_CONFIG_FILE == "/etc/loxone-trio-exporter/exporter.toml"
    chosen = tmp_path / "exporter.toml"
    assert default_config_file({"LOXONE_CONFIG_FILE": str(chosen)}) == chosen
    expected = Path(CONTAINER_CONFIG_FILE) if Path(CONTAINER_CONFIG_FILE).is_file() else None
    assert default_config_file({}) == expected


def test_containerignore_keeps_the_build_context_small() -> None:
    ignored = (ROOT / ".containerignore").read_text(encoding="utf-8").split()
    for entry in (".git", ".venv", "tests"):
        assert entry in ignored


def test_readme_shows_build_run_with_variables_mounted_config_and_password_file() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "podman build" in readme
    runs = [line for line in readme.splitlines() if "podman run" in line]
    assert runs
    assert "LOXONE_PASSWORD_FILE" in readme
    assert "/etc/loxone-trio-exporter/exporter.toml" in readme
