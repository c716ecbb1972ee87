"""What one engine process keeps grows with the work of a day, not with the number of days
(issue 17, item 12): finished orders leave the runtime's maps at the day roll (they are in the
journal), and the report's timeline keeps a bounded number of samples however long the run.
Structural assertions only: no RSS or timing threshold (``benchmarks/soak.py`` measures RSS)."""

from __future__ import annotations

import sqlite3
import textwrap
from decimal import Decimal

import anyio
from support import INSTRUMENTS

from engine.app import Engine
from engine.clientids import format_client_id
from engine.config import load_config
from engine.observe.timeline import MAX_SAMPLES, Timeline

S = 1_000_000_000
DAY_S = 86_400

# one resting DAY buy far below the market each open: it expires at the close, every day
DAILY_ORDER = """\
from decimal import Decimal

from engine import hookimpl

@hookimpl
def on_session_change(ctx, old, new):
    if new == "open":
        ctx.submit("MEBL", "buy", 10, Decimal("180.00"))
"""


def run_days(tmp_path, days: int) -> Engine:
    (tmp_path / "s.py").write_text(DAILY_ORDER)
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(
        f"run: {{clock: simulated, start: 2026-11-23, days: {days}}}\n"
        + INSTRUMENTS
        + "venues:\n  paper: {adapter: paper, options: {market: {enabled: false}}}\n"
        + "strategies:\n  - {name: s, file: s.py, venue: paper, instruments: [MEBL]}\n"
    ))
    engine = Engine(load_config(config))
    anyio.run(engine.run, backend="asyncio")
    return engine


def test_finished_orders_leave_the_order_map_at_the_day_roll_and_stay_in_the_journal(tmp_path):
    engine = run_days(tmp_path, 3)
    orders = engine.runtime.venues["paper"].orders
    third = format_client_id("s", engine.runtime.client_epoch, 3)
    # the last day's order (expired at its close) is still there; the first two days' are not
    assert list(orders) == [third] and orders[third].status.value == "expired"
    with sqlite3.connect(engine.journal_path) as db:
        journaled = {row[0]: row[1] for row in db.execute("SELECT client_id, status FROM orders")}
    assert journaled == {format_client_id("s", engine.runtime.client_epoch, n): "expired" for n in (1, 2, 3)}
    assert engine.report()["orders"]["expired"] == 3  # the report still counts every day's


def test_the_timeline_keeps_a_bounded_number_of_samples_over_many_days():
    """Twenty broker-doc days sampled every 60 s as the engine does: the samples stay under the
    cap (about five days' worth, not twenty), and still span the whole run, first day to last."""
    tl = Timeline()
    start = 1_795_000_000 * S
    for day in range(20):
        day0 = start + day * DAY_S * S
        tl.phase(day0, "pre_open")
        tl.phase(day0 + 15 * 60 * S, "open")
        for minute in range(400):
            tl.sample(day0 + minute * 60 * S, {"mm": {"realized": Decimal(minute), "unrealized": Decimal(0),
                                                       "positions": {"MEBL": Decimal(day)}}},
                      {"paper:MEBL": Decimal("187.50")})
        tl.phase(day0 + 401 * 60 * S, "closed")
    out = tl.to_json()
    samples = out["samples"]
    assert len(samples) <= MAX_SAMPLES + 1 and MAX_SAMPLES <= 6 * 400
    assert samples[0]["strategies"]["mm"]["positions"]["MEBL"] == "0"  # day 1 is still drawn
    assert samples[-1]["strategies"]["mm"]["positions"]["MEBL"] == "19"  # and the last day
    assert out["dropped"]["samples"] > 0 and out["dropped"]["sample_stride"] >= 4
