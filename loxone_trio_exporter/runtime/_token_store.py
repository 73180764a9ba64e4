"""Tokens kept on disk, so a restart authenticates with ``authwithtoken`` instead of a new login.

One JSON file per Miniserver and user under ``state_dir/tokens/`` (directory 0700, files 0600,
both owned by this process's user), written atomically (temporary file, then rename) so a crash
never leaves half a token. The file holds the token, ``validUntil`` (Loxone epoch), the
``hashAlg`` of the login and the client UUID the token was issued to.

The store trusts nothing it finds on disk: another local user or a broken disk may have put a
symlink, a FIFO, a device, a huge or corrupt file there. Every read is bounded and never waits
(``O_NONBLOCK | O_NOFOLLOW``, regular files only, at most ``MAX_FILE_BYTES``), every field is
type- and range-checked, looser modes are tightened. Whatever is wrong costs one warning and the
token: the exporter then logs in with the password, which is always possible. Nothing but a
programming error raises out of ``load``, ``save`` or ``forget``.

Nothing here logs the token itself, nor any other value read from a token file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from ..logs import SESSION_LOGGER
from ..protocol import HashAlgorithm, StoredToken

log = logging.getLogger(SESSION_LOGGER)

TOKEN_DIRECTORY = "tokens"  # noqa: S105 - a directory name, not a secret
FORMAT_VERSION = 1
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
#: A token file is under 2 KiB; anything much larger was not written by this store.
MAX_FILE_BYTES = 64 * 1024
#: Longest token or client UUID accepted (a Loxone JWT is a few hundred characters).
MAX_TEXT_CHARS = 4096
#: ``validUntil`` is a uint32 of seconds since the Loxone epoch on the wire.
MAX_VALID_UNTIL = 2**32 - 1

_DIRECTORY_OPEN_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer. O_NOFOLLOW: a symlink
# fails (ELOOP) instead of leading to /dev/zero or to a file someone else chose. O_NOCTTY: a
# terminal device never becomes our controlling terminal.
_READ_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_CREATE_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

_HASH_ALGORITHMS = {algorithm.value: algorithm for algorithm in HashAlgorithm}


class _Refused(Exception):
    """Why a token file or the token directory is not used.

    The message names the path and the problem, never a value read from the file.
    """


class _Corrupt(_Refused):
    """A regular token file of ours whose content is unusable: it is removed."""


class TokenStore:
    """Reads and writes stored tokens; every failure is logged and survived."""

    def __init__(self, state_dir: str) -> None:
        self.directory = Path(state_dir) / TOKEN_DIRECTORY

    def __repr__(self) -> str:
        return f"<TokenStore {self.directory}>"

    def path(self, miniserver: str, user: str) -> Path:
        # Names may hold any character; a digest makes a safe, stable file name.
        digest = hashlib.sha256(f"{miniserver}\n{user}".encode()).hexdigest()[:24]
        return self.directory / f"{digest}.json"

    # The three operations run synchronously on the trio thread. That is acceptable because each
    # step is bounded and non-blocking ("read with a bound"): no open waits for a FIFO writer, no
    # read goes past MAX_FILE_BYTES + 1 bytes, no symlink is followed to a device.

    def load(self, miniserver: str, user: str, *, client_uuid: str) -> StoredToken | None:
        """The stored token for this Miniserver and user, if it was issued to ``client_uuid``."""
        path = self.path(miniserver, user)
        try:
            with self._directory(create=False) as directory:
                if directory is None:
                    return None  # nothing was ever stored
                token = _load_token(directory, path, miniserver, user)
        except _Refused as refusal:
            log.warning("miniserver %s: %s; logging in with the password", miniserver, refusal)
            return None
        except OSError as exc:
            log.warning(
                "miniserver %s: cannot read token file %s (%s); logging in with the password",
                miniserver,
                path,
                _why(exc),
            )
            return None
        if token is None or token.client_uuid != client_uuid:
            return None  # issued to another installation: logging in again is the honest way
        return token

    def save(self, miniserver: str, user: str, token: StoredToken) -> None:
        document: dict[str, object] = {
            "format": FORMAT_VERSION,
            "miniserver": miniserver,
            "user": user,
            "token": token.token,
            "valid_until": token.valid_until,
            "valid_until_unix": token.valid_until_unix,  # for people reading the file only
            "hash_algorithm": token.hash_algorithm.value,
            "client_uuid": token.client_uuid,
        }
        path = self.path(miniserver, user)
        try:
            # What load would refuse is not worth writing (a Miniserver can send odd values too).
            _stored_token_from(document, path)
            data = json.dumps(document).encode("utf-8")
            with self._directory(create=True) as directory:
                if directory is None:
                    raise _Refused(f"token directory {self.directory} vanished while created")
                _write_atomically(directory, path.name, data)
        except _Refused as refusal:
            log.warning(
                "miniserver %s: not storing its token (%s); the next start logs in again",
                miniserver,
                refusal,
            )
        except OSError as exc:
            log.warning(
                "miniserver %s: cannot store the token in %s (%s); the next start logs in again",
                miniserver,
                self.directory,
                _why(exc),
            )

    def forget(self, miniserver: str, user: str) -> None:
        path = self.path(miniserver, user)
        try:
            with self._directory(create=False) as directory:
                if directory is not None:
                    _remove(directory, path.name)
        except _Refused as refusal:
            log.warning("miniserver %s: cannot remove its token file (%s)", miniserver, refusal)
        except OSError as exc:
            log.warning(
                "miniserver %s: cannot remove its token file %s (%s)", miniserver, path, _why(exc)
            )

    # --- the directory ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _directory(self, *, create: bool) -> Iterator[int | None]:
        """A descriptor of the private token directory; None if it does not exist (and not create).

        Files are then opened relative to this descriptor, so the directory checked is the one used
        even if the path is swapped for a symlink afterwards.
        """
        if create:
            self._create_directory()
        descriptor = self._open_directory()
        try:
            yield descriptor
        finally:
            if descriptor is not None:
                os.close(descriptor)

    def _create_directory(self) -> None:
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # whatever exists is checked when opened
            os.mkdir(self.directory, DIRECTORY_MODE)

    def _open_directory(self) -> int | None:
        directory = self.directory
        try:
            before = os.lstat(directory)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(before.st_mode):
            raise _Refused(
                f"token directory {directory} is a symbolic link, which is not followed; "
                f"replace it with a real directory: rm {directory} && mkdir -m 700 {directory}"
            )
        if not stat.S_ISDIR(before.st_mode):
            raise _Refused(f"token directory {directory} is {_kind(before.st_mode)}")
        descriptor = os.open(directory, _DIRECTORY_OPEN_FLAGS)
        try:
            status = os.fstat(descriptor)
            if not os.path.samestat(before, status):
                raise _Refused(f"token directory {directory} was replaced while being opened")
            _require_our_own(status, "token directory", directory)
            _tighten(descriptor, status, DIRECTORY_MODE, "token directory", directory)
        except BaseException:
            os.close(descriptor)
            raise
        return descriptor


# --- reading -----------------------------------------------------------------------------------


def _load_token(directory: int, path: Path, miniserver: str, user: str) -> StoredToken | None:
    """The token in ``path`` (None if there is none); a corrupt file is removed, then refused."""
    try:
        data = _read_bounded(directory, path)
        if data is None:
            return None
        document = _parse_document(data, path)
        token = _stored_token_from(document, path)
    except _Corrupt as corrupt:
        raise _Corrupt(f"{corrupt}; {_remove_corrupt(directory, path.name)}") from None
    if document["miniserver"] != miniserver or document["user"] != user:
        return None  # another name with the same digest: not ours to use nor to remove
    return token


def _read_bounded(directory: int, path: Path) -> bytes | None:
    """The bytes of the regular file ``path`` (None if absent): at most MAX_FILE_BYTES + 1."""
    try:
        # lstat first, so that a device or FIFO is never even opened.
        before = os.stat(path.name, dir_fd=directory, follow_symlinks=False)
        _require_regular(before, path)
        descriptor = os.open(path.name, _READ_OPEN_FLAGS, dir_fd=directory)
    except FileNotFoundError:
        return None
    try:
        status = os.fstat(descriptor)
        # The descriptor is what counts: the path may have changed since the lstat.
        _require_regular(status, path)
        if not os.path.samestat(before, status):
            raise _Refused(f"token file {path} was replaced while being opened")
        _require_our_own(status, "token file", path)
        if status.st_size > MAX_FILE_BYTES:
            raise _Corrupt(f"token file {path} is larger than {MAX_FILE_BYTES} bytes")
        _tighten(descriptor, status, FILE_MODE, "token file", path)
        data = _read_at_most(descriptor, MAX_FILE_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(data) > MAX_FILE_BYTES:  # it grew after the fstat
        raise _Corrupt(f"token file {path} is larger than {MAX_FILE_BYTES} bytes")
    return data


def _read_at_most(descriptor: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(descriptor, remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _parse_document(data: bytes, path: Path) -> dict[str, object]:
    # The messages below describe the problem only: a decoder's own message may quote the content.
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Corrupt(f"token file {path} is not UTF-8 text") from None
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except _NotJsonNumber as exc:
        raise _Corrupt(f"token file {path} holds {exc}, which is not a JSON number") from None
    except json.JSONDecodeError as exc:
        raise _Corrupt(
            f"token file {path} is not valid JSON (line {exc.lineno} column {exc.colno})"
        ) from None
    except (ValueError, RecursionError):  # a 5,000-digit number, nesting deeper than the stack
        raise _Corrupt(f"token file {path} is not JSON this store writes") from None
    if not isinstance(document, dict):
        raise _Corrupt(f"token file {path} does not hold a JSON object")
    return document


class _NotJsonNumber(ValueError):
    pass


def _refuse_constant(name: str) -> object:
    # json.loads accepts NaN, Infinity and -Infinity, which are not JSON (and float("inf") is where
    # an int() of the value used to crash the exporter).
    raise _NotJsonNumber(name)


def _stored_token_from(document: dict[str, object], path: Path) -> StoredToken:
    """The checked fields of a token document; _Corrupt names the first field that is wrong."""
    if document.get("format") != FORMAT_VERSION or isinstance(document.get("format"), bool):
        raise _Corrupt(f"token file {path}: format is not {FORMAT_VERSION}")
    for name in ("miniserver", "user"):
        if not isinstance(document.get(name), str):
            raise _Corrupt(f"token file {path}: {name} is not a string")
    valid_until = document.get("valid_until")
    # bool is an int in Python, and float (1e400 is inf) is not a whole number of seconds.
    if type(valid_until) is not int or not 0 <= valid_until <= MAX_VALID_UNTIL:
        raise _Corrupt(f"token file {path}: valid_until is not an integer in 0..{MAX_VALID_UNTIL}")
    hash_algorithm = document.get("hash_algorithm")
    if not isinstance(hash_algorithm, str) or hash_algorithm not in _HASH_ALGORITHMS:
        raise _Corrupt(
            f"token file {path}: hash_algorithm is not one of {', '.join(_HASH_ALGORITHMS)}"
        )
    return StoredToken(
        token=_sane_text(document, "token", path),
        valid_until=valid_until,
        hash_algorithm=_HASH_ALGORITHMS[hash_algorithm],
        client_uuid=_sane_text(document, "client_uuid", path),
    )


def _sane_text(document: dict[str, object], name: str, path: Path) -> str:
    value = document.get(name)
    # isprintable() also rules out lone surrogates, which would fail later when hashed.
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= MAX_TEXT_CHARS
        or not value.isprintable()
    ):
        raise _Corrupt(
            f"token file {path}: {name} is not printable text of 1..{MAX_TEXT_CHARS} characters"
        )
    return value


# --- writing and removing ----------------------------------------------------------------------


def _write_atomically(directory: int, name: str, data: bytes) -> None:
    # O_EXCL | O_NOFOLLOW: the temporary file is always new, never someone's link. Its mode is
    # 0600 (the umask can only take bits away). No fsync: it could stall the trio thread on a
    # slow disk, and the empty file a power cut may leave is dropped by load like any corrupt one.
    temporary = f".token-{secrets.token_hex(8)}.tmp"
    descriptor = os.open(temporary, _CREATE_OPEN_FLAGS, FILE_MODE, dir_fd=directory)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        # Replaces whatever is at the name, a symlink included, without following it.
        os.replace(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=directory)
        raise


def _remove(directory: int, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=directory)  # unlink never follows a symlink


def _remove_corrupt(directory: int, name: str) -> str:
    """Remove a corrupt token file, and say how that went (for the one warning about it)."""
    try:
        _remove(directory, name)
    except OSError as exc:
        return f"could not remove it ({_why(exc)})"
    return "removed it"


# --- checks ------------------------------------------------------------------------------------


def _require_regular(status: os.stat_result, path: Path) -> None:
    if not stat.S_ISREG(status.st_mode):
        raise _Refused(f"token file {path} is {_kind(status.st_mode)}, not a regular file")


def _require_our_own(status: os.stat_result, what: str, path: Path) -> None:
    uid = os.geteuid()
    if status.st_uid != uid:
        raise _Refused(
            f"{what} {path} belongs to uid {status.st_uid}, not to this process's uid {uid}; "
            f"not using it until: chown {uid} {path}"
        )


def _tighten(
    descriptor: int, status: os.stat_result, private_mode: int, what: str, path: Path
) -> None:
    """Take away any permission beyond ``private_mode``; refuse the path if that is impossible."""
    mode = stat.S_IMODE(status.st_mode)
    if mode & ~private_mode == 0:
        return
    try:
        os.fchmod(descriptor, private_mode)  # on the descriptor: the checked file, not the path
    except OSError as exc:
        raise _Refused(
            f"{what} {path} has mode {mode:04o} and cannot be made private ({_why(exc)}); "
            f"not using it until: chmod {private_mode:o} {path}"
        ) from None
    log.warning(
        "%s %s had mode %04o, which lets others read tokens; tightened it to %04o",
        what,
        path,
        mode,
        private_mode,
    )


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISREG, "a regular file"),
    )
    return next((name for is_kind, name in kinds if is_kind(mode)), "of an unknown kind")


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__
