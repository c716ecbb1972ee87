"""PSX trading calendar and session phases: which days trade, which phase runs when, and a driver
that tells the engine when the phase changes.

Why it is shaped this way (see /work/shared/PSX_RULES.md sections 1, 3 and 4):

- Holidays come from the maintained ``holidays.financial_holidays("XKAR")`` source plus config
  overrides from PSX notices; no holiday list is typed into code.
- Session times are data (``engine/data/sessions.yaml`` plus config profiles), because PSX changes
  them (Ramadan notices, Friday split, post-close minutes of low confidence).
- Time only ever comes from the caller or the :class:`~engine.clock.Clock`, so a simulated day runs
  the same code as a live one.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import yaml
from pydantic import BaseModel, ConfigDict, Field, RootModel, TypeAdapter, field_validator, model_validator

from engine.clock import Clock, Timer, local_date
from engine.model import Phase, SessionState

log = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000
NS_PER_US = 1_000
WEEKEND = frozenset({5, 6})  # Saturday, Sunday (PSX_RULES rule 5)
NO_PROVIDER = "none"  # sessions.holidays.provider for a venue with no holiday calendar
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_CLOSED_RUN_DAYS = 370  # no real calendar is closed this long: a longer run means broken config
DEFAULT_SEARCH_DAYS = 30  # how far next_transition looks ahead (the longest PSX closure is ~10 days)
SHIPPED_PROFILES_RESOURCE = "data/sessions.yaml"
_LOCAL_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# --------------------------------------------------------------------------------------------
# Config models (the agreed interface: HolidaysConfig and SessionsConfig keep their names/fields)


def _supported_providers() -> frozenset[str]:
    return frozenset(holidays.list_supported_financial())


class HolidaysConfig(BaseModel):
    """Trading days = weekdays minus the maintained holiday source, plus/minus overrides."""

    model_config = ConfigDict(extra="forbid")
    provider: str = "XKAR"  # holidays.financial_holidays("XKAR"); "none": no holidays (a 24/7 venue)
    # the weekdays that trade: PSX mon_fri; a crypto venue that never closes mon_sun
    trading_weekdays: str = "mon_fri"
    add: list[dt.date] = Field(default_factory=list)  # extra closures (PSX notices)
    remove: list[dt.date] = Field(default_factory=list)  # days the provider lists that PSX opens
    # Special sessions on days that are otherwise closed (e.g. a notified Saturday session).
    extra_sessions: list[dt.date] = Field(default_factory=list)

    @field_validator("provider")
    @classmethod
    def _provider_is_known(cls, provider: str) -> str:
        if provider != NO_PROVIDER and provider not in _supported_providers():
            raise ValueError(
                f"sessions.holidays.provider: unknown financial holiday provider {provider!r} "
                f"(holidays.list_supported_financial() has e.g. 'XKAR' for PSX; 'none' for no holidays)"
            )
        return provider

    @field_validator("trading_weekdays")
    @classmethod
    def _weekdays_parse(cls, group: str) -> str:
        _parse_weekday_group(group)
        return group

    @model_validator(mode="after")
    def _overrides_do_not_contradict(self) -> HolidaysConfig:
        closed = set(self.add)
        for key in ("remove", "extra_sessions"):
            both = sorted(closed.intersection(getattr(self, key)))
            if both:
                days = ", ".join(d.isoformat() for d in both)
                raise ValueError(f"sessions.holidays: {days} listed in both 'add' (closed) and {key!r} (open)")
        return self


def _parse_weekday_group(group: str) -> frozenset[int]:
    """'mon_thu' -> Mon..Thu, 'fri' -> Fri, 'mon,wed' -> Mon and Wed (0 = Monday)."""
    days: set[int] = set()
    for raw in group.split(","):
        item = raw.strip().lower()
        first, _, last = item.partition("_")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES):
            raise ValueError(
                f"weekday group {group!r}: {item!r} is not a day or range of {', '.join(DAY_NAMES)} (e.g. 'mon_thu')"
            )
        lo = DAY_NAMES.index(first)
        hi = DAY_NAMES.index(last) if last else lo
        if hi < lo:
            raise ValueError(f"weekday group {group!r}: range {item!r} runs backwards (write Mon..Sun order)")
        days.update(range(lo, hi + 1))
    return frozenset(days)


def _hhmm(clock_time: dt.time) -> str:
    """'09:15' for whole minutes, full precision otherwise (for error messages)."""
    whole_minute = clock_time.second == 0 and clock_time.microsecond == 0
    return clock_time.isoformat("minutes" if whole_minute else "auto")


class PhaseDef(BaseModel):
    """One phase of a trading day, in venue-local time. Flags default to False so a missing flag
    never lets an order through."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    phase: Phase
    start: dt.time
    end: dt.time
    accepts_new: bool = False
    accepts_modify_cancel: bool = False
    matches: bool = False
    closing_price_only: bool = False

    @field_validator("start", "end", mode="before")
    @classmethod
    def _parse_local_time(cls, value: Any) -> Any:
        if isinstance(value, dt.time):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(
                f"got the number {value}: quote times as 'HH:MM' (YAML 1.1 reads unquoted 15:30 as 930)"
            )
        if not isinstance(value, str) or not _LOCAL_TIME.match(value):
            raise ValueError(f"time must be a 'HH:MM' (or 'HH:MM:SS[.ffffff]') string, got {value!r}")
        return dt.time.fromisoformat(value)

    @model_validator(mode="after")
    def _starts_before_it_ends(self) -> PhaseDef:
        if self.start >= self.end:
            raise ValueError(f"phase {self.describe()}: start must be before end (phases cannot cross midnight)")
        return self

    def describe(self) -> str:
        return f"{self.phase.value} {_hhmm(self.start)}-{_hhmm(self.end)}"


class ProfileDef(RootModel[dict[str, list[PhaseDef]]]):
    """A session profile: weekday group (``mon_thu``, ``fri``, ``mon,wed``) -> ordered phases.
    Weekdays not listed have no session."""

    @model_validator(mode="after")
    def _groups_and_phases_are_consistent(self) -> ProfileDef:
        owner: dict[int, str] = {}
        for group, phases in self.root.items():
            for day in _parse_weekday_group(group):
                if day in owner:
                    raise ValueError(f"weekday {DAY_NAMES[day]!r} is in both groups {owner[day]!r} and {group!r}")
                owner[day] = group
            for index in range(1, len(phases)):
                before, this = phases[index - 1], phases[index]
                if this.start < before.start:
                    raise ValueError(
                        f"group {group!r}: phase {index} ({this.describe()}) is out of order: "
                        f"it starts before phase {index - 1} ({before.describe()})"
                    )
                if this.start < before.end:
                    raise ValueError(
                        f"group {group!r}: phase {index} ({this.describe()}) overlaps "
                        f"phase {index - 1} ({before.describe()})"
                    )
        return self

    def phases_on(self, weekday: int) -> list[PhaseDef]:
        """The phases for a weekday (0 = Monday); empty when the profile has no session that day."""
        for group, phases in self.root.items():
            if weekday in _parse_weekday_group(group):
                return list(phases)
        return []


class ScheduleEntry(BaseModel):
    """A dated profile switch, e.g. the yearly Ramadan notice. ``to`` is inclusive; open-ended if None."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    profile: str
    from_: dt.date = Field(alias="from")
    to: dt.date | None = None
    source: str = ""  # the PSX notice it comes from, for audit

    @model_validator(mode="after")
    def _window_is_forward(self) -> ScheduleEntry:
        if self.to is not None and self.to < self.from_:
            raise ValueError(f"schedule entry {self.profile!r}: 'to' {self.to} is before 'from' {self.from_}")
        return self

    def covers(self, day: dt.date) -> bool:
        return self.from_ <= day and (self.to is None or day <= self.to)


_SHIPPED_ADAPTER = TypeAdapter(dict[str, ProfileDef])


@functools.cache
def shipped_profiles() -> dict[str, ProfileDef]:
    """The profiles in ``engine/data/sessions.yaml`` (validated once, then cached)."""
    text = resources.files("engine").joinpath(SHIPPED_PROFILES_RESOURCE).read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    return _SHIPPED_ADAPTER.validate_python(data.get("profiles") or {})


class SessionsConfig(BaseModel):
    """Which session profile applies when, in which time zone, on which trading calendar."""

    model_config = ConfigDict(extra="forbid")
    profile: str = "broker-doc"  # default profile when no dated schedule entry covers a day
    timezone: str = "Asia/Karachi"
    holidays: HolidaysConfig = Field(default_factory=HolidaysConfig)
    # Extra profiles (same shape as engine/data/sessions.yaml); a name here replaces a shipped one.
    profiles: dict[str, ProfileDef] = Field(default_factory=dict)
    schedule: list[ScheduleEntry] = Field(default_factory=list)  # later entries win

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"sessions.timezone: unknown time zone {name!r}") from exc
        return name

    @model_validator(mode="after")
    def _profile_names_exist(self) -> SessionsConfig:
        known = set(shipped_profiles()) | set(self.profiles)
        listing = ", ".join(sorted(known))
        if self.profile not in known:
            raise ValueError(f"sessions.profile: unknown profile {self.profile!r} (known: {listing})")
        for index, entry in enumerate(self.schedule):
            if entry.profile not in known:
                raise ValueError(
                    f"sessions.schedule[{index}].profile: unknown profile {entry.profile!r} (known: {listing})"
                )
        return self

    def all_profiles(self) -> dict[str, ProfileDef]:
        """Shipped profiles overlaid with the config's own."""
        return {**shipped_profiles(), **self.profiles}


# --------------------------------------------------------------------------------------------
# Trading calendar


class TradingCalendar:
    """Which dates PSX trades: weekdays minus provider holidays, adjusted by config overrides.

    Precedence: ``add`` (closed) > ``extra_sessions`` (open) > a weekday outside
    ``trading_weekdays`` (closed) > ``remove`` (open) > provider holiday (closed) > open.
    """

    def __init__(self, config: HolidaysConfig | None = None) -> None:
        self.config = config if config is not None else HolidaysConfig()
        provider = self.config.provider
        if provider != NO_PROVIDER and provider not in _supported_providers():
            raise ValueError(f"unknown financial holiday provider {provider!r} (PSX is 'XKAR')")
        self._closed_weekdays = frozenset(range(7)) - _parse_weekday_group(self.config.trading_weekdays)
        self._closures = frozenset(self.config.add)
        self._reopened = frozenset(self.config.remove)
        self._extra_sessions = frozenset(self.config.extra_sessions)
        self._by_year: dict[int, holidays.HolidayBase] = {}

    def _provider_year(self, year: int) -> holidays.HolidayBase:
        """The provider's holidays for one year, built once (building is the slow part)."""
        listed = self._by_year.get(year)
        if listed is None:
            provider = self.config.provider
            listed = holidays.HolidayBase() if provider == NO_PROVIDER else holidays.financial_holidays(provider,
                                                                                                         years=year)
            self._by_year[year] = listed
        return listed

    def is_trading_day(self, day: dt.date) -> bool:
        day = _as_date(day)
        if day in self._closures:
            return False
        if day in self._extra_sessions:
            return True
        if day.weekday() in self._closed_weekdays:
            return False
        if day in self._reopened:
            return True
        return day not in self._provider_year(day.year)

    def holiday_name(self, day: dt.date) -> str | None:
        """Why the exchange is closed on ``day`` (provider name or the override), None if it trades
        or is only a plain weekend."""
        day = _as_date(day)
        if day in self._closures:
            return "Closure (sessions.holidays.add)"
        if day in self._extra_sessions or day in self._reopened:
            return None
        return self._provider_year(day.year).get(day)

    def next_trading_day(self, day: dt.date, include_self: bool = True) -> dt.date:
        """The first trading day on or after ``day`` (strictly after when ``include_self`` is False)."""
        current = _as_date(day) if include_self else _as_date(day) + dt.timedelta(days=1)
        for _ in range(MAX_CLOSED_RUN_DAYS):
            if self.is_trading_day(current):
                return current
            current += dt.timedelta(days=1)
        raise LookupError(f"no trading day within {MAX_CLOSED_RUN_DAYS} days of {day}: check sessions.holidays")

    def add_trading_days(self, day: dt.date, n: int) -> dt.date:
        """Step ``n`` trading days from ``day`` (T+N settlement); negative ``n`` steps back.
        ``n == 0`` gives ``day`` if it trades, else the next trading day."""
        day = _as_date(day)
        if n == 0:
            return self.next_trading_day(day)
        step = dt.timedelta(days=1 if n > 0 else -1)
        remaining = abs(n)
        closed_run = 0
        while remaining:
            day += step
            if self.is_trading_day(day):
                remaining -= 1
                closed_run = 0
            else:
                closed_run += 1
                if closed_run > MAX_CLOSED_RUN_DAYS:
                    raise LookupError(f"no trading day within {MAX_CLOSED_RUN_DAYS} days of {day}")
        return day


def _as_date(day: dt.date) -> dt.date:
    return day.date() if isinstance(day, dt.datetime) else day


# --------------------------------------------------------------------------------------------
# Session schedule


def _to_ns(moment: dt.datetime) -> int:
    """Exact int ns since the epoch for an aware datetime (no float rounding)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * NS_PER_US


def _from_ns(ts_ns: int, tz: dt.tzinfo) -> dt.datetime:
    seconds, rest = divmod(ts_ns, NS_PER_S)
    return dt.datetime.fromtimestamp(seconds, tz) + dt.timedelta(microseconds=rest // NS_PER_US)


@dataclass(frozen=True, slots=True)
class ScheduledPhase:
    """One phase on one date, as aware datetimes and as int ns UTC (half-open [start, end))."""

    phase: Phase
    start: dt.datetime
    end: dt.datetime
    start_ns: int
    end_ns: int
    accepts_new: bool
    accepts_modify_cancel: bool
    matches: bool
    closing_price_only: bool
    trading_day: dt.date
    profile: str

    @property
    def transition_key(self) -> tuple[Phase, bool, bool, bool, bool]:
        """What a strategy can observe; a change in it is a transition."""
        return (self.phase, self.accepts_new, self.accepts_modify_cancel, self.matches, self.closing_price_only)

    def contains(self, ts_ns: int) -> bool:
        return self.start_ns <= ts_ns < self.end_ns

    def to_state(self) -> SessionState:
        return SessionState(
            phase=self.phase,
            accepts_new=self.accepts_new,
            accepts_modify_cancel=self.accepts_modify_cancel,
            matches=self.matches,
            trading_day=self.trading_day.isoformat(),
            flags={"closing_price_only": self.closing_price_only, "profile": self.profile},
        )


def state_key(state: SessionState) -> tuple[Phase, bool, bool, bool, bool]:
    """The observable part of a state (ignores the trading-day label and the profile name)."""
    return (
        state.phase,
        state.accepts_new,
        state.accepts_modify_cancel,
        state.matches,
        bool(state.flags.get("closing_price_only", False)),
    )


class SessionSchedule:
    """Phases per date and the session state at any instant, from a :class:`SessionsConfig`.

    Pure: it never reads the time; callers pass dates or ns timestamps.
    """

    def __init__(
        self,
        config: SessionsConfig | None = None,
        *,
        calendar: TradingCalendar | None = None,
        search_days: int = DEFAULT_SEARCH_DAYS,
    ) -> None:
        self.config = config if config is not None else SessionsConfig()
        self.tz = ZoneInfo(self.config.timezone)
        self.calendar = calendar if calendar is not None else TradingCalendar(self.config.holidays)
        self.profiles = self.config.all_profiles()
        self.search_days = search_days
        self._days: dict[dt.date, tuple[ScheduledPhase, ...]] = {}
        self._starts: dict[dt.date, list[int]] = {}

    def profile_name_for(self, day: dt.date) -> str:
        """The profile in force on ``day``: the last dated entry covering it, else the default."""
        for entry in reversed(self.config.schedule):
            if entry.covers(day):
                return entry.profile
        return self.config.profile

    def local_date(self, ts_ns: int) -> dt.date:
        return local_date(ts_ns, self.tz)

    def _at(self, day: dt.date, clock_time: dt.time) -> dt.datetime:
        return dt.datetime.combine(day, clock_time, tzinfo=self.tz)

    def _build_day(self, day: dt.date) -> tuple[ScheduledPhase, ...]:
        profile_name = self.profile_name_for(day)
        defs = self.profiles[profile_name].phases_on(day.weekday()) if self.calendar.is_trading_day(day) else []
        day_start = self._at(day, dt.time(0))
        day_end = self._at(day + dt.timedelta(days=1), dt.time(0))

        def make(phase: Phase, start: dt.datetime, end: dt.datetime, spec: PhaseDef | None) -> ScheduledPhase:
            return ScheduledPhase(
                phase=phase,
                start=start,
                end=end,
                start_ns=_to_ns(start),
                end_ns=_to_ns(end),
                accepts_new=spec.accepts_new if spec else False,
                accepts_modify_cancel=spec.accepts_modify_cancel if spec else False,
                matches=spec.matches if spec else False,
                closing_price_only=spec.closing_price_only if spec else False,
                trading_day=day,
                profile=profile_name,
            )

        phases: list[ScheduledPhase] = []
        cursor = day_start
        for spec in defs:
            start, end = self._at(day, spec.start), self._at(day, spec.end)
            if start > cursor:
                phases.append(make(Phase.CLOSED, cursor, start, None))
            phases.append(make(spec.phase, start, end, spec))
            cursor = end
        if cursor < day_end:
            phases.append(make(Phase.CLOSED, cursor, day_end, None))
        return tuple(phases)

    def _day(self, day: dt.date) -> tuple[ScheduledPhase, ...]:
        phases = self._days.get(day)
        if phases is None:
            phases = self._build_day(day)
            self._days[day] = phases
            self._starts[day] = [p.start_ns for p in phases]
        return phases

    def phases_for(self, day: dt.date) -> list[ScheduledPhase]:
        """Every phase of ``day`` from local midnight to midnight, gaps filled with ``closed``;
        a non-trading day is one ``closed`` phase."""
        return list(self._day(_as_date(day)))

    def phase_at(self, ts_ns: int) -> ScheduledPhase:
        day = self.local_date(ts_ns)
        phases = self._day(day)
        return phases[bisect.bisect_right(self._starts[day], ts_ns) - 1]

    def state_at(self, ts_ns: int) -> SessionState:
        """The session state in force at ``ts_ns`` (``trading_day`` is the local date)."""
        return self.phase_at(ts_ns).to_state()

    def next_transition(self, after_ns: int) -> tuple[int, SessionState] | None:
        """The first instant strictly after ``after_ns`` where the observable state changes, and the
        state from then on; None if nothing changes within ``search_days``."""
        current_key = self.phase_at(after_ns).transition_key
        first_day = self.local_date(after_ns)
        for offset in range(self.search_days + 1):
            for phase in self._day(first_day + dt.timedelta(days=offset)):
                if phase.start_ns > after_ns and phase.transition_key != current_key:
                    return phase.start_ns, phase.to_state()
        return None

    def day_window(self, day: dt.date) -> tuple[int, int] | None:
        """(start of the first non-closed phase, end of the last one) in ns, or None when closed all day."""
        active = [p for p in self._day(_as_date(day)) if p.phase is not Phase.CLOSED]
        if not active:
            return None
        return active[0].start_ns, active[-1].end_ns


# --------------------------------------------------------------------------------------------
# Driver


SessionCallback = Callable[[SessionState, SessionState], object]


class SessionDriver:
    """Keeps the current :class:`SessionState` and calls ``on_change(old, new)`` once per transition,
    in order.

    On the wall clock it schedules with an APScheduler 3.x ``AsyncIOScheduler`` date job, one
    transition at a time, so a restart simply recomputes from ``clock.now_ns()``. On any other clock
    (simulated, or a ``ScaledClock`` day shared with an in-process sandbox) APScheduler, which reads
    the system time, would fire at the wrong moment: there it schedules with ``clock.call_at``.
    A late wake-up (busy loop, suspended laptop, a ``SimClock.set_time`` jump) replays every
    transition it missed, in order.
    """

    def __init__(
        self,
        schedule: SessionSchedule,
        clock: Clock,
        on_change: SessionCallback,
        *,
        scheduler: Any | None = None,
    ) -> None:
        self.schedule = schedule
        self.clock = clock
        self.on_change = on_change
        self._scheduler = scheduler  # an injected AsyncIOScheduler is used but never shut down
        self._owns_scheduler = False
        self._state = SessionState()
        self._running = False
        self._cursor_ns = 0  # instant of the last state applied
        self._next_ns: int | None = None
        self._timer: Timer | None = None
        self._job: Any | None = None

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def running(self) -> bool:
        return self._running

    @property
    def next_transition_ns(self) -> int | None:
        """When the pending transition is due (None when stopped or nothing is ahead)."""
        return self._next_ns

    def start(self) -> None:
        """Take the state for ``clock.now_ns()`` and schedule the next transition."""
        if self._running:
            raise RuntimeError("SessionDriver is already running")
        now = self.clock.now_ns()
        if self.clock.system_time:
            self._start_scheduler()
        self._running = True
        self._cursor_ns = now
        new = self.schedule.state_at(now)
        old = SessionState(trading_day=new.trading_day)
        self._state = new
        try:
            if state_key(new) != state_key(old):
                self.on_change(old, new)
        finally:
            if self._running:
                self._schedule_next()

    def stop(self) -> None:
        """Cancel the pending timer/job; the state is kept as it was."""
        self._running = False
        self._next_ns = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._job is not None:
            from apscheduler.jobstores.base import JobLookupError

            try:
                self._job.remove()
            except JobLookupError:  # already ran
                pass
            self._job = None
        if self._owns_scheduler and self._scheduler is not None:
            if self._scheduler.running:
                self._scheduler.shutdown(wait=False)
            self._scheduler = None
            self._owns_scheduler = False

    # ---- internals ----------------------------------------------------------------------------
    def _start_scheduler(self) -> None:
        if self._scheduler is None:
            from apscheduler.schedulers.asyncio import AsyncIOScheduler

            self._scheduler = AsyncIOScheduler(timezone=self.schedule.tz)
            self._owns_scheduler = True
        if not self._scheduler.running:
            try:
                self._scheduler.start()
            except RuntimeError as exc:
                raise RuntimeError("SessionDriver on a wall clock must start inside a running asyncio loop") from exc

    def _schedule_next(self) -> None:
        upcoming = self.schedule.next_transition(self._cursor_ns)
        if upcoming is None:
            self._next_ns = None
            log.warning("no session transition within %d days of %d", self.schedule.search_days, self._cursor_ns)
            return
        due = upcoming[0]
        self._next_ns = due
        if not self.clock.system_time:
            self._timer = self.clock.call_at(due, self._on_due, due)
        else:
            from apscheduler.triggers.date import DateTrigger

            self._job = self._scheduler.add_job(
                self._on_due_async,
                trigger=DateTrigger(run_date=_from_ns(due, self.schedule.tz)),
                args=(due,),
                misfire_grace_time=None,  # never skip a transition because the loop was late
                coalesce=True,
            )

    async def _on_due_async(self, due_ns: int) -> None:
        """APScheduler runs coroutine jobs on the event loop (plain functions would go to a thread)."""
        self._on_due(due_ns)

    def _on_due(self, due_ns: int) -> None:
        if not self._running or due_ns != self._next_ns:
            return  # a stale timer from before a stop()/start()
        self._timer = None
        self._job = None
        self._next_ns = None
        now = self.clock.now_ns()
        try:
            self._apply(due_ns, self.schedule.state_at(due_ns))
            while self._running:
                upcoming = self.schedule.next_transition(self._cursor_ns)
                if upcoming is None or upcoming[0] > now:
                    break
                self._apply(*upcoming)
        finally:
            if self._running and self._next_ns is None:
                self._schedule_next()

    def _apply(self, at_ns: int, new: SessionState) -> None:
        self._cursor_ns = at_ns
        old = self._state
        self._state = new
        if state_key(new) != state_key(old):
            self.on_change(old, new)


class RecordedSessionDriver:
    """A :class:`SessionDriver` that follows session changes a venue recorded instead of a schedule
    (a replay with ``sessions: recorded``, issue 26): each ``(when_ns, state)`` is applied at its
    time on the clock, so the runtime rolls phases, trading days and flags exactly as the recorded
    run saw them. Same interface as :class:`SessionDriver` (``start``, ``stop``, ``state``).

    At start the last change at or before the clock (the recording began before the run's first
    instant) is applied at once. The run's window spans the recorded changes of its first and last
    day (:mod:`engine.recording.replaydays`), so each of them is reached; changes of later days are not. A late
    wake-up (a ``SimClock.set_time`` jump) applies the missed changes in order, as the schedule's
    driver does."""

    def __init__(self, changes: list[tuple[int, SessionState]], clock: Clock, on_change: SessionCallback) -> None:
        self.changes = sorted(changes, key=lambda change: change[0])
        self.clock = clock
        self.on_change = on_change
        self._state = SessionState()
        self._running = False
        self._position = 0
        self._timer: Timer | None = None

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def running(self) -> bool:
        return self._running

    @property
    def next_transition_ns(self) -> int | None:
        if not self._running or self._position >= len(self.changes):
            return None
        return self.changes[self._position][0]

    def start(self) -> None:
        if self._running:
            raise RuntimeError("RecordedSessionDriver is already running")
        self._running = True
        now = self.clock.now_ns()
        due = bisect.bisect_right([when for when, _ in self.changes], now)
        if due:
            self._position = due
            self._apply(self.changes[due - 1][1])
        self._schedule_next()

    def stop(self) -> None:
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule_next(self) -> None:
        if self._running and self._position < len(self.changes):
            self._timer = self.clock.call_at(self.changes[self._position][0], self._on_due)

    def _on_due(self) -> None:
        self._timer = None
        now = self.clock.now_ns()
        changes = self.changes
        while self._running and self._position < len(changes) and changes[self._position][0] <= now:
            state = changes[self._position][1]
            self._position += 1
            self._apply(state)
        self._schedule_next()

    def _apply(self, new: SessionState) -> None:
        old = self._state
        self._state = new
        if state_key(new) != state_key(old):  # as the live driver told it: one call per observable change
            self.on_change(old, new)
