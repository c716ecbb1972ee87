"""The gate and the protections around it as flows over time, on a REAL engine (real config and
strategy loaders, the real paper venue on the simulated clock; one test drives the installed
``engine`` script in a subprocess):
market-maker protection, cancel-on-disconnect through an injected drop, the kill switch (loss,
reducing, SIGUSR1 and ``engine halt``), containment of raising and slow strategies, a strategy's
own loss limit, request-rate limits over sliding windows, and T+2 / T+1 settlement over three
simulated days.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from support import ENGINE, connect, enter, open_session, settle, write_engine_config
from support.gate import LOGGER, VenueSpy, build, counterparty, ctx_of, module_of, run_to

from engine.model import OrderStatus, Phase, Side, VenueOrder
from engine.risk.killswitch import TradingState
from engine.runtime.recovery import VenueAnswer, ask_venue, reconcile_venue

D = Decimal
NS = 1_000_000_000
MS = 1_000_000

def events_of(engine, name="s"):
    return module_of(engine, name).events


def resting_ids(engine, symbol="MEBL"):
    return [r.client_id for r in engine.adapters["paper"].matching_engine(symbol).resting_orders()]


# ---- market-maker protection ----------------------------------------------------------------------


def mmp_engine(tmp_path, frozen_time: str):
    engine = build(tmp_path, {"s": LOGGER}, per_strategy={"s": {"mmp": {
        "interval": "1", "frozen_time": frozen_time, "quantity_limit": "10"}}})
    open_session(engine)
    return engine


def take(engine, qty: int, price: str = "187.40", mmp: bool = True):
    """An MMP order of ours that trades at once against another participant's resting sell."""
    counterparty(engine, "MEBL", "sell", qty, price)
    order = ctx_of(engine).submit("MEBL", "buy", qty, price, mmp=mmp)
    settle(engine, 0.001)
    assert order.status == "filled"
    return order


def test_mmp_triggers_on_quantity_within_the_interval_cancels_mmp_quotes_and_freezes(tmp_path):
    engine = mmp_engine(tmp_path, frozen_time="2")
    ctx = ctx_of(engine)
    quotes = [ctx.submit("MEBL", "buy", 5, price, mmp=True) for price in ("187.00", "186.90", "186.80")]
    plain = ctx.submit("MEBL", "buy", 5, "186.50")  # not under MMP
    settle(engine, 0.01)
    assert all(o.status == "new" for o in [*quotes, plain])

    take(engine, 6)
    settle(engine, 1.5)
    take(engine, 6)  # 12 filled in total, but never 10 within one second
    assert not ctx.mmp_frozen and module_of(engine).mmp_infos == []
    assert engine.runtime.mmp_triggers == 0

    settle(engine, 0.1)
    take(engine, 4)  # 6 + 4 = 10 within the last second: trips
    runner = engine.runtime.runners["s"]
    assert ctx.mmp_frozen and runner.mmp_triggers == 1
    infos = module_of(engine).mmp_infos
    assert len(infos) == 1
    info, frozen_in_hook, open_in_hook = infos[0]
    assert frozen_in_hook is True
    assert (info.filled_qty, info.fill_count) == (D(10), 2)
    assert info.frozen_until_ns == info.ts + 2 * NS
    assert "MMP triggered: filled 10 (limit 10) within 1s" in info.reason
    # when the hook ran, every MMP quote was already being cancelled; the plain order was untouched
    assert dict(open_in_hook) == {**{q.client_id: "pending_cancel" for q in quotes}, plain.client_id: "new"}
    settle(engine, 0.01)
    assert [q.status for q in quotes] == ["cancelled"] * 3
    assert plain.status == "new" and resting_ids(engine) == [plain.client_id]

    refused = ctx.submit("MEBL", "buy", 5, "187.00", mmp=True)
    assert (refused.status, refused.reject_code) == ("rejected", 7009)
    passed = ctx.submit("MEBL", "buy", 5, "186.00")  # not an MMP order: passes
    assert passed.status == "pending_new"
    # a fill of a non-MMP order while frozen does not call the hook again
    take(engine, 20, mmp=False)
    assert len(module_of(engine).mmp_infos) == 1

    settle(engine, (info.frozen_until_ns - engine.clock.now_ns() - 1) / NS)
    assert engine.clock.now_ns() < info.frozen_until_ns and ctx.mmp_frozen
    settle(engine, 0.001)
    assert engine.clock.now_ns() >= info.frozen_until_ns and not ctx.mmp_frozen
    again = ctx.submit("MEBL", "buy", 5, "187.00", mmp=True)
    assert again.status == "pending_new"
    report = engine.report()
    assert report["mmp_triggers"] == 1 and report["strategies"]["s"]["mmp_triggers"] == 1
    assert report["rejects_by_code"] == {"7009": 1}


def test_mmp_with_frozen_time_zero_holds_until_reset_mmp(tmp_path):
    engine = mmp_engine(tmp_path, frozen_time="0")
    ctx = ctx_of(engine)
    take(engine, 10)
    assert ctx.mmp_frozen
    info = module_of(engine).mmp_infos[0][0]
    assert info.frozen_until_ns is None
    settle(engine, 3600)
    assert ctx.mmp_frozen
    refused = ctx.submit("MEBL", "buy", 5, "187.00", mmp=True)
    assert refused.reject_code == 7009 and "until ctx.reset_mmp()" in refused.reject_reason
    asked: list[str] = []  # the venue's own freeze is lifted too (Pulse: private/set_mmp_config)
    engine.runtime.venues["paper"].adapter.reset_mmp = asked.append  # type: ignore[method-assign]
    ctx.reset_mmp()
    assert asked == ["s"]
    assert not ctx.mmp_frozen
    assert ctx.submit("MEBL", "buy", 5, "187.00", mmp=True).status == "pending_new"
    assert engine.report()["mmp_triggers"] == 1


# ---- cancel-on-disconnect through the paper venue's injected drop ------------------------------


def drop_engine(tmp_path, *, venue=None, options=None, at="10:00", duration_s=30, sessions=None, journal=None):
    faults = [{"kind": "drop", "at": at, "duration_s": duration_s}]
    return build(tmp_path, {"s": LOGGER}, venue=venue, options={"faults": faults, **(options or {})},
                 sessions=sessions, journal=journal)


def disconnect_and_reconnect(tmp_path, venue_cancels: bool):
    """Two resting orders, a 30 s drop at 10:00, the reconnect and its reconciliation."""
    engine = drop_engine(tmp_path, options={"cancel_on_disconnect": venue_cancels})
    open_session(engine)
    ctx = ctx_of(engine)
    a = ctx.submit("MEBL", "buy", 10, "187.00")
    b = ctx.submit("OGDC", "buy", 10, "109.00")
    settle(engine)
    assert (a.status, b.status) == ("new", "new")
    events_of(engine).clear()
    return engine, ctx, a, b


VENUE_CANCELS = pytest.mark.parametrize(
    "venue_cancels", [True, False], ids=["venue-cancels-at-drop", "engine-cancels-at-reconnect"]
)


@VENUE_CANCELS
def test_disconnect_marks_orders_unknown_refuses_and_cancels_on_reconnect(tmp_path, venue_cancels):
    engine, ctx, a, b = disconnect_and_reconnect(tmp_path, venue_cancels)
    events = events_of(engine)
    run_to(engine, 10, 0, 1)
    assert (a.status, b.status) == ("unknown", "unknown")
    assert ctx.venue_status == "disconnected"
    assert events[0] == ("venue", "paper", "disconnected")
    assert sorted(events[1:]) == sorted([("order", a.client_id, "unknown", None),
                                         ("order", b.client_id, "unknown", None)])
    refused = ctx.submit("MEBL", "buy", 10, "186.00")
    assert (refused.status, refused.reject_code) == ("rejected", 9001)
    assert ctx.cancel(a) is False and a.status == "unknown"  # no cancel can go out either
    assert engine.runtime.rejects_by_code[9001] == 2

    run_to(engine, 10, 0, 31)  # the link is back
    assert ctx.venue_status == "reconciling"
    assert ("venue", "paper", "reconciling") in events and ("venue", "paper", "connected") not in events
    during = ctx.submit("MEBL", "buy", 10, "186.00")
    assert during.reject_code == 9001 and "reconciling" in during.reject_reason
    anyio.run(engine.runtime.run_pending)
    settle(engine)
    assert (a.status, b.status) == ("cancelled", "cancelled")
    assert ctx.venue_status == "connected"
    assert events.count(("venue", "paper", "connected")) == 1
    assert ("order", a.client_id, "cancelled", None) in events and ("order", b.client_id, "cancelled", None) in events
    assert resting_ids(engine, "MEBL") == [] and resting_ids(engine, "OGDC") == []
    assert ctx.submit("MEBL", "buy", 10, "186.00").status == "pending_new"
    assert engine.report()["venues"]["paper"]["disconnects"] == 1


@VENUE_CANCELS
def test_every_final_state_is_told_before_connected(tmp_path, venue_cancels):
    engine, _, a, b = disconnect_and_reconnect(tmp_path, venue_cancels)
    run_to(engine, 10, 0, 31)
    anyio.run(engine.runtime.run_pending)
    settle(engine)
    events = events_of(engine)
    reconnected = events.index(("venue", "paper", "connected"))
    finals = {e[1]: i for i, e in enumerate(events) if e[0] == "order" and e[2] == "cancelled"}
    assert set(finals) == {a.client_id, b.client_id}
    assert all(i < reconnected for i in finals.values()), events


def test_more_orders_open_at_the_drop_than_one_second_of_cancel_budget(tmp_path):
    engine = drop_engine(tmp_path, options={"cancel_on_disconnect": False})
    open_session(engine)
    ctx = ctx_of(engine)
    orders = []
    for i in range(150):  # paced under the venue's 80 new orders/s (100/s, 20 held for cancels)
        orders.append(ctx.submit("MEBL", "buy", 1, f"{180 + (i % 50) / 10:.2f}"))
        settle(engine, 0.02)
    settle(engine)
    assert all(o.status == "new" for o in orders)
    events = events_of(engine)
    events.clear()
    run_to(engine, 10, 0, 31)
    anyio.run(engine.runtime.run_pending)
    settle(engine, 5)
    assert all(o.status == "cancelled" for o in orders)
    connected = events.index(("venue", "paper", "connected"))
    late = [e[1] for e in events[connected:] if e[0] == "order" and e[2] == "cancelled"]
    assert late == [], f"{len(late)} orders were still working when 'connected' was told"


def test_with_on_reconnect_keep_and_no_venue_cancel_the_orders_stay_open(tmp_path):
    engine = drop_engine(tmp_path, venue={"on_reconnect": "keep"}, options={"cancel_on_disconnect": False})
    open_session(engine)
    ctx = ctx_of(engine)
    a = ctx.submit("MEBL", "buy", 10, "187.00")
    settle(engine)
    run_to(engine, 10, 0, 31)
    assert a.status == "unknown"
    anyio.run(engine.runtime.run_pending)
    settle(engine)
    assert ctx.venue_status == "connected"
    assert a.status == "new" and ctx.open_orders() == [a]
    assert resting_ids(engine) == [a.client_id]
    assert ("order", a.client_id, "new", None) in events_of(engine)
    assert engine.report()["venues"]["paper"]["disconnects"] == 1


def test_a_fill_during_the_drop_is_applied_exactly_once(tmp_path):
    """Our pre-open bid meets another participant's offer in the 09:30 opening auction while the
    link is down (the venue keeps our orders): the fill is withheld, then found by reconciliation."""
    engine = drop_engine(tmp_path, venue={"on_reconnect": "keep"}, options={"cancel_on_disconnect": False},
                         at="09:29:50")
    connect(engine)
    engine.driver.start()
    run_to(engine, 9, 20)
    ctx = ctx_of(engine)
    assert ctx.session == "pre_open"
    bid = ctx.submit("MEBL", "buy", 10, "187.50")
    other = ctx.submit("OGDC", "buy", 10, "109.00")
    settle(engine)
    counterparty(engine, "MEBL", "sell", 10, "187.50")
    run_to(engine, 9, 30, 5)  # dropped at 09:29:50; the auction ran at 09:30
    assert ctx.session == "open" and ctx.venue_status == "disconnected"
    assert bid.status == "unknown" and ctx.position("MEBL") == 0 and module_of(engine).fills == []
    run_to(engine, 9, 30, 21)
    anyio.run(engine.runtime.run_pending)
    settle(engine)
    assert ctx.venue_status == "connected"
    assert bid.status == "filled" and bid.cum_qty == 10
    assert ctx.position("MEBL") == 10
    assert len(module_of(engine).fills) == 1
    runner = engine.runtime.runners["s"]
    assert runner.fills == 1 and engine.runtime.n_fill == 1
    account = engine.runtime.venues["paper"].account
    assert account.holdings("MEBL") == 10
    assert other.status == "new" and ctx.open_orders() == [other]  # kept
    # the venue repeating the same execution (same exec id) changes nothing
    fills = anyio.run(engine.adapters["paper"].query_fills, 0)
    assert len(fills) == 1
    engine.runtime.on_fill(fills[0])
    assert ctx.position("MEBL") == 10 and account.holdings("MEBL") == 10 and runner.fills == 1
    assert engine.runtime.n_duplicate_fills == 1
    report = engine.report()
    assert report["fills"] == 1 and report["venues"]["paper"]["disconnects"] == 1
    engine.driver.stop()


def test_with_no_cancel_on_disconnect_on_the_venue_the_paper_venue_keeps_the_orders(tmp_path):
    """README: "cancel_on_disconnect: true (default) also asks a venue that supports it natively to
    cancel at the drop" - so false (with on_reconnect: keep) must leave the orders working."""
    engine = drop_engine(tmp_path, venue={"cancel_on_disconnect": False, "on_reconnect": "keep"})
    open_session(engine)
    ctx = ctx_of(engine)
    a = ctx.submit("MEBL", "buy", 10, "187.00")
    settle(engine)
    run_to(engine, 10, 0, 31)
    anyio.run(engine.runtime.run_pending)
    settle(engine)
    assert ctx.venue_status == "connected"
    assert a.status == "new" and resting_ids(engine) == [a.client_id], a.status


def test_an_order_in_flight_at_the_drop_is_lost_and_comes_back_rejected_9001(tmp_path):
    engine = drop_engine(tmp_path)
    open_session(engine)
    ctx = ctx_of(engine)
    run_to(engine, 9, 59, 59)
    settle(engine, 0.9998)  # 0.2 ms before the drop; the venue would take it 0.5 ms after sending
    lost = ctx.submit("MEBL", "buy", 10, "187.00")
    run_to(engine, 10, 0, 31)
    assert lost.status == "unknown" and ctx.buying_power < D(10_000_000)  # still reserving: it might exist
    anyio.run(engine.runtime.run_pending)
    settle(engine)
    assert (lost.status, lost.reject_code) == ("rejected", 9001)
    assert "the venue never received this order" in lost.reject_reason
    assert ctx.buying_power == D(10_000_000) and ctx.open_orders() == []
    events = events_of(engine)
    assert events.index(("order", lost.client_id, "rejected", 9001)) < events.index(("venue", "paper", "connected"))
    assert engine.report()["rejects_by_code"] == {"9001": 1}


def test_an_order_the_venue_answers_unknown_stays_working_unknown_not_9001(tmp_path, monkeypatch):
    """Issue 23 finding 3: a venue that cannot say whether it has an order (a D sent, its answer
    lost: MidChains FIX has no status query) answers UNKNOWN, not None. The engine must not settle it
    "never received" (9001, free to be placed again) but keep it unknown, reserving, until the venue
    reports on it (``on_reconnect: keep``: with ``cancel`` the engine cancels it, which is right too)."""
    engine = drop_engine(tmp_path, venue={"on_reconnect": "keep"})
    open_session(engine)
    ctx = ctx_of(engine)
    run_to(engine, 9, 59, 59)
    settle(engine, 0.9998)
    lost = ctx.submit("MEBL", "buy", 10, "187.00")
    run_to(engine, 10, 0, 31)
    adapter = engine.runtime.venues["paper"].adapter
    answered = adapter.query_order

    async def query_order(client_id):
        if client_id == lost.client_id:
            return VenueOrder("paper", client_id, "", "MEBL", Side.BUY, OrderStatus.UNKNOWN, D(10), D(0), D("187.00"))
        return await answered(client_id)

    monkeypatch.setattr(adapter, "query_order", query_order)
    anyio.run(engine.runtime.run_pending)
    settle(engine)
    assert lost.status == "unknown" and ctx.buying_power < D(10_000_000)
    assert "9001" not in engine.report()["rejects_by_code"]


def _stray_at_the_venue(engine, n: int, price: str = "186.00") -> str:
    """An order under the strategy's client ids that this engine never sent (a crash's last flush
    window): it reaches the venue straight, not through the runtime, so the engine's only way to
    learn of it is reconciliation. Returns its client id (``n`` in this journal's shape)."""
    from engine.clientids import format_client_id
    from engine.model import Order, Side

    client_id = format_client_id("s", engine.runtime.client_epoch, n)

    stray = Order(client_id, "s", "paper", "MEBL", Side.BUY, D(10), D(price))
    engine.adapters["paper"].submit(stray)
    settle(engine)
    assert client_id in resting_ids(engine)
    assert engine.runtime.anomalies["update_unknown_order"] == 1  # its ack: an order the engine does not know
    return client_id


@pytest.mark.parametrize("policy", ["cancel", "adopt"])
def test_reconnect_reconciliation_cancels_or_adopts_an_order_under_our_client_ids(tmp_path, policy):
    """The reconciliation after a reconnect is the restart's: journal.on_restart.unknown_orders."""
    engine = drop_engine(tmp_path, venue={"on_reconnect": "keep"}, options={"cancel_on_disconnect": False},
                         journal={"on_restart": {"unknown_orders": policy}})
    open_session(engine)
    ctx = ctx_of(engine)
    stray = _stray_at_the_venue(engine, 9001)
    events = events_of(engine)
    events.clear()
    run_to(engine, 10, 0, 31)
    anyio.run(engine.runtime.run_pending)
    settle(engine, 2)
    assert ctx.venue_status == "connected"
    seen_by_strategy = [e for e in events if e[0] == "order" and e[1] == stray]
    if policy == "cancel":
        assert resting_ids(engine) == [] and ctx.open_orders() == []
        assert seen_by_strategy == []  # the engine's to cancel: the strategy never hears of it
        assert engine.runtime.venues["paper"].orders[stray].status.value == "cancelled"
    else:
        assert resting_ids(engine) == [stray]
        assert [o.client_id for o in ctx.open_orders()] == [stray]
        assert seen_by_strategy == [("order", stray, "new", None)]
        assert ctx.cancel(ctx.open_orders()[0]) is True  # the strategy's now, like any other
        settle(engine)
        assert resting_ids(engine) == []
    assert engine.runtime.anomalies["venue_order_unknown"] == 0  # ours by its id: not reported as foreign


def test_a_fill_during_a_drop_on_an_order_the_engine_never_sent_moves_the_position_once(tmp_path):
    """The stray bid meets another participant's offer in the 09:30 opening auction while the link
    is down: reconciliation finds the fill, the position and the account follow the venue, and the
    rest of the order is the engine's to cancel."""
    engine = drop_engine(tmp_path, options={"cancel_on_disconnect": False}, at="09:29:50")
    connect(engine)
    engine.driver.start()
    run_to(engine, 9, 20)
    ctx = ctx_of(engine)
    stray = _stray_at_the_venue(engine, 9002, price="187.50")
    counterparty(engine, "MEBL", "sell", 4, "187.50")
    run_to(engine, 9, 30, 21)
    anyio.run(engine.runtime.run_pending)
    settle(engine, 2)
    engine.driver.stop()
    assert ctx.venue_status == "connected"
    assert ctx.position("MEBL") == 4 and engine.runtime.venues["paper"].account.holdings("MEBL") == 4
    fills = module_of(engine).fills
    assert [f[0] for f in fills] == [stray] and fills[0][2:] == ("buy", D(4), D("187.50"))
    assert resting_ids(engine) == [] and ctx.open_orders() == []  # the other 6 cancelled by the engine
    assert engine.runtime.venues["paper"].orders[stray].status.value == "cancelled"
    assert engine.runtime.anomalies["fill_unknown_order"] == 0
    # reconciled again, the venue repeats the fill: nothing moves twice
    runtime, venue = engine.runtime, engine.runtime.venues["paper"]
    answer = anyio.run(ask_venue, runtime, venue, 0)
    assert answer.fills == [] and [f.client_id for f in answer.known] == [stray]  # asked again: not news
    repeated = anyio.run(engine.adapters["paper"].query_fills, 0)
    assert [f.client_id for f in repeated] == [stray]
    reconcile_venue(runtime, venue, VenueAnswer({}, repeated, {}), "cancel")  # even applied again
    assert ctx.position("MEBL") == 4 and len(module_of(engine).fills) == 1 and venue.account.holdings("MEBL") == 4


def test_a_venue_that_cannot_answer_after_a_reconnect_is_asked_again_and_orders_wait(tmp_path):
    engine = drop_engine(tmp_path, options={"cancel_on_disconnect": False})
    open_session(engine)
    ctx = ctx_of(engine)
    a = ctx.submit("MEBL", "buy", 10, "187.00")
    settle(engine)
    adapter = engine.adapters["paper"]
    real = adapter.query_open_orders
    failures = []

    async def down_twice():
        if len(failures) < 2:
            failures.append(engine.clock.now_ns())
            raise ConnectionError("503 Service Unavailable")
        return await real()

    adapter.query_open_orders = down_twice
    run_to(engine, 10, 0, 31)
    anyio.run(engine.runtime.run_pending)
    assert len(failures) == 1 and ctx.venue_status == "reconciling"
    assert ctx.submit("MEBL", "buy", 10, "186.00").reject_code == 9001
    for _ in range(40):  # 1 s, then 2 s, later: the clock runs the retries
        settle(engine, 0.25)
        anyio.run(engine.runtime.run_pending)
    assert len(failures) == 2 and (failures[1] - failures[0]) >= NS
    assert ctx.venue_status == "connected" and a.status == "cancelled"


def test_halted_during_a_drop_still_cancels_the_kept_orders_once_reconnected(tmp_path):
    """README: halted means every open order cancelled - also one the engine could not reach yet."""
    engine = drop_engine(tmp_path, venue={"on_reconnect": "keep"}, options={"cancel_on_disconnect": False})
    open_session(engine)
    ctx = ctx_of(engine)
    working = ctx.submit("MEBL", "buy", 10, "187.00")
    settle(engine)
    run_to(engine, 10, 0, 5)
    engine.runtime.manual_trigger(TradingState.HALTED, "operator halt during the drop")
    run_to(engine, 10, 0, 31)
    anyio.run(engine.runtime.run_pending)
    settle(engine, 5)
    assert ctx.trading_state == "halted" and ctx.venue_status == "connected"
    assert (working.status, resting_ids(engine)) == ("cancelled", []), (working.status, resting_ids(engine))


def test_a_halt_restored_without_a_transition_is_chased_once_the_venue_is_reconciled(tmp_path):
    """As at a restart: the journal's halt comes back with no transition (so no cancels were
    sent), while the venue still works an order. Reconciling the venue starts the halt's chase,
    which cancels it (it stayed working until the close before)."""
    engine = drop_engine(tmp_path, venue={"on_reconnect": "keep"}, options={"cancel_on_disconnect": False})
    open_session(engine)
    ctx = ctx_of(engine)
    working = ctx.submit("MEBL", "buy", 10, "187.00")
    settle(engine)
    engine.runtime.kill_switch.restore({
        "day": "today", "state": "halted", "reason": "halted in the run before", "source": "manual",
        "floor": "halted", "floor_reason": "halted in the run before", "floor_source": "manual"}, "today")
    assert ctx.trading_state == "halted" and working.status == "new"
    run_to(engine, 10, 0, 31)  # the venue drops at 10:00 and is reconciled 30 s later
    anyio.run(engine.runtime.run_pending)
    settle(engine, 5)
    assert (working.status, resting_ids(engine)) == ("cancelled", []), (working.status, resting_ids(engine))


def test_mmp_tripped_by_a_fill_found_at_reconciliation_cancels_the_other_mmp_quotes(tmp_path):
    engine = build(tmp_path, {"s": LOGGER}, venue={"on_reconnect": "keep"},
                   options={"cancel_on_disconnect": False,
                            "faults": [{"kind": "drop", "at": "09:29:50", "duration_s": 30}]},
                   per_strategy={"s": {"mmp": {"interval": "1", "frozen_time": "0", "quantity_limit": "10"}}})
    connect(engine)
    engine.driver.start()
    run_to(engine, 9, 20)
    ctx = ctx_of(engine)
    bid = ctx.submit("MEBL", "buy", 10, "187.50", mmp=True)
    quote = ctx.submit("OGDC", "buy", 10, "109.00", mmp=True)
    settle(engine)
    counterparty(engine, "MEBL", "sell", 10, "187.50")  # meets our bid in the 09:30 auction, during the drop
    run_to(engine, 9, 30, 21)
    anyio.run(engine.runtime.run_pending)
    settle(engine, 2)
    engine.driver.stop()
    assert bid.status == "filled" and ctx.mmp_frozen and engine.runtime.mmp_triggers == 1
    assert (quote.status, resting_ids(engine, "OGDC")) == ("cancelled", []), (quote.status, resting_ids(engine, "OGDC"))


# ---- the kill switch -----------------------------------------------------------------------------


def buy_filled(engine, qty: int, price: str, name: str = "s"):
    counterparty(engine, "MEBL", "sell", qty, price)
    order = ctx_of(engine, name).submit("MEBL", "buy", qty, price)
    settle(engine, 0.01)
    assert order.status == "filled", (order, order.reject_reason)
    return order


def test_daily_loss_limit_halts_cancels_every_open_order_and_refuses_every_new_one(tmp_path):
    engine = build(tmp_path, {"s": LOGGER}, risk={"kill_switch": {"daily_loss_limit": "100"}},
                   venue={"account": {"holdings": {"MEBL": "1000", "OGDC": "100"}}})
    open_session(engine)
    engine.runtime.start_risk_timer()  # as Engine.run does: losses are evaluated every engine second
    ctx = ctx_of(engine)
    resting = [ctx.submit("MEBL", "buy", 10, "180.00"), ctx.submit("OGDC", "buy", 10, "109.00"),
               ctx.submit("OGDC", "sell", 10, "115.00")]
    buy_filled(engine, 100, "187.50")
    assert ctx.trading_state == "active" and all(o.status == "new" for o in resting)
    buy_filled(engine, 1, "185.00")  # the last trade marks the 101 shares down: -250.00
    fees = D("18750.00") * D("0.0015") + D("185.00") * D("0.0015")  # the two buys' commission: losses are net
    assert engine.runtime.strategy_pnl(engine.runtime.runners["s"]) == D("-250.00") - fees
    settle(engine, 1)  # the next risk tick
    assert ctx.trading_state == "halted"
    assert all(o.status == "cancelled" for o in resting) and ctx.open_orders() == []
    assert resting_ids(engine, "MEBL") == [] and resting_ids(engine, "OGDC") == []
    spy = VenueSpy(engine)
    refused = [ctx.submit("MEBL", "sell", 10, "187.00"),  # even one that would shrink the position
               ctx.submit("MEBL", "buy", 10, "185.00"), ctx.submit("OGDC", "buy", 10, "109.00")]
    assert [(o.status, o.reject_code) for o in refused] == [("rejected", 7013)] * 3
    assert all("trading halted by the kill switch: daily loss" in o.reject_reason for o in refused)
    assert spy.sent == []
    report = engine.report()["kill_switch"]
    assert (report["state"], report["source"]) == ("halted", "daily_loss")
    assert "daily loss 278.4025" in report["reason"] and "reached the limit 100" in report["reason"]
    assert [h["state"] for h in report["history"]] == ["halted"]


def test_reducing_lets_only_position_shrinking_orders_through(tmp_path):
    engine = build(tmp_path, {"s": LOGGER}, venue={"account": {"holdings": {"MEBL": "1000"}}})
    open_session(engine)
    ctx = ctx_of(engine)
    buy_filled(engine, 100, "187.50")
    grow = ctx.submit("MEBL", "buy", 10, "180.00")
    shrink = ctx.submit("MEBL", "sell", 30, "195.00")
    settle(engine)
    engine.runtime.manual_trigger(TradingState.REDUCING, "operator: wind down")
    assert ctx.trading_state == "reducing"
    settle(engine)
    assert grow.status == "cancelled" and shrink.status == "new"  # what would grow is pulled, the rest stays
    more = ctx.submit("MEBL", "sell", 70, "196.00")  # 100 long, 30 already offered: 70 is all that is left
    assert more.status == "pending_new"
    over = ctx.submit("MEBL", "sell", 1, "196.00")
    buy = ctx.submit("MEBL", "buy", 1, "187.00")
    flat = ctx.submit("OGDC", "buy", 10, "109.00")
    assert [o.reject_code for o in (over, buy, flat)] == [7012, 7012, 7012]
    assert "would cross zero" in over.reject_reason and "leaves 0" in over.reject_reason
    assert "would grow the position 100 in MEBL" in buy.reject_reason
    assert "is flat in OGDC" in flat.reject_reason
    report = engine.report()["kill_switch"]
    assert report["state"] == "reducing" and report["reason"] == "operator: wind down"
    assert report["source"] == "manual"


def test_reducing_never_lets_a_working_order_flip_the_position(tmp_path):
    engine = build(tmp_path, {"s": LOGGER}, venue={"account": {"holdings": {"MEBL": "1000"}}})
    open_session(engine)
    ctx = ctx_of(engine)
    buy_filled(engine, 100, "187.50")
    enter(engine, Phase.PRE_OPEN)
    offer = ctx.submit("MEBL", "sell", 150, "190.00")  # 50 more than the strategy is long
    settle(engine)
    small = ctx.submit("MEBL", "sell", 60, "190.10")  # fits inside the position: may stay
    settle(engine)
    engine.runtime.manual_trigger(TradingState.REDUCING, "operator: wind down")
    settle(engine)
    working_sells = sum(o.leaves_qty for o in ctx.open_orders("MEBL") if o.side == "sell")
    assert working_sells <= ctx.position("MEBL") == 100, [(o.qty, o.status.value) for o in ctx.open_orders()]
    counterparty(engine, "MEBL", "buy", 150, "190.00")
    enter(engine, Phase.OPEN)  # the opening auction crosses the two
    settle(engine)
    assert ctx.trading_state == "reducing"
    assert ctx.position("MEBL") >= 0, (offer.status, small.status, ctx.position("MEBL"))


KILL_TARGET = """\
from pathlib import Path
from engine import hookimpl

PARAMS = {"marker": ""}

@hookimpl
def on_session_change(ctx, old, new):
    if new == "open":
        ctx.submit("MEBL", "buy", 10, "187.00", tif="gtc")  # works until the halt (or the shutdown)
        Path(ctx.params.marker).write_text("open")

@hookimpl
def on_order_update(ctx, order):
    if order.status == "cancelled" and ctx.trading_state == "halted":
        ctx.submit("MEBL", "buy", 10, "187.00")
"""


def start_engine(tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    """``engine run`` in a subprocess, paced so the day takes a few seconds; returns once the
    strategy has its order working in continuous trading."""
    marker = tmp_path / "open.marker"
    # 2000x: about ten real seconds from continuous trading to the close, for `engine halt` to start
    # on a loaded machine (at 8000x it found the run already ended)
    config = write_engine_config(tmp_path, {"s": KILL_TARGET}, run={"speed": "2000"},
                          per_strategy={"s": {"params": {"marker": str(marker)}}})
    report = tmp_path / "report.json"
    log = (tmp_path / "engine.log").open("w")
    proc = subprocess.Popen([str(ENGINE), "run", str(config), "--report", str(report)], cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert proc.poll() is None, (tmp_path / "engine.log").read_text()
        assert time.monotonic() < deadline, "the engine never reached continuous trading"
        time.sleep(0.01)
    return proc, config, report


def finish(proc: subprocess.Popen, tmp_path: Path, report: Path) -> dict:
    assert proc.wait(timeout=60) == 0, (tmp_path / "engine.log").read_text()
    return json.loads(report.read_text())


def assert_halted_by_operator(result: dict, signame: str = "SIGUSR1") -> None:
    kill = result["kill_switch"]
    assert kill["state"] == "halted" and kill["source"] == "manual"
    assert kill["reason"] == f"manual ({signame})"
    assert result["orders"]["cancelled"] >= 1  # the working order was pulled
    assert result["rejects_by_code"].get("7013", 0) >= 1  # and the strategy's retry refused
    assert result["stopped_by"] == "end"  # halted is not stopped: the run went on to its end


@pytest.mark.e2e  # a subprocess and a signal
def test_sigusr1_halts_a_running_engine(tmp_path):
    proc, config, report = start_engine(tmp_path)
    pid_file = config.with_suffix(".pid")
    assert pid_file.read_text().strip() == str(proc.pid)
    os.kill(proc.pid, signal.SIGUSR1)
    result = finish(proc, tmp_path, report)
    assert_halted_by_operator(result)
    assert not pid_file.exists()  # removed at exit


@pytest.mark.e2e  # a subprocess and a signal
def test_engine_halt_cli_finds_the_pid_file_and_halts(tmp_path):
    proc, config, report = start_engine(tmp_path)
    done = subprocess.run([str(ENGINE), "halt", str(config)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert f"sent SIGUSR1 to engine pid {proc.pid}: account -> halted" in done.stdout
    assert_halted_by_operator(finish(proc, tmp_path, report))


@pytest.mark.e2e  # a subprocess and a signal
def test_engine_halt_without_a_running_engine_exits_1(tmp_path):
    config = write_engine_config(tmp_path, {"s": LOGGER})
    done = subprocess.run([str(ENGINE), "halt", str(config)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert f"no running engine for {config}" in done.stderr
    assert "config.pid" in done.stderr
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    config.with_suffix(".pid").write_text(f"{gone.pid}\n")  # a stale pid file from a dead engine
    stale = subprocess.run([str(ENGINE), "halt", str(config)], capture_output=True, text=True, timeout=30)
    assert stale.returncode == 1
    assert f"pid {gone.pid}" in stale.stderr and "stale pid file" in stale.stderr


# ---- containment ---------------------------------------------------------------------------------

RAISER = """\
from engine import hookimpl

calls = []

@hookimpl
def on_order_update(ctx, order):
    calls.append((order.client_id, order.status.value))
    if order.status == "new":
        raise RuntimeError(f"strategy bug number {len(calls)}")
"""

SLOW = """\
import time
from engine import hookimpl

calls = []

@hookimpl
def on_order_update(ctx, order):
    calls.append((order.client_id, order.status.value))
    if order.status == "new":
        time.sleep(0.005)
"""


def test_a_strategy_may_raise_twice_and_fails_on_the_third(tmp_path):
    engine = build(tmp_path, {"bad": RAISER, "good": LOGGER},
                   risk={"containment": {"max_hook_failures": 3}})
    open_session(engine)
    bad, good = ctx_of(engine, "bad"), ctx_of(engine, "good")
    runner = engine.runtime.runners["bad"]
    keep = good.submit("MEBL", "buy", 10, "186.00")
    first = bad.submit("MEBL", "buy", 10, "187.00")
    settle(engine)
    second = bad.submit("MEBL", "buy", 10, "187.01")
    settle(engine)
    assert (runner.state, runner.hook_errors) == ("running", 2)
    assert module_of(engine, "bad").calls == [(first.client_id, "new"), (second.client_id, "new")]
    third = bad.submit("MEBL", "buy", 10, "187.02")
    assert third.status == "pending_new"  # still trading after two raises
    settle(engine)
    assert (runner.state, runner.hook_errors) == ("failed", 3)
    assert "RuntimeError" in runner.failure and "on_order_update" in runner.failure
    assert [o.status for o in (first, second, third)] == ["cancelled"] * 3
    assert keep.status == "new" and resting_ids(engine) == [keep.client_id]
    assert good.submit("MEBL", "buy", 10, "186.10").status == "pending_new"
    summary = engine.report()["strategies"]
    assert summary["bad"]["state"] == "failed" and summary["bad"]["hook_errors"] == 3
    assert summary["good"]["state"] == "running" and summary["good"]["hook_errors"] == 0


def test_slow_hooks_are_counted_and_after_max_overruns_the_strategy_fails(tmp_path):
    engine = build(tmp_path, {"slow": SLOW, "good": LOGGER},
                   risk={"containment": {"hook_budget_ms": 1, "max_hook_overruns": 3}})
    open_session(engine)
    slow, good = ctx_of(engine, "slow"), ctx_of(engine, "good")
    runner = engine.runtime.runners["slow"]
    keep = good.submit("OGDC", "buy", 10, "109.00")
    orders = [slow.submit("MEBL", "buy", 10, "187.00")]
    settle(engine)
    orders.append(slow.submit("MEBL", "buy", 10, "187.01"))
    settle(engine)
    assert runner.state == "running"
    assert engine.report()["strategies"]["slow"]["hook_overruns"] == 2
    assert engine.report()["strategies"]["slow"]["slowest_hook_ms"] >= 5
    orders.append(slow.submit("MEBL", "buy", 10, "187.02"))
    settle(engine)
    assert runner.state == "failed"
    assert runner.failure == "on_order_update: hooks ran over the 1 ms budget 3 times"
    assert [o.status for o in orders] == ["cancelled"] * 3 and slow.open_orders() == []
    assert keep.status == "new" and resting_ids(engine, "OGDC") == [keep.client_id]
    assert good.submit("MEBL", "buy", 10, "186.00").status == "pending_new"
    report = engine.report()["strategies"]
    assert report["slow"]["hook_overruns"] == 3 and report["slow"]["state"] == "failed"
    assert report["good"]["state"] == "running"


# ---- a strategy's own loss limit -----------------------------------------------------------------


def test_loss_limit_stops_only_that_strategy(tmp_path):
    engine = build(tmp_path, {"loser": LOGGER, "other": LOGGER},
                   per_strategy={"loser": {"loss_limit": "200"}},
                   risk={"rules": {"fee_rate": "0"}})  # marks alone reach the limit: no fees
    open_session(engine)
    engine.runtime.start_risk_timer()
    loser, other = ctx_of(engine, "loser"), ctx_of(engine, "other")
    buy_filled(engine, 100, "187.50", name="loser")
    working = loser.submit("OGDC", "buy", 10, "109.00")
    keep = other.submit("OGDC", "buy", 10, "108.00")
    settle(engine)
    buy_filled(engine, 1, "185.60", name="other")  # the market prints lower: loser is 190.00 down
    settle(engine, 1)
    assert engine.runtime.runners["loser"].state == "running"
    buy_filled(engine, 1, "185.50", name="other")  # 200.00 down: the limit
    settle(engine, 1)
    runner = engine.runtime.runners["loser"]
    assert runner.state == "stopped"
    assert runner.failure == "loss limit: day PnL -200.00 reached -200"
    assert working.status == "cancelled" and loser.open_orders() == []
    refused = loser.submit("MEBL", "sell", 10, "185.50")
    assert refused.reject_code == 7003 and "strategy 'loser' is stopped" in refused.reject_reason
    assert keep.status == "new"
    assert other.submit("MEBL", "buy", 10, "185.00").status == "pending_new"
    assert loser.trading_state == "active"  # the account is not affected
    report = engine.report()
    assert report["strategies"]["loser"]["state"] == "stopped"
    assert report["strategies"]["other"]["state"] == "running"
    assert report["kill_switch"]["state"] == "active"


# ---- request-rate limits on the simulated clock ---------------------------------------------------


def max_in_window(times: list[int], window_ns: int = NS) -> int:
    """The most timestamps inside any window (t - window, t] ending at one of them."""
    times = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(times):
        while times[start] <= t - window_ns:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_rate_limits_hold_over_every_sliding_second_and_cancels_are_never_starved(tmp_path):
    # the repeat-refusal rule would pause both hammering strategies: this test is about the budgets
    engine = build(tmp_path, {"a": LOGGER, "b": LOGGER}, per_strategy={"a": {"rate_limit": {"orders_per_s": 5}}},
                   risk={"containment": {"repeat_refusals": None}})
    open_session(engine)
    spy = VenueSpy(engine)
    a, b = ctx_of(engine, "a"), ctx_of(engine, "b")
    starved = []  # instants where b's new order was refused and its cancel still went out
    for step in range(800):  # 4 s, every 5 ms: 200 orders/s from each; b also cancels from the 2nd second
        a.submit("MEBL", "buy", 1, f"{180 + (step % 50) / 10:.2f}")
        live = [o for o in a.open_orders() if o.status == "new"]
        if live:
            a.amend(live[0], price=f"{170 + (step % 90) / 10:.2f}")
        new = b.submit("OGDC", "buy", 10, f"{100 + (step % 50) / 10:.2f}")
        if step >= 200:
            for order in [o for o in b.open_orders() if o.status == "new"][:3]:
                if b.cancel(order) and new.reject_code == 3001:
                    starved.append(engine.clock.now_ns())
        settle(engine, 0.005)
    settle(engine, 1)
    sent = spy.sent
    a_ids = {o for o in engine.runtime.venues["paper"].orders if o.startswith("a-")}
    a_orders = [e[6] for e in sent if e[1] in a_ids and e[0] in ("submit", "amend")]
    everything = [e[6] for e in sent]
    assert max_in_window(a_orders) == 5  # reached, never exceeded
    assert max_in_window(everything) == 100  # the venue's declared 100 requests/second: reached, never exceeded
    assert engine.runtime.rejects_by_code[3001] > 0
    assert starved, "a cancel should pass while new orders are refused"
    b_cancels = [e[6] for e in sent if e[0] == "cancel" and e[1].startswith("b-")]
    b_orders = [e[6] for e in sent if e[0] == "submit" and e[1].startswith("b-")]
    assert len(b_cancels) > 0 and max_in_window(b_orders) <= 80  # 20 of the 100 are held for cancels


# ---- settlement over three simulated days --------------------------------------------------------

SETTLER = """\
from engine import hookimpl

log = []
fills = []
todo = []

@hookimpl
def on_session_change(ctx, old, new):
    if new == "open":
        todo.append(ctx.now().date().isoformat())  # act once today, at the first two-sided book

@hookimpl
def on_book(ctx, book):
    if not todo or ctx.session != "open" or book.best_bid is None or book.best_ask is None:
        return
    day = todo.pop()
    if not log:  # day 1: sell the holding at the bid
        order = ctx.submit("MEBL", "sell", 100, book.best_bid)
    elif not any(entry[1] == "buy" and entry[2] != "rejected" for entry in log):
        order = ctx.submit("MEBL", "buy", 50, book.best_ask)  # needs the sale's proceeds
    else:
        return
    log.append((day, order.side.value, order.status.value, order.reject_code, ctx.buying_power,
                order.reject_reason))

@hookimpl
def on_fill(ctx, fill):
    fills.append((ctx.now().date().isoformat(), fill.side.value, fill.qty, fill.price))
"""


@pytest.mark.parametrize(
    ("profile", "attempts", "bought_on", "settles_on"),
    [
        ("broker-doc", [("2026-11-24", "rejected", 4001), ("2026-11-25", "pending_new", None)], "2026-11-25",
         "2026-11-27"),  # T+2: Monday's proceeds settle Wednesday
        ("psx-2026", [("2026-11-24", "pending_new", None)], "2026-11-24", "2026-11-25"),  # T+1: Tuesday
    ],
)
def test_sale_proceeds_become_buying_power_on_their_settlement_day(tmp_path, profile, attempts, bought_on,
                                                                   settles_on):
    engine = build(tmp_path, {"s": SETTLER}, symbols=("MEBL",), run={"days": 3},
                   options={"market": {"enabled": True, "step_interval_s": "30", "aggressive_interval_s": "600"}},
                   risk={"profile": profile, "rules": {"fee_rate": "0", "fees": []}},  # settlement, not fees
                   venue={"account": {"cash": "1000", "holdings": {"MEBL": "100"}}})
    result = anyio.run(engine.run)
    module = module_of(engine)
    assert result.report["trading_days"] == ["2026-11-23", "2026-11-24", "2026-11-25"]
    sale, *buys = module.log
    assert sale[:4] == ("2026-11-23", "sell", "pending_new", None) and sale[4] == D(1000)
    assert [(day, status, code) for day, side, status, code, *_ in buys] == attempts
    assert all(side == "buy" for _, side, *_ in buys)
    sold = [(q, p) for d, side, q, p in module.fills if side == "sell"]
    assert sum(q for q, _ in sold) == 100
    assert {d for d, side, *_ in module.fills if side == "sell"} == {"2026-11-23"}
    proceeds = sum(q * p for q, p in sold)
    if profile == "broker-doc":  # refused with the proceeds not yet settled, cash still 1,000
        assert buys[0][4] == D(1000)
        assert "sale proceeds settle on 2026-11-25" in buys[0][5], buys[0][5]
        assert result.report["rejects_by_code"] == {"4001": 1}
    bought = [(d, q, p) for d, side, q, p in module.fills if side == "buy"]
    assert {d for d, _, _ in bought} == {bought_on} and sum(q for _, q, _ in bought) == 50
    account = result.report["venues"]["paper"]["account"]
    assert D(account["cash"]) == D(1000) + proceeds - sum(q * p for _, q, p in bought)
    assert D(account["unsettled_cash"]) == 0  # the sale has settled
    assert account["holdings"]["MEBL"]["total"] == "50"
    if settles_on > "2026-11-25":  # the buy is still in the ledger at the end of the run
        assert account["unsettled"] == [{"kind": "shares", "symbol": "MEBL", "amount": "50",
                                         "trade_day": bought_on, "settle_day": settles_on}]
        assert account["holdings"]["MEBL"]["unsettled"] == "50"
    else:
        assert account["unsettled"] == [] and account["holdings"]["MEBL"]["settled"] == "50"
