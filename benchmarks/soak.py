"""Soak: does one engine process keep what it holds bounded over many trading days?

    python benchmarks/soak.py [--days 20] [--config config.yaml] [--trace]

Runs ONE engine process (the default paper config with ``run.days: N``, a journal in a temporary
folder, as fast as possible, the hooks' time budget lifted) and, at each day's close, prints the
process's resident memory (RSS, from /proc/self/statm, after a full garbage collection) and what
the engine still holds (orders in the runtime's map, fill exec ids, timeline samples and fills).
At the end it prints the least-squares slope of RSS over the last half of the days: a bounded
engine's slope goes to ~0 once caches are warm; a leak keeps a steady slope.

``--trace`` also takes tracemalloc snapshots at the close of the second day and of the last one
and prints the 15 source lines whose allocations grew most in between (slow: several times the
run time). Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from engine.app import Engine  # noqa: E402
from engine.config import load_config  # noqa: E402
from engine.model import Phase  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """Resident set size now (not the peak), in MiB."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * PAGE / 2**20


def slope(values: list[float]) -> float:
    """Least-squares slope per step of ``values`` (0 for fewer than two)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
    den = sum((x - mean_x) ** 2 for x in range(n))
    return num / den


def held(engine: Engine) -> dict[str, int]:
    """What the engine keeps in memory that could grow with the days (structural counts)."""
    rt = engine.runtime
    counts = rt.timeline.counts
    return {
        "orders": sum(len(v.orders) for v in rt.venues.values()),
        "exec_ids": sum(len(v.exec_ids) for v in rt.venues.values()),
        "timeline_samples": counts["samples"],
        "timeline_fills": counts["fills"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=20, help="simulated trading days (default 20)")
    parser.add_argument("--config", type=Path, default=HERE.parent / "config.yaml")
    parser.add_argument("--trace", action="store_true", help="diff tracemalloc snapshots (day 2 -> last day)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the run's warnings (rate limits, MMP) are not the point here

    loaded = load_config(args.config)
    cfg = loaded.config
    run = cfg.run.model_copy(update={"days": args.days, "speed": 0})
    # the hook time budget is wall time: on a busy machine one stall would stop a strategy for the
    # rest of the soak and make the days incomparable; memory, not latency, is measured here
    containment = cfg.risk.containment.model_copy(update={"hook_budget_ms": Decimal(60_000)})
    risk = cfg.risk.model_copy(update={"containment": containment})
    loaded = dataclasses.replace(loaded, config=cfg.model_copy(update={"run": run, "risk": risk}))
    if args.trace:
        tracemalloc.start(1)
    rows: list[tuple[int, str, float, dict[str, int]]] = []
    snapshots: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        # the pid file goes beside ``path``: in the temp folder, so `engine halt config.yaml` misses it
        loaded = dataclasses.replace(loaded, path=Path(folder) / "soak.yaml")
        engine = Engine(loaded, fresh_account=True, journal_path=Path(folder) / "soak.journal.sqlite")
        on_change = engine.driver.on_change

        def measured(old: Any, new: Any) -> None:
            on_change(old, new)
            if new.phase is Phase.CLOSED and old.phase is not Phase.CLOSED:
                gc.collect()
                day = len(rows) + 1
                rows.append((day, old.trading_day or "?", rss_mb(), held(engine)))
                print(f"day {day:>3} {rows[-1][1]}  rss_mb={rows[-1][2]:.1f}  "
                      + "  ".join(f"{k}={v}" for k, v in rows[-1][3].items()), flush=True)
                if args.trace and day in (2, args.days):
                    snapshots.append(tracemalloc.take_snapshot())

        engine.driver.on_change = measured
        started = time.perf_counter()
        anyio.run(engine.run, backend="asyncio")
        wall = time.perf_counter() - started
    rss = [r[2] for r in rows]
    half = rss[len(rss) // 2:]
    print(f"days={len(rows)} wall_s={wall:.1f} rss_first_mb={rss[0]:.1f} rss_last_mb={rss[-1]:.1f} "
          f"slope_last_half_mb_per_day={slope(half):.3f} "
          f"python={platform.python_version()} machine={platform.machine()} cpus={os.cpu_count()}")
    if len(snapshots) == 2:
        print("tracemalloc growth, day 2 -> last day (top 15 lines):")
        for stat in snapshots[1].compare_to(snapshots[0], "lineno")[:15]:
            print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+8d} blocks  {stat.traceback[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
