"""Pulse codec without sockets: the document's example requests and responses fed verbatim
(tests/fixtures/pulse, copied line for line from shared/seeds/004_df0ce6c3f341e5af.txt), wrapped in
the JSON-RPC envelope the adapter assumes (PUL-1), and what the codec makes of bad input."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from pathlib import Path

import pytest
from support import json_leaves

from adapters.pulse import codec
from adapters.pulse.codec import CodecError, Heartbeat, Notification, Response, RpcError
from engine.model import Liquidity, Order, OrderStatus, OrderType, Side, TimeInForce
from engine.rejects import REJECT_CODES, Reject

D = Decimal
FIXTURES = Path(__file__).parent.parent / "fixtures" / "pulse"
S = OrderStatus


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def as_response(name: str, req_id: int = 7) -> str:
    """The document prints bare results; on the wire they sit in ``result`` (VENUES.md 5.2)."""
    return '{"jsonrpc":"2.0","id":' + str(req_id) + ',"result":' + fixture(name) + "}"


def as_notification(name: str, channel: str) -> str:
    head = '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"' + channel + '","data":'
    return head + fixture(name) + "}}"


def request_params(name: str) -> dict:
    """A documented request body: the envelope's params where the document shows one, else the
    bare params object (the document mixes both, PUL-1)."""
    body = json.loads(fixture(name), parse_float=Decimal)
    return body["params"] if "params" in body else body


def order(**kw: object) -> Order:
    args: dict = {"client_id": "mm-1", "strategy": "mm", "venue": "pulse", "symbol": "BTC_USD-PERPETUAL",
                  "side": Side.BUY, "qty": D(10), "price": D("50000.5")}
    args.update(kw)
    return Order(**args)


# ---- every fixture is the document's text ------------------------------------------------


def test_every_fixture_is_json_as_the_document_prints_it() -> None:
    """Each block parses as printed; that it is the document's text, line for line, is checked
    against the document itself by tests/protocol/test_fixtures.py (tests/fixtures/index.toml)."""
    files = sorted(p.name for p in FIXTURES.glob("*.json"))
    assert len(files) >= 40
    for name in files:
        json.loads(fixture(name))


# ---- envelope --------------------------------------------------------------------------------


def test_request_envelope_uses_the_method_path_and_exact_decimals() -> None:
    frame = codec.encode_request(3, "private/buy", {"amount": D("10"), "price": D("1E+2"), "x": D("0.00000001")})
    assert frame == ('{"jsonrpc":"2.0","id":3,"method":"private/buy",'
                     '"params":{"amount":10,"price":100,"x":0.00000001}}')
    parsed = json.loads(frame, parse_float=Decimal)
    assert parsed["params"]["x"] == D("0.00000001")


def test_a_float_never_reaches_the_wire() -> None:
    with pytest.raises(CodecError, match="Decimal"):
        codec.encode_request(1, "private/buy", {"amount": 0.1})


def test_documented_results_decode_inside_the_envelope() -> None:
    msg = codec.decode_message(as_response("private.get_cancel_on_disconnect.response.json"))
    assert isinstance(msg, Response) and msg.id == 7 and msg.result is True
    for name in ("public.subscribe.response.json", "private.subscribe.response.json"):
        msg = codec.decode_message(as_response(name))
        assert isinstance(msg, Response) and msg.result == "string"  # PUL-14: documented as "string"
    msg = codec.decode_message(as_response("public.set_heartbeat.response.json"))
    assert isinstance(msg, Response) and msg.result == {"description": "ok", "response": None, "status": 200}


def test_error_answers_carry_the_venue_status() -> None:
    msg = codec.decode_message('{"jsonrpc":"2.0","id":9,"error":{"code":10,"message":"MMP frozen"}}')
    assert isinstance(msg, RpcError)
    assert (msg.id, msg.code, msg.message) == (9, 10, "MMP frozen")
    assert codec.reject_code(msg.code) == Reject.MMP_FROZEN
    assert "Pulse error 10 (MMP frozen): MMP frozen" == codec.describe_error(msg)


def test_heartbeat_and_test_request_are_recognised() -> None:
    beat = codec.decode_message('{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}')
    probe = codec.decode_message('{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}')
    assert isinstance(beat, Heartbeat) and beat.kind == "heartbeat"
    assert isinstance(probe, Heartbeat) and probe.kind == "test_request"


@pytest.mark.parametrize("raw", [
    "not json",
    '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.',  # cut mid-message
    "[1, 2]",
    '{"jsonrpc":"2.0","method":"subscription","params":{"data":{}}}',
    '{"jsonrpc":"2.0","id":1}',
    '{"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}}',
    '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"nap"}}',
    '{"jsonrpc":"2.0","method":"surprise"}',
    b"\xff\xfe",
])
def test_garbage_is_a_codec_error(raw: str | bytes) -> None:
    with pytest.raises(CodecError):
        codec.decode_message(raw)


# ---- authentication --------------------------------------------------------------------------


def test_login_response_example_has_an_epoch_for_expires_in() -> None:
    msg = codec.decode_message(as_response("public.auth.response.json"))
    login = codec.decode_login(msg.result, now_s=1_516_238_122)
    # PUL-3: 1516239022 is read as the expiry instant: 900 s after "now"
    assert login.expires_in_s == 900
    assert login.scope == "connection mainaccount"
    assert login.access_token.startswith("eyJ") and login.refresh_token.startswith("eyJ")
    assert "eyJ" not in repr(login)  # tokens are secrets


def test_login_with_a_lifetime_in_seconds() -> None:
    login = codec.decode_login({"access_token": "a", "refresh_token": "r", "expires_in": 900}, now_s=1_700_000_000)
    assert login.expires_in_s == 900


def test_client_signature_is_deribits_hmac_sha256() -> None:
    params = codec.auth_params("client_signature", client_id="cid", client_secret="s3cret",
                               timestamp_ms=1_700_000_000_000, nonce="abc", data="")
    expected = hmac.new(b"s3cret", b"1700000000000\nabc\n", hashlib.sha256).hexdigest()
    assert params == {"grant_type": "client_signature", "client_id": "cid", "timestamp": 1_700_000_000_000,
                      "signature": expected, "nonce": "abc", "data": ""}
    # string to sign "1700000000000\nabc\n" (timestamp, nonce, data), key = client secret
    assert codec.signature("s3cret", 1_700_000_000_000, "abc") == (
        "75eb2e0d23131f3fc633bd4f469cdbf8f8787568e305edc42de4b0c72717cc3b"
    )
    assert "s3cret" not in json.dumps(params)  # the signature grant never sends the secret


def test_refresh_and_credentials_grants_send_only_what_they_need() -> None:
    assert codec.auth_params("refresh_token", refresh_token="r1") == {"grant_type": "refresh_token",
                                                                      "refresh_token": "r1"}
    assert codec.auth_params("client_credentials", client_id="c", client_secret="s") == {
        "grant_type": "client_credentials", "client_id": "c", "client_secret": "s"}
    with pytest.raises(CodecError):
        codec.auth_params("password")


# ---- orders ----------------------------------------------------------------------------------


def test_buy_request_uses_only_documented_fields() -> None:
    documented = request_params("private.buy.request.json")
    method, params = codec.order_request(order(mmp=True, tif=TimeInForce.GTC))
    assert method == "private/buy"
    assert set(params) <= set(documented)
    for key, value in params.items():  # same JSON types as the document's example
        assert type(value) is type(documented[key]) or (isinstance(documented[key], int) and isinstance(value, D))
    assert params["label"] == "mm-1" and params["mmp"] is True and params["price"] == D("50000.5")
    assert params["time_in_force"] == "good_til_cancelled" and params["type"] == "limit"


def test_sell_request_matches_the_documented_sell_body() -> None:
    documented = request_params("private.sell.request.json")
    method, params = codec.order_request(order(side=Side.SELL, tif=TimeInForce.IOC))
    assert method == "private/sell"
    assert set(params) <= set(documented)
    assert params["time_in_force"] == "immediate_or_cancel"


def test_market_order_sends_no_price_and_fok_maps() -> None:
    _, params = codec.order_request(order(price=None, order_type=OrderType.MARKET, tif=TimeInForce.FOK))
    assert "price" not in params and params["type"] == "market" and params["time_in_force"] == "fill_or_kill"


def test_post_only_day_order_goes_out_good_til_cancelled() -> None:
    # PUL-12: post_only is "Only valid in combination with time_in_force=good_til_cancelled"
    _, params = codec.order_request(order(post_only=True, tif=TimeInForce.DAY))
    assert params["time_in_force"] == "good_til_cancelled" and params["post_only"] is True
    _, params = codec.order_request(order(tif=TimeInForce.DAY))
    assert params["time_in_force"] == "good_til_day"


def test_edit_request_matches_the_documented_edit_body() -> None:
    documented = request_params("private.edit.request.json")
    params = codec.edit_params("646f0ae259c5e9efdb83c564", D(10), D(50000))
    assert set(params) <= set(documented)
    assert params == {"order_id": "646f0ae259c5e9efdb83c564", "amount": D(10), "price": D(50000)}
    # amount is required though described "Optional" (PUL-5): a price-only edit still sends it
    assert codec.edit_params("x", D(20), None) == {"order_id": "x", "amount": D(20)}


def test_buy_response_decodes_order_and_trade() -> None:
    msg = codec.decode_message(as_response("private.buy.response.json"))
    pulse_order = codec.decode_order(msg.result["order"])
    assert pulse_order.order_id == "60c72b2f9b1e8a001c8e4d5a"
    assert pulse_order.label == "my_order" and pulse_order.side is Side.BUY
    assert (pulse_order.state, pulse_order.amount, pulse_order.filled) == ("open", D(10), D(10))
    assert pulse_order.price == D(50000) and pulse_order.mmp and pulse_order.post_only
    assert pulse_order.status is S.PARTIALLY_FILLED  # "open" with a fill
    assert pulse_order.tif is TimeInForce.GTC
    assert pulse_order.ts_ns == 1_612_137_600 * 1_000_000_000  # a seconds-sized example timestamp
    (trade,) = codec.decode_trades(msg.result["trades"])
    assert (trade.trade_id, trade.order_id, trade.label) == ("66fa560b912a3148d07efacf", "60c72b2f9b1e8a001c8e4d5a",
                                                             "my_trade")
    assert (trade.price, trade.amount, trade.side, trade.trade_seq) == (D(50000), D(10), Side.BUY, 1)
    assert trade.liquidity is Liquidity.UNKNOWN and trade.fee is None  # not in the document (PUL-8): the schedule


@pytest.mark.parametrize("name", [
    "private.sell.response.json", "private.edit.response.json",
])
def test_sell_and_edit_responses_decode(name: str) -> None:
    result = codec.decode_message(as_response(name)).result
    assert codec.decode_order(result["order"]).order_id == "60c72b2f9b1e8a001c8e4d5a"
    assert len(codec.decode_trades(result["trades"])) == 1


@pytest.mark.parametrize("name", [
    "private.cancel.response.json", "private.cancel_all.response.json",
    "private.cancel_all_by_instrument.response.json", "private.get_open_orders_by_instrument.response.json",
    "private.get_order_state.response.json", "private.get_order_state_by_label.response.json",
])
def test_order_results_decode_as_object_or_list(name: str) -> None:
    # get_order_state is documented as an array where Deribit returns one object (PUL-5): both work
    orders = codec.decode_orders(codec.decode_message(as_response(name)).result)
    assert [o.order_id for o in orders] == ["60c72b2f9b1e8a001c8e4d5a"]
    venue_order = orders[0].to_venue_order("pulse")
    assert venue_order.client_id == "my_order" and venue_order.cum_qty == D(10)
    assert venue_order.status is S.PARTIALLY_FILLED and venue_order.price == D(50000)


def test_user_trades_by_order_result_lacks_the_order_id() -> None:
    (trade,) = codec.decode_trades(codec.decode_message(as_response("private.get_user_trades_by_order.response.json"))
                                   .result)
    assert trade.order_id == "" and trade.label == ""  # PUL-8: attribution falls to the adapter
    assert trade.amount == D(10)


def test_user_trades_by_instrument_answer_is_a_page_with_or_without_has_more() -> None:
    """The document's answer is a bare array (no ``has_more``: None, the adapter judges by a full
    page); Deribit's ``{trades, has_more}`` is read too; anything else is refused."""
    result = codec.decode_message(as_response("private.get_user_trades_by_instrument.response.json")).result
    (trade,), has_more = codec.decode_trade_page(result)
    assert has_more is None and (trade.trade_id, trade.amount, trade.price) == ("66fa560b912a3148d07efacf", 10, 50000)
    assert trade.ts_ns == 1_612_137_600 * 1_000_000_000  # the example's timestamp is seconds (VENUES.md 5.13)
    trades, has_more = codec.decode_trade_page({"trades": result, "has_more": True})
    assert [t.trade_id for t in trades] == [trade.trade_id] and has_more is True
    for bad in ({"has_more": False}, "trades", None):
        with pytest.raises(CodecError):
            codec.decode_trade_page(bad)
    documented = request_params("private.get_user_trades_by_instrument.request.json")
    params = codec.user_trades_params("BTC-31JUN23-50000-C", 1590480712800, 20)
    assert params == {k: documented[k] for k in ("instrument_name", "start_timestamp", "count", "sorting")}


@pytest.mark.parametrize("state,filled,status", [
    ("open", "0", S.NEW), ("open", "5", S.PARTIALLY_FILLED), ("partially_filled", "5", S.PARTIALLY_FILLED),
    ("filled", "10", S.FILLED), ("cancelled", "0", S.CANCELLED), ("untriggered", "0", S.NEW),
    ("rejected", "0", S.REJECTED),
])
def test_order_states_map_onto_the_model(state: str, filled: str, status: OrderStatus) -> None:
    obj = {"order_id": "x", "order_state": state, "amount": 10, "filled_amount": D(filled)}
    assert codec.decode_order(obj).status is status


def test_unknown_order_state_is_an_error() -> None:
    with pytest.raises(CodecError, match="order_state"):
        codec.decode_order({"order_id": "x", "order_state": "sleeping", "amount": 1})


# ---- subscriptions ---------------------------------------------------------------------------


def test_book_example_levels_are_undocumented_and_refused() -> None:
    msg = codec.decode_message(as_notification("book.instrument_name.interval.response.json",
                                               "book.BTC_USD-PERPETUAL.raw"))
    assert isinstance(msg, Notification) and msg.channel == "book.BTC_USD-PERPETUAL.raw"
    assert msg.data["change_id"] == 1 and msg.data["type"] == "snapshot"
    with pytest.raises(CodecError, match="book level"):
        codec.decode_book(msg.data)  # PUL-6: "[[null]]" says nothing; a clear error, not a guess


def test_book_snapshot_and_change_in_the_assumed_deribit_format() -> None:
    snapshot = codec.decode_book({
        "type": "snapshot", "instrument_name": "BTC_USD-PERPETUAL", "change_id": 5, "prev_change_id": 4,
        "timestamp": 1687352432143, "bids": [["new", D("49999.5"), 20]], "asks": [["new", D("50000.5"), 10]],
    })
    assert snapshot.snapshot and snapshot.change_id == 5
    assert snapshot.changes == ((Side.BUY, D("49999.5"), D(20)), (Side.SELL, D("50000.5"), D(10)))
    assert snapshot.ts_ns == 1_687_352_432_143_000_000
    change = codec.decode_book({
        "type": "change", "instrument_name": "BTC_USD-PERPETUAL", "change_id": 6, "prev_change_id": 5,
        "timestamp": 1687352432144, "bids": [["delete", D("49999.5"), 0], [49999, 30]],
        "asks": [["change", D("50000.5"), 5]],
    })
    assert not change.snapshot and change.prev_change_id == 5
    assert change.changes == ((Side.BUY, D("49999.5"), D(0)), (Side.BUY, D(49999), D(30)),
                              (Side.SELL, D("50000.5"), D(5)))
    assert all(type(x) is Decimal for _, p, q in change.changes for x in (p, q))


@pytest.mark.parametrize("bad", [
    {"type": "delta", "instrument_name": "X", "change_id": 1},
    {"type": "change", "instrument_name": "X", "change_id": "1"},
    {"type": "change", "instrument_name": "X", "change_id": 1, "bids": [["upsert", 1, 1]]},
    {"type": "change", "instrument_name": "X", "change_id": 1, "bids": [["new", -1, 1]]},
    {"type": "change", "instrument_name": "X", "change_id": 1, "bids": [[1, 2, 3, 4]]},
])
def test_bad_book_payloads_are_errors(bad: dict) -> None:
    with pytest.raises(CodecError):
        codec.decode_book(bad)


def test_order_book_example_levels_are_undocumented_and_refused() -> None:
    """``private/get_order_book`` (the fetch when a book's snapshot is overdue) prints its levels
    as ``[[null]]`` like the channel (PUL-6): refused with a clear error, not a guessed book."""
    result = codec.decode_message(as_response("private.get_order_book.response.json")).result
    assert (result["instrument_name"], result["timestamp"]) == ("BTC_USD-PERPETUAL", 1550757626706)
    with pytest.raises(CodecError, match="book level"):
        codec.decode_order_book(result)


def test_order_book_example_with_levels_in_the_assumed_format_is_a_snapshot() -> None:
    """The documented answer with levels in the assumed Deribit ``[price, amount]`` form (the only
    change): a snapshot of its instrument at its time, with no change id (the next change starts
    the chain); the document's other fields (greeks, stats, ...) are not read."""
    result = codec.decode_message(as_response("private.get_order_book.response.json")).result
    result.update(bids=[[D("3955.5"), D("2.5")]], asks=[[D("3956"), 1]])
    book = codec.decode_order_book(result)
    assert (book.symbol, book.snapshot, book.change_id, book.prev_change_id) == (
        "BTC_USD-PERPETUAL", True, codec.NO_CHANGE_ID, None)
    assert book.ts_ns == 1_550_757_626_706_000_000
    assert book.changes == ((Side.BUY, D("3955.5"), D("2.5")), (Side.SELL, D(3956), D(1)))


def test_quote_example() -> None:
    msg = codec.decode_message(as_notification("quote.instrument_name.response.json", "quote.BTC_USD-PERPETUAL"))
    quote = codec.decode_quote(msg.data)
    assert (quote.symbol, quote.bid, quote.bid_qty, quote.ask, quote.ask_qty) == (
        "BTC_USD-PERPETUAL", D(49900), D(1), D(50000), D("1.5"))
    assert type(quote.ask_qty) is Decimal


def test_user_changes_example() -> None:
    msg = codec.decode_message(as_notification("user.changes.instrument_name.interval.response.json",
                                               "user.changes.BTC-31JUN23-50000-C.raw"))
    orders = codec.decode_orders(msg.data["orders"])
    trades = codec.decode_trades(msg.data["trades"])
    assert orders[0].order_id == "60c72b2f9b1e8a001c8e4d5a" and trades[0].trade_id == "66fa560b912a3148d07efacf"
    assert trades[0].order_id == ""  # PUL-8


def test_user_orders_and_user_trades_examples() -> None:
    data = codec.decode_message(as_notification("user.orders.instrument_name.raw.response.json", "c")).data
    assert codec.decode_orders(data)[0].label == "my_order"
    data = codec.decode_message(as_notification("user.trades.instrument_name.raw.response.json", "c")).data
    (trade,) = codec.decode_trades(data)  # one object per message in the document; Deribit sends a list
    assert trade.price == D(50000) and trade.amount == D(10)


def test_mmp_trigger_example() -> None:
    data = codec.decode_message(as_notification("user.mmp_trigger.index_name.response.json",
                                                "user.mmp_trigger.btc_usd")).data
    # PUL-9: the example 1640995200 is seconds-sized; ms is assumed elsewhere, seconds read as seconds
    assert codec.decode_mmp_trigger(data) == ("btc_usd", 1_640_995_200 * 1_000_000_000)
    assert codec.decode_mmp_trigger({"index_name": "btc_usd", "frozen_until": 1_640_995_200_123}) == (
        "btc_usd", 1_640_995_200_123_000_000)
    assert codec.decode_mmp_trigger({"index_name": "btc_usd", "frozen_until": 0}) == ("btc_usd", 0)


def test_heartbeat_trade_example() -> None:
    data = codec.decode_message(as_notification("heartbeat_trade.response.json", "heartbeat_trade")).data
    assert codec.decode_heartbeat_trade(data) is True
    assert codec.decode_heartbeat_trade({"status_trade": "inactive"}) is False
    with pytest.raises(CodecError):
        codec.decode_heartbeat_trade({"status_trade": "maybe"})


def test_account_summary_and_positions_are_exact() -> None:
    summary = codec.decode_message(as_response("private.get_account_summary.response.json")).result
    assert summary["balance"] == D("302.60065765") and summary["total_pl"] == D("0.1273612345")
    positions = codec.decode_message(as_response("private.get_positions.response.json")).result
    assert positions[0]["size_out"] == D("0.5")
    for leaf in list(json_leaves(summary)) + list(json_leaves(positions)):
        assert not isinstance(leaf, float)


def test_mmp_config_request_and_response_share_the_documented_shape() -> None:
    documented = request_params("private.set_mmp_config.request.json")
    assert set(documented) == {"frozen_time", "index_name", "interval", "quantity_limit"}
    response = codec.decode_message(as_response("private.set_mmp_config.response.json")).result
    assert response == documented
    # get_mmp_config reads back the same model (models.SetMMPConfig) for one index
    read_back = codec.decode_message(as_response("private.get_mmp_config.response.json")).result
    assert read_back == documented
    assert request_params("private.get_mmp_config.request.json") == {"index_name": documented["index_name"]}


def test_the_documents_index_names_are_the_ones_derived_from_instruments() -> None:
    """The MMP requests and the trigger channel name an index ("btc_usd" throughout 004); the index
    the codec derives for the document's instruments is that name."""
    index = request_params("private.get_mmp_config.request.json")["index_name"]
    assert index == request_params("private.set_mmp_config.request.json")["index_name"] == "btc_usd"
    for instrument in ("BTC_USD-PERPETUAL", request_params("private.get_order_book.request.json")["instrument_name"]):
        assert codec.index_name_for(instrument) == index


# ---- names, times, errors --------------------------------------------------------------------


def test_index_and_currency_from_instrument_names() -> None:
    assert codec.index_name_for("BTC_USD-PERPETUAL") == "btc_usd"
    assert codec.index_name_for("BTC-31JUN23-50000-C") == "btc_usd"
    assert codec.index_name_for("ETH_USD-PERPETUAL") == "eth_usd"
    assert codec.currency_for("BTC-25JUN21-40000-C") == "BTC"


def test_timestamps_in_ms_or_seconds() -> None:
    assert codec.to_ns(1_687_352_432_143) == 1_687_352_432_143_000_000
    assert codec.to_ns(1_612_137_600) == 1_612_137_600_000_000_000
    with pytest.raises(CodecError):
        codec.to_ns("1612137600")


def test_every_venue_status_maps_onto_a_listed_engine_code() -> None:
    for status in range(1, 14):
        assert codec.reject_code(status) in REJECT_CODES
    assert codec.reject_code(2) == Reject.INVALID_TOKEN
    assert codec.reject_code(9) == Reject.POST_ONLY_WOULD_TAKE
    assert codec.reject_code(11) == Reject.RATE_LIMIT_EXCEEDED
    assert codec.reject_code(-32601) == Reject.INVALID_ORDER  # JSON-RPC "method not found"
    assert codec.reject_code(777) == Reject.EXCHANGE_REJECT
