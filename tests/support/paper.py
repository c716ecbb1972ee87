"""The paper venue through the adapter interface, for the tests that drive it directly: the
adapter on a SimClock with the recording sink standing in for the runtime (:class:`Venue`), the
day's instruments and its clock constants, and the check that no test leaves a sink error
(``no_sink_errors``, autouse where a test module imports it)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from adapters.paper.adapter import PaperAdapter, PaperOptions
from adapters.sim.market import MarketOptions
from adapters.sim.matching import MatchingEngine
from engine.clock import SimClock
from engine.model import (
    Fill,
    Instrument,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Phase,
    SessionState,
    Side,
    TimeInForce,
    Trade,
)
from support.sinks import RecordingSink

D = Decimal
S = OrderStatus

NS = 1_000_000_000
MINUTE = 60 * NS
HOUR = 60 * MINUTE
START = 1_772_424_000 * NS  # 2026-03-02 04:00 UTC = 09:00 in Karachi
LATENCY_NS = 500_000  # the default 0.5 ms
HOLDINGS = {"MEBL": "187.50", "SYS": "432.10", "ENGRO": "321.75", "OGDC": "109.30", "PSO": "75.12", "KEL": "102.50"}


def instruments(symbols: Iterable[str] = HOLDINGS) -> list[Instrument]:
    return [Instrument(s, "PSX", previous_close=D(HOLDINGS[s])) for s in symbols]


VENUES: list[Venue] = []  # the venues the running test made, for ``no_sink_errors``


@pytest.fixture(autouse=True)
def no_sink_errors() -> Iterator[None]:
    """What the runtime would report as an anomaly fails the test that caused it (autouse where a
    test module imports it)."""
    VENUES.clear()
    yield
    errors = [error for venue in VENUES for error in venue.sink.errors]
    VENUES.clear()
    assert errors == [], errors


class Venue:
    """An adapter on a simulated clock, with the few moves a test needs."""

    def __init__(
        self,
        seed: int = 7,
        symbols: Iterable[str] = ("MEBL",),
        market: bool = True,
        market_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.clock = SimClock(START)
        self.sink = RecordingSink()
        VENUES.append(self)
        opts = PaperOptions(market=MarketOptions(enabled=market, **(market_options or {})), **options)
        self.adapter = PaperAdapter("PSX", opts, instruments(symbols), self.clock, self.sink, seed=seed)
        self._ids = 0
        asyncio.run(self.adapter.connect())

    def phase(self, phase: Phase) -> None:
        self.adapter.on_session(SessionState(phase=phase))

    def run(self, ns: int) -> None:
        end = self.clock.now_ns() + ns
        while self.clock.advance(end):
            pass

    def submit(
        self,
        side: Side,
        qty: int | str,
        price: str | Decimal | None,
        symbol: str = "MEBL",
        tif: TimeInForce = TimeInForce.DAY,
        order_type: OrderType = OrderType.LIMIT,
        post_only: bool = False,
    ) -> Order:
        self._ids += 1
        order = Order(
            f"c{self._ids}", "test", "PSX", symbol, side, D(qty), None if price is None else D(price),
            order_type, tif, post_only, self.clock.now_ns(),
        )
        self.sink.orders[order.client_id] = order
        self.adapter.submit(order)
        return order

    def cancel(self, order: Order) -> None:
        order.transition(S.PENDING_CANCEL)
        self.adapter.cancel(order)

    def amend(self, order: Order, price: str | None, qty: int | None) -> None:
        new_price = None if price is None else D(price)
        new_qty = None if qty is None else D(qty)
        order.request_replace(new_price, new_qty)
        self.adapter.amend(order, new_price, new_qty)

    def open_market(self, minutes: int = 5) -> None:
        """Pre-open then continuous trading, with some background book built up."""
        self.phase(Phase.PRE_OPEN)
        self.run(minutes * MINUTE)
        self.phase(Phase.OPEN)
        self.run(MINUTE)

    def engine(self, symbol: str = "MEBL") -> MatchingEngine:
        return self.adapter.matching_engine(symbol)


class VenueListener:
    """A simulated venue's order-entry listener that keeps what it is told: our reports, fills and
    the tape (tests/unit/test_sim_venue.py, test_sim_ledger.py)."""

    def __init__(self) -> None:
        self.updates: list[OrderUpdate] = []
        self.fills: list[Fill] = []
        self.trades: list[Trade] = []

    def on_order_update(self, update: OrderUpdate) -> None:
        self.updates.append(update)

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)

    def on_trade(self, trade: Trade) -> None:
        self.trades.append(trade)
