"""The MidChains sandbox's WebSocket API as part of ONE venue (issue 24): an order placed over the
WebSocket shows in the FIX market data and a FIX order fills against it; one 4/s order window for a
user on both protocols (MID-9); the request buckets; each WebSocket fault; document-literal versus
everyday answers; the command line. Clients: ``websockets`` + ``cryptography`` and a bare simplefix
FIX client (tests/support), none of the adapter's code."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import ssl
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import simplefix
from support import REPO
from support.midchains_client import logged_on, new_order, running, text
from support.midchains_ws_client import PASSWORD, USER, ws_client
from support.tls import self_signed

from adapters.midchains.sandbox import WsUser, parse_fault
from adapters.sim.faults import parse_fault_spec

pytestmark = pytest.mark.anyio
D = Decimal
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "midchains"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def x_entries(message: simplefix.FixMessage) -> list[dict[int, str]]:
    found: list[dict[int, str]] = []
    for tag, value in message.pairs:
        number = int(tag)
        if number == 279:
            found.append({})
        if found:
            found[-1][number] = value.decode()
    return found


async def test_a_websocket_order_shows_in_the_fix_feed_and_a_fix_order_fills_it() -> None:
    async with running() as venue, logged_on(venue, md=True) as feed, logged_on(venue) as fix, \
            ws_client(venue, login=True) as ws:
        await ws.quiet(0.2)
        await ws.send({"type": "subscribe", "request": [{"msg": "book", "security": "LTCUSD", "dest": "CROX"}]})
        await ws.send({"type": "addorder", "security": "LTCUSD", "side": "S", "price": "150", "qty": "0.5"})
        ack = await ws.expect_type("addorder")
        added = await feed.expect("X")
        entry = x_entries(added)[0]
        assert (entry[279], entry[269], entry[270], entry[271]) == ("0", "1", "150", "0.5")
        assert entry[58] == ack["refno"]  # one order, one id: FIX market data's 58 is the WebSocket refno
        fix.send("D", *new_order("C1", side="1", qty=2, base=10, price="150"))  # buy 0.2 from FIX
        report = await fix.expect("8", where=lambda m: text(m, 150) == "2" or text(m, 150) == "1")
        assert (text(report, 31), text(report, 43214)) == ("150.0", "T")
        sale = await ws.expect_type("sale")
        assert (sale["refno"], sale["execqty"], sale["ismaker"], sale["side"]) == (ack["refno"], "0.2", True, "S")
        order = await ws.expect_type("order", refno=ack["refno"])
        assert (order["orderstatus"], order["liveqty"]) == ("Open", "0.3")
        trade = await feed.expect("X", where=lambda m: any(e.get(269) == "2" for e in x_entries(m)))
        print_ = next(e for e in x_entries(trade) if e.get(269) == "2")
        assert (print_[270], print_[271], print_[58]) == ("150", "0.2", ack["refno"])
        book = await ws.expect(lambda m: m.get("type") == "book" and m["books"][0]["qty"] == "0.3")
        assert book["books"][0]["act"] == "U"
        # and the other way: a FIX order rests, a WebSocket order takes it (another pair: the WebSocket
        # user's own LTCUSD ask would stop its buy first, "wash sale prohibited")
        fix.send("D", *new_order("C2", side="2", qty=1, base=10, price="151", symbol="ETHUSD"))
        await fix.expect("8", where=lambda m: text(m, 11) == "C2")
        await ws.send({"type": "addorder", "security": "ETHUSD", "side": "B", "price": "151", "qty": "0.1",
                       "tif": "IOC"})
        assert (await ws.expect_type("sale"))["ismaker"] is False
        filled = await fix.expect("8", where=lambda m: text(m, 11) == "C2" and text(m, 150) == "2")
        assert text(filled, 43214) == "P"


async def test_a_linked_user_has_one_order_window_and_one_account_on_both_protocols() -> None:
    linked = WsUser("trader@mail.com", PASSWORD, comp_id="YOURSENDCOMP")
    async with running(ws_users=(linked,)) as venue, logged_on(venue) as fix, \
            ws_client(venue, login=True, user=linked.userid) as ws:
        await ws.quiet(0.2)
        for n in range(3):
            fix.send("D", *new_order(f"L{n}", side="1", qty=1, base=10, price="100"))
        for _ in range(2):  # at once: five orders of one user within a second, on two sockets
            await ws.send({"type": "addorder", "security": "LTCUSD", "side": "B", "price": "100", "qty": "0.1"})
        reports = [await fix.expect("8", where=lambda m, n=n: text(m, 11) == f"L{n}") for n in range(3)]
        acks = [(await ws.expect_type("addorder"))["result"] for _ in range(2)]
        refused = [text(r, 58) for r in reports if text(r, 39) == "8"] + [a for a in acks if a != "OK"]
        assert refused == ["exceed order/sec limit"]  # whichever arrived fifth; 4 orders/s per user (MID-9)
        assert venue.violations()["orders"] == 1
        first = next(text(r, 11) for r in reports if text(r, 39) == "0")
        venue.place("LTCUSD", "sell", D("0.1"), D(100))  # fills the first FIX bid (time priority)
        await fix.expect("8", where=lambda m: text(m, 11) == first and text(m, 150) == "2")
        position = await ws.expect_type("position", security="LTC")
        assert position["curpos"] == "100.1"  # a FIX fill moved the linked WebSocket account


async def test_request_buckets_and_the_order_rate_are_counted_with_the_documents_text() -> None:
    async with running() as venue, ws_client(venue, login=True) as client:
        await client.quiet(0.2)
        for _ in range(8):
            await client.send({"type": "getsymbols"})
        answers = [await client.expect_type("getsymbols") for _ in range(8)]
        refused = [a for a in answers if a.get("result") == "exceed request/sec limit"]
        assert 3 <= len(refused) <= 5  # burst 6 less the challenge and login, plus what refilled meanwhile
        for _ in range(6):
            await client.send({"type": "addorder", "security": "LTCUSD", "side": "B", "price": "100", "qty": "0.1"})
        results = [(await client.expect_type("addorder"))["result"] for _ in range(6)]
        assert results.count("OK") == 4 and results.count("exceed order/sec limit") == 2
        for _ in range(10):
            await client.send({"type": "querypos"})
        private = [(await client.expect_type("querypos"))["result"] for _ in range(10)]
        assert "exceed request/sec limit" in private  # 6 orders + 10 queries > a burst of 10
        violations = venue.violations()
        assert violations["orders"] == 2 and violations["messages"] == venue.counters["ws.public_rate_violations"] \
            + venue.counters["ws.private_rate_violations"] >= len(refused) + 1


async def test_drop_fault_aborts_every_websocket() -> None:
    async with running() as venue, ws_client(venue, login=True) as client:
        await client.quiet(0.2)
        venue.apply_fault(parse_fault("ws.drop"))
        assert await client.closed() == 1006  # no close frame: aborted
        assert not venue.ws.conns  # type: ignore[union-attr]


async def test_stall_fault_holds_messages_then_sends_them_all() -> None:
    async with running() as venue, ws_client(venue) as client:
        venue.apply_fault(parse_fault("ws.stall,seconds=2"))
        await client.send({"type": "getsymbols"})
        assert await client.quiet(0.5) == []
        assert (await client.recv(timeout=5))["type"] == "getsymbols"


async def test_garbage_fault_sends_the_documents_invalid_forms() -> None:
    async with running() as venue, ws_client(venue) as client:
        venue.apply_fault(parse_fault("ws.garbage,count=2"))
        await client.send({"type": "challenge"})
        await client.expect_type("challenge")
        from support.midchains_ws_client import seal
        key = json.loads(client.raw[-1])["key"]
        await client.send({"type": "login", "userid": USER, "pass": seal(key, PASSWORD)})
        raw = await client.recv_raw()
        assert raw.endswith('"userid":"USERNAME",}')  # 001's trailing comma
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw)
        await client.quiet(0.2)
        for _ in range(5):
            await client.send({"type": "addorder", "security": "ETHUSD", "side": "B", "price": "3782.01",
                               "qty": "0.0825", "tif": "GTT", "alo": "true", "exptime": "9631004134000"})
        repr_form = ""
        while "exceed order/sec limit" not in repr_form:
            repr_form = await client.recv_raw()
        assert repr_form.startswith("{'result': 'exceed order/sec limit'")
        assert ast.literal_eval(repr_form)["alo"] == "true"  # as 001's sample: a Python dict, strings
        venue.apply_fault(parse_fault("ws.garbage,text=doc:order_rate"))
        printed = (FIXTURES / "ws_examples.reject_order_rate.sample.txt").read_text(encoding="utf-8").strip()
        assert await client.recv_raw() == printed


async def test_slow_fault_leaves_a_login_unanswered_until_the_deadline_closes_it() -> None:
    async with running(ws_login_timeout_s=3.0) as venue, ws_client(venue) as client:
        venue.apply_fault(parse_fault("ws.slow,count=1,delay_s=0"))
        await client.send({"type": "challenge"})
        key = (await client.expect_type("challenge"))["key"]
        from support.midchains_ws_client import seal
        await client.send({"type": "login", "userid": USER, "pass": seal(key, PASSWORD)})
        assert await client.closed(timeout=10) == 1008
        assert not any(json.loads(raw).get("type") == "login" for raw in client.raw if raw.startswith("{\""))
        assert venue.counters["ws.logins_unanswered"] == 1 and venue.counters["ws.login_timeouts"] == 1


async def test_reject_fault_refuses_the_next_websocket_order_with_its_reason() -> None:
    async with running() as venue, ws_client(venue, login=True) as client:
        await client.quiet(0.2)
        venue.apply_fault(parse_fault("ws.reject,count=1,reason=no crypto pos"))
        await client.send({"type": "addorder", "security": "LTCUSD", "side": "B", "price": "100", "qty": "0.1"})
        assert (await client.expect_type("addorder"))["result"] == "no crypto pos"
        await client.send({"type": "addorder", "security": "LTCUSD", "side": "B", "price": "100", "qty": "0.1"})
        ack = await client.expect_type("addorder")
        assert ack["result"] == "OK"
        venue.apply_fault(parse_fault("ws.reject_cancels,duration_s=30"))
        await client.send({"type": "cancelorder", "security": "LTCUSD", "refno": ack["refno"]})
        assert (await client.expect_type("cancelorder"))["result"] == "failed"
        assert venue.ws.orders(USER)[-1]["orderstatus"] == "Open"  # type: ignore[union-attr]  # still working


async def test_a_halted_pair_is_announced_and_refuses_orders_on_both_protocols() -> None:
    async with running() as venue, logged_on(venue) as fix, ws_client(venue, login=True) as ws:
        await ws.quiet(0.2)
        await ws.send({"type": "subscribesymbolstatus"})
        assert await ws.recv() == {"result": "OK", "type": "subscribesymbolstatus"}
        snapshot = await ws.expect_type("symbolstatus")
        assert {row["status"] for row in snapshot["data"]} == {"Normal"}  # everyday: the current status
        venue.apply_fault(parse_fault("halt,symbol=BCHUSD,duration_s=1"))
        halted = await ws.expect_type("symbolstatus")
        assert [(r["security"], r["status"]) for r in halted["data"]] == [("BCHUSD", "Halt")]
        await ws.send({"type": "addorder", "security": "BCHUSD", "side": "B", "price": "471.43", "qty": "0.1"})
        assert (await ws.expect_type("addorder"))["result"] == "trading in BCHUSD is halted"
        fix.send("D", *new_order("H1", symbol="BCHUSD", qty=1, base=10, price="471.43"))
        refused = await fix.expect("8", where=lambda m: text(m, 11) == "H1")
        assert (text(refused, 39), text(refused, 58)) == ("8", "trading in BCHUSD is halted")
        normal = await ws.expect_type("symbolstatus", timeout=10)
        assert normal["data"][0]["status"] == "Normal"


async def test_document_literal_mode_answers_in_the_documents_own_forms() -> None:
    async with running(literal=True) as venue, ws_client(venue) as client:
        await client.send({"type": "challenge"})
        key = (await client.expect_type("challenge"))["key"]
        from support.midchains_ws_client import seal
        await client.send({"type": "login", "userid": USER, "pass": seal(key, PASSWORD)})
        raw = await client.recv_raw()
        assert raw.endswith(",}") and '"need2FA":true' in raw and '"use2fa":"Y"' in raw  # 001's sample
        await client.quiet(0.2)
        await client.send({"type": "subscribesymbolstatus"})
        assert await client.recv() == {"result": "OK", "type": "subscribesymbolstatus"}
        assert await client.quiet(0.3) == []  # literal: only changes are pushed
        await client.send({"type": "addorder", "security": "ETHUSD", "side": "B", "price": "3782.01", "qty": "0.1",
                           "tif": "GTT", "exptime": "9631004134123"})
        assert (await client.recv())["result"] == "exptime: milliseconds are not supported"
        for _ in range(5):
            await client.send({"type": "addorder", "security": "ETHUSD", "side": "B", "price": "1", "qty": "1"})
        repr_form = ""
        while "exceed order/sec limit" not in repr_form:
            repr_form = await client.recv_raw()
        assert ast.literal_eval(repr_form)["result"] == "exceed order/sec limit"  # 001's dict repr, not JSON


async def test_everyday_mode_keeps_valid_json_and_millisecond_exptimes() -> None:
    async with running() as venue, ws_client(venue, login=True) as client:
        assert not any(raw.endswith(",}") for raw in client.raw)
        await client.quiet(0.2)
        await client.send({"type": "addorder", "security": "ETHUSD", "side": "B", "price": "3782.01", "qty": "0.1",
                           "tif": "GTT", "exptime": "9631004134123"})
        assert (await client.expect_type("addorder"))["result"] == "OK"
        for _ in range(5):
            await client.send({"type": "addorder", "security": "ETHUSD", "side": "B", "price": "1", "qty": "1"})
        refused = await client.expect(lambda m: m.get("result") == "exceed order/sec limit")
        assert refused["type"] == "addorder"  # everyday: valid JSON (literal: 001's dict repr)


def test_ws_faults_are_read_by_the_one_vocabulary_and_refused_where_they_do_not_apply() -> None:
    assert parse_fault("ws.garbage,text=doc:login").target == "ws"
    assert parse_fault("ws.slow,count=2,delay_s=0.5").params == {"count": 2, "delay_s": D("0.5")}
    assert parse_fault("halt,symbol=LTCUSD,duration_s=5").kind == "halt"
    assert parse_fault_spec("ws.drop").target == "ws"
    for bad, words in (("garbage", "ws.garbage"), ("ws.gap", "not gap"), ("ws.day_reset", "not day_reset"),
                       ("feed.halt,symbol=LTCUSD,duration_s=1", "both protocols"), ("broker.slow", "ws.slow")):
        with pytest.raises(ValueError, match=words):
            parse_fault(bad)


def test_the_command_line_serves_the_websocket_and_never_prints_a_password(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("alice@mail.com:s3cret-Passphrase\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "adapters.midchains.sandbox", "--port", "0", "--md-port", "0", "--ws-port", "0",
         "--no-market", "--duration", "1", "--ws-users-file", str(users)],
        capture_output=True, text=True, timeout=60, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "WebSocket JSON API ws://127.0.0.1:" in proc.stdout
    assert "s3cret-Passphrase" not in proc.stdout + proc.stderr
    assert "s3cret" not in repr(WsUser("alice@mail.com", "s3cret-Passphrase"))  # a user prints without it
    bad = tmp_path / "bad"
    bad.write_text("no-colon-here\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "adapters.midchains.sandbox", "--port", "0", "--md-port", "0", "--ws-port", "0",
         "--no-market", "--duration", "1", "--ws-users-file", str(bad)],
        capture_output=True, text=True, timeout=60, env=env, cwd=REPO)
    assert proc.returncode == 2 and "USERID:PASSWORD" in proc.stderr and "no-colon-here" not in proc.stderr


async def test_every_connection_is_closed_when_the_sandbox_stops() -> None:
    async with running() as venue:
        async with ws_client(venue, login=True) as client:
            await client.quiet(0.1)
            task = asyncio.ensure_future(client.closed(timeout=10))
            await venue.__aexit__(None, None, None)
            assert await task is not None
        assert not venue.ws.conns  # type: ignore[union-attr]


async def test_the_websocket_serves_wss_with_the_fix_acceptors_certificate(tmp_path: Path) -> None:
    """001's wss:// URL; MID-12: a self-signed certificate, the client's CA bundle (made here with
    cryptography, the library the RSA login uses)."""
    cert_path, server = self_signed(tmp_path)
    async with running(tls=server) as venue:
        assert venue.ws_url.startswith("wss://127.0.0.1:")
        async with ws_client(venue, login=True, tls=ssl.create_default_context(cafile=str(cert_path))) as client:
            assert (await client.expect_type("position", security="USD"))["curpos"] == "1000000"


def test_other_venues_refuse_the_ws_prefix_by_name() -> None:
    """``ws.`` joined the vocabulary's targets for this sandbox; the combined PSX venue, which
    serves feed and broker, refuses it with a ValueError naming both (not a KeyError)."""
    from adapters.psx.sandbox import check_fault

    with pytest.raises(ValueError, match="psx serves feed and broker, not ws"):
        check_fault("ws.drop", {})
