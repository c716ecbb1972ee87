"""The simulated venue in its own terms (adapters/sim/venue.py): orders placed with plain fields,
reports heard by several listeners, each taking only what it serves, and the faults it plays."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from test_paper_adapter import START, instruments

from adapters.sim.faults import UnsupportedFault, parse_fault_spec
from adapters.sim.market import MarketOptions
from adapters.sim.venue import SimVenue
from engine.clock import SimClock
from engine.model import Fill, OrderStatus, OrderUpdate, Phase, SessionState, Side, Trade

D = Decimal


class Broker:
    """A listener serving order entry only: our reports and the tape."""

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


class Feed:
    """A listener serving market data only: it has no order methods at all."""

    def __init__(self) -> None:
        self.books: list[Any] = []

    def on_book(self, update: Any) -> None:
        self.books.append(update)


def open_venue() -> tuple[SimVenue, SimClock, Feed, Broker]:
    clock = SimClock(START)
    feed, broker = Feed(), Broker()
    venue = SimVenue("PSX", instruments(["MEBL"]), clock, market=MarketOptions(enabled=False),
                     listeners=(feed, broker))
    venue.start()
    venue.subscribe_book(["MEBL"])
    venue.on_session(SessionState(phase=Phase.OPEN))
    return venue, clock, feed, broker


def test_orders_in_venue_terms_reach_every_listener_that_serves_them() -> None:
    venue, clock, feed, broker = open_venue()
    venue.place("s1", "MEBL", Side.SELL, D(10), D("187.50"))
    clock.advance(clock.now_ns() + 1)
    assert [(u.client_id, u.status) for u in broker.updates] == [("s1", OrderStatus.NEW)]
    assert feed.books[0].snapshot and len(feed.books) == 2  # the snapshot, then the resting sell
    assert [(o.client_id, o.qty) for o in venue.open_orders()] == [("s1", D(10))]
    assert venue.order("s1").status is OrderStatus.NEW  # type: ignore[union-attr]
    assert venue.order("never") is None and venue.fills() == []
    venue.cancel("s1")
    clock.advance(clock.now_ns() + 1)
    assert broker.updates[-1].status is OrderStatus.CANCELLED and venue.open_orders() == []
    venue.stop()


def test_the_venue_plays_its_faults_and_refuses_a_wire_fault_by_name() -> None:
    venue, clock, _feed, broker = open_venue()
    venue.inject(parse_fault_spec("reject,count=1,code=9002"))
    venue.place("r1", "MEBL", Side.BUY, D(1), D("187.50"))
    clock.advance(clock.now_ns() + 1)
    assert (broker.updates[-1].status, broker.updates[-1].reject_code) == (OrderStatus.REJECTED, 9002)
    with pytest.raises(UnsupportedFault, match="fault 'badframe' is not supported by venue paper"):
        venue.inject(parse_fault_spec("badframe,frame=deep"))
    venue.stop()


def test_a_daily_fault_needs_a_time_of_day_and_a_known_symbol() -> None:
    clock = SimClock(START)
    with pytest.raises(ValueError, match="time of day"):
        SimVenue("PSX", instruments(["MEBL"]), clock, daily_faults=[parse_fault_spec("drop@30,duration_s=5")])
    with pytest.raises(ValueError, match="no such instrument"):
        SimVenue("PSX", instruments(["MEBL"]), clock,
                 daily_faults=[parse_fault_spec("halt@10:00,duration_s=5,symbol=OGDC")])
