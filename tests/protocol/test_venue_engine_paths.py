"""Where the engine meets a network venue's own machinery, on the real Runtime with the real Pulse
adapter against the Pulse sandbox on 127.0.0.1 (port 0): the kill switch's halt as one mass
cancel, and the engine's MMP and the venue's MMP firing on the same fills as ONE trigger.
"""

from __future__ import annotations

import inspect
import os
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from typing import Any

import anyio
import pytest
from support import pulse_runtime, until

from adapters.pulse.adapter import PulseAdapter
from adapters.pulse.sandbox import PulseSandbox
from engine.model import OrderStatus
from engine.risk.account import AccountConfig
from engine.risk.killswitch import TradingState
from engine.risk.mmp import MmpConfig
from engine.runtime import Runtime, StrategyRunner

pytestmark = pytest.mark.anyio
D = Decimal
S = OrderStatus
BTC = "BTC_USD-PERPETUAL"
SECRET_ENV = "PULSE_ENGINE_PATHS_SECRET"
SECRET = "engine-paths-secret-51b7"
os.environ[SECRET_ENV] = SECRET


def engine_paths_runtime(**kwargs: Any) -> AbstractAsyncContextManager[tuple[PulseSandbox, Runtime, PulseAdapter,
                                                                              StrategyRunner]]:
    """A Runtime with one strategy on a Pulse venue, connected, session open (``pulse_runtime``'s
    ``engine_mmp``, ``venue_mmp``, ``mass_cancel``)."""
    return pulse_runtime(SECRET_ENV, AccountConfig(cash=D(10_000_000), holdings={BTC: D(1000)}), **kwargs)


class Spy:
    """Counts calls to a real method and passes them on."""

    def __init__(self, target: object, name: str) -> None:
        self.calls = 0
        real = getattr(target, name)
        if inspect.iscoroutinefunction(real):
            async def spy(*args, **kwargs):
                self.calls += 1
                return await real(*args, **kwargs)
        else:
            def spy(*args, **kwargs):
                self.calls += 1
                return real(*args, **kwargs)
        setattr(target, name, spy)


@pytest.mark.parametrize(("mass_cancel", "requests"), [(True, (1, 0)), (False, (0, 4))],
                         ids=["one-mass-cancel", "shared-account-order-by-order"])
async def test_a_halt_cancels_every_order_at_once_where_the_venue_can(mass_cancel: bool, requests) -> None:
    """venues.<name>.mass_cancel: false is for a shared account, since a mass cancel takes everyone's orders."""
    async with engine_paths_runtime(mass_cancel=mass_cancel) as (_, runtime, adapter, runner):
        ctx = runner.ctx
        orders = [ctx.submit(BTC, "buy", 10, D(45000) + i, tif="gtc") for i in range(4)]
        await until(lambda: all(o.status is S.NEW for o in orders))
        mass, single = Spy(adapter, "cancel_all"), Spy(adapter, "cancel")
        runtime.manual_trigger(TradingState.HALTED, "operator halt")
        await until(lambda: all(o.status is S.CANCELLED for o in orders))
        assert (mass.calls, single.calls) == requests
        assert runtime.open_order_count() == 0
        assert ctx.submit(BTC, "buy", 10, D(45000), tif="gtc").reject_code is not None  # halted refuses


async def test_engine_and_venue_mmp_on_the_same_fills_are_one_trigger_with_the_stricter_freeze() -> None:
    """Same limits on both sides: the engine counts the fill first and triggers; the venue's
    user.mmp_trigger follows moments later and only extends the freeze (0 = until reset)."""
    limits = MmpConfig(interval=D(5), frozen_time=D(2), quantity_limit=D(20))
    venue = {"btc_usd": {"interval": 5, "frozen_time": 0, "quantity_limit": 20}}  # the venue: until reset
    async with engine_paths_runtime(engine_mmp=limits, venue_mmp=venue) as (sandbox, runtime, _, runner):
        ctx = runner.ctx
        hit = ctx.submit(BTC, "buy", 20, D(49000), mmp=True, tif="gtc")
        quote = ctx.submit(BTC, "buy", 20, D(48990), mmp=True, tif="gtc")
        await until(lambda: hit.status is S.NEW and quote.status is S.NEW)
        sandbox.place(BTC, "sell", D(20), D(49000))
        await until(lambda: hit.status is S.FILLED and quote.status is S.CANCELLED)
        assert runner.mmp is not None
        await until(lambda: runner.mmp.frozen_until_ns is None)  # the venue's word arrived: until reset
        await anyio.sleep(0.2)  # nothing more is coming
        assert runner.mmp_triggers == 1 and runtime.mmp_triggers == 1
        assert runner.mmp.is_frozen() and runner.mmp.last_trigger.reason.startswith("MMP triggered: filled 20")
