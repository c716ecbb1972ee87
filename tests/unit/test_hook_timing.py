"""How the per-event loops time on_book (engine/runtime/dispatch.py): with the hook watch running
(as under ``engine run``) an event's hooks are timed on sampled events only and the watch's thread
holds every other to the budget; without it each call is timed. A strategy over the budget is
named, counted and stopped either way. Real engine, book events fed straight into the runtime."""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal
from itertools import pairwise

import anyio
import pytest
from support import engine_in

from engine.model import BookUpdate, Side, Trade
from engine.observe.timing import HOOK_SAMPLE_EVERY
from engine.runtime import hookwatch
from engine.runtime.hookwatch import OVERRUN_SEEN

D = Decimal

COUNTER = """\
from engine import hookimpl

seen = []

@hookimpl
def on_book(ctx, book):
    seen.append(book.seq)
"""

# holds the loop (no sleep: the GIL stays taken) until the watch has flagged this event, so the call
# is over the budget whatever the load; 10 s at most
SPINNER = """\
import time
from engine import hookimpl

seen = []
flagged = lambda: False  # the test puts in "has the watch flagged the event being dispatched"

@hookimpl
def on_book(ctx, book):
    seen.append(book.seq)
    deadline = time.monotonic() + 10
    while not flagged() and time.monotonic() < deadline:
        pass
"""


def feed(engine, events: int, first: int = 1) -> None:
    """``events`` book changes on MEBL: the bid's size moves, the touch stays."""
    for seq in range(first, first + events):
        engine.runtime.on_book(BookUpdate("paper", "MEBL", seq, seq, ((Side.BUY, D("187.00"), D(seq % 7 + 1)),)))


def calls(engine, name: str) -> int:
    engine.runtime.settle_hook_counts()
    return engine.runtime.runners[name].hook_stats["on_book"].calls


@pytest.fixture
def watched(build_engine):
    """``watched(strategies, **kwargs)``: an engine with its hook watch running, as ``engine run``
    starts it; stopped at the test's end."""
    built = []

    def build(strategies: dict[str, str], **kwargs):
        engine = build_engine(strategies, symbols=("MEBL",), **kwargs)
        engine.runtime.start_hook_watch()
        built.append(engine)
        return engine

    yield build
    for engine in built:
        engine.runtime.stop_hook_watch()


# sampling tests: a stall of a loaded machine (a 50 ms budget could see one) must not flag an event
NEVER_OVER = {"containment": {"hook_budget_ms": 600_000}}


def unsampled_from(entry) -> int:
    """Push the book's next sample far away, so the coming events are held by the watch alone."""
    entry.book_sample_at = 10**9
    return entry.n_book + 1


def test_without_the_watch_every_call_is_timed_and_counted(build_engine):
    engine = build_engine({"s": COUNTER, "t": COUNTER}, symbols=("MEBL",))
    feed(engine, 500)
    assert calls(engine, "s") == 500 == calls(engine, "t") == len(engine.runtime.runners["s"].loaded.module.seen)
    assert engine.runtime.hook_watch is None
    assert engine.runtime.venues["paper"].entries["MEBL"].book_sample_at == 0  # timed call by call


def test_the_watch_samples_one_strategy_and_a_stop_settles_its_count(watched):
    engine = watched({"s": COUNTER}, risk=NEVER_OVER)
    entry = engine.runtime.venues["paper"].entries["MEBL"]
    assert entry.book_sample_at > 0  # one strategy: sampled too, no clock read after its call
    feed(engine, 500)
    assert 500 - 2 * HOOK_SAMPLE_EVERY < calls(engine, "s") <= 500
    engine.runtime.stop_hook_watch()  # every call timed again, and the count settled
    assert entry.book_sample_at == 0 and calls(engine, "s") == 500
    feed(engine, 20, first=501)
    assert calls(engine, "s") == 520 == len(engine.runtime.runners["s"].loaded.module.seen)


def test_a_shared_book_samples_the_histogram_and_every_count_only_grows(watched):
    engine = watched({"a": COUNTER, "b": COUNTER}, risk=NEVER_OVER)
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
    feed(engine, 100, first=4001)  # alone now, still sampled
    assert 4100 - 2 * HOOK_SAMPLE_EVERY < calls(engine, "a") <= 4100 and calls(engine, "b") == 4000


def test_a_replay_samples_the_same_events(watched):
    """The sampled events are a function of the book's event count, not of a random state another
    runtime in the process could have moved: two runs of the same feed sample alike."""
    counts = []
    for _ in range(2):
        engine = watched({"a": COUNTER, "b": COUNTER}, risk=NEVER_OVER)
        feed(engine, 777)
        counts.append((calls(engine, "a"), engine.runtime.venues["paper"].entries["MEBL"].book_sample_at))
    assert counts[0] == counts[1] and counts[0][0] <= 777 < counts[0][1]


def test_the_watch_holds_a_strategy_alone_on_its_book_to_the_budget(watched, caplog):
    """No clock read after the call: the watch's thread sees the overrun, though the hook holds the
    GIL in a Python loop, and the event's end times it and holds the strategy to the budget."""
    engine = watched({"spin": SPINNER}, risk={"containment": {"hook_budget_ms": 20, "max_hook_overruns": 3}})
    runtime = engine.runtime
    runner = runtime.runners["spin"]
    runner.loaded.module.flagged = lambda: runtime.overrun_began == runtime.event_ns != 0
    entry = runtime.venues["paper"].entries["MEBL"]
    first = unsampled_from(entry)
    with caplog.at_level(logging.WARNING, logger="engine"):
        feed(engine, 5, first=first)
    assert runner.state == "failed" and runner.hook_overruns == 3
    assert runner.failure == "on_book: hooks ran over the 20 ms budget 3 times"
    assert runner.loaded.module.seen == [first, first + 1, first + 2]  # stopped at the third, no later
    overruns = [r.getMessage() for r in caplog.records if "over its 20 ms budget" in r.getMessage()]
    assert len(overruns) == 3 and all("strategy spin: on_book took" in m for m in overruns)
    stats = runner.hook_stats["on_book"]
    assert stats.slowest_ns > 20_000_000 and sum(stats.slow) == 3  # each overrun in the histogram
    engine.runtime.settle_hook_counts()
    assert stats.calls == 3  # each counted once (the overruns, timed at their end; no sample among them)
    assert runtime.overrun_began == 0 and not runtime.deferred


def test_the_watch_names_a_strategy_overrunning_on_a_shared_book(watched, caplog):
    """A flagged batch cannot say whose call it was: the book times each call from then on, so the
    strategy that overruns again is named, counted and stopped; the other keeps receiving."""
    engine = watched({"spin": SPINNER, "fast": COUNTER},
                     risk={"containment": {"hook_budget_ms": 20, "max_hook_overruns": 2}})
    runtime = engine.runtime
    spin, fast = runtime.runners["spin"], runtime.runners["fast"]
    entry = runtime.venues["paper"].entries["MEBL"]
    # the batch: until the watch flags it; then, timed each, just over the budget
    spin.loaded.module.flagged = lambda: runtime.overrun_began == runtime.event_ns != 0 or (
        entry.hooks_each and time.perf_counter_ns() - runtime.event_ns > 25_000_000)
    first = unsampled_from(entry)
    with caplog.at_level(logging.WARNING, logger="engine"):
        feed(engine, 4, first=first)
    batch = [r.getMessage() for r in caplog.records if "together took" in r.getMessage()]
    assert len(batch) == 1 and "spin, fast" in batch[0] and "on_book of paper:MEBL" in batch[0]
    assert entry.hooks_each and spin.hook_overruns == 2 and spin.state == "failed"
    assert spin.loaded.module.seen == [first, first + 1, first + 2]  # the batch, then two timed alone
    assert fast.state == "running" and entry.book_subs == (fast,) and entry.book_sample_at == 0
    assert fast.loaded.module.seen[-4:] == [first, first + 1, first + 2, first + 3]


def test_a_stuck_hook_is_reported_while_it_runs(watched, caplog, monkeypatch):
    """A hook that does not return is logged from the watch's thread, with where the loop is."""
    monkeypatch.setattr(hookwatch, "STUCK_REPORT_NS", 100_000_000)
    reported = threading.Event()

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "has been running for" in record.getMessage():
                reported.set()

    engine = watched({"spin": SPINNER}, risk={"containment": {"hook_budget_ms": 20}})
    engine.runtime.runners["spin"].loaded.module.flagged = reported.is_set
    handler = Seen()
    logging.getLogger("engine").addHandler(handler)
    try:
        with caplog.at_level(logging.WARNING, logger="engine"):
            feed(engine, 1, first=unsampled_from(engine.runtime.venues["paper"].entries["MEBL"]))
    finally:
        logging.getLogger("engine").removeHandler(handler)
    assert reported.is_set()
    stuck = next(r.getMessage() for r in caplog.records if "has been running for" in r.getMessage())
    assert stuck.startswith("strategy spin: a hook has been running for ")
    assert "(budget 20 ms), the event loop waits: " in stuck
    assert "spin.py:11 in on_book" in stuck  # the strategy's file, line and hook, from the loop's stack


def test_a_flag_of_an_event_timed_by_the_loop_itself_is_dropped(watched):
    """The watch also flags events the loop times itself (a sampled one, a book timing each call,
    call_hook's): their own timing counted the overrun, so the flag, matching no later event's
    start, is dropped at the next event's end and counts for no one."""
    engine = watched({"s": COUNTER}, risk=NEVER_OVER)
    runtime = engine.runtime
    runtime.overrun_began = 12_345
    runtime.deferred.append(OVERRUN_SEEN)
    feed(engine, 3, first=unsampled_from(runtime.venues["paper"].entries["MEBL"]))  # through end_watched
    assert not runtime.deferred and runtime.runners["s"].hook_overruns == 0
    assert len(runtime.runners["s"].loaded.module.seen) == 3


# raises what no hook may: it goes past the runtime's containment to the caller
ESCAPES = """\
from engine import hookimpl

@hookimpl
def on_book(ctx, book):
    raise KeyboardInterrupt
"""


@pytest.mark.parametrize("watch", [True, False], ids=["watched", "timed-each"])
def test_an_escaping_exception_leaves_no_event_start_behind(build_engine, watch):
    """The next event must not inherit the escaped one's start: tick-to-order would run from it,
    and the watch would flag the idle loop as a hook running ever longer."""
    engine = build_engine({"s": ESCAPES}, symbols=("MEBL",), risk=NEVER_OVER)
    if watch:
        engine.runtime.start_hook_watch()
        unsampled_from(engine.runtime.venues["paper"].entries["MEBL"])
    try:
        with pytest.raises(KeyboardInterrupt):
            feed(engine, 1)
        assert engine.runtime.event_ns == 0
    finally:
        engine.runtime.stop_hook_watch()


# spins past the budget, then raises: the strategy fails inside its overrunning call
SPIN_THEN_RAISE = SPINNER + "    raise RuntimeError('after spinning')\n"


def test_a_flagged_call_whose_strategy_failed_in_it_is_still_in_the_histogram(watched):
    engine = watched({"spin": SPIN_THEN_RAISE}, risk={"containment": {"hook_budget_ms": 20}})
    runtime = engine.runtime
    runner = runtime.runners["spin"]
    runner.loaded.module.flagged = lambda: runtime.overrun_began == runtime.event_ns != 0
    feed(engine, 2, first=unsampled_from(runtime.venues["paper"].entries["MEBL"]))
    assert runner.state == "failed" and runner.hook_overruns == 1 and len(runner.loaded.module.seen) == 1
    stats = runner.hook_stats["on_book"]
    runtime.settle_hook_counts()
    assert stats.calls == 1 and sum(stats.slow) == 1 and stats.slowest_ns > 20_000_000


TRADE_SPINNER = SPINNER.replace("def on_book(ctx, book):\n    seen.append(book.seq)",
                                "def on_trade(ctx, trade):\n    seen.append(trade.ts)")


def test_the_watch_holds_on_trade_to_the_budget_too(watched):
    engine = watched({"spin": TRADE_SPINNER}, risk={"containment": {"hook_budget_ms": 20, "max_hook_overruns": 2}})
    runtime = engine.runtime
    runner = runtime.runners["spin"]
    runner.loaded.module.flagged = lambda: runtime.overrun_began == runtime.event_ns != 0
    entry = runtime.venues["paper"].entries["MEBL"]
    assert entry.trade_sample_at > 0
    entry.trade_sample_at = 10**9
    for seq in range(1, 4):
        runtime.on_trade(Trade("paper", "MEBL", seq, D("187.00"), D(10), Side.BUY, str(seq)))
    assert runner.state == "failed" and runner.hook_overruns == 2 and runner.loaded.module.seen == [1, 2]
    assert runner.failure == "on_trade: hooks ran over the 20 ms budget 2 times"
    runtime.settle_hook_counts()
    assert runner.hook_stats["on_trade"].calls == 2 and sum(runner.hook_stats["on_trade"].slow) == 2


# its order is refused by the engine (the session is closed), and the refusal's callback is slow
SLOW_REFUSAL = """\
import time
from engine import hookimpl

told = []

@hookimpl
def on_book(ctx, book):
    if not told:
        ctx.submit("MEBL", "buy", 10, "187.00")

@hookimpl
def on_order_update(ctx, order):
    told.append(order.status)
    time.sleep(0.05)
"""


def test_a_refusals_callback_is_timed_and_held_to_the_budget(watched):
    """A local refusal's on_order_update is delivered after the hook that caused it: timed and held
    to the budget as every other on_order_update."""
    engine = watched({"s": SLOW_REFUSAL}, risk={"containment": {"hook_budget_ms": 20, "max_hook_overruns": 3}})
    runner = engine.runtime.runners["s"]
    feed(engine, 1)
    assert runner.loaded.module.told == ["rejected"]
    assert runner.hook_overruns == 1 and runner.hook_stats["on_order_update"].calls == 1
    assert runner.hook_stats["on_order_update"].slowest_ns >= 50_000_000


WATCHED = """\
from engine import hookimpl

seen = []
watch = lambda: None  # the test puts in "the runtime's watch"

@hookimpl
def on_book(ctx, book):
    seen.append(watch())
"""


def test_engine_run_holds_hooks_to_the_budget_with_the_watch_and_ends_it(tmp_path):
    """``engine run`` starts the watch before the first market event reaches a strategy and ends
    it with the run; the calls counted while sampled are settled, so the count is exact."""
    engine = engine_in(tmp_path, {"s": WATCHED}, market=True, symbols=("MEBL",))
    runtime = engine.runtime
    module = runtime.runners["s"].loaded.module
    module.watch = lambda: runtime.hook_watch
    anyio.run(engine.run)
    watch = module.seen[0]
    assert len(module.seen) > 100 and watch is not None and all(seen is watch for seen in module.seen)
    assert watch.looks > 0 and not watch.running and runtime.hook_watch is None
    runtime.settle_hook_counts()
    assert runtime.runners["s"].hook_stats["on_book"].calls == len(module.seen)


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
