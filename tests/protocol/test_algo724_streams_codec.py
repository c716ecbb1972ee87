"""The ALG-3 publication codec (adapters/algo724/streams_codec.py): shapes, decimals, and hostile
input that may raise only StreamCodecError."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.algo724.streams_codec import (
    AccountNote,
    BookMessage,
    ExecutionMessage,
    OrderMessage,
    StreamCodecError,
    TradeMessage,
    account_channel,
    book_channel,
    book_payload,
    decode,
    decode_book_snapshot,
    decode_text,
    execution_payload,
    order_payload,
    parse_channel,
    trade_channel,
    trade_payload,
)

D = Decimal
INSTRUMENT = "BINANCE:BTC/USDT"
ACCOUNT = "14f773c5-2079-41e0-90e4-340a7b4d3391"
BOOK = book_channel(INSTRUMENT)
TRADES = trade_channel(INSTRUMENT)
ACCOUNT_CH = account_channel(ACCOUNT)

# document 003's REST OrderBook example ("Get order book"), the base of the book payload (ALG-3)
DOC_ORDER_BOOK = {"instrumentId": "BINANCE:BTC/USDT", "venue": "BINANCE", "symbol": "BTC/USDT",
                  "asks": [["1234.56789000", "1234.56789000"]], "bids": [["1234.56789000", "1234.56789000"]],
                  "timestamp": 1632933600000}
DOC_EXECUTION = {"executionId": "497f6eca-6276-4993-bfeb-53cbbbba6f08", "externalTradeId": "binance-exec-12345",
                 "venue": "BINANCE", "instrumentId": "BINANCE:BTC/USDT", "orderSide": "BUY",
                 "executedQuantity": "1234.56789000", "executedPrice": "1234.56789000",
                 "executedCost": "1234.56789000",
                 "fees": [{"security": "BINANCE:BTC", "asset": "BTC", "venue": "BINANCE", "quantity": "1234.56789000"}],
                 "executedAt": 1632933600000, "executedAtDateTime": "2019-08-24T14:15:22Z"}


def test_channels_keep_instrument_ids_with_colons_and_slashes():
    assert BOOK == "market:orderBook:BINANCE:BTC/USDT"
    assert parse_channel(BOOK) == ("book", INSTRUMENT)
    assert parse_channel(TRADES) == ("trade", INSTRUMENT)
    assert parse_channel(ACCOUNT_CH) == ("account", ACCOUNT)
    for bad in ("market:orderBook:", "news", "market:ticker:X", ""):
        with pytest.raises(StreamCodecError):
            parse_channel(bad)


def test_the_documents_order_book_with_a_sequence_is_a_snapshot():
    message = decode(BOOK, {**DOC_ORDER_BOOK, "sequence": 7})
    assert type(message) is BookMessage and message.snapshot and message.sequence == 7
    assert message.bids == ((D("1234.56789000"), D("1234.56789000")),)
    assert message.ts_ms == 1632933600000


def test_a_book_without_a_sequence_is_refused():
    with pytest.raises(StreamCodecError, match="sequence"):
        decode(BOOK, DOC_ORDER_BOOK)


def test_a_delta_may_remove_a_level_with_zero_and_a_snapshot_may_not():
    delta = decode(BOOK, {"type": "DELTA", "sequence": 2, "bids": [["100", "0"]], "asks": []})
    assert delta.bids == ((D("100"), D("0")),) and not delta.snapshot
    with pytest.raises(StreamCodecError):
        decode(BOOK, {"type": "SNAPSHOT", "sequence": 2, "bids": [["100", "0"]], "asks": []})
    with pytest.raises(StreamCodecError):
        decode(BOOK, {"type": "DELTA", "sequence": 2, "bids": [], "asks": [], "instrumentId": "OKX:BTC/USDT"})


def test_payloads_encoded_for_the_sandbox_decode_to_the_same_values():
    book = book_payload(INSTRUMENT, "BINANCE", 3, False, [(D("100.10"), D("0"))], [(D("1E+2"), D("0.5"))], 5)
    assert book["asks"] == [["100", "0.5"]]  # never an exponent on the wire
    assert decode_text(BOOK, json.dumps(book)).asks == ((D("100"), D("0.5")),)
    trade = decode(TRADES, trade_payload(INSTRUMENT, "BINANCE", "t1", D("1.5"), D("2"), "SELL", 9))
    assert type(trade) is TradeMessage and (trade.price, trade.qty, trade.side) == (D("1.5"), D("2"), "SELL")
    execution = decode(ACCOUNT_CH, execution_payload(ACCOUNT, "order-1", DOC_EXECUTION))
    assert type(execution) is ExecutionMessage and execution.trade_order_id == "order-1"
    assert (execution.fee, execution.fee_asset) == (D("1234.56789000"), "BTC")
    snapshot = decode_book_snapshot(INSTRUMENT, book_payload(INSTRUMENT, "BINANCE", 1, True, [], [], 0))
    assert snapshot.snapshot and snapshot.sequence == 1


def test_an_order_publication_carries_the_documents_order_object():
    order = {"tradeOrderId": "8f3c", "tradingAccountId": ACCOUNT, "instrumentId": INSTRUMENT, "orderSide": "BUY",
             "status": "PARTIALLY_FILLED", "limitPrice": "1234.56789000", "quantity": "1234.56789000",
             "executedQuantity": "1234.56789000", "rejectReason": "", "cancelReason": "",
             "updatedAt": 1632933600000, "executions": [DOC_EXECUTION]}
    message = decode(ACCOUNT_CH, order_payload(order))
    assert type(message) is OrderMessage and message.status == "PARTIALLY_FILLED"
    assert [e.execution_id for e in message.executions] == [DOC_EXECUTION["executionId"]]
    assert type(decode(ACCOUNT_CH, {"type": "BALANCE", "data": {"free": "1"}})) is AccountNote
    with pytest.raises(StreamCodecError):
        decode(ACCOUNT_CH, order_payload({**order, "tradingAccountId": "someone-else"}))


@pytest.mark.parametrize("text", ["1e5", "+1", ".5", "1.", " 1", "1 ", "NaN", "Infinity", "0x10", "1_000",
                                  "\u0661", "1.5\n", "", "-", "--1", "1" * 65])
def test_decimals_outside_the_documents_pattern_are_refused(text):
    with pytest.raises(StreamCodecError) as info:
        decode(TRADES, {"tradeId": "t", "price": text, "quantity": "1", "side": "BUY"})
    assert info.value.kind in ("bad_number", "malformed")


@pytest.mark.parametrize("value", [100, 100.5, True, None, ["1"], {"v": "1"}])
def test_numbers_must_be_decimal_strings_never_json_numbers(value):
    with pytest.raises(StreamCodecError):
        decode(TRADES, {"tradeId": "t", "price": value, "quantity": "1", "side": "BUY"})


@pytest.mark.parametrize("body", [
    {"sequence": True}, {"sequence": 1.0}, {"sequence": -1}, {"sequence": 2**63},
    {"sequence": 1, "bids": [["1", "1", "1"]]}, {"sequence": 1, "bids": "x"},
    {"sequence": 1, "bids": [["1", "1"]] * 1001}, {"sequence": 1, "type": "PATCH"}, {"sequence": 1, "type": 1},
])
def test_hostile_book_bodies_are_codec_errors(body):
    with pytest.raises(StreamCodecError):
        decode(BOOK, body)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(raw=st.binary(max_size=512), channel=st.sampled_from([BOOK, TRADES, ACCOUNT_CH, "junk"]))
def test_any_bytes_raise_only_the_codec_error(raw, channel):
    try:
        decode_text(channel, raw)
    except StreamCodecError:
        pass


_KEYS = st.sampled_from(["type", "data", "sequence", "bids", "asks", "price", "quantity", "side", "tradeId",
                         "tradeOrderId", "instrumentId", "status", "executions", "executionId", "executedPrice",
                         "executedQuantity", "orderSide", "fees", "timestamp", "tradingAccountId"])
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    | st.sampled_from(["1", "-0.5", "BUY", "SELL", "ORDER", "EXECUTION", "DELTA", "SNAPSHOT", INSTRUMENT, ACCOUNT]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        _KEYS | st.text(max_size=5), inner, max_size=8),
    max_leaves=30)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=_json, channel=st.sampled_from([BOOK, TRADES, ACCOUNT_CH]))
def test_any_json_value_raises_only_the_codec_error(data, channel):
    """What the library hands over is already parsed (stdlib json): any value, any shape."""
    try:
        decode(channel, data)
    except StreamCodecError:
        pass


def test_deep_nesting_and_huge_numbers_in_text_are_codec_errors():
    for raw in ("[" * 100_000, '{"sequence": 1' + "0" * 5000 + "}", b"\xff\xfe", '{"sequence": 1e999999}'):
        with pytest.raises(StreamCodecError):
            decode_text(BOOK, raw)
