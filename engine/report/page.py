"""A run report as one self-contained HTML page: the picture of a paper day.

``engine report day.json --html day.html`` (or ``engine run ... --html day.html``) writes it. The
page has no JavaScript, fetches nothing (a Content-Security-Policy forbids it) and uses the
system's fonts, so it opens the same from a mail attachment, a CI artifact or a file share. Charts
are inline SVG drawn here: PnL per strategy, positions per strategy, the price path per
instrument with our fills and the circuit band, rejects by code; session phases are shaded
behind every time chart. Hovering a chart shows the values at that time (SVG ``<title>``).

The time axis is trading time: each trading day (pre-open to close, from the timeline's phases)
is one segment and nights are cut out, so a multi-day run reads left to right without empty
evenings. Labels are local time (the timeline's time zone, Asia/Karachi by default).

Tables show the report's own decimal strings (only thousands separators are added): floats are
used for SVG coordinates, never for a number a person reads as exact. Every string taken from the
report is HTML-escaped.
"""

from __future__ import annotations

import bisect
import datetime as dt
import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from engine import __version__
from engine.rejects import describe
from engine.secrets import Redactor, write_scrubbed

__all__ = ["check_report", "render_html", "write_html"]

# ---- look ---------------------------------------------------------------------------------------
#: background shade and legend label per session phase
PHASES: dict[str, tuple[str, str]] = {
    "pre_open": ("#fdf0c8", "pre-open"),
    "opening_match": ("#fbdcb8", "opening match"),
    "open": ("#e6f4e7", "open"),
    "break": ("#e1e8f4", "break"),
    "post_close": ("#ece3f6", "post-close"),
    "closed": ("#eeeeee", "closed"),
}
UNKNOWN_PHASE = "#f4f4f4"
PALETTE = ("#4e79a7", "#f28e2b", "#76b7b2", "#e15759", "#59a14f", "#b07aa1", "#edc948", "#9c755f", "#ff9da7",
           "#bab0ac")
REJECT_PALETTE = ("#dc2626", "#7c3aed", "#ea580c", "#0891b2", "#db2777", "#ca8a04", "#4b5563")
BUY, SELL, BAND, PRICE = "#15803d", "#dc2626", "#b45309", "#374151"

# ---- geometry (SVG user units; the SVG scales to the page width) -----------------------------------
WIDTH = 1120
LEFT, RIGHT = 78, 20
TOP, BOTTOM = 12, 44
DAY_GAP = 16  # the cut-out night between two trading days
MARGIN_S = 120  # shown before a day's first phase and after its close

CSS = """
:root { color-scheme: light; --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --card: #f9fafb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans",
       sans-serif; color: var(--ink); background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; font-weight: 650; }
h2 { font-size: 18px; margin: 36px 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--line);
     font-weight: 620; }
h3 { font-size: 14px; margin: 18px 0 4px; font-weight: 620; }
p.sub { margin: 0 0 14px; color: var(--muted); }
nav { margin: 8px 0 18px; font-size: 13px; }
nav a { color: #2563eb; text-decoration: none; margin-right: 14px; }
.meta { display: flex; flex-wrap: wrap; gap: 6px 18px; color: var(--muted); font-size: 13px; }
.meta b { color: var(--ink); font-weight: 560; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin: 18px 0 4px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .k { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 20px; font-weight: 620; font-variant-numeric: tabular-nums; }
.card .s { font-size: 12px; color: var(--muted); }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 6px 0; }
th, td { padding: 5px 12px 5px 0; text-align: left; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 560; text-transform: uppercase; letter-spacing: .03em; }
td.n, th.n { text-align: right; padding-left: 12px; }
.pos { color: #15803d; } .neg { color: #b91c1c; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 560;
         background: #e5e7eb; }
.badge.ok { background: #dcfce7; color: #166534; } .badge.warn { background: #fef3c7; color: #92400e; }
.badge.bad { background: #fee2e2; color: #991b1b; }
.note { background: #fffbeb; border: 1px solid #fde68a; border-radius: 8px; padding: 10px 14px; margin: 12px 0; }
.muted { color: var(--muted); }
figure { margin: 14px 0 22px; }
figcaption { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 16px; margin-bottom: 4px; }
figcaption .t { font-weight: 620; }
.legend { display: inline-flex; flex-wrap: wrap; gap: 2px 12px; font-size: 12px; color: var(--muted); }
.legend span { white-space: nowrap; }
.sw { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -2px; margin-right: 4px;
      border: 1px solid rgba(0,0,0,.08); }
.ln { display: inline-block; width: 18px; height: 0; border-top: 2.5px solid; vertical-align: 3px; margin-right: 4px; }
.ln.dash { border-top-style: dashed; border-top-width: 1.5px; }
.ln.dot { border-top-style: dotted; border-top-width: 2px; }
.row { display: flex; flex-wrap: wrap; gap: 0 48px; align-items: flex-start; }
svg.chart { width: 100%; height: auto; display: block; overflow: visible; }
svg text { font-family: inherit; }
.hover { fill: transparent; }
.hover:hover { fill: rgba(17, 24, 39, .07); }
.fill-marker:hover { stroke-width: 2.5; }
details { margin: 6px 0; } summary { cursor: pointer; color: #2563eb; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
@media print { nav { display: none; } main { max-width: none; } }
"""


# ---- small helpers --------------------------------------------------------------------------------
def esc(value: object) -> str:
    """Every string from the report goes through here before it reaches the page."""
    return html.escape(str(value), quote=True)


def _dec(value: object) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def fmt_num(value: object) -> str:
    """The report's own digits with thousands separators: ``"4476697.00"`` -> ``4,476,697.00``."""
    number = _dec(value)
    if number is None:
        return esc("" if value is None else value)
    return esc(format(number, ",f"))


def fmt_money(value: object) -> str:
    """:func:`fmt_num`, coloured by sign."""
    number = _dec(value)
    text = fmt_num(value)
    if number is None or number == 0:
        return text
    return f'<span class="{"pos" if number > 0 else "neg"}">{text}</span>'


def _f(x: float) -> str:
    """An SVG coordinate: short, no exponent."""
    return f"{x:.1f}".rstrip("0").rstrip(".") if math.isfinite(x) else "0"


def _parse_ts(text: object) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _zone(timeline: dict[str, Any] | None) -> dt.tzinfo:
    name = (timeline or {}).get("timezone") or "Asia/Karachi"
    try:
        return ZoneInfo(str(name))
    except (KeyError, ValueError):
        return ZoneInfo("Asia/Karachi")


def _ns_time(value: object, tz: dt.tzinfo) -> str:
    """Kill-switch history times are ns since the epoch; show them as local date and time."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 10**15:
        return dt.datetime.fromtimestamp(value // 1_000_000_000, tz).strftime("%Y-%m-%d %H:%M:%S")
    moment = _parse_ts(value)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if moment else str(value)


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


def _legend(items: Iterable[str]) -> str:
    return f'<span class="legend">{"".join(items)}</span>'


def _swatch(color: str, label: str) -> str:
    return f'<span><i class="sw" style="background:{color}"></i>{esc(label)}</span>'


def _line_key(color: str, label: str, dashed: bool = False) -> str:
    return f'<span><i class="ln{" dash" if dashed else ""}" style="border-color:{color}"></i>{esc(label)}</span>'


# ---- the time axis: trading time, nights cut out -------------------------------------------------
@dataclass
class _Segment:
    start: float  # epoch seconds
    end: float


class _TimeAxis:
    """Maps epoch seconds to x: one segment per trading day, side by side, nights left out."""

    def __init__(self, segments: list[_Segment], tz: dt.tzinfo, x0: float = LEFT, x1: float = WIDTH - RIGHT):
        self.segments = segments
        self.tz = tz
        self.x0, self.x1 = x0, x1
        # a few days get a clear gap each; weeks of days share at most a fifth of the width
        self.gap = min(DAY_GAP, (x1 - x0) * 0.2 / (len(segments) - 1)) if len(segments) > 1 else 0.0
        gaps = self.gap * (len(segments) - 1)
        total = sum(s.end - s.start for s in segments) or 1.0
        self.scale = (x1 - x0 - gaps) / total
        self.starts = [s.start for s in segments]
        self.offsets: list[float] = []
        x = x0
        for s in segments:
            self.offsets.append(x)
            x += (s.end - s.start) * self.scale + self.gap

    def index(self, t: float) -> int | None:
        i = bisect.bisect_right(self.starts, t) - 1
        if i >= 0 and t <= self.segments[i].end:
            return i
        return None

    def x(self, t: float) -> float | None:
        """x of ``t``, None when it falls in a cut-out night."""
        i = self.index(t)
        if i is None:
            return None
        return self.offsets[i] + (t - self.segments[i].start) * self.scale

    def x_clamped(self, t: float) -> float:
        """x of ``t``, or of the nearest shown moment (a marker is never lost)."""
        x = self.x(t)
        if x is not None:
            return x
        i = bisect.bisect_right(self.starts, t) - 1
        if i < 0:
            return self.x0
        after_end = self.seg_x(i)[1]
        if i + 1 < len(self.segments) and self.segments[i + 1].start - t < t - self.segments[i].end:
            return self.offsets[i + 1]
        return after_end

    def seg_x(self, i: int) -> tuple[float, float]:
        s = self.segments[i]
        return self.offsets[i], self.offsets[i] + (s.end - s.start) * self.scale

    def ticks(self) -> list[tuple[float, str]]:
        """Round local times (HH:MM) about every 80 units."""
        step_min = next((m for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360, 720)
                         if m * 60 * self.scale >= 80), 1440)
        out = []
        for i, s in enumerate(self.segments):
            local = dt.datetime.fromtimestamp(s.start, self.tz)
            minute = local.hour * 60 + local.minute
            first = local.replace(second=0, microsecond=0) + dt.timedelta(minutes=-(minute % step_min) + step_min)
            t = first.timestamp()
            while t <= s.end:
                x = self.offsets[i] + (t - s.start) * self.scale
                if x - self.offsets[i] >= 14 and self.seg_x(i)[1] - x >= 14:
                    out.append((x, dt.datetime.fromtimestamp(t, self.tz).strftime("%H:%M")))
                t += step_min * 60
        return out


def _segments(phases: list[tuple[float, str]], times: Sequence[float], tz: dt.tzinfo) -> list[_Segment]:
    """Trading days from the phases (first non-closed phase to the next close), else one per
    local date of the recorded times; a small margin either side."""
    stretches: list[tuple[float, float]] = []
    start: float | None = None
    for t, phase in phases:
        if phase != "closed":
            if start is None:
                start = t
        elif start is not None:
            stretches.append((start, t))
            start = None
    if start is not None:
        stretches.append((start, max([start, *times])))
    if not stretches and times:
        days: dict[dt.date, list[float]] = {}
        for t in times:
            days.setdefault(dt.datetime.fromtimestamp(t, tz).date(), []).append(t)
        stretches = [(min(ts), max(ts)) for _, ts in sorted(days.items())]
    merged: list[_Segment] = []
    for a, b in sorted(stretches):
        a, b = a - MARGIN_S, max(b, a + 60) + MARGIN_S
        if merged and a <= merged[-1].end:
            merged[-1].end = max(merged[-1].end, b)
        else:
            merged.append(_Segment(a, b))
    return merged


# ---- y scale ---------------------------------------------------------------------------------
def nice_ticks(lo: float, hi: float, n: int = 5) -> list[Decimal]:
    """Round tick values (1, 2, 2.5, 5 x 10^k) covering [lo, hi], computed in Decimal so labels
    read 0.3, not 0.30000000000000004."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi - lo < 1e-9:
        pad = abs(lo) * 0.01 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = Decimal(repr((hi - lo) / n))
    base = Decimal(1).scaleb(raw.adjusted())
    step = base * 10
    for m in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)):
        if base * m >= raw:
            step = base * m
            break
    first = (Decimal(repr(lo)) / step).to_integral_value(ROUND_FLOOR) * step
    last = (Decimal(repr(hi)) / step).to_integral_value(ROUND_CEILING) * step
    ticks = []
    value = first
    while value <= last and len(ticks) < 50:
        ticks.append(value)
        value += step
    return ticks


def _tick_label(value: Decimal, ticks: Sequence[Decimal]) -> str:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else Decimal(1)
    places = max(0, -step.normalize().as_tuple().exponent)  # type: ignore[operator]
    return format(value.quantize(Decimal(1).scaleb(-places)), f",.{places}f")


# ---- one chart ---------------------------------------------------------------------------------
class _Plot:
    """A time chart: phase shading, grid, axes; callers add series to ``body``."""

    def __init__(self, axis: _TimeAxis, phases: list[tuple[float, float, str]], height: int,
                 ticks: list[Decimal]) -> None:
        self.axis = axis
        self.phases = phases
        self.height = height
        self.top, self.bottom = TOP, height - BOTTOM
        self.ticks = ticks
        pad = (float(ticks[-1]) - float(ticks[0])) * 0.04  # a line at an extreme tick stays off the frame
        self.lo, self.hi = float(ticks[0]) - pad, float(ticks[-1]) + pad
        self.body: list[str] = []

    def y(self, value: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.bottom - (value - self.lo) / span * (self.bottom - self.top)

    def frame(self) -> list[str]:
        axis, out = self.axis, []
        top, bottom = self.top, self.bottom
        for i, _ in enumerate(axis.segments):
            xa, xb = axis.seg_x(i)
            out.append(f'<rect x="{_f(xa)}" y="{top}" width="{_f(xb - xa)}" height="{bottom - top}" fill="#fff"/>')
        for a, b, phase in self.phases:  # session phases, clipped to the shown days
            color = PHASES.get(phase, (UNKNOWN_PHASE, phase))[0]
            for i, seg in enumerate(axis.segments):
                lo, hi = max(a, seg.start), min(b, seg.end)
                if hi <= lo:
                    continue
                xa = axis.offsets[i] + (lo - seg.start) * axis.scale
                xb = axis.offsets[i] + (hi - seg.start) * axis.scale
                out.append(f'<rect class="phase {esc(phase)}" x="{_f(xa)}" y="{top}" width="{_f(xb - xa)}" '
                           f'height="{bottom - top}" fill="{color}"><title>{esc(phase)}</title></rect>')
        for tick in self.ticks:
            y = self.y(float(tick))
            strong = ' stroke="#9ca3af"' if tick == 0 else ' stroke="#d9dde3" stroke-dasharray="2 3"'
            for i, _ in enumerate(axis.segments):
                xa, xb = axis.seg_x(i)
                out.append(f'<line x1="{_f(xa)}" x2="{_f(xb)}" y1="{_f(y)}" y2="{_f(y)}"{strong}/>')
            out.append(f'<text x="{LEFT - 8}" y="{_f(y + 4)}" text-anchor="end" font-size="11" fill="#6b7280">'
                       f'{esc(_tick_label(tick, self.ticks))}</text>')
        for x, label in axis.ticks():
            out.append(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{bottom}" y2="{bottom + 4}" stroke="#9ca3af"/>')
            out.append(f'<text x="{_f(x)}" y="{bottom + 16}" text-anchor="middle" font-size="11" '
                       f'fill="#6b7280">{esc(label)}</text>')
        label_end = -1e9
        for i, seg in enumerate(axis.segments):
            xa, xb = axis.seg_x(i)
            local = dt.datetime.fromtimestamp(seg.start + MARGIN_S, axis.tz)
            day = local.strftime("%a %d %b %Y" if xb - xa >= 110 else "%d %b")
            if xa >= label_end:  # many short days: label those there is room for
                out.append(f'<text class="day" x="{_f(xa + 2)}" y="{bottom + 32}" font-size="11" font-weight="600" '
                           f'fill="#4b5563">{esc(day)}</text>')
                label_end = xa + 7 * len(day) + 12
            out.append(f'<line x1="{_f(xa)}" x2="{_f(xb)}" y1="{bottom}" y2="{bottom}" stroke="#9ca3af"/>')
            if i:  # the cut-out night between two days
                gx = xa - axis.gap / 2
                out.append(f'<line class="day-break" x1="{_f(gx)}" x2="{_f(gx)}" y1="{top}" y2="{bottom + 36}" '
                           f'stroke="#9ca3af" stroke-dasharray="3 3"><title>night left out</title></line>')
        return out

    def svg(self, label: str, css_class: str) -> str:
        return (f'<svg class="chart {css_class}" viewBox="0 0 {WIDTH} {self.height}" role="img" '
                f'aria-label="{esc(label)}">{"".join(self.frame())}{"".join(self.body)}</svg>')

    # ---- series
    def polyline(self, points: Iterable[tuple[float, float]], color: str, width: float = 1.8,
                 dash: str = "", title: str = "", css_class: str = "series") -> None:
        """A line through (t, value), broken at the cut-out nights."""
        self._path(points, color, width, dash, title, css_class, step=False)

    def steps(self, points: Iterable[tuple[float, float]], color: str, width: float = 1.8, title: str = "",
              css_class: str = "series") -> None:
        """A step line: each value holds until the next point (and to the end of its day)."""
        self._path(points, color, width, "", title, css_class, step=True)

    def _path(self, points: Iterable[tuple[float, float]], color: str, width: float, dash: str, title: str,
              css_class: str, step: bool) -> None:
        axis, parts = self.axis, []
        seg = None
        if not step:
            points = _thin(list(points), axis)
        for t, value in points:
            i = axis.index(t)
            if i is None:
                continue
            x = axis.offsets[i] + (t - axis.segments[i].start) * axis.scale
            y = self.y(value)
            if i != seg:
                if step and seg is not None:
                    parts.append(f"H{_f(axis.seg_x(seg)[1])}")
                parts.append(f"M{_f(x)} {_f(y)}")
                seg = i
            elif step:
                parts.append(f"H{_f(x)}V{_f(y)}")
            else:
                parts.append(f"L{_f(x)} {_f(y)}")
        if not parts:
            return
        if step and seg is not None:
            parts.append(f"H{_f(axis.seg_x(seg)[1])}")
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        tip = f"<title>{esc(title)}</title>" if title else ""
        self.body.append(f'<path class="{css_class}" d="{"".join(parts)}" fill="none" stroke="{color}" '
                         f'stroke-width="{width}" stroke-linejoin="round"{dash_attr}>{tip}</path>')

    def hover(self, items: Sequence[tuple[float, str]]) -> None:
        """Transparent strips, one per few pixels, whose tooltip reads the values at that time."""
        axis = self.axis
        placed: list[tuple[float, str]] = []
        for t, text in items:
            x = axis.x(t)
            if x is None:
                continue
            if placed and x - placed[-1][0] < 3:
                placed[-1] = (placed[-1][0], text)
            else:
                placed.append((x, text))
        for k, (x, text) in enumerate(placed):
            left = max((x + placed[k - 1][0]) / 2, x - 6) if k else x - 1.5
            right = min((x + placed[k + 1][0]) / 2, x + 6) if k + 1 < len(placed) else x + 1.5
            self.body.append(f'<rect class="hover" x="{_f(left)}" y="{self.top}" width="{_f(max(right - left, 1))}" '
                             f'height="{self.bottom - self.top}"><title>{esc(text)}</title></rect>')


def _thin(points: list[tuple[float, float]], axis: _TimeAxis) -> list[tuple[float, float]]:
    """A long line keeps, per pixel column, its first, lowest, highest and last point: the same
    picture from a fraction of the path (weeks of samples stay a small page)."""
    if len(points) <= 2 * (axis.x1 - axis.x0):
        return points
    out: list[tuple[float, float]] = []
    bucket: list[tuple[float, float]] = []

    def flush() -> None:
        by_value = sorted(range(len(bucket)), key=lambda k: bucket[k][1])
        out.extend(bucket[k] for k in sorted({0, len(bucket) - 1, by_value[0], by_value[-1]}))
        bucket.clear()

    column = None
    for point in points:
        x = axis.x(point[0])
        key = None if x is None else int(x)
        if key != column and bucket:
            flush()
        column = key
        bucket.append(point)
    if bucket:
        flush()
    return out


# ---- reading the timeline ---------------------------------------------------------------------
@dataclass
class _Data:
    tz: dt.tzinfo
    axis: _TimeAxis
    phases: list[tuple[float, float, str]]  # (start, end, phase) shading intervals
    samples: list[tuple[float, dt.datetime, dict[str, Any]]]
    fills: list[tuple[float, dt.datetime, dict[str, Any]]]
    rejects: list[tuple[float, dt.datetime, dict[str, Any]]]


def _timed(rows: object) -> list[tuple[float, dt.datetime, dict[str, Any]]]:
    out = []
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and (moment := _parse_ts(row.get("ts"))) is not None:
            out.append((moment.timestamp(), moment, row))
    out.sort(key=lambda r: r[0])
    return out


def _read_timeline(timeline: dict[str, Any]) -> _Data | None:
    tz = _zone(timeline)
    phase_rows = _timed(timeline.get("phases"))
    samples, fills, rejects = _timed(timeline.get("samples")), _timed(timeline.get("fills")), _timed(
        timeline.get("rejects"))
    phases = [(t, str(row.get("phase", ""))) for t, _, row in phase_rows]
    times = [r[0] for r in samples] + [r[0] for r in fills] + [r[0] for r in rejects]
    segments = _segments(phases, times, tz)
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
    return _Data(tz, _TimeAxis(segments, tz), intervals, samples, fills, rejects)


def _hhmmss(moment: dt.datetime, tz: dt.tzinfo, days: int) -> str:
    local = moment.astimezone(tz)
    return local.strftime("%a %H:%M:%S" if days > 1 else "%H:%M:%S")


# ---- sections ------------------------------------------------------------------------------------
def _phase_legend(data: _Data) -> str:
    seen = []
    for _, _, phase in data.phases:
        if phase not in seen:
            seen.append(phase)
    order = list(PHASES)
    seen.sort(key=lambda p: order.index(p) if p in order else len(order))
    return _legend(_swatch(PHASES.get(p, (UNKNOWN_PHASE, p))[0], PHASES.get(p, ("", p))[1]) for p in seen)


def _figure(title: str, legend: str, svg: str, anchor: str = "") -> str:
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return f'<figure{ident}><figcaption><span class="t">{esc(title)}</span>{legend}</figcaption>{svg}</figure>'


def _strategy_colors(report: dict[str, Any], data: _Data | None) -> dict[str, str]:
    names = list(report.get("strategies", {}))
    if data is not None:
        for _, _, row in data.samples:
            for name in row.get("strategies", {}) or {}:
                if name not in names:
                    names.append(name)
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def report_currency(report: dict[str, Any]) -> str:
    """What the page's amounts are in: the venues' account currency (``venues.<name>.currency``;
    PKR for a report written before venues stated one, all PSX cash accounts), or, where venues
    settle in different currencies, a phrase saying so (a strategy's PnL is in its venue's)."""
    venues = report.get("venues") if isinstance(report.get("venues"), dict) else {}
    stated = {str(v.get("currency") or "PKR") for v in venues.values() if isinstance(v, dict)}
    if len(stated) > 1:
        return "each venue's account currency"
    return stated.pop() if stated else "PKR"


def _pnl_chart(data: _Data, colors: dict[str, str], phase_legend: str, n_days: int, currency: str = "PKR") -> str:
    series: dict[str, list[tuple[float, Decimal, Decimal]]] = {}
    for t, _, row in data.samples:
        for name, s in (row.get("strategies") or {}).items():
            realized, unrealized = _dec(s.get("realized")), _dec(s.get("unrealized"))
            if realized is None or unrealized is None:
                continue
            series.setdefault(name, []).append((t, realized + unrealized, realized))
    if not series:
        return '<p class="muted">No PnL samples in this report.</p>'
    values = [float(v) for pts in series.values() for _, total, realized in pts for v in (total, realized)]
    plot = _Plot(data.axis, data.phases, 300, nice_ticks(min([0.0, *values]), max([0.0, *values])))
    legend = []
    for name, pts in series.items():
        color = colors.get(name, PALETTE[0])
        plot.polyline([(t, float(r)) for t, _, r in pts], color, 1.2, "4 3", f"{name} realized PnL",
                      "series realized")
        plot.polyline([(t, float(v)) for t, v, _ in pts], color, 2.2, "", f"{name} PnL (realized + unrealized)",
                      "series pnl")
        legend.append(_line_key(color, f"{name} {format(pts[-1][1], ',f')}"))
    legend.append(_line_key("#6b7280", "realized only", dashed=True))
    tips = []
    for t, moment, row in data.samples:
        parts = []
        for name, s in (row.get("strategies") or {}).items():
            realized, unrealized = _dec(s.get("realized")), _dec(s.get("unrealized"))
            if realized is not None and unrealized is not None:
                parts.append(f"{name}: {format(realized + unrealized, ',f')} (realized {format(realized, ',f')})")
        tips.append((t, f"{_hhmmss(moment, data.tz, n_days)}\n" + "\n".join(parts)))
    plot.hover(tips)
    return _figure(f"PnL over time (realized + unrealized, {currency})", _legend(legend) + phase_legend,
                   plot.svg("PnL over time per strategy", "pnl"), "pnl")


def _position_series(data: _Data) -> dict[str, dict[str, list[tuple[float, Decimal]]]]:
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
                    qty = _dec(positions.get(symbol, "0"))
                    if qty is not None:
                        put(name, symbol, t, qty)
        else:
            qty = _dec(row.get("qty"))
            name, symbol = str(row.get("strategy", "")), str(row.get("symbol", ""))
            if qty is None or not name:
                continue
            signed = qty if row.get("side") == "buy" else -qty
            put(name, symbol, t, level.get(name, {}).get(symbol, Decimal(0)) + signed)
    return out


def _position_charts(data: _Data, phase_legend: str, n_days: int) -> str:
    by_strategy = _position_series(data)
    figures = []
    for name, symbols in by_strategy.items():
        moving = {sym: pts for sym, pts in sorted(symbols.items()) if any(q != 0 for _, q in pts)}
        if not moving:
            figures.append(f'<h3>{esc(name)}</h3><p class="muted">Flat the whole run.</p>')
            continue
        values = [float(q) for pts in moving.values() for _, q in pts]
        plot = _Plot(data.axis, data.phases, 190, nice_ticks(min([0.0, *values]), max([0.0, *values]), 4))
        legend = []
        for k, (symbol, pts) in enumerate(moving.items()):
            color = PALETTE[(k + 3) % len(PALETTE)]
            plot.steps([(t, float(q)) for t, q in pts], color, 2.0, f"{name} {symbol} position", "series position")
            legend.append(_line_key(color, f"{symbol} {format(pts[-1][1], ',f')}"))
        tips: list[tuple[float, str]] = []
        for t, moment, row in data.samples:
            s = (row.get("strategies") or {}).get(name)
            if s is None:
                continue
            held = ", ".join(f"{sym} {qty}" for sym, qty in sorted((s.get("positions") or {}).items())
                             if sym in moving) or "flat"
            tips.append((t, f"{_hhmmss(moment, data.tz, n_days)}  {name}: {held}"))
        plot.hover(tips)
        figures.append(_figure(f"Position: {name} (shares)", _legend(legend) + phase_legend,
                               plot.svg(f"position over time of {name}", "position")))
    return "".join(figures) or '<p class="muted">No positions in this report.</p>'


def _marker(x: float, y: float, side: str, liquidity: str, size: float) -> str:
    """A triangle: up for a buy, down for a sell; filled for taker, hollow for maker."""
    h = size * 1.7
    if side == "buy":
        d = f"M{_f(x)} {_f(y - h * 0.6)}L{_f(x + size)} {_f(y + h * 0.4)}L{_f(x - size)} {_f(y + h * 0.4)}Z"
    else:
        d = f"M{_f(x)} {_f(y + h * 0.6)}L{_f(x + size)} {_f(y - h * 0.4)}L{_f(x - size)} {_f(y - h * 0.4)}Z"
    color = BUY if side == "buy" else SELL
    fill = "#fff" if liquidity == "maker" else color
    return f'd="{d}" fill="{fill}" stroke="{color}" stroke-width="1.6"'


def _price_charts(data: _Data, bands: dict[str, Any], phase_legend: str, n_days: int) -> str:
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
    max_qty = max((q for _, _, row in data.fills if (q := _dec(row.get("qty"))) is not None), default=Decimal(1))
    key_legend = _legend([
        f'<span><svg width="14" height="12" viewBox="0 0 14 12"><path d="M7 1L13 11H1Z" fill="{BUY}"/></svg>'
        " buy</span>",
        f'<span><svg width="14" height="12" viewBox="0 0 14 12"><path d="M7 11L13 1H1Z" fill="{SELL}"/></svg>'
        " sell</span>",
        '<span><svg width="14" height="12" viewBox="0 0 14 12"><path d="M7 1L13 11H1Z" fill="#fff" '
        'stroke="#374151" stroke-width="1.5"/></svg> maker (hollow) / taker (solid), size by quantity</span>',
        _line_key(BAND, "circuit band", dashed=True),
        '<span><i class="ln dot" style="border-color:#9ca3af"></i>reference (previous close)</span>',
    ])
    figures = []
    for key in keys:
        line = [(t, p) for t, _, row in data.samples if (p := _dec((row.get("prices") or {}).get(key))) is not None]
        fills = [(t, m, row) for t, m, row in data.fills if f"{row.get('venue', '')}:{row.get('symbol', '')}" == key]
        day_bands = []
        for day, per_key in sorted(bands.items()):
            band = per_key.get(key) if isinstance(per_key, dict) else None
            if isinstance(band, dict):
                day_bands.append((str(day), band))
        if not line and not fills:
            continue
        values = [float(p) for _, p in line] + [float(p) for _, _, r in fills if (p := _dec(r.get("price")))]
        lo, hi = min(values), max(values)
        span = max(hi - lo, abs(hi) * 0.002, 0.01)
        edges = [float(v) for _, b in day_bands for k in ("low", "high") if (v := _dec(b.get(k))) is not None]
        near = [v for v in edges if lo - span * 0.6 <= v <= hi + span * 0.6]  # in range without squashing the path
        lo, hi = min([lo, *near]), max([hi, *near])
        plot = _Plot(data.axis, data.phases, 220, nice_ticks(lo - span * 0.08, hi + span * 0.08, 4))
        _draw_bands(plot, data, day_bands)
        plot.polyline([(t, float(p)) for t, p in line], PRICE, 1.4, "", f"{key} price", "series price")
        plot.hover([(t, f"{_hhmmss(m, data.tz, n_days)}  {key} {row['prices'][key]}")
                    for t, m, row in data.samples if (row.get("prices") or {}).get(key) is not None])
        for t, moment, row in fills:
            price, qty = _dec(row.get("price")), _dec(row.get("qty"))
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
        figures.append(_figure(title, phase_legend, plot.svg(f"price path of {key} with fills", "price")))
    if not figures:
        return '<p class="muted">No prices or fills in this report.</p>'
    return f'<p class="legend">{key_legend}</p>' + "".join(figures)


def _draw_bands(plot: _Plot, data: _Data, day_bands: list[tuple[str, dict[str, Any]]]) -> None:
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
                value = _dec(band.get(edge))
                if value is None:
                    continue
                y = plot.y(float(value))
                off = y < plot.top or y > plot.bottom
                y = min(max(y, plot.top + 1), plot.bottom - 1)
                name = "upper" if edge == "high" else "lower"
                label = f"{name} band {value}" + (" (off scale " + ("↑)" if edge == "high" else "↓)") if off else "")
                plot.body.append(
                    f'<line class="band {edge}" x1="{_f(xa)}" x2="{_f(xb)}" y1="{_f(y)}" y2="{_f(y)}" stroke="{BAND}" '
                    f'stroke-width="1.3" stroke-dasharray="6 4"><title>{esc(day)} {esc(label)}</title></line>')
                ty = y + 13 if edge == "high" else y - 5
                plot.body.append(f'<text x="{_f(xb - 4)}" y="{_f(ty)}" text-anchor="end" font-size="10.5" '
                                 f'fill="{BAND}">{esc(label)}</text>')
            reference = _dec(band.get("reference"))
            if reference is not None:
                y = plot.y(float(reference))
                if plot.top <= y <= plot.bottom:
                    plot.body.append(
                        f'<line class="reference" x1="{_f(xa)}" x2="{_f(xb)}" y1="{_f(y)}" y2="{_f(y)}" '
                        f'stroke="#9ca3af" stroke-width="1" stroke-dasharray="1 3"><title>{esc(day)} reference '
                        f'{esc(reference)}</title></line>')


def _reject_colors(report: dict[str, Any], data: _Data | None) -> dict[int, str]:
    """One colour per reject code, the most frequent first, shared by the bars and the time strip."""
    counts = report.get("rejects_by_code") or {}
    codes = [code for code, _ in sorted(((_int(c), n) for c, n in counts.items()), key=lambda r: (-_n(r[1]), r[0]))]
    if data is not None:
        codes += [c for c in dict.fromkeys(_int(r.get("code")) for *_, r in data.rejects) if c not in codes]
    return {code: REJECT_PALETTE[k % len(REJECT_PALETTE)] for k, code in enumerate(codes)}


def _n(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _reject_strip(data: _Data, colors: dict[int, str], phase_legend: str, n_days: int) -> str:
    if not data.rejects:
        return ""
    names = list(dict.fromkeys(str(r.get("strategy", "")) for *_, r in data.rejects))
    height = TOP + BOTTOM + 22 * len(names) + 8
    plot = _Plot(data.axis, data.phases, height, [Decimal(0), Decimal(len(names))])
    plot.ticks = []
    for k, name in enumerate(names):
        y = plot.top + 14 + 22 * k
        plot.body.append(f'<text x="{LEFT - 8}" y="{_f(y + 4)}" text-anchor="end" font-size="11" '
                         f'fill="#374151">{esc(name)}</text>')
        for t, moment, row in data.rejects:
            if str(row.get("strategy", "")) != name:
                continue
            x = data.axis.x_clamped(t)
            code = _int(row.get("code"))
            tip = f"{_hhmmss(moment, data.tz, n_days)}  {name} reject {code}: {describe(code)}"
            plot.body.append(f'<line class="reject-tick" x1="{_f(x)}" x2="{_f(x)}" y1="{_f(y - 8)}" y2="{_f(y + 8)}" '
                             f'stroke="{colors.get(code, SELL)}" stroke-width="2"><title>{esc(tip)}</title></line>')
    shown = dict.fromkeys(_int(r.get("code")) for *_, r in data.rejects)
    legend = _legend(_swatch(colors.get(code, SELL), str(code)) for code in shown)
    return _figure("Rejects over time, by strategy and code", legend + phase_legend,
                   plot.svg("rejects over time", "reject-times"))


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _rejects_section(report: dict[str, Any], colors: dict[int, str], strip: str) -> str:
    counts = report.get("rejects_by_code") or {}
    rows = sorted(((_int(code), _n(n)) for code, n in counts.items() if _n(n) > 0), key=lambda r: (-r[1], r[0]))
    parts = ['<h2 id="rejects">Rejects by code</h2>']
    if not rows:
        parts.append('<p class="muted">No order was rejected.</p>')
        return "".join(parts) + strip
    top = max(n for _, n in rows)
    row_h, label_w = 28, 700
    bar_x, bar_w = label_w, WIDTH - label_w - 60
    height = row_h * len(rows) + 8
    body = []
    for k, (code, n) in enumerate(rows):
        y = 4 + k * row_h
        sentence = describe(code)
        w = max(bar_w * n / top, 2)
        body.append(
            f'<g class="reject-bar"><title>{code}: {esc(sentence)} ({n})</title>'
            f'<text x="0" y="{y + 18}" font-size="12.5" font-weight="650" fill="#111827">{code}</text>'
            f'<text x="46" y="{y + 18}" font-size="12.5" fill="#374151">{esc(sentence)}</text>'
            f'<rect x="{bar_x}" y="{y + 5}" width="{_f(w)}" height="{row_h - 10}" rx="3" '
            f'fill="{colors.get(code, SELL)}" fill-opacity=".8"/>'
            f'<text x="{_f(bar_x + w + 6)}" y="{y + 18}" font-size="12.5" font-weight="600" fill="#111827">{n}</text>'
            "</g>")
    parts.append(f'<svg class="chart rejects" viewBox="0 0 {WIDTH} {height}" role="img" '
                 f'aria-label="rejects by code">{"".join(body)}</svg>')
    return "".join(parts) + strip


def _header(report: dict[str, Any]) -> str:
    days = [str(d) for d in report.get("trading_days") or []]
    title = "Run report"
    if days:
        title += f": {days[0]}" + (f" to {days[-1]} ({len(days)} trading days)" if len(days) > 1 else "")
    wall = report.get("wall_seconds")
    meta = [
        ("trading days", ", ".join(days) or "none"),
        ("clock", report.get("clock", "?")),
        ("seed", report.get("seed", "?")),
        ("stopped by", report.get("stopped_by", "?")),
        ("wall time", f"{wall} s" if wall is not None else "?"),
    ]
    sessions = report.get("sessions")
    if isinstance(sessions, list) and sessions:
        meta.append(("sessions", " → ".join(str(s) for s in sessions)))
    items = "".join(f"<span>{esc(k)} <b>{esc(v)}</b></span>" for k, v in meta)
    return f'<header><h1>{esc(title)}</h1><div class="meta">{items}</div></header>'


def _cards(report: dict[str, Any]) -> str:
    strategies = {n: s for n, s in (report.get("strategies") or {}).items() if isinstance(s, dict)}
    realized = sum((_dec(s.get("realized_pnl")) or Decimal(0) for s in strategies.values()), Decimal(0))
    unrealized = sum((_dec(s.get("unrealized_pnl")) or Decimal(0) for s in strategies.values()), Decimal(0))
    fees = sum((_dec(s.get("fees")) or Decimal(0) for s in strategies.values()), Decimal(0))
    orders = report.get("orders") or {}
    left = _left_working(report)
    rejects = sum(n for n in (report.get("rejects_by_code") or {}).values() if isinstance(n, int))
    ks = report.get("kill_switch") or {}
    state = str(ks.get("state", "n/a"))
    badge = {"active": "ok", "reducing": "warn", "halted": "bad"}.get(state, "")
    cards = [
        ("PnL", fmt_money(realized + unrealized), f"realized {fmt_num(realized)} net of fees {fmt_num(fees)} · "
         f"unrealized {fmt_num(unrealized)}"),
        ("fills", fmt_num(report.get("fills", "?")), f"{fmt_num(orders.get('submitted', '?'))} orders submitted"),
        ("orders", f"{fmt_num(orders.get('filled', 0))} filled",
         f"{fmt_num(orders.get('cancelled', 0))} cancelled · {fmt_num(orders.get('expired', 0))} expired · "
         f"{fmt_num(orders.get('open_at_exit', 0))} open at exit"
         + (f' · <span class="badge bad">{fmt_num(len(left))} left working</span>' if left else "")),
        ("rejects", fmt_num(rejects), f"{len(report.get('rejects_by_code') or {})} distinct codes"
         + (f" · {fmt_num(orders['refused'])} refused by the engine" if orders.get("refused") else "")),
        ("kill switch", f'<span class="badge {badge}">{esc(state)}</span>', esc(ks.get("reason", "")) or "&nbsp;"),
    ]
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{v}</div><div class="s">{s}</div></div>'
        for k, v, s in cards) + "</div>"


def _strategies_table(report: dict[str, Any], colors: dict[str, str]) -> str:
    head = ("strategy", "state", "orders", "fills", "rejects", "MMP", "position", "gross", "fees", "realized (net)",
            "unrealized")
    numeric = {"orders", "fills", "rejects", "MMP", "gross", "fees", "realized (net)", "unrealized"}
    rows = []
    for name, s in (report.get("strategies") or {}).items():
        if not isinstance(s, dict):
            continue
        position = " ".join(f"{esc(sym)}:{fmt_num(q)}" for sym, q in (s.get("position") or {}).items()
                            if _dec(q)) or '<span class="muted">flat</span>'
        state = str(s.get("state", "?"))
        badge = {"running": "ok", "stopped": "", "failed": "bad"}.get(state, "warn")
        failure = f'<div class="muted">{esc(s["failure"])}</div>' if s.get("failure") else ""
        cells = [
            f'<i class="sw" style="background:{colors.get(name, PALETTE[0])}"></i><b>{esc(name)}</b>',
            f'<span class="badge {badge}">{esc(state)}</span>{failure}',
            fmt_num(s.get("orders", "")), fmt_num(s.get("fills", "")), fmt_num(s.get("rejects", "")),
            fmt_num(s.get("mmp_triggers", 0)), position,
            fmt_money(s.get("gross_pnl", "")), fmt_money(s.get("fees", "")),
            fmt_money(s.get("realized_pnl", "")), fmt_money(s.get("unrealized_pnl", "")),
        ]
        rows.append("<tr>" + "".join(
            f'<td class="{"n" if h in numeric else ""}">{c}</td>' for h, c in zip(head, cells, strict=True)) + "</tr>")
    header = "".join(f'<th class="{"n" if h in numeric else ""}">{esc(h)}</th>' for h in head)
    if not rows:
        return '<h2 id="strategies">Strategies</h2><p class="muted">No strategy ran.</p>'
    return f'<h2 id="strategies">Strategies</h2><table><tr>{header}</tr>{"".join(rows)}</table>'


def _risk_section(report: dict[str, Any], tz: dt.tzinfo) -> str:
    parts = ['<h2 id="risk">Kill switch and market-maker protection</h2>']
    ks = report.get("kill_switch")
    if isinstance(ks, dict):
        state = str(ks.get("state", "?"))
        badge = {"active": "ok", "reducing": "warn", "halted": "bad"}.get(state, "")
        line = f'<p>Account state at exit: <span class="badge {badge}">{esc(state)}</span>'
        if ks.get("reason"):
            line += f" — {esc(ks['reason'])}"
        if ks.get("source"):
            line += f' <span class="muted">(source: {esc(ks["source"])})</span>'
        parts.append(line + "</p>")
        history = ks.get("history") or []
        if history:
            rows = "".join(
                f"<tr><td>{esc(_ns_time(h.get('ts'), tz))}</td><td>{esc(h.get('state', ''))}</td>"
                f"<td>{esc(h.get('reason', ''))}</td></tr>" for h in history if isinstance(h, dict))
            parts.append(f"<table><tr><th>time</th><th>state</th><th>reason</th></tr>{rows}</table>")
        else:
            parts.append('<p class="muted">No escalation during the run.</p>')
    else:
        parts.append('<p class="muted">This report has no kill-switch section.</p>')
    if "mmp_triggers" in report:
        per = [(name, s.get("mmp_triggers", 0)) for name, s in (report.get("strategies") or {}).items()
               if isinstance(s, dict) and s.get("mmp_triggers")]
        detail = ", ".join(f"{esc(n)} {fmt_num(c)}" for n, c in per)
        parts.append(f"<p>Market-maker protection triggers: <b>{fmt_num(report['mmp_triggers'])}</b>"
                     + (f" ({detail})" if detail else "") + "</p>")
    return "".join(parts)


def _derivatives_account(account: dict[str, Any]) -> str:
    """Equity, margins and the signed positions of a derivatives account, in its currency."""
    currency = esc(account.get("currency", ""))
    reserved = account.get("reserved") if isinstance(account.get("reserved"), dict) else {}
    rows = [("equity", account.get("equity")), ("balance", account.get("balance")),
            (f"initial margin ({account.get('margin_source', '?')})", account.get("initial_margin")),
            ("maintenance margin", account.get("maintenance_margin")),
            ("available margin", account.get("available_margin")), ("reserved by open orders", reserved.get("margin"))]
    tables = [f"<table><tr><th>account</th><th class=\"n\">{currency}</th></tr>"
              + "".join(f'<tr><td>{esc(k)}</td><td class="n">{fmt_num(val)}</td></tr>'
                        for k, val in rows if val is not None) + "</table>"]
    positions = account.get("positions")
    if isinstance(positions, dict) and positions:
        body = "".join(
            f'<tr><td>{esc(sym)}</td><td>{esc(p.get("side", ""))}</td><td class="n">{fmt_num(p.get("qty"))}</td>'
            f'<td class="n">{fmt_num(p.get("avg_price"))}</td><td class="n">{fmt_num(p.get("realized_pnl"))}</td>'
            f'<td class="n">{fmt_num(p.get("unrealized_pnl"))}</td></tr>'
            for sym, p in positions.items() if isinstance(p, dict))
        tables.append('<table><tr><th>position</th><th>side</th><th class="n">qty</th><th class="n">avg price</th>'
                      f'<th class="n">realized ({currency})</th><th class="n">unrealized ({currency})</th></tr>'
                      f"{body}</table>")
    return f'<div class="row">{"".join(tables)}</div>'


def _venues_section(report: dict[str, Any]) -> str:
    venues = report.get("venues")
    if not isinstance(venues, dict) or not venues:
        return ""
    parts = ['<h2 id="venues">Venues</h2>']
    for name, v in venues.items():
        if not isinstance(v, dict):
            continue
        status = str(v.get("status", "?"))
        badge = "ok" if status == "connected" else "warn"
        parts.append(f'<h3>{esc(name)} <span class="badge {badge}">{esc(status)}</span> '
                     f'<span class="muted">disconnects: {fmt_num(v.get("disconnects", 0))}</span></h3>')
        data = v.get("market_data") if isinstance(v.get("market_data"), dict) else {}
        for label, counts in (("bad input", v.get("bad_input")), ("market data bad input", data.get("bad_input"))):
            if isinstance(counts, dict) and counts:
                parts.append(f'<p class="muted">{esc(label)}: ' + " · ".join(
                    f"{esc(kind)} {fmt_num(n)}" for kind, n in counts.items()) + "</p>")
        account = v.get("account")
        if not isinstance(account, dict):
            continue
        if account.get("kind") == "derivatives":
            parts.append(_derivatives_account(account))
            continue
        reserved = account.get("reserved") if isinstance(account.get("reserved"), dict) else {}
        cash_rows = [("cash (settled)", account.get("cash")), ("unsettled cash", account.get("unsettled_cash")),
                     ("buying power", account.get("buying_power")), ("reserved cash", reserved.get("cash"))]
        tables = ["<table>" + "".join(f'<tr><td>{esc(k)}</td><td class="n">{fmt_num(val)}</td></tr>'
                                      for k, val in cash_rows if val is not None) + "</table>"]
        holdings = account.get("holdings")
        if isinstance(holdings, dict) and holdings:
            rows = "".join(
                f'<tr><td>{esc(sym)}</td><td class="n">{fmt_num(h.get("settled"))}</td>'
                f'<td class="n">{fmt_num(h.get("unsettled"))}</td><td class="n">{fmt_num(h.get("total"))}</td></tr>'
                for sym, h in holdings.items() if isinstance(h, dict))
            tables.append('<table><tr><th>holding</th><th class="n">settled</th><th class="n">unsettled</th>'
                          f'<th class="n">total</th></tr>{rows}</table>')
        parts.append(f'<div class="row">{"".join(tables)}</div>')
        ledger = account.get("unsettled")
        if isinstance(ledger, list) and ledger:
            rows = "".join(
                f"<tr><td>{esc(e.get('kind', ''))}</td><td>{esc(e.get('symbol', ''))}</td>"
                f'<td class="n">{fmt_money(e.get("amount"))}</td><td>{esc(e.get("trade_day", ""))}</td>'
                f"<td>{esc(e.get('settle_day', ''))}</td></tr>" for e in ledger if isinstance(e, dict))
            entries = f"{len(ledger)} entr{'y' if len(ledger) == 1 else 'ies'}"
            parts.append(f"<details><summary>Unsettled ledger ({entries})</summary><table><tr>"
                         '<th>kind</th><th>symbol</th><th class="n">amount</th><th>trade day</th><th>settles</th>'
                         f"</tr>{rows}</table></details>")
    return "".join(parts)


def _left_working(report: dict[str, Any]) -> list[dict[str, Any]]:
    left = (report.get("orders") or {}).get("left_working")
    return [o for o in left if isinstance(o, dict)] if isinstance(left, list) else []


def _left_working_section(report: dict[str, Any]) -> str:
    """The orders shutdown could not confirm final: still working at the venue, nobody watching."""
    left = _left_working(report)
    if not left:
        return ""
    keys = ("venue", "strategy", "client_id", "venue_order_id", "symbol", "side", "leaves", "status")
    rows = "".join("<tr>" + "".join(f"<td>{esc(o.get(k, ''))}</td>" for k in keys) + "</tr>" for o in left)
    return ('<h2 id="left-working">Orders left working</h2><p class="note">Shutdown could not confirm these '
            "final before <code>run.shutdown_timeout_s</code> (the run exited 3): they may still trade at the "
            "venue. The next start reconciles them from the journal.</p><table><tr>"
            + "".join(f"<th>{esc(k.replace('_', ' '))}</th>" for k in keys) + f"</tr>{rows}</table>")


def _anomalies_section(report: dict[str, Any]) -> str:
    anomalies = report.get("anomalies") or {}
    dupes = report.get("duplicate_fills_dropped") or 0
    if not anomalies and not dupes:
        return ""
    parts = ['<h2 id="anomalies">Anomalies</h2>']
    if dupes:
        parts.append(f"<p>Duplicate fills dropped: <b>{fmt_num(dupes)}</b></p>")
    if anomalies:
        parts.append("<table>" + "".join(f'<tr><td>{esc(k)}</td><td class="n">{fmt_num(n)}</td></tr>'
                                         for k, n in anomalies.items()) + "</table>")
    samples = report.get("anomaly_samples") or []
    if samples:
        parts.append("<details><summary>Samples</summary><ul>"
                     + "".join(f"<li><code>{esc(s)}</code></li>" for s in samples) + "</ul></details>")
    return "".join(parts)


def _dropped_note(timeline: dict[str, Any]) -> str:
    dropped = timeline.get("dropped") or {}
    said = []
    for key in ("samples", "fills", "rejects", "phases"):
        n = dropped.get(key) or 0
        if n:
            said.append(f"{n} {key}")
    if not said:
        return ""
    stride = dropped.get("sample_stride", 1)
    extra = f"; samples were thinned to one per {stride} intervals" if stride and stride > 1 else ""
    return (f'<p class="note">This run was long: to keep the report small, the timeline left out {esc(", ".join(said))}'
            f"{esc(extra)}. Counts and tables above are complete; charts show what was kept.</p>")


# ---- the page ------------------------------------------------------------------------------------
def render_html(report: dict[str, Any]) -> str:
    """The whole page as one string. Raises ValueError when ``report`` is not a run report."""
    problem = check_report(report)
    if problem is not None:
        raise ValueError(problem)
    timeline = report.get("timeline")
    tz = _zone(timeline)
    data = _read_timeline(timeline) if isinstance(timeline, dict) else None
    colors = _strategy_colors(report, data)
    reject_colors = _reject_colors(report, data)
    n_days = len(data.axis.segments) if data is not None else 1
    sections = [_header(report), _cards(report)]
    nav = [("strategies", "Strategies")]
    charts = ""
    strip = ""
    if data is not None:
        legend = _phase_legend(data)
        bands = timeline.get("bands") if isinstance(timeline.get("bands"), dict) else {}  # type: ignore[union-attr]
        interval = timeline.get("interval_s")  # type: ignore[union-attr]
        charts = (
            '<h2 id="charts">The day over time</h2>'
            f'<p class="sub">Local time ({esc(getattr(tz, "key", tz))}); '
            + ("nights are left out between trading days; " if n_days > 1 else "")
            + f"sampled every {esc(interval)} s of engine time, fills at their exact times. Shaded: session "
            f"phases. Hover a chart for values.</p>"
            + _dropped_note(timeline)  # type: ignore[arg-type]
            + _pnl_chart(data, colors, legend, n_days, report_currency(report))
            + '<h2 id="positions">Positions over time</h2>'
            + _position_charts(data, legend, n_days)
            + '<h2 id="prices">Prices and fills</h2>'
            + _price_charts(data, bands, legend, n_days)
        )
        strip = _reject_strip(data, reject_colors, legend, n_days)
        nav += [("pnl", "PnL"), ("positions", "Positions"), ("prices", "Prices and fills")]
    elif isinstance(timeline, dict):
        charts = '<p class="note">The report\'s timeline has no samples, phases or fills: nothing to chart.</p>'
    else:
        charts = ('<p class="note">No charts: this report has no <code>timeline</code>. Charts need a report '
                  f"written by engine {esc(__version__)} or later (<code>engine run CONFIG --report FILE</code>); "
                  "the tables below are complete.</p>")
    left_working = _left_working_section(report)
    if left_working:
        nav.insert(0, ("left-working", "Left working"))
    nav += [("rejects", "Rejects"), ("risk", "Kill switch and MMP")]
    venues = _venues_section(report)
    if venues:
        nav.append(("venues", "Venues"))
    anomalies = _anomalies_section(report)
    if anomalies:
        nav.append(("anomalies", "Anomalies"))
    sections.append("<nav>" + "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in nav) + "</nav>")
    sections.append(left_working)
    sections.append(_strategies_table(report, colors))
    sections.append(charts)
    sections.append(_rejects_section(report, reject_colors, strip))
    sections.append(_risk_section(report, tz))
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
