"""Restart: rebuild the engine's state from the journal, then make it agree with the venues.

:func:`restore` runs before any venue connects: account, settlement ledger and positions from the
last snapshot plus the journaled fills after it (replayed through the same ``apply_fill`` code
that applied them), open orders (marked ``unknown``, exactly as after a dropped connection), client
id reservations, kill-switch and MMP state. A fill applied before is dropped by the journal's
unique key on venue + exec id.

:func:`recover_venue` runs once the venue is connected and before any strategy hears anything. The
venue is the truth: missed fills are applied once (the journal's unique exec id drops the rest),
orders the journal thinks open are given the venue's state, orders the venue works under one of
our strategies' client ids that the journal never saw are adopted or cancelled (config
``journal.on_restart``), and orders placed by someone else are left alone and reported.
Until it is done the venue refuses orders with 7015.

The reconciliation itself (:func:`ask_venue` then :func:`reconcile_venue`) is the same one
:meth:`RecoveryMixin.reconcile` runs after every reconnect, where orders are refused with 9001
meanwhile; a derivatives account then takes the venue's own figures (:meth:`RecoveryMixin.sync_account`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anyio

from engine.clientids import format_client_id, parse_client_id, strategy_of_other_epoch
from engine.clock import NS_PER_S
from engine.errors import StartupError
from engine.journal import Journal
from engine.model import TERMINAL_STATUSES, Fill, Order, OrderStatus, OrderType, VenueOrder
from engine.portfolio import Position
from engine.rejects import Reject
from engine.risk.derivatives import DerivativesAccount
from engine.runtime.connectivity import CONNECTED, RECONCILING

if TYPE_CHECKING:
    from engine.runtime.core import Runtime
    from engine.runtime.runner import StrategyRunner
    from engine.runtime.venues import VenueState

log = logging.getLogger("engine.recovery")
# the reconnect's reconciliation and the account sync log as the rest of the runtime does
runtime_log = logging.getLogger("engine")

# a venue that cannot answer reconciliation after a reconnect is asked again after 1, 2, 4 ... 30 s
RECONCILE_RETRY_MAX_S = 30
# a derivatives account that differs from the venue asks again this many engine seconds later and
# takes the venue's figures only if the same difference is still there (a fill notice in flight is not one)
ACCOUNT_CONFIRM_S = 2


@dataclass
class Restored:
    """What :func:`restore` found, for the log and the report."""

    snapshot_day: dt.date | None = None
    fills_replayed: int = 0
    open_orders: int = 0
    strategy_states: dict[str, Any] = field(default_factory=dict)
    kill_switch: str = "active"
    mmp_frozen: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.snapshot_day is None and not self.fills_replayed and not self.open_orders:
            return "new account"
        parts = [f"snapshot of {self.snapshot_day}" if self.snapshot_day else "no snapshot",
                 f"{self.fills_replayed} fills replayed", f"{self.open_orders} open orders to reconcile"]
        if self.kill_switch != "active":
            parts.append(f"kill switch {self.kill_switch}")
        if self.mmp_frozen:
            parts.append(f"MMP frozen: {', '.join(self.mmp_frozen)}")
        return ", ".join(parts)


def restore(runtime: Runtime, journal: Journal, today: dt.date) -> Restored:
    """Rebuild the runtime's state from ``journal`` for a run on trading day ``today``."""
    restored = Restored()
    runtime.journal = journal
    journal.engine_clock = runtime.clock.now_ns
    snapshot = journal.last_snapshot()
    last_seq = 0
    day: dt.date | None = None
    if snapshot is not None:
        last_seq, day, state = snapshot
        restored.snapshot_day = day
        for name, saved in state["venues"].items():
            venue = runtime.venues.get(name)
            if venue is not None:
                kept = saved.get("kind", "cash")  # snapshots from before account kinds are cash accounts
                if kept != venue.account.kind:
                    raise StartupError(
                        f"venue {name}: the journal holds a {kept} account, the config a {venue.account.kind} "
                        "one; start a new account for it (--fresh-account, or journal.fresh_account: true)")
                venue.account.restore(saved)
        for name, saved in state["strategies"].items():
            runner = runtime.runners.get(name)
            if runner is None:
                runtime.retired_positions[name] = saved
                continue
            runner.positions = {s: Position.restored(s, p) for s, p in saved["positions"].items()}
            runner.pnl_day_start = Decimal(saved["pnl_day_start"])
        runtime.pnl_day_start = Decimal(state["pnl_day_start"])
        if state.get("rolled_day"):
            runtime.rolled_day = dt.date.fromisoformat(state["rolled_day"])
        if day == today:
            runtime.trading_day = today  # the day is resumed: its start PnL stays what it was
    for journaled in journal.fills_after(last_seq):
        if not journaled.applied:
            continue
        fill = journaled.fill
        venue = runtime.venues.get(fill.venue)
        if venue is not None:
            if day is not None and journaled.trading_day > day:
                venue.account.roll(journaled.trading_day)
            venue.account.apply_fill(fill, journaled.trading_day)
        runner = runtime.runners.get(journaled.strategy)
        if runner is not None:
            runner.position(fill.symbol).apply_fill(fill.side, fill.qty, fill.price, fill.fee)
        else:
            runtime.retired_fill(journaled.strategy, fill)
        restored.fills_replayed += 1
    for venue in runtime.venues.values():
        venue.account.roll(today)  # what settled while the engine was down is usable today
    runtime.client_epoch = journal.client_epoch  # before any id is parsed or handed out
    _restore_orders(runtime, journal, restored)
    for runner in runtime.runners.values():
        runner.client_seq = runner.client_reserved = journal.client_ids_reserved(runner.name)
    controls = journal.latest_controls()
    saved_switch = controls.get(("kill_switch", "account"))
    if saved_switch is not None:
        runtime.kill_switch.restore(saved_switch[1], today)
        restored.kill_switch = runtime.kill_switch.state.value
    now = runtime.clock.now_ns()
    for runner in runtime.runners.values():
        saved_mmp = controls.get(("mmp", runner.name))
        if saved_mmp is not None and runner.mmp is not None:
            runner.mmp.restore(saved_mmp[1], now)
            if runner.mmp.is_frozen(now):
                restored.mmp_frozen.append(runner.name)
    restored.strategy_states = journal.strategy_states()
    return restored


def _restore_orders(runtime: Runtime, journal: Journal, restored: Restored) -> None:
    """Journal-open orders come back ``unknown``: only the venue can say what they are now."""
    now = runtime.clock.now_ns()
    for order in journal.open_orders():
        venue = runtime.venues.get(order.venue)
        runner = runtime.runners.get(order.strategy)
        if venue is None:
            log.error("journal: open order %s is on venue %s, which this config does not run; it is not "
                      "reconciled", order.client_id, order.venue)
            continue
        order.restore(OrderStatus.UNKNOWN, order.cum_qty, order._notional, order.venue_order_id, now,
                      order.reject_code, order.reject_reason)
        venue.orders[order.client_id] = order
        if runner is None:
            venue.orphans[order.client_id] = order  # its strategy is gone: cancelled at reconciliation
        else:
            runner.open_orders[order.client_id] = order
            venue.account.track(order)
        restored.open_orders += 1


def strategy_of(runtime: Runtime, venue: str, client_id: str) -> StrategyRunner | None:
    """The strategy of this venue that this journal handed ``client_id`` to
    (``<name>-<epoch>-<n>`` with this journal's epoch); None for any other id, an earlier
    journal's included."""
    parsed = parse_client_id(client_id, runtime.client_epoch)
    if parsed is None:
        return None
    runner = runtime.runners.get(parsed[0])
    return runner if runner is not None and runner.venue == venue else None


def earlier_journal(runtime: Runtime, client_id: str) -> str | None:
    """The strategy whose id ``client_id`` looks like when an earlier journal (another epoch)
    handed it out: that journal's history, never this one's (see :func:`reconcile_venue`)."""
    return strategy_of_other_epoch(client_id, runtime.client_epoch, runtime.runners)


def _order_from_venue(seen: VenueOrder, runner: StrategyRunner, now: int, cum_qty: Decimal = Decimal(0),
                      notional: Decimal = Decimal(0)) -> Order:
    """An engine order for one the venue works under our client id but the journal never saw
    (``cum_qty``/``notional``: its fills the engine applied before)."""
    order = Order(
        seen.client_id, runner.name, seen.venue, seen.symbol, seen.side, seen.qty, seen.price,
        OrderType.LIMIT if seen.price is not None else OrderType.MARKET, ts=now, algo_id=runner.algo_id,
    )
    if seen.status in TERMINAL_STATUSES and cum_qty == seen.cum_qty:
        status = seen.status  # finished, and every fill of it applied: nothing left to learn
    else:
        status = OrderStatus.UNKNOWN if cum_qty < seen.qty else OrderStatus.FILLED
    order.restore(status, cum_qty, notional, seen.venue_order_id, now)
    return order


async def probe_unjournaled(runtime: Runtime, venue: VenueState, answer: VenueAnswer) -> None:
    """Orders sent in the last flush window before a crash have no journal row; one that filled is
    found by its fills, one still working by the open list, but one that ended with nothing filled
    (an IOC that missed, a venue reject) only by asking: each strategy's client ids are sequential,
    so ask for the ids after the journal's last until PROBE_MISSES in a row are unknown. A run that
    started after a crash took its ids from a new block, so each later block is asked from its first
    id the same way (the ids between were never used)."""
    journal = runtime.journal
    if journal is None:
        return
    for runner in runtime.runners_on(venue.name):
        last = journal.last_client_seq(runner.name)
        number = last
        for start in [last + 1, *journal.client_id_blocks_after(runner.name, last + 1)]:
            if start <= number:
                continue  # the block before ran into this one: asked already
            number = start - 1
            misses = 0
            while misses < PROBE_MISSES and number < runner.client_reserved:
                number += 1
                client_id = format_client_id(runner.name, runtime.client_epoch, number)
                if client_id in venue.orders or client_id in answer.listed or answer.looked_up.get(client_id):
                    misses = 0
                    continue
                seen = await venue.adapter.query_order(client_id)
                if seen is None:
                    misses += 1
                    continue
                misses = 0
                answer.looked_up[client_id] = seen
                answer.probed.add(client_id)


# unknown client ids in a row after which restart stops asking the venue for later ones
PROBE_MISSES = 3
# states in which an order the venue has acknowledged may have ended without the engine hearing
_MAYBE_AT_VENUE = (OrderStatus.UNKNOWN, OrderStatus.PENDING_CANCEL)


@dataclass
class VenueAnswer:
    """What a venue said when asked, gathered before anything is changed: the engine's state is
    only touched once every query has answered (a drop in the middle changes nothing)."""

    listed: dict[str, VenueOrder]
    fills: list[Fill]  # the ones not applied yet
    looked_up: dict[str, VenueOrder | None]
    known: list[Fill] = field(default_factory=list)  # sent again: the engine or its journal has them
    probed: set[str] = field(default_factory=set)  # our client ids found by asking past the journal's last

    def applied_before(self, client_id: str) -> tuple[Decimal, Decimal]:
        """Quantity and notional of an order's fills applied before (an order whose journal row a
        crash lost, while its fills, durable first, were kept)."""
        qty = notional = Decimal(0)
        for fill in self.known:
            if fill.client_id == client_id:
                qty += fill.qty
                notional += fill.qty * fill.price
        return qty, notional

    def order(self, client_id: str) -> VenueOrder | None:
        seen = self.listed.pop(client_id, None)
        return seen if seen is not None else self.looked_up.get(client_id)


async def ask_venue(runtime: Runtime, venue: VenueState, since_ns: int) -> VenueAnswer:
    """Open orders, fills since ``since_ns``, and each order the engine needs whose state the open
    list does not give (finished ones, and orders with our client ids the engine never saw)."""
    adapter = venue.adapter
    listed = {vo.client_id: vo for vo in await adapter.query_open_orders()}
    answered = sorted(await adapter.query_fills(since_ns), key=lambda f: f.ts)
    # the query reaches back a little before the journal's last word: what it has is not news
    journal = runtime.journal
    fills: list[Fill] = []
    known: list[Fill] = []
    for fill in answered:
        seen_before = fill.exec_id in venue.exec_ids or (journal is not None and journal.same_fill(fill))
        (known if seen_before else fills).append(fill)
    wanted = {f.client_id for f in answered if f.client_id not in venue.orders
              and strategy_of(runtime, venue.name, f.client_id) is not None}
    for runner in runtime.runners_on(venue.name):
        wanted.update(runner.open_orders)
    wanted.update(venue.orphans)
    looked_up = {cid: await adapter.query_order(cid) for cid in sorted(wanted - listed.keys())}
    return VenueAnswer(listed, fills, looked_up, known)


def reconcile_venue(runtime: Runtime, venue: VenueState, answer: VenueAnswer, unknown_orders: str) -> list[Order]:
    """Make the engine agree with what the venue answered; the venue is the truth. One mechanism for
    a restart and for every reconnect:

    - an order the venue works (or filled) under one of our strategies' client ids that the engine
      never recorded is adopted into its strategy, or (``unknown_orders: cancel``) handed to the
      engine to cancel without the strategy ever seeing it;
    - missed fills are applied once (an exec id already applied is dropped);
    - every open order gets the venue's state (one the venue no longer knows: never received if it
      was never acknowledged, else finished while the engine could not hear);
    - orders placed by someone else are left alone and reported;
    - so are orders and fills under an earlier journal's ids (our strategies' names, another
      epoch: ``--fresh-account``, or another engine with its own journal on the same account):
      they are not this journal's account, so they are neither adopted nor applied, and the
      engine does not cancel what may be another engine's working order.

    Returns the orders adopted into their strategies."""
    now = runtime.clock.now_ns()
    venue.n_duplicate_fills += len(answer.known)
    unknown_ids = {f.client_id for f in (*answer.fills, *answer.known) if f.client_id not in venue.orders}
    unknown_ids |= answer.probed
    unknown_ids |= {cid for cid in answer.listed if cid not in venue.orders}
    found: list[tuple[StrategyRunner, Order]] = []
    for client_id in sorted(unknown_ids):
        runner = strategy_of(runtime, venue.name, client_id)
        seen = answer.listed.get(client_id) or answer.looked_up.get(client_id)
        if runner is None or seen is None:
            continue
        order = _order_from_venue(seen, runner, now, *answer.applied_before(client_id))
        venue.orders[client_id] = order
        if order.is_terminal:  # filled before the crash; only its journal row was lost
            runtime.order_changed(venue, order)
            continue
        runner.open_orders[client_id] = order
        venue.account.track(order)
        log.warning("venue %s works %s (%s %s %s @ %s, %s) that this engine has no record of", venue.name,
                    client_id, seen.side.value, seen.qty, seen.symbol, seen.price, seen.status.value)
        if unknown_orders == "cancel":
            disown(venue, runner, order)  # before its fills and state: the strategy never sees the order
        else:
            found.append((runner, order))
    applied_before = venue.n_fill
    for fill in answer.fills:
        if fill.client_id not in venue.orders and earlier_journal(runtime, fill.client_id) is not None:
            runtime.anomaly("venue_earlier_journal", f"venue {venue.name}: a fill of an earlier journal's "
                                                      f"order, not this account's; not applied: {fill}")
            continue
        order = venue.orders.get(fill.client_id)
        if order is not None and order.status is OrderStatus.UNKNOWN:
            order.transition(OrderStatus.NEW, now)  # a fill proves the venue had it
        runtime.on_fill(fill)  # already-applied exec ids are dropped
    missed = venue.n_fill - applied_before
    if missed:
        log.warning("venue %s: %d fills happened while the engine could not hear; applied once", venue.name, missed)
    for runner in runtime.runners_on(venue.name):
        for order in list(runner.open_orders.values()):
            _settle(runtime, venue, order, answer.order(order.client_id), runner)
    adopted: list[Order] = []
    for runner, order in found:
        if not order.is_terminal:
            log.warning("venue %s: %s adopted into strategy %s", venue.name, order.client_id, runner.name)
            adopted.append(order)
    for client_id, order in list(venue.orphans.items()):
        _settle(runtime, venue, order, answer.order(client_id), None)
    for seen in answer.listed.values():  # what is left was placed by someone else (or a strategy long gone)
        if earlier_journal(runtime, seen.client_id) is not None:
            runtime.anomaly("venue_earlier_journal", f"venue {venue.name} works an order of an earlier journal "
                                                      f"(another client-id epoch); left alone: {seen}")
            continue
        runtime.anomaly("venue_order_unknown", f"venue {venue.name} works an order this engine did not place; "
                                                f"left alone: {seen}")
    return adopted


def disown(venue: VenueState, runner: StrategyRunner, order: Order) -> None:
    """Not the strategy's to see: the engine cancels it, retrying until the venue takes cancels
    (PSX refuses them while closed, which is when most restarts happen)."""
    runner.open_orders.pop(order.client_id, None)
    venue.orphans[order.client_id] = order
    venue.account.track(order)


async def recover_venue(
    runtime: Runtime, venue: VenueState, since_ns: int, unknown_orders: str, open_orders: str
) -> None:
    """Reconcile one venue at start (see the module docstring). Raises when the venue cannot
    answer: trading on an account the engine cannot reconcile is not safe."""
    answer = await ask_venue(runtime, venue, since_ns)
    await probe_unjournaled(runtime, venue, answer)
    adopted = reconcile_venue(runtime, venue, answer, unknown_orders)
    if open_orders == "cancel":
        for runner in runtime.runners_on(venue.name):
            for order in [o for o in runner.open_orders.values() if o not in adopted]:
                disown(venue, runner, order)
    runtime.cancel_orphans(venue)
    if runtime.journal is not None:
        runtime.journal.commit(runtime.clock.now_ns())


def _settle(runtime: Runtime, venue: VenueState, order: Order, seen: VenueOrder | None,
            runner: StrategyRunner | None) -> None:
    """Give an order the venue's state (after its fills were applied), and tell its strategy; an
    order the engine is cancelling for itself (``runner`` None, an orphan) is only recorded. Not
    known to the venue: never received if it was never acknowledged, else it ended while the engine
    could not hear (the venue forgets old orders)."""
    now = runtime.clock.now_ns()
    if order.is_terminal:  # its fills ended it: already told
        if runner is None:
            venue.orphans.pop(order.client_id, None)
        return
    if seen is None:
        if order.status not in _MAYBE_AT_VENUE and order.status is not OrderStatus.PENDING_NEW:
            return
        if order.venue_order_id:
            order.transition(OrderStatus.CANCELLED, now)
            order.set_reason("the venue no longer knows this order: it ended while the engine could not hear")
        else:
            order.reject(Reject.BACKEND_CONNECTIVITY, "the venue never received this order (connection lost)", now)
            log.warning("%s never reached venue %s", order.client_id, venue.name)
            if runner is not None:
                runtime.count_reject(runner, Reject.BACKEND_CONNECTIVITY)
    elif seen.status is OrderStatus.UNKNOWN:
        # the venue may have it and has not said (a request sent, its answer lost): kept working and
        # unknown until the venue's report, never settled "never received" and so never resubmitted
        if order.status is OrderStatus.UNKNOWN or not order.can_transition(OrderStatus.UNKNOWN):
            return
        order.transition(OrderStatus.UNKNOWN, now)
    elif seen.status is OrderStatus.FILLED:
        runtime.anomaly("fill_missing", f"venue reports {order.client_id} filled but its fills never came")
        return
    elif seen.status is OrderStatus.REJECTED:
        order.reject(Reject.EXCHANGE_REJECT, "rejected at the venue while the engine could not hear", now)
    elif seen.status in TERMINAL_STATUSES:
        if not order.can_transition(seen.status):
            return
        order.transition(seen.status, now)
        order.set_reason(f"{seen.status.value} at the venue while the engine could not hear")
    elif order.status is OrderStatus.UNKNOWN or order.status is OrderStatus.PENDING_NEW:
        order.set_venue_order_id(seen.venue_order_id)
        order.transition(order.live_status(), now)
    else:
        return
    runtime.order_changed(venue, order)
    if runner is None:
        if order.is_terminal:
            venue.orphans.pop(order.client_id, None)
        return
    if order.is_terminal:
        runtime.order_finished(runner, order)
    runtime.notify_order(runner, order)


class RecoveryMixin:
    """Reconciliation after a reconnect and the derivatives account's sync, of
    :class:`~engine.runtime.Runtime`."""

    async def reconcile(self, venue: VenueState) -> None:
        """After a reconnect: the same reconciliation as a restart (:func:`reconcile_venue`), then the
        cancels of what was open at the drop (``on_reconnect: cancel``) and of what the engine
        decided while the venue was away; ``connected`` is told once their final states are. A
        venue that cannot answer is asked again, backing off, while orders stay refused (9001)."""
        try:
            answer = await ask_venue(self, venue, venue.dropped_at_ns)
        except Exception as exc:
            venue.reconcile_failures += 1
            delay_s = min(RECONCILE_RETRY_MAX_S, 2 ** min(venue.reconcile_failures - 1, 5))
            runtime_log.error("reconciliation with venue %s failed (%s: %s); orders stay refused (9001), asking "
                              "again in %d s", venue.name, type(exc).__name__, exc, delay_s)
            if venue.status is RECONCILING:
                self.clock.call_later(delay_s * NS_PER_S, self._reconcile_again, venue)
            return
        if venue.status is not RECONCILING:
            return  # dropped again meanwhile; the next reconnect reconciles
        venue.reconcile_failures = 0
        reconcile_venue(self, venue, answer, self.unknown_orders)  # an adopted order is told like any other
        await self.sync_account(venue)  # missed fills applied first: then the venue's account figures
        self.cancel_orphans(venue)
        to_cancel = venue.at_drop if venue.on_reconnect == "cancel" else {}
        # plus the cancels the engine itself decided while the venue was away (kill switch, MMP, a failure)
        to_cancel.update(venue.cancel_when_back)
        venue.at_drop = {}
        venue.cancel_when_back = {}
        for order in to_cancel.values():
            runner = self.runners[order.strategy]
            if order.is_terminal or runner.open_orders.get(order.client_id) is not order:
                continue
            venue.awaiting_cancels.add(order.client_id)
            sent = self.cancel_order(runner, order, by_engine=True, allow_reconciling=True)
            # a cancel paced by the venue's budget is still awaited: "connected" waits for it
            if not sent and order.client_id not in self.cancel_retries and order.status is not (
                OrderStatus.PENDING_CANCEL
            ):
                venue.awaiting_cancels.discard(order.client_id)
        if self.journal is not None:
            self.journal.commit(self.clock.now_ns())
        if not venue.awaiting_cancels:
            self.venue_ready(venue)
        if self.deferred:
            self.drain()

    async def sync_account(self, venue: VenueState, confirming: bool = False) -> None:
        """A derivatives account takes the venue's equity, margins and positions
        (``OrderEntryAdapter.query_account``): each difference is logged and counted as the anomaly
        ``account_mismatch``, and the venue's figure wins. At connect, after every reconnect's
        reconciliation and every ``account.sync_s``. A venue that cannot answer leaves the engine's
        own figures in force (logged), since refusing orders would not make them truer."""
        account = venue.account
        if not isinstance(account, DerivativesAccount) or not account.venue_reports:
            return
        if account.awaiting_confirmation and not confirming:
            return  # a difference waits for its confirming answer: only that one may take it
        fills_before = venue.n_fill
        try:
            figures = await venue.adapter.query_account(account.currency)
        except NotImplementedError as exc:
            account.venue_reports = False  # said once: the paper venue has no account figures to ask
            runtime_log.warning("venue %s: %s; the derivatives account keeps the engine's own figures", venue.name, exc)
            return
        except Exception as exc:
            runtime_log.warning("venue %s: account figures not available (%s: %s); the engine's own stay in force",
                                venue.name, type(exc).__name__, exc)
            return
        if venue.n_fill != fills_before:
            # a fill arrived while the venue answered: its figures may or may not count it, so they
            # are not compared now (the next sync does)
            runtime_log.info("venue %s: a fill arrived during the account query; compared at the next sync", venue.name)
            return
        for sentence in account.reconcile(figures):
            self.anomaly("account_mismatch", f"venue {venue.name}: {sentence}")
        if account.awaiting_confirmation:  # a difference seen once: asked again soon, taken if it stays
            runtime_log.info("venue %s: the account differs from the venue's; asking again in %d s", venue.name,
                             ACCOUNT_CONFIRM_S)
            if self.clock.simulated:
                self.clock.call_later(ACCOUNT_CONFIRM_S * NS_PER_S, self._confirm_account, venue)
            else:
                # real seconds, not the (maybe scaled) engine clock's: a fill notice still on its way
                # takes real time to arrive, however fast the session clock runs (--speed 60 made it
                # 33 ms, and a loaded machine counted an in-flight fill as a mismatch)
                self.spawn(lambda: self._confirm_account_later(venue))
            return
        runtime_log.info("venue %s account: equity %s %s, initial margin %s, available %s", venue.name,
                         account.equity().quantize(Decimal("0.01")), account.currency,
                         account.initial_margin().quantize(Decimal("0.01")),
                         account.available().quantize(Decimal("0.01")))

    def _confirm_account(self, venue: VenueState) -> None:
        if venue.status is CONNECTED:
            self.spawn(lambda: self.sync_account(venue, confirming=True))
        elif isinstance(venue.account, DerivativesAccount):
            venue.account.drop_unconfirmed()  # dropped meanwhile: the reconnect's sync compares afresh

    async def _confirm_account_later(self, venue: VenueState) -> None:
        await anyio.sleep(ACCOUNT_CONFIRM_S)
        self._confirm_account(venue)

    def start_account_sync(self, venue: VenueState) -> None:
        """Ask the venue's account figures every ``account.sync_s`` while the venue is connected."""
        account = venue.account
        if isinstance(account, DerivativesAccount) and account.venue_reports and account.config.sync_s is not None:
            self.clock.call_later(int(account.config.sync_s * NS_PER_S), self._sync_account_again, venue)

    def _sync_account_again(self, venue: VenueState) -> None:
        if venue.status is CONNECTED:
            self.spawn(lambda: self.sync_account(venue))
        self.start_account_sync(venue)

    def _reconcile_again(self, venue: VenueState) -> None:
        if venue.status is RECONCILING:
            self.spawn(lambda: self.reconcile(venue))
