"""The Pulse sandbox at the protocol level, with a bare WebSocket client (no adapter): the rules the
adapter tests rely on, stated once where the venue decides them (cancel-on-disconnect per session,
graceful logout, heartbeats, MMP per index, auth grants, error statuses, response shapes)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import REPO
from support.pulse_rpc import SECRET, Client, place, sandbox
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from adapters.pulse.sandbox import PulseSandbox, parse_fault, parse_instrument
from adapters.sim.market import MarketOptions
from engine.clock import SimClock
from engine.model import TimeInForce

pytestmark = pytest.mark.anyio

D = Decimal
BTC = "BTC_USD-PERPETUAL"

FIXTURES = Path(__file__).parent.parent / "fixtures" / "pulse"


async def open_orders(sb: PulseSandbox) -> list[Any]:
    await anyio.sleep(0.1)  # let the server notice a closed socket
    return [o for o in sb.accounts["mm"].orders.values() if o.is_open]


# ---- shapes -------------------------------------------------------------------------------------


async def test_order_answers_have_the_documented_order_fields() -> None:
    documented = json.loads((FIXTURES / "private.buy.response.json").read_text())
    async with sandbox() as sb, connect(sb.url) as ws:
        client = Client(ws)
        await client.auth()
        result = await place(client, mmp=True)
        # linked/trigger-order fields only on such orders; cancel_reason once cancelled
        order_fields = set(documented["order"]) - {
            "cancel_reason", "linked_order_type", "primary_order_id", "status_otoco", "trigger",
            "trigger_fill_condition", "trigger_price", "usd"}
        assert order_fields <= set(result["order"])
        assert result["order"]["order_state"] == "open" and result["order"]["label"] == "L1"
        assert len(result["order"]["order_id"]) == 24 and int(result["order"]["order_id"], 16) >= 0
        assert result["trades"] == []
        cancelled = await client.result("private/cancel", {"order_id": result["order"]["order_id"]})
        assert cancelled["order_state"] == "cancelled" and cancelled["cancel_reason"] == "user_request"
        state = await client.result("private/get_order_state", {"order_id": result["order"]["order_id"]})
        assert isinstance(state, list) and state[0]["order_state"] == "cancelled"  # an array, as documented


async def test_trades_carry_the_documented_fields_and_the_deribit_extensions() -> None:
    documented = json.loads((FIXTURES / "user.trades.instrument_name.raw.response.json").read_text())
    async with sandbox() as sb, connect(sb.url) as ws:
        client = Client(ws)
        await client.auth()
        await client.result("private/subscribe", {"channels": [f"user.trades.{BTC}.raw"]})
        order = (await place(client))["order"]
        sb.place(BTC, "sell", D(10), D(49000))
        await client.drain()
        (trade,) = client.channel(f"user.trades.{BTC}.raw")
        assert set(documented) <= set(trade)
        assert (trade["order_id"], trade["label"], trade["liquidity"]) == (order["order_id"], "L1", "M")  # PUL-8


# ---- authentication ----------------------------------------------------------------------------


async def test_private_methods_need_auth_and_a_live_token() -> None:
    async with sandbox(token_ttl_s=0.2) as sb, connect(sb.url) as ws:
        client = Client(ws)
        answer = await client.call("private/get_open_orders_by_instrument", {"instrument_name": BTC})
        assert answer["error"]["code"] == 2
        login = await client.auth()
        assert login["token_type"] == "bearer" and login["scope"] == "connection mainaccount"
        assert (await client.call("private/get_open_orders_by_instrument", {"instrument_name": BTC}))["result"] == []
        await anyio.sleep(0.3)
        expired = await client.call("private/get_open_orders_by_instrument", {"instrument_name": BTC})
        assert expired["error"]["code"] == 2 and "expired" in expired["error"]["message"]
        renewed = await client.result("public/auth", {"grant_type": "refresh_token",
                                                      "refresh_token": login["refresh_token"]})
        assert renewed["access_token"] != login["access_token"]
        assert (await client.call("private/get_open_orders_by_instrument", {"instrument_name": BTC}))["result"] == []
        reused = await client.call("public/auth", {"grant_type": "refresh_token",
                                                   "refresh_token": login["refresh_token"]})
        assert reused["error"]["code"] == 2  # refresh tokens are single use


async def test_client_signature_grant() -> None:
    async with sandbox() as sb, connect(sb.url) as ws:
        client = Client(ws)
        ts = int(time.time() * 1000)
        good = hmac.new(SECRET.encode(), f"{ts}\nn1\n".encode(), hashlib.sha256).hexdigest()
        params = {"grant_type": "client_signature", "client_id": "mm", "timestamp": ts, "nonce": "n1", "data": ""}
        bad = await client.call("public/auth", {**params, "signature": "0" * 64})
        assert bad["error"]["code"] == 2
        stale = await client.call("public/auth", {**params, "timestamp": ts - 120_000, "signature": good})
        assert stale["error"]["code"] == 2
        assert "access_token" in await client.result("public/auth", {**params, "signature": good})


async def test_unknown_path_is_refused() -> None:
    async with sandbox() as sb:
        with pytest.raises((InvalidStatus, ConnectionClosed)):
            async with connect(sb.url.replace("/ws/api/v2", "/other")) as ws:
                await ws.recv()


# ---- cancel-on-disconnect ------------------------------------------------------------------------


async def test_cod_is_off_by_default_and_per_session() -> None:
    async with sandbox() as sb:
        async with connect(sb.url) as ws1, connect(sb.url) as ws2:
            one, two = Client(ws1), Client(ws2)
            await one.auth()
            await two.auth()
            assert await one.result("private/get_cancel_on_disconnect") is False
            assert await one.result("private/enable_cancel_on_disconnect") == "ok"
            assert await one.result("private/get_cancel_on_disconnect") is True
            assert await two.result("private/get_cancel_on_disconnect") is False
            await place(one, 49000)
            await place(two, 48000)
            await two.result("private/subscribe", {"channels": [f"user.orders.{BTC}.raw"]})
            ws1.transport.abort()  # session one drops: only its order is cancelled
            await anyio.sleep(0.1)
            await two.drain()
            (note,) = two.channel(f"user.orders.{BTC}.raw")
            assert note["order_state"] == "cancelled" and note["cancel_reason"] == "cancel_on_disconnect"
            assert [o.price for o in await open_orders(sb)] == [D(48000)]


async def test_graceful_logout_cancels_nothing_even_with_cod() -> None:
    async with sandbox() as sb:
        async with connect(sb.url) as ws:
            client = Client(ws)
            await client.auth()
            await client.result("private/enable_cancel_on_disconnect")
            await place(client)
            assert (await client.result("private/logout", {"invalidate_token": True}))["status"] == 200
            with pytest.raises(ConnectionClosed):
                await ws.recv()  # the venue closes the socket after the answer
        assert len(await open_orders(sb)) == 1 and sb.counters["cod_cancels"] == 0
        assert sb.counters["logouts"] == 1


async def test_silence_after_a_test_request_drops_the_session_and_fires_cod() -> None:
    async with sandbox() as sb, connect(sb.url) as ws:
        client = Client(ws)
        await client.auth()
        await client.result("private/enable_cancel_on_disconnect")
        await place(client)
        await client.result("public/set_heartbeat", {"interval": D("0.1")})
        frames = []
        with pytest.raises(ConnectionClosed):  # we read but never answer
            with anyio.fail_after(2):
                while True:
                    frames.append(json.loads(await ws.recv()))
        assert {"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}} in frames
        assert sb.counters["heartbeat_drops"] == 1
        assert await open_orders(sb) == [] and sb.counters["cod_cancels"] == 1


async def test_heartbeat_interval_below_the_minimum_is_refused() -> None:
    async with sandbox(min_heartbeat_s=10) as sb, connect(sb.url) as ws:
        answer = await Client(ws).call("public/set_heartbeat", {"interval": 5})
        assert answer["error"]["code"] == 1 and "minimum" in answer["error"]["message"]


# ---- orders --------------------------------------------------------------------------------------


async def test_post_only_reprices_just_inside_the_spread_and_needs_gtc() -> None:
    async with sandbox() as sb, connect(sb.url) as ws:
        client = Client(ws)
        await client.auth()
        sb.place(BTC, "sell", D(10), D(50000), tif="gtc")  # type: ignore[arg-type]
        result = await place(client, 50500, post_only=True)
        assert result["order"]["price"] == D("49999.5") and result["trades"] == []
        ioc = await client.call("private/buy", {"instrument_name": BTC, "amount": 10, "price": 49000,
                                                "post_only": True, "time_in_force": "immediate_or_cancel"})
        assert ioc["error"]["code"] == 9  # PUL-12


async def test_reduce_only_needs_a_position_to_reduce() -> None:
    async with sandbox() as sb, connect(sb.url) as ws:
        client = Client(ws)
        await client.auth()
        refused = await client.call("private/sell", {"instrument_name": BTC, "amount": 10, "price": 60000,
                                                     "reduce_only": True})
        assert refused["error"]["code"] == 9
        sb.place(BTC, "sell", D(10), D(50000), tif="gtc")  # type: ignore[arg-type]
        await client.result("private/buy", {"instrument_name": BTC, "amount": 10, "price": 50000,
                                            "time_in_force": "immediate_or_cancel"})
        (position,) = await client.result("private/get_positions", {"currency": "BTC"})
        assert (position["size"], position["direction"], position["average_price"]) == (D(10), "buy", D(50000))
        ok = await client.result("private/sell", {"instrument_name": BTC, "amount": 10, "price": 60000,
                                                  "reduce_only": True})
        assert ok["order"]["order_state"] == "open"


async def test_error_statuses_for_bad_requests() -> None:
    async with sandbox() as sb, connect(sb.url) as ws:
        client = Client(ws)
        await client.auth()
        cases = [
            ({"instrument_name": "NOPE", "amount": 10, "price": 1}, 5),
            ({"instrument_name": BTC, "amount": 15, "price": 49000}, 8),
            ({"instrument_name": BTC, "amount": 10, "price": D("49000.3")}, 7),
            ({"instrument_name": BTC, "amount": 10}, 7),
            ({"instrument_name": BTC, "amount": 10, "price": 49000, "type": "stop_limit"}, 1),
        ]
        for params, code in cases:
            assert (await client.call("private/buy", params))["error"]["code"] == code, params
        assert (await client.call("private/cancel", {"order_id": "0" * 24}))["error"]["code"] == 4
        assert (await client.call("public/nope"))["error"]["code"] == 1
        await ws.send("{not json")
        assert json.loads(await ws.recv())["error"]["code"] == -32700


async def test_edit_keeps_the_order_id_and_marks_it_replaced() -> None:
    async with sandbox() as sb, connect(sb.url) as ws:
        client = Client(ws)
        await client.auth()
        order_id = (await place(client))["order"]["order_id"]
        edited = await client.result("private/edit", {"order_id": order_id, "amount": 30, "price": 49500})
        assert edited["order"]["order_id"] == order_id and edited["order"]["replaced"] is True
        assert (edited["order"]["amount"], edited["order"]["price"]) == (D(30), D(49500))
        missing = await client.call("private/edit", {"order_id": order_id, "price": 49500})
        assert missing["error"]["code"] == 8  # amount is required (PUL-5)


# ---- MMP -----------------------------------------------------------------------------------------


async def test_mmp_counts_mmp_fills_per_index_freezes_and_resets_on_set() -> None:
    async with sandbox() as sb, connect(sb.url) as ws:
        client = Client(ws)
        await client.auth()
        await client.result("private/subscribe", {"channels": ["user.mmp_trigger.btc_usd"]})
        config = {"index_name": "btc_usd", "interval": 10, "frozen_time": 0, "quantity_limit": 20}
        assert await client.result("private/set_mmp_config", config) == config
        await place(client, 49000, 10, mmp=True)
        await place(client, 48990, 10)  # not mmp: never counted, never cancelled
        await place(client, 48980, 10, mmp=True)
        sb.place(BTC, "sell", D(20), None)  # 10 mmp + 10 plain filled: 10 < 20, no trigger
        await client.drain()
        assert client.channel("user.mmp_trigger.btc_usd") == []
        sb.place(BTC, "sell", D(10), None)  # the second mmp quote fills: 20 mmp in the window
        await client.drain()
        assert client.channel("user.mmp_trigger.btc_usd") == [{"frozen_until": 0, "index_name": "btc_usd"}]
        frozen = await client.call("private/buy", {"instrument_name": BTC, "amount": 10, "price": 48000,
                                                   "mmp": True})
        assert frozen["error"]["code"] == 10 and "until reset" in frozen["error"]["message"]
        await place(client, 48000)  # non-mmp orders still pass
        await client.result("private/set_mmp_config", config)  # "triggers MMP reset"
        assert (await place(client, 48000, mmp=True))["order"]["mmp"] is True
        assert await client.result("private/get_mmp_config", {"index_name": "btc_usd"}) == config


# ---- book ----------------------------------------------------------------------------------------


async def test_every_book_subscribe_sends_a_fresh_snapshot_and_changes_chain() -> None:
    async with sandbox() as sb, connect(sb.url) as ws:
        client = Client(ws)
        channel = f"book.{BTC}.raw"
        assert await client.result("public/subscribe", {"channels": [channel, "book.NOPE.raw"]}) == [channel]
        sb.place(BTC, "buy", D(10), D(49000), tif="gtc")  # type: ignore[arg-type]
        sb.place(BTC, "buy", D(10), D(49000), tif="gtc")  # type: ignore[arg-type]
        await client.result("public/subscribe", {"channels": [channel]})
        await client.drain()
        snapshot1, change1, change2, snapshot2 = client.channel(channel)
        assert snapshot1["type"] == "snapshot" and snapshot1["bids"] == []
        assert change1["bids"] == [["new", D(49000), D(10)]] and change2["bids"] == [["change", D(49000), D(20)]]
        assert change1["prev_change_id"] == snapshot1["change_id"] and change2["prev_change_id"] == change1["change_id"]
        assert snapshot2["type"] == "snapshot" and snapshot2["bids"] == [["new", D(49000), D(20)]]
        assert snapshot2["change_id"] == change2["change_id"]


async def test_refused_channels_are_left_out_or_fail_the_whole_subscribe() -> None:
    channels = [f"book.{BTC}.raw", f"trades.{BTC}.raw", f"quote.{BTC}"]
    async with sandbox(refuse_channels=["trades.*"]) as sb, connect(sb.url) as ws:
        client = Client(ws)
        assert await client.result("public/subscribe", {"channels": channels}) == [f"book.{BTC}.raw", f"quote.{BTC}"]
        sb.place(BTC, "sell", D(10), D(50000), tif=TimeInForce.GTC)
        sb.place(BTC, "buy", D(10), D(50000))
        await client.drain()
        assert client.channel(f"trades.{BTC}.raw") == [] and client.channel(f"book.{BTC}.raw")
    async with sandbox(refuse_channels=["trades.*"], refuse_with_error=True) as sb, connect(sb.url) as ws:
        client = Client(ws)
        answer = await client.call("public/subscribe", {"channels": channels})
        assert answer["error"] == {"code": 1, "message": f"channel 'trades.{BTC}.raw' is not available"}
        assert next(iter(sb.conns)).subs == set()


async def test_last_trades_by_instrument_sorts_and_starts_at_a_sequence() -> None:
    async with sandbox() as sb, connect(sb.url) as ws:
        client = Client(ws)
        for price in (50000, 50010, 50020, 50030):
            sb.place(BTC, "sell", D(10), D(price), tif=TimeInForce.GTC)
            sb.place(BTC, "buy", D(10), D(price))

        async def seqs(**params: Any) -> list[int]:
            trades = await client.result("public/last_trades_by_instrument", {"instrument_name": BTC, **params})
            return [t["trade_seq"] for t in trades]

        assert await seqs() == [1, 2, 3, 4]
        assert await seqs(count=2) == [3, 4]  # default: the latest, oldest first
        assert await seqs(count=2, sorting="desc") == [4, 3]
        assert await seqs(start_seq=2, count=2, sorting="asc") == [2, 3]
        assert await seqs(start_seq=2, end_seq=3) == [2, 3]
        assert await seqs(start_seq=5, sorting="asc") == []


async def test_injected_gap_loses_one_change() -> None:
    async with sandbox() as sb, connect(sb.url) as ws:
        client = Client(ws)
        channel = f"book.{BTC}.raw"
        await client.result("public/subscribe", {"channels": [channel]})
        sb.gap(BTC)
        sb.place(BTC, "buy", D(10), D(49000), tif="gtc")  # type: ignore[arg-type]
        sb.place(BTC, "buy", D(10), D(48000), tif="gtc")  # type: ignore[arg-type]
        await client.drain()
        snapshot, change = client.channel(channel)
        assert change["prev_change_id"] == snapshot["change_id"] + 1  # one change id never arrived


# ---- command line --------------------------------------------------------------------------------


def test_fault_and_instrument_specs() -> None:
    assert parse_fault("drop@30").kind == "drop"
    stall = parse_fault("stall@5:2.5")
    assert (stall.kind, stall.after_s, stall.params["duration_s"]) == ("stall", D(5), D("2.5"))
    error = parse_fault("error@1:private/buy:11:3")
    assert error.params == {"method": "private/buy", "code": 11, "count": 3}
    assert parse_fault("gap@2:BTC_USD-PERPETUAL").params["instrument"] == BTC
    with pytest.raises(ValueError, match="fault 'halt' is not supported by venue pulse"):
        parse_fault("halt@1,symbol=BTC_USD-PERPETUAL,duration_s=5")
    with pytest.raises(ValueError, match="unknown kind"):
        parse_fault("melt@1")
    with pytest.raises(ValueError, match="needs a method"):
        parse_fault("error@1")
    inst = parse_instrument("SOL_USD-PERPETUAL=150:0.01:1")
    assert (inst.name, inst.mid, inst.tick, inst.step, inst.index) == ("SOL_USD-PERPETUAL", D(150), D("0.01"),
                                                                       D(1), "sol_usd")
    assert parse_instrument(BTC).tick == D("0.5")
    with pytest.raises(ValueError):
        parse_instrument("X=abc")


def test_command_line_sandbox_starts_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.pulse.sandbox", "--port", "0", "--no-market", "--log-level", "WARNING",
         "--refuse-channel", "trades.*"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("pulse sandbox listening on ws://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1].strip()

        async def hello() -> Any:
            async with connect(url) as ws:
                client = Client(ws)
                subscribed = await client.result("public/subscribe", {"channels": [f"trades.{BTC}.raw",
                                                                                    f"quote.{BTC}"]})
                return await client.result("public/test"), subscribed

        assert anyio.run(hello) == ({"version": "2.0.0-sandbox"}, [f"quote.{BTC}"])  # as the document: no trades
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_scheduled_faults_play_after_start() -> None:
    async with sandbox(faults=[parse_fault("error@0:private/buy:13:1")]) as sb, connect(sb.url) as ws:
        client = Client(ws)
        await client.auth()
        await anyio.sleep(0.05)
        first = await client.call("private/buy", {"instrument_name": BTC, "amount": 10, "price": 49000})
        assert first["error"] == {"code": 13, "message": "injected error for private/buy"}
        assert "order" in await client.result("private/buy", {"instrument_name": BTC, "amount": 10, "price": 49000})


def test_the_pulse_sandbox_is_registered_by_name() -> None:
    from adapters.pulse.sandbox import COMMAND
    from engine.venue import sandbox_registry

    command = sandbox_registry()["pulse"]
    assert command is COMMAND
    with pytest.raises(SystemExit) as info:
        command.build_parser().parse_args(["--help"])
    assert info.value.code == 0


# ---- the one simulated venue ---------------------------------------------------------------------

START_NS = 1_772_424_000 * 1_000_000_000  # any fixed moment: Pulse trades 24/7


def run_clock(clock: SimClock, seconds: int, until: Callable[[], bool] = lambda: False) -> None:
    """Run the simulated venue's timers (the synthetic market) for ``seconds`` of simulated time,
    or until ``until()`` holds."""
    end = clock.now_ns() + seconds * 1_000_000_000
    while not until() and clock.advance(end):
        pass


async def test_the_books_and_market_are_the_simulated_venues_and_its_flow_fills_a_client() -> None:
    clock = SimClock(START_NS)
    market = MarketOptions(enabled=True, step_interval_s=D(1), aggressive_interval_s=D(5), size_unit_shares=1)
    async with sandbox(clock=clock, market=market, seed=3) as sb, connect(sb.url) as ws:
        engine = sb.sim.matching_engine(BTC)
        assert sb.books[BTC].engine is engine and engine.price_band is None  # no circuit band on Pulse
        client = Client(ws)
        await client.auth()
        await client.result("private/subscribe", {"channels": [f"user.trades.{BTC}.raw", f"user.orders.{BTC}.raw"]})
        run_clock(clock, 10)  # the venue's timers, not the sandbox's: nothing moves until its clock does
        assert engine.best_ask is not None and engine.best_bid is not None
        order = (await client.result("private/sell", {"instrument_name": BTC, "amount": 10, "type": "limit",
                                                      "price": engine.best_ask - D("0.5"), "label": "bg"}))["order"]
        mine = sb.accounts["mm"].orders[order["order_id"]]
        run_clock(clock, 3600, lambda: mine.filled > 0)
        assert mine.filled > 0  # the synthetic market's aggressor took the client's quote
        await client.drain()  # no request since: the fill's notifications went out as the venue reported it
        trades = client.channel(f"user.trades.{BTC}.raw")
        assert trades and {(t["order_id"], t["liquidity"], t["label"]) for t in trades} == {(order["order_id"], "M",
                                                                                              "bg")}
        assert client.channel(f"user.orders.{BTC}.raw")[-1]["filled_amount"] == mine.filled
        position = (await client.result("private/get_positions", {"currency": "BTC"}))[0]
        assert position["size"] == -mine.filled


class Operations:
    """A listener of the simulated venue counting the operations it reports."""

    def __init__(self) -> None:
        self.count = 0

    def on_engine_events(self, symbol: str, events: list[Any], changes: Any, ts: int) -> None:
        self.count += 1


async def test_a_burst_of_book_changes_runs_through_the_simulated_venue_in_one_chain() -> None:
    async with sandbox() as sb, connect(sb.url) as ws:
        client = Client(ws)
        await client.result("public/subscribe", {"channels": [f"book.{BTC}.raw"]})
        await client.drain()
        (snapshot,) = client.channel(f"book.{BTC}.raw")
        operations = Operations()
        sb.sim.add_listener(operations)
        frames = [json.loads(frame, parse_float=Decimal)["params"]["data"] for frame in sb.blast_book(BTC, 40)]
        assert operations.count == 41  # the touch placed first, then 40 operations, each heard once
        changes = [f for f in frames if f.get("type") == "change"]
        assert len(changes) == 41 - 1 and changes[0]["prev_change_id"] == snapshot["change_id"] + 1
        assert all(b["prev_change_id"] == a["change_id"] for a, b in itertools.pairwise(changes))
