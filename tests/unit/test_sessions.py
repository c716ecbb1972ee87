"""Trading calendar, session profiles, schedule and driver (engine/sessions.py).

Holiday facts come from /work/shared/PSX_RULES.md section 3 (holidays 0.109, XKAR 2026)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import threading
import time

import pytest
from pydantic import ValidationError

from engine.clock import Clock, ScaledClock, SimClock, Timer, WallClock
from engine.model import Phase, SessionState
from engine.sessions import (
    HolidaysConfig,
    SessionDriver,
    SessionSchedule,
    SessionsConfig,
    TradingCalendar,
    shipped_profiles,
)

PKT = dt.timezone(dt.timedelta(hours=5))  # Asia/Karachi: UTC+5, no DST
MONDAY = dt.date(2026, 10, 12)
THURSDAY = dt.date(2026, 10, 15)
FRIDAY = dt.date(2026, 10, 16)


def ns(day: dt.date, hhmm: str) -> int:
    """Asia/Karachi wall time on ``day`` as int ns UTC."""
    hour, minute = map(int, hhmm.split(":"))
    return int(dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=PKT).timestamp()) * 1_000_000_000


def active(schedule: SessionSchedule, day: dt.date) -> list[tuple[str, str, str]]:
    """The non-closed phases of a day as (phase, start HH:MM, end HH:MM)."""
    return [
        (p.phase.value, p.start.strftime("%H:%M"), p.end.strftime("%H:%M"))
        for p in schedule.phases_for(day)
        if p.phase is not Phase.CLOSED
    ]


def profile(*phases: tuple[str, str, str]) -> dict:
    return {"mon_fri": [{"phase": name, "start": start, "end": end} for name, start, end in phases]}


# ---- calendar ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "name_part"),
    [
        (dt.date(2026, 3, 23), "Pakistan Day"),
        (dt.date(2026, 5, 1), "Labor"),
        (dt.date(2026, 8, 14), "Independence"),
        (dt.date(2026, 12, 25), "Quaid"),
        (dt.date(2026, 3, 20), "Eid"),
        (dt.date(2026, 5, 26), "Eid al-Adha"),
    ],
)
def test_provider_holidays_are_closed_and_named(day: dt.date, name_part: str) -> None:
    calendar = TradingCalendar()
    assert not calendar.is_trading_day(day)
    assert name_part in (calendar.holiday_name(day) or "")


def test_normal_monday_is_a_trading_day() -> None:
    assert TradingCalendar().is_trading_day(MONDAY)


@pytest.mark.parametrize("day", [dt.date(2026, 10, 17), dt.date(2026, 10, 18)])
def test_weekends_are_closed(day: dt.date) -> None:
    assert not TradingCalendar().is_trading_day(day)


def test_override_add_closes_a_trading_day() -> None:
    calendar = TradingCalendar(HolidaysConfig(add=[MONDAY]))
    assert not calendar.is_trading_day(MONDAY)
    assert calendar.holiday_name(MONDAY) is not None


def test_override_remove_opens_a_provider_holiday() -> None:
    iqbal_day = dt.date(2026, 11, 9)
    calendar = TradingCalendar(HolidaysConfig(remove=[iqbal_day]))
    assert calendar.is_trading_day(iqbal_day)
    assert calendar.holiday_name(iqbal_day) is None


def test_extra_session_opens_a_saturday() -> None:
    saturday = dt.date(2026, 10, 17)
    assert TradingCalendar(HolidaysConfig(extra_sessions=[saturday])).is_trading_day(saturday)


def test_same_day_added_and_removed_is_rejected() -> None:
    with pytest.raises(ValidationError, match="both 'add'"):
        HolidaysConfig(add=[MONDAY], remove=[MONDAY])


def test_unknown_holiday_provider_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match=r"sessions\.holidays\.provider: unknown .*'NOPE'"):
        HolidaysConfig(provider="NOPE")


def test_calendar_built_with_unknown_provider_is_refused() -> None:
    with pytest.raises(ValueError, match="NOPE"):
        TradingCalendar(HolidaysConfig.model_construct(provider="NOPE", add=[], remove=[], extra_sessions=[]))


def test_provider_is_built_once_per_year(monkeypatch: pytest.MonkeyPatch) -> None:
    import holidays

    calls: list[int] = []
    real = holidays.financial_holidays

    def counting(market: str, years: int) -> holidays.HolidayBase:
        calls.append(years)
        return real(market, years=years)

    monkeypatch.setattr(holidays, "financial_holidays", counting)
    calendar = TradingCalendar()
    for month in range(1, 13):
        calendar.is_trading_day(dt.date(2026, month, 10))
    assert calls == [2026]


def test_a_venue_that_never_closes_trades_every_day_with_no_holidays() -> None:
    calendar = TradingCalendar(HolidaysConfig(provider="none", trading_weekdays="mon_sun"))
    days = [dt.date(2026, 11, 21) + dt.timedelta(days=i) for i in range(7)]  # Saturday .. Friday
    assert all(calendar.is_trading_day(d) for d in days)
    assert calendar.is_trading_day(dt.date(2026, 12, 25))  # a PSX holiday means nothing here
    assert calendar.add_trading_days(dt.date(2026, 11, 20), 2) == dt.date(2026, 11, 22)  # T+2 over a weekend


def test_trading_weekdays_close_the_others_and_a_bad_group_is_a_clear_error() -> None:
    calendar = TradingCalendar(HolidaysConfig(trading_weekdays="mon_thu"))
    assert calendar.is_trading_day(dt.date(2026, 11, 19)) and not calendar.is_trading_day(dt.date(2026, 11, 20))
    with pytest.raises(ValidationError, match="trading_weekdays"):
        HolidaysConfig(trading_weekdays="mon_fry")


def test_the_shipped_pulse_config_opens_on_a_sunday() -> None:
    from pathlib import Path

    from engine.config import load_config

    cfg = load_config(Path(__file__).parents[2] / "config.pulse-sandbox.yaml").config
    schedule = SessionSchedule(cfg.sessions)
    sunday = dt.date(2026, 11, 22)
    assert schedule.calendar.is_trading_day(sunday)
    start, end = schedule.day_window(sunday)
    assert end - start == (24 * 3600 - 1) * 1_000_000_000  # open all day, UTC


def test_add_trading_days_skips_weekend_and_holidays() -> None:
    # Thu 03-19 -> Fri 03-20 Eid, Sat, Sun, Mon 03-23 Pakistan Day -> Tue 03-24
    assert TradingCalendar().add_trading_days(dt.date(2026, 3, 19), 1) == dt.date(2026, 3, 24)


def test_add_trading_days_skips_a_plain_weekend() -> None:
    assert TradingCalendar().add_trading_days(FRIDAY, 2) == dt.date(2026, 10, 20)


def test_add_trading_days_steps_back_for_negative_n() -> None:
    assert TradingCalendar().add_trading_days(dt.date(2026, 3, 24), -1) == dt.date(2026, 3, 19)


def test_next_trading_day_include_self() -> None:
    calendar = TradingCalendar()
    assert calendar.next_trading_day(MONDAY) == MONDAY
    assert calendar.next_trading_day(MONDAY, include_self=False) == dt.date(2026, 10, 13)
    assert calendar.next_trading_day(dt.date(2026, 3, 20)) == dt.date(2026, 3, 24)


# ---- profiles and schedule -----------------------------------------------------------------


def test_shipped_yaml_has_the_three_profiles() -> None:
    assert {"broker-doc", "psx-current", "ramadan"} <= set(shipped_profiles())


def test_default_profile_is_broker_doc() -> None:
    assert SessionsConfig().profile == "broker-doc"


def test_broker_doc_monday_phases() -> None:
    schedule = SessionSchedule()
    assert active(schedule, MONDAY) == [
        ("pre_open", "09:15", "09:30"),
        ("open", "09:30", "15:30"),
        ("post_close", "15:30", "15:35"),
    ]


def test_phases_cover_the_whole_day_with_closed_gaps() -> None:
    phases = SessionSchedule().phases_for(MONDAY)
    assert phases[0].phase is Phase.CLOSED and phases[-1].phase is Phase.CLOSED
    assert phases[0].start == dt.datetime(2026, 10, 12, tzinfo=PKT)
    assert phases[-1].end == dt.datetime(2026, 10, 13, tzinfo=PKT)
    assert all(a.end_ns == b.start_ns for a, b in itertools.pairwise(phases))


def test_broker_doc_post_close_is_closing_price_only() -> None:
    state = SessionSchedule().state_at(ns(MONDAY, "15:32"))
    assert state.phase is Phase.POST_CLOSE
    assert state.flags["closing_price_only"] is True


def test_holiday_is_closed_all_day() -> None:
    schedule = SessionSchedule()
    phases = schedule.phases_for(dt.date(2026, 3, 23))
    assert [p.phase for p in phases] == [Phase.CLOSED]
    assert schedule.day_window(dt.date(2026, 3, 23)) is None


def test_day_window_spans_first_to_last_phase() -> None:
    assert SessionSchedule().day_window(MONDAY) == (ns(MONDAY, "09:15"), ns(MONDAY, "15:35"))


def test_psx_current_monday_has_opening_match_that_takes_no_new_orders() -> None:
    schedule = SessionSchedule(SessionsConfig(profile="psx-current"))
    state = schedule.state_at(ns(MONDAY, "09:31"))
    assert state.phase is Phase.OPENING_MATCH
    assert (state.accepts_new, state.accepts_modify_cancel, state.matches) == (False, False, True)
    assert schedule.state_at(ns(MONDAY, "09:32")).phase is Phase.OPEN


def test_psx_current_thursday_closes_at_1530_with_post_close_at_1600() -> None:
    schedule = SessionSchedule(SessionsConfig(profile="psx-current"))
    assert active(schedule, THURSDAY)[-2:] == [("break", "15:30", "16:00"), ("post_close", "16:00", "16:15")]


def test_psx_current_friday_is_a_split_session() -> None:
    schedule = SessionSchedule(SessionsConfig(profile="psx-current"))
    assert active(schedule, FRIDAY) == [
        ("pre_open", "09:00", "09:15"),
        ("opening_match", "09:15", "09:17"),
        ("open", "09:17", "12:00"),
        ("break", "12:00", "14:15"),
        ("pre_open", "14:15", "14:30"),
        ("opening_match", "14:30", "14:32"),
        ("open", "14:32", "16:30"),
        ("break", "16:30", "17:00"),
        ("post_close", "17:00", "17:15"),
    ]


def test_psx_current_friday_midday_is_not_open() -> None:
    schedule = SessionSchedule(SessionsConfig(profile="psx-current"))
    state = schedule.state_at(ns(FRIDAY, "13:00"))
    assert state.phase is Phase.BREAK and not state.matches and not state.accepts_new


RAMADAN_2026 = {"profile": "ramadan", "from": "2026-02-19", "to": "2026-03-19", "source": "PSX DTS 1447 AH"}


def test_ramadan_applies_inside_its_dated_window() -> None:
    schedule = SessionSchedule(SessionsConfig(profile="psx-current", schedule=[RAMADAN_2026]))
    thursday_in_ramadan = dt.date(2026, 3, 5)
    assert schedule.state_at(ns(thursday_in_ramadan, "14:00")).phase is Phase.POST_CLOSE
    assert active(schedule, thursday_in_ramadan)[2] == ("open", "09:17", "13:30")


def test_ramadan_does_not_apply_outside_its_window() -> None:
    schedule = SessionSchedule(SessionsConfig(profile="psx-current", schedule=[RAMADAN_2026]))
    assert schedule.profile_name_for(dt.date(2026, 2, 18)) == "psx-current"
    assert schedule.profile_name_for(dt.date(2026, 3, 24)) == "psx-current"
    assert active(schedule, dt.date(2026, 3, 24))[2] == ("open", "09:32", "15:30")


def test_ramadan_friday_has_no_split() -> None:
    schedule = SessionSchedule(SessionsConfig(profile="psx-current", schedule=[RAMADAN_2026]))
    assert ("open", "09:17", "12:30") in active(schedule, dt.date(2026, 3, 13))
    assert schedule.state_at(ns(dt.date(2026, 3, 13), "14:40")).phase is Phase.CLOSED


def test_later_schedule_entries_win() -> None:
    override = {"profile": "broker-doc", "from": "2026-03-02", "to": "2026-03-03"}
    schedule = SessionSchedule(SessionsConfig(profile="psx-current", schedule=[RAMADAN_2026, override]))
    assert schedule.profile_name_for(dt.date(2026, 3, 2)) == "broker-doc"
    assert schedule.profile_name_for(dt.date(2026, 3, 4)) == "ramadan"


def test_config_profile_is_usable() -> None:
    config = SessionsConfig(profile="short", profiles={"short": profile(("open", "10:00", "11:00"))})
    assert active(SessionSchedule(config), MONDAY) == [("open", "10:00", "11:00")]


def test_overlapping_phases_are_rejected() -> None:
    bad = profile(("pre_open", "09:15", "09:35"), ("open", "09:30", "15:30"))
    expected = r"phase 1 \(open 09:30-15:30\) overlaps phase 0 \(pre_open 09:15-09:35\)"
    with pytest.raises(ValidationError, match=expected):
        SessionsConfig(profiles={"bad": bad})


def test_out_of_order_phases_are_rejected() -> None:
    bad = profile(("open", "09:30", "15:30"), ("pre_open", "09:15", "09:30"))
    with pytest.raises(ValidationError, match="out of order"):
        SessionsConfig(profiles={"bad": bad})


def test_phase_ending_before_it_starts_is_rejected() -> None:
    with pytest.raises(ValidationError, match="start must be before end"):
        SessionsConfig(profiles={"bad": profile(("open", "15:30", "09:30"))})


def test_weekday_in_two_groups_is_rejected() -> None:
    phases = [{"phase": "open", "start": "10:00", "end": "11:00"}]
    with pytest.raises(ValidationError, match="'fri' is in both groups"):
        SessionsConfig(profiles={"bad": {"mon_fri": phases, "fri": phases}})


def test_phase_names_must_be_model_phases() -> None:
    with pytest.raises(ValidationError, match="opening_match"):
        SessionsConfig(profiles={"bad": profile(("matching", "09:30", "09:32"))})


def test_unquoted_yaml_time_is_rejected_with_a_hint() -> None:
    with pytest.raises(ValidationError, match="quote times"):
        SessionsConfig(profiles={"bad": {"mon": [{"phase": "open", "start": "09:30", "end": 930}]}})


def test_unknown_default_profile_is_refused_naming_the_key() -> None:
    with pytest.raises(ValidationError, match=r"sessions\.profile: unknown profile 'nope'"):
        SessionsConfig(profile="nope")


def test_unknown_scheduled_profile_is_refused_naming_the_key() -> None:
    with pytest.raises(ValidationError, match=r"sessions\.schedule\[0\]\.profile: unknown profile 'ramdan'"):
        SessionsConfig(schedule=[{"profile": "ramdan", "from": "2026-02-19"}])


def test_unknown_config_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        SessionsConfig.model_validate({"profile": "broker-doc", "profle": "x"})


def test_next_transition_crosses_a_holiday_weekend() -> None:
    schedule = SessionSchedule()
    when, state = schedule.next_transition(ns(dt.date(2026, 3, 19), "16:00"))
    assert when == ns(dt.date(2026, 3, 24), "09:15")
    assert state.phase is Phase.PRE_OPEN and state.trading_day == "2026-03-24"


def test_next_transition_is_strictly_after() -> None:
    when, state = SessionSchedule().next_transition(ns(MONDAY, "09:30"))
    assert when == ns(MONDAY, "15:30") and state.phase is Phase.POST_CLOSE


def test_next_transition_is_none_when_nothing_trades_in_range() -> None:
    config = SessionsConfig(profile="never", profiles={"never": {}})
    assert SessionSchedule(config).next_transition(ns(MONDAY, "09:00")) is None


# ---- driver --------------------------------------------------------------------------------


class Recorder:
    """Collects on_change calls as (clock time, old phase, new phase)."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.calls: list[tuple[int, Phase, Phase]] = []

    def __call__(self, old: SessionState, new: SessionState) -> None:
        self.calls.append((self.clock.now_ns(), old.phase, new.phase))


def test_sim_driver_walks_a_whole_day_in_order() -> None:
    clock = SimClock(ns(MONDAY, "00:00"))
    record = Recorder(clock)
    driver = SessionDriver(SessionSchedule(), clock, record)
    driver.start()
    while clock.advance(until_ns=ns(MONDAY, "23:59")):
        pass
    assert record.calls == [
        (ns(MONDAY, "09:15"), Phase.CLOSED, Phase.PRE_OPEN),
        (ns(MONDAY, "09:30"), Phase.PRE_OPEN, Phase.OPEN),
        (ns(MONDAY, "15:30"), Phase.OPEN, Phase.POST_CLOSE),
        (ns(MONDAY, "15:35"), Phase.POST_CLOSE, Phase.CLOSED),
    ]
    assert driver.state.phase is Phase.CLOSED


def test_sim_driver_starting_closed_does_not_call_on_change() -> None:
    clock = SimClock(ns(MONDAY, "08:00"))
    record = Recorder(clock)
    SessionDriver(SessionSchedule(), clock, record).start()
    assert record.calls == []
    assert clock.next_due() == ns(MONDAY, "09:15")


def test_sim_driver_starting_mid_phase_reports_it_once() -> None:
    clock = SimClock(ns(MONDAY, "10:00"))
    seen: list[tuple[SessionState, SessionState]] = []
    driver = SessionDriver(SessionSchedule(), clock, lambda old, new: seen.append((old, new)))
    driver.start()
    assert len(seen) == 1
    old, new = seen[0]
    assert old.phase is Phase.CLOSED and new.phase is Phase.OPEN and new.trading_day == "2026-10-12"
    assert driver.next_transition_ns == ns(MONDAY, "15:30")


class LateClock(Clock):
    """A simulated clock whose timers fire only when the test says, at whatever time it is then:
    stands in for a late wake-up (busy loop, suspended machine)."""

    def __init__(self, start_ns: int) -> None:
        super().__init__()
        self.now_value = start_ns
        self.timers: list[Timer] = []

    @property
    def simulated(self) -> bool:
        return True

    def now_ns(self) -> int:
        return self.now_value

    def call_at(self, when_ns: int, fn, *args: object) -> Timer:
        timer = Timer(when_ns, fn, args)
        self.timers.append(timer)
        return timer

    def fire_pending(self) -> None:
        pending, self.timers = self.timers, []
        for timer in pending:
            if not timer.cancelled:
                timer.fn(*timer.args)


def test_driver_replays_missed_transitions_in_order_after_a_late_wakeup() -> None:
    clock = LateClock(ns(MONDAY, "09:00"))
    seen: list[tuple[Phase, Phase]] = []
    SessionDriver(SessionSchedule(), clock, lambda old, new: seen.append((old.phase, new.phase))).start()
    clock.now_value = ns(MONDAY, "16:00")  # the 09:15 timer only fires now, past four transitions
    clock.fire_pending()
    assert seen == [
        (Phase.CLOSED, Phase.PRE_OPEN),
        (Phase.PRE_OPEN, Phase.OPEN),
        (Phase.OPEN, Phase.POST_CLOSE),
        (Phase.POST_CLOSE, Phase.CLOSED),
    ]
    assert [t.when for t in clock.timers] == [ns(dt.date(2026, 10, 13), "09:15")]


def test_sim_driver_crosses_into_the_next_trading_day() -> None:
    clock = SimClock(ns(FRIDAY, "16:00"))
    record = Recorder(clock)
    SessionDriver(SessionSchedule(), clock, record).start()
    clock.advance()  # post_close ends 15:35 already passed: next is Monday's pre-open
    assert record.calls == [(ns(dt.date(2026, 10, 19), "09:15"), Phase.CLOSED, Phase.PRE_OPEN)]


def test_sim_driver_stop_cancels_the_pending_timer() -> None:
    clock = SimClock(ns(MONDAY, "08:00"))
    record = Recorder(clock)
    driver = SessionDriver(SessionSchedule(), clock, record)
    driver.start()
    driver.stop()
    assert clock.advance() is False
    assert record.calls == [] and driver.next_transition_ns is None


ONE_DAY = [
    (Phase.CLOSED, Phase.PRE_OPEN),
    (Phase.PRE_OPEN, Phase.OPEN),
    (Phase.OPEN, Phase.POST_CLOSE),
    (Phase.POST_CLOSE, Phase.CLOSED),
]


def _drive_one_day(schedule: SessionSchedule, clock: Clock, timeout_s: float) -> list[tuple[Phase, Phase, int]]:
    """Run a driver on a real loop until the day closes; every transition with the clock's time.
    Each one must run on the loop's thread (APScheduler would run plain functions in a worker)."""
    calls: list[tuple[Phase, Phase, int]] = []

    async def run() -> None:
        done = asyncio.Event()
        loop_thread = threading.get_ident()

        def on_change(old: SessionState, new: SessionState) -> None:
            assert threading.get_ident() == loop_thread
            calls.append((old.phase, new.phase, clock.now_ns()))
            if new.phase is Phase.CLOSED and old.phase is not Phase.CLOSED:
                done.set()

        driver = SessionDriver(schedule, clock, on_change)
        driver.start()
        try:
            await asyncio.wait_for(done.wait(), timeout=timeout_s)
        finally:
            driver.stop()

    asyncio.run(run())
    assert [(old, new) for old, new, _ in calls] == ONE_DAY
    return calls


def test_wall_driver_fires_transitions_through_apscheduler() -> None:
    """Phases 0.5 s apart from now, on the real clock: about 2 s of wall time."""
    clock = WallClock()
    now = clock.now()
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(0), tzinfo=now.tzinfo)
    if (midnight - now).total_seconds() < 5:  # keep the whole test inside one local day
        time.sleep((midnight - now).total_seconds() + 0.2)
        now = clock.now()
    marks = [(now + dt.timedelta(seconds=0.5 * k)).time().isoformat() for k in (1, 2, 3, 4)]
    test_profile = {
        "mon_sun": [
            {"phase": "pre_open", "start": marks[0], "end": marks[1], "accepts_new": True},
            {"phase": "open", "start": marks[1], "end": marks[2], "accepts_new": True, "matches": True},
            {"phase": "post_close", "start": marks[2], "end": marks[3], "closing_price_only": True},
        ]
    }
    config = SessionsConfig(
        profile="wall-test",
        profiles={"wall-test": test_profile},
        holidays=HolidaysConfig(extra_sessions=[now.date()]),  # today trades, whatever day it is
    )
    calls = _drive_one_day(SessionSchedule(config), clock, timeout_s=4)
    fired = [at for _, _, at in calls]
    assert fired == sorted(fired)


def test_wall_driver_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="running asyncio loop"):
        SessionDriver(SessionSchedule(), WallClock(), lambda old, new: None).start()


def test_scaled_driver_fires_transitions_on_the_scaled_clock() -> None:
    """A whole broker-doc day (09:15 pre-open to the 15:35 close) at 20,000x: about 1.2 s of real
    time. APScheduler reads the system time and would fire these hours from now, never here."""
    clock = ScaledClock(ns(MONDAY, "09:14") + 50 * 1_000_000_000, speed=20_000)
    calls = _drive_one_day(SessionSchedule(), clock, timeout_s=10)
    due = [ns(MONDAY, "09:15"), ns(MONDAY, "09:30"), ns(MONDAY, "15:30"), ns(MONDAY, "15:35")]
    assert all(at >= when for (_, _, at), when in zip(calls, due, strict=True))  # never early on the clock
