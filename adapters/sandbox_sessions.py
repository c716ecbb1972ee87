"""Session phases for the local sandboxes (Live Feed, Optimus, and the combined PSX venue).

:class:`engine.sessions.SessionDriver` schedules a non-simulated clock with APScheduler on *wall*
time, which is wrong for a :class:`~engine.clock.ScaledClock` day (speed != 1 or a start that is not
now). A sandbox follows the same :class:`~engine.sessions.SessionSchedule` on ``clock.call_at``
instead, so a scaled day runs its phases at the clock's speed. One follower tells every listener
(the paper venue, the feed server, ...) so they can never disagree on the phase.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import Any

from engine.clock import KARACHI, NS_PER_S, Clock, Timer, WallClock
from engine.model import Phase, SessionState

__all__ = ["SessionFollower", "always_open_state", "parse_start", "sandbox_start_ns"]

log = logging.getLogger("engine.sandbox.sessions")

Listener = Callable[[SessionState], None]


class SessionFollower:
    """Tells listeners each session phase on any clock that schedules (ScaledClock included).

    ``start`` applies the phase in force now, then re-arms itself at every transition the schedule
    gives; ``stop`` cancels the pending timer."""

    def __init__(self, schedule: Any, clock: Clock, listeners: Iterable[Listener]) -> None:
        self.schedule = schedule
        self.clock = clock
        self.listeners = list(listeners)
        self.state: SessionState | None = None
        self._timer: Timer | None = None

    def start(self) -> None:
        self._apply(self.schedule.state_at(self.clock.now_ns()))

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _apply(self, state: SessionState) -> None:
        self.state = state
        log.info("sandbox session: %s (%s)", state.phase.value, state.trading_day)
        for listener in self.listeners:
            listener(state)
        upcoming = self.schedule.next_transition(self.clock.now_ns())
        self._timer = None if upcoming is None else self.clock.call_at(upcoming[0], self._apply, upcoming[1])


def always_open_state(clock: Clock) -> SessionState:
    """Continuous trading, whatever the time (``--always-open``: demos outside PSX hours, tests)."""
    return SessionState(Phase.OPEN, True, True, True, clock.now().date().isoformat())


def parse_start(text: str) -> int:
    """``YYYY-MM-DDTHH:MM[:SS]`` (Asia/Karachi unless an offset is given) -> ns since the epoch."""
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=KARACHI)
    return int(moment.timestamp()) * NS_PER_S


def sandbox_start_ns(start: str | None, speed: float, always_open: bool, schedule: Any) -> int | None:
    """Where a sandbox clock starts: ``start`` if given; else now at speed 1 (or always open);
    else, at a faster speed, five minutes before the next session (a whole day to watch)."""
    if start:
        return parse_start(start)
    if speed <= 1 or always_open:
        return None
    now = WallClock().now_ns()
    day = schedule.local_date(now)
    for _ in range(30):
        window = schedule.day_window(day)
        if window is not None and window[1] > now:
            return int(max(now, window[0] - 300 * NS_PER_S))
        day += dt.timedelta(days=1)
    return None
