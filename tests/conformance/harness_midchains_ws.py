"""MidChains over WebSocket: the ``midchains_ws`` adapter (order entry and market data on one
socket) against ``adapters/midchains/sandbox.py``'s WebSocket API on 127.0.0.1, port 0, clear ws://
(allowed only to this machine). The sandbox's ``place`` makes the market; its ``ws`` faults
(``drop``, ``stall``, ``reject``) make the bad days. In ``literal`` mode the sandbox runs with every
extension off (:meth:`MidChainsExtensions.document_literal`): its login answer carries 001's
trailing comma, its ``symbolstatus`` comes only on a change, a rate breach is answered in 001's
Python-dict form.

The password is the credential no log line may show: a random one, given to the adapter in a file."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import anyio
import pytest
from anyio.abc import TaskGroup
from support.sinks import RecordingSink

from adapters.midchains.sandbox import MidChainsExtensions, MidChainsSandbox, WsUser
from adapters.midchains.ws_adapter import MidChainsWsAdapter, MidChainsWsOptions
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
from engine.model import Instrument, Order, OrderType, Side, TimeInForce
from engine.rejects import Reject

D = Decimal
LTC, BTC = "LTCUSD", "BTCUSD"
USER = "cfwsuser"
#: the venue's refusal texts (001's reject messages; ws.reject echoes the addorder with each) and the
#: engine code each must arrive as (adapters.midchains.ws_codec.REJECT_TEXTS)
VENUE_REFUSALS = (
    ("exceed order/sec limit", Reject.RATE_LIMIT_EXCEEDED),
    ("order marketable to existing quote/book", Reject.POST_ONLY_WOULD_TAKE),
    ("no crypto pos", Reject.POSITION_NOT_HELD),
    ("wash sale prohibited", Reject.SELF_TRADE_PREVENTED),
    ("Exceeds margin limit Exceed total Amount", Reject.POSITION_LIMIT_EXCEEDED),
    ("order rejected", Reject.EXCHANGE_REJECT),
)
NO_SEQUENCE = (
    "001's WebSocket book has no sequence number (MID-7): a lost U cannot be noticed by anyone; a lost R is "
    "(an unknown id, or a book crossed for 1 s), which tests/protocol/test_midchains_ws_adapter.py and "
    "tests/unit/test_midchains_ws_book.py check; the sandbox has no way to lose one message"
)


def instruments() -> list[Instrument]:
    return [Instrument(LTC, "midchains", tick_size=D("0.01"), lot_size=D("0.0001")),
            Instrument(BTC, "midchains", tick_size=D("0.01"), lot_size=D("0.00001"))]


class _WsVenue:
    """The sandbox with one WebSocket user, and the adapter options pointing at it."""

    def __init__(self, tmp_path: Any, mode: str) -> None:
        self.password = secrets.token_urlsafe(18)
        self.password_file = tmp_path / "midchains-ws-password"
        self.password_file.write_text(self.password + "\n")
        self.state_file = tmp_path / "midchains-ws.sqlite"
        self.sandbox = MidChainsSandbox(ws_users=(WsUser(USER, self.password),),
                                        extensions=extensions_for(MidChainsExtensions, mode))

    def options(self, **extra: Any) -> MidChainsWsOptions:
        return MidChainsWsOptions(url=self.sandbox.ws_url, userid=USER, password_file=self.password_file,
                                  state_file=self.state_file, reconnect_min_s=0.05, reconnect_max_s=0.5,
                                  request_timeout_s=5, book_quiet_ms=100, **extra)


async def _wait(condition: Callable[[], bool], timeout: float) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.005)


class MidChainsWsHarness(OrderEntryHarness):
    name = "midchains_ws"
    venue = "midchains"
    symbol = LTC
    lot = D("0.1")
    tick = D("0.01")
    facts = HarnessFacts(duplicate_reports="the sandbox's WebSocket API has no duplicate-report fault; fills are "
                         "de-duplicated on traderefno by the kit's OrderTracker (a reconnect's querytrade "
                         "re-delivery is dropped: test_fill_while_away_is_delivered_by_the_reconciliation)")
    modes = (EVERYDAY, LITERAL)

    def __init__(self, tmp_path: Any, mode: str = EVERYDAY) -> None:
        super().__init__(tmp_path, mode)
        self.ws = _WsVenue(tmp_path, mode)
        self.sandbox = self.ws.sandbox
        self._stack = contextlib.AsyncExitStack()
        self.task_group: TaskGroup
        self._adapter: MidChainsWsAdapter | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.ws.password,)

    async def _connect(self, sink: RecordingSink) -> MidChainsWsAdapter:
        adapter = MidChainsWsAdapter(self.venue, self.ws.options(), instruments(), WallClock(), sink)
        adapter.set_rate_limits(adapter.rate_limits)
        adapter.bind(self.task_group)
        await adapter.connect()
        adapter.subscribe([self.symbol])
        return adapter

    async def __aenter__(self) -> MidChainsWsHarness:
        await self._stack.enter_async_context(self.sandbox)
        self.task_group = await self._stack.enter_async_context(anyio.create_task_group())
        self.adapter = self._adapter = await self._connect(self.sink)
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._adapter is not None:
                await self._adapter.close()
            self.task_group.cancel_scope.cancel()
        finally:
            await self._stack.aclose()
        assert self.sandbox.violations() == {"messages": 0, "orders": 0}, self.sandbox.violations()

    async def until(self, condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        await _wait(condition, timeout)

    async def settle(self) -> None:
        await anyio.sleep(0.3)

    def passive_price(self, side: Side = Side.BUY) -> Decimal:
        return D(100) if side is Side.BUY else D(180)

    async def marketable(self, side: Side = Side.BUY) -> tuple[Decimal, Decimal]:
        self.sandbox.place(LTC, side.opposite, D("0.5"), D(140))
        return D(140), D("0.5")

    async def partial(self, side: Side = Side.BUY) -> tuple[Decimal, Decimal]:
        self.sandbox.place(LTC, side.opposite, D("0.2"), D(140))
        return D(140), D("0.5")

    def book_at_venue(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]] | None:
        return self.sandbox.depth(LTC)

    async def drop(self) -> None:
        assert self.sandbox.ws is not None
        self.sandbox.ws.drop()

    async def duplicate_reports(self) -> None:
        pytest.skip(f"midchains_ws: {self.facts.duplicate_reports}")

    def duplicates_sent(self) -> int:
        return 0

    async def restart(self) -> None:
        assert self._adapter is not None
        await self._adapter.close()
        self._adapter = None
        self.adapter = self._adapter = await self._connect(self.new_sink())

    def reject_cases(self) -> list[RejectCase]:
        cases = [RejectCase(f"addorder result {text!r}", self._refused(text), f"result={text}", int(code))
                 for text, code in VENUE_REFUSALS]
        cases.append(RejectCase("a sell beyond the balance (the venue's own risk check)", self._oversell,
                                "result=no crypto pos", int(Reject.POSITION_NOT_HELD)))
        cases.append(RejectCase("quantity finer than LTCUSD's fractionbase 10000 (refused by the adapter)",
                                lambda: self._send(D(100), D("0.00001")), "local", int(Reject.INVALID_QUANTITY)))
        cases.append(RejectCase("market buy (sized by fiat amount at MidChains: refused by the adapter)",
                                self._market_buy, "local", int(Reject.ORDER_TYPE_NOT_SUPPORTED)))
        return cases

    def _refused(self, text: str) -> Callable[[], Any]:
        async def provoke() -> Order:
            assert self.sandbox.ws is not None
            self.sandbox.ws.reject(1, text)
            return self.submit(Side.BUY, None, D(100))
        return provoke

    async def _oversell(self) -> Order:
        return self.submit(Side.SELL, D(100000), D(500))

    async def _send(self, price: Decimal, qty: Decimal) -> Order:
        return self.submit(Side.BUY, qty, price)

    async def _market_buy(self) -> Order:
        return self.submit(Side.BUY, None, None, order_type=OrderType.MARKET, tif=TimeInForce.IOC)

    def order(self, *args: Any, **kwargs: Any) -> Order:
        kwargs.setdefault("tif", TimeInForce.GTC)  # 24/7 crypto: no trading day to end an order
        return super().order(*args, **kwargs)


class MidChainsWsFeedHarness(MarketDataHarness):
    name = "midchains_ws"
    symbol = LTC
    modes = (EVERYDAY, LITERAL)

    def __init__(self, tmp_path: Any, mode: str = EVERYDAY) -> None:
        super().__init__(tmp_path, mode)
        self.ws = _WsVenue(tmp_path, mode)
        self.sandbox = self.ws.sandbox
        self._stack = contextlib.AsyncExitStack()
        self._task_group: TaskGroup
        self._adapter: MidChainsWsAdapter | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.ws.password,)

    async def __aenter__(self) -> MidChainsWsFeedHarness:
        await self._stack.enter_async_context(self.sandbox)
        for side, price, qty in ((Side.BUY, "139.95", "1.5"), (Side.BUY, "139.90", "0.5"), (Side.BUY, "139.90", "2"),
                                 (Side.SELL, "140.05", "1"), (Side.SELL, "140.10", "0.7")):
            self.sandbox.place(LTC, side, D(qty), D(price))
        self._task_group = await self._stack.enter_async_context(anyio.create_task_group())
        # a silent venue is probed after 0.3 s and left after 0.8 s (MID-8's 30 s / 60 s, shortened)
        adapter = self._adapter = MidChainsWsAdapter("midchains", self.ws.options(probe_after_s=0.3, silence_s=0.8),
                                                     instruments(), WallClock(), self.sink)
        self.adapter = adapter
        adapter.set_rate_limits(adapter.rate_limits)
        adapter.bind(self._task_group)
        await adapter.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._adapter is not None:
                await self._adapter.close()
            self._task_group.cancel_scope.cancel()
        finally:
            await self._stack.aclose()
        assert self.sandbox.violations() == {"messages": 0, "orders": 0}, self.sandbox.violations()

    async def until(self, condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        await _wait(condition, timeout)

    def venue_book(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        return self.sandbox.depth(self.symbol)

    def change_book(self, step: int) -> None:
        """A new resting bid below the touch (a U); every third step also a new offer level."""
        self.sandbox.place(LTC, Side.BUY, D("0.25") * (step + 1), D("139.80") - D("0.05") * step)
        if step % 3 == 2:
            self.sandbox.place(LTC, Side.SELL, D("0.3"), D("140.20") + D("0.05") * step)

    def lose_next_change(self) -> None:
        pytest.skip(f"midchains_ws: {NO_SEQUENCE}")

    def stall(self, seconds: float) -> None:
        assert self.sandbox.ws is not None
        self.sandbox.ws.stall(seconds)
