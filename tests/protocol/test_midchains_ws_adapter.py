"""The ``midchains_ws`` adapter end to end against the MidChains sandbox's WebSocket API on 127.0.0.1
(document 001, "WEBSOCKET API"): login, the L3 book, orders and fills, rejects, a halted pair, a
drop with reconnect and reconciliation, a restart reconciled by query, the rate limits held on the
wire (the sandbox's own ``violations()``), and every ``ws.`` fault of the sandbox. Nothing waits
on a timer as proof: every wait is a condition with a generous timeout."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.sinks import RecordingSink
from support.stalls import stall_first_send
from support.threaded import Served, served_in_thread
from support.tls import self_signed

from adapters.midchains.sandbox import MidChainsExtensions, MidChainsSandbox, WsUser
from adapters.midchains.ws_adapter import MidChainsWsAdapter, MidChainsWsOptions
from engine.clock import WallClock
from engine.model import Book, Instrument, Order, OrderStatus, OrderType, Side, TimeInForce
from engine.rejects import Reject
from engine.venue.registry import get_adapter

pytestmark = pytest.mark.anyio
D = Decimal
S = OrderStatus
LTC, ETH = "LTCUSD", "ETHUSD"
USER = "wsuser"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def instruments() -> list[Instrument]:
    return [Instrument(LTC, "midchains", tick_size=D("0.01"), lot_size=D("0.0001")),
            Instrument(ETH, "midchains", tick_size=D("0.01"), lot_size=D("0.00001"))]


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.005)


class Venue:
    """A sandbox, a password file, and adapters built on them (each with its own sink)."""

    def __init__(self, tmp_path: Path, literal: bool = False, **sandbox: Any) -> None:
        self.password = secrets.token_urlsafe(18)
        self.password_file = tmp_path / "ws-password"
        self.password_file.write_text(self.password + "\n")
        extensions = MidChainsExtensions.document_literal() if literal else MidChainsExtensions.everyday()
        self.sandbox = MidChainsSandbox(ws_users=(WsUser(USER, self.password),), extensions=extensions, **sandbox)
        self.ids = iter(range(1, 10**6))
        self.state_file = tmp_path / "midchains-ws.sqlite"

    @contextlib.asynccontextmanager
    async def threaded(self) -> AsyncIterator[Served[MidChainsSandbox]]:
        """A fresh everyday sandbox with this venue's user, served from a thread and loop of its
        own (tests/support/threaded.py) instead of :attr:`sandbox` on the test's loop: its arrival
        counts are the wire's. Read it only through the ``Served``; no violation when it ends."""
        users = (WsUser(USER, self.password),)
        async with served_in_thread(lambda: MidChainsSandbox(ws_users=users, extensions=MidChainsExtensions.everyday())
                                    ) as served:
            self.sandbox = served.it  # the adapter's options read its address
            yield served
            assert served.call(served.it.violations) == {"messages": 0, "orders": 0}

    def options(self, **extra: Any) -> MidChainsWsOptions:
        given: dict[str, Any] = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.3, "request_timeout_s": 5,
                                 "state_file": self.state_file, **extra}
        return MidChainsWsOptions(url=self.sandbox.ws_url, userid=USER, password_file=self.password_file, **given)

    @contextlib.asynccontextmanager
    async def adapter(self, sink: RecordingSink | None = None, symbols: tuple[str, ...] = (LTC,),
                      **extra: Any) -> AsyncIterator[tuple[MidChainsWsAdapter, RecordingSink]]:
        sink = sink if sink is not None else RecordingSink()
        failed: list[BaseException] = []
        async with anyio.create_task_group() as tasks:
            adapter = MidChainsWsAdapter("midchains", self.options(**extra), instruments(), WallClock(), sink)
            adapter.set_rate_limits(adapter.rate_limits)
            adapter.bind(tasks)
            try:
                await adapter.connect()
            except ConnectionError as exc:  # raised out of the task group as itself, not a group
                failed.append(exc)
                tasks.cancel_scope.cancel()
            else:
                try:
                    if symbols:
                        adapter.subscribe(symbols)
                    yield adapter, sink
                finally:
                    await adapter.close()
                    tasks.cancel_scope.cancel()
        if failed:
            raise failed[0]

    def order(self, sink: RecordingSink, side: Side = Side.BUY, qty: str = "0.1", price: str | None = "100", *,
              symbol: str = LTC, tif: TimeInForce = TimeInForce.GTC, post_only: bool = False,
              order_type: OrderType = OrderType.LIMIT) -> Order:
        order = Order(f"ws-{next(self.ids)}", "test", "midchains", symbol, side, D(qty),
                      D(price) if price is not None else None, order_type, tif, post_only)
        sink.orders[order.client_id] = order
        return order


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[Venue]:
    v = Venue(tmp_path)
    async with v.sandbox:
        yield v
    assert v.sandbox.violations() == {"messages": 0, "orders": 0}, v.sandbox.violations()


def book_matches(sink: RecordingSink, sandbox: MidChainsSandbox, symbol: str = LTC) -> bool:
    mine = sink.books.get(symbol)
    bids, asks = sandbox.depth(symbol)
    return mine is not None and (mine.bids, mine.asks) == (bids, asks)


# ---- login ---------------------------------------------------------------------------------------


async def test_registered_under_its_name() -> None:
    assert get_adapter("midchains_ws") is MidChainsWsAdapter


async def test_login_learns_fraction_bases_and_reports_connected(venue: Venue, caplog: pytest.LogCaptureFixture
                                                                 ) -> None:
    caplog.set_level(logging.DEBUG)
    async with venue.adapter() as (adapter, sink):
        assert sink.statuses() == ["connected"]
        assert adapter.fraction_bases[LTC] == 10_000 and adapter.fraction_bases[ETH] == 100_000
        assert adapter.stats()["logins"] == 1
    assert venue.password not in caplog.text and venue.password[:8] not in caplog.text
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("engine.midchains.ws"))
    assert '"pass":"***"' in ours  # the login frame, its ciphertext redacted by key (the sandbox's log is its own)
    assert '"pass":"' not in ours.replace('"pass":"***"', "")


async def test_wrong_password_fails_connect_naming_the_reason(venue: Venue, tmp_path: Path) -> None:
    venue.password_file.write_text("not-the-password\n")
    with pytest.raises(ConnectionError, match="invalid user/password"):
        async with venue.adapter():
            pass


async def test_missing_password_file_fails_connect_naming_the_file(venue: Venue) -> None:
    venue.password_file.unlink()
    with pytest.raises(ConnectionError, match="ws-password"):
        async with venue.adapter():
            pass


def test_clear_text_to_another_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="wss://"):
        MidChainsWsOptions(url="ws://example.com:8081", userid=USER, password_file=tmp_path / "p")


# ---- market data ---------------------------------------------------------------------------------


async def test_book_snapshot_then_deltas_equal_the_venue(venue: Venue) -> None:
    for side, price, qty in ((Side.BUY, "139.95", "1.5"), (Side.BUY, "139.90", "0.5"), (Side.SELL, "140.05", "1")):
        venue.sandbox.place(LTC, side, D(qty), D(price))
    async with venue.adapter(book_quiet_ms=100) as (_adapter, sink):
        await until(lambda: book_matches(sink, venue.sandbox))
        first = next(u for u in sink.of("book") if u.symbol == LTC)
        assert first.snapshot
        venue.sandbox.place(LTC, Side.BUY, D("0.7"), D("139.90"))  # a second order on a level
        await until(lambda: book_matches(sink, venue.sandbox))
        venue.sandbox.place(LTC, Side.SELL, D("0.2"), D("139.95"))  # trades against the best bid
        await until(lambda: book_matches(sink, venue.sandbox) and sink.of("trade"))
        updates = [u for u in sink.of("book") if u.symbol == LTC]
        assert not any(u.snapshot for u in updates[1:])
        trade = sink.of("trade")[-1]
        assert (trade.price, trade.qty, trade.aggressor) == (D("139.95"), D("0.2"), Side.SELL)


async def test_halt_reaches_the_engine_and_orders_on_the_pair_are_refused(venue: Venue) -> None:
    async with venue.adapter() as (adapter, sink):
        venue.sandbox.apply_fault(_fault("halt,symbol=LTCUSD,duration_s=1"))
        await until(lambda: any(s.halted for s in sink.of("instrument") if s.symbol == LTC))
        order = venue.order(sink)
        adapter.submit(order)
        await until(lambda: order.is_terminal)
        assert order.status is S.REJECTED and "halted" in order.reject_reason
        await until(lambda: sink.of("instrument")[-1].halted is False, timeout=10)
        assert adapter.halted[LTC] is False


# ---- orders --------------------------------------------------------------------------------------


async def test_a_stall_between_release_and_write_does_not_bunch_the_orders(tmp_path: Path) -> None:
    """The first addorder's write stalls 0.4 s after the pacer released four: they reach the wire at
    0.4 s, and the four it releases one window after the releases would make eight in one of the
    venue's seconds. Written through the pacer's write hold, counted from when the writes returned,
    they do not. The sandbox serves from its own thread: the stall blocks the adapter's loop, not
    the sandbox's reads, so its counts are the wire's."""
    venue = Venue(tmp_path)
    async with venue.threaded():
        async with venue.adapter() as (adapter, sink):
            stalled = stall_first_send(adapter._client, '"addorder"')
            orders = [venue.order(sink, price=str(100 - n)) for n in range(8)]
            for order in orders:
                adapter.submit(order)
            await until(lambda: all(o.status is not S.PENDING_NEW for o in orders), timeout=20)
            assert stalled
    assert [o.status for o in orders] == [S.NEW] * 8


async def test_order_rests_fills_and_the_queries_agree(venue: Venue) -> None:
    async with venue.adapter() as (adapter, sink):
        resting = venue.order(sink, price="100")
        adapter.submit(resting)
        await until(lambda: resting.status is S.NEW)
        assert resting.venue_order_id.startswith("62")
        venue.sandbox.place(LTC, Side.SELL, D("0.5"), D("140"))
        taking = venue.order(sink, qty="0.5", price="140")
        adapter.submit(taking)
        await until(lambda: taking.status is S.FILLED)
        fills = sink.fills_for(taking.client_id)
        assert sum(f.qty for f in fills) == D("0.5") and all(f.liquidity.value == "taker" for f in fills)
        assert [o.client_id for o in await adapter.query_open_orders()] == [resting.client_id]
        seen = await adapter.query_order(taking.client_id)
        assert seen is not None and (seen.status, seen.cum_qty) == (S.FILLED, D("0.5"))
        queried = await adapter.query_fills(0)
        assert {f.exec_id for f in fills} <= {f.exec_id for f in queried}
        assert all(f.fee == 0 for f in queried)  # the sandbox's comm "0", converted
        adapter.cancel(resting)
        await until(lambda: resting.status is S.CANCELLED)
        assert await adapter.query_open_orders() == []


async def test_post_only_that_would_take_is_refused_7006(venue: Venue) -> None:
    async with venue.adapter() as (adapter, sink):
        venue.sandbox.place(LTC, Side.SELL, D("0.5"), D("140"))
        order = venue.order(sink, price="140", post_only=True)
        adapter.submit(order)
        await until(lambda: order.is_terminal)
        assert order.status is S.REJECTED and order.reject_code == Reject.POST_ONLY_WOULD_TAKE


async def test_ioc_remainder_is_cancelled_after_its_fill(venue: Venue) -> None:
    async with venue.adapter() as (adapter, sink):
        venue.sandbox.place(LTC, Side.SELL, D("0.2"), D("140"))
        order = venue.order(sink, qty="0.5", price="140", tif=TimeInForce.IOC)
        adapter.submit(order)
        await until(lambda: order.is_terminal)
        assert order.status is S.CANCELLED and order.cum_qty == D("0.2")


async def test_market_sell_fills_and_market_buy_is_refused_locally(venue: Venue) -> None:
    async with venue.adapter() as (adapter, sink):
        venue.sandbox.place(LTC, Side.BUY, D("1"), D("139"))
        sell = venue.order(sink, Side.SELL, qty="0.3", price=None, order_type=OrderType.MARKET, tif=TimeInForce.IOC)
        adapter.submit(sell)
        await until(lambda: sell.status is S.FILLED)
        buy = venue.order(sink, qty="0.3", price=None, order_type=OrderType.MARKET, tif=TimeInForce.IOC)
        adapter.submit(buy)
        await until(lambda: buy.is_terminal)
        assert buy.reject_code == Reject.ORDER_TYPE_NOT_SUPPORTED


async def test_day_order_goes_gtt_until_the_trading_day_end(venue: Venue) -> None:
    async with venue.adapter() as (adapter, sink):
        order = venue.order(sink, tif=TimeInForce.DAY)
        adapter.submit(order)
        await until(lambda: order.status is S.NEW)
        held = venue.sandbox.ws.orders(USER)[-1]
        assert held["tif"] == "GTT" and int(held["exptime"]) % 1000 == 0


async def test_quantity_finer_than_fractionbase_is_refused_locally(venue: Venue) -> None:
    async with venue.adapter() as (adapter, sink):
        order = venue.order(sink, qty="0.00001")
        adapter.submit(order)
        await until(lambda: order.is_terminal)
        assert order.reject_code == Reject.INVALID_QUANTITY
        assert venue.sandbox.ws.orders(USER) == []


@pytest.mark.parametrize(("text", "code"), [
    ("exceed order/sec limit", Reject.RATE_LIMIT_EXCEEDED),
    ("order marketable to existing quote/book", Reject.POST_ONLY_WOULD_TAKE),
    ("no crypto pos", Reject.POSITION_NOT_HELD),
    ("wash sale prohibited", Reject.SELF_TRADE_PREVENTED),
    ("Exceeds margin limit Exceed total Amount", Reject.POSITION_LIMIT_EXCEEDED),
    ("something new", Reject.EXCHANGE_REJECT),
])
async def test_every_reject_text_maps_to_its_engine_code(venue: Venue, text: str, code: Reject) -> None:
    async with venue.adapter(symbols=()) as (adapter, sink):
        venue.sandbox.ws.reject(1, text)
        order = venue.order(sink)
        adapter.submit(order)
        await until(lambda: order.is_terminal)
        assert (order.status, order.reject_code, order.reject_reason) == (S.REJECTED, code, text)


async def test_no_crypto_pos_from_the_venues_own_risk_check(venue: Venue) -> None:
    async with venue.adapter(symbols=()) as (adapter, sink):
        order = venue.order(sink, Side.SELL, qty="100000", price="500")
        adapter.submit(order)
        await until(lambda: order.is_terminal)
        assert order.reject_code == Reject.POSITION_NOT_HELD


async def test_cancel_refused_failed_keeps_the_order_working(venue: Venue) -> None:
    async with venue.adapter(symbols=()) as (adapter, sink):
        order = venue.order(sink)
        adapter.submit(order)
        await until(lambda: order.status is S.NEW)
        venue.sandbox.apply_fault(_fault("ws.reject_cancels,duration_s=0.5"))
        order.transition(S.PENDING_CANCEL)
        adapter.cancel(order)
        await until(lambda: order.status is S.NEW)
        refusal = sink.updates_for(order.client_id)[-1]
        assert refusal.reject_code == Reject.EXCHANGE_REJECT and "failed" in refusal.reason
        await anyio.sleep(0.6)  # the fault's own window, then the cancel goes through
        order.transition(S.PENDING_CANCEL)
        adapter.cancel(order)
        await until(lambda: order.status is S.CANCELLED)


async def cancelled_before_it_left(adapter: Any, sink: Any, order: Order) -> None:
    """Cancel ``order`` whose addorder has not been written: it ends cancelled at once, "before it
    left", with no refno (the venue never saw it)."""
    order.transition(S.PENDING_CANCEL)
    adapter.cancel(order)
    await until(lambda: order.status is S.CANCELLED)
    assert [u.status for u in sink.updates_for(order.client_id)] == [S.CANCELLED]
    assert "before it left" in sink.updates_for(order.client_id)[0].reason and not order.venue_order_id


async def test_a_cancel_of_an_order_still_waiting_for_the_budget_takes_it_back(venue: Venue) -> None:
    """Six orders at 4 orders/s: the fifth and sixth wait for the budget when the sixth's cancel is
    asked. Its addorder never leaves: the order ends cancelled at once, never live at the venue
    (no refno, no cancelorder), and the venue holds only the other five."""
    async with venue.adapter(symbols=()) as (adapter, sink):
        orders = [venue.order(sink, price=str(90 + n)) for n in range(6)]
        for order in orders:
            adapter.submit(order)
        await cancelled_before_it_left(adapter, sink, orders[-1])
        await until(lambda: all(o.status is S.NEW for o in orders[:-1]), timeout=15)
        await anyio.sleep(1.2)  # the budget would have let the sixth go by now
        assert len(venue.sandbox.ws.orders(USER)) == 5  # type: ignore[union-attr]


async def test_a_cancel_takes_back_an_order_the_write_hold_keeps(venue: Venue) -> None:
    """Four orders leave at once at 4 orders/s and their first write stalls 0.9 s, so the fifth,
    which the pacer lets go a window after their release, waits in the write hold (its window
    counts from when they were written). Cancelled there, its addorder is never written: the
    order ends cancelled at once, no refno, no cancelorder, four orders at the venue."""
    async with venue.adapter(symbols=()) as (adapter, sink):
        stalled = stall_first_send(adapter._client, '"addorder"', 0.9)
        orders = [venue.order(sink, price=str(90 + n)) for n in range(5)]
        for order in orders:
            adapter.submit(order)
        held = orders[-1]
        await until(lambda: adapter._pacer.departed["order"] == 5, timeout=10)
        assert adapter._pacer.hold.in_progress == 0  # kept by the hold, not being written
        await cancelled_before_it_left(adapter, sink, held)
        await until(lambda: all(o.status is S.NEW for o in orders[:-1]), timeout=15)
        await anyio.sleep(1.2)  # past the hold's window: the fifth would be written by now
        assert stalled
        assert len(venue.sandbox.ws.orders(USER)) == 4  # type: ignore[union-attr]


async def test_a_cancel_in_the_instant_of_its_submit_takes_the_addorder_back(venue: Venue) -> None:
    """The budget has room, so the addorder leaves the pacer at once, but the writer has not run
    yet when the cancel comes: it is taken back, never written, the order cancelled at once."""
    async with venue.adapter(symbols=()) as (adapter, sink):
        order = venue.order(sink, price="90")
        adapter.submit(order)
        assert adapter._pacer.departed["order"] == 1  # let go by the pacer, not yet written
        await cancelled_before_it_left(adapter, sink, order)
        await anyio.sleep(0.3)
        assert venue.sandbox.ws.orders(USER) == []  # type: ignore[union-attr]


async def test_amend_is_refused_2007(venue: Venue) -> None:
    async with venue.adapter(symbols=()) as (adapter, sink):
        order = venue.order(sink)
        adapter.submit(order)
        await until(lambda: order.status is S.NEW)
        order.request_replace(D("99"), None)
        adapter.amend(order, D("99"), None)
        await until(lambda: order.status is S.NEW)
        assert sink.updates_for(order.client_id)[-1].reject_code == Reject.ORDER_TYPE_NOT_SUPPORTED


# ---- bad days ------------------------------------------------------------------------------------


async def test_drop_reconnects_resubscribes_and_reconciles(venue: Venue) -> None:
    venue.sandbox.place(LTC, Side.SELL, D("1"), D("140.05"))
    async with venue.adapter(book_quiet_ms=100) as (adapter, sink):
        await until(lambda: book_matches(sink, venue.sandbox))
        order = venue.order(sink)
        adapter.submit(order)
        await until(lambda: order.status is S.NEW)
        venue.sandbox.apply_fault(_fault("ws.drop"))
        await until(lambda: "disconnected" in sink.statuses())
        order.transition(S.UNKNOWN)
        venue.sandbox.place(LTC, Side.SELL, D("0.4"), D("140.10"))  # while away
        await until(lambda: sink.statuses()[-1] == "connected" and len(sink.statuses()) >= 3, timeout=20)
        await until(lambda: book_matches(sink, venue.sandbox) and sink.snapshots(LTC) >= 2)
        seen = await adapter.query_order(order.client_id)
        assert seen is not None and seen.status is S.NEW
        assert adapter.stats()["logins"] == 2


async def test_fill_while_away_is_delivered_by_the_reconciliation(venue: Venue) -> None:
    async with venue.adapter(symbols=()) as (adapter, sink):
        order = venue.order(sink, qty="0.5", price="120")
        adapter.submit(order)
        await until(lambda: order.status is S.NEW)
        venue.sandbox.apply_fault(_fault("ws.drop"))
        await until(lambda: "disconnected" in sink.statuses())
        venue.sandbox.place(LTC, Side.SELL, D("0.5"), D("119"))  # fills our bid while we are away
        await until(lambda: order.status is S.FILLED, timeout=20)
        assert sum(f.qty for f in sink.fills_for(order.client_id)) == D("0.5")


async def test_restart_reconciles_with_queries(venue: Venue) -> None:
    sink = RecordingSink()
    async with venue.adapter(sink, symbols=()) as (adapter, _):
        working = venue.order(sink)
        adapter.submit(working)
        venue.sandbox.place(LTC, Side.SELL, D("0.5"), D("140"))
        filled = venue.order(sink, qty="0.5", price="140")
        adapter.submit(filled)
        await until(lambda: working.status is S.NEW and filled.status is S.FILLED)
        exec_ids = {f.exec_id for f in sink.fills_for(filled.client_id)}
    again = RecordingSink()
    again.orders = sink.orders
    async with venue.adapter(again, symbols=()) as (adapter, _):
        listed = await adapter.query_open_orders()
        assert [(o.client_id, o.venue_order_id, o.status) for o in listed] == [
            (working.client_id, working.venue_order_id, S.NEW)]
        done = await adapter.query_order(filled.client_id)
        assert done is not None and done.status is S.FILLED
        assert exec_ids <= {f.exec_id for f in await adapter.query_fills(0)}
        working.transition(S.PENDING_CANCEL)
        adapter.cancel(working)  # adopted from the engine's record: cancelled by refno
        await until(lambda: working.status is S.CANCELLED)
        assert again.errors == []


async def test_a_burst_of_orders_is_held_within_the_limits_on_the_wire(tmp_path: Path) -> None:
    """12 orders at once against 4/s: none refused, no violation counted by the sandbox, which
    serves from its own thread so that its arrival times are the wire's."""
    venue = Venue(tmp_path)
    async with venue.threaded():
        async with venue.adapter(symbols=()) as (adapter, sink):
            orders = [venue.order(sink, price=str(90 + i)) for i in range(12)]
            for order in orders:
                adapter.submit(order)
            await until(lambda: all(o.status is not S.PENDING_NEW for o in orders), timeout=20)
            assert adapter.stats()["messages_out"] >= 12
    assert [o.status for o in orders] == [S.NEW] * 12


async def test_login_that_times_out_is_retried(venue: Venue) -> None:
    async with venue.adapter(symbols=(), login_timeout_s=0.5) as (adapter, sink):
        venue.sandbox.apply_fault(_fault("ws.slow,count=1,delay_s=0"))
        venue.sandbox.apply_fault(_fault("ws.drop"))
        await until(lambda: "disconnected" in sink.statuses())
        await until(lambda: sink.statuses()[-1] == "connected" and len(sink.statuses()) >= 3, timeout=20)
        assert adapter.stats()["login_failures"] >= 1
        assert venue.sandbox.counters.get("ws.logins_unanswered", 0) == 1


async def test_first_login_that_times_out_fails_connect(venue: Venue) -> None:
    venue.sandbox.apply_fault(_fault("ws.slow,count=1,delay_s=0"))
    with anyio.fail_after(10), pytest.raises(ConnectionError, match="no login answer"):
        async with venue.adapter(symbols=(), login_timeout_s=0.5):
            pass


async def test_login_answer_with_the_documents_trailing_comma_is_read_leniently(venue: Venue) -> None:
    """001's own login answer ends in ``,}``: the codec refuses it as it is; the adapter reads a frame
    whose only fault is a trailing comma without it (counted), or no login would ever succeed
    against a venue that answers as its document shows."""
    async with venue.adapter(symbols=()) as (adapter, sink):
        venue.sandbox.apply_fault(_fault("ws.garbage,count=1"))  # the next login answer in 001's own form
        venue.sandbox.apply_fault(_fault("ws.drop"))
        await until(lambda: sink.statuses()[-1] == "connected" and len(sink.statuses()) >= 3, timeout=20)
        assert adapter.stats()["trailing_commas"] == 1 and adapter.stats()["logins"] == 2
        assert "login_failures" not in adapter.stats()


async def test_login_answer_that_is_not_json_fails_the_login_and_is_retried(venue: Venue) -> None:
    async with venue.adapter(symbols=()) as (adapter, sink):
        venue.sandbox.apply_fault(_fault("ws.drop"))
        await until(lambda: "disconnected" in sink.statuses())
        venue.sandbox.apply_fault(_fault("ws.slow,count=1,delay_s=0"))  # the next login goes unanswered ...
        await until(lambda: venue.sandbox.counters.get("ws.logins_unanswered", 0) == 1, timeout=10)
        venue.sandbox.apply_fault(_fault("ws.garbage,text={not json"))  # ... and this comes instead
        await until(lambda: sink.statuses()[-1] == "connected" and len(sink.statuses()) >= 3, timeout=20)
        assert adapter.stats()["login_failures"] >= 1


async def test_documents_invalid_samples_are_counted_and_change_nothing(venue: Venue) -> None:
    async with venue.adapter(symbols=()) as (adapter, sink):
        order = venue.order(sink)
        adapter.submit(order)
        await until(lambda: order.status is S.NEW)
        for text in ("doc:order_rate", "doc:logout", "{not json"):
            venue.sandbox.apply_fault(_fault(f"ws.garbage,text={text}"))
        await until(lambda: sum(adapter.bad_input().values()) >= 3)
        assert order.status is S.NEW and sink.statuses() == ["connected"]
        assert await adapter.query_open_orders() != []


async def test_stall_is_seen_as_silence_and_healed(venue: Venue) -> None:
    async with venue.adapter(probe_after_s=0.3, silence_s=0.8, book_quiet_ms=100) as (adapter, sink):
        await until(lambda: sink.snapshots(LTC) >= 1)
        venue.sandbox.apply_fault(_fault("ws.stall,seconds=1.5"))
        await until(lambda: "disconnected" in sink.statuses(), timeout=5)
        await until(lambda: sink.statuses()[-1] == "connected" and book_matches(sink, venue.sandbox), timeout=15)
        assert adapter.stats()["silence_drops"] >= 1


async def test_literal_mode_end_to_end(tmp_path: Path) -> None:
    v = Venue(tmp_path, literal=True)
    async with v.sandbox, v.adapter() as (adapter, sink):
        v.sandbox.place(LTC, Side.SELL, D("0.5"), D("140"))
        order = v.order(sink, qty="0.5", price="140")
        adapter.submit(order)
        await until(lambda: order.status is S.FILLED)
        assert sink.statuses() == ["connected"]
    assert v.sandbox.violations() == {"messages": 0, "orders": 0}


def _fault(spec: str) -> Any:
    from adapters.midchains.sandbox import parse_fault
    return parse_fault(spec)


# ---- what the sandbox never sends: a scripted venue ---------------------------------------------


class ScriptedVenue:
    """A WebSocket server answering the login and the set-up requests as 001 shows them and then
    sending, on every ``subscribe``, the next scripted list of ``book`` messages (any pass is
    accepted: the RSA step is tested against the sandbox). ``subscribes`` counts the subscribes."""

    def __init__(self, scripts: list[list[dict[str, Any]]]) -> None:
        self.scripts = scripts
        self.subscribes = 0
        self.port = 0

    async def handler(self, ws: Any) -> None:
        import json

        async for raw in ws:
            message = json.loads(raw)
            kind = message["type"]
            if kind == "challenge":
                await ws.send(json.dumps({"result": "OK", "type": "challenge", "key": self._key()}))
            elif kind == "login":
                await ws.send(json.dumps({"result": "OK", "type": "login", "userid": USER}))
            elif kind == "getsymbols":
                await ws.send(json.dumps({"result": "OK", "type": "getsymbols", "data": [
                    {"security": LTC, "fractionbase": 10000, "pair": True}]}))
            elif kind == "subscribesymbolstatus":
                await ws.send(json.dumps({"result": "OK", "type": "subscribesymbolstatus"}))
            elif kind == "subscribe":
                script = self.scripts[min(self.subscribes, len(self.scripts) - 1)]
                self.subscribes += 1
                for book in script:
                    await ws.send(json.dumps({"type": "book", "security": LTC, "books": book["books"]}))
                    await anyio.sleep(book.get("pause", 0))
            elif kind in ("querymultiorder", "querytrade", "querypos"):
                answer = {"querymultiorder": "querymultiorders"}.get(kind, kind)
                await ws.send(json.dumps({"result": "OK", "type": answer, "total_rec": 0}))

    @staticmethod
    def _key() -> str:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        import base64
        return base64.b64encode(der).decode()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[ScriptedVenue]:
        from websockets.asyncio.server import serve

        async with serve(self.handler, "127.0.0.1", 0) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            yield self


def u(order_id: int, side: str, price: str, qty: str) -> dict[str, Any]:
    return {"act": "U", "id": order_id, "side": side, "price": price, "qty": qty}


def r(order_id: int) -> dict[str, Any]:
    return {"act": "R", "id": order_id}


@contextlib.asynccontextmanager
async def scripted_adapter(tmp_path: Path, scripts: list[list[dict[str, Any]]], **extra: Any
                           ) -> AsyncIterator[tuple[ScriptedVenue, MidChainsWsAdapter, RecordingSink]]:
    (tmp_path / "pw").write_text("whatever-password\n")
    async with ScriptedVenue(scripts).serving() as venue, anyio.create_task_group() as tasks:
        sink = RecordingSink()
        options = MidChainsWsOptions(url=f"ws://127.0.0.1:{venue.port}/", userid=USER, password_file=tmp_path / "pw",
                                     book_quiet_ms=50, book_resubscribe_ms=100, book_cross_grace_ms=200, **extra)
        adapter = MidChainsWsAdapter("midchains", options, instruments(), WallClock(), sink)
        adapter.bind(tasks)
        await adapter.connect()
        adapter.subscribe([LTC])
        try:
            yield venue, adapter, sink
        finally:
            await adapter.close()
            tasks.cancel_scope.cancel()


SNAPSHOT = {"books": [u(1, "B", "99", "1"), u(2, "B", "98", "2"), u(3, "S", "101", "1")], "pause": 0.3}


async def test_upsert_of_a_held_id_replaces_it_and_a_zero_qty_removes(tmp_path: Path) -> None:
    script = [SNAPSHOT, {"books": [u(1, "B", "99.5", "3")]}, {"books": [u(2, "B", "98", "0")]}]
    async with scripted_adapter(tmp_path, [script]) as (_venue, _adapter, sink):
        await until(lambda: sink.books.get(LTC) is not None
                    and sink.books[LTC].bids == [(D("99.5"), D("3"))] and sink.books[LTC].asks == [(D(101), D(1))])
        assert sink.snapshots(LTC) == 1


async def test_remove_of_an_id_the_whole_book_does_not_hold_resubscribes(tmp_path: Path) -> None:
    lost = [SNAPSHOT, {"books": [r(77)]}]  # the U of 77 never came: the book is known wrong
    fresh = [{"books": [u(5, "B", "97", "4"), u(6, "S", "102", "1")], "pause": 0.3}]
    async with scripted_adapter(tmp_path, [lost, fresh]) as (venue, adapter, sink):
        await until(lambda: venue.subscribes == 2 and sink.snapshots(LTC) == 2)
        await until(lambda: sink.books[LTC].bids == [(D(97), D(4))] and sink.books[LTC].asks == [(D(102), D(1))])
        assert adapter.stats()["resubscribes"] == 1


async def test_remove_while_building_is_a_tombstone_for_a_late_snapshot_upsert(tmp_path: Path) -> None:
    script = [{"books": [u(1, "B", "99", "1"), r(9)]}, {"books": [u(9, "S", "100", "5"), u(3, "S", "101", "1")]}]
    async with scripted_adapter(tmp_path, [script]) as (venue, adapter, sink):
        await until(lambda: sink.snapshots(LTC) == 1)
        assert sink.books[LTC].asks == [(D(101), D(1))]  # 9 was removed before its snapshot U came
        assert venue.subscribes == 1 and adapter.stats()["book_tombstoned"] == 1


async def test_a_book_crossed_for_longer_than_the_grace_resubscribes(tmp_path: Path) -> None:
    crossed = [SNAPSHOT, {"books": [u(4, "B", "102", "1")], "pause": 1.0}]  # the R of what it matched: lost
    fresh = [{"books": [u(5, "B", "97", "4"), u(6, "S", "102", "1")], "pause": 0.3}]
    async with scripted_adapter(tmp_path, [crossed, fresh]) as (venue, adapter, sink):
        await until(lambda: venue.subscribes == 2 and sink.snapshots(LTC) == 2)
        replayed = Book("midchains", LTC)
        for update in sink.of("book"):  # the crossed book never reached the engine, at any step
            replayed.apply(update)
            assert replayed.best_bid is None or replayed.best_ask is None or replayed.best_bid < replayed.best_ask
        assert adapter.stats()["resubscribes"] == 1


async def test_a_frame_over_max_message_bytes_is_counted_and_the_connection_remade(tmp_path: Path) -> None:
    big = {"books": [u(n, "B", "90", "1") for n in range(1, 200)]}  # about 12 KB in one frame
    async with scripted_adapter(tmp_path, [[big], [SNAPSHOT]], max_message_bytes=4096) as (_venue, adapter, sink):
        await until(lambda: adapter.bad_input().get("too_large", 0) == 1 and sink.snapshots(LTC) == 1, timeout=15)
        assert "disconnected" in sink.statuses() and sink.statuses()[-1] == "connected"
        assert sink.books[LTC].bids == [(D(99), D(1)), (D(98), D(2))]


async def test_wss_with_a_private_certificate_needs_the_ca_bundle(tmp_path: Path) -> None:
    cert_path, server = self_signed(tmp_path)
    v = Venue(tmp_path, tls=server)
    async with v.sandbox:
        assert v.sandbox.ws_url.startswith("wss://")
        with pytest.raises(ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            async with v.adapter(symbols=()):
                pass
        async with v.adapter(symbols=(), ca_bundle=cert_path) as (adapter, sink):
            order = v.order(sink)
            adapter.submit(order)
            await until(lambda: order.status is S.NEW)
