"""Order bookkeeping after the hand-off: fills, venue order updates, orphans' fills, client ids.

Every change to an order goes through :meth:`OrdersMixin.order_changed` (its reservation in the
account and its journal row); a fill is durable in the journal before its strategy hears of it.
What a venue sends that cannot be applied is an anomaly: counted, logged once per kind, sampled.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from engine.clientids import format_client_id
from engine.model import (
    TERMINAL_STATUSES,
    ZERO,
    Fill,
    IllegalTransition,
    Order,
    OrderStatus,
    OrderUpdate,
    apply_venue_update,
)
from engine.portfolio import Position
from engine.rejects import Reject
from engine.runtime.connectivity import RECONCILING

if TYPE_CHECKING:
    from engine.runtime.runner import StrategyRunner
    from engine.runtime.venues import VenueState


log = logging.getLogger("engine")

#: at most this many anomaly samples (unknown fills, illegal transitions) are kept for the report
ANOMALY_SAMPLES = 20

# Enum members as globals for the per-order paths: on Python 3.11 ``OrderStatus.REJECTED`` runs
# EnumType's attribute hook, some twenty times the cost of a global read (same objects).
_REJECTED = OrderStatus.REJECTED
# a status's name by a dict lookup: ``status.value`` runs the enum's Python-level property (~960
# instructions on 3.11) and an order's final status is counted once per order
_STATUS_NAMES = {status: status.value for status in OrderStatus}


class OrdersMixin:
    """Fills, order updates and anomalies of :class:`~engine.runtime.Runtime`."""

    def on_fill(self, fill: Fill) -> None:
        venue = self.venues.get(fill.venue)
        if venue is None:
            self.anomaly("fill_unknown_venue", f"fill for unknown venue: {fill!r}")
            return
        if fill.exec_id in venue.exec_ids:
            venue.n_duplicate_fills += 1
            return
        venue.exec_ids.add(fill.exec_id)
        order = venue.orders.get(fill.client_id)
        if order is None:
            # Not ours or lost: keep it visible (report, log) rather than guess which order it was.
            self.anomaly("fill_unknown_order", f"fill for an order this engine does not know: {fill!r}")
            return
        fee_source = self._price_fee(venue, fill)
        journal = self.journal
        seq = None
        if journal is not None:
            seq = journal.add_fill(fill, order._strategy, self.today(), fee_source)
            if seq is None:  # the journal has this exec id: applied before (a restart, a re-sent fill)
                venue.n_duplicate_fills += 1
                if not journal.same_fill(fill):
                    self.anomaly("exec_id_reused", f"venue reused exec id {fill.exec_id} for a different fill; "
                                                    f"not applied: {fill!r}")
                return
        try:
            order.apply_fill(fill.qty, fill.price, fill.ts)
        except (IllegalTransition, ValueError) as exc:
            if journal is not None and seq is not None:
                journal.unapplied(seq)
                journal.commit(fill.ts)
            self.anomaly("fill_rejected", f"fill not applied: {exc}; {fill!r}")
            return
        venue.n_fill += 1
        runner = self.runners.get(order._strategy)
        if runner is None or (venue.orphans and order._client_id in venue.orphans):
            self._orphan_fill(venue, order, fill, runner)
            return
        self.timeline.fill(fill.ts, runner.name, venue.name, fill.symbol, fill.side, fill.qty, fill.price,
                           fill.liquidity)
        runner.fills += 1
        runner.position(fill.symbol).apply_fill(fill.side, fill.qty, fill.price, fill.fee)
        venue.account.apply_fill(fill, self.today())
        self.order_changed(venue, order)
        if journal is not None:
            journal.commit(fill.ts)  # durable before the strategy hears of it
        if order.is_terminal:
            self.order_finished(runner, order)
        log.info(
            "fill  %-12s %s %s %s @ %s (%s) pos=%s",
            runner.name, fill.symbol, fill.side.value, fill.qty, fill.price, fill.liquidity.value,
            runner.positions[fill.symbol].qty,
        )
        trigger = None
        if order._mmp and runner.mmp is not None:
            trigger = runner.mmp.on_fill(fill.qty, fill.ts)
            if trigger is not None:
                self.mmp_triggered(runner, trigger)
        self.call_hook(runner, runner.on_fill, "on_fill", fill)
        if self.ready_after_notify:
            self.flush_ready()
        if trigger is not None:
            self.call_rare(runner, "on_mmp_trigger", info=trigger)
        if self.watches_losses:  # a loss rule is configured: react to the fill at once
            self.check_losses()

    def _price_fee(self, venue: VenueState, fill: Fill) -> str:
        """Every fill carries its fee: the schedule's when the venue states none (paper without a
        schedule, Optimus, whose executions carry no commission); a venue's own fee is taken at
        its word and compared with the schedule, a difference beyond the pack's ``fee_tolerance``
        counted as the anomaly ``fee_mismatch`` (logged once, then counted)."""
        schedule = venue.fee_schedules.get(fill.symbol)
        if schedule is None:
            if fill.fee is None:
                fill.fee = ZERO
                return "schedule"
            return "venue"
        expected = schedule.fee(fill.side, fill.qty * fill.price)
        if fill.fee is None:
            fill.fee = expected
            return "schedule"
        tolerance = schedule.pack.fee_tolerance
        if abs(fill.fee - expected) > tolerance:
            self.anomaly("fee_mismatch", f"venue fee {fill.fee} differs from the schedule's {expected} "
                                          f"(tolerance {tolerance}); the venue's is applied: {fill!r}")
        return "venue"

    def _orphan_fill(self, venue: VenueState, order: Order, fill: Fill, runner: StrategyRunner | None) -> None:
        """A fill on an order the engine is cancelling without its strategy (reconciliation found it
        under the strategy's client id, or the strategy left the config): the account and the
        strategy's position still move, and a running strategy hears the fill, since its position
        changed; the order itself stays the engine's."""
        journal = self.journal
        if runner is not None:
            runner.fills += 1
            runner.position(fill.symbol).apply_fill(fill.side, fill.qty, fill.price, fill.fee)
        else:
            self.retired_fill(order.strategy, fill)
        venue.account.apply_fill(fill, self.today())
        self.order_changed(venue, order)
        if journal is not None:
            journal.commit(fill.ts)
        if order.is_terminal:
            venue.orphans.pop(order.client_id, None)
        log.warning("fill  %-12s %s %s %s @ %s on %s, an order the engine is cancelling", order.strategy,
                    fill.symbol, fill.side.value, fill.qty, fill.price, order.client_id)
        if runner is not None:
            self.call_hook(runner, runner.on_fill, "on_fill", fill)

    def retired_fill(self, strategy: str, fill: Fill) -> None:
        """Keep the position of a strategy this config no longer runs true (it is in every snapshot)."""
        saved = self.retired_positions.setdefault(strategy, {"positions": {}, "pnl_day_start": "0"})
        held = saved["positions"].get(fill.symbol)
        position = Position.restored(fill.symbol, held) if held is not None else Position(fill.symbol)
        position.apply_fill(fill.side, fill.qty, fill.price, fill.fee)
        saved["positions"][fill.symbol] = position.persisted()

    def on_order_update(self, update: OrderUpdate) -> None:
        venue = self.venues.get(update.venue)
        order = venue.orders.get(update.client_id) if venue is not None else None
        if order is None:
            self.anomaly("update_unknown_order", f"order update for an order this engine does not know: {update!r}")
            return
        venue.n_order_update += 1
        runner = self.runners.get(order._strategy)
        if runner is None or (venue.orphans and order._client_id in venue.orphans):
            # an orphan the engine is cancelling (restart, reconciliation): track it, nobody to tell
            with contextlib.suppress(IllegalTransition):
                apply_venue_update(order, update)
            self.order_changed(venue, order)
            if order.is_terminal:
                venue.orphans.pop(order.client_id, None)
            return
        try:
            changed = apply_venue_update(order, update)
        except IllegalTransition as exc:
            self.anomaly("illegal_transition", f"{exc}; {update!r}")
            return
        if not changed:
            return
        self.order_changed(venue, order)
        if order._status in TERMINAL_STATUSES:  # order.is_terminal, without its Python frame
            self.order_finished(runner, order)
            if order._status is _REJECTED:
                self.count_reject(runner, order.reject_code or Reject.EXCHANGE_REJECT)
                log.warning(
                    "venue reject %-12s %s %s: %s %s", runner.name, order.symbol, order.client_id,
                    order.reject_code, order.reject_reason,
                )
        self.notify_order(runner, order)

    def order_changed(self, venue: VenueState, order: Order) -> None:
        """After every change to an order: its reservation in the account, and its journal row."""
        venue.account.track(order)
        journal = self.journal
        if journal is not None:
            journal.order(order)

    def order_finished(self, runner: StrategyRunner, order: Order) -> None:
        client_id = order._client_id
        if runner.open_orders.pop(client_id, None) is not None:
            runner.final_status[_STATUS_NAMES[order._status]] += 1
        venue = self.venues[runner.venue]
        if venue.awaiting_cancels and client_id in venue.awaiting_cancels:
            venue.awaiting_cancels.discard(client_id)
            if not venue.awaiting_cancels and venue.status is RECONCILING:
                self.ready_after_notify.append(venue)  # "connected" only after this final state is told

    def flush_ready(self) -> None:
        while self.ready_after_notify:
            self.venue_ready(self.ready_after_notify.pop(0))

    def notify_order(self, runner: StrategyRunner, order: Order) -> None:
        self.call_hook(runner, runner.on_order_update, "on_order_update", order)
        if self.ready_after_notify:
            self.flush_ready()

    def next_client_id(self, runner: StrategyRunner) -> str:
        """``<strategy>-<epoch>-<n>``: short, venue-safe ([A-Za-z0-9_-], <= 32 chars), unique in the
        journal, and across journals by the journal's epoch."""
        used = self.venues[runner.venue].orders
        while True:
            runner.client_seq += 1
            if runner.client_seq > runner.client_reserved and self.journal is not None:
                # reserved (committed) before use: a restarted engine never hands out this id again
                runner.client_reserved = self.journal.reserve_client_ids(runner.name, runner.client_seq)
            candidate = format_client_id(runner.name, self.client_epoch, runner.client_seq)
            if candidate not in used:
                return candidate

    def anomaly(self, kind: str, sample: str) -> None:
        """Something a venue sent that cannot be applied: counted, logged once per kind, kept."""
        self.anomalies[kind] += 1
        if len(self.anomaly_samples) < ANOMALY_SAMPLES:
            self.anomaly_samples.append(sample)
        if self.anomalies[kind] == 1:
            log.error("%s (further ones are counted, see the report)", sample)
        else:
            log.debug(sample)
