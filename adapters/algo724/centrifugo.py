"""A Centrifugo-protocol WebSocket server for the Algo724 sandbox (JSON protocol, server side).

Document 003 says only "All WebSocket messages follow the Centrifugo JSON protocol format" and
shows one connect command and its reply (``ping: 25, pong: true, version "5.0.0"``). Everything
else here is written from the Centrifugo client protocol (bidirectional, JSON, v2 as Centrifugo
5 speaks it) and checked against what the real client expects: centrifuge-python 0.7.0's source
(``centrifuge/client.py``: ``_process_reply``, ``_connected``, ``_refresh``, ``_move_subscribed``,
``_listen``; its ``client.proto`` for field names) and its own test server
(``tests/fake_server.py``). It never imports the client or the payload decoding: a field the
adapter misreads fails a test instead of being mirrored (ARCHITECTURE principle 5). What a
publication's ``data`` is (ALG-3) is the project's decision in
:mod:`adapters.algo724.streams_codec`; this module carries any JSON value.

The protocol, as served:

- frames: text; several commands (or replies) in one frame are separated by ``\\n``. A frame that
  is binary, not JSON or not an object closes the connection with 3501 "bad request" (Centrifugo).
- ``{"id":1,"connect":{"token":...}}`` first (anything else first, or nothing for
  ``connect_timeout_s``, closes: 3501 / 3502 "stale"). A token the authenticator refuses is
  answered ``{"id":1,"error":{"code":101,"message":"unauthorized"}}``, an expired one with code 109
  "token expired" (the client then asks its ``get_token`` for a new one). The reply:
  ``{"client","version","expires","ttl","ping","pong":true}``; ``expires``/``ttl`` come from the
  token's expiry, and a connection not refreshed by then (plus ``expired_close_delay_s``) is closed
  with 3005 "expired" (the client reconnects, meets 109, fetches a new token).
- ``refresh {"token"}``: a new expiry, answered ``{"client","version","expires","ttl"}``.
- ``subscribe {"channel", "recover", "offset", "epoch"}``: permission by ``authorize`` (103
  "permission denied"), 105 "already subscribed". Every channel keeps a stream: an ``epoch`` and
  the last ``history_size`` publications with their ``offset``. The reply carries
  ``recoverable:true, epoch, offset`` and, with ``recover``, ``was_recovering:true`` and either
  ``recovered:true`` + the missed ``publications`` (same epoch, nothing missed fell out of the
  bounded history) or ``recovered:false`` (the client's cue to reconcile). ``data`` is
  ``subscribe_data(channel)`` when given (the book snapshot, ALG-3).
- publications: ``{"push":{"channel":...,"pub":{"data":...,"offset":N}}}``.
- ping: ``{}`` every ``ping_interval_s``; the client answers ``{}`` (``pong:true``); no answer within
  ``pong_timeout_s`` closes with 3012 "no pong".
- ``unsubscribe``, ``history`` (``since`` + ``limit``; 112 "unrecoverable position" on another
  epoch), ``ping`` (empty result) are served; ``publish`` is refused (103: clients do not publish on
  these channels), ``presence``/``presence_stats``/``rpc``/``sub_refresh`` are 108 "not available",
  ``send`` is ignored.

A quirk handled: centrifuge-python's JSON mode sent an empty ``Sec-WebSocket-Protocol`` header
before 0.7.0 (its test server says "the websockets server rejects" it); this server drops an empty
header before the handshake is checked, so old and new clients connect.

Faults (the sandbox's vocabulary for streams): :meth:`drop_connections` (the stream drops: no
close frame, the client reconnects and recovers), :meth:`reset_epochs` (history lost, a new epoch:
recovery impossible, the client must reconcile over REST), :meth:`expire_connections` (closed
3005 "expired": the client must fetch a new token), :meth:`stall` (silence), :meth:`send_raw`
(a malformed frame), and short-lived tokens from the authenticator (the client must refresh).
:meth:`stats` counts what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from adapters.kit.wirejson import Reader, WireError
from engine.venue import RedactingFilter

__all__ = [
    "CentrifugoServer",
    "Grant",
    "TokenRefused",
]

log = logging.getLogger("engine.algo724.centrifugo")
#: websockets logs every frame at DEBUG, and the connect and refresh commands carry the JWT: the
#: engine's one credential filter scrubs it (by key) before any handler sees the line
wire_log = logging.getLogger("engine.algo724.centrifugo.wire")
wire_log.addFilter(RedactingFilter(keys=("token",)))

# Centrifugo error codes (replies) and disconnect codes (close frames) used here
ERR_UNAUTHORIZED = 101
ERR_UNKNOWN_CHANNEL = 102
ERR_PERMISSION_DENIED = 103
ERR_METHOD_NOT_FOUND = 104
ERR_ALREADY_SUBSCRIBED = 105
ERR_BAD_REQUEST = 107
ERR_NOT_AVAILABLE = 108
ERR_TOKEN_EXPIRED = 109
ERR_UNRECOVERABLE_POSITION = 112
_MESSAGES = {
    ERR_UNAUTHORIZED: "unauthorized", ERR_UNKNOWN_CHANNEL: "unknown channel",
    ERR_PERMISSION_DENIED: "permission denied", ERR_METHOD_NOT_FOUND: "method not found",
    ERR_ALREADY_SUBSCRIBED: "already subscribed", ERR_BAD_REQUEST: "bad request",
    ERR_NOT_AVAILABLE: "not available", ERR_TOKEN_EXPIRED: "token expired",
    ERR_UNRECOVERABLE_POSITION: "unrecoverable position",
}
CLOSE_SHUTDOWN = 3001
CLOSE_EXPIRED = 3005
CLOSE_SLOW = 3008
CLOSE_NO_PONG = 3012
CLOSE_BAD_REQUEST = 3501
CLOSE_STALE = 3502

#: document 003's connect reply example
DOC_VERSION = "5.0.0"
DOC_PING_S = 25


class TokenRefused(Exception):
    """The authenticator's refusal: ``expired`` (109, the client fetches a new token) or not (101)."""

    def __init__(self, reason: str, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


@dataclass(frozen=True)
class Grant:
    """What a valid token grants: its ``user`` and, when it expires, ``expires_at`` (unix seconds,
    as a JWT ``exp``)."""

    user: str
    expires_at: float | None = None


Authenticator = Callable[[str], Grant]
Authorizer = Callable[[Grant, str], bool]


def _allow_all(grant: Grant, channel: str) -> bool:
    return True


class _Stream:
    """One channel's publications: an epoch, the top offset, the bounded history (offset, pub
    JSON text)."""

    __slots__ = ("channel", "epoch", "offset", "history", "prefix")

    def __init__(self, channel: str, size: int) -> None:
        self.channel = channel
        self.epoch = secrets.token_hex(4)
        self.offset = 0
        self.history: deque[tuple[int, str]] = deque(maxlen=size)
        self.prefix = '{"push":{"channel":' + json.dumps(channel) + ',"pub":'

    def reset(self) -> None:
        self.epoch = secrets.token_hex(4)
        self.history.clear()

    def since(self, offset: int, epoch: str) -> list[str] | None:
        """Publications after ``offset`` of ``epoch``; None when the position cannot be recovered
        (another epoch, an offset ahead of ours, or some of them fell out of the history)."""
        if epoch != self.epoch or offset > self.offset:
            return None
        if offset == self.offset:
            return []
        oldest = self.history[0][0] if self.history else self.offset + 1
        if offset + 1 < oldest:
            return None
        return [text for n, text in self.history if n > offset]


class _Conn:
    """One client connection: its grant, subscriptions, ordered outbox and timers."""

    def __init__(self, ws: ServerConnection, client_id: str) -> None:
        self.ws = ws
        self.client_id = client_id
        self.grant: Grant | None = None
        self.channels: set[str] = set()
        self.outbox: deque[str] = deque()
        self.wake = asyncio.Event()
        self.closing = False
        self.pong_due: float | None = None
        self.expires_at: float | None = None


class CentrifugoServer:
    """The Centrifugo JSON protocol on 127.0.0.1 (or ``host``), publications from :meth:`publish`."""

    def __init__(
        self,
        authenticate: Authenticator,
        *,
        authorize: Authorizer = _allow_all,
        subscribe_data: Callable[[str], Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/connection/websocket",
        history_size: int = 1000,
        ping_interval_s: float = DOC_PING_S,
        pong_timeout_s: float = 8.0,
        connect_timeout_s: float = 10.0,
        expired_close_delay_s: float = 25.0,
        max_outbox: int = 100_000,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.authenticate = authenticate
        self.authorize = authorize
        self.subscribe_data = subscribe_data
        self.host = host
        self.port = port
        self.path = path
        self.history_size = history_size
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.expired_close_delay_s = expired_close_delay_s
        self.max_outbox = max_outbox
        self.now = now
        self._reader = Reader(max_chars=1 << 20)
        self._server: Server | None = None
        self._conns: set[_Conn] = set()
        self._streams: dict[str, _Stream] = {}
        self._subscribers: dict[str, set[_Conn]] = {}
        self._counts: dict[str, int] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self._stalled_until = 0.0

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._server = await serve(self._handle, self.host, self.port, ping_interval=None, compression=None,
                                   process_request=self._process_request, max_size=1 << 20, logger=wire_log)
        self.port = self._server.sockets[0].getsockname()[1] if not self.port else self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{self.path}"

    def stats(self) -> dict[str, int]:
        """Counters: connections, commands, publications, pushes, pings, pongs, refreshes,
        recovered, recovery_failed, closes by code (``close_3005`` ...)."""
        return dict(self._counts, connected=len(self._conns))

    def _count(self, key: str, n: int = 1) -> None:
        self._counts[key] = self._counts.get(key, 0) + n

    # ---- publishing ----------------------------------------------------------------------
    def stream(self, channel: str) -> _Stream:
        stream = self._streams.get(channel)
        if stream is None:
            stream = self._streams[channel] = _Stream(channel, self.history_size)
        return stream

    def position(self, channel: str) -> tuple[int, str]:
        """``(offset, epoch)`` of a channel's stream."""
        stream = self.stream(channel)
        return stream.offset, stream.epoch

    def publish(self, channel: str, data: Any) -> int:
        """Append ``data`` to the channel's history and push it to every subscriber. Synchronous:
        the frame is queued on each connection's outbox in publication order. Returns its offset."""
        stream = self.stream(channel)
        stream.offset += 1
        text = '{"data":' + json.dumps(data, separators=(",", ":")) + ',"offset":' + str(stream.offset) + "}"
        stream.history.append((stream.offset, text))
        self._count("publications")
        subscribers = self._subscribers.get(channel)
        if subscribers:
            frame = stream.prefix + text + "}}"
            for conn in subscribers:
                self._queue(conn, frame)
            self._count("pushes", len(subscribers))
        return stream.offset

    # ---- faults --------------------------------------------------------------------------
    def drop_connections(self) -> int:
        """Fault "the stream drops": every connection's TCP link is cut without a close frame."""
        dropped = 0
        for conn in list(self._conns):
            conn.closing = True
            transport = conn.ws.transport
            if transport is not None:
                transport.abort()
                dropped += 1
        self._count("dropped", dropped)
        return dropped

    def reset_epochs(self) -> None:
        """Fault "recovery impossible": every stream's history is lost and its epoch changes (a
        Centrifugo restarted on a memory engine), so no client can recover its position."""
        for stream in self._streams.values():
            stream.reset()
        self._count("epoch_resets")

    def expire_connections(self) -> None:
        """Fault "the token expired": every connection is past its expiry now and is closed 3005
        "expired" at once (no grace); the client reconnects, its old token is refused 109, it
        fetches a new one."""
        now = self.now()
        for conn in list(self._conns):
            conn.expires_at = now - self.expired_close_delay_s
        self._count("expired_by_fault")

    def stall(self, seconds: float) -> None:
        """Fault "the venue goes silent": nothing is sent to anyone (publications, replies, pings
        wait, in order) for ``seconds``; commands are still read."""
        self._stalled_until = asyncio.get_running_loop().time() + seconds
        self._count("stalls")

    def send_raw(self, text: str) -> None:
        """Fault "a malformed frame": ``text`` as it is to every connection, in order with the rest."""
        for conn in list(self._conns):
            self._queue(conn, text)

    async def close_connections(self, code: int = CLOSE_SHUTDOWN, reason: str = "shutdown") -> None:
        """Close every connection with a Centrifugo disconnect code (3001 "shutdown": reconnect)."""
        for conn in list(self._conns):
            await self._close(conn, code, reason)

    # ---- connection ----------------------------------------------------------------------
    @staticmethod
    def _process_request(connection: ServerConnection, request: Request) -> None:
        """Drop an empty ``Sec-WebSocket-Protocol`` header (centrifuge-python < 0.7 JSON mode sends
        one; websockets would refuse the handshake with 400)."""
        headers: Headers = request.headers
        values = headers.get_all("Sec-WebSocket-Protocol")
        if values and not any(v.strip() for v in values):
            del headers["Sec-WebSocket-Protocol"]
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        if self.path and ws.request is not None and ws.request.path.split("?")[0] != self.path:
            await ws.close(CLOSE_BAD_REQUEST, "bad request")
            return
        conn = _Conn(ws, str(uuid.uuid4()))
        self._conns.add(conn)
        self._count("connections")
        writer = asyncio.ensure_future(self._writer(conn))
        timers = asyncio.ensure_future(self._timers(conn))
        try:
            async for frame in ws:
                if conn.closing:
                    break
                if type(frame) is not str:
                    await self._close(conn, CLOSE_BAD_REQUEST, "bad request")
                    break
                for line in frame.split("\n"):
                    if line.strip() and not await self._command(conn, line):
                        break
                if conn.closing:
                    break
        except ConnectionClosed:
            pass
        finally:
            self._forget(conn)
            timers.cancel()
            conn.wake.set()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
            with contextlib.suppress(asyncio.CancelledError):
                await timers

    def _forget(self, conn: _Conn) -> None:
        conn.closing = True
        self._conns.discard(conn)
        for channel in conn.channels:
            subscribers = self._subscribers.get(channel)
            if subscribers is not None:
                subscribers.discard(conn)
        conn.channels.clear()

    def _queue(self, conn: _Conn, text: str) -> None:
        if conn.closing:
            return
        if len(conn.outbox) >= self.max_outbox:  # a client that does not read: Centrifugo's "slow"
            conn.closing = True
            task = asyncio.ensure_future(self._close(conn, CLOSE_SLOW, "slow"))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        conn.outbox.append(text)
        conn.wake.set()

    async def _writer(self, conn: _Conn) -> None:
        """Send the outbox in order, everything pending in one frame (``\\n``-separated, as
        Centrifugo batches): a burst of publications costs one send, not one per message."""
        outbox = conn.outbox
        while True:
            await conn.wake.wait()
            conn.wake.clear()
            if not outbox:
                if conn.closing:
                    return
                continue
            pause = self._stalled_until - asyncio.get_running_loop().time()
            if pause > 0:
                await asyncio.sleep(pause)
                if not outbox:
                    continue
            batch = "\n".join(outbox)
            outbox.clear()
            try:
                await conn.ws.send(batch)
            except ConnectionClosed:
                return

    async def _timers(self, conn: _Conn) -> None:
        """Connect deadline, server pings and the pong deadline, connection expiry."""
        loop = asyncio.get_running_loop()
        connect_by = loop.time() + self.connect_timeout_s
        next_ping = math.inf
        while not conn.closing:
            now = loop.time()
            if conn.grant is None:
                if now >= connect_by:
                    await self._close(conn, CLOSE_STALE, "stale")
                    return
                await asyncio.sleep(min(0.05, connect_by - now))
                continue
            if next_ping == math.inf:
                next_ping = now + self.ping_interval_s
            if conn.pong_due is not None and now >= conn.pong_due:
                await self._close(conn, CLOSE_NO_PONG, "no pong")
                return
            if conn.expires_at is not None and self.now() >= conn.expires_at + self.expired_close_delay_s:
                await self._close(conn, CLOSE_EXPIRED, "expired")
                return
            if now >= next_ping:
                self._queue(conn, "{}")
                self._count("pings")
                if conn.pong_due is None:
                    conn.pong_due = now + self.pong_timeout_s
                next_ping = now + self.ping_interval_s
            await asyncio.sleep(min(0.05, max(0.0, next_ping - now)))

    async def _close(self, conn: _Conn, code: int, reason: str) -> None:
        self._count(f"close_{code}")
        conn.closing = True
        conn.wake.set()
        with contextlib.suppress(Exception):
            await conn.ws.close(code, reason)

    # ---- commands ------------------------------------------------------------------------
    def _reply(self, conn: _Conn, cmd_id: int, key: str, result: dict[str, Any]) -> None:
        self._queue(conn, json.dumps({"id": cmd_id, key: result}, separators=(",", ":")))

    def _error(self, conn: _Conn, cmd_id: int, code: int, message: str = "") -> None:
        self._count(f"error_{code}")
        self._queue(conn, json.dumps({"id": cmd_id, "error": {"code": code, "message": message or _MESSAGES[code]}},
                                     separators=(",", ":")))

    async def _command(self, conn: _Conn, line: str) -> bool:
        """One command; False when the connection was closed for it."""
        try:
            command = self._reader.loads(line)
        except WireError:
            command = None
        cmd_id = command.get("id", 0) if type(command) is dict else None
        if type(command) is not dict or type(cmd_id) is not int or isinstance(cmd_id, bool) or cmd_id < 0:
            await self._close(conn, CLOSE_BAD_REQUEST, "bad request")
            return False
        self._count("commands")
        if not command or (cmd_id == 0 and len(command) == 1):  # {} is the client's pong
            conn.pong_due = None
            self._count("pongs")
            return True
        methods = [key for key in command if key != "id"]
        method = methods[0] if len(methods) == 1 else ""
        params = command.get(method) if method else None
        if params is None:
            params = {}
        if type(params) is not dict:
            await self._close(conn, CLOSE_BAD_REQUEST, "bad request")
            return False
        if conn.grant is None and method != "connect":
            await self._close(conn, CLOSE_BAD_REQUEST, "bad request")
            return False
        handler = getattr(self, f"_on_{method}", None) if method else None
        if handler is None:
            if method == "send":
                return True
            if method in ("presence", "presence_stats", "rpc", "sub_refresh"):
                self._error(conn, cmd_id, ERR_NOT_AVAILABLE)
            else:
                self._error(conn, cmd_id, ERR_METHOD_NOT_FOUND)
            return True
        return await handler(conn, cmd_id, params)

    def _grant(self, token: Any) -> Grant | int:
        """The token's grant, or the error code refusing it."""
        if type(token) is not str or not token:
            return ERR_UNAUTHORIZED
        try:
            grant = self.authenticate(token)
        except TokenRefused as exc:
            return ERR_TOKEN_EXPIRED if exc.expired else ERR_UNAUTHORIZED
        if grant.expires_at is not None and grant.expires_at <= self.now():
            return ERR_TOKEN_EXPIRED
        return grant

    def _expiry(self, grant: Grant) -> dict[str, Any]:
        if grant.expires_at is None:
            return {"expires": False, "ttl": 0}
        # whole seconds left, rounded down (as Centrifugo): the client refreshes before, never after
        return {"expires": True, "ttl": max(1, int(grant.expires_at - self.now()))}

    async def _on_connect(self, conn: _Conn, cmd_id: int, params: dict[str, Any]) -> bool:
        if conn.grant is not None:
            await self._close(conn, CLOSE_BAD_REQUEST, "bad request")
            return False
        grant = self._grant(params.get("token"))
        if isinstance(grant, int):
            self._error(conn, cmd_id, grant)
            return True
        conn.grant = grant
        conn.expires_at = grant.expires_at
        result = {"client": conn.client_id, "version": DOC_VERSION, **self._expiry(grant),
                  "ping": int(self.ping_interval_s) if self.ping_interval_s >= 1 else 1, "pong": True,
                  "time": int(self.now() * 1000)}
        self._reply(conn, cmd_id, "connect", result)
        return True

    async def _on_refresh(self, conn: _Conn, cmd_id: int, params: dict[str, Any]) -> bool:
        grant = self._grant(params.get("token"))
        if isinstance(grant, int):
            self._error(conn, cmd_id, grant)
            return True
        conn.grant = grant
        conn.expires_at = grant.expires_at
        self._count("refreshes")
        self._reply(conn, cmd_id, "refresh", {"client": conn.client_id, "version": DOC_VERSION, **self._expiry(grant)})
        return True

    async def _on_subscribe(self, conn: _Conn, cmd_id: int, params: dict[str, Any]) -> bool:
        channel = params.get("channel")
        if type(channel) is not str or not channel or len(channel) > 255:
            self._error(conn, cmd_id, ERR_BAD_REQUEST)
            return True
        assert conn.grant is not None
        if not self.authorize(conn.grant, channel):
            self._error(conn, cmd_id, ERR_PERMISSION_DENIED)
            return True
        if channel in conn.channels:
            self._error(conn, cmd_id, ERR_ALREADY_SUBSCRIBED)
            return True
        stream = self.stream(channel)
        result: dict[str, Any] = {"recoverable": True, "epoch": stream.epoch, "offset": stream.offset}
        if params.get("recover") is True:
            offset = params.get("offset", 0)
            epoch = params.get("epoch", "")
            missed = stream.since(offset, epoch) if type(offset) is int and type(epoch) is str else None
            result["was_recovering"] = True
            result["recovered"] = missed is not None
            self._count("recovered" if missed is not None else "recovery_failed")
        else:
            missed = None
        if self.subscribe_data is not None:
            data = self.subscribe_data(channel)
            if data is not None:
                result["data"] = data
        # The reply and the missed publications are queued at once, before any publication that
        # comes after this point: nothing falls between recovery and the live stream.
        head = json.dumps({"id": cmd_id, "subscribe": result}, separators=(",", ":"))
        if missed:
            head = head[:-2] + ',"publications":[' + ",".join(missed) + "]}}"
        self._queue(conn, head)
        conn.channels.add(channel)
        self._subscribers.setdefault(channel, set()).add(conn)
        self._count("subscribes")
        return True

    async def _on_unsubscribe(self, conn: _Conn, cmd_id: int, params: dict[str, Any]) -> bool:
        channel = params.get("channel")
        if type(channel) is str and channel in conn.channels:
            conn.channels.discard(channel)
            self._subscribers.get(channel, set()).discard(conn)
        self._reply(conn, cmd_id, "unsubscribe", {})
        return True

    async def _on_history(self, conn: _Conn, cmd_id: int, params: dict[str, Any]) -> bool:
        channel = params.get("channel")
        if type(channel) is not str or channel not in self._streams:
            self._error(conn, cmd_id, ERR_UNKNOWN_CHANNEL)
            return True
        stream = self._streams[channel]
        since = params.get("since")
        if type(since) is dict:
            offset = since.get("offset", 0)
            epoch = since.get("epoch", "")
            texts = stream.since(offset, epoch) if type(offset) is int and type(epoch) is str else None
            if texts is None:
                self._error(conn, cmd_id, ERR_UNRECOVERABLE_POSITION)
                return True
        else:
            texts = [text for _, text in stream.history]
        limit = params.get("limit", 0)
        if type(limit) is int and limit > 0:
            texts = texts[:limit]
        head = json.dumps({"id": cmd_id, "history": {"epoch": stream.epoch, "offset": stream.offset}},
                          separators=(",", ":"))
        self._queue(conn, head[:-2] + ',"publications":[' + ",".join(texts) + "]}}")
        return True

    async def _on_ping(self, conn: _Conn, cmd_id: int, params: dict[str, Any]) -> bool:
        self._reply(conn, cmd_id, "ping", {})
        return True

    async def _on_publish(self, conn: _Conn, cmd_id: int, params: dict[str, Any]) -> bool:
        self._error(conn, cmd_id, ERR_PERMISSION_DENIED)
        return True
