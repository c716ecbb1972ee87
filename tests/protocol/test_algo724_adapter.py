"""The Algo724 adapter against its sandbox on 127.0.0.1: idempotency when answers are lost, tokens,
the id journal across a restart, configurable routes, fees, pagination. Every wait is on a
condition with a generous timeout, never a sleep taken as proof."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from support.sinks import RecordingSink
from support.stamped_http import STAMPED, StampedTap

from adapters.algo724.adapter import Algo724Adapter, Algo724Options
from adapters.algo724.sandbox import DOC_INSTRUMENTS, AlgoExtensions, AlgoSandbox, SandboxSettings
from adapters.kit.pacing import max_in_window
from engine.clock import NS_PER_S, WallClock
from engine.model import Order, OrderStatus, Side
from engine.rejects import Reject

pytestmark = pytest.mark.anyio
D = Decimal
S = OrderStatus
EMAIL, PASSWORD = "t@example.com", "adapter-test-Pw-93kq"
RESTING = D("40000.00")
SIZE = D("0.01")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALGO724_EMAIL", EMAIL)
    monkeypatch.setenv("ALGO724_PASSWORD", PASSWORD)


class Rig:
    def __init__(self, sandbox: AlgoSandbox, tg: Any, state: Path) -> None:
        self.sandbox = sandbox
        self.tg = tg
        self.state = state
        self.sink = RecordingSink()
        self.adapter: Algo724Adapter
        self.n = 0

    async def connect(self, **options: Any) -> Algo724Adapter:
        base: dict[str, Any] = {"base_url": self.sandbox.base_url,
                                "trading_account_id": self.sandbox.trading_account_id,
                                "poll_interval_s": D("0.1"), "request_timeout_s": D("0.4"),
                                "connect_timeout_s": D("0.4"), "unknown_retry_s": D("0.1"),
                                "retry_backoff_s": D("0.01")}
        base.update(options)
        adapter = Algo724Adapter("algo724", Algo724Options(**base), DOC_INSTRUMENTS, WallClock(), self.sink)
        adapter.set_state_path(self.state)
        adapter.bind(self.tg)
        await adapter.connect()
        self.adapter = adapter
        return adapter

    def submit(self, price: Decimal = RESTING, qty: Decimal = SIZE) -> Order:
        self.n += 1
        order = Order(f"o-{self.n}", "t", "algo724", "BTC/USDT", Side.BUY, qty, price)
        self.sink.orders[order.client_id] = order
        self.adapter.submit(order)
        return order

    async def until(self, condition: Callable[[], bool], what: str, timeout: float = 15) -> None:
        with anyio.fail_after(timeout):
            while not condition():
                await anyio.sleep(0.01)


@contextlib.asynccontextmanager
async def rig(tmp_path: Path, **settings: Any) -> AsyncIterator[Rig]:
    config = {"users": {EMAIL: PASSWORD}, "market_step_s": D("0.05"), "rate_per_second": 100, **settings}
    async with AlgoSandbox(SandboxSettings(**config)) as sandbox, anyio.create_task_group() as tg:
        r = Rig(sandbox, tg, tmp_path / "algo724-ids.jsonl")
        try:
            yield r
        finally:
            with contextlib.suppress(AttributeError):
                await r.adapter.close()
            tg.cancel_scope.cancel()


def placed(r: Rig) -> int:
    return r.sandbox.counts["orders"]


# ---- the budget on the wire ----------------------------------------------------------------------

FIRST_WINDOW = 7  # the orders the pacer lets go at once: the "all" budget's 7, none kept back


@pytest.mark.skipif(not STAMPED, reason="kernel receive stamps (SO_TIMESTAMPNS) are Linux's")
async def test_a_stall_between_release_and_write_does_not_bunch_the_venues_window(tmp_path: Path) -> None:
    """Forty orders against the adapter's 7 orders/s and 3 queries/s (ALG-10's assumed 10/s), with
    10 connections; the loop stalls 0.4 s after the pacer let the first window's orders go and
    before they are written, so they reach the wire late. On the wire (the kernel's receive time
    of each request at a tap in front of the sandbox; logins and refreshes aside) no second holds
    more than 10: the requests are written through the pacer's write hold (without it, 15 in one
    of two runs). (Optimus has the same test at its scale; the mechanism alone:
    tests/unit/test_rest_write_hold.py.)"""
    seen: list[httpx.Request] = []
    stalled: list[bool] = []

    async def stall(request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path.endswith("/tradeOrder"):
            seen.append(request)
            if len(seen) == FIRST_WINDOW:  # the window's other orders wait for their connections
                stalled.append(True)
                time.sleep(0.4)  # blocks the loop, as a slow hook or a descheduled process does

    async with rig(tmp_path) as r:
        with StampedTap(r.sandbox.base_url) as tap:
            adapter = await r.connect(base_url=tap.url, max_connections=10)
            assert adapter._client is not None
            adapter._client.event_hooks["request"].append(stall)
            orders = [r.submit(price=RESTING - n % 5) for n in range(40)]
            await r.until(lambda: all(o.status is S.NEW for o in orders), "forty orders working", timeout=60)
            wire = tap.arrivals_ns(lambda line: "/auth/" not in line)
            held = adapter.stats()["writes_held"]
    most = max_in_window(wire, NS_PER_S)
    print(f"algo724 stall: {len(wire)} requests on the wire, at most {most} in any 1 s window, {held} writes held")
    assert stalled and len(wire) >= len(orders)
    assert most <= 10


# ---- idempotency --------------------------------------------------------------------------------


async def test_a_cancel_of_an_order_still_waiting_to_leave_takes_it_back(tmp_path: Path) -> None:
    """Ten orders at the adapter's 7 orders/s: the last ones wait for the budget when the tenth's
    cancel is asked, and the eleventh is cancelled before its task began. Neither submit leaves:
    both orders end cancelled at once (one update each), never live at the venue; the rest work."""
    async with rig(tmp_path) as r:
        await r.connect()
        orders = [r.submit(price=RESTING - n) for n in range(10)]
        await r.until(lambda: r.adapter._pacer.waiting("order") >= 1, "an order waiting for the budget")
        waiting, unstarted = orders[-1], r.submit()
        for order in (waiting, unstarted):
            order.transition(S.PENDING_CANCEL)
            r.adapter.cancel(order)
        await r.until(lambda: all(o.status is S.NEW for o in orders[:-1]), "the other nine working")
        await anyio.sleep(0.3)  # a request that still left would be answered by now
        for order in (waiting, unstarted):
            updates = r.sink.updates_for(order.client_id)
            assert [u.status for u in updates] == [S.CANCELLED] and "before it left" in updates[0].reason
        assert placed(r) == 9 and r.sandbox.counts["cancels"] == 0


async def test_a_timeout_after_the_order_was_taken_finds_the_order_by_its_key(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.connect()
        r.sandbox.inject("slow", count=1, delay_s=1.5)  # the answer comes after the adapter gave up on it
        order = r.submit()
        await r.until(lambda: order.status is S.NEW, "acknowledged")
        assert placed(r) == 1, "a second order was placed"
        assert r.sandbox.counts["idempotent_replays"] >= 1
        assert r.adapter.stats()["orders_unknown"] == 1
        assert order.venue_order_id == r.sandbox.orders_by_key[(r.sandbox.trading_account_id, order.client_id)]
        assert [u.status for u in r.sink.updates_for(order.client_id)] == [S.NEW]


async def test_a_5xx_after_processing_leaves_one_order(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.connect()
        r.sandbox.inject("5xx", count=2, process=True, status=502)
        order = r.submit()
        await r.until(lambda: order.status is S.NEW, "acknowledged")
        assert placed(r) == 1


async def test_a_5xx_before_processing_is_not_a_reject_and_places_once(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.connect()
        r.sandbox.inject("5xx", count=2)
        order = r.submit()
        await r.until(lambda: order.status is S.NEW, "acknowledged")
        assert placed(r) == 1 and S.REJECTED not in [u.status for u in r.sink.updates_for(order.client_id)]


async def test_an_unreadable_answer_is_unknown_then_settled(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.connect()
        r.sandbox.inject("garbage", count=1)
        order = r.submit()
        await r.until(lambda: order.status is S.NEW, "acknowledged")
        assert placed(r) == 1 and r.adapter.bad_input().get("not_json", 0) + r.adapter.bad_input().get(
            "malformed", 0) >= 1


# ---- tokens -------------------------------------------------------------------------------------


async def test_an_expired_token_is_renewed_and_the_request_sent_again(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.connect()
        r.sandbox.inject("expire_tokens")
        order = r.submit()
        await r.until(lambda: order.status is S.NEW, "acknowledged")
        assert placed(r) == 1
        assert r.sandbox.counts["refreshes"] >= 1 and r.sandbox.counts["logins"] == 1


async def test_a_refused_refresh_logs_in_again(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.connect()
        r.sandbox.inject("expire_tokens", refresh=True)
        order = r.submit()
        await r.until(lambda: order.status is S.NEW, "acknowledged")
        assert r.sandbox.counts["logins"] == 2


async def test_the_token_is_refreshed_before_it_expires(tmp_path: Path) -> None:
    async with rig(tmp_path, access_ttl_s=2) as r:
        # polls every 10 ms fill the 3/s queries budget the renewal shares: it must still go first
        await r.connect(refresh_margin_s=D(1), poll_interval_s=D("0.01"))
        await r.until(lambda: r.sandbox.counts["refreshes"] >= 1, "a refresh", timeout=10)
        assert r.adapter.stats().get("auth_retries", 0) == 0  # never refused for an expired token


async def test_close_logs_out(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.connect()
        await r.adapter.close()
        assert r.sandbox.counts["logouts"] == 1



@pytest.mark.skipif(not STAMPED, reason="kernel receive stamps (SO_TIMESTAMPNS) are Linux's")
async def test_the_logout_at_close_waits_for_room_in_the_queries_budget(tmp_path: Path) -> None:
    """Polls every 10 ms keep the 3/s queries budget (login, polls, logout) full; the adapter
    closes with the last window's three just written. On the wire no second holds more than 3
    of them: the logout waits in the write hold (without it, the fourth in its second)."""
    async with rig(tmp_path) as r:
        with StampedTap(r.sandbox.base_url) as tap:
            adapter = await r.connect(base_url=tap.url, poll_interval_s=D("0.01"))
            await r.until(lambda: len(tap.arrivals_ns(lambda line: True)) >= 9, "three windows of polls")
            await adapter.close()
            wire = tap.arrivals_ns(lambda line: True)
            logouts = r.sandbox.counts["logouts"]
    most = max_in_window(wire, NS_PER_S)
    print(f"algo724 logout: {len(wire)} requests on the wire, at most {most} in any 1 s window")
    assert logouts == 1
    assert most <= 3



async def test_an_unreadable_logout_answer_is_neither_an_error_nor_bad_input(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """After close nobody needs the logout's answer: one that is not JSON is not logged as an
    error nor counted as bad input from the venue (it is still a message in and out)."""
    async with rig(tmp_path) as r:
        adapter = await r.connect(poll_interval_s=D(60))
        r.sandbox.inject("garbage")
        with caplog.at_level(logging.ERROR):
            await adapter.close()
        assert r.sandbox.counts["logouts"] == 1
        assert [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.ERROR] == []
        assert not any(adapter.bad_input().values())


# ---- the id journal -----------------------------------------------------------------------------


async def test_a_restarted_adapter_finds_and_cancels_its_order_by_the_journal(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.connect()
        order = r.submit()
        await r.until(lambda: order.status is S.NEW, "acknowledged")
        await r.adapter.close()
        lines = r.state.read_text(encoding="utf-8").splitlines()
        assert len(lines) == 2 and order.venue_order_id in lines[1]  # intent first, then the venue's id
        r.sink = RecordingSink()
        r.sink.orders[order.client_id] = order
        await r.connect()
        seen = await r.adapter.query_order(order.client_id)
        assert seen is not None and (seen.status, seen.venue_order_id) == (S.NEW, order.venue_order_id)
        assert [o.client_id for o in await r.adapter.query_open_orders()] == [order.client_id]
        order.transition(S.PENDING_CANCEL)
        r.adapter.cancel(order)
        await r.until(lambda: order.status is S.CANCELLED, "cancelled by the new instance")


def test_a_torn_journal_line_is_skipped(tmp_path: Path) -> None:
    from adapters.algo724.ids import IdJournal

    path = tmp_path / "ids.jsonl"
    path.write_text('{"c":"a","s":"BTC/USDT","d":"buy","q":"1","p":"2","t":"T-1"}\n{"c":"b","s":', encoding="utf-8")
    journal = IdJournal(durable=False)
    assert journal.open(path) == 1 and journal.client_of("T-1") == "a"
    journal.close()


# ---- routes, fees, pagination -------------------------------------------------------------------


async def test_every_route_is_taken_from_the_options(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.connect(routes={"submit": {"method": "POST", "path": "/orders/new"}})
        order = r.submit()
        await r.until(lambda: order.status is S.REJECTED, "refused by the sandbox (no such endpoint)")
        assert placed(r) == 0 and order.reject_code == Reject.INVALID_ORDER and "/orders/new" in order.reject_reason


def test_an_unknown_operation_in_routes_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="amend"):
        Algo724Options(base_url="https://gw.example/api/v3", trading_account_id="a",
                       routes={"amend": {"method": "POST", "path": "/x"}})


async def test_fees_in_the_base_asset_reach_the_fill_in_the_quote_asset(tmp_path: Path) -> None:
    async with rig(tmp_path, extensions=AlgoExtensions.document_literal()) as r:
        await r.connect()
        engine = r.sandbox.sim.matching_engine("BTC/USDT")
        await r.until(lambda: engine.best_ask is not None, "a book")
        order = r.submit(price=D("55000.00"), qty=D("0.01"))
        await r.until(lambda: order.status is S.FILLED, "filled")
        (fill,) = r.sink.fills_for(order.client_id)
        execution = r.sandbox.order_view(order.venue_order_id)["executions"][0]
        (fee,) = execution["fees"]
        assert fee["asset"] == "BTC"
        assert fill.fee == fee["quantity"] * fill.price


async def test_listings_follow_the_cursor(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.connect(page_size=2)
        orders = [r.submit(price=RESTING - i) for i in range(5)]
        await r.until(lambda: all(o.status is S.NEW for o in orders), "all acknowledged")
        assert {o.client_id for o in await r.adapter.query_open_orders()} == {o.client_id for o in orders}


async def test_a_credential_never_reaches_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    async with rig(tmp_path) as r:
        await r.connect()
        r.sandbox.inject("expire_tokens", refresh=True)
        order = r.submit()
        await r.until(lambda: order.status is S.NEW, "acknowledged")
    assert PASSWORD[:8] not in caplog.text and os.environ["ALGO724_PASSWORD"] not in caplog.text


# ---- what the stream client plugs into ------------------------------------------------------------


async def test_a_pushed_order_object_is_applied_like_a_poll(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.connect(poll_interval_s=D(60))  # no poll: only the push can tell the fill
        pushed: list[dict[str, Any]] = []
        r.sandbox.order_listeners.append(pushed.append)
        engine = r.sandbox.sim.matching_engine("BTC/USDT")
        await r.until(lambda: engine.best_ask is not None, "a book")
        order = r.submit()  # resting: the answer says ACCEPTED
        await r.until(lambda: order.status is S.NEW, "acknowledged")
        r.sandbox.order_listeners.append(r.adapter.on_order_object)
        r.sandbox.sim.cancel(order.venue_order_id)  # the venue cancels it: only the push can say so
        await r.until(lambda: order.status is S.CANCELLED, "cancelled, told by the push")
        taking = r.submit(price=D("55000.00"))
        await r.until(lambda: taking.status is S.FILLED, "filled")
        for data in pushed:  # the same objects again: nothing is told twice
            r.adapter.on_order_object(data)
        assert len(r.sink.fills_for(taking.client_id)) == len({f.exec_id for f in r.sink.fills_for(taking.client_id)})
        assert r.adapter.on_order_object({"tradeOrderId": "x"}) is False
        assert r.adapter.bad_input().get("malformed", 0) >= 1
        token = await r.adapter.access_token()
        assert r.sandbox.verify_token(token) == EMAIL
