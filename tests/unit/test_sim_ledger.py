"""The simulated venue's ledger batches rows that move no money (adapters/sim/ledger.py): a crash
between such a row and its flush never loses a fill, never lets an order the engine was told is
gone work on, and never hands out a venue order id twice. A "crash" here is a venue dropped
without ``stop()`` and a new one opened on the same file: the waiting rows die with the first."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

from support.paper import START, VenueListener, instruments

from adapters.sim.ledger import FLUSH_AGE_NS
from adapters.sim.market import MarketOptions
from adapters.sim.venue import SimVenue
from engine.clock import SimClock
from engine.model import OrderStatus, Phase, SessionState, Side

D = Decimal


Broker = VenueListener  # order entry only: our reports, fills and the tape


def open_venue(path: Path, clock: SimClock) -> tuple[SimVenue, Broker]:
    broker = Broker()
    venue = SimVenue("PSX", instruments(["MEBL"]), clock, market=MarketOptions(enabled=False), listeners=(broker,))
    venue.set_state_path(path)
    venue.start()
    venue.on_session(SessionState(phase=Phase.OPEN))
    return venue, broker


def settle_for(clock: SimClock, ns: int) -> None:
    """Run the venue's timers for ``ns`` of its clock."""
    until = clock.now_ns() + ns
    while clock.advance(until):
        pass


def settle(clock: SimClock) -> None:
    settle_for(clock, 1_000_000)


def rows_on_disk(path: Path) -> dict[str, tuple[str, str]]:
    with sqlite3.connect(path) as db:
        return {r[0]: (r[1], r[2]) for r in db.execute("SELECT client_id, status, venue_order_id FROM orders")}


def test_an_acknowledgement_waits_for_the_flush_and_a_clean_stop_writes_it(tmp_path):
    path = tmp_path / "venue.sqlite"
    clock = SimClock(START)
    venue, broker = open_venue(path, clock)
    venue.place("s1", "MEBL", Side.BUY, D(10), D("187.00"))
    settle(clock)
    assert broker.updates[-1].status is OrderStatus.NEW
    assert "s1" not in rows_on_disk(path)  # no transaction of its own on the event path
    venue.stop()
    assert rows_on_disk(path)["s1"][0] == "new"
    again, _ = open_venue(path, clock)  # a clean restart keeps the order working
    assert [o.client_id for o in again.open_orders()] == ["s1"]
    again.stop()


def test_a_waiting_row_goes_to_disk_once_the_venues_clock_moved_past_the_flush_age(tmp_path):
    path = tmp_path / "venue.sqlite"
    clock = SimClock(START)
    venue, _ = open_venue(path, clock)
    venue.place("s1", "MEBL", Side.BUY, D(10), D("187.00"))
    settle(clock)
    clock.set_time(clock.now_ns() + FLUSH_AGE_NS)
    venue.place("s2", "MEBL", Side.BUY, D(10), D("186.00"))
    settle(clock)
    assert set(rows_on_disk(path)) == {"s1"}  # s1's batch was due; s2 began the next one
    settle_for(clock, FLUSH_AGE_NS)
    assert set(rows_on_disk(path)) == {"s1", "s2"}
    venue.stop()


def test_a_lone_waiting_row_reaches_disk_within_the_flush_age_with_nothing_after_it(tmp_path):
    """The age is a bound, not a hint: an order acknowledged and then left alone is on disk once
    the venue's clock passed FLUSH_AGE_NS, so a later crash does not make its venue cancel it."""
    path = tmp_path / "venue.sqlite"
    clock = SimClock(START)
    venue, _ = open_venue(path, clock)
    venue.place("s1", "MEBL", Side.BUY, D(10), D("187.00"))
    settle(clock)
    assert "s1" not in rows_on_disk(path)
    settle_for(clock, FLUSH_AGE_NS)
    assert rows_on_disk(path)["s1"][0] == "new"
    del venue  # crash: nothing was waiting, so the restarted venue keeps the order working
    again, _ = open_venue(path, clock)
    assert [o.client_id for o in again.open_orders()] == ["s1"]
    again.stop()


def test_a_crash_before_the_flush_never_hands_out_a_venue_order_id_twice(tmp_path):
    path = tmp_path / "venue.sqlite"
    clock = SimClock(START)
    venue, broker = open_venue(path, clock)
    venue.place("s1", "MEBL", Side.BUY, D(10), D("187.00"))
    settle(clock)
    told = broker.updates[-1].venue_order_id
    assert told and "s1" not in rows_on_disk(path)
    del venue  # crash: s1's row was waiting
    restarted, again = open_venue(path, clock)
    restarted.place("s2", "MEBL", Side.BUY, D(10), D("186.00"))
    settle(clock)
    assert again.updates[-1].status is OrderStatus.NEW
    assert again.updates[-1].venue_order_id != told
    assert restarted.order("s1") is None  # lost with its row: never filled, never reused
    restarted.stop()


def test_a_crash_after_a_fill_keeps_the_fill_and_its_order(tmp_path):
    path = tmp_path / "venue.sqlite"
    clock = SimClock(START)
    venue, broker = open_venue(path, clock)
    venue.place("s1", "MEBL", Side.BUY, D(10), D("187.00"))
    settle(clock)
    venue.amend("s1", D("187.10"), None)
    settle(clock)
    venue.submit_for("street", "x1", "MEBL", Side.SELL, D(4), D("187.10"))
    assert [f.qty for f in broker.fills] == [D(4)]
    del venue  # crash right after the fill reached the listener
    restarted, _ = open_venue(path, clock)
    assert [(f.client_id, f.qty, f.price) for f in restarted.fills()] == [("s1", D(4), D("187.10"))]
    working = restarted.order("s1")
    assert working is not None and working.status is OrderStatus.PARTIALLY_FILLED and working.cum_qty == D(4)
    assert working.price == D("187.10")  # the replace went to disk with the fill
    restarted.stop()


def test_a_crash_that_lost_a_cancel_cancels_the_order_instead_of_working_it_again(tmp_path):
    path = tmp_path / "venue.sqlite"
    clock = SimClock(START)
    venue, broker = open_venue(path, clock)
    venue.place("s1", "MEBL", Side.BUY, D(10), D("187.00"))
    venue.place("s2", "MEBL", Side.BUY, D(10), D("187.00"))
    settle(clock)
    venue.submit_for("street", "x1", "MEBL", Side.SELL, D(10), D("187.00"))
    assert rows_on_disk(path)["s2"][0] == "new"  # written with s1's fill
    venue.cancel("s2")
    settle(clock)
    assert broker.updates[-1].status is OrderStatus.CANCELLED  # the engine was told; the row waits
    del venue  # crash: the cancelled row is lost
    restarted, _ = open_venue(path, clock)
    assert restarted.open_orders() == []  # s2 must not work (and fill) again
    assert restarted.order("s2").status is OrderStatus.CANCELLED  # type: ignore[union-attr]
    assert rows_on_disk(path)["s2"][0] == "cancelled"
    restarted.stop()
    again, _ = open_venue(path, clock)  # the marker is cleared: nothing more is cancelled
    assert again.order("s1").status is OrderStatus.FILLED  # type: ignore[union-attr]
    again.stop()
