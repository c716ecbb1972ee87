"""Algo724 market data: the adapter with ``streams_url`` (the real centrifuge-python client)
against the sandbox's Centrifugo feed (adapters/algo724/centrifugo_feed.py) on 127.0.0.1. The
sandbox has no synthetic market here: its book changes only when the harness places a resting
order, so the venue's book and the engine's can be compared at any moment."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any, ClassVar

from support.sinks import RecordingSink

from adapters.algo724.adapter import Algo724Adapter, Algo724Options
from adapters.algo724.centrifugo_feed import StreamFeed
from adapters.algo724.sandbox import DOC_INSTRUMENTS, AlgoSandbox, SandboxSettings
from conformance.harness import EVERYDAY, LITERAL, MarketDataHarness
from engine.clock import WallClock
from engine.model import Side

D = Decimal
EMAIL = "streams-conformance@example.com"
PASSWORD = "cnf-Strm-9b2e-Lq4w-31zc"
ENV = {"ALGO724_EMAIL": EMAIL, "ALGO724_PASSWORD": PASSWORD}
SYMBOL = "BTC/USDT"


class Algo724StreamsHarness(MarketDataHarness):
    """``market:orderBook:BINANCE:BTC/USDT``: a snapshot in the subscribe reply, then DELTAs
    chained by ``sequence`` (ALG-3)."""

    name = "algo724"
    symbol = SYMBOL
    modes = (EVERYDAY,)
    env: ClassVar[dict[str, str]] = ENV
    mode_skips: ClassVar[dict[str, str]] = {
        LITERAL: "document 003 defines no publication payloads (ALG-3): every stream message is the project's "
                 "decision, so there is no document-literal stream to hold the adapter to",
    }

    def __init__(self, tmp_path: Any, mode: str = EVERYDAY) -> None:
        super().__init__(tmp_path, mode)
        settings = SandboxSettings(users={EMAIL: PASSWORD}, market=False, rate_per_second=100)
        self.sandbox = AlgoSandbox(settings, clock=WallClock())
        self.stream_feed = StreamFeed(self.sandbox)
        self._ids = itertools.count(1)

    @property
    def secrets(self) -> tuple[str, ...]:
        return (PASSWORD,)

    async def start_venue(self) -> None:
        await self.stack.enter_async_context(self.sandbox)
        await self.stream_feed.start()
        self.stack.push_async_callback(self.stream_feed.stop)
        for price, side in ((D("49990.00"), Side.BUY), (D("49980.00"), Side.BUY), (D("50010.00"), Side.SELL)):
            self._rest(side, price)

    async def connect_adapter(self, sink: RecordingSink) -> Algo724Adapter:
        options = Algo724Options(base_url=self.sandbox.base_url, trading_account_id=self.sandbox.trading_account_id,
                                 streams_url=self.stream_feed.url, streams_stale_s=D("0.3"), poll_interval_s=D(60))
        adapter = Algo724Adapter("algo724", options, DOC_INSTRUMENTS, WallClock(), sink)
        adapter.bind(self.task_group)
        await adapter.connect()
        return adapter

    def _rest(self, side: Side, price: Decimal) -> None:
        """A resting order of a background participant: one L2 change of the venue's book."""
        self.sandbox.sim.submit_for("harness", f"h-{next(self._ids)}", SYMBOL, side, D("0.5"), price)

    def venue_book(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        engine = self.sandbox.sim.matching_engine(SYMBOL)
        return engine.depth(Side.BUY), engine.depth(Side.SELL)

    def change_book(self, step: int) -> None:
        self._rest(Side.BUY, D("49900.00") - D(10) * step)

    def lose_next_change(self) -> None:
        self.stream_feed.lose_next_change(SYMBOL)

    def stall(self, seconds: float) -> None:
        self.stream_feed.stall(seconds)
