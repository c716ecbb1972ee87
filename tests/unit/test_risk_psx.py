"""PSX market-rule checks (engine/risk/psx.py) and the one circuit band (engine/risk/bands.py):
one test per rule and branch, then property tests for the band arithmetic, the breaker and the
session gate, against real rule packs from the shipped profiles."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import adapters.sim.matching as matching
import engine.risk.facts as facts_module
from engine.model import Instrument, Order, OrderType, Phase, SessionState, Side, TimeInForce
from engine.rejects import Reject
from engine.risk.bands import band_around, price_band
from engine.risk.facts import InstrumentFacts
from engine.risk.gate import Gate, OrderRequest, Rejection
from engine.risk.psx import CircuitBreaker, FatFinger, SessionGate, cancel_refusal, psx_checks
from engine.risk.rulepack import RulePack, resolve_packs

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET

MEBL = Instrument(
    symbol="MEBL",
    venue="paper",
    tick_size=D("0.01"),
    lot_size=D(1),
    previous_close=D("187.50"),
    sector="Commercial Banks",
    price_precision=2,
)
CHEAP = Instrument(symbol="CHEAP", venue="paper", tick_size=D("0.01"), previous_close=D("5.00"))
SYMBOLS = ("MEBL", "CHEAP")

OPEN = SessionState(Phase.OPEN, accepts_new=True, accepts_modify_cancel=True, matches=True)
CLOSED = SessionState(Phase.CLOSED)
PRE_OPEN = SessionState(Phase.PRE_OPEN, accepts_new=True, accepts_modify_cancel=True)
OPENING_MATCH = SessionState(Phase.OPENING_MATCH, accepts_new=False, accepts_modify_cancel=False, matches=True)
POST_CLOSE = SessionState(Phase.POST_CLOSE, accepts_new=True, accepts_modify_cancel=True, matches=True)


def packs(profile: str = "broker-doc", **rules: object) -> dict[str, RulePack]:
    return resolve_packs(profile, {k: str(v) if isinstance(v, Decimal) else v for k, v in rules.items()}, None, SYMBOLS)


@dataclass
class View:
    """A stand-in for the runtime's MarketView: plain dicts keyed by symbol (one venue), turned into
    one :class:`InstrumentFacts` per symbol the way the runtime keeps them (the band rebuilt only
    when the reference changes)."""

    session: SessionState = field(
        default_factory=lambda: SessionState(Phase.OPEN, accepts_new=True, accepts_modify_cancel=True, matches=True)
    )
    reference: dict[str, Decimal] = field(default_factory=lambda: {"MEBL": D("187.50"), "CHEAP": D("5.00")})
    closing: dict[str, Decimal] = field(default_factory=dict)
    last: dict[str, Decimal] = field(default_factory=dict)
    mid: dict[str, Decimal] = field(default_factory=dict)
    halted: dict[str, str] = field(default_factory=dict)
    rule_packs: dict[str, RulePack] = field(default_factory=lambda: packs())
    kept: dict[str, InstrumentFacts] = field(default_factory=dict)

    def facts(self, venue: str, symbol: str) -> InstrumentFacts:
        facts = self.kept.get(symbol)
        if facts is None:
            book = SimpleNamespace(mid=None, known_mid=None)
            facts = InstrumentFacts(book, D("0.01"), self.rule_packs.get(symbol), None)
            self.kept[symbol] = facts
        reference = self.reference.get(symbol)
        if reference != facts.reference:
            facts.set_reference(reference)
        facts.closing = self.closing.get(symbol)
        facts.last_price = self.last.get(symbol)
        facts.book.mid = self.mid.get(symbol)  # type: ignore[misc]
        facts.venue_halt = self.halted.get(symbol)
        return facts


def live_order(price: str = "187.50") -> Order:
    return Order("c0", "s1", "paper", "MEBL", BUY, D(100), D(price))


def req(
    price: str | Decimal | None = "187.50",
    qty: int | str | Decimal = 100,
    *,
    instrument: Instrument = MEBL,
    order_type: OrderType | None = None,
    amend_of: Order | None = None,
    side: Side = BUY,
) -> OrderRequest:
    if order_type is None:
        order_type = LIMIT if price is not None else MARKET
    return OrderRequest(
        strategy="s1",
        venue=instrument.venue,
        symbol=instrument.symbol,
        instrument=instrument,
        side=side,
        qty=D(qty),
        price=None if price is None else D(price),
        order_type=order_type,
        tif=TimeInForce.DAY,
        post_only=False,
        client_id="c1",
        amend_of=amend_of,
    )


def code_of(rejection: Rejection | None) -> int | None:
    return None if rejection is None else rejection.code


# ---- the band ----------------------------------------------------------------------------------


def test_band_of_a_normal_stock_is_ten_percent_either_side():
    assert price_band(D("187.50"), D("0.01"), D("0.10")) == (D("168.75"), D("206.25"))


def test_psx_2026_band_of_a_cheap_stock_is_the_one_rupee_floor():
    pack = packs("psx-2026")["CHEAP"]
    low, high = price_band(D("5.00"), D("0.01"), pack.band_pct, pack.band_abs_floor)
    assert (low, high) == (D("4.00"), D("6.00"))
    assert (str(low), str(high)) == ("4.00", "6.00")  # quantized to the tick, not "4.0000"


def test_broker_doc_band_of_a_cheap_stock_has_no_floor():
    pack = packs("broker-doc")["CHEAP"]
    assert price_band(D("5.00"), D("0.01"), pack.band_pct, pack.band_abs_floor) == (D("4.50"), D("5.50"))


def test_band_rounds_inward_to_the_tick():
    # 187.55 ± 18.755 = [168.795, 206.305]: low rounds up to 168.80, high down to 206.30
    assert price_band(D("187.55"), D("0.05"), D("0.10")) == (D("168.80"), D("206.30"))


def test_band_low_is_never_below_one_tick():
    assert price_band(D("0.50"), D("0.01"), D("0.10"), D("1.00")) == (D("0.01"), D("1.50"))


@pytest.mark.parametrize(
    ("reference", "tick", "pct", "floor"),
    [("0", "0.01", "0.1", "0"), ("10", "0", "0.1", "0"), ("10", "0.01", "-0.1", "0"), ("10", "0.01", "0.1", "-1")],
)
def test_band_refuses_nonsense_inputs(reference: str, tick: str, pct: str, floor: str):
    with pytest.raises(ValueError):
        price_band(D(reference), D(tick), D(pct), D(floor))


def test_band_around_keeps_its_old_results():
    assert band_around(D("75.12"), D("0.01")) == (D("67.61"), D("82.63"))
    assert band_around(D("100.00"), D("0.01"), D("0.05")) == (D("95.00"), D("105.00"))


def test_the_paper_venue_and_the_gate_share_one_band_implementation():
    assert matching.band_around is band_around
    assert "band_around" in matching.__all__


TICKS = st.sampled_from([D("0.001"), D("0.01"), D("0.05"), D("0.10"), D("0.25"), D("1")])
PCTS = st.decimals(min_value=D(0), max_value=D("0.5"), places=4)
FLOORS = st.decimals(min_value=D(0), max_value=D(5), places=2)


@given(tick=TICKS, ticks=st.integers(1, 10**7), pct=PCTS, floor=FLOORS)
def test_band_property_on_grid_inward_and_tight(tick: Decimal, ticks: int, pct: Decimal, floor: Decimal):
    reference = ticks * tick
    low, high = price_band(reference, tick, pct, floor)
    half = max(reference * pct, floor)
    for bound in (low, high):
        assert bound % tick == 0
        assert bound.as_tuple().exponent == tick.as_tuple().exponent
    assert low <= reference <= high
    assert high - reference <= half
    assert reference - low <= half
    assert low >= tick
    # tight: one more tick outward would leave the band (or, below, go under one tick)
    assert high + tick > reference + half
    assert low - tick < reference - half or low == tick


@given(
    tick=TICKS,
    reference=st.decimals(min_value=D("0.5"), max_value=D(100000), places=4),
    pct=PCTS,
    extra=st.decimals(min_value=D(0), max_value=D(3), places=3),
)
def test_band_property_off_grid_reference_still_inside_when_wider_than_a_tick(
    tick: Decimal, reference: Decimal, pct: Decimal, extra: Decimal
):
    assume(reference >= tick)  # below one tick the low bound is clamped to one tick, above the reference
    floor = tick + extra  # at least a tick each side: a grid price always fits on both sides
    low, high = price_band(reference, tick, pct, floor)
    half = max(reference * pct, floor)
    assert low % tick == 0 and high % tick == 0
    assert low <= reference <= high
    assert high - reference <= half and reference - low <= half
    assert high + tick > reference + half


# ---- SessionGate -------------------------------------------------------------------------------


def gate_for(session: SessionState, profile: str = "broker-doc", **kwargs: object) -> tuple[SessionGate, View]:
    view = View(session=session, **kwargs)  # type: ignore[arg-type]
    return SessionGate(view, packs(profile)), view


def test_session_open_allows_new_orders_and_amends():
    gate, _ = gate_for(OPEN)
    assert gate.check(req()) is None
    assert gate.check(req(amend_of=live_order())) is None
    assert gate.check(req(None)) is None  # market orders too


def test_session_closed_refuses_new_orders_naming_the_phase():
    gate, _ = gate_for(CLOSED)
    rejection = gate.check(req())
    assert rejection == Rejection(Reject.MARKET_CLOSED, "market closed: phase 'closed' accepts no new orders")


def test_session_opening_match_refuses_new_orders_and_amends():
    gate, _ = gate_for(OPENING_MATCH)
    new = gate.check(req())
    assert code_of(new) == Reject.MARKET_CLOSED and "'opening_match' accepts no new orders" in new.reason
    amend = gate.check(req(amend_of=live_order()))
    assert code_of(amend) == Reject.MARKET_CLOSED and "no amend during 'opening_match'" in amend.reason


def test_amends_follow_accepts_modify_cancel_not_accepts_new():
    gate, view = gate_for(SessionState(Phase.BREAK, accepts_new=False, accepts_modify_cancel=True))
    assert gate.check(req(amend_of=live_order())) is None
    assert code_of(gate.check(req())) == Reject.MARKET_CLOSED
    view.session = SessionState(Phase.BREAK, accepts_new=True, accepts_modify_cancel=False)
    assert gate.check(req()) is None
    assert code_of(gate.check(req(amend_of=live_order()))) == Reject.MARKET_CLOSED


def test_pre_open_refuses_market_orders_but_takes_limits():
    gate, _ = gate_for(PRE_OPEN)
    rejection = gate.check(req(None))
    assert code_of(rejection) == Reject.ORDER_TYPE_NOT_SUPPORTED
    assert "pre-open" in rejection.reason and "MEBL" in rejection.reason
    assert gate.check(req("187.50")) is None


def test_pre_open_market_orders_when_the_pack_allows_them():
    view = View(session=PRE_OPEN)
    gate = SessionGate(view, packs(pre_open_market_orders=True))
    assert gate.check(req(None)) is None


def test_post_close_refuses_market_orders():
    gate, _ = gate_for(POST_CLOSE, closing={"MEBL": D("188.20")})
    rejection = gate.check(req(None))
    assert code_of(rejection) == Reject.ORDER_TYPE_NOT_SUPPORTED and "post-close" in rejection.reason


def test_post_close_takes_only_the_closing_price():
    gate, _ = gate_for(POST_CLOSE, closing={"MEBL": D("188.20")})
    assert gate.check(req("188.20")) is None
    assert gate.check(req("188.2")) is None  # the same price written differently
    rejection = gate.check(req("188.25"))
    assert code_of(rejection) == Reject.PRICE_OUTSIDE_CIRCUIT_BREAKER
    assert "188.25" in rejection.reason and "closing price 188.20" in rejection.reason


def test_post_close_amend_must_also_be_at_the_closing_price():
    gate, _ = gate_for(POST_CLOSE, closing={"MEBL": D("188.20")})
    assert code_of(gate.check(req("187.00", amend_of=live_order()))) == Reject.PRICE_OUTSIDE_CIRCUIT_BREAKER
    assert gate.check(req("188.20", amend_of=live_order())) is None


def test_post_close_before_the_closing_price_is_published():
    gate, _ = gate_for(POST_CLOSE)
    rejection = gate.check(req("188.20"))
    assert code_of(rejection) == Reject.MARKET_CLOSED and "not yet published" in rejection.reason


def test_post_close_any_price_when_the_pack_does_not_restrict_it():
    view = View(session=POST_CLOSE)
    gate = SessionGate(view, packs(post_close_closing_price_only=False))
    assert gate.check(req("190.00")) is None
    assert gate.check(req(None)) is None


def test_session_gate_without_a_pack_still_enforces_the_phase_but_no_pack_rules():
    view = View(session=PRE_OPEN)
    gate = SessionGate(view, {})
    assert gate.check(req(None)) is None  # pack-driven rule: no pack, allow
    view.session = CLOSED
    assert code_of(gate.check(req())) == Reject.MARKET_CLOSED  # the session is not a pack rule


def test_cancel_refusal():
    refusal = cancel_refusal(OPENING_MATCH)
    assert code_of(refusal) == Reject.MARKET_CLOSED and "'opening_match'" in refusal.reason
    assert cancel_refusal(OPEN) is None
    assert cancel_refusal(PRE_OPEN) is None


@settings(max_examples=300)
@given(
    phase=st.sampled_from(list(Phase)),
    accepts_new=st.booleans(),
    accepts_modify_cancel=st.booleans(),
    price=st.one_of(st.none(), st.decimals(min_value=D("0.01"), max_value=D(1000), places=2)),
    closing=st.one_of(st.none(), st.decimals(min_value=D("0.01"), max_value=D(1000), places=2)),
    profile=st.sampled_from(["broker-doc", "psx-2026"]),
    amend=st.booleans(),
)
def test_session_gate_property_never_a_new_order_in_a_phase_that_takes_none(
    phase: Phase,
    accepts_new: bool,
    accepts_modify_cancel: bool,
    price: Decimal | None,
    closing: Decimal | None,
    profile: str,
    amend: bool,
):
    session = SessionState(phase, accepts_new=accepts_new, accepts_modify_cancel=accepts_modify_cancel)
    view = View(session=session, closing={} if closing is None else {"MEBL": closing})
    gate = SessionGate(view, PROFILE_PACKS[profile])
    rejection = gate.check(req(price, amend_of=live_order() if amend else None))
    if not amend and not accepts_new:
        assert code_of(rejection) == Reject.MARKET_CLOSED
    if amend and not accepts_modify_cancel:
        assert code_of(rejection) == Reject.MARKET_CLOSED
    if (accepts_modify_cancel if amend else accepts_new) and phase not in (Phase.PRE_OPEN, Phase.POST_CLOSE):
        assert rejection is None  # outside the restricted phases, the session flag is the whole rule


PROFILE_PACKS = {"broker-doc": packs("broker-doc"), "psx-2026": packs("psx-2026")}


# ---- CircuitBreaker ----------------------------------------------------------------------------


def breaker(profile: str = "broker-doc", **kwargs: object) -> tuple[CircuitBreaker, View]:
    view = View(rule_packs=packs(profile), **kwargs)  # type: ignore[arg-type]
    return CircuitBreaker(view), view


def test_breaker_halted_instrument_refuses_everything_with_the_reason():
    check, _ = breaker(halted={"MEBL": "KSE-30 index halt"})
    for request in (req("187.50"), req(None), req("187.50", amend_of=live_order())):
        rejection = check.check(request)
        assert code_of(rejection) == Reject.CIRCUIT_BREAKER_TRIGGERED
        assert "KSE-30 index halt" in rejection.reason


def test_breaker_refuses_a_price_outside_the_band_naming_band_and_reference():
    check, _ = breaker()
    rejection = check.check(req("210.00"))
    assert code_of(rejection) == Reject.PRICE_OUTSIDE_CIRCUIT_BREAKER
    assert "price 210.00 is outside the circuit band [168.75, 206.25] around the previous close 187.50" in (
        rejection.reason
    )


@pytest.mark.parametrize(
    ("price", "allowed"), [("168.74", False), ("168.75", True), ("206.25", True), ("206.26", False)]
)
def test_breaker_band_edges_are_inclusive(price: str, allowed: bool):
    check, _ = breaker()
    assert (check.check(req(price)) is None) is allowed


def test_breaker_applies_the_band_to_amends():
    check, _ = breaker()
    assert code_of(check.check(req("150.00", amend_of=live_order()))) == Reject.PRICE_OUTSIDE_CIRCUIT_BREAKER


def test_breaker_psx_2026_cheap_stock_uses_the_rupee_floor():
    check, _ = breaker("psx-2026")
    assert check.check(req("4.00", instrument=CHEAP)) is None
    assert check.check(req("6.00", instrument=CHEAP)) is None
    rejection = check.check(req("3.99", instrument=CHEAP))
    assert code_of(rejection) == Reject.PRICE_OUTSIDE_CIRCUIT_BREAKER
    assert "[4.00, 6.00]" in rejection.reason and "Rs 1.00" in rejection.reason


def test_breaker_broker_doc_cheap_stock_has_no_floor():
    check, _ = breaker("broker-doc")
    assert check.check(req("4.50", instrument=CHEAP)) is None
    assert code_of(check.check(req("4.49", instrument=CHEAP))) == Reject.PRICE_OUTSIDE_CIRCUIT_BREAKER


def test_breaker_without_a_reference_price_allows_any_price():
    check, _ = breaker(reference={})
    assert check.check(req("999.00")) is None


def test_breaker_does_not_band_market_orders():
    check, _ = breaker()
    assert check.check(req(None)) is None


def test_breaker_without_a_pack_allows_but_still_honours_halts():
    view = View(rule_packs={})
    check = CircuitBreaker(view)
    assert check.check(req("999.00")) is None
    view.halted["MEBL"] = "suspended"
    assert code_of(check.check(req("187.50"))) == Reject.CIRCUIT_BREAKER_TRIGGERED


def test_breaker_caches_the_band_and_rebuilds_it_for_a_new_reference(monkeypatch: pytest.MonkeyPatch):
    calls: list[Decimal] = []

    def counting(reference: Decimal, *args: Decimal) -> tuple[Decimal, Decimal]:
        calls.append(reference)
        return price_band(reference, *args)

    monkeypatch.setattr(facts_module, "price_band", counting)
    check, view = breaker()
    for _ in range(5):
        assert check.check(req("187.50")) is None
    assert code_of(check.check(req("210.00"))) == Reject.PRICE_OUTSIDE_CIRCUIT_BREAKER
    assert calls == [D("187.50")]  # one build for six orders
    view.reference["MEBL"] = D("200.00")  # a new day's reference: band [180.00, 220.00]
    assert check.check(req("210.00")) is None
    assert code_of(check.check(req("175.00"))) == Reject.PRICE_OUTSIDE_CIRCUIT_BREAKER
    assert calls == [D("187.50"), D("200.00")]


@settings(max_examples=300)
@given(
    ref_ticks=st.integers(1, 2_000_000),
    pct=st.decimals(min_value=D("0.01"), max_value=D("0.5"), places=3),
    floor=st.decimals(min_value=D(0), max_value=D(3), places=2),
    offset_ticks=st.integers(-3000, 3000),
    frac=st.sampled_from([D(-1), D("-0.5"), D(0), D("0.5"), D(1)]),
)
def test_breaker_property_allows_exactly_the_prices_inside_the_band(
    ref_ticks: int, pct: Decimal, floor: Decimal, offset_ticks: int, frac: Decimal
):
    tick = D("0.01")
    reference = ref_ticks * tick
    half = max(reference * pct, floor)
    # prices near the band edges (and some in the middle), always on the grid and positive
    centre = reference + (frac * half / tick).to_integral_value() * tick
    price = centre + offset_ticks * tick
    if price < tick:
        price = tick
    pack = resolve_packs("broker-doc", {"band_pct": pct, "band_abs_floor": floor}, None, ["MEBL"])
    view = View(reference={"MEBL": reference}, rule_packs=pack)
    check = CircuitBreaker(view)
    inside = reference - half <= price <= reference + half  # the exact band, no rounding involved
    rejection = check.check(req(price.quantize(tick)))
    assert (rejection is None) is inside
    if not inside:
        assert rejection.code == Reject.PRICE_OUTSIDE_CIRCUIT_BREAKER


# ---- FatFinger ---------------------------------------------------------------------------------


def fat(
    profile: str = "broker-doc", rules: dict[str, object] | None = None, **kwargs: object
) -> tuple[FatFinger, View]:
    view = View(**kwargs)  # type: ignore[arg-type]
    return FatFinger(view, packs(profile, **(rules or {}))), view


def test_fat_finger_quantity_above_the_maximum():
    check, _ = fat(rules={"max_order_qty": D(1000)})
    assert check.check(req("187.50", 1000)) is None
    rejection = check.check(req("187.50", 1001))
    assert code_of(rejection) == Reject.ORDER_TOO_LARGE
    assert "1001" in rejection.reason and "1000" in rejection.reason


def test_fat_finger_no_quantity_limit_by_default():
    check, _ = fat()
    assert check.check(req("1.00", 4_000_000)) is None


def test_fat_finger_limit_notional_above_the_maximum():
    check, _ = fat()  # broker-doc: 5,000,000
    assert check.check(req("250.00", 20000)) is None  # exactly 5,000,000.00
    rejection = check.check(req("250.01", 20000))
    assert code_of(rejection) == Reject.ORDER_TOO_LARGE
    assert "5000200.00" in rejection.reason and "5000000" in rejection.reason


def test_fat_finger_market_notional_priced_at_last_trade_then_mid_then_reference():
    check, view = fat(last={"MEBL": D("250.01")}, mid={"MEBL": D("100.00")})
    rejection = check.check(req(None, 20000))
    assert code_of(rejection) == Reject.ORDER_TOO_LARGE and "last trade" in rejection.reason
    view.last.clear()  # mid 100.00 x 20000 = 2,000,000
    assert check.check(req(None, 20000)) is None
    rejection = check.check(req(None, 50001))
    assert code_of(rejection) == Reject.ORDER_TOO_LARGE and "mid" in rejection.reason
    view.mid.clear()  # reference 187.50 x 30000 = 5,625,000
    rejection = check.check(req(None, 30000))
    assert code_of(rejection) == Reject.ORDER_TOO_LARGE and "reference" in rejection.reason
    view.reference.clear()  # nothing to price it at: the notional check is skipped
    assert check.check(req(None, 30000)) is None


@pytest.mark.parametrize(
    ("price", "allowed"), [("196.87", True), ("196.88", False), ("178.13", True), ("178.12", False)]
)
def test_fat_finger_price_deviation_from_the_last_trade(price: str, allowed: bool):
    # 5% of 187.50 = 9.375: [178.125, 196.875]
    check, _ = fat(last={"MEBL": D("187.50")}, mid={"MEBL": D("150.00")})
    rejection = check.check(req(price))
    assert (rejection is None) is allowed
    if not allowed:
        assert rejection.code == Reject.PRICE_TOO_FAR
        assert price in rejection.reason and "last trade price 187.50" in rejection.reason
        assert "5%" in rejection.reason


def test_fat_finger_deviation_message_states_the_distance():
    check, _ = fat(last={"MEBL": D("187.50")})
    rejection = check.check(req("200.00"))
    assert rejection == Rejection(
        Reject.PRICE_TOO_FAR,
        "price 200.00 is 6.67% from the last trade price 187.50 of MEBL; the fat-finger limit is 5%",
    )


def test_fat_finger_deviation_falls_back_to_the_mid():
    check, _ = fat(mid={"MEBL": D("100.00")})
    assert check.check(req("105.00")) is None
    rejection = check.check(req("105.01"))
    assert code_of(rejection) == Reject.PRICE_TOO_FAR and "mid price 100.00" in rejection.reason


def test_fat_finger_deviation_without_a_reference_allows():
    check, _ = fat()
    assert check.check(req("250.00")) is None


def test_fat_finger_deviation_skips_market_orders_and_disabled_packs():
    check, _ = fat(last={"MEBL": D("187.50")})
    assert check.check(req(None, 10)) is None
    check, _ = fat(rules={"max_price_deviation_pct": None}, last={"MEBL": D("187.50")})
    assert check.check(req("205.00")) is None


def test_fat_finger_applies_to_amends():
    check, _ = fat(last={"MEBL": D("187.50")})
    assert code_of(check.check(req("205.00", amend_of=live_order()))) == Reject.PRICE_TOO_FAR


def test_fat_finger_without_a_pack_allows():
    check = FatFinger(View(last={"MEBL": D("187.50")}), {})
    assert check.check(req("300.00", 10**9)) is None


# ---- the chain ---------------------------------------------------------------------------------


def test_psx_checks_order_and_first_rejection_wins():
    view = View(session=CLOSED, halted={"MEBL": "halted"}, last={"MEBL": D("187.50")})
    checks = psx_checks(view, packs())
    assert [type(c) for c in checks] == [SessionGate, CircuitBreaker, FatFinger]
    gate = Gate(checks)
    assert code_of(gate.check(req("250.00"))) == Reject.MARKET_CLOSED
    view.session = OPEN
    assert code_of(gate.check(req("250.00"))) == Reject.CIRCUIT_BREAKER_TRIGGERED
    view.halted.clear()
    assert code_of(gate.check(req("250.00"))) == Reject.PRICE_OUTSIDE_CIRCUIT_BREAKER
    assert code_of(gate.check(req("200.00"))) == Reject.PRICE_TOO_FAR
    assert gate.check(req("190.00")) is None
