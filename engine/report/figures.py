"""The charts of the day, drawn from the report's ``timeline``: PnL per strategy, positions per
strategy, the price path per instrument with our fills and the circuit band, rejects over time.
Session phases are shaded behind every time chart; hovering a chart shows the values at that time
(SVG ``<title>``)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.rejects import describe
from engine.report.charts import (
    BOTTOM,
    LEFT,
    MARGIN_S,
    TOP,
    Plot,
    TimeAxis,
    figure_html,
    legend_span,
    line_key_span,
    nice_ticks,
    px,
    swatch_span,
    trading_segments,
)
from engine.report.style import BAND, BUY, PALETTE, PHASES, PRICE, REJECT_PALETTE, SELL, UNKNOWN_PHASE
from engine.report.text import count_or_zero, decimal_of, esc, int_or_zero, parse_ts, time_zone_of


@dataclass
class TimelineData:
    """The report's timeline read once: times parsed, phases as shading intervals, one axis."""

    tz: dt.tzinfo
    axis: TimeAxis
    phases: list[tuple[float, float, str]]  # (start, end, phase) shading intervals
    samples: list[tuple[float, dt.datetime, dict[str, Any]]]
    fills: list[tuple[float, dt.datetime, dict[str, Any]]]
    rejects: list[tuple[float, dt.datetime, dict[str, Any]]]


def _timed(rows: object) -> list[tuple[float, dt.datetime, dict[str, Any]]]:
    out = []
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and (moment := parse_ts(row.get("ts"))) is not None:
            out.append((moment.timestamp(), moment, row))
    out.sort(key=lambda r: r[0])
    return out


def read_timeline(timeline: dict[str, Any]) -> TimelineData | None:
    """The timeline as :class:`TimelineData`, or None when it has nothing to place on an axis."""
    tz = time_zone_of(timeline)
    phase_rows = _timed(timeline.get("phases"))
    samples, fills, rejects = _timed(timeline.get("samples")), _timed(timeline.get("fills")), _timed(
        timeline.get("rejects"))
    phases = [(t, str(row.get("phase", ""))) for t, _, row in phase_rows]
    times = [r[0] for r in samples] + [r[0] for r in fills] + [r[0] for r in rejects]
    segments = trading_segments(phases, times, tz)
    if not segments:
        return None
    end = segments[-1].end
    intervals = []
    previous_t, previous = segments[0].start, "closed"  # the engine starts closed
    for t, phase in phases:
        if t > previous_t:
            intervals.append((previous_t, t, previous))
        previous_t, previous = max(t, previous_t), phase
    if end > previous_t:
        intervals.append((previous_t, end, previous))
    return TimelineData(tz, TimeAxis(segments, tz), intervals, samples, fills, rejects)


def _hhmmss(moment: dt.datetime, tz: dt.tzinfo, days: int) -> str:
    local = moment.astimezone(tz)
    return local.strftime("%a %H:%M:%S" if days > 1 else "%H:%M:%S")


def phases_legend(data: TimelineData) -> str:
    """Swatches for the session phases the charts shade, in session order."""
    seen = []
    for _, _, phase in data.phases:
        if phase not in seen:
            seen.append(phase)
    order = list(PHASES)
    seen.sort(key=lambda p: order.index(p) if p in order else len(order))
    return legend_span(swatch_span(PHASES.get(p, (UNKNOWN_PHASE, p))[0], PHASES.get(p, ("", p))[1]) for p in seen)


def colors_by_strategy(report: dict[str, Any], data: TimelineData | None) -> dict[str, str]:
    """One palette colour per strategy, stable across the table and every chart."""
    names = list(report.get("strategies", {}))
    if data is not None:
        for _, _, row in data.samples:
            for name in row.get("strategies", {}) or {}:
                if name not in names:
                    names.append(name)
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def pnl_chart(data: TimelineData, colors: dict[str, str], phase_legend: str, n_days: int, currency: str = "PKR") -> str:
    """PnL per strategy over time: realized plus unrealized, and realized alone dashed."""
    series: dict[str, list[tuple[float, Decimal, Decimal]]] = {}
    for t, _, row in data.samples:
        for name, s in (row.get("strategies") or {}).items():
            realized, unrealized = decimal_of(s.get("realized")), decimal_of(s.get("unrealized"))
            if realized is None or unrealized is None:
                continue
            series.setdefault(name, []).append((t, realized + unrealized, realized))
    if not series:
        return '<p class="muted">No PnL samples in this report.</p>'
    values = [float(v) for pts in series.values() for _, total, realized in pts for v in (total, realized)]
    plot = Plot(data.axis, data.phases, 300, nice_ticks(min([0.0, *values]), max([0.0, *values])))
    legend = []
    for name, pts in series.items():
        color = colors.get(name, PALETTE[0])
        plot.polyline([(t, float(r)) for t, _, r in pts], color, 1.2, "4 3", f"{name} realized PnL",
                      "series realized")
        plot.polyline([(t, float(v)) for t, v, _ in pts], color, 2.2, "", f"{name} PnL (realized + unrealized)",
                      "series pnl")
        legend.append(line_key_span(color, f"{name} {format(pts[-1][1], ',f')}"))
    legend.append(line_key_span("#6b7280", "realized only", dashed=True))
    tips = []
    for t, moment, row in data.samples:
        parts = []
        for name, s in (row.get("strategies") or {}).items():
            realized, unrealized = decimal_of(s.get("realized")), decimal_of(s.get("unrealized"))
            if realized is not None and unrealized is not None:
                parts.append(f"{name}: {format(realized + unrealized, ',f')} (realized {format(realized, ',f')})")
        tips.append((t, f"{_hhmmss(moment, data.tz, n_days)}\n" + "\n".join(parts)))
    plot.hover(tips)
    return figure_html(f"PnL over time (realized + unrealized, {currency})", legend_span(legend) + phase_legend,
                   plot.svg("PnL over time per strategy", "pnl"), "pnl")


def _position_series(data: TimelineData) -> dict[str, dict[str, list[tuple[float, Decimal]]]]:
    """Per strategy and symbol: levels from the samples, moved at the exact fill times between
    them (each sample resets the level, so a dropped fill cannot leave it wrong for long)."""
    events: list[tuple[float, int, dict[str, Any]]] = [(t, 1, row) for t, _, row in data.samples]
    events += [(t, 0, row) for t, _, row in data.fills]
    events.sort(key=lambda e: (e[0], e[1]))
    level: dict[str, dict[str, Decimal]] = {}
    out: dict[str, dict[str, list[tuple[float, Decimal]]]] = {}
    symbols: dict[str, set[str]] = {}  # every symbol a strategy ever held: flat (0) where a sample omits it
    for _, kind, row in events:
        if kind == 1:
            for name, s in (row.get("strategies") or {}).items():
                symbols.setdefault(name, set()).update(s.get("positions") or {})
        elif row.get("strategy"):
            symbols.setdefault(str(row["strategy"]), set()).add(str(row.get("symbol", "")))

    def put(strategy: str, symbol: str, t: float, qty: Decimal) -> None:
        pts = out.setdefault(strategy, {}).setdefault(symbol, [])
        if pts and pts[-1][0] == t:
            pts[-1] = (t, qty)
        else:  # equal levels are kept too: a day's line starts at its first sample
            pts.append((t, qty))
        level.setdefault(strategy, {})[symbol] = qty

    for t, kind, row in events:
        if kind == 1:
            for name, s in (row.get("strategies") or {}).items():
                positions = s.get("positions") or {}
                for symbol in sorted(symbols.get(name, ())):
                    qty = decimal_of(positions.get(symbol, "0"))
                    if qty is not None:
                        put(name, symbol, t, qty)
        else:
            qty = decimal_of(row.get("qty"))
            name, symbol = str(row.get("strategy", "")), str(row.get("symbol", ""))
            if qty is None or not name:
                continue
            signed = qty if row.get("side") == "buy" else -qty
            put(name, symbol, t, level.get(name, {}).get(symbol, Decimal(0)) + signed)
    return out


def position_charts(data: TimelineData, phase_legend: str, n_days: int) -> str:
    """One step chart per strategy of its position in each symbol it traded."""
    by_strategy = _position_series(data)
    figures = []
    for name, symbols in by_strategy.items():
        moving = {sym: pts for sym, pts in sorted(symbols.items()) if any(q != 0 for _, q in pts)}
        if not moving:
            figures.append(f'<h3>{esc(name)}</h3><p class="muted">Flat the whole run.</p>')
            continue
        values = [float(q) for pts in moving.values() for _, q in pts]
        plot = Plot(data.axis, data.phases, 190, nice_ticks(min([0.0, *values]), max([0.0, *values]), 4))
        legend = []
        for k, (symbol, pts) in enumerate(moving.items()):
            color = PALETTE[(k + 3) % len(PALETTE)]
            plot.steps([(t, float(q)) for t, q in pts], color, 2.0, f"{name} {symbol} position", "series position")
            legend.append(line_key_span(color, f"{symbol} {format(pts[-1][1], ',f')}"))
        tips: list[tuple[float, str]] = []
        for t, moment, row in data.samples:
            s = (row.get("strategies") or {}).get(name)
            if s is None:
                continue
            held = ", ".join(f"{sym} {qty}" for sym, qty in sorted((s.get("positions") or {}).items())
                             if sym in moving) or "flat"
            tips.append((t, f"{_hhmmss(moment, data.tz, n_days)}  {name}: {held}"))
        plot.hover(tips)
        figures.append(figure_html(f"Position: {name} (shares)", legend_span(legend) + phase_legend,
                               plot.svg(f"position over time of {name}", "position")))
    return "".join(figures) or '<p class="muted">No positions in this report.</p>'


def _marker(x: float, y: float, side: str, liquidity: str, size: float) -> str:
    """A triangle: up for a buy, down for a sell; filled for taker, hollow for maker."""
    h = size * 1.7
    if side == "buy":
        d = f"M{px(x)} {px(y - h * 0.6)}L{px(x + size)} {px(y + h * 0.4)}L{px(x - size)} {px(y + h * 0.4)}Z"
    else:
        d = f"M{px(x)} {px(y + h * 0.6)}L{px(x + size)} {px(y - h * 0.4)}L{px(x - size)} {px(y - h * 0.4)}Z"
    color = BUY if side == "buy" else SELL
    fill = "#fff" if liquidity == "maker" else color
    return f'd="{d}" fill="{fill}" stroke="{color}" stroke-width="1.6"'


def price_charts(data: TimelineData, bands: dict[str, Any], phase_legend: str, n_days: int) -> str:
    """One chart per instrument: its price path, our fills as markers and the circuit band."""
    keys: list[str] = []
    for _, _, row in data.samples:
        keys.extend(k for k in (row.get("prices") or {}) if k not in keys)
    for _, _, row in data.fills:
        key = f"{row.get('venue', '')}:{row.get('symbol', '')}"
        if key not in keys:
            keys.append(key)
    for day_bands in bands.values():
        if isinstance(day_bands, dict):
            keys.extend(k for k in day_bands if k not in keys)
    keys.sort()
    max_qty = max((q for _, _, row in data.fills if (q := decimal_of(row.get("qty"))) is not None), default=Decimal(1))
    key_legend = legend_span([
        f'<span><svg width="14" height="12" viewBox="0 0 14 12"><path d="M7 1L13 11H1Z" fill="{BUY}"/></svg>'
        " buy</span>",
        f'<span><svg width="14" height="12" viewBox="0 0 14 12"><path d="M7 11L13 1H1Z" fill="{SELL}"/></svg>'
        " sell</span>",
        '<span><svg width="14" height="12" viewBox="0 0 14 12"><path d="M7 1L13 11H1Z" fill="#fff" '
        'stroke="#374151" stroke-width="1.5"/></svg> maker (hollow) / taker (solid), size by quantity</span>',
        line_key_span(BAND, "circuit band", dashed=True),
        '<span><i class="ln dot" style="border-color:#9ca3af"></i>reference (previous close)</span>',
    ])
    figures = []
    for key in keys:
        line = [(t, p) for t, _, row in data.samples
                if (p := decimal_of((row.get("prices") or {}).get(key))) is not None]
        fills = [(t, m, row) for t, m, row in data.fills if f"{row.get('venue', '')}:{row.get('symbol', '')}" == key]
        day_bands = []
        for day, per_key in sorted(bands.items()):
            band = per_key.get(key) if isinstance(per_key, dict) else None
            if isinstance(band, dict):
                day_bands.append((str(day), band))
        if not line and not fills:
            continue
        values = [float(p) for _, p in line] + [float(p) for _, _, r in fills if (p := decimal_of(r.get("price")))]
        lo, hi = min(values), max(values)
        span = max(hi - lo, abs(hi) * 0.002, 0.01)
        edges = [float(v) for _, b in day_bands for k in ("low", "high") if (v := decimal_of(b.get(k))) is not None]
        near = [v for v in edges if lo - span * 0.6 <= v <= hi + span * 0.6]  # in range without squashing the path
        lo, hi = min([lo, *near]), max([hi, *near])
        plot = Plot(data.axis, data.phases, 220, nice_ticks(lo - span * 0.08, hi + span * 0.08, 4))
        _draw_bands(plot, data, day_bands)
        plot.polyline([(t, float(p)) for t, p in line], PRICE, 1.4, "", f"{key} price", "series price")
        plot.hover([(t, f"{_hhmmss(m, data.tz, n_days)}  {key} {row['prices'][key]}")
                    for t, m, row in data.samples if (row.get("prices") or {}).get(key) is not None])
        for t, moment, row in fills:
            price, qty = decimal_of(row.get("price")), decimal_of(row.get("qty"))
            side, liquidity = str(row.get("side", "")), str(row.get("liquidity", ""))
            x = data.axis.x_clamped(t)
            y = plot.y(float(price)) if price is not None else plot.bottom
            size = 3.5 + 4.5 * math.sqrt(float(qty / max_qty)) if qty and max_qty else 3.5
            tip = (f"{_hhmmss(moment, data.tz, n_days)}  {row.get('strategy', '')} {side} {row.get('qty', '')} "
                   f"{row.get('symbol', '')} @ {row.get('price', '')} ({liquidity})")
            plot.body.append(f'<path class="fill-marker {esc(side)} {esc(liquidity)}" '
                             f'{_marker(x, y, side, liquidity, size)}><title>{esc(tip)}</title></path>')
        venue, _, symbol = key.partition(":")
        n_buy = sum(1 for *_, r in fills if r.get("side") == "buy")
        title = f"{symbol or key} ({venue}): price, {len(fills)} fill{'s' if len(fills) != 1 else ''}"
        if fills:
            title += f" ({n_buy} buy, {len(fills) - n_buy} sell)"
        figures.append(figure_html(title, phase_legend, plot.svg(f"price path of {key} with fills", "price")))
    if not figures:
        return '<p class="muted">No prices or fills in this report.</p>'
    return f'<p class="legend">{key_legend}</p>' + "".join(figures)


def _draw_bands(plot: Plot, data: TimelineData, day_bands: list[tuple[str, dict[str, Any]]]) -> None:
    """Each day's band as dashed lines over that day; an edge off the scale is drawn at the
    chart's border with its value, so the distance to the band still reads."""
    axis = data.axis
    for day, band in day_bands:
        spans = [i for i, seg in enumerate(axis.segments)
                 if dt.datetime.fromtimestamp(seg.start + MARGIN_S, axis.tz).date().isoformat() == day]
        if not spans and len(axis.segments) == 1:
            spans = [0]
        for i in spans:
            xa, xb = axis.seg_x(i)
            for edge in ("high", "low"):
                value = decimal_of(band.get(edge))
                if value is None:
                    continue
                y = plot.y(float(value))
                off = y < plot.top or y > plot.bottom
                y = min(max(y, plot.top + 1), plot.bottom - 1)
                name = "upper" if edge == "high" else "lower"
                label = f"{name} band {value}" + (" (off scale " + ("↑)" if edge == "high" else "↓)") if off else "")
                plot.body.append(
                    f'<line class="band {edge}" x1="{px(xa)}" x2="{px(xb)}" y1="{px(y)}" y2="{px(y)}" stroke="{BAND}" '
                    f'stroke-width="1.3" stroke-dasharray="6 4"><title>{esc(day)} {esc(label)}</title></line>')
                ty = y + 13 if edge == "high" else y - 5
                plot.body.append(f'<text x="{px(xb - 4)}" y="{px(ty)}" text-anchor="end" font-size="10.5" '
                                 f'fill="{BAND}">{esc(label)}</text>')
            reference = decimal_of(band.get("reference"))
            if reference is not None:
                y = plot.y(float(reference))
                if plot.top <= y <= plot.bottom:
                    plot.body.append(
                        f'<line class="reference" x1="{px(xa)}" x2="{px(xb)}" y1="{px(y)}" y2="{px(y)}" '
                        f'stroke="#9ca3af" stroke-width="1" stroke-dasharray="1 3"><title>{esc(day)} reference '
                        f'{esc(reference)}</title></line>')


def colors_by_code(report: dict[str, Any], data: TimelineData | None) -> dict[int, str]:
    """One colour per reject code, the most frequent first, shared by the bars and the time strip."""
    counts = report.get("rejects_by_code") or {}
    codes = [code for code, _ in sorted(((int_or_zero(c), n) for c, n in counts.items()),
                                        key=lambda r: (-count_or_zero(r[1]), r[0]))]
    if data is not None:
        codes += [c for c in dict.fromkeys(int_or_zero(r.get("code")) for *_, r in data.rejects) if c not in codes]
    return {code: REJECT_PALETTE[k % len(REJECT_PALETTE)] for k, code in enumerate(codes)}


def reject_strip(data: TimelineData, colors: dict[int, str], phase_legend: str, n_days: int) -> str:
    """Rejects over time, one row per strategy, a tick per reject coloured by code."""
    if not data.rejects:
        return ""
    names = list(dict.fromkeys(str(r.get("strategy", "")) for *_, r in data.rejects))
    height = TOP + BOTTOM + 22 * len(names) + 8
    plot = Plot(data.axis, data.phases, height, [Decimal(0), Decimal(len(names))])
    plot.ticks = []
    for k, name in enumerate(names):
        y = plot.top + 14 + 22 * k
        plot.body.append(f'<text x="{LEFT - 8}" y="{px(y + 4)}" text-anchor="end" font-size="11" '
                         f'fill="#374151">{esc(name)}</text>')
        for t, moment, row in data.rejects:
            if str(row.get("strategy", "")) != name:
                continue
            x = data.axis.x_clamped(t)
            code = int_or_zero(row.get("code"))
            tip = f"{_hhmmss(moment, data.tz, n_days)}  {name} reject {code}: {describe(code)}"
            plot.body.append(f'<line class="reject-tick" x1="{px(x)}" x2="{px(x)}" y1="{px(y - 8)}" y2="{px(y + 8)}" '
                             f'stroke="{colors.get(code, SELL)}" stroke-width="2"><title>{esc(tip)}</title></line>')
    shown = dict.fromkeys(int_or_zero(r.get("code")) for *_, r in data.rejects)
    legend = legend_span(swatch_span(colors.get(code, SELL), str(code)) for code in shown)
    return figure_html("Rejects over time, by strategy and code", legend + phase_legend,
                   plot.svg("rejects over time", "reject-times"))
