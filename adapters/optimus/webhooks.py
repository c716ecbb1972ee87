"""Receiving Optimus webhooks: a small HTTP/1.1 server and the checks every delivery passes.

The broker pushes order and account events to ``POST /webhook/visionmax`` (document "Webhook
Notifications"). The document is silent on authentication, retries and de-duplication (OPT-5), so
the receiver:

1. refuses a body over ``max_body`` bytes (413) and anything but ``POST`` on the path (405/404);
2. checks the HMAC signature header (:func:`adapters.optimus.codec.verify_webhook`): a bad or stale
   signature is answered 401, logged and counted, and the event is not applied;
3. decodes the event: a malformed one is answered 400, logged with a sample and counted;
4. drops an ``event_id`` it has already applied (answered 200, so the broker stops retrying);
5. hands the event to the adapter; only then is the id remembered, so an event whose handling
   failed is answered 500 and applied when the broker retries (nothing is lost).

The server is transport only (h11 over asyncio streams, keep-alive, Content-Length bodies); the
sandbox serves its REST API with the same class.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import h11

from adapters.optimus.codec import (
    SIGNATURE_HEADER,
    CodecError,
    SignatureError,
    WebhookEvent,
    decode_webhook,
    verify_webhook,
)
from engine.clock import Clock

__all__ = ["HttpRequest", "HttpResponse", "HttpServer", "WebhookReceiver", "parse_listen"]

log = logging.getLogger("engine.optimus")


READ_CHUNK = 65536
#: log the first few of each kind of bad input in full, then one in this many
LOG_EVERY = 1000
LOG_FIRST = 5


@dataclass(slots=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes
    peer: str


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


#: a handler returns the response, or None to abort the connection without one (an injected fault)
Handler = Callable[[HttpRequest], Awaitable[HttpResponse | None]]


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6) -> (host, port); port 0 = any free port."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected host:port, got {text!r}")
    return host.strip("[]"), int(port)


class HttpServer:
    """HTTP/1.1 on h11 over asyncio streams: one request at a time per connection, keep-alive,
    bodies up to ``max_body`` bytes. ``drop_connections`` aborts every open socket (a fault the
    sandbox injects); ``close`` stops listening and drops what is left."""

    def __init__(self, handler: Handler, host: str, port: int, *, max_body: int = 1 << 20, name: str = "http") -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.max_body = max_body
        self.name = name
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        sockname = self._server.sockets[0].getsockname()
        self.port = int(sockname[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def drop_connections(self) -> int:
        """Abort every open connection at once (no response, no FIN handshake); returns how many."""
        writers = list(self._writers)
        for writer in writers:
            writer.transport.abort()
        return len(writers)

    async def close(self) -> None:
        server = self._server
        self._server = None
        if server is not None:
            server.close()
        self.drop_connections()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        peer_info = writer.get_extra_info("peername")
        peer = str(peer_info[0]) if isinstance(peer_info, tuple) else "unknown"
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        try:
            while True:
                request = await self._read_request(conn, reader, writer, peer)
                if request is None:
                    break
                try:
                    response = await self.handler(request)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s server: handler failed for %s %s", self.name, request.method, request.path)
                    response = HttpResponse(500, b'{"status":"error","code":500,"message":"internal error"}')
                if response is None:
                    writer.transport.abort()
                    break
                await self._send(conn, writer, response)
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    break
                try:
                    conn.start_next_cycle()
                except h11.LocalProtocolError:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, h11.LocalProtocolError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> HttpRequest | None:
        head: h11.Request | None = None
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                await self._refuse(conn, writer, exc.error_status_hint, f"bad request: {exc}")
                return None
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(READ_CHUNK))  # b"" = the peer closed: h11 says so next
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None
            if isinstance(event, h11.Request):
                head = event
                length = _header(event.headers, b"content-length")
                if length is not None and length.isdigit() and int(length) > self.max_body:
                    await self._refuse(conn, writer, 413, f"body over {self.max_body} bytes")
                    return None
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > self.max_body:
                    await self._refuse(conn, writer, 413, f"body over {self.max_body} bytes")
                    return None
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                target = head.target.decode("latin-1").split("?", 1)[0]
                headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in head.headers}
                return HttpRequest(head.method.decode("latin-1"), target, headers, b"".join(chunks), peer)

    async def _refuse(self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int, message: str) -> None:
        body = b'{"status":"error","code":%d,"message":"%s"}' % (status, message.replace('"', "'").encode())
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            with contextlib.suppress(h11.LocalProtocolError, ConnectionError):
                await self._send(conn, writer, HttpResponse(status, body), close=True)

    @staticmethod
    async def _send(
        conn: h11.Connection, writer: asyncio.StreamWriter, response: HttpResponse, close: bool = False
    ) -> None:
        headers = [
            ("content-type", response.content_type),
            ("content-length", str(len(response.body))),
            *response.headers,
        ]
        if close:
            headers.append(("connection", "close"))
        data = conn.send(h11.Response(status_code=response.status, headers=headers))
        data += conn.send(h11.Data(data=response.body)) if response.body else b""
        data += conn.send(h11.EndOfMessage())
        writer.write(data)
        await writer.drain()


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _answer(status: int, message: str) -> HttpResponse:
    kind = "success" if status < 300 else "error"
    body = b'{"status":"%s","code":%d,"message":"%s"}' % (kind.encode(), status, message.replace('"', "'").encode())
    return HttpResponse(status, body)


class WebhookReceiver:
    """Checks, de-duplicates and hands over webhook deliveries (see the module docstring).

    ``on_event`` runs synchronously for each new event and may raise: the delivery is then answered
    500 and its id is not remembered, so the broker's retry applies it.
    """

    def __init__(
        self,
        secrets: Iterable[bytes],
        clock: Clock,
        on_event: Callable[[WebhookEvent], None],
        *,
        path: str,
        tolerance_s: int = 300,
        remember: int = 100_000,
        venue: str = "optimus",
    ) -> None:
        self._secrets = tuple(secrets)
        self.clock = clock
        self.on_event = on_event
        self.path = path
        self.tolerance_s = tolerance_s
        self.remember = remember
        self.venue = venue
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.counts: Counter[str] = Counter()

    def _complain(self, kind: str, message: str, *args: object) -> None:
        """Count one bad delivery and log it: the first few in full, then one in ``LOG_EVERY``."""
        self.counts[kind] += 1
        n = self.counts[kind]
        if n <= LOG_FIRST or n % LOG_EVERY == 0:
            log.error("optimus %s webhook %s (#%d): " + message, self.venue, kind, n, *args)

    async def handle(self, request: HttpRequest) -> HttpResponse:
        self.counts["received"] += 1
        if request.path != self.path:
            self._complain("wrong_path", "%s %s from %s", request.method, request.path, request.peer)
            return _answer(404, "not found")
        if request.method != "POST":
            self._complain("wrong_method", "%s from %s", request.method, request.peer)
            return _answer(405, "POST only")
        body = request.body
        try:
            verify_webhook(
                self._secrets, request.headers.get(SIGNATURE_HEADER.lower()), body, self.clock.now_ns(),
                self.tolerance_s,
            )
        except SignatureError as exc:
            self._complain("bad_signature", "%s; from %s, %d bytes, not applied", exc, request.peer, len(body))
            return _answer(401, "bad signature")
        try:
            event = decode_webhook(body)
        except CodecError as exc:
            self._complain("malformed", "%s; sample %r", exc, body[:200])
            return _answer(400, f"malformed event: {exc}")
        if event.event_id in self._seen:
            self.counts["duplicate"] += 1
            log.debug("optimus %s webhook %s %s seen before: dropped", self.venue, event.event, event.event_id)
            return _answer(200, "duplicate")
        try:
            self.on_event(event)
        except CodecError as exc:
            self._complain("malformed", "%s %s: %s; sample %r", event.event, event.event_id, exc, body[:200])
            return _answer(400, f"malformed event data: {exc}")
        except Exception:
            self.counts["failed"] += 1
            log.exception("optimus %s webhook %s %s: handling failed; the broker's retry will bring it again",
                          self.venue, event.event, event.event_id)
            return _answer(500, "handling failed")
        self._seen[event.event_id] = None
        if len(self._seen) > self.remember:
            self._seen.popitem(last=False)
        self.counts["applied"] += 1
        return _answer(200, "ok")
