"""The runtime: wires adapters <-> books <-> strategies <-> the pre-trade gate.

Adapters push model events in through the :class:`adapters.base.VenueEvents` methods
(``on_book``, ``on_trade``, ``on_fill``, ``on_order_update``, ``on_venue_status``). The runtime
updates books, orders and positions, then calls the hooks of the strategies subscribed to that
instrument. Hot hooks are called directly through callables resolved once at load (no pluggy call
per event, no logging, no validation); hooks a strategy does not define are simply absent from the
dispatch tuples.

Things a strategy causes inside its own hook (a local reject's ``on_order_update``) are queued and
delivered after that hook returns, so no hook ever runs inside another.
"""

from __future__ import annotations

import logging
import traceback
from collections import Counter, deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from adapters.base import Adapter
from engine.clock import Clock
from engine.context import OrderContext
from engine.model import (
    ZERO,
    Book,
    BookUpdate,
    Fill,
    IllegalTransition,
    Instrument,
    Order,
    OrderStatus,
    OrderUpdate,
    SessionState,
    Trade,
)
from engine.portfolio import Position
from engine.rejects import Reject, describe
from engine.risk.gate import Gate, OrderRequest, Rejection
from engine.risk.structural import structural_checks

log = logging.getLogger("engine")

#: how many queued callbacks one drain may run before the runtime decides a strategy is looping
DEFERRED_LOOP_LIMIT = 10_000
#: at most this many anomaly samples (unknown fills, illegal transitions) are kept for the report
ANOMALY_SAMPLES = 20


class StrategyRunner:
    """One configured strategy instance: its hooks, context, orders and positions."""

    __slots__ = (
        "name", "venue", "symbols", "instruments", "loaded", "ctx", "state", "failure", "gate",
        "open_orders", "positions", "on_book", "on_trade", "on_fill", "on_order_update",
        "orders_submitted", "fills", "rejects", "client_seq", "pm",
    )

    def __init__(self, name: str, venue: str, instruments: Iterable[Instrument], loaded: Any) -> None:
        self.name = name
        self.venue = venue
        self.instruments: dict[str, Instrument] = {i.symbol: i for i in instruments}
        self.symbols = tuple(self.instruments)
        self.loaded = loaded
        self.pm = getattr(loaded, "pm", None)
        hooks: dict = getattr(loaded, "hooks", {}) or {}
        self.on_book = hooks.get("on_book")
        self.on_trade = hooks.get("on_trade")
        self.on_fill = hooks.get("on_fill")
        self.on_order_update = hooks.get("on_order_update")
        self.ctx: OrderContext | None = None
        self.state = "running"
        self.failure = ""
        self.gate: Gate = Gate(())
        self.open_orders: dict[str, Order] = {}
        self.positions: dict[str, Position] = {}
        self.orders_submitted = 0
        self.fills = 0
        self.rejects = 0
        self.client_seq = 0

    def position(self, symbol: str) -> Position:
        position = self.positions.get(symbol)
        if position is None:
            position = self.positions[symbol] = Position(symbol)
        return position

    @property
    def realized_pnl(self) -> Decimal:
        return sum((p.realized_pnl for p in self.positions.values()), ZERO)


class _BookEntry:
    """A book and the runners that receive its events, as tuples for a tight dispatch loop."""

    __slots__ = ("book", "book_subs", "trade_subs", "last_price")

    def __init__(self, book: Book) -> None:
        self.book = book
        self.book_subs: tuple[StrategyRunner, ...] = ()
        self.trade_subs: tuple[StrategyRunner, ...] = ()
        self.last_price: Decimal | None = None


class _Venue:
    __slots__ = ("name", "adapter", "entries", "orders", "exec_ids", "instruments", "status")

    def __init__(self, name: str, adapter: Adapter, instruments: dict[str, Instrument]) -> None:
        self.name = name
        self.adapter = adapter
        self.instruments = instruments
        self.entries: dict[str, _BookEntry] = {}
        self.orders: dict[str, Order] = {}  # every order of this run by client id: the id is single-use
        self.exec_ids: set[str] = set()
        self.status = "disconnected"


class Runtime:
    """Event wiring and order bookkeeping. Build with :meth:`add_venue` / :meth:`add_strategy`."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.session = SessionState()  # closed until the session driver says otherwise
        self.sessions_seen: list[str] = [self.session.phase.value]
        self.venues: dict[str, _Venue] = {}
        self.runners: dict[str, StrategyRunner] = {}
        self._deferred: deque = deque()
        # counters: plain ints on the hot path, read by heartbeat and report
        self.n_book = 0
        self.n_trade = 0
        self.n_fill = 0
        self.n_duplicate_fills = 0
        self.orders_submitted = 0
        self.final_status: Counter[str] = Counter()
        self.rejects_by_code: Counter[int] = Counter()
        self.anomalies: Counter[str] = Counter()
        self.anomaly_samples: list[str] = []

    # ---- construction ---------------------------------------------------------------------
    def add_venue(self, name: str, adapter: Adapter, instruments: Iterable[Instrument]) -> None:
        self.venues[name] = _Venue(name, adapter, {i.symbol: i for i in instruments})

    def add_strategy(self, runner: StrategyRunner, params: Any = None) -> StrategyRunner:
        venue = self.venues[runner.venue]
        runner.ctx = OrderContext(runner, self, params, logging.getLogger(f"strategy.{runner.name}"))
        runner.gate = Gate(structural_checks(venue.adapter.capabilities, venue.orders))
        self.runners[runner.name] = runner
        for symbol in runner.symbols:
            if symbol not in venue.entries:
                venue.entries[symbol] = _BookEntry(Book(runner.venue, symbol))
        self._rebuild_dispatch()
        return runner

    def _rebuild_dispatch(self) -> None:
        """Recompute the per-book subscriber tuples (at load and when a strategy stops)."""
        for venue in self.venues.values():
            for symbol, entry in venue.entries.items():
                live = [r for r in self.runners.values()
                        if r.venue == venue.name and symbol in r.instruments and r.state == "running"]
                entry.book_subs = tuple(r for r in live if r.on_book is not None)
                entry.trade_subs = tuple(r for r in live if r.on_trade is not None)

    def subscriptions(self, venue: str) -> list[str]:
        return list(self.venues[venue].entries)

    def book(self, venue: str, symbol: str) -> Book | None:
        entry = self.venues[venue].entries.get(symbol)
        return entry.book if entry is not None else None

    def last_price(self, venue: str, symbol: str) -> Decimal | None:
        entry = self.venues[venue].entries.get(symbol)
        if entry is None:
            return None
        return entry.book.mid if entry.book.mid is not None else entry.last_price

    # ---- the hot path: market data --------------------------------------------------------
    def on_book(self, update: BookUpdate) -> None:
        self.n_book += 1
        venue = self.venues.get(update.venue)
        entry = venue.entries.get(update.symbol) if venue is not None else None
        if entry is None:
            return
        book = entry.book
        book.apply(update)
        for runner in entry.book_subs:
            try:
                runner.on_book(runner.ctx, book)
            except Exception:
                self.strategy_failed(runner, "on_book")
        if self._deferred:
            self.drain()

    def on_trade(self, trade: Trade) -> None:
        self.n_trade += 1
        venue = self.venues.get(trade.venue)
        entry = venue.entries.get(trade.symbol) if venue is not None else None
        if entry is None:
            return
        entry.last_price = trade.price
        for runner in entry.trade_subs:
            try:
                runner.on_trade(runner.ctx, trade)
            except Exception:
                self.strategy_failed(runner, "on_trade")
        if self._deferred:
            self.drain()

    # ---- executions and order updates ---------------------------------------------------------
    def on_fill(self, fill: Fill) -> None:
        venue = self.venues.get(fill.venue)
        if venue is None:
            self._anomaly("fill_unknown_venue", f"fill for unknown venue: {fill!r}")
            return
        if fill.exec_id in venue.exec_ids:
            self.n_duplicate_fills += 1
            return
        venue.exec_ids.add(fill.exec_id)
        order = venue.orders.get(fill.client_id)
        if order is None:
            # Not ours or lost: keep it visible (report, log) rather than guess which order it was.
            self._anomaly("fill_unknown_order", f"fill for an order this engine does not know: {fill!r}")
            return
        try:
            order.apply_fill(fill.qty, fill.price, fill.ts)
        except (IllegalTransition, ValueError) as exc:
            self._anomaly("fill_rejected", f"fill not applied: {exc}; {fill!r}")
            return
        self.n_fill += 1
        runner = self.runners[order.strategy]
        runner.fills += 1
        runner.position(fill.symbol).apply_fill(fill.side, fill.qty, fill.price, fill.fee)
        if order.is_terminal:
            self._terminal(runner, order)
        log.info(
            "fill  %-12s %s %s %s @ %s (%s) pos=%s",
            runner.name, fill.symbol, fill.side.value, fill.qty, fill.price, fill.liquidity.value,
            runner.positions[fill.symbol].qty,
        )
        self._call_hook(runner, runner.on_fill, "on_fill", fill)

    def on_order_update(self, update: OrderUpdate) -> None:
        venue = self.venues.get(update.venue)
        order = venue.orders.get(update.client_id) if venue is not None else None
        if order is None:
            self._anomaly("update_unknown_order", f"order update for an order this engine does not know: {update!r}")
            return
        runner = self.runners[order.strategy]
        try:
            changed = self._apply_update(order, update)
        except IllegalTransition as exc:
            self._anomaly("illegal_transition", f"{exc}; {update!r}")
            return
        if not changed:
            return
        if order.is_terminal:
            self._terminal(runner, order)
            if order.status is OrderStatus.REJECTED:
                self._count_reject(runner, order.reject_code or Reject.EXCHANGE_REJECT)
                log.warning(
                    "venue reject %-12s %s %s: %s %s", runner.name, order.symbol, order.client_id,
                    order.reject_code, order.reject_reason,
                )
        self._notify_order(runner, order)

    def _apply_update(self, order: Order, update: OrderUpdate) -> bool:
        """Apply a venue update to the order; False when it changes nothing the strategy sees."""
        status = update.status
        current = order.status
        order.set_venue_order_id(update.venue_order_id)
        ts = update.ts
        if status is OrderStatus.NEW or status is OrderStatus.PARTIALLY_FILLED:
            if current is OrderStatus.PENDING_NEW:
                order.transition(OrderStatus.NEW, ts)
                return True
            if current is OrderStatus.PENDING_REPLACE:
                if update.price is not None or update.qty is not None:
                    order.confirm_replace(update.price, update.qty, ts)
                else:  # replace refused: back to the live state, values unchanged
                    order.confirm_replace(None, None, ts)
                    log.info("amend refused by venue for %s: %s", order.client_id, update.reason)
                return True
            if current is OrderStatus.PENDING_CANCEL:
                if update.reason:  # cancel refused by the venue
                    order.transition(order.live_status(), ts)
                    log.info("cancel refused by venue for %s: %s", order.client_id, update.reason)
                    return True
                return False  # a late ack of the order itself, cancel still pending
            return False
        if status is OrderStatus.REJECTED:
            if order.is_terminal:
                return False
            order.reject(update.reject_code or Reject.EXCHANGE_REJECT, update.reason or describe(9002), ts)
            return True
        if status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
            if order.is_terminal:
                return False
            order.transition(status, ts)
            order._reject_reason = update.reason or order._reject_reason  # why it ended, for the log
            return True
        if status is OrderStatus.FILLED:
            return False  # fills drive the filled state; a status-only "filled" adds nothing
        raise IllegalTransition(f"venue sent unexpected status {status.value} for {order.client_id}")

    def _terminal(self, runner: StrategyRunner, order: Order) -> None:
        if runner.open_orders.pop(order.client_id, None) is not None:
            self.final_status[order.status.value] += 1

    def _notify_order(self, runner: StrategyRunner, order: Order) -> None:
        self._call_hook(runner, runner.on_order_update, "on_order_update", order)

    def _call_hook(self, runner: StrategyRunner, hook: Any, name: str, arg: Any) -> None:
        """Call one strategy's hot hook, contained, then deliver what it queued. (The per-book and
        per-trade loops inline this for speed.)"""
        if hook is not None and runner.state == "running":
            try:
                hook(runner.ctx, arg)
            except Exception:
                self.strategy_failed(runner, name)
        if self._deferred:
            self.drain()

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None:
        state = self.venues.get(venue)
        if state is not None:
            state.status = status
        log.info("venue %s %s%s", venue, status, f": {detail}" if detail else "")

    # ---- requests from the order context ------------------------------------------------------
    def next_client_id(self, runner: StrategyRunner) -> str:
        """``<strategy>-<n>``: short, venue-safe ([A-Za-z0-9_-], <= 32 chars), unique in the run."""
        used = self.venues[runner.venue].orders
        while True:
            runner.client_seq += 1
            candidate = f"{runner.name}-{runner.client_seq}"
            if candidate not in used:
                return candidate

    def refuse(self, runner: StrategyRunner, order: Order, rejection: Rejection) -> Order:
        """Reject locally: nothing is sent; the strategy hears of it after its hook returns."""
        self.orders_submitted += 1
        runner.orders_submitted += 1
        order.reject(int(rejection.code), rejection.reason, self.clock.now_ns())
        self.final_status[OrderStatus.REJECTED.value] += 1
        self._count_reject(runner, int(rejection.code))
        log.warning("reject %-12s %s %s: %s %s", runner.name, order.symbol, order.client_id, rejection.code,
                    rejection.reason)
        if runner.on_order_update is not None:
            self._deferred.append((runner, order))
        return order

    def refuse_amend(self, runner: StrategyRunner, order: Order, rejection: Rejection) -> None:
        self._count_reject(runner, int(rejection.code))
        log.warning("amend refused %-12s %s: %s %s", runner.name, getattr(order, "client_id", order),
                    rejection.code, rejection.reason)

    def _count_reject(self, runner: StrategyRunner, code: int) -> None:
        self.rejects_by_code[int(code)] += 1
        runner.rejects += 1

    def send_new(self, runner: StrategyRunner, order: Order) -> Order:
        venue = self.venues[runner.venue]
        self.orders_submitted += 1
        runner.orders_submitted += 1
        venue.orders[order.client_id] = order
        runner.open_orders[order.client_id] = order
        venue.adapter.submit(order)
        return order

    def request_cancel(self, runner: StrategyRunner, order: Order) -> bool:
        if not isinstance(order, Order) or runner.open_orders.get(order.client_id) is not order:
            return False
        if not order.can_transition(OrderStatus.PENDING_CANCEL):
            return False
        order.transition(OrderStatus.PENDING_CANCEL, self.clock.now_ns())
        self.venues[runner.venue].adapter.cancel(order)
        return True

    def request_amend(
        self, runner: StrategyRunner, order: Order, price: Decimal | None, qty: Decimal | None
    ) -> bool:
        # the engine reads the order's slots directly: this runs on the tick-to-order path
        if not isinstance(order, Order) or runner.open_orders.get(order._client_id) is not order:
            self.refuse_amend(runner, order, Rejection(Reject.ORDER_NOT_OPEN, "not an open order of this strategy"))
            return False
        if runner.state != "running":
            self.refuse_amend(runner, order, Rejection(Reject.STRATEGY_NOT_RUNNING, f"strategy is {runner.state}"))
            return False
        venue = self.venues[runner.venue]
        adapter = venue.adapter
        if not adapter.capabilities.amend:
            self.refuse_amend(
                runner, order, Rejection(Reject.ORDER_TYPE_NOT_SUPPORTED, f"venue {venue.name!r} cannot amend orders")
            )
            return False
        status = order._status
        if status is not OrderStatus.NEW and status is not OrderStatus.PARTIALLY_FILLED:
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
            order._type, order._tif, order._post_only, order._client_id, order,
        )
        rejection = runner.gate.check(request)
        if rejection is not None:
            self.refuse_amend(runner, order, rejection)
            return False
        order.request_replace(price, qty, self.clock.now_ns())
        adapter.amend(order, price, qty)
        return True

    # ---- session ---------------------------------------------------------------------------------
    def on_session_change(self, old: SessionState, new: SessionState) -> None:
        """Tell venues first (the embedded venue expires DAY orders at the close), then strategies."""
        self.session = new
        self.sessions_seen.append(new.phase.value)
        log.info("session %s -> %s (%s)", old.phase.value, new.phase.value, new.trading_day)
        for venue in self.venues.values():
            venue.adapter.on_session(new)
        for runner in list(self.runners.values()):
            self.call_rare(runner, "on_session_change", old=old.phase.value, new=new.phase.value)

    def call_rare(self, runner: StrategyRunner, hook: str, **kwargs: Any) -> None:
        """Call a rare hook (start, session change, stop) through pluggy, contained."""
        if runner.state != "running" or runner.pm is None:
            return
        caller = getattr(runner.pm.hook, hook)
        if not caller.get_hookimpls():
            return
        try:
            caller(ctx=runner.ctx, **kwargs)
        except Exception:
            self.strategy_failed(runner, hook)
        if self._deferred:
            self.drain()

    # ---- containment ------------------------------------------------------------------------
    def strategy_failed(self, runner: StrategyRunner, hook: str, why: str | None = None) -> None:
        """A hook raised (or ``why`` says what else went wrong): stop that strategy, cancel its
        orders, log the traceback once."""
        if runner.state == "failed":
            return
        runner.state = "failed"
        if why is None:
            runner.failure = f"{hook} raised {traceback.format_exc(limit=-1).strip().splitlines()[-1]}"
            log.error("strategy %s failed in %s; its orders are being cancelled, the others keep trading",
                      runner.name, hook, exc_info=True)
        else:
            runner.failure = f"{hook}: {why}"
            log.error("strategy %s failed in %s: %s; its orders are being cancelled", runner.name, hook, why)
        self._rebuild_dispatch()
        self.cancel_strategy_orders(runner)

    def cancel_strategy_orders(self, runner: StrategyRunner) -> int:
        sent = 0
        for order in list(runner.open_orders.values()):
            if order.status is not OrderStatus.PENDING_CANCEL and self.request_cancel(runner, order):
                sent += 1
        return sent

    def stop_strategy(self, runner: StrategyRunner) -> None:
        """Normal stop: on_stop, then cancel what is still open."""
        self.call_rare(runner, "on_stop")
        if runner.state == "running":
            runner.state = "stopped"
        self._rebuild_dispatch()
        self.cancel_strategy_orders(runner)

    def drain(self) -> None:
        """Deliver queued on_order_update calls (local rejects) after the hook that caused them."""
        deferred = self._deferred
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
            if runner.state == "running" and runner.on_order_update is not None:
                try:
                    runner.on_order_update(runner.ctx, order)
                except Exception:
                    self.strategy_failed(runner, "on_order_update")

    def _anomaly(self, kind: str, sample: str) -> None:
        """Something a venue sent that cannot be applied: counted, logged once per kind, kept."""
        self.anomalies[kind] += 1
        if len(self.anomaly_samples) < ANOMALY_SAMPLES:
            self.anomaly_samples.append(sample)
        if self.anomalies[kind] == 1:
            log.error("%s (further ones are counted, see the report)", sample)
        else:
            log.debug(sample)

    # ---- read side ---------------------------------------------------------------------------
    def open_order_count(self) -> int:
        return sum(len(r.open_orders) for r in self.runners.values())

    def strategy_summary(self, runner: StrategyRunner) -> dict[str, Any]:
        unrealized = ZERO
        for symbol, position in runner.positions.items():
            unrealized += position.unrealized_pnl(self.last_price(runner.venue, symbol))
        return {
            "orders": runner.orders_submitted,
            "fills": runner.fills,
            "rejects": runner.rejects,
            "position": {s: str(p.qty) for s, p in sorted(runner.positions.items())},
            "realized_pnl": str(runner.realized_pnl),
            "unrealized_pnl": str(unrealized.quantize(Decimal("0.01"))),
            "state": runner.state,
            **({"failure": runner.failure} if runner.failure else {}),
        }
