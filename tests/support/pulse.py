"""Pulse test helpers: a connected Pulse adapter against the Pulse sandbox on 127.0.0.1 (port 0),
with the recording sink standing in for the runtime (:func:`venue`), and the sandbox-side moves the
adapter tests make (a public trade, the methods the venue heard, the tokens it issued)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import anyio
import pytest

from adapters.pulse.adapter import PulseAdapter, PulseOptions
from adapters.pulse.sandbox import PulseSandbox
from engine.clock import WallClock
from engine.model import Instrument, Order, OrderStatus, Side, TimeInForce
from support import PULSE_BTC, until
from support.sinks import RecordingSink
from support.threaded import Served, served_in_thread

D = Decimal
S = OrderStatus

BTC = PULSE_BTC
ETH = "ETH_USD-PERPETUAL"


SECRET_ENV = "PULSE_TEST_CLIENT_SECRET"


SECRET = "pulse-test-secret-9f3c"
os.environ[SECRET_ENV] = SECRET  # what the adapter reads, set once for every test that uses it


def instruments() -> list[Instrument]:
    return [Instrument(BTC, "pulse", tick_size=D("0.5"), lot_size=D(10)),
            Instrument(ETH, "pulse", tick_size=D("0.05"), lot_size=D(1))]


def record_issued_tokens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every access and refresh token the sandbox hands out from now on, to prove none is logged."""
    issued: list[str] = []
    real_auth = PulseSandbox._methods["public/auth"]

    def auth_recording(sandbox: PulseSandbox, conn: Any, params: dict[str, Any]) -> dict[str, Any]:
        result = real_auth(sandbox, conn, params)
        issued.extend((result["access_token"], result["refresh_token"]))
        return result

    monkeypatch.setitem(PulseSandbox._methods, "public/auth", auth_recording)
    return issued


class Venue:
    """A running sandbox and a connected adapter, with the moves the runtime would make."""

    def __init__(self, sandbox: PulseSandbox, adapter: PulseAdapter, sink: RecordingSink,
                 served: Served[PulseSandbox] | None = None) -> None:
        self.sandbox = sandbox
        self.adapter = adapter
        self.sink = sink
        self.served = served  # the sandbox's own thread and loop (``threaded``): read it through ``call``
        self._ids = 0

    def submit(self, side: str, qty: str | int, price: str | int | None, *, tif: TimeInForce = TimeInForce.GTC,
               symbol: str = BTC, post_only: bool = False, mmp: bool = False, **kw: Any) -> Order:
        self._ids += 1
        order = Order(f"mm-{self._ids}", "mm", "pulse", symbol, Side(side), D(qty),
                      None if price is None else D(price), tif=tif, post_only=post_only, mmp=mmp, **kw)
        self.sink.orders[order.client_id] = order
        self.adapter.submit(order)
        return order

    def cancel(self, order: Order) -> None:
        order.transition(S.PENDING_CANCEL)
        self.adapter.cancel(order)

    def amend(self, order: Order, price: str | None = None, qty: str | None = None) -> None:
        new_price = None if price is None else D(price)
        new_qty = None if qty is None else D(qty)
        order.request_replace(new_price, new_qty)
        self.adapter.amend(order, new_price, new_qty)

    async def acked(self, order: Order) -> None:
        await until(lambda: order.status is not S.PENDING_NEW, what=f"{order.client_id} answered")

    def venue_order(self, order: Order) -> Any:
        return self.sandbox.accounts["mm"].orders[order.venue_order_id]

    def book_matches_venue(self, symbol: str = BTC) -> bool:
        book = self.sink.books.get(symbol)
        engine = self.sandbox.books[symbol].engine
        return book is not None and book.bids == engine.depth(Side.BUY) and book.asks == engine.depth(Side.SELL)


@contextlib.asynccontextmanager
async def venue(sandbox: dict[str, Any] | None = None, before: Callable[[PulseAdapter], None] | None = None,
                subscribe: bool = True, threaded: bool = False, **options: Any) -> AsyncIterator[Venue]:
    """The sandbox and a connected adapter. ``threaded``: the sandbox serves from a thread and loop
    of its own (tests/support/threaded.py), so a test counting its arrivals reads the wire's times;
    the test then reads it only through ``Venue.served.call``."""
    settings: dict[str, Any] = {"credentials": {"mm": SECRET, "other": "other-secret"}, "min_heartbeat_s": 0.05}
    settings.update(sandbox or {})
    opts: dict[str, Any] = {"client_id": "mm", "client_secret_env": SECRET_ENV, "heartbeat_s": D(5),
                            "request_timeout_s": D(2), "reconnect_min_s": D("0.05")}
    opts.update(options)
    async with contextlib.AsyncExitStack() as stack:
        served: Served[PulseSandbox] | None = None
        if threaded:
            served = await stack.enter_async_context(served_in_thread(lambda: PulseSandbox(**settings)))
            sb = served.it
        else:
            sb = await stack.enter_async_context(PulseSandbox(**settings))
        sink = RecordingSink()
        adapter = PulseAdapter("pulse", PulseOptions(url=sb.url, **opts), instruments(), WallClock(), sink)
        if before is not None:
            before(adapter)
        async with anyio.create_task_group() as tg:
            adapter.bind(tg)
            await adapter.connect()
            if subscribe:
                adapter.subscribe([BTC])
                await until(lambda: BTC in sink.books, what="first book snapshot")
            try:
                yield Venue(sb, adapter, sink, served)
            finally:
                await adapter.close()
                tg.cancel_scope.cancel()
        assert sink.errors == [], sink.errors
        assert adapter.counters["handler_errors"] == 0


def trade_at(sandbox: PulseSandbox, price: int, qty: int = 10, taker: str = "buy") -> None:
    """One public trade between two background participants."""
    maker = "sell" if taker == "buy" else "buy"
    sandbox.place(BTC, maker, D(qty), D(price), tif=TimeInForce.GTC)
    sandbox.place(BTC, taker, D(qty), D(price))


def public_ids(sandbox: PulseSandbox) -> list[str]:
    return [t["trade_id"] for t in sandbox.books[BTC].last_trades]


def methods_heard(sandbox: PulseSandbox) -> set[str]:
    return {method for _, _, method in sandbox.arrivals}

