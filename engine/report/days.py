"""One day of a multi-day run as a report of its own, so every replayed day gets its day page
(``engine report DIR`` writes ``RUN.<day>.html`` beside the run's own page).

A run report holds the run's totals and a timeline; only the timeline is per day. So a day's
report keeps what the timeline tells for that day and says "—" for what it cannot:

- the timeline cut to the day's local date (phases, samples, fills, rejects, the day's bands);
- per strategy: realized and unrealized PnL and positions at the day's close (the last sample of
  the day; the run's last day takes the report's own final values), fills and rejects counted
  from the day's timeline;
- fills and rejects by code from the day's timeline;
- the kill switch's state at the day's end and its changes that day;
- orders, fees, events and the venue's account are the run's: shown on the run's last day only,
  "—" on the others (the page's note says so and links to the run's page).

Every amount is the report's own decimal string; nothing is recomputed in float.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections import Counter
from typing import Any

from engine.report.text import decimal_of, parse_ts, time_zone_of

__all__ = ["day_reports"]

UNKNOWN = "—"
RUN_ONLY_STRATEGY_KEYS = ("orders", "refused", "amends_refused", "cancels_refused", "amends", "cancels",
                          "order_to_trade", "gross_pnl", "fees", "mmp_triggers", "hook_errors", "hook_overruns",
                          "slowest_hook_ms")


def _of_day(rows: object, day: str, tz: dt.tzinfo) -> list[dict[str, Any]]:
    out = []
    for row in rows if isinstance(rows, list) else []:
        moment = parse_ts(row.get("ts")) if isinstance(row, dict) else None
        if moment is not None and moment.astimezone(tz).date().isoformat() == day:
            out.append(row)
    return out


def _end_of_day_ns(day: str, tz: dt.tzinfo) -> int:
    midnight = dt.datetime.combine(dt.date.fromisoformat(day) + dt.timedelta(days=1), dt.time(), tz)
    return int(midnight.timestamp()) * 1_000_000_000


def _day_report(report: dict[str, Any], day: str, last: bool, tz: dt.tzinfo) -> dict[str, Any]:
    timeline = report["timeline"]
    fills = _of_day(timeline.get("fills"), day, tz)
    rejects = _of_day(timeline.get("rejects"), day, tz)
    samples = _of_day(timeline.get("samples"), day, tz)
    phases = _of_day(timeline.get("phases"), day, tz)
    bands = timeline.get("bands") if isinstance(timeline.get("bands"), dict) else {}
    day_timeline = {**timeline, "phases": phases, "samples": samples, "fills": fills, "rejects": rejects,
                    "bands": {day: bands[day]} if day in bands else {}}
    closing = samples[-1].get("strategies", {}) if samples else {}
    strategies: dict[str, Any] = {}
    for name, s in (report.get("strategies") or {}).items():
        if not isinstance(s, dict):
            continue
        entry = copy.deepcopy(s)
        entry["fills"] = sum(1 for f in fills if f.get("strategy") == name)
        entry["rejects"] = sum(1 for r in rejects if r.get("strategy") == name)
        sampled = closing.get(name) if isinstance(closing, dict) else None
        if not last:
            for key in RUN_ONLY_STRATEGY_KEYS:
                entry.pop(key, None)
            if isinstance(sampled, dict):
                entry["realized_pnl"] = sampled.get("realized", UNKNOWN)
                unrealized = decimal_of(sampled.get("unrealized"))
                entry["unrealized_pnl"] = str(unrealized) if unrealized is not None else UNKNOWN
                entry["position"] = dict(sampled.get("positions") or {})
            else:
                entry["realized_pnl"] = entry["unrealized_pnl"] = UNKNOWN
                entry["position"] = {}
        strategies[name] = entry
    out: dict[str, Any] = {
        **{k: v for k, v in report.items() if k in ("seed", "clock", "journal")},
        "trading_days": [day],
        "sessions": ["closed", *[str(p.get("phase")) for p in phases]],
        "strategies": strategies,
        "fills": len(fills),
        "rejects_by_code": dict(Counter(str(r.get("code")) for r in rejects)),
        "timeline": day_timeline,
        "wall_seconds": None,
    }
    if last:
        out.update({k: v for k, v in report.items() if k in ("orders", "events", "venues", "anomalies",
                                                                "anomaly_samples", "duplicate_fills_dropped",
                                                                "stopped_by", "mmp_triggers")})
    else:
        out["orders"] = {k: UNKNOWN for k in ("submitted", "filled", "cancelled", "expired", "open_at_exit")}
        out["events"] = {"book": UNKNOWN, "trade": UNKNOWN}
        out["stopped_by"] = "the day's close (the run went on)"
    ks = report.get("kill_switch")
    if isinstance(ks, dict):
        end = _end_of_day_ns(day, tz)
        history = [h for h in ks.get("history") or [] if isinstance(h, dict)]
        before = [h for h in history if isinstance(h.get("ts"), int) and h["ts"] < end]
        state = ks.get("state") if last else (before[-1].get("state") if before else "active")
        out["kill_switch"] = {**ks, "state": state, "reason": ks.get("reason", "") if last else "",
                              "history": [h for h in before if _day_of_ns(h["ts"], tz) == day]}
    return out


def _day_of_ns(ns: int, tz: dt.tzinfo) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, tz).date().isoformat()


def day_reports(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(day, report)`` for each trading day of a multi-day run that has a timeline; empty for a
    run of one day (its own page is the day page) or without a timeline (nothing to cut by day)."""
    days = [str(d) for d in report.get("trading_days") or []]
    timeline = report.get("timeline")
    if len(days) < 2 or not isinstance(timeline, dict):
        return []
    tz = time_zone_of(timeline)
    return [(day, _day_report(report, day, i == len(days) - 1, tz)) for i, day in enumerate(days)]
