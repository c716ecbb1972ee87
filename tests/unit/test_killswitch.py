"""The kill switch: what escalates it, that it only escalates, what a new day undoes, and that in
REDUCING no admitted order can grow or flip a position."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from engine.clock import NS_PER_S, SimClock
from engine.model import OrderType, Side, TimeInForce
from engine.rejects import Reject
from engine.risk.gate import OrderRequest
from engine.risk.killswitch import (
    KillSwitch,
    KillSwitchCheck,
    KillSwitchConfig,
    StrategyLossLimit,
    TradingState,
    Transition,
)

T0 = 1_795_000_000 * NS_PER_S
D = Decimal
ACTIVE, REDUCING, HALTED = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED


def switch(**kw: object) -> KillSwitch:
    return KillSwitch(KillSwitchConfig(**kw), SimClock(T0))


def request(side: Side, qty: int | Decimal, amend_of: object = None, symbol: str = "MEBL") -> OrderRequest:
    return OrderRequest(
        "mm", "psx", symbol, None, side, D(qty), D(100), OrderType.LIMIT, TimeInForce.DAY, False, "c1",
        amend_of=amend_of,  # type: ignore[arg-type]
    )


def test_config_forbids_unknown_keys_and_bad_numbers() -> None:
    with pytest.raises(ValidationError):
        KillSwitchConfig(daily_loss=D(5))  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        KillSwitchConfig(daily_loss_limit=D(-5))
    with pytest.raises(ValidationError):
        KillSwitchConfig(reducing_at_fraction=D("1.2"))
    with pytest.raises(ValidationError):
        KillSwitchConfig(reject_rate={"max_rejects": 3, "window_s": 10, "action": "stop"})


def test_daily_loss_limit_halts_and_notifies_once() -> None:
    ks = switch(daily_loss_limit=D(1000))
    seen: list[Transition] = []
    ks.on_change.append(seen.append)
    assert ks.on_pnl(D(500)) is None
    assert ks.on_pnl(D("-999.99")) is None and ks.state is ACTIVE
    transition = ks.on_pnl(D(-1000))
    assert transition == Transition(T0, HALTED, "daily loss 1000 reached the limit 1000")
    assert ks.state is HALTED and ks.halted and ks.reason == transition.reason
    assert ks.on_pnl(D(-2000)) is None
    assert seen == [transition] and ks.history == [transition]


def test_loss_action_reducing() -> None:
    ks = switch(daily_loss_limit=D(1000), loss_action="reducing")
    assert ks.on_pnl(D(-1500)) is not None
    assert ks.state is REDUCING


def test_reducing_fraction_then_halt() -> None:
    ks = switch(daily_loss_limit=D(1000), reducing_at_fraction=D("0.8"))
    assert ks.on_pnl(D(-799)) is None
    first = ks.on_pnl(D(-800))
    assert first is not None and first.state is REDUCING and "0.8 of the limit 1000" in first.reason
    assert ks.on_pnl(D(-900)) is None
    second = ks.on_pnl(D(-1000))
    assert second is not None and second.state is HALTED
    assert [h.state for h in ks.history] == [REDUCING, HALTED]


def test_a_jump_past_both_thresholds_goes_straight_to_halted() -> None:
    ks = switch(daily_loss_limit=D(1000), reducing_at_fraction=D("0.8"))
    transition = ks.on_pnl(D(-1500))
    assert transition is not None and transition.state is HALTED
    assert len(ks.history) == 1


def test_drawdown_is_measured_from_the_days_peak() -> None:
    ks = switch(max_drawdown=D(300))
    assert ks.on_pnl(D(500)) is None
    assert ks.on_pnl(D(201)) is None  # 299 off the peak
    assert ks.peak_pnl == 500
    transition = ks.on_pnl(D(200))
    assert transition is not None and transition.state is HALTED
    assert transition.reason == "drawdown 300 from the day's peak 500 reached 300"
    flat_start = switch(max_drawdown=D(300))
    assert flat_start.on_pnl(D(-300)) is not None  # the day starts at 0, so that is the first peak


def test_reject_rate_breaker_counts_a_sliding_window() -> None:
    ks = switch(reject_rate={"max_rejects": 3, "window_s": 10, "action": "reducing"})
    for ts in (T0, T0 + 1, T0 + 2):
        ks.on_order(ts)
    assert ks.on_reject(T0) is None
    assert ks.on_reject(T0 + 4 * NS_PER_S) is None
    assert ks.on_reject(T0 + 10 * NS_PER_S) is None  # the first reject just left (t - 10 s, t]
    transition = ks.on_reject(T0 + 11 * NS_PER_S)
    assert transition is not None and transition.state is REDUCING
    assert ks.reason == "3 rejects (limit 3) within 10s (0 orders sent)"
    assert switch().on_reject(T0) is None  # no breaker configured


def test_only_escalates() -> None:
    ks = switch(daily_loss_limit=D(100))
    ks.on_pnl(D(-100))
    assert ks.on_pnl(D(1000)) is None and ks.state is HALTED  # a recovery does not switch trading back on
    assert ks.trigger(REDUCING, "operator") is None and ks.state is HALTED
    with pytest.raises(ValueError):
        ks.trigger(ACTIVE, "operator")
    manual = switch()
    assert manual.trigger("reducing", "operator says so") == Transition(T0, REDUCING, "operator says so")
    assert manual.source == "manual"
    assert manual.trigger(HALTED, "still bad") is not None
    assert [h.state for h in manual.history] == [REDUCING, HALTED]


def test_reset_day_undoes_only_daily_triggers() -> None:
    daily = switch(daily_loss_limit=D(100), max_drawdown=D(50))
    daily.on_pnl(D(-100))
    back = daily.reset_day()
    assert back is not None and back.state is ACTIVE and daily.state is ACTIVE
    assert daily.peak_pnl == 0 and daily.on_pnl(D(-49)) is None  # a fresh day: fresh peak and loss

    drawdown = switch(max_drawdown=D(50))
    drawdown.on_pnl(D(100))
    drawdown.on_pnl(D(50))
    assert drawdown.state is HALTED
    drawdown.reset_day()
    assert drawdown.state is ACTIVE

    manual = switch()
    manual.trigger(HALTED, "operator")
    assert manual.reset_day() is None and manual.state is HALTED

    rejects = switch(reject_rate={"max_rejects": 1, "window_s": 1})
    rejects.on_reject(T0)
    assert rejects.reset_day() is None and rejects.state is HALTED


def test_reset_day_falls_back_to_a_persistent_trigger_not_below_it() -> None:
    ks = switch(daily_loss_limit=D(100))
    ks.trigger(REDUCING, "operator: wind down")
    ks.on_pnl(D(-100))
    assert ks.state is HALTED
    back = ks.reset_day()
    assert back == Transition(T0, REDUCING, "operator: wind down")
    assert ks.state is REDUCING and ks.source == "manual"
    # a persistent trigger arriving while a daily one already holds the state takes it over
    both = switch(daily_loss_limit=D(100))
    both.on_pnl(D(-100))
    both.trigger(HALTED, "operator")
    assert both.reset_day() is None and both.state is HALTED and both.reason == "operator"


# --- KillSwitchCheck ----------------------------------------------------------------------------


def make_check(state: TradingState, position: int, open_buys: int = 0, open_sells: int = 0) -> KillSwitchCheck:
    ks = switch()
    if state is not ACTIVE:
        ks.trigger(state, "test trigger")
    opens = {Side.BUY: D(open_buys), Side.SELL: D(open_sells)}
    return KillSwitchCheck(ks, lambda strategy, symbol: D(position), lambda strategy, symbol, side: opens[side])


def test_active_allows_anything() -> None:
    assert make_check(ACTIVE, 0).check(request(Side.BUY, 1000)) is None


def test_halted_refuses_everything_with_the_reason() -> None:
    rejection = make_check(HALTED, 100).check(request(Side.SELL, 1))
    assert rejection is not None and rejection.code == Reject.TRADING_HALTED
    assert rejection.reason == "trading halted by the kill switch: test trigger"


def test_reducing_long_allows_sells_up_to_position_minus_open_sells() -> None:
    check = make_check(REDUCING, 100, open_sells=30, open_buys=5)
    assert check.check(request(Side.SELL, 70)) is None
    rejection = check.check(request(Side.SELL, 71))
    assert rejection is not None and rejection.code == Reject.ACCOUNT_REDUCING
    assert "would cross zero" in rejection.reason and "leaves 70" in rejection.reason
    buy = check.check(request(Side.BUY, 1))
    assert buy is not None and buy.code == Reject.ACCOUNT_REDUCING and "grow" in buy.reason


def test_reducing_short_allows_buys_up_to_position_minus_open_buys() -> None:
    check = make_check(REDUCING, -50, open_buys=20)
    assert check.check(request(Side.BUY, 30)) is None
    assert check.check(request(Side.BUY, 31)) is not None
    assert check.check(request(Side.SELL, 1)) is not None


def test_reducing_flat_allows_nothing() -> None:
    check = make_check(REDUCING, 0)
    assert check.check(request(Side.BUY, 1)) is not None
    assert check.check(request(Side.SELL, 1)) is not None


def test_reducing_amend_is_judged_without_its_own_open_quantity() -> None:
    # long 100; one open sell of 40 (10 filled already, so 30 leaves) is being amended
    check = make_check(REDUCING, 100, open_sells=30)
    live = SimpleNamespace(leaves_qty=D(30), cum_qty=D(10))
    assert check.check(request(Side.SELL, 110, amend_of=live)) is None  # new leaves 100 = the whole position
    assert check.check(request(Side.SELL, 111, amend_of=live)) is not None


def test_strategy_loss_limit() -> None:
    limit = StrategyLossLimit(D(500))
    assert not limit.breached(D("-499.99"))
    assert limit.breached(D(-500))
    assert not limit.breached(D(10_000))
    with pytest.raises(ValueError):
        StrategyLossLimit(D(0))


# --- property: REDUCING never grows or flips ----------------------------------------------------

actions = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 120)),
        st.tuples(st.just("fill"), st.integers(0, 50), st.integers(1, 120)),
        st.tuples(st.just("cancel"), st.integers(0, 50), st.just(0)),
        st.tuples(st.just("amend"), st.integers(0, 50), st.integers(1, 240)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(start=st.integers(-100, 100), steps=actions)
def test_reducing_admits_no_sequence_that_grows_or_flips_the_position(start: int, steps: list[tuple]) -> None:
    ks = switch()
    ks.trigger(REDUCING, "test")
    position = D(start)
    orders: list[SimpleNamespace] = []  # open orders: side, qty, cum_qty, leaves_qty

    def open_qty(strategy: str, symbol: str, side: Side) -> Decimal:
        return sum((o.leaves_qty for o in orders if o.side is side), D(0))

    check = KillSwitchCheck(ks, lambda strategy, symbol: position, open_qty)
    for kind, a, b in steps:
        before = position
        if kind == "submit":
            if check.check(request(a, b)) is None:
                orders.append(SimpleNamespace(side=a, qty=D(b), cum_qty=D(0), leaves_qty=D(b)))
        elif orders and kind == "fill":
            order = orders[a % len(orders)]
            qty = min(D(b), order.leaves_qty)
            order.cum_qty += qty
            order.leaves_qty -= qty
            position += qty * order.side.sign
            if not order.leaves_qty:
                orders.remove(order)
        elif orders and kind == "cancel":
            orders.pop(a % len(orders))
        elif orders and kind == "amend":
            order = orders[a % len(orders)]
            new_total = order.cum_qty + D(b)
            if check.check(request(order.side, new_total, amend_of=order)) is None:
                order.qty, order.leaves_qty = new_total, D(b)
        # never grows, never flips, and even if every open order filled it still would not flip
        assert abs(position) <= abs(before)
        assert position * start >= 0
        worst = position - open_qty("mm", "MEBL", Side.SELL) + open_qty("mm", "MEBL", Side.BUY)
        if start > 0:
            assert open_qty("mm", "MEBL", Side.BUY) == 0 and worst >= 0
        elif start < 0:
            assert open_qty("mm", "MEBL", Side.SELL) == 0 and worst <= 0
        else:
            assert not orders and position == 0
