"""The one entrance to the gate: every order action a strategy or the engine takes passes here.

:meth:`EntranceMixin.submit_order`, :meth:`EntranceMixin.amend_order` and
:meth:`EntranceMixin.cancel_order` hold the
pre-trade rules of their action, in the order they run, and hand what passes to the venue adapter:

- submit: the strategy is running, its refusal budget is not spent, then the strategy's
  :class:`~engine.risk.gate.Gate` (structural, venue, kill switch, session, market, account and
  budget rules, built per strategy in ``engine.runtime.core``);
- amend: the order is an open order of the strategy, the strategy is running, the refusal budget,
  the venue amends, the order is amendable, something changes, the new quantity is above what
  filled, then the same gate with the amended price and quantity;
- cancel: the order is open and may be cancelled; the venue is connected (reconciling: engine
  cancels only); a strategy's cancel passes the session rule and its own cancel budget, an engine
  cancel (kill switch, MMP, a failure, shutdown, reconnect) only the venue account's budget.

The engine's own cancels come in here too: a strategy's orders (:meth:`EntranceMixin.cancel_strategy_orders`),
everything at a halt or shutdown (one mass cancel per venue where it can,
:meth:`EntranceMixin.cancel_everything`) and the orphans a restart found
(:meth:`EntranceMixin.cancel_orphans`); each spends the venue account's cancel budget. Nothing else
in the engine hands an order action to an adapter (tests/unit/test_runtime_facade.py checks it).

A refusal goes to :mod:`engine.runtime.refusals` with the same codes in every case. Argument
errors (a float price, an unknown side) are the order context's to find before it comes here.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from time import perf_counter_ns
from typing import TYPE_CHECKING

from engine.model import (
    Order,
    OrderStatus,
)
from engine.rejects import Reject
from engine.risk.gate import OrderRequest, Rejection
from engine.risk.psx import cancel_refusal
from engine.runtime.connectivity import CONNECTED, DISCONNECTED, RECONCILING
from engine.runtime.recovery import PROBE_MISSES

if TYPE_CHECKING:
    from engine.runtime.runner import StrategyRunner
    from engine.runtime.venues import VenueState


log = logging.getLogger("engine")

#: an engine-initiated cancel refused by the venue's request budget is retried this soon at the latest
CANCEL_RETRY_MAX_NS = 1_000_000_000

# Enum members as globals for the per-order paths: on Python 3.11 ``OrderStatus.NEW`` runs
# EnumType's attribute hook, some twenty times the cost of a global read (same objects).
_NEW = OrderStatus.NEW
_PARTIALLY_FILLED = OrderStatus.PARTIALLY_FILLED
_PENDING_CANCEL = OrderStatus.PENDING_CANCEL


class EntranceMixin:
    """Submit, amend and cancel of :class:`~engine.runtime.Runtime`: the pre-trade rules of each,
    then the hand-off to the venue adapter."""

    def submit_order(self, runner: StrategyRunner, order: Order) -> Order:
        """A new order (built and argument-checked by the order context): refused locally with a
        code and a reason, or handed to the venue adapter (``pending_new``). Returns the order."""
        if runner.state != "running":
            return self.refuse(runner, order, Rejection(
                runner.stop_code, f"strategy {runner.name!r} is {runner.state}: {runner.failure or 'stopped'}"
            ))
        if runner.throttled:  # refusals spent its budget: refused before any other rule runs
            spent = runner.rate.refusal_budget_spent()  # type: ignore[union-attr]
            if spent is not None:
                return self.refuse(runner, order, spent)
            runner.throttled = False
        symbol = order._symbol
        rejection = runner.gate.check(OrderRequest(
            runner.name, runner.venue, symbol, runner.instruments.get(symbol), order._side, order._qty,
            order._price, order._type, order._tif, order._post_only, order._client_id, None, order._mmp,
            runner.facts.get(symbol), order._reduce_only,
        ))
        if rejection is not None:
            return self.refuse(runner, order, rejection)
        # passed: hand it to the venue
        venue = self.venues[runner.venue]
        if runner.refused_in_row:
            if runner.refused_in_row >= PROBE_MISSES - 1 and self.journal is not None:
                # refused ids are unknown at the venue: were their rows lost in a crash, restart's probe
                # would run out of misses on them before reaching this order; so they are made durable
                self.journal.commit(self.clock.now_ns())
            runner.refused_in_row = 0
        self.orders_submitted += 1
        runner.orders_submitted += 1
        client_id = order._client_id
        venue.orders[client_id] = order  # before the hand-off: the venue's answer is looked up here
        runner.open_orders[client_id] = order
        if self.event_ns:
            venue.tick_to_order.record(perf_counter_ns() - self.event_ns)
        try:
            venue.adapter.submit(order)
        finally:
            self._after_send(runner, venue, order)
        self.kill_switch.on_order(order._created_ts)
        return order

    def _after_send(self, runner: StrategyRunner, venue: VenueState, order: Order) -> None:
        """The bookkeeping of an order message, done once it is on its way: the account's
        reservation and the journal row (order_changed), then the order-to-trade count. Adapters
        answer through the event loop, never inside submit/amend, and the strategy's next order in
        the same hook runs its gate after this returns, so nothing reads the books in between;
        done before the send it was ~1.5 µs of every tick-to-order (benchmarks/run.py)."""
        self.order_changed(venue, order)
        if self.watches_order_to_trade:
            self._check_order_to_trade(runner)

    def cancel_order(
        self, runner: StrategyRunner, order: Order, *, by_engine: bool = False, allow_reconciling: bool = False
    ) -> bool:
        """Send a cancel. A strategy's cancel passes the session rule and its own cancel budget
        (refusals are counted and logged, the order is untouched). A cancel the engine sends
        (kill switch, MMP, a failed strategy, shutdown, reconnect) takes only the venue's budget
        and, when that is exhausted for the moment, is retried as soon as it has room."""
        if not isinstance(order, Order) or runner.open_orders.get(order._client_id) is not order:
            return False
        if not order.can_transition(_PENDING_CANCEL):
            return False
        venue = self.venues[runner.venue]
        if by_engine and venue.status is DISCONNECTED:
            venue.cancel_when_back[order._client_id] = order  # sent by reconcile once the venue is back
            return False
        if venue.status is not CONNECTED and not ((by_engine or allow_reconciling) and venue.status is RECONCILING):
            if not by_engine:
                self.refuse_cancel(runner, order, Rejection(
                    Reject.BACKEND_CONNECTIVITY,
                    f"venue {venue.name!r} is {venue.status}; the order's state is unknown until it is reconciled",
                ))
            return False
        if by_engine:
            if venue.limiter.take_cancel() is not None:
                self._retry_cancel_later(runner, order, venue)
                return False
        else:
            session = self.session
            # the phase's own flag first: cancel_refusal's call only when it would refuse
            rejection = None if session.accepts_modify_cancel else cancel_refusal(session)
            if rejection is None:
                rejection = runner.rate.take_cancel() if runner.rate is not None else None
            if rejection is not None:
                self.refuse_cancel(runner, order, rejection)
                return False
        order.transition(_PENDING_CANCEL, self.clock.now_ns())
        if self.journal is not None:
            self.journal.order(order)
        venue.adapter.cancel(order)
        runner.cancels_sent += 1
        if self.watches_order_to_trade:
            self._check_order_to_trade(runner)
        return True

    def _retry_cancel_later(self, runner: StrategyRunner, order: Order, venue: VenueState) -> None:
        if order._client_id in self.cancel_retries:
            return
        self.cancel_retries.add(order._client_id)
        now = self.clock.now_ns()
        due = min(max(venue.limiter.next_cancel_ns(), now + 1), now + CANCEL_RETRY_MAX_NS)

        def retry() -> None:
            self.cancel_retries.discard(order._client_id)
            self.cancel_order(runner, order, by_engine=True, allow_reconciling=True)

        self.clock.call_at(due, retry)

    def amend_order(
        self, runner: StrategyRunner, order: Order, price: Decimal | None, qty: Decimal | None
    ) -> bool:
        """Change an open order's price and/or total quantity (the context parsed them). The new
        values pass the same gate as a new order; a refusal is counted and logged, returns False
        and leaves the order untouched; nothing to change returns False and sends nothing."""
        # the engine reads the order's slots directly: this runs on the tick-to-order path
        if not isinstance(order, Order) or runner.open_orders.get(order._client_id) is not order:
            self.refuse_amend(runner, order, Rejection(Reject.ORDER_NOT_OPEN, "not an open order of this strategy"))
            return False
        if runner.state != "running":
            self.refuse_amend(runner, order, Rejection(runner.stop_code, f"strategy is {runner.state}"))
            return False
        if runner.throttled:  # refusals spent its budget: refused before any other rule runs
            spent = runner.rate.refusal_budget_spent()  # type: ignore[union-attr]
            if spent is not None:
                self.refuse_amend(runner, order, spent)
                return False
            runner.throttled = False
        venue = self.venues[runner.venue]
        adapter = venue.adapter
        if not adapter.capabilities.amend:
            self.refuse_amend(
                runner, order, Rejection(Reject.ORDER_TYPE_NOT_SUPPORTED, f"venue {venue.name!r} cannot amend orders")
            )
            return False
        status = order._status
        if status is not _NEW and status is not _PARTIALLY_FILLED:
            self.refuse_amend(
                runner, order,
                Rejection(Reject.ORDER_NOT_OPEN, f"order {order._client_id} is {status.value}; cannot amend now"),
            )
            return False
        old_price = order._price
        old_qty = order._qty
        if price is None and qty is None:
            self.refuse_amend(runner, order, Rejection(Reject.INVALID_ORDER, "amend needs a new price or quantity"))
            return False
        if (price is None or price == old_price) and (qty is None or qty == old_qty):
            return False  # nothing to change: no message, no refusal
        if qty is not None and qty <= order._cum_qty:
            self.refuse_amend(
                runner, order,
                Rejection(Reject.INVALID_ORDER, f"new quantity {qty} is not above the {order._cum_qty} already filled"),
            )
            return False
        symbol = order._symbol
        request = OrderRequest(
            runner.name, runner.venue, symbol, runner.instruments.get(symbol), order._side,
            old_qty if qty is None else qty, old_price if price is None else price,
            order._type, order._tif, order._post_only, order._client_id, order, order._mmp,
            runner.facts.get(symbol), order._reduce_only,
        )
        rejection = runner.gate.check(request)
        if rejection is not None:
            self.refuse_amend(runner, order, rejection)
            return False
        order.request_replace(price, qty, self.clock.now_ns())
        if self.event_ns:
            venue.tick_to_order.record(perf_counter_ns() - self.event_ns)
        try:
            adapter.amend(order, price, qty)
            runner.amends_sent += 1
        finally:
            self._after_send(runner, venue, order)
        return True

    def _check_order_to_trade(self, runner: StrategyRunner) -> None:
        """After a message went out: the day's order-to-trade ratio against the kill switch's limit."""
        messages, fills = runner.day_messages_and_fills()
        self.kill_switch.on_order_to_trade(runner.name, messages, fills)

    # ---- the engine's own cancels: a strategy's orders, everything, orphans ----------------------
    def cancel_strategy_orders(self, runner: StrategyRunner) -> int:
        sent = 0
        for order in list(runner.open_orders.values()):
            if order.status is not OrderStatus.PENDING_CANCEL and self.cancel_order(runner, order, by_engine=True):
                sent += 1
        return sent

    def cancel_everything(self) -> None:
        """Every open order of every strategy (halt, shutdown): one mass cancel per venue whose
        adapter has one (``capabilities.mass_cancel``, ``venues.<name>.mass_cancel``), else order
        by order within the venue's request budget."""
        for venue in self.venues.values():
            runners = self.runners_on(venue.name)
            if not self._mass_cancel(venue, runners):
                for runner in runners:
                    self.cancel_strategy_orders(runner)

    def _mass_cancel(self, venue: VenueState, runners: list[StrategyRunner]) -> bool:
        """One request for all of them: faster than the venue's per-request budget allows order by
        order, and nothing can slip between two cancels. If the request fails, order by order."""
        if not (venue.mass_cancel and venue.adapter.capabilities.mass_cancel and venue.status is CONNECTED):
            return False
        orders = [(runner, order) for runner in runners for order in runner.open_orders.values()
                  if order.can_transition(OrderStatus.PENDING_CANCEL)]
        if len(orders) < 2 or venue.limiter.take_cancel() is not None:
            return False
        now = self.clock.now_ns()
        for _, order in orders:
            order.transition(OrderStatus.PENDING_CANCEL, now)
            self.order_changed(venue, order)
        log.warning("venue %s: mass cancel of %d orders", venue.name, len(orders))

        async def send() -> None:
            try:
                await venue.adapter.cancel_all()
            except Exception as exc:
                log.error("venue %s: mass cancel failed (%s: %s); cancelling order by order", venue.name,
                          type(exc).__name__, exc)
                for runner, order in orders:
                    if order.status is OrderStatus.PENDING_CANCEL:
                        order.transition(order.live_status(), self.clock.now_ns())
                        self.cancel_order(runner, order, by_engine=True)

        self.spawn(send)
        return True

    def cancel_orphans(self, venue: VenueState) -> None:
        """Cancel the orders a restart found with no strategy to own them (a strategy no longer in
        the config, or ``on_restart.unknown_orders: cancel``); called again at every session
        change, since the venue refuses cancels outside the phases that take them."""
        now = self.clock.now_ns()
        for order in list(venue.orphans.values()):
            if order.is_terminal:
                venue.orphans.pop(order.client_id, None)
                continue
            if order.status is not OrderStatus.PENDING_CANCEL and order.can_transition(OrderStatus.PENDING_CANCEL):
                if venue.limiter.take_cancel() is not None:  # the venue's budget: the rest when it has room
                    if not venue.orphan_retry_due:
                        venue.orphan_retry_due = True
                        self.clock.call_at(max(venue.limiter.next_cancel_ns(), now + 1), self._cancel_orphans_again,
                                           venue)
                    return
                order.transition(OrderStatus.PENDING_CANCEL, now)
                self.order_changed(venue, order)
                venue.adapter.cancel(order)

    def _cancel_orphans_again(self, venue: VenueState) -> None:
        venue.orphan_retry_due = False
        if venue.status is CONNECTED or venue.status is RECONCILING:
            self.cancel_orphans(venue)
