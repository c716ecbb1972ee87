"""Every reject code the pre-trade gate produces, one test each (a parametrized table where the
case is just a config and one order), through the public order context of a REAL engine: the real
config loader reads a YAML file written here, the real strategy loader loads the strategy, and the
real paper venue runs on the simulated clock.

Each refused order must come back ``rejected`` with exactly its code and a sentence naming the
numbers that decided it, must never reach the venue (a recording spy on the adapter sees nothing,
the paper matching engine has no such order and the venue's own query does not know it), must be
told to the strategy through ``on_order_update``, and must be counted in ``rejects_by_code`` of
the runtime and of the run report.

The helpers (config writer, venue spy, counterparty) are in tests/support/gate.py, shared with
test_gate_flows.py and test_gate_property.py.
"""

from __future__ import annotations

from decimal import Decimal

import anyio
import pytest
from support import connect, enter, open_session, settle
from support.gate import RECORDER, VenueSpy, build, counterparty, ctx_of, module_of

from engine.app import Engine
from engine.model import Order, Phase
from engine.risk.killswitch import TradingState

D = Decimal
NS = 1_000_000_000

# ---- shared helpers ------------------------------------------------------------------------------


def assert_refused(engine: Engine, spy: VenueSpy, order: Order, code: int, fragments: tuple[str, ...],
                   *, count: int = 1, name: str = "s") -> None:
    """Rejected locally with exactly ``code`` and a sentence with every fragment; never sent;
    unknown to the venue; told to the strategy; counted in the runtime and in the report."""
    assert order.status == "rejected"
    assert order.reject_code == code, order.reject_reason
    for fragment in fragments:
        assert fragment in order.reject_reason, (fragment, order.reject_reason)
    assert order.client_id not in spy.ids("submit")
    settle(engine, 0.01)
    adapter = engine.adapters["paper"]
    assert anyio.run(adapter.query_order, order.client_id) is None
    for symbol in adapter.instruments:
        assert all(r.client_id != order.client_id for r in adapter.matching_engine(symbol).resting_orders())
    assert order not in ctx_of(engine, name).open_orders()
    engine.runtime.drain()  # what runs after a hook returns: called from the test, no hook did it
    updates = module_of(engine, name).updates
    assert (order.client_id, "rejected", code) in updates
    assert engine.runtime.rejects_by_code[code] == count
    assert engine.report()["rejects_by_code"][str(code)] == count


@pytest.fixture
def engine(tmp_path):
    engine = build(tmp_path)
    open_session(engine)
    return engine


# ---- the table: one config, one order ------------------------------------------------------------

TABLE = [
    # (id, code, config, phase, args, kwargs, fragments)
    ("2001-unknown-symbol", 2001, {}, Phase.OPEN, ("MEBX", "buy", 100, "187.00"), {},
     ("'MEBX' is not one of strategy 's'", "venue 'paper'")),
    ("2001-not-the-strategys-instrument", 2001, {"symbols": ("MEBL",)}, Phase.OPEN, ("OGDC", "buy", 10, "109.30"),
     {}, ("'OGDC' is not one of strategy 's'",)),
    ("2002-off-lot", 2002, {}, Phase.OPEN, ("OGDC", "buy", 15, "109.00"), {},
     ("quantity 15 is not a positive multiple of the lot size 10 for OGDC",)),
    ("2002-zero", 2002, {}, Phase.OPEN, ("MEBL", "buy", 0, "187.00"), {}, ("quantity 0",)),
    ("2003-above-band", 2003, {}, Phase.OPEN, ("MEBL", "buy", 10, "206.26"), {},
     ("price 206.26 is outside the circuit band [168.75, 206.25] around the previous close 187.50 for MEBL",
      "±10%")),
    ("2003-below-band", 2003, {}, Phase.OPEN, ("MEBL", "buy", 10, "168.74"), {},
     ("price 168.74", "[168.75, 206.25]")),
    ("2004-cash", 2004, {"venue": {"account": {"cash": "10000"}}}, Phase.OPEN, ("MEBL", "buy", 100, "187.50"), {},
     ("buy 100 MEBL needs 18,778.12 (incl. estimated fee) but buying power is 10,000.00",)),
    ("2005-nothing-held", 2005, {}, Phase.OPEN, ("MEBL", "sell", 10, "187.50"), {},
     ("sell 10 MEBL but only 0 held",)),
    ("2005-more-than-held", 2005, {"venue": {"account": {"holdings": {"MEBL": "5"}}}}, Phase.OPEN,
     ("MEBL", "sell", 6, "187.50"), {}, ("sell 6 MEBL but only 5 held",)),
    ("2007-market-in-pre-open", 2007, {}, Phase.PRE_OPEN, ("MEBL", "buy", 10, None), {"type": "market"},
     ("market orders are not accepted in pre-open for MEBL",)),
    ("2008-max-position", 2008, {"per_strategy": {"s": {"limits": {"max_position": "100"}}}}, Phase.OPEN,
     ("MEBL", "buy", 101, "187.50"), {}, ("could take strategy 's' to 101 shares", "max_position 100")),
    ("2009-sector", 2009, {"venue": {"account": {"sector_limits": {"Commercial Banks": {"notional": "10000"}}}}},
     Phase.OPEN, ("MEBL", "buy", 100, "187.50"), {},
     ("sector 'Commercial Banks' exposure to 18,750.00", "limit 10,000.00")),
    ("7001-off-tick", 7001, {}, Phase.OPEN, ("MEBL", "buy", 100, "187.005"), {},
     ("price 187.005 is not on the 0.01 tick grid for MEBL",)),
    # past Decimal's 28 digits the remainder raises; refused with the code, never a strategy crash
    ("7001-absurd-price", 7001, {}, Phase.OPEN, ("MEBL", "buy", 100, "1e30"), {},
     ("price 1E+30 is not on the 0.01 tick grid for MEBL",)),
    ("2002-absurd-quantity", 2002, {}, Phase.OPEN, ("OGDC", "buy", "1e40", "109.00"), {},
     ("quantity 1E+40 is not a positive multiple of the lot size 10 for OGDC",)),
    ("7002-limit-without-price", 7002, {}, Phase.OPEN, ("MEBL", "buy", 100, None), {},
     ("a limit order needs a price",)),
    ("7002-market-with-price", 7002, {}, Phase.OPEN, ("MEBL", "buy", 100, "187.00"), {"type": "market"},
     ("a market order takes no price, got 187.00",)),
    ("7005-float-price", 7005, {}, Phase.OPEN, ("MEBL", "buy", 100, 187.5), {}, ("price 187.5 is a binary float",)),
    ("7005-float-qty", 7005, {}, Phase.OPEN, ("MEBL", "buy", 100.0, "187.50"), {},
     ("quantity 100.0 is a binary float",)),
    ("7005-mmp-without-config", 7005, {}, Phase.OPEN, ("MEBL", "buy", 10, "187.00"), {"mmp": True},
     ("mmp=True needs market-maker protection configured for strategy 's'",)),
    ("7010-notional", 7010, {}, Phase.OPEN, ("MEBL", "buy", 30000, "187.50"), {},
     ("notional 5625000.00 (30000 x 187.50) of MEBL is above the largest order notional 5000000",)),
    ("7010-quantity", 7010, {"risk": {"rules": {"max_order_qty": "1000"}}}, Phase.OPEN,
     ("MEBL", "buy", 1001, "187.00"), {}, ("quantity 1001 of MEBL is above the largest order quantity 1000",)),
]


@pytest.mark.parametrize(
    ("code", "config", "phase", "args", "kwargs", "fragments"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_the_gate_refuses_with_the_code_and_the_numbers(tmp_path, code, config, phase, args, kwargs, fragments):
    engine = build(tmp_path, **config)
    open_session(engine)
    if phase is not Phase.OPEN:
        enter(engine, phase)
    spy = VenueSpy(engine)
    order = ctx_of(engine).submit(*args, **kwargs)
    assert_refused(engine, spy, order, code, fragments)
    assert spy.sent == []


# ---- codes that need a market state first -------------------------------------------------------


def test_2003_post_close_takes_only_the_closing_price(engine):
    enter(engine, Phase.POST_CLOSE, closing_price_only=True)
    closing = engine.runtime.facts("paper", "MEBL").closing
    assert closing == D("187.50")  # nothing traded: the venue publishes the reference as the close
    spy = VenueSpy(engine)
    order = ctx_of(engine).submit("MEBL", "buy", 10, "187.00")
    assert_refused(engine, spy, order, 2003, (
        "price 187.00 is not the closing price 187.50 of MEBL", "post-close trades only at the closing price"))
    at_close = ctx_of(engine).submit("MEBL", "buy", 10, "187.50")
    assert at_close.status == "pending_new" and spy.ids() == [at_close.client_id]


@pytest.mark.parametrize("tif", ["ioc", "fok"])
def test_2007_ioc_and_fok_are_refused_in_pre_open_before_they_leave(engine, tif):
    enter(engine, Phase.PRE_OPEN, closing_price_only=False)
    spy = VenueSpy(engine)
    order = ctx_of(engine).submit("MEBL", "buy", 10, "187.00", tif=tif)
    assert spy.sent == [], f"sent, then the venue said: {order.reject_reason}"
    assert_refused(engine, spy, order, 2007, (f"{tif} orders cannot be accepted in pre-open",))
    assert ctx_of(engine).submit("MEBL", "buy", 10, "187.00", tif="gtc").status == "pending_new"


def test_2003_gate_and_paper_venue_share_the_psx_2026_band_with_its_rupee_floor(tmp_path):
    kel = {"symbol": "KEL", "venue": "paper", "tick_size": "0.01", "lot_size": 1, "previous_close": "5.00",
           "sector": "Power"}
    engine = build(tmp_path, symbols=("KEL",), extra_instruments=[kel],
                   risk={"profile": "psx-2026", "rules": {"max_price_deviation_pct": "0.5"}})
    open_session(engine)
    ctx = ctx_of(engine)
    outside = ctx.submit("KEL", "buy", 100, "6.01")
    assert outside.reject_code == 2003 and "[4.00, 6.00]" in outside.reject_reason  # the gate's band
    inside = ctx.submit("KEL", "buy", 100, "5.80")  # inside the gate's band: sent
    settle(engine)
    assert inside.status == "new", f"{inside.status} {inside.reject_code} {inside.reject_reason}"
    assert engine.adapters["paper"].matching_engine("KEL").price_band == (D("4.00"), D("6.00"))


def test_2006_no_new_order_while_the_market_is_closed(tmp_path):
    engine = build(tmp_path)
    connect(engine)  # the venue is up; the session is still "closed"
    assert ctx_of(engine).session == "closed"
    spy = VenueSpy(engine)
    order = ctx_of(engine).submit("MEBL", "buy", 10, "187.00")
    assert_refused(engine, spy, order, 2006, ("market closed: phase 'closed' accepts no new orders",))


def test_2006_no_amend_no_cancel_and_no_new_order_during_the_opening_match(tmp_path):
    """psx-current: the opening match 09:30-09:32 takes nothing. Driven by the real session driver."""
    engine = build(tmp_path, sessions={"profile": "psx-current"})
    connect(engine)
    engine.driver.start()
    settle(engine, 6 * 60)  # 09:20
    ctx = ctx_of(engine)
    assert ctx.session == "pre_open"
    spy = VenueSpy(engine)
    order = ctx.submit("MEBL", "buy", 10, "187.00")
    settle(engine, 11 * 60)  # 09:31
    assert ctx.session == "opening_match" and order.status == "new"
    assert ctx.amend(order, price="187.10") is False
    assert engine.runtime.rejects_by_code[2006] == 1
    assert ctx.cancel(order) is False
    assert engine.runtime.rejects_by_code[2006] == 2
    late = ctx.submit("MEBL", "buy", 10, "187.00")
    assert late.reject_code == 2006 and "phase 'opening_match' accepts no new orders" in late.reject_reason
    assert_refused(engine, spy, late, 2006, ("opening_match",), count=3)
    # the refused amend and cancel left the order as it was, here and at the venue
    assert (order.status, order.price, order.qty) == ("new", D("187.00"), D(10))
    assert spy.ids("amend") == [] and spy.ids("cancel") == []
    resting = engine.adapters["paper"].matching_engine("MEBL").resting_orders()
    assert [(r.client_id, r.price) for r in resting] == [(order.client_id, D("187.00"))]
    engine.driver.stop()


def test_2010_refused_while_the_venue_halts_the_symbol(tmp_path):
    engine = build(tmp_path, options={"faults": [{"kind": "halt", "at": "10:00", "duration_s": 600,
                                                  "symbol": "MEBL"}]})
    open_session(engine)
    settle(engine, 47 * 60)  # 10:01
    spy = VenueSpy(engine)
    order = ctx_of(engine).submit("MEBL", "buy", 10, "187.00")
    assert_refused(engine, spy, order, 2010, ("MEBL is halted: injected halt",))
    other = ctx_of(engine).submit("OGDC", "buy", 10, "109.30")
    assert other.status == "pending_new"  # only the halted symbol is refused
    settle(engine, 10 * 60)  # 10:11, the halt is lifted
    again = ctx_of(engine).submit("MEBL", "buy", 10, "187.00")
    assert again.status == "pending_new"


def test_2010_a_trade_at_the_band_edge_halts_the_symbol_under_broker_doc(engine):
    counterparty(engine, "MEBL", "sell", 10, "206.25")
    ctx = ctx_of(engine)
    lifted = ctx.submit("MEBL", "buy", 10, "206.25")  # the upper edge of [168.75, 206.25]
    settle(engine)
    assert lifted.status == "filled"
    spy = VenueSpy(engine)
    order = ctx.submit("MEBL", "buy", 10, "187.00")
    assert_refused(engine, spy, order, 2010, (
        "MEBL is halted: circuit breaker: MEBL traded at 206.25, the upper edge of its band [168.75, 206.25]",
        "band_hit_halts"))
    assert ctx.submit("OGDC", "buy", 10, "109.30").status == "pending_new"


def test_3001_strategy_rate_limit_refuses_not_queues(tmp_path):
    hammer = RECORDER + """
placed = []

@hookimpl
def on_session_change(ctx, old, new):
    if new == "open":
        for _ in range(3):
            placed.append(ctx.submit("MEBL", "buy", 10, "187.00"))
"""
    engine = build(tmp_path, {"s": hammer}, per_strategy={"s": {"rate_limit": {"orders_per_s": 2}}})
    spy = VenueSpy(engine)
    open_session(engine)  # the hook places three orders at one instant
    first, second, third = module_of(engine).placed
    assert (first.status, second.status) == ("pending_new", "pending_new")
    assert_refused(engine, spy, third, 3001, (
        "rate limit: strategy 's' orders 2/1s exhausted", "order refused, not queued", "next slot in"))
    assert spy.ids() == [first.client_id, second.client_id]  # the refused one never goes out, not even later
    settle(engine, 2)
    assert spy.ids() == [first.client_id, second.client_id]
    assert ctx_of(engine).submit("MEBL", "buy", 10, "187.00").status == "pending_new"  # a new second


def test_3002_a_reused_client_id(engine):
    ctx = ctx_of(engine)
    spy = VenueSpy(engine)
    first = ctx.submit("MEBL", "buy", 10, "187.00", client_id="mine-1")
    settle(engine)
    second = ctx.submit("MEBL", "buy", 20, "186.00", client_id="mine-1")
    assert second.status == "rejected" and second.reject_code == 3002
    assert "client id 'mine-1' was already used on 'paper'" in second.reject_reason
    assert spy.ids() == ["mine-1"]  # only the first went out
    assert first.status == "new" and first.qty == 10
    resting = engine.adapters["paper"].matching_engine("MEBL").resting_orders()
    assert [(r.client_id, r.qty, r.price) for r in resting] == [("mine-1", D(10), D("187.00"))]
    assert engine.runtime.rejects_by_code[3002] == 1
    assert engine.report()["rejects_by_code"]["3002"] == 1
    engine.runtime.drain()  # what runs after a hook returns
    assert ("mine-1", "rejected", 3002) in module_of(engine).updates


def test_4001_a_buy_that_only_unsettled_sale_proceeds_would_cover(tmp_path):
    engine = build(tmp_path, venue={"account": {"cash": "1000", "holdings": {"MEBL": "100"}}})
    open_session(engine)
    ctx = ctx_of(engine)
    counterparty(engine, "MEBL", "buy", 100, "187.50")
    sale = ctx.submit("MEBL", "sell", 100, "187.50")
    settle(engine)
    assert sale.status == "filled"
    assert ctx.buying_power == D(1000)  # the 18,721.875 of proceeds (net of the sale's fee) settle T+2
    spy = VenueSpy(engine)
    order = ctx.submit("MEBL", "buy", 50, "187.50")  # 9,375.00 + fee: more than cash, less than cash + proceeds
    assert_refused(engine, spy, order, 4001, (
        "buy 50 MEBL needs 8,389.06 more than the buying power of 1,000.00",
        "18,721.88 of sale proceeds settle on 2026-11-25",
    ))


def test_4002_shares_bought_today_cannot_be_sold_under_broker_doc_t_plus_2(engine):
    ctx = ctx_of(engine)
    counterparty(engine, "MEBL", "sell", 10, "187.50")
    bought = ctx.submit("MEBL", "buy", 10, "187.50")
    settle(engine)
    assert bought.status == "filled" and ctx.position("MEBL") == 10
    assert ctx.sellable("MEBL") == 0
    spy = VenueSpy(engine)
    order = ctx.submit("MEBL", "sell", 10, "187.50")
    assert_refused(engine, spy, order, 4002, (
        "sell 10 MEBL but only 0 settled shares are free to sell", "10 bought shares settle on 2026-11-25"))


def test_7003_a_failed_strategy_can_place_nothing(tmp_path):
    crashing = RECORDER + """
@hookimpl
def on_session_change(ctx, old, new):
    raise RuntimeError("strategy bug")
"""
    engine = build(tmp_path, {"s": crashing})
    spy = VenueSpy(engine)
    open_session(engine)
    assert engine.runtime.runners["s"].state == "failed"
    order = ctx_of(engine).submit("MEBL", "buy", 10, "187.00")
    assert order.status == "rejected" and order.reject_code == 7003
    assert "strategy 's' is failed" in order.reject_reason
    assert spy.sent == []
    settle(engine)
    assert anyio.run(engine.adapters["paper"].query_order, order.client_id) is None
    assert module_of(engine).updates == []  # a failed strategy is not called again
    assert engine.runtime.rejects_by_code[7003] == 1
    assert engine.report()["rejects_by_code"]["7003"] == 1


def test_7004_amend_of_an_order_that_is_no_longer_open(engine):
    ctx = ctx_of(engine)
    order = ctx.submit("MEBL", "buy", 10, "187.00")
    settle(engine)
    ctx.cancel(order)
    settle(engine)
    assert order.status == "cancelled"
    spy = VenueSpy(engine)
    assert ctx.amend(order, price="187.10") is False
    assert (order.status, order.price) == ("cancelled", D("187.00"))
    assert spy.sent == []
    assert engine.runtime.rejects_by_code[7004] == 1
    assert engine.report()["rejects_by_code"]["7004"] == 1


def test_7014_a_strategy_stopped_for_hook_overruns(tmp_path):
    slow = RECORDER.replace("    updates.append(", "    __import__('time').sleep(0.005)\n    updates.append(", 1)
    engine = build(tmp_path, {"s": slow}, risk={"containment": {"hook_budget_ms": 1, "max_hook_overruns": 1}})
    open_session(engine)
    ctx = ctx_of(engine)
    ctx.submit("MEBL", "buy", 10, "187.00")
    settle(engine)  # the ack's on_order_update runs 5 ms over a 1 ms budget
    assert engine.runtime.runners["s"].state == "failed"
    spy = VenueSpy(engine)
    order = ctx.submit("MEBL", "buy", 10, "187.00")
    assert (order.status, order.reject_code) == ("rejected", 7014)
    assert "strategy 's' is failed" in order.reject_reason and "over the 1 ms budget 1 times" in order.reject_reason
    assert spy.sent == []
    settle(engine)
    assert anyio.run(engine.adapters["paper"].query_order, order.client_id) is None
    assert engine.runtime.rejects_by_code[7014] == 1
    assert engine.report()["rejects_by_code"]["7014"] == 1


def test_7009_mmp_orders_refused_while_frozen(tmp_path):
    engine = build(tmp_path, per_strategy={"s": {"mmp": {"interval": "1", "frozen_time": "5",
                                                         "quantity_limit": "10"}}})
    open_session(engine)
    ctx = ctx_of(engine)
    counterparty(engine, "MEBL", "sell", 10, "187.50")
    quote = ctx.submit("MEBL", "buy", 10, "187.50", mmp=True)
    settle(engine, 0.001)
    assert quote.status == "filled" and ctx.mmp_frozen
    left_ms = -(-(engine.runtime.runners["s"].mmp.frozen_until_ns - engine.clock.now_ns()) // 1_000_000)
    spy = VenueSpy(engine)
    order = ctx.submit("MEBL", "buy", 10, "187.00", mmp=True)
    assert order.reject_code == 7009
    assert_refused(engine, spy, order, 7009, (
        "MMP triggered: filled 10 (limit 10) within 1s", f"MMP orders refused for another {left_ms} ms"))
    assert 4990 <= left_ms <= 5000


def test_7011_price_too_far_from_the_last_trade(engine):
    ctx = ctx_of(engine)
    counterparty(engine, "MEBL", "sell", 10, "187.50")
    ctx.submit("MEBL", "buy", 10, "187.50")
    settle(engine)
    assert engine.runtime.facts("paper", "MEBL").last_price == D("187.50")
    spy = VenueSpy(engine)
    order = ctx.submit("MEBL", "buy", 10, "196.88")  # 9.38 away; 5% of 187.50 is 9.375
    assert_refused(engine, spy, order, 7011, (
        "price 196.88 is 5.01% from the last trade price 187.50 of MEBL; the fat-finger limit is 5%",))
    edge = ctx.submit("MEBL", "buy", 10, "196.87")  # 9.37 away: inside, exactly compared
    assert edge.status == "pending_new" and spy.ids() == [edge.client_id]


def test_7012_reducing_refuses_an_order_that_does_not_shrink_a_position(engine):
    engine.runtime.manual_trigger(TradingState.REDUCING, "operator wind-down")
    ctx = ctx_of(engine)
    assert ctx.trading_state == "reducing"
    spy = VenueSpy(engine)
    order = ctx.submit("MEBL", "buy", 10, "187.00")
    assert_refused(engine, spy, order, 7012, (
        "account is reducing (operator wind-down): only orders that shrink a position pass",
        "strategy 's' is flat in MEBL"))


def test_7013_halted_refuses_everything(engine):
    engine.runtime.manual_trigger(TradingState.HALTED, "operator halt")
    ctx = ctx_of(engine)
    assert ctx.trading_state == "halted"
    spy = VenueSpy(engine)
    order = ctx.submit("MEBL", "buy", 10, "187.00")
    assert_refused(engine, spy, order, 7013, ("trading halted by the kill switch: operator halt",))


def test_9001_refused_while_the_venue_connection_is_down(tmp_path):
    engine = build(tmp_path, options={"faults": [{"kind": "drop", "at": "10:00", "duration_s": 30}]})
    open_session(engine)
    settle(engine, 46 * 60 + 5)  # 10:00:05, inside the drop
    ctx = ctx_of(engine)
    assert ctx.venue_status == "disconnected"
    assert ("paper", "disconnected") in module_of(engine).venue_statuses
    spy = VenueSpy(engine)
    order = ctx.submit("MEBL", "buy", 10, "187.00")
    assert_refused(engine, spy, order, 9001, (
        "venue 'paper' is disconnected: orders are refused until it is connected and reconciled",))
