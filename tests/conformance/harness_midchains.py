"""MidChains order entry: the ``midchains_fix`` adapter (FIX 4.2) against ``adapters/midchains/sandbox.py``
on 127.0.0.1, port 0, clear TCP (001's local-stunnel arrangement; the adapter refuses clear TCP to
anywhere else). The sandbox's ``place`` makes the market; its faults (``drop``, ``reject``,
``duplicate_reports``) make the bad days. In ``literal`` mode the sandbox runs with every extension
off (:meth:`MidChainsExtensions.document_literal`): cancels and replaces are first echoed (MID-4),
only 001's 10 messages/s is enforced.

The SenderCompID is MidChains' only identity on the FIX Logon (no password, VENUES.md 2.5): the
harness gives the sandbox a random one and treats it as the credential no log line may show."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import anyio
from support.sinks import RecordingSink

from adapters.midchains.adapter import MidChainsFixAdapter
from adapters.midchains.options import MidChainsFixOptions
from adapters.midchains.sandbox import MidChainsExtensions, MidChainsSandbox
from conformance.harness import EVERYDAY, LITERAL, HarnessFacts, OrderEntryHarness, RejectCase, extensions_for
from engine.clock import WallClock
from engine.model import Instrument, Order, OrderType, Side, TimeInForce
from engine.rejects import Reject

D = Decimal
LTC = "LTCUSD"
#: the venue's refusal texts (sandbox ER 39=8 text) and the engine code each must arrive as
VENUE_REFUSALS = (
    ("exceed order/sec limit", Reject.RATE_LIMIT_EXCEEDED),
    ("no crypto pos", Reject.POSITION_NOT_HELD),
    ("wash sale prohibited", Reject.SELF_TRADE_PREVENTED),
    ("Exceeds margin limit Exceed total Amount", Reject.INSUFFICIENT_BUYING_POWER),
    ("order rejected", Reject.EXCHANGE_REJECT),
)


def instruments() -> list[Instrument]:
    return [Instrument(LTC, "midchains", tick_size=D("0.01"), lot_size=D("0.0001"))]


class MidChainsOrderHarness(OrderEntryHarness):
    """What both MidChains order-entry harnesses (FIX and WebSocket) share: the sandbox's LTCUSD
    market made with ``place``, GTC orders, and the refusals provoked through the venue itself."""

    venue = "midchains"
    symbol = LTC
    lot = D("0.1")
    tick = D("0.01")
    modes = (EVERYDAY, LITERAL)
    sandbox: MidChainsSandbox

    def check_venue(self) -> None:
        assert self.sandbox.violations() == {"messages": 0, "orders": 0}, self.sandbox.violations()

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

    def venue_refuses(self, text: str) -> None:
        """Make the venue refuse the next order with ``text``."""
        raise NotImplementedError

    def refused(self, text: str) -> Callable[[], Any]:
        """A provocation: the venue refuses the next (passive) buy with ``text``."""
        async def provoke() -> Order:
            self.venue_refuses(text)
            return self.submit(Side.BUY, None, D(100))
        return provoke

    async def send_buy(self, price: Decimal, qty: Decimal) -> Order:
        return self.submit(Side.BUY, qty, price)

    async def market_buy(self) -> Order:
        return self.submit(Side.BUY, None, None, order_type=OrderType.MARKET, tif=TimeInForce.IOC)

    def order(self, *args: Any, **kwargs: Any) -> Order:
        kwargs.setdefault("tif", TimeInForce.GTC)  # 24/7 crypto: no trading day to end an order
        return super().order(*args, **kwargs)


class MidChainsHarness(MidChainsOrderHarness):
    name = "midchains"
    facts = HarnessFacts(market_data="the order-entry port carries no market data (001: W/X come on port 44325, "
                         "the midchains_fix_md adapter)")

    def __init__(self, tmp_path: Any, mode: str = EVERYDAY) -> None:
        super().__init__(tmp_path, mode)
        self.comp_id = "MC" + secrets.token_hex(8).upper()
        self.sandbox = MidChainsSandbox(client_comp_ids=(self.comp_id,),
                                        extensions=extensions_for(MidChainsExtensions, mode))

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.comp_id,)

    def options(self) -> MidChainsFixOptions:
        return MidChainsFixOptions(host="127.0.0.1", port=self.sandbox.port, tls=False, sender_comp_id=self.comp_id,
                                   state_file=self.tmp_path / "midchains-fix.sqlite", heartbeat_s=5,
                                   reconnect_min_s=0.05, reconnect_max_s=0.5)

    async def start_venue(self) -> None:
        await self.stack.enter_async_context(self.sandbox)

    async def connect_adapter(self, sink: RecordingSink) -> MidChainsFixAdapter:
        adapter = MidChainsFixAdapter(self.venue, self.options(), instruments(), WallClock(), sink)
        adapter.set_rate_limits(adapter.rate_limits)
        adapter.bind(self.task_group)
        await adapter.connect()
        return adapter

    async def drop(self) -> None:
        self.sandbox.drop(target="broker")

    async def duplicate_reports(self) -> None:
        self.sandbox.duplicate_reports(None)

    def duplicates_sent(self) -> int:
        return self.sandbox.counters.get("oe.duplicates_sent", 0)

    def venue_refuses(self, text: str) -> None:
        self.sandbox.reject(1, text)

    def reject_cases(self) -> list[RejectCase]:
        cases = [RejectCase(f"ER 39=8 {text!r}", self.refused(text), f"58={text}", int(code))
                 for text, code in VENUE_REFUSALS]
        cases.append(RejectCase("quantity finer than LTCUSD's FractionBase 10000",
                                lambda: self.send_buy(D(100), D("0.00001")), "58=quantity ... finer",
                                int(Reject.INVALID_QUANTITY)))
        cases.append(RejectCase("market buy (refused by the adapter before sending, MID-5)", self.market_buy,
                                "local", int(Reject.ORDER_TYPE_NOT_SUPPORTED)))
        return cases
