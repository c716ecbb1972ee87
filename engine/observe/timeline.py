"""What happened during a run, over time: the data behind the HTML "picture of the day".

The engine records into a :class:`Timeline` at a few moments only, never per book event:
session phase changes, fills, rejects, the day's circuit band per instrument, and a sample of
PnL, positions and prices taken on a timer (every ``interval_s`` of engine time, at each phase
change and at the end). Recording stores plain tuples; all formatting happens once, in
:meth:`Timeline.to_json`.

Memory is bounded whatever the length of the run (a live engine runs for weeks). While the
session is closed (before the first phase, nights) nothing trades, so only the first and the
latest sample of such a stretch are kept. Past the caps, fills and rejects are counted instead of
kept, and samples are thinned (every other one dropped, the sampling stride doubled) so a long run
still spans its whole length at a coarser step: with the default 60 s and :data:`MAX_SAMPLES`, one
sample per 2 min after about five broker-doc days, per 4 min after ten, and so on. What the caps
left out is counted under ``dropped``. The first sample after a phase change and the run's last
sample are always kept.

The report's ``timeline`` key (:meth:`Timeline.to_json`); times are ISO 8601 in the venue time
zone with its offset (``2026-11-23T09:42:19.125+05:00`` for Asia/Karachi), amounts are exact
Decimal strings, never floats::

    {
      "interval_s": 60,
      "timezone": "Asia/Karachi",
      "phases":  [{"ts": "...", "phase": "pre_open"}, ...],
      "samples": [{"ts": "...",
                   "strategies": {"mm": {"realized": "85.00", "unrealized": "10.00",
                                         "positions": {"MEBL": "100"}}},
                   "prices": {"paper:MEBL": "187.52"}}, ...],
      "fills":   [{"ts": "...", "strategy": "mm", "venue": "paper", "symbol": "MEBL", "side": "buy",
                   "qty": "100", "price": "187.50", "liquidity": "maker"}, ...],
      "rejects": [{"ts": "...", "strategy": "mm", "code": 2003}, ...],
      "bands":   {"2026-11-23": {"paper:MEBL": {"low": "168.75", "high": "206.25", "reference": "187.50"}}},
      "dropped": {"samples": 0, "fills": 0, "rejects": 0, "phases": 0, "sample_stride": 1}
    }

``dropped.sample_stride`` is how many timer samples one kept sample stands for at the end of the
run (1 while the sample cap was never reached).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["MAX_FILLS", "MAX_PHASES", "MAX_REJECTS", "MAX_SAMPLES", "Timeline", "dec", "iso_time"]

NS_PER_S = 1_000_000_000
#: caps: a paper day has ~400 samples (60 s) and tens of fills. A sample is ~2.3 KB (a dict per
#: strategy, Decimals), so samples are capped at about five days' worth (~5 MB): a longer run is
#: thinned to a coarser step instead of growing ~0.9 MB a day (issue 17). A chart has fewer
#: pixels across than that anyway. Fills and rejects are small tuples; their caps hold weeks.
MAX_SAMPLES = 2_000
MAX_FILLS = 20_000
MAX_REJECTS = 20_000
MAX_PHASES = 5_000


def dec(value: Decimal | int | str) -> str:
    """An exact decimal string, never in exponent form (``Decimal("1E+2")`` -> ``"100"``)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    return format(Decimal(value), "f")


def iso_time(ts_ns: int, tz: dt.tzinfo) -> str:
    """ISO 8601 with the zone's offset, to the millisecond; exact integer maths, no float."""
    seconds, ns = divmod(int(ts_ns), NS_PER_S)
    moment = dt.datetime.fromtimestamp(seconds, tz).replace(microsecond=ns // 1000)
    return moment.isoformat(timespec="milliseconds")


class Timeline:
    """Records a run's phases, fills, rejects, bands and periodic samples for the report.

    ``interval_s`` is only reported (the engine owns the timer); ``tz`` is the venue time zone
    the times are written in. Each recording method is a tuple append or less.
    """

    __slots__ = (
        "interval_s", "tz", "max_samples", "max_fills", "max_rejects", "max_phases",
        "_phases", "_samples", "_fills", "_rejects", "_bands",
        "_dropped_samples", "_dropped_fills", "_dropped_rejects", "_dropped_phases", "_stride", "_skip",
        "_pending", "_pending_dropped", "_phases_at_sample",
    )

    def __init__(
        self,
        interval_s: int = 60,
        tz: str = "Asia/Karachi",
        *,
        max_samples: int = MAX_SAMPLES,
        max_fills: int = MAX_FILLS,
        max_rejects: int = MAX_REJECTS,
        max_phases: int = MAX_PHASES,
    ) -> None:
        if max_samples < 2:
            raise ValueError("max_samples must be at least 2 (thinning keeps every other sample)")
        self.interval_s = interval_s
        self.tz = ZoneInfo(tz)
        self.max_samples = max_samples
        self.max_fills = max_fills
        self.max_rejects = max_rejects
        self.max_phases = max_phases
        self._phases: list[tuple[int, str]] = []
        self._samples: list[tuple[int, dict[str, tuple[Decimal, Decimal, dict[str, Decimal]]], dict[str, Decimal]]] = []
        self._fills: list[tuple[int, str, str, str, str, Decimal, Decimal, str]] = []
        self._rejects: list[tuple[int, str, int]] = []
        self._bands: dict[str, dict[str, tuple[Decimal, Decimal, Decimal]]] = {}
        self._dropped_samples = 0
        self._dropped_fills = 0
        self._dropped_rejects = 0
        self._dropped_phases = 0
        self._stride = 1  # keep one timer sample in this many (doubles each time the cap is hit)
        self._skip = 0  # timer samples still to skip before the next one is kept
        self._pending: tuple | None = None  # the latest sample not kept (yet): the run's end is always shown
        self._pending_dropped = False  # True when it was held back by the sample cap's thinning
        self._phases_at_sample = 0  # phases recorded when the last sample came: a new phase forces a keep

    # ---- recording (during the run) -------------------------------------------------------
    def phase(self, ts_ns: int, phase: str) -> None:
        """A session phase change (the new phase, from ``ts_ns`` on)."""
        if len(self._phases) >= self.max_phases:
            self._dropped_phases += 1
            return
        self._phases.append((ts_ns, str(phase)))

    def fill(
        self, ts_ns: int, strategy: str, venue: str, symbol: str, side: str, qty: Decimal, price: Decimal,
        liquidity: str,
    ) -> None:
        """One execution of one of our orders (``side`` buy/sell, ``liquidity`` maker/taker/unknown)."""
        if len(self._fills) >= self.max_fills:
            self._dropped_fills += 1
            return
        self._fills.append((ts_ns, strategy, venue, symbol, str(side), qty, price, str(liquidity)))

    def reject(self, ts_ns: int, strategy: str, code: int) -> None:
        """One refused order or request, by reject code (engine.rejects)."""
        if len(self._rejects) >= self.max_rejects:
            self._dropped_rejects += 1
            return
        self._rejects.append((ts_ns, strategy, int(code)))

    def sample(self, ts_ns: int, strategies: dict[str, dict], prices: dict[str, Decimal | None]) -> None:
        """PnL and positions per strategy and the price per ``venue:symbol`` at ``ts_ns``.

        ``strategies``: ``{name: {"realized": Decimal, "unrealized": Decimal, "positions":
        {symbol: Decimal}}}``. Prices that are None (no trade, no book yet) are left out. The dicts
        are copied, so the caller may reuse its own."""
        phases_seen = len(self._phases) + self._dropped_phases
        new_phase = phases_seen != self._phases_at_sample
        snapshot = {name: (s["realized"], s["unrealized"], dict(s["positions"])) for name, s in strategies.items()}
        record = (ts_ns, snapshot, {k: p for k, p in prices.items() if p is not None})
        if not new_phase and self._samples and (not self._phases or self._phases[-1][1] == "closed"):
            # nothing trades while closed (nights, before the first phase): keep the stretch's
            # first sample and its latest, so a week's run is not mostly flat nights
            self._hold(record, dropped=False)
            return
        if not new_phase and self._skip:
            self._skip -= 1
            self._hold(record, dropped=True)
            return
        self._phases_at_sample = phases_seen
        self._hold(None, dropped=False)
        if len(self._samples) >= self.max_samples:
            # thin: keep every other sample; from now on keep one timer sample in twice as many
            kept = self._samples[::2]
            self._dropped_samples += len(self._samples) - len(kept)
            self._samples = kept
            self._stride *= 2
        self._skip = self._stride - 1
        self._samples.append(record)

    def _hold(self, record: tuple | None, dropped: bool) -> None:
        """Keep ``record`` aside as the latest sample (shown if the run ends before another is
        kept); the one it replaces is counted as dropped if the cap was why it was held."""
        if self._pending is not None and self._pending_dropped:
            self._dropped_samples += 1
        self._pending = record
        self._pending_dropped = dropped

    def band(self, day: str, key: str, low: Decimal, high: Decimal, reference: Decimal) -> None:
        """The circuit band of instrument ``key`` (``venue:symbol``) on ``day`` (ISO date)."""
        self._bands.setdefault(str(day), {})[key] = (low, high, reference)

    # ---- reading --------------------------------------------------------------------------
    @property
    def counts(self) -> dict[str, int]:
        """How many of each are kept now (for logs and tests)."""
        return {"phases": len(self._phases), "samples": len(self._kept_samples()), "fills": len(self._fills),
                "rejects": len(self._rejects)}

    def _kept_samples(self) -> list[tuple]:
        return self._samples if self._pending is None else [*self._samples, self._pending]

    def to_json(self) -> dict[str, Any]:
        """The report's ``timeline``: JSON-ready, times ISO 8601 with offset, Decimals as strings."""
        tz = self.tz
        return {
            "interval_s": self.interval_s,
            "timezone": tz.key,
            "phases": [{"ts": iso_time(ts, tz), "phase": phase} for ts, phase in self._phases],
            "samples": [
                {
                    "ts": iso_time(ts, tz),
                    "strategies": {
                        name: {
                            "realized": dec(realized),
                            "unrealized": dec(unrealized),
                            "positions": {sym: dec(qty) for sym, qty in sorted(positions.items())},
                        }
                        for name, (realized, unrealized, positions) in snapshot.items()
                    },
                    "prices": {key: dec(price) for key, price in sorted(prices.items())},
                }
                for ts, snapshot, prices in self._kept_samples()
            ],
            "fills": [
                {
                    "ts": iso_time(ts, tz), "strategy": strategy, "venue": venue, "symbol": symbol, "side": side,
                    "qty": dec(qty), "price": dec(price), "liquidity": liquidity,
                }
                for ts, strategy, venue, symbol, side, qty, price, liquidity in self._fills
            ],
            "rejects": [{"ts": iso_time(ts, tz), "strategy": s, "code": code} for ts, s, code in self._rejects],
            "bands": {
                day: {
                    key: {"low": dec(low), "high": dec(high), "reference": dec(ref)}
                    for key, (low, high, ref) in sorted(bands.items())
                }
                for day, bands in sorted(self._bands.items())
            },
            "dropped": {
                "samples": self._dropped_samples,
                "fills": self._dropped_fills,
                "rejects": self._dropped_rejects,
                "phases": self._dropped_phases,
                "sample_stride": self._stride,
            },
        }
