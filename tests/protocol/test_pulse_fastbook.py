"""The fast path of Pulse book notifications (``codec.decode_frame``, issue 22 part 4) against the
general way it replaces on the hot path (``decode_message`` then ``decode_book``, which stays: it is
the path every frame the fast one refuses takes).

The property: for any frame, ``decode_frame`` then ``decode_book`` on a book notification's data gives
exactly what ``decode_message`` then ``decode_book`` give: the same message, the same levels (the same
Decimals, digit for digit), or the same ``CodecError`` (kind and message). Frames are generated around
the sandbox's and the document's book frames: every field missing, null, of another type, out of
bounds, repeated, or unknown; levels of 1-4 elements; numbers as the reader reads them (fractions,
exponents, huge integers, quoted); compact or spaced; text or bytes.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.pulse import codec
from adapters.pulse.protocol import PulseProtocol
from engine.model import Side
from tests.support.jsontext import members, mostly

SANDBOX_FRAME = (
    '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC_USD-PERPETUAL.raw","data":'
    '{"asks":[],"bids":[["new",49974.5,10]],"change_id":3,"instrument_name":"BTC_USD-PERPETUAL",'
    '"prev_change_id":2,"timestamp":1796605737704,"type":"change"}}}'
)


def outcome_of_book(data: Any) -> tuple[Any, ...]:
    """What ``decode_book`` makes of ``data``, comparable (Decimals by their text too)."""
    try:
        book = codec.decode_book(data)
    except codec.CodecError as exc:
        return ("error", exc.kind, str(exc))
    changes = tuple((side, str(price), str(size), type(price), type(size)) for side, price, size in book.changes)
    return ("book", book.symbol, book.snapshot, book.change_id, book.prev_change_id, book.ts_ns, changes)


def outcome(decode: Any, raw: str | bytes) -> tuple[Any, ...]:
    """A frame's message, and for a notification the book its data decodes to (or the error)."""
    try:
        msg = decode(raw)
    except codec.CodecError as exc:
        return ("error", exc.kind, str(exc))
    if type(msg) is codec.Notification:
        return ("notification", msg.channel, outcome_of_book(msg.data))
    if type(msg) is codec.Response:
        return ("response", msg.id, repr(msg.result))
    if type(msg) is codec.RpcError:
        return ("rpc_error", msg.id, msg.code, msg.message, repr(msg.data))
    return ("heartbeat", msg.kind)  # type: ignore[union-attr]


def general_way(raw: str | bytes) -> codec.Message:
    return codec.decode_message(raw)


# ---- generated frames: JSON texts written piece by piece, so numbers, repeats and spacing vary ------

GOOD_NUMBERS = st.sampled_from(["1", "10", "49974.5", "50000.50", "0.5", "1e3", "1E-2", "2.5e1", "999999999999999999",
                                "0.0", '"187.50"']) | st.decimals(min_value=0, max_value=10**6, places=3,
                                                                  allow_nan=False).map(str)
BAD_NUMBERS = st.sampled_from([
    "0", "-1", "1000000000000000000", "1e18", "1e30", "1e999999", "-0.0", "123456789012345678901234567890.5",
    "0." + "1" * 70, "18446744073709551616", '"abc"', '"1e400"', "null", "true", "[1]", '{"a":1}', "[" * 70 + "]" * 70,
])
NUMBER_TEXTS = mostly(GOOD_NUMBERS, BAD_NUMBERS)
INT_TEXTS = mostly(st.integers(0, 10**15).map(str), st.sampled_from([
    "-1", "1612137600", "100000000000000", "1000000000000000000", "-1000000000000000000", "100000000000000000000",
    "1" * 5000, "1.0", "1e2", "true", "false", "null", '"3"', "[3]", "3.5",
]))
ACTION_TEXTS = mostly(st.sampled_from(['"new"', '"change"', '"delete"']),
                      st.sampled_from(['"other"', "5", "null", "[]", '"NEW"']))


@st.composite
def levels_text(draw: st.DrawFn) -> str:
    level_texts = []
    for _ in range(draw(st.integers(0, 4))):
        shape = draw(mostly(st.just("3"), st.sampled_from(["2", "1", "4", "not a list"])))
        if shape == "3":
            parts = [draw(ACTION_TEXTS), draw(NUMBER_TEXTS), draw(NUMBER_TEXTS)]
        elif shape == "2":
            parts = [draw(NUMBER_TEXTS), draw(NUMBER_TEXTS)]
        elif shape == "1":
            parts = [draw(NUMBER_TEXTS)]
        elif shape == "4":
            parts = [draw(ACTION_TEXTS), draw(NUMBER_TEXTS), draw(NUMBER_TEXTS), "1"]
        else:
            level_texts.append(draw(NUMBER_TEXTS))
            continue
        level_texts.append("[" + ",".join(parts) + "]")
    return "[" + ",".join(level_texts) + "]"


UNKNOWN_FIELDS = ["usIn", "x", "extra"]


@st.composite
def book_frames(draw: st.DrawFn) -> str | bytes:
    space = draw(mostly(st.just(""), st.sampled_from([" ", "\n "])))
    data = members(draw, {
        "type": mostly(st.sampled_from(['"snapshot"', '"change"']), st.sampled_from(['"changes"', "1", "null"])),
        "instrument_name": mostly(st.just('"BTC_USD-PERPETUAL"'), st.sampled_from(['"X"', "5", "null", "[]"])),
        "change_id": INT_TEXTS,
        "prev_change_id": mostly(INT_TEXTS, st.just("null")),
        "timestamp": mostly(INT_TEXTS, NUMBER_TEXTS),
        "bids": mostly(levels_text(), st.sampled_from(["null", "{}", '"x"'])),
        "asks": mostly(levels_text(), st.sampled_from(["null", "{}", '"x"'])),
    }, space, UNKNOWN_FIELDS)
    params = members(draw, {
        "channel": mostly(st.just('"book.BTC_USD-PERPETUAL.raw"'),
                          st.sampled_from(['"book.X.100ms"', '"quote.X"', "5"])),
        "data": st.just(data),
    }, space, UNKNOWN_FIELDS)
    frame = members(draw, {
        "jsonrpc": mostly(st.just('"2.0"'), st.sampled_from(["null", "2"])),
        "method": mostly(st.just('"subscription"'), st.sampled_from(['"heartbeat"', "null"])),
        "params": st.just(params),
    }, space, UNKNOWN_FIELDS)
    if draw(st.integers(0, 19)) == 0:
        return frame.encode()
    return frame


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(book_frames())
def test_fast_path_gives_exactly_what_the_general_way_gives(raw: str | bytes) -> None:
    assert outcome(codec.decode_frame, raw) == outcome(general_way, raw)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_fast_path_agrees_on_any_text_naming_a_book_channel(tail: str | bytes) -> None:
    head = '{"method":"subscription","params":{"channel":"book.X.raw","data":'
    raw: str | bytes = head + tail if isinstance(tail, str) else head.encode() + tail
    assert outcome(codec.decode_frame, raw) == outcome(general_way, raw)


# ---- which way a frame takes -------------------------------------------------------------------


def test_the_sandbox_book_frame_takes_the_fast_path() -> None:
    msg = codec.decode_frame(SANDBOX_FRAME)
    assert type(msg) is codec.Notification and type(msg.data) is codec.BookMsg
    assert msg.channel == "book.BTC_USD-PERPETUAL.raw"
    book = codec.decode_book(msg.data)
    assert book is msg.data  # passed through, not decoded again
    assert (book.symbol, book.snapshot, book.change_id, book.prev_change_id) == ("BTC_USD-PERPETUAL", False, 3, 2)
    assert book.ts_ns == 1796605737704 * 1_000_000
    assert book.changes == ((Side.BUY, Decimal("49974.5"), Decimal(10)),)


def test_a_frame_outside_the_shape_takes_the_general_way_with_the_same_result() -> None:
    """A 2-element level, an unknown field, bytes: the general way decodes it (a dict to
    ``decode_book``), and the book is the same. Spacing does not matter to the fast path."""
    fast = outcome_of_book(codec.decode_frame(SANDBOX_FRAME).data)
    two_elements = SANDBOX_FRAME.replace('[["new",49974.5,10]]', "[[49974.5,10]]")
    unknown = SANDBOX_FRAME.replace('"type":"change"', '"type":"change","usIn":1')
    for raw in (two_elements, unknown, SANDBOX_FRAME.encode()):
        msg = codec.decode_frame(raw)
        assert type(msg) is codec.Notification and type(msg.data) is dict
        assert outcome_of_book(msg.data) == fast
    spaced = codec.decode_frame(json.dumps(json.loads(SANDBOX_FRAME), indent=1))
    assert type(spaced.data) is codec.BookMsg and outcome_of_book(spaced.data) == fast  # type: ignore[union-attr]


def test_a_refused_book_frame_raises_the_general_ways_error() -> None:
    for bad, kind in (('"change_id":3', '"change_id":true'), ("49974.5", "1e999999"), ("49974.5", "-1"),
                      ('"new"', '"newer"')):
        raw = SANDBOX_FRAME.replace(bad, kind)
        assert outcome(codec.decode_frame, raw) == outcome(general_way, raw)
        assert outcome(codec.decode_frame, raw)[0] in ("error", "notification")
        if outcome(codec.decode_frame, raw)[0] == "notification":
            assert outcome(codec.decode_frame, raw)[2][0] == "error"


def test_a_deep_amount_of_a_delete_is_too_deep_as_the_general_way_says() -> None:
    """A delete's amount is not read, yet the frame must still be refused when it nests past the
    reader's 64 levels (found by the property above)."""
    raw = SANDBOX_FRAME.replace('["new",49974.5,10]', '["delete",49974.5,' + "[" * 70 + "]" * 70 + "]")
    assert outcome(codec.decode_frame, raw)[:2] == ("error", "too_deep")
    assert outcome(codec.decode_frame, raw) == outcome(general_way, raw)
    shallow = SANDBOX_FRAME.replace('["new",49974.5,10]', '["delete",49974.5,[[1]]]')
    assert outcome(codec.decode_frame, shallow) == outcome(general_way, shallow)


def test_the_protocol_receives_book_frames_through_the_fast_path() -> None:
    protocol = PulseProtocol(["BTC_USD-PERPETUAL"])
    msg = protocol.receive(SANDBOX_FRAME)
    assert type(msg) is codec.Notification and type(msg.data) is codec.BookMsg
