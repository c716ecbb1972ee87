"""Document-literal mode of the PSX sandboxes (issue 20): with every extension off, the Live Feed
server and the Optimus broker say only what documents 002 and 000 show; each extension is a named
flag, on by default. Raw WebSocket and HTTP clients on 127.0.0.1 (port 0) read the wire as it is."""

from __future__ import annotations

import argparse
import inspect
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from adapters.optimus.sandbox import OptimusExtensions, OptimusSandbox, SandboxSettings
from adapters.optimus.webhooks import HttpRequest, HttpResponse, HttpServer
from adapters.psx.sandbox import Credentials, PsxSandbox, build_parser, setup_from_args
from adapters.psx_feed.sandbox import FeedExtensions, FeedServer
from adapters.psx_feed.sandbox import build_parser as feed_parser
from adapters.sim.extensions import add_extension_arguments, extensions_from_args
from engine.clock import WallClock
from engine.model import BookUpdate, Instrument, Phase, SessionState, Side

pytestmark = pytest.mark.anyio

D = Decimal
TOKEN = "feed-token-literal-test-1"
L2 = "/2.0/market/feed/l2"
USER, PASSWORD, SECRET = "tester", "pw-literal-test-1", b"whsec-literal-test-1"
INSTRUMENTS = [Instrument("MEBL", "PSX", previous_close=D("187.50"))]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# ---- the flags themselves ---------------------------------------------------------------------------
@pytest.mark.parametrize("flags", [FeedExtensions, OptimusExtensions])
def test_everyday_is_all_on_literal_all_off_and_every_flag_names_its_gap(flags: Any) -> None:
    assert all(getattr(flags.everyday(), n) for n in flags.names()) and flags() == flags.everyday()
    assert flags.document_literal().off() == flags.names() and flags.document_literal().literal
    text = inspect.getsource(flags)
    for name in flags.names():  # the docstring under each flag names the VENUES.md gap it stands for
        doc = text.split(f"    {name}: bool = True\n", 1)[1].split('"""')[1]
        assert ("PSX-" in doc or "OPT-" in doc) and "Literal" in doc, name


def test_single_flags_turn_on_and_off_and_an_unknown_one_is_named() -> None:
    some = FeedExtensions.document_literal().changed(on=["sequence_numbers"])
    assert some.sequence_numbers and not some.welcome and some.off() == tuple(
        n for n in FeedExtensions.names() if n != "sequence_numbers")
    with pytest.raises(ValueError, match="unknown extension nope"):
        FeedExtensions.everyday().changed(off=["nope"])


def test_the_command_lines_read_document_literal_and_single_extensions() -> None:
    args = feed_parser().parse_args(["--document-literal", "--extension", "sequence_numbers"])
    assert extensions_from_args(FeedExtensions, args) == FeedExtensions.document_literal().changed(
        on=["sequence_numbers"])
    args = build_parser().parse_args(["--no-extension", "webhook_signature", "--no-extension", "welcome"])
    assert extensions_from_args(OptimusExtensions, args).off() == ("webhook_signature",)
    assert extensions_from_args(FeedExtensions, args).off() == ("welcome",)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--extension", "no_such_flag"])
    shared = argparse.ArgumentParser()  # a command line that has the three flags already keeps them
    add_extension_arguments(shared, FeedExtensions)
    add_extension_arguments(shared, FeedExtensions)
    assert shared.parse_args(["--document-literal"]).document_literal


# ---- the Live Feed --------------------------------------------------------------------------------
@asynccontextmanager
async def feed(literal: bool = True, **kwargs: Any) -> AsyncIterator[FeedServer]:
    clock = WallClock()
    ext = FeedExtensions.document_literal() if literal else FeedExtensions.everyday()
    server = FeedServer(INSTRUMENTS, clock, (TOKEN,), extensions=ext, **kwargs)
    server.on_book(BookUpdate("PSX", "MEBL", clock.now_ns(), 1, (
        (Side.BUY, D("187.45"), D(1000)), (Side.SELL, D("187.55"), D(1500))), snapshot=True))
    server.on_session(SessionState(Phase.OPEN, True, True, True, "2026-03-02"))
    async with server:
        yield server


async def client(server: FeedServer, query: str = "") -> ClientConnection:
    headers = {} if query else {"Authorization": f"Bearer {TOKEN}"}
    return await ws_connect(server.url + L2 + query, additional_headers=headers)


async def messages(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    with anyio.fail_after(5):
        return [json.loads(await ws.recv()) for _ in range(count)]


async def test_literal_feed_sends_data_only_in_the_minimal_dialect() -> None:
    async with feed() as server:
        assert server.ping_interval is None  # PSX-5 off: no server pings
        ws = await client(server)
        await ws.send(json.dumps({"action": "subscribe", "symbols": ["MEBL", "NOPE"]}))
        tick, book = await messages(ws, 2)  # no welcome, market_status, subscribed or error first
        assert tick["type"] == "tick" and "seq" not in tick and "market" not in tick
        assert book == {"type": "book", "symbol": "MEBL", "bids": [[187.45, 1000]], "asks": [[187.55, 1500]],
                        "ts": book["ts"]}  # no snapshot flag, no seq, no order counts
        server.on_book(BookUpdate("PSX", "MEBL", 0, 0, ((Side.BUY, D("187.40"), D(200)),)))
        changed, = await messages(ws, 1)  # below the top: no tick, the whole book
        assert changed["type"] == "book" and changed["bids"] == [[187.45, 1000], [187.40, 200]]
        server.on_session(SessionState(Phase.CLOSED))
        server.on_book(BookUpdate("PSX", "MEBL", 0, 0, ((Side.BUY, D("187.45"), D(0)),)))  # a new top
        after = await messages(ws, 2)
        assert {m["type"] for m in after} == {"tick", "book"}  # no market_status in between
        await ws.close()


async def test_everyday_feed_keeps_its_extensions() -> None:
    async with feed(literal=False) as server:
        assert server.ping_interval == 20.0
        ws = await client(server)
        welcome, status = await messages(ws, 2)
        assert welcome["type"] == "welcome" and status["type"] == "market_status"
        await ws.send(json.dumps({"action": "subscribe", "symbols": ["MEBL"]}))
        subscribed, _tick, book = await messages(ws, 3)
        assert subscribed["type"] == "subscribed" and book["snapshot"] is True and "seq" in book
        await ws.close()


async def test_literal_feed_takes_the_token_as_token_only_and_terminates_a_third_connection() -> None:
    async with feed() as server:
        with pytest.raises(InvalidStatus, match="401"):
            await client(server, f"?access_token={TOKEN}")
        first, second = await client(server, f"?token={TOKEN}"), await client(server)
        third = await client(server)  # 002: "connection termination", after the handshake
        with pytest.raises(ConnectionClosed) as closed, anyio.fail_after(5):
            await third.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert server.stats["terminated_over_limit"] == 1 and server.connections == 2
        await first.close()
        await second.close()


# ---- the Optimus broker ----------------------------------------------------------------------------
@asynccontextmanager
async def broker(literal: bool = True) -> AsyncIterator[tuple[OptimusSandbox, httpx.AsyncClient, list]]:
    received: list[HttpRequest] = []

    async def receive(request: HttpRequest) -> HttpResponse:
        received.append(request)
        return HttpResponse(200, b"{}")

    receiver = HttpServer(receive, "127.0.0.1", 0, name="test receiver")
    await receiver.start()
    ext = OptimusExtensions.document_literal() if literal else OptimusExtensions.everyday()
    settings = SandboxSettings(users={USER: PASSWORD}, webhook_secret=SECRET, market=False, sessions="external",
                               webhook_url=receiver.url + "/webhook/visionmax", extensions=ext)
    try:
        async with OptimusSandbox(settings, clock=WallClock()) as sandbox, \
                httpx.AsyncClient(base_url=sandbox.base_url) as http:
            sandbox.sim.on_session(SessionState(Phase.PRE_OPEN, True, False, True, "2026-03-02"))
            login = await http.post("/auth/login", json={"username": USER, "password": PASSWORD})
            http.headers["Authorization"] = f"Bearer {login.json()['data']['access_token']}"
            yield sandbox, http, received
    finally:
        await receiver.close()


def order(key: str, **changes: Any) -> dict[str, Any]:
    body = {"symbol": "MEBL", "side": "buy", "order_type": "limit", "time_in_force": "day", "quantity": 500,
            "price": 170, "client_order_id": key, "idempotency_key": key}
    body.update(changes)
    return body


async def test_literal_broker_envelope_listing_keys_sessions_and_webhooks() -> None:
    async with broker() as (_sandbox, http, received):
        lot = (await http.post("/orders", json=order("k1", quantity=499))).json()
        assert lot["code"] == 2002 and "error_code" not in lot["error_details"]  # OPT-4 off
        assert (await http.post("/orders/open", json={})).status_code == 404  # OPT-3 listing off
        assert (await http.post("/orders/executions", json={})).status_code == 404
        no_body_key = order("k2")
        del no_body_key["idempotency_key"]
        answer = await http.post("/orders", json=no_body_key, headers={"Idempotency-Key": "k2"})
        assert answer.status_code == 400  # OPT-8: the header is not read
        market = await http.post("/orders", json=order("k3", order_type="market", price=None))
        assert market.json()["status"] == "success"  # OPT-6 off: pre-open takes it (000: market hours only)
        again = await http.post("/orders", json=order("k3", idempotency_key="k4"))
        assert again.json()["status"] == "success"  # a repeated client id with a new key is not 3002
        with anyio.fail_after(5):
            while not received:
                await anyio.sleep(0.01)
        hook = received[0]
        assert "x-optimus-signature" not in hook.headers and "x-optimus-event-id" not in hook.headers
        assert set(json.loads(hook.body)) == {"event", "data"}  # OPT-5: no event_id, no occurred_at


async def test_everyday_broker_keeps_its_extensions() -> None:
    async with broker(literal=False) as (_sandbox, http, received):
        lot = (await http.post("/orders", json=order("k1", quantity=499))).json()
        assert lot["code"] == 400 and lot["error_details"]["error_code"] == 2002
        assert (await http.post("/orders/open", json={})).status_code == 200
        market = await http.post("/orders", json=order("k3", order_type="market", price=None))
        assert market.json()["error_details"]["error_code"] == 2007  # pre-open: limit DAY only
        with anyio.fail_after(5):
            while not received:
                await anyio.sleep(0.01)
        assert "x-optimus-signature" in received[0].headers and "event_id" in json.loads(received[0].body)


# ---- the combined sandbox passes its mode to both ----------------------------------------------------
@pytest.fixture
def psx_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    creds = Credentials((TOKEN,), USER, PASSWORD, SECRET)
    for name, value in creds.env().items():
        monkeypatch.setenv(name, value)
    yield


def test_engine_sandbox_psx_document_literal_reaches_both_servers(psx_env: None) -> None:
    args = build_parser().parse_args(["--document-literal", "--extension", "order_listing"])
    psx = setup_from_args(args).psx
    assert psx.feed.extensions == FeedExtensions.document_literal()
    assert psx.broker.settings.extensions == OptimusExtensions.document_literal().changed(on=["order_listing"])
    everyday = setup_from_args(build_parser().parse_args([])).psx
    assert everyday.feed.extensions.off() == () and everyday.broker.settings.extensions.off() == ()
    both = PsxSandbox(clock=WallClock(), credentials=Credentials.generate(), document_literal=True)
    assert both.feed.extensions.literal and both.broker.settings.extensions.literal
    assert isinstance(args, argparse.Namespace)
