"""RecordedSessionDriver: recorded session changes drive the runtime at their recorded times."""

from __future__ import annotations

from engine.clock import SimClock
from engine.model import Phase, SessionState
from engine.sessions import RecordedSessionDriver

PRE = SessionState(Phase.PRE_OPEN, accepts_new=True, accepts_modify_cancel=True, trading_day="2026-11-23")
OPEN = SessionState(Phase.OPEN, True, True, True, "2026-11-23", {"notice": "late open"})
CLOSED = SessionState(Phase.CLOSED, trading_day="2026-11-23")


def test_changes_arrive_at_their_times_with_their_flags() -> None:
    clock = SimClock(1_000)
    seen: list[tuple[int, SessionState, SessionState]] = []
    driver = RecordedSessionDriver([(3_000, OPEN), (2_000, PRE), (4_000, CLOSED)], clock,
                                   lambda old, new: seen.append((clock.now_ns(), old, new)))
    driver.start()
    assert seen == [] and driver.next_transition_ns == 2_000
    while clock.advance():
        pass
    assert [(t, new.phase) for t, _, new in seen] == [(2_000, Phase.PRE_OPEN), (3_000, Phase.OPEN),
                                                       (4_000, Phase.CLOSED)]
    assert seen[1][2].flags == {"notice": "late open"} and seen[1][1] is PRE
    assert driver.state is CLOSED and driver.next_transition_ns is None


def test_a_start_after_changes_applies_the_last_one_at_once() -> None:
    clock = SimClock(2_500)
    seen: list[SessionState] = []
    driver = RecordedSessionDriver([(2_000, PRE), (3_000, OPEN)], clock, lambda old, new: seen.append(new))
    driver.start()
    assert seen == [PRE]
    driver.stop()
    while clock.advance():
        pass
    assert seen == [PRE]  # stopped: nothing more
