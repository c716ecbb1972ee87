"""PSX market-rule checks: the session phase (PSX_RULES rules 1, 3, 15), the circuit breaker
(rule 6) and the internal fat-finger limits. They read the session and market facts through a
:class:`MarketView` and the numbers through the symbol's :class:`RulePack`.

They run after the structural chain, so the instrument is known and the price is on the tick grid.
A symbol without a pack cannot occur then (packs are resolved for every configured symbol); should
it, the pack-driven rules allow rather than crash, and the venue has the last word.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_UP, Decimal

from engine.model import OrderType, Phase, SessionState, TimeInForce
from engine.rejects import Reject
from engine.risk.gate import MarketView, OrderRequest, Rejection
from engine.risk.rulepack import RulePack

__all__ = ["CircuitBreaker", "FatFinger", "SessionGate", "cancel_refusal", "psx_checks"]

# Module constants: an enum attribute lookup costs more than a global read on the order path.
_MARKET = OrderType.MARKET
_OPEN = Phase.OPEN
_PRE_OPEN = Phase.PRE_OPEN
_POST_CLOSE = Phase.POST_CLOSE
_HUNDRED = Decimal(100)
_CENT = Decimal("0.01")


def _percent(fraction: Decimal) -> str:
    """0.10 -> '10%', 0.075 -> '7.5%': a fraction as people write it (rejection text only)."""
    return f"{(fraction * _HUNDRED).normalize():f}%"


def _phase_name(session: SessionState) -> str:
    phase = session.phase
    return phase.value if isinstance(phase, Phase) else str(phase)


def cancel_refusal(session: SessionState) -> Rejection | None:
    """2006 when the phase takes no cancels (the opening match): the runtime's cancel path has no
    :class:`OrderRequest`, so it asks this instead of the gate."""
    if session.accepts_modify_cancel:
        return None
    return Rejection(Reject.MARKET_CLOSED, f"no cancel during '{_phase_name(session)}': the phase accepts no cancels")


_IMMEDIATE = frozenset({TimeInForce.IOC, TimeInForce.FOK})


class SessionGate:
    """2006 / 2007 / 2003: what the current phase accepts.

    New orders need a phase that accepts new orders, amends one that accepts modify/cancel. Pre-open
    takes no market orders unless the pack allows them; post-close (when the pack says so) takes
    only limit orders at the published closing price, because PSX trades only at that price then.
    """

    __slots__ = ("view", "packs")

    def __init__(self, view: MarketView, packs: Mapping[str, RulePack]) -> None:
        self.view = view
        self.packs = packs

    def check(self, request: OrderRequest) -> Rejection | None:
        session = self.view.session
        if request.amend_of is None:
            if not session.accepts_new:
                return Rejection(
                    Reject.MARKET_CLOSED, f"market closed: phase '{_phase_name(session)}' accepts no new orders"
                )
        elif not session.accepts_modify_cancel:
            return Rejection(
                Reject.MARKET_CLOSED,
                f"no amend during '{_phase_name(session)}': the phase accepts no modify or cancel",
            )
        phase = session.phase
        if phase is _OPEN:  # continuous trading, the common case: neither pre-open nor post-close
            return None
        if phase == _PRE_OPEN:
            pack = self.packs.get(request.symbol)
            if request.order_type is _MARKET and pack is not None and not pack.pre_open_market_orders:
                return Rejection(
                    Reject.ORDER_TYPE_NOT_SUPPORTED,
                    f"market orders are not accepted in pre-open for {request.symbol}; send a limit order",
                )
            if request.tif in _IMMEDIATE:  # nothing matches before the opening auction
                return Rejection(
                    Reject.ORDER_TYPE_NOT_SUPPORTED,
                    f"{request.tif.value} orders cannot be accepted in pre-open (nothing matches until the "
                    f"opening auction); send a DAY or GTC limit order",
                )
        elif phase == _POST_CLOSE:
            pack = self.packs.get(request.symbol)
            if pack is not None and pack.post_close_closing_price_only:
                return self._post_close(request)
        return None

    def _post_close(self, request: OrderRequest) -> Rejection | None:
        if request.order_type is _MARKET:
            return Rejection(
                Reject.ORDER_TYPE_NOT_SUPPORTED,
                f"market orders are not accepted in post-close for {request.symbol}; only limit orders at the "
                f"closing price",
            )
        facts = request.facts or self.view.facts(request.venue, request.symbol)
        closing = facts.closing if facts is not None else None
        if closing is None:
            return Rejection(
                Reject.MARKET_CLOSED,
                f"post-close trades only at the closing price, and the closing price of {request.symbol} is not "
                f"yet published",
            )
        price = request.price
        if price != closing:
            return Rejection(
                Reject.PRICE_OUTSIDE_CIRCUIT_BREAKER,
                f"price {price} is not the closing price {closing} of {request.symbol}; post-close trades only at "
                f"the closing price",
            )
        return None


class CircuitBreaker:
    """2010 while the instrument is halted; 2003 for a limit price outside today's circuit band.

    The band is the instrument facts' own (built once per reference price from the symbol's pack),
    so an order pays one lookup and two comparisons, and the gate, the paper venue and the
    runtime's band-hit halts all read the same two numbers.
    """

    __slots__ = ("view",)

    def __init__(self, view: MarketView) -> None:
        self.view = view

    def check(self, request: OrderRequest) -> Rejection | None:
        facts = request.facts or self.view.facts(request.venue, request.symbol)
        if facts is None:
            return None
        halted = facts.venue_halt or facts.band_halt
        if halted is not None:
            return Rejection(Reject.CIRCUIT_BREAKER_TRIGGERED, f"{request.symbol} is halted: {halted}")
        price = request.price
        band = facts.band
        if price is None or band is None:  # a market order trades inside the band by construction
            return None
        if band[0] <= price <= band[1]:
            return None
        pack = facts.pack
        width = f"±{_percent(pack.band_pct)}" if pack is not None else "its band"
        if pack is not None and pack.band_abs_floor:
            width += f" or Rs {pack.band_abs_floor}, whichever is higher"
        return Rejection(
            Reject.PRICE_OUTSIDE_CIRCUIT_BREAKER,
            f"price {price} is outside the circuit band [{band[0]}, {band[1]}] around the previous close "
            f"{facts.reference} for {request.symbol} ({width})",
        )


class _SymbolLimits:
    """One symbol's fat-finger limits, read once from its (frozen) pack, and the exact bounds of
    the allowed deviation around the reference price they were last built for: one dict lookup
    per order finds all of it."""

    __slots__ = ("max_qty", "max_notional", "max_dev", "ref", "low", "high")

    def __init__(self, pack: RulePack) -> None:
        self.max_qty = pack.max_order_qty
        self.max_notional = pack.max_order_notional
        self.max_dev = pack.max_price_deviation_pct
        self.ref: Decimal | None = None  # no bounds built yet
        self.low: Decimal | None = None
        self.high: Decimal | None = None


class FatFinger:
    """7010 / 7011: internal limits that catch a typo before the venue does.

    Quantity and notional above the pack's maximums are refused (a market order is priced at the
    last trade, else the mid, else the reference price; unpriceable, its notional is not checked).
    A limit price further than ``max_price_deviation_pct`` from the last trade (else the mid) is
    refused; the comparison is exact (``|price - ref| > ref x pct``), never a rounded ratio.
    """

    __slots__ = ("view", "packs", "_symbols")

    def __init__(self, view: MarketView, packs: Mapping[str, RulePack]) -> None:
        self.view = view
        self.packs = packs
        # symbol -> its limits and deviation bounds (rebuilt when the reference moves, so an order
        # pays two comparisons, not a subtraction and a product)
        self._symbols = {symbol: _SymbolLimits(pack) for symbol, pack in packs.items()}

    def check(self, request: OrderRequest) -> Rejection | None:
        try:  # a subscript, not .get(): no method call on the common path
            limits = self._symbols[request.symbol]
        except KeyError:
            return None
        qty = request.qty
        max_qty = limits.max_qty
        if max_qty is not None and qty > max_qty:
            return Rejection(
                Reject.ORDER_TOO_LARGE,
                f"quantity {qty} of {request.symbol} is above the largest order quantity {max_qty}",
            )
        price = request.price
        max_notional = limits.max_notional
        if max_notional is not None and (price is None or price * qty > max_notional):
            rejection = self._notional(request, price, max_notional)
            if rejection is not None:
                return rejection
        max_dev = limits.max_dev
        if max_dev is None or price is None:
            return None
        facts = request.facts or self.view.facts(request.venue, request.symbol)
        if facts is None:
            return None
        ref = facts.last_price
        ref_name = "last trade price"
        if ref is None:
            book = facts.book
            ref = book.known_mid  # a slot: the property only when the touch changed since last asked
            if ref is None:
                ref = book.mid
                if ref is None:
                    return None
            ref_name = "mid price"
        # the same object as last time (the book's cached mid, an unchanged last trade) is the
        # same value: the comparison is only needed for a new object
        built = limits.ref
        if ref is not built and (built is None or built != ref):
            width = ref * max_dev
            limits.low, limits.high, limits.ref = ref - width, ref + width, ref
        if limits.low <= price <= limits.high:  # type: ignore[operator]  # built just above
            return None
        if ref <= 0:  # not a price anyone trades at: no reference to measure against
            return None
        off = (abs(price - ref) * _HUNDRED / ref).quantize(_CENT, rounding=ROUND_UP)  # never shown at the limit
        return Rejection(
            Reject.PRICE_TOO_FAR,
            f"price {price} is {off}% from the {ref_name} {ref} of {request.symbol}; the fat-finger limit is "
            f"{_percent(max_dev)}",
        )

    def _notional(self, request: OrderRequest, price: Decimal | None, max_notional: Decimal) -> Rejection | None:
        if price is not None:
            notional = price * request.qty
            if notional <= max_notional:
                return None
            how = f"{request.qty} x {price}"
        else:
            name, price = self._market_price(request)
            if price is None:
                return None
            notional = price * request.qty
            if notional <= max_notional:
                return None
            how = f"{request.qty} x {price}, the {name} price"
        return Rejection(
            Reject.ORDER_TOO_LARGE,
            f"notional {notional} ({how}) of {request.symbol} is above the largest order notional {max_notional}",
        )

    def _market_price(self, request: OrderRequest) -> tuple[str, Decimal | None]:
        """What a market order would likely pay: the last trade, else the mid, else the reference."""
        facts = request.facts or self.view.facts(request.venue, request.symbol)
        if facts is None:
            return "reference", None
        if facts.last_price is not None:
            return "last trade", facts.last_price
        mid = facts.book.mid
        if mid is not None:
            return "mid", mid
        return "reference", facts.reference


def psx_checks(view: MarketView, packs: Mapping[str, RulePack]) -> list:
    """The PSX chain in its order: the session first (nothing else matters when the market is
    closed), then the circuit breaker, then the fat-finger limits."""
    return [SessionGate(view, packs), CircuitBreaker(view), FatFinger(view, packs)]
