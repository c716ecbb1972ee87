"""The sandbox's Centrifugo server (adapters/algo724/centrifugo.py) on hostile commands: whatever a
client sends, a command is answered (a reply or a Centrifugo error) or the connection is closed
3501 "bad request"; the server never fails (no handler exception, no 1011)."""

from __future__ import annotations

import asyncio
import json
import logging

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from adapters.algo724.centrifugo import CLOSE_BAD_REQUEST, CentrifugoServer, Grant, TokenRefused

_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | st.floats(allow_nan=False)
    | st.text(max_size=12) | st.sampled_from(["market:orderBook:BINANCE:BTC/USDT", "tradingAccount:a", "tok"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
_methods = st.sampled_from(["connect", "subscribe", "unsubscribe", "refresh", "history", "ping", "publish",
                            "presence", "presence_stats", "rpc", "send", "sub_refresh", "nope"])
_params = st.fixed_dictionaries({}, optional={
    "token": _values, "channel": _values, "recover": _values, "offset": _values, "epoch": _values,
    "since": _values | st.fixed_dictionaries({"offset": _values, "epoch": _values}), "limit": _values})
_commands = st.one_of(
    _values,
    st.builds(lambda cid, method, params: {"id": cid, method: params}, _values, _methods, _params | _values),
)


def _run(coro):  # hypothesis drives a sync test; each example gets its own loop
    return asyncio.run(coro)


def _authenticate(token: str) -> Grant:
    if token != "tok":
        raise TokenRefused("not the test token")
    return Grant("u")


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def _exchange(commands: list) -> tuple[list[str], int | None]:
    server = CentrifugoServer(_authenticate)
    await server.start()
    replies: list[str] = []
    code = None
    try:
        async with ws_connect(server.url) as ws:
            await ws.send(json.dumps({"id": 1, "connect": {"token": "tok"}}))
            replies.append(await asyncio.wait_for(ws.recv(), 10))
            for command in commands:
                await ws.send(json.dumps(command))
            await ws.send(json.dumps({"id": 999999, "ping": {}}))
            try:
                while True:
                    reply = await asyncio.wait_for(ws.recv(), 10)
                    replies.append(reply)
                    if '"id":999999' in reply:
                        break
            except ConnectionClosed:
                code = ws.close_code
    finally:
        await server.stop()
    return replies, code


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands=st.lists(_commands, min_size=1, max_size=4))
def test_any_commands_get_replies_or_a_bad_request_close(commands):
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    try:
        replies, code = _run(_exchange(commands))
    finally:
        logging.getLogger().removeHandler(errors)
    assert errors.lines == []  # websockets logs "connection handler failed" for a handler that raised
    assert code in (None, CLOSE_BAD_REQUEST), code
    if code is None:
        assert '"id":999999' in replies[-1]  # every command before it was taken, and the link lives
