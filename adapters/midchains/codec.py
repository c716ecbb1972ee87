"""FIX 4.2 framing for MidChains: simplefix splits the stream and computes BodyLength (9) and
CheckSum (10); this module adds what simplefix leaves out, so the session sees only whole,
checked frames and one kind of error.

Why a wrapper rather than simplefix alone:

- simplefix's parser never checks 9 or 10, and every example in the MidChains document has both
  wrong (venue-notes/midchains-algo724.md 3.4). A frame is accepted only when its bytes are exactly
  the canonical ``tag=value<SOH>`` encoding of what was parsed (no ``035=``, no ``+35=``), its
  first three fields are 8, 9, 35, its last is 10, and 9 and 10 are right.
- simplefix raises half a dozen exception types (and ``ValueError``); :class:`FrameReader` raises
  only :class:`FixCodecError`, naming what is wrong, so a caller handles one error.
- simplefix buffers without a bound; a peer that never sends ``10=`` would grow it forever.
  :class:`FrameReader` refuses a frame longer than ``max_frame`` bytes.

A reader that raised is broken for good (the stream has lost its framing): the session answers
by disconnecting, and the counterpart's resend after the next logon recovers what was lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NoReturn

import simplefix  # type: ignore[import-untyped]  # no py.typed; typed at this module's edge
import simplefix.errors  # type: ignore[import-untyped]

from adapters.kit.credentials import Secret
from engine.venue.badinput import MALFORMED, TOO_LARGE, sample_of

__all__ = [
    "BEGIN_STRING",
    "SECRET_TAGS",
    "FixCodecError",
    "FixMessage",
    "FrameReader",
    "decode",
    "encode",
    "reframe",
]

BEGIN_STRING = "FIX.4.2"
SOH = b"\x01"
# A MidChains frame is a few hundred bytes (the longest document example, an ER FILL, is 329).
DEFAULT_MAX_FRAME = 64 * 1024
# Password (554), NewPassword (925), RawData (96), SecureData (91): the MidChains document uses
# none of them (identity is the CompIDs plus TLS), but a frame carrying one must never reach a log.
SECRET_TAGS = frozenset({91, 96, 554, 925})
_HEADER_ORDER = (8, 9, 35)
# Tags whose value is the length of the next (raw data) field, as simplefix's parser knows them.
RAW_LENGTH_TAGS = frozenset(simplefix.FixParser().raw_len_tags)
# A misframed frame up to this size is parsed whole to name what is wrong in it (a misplaced tag
# rather than only the length it shifted); a longer one is refused for its length alone.
DIAGNOSIS_BYTES = 4096
# Standard header fields that a frame carries at most once (two would make its identity ambiguous).
_ONCE = frozenset({8, 9, 10, 34, 35, 43, 49, 52, 56, 122})


class FixCodecError(ValueError):
    """A byte stream or frame that is not a valid FIX 4.2 frame; the text names what is wrong.
    ``kind`` is the :mod:`engine.venue.badinput` kind a reader counts it under, as for every codec."""

    def __init__(self, reason: str, kind: str = MALFORMED) -> None:
        super().__init__(reason)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class FixMessage:
    """One decoded frame: its fields in wire order (values as latin-1 text, so any byte round-trips)."""

    fields: tuple[tuple[int, str], ...]

    @property
    def msg_type(self) -> str:
        return self.get(35) or ""

    def get(self, tag: int) -> str | None:
        """The first value of ``tag``, or None."""
        for field_tag, value in self.fields:
            if field_tag == tag:
                return value
        return None

    def body(self) -> tuple[tuple[int, str], ...]:
        """The fields after the standard header and before the trailer: what a resend repeats."""
        return tuple((tag, value) for tag, value in self.fields if tag not in _FRAMING_AND_HEADER)

    def loggable(self) -> str:
        """``tag=value|...`` for a log line, with every secret tag masked by the kit's Secret."""
        return "|".join(
            f"{tag}={Secret(value)!r}" if tag in SECRET_TAGS else f"{tag}={value}" for tag, value in self.fields
        )


SOH_TEXT = "\x01"
#: where BodyLength's value starts in every frame encode() writes: after ``8=FIX.4.2<SOH>9=``
_LENGTH_AT = len(f"8={BEGIN_STRING}\x019=")

# Header fields the session sets on every send (and on a replay, with 43/122 added).
_FRAMING_AND_HEADER = frozenset({8, 9, 10, 34, 35, 43, 49, 52, 56, 97, 122})


def encode(msg_type: str, header: Sequence[tuple[int, str]], body: Iterable[tuple[int, str]]) -> bytes:
    """A frame with 8, 9, 35 first and 10 last, 9 and 10 computed by simplefix."""
    message = simplefix.FixMessage()
    message.append_pair(8, BEGIN_STRING, header=True)
    message.append_pair(35, msg_type, header=True)
    for tag, value in header:
        message.append_pair(tag, value, header=True)
    for tag, value in body:
        message.append_pair(tag, value)
    frame: bytes = message.encode()
    return frame


def encode_message(
    msg_type: str, header: Sequence[tuple[int, str]], body: Sequence[tuple[int, str]]
) -> tuple[bytes, FixMessage]:
    """:func:`encode`'s frame and its :class:`FixMessage`, the message built from the fields given
    rather than by reading the frame back (a read is ~0.29M instructions a 328-byte frame; building
    it from the fields skips that). Equal to ``decode(frame)``; an empty value, one that is not
    plain ASCII or one holding a SOH is read back (and refused where the frame is)."""
    frame = encode(msg_type, header, body)
    given = [*header, *body]
    if not all(value and value.isascii() and SOH_TEXT not in value for _, value in given):
        return frame, decode(frame)
    length = frame[_LENGTH_AT:frame.index(SOH, _LENGTH_AT)].decode("ascii")
    checksum = frame[-4:-1].decode("ascii")
    return frame, FixMessage(((8, BEGIN_STRING), (9, length), (35, msg_type), *given, (10, checksum)))


def reframe(frame: bytes) -> bytes:
    """``frame`` with its BodyLength and CheckSum recomputed: the document's examples made valid,
    every other byte kept. The frame must otherwise be well formed (starts ``8=``, ends ``10=..``)."""
    try:
        pairs = [field.split(b"=", 1) for field in frame.split(SOH) if field]
        kept = [(int(tag), value) for tag, value in pairs if int(tag) not in (9, 10)]
    except ValueError as exc:
        raise FixCodecError(f"cannot reframe: a field is not tag=value ({exc})") from None
    if not kept or kept[0][0] != 8:
        raise FixCodecError("cannot reframe: the frame does not start with 8=")
    if 35 not in {tag for tag, _ in kept}:
        raise FixCodecError("cannot reframe: the frame has no MsgType (35)")
    if any(not value for _, value in kept):
        raise FixCodecError("cannot reframe: a field has an empty value")
    message = simplefix.FixMessage()
    for tag, value in kept:
        message.append_pair(tag, value, header=tag in (8, 35))
    try:
        reframed: bytes = message.encode()
    except ValueError as exc:  # simplefix's own check of what it was given
        raise FixCodecError(f"cannot reframe: {exc}") from None
    return reframed


def decode(frame: bytes) -> FixMessage:
    """Exactly one checked frame; trailing bytes, a partial frame or a wrong 9/10 are refused."""
    reader = FrameReader()
    reader.feed(frame)
    message = reader.next_message()
    if message is None:
        if frame.startswith(b"8=") and frame.count(SOH) >= 2:
            _refuse(frame)  # the most specific reason this frame is not whole
        raise FixCodecError(f"incomplete frame: no CheckSum (10) field in {len(frame)} bytes")
    if reader.pending_bytes:
        raise FixCodecError(f"{reader.pending_bytes} bytes after the frame's CheckSum")
    return message


def _checked(raw: bytes, pairs: Sequence[tuple[int, str]], canonical: bool = False) -> FixMessage:
    """The frame ``raw`` (junk before ``8=`` already cut) as a message, or the reason it is refused.
    ``pairs`` hold latin-1 text; ``canonical``: the caller has already seen that ``raw`` is exactly
    their ``tag=value<SOH>`` text (:func:`_split` has)."""
    if not canonical and raw != "".join(f"{tag}={value}\x01" for tag, value in pairs).encode("latin-1"):
        raise FixCodecError("frame is not canonical tag=value<SOH> text (a tag with a sign, space or leading zero)")
    if tuple(tag for tag, _ in pairs[:3]) != _HEADER_ORDER:
        raise FixCodecError(f"frame must start 8, 9, 35; it starts {', '.join(str(tag) for tag, _ in pairs[:3])}")
    if pairs[0][1] != BEGIN_STRING:
        raise FixCodecError(f"BeginString (8) is {pairs[0][1].encode('latin-1')!r}, not {BEGIN_STRING}")
    if pairs[-1][0] != 10:
        raise FixCodecError("CheckSum (10) must be the last field, once")
    seen: set[int] = set()
    for tag, _ in pairs:
        if tag in _ONCE:
            if tag in seen:
                if tag == 10:
                    raise FixCodecError("CheckSum (10) must be the last field, once")
                count = sum(1 for other, _ in pairs if other == tag)
                raise FixCodecError(f"header field {tag} appears {count} times")
            seen.add(tag)
    declared_length, declared_sum = pairs[1][1], pairs[-1][1]
    body_start = len(f"8={pairs[0][1]}\x019={declared_length}\x01")
    trailer_start = len(raw) - len(f"10={declared_sum}\x01")
    actual_length = trailer_start - body_start
    if not (declared_length.isascii() and declared_length.isdigit()) or int(declared_length) != actual_length:
        raise FixCodecError(f"BodyLength (9) is {declared_length!r}; the body is {actual_length} bytes")
    actual_sum = sum(raw[:trailer_start]) % 256
    if len(declared_sum) != 3 or not (declared_sum.isascii() and declared_sum.isdigit()) or (
        int(declared_sum) != actual_sum
    ):
        raise FixCodecError(f"CheckSum (10) is {declared_sum!r}; the bytes sum to {actual_sum:03d}")
    return FixMessage(tuple(pairs))


class FrameReader:
    """Bytes in, checked frames out, across any split of the stream (a partial frame waits for
    the rest). Bytes that are not a field before ``8=`` are refused; whole junk fields there are
    skipped (simplefix's behaviour) and counted in ``skipped_fields``.

    Where a frame ends is read from its BodyLength (9), as FIX 4.2 frames a stream (vol. 1,
    "Message format"), and the frame is split on SOH (:func:`_split`); simplefix parses a frame
    only where a raw-data field may hold a SOH, and builds every frame we send. Why not
    simplefix's parser throughout: it reads byte by byte in Python (95 µs, 1.5M instructions, for
    the document's 328-byte ER FILL; the split: 6 µs) and rescans its whole buffer on every
    append, so a hostile 70 KB value with no SOH cost 0.8 s of CPU (benchmarks/fuzz.py, issue 23).
    Cut by BodyLength, a frame costs time linear in its own bytes, and a BodyLength over
    ``max_frame`` is refused from the header alone."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self.skipped_fields = 0
        self._parser = simplefix.FixParser(allow_empty_values=False)
        self._buffer = bytearray()  # bytes received and not yet part of a returned frame, from _at
        self._at = 0
        self._broken: str | None = None

    @property
    def pending_bytes(self) -> int:
        """Bytes fed and not yet part of a returned frame."""
        return len(self._buffer) - self._at

    def feed(self, data: bytes) -> None:
        """Append bytes read from the stream; call :meth:`next_message` until it returns None."""
        if self._broken is not None:
            raise FixCodecError(f"stream already broken: {self._broken}")
        if self._at:
            del self._buffer[: self._at]
            self._at = 0
        self._buffer += data

    def next_message(self) -> FixMessage | None:
        """The next whole frame, None when more bytes are needed; :class:`FixCodecError` otherwise."""
        if self._broken is not None:
            raise FixCodecError(f"stream already broken: {self._broken}")
        try:
            return self._next()
        except FixCodecError as exc:
            self._broken = str(exc)
            raise
        except (simplefix.errors.ParsingError, ValueError, IndexError) as exc:
            self._broken = f"unparseable bytes ({type(exc).__name__}: {exc})"
            raise FixCodecError(self._broken) from None

    def _frame_start(self) -> int | None:
        """Where the next frame's ``8=`` is, after skipping whole junk fields; None: need more bytes."""
        buffer, at = self._buffer, self._at
        while not buffer.startswith(b"8=", at):
            end = buffer.find(SOH, at)
            if end < 0:
                if len(buffer) - at > self.max_frame:
                    raise FixCodecError(f"no complete frame in {len(buffer) - at} bytes (limit {self.max_frame})",
                                        TOO_LARGE)
                return None
            tag, equals, _ = bytes(buffer[at:end]).partition(b"=")
            if not equals or not tag.isdigit():
                raise FixCodecError(f"unparseable bytes before a frame: {sample_of(bytes(buffer[at:end]), 40)}")
            self.skipped_fields += 1
            at = self._at = end + 1
        return at

    def _next(self) -> FixMessage | None:
        start = self._frame_start()
        if start is None:
            return None
        buffer = self._buffer
        begin_end = buffer.find(SOH, start)
        length_end = buffer.find(SOH, begin_end + 1) if begin_end >= 0 else -1
        if length_end < 0:
            if begin_end >= 0 and buffer[start:begin_end] != b"8=" + BEGIN_STRING.encode():
                raise FixCodecError(f"BeginString (8) is {sample_of(buffer[start + 2:begin_end], 20)!r}, "
                                    f"not {BEGIN_STRING}")
            if len(buffer) - start > self.max_frame:
                raise FixCodecError(f"no complete frame in {len(buffer) - start} bytes (limit {self.max_frame})",
                                    TOO_LARGE)
            return None
        begin, _, length = bytes(buffer[start:length_end]).partition(SOH)
        if begin != b"8=" + BEGIN_STRING.encode():
            raise FixCodecError(f"BeginString (8) is {sample_of(begin[2:], 20)!r}, not {BEGIN_STRING}")
        if not length.startswith(b"9="):
            raise FixCodecError(f"frame must start 8, 9, 35; its second field is {sample_of(length, 20)!r}")
        declared = length[2:]
        if not declared.isdigit() or len(declared) > 9:
            raise FixCodecError(f"BodyLength (9) is {sample_of(declared, 20)!r}, not a length")
        end = length_end + 1 + int(declared) + len(b"10=000\x01")
        if end - start > self.max_frame:
            raise FixCodecError(f"frame of {end - start} bytes (BodyLength {int(declared)}) exceeds the limit of "
                                f"{self.max_frame}", TOO_LARGE)
        if len(buffer) < end:
            # a CheckSum field already in sight ends the frame before its BodyLength does: refuse it
            # now rather than wait for bytes a peer may never send (MidChains has no raw-data field
            # whose value could hold "<SOH>10=nnn<SOH>")
            trailer = buffer.find(b"\x0110=", length_end)
            if 0 <= trailer and buffer[trailer + 7 : trailer + 8] == SOH:
                _refuse(bytes(buffer[start : trailer + 8]))
            return None
        raw = bytes(buffer[start:end])
        pairs = _split(raw)
        if pairs is None:  # a raw-data field or a field that is not tag=value: simplefix decides
            self._parser.reset()
            self._parser.append_buffer(raw)
            message = self._parser.get_message()
            if message is None or self._parser.get_buffer():
                _refuse(bytes(buffer[start:]))
            self._at = end
            return _checked(raw, [(int(tag), bytes(value).decode("latin-1")) for tag, value in message.pairs])
        self._at = end
        return _checked(raw, pairs, canonical=True)


def _split(raw: bytes) -> list[tuple[int, str]] | None:
    """The fields of one whole frame (``raw`` ends with SOH) as latin-1 text, or None when simplefix
    must parse it: a raw-data length tag (whose value may hold a SOH), a field with no ``=``, an
    empty value, or a tag that is not canonical digits (``+35``, ``035``: simplefix reads them, and
    :func:`_checked` refuses them by name). What is split here is canonical by construction, so
    :func:`_checked` skips rebuilding the text; tests/unit/test_fix_codec.py checks the split against
    simplefix's parser on every frame it accepts."""
    pairs = []
    for field in raw[:-1].decode("latin-1").split("\x01"):
        tag, equals, value = field.partition("=")
        if not equals or not value or not tag.isascii() or not tag.isdigit() or tag[0] == "0":
            return None
        number = int(tag)
        if number in RAW_LENGTH_TAGS:
            return None
        pairs.append((number, value))
    return pairs


def _refuse(data: bytes) -> NoReturn:
    """Raise the most specific reason why ``data`` (from a frame's ``8=``) is not one frame that its
    BodyLength ends at its CheckSum: the frame up to its first CheckSum field, parsed and checked as
    a whole (so a misplaced tag is named, not only the length it shifted), else the length."""
    trailer = data.find(b"\x0110=")
    end = data.find(SOH, trailer + 1) + 1 if trailer >= 0 else len(data)
    if end <= DIAGNOSIS_BYTES:  # bounded: hostile bytes must not buy a long parse for a better message
        parser = simplefix.FixParser(allow_empty_values=False)
        try:
            parser.append_buffer(data[:end])
            message = parser.get_message()
        except (simplefix.errors.ParsingError, ValueError, IndexError) as exc:
            raise FixCodecError(f"unparseable bytes ({type(exc).__name__}: {exc})") from None
        if message is not None and not parser.get_buffer():
            _checked(data[:end], [(int(tag), bytes(value).decode("latin-1")) for tag, value in message.pairs])
    if trailer < 0:
        raise FixCodecError(f"incomplete frame: no CheckSum (10) field in {len(data)} bytes")
    raise FixCodecError(misframed(data))


def misframed(data: bytes) -> str:
    """Why ``data`` (from a frame's ``8=``) is not one frame whose BodyLength (9) ends it at its
    CheckSum (10): the body length the first CheckSum field gives, when there is one."""
    begin_end = data.find(SOH)
    length_end = data.find(SOH, begin_end + 1)
    declared = data[begin_end + 3 : length_end].decode("latin-1")
    trailer = data.find(b"\x0110=", length_end)
    if trailer >= 0 and trailer - length_end != int(declared):
        return f"BodyLength (9) is {declared!r}; the body is {trailer - length_end} bytes"
    return f"no CheckSum (10) where BodyLength (9) {declared} ends the frame"
