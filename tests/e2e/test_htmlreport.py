"""The picture of the day: one self-contained HTML page per run report, charts as inline SVG,
every report string escaped, readable for an old report without a timeline, and rendered for real
by headless Chromium when it is installed."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from support import IDLE_STRATEGY, REPO, write_engine_config

from engine.cli import main
from engine.observe.timeline import Timeline
from engine.rejects import describe
from engine.report.charts import nice_ticks
from engine.report.page import check_report, render_html, write_html

KARACHI = ZoneInfo("Asia/Karachi")
S = 1_000_000_000


def ns(hh: int, mm: int, ss: int = 0, day: int = 23) -> int:
    return int(dt.datetime(2026, 11, day, hh, mm, ss, tzinfo=KARACHI).timestamp()) * S


FILLS = [  # (time, strategy, symbol, side, qty, price, liquidity)
    ((9, 42, 19), "mm", "KEL", "buy", "100", "102.44", "maker"),
    ((9, 53, 43), "momentum", "MEBL", "buy", "300", "187.86", "taker"),
    ((10, 20, 5), "mm", "KEL", "sell", "100", "102.51", "maker"),
    ((11, 5, 0), "momentum", "MEBL", "sell", "100", "188.02", "taker"),
    ((13, 40, 30), "mm", "MEBL", "buy", "100", "187.40", "maker"),
]


def base_report() -> dict:
    """The run report as Engine.report() writes it (README "The run report")."""
    return {
        "sessions": ["closed", "pre_open", "open", "post_close", "closed"],
        "trading_days": ["2026-11-23"],
        "events": {"book": 152922, "trade": 9978},
        "orders": {"submitted": 85, "filled": 56, "cancelled": 29, "rejected": 4, "expired": 0, "open_at_exit": 0},
        "fills": 5,
        "duplicate_fills_dropped": 0,
        "rejects_by_code": {"2003": 3, "7009": 1},
        "strategies": {
            "mm": {"orders": 19, "fills": 3, "rejects": 1, "position": {"KEL": "0", "MEBL": "100"},
                   "realized_pnl": "12345678.905", "unrealized_pnl": "10.00", "state": "stopped", "mmp_triggers": 1,
                   "hook_errors": 0, "hook_overruns": 0, "slowest_hook_ms": 0.8},
            "momentum": {"orders": 66, "fills": 2, "rejects": 3, "position": {"MEBL": "200"},
                         "realized_pnl": "-127.00", "unrealized_pnl": "-69.00", "state": "failed",
                         "failure": "on_book raised ZeroDivisionError", "mmp_triggers": 0},
        },
        "mmp_triggers": 1,
        "kill_switch": {"state": "reducing", "reason": "daily loss 260000 >= 250000", "source": "daily_loss",
                        "history": [{"ts": ns(14, 2), "state": "reducing", "reason": "daily loss 260000 >= 250000"}]},
        "venues": {"paper": {"status": "connected", "disconnects": 1, "account": {
            "cash": "4476697.00", "unsettled_cash": "425828.00", "buying_power": "4476697.00",
            "unsettled": [{"kind": "cash", "symbol": "KEL", "amount": "10253.00", "trade_day": "2026-11-23",
                           "settle_day": "2026-11-25"}],
            "holdings": {"KEL": {"settled": "1500", "unsettled": "0", "total": "1500"}},
            "reserved": {"cash": "0", "shares": {}, "orders": "0"}}}},
        "anomalies": {}, "anomaly_samples": [], "seed": 42, "clock": "simulated", "stopped_by": "end",
        "wall_seconds": 11.6,
    }


def build_timeline(days: tuple[int, ...] = (23,)) -> Timeline:
    """Two strategies, fills on both sides, the day's phases, a band, rejects of two codes."""
    tl = Timeline(60)
    for day in days:
        tl.phase(ns(9, 15, day=day), "pre_open")
        tl.band(f"2026-11-{day}", "paper:MEBL", Decimal("168.75"), Decimal("206.25"), Decimal("187.50"))
        tl.band(f"2026-11-{day}", "paper:KEL", Decimal("92.25"), Decimal("112.75"), Decimal("102.50"))
        pos = {"mm": {"KEL": Decimal(0), "MEBL": Decimal(0)}, "momentum": {"MEBL": Decimal(0)}}
        fills = iter(sorted(FILLS))
        pending = next(fills, None)
        for minute in range(0, 6 * 60 + 21):  # 09:15 .. 15:35, one sample a minute
            t = ns(9, 15, day=day) + minute * 60 * S
            if minute == 15:
                tl.phase(t, "open")
            if minute == 6 * 60 + 15:
                tl.phase(t, "post_close")
            if minute == 6 * 60 + 20:
                tl.phase(t, "closed")
            while pending is not None and ns(*pending[0], day=day) <= t:
                (hh, mm, ss), name, symbol, side, qty, price, liquidity = pending
                tl.fill(ns(hh, mm, ss, day=day), name, "paper", symbol, side, Decimal(qty), Decimal(price), liquidity)
                pos[name][symbol] += Decimal(qty) if side == "buy" else -Decimal(qty)
                pending = next(fills, None)
            wave = Decimal(minute % 37) / 100
            tl.sample(t, {
                "mm": {"realized": Decimal(minute) / 4, "unrealized": wave, "positions": dict(pos["mm"])},
                "momentum": {"realized": -Decimal(minute) * Decimal("0.35"), "unrealized": -wave,
                             "positions": dict(pos["momentum"])},
            }, {"paper:MEBL": Decimal("187.50") + wave, "paper:KEL": Decimal("102.50") - wave})
        tl.reject(ns(10, 1, day=day), "momentum", 2003)
        tl.reject(ns(10, 2, day=day), "momentum", 2003)
        tl.reject(ns(12, 0, day=day), "mm", 7009)
    return tl


@pytest.fixture
def report() -> dict:
    data = base_report()
    data["timeline"] = json.loads(json.dumps(build_timeline().to_json()))  # as read back from the file
    return data


# ---- the page --------------------------------------------------------------------------------
def test_the_page_has_every_chart_as_inline_svg(report):
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('<svg class="chart pnl"') == 1
    assert page.count('<svg class="chart position"') == 2  # one per strategy that held something
    assert page.count('<svg class="chart price"') == 2  # KEL and MEBL
    assert page.count('<svg class="chart rejects"') == 1
    assert page.count('<svg class="chart reject-times"') == 1
    # a line per strategy on the PnL chart (plus its realized-only dashed line)
    assert page.count('class="series pnl"') == 2 and page.count('class="series realized"') == 2


def test_one_marker_per_fill_with_side_and_liquidity(report):
    page = render_html(report)
    markers = re.findall(r'<path class="fill-marker (buy|sell) (maker|taker)"', page)
    assert len(markers) == len(FILLS)
    assert sorted(markers) == sorted((f[3], f[6]) for f in FILLS)
    # buys green and sells red; a maker fill hollow (white inside), a taker fill solid
    assert re.search(r'fill-marker buy maker" d="[^"]+" fill="#fff" stroke="#15803d"', page)
    assert re.search(r'fill-marker sell taker" d="[^"]+" fill="#dc2626" stroke="#dc2626"', page)
    # the tooltip says what the fill was
    assert "momentum buy 300 MEBL @ 187.86 (taker)" in page


def test_bigger_fills_get_bigger_markers(report):
    page = render_html(report)

    def width(qty_price: str) -> float:
        match = re.search(r'<path class="fill-marker [^"]+" d="M[\d.]+ [\d.]+L([\d.]+) [\d.]+L([\d.]+) [^"]+"[^>]*>'
                          rf"<title>[^<]*{re.escape(qty_price)}", page)
        assert match, qty_price
        return float(match.group(1)) - float(match.group(2))

    assert width("300 MEBL @ 187.86") > width("100 MEBL @ 188.02")


def test_session_phases_are_shaded_with_a_legend(report):
    page = render_html(report)
    for phase in ("pre_open", "open", "post_close"):
        assert f'class="phase {phase}"' in page
    for label in ("pre-open", "open", "post-close"):
        assert f"</i>{label}</span>" in page  # the legend swatch and its name
    # the shading is on every time chart: the PnL chart, 2 position charts, 2 price charts, the reject strip
    assert page.count('class="phase open"') == 6


def test_circuit_band_is_drawn_dashed_per_instrument(report):
    page = render_html(report)
    bands = re.findall(r'<line class="band (high|low)"[^>]*stroke-dasharray="6 4"', page)
    assert sorted(bands) == ["high", "high", "low", "low"]
    assert "upper band 206.25" in page and "lower band 92.25" in page


def test_rejects_by_code_with_their_sentences(report):
    page = render_html(report)
    bars = re.findall(r'<g class="reject-bar"><title>(\d+): ', page)
    assert bars == ["2003", "7009"]  # most frequent first
    assert describe(2003) in page  # "Invalid price (outside circuit breaker)"
    assert "Market-maker protection triggered" in page
    assert page.count('class="reject-tick"') == 3


def test_tables_show_the_reports_exact_numbers(report):
    page = render_html(report)
    assert "12,345,678.905" in page  # thousands separators, every digit kept
    assert "-127.00" in page and "-69.00" in page
    assert "4,476,697.00" in page
    # the PnL card adds exactly: 12345678.905 + 10.00 - 127.00 - 69.00
    assert "12,345,492.905" in page
    assert "on_book raised ZeroDivisionError" in page
    assert "2026-11-23 14:02:00" in page  # kill-switch history time, local
    assert "reducing" in page and "disconnects: 1" in page


def test_header_names_days_clock_seed_stop_and_wall_time(report):
    page = render_html(report)
    for text in ("2026-11-23", "simulated", "<b>42</b>", "<b>end</b>", "11.6 s"):
        assert text in page


def test_axis_labels_are_local_hh_mm(report):
    page = render_html(report)
    labels = set(re.findall(r'text-anchor="middle" font-size="11" fill="#6b7280">(\d\d:\d\d)</text>', page))
    assert {"10:00", "12:00", "14:00"} <= labels
    assert not {label for label in labels if not "09:00" <= label <= "15:40"}  # Karachi time, not UTC (04:30..)


def test_every_report_string_is_escaped(report):
    evil = '<script>alert("x")</script>'
    report["strategies"][evil] = report["strategies"].pop("momentum")
    for sample in report["timeline"]["samples"]:
        sample["strategies"][evil] = sample["strategies"].pop("momentum")
    for fill in report["timeline"]["fills"]:
        if fill["strategy"] == "momentum":
            fill["strategy"] = evil
    report["kill_switch"]["reason"] = "<img src=x onerror=alert(1)>"
    page = render_html(report)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_the_page_is_self_contained(report):
    page = render_html(report)
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"\b(src|href)\s*=\s*[\"'](?!#)", page)  # only in-page anchors
    assert "@import" not in page and "url(" not in page
    assert "<script" not in page  # readable without JavaScript
    assert "default-src 'none'" in page  # and the browser is told to fetch nothing


def test_an_old_report_without_timeline_still_gets_its_tables(report):
    del report["timeline"]
    page = render_html(report)
    assert "Charts need a report" in page
    assert '<svg class="chart pnl"' not in page and '<path class="fill-marker' not in page
    assert '<svg class="chart rejects"' in page  # drawn from the report's own counts
    assert "mm" in page and "12,345,678.905" in page
    assert describe(2003) in page


def test_multi_day_runs_cut_out_the_nights():
    data = base_report()
    data["trading_days"] = ["2026-11-23", "2026-11-24"]
    tl = build_timeline(days=(23, 24))
    idle = {"realized": Decimal(0), "unrealized": Decimal(0), "positions": {}}
    tl.sample(ns(20, 0, day=24), {"mm": idle, "momentum": idle}, {})  # a wall-clock run stopped in the evening
    data["timeline"] = tl.to_json()
    assert data["timeline"]["samples"][-1]["ts"].startswith("2026-11-24T20:00")
    page = render_html(data)
    assert page.count('class="day-break"') == 6  # one per time chart
    assert "Mon 23 Nov 2026" in page and "Tue 24 Nov 2026" in page
    labels = set(re.findall(r'text-anchor="middle" font-size="11" fill="#6b7280">(\d\d:\d\d)</text>', page))
    assert not {label for label in labels if label >= "16:00" or label < "09:00"}  # no evening, no night
    assert len(re.findall(r'<path class="fill-marker', page)) == 2 * len(FILLS)


def test_a_dropped_count_is_said_on_the_page(report):
    report["timeline"]["dropped"]["fills"] = 12
    page = render_html(report)
    assert "left out 12 fills" in page


def test_not_a_run_report_is_refused():
    assert check_report([]) is not None
    assert "missing keys" in (check_report({"a": 1}) or "")
    assert check_report(base_report()) is None
    with pytest.raises(ValueError):
        render_html({"strategies": {}})


def test_nice_ticks_are_exact_decimals():
    assert nice_ticks(0.1, 0.3, 2) == [Decimal("0.1"), Decimal("0.2"), Decimal("0.3")]
    ticks = nice_ticks(-127.0, 85.0)
    assert ticks[0] <= -127 and ticks[-1] >= 85 and Decimal(0) in ticks


def test_write_html_is_atomic_and_complete(report, tmp_path):
    out = tmp_path / "sub" / "day.html"
    write_html(report, out)
    assert out.read_text(encoding="utf-8").rstrip().endswith("</html>")
    assert [p.name for p in out.parent.iterdir()] == ["day.html"]  # no temp file left behind


# ---- command line ------------------------------------------------------------------------------
def test_cli_report_writes_the_page_and_prints_its_path(report, tmp_path, capsys):
    src = tmp_path / "day.json"
    src.write_text(json.dumps(report))
    out = tmp_path / "day-page.html"
    assert main(["report", str(src), "--html", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert '<svg class="chart pnl"' in out.read_text(encoding="utf-8")


def test_cli_report_defaults_to_the_json_name_with_html(report, tmp_path, capsys):
    src = tmp_path / "day.json"
    src.write_text(json.dumps(report))
    assert main(["report", str(src)]) == 0
    assert (tmp_path / "day.html").exists()
    assert capsys.readouterr().out.strip() == str(tmp_path / "day.html")


def test_cli_report_missing_file_is_named(tmp_path, capsys):
    missing = tmp_path / "nowhere.json"
    assert main(["report", str(missing), "--html", str(tmp_path / "x.html")]) == 1
    err = capsys.readouterr().err
    assert str(missing) in err and "No such file" in err
    assert not (tmp_path / "x.html").exists()


def test_cli_report_broken_json_names_file_and_line(tmp_path, capsys):
    src = tmp_path / "broken.json"
    src.write_text('{"strategies": {},\n  "orders": \n}\n')
    assert main(["report", str(src), "--html", str(tmp_path / "x.html")]) == 1
    err = capsys.readouterr().err
    assert f"{src}:3:" in err and "not valid JSON" in err


def test_cli_report_refuses_json_that_is_not_a_run_report(tmp_path, capsys):
    src = tmp_path / "config.json"
    src.write_text(json.dumps({"run": {"clock": "simulated"}}))
    assert main(["report", str(src), "--html", str(tmp_path / "x.html")]) == 1
    err = capsys.readouterr().err
    assert str(src) in err and "not a run report" in err


def test_cli_help_lists_report_and_html():
    done = subprocess.run([sys.executable, "-m", "engine.cli", "--help"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0 and "report" in done.stdout and "--html" in done.stdout
    run_help = subprocess.run([sys.executable, "-m", "engine.cli", "run", "--help"], capture_output=True, text=True,
                              cwd=REPO)
    assert "--html" in run_help.stdout


def test_cli_run_writes_the_html_report(tmp_path, capsys):
    config = write_engine_config(tmp_path, {"idle": IDLE_STRATEGY})
    out = tmp_path / "day.html"
    assert main(["run", str(config), "--html", str(out), "--log-level", "WARNING"]) == 0
    page = out.read_text(encoding="utf-8")
    assert "Run report: 2026-11-23" in page and "idle" in page


# ---- a real browser ------------------------------------------------------------------------------
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_headless_chromium_renders_the_page(report, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Chromium not installed (Debian package chromium); the HTML report was not rendered")
    data = copy.deepcopy(report)
    data["trading_days"] = ["2026-11-23", "2026-11-24"]
    data["timeline"] = build_timeline(days=(23, 24)).to_json()
    page = tmp_path / "day.html"
    write_html(data, page)
    shot = tmp_path / "shot.png"
    profile = [f"--user-data-dir={tmp_path / 'profile'}"]
    done = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, *profile, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000  # a drawn page, not a blank one
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, *profile, "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('<svg class="chart') >= 6  # parsed into the DOM, not shown as text
    assert dom.stdout.count('class="fill-marker') == 2 * len(FILLS)


def test_long_lines_are_thinned_but_keep_their_extremes():
    tl = Timeline(4, max_samples=10_000)  # the page's own thinning, not the timeline's cap
    tl.phase(ns(9, 30), "open")
    for k in range(6000):  # one sample every 4 s for 6 h 40 min
        realized = Decimal(999) if k == 3001 else Decimal(k % 10)
        tl.sample(ns(9, 30) + k * 4 * S, {"mm": {"realized": realized, "unrealized": Decimal(0), "positions": {}}}, {})
    data = base_report()
    data["timeline"] = tl.to_json()
    page = render_html(data)
    path = re.search(r'<path class="series pnl" d="([^"]+)"', page).group(1)
    assert path.count("L") < 4 * 1100  # at most a few points per pixel column, not 6000
    ys = [float(y) for y in re.findall(r"[ML][\d.]+ ([\d.]+)", path)]
    assert min(ys) < 40  # the one spike to 999 is still drawn near the top of the chart
