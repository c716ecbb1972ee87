"""PSX Live Feed test helpers: the Live Feed sandbox on 127.0.0.1 (port 0) with seeded books, a
running adapter against it, the token in the environment and the check that no connection slot
leaks (both autouse where a test module imports them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import anyio
import pytest

from adapters.psx_feed import adapter as adapter_module
from adapters.psx_feed.adapter import LiveFeedAdapter, LiveFeedOptions
from adapters.psx_feed.sandbox import FeedServer
from engine.clock import Clock, WallClock
from engine.model import BookUpdate, Instrument, Phase, SessionState, Side
from support import until
from support.sinks import RecordingSink

D = Decimal

TOKEN = "feed-token-0123456789"
TOKEN_ENV = "PSX_FEED_TEST_TOKEN"
INSTRUMENTS = [
    Instrument("MEBL", "PSX", previous_close=D("187.50")),
    Instrument("OGDC", "PSX", previous_close=D("109.30")),
]
OPEN = SessionState(Phase.OPEN, True, True, True, "2026-03-02")
FAST = {"backoff_base_s": D("0.01"), "backoff_max_s": D("0.05")}


@pytest.fixture(autouse=True)
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


@pytest.fixture(autouse=True)
def no_leaked_connections() -> Iterator[None]:
    """Every test gives back its connection slots (and a failed one cannot starve the next)."""
    yield
    leaked = dict(adapter_module._OPEN)
    adapter_module._OPEN.clear()
    assert not leaked, f"connection slots still held after the test: {leaked}"


def same_book(sink: RecordingSink, server: FeedServer, symbol: str) -> bool:
    mine = sink.books.get(symbol)
    theirs = server.book(symbol)
    return mine is not None and mine.bids == theirs.bids and mine.asks == theirs.asks


def level(side: Side, price: str, qty: int) -> tuple[Side, Decimal, Decimal]:
    return (side, D(price), D(qty))


def seed_books(server: FeedServer, clock: Clock) -> None:
    server.on_book(BookUpdate("PSX", "MEBL", clock.now_ns(), 1, (
        level(Side.BUY, "187.45", 1000), level(Side.BUY, "187.40", 500),
        level(Side.SELL, "187.55", 1500), level(Side.SELL, "187.60", 700)), snapshot=True))
    server.on_book(BookUpdate("PSX", "OGDC", clock.now_ns(), 1, (
        level(Side.BUY, "109.25", 300), level(Side.SELL, "109.35", 400)), snapshot=True))


@asynccontextmanager
async def sandbox(tokens: tuple[str, ...] = (TOKEN,), **kwargs: Any) -> AsyncIterator[FeedServer]:
    clock = WallClock()
    server = FeedServer(INSTRUMENTS, clock, tokens, **kwargs)
    seed_books(server, clock)
    server.on_session(OPEN)
    async with server:
        yield server


def options(server: FeedServer, **changes: Any) -> LiveFeedOptions:
    values: dict[str, Any] = {"url": server.url, "access": "l2", "token_env": TOKEN_ENV, **FAST}
    values.update(changes)
    return LiveFeedOptions(**values)


@asynccontextmanager
async def running(
    server: FeedServer, symbols: tuple[str, ...] = ("MEBL",), **changes: Any
) -> AsyncIterator[tuple[LiveFeedAdapter, RecordingSink]]:
    sink = RecordingSink()
    adapter = LiveFeedAdapter("PSX", options(server, **changes), INSTRUMENTS, WallClock(), sink, seed=1)
    async with anyio.create_task_group() as tg:
        adapter.bind(tg)
        adapter.subscribe(symbols)
        await adapter.connect()
        try:
            for symbol in symbols:  # L2: the whole book; below: the top of book from the first tick
                if adapter.level == "L2":
                    await until(lambda s=symbol: same_book(sink, server, s))
                else:
                    await until(lambda s=symbol: sink.snapshots(s) >= 1)
            yield adapter, sink
        finally:
            await adapter.close()
            tg.cancel_scope.cancel()
    assert sink.errors == [], sink.errors  # a feed sends no order events: the runtime would report one


def delta(symbol: str, *changes: tuple[Side, Decimal, Decimal]) -> BookUpdate:
    return BookUpdate("PSX", symbol, WallClock().now_ns(), 0, changes)
