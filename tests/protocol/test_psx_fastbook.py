"""The fast path of PSX Live Feed L2 book messages (``FeedDecoder.decode``, issue 22 part 4) against
the general way it replaces on the hot path (the bounded reader, then ``_book`` / ``_whole_book``,
which stays: it is the path every frame the fast one refuses takes).

The property: for any sequence of frames, a decoder with the fast path gives exactly what a decoder
without it gives: the same events (the same Decimals, digit for digit), or the same ``Malformed``
(kind, reason and sample), and the same state after each frame (``seq``, synced books, whole books,
the dropped count). Frames are generated around the sandbox's burst frames, the digest's examples
(tests/fixtures/psx_feed/digest_proposal.txt, PSX-1) and 002's literal whole books: every field
missing, null, of another type, out of bounds, repeated, or unknown; levels of 1-4 elements;
numbers as the reader reads them (fractions, exponents, huge integers, quoted); compact or spaced;
text or bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.psx_feed import codec
from adapters.psx_feed.codec import FeedDecoder, Malformed
from engine.model import BookUpdate, Side
from tests.support.jsontext import members, mostly

FIXTURES = Path(__file__).parent.parent / "fixtures" / "psx_feed"
TS = "2024-01-01T04:30:00.000Z"
RECV = 1_800_000_000 * 1_000_000_000
SANDBOX_FRAME = ('{"type":"book","symbol":"MEBL","snapshot":false,"bids":[[100.00,100,1]],'
                 '"asks":[[100.01,200,1]],"ts":"2026-12-07T14:31:24.865Z","seq":3}')


def _refuse(data: str) -> Any:
    raise ValueError("the fast path is off")


@contextmanager
def general_way() -> Iterator[None]:
    """The decoder without its fast path: the shape refuses every frame, so each goes the general way."""
    fast = codec._decode_book_frame
    codec._decode_book_frame = _refuse
    try:
        yield
    finally:
        codec._decode_book_frame = fast


@contextmanager
def general_reads() -> Iterator[list[str]]:
    """The frames the decoder read the general way (its JSON reader called) while inside: a frame
    the fast path took never reaches it."""
    reads: list[str] = []
    general = codec._decode_json

    def counting(data: str) -> Any:
        reads.append(data)
        return general(data)

    codec._decode_json = counting
    try:
        yield reads
    finally:
        codec._decode_json = general


def event_of(event: Any) -> tuple[Any, ...]:
    """An event, comparable (Decimals by their text and type too)."""
    if type(event) is BookUpdate:
        changes = tuple((side, str(price), str(qty), type(price), type(qty)) for side, price, qty in event.changes)
        return ("book", event.venue, event.symbol, event.ts, event.seq, event.snapshot, changes)
    if type(event) is codec.Gap:
        return ("gap", event.expected, event.received)
    slots = getattr(type(event), "__slots__", ())
    return (type(event).__name__, *(repr(getattr(event, name)) for name in slots))


def state_of(decoder: FeedDecoder) -> tuple[Any, ...]:
    whole = {symbol: tuple(sorted((str(p), str(q)) for p, q in side.items()) for side in sides)
             for symbol, sides in decoder.whole.items()}
    return (decoder.last_seq, sorted(decoder.synced), decoder.dropped, decoder.other_board, whole)


def outcome(decoder: FeedDecoder, raw: str | bytes) -> tuple[Any, ...]:
    try:
        events = decoder.decode(raw, RECV)
    except Malformed as exc:
        return ("error", exc.kind, exc.reason, str(exc), exc.sample, state_of(decoder))
    return ("events", tuple(event_of(event) for event in events), state_of(decoder))


def both_ways(frames: list[str | bytes], level: str = "L2") -> None:
    """The frames through a decoder with the fast path and one without, frame by frame."""
    fast = FeedDecoder("PSX", level)
    general = FeedDecoder("PSX", level)
    for raw in frames:
        got = outcome(fast, raw)
        with general_way():
            expected = outcome(general, raw)
        assert got == expected, raw


# ---- generated frames: JSON texts written piece by piece, so numbers, repeats and spacing vary ------

GOOD_NUMBERS = st.sampled_from(["1", "100", "100.00", "100.01", "187.45", "0.5", "1e3", "1E-2", "2.5e1",
                                "999999999999999999"]) | st.decimals(min_value=0, max_value=10**6, places=2,
                                                                    allow_nan=False).map(str)
BAD_NUMBERS = st.sampled_from([
    "0", "0.0", "-0.0", "-1", "-0.01", "1000000000000000000", "1e18", "1e30", "1e999999", "1.5e-70",
    "123456789012345678901234567890.5", "0." + "1" * 70, "18446744073709551616", "1" * 5000, '"abc"', '"100"',
    "null", "true", "false", "[1]", '{"a":1}', "[" * 70 + "]" * 70,
])
NUMBER_TEXTS = mostly(GOOD_NUMBERS, BAD_NUMBERS)
QTY_TEXTS = mostly(st.integers(0, 10**6).map(str) | st.sampled_from(["0", "0.0", "100.5", "1e2"]), BAD_NUMBERS)
ORDERS_TEXTS = mostly(st.sampled_from(["1", "3", "0"]), st.sampled_from([
    "null", '"x"', "true", "1.5", "1e999999", "-1", "18446744073709551616", "1" * 5000, "[]", "[1]", "{}",
    "[" * 70 + "]" * 70, "[" * 30 + "]" * 30, '"\\ud800"',
]))
SEQ_TEXTS = mostly(st.integers(0, 12).map(str), st.sampled_from([
    "-1", "null", "1.0", "1e2", "true", '"3"', "[3]", "18446744073709551616", "1" * 5000,
]))
TS_TEXTS = mostly(st.sampled_from([f'"{TS}"', '"2024-01-01T04:30:00.123Z"', '"2024-01-01T04:30:01Z"']),
                  st.sampled_from(['"2024-01-01T04:30:00.000+05:00"', '"2024-01-01T04:30:00"', '"x"', '""',
                                   '"2024-01-01T04:30:00.1234567890Z"', "null", "5", "1.5", "[]"]))


@st.composite
def levels_text(draw: st.DrawFn) -> str:
    level_texts = []
    for _ in range(draw(st.integers(0, 3))):
        shape = draw(mostly(st.sampled_from(["3", "2"]), st.sampled_from(["1", "4", "0", "not a list", "object"])))
        if shape == "3":
            parts = [draw(NUMBER_TEXTS), draw(QTY_TEXTS), draw(ORDERS_TEXTS)]
        elif shape == "2":
            parts = [draw(NUMBER_TEXTS), draw(QTY_TEXTS)]
        elif shape == "1":
            parts = [draw(NUMBER_TEXTS)]
        elif shape == "4":
            parts = [draw(NUMBER_TEXTS), draw(QTY_TEXTS), draw(ORDERS_TEXTS), "1"]
        elif shape == "0":
            parts = []
        elif shape == "object":
            level_texts.append('{"price":100,"qty":1}')
            continue
        else:
            level_texts.append(draw(NUMBER_TEXTS))
            continue
        level_texts.append("[" + ",".join(parts) + "]")
    return "[" + ",".join(level_texts) + "]"


@st.composite
def book_frames(draw: st.DrawFn) -> str | bytes:
    space = draw(mostly(st.just(""), st.sampled_from([" ", "\n "])))
    fields = {
        "type": mostly(st.just('"book"'), st.sampled_from(['"tick"', '"books"', "1", "null", '"order"'])),
        "symbol": mostly(st.sampled_from(['"MEBL"', '"OGDC"']), st.sampled_from(['""', "5", "null", "[]"])),
        "snapshot": mostly(st.sampled_from(["true", "false"]), st.sampled_from(["null", "1", '"true"'])),
        "bids": mostly(levels_text(), st.sampled_from(["null", "{}", '"x"'])),
        "asks": mostly(levels_text(), st.sampled_from(["null", "{}", '"x"'])),
        "ts": TS_TEXTS,
        "seq": SEQ_TEXTS,
    }
    if draw(st.integers(0, 3)) == 0:  # 002's literal book: no snapshot (a whole book), often no seq
        del fields["snapshot"]
    frame = members(draw, fields, space, ["market", "x", "extra"], shuffle_always=False)
    if draw(st.integers(0, 19)) == 0:
        return frame.encode()
    return frame


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(book_frames(), min_size=1, max_size=6))
def test_fast_path_gives_exactly_what_the_general_way_gives(frames: list[str | bytes]) -> None:
    both_ways(frames)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(book_frames(), min_size=1, max_size=4))
def test_fast_path_agrees_below_l2_too(frames: list[str | bytes]) -> None:
    both_ways(frames, "L1")


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_fast_path_agrees_on_any_text_naming_a_book(tail: str | bytes) -> None:
    head = '{"type":"book","symbol":"MEBL","snapshot":true,"bids":'
    raw: str | bytes = head + tail if isinstance(tail, str) else head.encode() + tail
    both_ways([raw])


@settings(max_examples=500, deadline=None)
@given(st.integers(0, len(SANDBOX_FRAME) - 1), st.sampled_from(["", " ", "x", "[", "]", "{", '"', "-", "0", "\\"]),
       st.integers(0, 3))
def test_fast_path_agrees_on_mutated_sandbox_frames(at: int, insert: str, cut: int) -> None:
    """The sandbox's frame with a few characters cut and one inserted anywhere."""
    raw = SANDBOX_FRAME[:at] + insert + SANDBOX_FRAME[at + cut:]
    snapshot = SANDBOX_FRAME.replace('"snapshot":false', '"snapshot":true').replace('"seq":3', '"seq":2')
    both_ways([snapshot, raw, SANDBOX_FRAME])


# ---- the documents' frames -----------------------------------------------------------------------


def digest_examples() -> list[str]:
    """The digest's proposed frames (PSX-1) with their placeholders given values, as fuzz.py seeds them."""
    examples = []
    for line in (FIXTURES / "digest_proposal.txt").read_text(encoding="utf-8").splitlines():
        for example in re.findall(r"`(\{[^`]*\})`", line):
            text = example.replace('"...Z"', f'"{TS}"').replace("[[price,qty,orders]]", "[[187.45,1000,3]]")
            text = text.replace("[...]", '["MEBL"]').replace("true|false", "true")
            text = re.sub(r'"(\w+)\|[\w|]+"', r'"\1"', text)
            text = re.sub(r'"ts":\.\.\.', f'"ts":"{TS}"', text)
            examples.append(text.replace(":...", ":5").replace('"..."', '"OID-1"'))
    return examples


def test_the_digests_examples_agree_and_its_book_takes_the_fast_path() -> None:
    examples = digest_examples()
    books = [text for text in examples if '"type":"book"' in text]
    assert len(books) == 1 and '"bids":[[187.45,1000,3]],"asks":["MEBL"]' in books[0]
    both_ways(examples)  # the book as fuzz.py seeds it: its asks placeholder filled with a symbol
    book = books[0].replace('"asks":["MEBL"]', '"asks":[[187.55,1500,2]]')  # with a level, as the bids
    json.loads(book)
    delta = book.replace('"snapshot":true', '"snapshot":false').replace('"seq":124', '"seq":125')
    literal = book.replace('"snapshot":true,', "")
    both_ways([book, delta, literal, delta.replace('"seq":125', '"seq":127'), literal])
    with general_reads() as reads:
        with_shape = FeedDecoder("PSX", "L2").decode(book, RECV)
    assert reads == []  # the fast path took it
    with general_way():
        assert [event_of(e) for e in FeedDecoder("PSX", "L2").decode(book, RECV)] == [
            event_of(e) for e in with_shape]
    assert with_shape[0].changes == ((Side.BUY, Decimal("187.45"), Decimal(1000)),
                                     (Side.SELL, Decimal("187.55"), Decimal(1500)))


def test_the_sandbox_burst_frame_takes_the_fast_path() -> None:
    decoder = FeedDecoder("PSX", "L2")
    with general_reads() as reads:
        snapshot = SANDBOX_FRAME.replace('"snapshot":false', '"snapshot":true').replace('"seq":3', '"seq":2')
        decoder.decode(snapshot, RECV)
        (update,) = decoder.decode(SANDBOX_FRAME, RECV)
    assert reads == [] and decoder.refused_shape == 0  # neither went the general way
    off_shape = SANDBOX_FRAME.replace('"seq":3', '"seq":4,"market":"REG"')  # a field the shape lacks
    (later,) = decoder.decode(off_shape, RECV)
    assert later.seq == 4 and decoder.refused_shape == 1  # read the general way and counted (book_frames_off_shape)
    assert update.changes == ((Side.BUY, Decimal("100.00"), Decimal(100)), (Side.SELL, Decimal("100.01"), Decimal(200)))
    assert str(update.changes[0][1]) == "100.00" and update.seq == 3 and not update.snapshot


def test_frames_outside_the_shape_get_the_general_ways_answer() -> None:
    """An unknown field, a nested order count, a negative seq, a seq that goes backwards, a deep
    order count past the reader's bound, bytes: the general way answers, as without the fast path."""
    snapshot = SANDBOX_FRAME.replace('"snapshot":false', '"snapshot":true').replace('"seq":3', '"seq":2')
    cases = [
        SANDBOX_FRAME.replace('"seq":3', '"seq":3,"market":"REG"'),
        SANDBOX_FRAME.replace("[100.00,100,1]", "[100.00,100,[[1]]]"),
        SANDBOX_FRAME.replace("[100.00,100,1]", "[100.00,100," + "[" * 70 + "]" * 70 + "]"),
        SANDBOX_FRAME.replace('"seq":3', '"seq":-3'),
        SANDBOX_FRAME.replace('"seq":3', '"seq":1'),
        SANDBOX_FRAME.replace("100.00,100", "100,100"),
        SANDBOX_FRAME.replace("100.00,100", "1e999999,100"),
        SANDBOX_FRAME.encode(),
    ]
    for raw in cases:
        both_ways([snapshot, raw, SANDBOX_FRAME])
    decoder = FeedDecoder("PSX", "L2")
    decoder.decode(snapshot, RECV)
    try:
        decoder.decode(cases[2], RECV)
    except Malformed as exc:
        assert exc.kind == "too_deep"
    else:
        raise AssertionError("a level nesting past the reader's bound was accepted")
    decoder.decode(SANDBOX_FRAME, RECV)
    try:
        decoder.decode(cases[4], RECV)
    except Malformed as exc:
        assert (exc.kind, exc.reason) == ("malformed", "book: seq went backwards: 1 after 3")
    else:
        raise AssertionError("a seq going backwards was accepted")
