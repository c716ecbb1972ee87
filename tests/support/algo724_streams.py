"""The Algo724 stream tests' fixtures: a Centrifugo server on 127.0.0.1 with test tokens, and the
real centrifuge-python client behind :class:`adapters.algo724.streams.Algo724Streams`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import anyio

from adapters.algo724.centrifugo import CentrifugoServer, Grant, TokenRefused
from adapters.algo724.streams import Algo724Streams
from adapters.algo724.streams_codec import book_channel, book_payload
from engine.clock import WallClock
from support.sinks import RecordingSink

D = Decimal
INSTRUMENT = "BINANCE:BTC/USDT"
SYMBOL = "BTCUSDT"
ACCOUNT = "14f773c5-2079-41e0-90e4-340a7b4d3391"  # document 003's tradingAccountId example


class Tokens:
    """Issues tokens that expire ``ttl_s`` after issue (None: never); the server's authenticator."""

    def __init__(self, ttl_s: float | None = None) -> None:
        self.ttl_s = ttl_s
        self.issued: dict[str, float | None] = {}
        self.asked = 0

    async def get_token(self) -> str:
        self.asked += 1
        token = f"jwt-{self.asked}"
        self.issued[token] = None if self.ttl_s is None else time.time() + self.ttl_s
        return token

    def authenticate(self, token: str) -> Grant:
        if token not in self.issued:
            raise TokenRefused("unknown token")
        expires_at = self.issued[token]
        if expires_at is not None and expires_at <= time.time():
            raise TokenRefused("expired", expired=True)
        return Grant("user-1", expires_at)


class Book:
    """The sandbox side of one book: levels, sequence, publishing DELTAs and answering the
    subscribe with a SNAPSHOT."""

    def __init__(self, server: CentrifugoServer, instrument_id: str = INSTRUMENT) -> None:
        self.server = server
        self.instrument_id = instrument_id
        self.sequence = 0
        self.bids: dict[Decimal, Decimal] = {D("100"): D("1")}
        self.asks: dict[Decimal, Decimal] = {D("101"): D("1")}

    def snapshot(self) -> dict[str, Any]:
        return book_payload(self.instrument_id, "BINANCE", self.sequence, True, sorted(self.bids.items(), reverse=True),
                            sorted(self.asks.items()), int(time.time() * 1000))

    def delta(self, bids: list[tuple[str, str]] = (), asks: list[tuple[str, str]] = (), skip: int = 0) -> None:
        self.sequence += 1 + skip
        b = [(D(p), D(q)) for p, q in bids]
        a = [(D(p), D(q)) for p, q in asks]
        for side, levels in ((self.bids, b), (self.asks, a)):
            for p, q in levels:
                if q:
                    side[p] = q
                else:
                    side.pop(p, None)
        self.server.publish(book_channel(self.instrument_id), book_payload(
            self.instrument_id, "BINANCE", self.sequence, False, b, a, int(time.time() * 1000)))


def books_data(books: dict[str, Book]) -> Callable[[str], Any]:
    def data(channel: str) -> Any:
        for book in books.values():
            if channel == book_channel(book.instrument_id):
                return book.snapshot()
        return None
    return data


@asynccontextmanager
async def centrifugo(tokens: Tokens, **kwargs: Any) -> AsyncIterator[tuple[CentrifugoServer, Book]]:
    books: dict[str, Book] = {}
    server = CentrifugoServer(tokens.authenticate, subscribe_data=books_data(books), **kwargs)
    books[INSTRUMENT] = Book(server)
    await server.start()
    try:
        yield server, books[INSTRUMENT]
    finally:
        await server.stop()


@asynccontextmanager
async def streams(server: CentrifugoServer, tokens: Tokens, get_token: Callable[[], Any] | None = None, **kwargs: Any
                  ) -> AsyncIterator[tuple[Algo724Streams, RecordingSink, list[str]]]:
    sink = RecordingSink()
    reconciles: list[str] = []
    client = Algo724Streams("algo724", server.url, ACCOUNT, {SYMBOL: INSTRUMENT}, sink, WallClock(),
                            get_token or tokens.get_token, on_recovery_failed=reconciles.append, **kwargs)
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.run)
        try:
            yield client, sink, reconciles
        finally:
            await client.close()
            tg.cancel_scope.cancel()


async def until(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Wait for a condition (never a sleep as proof): generous, for a busy machine."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)
