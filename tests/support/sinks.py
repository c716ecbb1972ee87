"""The runtime's side of the adapter interface for the adapters' tests: one recording sink that
moves registered orders by the engine's own rules (``apply_venue_update``, ``Order.apply_fill``)
rather than a copy of them, so an adapter is held to what the runtime really does with its events.

What the runtime would report as an anomaly (an event for an order it does not know, an illegal
transition, a fill it cannot apply) is collected in ``errors`` instead of raised: an adapter calls
the sink from its own tasks, where an exception would be counted or swallowed rather than fail the
test. A harness asserts ``errors == []`` when it is done."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.model import (
    AccountEvent,
    Book,
    BookUpdate,
    Fill,
    IllegalTransition,
    InstrumentStatus,
    Order,
    OrderUpdate,
    Trade,
    apply_venue_update,
)


class RecordingSink:
    """Records every call as ``(kind, payload)``, keeps a Book per symbol, and applies order
    updates and fills to the orders a test registers in ``orders`` as ``Runtime`` does.

    Kinds and payloads: ``book`` BookUpdate, ``trade`` Trade, ``instrument`` InstrumentStatus,
    ``update`` OrderUpdate, ``fill`` Fill, ``status`` ``(venue, status, detail)``, ``account``
    AccountEvent."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.books: dict[str, Book] = {}
        self.orders: dict[str, Order] = {}  # by client id, registered by the test before it submits
        self.errors: list[str] = []  # what the runtime would report as anomalies
        self.exec_ids: set[str] = set()
        self.duplicate_fills = 0
        self.mmp_triggers: list[tuple[str, int, int | None, str]] = []

    # ---- the adapter interface (engine.venue.VenueEvents) ----
    def on_book(self, update: BookUpdate) -> None:
        self.calls.append(("book", update))
        self.books.setdefault(update.symbol, Book(update.venue, update.symbol)).apply(update)

    def on_trade(self, trade: Trade) -> None:
        self.calls.append(("trade", trade))

    def on_instrument_status(self, status: InstrumentStatus) -> None:
        self.calls.append(("instrument", status))

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None:
        self.calls.append(("status", (venue, status, detail)))

    def on_account_event(self, event: AccountEvent) -> None:
        self.calls.append(("account", event))

    def on_anomaly(self, venue: str, kind: str, detail: str) -> None:
        self.calls.append(("anomaly", (venue, kind, detail)))

    def on_order_update(self, update: OrderUpdate) -> None:
        """``Runtime.on_order_update``: unknown order and illegal transition are anomalies."""
        self.calls.append(("update", update))
        order = self._order(update.venue, update.client_id)
        if order is None:
            self.errors.append(f"order update for an order this engine does not know: {update!r}")
            return
        try:
            apply_venue_update(order, update)
        except IllegalTransition as exc:
            self.errors.append(f"{exc}; {update!r}")

    def on_fill(self, fill: Fill) -> None:
        """``Runtime.on_fill``: a repeated exec id is dropped (counted, not an error); an unknown
        order or a fill the order refuses (an overfill) is an anomaly."""
        self.calls.append(("fill", fill))
        if fill.exec_id in self.exec_ids:
            self.duplicate_fills += 1
            return
        self.exec_ids.add(fill.exec_id)
        order = self._order(fill.venue, fill.client_id)
        if order is None:
            self.errors.append(f"fill for an order this engine does not know: {fill!r}")
            return
        try:
            order.apply_fill(fill.qty, fill.price, fill.ts)
        except (IllegalTransition, ValueError) as exc:
            self.errors.append(f"fill not applied: {exc}; {fill!r}")

    def venue_mmp_trigger(self, strategy: str, ts: int, frozen_until_ns: int | None, reason: str = "") -> None:
        """What ``Runtime.venue_mmp_trigger`` receives (Pulse finds it on the sink by name)."""
        self.mmp_triggers.append((strategy, ts, frozen_until_ns, reason))

    def _order(self, venue: str, client_id: str) -> Order | None:
        # the runtime looks an order up within the venue the event names
        order = self.orders.get(client_id)
        return order if order is not None and order.venue == venue else None

    # ---- views ----
    def of(self, kind: str) -> list[Any]:
        return [obj for k, obj in self.calls if k == kind]

    def index(self, kind: str, pred: Callable[[Any], bool]) -> int:
        """Position in ``calls`` of the first ``kind`` call ``pred`` accepts: for ordering checks."""
        return next(i for i, (k, obj) in enumerate(self.calls) if k == kind and pred(obj))

    def statuses(self) -> list[str]:
        return [status for _venue, status, _detail in self.of("status")]

    def snapshots(self, symbol: str) -> int:
        return sum(1 for u in self.of("book") if u.symbol == symbol and u.snapshot)

    def updates_for(self, client_id: str) -> list[OrderUpdate]:
        return [u for u in self.of("update") if u.client_id == client_id]

    def fills_for(self, client_id: str) -> list[Fill]:
        return [f for f in self.of("fill") if f.client_id == client_id]
