"""Algo724 streams against the Algo724 sandbox (REST login + simulated venue) on 127.0.0.1: the
real centrifuge-python client connects with the REST login's accessToken, the sandbox's book,
trades and order changes arrive as engine events, and the sandbox's faults reach the streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import anyio
import httpx
import pytest
from support.algo724_streams import until
from support.sinks import RecordingSink

from adapters.algo724.centrifugo_feed import StreamFeed
from adapters.algo724.sandbox import AlgoExtensions, AlgoSandbox, SandboxSettings
from adapters.algo724.streams import Algo724Streams
from engine.clock import WallClock
from engine.model import Order, OrderStatus, Side

pytestmark = pytest.mark.anyio

D = Decimal
EMAIL = "quant@example.com"
PASSWORD = "throwaway-sandbox-password"
SYMBOL = "BTC/USDT"
INSTRUMENT = "BINANCE:BTC/USDT"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Login:
    """The token provider the adapter gives the stream client: the REST login's accessToken."""

    def __init__(self, sandbox: AlgoSandbox) -> None:
        self.sandbox = sandbox
        self.logins = 0

    async def __call__(self) -> str:
        self.logins += 1
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.post(f"{self.sandbox.base_url}/auth/login", json={"email": EMAIL, "password": PASSWORD})
        return str(answer.json()["data"]["accessToken"])


@asynccontextmanager
async def running(market: bool = True, **feed_options: object
                  ) -> AsyncIterator[tuple[AlgoSandbox, StreamFeed, Algo724Streams, RecordingSink, list[str], Login]]:
    settings = SandboxSettings(users={EMAIL: PASSWORD}, market=market, market_step_s=D("0.05"), rate_per_second=1000)
    async with AlgoSandbox(settings) as sandbox:
        feed = StreamFeed(sandbox, **feed_options)  # type: ignore[arg-type]
        await feed.start()
        sink = RecordingSink()
        reconciles: list[str] = []
        login = Login(sandbox)
        client = Algo724Streams("algo724", feed.url, sandbox.trading_account_id, {SYMBOL: INSTRUMENT}, sink,
                                WallClock(), login, on_recovery_failed=reconciles.append)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.run)
                # the client has handled the three replies, not only the server counted the requests:
                # a drop before a reply is handled would resubscribe without a position to recover
                await until(lambda: client.router.counts.get("subscribed", 0) >= 3)
                yield sandbox, feed, client, sink, reconciles, login
                await client.close()
                tg.cancel_scope.cancel()
        finally:
            await feed.stop()


async def submit(sandbox: AlgoSandbox, token: str, side: str, qty: str, price: str) -> dict:
    body = {"tradingAccountId": sandbox.trading_account_id, "instrumentId": INSTRUMENT, "orderSide": side,
            "orderType": "LIMIT", "limitPrice": price, "quantity": qty, "timeInForce": "GTC",
            "clientOrderId": f"c-{side}-{price}", "idempotencyKey": f"c-{side}-{price}"}
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(f"{sandbox.base_url}/tradeOrder", json=body,
                                 headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"][0]


def touch(sandbox: AlgoSandbox) -> tuple[Decimal | None, Decimal | None]:
    engine = sandbox.sim.matching_engine(SYMBOL)
    return engine.best_bid, engine.best_ask


async def test_the_sandbox_book_and_trades_reach_the_engine_as_the_venue_has_them():
    async with running() as (sandbox, feed, client, sink, _, login):
        assert login.logins == 1
        await until(lambda: SYMBOL in sink.books and sink.books[SYMBOL].seq >= 3)
        await until(lambda: (sink.books[SYMBOL].best_bid, sink.books[SYMBOL].best_ask) == touch(sandbox)
                    and sink.books[SYMBOL].seq == feed.sequences[INSTRUMENT])
        assert client.router.counts.get("gaps", 0) == 0
        limit = touch(sandbox)[1] + 10  # marketable even if the synthetic market moves meanwhile
        taken = len(sink.of("trade"))
        order = await submit(sandbox, await login(), "BUY", "0.01", str(limit))  # takes: a public print
        await until(lambda: sandbox.order_view(order["tradeOrderId"])["status"] == "FILLED")
        execution = sandbox.order_view(order["tradeOrderId"])["executions"][0]
        await until(lambda: any(t.price == execution["executedPrice"] and t.aggressor is Side.BUY
                                for t in sink.of("trade")[taken:]))


async def test_an_order_over_rest_comes_back_over_the_account_channel_with_its_fills():
    async with running() as (sandbox, _feed, client, sink, _, login):
        await until(lambda: touch(sandbox)[1] is not None)
        best_ask = touch(sandbox)[1]
        taker = await submit(sandbox, await login(), "BUY", "0.02", str(best_ask))
        sink.orders["c-buy"] = Order("c-buy", "s", "algo724", SYMBOL, Side.BUY, D("0.02"), best_ask)
        client.bind_order(taker["tradeOrderId"], "c-buy")  # after the REST answer: the stream may be first
        await until(lambda: sink.orders["c-buy"].status is OrderStatus.FILLED)
        rest_view = sandbox.order_view(taker["tradeOrderId"])
        assert [f.exec_id for f in sink.fills_for("c-buy")] == [e["executionId"] for e in rest_view["executions"]]
        assert sum(f.qty for f in sink.fills_for("c-buy")) == D("0.02")
        assert sink.fills_for("c-buy")[0].fee == rest_view["executions"][0]["fees"][0]["quantity"]  # USDT: quote
        assert sink.errors == []


async def test_expired_tokens_close_the_stream_and_the_client_logs_in_again():
    async with running(market=False) as (sandbox, feed, _client, _sink, reconciles, login):
        sandbox.inject("expire_tokens")
        await until(lambda: feed.server.stats().get("close_3005", 0) == 1)
        await until(lambda: login.logins >= 2 and feed.server.stats()["connections"] >= 2, timeout=30)
        assert feed.server.stats().get("error_109", 0) >= 1  # the old token, refused as expired
        await until(lambda: feed.server.stats().get("recovered", 0) >= 3)
        assert reconciles == []


async def test_a_dropped_stream_recovers_and_a_lost_history_asks_for_rest_reconciliation():
    async with running(market=False) as (sandbox, feed, _client, _sink, reconciles, _login):
        sandbox.inject("drop_connections")
        await until(lambda: feed.server.stats().get("recovered", 0) >= 3, timeout=30)
        assert reconciles == []
        feed.reset_epochs()
        sandbox.inject("drop_connections")
        await until(lambda: len(reconciles) >= 3, timeout=30)
        assert f"recovery failed for channel tradingAccount:{sandbox.trading_account_id}" in reconciles


async def test_a_lost_book_delta_is_a_gap_and_the_book_is_resynced():
    async with running() as (sandbox, feed, client, sink, _, _login):
        await until(lambda: SYMBOL in sink.books and sink.books[SYMBOL].seq >= 2)
        feed.lose_next_change(SYMBOL)
        await until(lambda: client.router.counts.get("gaps", 0) == 1)
        await until(lambda: (sink.books[SYMBOL].best_bid, sink.books[SYMBOL].best_ask) == touch(sandbox)
                    and sink.books[SYMBOL].seq == feed.sequences[INSTRUMENT])


async def test_document_literal_mode_serves_the_channels_and_publishes_nothing():
    """003 defines no publication payload (ALG-3): literal, the protocol and the three channels
    are there, with no snapshot in the subscribe reply and no publication."""
    settings = SandboxSettings(users={EMAIL: PASSWORD}, market=True, market_step_s=D("0.05"),
                               extensions=AlgoExtensions.document_literal())
    async with AlgoSandbox(settings) as sandbox:
        feed = StreamFeed(sandbox)
        await feed.start()
        try:
            sink = RecordingSink()
            client = Algo724Streams("algo724", feed.url, sandbox.trading_account_id, {SYMBOL: INSTRUMENT}, sink,
                                    WallClock(), Login(sandbox))
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.run)
                await until(lambda: feed.server.stats().get("subscribes", 0) == 3)
                await until(lambda: sandbox.sim.matching_engine(SYMBOL).best_bid is not None)
                await anyio.sleep(0.3)  # market steps happen; none may be published
                await client.close()
                tg.cancel_scope.cancel()
            assert feed.server.stats().get("publications", 0) == 0
            assert sink.of("book") == [] and client.router.counts.get("awaiting_snapshot", 0) == 0
        finally:
            await feed.stop()
