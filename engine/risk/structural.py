"""Checks every order passes on any venue: it names a known instrument of the strategy, its
quantity is a positive multiple of the lot, its price sits on the tick grid, the venue supports its
type, and its client id is new."""

from __future__ import annotations

from collections.abc import Container
from decimal import Decimal, DecimalException

from engine.model import OrderType, TimeInForce
from engine.rejects import Reject
from engine.risk.gate import OrderRequest, Rejection
from engine.venue import Capabilities

_ZERO = Decimal(0)
# module constants: a global read is cheaper than an enum attribute lookup on the order path
_LIMIT = OrderType.LIMIT
_MARKET = OrderType.MARKET
_GTC = TimeInForce.GTC
_IOC = TimeInForce.IOC
_FOK = TimeInForce.FOK


class KnownInstrument:
    """2001: the symbol must be one of the strategy's configured instruments on its venue."""

    __slots__ = ()

    def check(self, request: OrderRequest) -> Rejection | None:
        if request.instrument is None:
            return Rejection(
                Reject.INVALID_SYMBOL,
                f"{request.symbol!r} is not one of strategy {request.strategy!r}'s instruments on venue "
                f"{request.venue!r}",
            )
        return None


class SupportedOrderType:
    """2007: the venue must support the order type, time in force and post-only flag."""

    __slots__ = ("capabilities", "_plain_limit_tifs")

    def __init__(self, capabilities: Capabilities) -> None:
        self.capabilities = capabilities
        # the common case (a plain limit order in a supported time in force) is one set lookup
        self._plain_limit_tifs = frozenset(
            tif for tif, ok in ((TimeInForce.DAY, True), (TimeInForce.GTC, capabilities.gtc),
                                (TimeInForce.IOC, capabilities.ioc), (TimeInForce.FOK, capabilities.fok)) if ok
        )

    def check(self, request: OrderRequest) -> Rejection | None:
        if request.order_type is _LIMIT and not request.post_only and request.tif in self._plain_limit_tifs:
            return None
        caps = self.capabilities
        if request.order_type is _MARKET:
            if not caps.market_orders:
                return Rejection(Reject.ORDER_TYPE_NOT_SUPPORTED, f"venue {request.venue!r} takes no market orders")
            if request.post_only:
                return Rejection(Reject.ORDER_TYPE_NOT_SUPPORTED, "a market order cannot be post-only")
        tif = request.tif
        if (tif is _IOC and not caps.ioc) or (tif is _FOK and not caps.fok) or (tif is _GTC and not caps.gtc):
            return Rejection(
                Reject.ORDER_TYPE_NOT_SUPPORTED, f"venue {request.venue!r} does not support time in force {tif.value}"
            )
        if request.post_only and caps.post_only == "none":
            return Rejection(Reject.ORDER_TYPE_NOT_SUPPORTED, f"venue {request.venue!r} has no post-only orders")
        if request.post_only and tif in (_IOC, _FOK):
            return Rejection(Reject.ORDER_TYPE_NOT_SUPPORTED, f"a post-only order cannot be {tif.value}")
        return None


class PricePresence:
    """7002: a limit order needs a positive price; a market order takes none."""

    __slots__ = ()

    def check(self, request: OrderRequest) -> Rejection | None:
        price = request.price
        if request.order_type is _LIMIT:
            if price is None:
                return Rejection(Reject.PRICE_REQUIRED, "a limit order needs a price")
            if price <= _ZERO:
                return Rejection(Reject.PRICE_REQUIRED, f"price must be positive, got {price}")
        elif price is not None:
            return Rejection(Reject.PRICE_REQUIRED, f"a market order takes no price, got {price}")
        return None


class LotSize:
    """2002: quantity must be a positive whole multiple of the instrument's lot size.

    The answer depends on the two Decimals alone, so the last quantity and lot that passed are
    kept and the very same objects pass again without the remainder (an amend of the price
    keeps the order's quantity object; the order context hands out one object per small int)."""

    __slots__ = ("_qty", "_lot")

    def __init__(self) -> None:
        self._qty: Decimal | None = None  # the last quantity that passed, and its lot
        self._lot: Decimal | None = None

    def check(self, request: OrderRequest) -> Rejection | None:
        qty = request.qty
        lot = request.instrument.lot_size  # type: ignore[union-attr]  # KnownInstrument runs first
        if qty is self._qty and lot is self._lot:
            return None
        try:  # free on Python 3.11 unless it raises
            off_lot = qty <= _ZERO or qty % lot  # Decimal(0), not 0: comparing two Decimals skips a conversion
        except DecimalException:  # a quotient past 28 digits (qty 1e30): no lot multiple, not a crash
            off_lot = True
        if off_lot:
            return Rejection(
                Reject.INVALID_QUANTITY,
                f"quantity {qty} is not a positive multiple of the lot size {lot} for {request.symbol}",
            )
        self._qty, self._lot = qty, lot
        return None


class TickGrid:
    """7001: a limit price must be a whole number of ticks.

    As :class:`LotSize`, the last price and tick that passed are kept: the very same objects
    pass again without the remainder (an amend of the quantity keeps the order's price object)."""

    __slots__ = ("_price", "_tick")

    def __init__(self) -> None:
        self._price: Decimal | None = None  # the last price that passed, and its tick
        self._tick: Decimal | None = None

    def check(self, request: OrderRequest) -> Rejection | None:
        price = request.price
        if price is not None:
            tick = request.instrument.tick_size  # type: ignore[union-attr]
            if price is self._price and tick is self._tick:
                return None
            try:
                off_grid = price % tick
            except DecimalException:  # price 1e30 on a 0.01 grid: past Decimal's 28 digits, refused
                off_grid = True
            if off_grid:
                return Rejection(
                    Reject.PRICE_OFF_TICK, f"price {price} is not on the {tick} tick grid for {request.symbol}"
                )
            self._price, self._tick = price, tick
        return None


class UniqueClientId:
    """3002: a client order id may be used once per venue (it is the venue's idempotency key)."""

    __slots__ = ("used",)

    def __init__(self, used: Container[str]) -> None:
        self.used = used

    def check(self, request: OrderRequest) -> Rejection | None:
        if request.amend_of is None and request.client_id in self.used:
            return Rejection(
                Reject.IDEMPOTENCY_KEY_REUSED, f"client id {request.client_id!r} was already used on {request.venue!r}"
            )
        return None


def structural_checks(capabilities: Capabilities, used_client_ids: Container[str]) -> list:
    """The structural chain in its order: cheapest and most basic first."""
    return [
        KnownInstrument(),
        SupportedOrderType(capabilities),
        PricePresence(),
        LotSize(),
        TickGrid(),
        UniqueClientId(used_client_ids),
    ]
