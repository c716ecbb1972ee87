"""The paper venue's matching engine: one rule per test, then property tests over random order
flow (book never crossed at rest, quantity conserved, price-time priority, exact L2 deltas)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.sim.matching import (
    CODE_INVALID_AMEND,
    CODE_INVALID_PRICE,
    CODE_INVALID_QTY,
    CODE_MARKET_CLOSED,
    CODE_ORDER_TYPE,
    CODE_POST_ONLY,
    CODE_UNKNOWN_ORDER,
    Accepted,
    Cancelled,
    CancelRejected,
    Execution,
    Expired,
    MatchingEngine,
    Outcome,
    Rejected,
    Replaced,
    ReplaceRejected,
    band_around,
)
from engine.model import OrderType, Phase, Side, TimeInForce

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
DAY, GTC, IOC, FOK = TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK
MINUTE = 60 * 1_000_000_000


# ---- helpers -----------------------------------------------------------------------------


def make_engine(phase: Phase = Phase.OPEN, **kwargs: object) -> MatchingEngine:
    engine = MatchingEngine("MEBL", reference_price=kwargs.pop("reference_price", D("100.00")), **kwargs)  # type: ignore[arg-type]
    engine.set_phase(phase)
    return engine


def order(
    engine: MatchingEngine,
    side: Side,
    qty: int | str,
    price: str | None,
    owner: str = "a",
    tif: TimeInForce = DAY,
    order_type: OrderType = LIMIT,
    post_only: bool = False,
    client_id: str = "",
    ts: int = 0,
) -> Outcome:
    return engine.submit(
        owner, client_id, side, D(qty), None if price is None else D(price), order_type, tif, post_only, ts
    )


def oid(outcome: Outcome) -> int:
    accepted = outcome.events[0]
    assert isinstance(accepted, Accepted), outcome
    return accepted.order_id


def of_type(outcome: Outcome, kind: type) -> list:
    return [e for e in outcome.events if isinstance(e, kind)]


def fills(outcome: Outcome) -> list[tuple[Decimal, Decimal]]:
    return [(e.price, e.qty) for e in of_type(outcome, Execution)]


def kinds(outcome: Outcome) -> list[str]:
    return [e.kind for e in outcome.events]


# ---- continuous matching -----------------------------------------------------------------


def test_limit_order_that_cannot_trade_rests_and_reports_its_level():
    engine = make_engine()
    outcome = order(engine, BUY, 10, "99.50")
    assert kinds(outcome) == ["accepted"]
    assert outcome.changes == ((BUY, D("99.50"), D(10)),)
    assert engine.best_bid == D("99.50")


def test_incoming_order_trades_at_the_resting_orders_price():
    engine = make_engine()
    order(engine, SELL, 10, "100.00", owner="maker")
    outcome = order(engine, BUY, 10, "101.00", owner="taker")
    [execution] = of_type(outcome, Execution)
    assert (execution.price, execution.qty) == (D("100.00"), D(10))
    assert (execution.maker_owner, execution.taker_owner, execution.taker_side) == ("maker", "taker", BUY)


def test_partial_fill_leaves_the_remainder_resting():
    engine = make_engine()
    order(engine, SELL, 5, "100.00", owner="m")
    outcome = order(engine, BUY, 8, "100.00", owner="t")
    assert fills(outcome) == [(D("100.00"), D(5))]
    assert set(outcome.changes) == {(SELL, D("100.00"), D(0)), (BUY, D("100.00"), D(3))}
    assert engine.depth(BUY) == [(D("100.00"), D(3))]
    assert engine.depth(SELL) == []


def test_partially_filled_maker_keeps_its_remainder_at_the_front():
    engine = make_engine()
    first = oid(order(engine, SELL, 10, "100.00", owner="m1"))
    order(engine, SELL, 10, "100.00", owner="m2")
    order(engine, BUY, 4, "100.00", owner="t")
    resting = engine.resting_orders(SELL)
    assert resting[0].order_id == first
    assert resting[0].leaves == D(6)


def test_sweep_fills_the_better_price_before_the_worse():
    engine = make_engine()
    order(engine, SELL, 5, "100.02", owner="m")
    order(engine, SELL, 5, "100.01", owner="m")
    outcome = order(engine, BUY, 8, "100.05", owner="t")
    assert fills(outcome) == [(D("100.01"), D(5)), (D("100.02"), D(3))]


def test_same_price_fills_the_earlier_order_first():
    engine = make_engine()
    early = oid(order(engine, BUY, 5, "99.00", owner="m1"))
    late = oid(order(engine, BUY, 5, "99.00", owner="m2"))
    outcome = order(engine, SELL, 7, "99.00", owner="t")
    assert [(e.maker_id, e.qty) for e in of_type(outcome, Execution)] == [(early, D(5)), (late, D(2))]


def test_level_changes_report_each_touched_level_once_with_its_final_total():
    engine = make_engine()
    order(engine, SELL, 5, "100.01", owner="m")
    order(engine, SELL, 5, "100.01", owner="m2")
    order(engine, SELL, 5, "100.02", owner="m")
    outcome = order(engine, BUY, 12, "100.02", owner="t")
    assert outcome.changes == ((SELL, D("100.01"), D(0)), (SELL, D("100.02"), D(3)))


def test_ioc_cancels_what_it_cannot_fill_at_once():
    engine = make_engine()
    order(engine, SELL, 4, "100.00", owner="m")
    outcome = order(engine, BUY, 10, "100.00", owner="t", tif=IOC)
    assert kinds(outcome) == ["accepted", "execution", "cancelled"]
    assert of_type(outcome, Cancelled)[0].qty == D(6)
    assert engine.best_bid is None


def test_ioc_that_cannot_trade_is_cancelled_without_resting():
    engine = make_engine()
    outcome = order(engine, BUY, 10, "99.00", tif=IOC)
    assert kinds(outcome) == ["accepted", "cancelled"]
    assert outcome.changes == ()


def test_fok_fills_completely_when_enough_is_available():
    engine = make_engine()
    order(engine, SELL, 6, "100.00", owner="m")
    order(engine, SELL, 6, "100.01", owner="m")
    outcome = order(engine, BUY, 10, "100.01", owner="t", tif=FOK)
    assert sum(q for _, q in fills(outcome)) == D(10)
    assert not of_type(outcome, Cancelled)


def test_fok_is_cancelled_without_trading_when_not_enough_is_available():
    engine = make_engine()
    order(engine, SELL, 6, "100.00", owner="m")
    outcome = order(engine, BUY, 10, "100.00", owner="t", tif=FOK)
    assert kinds(outcome) == ["accepted", "cancelled"]
    assert outcome.changes == ()
    assert engine.depth(SELL) == [(D("100.00"), D(6))]


def test_fok_counts_only_liquidity_inside_its_limit():
    engine = make_engine()
    order(engine, SELL, 6, "100.00", owner="m")
    order(engine, SELL, 6, "100.05", owner="m")
    outcome = order(engine, BUY, 10, "100.01", owner="t", tif=FOK)
    assert not of_type(outcome, Execution)


def test_fok_does_not_count_own_orders_that_would_stop_it():
    engine = make_engine()
    order(engine, SELL, 6, "100.00", owner="t")
    order(engine, SELL, 6, "100.00", owner="m")
    outcome = order(engine, BUY, 6, "100.00", owner="t", tif=FOK)
    assert kinds(outcome) == ["accepted", "cancelled"]
    assert len(engine.resting_orders(SELL)) == 2


def test_post_only_that_would_take_liquidity_is_rejected():
    engine = make_engine()
    order(engine, SELL, 5, "100.00", owner="m")
    outcome = order(engine, BUY, 5, "100.00", owner="t", post_only=True)
    [rejected] = outcome.events
    assert isinstance(rejected, Rejected) and rejected.code == CODE_POST_ONLY
    assert engine.depth(SELL) == [(D("100.00"), D(5))]


def test_post_only_that_does_not_cross_rests():
    engine = make_engine()
    order(engine, SELL, 5, "100.00", owner="m")
    outcome = order(engine, BUY, 5, "99.99", owner="t", post_only=True)
    assert kinds(outcome) == ["accepted"]
    assert engine.best_bid == D("99.99")


def test_market_order_on_an_empty_side_is_accepted_then_cancelled():
    engine = make_engine()
    outcome = order(engine, BUY, 5, None, order_type=MARKET)
    assert kinds(outcome) == ["accepted", "cancelled"]
    assert outcome.changes == ()


def test_market_order_takes_what_is_there_and_cancels_the_rest():
    engine = make_engine()
    order(engine, BUY, 3, "99.00", owner="m")
    order(engine, BUY, 3, "98.00", owner="m")
    outcome = order(engine, SELL, 10, None, owner="t", order_type=MARKET)
    assert fills(outcome) == [(D("99.00"), D(3)), (D("98.00"), D(3))]
    assert of_type(outcome, Cancelled)[0].qty == D(4)
    assert engine.best_ask is None  # a market order never rests


def test_cancel_removes_the_order_and_reports_its_level():
    engine = make_engine()
    order_id = oid(order(engine, BUY, 5, "99.00"))
    outcome = engine.cancel(order_id)
    assert kinds(outcome) == ["cancelled"]
    assert outcome.changes == ((BUY, D("99.00"), D(0)),)
    assert engine.order(order_id) is None


def test_cancel_of_an_order_that_is_not_resting_is_refused():
    engine = make_engine()
    [refused] = engine.cancel(12345).events
    assert isinstance(refused, CancelRejected) and refused.code == CODE_UNKNOWN_ORDER


# ---- validation --------------------------------------------------------------------------


def test_quantity_not_a_multiple_of_the_lot_is_rejected():
    engine = make_engine(lot_size=D(500))
    [rejected] = order(engine, BUY, 750, "99.00").events
    assert isinstance(rejected, Rejected) and rejected.code == CODE_INVALID_QTY


def test_price_off_the_tick_grid_is_rejected():
    engine = make_engine()
    [rejected] = order(engine, BUY, 1, "99.005").events
    assert isinstance(rejected, Rejected) and rejected.code == CODE_INVALID_PRICE


def test_price_outside_the_circuit_band_is_rejected():
    engine = make_engine(price_band=band_around(D("100.00"), D("0.01")))
    [rejected] = order(engine, BUY, 1, "89.99").events
    assert isinstance(rejected, Rejected) and rejected.code == CODE_INVALID_PRICE
    assert kinds(order(engine, BUY, 1, "90.00")) == ["accepted"]


def test_circuit_band_rounds_inward_to_the_tick():
    assert band_around(D("75.12"), D("0.01")) == (D("67.61"), D("82.63"))


def test_equal_prices_written_differently_share_one_level():
    engine = make_engine()
    order(engine, BUY, 1, "99.5")
    outcome = order(engine, BUY, 1, "99.50")
    assert engine.depth(BUY) == [(D("99.50"), D(2))]
    assert str(outcome.changes[0][1]) == "99.50"


# ---- amend -------------------------------------------------------------------------------


def test_amend_size_decrease_keeps_time_priority():
    engine = make_engine()
    first = oid(order(engine, BUY, 10, "99.00", owner="m1"))
    order(engine, BUY, 10, "99.00", owner="m2")
    outcome = engine.amend(first, qty=D(4))
    [replaced] = of_type(outcome, Replaced)
    assert replaced.kept_priority and replaced.qty == D(4)
    assert engine.resting_orders(BUY)[0].order_id == first
    assert outcome.changes == ((BUY, D("99.00"), D(14)),)


def test_amend_size_increase_loses_time_priority():
    engine = make_engine()
    first = oid(order(engine, BUY, 10, "99.00", owner="m1"))
    second = oid(order(engine, BUY, 10, "99.00", owner="m2"))
    engine.amend(first, qty=D(12))
    assert [o.order_id for o in engine.resting_orders(BUY)] == [second, first]


def test_amend_price_change_loses_time_priority():
    engine = make_engine()
    first = oid(order(engine, BUY, 10, "99.00", owner="m1"))
    second = oid(order(engine, BUY, 10, "99.01", owner="m2"))
    engine.amend(first, price=D("99.01"))
    assert [o.order_id for o in engine.resting_orders(BUY)] == [second, first]


def test_amend_to_a_quantity_not_above_the_filled_is_refused():
    engine = make_engine()
    resting = oid(order(engine, SELL, 10, "100.00", owner="m"))
    order(engine, BUY, 6, "100.00", owner="t")
    [refused] = engine.amend(resting, qty=D(6)).events
    assert isinstance(refused, ReplaceRejected) and refused.code == CODE_INVALID_AMEND
    assert engine.order(resting).leaves == D(4)


def test_amend_above_the_filled_quantity_sets_the_new_total():
    engine = make_engine()
    resting = oid(order(engine, SELL, 10, "100.00", owner="m"))
    order(engine, BUY, 6, "100.00", owner="t")
    engine.amend(resting, qty=D(8))
    assert (engine.order(resting).qty, engine.order(resting).leaves) == (D(8), D(2))


def test_amend_to_a_crossing_price_trades_as_the_taker():
    engine = make_engine()
    order(engine, SELL, 5, "100.00", owner="m")
    bid = oid(order(engine, BUY, 5, "99.00", owner="t"))
    outcome = engine.amend(bid, price=D("100.00"))
    assert kinds(outcome) == ["replaced", "execution"]
    assert of_type(outcome, Execution)[0].taker_id == bid


def test_amend_of_post_only_to_a_crossing_price_is_refused():
    engine = make_engine()
    order(engine, SELL, 5, "100.00", owner="m")
    bid = oid(order(engine, BUY, 5, "99.00", owner="t", post_only=True))
    [refused] = engine.amend(bid, price=D("100.00")).events
    assert isinstance(refused, ReplaceRejected) and refused.code == CODE_POST_ONLY
    assert engine.order(bid).price == D("99.00")


# ---- self-trade prevention ---------------------------------------------------------------


def _stp_book(policy: str) -> tuple[MatchingEngine, int, int]:
    engine = make_engine(stp=policy)
    other = oid(order(engine, SELL, 5, "100.00", owner="other"))
    own = oid(order(engine, SELL, 5, "100.01", owner="me"))
    order(engine, SELL, 5, "100.02", owner="other")
    return engine, other, own


def test_stp_cancel_newest_cancels_the_incoming_remainder():
    engine, _, own = _stp_book("cancel_newest")
    outcome = order(engine, BUY, 12, "100.02", owner="me")
    assert fills(outcome) == [(D("100.00"), D(5))]
    [cancelled] = of_type(outcome, Cancelled)
    assert cancelled.order_id != own and cancelled.qty == D(7)
    assert engine.order(own) is not None


def test_stp_cancel_oldest_cancels_the_resting_order_and_goes_on():
    engine, _, own = _stp_book("cancel_oldest")
    outcome = order(engine, BUY, 12, "100.02", owner="me")
    assert fills(outcome) == [(D("100.00"), D(5)), (D("100.02"), D(5))]
    [cancelled] = of_type(outcome, Cancelled)
    assert cancelled.order_id == own
    assert engine.best_bid == D("100.02")  # the incoming remainder rests


def test_stp_cancel_both_cancels_resting_and_incoming():
    engine, _, own = _stp_book("cancel_both")
    outcome = order(engine, BUY, 12, "100.02", owner="me")
    assert fills(outcome) == [(D("100.00"), D(5))]
    assert {c.order_id == own for c in of_type(outcome, Cancelled)} == {True, False}
    assert engine.best_bid is None and engine.best_ask == D("100.02")


def test_unknown_stp_policy_is_refused():
    with pytest.raises(ValueError, match="self-trade"):
        MatchingEngine("X", stp="cancel_everything")  # type: ignore[arg-type]


# ---- phases ------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", [Phase.CLOSED, Phase.BREAK, Phase.OPENING_MATCH])
def test_new_orders_are_rejected_with_2006_when_the_market_does_not_accept_them(phase):
    engine = make_engine(phase)
    [rejected] = order(engine, BUY, 1, "99.00").events
    assert isinstance(rejected, Rejected) and rejected.code == CODE_MARKET_CLOSED and rejected.reason


@pytest.mark.parametrize(
    ("order_type", "tif"), [(MARKET, DAY), (LIMIT, IOC), (LIMIT, FOK)], ids=["market", "ioc", "fok"]
)
def test_pre_open_rejects_market_ioc_and_fok_with_2007(order_type, tif):
    engine = make_engine(Phase.PRE_OPEN)
    [rejected] = order(engine, BUY, 1, "99.00", order_type=order_type, tif=tif).events
    assert isinstance(rejected, Rejected) and rejected.code == CODE_ORDER_TYPE


def test_pre_open_orders_rest_without_matching_even_when_crossed():
    engine = make_engine(Phase.PRE_OPEN)
    order(engine, BUY, 5, "101.00", owner="b")
    outcome = order(engine, SELL, 5, "99.00", owner="s")
    assert kinds(outcome) == ["accepted"]
    assert (engine.best_bid, engine.best_ask) == (D("101.00"), D("99.00"))


def test_cancel_is_allowed_in_pre_open():
    engine = make_engine(Phase.PRE_OPEN)
    order_id = oid(order(engine, BUY, 5, "101.00"))
    assert kinds(engine.cancel(order_id)) == ["cancelled"]


def test_opening_auction_uncrosses_at_the_price_that_maximises_volume():
    engine = make_engine(Phase.PRE_OPEN, reference_price=D("100.00"))
    order(engine, BUY, 10, "101.00", owner="b1")
    order(engine, BUY, 10, "100.50", owner="b2")
    order(engine, SELL, 5, "99.50", owner="s1")
    order(engine, SELL, 10, "100.50", owner="s2")
    outcome = engine.set_phase(Phase.OPENING_MATCH)
    # at 100.50: demand 20, supply 15 -> 15; at 101.00: 10; at 99.50: 5
    assert {price for price, _ in fills(outcome)} == {D("100.50")}
    assert sum(q for _, q in fills(outcome)) == D(15)
    assert all(e.auction for e in of_type(outcome, Execution))
    assert engine.depth(BUY) == [(D("100.50"), D(5))] and engine.depth(SELL) == []


def test_opening_auction_breaks_a_volume_tie_by_the_smaller_imbalance():
    engine = make_engine(Phase.PRE_OPEN, reference_price=D("50.00"))
    order(engine, BUY, 10, "101.00", owner="b1")
    order(engine, BUY, 5, "100.00", owner="b2")
    order(engine, SELL, 10, "100.00", owner="s1")
    order(engine, SELL, 8, "101.00", owner="s2")
    # 100.00: demand 15, supply 10 -> 10 (imbalance 5); 101.00: demand 10, supply 18 -> 10 (imbalance 8)
    assert engine.auction_price() == (D("100.00"), D(10))


def test_opening_auction_breaks_a_full_tie_by_the_price_closest_to_the_reference():
    engine = make_engine(Phase.PRE_OPEN, reference_price=D("100.03"))
    order(engine, BUY, 10, "100.05", owner="b")
    order(engine, SELL, 10, "100.00", owner="s")
    # any price in [100.00, 100.05] trades 10 with no imbalance: the reference wins
    assert engine.auction_price() == (D("100.03"), D(10))


def test_opening_auction_fills_in_price_time_priority():
    engine = make_engine(Phase.PRE_OPEN)
    late_at_better = oid(order(engine, BUY, 5, "101.00", owner="b2"))
    early = oid(order(engine, BUY, 5, "100.00", owner="b1"))
    later = oid(order(engine, BUY, 5, "100.00", owner="b3"))
    order(engine, SELL, 8, "100.00", owner="s")
    outcome = engine.set_phase(Phase.OPEN)
    filled = {}
    for e in of_type(outcome, Execution):
        bid = e.maker_id if e.maker_owner.startswith("b") else e.taker_id
        filled[bid] = filled.get(bid, D(0)) + e.qty
    assert filled == {late_at_better: D(5), early: D(3)}
    assert engine.order(later).leaves == D(5)


def test_opening_match_refuses_cancels_and_does_not_match():
    engine = make_engine(Phase.PRE_OPEN)
    resting = oid(order(engine, BUY, 5, "99.00"))
    engine.set_phase(Phase.OPENING_MATCH)
    [refused] = engine.cancel(resting).events
    assert isinstance(refused, CancelRejected) and refused.code == CODE_MARKET_CLOSED


def test_no_auction_when_pre_open_book_does_not_cross():
    engine = make_engine(Phase.PRE_OPEN)
    order(engine, BUY, 5, "99.00", owner="b")
    order(engine, SELL, 5, "100.00", owner="s")
    assert engine.set_phase(Phase.OPEN).events == []


def _post_close_engine() -> MatchingEngine:
    engine = make_engine()
    order(engine, SELL, 10, "100.00", owner="m", ts=0)
    order(engine, BUY, 10, "100.00", owner="t", ts=0)  # a trade at 100.00
    engine.set_phase(Phase.POST_CLOSE, ts=MINUTE)
    return engine


def test_post_close_accepts_a_limit_order_at_the_closing_price():
    engine = _post_close_engine()
    assert engine.closing_price == D("100.00")
    assert kinds(order(engine, BUY, 5, "100.00")) == ["accepted"]


def test_post_close_rejects_other_prices_with_2003():
    engine = _post_close_engine()
    [rejected] = order(engine, BUY, 5, "100.01").events
    assert isinstance(rejected, Rejected) and rejected.code == CODE_INVALID_PRICE


def test_post_close_rejects_market_orders_with_2007():
    engine = _post_close_engine()
    [rejected] = order(engine, BUY, 5, None, order_type=MARKET).events
    assert isinstance(rejected, Rejected) and rejected.code == CODE_ORDER_TYPE


def test_post_close_trades_only_at_the_closing_price():
    engine = _post_close_engine()
    engine.set_phase(Phase.OPEN)
    order(engine, SELL, 5, "99.90", owner="early")  # rests from continuous trading, better than the close
    engine.set_phase(Phase.POST_CLOSE)
    outcome = order(engine, BUY, 5, "100.00", owner="late")
    assert fills(outcome) == [(D("100.00"), D(5))]


def test_closing_price_is_the_vwap_of_the_last_30_minutes_of_continuous_trading():
    engine = make_engine()
    for ts, price, qty in ((0, "90.00", 100), (40 * MINUTE, "100.00", 10), (60 * MINUTE, "101.00", 30)):
        order(engine, SELL, qty, price, owner="m", ts=ts)
        order(engine, BUY, qty, price, owner="t", ts=ts)
    engine.set_phase(Phase.POST_CLOSE, ts=61 * MINUTE)
    # only the trades after minute 31: (10 * 100 + 30 * 101) / 40 = 100.75
    assert engine.closing_price == D("100.75")


def test_closing_price_is_rounded_to_the_tick():
    engine = make_engine()
    for price, qty in (("100.01", 1), ("100.02", 2)):
        order(engine, SELL, qty, price, owner="m")
        order(engine, BUY, qty, price, owner="t")
    engine.set_phase(Phase.POST_CLOSE)
    assert str(engine.closing_price) == "100.02"  # 300.05 / 3 = 100.0166...


def test_closing_price_is_written_with_the_ticks_decimals():
    engine = make_engine()
    order(engine, SELL, 3, "100", owner="m")
    order(engine, BUY, 3, "100", owner="t")
    engine.set_phase(Phase.POST_CLOSE)
    assert str(engine.closing_price) == "100.00"


def test_closing_price_is_the_reference_price_when_nothing_traded():
    engine = make_engine(reference_price=D("187.50"))
    engine.set_phase(Phase.POST_CLOSE)
    assert engine.closing_price == D("187.50")


def test_expire_day_orders_expires_day_and_keeps_gtc():
    engine = make_engine()
    day = oid(order(engine, BUY, 5, "99.00", tif=DAY))
    gtc = oid(order(engine, BUY, 5, "98.00", tif=GTC))
    engine.set_phase(Phase.CLOSED)
    outcome = engine.expire_day_orders()
    assert [(e.order_id, e.qty) for e in of_type(outcome, Expired)] == [(day, D(5))]
    assert engine.order(gtc) is not None
    assert outcome.changes == ((BUY, D("99.00"), D(0)),)


def test_cancels_are_allowed_while_closed():
    engine = make_engine()
    gtc = oid(order(engine, BUY, 5, "98.00", tif=GTC))
    engine.set_phase(Phase.CLOSED)
    assert kinds(engine.cancel(gtc)) == ["cancelled"]


def test_batch_merges_level_changes_into_one_list():
    engine = make_engine()
    engine.begin_batch()
    first = order(engine, BUY, 5, "99.00")
    order(engine, BUY, 5, "99.00", owner="b")
    engine.cancel(oid(first))
    order(engine, SELL, 5, "100.00")
    changes = engine.end_batch()
    assert first.changes == ()
    assert changes == ((BUY, D("99.00"), D(5)), (SELL, D("100.00"), D(5)))


def test_a_level_that_ends_where_it_started_is_not_reported():
    engine = make_engine()
    order(engine, BUY, 5, "99.00")
    engine.begin_batch()
    extra = order(engine, BUY, 5, "99.00")
    engine.cancel(oid(extra))
    assert engine.end_batch() == ()


# ---- properties over random order flow ---------------------------------------------------

BASE = D("100.00")
TICK = D("0.01")
OWNERS = ("a", "b", "c")

submit_ops = st.tuples(
    st.just("submit"),
    st.sampled_from([BUY, SELL]),
    st.integers(0, 8),  # price in ticks above BASE
    st.integers(1, 6),  # quantity
    st.sampled_from(OWNERS),
    st.sampled_from([(LIMIT, DAY), (LIMIT, GTC), (LIMIT, IOC), (LIMIT, FOK), (MARKET, IOC)]),
    st.booleans(),  # post-only (only meaningful on a plain limit)
)
cancel_ops = st.tuples(st.just("cancel"), st.integers(0, 1000))
amend_ops = st.tuples(
    st.just("amend"),
    st.integers(0, 1000),
    st.one_of(st.none(), st.integers(0, 8)),  # new price in ticks
    st.one_of(st.none(), st.integers(1, 8)),  # new total quantity
)
operations = st.lists(st.one_of(submit_ops, submit_ops, cancel_ops, amend_ops), min_size=1, max_size=60)


class Ledger:
    """What the events said about each order, to check conservation against the engine."""

    def __init__(self) -> None:
        self.qty: dict[int, Decimal] = {}
        self.filled: dict[int, Decimal] = {}
        self.cancelled: dict[int, Decimal] = {}
        self.side: dict[int, Side] = {}

    def record(self, outcome: Outcome) -> None:
        for e in outcome.events:
            if isinstance(e, Accepted):
                self.qty[e.order_id] = e.qty
                self.filled[e.order_id] = D(0)
                self.cancelled[e.order_id] = D(0)
                self.side[e.order_id] = e.side
            elif isinstance(e, Execution):
                self.filled[e.maker_id] += e.qty
                self.filled[e.taker_id] += e.qty
            elif isinstance(e, Cancelled | Expired):
                self.cancelled[e.order_id] += e.qty
            elif isinstance(e, Replaced):
                self.qty[e.order_id] = e.qty

    def check(self, engine: MatchingEngine) -> None:
        for order_id, qty in self.qty.items():
            resting = engine.order(order_id)
            leaves = resting.leaves if resting is not None else D(0)
            assert self.filled[order_id] + leaves + self.cancelled[order_id] == qty, order_id
        bought = sum((f for i, f in self.filled.items() if self.side[i] is BUY), D(0))
        sold = sum((f for i, f in self.filled.items() if self.side[i] is SELL), D(0))
        assert bought == sold


def aggregated(engine: MatchingEngine) -> dict[tuple[Side, Decimal], Decimal]:
    return {(side, p): q for side in (BUY, SELL) for p, q in engine.depth(side)}


def priority_key(side: Side, price: Decimal, seq: int) -> tuple[Decimal, int]:
    return (-price if side is BUY else price, seq)


def apply(engine: MatchingEngine, op: tuple, ids: list[int]) -> Outcome:
    if op[0] == "submit":
        _, side, ticks, qty, owner, (order_type, tif), post_only = op
        post_only = post_only and order_type is LIMIT and tif in (DAY, GTC)
        price = None if order_type is MARKET else BASE + ticks * TICK
        return engine.submit(owner, "", side, D(qty), price, order_type, tif, post_only)
    if not ids:
        return engine.cancel(-1)
    target = ids[op[1] % len(ids)]
    if op[0] == "cancel":
        return engine.cancel(target)
    _, _, ticks, qty = op
    return engine.amend(target, None if ticks is None else BASE + ticks * TICK, None if qty is None else D(qty))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, stp=st.sampled_from(["cancel_newest", "cancel_oldest", "cancel_both"]))
def test_random_order_flow_keeps_the_book_consistent(ops, stp):
    """After every operation: not crossed, internal state consistent, quantity conserved, and the
    reported level changes are exactly the difference of the aggregated book."""
    engine = make_engine(stp=stp)
    ledger = Ledger()
    ids: list[int] = []
    for op in ops:
        before = aggregated(engine)
        outcome = apply(engine, op, ids)
        ledger.record(outcome)
        ids.extend(e.order_id for e in outcome.events if isinstance(e, Accepted))
        engine.check_invariants()
        ledger.check(engine)
        after = aggregated(engine)
        expected = {
            key: after.get(key, D(0)) for key in before.keys() | after.keys() if before.get(key) != after.get(key)
        }
        reported = {(side, price): qty for side, price, qty in outcome.changes}
        assert len(reported) == len(outcome.changes), "a level reported twice"
        assert reported == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, stp=st.sampled_from(["cancel_newest", "cancel_oldest", "cancel_both"]))
def test_random_order_flow_respects_price_time_priority(ops, stp):
    """Every maker filled by an operation was ahead (better price, or same price and earlier) of
    every order still resting on its side, and makers were filled in priority order."""
    engine = make_engine(stp=stp)
    ids: list[int] = []
    for op in ops:
        keys = {o.order_id: priority_key(o.side, o.price, o.seq) for o in engine.resting_orders()}
        outcome = apply(engine, op, ids)
        ids.extend(e.order_id for e in outcome.events if isinstance(e, Accepted))
        executions = of_type(outcome, Execution)
        maker_keys = [keys[e.maker_id] for e in executions]
        assert maker_keys == sorted(maker_keys)
        for execution in executions:
            maker_side = execution.maker_side
            for other in engine.resting_orders(maker_side):
                if other.order_id != execution.maker_id and other.order_id in keys:
                    assert keys[other.order_id] > keys[execution.maker_id], (other, execution)


pre_open_orders = st.lists(
    st.tuples(st.sampled_from([BUY, SELL]), st.integers(0, 10), st.integers(1, 9)), min_size=1, max_size=30
)


@settings(max_examples=200, deadline=None)
@given(orders=pre_open_orders, ref_ticks=st.integers(-3, 13))
def test_opening_auction_trades_the_maximum_volume_at_one_price_and_leaves_no_cross(orders, ref_ticks):
    engine = make_engine(Phase.PRE_OPEN, reference_price=BASE + ref_ticks * TICK)
    for n, (side, ticks, qty) in enumerate(orders):
        engine.submit(f"o{n}", "", side, D(qty), BASE + ticks * TICK)  # distinct owners: no STP
    book = [(o.side, o.price, o.leaves) for o in engine.resting_orders()]

    def volume_at(price: Decimal) -> Decimal:
        demand = sum((q for s, p, q in book if s is BUY and p >= price), D(0))
        supply = sum((q for s, p, q in book if s is SELL and p <= price), D(0))
        return min(demand, supply)

    best = max(volume_at(BASE + t * TICK) for t in range(0, 11))
    outcome = engine.set_phase(Phase.OPEN)
    executions = of_type(outcome, Execution)
    assert sum((e.qty for e in executions), D(0)) == best
    assert len({e.price for e in executions}) <= 1
    engine.check_invariants()  # not crossed after the auction
