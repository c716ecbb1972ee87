"""The derivatives account on the real Runtime with the real Pulse adapter against the Pulse
sandbox on 127.0.0.1 (issue 20 section 4): a sell from flat goes short, reduce-only is held to the
position here and reaches the venue, and the account's positions and equity are reconciled with
private/get_positions and private/get_account_summary: at connect, after a reconnect's
reconciliation, with a difference counted as the anomaly ``account_mismatch`` and the venue's
figure taken."""

from __future__ import annotations

import os
from contextlib import AbstractAsyncContextManager
from decimal import Decimal

import pytest
from support import pulse_runtime, until

from adapters.pulse.adapter import PulseAdapter
from adapters.pulse.sandbox import PulseSandbox
from engine.model import OrderStatus
from engine.rejects import Reject
from engine.risk.derivatives import DerivativesAccount, DerivativesAccountConfig
from engine.runtime import Runtime, StrategyRunner, VenueStatus

pytestmark = pytest.mark.anyio
D = Decimal
S = OrderStatus
BTC = "BTC_USD-PERPETUAL"
SECRET_ENV = "PULSE_DERIVATIVES_SECRET"
SECRET = "derivatives-secret-77a1"
os.environ[SECRET_ENV] = SECRET


def derivatives_runtime() -> AbstractAsyncContextManager[tuple[PulseSandbox, Runtime, PulseAdapter, StrategyRunner]]:
    """One strategy on a Pulse venue with a derivatives account in USD, connected, session open."""
    config = DerivativesAccountConfig.model_validate({"kind": "derivatives", "equity": "1000000"})
    return pulse_runtime(SECRET_ENV, config, currency="USD")


async def test_a_sell_from_flat_goes_short_and_reduce_only_is_held_to_the_position() -> None:
    async with derivatives_runtime() as (sandbox, runtime, _, runner):
        account = runtime.venues["pulse"].account
        assert isinstance(account, DerivativesAccount)
        await runtime.sync_account(runtime.venues["pulse"])  # at connect: the venue agrees
        assert runtime.anomalies["account_mismatch"] == 0 and account.snapshot()["venue"] is not None
        ctx = runner.ctx
        assert ctx.submit(BTC, "buy", 10, D(49000), tif="gtc", reduce_only=True).reject_code == Reject.POSITION_NOT_HELD
        sell = ctx.submit(BTC, "sell", 20, D(50000), tif="gtc")
        await until(lambda: sell.status is S.NEW)
        sandbox.place(BTC, "buy", D(20), D(50000))
        await until(lambda: sell.status is S.FILLED)
        assert ctx.position(BTC) == D(-20) and account.position(BTC) == D(-20)
        too_much = ctx.submit(BTC, "buy", 30, D(49000), tif="gtc", reduce_only=True)
        assert too_much.reject_code == Reject.POSITION_NOT_HELD
        cover = ctx.submit(BTC, "buy", 10, D(50500), tif="gtc", reduce_only=True)
        await until(lambda: cover.status is S.NEW)  # the venue took it as reduce-only: it reduces a short
        sandbox.place(BTC, "sell", D(10), D(50500))
        await until(lambda: cover.status is S.FILLED)
        assert account.position(BTC) == D(-10)
        await runtime.sync_account(runtime.venues["pulse"])  # the venue's figures, fees charged: they agree
        assert runtime.anomalies["account_mismatch"] == 0, runtime.anomaly_samples
        assert account.margin_source == "venue"


async def test_reconciliation_after_a_reconnect_takes_the_venues_position_and_counts_the_mismatch() -> None:
    async with derivatives_runtime() as (sandbox, runtime, _, runner):
        venue = runtime.venues["pulse"]
        account = venue.account
        sell = runner.ctx.submit(BTC, "sell", 10, D(50000), tif="gtc")
        await until(lambda: sell.status is S.NEW)
        sandbox.place(BTC, "buy", D(10), D(50000))
        await until(lambda: sell.status is S.FILLED)
        # the venue moved the position while the engine could not see (a liquidation, another session)
        sandbox.accounts["mm"].positions[BTC].size = D(-40)
        venue.status = VenueStatus.RECONCILING  # what a reconnect does before it reconciles
        await runtime.reconcile(venue)
        assert account.awaiting_confirmation and runtime.anomalies["account_mismatch"] == 0  # seen once
        await runtime.sync_account(venue)  # a periodic sync meanwhile: the difference waits for its confirmation
        assert account.awaiting_confirmation and runtime.anomalies["account_mismatch"] == 0
        await runtime.sync_account(venue, confirming=True)  # the confirming answer (ACCOUNT_CONFIRM_S later)
        assert runtime.anomalies["account_mismatch"] >= 1
        assert any("position -10 here, -40 at the venue" in s for s in runtime.anomaly_samples)
        assert account.position(BTC) == D(-40) and account.external(BTC) == D(-30)
        assert runner.ctx.position(BTC) == D(-10)  # the strategy's own fills are still its position
        assert venue.status == "connected"
