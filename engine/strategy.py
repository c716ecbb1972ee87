"""The types a strategy file annotates its hooks with, so an editor completes ``ctx.``, ``book.``
and ``fill.`` and a type checker catches ``book.mdi`` before the engine runs it::

    from engine import hookimpl
    from engine.strategy import Book, Ctx, Fill

    @hookimpl
    def on_book(ctx: Ctx, book: Book) -> None:
        ...

Every type a hook receives is importable from here under the name :mod:`engine.hookspecs` uses
for it, so a hook's annotations can be copied from its spec. Annotations are optional and change
nothing at run time: the engine passes the same objects whether a hook is annotated or not.

:class:`Ctx` is a :class:`typing.Protocol`, not the engine's context class: it describes only what a
strategy may call, so the engine may rearrange its own class behind it (``tests/unit/test_hook_types.py``
checks that the real context provides every member with the same signature, and nothing more).
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from engine.model import (
    AccountEvent,
    Book,
    Fill,
    Instrument,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    Trade,
)
from engine.risk.mmp import MmpTrigger
from engine.venue.contract import Capabilities

__all__ = [
    "AccountEvent",
    "Book",
    "Capabilities",
    "Ctx",
    "Fill",
    "Instrument",
    "Liquidity",
    "MmpTrigger",
    "Order",
    "OrderStatus",
    "OrderType",
    "Side",
    "TimeInForce",
    "Trade",
]


class Ctx(Protocol):
    """The order context every hook receives as ``ctx``: the strategy's only door to the market.

    Every submit and amend passes the pre-trade gate before anything is sent; a refused order
    comes back at once with status ``rejected``. Prices and quantities are exact: ``int``,
    ``Decimal`` or a numeric ``str``; a binary ``float`` is refused (7005).
    """

    # ---- identity and environment
    @property
    def name(self) -> str:
        """This strategy instance's name from config."""
        ...

    @property
    def params(self) -> Any:
        """The strategy's ``PARAMS`` defaults overridden by config, read-only (``ctx.params.size``).
        Typed ``Any``: its fields are the file's own ``PARAMS`` names, built when the file loads."""
        ...

    @property
    def log(self) -> logging.Logger:
        """A logger named after this strategy instance."""
        ...

    @property
    def session(self) -> str:
        """The session phase: "closed", "pre_open", "opening_match", "open", "break", "post_close"."""
        ...

    @property
    def instruments(self) -> tuple[str, ...]:
        """The symbols this strategy is subscribed to."""
        ...

    def instrument(self, symbol: str) -> Instrument | None:
        """Tick size, lot size, previous close and sector of a subscribed symbol, or None."""
        ...

    def now(self) -> datetime:
        """Engine time, aware, in Asia/Karachi (simulated time in paper mode)."""
        ...

    def now_ns(self) -> int:
        """Engine time in nanoseconds since the epoch, UTC."""
        ...

    # ---- market and account state
    def book(self, symbol: str) -> Book | None:
        """The live book of a subscribed symbol, or None."""
        ...

    def position(self, symbol: str) -> Decimal:
        """This strategy's net position in ``symbol`` (negative = short)."""
        ...

    def avg_cost(self, symbol: str) -> Decimal:
        """The average cost of this strategy's position in ``symbol`` (0 when flat)."""
        ...

    @property
    def realized_pnl(self) -> Decimal:
        """This strategy's realized PnL over all its symbols since the start of the run."""
        ...

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """This strategy's orders that are not yet terminal, oldest first."""
        ...

    @property
    def state(self) -> str:
        """This strategy: "running", "paused", "failed" or "stopped"."""
        ...

    @property
    def trading_state(self) -> str:
        """The account's kill switch: "active", "reducing" or "halted"."""
        ...

    @property
    def venue_status(self) -> str:
        """This strategy's venue: "connected", "disconnected" or "reconciling"."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """What the venue does natively (``amend``, ``post_only``, ``ioc``, ``fok``, ``gtc``,
        ``market_orders``, ``mass_cancel``, ``mmp``): ask before relying on one."""
        ...

    @property
    def account_kind(self) -> str:
        """"cash" (PSX: no short selling, T+N settlement) or "derivatives" (may go short)."""
        ...

    @property
    def currency(self) -> str:
        """The currency of every amount of the venue account (PKR on PSX)."""
        ...

    @property
    def buying_power(self) -> Decimal:
        """Settled cash minus what open buys reserve (margin available, on a derivatives account)."""
        ...

    def sellable(self, symbol: str) -> Decimal:
        """Shares a new sell may take: settled ones not already offered. More is refused (4002)."""
        ...

    @property
    def mmp_frozen(self) -> bool:
        """True while market-maker protection refuses this strategy's ``mmp=True`` orders."""
        ...

    def reset_mmp(self) -> None:
        """Lift a market-maker protection freeze (the engine's and the venue's)."""
        ...

    # ---- orders
    def submit(
        self,
        symbol: str,
        side: str | Side,
        qty: int | Decimal | str,
        price: Decimal | str | int | None = None,
        *,
        type: str | OrderType = "limit",
        tif: str | TimeInForce = "day",
        post_only: bool = False,
        client_id: str | None = None,
        mmp: bool = False,
        reduce_only: bool = False,
    ) -> Order:
        """Place an order; returns its handle at once: ``pending_new`` when sent, ``rejected``
        (``reject_code``, ``reject_reason``) when refused locally."""
        ...

    def cancel(self, order: Order) -> bool:
        """Ask the venue to cancel; False (nothing sent) when not open or a cancel is pending."""
        ...

    def amend(
        self, order: Order, price: Decimal | str | int | None = None, qty: int | Decimal | str | None = None
    ) -> bool:
        """Change price and/or total quantity in place; False (order untouched) when refused."""
        ...

    def cancel_all(self, symbol: str | None = None) -> int:
        """Cancel every open order of this strategy (for one symbol, or all); returns cancels sent."""
        ...
