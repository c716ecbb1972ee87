"""The simulated clock: deterministic order, never backwards."""

from engine.clock import SimClock


def test_timers_run_in_time_order_then_schedule_order():
    clock = SimClock(1_000)
    seen = []
    clock.call_at(3_000, seen.append, "c")
    clock.call_at(2_000, seen.append, "a")
    clock.call_at(2_000, seen.append, "b")
    while clock.advance():
        pass
    assert seen == ["a", "b", "c"]
    assert clock.now_ns() == 3_000


def test_advance_stops_at_the_limit_and_moves_time_to_it():
    clock = SimClock(0)
    seen = []
    clock.call_at(500, seen.append, 1)
    assert clock.advance(until_ns=100) is False
    assert clock.now_ns() == 100 and seen == []


def test_cancelled_timer_never_runs():
    clock = SimClock(0)
    seen = []
    clock.call_at(10, seen.append, 1).cancel()
    assert clock.advance() is False
    assert seen == []


def test_time_never_goes_back_after_a_jump_past_a_pending_timer():
    clock = SimClock(0)
    seen = []
    clock.call_at(100, lambda: seen.append(clock.now_ns()))
    clock.set_time(1_000)
    clock.advance()
    assert seen == [1_000]
