"""The order context: a strategy's one door to the market.

Every order, amend and cancel a strategy makes passes the gate's one entrance
(``engine.runtime.entrance``: the pre-trade rules of each action, then the hand-off to the venue)
after its arguments are checked here; nothing else leaves the process. A refused order comes back
at once with status ``rejected``, a ``reject_code`` and a ``reject_reason`` sentence, and
``on_order_update`` fires for it after the current hook returns. Nothing is sent for it.

The context exposes no adapter, credential or journal: only orders, positions, books, the session,
the clock and the strategy's own parameters. Arguments are checked strictly: a binary ``float``
price or quantity is refused (7005), because a float silently lands off the tick grid.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from engine.model import ZERO, Book, Order, OrderStatus, OrderType, Side, TimeInForce
from engine.rejects import Reject
from engine.risk.gate import Rejection

if TYPE_CHECKING:
    from engine.runtime.facade import StrategyDesk, StrategyRunner
    from engine.venue import Capabilities

CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # VENUES.md 6.5: every venue accepts this

# ctx.log is the logger "strategy.<name>": the log handler reads the name back from it, so every
# line a strategy writes (and any child logger it makes) says which strategy wrote it
STRATEGY_LOGGER_PREFIX = "strategy."


def strategy_logger(name: str) -> logging.Logger:
    """The logger handed to strategy ``name`` as ``ctx.log``."""
    return logging.getLogger(STRATEGY_LOGGER_PREFIX + name)


def strategy_of(logger_name: str) -> str | None:
    """The strategy a logger belongs to (``strategy.mm`` and ``strategy.mm.quotes`` -> ``mm``), or
    None for the engine's own loggers. Strategy names hold no dots (config checks them)."""
    if not logger_name.startswith(STRATEGY_LOGGER_PREFIX):
        return None
    return logger_name[len(STRATEGY_LOGGER_PREFIX):].partition(".")[0] or None


_SIDES = {"buy": Side.BUY, "sell": Side.SELL, Side.BUY: Side.BUY, Side.SELL: Side.SELL}
_TYPES = {"limit": OrderType.LIMIT, "market": OrderType.MARKET, OrderType.LIMIT: OrderType.LIMIT,
          OrderType.MARKET: OrderType.MARKET}
_TIFS = {t.value: t for t in TimeInForce} | {t: t for t in TimeInForce}


class ArgumentRejection(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# one Decimal per small int a strategy passes (a lot, a size in its params): Decimal(int) costs
# ~1,250 instructions, a dict lookup ~100; the objects are immutable, so orders may share them
_INT_DECIMALS: dict[int, Decimal] = {}
_INT_DECIMALS_KEPT = 4096


def _exact(value: Any, what: str) -> Decimal:
    """int, Decimal or numeric str -> Decimal; a float is refused because it is not exact."""
    # the usual types by identity before isinstance (a call each, two arguments per order); no
    # type is both a str and an int or Decimal, so only bool's place before int matters
    kind = type(value)
    if kind is Decimal or (kind is not int and isinstance(value, Decimal)):
        if not value.is_finite():
            raise ArgumentRejection(Reject.INVALID_ORDER, f"{what} must be finite, got {value}")
        return value
    if kind is int:
        exact = _INT_DECIMALS.get(value)
        if exact is None:
            exact = Decimal(value)
            if len(_INT_DECIMALS) < _INT_DECIMALS_KEPT:
                _INT_DECIMALS[value] = exact
        return exact
    if kind is str or isinstance(value, str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise ArgumentRejection(Reject.INVALID_ORDER, f"{what} {value!r} is not a number") from None
        if not result.is_finite():
            raise ArgumentRejection(Reject.INVALID_ORDER, f"{what} must be finite, got {value!r}")
        return result
    if isinstance(value, bool):
        raise ArgumentRejection(Reject.INVALID_ORDER, f"{what} must be a number, got {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        raise ArgumentRejection(
            Reject.INVALID_ORDER,
            f"{what} {value!r} is a binary float; pass an int, a Decimal or a string such as '{value}'",
        )
    raise ArgumentRejection(Reject.INVALID_ORDER, f"{what} must be an int, Decimal or str, got {type(value).__name__}")


class OrderContext:
    """Handed to every hook as ``ctx``. See README "Strategy API" for the full reference."""

    # ``params`` is a plain slot: a strategy reads it on every event, and a slot read costs ~76
    # instructions under callgrind against ~460 for the property over ``_params`` it replaced.
    # Read-only all the same: assigning or deleting ``ctx.params`` raises (see __setattr__)
    __slots__ = ("_runner", "_runtime", "params", "_log", "_clock")
    params: Any  # the strategy's parameters: its ``PARAMS`` defaults overridden by config, read-only

    def __init__(self, runner: StrategyRunner, runtime: StrategyDesk, params: Any, log: logging.Logger) -> None:
        self._runner = runner
        self._runtime = runtime
        object.__setattr__(self, "params", params)
        self._log = log
        self._clock = runtime.clock

    def __setattr__(self, name: str, value: Any) -> None:
        """``ctx.params`` is the strategy's read-only parameters: refused like a property without a setter."""
        if name == "params":
            raise AttributeError("ctx.params is read-only: its values come from PARAMS and the config")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if name == "params":
            raise AttributeError("ctx.params is read-only: its values come from PARAMS and the config")
        object.__delattr__(self, name)

    # ---- identity and environment -------------------------------------------------------
    # C-level getters (as on Order): a strategy may read these on every event, and a property
    # written in Python costs a frame per read; still read-only, with the same docstrings
    name = property(attrgetter("_runner.name"), doc="This strategy instance's name from config.")
    log = property(attrgetter("_log"), doc="A logger named after this strategy instance.")

    @property
    def session(self) -> str:
        """The current session phase name: "closed", "pre_open", "open", "post_close", ..."""
        return self._runtime.session.phase.value

    instruments = property(attrgetter("_runner.symbols"), doc="The symbols this strategy is subscribed to.")

    def instrument(self, symbol: str):
        """The Instrument record (tick size, lot size, previous close, sector) for a symbol."""
        return self._runner.instruments.get(symbol)

    def now(self) -> datetime:
        """Engine time as an aware datetime in Asia/Karachi (simulated time in paper mode)."""
        return self._clock.now()

    def now_ns(self) -> int:
        """Engine time in nanoseconds since the epoch, UTC."""
        return self._clock.now_ns()

    # ---- market state ---------------------------------------------------------------------
    def book(self, symbol: str) -> Book | None:
        """The live book of a subscribed symbol, or None."""
        if symbol not in self._runner.instruments:
            return None
        return self._runtime.book(self._runner.venue, symbol)

    def position(self, symbol: str) -> Decimal:
        """This strategy's net position in ``symbol`` (shares; negative = short)."""
        position = self._runner.positions.get(symbol)
        return position.qty if position is not None else ZERO

    def avg_cost(self, symbol: str) -> Decimal:
        position = self._runner.positions.get(symbol)
        return position.avg_cost if position is not None else ZERO

    @property
    def realized_pnl(self) -> Decimal:
        return sum((p.realized_pnl for p in self._runner.positions.values()), ZERO)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """This strategy's orders that are not yet terminal, oldest first."""
        orders = self._runner.open_orders.values()
        if symbol is None:
            return list(orders)
        return [o for o in orders if o.symbol == symbol]

    @property
    def state(self) -> str:
        """This strategy's own state: "running", or "paused" (the repeat-refusal rule; it resumes
        by itself), "failed" or "stopped"."""
        return self._runner.state

    @property
    def trading_state(self) -> str:
        """The account's kill-switch state: "active", "reducing" (only orders that shrink a
        position) or "halted" (everything refused)."""
        return self._runtime.kill_switch.state.value

    @property
    def venue_status(self) -> str:
        """This strategy's venue: "connected", "disconnected" or "reconciling"."""
        return str(self._runtime.venues[self._runner.venue].status)  # a plain str, as always

    @property
    def capabilities(self) -> Capabilities:
        """What this strategy's venue does natively (amend, post-only, IOC/FOK, GTC, market orders,
        mass cancel, MMP ...), read-only: one strategy file can quote on every venue, e.g. cancel
        and replace where the venue cannot amend (Optimus) instead of being refused with 2007."""
        return self._runtime.venues[self._runner.venue].adapter.capabilities

    @property
    def account_kind(self) -> str:
        """This strategy's venue account: ``cash`` (PSX: no short selling, T+N) or ``derivatives``
        (positions may go short, margin in the settlement currency)."""
        return self._runtime.venues[self._runner.venue].account.kind

    @property
    def currency(self) -> str:
        """The currency of every amount of this strategy's venue account (PKR on PSX)."""
        return self._runtime.venues[self._runner.venue].account.currency

    @property
    def buying_power(self) -> Decimal:
        """Settled cash of the venue account minus what open buys reserve (shared by every
        strategy on the account); on a derivatives account the margin available for new exposure
        (equity less initial margin less what open orders reserve), in its settlement currency."""
        return self._runtime.venues[self._runner.venue].account.buying_power

    def sellable(self, symbol: str) -> Decimal:
        """Shares of ``symbol`` a new sell may take: settled ones (and unsettled ones where the rule pack
        allows selling them), minus what open sells already hold. More is refused with 4002. On a
        derivatives account: the long position not already being sold (more opens a short, which
        is allowed within margin and limits)."""
        return self._runtime.venues[self._runner.venue].account.sellable(symbol)

    @property
    def mmp_frozen(self) -> bool:
        """True while market-maker protection refuses this strategy's MMP orders."""
        mmp = self._runner.mmp
        return mmp is not None and mmp.is_frozen(self._clock.now_ns())

    def reset_mmp(self) -> None:
        """Lift an MMP freeze (the only way out when ``frozen_time`` is 0), the engine's and, on a
        venue with MMP of its own (Pulse), the venue's."""
        if self._runner.mmp is not None:
            self._runtime.reset_mmp(self._runner)
            self._log.info("MMP reset by the strategy")

    # ---- orders ----------------------------------------------------------------------------
    def submit(
        self,
        symbol: str,
        side: str | Side,
        qty: int | Decimal | str,
        price: Decimal | str | int | None = None,
        *,
        type: str | OrderType = "limit",  # the contract's name
        tif: str | TimeInForce = "day",
        post_only: bool = False,
        client_id: str | None = None,
        mmp: bool = False,
        reduce_only: bool = False,
    ) -> Order:
        """Place an order. Returns the order handle at once: ``pending_new`` when it went to the
        venue, ``rejected`` (with ``reject_code`` / ``reject_reason``) when refused locally.
        ``mmp=True`` marks a quote under the strategy's market-maker protection (config ``mmp``).
        ``reduce_only=True`` (a derivatives account) may only shrink the account's position: refused
        with 2005 when it would not, and sent to the venue as reduce-only too."""
        runner = self._runner
        runtime = self._runtime
        now = self._clock.now_ns()
        wire_id = client_id if client_id is not None else runtime.next_client_id(runner)
        try:
            side_ = _SIDES.get(side)
            if side_ is None:
                raise ArgumentRejection(Reject.INVALID_ORDER, f"side must be 'buy' or 'sell', got {side!r}")
            type_ = _TYPES.get(type)
            if type_ is None:
                raise ArgumentRejection(
                    Reject.ORDER_TYPE_NOT_SUPPORTED, f"order type must be 'limit' or 'market', got {type!r}"
                )
            tif_ = _TIFS.get(tif)
            if tif_ is None:
                raise ArgumentRejection(
                    Reject.ORDER_TYPE_NOT_SUPPORTED, f"time in force must be one of day, gtc, ioc, fok; got {tif!r}"
                )
            qty_ = _exact(qty, "quantity")
            price_ = None if price is None else _exact(price, "price")
            if client_id is not None and (not isinstance(client_id, str) or not CLIENT_ID_PATTERN.match(client_id)):
                raise ArgumentRejection(
                    Reject.INVALID_ORDER, f"client id {client_id!r} must be 1-32 characters of A-Z a-z 0-9 _ -"
                )
            if reduce_only and runtime.venues[runner.venue].account.kind != "derivatives":
                raise ArgumentRejection(
                    Reject.INVALID_ORDER,
                    f"reduce_only=True needs a derivatives account (venues.{runner.venue}.account.kind: derivatives)",
                )
            if mmp and runner.mmp is None:
                raise ArgumentRejection(
                    Reject.INVALID_ORDER,
                    f"mmp=True needs market-maker protection configured for strategy {runner.name!r} (config mmp:)",
                )
        except ArgumentRejection as bad:
            order = Order(
                str(wire_id), runner.name, runner.venue, str(symbol), _SIDES.get(side, Side.BUY), ZERO, None, ts=now,
                algo_id=runner.algo_id,
            )
            return runtime.refuse(runner, order, Rejection(bad.code, bad.reason))
        # positional, in Order's parameter order (order_type, tif, post_only, ts, mmp, algo_id,
        # reduce_only): a call by keyword matches each name at run time, ~100 instructions a name
        order = Order(
            wire_id, runner.name, runner.venue, symbol, side_, qty_, price_,
            type_, tif_, bool(post_only), now, bool(mmp), runner.algo_id, bool(reduce_only),
        )
        return runtime.submit_order(runner, order)  # the gate's one entrance (engine.runtime.entrance)

    def cancel(self, order: Order) -> bool:
        """Ask the venue to cancel. Returns False (and sends nothing) when the order is not this
        strategy's, is already terminal, or a cancel is already pending."""
        return self._runtime.cancel_order(self._runner, order)

    def amend(
        self, order: Order, price: Decimal | str | int | None = None, qty: int | Decimal | str | None = None
    ) -> bool:
        """Change price and/or total quantity in place. The new values pass the same checks as a
        new order; a refusal is logged and counted and returns False with the order untouched. A
        price change or a size increase loses time priority at the venue."""
        runtime = self._runtime
        runner = self._runner
        try:
            price_ = None if price is None else _exact(price, "price")
            qty_ = None if qty is None else _exact(qty, "quantity")
        except ArgumentRejection as bad:
            runtime.refuse_amend(runner, order, Rejection(bad.code, bad.reason))
            return False
        return runtime.amend_order(runner, order, price_, qty_)

    def cancel_all(self, symbol: str | None = None) -> int:
        """Cancel every open order of this strategy (for one symbol, or all). Returns how many
        cancels were sent."""
        sent = 0
        for order in self.open_orders(symbol):
            if order.status is not OrderStatus.PENDING_CANCEL and self._runtime.cancel_order(self._runner, order):
                sent += 1
        return sent

    def __repr__(self) -> str:
        return f"<OrderContext strategy={self._runner.name!r} venue={self._runner.venue!r}>"

