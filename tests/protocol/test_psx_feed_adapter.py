"""The PSX Live Feed adapter against the Live Feed sandbox on 127.0.0.1 (port 0): snapshots and
deltas, trades, access levels, tokens, the connection cap, and recovery from every fault the
sandbox injects. Timings are configured small so the whole file runs in seconds."""

from __future__ import annotations

import json
import logging
import os
import random
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from pydantic import ValidationError
from support import REPO, until
from support.psx_feed import (  # noqa: F401 (token_env, no_leaked_connections: autouse fixtures)
    FAST,
    INSTRUMENTS,
    OPEN,
    TOKEN,
    TOKEN_ENV,
    delta,
    level,
    no_leaked_connections,
    options,
    running,
    same_book,
    sandbox,
    token_env,
)
from support.sinks import RecordingSink
from websockets.asyncio.client import connect as ws_connect

from adapters.paper.adapter import PaperAdapter, PaperOptions
from adapters.psx_feed.adapter import (
    Backoff,
    ConnectionCapError,
    FeedAuthError,
    LiveFeedAdapter,
    LiveFeedOptions,
)
from adapters.psx_feed.sandbox import FeedExtensions, FeedServer, paper_order_source
from adapters.sim.market import MarketOptions
from engine.clock import ScaledClock, WallClock
from engine.model import (
    InstrumentStatus,
    Phase,
    SessionState,
    Side,
    Trade,
)

pytestmark = pytest.mark.anyio

D = Decimal


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # websockets runs on asyncio


# ---- market data ----------------------------------------------------------------------------------
async def test_snapshot_then_deltas_keep_the_book_equal_to_the_sandboxs():
    async with sandbox() as server, running(server, ("MEBL", "OGDC")) as (adapter, sink):
        assert sink.snapshots("MEBL") == 1 and sink.snapshots("OGDC") == 1
        server.on_book(delta("MEBL", level(Side.BUY, "187.45", 0), level(Side.SELL, "187.50", 200)))
        server.on_book(delta("OGDC", level(Side.BUY, "109.30", 100)))
        await until(lambda: same_book(sink, server, "MEBL") and same_book(sink, server, "OGDC"))
        assert sink.books["MEBL"].best_bid == D("187.40") and sink.books["MEBL"].best_ask == D("187.50")
        assert sink.statuses() == ["connected"]
        assert adapter.malformed == 0 and adapter.gaps == 0


async def test_trades_arrive_exact_and_reference_price_is_announced():
    async with sandbox() as server, running(server) as (_adapter, sink):
        assert sink.of("instrument")[0].reference_price == D("187.50")
        server.on_trade(Trade("PSX", "MEBL", WallClock().now_ns(), D("187.55"), D(300), Side.BUY, "T1"))
        server.on_trade(Trade("PSX", "MEBL", WallClock().now_ns(), D("187.60"), D(100), Side.BUY, "T2"))
        await until(lambda: len(sink.of("trade")) == 2)
        first, second = sink.of("trade")
        assert (first.price, first.qty, second.price, second.qty) == (D("187.55"), D(300), D("187.60"), D(100))
        assert type(first.price) is Decimal and first.aggressor is None  # the feed does not say (6.7)
        assert first.trade_id != second.trade_id


async def test_l1_gets_top_of_book_from_ticks():
    async with sandbox() as server, running(server, access="full") as (adapter, sink):
        assert adapter.server_level == "L1"
        assert sink.books["MEBL"].bids == [(D("187.45"), D(1000))]  # top only, no depth
        server.on_book(delta("MEBL", level(Side.BUY, "187.50", 200)))
        await until(lambda: sink.books["MEBL"].best_bid == D("187.50"))


async def test_l0_gets_trades_without_a_book():
    sink = RecordingSink()
    async with sandbox() as server:
        adapter = LiveFeedAdapter("PSX", options(server, access="feed"), INSTRUMENTS, WallClock(), sink)
        async with anyio.create_task_group() as tg:
            adapter.bind(tg)
            adapter.subscribe(["MEBL"])
            await adapter.connect()
            await until(lambda: bool(sink.of("instrument")))
            server.on_trade(Trade("PSX", "MEBL", WallClock().now_ns(), D("187.55"), D(300), Side.BUY, "T1"))
            await until(lambda: bool(sink.of("trade")))
            assert sink.of("book") == []
            await adapter.close()
            tg.cancel_scope.cancel()


async def test_halt_and_resume_reach_the_engine_as_instrument_status():
    async with sandbox() as server, running(server) as (_adapter, sink):
        now = WallClock().now_ns()
        server.on_instrument_status(InstrumentStatus("PSX", "MEBL", now, halted=True, reason="injected halt"))
        server.on_instrument_status(InstrumentStatus("PSX", "MEBL", now, halted=False))
        await until(lambda: len([s for s in sink.of("instrument") if s.halted is not None]) == 2)
        halt, resume = [s for s in sink.of("instrument") if s.halted is not None]
        assert halt.halted and halt.reason == "injected halt" and resume.halted is False


async def test_l2_order_details_follow_the_paper_matching_engine():
    clock = ScaledClock(1_772_424_000 * 1_000_000_000, speed=50)
    server = FeedServer(INSTRUMENTS, clock, (TOKEN,))
    paper = PaperAdapter("PSX", PaperOptions(market=MarketOptions(step_interval_s=D("0.5"))), INSTRUMENTS, clock,
                         server, seed=3)
    server.order_source = paper_order_source(paper)
    async with server:
        await paper.connect()
        paper.subscribe(["MEBL"])
        paper.on_session(OPEN)
        server.on_session(OPEN)
        async with running(server) as (adapter, sink):
            await anyio.sleep(0.6)  # ~30 sandbox seconds of synthetic market
            await paper.close()  # the market stops; the book stays
            seen = -1
            while adapter.messages_in != seen:
                seen = adapter.messages_in
                await anyio.sleep(0.1)
            engine = paper.matching_engine("MEBL")
            resting = {str(o.order_id): (o.side, o.price, o.leaves) for o in engine.resting_orders()}
            assert resting and adapter.l3_orders("MEBL") == resting
            assert sink.books["MEBL"].bids == engine.depth(Side.BUY)
            assert sink.books["MEBL"].asks == engine.depth(Side.SELL)
            assert sink.of("trade") and adapter.malformed == 0 and adapter.gaps == 0


# ---- configuration and tokens -----------------------------------------------------------------------
def test_token_itself_is_refused_in_config():
    with pytest.raises(ValidationError, match="token_env"):
        LiveFeedOptions(preset="staging", token="abc")


def test_max_connections_above_the_documents_limit_is_a_config_error():
    with pytest.raises(ValidationError, match="limit of 2 concurrent connections per token"):
        LiveFeedOptions(preset="production", token_env="X", max_connections=3)


def test_presets_and_urls():
    assert LiveFeedOptions(preset="staging", token_env="X", access="l2").base() == "wss://uat.csapis.com"
    with pytest.raises(ValidationError, match="exactly one of preset"):
        LiveFeedOptions(preset="staging", url="wss://a.example", token_env="X")
    with pytest.raises(ValidationError, match="unencrypted"):
        LiveFeedOptions(url="ws://feed.example.com", token_env="X")
    with pytest.raises(ValidationError, match="exactly one of token_env"):
        LiveFeedOptions(preset="staging")
    for url in ("wss://feed.example.com/?token=abc", "wss://me:abc@feed.example.com"):
        with pytest.raises(ValidationError, match="carries a credential") as info:
            LiveFeedOptions(url=url, token_env="X")
        assert "abc" not in info.value.errors()[0]["msg"]


@pytest.mark.parametrize("token_in", ["header", "query"])
async def test_token_as_header_or_query_parameter(token_in: str):
    async with sandbox() as server, running(server, token_in=token_in) as (adapter, _sink):
        assert adapter.connected and TOKEN not in json.dumps(adapter.describe())


async def test_token_from_a_file(tmp_path: Path):
    token_file = tmp_path / "feed.token"
    token_file.write_text(TOKEN + "\n")
    async with sandbox() as server, running(server, token_env=None, token_file=token_file) as (adapter, _sink):
        assert adapter.describe()["token_source"] == f"file:{token_file}"


@pytest.mark.parametrize("token_in", ["header", "query"])
async def test_wrong_token_refuses_to_start_and_never_shows_the_token(
    token_in: str, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)  # websockets logs the whole handshake at DEBUG
    os.environ[TOKEN_ENV] = "wrong-token-abcdef"
    async with sandbox() as server:
        adapter = LiveFeedAdapter("PSX", options(server, token_in=token_in), INSTRUMENTS, WallClock(), RecordingSink())
        async with anyio.create_task_group() as tg:
            adapter.bind(tg)
            with pytest.raises(FeedAuthError, match="token refused \\(HTTP 401") as info:
                await adapter.connect()
    assert "wrong-token" not in str(info.value) and "wrong-token" not in caplog.text
    assert "Authorization: Bearer ***" in caplog.text or "token=***" in caplog.text  # logged, masked


async def test_unset_token_variable_is_named():
    os.environ.pop(TOKEN_ENV)
    async with sandbox() as server:
        adapter = LiveFeedAdapter("PSX", options(server), INSTRUMENTS, WallClock(), RecordingSink())
        with pytest.raises(FeedAuthError, match=TOKEN_ENV):
            await adapter.connect()


async def test_access_level_beyond_the_token_is_refused():
    async with sandbox(tokens=()) as server:
        server.add_token(TOKEN, level="L1")
        adapter = LiveFeedAdapter("PSX", options(server, access="l2"), INSTRUMENTS, WallClock(), RecordingSink())
        with pytest.raises(FeedAuthError, match="HTTP 403"):
            await adapter.connect()


# ---- the connection cap -------------------------------------------------------------------------------
async def test_connection_cap_per_token_in_this_process():
    async with sandbox() as server, running(server):
        second = LiveFeedAdapter("PSX2", options(server), INSTRUMENTS, WallClock(), RecordingSink())
        with pytest.raises(ConnectionCapError, match="max_connections=1"):
            await second.connect()
        assert server.connections == 1  # refused before touching the network


async def test_two_connections_when_configured_then_the_server_refuses_a_third():
    async with sandbox() as server, running(server, max_connections=2), running(server, max_connections=2):
        assert server.connections == 2
        # a third connection on the same token from elsewhere (another process): the server says no
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with pytest.raises(Exception, match="HTTP 429"):
            await ws_connect(server.feed_url("L2"), additional_headers=headers)
    async with sandbox() as server:
        outside = [await ws_connect(server.feed_url("L2"), additional_headers=headers) for _ in range(2)]
        adapter = LiveFeedAdapter("PSX", options(server), INSTRUMENTS, WallClock(), RecordingSink())
        with pytest.raises(ConnectionCapError, match="HTTP 429"):
            await adapter.connect()
        for ws in outside:
            await ws.close()


# ---- faults ---------------------------------------------------------------------------------------------
async def test_garbage_is_counted_logged_once_with_a_sample_and_the_connection_survives(
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.WARNING, logger="engine.psx_feed")
    async with sandbox() as server, running(server) as (adapter, sink):
        server.inject("garbage")
        server.inject("garbage")
        server.inject("garbage", text='{"type":"tick","symbol":"MEBL","ltp":"187.5"}')
        server.on_book(delta("MEBL", level(Side.SELL, "187.55", 100)))
        await until(lambda: same_book(sink, server, "MEBL") and adapter.malformed == 3)
        assert adapter.reconnects == 0 and sink.statuses() == ["connected"]
        assert sum(adapter.bad_input().values()) == 3
        first = [r.getMessage() for r in caplog.records if "dropped bad input (" in r.getMessage()]
        assert len(first) == len(adapter.bad_input())  # one line per kind (the codec names the kinds)
        assert '{"type":"tick","symbol":' in first[0]
        assert adapter.describe()["last_malformed_sample"] == '{"type":"tick","symbol":"MEBL","ltp":"187.5"}'


async def test_socket_drop_mid_frame_reconnects_with_backoff_resubscribes_and_resnapshots():
    async with sandbox() as server, running(server, ("MEBL", "OGDC")) as (adapter, sink):
        server.inject("refuse", seconds=0.3)  # the venue stays away for a while after the drop
        server.inject("drop_mid_frame")
        await until(lambda: "disconnected" in sink.statuses())
        server.on_book(delta("MEBL", level(Side.BUY, "187.50", 900)))  # missed while away
        await until(lambda: adapter.reconnects == 1 and same_book(sink, server, "MEBL")
                       and sink.snapshots("OGDC") == 2)
        assert sink.statuses() == ["connected", "disconnected", "connected"]
        assert adapter.connect_attempts >= 3  # the first one, some refused (503), the good one
        assert "HTTP 503" in adapter.last_error
        assert sink.books["MEBL"].best_bid == D("187.50")


async def test_truncated_json_then_close_is_counted_and_reconnected():
    async with sandbox() as server, running(server) as (adapter, sink):
        server.inject("truncate")
        await until(lambda: adapter.reconnects == 1 and sink.snapshots("MEBL") == 2)
        assert adapter.malformed == 1
        server.on_book(delta("MEBL", level(Side.SELL, "187.55", 1)))
        await until(lambda: same_book(sink, server, "MEBL"))


async def test_sequence_gap_asks_for_a_fresh_snapshot():
    async with sandbox() as server, running(server) as (adapter, sink):
        server.inject("gap")
        server.on_book(delta("MEBL", level(Side.BUY, "187.45", 0)))  # lost on the way
        server.on_book(delta("MEBL", level(Side.SELL, "187.55", 50)))  # arrives after a hole
        await until(lambda: adapter.gaps == 1 and sink.snapshots("MEBL") == 2 and same_book(sink, server, "MEBL"))
        assert adapter.describe()["dropped_deltas"] >= 1
        assert adapter.reconnects == 0
        assert sink.books["MEBL"].best_bid == D("187.40")  # the lost delete is in the fresh snapshot


async def test_stall_reports_stale_then_connected_when_data_flows_again():
    async with sandbox() as server, running(server, stale_seconds=D("0.15")) as (adapter, sink):
        server.inject("stall", seconds=0.5)
        server.on_book(delta("MEBL", level(Side.BUY, "187.30", 10)))  # queued behind the stall
        await until(lambda: "stale" in sink.statuses())
        await until(lambda: sink.statuses()[-1] == "connected" and same_book(sink, server, "MEBL"))
        assert sink.statuses() == ["connected", "stale", "connected"]
        assert adapter.reconnects == 0 and adapter.stale_events == 1


async def test_no_traffic_for_long_reconnects():
    async with sandbox() as server, running(server, stale_seconds=D("0.1"),
                                            stale_reconnect_seconds=D("0.3")) as (adapter, sink):
        server.inject("stall", seconds=5)
        await until(lambda: adapter.reconnects == 1 and sink.snapshots("MEBL") == 2)
        assert sink.statuses()[:3] == ["connected", "stale", "disconnected"]


async def test_closed_market_is_quiet_not_stale():
    async with sandbox() as server, running(server, stale_seconds=D("0.05")) as (_adapter, sink):
        server.on_session(SessionState(Phase.CLOSED))
        await anyio.sleep(0.3)
        assert "stale" not in sink.statuses()


async def test_expired_token_is_retried_and_a_rotated_token_file_reconnects(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    token_file = tmp_path / "feed.token"
    token_file.write_text(TOKEN)
    new_token = "rotated-token-9876543210"
    async with sandbox() as server, running(server, token_env=None, token_file=token_file) as (adapter, sink):
        server.inject("expire_token")
        await until(lambda: adapter.connect_attempts >= 3)  # refused: 401 token expired
        assert adapter.connected is False and "token refused (HTTP 401: token expired)" in adapter.last_error
        server.add_token(new_token)
        token_file.write_text(new_token + "\n")
        await until(lambda: adapter.reconnects == 1 and sink.snapshots("MEBL") == 2)
        assert "token expired" in sink.of("status")[1][2]  # the close reason reached the engine
        text = caplog.text + json.dumps(adapter.describe()) + repr(sink.calls)
        assert TOKEN not in text and new_token not in text


async def test_unknown_symbol_is_logged_and_the_rest_flows(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.WARNING, logger="engine.psx_feed")
    async with sandbox() as server, running(server) as (adapter, sink):
        adapter.subscribe(["NOSUCH", "OGDC"])
        await until(lambda: same_book(sink, server, "OGDC"))
        assert "unknown_symbol" in caplog.text and "NOSUCH" in caplog.text


# ---- surface ---------------------------------------------------------------------------------------------
def test_the_feed_is_a_market_data_adapter_with_no_order_methods():
    """A feed-only adapter implements the market-data contract only: nothing can route an order
    to it, and the engine refuses to name it where orders go (tests/unit/test_config.py)."""
    from engine.venue import MarketDataAdapter, OrderEntryAdapter

    assert issubclass(LiveFeedAdapter, MarketDataAdapter)
    assert not issubclass(LiveFeedAdapter, OrderEntryAdapter)
    for method in ("submit", "cancel", "amend", "query_open_orders", "cancel_all"):
        assert not hasattr(LiveFeedAdapter, method)


async def test_describe_counts_messages_in_and_out_and_reconnects():
    async with sandbox() as server, running(server) as (adapter, sink):
        server.inject("drop")
        await until(lambda: adapter.reconnects == 1 and sink.snapshots("MEBL") == 2)
        info = adapter.describe()
        assert info["messages_in"] == adapter.messages_in > 0
        assert info["messages_out"] == 2  # one subscribe per connection
        assert info["reconnects"] == 1 and info["url"] == server.feed_url("L2")


async def test_close_then_connect_again_starts_clean():
    sink = RecordingSink()
    async with sandbox() as server:
        adapter = LiveFeedAdapter("PSX", options(server), INSTRUMENTS, WallClock(), sink)
        async with anyio.create_task_group() as tg:
            adapter.bind(tg)
            adapter.subscribe(["MEBL"])
            await adapter.connect()
            await until(lambda: sink.snapshots("MEBL") == 1)
            await adapter.close()
            await until(lambda: server.connections == 0)
            await adapter.connect()  # the same token slot is free again
            await until(lambda: sink.snapshots("MEBL") == 2)
            server.inject("drop")
            await until(lambda: adapter.reconnects == 1 and sink.snapshots("MEBL") == 3)
            assert server.connections == 1
            await adapter.close()
            tg.cancel_scope.cancel()


def test_backoff_doubles_with_jitter_up_to_the_cap():
    backoff = Backoff(0.5, 4.0, random.Random(1))
    delays = [backoff.next_delay() for _ in range(7)]
    for attempt, delay in enumerate(delays):
        ceiling = min(4.0, 0.5 * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays[4:])) == 3  # jitter: capped delays still differ
    backoff.reset()
    assert backoff.next_delay() <= 0.5


async def test_sandbox_command_serves_the_paper_market(tmp_path: Path):
    token_file = tmp_path / "tokens"
    token_file.write_text(TOKEN + "\n")
    command = [sys.executable, "-m", "adapters.psx_feed.sandbox", "--port", "0", "--duration", "20",
               "--always-open", "--speed", "20", "--token-file", str(token_file), "--log-level", "WARNING"]
    async with await anyio.open_process(command, cwd=REPO) as process:
        try:
            assert process.stdout is not None
            line = b""
            with anyio.fail_after(10):
                while b"listening on" not in line:
                    line += await process.stdout.receive()
            url = line.decode().split("listening on ", 1)[1].split()[0]
            sink = RecordingSink()
            adapter = LiveFeedAdapter("PSX", LiveFeedOptions(url=url, access="l2", token_file=token_file, **FAST),
                                      INSTRUMENTS, WallClock(), sink)
            async with anyio.create_task_group() as tg:
                adapter.bind(tg)
                adapter.subscribe(["MEBL"])
                await adapter.connect()
                await until(lambda: sink.snapshots("MEBL") == 1 and len(sink.of("book")) > 3, timeout=10)
                async with httpx.AsyncClient() as http:
                    status = (await http.get(url.replace("ws://", "http://") + "/sandbox/status")).json()
                    assert status["market_state"] == "OPEN" and len(status["connections"]) == 1
                    fault = (await http.get(url.replace("ws://", "http://") + "/sandbox/fault",
                                            params={"kind": "drop"})).json()
                    assert fault == {"kind": "drop", "clients": 1}
                await until(lambda: adapter.reconnects == 1, timeout=10)
                await adapter.close()
                tg.cancel_scope.cancel()
        finally:
            process.terminate()


# ---- against the document-literal feed (issue 20: 002 alone, every extension off) ---------------------
def literal() -> dict[str, Any]:
    return {"extensions": FeedExtensions.document_literal()}


async def test_literal_feed_whole_books_become_a_snapshot_then_deltas():
    """002 documents "bid/ask levels", no ``snapshot`` field and no deltas: every literal book
    message is the whole book. The adapter read a book without ``snapshot`` as a delta on a book it
    did not hold and dropped it, so the engine never had a book at all."""
    async with sandbox(**literal()) as server, running(server, ("MEBL", "OGDC")) as (adapter, sink):
        assert sink.snapshots("MEBL") == 1 and sink.snapshots("OGDC") == 1
        server.on_book(delta("MEBL", level(Side.BUY, "187.45", 0), level(Side.SELL, "187.50", 200)))
        await until(lambda: same_book(sink, server, "MEBL"))
        last = [u for u in sink.of("book") if u.symbol == "MEBL"][-1]
        assert not last.snapshot  # only what changed reaches the engine
        assert set(last.changes) == {level(Side.BUY, "187.45", 0), level(Side.SELL, "187.50", 200)}
        assert sink.books["MEBL"].best_bid == D("187.40") and sink.books["MEBL"].best_ask == D("187.50")
        assert adapter.malformed == 0 and adapter.describe()["dropped_deltas"] == 0


async def test_literal_feed_heals_a_lost_book_message_at_the_next():
    """Without ``seq`` a lost message cannot be noticed; the next whole book repairs the book."""
    async with sandbox(**literal()) as server, running(server) as (adapter, sink):
        server.inject("gap")
        server.on_book(delta("MEBL", level(Side.BUY, "187.45", 0)))  # lost on the way
        server.on_book(delta("MEBL", level(Side.SELL, "187.55", 50)))
        await until(lambda: same_book(sink, server, "MEBL"))
        assert sink.books["MEBL"].best_bid == D("187.40") and adapter.gaps == 0
        assert sink.snapshots("MEBL") == 1
