"""The per-event path: market data in, strategy hooks out.

``on_book`` and ``on_trade`` are the hot loop: hooks are called directly through callables resolved
once at load (no pluggy call per event, no logging, no validation), one clock read per hook, and a
hook call is only looked at closer when it ran over the histogram floor or the budget. What a hook
causes inside the runtime (a local reject's ``on_order_update``) is queued and delivered by
:meth:`DispatchMixin.drain` after the hook returns, so no hook ever runs inside another.
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
from engine.observe.timing import Log2Histogram
from engine.rejects import Reject

if TYPE_CHECKING:
    from engine.runtime.runner import StrategyRunner
    from engine.runtime.venues import BookEntry, VenueState


log = logging.getLogger("engine")

#: how many queued callbacks one drain may run before the runtime decides a strategy is looping
DEFERRED_LOOP_LIMIT = 10_000
#: what call_rare returns when the hook raised (None is a value a hook may return)
HOOK_FAILED = object()


class DispatchMixin:
    """Hooks and the per-event loops of :class:`~engine.runtime.Runtime` (its state is set up in
    ``engine.runtime.core``)."""

    def on_book(self, update: BookUpdate) -> None:
        venue = self.venues.get(update.venue)
        entry = venue.entries.get(update.symbol) if venue is not None else None
        if entry is None:
            self._unlisted(venue)
            return
        entry.n_book += 1
        book = entry.book
        book.apply(update)
        slow = self.slow_hook_ns
        outer = self.event_ns
        started = self.event_ns = perf_counter_ns()  # one clock read per hook: each hook's end starts the next
        for runner in entry.book_subs:
            try:
                runner.on_book(runner.ctx, book)
            except Exception:
                self.hook_raised(runner, "on_book")
            ended = perf_counter_ns()
            elapsed = ended - started
            started = ended
            if elapsed > slow:  # counted per entry; only a slow call is bucketed or held to the budget
                self._slow_hook(runner, runner.book_stats, "on_book", elapsed)
        self.event_ns = outer
        if self.deferred:
            self.drain()

    def on_trade(self, trade: Trade) -> None:
        venue = self.venues.get(trade.venue)
        entry = venue.entries.get(trade.symbol) if venue is not None else None
        if entry is None:
            self._unlisted(venue)
            return
        entry.n_trade += 1
        price = trade.price
        entry.last_price = price
        if entry.band_halts and entry.band is not None and entry.band_halt is None and (
            price <= entry.band[0] or price >= entry.band[1]
        ):
            self._band_hit(entry, trade)
        slow = self.slow_hook_ns
        outer = self.event_ns
        started = self.event_ns = perf_counter_ns()  # one clock read per hook: each hook's end starts the next
        for runner in entry.trade_subs:
            try:
                runner.on_trade(runner.ctx, trade)
            except Exception:
                self.hook_raised(runner, "on_trade")
            ended = perf_counter_ns()
            elapsed = ended - started
            started = ended
            if elapsed > slow:
                self._slow_hook(runner, runner.trade_stats, "on_trade", elapsed)
        self.event_ns = outer
        if self.deferred:
            self.drain()

    def _slow_hook(self, runner: StrategyRunner, stats: Log2Histogram, hook: str, elapsed: int) -> None:
        """A hook call over the histogram floor or the budget (already counted): bucket it, and hold
        it to the budget."""
        if elapsed > stats.floor_ns:
            stats.record_slow(elapsed)
        if elapsed > self.hook_budget_ns:
            self.hook_overran(runner, hook, elapsed)

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
            elapsed = perf_counter_ns() - started
            self.event_ns = outer
            self.hook_took(runner, name, elapsed)
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
        while deferred:
            runner, order = deferred.popleft()
            handled += 1
            if handled > DEFERRED_LOOP_LIMIT:
                deferred.clear()
                self.strategy_failed(
                    runner, "on_order_update", f"more than {DEFERRED_LOOP_LIMIT} rejected orders from one event"
                )
                return
            if runner.on_order_update is not None and (runner.state == "running" or order is runner.pause_told):
                try:
                    runner.on_order_update(runner.ctx, order)
                except Exception:
                    self.hook_raised(runner, "on_order_update")

    def rebuild_dispatch(self) -> None:
        """Recompute the per-book subscriber tuples (at load and when a strategy stops)."""
        self.settle_hook_counts()
        for venue in self.venues.values():
            for symbol, entry in venue.entries.items():
                live = [r for r in self.runners.values()
                        if r.venue == venue.name and symbol in r.instruments and r.state == "running"]
                entry.book_subs = tuple(r for r in live if r.on_book is not None)
                entry.trade_subs = tuple(r for r in live if r.on_trade is not None)
                for runner in self.runners.values():
                    for hook, subs, count in (("on_book", entry.book_subs, entry.n_book),
                                              ("on_trade", entry.trade_subs, entry.n_trade)):
                        if runner in subs:
                            runner.dispatch_base.setdefault((entry, hook), count)
                        else:
                            runner.dispatch_base.pop((entry, hook), None)

    def settle_hook_counts(self) -> None:
        """Bring every runner's on_book / on_trade call counts up to date.

        The per-event loops do not count calls per strategy (an integer per strategy per event is
        measurable at 10 strategies): every subscriber of an entry is called once per event the
        entry counts, so a strategy's calls are the entry's events since it subscribed. Metrics
        and the report call this before reading ``hook_stats``."""
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
