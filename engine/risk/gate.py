"""The gate every submit and amend passes before anything leaves the process."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple, Protocol

from engine.model import Instrument, Order, OrderType, Side, TimeInForce


class Rejection(NamedTuple):
    code: int
    reason: str


class OrderRequest:
    """What a check sees: the order as it would go out (for an amend, with the new price and
    quantity and ``amend_of`` set to the live order)."""

    __slots__ = (
        "strategy", "venue", "symbol", "instrument", "side", "qty", "price",
        "order_type", "tif", "post_only", "client_id", "amend_of",
    )

    def __init__(
        self,
        strategy: str,
        venue: str,
        symbol: str,
        instrument: Instrument | None,
        side: Side,
        qty: Decimal,
        price: Decimal | None,
        order_type: OrderType,
        tif: TimeInForce,
        post_only: bool,
        client_id: str,
        amend_of: Order | None = None,
    ) -> None:
        self.strategy = strategy
        self.venue = venue
        self.symbol = symbol
        self.instrument = instrument
        self.side = side
        self.qty = qty
        self.price = price
        self.order_type = order_type
        self.tif = tif
        self.post_only = post_only
        self.client_id = client_id
        self.amend_of = amend_of


class Check(Protocol):
    """One pre-trade rule. Return None to allow, or a Rejection."""

    def check(self, request: OrderRequest) -> Rejection | None: ...


class Gate:
    """Runs its checks in order; the first rejection wins. Cheap checks go first."""

    __slots__ = ("checks",)

    def __init__(self, checks: Iterable[Check]) -> None:
        self.checks = tuple(checks)

    def check(self, request: OrderRequest) -> Rejection | None:
        for rule in self.checks:
            rejection = rule.check(request)
            if rejection is not None:
                return rejection
        return None
