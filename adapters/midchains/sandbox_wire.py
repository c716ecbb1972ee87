"""The MidChains sandbox's own FIX 4.2 tag=value reader and writer, kept apart from the adapter's.

Issue 23 section 3: the sandbox must not import ``adapters/midchains/codec.py`` or
``session.py``, so a guess the adapter makes about the wire is checked against something built
from document 001 and the FIX 4.2 standard alone, not mirrored. This module is deliberately small:

- :func:`encode` writes ``8=FIX.4.2|9=..|35=..|<header>|<body>|10=..|`` with BodyLength (9) and
  CheckSum (10) computed per the standard (bytes after 9's SOH up to 10's tag; sum of bytes mod
  256, three digits). The document's example values for 9 and 10 are all wrong (venue-notes 3.4),
  so nothing here copies them.
- :class:`FrameSplitter` cuts a byte stream into frames by reading 8, then 9, then skipping exactly
  BodyLength bytes to the 10 field; :func:`decode` checks the checksum and the field order
  (8, 9, 35 first; 10 last) and returns a :class:`FixMessage`. Every problem is a
  :class:`WireError` naming what is wrong: a garbled frame is skipped, never a crash.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal

__all__ = ["SOH", "FixMessage", "FrameSplitter", "WireError", "base36", "decode", "encode", "order_ref", "plain",
           "utc_timestamp"]

SOH = b"\x01"
BEGIN_STRING = "FIX.4.2"
#: the largest frame accepted: a body beyond it is refused instead of buffered without end
MAX_BODY = 1 << 20
_HEAD = re.compile(rb"8=FIX\.4\.2\x019=(\d{1,7})\x01")
_TRAILER = re.compile(rb"10=(\d{3})\x01")


class WireError(ValueError):
    """A frame that is not FIX 4.2 tag=value as the standard writes it; the text says what."""


class FixMessage:
    """One decoded message: its fields in order (a repeating group repeats tags) and the first value
    of each tag for the header and flat bodies."""

    __slots__ = ("pairs", "first")

    def __init__(self, pairs: list[tuple[int, str]]) -> None:
        self.pairs = pairs
        first: dict[int, str] = {}
        for tag, value in pairs:
            first.setdefault(tag, value)
        self.first = first

    @property
    def msg_type(self) -> str:
        return self.first.get(35, "")

    def get(self, tag: int, default: str = "") -> str:
        """The first value of ``tag``; ``default`` (empty) when absent: FIX has no empty values."""
        return self.first.get(tag, default)

    def __contains__(self, tag: int) -> bool:
        return tag in self.first

    def all(self, tag: int) -> list[str]:
        """Every value of ``tag`` in order (a repeating group's entries)."""
        return [value for t, value in self.pairs if t == tag]

    def __repr__(self) -> str:
        return "FixMessage(" + "|".join(f"{t}={v}" for t, v in self.pairs) + ")"


def utc_timestamp(now_ns: int) -> str:
    """FIX UTCTimestamp with milliseconds, ``YYYYMMDD-HH:MM:SS.sss`` (001's header example)."""
    seconds, rest = divmod(now_ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return f"{moment:%Y%m%d-%H:%M:%S}.{rest // 1_000_000:03d}"


_B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def plain(value: Decimal) -> str:
    """A plain decimal, never an exponent: an MD size (``271=0.91``) and every WebSocket number
    string (``"qty":"0.46"``), so both protocols of the one venue print a quantity alike."""
    return "0" if value == 0 else format(value.normalize(), "f")


def base36(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 36)
        digits.append(_B36[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def order_ref(engine_id: int) -> str:
    """An order's venue id shaped like 001's ``62XGZUU7W05SC3``: FIX OrderID (37, and 58 of market
    data) and WebSocket ``refno`` alike, so one order has one id on both protocols."""
    return "62" + base36(engine_id, 12)


def _field(tag: int, value: str) -> bytes:
    text = str(value)
    if "\x01" in text or not text:
        raise WireError(f"tag {tag}: a value may not be empty or hold SOH")
    return f"{tag}={text}".encode() + SOH


def encode(msg_type: str, header: Iterable[tuple[int, str]], body: Iterable[tuple[int, str]]) -> bytes:
    """One frame: 8, 9 (computed), 35, ``header`` (49, 56, 34, 52, 43, 122 ...), ``body``, 10 (computed)."""
    payload = _field(35, msg_type) + b"".join(_field(t, v) for t, v in header) + b"".join(_field(t, v) for t, v in body)
    head = f"8={BEGIN_STRING}\x019={len(payload)}\x01".encode()
    checksum = sum(head + payload) % 256
    return head + payload + f"10={checksum:03d}\x01".encode()


def decode(frame: bytes) -> FixMessage:
    """A whole frame (as :class:`FrameSplitter` cut it) read and checked; :class:`WireError` else."""
    match = _HEAD.match(frame)
    if match is None:
        raise WireError("frame does not start with 8=FIX.4.2|9=<BodyLength>|")
    body_start = match.end()
    body_end = body_start + int(match.group(1))
    trailer = _TRAILER.fullmatch(frame, body_end)
    if trailer is None:
        raise WireError(f"BodyLength {match.group(1).decode()} does not end where 10=nnn| starts")
    declared = int(trailer.group(1))
    actual = sum(frame[:body_end]) % 256
    if declared != actual:
        raise WireError(f"CheckSum 10={declared:03d} but the frame sums to {actual:03d}")
    pairs: list[tuple[int, str]] = []
    for raw in frame[body_start:body_end].split(SOH)[:-1]:
        tag, sep, value = raw.partition(b"=")
        if not sep or not tag.isdigit() or not value:
            raise WireError(f"field {raw[:40]!r} is not tag=value")
        try:
            pairs.append((int(tag), value.decode("utf-8")))
        except UnicodeDecodeError:
            raise WireError(f"tag {int(tag)}: value is not UTF-8 text") from None
    if not pairs or pairs[0][0] != 35:
        raise WireError("MsgType (35) must be the third field")
    return FixMessage(pairs)


class FrameSplitter:
    """Bytes from a TCP stream in, whole frames out. Junk before a ``8=FIX.4.2`` is skipped (and
    counted in :attr:`skipped`); an impossible BodyLength raises :class:`WireError`."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.skipped = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        buffer = self._buffer
        buffer += data
        while buffer:
            start = buffer.find(b"8=FIX.4.2\x01")
            if start < 0:
                keep = len(buffer) - 10  # a frame's start may be split across reads
                if keep > 0:
                    self.skipped += keep
                    del buffer[:keep]
                return
            if start:
                self.skipped += start
                del buffer[:start]
            match = _HEAD.match(buffer)
            if match is None:
                if len(buffer) > 24 and b"\x01" in buffer[10:]:  # a 9 field that is no number
                    self.skipped += 1
                    del buffer[:1]
                    continue
                return
            length = int(match.group(1))
            if length > MAX_BODY:
                del buffer[:1]
                raise WireError(f"BodyLength {length} exceeds {MAX_BODY}")
            end = match.end() + length + 7  # 10=nnn|
            if len(buffer) < end:
                return
            frame = bytes(buffer[:end])
            del buffer[:end]
            yield frame
