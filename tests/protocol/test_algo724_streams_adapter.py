"""The Algo724 adapter with its streams on (``streams_url``) against the sandbox and its
StreamFeed on 127.0.0.1: fills reach the engine over the account channel (the REST poll is set
to a minute, so it cannot be what delivers them), books and trades over the market channels, the
stream's token is the adapter's REST session, and a lost history is reconciled over REST."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import anyio
import pytest
from support.algo724_streams import until
from support.sinks import RecordingSink

from adapters.algo724.adapter import Algo724Adapter, Algo724Options
from adapters.algo724.centrifugo_feed import StreamFeed
from adapters.algo724.sandbox import DOC_INSTRUMENTS, AlgoSandbox, SandboxSettings
from engine.clock import WallClock
from engine.model import Order, OrderStatus, Side

pytestmark = pytest.mark.anyio

D = Decimal
EMAIL = "streams@example.com"
PASSWORD = "strm-Pw-2c9a-kk41"
SYMBOL = "BTC/USDT"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def login_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALGO724_EMAIL", EMAIL)
    monkeypatch.setenv("ALGO724_PASSWORD", PASSWORD)


MINUTE = D(60)  # the REST poll's interval unless a test says: it cannot be what delivers a fill


@asynccontextmanager
async def adapter_with_streams(poll_interval_s: Decimal = MINUTE) -> AsyncIterator[
        tuple[AlgoSandbox, StreamFeed, Algo724Adapter, RecordingSink]]:
    settings = SandboxSettings(users={EMAIL: PASSWORD}, market_step_s=D("0.05"), rate_per_second=100)
    async with AlgoSandbox(settings) as sandbox:
        feed = StreamFeed(sandbox)
        await feed.start()
        sink = RecordingSink()
        options = Algo724Options(base_url=sandbox.base_url, trading_account_id=sandbox.trading_account_id,
                                 streams_url=feed.url, poll_interval_s=poll_interval_s)
        adapter = Algo724Adapter("algo724", options, DOC_INSTRUMENTS, WallClock(), sink)
        try:
            async with anyio.create_task_group() as tg:
                adapter.bind(tg)
                await adapter.connect()
                await until(lambda: feed.server.stats().get("subscribes", 0) >= 5)  # account + 2 x (book, trade)
                yield sandbox, feed, adapter, sink
                await adapter.close()
                tg.cancel_scope.cancel()
        finally:
            await feed.stop()
    assert os.environ["ALGO724_PASSWORD"] == PASSWORD


async def test_an_order_fills_over_the_stream_and_books_and_trades_flow():
    async with adapter_with_streams() as (sandbox, _feed, adapter, sink):
        await until(lambda: SYMBOL in sink.books and sink.books[SYMBOL].best_ask is not None)
        order = Order("s-1", "strategy", "algo724", SYMBOL, Side.BUY, D("0.01"), sink.books[SYMBOL].best_ask + 10)
        sink.orders[order.client_id] = order
        adapter.submit(order)
        await until(lambda: order.status is OrderStatus.FILLED)  # the poll sleeps for a minute
        assert [f.exec_id for f in sink.fills_for("s-1")] == [
            e["executionId"] for e in sandbox.order_view(order.venue_order_id)["executions"]]
        await until(lambda: any(t.aggressor is Side.BUY for t in sink.of("trade")))
        assert sink.errors == []
        stats = adapter.stats()
        assert stats["stream_queued"] > 0 and stats["messages_in"] >= stats["stream_queued"]


async def test_the_stream_token_is_renewed_with_the_rest_session_after_expire_tokens():
    async with adapter_with_streams() as (sandbox, feed, adapter, _sink):
        before = adapter.counts["token_refreshes"] + adapter.counts["logins"]
        sandbox.inject("expire_tokens")
        await until(lambda: feed.server.stats().get("close_3005", 0) == 1)
        await until(lambda: feed.server.stats().get("recovered", 0) >= 5, timeout=30)
        assert adapter.counts["token_refreshes"] + adapter.counts["logins"] > before


async def test_a_stream_that_cannot_recover_makes_the_adapter_reconcile_over_rest():
    async with adapter_with_streams() as (sandbox, feed, adapter, sink):
        await until(lambda: SYMBOL in sink.books and sink.books[SYMBOL].best_ask is not None)
        resting = Order("s-2", "strategy", "algo724", SYMBOL, Side.BUY, D("0.01"), D("40000.00"))
        sink.orders[resting.client_id] = resting
        adapter.submit(resting)
        await until(lambda: resting.status is OrderStatus.NEW)
        feed.reset_epochs()
        sandbox.inject("drop_connections")
        await until(lambda: adapter.counts["stream_reconciles"] >= 1, timeout=30)
        assert sink.errors == []


async def test_the_poll_slows_while_the_account_channel_is_live_and_returns_when_the_stream_stops():
    """The stream pushes each order change, so the 1 s REST listing is only a safety net while the
    account channel is live (every poll_interval_streaming_s, 15 s): it no longer spends the 3/s
    queries budget. When the stream stops, the listing is back at poll_interval_s."""
    async with adapter_with_streams(poll_interval_s=D("0.05")) as (_sandbox, feed, adapter, _sink):
        assert adapter.streams is not None
        await until(adapter.streams.account_live)
        skipped = adapter.counts["polls_skipped_streaming"]
        polls = adapter.counts["polls"]
        await until(lambda: adapter.counts["polls_skipped_streaming"] >= skipped + 5)
        assert adapter.counts["polls"] == polls  # 15 s apart while the stream is live
        await feed.stop()
        await until(lambda: not adapter.streams.account_live())
        await until(lambda: adapter.counts["polls"] >= polls + 3)  # at the short interval again
