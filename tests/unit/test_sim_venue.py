"""The simulated venue in its own terms (adapters/sim/venue.py): orders placed with plain fields,
reports heard by several listeners, each taking only what it serves, and the faults it plays."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from support.paper import START, VenueListener, instruments

from adapters.sim.faults import UnsupportedFault, parse_fault_spec
from adapters.sim.market import MarketOptions
from adapters.sim.matching import Accepted, Cancelled, Execution, Rejected, Replaced
from adapters.sim.venue import CODE_HALTED, SimVenue
from engine.clock import NS_PER_S, SimClock
from engine.model import OrderStatus, Phase, SessionState, Side

D = Decimal


Broker = VenueListener  # order entry only: our reports, fills and the tape


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


class Accounts:
    """A venue server keeping accounts of its own: it hears every operation's engine events."""

    def __init__(self) -> None:
        self.operations: list[tuple[str, list[Any], Any, int]] = []

    def on_engine_events(self, symbol: str, events: list[Any], changes: Any, ts: int) -> None:
        self.operations.append((symbol, list(events), changes, ts))

    def executions(self) -> list[Execution]:
        return [e for _symbol, events, _changes, _ts in self.operations for e in events if type(e) is Execution]


def run_until(clock: SimClock, until_ns: int) -> None:
    while clock.advance(until_ns):
        pass


def open_server_venue(**options: Any) -> tuple[SimVenue, SimClock, Feed, Broker, Accounts]:
    """A venue whose orders all belong to a server's accounts (``account=None``), trading 24/7."""
    clock = SimClock(START)
    feed, broker, accounts = Feed(), Broker(), Accounts()
    options.setdefault("market", MarketOptions(enabled=False))
    venue = SimVenue("PULSE", instruments(["MEBL"]), clock, account=None, listeners=(feed, broker, accounts),
                     **options)
    venue.start()
    venue.subscribe_book(["MEBL"])
    venue.always_open()
    return venue, clock, feed, broker, accounts


def test_a_server_trades_for_several_accounts_and_hears_each_operation_once() -> None:
    venue, _clock, feed, broker, accounts = open_server_venue()
    rest = venue.submit_for("alice", "a1", "MEBL", Side.SELL, D(10), D("187.50"))
    assert [type(e) for e in rest] == [Accepted]
    take = venue.submit_for("bob", "b1", "MEBL", Side.BUY, D(4), D("187.50"))
    execution = next(e for e in take if type(e) is Execution)
    assert (execution.maker_owner, execution.taker_owner, execution.qty) == ("alice", "bob", D(4))
    assert [events for _s, events, _c, _t in accounts.operations[-2:]] == [rest, take]  # each heard once, in order
    amended = venue.amend_for("MEBL", rest[0].order_id, None, D(8))
    assert [type(e) for e in amended] == [Replaced]
    cancelled = venue.cancel_for("MEBL", rest[0].order_id, "user_request")
    assert [(type(e), e.reason) for e in cancelled] == [(Cancelled, "user_request")]
    # the public effects reach the feed and the tape as for the venue's own orders; none is "ours"
    assert [t.qty for t in broker.trades] == [D(4)]
    assert len(feed.books) == 5 and feed.books[0].snapshot  # snapshot, rest, take, amend, cancel
    assert broker.updates == [] and broker.fills == [] and venue.open_orders() == []
    venue.stop()


def test_an_account_named_like_the_venues_own_is_not_taken_for_it_without_one() -> None:
    venue, _clock, _feed, broker, _accounts = open_server_venue()
    venue.submit_for("paper", "p1", "MEBL", Side.BUY, D(1), D("187.00"))
    assert broker.updates == [] and venue.open_orders() == []
    venue.stop()


def test_the_synthetic_market_fills_a_servers_account_and_the_server_hears_it() -> None:
    venue, clock, _feed, _broker, accounts = open_server_venue(market=MarketOptions(enabled=True), seed=5)
    run_until(clock, clock.now_ns() + 5 * NS_PER_S)  # the background quotes are up
    engine = venue.matching_engine("MEBL")
    assert engine.best_ask is not None
    venue.submit_for("alice", "a1", "MEBL", Side.SELL, D(1), engine.best_ask - engine.tick_size)  # the best ask
    run_until(clock, clock.now_ns() + 600 * NS_PER_S)
    fills = [e for e in accounts.executions() if e.maker_owner == "alice"]
    assert fills and fills[0].maker_client_id == "a1" and fills[0].taker_owner != "alice"
    venue.stop()


def test_without_circuit_bands_a_far_price_rests_and_a_halt_refuses_every_account() -> None:
    venue, _clock, _feed, _broker, accounts = open_server_venue(circuit_bands=False)
    assert venue.matching_engine("MEBL").price_band is None
    assert [type(e) for e in venue.submit_for("alice", "a1", "MEBL", Side.BUY, D(1), D("1.00"))] == [Accepted]
    venue.inject(parse_fault_spec("halt,symbol=MEBL,duration_s=60"))
    refused = venue.submit_for("bob", "b1", "MEBL", Side.BUY, D(1), D("187.00"))
    assert [(type(e), e.code) for e in refused] == [(Rejected, CODE_HALTED)]
    assert accounts.operations[-1][1] == refused  # the server hears the refusal as any other operation
    venue.stop()


def test_with_circuit_bands_by_default_the_band_stands() -> None:
    venue, _clock, _feed, _broker, _accounts = open_server_venue()
    assert venue.matching_engine("MEBL").price_band is not None
    refused = venue.submit_for("alice", "a1", "MEBL", Side.BUY, D(1), D("1.00"))
    assert [type(e) for e in refused] == [Rejected]
    venue.stop()
