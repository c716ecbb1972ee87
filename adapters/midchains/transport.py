"""The thin I/O loop around the sans-I/O FIX session: a TCP or TLS stream, the engine's clock,
and nothing else. Everything the session decides stays in :mod:`.session`; this module only carries
its actions to the socket, feeds it what arrives, and wakes it at :meth:`FixSession.next_deadline`.

TLS policy (issue 23; VENUES.md 2.1, MID-12): the gateway is reached over TLS, verified against the
system's CAs or a configured CA bundle (the document hints at private certificates); clear TCP only
to this machine (a local sandbox, or a local stunnel as the document suggests).

Time is the engine's :class:`~engine.venue.clock.Clock`: ``now_ns`` goes into every session call and
its timers are armed with ``call_at``, so a simulated or scaled clock drives heartbeats too.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc

from adapters.kit.urls import ClearTextRefused, is_loopback
from adapters.midchains.codec import FixMessage
from adapters.midchains.session import Action, Deliver, Disconnect, FixSession, Send, SessionState, Skipped
from engine.venue.clock import Clock, Timer

__all__ = ["Endpoint", "FixConnection"]

READ_SIZE = 65536


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the FIX gateway listens and how to reach it. ``ca_bundle`` (a PEM file) replaces the
    system's CAs; ``tls=False`` is refused unless ``host`` is this machine."""

    host: str
    port: int
    tls: bool = True
    ca_bundle: Path | None = None

    def check(self) -> None:
        if not self.tls and not is_loopback(self.host):
            raise ClearTextRefused(
                f"FIX endpoint {self.host}:{self.port}: clear TCP is allowed only to this machine "
                "(a local sandbox or stunnel); use TLS"
            )

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=str(self.ca_bundle) if self.ca_bundle else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    async def connect(self) -> anyio.abc.ByteStream:
        """An open stream to the gateway (TLS verified against the bundle or the system's CAs)."""
        self.check()
        context = self.ssl_context()
        if context is None:
            return await anyio.connect_tcp(self.host, self.port)
        return await anyio.connect_tcp(self.host, self.port, tls=True, ssl_context=context, tls_hostname=self.host)


class FixConnection:
    """One connection's life: logon, traffic, and the reason it ended. ``on_message`` receives the
    session's :class:`Deliver` messages in sequence order; ``on_skipped`` each :class:`Skipped`
    range the gateway's SequenceReset passed over, in order with them (None: not told);
    ``logon_fields`` go into the Logon (a Password, 554, for a gateway that wants one: the
    document's does not)."""

    def __init__(
        self,
        session: FixSession,
        stream: anyio.abc.ByteStream,
        clock: Clock,
        on_message: Callable[[FixMessage], Awaitable[None]],
        logon_fields: Sequence[tuple[int, str]] = (),
        on_skipped: Callable[[Skipped], Awaitable[None]] | None = None,
    ) -> None:
        self.session = session
        self.on_skipped = on_skipped
        self.logon_fields = tuple(logon_fields)
        self.stream = stream
        self.clock = clock
        self.on_message = on_message
        self.ended: Disconnect | None = None
        self._wake = anyio.Event()
        self._send_lock = anyio.Lock()

    async def run(self) -> Disconnect:
        """Log on and serve until the session or the peer ends the connection."""
        async with anyio.create_task_group() as tasks:
            await self._carry(self.session.connect(self.clock.now_ns(), self.logon_fields))
            tasks.start_soon(self._timers)
            await self._read()
            tasks.cancel_scope.cancel()
        await self.stream.aclose()
        return self.ended or Disconnect("connection closed")

    async def send(self, msg_type: str, body: Iterable[tuple[int, str]]) -> None:
        """An application message, numbered and stored by the session, then written."""
        await self._carry(self.session.send_application(msg_type, body, self.clock.now_ns()))

    async def probe(self) -> None:
        """A TestRequest now (:meth:`FixSession.probe`): the barrier after which the messages the
        gateway queued before it are all in."""
        await self._carry(self.session.probe(self.clock.now_ns()))

    async def logout(self, text: str | None = None) -> None:
        await self._carry(self.session.logout(self.clock.now_ns(), text))

    async def _read(self) -> None:
        while self.ended is None:
            try:
                data = await self.stream.receive(READ_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                # after our Logout, a close instead of the confirming Logout still ends it cleanly
                logging_out = self.session.state is SessionState.LOGOUT_SENT
                self.session.connection_lost()
                gateway = self.session.config.target_comp_id
                self.ended = self.ended or (
                    Disconnect(f"logged out ({gateway} closed without confirming)", error=False)
                    if logging_out
                    else Disconnect(f"{gateway} closed the connection")
                )
                return
            await self._carry(self.session.receive(data, self.clock.now_ns()))
            self.session.commit_inbound()  # after on_message had each of them: durable, one write a read

    async def _timers(self) -> None:
        """Tick the session at its next deadline; re-armed whenever an action may have moved it."""
        while self.ended is None:
            deadline = self.session.next_deadline()
            self._wake = anyio.Event()
            timer: Timer | None = None
            if deadline is not None:
                timer = self.clock.call_at(deadline, self._wake.set)
            await self._wake.wait()
            if timer is not None:
                timer.cancel()
            now = self.clock.now_ns()
            if deadline is not None and now >= deadline:
                await self._carry(self.session.tick(now))

    async def _carry(self, actions: list[Action]) -> None:
        """Carry out the session's actions: inbound messages to the adapter first, outside the send
        lock, then frames out in numbering order under it, then a disconnect. A frame may wait for
        a rate-limit token in ``stream.send`` (the link's pacing): while it does, the reader must
        still hand on the reports it read (an ER must not wait behind our own queued orders:
        issue 23 review, finding 8)."""
        sends: list[Send] = []
        ending: Disconnect | None = None
        for action in actions:
            if isinstance(action, Deliver):
                await self.on_message(action.message)
            elif isinstance(action, Skipped):
                if self.on_skipped is not None:
                    await self.on_skipped(action)
            elif isinstance(action, Send):
                sends.append(action)
            elif ending is None:
                ending = action
        if sends:
            async with self._send_lock:
                for send in sends:
                    try:
                        await self.stream.send(send.data)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                        self.session.connection_lost()
                        self.ended = self.ended or Disconnect("connection lost while sending")
                        break
        if ending is not None:
            self.ended = self.ended or ending
            await self.stream.aclose()
        self._wake.set()
