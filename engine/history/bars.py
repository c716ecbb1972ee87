"""How outside history becomes the market-data events a recording holds (and replay plays).

A daily bar is not a book; replaying it needs one. The mapping is coarse on purpose and the same
every time (no randomness: the same file gives the same recording, byte for byte):

1. *Session.* The day's phases come from the engine's session profile (``--sessions``, default
   ``broker-doc``): a session change event at each phase start and a ``closed`` one at the end of
   the last, exactly what a live PSX adapter delivers. A bar on a day the calendar does not trade
   is refused (the engine would not trade it either).
2. *Reference.* At the first phase's start an instrument status with the reference price (the
   ``ldcp`` column, else the previous bar's close of the symbol): the circuit band of the day.
3. *Path.* The price visits four touches: open, then low then high when the bar closed up (``close
   >= open``), high then low when it closed down, then close. ``--steps N`` adds N evenly spaced
   prices (rounded to the tick) between consecutive touches, so a strategy sees the price walk
   rather than jump. The touches and steps are spread evenly over the ``open`` phase (whole
   milliseconds), the close one minute before it ends.
4. *Book.* At every point a book snapshot centred on the price: ``--levels`` levels a side
   (default 3), the best bid ``--half-spread`` ticks below (default 1) and the best ask as many
   above, each next level one tick further out, each of ``--level-qty`` shares (default: the
   day's volume / (4 x levels), in whole shares, at least 1).
5. *Trades.* At each of the four touches a trade print at the touch price: a quarter of the day's
   volume each (whole shares, the remainder with the close; none when that is 0), the aggressor
   ``buy`` when the price got there moving up, ``sell`` moving down, unknown at the open.
6. *Close.* At the ``open`` phase's end an instrument status with the closing price (the bar's
   close), which post-close trading uses.

A trade print (``--kind trades``) becomes a book snapshot centred on its price (same shape, level
size the print's quantity unless ``--level-qty``) followed by the print itself; the days the
prints fall on get their session events as above.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from engine.history.csvread import Bar, Print
from engine.model import BookUpdate, InstrumentStatus, Phase, SessionState, Side, Trade
from engine.sessions import ScheduledPhase, SessionSchedule, SessionsConfig

__all__ = ["BookShape", "Timed", "bar_events", "bar_path", "book_snapshot", "print_events", "session_events"]

NS = 1_000_000_000
MS = 1_000_000
Event = BookUpdate | Trade | InstrumentStatus | SessionState


@dataclass(frozen=True, slots=True)
class Timed:
    """An event at its time, for one symbol (session events: ``symbol`` None). ``order`` keeps
    the mapping's order among events of the same time (status, book, trade)."""

    ts: int
    order: int
    symbol: str | None
    event: Event


@dataclass(frozen=True, slots=True)
class BookShape:
    """The synthetic book's shape (module docstring, step 4)."""

    tick: Decimal = Decimal("0.01")
    half_spread_ticks: int = 1
    levels: int = 3
    level_qty: Decimal | None = None  # None: from the volume (bars) or the print's qty (trades)
    steps: int = 0


def bar_path(bar: Bar) -> list[Decimal]:
    """The four touches: open, low, high, close when the bar closed up; open, high, low, close down."""
    if bar.close >= bar.open:
        return [bar.open, bar.low, bar.high, bar.close]
    return [bar.open, bar.high, bar.low, bar.close]


def _walk(touches: list[Decimal], steps: int, tick: Decimal) -> list[tuple[Decimal, int | None]]:
    """Touches with ``steps`` prices between each pair: (price, touch index or None for a step)."""
    out: list[tuple[Decimal, int | None]] = [(touches[0], 0)]
    for k in range(1, len(touches)):
        a, b = touches[k - 1], touches[k]
        for i in range(1, steps + 1):
            between = a + (b - a) * i / (steps + 1)
            out.append(((between / tick).to_integral_value(ROUND_HALF_EVEN) * tick, None))
        out.append((b, k))
    return out


def book_snapshot(venue: str, symbol: str, ts: int, seq: int, price: Decimal, shape: BookShape,
                  qty: Decimal) -> BookUpdate:
    """A whole book centred on ``price`` (step 4); bid levels that would not be positive are left out."""
    changes: list[tuple[Side, Decimal, Decimal]] = []
    for level in range(shape.levels):
        away = (shape.half_spread_ticks + level) * shape.tick
        if price - away > 0:
            changes.append((Side.BUY, price - away, qty))
        changes.append((Side.SELL, price + away, qty))
    return BookUpdate(venue, symbol, ts, seq, tuple(changes), snapshot=True)


def _phases(schedule: SessionSchedule, day: dt.date) -> list[ScheduledPhase]:
    return [p for p in schedule.phases_for(day) if p.phase != Phase.CLOSED]


def trading_phases(schedule: SessionSchedule, day: dt.date) -> list[ScheduledPhase]:
    """The day's phases other than closed; ValueError when the day does not trade."""
    phases = _phases(schedule, day)
    if not phases:
        raise ValueError(f"{day} ({day:%A}) is not a trading day in the engine's calendar and session profile")
    if not any(p.phase == Phase.OPEN for p in phases):
        raise ValueError(f"{day} has no open phase in the session profile")
    return phases


def session_events(schedule: SessionSchedule, day: dt.date) -> list[Timed]:
    """A session change at each phase start, and closed at the end of the last (step 1)."""
    phases = trading_phases(schedule, day)
    out = [Timed(p.start_ns, 0, None, p.to_state()) for p in phases]
    last = phases[-1]
    out.append(Timed(last.end_ns, 0, None, SessionState(trading_day=day.isoformat(),
                                                         flags={"closing_price_only": False,
                                                                "profile": last.profile})))
    return out


def _whole(qty: Decimal) -> Decimal:
    return qty.to_integral_value(rounding="ROUND_FLOOR")


def bar_events(venue: str, bar: Bar, reference: Decimal | None, schedule: SessionSchedule,
               shape: BookShape, first_seq: int = 1) -> list[Timed]:
    """One bar's events (module docstring, steps 2-6); book sequence numbers from ``first_seq``."""
    phases = trading_phases(schedule, bar.day)
    open_phase = next(p for p in phases if p.phase == Phase.OPEN)
    out: list[Timed] = []
    if reference is not None:
        out.append(Timed(phases[0].start_ns, 1, bar.symbol,
                         InstrumentStatus(venue, bar.symbol, phases[0].start_ns, halted=False,
                                          reference_price=reference)))
    points = _walk(bar_path(bar), shape.steps, shape.tick)
    last_ns = open_phase.end_ns - 60 * NS
    span = max(last_ns - open_phase.start_ns, 0)
    quarter = _whole(bar.volume / 4)
    shares = [quarter, quarter, quarter, bar.volume - 3 * quarter]
    level_qty = shape.level_qty if shape.level_qty is not None else max(
        Decimal(1), _whole(bar.volume / (4 * shape.levels)))
    seq = first_seq
    previous: Decimal | None = None
    for i, (price, touch) in enumerate(points):
        ts = open_phase.start_ns + (span * i // (len(points) - 1)) // MS * MS  # whole milliseconds
        out.append(Timed(ts, 2, bar.symbol, book_snapshot(venue, bar.symbol, ts, seq, price, shape, level_qty)))
        seq += 1
        if touch is not None and shares[touch] > 0:
            aggressor = None if previous is None or price == previous else (Side.BUY if price > previous else Side.SELL)
            out.append(Timed(ts, 3, bar.symbol, Trade(venue, bar.symbol, ts, price, shares[touch], aggressor,
                                                      f"{bar.symbol}-{bar.day:%Y%m%d}-{touch + 1}")))
        previous = price
    out.append(Timed(open_phase.end_ns, 1, bar.symbol,
                     InstrumentStatus(venue, bar.symbol, open_phase.end_ns, closing_price=bar.close)))
    return out


def print_events(venue: str, prints: Iterable[Print], shape: BookShape) -> list[Timed]:
    """Each print as a book snapshot centred on it, then the print (module docstring, last part)."""
    out: list[Timed] = []
    seqs: dict[str, int] = {}
    for p in sorted(prints, key=lambda p: (p.ts, p.line)):
        seq = seqs[p.symbol] = seqs.get(p.symbol, 0) + 1
        qty = shape.level_qty if shape.level_qty is not None else p.qty
        out.append(Timed(p.ts, 2, p.symbol, book_snapshot(venue, p.symbol, p.ts, seq, p.price, shape, qty)))
        aggressor = None if p.side is None else Side(p.side)
        out.append(Timed(p.ts, 3, p.symbol, Trade(venue, p.symbol, p.ts, p.price, p.qty, aggressor, p.trade_id)))
    return out


def schedule_for(profile: str = "broker-doc") -> SessionSchedule:
    """The PSX session schedule of a shipped profile, with the engine's holiday calendar."""
    return SessionSchedule(SessionsConfig(profile=profile))
