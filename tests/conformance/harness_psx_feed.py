"""PSX Live Feed: ``LiveFeedAdapter`` (market data only) against ``adapters/psx_feed/sandbox.py``'s
``FeedServer`` on 127.0.0.1, port 0, at L2 (depth). The harness feeds the server's book itself (the
server takes ``on_book`` like a sink), so every change is one the test chose."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from support.sinks import RecordingSink

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

    env: ClassVar[dict[str, str]] = {TOKEN_ENV: TOKEN}

    def __init__(self, tmp_path: Any, mode: str = EVERYDAY) -> None:
        super().__init__(tmp_path, mode)
        self.clock = WallClock()
        self.server = FeedServer(INSTRUMENTS, self.clock, (TOKEN,), extensions=extensions_for(FeedExtensions, mode))

    @property
    def secrets(self) -> tuple[str, ...]:
        return (TOKEN,)

    async def start_venue(self) -> None:
        now = self.clock.now_ns()
        self.server.on_book(BookUpdate("PSX", "MEBL", now, 1, (
            (Side.BUY, D("187.45"), D(1000)), (Side.BUY, D("187.40"), D(500)),
            (Side.SELL, D("187.55"), D(1500)), (Side.SELL, D("187.60"), D(700))), snapshot=True))
        self.server.on_session(SessionState(Phase.OPEN, True, True, True, "2026-03-02"))
        await self.stack.enter_async_context(self.server)

    async def connect_adapter(self, sink: RecordingSink) -> LiveFeedAdapter:
        options = LiveFeedOptions(url=self.server.url, access="l2", token_env=TOKEN_ENV, backoff_base_s=D("0.01"),
                                  backoff_max_s=D("0.05"), stale_seconds=D("0.3"))
        adapter = LiveFeedAdapter("PSX", options, INSTRUMENTS, self.clock, sink, seed=1)
        adapter.bind(self.task_group)
        await adapter.connect()
        return adapter

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
