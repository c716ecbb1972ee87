"""One reconnecting WebSocket client for every network adapter (issue 19: written once).

What it owns, so no adapter writes it again:

- **liveness by WebSocket ping/pong**: a ping every ``ping_interval_s``; a pong not back within
  ``ping_timeout_s`` declares the peer dead and drops the socket. Liveness never comes from the
  venue's application messages: a quiet market, or a venue that sends no heartbeat message
  (issue 20: Pulse 004 documents none), is not a dead connection;
- **reconnect with jittered exponential backoff** (:class:`adapters.kit.backoff.Backoff`), started
  when a connection that was up is lost, until ``close``;
- **subscription intent**: what the adapter wants subscribed is kept here (``want``) and issued
  again, through the adapter's ``on_intent`` callback, on every new connection;
- **an epoch** (connection generation): every frame is delivered with the epoch of the connection
  it came on, and a frame read from a connection that is no longer the current one is dropped
  (counted ``stale_frames``), never handed to the adapter.

What stays with the adapter: opening the socket (URL, credentials, headers, its own errors), what
to do once a socket is open (log in: ``on_up``), decoding frames, and what a loss means for its
requests and for the engine (``on_lost``). Timers run on the event loop's monotonic clock (the
network runs in real time even when a sandbox day is scaled).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from adapters.kit.backoff import Backoff

log = logging.getLogger("engine.wsclient")

Opener = Callable[[], Awaitable[ClientConnection]]
FrameHandler = Callable[[str | bytes, int], None]
Spawn = Callable[..., None]


def _default_close_reason(exc: ConnectionClosed | None, ws: ClientConnection) -> str:
    if exc is None:
        return f"connection closed (code {ws.close_code})"
    return f"connection lost: {exc}"


class WsClient:
    """A WebSocket connection that stays up: one socket at a time, reconnected until ``close``.

    ``spawn(fn, *args, name=...)`` runs a background task in the owner's task group (the
    adapter's ``start_task``). Callbacks, all optional but ``on_frame``:

    - ``on_frame(data, epoch)``: one frame of the current connection;
    - ``on_up(epoch)``: a new socket is open (its reader already runs): log in, configure. Raising
      fails this attempt (the first ``connect`` raises it; a reconnect retries with backoff);
    - ``on_intent(items, epoch)``: issue these subscriptions on this connection; called with the
      whole intent after every ``on_up``, and with the new items when ``want`` adds some while up.
      May return an awaitable (awaited);
    - ``on_lost(epoch, reason, unexpected)``: the connection of ``epoch`` ended; ``unexpected`` is
      False when ``close`` ended it or it never came up (a reconnect follows only if True);
    - ``on_reconnected(epoch, failures)``: a reconnect succeeded after ``failures`` failed attempts;
    - ``on_retry_failed(exc, failures)``: one reconnect attempt failed with an exception of
      ``retry_on`` (anything else ends the reconnect loop: it is a bug, not a network fault).
    """

    def __init__(
        self,
        name: str,
        open_socket: Opener,
        on_frame: FrameHandler,
        *,
        spawn: Spawn,
        backoff: Backoff,
        ping_interval_s: float | None = 20.0,
        ping_timeout_s: float = 20.0,
        close_timeout_s: float = 2.0,
        on_up: Callable[[int], Awaitable[None]] | None = None,
        on_intent: Callable[[list[str], int], Awaitable[None] | None] | None = None,
        on_lost: Callable[[int, str, bool], None] | None = None,
        on_reconnected: Callable[[int, int], None] | None = None,
        on_retry_failed: Callable[[BaseException, int], None] | None = None,
        close_reason: Callable[[ConnectionClosed | None, ClientConnection], str] = _default_close_reason,
        retry_on: tuple[type[BaseException], ...] = (ConnectionError, OSError),
    ) -> None:
        self.name = name
        self._open_socket = open_socket
        self._on_frame = on_frame
        self._spawn = spawn
        self.backoff = backoff
        self.ping_interval_s = ping_interval_s
        self.ping_timeout_s = ping_timeout_s
        self.close_timeout_s = close_timeout_s
        self._on_up = on_up
        self._on_intent = on_intent
        self._on_lost = on_lost
        self._on_reconnected = on_reconnected
        self._on_retry_failed = on_retry_failed
        self._close_reason = close_reason
        self._retry_on = retry_on
        #: the subscription intent, in the order it was asked for
        self._intent: dict[str, None] = {}
        self.ws: ClientConnection | None = None
        #: the current connection's generation; 0 before the first one opens
        self.epoch = 0
        #: True once ``on_up`` finished for the current connection and until it is lost
        self.up = False
        self.closing = False
        self._stop = anyio.Event()
        self._reconnecting = False
        self._healthy_epoch = 0
        # ---- counters
        self.attempts = 0  # connection attempts, the first included
        self.reconnects = 0
        self.pongs = 0
        self.pings_missed = 0
        self.stale_frames = 0  # frames of a dead connection, dropped

    # ---- intent --------------------------------------------------------------------------
    @property
    def intent(self) -> tuple[str, ...]:
        return tuple(self._intent)

    def want(self, items: Iterable[str]) -> list[str]:
        """Add to the intent; returns what was new. New items are issued now when the connection
        is up, and with everything else on every later connection."""
        new = [item for item in items if item not in self._intent]
        for item in new:
            self._intent[item] = None
        if new and self.up and self._on_intent is not None:
            result = self._on_intent(new, self.epoch)
            if inspect.isawaitable(result):
                self._spawn(_awaited, result, name=f"{self.name} subscribe")
        return new

    async def reissue(self) -> None:
        """Issue the whole intent again on the current connection (after a gap, for snapshots)."""
        if self.up and self._intent and self._on_intent is not None:
            result = self._on_intent(list(self._intent), self.epoch)
            if inspect.isawaitable(result):
                await result

    # ---- lifecycle -----------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the first connection; its failure is raised (the engine refuses to start blind).
        Losses after that are reconnected with backoff."""
        if self.ws is not None:
            return
        self.closing = False
        self._stop = anyio.Event()
        await self._establish()

    async def close(self) -> None:
        """Stop reconnecting and close the socket (bounded wait). Never raises."""
        self.closing = True
        self._stop.set()
        ws = self.ws
        if ws is None:
            return
        epoch = self.epoch
        with anyio.move_on_after(self.close_timeout_s):
            try:
                await ws.close()
            except Exception:  # closing a broken socket: nothing left to do
                pass
        self._lost(ws, epoch, "closed by us")  # unless its reader already reported it

    def drop(self, reason: str, epoch: int | None = None) -> bool:
        """Abandon the current connection now: it is lost from this instant (``on_lost`` runs
        before this returns; frames still buffered from it are never delivered) and the reconnect
        starts. ``epoch``, when given, must be the current one: a verdict about a dead connection
        never drops its successor."""
        ws = self.ws
        if ws is None or (epoch is not None and epoch != self.epoch):
            return False
        ws.transport.abort()
        self._lost(ws, self.epoch, reason)
        return True

    def current(self, epoch: int) -> bool:
        """True while ``epoch`` is the connection that is open."""
        return epoch == self.epoch and self.ws is not None

    def healthy(self) -> None:
        """The current connection proved useful (data, or a login answered): the next outage's
        backoff starts from the beginning again. Until then a peer that accepts and closes at
        once keeps backing off."""
        if self._healthy_epoch != self.epoch:
            self._healthy_epoch = self.epoch
            self.backoff.reset()

    async def send(self, text: str | bytes, epoch: int | None = None) -> bool:
        """Send on the current connection (on ``epoch``'s only, when given). False when it is not
        there or closed meanwhile: the reader reports the loss, the reconnect re-issues intent."""
        ws = self.ws
        if ws is None or (epoch is not None and epoch != self.epoch):
            return False
        try:
            await ws.send(text)
        except ConnectionClosed:
            return False
        return True

    # ---- connections ---------------------------------------------------------------------
    async def _establish(self) -> None:
        """One attempt: open, start reading and pinging, ``on_up``, then issue the intent."""
        self.attempts += 1
        ws = await self._open_socket()
        self.epoch += 1
        epoch = self.epoch
        self.ws = ws
        self.up = False
        self._spawn(self._read, ws, epoch, name=f"{self.name} reader#{epoch}")
        if self.ping_interval_s:
            self._spawn(self._keepalive, ws, epoch, name=f"{self.name} ping#{epoch}")
        try:
            if self._on_up is not None:
                await self._on_up(epoch)
            if self.ws is not ws:
                raise ConnectionError(f"{self.name}: the connection was lost while it was set up")
        except BaseException:
            with anyio.move_on_after(self.close_timeout_s, shield=True):
                try:
                    await ws.close()
                except Exception:  # already broken
                    pass
            self._lost(ws, epoch, "set-up failed")
            raise
        self.up = True
        if self._intent and self._on_intent is not None:
            result = self._on_intent(list(self._intent), epoch)
            if inspect.isawaitable(result):
                await result

    async def _read(self, ws: ClientConnection, epoch: int) -> None:
        """Deliver this connection's frames while it is the current one; then report its end."""
        closed: ConnectionClosed | None = None
        try:
            async for data in ws:
                if self.ws is not ws:
                    self.stale_frames += 1  # dropped, or a newer connection began: nothing of it is applied
                    continue
                self._on_frame(data, epoch)
        except ConnectionClosed as exc:
            closed = exc
        finally:
            if self.ws is ws:  # not already reported (dropped, closed)
                self._lost(ws, epoch, self._close_reason(closed, ws))

    async def _keepalive(self, ws: ClientConnection, epoch: int) -> None:
        """Ping every interval; no pong within the timeout -> the peer is dead: drop the socket.
        A peer that stops answering is declared dead within interval + timeout."""
        interval = float(self.ping_interval_s or 0)
        stop = self._stop
        while self.current(epoch) and not self.closing:
            with anyio.move_on_after(interval):
                await stop.wait()
            if not self.current(epoch) or self.closing:
                return
            try:
                waiter = await ws.ping()
            except ConnectionClosed:
                return
            with anyio.move_on_after(self.ping_timeout_s) as scope:
                try:
                    await waiter
                except ConnectionClosed:
                    return
                self.pongs += 1
            if scope.cancelled_caught and self.current(epoch) and not self.closing:
                self.pings_missed += 1
                log.warning("%s: no pong within %g s: the peer is dead; dropping the connection", self.name,
                            self.ping_timeout_s)
                self.drop(f"no pong within {self.ping_timeout_s:g} s (WebSocket ping)", epoch)
                return

    def _lost(self, ws: ClientConnection, epoch: int, reason: str) -> None:
        """The connection of ``epoch`` ended: tell the adapter once, then reconnect if it was up."""
        if self.ws is not ws:
            return  # reported already, or a connection that was never the current one
        self.ws = None
        was_up = self.up
        self.up = False
        unexpected = was_up and not self.closing
        if self._on_lost is not None:
            self._on_lost(epoch, reason, unexpected)
        if unexpected and not self._reconnecting:
            self._reconnecting = True
            self._spawn(self._reconnect, name=f"{self.name} reconnect")

    async def _reconnect(self) -> None:
        """Retry with backoff until connected or closed. The old socket is gone before a new one
        opens (venues that count connections per credential see one at a time)."""
        failures = 0
        stop = self._stop
        try:
            while not self.closing:
                with anyio.move_on_after(self.backoff.next_delay()):
                    await stop.wait()
                if self.closing:
                    return
                try:
                    await self._establish()
                except self._retry_on as exc:
                    failures += 1
                    if self._on_retry_failed is not None:
                        self._on_retry_failed(exc, failures)
                    continue
                if self.closing:  # closed while the handshake was in flight: this socket is not wanted
                    await self.close()
                    return
                self.reconnects += 1
                if self._on_reconnected is not None:
                    self._on_reconnected(self.epoch, failures)
                return
        finally:
            self._reconnecting = False

    def describe(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "up": self.up, "attempts": self.attempts, "reconnects": self.reconnects,
                "pings_missed": self.pings_missed, "stale_frames": self.stale_frames, "intent": len(self._intent)}


async def _awaited(awaitable: Awaitable[Any]) -> None:
    await awaitable
