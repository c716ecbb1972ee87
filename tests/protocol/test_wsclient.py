"""The kit's reconnecting WebSocket client against a real ``websockets`` server on 127.0.0.1:
a peer that stops answering pings is dropped and reconnected, a quiet peer that answers them is
not, the subscription intent is issued again on every connection, nothing read from a dropped
connection is delivered after it, and the backoff is jittered and capped (random source injected;
nothing here asserts on elapsed time)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from anyio.abc import TaskGroup
from support import until
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from adapters.kit.backoff import Backoff
from adapters.kit.wsclient import WsClient

pytestmark = pytest.mark.anyio

Handler = Callable[[ServerConnection, int], Awaitable[None]]


class ScriptedRandom:
    """A random source that answers ``uniform(a, b)`` with the given fractions of the range, in
    turn, and records the ranges it was asked for."""

    def __init__(self, *fractions: float) -> None:
        self.fractions = list(fractions) or [0.5]
        self.ranges: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.ranges.append((a, b))
        fraction = self.fractions[(len(self.ranges) - 1) % len(self.fractions)]
        return a + (b - a) * fraction


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[tuple[str, list[list[str]]]]:
    """A WebSocket server on 127.0.0.1 (port 0). ``handler(ws, n)`` runs for connection n (1, 2,
    ...); every text frame a connection received is recorded in ``received[n - 1]``."""
    received: list[list[str]] = []

    async def handle(ws: ServerConnection) -> None:
        received.append([])
        mine = received[-1]
        number = len(received)

        async def record() -> None:
            try:
                async for frame in ws:
                    mine.append(str(frame))
            except ConnectionClosed:
                pass

        async with anyio.create_task_group() as tg:
            tg.start_soon(record)
            await handler(ws, number)
            await ws.wait_closed()
            tg.cancel_scope.cancel()

    async with serve(handle, "127.0.0.1", 0) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}", received


class Harness:
    """A WsClient with recording callbacks; its tasks run in the test's task group."""

    def __init__(self, url: str, tg: TaskGroup, backoff: Backoff | None = None, **kwargs: Any) -> None:
        self.url = url
        self.frames: list[tuple[str, int]] = []
        self.lost: list[tuple[int, str, bool]] = []
        self.issued: list[tuple[list[str], int]] = []
        self.on_frame_hook: Callable[[str, int], None] | None = None
        self.on_up_hook: Callable[[int], Awaitable[None]] | None = None
        self.on_intent_hook: Callable[[int], Awaitable[None]] | None = None
        self.refuse = 0  # connection attempts still to refuse
        self.sockets: list[ClientConnection] = []

        def spawn(fn: Callable[..., Awaitable[Any]], *args: Any, name: str | None = None) -> None:
            tg.start_soon(fn, *args, name=name)

        self.client = WsClient(
            "test", self.open_socket, self.on_frame, spawn=spawn,
            backoff=backoff or Backoff(0.001, 0.002, ScriptedRandom()),  # type: ignore[arg-type]
            on_up=self.on_up, on_intent=self.on_intent, on_lost=self.on_lost, **kwargs,
        )

    async def on_up(self, epoch: int) -> None:
        if self.on_up_hook is not None:
            await self.on_up_hook(epoch)

    async def open_socket(self) -> ClientConnection:
        if self.refuse:
            self.refuse -= 1
            raise ConnectionRefusedError("not yet")
        ws = await ws_connect(self.url, ping_interval=None, proxy=None)
        self.sockets.append(ws)
        return ws

    def on_frame(self, data: str | bytes, epoch: int) -> None:
        self.frames.append((str(data), epoch))
        if self.on_frame_hook is not None:
            self.on_frame_hook(str(data), epoch)

    async def on_intent(self, items: list[str], epoch: int) -> None:
        self.issued.append((list(items), epoch))
        await self.client.send(json.dumps({"subscribe": items}), epoch)
        if self.on_intent_hook is not None:
            await self.on_intent_hook(epoch)

    def on_lost(self, epoch: int, reason: str, unexpected: bool) -> None:
        self.lost.append((epoch, reason, unexpected))


@asynccontextmanager
async def harness(url: str, **kwargs: Any) -> AsyncIterator[Harness]:
    async with anyio.create_task_group() as tg:
        h = Harness(url, tg, **kwargs)
        try:
            yield h
        finally:
            await h.client.close()
            tg.cancel_scope.cancel()


def subscribes(frames: list[str]) -> list[list[str]]:
    return [json.loads(f)["subscribe"] for f in frames if f.startswith('{"subscribe"')]


# ---- liveness ------------------------------------------------------------------------------


async def test_a_peer_that_stops_answering_pings_is_dropped_and_reconnected() -> None:
    async def handler(ws: ServerConnection, number: int) -> None:
        await ws.send(f"hello {number}")
        if number == 1:
            ws.transport.pause_reading()  # hangs: reads nothing more, so no pong ever comes back
            while len(received) < 2:
                await anyio.sleep(0.005)
            ws.transport.abort()  # the test is over for this one: no closing handshake to wait for

    async with server(handler) as (url, received), harness(url, ping_interval_s=0.02, ping_timeout_s=0.5) as h:
        await h.client.connect()
        await until(lambda: ("hello 2", 2) in h.frames, timeout=5)
        assert h.client.reconnects >= 1 and h.client.pings_missed >= 1
        epoch, reason, unexpected = h.lost[0]
        assert epoch == 1 and unexpected and reason == "no pong within 0.5 s (WebSocket ping)"


async def test_a_quiet_peer_that_answers_pings_stays_connected() -> None:
    async def handler(ws: ServerConnection, number: int) -> None:
        pass  # sends nothing at all: silence is not death

    async with server(handler) as (url, _), harness(url, ping_interval_s=0.01, ping_timeout_s=2) as h:
        await h.client.connect()
        await until(lambda: h.client.pongs >= 5, timeout=5)
        assert h.client.reconnects == 0 and h.client.pings_missed == 0 and h.lost == []


# ---- subscription intent --------------------------------------------------------------------


async def test_the_intent_is_issued_again_on_every_new_connection() -> None:
    async def handler(ws: ServerConnection, number: int) -> None:
        if number == 1:
            while True:  # close once the client asked for "c"
                await anyio.sleep(0.005)
                if any("c" in s for s in subscribes(received[0])):
                    await ws.close(1012, "restart")
                    return

    async with server(handler) as (url, received), harness(url, ping_interval_s=None) as h:
        assert h.client.want(["a", "b"]) == ["a", "b"]  # before connect: remembered
        await h.client.connect()
        assert h.client.want(["b", "c"]) == ["c"]  # while up: the new one is issued at once
        await until(lambda: len(received) == 2 and len(subscribes(received[1])) == 1, timeout=5)
        assert subscribes(received[0]) == [["a", "b"], ["c"]]
        assert subscribes(received[1]) == [["a", "b", "c"]]  # everything, on the new connection
        assert h.issued[-1] == (["a", "b", "c"], 2) and h.client.intent == ("a", "b", "c")
        assert [(epoch, unexpected) for epoch, _, unexpected in h.lost] == [(1, True)]


# ---- epochs ---------------------------------------------------------------------------------


async def test_nothing_read_from_a_dropped_connection_is_delivered_after_it() -> None:
    sent = anyio.Event()

    async def handler(ws: ServerConnection, number: int) -> None:
        if number == 1:
            while not subscribes(received[0]):
                await anyio.sleep(0.005)
            for n in range(1, 4):
                await ws.send(f"old {n}")
            sent.set()
        else:
            await ws.send("new 1")

    async with server(handler) as (url, received), harness(url, ping_interval_s=None) as h:

        async def hold_reading_until_all_are_buffered(epoch: int) -> None:
            if epoch == 1:  # all three frames arrive together, queued before the first is handled
                ws = h.sockets[-1]
                ws.transport.pause_reading()  # the subscribe is sent: the server answers with three
                await sent.wait()
                await anyio.sleep(0.05)
                ws.transport.resume_reading()

        def drop_on_first(data: str, epoch: int) -> None:
            if data == "old 1":
                assert h.client.drop("the test declared it dead", epoch)

        h.on_intent_hook = hold_reading_until_all_are_buffered
        h.on_frame_hook = drop_on_first
        h.client.want(["x"])
        await h.client.connect()
        await until(lambda: ("new 1", 2) in h.frames, timeout=5)
        assert h.frames == [("old 1", 1), ("new 1", 2)]
        assert h.client.stale_frames == 2  # read after the drop, never delivered
        assert h.lost == [(1, "the test declared it dead", True)]


async def test_a_send_made_for_an_old_epoch_does_not_reach_the_new_connection() -> None:
    async def handler(ws: ServerConnection, number: int) -> None:
        if number == 1:
            await ws.close()

    async with server(handler) as (url, received), harness(url, ping_interval_s=None) as h:
        await h.client.connect()
        await until(lambda: h.client.epoch == 2 and h.client.up, timeout=5)
        assert not await h.client.send("made for epoch 1", 1)
        assert await h.client.send("made for epoch 2", 2)
        await until(lambda: "made for epoch 2" in received[1], timeout=5)
        assert all("epoch 1" not in frame for frames in received for frame in frames)


# ---- backoff --------------------------------------------------------------------------------


def test_backoff_delays_are_jittered_between_half_and_the_cap() -> None:
    low = Backoff(1.0, 8.0, ScriptedRandom(0.0))  # type: ignore[arg-type]
    high = Backoff(1.0, 8.0, ScriptedRandom(1.0))  # type: ignore[arg-type]
    ceilings = [1, 2, 4, 8, 8, 8]
    assert [low.next_delay() for _ in ceilings] == [c / 2 for c in ceilings]
    assert [high.next_delay() for _ in ceilings] == ceilings
    rng = ScriptedRandom(0.25, 0.75)
    spread = Backoff(1.0, 8.0, rng)  # type: ignore[arg-type]
    assert [spread.next_delay() for _ in range(4)] == [0.625, 1.75, 2.5, 7.0]
    assert rng.ranges == [(0, 0.5), (0, 1.0), (0, 2.0), (0, 4.0)]  # the jitter spans the upper half
    spread.reset()
    assert spread.next_delay() == 0.625


async def test_every_reconnect_attempt_waits_a_backoff_delay_and_a_useful_connection_resets_it() -> None:
    async def handler(ws: ServerConnection, number: int) -> None:
        await ws.close(1011, "going away")

    rng = ScriptedRandom(0.5)
    async with server(handler) as (url, _):
        async with harness(url, ping_interval_s=None, backoff=Backoff(0.001, 0.004, rng)) as h:  # type: ignore[arg-type]
            await h.client.connect()
            h.refuse = 2  # the first two reconnect attempts are refused
            await until(lambda: h.client.reconnects >= 1, timeout=5)
            # three waits for the first outage: two refused attempts, then the one that opened
            assert rng.ranges[:3] == [(0, 0.0005), (0, 0.001), (0, 0.002)]
            assert h.client.attempts >= 4
            h.client.healthy()  # the adapter found the connection useful: the next outage starts over
            assert h.client.backoff.attempt == 0
