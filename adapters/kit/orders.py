"""One order tracker for every adapter: each order state and each fill reaches the engine once.

A venue may repeat itself (a webhook delivered twice, the same fill on two streams, an answer and a
notification saying the same thing), say things out of order (a final state before its fills), or
fall silent in the middle of an order (a dropped connection, a lost answer). The engine must still
hear a clean story: NEW at most once and before any fill, each fill once, one final state and
nothing after it but a late fill. :class:`OrderTracker` keeps that story for one adapter:

- the map client id <-> venue order id (:meth:`~OrderTracker.find`, :meth:`~OrderTracker.bind`);
- each order's progression (:class:`TrackedOrder`): :meth:`~OrderTracker.ack` emits NEW once and
  never after a final state; :meth:`~OrderTracker.finish` emits the final state once (FILLED is
  never an update of its own: the fills have already told it); a final state that arrives before
  its fills is held until they are booked (:meth:`~OrderTracker.finish_after_fills`);
- answers to our own requests (a cancel refused, a replace taken) repeat the order's current state
  with a code or new terms (:meth:`~OrderTracker.answer`): they never move it;
- fills de-duplicated by the venue's fill id in bounded memory (:class:`RecentIds`), booked against
  the order's quantity: a fill beyond it is bad input, logged as an error and counted
  (``overfills``), and still delivered so the engine records it (nothing lost);
- "unknown" for an order whose outcome was lost (:meth:`~OrderTracker.mark_unknown`), cleared when
  the venue's word comes back (:meth:`~OrderTracker.mark_known`);
- release of finished orders (:meth:`~OrderTracker.release`).

Everything goes out through the engine's :class:`~engine.venue.VenueEvents` sink, so an adapter
does not call ``on_order_update`` / ``on_fill`` itself for its own orders.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Generic, Protocol, TypeVar

from engine.model import TERMINAL_STATUSES, Fill, Order, OrderStatus, OrderUpdate, Side

__all__ = ["MUTED", "HeldFinal", "OrderEvents", "OrderTracker", "RecentIds", "TrackedOrder"]

_log = logging.getLogger("engine.adapters.orders")

ZERO = Decimal(0)
# Order states as module constants: every order's every state passes here, and in Python 3.11
# ``OrderStatus.NEW`` costs several times a plain attribute, per lookup
_PENDING_NEW = OrderStatus.PENDING_NEW
_NEW = OrderStatus.NEW
_PARTIALLY_FILLED = OrderStatus.PARTIALLY_FILLED
_FILLED = OrderStatus.FILLED
_CANCELLED = OrderStatus.CANCELLED
#: fill ids remembered for de-duplication: far more than any venue repeats a fill after
FILL_MEMORY = 65_536


class RecentIds:
    """The last ``limit`` ids seen, for de-duplication in constant memory: an id older than that is
    forgotten (a venue that repeats a fill after 65,536 newer ones is caught by the engine's own
    exec-id check and its journal)."""

    __slots__ = ("_ids", "_order", "limit")

    def __init__(self, limit: int = FILL_MEMORY) -> None:
        if limit < 1:
            raise ValueError(f"RecentIds needs a limit of at least 1, got {limit}")
        self._ids: set[str] = set()
        self._order: deque[str] = deque()
        self.limit = limit

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, item: str) -> bool:
        """Remember ``item``; True if it is new."""
        if item in self._ids:
            return False
        self._ids.add(item)
        self._order.append(item)
        if len(self._order) > self.limit:
            self._ids.discard(self._order.popleft())
        return True


class HeldFinal:
    """A final state the venue reported before all the fills it counts were booked here."""

    __slots__ = ("status", "code", "reason", "venue_filled", "since")

    def __init__(self, status: OrderStatus, code: int | None, reason: str, venue_filled: Decimal,
                 since: float) -> None:
        self.status = status
        self.code = code
        self.reason = reason
        self.venue_filled = venue_filled
        self.since = since


class TrackedOrder:
    """One of our orders and what the engine has been told about it. Adapters subclass it to keep
    their own per-order needs (a request lock, a pending edit) beside it.

    ``final`` is None until the order is finished, then its final state for good; ``cum_qty`` is
    what was booked here, never more than ``qty``."""

    __slots__ = ("client_id", "symbol", "side", "qty", "price", "venue_order_id", "status", "cum_qty", "acked",
                 "final", "unknown", "held")

    def __init__(self, client_id: str, symbol: str, side: Side, qty: Decimal, price: Decimal | None = None,
                 venue_order_id: str = "") -> None:
        self.client_id = client_id
        self.symbol = symbol
        self.side = side
        self.qty = qty
        self.price = price
        self.venue_order_id = venue_order_id
        self.status = _PENDING_NEW  # the furthest state known (told or not)
        self.cum_qty = ZERO
        self.acked = False  # NEW told (or known to the engine by reconciliation)
        self.final: OrderStatus | None = None
        self.unknown = False  # the outcome of a request was lost: only the venue's word settles it
        self.held: HeldFinal | None = None

    @classmethod
    def of(cls, order: Order) -> TrackedOrder:
        return cls(order.client_id, order.symbol, order.side, order.qty, order.price, order.venue_order_id)

    @property
    def terminal(self) -> bool:
        return self.final is not None

    @property
    def live(self) -> OrderStatus:
        """The working state the fills so far make: what an answer that changes nothing repeats."""
        return _PARTIALLY_FILLED if self.cum_qty else _NEW


class OrderEvents(Protocol):
    """The part of :class:`engine.venue.VenueEvents` the tracker speaks: the engine's sink, or a
    stand-in that holds an operation's events until a venue's ledger has them."""

    def on_order_update(self, update: OrderUpdate) -> None: ...
    def on_fill(self, fill: Fill) -> None: ...


class _Muted:
    """A sink that hears nothing: a venue whose link is down tracks states but tells no one."""

    def on_order_update(self, update: OrderUpdate) -> None:
        return None

    def on_fill(self, fill: Fill) -> None:
        return None


#: what :meth:`OrderTracker.delivering_to` takes while nothing may reach the engine
MUTED = _Muted()

R = TypeVar("R", bound=TrackedOrder)


class OrderTracker(Generic[R]):
    """Our orders at one venue, and the one place their states and fills are emitted from.

    ``sink`` is the engine's :class:`~engine.venue.VenueEvents` (or anything with ``on_order_update``
    and ``on_fill``); ``now_ns`` stamps the updates (the engine clock). ``defer``, when given, runs a
    callable after the current call returns (``submit``/``cancel``/``amend`` run inside a strategy's
    hook, and no hook may run inside another): emissions asked for with ``later=True`` go through it.
    """

    def __init__(self, venue: str, sink: OrderEvents, now_ns: Callable[[], int], *,
                 defer: Callable[[Callable[[], None]], object] | None = None, fill_memory: int = FILL_MEMORY,
                 counts: Counter[str] | None = None, logger: logging.Logger = _log) -> None:
        self.venue = venue
        self.sink: OrderEvents = sink
        self._now_ns = now_ns
        self._defer = defer
        self._log = logger
        self._orders: dict[str, R] = {}
        self._open: dict[str, R] = {}  # the ones not final yet: what a poll or a sweep looks at
        self._by_venue_id: dict[str, R] = {}
        self._fill_ids = RecentIds(fill_memory)
        #: ``duplicate_fills``, ``overfills``, ``late_fills``, ``orders_unknown``: the adapter's own
        #: counter when it passes one, so they show in its ``stats()`` beside its other counters
        self.counts: Counter[str] = counts if counts is not None else Counter()

    # ---- the map -------------------------------------------------------------------------
    def add(self, rec: R) -> R:
        """Track ``rec`` (replacing a record of the same client id)."""
        self._orders[rec.client_id] = rec
        if rec.final is None:
            self._open[rec.client_id] = rec
        else:
            self._open.pop(rec.client_id, None)
        if rec.venue_order_id:
            self._by_venue_id[rec.venue_order_id] = rec
        return rec

    def get(self, client_id: str) -> R | None:
        return self._orders.get(client_id)

    def __contains__(self, client_id: object) -> bool:
        return client_id in self._orders

    def __len__(self) -> int:
        return len(self._orders)

    def records(self) -> list[R]:
        """Every tracked order, in the order they were added (a copy: safe to change the tracker
        while walking it)."""
        return list(self._orders.values())

    def open_records(self) -> list[R]:
        """The orders not final yet (a copy)."""
        return list(self._open.values())

    def by_venue_id(self, venue_order_id: str) -> R | None:
        return self._by_venue_id.get(venue_order_id) if venue_order_id else None

    def find(self, venue_order_id: str, client_id: str) -> R | None:
        """The order the venue names, by its id first, else by our client id (then binding the
        venue's id to it, so later messages that carry only that id find it too)."""
        rec = self._by_venue_id.get(venue_order_id) if venue_order_id else None
        if rec is None and client_id:
            rec = self._orders.get(client_id)
            if rec is not None:
                self.bind(rec, venue_order_id)
        return rec

    def bind(self, rec: R, venue_order_id: object) -> None:
        """Learn the venue's id of ``rec``; the first one given stays."""
        if isinstance(venue_order_id, str) and venue_order_id and not rec.venue_order_id:
            rec.venue_order_id = venue_order_id
            self._by_venue_id[venue_order_id] = rec

    def release(self, rec: R) -> None:
        """Forget ``rec`` (a finished order nothing more is expected of). Its fill ids stay
        remembered, so a repeated fill is still dropped."""
        if self._orders.get(rec.client_id) is rec:
            del self._orders[rec.client_id]
            self._open.pop(rec.client_id, None)
        if rec.venue_order_id and self._by_venue_id.get(rec.venue_order_id) is rec:
            del self._by_venue_id[rec.venue_order_id]

    @contextmanager
    def delivering_to(self, sink: OrderEvents) -> Iterator[None]:
        """Send to ``sink`` for the length of the block (an embedded venue holding one operation's
        events until its ledger has them, or :data:`MUTED` while its link is down)."""
        saved, self.sink = self.sink, sink
        try:
            yield
        finally:
            self.sink = saved

    # ---- states --------------------------------------------------------------------------
    def ack(self, rec: R, price: Decimal | None = None, qty: Decimal | None = None, *, later: bool = False,
            ts: int | None = None) -> bool:
        """NEW, once, never after a final state. ``price``/``qty`` when the venue works the order
        on other terms than we asked (the update then carries the venue's). True if emitted."""
        if rec.acked or rec.final is not None:
            rec.acked = True
            return False
        rec.acked = True
        if rec.status is _PENDING_NEW:
            rec.status = _NEW
        self._update(rec, _NEW, None, "", price, qty, later, ts)
        return True

    def note_acked(self, rec: R) -> None:
        """The engine knows the order is working (reconciliation told it): no NEW to send."""
        rec.acked = True
        if rec.status is _PENDING_NEW:
            rec.status = _NEW

    def finish(self, rec: R, status: OrderStatus, code: int | None = None, reason: str = "", *,
               later: bool = False, ts: int | None = None) -> bool:
        """The final state, once: a second final (or a repeat) changes nothing. FILLED is recorded
        but not emitted, since the fills have already driven the engine's order there. True if this
        call made the order final."""
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"order {rec.client_id}: {status.value} is not a final state")
        if rec.final is not None:
            return False
        self._finalise(rec, status)
        if status is not _FILLED:
            self._update(rec, status, code, reason, None, None, later, ts)
        return True

    def taken_back(self, rec: R, request: str) -> bool:
        """``rec`` cancelled before its placing ``request`` ("its D", "its addorder" ...) left the
        process (taken back from the venue's rate limit): final now, told after the caller returns
        (a cancel comes from a strategy's hook). The one wording every adapter uses."""
        return self.finish(rec, _CANCELLED, None,
                           f"cancelled before it left: {request} was still waiting for the rate limit", later=True)

    def finish_after_fills(self, rec: R, status: OrderStatus, venue_filled: Decimal, code: int | None = None,
                           reason: str = "", *, since: float = 0.0) -> bool:
        """A final state the venue reports together with the quantity it counts as filled: emitted
        now when every one of those fills is booked here, else held until they are (they come on
        another stream) or until :meth:`release_held` forces it. True if the order is final now."""
        if rec.final is not None:
            return False
        if rec.cum_qty >= venue_filled:
            return self.finish(rec, status, code, reason)
        rec.held = HeldFinal(status, code, reason, venue_filled, since)  # the venue's latest word counts
        return False

    def release_held(self, rec: R, *, force: bool = False) -> bool:
        """Emit a held final state once its fills are booked (or now, with ``force``: the fills are
        not coming). True if the order is final now."""
        held = rec.held
        if held is None or rec.final is not None:
            return False
        if rec.cum_qty < held.venue_filled and not force:
            return False
        return self.finish(rec, held.status, held.code, held.reason)

    def answer(self, rec: R, code: int | None = None, reason: str = "", *, status: OrderStatus | None = None,
               price: Decimal | None = None, qty: Decimal | None = None, later: bool = False,
               ts: int | None = None) -> None:
        """The venue's answer to one of our requests that does not move the order: a cancel or
        replace refused (``code``), a replace taken (new ``price``/``qty``). It carries the order's
        current state (``status`` when the caller knows it better, e.g. the final one)."""
        if status is None:
            status = rec.final if rec.final is not None else rec.live
        self._update(rec, status, code, reason, price, qty, later, ts)

    # ---- fills ---------------------------------------------------------------------------
    def seen_fill(self, fill_id: str) -> bool:
        return fill_id in self._fill_ids

    def fill(self, rec: R, fill: Fill, *, ack_first: bool = True) -> bool:
        """Book one fill of ``rec`` and deliver it, unless its id was seen before. A fill proves the
        order was accepted, so NEW goes first (``ack_first``). A fill after the final state is still
        booked and delivered (a late fill is money moved). One beyond the order's quantity is bad
        input: logged, counted, delivered for the engine to record, not booked here. True if
        delivered."""
        if not self._fill_ids.add(fill.exec_id):
            self.counts["duplicate_fills"] += 1
            return False
        if ack_first:
            self.ack(rec)
        self._book(rec, fill.exec_id, fill.qty)
        self.sink.on_fill(fill)
        if rec.held is not None:
            self.release_held(rec)
        return True

    def note_fill(self, rec: R, fill_id: str, qty: Decimal) -> bool:
        """A fill the engine books itself (a reconciliation query's answer): remembered and booked
        here so the same fill on a stream later is dropped, never delivered. True if new."""
        if not self._fill_ids.add(fill_id):
            return False
        self._book(rec, fill_id, qty)
        return True

    def untracked_fill(self, fill: Fill) -> bool:
        """A fill for an order this tracker does not know (placed before a restart, or by another
        client): delivered once so the engine records it rather than it vanishing here."""
        if not self._fill_ids.add(fill.exec_id):
            self.counts["duplicate_fills"] += 1
            return False
        self.sink.on_fill(fill)
        return True

    def untracked_update(self, client_id: str, status: OrderStatus, code: int | None = None, reason: str = "",
                         venue_order_id: str = "", *, later: bool = False, ts: int | None = None) -> None:
        """A state for an order this tracker does not know (an answer to a cancel of an order it
        never sent, a webhook about an order from before a restart): passed on as the venue said it."""
        if later:  # stamped when it leaves
            self._later(lambda: self.untracked_update(client_id, status, code, reason, venue_order_id, ts=ts))
            return
        stamp = self._now_ns() if ts is None else ts
        self.sink.on_order_update(OrderUpdate(self.venue, client_id, status, stamp, venue_order_id, code, reason))

    def _book(self, rec: R, fill_id: str, qty: Decimal) -> None:
        if rec.final is not None:
            self.counts["late_fills"] += 1
        total = rec.cum_qty + qty
        if qty <= 0 or total > rec.qty:
            self.counts["overfills"] += 1
            self._log.error("%s: fill %s of order %s is bad input: %s takes it to %s of %s; passed on for the "
                            "engine to record, not booked here", self.venue, fill_id, rec.client_id, qty, total,
                            rec.qty)
            return
        rec.cum_qty = total
        if total == rec.qty:
            if rec.final is None:
                self._finalise(rec, _FILLED)
        elif rec.final is None:
            rec.status = _PARTIALLY_FILLED

    def _finalise(self, rec: R, status: OrderStatus) -> None:
        rec.final = rec.status = status
        rec.held = None
        rec.unknown = False
        if self._open.get(rec.client_id) is rec:
            del self._open[rec.client_id]

    # ---- unknown outcomes ----------------------------------------------------------------
    def mark_unknown(self, rec: R, why: str) -> bool:
        """The answer to a request of ``rec`` was lost: its outcome is unknown until the venue's
        word comes back (a status query, a stream, reconciliation). True the first time."""
        if rec.final is not None or rec.unknown:
            return False
        rec.unknown = True
        self.counts["orders_unknown"] += 1
        self._log.warning("%s: order %s outcome unknown (%s)", self.venue, rec.client_id, why)
        return True

    def mark_known(self, rec: R) -> None:
        """The venue has spoken about ``rec`` again."""
        rec.unknown = False

    def unknown(self) -> list[R]:
        """The orders whose outcome is still unknown: what reconciliation must ask about."""
        return [rec for rec in self._open.values() if rec.unknown]

    # ---- emitting ------------------------------------------------------------------------
    def _update(self, rec: R, status: OrderStatus, code: int | None, reason: str, price: Decimal | None,
                qty: Decimal | None, later: bool, ts: int | None) -> None:
        if later:  # stamped (unless the venue's operation has its time) and read when it leaves
            self._later(lambda: self._update(rec, status, code, reason, price, qty, False, ts))
            return
        stamp = self._now_ns() if ts is None else ts
        self.sink.on_order_update(OrderUpdate(self.venue, rec.client_id, status, stamp, rec.venue_order_id,
                                              code, reason, price, qty))

    def _later(self, emit: Callable[[], None]) -> None:
        """Run ``emit`` through ``defer`` (after the current call returns); the immediate path
        builds no closure (every state of every order passes here)."""
        if self._defer is None:
            raise RuntimeError(f"{self.venue}: a deferred emission needs the tracker's defer")
        self._defer(emit)
