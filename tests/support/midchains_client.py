"""A bare FIX 4.2 client for the MidChains sandbox tests, framed by simplefix (a FIX library we did
not write): no adapter code, so the sandbox is checked against the standard, not against our
own reading of it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import simplefix

from adapters.midchains.sandbox import MidChainsExtensions, MidChainsSandbox

GATEWAY = "MIDCDEV1"
CLIENT = "YOURSENDCOMP"
ADMIN = frozenset({"0", "1", "2", "3", "4", "5", "A"})


def now_text() -> str:
    moment = datetime.now(UTC)
    return f"{moment:%Y%m%d-%H:%M:%S}.{moment.microsecond // 1000:03d}"


class FixClient:
    """One TCP connection speaking FIX through simplefix; numbers its own messages."""

    def __init__(self, port: int, sender: str = CLIENT, target: str = GATEWAY, seq: int = 1) -> None:
        self.port = port
        self.sender = sender
        self.target = target
        self.seq = seq
        self.parser = simplefix.FixParser()
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter
        #: every message received, in order
        self.log: list[simplefix.FixMessage] = []
        self.answer_test_requests = True

    async def connect(self, tls: ssl.SSLContext | None = None) -> FixClient:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port, ssl=tls)
        return self

    def frame(self, msg_type: str, *fields: tuple[int, Any], seq: int | None = None,
              header: tuple[tuple[int, Any], ...] = ()) -> bytes:
        if seq is None:
            seq, self.seq = self.seq, self.seq + 1
        message = simplefix.FixMessage()
        message.append_pair(8, "FIX.4.2", header=True)
        message.append_pair(35, msg_type, header=True)
        message.append_pair(34, seq, header=True)
        message.append_pair(49, self.sender, header=True)
        message.append_pair(52, now_text(), header=True)
        message.append_pair(56, self.target, header=True)
        for tag, value in header:
            message.append_pair(tag, value, header=True)
        for tag, value in fields:
            message.append_pair(tag, value)
        data: bytes = message.encode()
        return data

    def send(self, msg_type: str, *fields: tuple[int, Any], seq: int | None = None,
             header: tuple[tuple[int, Any], ...] = ()) -> None:
        self.writer.write(self.frame(msg_type, *fields, seq=seq, header=header))

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def recv(self, timeout: float = 5.0) -> simplefix.FixMessage:
        """The next message (None-free: a timeout raises)."""
        async with asyncio.timeout(timeout):
            while True:
                message = self.parser.get_message()
                if message is not None:
                    self.log.append(message)
                    if self.answer_test_requests and message.get(35) == b"1":
                        self.send("0", (112, message.get(112).decode()))
                    return message
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("closed by the gateway")
                self.parser.append_buffer(data)

    async def expect(self, msg_type: str, timeout: float = 5.0, skip_admin: bool = True,
                     where: Callable[[simplefix.FixMessage], bool] | None = None) -> simplefix.FixMessage:
        """The next ``msg_type`` message, skipping heartbeats/TestRequests (and, with ``skip_admin``,
        other types too) on the way."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.recv(timeout)
                kind = message.get(35).decode()
                if kind == msg_type and (where is None or where(message)):
                    return message
                if not skip_admin and kind not in ("0", "1"):
                    raise AssertionError(f"expected 35={msg_type}, got {message}")

    async def closed(self, timeout: float = 5.0) -> None:
        """Wait for the gateway to close the socket (answering as we go)."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    await self.recv(timeout)
                except (ConnectionError, OSError):
                    return

    async def logon(self, heartbeat_s: int = 30, seq: int | None = None) -> simplefix.FixMessage:
        self.send("A", (98, 0), (108, heartbeat_s), seq=seq)
        return await self.expect("A", skip_admin=False)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.transport.abort()


def text(message: simplefix.FixMessage, tag: int) -> str | None:
    value = message.get(tag)
    return None if value is None else value.decode()


def values(message: simplefix.FixMessage, tag: int) -> list[str]:
    """Every value of ``tag`` (a repeating group's entries), in order."""
    found = []
    index = 1
    while True:
        value = message.get(tag, index)
        if value is None:
            return found
        found.append(value.decode())
        index += 1


def new_order(cl_ord_id: str, side: str = "1", qty: int = 1, base: int = 10, price: str | None = "150",
              symbol: str = "LTCUSD", ord_type: str = "2", tif: str | None = "1",
              extra: tuple[tuple[int, Any], ...] = ()) -> tuple[tuple[int, Any], ...]:
    """A D body shaped like 001's example (38 scaled by 43229)."""
    fields: list[tuple[int, Any]] = [(11, cl_ord_id), (21, "2"), (38, qty), (40, ord_type)]
    if price is not None:
        fields.append((44, price))
    fields += [(54, side), (55, symbol)]
    if tif is not None:
        fields.append((59, tif))
    fields += [(60, now_text()), (43229, base), *extra]
    return tuple(fields)


@contextlib.asynccontextmanager
async def running(literal: bool = False, **kwargs: Any) -> AsyncIterator[MidChainsSandbox]:
    """A sandbox on free loopback ports, no synthetic market unless asked."""
    extensions = MidChainsExtensions.document_literal() if literal else MidChainsExtensions.everyday()
    kwargs.setdefault("logout_timeout_s", 1.0)
    async with MidChainsSandbox(extensions=extensions, **kwargs) as venue:
        yield venue


@contextlib.asynccontextmanager
async def logged_on(venue: MidChainsSandbox, md: bool = False, heartbeat_s: int = 30,
                    **kwargs: Any) -> AsyncIterator[FixClient]:
    client = await FixClient(venue.md_port if md else venue.port, **kwargs).connect()
    try:
        await client.logon(heartbeat_s)
        yield client
    finally:
        client.close()


D = Decimal
