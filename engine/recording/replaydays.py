"""A replay's days and run window, from what the recording holds (issue 26).

A live or paper run takes its days from the calendar (``run.start`` / ``run.days``) and its window
from the session profile. A replay answers to its recording instead, read before anything is
built (:meth:`~engine.venue.VenueAdapter.recorded_days`, receive times only):

- **Days.** ``run.start`` and ``run.days`` both given: the calendar's, as any run (they win).
  Otherwise the recorded local dates that hold events, in order (a crypto recording's weekend is
  two days, a PSX recording's holidays are simply absent): from ``run.start`` (or where the
  journal's account continues) on, the first ``run.days`` of them when that is given. Recorded
  days the run leaves out are named in the log. Decision where the issue is silent: ``run.days``
  beyond what is recorded is honoured with the calendar's next trading days (logged: they
  replay nothing), never cut short.
- **Window.** With recorded sessions (those of the venue that leads them, as engine/app.py
  picks it after connect) a day runs from its first recorded session change or event to its
  last, so no recorded change or event is out of reach; otherwise the profile's phases, and the
  events a day recorded outside them are counted and named in the log, once per day, with what
  becomes of them. A day the profile has no session on runs over its recorded events.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from engine.clock import NS_PER_S
from engine.recording.format import DayTimes
from engine.sessions import SessionSchedule, TradingCalendar

log = logging.getLogger("engine")

#: the run starts this long before its first day's first phase (strategies see closed -> pre_open)
#: and ends this long after its last day's end; the engine's margins, the same for a replay
LEAD_NS = 60 * NS_PER_S
TAIL_NS = NS_PER_S


@dataclass(frozen=True)
class ReplayedVenue:
    """One replay venue's recording, as the run's days and window see it."""

    venue: str
    days: dict[dt.date, DayTimes]
    #: ``sessions`` is not ``config``: recorded session changes, if any, drive the sessions
    follows_sessions: bool

    def event_days(self) -> list[dt.date]:
        return [day for day, times in self.days.items() if times.events]


def recorded_days(venues: Sequence[ReplayedVenue]) -> list[dt.date]:
    """Every local date a replay venue holds events on, in order."""
    return sorted({day for venue in venues for day in venue.event_days()})


def pick_days(recorded: Sequence[dt.date], first: dt.date | None, count: int | None,
              calendar: TradingCalendar) -> tuple[list[dt.date], list[dt.date]]:
    """The run's days from the recorded ones: those on or after ``first``, the first ``count`` of
    them when given. Returns ``(days, padded)``: ``padded`` are the calendar's trading days added
    after the last recorded one to honour ``count`` (nothing recorded on them)."""
    days = [day for day in recorded if first is None or day >= first]
    if count is None:
        return days, []
    days = days[:count]
    padded: list[dt.date] = []
    while len(days) < count:
        after = days[-1] + dt.timedelta(days=1) if days else first
        assert after is not None  # no recorded day at all is refused before
        padded.append(calendar.next_trading_day(after))
        days.append(padded[-1])
    return days, padded


def leader(venues: Sequence[ReplayedVenue], first_day: dt.date) -> ReplayedVenue | None:
    """The replay venue whose recorded session changes drive the run: the first in the config
    that follows sessions and holds changes from the run's first day on (as the engine picks it
    after connect)."""
    for venue in venues:
        if venue.follows_sessions and any(times.sessions for day, times in venue.days.items() if day >= first_day):
            return venue
    return None


def day_window(day: dt.date, schedule: SessionSchedule, venues: Sequence[ReplayedVenue],
               leading: ReplayedVenue | None) -> tuple[int, int] | None:
    """``(first, last)`` instant of ``day`` the run must reach, before its margins: the recorded
    session changes and every replay venue's events when ``leading`` recorded changes that day,
    else the profile's phases, else (the profile has no session that day) the recorded events."""
    events = [(times.events[0], times.events[-1]) for venue in venues
              if (times := venue.days.get(day)) is not None and times.events]
    changes = leading.days.get(day) if leading is not None else None
    if changes is not None and changes.sessions:
        firsts = [changes.sessions[0], *(first for first, _ in events)]
        lasts = [changes.sessions[-1], *(last for _, last in events)]
        return min(firsts), max(lasts)
    profile = schedule.day_window(day)
    if profile is not None:
        return profile
    if events:
        return min(first for first, _ in events), max(last for _, last in events)
    return None


def log_left_out(recorded: Sequence[dt.date], days: Sequence[dt.date], why: str) -> None:
    """Name the recorded days the run's days leave out, and what becomes of their events."""
    run_days = set(days)
    before = [d for d in recorded if d < days[0]]
    between = [d for d in recorded if days[0] < d < days[-1] and d not in run_days]
    after = [d for d in recorded if d > days[-1]]
    parts = [f"{label}: {', '.join(d.isoformat() for d in group)}" for label, group in (
        ("before the first (not replayed)", before),
        ("between two of them (replayed while the session is closed)", between),
        ("after the last (never reached)", after)) if group]
    left_out = len(before) + len(between) + len(after)
    if parts:
        log.warning("replay: %s not among the run's days (%s); %s",
                    "1 recorded day is" if left_out == 1 else f"{left_out} recorded days are", why, "; ".join(parts))


def log_outside_profile(venues: Sequence[ReplayedVenue], days: Sequence[dt.date], schedule: SessionSchedule,
                        run_start: int, run_end: int) -> dict[str, int]:
    """With the profile driving the sessions: count each day's events recorded outside its window
    (a minute before the first phase to a second after the last) and name them in the log, one
    line per venue and day, with what becomes of them; returns the counts by ``venue date``."""
    counted: dict[str, int] = {}
    tz = schedule.tz
    for day in days:
        profile = schedule.day_window(day)
        for venue in venues:
            times = venue.days.get(day)
            if times is None or not times.events:
                continue
            if profile is None:  # no session that day: every event is outside it
                outside = list(times.events)
                window = "(none: the profile has no session that day)"
            else:
                start, end = profile[0] - LEAD_NS, profile[1] + TAIL_NS
                outside = times.outside(start, end)
                window = f"{_hms(start, tz)} to {_hms(end, tz)}"
            if not outside:
                continue
            early = sum(1 for when in outside if when < run_start)
            lost = sum(1 for when in outside if when > run_end)
            fates = [f"{n} {fate}" for n, fate in (
                (early, "delivered at once at the run's start"), (lost, "never reached (after the run's end)"),
                (len(outside) - early - lost, "delivered while the session is closed")) if n]
            counted[f"{venue.venue} {day}"] = len(outside)
            log.warning("replay %s %s: %d event%s recorded outside the session profile's window %s (first %s, "
                        "last %s): %s (sessions: recorded follows the recording's session changes, where it holds "
                        "them)", venue.venue, day, len(outside), "" if len(outside) == 1 else "s", window,
                        _hms(outside[0], tz), _hms(outside[-1], tz), ", ".join(fates))
    return counted


def _hms(ns: int, tz: dt.tzinfo) -> str:
    return dt.datetime.fromtimestamp(ns / NS_PER_S, tz).strftime("%H:%M:%S")
