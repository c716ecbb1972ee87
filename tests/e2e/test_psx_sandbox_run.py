"""`engine sandbox psx --run CONFIG --speed X`: the PSX venue and the engine in one process on one
scaled clock, a simulated day through the real Optimus and Live Feed adapters over loopback.

The end-to-end test runs the shipped config.psx-sandbox.yaml (its market maker and momentum
strategies, plus a taker that makes a fill certain) on a ten-minute session profile at 60x: about
ten seconds of real time for pre-open, open, post-close and the close.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from support import ENGINE, REPO, run_sandbox
from support.runs import SECRETS, psx_config_on_a_short_day

from adapters.psx.sandbox import COMMAND, ENV_NAMES
from engine.clock import ScaledClock, SimClock
from engine.config import load_config
from engine.errors import StartupError
from engine.sandboxrun import point_config_at


def test_one_command_runs_a_simulated_day_through_the_real_adapters(tmp_path: Path) -> None:
    config = psx_config_on_a_short_day(tmp_path)
    old_journal = tmp_path / "config.journal.sqlite"
    old_journal.write_bytes(b"an earlier run's account")  # the sandbox's account is new: so is the engine's
    done = run_sandbox(tmp_path, "psx", config, "--start", "2026-11-23T08:59", "--report",
                       str(tmp_path / "report.json"), "--html", str(tmp_path / "day.html"), env=SECRETS)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    # one clock: the engine saw the whole day at the sandbox's speed
    assert report["clock"] == "scaled x60"
    assert report["sessions"] == ["closed", "pre_open", "open", "post_close", "closed"]
    assert report["trading_days"] == ["2026-11-23"]
    assert report["stopped_by"] == "end"
    # the fill came back through the broker's webhooks, the books through the feed
    taker = report["strategies"]["taker"]
    assert taker["fills"] >= 1 and taker["position"] == {"MEBL": "500"}
    venue = report["venues"]["psx"]
    assert venue["messages_in"] > 0 and venue["messages_out"] > 0
    assert venue["market_data"]["adapter"] == "psx_feed" and venue["market_data"]["messages_in"] > 0
    # the market maker quotes on Optimus (no post-only, no amend): cancel and replace, never 2007
    mm = report["strategies"]["mm"]
    assert mm["orders"] > 2 and report["orders"]["cancelled"] >= 1
    assert "2007" not in report["rejects_by_code"]
    assert report["orders"]["open_at_exit"] == 0
    assert '"webhooks_delivered"' in out and "psx sandbox: stopped" in out
    # fresh account: the earlier journal was moved aside, not deleted
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("config.journal.sqlite.") and p.suffix == ".bak"]
    assert len(moved) == 1 and moved[0].read_bytes() == b"an earlier run's account"
    # the sandbox's credentials reach the adapters through this process's environment only: never printed
    page = (tmp_path / "day.html").read_text()
    for name in ("PSX_FEED_TOKEN", "OPTIMUS_PASSWORD", "OPTIMUS_WEBHOOK_SECRET"):
        assert SECRETS[name] not in out and SECRETS[name] not in page
        assert SECRETS[name] not in (tmp_path / "report.json").read_text()


# 3 s: in continuous trading; 0.01 s: before the venues even connected, ten minutes (10 s real)
# before pre-open, so a slow start on a loaded machine still stops in the closed phase
@pytest.mark.parametrize("seconds,start", [("3", "08:59"), ("0.01", "08:50")])
def test_duration_stops_the_engine_like_ctrl_c(tmp_path: Path, seconds: str, start: str) -> None:
    config = psx_config_on_a_short_day(tmp_path)
    done = run_sandbox(tmp_path, "psx", config, "--start", f"2026-11-23T{start}", "--duration", seconds,
                       "--report", str(tmp_path / "report.json"), env=SECRETS, timeout=60)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["stopped_by"] == "duration"
    assert report["sessions"] == (["closed", "pre_open", "open"] if seconds == "3" else ["closed"])
    assert report["orders"]["open_at_exit"] == 0  # cancelled on the way out, as on Ctrl-C


def test_report_and_journal_flags_need_run() -> None:
    done = subprocess.run([str(ENGINE), "sandbox", "psx", "--report", "r.json"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and "--report needs --run CONFIG" in done.stderr


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_config_is_pointed_at_the_sandbox_and_its_credentials_in_memory_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES.values():
        monkeypatch.delenv(name, raising=False)  # every credential generated: fresh ones for this sandbox
    loaded = load_config(REPO / "config.psx-sandbox.yaml")
    before = (REPO / "config.psx-sandbox.yaml").read_text()
    args = COMMAND.build_parser().parse_args(["--password-env", "MY_PASSWORD_VAR", "--no-market", "--speed", "60"])
    async with COMMAND.start(args, REPO / "config.psx-sandbox.yaml") as link:
        pointed, venue = point_config_at(loaded, link)
        options = pointed.config.venues[venue].options
        feed = pointed.config.venues[venue].market_data.options
    served = link.adapter_options
    assert venue == "psx" and link.order_adapter == "optimus" and isinstance(link.clock, ScaledClock)
    assert options["base_url"] == served["optimus"]["base_url"] != "http://127.0.0.1:8090/v1"  # any free port
    assert options["webhook_listen"] == "127.0.0.1:0" and options["password_env"] == "MY_PASSWORD_VAR"
    assert feed["url"] == served["psx_feed"]["url"] and feed["token_env"] == "PSX_FEED_TOKEN"
    env = link.environment
    assert set(env) == {"PSX_FEED_TOKEN", "OPTIMUS_USERNAME", "MY_PASSWORD_VAR", "OPTIMUS_WEBHOOK_SECRET"}
    secrets = {env["MY_PASSWORD_VAR"], env["PSX_FEED_TOKEN"], env["OPTIMUS_WEBHOOK_SECRET"]}
    assert secrets == link.secret_values and secrets <= pointed.secret_values
    assert env["OPTIMUS_USERNAME"] not in pointed.secret_values  # "sandbox" is a login, not a secret: logs keep it
    assert "MY_PASSWORD_VAR" not in os.environ  # the engine's run sets them, in its process only
    # the original is untouched, in memory and on disk
    assert loaded.config.venues["psx"].options["base_url"] == "http://127.0.0.1:8090/v1"
    assert (REPO / "config.psx-sandbox.yaml").read_text() == before


def test_an_engine_on_a_shared_clock_refuses_the_simulated_clock(tmp_path: Path) -> None:
    from engine.app import Engine

    loaded = load_config(REPO / "config.yaml")  # run.clock: simulated
    with pytest.raises(StartupError, match=r"set run\.clock: wall"):
        Engine(loaded, clock=ScaledClock(speed=60))
    wall = load_config(REPO / "config.psx-sandbox.yaml")
    with pytest.raises(StartupError, match=r"set run\.clock: wall"):
        Engine(wall, clock=SimClock(0))

