"""Algo724 streams end to end on 127.0.0.1: the REAL centrifuge-python client (inside
adapters.algo724.streams) against the project's Centrifugo server (adapters.algo724.centrifugo).

Document 003 gives one connect command and its reply; the rest is the Centrifugo JSON protocol
and the ALG-3 payload decisions (adapters/algo724/streams_codec.py)."""

from __future__ import annotations

import ast
import asyncio
import json
import logging
from pathlib import Path

import pytest
from support.algo724_streams import ACCOUNT, INSTRUMENT, SYMBOL, D, Tokens, centrifugo, streams, until
from websockets.asyncio.client import connect as ws_connect

from adapters.algo724.centrifugo import CLOSE_BAD_REQUEST
from adapters.algo724.streams_codec import (
    account_channel,
    book_channel,
    execution_payload,
    order_payload,
    trade_channel,
    trade_payload,
)
from engine.model import Order, OrderStatus, Side

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parent.parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "algo724"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # websockets and centrifuge-python run on asyncio


def order_object(trade_order_id: str, status: str, executions: list[dict] = ()) -> dict:
    """A document-003 Order object (the fields the stream reads, with 003's example values)."""
    return {"tradeOrderId": trade_order_id, "tradingAccountId": ACCOUNT, "venue": "BINANCE",
            "instrumentId": INSTRUMENT, "orderSide": "BUY", "orderType": "LIMIT", "timeInForce": "GTC",
            "status": status, "limitPrice": "100.00000000", "quantity": "1.00000000",
            "executedQuantity": str(sum(D(e["executedQuantity"]) for e in executions)),
            "rejectReason": "", "cancelReason": "", "updatedAt": 1632933600000, "executions": list(executions)}


def execution(n: int, qty: str = "0.25") -> dict:
    return {"executionId": f"exec-{n}", "externalTradeId": f"binance-exec-{n}", "venue": "BINANCE",
            "instrumentId": INSTRUMENT, "orderSide": "BUY", "executedQuantity": qty, "executedPrice": "100.00000000",
            "executedCost": "25.00000000", "fees": [{"security": "BINANCE:USDT", "asset": "USDT", "venue": "BINANCE",
                                                     "quantity": "0.02500000"}],
            "executedAt": 1632933600000 + n}


# ---- connect, subscribe, publications --------------------------------------------------------------
async def test_connect_subscribes_the_three_document_channels_and_delivers_book_and_trades():
    tokens = Tokens()
    async with centrifugo(tokens) as (server, book), streams(server, tokens) as (client, sink, _):
        await until(lambda: sink.snapshots(SYMBOL) == 1)
        assert sorted(client.channels()) == sorted([
            f"tradingAccount:{ACCOUNT}", "market:orderBook:BINANCE:BTC/USDT", "market:trade:BINANCE:BTC/USDT"])
        await until(lambda: server.stats().get("subscribes") == 3 and sink.snapshots(SYMBOL) == 1)
        book.delta(bids=[("100.5", "2")], asks=[("101", "0")])
        server.publish(trade_channel(INSTRUMENT),
                       trade_payload(INSTRUMENT, "BINANCE", "t-1", D("100.5"), D("0.125"), "SELL", 1632933600000))
        await until(lambda: len(sink.of("trade")) == 1 and sink.books[SYMBOL].best_bid == D("100.5"))
        engine_book = sink.books[SYMBOL]
        assert engine_book.bids == [(D("100.5"), D("2")), (D("100"), D("1"))]
        assert engine_book.asks == []  # "0" removed the level
        assert engine_book.seq == 1
        trade = sink.of("trade")[0]
        assert (trade.price, trade.qty, trade.aggressor, trade.trade_id) == (D("100.5"), D("0.125"), Side.SELL, "t-1")
        assert trade.ts == 1632933600000 * 1_000_000
        assert tokens.asked == 1  # the JWT is asked for once; it does not expire


def document_websocket_section() -> tuple[str, list[dict]]:
    """tests/fixtures/algo724/websocket.redoc.txt (document 003's WebSocket section): its text, and
    its examples as JSON: the prose connect command, then the Redoc connect request and reply (the
    ``- `` markers dropped; the reply's last ``}`` is the document's last line, which the fixture
    cannot hold without a line end, so it is supplied here)."""
    text = (FIXTURES / "websocket.redoc.txt").read_text()
    body = text.replace("{- ", "{").replace("\n- ", "\n") + "}"
    decoder = json.JSONDecoder()
    examples, at = [], 0
    while (at := body.find("{", at)) >= 0:
        if at and body[at - 1] not in "\n}":  # a "{accountId}" inside a table line, not an example
            at += 1
            continue
        value, at = decoder.raw_decode(body, at)
        examples.append(value)
    return text, examples


def imports_of(module: str) -> set[str]:
    tree = ast.parse((REPO / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_server_side_is_written_from_the_protocol_not_from_the_client():
    """ARCHITECTURE principle 5: the Centrifugo server imports neither the client library nor the
    adapter; the sandbox's publisher takes only the ALG-3 payload decision (streams_codec)."""
    ours = ("centrifuge", "adapters.algo724")
    assert not {m for m in imports_of("adapters.algo724.centrifugo") if m.startswith(ours)}
    feed = {m for m in imports_of("adapters.algo724.centrifugo_feed") if m.startswith(ours)}
    assert feed == {"adapters.algo724.centrifugo", "adapters.algo724.streams_codec", "adapters.algo724.sandbox"}
    # the sandbox module appears only for its type (TYPE_CHECKING): the feed is given the sandbox


def test_the_documents_channel_patterns_are_the_codecs():
    text, _ = document_websocket_section()
    patterns = [line.split(" |")[0] for line in text.splitlines() if line.endswith("} |")]
    assert patterns == ["tradingAccount:{accountId}", "market:orderBook:{instrumentId}", "market:trade:{instrumentId}"]
    assert account_channel("{accountId}") == patterns[0]
    assert book_channel("{instrumentId}") == patterns[1]
    assert trade_channel("{instrumentId}") == patterns[2]


async def test_the_documents_connect_command_gets_the_documents_reply():
    """003's request (its placeholder JWT accepted by the test authenticator) and its reply: the
    same keys, ``version`` 5.0.0, ``expires`` false, ``ttl`` 0, ``ping`` 25, ``pong`` true."""
    _, examples = document_websocket_section()
    prose, request, doc_reply = examples
    assert prose == {"connect": {"token": "your-jwt-token", "name": "your-client-name"}, "id": 1}
    tokens = Tokens()
    tokens.issued[request["connect"]["token"]] = None  # the document's placeholder, as a live token
    async with centrifugo(tokens) as (server, _):
        async with ws_connect(server.url) as ws:
            await ws.send(json.dumps(request))
            reply = json.loads(await ws.recv())
    assert reply["id"] == doc_reply["id"] == 1
    assert set(reply["connect"]) == set(doc_reply["connect"])
    for key in ("version", "expires", "ttl", "ping", "pong"):
        assert reply["connect"][key] == doc_reply["connect"][key], key


async def test_an_empty_sec_websocket_protocol_header_is_accepted():
    """centrifuge-python before 0.7 sent an empty header in JSON mode; websockets alone answers 400."""
    tokens = Tokens()
    async with centrifugo(tokens) as (server, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: \r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
    assert status.startswith(b"HTTP/1.1 101"), status


async def test_the_server_pings_and_the_client_answers_pong():
    tokens = Tokens()
    async with centrifugo(tokens, ping_interval_s=0.1, pong_timeout_s=5) as (server, _), \
            streams(server, tokens) as (client, _sink, _):
        await until(lambda: server.stats().get("pongs", 0) >= 3)
        assert "close_3012" not in server.stats()
        assert client.client.state.value == "connected"


async def test_a_client_that_does_not_answer_pings_is_closed_no_pong():
    tokens = Tokens()
    async with centrifugo(tokens, ping_interval_s=0.1, pong_timeout_s=0.3) as (server, _):
        token = await tokens.get_token()
        async with ws_connect(server.url) as ws:
            await ws.send(json.dumps({"id": 1, "connect": {"token": token}}))
            with pytest.raises(Exception):  # noqa: B017 - the close, however websockets words it
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 3012


# ---- the JWT -------------------------------------------------------------------------------------
async def test_an_expiring_token_is_refreshed_before_the_server_closes_the_connection():
    tokens = Tokens(ttl_s=1.5)
    async with centrifugo(tokens, expired_close_delay_s=3.0) as (server, book), \
            streams(server, tokens) as (_client, sink, _):
        await until(lambda: server.stats().get("refreshes", 0) >= 2, timeout=20)
        assert tokens.asked >= 3  # connect + one per refresh: the provider is asked every time
        assert server.stats().get("close_3005", 0) == 0
        assert server.stats()["connections"] == 1
        book.delta(bids=[("99", "3")])
        await until(lambda: sink.books[SYMBOL].bids[-1] == (D("99"), D("3")))


async def test_an_expired_token_at_connect_makes_the_client_fetch_a_new_one():
    tokens = Tokens(ttl_s=60)
    stale = await tokens.get_token()
    tokens.issued[stale] = 0.0  # expired long ago
    given = iter([stale])

    async def provider() -> str:
        return next(given, None) or await tokens.get_token()

    async with centrifugo(tokens) as (server, _), streams(server, tokens, provider) as (_client, sink, _):
        await until(lambda: sink.snapshots(SYMBOL) == 1)
    assert server.stats().get("error_109") == 1
    assert tokens.asked == 2  # the expired one, then a fresh one


# ---- reconnect and recovery ----------------------------------------------------------------------
async def test_a_dropped_stream_reconnects_and_recovers_missed_publications_by_offset():
    tokens = Tokens()
    async with centrifugo(tokens) as (server, book), streams(server, tokens) as (client, sink, reconciles):
        await until(lambda: server.stats().get("subscribes") == 3 and sink.snapshots(SYMBOL) == 1)
        book.delta(bids=[("100.1", "1")])
        await until(lambda: sink.books[SYMBOL].seq == 1)
        assert server.drop_connections() == 1
        for n in range(2, 12):  # published while the client is away: only the history has them
            book.delta(bids=[(f"{100 + n}", "1")])
        await until(lambda: sink.books[SYMBOL].seq == 11, timeout=20)
        assert server.stats()["recovered"] == 3
        assert reconciles == []
        assert client.router.counts.get("gaps", 0) == 0
        assert [p for p, _ in sink.books[SYMBOL].bids][:3] == [D("111"), D("110"), D("109")]
        statuses = sink.statuses()
        assert statuses[-2:] == ["stale", "connected"]  # strategies heard the data gap and its end


async def test_recovery_impossible_calls_the_reconcile_hook_and_the_snapshot_resets_the_book():
    tokens = Tokens()
    async with centrifugo(tokens) as (server, book), streams(server, tokens) as (_client, sink, reconciles):
        await until(lambda: server.stats().get("subscribes") == 3 and sink.snapshots(SYMBOL) == 1)
        book.delta(bids=[("100.1", "1")])
        await until(lambda: sink.books[SYMBOL].seq == 1)
        server.drop_connections()
        server.reset_epochs()  # the history is gone: no position can be recovered
        book.delta(bids=[("100.2", "1")])
        await until(lambda: len(reconciles) == 3, timeout=20)
        assert f"recovery failed for channel tradingAccount:{ACCOUNT}" in reconciles
        await until(lambda: sink.books[SYMBOL].best_bid == D("100.2"))  # from the resubscribe's snapshot
        assert server.stats()["recovery_failed"] == 3


async def test_a_sequence_gap_empties_the_book_and_resyncs_from_a_fresh_snapshot():
    tokens = Tokens()
    async with centrifugo(tokens) as (server, book), streams(server, tokens) as (client, sink, _):
        await until(lambda: server.stats().get("subscribes") == 3 and sink.snapshots(SYMBOL) == 1)
        book.delta(bids=[("100.1", "1")])
        book.delta(bids=[("100.3", "1")], skip=1)  # sequence 3 after 1: one delta lost upstream
        await until(lambda: client.router.counts.get("gaps") == 1)
        await until(lambda: sink.snapshots(SYMBOL) >= 3)  # first, the emptied book, the fresh one
        assert sink.books[SYMBOL].best_bid == D("100.3")
        assert sink.books[SYMBOL].seq == 3
        book.delta(bids=[("100.4", "1")])
        await until(lambda: sink.books[SYMBOL].seq == 4)


async def test_a_full_queue_never_blocks_the_library_and_the_book_is_resynced():
    tokens = Tokens()
    async with centrifugo(tokens) as (server, book), streams(server, tokens, queue_size=4) as (client, sink, _):
        await until(lambda: server.stats().get("subscribes") == 3 and sink.snapshots(SYMBOL) == 1)
        for n in range(1, 200):
            book.delta(bids=[(f"{100 + n}", "1")])
        await until(lambda: SYMBOL in sink.books and sink.books[SYMBOL].seq == 199, timeout=30)
        assert client.dropped > 0
        assert sink.books[SYMBOL].best_bid == D("299")


# ---- the account channel -------------------------------------------------------------------------
async def test_order_updates_and_fills_deduplicated_by_execution_id():
    tokens = Tokens()
    async with centrifugo(tokens) as (server, _), streams(server, tokens) as (client, sink, _):
        await until(lambda: server.stats().get("subscribes") == 3 and sink.snapshots(SYMBOL) == 1)
        order = Order("c-1", "s", "algo724", SYMBOL, Side.BUY, D("1"), D("100"))
        sink.orders["c-1"] = order
        channel = account_channel(ACCOUNT)
        server.publish(channel, order_payload(order_object("t-1", "SUBMITTED")))  # before the REST answer
        client.bind_order("t-1", "c-1")
        server.publish(channel, order_payload(order_object("t-1", "ACCEPTED")))
        server.publish(channel, order_payload(order_object("t-1", "PARTIALLY_FILLED", [execution(1)])))
        server.publish(channel, execution_payload(ACCOUNT, "t-1", execution(2)))
        server.publish(channel, order_payload(order_object("t-1", "PARTIALLY_FILLED", [execution(1), execution(2)])))
        server.publish(channel, order_payload(order_object("t-1", "CANCELLED", [execution(1), execution(2)])))
        await until(lambda: order.status is OrderStatus.CANCELLED)
        fills = sink.fills_for("c-1")
        assert [f.exec_id for f in fills] == ["exec-1", "exec-2"]
        assert fills[0].fee == D("0.025") and fills[0].price == D("100")
        assert order.cum_qty == D("0.5")
        assert sink.errors == []
        assert client.router.counts["duplicate_executions"] == 4  # exec-1 and exec-2, listed twice more each


async def test_an_update_that_beats_the_rest_answer_is_held_and_replayed_on_bind():
    tokens = Tokens()
    async with centrifugo(tokens) as (server, _), streams(server, tokens) as (client, sink, _):
        await until(lambda: server.stats().get("subscribes") == 3 and sink.snapshots(SYMBOL) == 1)
        order = Order("c-2", "s", "algo724", SYMBOL, Side.BUY, D("1"), D("100"))
        sink.orders["c-2"] = order
        server.publish(account_channel(ACCOUNT), order_payload(order_object("t-2", "FILLED", [execution(7, "1")])))
        await until(lambda: client.router.counts.get("held") == 1)
        assert sink.fills_for("c-2") == []
        client.bind_order("t-2", "c-2")
        assert order.status is OrderStatus.FILLED


# ---- hostile input -------------------------------------------------------------------------------
async def test_a_bad_publication_is_counted_and_the_stream_goes_on():
    tokens = Tokens()
    async with centrifugo(tokens) as (server, book), streams(server, tokens) as (client, sink, reconciles):
        await until(lambda: server.stats().get("subscribes") == 3 and sink.snapshots(SYMBOL) == 1)
        server.publish(trade_channel(INSTRUMENT), {"instrumentId": INSTRUMENT, "tradeId": "x", "price": 1e5,
                                                   "quantity": "1", "side": "BUY"})  # a float: not exact
        server.publish(account_channel(ACCOUNT), {"type": "ORDER", "data": "nope"})
        book.delta(bids=[("100.2", "1")])
        await until(lambda: sink.books[SYMBOL].seq == 1)
        assert client.bad.counts == {"bad_number": 1, "malformed": 1}
        assert reconciles == [f"undecodable publication on channel tradingAccount:{ACCOUNT}"]
        assert sink.of("trade") == []


async def test_a_frame_the_library_cannot_parse_stops_it_and_we_connect_again():
    """centrifuge-python disconnects for good ("bad protocol") on a frame it cannot parse."""
    tokens = Tokens()
    async with centrifugo(tokens) as (server, book), streams(server, tokens) as (client, sink, _):
        await until(lambda: server.stats().get("subscribes") == 3 and sink.snapshots(SYMBOL) == 1)
        server.send_raw("{not json")
        await until(lambda: client.terminal_disconnects == 1)
        await until(lambda: server.stats()["connections"] == 2, timeout=30)
        book.delta(bids=[("100.2", "1")])
        await until(lambda: sink.books[SYMBOL].seq == 1)


async def test_the_server_closes_a_connection_that_sends_garbage():
    tokens = Tokens()
    async with centrifugo(tokens) as (server, _):
        async with ws_connect(server.url) as ws:
            await ws.send("[1, 2")
            with pytest.raises(Exception):  # noqa: B017
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == CLOSE_BAD_REQUEST


async def test_an_engine_that_raises_on_an_event_does_not_stop_the_stream():
    tokens = Tokens()
    async with centrifugo(tokens) as (server, book), streams(server, tokens) as (client, sink, _):
        await until(lambda: server.stats().get("subscribes") == 3 and sink.snapshots(SYMBOL) == 1)

        def broken(trade: object) -> None:
            raise RuntimeError("a strategy bug")

        sink.on_trade = broken  # type: ignore[method-assign]
        server.publish(trade_channel(INSTRUMENT), trade_payload(INSTRUMENT, "BINANCE", "t-9", D("1"), D("1"), "BUY", 1))
        book.delta(bids=[("100.2", "1")])
        await until(lambda: sink.books[SYMBOL].seq == 1)
        assert client.sink_errors == 1


async def test_the_token_never_reaches_a_log_line_even_at_debug(caplog: pytest.LogCaptureFixture):
    """The library logs its commands (connect and refresh carry the JWT) and websockets its frames."""
    tokens = Tokens(ttl_s=1.5)
    caplog.set_level(logging.DEBUG)
    async with centrifugo(tokens, expired_close_delay_s=3.0) as (server, _), streams(server, tokens) as (_c, _sink, _):
        await until(lambda: server.stats().get("refreshes", 0) >= 1, timeout=20)
    assert "send commands" in caplog.text and "refresh" in caplog.text  # the lines were logged ...
    for token in tokens.issued:
        assert token not in caplog.text  # ... without the token
