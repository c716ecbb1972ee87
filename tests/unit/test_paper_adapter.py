"""The paper venue through the adapter interface: a SimClock, the recording sink standing in for the
runtime (tests/support/sinks.py: it applies every update and fill to the Order objects by the engine's own
rules, so an illegal sequence fails the test), and the synthetic market."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError
from support.paper import HOUR, LATENCY_NS, MINUTE, NS, START, Venue, instruments, no_sink_errors  # noqa: F401 (autouse)

from adapters.paper.adapter import CODE_INVALID_SYMBOL, PaperAdapter, PaperOptions
from adapters.sim.market import BACKGROUND_OWNERS, MarketOptions, SymbolMarket
from adapters.sim.matching import (
    CODE_MARKET_CLOSED,
    CODE_POST_ONLY,
    CODE_UNKNOWN_ORDER,
    Cancelled,
    Execution,
    MatchingEngine,
    band_around,
)
from engine.model import (
    Instrument,
    Liquidity,
    OrderStatus,
    Phase,
    Side,
    TimeInForce,
)
from engine.venue import get_adapter

D = Decimal
S = OrderStatus

def signature(calls: list[tuple[str, Any]]) -> list[tuple]:
    """A comparable rendering of a run's sink calls."""
    out: list[tuple] = []
    for kind, obj in calls:
        if kind == "book":
            out.append((kind, obj.symbol, obj.ts, obj.seq, obj.snapshot, obj.changes))
        elif kind == "trade":
            out.append((kind, obj.symbol, obj.ts, obj.price, obj.qty, obj.aggressor, obj.trade_id))
        elif kind == "fill":
            out.append((kind, obj.client_id, obj.exec_id, obj.price, obj.qty, obj.liquidity))
        elif kind == "update":
            out.append((kind, obj.client_id, obj.status, obj.ts, obj.reason, obj.price, obj.qty))
        else:
            out.append((kind, obj))
    return out


# ---- registry and options ----------------------------------------------------------------


def test_registry_resolves_paper_to_the_paper_adapter():
    assert get_adapter("paper") is PaperAdapter


def test_options_have_documented_defaults():
    options = PaperOptions()
    assert (options.account, options.latency_ms, options.stp) == ("paper", D("0.5"), "cancel_newest")
    assert options.market.enabled and options.market.step_interval_s == D(1)
    assert all(field.description for field in PaperOptions.model_fields.values())
    assert all(field.description for field in MarketOptions.model_fields.values())


def test_options_refuse_unknown_keys():
    with pytest.raises(ValidationError, match="extra"):
        PaperOptions.model_validate({"acount": "x"})


def test_market_options_refuse_unknown_keys():
    with pytest.raises(ValidationError, match="extra"):
        PaperOptions.model_validate({"market": {"levles": 3}})


def test_options_refuse_an_unknown_stp_policy():
    with pytest.raises(ValidationError):
        PaperOptions.model_validate({"stp": "cancel_all"})


def test_options_refuse_a_background_account_name():
    with pytest.raises(ValidationError, match="reserved"):
        PaperOptions(account="~bg-maker")


def test_capabilities_declare_what_the_venue_does():
    caps = PaperAdapter.capabilities
    assert (caps.amend, caps.mass_cancel, caps.post_only) == (True, False, "reject")
    assert caps.ioc and caps.fok and caps.gtc and caps.market_orders and caps.self_trade_prevention


# ---- connection and market data ----------------------------------------------------------


def test_connect_reports_connected():
    venue = Venue(market=False)
    assert venue.sink.of("status") == [("PSX", "connected", "")]


def test_subscribe_sends_a_snapshot_first_then_deltas_with_seq_up_by_one():
    venue = Venue()
    venue.phase(Phase.PRE_OPEN)
    venue.run(MINUTE)
    venue.adapter.subscribe(["MEBL"])
    venue.run(10 * MINUTE)
    books = venue.sink.of("book")
    assert books[0].snapshot and books[0].changes
    assert not any(b.snapshot for b in books[1:])
    assert len(books) > 100
    assert [b.seq for b in books] == list(range(1, len(books) + 1))


def test_subscribe_to_an_unknown_symbol_is_refused():
    venue = Venue(market=False)
    with pytest.raises(ValueError, match="NOPE"):
        venue.adapter.subscribe(["NOPE"])


def test_book_updates_rebuild_exactly_the_engines_book():
    venue = Venue(symbols=("MEBL", "PSO"))
    venue.adapter.subscribe(["MEBL", "PSO"])
    venue.open_market()
    venue.run(HOUR)
    for symbol in ("MEBL", "PSO"):
        book = venue.sink.books[symbol]
        engine = venue.engine(symbol)
        assert book.bids == engine.depth(Side.BUY)
        assert book.asks == engine.depth(Side.SELL)
        assert not book.is_crossed()


def test_no_market_data_for_unsubscribed_symbols():
    venue = Venue(symbols=("MEBL", "PSO"))
    venue.adapter.subscribe(["MEBL"])
    venue.open_market()
    venue.run(10 * MINUTE)
    assert {b.symbol for b in venue.sink.of("book")} == {"MEBL"}
    assert {t.symbol for t in venue.sink.of("trade")} == {"MEBL"}


def test_a_market_step_comes_about_once_a_second():
    venue = Venue()
    venue.adapter.subscribe(["MEBL"])
    venue.open_market()
    before = len(venue.sink.of("book"))
    venue.run(HOUR)
    assert 2500 < len(venue.sink.of("book")) - before < 5000


# ---- order handling ----------------------------------------------------------------------


def test_submit_is_acknowledged_only_after_the_latency():
    venue = Venue(market=False)
    venue.phase(Phase.OPEN)
    order = venue.submit(Side.BUY, 10, "187.00")
    venue.run(LATENCY_NS - 1)
    assert venue.sink.updates_for(order.client_id) == []
    venue.run(1)
    [ack] = venue.sink.updates_for(order.client_id)
    assert ack.status is S.NEW and ack.venue_order_id and ack.ts == START + LATENCY_NS
    assert order.status is S.NEW


def test_latency_is_configurable():
    venue = Venue(market=False, latency_ms=D(3))
    venue.phase(Phase.OPEN)
    order = venue.submit(Side.BUY, 10, "187.00")
    venue.run(3 * 1_000_000)
    [ack] = venue.sink.updates_for(order.client_id)
    assert ack.ts == START + 3 * 1_000_000


def test_marketable_order_is_acknowledged_then_filled_as_taker():
    venue = Venue()
    venue.open_market()
    ask = venue.engine().best_ask
    order = venue.submit(Side.BUY, 1, ask)
    venue.run(MINUTE)
    updates = venue.sink.updates_for(order.client_id)
    assert updates[0].status is S.NEW
    [fill] = venue.sink.fills_for(order.client_id)
    assert (fill.price, fill.qty, fill.liquidity, fill.side) == (ask, D(1), Liquidity.TAKER, Side.BUY)
    assert fill.fee is None and fill.venue_order_id == updates[0].venue_order_id
    assert order.status is S.FILLED
    ack_index = venue.sink.calls.index(("update", updates[0]))
    assert ack_index < venue.sink.calls.index(("fill", fill))


def test_exec_ids_are_unique_across_the_venue():
    venue = Venue(symbols=("MEBL", "PSO"))
    venue.open_market()
    for symbol in ("MEBL", "PSO"):
        for _ in range(3):
            venue.submit(Side.BUY, 1, venue.engine(symbol).best_ask, symbol=symbol)
            venue.run(NS)
    exec_ids = [f.exec_id for f in venue.sink.of("fill")]
    assert len(exec_ids) >= 6 and len(set(exec_ids)) == len(exec_ids)


def test_ioc_remainder_is_reported_cancelled():
    venue = Venue(market=False)
    venue.phase(Phase.OPEN)
    order = venue.submit(Side.BUY, 10, "187.00", tif=TimeInForce.IOC)
    venue.run(NS)
    assert [u.status for u in venue.sink.updates_for(order.client_id)] == [S.NEW, S.CANCELLED]
    assert order.status is S.CANCELLED


def test_cancel_is_reported_after_the_latency():
    venue = Venue(market=False)
    venue.phase(Phase.OPEN)
    order = venue.submit(Side.BUY, 10, "187.00")
    venue.run(NS)
    sent = venue.clock.now_ns()
    venue.cancel(order)
    venue.run(NS)
    cancelled = venue.sink.updates_for(order.client_id)[-1]
    assert cancelled.status is S.CANCELLED and cancelled.ts == sent + LATENCY_NS
    assert order.status is S.CANCELLED


def test_cancel_of_a_filled_order_is_refused_with_its_final_status():
    venue = Venue()
    venue.open_market()
    order = venue.submit(Side.BUY, 1, venue.engine().best_ask)
    venue.adapter.cancel(order)  # sent before the fill is known: the runtime would be pending_cancel
    venue.run(NS)
    refusal = venue.sink.updates_for(order.client_id)[-1]
    assert refusal.status is S.FILLED and refusal.reject_code == CODE_UNKNOWN_ORDER
    assert "no longer working" in refusal.reason


def test_amend_ack_carries_the_new_price_and_quantity():
    venue = Venue(market=False)
    venue.phase(Phase.OPEN)
    order = venue.submit(Side.BUY, 10, "187.00")
    venue.run(NS)
    venue.amend(order, "186.50", 20)
    venue.run(NS)
    ack = venue.sink.updates_for(order.client_id)[-1]
    assert (ack.status, ack.price, ack.qty) == (S.NEW, D("186.50"), D(20))
    assert (order.price, order.qty, order.status) == (D("186.50"), D(20), S.NEW)
    assert venue.engine().depth(Side.BUY) == [(D("186.50"), D(20))]


def test_refused_amend_returns_the_order_to_its_live_status():
    venue = Venue(market=False)
    venue.phase(Phase.OPEN)
    order = venue.submit(Side.BUY, 10, "187.00")
    venue.run(NS)
    venue.amend(order, None, 0)
    venue.run(NS)
    refusal = venue.sink.updates_for(order.client_id)[-1]
    assert refusal.status is S.NEW and refusal.reason and refusal.price is None
    assert order.status is S.NEW and order.qty == D(10)


def test_orders_are_rejected_with_2006_while_closed():
    venue = Venue(market=False)
    order = venue.submit(Side.BUY, 10, "187.00")
    venue.run(NS)
    [rejected] = venue.sink.updates_for(order.client_id)
    assert rejected.status is S.REJECTED and rejected.reject_code == CODE_MARKET_CLOSED
    assert order.reject_code == CODE_MARKET_CLOSED


def test_post_only_order_that_would_cross_is_rejected():
    venue = Venue()
    venue.open_market()
    order = venue.submit(Side.BUY, 1, venue.engine().best_ask, post_only=True)
    venue.run(NS)
    [rejected] = venue.sink.updates_for(order.client_id)
    assert rejected.status is S.REJECTED and rejected.reject_code == CODE_POST_ONLY


def test_order_for_an_unknown_symbol_is_rejected_with_2001():
    venue = Venue(market=False)
    venue.phase(Phase.OPEN)
    order = venue.submit(Side.BUY, 1, "10.00", symbol="NOPE")
    venue.run(NS)
    [rejected] = venue.sink.updates_for(order.client_id)
    assert rejected.status is S.REJECTED and rejected.reject_code == CODE_INVALID_SYMBOL


def test_order_outside_the_circuit_band_is_rejected():
    venue = Venue(market=False)
    venue.phase(Phase.OPEN)
    order = venue.submit(Side.BUY, 1, "206.26")  # 187.50 + 10% = 206.25
    venue.run(NS)
    assert order.status is S.REJECTED and order.reject_code == 2003


def test_our_own_orders_do_not_trade_with_each_other():
    venue = Venue(market=False)
    venue.phase(Phase.OPEN)
    resting = venue.submit(Side.SELL, 5, "187.00")
    venue.run(NS)
    incoming = venue.submit(Side.BUY, 5, "187.00")
    venue.run(NS)
    assert venue.sink.of("fill") == []
    assert resting.status is S.NEW and incoming.status is S.CANCELLED


# ---- the synthetic market ----------------------------------------------------------------


def _day(seed: int) -> list[tuple]:
    venue = Venue(seed=seed, symbols=("MEBL", "KEL"))
    venue.adapter.subscribe(["MEBL", "KEL"])
    venue.phase(Phase.PRE_OPEN)
    venue.run(5 * MINUTE)
    quote = venue.submit(Side.BUY, 100, "187.00")
    venue.phase(Phase.OPEN)
    venue.run(20 * MINUTE)
    venue.submit(Side.SELL, 50, venue.engine().best_bid)
    venue.run(20 * MINUTE)
    if quote.is_open:
        venue.cancel(quote)
    venue.run(MINUTE)
    return signature(venue.sink.calls)


def test_same_seed_gives_the_identical_event_sequence():
    first = _day(11)
    assert len(first) > 1000
    assert first == _day(11)


def test_a_different_seed_gives_a_different_event_sequence():
    assert _day(11) != _day(12)


def test_the_generator_trades_during_continuous_trading():
    venue = Venue()
    venue.adapter.subscribe(["MEBL"])
    venue.open_market()
    before = len(venue.sink.of("trade"))
    venue.run(30 * MINUTE)
    prints = venue.sink.of("trade")[before:]
    assert len(prints) > 20
    assert all(t.aggressor in (Side.BUY, Side.SELL) for t in prints)


def test_the_generator_is_silent_while_closed():
    venue = Venue()
    venue.adapter.subscribe(["MEBL"])
    venue.run(3 * HOUR)
    assert len(venue.sink.of("book")) == 1  # the snapshot
    assert venue.sink.of("trade") == []
    assert venue.clock.next_due() is None  # no idle timers either


def test_the_generator_stops_trading_at_the_close():
    venue = Venue()
    venue.adapter.subscribe(["MEBL"])
    venue.open_market()
    venue.run(10 * MINUTE)
    venue.phase(Phase.CLOSED)
    calls = len(venue.sink.calls)
    venue.run(HOUR)
    assert len(venue.sink.calls) == calls


def test_a_passive_order_at_the_touch_is_filled_within_an_hour():
    venue = Venue()
    venue.open_market()
    order = venue.submit(Side.BUY, 100, venue.engine().best_bid)
    venue.run(HOUR)
    fills = venue.sink.fills_for(order.client_id)
    assert fills and all(f.liquidity is Liquidity.MAKER for f in fills)


def test_the_opening_auction_prints_at_one_price_without_aggressor():
    venue = Venue()
    venue.adapter.subscribe(["MEBL"])
    venue.phase(Phase.PRE_OPEN)
    venue.run(15 * MINUTE)
    assert venue.sink.of("trade") == []  # pre-open accumulates, never matches
    venue.phase(Phase.OPENING_MATCH)
    prints = venue.sink.of("trade")
    assert prints and {t.aggressor for t in prints} == {None}
    assert len({t.price for t in prints}) == 1
    assert not venue.sink.books["MEBL"].is_crossed()


def test_our_pre_open_order_takes_part_in_the_auction():
    venue = Venue()
    venue.phase(Phase.PRE_OPEN)
    venue.run(15 * MINUTE)
    order = venue.submit(Side.BUY, 100, "190.00")  # well through the mid: certain to cross
    venue.run(NS)
    venue.phase(Phase.OPENING_MATCH)
    fills = venue.sink.fills_for(order.client_id)
    assert fills and len({f.price for f in fills}) == 1


def test_post_close_trades_only_at_the_closing_price():
    venue = Venue()
    venue.adapter.subscribe(["MEBL"])
    venue.open_market()
    venue.run(HOUR)
    venue.phase(Phase.POST_CLOSE)
    before = len(venue.sink.of("trade"))
    venue.run(15 * MINUTE)
    prints = venue.sink.of("trade")[before:]
    assert prints and {t.price for t in prints} == {venue.engine().closing_price}


def test_day_orders_expire_at_the_close_and_gtc_orders_persist():
    venue = Venue(market=False)
    venue.phase(Phase.OPEN)
    day = venue.submit(Side.BUY, 10, "180.00", tif=TimeInForce.DAY)
    gtc = venue.submit(Side.BUY, 10, "179.00", tif=TimeInForce.GTC)
    venue.run(NS)
    venue.phase(Phase.POST_CLOSE)
    venue.phase(Phase.CLOSED)
    assert venue.sink.updates_for(day.client_id)[-1].status is S.EXPIRED
    assert day.status is S.EXPIRED
    assert [u.status for u in venue.sink.updates_for(gtc.client_id)] == [S.NEW]
    assert venue.engine().depth(Side.BUY) == [(D("179.00"), D(10))]


def test_close_stops_the_market_and_drops_requests_in_flight():
    venue = Venue()
    venue.open_market()
    order = venue.submit(Side.BUY, 10, "187.00")
    asyncio.run(venue.adapter.close())
    calls = len(venue.sink.calls)
    venue.run(HOUR)
    assert len(venue.sink.calls) == calls
    assert order.status is S.PENDING_NEW


def test_the_mid_stays_inside_the_circuit_band():
    venue = Venue(symbols=("PSO",), market_options={"volatility_ticks": D(20)})
    venue.adapter.subscribe(["PSO"])
    venue.open_market()
    venue.run(3 * HOUR)
    low, high = band_around(D("75.12"), D("0.01"))
    prices = {p for b in venue.sink.of("book") for _, p, _ in b.changes}
    assert min(prices) >= low and max(prices) <= high
    assert max(prices) == high or min(prices) == low  # it did reach the band at this volatility


def test_background_flow_never_meets_self_trade_prevention():
    instrument = instruments(["MEBL"])[0]
    engine = MatchingEngine("MEBL", reference_price=instrument.previous_close)
    market = SymbolMarket(instrument, engine, MarketOptions(volatility_ticks=D(2)), seed=3)
    events = []
    for phase, steps in ((Phase.PRE_OPEN, 600), (Phase.OPEN, 3000)):
        events += engine.set_phase(phase).events
        events += market.on_phase(Phase.CLOSED, phase, 0)
        for n in range(steps):
            events += market.step(phase, n)
            if n % 10 == 0:
                events += market.aggress(phase, n)
        engine.check_invariants()
    assert any(isinstance(e, Execution) for e in events)
    assert not [e for e in events if isinstance(e, Cancelled) and "self-trade" in e.reason]
    assert {e.maker_owner for e in events if isinstance(e, Execution)} <= BACKGROUND_OWNERS


def test_background_sizes_are_whole_lots():
    instrument = Instrument("ETF", "PSX", lot_size=D(500), previous_close=D("10.00"))
    engine = MatchingEngine("ETF", lot_size=D(500), reference_price=D("10.00"))
    engine.set_phase(Phase.OPEN)
    market = SymbolMarket(instrument, engine, MarketOptions(), seed=1)
    for n in range(200):
        market.step(Phase.OPEN, n)
    orders = engine.resting_orders()
    assert orders and all(o.qty % 500 == 0 for o in orders)
