"""The MidChains WebSocket codec on the document's own examples (tests/fixtures/midchains/ws_examples.*,
verbatim from shared/seeds/001_a6a531a293923345.txt; tests/protocol/test_fixtures.py checks each
against the document line for line, so fixture and document cannot drift).

Every valid example is read with exact values, written back to the same JSON, and the document's
invalid examples are refused as printed, each with the codec's own error naming what is wrong,
with what the adapter (or the sandbox) does about each."""

from __future__ import annotations

import json
import tomllib
from decimal import Decimal

import pytest
from support.midchains_ws import FOLDER, example, names, objects

from adapters.midchains import ws_codec as ws
from engine.model import OrderStatus, OrderType, Side
from engine.rejects import REJECT_CODES, Reject
from engine.venue.badinput import BAD_NUMBER, KINDS, MALFORMED, NOT_JSON, UNKNOWN_MESSAGE

#: the document's examples that are not one JSON object (venue-notes/midchains-algo724.md 3.4)
INVALID = {
    "login.response": "(a trailing comma)",
    "logout.request": "(a trailing comma)",
    "reject_order_rate.sample": "Expecting property name enclosed in double quotes: line 1 column 2",
    "reject_no_crypto_pos.sample": "Extra data",
    "reject_margin.sample": "Extra data",
}
#: the login request's example is valid JSON with a ``pass`` that is not base64: tested on its own
REQUESTS = [n for n in names() if n.endswith(".request") and n not in INVALID and n != "login.request"]
ANSWERS = [n for n in names() if n.endswith((".response", ".push")) and n not in INVALID]


def read(name: str) -> object:
    return ws.decode_message(example(name))


# ---- every example ---------------------------------------------------------------------------


def test_every_example_of_the_document_is_a_fixture() -> None:
    """66 examples: 19 requests, 42 answers and pushes, 5 reject samples (3 of them invalid)."""
    assert len(names()) == 66
    assert len(REQUESTS) + 2 == 19 and len(ANSWERS) + 1 == 42  # less the invalid ones and login.request


def test_each_fixture_is_indexed_as_text_of_document_001() -> None:
    """tests/protocol/test_fixtures.py compares every indexed fixture with its lines of the
    document (and the document copy with shared/seeds): here, that none of ours escapes it."""
    index = tomllib.loads((FOLDER.parent / "index.toml").read_text(encoding="utf-8"))["excerpts"]
    for path in FOLDER.glob("ws_examples.*"):
        entry = index[f"midchains/{path.name}"]
        assert entry["document"] == "001_a6a531a293923345.txt" and entry["section"].startswith("WebSocket API, ")


@pytest.mark.parametrize("name", ANSWERS)
def test_each_answer_and_push_reads_and_writes_back_to_the_same_json(name: str) -> None:
    message = read(name)
    written = ws.encode(message)
    assert ws.decode_message(written) == message
    original = json.loads(example(name))
    # what is written is what the document sent, field for field, numbers as decimal strings
    # (the document itself mixes "180" and 180); the fields the codec does not read are left out
    for key, value in json.loads(written).items():
        if key == "clientorderid" and key not in original:
            key = "clientorderi"  # [sic] in the document: read under its right name, written so (MID-1)
        assert key in original, f"{name}: wrote {key!r} the document has not"
        if key not in ("data", "books"):
            assert str(value).lower() == str(original[key]).lower() or Decimal(str(value)) == Decimal(
                str(original[key])), f"{name}.{key}: {value!r} vs {original[key]!r}"


@pytest.mark.parametrize("name", REQUESTS)
def test_each_request_reads_and_encodes_to_the_documents_json(name: str) -> None:
    request = ws.decode_request(example(name))
    written = json.loads(ws.encode(request))
    expected = json.loads(example(name))
    if name == "querytrade.request":  # the document's own fromtime has milliseconds: we send whole seconds
        assert expected["fromtime"] == "1557323619303" and written["fromtime"] == "1557323619000"
        expected["fromtime"] = "1557323619000"
    assert written == expected


@pytest.mark.parametrize("name", REQUESTS)
def test_a_request_is_not_an_answer(name: str) -> None:
    """Every answer the document shows has a ``result``: a request fed as an answer is refused."""
    with pytest.raises(ws.WsCodecError, match=r"result is missing|not in the document"):
        read(name)


# ---- values, exactly --------------------------------------------------------------------------


def test_getsymbols_gives_each_pairs_fractionbase_and_qty_step() -> None:
    answer = read("getsymbols.response")
    by_name = {s.security: s for s in answer.symbols}
    assert answer.ok and len(by_name) == 9
    assert {n: s.fraction_base for n, s in by_name.items()} == {
        "USD": 100, "LTCUSD": 10000, "LTC": 10000, "ETHUSD": 100000, "ETH": 100000, "BTCUSD": 100000,
        "BTC": 100000, "BCHUSD": 100000, "BCH": 100000}
    ltc = by_name["LTCUSD"]
    assert (ltc.base, ltc.quote, ltc.trading_symbol, ltc.pair) == ("LTC", "USD", True, True)
    assert ltc.qty_step == Decimal("0.0001") and by_name["USD"].qty_step == Decimal("0.01")
    assert by_name["USD"].fiat is False  # [sic]: kept as the venue sends it (MID-1)


def test_a_fractionbase_that_is_no_power_of_ten_is_refused() -> None:
    text = example("getsymbols.response").replace('"fractionbase":100,', '"fractionbase":250,', 1)
    with pytest.raises(ws.WsCodecError, match="fractionbase 250 is not a power of ten"):
        ws.decode_message(text)


def test_book_entries_are_order_level_upserts_and_removes() -> None:
    added, removed = read("book_added.push"), read("book_removed.push")
    (entry,) = added.entries
    assert added.security == "BCHUSD"
    assert (entry.act, entry.order_id, entry.side, entry.price, entry.qty, entry.ts_ms) == (
        "U", 120947223715360, Side.BUY, Decimal("472.33"), Decimal("0.46"), 1626338416747)
    assert (entry.src, entry.mpid, entry.key) == ("CROX", "ANON", "NA")
    (gone,) = removed.entries
    assert (gone.act, gone.order_id, gone.side, gone.price, gone.ts_ms) == ("R", 120947223715360, None, None,
                                                                             1626338444101)


def test_a_book_upsert_without_a_price_is_refused() -> None:
    text = example("book_added.push").replace('"price":"472.33",', "")
    with pytest.raises(ws.WsCodecError, match="act U needs side, price and qty"):
        ws.decode_message(text)


def test_trade_and_its_aggressor_from_maker_side() -> None:
    trade = read("trade.push")
    assert (trade.security, trade.price, trade.qty, trade.ts_ms, trade.match_id) == (
        "BCHUSD", Decimal("471.43"), Decimal("0.06969"), 1626338546538, "62YNMDOQ2SPR")
    assert trade.maker_side is None and trade.aggressor is None  # the example predates maker_side
    with_maker = ws.decode_message(example("trade.push").replace('"src"', '"maker_side":"B","src"'))
    assert with_maker.aggressor is Side.SELL  # the buyer made it: the seller took it


@pytest.mark.parametrize(("name", "status", "halted"), [
    ("symbolstatus_halt.push", "Halt", True), ("symbolstatus_preopening.push", "PreOpening", False),
    ("symbolstatus_normal.push", "Normal", False)])
def test_symbol_status(name: str, status: str, halted: bool) -> None:
    (entry,) = read(name).entries
    assert (entry.security, entry.status, entry.halted, entry.ts_ms) == ("BCHUSD", status, halted, 1623155345213)


def test_highlow_reads_the_json_spelling_openingprice() -> None:
    full = read("highlow_full.push")
    assert (full.opening, full.high, full.low, full.prev_close) == (
        Decimal("2388.1"), Decimal("2388.1"), Decimal("2388.1"), Decimal("2611.75"))
    assert read("highlow_prevclose.push").opening is None


def test_history_answers_read_total_rec_as_a_string_or_a_number() -> None:
    ticks, bars = read("lshistory.response"), read("tradehistory.response")
    assert (ticks.total, ticks.start_ms, ticks.records[0].price, ticks.records[0].qty) == (
        1, 1630530000000, Decimal("182.51"), Decimal("0.5702"))
    (bar,) = bars.records
    assert (bar.block_ms, bar.last_ms, bar.open, bar.close, bar.volume, bar.trades) == (
        1630497360000, 1630497372665, Decimal("174.69"), Decimal("174.69"), Decimal("0.9375"), 1)  # lastttime [sic]
    assert read("querymultiorders.response").total == 3  # a JSON number there


def test_the_login_pushes_open_orders_and_positions_exactly() -> None:
    order = read("login_open_order.push")
    assert (order.refno, order.side, order.status, order.state, order.price, order.qty, order.live_qty) == (
        "62YNMDOQ2SPSC0", Side.BUY, "Open", OrderStatus.NEW, Decimal("471.43"), Decimal("0.49031"),
        Decimal("0.49031"))
    usd = read("login_position_usd.push")
    assert (usd.security, usd.curpos, usd.cost) == ("USD", Decimal("1013057.59"), Decimal("-841663670.1899977"))


def test_the_market_buy_flow_ack_order_sale_position() -> None:
    ack = read("addorder.response")
    assert ack.ok and ack.refno == "62YNMDOQ2SPIC0" and ack.amount == Decimal(180)  # 180 a JSON number there
    assert read("addorder_order_open.push").state is OrderStatus.NEW
    sale = read("addorder_sale.push")
    assert (sale.exec_id, sale.refno, sale.price, sale.qty, sale.is_maker, sale.match_id, sale.ts_ms) == (
        "62YNMDOQ2SPIC02_62YNMDOQ2SPJ", "62YNMDOQ2SPIC0", Decimal("183.29"), Decimal("0.38031"), False,
        "62YNMDOQ2SPJ", 1626332766360)
    done = read("addorder_order_executed.push")
    assert (done.state, done.exec_amount, done.leaves_qty) == (OrderStatus.FILLED, Decimal("179.9969199"), 0)


def test_a_sale_a_trade_and_a_status_become_engine_events() -> None:
    fill = read("addorder_sale.push").to_fill("midchains", "mm-1")
    assert (fill.symbol, fill.client_id, fill.venue_order_id, fill.exec_id, fill.side, fill.price, fill.qty,
            fill.ts, fill.liquidity.value, fill.fee) == (
        "LTCUSD", "mm-1", "62YNMDOQ2SPIC0", "62YNMDOQ2SPIC02_62YNMDOQ2SPJ", Side.BUY, Decimal("183.29"),
        Decimal("0.38031"), 1626332766360 * 1_000_000, "taker", None)
    trade = read("trade.push").to_trade("midchains")
    assert (trade.symbol, trade.ts, trade.price, trade.qty, trade.aggressor, trade.trade_id) == (
        "BCHUSD", 1626338546538 * 1_000_000, Decimal("471.43"), Decimal("0.06969"), None, "62YNMDOQ2SPR")
    (halt,) = read("symbolstatus_halt.push").entries
    status = halt.to_status("midchains", 0)
    assert (status.symbol, status.ts, status.halted, status.reason) == ("BCHUSD", 1623155345213 * 1_000_000, True,
                                                                        "Halt")


def test_clientorderi_is_read_as_clientorderid_and_never_written() -> None:
    answer = read("addorder_post_only.response")
    assert answer.client_order_id == "7599bb88-1d48-48b1-bf90-ed20d81b344d" and answer.post_only is True
    written = ws.encode(answer)
    assert '"clientorderid":"7599bb88' in written and "clientorderi\"" not in written


def test_querytrade_records_carry_the_fee_and_its_asset() -> None:
    answer = read("querytrade.response")
    first, second = answer.records
    assert (first.fee, first.fee_asset, first.is_maker, first.rec_no) == (Decimal("0.00001"), "LTC", False, 1)
    assert (second.fee, second.is_maker, second.price) == (None, True, Decimal("100.5"))


def test_no_position_is_an_empty_answer_not_a_failure() -> None:
    for name in ("querypos_none.response", "querypendingpos_none.response"):
        answer = read(name)
        assert answer.empty and not answer.ok and answer.records == ()
        assert ws.RecordAssembler(answer.type).add(answer) == ()
    assert read("querymultiorders_empty.response").empty


def test_querypendingpos_managed_positions() -> None:
    bch = read("querypendingpos.response").records[1]
    assert (bch.security, bch.curpos, bch.managed, bch.openpos) == ("BCH", Decimal("0.14721"), Decimal("0.1"), 0)


def test_a_record_of_another_type_is_refused() -> None:
    text = example("querytrade.response").replace('"type":"sale"', '"type":"position"', 1)
    with pytest.raises(ws.WsCodecError, match=r"querytrade.data\[0\]: a 'position' record where 'sale'"):
        ws.decode_message(text)


# ---- numbers: exact, never a float, refused when not numbers ---------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ('"0.00001"', Decimal("0.00001")), ("0.00001", Decimal("0.00001")), ('"180"', Decimal(180)), ("180", Decimal(180)),
    ('"1E-5"', Decimal("0.00001")), ('"3782.01"', Decimal("3782.01"))])
def test_quantities_are_exact_decimals_from_strings_or_numbers(value: str, expected: Decimal) -> None:
    sale = ws.decode_message(example("addorder_sale.push").replace('"0.38031"', value))
    assert sale.qty == expected and type(sale.qty) is Decimal


@pytest.mark.parametrize("value", ['"abc"', '"NaN"', '"Infinity"', "true", "[]", "{}", '"1e999999"', '""',
                                   '"\u0663"', '"+1"', '".5"', '" 1"', '"0x1"',
                                   '"' + "9" * 70 + '"', "1e999999", "NaN"])
def test_a_quantity_that_is_not_a_number_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(ws.WsCodecError) as caught:
        ws.decode_message(example("addorder_sale.push").replace('"0.38031"', value))
    assert caught.value.kind in (BAD_NUMBER, MALFORMED, NOT_JSON)
    assert "execqty" in str(caught.value) or caught.value.kind in (BAD_NUMBER, NOT_JSON)


@pytest.mark.parametrize(("value", "ms"), [('"1626332766360"', 1626332766360), ("1626332766360", 1626332766360),
                                           ('"1626332766"', 1626332766000)])
def test_times_are_epoch_ms_and_seconds_are_scaled(value: str, ms: int) -> None:
    """MID-2: the text says seconds, every example is ms; a 10-digit value is seconds."""
    assert ws.decode_message(example("addorder_sale.push").replace('"1626332766360"', value)).ts_ms == ms


@pytest.mark.parametrize("value", ['"-1"', '"1.5"', '"soon"', '"' + "9" * 30 + '"', "-5", "true"])
def test_a_time_that_is_not_epoch_ms_is_refused(value: str) -> None:
    with pytest.raises(ws.WsCodecError, match="trdtime"):
        ws.decode_message(example("addorder_sale.push").replace('"1626332766360"', value))


def test_numbers_are_written_as_positional_strings() -> None:
    order = ws.AddOrder(security="LTCUSD", side=Side.SELL, qty=Decimal("1E-5"), price=Decimal("1.5E+2"),
                        client_order_id="c1")
    assert json.loads(ws.encode(order)) == {
        "security": "LTCUSD", "side": "S", "ordertype": "LMT", "tif": "GTC", "qty": "0.00001", "price": "150",
        "clientorderid": "c1", "type": "addorder"}


def test_request_times_go_out_as_whole_seconds() -> None:
    """MID-2: "'1614331055123' is not supported"."""
    order = ws.AddOrder(security="ETHUSD", side=Side.BUY, qty=Decimal("0.0825"), price=Decimal("3782.01"),
                        tif="GTT", expire_ms=1631004134567, client_order_id="c2")
    assert json.loads(ws.encode(order))["exptime"] == "1631004134000"
    assert json.loads(ws.encode(ws.QueryTrade(from_ms=1633305600999)))["fromtime"] == "1633305600000"


# ---- order requests: the document's rules ---------------------------------------------------


@pytest.mark.parametrize(("fields", "problem"), [
    ({"order_type": "MKT", "tif": "IOC", "qty": Decimal(180)}, "cannot use qty for market buy order"),
    ({"order_type": "MKT", "tif": "IOC"}, "a market buy needs amount"),
    ({"qty": Decimal(1)}, "a limit order needs a price"),
    ({"qty": Decimal(1), "price": Decimal(1), "tif": "GTT"}, "exptime is required with GTT"),
    ({"qty": Decimal(1), "price": Decimal(1), "tif": "IOC", "post_only": True}, "alo"),
    ({"qty": Decimal(1), "price": Decimal(1), "stop_type": "STOP"}, "stoptype STOP and stopprice go together"),
    ({"order_type": "MKT", "tif": "GTC", "amount": Decimal(5)}, "a market order is IOC or FOK"),
    ({"qty": Decimal(0), "price": Decimal(1)}, "qty must be positive"),
    ({"qty": Decimal(1), "price": Decimal(1), "tif": "DAY"}, "tif must be GTC, IOC, FOK or GTT"),
    ({"qty": Decimal(1), "price": Decimal(1), "client_order_id": "x" * 33}, "clientorderid must be 1 to 32"),
])
def test_an_order_the_document_forbids_cannot_be_encoded(fields: dict[str, object], problem: str) -> None:
    order = ws.AddOrder(security="LTCUSD", side=Side.BUY, **fields)  # type: ignore[arg-type]
    assert problem in (order.problem() or "")
    with pytest.raises(ws.WsCodecError, match="addorder: "):
        ws.encode(order)


def test_the_sandbox_reads_a_forbidden_order_and_answers_with_the_venues_text() -> None:
    """The document's own "passing incorrect field" request: read (decode_request does not judge),
    and problem() gives the venue's reject text, which maps to 2002."""
    echo = json.loads(example("addorder_qty_market_buy.response"))
    del echo["result"]
    request = ws.decode_request(json.dumps(echo))
    assert request.problem() == "cannot use qty for market buy order"
    assert ws.RejectCodes().code(request.problem()) == Reject.INVALID_QUANTITY == 2002


def test_every_order_shape_of_the_document_encodes() -> None:
    """VENUES.md 2.4: limit GTC/IOC/FOK/GTT, market buy by amount and sell by qty, stop limit and
    stop market, post-only."""
    base = {"security": "LTCUSD", "client_order_id": "c"}
    shapes = [
        {"side": Side.BUY, "qty": Decimal(1), "price": Decimal(100)},
        {"side": Side.BUY, "qty": Decimal(1), "price": Decimal(100), "tif": "FOK"},
        {"side": Side.BUY, "qty": Decimal(1), "price": Decimal(100), "tif": "GTT", "expire_ms": 1631004134000},
        {"side": Side.BUY, "order_type": "MKT", "tif": "IOC", "amount": Decimal(180)},
        {"side": Side.SELL, "order_type": "MKT", "tif": "FOK", "qty": Decimal("0.5")},
        {"side": Side.SELL, "qty": Decimal(1), "price": Decimal(90), "stop_type": "STOP", "stop_price": Decimal(95)},
        {"side": Side.SELL, "order_type": "MKT", "tif": "IOC", "qty": Decimal(1), "stop_type": "STOP",
         "stop_price": Decimal(95)},
        {"side": Side.BUY, "qty": Decimal(1), "price": Decimal(100), "post_only": True},
    ]
    for shape in shapes:
        order = ws.AddOrder(**base, **shape)  # type: ignore[arg-type]
        assert ws.decode_request(ws.encode(order)) == order


# ---- order state (MID-11, MID-15) ----------------------------------------------------------


@pytest.mark.parametrize(("status", "qty", "live", "filled", "state"), [
    ("Open", "1", "1", "0", OrderStatus.NEW),
    ("Open", "1", "0.4", "0.6", OrderStatus.PARTIALLY_FILLED),
    ("Executed", "1", "0", "1", OrderStatus.FILLED),
    ("Executed", "1", "0", "0.6", OrderStatus.CANCELLED),  # an IOC's remainder (MID-11)
    ("Cancelled", "1", "0", "0.6", OrderStatus.CANCELLED),
    ("Cancelled", "1", "0", "0", OrderStatus.CANCELLED),
    ("Rejected", "1", "0", "0", OrderStatus.REJECTED),
    ("Parked", "1", "1", "0", OrderStatus.UNKNOWN),
    (None, "1000", "900", "100", OrderStatus.PARTIALLY_FILLED),  # queryorder (MID-15)
    (None, "1", "1", "0", OrderStatus.NEW),
    (None, "1", "0", "1", OrderStatus.FILLED),
    (None, "1", "0", "0.5", OrderStatus.CANCELLED),
    (None, "1", "0", "0", OrderStatus.UNKNOWN),  # cancelled or rejected: querymultiorder says which
])
def test_order_state_mapping(status: str | None, qty: str, live: str, filled: str, state: OrderStatus) -> None:
    order = ws.OrderMsg(refno="R", security="LTCUSD", side=Side.BUY, status=status, qty=Decimal(qty),
                        live_qty=Decimal(live), exec_qty=Decimal(filled))
    assert ws.order_status(order) is state


def test_liveqty_is_the_remainder_even_when_qty_minus_execqty_disagrees() -> None:
    order = ws.OrderMsg(refno="R", security="LTCUSD", side=Side.BUY, status="Open", qty=Decimal(10),
                        live_qty=Decimal(3), exec_qty=Decimal(5))
    assert order.leaves_qty == Decimal(3)


def test_the_documents_queries_map_to_states() -> None:
    assert read("queryorder.response").order.state is OrderStatus.PARTIALLY_FILLED  # no orderstatus (MID-15)
    assert [r.state for r in read("querymultiorders.response").records] == [
        OrderStatus.NEW, OrderStatus.CANCELLED, OrderStatus.NEW]  # "Executed" 1 of 100 (MID-11)
    venue = read("queryorder.response").order.to_venue_order("midchains")
    assert (venue.client_id, venue.venue_order_id, venue.cum_qty, venue.qty) == ("ID1", "5GS08WTIE8CWA0", 100, 1000)


# ---- rejects ---------------------------------------------------------------------------------


def test_every_reject_text_of_the_document_maps_to_an_engine_code() -> None:
    codes = ws.RejectCodes()
    expected = {
        "exceed order/sec limit": 3001, "order marketable to existing quote/book": 7006, "no crypto pos": 2005,
        "wash sale prohibited": 7007, "Exceeds margin limit Exceed total Amount": 2008, "error parsing json": 7005,
        "cannot use qty for market buy order": 2002, "order not found": 7004, "failed": 9002, "no position": 2005,
        "invalid user/password": 1001,
    }
    assert {r.text: int(r.code) for r in ws.REJECT_TEXTS} == expected
    for text, code in expected.items():
        assert codes.code(text) == code and code in REJECT_CODES
    assert not codes.unknown


def test_an_unknown_reject_text_maps_to_the_default_and_is_counted() -> None:
    codes = ws.RejectCodes(max_texts=2)
    assert codes.code("price out of band") == ws.UNKNOWN_REJECT == 9002
    codes.code("price out of band")
    codes.code("b")
    codes.code("c")
    assert codes.unknown == {"price out of band": 2, "b": 1, "(other)": 1}
    assert codes.code("  Order NOT found ") == 7004  # case and spacing do not matter


def test_the_reject_samples_of_the_document() -> None:
    """Each sample as the adapter meets it: one JSON object, two on one line, or a Python repr."""
    post_only = read("reject_post_only.sample")
    assert (post_only.result, ws.RejectCodes().code(post_only.result)) == ("order marketable to existing quote/book",
                                                                          7006)
    wash = read("reject_wash_sale.sample")
    assert (wash.state, wash.text, ws.RejectCodes().code(wash.text)) == (
        OrderStatus.REJECTED, "wash sale prohibited", 7007)
    for name, text, code in (("reject_no_crypto_pos.sample", "no crypto pos", 2005),
                             ("reject_margin.sample", "Exceeds margin limit Exceed total Amount", 2008)):
        answer, order = (ws.decode_message(part) for part in objects(example(name)))
        assert answer.result == text == order.text and order.state is OrderStatus.REJECTED
        assert ws.RejectCodes().code(answer.result) == code
    margin = ws.decode_message(objects(example("reject_margin.sample"))[0])
    assert margin.order_type == "LIMIT" and ws.order_type(margin) is OrderType.LIMIT  # [sic] (MID-1)


# ---- the document's invalid examples ------------------------------------------------------


@pytest.mark.parametrize("name", sorted(INVALID))
def test_each_invalid_example_is_refused_as_printed_naming_what_is_wrong(name: str) -> None:
    for decode in (ws.decode_message, ws.decode_request):
        with pytest.raises(ws.WsCodecError) as caught:
            decode(example(name))
        assert caught.value.kind == NOT_JSON
        assert INVALID[name] in caught.value.reason


def test_the_example_pass_is_not_base64_and_the_login_request_is_refused() -> None:
    """150 characters (RSA-1024 gives 172): refused by the codec, with the type it was reading so
    a sandbox can answer ``invalid user/password`` rather than ``error parsing json``."""
    with pytest.raises(ws.WsCodecError, match=r"login.pass: not valid base64 \(150 characters") as caught:
        ws.decode_request(example("login.request"))
    assert caught.value.message_type == "login"


def test_the_python_repr_reject_is_recognised_from_its_text_and_names_the_order() -> None:
    """The adapter counts it under 3001 and reconciles that order by query; it does not reject it
    on this guess (ws_codec docstring)."""
    salvaged = ws.recognise_reject(example("reject_order_rate.sample"))
    assert salvaged is not None
    assert (salvaged.reject.text, int(salvaged.reject.code), salvaged.client_order_id, salvaged.refno) == (
        "exceed order/sec limit", 3001, "7599bb88-1d48-48b1-bf90-ed20d81b344d", None)
    assert ws.recognise_reject(example("reject_order_rate.sample").encode()) == salvaged
    assert ws.recognise_reject("{'result': 'something new'}") is None
    assert ws.recognise_reject(b"\xff\x00 not json") is None


def test_the_trailing_comma_logout_gets_the_venues_error_parsing_json() -> None:
    """The sandbox answers what it cannot read as the venue does: ``{"result":"error parsing json"}``
    with no type, which the adapter reads as the answer to its oldest outstanding request."""
    with pytest.raises(ws.WsCodecError) as caught:
        ws.decode_request(example("logout.request"))
    assert caught.value.message_type is None  # not read far enough to know the type
    answer_text = ws.encode(ws.VenueError(result="error parsing json"))
    assert answer_text == '{"result":"error parsing json"}'
    answer = ws.decode_message(answer_text)
    assert isinstance(answer, ws.VenueError) and ws.answer_key(answer) is None
    assert ws.RejectCodes().code(answer.result) == 7005
    assert ws.encode(ws.Logout()) == '{"type":"logout"}'  # what we send instead


# ---- correlation -----------------------------------------------------------------------------


@pytest.mark.parametrize(("request_name", "answer_name"), [
    ("cancelorder.request", "cancelorder.response"), ("cancelorder.request", "cancelorder_failed.response"),
    ("queryorder.request", "queryorder.response"), ("querymultiorder.request", "querymultiorders.response"),
    ("querytrade.request", "querytrade.response"), ("querypos.request", "querypos.response"),
    ("querypendingpos.request", "querypendingpos_none.response"), ("challenge.request", "challenge.response"),
    ("getsymbols.request", "getsymbols.response"), ("subscribehighlow.request", "subscribehighlow.response"),
    ("subscribesymbolstatus.request", "subscribesymbolstatus.response"), ("tradehistory.request",
                                                                          "tradehistory.response"),
    ("logout.response", "logout.response")])
def test_each_answer_carries_its_requests_key(request_name: str, answer_name: str) -> None:
    request = ws.Logout() if request_name == "logout.response" else ws.decode_request(example(request_name))
    assert ws.request_key(request) == ws.answer_key(read(answer_name))


def test_addorder_answers_correlate_by_clientorderid_else_to_the_oldest() -> None:
    order = ws.AddOrder(security="LTCUSD", side=Side.BUY, qty=Decimal("0.29969"), price=Decimal("173.29"),
                        post_only=True, client_order_id="7599bb88-1d48-48b1-bf90-ed20d81b344d")
    assert ws.request_key(order) == ws.answer_key(read("addorder_post_only.response"))  # via clientorderi [sic]
    assert ws.answer_key(read("addorder_post_only_plain.response")) == ("addorder",)
    for push in ("addorder_sale.push", "book_added.push", "login_open_order.push", "trade.push"):
        assert ws.answer_key(read(push)) is None


def test_a_multi_record_reply_is_put_together_from_chunks() -> None:
    records = tuple(ws.SaleMsg(exec_id=f"E{n}", refno="R", security="LTCUSD", side=Side.BUY, price=Decimal(1),
                               qty=Decimal(1), rec_no=n) for n in range(1, 251))
    chunks = [ws.RecordsAnswer(type="querytrade", result="OK", total=250, records=records[i:i + 100])
              for i in range(0, 250, 100)]
    assembler = ws.RecordAssembler("querytrade")
    decoded = [ws.decode_message(ws.encode(chunk)) for chunk in chunks]
    assert assembler.add(decoded[2]) is None and assembler.add(decoded[0]) is None
    assert assembler.add(decoded[0]) is None  # a resent chunk changes nothing
    assert assembler.add(decoded[1]) == records


def test_a_chunk_over_100_records_or_a_rec_no_out_of_range_is_refused() -> None:
    records = tuple(ws.PositionMsg(security=f"S{n}", curpos=Decimal(n), rec_no=n) for n in range(1, 102))
    with pytest.raises(ws.WsCodecError, match="101 records in one message"):
        ws.decode_message(ws.encode(ws.RecordsAnswer(type="querypos", result="OK", total=101, records=records)))
    answer = ws.RecordsAnswer(type="querypos", result="OK", total=2, records=(
        ws.PositionMsg(security="LTC", curpos=Decimal(1), rec_no=3),))
    with pytest.raises(ws.WsCodecError, match=r"rec_no 3 outside 1\.\.2"):
        ws.RecordAssembler("querypos").add(answer)
    changed = ws.RecordsAnswer(type="querypos", result="OK", total=2, records=(
        ws.PositionMsg(security="LTC", curpos=Decimal(2), rec_no=1),))
    assembler = ws.RecordAssembler("querypos")
    assembler.add(ws.RecordsAnswer(type="querypos", result="OK", total=2, records=(
        ws.PositionMsg(security="LTC", curpos=Decimal(1), rec_no=1),)))
    with pytest.raises(ws.WsCodecError, match="rec_no 1 sent twice"):
        assembler.add(changed)


# ---- framing and unknown types --------------------------------------------------------------


def test_an_unknown_type_is_refused_as_unknown_message_to_be_counted_and_ignored() -> None:
    with pytest.raises(ws.WsCodecError) as caught:
        ws.decode_message('{"type":"newfeature","x":1}')
    assert caught.value.kind == UNKNOWN_MESSAGE and caught.value.kind in KINDS


@pytest.mark.parametrize(("raw", "match"), [
    ("[]", "a message is a JSON object"), ('{"x":1}', "without type"), ('{"type":[]}', "type: expected a string"),
    ('{"type":"order","refno":"R","security":"X","side":"X"}', "side must be 'B' or 'S'"),
    ('{"type":"book","security":"X","books":{}}', "book.books: expected a list"),
    ('{"type":"book","security":"X","books":[{"act":"U","id":"x"}]}', r"book.books\[0\].id: expected an integer"),
    ('{"type":"queryorder","result":"OK","data":[]}', "queryorder.data: expected an object"),
    ('{"type":"challenge","result":"OK","key":"not base64!"}', "challenge.key: not valid base64"),
    ('{"type":"challenge","result":"OK"}', "result OK without a key"),
])
def test_malformed_messages_name_what_is_wrong(raw: str, match: str) -> None:
    with pytest.raises(ws.WsCodecError, match=match):
        ws.decode_message(raw)


def test_a_frame_over_the_size_bound_is_refused_unread() -> None:
    with pytest.raises(ws.WsCodecError) as caught:
        ws.decode_message('{"type":"trade","x":"' + "a" * ws.MAX_FRAME_CHARS + '"}')
    assert caught.value.kind == "too_large"


def test_the_login_frame_is_loggable_without_its_pass() -> None:
    login = ws.Login(userid="user@mail.com", password="AAAA")
    assert "AAAA" not in repr(login)
    assert ws.encode(login, loggable=True) == '{"userid":"user@mail.com","pass":"***","type":"login"}'
    assert ws.CREDENTIAL_KEYS == ("pass",)


# ---- rate limits as data ---------------------------------------------------------------------


def test_rate_limits_are_the_documents_in_the_engines_form() -> None:
    limits = {limit.scope: (limit.count, limit.per_seconds, limit.burst) for limit in ws.WS_RATE_LIMITS}
    assert limits == {"all": (5, 1, 10), "orders": (4, 1, 4), "public": (3, 1, 6)}
    assert all(limit.source.startswith("001 ") for limit in ws.WS_RATE_LIMITS)
    assert set(ws.REQUEST_LANE.values()) == set(ws.WS_LANES)


def test_the_limits_pace_departures_in_the_kits_pacer() -> None:
    """Through adapters.kit.pacing (the pacer every network adapter uses): in one second at most 4
    orders, 6 public requests, and 10 private requests in all."""
    from adapters.kit.pacing import DepartureQueue, lane_buckets
    from engine.clock import SimClock

    clock = SimClock(0)
    queue = DepartureQueue(lane_buckets("midchains", ws.WS_RATE_LIMITS, ws.WS_LANES, clock))
    for n in range(20):
        queue.put("order", f"o{n}")
        queue.put("public", f"p{n}")
    sent = []
    while (ready := queue.pop_ready(0)) is not None:
        sent.append(ready[0])
    assert sent.count("order") == 4 and sent.count("public") == 6
