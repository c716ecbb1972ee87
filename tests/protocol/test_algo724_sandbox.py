"""The Algo724 sandbox on its own, over raw HTTP (httpx on 127.0.0.1): document 003's shapes, the
everyday extensions against document-literal mode, idempotent replay, decimal strings, pagination
and faults. It is written from the document, not from the adapter's codec (checked here too)."""

from __future__ import annotations

import ast
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from adapters.algo724 import sandbox as sandbox_module
from adapters.algo724.sandbox import COMMAND, AlgoExtensions, AlgoSandbox, SandboxSettings
from engine.venue import adapter_registry, sandbox_registry

pytestmark = pytest.mark.anyio
EMAIL, PASSWORD = "s@example.com", "sandbox-test-pw-1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextlib.asynccontextmanager
async def served(**settings: Any) -> AsyncIterator[tuple[AlgoSandbox, httpx.AsyncClient]]:
    config = {"users": {EMAIL: PASSWORD}, "market": False, **settings}
    async with AlgoSandbox(SandboxSettings(**config)) as sandbox, \
            httpx.AsyncClient(base_url=sandbox.base_url, timeout=5) as client:
        login = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
        client.headers["Authorization"] = "Bearer " + login.json()["data"]["accessToken"]
        yield sandbox, client


def order_body(sandbox: AlgoSandbox, key: str = "k-1", **fields: Any) -> dict[str, Any]:
    body = {"tradingAccountId": sandbox.trading_account_id, "instrumentId": "BINANCE:BTC/USDT",
            "idempotencyKey": key, "clientOrderId": key, "orderSide": "BUY", "orderType": "LIMIT",
            "limitPrice": "40000.00", "quantity": "0.0100", "timeInForce": "GTC"}
    body.update(fields)
    return body


def test_the_sandbox_does_not_import_the_adapters_codec() -> None:
    tree = ast.parse(Path(sandbox_module.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    # the streams server beside it (branch algcf) is sandbox side: it imports the ALG-3 payload
    # decision (streams_codec), never the adapter (tests/protocol/test_algo724_streams.py checks it)
    sandbox_side = {"adapters.algo724.centrifugo_feed"}
    assert not {m for m in imported if m and m.startswith("adapters.algo724") and m not in sandbox_side}


def test_registered_as_adapter_and_sandbox() -> None:
    assert "algo724" in adapter_registry() and sandbox_registry()["algo724"] is COMMAND


def test_faults_it_does_not_play_are_refused_by_name() -> None:
    parser = COMMAND.build_parser()
    assert parser.parse_args(["--fault", "slow@5,delay_s=3"]).fault
    with pytest.raises(SystemExit):
        parser.parse_args(["--fault", "gap@5"])


async def test_submit_answers_an_array_and_a_repeated_key_replays_the_order() -> None:
    async with served() as (sandbox, client):
        first = (await client.post("/tradeOrder", json=order_body(sandbox))).json()
        again = await client.post("/tradeOrder", json=order_body(sandbox))
        assert first["success"] is True and isinstance(first["data"], list)
        assert again.status_code == 200 and again.json()["data"][0]["tradeOrderId"] == first["data"][0]["tradeOrderId"]
        assert sandbox.counts["orders"] == 1
        order = first["data"][0]
        assert order["status"] == "ACCEPTED" and order["quantity"] == "0.0100" and "clientOrderId" not in order


@pytest.mark.parametrize(("field", "value"), [("quantity", 0.01), ("quantity", "1e-2"), ("limitPrice", "+40000"),
                                              ("limitPrice", ".5"), ("quantity", "0x10")])
async def test_decimals_must_be_strings_of_the_pattern(field: str, value: Any) -> None:
    async with served() as (sandbox, client):
        answer = await client.post("/tradeOrder", json=order_body(sandbox, **{field: value}))
        assert answer.status_code == 400 and field in answer.json()["error"]
        assert sandbox.counts["orders"] == 0


async def test_literal_mode_keeps_only_the_documents_error_code() -> None:
    async with served() as (sandbox, client):
        everyday = (await client.post("/tradeOrder", json=order_body(sandbox, instrumentId="BINANCE:NOPE/USDT"))).json()
    async with served(extensions=AlgoExtensions.document_literal()) as (sandbox, client):
        literal = (await client.post("/tradeOrder", json=order_body(sandbox, instrumentId="BINANCE:NOPE/USDT"))).json()
        expired = await client.get("/tradeOrder", headers={"Authorization": "Bearer nope"})
    assert everyday["details"]["code"] == "INVALID_INSTRUMENT"
    assert literal["success"] is False and "details" not in literal
    assert expired.status_code == 401 and expired.json()["details"]["code"] == "INVALID_TOKEN"


async def test_a_refusal_after_taking_is_422_everyday_and_a_rejected_order_literally() -> None:
    async with served() as (sandbox, client):
        everyday = await client.post("/tradeOrder", json=order_body(sandbox, quantity="100000"))
    async with served(extensions=AlgoExtensions.document_literal()) as (sandbox, client):
        literal = await client.post("/tradeOrder", json=order_body(sandbox, quantity="100000"))
    assert everyday.status_code == 422 and everyday.json()["details"]["code"] == "INSUFFICIENT_BALANCE"
    assert everyday.json()["data"][0]["status"] == "REJECTED"
    assert literal.status_code == 200 and literal.json()["data"][0]["status"] == "REJECTED"
    assert "insufficient balance" in literal.json()["data"][0]["rejectReason"]


async def test_list_filters_and_cursor_pages() -> None:
    async with served() as (sandbox, client):
        for i in range(5):
            await client.post("/tradeOrder", json=order_body(sandbox, key=f"k-{i}", limitPrice=f"{40000 - i}.00"))
        seen, cursor = [], None
        while True:
            params = {"tradingAccountId": sandbox.trading_account_id, "limit": "2", "ascending": "true"}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get("/tradeOrder", params=params)).json()
            seen += [o["limitPrice"] for o in page["data"]]
            if not page["pagination"]["hasNext"]:
                break
            cursor = page["pagination"]["cursor"]
        assert seen == [f"{40000 - i}.00" for i in range(5)] and page["pagination"]["total"] == 5
        one = (await client.get("/tradeOrder", params={"orderStatus": "CANCELLED"})).json()
        assert one["data"] == [] and one["pagination"]["hasNext"] is False


async def test_cancel_by_trade_order_id() -> None:
    async with served() as (sandbox, client):
        placed = (await client.post("/tradeOrder", json=order_body(sandbox))).json()["data"][0]
        body = {"tradingAccountId": sandbox.trading_account_id, "tradeOrderId": placed["tradeOrderId"]}
        cancelled = (await client.post("/tradeOrder/cancel", json=body)).json()["data"]
        assert cancelled["status"] == "CANCELLED" and "canceledAt" in cancelled
        again = await client.post("/tradeOrder/cancel", json=body)
        assert again.status_code == 409


async def test_a_slow_answer_comes_after_the_order_was_taken() -> None:
    async with served() as (sandbox, client):
        sandbox.inject("slow", delay_s=1)
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/tradeOrder", json=order_body(sandbox), timeout=0.2)
        assert sandbox.counts["orders"] == 1  # taken: only its answer was late


async def test_an_expired_token_is_refused_and_refresh_and_logout_follow_the_document() -> None:
    async with served() as (sandbox, client):
        login = (await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})).json()["data"]
        assert login["tokenType"] == "bearer" and login["expiresIn"] == 3600
        sandbox.inject("expire_tokens")
        refused = await client.get("/tradeOrder", headers={"Authorization": "Bearer " + login["accessToken"]})
        assert refused.status_code == 401 and refused.json()["details"]["code"] == "TOKEN_EXPIRED"
        renewed = (await client.post("/auth/refresh", json={"refreshToken": login["refreshToken"]})).json()["data"]
        headers = {"Authorization": "Bearer " + renewed["accessToken"]}
        assert (await client.get("/tradeOrder", headers=headers)).status_code == 200
        assert (await client.post("/auth/logout", headers=headers)).json()["data"] == "ok"
        assert (await client.get("/tradeOrder", headers=headers)).status_code == 401
        assert sandbox.verify_token(renewed["accessToken"]) is None


async def test_order_listeners_hear_every_change_in_the_documents_shape() -> None:
    async with served(market=True, market_step_s=Decimal("0.05")) as (sandbox, client):
        heard: list[dict[str, Any]] = []
        sandbox.order_listeners.append(heard.append)
        engine = sandbox.sim.matching_engine("BTC/USDT")
        with anyio.fail_after(10):
            while engine.best_ask is None:
                await anyio.sleep(0.01)
        await client.post("/tradeOrder", json=order_body(sandbox, limitPrice="55000.00"))
        with anyio.fail_after(10):
            while not heard or heard[-1]["status"] != "FILLED":
                await anyio.sleep(0.01)
        assert heard[0]["status"] == "SUBMITTED" and heard[-1]["executions"][0]["executionId"]


async def test_health_is_not_enveloped() -> None:
    async with served() as (_sandbox, client):
        health = (await client.get("/health")).json()
        assert health["status"] == "healthy" and "success" not in health
