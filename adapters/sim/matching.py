"""A sans-I/O price-time-priority matching engine for one symbol.

The paper venue, the replay mode and the venue sandboxes all trade against this engine, so it must
be exact (``Decimal`` prices and quantities, never a float), deterministic (no clock, no I/O, no
hash-order iteration) and cheap: the runtime benchmark pushes a few hundred thousand events a
second through it. Hence slotted records, a dict of price -> deque of resting orders per side plus a
sorted price list kept with :mod:`bisect`, and no pydantic.

Every operation returns an :class:`Outcome`: the result events in the order they happened
(:class:`Accepted`, :class:`Rejected`, :class:`Execution`, :class:`Cancelled`, :class:`Expired`,
:class:`Replaced`, :class:`ReplaceRejected`, :class:`CancelRejected`) and the L2 level changes
``(side, price, new_total_qty)`` the operation caused, each level once with its final total
(0 = the level is gone), ready to become a :class:`engine.model.BookUpdate`.

Reject codes come from the engine's one table, :mod:`engine.rejects`: the PSX document's where one
fits (2002 lot, 2003 price, 2006 market closed, 2007 order type), the engine's 7xxx otherwise.

Choices where the rules are silent:

- A market order (or IOC/FOK) that cannot trade is accepted, then cancelled: it reached the book.
- Post-only is checked in continuous and post-close trading only; in pre-open nothing trades on
  entry, so a post-only order rests and takes part in the auction like any limit order.
- Post-close: new orders must be limit orders at the closing price (else 2003; market orders
  2007). They trade against resting orders at that price or better, and every such trade prints at
  the closing price, so the book stays uncrossed and no trade happens at another price.
- Amends are accepted in pre-open, continuous and post-close (at the closing price only); in the
  other phases they are refused with 2006. Cancels are refused only during the opening match.
- Self-trade prevention also applies to the pairs of the opening auction; if it leaves the book
  crossed, the auction runs again on what remains (the only case with a second price).
- In the auction the earlier-arrived order of each pair is reported as the maker.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from typing import ClassVar, Literal

from engine.model import OrderType, Phase, Side, TimeInForce
from engine.venue.bands import band_around  # re-exported: the venue and the risk gate share one band
from engine.venue.rejects import Reject

__all__ = [
    "CODE_INVALID_AMEND",
    "CODE_INVALID_PRICE",
    "CODE_INVALID_QTY",
    "CODE_MARKET_CLOSED",
    "CODE_ORDER_TYPE",
    "CODE_POST_ONLY",
    "CODE_UNKNOWN_ORDER",
    "Accepted",
    "CancelRejected",
    "Cancelled",
    "EngineEvent",
    "Execution",
    "Expired",
    "MatchingEngine",
    "Outcome",
    "Rejected",
    "ReplaceRejected",
    "Replaced",
    "RestingOrder",
    "StpPolicy",
    "band_around",
]

ZERO = Decimal(0)
# Enum members as module constants: in Python 3.11 ``Phase.OPEN`` costs ~190 ns per lookup, too
# much on the hot path.
BUY = Side.BUY
SELL = Side.SELL
_LIMIT = OrderType.LIMIT
_MARKET = OrderType.MARKET
_DAY = TimeInForce.DAY
_IOC = TimeInForce.IOC
_FOK = TimeInForce.FOK
_CLOSED = Phase.CLOSED
_PRE_OPEN = Phase.PRE_OPEN
_OPENING_MATCH = Phase.OPENING_MATCH
_OPEN = Phase.OPEN
_BREAK = Phase.BREAK
_POST_CLOSE = Phase.POST_CLOSE
_PRICE_CACHE_LIMIT = 100_000
NS_PER_MINUTE = 60 * 1_000_000_000

# Codes come from the engine's one table (engine/rejects.py): the broker document's where one fits,
# the engine's own (7xxx) otherwise. Plain ints: they are compared on the matching path.
CODE_INVALID_QTY = int(Reject.INVALID_QUANTITY)  # 2002; also a non-positive quantity
CODE_INVALID_PRICE = int(Reject.PRICE_OUTSIDE_CIRCUIT_BREAKER)  # 2003; also off-tick, not the close in post-close
CODE_MARKET_CLOSED = int(Reject.MARKET_CLOSED)  # 2006; also the opening match (no new orders, no changes)
CODE_ORDER_TYPE = int(Reject.ORDER_TYPE_NOT_SUPPORTED)  # 2007; market / IOC / FOK in pre-open
CODE_UNKNOWN_ORDER = int(Reject.ORDER_NOT_OPEN)  # 7004: cancel/amend of an order not resting
CODE_INVALID_AMEND = int(Reject.INVALID_ORDER)  # 7005: amend to a quantity not above what is filled
CODE_POST_ONLY = int(Reject.POST_ONLY_WOULD_TAKE)  # 7006

StpPolicy = Literal["cancel_newest", "cancel_oldest", "cancel_both"]
_STP_POLICIES = ("cancel_newest", "cancel_oldest", "cancel_both")

_NO_CHANGES: tuple[tuple[Side, Decimal, Decimal], ...] = ()


# --------------------------------------------------------------------------------------------
# Records and result events


class RestingOrder:
    """An order the engine knows: resting in the book, or being matched as the incoming one.

    ``qty`` is the current total (after amends); ``filled + leaves + cancelled == qty`` holds for
    every order, where ``cancelled`` is what a Cancelled/Expired event reported.
    """

    __slots__ = (
        "order_id", "owner", "client_id", "side", "price", "qty", "leaves", "filled",
        "order_type", "tif", "post_only", "seq",
    )

    def __init__(
        self,
        order_id: int,
        owner: str,
        client_id: str,
        side: Side,
        price: Decimal | None,
        qty: Decimal,
        order_type: OrderType,
        tif: TimeInForce,
        post_only: bool,
        seq: int,
    ) -> None:
        self.order_id = order_id
        self.owner = owner
        self.client_id = client_id
        self.side = side
        self.price = price
        self.qty = qty
        self.leaves = qty
        self.filled = ZERO
        self.order_type = order_type
        self.tif = tif
        self.post_only = post_only
        self.seq = seq  # arrival sequence: time priority; renewed when an amend loses priority

    def __repr__(self) -> str:
        return (
            f"RestingOrder(#{self.order_id} {self.owner}/{self.client_id} {self.side.value} "
            f"{self.leaves}/{self.qty} @ {self.price} seq={self.seq})"
        )


class EngineEvent:
    """Base of the result events; ``kind`` names the event for logs and dispatch tables."""

    __slots__ = ()
    kind: ClassVar[str] = ""

    def __repr__(self) -> str:
        fields = " ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and all(
            getattr(self, name) == getattr(other, name) for name in self.__slots__
        )

    __hash__ = None  # type: ignore[assignment]


class Accepted(EngineEvent):
    """The order passed validation and now has a venue id; always before any of its fills."""

    __slots__ = ("order_id", "owner", "client_id", "side", "price", "qty")
    kind = "accepted"

    def __init__(
        self, order_id: int, owner: str, client_id: str, side: Side, price: Decimal | None, qty: Decimal
    ) -> None:
        self.order_id = order_id
        self.owner = owner
        self.client_id = client_id
        self.side = side
        self.price = price
        self.qty = qty


class Rejected(EngineEvent):
    """A new order refused at entry: nothing was booked or traded."""

    __slots__ = ("owner", "client_id", "code", "reason")
    kind = "rejected"

    def __init__(self, owner: str, client_id: str, code: int, reason: str) -> None:
        self.owner = owner
        self.client_id = client_id
        self.code = code
        self.reason = reason


class Execution(EngineEvent):
    """One match between a resting (maker) order and an incoming (taker) one.

    In the opening auction both orders were resting: the earlier-arrived is reported as the maker,
    and ``auction`` is True (the public print then has no aggressor). ``*_leaves`` are what each
    order has left after this execution; 0 means it is completely filled.
    """

    __slots__ = (
        "maker_id", "maker_owner", "maker_client_id", "taker_id", "taker_owner", "taker_client_id",
        "taker_side", "price", "qty", "maker_leaves", "taker_leaves", "auction",
    )
    kind = "execution"

    def __init__(
        self,
        maker: RestingOrder,
        taker: RestingOrder,
        price: Decimal,
        qty: Decimal,
        auction: bool = False,
    ) -> None:
        self.maker_id = maker.order_id
        self.maker_owner = maker.owner
        self.maker_client_id = maker.client_id
        self.taker_id = taker.order_id
        self.taker_owner = taker.owner
        self.taker_client_id = taker.client_id
        self.taker_side = taker.side
        self.price = price
        self.qty = qty
        self.maker_leaves = maker.leaves
        self.taker_leaves = taker.leaves
        self.auction = auction

    @property
    def maker_side(self) -> Side:
        return self.taker_side.opposite


class Cancelled(EngineEvent):
    """The order's remaining ``qty`` is cancelled (on request, IOC/market remainder, FOK, STP)."""

    __slots__ = ("order_id", "owner", "client_id", "side", "qty", "filled", "reason")
    kind = "cancelled"

    def __init__(self, order: RestingOrder, qty: Decimal, reason: str) -> None:
        self.order_id = order.order_id
        self.owner = order.owner
        self.client_id = order.client_id
        self.side = order.side
        self.qty = qty
        self.filled = order.filled
        self.reason = reason


class Expired(EngineEvent):
    """A DAY order's remaining ``qty`` expired at the end of the trading day."""

    __slots__ = ("order_id", "owner", "client_id", "side", "qty", "filled")
    kind = "expired"

    def __init__(self, order: RestingOrder, qty: Decimal) -> None:
        self.order_id = order.order_id
        self.owner = order.owner
        self.client_id = order.client_id
        self.side = order.side
        self.qty = qty
        self.filled = order.filled


class Replaced(EngineEvent):
    """An amend took effect: ``price`` / ``qty`` are the new values, ``filled`` what had traded."""

    __slots__ = ("order_id", "owner", "client_id", "side", "price", "qty", "filled", "kept_priority")
    kind = "replaced"

    def __init__(self, order: RestingOrder, kept_priority: bool) -> None:
        self.order_id = order.order_id
        self.owner = order.owner
        self.client_id = order.client_id
        self.side = order.side
        self.price = order.price
        self.qty = order.qty
        self.filled = order.filled
        self.kept_priority = kept_priority


class _Refused(EngineEvent):
    """A cancel or amend the engine refused; the order (if it exists) is unchanged and keeps
    working. ``filled`` is None when the order is not resting."""

    __slots__ = ("order_id", "owner", "client_id", "filled", "code", "reason")

    def __init__(
        self, order_id: int, owner: str, client_id: str, filled: Decimal | None, code: int, reason: str
    ) -> None:
        self.order_id = order_id
        self.owner = owner
        self.client_id = client_id
        self.filled = filled
        self.code = code
        self.reason = reason


class ReplaceRejected(_Refused):
    """An amend was refused."""

    __slots__ = ()
    kind = "replace_rejected"


class CancelRejected(_Refused):
    """A cancel was refused."""

    __slots__ = ()
    kind = "cancel_rejected"


class Outcome:
    """What one operation did: result ``events`` in order, and the L2 ``changes`` it caused."""

    __slots__ = ("events", "changes")

    def __init__(self, events: list[EngineEvent], changes: tuple[tuple[Side, Decimal, Decimal], ...]) -> None:
        self.events = events
        self.changes = changes

    def __repr__(self) -> str:
        return f"Outcome(events={self.events!r}, changes={list(self.changes)!r})"


# --------------------------------------------------------------------------------------------
# Book side


class _BookSide:
    """One side of the book: FIFO queues per price, level totals, and prices sorted ascending
    (so the best bid is the last price and the best ask the first)."""

    __slots__ = ("side", "is_bid", "levels", "totals", "prices", "dirty")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.is_bid = side is BUY
        self.levels: dict[Decimal, deque[RestingOrder]] = {}
        self.totals: dict[Decimal, Decimal] = {}
        self.prices: list[Decimal] = []
        # price -> total at the start of the operation (or batch), for the L2 change list
        self.dirty: dict[Decimal, Decimal] = {}

    def best(self) -> Decimal | None:
        prices = self.prices
        if not prices:
            return None
        return prices[-1] if self.is_bid else prices[0]

    def prices_best_first(self) -> list[Decimal]:
        return self.prices[::-1] if self.is_bid else list(self.prices)

    def add(self, order: RestingOrder) -> None:
        price = order.price
        assert price is not None  # only limit orders rest
        queue = self.levels.get(price)
        if queue is None:
            self.dirty.setdefault(price, ZERO)
            queue = self.levels[price] = deque()
            self.totals[price] = order.leaves
            insort(self.prices, price)
        else:
            if price not in self.dirty:
                self.dirty[price] = self.totals[price]
            self.totals[price] += order.leaves
        queue.append(order)

    def reduce(self, price: Decimal, qty: Decimal) -> None:
        """Take ``qty`` off the level total (a fill or a size decrease); the queue is untouched."""
        if price not in self.dirty:
            self.dirty[price] = self.totals[price]
        self.totals[price] -= qty

    def remove(self, order: RestingOrder, leaves: Decimal) -> None:
        """Take an order (with ``leaves`` still counted in the total) out of its level."""
        price = order.price
        assert price is not None
        queue = self.levels[price]
        if queue[0] is order:
            queue.popleft()
        else:
            queue.remove(order)
        if price not in self.dirty:
            self.dirty[price] = self.totals[price]
        if queue:
            self.totals[price] -= leaves
        else:
            self._drop_level(price)

    def _drop_level(self, price: Decimal) -> None:
        del self.levels[price]
        del self.totals[price]
        prices = self.prices
        del prices[bisect_left(prices, price)]

    def drain_changes(self, out: list[tuple[Side, Decimal, Decimal]]) -> None:
        """Append ``(side, price, total)`` for each level whose total differs from what it was
        when first touched, then forget the touched levels."""
        dirty = self.dirty
        if not dirty:
            return
        totals = self.totals
        side = self.side
        for price, before in dirty.items():
            after = totals.get(price, ZERO)
            if after != before:
                out.append((side, price, after))
        dirty.clear()

    def orders_best_first(self) -> Iterator[RestingOrder]:
        levels = self.levels
        for price in self.prices_best_first():
            yield from levels[price]


# --------------------------------------------------------------------------------------------
# Engine


class MatchingEngine:
    """Price-time-priority matching for one symbol, following the PSX session phases.

    Operations (each returns an :class:`Outcome`): :meth:`submit`, :meth:`cancel`, :meth:`amend`,
    :meth:`expire_day_orders`, :meth:`set_phase`. ``ts`` (int ns) is used only to keep the
    30-minute VWAP that becomes the closing price.

    ``begin_batch`` / ``end_batch`` merge the level changes of several operations into one list (a
    market step that cancels and re-quotes several levels becomes one book update).
    """

    __slots__ = (
        "symbol", "tick_size", "lot_size", "_price_band", "_valid_prices", "reference_price", "stp",
        "_bids", "_asks", "_orders", "resting", "_phase", "_next_id", "_seq", "_batch",
        "last_trade_price", "traded_volume", "_window_ns", "_window", "_window_notional", "_window_qty",
        "_frozen_close", "_traded_today",
    )

    def __init__(
        self,
        symbol: str,
        *,
        tick_size: Decimal = Decimal("0.01"),
        lot_size: Decimal = Decimal(1),
        reference_price: Decimal | None = None,
        price_band: tuple[Decimal, Decimal] | None = None,
        stp: StpPolicy = "cancel_newest",
        next_id: Callable[[], int] | None = None,
        closing_window_minutes: int = 30,
    ) -> None:
        if stp not in _STP_POLICIES:
            raise ValueError(f"unknown self-trade prevention policy {stp!r}; expected one of {_STP_POLICIES}")
        self.symbol = symbol
        self.tick_size = tick_size
        self.lot_size = lot_size
        self._price_band = price_band
        self._valid_prices: dict[Decimal, Decimal] = {}  # price -> canonical form, for prices that passed
        #: opening-auction tie-break and the closing price when nothing traded (previous close)
        self.reference_price = reference_price
        self.stp: StpPolicy = stp
        self._bids = _BookSide(BUY)
        self._asks = _BookSide(SELL)
        self._orders: dict[int, RestingOrder] = {}
        #: resting orders by id, read-only for callers (a plain dict: ``order_id in engine.resting``
        #: is the cheapest liveness check for the synthetic market's hot loop)
        self.resting: dict[int, RestingOrder] = self._orders
        self._phase = _CLOSED
        # venue order ids: pass one shared counter to make ids unique across a venue's engines
        self._next_id = next_id if next_id is not None else itertools.count(1).__next__
        self._seq = 0
        self._batch = False
        self.last_trade_price: Decimal | None = None
        self.traded_volume = ZERO
        self._window_ns = closing_window_minutes * NS_PER_MINUTE
        self._window: deque[tuple[int, Decimal, Decimal]] = deque()  # (ts, notional, qty), OPEN only
        self._window_notional = ZERO
        self._window_qty = ZERO
        self._frozen_close: Decimal | None = None
        self._traded_today = False

    # ---- read side -----------------------------------------------------------------------
    @property
    def price_band(self) -> tuple[Decimal, Decimal] | None:
        """The circuit band ``(low, high)``; orders priced outside it are rejected (2003)."""
        return self._price_band

    @price_band.setter
    def price_band(self, band: tuple[Decimal, Decimal] | None) -> None:
        self._price_band = band
        self._valid_prices.clear()

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def best_bid(self) -> Decimal | None:
        return self._bids.best()

    @property
    def best_ask(self) -> Decimal | None:
        return self._asks.best()

    def depth(self, side: Side) -> list[tuple[Decimal, Decimal]]:
        """``(price, total_qty)`` levels of one side, best first."""
        book = self._bids if side is BUY else self._asks
        totals = book.totals
        return [(price, totals[price]) for price in book.prices_best_first()]

    def level_qty(self, side: Side, price: Decimal) -> Decimal:
        book = self._bids if side is BUY else self._asks
        return book.totals.get(price, ZERO)

    def snapshot(self) -> tuple[tuple[Side, Decimal, Decimal], ...]:
        """Every level as ``(side, price, qty)``, bids best first then asks best first: the
        ``changes`` of a snapshot BookUpdate."""
        return tuple((BUY, p, q) for p, q in self.depth(BUY)) + tuple((SELL, p, q) for p, q in self.depth(SELL))

    def order(self, order_id: int) -> RestingOrder | None:
        """The resting order with this id, or None once it is filled, cancelled or expired."""
        return self._orders.get(order_id)

    def resting_orders(self, side: Side | None = None) -> list[RestingOrder]:
        """Resting orders in priority order (best price, then earliest), one side or both."""
        if side is None:
            return list(self._bids.orders_best_first()) + list(self._asks.orders_best_first())
        return list((self._bids if side is BUY else self._asks).orders_best_first())

    @property
    def closing_price(self) -> Decimal | None:
        """The closing price: VWAP of continuous-trading trades in the last 30 minutes before the
        close (PSX practice), else the last trade, else the reference price. Frozen when the
        continuous session ends; before that it is the running value."""
        if self._frozen_close is not None:
            return self._frozen_close
        return self._current_close()

    def _current_close(self) -> Decimal | None:
        if self._window_qty:
            vwap = self._window_notional / self._window_qty
            tick = self.tick_size
            return ((vwap / tick).to_integral_value(rounding=ROUND_HALF_EVEN) * tick).quantize(tick)
        if self._traded_today and self.last_trade_price is not None:
            return self.last_trade_price
        return self.reference_price

    # ---- batching ------------------------------------------------------------------------
    def begin_batch(self) -> None:
        """Start merging level changes: operations now return no ``changes`` until
        :meth:`end_batch` returns them all, each level once with its final total."""
        self._batch = True

    def end_batch(self) -> tuple[tuple[Side, Decimal, Decimal], ...]:
        self._batch = False
        return self._drain_changes()

    def _drain_changes(self) -> tuple[tuple[Side, Decimal, Decimal], ...]:
        bids, asks = self._bids, self._asks
        if not bids.dirty and not asks.dirty:
            return _NO_CHANGES
        out: list[tuple[Side, Decimal, Decimal]] = []
        if bids.dirty:  # most operations touch one side: no call for the other
            bids.drain_changes(out)
        if asks.dirty:
            asks.drain_changes(out)
        return tuple(out)

    def _done(self, events: list[EngineEvent]) -> Outcome:
        if self._batch or (not self._bids.dirty and not self._asks.dirty):
            return Outcome(events, _NO_CHANGES)
        return Outcome(events, self._drain_changes())

    # ---- operations ----------------------------------------------------------------------
    def submit(
        self,
        owner: str,
        client_id: str,
        side: Side,
        qty: Decimal,
        price: Decimal | None = None,
        order_type: OrderType = OrderType.LIMIT,
        tif: TimeInForce = TimeInForce.DAY,
        post_only: bool = False,
        ts: int = 0,
    ) -> Outcome:
        """Enter a new order. Market orders never rest (what cannot trade now is cancelled)."""
        events: list[EngineEvent] = []
        phase = self._phase
        is_market = order_type is _MARKET
        if is_market:
            price = None
        problem = self._check_new(qty, price, is_market, tif, post_only, phase)
        if problem is not None:
            events.append(Rejected(owner, client_id, problem[0], problem[1]))
            return self._done(events)
        if price is not None:
            price = self._valid_prices[price]  # the canonical (quantized) form, cached by _check_price
            if post_only and phase is not _PRE_OPEN and self._crosses(side, price):
                events.append(Rejected(owner, client_id, CODE_POST_ONLY, "post-only order would take liquidity"))
                return self._done(events)
        self._seq += 1
        order = RestingOrder(self._next_id(), owner, client_id, side, price, qty, order_type, tif, post_only, self._seq)
        events.append(Accepted(order.order_id, owner, client_id, side, price, qty))
        if phase is _PRE_OPEN:
            self._rest(order)
            return self._done(events)
        if tif is _FOK:
            available = self._available_for(order)
            if available < qty:
                order.leaves = ZERO
                events.append(Cancelled(order, qty, f"fill-or-kill: only {available} of {qty} available"))
                return self._done(events)
        self._match(order, events, ts)
        if order.leaves:
            if is_market:
                self._cancel_incoming(order, events, "market order: no more liquidity")
            elif tif is _IOC or tif is _FOK:
                self._cancel_incoming(order, events, "immediate-or-cancel remainder")
            else:
                self._rest(order)
        return self._done(events)

    def restore_close(self, close: Decimal) -> None:
        """Today's closing price, fixed before the venue restarted: post-close trades at it, and
        the next day takes it as its reference price."""
        self._frozen_close = close
        self._traded_today = True

    def restore_resting(
        self, owner: str, client_id: str, order_id: int, side: Side, price: Decimal, qty: Decimal, filled: Decimal,
        tif: TimeInForce, post_only: bool,
    ) -> RestingOrder:
        """Put back an order that was resting when the venue stopped (a restarted venue keeps
        working what it accepted). Call on an empty book, before the market starts: nothing matches."""
        self._seq += 1
        order = RestingOrder(order_id, owner, client_id, side, price, qty, OrderType.LIMIT, tif, post_only, self._seq)
        order.filled = filled
        order.leaves = qty - filled
        self._rest(order)
        return order

    def cancel(self, order_id: int, ts: int = 0, reason: str = "cancelled on request") -> Outcome:
        """Cancel a resting order. Refused during the opening match and for unknown orders."""
        events: list[EngineEvent] = []
        order = self._orders.get(order_id)
        if order is None:
            events.append(CancelRejected(order_id, "", "", None, CODE_UNKNOWN_ORDER, "order not found (not resting)"))
        elif self._phase is _OPENING_MATCH:
            events.append(
                CancelRejected(
                    order_id, order.owner, order.client_id, order.filled, CODE_MARKET_CLOSED,
                    "cancels are not accepted during the opening match",
                )
            )
        else:
            leaves = order.leaves
            self._unbook(order)
            events.append(Cancelled(order, leaves, reason))
        return self._done(events)

    def amend(self, order_id: int, price: Decimal | None = None, qty: Decimal | None = None, ts: int = 0) -> Outcome:
        """Change a resting order's price and/or total quantity (None keeps the value).

        Time priority is lost on a price change or a size increase and kept on a size decrease.
        An amended price that crosses the book trades at once (the order is then the taker)."""
        events: list[EngineEvent] = []
        order = self._orders.get(order_id)
        if order is None:
            events.append(ReplaceRejected(order_id, "", "", None, CODE_UNKNOWN_ORDER, "order not found (not resting)"))
            return self._done(events)
        phase = self._phase
        new_price = order.price if price is None else price
        new_qty = order.qty if qty is None else qty
        assert new_price is not None
        problem: tuple[int, str] | None = None
        if phase is not _PRE_OPEN and phase is not _OPEN and phase is not _POST_CLOSE:
            problem = (CODE_MARKET_CLOSED, f"amends are not accepted in phase {phase.value}")
        elif new_qty <= order.filled:
            problem = (CODE_INVALID_AMEND, f"new quantity {new_qty} does not exceed the filled {order.filled}")
        elif new_qty % self.lot_size:
            problem = (CODE_INVALID_QTY, f"quantity {new_qty} is not a multiple of the lot size {self.lot_size}")
        elif price is not None or phase is _POST_CLOSE:  # an unchanged price was checked on entry
            problem = self._check_price(new_price, phase)
            if problem is None:
                new_price = self._valid_prices[new_price]
        if problem is None:
            if (
                order.post_only
                and phase is not _PRE_OPEN
                and new_price != order.price
                and self._crosses(order.side, new_price)
            ):
                problem = (CODE_POST_ONLY, "post-only order would take liquidity at the amended price")
        if problem is not None:
            events.append(ReplaceRejected(order_id, order.owner, order.client_id, order.filled, *problem))
            return self._done(events)

        book = self._bids if order.side is BUY else self._asks
        if new_price == order.price and new_qty <= order.qty:
            # Same price, same or smaller size: keeps its place in the queue.
            shrink = order.qty - new_qty
            if shrink:
                order.qty = new_qty
                order.leaves -= shrink
                book.reduce(new_price, shrink)
            events.append(Replaced(order, kept_priority=True))
            return self._done(events)

        # Price change or size increase: out of the queue, back in at the end as a new arrival.
        book.remove(order, order.leaves)
        del self._orders[order.order_id]
        order.price = new_price
        order.leaves = new_qty - order.filled
        order.qty = new_qty
        self._seq += 1
        order.seq = self._seq
        events.append(Replaced(order, kept_priority=False))
        if phase is not _PRE_OPEN:
            self._match(order, events, ts)
        if order.leaves:
            self._rest(order)
        return self._done(events)

    def expire_day_orders(self, ts: int = 0) -> Outcome:
        """End of the trading day: every resting DAY order expires; GTC orders stay."""
        events: list[EngineEvent] = []
        for order in [o for o in self._orders.values() if o.tif is _DAY]:
            leaves = order.leaves
            self._unbook(order)
            events.append(Expired(order, leaves))
        return self._done(events)

    def set_phase(self, phase: Phase, ts: int = 0) -> Outcome:
        """Enter a session phase. Leaving pre-open for the opening match or continuous trading
        runs the opening auction; leaving continuous trading fixes the closing price."""
        events: list[EngineEvent] = []
        old = self._phase
        if phase is old:
            return self._done(events)
        if old is _CLOSED:
            self._new_day()
        self._phase = phase
        if old is _PRE_OPEN and (phase is _OPENING_MATCH or phase is _OPEN):
            self._opening_auction(events, ts)
        if (phase is _POST_CLOSE or phase is _CLOSED) and self._frozen_close is None:
            self._prune_window(ts)
            self._frozen_close = self._current_close()
        return self._done(events)

    # ---- validation ----------------------------------------------------------------------
    def _check_new(
        self,
        qty: Decimal,
        price: Decimal | None,
        is_market: bool,
        tif: TimeInForce,
        post_only: bool,
        phase: Phase,
    ) -> tuple[int, str] | None:
        if phase is _OPEN:
            pass
        elif phase is _CLOSED or phase is _BREAK:
            return CODE_MARKET_CLOSED, f"market closed ({phase.value}): new orders are not accepted"
        elif phase is _OPENING_MATCH:
            return CODE_MARKET_CLOSED, "opening match in progress: new orders are not accepted"
        elif phase is _PRE_OPEN:
            if is_market or tif is _IOC or tif is _FOK:
                kind = "market" if is_market else tif.value.upper()
                return CODE_ORDER_TYPE, f"pre-open accepts limit DAY/GTC orders only, not {kind}"
        elif phase is _POST_CLOSE and is_market:
            return CODE_ORDER_TYPE, "post-close accepts only limit orders at the closing price"
        if qty <= ZERO or qty % self.lot_size:
            return CODE_INVALID_QTY, f"quantity {qty} is not a positive multiple of the lot size {self.lot_size}"
        if is_market:
            if post_only:
                return CODE_ORDER_TYPE, "a market order cannot be post-only"
            return None
        if price is None:
            return CODE_INVALID_PRICE, "a limit order needs a price"
        if post_only and (tif is _IOC or tif is _FOK):
            return CODE_ORDER_TYPE, f"a post-only order cannot be {tif.value.upper()}"
        return self._check_price(price, phase)

    def _check_price(self, price: Decimal, phase: Phase) -> tuple[int, str] | None:
        """None if ``price`` is acceptable now. A price that passes the static checks (positive,
        on tick, inside the band) is remembered in ``_valid_prices`` with its canonical form, so
        the next order at that price pays one dict lookup."""
        canonical = self._valid_prices.get(price)
        if canonical is None:
            if price <= ZERO or price % self.tick_size:
                return CODE_INVALID_PRICE, f"price {price} is not a positive multiple of the tick {self.tick_size}"
            band = self._price_band
            if band is not None and not band[0] <= price <= band[1]:
                return CODE_INVALID_PRICE, f"price {price} is outside the circuit band {band[0]}-{band[1]}"
            canonical = price.quantize(self.tick_size)
            if len(self._valid_prices) >= _PRICE_CACHE_LIMIT:
                self._valid_prices.clear()
            self._valid_prices[price] = canonical
        if phase is _POST_CLOSE:
            close = self.closing_price
            if close is None or canonical != close:
                return CODE_INVALID_PRICE, f"post-close accepts only the closing price {close}, not {price}"
        return None

    def _crosses(self, side: Side, price: Decimal) -> bool:
        if side is BUY:
            best = self._asks.best()
            return best is not None and best <= price
        best = self._bids.best()
        return best is not None and best >= price

    # ---- matching ------------------------------------------------------------------------
    def _available_for(self, taker: RestingOrder) -> Decimal:
        """What ``taker`` could fill right now, walking the book as matching would (same-owner
        orders stop the walk, or are skipped under cancel_oldest). Used by FOK, with no effects."""
        is_buy = taker.side is BUY
        book = self._asks if is_buy else self._bids
        limit = taker.price
        skip_own = self.stp == "cancel_oldest"
        owner = taker.owner
        available = ZERO
        want = taker.leaves
        for price in book.prices_best_first():
            if limit is not None and (price > limit if is_buy else price < limit):
                break
            for maker in book.levels[price]:
                if maker.owner == owner:
                    if skip_own:
                        continue
                    return available
                available += maker.leaves
                if available >= want:
                    return available
        return available

    def _match(self, taker: RestingOrder, events: list[EngineEvent], ts: int) -> None:
        """Continuous matching of an incoming order against the opposite side."""
        is_buy = taker.side is BUY
        book = self._asks if is_buy else self._bids
        prices = book.prices
        levels = book.levels
        limit = taker.price
        fixed_price = self.closing_price if self._phase is _POST_CLOSE else None
        continuous = self._phase is _OPEN
        owner = taker.owner
        orders = self._orders
        while taker.leaves and prices:
            best = prices[0] if is_buy else prices[-1]
            if limit is not None and (best > limit if is_buy else best < limit):
                break
            queue = levels[best]
            maker = queue[0]
            if maker.owner == owner:
                policy = self.stp
                if policy != "cancel_newest":
                    leaves = maker.leaves
                    self._unbook(maker)
                    events.append(Cancelled(maker, leaves, "self-trade prevention (resting order cancelled)"))
                if policy != "cancel_oldest":
                    self._cancel_incoming(taker, events, "self-trade prevention (incoming order cancelled)")
                    return
                continue
            qty = taker.leaves if taker.leaves < maker.leaves else maker.leaves
            maker.leaves -= qty
            maker.filled += qty
            taker.leaves -= qty
            taker.filled += qty
            if best not in book.dirty:
                book.dirty[best] = book.totals[best]
            if maker.leaves:
                book.totals[best] -= qty
            else:
                queue.popleft()
                del orders[maker.order_id]
                if queue:
                    book.totals[best] -= qty
                else:
                    book._drop_level(best)
            price = best if fixed_price is None else fixed_price
            events.append(Execution(maker, taker, price, qty))
            self._record_trade(price, qty, ts, continuous)

    def _cancel_incoming(self, order: RestingOrder, events: list[EngineEvent], reason: str) -> None:
        leaves = order.leaves
        order.leaves = ZERO
        events.append(Cancelled(order, leaves, reason))

    def _rest(self, order: RestingOrder) -> None:
        (self._bids if order.side is BUY else self._asks).add(order)
        self._orders[order.order_id] = order

    def _unbook(self, order: RestingOrder) -> None:
        """Take a resting order out of the book; its leaves become zero (cancelled/expired)."""
        (self._bids if order.side is BUY else self._asks).remove(order, order.leaves)
        del self._orders[order.order_id]
        order.leaves = ZERO

    def _fill_resting(self, order: RestingOrder, qty: Decimal) -> None:
        book = self._bids if order.side is BUY else self._asks
        order.leaves -= qty
        order.filled += qty
        if order.leaves:
            assert order.price is not None
            book.reduce(order.price, qty)
        else:
            book.remove(order, qty)
            del self._orders[order.order_id]

    def _record_trade(self, price: Decimal, qty: Decimal, ts: int, continuous: bool) -> None:
        self.last_trade_price = price
        self.traded_volume += qty
        self._traded_today = True
        if continuous:
            notional = price * qty
            self._window.append((ts, notional, qty))
            self._window_notional += notional
            self._window_qty += qty
            self._prune_window(ts)

    def _prune_window(self, ts: int) -> None:
        window = self._window
        horizon = ts - self._window_ns
        while window and window[0][0] < horizon:
            _, notional, qty = window.popleft()
            self._window_notional -= notional
            self._window_qty -= qty

    def _new_day(self) -> None:
        """Leaving CLOSED starts a trading day: yesterday's close becomes the reference price."""
        if self._traded_today and self._frozen_close is not None:
            self.reference_price = self._frozen_close
        self._frozen_close = None
        self._traded_today = False
        self._window.clear()
        self._window_notional = ZERO
        self._window_qty = ZERO

    # ---- opening auction -----------------------------------------------------------------
    def auction_price(self) -> tuple[Decimal | None, Decimal]:
        """The single price that would uncross the book now, and the volume it would execute.

        Maximum executed volume; then minimum imbalance; then closest to the reference price;
        then the lower price. Candidates are the order prices in the crossed range plus the
        reference price when it lies inside that range."""
        best_bid = self._bids.best()
        best_ask = self._asks.best()
        if best_bid is None or best_ask is None or best_bid < best_ask:
            return None, ZERO
        candidates = {p for p in self._bids.prices if p >= best_ask}
        candidates.update(p for p in self._asks.prices if p <= best_bid)
        ref = self.reference_price
        if ref is not None and best_ask <= ref <= best_bid and ref % self.tick_size == 0:
            candidates.add(ref.quantize(self.tick_size))
        bid_totals = self._bids.totals
        ask_totals = self._asks.totals
        best_key: tuple[Decimal, Decimal, Decimal, Decimal] | None = None
        best_price: Decimal | None = None
        best_volume = ZERO
        for price in sorted(candidates):
            demand = sum((q for p, q in bid_totals.items() if p >= price), ZERO)
            supply = sum((q for p, q in ask_totals.items() if p <= price), ZERO)
            volume = min(demand, supply)
            distance = abs(price - ref) if ref is not None else ZERO
            key = (-volume, abs(demand - supply), distance, price)
            if best_key is None or key < best_key:
                best_key, best_price, best_volume = key, price, volume
        return best_price, best_volume

    def _opening_auction(self, events: list[EngineEvent], ts: int) -> None:
        """Uncross the pre-open book at one price, pairing orders in price-time priority.

        Self-trade prevention applies to each pair; if it leaves the book still crossed, the
        auction runs again on what is left (a second price is then possible, only in that case)."""
        while True:
            price, volume = self.auction_price()
            if price is None or not volume:
                return
            bids = [o for o in self._bids.orders_best_first() if o.price is not None and o.price >= price]
            asks = [o for o in self._asks.orders_best_first() if o.price is not None and o.price <= price]
            bi = ai = 0
            while bi < len(bids) and ai < len(asks):
                bid = bids[bi]
                ask = asks[ai]
                if not bid.leaves:
                    bi += 1
                    continue
                if not ask.leaves:
                    ai += 1
                    continue
                older, newer = (bid, ask) if bid.seq < ask.seq else (ask, bid)
                if bid.owner == ask.owner:
                    policy = self.stp
                    if policy != "cancel_oldest":
                        leaves = newer.leaves
                        self._unbook(newer)
                        events.append(Cancelled(newer, leaves, "self-trade prevention (newer order cancelled)"))
                    if policy != "cancel_newest":
                        leaves = older.leaves
                        self._unbook(older)
                        events.append(Cancelled(older, leaves, "self-trade prevention (older order cancelled)"))
                    continue
                qty = bid.leaves if bid.leaves < ask.leaves else ask.leaves
                self._fill_resting(bid, qty)
                self._fill_resting(ask, qty)
                events.append(Execution(older, newer, price, qty, auction=True))
                self._record_trade(price, qty, ts, continuous=False)

    # ---- invariants (for tests and debugging) --------------------------------------------
    def check_invariants(self) -> None:
        """Raise AssertionError if the book's internal state is inconsistent, or crossed outside
        pre-open."""
        for book in (self._bids, self._asks):
            if book.prices != sorted(book.levels):
                raise AssertionError(f"{book.side.value} price list out of order or out of sync")
            if set(book.totals) != set(book.levels):
                raise AssertionError(f"{book.side.value} totals out of sync with levels")
            for price, queue in book.levels.items():
                if not queue:
                    raise AssertionError(f"empty level {price} left in the {book.side.value} book")
                total = sum((o.leaves for o in queue), ZERO)
                if total != book.totals[price]:
                    raise AssertionError(f"level {price} total {book.totals[price]} != sum of leaves {total}")
                previous_seq = -1
                for o in queue:
                    if o.price != price or o.side is not book.side or o.leaves <= 0:
                        raise AssertionError(f"bad order in level {price}: {o!r}")
                    if self._orders.get(o.order_id) is not o:
                        raise AssertionError(f"order {o!r} in book but not indexed")
                    if o.filled + o.leaves > o.qty:
                        raise AssertionError(f"order {o!r} over-filled")
                    if o.seq <= previous_seq:
                        raise AssertionError(f"level {price} queue not in arrival order")
                    previous_seq = o.seq
        booked = sum(len(q) for q in self._bids.levels.values()) + sum(len(q) for q in self._asks.levels.values())
        if booked != len(self._orders):
            raise AssertionError("order index and book disagree")
        if self._phase is not _PRE_OPEN:
            bid, ask = self._bids.best(), self._asks.best()
            if bid is not None and ask is not None and bid >= ask:
                raise AssertionError(f"book crossed at rest: bid {bid} >= ask {ask}")
