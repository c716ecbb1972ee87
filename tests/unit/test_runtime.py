"""Runtime behaviour: containment of a failing strategy, subscriptions, fills from the venue
(duplicates, unknown orders), and per-instance isolation. Real engine, real paper venue."""

from __future__ import annotations

import logging
from decimal import Decimal

from support import open_session, settle

from engine.model import BookUpdate, Fill, Liquidity, OrderStatus, OrderUpdate, Side, Trade

D = Decimal

QUOTER = """\
from engine import hookimpl

seen = []

@hookimpl
def on_book(ctx, book):
    seen.append(book.symbol)
    if not ctx.open_orders(book.symbol):
        ctx.submit(book.symbol, "buy", 10, ctx.instrument(book.symbol).previous_close - 1)
"""

EXPLODER = """\
from engine import hookimpl

calls = []

@hookimpl
def on_book(ctx, book):
    calls.append(book.symbol)
    if not ctx.open_orders():
        ctx.submit("MEBL", "buy", 10, "187.00")
    if len(calls) == 3:
        raise ZeroDivisionError("strategy bug")
"""


def test_a_raising_hook_fails_only_that_strategy_and_cancels_its_orders(build_engine, caplog):
    engine = build_engine({"bad": EXPLODER, "good": QUOTER}, market=True)
    with caplog.at_level(logging.ERROR, logger="engine"):
        open_session(engine)
        settle(engine, 120)
    bad = engine.runtime.runners["bad"]
    good = engine.runtime.runners["good"]
    assert bad.state == "failed"
    assert "ZeroDivisionError" in bad.failure
    assert len(bad.loaded.module.calls) == 3  # never called again after it raised
    assert bad.open_orders == {}
    assert good.state == "running"
    assert len(good.loaded.module.seen) > 10  # the other strategy kept receiving books
    tracebacks = [r for r in caplog.records if r.exc_info and "bad" in r.getMessage()]
    assert len(tracebacks) == 1  # logged once, with its traceback


def test_only_subscribed_instruments_reach_a_strategy(build_engine):
    engine = build_engine({"s": QUOTER}, market=True, symbols=("OGDC",))
    open_session(engine)
    settle(engine, 60)
    seen = set(engine.runtime.runners["s"].loaded.module.seen)
    assert seen == {"OGDC"}


def test_hooks_a_strategy_does_not_define_are_not_in_dispatch(build_engine):
    engine = build_engine({"s": QUOTER})
    entry = engine.runtime.venues["paper"].entries["MEBL"]
    assert [r.name for r in entry.book_subs] == ["s"]
    assert entry.trade_subs == ()


def test_same_file_twice_keeps_separate_state_and_params(build_engine, tmp_path):
    engine = build_engine({"a": QUOTER, "b": QUOTER}, market=True, symbols=("MEBL",))
    a, b = engine.runtime.runners["a"], engine.runtime.runners["b"]
    assert a.loaded.module is not b.loaded.module
    open_session(engine)
    settle(engine, 30)
    assert a.loaded.module.seen is not b.loaded.module.seen
    assert len(a.loaded.module.seen) == len(b.loaded.module.seen) > 0


def _fill(order, exec_id: str, qty: str = "4") -> Fill:
    return Fill("paper", order.symbol, order.client_id, order.venue_order_id, exec_id, order.side,
                order.price, D(qty), 1, Liquidity.MAKER)


def test_a_repeated_exec_id_is_applied_once(build_engine):
    engine = build_engine()
    open_session(engine)
    runner = engine.runtime.runners["s"]
    order = runner.ctx.submit("MEBL", "buy", 10, "187.00")
    settle(engine)
    engine.runtime.on_fill(_fill(order, "X1"))
    engine.runtime.on_fill(_fill(order, "X1"))
    assert order.cum_qty == D(4)
    assert runner.ctx.position("MEBL") == D(4)
    assert engine.runtime.n_duplicate_fills == 1


def test_a_fill_for_an_unknown_order_is_counted_and_kept_not_applied(build_engine, caplog):
    engine = build_engine()
    open_session(engine)
    ghost = Fill("paper", "MEBL", "nobody-1", "V9", "X9", Side.BUY, D("187.50"), D(5), 1)
    with caplog.at_level(logging.ERROR, logger="engine"):
        engine.runtime.on_fill(ghost)
        engine.runtime.on_fill(Fill("paper", "MEBL", "nobody-2", "V9", "X10", Side.BUY, D("187.50"), D(5), 1))
    assert engine.runtime.anomalies["fill_unknown_order"] == 2
    assert "nobody-1" in engine.runtime.anomaly_samples[0]
    assert len([r for r in caplog.records if "does not know" in r.getMessage()]) == 1  # logged once
    assert engine.runtime.runners["s"].ctx.position("MEBL") == 0


def test_an_overfill_is_refused_and_recorded(build_engine):
    engine = build_engine()
    open_session(engine)
    order = engine.runtime.runners["s"].ctx.submit("MEBL", "buy", 10, "187.00")
    settle(engine)
    engine.runtime.on_fill(_fill(order, "X1", "11"))
    assert order.cum_qty == 0
    assert engine.runtime.anomalies["fill_rejected"] == 1


def test_an_illegal_venue_transition_is_recorded_not_raised(build_engine):
    engine = build_engine()
    open_session(engine)
    order = engine.runtime.runners["s"].ctx.submit("MEBL", "buy", 10, "187.00")
    settle(engine)
    order_id = order.client_id
    engine.runtime.on_order_update(OrderUpdate("paper", order_id, OrderStatus.CANCELLED, 1))
    engine.runtime.on_order_update(OrderUpdate("paper", order_id, OrderStatus.PENDING_NEW, 2))
    assert order.status is OrderStatus.CANCELLED
    assert engine.runtime.anomalies["illegal_transition"] == 1


def test_a_strategy_that_resubmits_every_reject_forever_is_stopped(build_engine):
    looping = """\
from engine import hookimpl

@hookimpl
def on_session_change(ctx, old, new):
    ctx.submit("MEBL", "buy", 3, "1.001")

@hookimpl
def on_order_update(ctx, order):
    ctx.submit("MEBL", "buy", 3, "1.001")
"""
    engine = build_engine({"loop": looping, "s": QUOTER})
    runner = engine.runtime.runners["loop"]
    runner.repeats = None  # without the repeat-refusal rule: the loop guard is the last line
    open_session(engine)
    assert runner.state == "failed"
    assert "rejected orders" in runner.failure
    assert engine.runtime.runners["s"].state == "running"


def test_a_strategy_that_resubmits_every_reject_is_paused_by_the_repeat_rule_first(build_engine):
    """The shipped repeat-refusal rule pauses the same loop after its 20th identical refusal, long
    before the 10,000 of the loop guard; the refusal that paused it says so in its reason."""
    looping = """\
from engine import hookimpl

reasons = []

@hookimpl
def on_session_change(ctx, old, new):
    ctx.submit("MEBL", "buy", 3, "1.001")

@hookimpl
def on_order_update(ctx, order):
    reasons.append((ctx.state, order.reject_code, order.reject_reason))
    ctx.submit("MEBL", "buy", 3, "1.001")
"""
    engine = build_engine({"loop": looping, "s": QUOTER})
    open_session(engine)
    runner = engine.runtime.runners["loop"]
    assert runner.state == "paused" and runner.pauses == 1
    # 10 refusals spend its refusal budget (10/s: it has no rate_limit); then 3001 at once, and the
    # 20th 3001 trips the rule; the hook told of the pause submits once more (7016)
    assert runner.rejects_by_code == {7001: 10, 3001: 20, 7016: 1}
    assert runner.orders_refused == 31
    state, code, reason = runner.loaded.module.reasons[-1]
    assert state == "paused" and code == 3001
    assert "paused for 300 s or until the next session phase: 3001 MEBL buy refused 20 times within 60 s" in reason
    assert engine.runtime.runners["s"].state == "running"


DAY_AND_GTC = """\
from engine import hookimpl

placed = {}
seen_at_close = []
events = []

@hookimpl
def on_session_change(ctx, old, new):
    events.append(("session", new))
    if new == "open" and not placed:
        placed["day"] = ctx.submit("MEBL", "buy", 10, "180.00")
        placed["gtc"] = ctx.submit("MEBL", "buy", 10, "180.00", tif="gtc")
    if new == "closed" and placed:
        seen_at_close.extend(sorted(o.tif.value for o in ctx.open_orders()))

@hookimpl
def on_order_update(ctx, order):
    if order.status == "expired":
        events.append(("expired", order.tif.value))
"""


def test_day_orders_expire_at_the_close_before_strategies_hear_of_it(build_engine):
    import anyio

    engine = build_engine({"s": DAY_AND_GTC}, market=True, symbols=("MEBL",))
    result = anyio.run(engine.run)
    module = engine.runtime.runners["s"].loaded.module
    assert module.placed["day"].status == "expired"
    # the strategy hears of the expiry before its on_session_change(..., "closed")
    assert module.events[-2:] == [("expired", "day"), ("session", "closed")]
    assert module.seen_at_close == ["gtc"]  # at "closed" only the GTC order is still working
    assert module.placed["gtc"].status == "cancelled"  # cancelled by the engine at shutdown
    assert result.report["orders"]["expired"] == 1
    assert result.report["sessions"] == ["closed", "pre_open", "open", "post_close", "closed"]


class RowQueue:
    """Stands in for the journal where only the queueing of order rows matters."""

    def __init__(self) -> None:
        self.rows: list = []

    def order(self, order, detail: str = "") -> None:
        self.rows.append((order, order.status))

    def commit(self, now_ns: int = 0) -> None:
        pass

    def reserve_client_ids(self, strategy: str, first: int) -> int:
        return first + 1000


IDLE = """\
from engine import hookimpl

@hookimpl
def on_book(ctx, book):
    pass
"""


def test_an_order_is_handed_to_the_venue_before_its_bookkeeping_and_booked_when_the_call_returns(build_engine):
    """Tick-to-order ends at the hand-off: the account's reservation and the journal row follow it
    (issue 22), and both are in place before the strategy's next call can read them."""
    engine = build_engine({"s": IDLE})
    open_session(engine)
    runtime = engine.runtime
    account = runtime.venues["paper"].account
    journal = runtime.journal = RowQueue()
    adapter = engine.adapters["paper"]
    seen: list[tuple[str, tuple[Decimal, Decimal], int]] = []
    submit, amend = adapter.submit, adapter.amend

    def spy_submit(order):
        seen.append(("submit", account.reserved_for(order.client_id), len(journal.rows)))
        submit(order)

    def spy_amend(order, price, qty):
        seen.append(("amend", account.reserved_for(order.client_id), len(journal.rows)))
        amend(order, price, qty)

    adapter.submit, adapter.amend = spy_submit, spy_amend
    ctx = runtime.runners["s"].ctx
    order = ctx.submit("MEBL", "buy", 100, "187.00")
    assert seen == [("submit", (D(0), D(0)), 0)]  # nothing booked yet when it left
    cash, shares = account.reserved_for(order.client_id)
    assert shares == 100 and cash > D("18700")  # booked before submit returned
    assert journal.rows == [(order, OrderStatus.PENDING_NEW)]
    settle(engine, 1)
    assert order.status is OrderStatus.NEW
    booked = len(journal.rows)
    assert ctx.amend(order, price="187.10")
    assert seen[1] == ("amend", (cash, shares), booked)  # the old reservation while the amend left
    assert account.reserved_for(order.client_id)[0] > cash  # the larger price held once it returned


def test_an_adapter_that_raises_on_submit_still_leaves_the_order_booked(build_engine):
    engine = build_engine({"s": IDLE})
    open_session(engine)
    runtime = engine.runtime
    adapter = engine.adapters["paper"]

    def broken(order):
        raise RuntimeError("adapter bug")

    adapter.submit = broken
    ctx = runtime.runners["s"].ctx
    journal = runtime.journal = RowQueue()
    before = runtime.venues["paper"].account.buying_power
    try:
        ctx.submit("MEBL", "buy", 100, "187.00")
    except RuntimeError:
        pass
    (order,) = runtime.runners["s"].open_orders.values()
    assert runtime.venues["paper"].account.buying_power < before  # reserved, as if it went out
    assert journal.rows == [(order, OrderStatus.PENDING_NEW)]  # its row is queued too


def test_market_data_the_engine_does_not_list_is_counted_and_reaches_no_strategy(build_engine, caplog):
    """An unknown instrument on a known venue is counted on that venue; an unknown venue is an
    anomaly, logged once; neither reaches a hook nor touches a book."""
    engine = build_engine({"s": QUOTER})
    runtime = engine.runtime
    venue = runtime.venues["paper"]
    seen = runtime.runners["s"].loaded.module.seen
    level = ((Side.BUY, D("1.00"), D(10)),)
    with caplog.at_level(logging.ERROR, logger="engine"):
        runtime.on_book(BookUpdate("paper", "NOSUCH", 1, 1, level))
        runtime.on_trade(Trade("paper", "NOSUCH", 1, D("1.00"), D(10), Side.BUY, "t1"))
        assert venue.n_unlisted == 2
        assert runtime.anomalies["market_data_unknown_venue"] == 0
        runtime.on_book(BookUpdate("elsewhere", "MEBL", 1, 1, level))
        runtime.on_trade(Trade("elsewhere", "MEBL", 1, D("1.00"), D(10), Side.BUY, "t2"))
    assert runtime.anomalies["market_data_unknown_venue"] == 2
    assert venue.n_unlisted == 2
    assert [r.getMessage() for r in caplog.records].count(
        "market data for a venue this engine does not know (further ones are counted, see the report)") == 1
    assert seen == []
    assert venue.entries["MEBL"].n_book == venue.entries["MEBL"].n_trade == 0
