"""``engine record`` of a PSX config connects only the Live Feed (issue 26): the Optimus order
adapter's credentials are not set, and the day is recorded all the same."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from support import runs, shipped_config, write_config
from support.runs import engine_command

pytest.importorskip("pyarrow")

TOKEN = "record-feed-token-3b9e"
ALWAYS_OPEN = {
    "profile": "always", "timezone": "UTC", "holidays": {"provider": "none", "trading_weekdays": "mon_sun"},
    "profiles": {"always": {"mon_sun": [{"phase": "open", "start": "00:00", "end": "23:59:59", "accepts_new": True,
                                         "accepts_modify_cancel": True, "matches": True}]}},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(path: Path, text: str, timeout: float, process: subprocess.Popen) -> bool:
    """True once ``text`` is in the log; False at the timeout or as soon as the process has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def test_record_without_the_order_adapters_credentials(tmp_path: Path) -> None:
    feed_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTIMUS_")}
    env["PSX_FEED_TOKEN"] = TOKEN
    sandbox_log = tmp_path / "sandbox.log"
    with open(sandbox_log, "w") as log:
        sandbox = subprocess.Popen(engine_command("sandbox", "psx", "--always-open", "--feed-port", str(feed_port),
                                                  "--broker-port", str(free_port())),
                                   cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        # the engine refuses to start when its venue does not answer: the sandbox listens first
        runs.wait_for(lambda: runs.port_open(feed_port), 60, "the Live Feed sandbox")
        config = shipped_config("config.psx-sandbox.yaml")
        config["sessions"] = ALWAYS_OPEN
        config["metrics"] = {"enabled": False}
        config["venues"]["psx"]["market_data"]["options"]["url"] = f"ws://127.0.0.1:{feed_port}"
        path = write_config(tmp_path, config)
        record_log = tmp_path / "record.log"
        with open(record_log, "w") as log:
            record = subprocess.Popen(engine_command("record", str(path), "--out", "rec"), cwd=tmp_path, env=env,
                                      stdout=log, stderr=subprocess.STDOUT)
        try:
            # the feed is connected and the heartbeat (every 5 s) has counted its events
            connected = wait_for(record_log, "market data for venue psx connected", 90, record)
            assert connected, record_log.read_text()[-3000:]
            assert wait_for(record_log, "heartbeat open", 60, record), record_log.read_text()[-3000:]
        finally:
            record.send_signal(signal.SIGINT)
            record.wait(timeout=120)
        output = record_log.read_text()
        assert record.returncode == 0, output[-3000:]
        assert "OPTIMUS" not in output  # no order adapter asked for its credentials
        files = list((tmp_path / "rec" / "venue=psx").rglob("*.parquet"))
        assert any("symbol=_session" not in str(f) for f in files), output[-3000:]
    finally:
        sandbox.send_signal(signal.SIGINT)
        try:
            sandbox.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sandbox.kill()
