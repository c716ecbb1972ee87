"""``engine report DIR`` over two real runs (two short simulated days, the second continuing the
first's account): each run gets its day page, the folder a summary whose days add up to the last
report's account PnL and whose trades come from the journal with their fees."""

from __future__ import annotations

import json
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import yaml
from support import ENGINE, PSX_SHORT_DAY, write_engine_config

#: buys 10 MEBL twice a run (marketable IOC), so every day has fills and fees (buying only: shares
#: bought yesterday are not settled yet to sell today)
BUYER = """\
from decimal import Decimal

from engine import hookimpl

state = {"working": False, "sent": 0}

@hookimpl
def on_book(ctx, book):
    if state["working"] or state["sent"] >= 2 or ctx.session != "open" or book.symbol != "MEBL":
        return
    if book.best_ask is None:
        return
    state["working"] = True
    state["sent"] += 1
    ctx.submit("MEBL", "buy", 10, ctx.instrument("MEBL").round_to_tick(book.best_ask * Decimal("1.01"), "buy"),
               tif="ioc")

@hookimpl
def on_fill(ctx, fill):
    state["working"] = False

@hookimpl
def on_order_update(ctx, order):
    if order.status in ("cancelled", "expired", "rejected"):
        state["working"] = False
"""


def run_day(folder: Path, report: str) -> None:
    done = subprocess.run([str(ENGINE), "run", "config.yaml", "--report", report], cwd=folder,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_report_dir_builds_day_pages_and_the_summary(tmp_path: Path) -> None:
    write_engine_config(tmp_path, {"buyer": BUYER}, market=True, sessions=PSX_SHORT_DAY, symbols=("MEBL",))
    run_day(tmp_path, "day1.json")
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    del config["run"]["start"]  # the journal's account goes on with its next trading day
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run_day(tmp_path, "day2.json")
    day1, day2 = (json.loads((tmp_path / f"day{n}.json").read_text()) for n in (1, 2))
    assert day1["fills"] >= 1 and day2["fills"] >= 1
    assert day2["journal"]["restored"].startswith("snapshot of")  # the account continued

    done = subprocess.run([str(ENGINE), "report", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(tmp_path / "day1.html"), str(tmp_path / "day2.html"),
                                   str(tmp_path / "summary.html")]
    assert "<h1>Run report: " in (tmp_path / "day1.html").read_text()
    page = (tmp_path / "summary.html").read_text()
    days = re.findall(r'<tr><td>(\d{4}-\d\d-\d\d)</td><td class="n">(?:<span class="\w+">)?([-\d,.]+)', page)
    assert [d for d, _ in days] == day1["trading_days"] + day2["trading_days"]
    account = sum(Decimal(s["realized_pnl"]) + Decimal(s["unrealized_pnl"]) for s in day2["strategies"].values())
    assert sum(Decimal(v.replace(",", "")) for _, v in days) == account
    trades = page[page.index('<table class="trades">'):]
    assert trades.count("<tr>") == 1 + day1["fills"] + day2["fills"]
    fees = re.findall(r'<td class="n">([\d,.]+)</td><td>(?:maker|taker)</td>', trades)
    assert len(fees) == day1["fills"] + day2["fills"] and all(Decimal(f.replace(",", "")) > 0 for f in fees)
    assert "from its report's timeline" not in page  # the journal was found beside the reports

    again = subprocess.run([str(ENGINE), "report", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.split() == [str(tmp_path / "summary.html")]  # pages kept


def test_report_dir_without_runs_exits_1(tmp_path: Path) -> None:
    done = subprocess.run([str(ENGINE), "report", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "no run report in it" in done.stderr
    assert not (tmp_path / "summary.html").exists()
