"""A replay's days and window from its recording's receive times (engine/recording/replaydays.py,
engine.recording.format.day_times; issue 26)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from engine.model import BookUpdate, Phase, SessionState, Side, Trade
from engine.recording.format import DayTimes, Writer, day_times
from engine.recording.replaydays import ReplayedVenue, day_window, leader, pick_days, recorded_days
from engine.sessions import SessionSchedule, SessionsConfig, TradingCalendar

KARACHI = ZoneInfo("Asia/Karachi")
NS = 1_000_000_000
D = Decimal


def utc(day: str, hhmm: str) -> int:
    return int(dt.datetime.fromisoformat(f"{day}T{hhmm}+00:00").timestamp()) * NS


def test_day_times_split_a_utc_partition_into_local_days(tmp_path: Path) -> None:
    writer = Writer(tmp_path, run="t")
    # 18:00 UTC is 23:00 in Karachi, 20:00 UTC is 01:00 the next day there: one UTC partition, two local days
    book = BookUpdate("psx", "OGDC", 0, 1, ((Side.BUY, D("100"), D("5")), (Side.SELL, D("101"), D("5"))), True)
    writer.add("psx", "OGDC", 1, utc("2026-11-23", "18:00"), book)
    writer.add("psx", "OGDC", 2, utc("2026-11-23", "20:00"), Trade("psx", "OGDC", 0, D("100"), D("1"), None, "t"))
    writer.add("psx", "_session", 3, utc("2026-11-23", "04:15"), SessionState(Phase.PRE_OPEN, trading_day="x"))
    writer.add("other", "OGDC", 4, utc("2026-11-25", "05:00"), Trade("other", "OGDC", 0, D("1"), D("1"), None, "o"))
    writer.flush()
    days = day_times(tmp_path, KARACHI, venues=["psx"])
    assert days == {
        dt.date(2026, 11, 23): DayTimes((utc("2026-11-23", "18:00"),), (utc("2026-11-23", "04:15"),)),  # book: once
        dt.date(2026, 11, 24): DayTimes((utc("2026-11-23", "20:00"),), ()),
    }
    assert list(day_times(tmp_path, ZoneInfo("UTC"), venues=["psx"])) == [dt.date(2026, 11, 23)]
    assert day_times(tmp_path, KARACHI, venues=["psx"], sessions=False)[dt.date(2026, 11, 23)].sessions == ()
    assert day_times(tmp_path, KARACHI, venues=["psx"], start=dt.date(2026, 11, 24)) == {}


def times(*events: int, sessions: tuple[int, ...] = ()) -> DayTimes:
    return DayTimes(tuple(events), sessions)


def test_the_recorded_days_are_the_dates_with_events_in_order() -> None:
    # a crypto recording's weekend is two days; a day holding only session changes is none
    crypto = ReplayedVenue("mid", {dt.date(2026, 11, 29): times(1), dt.date(2026, 11, 27): times(1),
                                   dt.date(2026, 11, 28): times(1), dt.date(2026, 11, 30): times(sessions=(1,))},
                           True)
    other = ReplayedVenue("psx", {dt.date(2026, 11, 26): times(1)}, True)
    assert recorded_days([crypto, other]) == [dt.date(2026, 11, d) for d in (26, 27, 28, 29)]


def test_pick_days_from_the_recording_honours_what_the_config_gives() -> None:
    calendar = TradingCalendar()  # PSX: Monday to Friday
    recorded = [dt.date(2026, 11, 27), dt.date(2026, 11, 28), dt.date(2026, 11, 30)]  # Fri, Sat, Mon
    assert pick_days(recorded, None, None, calendar) == (recorded, [])
    assert pick_days(recorded, dt.date(2026, 11, 28), None, calendar) == (recorded[1:], [])
    assert pick_days(recorded, None, 2, calendar) == (recorded[:2], [])
    # more days than recorded: the calendar's next trading days, marked as padding
    assert pick_days(recorded, dt.date(2026, 11, 30), 2, calendar) == (
        [dt.date(2026, 11, 30), dt.date(2026, 12, 1)], [dt.date(2026, 12, 1)])


def test_the_window_follows_the_recorded_sessions_else_the_profile() -> None:
    schedule = SessionSchedule(SessionsConfig())  # broker-doc: 09:15 pre-open to 15:35 closed, Karachi
    monday, saturday = dt.date(2026, 11, 23), dt.date(2026, 11, 28)
    changes = (utc("2026-11-23", "04:32"), utc("2026-11-23", "10:52"))  # 17 minutes late
    events = (utc("2026-11-23", "04:00"), utc("2026-11-23", "10:40"))
    weekend = (utc("2026-11-28", "05:00"), utc("2026-11-28", "06:30"))
    psx = ReplayedVenue("psx", {monday: times(*events, sessions=changes), saturday: times(*weekend)}, True)
    lead = leader([psx], monday)
    assert lead is psx
    assert day_window(monday, schedule, [psx], lead) == (events[0], changes[1])
    profile = schedule.day_window(monday)
    assert profile is not None and profile[1] < changes[1]  # the recorded close is past the profile's day
    assert day_window(monday, schedule, [psx], None) == profile  # sessions: config
    # no session in the profile on a Saturday, none recorded: the recorded events make the day
    assert day_window(saturday, schedule, [psx], lead) == weekend
    assert leader([ReplayedVenue("psx", psx.days, False)], monday) is None
    assert leader([psx], dt.date(2026, 11, 24)) is None  # nothing recorded from the run's first day on
