"""`engine sandbox VENUE --run CONFIG` for the two halves of the PSX venue alone: every sandbox
runs an engine in one process the same way (psx and pulse: test_psx_sandbox_run.py,
test_pulse_sandbox_run.py).

Each run is the shipped config.psx-sandbox.yaml cut to what the sandbox serves, on a ten-minute
session profile at 60x: it ends with the day, about ten seconds of real time. And every `--run`
refuses a config without the venue its sandbox serves.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import PSX_SHORT_DAY, run_sandbox, shipped_config, write_config

SECRETS = {"PSX_FEED_TOKEN": "alone-feed-token-42c1", "OPTIMUS_PASSWORD": "alone-password-8e0d",
           "OPTIMUS_WEBHOOK_SECRET": "alone-webhook-secret-61f7"}


def _config(tmp_path: Path, cut: str) -> Path:
    config = shipped_config("config.psx-sandbox.yaml")
    config["sessions"] = PSX_SHORT_DAY
    venue = config["venues"]["psx"]
    if cut == "feed":  # orders on the embedded paper venue, books from the Live Feed sandbox
        venue["adapter"], venue["options"] = "paper", {}
    else:  # orders through the Optimus sandbox, no market data
        del venue["market_data"]
    return write_config(tmp_path, config)


def _run(tmp_path: Path, venue: str, cut: str) -> tuple[dict, str]:
    done = run_sandbox(tmp_path, venue, _config(tmp_path, cut), "--start", "2026-11-23T08:59",
                       "--report", str(tmp_path / "report.json"), env=SECRETS)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    for secret in SECRETS.values():
        assert secret not in out
    return json.loads((tmp_path / "report.json").read_text()), out


def test_the_live_feed_sandbox_runs_an_engine_in_one_process(tmp_path: Path) -> None:
    report, out = _run(tmp_path, "psx_feed", "feed")
    assert report["clock"] == "scaled x60" and report["stopped_by"] == "end"
    assert report["sessions"] == ["closed", "pre_open", "open", "post_close", "closed"]
    feed = report["venues"]["psx"]["market_data"]
    assert feed["adapter"] == "psx_feed" and feed["messages_in"] > 0 and feed["reconnects"] == 0
    assert "psx feed sandbox: stopped" in out


def test_the_optimus_sandbox_runs_an_engine_in_one_process(tmp_path: Path) -> None:
    report, out = _run(tmp_path, "optimus", "broker")
    assert report["clock"] == "scaled x60" and report["stopped_by"] == "end"
    assert report["sessions"] == ["closed", "pre_open", "open", "post_close", "closed"]
    broker = report["venues"]["psx"]
    assert broker["status"] == "connected" and broker["messages_in"] > 0 and broker["messages_out"] > 0
    assert "optimus sandbox: stopped" in out and '"logins": 1' in out


@pytest.mark.parametrize(("venue", "adapter"), [("psx", "optimus"), ("pulse", "pulse")])
def test_run_refuses_a_config_without_the_sandbox_venue(tmp_path: Path, venue: str, adapter: str) -> None:
    path = write_config(tmp_path, shipped_config("config.yaml"), "paper.yaml")
    done = run_sandbox(tmp_path, venue, path, timeout=60)
    assert done.returncode == 1
    assert f"--run needs exactly one venue with adapter: {adapter}" in done.stderr
    assert "refusing to start" in done.stderr
