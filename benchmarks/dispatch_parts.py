"""Where a book event's time goes on the runtime's per-event path, natively. Not a test:

    python benchmarks/dispatch_parts.py [--events N] [--runs R]

Thread CPU time per event (``time.thread_time_ns``, so other processes' load moves it less than
wall time; the VM's two speeds still do), medians of ``--runs`` alternated runs over vs_nautilus.py's
workload, one strategy with an empty ``on_book``, no orders, no venue stepping. Each line adds one
part to the one before; the differences are what each part costs:

    loop      the harness loop calling a do-nothing function
    apply     ``Book.apply`` instead (book upkeep)
    lookups   the runtime finding the book (venue, then symbol) and counting the event, then apply
    hook      ... and the loop over the book's strategies calling their hook
    timing    ... and the clock read when the event enters (tick-to-order; the hook watch's
              thread holds the budget, engine/runtime/hookwatch.py, as under ``engine run``)
    runtime   ``Runtime.on_book`` itself (adds the sampling switch, about one event in 16 timed
              call by call for the histogram, the drain check)

The hook watch's own thread is not in the thread CPU time: it looks every 12.5 ms (a quarter of
the 50 ms budget), a few microseconds each.

The partial paths are written out here (a measurement, not engine code): they must stay what
``Runtime.on_book`` does in its common (unsampled) branch, minus the named parts.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path
from time import perf_counter_ns
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import run  # noqa: E402
import vs_nautilus  # noqa: E402
import workload  # noqa: E402

EMPTY_STRATEGY = '''from engine import hookimpl

PARAMS = {"every": 1, "away": 1, "size": 1}


@hookimpl
def on_book(ctx, book):
    pass
'''


def lookups(self: Any, update: Any) -> None:
    try:
        entry = self.venues[update.venue].entries[update.symbol]
    except KeyError:
        return
    entry.n_book += 1
    entry.book.apply(update)


def hook(self: Any, update: Any) -> None:
    try:
        entry = self.venues[update.venue].entries[update.symbol]
    except KeyError:
        return
    entry.n_book += 1
    book = entry.book
    book.apply(update)
    for runner in entry.book_subs:
        call = runner.on_book
        try:
            call(runner.ctx, book)
        except Exception:
            pass


def timing(self: Any, update: Any) -> None:
    try:
        entry = self.venues[update.venue].entries[update.symbol]
    except KeyError:
        return
    entry.n_book += 1
    book = entry.book
    book.apply(update)
    outer = self.event_ns
    self.event_ns = perf_counter_ns()
    for runner in entry.book_subs:
        call = runner.on_book
        try:
            call(runner.ctx, book)
        except Exception:
            pass
    self.event_ns = outer


def loop(events: list[Any], on_book: Any) -> None:
    for event in events:
        on_book(event)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000, help="book events per run (default 300000)")
    parser.add_argument("--runs", type=int, default=7, help="alternated runs per part (default 7)")
    args = parser.parse_args(argv)
    events = vs_nautilus.to_book_updates(workload.make_stream(args.events))
    strategy_file = Path(tempfile.mkdtemp(prefix="engine-parts-")) / "empty_strategy.py"
    strategy_file.write_text(EMPTY_STRATEGY)
    strategy = vs_nautilus.STRATEGY.replace(str(HERE / "vs_nautilus_strategy.py"), str(strategy_file)) % 1
    gc.collect()
    gc.freeze()
    parts = ("loop", "apply", "lookups", "hook", "timing", "runtime")
    times: dict[str, list[float]] = {part: [] for part in parts}
    for _ in range(args.runs):
        for part in parts:
            runtime = run.build(1, strategy=strategy).runtime
            target = {
                "loop": lambda event: None,
                "apply": runtime.venues["paper"].entries["MEBL"].book.apply,
                "runtime": runtime.on_book,
            }.get(part) or types.MethodType(globals()[part], runtime)
            started = time.thread_time_ns()
            loop(events, target)
            times[part].append((time.thread_time_ns() - started) / len(events))
    before = 0.0
    for part in parts:
        median = statistics.median(times[part])
        print(f"{part:8} {median:7.1f} ns/event  (+{median - before:6.1f})  runs={[round(t) for t in times[part]]}")
        before = median


if __name__ == "__main__":
    main()
