"""Range and shape checks for numbers and strings that come from the Miniserver.

Whatever the Miniserver sends is checked here before anything computes with it: a number must
be a whole number of the right kind inside its documented range, a string that goes into a hash,
a command or a log line must be short printable ASCII. A value that fails is a
``RemoteProtocolError`` with a readable message, which the session reports as ``SessionFailed``.
Without these checks a hostile or broken Miniserver could hand the exporter ``validUntil`` =
10**400 (``float()`` of it raises ``OverflowError`` later, far from here), ``"²"`` (``isdigit()``
says yes, ``int()`` says no) or a lone UTF-16 surrogate (``str.encode()`` fails inside a hash).

Messages quote a bad value only shortened (and never a secret: callers pass ``quote=False`` for
tokens and keys).
"""

from __future__ import annotations

from ..errors import RemoteProtocolError

#: Loxone's times (seconds since 2009) and ``tokenRights`` are uint32 on the Miniserver.
UINT32_MAX = 2**32 - 1
#: More decimal digits than any number the protocol uses; ``int()`` of a digit string is
#: quadratic in its length and refuses more than 4300 digits, so longer strings never reach it.
MAX_NUMBER_DIGITS = 20


def whole_number(
    raw: object, what: str, *, low: int, high: int, integral_floats: bool = False
) -> int:
    """``raw`` as an int in ``[low, high]``: a JSON integer or a string of ASCII digits.

    ``integral_floats`` also takes ``200.0`` (some firmware writes status codes that way). A
    bool, NaN, an infinity, a fraction, anything else, or a number outside the range is a
    ``RemoteProtocolError`` naming ``what`` and the range.
    """
    value = as_whole_number(raw, integral_floats=integral_floats)
    if value is None:
        raise RemoteProtocolError(f"{what} must be a number (an integer), got {describe(raw)}")
    return in_range(value, what, low=low, high=high)


def as_whole_number(raw: object, *, integral_floats: bool = False) -> int | None:
    """``raw`` as an int if it is a JSON integer or a short string of ASCII digits, else None."""
    if isinstance(raw, bool):  # an int subclass, but true/false is not a number
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        text = raw.strip()
        # isascii() first: isdigit() also accepts superscripts ("²"), which int() refuses.
        if 0 < len(text) <= MAX_NUMBER_DIGITS and text.isascii() and text.isdigit():
            return int(text)
        return None
    # is_integer() is False for NaN and the infinities, so int() below cannot fail.
    if integral_floats and isinstance(raw, float) and raw.is_integer():
        return int(raw)
    return None


def in_range(value: int, what: str, *, low: int, high: int) -> int:
    """``value`` if ``low <= value <= high``, else a ``RemoteProtocolError`` saying the range."""
    if not low <= value <= high:
        raise RemoteProtocolError(f"{what} must be between {low} and {high}, got {describe(value)}")
    return value


def ascii_text(
    raw: object, what: str, *, max_length: int, allow_empty: bool = False, quote: bool = True
) -> str:
    """``raw`` as a string of printable ASCII characters, at most ``max_length`` of them.

    Strings that reach a hash, a command or a log line must encode cleanly and stay short;
    ``quote=False`` keeps a refused value (a token, a key) out of the message.
    """
    if not isinstance(raw, str):
        raise RemoteProtocolError(f"{what} must be a string, got {type(raw).__name__}")
    if not raw and not allow_empty:
        raise RemoteProtocolError(f"{what} must not be empty")
    if len(raw) > max_length:
        raise RemoteProtocolError(
            f"{what} must have at most {max_length} characters, got {len(raw)}"
        )
    if not (raw.isascii() and raw.isprintable()):
        shown = f": {describe(raw)}" if quote else ""
        raise RemoteProtocolError(f"{what} must be printable ASCII text{shown}")
    return raw


def describe(value: object) -> str:
    """A short, printable description of a value from the wire, for an error message."""
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and abs(value) >= 10**MAX_NUMBER_DIGITS
    ):
        # repr() of a huge int is as long as the number (and raises beyond 4300 digits).
        return f"a number of {value.bit_length()} bits"
    return f"{value!r:.40}"
