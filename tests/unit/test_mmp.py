"""Market-maker protection: what trips it, how long it holds, and which orders it stops."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from engine.clock import NS_PER_S, SimClock
from engine.model import OrderType, Side, TimeInForce
from engine.rejects import Reject
from engine.risk.gate import OrderRequest
from engine.risk.mmp import MmpCheck, MmpConfig, MmpState, MmpTrigger

T0 = 1_795_000_000 * NS_PER_S
MS = 1_000_000
D = Decimal


def config(**kw: object) -> MmpConfig:
    base: dict[str, object] = {"interval": D(1), "frozen_time": D(2), "quantity_limit": D(10)}
    base.update(kw)
    return MmpConfig(**base)


def request(mmp: bool) -> OrderRequest:
    return OrderRequest(
        "mm", "pulse", "BTC-PERP", None, Side.SELL, D(1), D(100), OrderType.LIMIT, TimeInForce.GTC, False, "c1",
        mmp=mmp,
    )


def test_config_validates_like_the_venue() -> None:
    with pytest.raises(ValidationError):
        config(interval=D(0))
    with pytest.raises(ValidationError):
        config(frozen_time=D(-1))
    with pytest.raises(ValidationError):
        config(quantity_limit=D(0))
    with pytest.raises(ValidationError):
        config(delta_limit=D(1))
    assert config(frozen_time=D(0)).frozen_time == 0


def test_quantity_limit_triggers_and_clears_the_window() -> None:
    clock = SimClock(T0)
    state = MmpState(config(), clock)
    assert state.on_fill(D(4), T0) is None
    assert state.on_fill(D("5.9"), T0 + 500 * MS) is None
    assert not state.is_frozen(T0 + 500 * MS)
    trigger = state.on_fill(D("0.1"), T0 + 900 * MS)
    assert trigger == MmpTrigger(
        T0 + 900 * MS, T0 + 900 * MS + 2 * NS_PER_S, D(10), 3, "MMP triggered: filled 10.0 (limit 10) within 1s"
    )
    assert state.is_frozen(T0 + 900 * MS)
    assert state.triggers == 1 and state.frozen_until_ns == T0 + 2900 * MS
    assert (state.filled_qty, state.fill_count) == (0, 0)


def test_fill_count_limit_triggers() -> None:
    state = MmpState(config(fill_count_limit=3), SimClock(T0))
    assert state.on_fill(D(1), T0) is None
    assert state.on_fill(D(1), T0 + 1) is None
    trigger = state.on_fill(D(1), T0 + 2)
    assert trigger is not None and trigger.fill_count == 3 and trigger.filled_qty == 3
    assert "3 fills (limit 3)" in trigger.reason


def test_fills_older_than_the_interval_drop_out() -> None:
    state = MmpState(config(fill_count_limit=3), SimClock(T0))
    assert state.on_fill(D(6), T0) is None
    assert state.on_fill(D(1), T0 + 400 * MS) is None
    # exactly one interval later the first fill is out of (t - 1 s, t]: 1 + 6 = 7 < 10, and 2 fills < 3
    assert state.on_fill(D(6), T0 + NS_PER_S) is None
    assert (state.filled_qty, state.fill_count) == (7, 2)
    assert not state.is_frozen(T0 + NS_PER_S)
    # one nanosecond inside the window the old fill would still count
    edge = MmpState(config(), SimClock(T0))
    edge.on_fill(D(6), T0)
    assert edge.on_fill(D(4), T0 + NS_PER_S - 1) is not None


def test_freeze_ends_exactly_at_frozen_until_and_ignores_fills_meanwhile() -> None:
    clock = SimClock(T0)
    state = MmpState(config(), clock)
    trigger = state.on_fill(D(10), T0)
    assert trigger is not None and trigger.frozen_until_ns == T0 + 2 * NS_PER_S
    assert state.on_fill(D(50), T0 + NS_PER_S) is None  # frozen: not accumulated, no second trigger
    assert state.filled_qty == 0 and state.triggers == 1
    assert state.is_frozen(T0 + 2 * NS_PER_S - 1)
    assert state.remaining_ns(T0 + 2 * NS_PER_S - 1) == 1
    assert not state.is_frozen(T0 + 2 * NS_PER_S)
    assert state.frozen_until_ns is None
    clock.set_time(T0 + 2 * NS_PER_S)
    assert not state.is_frozen()  # the clock's own time works too
    assert state.on_fill(D(9), T0 + 2 * NS_PER_S) is None  # counting starts afresh after the freeze


def test_frozen_time_zero_holds_until_reset() -> None:
    state = MmpState(config(frozen_time=D(0)), SimClock(T0))
    trigger = state.on_fill(D(10), T0)
    assert trigger is not None and trigger.frozen_until_ns is None
    assert state.is_frozen(T0 + 3600 * NS_PER_S)
    assert state.remaining_ns(T0 + 3600 * NS_PER_S) is None
    state.reset()
    assert not state.is_frozen(T0 + 3600 * NS_PER_S)
    assert state.on_fill(D(9), T0 + 3600 * NS_PER_S) is None


def test_reset_forgets_the_window() -> None:
    state = MmpState(config(), SimClock(T0))
    state.on_fill(D(9), T0)
    state.reset()
    assert state.on_fill(D(9), T0 + 1) is None


def test_venue_trigger_drives_the_same_state() -> None:
    state = MmpState(config(), SimClock(T0))
    state.on_fill(D(5), T0)
    trigger = state.venue_trigger(T0 + 10, T0 + 5 * NS_PER_S)
    assert trigger.reason == "MMP triggered by the venue" and trigger.frozen_until_ns == T0 + 5 * NS_PER_S
    assert state.is_frozen(T0 + 5 * NS_PER_S - 1) and not state.is_frozen(T0 + 5 * NS_PER_S)
    assert state.triggers == 1 and state.filled_qty == 0
    # the venue's "0" and None both mean until reset; a shorter venue freeze never shortens ours
    state.venue_trigger(T0 + 6 * NS_PER_S, 0)
    assert state.is_frozen(T0 + 3600 * NS_PER_S)
    state.venue_trigger(T0 + 7 * NS_PER_S, T0 + 8 * NS_PER_S)
    assert state.frozen_until_ns is None and state.triggers == 3
    state.reset()
    assert not state.is_frozen(T0 + 7 * NS_PER_S)


def test_check_refuses_only_mmp_orders_while_frozen() -> None:
    clock = SimClock(T0)
    state = MmpState(config(), clock)
    check = MmpCheck(state)
    assert check.check(request(mmp=True)) is None
    state.on_fill(D(10), T0)
    clock.set_time(T0 + 750 * MS)
    assert check.check(request(mmp=False)) is None
    rejection = check.check(request(mmp=True))
    assert rejection is not None and rejection.code == Reject.MMP_FROZEN
    assert "filled 10 (limit 10)" in rejection.reason
    assert "for another 1250 ms or until ctx.reset_mmp()" in rejection.reason
    clock.set_time(T0 + 2 * NS_PER_S)
    assert check.check(request(mmp=True)) is None


def test_check_while_frozen_until_reset_says_so() -> None:
    clock = SimClock(T0)
    state = MmpState(config(frozen_time=D(0)), clock)
    state.venue_trigger(T0, None)
    rejection = MmpCheck(state).check(request(mmp=True))
    assert rejection is not None
    assert rejection.reason == "MMP triggered by the venue; MMP orders refused until ctx.reset_mmp()"


def test_fill_quantity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MmpState(config(), SimClock(T0)).on_fill(D(0), T0)
