"""A venue whose market data comes from one adapter and whose orders go through another
(``venues.<name>.market_data``; PSX: the Live Feed and the Optimus broker API), on a REAL engine
with real paper venues on the simulated clock: the data venue's synthetic market feeds the books,
the order venue takes the orders. A feed drop makes data stale and never orders unknown. Also the
statuses every adapter may send: ``stale`` then ``connected`` again, and one order's ``unknown``.
"""

from __future__ import annotations

from decimal import Decimal

from support import open_session, settle
from support.gate import LOGGER, build, ctx_of, module_of, run_to

from engine.model import OrderStatus, OrderUpdate

D = Decimal


def split_engine(tmp_path, faults=()):
    feed = {"adapter": "paper", "options": {"market": {"enabled": True}, "faults": list(faults)}}
    return build(tmp_path, {"s": LOGGER}, venue={"market_data": feed})


def test_books_come_from_the_market_data_adapter_and_orders_go_to_the_order_adapter(tmp_path):
    engine = split_engine(tmp_path)
    assert set(engine.adapters) == {"paper"} and set(engine.feeds) == {"paper"}
    feed, broker = engine.feeds["paper"], engine.adapters["paper"]
    assert feed is not broker
    open_session(engine)
    settle(engine, 5)
    ctx = ctx_of(engine)
    book = ctx.book("MEBL")
    assert book is not None and book.best_bid is not None  # the feed's synthetic market
    assert broker.matching_engine("MEBL").resting_orders() == []  # the order venue has no market of its own
    order = ctx.submit("MEBL", "buy", 10, "180.00")
    settle(engine)
    assert order.status == "new"
    assert [r.client_id for r in broker.matching_engine("MEBL").resting_orders()] == [order.client_id]
    assert all(r.client_id != order.client_id for r in feed.matching_engine("MEBL").resting_orders())
    report = engine.report()["venues"]["paper"]
    assert report["market_data"]["adapter"] == "paper" and report["market_data"]["status"] == "connected"
    assert {"messages_in", "messages_out", "reconnects"} <= set(report)


def test_a_feed_drop_makes_data_stale_and_leaves_orders_alone(tmp_path):
    engine = split_engine(tmp_path, faults=[{"kind": "drop", "at": "10:00", "duration_s": 30}])
    open_session(engine)
    ctx = ctx_of(engine)
    working = ctx.submit("MEBL", "buy", 10, "180.00")
    settle(engine)
    events = module_of(engine).events
    events.clear()
    run_to(engine, 10, 0, 5)
    assert [e for e in events if e[0] == "venue"] == [("venue", "paper", "stale")]
    assert working.status == "new" and ctx.venue_status == "connected"  # orders were never in doubt
    during = ctx.submit("MEBL", "buy", 10, "180.50")
    settle(engine)
    assert during.status == "new"  # orders flow while the data is stale
    run_to(engine, 10, 0, 31)
    assert [e for e in events if e[0] == "venue"] == [("venue", "paper", "stale"), ("venue", "paper", "connected")]
    assert not [e for e in events if e[0] == "order" and e[2] == "unknown"]
    assert engine.report()["venues"]["paper"]["disconnects"] == 0


def test_stale_then_connected_is_told_to_strategies_without_touching_orders(tmp_path):
    engine = build(tmp_path, {"s": LOGGER})
    open_session(engine)
    ctx = ctx_of(engine)
    order = ctx.submit("MEBL", "buy", 10, "180.00")
    settle(engine)
    events = module_of(engine).events
    events.clear()
    engine.runtime.on_venue_status("paper", "stale", "no message for 10 s")
    engine.runtime.on_venue_status("paper", "connected", "data flowing again")
    engine.runtime.on_venue_status("paper", "connected", "said twice")
    assert events == [("venue", "paper", "stale"), ("venue", "paper", "connected")]
    assert order.status == "new" and ctx.venue_status == "connected"


def test_one_orders_lost_answer_makes_it_unknown_until_the_venue_says(tmp_path):
    """An adapter whose request timed out (Optimus) says so for that order alone."""
    engine = build(tmp_path, {"s": LOGGER})
    open_session(engine)
    ctx = ctx_of(engine)
    order = ctx.submit("MEBL", "buy", 10, "180.00")
    assert order.status == "pending_new"
    events = module_of(engine).events
    events.clear()
    ts = engine.clock.now_ns()
    engine.runtime.on_order_update(OrderUpdate("paper", order.client_id, OrderStatus.UNKNOWN, ts,
                                               reason="request timed out"))
    assert order.status == "unknown" and events == [("order", order.client_id, "unknown", None)]
    assert ctx.buying_power < D(10_000_000)  # still reserved: it may exist
    settle(engine)  # the venue's real answer arrives
    assert order.status == "new" and events[-1] == ("order", order.client_id, "new", None)
    assert engine.runtime.anomalies.get("illegal_transition", 0) == 0


def test_after_on_start_each_strategy_hears_where_its_venue_stands(tmp_path):
    """What was said before a strategy started (or while a restart held it) reached no one: once
    every on_start has run, each strategy hears its venue's status as it stands. A separate feed
    that has not yet said its data is current makes that ``stale``, and its first ``connected``
    then says data flows (tests/e2e/test_bus_nats.py: the bus's strategies trade only once told)."""
    engine = split_engine(tmp_path)
    events = module_of(engine).events
    rt = engine.runtime
    events.clear()
    rt.on_venue_status("paper", "connected", "the order side connects")  # a first connect is told no one
    rt.on_market_data_status("paper", "connected", "the feed connects")  # nor a feed's first word
    assert [e for e in events if e[0] == "venue"] == []
    rt.tell_where_venues_stand()
    assert [e for e in events if e[0] == "venue"] == [("venue", "paper", "connected")]

    events.clear()
    rt.venues["paper"].data_status = "disconnected"  # the feed has said nothing yet (its initial state)
    rt.tell_where_venues_stand()
    rt.on_market_data_status("paper", "connected", "first heartbeat")
    assert [e for e in events if e[0] == "venue"] == [("venue", "paper", "stale"), ("venue", "paper", "connected")]
