"""A stop leaves no order working, or exits non-zero naming each one (issue 17, item 6).

Real engine, real paper venue on the simulated clock: a strategy rests GTC orders in the open,
the day ends, and shutdown must get every one of them cancelled at the venue. The paper venue's
``reject_cancels`` fault refuses cancels (3001, the broker's rate limit) for a while; a small
venue budget makes the shutdown cancels take longer than one second's budget."""

from __future__ import annotations

import asyncio
import logging
import textwrap
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from engine.app import Engine
from engine.config import load_config
from engine.journal import Journal
from engine.report.page import render_html
from engine.shutdown import EXIT_ORDERS_LEFT_WORKING

D = Decimal

RESTER = """\
from engine import hookimpl

N = {n}

@hookimpl
def on_session_change(ctx, old, new):
    if new == "open":
        for i in range(N):
            ctx.submit("MEBL", "buy", 1, "180.00", tif="gtc")

"""

# rests N orders, one per book event (a refusal, 3001, is tried again at the next one)
BURST = """\
from engine import hookimpl

N = {n}

@hookimpl
def on_book(ctx, book):
    if ctx.session == "open" and len(ctx.open_orders()) < N:
        ctx.submit("MEBL", "buy", 1, "180.00", tif="gtc")
"""


def _engine(tmp_path: Path, *, orders: int = 5, faults: str = "[]", rate_limits: str = "",
            run_extra: str = "", source: str = RESTER, market: bool = False, options: str = "") -> Engine:
    (tmp_path / "rester.py").write_text(textwrap.dedent(source.format(n=orders)))
    config = tmp_path / "config.yaml"
    config.write_text(
        f"run: {{clock: simulated, start: 2026-11-23, days: 1, seed: 7{run_extra}}}\n"
        "instruments:\n"
        "  - {symbol: MEBL, venue: paper, tick_size: 0.01, lot_size: 1, previous_close: 187.50}\n"
        "venues:\n"
        f"  paper: {{adapter: paper, options: {{market: {{enabled: {str(market).lower()}}}, faults: {faults}{options}}}"
        f"{rate_limits}}}\n"
        "strategies:\n"
        "  - {name: rester, file: rester.py, venue: paper, instruments: [MEBL]}\n"
    )
    return Engine(load_config(config))


def _working_at_venue(engine: Engine) -> list[str]:
    adapter = engine.adapters["paper"]
    return [o.client_id for o in asyncio.run(adapter.query_open_orders())]


# shutdown starts one second after the close (15:35:00): cancels refused from 15:34:50 on
REFUSE_CANCELS = '[{{kind: reject_cancels, at: "15:34:50", duration_s: {s}, code: 3001}}]'


def test_cancels_refused_for_a_while_are_retried_until_the_venue_takes_them(tmp_path, caplog):
    engine = _engine(tmp_path, faults=REFUSE_CANCELS.format(s=20))
    with caplog.at_level(logging.INFO, logger="engine"):
        result = anyio.run(engine.run)
    assert result.exit_code == 0
    assert _working_at_venue(engine) == []
    orders = result.report["orders"]
    assert orders["cancelled"] == 5 and orders["open_at_exit"] == 0 and orders["left_working"] == []
    assert any("cancels sent again" in r.getMessage() for r in caplog.records)


def test_cancels_refused_past_the_deadline_exit_non_zero_naming_every_order(tmp_path, caplog):
    engine = _engine(tmp_path, faults=REFUSE_CANCELS.format(s=600), run_extra=", shutdown_timeout_s: 12")
    with caplog.at_level(logging.INFO, logger="engine"):
        result = anyio.run(engine.run)
    assert result.exit_code == EXIT_ORDERS_LEFT_WORKING == 3
    working = _working_at_venue(engine)
    assert len(working) == 5
    left = result.report["orders"]["left_working"]
    assert sorted(each["client_id"] for each in left) == sorted(working)
    venue_ids = {o.client_id: o.venue_order_id for o in asyncio.run(engine.adapters["paper"].query_open_orders())}
    for each in left:
        assert each == {
            "strategy": "rester", "venue": "paper", "client_id": each["client_id"],
            "venue_order_id": venue_ids[each["client_id"]], "symbol": "MEBL", "side": "buy", "leaves": "1",
            "status": each["status"],
        }
        assert each["status"] in ("new", "pending_cancel")  # refused, or its last cancel not answered yet
        assert each["venue_order_id"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("5 orders still working after 12 s of shutdown cancels" in line for line in errors)
    for client_id in working:
        assert any(client_id in line and "left working at venue paper" in line for line in errors)
    # the deadline is engine time: 12 s after the shutdown began, not the old 5 s grace
    assert engine.clock.now_ns() - engine.end_ns >= 12 * 10**9
    # the picture of the day names them too
    page = render_html(result.report)
    assert "Orders left working" in page and "5 left working" in page
    assert all(f"<td>{client_id}</td>" in page for client_id in working)
    # the journal keeps them open for the next start to reconcile, and says why
    journal = Journal.open_readonly(engine.journal_path)
    try:
        assert sorted(o.client_id for o in journal.open_orders()) == sorted(working)
        assert journal.runs()[-1]["stopped_by"] == "end; 5 orders left working"
    finally:
        journal.close()


def test_more_open_orders_than_one_seconds_cancel_budget_are_all_cancelled_within_it(tmp_path):
    # 10 requests/s: the shutdown's 60 cancels need 6 s of the venue's budget
    engine = _engine(tmp_path, orders=60, rate_limits=", rate_limits: [{scope: all, count: 10, per_seconds: 1}]",
                     source=BURST, market=True)
    adapter = engine.adapters["paper"]
    sent: list[int] = []
    cancel = adapter.cancel

    def counted(order):
        sent.append(engine.clock.now_ns())
        cancel(order)

    adapter.cancel = counted
    result = anyio.run(engine.run)
    assert result.exit_code == 0
    assert _working_at_venue(engine) == []
    assert result.report["orders"]["cancelled"] == 60 and result.report["orders"]["left_working"] == []
    assert len(sent) == 60
    for i, ts in enumerate(sent):  # never more than 10 in any one-second window
        assert sum(1 for other in sent[i:] if other - ts < 10**9) <= 10


def test_a_venue_lost_during_shutdown_gets_the_cancels_when_it_is_back(tmp_path):
    # the venue drops as shutdown begins and keeps the orders (no cancel-on-disconnect) for 10 s
    engine = _engine(tmp_path, faults='[{kind: drop, at: "15:35:01", duration_s: 10}]',
                     options=", cancel_on_disconnect: false")
    result = anyio.run(engine.run)
    assert result.exit_code == 0
    assert _working_at_venue(engine) == []
    assert result.report["orders"]["cancelled"] == 5 and result.report["orders"]["left_working"] == []
    assert result.report["venues"]["paper"]["disconnects"] == 1


def test_a_cancel_lost_on_the_way_is_found_out_by_asking_the_venue_and_sent_again(tmp_path, caplog):
    engine = _engine(tmp_path)
    adapter = engine.adapters["paper"]
    cancel = adapter.cancel
    lost: set[str] = set()

    def lose_the_first(order):  # each order's first cancel never arrives, and nobody says so
        if order.client_id in lost:
            cancel(order)
        else:
            lost.add(order.client_id)

    adapter.cancel = lose_the_first
    with caplog.at_level(logging.INFO, logger="engine"):
        result = anyio.run(engine.run)
    assert len(lost) == 5
    assert result.exit_code == 0
    assert _working_at_venue(engine) == []
    assert result.report["orders"]["cancelled"] == 5
    assert any("5 cancels sent again, 1 venue queries" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("timeout", ["0", "-1", "3601"])
def test_the_shutdown_timeout_is_bounded(tmp_path, timeout):
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="shutdown_timeout_s"):
        _engine(tmp_path, run_extra=f", shutdown_timeout_s: {timeout}")


SIGNALLED = RESTER + """
import os
import signal

@hookimpl
def on_stop(ctx):  # an impatient operator: Ctrl-C twice while shutdown is cancelling
    os.kill(os.getpid(), signal.SIGINT)
    os.kill(os.getpid(), signal.SIGINT)
"""


def test_engine_run_exits_3_and_a_second_ctrl_c_does_not_abandon_the_orders(tmp_path):
    import json
    import subprocess
    import sys

    engine = _engine(tmp_path, faults=REFUSE_CANCELS.format(s=600), run_extra="",
                     source=SIGNALLED)
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "run", str(engine.loaded.path), "--report", str(report),
         "--shutdown-timeout", "7"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert done.returncode == EXIT_ORDERS_LEFT_WORKING, done.stderr[-3000:]
    assert "SIGINT received while shutdown cancels: still cancelling 5 open orders" in done.stderr
    assert "KeyboardInterrupt" not in done.stderr
    left = json.loads(report.read_text())["orders"]["left_working"]
    numbers = sorted(int(each["client_id"].rpartition("-")[2]) for each in left)
    assert numbers == [1, 2, 3, 4, 5]
    assert all(each["client_id"].startswith("rester-") for each in left)
    assert done.stderr.count("left working at venue paper") == 5
    assert "5 orders still working after 7 s of shutdown cancels" in done.stderr


def test_through_the_optimus_sandbox_a_broker_outage_at_shutdown_is_waited_out(tmp_path):
    """``engine sandbox psx --run`` at 60x: the broker answers 9001 (HTTP 503) to its next 40
    requests as the engine stops, the adapter reports the venue disconnected, and shutdown waits
    for it to come back and reconcile. The deadline is real time on this sped-up clock: in engine
    time 30 s would be half a real second, less than the adapter needs to reconnect."""
    import json
    import os
    import subprocess
    import sys

    from support.runs import SECRETS, psx_config_on_a_short_day

    config = psx_config_on_a_short_day(tmp_path)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "engine"), "sandbox", "psx", "--run", str(config), "--speed", "60",
         "--start", "2026-11-23T08:59", "--duration", "4", "--fault", "5xx@3.9,count=40",
         "--report", str(tmp_path / "report.json")],
        cwd=tmp_path, env={**os.environ, **SECRETS, "ENGINE_METRICS_LISTEN": "127.0.0.1:0"}, capture_output=True,
        text=True, timeout=120,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "injecting 5xx" in out and "venue psx disconnected" in out
    orders = json.loads((tmp_path / "report.json").read_text())["orders"]
    assert orders["open_at_exit"] == 0 and orders["left_working"] == []


def test_the_shipped_supervisors_wait_longer_than_the_shutdown_deadline():
    """systemd and compose send SIGKILL after their stop timeout: it must leave shutdown its time."""
    import configparser
    import re

    import yaml
    from support import REPO

    from engine.config import RunConfig

    deadline = RunConfig().shutdown_timeout_s
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(REPO / "deploy" / "systemd" / "engine.service")
    assert int(unit["Service"]["TimeoutStopSec"]) >= 2 * deadline
    compose = yaml.safe_load((REPO / "deploy" / "docker-compose.yml").read_text())
    grace = [service["stop_grace_period"] for service in compose["services"].values() if "stop_grace_period" in service]
    assert grace and all(int(re.fullmatch(r"(\d+)s", g).group(1)) >= 2 * deadline for g in grace)


def test_a_halt_keeps_cancelling_until_the_venue_takes_every_cancel(tmp_path, caplog):
    """The kill switch's halt at 12:00 meets cancels refused (3001) for 20 s: it keeps at them as
    shutdown does, so every order is final long before the close, not left working while halted."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from engine.risk.killswitch import TradingState

    faults = '[{kind: reject_cancels, at: "11:59:50", duration_s: 20, code: 3001}]'
    engine = _engine(tmp_path, faults=faults)

    def at(hh: int, mm: int) -> int:
        return int(datetime(2026, 11, 23, hh, mm, tzinfo=ZoneInfo("Asia/Karachi")).timestamp()) * 10**9

    seen: dict[str, int] = {}

    def count_open(label: str) -> None:
        seen[label] = sum(len(runner.open_orders) for runner in engine.runtime.runners.values())

    engine.clock.call_at(at(11, 59), count_open, "before")
    engine.clock.call_at(at(12, 0), engine.runtime.manual_trigger, TradingState.HALTED, "test halt")
    engine.clock.call_at(at(12, 5), count_open, "after")
    with caplog.at_level(logging.INFO, logger="engine"):
        result = anyio.run(engine.run)
    assert seen == {"before": 5, "after": 0}
    assert result.exit_code == 0 and result.report["orders"]["cancelled"] == 5
    assert any("every order final while halted" in r.getMessage() for r in caplog.records)


def test_a_halt_names_the_orders_it_cannot_close_yet(tmp_path, caplog):
    """Cancels refused from 10 s before the halt until 90 s after it: every 30 s an ERROR line names
    the orders still working; when the venue takes the cancels, every order is final before the close."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from engine.risk.killswitch import TradingState

    engine = _engine(tmp_path, faults='[{kind: reject_cancels, at: "11:59:50", duration_s: 100, code: 3001}]')
    noon = int(datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Asia/Karachi")).timestamp()) * 10**9
    engine.clock.call_at(noon, engine.runtime.manual_trigger, TradingState.HALTED, "test halt")
    with caplog.at_level(logging.INFO, logger="engine"):
        result = anyio.run(engine.run)
    named = [r.getMessage() for r in caplog.records
             if r.levelno == logging.ERROR and "halted, and 5 orders still working" in r.getMessage()]
    assert len(named) == 3  # at 30, 60 and 90 s: the simulated clock makes the count exact
    assert all(line.count("paper:rester-") == 5 for line in named), named[0]
    assert result.exit_code == 0 and result.report["orders"]["cancelled"] == 5
