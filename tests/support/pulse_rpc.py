"""A bare JSON-RPC client for the Pulse sandbox (no adapter), and the sandbox it talks to: the
protocol-level tests read the venue's answers as they are on the wire."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

import anyio
from websockets.asyncio.client import ClientConnection

from adapters.pulse.codec import encode_request
from adapters.pulse.sandbox import PulseSandbox
from support import PULSE_BTC

BTC = PULSE_BTC

SECRET = "raw-client-secret"


class Client:
    """A bare JSON-RPC client: ``call`` returns the whole answer; notifications are kept."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.notes: list[dict[str, Any]] = []

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        req_id = next(self.ids)
        await self.ws.send(encode_request(req_id, method, params or {}))  # Decimals as exact numbers
        with anyio.fail_after(3):
            while True:
                msg = json.loads(await self.ws.recv(), parse_float=Decimal)
                if msg.get("id") == req_id:
                    return msg
                self.notes.append(msg)

    async def result(self, method: str, params: dict[str, Any] | None = None) -> Any:
        answer = await self.call(method, params)
        assert "result" in answer, answer
        return answer["result"]

    async def auth(self, client_id: str = "mm", secret: str = SECRET) -> dict[str, Any]:
        return await self.result("public/auth", {"grant_type": "client_credentials", "client_id": client_id,
                                                 "client_secret": secret})

    async def drain(self, seconds: float = 0.1) -> None:
        with anyio.move_on_after(seconds):
            while True:
                self.notes.append(json.loads(await self.ws.recv(), parse_float=Decimal))

    def channel(self, name: str) -> list[Any]:
        return [n["params"]["data"] for n in self.notes
                if n.get("method") == "subscription" and n["params"]["channel"] == name]


def sandbox(**kw: Any) -> PulseSandbox:
    settings: dict[str, Any] = {"credentials": {"mm": SECRET}, "min_heartbeat_s": 0.05}
    settings.update(kw)
    return PulseSandbox(**settings)


async def place(client: Client, price: int = 49000, amount: int = 10, **extra: Any) -> dict[str, Any]:
    params = {"instrument_name": BTC, "amount": amount, "type": "limit", "price": price, "label": "L1", **extra}
    return await client.result("private/buy", params)

