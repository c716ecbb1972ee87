"""Counters tell the truth (issue 17, item 11): ``submitted`` counts what reached the venue adapter,
orders the engine refused are counted apart, and what a venue sent that its adapter dropped as bad
input is in the report and on /metrics. Real engine, real paper venue, real HTTP scrape."""

from __future__ import annotations

from decimal import Decimal

import anyio
from support import engine_in, open_session, settle
from support.gate import build
from support.scrape import scrape, total

from engine.app import Engine, summary_table
from engine.observe.server import MetricsServer
from engine.observe.snapshot import Observer
from engine.report.page import render_html

IDLE = "from engine import hookimpl\n\n@hookimpl\ndef on_start(ctx):\n    pass\n"

# one order that rests, then one refused (7011: 9% from the last price, over the 5% fat-finger
# limit) per book event, 200 in all
REFUSED_OFTEN = """\
from engine import hookimpl

state = {"sent": False, "refused": 0}

@hookimpl
def on_book(ctx, book):
    if ctx.session != "open" or book.symbol != "MEBL":
        return
    if not state["sent"]:
        state["sent"] = True
        ctx.submit("MEBL", "buy", 1, "185.00", tif="gtc")
    elif state["refused"] < 200:
        state["refused"] += 1
        ctx.submit("MEBL", "buy", 1, "170.00")
"""


def _scrape(engine: Engine) -> dict:
    observer = Observer(engine.runtime, "simulated", Decimal(10))
    observer.publish()
    server = MetricsServer(observer, ("127.0.0.1", 0))
    server.start()
    try:
        return scrape(server.url)
    finally:
        server.stop()


def test_submitted_counts_what_reached_the_venue_and_refusals_apart(tmp_path):
    engine = engine_in(tmp_path, {"s": REFUSED_OFTEN}, market=True, symbols=("MEBL",))
    engine.runtime.runners["s"].repeats = None  # counting 200 refusals, not pausing after 20 of them
    adapter = engine.adapters["paper"]
    on_the_wire: list[str] = []
    submit = adapter.submit

    def counted(order):
        on_the_wire.append(order.client_id)
        submit(order)

    adapter.submit = counted
    result = anyio.run(engine.run)
    orders = result.report["orders"]
    assert len(on_the_wire) == 1
    assert orders["submitted"] == 1 and orders["refused"] == 200
    assert orders["rejected"] == 200 and result.report["rejects_by_code"] == {"7011": 200}
    strategy = result.report["strategies"]["s"]
    assert strategy["orders"] == 1 and strategy["refused"] == 200
    series = _scrape(engine)
    assert total(series, "engine_orders_submitted_total", strategy="s", venue="paper") == 1
    assert total(series, "engine_orders_refused_total", strategy="s", venue="paper") == 200
    assert "1 submitted" in summary_table(result.report)
    assert "200 rejected (200 of them by the engine, never sent)" in summary_table(result.report)
    assert "200 refused by the engine" in render_html(result.report)


def test_bad_input_of_each_adapter_is_in_the_report_and_on_metrics(tmp_path):
    feed = {"adapter": "paper", "options": {"market": {"enabled": True}}}
    engine = build(tmp_path, {"s": IDLE}, venue={"market_data": feed})
    venue, data = engine.adapters["paper"], engine.feeds["paper"]
    # stub adapters: what a codec reader would have counted (engine.venue.badinput.BadInput.counts)
    venue.bad_input = lambda: {"bad_signature": 4, "replayed": 1}
    data.bad_input = lambda: {"not_json": 3, "too_deep": 2, "bad_number": 1}
    open_session(engine)
    settle(engine, 2)
    report = engine.report()["venues"]["paper"]
    assert report["bad_input"] == {"bad_signature": 4, "replayed": 1}
    assert report["market_data"]["bad_input"] == {"bad_number": 1, "not_json": 3, "too_deep": 2}
    page = render_html(engine.report())
    assert "bad input: bad_signature 4 · replayed 1" in page
    assert "market data bad input: bad_number 1 · not_json 3 · too_deep 2" in page
    series = _scrape(engine)
    name = "engine_venue_bad_input_total"
    assert total(series, name, venue="paper", channel="venue", kind="bad_signature") == 4
    assert total(series, name, venue="paper", channel="venue", kind="replayed") == 1
    assert total(series, name, venue="paper", channel="market_data", kind="not_json") == 3
    assert total(series, name, venue="paper", channel="market_data", kind="too_deep") == 2
    assert total(series, name, venue="paper", channel="market_data", kind="bad_number") == 1
    assert total(series, name, venue="paper", channel="venue", kind="not_json") == 0  # every kind from the start
    assert total(series, name) == 11


def test_an_adapter_with_no_bad_input_reports_an_empty_section(tmp_path):
    engine = engine_in(tmp_path, {"s": IDLE})
    open_session(engine)
    assert engine.report()["venues"]["paper"]["bad_input"] == {}


def test_the_summary_reject_counts_agree_and_say_which_are_orders_amends_and_cancels(tmp_path):
    """Issue 18: "rejects" (the table, rejects_by_code) counted refused amends and cancels while
    "rejected" counted orders only, and nothing said so. Now the report counts refused amends and
    cancels apart and the summary adds them up to the rejects by code."""
    engine = build(tmp_path, {"s": IDLE})
    open_session(engine)
    ctx = engine.runtime.runners["s"].ctx
    assert ctx.submit("MEBL", "buy", 1, "187.001").reject_code == 7001  # a refused order
    resting = ctx.submit("MEBL", "buy", 1, "187.00")
    settle(engine)
    assert resting.status == "new"
    assert ctx.amend(resting, price="187.005") is False  # a refused amend, 7001 too
    assert ctx.amend(resting, price="150.00") is False  # 2003: under the circuit band
    report = engine.report()
    orders = report["orders"]
    assert (orders["rejected"], orders["refused"], orders["amends_refused"], orders["cancels_refused"]) == (1, 1, 2, 0)
    assert report["rejects_by_code"] == {"2003": 1, "7001": 2}
    assert sum(report["rejects_by_code"].values()) == orders["rejected"] + orders["amends_refused"] + \
        orders["cancels_refused"] == report["strategies"]["s"]["rejects"]
    assert report["strategies"]["s"]["amends_refused"] == 2
    table = summary_table(report)
    assert "1 rejected (1 of them by the engine, never sent)" in table
    assert "refused by the engine: 2 amends, 0 cancels; rejects by code (3: orders, amends and cancels)" in table
