"""The multi-day summary: one page over a folder of runs (``engine report DIR``).

A folder of runs is what days of ``engine run ... --report`` (or replays) leave behind: each run's
JSON report (:func:`engine.report.page.check_report` says which JSON files are run reports) and
the journal it names (``report["journal"]["path"]``: looked for beside the report, then as written).
Runs are ordered by their first trading day. The page, in the day page's style (same stylesheet,
same SVG kit, no JavaScript, nothing loaded from anywhere):

- cards: total PnL, fees, fills, worst drawdown, winning days;
- the equity curve: PnL accumulated over every run (each run's realized + unrealized, summed over
  its strategies, on top of the runs before it), on the trading-time axis (nights cut out);
- the drawdown under it: equity minus its running peak;
- PnL per day as bars, and a table per day (PnL, fees, fills, equity and drawdown at the close,
  a link to the run's day page);
- the trades: every fill (the first :data:`MAX_TRADES`), from the journal (exact, with its fee)
  when the run's journal is found, else from the report's timeline (no fee; a long run's timeline
  may have left some out, and the page says so).

Amounts are the reports' exact decimals, summed as Decimal; floats only place SVG coordinates.

A report's strategy PnL and fees are the account's since it began: a run that continues the
journal's account (``report["journal"]["restored"]`` is not "new account") starts from where the
run before ended. So a run's own PnL is its final PnL minus its PnL at the start (the first
timeline sample; without a timeline: 0 for a new account, else the previous run's final PnL),
and its own fees come from the journal's fills of its days (without the journal: its fees minus
the previous run's when it continues that account). A run over several days is split into days
by its timeline: a day's PnL is the change between the last samples of consecutive days, the
last day taking the rest of the run's total, so the days add up to the report exactly; fees per
day of such a run need the journal, else they are shown only for the run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine import __version__
from engine.journal import Journal, JournalError
from engine.outfile import write_atomic
from engine.report.charts import WIDTH, Plot, TimeAxis, figure_html, legend_span, line_key_span, nice_ticks, px
from engine.report.days import day_reports
from engine.report.figures import read_timeline
from engine.report.page import check_report, render_html, write_html
from engine.report.sections import report_currency
from engine.report.style import BUY, CSS, PALETTE, SELL
from engine.report.text import count_or_zero, decimal_of, esc, fmt_money, fmt_num, parse_ts, time_zone_of

__all__ = ["DaySummary", "Run", "Trade", "day_page_path", "find_runs", "render_summary", "summarize", "write_pages"]

ZERO = Decimal(0)
#: rows of the trades list: ~300 bytes each, so the page stays a few MB whatever the folder holds
MAX_TRADES = 10_000


class RunsError(Exception):
    """The folder cannot be summarised (no such folder, no run report in it): the message says why."""


@dataclass
class Trade:
    """One fill for the trades list."""

    ts: dt.datetime | None
    day: str
    strategy: str
    venue: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    fee: Decimal | None
    liquidity: str


@dataclass
class Run:
    """One run report found in the folder, with the fills of its days from its journal (None when
    the journal was not found or not readable: ``journal_note`` says why)."""

    path: Path
    report: dict[str, Any]
    page: Path | None = None  # its own page, when one was written or found
    day_pages: dict[str, Path] = field(default_factory=dict)  # a multi-day run's page per day
    journal_fills: list[Trade] | None = None
    journal_note: str = ""

    @property
    def days(self) -> list[str]:
        return [str(d) for d in self.report.get("trading_days") or []]

    def total(self, key: str) -> Decimal:
        """A strategy amount (realized_pnl, unrealized_pnl, fees) summed over the run's strategies."""
        strategies = self.report.get("strategies") or {}
        return sum((decimal_of(s.get(key)) or ZERO for s in strategies.values() if isinstance(s, dict)), ZERO)

    @property
    def pnl(self) -> Decimal:
        return self.total("realized_pnl") + self.total("unrealized_pnl")


@dataclass
class DaySummary:
    """One trading day's row; ``fees``/``fills`` None when they cannot be told for the day alone."""

    day: str
    run: Run
    pnl: Decimal
    fees: Decimal | None
    fills: int | None
    equity: Decimal = ZERO  # accumulated PnL at the day's close
    drawdown: Decimal = ZERO  # equity minus the peak before it (<= 0)


@dataclass
class Summary:
    runs: list[Run]
    days: list[DaySummary]
    curve: list[tuple[float, Decimal]] = field(default_factory=list)  # (epoch s, equity)
    trades: list[Trade] = field(default_factory=list)
    trades_note: str = ""
    max_drawdown: Decimal = ZERO
    fees: Decimal = ZERO  # every run's own fees (a multi-day run's too, when its days cannot say)
    phases: list[dict[str, Any]] = field(default_factory=list)
    tz: dt.tzinfo | None = None


def _first_day(run: Run) -> str:
    return run.days[0] if run.days else ""


def find_runs(folder: Path) -> tuple[list[Run], list[str]]:
    """Every run report under ``folder`` (recursively), by first trading day, and a line per JSON
    file skipped (not JSON, not a run report) so the user sees what was left out and why."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RunsError(f"{folder} is not a folder of runs")
    runs: list[Run] = []
    skipped: list[str] = []
    for path in sorted(folder.rglob("*.json")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue  # a temporary file being written, an editor's backup
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            skipped.append(f"{path}: not a JSON run report ({exc})")
            continue
        problem = check_report(report)
        if problem is not None:
            skipped.append(f"{path}: {problem}")
            continue
        run = Run(path, report)
        html = path.with_suffix(".html")
        run.page = html if html.is_file() else None
        run.day_pages = {day: p for day in run.days if (p := day_page_path(run, day)).is_file()}
        _attach_journal(run)
        runs.append(run)
    if not runs:
        raise RunsError(f"{folder}: no run report in it (engine run CONFIG --report FILE writes one)"
                        + (f"; skipped: {'; '.join(skipped)}" if skipped else ""))
    runs.sort(key=lambda r: (_first_day(r), str(r.path)))
    return runs, skipped


def day_page_path(run: Run, day: str) -> Path:
    """Where the page of one day of a multi-day run goes: ``RUN.<day>.html`` beside its report."""
    return run.path.with_name(f"{run.path.stem}.{day}.html")


def write_pages(run: Run) -> list[Path]:
    """The run's own page and, for a multi-day run, a page per day (:mod:`engine.report.days`),
    each written only when missing (an existing page is the run's, maybe written with its secrets'
    redaction: never replaced). Returns the pages written."""
    written = []
    if run.page is None:
        run.page = run.path.with_suffix(".html")
        write_html(run.report, run.page)
        written.append(run.page)
    slices = day_reports(run.report)
    for n, (day, report) in enumerate(slices, start=1):
        if day in run.day_pages:
            continue
        path = day_page_path(run, day)
        note = (f'<p class="note">Day {n} of {len(slices)} of the run <a href="{esc(run.page.name)}">'
                f"{esc(run.path.name)}</a>: charts, fills, rejects, PnL and positions are this day's (PnL and "
                "positions at its close); orders, fees, events and the account are the run's, on its page"
                + (" and here, its last day" if n == len(slices) else "") + ".</p>")
        page = render_html(report).replace("</header>", "</header>" + note, 1)
        write_atomic(path, page)
        run.day_pages[day] = path
        written.append(path)
    return written


def _journal_candidates(run: Run) -> list[Path]:
    named = (run.report.get("journal") or {}).get("path") if isinstance(run.report.get("journal"), dict) else None
    if not named:
        return []
    path = Path(str(named))
    out = [path] if path.is_absolute() else []
    out += [run.path.parent / path, run.path.parent / path.name]
    if not path.is_absolute():
        out.append(path)  # as the run wrote it: relative to where it ran, often where this runs too
    return out


def _attach_journal(run: Run) -> None:
    """The fills of the run's days from its journal, when the journal is there and readable."""
    candidates = _journal_candidates(run)
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        run.journal_note = "journal not found" if candidates else "the report names no journal"
        return
    try:
        journal = Journal.open_readonly(found)
    except JournalError as exc:
        run.journal_note = str(exc)
        return
    days = set(run.days)
    try:
        fills = [j for j in journal.fills() if j.applied and j.trading_day.isoformat() in days]
    finally:
        journal.close()
    tz = time_zone_of(run.report.get("timeline") if isinstance(run.report.get("timeline"), dict) else None)
    run.journal_fills = [
        Trade(dt.datetime.fromtimestamp(j.fill.ts / 1e9, tz), j.trading_day.isoformat(), j.strategy, j.fill.venue,
              j.fill.symbol, j.fill.side.value, j.fill.qty, j.fill.price, j.fill.fee, j.fill.liquidity.value)
        for j in fills]


def _timeline_trades(run: Run) -> list[Trade]:
    timeline = run.report.get("timeline")
    if not isinstance(timeline, dict):
        return []
    tz = time_zone_of(timeline)
    out = []
    for row in timeline.get("fills") or []:
        if not isinstance(row, dict):
            continue
        moment = parse_ts(row.get("ts"))
        qty, price = decimal_of(row.get("qty")), decimal_of(row.get("price"))
        if qty is None or price is None:
            continue
        local = moment.astimezone(tz) if moment is not None else None
        out.append(Trade(local, local.date().isoformat() if local else "", str(row.get("strategy", "")),
                         str(row.get("venue", "")), str(row.get("symbol", "")), str(row.get("side", "")), qty, price,
                         None, str(row.get("liquidity", ""))))
    return out


def _samples(run: Run) -> list[tuple[dt.datetime, Decimal]]:
    """The run's PnL (all strategies, realized + unrealized) at each timeline sample."""
    timeline = run.report.get("timeline")
    if not isinstance(timeline, dict):
        return []
    out = []
    for row in timeline.get("samples") or []:
        moment = parse_ts(row.get("ts")) if isinstance(row, dict) else None
        if moment is None:
            continue
        total = ZERO
        for s in (row.get("strategies") or {}).values():
            if isinstance(s, dict):
                total += (decimal_of(s.get("realized")) or ZERO) + (decimal_of(s.get("unrealized")) or ZERO)
        out.append((moment, total))
    out.sort(key=lambda p: p[0])
    return out


def _continues(run: Run) -> bool:
    """Whether the run continued an account (its PnL and fees start where the previous run's ended)."""
    journal = run.report.get("journal")
    restored = str(journal.get("restored", "")) if isinstance(journal, dict) else ""
    return bool(restored) and not restored.startswith("new account")


def _split_days(run: Run, samples: list[tuple[dt.datetime, Decimal]], start: Decimal,
                tz: dt.tzinfo) -> list[tuple[str, Decimal]]:
    """The run's own PnL per trading day (from ``start``); they add up exactly (module docstring)."""
    days = run.days
    if len(days) <= 1:
        return [(days[0] if days else "?", run.pnl - start)]
    last_of_day: dict[str, Decimal] = {}
    for moment, total in samples:
        last_of_day[moment.astimezone(tz).date().isoformat()] = total
    out, before = [], start
    for day in days[:-1]:
        at_close = last_of_day.get(day, before)
        out.append((day, at_close - before))
        before = at_close
    out.append((days[-1], run.pnl - before))
    return out


def summarize(runs: list[Run]) -> Summary:
    """Days, the equity curve, drawdowns and the trades of ``runs`` (in order)."""
    tz = time_zone_of(next((r.report["timeline"] for r in runs if isinstance(r.report.get("timeline"), dict)), None))
    summary = Summary(runs, [], tz=tz)
    offset = ZERO
    notes = []
    previous: Run | None = None
    for run in runs:
        samples = _samples(run)
        continued = previous is not None and _continues(run)
        if samples:
            start = samples[0][1]
        else:
            start = previous.pnl if continued and previous is not None else ZERO
        summary.curve += [(moment.timestamp(), offset + total - start) for moment, total in samples]
        timeline = run.report.get("timeline")
        if isinstance(timeline, dict):
            summary.phases += [p for p in timeline.get("phases") or [] if isinstance(p, dict)]
        trades = run.journal_fills if run.journal_fills is not None else _timeline_trades(run)
        if run.journal_fills is None:
            dropped = count_or_zero(((timeline or {}).get("dropped") or {}).get("fills")) if isinstance(
                timeline, dict) else 0
            notes.append(f"{run.path.name}: from its report's timeline ({run.journal_note}; no fee per trade"
                         + (f"; {dropped} fills left out by the timeline" if dropped else "") + ")")
        summary.trades += trades
        split = _split_days(run, samples, start, tz)
        if run.journal_fills is not None:
            summary.fees += sum((t.fee or ZERO for t in run.journal_fills), ZERO)
        else:
            summary.fees += run.total("fees") - (previous.total("fees") if continued and previous is not None
                                                 else ZERO)
        for day, pnl in split:
            if run.journal_fills is not None:
                of_day = [t for t in run.journal_fills if t.day == day]
                fees: Decimal | None = sum((t.fee or ZERO for t in of_day), ZERO)
                fills: int | None = len(of_day)
            elif len(split) == 1:
                fees = run.total("fees") - (previous.total("fees") if continued and previous is not None else ZERO)
                fills = count_or_zero(run.report.get("fills"))
            else:
                fees = fills = None
            summary.days.append(DaySummary(day, run, pnl, fees, fills))
        offset += run.pnl - start
        previous = run
    equity = peak = ZERO
    for row in summary.days:
        equity += row.pnl
        peak = max(peak, equity)
        row.equity, row.drawdown = equity, equity - peak
    peak, worst = ZERO, ZERO
    for _, equity in summary.curve:
        peak = max(peak, equity)
        worst = min(worst, equity - peak)
    summary.max_drawdown = min([worst, *(d.drawdown for d in summary.days)])
    summary.trades_note = "; ".join(notes)
    summary.trades.sort(key=lambda t: (t.ts.timestamp() if t.ts else 0.0))
    return summary


# ---- the page ----------------------------------------------------------------------------------


def _curve_axis(summary: Summary) -> tuple[TimeAxis, list[tuple[float, float, str]]] | None:
    """The trading-time axis and phase shading of every run together (the day page's axis)."""
    timeline = {"timezone": getattr(summary.tz, "key", "Asia/Karachi"), "phases": summary.phases,
                "samples": [{"ts": dt.datetime.fromtimestamp(t, dt.UTC).isoformat(), "strategies": {}}
                            for t, _ in summary.curve]}
    data = read_timeline(timeline)
    return None if data is None else (data.axis, data.phases)


def _equity_charts(summary: Summary, currency: str) -> str:
    placed = _curve_axis(summary) if summary.curve else None
    if placed is None:
        return ('<p class="muted">No timeline samples in these reports: no equity curve (the table below is '
                "complete).</p>")
    axis, phases = placed
    values = [float(v) for _, v in summary.curve]
    plot = Plot(axis, phases, 300, nice_ticks(min([0.0, *values]), max([0.0, *values])))
    plot.polyline([(t, float(v)) for t, v in summary.curve], PALETTE[0], 2.2, "", "equity", "series equity")
    drawdowns, peak = [], ZERO
    for t, v in summary.curve:
        peak = max(peak, v)
        drawdowns.append((t, v - peak))
    plot.hover([(t, f"{dt.datetime.fromtimestamp(t, summary.tz).strftime('%a %d %b %H:%M')}\nequity "
                    f"{format(v, ',f')}") for t, v in summary.curve])
    equity = figure_html(f"Equity curve (accumulated PnL, {currency})",
                         legend_span([line_key_span(PALETTE[0], f"equity {format(summary.curve[-1][1], ',f')}")]),
                         plot.svg("equity curve", "equity"), "equity")
    lows = [float(v) for _, v in drawdowns]
    dd_plot = Plot(axis, phases, 200, nice_ticks(min([0.0, *lows]), 0.0))
    dd_plot.polyline([(t, float(v)) for t, v in drawdowns], SELL, 1.8, "", "drawdown", "series drawdown")
    dd_plot.hover([(t, f"{dt.datetime.fromtimestamp(t, summary.tz).strftime('%a %d %b %H:%M')}\ndrawdown "
                       f"{format(v, ',f')}") for t, v in drawdowns])
    drawdown = figure_html(f"Drawdown (equity below its running peak, {currency})",
                           legend_span([line_key_span(SELL, f"worst {format(summary.max_drawdown, ',f')}")]),
                           dd_plot.svg("drawdown", "drawdown"), "drawdown")
    return equity + drawdown


def _day_bars(summary: Summary, currency: str) -> str:
    """PnL per day as bars around a zero line, green up, red down; hover for the number."""
    days = summary.days
    height, top, bottom, left, right = 240, 12, 196, 78, 20
    ticks = nice_ticks(min([0.0, *(float(d.pnl) for d in days)]), max([0.0, *(float(d.pnl) for d in days)]))
    lo, hi = float(ticks[0]), float(ticks[-1])

    def y(value: float) -> float:
        return bottom - (value - lo) / ((hi - lo) or 1.0) * (bottom - top)

    slot = (WIDTH - left - right) / max(len(days), 1)
    bar = max(1.0, min(48.0, slot * 0.7))
    body = []
    for tick in ticks:
        body.append(f'<line x1="{left}" x2="{WIDTH - right}" y1="{px(y(float(tick)))}" y2="{px(y(float(tick)))}" '
                    + ('stroke="#9ca3af"' if tick == 0 else 'stroke="#d9dde3" stroke-dasharray="2 3"') + "/>")
        body.append(f'<text x="{left - 8}" y="{px(y(float(tick)) + 4)}" text-anchor="end" font-size="11" '
                    f'fill="#6b7280">{esc(format(tick, ",f"))}</text>')
    label_every = max(1, int(60 // slot) + 1)
    for i, day in enumerate(days):
        x = left + slot * i + (slot - bar) / 2
        y0, y1 = y(0.0), y(float(day.pnl))
        color = BUY if day.pnl >= 0 else SELL
        body.append(f'<rect class="day-bar" x="{px(x)}" y="{px(min(y0, y1))}" width="{px(bar)}" '
                    f'height="{px(max(abs(y1 - y0), 0.5))}" fill="{color}" fill-opacity=".8">'
                    f"<title>{esc(day.day)}: {esc(format(day.pnl, ',f'))} {esc(currency)}</title></rect>")
        if i % label_every == 0:
            body.append(f'<text x="{px(left + slot * i + slot / 2)}" y="{bottom + 16}" text-anchor="middle" '
                        f'font-size="11" fill="#6b7280">{esc(day.day[5:])}</text>')
    svg = (f'<svg class="chart days" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="PnL per day">'
           f'{"".join(body)}</svg>')
    return figure_html(f"PnL per day ({currency})", "", svg, "per-day")


def _href(day: DaySummary, out_dir: Path) -> str:
    """The day's own page, else its run's page, relative to the summary's folder."""
    page = day.run.day_pages.get(day.day) or day.run.page
    return Path(os.path.relpath(page, out_dir)).as_posix() if page is not None else ""


def _days_table(summary: Summary, out_dir: Path) -> str:
    rows = []
    in_run = '<span class="muted">in run</span>'
    for d in summary.days:
        href = _href(d, out_dir)
        name = esc(d.run.path.name)
        link = f'<a href="{esc(href)}">{name}</a>' if href else name
        rows.append(f"<tr><td>{esc(d.day)}</td><td class=\"n\">{fmt_money(d.pnl)}</td>"
                    f'<td class="n">{fmt_num(d.fees) if d.fees is not None else in_run}</td>'
                    f'<td class="n">{fmt_num(d.fills) if d.fills is not None else in_run}</td>'
                    f'<td class="n">{fmt_money(d.equity)}</td><td class="n">{fmt_money(d.drawdown)}</td>'
                    f"<td>{link}</td></tr>")
    return ('<h2 id="days">Days</h2><table class="days"><tr><th>day</th><th class="n">PnL</th><th class="n">fees</th>'
            '<th class="n">fills</th><th class="n">equity at close</th><th class="n">drawdown</th><th>run</th></tr>'
            + "".join(rows) + "</table>")


def _trades_table(summary: Summary) -> str:
    trades = summary.trades[:MAX_TRADES]
    note = f'<p class="note">Trades of {esc(summary.trades_note)}.</p>' if summary.trades_note else ""
    if len(summary.trades) > MAX_TRADES:
        note += (f'<p class="note">The first {fmt_num(MAX_TRADES)} of {fmt_num(len(summary.trades))} fills (the page '
                 "stays small enough to open); <code>engine journal export JOURNAL --format csv</code> lists every "
                 "one.</p>")
    if not trades:
        return f'<h2 id="trades">Trades</h2>{note}<p class="muted">No fills.</p>'
    rows = "".join(
        f"<tr><td>{esc(t.ts.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3] if t.ts else '')}</td><td>{esc(t.strategy)}</td>"
        f"<td>{esc(t.venue)}</td><td>{esc(t.symbol)}</td>"
        f'<td class="{"pos" if t.side == "buy" else "neg"}">{esc(t.side)}</td><td class="n">{fmt_num(t.qty)}</td>'
        f'<td class="n">{fmt_num(t.price)}</td><td class="n">{fmt_num(t.fee) if t.fee is not None else ""}</td>'
        f"<td>{esc(t.liquidity)}</td></tr>" for t in trades)
    return (f'<h2 id="trades">Trades</h2>{note}<details open><summary>{fmt_num(len(summary.trades))} fills</summary>'
            '<table class="trades"><tr><th>time</th><th>strategy</th><th>venue</th><th>symbol</th><th>side</th>'
            '<th class="n">qty</th><th class="n">price</th><th class="n">fee</th><th>liquidity</th></tr>'
            f"{rows}</table></details>")


def render_summary(summary: Summary, out_dir: Path) -> str:
    """The whole summary page; links to day pages are relative to ``out_dir`` (where it is written)."""
    runs, days = summary.runs, summary.days
    currency = report_currency(runs[0].report)
    pnl = sum((d.pnl for d in days), ZERO)
    fees = summary.fees
    fills = sum(count_or_zero(r.report.get("fills")) for r in runs)  # a report's fills are its run's own
    winning = sum(1 for d in days if d.pnl > 0)
    first, last = (days[0].day, days[-1].day) if days else ("", "")
    title = f"Multi-day summary: {first} to {last}" if first != last else f"Multi-day summary: {first}"
    meta = [("runs", str(len(runs))), ("trading days", str(len(days))),
            ("seeds", ", ".join(sorted({str(r.report.get("seed", "?")) for r in runs})))]
    cards = [
        ("PnL", fmt_money(pnl), f"over {len(days)} day{'s' if len(days) != 1 else ''}, net of fees"),
        ("fees", fmt_num(fees), f"{fmt_num(fills)} fills"),
        ("worst drawdown", fmt_money(summary.max_drawdown), "equity below its running peak"),
        ("winning days", f"{winning} / {len(days)}",
         f"best {fmt_num(max((d.pnl for d in days), default=ZERO))} · worst "
         f"{fmt_num(min((d.pnl for d in days), default=ZERO))}"),
    ]
    nav = [("equity", "Equity"), ("drawdown", "Drawdown"), ("per-day", "PnL per day"), ("days", "Days"),
           ("trades", "Trades")]
    sections = [
        f'<header><h1>{esc(title)}</h1><div class="meta">'
        + "".join(f"<span>{esc(k)} <b>{esc(v)}</b></span>" for k, v in meta) + "</div></header>",
        '<div class="cards">' + "".join(
            f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{v}</div><div class="s">{s}</div></div>'
            for k, v, s in cards) + "</div>",
        "<nav>" + "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in nav) + "</nav>",
        '<h2 id="equity-curve">Equity and drawdown</h2>' + _equity_charts(summary, currency),
        _day_bars(summary, currency),
        _days_table(summary, out_dir),
        _trades_table(summary),
        f"<footer>Written by engine {esc(__version__)} from {len(runs)} run report{'s' if len(runs) != 1 else ''}. "
        f"Amounts in {esc(currency)} as the engine computed them (exact decimals).</footer>",
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        + "".join(sections)
        + "</main></body></html>\n"
    )
