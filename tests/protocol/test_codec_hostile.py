"""Hostile input to the three venue codecs (issue 17, items 2 and 3): a codec's decode entry points
raise only that codec's own error, with a ``kind`` from engine.venue.badinput, for any input; no number
can make them spin or overflow.

The explicit cases are the findings the issue names; the property tests are a bounded run of the
fuzzer in benchmarks/fuzz.py (same seeds, same drivers: every decode entry point of a codec) with
hypothesis choosing the bytes, the text, or the JSON values put into the documents' examples.
"""

from __future__ import annotations

import importlib.util
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import REPO

from adapters.kit import wirejson
from adapters.optimus import codec as optimus
from adapters.psx_feed import codec as psx_feed
from adapters.pulse import codec as pulse
from engine.venue.badinput import (
    BAD_NUMBER,
    BINARY,
    MALFORMED,
    NOT_JSON,
    TOO_DEEP,
    TOO_LARGE,
    UNKNOWN_MESSAGE,
)

_spec = importlib.util.spec_from_file_location("codec_fuzz", REPO / "benchmarks" / "fuzz.py")
assert _spec is not None and _spec.loader is not None
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

D = Decimal
TS = "2024-01-01T04:30:00.000Z"
RECV = 1_800_000_000 * 1_000_000_000
DEEP = "[" * 100_000


def psx(raw: str | bytes) -> psx_feed.Malformed:
    """The Malformed that decoding ``raw`` must raise."""
    with pytest.raises(psx_feed.Malformed) as caught:
        psx_feed.FeedDecoder("PSX", "L2").decode(raw, RECV)
    return caught.value


# ---- PSX Live Feed: the three frames of finding 1, and the kinds ------------------------------


def test_psx_a_list_as_message_type_is_malformed_not_a_type_error() -> None:
    assert psx('{"type":[]}').kind == MALFORMED
    assert psx('{"type":{"a":1}}').kind == MALFORMED


def test_psx_deep_nesting_is_too_deep_not_a_recursion_error() -> None:
    assert psx(DEEP).kind == TOO_DEEP
    assert psx('{"type":"tick","symbol":"MEBL","x":' + DEEP + "]" * 100_000 + "}").kind == TOO_DEEP


def test_psx_a_huge_exponent_is_a_bad_number_not_invalid_operation() -> None:
    assert psx('{"type":"tick","symbol":"MEBL","ltp":1e9999999999999999999}').kind == BAD_NUMBER
    assert psx('{"type":"tick","symbol":"MEBL","ltp":1e999999}').kind == BAD_NUMBER


def test_psx_a_price_beyond_any_market_is_refused() -> None:
    """Finite and parseable, but no price: bounded per field (|x| < 10**18) before the engine sees it."""
    assert psx('{"type":"tick","symbol":"MEBL","ltp":1e30,"ltq":1,"volume":5}').kind == BAD_NUMBER
    book = '{"type":"book","symbol":"MEBL","snapshot":true,"bids":[[187.45,1e40,3]],"asks":[]}'
    assert psx(book).kind == BAD_NUMBER


@pytest.mark.parametrize(("raw", "kind"), [
    (b'{"type":"welcome","level":"L2"}', BINARY),
    ("not json", NOT_JSON),
    ('{"type":"tick","symbol":"MEBL","ltp":NaN}', BAD_NUMBER),
    ('{"type":"tick","symbol":"' + "A" * (psx_feed.MAX_FRAME_CHARS + 1) + '"}', TOO_LARGE),
    ('{"type":"surprise"}', UNKNOWN_MESSAGE),
    ('{"type":"tick","symbol":"MEBL","ltp":"187.5"}', MALFORMED),
    # 002's literal whole book (no "snapshot"): its levels are read as strictly
    ('{"type":"book","symbol":"MEBL","bids":[[187.45,1e40,3]],"asks":[]}', BAD_NUMBER),
    ('{"type":"book","symbol":"MEBL","bids":{},"asks":[]}', MALFORMED),
    ('{"type":"book","symbol":[],"bids":[],"asks":[]}', MALFORMED),
])
def test_psx_every_refusal_says_its_kind(raw: str | bytes, kind: str) -> None:
    assert psx(raw).kind == kind


# ---- Pulse: unhashable words, NaN, the timestamp that froze the engine, overflow ---------------

ORDER = {"order_id": "a", "order_state": "open", "amount": 1, "direction": "buy",
         "time_in_force": "good_til_cancelled", "last_update_timestamp": 1612137600}


@pytest.mark.parametrize("value", [[], {}, ["buy"]])
def test_pulse_a_list_or_object_as_direction_or_time_in_force_is_not_known(value: Any) -> None:
    """Unknown words (``edit``) already decoded as no side / no time in force; a list or an object
    was a TypeError (unhashable) out of the codec."""
    order = pulse.decode_orders([dict(ORDER, direction=value, time_in_force=value)])[0]
    assert (order.side, order.tif) == (None, None)
    trade = pulse.decode_trades([{"trade_id": "t", "price": 1, "amount": 1, "direction": value}])[0]
    assert trade.side is None


@pytest.mark.parametrize("value", [[], {}, ["open"]])
def test_pulse_a_list_or_object_as_order_state_is_a_codec_error(value: Any) -> None:
    with pytest.raises(pulse.CodecError) as caught:
        pulse.decode_orders([dict(ORDER, order_state=value)])
    assert caught.value.kind == MALFORMED


def test_pulse_a_list_as_book_action_is_a_codec_error() -> None:
    data = {"type": "change", "instrument_name": "X", "change_id": 1, "bids": [[[], 1, 1]], "asks": []}
    with pytest.raises(pulse.CodecError) as caught:
        pulse.decode_book(data)
    assert caught.value.kind == MALFORMED


def test_pulse_nan_is_refused_never_a_float() -> None:
    with pytest.raises(pulse.CodecError) as caught:
        pulse.decode_message('{"jsonrpc":"2.0","id":7,"result":NaN}')
    assert caught.value.kind == BAD_NUMBER


def test_pulse_a_timestamp_of_1e999999_is_refused_before_int() -> None:
    """Finding 3: ``int(Decimal('1e999999'))`` held the GIL for 28-101 s. The reader refuses the
    exponent, and ``to_ns`` bounds the value before ``int()`` for any Decimal it is handed."""
    frame = ('{"jsonrpc":"2.0","method":"subscription","params":{"channel":"user.trades.X","data":'
             '{"trade_id":"t","price":1,"amount":1,"timestamp":1e999999}}}')
    with pytest.raises(pulse.CodecError) as caught:
        pulse.decode_message(frame)
    assert caught.value.kind == BAD_NUMBER
    for value in (D("1e999999"), D("-1e999999"), 10**20):
        with pytest.raises(pulse.CodecError) as caught:
            pulse.to_ns(value)
        assert caught.value.kind == BAD_NUMBER
    with pytest.raises(pulse.CodecError):
        pulse.decode_trade({"trade_id": "t", "price": 1, "amount": 1, "timestamp": D("1e999999")})


def test_pulse_login_expiry_cannot_overflow() -> None:
    huge = D("9.9999999999999999999999999999999e999999")  # minus now: decimal.Overflow before
    with pytest.raises(pulse.CodecError) as caught:
        pulse.decode_login({"access_token": "t", "expires_in": huge}, 1_704_083_400)
    assert caught.value.kind == BAD_NUMBER


def test_pulse_a_quoted_number_is_bounded_too() -> None:
    for text in ("1e999999", "9" * 100, "NaN"):
        with pytest.raises(pulse.CodecError) as caught:
            pulse.num(text, "amount")
        assert caught.value.kind == BAD_NUMBER
    assert pulse.num("187.50") == D("187.50")


def test_pulse_a_response_id_must_be_an_integer() -> None:
    """The adapter looks the id up among its pending requests: a list there was a TypeError."""
    for frame in ('{"jsonrpc":"2.0","id":[],"error":{"code":1,"message":"m"}}',
                  '{"jsonrpc":"2.0","id":{},"error":{"code":1,"message":"m"}}'):
        with pytest.raises(pulse.CodecError):
            pulse.decode_message(frame)
    assert pulse.decode_message('{"jsonrpc":"2.0","id":null,"error":{"code":1,"message":"m"}}').id is None


@pytest.mark.parametrize(("decode", "payload", "kind"), [
    (pulse.decode_order_book, {"instrument_name": "X", "bids": [[1, D("1e999999")]], "asks": []}, BAD_NUMBER),
    (pulse.decode_order_book, {"instrument_name": [], "bids": [], "asks": []}, MALFORMED),
    (pulse.decode_trade_page, {"trades": [[]], "has_more": []}, MALFORMED),
    (pulse.decode_trade_page, [{"trade_id": "t", "price": 1, "amount": 1, "timestamp": D("1e999999")}], BAD_NUMBER),
    (lambda summary: pulse.decode_account(summary, [], "BTC"), {"equity": D("NaN")}, BAD_NUMBER),
    (lambda positions: pulse.decode_account({"equity": 1}, positions, "BTC"),
     [{"instrument_name": "X", "direction": [], "size": D("-1e999999")}], BAD_NUMBER),
])
def test_pulse_the_fetched_book_trade_pages_and_account_refuse_with_their_kind(
    decode: Any, payload: Any, kind: str,
) -> None:
    """The decoders of issue 20's answers (get_order_book, get_user_trades_by_instrument,
    get_account_summary / get_positions) raise only the codec's error."""
    with pytest.raises(pulse.CodecError) as caught:
        decode(payload)
    assert caught.value.kind == kind


# ---- Optimus --------------------------------------------------------------------------------


def test_optimus_webhook_order_quantity_cannot_overflow() -> None:
    huge = D("9.9999999999999999999999999999999e999999")
    data = {"order_id": "OPT-1", "client_order_id": "mm-1", "symbol": "MEBL", "side": "buy",
            "status": "open", "remaining_quantity": huge, "filled_quantity": huge}
    event = optimus.WebhookEvent("order.confirmed", "e1", 0, data)
    with pytest.raises(optimus.CodecError) as caught:
        event.order()
    assert caught.value.kind == BAD_NUMBER


@pytest.mark.parametrize(("raw", "kind"), [
    (b'{"event":"order.execution","data":[1]}', MALFORMED),
    (b'{"event":[],"data":{}}', MALFORMED),
    (b'{"event":"order.execution","event_id":[],"data":{}}', MALFORMED),
    (b'{"event":"order.execution","occurred_at":1e999999,"data":{}}', BAD_NUMBER),
])
def test_optimus_a_webhook_without_event_id_or_occurred_at_is_still_read_strictly(raw: bytes, kind: str) -> None:
    """000's literal webhook may lack event_id/occurred_at (the receiver passes its receive time);
    what it does carry raises only the codec's error."""
    with pytest.raises(optimus.CodecError) as caught:
        optimus.decode_webhook(raw, RECV)
    assert caught.value.kind == kind


@pytest.mark.parametrize(("raw", "kind"), [
    (DEEP.encode(), TOO_DEEP),
    (b'{"status":"success","code":200,"data":{"x":1e9999999999999999999},"request_id":"r"}', BAD_NUMBER),
    (b'{"status":"success","code":200,"data":NaN,"request_id":"r"}', BAD_NUMBER),
    (b'{"status":"success","code":200,"data":{},"request_id":"\xff"}', NOT_JSON),
    (b'{"status":"success","code":1' + b"0" * 30 + b',"data":{},"request_id":"r"}', BAD_NUMBER),
])
def test_optimus_bodies_are_refused_with_their_kind(raw: bytes, kind: str) -> None:
    with pytest.raises(optimus.CodecError) as caught:
        optimus.parse_envelope(200, raw)
    assert caught.value.kind == kind


# ---- the shared reader ------------------------------------------------------------------------


def test_reader_depth_bound_is_exact_and_ignores_brackets_in_strings() -> None:
    reader = wirejson.Reader(max_depth=8)
    assert reader.loads("[" * 8 + "]" * 8) == json.loads("[" * 8 + "]" * 8)
    assert reader.loads('{"a":' * 8 + "1" + "}" * 8)
    with pytest.raises(wirejson.WireError) as caught:
        reader.loads("[" * 9 + "]" * 9)
    assert caught.value.kind == TOO_DEEP
    assert reader.loads('["' + "[" * 50 + '", "\\"[[[[[[[[[[[["]') == ["[" * 50, '"' + "[" * 12]
    many = json.dumps([[i] for i in range(500)])  # many brackets, shallow
    assert reader.loads(many)[499] == [499]


def test_reader_a_cut_frame_is_not_json_unless_already_too_deep() -> None:
    reader = wirejson.Reader(max_depth=8)
    for cut in ('[[1],[2],[3],[4],[5],[6],[7],[8],[9]', "[" * 8, '{"a":[[[["x'):
        with pytest.raises(wirejson.WireError) as caught:
            reader.loads(cut)
        assert caught.value.kind == NOT_JSON, cut
    with pytest.raises(wirejson.WireError) as caught:
        reader.loads("[" * 9)
    assert caught.value.kind == TOO_DEEP


def test_reader_numbers_are_exact_and_bounded_in_digits_and_exponent() -> None:
    reader = wirejson.Reader()
    assert str(reader.loads("187.50")) == "187.50"  # the text's own digits, never a float
    assert reader.loads("[1e64, 1e-64, 12]") == [D("1e64"), D("1e-64"), 12]
    assert reader.loads("1." + "1" * 63) == D("1." + "1" * 63)
    for text in ("1e65", "1e-65", "1." + "1" * 64, "1e9999999999999999999", "NaN", "-Infinity", "9" * 4301):
        with pytest.raises(wirejson.WireError) as caught:
            reader.loads(text)
        assert caught.value.kind == BAD_NUMBER, text


def test_reader_refuses_what_is_not_utf8_json_text() -> None:
    reader = wirejson.Reader(max_chars=100)
    for raw, kind in ((b"\xff\xfe", NOT_JSON), (b"\xef\xbb\xbf[1]", NOT_JSON), ("[1] x", NOT_JSON),
                      ("[" + "1," * 60 + "1]", TOO_LARGE)):
        with pytest.raises(wirejson.WireError) as caught:
            reader.loads(raw)
        assert caught.value.kind == kind
    assert reader.loads(b' {"a": [1]} ') == {"a": [1]}


# ---- property tests: a bounded run of the fuzzer's drivers ----------------------------------

CODECS = fuzz.CODECS
SEEDS = {codec: fuzz.SEEDS[codec]() for codec in CODECS}
#: the codecs whose documents speak JSON (MidChains FIX does not: its frames are tag=value text)
JSON_CODECS = tuple(codec for codec in CODECS if fuzz.tree_of(SEEDS[codec][0]) is not None)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

numbers = st.from_regex(r"-?[0-9]{1,80}(\.[0-9]{1,80})?([eE][-+]?[0-9]{1,8})?", fullmatch=True).map(fuzz.Raw)
scalars = (st.none() | st.booleans() | st.integers() | st.text(max_size=20) | numbers
           | st.sampled_from(fuzz.HOSTILE_VALUES))
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def drive(codec: str, raw: str | bytes) -> None:
    """Every decode entry point of ``codec`` on ``raw`` (benchmarks/fuzz.py's driver): raises if
    anything but the codec's error escapes, or the error has no badinput kind."""
    fuzz.DRIVERS[codec]()(raw, [""])


@pytest.mark.parametrize("codec", CODECS)
@PROPERTY
@given(data=st.binary(max_size=400))
def test_any_bytes_raise_only_the_codec_error(codec: str, data: bytes) -> None:
    drive(codec, data)


@pytest.mark.parametrize("codec", CODECS)
@PROPERTY
@given(data=st.text(max_size=400))
def test_any_text_raises_only_the_codec_error(codec: str, data: str) -> None:
    drive(codec, data)


@pytest.mark.parametrize("codec", JSON_CODECS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pick=st.integers(0, 10**6), where=st.integers(0, 10**6), value=json_values)
def test_any_json_value_in_a_documented_message_raises_only_the_codec_error(
    codec: str, pick: int, where: int, value: Any,
) -> None:
    seeds = SEEDS[codec]
    tree = fuzz.tree_of(seeds[pick % len(seeds)])
    nodes: list[tuple[Any, Any]] = []
    fuzz.nodes_of(tree, nodes)
    container, key = nodes[where % len(nodes)]
    container[key] = value
    drive(codec, fuzz.dump(tree))


@pytest.mark.parametrize("codec", CODECS)
def test_the_hostile_seeds_of_the_issue_raise_only_the_codec_error(codec: str) -> None:
    for raw in fuzz.hostile_seeds(codec):
        drive(codec, raw)

