"""Optimus test helpers: the Optimus sandbox and a connected Optimus adapter over real HTTP on
127.0.0.1 (port 0 for the REST server and the webhook receiver), the test credentials in the
environment (autouse where a test module imports ``credentials``), and webhook signing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal
from typing import Any

import anyio
import pytest

from adapters.optimus import codec
from adapters.optimus.adapter import OptimusAdapter, OptimusOptions
from adapters.optimus.sandbox import DOC_INSTRUMENTS, OptimusSandbox, SandboxSettings
from engine.clock import Clock, WallClock
from engine.model import Order, OrderStatus, OrderType, Side
from support import until
from support.sinks import RecordingSink
from support.stamped_http import StampedTap
from support.threaded import Served, served_in_thread

D = Decimal
S = OrderStatus

USER = "tester"
PASSWORD = "pw-test-only-1"
SECRET = "whsec-test-only-1"
RESTING = D("170.00")  # inside the band, far below the synthetic market: never fills


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTIMUS_USERNAME", USER)
    monkeypatch.setenv("OPTIMUS_PASSWORD", PASSWORD)
    monkeypatch.setenv("OPTIMUS_WEBHOOK_SECRET", SECRET)


class Harness:
    def __init__(self, sandbox: OptimusSandbox, adapter: OptimusAdapter, sink: RecordingSink,
                 served: Served[OptimusSandbox] | None = None, tap: StampedTap | None = None) -> None:
        self.sandbox = sandbox
        self.adapter = adapter
        self.sink = sink
        self.served = served  # the sandbox's own thread and loop (``threaded``): read it through ``call``
        self.tap = tap  # ``tapped``: the kernel's receive time of each request (tests/support/stamped_http.py)
        self.seq = 0

    def order(self, side: Side = Side.BUY, qty: int = 500, price: Decimal | None = RESTING, symbol: str = "MEBL",
              **kwargs: Any) -> Order:
        self.seq += 1
        order_type = OrderType.MARKET if price is None else OrderType.LIMIT
        order = Order(f"t-{self.seq}", "t", "psx", symbol, side, D(qty), price, order_type, **kwargs)
        self.sink.orders[order.client_id] = order
        return order

    def submit(self, *args: Any, **kwargs: Any) -> Order:
        order = self.order(*args, **kwargs)
        self.adapter.submit(order)
        return order

    def cancel(self, order: Order) -> None:
        order.transition(S.PENDING_CANCEL)
        self.adapter.cancel(order)

    async def liquid(self, symbol: str = "MEBL") -> None:
        engine = self.sandbox.sim.matching_engine(symbol)
        await until(lambda: engine.best_ask is not None and engine.best_bid is not None)


def settings(**overrides: Any) -> SandboxSettings:
    values: dict[str, Any] = dict(users={USER: PASSWORD}, webhook_secret=SECRET.encode(), market_step_s=D("0.02"),
                                  webhook_retry_s=D("0.05"))
    values.update(overrides)
    return SandboxSettings(**values)


@asynccontextmanager
async def venue(
    sandbox_settings: SandboxSettings | None = None, clock: Clock | None = None, sink: Any = None,
    before_connect: Callable[[OptimusAdapter], None] | None = None, threaded: bool = False, tapped: bool = False,
    **options: Any
) -> AsyncIterator[Harness]:
    """The sandbox and a connected adapter. ``threaded``: the sandbox serves from a thread and loop
    of its own (tests/support/threaded.py) with its own wall clock, so a test counting its arrivals
    reads the wire's times more closely; the test then reads it only through
    ``Harness.served.call``. ``tapped``: the adapter's requests pass through a
    :class:`StampedTap`, which stamps each with the kernel's receive time (``Harness.tap``)."""
    clock = clock if clock is not None else WallClock()
    opts: dict[str, Any] = dict(webhook_listen="127.0.0.1:0", poll_interval_s=D("0.25"), request_timeout_s=D("0.5"),
                                connect_timeout_s=D("0.5"), unknown_grace_s=D("0.3"), retry_backoff_s=D("0.01"))
    opts.update(options)
    async with AsyncExitStack() as stack:
        served: Served[OptimusSandbox] | None = None
        if threaded:
            served = await stack.enter_async_context(served_in_thread(
                lambda: OptimusSandbox(sandbox_settings or settings(), clock=WallClock())))
            sandbox = served.it
        else:
            sandbox = await stack.enter_async_context(OptimusSandbox(sandbox_settings or settings(), clock=clock))
        tap = stack.enter_context(StampedTap(sandbox.base_url)) if tapped else None
        sink = sink if sink is not None else RecordingSink()
        base_url = tap.url if tap is not None else sandbox.base_url
        adapter = OptimusAdapter("psx", OptimusOptions(base_url=base_url, **opts), DOC_INSTRUMENTS, clock, sink)
        if before_connect is not None:
            before_connect(adapter)
        async with anyio.create_task_group() as tg:
            adapter.bind(tg)
            await adapter.connect()
            if served is not None:
                served.call(lambda: setattr(sandbox, "webhook_url", adapter.webhook_url))
            else:
                sandbox.webhook_url = adapter.webhook_url
            try:
                yield Harness(sandbox, adapter, sink, served, tap)
            finally:
                await adapter.close()
                tg.cancel_scope.cancel()
    if isinstance(sink, RecordingSink):
        assert sink.errors == [], sink.errors


def signed(body: bytes, secret: str = SECRET, at_ns: int | None = None) -> dict[str, str]:
    at = time.time_ns() if at_ns is None else at_ns
    return {codec.SIGNATURE_HEADER: codec.sign_webhook(secret.encode(), at // 1_000_000, body)}
