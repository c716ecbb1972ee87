"""Algo724: the adapter (REST) against ``adapters/algo724/sandbox.py`` on 127.0.0.1, port 0. The
sandbox trades on the simulated venue with its synthetic market (quick steps, so there is a book to
take from within a second); its faults (``inject``) make the bad days. Each adapter instance keeps
its id journal in the test's folder (``set_state_path``), as the engine does beside its journal,
so a restarted adapter finds the orders the first one placed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

import anyio
from support.sinks import RecordingSink

from adapters.algo724.adapter import Algo724Adapter, Algo724Options
from adapters.algo724.sandbox import DOC_INSTRUMENTS, AlgoExtensions, AlgoSandbox, SandboxSettings
from conformance.harness import EVERYDAY, LITERAL, HarnessFacts, OrderEntryHarness, RejectCase, extensions_for
from engine.clock import WallClock
from engine.model import Order, Side
from engine.rejects import Reject

D = Decimal
EMAIL = "conformance@example.com"
PASSWORD = "cnf-Pw-5d1e-q8Zr-77xk"
ENV = {"ALGO724_EMAIL": EMAIL, "ALGO724_PASSWORD": PASSWORD}
RESTING = D("40000.00")  # BTC/USDT far below the synthetic market (50000): never trades
TAKING = D("55000.00")  # above every synthetic offer


class Algo724Harness(OrderEntryHarness):
    name = "algo724"
    venue = "algo724"
    symbol = "BTC/USDT"
    lot = D("0.0001")
    tick = D("0.01")
    facts = HarnessFacts(market_data="market data arrives on the Centrifugo stream (adapters/algo724/streams*.py), "
                                     "which the REST adapter does not carry",
                         duplicate_reports="REST answers carry whole Order objects; the same executions[] on every "
                                           "poll are the duplicates, de-duplicated by executionId in every test")
    modes = (EVERYDAY, LITERAL)
    literal_limits: ClassVar[dict[str, str]] = {}
    env: ClassVar[dict[str, str]] = ENV
    poll_s: ClassVar[float] = 0.01

    def __init__(self, tmp_path: Any, mode: str = EVERYDAY) -> None:
        super().__init__(tmp_path, mode)
        settings = SandboxSettings(users={EMAIL: PASSWORD}, market_step_s=D("0.05"), rate_per_second=50,
                                   balances={"USDT": D(100_000_000), "BTC": D(1000)},
                                   extensions=extensions_for(AlgoExtensions, mode))
        self.sandbox = AlgoSandbox(settings, clock=WallClock())

    @property
    def secrets(self) -> tuple[str, ...]:
        return (PASSWORD,)

    async def start_venue(self) -> None:
        await self.stack.enter_async_context(self.sandbox)

    async def connect_adapter(self, sink: RecordingSink) -> Algo724Adapter:
        options = Algo724Options(base_url=self.sandbox.base_url, trading_account_id=self.sandbox.trading_account_id,
                                 poll_interval_s=D("0.1"), request_timeout_s=D("0.5"), connect_timeout_s=D("0.5"),
                                 unknown_retry_s=D("0.1"), retry_backoff_s=D("0.01"), disconnect_after_failures=2)
        adapter = Algo724Adapter(self.venue, options, DOC_INSTRUMENTS, WallClock(), sink)
        adapter.set_state_path(self.tmp_path / "algo724-ids.jsonl")
        adapter.bind(self.task_group)
        await adapter.connect()
        return adapter

    async def settle(self) -> None:
        await anyio.sleep(0.4)

    def passive_price(self, side: Side = Side.BUY) -> Decimal:
        if side is not Side.BUY:
            raise ValueError("the harness rests buys only")
        return RESTING

    async def marketable(self, side: Side = Side.BUY) -> tuple[Decimal, Decimal]:
        await self.two_sided(self.sandbox.sim.matching_engine(self.symbol))
        qty = self.sandbox.sim.matching_engine(self.symbol).depth(Side.SELL)[0][1]
        return TAKING, min(qty, 10 * self.lot)

    async def partial(self, side: Side = Side.BUY) -> tuple[Decimal, Decimal]:
        await self.two_sided(self.sandbox.sim.matching_engine(self.symbol))
        price, qty = self.sandbox.sim.matching_engine(self.symbol).depth(Side.SELL)[0]
        return price, qty + D(100)  # 20 times the largest background quote (5 BTC)

    async def drop(self) -> None:
        self.sandbox.inject("outage", seconds=1)

    async def duplicate_reports(self) -> None:
        raise NotImplementedError(self.facts.duplicate_reports)

    def duplicates_sent(self) -> int:
        return 0

    def reject_cases(self) -> list[RejectCase]:
        literal = self.mode == LITERAL
        return [
            RejectCase("quantity off the 0.0001 lot", lambda: self._send(qty=D("0.00015")), "400 VALIDATION_ERROR",
                       int(Reject.INVALID_ORDER)),
            RejectCase("unknown instrument", lambda: self._send(symbol="DOGE/USDT"), "400 INVALID_INSTRUMENT",
                       int(Reject.INVALID_ORDER if literal else Reject.INVALID_SYMBOL)),
            RejectCase("more than the free USDT", lambda: self._send(qty=D(50000)),
                       "200 REJECTED" if literal else "422 INSUFFICIENT_BALANCE",
                       int(Reject.EXCHANGE_REJECT if literal else Reject.INSUFFICIENT_BUYING_POWER)),
        ]

    async def _send(self, qty: Decimal | None = None, symbol: str | None = None) -> Order:
        return self.submit(Side.BUY, qty, RESTING, symbol=symbol)
