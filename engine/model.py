"""The shared language of the runtime: instruments, orders, books, trades, fills, sessions.

Every number that is money or a quantity is a ``Decimal``: never a binary float. PSX share
counts are whole Decimals; crypto venues trade fractional amounts through the same model.
Timestamps are ``int`` nanoseconds since the Unix epoch, UTC.

Per-event objects are slotted classes, not pydantic models: they are created hundreds of thousands
of times a second and must cost no validation on the hot path. Validation happens once, at the
edges (config, venue codecs, the order context's checks).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from operator import attrgetter as _get
from typing import Any

from engine.rejects import Reject, describe

log = logging.getLogger("engine.orders")

__all__ = [
    "ZERO",
    "Book",
    "BookUpdate",
    "Fill",
    "IllegalTransition",
    "Instrument",
    "InstrumentStatus",
    "Liquidity",
    "Order",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "Phase",
    "Side",
    "TERMINAL_STATUSES",
    "TimeInForce",
    "Trade",
    "VenueAccount",
    "VenueOrder",
    "VenuePosition",
    "apply_venue_update",
    "ENGINE_FAST_SLOTS",
]

ZERO = Decimal(0)


class Side(StrEnum):
    """Order or aggressor side. Strategies may pass the plain strings ``"buy"`` / ``"sell"``."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell: the sign of the position change a fill causes."""
        return 1 if self is _BUY else -1

    @property
    def opposite(self) -> Side:
        return _SELL if self is _BUY else _BUY


# Members as module globals for the per-event and per-order paths: on Python 3.11 ``Side.BUY``
# runs EnumType's attribute hook (it defines __getattr__), some twenty times the cost of a global
# read. They are the same objects (an enum member cannot be rebound).
_BUY = Side.BUY
_SELL = Side.SELL


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(StrEnum):
    """DAY expires at the close; GTC lives across days; IOC fills what it can now and cancels the
    rest; FOK fills completely now or not at all."""

    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"
    UNKNOWN = "unknown"


class Phase(StrEnum):
    """Session phase names, used verbatim in hooks, reports and metrics."""

    CLOSED = "closed"
    PRE_OPEN = "pre_open"
    OPENING_MATCH = "opening_match"
    OPEN = "open"
    BREAK = "break"
    POST_CLOSE = "post_close"


class OrderStatus(StrEnum):
    """Order life cycle (VENUES.md section 6.6)."""

    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    #: the venue's word on the order was lost (connection dropped, request timed out); only a
    #: venue query or a venue event moves it on, never a guess
    UNKNOWN = "unknown"


S = OrderStatus
# the same, for the order life cycle (see _BUY above)
_PENDING_NEW = S.PENDING_NEW
_NEW = S.NEW
_PARTIALLY_FILLED = S.PARTIALLY_FILLED
_PENDING_CANCEL = S.PENDING_CANCEL
_PENDING_REPLACE = S.PENDING_REPLACE
_FILLED = S.FILLED
_CANCELLED = S.CANCELLED
_REJECTED = S.REJECTED
_EXPIRED = S.EXPIRED
_UNKNOWN = S.UNKNOWN
TERMINAL_STATUSES = frozenset({S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED})
_LIVE_EXITS = frozenset({S.FILLED, S.CANCELLED, S.EXPIRED})

# Allowed transitions. A cancel may be sent before the venue has acked the order. A fill moves an
# order between NEW / PARTIALLY_FILLED / FILLED; a pending cancel or replace may be answered by the
# venue, refused (back to the live state), or overtaken by a fill. Terminal states absorb.
_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING_NEW: frozenset({S.NEW, S.REJECTED, S.PARTIALLY_FILLED, S.PENDING_CANCEL})
    | _LIVE_EXITS,
    S.NEW: frozenset({S.PARTIALLY_FILLED, S.PENDING_CANCEL, S.PENDING_REPLACE}) | _LIVE_EXITS,
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.PENDING_CANCEL, S.PENDING_REPLACE}) | _LIVE_EXITS,
    # a cancel sent before the venue's ack may meet the venue's reject of the order itself
    S.PENDING_CANCEL: frozenset({S.NEW, S.PARTIALLY_FILLED, S.REJECTED}) | _LIVE_EXITS,
    S.PENDING_REPLACE: frozenset({S.NEW, S.PARTIALLY_FILLED, S.PENDING_CANCEL}) | _LIVE_EXITS,
    S.UNKNOWN: frozenset({S.NEW, S.PARTIALLY_FILLED, S.PENDING_CANCEL, S.REJECTED}) | _LIVE_EXITS,
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}
for _live in (S.PENDING_NEW, S.NEW, S.PARTIALLY_FILLED, S.PENDING_CANCEL, S.PENDING_REPLACE):
    _TRANSITIONS[_live] = _TRANSITIONS[_live] | {S.UNKNOWN}


class IllegalTransition(ValueError):
    """Raised when an order is asked to move to a state its life cycle does not allow."""


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable symbol on one venue. ``lot_size`` and ``tick_size`` come from the instrument
    master (config); ``previous_close`` is the reference price for the circuit-breaker band."""

    symbol: str
    venue: str
    tick_size: Decimal = Decimal("0.01")
    lot_size: Decimal = Decimal(1)
    previous_close: Decimal = ZERO
    sector: str = ""
    price_precision: int = 2

    @property
    def key(self) -> str:
        """``VENUE:SYMBOL``, unique across venues."""
        return f"{self.venue}:{self.symbol}"

    def on_tick(self, price: Decimal) -> bool:
        """True when ``price`` is a whole number of ticks."""
        return price % self.tick_size == 0

    def round_to_tick(self, price: Decimal, side: Side | str | None = None) -> Decimal:
        """Round to the tick grid: down for a buy, up for a sell (never more aggressive than
        asked), to nearest when no side is given."""
        ticks = price / self.tick_size
        if side == _BUY:
            n = ticks.to_integral_value(rounding="ROUND_FLOOR")
        elif side == _SELL:
            n = ticks.to_integral_value(rounding="ROUND_CEILING")
        else:
            n = ticks.to_integral_value(rounding="ROUND_HALF_EVEN")
        return (n * self.tick_size).quantize(self.tick_size)


# --------------------------------------------------------------------------------------------
# Market data events: what an adapter hands to the runtime.


class BookUpdate:
    """An L2 book change for one instrument. ``changes`` holds ``(side, price, new_total_qty)``;
    a quantity of 0 removes the level. ``snapshot=True`` means "replace the whole book"."""

    __slots__ = ("venue", "symbol", "ts", "seq", "changes", "snapshot")

    def __init__(
        self,
        venue: str,
        symbol: str,
        ts: int,
        seq: int,
        changes: tuple[tuple[Side, Decimal, Decimal], ...],
        snapshot: bool = False,
    ) -> None:
        self.venue = venue
        self.symbol = symbol
        self.ts = ts
        self.seq = seq
        self.changes = changes
        self.snapshot = snapshot

    def __repr__(self) -> str:
        kind = "snapshot" if self.snapshot else "delta"
        return f"BookUpdate({self.venue}:{self.symbol} {kind} seq={self.seq} {list(self.changes)})"


class Trade:
    """A public trade print."""

    __slots__ = ("venue", "symbol", "ts", "price", "qty", "aggressor", "trade_id")

    def __init__(
        self, venue: str, symbol: str, ts: int, price: Decimal, qty: Decimal, aggressor: Side | None, trade_id: str
    ) -> None:
        self.venue = venue
        self.symbol = symbol
        self.ts = ts
        self.price = price
        self.qty = qty
        self.aggressor = aggressor
        self.trade_id = trade_id

    def __repr__(self) -> str:
        return f"Trade({self.venue}:{self.symbol} {self.qty}@{self.price} aggr={self.aggressor} id={self.trade_id})"


@dataclass(frozen=True, slots=True)
class InstrumentStatus:
    """A venue's word on one instrument's state: halted or trading, the reference price the day's
    circuit band is built on (yesterday's close, the LDCP), and the official closing price once it
    is known (post-close trades only at it). ``None`` means "not said in this message"."""

    venue: str
    symbol: str
    ts: int
    halted: bool | None = None
    reason: str = ""
    reference_price: Decimal | None = None
    closing_price: Decimal | None = None


#: the account events the engine knows by name (a venue's own names map onto these)
MARGIN_CALL = "margin_call"
ACCOUNT_ALERT = "account_alert"


@dataclass(frozen=True, slots=True)
class AccountEvent:
    """A venue's word on the account rather than on an order: a margin call, a deposit or
    withdrawal alert. ``kind`` is the engine's name (:data:`MARGIN_CALL`, :data:`ACCOUNT_ALERT`, or
    the venue's own for anything else); ``detail`` the venue's fields as it sent them, for the
    strategies and the log (never a credential: venues send none here)."""

    venue: str
    kind: str
    ts: int
    detail: tuple[tuple[str, Any], ...] = ()
    venue_event_id: str = ""

    @property
    def fields(self) -> dict[str, Any]:
        """``detail`` as a dict (a fresh copy: the event itself stays immutable)."""
        return dict(self.detail)


@dataclass(frozen=True, slots=True)
class VenuePosition:
    """One position as a derivatives venue reports it (Pulse ``private/get_positions``): signed
    size (short negative), the average entry price and the venue's mark."""

    symbol: str
    size: Decimal
    average_price: Decimal = ZERO
    mark_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class VenueAccount:
    """A derivatives account as the venue reports it (Pulse ``private/get_account_summary`` plus
    ``private/get_positions``), in its settlement ``currency``: the figures the engine's margin
    checks take and reconciles its own with. A figure the venue does not give is None."""

    currency: str
    equity: Decimal
    balance: Decimal | None = None
    margin_balance: Decimal | None = None
    initial_margin: Decimal | None = None
    maintenance_margin: Decimal | None = None
    positions: tuple[VenuePosition, ...] = ()


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """One order as the venue reports it in a query (reconciliation after a reconnect or a
    restart): the venue is the truth about its status and filled quantity."""

    venue: str
    client_id: str
    venue_order_id: str
    symbol: str
    side: Side
    status: OrderStatus
    qty: Decimal
    cum_qty: Decimal
    price: Decimal | None = None


class Fill:
    """One execution of one of our orders. ``exec_id`` is unique per venue; the runtime drops a
    fill whose ``(venue, exec_id)`` it has already applied. ``fee`` is what the venue charged;
    None when it states none, and the runtime then charges the rule pack's fee schedule."""

    __slots__ = (
        "venue", "symbol", "client_id", "venue_order_id", "exec_id",
        "side", "price", "qty", "ts", "liquidity", "fee",
    )

    def __init__(
        self,
        venue: str,
        symbol: str,
        client_id: str,
        venue_order_id: str,
        exec_id: str,
        side: Side,
        price: Decimal,
        qty: Decimal,
        ts: int,
        liquidity: Liquidity = Liquidity.UNKNOWN,
        fee: Decimal | None = None,
    ) -> None:
        self.venue = venue
        self.symbol = symbol
        self.client_id = client_id
        self.venue_order_id = venue_order_id
        self.exec_id = exec_id
        self.side = side
        self.price = price
        self.qty = qty
        self.ts = ts
        self.liquidity = liquidity
        self.fee: Decimal | None = fee

    def __repr__(self) -> str:
        return (
            f"Fill({self.venue}:{self.symbol} {self.side.value} {self.qty}@{self.price} "
            f"order={self.client_id} exec={self.exec_id} {self.liquidity.value})"
        )


class OrderUpdate:
    """A venue's word on one of our orders, other than a fill: ack, reject, cancel, expiry,
    replace ack (``price`` / ``qty`` then carry the amended values), or a refused cancel/replace
    (``status`` is the live state the order returns to, or its final state when the venue has
    already finished with it: the runtime ignores updates to terminal orders)."""

    __slots__ = ("venue", "client_id", "status", "venue_order_id", "ts", "reject_code", "reason", "price", "qty")

    def __init__(
        self,
        venue: str,
        client_id: str,
        status: OrderStatus,
        ts: int,
        venue_order_id: str = "",
        reject_code: int | None = None,
        reason: str = "",
        price: Decimal | None = None,
        qty: Decimal | None = None,
    ) -> None:
        self.venue = venue
        self.client_id = client_id
        self.status = status
        self.ts = ts
        self.venue_order_id = venue_order_id
        self.reject_code = reject_code
        self.reason = reason
        self.price = price
        self.qty = qty

    def __repr__(self) -> str:
        return f"OrderUpdate({self.venue} {self.client_id} -> {self.status.value} {self.reason})"


# --------------------------------------------------------------------------------------------
# Orders


class Order:
    """An order and its life cycle; also the handle a strategy holds.

    Strategies read the public properties; only the engine changes an order, through
    :meth:`transition` and :meth:`apply_fill`, which enforce VENUES.md 6.6: terminal states absorb,
    ``cum_qty`` never decreases and never exceeds ``qty``.
    """

    __slots__ = (
        "_client_id", "_strategy", "_venue", "_symbol", "_side", "_type", "_tif", "_post_only",
        "_qty", "_price", "_status", "_cum_qty", "_notional", "_venue_order_id",
        "_reject_code", "_reject_reason", "_created_ts", "_updated_ts", "_pending_price", "_pending_qty",
        "_mmp", "_algo_id", "_reduce_only",
    )

    def __init__(
        self,
        client_id: str,
        strategy: str,
        venue: str,
        symbol: str,
        side: Side,
        qty: Decimal,
        price: Decimal | None,
        order_type: OrderType = OrderType.LIMIT,
        tif: TimeInForce = TimeInForce.DAY,
        post_only: bool = False,
        ts: int = 0,
        mmp: bool = False,
        algo_id: str = "",
        reduce_only: bool = False,
    ) -> None:
        self._client_id = client_id
        self._strategy = strategy
        self._venue = venue
        self._symbol = symbol
        self._side = side
        self._type = order_type
        self._tif = tif
        self._post_only = post_only
        self._qty = qty
        self._price = price
        self._status = _PENDING_NEW
        self._cum_qty = ZERO
        self._notional = ZERO  # sum of price * qty over fills, for the average price
        self._venue_order_id = ""
        self._reject_code: int | None = None
        self._reject_reason = ""
        self._created_ts = ts
        self._updated_ts = ts
        self._pending_price: Decimal | None = None
        self._pending_qty: Decimal | None = None
        self._mmp = mmp
        # the registered algorithm (config ``algo_id``) that sent it: the journal and audit export carry it
        self._algo_id = algo_id or strategy
        # may only shrink the account's position (derivatives venues): the gate checks it, the venue too
        self._reduce_only = reduce_only

    # ---- read-only view for strategies (C-level getters: no Python frame per read) ----------
    # (the engine itself may read the slots directly: see ENGINE_FAST_SLOTS below the class)
    client_id = property(_get("_client_id"), doc="Our id for the order; the venue echoes it.")
    strategy = property(_get("_strategy"))
    venue = property(_get("_venue"))
    symbol = property(_get("_symbol"))
    side = property(_get("_side"))
    type = property(_get("_type"))
    tif = property(_get("_tif"))
    post_only = property(_get("_post_only"))
    mmp = property(_get("_mmp"), doc="A quote under market-maker protection (``ctx.submit(..., mmp=True)``).")
    algo_id = property(_get("_algo_id"), doc="The registered algorithm id (config ``algo_id``) of its strategy.")
    reduce_only = property(_get("_reduce_only"), doc="May only shrink the position (``reduce_only=True``).")
    qty = property(_get("_qty"), doc="Total quantity ordered (after any amend).")
    price = property(_get("_price"), doc="Limit price; None for a market order.")
    status = property(_get("_status"))
    cum_qty = property(_get("_cum_qty"), doc="Quantity filled so far.")
    venue_order_id = property(_get("_venue_order_id"))
    reject_code = property(_get("_reject_code"), doc="Set when status is rejected.")
    reject_reason = property(_get("_reject_reason"), doc="A sentence saying why.")
    created_ts = property(_get("_created_ts"))
    updated_ts = property(_get("_updated_ts"))

    @property
    def leaves_qty(self) -> Decimal:
        """Quantity still working: 0 once the order is terminal."""
        return ZERO if self._status in TERMINAL_STATUSES else self._qty - self._cum_qty

    @property
    def avg_price(self) -> Decimal | None:
        """Average fill price, or None before the first fill."""
        if not self._cum_qty:
            return None
        return self._notional / self._cum_qty

    @property
    def is_open(self) -> bool:
        """True while the order may still trade (not terminal)."""
        return self._status not in TERMINAL_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self._status in TERMINAL_STATUSES

    @property
    def pending_price(self) -> Decimal | None:
        """Price asked for by an amend the venue has not yet answered."""
        return self._pending_price

    @property
    def pending_qty(self) -> Decimal | None:
        return self._pending_qty

    # ---- engine-side mutation ------------------------------------------------------------
    def transition(self, new: OrderStatus, ts: int = 0) -> None:
        """Move to ``new`` or raise :class:`IllegalTransition`."""
        if new not in _TRANSITIONS[self._status]:
            raise IllegalTransition(
                f"order {self._client_id}: {self._status.value} -> {new.value} is not allowed"
            )
        self._status = new
        if ts:
            self._updated_ts = ts

    def restore(
        self, status: OrderStatus, cum_qty: Decimal, notional: Decimal, venue_order_id: str, updated_ts: int,
        reject_code: int | None = None, reason: str = "",
    ) -> None:
        """Put back the state a journal recorded (restart only: no transition rules apply to a
        state the engine already went through once)."""
        self._status = status
        self._cum_qty = cum_qty
        self._notional = notional
        self._venue_order_id = venue_order_id
        self._updated_ts = updated_ts
        self._reject_code = reject_code
        self._reject_reason = reason

    def can_transition(self, new: OrderStatus) -> bool:
        return new in _TRANSITIONS[self._status]

    def reject(self, code: int, reason: str, ts: int = 0) -> None:
        """Mark a pending order rejected with a code and a sentence."""
        self.transition(_REJECTED, ts)
        self._reject_code = code
        self._reject_reason = reason

    def set_reason(self, reason: str) -> None:
        """Say why the order ended (a cancel or expiry reason from the venue, for logs)."""
        if reason:
            self._reject_reason = reason

    def set_venue_order_id(self, venue_order_id: str) -> None:
        if venue_order_id:
            self._venue_order_id = venue_order_id

    def request_replace(self, price: Decimal | None, qty: Decimal | None, ts: int = 0) -> None:
        """Enter pending_replace, remembering what was asked for until the venue answers."""
        self.transition(_PENDING_REPLACE, ts)
        self._pending_price = price
        self._pending_qty = qty

    def confirm_replace(self, price: Decimal | None, qty: Decimal | None, ts: int = 0) -> None:
        """Apply an accepted amend and return to the live state that matches ``cum_qty``."""
        if price is not None:
            self._price = price
        if qty is not None:
            if qty < self._cum_qty:
                raise IllegalTransition(f"order {self._client_id}: amended qty {qty} below filled {self._cum_qty}")
            self._qty = qty
        self._pending_price = None
        self._pending_qty = None
        if self._status in TERMINAL_STATUSES:
            return
        if self._cum_qty >= self._qty:
            self.transition(_FILLED, ts)
        else:
            self.transition(_PARTIALLY_FILLED if self._cum_qty else _NEW, ts)

    def accept_venue_price(self, price: Decimal) -> bool:
        """The venue took a limit order at another price (Pulse reprices a post-only order that
        would cross to rest just inside the spread): the order is what the venue works. True if
        the price changed."""
        if self._price is None or price == self._price:
            return False
        self._price = price
        return True

    def live_status(self) -> OrderStatus:
        """The live state the order is in when nothing is pending: new or partially filled."""
        return _PARTIALLY_FILLED if self._cum_qty else _NEW

    def apply_fill(self, qty: Decimal, price: Decimal, ts: int = 0) -> None:
        """Add one execution. A fill never makes ``cum_qty`` exceed ``qty``; a late fill after a
        terminal state updates the quantities but not the state (terminal states absorb)."""
        if qty <= 0:
            raise ValueError(f"order {self._client_id}: fill quantity must be positive, got {qty}")
        if self._cum_qty + qty > self._qty:
            raise IllegalTransition(
                f"order {self._client_id}: fill of {qty} would exceed order quantity "
                f"({self._cum_qty} of {self._qty} already filled)"
            )
        self._cum_qty += qty
        self._notional += price * qty
        if ts:
            self._updated_ts = ts
        status = self._status
        if status in TERMINAL_STATUSES:
            return
        if self._cum_qty == self._qty:
            self.transition(_FILLED, ts)
        elif status is _NEW or status is _PENDING_NEW:
            self.transition(_PARTIALLY_FILLED, ts)
        # In partially_filled, pending_cancel or pending_replace a partial fill keeps the state.

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view for reports and logs (Decimals as strings)."""
        return {
            "client_id": self._client_id,
            "strategy": self._strategy,
            "venue": self._venue,
            "symbol": self._symbol,
            "side": self._side.value,
            "type": self._type.value,
            "tif": self._tif.value,
            "qty": str(self._qty),
            "price": None if self._price is None else str(self._price),
            "status": self._status.value,
            "cum_qty": str(self._cum_qty),
            "avg_price": None if self.avg_price is None else str(self.avg_price),
            "reject_code": self._reject_code,
            "reject_reason": self._reject_reason,
            "mmp": self._mmp,
        }

    def __repr__(self) -> str:
        px = "MKT" if self._price is None else str(self._price)
        return (
            f"Order({self._client_id} {self._side.value} {self._qty} {self._symbol} @ {px} "
            f"{self._status.value} filled={self._cum_qty})"
        )


#: The accessor convention: the slots of :class:`Order` that modules under ``engine/`` may READ
#: directly (``order._symbol``) instead of through the public property (``order.symbol``).
#:
#: Why: an order is read many times on every order message (the gate's entrance, fills and venue
#: updates, the account's reservations, the journal's row), and on Python 3.11 a read through the
#: public property (a C-level ``attrgetter``, so no Python frame) costs ~460 instructions against
#: ~76 for the slot itself; a property written in Python (``pending_qty``) ~650 (callgrind,
#: PYTHONHASHSEED=0, the difference of two loop lengths of ten reads). Where orders are handled
#: rarely (reconciliation, a drop, the kill switch, orphans) the engine uses the public properties.
#:
#: Rules: only reads (every write goes through Order's own methods, which keep VENUES.md 6.6);
#: only modules under ``engine/`` (adapters and strategies use the public properties); only these
#: names, and only of a local named ``order`` (``o`` in a comprehension), so another object's
#: ``_venue`` or ``_qty`` is not licensed by the name. tests/unit/test_private_names.py enforces all four.
ENGINE_FAST_SLOTS = frozenset({
    "_client_id", "_strategy", "_venue", "_symbol", "_side", "_type", "_tif", "_post_only", "_qty", "_price",
    "_status", "_cum_qty", "_notional", "_venue_order_id", "_reject_code", "_reject_reason", "_created_ts",
    "_updated_ts", "_pending_price", "_pending_qty", "_mmp", "_algo_id", "_reduce_only",
})


# --------------------------------------------------------------------------------------------
# Book


class Book:
    """An L2 order book kept by the runtime from :class:`BookUpdate` events.

    Strategies receive it in ``on_book``. ``best_bid`` / ``best_ask`` are kept up to date on every
    change at O(1) cost for the common case (a quantity change at a known level); the full sorted
    ladder is built only when a strategy asks for ``bids`` / ``asks`` / :meth:`depth`.

    ``mid`` is worked out once per touch, when first asked, and kept in ``known_mid`` until the best
    bid or ask changes: the pre-trade checks read that slot per order (a property read costs ~800
    instructions more on Python 3.11), and book upkeep forgets it only where the touch moves.
    """

    __slots__ = ("venue", "symbol", "ts", "seq", "_bids", "_asks", "best_bid", "best_ask", "known_mid")

    def __init__(self, venue: str, symbol: str) -> None:
        self.venue = venue
        self.symbol = symbol
        self.ts = 0
        self.seq = 0
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        self.known_mid: Decimal | None = None  # the current touch's mid once asked for, else None
        self.best_bid: Decimal | None = None
        self.best_ask: Decimal | None = None

    def apply(self, update: BookUpdate) -> None:
        """Apply one update (snapshot or delta). Quantities are totals per level, 0 deletes.

        Most changes move the size of a level the book already holds: one lookup and one store,
        no Decimal comparison (a known level cannot be a new best), and nothing else is written.
        The touch (and the forgotten mid) is written only where it moves. A delete asks whether the
        best is still a level (a dict lookup that finds the best's own key object) rather than
        comparing Decimals: the best is always one of the levels, so it is gone exactly when the
        deleted price was it. A side whose best went is scanned once, after all the changes: a
        sweep that clears k levels at the touch costs one scan, not k."""
        if update.snapshot:
            self._bids.clear()
            self._asks.clear()
            self.best_bid = self.best_ask = self.known_mid = None
        rescan = 0  # 1: the bids' best was deleted, 2: the asks'
        for side, price, qty in update.changes:
            if side is _BUY:
                levels = self._bids
                if qty:
                    if price in levels:
                        levels[price] = qty
                        continue
                    levels[price] = qty
                    best = self.best_bid
                    if best is None or price > best:
                        self.best_bid = price
                        self.known_mid = None  # a new touch: its mid is worked out when someone asks
                elif levels.pop(price, None) is not None and self.best_bid not in levels:
                    rescan |= 1
            else:
                levels = self._asks
                if qty:
                    if price in levels:
                        levels[price] = qty
                        continue
                    levels[price] = qty
                    best = self.best_ask
                    if best is None or price < best:
                        self.best_ask = price
                        self.known_mid = None
                elif levels.pop(price, None) is not None and self.best_ask not in levels:
                    rescan |= 2
        if rescan:
            if rescan & 1:
                self.best_bid = max(self._bids) if self._bids else None
            if rescan & 2:
                self.best_ask = min(self._asks) if self._asks else None
            self.known_mid = None
        self.ts = update.ts
        self.seq = update.seq

    # ---- read side -----------------------------------------------------------------------
    @property
    def bids(self) -> list[tuple[Decimal, Decimal]]:
        """Bid levels, best (highest) first, as ``(price, qty)``."""
        return sorted(self._bids.items(), reverse=True)

    @property
    def asks(self) -> list[tuple[Decimal, Decimal]]:
        """Ask levels, best (lowest) first, as ``(price, qty)``."""
        return sorted(self._asks.items())

    def depth(self, levels: int = 5) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """The top ``levels`` of each side, best first."""
        return self.bids[:levels], self.asks[:levels]

    @property
    def bid_size(self) -> Decimal:
        return self._bids.get(self.best_bid, ZERO) if self.best_bid is not None else ZERO

    @property
    def ask_size(self) -> Decimal:
        return self._asks.get(self.best_ask, ZERO) if self.best_ask is not None else ZERO

    @property
    def mid(self) -> Decimal | None:
        """Midpoint of the best bid and ask, or None when a side is empty."""
        mid = self.known_mid
        if mid is None:
            bid = self.best_bid
            ask = self.best_ask
            if bid is None or ask is None:
                return None
            mid = self.known_mid = (bid + ask) / 2
        return mid

    @property
    def spread(self) -> Decimal | None:
        if self.best_bid is None or self.best_ask is None:
            return None
        return self.best_ask - self.best_bid

    def qty_at(self, side: Side, price: Decimal) -> Decimal:
        return (self._bids if side is _BUY else self._asks).get(price, ZERO)

    def is_crossed(self) -> bool:
        return self.best_bid is not None and self.best_ask is not None and self.best_bid >= self.best_ask


    def __repr__(self) -> str:
        return f"Book({self.venue}:{self.symbol} {self.bid_size}@{self.best_bid} / {self.ask_size}@{self.best_ask})"


@dataclass(slots=True)
class SessionState:
    """Where the trading day stands: the phase and whether it accepts orders or matches them."""

    phase: Phase = Phase.CLOSED
    accepts_new: bool = False
    accepts_modify_cancel: bool = False
    matches: bool = False
    trading_day: str = ""
    flags: dict[str, Any] = field(default_factory=dict)


def apply_venue_update(order: Order, update: OrderUpdate) -> bool:
    """Apply a venue's update to ``order`` by the engine's rules; False when it changes nothing a
    strategy sees. The runtime's one way to move an order on a venue's word, and the adapters'
    tests use it too, so they hold an adapter to the rules the engine really applies."""
    # Every venue answer runs this (three per order's life at least), so the order's slots are read
    # here, in their own module, instead of through its properties (``is_terminal``, ``status``:
    # ~460-650 instructions a read on Python 3.11); every change still goes through Order's methods.
    status = update.status
    current = order._status
    if update.venue_order_id:  # set_venue_order_id without the call
        order._venue_order_id = update.venue_order_id
    ts = update.ts
    if status is _NEW or status is _PARTIALLY_FILLED:
        if current is _PENDING_NEW or current is _UNKNOWN:
            if update.price is not None and order.accept_venue_price(update.price):
                log.info("venue %s took %s at %s (repriced)", order.venue, order.client_id, update.price)
            order.transition(_PARTIALLY_FILLED if order._cum_qty else _NEW, ts)  # live_status()
            return True
        if current is _PENDING_REPLACE:
            if update.price is not None or update.qty is not None:
                order.confirm_replace(update.price, update.qty, ts)
            else:  # replace refused: back to the live state, values unchanged
                order.confirm_replace(None, None, ts)
                log.info("amend refused by venue for %s: %s", order.client_id, update.reason)
            return True
        if current is _PENDING_CANCEL:
            if update.reason:  # cancel refused by the venue
                order.transition(order.live_status(), ts)
                log.info("cancel refused by venue for %s: %s", order.client_id, update.reason)
                return True
            return False  # a late ack of the order itself, cancel still pending
        return False
    if status is _REJECTED:
        if current in TERMINAL_STATUSES:
            return False
        order.reject(update.reject_code or Reject.EXCHANGE_REJECT, update.reason or describe(9002), ts)
        return True
    if status in (_CANCELLED, _EXPIRED):
        if current in TERMINAL_STATUSES:
            return False
        order.transition(status, ts)
        order.set_reason(update.reason)
        return True
    if status is _FILLED:
        return False  # fills drive the filled state; a status-only "filled" adds nothing
    if status is _UNKNOWN:
        # the adapter lost this request's answer (a timeout): unknown until its status query says
        if current is _UNKNOWN or current in TERMINAL_STATUSES or not order.can_transition(_UNKNOWN):
            return False
        order.transition(_UNKNOWN, ts)
        log.warning("order %s unknown: %s", order.client_id, update.reason or "its answer was lost")
        return True
    raise IllegalTransition(f"venue sent unexpected status {status.value} for {order.client_id}")
