"""Reading a Prometheus exporter-toolkit web config file, the one node_exporter reads.

The format: https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md
(``tls_server_config``, ``http_server_config``, ``basic_auth_users``, ``rate_limit``). As in the
toolkit, unknown and repeated keys are errors, relative paths are relative to the file's
directory, and TLS is on as soon as a certificate, key, client CA or client auth type is given.

``load_web_config`` checks everything, certificate files included (the ``SSLContext`` is built
once, here), and raises one ``ConfigError`` with a line per problem that starts with the YAML key
path. No message contains a bcrypt hash, a password or a private key.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Mapping
from pathlib import Path

import attrs
import yaml

from ..errors import ConfigError
from ._tls_context import TlsSettings, build_server_context
from ._web_config_checks import (
    Problems,
    check_keys,
    describe_key,
    key_path,
    kind_of,
    read_boolean,
)
from ._web_config_tls import read_tls_settings

#: Headers the toolkit lets a config set, with the values it allows (``None``: any value).
ALLOWED_HEADERS: Mapping[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}
TOP_LEVEL_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit")
HTTP_SERVER_KEYS = ("http2", "headers")
RATE_LIMIT_KEYS = ("interval", "burst")
#: ``$2a$``, ``$2b$`` or ``$2y$`` (htpasswd writes 2y), a two-digit cost, 22 salt + 31 hash chars.
BCRYPT_HASH = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
BCRYPT_COSTS = range(4, 32)
#: The toolkit's example cost; used for the dummy check when no user is configured.
DEFAULT_BCRYPT_COST = 10
_RATE_LIMIT_OFF = (None, 0, "0", "0s", "")


@attrs.frozen
class BasicAuthUser:
    name: str
    bcrypt_hash: bytes = attrs.field(repr=False)

    @property
    def bcrypt_cost(self) -> int:
        return int(self.bcrypt_hash[4:6])


@attrs.frozen
class WebConfigFile:
    """A checked web config file. ``ssl_context`` is set exactly when ``tls`` is."""

    path: Path
    tls: TlsSettings | None
    ssl_context: ssl.SSLContext | None = attrs.field(eq=False, repr=False)
    http2: bool = True
    headers: tuple[tuple[str, str], ...] = ()
    basic_auth_users: tuple[BasicAuthUser, ...] = ()

    def bcrypt_hash_of(self, user: str) -> bytes | None:
        for candidate in self.basic_auth_users:
            if candidate.name == user:
                return candidate.bcrypt_hash
        return None

    @property
    def highest_bcrypt_cost(self) -> int:
        """The cost an unknown user's dummy check should take, so timing tells nothing."""
        return max(
            (user.bcrypt_cost for user in self.basic_auth_users), default=DEFAULT_BCRYPT_COST
        )

    @property
    def watched_files(self) -> tuple[Path, ...]:
        """The file itself and every file it names: a change to any of them means a re-read."""
        files = [self.path]
        if self.tls is not None:
            files += [self.tls.cert_file, self.tls.key_file]
            if self.tls.client_ca_file is not None:
                files.append(self.tls.client_ca_file)
        return tuple(files)


def load_web_config(path: Path | str) -> WebConfigFile:
    """Read and check the web config file at ``path``; ``ConfigError`` lists every problem."""
    path = Path(path)
    document = _read_yaml(path)
    problems: Problems = []
    if document is None:  # an empty file: no TLS, no users, as in the toolkit
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"top level: expected a mapping, got {kind_of(document)}")
    check_keys(document, TOP_LEVEL_KEYS, "", problems)
    http_section = _section(document, "http_server_config", problems)
    check_keys(http_section, HTTP_SERVER_KEYS, "http_server_config", problems)
    http2 = read_boolean(http_section, "http2", "http_server_config", problems, default=True)
    headers = _read_headers(http_section.get("headers"), problems)
    users = _read_users(document.get("basic_auth_users"), problems)
    _check_rate_limit(document.get("rate_limit"), problems)
    tls_section = _section(document, "tls_server_config", problems)
    base_dir = path.absolute().parent
    tls = read_tls_settings(tls_section, base_dir=base_dir, http2=http2, problems=problems)
    context = None
    if tls is not None and not problems:
        try:
            context = build_server_context(tls)
        except (ssl.SSLError, OSError, ValueError) as exc:
            problems.append(f"tls_server_config: OpenSSL refused the settings: {exc}")
    if problems:
        raise ConfigError("\n".join(problems))
    return WebConfigFile(path.absolute(), tls, context, http2, headers, users)


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing repeated keys as Go's ``yaml.UnmarshalStrict`` does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        self.flatten_mapping(node)
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if repeated:
                raise yaml.constructor.ConstructorError(
                    None, None, f"repeated key {describe_key(key)}", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> object:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read web config file {json.dumps(str(path))}: {exc.strerror or exc}"
        ) from None
    try:
        return yaml.load(data, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        # Built from the parts, because str(exc) quotes the offending line, which may hold a hash.
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {exc.problem or exc.context}") from None
    except yaml.reader.ReaderError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte offset {exc.position})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({type(exc).__name__})") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None


def _section(
    document: Mapping[object, object], key: str, problems: Problems
) -> dict[object, object]:
    value = document.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{key}: expected a mapping, got {kind_of(value)}")
        return {}
    return value


def _read_headers(raw: object, problems: Problems) -> tuple[tuple[str, str], ...]:
    path = "http_server_config.headers"
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        problems.append(f"{path}: expected a mapping of header names to values, got {kind_of(raw)}")
        return ()
    headers: list[tuple[str, str]] = []
    for name, raw_value in raw.items():
        if not isinstance(name, str) or name not in ALLOWED_HEADERS:
            problems.append(
                f"{path}: header {describe_key(name)} can not be configured; the toolkit allows "
                + ", ".join(ALLOWED_HEADERS)
            )
            continue
        here = key_path(path, name)
        # ``X-XSS-Protection: 0`` is an int to YAML; Go's yaml reads it as the text "0".
        is_int = isinstance(raw_value, int) and not isinstance(raw_value, bool)
        value = str(raw_value) if is_int else raw_value
        if value is None or value == "":
            continue  # blank means unset, as in the toolkit
        if not isinstance(value, str):
            problems.append(f"{here}: expected a string, got {kind_of(value)}")
            continue
        allowed = ALLOWED_HEADERS[name]
        if allowed is not None and value not in allowed:
            expected = " or ".join(json.dumps(option) for option in allowed)
            problems.append(f"{here}: expected {expected}, got {json.dumps(value)}")
        elif not (value.isascii() and value.isprintable()):
            problems.append(f"{here}: must be printable ASCII on a single line")
        else:
            headers.append((name, value))
    return tuple(headers)


def _read_users(raw: object, problems: Problems) -> tuple[BasicAuthUser, ...]:
    path = "basic_auth_users"
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        problems.append(
            f"{path}: expected a mapping of user names to bcrypt hashes, got {kind_of(raw)}"
        )
        return ()
    users: list[BasicAuthUser] = []
    for name, value in raw.items():
        if not isinstance(name, str):
            problems.append(f"{path}: user names must be strings, got {kind_of(name)} (quote it)")
            continue
        if BCRYPT_HASH.fullmatch(name):
            problems.append(f"{path}: a user name is a bcrypt hash; are name and hash swapped?")
            continue
        here = key_path(path, name)
        if ":" in name:
            problems.append(f"{here}: a user name with ':' can never log in with basic auth")
            continue
        # The value is a secret: say what is wrong with it, never what it is.
        match = BCRYPT_HASH.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            got = "a string that is not one" if isinstance(value, str) else kind_of(value)
            problems.append(
                f"{here}: expected a bcrypt hash ($2a$, $2b$ or $2y$, a two-digit cost, then 53 "
                f'characters; htpasswd -nBC 10 "" makes one), got {got}'
            )
        elif int(match.group(1)) not in BCRYPT_COSTS:
            problems.append(f"{here}: bcrypt cost {match.group(1)} is outside 04..31")
        else:
            users.append(BasicAuthUser(name, match.group(0).encode("ascii")))
    return tuple(users)


def _check_rate_limit(raw: object, problems: Problems) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        problems.append(f"rate_limit: expected a mapping, got {kind_of(raw)}")
        return
    check_keys(raw, RATE_LIMIT_KEYS, "rate_limit", problems)
    burst = raw.get("burst")
    if burst is not None and (not isinstance(burst, int) or isinstance(burst, bool)):
        problems.append(f"rate_limit.burst: expected an int, got {kind_of(burst)}")
    if raw.get("interval") not in _RATE_LIMIT_OFF:
        problems.append(
            "rate_limit.interval: rate limiting is not supported by loxone-trio-exporter; "
            "remove rate_limit or set interval: 0"
        )
