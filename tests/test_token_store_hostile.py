"""The token store against what a hostile local user or a broken disk can leave in ``tokens/``.

Every case ends in "no token" (the exporter logs in with the password) and at most one warning,
never in an exception, a hang or a token value in the log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loxone_trio_exporter.protocol import HashAlgorithm
from loxone_trio_exporter.protocol._session import StoredToken
from loxone_trio_exporter.runtime._token_store import MAX_FILE_BYTES, TokenStore

MINISERVER = "home"
USER = "exporter"
CLIENT_UUID = "0b7e1a2c-0f1e-4c3b-8a9d-1234567890ab"
SECRET = "eyJhbGciOiJIUzI1NiJ9.SECRET-TOKEN-VALUE-7f3a.c2lnbmF0dXJl"
TOKEN = StoredToken(
    token=SECRET,
    valid_until=500_000_000,
    hash_algorithm=HashAlgorithm.SHA256,
    client_uuid=CLIENT_UUID,
)
LOGGER = "loxone_trio_exporter.session"
PROMPT_SECONDS = 5.0


def document(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "format": 1,
        "miniserver": MINISERVER,
        "user": USER,
        "token": SECRET,
        "valid_until": 500_000_000,
        "valid_until_unix": 500_000_000 + 1_230_768_000,
        "hash_algorithm": "SHA256",
        "client_uuid": CLIENT_UUID,
    }
    fields.update(changes)
    return fields


def private_directory(store: TokenStore) -> Path:
    store.directory.mkdir(parents=True, exist_ok=True)
    store.directory.chmod(0o700)
    return store.directory


def write_token_file(store: TokenStore, text: str | bytes) -> Path:
    private_directory(store)
    path = store.path(MINISERVER, USER)
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    path.chmod(0o600)
    return path


def with_raw_field(name: str, raw_json: str) -> str:
    """A token document whose field ``name`` is the JSON text ``raw_json`` (may be invalid JSON)."""
    return json.dumps(document(**{name: "@@RAW@@"})).replace('"@@RAW@@"', raw_json)


def load(store: TokenStore) -> StoredToken | None:
    return store.load(MINISERVER, USER, client_uuid=CLIENT_UUID)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def assert_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    assert SECRET not in caplog.text
    assert "SECRET-TOKEN" not in caplog.text
    for record in caplog.records:
        assert SECRET not in record.getMessage()


def finishes_promptly(call: Callable[[], Any]) -> Any:
    """``call()``'s result; fails (instead of hanging the suite) after PROMPT_SECONDS."""
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(call()), daemon=True)
    worker.start()
    worker.join(PROMPT_SECONDS)
    assert not worker.is_alive(), "the token store blocked"
    return results[0]


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(str(tmp_path / "state"))


# --- a valid file ------------------------------------------------------------------------------


def test_a_saved_token_loads_again_with_private_modes(
    store: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.save(MINISERVER, USER, TOKEN)
    assert load(store) == TOKEN
    path = store.path(MINISERVER, USER)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert [p.name for p in store.directory.iterdir()] == [path.name]  # no temporary left
    assert warnings_of(caplog) == []


def test_a_hand_written_valid_file_loads(store: TokenStore) -> None:
    write_token_file(store, json.dumps(document()))
    assert load(store) == TOKEN


@pytest.mark.parametrize("valid_until", [0, 2**32 - 1])
def test_valid_until_limits_are_accepted(store: TokenStore, valid_until: int) -> None:
    write_token_file(store, json.dumps(document(valid_until=valid_until)))
    loaded = load(store)
    assert loaded is not None
    assert loaded.valid_until == valid_until


def test_no_file_is_no_token_and_no_warning(
    store: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    assert load(store) is None
    private_directory(store)
    assert load(store) is None
    assert warnings_of(caplog) == []


def test_a_token_of_another_installation_is_kept_but_not_used(store: TokenStore) -> None:
    path = write_token_file(store, json.dumps(document(client_uuid="another-installation")))
    assert load(store) is None
    assert path.exists()


# --- corrupt and out-of-range content ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_valid_until", "problem"),
    [
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
        ("NaN", "NaN"),
        ("1e400", "valid_until"),
        ("-1", "valid_until"),
        (str(2**32), "valid_until"),
        ("1.5", "valid_until"),
        ("500000000.0", "valid_until"),
        ("true", "valid_until"),
        ("false", "valid_until"),
        ('"500000000"', "valid_until"),
        ("null", "valid_until"),
        ("[500000000]", "valid_until"),
        ("1" + "0" * 5000, "not JSON"),  # longer than Python's int() digit limit
    ],
)
def test_a_bad_valid_until_drops_the_file_with_one_warning(
    store: TokenStore, caplog: pytest.LogCaptureFixture, raw_valid_until: str, problem: str
) -> None:
    path = write_token_file(store, with_raw_field("valid_until", raw_valid_until))
    assert load(store) is None
    (warning,) = warnings_of(caplog)
    assert str(path) in warning
    assert problem in warning
    assert "removed it" in warning
    assert not path.exists()
    assert_no_secret(caplog)


@pytest.mark.parametrize(
    ("name", "raw_value"),
    [
        ("token", "123"),
        ("token", "null"),
        ("token", '""'),
        ("token", json.dumps("x" * 4097)),
        ("token", json.dumps("abc\ndef")),
        ("token", '"\\ud800"'),  # a lone surrogate cannot be encoded for the HMAC
        ("token", '{"nested": 1}'),
        ("client_uuid", "5"),
        ("client_uuid", "[]"),
        ("client_uuid", json.dumps("u" * 4097)),
        ("hash_algorithm", '"MD5"'),
        ("hash_algorithm", '"sha256"'),
        ("hash_algorithm", "1"),
        ("hash_algorithm", "null"),
        ("format", "2"),
        ("format", "true"),
        ("miniserver", "5"),
        ("user", "null"),
    ],
)
def test_a_field_of_the_wrong_type_drops_the_file(
    store: TokenStore, caplog: pytest.LogCaptureFixture, name: str, raw_value: str
) -> None:
    path = write_token_file(store, with_raw_field(name, raw_value))
    assert load(store) is None
    (warning,) = warnings_of(caplog)
    assert str(path) in warning
    assert name in warning
    assert not path.exists()
    assert_no_secret(caplog)


@pytest.mark.parametrize("missing", ["token", "valid_until", "hash_algorithm", "client_uuid"])
def test_a_missing_field_drops_the_file(
    store: TokenStore, caplog: pytest.LogCaptureFixture, missing: str
) -> None:
    fields = document()
    del fields[missing]
    path = write_token_file(store, json.dumps(fields))
    assert load(store) is None
    (warning,) = warnings_of(caplog)
    assert missing in warning
    assert not path.exists()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "not valid JSON"),
        (b'{"token": "' + SECRET.encode() + b'", broken', "not valid JSON"),
        (b'{"token": "' + SECRET.encode() + b'\xff\xfe"}', "not UTF-8"),
        (json.dumps([document()]).encode(), "JSON object"),
        (b"[" * 30_000, "not JSON"),  # deeper than the recursion limit, within the size cap
    ],
)
def test_content_that_is_not_a_token_document_drops_the_file(
    store: TokenStore, caplog: pytest.LogCaptureFixture, content: bytes, problem: str
) -> None:
    path = write_token_file(store, content)
    assert load(store) is None
    (warning,) = warnings_of(caplog)
    assert problem in warning
    assert str(path) in warning
    assert not path.exists()
    assert_no_secret(caplog)


def test_an_oversize_file_is_dropped_unread(
    store: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    padded = json.dumps(document()) + " " * MAX_FILE_BYTES  # still a valid document
    path = write_token_file(store, padded)
    assert load(store) is None
    (warning,) = warnings_of(caplog)
    assert f"larger than {MAX_FILE_BYTES} bytes" in warning
    assert not path.exists()


# --- things that are not regular files ---------------------------------------------------------


def test_a_fifo_at_the_path_does_not_block(
    store: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    private_directory(store)
    path = store.path(MINISERVER, USER)
    os.mkfifo(path, 0o600)
    try:
        assert finishes_promptly(lambda: load(store)) is None
    finally:
        # Should a regression block in open(), a writer releases it.
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    (warning,) = warnings_of(caplog)
    assert "a FIFO" in warning
    assert stat.S_ISFIFO(path.lstat().st_mode)  # not ours to remove


def test_a_symlink_to_dev_zero_is_not_followed(
    store: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    private_directory(store)
    path = store.path(MINISERVER, USER)
    path.symlink_to("/dev/zero")
    assert finishes_promptly(lambda: load(store)) is None
    (warning,) = warnings_of(caplog)
    assert "symbolic link" in warning
    assert str(path) in warning


def test_a_symlink_to_a_valid_token_file_is_refused(
    store: TokenStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    elsewhere = tmp_path / "planted.json"
    elsewhere.write_text(json.dumps(document()))
    elsewhere.chmod(0o600)
    private_directory(store)
    store.path(MINISERVER, USER).symlink_to(elsewhere)
    assert load(store) is None
    (warning,) = warnings_of(caplog)
    assert "symbolic link" in warning
    assert elsewhere.exists()
    assert_no_secret(caplog)


def test_a_directory_at_the_path_is_no_token(
    store: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    private_directory(store)
    store.path(MINISERVER, USER).mkdir()
    assert load(store) is None
    (warning,) = warnings_of(caplog)
    assert "a directory" in warning


@pytest.mark.skipif(not Path("/dev/null").is_char_device(), reason="needs /dev/null")
@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_a_device_at_the_path_is_never_opened(
    store: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    private_directory(store)
    path = store.path(MINISERVER, USER)
    os.mknod(path, 0o600 | stat.S_IFCHR, os.stat("/dev/zero").st_rdev)
    assert finishes_promptly(lambda: load(store)) is None
    (warning,) = warnings_of(caplog)
    assert "a character device" in warning


# --- the directory -----------------------------------------------------------------------------


def test_loose_modes_are_tightened_with_a_warning(
    store: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_token_file(store, json.dumps(document()))
    store.directory.chmod(0o777)
    path.chmod(0o644)
    assert load(store) == TOKEN
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    directory_warning, file_warning = warnings_of(caplog)
    assert str(store.directory) in directory_warning
    assert "0777" in directory_warning
    assert "tightened" in directory_warning
    assert str(path) in file_warning
    assert "0644" in file_warning
    assert "tightened" in file_warning
    assert_no_secret(caplog)


def test_a_file_that_cannot_be_tightened_is_not_used(
    store: TokenStore, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_token_file(store, json.dumps(document()))
    path.chmod(0o644)

    def refuse(*_args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "fchmod", refuse)
    monkeypatch.setattr(os, "chmod", refuse)
    assert load(store) is None
    (warning,) = warnings_of(caplog)
    assert f"chmod 600 {path}" in warning
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.exists()  # the file is fine, its mode is the problem


def test_a_directory_that_cannot_be_tightened_is_not_used(
    store: TokenStore, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_token_file(store, json.dumps(document()))
    store.directory.chmod(0o777)

    def refuse(*_args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "fchmod", refuse)
    monkeypatch.setattr(os, "chmod", refuse)
    assert load(store) is None
    store.save(MINISERVER, "someone-else", TOKEN)
    load_warning, save_warning = warnings_of(caplog)
    for warning in (load_warning, save_warning):
        assert f"chmod 700 {store.directory}" in warning
    assert not store.path(MINISERVER, "someone-else").exists()


def test_a_symlinked_token_directory_is_refused(
    store: TokenStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir(mode=0o700)
    (real / store.path(MINISERVER, USER).name).write_text(json.dumps(document()))
    store.directory.parent.mkdir()
    store.directory.symlink_to(real)
    assert load(store) is None
    store.save(MINISERVER, "someone-else", TOKEN)
    load_warning, save_warning = warnings_of(caplog)
    for warning in (load_warning, save_warning):
        assert "symbolic link" in warning
        assert str(store.directory) in warning
    assert len(list(real.iterdir())) == 1  # nothing was written through the link
    assert_no_secret(caplog)


def test_a_file_at_the_directory_path_is_survived(
    store: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.directory.parent.mkdir()
    store.directory.write_text("not a directory")
    assert load(store) is None
    store.save(MINISERVER, USER, TOKEN)
    store.forget(MINISERVER, USER)
    warnings = warnings_of(caplog)
    assert len(warnings) == 3
    assert all("a regular file" in w for w in warnings)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
def test_a_file_of_another_user_is_not_used(
    store: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_token_file(store, json.dumps(document()))
    os.chown(path, 12345, 12345)
    assert load(store) is None
    (warning,) = warnings_of(caplog)
    assert "belongs to uid 12345" in warning
    assert path.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
def test_a_directory_of_another_user_is_not_used(
    store: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    write_token_file(store, json.dumps(document()))
    os.chown(store.directory, 12345, 12345)
    assert load(store) is None
    (warning,) = warnings_of(caplog)
    assert "belongs to uid 12345" in warning
    assert f"chown 0 {store.directory}" in warning


# --- save and forget ---------------------------------------------------------------------------


def test_save_replaces_a_symlink_instead_of_writing_through_it(
    store: TokenStore, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    private_directory(store)
    path = store.path(MINISERVER, USER)
    path.symlink_to(victim)
    store.save(MINISERVER, USER, TOKEN)
    assert victim.read_text() == "precious"
    assert stat.S_ISREG(path.lstat().st_mode)
    assert load(store) == TOKEN


def test_save_creates_a_private_directory_whatever_the_umask(store: TokenStore) -> None:
    old = os.umask(0)
    try:
        store.save(MINISERVER, USER, TOKEN)
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path(MINISERVER, USER).stat().st_mode) == 0o600


def test_save_refuses_a_token_that_load_would_refuse(
    store: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    out_of_range = StoredToken(
        token=SECRET,
        valid_until=2**32,
        hash_algorithm=HashAlgorithm.SHA1,
        client_uuid=CLIENT_UUID,
    )
    store.save(MINISERVER, USER, out_of_range)
    assert not store.path(MINISERVER, USER).exists()
    (warning,) = warnings_of(caplog)
    assert "valid_until" in warning
    assert_no_secret(caplog)


def test_save_to_an_impossible_state_dir_is_survived(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")
    TokenStore(str(blocker)).save(MINISERVER, USER, TOKEN)
    (warning,) = warnings_of(caplog)
    assert "cannot store the token" in warning


def test_forget_removes_the_file_and_survives_oddities(
    store: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.forget(MINISERVER, USER)  # nothing stored yet
    store.save(MINISERVER, USER, TOKEN)
    store.forget(MINISERVER, USER)
    assert not store.path(MINISERVER, USER).exists()
    assert warnings_of(caplog) == []
    store.path(MINISERVER, USER).mkdir()
    store.forget(MINISERVER, USER)
    (warning,) = warnings_of(caplog)
    assert "cannot remove" in warning
