"""The shipped ``config.pulse-sandbox.yaml`` run by the real engine (``engine run`` in a subprocess,
stopped with SIGINT) against the real Pulse sandbox on 127.0.0.1 port 0, in this process so the
test can look at the venue's side of the account as well as the engine's report and log.

Only two things in the copy of the config differ from the shipped file: the sandbox's URL (its
port is picked at random) and the strategy file's path (the copy lives in a temporary folder).
The engine runs at DEBUG, so websockets logs every frame of the session: the test also checks that
no piece of the client secret or of any token reaches the log or the report.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
import yaml
from support import REPO
from support.pulse import record_issued_tokens
from support.runs import copy_config, engine_command, interrupt, summary

from adapters.pulse.sandbox import PulseSandbox
from adapters.sim.market import MarketOptions
from engine.sessions import SessionSchedule, SessionsConfig

pytestmark = [pytest.mark.anyio, pytest.mark.skipif(os.name != "posix", reason="SIGINT to a subprocess")]

SHIPPED = REPO / "config.pulse-sandbox.yaml"
#: the longest the engine may take to quote and trade before it is stopped (it usually needs 2-5 s)
TRADE_DEADLINE_S = 30.0
#: the longest a SIGINT'd engine may take to cancel, log out and write its report
STOP_DEADLINE_S = 30.0


def windows(value: str, size: int = 8) -> set[str]:
    return {value[i:i + size] for i in range(len(value) - size + 1)}


def test_the_shipped_config_trades_today_whatever_the_weekday() -> None:
    """Pulse is 24/7: the shipped calendar opens every day (a weekday-only calendar would leave a
    weekend run closed and the end-to-end test below without a single quote)."""
    sessions = SessionSchedule(SessionsConfig(**yaml.safe_load(SHIPPED.read_text())["sessions"]))
    today = dt.datetime.now(dt.UTC).date()
    for day in (today + dt.timedelta(days=n) for n in range(7)):
        assert sessions.calendar.is_trading_day(day), day
        assert sessions.day_window(day) is not None, day


async def test_engine_runs_the_shipped_config_against_the_sandbox(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import secrets as random_secrets

    secret = "e2e-" + random_secrets.token_urlsafe(18)
    issued = record_issued_tokens(monkeypatch)
    # the sandbox's synthetic market, with background takers every second or so to fill our quotes
    market = MarketOptions(enabled=True, step_interval_s=Decimal("0.3"), aggressive_interval_s=Decimal(1),
                           size_unit_shares=1)
    async with PulseSandbox(credentials={"sandbox": secret}, market=market, seed=3) as sb:
        config = copy_config(tmp_path, sb.url)
        report_path = tmp_path / "report.json"
        log_path = tmp_path / "engine.log"
        env = dict(os.environ, PULSE_CLIENT_SECRET=secret)
        with log_path.open("w") as log_file:
            process = subprocess.Popen(
                engine_command("run", str(config), "--report", str(report_path), "--log-level", "DEBUG"),
                cwd=tmp_path, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True,
            )
            try:
                account = sb.accounts["sandbox"]

                def traded_and_quoting() -> bool:
                    return bool(account.trades) and any(o.is_open for o in account.orders.values())

                deadline = time.monotonic() + TRADE_DEADLINE_S
                while not traded_and_quoting() and process.poll() is None and time.monotonic() < deadline:
                    await anyio.sleep(0.1)
                assert traded_and_quoting(), "no fill with quotes working within the deadline:\n" + \
                    summary(log_path.read_text())
                await interrupt(process, STOP_DEADLINE_S)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        log = log_path.read_text()
        assert process.returncode == 0, summary(log)
        # the venue's side: every quote came from the engine (label = client id), all withdrawn by the
        # engine itself before a graceful logout (cancel-on-disconnect had nothing left to do)
        orders = list(account.orders.values())
        assert len(orders) >= 2 and all(o.label.startswith("mm-") for o in orders)
        left = [o.label for o in orders if o.is_open]
        assert not left, f"quotes left working at the venue after the engine stopped: {left}\n" + summary(log)
        assert sb.counters["logouts"] == 1 and sb.counters["cod_cancels"] == 0
        venue_trades = list(account.trades)

    report = json.loads(report_path.read_text())
    assert report["stopped_by"] == "SIGINT" and report["sessions"][-1] == "open"
    assert report["anomalies"] == {} and report["kill_switch"]["state"] == "active", report["kill_switch"]
    orders_seen = report["orders"]
    assert orders_seen["submitted"] >= 2 and orders_seen["open_at_exit"] == 0
    assert orders_seen["cancelled"] >= 1  # at least the quote working at SIGINT, cancelled and confirmed
    # every fill the venue made reached the engine once
    assert report["fills"] == len(venue_trades) >= 1 and report["duplicate_fills_dropped"] == 0
    assert report["strategies"]["mm"]["state"] == "stopped"
    assert report["strategies"]["mm"]["fills"] == len(venue_trades)
    assert set(report["rejects_by_code"]) <= {"7009"}  # only MMP refusals while frozen, if any
    wire = report["venues"]["pulse"]
    assert wire["messages_in"] > wire["messages_out"] > 0 and wire["reconnects"] == 0
    assert wire["disconnects"] == 0 and wire["status"] in ("connected", "closed")
    # the log: a login, quotes acknowledged and filled, the shutdown's cancels and the logout
    assert "pulse pulse: authenticated" in log and "venue pulse connected" in log
    assert "session closed -> open" in log and "fill  mm" in log
    assert "SIGINT received" in log and "pulse pulse: logged out" in log
    assert "Traceback" not in log and " ERROR " not in log, summary(log)
    assert "> TEXT" in log  # DEBUG really logged the frames
    text = log + report_path.read_text()
    assert len(issued) >= 2
    for value in (secret, *issued):
        leaked = sorted(piece for piece in windows(value) if piece in text)
        assert not leaked, f"pieces of a credential in the log or report: {leaked}"
