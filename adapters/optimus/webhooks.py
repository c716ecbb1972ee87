"""Receiving Optimus webhooks: a small HTTP/1.1 server and the checks every delivery passes.

The broker pushes order and account events to ``POST /webhook/visionmax`` (document "Webhook
Notifications"). The document is silent on authentication, retries and de-duplication (OPT-5), so
the receiver:

1. refuses a body over ``max_body`` bytes (413), a head over 64 KiB (431), a request not complete
   within ``read_timeout_s`` (408) and anything but ``POST`` on the path (405/404);
2. checks the HMAC signature header (:func:`adapters.optimus.codec.verify_webhook`): a missing,
   malformed, wrong or stale signature is answered 401 and the event is not applied;
3. decodes the event: a malformed one (not JSON, wrong types, huge numbers, deep nesting) is
   answered 400;
4. drops an ``event_id`` it has already applied (:class:`SeenDeliveries`, durable across restarts
   when the adapter has a state path), answered 200 so the broker stops retrying: a retry is
   normal at-least-once delivery (OPT-5) and a replay gains nothing either way;
5. remembers the id, then hands the event to the adapter; an event whose handling failed is
   forgotten again and answered 500 (400 for bad data), so the broker's retry applies it.

Every refusal is counted and logged rate-limited through one :class:`engine.venue.badinput.BadInput`
(a flood of bad requests costs a few log lines, never a traceback each).

The server is transport only (h11 over asyncio streams, keep-alive, Content-Length bodies); the
sandbox serves its REST API with the same class.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import h11

from adapters.optimus.codec import (
    SIGNATURE_HEADER,
    CodecError,
    SignatureError,
    WebhookEvent,
    decode_webhook,
    verify_webhook,
)
from adapters.optimus.deliveries import SeenDeliveries
from engine.venue.badinput import MALFORMED, REPLAYED, TOO_DEEP, TOO_LARGE, BadInput, sample_of
from engine.venue.clock import NS_PER_S, Clock

__all__ = ["HttpRequest", "HttpResponse", "HttpServer", "WebhookReceiver", "parse_listen"]

log = logging.getLogger("engine.optimus")


READ_CHUNK = 65536
MAX_HEAD = 64 * 1024  # request line + headers; h11 answers 431 past it
#: an event id longer than this is not one the broker made (and would bloat the id memory)
MAX_EVENT_ID = 128


@dataclass(slots=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes
    peer: str
    #: the query string after ``?`` (empty when none): a GET listing's filters (Algo724, ALG-2)
    query: str = ""


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
    sandbox injects); ``close`` stops listening and drops what is left.

    Facing the internet (the webhook receiver) it also takes ``read_timeout_s``, the time a
    request may take to arrive whole (a slowloris connection is answered 408 and closed; an idle
    keep-alive one just closed), ``max_connections`` open at once (more are closed at accept),
    and ``bad_input`` to count what it refuses. Each connection is its own task, so a slow one
    never holds up another's delivery."""

    def __init__(
        self, handler: Handler, host: str, port: int, *, max_body: int = 1 << 20, name: str = "http",
        read_timeout_s: float | None = None, max_connections: int | None = None, bad_input: BadInput | None = None,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.max_body = max_body
        self.name = name
        self.read_timeout_s = read_timeout_s
        self.max_connections = max_connections
        self.bad_input = bad_input
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

    def _bad(self, kind: str, reason: str) -> None:
        if self.bad_input is not None:
            self.bad_input.record(kind, f"{self.name}: {reason}")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.max_connections is not None and len(self._writers) >= self.max_connections:
            self._bad(TOO_LARGE, f"over {self.max_connections} connections open: one refused at accept")
            writer.transport.abort()
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        peer_info = writer.get_extra_info("peername")
        peer = str(peer_info[0]) if isinstance(peer_info, tuple) else "unknown"
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
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
        """The next whole request, or None when the connection is to end (closed, refused, or not
        complete within ``read_timeout_s``: the deadline covers the whole request, so trickling
        one byte at a time does not extend it)."""
        deadline = None if self.read_timeout_s is None else asyncio.get_running_loop().time() + self.read_timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                return await self._next_request(conn, reader, writer, peer)
        except TimeoutError:
            if conn.their_state is not h11.IDLE or conn.trailing_data[0]:  # something came: a slow sender
                self._bad(MALFORMED, f"request from {peer} not complete within {self.read_timeout_s} s")
                await self._refuse(conn, writer, 408, "request not complete in time")
            return None  # else an idle keep-alive connection: closed without a word

    async def _next_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> HttpRequest | None:
        head: h11.Request | None = None
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint
                self._bad(TOO_LARGE if status == 431 else MALFORMED, f"bad HTTP from {peer}: {exc}")
                await self._refuse(conn, writer, status, f"bad request: {exc}")
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
                    self._bad(TOO_LARGE, f"{peer} announced {sample_of(length, 24)} bytes (limit {self.max_body})")
                    await self._refuse(conn, writer, 413, f"body over {self.max_body} bytes")
                    return None
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > self.max_body:
                    self._bad(TOO_LARGE, f"{peer} sent a body over {self.max_body} bytes")
                    await self._refuse(conn, writer, 413, f"body over {self.max_body} bytes")
                    return None
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                target, _, query = head.target.decode("latin-1").partition("?")
                headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in head.headers}
                return HttpRequest(head.method.decode("latin-1"), target, headers, b"".join(chunks), peer, query)

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

    ``on_event`` runs synchronously for each new event and may raise: :class:`CodecError` for
    bad data (answered 400), anything else for a failure of ours (answered 500); either way the
    id is forgotten, so the broker's retry applies it. ``counts`` tallies every outcome
    (``received``, ``applied``, ``duplicate``, ``failed`` and each refused kind); ``bad_input``
    counts and logs the refusals (the adapter shares its own so one place reports them).
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
        bad_input: BadInput | None = None,
    ) -> None:
        self._secrets = tuple(secrets)
        self.clock = clock
        self.on_event = on_event
        self.path = path
        self.tolerance_s = tolerance_s
        self.venue = venue
        self.seen = SeenDeliveries(2 * tolerance_s * NS_PER_S, remember)
        self.counts: Counter[str] = Counter()
        self.bad_input = bad_input if bad_input is not None else BadInput(log, f"optimus {venue} webhooks")

    def open_store(self, path: Path | None) -> None:
        """Keep applied delivery ids in ``path`` across restarts (None: in the process only)."""
        if path is None:
            log.warning("optimus %s: no state path (journal disabled): webhook delivery ids are kept in the "
                        "process only, so a delivery replayed after a restart (inside the %d s signature window) "
                        "is not caught", self.venue, self.tolerance_s)
            return
        self.seen.open(path, self.clock.now_ns())
        log.info("optimus %s: webhook delivery ids kept in %s for %d s (%d loaded)", self.venue, path,
                 2 * self.tolerance_s, len(self.seen))

    def close(self) -> None:
        self.seen.close()
        self.bad_input.flush()

    def _refuse(
        self, status: int, kind: str, reason: str, request: HttpRequest, outcome: str | None = None
    ) -> HttpResponse:
        """Count (as ``outcome``, default ``kind``), log rate-limited and answer one delivery we
        will not apply."""
        self.counts[outcome or kind] += 1
        self.bad_input.record(kind, f"webhook from {request.peer} ({len(request.body):,} bytes): {reason}",
                              sample_of(request.body))
        return _answer(status, f"{kind}: {sample_of(reason)}")

    async def handle(self, request: HttpRequest) -> HttpResponse:
        self.counts["received"] += 1
        if request.path != self.path:
            return self._refuse(404, MALFORMED, f"{request.method} {sample_of(request.path, 80)}: wrong path", request,
                                "wrong_path")
        if request.method != "POST":
            return self._refuse(405, MALFORMED, f"{sample_of(request.method, 20)}: POST only", request, "wrong_method")
        body = request.body
        try:
            verify_webhook(
                self._secrets, request.headers.get(SIGNATURE_HEADER.lower()), body, self.clock.now_ns(),
                self.tolerance_s,
            )
        except SignatureError as exc:
            return self._refuse(401, exc.kind, f"{exc}; not applied", request)
        try:
            event = decode_webhook(body, self.clock.now_ns())
        except CodecError as exc:
            return self._refuse(400, getattr(exc, "kind", MALFORMED), str(exc), request)
        except RecursionError:  # until the codec bounds nesting itself
            return self._refuse(400, TOO_DEEP, "nested too deep", request)
        except Exception as exc:  # the codec should raise only CodecError; bad bytes are still only bad bytes
            return self._refuse(400, MALFORMED, f"undecodable: {type(exc).__name__}", request)
        if len(event.event_id) > MAX_EVENT_ID:
            return self._refuse(400, MALFORMED, f"event_id over {MAX_EVENT_ID} characters", request)
        if event.event_id in self.seen:
            self.counts["duplicate"] += 1
            self.bad_input.record(REPLAYED, f"{event.event} {sample_of(event.event_id, 80)} applied before: dropped")
            return _answer(200, "duplicate")
        self.seen.add(event.event_id, self.clock.now_ns())  # durable before applying: see deliveries.py
        try:
            self.on_event(event)
        except CodecError as exc:
            self.seen.discard(event.event_id)
            return self._refuse(400, getattr(exc, "kind", MALFORMED), f"{event.event} data: {exc}", request)
        except Exception:
            self.seen.discard(event.event_id)
            self.counts["failed"] += 1
            log.exception("optimus %s webhook %s %s: handling failed; the broker's retry will bring it again",
                          self.venue, event.event, event.event_id)
            return _answer(500, "handling failed")
        self.counts["applied"] += 1
        return _answer(200, "ok")
