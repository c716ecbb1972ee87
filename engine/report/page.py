"""A run report as one self-contained HTML page: the picture of a paper day.

``engine report day.json --html day.html`` (or ``engine run ... --html day.html``) writes it. The
page has no JavaScript, fetches nothing (a Content-Security-Policy forbids it) and uses the
system's fonts, so it opens the same from a mail attachment, a CI artifact or a file share. Charts
are inline SVG (:mod:`engine.report.figures`): PnL per strategy, positions per strategy, the price path per
instrument with our fills and the circuit band, rejects by code; session phases are shaded
behind every time chart. Hovering a chart shows the values at that time (SVG ``<title>``).

Tables show the report's own decimal strings (only thousands separators are added): floats are
used for SVG coordinates, never for a number a person reads as exact. Every string taken from the
report is HTML-escaped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import __version__
from engine.report.figures import (
    colors_by_code,
    colors_by_strategy,
    phases_legend,
    pnl_chart,
    position_charts,
    price_charts,
    read_timeline,
    reject_strip,
)
from engine.report.sections import (
    anomalies_section,
    cards_section,
    dropped_note,
    header_section,
    left_working_section,
    rejects_section,
    report_currency,
    risk_section,
    strategies_section,
    venues_section,
)
from engine.report.style import CSS
from engine.report.text import esc, fmt_num, time_zone_of
from engine.secrets import Redactor, write_scrubbed

__all__ = ["check_report", "render_html", "write_html"]


def check_report(report: object) -> str | None:
    """Why ``report`` is not a run report (None when it is one): the CLI's message for a wrong file."""
    if not isinstance(report, dict):
        return f"expected a JSON object (a run report), found {type(report).__name__}"
    missing = [key for key in ("strategies", "orders", "trading_days") if key not in report]
    if missing:
        return f"not a run report: missing key{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
    if not isinstance(report["strategies"], dict) or not isinstance(report["orders"], dict):
        return "not a run report: 'strategies' and 'orders' must be objects"
    if not isinstance(report["trading_days"], list):
        return "not a run report: 'trading_days' must be a list"
    timeline = report.get("timeline")
    if timeline is not None and not isinstance(timeline, dict):
        return "not a run report: 'timeline' must be an object"
    return None


def render_html(report: dict[str, Any]) -> str:
    """The whole page as one string. Raises ValueError when ``report`` is not a run report."""
    problem = check_report(report)
    if problem is not None:
        raise ValueError(problem)
    timeline = report.get("timeline")
    tz = time_zone_of(timeline)
    data = read_timeline(timeline) if isinstance(timeline, dict) else None
    colors = colors_by_strategy(report, data)
    reject_colors = colors_by_code(report, data)
    n_days = len(data.axis.segments) if data is not None else 1
    sections = [header_section(report), cards_section(report)]
    nav = [("strategies", "Strategies")]
    charts = ""
    strip = ""
    if data is not None:
        legend = phases_legend(data)
        bands = timeline.get("bands") if isinstance(timeline.get("bands"), dict) else {}  # type: ignore[union-attr]
        interval = timeline.get("interval_s")  # type: ignore[union-attr]
        charts = (
            '<h2 id="charts">The day over time</h2>'
            f'<p class="sub">Local time ({esc(getattr(tz, "key", tz))}); '
            + ("nights are left out between trading days; " if n_days > 1 else "")
            + f"sampled every {esc(interval)} s of engine time, fills at their exact times. Shaded: session "
            f"phases. Hover a chart for values.</p>"
            + dropped_note(timeline)  # type: ignore[arg-type]
            + pnl_chart(data, colors, legend, n_days, report_currency(report))
            + '<h2 id="positions">Positions over time</h2>'
            + position_charts(data, legend, n_days)
            + '<h2 id="prices">Prices and fills</h2>'
            + price_charts(data, bands, legend, n_days)
        )
        strip = reject_strip(data, reject_colors, legend, n_days)
        nav += [("pnl", "PnL"), ("positions", "Positions"), ("prices", "Prices and fills")]
    elif isinstance(timeline, dict):
        charts = '<p class="note">The report\'s timeline has no samples, phases or fills: nothing to chart.</p>'
    else:
        charts = ('<p class="note">No charts: this report has no <code>timeline</code>. Charts need a report '
                  f"written by engine {esc(__version__)} or later (<code>engine run CONFIG --report FILE</code>); "
                  "the tables below are complete.</p>")
    left_working = left_working_section(report)
    if left_working:
        nav.insert(0, ("left-working", "Left working"))
    nav += [("rejects", "Rejects"), ("risk", "Kill switch and MMP")]
    venues = venues_section(report)
    if venues:
        nav.append(("venues", "Venues"))
    anomalies = anomalies_section(report)
    if anomalies:
        nav.append(("anomalies", "Anomalies"))
    sections.append("<nav>" + "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in nav) + "</nav>")
    sections.append(left_working)
    sections.append(strategies_section(report, colors))
    sections.append(charts)
    sections.append(rejects_section(report, reject_colors, strip))
    sections.append(risk_section(report, tz))
    sections.append(venues)
    sections.append(anomalies)
    events = report.get("events") or {}
    sections.append(
        f"<footer>Written by engine {esc(__version__)} from the run report. Events: {fmt_num(events.get('book', 0))} "
        f"book, {fmt_num(events.get('trade', 0))} trade. Amounts in {esc(report_currency(report))} as the engine "
        "computed them (exact decimals).</footer>")
    days = report.get("trading_days") or []
    title = "Run report " + (f"{days[0]}" + (f" to {days[-1]}" if len(days) > 1 else "") if days else "")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        # nothing on this page may load anything: no scripts, no fonts, no images from anywhere
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        + "".join(sections)
        + "</main></body></html>\n"
    )


def write_html(report: dict[str, Any], path: Path | str, redactor: Redactor | None = None) -> None:
    """Render and write atomically, like the JSON report, scrubbed of the config's secrets when a
    ``redactor`` is given."""
    write_scrubbed(path, render_html(report), redactor)
