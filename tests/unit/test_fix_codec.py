"""The MidChains FIX codec: simplefix framing plus our checks. Any bytes raise only FixCodecError
(a hypothesis mutation fuzz), a wrong BodyLength or CheckSum is refused by name, frames split
anywhere are reassembled, and secrets never reach a log line."""

from __future__ import annotations

import contextlib

import pytest
import simplefix
import simplefix.errors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.midchains.codec import (
    FixCodecError,
    FixMessage,
    FrameReader,
    decode,
    encode,
    encode_message,
    reframe,
)
from engine.venue.badinput import TOO_LARGE

HEADER = [(34, "2"), (49, "SENDERCOMP"), (52, "20210714-01:01:10.569"), (56, "MIDCDEV1")]
LOGON = encode("A", HEADER, [(98, "0"), (108, "60")])


def test_encode_is_simplefixs_and_matches_the_recomputed_document_logon() -> None:
    """The client Logon example, its 9 and 10 recomputed (venue-notes 3.4: 9=73, 10=023)."""
    assert LOGON == (
        b"8=FIX.4.2\x019=73\x0135=A\x0134=2\x0149=SENDERCOMP\x0152=20210714-01:01:10.569\x01"
        b"56=MIDCDEV1\x0198=0\x01108=60\x0110=023\x01"
    )
    message = decode(LOGON)
    assert (message.msg_type, message.get(108), message.get(98)) == ("A", "60", "0")


def test_a_wrong_body_length_is_refused_by_name() -> None:
    wrong = LOGON.replace(b"9=73", b"9=70")
    with pytest.raises(FixCodecError, match=r"BodyLength \(9\) is '70'; the body is 73 bytes"):
        decode(wrong)


def test_a_wrong_checksum_is_refused_by_name() -> None:
    wrong = LOGON.replace(b"10=023", b"10=049")
    with pytest.raises(FixCodecError, match=r"CheckSum \(10\) is '049'; the bytes sum to 023"):
        decode(wrong)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (LOGON.replace(b"35=A\x01", b"035=A\x01"), "not canonical"),
        (LOGON.replace(b"FIX.4.2", b"FIX.4.4"), "BeginString"),
        (LOGON + b"8=FIX", "after the frame"),
        (LOGON[:-8], "incomplete"),
        (reframe(LOGON.replace(b"34=2\x01", b"34=2\x0134=3\x01")), "appears 2 times"),
        (b"x" * 10 + b"=\x01", "unparseable"),
    ],
)
def test_malformed_frames_are_refused_with_the_reason(frame: bytes, reason: str) -> None:
    with pytest.raises(FixCodecError, match=reason):
        decode(frame)


def test_a_stream_split_at_every_byte_yields_the_same_frames() -> None:
    second = encode("0", HEADER, [(112, "TEST")])
    reader = FrameReader()
    got: list[FixMessage] = []
    for byte in LOGON + second:
        reader.feed(bytes([byte]))
        while (message := reader.next_message()) is not None:
            got.append(message)
    assert [m.msg_type for m in got] == ["A", "0"]
    assert reader.pending_bytes == 0


def test_whole_junk_fields_before_a_frame_are_skipped_and_counted() -> None:
    reader = FrameReader()
    reader.feed(b"58=noise\x01" + LOGON)
    assert reader.next_message() == decode(LOGON)
    assert reader.skipped_fields == 1


def test_a_frame_that_never_ends_is_refused_at_the_limit() -> None:
    reader = FrameReader(max_frame=256)
    reader.feed(b"58=" + b"x" * 300)
    with pytest.raises(FixCodecError, match=r"no complete frame in \d+ bytes \(limit 256\)") as refused:
        reader.next_message()
    assert refused.value.kind == TOO_LARGE


def test_a_body_length_over_the_limit_is_refused_before_its_bytes_arrive() -> None:
    """The frame's end is read from its BodyLength (9): one over the limit is refused from the
    header alone, not after ``max_frame`` bytes of a value with no SOH (0.8 s of CPU with
    simplefix's own framing, benchmarks/fuzz.py)."""
    reader = FrameReader(max_frame=256)
    reader.feed(b"8=FIX.4.2\x019=9999\x01")
    with pytest.raises(FixCodecError, match=r"BodyLength 9999\) exceeds the limit of 256") as refused:
        reader.next_message()
    assert refused.value.kind == TOO_LARGE


def test_a_checksum_before_the_body_length_ends_is_refused_without_waiting() -> None:
    """9 says more bytes than the frame has; the CheckSum already read ends it: refused now, not when
    the peer's next frame (which may never come) fills the declared length."""
    reader = FrameReader()
    reader.feed(LOGON.replace(b"9=73", b"9=80"))
    with pytest.raises(FixCodecError, match=r"BodyLength \(9\) is '80'; the body is 73 bytes"):
        reader.next_message()


def test_a_broken_reader_stays_broken() -> None:
    reader = FrameReader()
    reader.feed(b"abc=\x01")
    with pytest.raises(FixCodecError):
        reader.next_message()
    with pytest.raises(FixCodecError, match="already broken"):
        reader.feed(LOGON)


def test_secret_tags_never_reach_a_log_line() -> None:
    """The document has no password field (identity is CompID + TLS); should one ever be sent,
    Password (554) is masked by the kit's Secret."""
    frame = encode("A", HEADER, [(98, "0"), (108, "60"), (553, "user"), (554, "hunter2")])
    text = decode(frame).loggable()
    assert "hunter2" not in text
    assert "554=<secret>" in text and "553=user" in text


# ---- mutation fuzz: any bytes raise only FixCodecError ------------------------------------------

VALID = [
    LOGON,
    encode("D", HEADER, [(11, "43637618552482556000"), (21, "2"), (38, "1"), (40, "2"), (44, "150"), (54, "1"),
                         (55, "LTCUSD"), (59, "1"), (43229, "10")]),
    encode("0", HEADER, [(112, "TEST")]),
    encode("4", HEADER, [(95, "4"), (96, "a\x01=b"), (123, "Y"), (36, "9")]),  # a raw-data field
]


@st.composite
def mutated_streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    stream = bytearray(b"".join(draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=3))))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "garbage"]))
        at = draw(st.integers(0, len(stream)))
        if kind == "flip" and at < len(stream):
            stream[at] = draw(st.sampled_from([0, 1, ord("="), ord("9"), ord("1"), ord("0"), 255, ord("x")]))
        elif kind == "insert":
            stream[at:at] = draw(st.sampled_from([b"\x01", b"=", b"10=000\x01", b"8=FIX.4.2\x01", b"95=9999\x01"]))
        elif kind == "delete":
            del stream[at : at + draw(st.integers(1, 8))]
        else:
            stream[at:at] = draw(st.binary(max_size=16))
    cuts = draw(st.lists(st.integers(1, 64), max_size=8))
    return bytes(stream), cuts


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_streams())
def test_any_mutated_stream_yields_checked_frames_or_fix_codec_error_only(case: tuple[bytes, list[int]]) -> None:
    stream, cuts = case
    reader = FrameReader(max_frame=1024)
    position = 0
    try:
        for size in [*cuts, len(stream)]:
            reader.feed(stream[position : position + size])
            position += size
            while (message := reader.next_message()) is not None:
                # whatever came out is a valid frame: it re-encodes to itself
                assert message.get(8) == "FIX.4.2" and message.msg_type
    except FixCodecError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_fix_codec_error(data: bytes) -> None:
    try:
        decode(data)
    except FixCodecError:
        pass


def test_frames_simplefix_encodes_are_accepted() -> None:
    """Interop at the framing level: a frame built by simplefix's own encoder, not ours."""
    message = simplefix.FixMessage()
    message.append_pair(8, "FIX.4.2", header=True)
    message.append_pair(35, "8", header=True)
    message.append_pair(34, 582, header=True)
    message.append_pair(43229, 10000)
    assert decode(message.encode()).get(43229) == "10000"


def test_a_large_read_of_many_frames_yields_every_frame() -> None:
    """A 64 KiB read holds hundreds of frames; the reader hands simplefix a slice at a time and
    must neither lose nor split any."""
    frames = [encode("0", [(34, str(n)), *HEADER[1:]], [(112, f"T{n}")]) for n in range(1, 801)]
    reader = FrameReader()
    reader.feed(b"".join(frames))
    got = []
    while (message := reader.next_message()) is not None:
        got.append(message.get(112))
    assert got == [f"T{n}" for n in range(1, 801)]
    assert reader.pending_bytes == 0


def test_bytes_after_a_frame_are_counted_even_before_the_parser_sees_them() -> None:
    with pytest.raises(FixCodecError, match="1000 bytes after the frame"):
        decode(LOGON + b"x" * 1000)


_TAGS = st.integers(min_value=11, max_value=9999).filter(lambda tag: tag not in (34, 35, 49, 52, 56, 43, 122))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    msg_type=st.sampled_from(["0", "1", "4", "5", "A", "D", "8", "j"]),
    header=st.lists(st.tuples(st.sampled_from([34, 49, 52, 56, 43, 122]), st.text(max_size=12)),
                    max_size=6, unique_by=lambda pair: pair[0]),
    body=st.lists(st.tuples(_TAGS, st.text(max_size=20)), max_size=8),
)
def test_the_message_encode_message_builds_is_the_one_its_frame_reads_back_as(
    msg_type: str, header: list[tuple[int, str]], body: list[tuple[int, str]]
) -> None:
    """The session sends without reading its own frames back (issue 23 review: ~1.5M instructions a
    send); what it hands on must still be exactly what the frame says, for any text (non-ASCII and
    SOH values are read back, so they agree by construction)."""
    frame = encode(msg_type, header, body)
    try:
        expected = decode(frame)
    except FixCodecError:  # a value with a SOH breaks the frame: encode_message reads it back, refused too
        with pytest.raises(FixCodecError):
            encode_message(msg_type, header, body)
        return
    assert encode_message(msg_type, header, body) == (frame, expected)


def _simplefix_fields(raw: bytes) -> list[tuple[int, str]]:
    parser = simplefix.FixParser(allow_empty_values=False)
    parser.append_buffer(raw)
    parsed = parser.get_message()
    assert parsed is not None and not parser.get_buffer()
    return [(int(tag), bytes(value).decode("latin-1")) for tag, value in parsed.pairs]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_streams())
def test_every_frame_the_reader_accepts_reads_as_simplefix_reads_it(case: tuple[bytes, list[int]]) -> None:
    """The reader cuts frames by BodyLength and splits them on SOH (simplefix's byte loop costs 5x);
    simplefix's parser stays the oracle: whatever the reader accepts, from any mutated stream,
    simplefix reads field for field the same."""
    stream, _ = case
    reader = FrameReader(max_frame=1024)
    with contextlib.suppress(FixCodecError):
        reader.feed(stream)
        while (message := reader.next_message()) is not None:
            raw = b"".join(b"%d=%s\x01" % (tag, value.encode("latin-1")) for tag, value in message.fields)
            assert _simplefix_fields(raw) == list(message.fields)


@settings(max_examples=300, deadline=None)
@given(body=st.lists(st.tuples(_TAGS, st.binary(min_size=1, max_size=20).filter(lambda v: b"\x01" not in v)),
                     max_size=10))
def test_any_frame_simplefix_encodes_reads_back_as_simplefix_parses_it(body: list[tuple[int, bytes]]) -> None:
    message = simplefix.FixMessage()
    message.append_pair(8, "FIX.4.2", header=True)
    message.append_pair(35, "8", header=True)
    for tag, value in body:
        message.append_pair(tag, value)
    frame = message.encode()
    try:
        fields = list(decode(frame).fields)
    except FixCodecError:  # simplefix refuses the same frame (e.g. a raw-data tag's length that lies)
        with pytest.raises((ValueError, AssertionError, simplefix.errors.ParsingError)):
            _simplefix_fields(frame)
        return
    assert fields == _simplefix_fields(frame)


def test_reframe_refuses_an_empty_value_by_name() -> None:
    """Found by benchmarks/fuzz.py: an empty BeginString made simplefix's encoder raise its own
    ValueError out of reframe."""
    with pytest.raises(FixCodecError, match="empty value"):
        reframe(b"8=\x019=5\x0135=0\x0110=000\x01")
