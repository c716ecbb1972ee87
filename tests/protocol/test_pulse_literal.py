"""Pulse against the document's venue (issue 20): the sandbox's document-literal mode, with every
extension off (:class:`adapters.pulse.sandbox.PulseExtensions`), answers exactly 004's shapes; the
adapter's defects it exposed (mass cancel settles nothing, public/test, trades without the channel,
fractional heartbeats, an untested request budget) are tested here against it."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from pydantic import ValidationError
from support import REPO, until
from support.pulse import BTC, methods_heard, public_ids, trade_at, venue
from support.pulse_rpc import Client, place, sandbox
from websockets.asyncio.client import connect

from adapters.pulse.adapter import PulseOptions
from adapters.pulse.sandbox import (
    TRADE_CONFIRMATION_FIELDS,
    TRADE_FIELDS,
    PulseExtensions,
    _pulse_arguments,
)
from adapters.sim.extensions import extensions_from_args
from engine.model import OrderStatus, TimeInForce

pytestmark = pytest.mark.anyio

D = Decimal
S = OrderStatus
LITERAL = PulseExtensions.document_literal()

# ---- the settings ---------------------------------------------------------------------------------


def test_everyday_is_all_on_and_literal_all_off() -> None:
    assert PulseExtensions.everyday() == PulseExtensions()
    assert all(getattr(PulseExtensions.everyday(), name) for name in PulseExtensions.names())
    assert LITERAL.off() == PulseExtensions.names()
    rest = tuple(n for n in PulseExtensions.names() if n != "trades_channel")
    assert LITERAL.changed(on=["trades_channel"]).off() == rest and LITERAL.literal
    assert not LITERAL.changed(on=["trades_channel"]).literal
    with pytest.raises(ValueError, match=r"unknown extension no_such; known: .*trades_channel"):
        LITERAL.changed(on=["no_such"])


def test_every_extension_names_its_gap() -> None:
    """README's table and the code agree because each switch's comment names its gap."""
    source = Path(__file__).resolve().parents[2].joinpath("adapters/pulse/sandbox.py").read_text()
    for name in PulseExtensions.names():
        head, _, _ = source.partition(f"    {name}: bool = True")
        comment = head.rsplit("\n\n", 1)[-1]
        assert "PUL-" in comment or "VENUES.md 5." in comment, name


def test_command_line_switches() -> None:
    parser = argparse.ArgumentParser()
    _pulse_arguments(parser)
    assert extensions_from_args(PulseExtensions, parser.parse_args([])) == PulseExtensions.everyday()
    assert extensions_from_args(PulseExtensions, parser.parse_args(["--document-literal"])) == LITERAL
    args = parser.parse_args(["--document-literal", "--extension", "public_test", "--no-extension", "public_test",
                              "--extension", "trades_channel"])
    assert extensions_from_args(PulseExtensions, args) == LITERAL.changed(on=["trades_channel"])
    args = parser.parse_args(["--no-extension", "heartbeat_messages"])
    assert extensions_from_args(PulseExtensions, args).off() == ("heartbeat_messages",)
    with pytest.raises(SystemExit):
        parser.parse_args(["--extension", "nonsense"])


# ---- the literal venue's shapes -------------------------------------------------------------------


async def test_literal_venue_answers_the_documents_shapes() -> None:
    async with sandbox(extensions=LITERAL) as sb, connect(sb.url) as ws:
        client = Client(ws)
        await client.auth()
        # 004: subscribe answers "string"; no trades channel, no snapshot or current value sent
        assert await client.result("public/subscribe", {"channels": [f"book.{BTC}.raw", f"trades.{BTC}.raw",
                                                                     f"quote.{BTC}"]}) == "string"
        assert await client.result("private/subscribe", {"channels": ["heartbeat_trade"]}) == "string"
        await client.drain()
        assert client.notes == []
        assert next(iter(sb.conns)).subs == {f"book.{BTC}.raw", f"quote.{BTC}", "heartbeat_trade"}
        # methods 004 lacks
        for method in ("public/test", "public/unsubscribe", "private/unsubscribe"):
            assert (await client.call(method, {"channels": []}))["error"]["code"] == 1, method
        # set_heartbeat: "interval integer"
        assert (await client.call("public/set_heartbeat", {"interval": D("1.5")}))["error"]["code"] == 1
        assert (await client.result("public/set_heartbeat", {"interval": 1}))["status"] == 200
        # cancel-on-disconnect: "200, no body"
        assert await client.result("private/enable_cancel_on_disconnect") is None
        assert await client.result("private/get_cancel_on_disconnect") is True
        instruments = await client.result("private/get_instruments", {"currency": "BTC"})
        assert instruments and not {"tick_size", "min_trade_amount"} & set(instruments[0])


async def test_literal_venue_sends_no_heartbeat_messages() -> None:
    async with sandbox(extensions=LITERAL) as sb, connect(sb.url) as ws:
        client = Client(ws)
        await client.result("public/set_heartbeat", {"interval": 1})
        await client.drain(2.5)  # two intervals of silence from the client
        assert client.notes == [] and sb.counters["heartbeat_drops"] == 0


async def test_literal_trades_have_the_documents_fields_only() -> None:
    async with sandbox(extensions=LITERAL) as sb, connect(sb.url) as ws:
        client = Client(ws)
        await client.auth()
        await client.result("private/subscribe", {"channels": [f"user.trades.{BTC}.raw", f"user.changes.{BTC}.raw"]})
        order = (await place(client))["order"]
        sb.place(BTC, "sell", D(10), D(49000))
        await client.drain()
        (trade,) = client.channel(f"user.trades.{BTC}.raw")
        assert set(trade) == TRADE_FIELDS  # PUL-8: no order_id, label, fee, liquidity
        change = client.channel(f"user.changes.{BTC}.raw")[-1]  # the fill (the first: the new order)
        assert set(change["trades"][0]) == TRADE_FIELDS and change["orders"][0]["order_id"] == order["order_id"]
        by_order = await client.result("private/get_user_trades_by_order", {"order_id": order["order_id"]})
        assert [set(t) for t in by_order] == [TRADE_FIELDS]
        sb.place(BTC, "sell", D(10), D(49000), tif=TimeInForce.GTC)
        taken = await client.result("private/buy", {"instrument_name": BTC, "amount": 10, "type": "limit",
                                                    "price": 49000, "label": "L2"})
        assert taken["trades"] and set(taken["trades"][0]) <= TRADE_CONFIRMATION_FIELDS
        assert taken["trades"][0]["label"] == "L2"  # TradeConfirmation has label and order_id


@pytest.mark.parametrize("count", [False, True])
async def test_literal_mass_cancel_answers_as_the_example_and_reports_nothing_else(count: bool) -> None:
    async with sandbox(extensions=LITERAL, mass_cancel_count=count) as sb, connect(sb.url) as ws:
        client = Client(ws)
        await client.auth()
        await client.result("private/subscribe", {"channels": [f"user.orders.{BTC}.raw", f"user.changes.{BTC}.raw"]})
        await place(client, 49000)
        await place(client, 48000)
        await client.drain()
        client.notes.clear()
        answer = await client.result("private/cancel_all", {"detailed": False})
        if count:
            assert answer == 2  # Deribit's form
        else:
            assert [o["order_state"] for o in answer] == ["open", "open"]  # as 004's example shows
        await client.drain()
        assert client.notes == []
        assert not [o for o in sb.accounts["mm"].orders.values() if o.is_open]


async def test_rate_limit_refuses_beyond_the_budget_with_status_11() -> None:
    async with sandbox(rate_limit=True) as sb, connect(sb.url) as ws:
        client = Client(ws)
        await client.auth()
        for _ in range(25):  # one connection's 20-request burst, and more at once
            await ws.send('{"jsonrpc":"2.0","id":99,"method":"private/get_cancel_on_disconnect","params":{}}')
        answers = []
        with anyio.fail_after(3):
            while len(answers) < 25:
                answers.append(json.loads(await ws.recv()))
        codes = [a.get("error", {}).get("code") for a in answers]
        assert codes.count(11) >= 4 and sb.counters["rate_limited"] == codes.count(11)
        assert {a["error"]["message"] for a in answers if "error" in a} == {"too many requests"}


# ---- the adapter against it: issue 20's defects ---------------------------------------------------


@pytest.mark.parametrize("count", [False, True])
async def test_mass_cancel_settles_every_order_the_answer_leaves_open(count: bool) -> None:
    """Defect 2: 004's answer lists the orders as "open" (or Deribit's count), and nothing else
    reports them: every tracked order is still settled, by asking the venue, before cancel_all
    returns (no order left pending_cancel with its cash reserved)."""
    async with venue(sandbox={"extensions": LITERAL, "mass_cancel_count": count}, subscribe=False,
                     heartbeat_s=10) as v:
        orders = [v.submit("buy", 10, 49000 - 100 * i) for i in range(2)]
        for order in orders:
            await v.acked(order)
        for order in orders:
            order.transition(S.PENDING_CANCEL)  # as the runtime marks them before it asks
        assert await v.adapter.cancel_all() == 2
        assert [o.status for o in orders] == [S.CANCELLED, S.CANCELLED]
        assert v.adapter.counters["mass_cancel_queries"] == 2
        assert await v.adapter.query_open_orders() == []


async def test_mass_cancel_by_instrument_settles_only_that_instrument() -> None:
    async with venue(sandbox={"extensions": LITERAL}, subscribe=False) as v:
        btc = v.submit("buy", 10, 49000)
        eth = v.submit("buy", 1, 2900, symbol="ETH_USD-PERPETUAL")
        for order in (btc, eth):
            await v.acked(order)
        btc.transition(S.PENDING_CANCEL)
        assert await v.adapter.cancel_all(BTC) == 1
        assert (btc.status, eth.status) == (S.CANCELLED, S.NEW)
        assert v.adapter.counters["mass_cancel_queries"] == 1


async def test_literal_venue_is_asked_only_documented_methods() -> None:
    """Defect 4: nothing 004 lacks goes to a literal venue (public/test, unsubscribe, trades.*):
    a whole session with login, a book, orders, a mass cancel and quiet periods."""
    async with venue(sandbox={"extensions": LITERAL}, heartbeat_s=1, liveness_probe_s=D("0.3"),
                     book_resync_s=D("0.2")) as v:
        order = v.submit("buy", 10, 49000)
        await v.acked(order)
        await until(lambda: v.adapter.counters["liveness_probes"] >= 2, timeout=5)
        order.transition(S.PENDING_CANCEL)
        await v.adapter.cancel_all()
        heard = methods_heard(v.sandbox)
        assert "public/test" not in heard and not any(m.endswith("/unsubscribe") for m in heard)
        assert not any(c.startswith("trades.") for conn in v.sandbox.conns for c in conn.subs)
        assert v.sink.statuses() == ["connected"]


async def test_public_trades_reach_strategies_from_a_literal_venue() -> None:
    """Defect 5: subscribe answers "string" and there is no trades channel: trades come by polling
    public/last_trades_by_instrument, each once."""
    async with venue(sandbox={"extensions": LITERAL}, subscribe=False, public_trades_poll_s=D("0.05"),
                     book_resync_s=D("0.2")) as v:
        v.adapter.subscribe([BTC])
        await until(lambda: BTC in v.sink.books, what="a fetched book")
        await until(lambda: v.adapter.counters["public_trade_polls"] >= 2, what="baseline and a poll")
        trade_at(v.sandbox, 50010)
        trade_at(v.sandbox, 49990, qty=20, taker="sell")
        await until(lambda: len(v.sink.of("trade")) == 2)
        assert [t.trade_id for t in v.sink.of("trade")] == public_ids(v.sandbox)
        assert v.adapter.describe()["public_trades_polled"] == [BTC]
        assert v.adapter.counters["book_snapshots_fetched"] >= 1 and v.adapter.counters["book_snapshots"] == 0


def test_heartbeat_interval_is_whole_seconds() -> None:
    """Defect 7: 004's set_heartbeat interval is an integer: a fraction is refused in the options,
    not by the venue at login; the probe period (liveness_probe_s) may be fractional."""
    base: dict[str, Any] = {"client_id": "mm", "client_secret_env": "X"}
    with pytest.raises(ValidationError, match="heartbeat_s"):
        PulseOptions(**base, heartbeat_s=D("0.5"))
    with pytest.raises(ValidationError, match="heartbeat_s"):
        PulseOptions(**base, heartbeat_s=0)
    assert PulseOptions(**base, heartbeat_s=D(5), liveness_probe_s=D("0.3")).heartbeat_s == 5
    assert PulseOptions(**base).deribit_heartbeats is False


def test_shipped_pulse_config_sets_a_whole_heartbeat() -> None:
    config = yaml.safe_load((REPO / "config.pulse-sandbox.yaml").read_text())
    options = PulseOptions(**config["venues"]["pulse"]["options"])
    assert options.heartbeat_s == 10 and isinstance(options.heartbeat_s, int)


async def test_a_burst_through_the_adapter_never_draws_status_11() -> None:
    """Defect 7: with the venue enforcing VENUES.md 5.14's budget, 40 orders and their cancels
    sent at once leave paced by the adapter's assumed limits, and the venue refuses none."""
    async with venue(sandbox={"rate_limit": True}, subscribe=False) as v:
        orders = [v.submit("buy", 10, 40000 + i) for i in range(40)]
        await until(lambda: all(o.status is S.NEW for o in orders), timeout=30, what="every order acked")
        for order in orders:
            v.cancel(order)
        await until(lambda: all(o.status is S.CANCELLED for o in orders), timeout=30, what="every order cancelled")
        assert v.sandbox.counters["rate_limited"] == 0
        assert v.sandbox.counters["requests"] >= 80


def test_the_banner_says_which_extensions_are_off() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "adapters.pulse.sandbox", "--port", "0", "--no-market", "--duration", "0.2",
         "--log-level", "WARNING", "--document-literal"],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=True,
    ).stdout.splitlines()
    assert out[0].startswith("pulse sandbox listening on ws://127.0.0.1:")
    assert out[1] == "pulse sandbox: document-literal: every extension off"
