"""Interop: our FIX session (adapters.midchains) against a FIX engine we did not write, asyncfix's
acceptor (pure Python, its own codec, session logic and journal), over TCP on 127.0.0.1.

asyncfix speaks FIX 4.4; a two-line protocol subclass makes it FIX.4.2 for MidChains (its session
layer is the same). QuickFIX's binding was the first choice, but it ships as a C++ source
distribution only (no wheel), so it needs a compiler the project does not assume.

Time on our side is the caller's: the test passes wall-clock nanoseconds and, to make our own
TestRequest go out, a moment 72 s later; no test waits on a timer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from asyncfix import FIXMessage
from asyncfix.connection import ConnectionState
from asyncfix.journaler import Journaler
from support.midchains_fix import (
    CLIENT,
    GATEWAY,
    NS,
    ORDER,
    AsyncfixGateway,
    delivered,
    logged_on,
    session,
    start_asyncfix,
)

from adapters.midchains.session import Action, Disconnect, FixSession, Send, SessionState

pytestmark = pytest.mark.anyio

@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # asyncfix is written on asyncio


class Client:
    """The thinnest transport: carry our session's actions over a stream, feed it what arrives."""

    def __init__(self, fix: FixSession, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.fix, self.reader, self.writer = fix, reader, writer
        self.actions: list[Action] = []
        self.closed = False

    async def carry(self, actions: list[Action]) -> None:
        self.actions += actions
        for action in actions:
            if isinstance(action, Send):
                self.writer.write(action.data)
            elif isinstance(action, Disconnect):
                self.writer.close()
        await self.writer.drain()

    async def until(self, done: Callable[[], bool]) -> None:
        with anyio.fail_after(10):
            while not done():
                data = await self.reader.read(65536)
                if not data:
                    self.fix.connection_lost()
                    self.closed = True
                    return
                await self.carry(self.fix.receive(data, time.time_ns()))
                self.fix.commit_inbound()


async def connect(gateway: AsyncfixGateway, fix: FixSession) -> Client:
    with anyio.fail_after(10):
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", gateway.listen_port)
                break
            except OSError:
                await asyncio.sleep(0.02)
    client = Client(fix, reader, writer)
    await client.carry(fix.connect(time.time_ns()))
    return client


async def stop(gateway: AsyncfixGateway, client: Client) -> None:
    client.writer.close()
    gateway.stop()


async def test_logon_test_request_order_and_logout_with_asyncfix(tmp_path: Path) -> None:
    gateway = await start_asyncfix(Journaler())
    fix = session(tmp_path / "fix.sqlite")
    client = await connect(gateway, fix)
    await client.until(lambda: fix.state is SessionState.ACTIVE)

    # our TestRequest after 108 s + grace of silence (our clock is the caller's: pass +72 s)
    await client.carry(fix.tick(time.time_ns() + 72 * NS))
    assert fix.test_request_pending is not None
    await client.until(lambda: fix.test_request_pending is None)  # asyncfix's Heartbeat carried our 112

    # an order goes out; asyncfix's session takes it in sequence
    await client.carry(fix.send_application("D", ORDER, time.time_ns()))
    with anyio.fail_after(10):
        while not gateway.received:
            await asyncio.sleep(0.01)
    (order,) = gateway.received
    assert (order["11"], order["43229"], order["34"]) == ("43637618552482556000", "10", "3")

    # and an execution report comes back to us
    await gateway.send_msg(FIXMessage("8", {"37": "62XGZUU7W05SC3", "11": "43637618552482556000", "17": "30005_582",
                                             "150": "0", "39": "0", "43229": "10000"}))
    await client.until(lambda: bool(delivered(client.actions)))
    (report,) = delivered(client.actions)
    assert (report.get(17), report.get(43229)) == ("30005_582", "10000")

    await client.carry(fix.logout(time.time_ns()))
    await client.until(lambda: fix.state is SessionState.DISCONNECTED)  # asyncfix closes (it never confirms)
    await stop(gateway, client)


async def test_our_logon_above_what_asyncfix_expects_is_filled_by_our_replay(tmp_path: Path) -> None:
    """We restart with 34=4 (an order at 2 in our store) against an acceptor that saw none of it
    (it expects 1; its own Logon 1 went out before): it asks for 1..; we gap-fill 1, resend the
    order with 43=Y/122, gap-fill 3; it then takes 4 on."""
    path = tmp_path / "fix.sqlite"
    first = logged_on(path, now_ns=time.time_ns())  # Logon 1 both ways (simplefix-built gateway)
    first.send_application("D", ORDER, time.time_ns())  # 2
    first.tick(time.time_ns() + 61 * NS)  # Heartbeat 3
    first.store.close()

    journaler = Journaler()
    journaler.set_seq_num(journaler.create_or_load(CLIENT, GATEWAY), next_num_out=2)
    gateway = await start_asyncfix(journaler)
    fix = session(path)
    client = await connect(gateway, fix)  # Logon 34=4
    await client.until(lambda: fix.state is SessionState.ACTIVE)
    with anyio.fail_after(10):
        while not gateway.received:
            await asyncio.sleep(0.01)
    (order,) = gateway.received
    assert (order["34"], order["43"], order["11"]) == ("2", "Y", "43637618552482556000")
    assert "122" in order
    await client.carry(fix.send_application("D", [(11, "next"), *ORDER[1:]], time.time_ns()))  # 5
    with anyio.fail_after(10):
        while len(gateway.received) < 2:
            await asyncio.sleep(0.01)
    assert gateway.received[1]["34"] == "5"
    assert gateway.connection_state is ConnectionState.ACTIVE
    await stop(gateway, client)


async def test_asyncfix_above_what_we_expect_is_asked_for_and_gap_filled(tmp_path: Path) -> None:
    """asyncfix's journal says its next is 5: its Logon (34=5) makes us send a ResendRequest from 1,
    which it answers with a GapFill to 5."""
    journaler = Journaler()
    acceptor_session = journaler.create_or_load(CLIENT, GATEWAY)
    journaler.set_seq_num(acceptor_session, next_num_out=5)
    gateway = await start_asyncfix(journaler)
    fix = session(tmp_path / "fix.sqlite")
    client = await connect(gateway, fix)
    await client.until(lambda: fix.store.next_in == 6)
    resend = [a.message for a in client.actions if isinstance(a, Send) and a.message.msg_type == "2"]
    assert [(m.get(7), m.get(16)) for m in resend] == [("1", "0")]
    assert fix.state is SessionState.ACTIVE
    await stop(gateway, client)
