"""The shipped config.psx-sandbox.yaml end to end: `engine sandbox psx` and `engine run` as two
processes over loopback, exactly as README's two terminals, with one venue `psx` whose market data
comes from the Live Feed adapter and whose orders go through the Optimus adapter (webhooks back).
The strategies are swapped for one that buys once at the ask, so a fill is certain within seconds;
the sessions are opened all day every day so the test does not depend on PSX hours.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import yaml
from support import ENGINE, MEBL_TAKER, REPO
from support.scrape import free_port, scrape, total


def _read_until(process: subprocess.Popen, marker: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    seen = ""
    assert process.stdout is not None
    while marker not in seen:
        assert time.monotonic() < deadline, f"no {marker!r} within {timeout} s; got:\n{seen}"
        line = process.stdout.readline()
        assert line or process.poll() is None, f"the sandbox exited:\n{seen}"
        seen += line
    return seen


def test_the_shipped_psx_config_trades_through_the_feed_and_the_broker_of_the_sandbox(tmp_path):
    webhook_port, metrics_port = free_port(), free_port()
    env = {**os.environ, "PSX_FEED_TOKEN": "e2e-feed-token", "OPTIMUS_USERNAME": "e2e-user",
           "OPTIMUS_PASSWORD": "e2e-password", "OPTIMUS_WEBHOOK_SECRET": "e2e-webhook-secret",
           "ENGINE_METRICS_LISTEN": f"127.0.0.1:{metrics_port}"}
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "adapters.psx.sandbox", "--feed-port", "0", "--broker-port", "0", "--always-open",
         "--webhook-url", f"http://127.0.0.1:{webhook_port}/webhook/visionmax", "--duration", "60",
         "--log-level", "WARNING"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        printed = _read_until(sandbox, "OPTIMUS_WEBHOOK_SECRET", 15)
        feed_url = printed.split("live feed on ", 1)[1].split()[0]
        broker_url = printed.split("optimus broker on ", 1)[1].split()[0]

        config = yaml.safe_load((REPO / "config.psx-sandbox.yaml").read_text())
        venue = config["venues"]["psx"]
        venue["options"].update(base_url=broker_url, webhook_listen=f"127.0.0.1:{webhook_port}")
        venue["market_data"]["options"]["url"] = feed_url
        config["sessions"].update(profile="always-open", holidays={"provider": "none", "trading_weekdays": "mon_sun"})
        config["logging"] = {"level": "WARNING"}
        (tmp_path / "taker.py").write_text(MEBL_TAKER)
        config["strategies"] = [{"name": "taker", "file": "taker.py", "venue": "psx", "instruments": ["MEBL"]}]
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

        report = tmp_path / "report.json"
        engine = subprocess.Popen([str(ENGINE), "run", "config.yaml", "--report", str(report)], cwd=tmp_path,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:  # until the fill shows in a scrape (published every second), not a fixed time
            deadline = time.monotonic() + 60
            while engine.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
                try:
                    if total(scrape(f"http://127.0.0.1:{metrics_port}"), "engine_fills_total") >= 1:
                        break
                except OSError:  # not listening yet
                    continue
        finally:
            engine.send_signal(signal.SIGINT)
            out, _ = engine.communicate(timeout=30)
        assert engine.returncode == 0, out
        result = json.loads(report.read_text())
        assert result["fills"] == 1 and result["strategies"]["taker"]["position"] == {"MEBL": "500"}, out
        assert result["anomalies"] == {}, result["anomaly_samples"]
        assert result["events"]["book"] > 0
        psx = result["venues"]["psx"]
        assert psx["status"] == "connected" and psx["disconnects"] == 0
        assert psx["messages_out"] > 0 and psx["messages_in"] > 0  # REST requests, answers and webhooks
        feed = psx["market_data"]
        assert feed["adapter"] == "psx_feed" and feed["status"] == "connected" and feed["messages_in"] > 0
        for secret in ("e2e-feed-token", "e2e-password", "e2e-webhook-secret"):
            assert secret not in out and secret not in report.read_text()
    finally:
        sandbox.send_signal(signal.SIGINT)
        sandbox.communicate(timeout=15)
