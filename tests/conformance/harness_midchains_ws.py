"""MidChains over WebSocket: the ``midchains_ws`` adapter (order entry and market data on one
socket) against ``adapters/midchains/sandbox.py``'s WebSocket API on 127.0.0.1, port 0, clear ws://
(allowed only to this machine). The sandbox's ``place`` makes the market; its ``ws`` faults
(``drop``, ``stall``, ``reject``) make the bad days. In ``literal`` mode the sandbox runs with every
extension off (:meth:`MidChainsExtensions.document_literal`): its login answer carries 001's
trailing comma, its ``symbolstatus`` comes only on a change, a rate breach is answered in 001's
Python-dict form.

The password is the credential no log line may show: a random one, given to the adapter in a file."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

import pytest
from anyio.abc import TaskGroup
from support.sinks import RecordingSink

from adapters.midchains.sandbox import MidChainsExtensions, MidChainsSandbox, WsUser
from adapters.midchains.ws_adapter import MidChainsWsAdapter, MidChainsWsOptions
from conformance.harness import EVERYDAY, HarnessFacts, RejectCase, extensions_for
from conformance.harness_midchains import MidChainsOrderHarness
from conformance.harness_midchains_md import MidChainsBookHarness
from engine.clock import WallClock
from engine.model import Instrument, Order, Side
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

    async def connect(self, sink: RecordingSink, task_group: TaskGroup, **extra: Any) -> MidChainsWsAdapter:
        """A connected adapter on this sandbox (``extra``: options beside the harness's own)."""
        adapter = MidChainsWsAdapter("midchains", self.options(**extra), instruments(), WallClock(), sink)
        adapter.set_rate_limits(adapter.rate_limits)
        adapter.bind(task_group)
        await adapter.connect()
        return adapter


class _OnWsVenue:
    """Both harnesses' start (put first among the bases): the sandbox with its WebSocket user,
    whose password is the one credential."""

    def __init__(self, tmp_path: Any, mode: str = EVERYDAY) -> None:
        super().__init__(tmp_path, mode)  # type: ignore[call-arg]
        self.ws = _WsVenue(tmp_path, mode)
        self.sandbox = self.ws.sandbox

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.ws.password,)


class MidChainsWsHarness(_OnWsVenue, MidChainsOrderHarness):
    name = "midchains_ws"
    facts = HarnessFacts(duplicate_reports="the sandbox's WebSocket API has no duplicate-report fault; fills are "
                         "de-duplicated on traderefno by the kit's OrderTracker (a reconnect's querytrade "
                         "re-delivery is dropped: test_fill_while_away_is_delivered_by_the_reconciliation)")

    async def start_venue(self) -> None:
        await self.stack.enter_async_context(self.sandbox)

    async def connect_adapter(self, sink: RecordingSink) -> MidChainsWsAdapter:
        adapter = await self.ws.connect(sink, self.task_group)
        adapter.subscribe([self.symbol])
        return adapter

    def book_at_venue(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]] | None:
        return self.sandbox.depth(LTC)

    async def drop(self) -> None:
        assert self.sandbox.ws is not None
        self.sandbox.ws.drop()

    async def duplicate_reports(self) -> None:
        pytest.skip(f"midchains_ws: {self.facts.duplicate_reports}")

    def duplicates_sent(self) -> int:
        return 0

    def venue_refuses(self, text: str) -> None:
        assert self.sandbox.ws is not None
        self.sandbox.ws.reject(1, text)

    def reject_cases(self) -> list[RejectCase]:
        cases = [RejectCase(f"addorder result {text!r}", self.refused(text), f"result={text}", int(code))
                 for text, code in VENUE_REFUSALS]
        cases.append(RejectCase("a sell beyond the balance (the venue's own risk check)", self._oversell,
                                "result=no crypto pos", int(Reject.POSITION_NOT_HELD)))
        cases.append(RejectCase("quantity finer than LTCUSD's fractionbase 10000 (refused by the adapter)",
                                lambda: self.send_buy(D(100), D("0.00001")), "local", int(Reject.INVALID_QUANTITY)))
        cases.append(RejectCase("market buy (sized by fiat amount at MidChains: refused by the adapter)",
                                self.market_buy, "local", int(Reject.ORDER_TYPE_NOT_SUPPORTED)))
        return cases

    async def _oversell(self) -> Order:
        return self.submit(Side.SELL, D(100000), D(500))


class MidChainsWsFeedHarness(_OnWsVenue, MidChainsBookHarness):
    name = "midchains_ws"

    async def connect_adapter(self, sink: RecordingSink) -> MidChainsWsAdapter:
        # a silent venue is probed after 0.3 s and left after 0.8 s (MID-8's 30 s / 60 s, shortened)
        return await self.ws.connect(sink, self.task_group, probe_after_s=0.3, silence_s=0.8)

    def check_venue(self) -> None:
        assert self.sandbox.violations() == {"messages": 0, "orders": 0}, self.sandbox.violations()

    def lose_next_change(self) -> None:
        pytest.skip(f"midchains_ws: {NO_SEQUENCE}")

    def stall(self, seconds: float) -> None:
        assert self.sandbox.ws is not None
        self.sandbox.ws.stall(seconds)
