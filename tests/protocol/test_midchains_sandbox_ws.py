"""The MidChains sandbox's WebSocket JSON API (document 001 "WEBSOCKET API"; issue 24), driven by a
client we did not write for it: the ``websockets`` client and ``cryptography`` for the RSA step
(tests/support/midchains_ws_client.py), never the adapter's codec. The document's own samples
(tests/fixtures/midchains/ws_examples.*, verbatim) fix the field names: what the sandbox sends
carries every key of the sample it answers to. Login, the burst book, order/sale/position pushes,
cancels, queries and the document's reject texts."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from support.midchains_client import running
from support.midchains_ws_client import PASSWORD, USER, seal, ws_client

from adapters.midchains.sandbox import WsUser

pytestmark = pytest.mark.anyio
D = Decimal
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "midchains"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def sample(name: str) -> Any:
    """One of 001's samples as JSON (its own trailing commas forgiven: venue-notes 3.4)."""
    text = (FIXTURES / f"ws_examples.{name}.json").read_text(encoding="utf-8")
    return json.loads(re.sub(r",\s*([}\]])", r"\1", text))


def missing(message: dict[str, Any], name: str) -> set[str]:
    """The keys of 001's sample ``name`` the sandbox's message lacks."""
    return set(sample(name)) - set(message)


async def test_challenge_key_is_base64_der_spki_rsa_1024_like_the_documents() -> None:
    async with running() as venue, ws_client(venue) as client:
        await client.send(sample("challenge.request"))
        answer = await client.recv()
        assert set(answer) == set(sample("challenge.response")) and answer["result"] == "OK"
        ours = serialization.load_der_public_key(base64.b64decode(answer["key"]))
        theirs = serialization.load_der_public_key(base64.b64decode(sample("challenge.response")["key"]))
        assert isinstance(ours, rsa.RSAPublicKey) and isinstance(theirs, rsa.RSAPublicKey)
        assert ours.key_size == theirs.key_size == 1024 and ours.public_numbers().e == 65537
        assert len(seal(answer["key"], PASSWORD)) == 172  # what 001's clients produce with such a key


async def test_login_answers_the_documents_ok_then_open_orders_and_every_position() -> None:
    async with running() as venue:
        async with ws_client(venue, login=True) as first:
            await first.send({"type": "addorder", "security": "BCHUSD", "side": "B", "price": "471.43",
                              "qty": "0.49031"})
            ack = await first.expect_type("addorder")
            assert ack["result"] == "OK"
        async with ws_client(venue) as client:
            answer = await client.login()
            assert not missing(answer, "login.response") and answer["userid"] == USER
            assert answer["need2FA"] is False and answer["use2fa"] == "N"  # MID-10, everyday
            order = await client.recv()
            assert order["type"] == "order" and order["refno"] == ack["refno"] and order["orderstatus"] == "Open"
            assert not missing(order, "login_open_order.push")
            assert (order["security"], order["price"], order["qty"], order["liveqty"]) == (
                "BCHUSD", "471.43", "0.49031", "0.49031")
            positions = [await client.recv() for _ in range(5)]
            assert [p["security"] for p in positions] == ["USD", "LTC", "BTC", "ETH", "BCH"]
            assert all(p["type"] == "position" and not missing(p, "login_position_usd.push") for p in positions)
            assert positions[0]["curpos"] == "1000000"


async def test_a_wrong_password_or_no_challenge_is_the_documents_refusal() -> None:
    async with running(ws_public_rate=(100, 100)) as venue, ws_client(venue) as client:
        await client.send({"type": "login", "userid": USER, "pass": "czdVVzI2aUdF"})
        assert await client.recv() == sample("login_refused.response")  # nothing to decrypt with yet
        await client.send({"type": "challenge"})
        key = (await client.recv())["key"]
        await client.send({"type": "login", "userid": USER, "pass": seal(key, "wrong")})
        assert await client.recv() == sample("login_refused.response")
        await client.send({"type": "login", "userid": "nobody", "pass": seal(key, PASSWORD)})
        assert await client.recv() == sample("login_refused.response")
        await client.send({"type": "login", "userid": USER, "pass": "not base64 !"})
        assert await client.recv() == sample("login_refused.response")
        assert venue.counters["ws.login_failures"] == 4
        assert (await client.login())["result"] == "OK"


async def test_no_login_within_the_deadline_closes_the_socket() -> None:
    async with running(ws_login_timeout_s=1.5) as venue, ws_client(venue) as client:
        await client.send({"type": "getsymbols"})
        await client.expect_type("getsymbols")
        assert await client.closed(timeout=10) == 1008
        assert venue.counters["ws.login_timeouts"] == 1


async def test_the_documents_logout_with_its_trailing_comma_is_answered_then_the_socket_closed() -> None:
    async with running() as venue, ws_client(venue, login=True) as client:
        await client.quiet(0.2)
        await client.send((FIXTURES / "ws_examples.logout.request.json").read_text(encoding="utf-8"))
        assert await client.recv() == sample("logout.response")
        assert await client.closed() == 1000


async def test_getsymbols_answers_the_documents_list_for_its_pairs() -> None:
    async with running() as venue, ws_client(venue) as client:
        await client.send(sample("getsymbols.request"))
        answer = await client.recv()
        expected = sample("getsymbols.response")
        assert answer["result"] == "OK" and answer["type"] == "getsymbols"
        assert sorted(map(json.dumps, answer["data"])) == sorted(map(json.dumps, expected["data"]))


async def test_subscribe_book_is_a_burst_of_U_at_most_50_then_U_and_R_with_side() -> None:
    async with running() as venue:
        for n in range(120):
            venue.place("BCHUSD", "buy", D("0.01"), D(400) + D(n) / 100)
        async with ws_client(venue, login=True) as client:
            await client.quiet(0.2)
            await client.send(sample("subscribe_book.request"))
            burst = [await client.expect_type("book") for _ in range(3)]
            assert [len(m["books"]) for m in burst] == [50, 50, 20]
            entries = [e for m in burst for e in m["books"]]
            assert {e["act"] for e in entries} == {"U"} and len({e["id"] for e in entries}) == 120
            assert all(not set(sample("book_added.push")["books"][0]) - set(e) for e in entries)
            assert all(isinstance(e["id"], int) and e["id"] < 2**53 for e in entries)  # a number, as 001's
            await client.send({"type": "addorder", "security": "BCHUSD", "side": "S", "price": "472.33",
                               "qty": "0.46"})
            ack = await client.expect_type("addorder")
            added = (await client.expect_type("book"))["books"]
            assert [(e["act"], e["side"], e["price"], e["qty"]) for e in added] == [("U", "S", "472.33", "0.46")]
            await client.send({"type": "cancelorder", "security": "BCHUSD", "refno": ack["refno"]})
            removed = (await client.expect_type("book"))["books"]
            assert [(e["act"], e["side"], e["id"]) for e in removed] == [("R", "S", added[0]["id"])]
            assert not set(sample("book_removed.push")["books"][0]) - set(removed[0])


async def test_trade_feed_carries_maker_side_and_the_sales_exchangeref() -> None:
    async with running() as venue, ws_client(venue, login=True) as client:
        await client.quiet(0.2)
        await client.send(sample("subscribe_trade.request"))
        await client.send({"type": "addorder", "security": "BCHUSD", "side": "S", "price": "471.43", "qty": "0.1"})
        await client.expect_type("addorder")
        venue.place("BCHUSD", "buy", D("0.06969"), D("471.43"))
        trade = await client.expect_type("trade")
        assert not missing(trade, "trade.push")
        assert (trade["security"], trade["price"], trade["qty"], trade["maker_side"]) == (
            "BCHUSD", "471.43", "0.06969", "S")
        sale = await client.expect_type("sale")
        assert sale["exchangeref"] == trade["matchid"] and sale["ismaker"] is True
        assert sale["traderefno"] == f"{sale['refno']}2_{trade['matchid']}"  # 001: <refno>2_<matchid>
        await client.send({"type": "subscribe", "request": [{"msg": "trade", "security": "*", "dest": "CROX"}]})
        assert (await client.expect_type("subscribe"))["result"] == "single security required for trade"


async def test_a_limit_order_fills_in_part_with_order_sale_and_position_pushes_and_cancels() -> None:
    async with running() as venue, ws_client(venue, login=True) as client:
        await client.quiet(0.2)
        await client.send({"type": "addorder", "security": "LTCUSD", "side": "B", "price": "140", "qty": "1",
                           "clientorderid": "ID1"})
        ack = await client.expect_type("addorder")
        assert ack["result"] == "OK" and re.fullmatch(r"62[0-9A-Z]{12}", ack["refno"]) and ack["clientorderid"] == "ID1"
        opened = await client.expect_type("order")
        assert (opened["orderstatus"], opened["liveqty"], opened["clientorderid"]) == ("Open", "1", "ID1")
        venue.place("LTCUSD", "sell", D("0.4"), D(140))
        sale = await client.expect_type("sale")
        assert not missing(sale, "addorder_sale.push") and sale["clientorderid"] == "ID1"
        assert (sale["execqty"], sale["execprice"], sale["side"]) == ("0.4", "140", "B")
        ltc = await client.expect_type("position", security="LTC")
        usd = await client.expect_type("position", security="USD")
        assert (ltc["curpos"], usd["curpos"]) == ("100.4", "999944")
        partial = await client.expect_type("order")
        assert (partial["orderstatus"], partial["execqty"], partial["liveqty"], partial["execamount"]) == (
            "Open", "0.4", "0.6", "56")  # MID-11: a partial fill stays Open
        await client.send({"type": "queryorder", "security": "LTCUSD", "refno": ack["refno"]})
        query = await client.expect_type("queryorder")
        assert set(query["data"]) == set(sample("queryorder.response")["data"])  # no orderstatus (MID-15)
        assert (query["data"]["liveqty"], query["data"]["execqty"]) == ("0.6", "0.4")
        await client.send({"type": "cancelorder", "security": "LTCUSD", "refno": ack["refno"]})
        answer = await client.expect_type("cancelorder")
        assert answer == {**sample("cancelorder.response"), "refno": ack["refno"], "security": "LTCUSD"}
        cancelled = await client.expect_type("order")
        assert (cancelled["orderstatus"], cancelled["liveqty"]) == ("Cancelled", "0")
        await client.send({"type": "cancelorder", "security": "LTCUSD", "refno": ack["refno"]})
        assert (await client.expect_type("cancelorder"))["result"] == "failed"
        await client.send(sample("cancelorder.request"))
        assert await client.expect_type("cancelorder") == sample("cancelorder_not_found.response")
        await client.send(sample("queryorder.request"))
        assert await client.expect_type("queryorder") == sample("queryorder_not_found.response")


async def test_queries_answer_in_the_documents_shapes() -> None:
    async with running() as venue, ws_client(venue, login=True) as client:
        await client.quiet(0.2)
        await client.send(sample("querymultiorder.request"))
        assert await client.recv() == sample("querymultiorders_empty.response")
        await client.send({"type": "addorder", "security": "LTCUSD", "side": "S", "price": "150", "qty": "2"})
        await client.expect_type("addorder")
        venue.place("LTCUSD", "buy", D("0.5"), D(150))
        await client.expect_type("order", execqty="0.5")
        await client.send(sample("querymultiorder.request"))
        multi = await client.expect_type("querymultiorders")
        assert multi["total_rec"] == 1 and not missing(multi, "querymultiorders.response")
        assert not set(sample("querymultiorders.response")["data"][0]) - set(multi["data"][0])
        await client.send(sample("querytrade.request") | {"fromtime": "0"})
        trades = await client.expect_type("querytrade")
        assert trades["total_rec"] == 1 and not set(sample("querytrade.response")["data"][0]) - set(trades["data"][0])
        assert (trades["data"][0]["commsecurity"], trades["data"][0]["ismaker"]) == ("USD", True)
        await client.send(sample("querypos.request"))
        pos = await client.expect_type("querypos")
        assert not set(sample("querypos.response")) - set(pos) and pos["data"] == [
            {"curpos": "99.5", "rec_no": 1, "security": "LTC", "type": "position"}]
        await client.send({"type": "querypos", "security": "XRP"})
        assert await client.expect_type("querypos") == sample("querypos_none.response")
        await client.send(sample("querypendingpos.request"))
        pending = await client.expect_type("querypendingpos")
        ltc = next(row for row in pending["data"] if row["security"] == "LTC")
        assert ltc == {"security": "LTC", "curpos": "99.5", "rec_no": 2, "managedpos": "1.5", "type": "position",
                       "openpos": "0"}


async def test_records_come_at_most_100_a_message_numbered_across_them() -> None:
    async with running(order_rate=1000, ws_private_rate=(1000, 1000)) as venue, \
            ws_client(venue, login=True) as client:
        await client.quiet(0.2)
        for n in range(150):
            await client.send({"type": "addorder", "security": "LTCUSD", "side": "B", "price": str(100 + n % 10),
                               "qty": "0.01"})
        for _ in range(150):
            assert (await client.expect_type("addorder"))["result"] == "OK"
        await client.send({"type": "querymultiorder", "security": "LTCUSD", "lastfirst": True})
        first = await client.expect_type("querymultiorders")
        second = await client.expect_type("querymultiorders")
        assert (len(first["data"]), len(second["data"]), first["total_rec"], second["total_rec"]) == (100, 50, 150, 150)
        assert [r["rec_no"] for r in first["data"] + second["data"]] == list(range(1, 151))
        await client.send({"type": "querymultiorder", "maxreturn": 3})
        assert len((await client.expect_type("querymultiorders"))["data"]) == 3


async def test_the_documents_market_buy_by_amount_and_its_qty_refusal() -> None:
    async with running() as venue, ws_client(venue, login=True) as client:
        await client.quiet(0.2)
        venue.place("LTCUSD", "sell", D("0.3"), D("183.29"))
        venue.place("LTCUSD", "sell", D(1), D("183.30"))
        await client.send(sample("addorder.request"))
        ack = await client.expect_type("addorder")
        assert not missing(ack, "addorder.response") and ack["amount"] == 180  # a JSON number, as 001's ack
        opened = await client.expect_type("order")
        assert opened["orderstatus"] == "Open" and not missing(opened, "addorder_order_open.push")
        done = await client.expect_type("order")
        assert not missing(done, "addorder_order_executed.push")
        # 180 buys 0.3 @ 183.29 (54.987) + 0.682 @ 183.30 (125.0106): qty rewritten to what executed
        assert (done["orderstatus"], done["qty"], done["execqty"], done["liveqty"]) == (
            "Executed", "0.982", "0.982", "0")
        assert D(done["execamount"]) <= 180
        await client.send({"type": "addorder", "security": "LTCUSD", "side": "B", "ordertype": "MKT", "tif": "IOC",
                           "qty": "180"})
        assert await client.expect_type("addorder") == sample("addorder_qty_market_buy.response")


async def test_reject_texts_are_the_documents() -> None:
    user = WsUser("user@mail.com", PASSWORD)
    async with running(ws_users=(user,), order_rate=100) as venue, \
            ws_client(venue, login=True, user=user.userid) as client:
        await client.quiet(0.2)
        venue.place("BCHUSD", "sell", D(1), D("473.29"))
        await client.send({"type": "addorder", "security": "BCHUSD", "side": "B", "alo": True, "price": "473.29",
                           "qty": "0.29969", "tif": "GTC", "ordertype": "LMT"})
        refused = await client.expect_type("addorder")
        printed = (FIXTURES / "ws_examples.reject_post_only.sample.txt").read_text(encoding="utf-8")
        assert refused == json.loads(printed)  # 001's sample, value for value
        await client.send({"type": "addorder", "security": "LTCUSD", "side": "B", "alo": True, "price": "173.29",
                           "qty": "0.2997", "tif": "GTC", "ordertype": "LMT"})
        assert (await client.expect_type("addorder"))["result"] == "OK"  # nothing to take: it rests
        venue.place("LTCUSD", "sell", D(1), D("173.29"))
        await client.send({"type": "addorder", "security": "LTCUSD", "side": "B", "alo": "true", "price": "173.28",
                           "qty": "0.1"})
        assert (await client.expect_type("addorder"))["result"] == "OK"  # not marketable: rests
        await client.send({"type": "addorder", "security": "LTCUSD", "side": "S", "stoptype": "STOP",
                           "stopprice": "160", "price": "159", "qty": "0.1"})
        assert (await client.expect_type("addorder"))["result"] == "stop orders are not supported"
        await client.send({"type": "addorder", "security": "LTCUSD", "side": "S", "price": "173.28", "qty": "0.1"})
        ack = await client.expect_type("addorder")
        assert ack["result"] == "OK"  # accepted, then refused by the venue: it would trade with our own bid
        washed = await client.expect_type("order", refno=ack["refno"])
        assert (washed["orderstatus"], washed["text"]) == ("Rejected", "wash sale prohibited")
        await client.send({"type": "addorder", "security": "LTCUSD", "side": "B"} | {"price": "1", "qty": "0.00001"})
        assert "fractionbase 10000" in (await client.expect_type("addorder"))["result"]


async def test_balance_and_margin_refusals_echo_and_push_a_rejected_order() -> None:
    users = (WsUser("poor@mail.com", "pw", balances={"USD": D(100), "BTC": D("0.01")}),
             WsUser("capped@mail.com", "pw", balances={"USD": D(10) ** 9}, daily_limit=D(1000)))
    async with running(ws_users=users) as venue:
        venue.place("BTCUSD", "sell", D(1), D(5000))
        async with ws_client(venue, login=True, user="poor@mail.com", password="pw") as client:
            await client.quiet(0.2)
            await client.send({"type": "addorder", "security": "BTCUSD", "side": "B", "ordertype": "MKT",
                               "tif": "IOC", "amount": "5100"})
            echo = await client.expect_type("addorder")
            assert echo["result"] == "no crypto pos" and echo["amount"] == "5100"
            rejected = await client.expect_type("order")
            assert (rejected["orderstatus"], rejected["text"]) == ("Rejected", "no crypto pos")
            assert re.fullmatch(r"64[0-9A-Z]{12}", rejected["refno"])
            await client.send({"type": "addorder", "security": "BTCUSD", "side": "S", "price": "46500",
                               "qty": "0.02"})
            assert (await client.expect_type("addorder"))["result"] == "no crypto pos"
        async with ws_client(venue, login=True, user="capped@mail.com", password="pw") as client:
            await client.quiet(0.2)
            await client.send({"type": "addorder", "security": "BTCUSD", "side": "B", "price": "46500",
                               "qty": "100", "ordertype": "LMT", "tif": "GTC"})
            echo = await client.expect_type("addorder")
            assert echo["result"] == "Exceeds margin limit Exceed total Amount"
            assert (await client.expect_type("order"))["text"] == "Exceeds margin limit Exceed total Amount"


async def test_a_gtt_order_expires_at_its_exptime() -> None:
    async with running() as venue, ws_client(venue, login=True) as client:
        await client.quiet(0.2)
        exptime = str((venue.clock.now_ns() // 1_000_000_000 + 3) * 1000)
        await client.send({"type": "addorder", "security": "ETHUSD", "side": "B", "price": "3782.01",
                           "qty": "0.0825", "tif": "GTT", "exptime": exptime})
        assert (await client.expect_type("addorder"))["result"] == "OK"
        await client.expect_type("order", orderstatus="Open")
        expired = await client.expect_type("order", timeout=10)
        assert (expired["orderstatus"], expired["text"], expired["exptime"]) == (
            "Cancelled", "GTT order expired", exptime)
        await client.send({"type": "addorder", "security": "ETHUSD", "side": "B", "price": "1", "qty": "1",
                           "tif": "GTT", "exptime": "1631004134"})
        assert (await client.expect_type("addorder"))["result"] == "exptime is in the past"


async def test_bad_json_is_the_documents_error_unknown_types_are_ignored() -> None:
    async with running() as venue, ws_client(venue) as client:
        for bad in ('{"type": "addorder"', "[1, 2]", '{"type": 7}', "[" * 100_000, "nul\x00"):
            await client.send(bad)
            assert await client.recv() == {"result": "error parsing json"}  # 001's last sample
        await client.send({"type": "newfeature", "x": 1})
        await client.send({"type": "addorder", "security": "LTCUSD", "side": "B", "price": "1", "qty": "1"})
        assert await client.recv() == {"result": "not logged in", "type": "addorder"}
        assert venue.counters["ws.ignored"] == 1 and venue.counters["ws.bad_json"] == 5
        assert venue.counters.get("ws.internal_errors", 0) == 0


async def test_a_fill_of_a_resting_order_reaches_every_connection_of_its_user() -> None:
    async with running() as venue, ws_client(venue, login=True) as one, ws_client(venue, login=True) as two:
        await one.quiet(0.2)
        await two.quiet(0.2)
        await one.send({"type": "addorder", "security": "LTCUSD", "side": "S", "price": "150", "qty": "1"})
        await one.expect_type("addorder")
        await asyncio.sleep(0)
        venue.place("LTCUSD", "buy", D(1), D(150))
        for client in (one, two):
            assert (await client.expect_type("order", orderstatus="Executed"))["execqty"] == "1"


async def test_hostile_values_are_refused_by_name_never_a_crash() -> None:
    async with running(order_rate=100, ws_private_rate=(100, 100), ws_public_rate=(100, 100)) as venue, \
            ws_client(venue, login=True) as client:
        await client.quiet(0.2)
        cases = [
            ({"qty": "1e9999999999999999999"}, "qty '1e9999999999999999999' is not a number"),
            ({"qty": "NaN"}, "qty must be positive"),
            ({"qty": ["1"]}, "qty is required"),
            ({"qty": True}, "qty is required"),
            ({"price": "-1"}, "price must be positive"),
            ({"price": "abc"}, "price 'abc' is not a number"),
            ({"security": {"x": 1}}, "invalid security"),
            ({"side": "X"}, "side must be B or S"),
            ({"tif": "DAY"}, "tif must be GTC, IOC, FOK or GTT"),
            ({"tif": "GTT", "exptime": "soon"}, "exptime (POSIX seconds or milliseconds) is required"),
            ({"alo": "maybe"}, "alo must be true or false"),
            ({"clientorderid": "x" * 65}, "clientorderid must be text"),
        ]
        for change, words in cases:
            await client.send({"type": "addorder", "security": "LTCUSD", "side": "B", "price": "100", "qty": "0.1"}
                              | change)
            answer = await client.expect_type("addorder")
            assert answer["result"].startswith(words), (change, answer)
        await client.send('{"type":"addorder","security":"LTCUSD","side":"X","qty":"1","extra":1e999999999}')
        assert (await client.expect_type("addorder"))["extra"] == "1E+999999999"  # echoed as text, at once
        for request in ({"type": "subscribe", "request": "book"}, {"type": "subscribe", "request": [7]},
                        {"type": "cancelorder", "refno": ["x"]}, {"type": "queryorder"},
                        {"type": "querymultiorder", "maxreturn": "lots", "fromtime": {"a": 1}}):
            await client.send(request)
            assert "result" in await client.recv()
        assert venue.counters.get("ws.internal_errors", 0) == 0 and venue.ws.orders(USER) == []  # type: ignore[union-attr]


async def test_trade_history_blocks_and_high_low_in_the_documents_forms() -> None:
    async with running() as venue, ws_client(venue) as client:
        await client.send(sample("subscribehighlow.request"))
        assert await client.recv() == sample("subscribehighlow.response")
        first = [await client.expect_type("highlow") for _ in venue.pairs]
        ltc = next(m for m in first if m["security"] == "LTCUSD")
        assert ltc == {"security": "LTCUSD", "prevcloseprice": "140", "type": "highlow"}  # 001's first form
        venue.place("LTCUSD", "sell", D(2), D("174.69"))
        venue.place("LTCUSD", "buy", D("0.9375"), D("174.69"))
        opened = await client.expect_type("highlow")
        assert set(opened) == set(sample("highlow_full.push"))
        assert (opened["openingprice"], opened["highprice"], opened["lowprice"]) == ("174.69",) * 3
        venue.place("LTCUSD", "buy", D("0.5"), D("174.69"))  # same price: no new high or low, no push
        venue.place("LTCUSD", "sell", D("0.1"), D("170"))
        venue.place("LTCUSD", "buy", D("0.1"), D("170"))
        low = await client.expect_type("highlow")
        assert (low["highprice"], low["lowprice"]) == ("174.69", "170")
        await client.send(sample("tradehistory.request"))
        bars = await client.expect_type("tradehistory")
        assert set(bars) == set(sample("tradehistory.response")) and set(bars["data"][0]) == set(
            sample("tradehistory.response")["data"][0])
        volume = sum(D(row["volume"]) for row in bars["data"])
        assert volume == D("1.5375") and bars["total_rec"] == str(len(bars["data"]))
        await client.send(sample("lshistory.request") | {"security": "LTCUSD", "starttime": "1630530000"})
        ticks = await client.expect_type("lshistory")
        assert set(ticks) == set(sample("lshistory.response")) and ticks["total_rec"] == "3"
        assert [(r["execprice"], r["execqty"]) for r in ticks["data"]] == [
            ("174.69", "0.9375"), ("174.69", "0.5"), ("170", "0.1")]
        assert set(ticks["data"][0]) == set(sample("lshistory.response")["data"][0])
