"""A derivatives account (``venues.<name>.account.kind: derivatives``) and the checks that read it:
margin, reduce-only and the account's position limits, every amount in the settlement currency.

A PSX cash account cannot go short, settles T+N and counts rupees; a perpetual on Pulse goes
short freely, settles nothing (a fill changes position and margin at once), is collateralised by
equity and counts in its settlement currency (USD on the sandbox). Shared by every strategy
trading the venue account, like :class:`~engine.risk.account.CashAccount`, and the same shape to
the runtime (``apply_fill``, ``track``, ``roll``, ``persisted``, ``snapshot``).

Positions are FIFO lots (:class:`engine.portfolio.Position`, the strategies' own accounting), so the
account's realized PnL is exact and its position is always the configured start plus every fill
plus what reconciliation adopted from the venue. Equity is balance (start equity plus realized
PnL net of fees) plus the open positions marked at the engine's mark. Margin is the venue's figure
(``private/get_account_summary`` ``initial_margin`` / ``maintenance_margin``) while no fill has
happened since the venue said it, else the engine's estimate at the configured rates; open orders
reserve initial margin on what they could add. Reconciliation (:meth:`DerivativesAccount.reconcile`)
compares positions and equity with the venue's and takes the venue's on a difference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.model import TERMINAL_STATUSES, ZERO, Fill, Instrument, Order, Side, VenueAccount
from engine.portfolio import Position
from engine.rejects import Reject
from engine.risk.account import PositionLimits, money, new_leaves, units, worst_position
from engine.risk.gate import OrderRequest, Rejection
from engine.risk.rulepack import RulePack

__all__ = [
    "DerivativesAccount",
    "DerivativesAccountConfig",
    "DerivativesPositionLimit",
    "MarginCheck",
    "ReduceOnly",
]

_BUY = Side.BUY
_SELL = Side.SELL
_CENT = Decimal("0.01")
_EQUITY = "equity"  # the key of an unconfirmed equity difference (no symbol is spelled so)

Mark = Callable[[str], Decimal | None]


class DerivativesAccountConfig(BaseModel):
    """A derivatives venue account at start. The venue's own figures replace ``equity`` and
    ``positions`` at the first reconciliation (a difference is an anomaly)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["derivatives"]
    currency: str | None = Field(
        None, pattern=r"^[A-Z0-9]{2,10}$",
        description="Settlement currency of every amount; None = the instruments' settlement_currency.",
    )
    equity: Decimal = Field(ge=0, description="Equity at start, in the settlement currency.")
    positions: dict[str, Decimal] = Field(
        default_factory=dict, description="Positions held at start, signed (short negative), entered at previous_close."
    )
    initial_margin_rate: Decimal = Field(
        Decimal("0.1"), gt=0, le=1, description="Initial margin per unit of notional, the venue's unknown."
    )
    maintenance_margin_rate: Decimal = Field(
        Decimal("0.05"), gt=0, le=1, description="Engine's maintenance margin per unit of notional."
    )
    limits: PositionLimits = Field(
        default_factory=PositionLimits,
        description="Account-wide max_position (amount) and max_notional (settlement currency), per symbol too.",
    )
    sync_s: Decimal | None = Field(
        Decimal(60), gt=0, description="Ask the venue's figures this often; None = at connect and reconnect only."
    )
    equity_tolerance: Decimal = Field(
        Decimal("0.01"), ge=0, description="An equity further than this from the venue's is an anomaly."
    )

    @model_validator(mode="after")
    def _maintenance_below_initial(self) -> DerivativesAccountConfig:
        if self.maintenance_margin_rate > self.initial_margin_rate:
            raise ValueError("maintenance_margin_rate cannot exceed initial_margin_rate")
        return self


class DerivativesAccount:
    """One derivatives venue account: balance, signed positions, margin, open-order reservations.

    The runtime calls :meth:`apply_fill` for every fill, :meth:`track` after every change to an
    order and :meth:`reconcile` with the venue's :class:`~engine.model.VenueAccount`; the checks read
    :meth:`available`, :meth:`position` and :meth:`open_qty`."""

    kind = "derivatives"

    __slots__ = (
        "config", "currency", "instruments", "packs", "mark", "_balance", "_positions", "_external",
        "_orders", "_open", "_reduce_open", "_reserved", "_venue", "_venue_fresh", "mismatches", "venue_reports",
        "_unconfirmed",
    )

    def __init__(
        self,
        config: DerivativesAccountConfig,
        currency: str,
        instruments: Mapping[str, Instrument],
        packs: Mapping[str, RulePack],
        mark: Mark,
    ) -> None:
        self.config = config
        self.currency = currency
        self.instruments = instruments
        self.packs = packs
        self.mark = mark
        self._balance = config.equity
        self._positions: dict[str, Position] = {}
        # start positions plus what reconciliation adopted: the part of the position no fill explains
        self._external: dict[str, Decimal] = {}
        for symbol, qty in config.positions.items():
            if qty:
                instrument = instruments.get(symbol)
                entry = instrument.previous_close if instrument is not None else ZERO
                self._set_position(symbol, qty, entry)
                self._external[symbol] = qty
        # client_id -> (symbol, side, leaves, margin reserved, reduce_only)
        self._orders: dict[str, tuple[str, Side, Decimal, Decimal, bool]] = {}
        self._open: dict[tuple[str, Side], Decimal] = {}  # leaves of orders that may add exposure
        self._reduce_open: dict[tuple[str, Side], Decimal] = {}  # leaves of reduce-only orders
        self._reserved = ZERO
        self._venue: VenueAccount | None = None
        self._venue_fresh = False  # no fill since the venue's figures: its margin is current
        self.mismatches = 0
        self.venue_reports = True  # false once the adapter says it cannot report the account
        # differences (venue - engine) seen in the last answer, per symbol and for equity: taken when
        # the next answer shows the same
        self._unconfirmed: dict[str, Decimal] = {}

    # ---- positions ----------------------------------------------------------------------------
    def _set_position(self, symbol: str, qty: Decimal, entry: Decimal) -> None:
        """Replace a position by one lot of ``qty`` at ``entry``, keeping its realized PnL and fees."""
        old = self._positions.get(symbol)
        saved = old.persisted() if old is not None else Position(symbol).persisted()
        saved.update(qty=str(qty), cost=str(qty * entry), lots=[[str(qty), str(entry)]] if qty else [])
        self._positions[symbol] = Position.restored(symbol, saved)

    def position(self, symbol: str) -> Decimal:
        """Signed position of the account (all strategies and what it held at start)."""
        held = self._positions.get(symbol)
        return held.qty if held is not None else ZERO

    def external(self, symbol: str) -> Decimal:
        """The part of the position that no fill of this engine made (start, adopted from the venue)."""
        return self._external.get(symbol, ZERO)

    def open_qty(self, symbol: str, side: Side) -> Decimal:
        """Leaves of the account's open orders on one side that may add exposure (not reduce-only)."""
        return self._open.get((symbol, side), ZERO)

    def reduce_only_qty(self, symbol: str, side: Side) -> Decimal:
        return self._reduce_open.get((symbol, side), ZERO)

    def mark_price(self, symbol: str) -> Decimal:
        """The engine's mark, else the position's entry, else the previous close."""
        price = self.mark(symbol)
        if price is not None:
            return price
        held = self._positions.get(symbol)
        if held is not None and held.qty:
            return held.avg_cost
        instrument = self.instruments.get(symbol)
        return instrument.previous_close if instrument is not None else ZERO

    # ---- fills and orders -----------------------------------------------------------------------
    def apply_fill(self, fill: Fill, trading_day: Any = None) -> None:
        """Book one execution: the position moves, realized PnL net of the fee goes to the balance.
        No settlement: ``trading_day`` is taken only to keep the cash account's signature."""
        symbol = fill.symbol
        held = self._positions.get(symbol)
        if held is None:
            held = self._positions[symbol] = Position(symbol)
        before = held.realized_pnl
        held.apply_fill(fill.side, fill.qty, fill.price, fill.fee or ZERO)
        self._balance += held.realized_pnl - before
        self._venue_fresh = False

    def order_margin(self, symbol: str, leaves: Decimal, price: Decimal | None) -> Decimal:
        """Initial margin ``leaves`` could need at ``price`` (the mark for a market order)."""
        if price is None:
            price = self.mark_price(symbol)
        return leaves * price * self.config.initial_margin_rate

    def track(self, order: Order) -> None:
        """Recompute one order's reservation and move the totals by the difference (O(1))."""
        client_id = order._client_id
        old = self._orders.pop(client_id, None)
        if old is not None:
            symbol, side, leaves, margin, reduce_only = old
            book = self._reduce_open if reduce_only else self._open
            book[(symbol, side)] -= leaves
            self._reserved -= margin
        if order._status in TERMINAL_STATUSES:
            return
        leaves = order._qty - order._cum_qty
        if order._pending_qty is not None and order._pending_qty - order._cum_qty > leaves:
            leaves = order._pending_qty - order._cum_qty  # an unanswered amend may land either way
        if leaves < ZERO:
            leaves = ZERO
        symbol = order._symbol
        side = _SELL if order._side is _SELL else _BUY
        reduce_only = order._reduce_only
        price = order._pending_price if order._pending_price is not None else order._price
        margin = ZERO if reduce_only else self.order_margin(symbol, leaves, price)
        self._orders[client_id] = (symbol, side, leaves, margin, reduce_only)
        book = self._reduce_open if reduce_only else self._open
        book[(symbol, side)] = book.get((symbol, side), ZERO) + leaves
        self._reserved += margin

    def reserved_for(self, client_id: str) -> Decimal:
        """Margin currently held back for one tracked order (zero when untracked)."""
        entry = self._orders.get(client_id)
        return entry[3] if entry is not None else ZERO

    # ---- the cash account's calendar interface: nothing settles here --------------------------
    def roll(self, to_day: Any) -> list:
        return []

    has_unsettled = False

    def settlement_line(self, settled: Iterable[Any]) -> str:
        return "nothing settles on a derivatives account"

    # ---- equity and margin --------------------------------------------------------------------
    @property
    def balance(self) -> Decimal:
        """Start equity plus realized PnL net of fees (plus the venue's corrections)."""
        return self._balance

    def unrealized(self, symbol: str) -> Decimal:
        held = self._positions.get(symbol)
        return held.unrealized_pnl(self.mark_price(symbol)) if held is not None and held.qty else ZERO

    def equity(self) -> Decimal:
        """Balance plus every open position marked to market."""
        return self._balance + sum((self.unrealized(s) for s in self._positions), ZERO)

    def _estimated(self, rate: Decimal) -> Decimal:
        return sum((abs(p.qty) * self.mark_price(s) * rate for s, p in self._positions.items() if p.qty), ZERO)

    @property
    def margin_source(self) -> str:
        """``venue`` while the venue's margin figures are current, else ``engine`` (its estimate)."""
        venue = self._venue
        return "venue" if self._venue_fresh and venue is not None and venue.initial_margin is not None else "engine"

    def initial_margin(self) -> Decimal:
        venue = self._venue
        if self._venue_fresh and venue is not None and venue.initial_margin is not None:
            return venue.initial_margin
        return self._estimated(self.config.initial_margin_rate)

    def maintenance_margin(self) -> Decimal:
        venue = self._venue
        if self._venue_fresh and venue is not None and venue.maintenance_margin is not None:
            return venue.maintenance_margin
        return self._estimated(self.config.maintenance_margin_rate)

    @property
    def reserved_margin(self) -> Decimal:
        return self._reserved

    def available(self) -> Decimal:
        """Equity less the positions' initial margin less what open orders reserve. On the order
        path (every margin check): one pass over the positions for mark, PnL and margin together."""
        venue = self._venue
        venue_margin = venue.initial_margin if self._venue_fresh and venue is not None else None
        rate = self.config.initial_margin_rate
        total = self._balance - self._reserved
        for symbol, held in self._positions.items():
            qty = held.qty
            if qty:
                mark = self.mark_price(symbol)
                total += mark * qty - held.cost
                if venue_margin is None:
                    total -= (qty if qty > 0 else -qty) * mark * rate
        return total if venue_margin is None else total - venue_margin

    # names the report, metrics and ``ctx`` read on every account
    @property
    def cash(self) -> Decimal:
        return self._balance

    unsettled_cash = ZERO

    @property
    def reserved_cash(self) -> Decimal:
        return self._reserved

    @property
    def buying_power(self) -> Decimal:
        """Margin available for new exposure (``ctx.buying_power`` on a derivatives venue)."""
        return self.available()

    def sellable(self, symbol: str) -> Decimal:
        """What a sell may take without opening a short: the long position not already being sold.
        A derivatives account may sell more (a short), within margin and limits."""
        long = self.position(symbol)
        if long <= ZERO:
            return ZERO
        return long - self.open_qty(symbol, _SELL) - self.reduce_only_qty(symbol, _SELL)

    # ---- reconciliation ---------------------------------------------------------------------------
    @property
    def awaiting_confirmation(self) -> bool:
        """A difference from the venue was seen once and waits for the next answer (see :meth:`reconcile`)."""
        return bool(self._unconfirmed)

    def drop_unconfirmed(self) -> None:
        """Forget a difference seen once whose confirming answer cannot come (the venue dropped):
        the reconnect's own sync compares afresh."""
        self._unconfirmed = {}

    def reconcile(self, venue: VenueAccount) -> list[str]:
        """Take the venue's positions and equity where they differ from the engine's; returns one
        sentence per difference taken (the runtime logs and counts them as anomalies).

        A difference is taken when two answers in a row show the same one: a fill the venue has
        done and whose notice is still on its way makes the venue's figures differ for a moment,
        and taking them would count that fill twice when it arrives. Until then the difference is
        held (:attr:`awaiting_confirmation`; the runtime asks again soon) and the engine's own
        margin estimate stays in force. Symbols the venue account holds outside this config are
        reported, not adopted."""
        found: list[str] = []
        if venue.currency != self.currency:
            found.append(f"the venue reports the account in {venue.currency}, the config says {self.currency}; "
                         "its figures are not taken")
            self.mismatches += len(found)
            return found
        earlier, self._unconfirmed = self._unconfirmed, {}
        reported = {p.symbol: p for p in venue.positions}
        marks: dict[str, Decimal] = {}
        adopted = False  # a confirmed position difference: this answer's equity is taken with it
        for symbol in sorted(set(reported) | {s for s, p in self._positions.items() if p.qty}):
            seen = reported.get(symbol)
            theirs = seen.size if seen is not None else ZERO
            ours = self.position(symbol)
            if symbol not in self.instruments:
                if theirs:
                    found.append(f"the venue holds {units(theirs)} {symbol}, an instrument this config does not list")
                continue
            if seen is not None and seen.mark_price:
                marks[symbol] = seen.mark_price
            if theirs == ours:
                continue
            if earlier.get(symbol) != theirs - ours:
                self._unconfirmed[symbol] = theirs - ours
                continue
            found.append(f"{symbol} position {units(ours)} here, {units(theirs)} at the venue; the venue's taken")
            entry = seen.average_price if seen is not None and seen.average_price else self.mark_price(symbol)
            self._set_position(symbol, theirs, entry)
            self._external[symbol] = self._external.get(symbol, ZERO) + theirs - ours
            adopted = True
        if self._unconfirmed:  # equity is not comparable while a position differs
            self._venue_fresh = False
            self.mismatches += len(found)
            return found
        ours_equity = self._balance + sum(
            (p.unrealized_pnl(marks.get(s, self.mark_price(s))) for s, p in self._positions.items() if p.qty), ZERO)
        difference = venue.equity - ours_equity
        tolerance = self.config.equity_tolerance
        if abs(difference) > tolerance:
            before = earlier.get(_EQUITY)
            if not adopted and (before is None or abs(before - difference) > tolerance):
                self._unconfirmed[_EQUITY] = difference
                self._venue_fresh = False
                self.mismatches += len(found)
                return found
            found.append(f"equity {money(ours_equity)} {self.currency} here, {money(venue.equity)} at the venue; "
                         "the venue's taken")
        self._balance += difference  # exact agreement at the venue's marks, even inside the tolerance
        self._venue = venue
        self._venue_fresh = True
        self.mismatches += len(found)
        return found

    # ---- journal and report ---------------------------------------------------------------------
    def persisted(self) -> dict[str, Any]:
        """Balance, positions (their lots) and the external part, exact, for the journal's snapshots."""
        return {
            "kind": self.kind,
            "currency": self.currency,
            "balance": str(self._balance),
            "positions": {s: p.persisted() for s, p in self._positions.items()},
            "external": {s: str(q) for s, q in self._external.items()},
        }

    def restore(self, saved: dict[str, Any]) -> None:
        """Take the state a journal snapshot recorded (before any order is tracked; recovery has
        checked it is a derivatives account's)."""
        self._balance = Decimal(saved["balance"])
        self._positions = {s: Position.restored(s, p) for s, p in saved["positions"].items()}
        self._external = {s: Decimal(q) for s, q in saved["external"].items()}

    def snapshot(self) -> dict[str, Any]:
        """Plain data for the JSON report: amounts as strings in :attr:`currency`."""
        venue = self._venue
        return {
            "kind": self.kind,
            "currency": self.currency,
            "balance": str(self._balance),
            "equity": str(self.equity().quantize(_CENT)),
            "initial_margin": str(self.initial_margin().quantize(_CENT)),
            "maintenance_margin": str(self.maintenance_margin().quantize(_CENT)),
            "available_margin": str(self.available().quantize(_CENT)),
            "margin_source": self.margin_source,
            "positions": {
                symbol: {
                    "qty": str(p.qty),
                    "avg_price": str(p.avg_cost),
                    "realized_pnl": str(p.realized_pnl),
                    "unrealized_pnl": str(self.unrealized(symbol).quantize(_CENT)),
                    "side": "long" if p.qty > 0 else "short" if p.qty < 0 else "flat",
                }
                for symbol, p in sorted(self._positions.items())
            },
            "reserved": {"margin": str(self._reserved.quantize(_CENT)), "orders": str(len(self._orders))},
            "venue": None if venue is None else {
                "equity": str(venue.equity),
                "initial_margin": None if venue.initial_margin is None else str(venue.initial_margin),
                "maintenance_margin": None if venue.maintenance_margin is None else str(venue.maintenance_margin),
            },
            "mismatches": self.mismatches,
        }


# ---- checks ---------------------------------------------------------------------------------------


class ReduceOnly:
    """2005: a reduce-only order may only shrink the account's position: opposite to it, and with
    the other reduce-only orders on its side no larger than it. The venue enforces the same
    (Pulse ``reduce_only``); refusing here saves the round trip and names the position."""

    __slots__ = ("account",)

    def __init__(self, account: DerivativesAccount) -> None:
        self.account = account

    def check(self, request: OrderRequest) -> Rejection | None:
        amend = request.amend_of
        reduce_only = amend.reduce_only if amend is not None else request.reduce_only
        if not reduce_only:
            return None
        account = self.account
        symbol = request.symbol
        side = request.side
        position = account.position(symbol)
        others = account.reduce_only_qty(symbol, side)
        if amend is not None:
            others -= amend.leaves_qty
        qty = new_leaves(request)
        room = -position if side is _BUY else position
        if room > ZERO and qty + others <= room:
            return None
        held = "flat" if not position else f"{'long' if position > 0 else 'short'} {units(abs(position))}"
        return Rejection(
            Reject.POSITION_NOT_HELD,
            f"reduce-only {side} {units(qty)} {symbol} would not reduce the position ({held}, "
            f"{units(others)} on other reduce-only {side} orders)",
        )


class MarginCheck:
    """2004: an order that may add exposure needs its initial margin (leaves x price x
    initial_margin_rate, plus its fee) within the account's available margin: equity less the
    positions' initial margin (the venue's figure while current) less what open orders reserve.
    An order that can only reduce the position (reduce-only, or opposite and no larger than the
    position with the other orders on its side) needs none."""

    __slots__ = ("account", "fees")

    def __init__(self, account: DerivativesAccount) -> None:
        self.account = account
        self.fees = {symbol: pack.fee_schedule() for symbol, pack in account.packs.items()}

    def check(self, request: OrderRequest) -> Rejection | None:
        account = self.account
        amend = request.amend_of
        if request.reduce_only or (amend is not None and amend.reduce_only):
            return None  # ReduceOnly holds it to the position
        symbol = request.symbol
        side = request.side
        qty = new_leaves(request)
        position = account.position(symbol)
        same_side = account.open_qty(symbol, side)
        if amend is not None:
            same_side -= amend.leaves_qty
        room = -position if side is _BUY else position
        if room > ZERO and same_side + qty <= room:
            return None  # closes part of the position, however the other orders fill
        price = request.price if request.price is not None else account.mark(symbol)
        if price is None:
            return Rejection(Reject.INSUFFICIENT_BUYING_POWER,
                             f"cannot margin a market order for {symbol}: no mark price yet")
        need = account.order_margin(symbol, qty, price)
        schedule = self.fees.get(symbol)
        if schedule is not None:
            need += schedule.fee(side, qty * price)
        if amend is not None:
            need -= account.reserved_for(amend.client_id)
        available = account.available()
        if need <= available or need <= ZERO:
            return None
        currency = account.currency
        return Rejection(
            Reject.INSUFFICIENT_BUYING_POWER,
            f"{side} {units(qty)} {symbol} needs {money(need)} {currency} of initial margin (incl. fee) but "
            f"{money(available)} {currency} is available (equity {money(account.equity())} less initial margin "
            f"{money(account.initial_margin())} ({account.margin_source}) less {money(account.reserved_margin)} "
            f"reserved by open orders)",
        )


class DerivativesPositionLimit:
    """2008: the account's position in a symbol, with its open orders on the same side and this
    order, stays within ``account.limits``: max_position (amount) and max_notional (settlement
    currency, at the order's price or the mark). Orders that only reduce the position pass."""

    __slots__ = ("account",)

    def __init__(self, account: DerivativesAccount) -> None:
        self.account = account

    def check(self, request: OrderRequest) -> Rejection | None:
        account = self.account
        symbol = request.symbol
        max_position, max_notional = account.config.limits.for_symbol(symbol)
        if max_position is None and max_notional is None:
            return None
        side = request.side
        qty = new_leaves(request)
        open_same = account.open_qty(symbol, side)
        amend = request.amend_of
        if amend is not None:
            open_same -= amend.leaves_qty
        position = account.position(symbol)
        worst = worst_position(position, side, open_same + qty)
        if worst is None:
            return None
        size = abs(worst)
        if max_position is not None and size > max_position:
            return Rejection(
                Reject.POSITION_LIMIT_EXCEEDED,
                f"{side} {units(qty)} {symbol} could take the account to {units(size)} "
                f"(position {units(position)}, {units(open_same)} on open {side} orders), above its limit "
                f"max_position {units(max_position)}",
            )
        if max_notional is not None:
            price = request.price if request.price is not None else account.mark_price(symbol)
            if size * price > max_notional:
                return Rejection(
                    Reject.POSITION_LIMIT_EXCEEDED,
                    f"{side} {units(qty)} {symbol} could take the account to {money(size * price)} "
                    f"{account.currency} ({units(size)} at {price}), above its limit max_notional "
                    f"{money(max_notional)} {account.currency}",
                )
        return None
