"""The SVG drawing kit: the trading-time axis (nights cut out), round y ticks, a time chart with
phase shading and hover strips, legends and figure frames. Floats here are SVG coordinates only.

The time axis is trading time: each trading day (pre-open to close, from the timeline's phases)
is one segment and nights are cut out, so a multi-day run reads left to right without empty
evenings. Labels are local time (the timeline's time zone, Asia/Karachi by default).
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from engine.report.style import PHASES, UNKNOWN_PHASE
from engine.report.text import esc

# ---- geometry (SVG user units; the SVG scales to the page width) -----------------------------------
WIDTH = 1120
LEFT, RIGHT = 78, 20
TOP, BOTTOM = 12, 44
DAY_GAP = 16  # the cut-out night between two trading days
MARGIN_S = 120  # shown before a day's first phase and after its close


def px(x: float) -> str:
    """An SVG coordinate: short, no exponent."""
    return f"{x:.1f}".rstrip("0").rstrip(".") if math.isfinite(x) else "0"


def legend_span(items: Iterable[str]) -> str:
    """A figure's legend: the given items side by side."""
    return f'<span class="legend">{"".join(items)}</span>'


def swatch_span(color: str, label: str) -> str:
    """A colour square and its label, for areas (phases, reject codes)."""
    return f'<span><i class="sw" style="background:{color}"></i>{esc(label)}</span>'


def line_key_span(color: str, label: str, dashed: bool = False) -> str:
    """A line sample and its label, for series (solid, or dashed)."""
    return f'<span><i class="ln{" dash" if dashed else ""}" style="border-color:{color}"></i>{esc(label)}</span>'


@dataclass
class Segment:
    """One shown stretch of time (a trading day and its margins), in epoch seconds."""

    start: float  # epoch seconds
    end: float


class TimeAxis:
    """Maps epoch seconds to x: one segment per trading day, side by side, nights left out."""

    def __init__(self, segments: list[Segment], tz: dt.tzinfo, x0: float = LEFT, x1: float = WIDTH - RIGHT):
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


def trading_segments(phases: list[tuple[float, str]], times: Sequence[float], tz: dt.tzinfo) -> list[Segment]:
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
    merged: list[Segment] = []
    for a, b in sorted(stretches):
        a, b = a - MARGIN_S, max(b, a + 60) + MARGIN_S
        if merged and a <= merged[-1].end:
            merged[-1].end = max(merged[-1].end, b)
        else:
            merged.append(Segment(a, b))
    return merged


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


class Plot:
    """A time chart: phase shading, grid, axes; callers add series to ``body``."""

    def __init__(self, axis: TimeAxis, phases: list[tuple[float, float, str]], height: int,
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
            out.append(f'<rect x="{px(xa)}" y="{top}" width="{px(xb - xa)}" height="{bottom - top}" fill="#fff"/>')
        for a, b, phase in self.phases:  # session phases, clipped to the shown days
            color = PHASES.get(phase, (UNKNOWN_PHASE, phase))[0]
            for i, seg in enumerate(axis.segments):
                lo, hi = max(a, seg.start), min(b, seg.end)
                if hi <= lo:
                    continue
                xa = axis.offsets[i] + (lo - seg.start) * axis.scale
                xb = axis.offsets[i] + (hi - seg.start) * axis.scale
                out.append(f'<rect class="phase {esc(phase)}" x="{px(xa)}" y="{top}" width="{px(xb - xa)}" '
                           f'height="{bottom - top}" fill="{color}"><title>{esc(phase)}</title></rect>')
        for tick in self.ticks:
            y = self.y(float(tick))
            strong = ' stroke="#9ca3af"' if tick == 0 else ' stroke="#d9dde3" stroke-dasharray="2 3"'
            for i, _ in enumerate(axis.segments):
                xa, xb = axis.seg_x(i)
                out.append(f'<line x1="{px(xa)}" x2="{px(xb)}" y1="{px(y)}" y2="{px(y)}"{strong}/>')
            out.append(f'<text x="{LEFT - 8}" y="{px(y + 4)}" text-anchor="end" font-size="11" fill="#6b7280">'
                       f'{esc(_tick_label(tick, self.ticks))}</text>')
        for x, label in axis.ticks():
            out.append(f'<line x1="{px(x)}" x2="{px(x)}" y1="{bottom}" y2="{bottom + 4}" stroke="#9ca3af"/>')
            out.append(f'<text x="{px(x)}" y="{bottom + 16}" text-anchor="middle" font-size="11" '
                       f'fill="#6b7280">{esc(label)}</text>')
        label_end = -1e9
        for i, seg in enumerate(axis.segments):
            xa, xb = axis.seg_x(i)
            local = dt.datetime.fromtimestamp(seg.start + MARGIN_S, axis.tz)
            day = local.strftime("%a %d %b %Y" if xb - xa >= 110 else "%d %b")
            if xa >= label_end:  # many short days: label those there is room for
                out.append(f'<text class="day" x="{px(xa + 2)}" y="{bottom + 32}" font-size="11" font-weight="600" '
                           f'fill="#4b5563">{esc(day)}</text>')
                label_end = xa + 7 * len(day) + 12
            out.append(f'<line x1="{px(xa)}" x2="{px(xb)}" y1="{bottom}" y2="{bottom}" stroke="#9ca3af"/>')
            if i:  # the cut-out night between two days
                gx = xa - axis.gap / 2
                out.append(f'<line class="day-break" x1="{px(gx)}" x2="{px(gx)}" y1="{top}" y2="{bottom + 36}" '
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
                    parts.append(f"H{px(axis.seg_x(seg)[1])}")
                parts.append(f"M{px(x)} {px(y)}")
                seg = i
            elif step:
                parts.append(f"H{px(x)}V{px(y)}")
            else:
                parts.append(f"L{px(x)} {px(y)}")
        if not parts:
            return
        if step and seg is not None:
            parts.append(f"H{px(axis.seg_x(seg)[1])}")
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
            self.body.append(f'<rect class="hover" x="{px(left)}" y="{self.top}" width="{px(max(right - left, 1))}" '
                             f'height="{self.bottom - self.top}"><title>{esc(text)}</title></rect>')


def _thin(points: list[tuple[float, float]], axis: TimeAxis) -> list[tuple[float, float]]:
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


def figure_html(title: str, legend: str, svg: str, anchor: str = "") -> str:
    """A chart with its caption (title and legend); ``anchor`` makes it a link target."""
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return f'<figure{ident}><figcaption><span class="t">{esc(title)}</span>{legend}</figcaption>{svg}</figure>'
