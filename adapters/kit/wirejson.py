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
- numbers: a fraction or exponent is read from its text into ``Decimal`` (never a binary float) by
  a decimal context whose traps refuse more than ``NUMBER_DIGITS`` significant digits or an
  exponent beyond ``EXPONENT_LIMIT`` while converting (C speed: no Python call per number); an
  integer stays an ``int`` and is bounded by CPython's own limit of 4,300 digits, checked before
  conversion, then per field; ``NaN`` / ``Infinity`` refused.

Two parsers, one verdict: msgspec's (``msgspec.json.Decoder`` with ``float_hook`` = the trapping
context above) reads every frame first, 1.4-2.0x faster than stdlib ``json`` with the same hook on the
documents' frames, 1.1-1.6x for a codec's whole decode (benchmarks/bench_json.py; figures in the
README). Whatever msgspec refuses is read again by stdlib ``json``, which decides: so what is
accepted, the values, and each refusal's kind and message are exactly stdlib's (msgspec refuses some
text stdlib accepts, such as a ``"\\ud800"`` escape, and names ``NaN`` only an invalid character);
only refused input pays for the second read.
``orjson`` was measured too and cannot keep the guarantees: it reads every fraction as a binary
double and an integer past 64 bits as a float.

Everything it refuses raises :class:`WireError` with a ``kind`` from :mod:`engine.venue.badinput`; each
codec turns it into its own error type with the same ``kind``. The field helpers below
(:func:`amount`, :func:`amount_text`, :func:`lookup`) bound what a codec accepts per field, so no
later arithmetic can overflow, spin or raise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import (
    Clamped,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    Rounded,
    Subnormal,
    Underflow,
)
from typing import Any, TypeVar

import msgspec

from engine.venue.badinput import BAD_NUMBER, MALFORMED, NOT_JSON, TOO_DEEP, TOO_LARGE

__all__ = [
    "EXPONENT_LIMIT",
    "MAGNITUDE_LIMIT",
    "MAX_CHARS",
    "MAX_DEPTH",
    "NUMBER_CHARS",
    "NUMBER_DIGITS",
    "Reader",
    "WireError",
    "amount",
    "amount_text",
    "int_decimal",
    "integer",
    "lookup",
    "typed_decoder",
]

#: default largest frame or body, in characters (a Pulse book or an Optimus listing is far smaller)
MAX_CHARS = 4 << 20
#: default deepest nesting; the documents' deepest message has 5 levels (a Pulse book notification)
MAX_DEPTH = 64
#: longest number *string* accepted where a venue quotes numbers (:func:`amount_text`)
NUMBER_CHARS = 64
#: most significant digits of a JSON number with a fraction or exponent
NUMBER_DIGITS = 64
#: largest |adjusted exponent| of a number: 1e64 is far past any amount and nothing overflows
EXPONENT_LIMIT = 64
#: per-field bound of amounts (prices, quantities, money, timestamps in ms): |value| < 10**18
MAGNITUDE_LIMIT = 10**18
_DECIMAL_LIMIT = Decimal(MAGNITUDE_LIMIT)

T = TypeVar("T")


class WireError(ValueError):
    """Input the reader or a field bound refuses. ``kind`` is an :mod:`engine.venue.badinput` kind."""

    def __init__(self, reason: str, kind: str = MALFORMED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


def _no_constant(name: str) -> Any:
    raise WireError(f"non-finite number {name} refused", BAD_NUMBER)


#: converts a number's text exactly, and raises (a DecimalException) instead of rounding, clamping
#: or overflowing: the bound is checked by the conversion itself, before any value exists
_NUMBERS = Context(prec=NUMBER_DIGITS, Emax=EXPONENT_LIMIT, Emin=-EXPONENT_LIMIT, traps=[
    InvalidOperation, Overflow, Underflow, Subnormal, Rounded, Clamped, DivisionByZero])
_decimal = _NUMBERS.create_decimal
#: most number texts remembered by :class:`_Numbers` before it starts over
NUMBER_CACHE_SIZE = 4096


class _Numbers(dict):  # type: ignore[type-arg]
    """Number text -> its Decimal (made by ``_decimal``, so bounded and exact), remembered.

    Why: a feed repeats the same prices and sizes frame after frame. A hit is one C dict lookup
    (``__getitem__`` as msgspec's ``float_hook``: no Python call), instead of building a Decimal;
    and the same object comes back, whose hash is cached, so a book keyed by price does not hash
    a new Decimal per level (hashing a Decimal costs more than parsing it). Decimals are immutable:
    sharing one is safe. A miss converts with the trapping context: a number out of bounds raises
    here as before (msgspec passes it on and stdlib json decides), and is never stored. At most
    ``NUMBER_CACHE_SIZE`` entries (a number's text is short: the traps bound its digits and
    exponent), then it starts over, so hostile frames of ever-new numbers cost a miss each and
    bounded memory."""

    __slots__ = ()

    def __missing__(self, text: str) -> Decimal:
        value = _decimal(text)
        if len(self) >= NUMBER_CACHE_SIZE:
            self.clear()
        self[text] = value
        return value


_numbers = _Numbers()
#: the fast parser, shared by every Reader (it keeps no state between calls but the number cache)
_fast_parse = msgspec.json.Decoder(float_hook=_numbers.__getitem__).decode


def typed_decoder(shape: Any) -> Any:
    """A msgspec decoder of ``shape`` (a ``msgspec.Struct`` type, ...) whose untyped numbers (fields
    typed ``Any``) come from the same bounded, remembered Decimals as :meth:`Reader.loads`.

    Why: a codec's hottest frame decoded straight into its shape skips the dicts and the checks in
    Python that the shape already makes. It is a *fast path only*: it keeps none of the Reader's
    bounds on size or depth and refuses more than the Reader does, so a codec uses it on text it
    has bounded itself, and on any exception it raises reads the frame again with its Reader,
    which gives the verdict (the same value or the same error as without the fast path)."""
    return msgspec.json.Decoder(shape, float_hook=_numbers.__getitem__).decode


# A JSON string once its escapes are gone: removed before counting brackets ("[" in text is no level).
_QUOTED = re.compile(rb'"[^"]*"')
_NORMALIZE = bytes.maketrans(b"{}", b"[]")  # both kinds of bracket nest alike
_KEEP = frozenset(b'"[]{}')
_DELETE = bytes(c for c in range(256) if c not in _KEEP)


def _balanced(depth: int) -> bytes:
    """Regex of balanced brackets at most ``depth`` deep (a regular language for a fixed bound).
    Possessive repeats keep the match linear: no backtracking into a group once it closed."""
    return b"" if depth == 0 else rb"(?:\[" + _balanced(depth - 1) + rb"\])*+"


def _brackets(data: bytes) -> bytes:
    """Only the brackets outside strings, ``{}`` written as ``[]``; cut at an unterminated string
    (the parser stops there)."""
    if b"\\" in data:  # escapes: drop escaped backslashes, then escaped quotes (left to right, as JSON pairs them)
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
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

    __slots__ = ("max_chars", "max_depth", "_decoder", "_scan_once", "_balanced")

    def __init__(self, max_chars: int = MAX_CHARS, max_depth: int = MAX_DEPTH) -> None:
        self.max_chars = max_chars
        self.max_depth = max_depth
        self._decoder = json.JSONDecoder(parse_float=_decimal, parse_constant=_no_constant)
        self._scan_once = self._decoder.scan_once  # the C scanner, without decode()'s whitespace regexes
        self._balanced = re.compile(_balanced(max_depth))

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
        # The group starting at ``end`` either nests too deep or is cut short (a truncated frame):
        # closed with the brackets it lacks, it is within the bound only in the second case.
        rest = brackets[end:]
        missing = rest.count(b"[") - rest.count(b"]")
        return self._balanced.fullmatch(rest + b"]" * missing) is None

    def loads(self, data: str | bytes | bytearray | memoryview) -> Any:
        """One JSON text -> Python values (numbers as ``Decimal`` / ``int``). Raises only
        :class:`WireError`."""
        text = self._checked(data)
        try:
            return _fast_parse(text)
        except Exception:  # any refusal: stdlib json decides, with its kind and message
            return self._stdlib_parse(text)

    def stdlib_loads(self, data: str | bytes | bytearray | memoryview) -> Any:
        """:meth:`loads` on stdlib ``json`` alone, the same answer for every input: the reference
        benchmarks/bench_json.py measures msgspec against."""
        return self._stdlib_parse(self._checked(data))

    def _checked(self, data: str | bytes | bytearray | memoryview) -> str:
        """``data`` as text within the size and depth bounds, checked before any parser sees it."""
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
        return data

    def _stdlib_parse(self, data: str) -> Any:
        """The verdict of stdlib ``json`` on checked text: values, or the refusal's kind and message."""
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
        except DecimalException as exc:  # a trap of _NUMBERS: too many digits, exponent out of range
            raise WireError(f"number out of range ({type(exc).__name__})", BAD_NUMBER) from None
        except RecursionError:  # cannot happen after the depth check; never let it out
            raise WireError("nesting too deep", TOO_DEEP) from None
        except json.JSONDecodeError as exc:
            raise WireError(f"not JSON: {exc}", NOT_JSON) from None
        except ValueError as exc:  # int(): "Exceeds the limit (4300 digits) for integer string conversion"
            raise WireError(f"number out of range: {exc}", BAD_NUMBER) from None


# --------------------------------------------------------------------------------------------
# Field bounds


def amount(value: Any, field: str, limit: Decimal = _DECIMAL_LIMIT) -> Decimal:
    """A JSON number (``Decimal`` or ``int``, never a bool) as a Decimal with ``|value| < limit``."""
    kind = type(value)
    if kind is int:
        if not -MAGNITUDE_LIMIT < value < MAGNITUDE_LIMIT:  # int against int: no 4,000-digit Decimal made
            raise WireError(f"{field}: {_short(value)} is beyond the bound 1e+18", BAD_NUMBER)
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
        value = _decimal(text)
    except (DecimalException, ValueError):
        raise WireError(f"{field}: {text!r} is not a number within bounds", BAD_NUMBER) from None
    return amount(value, field, limit)


class _IntDecimals(dict):  # type: ignore[type-arg]
    """int -> ``Decimal(int)``, remembered; a hit is a C dict lookup (no Python frame), as
    :class:`_Numbers` for number texts. At most ``NUMBER_CACHE_SIZE`` entries, then it starts over."""

    __slots__ = ()

    def __missing__(self, value: int) -> Decimal:
        known = Decimal(value)
        if len(self) >= NUMBER_CACHE_SIZE:
            self.clear()
        self[value] = known
        return known


#: ``int_decimal(value)`` is ``Decimal(value)`` for an int already within bounds, shared for the sizes
#: a feed repeats (a hit is a third of building a Decimal; a Decimal is immutable, so sharing is safe)
int_decimal = _IntDecimals().__getitem__


def integer(value: Any, field: str, limit: int = MAGNITUDE_LIMIT) -> int:
    """A JSON integer (not a bool) with ``|value| < limit``."""
    if type(value) is not int:
        raise WireError(f"{field}: expected an integer, got {_short(value)}")
    if not -limit < value < limit:
        raise WireError(f"{field}: {_short(value)} is beyond the bound {limit:.0e}", BAD_NUMBER)
    return value


def lookup(table: Mapping[str, T], value: Any) -> T | None:
    """``table.get(value)`` for a wire value that may be a list or an object (unhashable): only a
    string can be a key, anything else is simply not found."""
    return table.get(value) if type(value) is str else None


def _short(value: Any) -> str:
    """A bounded repr for an error message (a value can be a megabyte list or a 4,000-digit int,
    whose repr alone costs a millisecond)."""
    if type(value) is int and not -MAGNITUDE_LIMIT < value < MAGNITUDE_LIMIT:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    if type(value) is str:
        value = value[:81]
    text = repr(value) if type(value) is not list and type(value) is not dict else type(value).__name__
    return text if len(text) <= 80 else text[:80] + "..."
