"""PSX Live Feed: ``LiveFeedAdapter`` (market data only) against ``adapters/psx_feed/sandbox.py``'s
``FeedServer`` on 127.0.0.1, port 0, at L2 (depth). The harness feeds the server's book itself (the
server takes ``on_book`` like a sink), so every change is one the test chose."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar

import anyio
from anyio.abc import TaskGroup

from adapters.psx_feed.adapter import LiveFeedAdapter, LiveFeedOptions
from adapters.psx_feed.sandbox import FeedExtensions, FeedServer
from conformance.harness import EVERYDAY, LITERAL, MarketDataHarness, extensions_for
from engine.clock import WallClock
from engine.model import BookUpdate, Instrument, Phase, SessionState, Side

D = Decimal
TOKEN_ENV = "PSX_FEED_CONFORMANCE_TOKEN"
TOKEN = "feed-conformance-token-c4a19e77"
INSTRUMENTS = [Instrument("MEBL", "PSX", previous_close=D("187.50")),
               Instrument("OGDC", "PSX", previous_close=D("109.30"))]


class PsxFeedHarness(MarketDataHarness):
    name = "psx_feed"
    symbol = "MEBL"
    #: the sandbox modes this harness runs (issue 20): every extension on, or document 002 alone
    modes = (EVERYDAY, LITERAL)
    #: conformance tests whose premise document 002 does not give, by test name: skipped in the
    #: literal mode with this reason (tests/protocol/test_psx_feed_adapter.py tests the literal behaviour)
    literal_limits: ClassVar[dict[str, str]] = {
        "test_gap_then_resync": "002 has no sequence numbers (PSX-1): a lost message cannot be noticed; every "
        "literal book message is the whole book, so the next one heals the book without a new snapshot",
    }

    def __init__(self, tmp_path: Any, mode: str = EVERYDAY) -> None:
        super().__init__(tmp_path, mode)
        self.clock = WallClock()
        self.server = FeedServer(INSTRUMENTS, self.clock, (TOKEN,), extensions=extensions_for(FeedExtensions, mode))
        self._stack = contextlib.AsyncExitStack()
        self._task_group: TaskGroup
        self._adapter: LiveFeedAdapter | None = None
        self._saved_env = os.environ.get(TOKEN_ENV)

    @property
    def secrets(self) -> tuple[str, ...]:
        return (TOKEN,)

    async def __aenter__(self) -> PsxFeedHarness:
        os.environ[TOKEN_ENV] = TOKEN
        now = self.clock.now_ns()
        self.server.on_book(BookUpdate("PSX", "MEBL", now, 1, (
            (Side.BUY, D("187.45"), D(1000)), (Side.BUY, D("187.40"), D(500)),
            (Side.SELL, D("187.55"), D(1500)), (Side.SELL, D("187.60"), D(700))), snapshot=True))
        self.server.on_session(SessionState(Phase.OPEN, True, True, True, "2026-03-02"))
        await self._stack.enter_async_context(self.server)
        self._task_group = await self._stack.enter_async_context(anyio.create_task_group())
        options = LiveFeedOptions(url=self.server.url, access="l2", token_env=TOKEN_ENV, backoff_base_s=D("0.01"),
                                  backoff_max_s=D("0.05"), stale_seconds=D("0.3"))
        adapter = self._adapter = LiveFeedAdapter("PSX", options, INSTRUMENTS, self.clock, self.sink, seed=1)
        self.adapter = adapter
        adapter.bind(self._task_group)
        await adapter.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._adapter is not None:
                await self._adapter.close()
            self._task_group.cancel_scope.cancel()
        finally:
            await self._stack.aclose()
            if self._saved_env is None:
                os.environ.pop(TOKEN_ENV, None)
            else:
                os.environ[TOKEN_ENV] = self._saved_env

    async def until(self, condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        with anyio.fail_after(timeout):
            while not condition():
                await anyio.sleep(0.005)

    def venue_book(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        book = self.server.book(self.symbol)
        return book.bids, book.asks

    def change_book(self, step: int) -> None:
        price = D("187.35") - D("0.05") * step
        self.server.on_book(BookUpdate("PSX", self.symbol, self.clock.now_ns(), 0, ((Side.BUY, price, D(100)),)))

    def lose_next_change(self) -> None:
        self.server.inject("gap")

    def stall(self, seconds: float) -> None:
        self.server.inject("stall", seconds=seconds)
