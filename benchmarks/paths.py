"""Instruction counts of the runtime's hot paths, for callgrind. Not a test: run it twice under
valgrind with two lengths and take the difference, so start-up cancels:

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python benchmarks/paths.py book 2000      # then 6000: (I(6000) - I(2000)) / 4000 per event

book    book events through book upkeep and dispatch into one strategy (benchmarks/run.py's
        loop: the strategy submits or amends every 100 events, the venue answers every 100)
book10  the same with 10 strategies: (I(book10) - I(book)) / 9 per event is one added strategy
empty   ``book`` with a strategy whose hook does nothing and never orders; ``empty10`` with 10:
        (I(empty10) - I(empty)) / 9 is the runtime's own cost per added strategy (hook call included)
events  generating the book events alone (subtract it from ``book``: the events are made in the run)
gate    one limit buy through a strategy's whole gate (benchmarks/run.py's ``run_gate``)
orders  one accepted ``ctx.submit``, ``ctx.amend`` and ``ctx.cancel``, each through the gate's
        entrance to the paper venue, the venue answering after each
"""

from __future__ import annotations

import gc
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import dispatch_parts  # noqa: E402
import run  # noqa: E402

from engine.model import BookUpdate, Side  # noqa: E402


def settled() -> None:
    """Collect, then freeze what start-up built: a full collection then scans only what the run
    makes, so whether one lands in the shorter run or the longer (their allocation counts differ)
    moves the difference by little (unfrozen, 10-70k instructions per order cycle)."""
    gc.collect()
    gc.freeze()


def book(n: int, strategies: int = 1) -> None:
    engine = run.native_floor(run.build(strategies))
    events = run.make_events(n)
    settled()
    run.drive(engine, events)


def book10(n: int) -> None:
    book(n, 10)


def empty(n: int, strategies: int = 1) -> None:
    """``book`` with strategies whose hook does nothing and who never order: (I(empty10) -
    I(empty)) / 9 is what the runtime itself spends per added strategy per event, the hook call
    included (the strategy's own work and its orders are what ``book10`` adds on top). One
    strategy is timed per call and ten as a sampled batch (engine/runtime/dispatch.py), so the
    figure also holds a ninth of the difference between the two ways of timing."""
    folder = Path(tempfile.mkdtemp(prefix="engine-paths-"))
    (folder / "empty_strategy.py").write_text(dispatch_parts.EMPTY_STRATEGY)
    line = ("  - {{name: s{i}, file: " + str(folder / "empty_strategy.py") +
            ", venue: paper, instruments: [MEBL], params: {{every: 1, away: 1, size: 1}}}}")
    engine = run.native_floor(run.build(strategies, strategy=line))
    events = run.make_events(n)
    settled()
    run.drive(engine, events)


def empty10(n: int) -> None:
    empty(n, 10)


def events(n: int) -> None:
    run.make_events(n)


def gate(n: int) -> None:
    run.run_gate(n)


def orders(n: int) -> None:
    engine = run.build(1)
    clock = engine.clock
    runner = next(iter(engine.runtime.runners.values()))
    engine.runtime.on_book(BookUpdate("paper", "MEBL", 0, 1, ((Side.BUY, Decimal("187.49"), Decimal(500)),
                                                            (Side.SELL, Decimal("187.51"), Decimal(500))),
                                      snapshot=True))
    ctx = runner.ctx
    settled()

    def answer() -> None:
        clock.set_time(clock.now_ns() + 20_000_000)
        while clock.advance(clock.now_ns()):
            pass

    for _ in range(n):
        order = ctx.submit("MEBL", "buy", 100, "187.40")
        answer()
        if not ctx.amend(order, price="187.39"):
            raise SystemExit(f"amend refused: {order!r}")
        answer()
        if not ctx.cancel(order):
            raise SystemExit(f"cancel refused: {order!r}")
        answer()
        if order.status != "cancelled":
            raise SystemExit(f"benchmark order not cancelled: {order!r}")


if __name__ == "__main__":
    paths = {"book": book, "book10": book10, "empty": empty, "empty10": empty10, "events": events, "gate": gate,
             "orders": orders}
    paths[sys.argv[1]](int(sys.argv[2]))
