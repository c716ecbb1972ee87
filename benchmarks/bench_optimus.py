"""Order round trip through Optimus REST against the sandbox. Not a test: prints key=value figures.

    python benchmarks/bench_optimus.py [--orders N] [--inprocess]

psx_order_rtt_p50_us / _p99_us   adapter.submit() -> the order's ack (OrderUpdate NEW) in the sink:
                                 POST /orders over a kept-alive connection, the sandbox's checks,
                                 the paper matching engine, the signed order.confirmed webhook back
                                 to the adapter's receiver, verification, de-duplication, sink.
psx_order_rest_p50_us / _p99_us  adapter.submit() -> the REST answer ("pending") alone.

By default the sandbox runs in its own process (python -m adapters.optimus.sandbox), as it would
beside a running engine; --inprocess puts both on one event loop. Orders go one at a time, limit
buys far from the (disabled) synthetic market so none fills. The sandbox's per-user trading limit
(document: 100 requests/s) is raised for the run: one order at a time goes out faster than that,
and the limit would measure 3001 refusals instead of round trips.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from restbench import percentile, start_sandbox, stop_sandbox  # noqa: E402

from adapters.optimus.adapter import OptimusAdapter, OptimusOptions  # noqa: E402
from adapters.optimus.sandbox import DOC_INSTRUMENTS, OptimusSandbox, SandboxSettings  # noqa: E402
from engine.clock import WallClock  # noqa: E402
from engine.model import Order, OrderStatus, OrderUpdate, Side  # noqa: E402
from engine.venue import RateLimit  # noqa: E402

USER, PASSWORD, SECRET = "bench", "bench-password-1", "bench-webhook-secret-1"


class TimingSink:
    """Records when each order's ack arrives; ignores the rest."""

    def __init__(self) -> None:
        self.acked: dict[str, int] = {}
        self.waiting: tuple[str, anyio.Event] | None = None

    def on_order_update(self, update: OrderUpdate) -> None:
        if update.status is OrderStatus.NEW:
            self.acked[update.client_id] = time.perf_counter_ns()
            if self.waiting is not None and self.waiting[0] == update.client_id:
                self.waiting[1].set()
        elif update.status is OrderStatus.REJECTED:
            raise SystemExit(f"order {update.client_id} rejected: {update.reject_code} {update.reason}")

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run(orders: int, warmup: int, inprocess: bool) -> dict[str, Any]:
    os.environ.update(OPTIMUS_USERNAME=USER, OPTIMUS_PASSWORD=PASSWORD, OPTIMUS_WEBHOOK_SECRET=SECRET)
    clock = WallClock()
    webhook_port = free_port()
    webhook_url = f"http://127.0.0.1:{webhook_port}/webhook/visionmax"
    process: subprocess.Popen[str] | None = None
    sandbox: OptimusSandbox | None = None
    if inprocess:
        sandbox = OptimusSandbox(SandboxSettings(
            users={USER: PASSWORD}, webhook_secret=SECRET.encode(), webhook_url=webhook_url, market=False,
            trading_per_second=1_000_000, cash=Decimal(10) ** 12,
        ), clock=clock)
        await sandbox.start()
        base_url = sandbox.base_url
    else:
        process, base_url = start_sandbox("optimus", "--webhook-url", webhook_url, "--sessions", "always_open",
                                          "--no-market", "--trading-rate", "1000000", "--cash", "1000000000000")
    sink = TimingSink()
    options = OptimusOptions(base_url=base_url, webhook_listen=f"127.0.0.1:{webhook_port}", poll_interval_s=Decimal(5))
    adapter = OptimusAdapter("psx", options, DOC_INSTRUMENTS, clock, sink)
    # the sandbox runs with --trading-rate 1000000: the adapter paces departures to the same figure,
    # so the round trip measures the wire, not the 100/s budget
    adapter.set_rate_limits((RateLimit("all", 1_000_000, Decimal(1)), RateLimit("queries", 1_000, Decimal(1))))
    rtt: list[int] = []
    rest: list[int] = []
    # every request of the adapter's client leaves through AsyncClient.request (adapters/kit/rest.py):
    # wrapped on the class for this run, so the benchmark needs none of the adapter's private names
    original_request = httpx.AsyncClient.request

    async def timed_request(self: httpx.AsyncClient, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        response = await original_request(self, method, url, *args, **kwargs)
        if url == "/orders":
            rest.append(time.perf_counter_ns())
        return response

    httpx.AsyncClient.request = timed_request  # type: ignore[method-assign]
    try:
        async with anyio.create_task_group() as tg:
            adapter.bind(tg)
            await adapter.connect()
            for i in range(warmup + orders):
                order = Order(f"b-{i}", "bench", "psx", "SYS", Side.BUY, Decimal(1), Decimal("400.00"))
                event = anyio.Event()
                sink.waiting = (order.client_id, event)
                mark = len(rest)
                start = time.perf_counter_ns()
                adapter.submit(order)
                with anyio.fail_after(10):
                    await event.wait()
                    while len(rest) == mark:  # the answer may land after the webhook
                        await anyio.sleep(0)
                if i >= warmup:
                    rtt.append(sink.acked[order.client_id] - start)
                    rest.append(rest.pop() - start)
                else:
                    rest.pop()
            stats = adapter.stats()
            await adapter.close()
            tg.cancel_scope.cancel()
    finally:
        httpx.AsyncClient.request = original_request  # type: ignore[method-assign]
        await stop_sandbox(sandbox, process)
    rest = rest[-orders:]
    return {
        "psx_order_rtt_p50_us": percentile(rtt, 0.50) // 1000,
        "psx_order_rtt_p99_us": percentile(rtt, 0.99) // 1000,
        "psx_order_rtt_mean_us": int(statistics.fmean(rtt)) // 1000,
        "psx_order_rest_p50_us": percentile(rest, 0.50) // 1000,
        "psx_order_rest_p99_us": percentile(rest, 0.99) // 1000,
        "orders": orders,
        "messages_out": stats["messages_out"],
        "messages_in": stats["messages_in"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--inprocess", action="store_true", help="sandbox on the same event loop as the adapter")
    args = parser.parse_args()
    figures = anyio.run(run, args.orders, args.warmup, args.inprocess, backend="asyncio")
    print(f"# {platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs; sandbox {'in process' if args.inprocess else 'in its own process'}")
    for key, value in figures.items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
