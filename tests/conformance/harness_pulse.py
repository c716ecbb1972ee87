"""Pulse: the adapter (JSON-RPC over WebSocket) against ``adapters/pulse/sandbox.py`` on 127.0.0.1,
port 0. The sandbox's background participants (``place``) make the market; its faults (``drop``,
``stall``, ``gap``, ``inject_error``) make the bad days. In ``literal`` mode the sandbox runs with
every extension off (:meth:`PulseExtensions.document_literal`): 004's venue."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar

import anyio
from anyio.abc import TaskGroup
from support.sinks import RecordingSink

from adapters.pulse.adapter import PulseAdapter, PulseOptions
from adapters.pulse.sandbox import PulseExtensions, PulseSandbox
from conformance.harness import (
    EVERYDAY,
    LITERAL,
    HarnessFacts,
    MarketDataHarness,
    OrderEntryHarness,
    RejectCase,
    extensions_for,
)
from engine.clock import WallClock
from engine.model import Instrument, Order, OrderStatus, Side, TimeInForce

D = Decimal
BTC = "BTC_USD-PERPETUAL"
ETH = "ETH_USD-PERPETUAL"
CLIENT_ID = "conformance"
SECRET_ENV = "PULSE_CONFORMANCE_SECRET"
SECRET = "pulse-conformance-secret-5e81d7"
#: every error status VENUES.md 5.12 gives Pulse (1..13), and one the document never names
PULSE_STATUSES = (*range(1, 14), 77)


def instruments() -> list[Instrument]:
    return [Instrument(BTC, "pulse", tick_size=D("0.5"), lot_size=D(10)),
            Instrument(ETH, "pulse", tick_size=D("0.05"), lot_size=D(1))]


class _PulseVenue:
    """The sandbox and the adapter's construction both harnesses share."""

    def __init__(self, heartbeat_s: int, liveness_probe_s: Decimal, mode: str) -> None:
        self.heartbeat_s = heartbeat_s
        self.liveness_probe_s = liveness_probe_s
        self.sandbox = PulseSandbox(credentials={CLIENT_ID: SECRET}, min_heartbeat_s=1,
                                    extensions=extensions_for(PulseExtensions, mode))

    def options(self, post_only: str) -> PulseOptions:
        return PulseOptions(url=self.sandbox.url, client_id=CLIENT_ID, client_secret_env=SECRET_ENV,
                            heartbeat_s=self.heartbeat_s, liveness_probe_s=self.liveness_probe_s,
                            request_timeout_s=D(2), reconnect_min_s=D("0.05"), book_resync_s=D("0.3"),
                            post_only=post_only)

    async def connect(self, sink: RecordingSink, task_group: TaskGroup, post_only: str = "reject") -> PulseAdapter:
        adapter = PulseAdapter("pulse", self.options(post_only), instruments(), WallClock(), sink)
        adapter.bind(task_group)
        await adapter.connect()
        return adapter


class PulseHarness(OrderEntryHarness):
    name = "pulse"
    venue = "pulse"
    symbol = BTC
    lot = D(10)
    tick = D("0.5")
    facts = HarnessFacts()
    modes = (EVERYDAY, LITERAL)
    env: ClassVar[dict[str, str]] = {SECRET_ENV: SECRET}

    def __init__(self, tmp_path: Any, mode: str = EVERYDAY) -> None:
        super().__init__(tmp_path, mode)
        self.pulse = _PulseVenue(heartbeat_s=5, liveness_probe_s=D(5), mode=mode)
        self.sandbox = self.pulse.sandbox
        #: the post-only option the next adapter instance gets (``use_post_only`` changes it)
        self.next_post_only = "reject"

    @property
    def secrets(self) -> tuple[str, ...]:
        return (SECRET,)

    @property
    def post_only(self) -> str:
        """The adapter's ``post_only`` option (default ``reject``: refused locally from the book it
        holds) decides, not the declared capability (``reprice``, what the venue itself does)."""
        assert self.open_adapter is not None
        return self.open_adapter.pulse_options.post_only

    def post_only_modes(self) -> tuple[str, ...]:
        return ("reject", "reprice")

    async def use_post_only(self, mode: str) -> None:
        await self.restart(post_only=mode)
        self.adapter.subscribe([BTC])
        await self.until(lambda: BTC in self.sink.books, "book snapshot after the reconnect")

    async def start_venue(self) -> None:
        await self.stack.enter_async_context(self.sandbox)

    async def connect_adapter(self, sink: RecordingSink) -> PulseAdapter:
        return await self.pulse.connect(sink, self.task_group, self.next_post_only)

    async def __aenter__(self) -> PulseHarness:
        await super().__aenter__()
        self.adapter.subscribe([BTC])
        await self.until(lambda: BTC in self.sink.books, "first book snapshot")
        return self

    async def settle(self) -> None:
        await anyio.sleep(0.2)

    def passive_price(self, side: Side = Side.BUY) -> Decimal:
        return D(40000) if side is Side.BUY else D(60000)

    async def marketable(self, side: Side = Side.BUY) -> tuple[Decimal, Decimal]:
        self.sandbox.place(BTC, side.opposite, D(20), D(50000), tif=TimeInForce.GTC)
        return D(50000), D(20)

    async def partial(self, side: Side = Side.BUY) -> tuple[Decimal, Decimal]:
        self.sandbox.place(BTC, side.opposite, D(10), D(50000), tif=TimeInForce.GTC)
        return D(50000), D(30)

    async def drop(self) -> None:
        self.sandbox.drop()

    async def duplicate_reports(self) -> None:
        """Nothing to switch on: the venue reports each of our trades on ``user.trades`` and again
        inside ``user.changes`` (both subscribed), and the order answer repeats ``user.orders``."""

    def duplicates_sent(self) -> int:
        """The venue's second copies of our trades, as the adapter counted them on arrival (the
        sandbox keeps no count of the copies it sends: each trade goes out on both channels)."""
        return self.adapter.stats()["duplicate_fills"]

    async def restart(self, post_only: str | None = None) -> None:
        self.next_post_only = post_only or self.post_only
        await super().restart()

    def book_at_venue(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        engine = self.sandbox.books[BTC].engine
        return engine.depth(Side.BUY), engine.depth(Side.SELL)

    def reject_cases(self) -> list[RejectCase]:
        cases = [
            RejectCase("price off the 0.5 tick", lambda: self._send(D("40000.3")), "status 7"),
            RejectCase("amount off the 10 USD step", lambda: self._send(D(40000), D(15)), "status 8"),
        ]
        for status in PULSE_STATUSES:
            cases.append(RejectCase(f"private/buy answered with error status {status}",
                                    self._injected(status), f"status {status}"))
        return cases

    async def _send(self, price: Decimal, qty: Decimal | None = None) -> Order:
        return self.submit(Side.BUY, qty, price, tif=TimeInForce.GTC)

    def _injected(self, status: int) -> Callable[[], Any]:
        async def provoke() -> Order:
            self.sandbox.inject_error("private/buy", status)
            return self.submit(Side.BUY, None, D(40000), tif=TimeInForce.GTC)
        return provoke

    def order(self, *args: Any, **kwargs: Any) -> Order:
        kwargs.setdefault("tif", TimeInForce.GTC)  # Pulse has no trading day: good_til_cancelled
        return super().order(*args, **kwargs)

    def venue_status(self, order: Order) -> OrderStatus | None:
        found = [o for o in self.sandbox.accounts[CLIENT_ID].orders.values() if o.label == order.client_id]
        return None if not found else (OrderStatus.NEW if found[0].is_open else OrderStatus.CANCELLED)


class PulseFeedHarness(MarketDataHarness):
    """Pulse market data: ``book.{instrument}.raw`` (snapshot, then changes chained by change id)."""

    name = "pulse"
    symbol = BTC
    modes = (EVERYDAY, LITERAL)
    env: ClassVar[dict[str, str]] = {SECRET_ENV: SECRET}

    def __init__(self, tmp_path: Any, mode: str = EVERYDAY) -> None:
        super().__init__(tmp_path, mode)
        # 004's set_heartbeat interval is whole seconds; the adapter's probe of a silent venue comes
        # sooner, so a stall is seen within a second
        self.pulse = _PulseVenue(heartbeat_s=1, liveness_probe_s=D("0.3"), mode=mode)
        self.sandbox = self.pulse.sandbox
        self._prices = iter(range(48000, 40000, -10))

    @property
    def secrets(self) -> tuple[str, ...]:
        return (SECRET,)

    async def start_venue(self) -> None:
        await self.stack.enter_async_context(self.sandbox)

    async def connect_adapter(self, sink: RecordingSink) -> PulseAdapter:
        return await self.pulse.connect(sink, self.task_group)

    def venue_book(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        engine = self.sandbox.books[BTC].engine
        return engine.depth(Side.BUY), engine.depth(Side.SELL)

    def change_book(self, step: int) -> None:
        self.sandbox.place(BTC, Side.BUY, D(10), D(next(self._prices)), tif=TimeInForce.GTC)

    def lose_next_change(self) -> None:
        self.sandbox.gap(BTC)

    def stall(self, seconds: float) -> None:
        self.sandbox.stall(seconds)
