"""Paper: the embedded venue (``adapters/paper``) on a simulated clock, with its seeded synthetic
market; nothing runs on a wire. Its faults come from its options, as in a config: a drop at 10:00
and a reject at 09:30 (Asia/Karachi) on the test's day, reached by running the clock there."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar

import anyio
from support.sinks import RecordingSink

from adapters.paper.adapter import PaperAdapter, PaperOptions
from adapters.paper.faults import DropFault, RejectFault
from adapters.sim.market import MarketOptions
from conformance.harness import HarnessFacts, OrderEntryHarness, RejectCase
from engine.clock import KARACHI, NS_PER_S, SimClock
from engine.model import Instrument, Order, Phase, SessionState, Side

D = Decimal
DAY = dt.date(2026, 3, 2)  # a Monday


def karachi_ns(hour: int, minute: int, second: int = 0) -> int:
    return int(dt.datetime.combine(DAY, dt.time(hour, minute, second), KARACHI).timestamp()) * NS_PER_S


START = karachi_ns(9, 15)
REJECT_AT = karachi_ns(9, 30)
DROP_AT = karachi_ns(10, 0)
STEP_NS = 10_000_000  # the simulated clock moves in 10 ms steps while a test waits


class PaperHarness(OrderEntryHarness):
    name = "paper"
    venue = "PSX"
    symbol = "MEBL"
    lot = D(10)
    tick = D("0.01")
    facts = HarnessFacts(duplicate_reports="an embedded venue calls the sink once per event: there is no message "
                                           "that could arrive twice")
    mode_skips: ClassVar[dict[str, str]] = {
        "literal": "paper: the engine's own embedded venue has no venue document to be literal to"}

    def __init__(self, tmp_path: Any) -> None:
        super().__init__(tmp_path)
        self.clock = SimClock(START)
        self.options = PaperOptions(
            market=MarketOptions(enabled=True),
            faults=(RejectFault(at="09:30", count=1, code=9002), DropFault(at="10:00", duration_s=D(5))),
        )
        self.instruments = [Instrument("MEBL", "PSX", D("0.01"), D(10), D("187.50")),
                            Instrument("OGDC", "PSX", D("0.01"), D(10), D("109.30"))]
        self.state_path = tmp_path / "paper-venue.sqlite"

    @property
    def secrets(self) -> tuple[str, ...]:
        return ()  # an embedded venue takes no credentials

    async def _connect(self, sink: RecordingSink) -> PaperAdapter:
        adapter = PaperAdapter("PSX", self.options, self.instruments, self.clock, sink, seed=7)
        adapter.set_state_path(self.state_path)
        await adapter.connect()
        adapter.on_session(SessionState(Phase.OPEN, True, True, True, DAY.isoformat()))
        return adapter

    async def __aenter__(self) -> PaperHarness:
        self.adapter = await self._connect(self.sink)
        self.adapter.subscribe([self.symbol])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.adapter.close()

    def _run(self, ns: int) -> None:
        end = self.clock.now_ns() + ns
        while self.clock.advance(end):
            pass

    def _run_to(self, when_ns: int) -> None:
        self._run(max(0, when_ns - self.clock.now_ns()))

    async def until(self, condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        """Simulated time: ``timeout`` is in simulated seconds (the market is seeded: same steps,
        same outcome, every run)."""
        deadline = self.clock.now_ns() + int(timeout * NS_PER_S)
        while not condition():
            if self.clock.now_ns() >= deadline:
                raise TimeoutError(f"paper: {what} not reached within {timeout} simulated seconds")
            self._run(STEP_NS)
            await anyio.sleep(0)

    async def settle(self) -> None:
        self._run(NS_PER_S)

    def passive_price(self, side: Side = Side.BUY) -> Decimal:
        return D("176.00") if side is Side.BUY else D("199.00")  # inside the band, far from the mid

    async def marketable(self, side: Side = Side.BUY) -> tuple[Decimal, Decimal]:
        await self.two_sided(self.adapter.matching_engine(self.symbol))
        engine = self.adapter.matching_engine(self.symbol)
        if side is Side.BUY:
            return engine.best_ask + 5 * self.tick, self.lot
        return engine.best_bid - 5 * self.tick, self.lot

    async def partial(self, side: Side = Side.BUY) -> tuple[Decimal, Decimal]:
        await self.two_sided(self.adapter.matching_engine(self.symbol))
        price, qty = self.adapter.matching_engine(self.symbol).depth(side.opposite)[0]
        return price, qty + 100 * self.lot

    async def drop(self) -> None:
        self._run_to(DROP_AT + 1)

    async def duplicate_reports(self) -> None:
        raise NotImplementedError(self.facts.duplicate_reports)

    async def restart(self) -> None:
        await self.adapter.close()
        sink = self.new_sink()
        self.adapter = await self._connect(sink)

    def book_at_venue(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        engine = self.adapter.matching_engine(self.symbol)
        return engine.depth(Side.BUY), engine.depth(Side.SELL)

    def reject_cases(self) -> list[RejectCase]:
        return [
            RejectCase("unknown symbol", lambda: self._send(symbol="NOPE"), "2001"),
            RejectCase("quantity off the 10-share lot", lambda: self._send(qty=D(5)), "2002"),
            RejectCase("price above the +10% circuit", lambda: self._send(price=D("206.26")), "2003"),
            RejectCase("price off the tick grid", lambda: self._send(price=D("180.005")), "2003"),
            RejectCase("injected reject fault (9002)", self._injected, "9002"),
        ]

    async def _send(self, qty: Decimal | None = None, price: Decimal | None = None, symbol: str | None = None) -> Order:
        return self.submit(Side.BUY, qty, price if price is not None else self.passive_price(), symbol=symbol)

    async def _injected(self) -> Order:
        self._run_to(REJECT_AT + 1)
        return self.submit(Side.BUY, None, D("176.00"))
