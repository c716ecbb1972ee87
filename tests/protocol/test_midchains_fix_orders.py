"""MidChains FIX order entry (adapters/midchains/orders.py, adapter.py) fed the document's own
examples: 001's D, ER NEW, ER FILL, F and its echo, G and its echo, as printed in
tests/fixtures/midchains/fix_examples.txt (9 and 10 recomputed; every other byte kept). 001 has no
OrderCancelReject (9) example: the one here is built from its table (tags 41, 37, 11, 39, 102, 58,
434, 17) with the F example's ClOrdIDs.

Two levels: the mapping alone (bodies we send, reports we read), then the adapter against a
scripted gateway on 127.0.0.1 that counts every frame as it arrives."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import anyio
import anyio.abc
import pytest
from support.midchains_fix import CLIENT, GATEWAY, NS, at, examples
from support.midchains_gateway import Reply, ScriptedGateway
from support.sinks import RecordingSink
from support.threaded import served_in_thread, serving
from support.tls import self_signed

from adapters.kit.pacing import max_in_window
from adapters.midchains.adapter import MidChainsFixAdapter
from adapters.midchains.codec import FixMessage, decode, reframe
from adapters.midchains.options import MidChainsFixOptions
from adapters.midchains.orders import (
    OrderError,
    OrderTerms,
    fraction_base,
    new_order_body,
    parse_cancel_reject,
    parse_exec_report,
    reject_code,
)
from adapters.midchains.sandbox import MidChainsSandbox
from adapters.midchains.state import OrderRow, OrderState
from engine.model import Instrument, Liquidity, Order, OrderStatus, OrderType, Side, TimeInForce
from engine.venue.clock import WallClock
from engine.venue.rejects import Reject

D = Decimal
S = OrderStatus
LTC = Instrument("LTCUSD", "midchains", tick_size=D("0.01"), lot_size=D("0.0001"))
#: the D example's ClOrdID: used as our client id so the document's ERs answer our order verbatim
DOC_ID = "43637618552482556000"
TENTH = D("0.1")
PRICE = D(150)


def documented(msg_type: str, sender: str = GATEWAY) -> list[FixMessage]:
    """Every 001 example of ``msg_type`` from ``sender``, as decoded messages (9/10 recomputed)."""
    found = []
    for line in examples():
        raw = line.replace("^A", "\x01").encode()
        if f"\x0135={msg_type}\x01".encode() in raw and f"\x0149={sender}\x01".encode() in raw:
            found.append(decode(reframe(raw)))
    return found


def body(message: FixMessage, **changes: str) -> list[tuple[int, str]]:
    """The example's body fields (header and trailer off), a few values changed by tag (``t11=``)."""
    return [(tag, changes.get(f"t{tag}", value)) for tag, value in message.body()]


ER_NEW, ER_FILL = documented("8")
D_EXAMPLE = documented("D", "YOURSENDCOMP")[0]
F_ECHO = documented("F")[0]
G_ECHO = documented("G")[0]


def cancel_reject(clordid: str, orig: str, text: str = "order not found", response_to: str = "1") -> FixMessage:
    fields = [(8, "FIX.4.2"), (9, "0"), (35, "9"), (41, orig), (37, "62XGZUU7W05SC3"), (11, clordid), (39, "0"),
              (102, "1"), (58, text), (434, response_to), (17, "CR1"), (10, "000")]
    frame = b"".join(b"%d=%s\x01" % (tag, value.encode()) for tag, value in fields)
    return decode(reframe(frame))


# ---- the mapping alone ------------------------------------------------------------------------


def test_the_d_example_is_what_we_send_for_its_order() -> None:
    """001's D: LTCUSD buy limit GTC 0.1 (38=1 at 43229=10; the text's "0.01" is MID-3's error)."""
    terms = OrderTerms(DOC_ID, "LTCUSD", Side.BUY, D("0.1"), D(150), OrderType.LIMIT, TimeInForce.GTC,
                       fraction_base(LTC, "LTCUSD", D("0.1"), {"LTCUSD": 10}))
    sent = dict(new_order_body(terms, "2", None, "gtd", at("2021-07-14 10:31:02.552")))
    assert {tag: sent[tag] for tag in (11, 21, 38, 40, 44, 54, 55, 59, 60, 43229)} == {
        tag: D_EXAMPLE.get(tag) for tag in (11, 21, 38, 40, 44, 54, 55, 59, 60, 43229)}


def test_fraction_base_rule() -> None:
    # the symbol's own base from 001's getsymbols; an instrument's lot precision otherwise; raised when needed
    assert fraction_base(LTC, "LTCUSD", D("0.1"), {}) == 10_000
    other = Instrument("XYZUSD", "midchains", lot_size=D("0.001"))
    assert fraction_base(other, "XYZUSD", D("2"), {}) == 1000
    assert fraction_base(other, "XYZUSD", D("0.00025"), {}) == 100_000
    with pytest.raises(OrderError) as refused:
        fraction_base(other, "XYZUSD", D("1e-19"), {})
    assert refused.value.code == Reject.INVALID_QUANTITY


def test_reports_are_rescaled_by_their_own_fraction_base() -> None:
    """The D went out at 43229=10 (38=1); the ERs come back at 43229=10000 (38=1000): both 0.1."""
    new, fill = parse_exec_report(ER_NEW), parse_exec_report(ER_FILL)
    assert (new.status, new.qty, new.cum_qty, new.leaves_qty, new.is_fill) == (S.NEW, D("0.1"), 0, D("0.1"), False)
    assert (fill.status, fill.last_qty, fill.last_px, fill.cum_qty) == (S.FILLED, D("0.1"), D("141.78"), D("0.1"))
    assert fill.liquidity is Liquidity.TAKER and fill.exec_id == "62XGZUU7W05SC32_62XGZUU7W05T"
    assert isinstance(fill.last_px, Decimal)


def test_day_order_goes_gtd_with_a_full_utc_expire_time() -> None:
    """MID-6: 126 as YYYYMMDD-HH:MM:SS.sss (not 001's time-only 17:18:02.544), at the trading day's
    end, 01:00 UTC (MID-13)."""
    terms = OrderTerms("c1", "LTCUSD", Side.SELL, D("0.1"), D(150), OrderType.LIMIT, TimeInForce.DAY, 10_000,
                       at("2021-07-15 01:00:00"))
    sent = dict(new_order_body(terms, "2", None, "gtd", at("2021-07-14 10:31:02.552")))
    assert (sent[59], sent[126]) == ("6", "20210715-01:00:00.000")
    assert dict(new_order_body(terms, "2", None, "gtc", at("2021-07-14 10:31:02.552")))[59] == "1"


def test_market_buy_cannot_be_expressed() -> None:
    terms = OrderTerms("c1", "LTCUSD", Side.BUY, D("0.1"), None, OrderType.MARKET, TimeInForce.IOC, 10_000)
    with pytest.raises(OrderError) as refused:
        new_order_body(terms, "2", None, "gtd", 0)
    assert refused.value.code == Reject.ORDER_TYPE_NOT_SUPPORTED
    sell = OrderTerms("c1", "LTCUSD", Side.SELL, D("0.1"), None, OrderType.MARKET, TimeInForce.DAY, 10_000)
    sent = dict(new_order_body(sell, "2", None, "gtd", 0))
    assert (sent[40], sent[59]) == ("1", "3") and 44 not in sent  # market: IOC (001's table)


@pytest.mark.parametrize(("text", "code"), [
    ("exceed order/sec limit", Reject.RATE_LIMIT_EXCEEDED),
    ("market buy not supported", Reject.ORDER_TYPE_NOT_SUPPORTED),
    ("no crypto pos", Reject.POSITION_NOT_HELD),
    ("wash sale prohibited", Reject.SELF_TRADE_PREVENTED),
    ("Exceeds margin limit Exceed total Amount", Reject.INSUFFICIENT_BUYING_POWER),
    ("order not found", Reject.ORDER_NOT_OPEN),
    ("something the document never says", Reject.EXCHANGE_REJECT),
])
def test_reject_texts_map_to_engine_codes(text: str, code: Reject) -> None:
    assert reject_code(text) == code


def test_cancel_reject_fields() -> None:
    refusal = parse_cancel_reject(cancel_reject("63637618640333706000", "62637618638809898000"))
    assert (refusal.response_to, refusal.code, refusal.text) == ("F", Reject.ORDER_NOT_OPEN, "order not found")


# ---- the adapter against a gateway ------------------------------------------------------------

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Rig:
    gateway: ScriptedGateway
    adapter: MidChainsFixAdapter
    sink: RecordingSink
    state: Path

    def order(self, side: Side = Side.BUY, qty: D = TENTH, price: D | None = PRICE, *, client_id: str = "",
              order_type: OrderType = OrderType.LIMIT, tif: TimeInForce = TimeInForce.GTC) -> Order:
        order = Order(client_id or f"t-{len(self.sink.orders) + 1}", "test", "midchains", "LTCUSD", side, qty, price,
                      order_type, tif)
        self.sink.orders[order.client_id] = order
        return order

    def submit(self, *args: object, **kwargs: object) -> Order:
        order = self.order(*args, **kwargs)  # type: ignore[arg-type]
        self.adapter.submit(order)
        return order

    async def working(self) -> Order:
        """001's example order (11=DOC_ID) sent and acknowledged by the document's ER 39=0: working."""
        order = self.submit(client_id=DOC_ID)
        await until(lambda: self.gateway.received("D"), "the D")
        await self.gateway.send("8", body(ER_NEW))
        await until(lambda: order.status is S.NEW, "acknowledged")
        return order

    async def replace_sent(self, order: Order, price: D | None, qty: D | None) -> dict[int, str]:
        """Amend ``order`` as the runtime does and return the fields of the G the gateway received."""
        order.request_replace(price, qty)
        self.adapter.amend(order, price, qty)
        await until(lambda: self.gateway.received("G"), "the G")
        return self.gateway.received("G")[0].fields


async def until(condition: object, what: str, timeout: float = 10,
                unless: Callable[[], str | None] | None = None) -> None:
    """Wait for ``condition``; fail at once with ``unless``'s answer when it gives one (the wait
    can no longer succeed), and after ``timeout`` naming ``what``."""
    with anyio.move_on_after(timeout):
        while not condition():  # type: ignore[operator]
            if unless is not None and (why := unless()):
                pytest.fail(f"waiting for {what}: {why}")
            await anyio.sleep(0.005)
        return
    pytest.fail(f"{what}: not seen in {timeout} s")


def options(port: int, state: Path, **extra: object) -> MidChainsFixOptions:
    return MidChainsFixOptions(host="127.0.0.1", port=port, tls=False, sender_comp_id=CLIENT, target_comp_id=GATEWAY,
                               state_file=state, reconnect_min_s=0.05, reconnect_max_s=0.2, **extra)


async def connected(port: int, state: Path, sink: RecordingSink, tasks: anyio.abc.TaskGroup,
                    **extra: object) -> MidChainsFixAdapter:
    """The order adapter to the gateway or sandbox on ``port``, its tasks in ``tasks``, connected."""
    adapter = MidChainsFixAdapter("midchains", options(port, state, **extra), [LTC], WallClock(), sink)
    adapter.set_rate_limits(adapter.rate_limits)
    adapter.bind(tasks)
    await adapter.connect()
    return adapter


@asynccontextmanager
async def rig(tmp_path: Path, on_application: object = None, known: tuple[Order, ...] = (),
              **extra: object) -> AsyncIterator[Rig]:
    async with anyio.create_task_group() as tasks:
        gateway = ScriptedGateway(on_application)  # type: ignore[arg-type]
        await gateway.start(tasks)
        sink = RecordingSink()
        sink.orders.update({order.client_id: order for order in known})  # the engine's, from its journal
        state = tmp_path / "midchains.sqlite"
        adapter = await connected(gateway.port, state, sink, tasks, **extra)
        r = Rig(gateway, adapter, sink, state)
        try:
            yield r
        finally:
            await r.adapter.close()
            await gateway.stop()
            tasks.cancel_scope.cancel()
    assert sink.errors == []


async def test_document_order_reports_scaled_and_a_duplicate_fill_dropped(tmp_path: Path) -> None:
    """Our D for the document's order (sent at 43229=10000, the symbol's base), answered with 001's
    ER NEW and ER FILL verbatim (43229=10000), the FILL twice: one fill of 0.1 at 141.78, taker."""
    async with rig(tmp_path) as r:
        r.adapter.fix_options.fraction_bases["LTCUSD"] = 10  # send as the document does: 38=1, 43229=10
        order = r.submit(client_id=DOC_ID)
        await until(lambda: r.gateway.received("D"), "the D")
        sent = r.gateway.received("D")[0].fields
        assert (sent[11], sent[38], sent[43229], sent[44], sent[54], sent[59]) == (DOC_ID, "1", "10", "150", "1", "1")
        await r.gateway.send("8", body(ER_NEW))
        await until(lambda: order.status is S.NEW, "acknowledged")
        assert order.venue_order_id == "62XGZUU7W05SC3"
        await r.gateway.send("8", body(ER_FILL))
        await r.gateway.send("8", body(ER_FILL))  # the same ExecID again
        await until(lambda: order.status is S.FILLED, "filled")
        await anyio.sleep(0.1)
        fills = r.sink.fills_for(DOC_ID)
        assert [(f.qty, f.price, f.liquidity) for f in fills] == [(D("0.1"), D("141.78"), Liquidity.TAKER)]
        assert r.sink.duplicate_fills == 0 and r.adapter.stats()["duplicate_fills"] == 1
        seen = await r.adapter.query_order(DOC_ID)
        assert seen is not None and (seen.status, seen.cum_qty) == (S.FILLED, D("0.1"))


async def test_cancel_echo_stays_pending_a_9_refuses_and_an_er_cancels(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        order = await r.working()
        order.transition(S.PENDING_CANCEL)
        r.adapter.cancel(order)
        await until(lambda: r.gateway.received("F"), "the F")
        f = r.gateway.received("F")[0].fields
        assert f[41] == DOC_ID and f[11] != DOC_ID and f[11].startswith(DOC_ID) and len(f[11]) <= 32
        assert f[37] == "62XGZUU7W05SC3"
        # MID-4: 001's "reply" is the F echoed (its ClOrdIDs set to ours): pending, not done
        await r.gateway.send("F", body(F_ECHO, t11=f[11], t41=f[41]))
        await anyio.sleep(0.2)
        assert order.status is S.PENDING_CANCEL and r.adapter.stats()["echoes"] == 1
        refused = cancel_reject(f[11], f[41], "order not found")
        await r.gateway.send("9", body(refused))
        await until(lambda: order.status is S.NEW, "the cancel refused")
        assert r.sink.updates_for(DOC_ID)[-1].reject_code == Reject.ORDER_NOT_OPEN
        order.transition(S.PENDING_CANCEL)
        r.adapter.cancel(order)
        await until(lambda: len(r.gateway.received("F")) == 2, "the second F")
        f2 = r.gateway.received("F")[1].fields
        assert f2[11] != f[11] and f2[41] == DOC_ID
        await r.gateway.send("8", body(ER_NEW, t11=f2[11], t41=DOC_ID, t17="X-cxl", t39="4", t150="4", t151="0"))
        await until(lambda: order.status is S.CANCELLED, "cancelled")
        assert await r.adapter.query_open_orders() == []


async def test_replace_follows_the_clordid_chain(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        order = await r.working()
        g = await r.replace_sent(order, D(149), D("0.2"))
        assert (g[41], g[44], g[38], g[43229]) == (DOC_ID, "149", "2000", "10000") and g[11].startswith(DOC_ID)
        await r.gateway.send("G", body(G_ECHO, t11=g[11], t41=g[41]))  # 001's echoed G: pending
        await r.gateway.send("8", body(ER_NEW, t11=g[11], t41=DOC_ID, t17="X-rpl", t39="5", t150="5", t38="2000",
                                       t151="2000", t44="149.0"))
        await until(lambda: order.status is S.NEW and order.price == D(149), "replaced")
        assert order.qty == D("0.2")
        # later reports name the new ClOrdID only: still our order
        await r.gateway.send("8", body(ER_FILL, t11=g[11], t38="2000", t151="1000", t17="X-f1", t39="1", t150="1"))
        await until(lambda: order.status is S.PARTIALLY_FILLED, "part filled under the new ClOrdID")


async def test_market_buy_refused_2007_before_anything_is_sent(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        order = r.submit(Side.BUY, D("0.1"), None, order_type=OrderType.MARKET, tif=TimeInForce.IOC)
        await until(lambda: order.status is S.REJECTED, "refused")
        assert order.reject_code == Reject.ORDER_TYPE_NOT_SUPPORTED
        await anyio.sleep(0.1)
        assert r.gateway.received("D") == []


async def test_gtd_expire_time_on_the_wire(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.submit(tif=TimeInForce.DAY)
        await until(lambda: r.gateway.received("D"), "the D")
        sent = r.gateway.received("D")[0].fields
        assert sent[59] == "6"
        stamp = sent[126]
        assert len(stamp) == 21 and stamp[8] == "-" and stamp.endswith(":00:00.000") and stamp[9:11] == "01"


async def test_a_burst_of_50_orders_never_exceeds_4_per_s_nor_10_messages_per_s(tmp_path: Path) -> None:
    """Counted where the venue counts, on arrival at the gateway (served from its own thread, so
    its arrival times are the wire's): every 1 s window sees at most 4 orders and at most 10 frames
    (the Logon, the sync TestRequest, Heartbeats included)."""
    def ack(fields: dict[int, str]) -> Reply:
        return [("8", body(ER_NEW, t11=fields[11], t17=f"N-{fields[11]}", t37=f"O-{fields[11]}"))]

    async with served_in_thread(lambda: serving(ScriptedGateway(ack))) as served, \
            anyio.create_task_group() as tasks:
        gateway = served.it
        sink = RecordingSink()
        adapter = await connected(gateway.port, tmp_path / "midchains.sqlite", sink, tasks)
        r = Rig(gateway, adapter, sink, tmp_path / "midchains.sqlite")
        orders = [r.submit(price=D(100) + n) for n in range(50)]
        await until(lambda: all(o.status is S.NEW for o in orders), "50 orders acknowledged", timeout=40,
                    unless=lambda: _refused(orders, lambda: "not counted by the scripted gateway"))
        orders_at = served.call(lambda: [a.ns for a in gateway.received("D")])
        frames_at = served.call(lambda: [a.ns for a in gateway.arrivals])
        assert len(orders_at) == 50
        assert max_in_window(orders_at, NS) <= 4
        assert max_in_window(frames_at, NS) <= 10
        # the pacer spread them: the wire's backstop holds an order only after a stall between
        # the pacer's release and the write took more than half the guard (on a loaded machine)
        assert adapter.stats()["paced"] <= 5
        await adapter.close()
        tasks.cancel_scope.cancel()
    assert sink.errors == []


async def test_reconnect_delivers_queued_reports_before_connected(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.working()
        r.gateway.queued = [("8", body(ER_FILL))]  # generated while we are away
        await r.gateway.drop()
        await until(lambda: r.sink.statuses().count("connected") == 2, "connected again")
        order_fill = r.sink.index("fill", lambda f: f.client_id == DOC_ID)
        reconnected = max(i for i, (kind, what) in enumerate(r.sink.calls)
                          if kind == "status" and what[1] == "connected")
        assert order_fill < reconnected  # in before "connected": the engine's reconciliation sees it
        assert r.sink.statuses() == ["connected", "disconnected", "connected"]
        assert {f.exec_id for f in await r.adapter.query_fills(0)} == {"62XGZUU7W05SC32_62XGZUU7W05T"}
        assert await r.adapter.query_open_orders() == []


async def test_a_fill_sent_again_after_a_restart_is_not_applied_twice(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        order = r.submit(client_id=DOC_ID)
        await until(lambda: r.gateway.received("D"), "the D")
        await r.gateway.send("8", body(ER_NEW))
        await r.gateway.send("8", body(ER_FILL))
        await until(lambda: order.status is S.FILLED, "filled")
        again = await restarted(r)
        sink = r.sink
        logons = r.gateway.received("A")
        async with anyio.create_task_group() as tasks:
            again.bind(tasks)
            r.gateway.queued = [("8", body(ER_FILL))]  # the gateway sends the execution again
            await again.connect()
            assert int(r.gateway.received("A")[-1].fields[34]) > int(logons[-1].fields[34])  # numbers kept
            await anyio.sleep(0.1)
            assert sink.of("fill") == [] and again.stats()["duplicate_fills"] == 1
            seen = await again.query_order(DOC_ID)
            assert seen is not None and seen.status is S.FILLED
            await again.close()
            tasks.cancel_scope.cancel()


async def test_a_password_from_a_file_goes_into_the_logon_and_never_into_the_log(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """001's Logon has no password; a gateway that wants one gets FIX Password (554) read from the
    file at each logon, and no log line shows it."""
    caplog.set_level(logging.DEBUG)
    secret = "mc-fix-password-91f3c2"
    (tmp_path / "password").write_text(secret + "\n")
    async with rig(tmp_path, password_file=tmp_path / "password") as r:
        order = r.submit()
        await until(lambda: r.gateway.received("D"), "the D")
        await r.gateway.drop()
        await until(lambda: r.sink.statuses().count("connected") == 2, "logged on again")
        assert [a.fields.get(554) for a in r.gateway.received("A")] == [secret, secret]
        assert order.client_id
    assert secret[:8] not in caplog.text and "password" not in caplog.text.lower()
    with pytest.raises(ValueError, match="nowhere"):
        MidChainsFixAdapter("midchains", options(1, tmp_path / "s.sqlite", password_file=tmp_path / "nowhere"), [LTC],
                            WallClock(), RecordingSink())


async def test_a_report_that_cannot_be_read_is_counted_and_the_order_goes_on(tmp_path: Path) -> None:
    """An ER without FractionBase (43229) cannot be scaled: dropped, counted by kind, the order
    marked unknown until the venue speaks again; the session stays up and the next report applies."""
    async with rig(tmp_path) as r:
        order = r.submit(client_id=DOC_ID)
        await until(lambda: r.gateway.received("D"), "the D")
        await r.gateway.send("8", [(tag, value) for tag, value in body(ER_NEW) if tag != 43229])
        await r.gateway.send("8", body(ER_NEW, t38="1e999999", t17="X-bad"))
        await until(lambda: sum(r.adapter.bad_input().values()) == 2, "both counted")
        assert r.adapter.bad_input() == {"malformed": 1, "bad_number": 1}
        assert order.status is S.PENDING_NEW
        await r.gateway.send("8", body(ER_NEW))
        await until(lambda: order.status is S.NEW, "the good report applied")
        assert r.sink.statuses() == ["connected"]


def test_rate_limits_as_data_and_what_the_gate_spends(tmp_path: Path) -> None:
    """MID-9: the adapter declares 10 messages/s and 4 orders/s; the gate is given what application
    messages really leave at: 1 message/s of the 10 kept for the session's own frames, every window
    10% longer (MID-9: the venue rejects the fifth order in a second; arrivals can bunch)."""
    adapter = MidChainsFixAdapter("midchains", options(1, tmp_path / "s.sqlite"), [LTC], WallClock(), RecordingSink())
    assert {(limit.scope, limit.count, limit.per_seconds) for limit in adapter.rate_limits} == {
        ("all", 10, D(1)), ("orders", 4, D(1))}
    spent = adapter.set_rate_limits(adapter.rate_limits)
    assert {(limit.scope, limit.count, limit.per_seconds) for limit in spent} == {
        ("all", 9, D("1.1")), ("orders", 4, D("1.1"))}
    caps = adapter.capabilities
    assert (caps.amend, caps.mass_cancel, caps.post_only, caps.cancel_on_disconnect) == (True, False, "none", False)


async def test_a_cancel_of_an_order_still_waiting_for_the_budget_takes_it_back(tmp_path: Path) -> None:
    """Six orders at 4 orders/s: the fifth and sixth wait for the budget when the sixth's cancel is
    asked. Its D never leaves: the order ends cancelled at once, with no D and no F on the wire and
    no moment live at the venue (it could have filled there), and its row says so after a restart.
    The fifth leaves when the budget allows."""
    def answer(fields: dict[int, str]) -> Reply:
        if fields[35] == "D":
            return [("8", body(ER_NEW, t11=fields[11], t17=f"N-{fields[11]}", t37=f"O-{fields[11]}"))]
        return []

    async with rig(tmp_path, answer) as r:
        orders = [r.submit(price=D(100) + n) for n in range(6)]
        last = orders[-1]
        last.transition(S.PENDING_CANCEL)
        r.adapter.cancel(last)
        await until(lambda: last.status is S.CANCELLED, "the sixth cancelled")
        assert [u.status for u in r.sink.updates_for(last.client_id)] == [S.CANCELLED]
        assert "before it left" in r.sink.updates_for(last.client_id)[0].reason
        await until(lambda: all(o.status is S.NEW for o in orders[:-1]), "the other five working", timeout=15)
        await anyio.sleep(1.2)  # the budget would have let the sixth go by now
        sent = [(a.msg_type, a.fields.get(11, "")) for a in r.gateway.arrivals if a.msg_type in ("D", "F")]
        assert sent == [("D", o.client_id) for o in orders[:-1]]
    state = OrderState(r.state)
    row = state.by_client_id(last.client_id)
    state.close()
    assert row is not None and row.status is S.CANCELLED and not row.sent


async def test_tls_to_the_sandbox_with_the_ca_bundle_and_refused_without(tmp_path: Path) -> None:
    """001's "secure tcp+ssl connection" with a private certificate (MID-12): the adapter logs on
    and trades with ca_bundle set, and without it the first connect fails naming the gateway."""
    cert, server = self_signed(tmp_path)
    async with MidChainsSandbox(client_comp_ids=(CLIENT,), tls=server) as venue, anyio.create_task_group() as tasks:
        sink = RecordingSink()
        opts = MidChainsFixOptions(host="127.0.0.1", port=venue.port, sender_comp_id=CLIENT, ca_bundle=cert,
                                   state_file=tmp_path / "tls.sqlite")
        adapter = MidChainsFixAdapter("midchains", opts, [LTC], WallClock(), sink)
        adapter.bind(tasks)
        await adapter.connect()
        order = Order("tls-1", "test", "midchains", "LTCUSD", Side.BUY, D("0.1"), D(100))
        sink.orders[order.client_id] = order
        adapter.submit(order)
        await until(lambda: order.status is S.NEW, "acknowledged over TLS")
        await adapter.close()
        untrusting = opts.model_copy(update={"ca_bundle": None, "connect_timeout_s": 1.0})
        refused = MidChainsFixAdapter("midchains", untrusting, [LTC], WallClock(), RecordingSink())
        refused.bind(tasks)
        with pytest.raises(ConnectionError, match=r"127\.0\.0\.1:\d+ .*(certificate|SSL)"):
            await refused.connect()
        tasks.cancel_scope.cancel()


async def test_a_day_order_whose_expiry_report_was_lost_at_the_reset_ends_expired(tmp_path: Path) -> None:
    """A DAY order goes GTD until 01:00 UTC; the gateway drops its queue at that reset (MID-13), so
    an adapter away over the boundary never hears the expiry. Once caught up, an order past its own
    ExpireTime is told EXPIRED, and the queries say so."""
    state = OrderState(tmp_path / "midchains.sqlite")
    past = at("2021-07-15 01:00:00")
    state.save(OrderRow("day-1", "day-1", "LTCUSD", Side.BUY, D("0.1"), D(100), OrderType.LIMIT, TimeInForce.DAY,
                        10_000, past, S.NEW, D(0), "O-day-1", "day-1", 0, past - NS))
    state.close()
    order = Order("day-1", "test", "midchains", "LTCUSD", Side.BUY, D("0.1"), D(100), OrderType.LIMIT, TimeInForce.DAY)
    order.transition(S.NEW)
    order.transition(S.UNKNOWN)  # what the engine's restore makes of an open order
    async with rig(tmp_path, known=(order,)) as r:
        await until(lambda: order.status is S.EXPIRED, "expired")
        seen = await r.adapter.query_order("day-1")
        assert seen is not None and seen.status is S.EXPIRED
        assert await r.adapter.query_open_orders() == []


async def test_a_silent_gateway_is_logged_not_told_as_stale(tmp_path: Path) -> None:
    """The engine's "stale" means no market data; the order session carries none, so the link's
    stale (our TestRequest out after HeartBtInt + grace of silence) is logged and counted, and the
    answer that ends it tells the engine nothing either."""
    async with rig(tmp_path, heartbeat_s=1) as r:
        r.gateway.answer_test_requests = False
        await until(lambda: r.adapter.stats().get("stale") == 1, "stale seen")
        late = r.gateway.received("1")[-1].fields[112]
        await r.gateway.send("0", [(112, late)])
        await until(lambda: r.adapter.stats().get("stale_ended") == 1, "answered")
        assert r.sink.statuses() == ["connected"]


@asynccontextmanager
async def on_sandbox(tmp_path: Path) -> AsyncIterator[tuple[MidChainsSandbox, MidChainsFixAdapter, RecordingSink]]:
    """The adapter against mcsbx's sandbox (its own FIX acceptor, nothing of the adapter's codec)."""
    async with MidChainsSandbox(client_comp_ids=(CLIENT,)) as venue, anyio.create_task_group() as tasks:
        sink = RecordingSink()
        adapter = await connected(venue.port, tmp_path / "sbx.sqlite", sink, tasks)
        try:
            yield venue, adapter, sink
        finally:
            await adapter.close()
            tasks.cancel_scope.cancel()
    assert sink.errors == []


def _order(sink: RecordingSink, n: int, price: Decimal, side: Side = Side.BUY) -> Order:
    order = Order(f"s-{n}", "test", "midchains", "LTCUSD", side, D("0.1"), price, OrderType.LIMIT, TimeInForce.GTC)
    sink.orders[order.client_id] = order
    return order


async def test_a_burst_of_50_orders_as_the_sandbox_counts_them(tmp_path: Path) -> None:
    """The same burst against the sandbox, which counts 001's 10 messages/s and 4 orders/s per
    session on arrival: all 50 acknowledged, not one violation. The sandbox serves from its own
    thread (tests/support/threaded.py): on the adapter's loop it would stamp a frame only when that
    loop got to it, and a loaded machine's stall there read as a burst (CI: one order refused)."""
    async with served_in_thread(lambda: MidChainsSandbox(client_comp_ids=(CLIENT,))) as served, \
            anyio.create_task_group() as tasks:
        venue = served.it
        sink = RecordingSink()
        adapter = await connected(venue.port, tmp_path / "sbx.sqlite", sink, tasks)
        orders = [_order(sink, n, D(100) - n * D("0.01")) for n in range(50)]
        for order in orders:
            adapter.submit(order)
        await until(lambda: all(o.status is S.NEW for o in orders), "50 orders acknowledged", timeout=40,
                    unless=lambda: _refused(orders, lambda: served.call(venue.violations)))
        orders_at = served.call(lambda: [int(at * NS) for at, _client, kind in venue.oe.arrivals if kind == "D"])
        assert len(orders_at) == 50 and max_in_window(orders_at, NS) <= 4
        assert served.call(venue.violations) == {"messages": 0, "orders": 0}
        await adapter.close()
        tasks.cancel_scope.cancel()
    assert sink.errors == []


def _refused(orders: list[Order], violations: Callable[[], object]) -> str | None:
    """Why waiting for the burst's acknowledgements is pointless: an order refused (with the
    venue's rate-limit counts, asked only then: asking a venue on another thread on every poll
    would stall the loop under test), else None."""
    refused = [f"{o.client_id} ({o.reject_code}: {o.reject_reason})" for o in orders if o.status is S.REJECTED]
    return f"refused: {', '.join(refused)}; venue violations {violations()}" if refused else None


async def test_fills_made_while_away_arrive_before_connected_from_the_sandbox(tmp_path: Path) -> None:
    """A resting order fills while the session is down; the sandbox queues the ER (001: delivered
    after the next logon within the trading day) and the adapter hears it before "connected"."""
    async with on_sandbox(tmp_path) as (venue, adapter, sink):
        order = _order(sink, 1, D(139))
        adapter.submit(order)
        await until(lambda: order.status is S.NEW, "resting")
        venue.drop(target="broker")
        await until(lambda: "disconnected" in sink.statuses(), "disconnected")
        order.transition(S.UNKNOWN)  # the engine's part at "disconnected"
        venue.place("LTCUSD", "sell", D("0.1"), D(139))  # crosses it while we are away
        await until(lambda: sink.statuses().count("connected") == 2, "connected again", timeout=20)
        fill_at = sink.index("fill", lambda f: f.client_id == order.client_id)
        back_at = max(i for i, (kind, what) in enumerate(sink.calls) if kind == "status" and what[1] == "connected")
        assert fill_at < back_at and order.status is S.FILLED
        assert [f.qty for f in await adapter.query_fills(0)] == [D("0.1")]


async def test_a_replace_answered_after_a_restart_moves_the_clordid_chain(tmp_path: Path) -> None:
    """A G left unanswered when the engine stopped: the new instance has no pending replace, but the
    venue's ER 39=5 still tells it the ClOrdID the order now works under, and the next F names it."""
    async with rig(tmp_path) as r:
        order = await r.working()
        g = await r.replace_sent(order, D(149), None)
        again = await restarted(r)
        async with anyio.create_task_group() as tasks:
            again.bind(tasks)
            r.gateway.queued = [("8", body(ER_NEW, t11=g[11], t41=DOC_ID, t17="X-rpl", t39="5", t150="5",
                                           t44="149.0"))]
            await again.connect()
            order.transition(S.PENDING_CANCEL)
            again.cancel(order)
            await until(lambda: r.gateway.received("F"), "the F")
            f = r.gateway.received("F")[0].fields
            assert f[41] == g[11] and f[44] == "149" and f[11] not in (g[11], DOC_ID)
            await again.close()
            tasks.cancel_scope.cancel()


async def test_reports_a_sequence_reset_passed_over_are_counted_and_said(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The gateway numbers three messages it never sends, then answers our ResendRequest with a
    SequenceReset-GapFill: the three may have been ExecutionReports, and FIX here cannot ask again (MID-5).
    Counted, said with the open orders it may concern; the session goes on."""
    async with rig(tmp_path) as r:
        order = r.submit(client_id=DOC_ID)
        await until(lambda: r.gateway.received("D"), "the D")
        r.gateway.skip(3)  # three numbers the gateway will gap-fill when asked
        await r.gateway.send("8", body(ER_NEW))
        await until(lambda: r.adapter.stats()["skipped_messages"] == 3, "the reset's skip counted")
        await until(lambda: order.status is S.NEW, "the report after the gap applied")
        assert any("skipped inbound messages" in m and DOC_ID in m for m in caplog.messages)
        assert r.sink.statuses() == ["connected"]


# ---- issue 23 review findings (each reproduced by the reviewer against a scripted gateway) -------


async def restarted(r: Rig) -> MidChainsFixAdapter:
    """A new adapter instance on the same state file (the engine restarted); the Rig now uses it."""
    await r.adapter.close()
    sink = RecordingSink()
    sink.orders = r.sink.orders
    again = MidChainsFixAdapter("midchains", options(r.gateway.port, r.state), [LTC], WallClock(), sink)
    again.set_rate_limits(again.rate_limits)
    r.adapter, r.sink = again, sink
    return again


async def test_a_cancel_of_an_order_reloaded_before_its_ack_is_sent(tmp_path: Path) -> None:
    """Finding 1: the D left, the engine restarted before the ER NEW; the queued ER comes after the
    logon and a cancel must go out as an F (it was only wished, never sent)."""
    async with rig(tmp_path) as r:
        order = r.submit(client_id=DOC_ID)
        await until(lambda: r.gateway.received("D"), "the D")
        again = await restarted(r)
        async with anyio.create_task_group() as tasks:
            again.bind(tasks)
            r.gateway.queued = [("8", body(ER_NEW))]
            await again.connect()
            await until(lambda: order.status is S.NEW, "the queued ER NEW")
            order.transition(S.PENDING_CANCEL)
            again.cancel(order)
            await until(lambda: r.gateway.received("F"), "the F")
            assert r.gateway.received("F")[0].fields[41] == DOC_ID
            await again.close()
            tasks.cancel_scope.cancel()


async def test_a_cancel_wished_for_an_unsent_row_goes_once_a_report_proves_the_d(tmp_path: Path) -> None:
    """Finding 1, the other half: a PENDING_NEW row not marked sent (the process died between the
    row and the socket, as far as it knows) holds a cancel; the venue's report for it proves the D
    reached it, and the held cancel goes."""
    async with rig(tmp_path) as r:
        order = r.submit(client_id=DOC_ID)
        await until(lambda: r.gateway.received("D"), "the D")
        await r.adapter.close()
        state = OrderState(r.state)
        row = state.by_client_id(DOC_ID)
        assert row is not None and row.sent  # the numbered D was recorded as sent
        row.sent = False
        state.save(row)
        state.close()
        again = await restarted(r)
        async with anyio.create_task_group() as tasks:
            again.bind(tasks)
            await again.connect()
            assert await again.query_order(DOC_ID) is None  # never left, as far as the adapter knows
            order.transition(S.PENDING_CANCEL)
            again.cancel(order)
            await r.gateway.send("8", body(ER_NEW))
            await until(lambda: r.gateway.received("F"), "the F after the report")
            await again.close()
            tasks.cancel_scope.cancel()


@pytest.mark.parametrize("confirm", ["5", "0"])
async def test_a_replace_confirmed_after_a_restart_is_applied(tmp_path: Path, confirm: str) -> None:
    """Finding 2: a G to 0.2 @ 151 answered only after a restart, by 39=5 or by a 39=0 under the new
    ClOrdID (the pending G is kept in the state file): the order works under the new 11 at 0.2, and
    a fill of 0.2 ends it FILLED."""
    async with rig(tmp_path) as r:
        order = await r.working()
        g = await r.replace_sent(order, D(151), D("0.2"))
        again = await restarted(r)
        async with anyio.create_task_group() as tasks:
            again.bind(tasks)
            r.gateway.queued = [("8", body(ER_NEW, t11=g[11], t41=DOC_ID, t17="R1", t39=confirm, t150=confirm,
                                           t38="2000", t151="2000", t44="151"))]
            await again.connect()
            row = OrderState(r.state).by_client_id(DOC_ID)
            assert row is not None and (row.clordid, row.qty, row.price, row.pending_replace) == (
                g[11], D("0.2"), D(151), "")
            await r.gateway.send("8", body(ER_FILL, t11=g[11], t32="2000", t14="2000", t38="2000", t151="0",
                                           t6="151", t31="151"))
            await until(lambda: order.status is S.FILLED, "filled at the replaced quantity")
            assert (order.qty, order.cum_qty) == (D("0.2"), D("0.2"))
            await again.close()
            tasks.cancel_scope.cancel()


async def test_a_d_unanswered_over_a_drop_stays_unknown_until_its_report(tmp_path: Path) -> None:
    """Finding 3: the D is on the wire, the link drops before any answer. Reconciliation must hear
    UNKNOWN (the venue may have it), never None ("never received": the engine would settle it 9001
    and a strategy would place it again); the venue's ER later settles it."""
    async with rig(tmp_path) as r:
        order = r.submit(client_id=DOC_ID)
        await until(lambda: r.gateway.received("D"), "the D")
        await r.gateway.drop()
        await until(lambda: r.sink.statuses().count("connected") == 2, "connected again")
        seen = await r.adapter.query_order(DOC_ID)
        assert seen is not None and seen.status is S.UNKNOWN
        assert [o.client_id for o in await r.adapter.query_open_orders()] == []
        await r.gateway.send("8", body(ER_NEW))
        await until(lambda: order.status is S.NEW, "the gateway's answer")
        seen = await r.adapter.query_order(DOC_ID)
        assert seen is not None and seen.status is S.NEW


def _without(fields: list[tuple[int, str]], *tags: int) -> list[tuple[int, str]]:
    return [(tag, value) for tag, value in fields if tag not in tags]


async def test_fills_without_lastpx_are_priced_from_avgpx_and_cumqty(tmp_path: Path) -> None:
    """Finding 4: 001's ER table has no LastPx (31). 0.04 at AvgPx 150, then 0.06 taking AvgPx to
    151.2: the second fill is (151.2 x 0.1 - 150 x 0.04) / 0.06 = 152, exactly."""
    async with rig(tmp_path) as r:
        order = r.submit(client_id=DOC_ID)
        await until(lambda: r.gateway.received("D"), "the D")
        await r.gateway.send("8", body(ER_NEW))
        await r.gateway.send("8", _without(body(ER_FILL, t17="E1", t32="400", t14="400", t151="600", t39="1",
                                                t150="1", t6="150"), 31))
        await r.gateway.send("8", _without(body(ER_FILL, t17="E2", t32="600", t14="1000", t6="151.2"), 31))
        await until(lambda: order.status is S.FILLED, "both fills")
        assert [(f.price, f.qty) for f in r.sink.fills_for(DOC_ID)] == [(D(150), D("0.04")), (D(152), D("0.06"))]


async def test_a_fill_whose_cumqty_disagrees_is_an_anomaly_and_the_order_unknown(tmp_path: Path) -> None:
    """Finding 4: an execution without 31 whose 14 says 0.05 came before it, while nothing was booked:
    it cannot be priced; counted as an anomaly and the order kept UNKNOWN for reconciliation."""
    async with rig(tmp_path) as r:
        order = r.submit(client_id=DOC_ID)
        await until(lambda: r.gateway.received("D"), "the D")
        await r.gateway.send("8", body(ER_NEW))
        await r.gateway.send("8", _without(body(ER_FILL, t17="E2", t32="500", t14="1000", t6="151"), 31))
        await until(lambda: r.adapter.stats().get("anomalies") == 1, "the anomaly")
        seen = await r.adapter.query_order(DOC_ID)
        assert seen is not None and seen.status is S.UNKNOWN and order.status is S.NEW
        assert r.sink.fills_for(DOC_ID) == []
        assert [o.status for o in await r.adapter.query_open_orders()] == [S.UNKNOWN]


async def test_a_held_final_state_is_forced_after_its_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 4: a cancel that counts 0.1 filled while none of it was booked holds its final state
    for the fills; they never come, so it is forced (with an anomaly) rather than held for good. A
    state-only report with no quantities needs no 43229."""
    monkeypatch.setattr("adapters.midchains.adapter.HELD_FINAL_TIMEOUT_NS", 200_000_000)
    async with rig(tmp_path) as r:
        order = r.submit(client_id=DOC_ID)
        held = r.submit()
        await until(lambda: len(r.gateway.received("D")) == 2, "the Ds")
        await r.gateway.send("8", body(ER_NEW))
        await r.gateway.send("8", body(ER_NEW, t17="C-1", t39="4", t150="4", t14="1000", t151="0"))
        await until(lambda: order.status is S.CANCELLED, "forced after the timeout")
        assert r.adapter.stats()["anomalies"] == 1
        held_id = r.gateway.received("D")[1].fields[11]
        await r.gateway.send("8", [(6, "0"), (11, held_id), (17, "S-1"), (37, "X2"), (39, "4"), (150, "4"),
                                   (54, "1"), (55, "LTCUSD")])
        await until(lambda: held.status is S.CANCELLED, "a state-only report without 43229")


async def test_a_quantity_finer_than_the_symbols_base_is_refused_2002(tmp_path: Path) -> None:
    """Finding 5: 0.10005 LTCUSD cannot be expressed in LTCUSD's FractionBase 10000; the venue would
    truncate it to 0.1000 and work a smaller order. Refused before anything is sent."""
    async with rig(tmp_path) as r:
        order = r.submit(client_id=DOC_ID, qty=D("0.10005"))
        await until(lambda: order.status is S.REJECTED, "refused")
        assert order.reject_code == Reject.INVALID_QUANTITY and r.gateway.received("D") == []


async def test_filled_or_nothing_left_ends_the_order_at_the_venues_quantity(tmp_path: Path) -> None:
    """Finding 5: the venue acknowledges 0.09 (its own quantity for the order) and fills it with
    39=2 151=0: the order ends (0.09 filled, the rest CANCELLED: the engine's FILLED is the whole
    quantity), not partially filled for ever."""
    async with rig(tmp_path) as r:
        order = r.submit(client_id=DOC_ID)
        await until(lambda: r.gateway.received("D"), "the D")
        await r.gateway.send("8", body(ER_NEW, t38="900", t151="900"))
        await r.gateway.send("8", body(ER_FILL, t38="900", t32="900", t14="900"))
        await until(lambda: order.status is S.CANCELLED, "ended")
        assert (order.qty, order.cum_qty) == (D("0.1"), D("0.09")) and "0.09 filled of 0.1" in order.reject_reason
        assert await r.adapter.query_open_orders() == []
        assert r.adapter.stats()["venue_quantity_differs"] == 1


async def test_a_sequence_reset_over_inbound_numbers_leaves_open_orders_unknown(tmp_path: Path) -> None:
    """Finding 6: a GapFill passed over three inbound numbers during the session: any of them may have
    been a report on an open order, so those are unknown (an anomaly) until a report names them."""
    async with rig(tmp_path) as r:
        order = r.submit(client_id=DOC_ID)
        other = r.submit()
        await until(lambda: len(r.gateway.received("D")) == 2, "the Ds")
        other_id = r.gateway.received("D")[1].fields[11]
        await r.gateway.send("8", body(ER_NEW, t11=other_id, t17="N2"))
        await until(lambda: other.status is S.NEW, "the other acknowledged")
        r.gateway.skip(3)
        await r.gateway.send("8", body(ER_NEW))
        await until(lambda: order.status is S.NEW, "the report after the gap")
        assert r.adapter.stats()["anomalies"] == 1
        seen = await r.adapter.query_order(other.client_id)
        assert seen is not None and seen.status is S.UNKNOWN  # no report since the gap
        seen = await r.adapter.query_order(DOC_ID)
        assert seen is not None and seen.status is S.NEW  # its report came after the gap


async def test_a_replace_confirmed_with_a_fill_applies_the_new_terms_first(tmp_path: Path) -> None:
    """Finding 8: one ER confirms the G (11 = the new ClOrdID, 0.2) and fills 0.15 of it: the fill is
    booked against 0.2 (before the fix it overfilled the old 0.1 and was not booked)."""
    async with rig(tmp_path) as r:
        order = await r.working()
        g = await r.replace_sent(order, D(150), D("0.2"))
        await r.gateway.send("8", body(ER_FILL, t11=g[11], t41=DOC_ID, t39="1", t150="1", t38="2000", t32="1500",
                                       t14="1500", t151="500"))
        await until(lambda: order.cum_qty == D("0.15"), "the fill booked")
        assert order.qty == D("0.2") and order.status is S.PARTIALLY_FILLED
        assert r.adapter.stats().get("overfills", 0) == 0


async def test_a_fill_for_an_unknown_order_without_a_side_is_an_anomaly(tmp_path: Path) -> None:
    """Finding 8: a Fill needs a side; one for an order we do not know, without 54, is counted and
    said, never silently dropped."""
    async with rig(tmp_path) as r:
        await r.gateway.send("8", _without(body(ER_FILL, t11="someone-else", t17="U1"), 54))
        await until(lambda: r.adapter.stats().get("anomalies") == 1, "the anomaly")


async def test_a_cancel_during_a_pending_replace_waits_for_its_answer(tmp_path: Path) -> None:
    """Finding 8: a cancel asked while our G is unanswered goes once the G is taken, naming the
    ClOrdID (41) and quantity (38) the venue then works the order under, not the old ones."""
    async with rig(tmp_path) as r:
        order = await r.working()
        g = await r.replace_sent(order, D(150), D("0.2"))
        r.adapter.cancel(order)
        await anyio.sleep(0.3)
        assert r.gateway.received("F") == []  # held for the G's answer
        await r.gateway.send("8", body(ER_NEW, t11=g[11], t41=DOC_ID, t17="R1", t39="5", t150="5", t38="2000",
                                       t151="2000"))
        await until(lambda: r.gateway.received("F"), "the F after the replace")
        f = r.gateway.received("F")[0].fields
        assert (f[41], f[38], f[43229]) == (g[11], "2000", "10000")


async def test_a_day_order_ends_at_its_expiry_while_the_session_stays_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 8: the local expiry of a DAY order (GTD 126) ran only on a reconnect; a session that
    stays up over the reset never heard it end. Now a timer at ExpireTime + grace ends it."""
    monkeypatch.setattr("adapters.midchains.adapter.day_expiry", lambda now: now + 200_000_000)
    monkeypatch.setattr("adapters.midchains.adapter.EXPIRY_GRACE_NS", 100_000_000)
    async with rig(tmp_path) as r:
        order = r.submit(client_id=DOC_ID, tif=TimeInForce.DAY)
        await until(lambda: r.gateway.received("D"), "the D")
        await r.gateway.send("8", body(ER_NEW))
        await until(lambda: order.status is S.EXPIRED, "expired by the timer")
        assert r.sink.statuses() == ["connected"]


async def test_a_trading_day_passing_while_disconnected_leaves_gtc_orders_unknown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 8: the gateway drops the day's queued reports at the 01:00 UTC reset (MID-13); a GTC
    order open across a disconnect spanning it may have filled unheard: unknown, an anomaly."""
    async with rig(tmp_path) as r:
        await r.working()
        days = iter(["2021-07-14", "2021-07-15"])
        monkeypatch.setattr("adapters.midchains.adapter.trading_day", lambda now_ns: next(days))
        await r.gateway.drop()
        await until(lambda: r.sink.statuses().count("connected") == 2, "connected again")
        assert r.adapter.stats()["anomalies"] == 1
        seen = await r.adapter.query_order(DOC_ID)
        assert seen is not None and seen.status is S.UNKNOWN


async def test_a_d_the_gateway_asks_for_again_is_replayed_and_stays_unknown(tmp_path: Path) -> None:
    """Finding 3, the resend decision: a D the gateway asks for again (ResendRequest) is replayed with
    PossDup (43=Y), not gap-filled: the engine holds the order working-unknown, so whatever the venue
    then does with it is reported and applied; until then reconciliation hears UNKNOWN."""
    async with rig(tmp_path) as r:
        order = r.submit(client_id=DOC_ID)
        await until(lambda: r.gateway.received("D"), "the D")
        await r.gateway.drop()
        await until(lambda: r.sink.statuses().count("connected") == 2, "connected again")
        await r.gateway.send("2", [(7, "1"), (16, "0")])
        await until(lambda: len(r.gateway.received("D")) == 2, "the D replayed")
        again = r.gateway.received("D")[1].fields
        assert (again[11], again[43]) == (DOC_ID, "Y")
        seen = await r.adapter.query_order(DOC_ID)
        assert seen is not None and seen.status is S.UNKNOWN
        await r.gateway.send("8", body(ER_NEW))
        await until(lambda: order.status is S.NEW, "the venue's answer")


async def test_a_session_reject_of_our_d_rejects_the_order_and_of_our_f_refuses_the_cancel(tmp_path: Path) -> None:
    """FIX: a session-level Reject (3) means the application never processed the message. Found by
    its RefSeqNum among the frames we keep: a rejected D ends the order REJECTED with the gateway's
    text; a rejected F leaves the order working with the cancel refused (it stayed pending before)."""
    async with rig(tmp_path) as r:
        refused = r.submit(client_id="t-refused")
        await until(lambda: r.gateway.received("D"), "the D")
        d = r.gateway.received("D")[0].fields
        await r.gateway.send("3", [(45, d[34]), (371, "44"), (373, "5"), (58, "Value is incorrect (out of range)")])
        await until(lambda: refused.status is S.REJECTED, "the D rejected")
        update = r.sink.updates_for("t-refused")[-1]
        assert update.reject_code == Reject.EXCHANGE_REJECT
        assert f"RefSeqNum {d[34]}" in update.reason and "out of range" in update.reason

        order = await r.working()
        order.transition(S.PENDING_CANCEL)
        r.adapter.cancel(order)
        await until(lambda: r.gateway.received("F"), "the F")
        f = r.gateway.received("F")[0].fields
        await r.gateway.send("3", [(45, f[34]), (373, "1"), (58, "Required tag missing")])
        await until(lambda: order.status is S.NEW, "the cancel refused")
        assert "cancel refused" in r.sink.updates_for(DOC_ID)[-1].reason
        assert r.adapter.stats()["session_rejects"] == 2


async def test_a_session_reject_of_an_admin_message_or_an_unkept_number_only_counts(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        order = await r.working()
        await r.gateway.send("3", [(45, "1"), (58, "logon field")])  # our Logon: no order is told
        await r.gateway.send("3", [(45, "99999"), (58, "never sent")])
        await r.gateway.send("3", [(58, "no RefSeqNum at all")])
        await r.gateway.send("3", [(45, "\u00b2"), (58, "a digit that is not ASCII")])  # str.isdigit() says yes
        await r.gateway.send("3", [(45, "9" * 25), (58, "past any sequence number")])
        await until(lambda: r.adapter.stats()["session_rejects"] == 5, "counted")
        assert order.status is S.NEW
        assert not r.adapter.stats().get("handler_errors")  # read as no number, not raised in the handler


async def test_a_restart_on_a_later_trading_day_leaves_gtc_orders_unknown(tmp_path: Path) -> None:
    """MID-13 across a process restart, not only a drop: the session last wrote on an earlier
    trading day, so the gateway's reset dropped what it queued for our GTC order while we were
    stopped: the order is unknown and the anomaly said, as after a drop over the reset."""
    async with rig(tmp_path) as r:
        await r.working()
        again = await restarted(r)
        with sqlite3.connect(r.state) as db:  # the session's last write was on the day before
            db.execute("UPDATE session SET day = '2021-07-14'")
        r.gateway.numbering.seq = 1  # the gateway's numbers reset at 01:00 UTC too
        async with anyio.create_task_group() as tasks:
            again.bind(tasks)
            await again.connect()
            assert again.stats().get("anomalies", 0) == 1
            [(venue, kind, detail)] = r.sink.of("anomaly")  # the engine hears it (VenueEvents.on_anomaly)
            assert (venue, kind) == ("midchains", "reports_dropped_at_reset") and DOC_ID in detail
            seen = await again.query_order(DOC_ID)
            assert seen is not None and seen.status is S.UNKNOWN
            await again.close()
            tasks.cancel_scope.cancel()


async def test_a_restart_on_the_same_trading_day_is_no_anomaly(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.working()
        again = await restarted(r)
        async with anyio.create_task_group() as tasks:
            again.bind(tasks)
            await again.connect()
            assert again.stats().get("anomalies", 0) == 0
            seen = await again.query_order(DOC_ID)
            assert seen is not None and seen.status is S.NEW
            await again.close()
            tasks.cancel_scope.cancel()
