"""The paper venue's instrument statuses, reconciliation queries and injected faults, through the
adapter interface on a simulated clock (the recording sink and the Venue helper of
test_paper_adapter.py: every update is applied to the Order objects through the model's state
machine, so an illegal sequence fails the test)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from pydantic import ValidationError
from support.paper import HOUR, LATENCY_NS, MINUTE, NS, START, Venue, instruments, no_sink_errors  # noqa: F401 (autouse)
from support.sinks import RecordingSink

from adapters.paper.adapter import CODE_HALTED, PaperAdapter, PaperOptions
from adapters.paper.faults import DropFault, HaltFault
from adapters.sim.matching import CODE_INVALID_PRICE, band_around
from engine.clock import SimClock
from engine.model import (
    Fill,
    InstrumentStatus,
    OrderStatus,
    Phase,
    SessionState,
    Side,
    TimeInForce,
    VenueOrder,
)
from engine.venue import RateLimit

D = Decimal
S = OrderStatus
MS = 1_000_000
DAY = 24 * HOUR
T = TypeVar("T")


def at(hour: int, minute: int, second: int = 0, day: int = 0) -> int:
    """An instant in Karachi on the test's first day (START is 2026-03-02 09:00) or a later one."""
    return START + ((hour - 9) * 3600 + minute * 60 + second) * NS + day * DAY


def run_to(venue: Venue, when: int) -> None:
    venue.run(when - venue.clock.now_ns())


def query(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def statuses(venue: Venue) -> list[tuple[str, str, str]]:
    return venue.sink.of("status")


def calls_between(venue: Venue, first: tuple[str, Any], last: tuple[str, Any]) -> list[tuple[str, Any]]:
    calls = venue.sink.calls
    return calls[calls.index(first) + 1 : calls.index(last)]


DISCONNECTED = ("status", ("PSX", "disconnected", "injected drop for 30 s"))
RECONNECTED = ("status", ("PSX", "connected", "reconnected after an injected drop"))


# ---- declared data -----------------------------------------------------------------------


def test_the_paper_venue_declares_the_brokers_rate_limit_and_cancel_on_disconnect():
    assert PaperAdapter.rate_limits == (
        RateLimit("all", 100, D(1), None, source="broker document 1.9: Trading APIs 100 requests/second/user"),
    )
    assert PaperAdapter.capabilities.cancel_on_disconnect


def test_fault_options_default_to_none_and_cancel_on_disconnect_on():
    options = PaperOptions()
    assert options.faults == () and options.cancel_on_disconnect is True


def test_describe_lists_the_faults_and_cancel_on_disconnect():
    venue = Venue(market=False, cancel_on_disconnect=False, faults=[{"kind": "drop", "at": "9:30", "duration_s": 30}])
    described = venue.adapter.describe()
    assert described["cancel_on_disconnect"] is False
    assert described["faults"] == [{"kind": "drop", "at": "09:30:00", "duration_s": "30"}]


# ---- invalid fault config ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"kind": "explode", "at": "10:00"}, "'explode' found using 'kind' does not match any of the expected tags"),
        ({"at": "10:00", "duration_s": 30}, "Unable to extract tag using discriminator 'kind'"),
        ({"kind": "drop", "at": "25:00", "duration_s": 30}, "expected a time of day 'HH:MM' or 'HH:MM:SS'"),
        ({"kind": "drop", "at": "10.30", "duration_s": 30}, "expected a time of day 'HH:MM' or 'HH:MM:SS'"),
        ({"kind": "drop", "at": 630, "duration_s": 30}, "expected a time of day 'HH:MM' or 'HH:MM:SS'"),
        ({"kind": "drop", "at": "2026-03-02T10:30", "duration_s": 30}, "expected a time of day"),
        ({"kind": "drop", "at": "10:30", "duration_s": -5}, "greater than 0"),
        ({"kind": "delay_acks", "at": "10:30", "duration_s": 5, "delay_ms": 0}, "greater than 0"),
        ({"kind": "reject", "at": "10:30", "count": 0}, "greater than or equal to 1"),
        ({"kind": "halt", "at": "10:30", "duration_s": 5}, "symbol\n  Field required"),
        ({"kind": "reject_cancels", "at": "10:30"}, "duration_s\n  Field required"),
        ({"kind": "reject_cancels", "at": "10:30", "duration_s": 5, "code": 0}, "greater than or equal to 1"),
        ({"kind": "drop", "at": "10:30", "duration_s": 5, "duraton": 1}, "Extra inputs are not permitted"),
    ],
)
def test_an_invalid_fault_is_refused_with_a_clear_message(fault: dict[str, Any], message: str):
    with pytest.raises(ValidationError) as caught:
        PaperOptions.model_validate({"faults": [fault]})
    assert message in str(caught.value)
    assert "faults.0" in str(caught.value)


def test_a_halt_of_a_symbol_the_venue_does_not_list_is_refused():
    options = PaperOptions(faults=[HaltFault(at="10:00", duration_s=D(60), symbol="NOPE")])
    with pytest.raises(ValueError, match=r"'NOPE'.*known: MEBL"):
        PaperAdapter("PSX", options, instruments(["MEBL"]), SimClock(START), RecordingSink())


# ---- reconciliation queries --------------------------------------------------------------


def test_queries_report_live_finished_and_unknown_orders():
    venue = Venue()
    venue.open_market()
    partial = venue.submit(Side.BUY, 100_000, venue.engine().best_ask)  # takes the ask, rests the rest
    venue.run(LATENCY_NS)
    filled = venue.submit(Side.BUY, 1, venue.engine().best_ask)
    passive = venue.submit(Side.BUY, 10, "180.00")
    venue.run(LATENCY_NS)
    assert partial.status is S.PARTIALLY_FILLED and filled.status is S.FILLED and passive.status is S.NEW

    open_orders = query(venue.adapter.query_open_orders())
    assert [o.client_id for o in open_orders] == [partial.client_id, passive.client_id]
    live = open_orders[0]
    assert live == VenueOrder(
        "PSX", partial.client_id, partial.venue_order_id, "MEBL", Side.BUY, S.PARTIALLY_FILLED,
        D(100_000), partial.cum_qty, partial.price,
    )
    assert open_orders[1].status is S.NEW and open_orders[1].cum_qty == 0 and open_orders[1].price == D("180.00")

    done = query(venue.adapter.query_order(filled.client_id))
    assert done is not None and (done.status, done.qty, done.cum_qty) == (S.FILLED, D(1), D(1))

    venue.cancel(partial)
    venue.run(NS)
    cancelled = query(venue.adapter.query_order(partial.client_id))
    assert cancelled is not None and cancelled.status is S.CANCELLED and cancelled.cum_qty == partial.cum_qty > 0
    assert [o.client_id for o in query(venue.adapter.query_open_orders())] == [passive.client_id]
    assert query(venue.adapter.query_order("never-sent")) is None


def test_query_order_reports_rejects_with_their_quantity():
    venue = Venue(market=False)
    order = venue.submit(Side.SELL, 7, "187.00")  # the market is closed: 2006
    venue.run(NS)
    rejected = query(venue.adapter.query_order(order.client_id))
    assert rejected is not None
    assert (rejected.status, rejected.qty, rejected.cum_qty, rejected.side) == (S.REJECTED, D(7), D(0), Side.SELL)


def test_an_amend_shows_in_the_query():
    venue = Venue(market=False)
    venue.phase(Phase.OPEN)
    order = venue.submit(Side.BUY, 10, "187.00")
    venue.run(NS)
    venue.amend(order, "186.00", 25)
    venue.run(NS)
    [live] = query(venue.adapter.query_open_orders())
    assert (live.price, live.qty, live.status) == (D("186.00"), D(25), S.NEW)


def test_query_fills_returns_our_fills_from_a_time_on():
    venue = Venue()
    venue.open_market()
    for _ in range(3):
        venue.submit(Side.BUY, 1, venue.engine().best_ask)
        venue.run(MINUTE)
    delivered: list[Fill] = venue.sink.of("fill")
    assert len(delivered) == 3
    assert query(venue.adapter.query_fills(0)) == delivered
    assert query(venue.adapter.query_fills(delivered[1].ts)) == delivered[1:]
    assert query(venue.adapter.query_fills(delivered[2].ts + 1)) == []


def test_a_new_day_forgets_finished_orders_but_not_live_gtc_ones():
    venue = Venue(market=False)
    venue.phase(Phase.OPEN)
    day = venue.submit(Side.BUY, 10, "180.00")
    gtc = venue.submit(Side.BUY, 10, "179.00", tif=TimeInForce.GTC)
    venue.run(NS)
    venue.phase(Phase.CLOSED)
    assert query(venue.adapter.query_order(day.client_id)).status is S.EXPIRED  # type: ignore[union-attr]
    venue.clock.set_time(at(9, 0, day=1))
    venue.phase(Phase.PRE_OPEN)
    assert query(venue.adapter.query_order(day.client_id)) is None
    assert [o.client_id for o in query(venue.adapter.query_open_orders())] == [gtc.client_id]


# ---- instrument status -------------------------------------------------------------------


def test_a_trading_day_announces_reference_prices_then_closing_prices():
    venue = Venue(symbols=("MEBL", "PSO"))
    venue.phase(Phase.PRE_OPEN)
    opening: list[InstrumentStatus] = venue.sink.of("instrument")
    assert [(s.symbol, s.reference_price, s.closing_price, s.halted) for s in opening] == [
        ("MEBL", D("187.50"), None, None), ("PSO", D("75.12"), None, None)
    ]
    venue.phase(Phase.OPEN)
    venue.run(HOUR)
    assert len(venue.sink.of("instrument")) == 2  # nothing while trading
    venue.phase(Phase.POST_CLOSE)
    closing = venue.sink.of("instrument")[2:]
    assert [(s.symbol, s.closing_price, s.reference_price) for s in closing] == [
        ("MEBL", venue.engine("MEBL").closing_price, None), ("PSO", venue.engine("PSO").closing_price, None)
    ]
    assert all(s.ts == venue.clock.now_ns() for s in closing)
    venue.run(10 * MINUTE)
    venue.phase(Phase.CLOSED)
    assert len(venue.sink.of("instrument")) == 4  # the close is announced once


def test_closing_straight_from_continuous_trading_announces_the_close():
    venue = Venue(market=False)
    venue.phase(Phase.OPEN)
    venue.phase(Phase.CLOSED)
    [_, closing] = venue.sink.of("instrument")
    assert closing.closing_price == D("187.50")  # nothing traded: the reference price


def test_the_band_follows_the_new_reference_price_on_day_two():
    venue = Venue()
    venue.open_market()
    old_low, old_high = venue.engine().price_band  # type: ignore[misc]
    venue.run(2 * HOUR)
    venue.phase(Phase.POST_CLOSE)
    close = venue.engine().closing_price
    assert close is not None and close != D("187.50")
    # just outside yesterday's band on the side the price moved to: inside the new one
    edge = old_high + D("0.01") if close > D("187.50") else old_low - D("0.01")
    refused = venue.submit(Side.BUY, 1, edge)
    venue.run(NS)
    assert refused.reject_code == CODE_INVALID_PRICE
    venue.phase(Phase.CLOSED)

    venue.clock.set_time(at(9, 15, day=1))
    venue.phase(Phase.PRE_OPEN)
    day_two = [s for s in venue.sink.of("instrument") if s.reference_price is not None][-1]
    assert day_two.reference_price == close and venue.engine().reference_price == close
    assert venue.engine().price_band == band_around(close, D("0.01"), D("0.10"))
    accepted = venue.submit(Side.BUY, 1, edge)
    venue.run(LATENCY_NS)
    assert accepted.status is S.NEW


def test_a_sink_without_on_instrument_status_still_works():
    class OldSink(RecordingSink):
        on_instrument_status = None  # type: ignore[assignment]

    clock = SimClock(START)
    sink = OldSink()
    adapter = PaperAdapter("PSX", PaperOptions(), instruments(["MEBL"]), clock, sink)
    asyncio.run(adapter.connect())
    for phase in (Phase.PRE_OPEN, Phase.OPEN, Phase.POST_CLOSE, Phase.CLOSED):
        adapter.on_session(SessionState(phase=phase))
    assert sink.of("status") == [("PSX", "connected", "")]


# ---- drop --------------------------------------------------------------------------------


def test_a_drop_reports_disconnected_cancels_resting_orders_silently_and_reconnects_with_a_snapshot(caplog):
    venue = Venue(market=False, faults=[{"kind": "drop", "at": "09:30", "duration_s": 30}])
    venue.phase(Phase.OPEN)
    venue.adapter.subscribe(["MEBL"])
    resting = venue.submit(Side.BUY, 10, "187.00")
    venue.run(NS)
    assert resting.status is S.NEW
    with caplog.at_level(logging.WARNING, logger="engine.paper"):
        run_to(venue, at(9, 30))
    assert statuses(venue)[-1] == ("PSX", "disconnected", "injected drop for 30 s")
    assert "injected connection drop for 30 s at 09:30:00" in caplog.text

    # cancel-on-disconnect: gone at the venue, not a word to the engine
    assert venue.engine().depth(Side.BUY) == []
    assert resting.status is S.NEW
    assert query(venue.adapter.query_open_orders()) == []
    after_drop = query(venue.adapter.query_order(resting.client_id))
    assert after_drop is not None and after_drop.status is S.CANCELLED and after_drop.qty == D(10)

    # requests sent while disconnected are lost
    lost = venue.submit(Side.BUY, 5, "186.00")
    run_to(venue, at(9, 30, 29))
    assert venue.sink.calls[-1] == DISCONNECTED

    run_to(venue, at(9, 30, 30))
    calls = venue.sink.calls
    (_, snapshot), (_, status) = calls[calls.index(RECONNECTED) + 1 :]
    assert calls[calls.index(DISCONNECTED) + 1] == RECONNECTED
    assert snapshot.snapshot and snapshot.changes == () and snapshot.symbol == "MEBL"
    assert (status.symbol, status.halted, status.reference_price, status.closing_price) == (
        "MEBL", False, D("187.50"), None
    )
    venue.run(MINUTE)
    assert query(venue.adapter.query_order(lost.client_id)) is None
    assert venue.sink.updates_for(lost.client_id) == [] and lost.status is S.PENDING_NEW

    # normal flow resumes
    after = venue.submit(Side.BUY, 5, "186.00")
    venue.run(NS)
    assert after.status is S.NEW
    deltas = [b for b in venue.sink.of("book") if not b.snapshot]
    assert deltas[-1].seq == snapshot.seq + 1


def test_without_cancel_on_disconnect_orders_survive_and_fills_of_the_drop_are_only_queryable():
    venue = Venue(cancel_on_disconnect=False, faults=[{"kind": "drop", "at": "09:30", "duration_s": 3600}])
    venue.adapter.subscribe(["MEBL"])
    venue.open_market()
    run_to(venue, at(9, 29, 59))
    order = venue.submit(Side.BUY, 100, venue.engine().best_bid)
    run_to(venue, at(9, 30))
    assert order.status is S.NEW and venue.sink.calls[-1][0] == "status"
    drop_ns = venue.clock.now_ns()
    traded_before = venue.engine().traded_volume
    calls_before = len(venue.sink.calls)

    run_to(venue, at(10, 30) - 1)
    assert len(venue.sink.calls) == calls_before  # nothing reached the engine for an hour
    assert venue.engine().traded_volume > traded_before  # while the market went on
    fills = query(venue.adapter.query_fills(drop_ns))
    ours = [f for f in fills if f.client_id == order.client_id]
    assert ours and sum(f.qty for f in ours) > 0
    state = query(venue.adapter.query_order(order.client_id))
    assert state is not None and state.cum_qty == sum(f.qty for f in ours)
    assert state.status in (S.PARTIALLY_FILLED, S.FILLED)

    run_to(venue, at(10, 31))
    assert venue.sink.fills_for(order.client_id) == []  # never delivered, even after the reconnect
    assert order.status is S.NEW and order.cum_qty == 0
    assert statuses(venue)[-1] == ("PSX", "connected", "reconnected after an injected drop")
    book = venue.sink.books["MEBL"]
    engine = venue.engine()
    assert (book.bids, book.asks) == (engine.depth(Side.BUY), engine.depth(Side.SELL))


def test_a_cancel_sent_during_a_drop_is_lost_and_the_order_survives():
    venue = Venue(market=False, cancel_on_disconnect=False, faults=[{"kind": "drop", "at": "09:30", "duration_s": 30}])
    venue.phase(Phase.OPEN)
    order = venue.submit(Side.BUY, 10, "187.00")
    run_to(venue, at(9, 30, 1))
    venue.cancel(order)
    run_to(venue, at(9, 31))
    assert venue.sink.updates_for(order.client_id)[-1].status is S.NEW
    assert [o.client_id for o in query(venue.adapter.query_open_orders())] == [order.client_id]


def test_a_subscription_made_during_a_drop_gets_its_snapshot_at_the_reconnect():
    venue = Venue(faults=[{"kind": "drop", "at": "09:30", "duration_s": 30}])
    venue.open_market()
    run_to(venue, at(9, 30, 5))
    venue.adapter.subscribe(["MEBL"])
    assert venue.sink.of("book") == []
    run_to(venue, at(9, 30, 30))
    [snapshot] = venue.sink.of("book")
    assert snapshot.snapshot and snapshot.changes == venue.engine().snapshot()


def test_a_drop_hides_the_halt_it_overlaps_until_the_reconnect_status():
    venue = Venue(
        market=False,
        faults=[
            {"kind": "drop", "at": "09:30", "duration_s": 30},
            {"kind": "halt", "at": "09:30:10", "duration_s": 600, "symbol": "MEBL"},
        ],
    )
    venue.phase(Phase.PRE_OPEN)
    run_to(venue, at(9, 31))
    reconnect = venue.sink.of("instrument")[-1]
    assert (reconnect.symbol, reconnect.halted, reconnect.reference_price) == ("MEBL", True, D("187.50"))
    assert calls_between(venue, DISCONNECTED, RECONNECTED) == []


def test_faults_recur_every_trading_day_and_past_ones_are_skipped():
    venue = Venue(
        market=False,
        faults=[DropFault(at="08:00", duration_s=D(30)), DropFault(at="09:30", duration_s=D(30))],
    )
    run_to(venue, at(12, 0))
    assert [s[1] for s in statuses(venue)] == ["connected", "disconnected", "connected"]  # 08:00 had passed
    venue.clock.set_time(at(7, 0, day=1))
    venue.phase(Phase.PRE_OPEN)  # a new trading day schedules its faults
    run_to(venue, at(12, 0, day=1))
    assert [s[1] for s in statuses(venue)][3:] == ["disconnected", "connected", "disconnected", "connected"]


# ---- reject, delay, halt -----------------------------------------------------------------


def test_cancels_during_a_reject_cancels_fault_are_refused_and_the_order_keeps_working():
    venue = Venue(market=False, faults=[{"kind": "reject_cancels", "at": "09:30", "duration_s": 60}])
    venue.phase(Phase.OPEN)
    order = venue.submit(Side.BUY, 1, "187.00")
    run_to(venue, at(9, 30, 1))
    venue.cancel(order)
    venue.run(NS)
    assert order.status is S.NEW  # refused: back to the live state, still resting at the venue
    refusal = venue.sink.of("update")[-1]
    assert (refusal.status, refusal.reject_code, refusal.reason) == (S.NEW, 3001, "injected: cancel refused (3001)")
    assert [o.client_id for o in query(venue.adapter.query_open_orders())] == [order.client_id]
    run_to(venue, at(9, 31, 1))  # the window is over
    venue.cancel(order)
    venue.run(NS)
    assert order.status is S.CANCELLED
    assert query(venue.adapter.query_open_orders()) == []
    assert venue.sink.errors == []


def test_the_next_n_orders_after_a_reject_fault_are_rejected():
    venue = Venue(market=False, faults=[{"kind": "reject", "at": "09:30", "count": 2}])
    venue.phase(Phase.OPEN)
    before = venue.submit(Side.BUY, 1, "187.00")
    run_to(venue, at(9, 30))
    orders = [venue.submit(Side.BUY, 1, "187.00") for _ in range(3)]
    venue.run(NS)
    assert before.status is S.NEW
    assert [o.status for o in orders] == [S.REJECTED, S.REJECTED, S.NEW]
    assert [o.reject_code for o in orders[:2]] == [9002, 9002]
    assert orders[0].reject_reason == "injected reject: order rejected by exchange"
    assert query(venue.adapter.query_order(orders[0].client_id)).status is S.REJECTED  # type: ignore[union-attr]


def test_a_reject_fault_sends_its_own_code_and_reason():
    venue = Venue(market=False, faults=[{"kind": "reject", "at": "09:30", "code": 9001, "reason": "backend down"}])
    venue.phase(Phase.OPEN)
    run_to(venue, at(9, 30))
    order = venue.submit(Side.BUY, 1, "187.00")
    venue.run(NS)
    assert (order.reject_code, order.reject_reason) == (9001, "backend down")


def test_delay_acks_slows_every_request_in_the_window_and_keeps_them_in_order():
    venue = Venue(market=False, faults=[{"kind": "delay_acks", "at": "09:30", "duration_s": 60, "delay_ms": 250}])
    venue.phase(Phase.OPEN)

    def ack_delay(order_ts: int) -> int:
        [ack] = venue.sink.updates_for(order.client_id)
        return ack.ts - order_ts

    run_to(venue, at(9, 29, 59))
    order = venue.submit(Side.BUY, 1, "187.00")
    venue.run(NS)
    assert ack_delay(at(9, 29, 59)) == LATENCY_NS
    run_to(venue, at(9, 30, 10))
    order = venue.submit(Side.BUY, 1, "187.00")
    venue.run(NS)
    assert ack_delay(at(9, 30, 10)) == LATENCY_NS + 250 * MS

    # sent at the end of the window then cancelled just after it: the cancel waits for the order
    run_to(venue, at(9, 31) - MS)
    order = venue.submit(Side.BUY, 1, "187.00")
    run_to(venue, at(9, 31))
    venue.cancel(order)
    venue.run(NS)
    ack, cancelled = venue.sink.updates_for(order.client_id)
    assert ack.ts == at(9, 31) - MS + LATENCY_NS + 250 * MS
    assert cancelled.status is S.CANCELLED and cancelled.ts == ack.ts
    assert order.status is S.CANCELLED

    run_to(venue, at(9, 32))
    order = venue.submit(Side.BUY, 1, "187.00")
    venue.run(NS)
    assert ack_delay(at(9, 32)) == LATENCY_NS


def test_a_halt_is_announced_refuses_new_orders_with_2010_and_is_lifted():
    halt = {"kind": "halt", "at": "09:30", "duration_s": 600, "symbol": "MEBL"}
    venue = Venue(symbols=("MEBL", "PSO"), faults=[halt])
    venue.open_market()
    resting = venue.submit(Side.BUY, 10, "180.00")
    run_to(venue, at(9, 30))
    halted = venue.sink.of("instrument")[-1]
    assert (halted.symbol, halted.halted, halted.reason, halted.ts) == ("MEBL", True, "injected halt", at(9, 30))

    refused = venue.submit(Side.BUY, 1, "187.00")
    other = venue.submit(Side.BUY, 1, "75.00", symbol="PSO")
    traded = venue.engine().traded_volume
    venue.run(5 * MINUTE)
    assert refused.status is S.REJECTED and refused.reject_code == CODE_HALTED == 2010
    assert other.status is S.NEW and resting.status is S.NEW
    assert venue.engine().traded_volume > traded  # the venue's own market keeps running

    run_to(venue, at(9, 40))
    lifted = venue.sink.of("instrument")[-1]
    assert (lifted.symbol, lifted.halted, lifted.ts) == ("MEBL", False, at(9, 40))
    again = venue.submit(Side.BUY, 1, "180.00")
    venue.run(NS)
    assert again.status is S.NEW


def test_every_kind_of_fault_is_logged_at_warning(caplog):
    venue = Venue(
        market=False,
        faults=[
            {"kind": "reject", "at": "09:30", "count": 3},
            {"kind": "delay_acks", "at": "09:31", "duration_s": 5, "delay_ms": "2.5"},
            {"kind": "halt", "at": "09:32", "duration_s": 5, "symbol": "MEBL"},
        ],
    )
    with caplog.at_level(logging.WARNING, logger="engine.paper"):
        run_to(venue, at(9, 40))
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "engine.paper"]
    assert messages[:3] == [
        "paper venue PSX: injected reject of the next 3 new order(s) with 9002 at 09:30:00",
        "paper venue PSX: injected 2.5 ms extra request delay for 5 s at 09:31:00",
        "paper venue PSX: injected halt of MEBL for 5 s at 09:32:00",
    ]


def test_a_closed_adapter_injects_nothing():
    venue = Venue(market=False, faults=[{"kind": "drop", "at": "09:30", "duration_s": 30}])
    asyncio.run(venue.adapter.close())
    run_to(venue, at(10, 0))
    assert statuses(venue) == [("PSX", "connected", "")]

