"""Outside history all the way through: the shipped PSX daily sample imported (``engine data
import``), replayed by the replay adapter over three days with a strategy that trades, the
replay's progress in the log, and ``engine report DIR`` drawing the run's page, a page for each
replayed day and the summary."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml
from support import ENGINE, REPO

SAMPLE = REPO / "engine" / "history" / "sample" / "psx-daily-sample.csv"

#: buys 10 OGDC at the touch once a day (marketable IOC): trades against the imported book
DAILY_BUYER = """\
from decimal import Decimal

from engine import hookimpl

state = {"day": None, "working": False}

@hookimpl
def on_book(ctx, book):
    if ctx.session != "open" or book.symbol != "OGDC" or book.best_ask is None or state["working"]:
        return
    today = ctx.now().date()
    if state["day"] == today:
        return
    state["day"], state["working"] = today, True
    ctx.submit("OGDC", "buy", 10, book.best_ask, tif="ioc")

@hookimpl
def on_fill(ctx, fill):
    state["working"] = False

@hookimpl
def on_order_update(ctx, order):
    if order.status in ("cancelled", "expired", "rejected"):
        state["working"] = False
"""


def test_imported_bars_replay_through_the_engine_and_report(tmp_path: Path) -> None:
    imported = subprocess.run([str(ENGINE), "data", "import", str(SAMPLE), "--kind", "bars", "--out", "rec",
                               "--steps", "10"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr
    assert "3 symbols (MEBL, OGDC, SYS), 10 days" in imported.stdout
    assert "read psx-daily-sample.csv: 100% 30/30 rows" in imported.stderr
    assert "write: 100%" in imported.stderr and "\r" not in imported.stderr  # a pipe: plain lines

    (tmp_path / "buyer.py").write_text(DAILY_BUYER)
    config = {
        "run": {"clock": "simulated", "start": "2026-11-02", "days": 3, "seed": 1},
        "instruments": [{"symbol": s, "venue": "psx", "tick_size": "0.01", "lot_size": 1, "previous_close": c}
                        for s, c in (("MEBL", "187.50"), ("OGDC", "109.30"), ("SYS", "432.10"))],
        "venues": {"psx": {"adapter": "replay", "options": {"path": "rec"},
                           "account": {"cash": 1000000}}},
        "strategies": [{"name": "buyer", "file": "buyer.py", "venue": "psx", "instruments": ["OGDC"]}],
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = subprocess.run([str(ENGINE), "run", "config.yaml", "--report", "runs/days.json"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    progress = re.findall(r"INFO    replay psx: (\d+)% ([\d,]+)/([\d,]+) events", run.stderr)
    assert progress and progress[-1][2] == progress[0][2]  # one total, counted up to the last line
    report = json.loads((tmp_path / "runs" / "days.json").read_text())
    assert report["trading_days"] == ["2026-11-02", "2026-11-03", "2026-11-04"]
    assert report["fills"] == 3  # one buy a day, at the imported book's ask

    drawn = subprocess.run([str(ENGINE), "report", "runs"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=120)
    assert drawn.returncode == 0, drawn.stderr
    page = (tmp_path / "runs" / "summary.html").read_text()
    assert re.findall(r'<tr><td>(\d{4}-\d\d-\d\d)</td>', page) == report["trading_days"]
    assert page.count('<td class="pos">buy</td>') == 3  # the journal's fills, one a day
    assert drawn.stdout.split() == [f"runs/{name}.html" for name in (
        "days", "days.2026-11-02", "days.2026-11-03", "days.2026-11-04", "summary")]  # every replayed day
    assert re.findall(r'<a href="(days\.[\d-]+\.html)">', page) == [
        "days.2026-11-02.html", "days.2026-11-03.html", "days.2026-11-04.html"]
    second = (tmp_path / "runs" / "days.2026-11-03.html").read_text()
    assert "Day 2 of 3 of the run" in second and re.search(r'<div class="k">fills</div><div class="v">1</div>',
                                                           second)
