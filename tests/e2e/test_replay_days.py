"""A replay's days and run window come from its recording (issue 26, engine/recording/replaydays.py).

One two-day ``engine record`` of the paper venue (2026-11-23 and 24) is replayed:

- with neither ``run.start`` nor ``run.days`` the run's days are the recorded ones, each rolled as
  a live run rolls it (sessions, settlement, journal);
- given days win, and the recorded days they leave out are named in the log;
- a ``from``/``to`` that selects nothing is refused, naming the option and what the recording holds;
- events recorded outside the profile's window: reached with the recorded sessions (the window
  follows the recording); counted and named per day with ``sessions: config``.

The day and window checks build the engine in process (nothing runs: the days and the clock are
chosen at construction); one full run proves the derived days end to end.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from support import write_config
from support.replays import paper_config, replay_config, run

from engine.app import Engine
from engine.config import load_config
from engine.errors import ConfigError
from engine.journal import Journal
from engine.model import BookUpdate, Side, Trade
from engine.recording.format import Writer, read_events

KARACHI = ZoneInfo("Asia/Karachi")
DAY1, DAY2 = dt.date(2026, 11, 23), dt.date(2026, 11, 24)
NS = 1_000_000_000


def at(day: dt.date, hhmm: str) -> int:
    """Karachi wall time as ns."""
    return int(dt.datetime.combine(day, dt.time.fromisoformat(hhmm), tzinfo=KARACHI).timestamp()) * NS


@pytest.fixture(scope="module")
def two_days(tmp_path_factory) -> tuple[Path, Path]:
    """(the paper config recorded, its two-day recording)."""
    folder = tmp_path_factory.mktemp("two")
    config = paper_config(folder, days=2)
    done = run(folder, "record", str(config), "--out", str(folder / "rec"))
    assert done.returncode == 0, done.stderr[-3000:]
    return config, folder / "rec"


def replay(folder: Path, config: Path, recording: Path, run_keys: dict[str, object],
           name: str = "replay.yaml", **options: object) -> Path:
    """A replay config of ``recording`` whose ``run:`` sets ``start``/``days`` only as ``run_keys`` says."""
    path = replay_config(folder, config, recording, name, **options)
    cfg = yaml.safe_load(path.read_text())
    for key in ("start", "days"):
        cfg["run"].pop(key, None)
    cfg["run"].update(run_keys)
    return write_config(folder, cfg, name)


def engine(path: Path, folder: Path) -> Engine:
    return Engine(load_config(path), journal_path=folder / "journal.sqlite")


def test_without_run_start_the_days_are_the_recorded_ones(two_days, tmp_path: Path) -> None:
    config, recording = two_days
    path = replay(tmp_path, config, recording, {})
    done = run(tmp_path, "run", str(path), "--report", "r.json", "--journal", "j.sqlite")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["trading_days"] == ["2026-11-23", "2026-11-24"]
    assert "the run's days are the 2 recorded days 2026-11-23, 2026-11-24" in done.stderr
    market = sum(1 for e in read_events(recording) if isinstance(e.event, BookUpdate | Trade))
    assert report["events"]["book"] + report["events"]["trade"] == market  # all of it, nothing out of reach
    # each day rolled as a live run rolls it
    assert report["sessions"].count("open") == 2
    assert done.stderr.count("settlement paper") == 2


def test_given_days_win_and_the_recorded_others_are_named(two_days, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    config, recording = two_days
    caplog.set_level(logging.INFO, logger="engine")
    both = engine(replay(tmp_path, config, recording, {"start": "2026-11-24", "days": 1}), tmp_path)
    assert both.days == [DAY2]
    assert "1 recorded day is not among the run's days (run.start and run.days decide); before the first " \
           "(not replayed): 2026-11-23" in caplog.text
    caplog.clear()
    counted = engine(replay(tmp_path, config, recording, {"days": 1}, "days.yaml"), tmp_path)
    assert counted.days == [DAY1]
    assert "(run.days); after the last (never reached): 2026-11-24" in caplog.text
    caplog.clear()
    started = engine(replay(tmp_path, config, recording, {"start": "2026-11-24"}, "start.yaml"), tmp_path)
    assert started.days == [DAY2]
    assert "(run.start); before the first (not replayed): 2026-11-23" in caplog.text
    # run.days beyond the recording is honoured with the calendar's next days, said to replay nothing
    caplog.clear()
    longer = engine(replay(tmp_path, config, recording, {"days": 3}, "long.yaml"), tmp_path)
    assert longer.days == [DAY1, DAY2, dt.date(2026, 11, 25)]
    assert "2026-11-25 replay nothing" in caplog.text


def test_a_from_to_that_selects_nothing_is_refused(two_days, tmp_path: Path) -> None:
    config, recording = two_days
    path = replay(tmp_path, config, recording, {}, **{"from": "2026-12-01", "to": "2026-12-05"})
    done = run(tmp_path, "run", str(path))
    assert done.returncode == 1, done.stderr[-3000:]
    assert "venues.paper.options" in done.stderr
    assert "from 2026-12-01 to 2026-12-05 selects no recorded data of venue paper" in done.stderr
    assert "its dates there are 2026-11-23 to 2026-11-24 (2 days)" in done.stderr
    with pytest.raises(ConfigError, match="to 2026-11-22 selects no recorded data"):
        engine(replay(tmp_path, config, recording, {}, "early.yaml", to="2026-11-22"), tmp_path)
    # a from/to that selects one of the days makes it the run's only day
    assert engine(replay(tmp_path, config, recording, {}, "one.yaml", to="2026-11-23"), tmp_path).days == [DAY1]


@pytest.fixture(scope="module")
def late_and_early(two_days, tmp_path_factory) -> tuple[Path, Path, dict[str, int]]:
    """The two days plus three OGDC prints outside the profile's 09:15-15:35: before the first
    day's pre-open, after its close, and after the last day's close."""
    config, recording = two_days
    folder = tmp_path_factory.mktemp("outside")
    shutil.copytree(recording, folder / "rec")
    writer = Writer(folder / "rec", run="outside")
    prints = {"early": at(DAY1, "08:00"), "evening": at(DAY1, "16:00"), "late": at(DAY2, "15:50")}
    for seq, when in enumerate(prints.values()):
        writer.add("paper", "OGDC", seq, when, Trade("paper", "OGDC", when, Decimal("109.30"), Decimal("10"),
                                                      Side.BUY, f"x{seq}"))
    writer.flush()
    return config, folder / "rec", prints


def test_recorded_sessions_reach_every_recorded_event(late_and_early, tmp_path: Path) -> None:
    config, recording, prints = late_and_early
    built = engine(replay(tmp_path, config, recording, {}), tmp_path)
    assert built.days == [DAY1, DAY2]
    assert built.clock.now_ns() == prints["early"] - 60 * NS  # a minute before the first recorded event
    assert built.end_ns == prints["late"] + NS  # past the last one


def test_sessions_config_keeps_the_profile_and_names_what_it_leaves_out(
        late_and_early, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config, recording, _ = late_and_early
    caplog.set_level(logging.INFO, logger="engine")
    built = engine(replay(tmp_path, config, recording, {}, sessions="config"), tmp_path)
    assert built.days == [DAY1, DAY2]
    assert built.clock.now_ns() == at(DAY1, "09:14")  # the profile's: a minute before pre-open
    assert built.end_ns == at(DAY2, "15:35:01")
    lines = [r.getMessage() for r in caplog.records if "outside the session profile's window" in r.getMessage()]
    assert len(lines) == 2  # once per day
    assert lines[0].startswith("replay paper 2026-11-23: 2 events recorded outside the session profile's window "
                               "09:14:00 to 15:35:01 (first 08:00:00, last 16:00:00): 1 delivered at once at the "
                               "run's start, 1 delivered while the session is closed")
    assert lines[1].startswith("replay paper 2026-11-24: 1 event recorded outside the session profile's window "
                               "09:14:00 to 15:35:01 (first 15:50:00, last 15:50:00): 1 never reached (after the "
                               "run's end)")


def test_a_damaged_recording_is_refused_at_start_naming_the_file(two_days, tmp_path: Path) -> None:
    config, recording = two_days
    shutil.copytree(recording, tmp_path / "rec")
    damaged = sorted((tmp_path / "rec").rglob("*.parquet"))[0]
    damaged.write_bytes(b"not parquet")
    with pytest.raises(ConfigError, match=r"venues\.paper\.options") as refused:
        engine(replay(tmp_path, config, tmp_path / "rec", {}), tmp_path)
    assert damaged.name in str(refused.value)


def test_a_continued_account_goes_on_with_the_next_recorded_day_weekend_included(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Friday, Saturday (recorded, though the PSX calendar does not trade it) and Monday; the
    journal's account finished Friday: the run's days are Saturday and Monday. Saturday has no
    session in the profile: its prints are outside the window, said so, and delivered."""
    friday, saturday, monday = dt.date(2026, 11, 27), dt.date(2026, 11, 28), dt.date(2026, 11, 30)
    writer = Writer(tmp_path / "rec", run="t")
    for seq, day in enumerate((friday, saturday, monday)):
        when = at(day, "11:00")
        writer.add("paper", "OGDC", seq, when, Trade("paper", "OGDC", when, Decimal("109.30"), Decimal("10"),
                                                      Side.BUY, f"t{seq}"))
    writer.flush()
    journal = Journal.open(tmp_path / "journal.sqlite")
    journal.begin_run(at(friday, "09:14"), "replay.yaml", friday)
    journal.end_run(at(friday, "15:36"), "end", friday)
    journal.close()
    caplog.set_level(logging.INFO, logger="engine")
    built = engine(replay(tmp_path, paper_config(tmp_path), tmp_path / "rec", {}), tmp_path)
    assert built.days == [saturday, monday]
    assert built.clock.now_ns() == at(saturday, "10:59")  # no session Saturday: its recorded events make the day
    assert "before the first (not replayed): 2026-11-27" in caplog.text
    assert ("replay paper 2026-11-28: 1 event recorded outside the session profile's window (none: the profile "
            "has no session that day) (first 11:00:00, last 11:00:00): 1 delivered while the session is closed"
            ) in caplog.text
