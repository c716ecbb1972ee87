"""Order round trip through the Algo724 REST adapter against its sandbox. Not a test: prints
key=value figures.

    python benchmarks/bench_algo724.py [--orders N] [--inprocess] [--no-fsync]

algo724_order_rtt_p50_us / _p99_us   adapter.submit() -> the order's ack (OrderUpdate NEW) in the
                                     sink: POST /tradeOrder over a kept-alive connection (decimal
                                     strings, the id journal's intent written first), the sandbox's
                                     checks, the simulated venue's acknowledgement, the answer (an
                                     array of one Order) decoded, the tradeOrderId bound and
                                     journalled, the tracker, the sink.
algo724_cancel_rtt_p50_us / _p99_us  adapter.cancel() -> CANCELLED in the sink (POST /tradeOrder/cancel).

By default the sandbox runs in its own process (python -m adapters.algo724.sandbox), as it would
beside a running engine; --inprocess puts both on one event loop. One order at a time, a limit buy
far below the (disabled) synthetic market, then its cancel. The id journal is on (a file in a
temporary folder, fsync'd per write as in a run with the journal;
--no-fsync: ``journal_fsync: false``). ALG-10's assumed 10 requests/s
is raised on both sides for the run: at one order at a time it would measure the pacing.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from restbench import percentile, start_sandbox, stop_sandbox  # noqa: E402

from adapters.algo724.adapter import Algo724Adapter, Algo724Options  # noqa: E402
from adapters.algo724.sandbox import DOC_ACCOUNT, DOC_INSTRUMENTS, AlgoSandbox, SandboxSettings  # noqa: E402
from engine.clock import WallClock  # noqa: E402
from engine.model import Order, OrderStatus, OrderUpdate, Side  # noqa: E402
from engine.venue import RateLimit  # noqa: E402

EMAIL, PASSWORD = "bench@example.com", "bench-password-algo"


class TimingSink:
    """Records when each order's ack and cancel arrive; ignores the rest."""

    def __init__(self) -> None:
        self.at: dict[tuple[str, OrderStatus], int] = {}
        self.waiting: tuple[str, OrderStatus, anyio.Event] | None = None

    def on_order_update(self, update: OrderUpdate) -> None:
        self.at[(update.client_id, update.status)] = time.perf_counter_ns()
        if update.status is OrderStatus.REJECTED:
            raise SystemExit(f"order {update.client_id} rejected: {update.reject_code} {update.reason}")
        if self.waiting is not None and self.waiting[:2] == (update.client_id, update.status):
            self.waiting[2].set()

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


async def _wait(sink: TimingSink, client_id: str, status: OrderStatus) -> None:
    event = anyio.Event()
    sink.waiting = (client_id, status, event)
    if (client_id, status) in sink.at:
        return
    with anyio.fail_after(10):
        await event.wait()


async def run(orders: int, warmup: int, inprocess: bool, fsync: bool) -> dict[str, Any]:
    os.environ.update(ALGO724_EMAIL=EMAIL, ALGO724_PASSWORD=PASSWORD)
    clock = WallClock()
    process: subprocess.Popen[str] | None = None
    sandbox: AlgoSandbox | None = None
    if inprocess:
        sandbox = AlgoSandbox(SandboxSettings(users={EMAIL: PASSWORD}, market=False, rate_per_second=1_000_000,
                                              balances={"USDT": Decimal(10) ** 12}), clock=clock)
        await sandbox.start()
        base_url = sandbox.base_url
    else:
        process, base_url = start_sandbox("algo724", "--no-market", "--rate", "1000000")
    sink = TimingSink()
    options = Algo724Options(base_url=base_url, trading_account_id=DOC_ACCOUNT, poll_interval_s=Decimal(30),
                            journal_fsync=fsync)
    adapter = Algo724Adapter("algo724", options, DOC_INSTRUMENTS, clock, sink)  # type: ignore[arg-type]
    adapter.set_rate_limits((RateLimit("all", 1_000_000, Decimal(1)), RateLimit("queries", 1_000, Decimal(1))))
    placed: list[int] = []
    cancelled: list[int] = []
    with tempfile.TemporaryDirectory() as folder:
        adapter.set_state_path(Path(folder) / "algo724-ids.jsonl")
        try:
            async with anyio.create_task_group() as tg:
                adapter.bind(tg)
                await adapter.connect()
                for i in range(warmup + orders):
                    order = Order(f"b-{i}", "bench", "algo724", "BTC/USDT", Side.BUY, Decimal("0.001"),
                                  Decimal("30000.00"))
                    start = time.perf_counter_ns()
                    adapter.submit(order)
                    await _wait(sink, order.client_id, OrderStatus.NEW)
                    acked = sink.at[(order.client_id, OrderStatus.NEW)]
                    order.transition(OrderStatus.NEW)
                    order.transition(OrderStatus.PENDING_CANCEL)
                    cancel_start = time.perf_counter_ns()
                    adapter.cancel(order)
                    await _wait(sink, order.client_id, OrderStatus.CANCELLED)
                    if i >= warmup:
                        placed.append(acked - start)
                        cancelled.append(sink.at[(order.client_id, OrderStatus.CANCELLED)] - cancel_start)
                stats = adapter.stats()
                await adapter.close()
                tg.cancel_scope.cancel()
        finally:
            await stop_sandbox(sandbox, process)
    return {
        "algo724_order_rtt_p50_us": percentile(placed, 0.50) // 1000,
        "algo724_order_rtt_p99_us": percentile(placed, 0.99) // 1000,
        "algo724_cancel_rtt_p50_us": percentile(cancelled, 0.50) // 1000,
        "algo724_cancel_rtt_p99_us": percentile(cancelled, 0.99) // 1000,
        "orders": orders,
        "messages_out": stats["messages_out"],
        "messages_in": stats["messages_in"],
        "orders_unknown": stats.get("orders_unknown", 0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--inprocess", action="store_true", help="sandbox on the same event loop as the adapter")
    parser.add_argument("--no-fsync", action="store_true", help="the id journal without fsync (journal_fsync: false)")
    args = parser.parse_args()
    figures = anyio.run(run, args.orders, args.warmup, args.inprocess, not args.no_fsync, backend="asyncio")
    print(f"# {platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs; sandbox {'in process' if args.inprocess else 'in its own process'}; "
          f"id journal {'without' if args.no_fsync else 'with'} fsync")
    for key, value in figures.items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
