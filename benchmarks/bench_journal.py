"""Journal cost per fill and per order intent: ``python benchmarks/bench_journal.py``.

A fill is one insert (plus two movement rows) and one commit, as the runtime does it before
``on_fill``; an order intent is one queued row, group-committed. Prints ``journal_fill_p50_us=``,
``journal_fill_p99_us=`` for sync=full (the default) and sync=normal, and the amortised cost per
order intent. Runs on a temporary file on the same disk as the working directory.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from engine.journal import Journal
from engine.model import Fill, Liquidity, Order, Side

FILLS = 2000
ORDERS = 20000


def _percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def measure(folder: Path, sync: str) -> None:
    journal = Journal.open(folder / f"bench-{sync}.sqlite", sync=sync)
    journal.begin_run(0, "bench", dt.date(2026, 11, 23))
    day = dt.date(2026, 11, 23)
    order = Order("s-1", "s", "paper", "MEBL", Side.BUY, Decimal(100), Decimal("187.50"))
    took = []
    for i in range(FILLS):
        fill = Fill("paper", "MEBL", "s-1", "1", f"E{i}", Side.BUY, Decimal("187.50"), Decimal(100), i,
                    Liquidity.MAKER)
        started = time.perf_counter_ns()
        journal.add_fill(fill, "s", day)
        journal.order(order)
        journal.commit(i)
        took.append(time.perf_counter_ns() - started)
    print(f"journal_fill_p50_us={_percentile(took, 0.5):.1f} sync={sync}")
    print(f"journal_fill_p99_us={_percentile(took, 0.99):.1f} sync={sync}")
    started = time.perf_counter_ns()
    for _ in range(ORDERS):
        journal.order(order)
    queued = time.perf_counter_ns() - started
    started = time.perf_counter_ns()
    journal.commit(1)
    flushed = time.perf_counter_ns() - started
    # amortised: queueing on the event path plus its share of the group commits
    print(f"journal_order_intent_us={(queued + flushed) / ORDERS / 1000:.2f} sync={sync}")
    journal.close()


def main() -> None:
    with tempfile.TemporaryDirectory(dir=".") as folder:
        for sync in ("full", "normal"):
            measure(Path(folder), sync)


if __name__ == "__main__":
    main()
