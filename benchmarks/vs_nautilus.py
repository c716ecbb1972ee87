"""The identical workload through this engine and NautilusTrader, in one process run. Not a test.

    python benchmarks/vs_nautilus.py [--events N] [--runs R] [--every 1000,100] [--fresh-decimals]

Workload (benchmarks/workload.py): one list of L2 level changes of a never-crossed book (a
random walk of the mid, a two-tick spread, ten levels a side that move with the walk and are
deleted when it leaves them), built once and converted once to each engine's objects before any
timing: ``BookUpdate`` for this engine (one Decimal object per number text, as the adapters'
reader hands them out; ``--fresh-decimals`` for a new one per number), ``OrderBookDelta``
(L2_MBP, one delta per event, F_LAST) for NautilusTrader. The strategy is the same on both
sides: on every event read the best bid and ask; every ``every`` events cancel the previous
order if still open and place a limit buy 50 ticks under the best bid, which the walk never
reaches (asserted), so neither venue fills.

This engine: the real loader, context, pre-trade gate and paper venue on the simulated clock, as
benchmarks/run.py builds them (the venue answers every 100 events, 10 µs of simulated time per
event). NautilusTrader: a ``BacktestEngine`` with one venue (L2_MBP book, cash account), the
instrument, the deltas and a ``Strategy``, logging at ERROR, its risk engine on with the order
rate raised (as this engine's venue budget is). Only the run is timed: our loop over the events;
Nautilus's ``engine.run(streaming=True)`` (its end-of-run statistics are left out; its start, ~20
ms on a 2 vCPU VM, stays in: under 1% of a 300,000-event run). The engines alternate, ``--runs``
each per order rate; the median and every run are printed, the ratio of the medians, and the
orders and cancels each strategy sent (equal, or the script warns that the workloads differ).

The floor: the same ``BookUpdate`` list through a bare loop that applies every level change to a
dict per side (set, or delete at zero) and does nothing else: the book upkeep any Python engine
must do, without a touch, a strategy, a clock or a venue. It runs between the engines' runs and
prints its median and this engine's median as a share of it (``floor_share``).

Instructions per event, load-independent (callgrind, hash seed 0): for each side
(``--engine ours|nautilus``, with ``--callgrind``: no floor runs, and our hooks bucketed only over
the budget as natively) take ``--runs 1`` minus ``--runs 0`` (the same build without the run) at
two ``--events`` lengths, and divide the difference of the two by the difference in events.

Without nautilus_trader installed (``pip install -e '.[bench]'``) it says so and runs our side alone.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import run  # noqa: E402
import workload  # noqa: E402
from workload import Change  # noqa: E402

from engine.clock import SimClock  # noqa: E402
from engine.model import BookUpdate, Side  # noqa: E402

EVENT_NS = 10_000  # simulated time between events, both engines
AWAY_TICKS = 50  # twice the furthest the walk falls under a bid in 1,000 events: no order fills
SIZE = 100
TICK = Decimal("0.01")
STRATEGY = (
    "  - {{name: vs{i}, file: " + str(HERE / "vs_nautilus_strategy.py") + ", venue: paper, instruments: [MEBL], "
    "params: {{every: %d, away: " + str(AWAY_TICKS) + ", size: " + str(SIZE) + "}}}}"
)


class Result:
    """One timed run: events per second of wall time, and what the strategy sent (the same on both
    sides, or the workloads differ)."""

    def __init__(self, events: int, seconds: float, submits: int, cancels: int) -> None:
        self.rate = events / seconds
        self.submits = submits
        self.cancels = cancels


# ---- this engine ----------------------------------------------------------------------------
def to_book_updates(stream: list[Change], fresh: bool = False) -> list[BookUpdate]:
    """The stream as an adapter hands it to the runtime: one ``BookUpdate`` per change, each number
    the one Decimal object per number text that the adapters' reader hands out (adapters/kit/
    wirejson.py remembers them, so a book keyed by price hashes each price once, not per event;
    hashing a new Decimal costs more than making it). ``fresh``: a new Decimal per number instead,
    as no adapter of ours delivers them (``--fresh-decimals``, to see what that costs)."""
    numbers: dict[int, Decimal] = {}

    def number(value: int, scale: Decimal) -> Decimal:
        if fresh:
            return Decimal(value) * scale
        key = value if scale is TICK else -value - 1  # prices and sizes apart
        known = numbers.get(key)
        if known is None:
            known = numbers[key] = Decimal(value) * scale
        return known

    one = Decimal(1)
    return [
        BookUpdate("paper", "MEBL", (seq + 1) * EVENT_NS, seq + 1,
                   ((Side.BUY if c.is_bid else Side.SELL, number(c.ticks, TICK), number(c.size, one)),))
        for seq, c in enumerate(stream)
    ]


def run_ours(events: list[BookUpdate], every: int, callgrind: bool = False) -> Result:
    """One timed run of a fresh engine (run.py's ``build``, this script's strategy): the loop of
    run.py's ``run_throughput``, counting the orders and cancels handed to the venue.
    ``callgrind``: hooks looked at closer only over the budget, as natively (``run.native_floor``)."""
    engine = run.build(1, strategy=STRATEGY % every)
    if callgrind:
        run.native_floor(engine)
    on_book = engine.runtime.on_book
    clock: SimClock = engine.clock  # type: ignore[assignment]
    advance = clock.advance
    submitted: list[int] = []
    cancelled: list[int] = []
    adapter = engine.adapters["paper"]
    submit, cancel = adapter.submit, adapter.cancel

    def counted_submit(order: Any) -> None:  # one list append per order: noise next to the order's path
        submitted.append(1)
        submit(order)

    def counted_cancel(order: Any) -> None:
        cancelled.append(1)
        cancel(order)

    adapter.submit, adapter.cancel = counted_submit, counted_cancel
    gc.collect()
    start = time.perf_counter()
    for i, event in enumerate(events):
        on_book(event)
        if not i % 100:  # the venue answers between ticks, as in benchmarks/run.py
            clock.set_time(clock.now_ns() + 100 * EVENT_NS)
            while advance(clock.now_ns()):
                pass
    elapsed = time.perf_counter() - start
    return Result(len(events), elapsed, len(submitted), len(cancelled))


# ---- NautilusTrader -------------------------------------------------------------------------
class Nautilus(NamedTuple):
    """NautilusTrader's side: its version, the stream as its objects, one timed run."""

    version: str
    convert: Callable[[list[Change]], list[Any]]
    run: Callable[[list[Any], int], Result]


def nautilus_side() -> Nautilus | None:
    """NautilusTrader's side, or None when it is not installed (imported only here: optional)."""
    try:
        import nautilus_trader
        from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
        from nautilus_trader.config import LoggingConfig, RiskEngineConfig, StrategyConfig
        from nautilus_trader.model.data import BookOrder, OrderBookDelta
        from nautilus_trader.model.enums import AccountType, BookAction, BookType, OmsType, OrderSide, RecordFlag
        from nautilus_trader.model.identifiers import InstrumentId, Venue
        from nautilus_trader.model.objects import Money, Price, Quantity
        from nautilus_trader.test_kit.providers import TestInstrumentProvider
        from nautilus_trader.trading.strategy import Strategy
    except ImportError:
        return None

    instrument = TestInstrumentProvider.equity("MEBL", "PSX")
    instrument_id: InstrumentId = instrument.id
    actions = {workload.ADD: BookAction.ADD, workload.UPDATE: BookAction.UPDATE, workload.DELETE: BookAction.DELETE}
    last = RecordFlag.F_LAST

    def convert(stream: list[Change]) -> list[Any]:
        return [
            OrderBookDelta(
                instrument_id, actions[c.action],
                BookOrder(OrderSide.BUY if c.is_bid else OrderSide.SELL, Price.from_str(str(Decimal(c.ticks) * TICK)),
                          Quantity(c.size, 0), 0),
                last, seq + 1, (seq + 1) * EVENT_NS, (seq + 1) * EVENT_NS,
            )
            for seq, c in enumerate(stream)
        ]

    class TouchConfig(StrategyConfig, frozen=True):
        every: int = 1000

    class Touch(Strategy):
        """The same logic as benchmarks/vs_nautilus_strategy.py."""

        def __init__(self, config: TouchConfig) -> None:
            super().__init__(config)
            self.every = config.every
            self.n = 0
            self.previous: Any = None
            self.submits = 0
            self.cancels = 0
            self.step = instrument.price_increment.raw * AWAY_TICKS
            self.size = Quantity(SIZE, 0)

        def on_start(self) -> None:
            self.subscribe_order_book_deltas(instrument_id, BookType.L2_MBP)

        def on_order_book_deltas(self, deltas: Any) -> None:
            book = self.cache.order_book(instrument_id)
            bid, ask = book.best_bid_price(), book.best_ask_price()
            self.n += 1
            if self.n % self.every or bid is None or ask is None:
                return
            previous = self.previous
            if previous is not None and previous.is_open:
                self.cancel_order(previous)
                self.cancels += 1
            order = self.order_factory.limit(instrument_id, OrderSide.BUY, self.size,
                                             Price.from_raw(bid.raw - self.step, 2))
            self.submit_order(order)
            self.submits += 1
            self.previous = order

    def run_theirs(deltas: list[Any], every: int) -> Result:
        # its risk engine stays on with its order rate raised, as this engine's venue budget is in run.py
        risk = RiskEngineConfig(max_order_submit_rate="1000000/00:00:01", max_order_modify_rate="1000000/00:00:01")
        engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR"), risk_engine=risk))
        engine.add_venue(Venue("PSX"), OmsType.NETTING, AccountType.CASH,
                         starting_balances=[Money(100_000_000, instrument.quote_currency)], book_type=BookType.L2_MBP)
        engine.add_instrument(instrument)
        engine.add_data(list(deltas))
        strategy = Touch(TouchConfig(every=every))
        engine.add_strategy(strategy)
        gc.collect()
        start = time.perf_counter()
        engine.run(streaming=True)  # streaming: its end-of-run statistics are left out of the time (end below)
        elapsed = time.perf_counter() - start
        engine.end()
        result = Result(len(deltas), elapsed, strategy.submits, strategy.cancels)
        refused = [o for o in engine.cache.orders() if o.status_string() in ("DENIED", "REJECTED")]
        if refused:
            raise SystemExit(f"NautilusTrader refused {len(refused)} benchmark orders: {refused[0]}")
        engine.dispose()
        return result

    return Nautilus(nautilus_trader.__version__, convert, run_theirs)


# ---- the comparison -------------------------------------------------------------------------
def run_floor(events: list[BookUpdate]) -> float:
    """Events per second of the bare loop (see the module docstring): the ceiling for this engine."""
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    buy = Side.BUY
    started = time.perf_counter()
    for event in events:
        for side, price, qty in event.changes:
            levels = bids if side is buy else asks
            if qty:
                levels[price] = qty
            else:
                levels.pop(price, None)
    return len(events) / (time.perf_counter() - started)


def describe(results: list[Result]) -> str:
    rates = [r.rate for r in results]
    runs = " / ".join(f"{rate:,.0f}" for rate in rates)
    sent = f"orders={results[0].submits} cancels={results[0].cancels}"
    return f"median={statistics.median(rates):,.0f} runs={runs} {sent}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000, help="book events per run (default 300000)")
    parser.add_argument("--runs", type=int, default=5,
                        help="timed runs per engine and order rate (default 5; 0: build only)")
    parser.add_argument("--every", default="1000,100", help="order rates: an order every N events (default 1000,100)")
    parser.add_argument("--fresh-decimals", action="store_true",
                        help="a new Decimal per price and size in our events, as no adapter of ours delivers them")
    parser.add_argument("--engine", choices=("both", "ours", "nautilus"), default="both",
                        help="run one side alone (instruction counts under callgrind); default both")
    parser.add_argument("--callgrind", action="store_true",
                        help="for instruction counts: no floor runs, and our hook calls bucketed only over the "
                             "budget, as in a native run (valgrind's slowdown puts every call over the 4.1 us "
                             "histogram floor)")
    args = parser.parse_args(argv)
    rates = [int(part) for part in args.every.split(",")]

    stream = workload.make_stream(args.events)
    book = workload.replay(stream)
    assert book.crossed == 0, f"the workload's book is crossed after {book.crossed} events"
    theirs = None if args.engine == "ours" else nautilus_side()
    if theirs is None and args.engine == "nautilus":
        raise SystemExit("nautilus_trader is not installed (pip install -e '.[bench]')")
    ours = args.engine != "nautilus"
    ours_events = to_book_updates(stream, fresh=args.fresh_decimals) if ours else []
    their_events = theirs.convert(stream) if theirs else []
    # the event lists are the harness's input: keep the collector from rescanning them (as run.py)
    gc.collect()
    gc.freeze()

    print(f"machine={platform.machine()} cpus={os.cpu_count()} python={platform.python_version()} "
          f"system={platform.system()} {platform.release()}")
    print(f"nautilus_trader={theirs.version if theirs else 'absent'}")
    print(f"events={len(stream)} levels_mean={book.mean_levels:.1f} levels_max={book.max_levels} crossed=0 "
          f"runs={args.runs}")
    if theirs is None and args.engine == "both":
        print("nautilus_trader is not installed (pip install -e '.[bench]'): running this engine alone")
    for every in rates:
        reached = workload.reachable_orders(stream, every, AWAY_TICKS)
        assert not reached, f"the walk reaches {reached} orders at every={every}: raise AWAY_TICKS"
        mine: list[Result] = []
        their: list[Result] = []
        floors: list[float] = []
        for _ in range(args.runs):  # alternate, so a slow stretch of the machine hits both
            if ours:
                if not args.callgrind:
                    floors.append(run_floor(ours_events))
                mine.append(run_ours(ours_events, every, args.callgrind))
            if theirs:
                their.append(theirs.run(their_events, every))
        if not args.runs:  # --runs 0: everything but the runs (callgrind's baseline)
            continue
        if ours:
            print(f"every={every} engine {describe(mine)}")
            if floors:
                floor = statistics.median(floors)
                share = statistics.median(r.rate for r in mine) / floor
                print(f"every={every} floor median={floor:,.0f} floor_share={share:.3f}")
        if theirs:
            print(f"every={every} nautilus {describe(their)}")
            if not ours:
                continue
            if (mine[0].submits, mine[0].cancels) != (their[0].submits, their[0].cancels):
                print(f"every={every} WARNING: the engines sent different orders; the workloads differ")
            ratio = statistics.median(r.rate for r in mine) / statistics.median(r.rate for r in their)
            print(f"every={every} ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
