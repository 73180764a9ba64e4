"""Arguments and outcomes of the token commands, shared by the WebSocket session and HTTP.

Path segments are percent-decoded (clients encode user names and client descriptions, §4.2).
Over HTTP the one-time key belongs to the user (§9c item 11), and getjwt may come in clear
(accepted from firmware 11.2 on).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote

import attrs

from ..protocol import LOXONE_EPOCH_UNIX, ResponseCode
from ._outputs import CodeStyle, echo, ll_text
from ._tokens import IssuedToken, TokenMatch, TokenState

if TYPE_CHECKING:
    from ._accounts import Accounts

_T = TypeVar("_T")

# The body of a refused login ("last password change"): the default of a real Miniserver (§4.2).
UNAUTHORIZED_VALUE = {"lastEdit": "2009-01-01 01:00:00", "unix": LOXONE_EPOCH_UNIX}
MAX_PERMISSION = 0x1FFFF  # every permission bit the documentation lists (§4.2)

# Commands that name a token by its hash: refresh, check, kill (jdev/sys/…/{hash}/{user}).
TOKEN_VERBS = {
    "jdev/sys/refreshjwt/": "refresh",
    "jdev/sys/refreshtoken/": "refresh",
    "jdev/sys/checktoken/": "check",
    "jdev/sys/killtoken/": "kill",
}
TOKEN_REQUESTS = {"jdev/sys/getjwt/": True, "jdev/sys/gettoken/": False}  # value: JWT or legacy


def strip_prefix(command: str, prefix: str) -> str | None:
    """The rest of ``command`` after ``prefix`` (compared case-insensitively), or ``None``."""
    if command[: len(prefix)].lower() == prefix:
        return command[len(prefix) :]
    return None


@attrs.frozen(kw_only=True)
class TokenRequest:
    """The arguments of ``getjwt``/``gettoken``: ``{hash}/{user}/{permission}/{uuid}/{info}``."""

    hash_hex: str = attrs.field(repr=False)
    user: str
    permission: int
    client_uuid: str
    info: str


def parse_token_request(args: str) -> TokenRequest | None:
    """``None`` when segments are missing or the permission is not a number up to 0x1FFFF.

    The client description may be absent, and may contain ``/`` (then it is the whole rest).
    """
    parts = args.split("/", 4)
    if len(parts) < 4 or not parts[0] or not parts[1]:
        return None
    hash_hex, user, permission, client_uuid = (unquote(p) for p in parts[:4])
    if not permission.isascii() or not permission.isdigit() or int(permission) > MAX_PERMISSION:
        return None
    info = unquote(parts[4]) if len(parts) > 4 else ""
    return TokenRequest(
        hash_hex=hash_hex,
        user=user,
        permission=int(permission),
        client_uuid=client_uuid,
        info=info,
    )


def parse_token_args(args: str) -> tuple[str, str] | None:
    """``(hash, user)`` from ``{hash}/{user}`` of authwithtoken, refresh, check and kill."""
    hash_hex, sep, user = args.partition("/")
    return (unquote(hash_hex), unquote(user)) if sep and hash_hex and user else None


@attrs.frozen
class TokenOutcome:
    """What a refresh/check/kill did: the reply's code and value, the token it named, and the
    token that replaced it (refresh only)."""

    code: int
    value: object
    subject: IssuedToken | None = None
    replacement: IssuedToken | None = None


def run_token_command(
    accounts: Accounts, verb: str, match: TokenMatch, now_unix: float
) -> TokenOutcome:
    """Refresh (valid tokens only), check, or kill (valid or expired) the matched token."""
    issued = match.token
    if issued is None:
        return TokenOutcome(ResponseCode.UNAUTHORIZED, UNAUTHORIZED_VALUE)
    if verb == "kill":
        accounts.kill(issued.token)
        return TokenOutcome(ResponseCode.OK, "", issued)
    if match.state is not TokenState.VALID:
        return TokenOutcome(ResponseCode.TOKEN_INVALID, "")
    if verb == "check":
        return TokenOutcome(ResponseCode.OK, issued.validity_value(), issued)
    new = accounts.tokens.replace(issued, now_unix)
    return TokenOutcome(ResponseCode.OK, new.token_value(), issued, new)


def match_table(command: str, table: Mapping[str, _T]) -> tuple[_T, str] | None:
    """The value of the first prefix of ``table`` that ``command`` starts with, and the rest."""
    for prefix, value in table.items():
        rest = strip_prefix(command, prefix)
        if rest is not None:
            return value, rest
    return None


def http_command(accounts: Accounts, command: str, now_unix: float) -> str | None:
    """The LL reply to an auth command sent over HTTP, or ``None`` if it is no auth command."""
    control = echo(command)
    rest = strip_prefix(command, "jdev/sys/getkey2/")
    if rest is not None:
        if not rest:
            return ll_text(control, "", ResponseCode.BAD_REQUEST, CodeStyle.KEY)
        grant = accounts.issue_http_key(unquote(rest))
        return ll_text(control, grant.as_value(), ResponseCode.OK, CodeStyle.KEY)
    request = match_table(command, TOKEN_REQUESTS)
    if request is not None:
        return _http_token_request(accounts, control, *request, now_unix)
    verb = match_table(command, TOKEN_VERBS)
    if verb is not None:
        return _http_token_command(accounts, control, *verb, now_unix)
    return None


def _http_token_request(
    accounts: Accounts, control: str, jwt: bool, args: str, now_unix: float
) -> str:
    request = parse_token_request(args)
    if request is None:
        return ll_text(control, "", ResponseCode.BAD_REQUEST, CodeStyle.AUTH)
    user = accounts.http_login_with_credentials(request.user, request.hash_hex)
    if user is None:
        return ll_text(control, UNAUTHORIZED_VALUE, ResponseCode.UNAUTHORIZED, CodeStyle.AUTH)
    issued = accounts.issue_token(user, request.permission, request.client_uuid, now_unix, jwt=jwt)
    return ll_text(control, issued.token_value(), ResponseCode.OK, CodeStyle.KEY)


def _http_token_command(
    accounts: Accounts, control: str, verb: str, args: str, now_unix: float
) -> str:
    parsed = parse_token_args(args)
    if parsed is None:
        return ll_text(control, "", ResponseCode.BAD_REQUEST, CodeStyle.AUTH)
    hash_hex, name = parsed
    match = accounts.http_match_token(name, hash_hex, now_unix)
    outcome = run_token_command(accounts, verb, match, now_unix)
    return ll_text(control, outcome.value, outcome.code, CodeStyle.AUTH)
