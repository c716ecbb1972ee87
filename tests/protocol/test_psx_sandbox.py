"""The combined PSX sandbox (adapters/psx/sandbox.py) on 127.0.0.1, port 0 only: one paper market
behind the Live Feed WebSocket and the Optimus REST API. Real parts throughout: the real Live Feed
and Optimus adapters, raw WebSocket and HTTP clients, the project's own HTTP server as a webhook
receiver checking signatures, and the command as a subprocess."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml
from support import REPO, until
from support.sinks import RecordingSink
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from adapters.optimus import codec as optimus_codec
from adapters.optimus.adapter import OptimusAdapter, OptimusOptions
from adapters.optimus.sandbox import DOC_HOLDINGS, DOC_INSTRUMENTS
from adapters.optimus.webhooks import HttpRequest, HttpResponse, HttpServer
from adapters.psx.sandbox import (
    DEFAULT_BROKER_PORT,
    DEFAULT_FEED_PORT,
    DEFAULT_WEBHOOK_URL,
    FAULTS,
    Credentials,
    PsxSandbox,
    _config_mismatches,
    build_parser,
    check_fault,
    main,
    parse_fault_spec,
)
from adapters.psx_feed import adapter as feed_adapter_module
from adapters.psx_feed.adapter import LiveFeedAdapter, LiveFeedOptions
from engine.clock import KARACHI, NS_PER_S, Clock, ScaledClock, WallClock
from engine.config import load_config
from engine.model import (
    Order,
    OrderStatus,
    OrderType,
    Phase,
    Side,
    TimeInForce,
)
from engine.venue import venue_from_config

D = Decimal

CREDS = Credentials(("feed-token-test-only-1",), "tester", "pw-test-only-1", b"whsec-test-only-1")
TOKEN = CREDS.feed_tokens[0]
L2 = "/2.0/market/feed/l2"
ORDER_KEYS = 0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # websockets and the sandboxes run on asyncio


@pytest.fixture(autouse=True)
def engine_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What an engine's config names (config.psx-sandbox.yaml): the adapters read these."""
    for name, value in CREDS.env().items():
        monkeypatch.setenv(name, value)


@pytest.fixture(autouse=True)
def no_leaked_feed_slots() -> Iterator[None]:
    yield
    leaked = dict(feed_adapter_module._OPEN)
    feed_adapter_module._OPEN.clear()
    assert not leaked, f"feed connection slots still held after the test: {leaked}"


@asynccontextmanager
async def venue(**kwargs: Any) -> AsyncIterator[PsxSandbox]:
    values: dict[str, Any] = dict(clock=WallClock(), credentials=CREDS, always_open=True, market=False,
                                  webhook_url=None, webhook_retry_s=D("0.05"))
    values.update(kwargs)
    async with PsxSandbox(**values) as psx:
        yield psx


async def feed_client(psx: PsxSandbox, token: str = TOKEN) -> ClientConnection:
    return await ws_connect(psx.feed_url + L2, additional_headers={"Authorization": f"Bearer {token}"})


async def recv_json(ws: ClientConnection, want: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict:
    """The first message ``want`` accepts (others are skipped)."""
    with anyio.fail_after(timeout):
        while True:
            message = json.loads(await ws.recv())
            if want(message):
                return message


class Rest:
    """A plain REST client of the broker: the document's envelope, read as is."""

    def __init__(self, psx: PsxSandbox) -> None:
        self.http = httpx.AsyncClient(base_url=psx.broker_url)
        self.token = ""

    async def login(self) -> None:
        answer = await self.http.post("/auth/login", json={"username": CREDS.username, "password": CREDS.password})
        assert answer.status_code == 200, answer.text
        self.token = answer.json()["data"]["access_token"]

    async def post(self, path: str, body: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
        headers.setdefault("Authorization", f"Bearer {self.token}")
        return await self.http.post(path, content=json.dumps(body or {}), headers=headers)

    async def place(self, qty: int | str, price: str | None, symbol: str = "MEBL", side: str = "buy",
                    tif: str = "day") -> httpx.Response:
        global ORDER_KEYS
        ORDER_KEYS += 1
        key = f"k-{ORDER_KEYS}"
        body = {"symbol": symbol, "side": side, "order_type": "limit" if price else "market",
                "time_in_force": tif, "quantity": qty, "client_order_id": key}
        text = json.dumps(body)
        if price is not None:  # a JSON number written from its text: exact, no float on the way
            text = text[:-1] + f', "price": {D(price)}}}'
        return await self.http.post("/orders", content=text,
                                    headers={"Authorization": f"Bearer {self.token}", "Idempotency-Key": key})

    async def aclose(self) -> None:
        await self.http.aclose()


def refusal(answer: httpx.Response) -> int:
    """The document's error envelope, checked whole; returns its 4-digit code (OPT-4)."""
    body = answer.json()
    assert set(body) == {"status", "code", "message", "error_details", "request_id"}, body
    assert body["status"] == "error" and body["code"] == answer.status_code and body["message"]
    return int(body["error_details"]["error_code"])


class Receiver:
    """A small local webhook receiver: the project's HTTP server, checking each signature."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.events: list[tuple[str, str]] = []  # (event, event_id) in arrival order
        self.server = HttpServer(self._handle, "127.0.0.1", 0, name="test receiver")

    async def _handle(self, request: HttpRequest) -> HttpResponse:
        optimus_codec.verify_webhook([CREDS.webhook_secret], request.headers.get("x-optimus-signature"),
                                     request.body, self.clock.now_ns(), 60)
        payload = json.loads(request.body)
        self.events.append((payload["event"], payload["event_id"]))
        return HttpResponse(200, b"{}")

    @property
    def url(self) -> str:
        return self.server.url + "/webhook/visionmax"


# ---- one market behind both servers ---------------------------------------------------------------


@pytest.mark.anyio
async def test_a_rest_order_trades_on_the_feed_and_returns_as_webhooks() -> None:
    # the one-command shape: adapters and sandbox on ONE ScaledClock object (20x: a minute in 3 s)
    clock = ScaledClock(None, 20)
    async with venue(clock=clock, market=True, seed=3) as psx, anyio.create_task_group() as tg:
        feed_sink, broker_sink = RecordingSink(), RecordingSink()
        feed = LiveFeedAdapter("psx", LiveFeedOptions(url=psx.feed_url, access="l2", token_env="PSX_FEED_TOKEN"),
                               DOC_INSTRUMENTS, clock, feed_sink)
        # the poll is slow on purpose: what the broker sink learns here comes through the webhooks
        broker = OptimusAdapter("psx", OptimusOptions(base_url=psx.broker_url, webhook_listen="127.0.0.1:0",
                                                      poll_interval_s=D(3600)), DOC_INSTRUMENTS, clock, broker_sink)
        feed.bind(tg)
        broker.bind(tg)
        feed.subscribe(["MEBL"])
        await feed.connect()
        await broker.connect()
        psx.webhook_url = broker.webhook_url
        try:
            await until(lambda: "MEBL" in feed_sink.books and feed_sink.books["MEBL"].best_ask is not None)

            # a resting buy placed over REST shows up in the feed's L2 order details
            resting = Order("t-1", "t", "psx", "MEBL", Side.BUY, D(500), D("170.00"), OrderType.LIMIT)
            broker_sink.orders[resting.client_id] = resting
            broker.submit(resting)
            await until(lambda: (Side.BUY, D("170.00"), D(500)) in feed.l3_orders("MEBL").values())
            await until(lambda: resting.status is OrderStatus.NEW)

            # a marketable buy trades against the book the feed shows: the trade is on the feed
            trades_before = len(feed_sink.of("trade"))
            taker = Order("t-2", "t", "psx", "MEBL", Side.BUY, D(500), D("206.25"), OrderType.LIMIT,
                          tif=TimeInForce.IOC)
            broker_sink.orders[taker.client_id] = taker
            broker.submit(taker)
            await until(lambda: taker.cum_qty == D(500))
            fills = [f for f in broker_sink.of("fill") if f.client_id == "t-2"]
            assert sum(f.qty for f in fills) == D(500)
            await until(lambda: all(
                any(t.price == f.price and t.qty == f.qty for t in feed_sink.of("trade")[trades_before:])
                for f in fills))
            # ... and the book the feed client keeps is the sandbox's own
            await until(lambda: feed_sink.books["MEBL"].asks == psx.feed.book("MEBL").asks)

            # the webhooks were delivered (signed) to the adapter's receiver and applied
            def events() -> list[str]:
                return [w["event"] for w in psx.broker.webhooks_sent if w["data"]["client_order_id"] == "t-2"]

            await until(lambda: "order.execution" in events())  # the fill may come first by the REST answer
            stats = broker.stats()
            assert stats["webhook_applied"] >= 3 and stats.get("webhook_bad_signature", 0) == 0
            assert stats.get("status_queries", 0) == 0  # nothing had to be found by polling
        finally:
            await broker.close()
            await feed.close()
            tg.cancel_scope.cancel()
    assert broker_sink.errors == [] and feed_sink.errors == [], (broker_sink.errors, feed_sink.errors)


@pytest.mark.anyio
async def test_the_broker_enforces_lot_and_band_in_the_documents_envelope() -> None:
    async with venue() as psx:
        rest = Rest(psx)
        try:
            await rest.login()
            lot = await rest.place(100, "187.50")  # MEBL: "lot size = 500 shares"
            assert lot.status_code == 400 and refusal(lot) == 2002
            band = await rest.place(500, "206.26")  # previous close 187.50 + 10% = 206.25
            assert band.status_code == 400 and refusal(band) == 2003
            symbol = await rest.place(1, "10.00", symbol="NOPE")
            assert refusal(symbol) == 2001
            short = await rest.place(1000, "432.10", symbol="SYS", side="sell")  # holds 500
            assert refusal(short) == 2005
            good = await rest.place(500, "206.25")
            body = good.json()
            assert good.status_code == 200 and body["status"] == "success" and body["code"] == 200
            assert body["data"]["status"] in ("pending", "open") and body["request_id"]
            unauthenticated = await rest.post("/orders/open", Authorization="Bearer nope")
            assert unauthenticated.status_code == 401 and refusal(unauthenticated) == 1001
        finally:
            await rest.aclose()


@pytest.mark.anyio
async def test_one_session_follower_drives_the_feed_and_the_broker() -> None:
    # Monday 2026-11-23, 09:14:30 Karachi at ten times real speed: closed, pre-open 3 real seconds
    # later (time for the login and an order on a loaded machine)
    start = int(dt.datetime(2026, 11, 23, 9, 14, 30, tzinfo=KARACHI).timestamp()) * NS_PER_S
    clock = ScaledClock(start, 10)
    async with venue(clock=clock, always_open=False) as psx:
        assert psx.broker._follower is None  # the broker runs no schedule of its own: one follower
        rest = Rest(psx)
        ws = await feed_client(psx)
        try:
            status = await recv_json(ws, lambda m: m["type"] == "market_status")
            assert status["state"] == "CLOSED"
            await rest.login()
            assert clock.now().time() < dt.time(9, 15)
            closed = await rest.place(500, "187.50")
            assert closed.status_code == 400 and refusal(closed) == 2006

            status = await recv_json(ws, lambda m: m["type"] == "market_status", timeout=10)
            assert status["state"] == "PRE_OPEN"
            assert psx.session is not None and psx.session.phase is Phase.PRE_OPEN
            accepted = await rest.place(500, "187.50")
            assert accepted.status_code == 200, accepted.text
            ioc = await rest.place(500, "187.50", tif="ioc")  # pre-open takes limit DAY orders only
            assert refusal(ioc) == 2007
        finally:
            await ws.close()
            await rest.aclose()


@pytest.mark.anyio
async def test_post_close_takes_limit_orders_at_the_closing_price_only() -> None:
    """000 lists post-close (15:30-15:35) among the sessions orders are validated against; PSX trades
    there at the closing price only. The broker and the engine's broker-doc profile agree: a limit
    order at the closing price is taken, another price is 2003, a market order 2007, and after
    15:35 the market is closed (2006)."""
    # Monday 2026-11-23, 15:34:30 Karachi at ten times real speed: post-close, closed 3 real seconds
    # later (time for the login and three orders on a loaded machine)
    start = int(dt.datetime(2026, 11, 23, 15, 34, 30, tzinfo=KARACHI).timestamp()) * NS_PER_S
    clock = ScaledClock(start, 10)
    async with venue(clock=clock, always_open=False, market=False) as psx:
        rest = Rest(psx)
        try:
            await rest.login()
            assert psx.session is not None and psx.session.phase is Phase.POST_CLOSE
            close = psx.sim.matching_engine("MEBL").closing_price
            assert close is not None
            taken = await rest.place(500, str(close))
            assert taken.status_code == 200, taken.text
            elsewhere = await rest.place(500, str(close - Decimal("0.05")))
            assert refusal(elsewhere) == 2003 and "closing price" in elsewhere.text
            market = await rest.place(500, None)
            assert refusal(market) == 2007
            while psx.session.phase is Phase.POST_CLOSE:
                await anyio.sleep(0.05)
            closed = await rest.place(500, str(close))
            assert closed.status_code == 400 and refusal(closed) == 2006
        finally:
            await rest.aclose()


# ---- faults ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_drop_sockets_aborts_feed_and_broker_connections() -> None:
    async with venue() as psx:
        ws = await feed_client(psx)
        await recv_json(ws, lambda m: m["type"] == "welcome")
        host, port = psx.broker_url.removeprefix("http://").split("/")[0].split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST /v1/orders/open HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 401")  # kept alive after the answer
        length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)

        result = psx.inject("drop_sockets")
        assert result == {"kind": "drop_sockets", "feed_sockets": 1, "broker_sockets": 1}
        with pytest.raises(ConnectionClosed) as closed:
            await recv_json(ws, lambda m: False)
        assert closed.value.rcvd is None  # no close frame: the socket was aborted
        with anyio.fail_after(2):
            try:
                assert await reader.read() == b""
            except ConnectionResetError:
                pass
        writer.close()


@pytest.mark.anyio
async def test_5xx_and_slow_answers() -> None:
    async with venue() as psx:
        rest = Rest(psx)
        try:
            await rest.login()
            psx.inject("5xx", count=2, status=502)
            for _ in range(2):
                answer = await rest.post("/orders/open")
                assert answer.status_code == 502 and refusal(answer) == 9001
            assert (await rest.post("/orders/open")).status_code == 200

            psx.inject("slow", delay_s="0.3")
            began = time.monotonic()
            assert (await rest.post("/orders/open")).status_code == 200
            assert time.monotonic() - began >= 0.3
            # one answer was delayed: the fault is spent (a wall-clock bound on the next answer
            # would depend on the machine being idle)
            assert psx.broker.faults.pending["slow"] == 0
            assert (await rest.post("/orders/open")).status_code == 200
        finally:
            await rest.aclose()


@pytest.mark.anyio
async def test_lost_and_duplicate_webhooks() -> None:
    clock = WallClock()
    receiver = Receiver(clock)
    await receiver.server.start()
    async with venue(clock=clock) as psx:
        psx.webhook_url = receiver.url
        rest = Rest(psx)
        try:
            await rest.login()
            psx.inject("lose_webhooks", count=1)
            await rest.place(500, "170.00")  # its order.confirmed is lost
            await rest.place(500, "170.00")
            await until(lambda: len(receiver.events) == 1)
            assert psx.broker.counts["webhooks_lost"] == 1

            psx.inject("duplicate_webhooks", count=1)
            await rest.place(500, "170.00")
            await until(lambda: len(receiver.events) == 3)
            assert receiver.events[1] == receiver.events[2] and receiver.events[1][0] == "order.confirmed"
            await anyio.sleep(0.1)
            assert len(receiver.events) == 3  # nothing more: one lost, one doubled
        finally:
            await rest.aclose()
            await receiver.server.close()


@pytest.mark.anyio
async def test_expired_tokens_on_both_servers_and_rotation(tmp_path: Path) -> None:
    token_file = tmp_path / "feed_token"
    async with venue(feed_token_file=token_file) as psx:
        rest = Rest(psx)
        ws = await feed_client(psx)
        try:
            await rest.login()
            await recv_json(ws, lambda m: m["type"] == "welcome")
            result = psx.inject("expire_tokens", rotate="true")
            assert result["feed_sockets_closed"] == 1 and result["feed_rotated"] is True
            with pytest.raises(ConnectionClosed) as closed:
                await recv_json(ws, lambda m: False)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            assert closed.value.rcvd.reason == "token expired"
            with pytest.raises(InvalidStatus) as refused:
                await feed_client(psx)
            assert refused.value.response.status_code == 401
            expired = await rest.post("/orders/open")
            assert expired.status_code == 401 and refusal(expired) == 1002

            # rotation: the new token is written to the token file (mode 600) and accepted
            new_token = token_file.read_text().strip()
            assert new_token and new_token != TOKEN and psx.feed_tokens == [new_token]
            assert token_file.stat().st_mode & 0o777 == 0o600
            fresh = await feed_client(psx, new_token)
            assert (await recv_json(fresh, lambda m: m["type"] == "welcome"))["level"] == "L2"
            await fresh.close()
            await rest.login()  # the broker's logins still work: only issued tokens expired
            assert (await rest.post("/orders/open")).status_code == 200
        finally:
            await ws.close()
            await rest.aclose()


@pytest.mark.anyio
async def test_faults_over_http_and_on_a_schedule() -> None:
    start = int(dt.datetime(2026, 11, 23, 11, 0, 0, tzinfo=KARACHI).timestamp()) * NS_PER_S
    clock = ScaledClock(start, 10)
    scheduled = [parse_fault_spec("feed.gap@0.2,count=1"), parse_fault_spec("slow@11:00:03,delay_s=0")]
    async with venue(clock=clock, faults=scheduled) as psx:
        async with httpx.AsyncClient() as http:
            control = psx.broker_url.removesuffix("/v1") + "/sandbox/faults"
            unknown = await http.post(control, json={"kind": "meltdown"})
            assert unknown.status_code == 400 and "unknown fault" in unknown.json()["message"]
            bad = await http.post(control, json={"kind": "5xx", "status": 404})
            assert bad.status_code == 400 and "5xx" in bad.json()["message"]

            ws = await feed_client(psx)
            await recv_json(ws, lambda m: m["type"] == "welcome")
            # the broker's own sockets drop a moment later, so this request still gets its answer
            answer = await http.post(control, json={"kind": "drop_sockets"})
            assert answer.status_code == 200 and answer.json()["data"]["kind"] == "drop_sockets"
            with pytest.raises(ConnectionClosed):
                await recv_json(ws, lambda m: False)
        await until(lambda: psx.faults_injected["feed.gap"] == 1)  # 0.2 real seconds after start
        await until(lambda: psx.faults_injected["slow"] == 1)  # 11:00:03 on the sandbox clock (0.3 s)
        assert psx.faults_injected["drop_sockets"] == 1


def test_fault_specs_and_parameters_are_checked() -> None:
    spec = parse_fault_spec("5xx@30/60,count=3,status=502,process=true")
    assert (spec.kind, spec.after_s, spec.every_s) == ("5xx", D(30), D(60))
    assert spec.params == {"count": 3, "status": 502, "process": True}
    assert parse_fault_spec("expire_tokens@10:15").at_time == dt.time(10, 15)
    assert parse_fault_spec("broker.garbage,count=2").params == {"count": 2}
    assert check_fault("feed.stall", {"seconds": "1"}) == {"seconds": D(1)}
    for bad in ("meltdown", "5xx,count=0", "5xx,status=404", "slow,delay=1", "drop_sockets,target=db",
                "drop_sockets@soon", "drop_sockets@25:99", "lose_webhooks,count", "feed.nope"):
        with pytest.raises(ValueError):
            parse_fault_spec(bad)
    # kinds the venue (or that server) does not play
    for refused in ("halt,symbol=MEBL,duration_s=5", "feed.5xx", "broker.gap"):
        with pytest.raises(ValueError, match="is not supported by venue psx"):
            parse_fault_spec(refused)
    # the list: every one of them exists on the combined venue (the older names still read)
    assert {"drop_sockets", "5xx", "slow", "lost_webhooks", "duplicate_reports", "expire_tokens"} <= set(FAULTS)
    assert parse_fault_spec("lose_webhooks").kind == "lost_webhooks"
    assert parse_fault_spec("duplicate_webhooks").kind == "duplicate_reports"


# ---- the command ----------------------------------------------------------------------------------


def test_help_explains_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for action in build_parser()._actions:
        assert action.help, f"{action.option_strings} has no help"
        for option in action.option_strings:
            assert option in text
    for flag in ("--host", "--feed-port", "--broker-port", "--config", "--seed", "--no-market", "--always-open",
                 "--speed", "--start", "--webhook-url", "--fault", "--duration"):
        assert flag in text
    for kind in FAULTS:
        assert kind in text


def test_a_port_that_cannot_be_listened_on_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["--feed-port", "0", "--broker-port", str(port), "--always-open", "--no-market",
                     "--duration", "5", "--log-level", "ERROR"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port} (optimus broker)" in err


@pytest.mark.anyio
async def test_the_command_prints_its_urls_and_stops_cleanly_on_sigint() -> None:
    env = {**os.environ, "OPTIMUS_PASSWORD": "pw-from-env-never-printed", "OPTIMUS_USERNAME": "envuser"}
    env.pop("PSX_FEED_TOKEN")  # generated, and then printed: the engine needs it
    env.pop("OPTIMUS_WEBHOOK_SECRET")
    command = [sys.executable, "-m", "adapters.psx.sandbox", "--feed-port", "0", "--broker-port", "0",
               "--always-open", "--no-market", "--duration", "30", "--log-level", "WARNING"]
    async with await anyio.open_process(command, cwd=REPO, env=env) as process:
        assert process.stdout is not None
        out = b""
        try:
            with anyio.fail_after(10):
                while b"OPTIMUS_WEBHOOK_SECRET" not in out:
                    out += await process.stdout.receive()
            text = out.decode()
            feed_url = text.split("live feed on ", 1)[1].split()[0]
            broker_url = text.split("optimus broker on ", 1)[1].split()[0]
            token = text.split("export PSX_FEED_TOKEN=", 1)[1].split()[0]
            assert "export OPTIMUS_WEBHOOK_SECRET=" in text
            assert "OPTIMUS_PASSWORD: as set in this shell (not printed)" in text

            async with ws_connect(feed_url + L2, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                assert json.loads(await ws.recv())["type"] == "welcome"
            async with httpx.AsyncClient(base_url=broker_url) as http:
                login = await http.post("/auth/login", json={"username": "envuser",
                                                             "password": "pw-from-env-never-printed"})
                assert login.status_code == 200
        finally:
            process.send_signal(signal.SIGINT)
        with anyio.fail_after(10):
            code = await process.wait()
            rest = b""
            async for chunk in process.stdout:
                rest += chunk
        assert code == 0
        everything = (out + rest).decode()
        assert "psx sandbox: stopped" in everything
        assert "pw-from-env-never-printed" not in everything and "envuser" not in everything


# ---- the shipped config ---------------------------------------------------------------------------


def test_the_shipped_config_points_at_the_sandboxs_defaults() -> None:
    path = REPO / "config.psx-sandbox.yaml"
    raw = yaml.safe_load(path.read_text())
    cfg = load_config(path).config
    venue_cfg = raw["venues"]["psx"]
    assert list(raw["venues"]) == ["psx"] and venue_cfg["adapter"] == "optimus"
    broker = OptimusOptions(**venue_cfg["options"])
    assert broker.base_url == f"http://127.0.0.1:{DEFAULT_BROKER_PORT}/v1"
    assert f"http://{broker.webhook_listen}{broker.webhook_path}" == DEFAULT_WEBHOOK_URL
    assert venue_cfg["market_data"]["adapter"] == "psx_feed"
    feed = LiveFeedOptions(**venue_cfg["market_data"]["options"])
    assert feed.url == f"ws://127.0.0.1:{DEFAULT_FEED_PORT}" and feed.access == "l2"
    assert {feed.token_env, broker.username_env, broker.password_env, broker.webhook_secret_env} == set(CREDS.env())
    assert cfg.run.clock == "wall"
    # the engine's instrument master and account are the sandbox's defaults (lots: MEBL 500)
    mine = {i.symbol: (i.tick_size, i.lot_size, i.previous_close) for i in cfg.instruments}
    assert mine == {i.symbol: (i.tick_size, i.lot_size, i.previous_close) for i in DOC_INSTRUMENTS}
    account = cfg.venues["psx"].account
    assert account.cash == D(10_000_000) and account.holdings == {s: q for s, (_p, q) in DOC_HOLDINGS.items()}
    lots = {i.symbol: i.lot_size for i in cfg.instruments}
    for strategy in cfg.strategies:
        assert (REPO / strategy.file).exists()
        if strategy.enabled:
            size = D(str(strategy.params.get("size", 100)))
            assert all(size % lots[s] == 0 for s in strategy.instruments), strategy.name


@pytest.mark.anyio
async def test_config_gives_instruments_sessions_and_account_and_mismatches_are_named() -> None:
    taken = venue_from_config(REPO / "config.psx-sandbox.yaml", "optimus")
    instruments, schedule, account, venues = taken.instruments, taken.schedule, taken.account, taken.venues
    assert {i.symbol: i.lot_size for i in instruments}["MEBL"] == D(500)
    assert schedule.config.profile == "broker-doc"
    assert account["cash"] == D(10_000_000)
    async with venue(instruments=instruments, holdings=account["holdings"], webhook_url=DEFAULT_WEBHOOK_URL) as psx:
        problems = _config_mismatches(venues, psx)  # port 0 here, 8090/8765 in the file
        assert len(problems) == 2 and "optimus base_url" in problems[0] and "psx_feed url" in problems[1]
        psx.webhook_url = "http://127.0.0.1:9999/hooks"
        problems = _config_mismatches(venues, psx)
        assert len(problems) == 3 and "receives webhooks at http://127.0.0.1:8088/webhook/visionmax" in problems[1]
