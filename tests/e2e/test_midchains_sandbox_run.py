"""`engine sandbox midchains --run config.midchains-sandbox.yaml --speed 60`: the MidChains venue and
the engine in one process on one scaled clock, orders through the real midchains_fix adapter (FIX
4.2 order entry) and books through midchains_fix_md (FIX market data), over loopback.

The day is the shipped config plus a taker that makes a fill certain, on a five-minute session at
60x: the run ends when that session does, about five seconds of real time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import add_strategy, run_sandbox, shipped_config, taker, write_config

from engine.venue import adapter_registry

LTC = "LTCUSD"
COMP_ID = "MCRUN4F1B9E2C"  # the sandbox's SenderCompID, MidChains' only identity: never printed
SHORT_SESSION = {"midchains-24h": {"mon_sun": [
    {"phase": "open", "start": "00:01", "end": "00:06", "accepts_new": True, "accepts_modify_cancel": True,
     "matches": True},
]}}

pytestmark = pytest.mark.skipif("midchains_fix_md" not in adapter_registry(),
                                reason="config.midchains-sandbox.yaml takes market data from midchains_fix_md "
                                "(branch mcmd), not registered here")


def test_one_command_runs_a_midchains_session_through_both_fix_adapters(tmp_path: Path) -> None:
    config = shipped_config("config.midchains-sandbox.yaml")
    config["sessions"]["profiles"] = SHORT_SESSION
    add_strategy(tmp_path, config, "taker", taker(LTC, "buy", 1), "midchains", [LTC])
    done = run_sandbox(tmp_path, "midchains", write_config(tmp_path, config), "--start", "2026-11-23T00:00+00:00",
                       "--report", str(tmp_path / "report.json"),
                       env={"MIDCHAINS_SANDBOX_SENDER_COMP_ID": COMP_ID})
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["clock"] == "scaled x60"
    assert report["sessions"] == ["closed", "open", "closed"]
    assert report["stopped_by"] == "end"
    venue = report["venues"]["midchains"]
    assert venue["messages_in"] > 0 and venue["messages_out"] > 0 and venue["reconnects"] == 0
    assert report["strategies"]["taker"]["fills"] >= 1
    assert report["strategies"]["taker"]["position"] == {LTC: "1"}
    assert report["strategies"]["mm"]["orders"] >= 2
    assert report["orders"]["open_at_exit"] == 0
    assert "midchains sandbox: stopped" in out
    # the venue's 10 messages/s and 4 orders/s (MID-9), counted by the sandbox on the shared clock
    assert "rate_violations" not in out
    for text in (out, (tmp_path / "report.json").read_text()):
        assert COMP_ID not in text
