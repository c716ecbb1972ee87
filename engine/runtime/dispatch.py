"""The per-event path: market data in, strategy hooks out.

``on_book`` and ``on_trade`` are the hot loop: hooks are called directly through callables resolved
once at load (no pluggy call per event, no logging, no validation). What a hook causes inside the
runtime (a local reject's ``on_order_update``) is queued and delivered by :meth:`DispatchMixin.drain`
after the hook returns, so no hook ever runs inside another.

Timing costs a clock read (~530 instructions under callgrind, as much as a small hook) per read, so
an event's subscribers are timed as follows (issue 22: one clock read per event, none per strategy):

- under ``engine run`` the hook watch (engine/runtime/hookwatch.py) runs: the clock is read when
  an event enters (``event_ns``, which tick-to-order also needs) and not when its hooks return.
  The watch's thread sees an event running past the budget and flags it; the event's end (which
  checks the deferred queue anyway) then times it: a strategy alone on the book is held to the
  budget by name, as if timed; several cannot say whose call it was (below). The histograms are
  sampled: one event in about :data:`HOOK_SAMPLE_EVERY` (pseudo-random gaps, a function of the
  event count, so a strategy that acts every n events is not seen in step with the sample, and a
  replay samples the same events) times each call, holds it to the budget by name, and counts it
  for the events since the last sample: the strategy's ``_count`` is exact up to the last sample
  (it lags by a few events, settled when the book's strategies change or the watch stops), its
  buckets an unbiased estimate; both only grow. ``slowest_hook_ms`` is then the slowest sampled or
  flagged call.
- without the watch (a runtime built by hand, tests, before the run starts), or on a book whose
  batch once overran: each call is timed exactly (a read after each), bucketed when over the
  histogram floor and held to the budget.
- a flagged batch of several strategies is logged with the strategies it held, and from then on
  that book times every call of each (exactly, as above), so a strategy that overruns again is
  named, counted, and stopped at ``max_hook_overruns``: at worst one overrun later than when alone
  on its book; the batch's own overrun is in no strategy's ``hook_overruns``.
"""

from __future__ import annotations

import logging
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from engine.model import (
    BookUpdate,
    InstrumentStatus,
    Trade,
)
from engine.observe.timing import HOOK_SAMPLE_EVERY, Log2Histogram
from engine.rejects import Reject
from engine.runtime.hookwatch import OVERRUN_SEEN, HookWatch

if TYPE_CHECKING:
    from engine.runtime.runner import StrategyRunner
    from engine.runtime.venues import BookEntry, VenueState


log = logging.getLogger("engine")

#: how many queued callbacks one drain may run before the runtime decides a strategy is looping
DEFERRED_LOOP_LIMIT = 10_000
#: what call_rare returns when the hook raised (None is a value a hook may return)
HOOK_FAILED = object()
#: Fibonacci hashing (2**64 / golden ratio): an event count's top bits, well spread
_GOLDEN = 0x9E3779B97F4A7C15
_U64 = (1 << 64) - 1


def next_sample(events: int) -> int:
    """The count of the next event to time per hook: 1 to 2 x HOOK_SAMPLE_EVERY - 1 events on,
    spread by hashing the count (no state shared between runtimes: a replay samples alike)."""
    return events + 1 + (((events * _GOLDEN) & _U64) >> 32) % (2 * HOOK_SAMPLE_EVERY - 1)


class DispatchMixin:
    """Hooks and the per-event loops of :class:`~engine.runtime.Runtime` (its state is set up in
    ``engine.runtime.core``)."""

    def on_book(self, update: BookUpdate) -> None:
        try:  # two subscripts: ~40 ns an event less than two .get calls and a None test
            entry = self.venues[update.venue].entries[update.symbol]
        except KeyError:
            self._unlisted(self.venues.get(update.venue))
            return
        entry.n_book += 1
        book = entry.book
        book.apply(update)
        outer = self.event_ns
        began = self.event_ns = perf_counter_ns()
        sample_at = entry.book_sample_at
        if entry.n_book < sample_at:  # the common case: no clock read after the hooks, the watch holds the budget
            subs = entry.book_subs
            try:
                for runner in subs:
                    call = runner.on_book  # a slot read specialises; runner.on_book(...) looks the method up
                    try:
                        call(runner.ctx, book)
                    except Exception:
                        self.hook_raised(runner, "on_book")
            finally:  # whatever escapes, the next event must not inherit this one's start
                self.event_ns = outer
            if self.deferred:  # a local reject to deliver, or the watch saw this event overrun
                self.end_watched(entry, subs, "on_book", began)
            return
        try:
            if not sample_at:  # no watch running, or a book whose batch once overran: each call timed
                self.time_each(entry.book_subs, "on_book", book, began)
            else:
                since = entry.n_book - entry.book_sampled
                entry.book_sampled = entry.n_book  # first: a strategy failing in the sample settles none twice
                self.time_each(entry.book_subs, "on_book", book, began, since)
                if entry.book_sample_at:  # still sampled (a failure in the sample may have changed that)
                    entry.book_sample_at = next_sample(entry.n_book)
        finally:
            self.event_ns = outer
        if self.deferred:
            self.drain()

    def on_trade(self, trade: Trade) -> None:
        try:  # two subscripts: ~40 ns an event less than two .get calls and a None test
            entry = self.venues[trade.venue].entries[trade.symbol]
        except KeyError:
            self._unlisted(self.venues.get(trade.venue))
            return
        entry.n_trade += 1
        price = trade.price
        entry.last_price = price
        if entry.band_halts and entry.band is not None and entry.band_halt is None and (
            price <= entry.band[0] or price >= entry.band[1]
        ):
            self._band_hit(entry, trade)
        outer = self.event_ns
        began = self.event_ns = perf_counter_ns()
        sample_at = entry.trade_sample_at
        if entry.n_trade < sample_at:  # as on_book
            subs = entry.trade_subs
            try:
                for runner in subs:
                    call = runner.on_trade  # as on_book
                    try:
                        call(runner.ctx, trade)
                    except Exception:
                        self.hook_raised(runner, "on_trade")
            finally:  # whatever escapes, the next event must not inherit this one's start
                self.event_ns = outer
            if self.deferred:
                self.end_watched(entry, subs, "on_trade", began)
            return
        try:
            if not sample_at:  # no watch running, or a book whose batch once overran: each call timed
                self.time_each(entry.trade_subs, "on_trade", trade, began)
            else:
                since = entry.n_trade - entry.trade_sampled
                entry.trade_sampled = entry.n_trade  # first: a strategy failing in the sample settles none twice
                self.time_each(entry.trade_subs, "on_trade", trade, began, since)
                if entry.trade_sample_at:  # still sampled (a failure in the sample may have changed that)
                    entry.trade_sample_at = next_sample(entry.n_trade)
        finally:
            self.event_ns = outer
        if self.deferred:
            self.drain()

    def _slow_hook(self, runner: StrategyRunner, stats: Log2Histogram, hook: str, elapsed: int,
                   weight: int = 1) -> None:
        """A hook call over the histogram floor or the budget (already counted): bucket it, and hold
        it to the budget."""
        if elapsed > stats.floor_ns:
            stats.record_slow(elapsed, weight)
        if elapsed > self.hook_budget_ns:
            self.hook_overran(runner, hook, elapsed)

    def time_each(self, subs: tuple[StrategyRunner, ...], hook: str, arg: Any, started: int, weight: int = 0) -> None:
        """Each call timed exactly: bucketed when over the histogram floor, held to the budget by
        name. ``weight`` 0: the calls are counted from the book's event count (no watch, or a book
        whose batch overran); else a sampled event: each call counted ``weight`` times (the events
        since the last sample, this one included), so the count is exact and the buckets an
        unbiased estimate."""
        slow = self.slow_hook_ns
        for runner in subs:
            try:
                getattr(runner, hook)(runner.ctx, arg)
            except Exception:
                self.hook_raised(runner, hook)
            ended = perf_counter_ns()
            elapsed = ended - started
            started = ended
            if weight or elapsed > slow:
                stats = runner.stats_for(hook)
                stats.calls += weight
                if elapsed > slow:
                    self._slow_hook(runner, stats, hook, elapsed, weight or 1)

    def end_watched(self, entry: BookEntry, subs: tuple[StrategyRunner, ...], hook: str, began: int) -> None:
        """The end of an event whose hooks were not timed, with something queued: if the watch saw
        it overrun, time it now and name the strategy (alone on the book: held to the budget as if
        timed; shared: the book times each call from now on). Then deliver what was queued."""
        if self.overrun_began == began:
            self.overrun_began = 0
            elapsed = perf_counter_ns() - began
            if len(subs) == 1:
                runner = subs[0]
                stats = runner.stats_for(hook)
                if (entry.book_subs if hook == "on_book" else entry.trade_subs) is subs:
                    # counted now, so the next sample's weight (the events since the last) leaves it out
                    stats.calls += 1
                    if hook == "on_book":
                        entry.book_sampled += 1
                    else:
                        entry.trade_sampled += 1
                # else the dispatch was rebuilt during the event (the strategy failed or was paused):
                # the rebuild counted this call already, unbucketed, so bucketing it keeps every count
                if elapsed > stats.floor_ns:
                    stats.record_slow(elapsed)
                self.hook_overran(runner, hook, elapsed)
            elif subs:
                self.batch_overran(entry, subs, hook, elapsed)
        self.drain()

    def batch_overran(self, entry: BookEntry, subs: tuple[StrategyRunner, ...], hook: str, elapsed: int) -> None:
        """The strategies sharing a book took longer together than one hook may: whose call it was
        is not known, so from now on this book times each call (exact, and held to the budget)."""
        entry.hooks_each = True
        log.warning("strategies %s together took %.1f ms in %s of %s:%s, over the %.0f ms budget of one hook; "
                    "each of their calls on this book is timed from now on", ", ".join(r.name for r in subs),
                    elapsed / 1e6, hook, entry.book.venue, entry.book.symbol, self.hook_budget_ns / 1e6)
        self.rebuild_dispatch()

    def hook_took(self, runner: StrategyRunner, hook: str, elapsed: int, budgeted: bool = True) -> None:
        """Record a timed hook call outside the per-event loops, and hold it to the budget."""
        runner.stats_for(hook).record(elapsed)
        if budgeted and elapsed > self.hook_budget_ns:
            self.hook_overran(runner, hook, elapsed)

    def _unlisted(self, venue: VenueState | None) -> None:
        if venue is not None:
            venue.n_unlisted += 1
        else:
            self.anomaly("market_data_unknown_venue", "market data for a venue this engine does not know")

    def _band_hit(self, entry: BookEntry, trade: Trade) -> None:
        low, high = entry.band  # type: ignore[misc]
        edge = "upper" if trade.price >= high else "lower"
        entry.band_halt = (
            f"circuit breaker: {trade.symbol} traded at {trade.price}, the {edge} edge of its band [{low}, {high}]; "
            "halted for the rest of the day (profile rule band_hit_halts)"
        )
        log.warning("%s", entry.band_halt)

    def on_instrument_status(self, status: InstrumentStatus) -> None:
        """A venue's word on an instrument: halt, reference price for the day, closing price."""
        venue = self.venues.get(status.venue)
        entry = venue.entries.get(status.symbol) if venue is not None else None
        if entry is None:
            return
        if status.reference_price is not None and status.reference_price != entry.reference:
            entry.set_reference(status.reference_price)
        if status.closing_price is not None:
            entry.closing = status.closing_price
        if status.halted is not None:
            was = entry.venue_halt
            entry.venue_halt = (status.reason or "halted by the venue") if status.halted else None
            if (was is None) != (entry.venue_halt is None):
                log.warning("instrument %s:%s %s%s", status.venue, status.symbol,
                            "halted" if status.halted else "trading again",
                            f": {status.reason}" if status.reason else "")

    def call_hook(self, runner: StrategyRunner, hook: Any, name: str, arg: Any) -> None:
        """Call one strategy's hot hook, contained and timed, then deliver what it queued. (The
        per-book and per-trade loops inline this for speed.)"""
        if hook is not None and runner.state == "running":
            outer = self.event_ns
            started = self.event_ns = perf_counter_ns()
            try:
                hook(runner.ctx, arg)
            except Exception:
                self.hook_raised(runner, name)
            finally:
                self.event_ns = outer
            self.hook_took(runner, name, perf_counter_ns() - started)
        if self.deferred:
            self.drain()

    def call_rare(self, runner: StrategyRunner, hook: str, **kwargs: Any) -> Any:
        """Call a rare hook (start, session change, venue status, MMP, stop, save, load) through
        pluggy, contained; timed against the budget except on_start, on_stop and on_load. Returns
        what the hook returned (``on_save``), :data:`HOOK_FAILED` when it raised."""
        if runner.state != "running" or runner.pm is None:
            return None
        caller = getattr(runner.pm.hook, hook)
        if not caller.get_hookimpls():
            return None
        started = perf_counter_ns()
        try:
            result = caller(ctx=runner.ctx, **kwargs)
        except Exception:
            self.hook_raised(runner, hook)
            result = HOOK_FAILED
        self.hook_took(runner, hook, perf_counter_ns() - started,
                        budgeted=hook not in ("on_start", "on_stop", "on_load"))
        if self.deferred:
            self.drain()
        return result

    def drain(self) -> None:
        """Deliver queued on_order_update calls (local rejects) after the hook that caused them."""
        deferred = self.deferred
        handled = 0
        still_running = False  # the watch flagged an event that is still being dispatched (this drain is nested in it)
        while deferred:
            item = deferred.popleft()
            if item is OVERRUN_SEEN:  # the flagged event's end (end_watched) takes it; a stale flag goes
                still_running = still_running or (self.overrun_began != 0 and self.overrun_began == self.event_ns)
                continue
            runner, order = item
            handled += 1
            if handled > DEFERRED_LOOP_LIMIT:
                deferred.clear()
                if self.overrun_began and self.overrun_began == self.event_ns:  # kept for its event's end
                    deferred.append(OVERRUN_SEEN)
                self.strategy_failed(
                    runner, "on_order_update", f"more than {DEFERRED_LOOP_LIMIT} rejected orders from one event"
                )
                return
            if runner.on_order_update is not None and (runner.state == "running" or order is runner.pause_told):
                # timed and held to the budget as call_hook's calls are (not through call_hook: it
                # drains too, and this loop counts what one event queued); event_ns is left alone:
                # a refusal is no event entering the runtime, so an order sent from its callback
                # takes no tick-to-order sample (and the watch does not see this call); a paused
                # strategy told why is not held to the budget (an overrun could not stop it)
                started = perf_counter_ns()
                try:
                    runner.on_order_update(runner.ctx, order)
                except Exception:
                    self.hook_raised(runner, "on_order_update")
                self.hook_took(runner, "on_order_update", perf_counter_ns() - started,
                               budgeted=runner.state == "running")
        if still_running:
            deferred.append(OVERRUN_SEEN)

    def close_market_data(self) -> None:
        """The run's window has ended (its end time, or a stop asked for): strategies hear no more
        book or trade events, though venues may still send some before shutdown stops them. A live
        run and its replay then deliver the same events: the replay ends at the window's end, and
        what a live venue sends after it is recorded but reaches no strategy. Costs nothing per
        event: the subscriber tuples are emptied."""
        if not self.market_data_closed:
            self.market_data_closed = True
            self.rebuild_dispatch()

    def rebuild_dispatch(self) -> None:
        """Recompute the per-book subscriber tuples (at load and when a strategy stops), and how
        each book's calls are timed (see the module's docstring)."""
        self.settle_hook_counts()
        watched = self.hook_watch is not None and self.hook_watch.running
        for venue in self.venues.values():
            for symbol, entry in venue.entries.items():
                self.settle_samples(entry)
                live = [] if self.market_data_closed else [
                    r for r in self.runners.values()
                    if r.venue == venue.name and symbol in r.instruments and r.state == "running"]
                entry.book_subs = tuple(r for r in live if r.on_book is not None)
                entry.trade_subs = tuple(r for r in live if r.on_trade is not None)
                sampling = watched and not entry.hooks_each
                entry.book_sample_at = next_sample(entry.n_book) if sampling and entry.book_subs else 0
                entry.trade_sample_at = next_sample(entry.n_trade) if sampling and entry.trade_subs else 0
                for runner in self.runners.values():
                    for hook, subs, count, sampled in (
                        ("on_book", entry.book_subs, entry.n_book, entry.book_sample_at),
                        ("on_trade", entry.trade_subs, entry.n_trade, entry.trade_sample_at),
                    ):
                        if runner in subs and not sampled:  # every call counted: from the entry's count
                            runner.dispatch_base.setdefault((entry, hook), count)
                        else:  # not subscribed, or sampled: time_each counts
                            runner.dispatch_base.pop((entry, hook), None)

    def start_hook_watch(self) -> None:
        """Hold on_book / on_trade to the budget from the watch's thread (engine/runtime/hookwatch.py):
        from now on an event's hooks are timed only on sampled events and when the watch saw them
        overrun. Started by the engine for its run; without it every call is timed."""
        if self.hook_watch is None or not self.hook_watch.running:
            self.hook_watch = HookWatch(self, self.hook_budget_ns)  # type: ignore[arg-type]
            self.hook_watch.start()
            self.rebuild_dispatch()

    def stop_hook_watch(self) -> None:
        """End the watch; every call is timed again."""
        if self.hook_watch is not None:
            self.hook_watch.stop()
            self.hook_watch = None
            self.rebuild_dispatch()

    @staticmethod
    def settle_samples(entry: BookEntry) -> None:
        """Count the calls of a shared book since its last sample (unbucketed: under the floor)
        before its strategies change; metrics do not, or a later sample's weight could make a
        bucket fall."""
        if entry.book_sample_at:
            for runner in entry.book_subs:
                runner.book_stats.calls += entry.n_book - entry.book_sampled
        if entry.trade_sample_at:
            for runner in entry.trade_subs:
                runner.trade_stats.calls += entry.n_trade - entry.trade_sampled
        entry.book_sampled = entry.n_book
        entry.trade_sampled = entry.n_trade

    def settle_hook_counts(self) -> None:
        """Bring every runner's on_book / on_trade call counts up to date.

        The per-event loops do not count calls per strategy (an integer per strategy per event is
        measurable at 10 strategies): every subscriber of an entry is called once per event the
        entry counts, so a strategy's calls are the entry's events since it subscribed (on a
        shared book, sampled: the samples count, see the module's docstring). Metrics and the
        report call this before reading ``hook_stats``."""
        for runner in self.runners.values():
            base = runner.dispatch_base
            for key, since in base.items():
                entry, hook = key
                now = entry.n_book if hook == "on_book" else entry.n_trade
                if now != since:
                    runner.hook_stats[hook].calls += now - since
                    base[key] = now

    def hook_raised(self, runner: StrategyRunner, hook: str) -> None:
        """Called from inside ``except``: count it; at ``max_hook_failures`` the strategy fails."""
        runner.hook_errors += 1
        runner.hook_errors_by[hook] += 1
        if runner.hook_errors >= self.max_hook_failures:
            self.strategy_failed(runner, hook)
        else:
            log.error("strategy %s raised in %s (%d of %d allowed); it keeps running", runner.name, hook,
                      runner.hook_errors, self.max_hook_failures - 1, exc_info=True)

    def hook_overran(self, runner: StrategyRunner, hook: str, elapsed_ns: int) -> None:
        """A hook ran longer than its budget: counted and logged; repeated overruns stop it."""
        runner.hook_overruns += 1
        budget_ms = self.hook_budget_ns / 1e6
        log.warning("strategy %s: %s took %.1f ms, over its %.0f ms budget (%d of %d)", runner.name, hook,
                    elapsed_ns / 1e6, budget_ms, runner.hook_overruns, self.max_hook_overruns)
        if runner.hook_overruns >= self.max_hook_overruns and runner.state == "running":
            runner.stop_code = int(Reject.HOOK_BUDGET)
            self.strategy_failed(
                runner, hook, f"hooks ran over the {budget_ms:.0f} ms budget {runner.hook_overruns} times"
            )
