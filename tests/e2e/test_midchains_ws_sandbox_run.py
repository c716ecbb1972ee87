"""`engine sandbox midchains --run config.midchains-ws-sandbox.yaml`: the MidChains venue and the
engine in one process, the shipped config's strategies trading through the real ``midchains_ws``
adapter over loopback (the sandbox points the adapter's url, userid and password variable at
itself). A taker is added so a fill is certain; the run ends by ``--duration``.

At ``--speed 20``: the sandbox counts 001's rate limits in venue seconds (its WebSocket and FIX
windows read the sandbox's clock) and the adapter paces on the engine's clock, the same scaled
clock, so a fast run breaches none of them either (until 2026-12-07 the sandbox counted wall
seconds and a fast run drew 3001 rejects)."""

from __future__ import annotations

import json
from pathlib import Path

from support import add_strategy, run_sandbox, shipped_config, taker, write_config

PASSWORD = "mcws-run-password-5d1e77"  # the sandbox's WebSocket login: must never be printed


def test_the_shipped_ws_config_trades_through_the_websocket_adapter(tmp_path: Path) -> None:
    config = shipped_config("config.midchains-ws-sandbox.yaml")
    assert config["venues"]["midchains"]["adapter"] == "midchains_ws"
    add_strategy(tmp_path, config, "taker", taker("LTCUSD", "buy", 1), "midchains", ["LTCUSD"])
    done = run_sandbox(tmp_path, "midchains", write_config(tmp_path, config), "--speed", "20", "--duration", "8",
                       "--report", str(tmp_path / "report.json"),
                       env={"MIDCHAINS_SANDBOX_WS_USERS": f"wsrunner:{PASSWORD}", "MIDCHAINS_WS_PASSWORD": None})
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["stopped_by"] == "duration"
    venue = report["venues"]["midchains"]
    assert venue["messages_in"] > 0 and venue["messages_out"] > 0 and venue["reconnects"] == 0
    assert report["strategies"]["taker"]["fills"] >= 1
    assert report["strategies"]["taker"]["position"] == {"LTCUSD": "1"}
    assert report["orders"]["submitted"] >= 1 and report["orders"]["open_at_exit"] == 0
    stopped = next(line for line in out.splitlines() if "midchains sandbox: stopped" in line)
    assert '"ws.logins": 1' in stopped and '"ws.orders"' in stopped and "violations" not in stopped, stopped
    for text in (out, (tmp_path / "report.json").read_text()):
        assert PASSWORD not in text
