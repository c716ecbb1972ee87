"""Tick-to-order, its whole distribution, and what the slow samples had in common. Not a test.

    python benchmarks/tick_to_order.py [--events N] [--runs R]

The workload is ``benchmarks/run.py``'s latency run (the same engine, strategy and events: the
strategy amends its order on every 100th book event, the paper venue answers between ticks); a
sample is the time from a book event entering the runtime to the order handed to the adapter.
Around each sample, outside the timed region, the thread's resource usage is read
(``getrusage(RUSAGE_THREAD)``: context switches, page faults) and the collector's callbacks count
collections, both for the sample itself and for the window since the previous sample, and the
thread's CPU time is read with the wall clock. Prints the distribution (1 µs buckets to 20 µs,
then wider), the percentiles, and how many samples slower than twice the median came with a
context switch, a page fault or a collection, in the sample or just before it; the thread's CPU
time against the wall time tells time spent off the CPU from time spent on it (the CPU time
includes its own two reads, a system call each: about 1 µs more than the wall time).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import run  # noqa: E402

BUCKETS_US = [*range(0, 21), 25, 30, 40, 50, 75, 100, 200, 500, 1000]


@dataclass(frozen=True, slots=True)
class Sample:
    wall_us: float
    cpu_us: float
    switches: int  # context switches during the sample
    switches_before: int  # ... and in the window since the previous sample
    faults: int
    faults_before: int
    collections: int
    collections_before: int
    plain_before_us: float  # the book event just before it, which orders nothing


def usage() -> tuple[int, int]:
    """(context switches, page faults) of this thread so far."""
    r = resource.getrusage(resource.RUSAGE_THREAD)
    return r.ru_nvcsw + r.ru_nivcsw, r.ru_minflt + r.ru_majflt


def measure(events: list, every: int = 100) -> list[Sample]:
    """run.py's latency loop, with the sample's surroundings recorded."""
    engine = run.build(1)
    adapter = engine.adapters["paper"]
    handed: list[tuple[int, int]] = []
    submit, amend = adapter.submit, adapter.amend
    wall, cpu = time.perf_counter_ns, time.thread_time_ns

    def timed_submit(order):
        handed.append((wall(), cpu()))
        submit(order)

    def timed_amend(order, price, qty):
        handed.append((wall(), cpu()))
        amend(order, price, qty)

    adapter.submit, adapter.amend = timed_submit, timed_amend
    collections = [0]

    def counted(phase: str, info: dict) -> None:
        if phase == "start":
            collections[0] += 1

    gc.callbacks.append(counted)
    on_book = engine.runtime.on_book
    clock = engine.clock
    samples: list[Sample] = []
    window_switches, window_faults = usage()
    window_collections = 0
    try:
        plain_us = 0.0
        for n, event in enumerate(events, 1):
            if n % every:  # the strategy orders on every 100th book event only
                if n % every == every - 1:
                    p0 = wall()
                    on_book(event)
                    plain_us = (wall() - p0) / 1000
                else:
                    on_book(event)
                continue
            before = len(handed)
            switches0, faults0 = usage()
            collections0 = collections[0]
            c0 = cpu()
            t0 = wall()
            on_book(event)
            if len(handed) == before:
                continue
            t1, c1 = handed[before]
            switches1, faults1 = usage()
            samples.append(Sample(
                (t1 - t0) / 1000, (c1 - c0) / 1000,
                switches1 - switches0, switches0 - window_switches,
                faults1 - faults0, faults0 - window_faults,
                collections[0] - collections0, collections0 - window_collections, plain_us,
            ))
            clock.set_time(clock.now_ns() + 1_000_000)
            while clock.advance(clock.now_ns()):
                pass
            window_switches, window_faults = usage()
            window_collections = collections[0]
    finally:
        gc.callbacks.remove(counted)
    return samples[1:]  # the first is the order's submit, not an amend: cold by construction


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(samples: list[Sample]) -> None:
    walls = sorted(s.wall_us for s in samples)
    median = statistics.median(walls)
    print(f"samples={len(samples)}")
    for name, q in (("p10", 0.1), ("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)):
        print(f"tick_to_order_{name}_us={percentile(walls, q):.2f}")
    print(f"tick_to_order_max_us={walls[-1]:.2f}")
    print(f"cpu_p50_us={statistics.median(s.cpu_us for s in samples):.2f}")
    print("distribution (wall µs: samples, share):")
    edges = [*BUCKETS_US, float("inf")]
    for low, high in itertools.pairwise(edges):
        count = sum(1 for w in walls if low <= w < high)
        if count:
            label = f"{low}-{high}" if high != float("inf") else f">= {low}"
            print(f"  {label:>10}: {count:6d} {count / len(walls):7.2%} {'#' * max(1, round(60 * count / len(walls)))}")
    slow = [s for s in samples if s.wall_us > 2 * median]
    print(f"slow (> 2x median = {2 * median:.1f} µs): {len(slow)} ({len(slow) / len(samples):.2%})")
    if not slow:
        return
    # is a slow sample slow on its own, or is the machine slow for a while?
    after_slow = [b for a, b in itertools.pairwise(samples) if a.wall_us > 2 * median]
    if after_slow:
        share = sum(1 for s in after_slow if s.wall_us > 2 * median) / len(after_slow)
        print(f"  the sample after a slow one is slow too: {share:.1%} (any sample: {len(slow) / len(samples):.1%})")
    fast = [s for s in samples if s.wall_us <= 2 * median]
    print(f"  the plain book event just before: median {statistics.median(s.plain_before_us for s in slow):.2f} µs "
          f"before a slow sample, {statistics.median(s.plain_before_us for s in fast):.2f} µs before the others")
    causes = {
        "context switch in the sample": lambda s: s.switches > 0,
        "context switch just before it": lambda s: s.switches == 0 and s.switches_before > 0,
        "page fault in the sample": lambda s: s.faults > 0,
        "page fault just before it": lambda s: s.faults == 0 and s.faults_before > 0,
        "collection in the sample": lambda s: s.collections > 0,
        "collection just before it": lambda s: s.collections == 0 and s.collections_before > 0,
    }
    for cause, holds in causes.items():
        hit = sum(1 for s in slow if holds(s))
        everywhere = sum(1 for s in samples if holds(s))
        print(f"  {cause:32}: {hit:5d} of the slow, {everywhere:6d} of all samples")
    none = [s for s in slow if not any(holds(s) for holds in causes.values())]
    print(f"  {'none of these':32}: {len(none):5d}")
    if none:
        off_cpu = sum(1 for s in none if s.wall_us - s.cpu_us > 0.5 * s.wall_us)
        print(f"  of those, more than half the time off the CPU: {off_cpu}; on it (wall ~ cpu): {len(none) - off_cpu}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000, help="book events per run (default 300000)")
    parser.add_argument("--runs", type=int, default=1, help="runs after the warm-up, samples pooled (default 1)")
    args = parser.parse_args()
    events = run.make_events(args.events)
    gc.collect()
    gc.freeze()  # the harness's pre-generated events are not engine state (as in run.py)
    print(f"machine={platform.machine()} cpus={__import__('os').cpu_count()} python={platform.python_version()}")
    measure(events[: len(events) // 10])  # warm-up, as run.py
    samples: list[Sample] = []
    for _ in range(args.runs):
        samples += measure(events)
    report(samples)


if __name__ == "__main__":
    main()
