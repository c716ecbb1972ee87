"""`engine sandbox pulse --run CONFIG --speed X`: the Pulse venue and the engine in one process on
one scaled clock, through the real Pulse adapter over loopback, as `engine sandbox psx --run` does
for PSX (tests/e2e/test_psx_sandbox_run.py).

The day is the shipped config.pulse-sandbox.yaml (its market maker) plus a taker that makes a fill
certain, on a five-minute session at 60x: the run ends when that session does, about five
seconds of real time.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from support import PULSE_SHORT_SESSION, add_strategy, run_sandbox, shipped_config, taker, write_config

SECRET = "pulse-run-secret-3b9e"  # the sandbox's client secret: must never be printed
BTC = "BTC_USD-PERPETUAL"

def _shipped_config_on_a_short_session(tmp_path: Path) -> Path:
    config = shipped_config("config.pulse-sandbox.yaml")
    config["sessions"]["profiles"] = PULSE_SHORT_SESSION
    add_strategy(tmp_path, config, "taker", taker(BTC, "buy", 10), "pulse", [BTC])
    return write_config(tmp_path, config)


def _run(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    # PULSE_CLIENT_SECRET is the config's variable: the run points the adapter at the sandbox's
    return run_sandbox(tmp_path, "pulse", _shipped_config_on_a_short_session(tmp_path),
                       "--start", "2026-11-23T00:00+00:00", "--report", str(tmp_path / "report.json"), *flags,
                       env={"PULSE_SANDBOX_SECRET": SECRET, "PULSE_CLIENT_SECRET": None})


def test_one_command_runs_a_pulse_session_through_the_real_adapter(tmp_path: Path) -> None:
    done = _run(tmp_path, "--html", str(tmp_path / "day.html"))
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    # one clock: the engine saw the session open and close at the sandbox's speed
    assert report["clock"] == "scaled x60"
    assert report["sessions"] == ["closed", "open", "closed"]
    assert report["trading_days"] == ["2026-11-23"]
    assert report["stopped_by"] == "end"
    # through the Pulse adapter: the taker's fill, the market maker's quotes, every order final at exit
    venue = report["venues"]["pulse"]
    assert venue["messages_in"] > 0 and venue["messages_out"] > 0 and venue["reconnects"] == 0
    assert report["strategies"]["taker"]["fills"] >= 1
    assert report["strategies"]["taker"]["position"] == {BTC: "10"}
    assert report["strategies"]["mm"]["orders"] >= 2
    assert report["orders"]["open_at_exit"] == 0
    assert "pulse sandbox: stopped" in out
    # the sandbox's secret reaches the adapter through this process's environment only: never printed
    for text in (out, (tmp_path / "report.json").read_text(), (tmp_path / "day.html").read_text()):
        assert SECRET not in text


def test_duration_stops_the_pulse_run_like_ctrl_c(tmp_path: Path) -> None:
    done = _run(tmp_path, "--duration", "0.01")  # before the venue even connected
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["stopped_by"] == "duration"
    assert report["orders"]["open_at_exit"] == 0
