"""One bounded, exact JSON reader for every venue codec, and the field bounds they share.

Why one module: a venue (or anyone who can reach its socket or webhook port) chooses every byte we
decode. Python's ``json`` alone lets a 100,000-deep array raise ``RecursionError``, ``NaN`` become a
float, ``1e9999999999999999999`` raise ``decimal.InvalidOperation`` and ``1e999999`` become a
Decimal whose ``int()`` holds the GIL for a minute. Each codec had its own copy of ``json.loads``
and each differed; this reader is the single place where the bounds are decided:

- input: UTF-8 text only (bytes that are not UTF-8 are refused), at most ``max_chars`` characters;
- nesting: at most ``max_depth`` levels, checked by a scan of the brackets *before* parsing (so the
  parser never recurses deep), and only when the text holds more brackets than ``max_depth`` (the
  common frame pays two ``str.count`` calls);
- numbers: read from their text into ``Decimal`` (never a binary float) or ``int``, refused before
  conversion when the text is longer than ``NUMBER_CHARS`` or the exponent is beyond
  ``EXPONENT_LIMIT``; ``NaN`` / ``Infinity`` refused.

Everything it refuses raises :class:`WireError` with a ``kind`` from :mod:`adapters.badinput`; each
codec turns it into its own error type with the same ``kind``. The field helpers below
(:func:`amount`, :func:`amount_text`, :func:`lookup`) bound what a codec accepts per field, so no
later arithmetic can overflow, spin or raise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from adapters.badinput import BAD_NUMBER, MALFORMED, NOT_JSON, TOO_DEEP, TOO_LARGE

__all__ = [
    "EXPONENT_LIMIT",
    "MAGNITUDE_LIMIT",
    "MAX_CHARS",
    "MAX_DEPTH",
    "NUMBER_CHARS",
    "Reader",
    "WireError",
    "amount",
    "amount_text",
    "integer",
    "lookup",
]

#: default largest frame or body, in characters (a Pulse book or an Optimus listing is far smaller)
MAX_CHARS = 4 << 20
#: default deepest nesting; the documents' deepest message has 4 levels
MAX_DEPTH = 32
#: longest number text accepted (sign, digits, point, exponent): more is never a price or an id
NUMBER_CHARS = 64
#: largest |adjusted exponent| of a number: 1e64 is far past any amount and nothing overflows
EXPONENT_LIMIT = 64
#: per-field bound of amounts (prices, quantities, money, timestamps in ms): |value| < 10**18
MAGNITUDE_LIMIT = 10**18
_DECIMAL_LIMIT = Decimal(MAGNITUDE_LIMIT)

T = TypeVar("T")


class WireError(ValueError):
    """Input the reader or a field bound refuses. ``kind`` is an :mod:`adapters.badinput` kind."""

    def __init__(self, reason: str, kind: str = MALFORMED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


def _no_constant(name: str) -> Any:
    raise WireError(f"non-finite number {name} refused", BAD_NUMBER)


def _decimal(text: str) -> Decimal:
    """``parse_float``: the number's own text -> Decimal, length and exponent checked first."""
    if len(text) > NUMBER_CHARS:
        raise WireError(f"number of {len(text)} characters refused (limit {NUMBER_CHARS})", BAD_NUMBER)
    try:
        value = Decimal(text)
    except InvalidOperation:  # an exponent past the decimal module's own range
        raise WireError(f"number {text[:NUMBER_CHARS]} out of range", BAD_NUMBER) from None
    if not -EXPONENT_LIMIT <= value.adjusted() <= EXPONENT_LIMIT:
        raise WireError(f"number {text} out of range (exponent limit {EXPONENT_LIMIT})", BAD_NUMBER)
    return value


def _int(text: str) -> int:
    """``parse_int``: refuse a digit string longer than any id or amount before ``int()``."""
    if len(text) > NUMBER_CHARS:
        raise WireError(f"integer of {len(text)} digits refused (limit {NUMBER_CHARS})", BAD_NUMBER)
    return int(text)


# A JSON string (escapes included): removed before counting brackets, so "[" inside text is no level.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_QUOTED = re.compile(rb'"[^"]*"')  # the same once escapes are known absent
_NORMALIZE = bytes.maketrans(b"{}", b"[]")  # both kinds of bracket nest alike
_KEEP = frozenset(b'"[]{}')
_DELETE = bytes(c for c in range(256) if c not in _KEEP)


def _balanced(depth: int) -> bytes:
    """Regex of balanced brackets at most ``depth`` deep (a regular language for a fixed bound).
    Possessive repeats keep the match linear: no backtracking into a group once it closed."""
    return b"" if depth == 0 else rb"(?:\[" + _balanced(depth - 1) + rb"\])*+"


def _open_prefix(depth: int) -> bytes:
    """Regex of the prefixes of such strings (a frame cut short while at most ``depth`` deep)."""
    return b"" if depth == 0 else _balanced(depth) + rb"(?:\[" + _open_prefix(depth - 1) + rb")?+"


def _brackets(data: bytes) -> bytes:
    """Only the brackets outside strings, ``{}`` written as ``[]``; cut at an unterminated string
    (the parser stops there)."""
    if b"\\" in data:  # escapes: remove whole strings exactly first (rare: slower path)
        data = _STRING.sub(b"", data)
    kept = data.translate(_NORMALIZE, _DELETE)
    if b'"' in kept:
        kept = kept.replace(b'""', b"")  # strings without brackets (all but a few)
        if b'"' in kept:
            kept = _QUOTED.sub(b"", kept)
            cut = kept.find(b'"')
            if cut >= 0:
                kept = kept[:cut]
    return kept


class Reader:
    """A JSON decoder with bounds. One per codec (its own limits), shared by every frame."""

    __slots__ = ("max_chars", "max_depth", "_decoder", "_scan_once", "_balanced", "_open_prefix")

    def __init__(self, max_chars: int = MAX_CHARS, max_depth: int = MAX_DEPTH) -> None:
        self.max_chars = max_chars
        self.max_depth = max_depth
        self._decoder = json.JSONDecoder(parse_float=_decimal, parse_int=_int, parse_constant=_no_constant)
        self._scan_once = self._decoder.scan_once  # the C scanner, without decode()'s whitespace regexes
        self._balanced = re.compile(_balanced(max_depth))
        self._open_prefix = re.compile(_open_prefix(max_depth))

    def too_deep(self, text: str) -> bool:
        """True when parsing ``text`` would nest past ``max_depth``: decided by two linear regex
        matches over its brackets, never by recursing."""
        brackets = _brackets(text.encode("utf-8", "surrogatepass"))
        if brackets.count(b"[") <= self.max_depth:
            return False
        if b"[" * (self.max_depth + 1) in brackets:
            return True
        end = self._balanced.match(brackets).end()  # type: ignore[union-attr]  # matches "" at least
        if end == len(brackets) or brackets[end:end + 1] == b"]":
            return False  # all within the bound, or an unmatched "]" where the parser stops
        return self._open_prefix.fullmatch(brackets, end) is None

    def loads(self, data: str | bytes | bytearray | memoryview) -> Any:
        """One JSON text -> Python values (numbers as ``Decimal`` / ``int``). Raises only
        :class:`WireError`."""
        if type(data) is not str:
            try:
                data = bytes(data).decode("utf-8")
            except (UnicodeDecodeError, TypeError):
                raise WireError("not UTF-8 text", NOT_JSON) from None
        if len(data) > self.max_chars:
            raise WireError(f"{len(data):,} characters (limit {self.max_chars:,})", TOO_LARGE)
        if data.count("[") + data.count("{") > self.max_depth:  # only then can it be too deep
            if self.too_deep(data):
                raise WireError(f"nesting deeper than {self.max_depth} levels", TOO_DEEP)
        try:
            try:
                value, end = self._scan_once(data, 0)
            except StopIteration:
                return self._decoder.decode(data)  # leading whitespace or not JSON: its message
            if end != len(data) and data[end:].strip():
                return self._decoder.decode(data)  # raises "Extra data" with a position
            return value
        except WireError:
            raise
        except RecursionError:  # cannot happen after the depth check; never let it out
            raise WireError("nesting too deep", TOO_DEEP) from None
        except ValueError as exc:  # JSONDecodeError
            raise WireError(f"not JSON: {exc}", NOT_JSON) from None


# --------------------------------------------------------------------------------------------
# Field bounds


def amount(value: Any, field: str, limit: Decimal = _DECIMAL_LIMIT) -> Decimal:
    """A JSON number (``Decimal`` or ``int``, never a bool) as a Decimal with ``|value| < limit``."""
    kind = type(value)
    if kind is int:
        value = Decimal(value)
    elif kind is not Decimal:
        raise WireError(f"{field}: expected a JSON number, got {_short(value)}")
    try:
        if -limit < value < limit:
            return value
    except InvalidOperation:  # a NaN cannot be ordered
        pass
    raise WireError(f"{field}: {_short(value)} is not a finite number below {limit:.0e}", BAD_NUMBER)


def amount_text(text: str, field: str, limit: Decimal = _DECIMAL_LIMIT) -> Decimal:
    """A decimal *string* (some venues quote numbers) as a bounded Decimal: its length is checked
    before ``Decimal()`` sees it."""
    if len(text) > NUMBER_CHARS:
        raise WireError(f"{field}: number text of {len(text)} characters", BAD_NUMBER)
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        raise WireError(f"{field}: {text!r} is not a number", BAD_NUMBER) from None
    return amount(value, field, limit)


def integer(value: Any, field: str, limit: int = MAGNITUDE_LIMIT) -> int:
    """A JSON integer (not a bool) with ``|value| < limit``."""
    if type(value) is not int:
        raise WireError(f"{field}: expected an integer, got {_short(value)}")
    if not -limit < value < limit:
        raise WireError(f"{field}: {value} is beyond the bound {limit:.0e}", BAD_NUMBER)
    return value


def lookup(table: Mapping[str, T], value: Any) -> T | None:
    """``table.get(value)`` for a wire value that may be a list or an object (unhashable): only a
    string can be a key, anything else is simply not found."""
    return table.get(value) if type(value) is str else None


def _short(value: Any) -> str:
    """A bounded repr for an error message (a value can be a megabyte list)."""
    if type(value) is str:
        value = value[:81]
    text = repr(value) if type(value) is not list and type(value) is not dict else type(value).__name__
    return text if len(text) <= 80 else text[:80] + "..."
