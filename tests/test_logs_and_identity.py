"""Logging set-up (text, JSON, secret masking) and the client UUID kept across restarts."""

from __future__ import annotations

import io
import json
import logging
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from loxone_trio_exporter.logs import MASK, SESSION_LOGGER, configure_logging
from loxone_trio_exporter.runtime._identity import (
    CLIENT_UUID_FILE,
    client_uuid,
    installation_uuid,
)


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_level_logger_message_and_exception(restore_root_logger: None) -> None:
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    log = logging.getLogger("loxone_trio_exporter.test")
    log.debug("miniserver %s: streaming", "home")
    try:
        raise ValueError("bad frame")
    except ValueError:
        log.exception("it broke")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "debug"
    assert first["logger"] == "loxone_trio_exporter.test"
    assert first["message"] == "miniserver home: streaming"
    assert first["time"].endswith("Z")
    assert second["level"] == "error"
    assert "ValueError: bad frame" in second["exception"]


def test_fields_are_json_keys_and_key_value_pairs_in_text(restore_root_logger: None) -> None:
    fields = {"miniserver": "home", "event": "session_lost", "reason": "booting"}
    for log_format in ("json", "text"):
        stream = io.StringIO()
        configure_logging("info", log_format, stream=stream)
        logging.getLogger(SESSION_LOGGER).warning("it ended", extra=fields | {"other": "x"})
        line = stream.getvalue().strip()
        if log_format == "json":
            entry = json.loads(line)
            assert {key: entry[key] for key in fields} == fields
            assert "other" not in entry  # only the documented fields
            assert entry["logger"] == "loxone_trio_exporter.session"
        else:
            assert line.endswith(
                "session: it ended [miniserver=home event=session_lost reason=booting]"
            )


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_configured_passwords_are_masked_in_messages_and_tracebacks(
    restore_root_logger: None, log_format: str
) -> None:
    stream = io.StringIO()
    configure_logging("info", log_format, secrets=["hunter2", ""], stream=stream)
    log = logging.getLogger("loxone_trio_exporter.test")
    log.info("a careless line with %s in it", "hunter2")
    try:
        raise RuntimeError("password was hunter2")
    except RuntimeError:
        log.exception("failed")
    output = stream.getvalue()
    assert "hunter2" not in output
    assert output.count(MASK) >= 2  # message, exception text (and the source line shown)


def test_a_second_configuration_replaces_the_first(restore_root_logger: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", "text", stream=first)
    configure_logging("warning", "text", stream=second)
    logging.getLogger("x").warning("once")
    logging.getLogger("x").info("filtered")
    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1
    assert "filtered" not in second.getvalue()


def test_client_uuid_survives_a_restart_and_is_private(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    made = installation_uuid(str(state_dir))
    assert installation_uuid(str(state_dir)) == made  # a restart reads the same one
    mode = stat.S_IMODE((state_dir / CLIENT_UUID_FILE).stat().st_mode)
    assert mode == 0o600
    home = client_uuid(made, "home", "prometheus")
    assert client_uuid(made, "home", "prometheus") == home
    assert client_uuid(made, "office", "prometheus") != home
    assert client_uuid(made, "home", "admin") != home
    assert uuid.UUID(home).version == 5


def test_an_unwritable_state_dir_still_gives_a_stable_uuid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    first = installation_uuid(str(blocker / "state"))
    second = installation_uuid(str(blocker / "state"))
    assert first == second
    assert "state_dir" in caplog.text


def test_a_damaged_uuid_file_is_replaced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / CLIENT_UUID_FILE).write_text("not a uuid")
    made = installation_uuid(str(tmp_path))
    assert installation_uuid(str(tmp_path)) == made
    assert "cannot read" in caplog.text
