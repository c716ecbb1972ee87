"""Replay speed (issue 26 part 6) and the recorder's cost on the event path. Not a test.

    python benchmarks/bench_replay.py [--events N] [--runs R] [--every 1000,100] [--engine both|ours|nautilus]

One run, both figures. The workload of benchmarks/vs_nautilus.py (benchmarks/workload.py: ten
levels a side around a walking mid, never crossed, one L2 change per event), written once as a
recording (engine/recording/format.py, one event every 10 µs from 10:00 of a PSX day), then:

- **this engine**: ``engine run`` of a config whose venue is ``adapter: replay`` on that recording,
  the strategy of vs_nautilus.py (read the touch on every event; every N events cancel the previous
  order if open and place a limit buy 50 ticks under the bid, which the walk never reaches), the
  whole runtime with its pre-trade gate, the replay venue's queue model and the simulated clock.
  Timed from the first event delivered to the last (the recording's read and the day's empty
  phases are printed apart: ``load_s``); the journal is off, as vs_nautilus.py's engine has none.
- **NautilusTrader**: its ``BacktestEngine`` on the same events as ``OrderBookDelta`` (L2_MBP), the
  same strategy, exactly as vs_nautilus.py runs it (only ``engine.run`` timed).

The engines alternate ``--runs`` times per order rate; medians, every run, the ratio, and the orders
and cancels each side sent (equal, or a warning).

**Recording cost**: a ``RecordingSink`` in front of a sink that does nothing, against that sink
called directly, over the same events: the difference per event is what recording adds to the
event path (one clock read and one deque append; the writer thread is not running meanwhile, its
throughput is measured apart: ``writer``).

Instructions per event, load-independent (callgrind, hash seed 0), as for vs_nautilus.py: for one
side (``--engine ours|nautilus``, which also leaves the recording cost out) take ``--runs 1`` minus
``--runs 0`` (the same build and recording without the run) at two ``--events`` lengths, and divide
the difference of the two by the difference in events.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import vs_nautilus  # noqa: E402
import workload  # noqa: E402

from engine.app import Engine  # noqa: E402
from engine.clock import KARACHI, NS_PER_S  # noqa: E402
from engine.config import load_config  # noqa: E402
from engine.model import BookUpdate  # noqa: E402
from engine.recording.format import Writer  # noqa: E402
from engine.recording.recorder import Recorder  # noqa: E402

DAY = dt.date(2026, 11, 23)
START_NS = int(dt.datetime.combine(DAY, dt.time(10, 0), tzinfo=KARACHI).timestamp()) * NS_PER_S
EVENT_NS = vs_nautilus.EVENT_NS

CONFIG = """
run: {{clock: simulated, start: {day}, days: 1, seed: 1}}
metrics: {{enabled: false}}
journal: {{enabled: false}}
logging: {{level: WARNING}}
instruments:
  - {{symbol: MEBL, venue: paper, tick_size: 0.01, lot_size: 1, previous_close: 187.50, sector: Commercial Banks}}
venues:
  paper:
    adapter: replay
    options: {{path: {path}}}
    account: {{cash: 100000000, holdings: {{MEBL: 1000000}}}}
    rate_limits: [{{scope: all, count: 1000000}}]
risk:
  containment: {{hook_budget_ms: 600000}}
strategies:
  - {{name: vs, file: {strategy}, venue: paper, instruments: [MEBL],
     params: {{every: {every}, away: {away}, size: {size}}}}}
"""


def write_recording(events: list[BookUpdate], folder: Path) -> Path:
    root = folder / "rec"
    writer = Writer(root, run="bench")
    for i, event in enumerate(events):
        writer.add("paper", "MEBL", i, START_NS + i * EVENT_NS, event)
    writer.flush()
    return root


def run_ours(recording: Path, folder: Path, every: int) -> tuple[vs_nautilus.Result, float]:
    """One replay run; the result (events/s between the first and last delivery) and load seconds."""
    path = folder / f"replay-{every}.yaml"
    path.write_text(CONFIG.format(day=DAY, path=recording, strategy=HERE / "vs_nautilus_strategy.py", every=every,
                                  away=vs_nautilus.AWAY_TICKS, size=vs_nautilus.SIZE))
    engine = Engine(load_config(path))
    adapter = engine.adapters["paper"]
    submitted: list[int] = []
    cancelled: list[int] = []
    submit, cancel = adapter.submit, adapter.cancel

    def counted_submit(order: Any) -> None:
        submitted.append(1)
        submit(order)

    def counted_cancel(order: Any) -> None:
        cancelled.append(1)
        cancel(order)

    adapter.submit, adapter.cancel = counted_submit, counted_cancel  # type: ignore[method-assign]
    gc.collect()
    started = time.perf_counter()
    result = anyio.run(engine.run, backend="asyncio")
    total = time.perf_counter() - started
    delivered = adapter.delivered
    assert delivered == len(adapter.events), f"delivered {delivered} of {len(adapter.events)}"
    assert result.report["events"]["book"] == delivered
    began, ended = adapter.delivery_span
    elapsed = ended - began
    return vs_nautilus.Result(delivered, elapsed, len(submitted), len(cancelled)), total - elapsed


def recording_cost(events: list[BookUpdate], repeats: int = 5) -> tuple[float, float]:
    """ns per event the RecordingSink adds (median of ``repeats``), and the writer's events/s."""

    class Nothing:
        def on_book(self, update: BookUpdate) -> None:
            return None

        def on_trade(self, trade: object) -> None:
            return None

    inner = Nothing()
    costs = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats):
            recorder = Recorder(Path(folder) / "cost", time.time_ns)
            sink = recorder.sink(inner, "paper")
            direct = inner.on_book
            through = sink.on_book
            started = time.perf_counter()
            for event in events:
                direct(event)
            bare = time.perf_counter() - started
            started = time.perf_counter()
            for event in events:
                through(event)
            recorded = time.perf_counter() - started
            costs.append((recorded - bare) / len(events) * 1e9)
            recorder.queue.clear()
        recorder = Recorder(Path(folder) / "writer", time.time_ns)
        for event in events:
            recorder.record("paper", "MEBL", event)
        started = time.perf_counter()
        recorder.close()  # drain and write, as the writer thread does
        writer_rate = len(events) / (time.perf_counter() - started)
    return statistics.median(costs), writer_rate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000, help="book events per run (default 300000)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per engine and order rate (default 5)")
    parser.add_argument("--every", default="1000,100", help="order rates: an order every N events (default 1000,100)")
    parser.add_argument("--engine", choices=("both", "ours", "nautilus"), default="both",
                        help="run one side alone, without the recording cost (instruction counts under callgrind); "
                             "default both")
    args = parser.parse_args(argv)
    rates = [int(part) for part in args.every.split(",")]

    stream = workload.make_stream(args.events)
    book = workload.replay(stream)
    assert book.crossed == 0
    ours_events = vs_nautilus.to_book_updates(stream)
    theirs = None if args.engine == "ours" else vs_nautilus.nautilus_side()
    if theirs is None and args.engine == "nautilus":
        raise SystemExit("nautilus_trader is not installed (pip install -e '.[bench]')")
    ours = args.engine != "nautilus"
    their_events = theirs.convert(stream) if theirs else []
    folder = Path(tempfile.mkdtemp(prefix="engine-bench-replay-"))
    recording = write_recording(ours_events, folder)
    gc.collect()
    gc.freeze()

    print(f"machine={platform.machine()} cpus={os.cpu_count()} python={platform.python_version()} "
          f"system={platform.system()} {platform.release()} load={os.getloadavg()[0]:.2f}")
    print(f"nautilus_trader={theirs.version if theirs else 'absent'}")
    print(f"events={len(stream)} levels_mean={book.mean_levels:.1f} runs={args.runs} recording={recording}")
    if args.engine == "both":
        cost_ns, writer_rate = recording_cost(ours_events)
        print(f"recording: {cost_ns:.0f} ns per event on the event path; writer {writer_rate:,.0f} events/s "
              "(its own thread)")
    for every in rates:
        reached = workload.reachable_orders(stream, every, vs_nautilus.AWAY_TICKS)
        assert not reached, f"the walk reaches {reached} orders at every={every}"
        mine: list[vs_nautilus.Result] = []
        loads: list[float] = []
        their: list[vs_nautilus.Result] = []
        for _ in range(args.runs):
            if ours:
                result, load = run_ours(recording, folder, every)
                mine.append(result)
                loads.append(load)
            if theirs:
                their.append(theirs.run(their_events, every))
        if not args.runs:  # --runs 0: everything but the runs (callgrind's baseline)
            continue
        if ours:
            print(f"every={every} replay {vs_nautilus.describe(mine)} load_s={statistics.median(loads):.2f}")
        if theirs:
            print(f"every={every} nautilus {vs_nautilus.describe(their)}")
            if not ours:
                continue
            if (mine[0].submits, mine[0].cancels) != (their[0].submits, their[0].cancels):
                print(f"every={every} WARNING: the engines sent different orders; the workloads differ")
            ratio = statistics.median(r.rate for r in mine) / statistics.median(r.rate for r in their)
            print(f"every={every} ratio={ratio:.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
