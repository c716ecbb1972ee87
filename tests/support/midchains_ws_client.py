"""A bare client of the MidChains sandbox's WebSocket API for the protocol tests: the ``websockets``
client and ``cryptography`` for the RSA step, written from document 001 alone (not the adapter's
``ws_codec``/``ws_auth``, issue 24: the sandbox and the adapter must not share their guesses)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from adapters.midchains.sandbox import MidChainsSandbox

USER, PASSWORD = "USERNAME", "PASSWORD"  # the sandbox's default login (001's example names)


def seal(key_b64: str, password: str) -> str:
    """001's ``pass``: base64 of RSA PKCS#1 v1.5 of the password, under the challenge's ``key``
    (base64 DER SubjectPublicKeyInfo, the Python sample's PEM wrapping read the same)."""
    pem = f"-----BEGIN PUBLIC KEY-----\n{key_b64}\n-----END PUBLIC KEY-----".encode()
    key = serialization.load_pem_public_key(pem)
    return base64.b64encode(key.encrypt(password.encode(), padding.PKCS1v15())).decode()  # type: ignore[union-attr]


class WsClient:
    """Raw frames in, kept in order; :meth:`expect` waits for one matching a predicate."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.raw: list[str] = []  # every text frame received, in order
        self._seen = 0

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def recv_raw(self, timeout: float = 5.0) -> str:
        if self._seen < len(self.raw):
            self._seen += 1
            return self.raw[self._seen - 1]
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(frame, str)
        self.raw.append(frame)
        self._seen += 1
        return frame

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        return json.loads(await self.recv_raw(timeout))

    async def expect(self, where: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict[str, Any]:
        """The next message matching ``where`` (those before it are passed over)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.recv(max(0.01, deadline - loop.time()))
            if where(message):
                return message

    async def expect_type(self, kind: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
        return await self.expect(lambda m: m.get("type") == kind and all(m.get(k) == v for k, v in fields.items()),
                                 timeout)

    async def quiet(self, seconds: float = 0.3) -> list[dict[str, Any]]:
        """Everything that arrives within ``seconds`` (for "nothing more came")."""
        got = []
        with contextlib.suppress(TimeoutError):
            while True:
                got.append(await self.recv(seconds))
        return got

    async def closed(self, timeout: float = 5.0) -> int | None:
        """Wait for the server to close; its close code."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = await asyncio.wait_for(self.ws.recv(), timeout)
                self.raw.append(frame if isinstance(frame, str) else repr(frame))
        return self.ws.close_code

    async def login(self, user: str = USER, password: str = PASSWORD) -> dict[str, Any]:
        await self.send({"type": "challenge"})
        challenge = await self.expect_type("challenge")
        await self.send({"type": "login", "userid": user, "pass": seal(challenge["key"], password)})
        return await self.expect_type("login")


@contextlib.asynccontextmanager
async def ws_client(venue: MidChainsSandbox, login: bool = False, user: str = USER, password: str = PASSWORD,
                    tls: ssl.SSLContext | None = None) -> AsyncIterator[WsClient]:
    async with connect(venue.ws_url, open_timeout=10, ping_interval=None, max_size=1 << 22, ssl=tls) as ws:
        client = WsClient(ws)
        if login:
            answer = await client.login(user, password)
            assert answer["result"] == "OK", answer
        yield client
