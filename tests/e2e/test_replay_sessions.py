"""A replay follows the recorded session changes (issue 26, ``sessions: recorded | config``).

A real ``engine record`` day is rewritten with its session changes 17 minutes late (as if a PSX
notice had moved the day): replayed with the default, a strategy hears ``on_session_change`` at the
recorded times, the last one after the profile's day has ended; with ``sessions: config`` it hears
them at the config's profile, as before. Two replays of the shifted day give byte-identical reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from support import write_config
from support.replays import deterministic, paper_config, replay_config, run

from engine.model import SessionState
from engine.recording.format import Writer, read_events

SHIFT_NS = 17 * 60 * 1_000_000_000

SESSION_WATCHER = """\
from engine import hookimpl

PARAMS = {"out": ""}


@hookimpl
def on_session_change(ctx, old, new):
    with open(ctx.params.out, "a") as f:
        f.write(f"{ctx.now_ns()} {old} {new}\\n")
"""


@pytest.fixture(scope="module")
def shifted_day(tmp_path_factory) -> tuple[Path, Path, list[tuple[int, SessionState]]]:
    """(config, recording whose session changes are SHIFT_NS late, the shifted changes)."""
    folder = tmp_path_factory.mktemp("shift")
    config = paper_config(folder)
    done = run(folder, "record", str(config), "--out", str(folder / "rec"))
    assert done.returncode == 0, done.stderr[-3000:]
    writer = Writer(folder / "shifted")
    sessions = []
    for recorded in read_events(folder / "rec"):
        recv_ns = recorded.recv_ns
        if isinstance(recorded.event, SessionState):
            recv_ns += SHIFT_NS
            sessions.append((recv_ns, recorded.event))
        writer.add(recorded.venue, recorded.symbol, recorded.seq, recv_ns, recorded.event)
    writer.flush()
    assert len(sessions) >= 3  # pre_open, open, close ... of the recorded day
    return config, folder / "shifted", sessions


def replay_watching(folder: Path, config: Path, recording: Path, name: str, **options: object) -> list[str]:
    """Replay with a session watcher beside the config's strategies; its lines ``ns old new``."""
    replay = replay_config(folder, config, recording, f"{name}.yaml", **options)
    (folder / "watch.py").write_text(SESSION_WATCHER)
    cfg = yaml.safe_load(replay.read_text())
    venue = next(iter(cfg["venues"]))
    out = folder / f"{name}.sessions"
    cfg["strategies"].append({"name": "watch", "file": str(folder / "watch.py"), "venue": venue,
                              "instruments": [cfg["instruments"][0]["symbol"]], "params": {"out": str(out)}})
    write_config(folder, cfg, f"{name}.yaml")
    done = run(folder, "run", str(replay), "--report", f"{name}.json", "--journal", f"{name}.sqlite")
    assert done.returncode == 0, done.stderr[-3000:]
    return out.read_text().splitlines()


def test_a_replay_rolls_sessions_at_the_recorded_times(shifted_day, tmp_path: Path) -> None:
    config, recording, sessions = shifted_day
    seen = replay_watching(tmp_path, config, recording, "recorded")
    times = [int(line.split()[0]) for line in seen]
    phases = [line.split()[2] for line in seen]
    recorded = [(when, state.phase.value) for when, state in sessions]
    # every recorded change at its recorded instant, in order: the close 17 minutes after the
    # profile's end included, since the run's window follows the recorded sessions
    assert list(zip(times, phases, strict=True)) == recorded
    assert phases[-1] == "closed" and "open" in phases


def test_sessions_config_keeps_the_profile(shifted_day, tmp_path: Path) -> None:
    config, recording, sessions = shifted_day
    seen = replay_watching(tmp_path, config, recording, "config", sessions="config")
    times = [int(line.split()[0]) for line in seen]
    opened = next(t for t, line in zip(times, seen, strict=True) if line.split()[2] == "open")
    recorded_open = next(when for when, state in sessions if state.phase.value == "open")
    assert opened == recorded_open - SHIFT_NS  # the profile's open, as the live run had it


def test_a_replay_of_recorded_sessions_is_byte_identical_twice(shifted_day, tmp_path: Path) -> None:
    config, recording, _ = shifted_day
    reports = []
    for n in (1, 2):
        replay = replay_config(tmp_path, config, recording, f"replay{n}.yaml", latency_ms=5)
        done = run(tmp_path, "run", str(replay), "--report", f"r{n}.json", "--journal", f"j{n}.sqlite")
        assert done.returncode == 0, done.stderr[-3000:]
        reports.append(json.loads((tmp_path / f"r{n}.json").read_text()))
    assert "open" in reports[0]["sessions"]
    assert deterministic(reports[0]) == deterministic(reports[1])
