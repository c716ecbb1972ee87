"""Recording and replay (issue 26 parts 1, 2 and 4), through the real command line.

- ``engine record`` writes a PSX paper day to Parquet; a replay of it twice gives the same report
  byte for byte once its wall-time fields are removed (the same list test_end_to_end removes).
- A two-day recording replays as two days: sessions, settlement and the journal roll.
- Parity: a day of ``engine sandbox psx --run`` recorded through the real Live Feed and Optimus
  adapters (``run.record``), replayed: a deterministic strategy sees the same events in the same
  order and makes the same decisions.
- A bad ``run.record`` is refused at start, naming the key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from support import PSX_SHORT_DAY, run_sandbox, shipped_config, write_config
from support.replays import deterministic, paper_config, replay_config, run
from support.runs import SECRETS

from engine.recording.format import read_events


@pytest.fixture(scope="module")
def recorded_day(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("rec")
    config = paper_config(folder)
    done = run(folder, "record", str(config), "--out", str(folder / "rec"))
    assert done.returncode == 0, done.stderr[-3000:]
    return config, folder / "rec"


def test_engine_record_writes_partitioned_parquet_of_every_event(recorded_day) -> None:
    _, recording = recorded_day
    folders = sorted(p.relative_to(recording).as_posix() for p in recording.glob("*/*/*"))
    assert "venue=paper/symbol=MEBL/date=2026-11-23" in folders
    assert "venue=paper/symbol=_session/date=2026-11-23" in folders
    kinds = {type(e.event).__name__ for e in read_events(recording)}
    assert kinds == {"BookUpdate", "Trade", "InstrumentStatus", "SessionState"}


def test_replay_twice_gives_byte_identical_reports(recorded_day, tmp_path: Path) -> None:
    config, recording = recorded_day
    reports = []
    for n in (1, 2):
        replay = replay_config(tmp_path, config, recording, f"replay{n}.yaml", latency_ms=5)
        done = run(tmp_path, "run", str(replay), "--report", f"r{n}.json", "--journal", f"j{n}.sqlite")
        assert done.returncode == 0, done.stderr[-3000:]
        reports.append(json.loads((tmp_path / f"r{n}.json").read_text()))
    first, second = reports
    events = sum(1 for e in read_events(recording) if type(e.event).__name__ in ("BookUpdate", "Trade"))
    assert first["events"]["book"] + first["events"]["trade"] == events  # every recorded event delivered
    assert first["fills"] > 0  # the strategies traded against the recorded book
    assert deterministic(first) == deterministic(second)


def test_a_two_day_replay_rolls_sessions_settlement_and_the_journal(tmp_path: Path) -> None:
    config = paper_config(tmp_path, days=2)
    done = run(tmp_path, "record", str(config), "--out", "rec")
    assert done.returncode == 0, done.stderr[-3000:]
    assert {p.name for p in (tmp_path / "rec/venue=paper/symbol=OGDC").iterdir()} == {
        "date=2026-11-23", "date=2026-11-24"}
    replay = replay_config(tmp_path, config, tmp_path / "rec")
    done = run(tmp_path, "run", str(replay), "--report", "r.json", "--journal", "j.sqlite")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["trading_days"] == ["2026-11-23", "2026-11-24"]
    assert report["sessions"].count("open") == 2
    assert done.stderr.count("settlement paper") == 2  # each close rolls settlement
    # a day at a time: the journal continues the account on the next trading day, which the
    # recording has too, as a paper run continues its account
    config_by_day = yaml.safe_load(replay.read_text())
    config_by_day["run"]["days"] = 1
    by_day = write_config(tmp_path, config_by_day, "by_day.yaml")
    done = run(tmp_path, "run", str(by_day), "--report", "d1.json", "--journal", "d.sqlite")
    assert done.returncode == 0, done.stderr[-3000:]
    del config_by_day["run"]["start"]
    write_config(tmp_path, config_by_day, "by_day.yaml")
    done = run(tmp_path, "run", str(by_day), "--report", "d2.json", "--journal", "d.sqlite")
    assert done.returncode == 0, done.stderr[-3000:]
    day2 = json.loads((tmp_path / "d2.json").read_text())
    assert day2["trading_days"] == ["2026-11-24"]
    assert day2["events"]["book"] == report["events"]["book"] - json.loads((tmp_path / "d1.json").read_text())[
        "events"]["book"]


def test_a_record_path_that_is_a_file_is_refused_naming_the_key(tmp_path: Path) -> None:
    config = yaml.safe_load(paper_config(tmp_path).read_text())
    (tmp_path / "taken").write_text("a file")
    config["run"]["record"] = "taken"
    path = write_config(tmp_path, config, "bad.yaml")
    done = run(tmp_path, "run", str(path))
    assert done.returncode == 1
    assert "run.record" in done.stderr and "not a folder" in done.stderr


def test_a_replay_of_a_missing_recording_is_refused_naming_the_option(tmp_path: Path) -> None:
    replay = replay_config(tmp_path, paper_config(tmp_path), tmp_path / "nowhere")
    done = run(tmp_path, "run", str(replay))
    assert done.returncode == 1
    assert "options" in done.stderr and "no recording there" in done.stderr


# ---- parity: a sandbox day through the real adapters, recorded, replayed -----------------------

WATCHER = """\
from decimal import Decimal
from pathlib import Path

from engine import hookimpl

PARAMS = {"out": ""}
seen = {"books": 0, "orders": 0}


def write(ctx, line):
    with open(ctx.params.out, "a") as f:
        f.write(line + "\\n")


@hookimpl
def on_book(ctx, book):
    write(ctx, f"book {book.symbol} {book.best_bid} {book.best_ask} {book.bid_size} {book.ask_size}")
    seen["books"] += 1
    # a decision from the data alone: every 40th book, a bid 1.00 under the touch, sent in
    # continuous trading (the live run's phases fire on the wall clock, a few ms late under load,
    # so the decision itself does not depend on the phase)
    if seen["books"] % 40 == 0 and book.best_bid is not None:
        price = book.best_bid - Decimal("1.00")
        write(ctx, f"decide {book.symbol} buy {price}")
        if ctx.session == "open" and seen["orders"] < 6:
            seen["orders"] += 1
            ctx.submit(book.symbol, "buy", ctx.instrument(book.symbol).lot_size, price)


@hookimpl
def on_trade(ctx, trade):
    write(ctx, f"trade {trade.symbol} {trade.price} {trade.qty} {trade.aggressor}")
"""


def test_parity_a_recorded_sandbox_day_replays_to_the_same_events_and_decisions(tmp_path: Path) -> None:
    config = shipped_config("config.psx-sandbox.yaml")
    config["sessions"] = PSX_SHORT_DAY
    (tmp_path / "watch.py").write_text(WATCHER)
    instruments = [i["symbol"] for i in config["instruments"]]
    config["strategies"] = [{"name": "watch", "file": "watch.py", "venue": "psx", "instruments": instruments,
                             "params": {"out": str(tmp_path / "live.log")}}]
    config["run"]["record"] = "rec"
    config["metrics"] = {"enabled": False}
    # no journal, so no reconciliation hold at start: strategies hear the feed from its first event
    config["journal"] = {"enabled": False}
    live = write_config(tmp_path, config)
    done = run_sandbox(tmp_path, "psx", live, "--start", "2026-11-23T08:59", "--report",
                       str(tmp_path / "live.json"), env=SECRETS, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]

    config["strategies"][0]["params"]["out"] = str(tmp_path / "replay.log")
    config["run"]["start"] = "2026-11-23"
    write_config(tmp_path, config, "live-as-written.yaml")
    replay = replay_config(tmp_path, tmp_path / "live-as-written.yaml", tmp_path / "rec")
    done = run(tmp_path, "run", str(replay), "--report", "replay.json")
    assert done.returncode == 0, done.stderr[-3000:]

    seen_live = (tmp_path / "live.log").read_text().splitlines()
    seen_replay = (tmp_path / "replay.log").read_text().splitlines()
    assert len(seen_live) > 200 and any(line.startswith("trade ") for line in seen_live)
    assert any(line.startswith("decide ") for line in seen_live)
    assert seen_replay == seen_live  # the same events, in the same order, the same decisions
    replay_report = json.loads((tmp_path / "replay.json").read_text())
    assert replay_report["strategies"]["watch"]["orders"] > 0  # the decisions became orders at the replay venue
