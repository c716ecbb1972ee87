"""The metrics snapshot: what a scrape of ``/metrics`` shows and what ``/healthz`` and ``/readyz`` say.

Two sides, so the per-event path never waits for a scrape and a scrape never reads state the loop
is changing:

* the event loop calls :meth:`Observer.publish` every ``metrics.publish_seconds``: it reads the
  runtime's plain-integer counters and state into immutable metric families (a snapshot) and
  notes the time, the loop's lag and whether the engine is ready (this module);
* a small HTTP server on its own thread serves the last snapshot
  (:mod:`engine.observe.server`). It keeps answering when the loop is stuck, which is what lets
  ``/healthz`` say "stalled" (503) instead of timing out, and lets a scrape show the lag that
  caused it.

Series names, kinds and labels are :data:`engine.observe.metrics.CATALOG`; this module builds
exactly those (a test scrapes a running engine and compares).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample

from engine import __version__
from engine.hookspecs import HOOK_NAMES
from engine.model import ACCOUNT_ALERT, MARGIN_CALL, Phase
from engine.observe.metrics import CATALOG
from engine.observe.timing import HOOK_FLOOR_NS, Log2Histogram
from engine.rejects import Reject
from engine.risk.connectivity import VenueStatus
from engine.risk.killswitch import TradingState, order_to_trade_ratio
from engine.venue.badinput import KINDS as BAD_INPUT_KINDS

if TYPE_CHECKING:
    from engine.runtime import Runtime

__all__ = ["Observer", "families_of"]

#: the engine_venue_state series each venue shows: the four the dashboard and alerts know. A restart's
#: "recovering" has none (it lasts only until the journal's orders are reconciled; engine_venue_up is 0)
VENUE_STATES = tuple(state.value for state in (
    VenueStatus.CONNECTED, VenueStatus.DISCONNECTED, VenueStatus.RECONCILING, VenueStatus.STALE,
))
STRATEGY_STATES = ("running", "paused", "stopped", "failed")
FINAL_STATUSES = ("filled", "cancelled", "rejected", "expired")


#: the account events every venue shows, at 0 until one comes
ACCOUNT_EVENT_KINDS = (MARGIN_CALL, ACCOUNT_ALERT)

def _counter(name: str) -> CounterMetricFamily:
    metric = CATALOG[name]
    return CounterMetricFamily(name, metric.help, labels=metric.labels)


def _gauge(name: str) -> GaugeMetricFamily:
    metric = CATALOG[name]
    return GaugeMetricFamily(name, metric.help, labels=metric.labels)


def _histogram(name: str) -> HistogramMetricFamily:
    metric = CATALOG[name]
    return HistogramMetricFamily(name, metric.help, labels=metric.labels)


def _add_histogram(family: HistogramMetricFamily, labels: list[str], stats: Log2Histogram) -> None:
    buckets = [("+Inf" if le == float("inf") else repr(le), count) for le, count in stats.buckets()]
    if CATALOG[family.name].has_sum:
        family.add_metric(labels, buckets, stats.total_ns / 1e9)
    else:  # prometheus-client writes _count only with a _sum: add it by hand
        family.add_metric(labels, buckets, None)
        names = dict(zip(CATALOG[family.name].labels, labels, strict=True))  # the labels it was built with
        family.samples.append(Sample(family.name + "_count", names, buckets[-1][1]))


def families_of(runtime: Runtime, clock_kind: str, loop_lag_s: float) -> list[Metric]:
    """Every catalogue series except the snapshot's age, read from the runtime now. Runs on the
    event loop; the result is never changed afterwards, so the HTTP thread may serve it as is."""
    out: list[Metric] = []
    runtime.settle_hook_counts()
    runners = list(runtime.runners.values())
    venues = list(runtime.venues.values())

    anomalies = _counter("engine_anomalies")
    # fee_mismatch at 0 from the start, so increase() sees the first one (like the reject codes)
    for kind, count in sorted({"fee_mismatch": 0, **runtime.anomalies}.items()):
        anomalies.add_metric([kind], count)
    out.append(anomalies)

    events = _counter("engine_events")
    up = _gauge("engine_venue_up")
    state = _gauge("engine_venue_state")
    disconnects = _counter("engine_venue_disconnects")
    bad_input = _counter("engine_venue_bad_input")
    duplicates = _counter("engine_duplicate_fills")
    account_events = _counter("engine_venue_account_events")
    tick_to_order = _histogram("engine_tick_to_order_seconds")
    cash = _gauge("engine_account_cash")
    for venue in venues:
        name = venue.name
        entries = list(venue.entries.values())
        events.add_metric([name, "book"], sum(e.n_book for e in entries))
        events.add_metric([name, "trade"], sum(e.n_trade for e in entries))
        events.add_metric([name, "fill"], venue.n_fill)
        events.add_metric([name, "order_update"], venue.n_order_update)
        events.add_metric([name, "unlisted"], venue.n_unlisted)
        up.add_metric([name], 1.0 if venue.status == VenueStatus.CONNECTED else 0.0)
        for each in VENUE_STATES:
            state.add_metric([name, each], 1.0 if venue.status == each else 0.0)
        disconnects.add_metric([name], venue.disconnects)
        for channel, adapter in (("venue", venue.adapter), ("market_data", venue.feed)):
            if adapter is not None:
                counts = adapter.bad_input()
                # every kind at 0 from the start, so increase() sees the first one
                for kind in (*BAD_INPUT_KINDS, *sorted(counts.keys() - set(BAD_INPUT_KINDS))):
                    bad_input.add_metric([name, channel, kind], counts.get(kind, 0))
        duplicates.add_metric([name], venue.n_duplicate_fills)
        # the known kinds at 0 from the start, so increase() sees the first margin call
        for kind in (*ACCOUNT_EVENT_KINDS, *sorted(venue.account_events.keys() - set(ACCOUNT_EVENT_KINDS))):
            account_events.add_metric([name, kind], venue.account_events.get(kind, 0))
        _add_histogram(tick_to_order, [name], venue.tick_to_order)
        account = venue.account
        cash.add_metric([name, "settled"], float(account.cash))
        cash.add_metric([name, "unsettled"], float(account.unsettled_cash))
        cash.add_metric([name, "reserved"], float(account.reserved_cash))
        cash.add_metric([name, "buying_power"], float(account.buying_power))
    out += [events, up, state, disconnects, bad_input, duplicates, account_events, tick_to_order, cash]

    submitted = _counter("engine_orders_submitted")
    refused = _counter("engine_orders_refused")
    final = _counter("engine_orders_final")
    open_orders = _gauge("engine_open_orders")
    fills = _counter("engine_fills")
    messages = _counter("engine_order_messages")
    otr = _gauge("engine_order_to_trade_ratio")
    rejects = _counter("engine_rejects")
    hooks = _histogram("engine_hook_duration_seconds")
    mmp = _counter("engine_mmp_triggers")
    strategy_state = _gauge("engine_strategy_state")
    hook_errors = _counter("engine_hook_errors")
    overruns = _counter("engine_hook_overruns")
    position = _gauge("engine_position_shares")
    realized = _gauge("engine_realized_pnl")
    gross = _gauge("engine_gross_pnl")
    fees = _counter("engine_fees")
    unrealized = _gauge("engine_unrealized_pnl")
    for runner in runners:
        name, venue_name = runner.name, runner.venue
        submitted.add_metric([name, venue_name], runner.orders_submitted)
        refused.add_metric([name, venue_name], runner.orders_refused)
        for status in FINAL_STATUSES:
            final.add_metric([name, venue_name, status], runner.final_status.get(status, 0))
        open_orders.add_metric([name, venue_name], len(runner.open_orders))
        fills.add_metric([name, venue_name], runner.fills)
        messages.add_metric([name, "order"], runner.orders_submitted)
        messages.add_metric([name, "amend"], runner.amends_sent)
        messages.add_metric([name, "cancel"], runner.cancels_sent)
        otr.add_metric([name], float(order_to_trade_ratio(*runner.day_messages_and_fills())))
        # every code at 0 from the start: increase() over a series that appears with its first
        # count would miss that first reject
        for code in Reject:
            rejects.add_metric([name, str(int(code))], runner.rejects_by_code.get(int(code), 0))
        for hook in HOOK_NAMES:
            stats = runner.hook_stats.get(hook)
            _add_histogram(hooks, [name, hook], stats if stats is not None else Log2Histogram(HOOK_FLOOR_NS))
            hook_errors.add_metric([name, hook], runner.hook_errors_by.get(hook, 0))
        mmp.add_metric([name], runner.mmp_triggers)
        for each in STRATEGY_STATES:
            strategy_state.add_metric([name, each], 1.0 if runner.state == each else 0.0)
        overruns.add_metric([name], runner.hook_overruns)
        for symbol in runner.symbols:
            held = runner.positions.get(symbol)
            position.add_metric([name, venue_name, symbol], float(held.qty) if held is not None else 0.0)
        realized.add_metric([name], float(runner.realized_pnl))
        paid = runner.fees
        gross.add_metric([name], float(runner.realized_pnl + paid))
        fees.add_metric([name], float(paid))
        unrealized.add_metric([name], float(runtime.unrealized_pnl(runner)))
    out += [submitted, refused, final, open_orders, fills, messages, otr, rejects, hooks, mmp, strategy_state,
            hook_errors, overruns, position, realized, gross, fees, unrealized]

    headroom = _gauge("engine_rate_limit_headroom")
    refusals = _counter("engine_rate_limit_refusals")
    seen: set[int] = set()
    buckets = [b for v in venues for b in v.buckets] + [b for r in runners if r.rate for b in r.rate.buckets]
    for bucket in buckets:
        if id(bucket) in seen:
            continue
        seen.add(id(bucket))
        headroom.add_metric([bucket.name], bucket.headroom())
        refusals.add_metric([bucket.name], bucket.refused)
    out += [headroom, refusals]

    kill = _gauge("engine_kill_switch_state")
    for each in TradingState:
        kill.add_metric([each.value], 1.0 if runtime.kill_switch.state is each else 0.0)
    phase = _gauge("engine_session_phase")
    for each in Phase:
        phase.add_metric([each.value], 1.0 if runtime.session.phase == each else 0.0)
    lag = _gauge("engine_event_loop_lag_seconds")
    lag.add_metric([], loop_lag_s)
    info = _gauge("engine_info")
    info.add_metric([__version__, clock_kind], 1.0)
    out += [kill, phase, lag, info]
    return out


class Observer(Collector):
    """The snapshot the loop publishes and the scrape reads: a prometheus-client collector."""

    def __init__(self, runtime: Runtime, clock_kind: str, stall_seconds: Decimal) -> None:
        self.runtime = runtime
        self.clock_kind = clock_kind
        self.stall_seconds = float(stall_seconds)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self.session_known = False  # set once the session driver has placed the engine in its phase
        self.loop_lag_s = 0.0
        # written by the loop, read by the HTTP thread: each is replaced whole, never mutated
        self._families: list[Metric] = []
        self._published = time.monotonic()
        self._ready = (False, "starting: venues not connected yet")

    def publish(self, loop_lag_s: float = 0.0) -> None:
        """Take a snapshot (on the event loop)."""
        self.loop_lag_s = loop_lag_s
        self._families = families_of(self.runtime, self.clock_kind, loop_lag_s)
        self._ready = self._readiness()
        self._published = time.monotonic()

    def _readiness(self) -> tuple[bool, str]:
        down = [f"{v.name} is {v.status}" for v in self.runtime.venues.values()
                if v.status != VenueStatus.CONNECTED]
        if down:
            return False, "venue " + ", ".join(down)
        kill_switch = self.runtime.kill_switch
        if kill_switch.halted:  # alive, but it will not trade: a load balancer or operator should know
            return False, f"kill switch halted: {kill_switch.reason}"
        if not self.session_known:
            return False, "session phase not known yet"
        return True, f"ready: session {self.runtime.session.phase.value}"

    # ---- read by the HTTP thread ---------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        yield from self._families
        age = _gauge("engine_metrics_age_seconds")
        age.add_metric([], time.monotonic() - self._published)
        yield age

    def health(self) -> tuple[bool, str]:
        """Alive and the loop not stalled: it published within ``stall_seconds``."""
        age = time.monotonic() - self._published
        if age > self.stall_seconds:
            return False, f"event loop stalled: no snapshot for {age:.1f} s (limit {self.stall_seconds:g} s)"
        return True, "ok"

    def readiness(self) -> tuple[bool, str]:
        healthy, why = self.health()
        return (False, why) if not healthy else self._ready
