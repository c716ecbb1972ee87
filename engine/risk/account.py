"""The PSX cash account and the checks that read it: buying power, no blank sales, position and
sector limits (PSX_RULES rules 10-13).

One :class:`CashAccount` per venue account, shared by every strategy trading it, because buying
power and holdings belong to the account at the broker, not to a strategy. Cash for a buy leaves
at trade time (a broker blocks it); sale proceeds and bought shares sit in an unsettled ledger
until their settle day, counted in trading days on the :class:`TradingCalendar` with the pack's
settlement cycle (T+2, T+1 from 2026-02-09 under ``psx-2026``). Open orders reserve what they
could still consume, kept as running totals so every read on the order path is a dict lookup.

Position and sector limits are firm-internal: PSX has no such exchange rule (rules 12, 13), and
their rejections say so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.model import TERMINAL_STATUSES, ZERO, Fill, Instrument, Order, Side
from engine.rejects import Reject
from engine.risk.bands import price_band
from engine.risk.gate import OrderRequest, Rejection
from engine.risk.rulepack import RulePack
from engine.sessions import TradingCalendar

__all__ = [
    "AccountConfig",
    "BuyingPower",
    "CashAccount",
    "LedgerEntry",
    "NoShortSelling",
    "PositionLimit",
    "PositionLimits",
    "SectorLimit",
    "SectorLimitConfig",
    "SymbolPositionLimits",
]

# Module globals: an enum attribute lookup costs more than a global read on the order path.
_BUY = Side.BUY
_SELL = Side.SELL
_CASH = "cash"
_SHARES = "shares"

Mark = Callable[[str], Decimal | None]


# ---- configuration --------------------------------------------------------------------------


class SectorLimitConfig(BaseModel):
    """A cap on one sector's exposure: absolute rupees or a fraction of account equity.

    Named ``...Config`` because :class:`SectorLimit` is the check that enforces it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    notional: Decimal | None = Field(None, gt=0, description="Cap in rupees.")
    pct_of_equity: Decimal | None = Field(None, gt=0, le=1, description="Cap as a fraction of account equity.")

    @model_validator(mode="after")
    def _exactly_one(self) -> SectorLimitConfig:
        if (self.notional is None) == (self.pct_of_equity is None):
            raise ValueError("a sector limit needs exactly one of 'notional' (rupees) or 'pct_of_equity' (0 < x <= 1)")
        return self


class AccountConfig(BaseModel):
    """The cash account at start: settled cash and settled shares, plus internal sector caps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["cash"] = Field("cash", description="A PSX cash account (venues.<name>.account.kind).")
    cash: Decimal = Field(Decimal(10_000_000), ge=0, description="Settled cash at start, in currency.")
    currency: str = Field("PKR", pattern=r"^[A-Z0-9]{2,10}$",
                          description="What the cash and every amount of the account are in: PKR on PSX, the "
                                      "quote asset of a crypto spot account (USDT on Algo724, USD on MidChains).")
    holdings: dict[str, Annotated[Decimal, Field(ge=0)]] = Field(
        default_factory=dict, description="Settled shares at start, per symbol."
    )
    sector_limits: dict[str, SectorLimitConfig] = Field(
        default_factory=dict,
        description="Per sector name from the instrument master; '*' applies to every sector without its own entry.",
    )


class SymbolPositionLimits(BaseModel):
    """Per-symbol limits. A field given here (even as null) replaces the strategy-wide value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_position: Decimal | None = Field(None, ge=0, description="Largest absolute position, shares.")
    max_notional: Decimal | None = Field(None, ge=0, description="Largest |position| x price, rupees.")


class PositionLimits(SymbolPositionLimits):
    """One strategy's internal position limits: for any symbol, overridden per symbol."""

    symbols: dict[str, SymbolPositionLimits] = Field(default_factory=dict)

    def for_symbol(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        """``(max_position, max_notional)`` for ``symbol`` after its overrides."""
        max_position, max_notional = self.max_position, self.max_notional
        own = self.symbols.get(symbol)
        if own is not None:
            if "max_position" in own.model_fields_set:
                max_position = own.max_position
            if "max_notional" in own.model_fields_set:
                max_notional = own.max_notional
        return max_position, max_notional


# ---- the account ----------------------------------------------------------------------------


class LedgerEntry(NamedTuple):
    """Something bought or sold that has not settled: sale proceeds (``kind='cash'``, rupees) or
    bought shares (``kind='shares'``)."""

    kind: str
    trade_day: dt.date
    settle_day: dt.date
    symbol: str
    amount: Decimal


def money(value: Decimal) -> str:
    """An amount as the refusal sentences write it: 1,234.50 (also engine.risk.derivatives')."""
    return f"{value:,.2f}"


def units(value: Decimal) -> str:
    """A count of shares or contracts as the refusal sentences write it: 1,000."""
    return f"{value:,f}"


# The close's settlement line names at most this many symbols per group and this many settle days:
# its length stays bounded however many fills the day had (the full ledger is in the report)
SUMMARY_SYMBOLS = 3
SUMMARY_DAYS = 1


def _ledger_totals(entries: Sequence[LedgerEntry]) -> str:
    """``cash +1,234.00; shares MEBL +300, OGDC +100, +2 more symbols``: the entries' cash total
    and shares per symbol (largest first, at most :data:`SUMMARY_SYMBOLS`)."""
    cash: Decimal | None = None
    shares: dict[str, Decimal] = {}
    for entry in entries:
        if entry.kind == _CASH:
            cash = entry.amount if cash is None else cash + entry.amount
        else:
            shares[entry.symbol] = shares.get(entry.symbol, ZERO) + entry.amount
    parts = []
    if cash is not None:
        parts.append(f"cash {cash:+,.2f}")
    if shares:
        ranked = sorted(shares.items(), key=lambda item: (-abs(item[1]), item[0]))
        shown = [f"{symbol} {qty:+,f}" for symbol, qty in ranked[:SUMMARY_SYMBOLS]]
        if len(ranked) > SUMMARY_SYMBOLS:
            shown.append(f"+{len(ranked) - SUMMARY_SYMBOLS} more symbols")
        parts.append("shares " + ", ".join(shown))
    return "; ".join(parts)


def settlement_summary(settled: Sequence[LedgerEntry], unsettled: Sequence[LedgerEntry]) -> str:
    """One line for the log at a close: totals of what just settled, and of what stays unsettled
    per settle day (the earliest :data:`SUMMARY_DAYS`), never an entry each: a busy day makes
    thousands of entries, and the log is read by people. The report and ``engine journal inspect``
    keep every entry."""
    parts = []
    if settled:
        parts.append(f"{len(settled)} settled ({_ledger_totals(settled)})")
    if unsettled:
        by_day: dict[dt.date, list[LedgerEntry]] = {}
        for entry in unsettled:
            by_day.setdefault(entry.settle_day, []).append(entry)
        days = sorted(by_day)
        groups = [f"{len(by_day[day])} due {day.isoformat()} ({_ledger_totals(by_day[day])})"
                  for day in days[:SUMMARY_DAYS]]
        if len(days) > SUMMARY_DAYS:
            later = sum(len(by_day[day]) for day in days[SUMMARY_DAYS:])
            groups.append(f"{later} due on {len(days) - SUMMARY_DAYS} later days")
        parts.append("unsettled: " + ", ".join(groups))
    return "; ".join(parts) if parts else "nothing settled, nothing unsettled"


class CashAccount:
    """One PSX cash account: settled cash, unsettled ledger, holdings and open-order reservations.

    The runtime calls :meth:`apply_fill` for every fill, :meth:`track` after every change to an
    order (submit, ack, fill, amend, cancel, reject), and :meth:`roll` at each close with the next
    trading day. Checks read :attr:`buying_power`, :meth:`sellable` and friends.
    """

    kind = "cash"

    __slots__ = (
        "config", "currency", "calendar", "instruments", "packs", "_reference",
        "_default_pack", "_fees", "_default_fees", "_sell_unsettled",
        "_cash", "_unsettled_cash", "_ledger", "_settled", "_unsettled", "_held",
        "_orders", "_reserved_cash", "_reserved_shares", "_open_buys",
        "_sector_symbols", "_sector_caps", "_band_cache",
    )

    def __init__(
        self,
        config: AccountConfig,
        calendar: TradingCalendar,
        instruments: Mapping[str, Instrument],
        packs: Mapping[str, RulePack],
        reference_price: Callable[[str], Decimal | None] | None = None,
    ) -> None:
        self.config = config
        self.currency = config.currency  # every amount of the account (PKR on PSX)
        self.calendar = calendar
        self.instruments = instruments
        self.packs = packs
        self._reference = reference_price if reference_price is not None else self._previous_close
        # a symbol with no pack (cannot happen for configured symbols) gets the conservative defaults
        self._default_pack = RulePack()
        # a buy's fee terms (rate, floor_rate, floor) per symbol: FeeSchedule.fee inlined, as a
        # method call it costs ~0.5 us, a tenth of the whole gate's budget
        self._fees = {symbol: pack.fee_schedule().buy for symbol, pack in packs.items()}
        self._default_fees = self._default_pack.fee_schedule().buy
        self._sell_unsettled = {symbol: pack.sell_unsettled_buys for symbol, pack in packs.items()}
        self._cash = config.cash
        self._unsettled_cash = ZERO
        self._ledger: list[LedgerEntry] = []
        self._settled: dict[str, Decimal] = {s: q for s, q in config.holdings.items() if q}
        self._unsettled: dict[str, Decimal] = {}
        self._held: dict[str, Decimal] = dict(self._settled)
        # client_id -> (symbol, side, reserved cash, reserved shares / buy leaves, then the order's
        # qty, cum_qty, price, pending_qty and pending_price the two amounts were worked out from,
        # then what the pending amend's terms alone hold, or None, None: see track)
        self._orders: dict[str, tuple[Any, ...]] = {}
        self._reserved_cash = ZERO
        self._reserved_shares: dict[str, Decimal] = {}
        self._open_buys: dict[str, Decimal] = {}
        sector_symbols: dict[str, list[str]] = {}
        for symbol, instrument in instruments.items():
            if instrument.sector:
                sector_symbols.setdefault(instrument.sector, []).append(symbol)
        self._sector_symbols = {sector: tuple(symbols) for sector, symbols in sector_symbols.items()}
        # every sector resolved to its cap once: '*' for all, then the sectors' own entries; a sector
        # not in the instrument master falls back to '*' at lookup
        limits = config.sector_limits
        star = limits.get("*")
        self._sector_caps: dict[str, SectorLimitConfig | None] = dict.fromkeys(self._sector_symbols, star)
        self._sector_caps.update((sector, cap) for sector, cap in limits.items() if sector != "*")
        self._sector_caps["*"] = star
        self._band_cache: dict[str, tuple[Decimal, Decimal]] = {}

    # ---- helpers ------------------------------------------------------------------------
    def _previous_close(self, symbol: str) -> Decimal | None:
        instrument = self.instruments.get(symbol)
        return instrument.previous_close if instrument is not None else None

    def pack(self, symbol: str) -> RulePack:
        pack = self.packs.get(symbol)
        return pack if pack is not None else self._default_pack

    def market_buy_price(self, symbol: str) -> Decimal | None:
        """The price a market buy is reserved at: the upper circuit band, because no fill can be
        dearer. None when there is no positive reference price to build the band on."""
        reference = self._reference(symbol)
        if reference is None or reference <= 0:
            return None
        cached = self._band_cache.get(symbol)
        if cached is not None and cached[0] == reference:
            return cached[1]
        instrument = self.instruments.get(symbol)
        if instrument is None:
            return None
        pack = self.pack(symbol)
        high = price_band(reference, instrument.tick_size, pack.band_pct, pack.band_abs_floor)[1]
        self._band_cache[symbol] = (reference, high)
        return high

    def buy_cost(self, symbol: str, qty: Decimal, price: Decimal) -> Decimal:
        """What a buy of ``qty`` at ``price`` takes from cash: notional plus the fee its fill is
        charged (the pack's whole fee schedule)."""
        notional = qty * price
        rate, floor_rate, floor = self._fees.get(symbol, self._default_fees)
        fee = notional * rate
        if floor:  # a commission minimum; without one, n * rate >= n * floor_rate always
            low = notional * floor_rate + floor
            if low > fee:
                fee = low
        return notional + fee

    def settle_day(self, symbol: str, trading_day: dt.date) -> dt.date:
        """The day a trade done on ``trading_day`` settles: T+N trading days under the symbol's pack."""
        return self.calendar.add_trading_days(trading_day, self.pack(symbol).settlement_days(trading_day))

    def mark_price(self, symbol: str, mark: Mark) -> Decimal:
        """``mark(symbol)``, falling back to the previous close (0 for a symbol with no instrument)."""
        price = mark(symbol)
        if price is None:
            price = self._previous_close(symbol)
        return price if price is not None else ZERO

    # ---- fills and settlement -----------------------------------------------------------
    def apply_fill(self, fill: Fill, trading_day: dt.date) -> None:
        """Book one execution. The venue is the truth: a fill is applied even if it overdraws cash
        or sells more than is held (holdings then go negative and the snapshot shows it)."""
        symbol = fill.symbol
        qty = fill.qty
        amount = fill.price * qty
        settle_day = self.settle_day(symbol, trading_day)
        if fill.side is _BUY:
            self._cash -= amount + fill.fee
            self._ledger.append(LedgerEntry(_SHARES, trading_day, settle_day, symbol, qty))
            self._unsettled[symbol] = self._unsettled.get(symbol, ZERO) + qty
        else:
            self._take_shares(symbol, qty)
            proceeds = amount - fill.fee
            self._ledger.append(LedgerEntry(_CASH, trading_day, settle_day, symbol, proceeds))
            self._unsettled_cash += proceeds
            qty = -qty
        self._held[symbol] = self._held.get(symbol, ZERO) + qty

    def _take_shares(self, symbol: str, qty: Decimal) -> None:
        """Remove sold shares: settled ones first, then unsettled buys, earliest settle day first."""
        settled = self._settled.get(symbol, ZERO)
        from_settled = min(qty, settled) if settled > 0 else ZERO
        rest = qty - from_settled
        unsettled = self._unsettled.get(symbol, ZERO)
        if rest and unsettled > 0:
            ledger = self._ledger
            order = sorted(
                (i for i, e in enumerate(ledger) if e.kind == _SHARES and e.symbol == symbol),
                key=lambda i: ledger[i].settle_day,
            )
            for i in order:
                if not rest:
                    break
                entry = ledger[i]
                used = min(entry.amount, rest)
                ledger[i] = entry._replace(amount=entry.amount - used)
                rest -= used
                self._unsettled[symbol] = self._unsettled[symbol] - used
            self._ledger = [e for e in ledger if e.amount or e.kind == _CASH]
        # whatever neither covered is a sale of shares not held: recorded, never hidden
        self._settled[symbol] = settled - from_settled - rest

    def roll(self, to_day: dt.date) -> list[LedgerEntry]:
        """Settle every entry due on or before ``to_day`` and return them (for the log).

        The runtime calls it at each close with the next trading day, so a Monday sale under T+2
        is usable at Wednesday's open and not before."""
        due = [entry for entry in self._ledger if entry.settle_day <= to_day]
        if not due:
            return due
        self._ledger = [entry for entry in self._ledger if entry.settle_day > to_day]
        for entry in due:
            if entry.kind == _CASH:
                self._cash += entry.amount
                self._unsettled_cash -= entry.amount
            else:
                symbol = entry.symbol
                self._settled[symbol] = self._settled.get(symbol, ZERO) + entry.amount
                self._unsettled[symbol] = self._unsettled.get(symbol, ZERO) - entry.amount
        return due

    @property
    def has_unsettled(self) -> bool:
        return bool(self._ledger)

    def settlement_line(self, settled: Sequence[LedgerEntry]) -> str:
        """What :meth:`roll` just ``settled`` and what stays unsettled, as totals on one line
        (:func:`settlement_summary`)."""
        return settlement_summary(settled, self._ledger)

    # ---- reservations -------------------------------------------------------------------
    def reservation(self, order: Order) -> tuple[Decimal, Decimal]:
        """``(cash, shares)`` an order holds back, from its state alone.

        A buy holds leaves x limit price + estimated fee (a market buy at the upper band); a sell
        holds its leaves. While an amend is unanswered the larger of old and new is held, since
        the venue may settle on either. Terminal orders hold nothing; an order whose state is
        UNKNOWN is still live and keeps holding."""
        cash, held, _, _ = self._amounts(order)
        return cash, held

    def _amounts(self, order: Order) -> tuple[Decimal, Decimal, Decimal | None, Decimal | None]:
        """:meth:`reservation`'s ``(cash, shares)``, then what the pending amend's terms alone
        hold (``None, None`` without one): :meth:`track` keeps those for the venue's answer."""
        # It runs after every change to every order, so the order's slots are read directly (as the
        # runtime does), buy_cost is inlined, and ``max(a, b)`` is spelled ``b if b > a else a``:
        # the same object the builtin returns (the first of equal values), without its call.
        if order._status in TERMINAL_STATUSES:
            return ZERO, ZERO, None, None
        leaves = order._qty - order._cum_qty
        if leaves < ZERO:
            leaves = ZERO
        if order._side is _SELL:
            cash = ZERO
            price = None
        else:
            symbol = order._symbol
            price = order._price
            if price is None:
                price = self.market_buy_price(symbol) or ZERO
            try:  # self._fees.get(symbol, default) without a method call
                rate, floor_rate, floor = self._fees[symbol]
            except KeyError:
                rate, floor_rate, floor = self._default_fees
            notional = leaves * price
            fee = notional * rate
            if floor:  # a commission minimum (see buy_cost)
                low = notional * floor_rate + floor
                if low > fee:
                    fee = low
            cash = notional + fee
        if order._pending_qty is None and order._pending_price is None:
            return cash, leaves, None, None
        return self._with_pending(order, cash, leaves, price)

    def _with_pending(
        self, order: Order, cash: Decimal, leaves: Decimal, price: Decimal | None
    ) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """:meth:`_amounts` of an order with an unanswered amend, given what its current terms
        hold (``cash`` and ``leaves``, a buy's at ``price``): the larger of those and the pending
        terms' own, then the pending terms' own. :meth:`track` passes the current terms' amounts
        it already holds, so an amend asked works out only its new terms."""
        pending_qty = order._pending_qty
        if pending_qty is None:  # a price-only amend: the subtraction leaves already did
            p_leaves = leaves
        else:
            p_leaves = pending_qty - order._cum_qty
            if p_leaves < ZERO:
                p_leaves = ZERO
        held = p_leaves if p_leaves is not leaves and p_leaves > leaves else leaves
        if order._side is _SELL:
            return ZERO, held, ZERO, p_leaves
        pending_price = order._pending_price
        p_price = pending_price if pending_price is not None else price
        try:
            rate, floor_rate, floor = self._fees[order._symbol]
        except KeyError:
            rate, floor_rate, floor = self._default_fees
        notional = p_leaves * p_price  # type: ignore[operator]  # a buy always has its price here
        fee = notional * rate
        if floor:
            low = notional * floor_rate + floor
            if low > fee:
                fee = low
        p_cash = notional + fee
        return p_cash if p_cash > cash else cash, held, p_cash, p_leaves

    def track(self, order: Order) -> None:
        """Recompute ``order``'s reservation and move the totals by the difference (O(1)).

        Some answers are known without working them out, since the same inputs give the same
        amounts (identity, so even the digits are the same): an order whose terms are the very
        objects its reservation was last worked out from (a venue's ack, a cancel request or a
        refused one) keeps it; an amend just asked holds the larger of what the unchanged current
        terms held and what its new terms hold, so only the new terms are worked out; and an order
        whose amend the venue just confirmed with the very price and quantity objects that were
        asked (and nothing filled meanwhile) holds what those pending terms alone held, worked out
        when the amend was asked, from the same operands. A market buy is always recomputed, since
        its price is the circuit band's, which moves with the reference price.

        A total moves only when the order's amount is a new object: taking an amount out and
        putting the same object back leaves the total's digits as they were, since every amount
        it holds was added to it (its exponent is at most the amount's)."""
        client_id = order._client_id
        orders = self._orders
        old = orders.get(client_id)
        if order._status in TERMINAL_STATUSES:
            if old is not None:
                del orders[client_id]
                symbol = old[0]
                if old[1] is _SELL:
                    self._reserved_shares[symbol] -= old[3]
                else:
                    self._reserved_cash -= old[2]
                    self._open_buys[symbol] -= old[3]
            return
        qty = order._qty
        cum = order._cum_qty
        price = order._price
        pending_qty = order._pending_qty
        pending_price = order._pending_price
        amounts: tuple[Decimal, Decimal, Decimal | None, Decimal | None] | None = None
        if old is not None and price is not None and old[5] is cum:
            if old[4] is qty and old[6] is price:
                if old[7] is pending_qty and old[8] is pending_price:
                    return  # the same terms: the same reservation
                if old[7] is None and old[8] is None:  # an amend just asked
                    amounts = self._with_pending(order, old[2], old[3], price)
            if (amounts is None and old[9] is not None and pending_qty is None and pending_price is None
                    and qty is (old[4] if old[7] is None else old[7])
                    and price is (old[6] if old[8] is None else old[8])):
                amounts = old[9], old[10], None, None  # the confirmed amend's own terms
        if amounts is None:
            amounts = self._amounts(order)
        cash, held, p_cash, p_held = amounts
        symbol = order._symbol
        side = _SELL if order._side is _SELL else _BUY
        orders[client_id] = (symbol, side, cash, held, qty, cum, price, pending_qty, pending_price, p_cash, p_held)
        if side is _SELL:
            shares = self._reserved_shares
            if old is None:
                shares[symbol] = shares.get(symbol, ZERO) + held
            elif held is not old[3]:
                shares[symbol] = shares[symbol] - old[3] + held
            return
        if old is None:
            self._reserved_cash += cash
            self._open_buys[symbol] = self._open_buys.get(symbol, ZERO) + held
            return
        if cash is not old[2]:
            self._reserved_cash = self._reserved_cash - old[2] + cash
        if held is not old[3]:
            buys = self._open_buys
            buys[symbol] = buys[symbol] - old[3] + held

    def reserved_for(self, client_id: str) -> tuple[Decimal, Decimal]:
        """``(cash, shares)`` currently held back for one tracked order (zeros when untracked)."""
        entry = self._orders.get(client_id)
        return (ZERO, ZERO) if entry is None else (entry[2], entry[3])

    # ---- read side ----------------------------------------------------------------------
    @property
    def cash(self) -> Decimal:
        """Settled cash, including what open buys have reserved."""
        return self._cash

    @property
    def buying_power(self) -> Decimal:
        """Settled cash not reserved by open buys."""
        return self._cash - self._reserved_cash

    @property
    def reserved_cash(self) -> Decimal:
        return self._reserved_cash

    @property
    def unsettled_cash(self) -> Decimal:
        """Sale proceeds not yet settled."""
        return self._unsettled_cash

    def reserved_shares(self, symbol: str) -> Decimal:
        return self._reserved_shares.get(symbol, ZERO)

    def open_buy_qty(self, symbol: str) -> Decimal:
        return self._open_buys.get(symbol, ZERO)

    def settled_shares(self, symbol: str) -> Decimal:
        return self._settled.get(symbol, ZERO)

    def unsettled_shares(self, symbol: str) -> Decimal:
        """Shares bought and not yet settled."""
        return self._unsettled.get(symbol, ZERO)

    def holdings(self, symbol: str) -> Decimal:
        """Settled plus unsettled shares."""
        return self._held.get(symbol, ZERO)

    def sellable(self, symbol: str) -> Decimal:
        """Shares a new sell may take: settled ones, plus unsettled buys where the pack allows
        selling them (pre-existing interest), minus what open sells already hold."""
        available = self._settled.get(symbol, ZERO)
        if self._sell_unsettled.get(symbol, False):
            available += self._unsettled.get(symbol, ZERO)
        return available - self._reserved_shares.get(symbol, ZERO)

    def equity(self, mark: Mark) -> Decimal:
        """Settled and unsettled cash plus holdings at ``mark`` (previous close when it has none)."""
        total = self._cash + self._unsettled_cash
        for symbol, qty in self._held.items():
            if qty:
                total += qty * self.mark_price(symbol, mark)
        return total

    def sector_of(self, symbol: str) -> str:
        instrument = self.instruments.get(symbol)
        return instrument.sector if instrument is not None else ""

    def sector_limit(self, sector: str) -> SectorLimitConfig | None:
        """The cap that applies to ``sector``: its own entry, else '*', else None."""
        caps = self._sector_caps
        return caps[sector] if sector in caps else caps["*"]

    def sector_exposure(self, sector: str, mark: Mark) -> Decimal:
        """Holdings plus open buy leaves of the sector's symbols, at ``mark``."""
        total = ZERO
        held = self._held
        buys = self._open_buys
        for symbol in self._sector_symbols.get(sector, ()):
            qty = held.get(symbol, ZERO) + buys.get(symbol, ZERO)
            if qty:
                total += qty * self.mark_price(symbol, mark)
        return total

    def proceeds_by(self, shortfall: Decimal) -> tuple[Decimal, dt.date] | None:
        """The earliest settle day by which unsettled sale proceeds cover ``shortfall``, and how much
        settles by then; None when they never do. Rejection path only."""
        total = ZERO
        for entry in sorted((e for e in self._ledger if e.kind == _CASH), key=lambda e: e.settle_day):
            total += entry.amount
            if total >= shortfall:
                return total, entry.settle_day
        return None

    def shares_by(self, symbol: str, shortfall: Decimal) -> tuple[Decimal, dt.date] | None:
        """Like :meth:`proceeds_by` for one symbol's unsettled bought shares."""
        total = ZERO
        entries = (e for e in self._ledger if e.kind == _SHARES and e.symbol == symbol)
        for entry in sorted(entries, key=lambda e: e.settle_day):
            total += entry.amount
            if total >= shortfall:
                return total, entry.settle_day
        return None

    def persisted(self) -> dict[str, Any]:
        """Cash, holdings and the unsettled ledger as exact strings, for the journal's snapshots.
        Reservations are not kept: they follow from the open orders, tracked again at restart."""
        return {
            "cash": str(self._cash),
            "unsettled_cash": str(self._unsettled_cash),
            "settled": {s: str(q) for s, q in self._settled.items()},
            "unsettled": {s: str(q) for s, q in self._unsettled.items()},
            "held": {s: str(q) for s, q in self._held.items()},
            "ledger": [[e.kind, e.trade_day.isoformat(), e.settle_day.isoformat(), e.symbol, str(e.amount)]
                       for e in self._ledger],
        }

    def restore(self, saved: dict[str, Any]) -> None:
        """Take the state a journal snapshot recorded (before any order is tracked)."""
        self._cash = Decimal(saved["cash"])
        self._unsettled_cash = Decimal(saved["unsettled_cash"])
        self._settled = {s: Decimal(q) for s, q in saved["settled"].items()}
        self._unsettled = {s: Decimal(q) for s, q in saved["unsettled"].items()}
        self._held = {s: Decimal(q) for s, q in saved["held"].items()}
        self._ledger = [
            LedgerEntry(kind, dt.date.fromisoformat(trade), dt.date.fromisoformat(settle), symbol, Decimal(amount))
            for kind, trade, settle, symbol, amount in saved["ledger"]
        ]

    def snapshot(self) -> dict[str, Any]:
        """Plain data for the JSON report: amounts as strings, dates as ISO strings."""
        symbols = sorted(set(self._held) | set(self._settled) | set(self._unsettled) | set(self._reserved_shares))
        return {
            "cash": str(self._cash),
            "unsettled_cash": str(self._unsettled_cash),
            "buying_power": str(self.buying_power.quantize(Decimal("0.01"))),
            "unsettled": [
                {
                    "kind": e.kind,
                    "symbol": e.symbol,
                    "amount": str(e.amount),
                    "trade_day": e.trade_day.isoformat(),
                    "settle_day": e.settle_day.isoformat(),
                }
                for e in sorted(self._ledger, key=lambda e: (e.settle_day, e.trade_day, e.symbol, e.kind))
            ],
            "holdings": {
                symbol: {
                    "settled": str(self._settled.get(symbol, ZERO)),
                    "unsettled": str(self._unsettled.get(symbol, ZERO)),
                    "total": str(self._held.get(symbol, ZERO)),
                }
                for symbol in symbols
            },
            "reserved": {
                # held for open buys incl. the estimated fee: shown to the paisa like buying power
                "cash": str(self._reserved_cash.quantize(Decimal("0.01"))),
                "shares": {s: str(q) for s, q in sorted(self._reserved_shares.items()) if q},
                "orders": str(len(self._orders)),
            },
        }


# ---- checks ---------------------------------------------------------------------------------


def worst_position(position: Decimal, side: Side, added: Decimal) -> Decimal | None:
    """The position once ``added`` more fills on ``side`` (the order with the other open ones on its
    side); None when that can only shrink it without crossing zero (no position limit applies).
    Shared by the strategy's and the derivatives account's position limits."""
    worst = position + added if side is _BUY else position - added
    if (position > ZERO and ZERO <= worst <= position) or (position < ZERO and position <= worst <= ZERO):
        return None
    return worst


def new_leaves(request: OrderRequest) -> Decimal:
    """Leaves an order would have after the request: its qty, or for an amend the new total less
    what has already filled."""
    amend = request.amend_of
    return request.qty if amend is None else request.qty - amend.cum_qty


class BuyingPower:
    """2004 / 4001: a buy must fit in settled cash not already reserved (plus unsettled sale
    proceeds where the pack's broker policy lets them be used)."""

    always_allows = _SELL  # the gate skips it for sells (see Check)
    __slots__ = ("account",)

    def __init__(self, account: CashAccount) -> None:
        self.account = account

    def check(self, request: OrderRequest) -> Rejection | None:
        if request.side is _SELL:
            return None
        account = self.account
        symbol = request.symbol
        price = request.price
        if price is None:
            price = account.market_buy_price(symbol)
            if price is None:
                return Rejection(
                    Reject.INSUFFICIENT_BUYING_POWER,
                    f"cannot reserve cash for a market buy of {symbol}: no reference price for its circuit band",
                )
        qty = request.qty
        amend = request.amend_of
        if amend is not None:
            qty -= amend.cum_qty
        # account.buy_cost spelled out (a call costs ~420 instructions per order); a test holds the two equal
        notional = qty * price
        try:  # account._fees.get(symbol, default) without a method call on the common path
            rate, floor_rate, floor = account._fees[symbol]
        except KeyError:
            rate, floor_rate, floor = account._default_fees
        fee = notional * rate
        if floor:  # a commission minimum (see CashAccount.buy_cost)
            low = notional * floor_rate + floor
            if low > fee:
                fee = low
        need = notional + fee
        if amend is not None:
            need -= account.reserved_for(amend.client_id)[0]
        # the account's private fields are read directly: a property call per read would cost more
        # than the arithmetic on this path
        available = account._cash - account._reserved_cash
        if need <= available or need <= ZERO:  # Decimal(0): no int conversion per comparison
            return None
        unsettled = account._unsettled_cash
        if need <= available + unsettled:
            if account.pack(symbol).use_unsettled_sale_proceeds:
                return None
            shortfall = need - available
            by = account.proceeds_by(shortfall)
            settles = "" if by is None else f"; {money(by[0])} of sale proceeds settle on {by[1].isoformat()}"
            return Rejection(
                Reject.UNSETTLED_FUNDS,
                f"buy {units(qty)} {symbol} needs {money(shortfall)} more than the buying power of "
                f"{money(available)}{settles} (unsettled sale proceeds are not usable before they settle)",
            )
        what = "amend of" if amend is not None else "buy"
        return Rejection(
            Reject.INSUFFICIENT_BUYING_POWER,
            f"{what} {units(qty)} {symbol} needs {money(need)} (incl. estimated fee) but buying power is "
            f"{money(available)} (settled cash {money(account._cash)} less {money(account._reserved_cash)} "
            f"reserved by open buys; {money(unsettled)} unsettled)",
        )


class NoShortSelling:
    """2005 / 4002: a sell must be covered by shares held and not already being sold. A sell never
    becomes a short: PSX refuses blank sales (rule 11)."""

    always_allows = _BUY  # the gate skips it for buys (see Check)
    __slots__ = ("account",)

    def __init__(self, account: CashAccount) -> None:
        self.account = account

    def check(self, request: OrderRequest) -> Rejection | None:
        if request.side is _BUY:
            return None
        account = self.account
        symbol = request.symbol
        qty = new_leaves(request)
        amend = request.amend_of
        if amend is not None:
            qty -= account.reserved_for(amend.client_id)[1]
            if qty <= ZERO:
                return None
        sellable = account.sellable(symbol)
        if qty <= sellable:
            return None
        unsettled = account._unsettled.get(symbol, ZERO)
        if unsettled > 0 and not account._sell_unsettled.get(symbol, False) and qty <= sellable + unsettled:
            shortfall = qty - sellable
            by = account.shares_by(symbol, shortfall)
            settles = "" if by is None else f"; {units(by[0])} bought shares settle on {by[1].isoformat()}"
            return Rejection(
                Reject.SETTLEMENT_IN_PROGRESS,
                f"sell {units(qty)} {symbol} but only {units(sellable)} settled shares are free to sell{settles} "
                f"(this rule pack does not allow selling unsettled buys)",
            )
        more = "more " if amend is not None else ""
        return Rejection(
            Reject.POSITION_NOT_HELD,
            f"sell {units(qty)} {more}{symbol} but only {units(max(sellable, ZERO))} held and not already being "
            f"sold (blank short sales are refused)",
        )


_NO_LIMITS: tuple[Decimal | None, Decimal | None] = (None, None)


class PositionLimit:
    """2008: a strategy's position, with its open orders on the same side and this order, stays
    within its internal max_position (shares) and max_notional. Orders that only reduce the
    position (without crossing zero into the other side) are always allowed."""

    __slots__ = ("limits", "positions", "open_qty", "reference_price", "_resolved")

    def __init__(
        self,
        limits: Mapping[str, PositionLimits],
        positions: Callable[[str, str], Decimal],
        open_qty: Callable[[str, str, Side], Decimal],
        reference_price: Callable[[str], Decimal | None] | None = None,
    ) -> None:
        self.limits = limits
        self.positions = positions
        self.open_qty = open_qty
        self.reference_price = reference_price
        self._resolved: dict[tuple[str, str], tuple[Decimal | None, Decimal | None]] = {}

    def _limits_for(self, strategy: str, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        key = (strategy, symbol)
        resolved = self._resolved.get(key)
        if resolved is None:
            limits = self.limits.get(strategy)
            resolved = _NO_LIMITS if limits is None else limits.for_symbol(symbol)
            self._resolved[key] = resolved
        return resolved

    def check(self, request: OrderRequest) -> Rejection | None:
        strategy = request.strategy
        symbol = request.symbol
        max_position, max_notional = self._limits_for(strategy, symbol)
        if max_position is None and max_notional is None:
            return None
        side = request.side
        qty = request.qty
        open_same = self.open_qty(strategy, symbol, side)
        amend = request.amend_of
        if amend is not None:
            old_leaves = amend.leaves_qty
            qty -= amend.cum_qty
            open_same -= old_leaves
            price_up = request.price is not None and amend.price is not None and request.price > amend.price
            if qty <= old_leaves and not (price_up and max_notional is not None):
                return None  # an amend that does not grow the order
        position = self.positions(strategy, symbol)
        worst = worst_position(position, side, open_same + qty)
        if worst is None:
            return None  # reduces the position without crossing zero
        size = abs(worst)
        if max_position is not None and size > max_position:
            return Rejection(
                Reject.POSITION_LIMIT_EXCEEDED,
                f"{side} {units(qty)} {symbol} could take strategy {strategy!r} to {units(size)} shares "
                f"(position {units(position)}, {units(open_same)} on open {side} orders), above its internal "
                f"limit max_position {units(max_position)} (a firm limit, not a PSX rule)",
            )
        if max_notional is not None:
            price = request.price
            if price is None:
                price = self.reference_price(symbol) if self.reference_price is not None else None
                if price is None and request.instrument is not None:
                    price = request.instrument.previous_close
            if price is not None and size * price > max_notional:
                return Rejection(
                    Reject.POSITION_LIMIT_EXCEEDED,
                    f"{side} {units(qty)} {symbol} could take strategy {strategy!r} to {money(size * price)} "
                    f"({units(size)} shares at {price}), above its internal limit max_notional "
                    f"{money(max_notional)} (a firm limit, not a PSX rule)",
                )
        return None


class SectorLimit:
    """2009: a buy may not take its sector's exposure (holdings plus open buys, at mark) over the
    sector's internal cap. Instruments the master gives no sector are in no sector."""

    always_allows = _SELL  # the gate skips it for sells (see Check)
    __slots__ = ("account", "mark")

    def __init__(self, account: CashAccount, mark: Mark) -> None:
        self.account = account
        self.mark = mark

    def check(self, request: OrderRequest) -> Rejection | None:
        if request.side is _SELL:
            return None
        account = self.account
        caps = account._sector_caps
        instrument = request.instrument
        symbol = request.symbol
        sector = instrument.sector if instrument is not None else account.sector_of(symbol)
        if not sector:
            return None
        cap = caps[sector] if sector in caps else caps["*"]
        if cap is None:
            return None
        mark = self.mark
        price = request.price
        if price is None:
            price = account.market_buy_price(symbol)
            if price is None:
                price = account.mark_price(symbol, mark)
        exposure = account.sector_exposure(sector, mark)
        added = new_leaves(request) * price
        amend = request.amend_of
        if amend is not None:
            added -= amend.leaves_qty * account.mark_price(symbol, mark)
        if added <= ZERO:
            return None
        if cap.notional is not None:
            limit = cap.notional
            basis = ""
        else:
            pct = cap.pct_of_equity or ZERO  # exactly one of the two is set
            limit = pct * account.equity(mark)
            basis = f" ({(pct * 100).normalize():f}% of equity)"
        total = exposure + added
        if total > limit:
            return Rejection(
                Reject.SECTOR_EXPOSURE_EXCEEDED,
                f"buy {units(new_leaves(request))} {symbol} would take sector {sector!r} exposure to "
                f"{money(total)} (now {money(exposure)}), above its internal limit {money(limit)}{basis} "
                f"(a firm limit, not a PSX rule)",
            )
        return None
