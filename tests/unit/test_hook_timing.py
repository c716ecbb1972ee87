"""How the per-event loops time on_book (engine/runtime/dispatch.py): one strategy on a book is
timed call by call; strategies sharing a book are timed as one batch, their histograms sampled, and
a batch over the budget makes the book time each call, so a strategy that keeps overrunning is
still named, counted and stopped. Real engine, book events fed straight into the runtime."""

from __future__ import annotations

import logging
from decimal import Decimal
from itertools import pairwise

from engine.model import BookUpdate, Side
from engine.observe.timing import HOOK_SAMPLE_EVERY

D = Decimal

COUNTER = """\
from engine import hookimpl

seen = []

@hookimpl
def on_book(ctx, book):
    seen.append(book.seq)
"""

# sleeps past a 20 ms budget on every call (a sleep lasts at least what it asks, whatever the load)
SLEEPER = """\
import time
from engine import hookimpl

seen = []

@hookimpl
def on_book(ctx, book):
    seen.append(book.seq)
    time.sleep(0.03)
"""


def feed(engine, events: int, first: int = 1) -> None:
    """``events`` book changes on MEBL: the bid's size moves, the touch stays."""
    for seq in range(first, first + events):
        engine.runtime.on_book(BookUpdate("paper", "MEBL", seq, seq, ((Side.BUY, D("187.00"), D(seq % 7 + 1)),)))


def calls(engine, name: str) -> int:
    engine.runtime.settle_hook_counts()
    return engine.runtime.runners[name].hook_stats["on_book"].calls


def test_one_strategy_on_a_book_counts_every_call(build_engine):
    engine = build_engine({"s": COUNTER}, symbols=("MEBL",))
    feed(engine, 500)
    assert calls(engine, "s") == 500 == len(engine.runtime.runners["s"].loaded.module.seen)
    assert engine.runtime.venues["paper"].entries["MEBL"].book_sample_at == 0  # timed call by call


def test_a_shared_book_samples_the_histogram_and_every_count_only_grows(build_engine):
    engine = build_engine({"a": COUNTER, "b": COUNTER}, symbols=("MEBL",))
    entry = engine.runtime.venues["paper"].entries["MEBL"]
    assert entry.book_sample_at > 0  # two strategies: batched, sampled
    runners = engine.runtime.runners
    seen = []
    for step in range(8):
        feed(engine, 500, first=1 + 500 * step)
        stats = runners["a"].hook_stats["on_book"]
        engine.runtime.settle_hook_counts()
        counts = [count for _, count in stats.buckets()]
        assert counts == sorted(counts) and counts[-1] == stats.calls  # a valid cumulative histogram
        seen.append(counts)
    # Prometheus reads each bucket as a counter: none may fall from one scrape to the next
    assert all(later >= earlier for before, after in pairwise(seen)
               for earlier, later in zip(before, after, strict=True))
    assert len(runners["a"].loaded.module.seen) == 4000  # every event reached both
    # each sampled call counts for the events since the last sample: exact up to the last sample
    assert calls(engine, "a") == calls(engine, "b")
    assert 4000 - 2 * HOOK_SAMPLE_EVERY < calls(engine, "a") <= 4000
    # a change of the book's strategies settles the calls since the last sample: exact again
    engine.runtime.stop_strategy(runners["b"])
    assert calls(engine, "a") == 4000 == calls(engine, "b")
    feed(engine, 100, first=4001)  # alone now: counted call by call
    assert calls(engine, "a") == 4100 and calls(engine, "b") == 4000


def test_a_replay_samples_the_same_events(build_engine):
    """The sampled events are a function of the book's event count, not of a random state another
    runtime in the process could have moved: two runs of the same feed sample alike."""
    counts = []
    for _ in range(2):
        engine = build_engine({"a": COUNTER, "b": COUNTER}, symbols=("MEBL",))
        feed(engine, 777)
        counts.append((calls(engine, "a"), engine.runtime.venues["paper"].entries["MEBL"].book_sample_at))
    assert counts[0] == counts[1] and counts[0][0] <= 777 < counts[0][1]


def test_a_strategy_overrunning_on_a_shared_book_is_named_and_stopped(build_engine, caplog):
    engine = build_engine({"slow": SLEEPER, "fast": COUNTER}, symbols=("MEBL",),
                          risk={"containment": {"hook_budget_ms": 20, "max_hook_overruns": 3}})
    runners = engine.runtime.runners
    slow, fast = runners["slow"], runners["fast"]
    entry = engine.runtime.venues["paper"].entries["MEBL"]
    with caplog.at_level(logging.WARNING, logger="engine"):
        for seq in range(1, 11):
            feed(engine, 1, first=seq)
            if slow.state != "running":
                break
    # each call ran over: the first may have been in a batch (whose call it was is not known),
    # every later one was timed alone; so stopped by the 3rd or 4th call, never later
    assert slow.state == "failed" and slow.hook_overruns == 3
    assert slow.failure == "on_book: hooks ran over the 20 ms budget 3 times"
    assert len(slow.loaded.module.seen) in (3, 4)
    batch_warnings = [r.getMessage() for r in caplog.records if "together took" in r.getMessage()]
    assert len(batch_warnings) == len(slow.loaded.module.seen) - 3
    for message in batch_warnings:
        assert "slow, fast" in message and "on_book of paper:MEBL" in message
    # the other strategy keeps receiving events, alone on the book now: timed call by call
    assert fast.state == "running" and entry.book_subs == (fast,) and entry.book_sample_at == 0
    feed(engine, 5, first=100)
    assert fast.loaded.module.seen[-5:] == [100, 101, 102, 103, 104]


def test_after_the_runs_window_closes_strategies_hear_no_market_data(build_engine):
    """The run's end (or a stop asked for) closes market data: what venues still send before
    shutdown stops them updates the book and reaches no strategy, as a replay of the run ends
    there too; a strategy stopped afterwards does not reopen it."""
    engine = build_engine({"a": COUNTER, "b": COUNTER}, symbols=("MEBL",))
    feed(engine, 40)
    engine.runtime.close_market_data()
    feed(engine, 10, first=41)
    for name in ("a", "b"):
        assert engine.runtime.runners[name].loaded.module.seen == list(range(1, 41))
        assert calls(engine, name) == 40
    assert engine.runtime.venues["paper"].entries["MEBL"].book.seq == 50  # the book still kept up
    engine.runtime.stop_strategy(engine.runtime.runners["b"], cancel=False)  # rebuilds the dispatch
    feed(engine, 5, first=51)
    assert engine.runtime.runners["a"].loaded.module.seen == list(range(1, 41))
