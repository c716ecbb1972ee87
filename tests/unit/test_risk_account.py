"""The PSX cash account and its checks (engine/risk/account.py): settlement on the trading
calendar, reservations of open orders, buying power, no blank sales, position and sector limits.

Facts from /work/shared/PSX_RULES.md rules 10-13: broker-doc is T+2 and forbids selling unsettled
buys or spending unsettled proceeds; psx-2026 is T+1 from 2026-02-09 and allows selling unsettled
buys ("pre-existing interest"). 2026-12-25 (Quaid-e-Azam Day) is a PSX holiday."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from support import json_leaves

from engine.model import Fill, Instrument, Order, OrderStatus, OrderType, Side, TimeInForce
from engine.rejects import Reject
from engine.risk.account import (
    AccountConfig,
    BuyingPower,
    CashAccount,
    NoShortSelling,
    PositionLimit,
    PositionLimits,
    SectorLimit,
    SectorLimitConfig,
)
from engine.risk.gate import OrderRequest
from engine.risk.rulepack import resolve_packs
from engine.sessions import HolidaysConfig, TradingCalendar

D = Decimal
CAL = TradingCalendar()
BANKS = "Commercial Banks"
INSTRUMENTS = {
    "MEBL": Instrument("MEBL", "psx", previous_close=D("187.50"), sector=BANKS),
    "HBL": Instrument("HBL", "psx", previous_close=D("250.00"), sector=BANKS),
    "OGDC": Instrument("OGDC", "psx", previous_close=D("109.30"), sector="Oil & Gas"),
    "CHEAP": Instrument("CHEAP", "psx", previous_close=D("5.00"), sector="Cement"),
    "NOSEC": Instrument("NOSEC", "psx", previous_close=D("10.00")),
}
SYMBOLS = tuple(INSTRUMENTS)
THU = dt.date(2026, 11, 19)
MON = dt.date(2026, 11, 23)
PROFILES = ["broker-doc", "psx-2026"]
NO_FEE = {"fee_rate": "0", "fees": []}  # no commission and no levies (psx-2026 has some)


def packs(profile: str = "broker-doc", **rules: object) -> dict:
    return resolve_packs(profile, rules or None, None, SYMBOLS)


def account(
    cash: str = "100000",
    holdings: dict[str, str] | None = None,
    profile: str = "broker-doc",
    sector_limits: dict | None = None,
    reference_price=None,
    **rules: object,
) -> CashAccount:
    config = AccountConfig(cash=D(cash), holdings={k: D(v) for k, v in (holdings or {}).items()},
                           sector_limits=sector_limits or {})
    return CashAccount(config, CAL, INSTRUMENTS, packs(profile, **rules), reference_price=reference_price)


_ids = iter(range(10**9))
PRICES = st.integers(min_value=1, max_value=50_000).map(lambda cents: D(cents) / 100)
QTYS = st.integers(min_value=1, max_value=1_000).map(D)


def order(side: Side, qty: str | int, price: str | None, symbol: str = "MEBL", strategy: str = "alpha") -> Order:
    kind = OrderType.LIMIT if price is not None else OrderType.MARKET
    return Order(f"o{next(_ids)}", strategy, "psx", symbol, side, D(qty), None if price is None else D(price), kind)


def fill(side: Side, qty: str | int, price: str, symbol: str = "MEBL", fee: str = "0") -> Fill:
    return Fill("psx", symbol, "c", "v", f"e{next(_ids)}", side, D(price), D(qty), 0, fee=D(fee))


def request(
    side: Side, qty: str | int, price: str | None, symbol: str = "MEBL", amend_of: Order | None = None,
    strategy: str = "alpha",
) -> OrderRequest:
    kind = OrderType.LIMIT if price is not None else OrderType.MARKET
    return OrderRequest(
        strategy, "psx", symbol, INSTRUMENTS.get(symbol), side, D(qty), None if price is None else D(price),
        kind, TimeInForce.DAY, False, f"r{next(_ids)}", amend_of=amend_of,
    )


def placed(acct: CashAccount, side: Side, qty: str | int, price: str | None, symbol: str = "MEBL") -> Order:
    """An order acked by the venue and tracked by the account."""
    o = order(side, qty, price, symbol)
    o.transition(OrderStatus.NEW)
    acct.track(o)
    return o


# ---- configuration ------------------------------------------------------------------------


def test_sector_limit_config_needs_exactly_one_of_notional_or_pct():
    with pytest.raises(ValidationError, match="exactly one"):
        SectorLimitConfig()
    with pytest.raises(ValidationError, match="exactly one"):
        SectorLimitConfig(notional=D(1), pct_of_equity=D("0.5"))
    assert SectorLimitConfig(pct_of_equity=D(1)).pct_of_equity == D(1)


@pytest.mark.parametrize("pct", ["0", "1.01", "-0.1"])
def test_sector_limit_pct_must_be_in_zero_one(pct: str):
    with pytest.raises(ValidationError):
        SectorLimitConfig(pct_of_equity=D(pct))


def test_account_config_defaults_and_strictness():
    config = AccountConfig()
    assert config.cash == D(10_000_000) and isinstance(config.cash, Decimal)
    assert config.holdings == {} and config.sector_limits == {}
    with pytest.raises(ValidationError):
        AccountConfig(cahs=D(1))
    with pytest.raises(ValidationError):
        AccountConfig(holdings={"MEBL": D(-1)})
    with pytest.raises(ValidationError):
        AccountConfig(sector_limits={"*": {"notional": "1", "extra": 1}})


def test_position_limits_symbol_override_replaces_given_fields_only():
    limits = PositionLimits.model_validate(
        {"max_position": "1000", "max_notional": "50000",
         "symbols": {"MEBL": {"max_position": "200"}, "OGDC": {"max_notional": None},
                     "HBL": {"max_position": None}}}
    )
    assert limits.for_symbol("MEBL") == (D(200), D(50000))
    assert limits.for_symbol("OGDC") == (D(1000), None)
    assert limits.for_symbol("HBL") == (None, D(50000))
    assert limits.for_symbol("CHEAP") == (D(1000), D(50000))
    with pytest.raises(ValidationError):
        PositionLimits.model_validate({"symbols": {"MEBL": {"max_qty": 1}}})


# ---- settlement on the trading calendar ---------------------------------------------------


def test_thursday_sale_under_t_plus_2_settles_monday_skipping_the_weekend():
    acct = account(holdings={"MEBL": "100"})
    assert not CAL.is_trading_day(dt.date(2026, 11, 21)) and not CAL.is_trading_day(dt.date(2026, 11, 22))
    acct.apply_fill(fill(Side.SELL, 100, "200.00", fee="30"), THU)
    assert acct.unsettled_cash == D("19970.00")
    assert acct.snapshot()["unsettled"][0]["settle_day"] == "2026-11-23" == CAL.add_trading_days(THU, 2).isoformat()
    assert acct.roll(dt.date(2026, 11, 20)) == []  # Friday's close: nothing due
    assert acct.cash == D(100000)
    settled = acct.roll(MON)
    assert [(e.kind, e.settle_day, e.amount) for e in settled] == [("cash", MON, D("19970.00"))]
    assert acct.cash == D("119970.00") and acct.unsettled_cash == 0


def test_holiday_in_the_settlement_window_pushes_settlement_one_more_trading_day():
    wednesday = dt.date(2026, 12, 23)
    assert not CAL.is_trading_day(dt.date(2026, 12, 25))  # Quaid-e-Azam Day
    acct = account(holdings={"MEBL": "10"})
    acct.apply_fill(fill(Side.SELL, 10, "100"), wednesday)
    assert acct.snapshot()["unsettled"][0]["settle_day"] == "2026-12-28"
    # the same trade on a calendar where the 25th trades would settle on the 25th
    without_holiday = TradingCalendar(HolidaysConfig(remove=[dt.date(2026, 12, 25)]))
    assert without_holiday.add_trading_days(wednesday, 2) == dt.date(2026, 12, 25)
    acct.roll(dt.date(2026, 12, 24))
    assert acct.unsettled_cash == D(1000)
    acct.roll(dt.date(2026, 12, 28))
    assert acct.unsettled_cash == 0 and acct.cash == D(101000)


def test_monday_sale_under_t_plus_2_is_usable_at_wednesday_open_not_before():
    acct = account(cash="0", holdings={"MEBL": "100"}, **NO_FEE)
    acct.apply_fill(fill(Side.SELL, 100, "100"), MON)
    check = BuyingPower(acct)
    buy = request(Side.BUY, 50, "100")
    acct.roll(CAL.next_trading_day(MON, include_self=False))  # Monday's close, rolled to Tuesday
    assert check.check(buy).code == Reject.UNSETTLED_FUNDS
    acct.roll(dt.date(2026, 11, 25))  # Tuesday's close, rolled to Wednesday
    assert check.check(buy) is None
    assert acct.buying_power == D(10000)


def test_psx_2026_settles_t_plus_1_from_2026_02_09_and_merges_the_cutover():
    acct = account(holdings={"MEBL": "20"}, profile="psx-2026")
    acct.apply_fill(fill(Side.SELL, 10, "100"), dt.date(2026, 2, 6))  # Friday, still T+2
    acct.apply_fill(fill(Side.SELL, 10, "100"), dt.date(2026, 2, 9))  # Monday, T+1
    days = {e["trade_day"]: e["settle_day"] for e in acct.snapshot()["unsettled"]}
    assert days == {"2026-02-06": "2026-02-10", "2026-02-09": "2026-02-10"}
    later = account(holdings={"MEBL": "10"}, profile="psx-2026")
    later.apply_fill(fill(Side.SELL, 10, "100"), THU)
    assert later.snapshot()["unsettled"][0]["settle_day"] == "2026-11-20"


# ---- fills ----------------------------------------------------------------------------------


def test_buy_fill_takes_cash_at_trade_time_and_shares_settle_later():
    acct = account()
    acct.apply_fill(fill(Side.BUY, 100, "187.50", fee="28.13"), THU)
    assert acct.cash == D("100000") - D("18750.00") - D("28.13")
    assert acct.unsettled_shares("MEBL") == 100 and acct.settled_shares("MEBL") == 0
    assert acct.holdings("MEBL") == 100
    assert acct.sellable("MEBL") == 0  # broker-doc: unsettled buys may not be sold
    settled = acct.roll(MON)
    assert [(e.kind, e.symbol, e.amount) for e in settled] == [("shares", "MEBL", D(100))]
    assert acct.settled_shares("MEBL") == 100 and acct.unsettled_shares("MEBL") == 0
    assert acct.sellable("MEBL") == 100


def test_psx_2026_lets_unsettled_buys_be_sold():
    acct = account(profile="psx-2026")
    acct.apply_fill(fill(Side.BUY, 100, "187.50"), THU)
    assert acct.sellable("MEBL") == 100


def test_sell_fill_takes_settled_shares_first_then_the_earliest_unsettled_buys():
    acct = account(holdings={"MEBL": "100"}, profile="psx-2026")
    acct.apply_fill(fill(Side.BUY, 50, "100"), dt.date(2026, 11, 18))  # settles 11-19
    acct.apply_fill(fill(Side.BUY, 40, "100"), THU)  # settles 11-20
    acct.apply_fill(fill(Side.SELL, 120, "100"), THU)
    assert acct.settled_shares("MEBL") == 0
    assert acct.unsettled_shares("MEBL") == 70 and acct.holdings("MEBL") == 70
    shares = [e for e in acct.snapshot()["unsettled"] if e["kind"] == "shares"]
    assert [(e["settle_day"], e["amount"]) for e in shares] == [("2026-11-19", "30"), ("2026-11-20", "40")]
    acct.roll(dt.date(2026, 11, 19))
    assert acct.settled_shares("MEBL") == 30 and acct.unsettled_shares("MEBL") == 40


def test_sell_fill_beyond_holdings_is_recorded_not_hidden():
    acct = account(holdings={"MEBL": "10"})
    acct.apply_fill(fill(Side.SELL, 15, "100"), THU)
    assert acct.holdings("MEBL") == -5 and acct.settled_shares("MEBL") == -5


# ---- reservations --------------------------------------------------------------------------


def test_live_buy_reserves_leaves_at_limit_plus_estimated_fee_and_shrinks_with_fills():
    acct = account()
    o = placed(acct, Side.BUY, 100, "187.50")
    assert acct.reserved_cash == D("18750.00") + D("18750.00") * D("0.0015")
    assert acct.buying_power == D(100000) - acct.reserved_cash
    assert acct.open_buy_qty("MEBL") == 100
    o.apply_fill(D(40), D("187.50"))
    acct.track(o)
    assert acct.reserved_cash == D("11250.00") * D("1.0015") and acct.open_buy_qty("MEBL") == 60
    acct.track(o)  # tracking twice changes nothing
    assert acct.reserved_cash == D("11250.00") * D("1.0015")
    o.transition(OrderStatus.CANCELLED)
    acct.track(o)
    assert acct.reserved_cash == 0 and acct.reserved_for(o.client_id) == (0, 0) and acct.open_buy_qty("MEBL") == 0


def test_fee_minimum_applies_to_the_reservation():
    acct = account(fee_min="50")
    placed(acct, Side.BUY, 1, "100")
    assert acct.reserved_cash == D(150)


@given(qty=QTYS, price=PRICES, fee_rate=st.sampled_from(["0", "0.0015", "0.003"]),
       fee_min=st.sampled_from(["0", "25"]))
def test_buy_cost_is_notional_plus_the_packs_estimated_fee(qty, price, fee_rate, fee_min):
    acct = account(fee_rate=fee_rate, fee_min=fee_min)
    assert acct.buy_cost("MEBL", qty, price) == qty * price + acct.pack("MEBL").estimated_fee(qty * price)


def test_market_buy_reserves_at_the_upper_circuit_band():
    acct = account(**NO_FEE)
    placed(acct, Side.BUY, 10, None)
    assert acct.reserved_cash == D("2062.50")  # 10 x 206.25 = 187.50 + 10%


def test_market_buy_band_uses_the_rupee_floor_and_the_given_reference():
    acct = account(profile="psx-2026", **NO_FEE)
    placed(acct, Side.BUY, 10, None, symbol="CHEAP")
    assert acct.reserved_cash == D("60.00")  # 5.00 + max(0.50, Rs 1) = 6.00
    live = account(reference_price=lambda symbol: D("200.00"), **NO_FEE)
    placed(live, Side.BUY, 10, None)
    assert live.reserved_cash == D("2200.00")


def test_pending_replace_reserves_the_larger_of_old_and_new():
    acct = account(**NO_FEE)
    o = placed(acct, Side.BUY, 100, "100")
    o.request_replace(D("110"), None)
    acct.track(o)
    assert acct.reserved_cash == D(11000)
    o.confirm_replace(None, None)  # refused: back to the old values
    acct.track(o)
    assert acct.reserved_cash == D(10000)
    o.request_replace(None, D(50))
    acct.track(o)
    assert acct.reserved_cash == D(10000)  # the old order is larger until the venue answers
    o.confirm_replace(None, D(50))
    acct.track(o)
    assert acct.reserved_cash == D(5000) and acct.open_buy_qty("MEBL") == 50


def test_pending_replace_of_a_sell_reserves_the_larger_quantity():
    acct = account(holdings={"MEBL": "500"})
    o = placed(acct, Side.SELL, 100, "100")
    o.request_replace(None, D(300))
    acct.track(o)
    assert acct.reserved_shares("MEBL") == 300 and acct.sellable("MEBL") == 200


def test_unknown_order_keeps_its_reservation():
    acct = account(**NO_FEE)
    o = placed(acct, Side.BUY, 100, "100")
    o.transition(OrderStatus.UNKNOWN)
    acct.track(o)
    assert acct.reserved_cash == D(10000)


def test_terminal_orders_reserve_nothing():
    acct = account()
    for status in (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED):
        o = order(Side.BUY, 100, "100")
        o.transition(OrderStatus.NEW)
        o.transition(status)
        assert acct.reservation(o) == (0, 0)


def test_rejected_order_releases_its_reservation():
    acct = account(**NO_FEE)
    o = order(Side.BUY, 100, "100")
    acct.track(o)
    assert acct.reserved_cash == D(10000)
    o.reject(9002, "no")
    acct.track(o)
    assert acct.reserved_cash == 0


def test_live_sell_reserves_shares_and_cancel_frees_them():
    acct = account(holdings={"MEBL": "300"})
    o = placed(acct, Side.SELL, 200, "190")
    assert acct.sellable("MEBL") == 100 and acct.reserved_shares("MEBL") == 200
    assert acct.reserved_cash == 0
    o.transition(OrderStatus.CANCELLED)
    acct.track(o)
    assert acct.sellable("MEBL") == 300


# ---- read side -----------------------------------------------------------------------------


def test_equity_marks_holdings_and_falls_back_to_previous_close():
    acct = account(cash="1000", holdings={"MEBL": "10", "OGDC": "100"})
    acct.apply_fill(fill(Side.SELL, 10, "200", symbol="MEBL"), THU)  # 2000 unsettled
    marks = {"OGDC": D("110.00")}
    assert acct.equity(marks.get) == D(1000) + D(2000) + D(100) * D("110.00")
    acct.apply_fill(fill(Side.BUY, 2, "10", symbol="NOSEC"), THU)
    assert acct.equity(marks.get) == D(980) + D(2000) + D(11000) + D(2) * D("10.00")


def test_sector_exposure_counts_holdings_and_open_buy_leaves_at_mark():
    acct = account(holdings={"MEBL": "100", "OGDC": "1000"})
    placed(acct, Side.BUY, 50, "180", symbol="HBL")
    placed(acct, Side.SELL, 50, "190", symbol="MEBL")  # sells do not reduce exposure until filled
    marks = {"MEBL": D("190.00")}
    assert acct.sector_exposure(BANKS, marks.get) == D(100) * D("190.00") + D(50) * D("250.00")
    assert acct.sector_exposure("Nothing", marks.get) == 0


def test_snapshot_is_plain_json_of_strings():
    acct = account(holdings={"MEBL": "100"})
    acct.apply_fill(fill(Side.SELL, 40, "200"), THU)
    acct.apply_fill(fill(Side.BUY, 10, "100", symbol="OGDC"), THU)
    placed(acct, Side.SELL, 10, "201")
    snap = json.loads(json.dumps(acct.snapshot()))

    assert all(isinstance(v, str) for v in json_leaves(snap))
    assert snap["cash"] == "99000" and snap["unsettled_cash"] == "8000"
    assert snap["holdings"]["MEBL"] == {"settled": "60", "unsettled": "0", "total": "60"}
    assert snap["holdings"]["OGDC"] == {"settled": "0", "unsettled": "10", "total": "10"}
    assert snap["reserved"]["shares"] == {"MEBL": "10"}
    assert snap["reserved"]["cash"] == "0.00"  # not the fee estimate's "0.000000"
    placed(acct, Side.BUY, 3, "33.37", symbol="OGDC")  # 100.11 plus a fee estimate with more digits
    held = json.loads(json.dumps(acct.snapshot()))["reserved"]["cash"]
    assert held == str(acct.reserved_cash.quantize(D("0.01"))) and len(held.split(".")[1]) == 2
    assert {"kind": "cash", "symbol": "MEBL", "amount": "8000", "trade_day": "2026-11-19",
            "settle_day": "2026-11-23"} in snap["unsettled"]


# ---- BuyingPower ---------------------------------------------------------------------------


def test_buy_within_buying_power_passes_and_exact_fit_passes():
    acct = account(cash="10015", **{"fee_rate": "0.0015"})
    check = BuyingPower(acct)
    assert check.check(request(Side.BUY, 100, "100")) is None  # 10,000 + 15 fee == cash
    rejection = check.check(request(Side.BUY, 100, "100.01"))
    assert rejection.code == Reject.INSUFFICIENT_BUYING_POWER
    assert "10,016.00" in rejection.reason and "10,015.00" in rejection.reason


def test_buying_power_counts_reservations_of_open_buys():
    acct = account(cash="10000", **NO_FEE)
    check = BuyingPower(acct)
    placed(acct, Side.BUY, 60, "100")
    assert check.check(request(Side.BUY, 40, "100")) is None
    rejection = check.check(request(Side.BUY, 41, "100"))
    assert rejection.code == Reject.INSUFFICIENT_BUYING_POWER
    assert "4,000.00" in rejection.reason and "6,000.00 reserved" in rejection.reason


@settings(max_examples=200, deadline=None)
@given(qty=QTYS, price=PRICES, fee_rate=st.sampled_from(["0", "0.0015", "0.003"]), fee_min=st.sampled_from(["0", "25"]),
       slack=st.sampled_from(["-0.01", "0", "0.01", "-1000", "1000"]), profile=st.sampled_from(PROFILES))
def test_the_gate_and_the_reservation_cost_a_buy_as_buy_cost_does(qty, price, fee_rate, fee_min, slack, profile):
    """BuyingPower and CashAccount.reservation spell buy_cost out for speed: they must cost a buy
    exactly as it does (allowed iff buy_cost fits, then reserved at buy_cost), so the copies
    cannot drift apart; and buy_cost is the notional plus exactly the fee the fill is charged
    (psx-2026: commission, its sales tax and the levies)."""
    cost = account(profile=profile, fee_rate=fee_rate, fee_min=fee_min).buy_cost("MEBL", qty, price)
    charged = packs(profile, fee_rate=fee_rate, fee_min=fee_min)["MEBL"].fee_schedule().fee(Side.BUY, qty * price)
    assert cost == qty * price + charged
    cash = cost + D(slack)
    if cash < 0:
        return
    acct = account(cash=str(cash), profile=profile, fee_rate=fee_rate, fee_min=fee_min)
    allowed = BuyingPower(acct).check(request(Side.BUY, qty, str(price))) is None
    assert allowed == (cost <= cash)
    placed(acct, Side.BUY, qty, str(price))
    assert acct.reserved_cash == cost


def test_sells_are_not_buying_power_checks():
    assert BuyingPower(account(cash="0")).check(request(Side.SELL, 10**6, "100")) is None


def test_unsettled_proceeds_that_would_cover_give_4001_with_amount_and_date():
    acct = account(cash="500", holdings={"MEBL": "10"}, **NO_FEE)
    acct.apply_fill(fill(Side.SELL, 10, "100"), THU)
    rejection = BuyingPower(acct).check(request(Side.BUY, 6, "100"))
    assert rejection.code == Reject.UNSETTLED_FUNDS
    assert "needs 100.00 more" in rejection.reason
    assert "1,000.00 of sale proceeds settle on 2026-11-23" in rejection.reason
    assert BuyingPower(acct).check(request(Side.BUY, 16, "100")).code == Reject.INSUFFICIENT_BUYING_POWER


def test_4001_names_the_day_enough_proceeds_have_settled():
    acct = account(cash="0", holdings={"MEBL": "30"}, **NO_FEE)
    acct.apply_fill(fill(Side.SELL, 10, "100"), dt.date(2026, 11, 18))  # settles 11-20
    acct.apply_fill(fill(Side.SELL, 20, "100"), THU)  # settles 11-23
    rejection = BuyingPower(acct).check(request(Side.BUY, 15, "100"))
    assert "3,000.00 of sale proceeds settle on 2026-11-23" in rejection.reason


def test_broker_policy_may_allow_unsettled_sale_proceeds():
    acct = account(cash="500", holdings={"MEBL": "10"}, use_unsettled_sale_proceeds=True, **NO_FEE)
    acct.apply_fill(fill(Side.SELL, 10, "100"), THU)
    check = BuyingPower(acct)
    assert check.check(request(Side.BUY, 15, "100")) is None
    assert check.check(request(Side.BUY, 16, "100")).code == Reject.INSUFFICIENT_BUYING_POWER


def test_market_buy_is_costed_at_the_upper_band():
    acct = account(cash="2062.50", **NO_FEE)
    check = BuyingPower(acct)
    assert check.check(request(Side.BUY, 10, None)) is None
    acct2 = account(cash="2062.49", **NO_FEE)
    assert BuyingPower(acct2).check(request(Side.BUY, 10, None)).code == Reject.INSUFFICIENT_BUYING_POWER


def test_market_buy_without_a_reference_price_is_refused():
    acct = account(reference_price=lambda symbol: None)
    rejection = BuyingPower(acct).check(request(Side.BUY, 1, None))
    assert rejection.code == Reject.INSUFFICIENT_BUYING_POWER and "reference price" in rejection.reason


def test_amend_is_checked_on_the_change_in_reservation():
    acct = account(cash="10000", **NO_FEE)
    check = BuyingPower(acct)
    o = placed(acct, Side.BUY, 95, "100")  # 9,500 reserved, 500 free
    assert check.check(request(Side.BUY, 95, "105", amend_of=o)) is None  # +475
    rejection = check.check(request(Side.BUY, 100, "101", amend_of=o))  # +600
    assert rejection.code == Reject.INSUFFICIENT_BUYING_POWER and "amend" in rejection.reason
    o.apply_fill(D(45), D(100))
    acct.apply_fill(fill(Side.BUY, 45, "100"), THU)
    acct.track(o)  # 5,000 reserved for 50 leaves, cash 5,500
    assert check.check(request(Side.BUY, 95, "110", amend_of=o)) is None  # 50 leaves at 110: +500
    assert check.check(request(Side.BUY, 95, "110.01", amend_of=o)).code == Reject.INSUFFICIENT_BUYING_POWER


def test_amend_that_lowers_the_reservation_is_allowed_even_when_overdrawn():
    acct = account(cash="100", **NO_FEE)
    o = order(Side.BUY, 100, "100")
    o.transition(OrderStatus.NEW)
    acct.track(o)  # admitted elsewhere; the account is now overdrawn
    assert acct.buying_power < 0
    assert BuyingPower(acct).check(request(Side.BUY, 10, "100", amend_of=o)) is None


# ---- NoShortSelling ------------------------------------------------------------------------


def test_sell_within_holdings_passes_and_beyond_is_2005():
    acct = account(holdings={"MEBL": "200"})
    check = NoShortSelling(acct)
    assert check.check(request(Side.SELL, 200, "190")) is None
    rejection = check.check(request(Side.SELL, 500, "190"))
    assert rejection.code == Reject.POSITION_NOT_HELD
    assert "sell 500 MEBL but only 200 held and not already being sold" in rejection.reason


def test_buys_are_not_short_selling_checks():
    assert NoShortSelling(account()).check(request(Side.BUY, 500, "190")) is None


def test_shares_being_sold_by_open_orders_are_not_sellable_again():
    acct = account(holdings={"MEBL": "200"})
    check = NoShortSelling(acct)
    placed(acct, Side.SELL, 150, "190")
    assert check.check(request(Side.SELL, 50, "190")) is None
    assert check.check(request(Side.SELL, 51, "190")).code == Reject.POSITION_NOT_HELD


def test_unsettled_buys_give_4002_when_the_pack_forbids_selling_them():
    acct = account(holdings={"MEBL": "200"})
    acct.apply_fill(fill(Side.BUY, 300, "190"), THU)
    check = NoShortSelling(acct)
    rejection = check.check(request(Side.SELL, 500, "190"))
    assert rejection.code == Reject.SETTLEMENT_IN_PROGRESS
    assert "only 200 settled shares" in rejection.reason and "settle on 2026-11-23" in rejection.reason
    assert check.check(request(Side.SELL, 501, "190")).code == Reject.POSITION_NOT_HELD


def test_unsettled_buys_may_be_sold_under_psx_2026():
    acct = account(holdings={"MEBL": "200"}, profile="psx-2026")
    acct.apply_fill(fill(Side.BUY, 300, "190"), THU)
    check = NoShortSelling(acct)
    assert check.check(request(Side.SELL, 500, "190")) is None
    assert check.check(request(Side.SELL, 501, "190")).code == Reject.POSITION_NOT_HELD


def test_sell_amend_is_checked_on_the_increase_of_leaves():
    acct = account(holdings={"MEBL": "200"})
    check = NoShortSelling(acct)
    o = placed(acct, Side.SELL, 150, "190")
    assert check.check(request(Side.SELL, 200, "190", amend_of=o)) is None
    assert check.check(request(Side.SELL, 100, "190", amend_of=o)) is None
    rejection = check.check(request(Side.SELL, 201, "190", amend_of=o))
    assert rejection.code == Reject.POSITION_NOT_HELD and "51 more MEBL" in rejection.reason
    o.apply_fill(D(100), D(190))
    acct.apply_fill(fill(Side.SELL, 100, "190"), THU)
    acct.track(o)  # 50 leaves reserved, 100 held
    assert check.check(request(Side.SELL, 200, "190", amend_of=o)) is None
    assert check.check(request(Side.SELL, 201, "190", amend_of=o)).code == Reject.POSITION_NOT_HELD


# ---- PositionLimit -------------------------------------------------------------------------


def position_check(limits: dict, position: str = "0", open_buys: str = "0", open_sells: str = "0", **kw):
    open_qty = {Side.BUY: D(open_buys), Side.SELL: D(open_sells)}
    return PositionLimit(
        {name: PositionLimits.model_validate(value) for name, value in limits.items()},
        lambda strategy, symbol: D(position),
        lambda strategy, symbol, side: open_qty[side],
        **kw,
    )


def test_position_limit_counts_position_open_orders_and_the_order():
    check = position_check({"alpha": {"max_position": "1000"}}, position="600", open_buys="300")
    assert check.check(request(Side.BUY, 100, "100")) is None
    rejection = check.check(request(Side.BUY, 101, "100"))
    assert rejection.code == Reject.POSITION_LIMIT_EXCEEDED
    assert "internal limit" in rejection.reason and "1,001" in rejection.reason and "not a PSX rule" in rejection.reason


def test_orders_that_reduce_the_position_are_always_allowed():
    check = position_check({"alpha": {"max_position": "100"}}, position="500", open_sells="200")
    assert check.check(request(Side.SELL, 100, "100")) is None  # 200 after: still over, but smaller
    assert check.check(request(Side.SELL, 300, "100")) is None  # 500 - 200 - 300 = 0
    assert check.check(request(Side.SELL, 400, "100")) is None  # crosses zero to -100: within the limit
    assert check.check(request(Side.SELL, 401, "100")).code == Reject.POSITION_LIMIT_EXCEEDED  # -101


def test_position_limit_on_a_short_side_uses_the_absolute_value():
    check = position_check({"alpha": {"max_position": "100"}}, position="-50")
    assert check.check(request(Side.SELL, 50, "100")) is None
    assert check.check(request(Side.SELL, 51, "100")).code == Reject.POSITION_LIMIT_EXCEEDED
    assert check.check(request(Side.BUY, 100, "100")) is None  # -50 -> +50


def test_max_notional_uses_the_order_price_and_market_orders_the_reference():
    check = position_check({"alpha": {"max_notional": "10000"}}, position="50")
    assert check.check(request(Side.BUY, 50, "100")) is None
    rejection = check.check(request(Side.BUY, 50, "100.01"))
    assert rejection.code == Reject.POSITION_LIMIT_EXCEEDED and "max_notional" in rejection.reason
    assert "internal limit" in rejection.reason
    # market: at the instrument's previous close (187.50) unless a reference callable says otherwise
    assert check.check(request(Side.BUY, 3, None)) is None  # 53 x 187.50 = 9,937.50
    assert check.check(request(Side.BUY, 4, None)).code == Reject.POSITION_LIMIT_EXCEEDED  # 54 x 187.50
    assert position_check({"alpha": {"max_notional": "10000"}}, position="50",
                          reference_price=lambda symbol: D(100)).check(request(Side.BUY, 50, None)) is None


def test_symbol_override_and_strategies_without_limits():
    check = position_check({"alpha": {"max_position": "1000", "symbols": {"MEBL": {"max_position": "10"}}}})
    assert check.check(request(Side.BUY, 11, "100")).code == Reject.POSITION_LIMIT_EXCEEDED
    assert check.check(request(Side.BUY, 11, "100", symbol="OGDC")) is None
    assert check.check(request(Side.BUY, 10**6, "100", strategy="beta")) is None


def test_position_limit_amend_counts_only_the_growth():
    o = order(Side.BUY, 100, "100")
    o.transition(OrderStatus.NEW)
    # position 800, this order's 100 leaves are among the 100 open buys: now at the limit of 900
    check = position_check({"alpha": {"max_position": "900", "max_notional": "1000000"}},
                           position="800", open_buys="100")
    assert check.check(request(Side.BUY, 100, "101", amend_of=o)) is None  # same size, dearer: 900 x 101 fits
    assert check.check(request(Side.BUY, 50, "100", amend_of=o)) is None
    assert check.check(request(Side.BUY, 101, "100", amend_of=o)).code == Reject.POSITION_LIMIT_EXCEEDED
    tight = position_check({"alpha": {"max_notional": "90000"}}, position="800", open_buys="100")
    assert tight.check(request(Side.BUY, 100, "100", amend_of=o)) is None
    assert tight.check(request(Side.BUY, 100, "100.01", amend_of=o)).code == Reject.POSITION_LIMIT_EXCEEDED


# ---- SectorLimit ---------------------------------------------------------------------------


def test_sector_limit_on_notional():
    acct = account(holdings={"MEBL": "100"}, sector_limits={BANKS: {"notional": "30000"}})
    check = SectorLimit(acct, lambda symbol: None)  # marks fall back to previous close
    # exposure 100 x 187.50 = 18,750; room 11,250
    assert check.check(request(Side.BUY, 45, "250", symbol="HBL")) is None
    rejection = check.check(request(Side.BUY, 45, "250.01", symbol="HBL"))
    assert rejection.code == Reject.SECTOR_EXPOSURE_EXCEEDED
    assert BANKS in rejection.reason and "internal limit" in rejection.reason and "30,000.00" in rejection.reason
    assert check.check(request(Side.BUY, 10**6, "100", symbol="OGDC")) is None  # no limit for Oil & Gas


def test_open_buys_count_toward_sector_exposure():
    acct = account(sector_limits={BANKS: {"notional": "30000"}})
    check = SectorLimit(acct, lambda symbol: None)
    placed(acct, Side.BUY, 100, "250", symbol="HBL")  # 25,000 at mark
    assert check.check(request(Side.BUY, 26, "187.50")) is None
    assert check.check(request(Side.BUY, 27, "187.50")).code == Reject.SECTOR_EXPOSURE_EXCEEDED


def test_sector_limit_for_a_sector_missing_from_the_instrument_master():
    acct = account(sector_limits={"*": {"notional": "1000"}, "Textiles": {"notional": "5000"}})
    check = SectorLimit(acct, lambda symbol: None)
    other = Instrument("NML", "psx", previous_close=D("100"), sector="Textiles")
    req = request(Side.BUY, 50, "100", symbol="NML")
    req.instrument = other
    assert check.check(req) is None
    req.qty = D(51)
    assert check.check(req).code == Reject.SECTOR_EXPOSURE_EXCEEDED
    req.instrument = Instrument("X", "psx", previous_close=D("100"), sector="Unlisted")
    req.qty = D(11)
    assert check.check(req).code == Reject.SECTOR_EXPOSURE_EXCEEDED  # falls to '*'


def test_star_applies_to_every_sector_without_its_own_entry():
    acct = account(sector_limits={"*": {"notional": "1000"}, BANKS: {"notional": "100000"}})
    check = SectorLimit(acct, lambda symbol: None)
    assert check.check(request(Side.BUY, 11, "100", symbol="OGDC")).code == Reject.SECTOR_EXPOSURE_EXCEEDED
    assert check.check(request(Side.BUY, 10, "100", symbol="OGDC")) is None
    assert check.check(request(Side.BUY, 500, "100")) is None


def test_sector_limit_as_a_fraction_of_equity():
    acct = account(cash="100000", sector_limits={"*": {"pct_of_equity": "0.2"}})
    check = SectorLimit(acct, {"MEBL": D("100")}.get)
    assert check.check(request(Side.BUY, 200, "100")) is None  # 20,000 of 100,000
    rejection = check.check(request(Side.BUY, 201, "100"))
    assert rejection.code == Reject.SECTOR_EXPOSURE_EXCEEDED and "20% of equity" in rejection.reason


def test_sector_limit_ignores_sells_and_instruments_without_a_sector():
    acct = account(sector_limits={"*": {"notional": "1"}})
    check = SectorLimit(acct, lambda symbol: None)
    assert check.check(request(Side.SELL, 100, "100")) is None
    assert check.check(request(Side.BUY, 100, "100", symbol="NOSEC")) is None


def test_sector_limit_amend_counts_only_the_increase():
    acct = account(sector_limits={BANKS: {"notional": "10000"}})
    check = SectorLimit(acct, lambda symbol: None)
    o = placed(acct, Side.BUY, 50, "187.50")  # 9,375 at mark
    assert check.check(request(Side.BUY, 40, "187.50", amend_of=o)) is None
    assert check.check(request(Side.BUY, 53, "187.50", amend_of=o)) is None  # 9,937.50
    assert check.check(request(Side.BUY, 54, "187.50", amend_of=o)).code == Reject.SECTOR_EXPOSURE_EXCEEDED


# ---- properties ----------------------------------------------------------------------------

TRADED = ("MEBL", "OGDC", "CHEAP")


def expected_reservations(orders: list[Order], fee_rate: Decimal, fee_min: Decimal):
    """Independent from-scratch recomputation over live orders."""
    cash = D(0)
    shares: dict[str, Decimal] = defaultdict(Decimal)
    bands = {"MEBL": D("206.25"), "OGDC": D("120.23"), "CHEAP": D("5.50")}

    def cost(qty: Decimal, price: Decimal) -> Decimal:
        return qty * price + max(qty * price * fee_rate, fee_min)

    for o in orders:
        if o.status in (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED):
            continue
        leaves = o.qty - o.cum_qty
        price = o.price if o.price is not None else bands[o.symbol]
        amounts = [(leaves, price)]
        if o.pending_qty is not None or o.pending_price is not None:
            new_qty = o.pending_qty if o.pending_qty is not None else o.qty
            amounts.append((max(new_qty - o.cum_qty, D(0)), o.pending_price or price))
        if o.side is Side.SELL:
            shares[o.symbol] += max(q for q, _ in amounts)
        else:
            cash += max(cost(q, p) for q, p in amounts)
    return cash, shares


@settings(max_examples=150, deadline=None)
@given(data=st.data(), fee_min=st.sampled_from(["0", "25"]))
def test_reserved_totals_match_a_recomputation_over_live_orders(data, fee_min):
    acct = account(fee_min=fee_min)
    orders: list[Order] = []
    for _ in range(data.draw(st.integers(min_value=1, max_value=40))):
        op = data.draw(st.sampled_from(["submit", "submit", "ack", "fill", "amend", "answer", "cancel",
                                        "cancelled", "unknown", "reject"]))
        live = [o for o in orders if not o.is_terminal]
        if op == "submit" or not live:
            side = data.draw(st.sampled_from([Side.BUY, Side.SELL]))
            price = data.draw(st.none() | PRICES)
            o = Order(f"p{len(orders)}", "alpha", "psx", data.draw(st.sampled_from(TRADED)), side,
                      data.draw(QTYS), price, OrderType.LIMIT if price is not None else OrderType.MARKET)
            orders.append(o)
        else:
            o = data.draw(st.sampled_from(live))
            if op == "ack" and o.can_transition(OrderStatus.NEW):
                o.transition(OrderStatus.NEW)
            elif op == "fill":
                o.apply_fill(D(data.draw(st.integers(min_value=1, max_value=int(o.qty - o.cum_qty)))), D(1))
            elif op == "amend" and o.can_transition(OrderStatus.PENDING_REPLACE) and o.cum_qty < o.qty:
                new_price = data.draw(st.none() | PRICES) if o.price is not None else None
                new_qty = data.draw(st.none() | st.integers(min_value=int(o.cum_qty) + 1, max_value=1500).map(D))
                o.request_replace(new_price, new_qty)
            elif op == "answer" and o.status is OrderStatus.PENDING_REPLACE:
                fits = o.pending_qty is None or o.pending_qty > o.cum_qty
                if fits and data.draw(st.booleans()):
                    o.confirm_replace(o.pending_price, o.pending_qty)
                else:
                    o.confirm_replace(None, None)
            elif op == "cancel" and o.can_transition(OrderStatus.PENDING_CANCEL):
                o.transition(OrderStatus.PENDING_CANCEL)
            elif op == "cancelled" and o.can_transition(OrderStatus.CANCELLED):
                o.transition(OrderStatus.CANCELLED)
            elif op == "unknown" and o.can_transition(OrderStatus.UNKNOWN):
                o.transition(OrderStatus.UNKNOWN)
            elif op == "reject" and o.can_transition(OrderStatus.REJECTED):
                o.reject(9002, "venue said no")
        acct.track(o)
        cash, shares = expected_reservations(orders, D("0.0015"), D(fee_min))
        assert acct.reserved_cash == cash
        for symbol in TRADED:
            assert acct.reserved_shares(symbol) == shares[symbol]
    fresh = account(fee_min=fee_min)
    for o in orders:
        fresh.track(o)
    assert fresh.reserved_cash == acct.reserved_cash
    assert all(fresh.reserved_shares(s) == acct.reserved_shares(s) for s in TRADED)
    assert all(fresh.open_buy_qty(s) == acct.open_buy_qty(s) for s in TRADED)


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    cash=st.integers(min_value=0, max_value=500_000).map(D),
    fee_min=st.sampled_from(["0", "40"]),
)
def test_buys_admitted_by_buying_power_never_overdraw_settled_cash(data, cash, fee_min):
    acct = account(cash=str(cash), holdings={"OGDC": "2000"}, fee_min=fee_min)
    pack = acct.pack("MEBL")
    check = BuyingPower(acct)
    day = THU
    open_orders: list[Order] = []
    for _ in range(data.draw(st.integers(min_value=1, max_value=30))):
        op = data.draw(st.sampled_from(["buy", "buy", "buy", "fill", "sell", "roll"]))
        if op == "buy":
            symbol = data.draw(st.sampled_from(TRADED))
            price = data.draw(st.none() | PRICES)
            qty = data.draw(QTYS)
            if data.draw(st.booleans()):  # a greedy buyer: as many as the buying power seems to allow
                at = price if price is not None else acct.market_buy_price(symbol)
                qty = max(D(1), (acct.buying_power / at).to_integral_value(rounding="ROUND_FLOOR") + data.draw(
                    st.integers(min_value=-1, max_value=1)))
            if check.check(request(Side.BUY, qty, None if price is None else str(price), symbol=symbol)) is None:
                o = Order(f"b{next(_ids)}", "alpha", "psx", symbol, Side.BUY, qty, price,
                          OrderType.LIMIT if price is not None else OrderType.MARKET)
                acct.track(o)
                open_orders.append(o)
        elif op == "fill" and open_orders:
            o = open_orders.pop(data.draw(st.integers(min_value=0, max_value=len(open_orders) - 1)))
            cap = o.price if o.price is not None else acct.market_buy_price(o.symbol)
            price = data.draw(st.integers(min_value=1, max_value=int(cap * 100)).map(lambda c: D(c) / 100))
            leaves = o.qty - o.cum_qty
            o.apply_fill(leaves, price)
            acct.apply_fill(fill(Side.BUY, leaves, str(price), symbol=o.symbol,
                                 fee=str(pack.estimated_fee(leaves * price))), day)
            acct.track(o)
        elif op == "sell" and acct.sellable("OGDC") >= 100:
            acct.apply_fill(fill(Side.SELL, 100, "100", symbol="OGDC"), day)
        elif op == "roll":
            day = CAL.next_trading_day(day, include_self=False)
            acct.roll(day)
        assert acct.cash >= 0
        assert acct.buying_power >= 0
    for o in open_orders:  # everything admitted ends up fully filled at its worst price
        price = o.price if o.price is not None else acct.market_buy_price(o.symbol)
        leaves = o.qty - o.cum_qty
        o.apply_fill(leaves, price)
        acct.apply_fill(fill(Side.BUY, leaves, str(price), symbol=o.symbol,
                             fee=str(pack.estimated_fee(leaves * price))), day)
        acct.track(o)
        assert acct.cash >= 0
    assert acct.reserved_cash == 0


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    profile=st.sampled_from(["broker-doc", "psx-2026"]),
    start=st.integers(min_value=0, max_value=500),
)
def test_sells_admitted_by_no_short_selling_never_make_holdings_negative(data, profile, start):
    acct = account(holdings={"MEBL": str(start)}, profile=profile)
    check = NoShortSelling(acct)
    day = THU
    open_sells: list[Order] = []
    for _ in range(data.draw(st.integers(min_value=1, max_value=40))):
        op = data.draw(st.sampled_from(["sell", "sell", "buy", "fill", "cancel", "amend", "roll"]))
        if op == "sell":
            qty = data.draw(QTYS)
            if check.check(request(Side.SELL, qty, "100")) is None:
                o = placed(acct, Side.SELL, qty, "100")
                open_sells.append(o)
        elif op == "buy":
            acct.apply_fill(fill(Side.BUY, data.draw(QTYS), "100"), day)
        elif op in ("fill", "cancel", "amend") and open_sells:
            o = data.draw(st.sampled_from(open_sells))
            if op == "fill":
                qty = D(data.draw(st.integers(min_value=1, max_value=int(o.qty - o.cum_qty))))
                o.apply_fill(qty, D(100))
                acct.apply_fill(fill(Side.SELL, qty, "100"), day)
            elif op == "cancel":
                o.transition(OrderStatus.CANCELLED)
            else:
                new_qty = o.cum_qty + data.draw(QTYS)
                if check.check(request(Side.SELL, new_qty, "100", amend_of=o)) is None:
                    o.request_replace(None, new_qty)
                    acct.track(o)
                    o.confirm_replace(None, new_qty)
            acct.track(o)
            if o.is_terminal:
                open_sells.remove(o)
        elif op == "roll":
            day = CAL.next_trading_day(day, include_self=False)
            acct.roll(day)
        assert acct.settled_shares("MEBL") >= 0
        assert acct.unsettled_shares("MEBL") >= 0
        assert acct.holdings("MEBL") >= 0
    for o in open_sells:  # every admitted sell fills in full
        leaves = o.qty - o.cum_qty
        o.apply_fill(leaves, D(100))
        acct.apply_fill(fill(Side.SELL, leaves, "100"), day)
        acct.track(o)
        assert acct.holdings("MEBL") >= 0 and acct.settled_shares("MEBL") >= 0
