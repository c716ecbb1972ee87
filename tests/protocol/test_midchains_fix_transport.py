"""The I/O loop around the FIX session: clear TCP only to this machine, TLS verified against a
configured CA bundle, and a whole connection (logon, order, report, logout) against asyncfix's
acceptor on 127.0.0.1 driven by the engine's wall clock."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from pathlib import Path

import anyio
import anyio.abc
import pytest
import simplefix
from anyio.streams.tls import TLSListener
from asyncfix import FIXMessage
from asyncfix.journaler import Journaler
from support.midchains_fix import CLIENT, GATEWAY, NS, ORDER, Gateway, session, start_asyncfix

from adapters.kit.urls import ClearTextRefused
from adapters.midchains.codec import FixMessage, FrameReader
from adapters.midchains.session import Disconnect, SessionState
from adapters.midchains.transport import Endpoint, FixConnection
from engine.venue.clock import SimClock, WallClock

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_clear_tcp_is_refused_to_another_machine() -> None:
    with pytest.raises(ClearTextRefused, match=r"fix-sandbox\.midchains\.com:44323"):
        Endpoint("fix-sandbox.midchains.com", 44323, tls=False).check()
    Endpoint("127.0.0.1", 44323, tls=False).check()  # a local sandbox or stunnel


def test_tls_verifies_the_gateway_at_tls_1_2_or_later() -> None:
    context = Endpoint("fix-sandbox.midchains.com", 44323).ssl_context()
    assert context is not None
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


async def test_a_whole_connection_through_the_transport_against_asyncfix(tmp_path: Path) -> None:
    gateway = await start_asyncfix(Journaler())
    fix = session(tmp_path / "fix.sqlite")
    stream = await Endpoint("127.0.0.1", gateway.listen_port, tls=False).connect()
    delivered: list[FixMessage] = []

    async def on_message(message: FixMessage) -> None:
        delivered.append(message)

    connection = FixConnection(fix, stream, WallClock(), on_message)
    async with anyio.create_task_group() as tasks:
        ended: list[object] = []

        async def serve() -> None:
            ended.append(await connection.run())

        tasks.start_soon(serve)
        with anyio.fail_after(10):
            while fix.state is not SessionState.ACTIVE:
                await anyio.sleep(0.01)
            await connection.send("D", ORDER)
            while not gateway.received:
                await anyio.sleep(0.01)
            await gateway.send_msg(FIXMessage("8", {"11": "43637618552482556000", "17": "30005_582", "39": "0"}))
            while not delivered:
                await anyio.sleep(0.01)
            await connection.logout()
            while not ended:
                await anyio.sleep(0.01)
    assert gateway.received[0]["11"] == "43637618552482556000"
    assert delivered[0].get(17) == "30005_582"
    assert fix.state is SessionState.DISCONNECTED
    (end,) = ended
    assert isinstance(end, Disconnect) and not end.error  # asyncfix closes instead of confirming
    gateway.stop()


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by the openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


async def tls_gateway(cert: Path, key: Path, task_status: anyio.abc.TaskStatus[int]) -> None:
    """A minimal FIX gateway over TLS: answers a Logon with a Logon (frames built by simplefix)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
    listener = TLSListener(tcp, context, standard_compatible=False)
    task_status.started(tcp.extra(anyio.abc.SocketAttribute.local_port))

    async def handle(stream: anyio.abc.ByteStream) -> None:
        reader = FrameReader()
        with anyio.move_on_after(10):
            while True:
                try:
                    reader.feed(await stream.receive())
                except (anyio.EndOfStream, anyio.BrokenResourceError, ssl.SSLError):
                    return
                while (message := reader.next_message()) is not None:
                    if message.msg_type == "A":
                        await stream.send(Gateway().logon())

    await listener.serve(handle)


async def test_tls_with_the_configured_ca_bundle_logs_on_and_without_it_is_refused(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command makes the test certificate")
    cert, key = self_signed(tmp_path)
    async with anyio.create_task_group() as tasks:
        port = await tasks.start(tls_gateway, cert, key)
        with pytest.raises(ssl.SSLCertVerificationError):
            await Endpoint("127.0.0.1", port).connect()  # the system's CAs do not know it

        stream = await Endpoint("127.0.0.1", port, ca_bundle=cert).connect()
        fix = session(tmp_path / "fix.sqlite")

        async def ignore(message: FixMessage) -> None:
            return None

        connection = FixConnection(fix, stream, WallClock(), ignore)
        tasks.start_soon(connection.run)
        with anyio.fail_after(10):
            while fix.state is not SessionState.ACTIVE:
                await anyio.sleep(0.01)
        assert fix.store.next_in == 2
        tasks.cancel_scope.cancel()


def test_frames_sent_are_what_simplefix_reads() -> None:
    """What goes on the wire parses with simplefix's own parser, CompIDs as the document has them."""
    fix = session()
    (logon,) = fix.connect(1_626_224_470_569_000_000)
    parser = simplefix.FixParser()
    parser.append_buffer(logon.data)  # type: ignore[union-attr]
    message = parser.get_message()
    assert (message.get(49), message.get(56)) == (CLIENT.encode(), GATEWAY.encode())


class Recording(anyio.abc.ByteStream):
    """A stream that keeps what our side sent, decoded (to see the session's own messages)."""

    def __init__(self, inner: anyio.abc.ByteStream) -> None:
        self.inner = inner
        self.sent: list[FixMessage] = []
        self.reader = FrameReader()

    async def send(self, item: bytes) -> None:
        self.reader.feed(item)
        while (message := self.reader.next_message()) is not None:
            self.sent.append(message)
        await self.inner.send(item)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self.inner.receive(max_bytes)

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_the_transport_ticks_the_session_on_the_engines_clock(tmp_path: Path) -> None:
    """On a simulated clock, moving time on (108=60, then 60 + grace) makes the transport tick the
    session: a Heartbeat, then our TestRequest, which asyncfix's Heartbeat answers (the session
    stays logged on past the moment an unanswered one would end it)."""
    gateway = await start_asyncfix(Journaler())
    clock = SimClock(time.time_ns())
    fix = session(tmp_path / "fix.sqlite")
    stream = Recording(await Endpoint("127.0.0.1", gateway.listen_port, tls=False).connect())

    async def ignore(message: FixMessage) -> None:
        return None

    connection = FixConnection(fix, stream, clock, ignore)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(connection.run)
        with anyio.fail_after(10):
            while fix.state is not SessionState.ACTIVE:
                await anyio.sleep(0.01)
            start = clock.now_ns()
            clock.advance(start + 60 * NS)  # the heartbeat timer
            while len(stream.sent) < 2:
                await anyio.sleep(0.01)
            clock.advance(start + 72 * NS)  # the silence timer
            while len(stream.sent) < 3:
                await anyio.sleep(0.01)
            while fix.test_request_pending is not None:
                await anyio.sleep(0.01)
            for _round in range(5):  # past when an unanswered TestRequest ends the session (72 + 72 s)
                clock.advance(start + 150 * NS)
                await anyio.sleep(0.02)
            assert clock.now_ns() == start + 150 * NS
        assert [m.msg_type for m in stream.sent[:3]] == ["A", "0", "1"]
        assert fix.state is SessionState.ACTIVE and connection.ended is None
        tasks.cancel_scope.cancel()
    gateway.stop()


class Held(anyio.abc.ByteStream):
    """Our side of a connection held in memory: the test writes the gateway's bytes into it, and a
    frame we send waits while ``hold`` is set (a rate-limit token that does not come)."""

    def __init__(self) -> None:
        self.inbound_send, self.inbound = anyio.create_memory_object_stream[bytes](100)
        self.hold = False
        self.release = anyio.Event()
        self.waiting = anyio.Event()

    async def send(self, item: bytes) -> None:
        if self.hold:
            self.waiting.set()
            await self.release.wait()

    async def receive(self, max_bytes: int = 65536) -> bytes:
        try:
            return await self.inbound.receive()
        except anyio.EndOfStream:
            raise anyio.EndOfStream from None

    async def send_eof(self) -> None:
        return None

    async def aclose(self) -> None:
        await self.inbound_send.aclose()


async def test_a_report_is_handed_on_while_our_own_frame_waits_to_leave() -> None:
    """Issue 23 review, finding 8: the reader delivered under the send lock, so an ExecutionReport
    waited while one of our orders waited for a rate-limit token. It is handed on now."""
    gateway = Gateway()
    stream = Held()
    got: list[str] = []

    async def record(message: FixMessage) -> None:
        got.append(message.get(17) or "")

    fix = session()
    connection = FixConnection(fix, stream, WallClock(), record)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(connection.run)
        await stream.inbound_send.send(gateway.logon())
        with anyio.fail_after(10):
            while fix.state is not SessionState.ACTIVE:
                await anyio.sleep(0.01)
            stream.hold = True
            tasks.start_soon(connection.send, "D", ORDER)
            await stream.waiting.wait()  # our D holds the send lock, waiting for its token
            await stream.inbound_send.send(gateway.frame("8", (17, "E-1"), (150, "0"), (39, "0")))
            while not got:
                await anyio.sleep(0.01)
        assert got == ["E-1"] and not stream.release.is_set()
        stream.release.set()
        tasks.cancel_scope.cancel()
