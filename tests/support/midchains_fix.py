"""The MidChains FIX tests' counterparts: a gateway whose frames are built with simplefix directly
(not through adapters.midchains.codec), asyncfix's acceptor (a FIX engine we did not write) on
127.0.0.1, the document's examples from the fixture, and small readers of a session's actions."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import simplefix
from asyncfix import FIXMessage
from asyncfix.connection_server import AsyncFIXDummyServer
from asyncfix.journaler import Journaler
from asyncfix.protocol import FIXProtocol44

from adapters.midchains.codec import FixMessage, reframe
from adapters.midchains.session import Deliver, Disconnect, FixSession, Send, SessionConfig
from adapters.midchains.store import SequenceStore

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "midchains" / "fix_examples.txt"

#: the CompIDs of the document's examples: the gateway MIDCDEV1, the client YOURSENDCOMP
GATEWAY = "MIDCDEV1"
CLIENT = "YOURSENDCOMP"
NS = 1_000_000_000


def at(text: str) -> int:
    """``"2021-07-14 01:01:10.569"`` (UTC) as epoch nanoseconds: the document's SendingTimes."""
    moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return int(moment.timestamp()) * NS + moment.microsecond * 1000


#: the client Logon example's SendingTime, 52=20210714-01:01:10.569
T0 = at("2021-07-14 01:01:10.569")


def examples() -> list[str]:
    """The document's FIX example lines, verbatim (``^A`` separators, wrong 9 and 10)."""
    return FIXTURE.read_text(encoding="utf-8").splitlines()


def example(msg_type: str, sender: str = GATEWAY) -> bytes:
    """The first document example of ``msg_type`` sent by ``sender``, ``^A`` as SOH, 9/10 recomputed."""
    for line in examples():
        raw = line.replace("^A", "\x01").encode()
        if f"\x0135={msg_type}\x01".encode() in raw and f"\x0149={sender}\x01".encode() in raw:
            return reframe(raw)
    raise LookupError(f"no {msg_type} example from {sender}")


class Gateway:
    """The other end, numbering its own messages; frames built by simplefix's own encoder."""

    def __init__(self, seq: int = 1, sending_time: str = "20210714-07:52:46.306") -> None:
        self.seq = seq
        self.sending_time = sending_time

    def frame(
        self,
        msg_type: str,
        *fields: tuple[int, str | bytes],
        seq: int | str | bytes | None = None,
        header: Sequence[tuple[int, str | bytes]] = (),
        sender: str = GATEWAY,
    ) -> bytes:
        """One frame; ``seq`` None takes the next number (and counts it); str or bytes go as they are
        (bytes for values that are not UTF-8 text, like a lone latin-1 '\\xb2')."""
        if seq is None:
            seq, self.seq = self.seq, self.seq + 1
        message = simplefix.FixMessage()
        message.append_pair(8, "FIX.4.2", header=True)
        message.append_pair(35, msg_type, header=True)
        message.append_pair(49, sender, header=True)
        message.append_pair(56, CLIENT, header=True)
        message.append_pair(34, seq, header=True)
        message.append_pair(52, self.sending_time, header=True)
        for tag, value in header:
            message.append_pair(tag, value, header=True)
        for tag, value in fields:
            message.append_pair(tag, value)
        data: bytes = message.encode()
        return data

    def logon(self, heartbeat_s: int = 60, seq: int | None = None) -> bytes:
        return self.frame("A", (98, "0"), (108, str(heartbeat_s)), seq=seq)


def session(path: Path | str = ":memory:", **config: int) -> FixSession:
    """A client session with the document's CompIDs, its store at ``path``."""
    return FixSession(SessionConfig(CLIENT, GATEWAY, **config), SequenceStore(path, f"{CLIENT}->{GATEWAY}"))


def logged_on(path: Path | str = ":memory:", now_ns: int = T0, gateway: Gateway | None = None) -> FixSession:
    """A session past its logon (gateway numbering from ``gateway``)."""
    fix = session(path)
    fix.connect(now_ns)
    assert not fix.receive((gateway or Gateway()).logon(), now_ns)
    fix.commit_inbound()  # as the transport does once a read's messages are handled
    return fix


def sends(actions: Iterable[object]) -> list[FixMessage]:
    return [action.message for action in actions if isinstance(action, Send)]


def delivered(actions: Iterable[object]) -> list[FixMessage]:
    return [action.message for action in actions if isinstance(action, Deliver)]


def disconnects(actions: Iterable[object]) -> list[Disconnect]:
    return [action for action in actions if isinstance(action, Disconnect)]


def fields(message: FixMessage, *tags: int) -> tuple[str | None, ...]:
    return tuple(message.get(tag) for tag in tags)


#: the document's D example's body (a limit buy of LTCUSD, 38=1 at FractionBase 10)
ORDER = [(11, "43637618552482556000"), (21, "2"), (38, "1"), (40, "2"), (44, "150"), (54, "1"), (55, "LTCUSD"),
         (59, "1"), (43229, "10")]


class Fix42(FIXProtocol44):
    """asyncfix's protocol (written for FIX 4.4; the session layer is the same) with MidChains'
    BeginString."""

    beginstring = "FIX.4.2"


class AsyncfixGateway(AsyncFIXDummyServer):
    """asyncfix's single-connection acceptor as MIDCDEV1, keeping the application messages it got."""

    def __init__(self, journaler: Journaler, port: int) -> None:
        super().__init__(Fix42(), GATEWAY, CLIENT, journaler, "127.0.0.1", port, heartbeat_period=60)
        self.listen_port = port
        self.received: list[FIXMessage] = []
        self.task: asyncio.Task[None] | None = None

    async def on_connect(self) -> None:
        return None

    async def on_message(self, msg: FIXMessage) -> None:
        self.received.append(msg)

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def start_asyncfix(journaler: Journaler) -> AsyncfixGateway:
    """asyncfix's acceptor listening on a free loopback port (asyncio backend only)."""
    for _attempt in range(5):
        gateway = AsyncfixGateway(journaler, free_port())
        task = asyncio.create_task(gateway.connect())
        await asyncio.sleep(0.05)
        if not task.done():
            gateway.task = task
            return gateway
    raise RuntimeError("no free loopback port for the acceptor")
