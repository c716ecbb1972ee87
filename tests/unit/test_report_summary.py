"""The multi-day summary page (engine/report/summary.py) from synthetic runs: each run's own PnL
and fees although reports carry the account's since it began, a multi-day run split into days
that add up exactly, the equity curve and drawdown, the trades list, and the page's structure
(not its pixels): sections, charts, rows, links, escaping, nothing loaded from anywhere."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from engine.report import summary as summary_module
from engine.report.summary import RunsError, find_runs, render_summary, summarize, write_pages

D = Decimal


def sample(ts: str, realized: str, unrealized: str = "0") -> dict:
    return {"ts": ts, "strategies": {"mm": {"realized": realized, "unrealized": unrealized, "positions": {}}},
            "prices": {}}


def phases(day: str) -> list[dict]:
    return [{"ts": f"{day}T09:15:00.000+05:00", "phase": "pre_open"},
            {"ts": f"{day}T09:30:00.000+05:00", "phase": "open"},
            {"ts": f"{day}T15:30:00.000+05:00", "phase": "post_close"},
            {"ts": f"{day}T15:35:00.000+05:00", "phase": "closed"}]


def report(days: list[str], realized: str, unrealized: str, fees: str, fills: list[dict], samples: list[dict],
           restored: str, name: str = "mm") -> dict:
    return {
        "sessions": ["closed", "pre_open", "open", "post_close", "closed"], "trading_days": days,
        "orders": {"submitted": len(fills)}, "fills": len(fills), "rejects_by_code": {}, "seed": 7,
        "strategies": {name: {"realized_pnl": realized, "unrealized_pnl": unrealized, "fees": fees,
                              "fills": len(fills)}},
        "journal": {"path": "gone.journal.sqlite", "restored": restored},
        "timeline": {"interval_s": 60, "timezone": "Asia/Karachi",
                     "phases": [p for d in days for p in phases(d)], "samples": samples, "fills": fills,
                     "rejects": [], "bands": {}, "dropped": {"fills": 0}},
    }


def fill(ts: str, side: str, qty: str, price: str, strategy: str = "mm") -> dict:
    return {"ts": ts, "strategy": strategy, "venue": "paper", "symbol": "MEBL", "side": side, "qty": qty,
            "price": price, "liquidity": "maker"}


def three_runs(folder: Path) -> None:
    """Day 1 new account (+100 net, peak +150), day 2 continues (-300), days 3-4 one run (+50, +20)."""
    day1 = report(["2026-11-23"], "90.00", "10.00", "5.00",
                  [fill("2026-11-23T10:00:00.000+05:00", "buy", "10", "187.50")],
                  [sample("2026-11-23T09:30:00.000+05:00", "0"), sample("2026-11-23T12:00:00.000+05:00", "150"),
                   sample("2026-11-23T15:35:00.000+05:00", "90.00", "10.00")], "new account")
    day2 = report(["2026-11-24"], "-200.00", "0", "12.50",
                  [fill("2026-11-24T11:00:00.000+05:00", "sell", "10", "186.00")],
                  [sample("2026-11-24T09:15:00.000+05:00", "90.00", "10.00"),
                   sample("2026-11-24T15:35:00.000+05:00", "-200.00")],
                  "snapshot of 2026-11-23, 0 fills replayed, 0 open orders to reconcile")
    days34 = report(["2026-11-25", "2026-11-26"], "-140.00", "10.00", "20.00", [],
                    [sample("2026-11-25T09:15:00.000+05:00", "-200.00"),
                     sample("2026-11-25T15:35:00.000+05:00", "-150.00"),
                     sample("2026-11-26T09:15:00.000+05:00", "-150.00"),
                     sample("2026-11-26T15:35:00.000+05:00", "-140.00", "10.00")],
                    "snapshot of 2026-11-24, 0 fills replayed, 0 open orders to reconcile")
    (folder / "b").mkdir()
    (folder / "a-day1.json").write_text(json.dumps(day1))
    (folder / "b" / "day2.json").write_text(json.dumps(day2))
    (folder / "c-days34.json").write_text(json.dumps(days34))
    (folder / "c-days34.html").write_text("<html>an existing day page</html>")


def test_each_run_counts_its_own_pnl_and_a_multi_day_run_is_split_exactly(tmp_path: Path) -> None:
    three_runs(tmp_path)
    runs, skipped = find_runs(tmp_path)
    assert [r.path.name for r in runs] == ["a-day1.json", "day2.json", "c-days34.json"]  # by first day
    assert skipped == []
    summary = summarize(runs)
    assert [(d.day, d.pnl) for d in summary.days] == [
        ("2026-11-23", D("100.00")), ("2026-11-24", D("-300.00")), ("2026-11-25", D("50.00")),
        ("2026-11-26", D("20.00"))]
    assert sum(d.pnl for d in summary.days) == D("-130.00")  # = the last report's account PnL
    assert [d.fees for d in summary.days] == [D("5.00"), D("7.50"), None, None]  # 12.50 - 5.00; split unknown
    assert [d.equity for d in summary.days] == [D("100.00"), D("-200.00"), D("-150.00"), D("-130.00")]
    assert [d.drawdown for d in summary.days] == [D(0), D("-300.00"), D("-250.00"), D("-230.00")]
    assert summary.max_drawdown == D("-350.00")  # intraday: the peak of +150 at noon on day 1
    assert [v for _, v in summary.curve][:3] == [D(0), D(150), D("100.00")]
    assert summary.curve[-1][1] == D("-130.00")
    assert [t.side for t in summary.trades] == ["buy", "sell"] and summary.trades[0].fee is None
    assert "journal not found" in summary.trades_note


def test_a_new_account_in_the_middle_starts_again_from_zero(tmp_path: Path) -> None:
    three_runs(tmp_path)
    fresh = json.loads((tmp_path / "b" / "day2.json").read_text())
    fresh["journal"]["restored"] = "new account"
    fresh["timeline"]["samples"] = []  # no timeline samples: the start is 0 for a new account
    (tmp_path / "b" / "day2.json").write_text(json.dumps(fresh))
    summary = summarize(find_runs(tmp_path)[0])
    assert summary.days[1].pnl == D("-200.00") and summary.days[1].fees == D("12.50")


def test_the_page_has_every_section_and_no_script(tmp_path: Path) -> None:
    three_runs(tmp_path)
    runs, _ = find_runs(tmp_path)
    page = render_summary(summarize(runs), tmp_path)
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http://" not in page
    assert "default-src 'none'" in page
    assert re.findall(r"<h1>(.*?)</h1>", page) == ["Multi-day summary: 2026-11-23 to 2026-11-26"]
    assert re.findall(r'<h2 id="([^"]+)"', page) == ["equity-curve", "days", "trades"]
    for anchor in ("equity", "drawdown", "per-day"):
        assert f'<figure id="{anchor}">' in page
    assert len(re.findall(r'<svg class="chart equity"', page)) == 1
    assert len(re.findall(r'<svg class="chart drawdown"', page)) == 1
    assert len(re.findall(r'<rect class="day-bar"', page)) == 4
    assert page.count('class="day-break"') >= 3  # the nights between the four days are cut out
    cards = dict(re.findall(r'<div class="k">(.*?)</div><div class="v">(.*?)</div>', page))
    assert cards["PnL"] == '<span class="neg">-130.00</span>'
    assert cards["fees"] == "20.00"  # 5.00 + 7.50 + the two-day run's 7.50 = the last report's account fees
    assert cards["worst drawdown"] == '<span class="neg">-350.00</span>' and cards["winning days"] == "3 / 4"
    days_table = page[page.index('<table class="days">'):page.index("</table>", page.index('<table class="days">'))]
    assert days_table.count("<tr>") == 5
    assert '<a href="c-days34.html">c-days34.json</a>' in days_table  # an existing day page is linked
    assert "in run" in days_table
    trades = page[page.index('<table class="trades">'):]
    assert trades.count("<tr>") == 3 and "187.50" in trades and "2026-11-23 10:00:00.000" in trades


def test_every_string_from_a_report_is_escaped(tmp_path: Path) -> None:
    three_runs(tmp_path)
    hostile = json.loads((tmp_path / "a-day1.json").read_text())
    hostile["timeline"]["fills"][0]["strategy"] = "<script>alert(1)</script>"
    (tmp_path / "a-day1.json").write_text(json.dumps(hostile))
    page = render_summary(summarize(find_runs(tmp_path)[0]), tmp_path)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_files_that_are_not_run_reports_are_skipped_with_the_reason(tmp_path: Path) -> None:
    three_runs(tmp_path)
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / ".tmp-report.json").write_text("{")
    runs, skipped = find_runs(tmp_path)
    assert len(runs) == 3
    assert len(skipped) == 2
    assert any("broken.json: not a JSON run report" in s for s in skipped)
    assert any("notes.json: not a run report: missing keys strategies, orders, trading_days" in s for s in skipped)


def test_a_folder_without_runs_says_so(tmp_path: Path) -> None:
    with pytest.raises(RunsError, match="no run report in it"):
        find_runs(tmp_path)
    with pytest.raises(RunsError, match="is not a folder of runs"):
        find_runs(tmp_path / "missing")


def test_a_multi_day_run_gets_a_page_per_day(tmp_path: Path) -> None:
    three_runs(tmp_path)
    runs, _ = find_runs(tmp_path)
    multi = runs[2]
    multi.report["timeline"]["fills"] = [fill("2026-11-25T10:00:00.000+05:00", "buy", "5", "186.10"),
                                         fill("2026-11-26T10:00:00.000+05:00", "sell", "5", "186.20")]
    multi.report["timeline"]["rejects"] = [{"ts": "2026-11-26T11:00:00.000+05:00", "strategy": "mm", "code": 2003}]
    multi.report["orders"] = {"submitted": 9, "filled": 2}
    written = write_pages(multi)
    assert written == [tmp_path / "c-days34.2026-11-25.html", tmp_path / "c-days34.2026-11-26.html"]  # run page kept
    first, last = (p.read_text() for p in written)
    assert "<h1>Run report: 2026-11-25</h1>" in first and "Day 1 of 2 of the run" in first
    assert '<a href="c-days34.html">c-days34.json</a>' in first
    cards = dict(re.findall(r'<div class="k">(.*?)</div><div class="v">(.*?)</div>', first))
    assert cards["PnL"] == '<span class="neg">-150.00</span>'  # the account at day 1's close, as sampled
    assert cards["fills"] == "1" and cards["orders"] == "— filled"  # the run's counts are not split
    assert "2026-11-26" not in first.split("</header>", 1)[1].split("<footer>")[0].replace("2026-11-25", "")
    cards = dict(re.findall(r'<div class="k">(.*?)</div><div class="v">(.*?)</div>', last))
    assert cards["PnL"] == '<span class="neg">-130.00</span>' and cards["orders"] == "2 filled"  # the last day
    assert cards["rejects"] == "1" and "its last day" in last
    assert write_pages(multi) == []  # pages there are kept
    assert summarize([multi]) and multi.day_pages["2026-11-25"] == written[0]
    page = render_summary(summarize(runs), tmp_path)
    assert '<a href="c-days34.2026-11-26.html">c-days34.json</a>' in page  # the days table links the day page


def test_a_long_trades_list_is_cut_and_says_where_the_rest_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    three_runs(tmp_path)
    monkeypatch.setattr(summary_module, "MAX_TRADES", 1)
    page = render_summary(summarize(find_runs(tmp_path)[0]), tmp_path)
    trades = page[page.index('<h2 id="trades">'):]
    assert "The first 1 of 2 fills" in trades and "engine journal export" in trades
    assert trades.count("<tr>") == 2 and "<summary>2 fills</summary>" in trades
