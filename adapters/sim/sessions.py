"""Session phases for the local sandboxes (Live Feed, Optimus, and the combined PSX venue).

A sandbox follows the same :class:`~engine.sessions.SessionSchedule` with the engine's own
:class:`~engine.sessions.SessionDriver` (``clock.call_at`` on a simulated or scaled clock, APScheduler
on the wall clock), so a sandbox and an engine sharing a clock change phase at the same instants.
One follower tells every listener (the paper venue, the feed server, ...) so they can never
disagree on the phase.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import Any

from engine.model import Phase, SessionState
from engine.venue.clock import KARACHI, NS_PER_S, Clock, WallClock
from engine.venue.sessions import SessionDriver

__all__ = ["SessionFollower", "always_open_state", "parse_start", "sandbox_start_ns"]

log = logging.getLogger("engine.sandbox.sessions")

Listener = Callable[[SessionState], None]


class SessionFollower:
    """Tells listeners each session phase, the one in force at ``start`` included, on any clock.

    The engine's :class:`~engine.sessions.SessionDriver` does the scheduling (and replays phases a
    late wake-up missed); the follower only fans each state out."""

    def __init__(self, schedule: Any, clock: Clock, listeners: Iterable[Listener]) -> None:
        self.listeners = list(listeners)
        self.state: SessionState | None = None
        self._driver = SessionDriver(schedule, clock, lambda _old, new: self._apply(new))

    def start(self) -> None:
        self._driver.start()
        if self.state is None:  # the driver reports changes: a sandbox starting closed is told so too
            self._apply(self._driver.state)

    def stop(self) -> None:
        self._driver.stop()

    def _apply(self, state: SessionState) -> None:
        self.state = state
        log.info("sandbox session: %s (%s)", state.phase.value, state.trading_day)
        for listener in self.listeners:
            listener(state)


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
