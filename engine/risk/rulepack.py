"""The PSX rule pack: the numbers the pre-trade checks enforce, as data.

Three profiles ship in ``engine/data/risk_profiles.yaml``: ``broker-doc`` (the broker document's
values, the default) and ``psx-2026`` (current PSX practice per shared/PSX_RULES.md) for PSX, and
``derivatives`` for a derivatives venue (Pulse): no circuit band, no T+N, lots from the
instrument's amount step, no PSX levies. Config picks
one (``risk.profile``), may override any value for every instrument (``risk.rules``) and again per
instrument (``risk.instruments.<SYMBOL>``). The result is one frozen :class:`RulePack` per symbol,
resolved once at start, so a check reads plain attributes on the order path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.model import Side

SHIPPED_PROFILES_RESOURCE = "data/risk_profiles.yaml"
DEFAULT_PROFILE = "broker-doc"


class SettlementEntry(BaseModel):
    """Settlement cycle in trading days for trades on or after ``from`` (None = since ever)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    days: int = Field(ge=0, le=10)
    from_: dt.date | None = Field(default=None, alias="from")


class FeeLine(BaseModel):
    """One levy or tax a trade carries on top of the broker's commission, with where its figure
    comes from: ``basis: notional`` is a fraction of price x quantity, ``basis: commission`` a
    fraction of the commission (sales tax on brokerage). No minimum: only the commission has one,
    which keeps the buy reservation equal to the charged fee (see :class:`FeeSchedule`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    rate: Decimal = Field(ge=0, lt=1)
    basis: Literal["notional", "commission"] = "notional"
    side: Literal["both", "buy", "sell"] = "both"
    source: str = Field(min_length=1, description="Where the figure comes from; 'assumption, verify ...' if unsure.")


class RulePack(BaseModel):
    """Every PSX pre-trade value for one instrument. Prices and amounts are exact Decimals."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- circuit breaker (PSX_RULES rule 6) ---------------------------------------------------
    circuit_band: bool = Field(
        True, description="Limit prices must lie in a band around the reference price; false on a venue without "
                          "one (a perpetual: the 'derivatives' profile), where only the fat-finger rule applies."
    )
    band_pct: Decimal = Field(Decimal("0.10"), gt=0, lt=1, description="Price band around the reference price.")
    band_abs_floor: Decimal = Field(
        Decimal(0), ge=0, description="The band is at least this many rupees wide each side ('10% or Rs 1')."
    )
    band_hit_halts: bool = Field(
        False, description="A trade at the band edge halts new orders in the instrument for the rest of the day."
    )
    # --- lots (rule 8) ---------------------------------------------------------------------------
    lot_size: Decimal | None = Field(
        None, gt=0, description="Lot size; None = the instrument master's lot_size."
    )
    # --- sessions (rules 1, 3, 15) ---------------------------------------------------------------
    pre_open_market_orders: bool = Field(False, description="Market orders accepted in pre-open.")
    post_close_closing_price_only: bool = Field(
        True, description="In post-close only limit orders at the official closing price."
    )
    # --- settlement and cash account (rule 10) ---------------------------------------------------
    settlement: tuple[SettlementEntry, ...] = Field(
        (SettlementEntry(days=2),), min_length=1, description="Settlement cycle history, oldest first."
    )
    sell_unsettled_buys: bool = Field(
        False, description="Shares bought but not yet settled may be sold ('pre-existing interest')."
    )
    use_unsettled_sale_proceeds: bool = Field(
        False, description="Sale proceeds count as buying power before they settle (broker credit policy)."
    )
    # --- short selling (rule 11) -----------------------------------------------------------------
    short_selling: bool = Field(False, description="Blank short sales are always refused; must stay false.")
    # --- fee schedule: charged on every fill, reserved with every buy -----------------------------
    fee_rate: Decimal = Field(Decimal("0.0015"), ge=0, lt=1, description="Broker commission, fraction of notional.")
    fee_min: Decimal = Field(Decimal(0), ge=0, description="Minimum broker commission per fill, rupees.")
    fee_source: str = Field("assumption, verify with your broker", min_length=1,
                            description="Where the commission figures come from.")
    fees: tuple[FeeLine, ...] = Field((), description="Levies and taxes on top of the commission.")
    fee_tolerance: Decimal = Field(
        Decimal("0.01"), ge=0, description="A venue-reported fee further than this from the schedule's is an anomaly."
    )
    # --- fat-finger rules (internal limits) ------------------------------------------------------
    max_order_qty: Decimal | None = Field(None, gt=0, description="Largest quantity one order may carry.")
    max_order_notional: Decimal | None = Field(None, gt=0, description="Largest price x quantity of one order.")
    max_price_deviation_pct: Decimal | None = Field(
        None, gt=0, lt=1, description="Limit price at most this far from the last trade (or mid)."
    )

    @field_validator("short_selling")
    @classmethod
    def _no_blank_sales(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "short selling needs SLB borrowing, the F8 window and a tick rule, which this engine does not "
                "implement; blank short sales are refused on PSX, so short_selling must stay false"
            )
        return value

    @model_validator(mode="after")
    def _settlement_in_order(self) -> RulePack:
        starts = [entry.from_ for entry in self.settlement]
        if any(start is None for start in starts[1:]):
            raise ValueError("only the first settlement entry may leave out 'from'")
        dated = [start for start in starts if start is not None]
        if dated != sorted(dated) or len(set(dated)) != len(dated):
            raise ValueError("settlement entries must be in increasing 'from' order")
        return self

    @model_validator(mode="after")
    def _fee_lines_named_once(self) -> RulePack:
        names = [line.name for line in self.fees]
        if "commission" in names or len(set(names)) != len(names):
            raise ValueError("each fee line needs its own name, and 'commission' is fee_rate / fee_min")
        return self

    def settlement_days(self, trade_day: dt.date) -> int:
        """The settlement cycle for a trade done on ``trade_day`` (T+2, T+1 from 2026-02-09, ...)."""
        days = self.settlement[0].days
        for entry in self.settlement:
            if entry.from_ is None or entry.from_ <= trade_day:
                days = entry.days
        return days

    def estimated_fee(self, notional: Decimal) -> Decimal:
        """The fee reserved with a buy: exactly what a buy fill of ``notional`` is charged."""
        return self.fee_schedule().fee(Side.BUY, notional)

    def fee_schedule(self) -> FeeSchedule:
        return _schedule_of(self)

    def effective_lot(self, master_lot: Decimal) -> Decimal:
        return self.lot_size if self.lot_size is not None else master_lot


class FeeSchedule:
    """A pack's fee lines folded into three numbers per side, so the gate prices a buy's fee with
    one multiplication (two with a commission minimum; see README Benchmarks) and the venue
    charges the same figure.

    The commission is ``max(n * fee_rate, fee_min)``; commission-based taxes scale it by
    ``1 + T``; notional levies add ``n * L``. Their sum is exactly
    ``max(n * (fee_rate * (1 + T) + L), n * L + fee_min * (1 + T))``: ``(rate, floor_rate,
    floor)`` per side below. Exact Decimal, not rounded: the paper venue charges it unrounded."""

    __slots__ = ("pack", "buy", "sell")

    def __init__(self, pack: RulePack) -> None:
        self.pack = pack
        self.buy = self._terms(pack, "buy")
        self.sell = self._terms(pack, "sell")

    @staticmethod
    def _terms(pack: RulePack, side: str) -> tuple[Decimal, Decimal, Decimal]:
        lines = [line for line in pack.fees if line.side in ("both", side)]
        tax = sum((line.rate for line in lines if line.basis == "commission"), Decimal(0))
        levy = sum((line.rate for line in lines if line.basis == "notional"), Decimal(0))
        return pack.fee_rate * (1 + tax) + levy, levy, pack.fee_min * (1 + tax)

    def fee(self, side: Side, notional: Decimal) -> Decimal:
        """The whole fee of one fill of ``notional``."""
        rate, floor_rate, floor = self.buy if side is Side.BUY else self.sell
        fee = notional * rate
        low = notional * floor_rate + floor
        return fee if fee > low else low

    def breakdown(self, side: Side, notional: Decimal) -> list[tuple[str, Decimal]]:
        """The fee line by line (commission first); the amounts sum to :meth:`fee`."""
        pack = self.pack
        commission = max(notional * pack.fee_rate, pack.fee_min)
        rows = [("commission", commission)]
        for line in pack.fees:
            if line.side in ("both", side.value):
                rows.append((line.name, (commission if line.basis == "commission" else notional) * line.rate))
        return rows


@cache
def _schedule_of(pack: RulePack) -> FeeSchedule:
    return FeeSchedule(pack)


@cache
def shipped_profiles() -> dict[str, dict[str, Any]]:
    """The profiles in ``engine/data/risk_profiles.yaml`` as raw mappings (validated on use)."""
    text = resources.files("engine").joinpath(SHIPPED_PROFILES_RESOURCE).read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    return {str(name): dict(values or {}) for name, values in (data.get("profiles") or {}).items()}


class UnknownProfile(ValueError):
    pass


def resolve_packs(
    profile: str,
    rules: Mapping[str, Any] | None,
    per_instrument: Mapping[str, Mapping[str, Any]] | None,
    symbols: Iterable[str],
) -> dict[str, RulePack]:
    """One pack per symbol: profile, then ``rules`` for all, then the symbol's own overrides.

    Raises :class:`UnknownProfile` or pydantic's ``ValidationError`` (the config loader turns both
    into a message naming the config line)."""
    profiles = shipped_profiles()
    if profile not in profiles:
        raise UnknownProfile(f"unknown risk profile {profile!r}; shipped profiles: {', '.join(sorted(profiles))}")
    base = {**profiles[profile], **dict(rules or {})}
    RulePack.model_validate(base)  # a bad shared value is reported once, not once per symbol
    packs: dict[str, RulePack] = {}
    shared: RulePack | None = None
    for symbol in symbols:
        own = (per_instrument or {}).get(symbol)
        if own:
            packs[symbol] = RulePack.model_validate({**base, **dict(own)})
        else:
            if shared is None:
                shared = RulePack.model_validate(base)
            packs[symbol] = shared
    return packs


__all__ = [
    "DEFAULT_PROFILE",
    "FeeLine",
    "FeeSchedule",
    "RulePack",
    "SettlementEntry",
    "UnknownProfile",
    "ValidationError",
    "resolve_packs",
    "shipped_profiles",
]
