"""PSX Live Feed adapter: market data over one WebSocket, decoded by :mod:`adapters.psx_feed.codec`.

Market data only (a :class:`engine.venue.MarketDataAdapter`: it has no order methods at all). Orders
for the same exchange go through the execution adapter (Optimus).

What it does about the document's warnings (``shared/seeds/002_ad1dca0bc7545d13.txt``):

- "Only 2 concurrent connections are allowed per authentication token": one socket per adapter,
  at most ``max_connections`` per token in this process (default 1, never above 2), and a reconnect
  closes the old socket before it opens a new one (PSX-3).
- "Implement exponential backoff reconnection logic": full reconnect with exponential backoff and
  jitter, then a resubscribe, so every book starts again from a fresh snapshot.
- "Validate all incoming messages and handle partial data gracefully": a message that cannot be
  used (not JSON, too deep, a number out of bounds, a binary frame, any exception while decoding
  it) is dropped, counted by kind and logged rate-limited through :class:`engine.venue.badinput.BadInput`
  (``bad_input()``); the connection stays up. A dropped message cannot leave a wrong book: it
  changed no decoder state, so if it carried a ``seq`` the next message shows the gap and every
  book is re-snapshotted. A message over ``max_message_bytes`` is not read at all: websockets
  closes with 1009, counted ``too_large``, and the adapter reconnects with backoff.
- No usable message for ``stale_seconds`` -> venue status ``stale`` (strategies hear it through
  ``on_venue_status``); data again -> ``connected``. No traffic for ``stale_reconnect_seconds``
  -> reconnect (PSX-5).

Liveness timers (backoff, staleness, keepalive) run on the event loop's monotonic clock: they
measure the network, which runs in real time even when a sandbox day runs on a faster
:class:`~engine.clock.ScaledClock`. Event timestamps come from the engine's clock.

The token is read from an environment variable or a file at every connection attempt (a rotated
token file is picked up on the next reconnect). It never appears in config, logs, ``describe()``
or error messages.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any, ClassVar
from urllib.parse import urlsplit

import anyio
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from adapters.kit.backoff import Backoff
from adapters.kit.credentials import MissingSecret, read_secret
from adapters.kit.urls import is_loopback
from adapters.kit.wsclient import WsClient
from adapters.psx_feed.codec import (
    ACCESS_LEVELS,
    AUTH_HEADER,
    MAX_CONNECTIONS_PER_TOKEN,
    FeedDecoder,
    FeedError,
    Gap,
    IndexValue,
    L3Order,
    MarketStatus,
    OrderTable,
    RestingOrder,
    Subscribed,
    Welcome,
    encode_subscribe,
    feed_url,
    with_token_query,
)
from adapters.psx_feed.options import LiveFeedOptions
from engine.model import BookUpdate, InstrumentStatus, Phase, SessionState, Trade
from engine.venue import AdapterOptions, MarketDataAdapter, RedactingFilter
from engine.venue.badinput import BINARY, TOO_LARGE, BadInput, kind_of, sample_of

__all__ = [
    "Backoff",
    "ConnectionCapError",
    "FeedAuthError",
    "FeedConnectError",
    "LiveFeedAdapter",
    "LiveFeedOptions",
]

log = logging.getLogger("engine.psx_feed")


#: the token's names in a URL's query (PSX-2: "passed as query parameter or header")
TOKEN_KEYS = ("token", "access_token")
#: websockets logs the handshake at DEBUG: the Authorization header and the request line (which
#: carries a query-parameter token); the engine's one credential filter masks both
REDACT = RedactingFilter(keys=TOKEN_KEYS)

#: the websockets library logs through this one, never with a credential in it
wire_log = logging.getLogger("engine.psx_feed.wire")
wire_log.addFilter(REDACT)

#: market states (PSX-1) in which silence is expected and not "stale"
_QUIET_MARKET_STATES = frozenset({"CLOSED"})


# --------------------------------------------------------------------------------------------
# Errors


class FeedConnectError(ConnectionError):
    """A connection attempt failed. The message says why and never contains the token."""


class FeedAuthError(FeedConnectError):
    """The token is missing or unreadable, or the server refused it (HTTP 401/403)."""


class ConnectionCapError(FeedConnectError):
    """Opening a connection would exceed the per-token limit (ours or the server's HTTP 429)."""


# --------------------------------------------------------------------------------------------
# Options


# --------------------------------------------------------------------------------------------
# The per-token connection count (Backoff lives in engine.venue: every network adapter uses it)




#: open connections per token in this process, keyed by a digest (the token itself is not kept)
_OPEN: Counter[str] = Counter()


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _give_back(key: str) -> None:
    _OPEN[key] -= 1
    if _OPEN[key] <= 0:
        del _OPEN[key]


# --------------------------------------------------------------------------------------------
# The adapter


class LiveFeedAdapter(MarketDataAdapter):
    """PSX Live Feed market data: ticks, L2 book and (L2 access) order details, over one socket
    kept alive through drops, gaps and token rotation."""

    name: ClassVar[str] = "psx_feed"
    options_model: ClassVar[type[AdapterOptions]] = LiveFeedOptions

    def setup(self) -> None:
        options = self.options  # a LiveFeedOptions: Adapter.__init__ validates it against options_model
        self.feed_options = options
        self.url = feed_url(options.base(), options.access)  # never carries the token
        self.level = ACCESS_LEVELS[options.access]
        self._decoder = FeedDecoder(self.venue, self.level)
        #: the socket, its liveness (ping/pong), reconnects with backoff, the subscription intent
        #: (symbols) and the connection epoch: the kit's one client
        self._client = WsClient(
            f"psx_feed venue {self.venue}", self._open, self._on_data,
            spawn=self.start_task,
            backoff=Backoff(float(options.backoff_base_s), float(options.backoff_max_s), random.Random(self.seed)),
            ping_interval_s=float(options.ping_interval_s), ping_timeout_s=float(options.ping_timeout_s),
            on_intent=self._subscribe_on, on_lost=self._lost, on_reconnected=self._reconnected,
            on_retry_failed=self._retry_failed, close_reason=self._closed_why, retry_on=(FeedConnectError,),
        )
        self._slot: str | None = None  # token key of the connection we hold
        self._token: str = ""  # the token of the open connection, only to scrub it from texts
        self._stop: anyio.Event | None = None  # ends the staleness watchdog of one connect()
        self._resync_pending = False
        self._market_state: str | None = None
        self._phase: Phase | None = None
        #: what the venue sent that could not be used: counted by kind, logged rate-limited
        self._bad = BadInput(log, f"psx_feed venue {self.venue}")
        self._sink_errors_logged = False
        self._deliver_status = getattr(self.sink, "on_instrument_status", None)
        #: "new" | "connected" | "disconnected" | "stale" | "closed": what the sink was last told
        self.status = "new"
        self.stale = False
        self.server_level: str | None = None
        # ---- counters (describe(); the run report's messages_in / messages_out / reconnects)
        self.messages_in = 0
        self.messages_used = 0  # messages that decoded: what staleness watches (garbage is not data)
        self.messages_out = 0
        self.malformed = 0
        self.gaps = 0
        self.stale_events = 0
        self.sink_errors = 0
        self.last_malformed_sample = ""
        self.last_error = ""
        #: latest value per index (the engine model has no index event)
        self.indices: dict[str, IndexValue] = {}
        #: L2 access: the order table per symbol, order_id -> (side, price, remaining qty)
        self._l3 = OrderTable()

    # ---- lifecycle -----------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the socket, subscribe what was asked for, report ``connected``, and start the
        reader and the staleness watchdog. A first connection that fails raises
        :class:`FeedConnectError` (bad token, connection cap, unreachable host): the engine refuses
        to start rather than trade blind; after that, drops are handled by reconnecting."""
        if self._client.ws is not None:
            return
        self._stop = anyio.Event()
        await self._client.connect()
        self._report("connected", f"{self.url} ({self.server_level or self.level})")
        self.start_task(self._watchdog, self._stop, name=f"psx_feed[{self.venue}] watchdog")

    async def close(self) -> None:
        """Close the socket and stop the background tasks. Never raises."""
        if self._stop is not None:
            self._stop.set()
        await self._client.close()
        self._release()
        self.status = "closed"
        self._bad.flush()

    def subscribe(self, symbols: Iterable[str]) -> None:
        """Ask for these symbols; a snapshot of each comes first. Before ``connect`` (or during a
        reconnect) they are sent with the (re)subscribe."""
        self._client.want(symbols)

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._client.intent

    @property
    def reconnects(self) -> int:
        return self._client.reconnects

    @property
    def connect_attempts(self) -> int:
        return self._client.attempts

    @property
    def connected(self) -> bool:
        return self._client.ws is not None

    def on_session(self, state: SessionState) -> None:
        """The engine's session phase: a closed market is quiet, not stale."""
        self._phase = state.phase

    def bad_input(self) -> dict[str, int]:
        """Messages dropped, by kind (engine.venue.badinput), for the report and ``/metrics``."""
        return dict(self._bad.counts)

    def stats(self) -> dict[str, int]:
        """The wire counters for the report (see ``describe`` for the rest)."""
        return {"messages_in": self.messages_in, "messages_out": self.messages_out, "reconnects": self.reconnects,
                "malformed": self.malformed, "gaps": self.gaps, "stale_events": self.stale_events}

    def describe(self) -> dict[str, Any]:
        opts = self.feed_options
        return {
            "name": self.name,
            "venue": self.venue,
            "url": self.url,
            "access": opts.access,
            "level": self.level,
            "server_level": self.server_level,
            "token_source": opts.token_source(),
            "token_in": opts.token_in,
            "max_connections": opts.max_connections,
            "status": self.status,
            "symbols": len(self._client.intent),
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "malformed": self.malformed,
            "reconnects": self.reconnects,
            "connect_attempts": self.connect_attempts,
            "gaps": self.gaps,
            "dropped_deltas": self._decoder.dropped,
            "book_frames_off_shape": self._decoder.refused_shape,  # read the general way (codec.decode)
            "stale_events": self.stale_events,
            "sink_errors": self.sink_errors,
            "last_malformed_sample": self.last_malformed_sample,
            "last_error": self.last_error,
            "connection": self._client.describe(),  # epoch, pings missed, stale frames dropped
        }

    @property
    def l3(self) -> dict[str, dict[str, RestingOrder]]:
        """L2 access: the order table per symbol, order_id -> (side, price, remaining qty)."""
        return self._l3.tables

    @property
    def l3_unknown(self) -> int:
        """modify/execute/delete of an order the table did not hold."""
        return self._l3.unknown

    def l3_orders(self, symbol: str) -> dict[str, RestingOrder]:
        """L2 access: the orders the feed says rest in ``symbol``'s book, by order id."""
        return self._l3.orders(symbol)

    # ---- connection ----------------------------------------------------------------------
    def _read_token(self) -> str:
        opts = self.feed_options
        try:
            return read_secret(opts.token_env, opts.token_file if opts.token_env is None else None, "feed token")
        except MissingSecret as exc:
            raise FeedAuthError(str(exc)) from None

    def _scrub(self, text: str, token: str) -> str:
        return text.replace(token, "***") if token else text

    async def _open(self) -> ClientConnection:
        """One connection attempt (the kit client's opener). The slot in the per-token count is
        taken before the handshake (so two adapters racing cannot both pass the cap) and given back
        if it fails."""
        opts = self.feed_options
        token = self._read_token()
        key = _token_key(token)
        if _OPEN[key] >= opts.max_connections:
            raise ConnectionCapError(
                f"venue {self.venue!r}: another Live Feed connection on this token would exceed max_connections="
                f"{opts.max_connections} ({_OPEN[key]} already open in this process; the document allows "
                f"{MAX_CONNECTIONS_PER_TOKEN} per token)"
            )
        url = self.url
        headers: dict[str, str] = {}
        if opts.token_in == "query":
            url = with_token_query(url, token)
        else:
            headers[AUTH_HEADER] = f"Bearer {token}"
        loopback = is_loopback(urlsplit(url).hostname or "")
        _OPEN[key] += 1
        try:
            ws = await ws_connect(
                url,
                additional_headers=headers,
                open_timeout=float(opts.open_timeout_s),
                ping_interval=None,  # liveness: the kit client's ping/pong (ping_interval_s, ping_timeout_s)
                close_timeout=2,
                max_size=opts.max_message_bytes,
                compression=None,  # market data is small and hot: no deflate CPU per message
                proxy=None if loopback else True,
                logger=wire_log,
            )
        except InvalidStatus as exc:
            _give_back(key)
            raise self._refused(exc.response.status_code, exc.response.body, token) from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            _give_back(key)
            reason = self._scrub(str(exc) or type(exc).__name__, token)
            raise FeedConnectError(f"venue {self.venue!r}: cannot connect to {self.url}: {reason}") from None
        except BaseException:
            _give_back(key)
            raise
        self._slot = key
        self._token = token
        self._decoder.new_connection()
        self._l3.clear()
        return ws

    def _refused(self, status: int, body: bytes | None, token: str) -> FeedConnectError:
        """The server's HTTP answer to the upgrade, as a clear error (PSX-2, PSX-3: the document
        defines no error codes; 401/403 = token, 429 = connection limit are assumed)."""
        text = (body or b"").decode("utf-8", "replace").strip()[:200]
        said = f": {self._scrub(text, token)}" if text else ""
        where = f"venue {self.venue!r} ({self.url})"
        if status in (401, 403):
            return FeedAuthError(
                f"{where}: token refused (HTTP {status}{said}); check the token in "
                f"{self.feed_options.token_source()} and its access level ({self.level})"
            )
        if status == 429:
            return ConnectionCapError(
                f"{where}: the server refused another connection on this token (HTTP 429{said}); the document "
                f"allows {MAX_CONNECTIONS_PER_TOKEN} per token: is another process using it?"
            )
        return FeedConnectError(f"{where}: server refused the connection (HTTP {status}{said})")

    def _release(self) -> None:
        if self._slot is not None:
            _give_back(self._slot)
            self._slot = None
        self._token = ""

    async def _send(self, text: str, epoch: int | None = None) -> None:
        # not sent when the connection is gone: the reconnect resubscribes everything
        if await self._client.send(text, epoch):
            self.messages_out += 1

    def _subscribe_on(self, symbols: list[str], epoch: int) -> Any:
        """The kit client issues the intent: every symbol on a new socket, new ones as asked."""
        self._resync_pending = False
        return self._send(encode_subscribe(symbols), epoch)

    async def _resubscribe(self) -> None:
        """Subscribe every symbol again after a gap (PSX-1: a repeated subscribe re-sends the
        snapshot)."""
        self._resync_pending = False
        await self._client.reissue()

    def _report(self, status: str, detail: str = "") -> None:
        self.status = status
        self.sink.on_venue_status(self.venue, status, detail)

    # ---- connection events (the kit client calls these) ------------------------------------
    def _closed_why(self, exc: ConnectionClosed | None, ws: ClientConnection) -> str:
        if exc is None:
            return self._close_text(ws.close_code, ws.close_reason or "")
        if exc.rcvd is None and exc.sent is not None and exc.sent.code == 1009:
            return self._too_large(exc.sent.reason)
        return self._close_text(exc.rcvd.code if exc.rcvd else None, exc.rcvd.reason if exc.rcvd else "")

    def _too_large(self, reason: str) -> str:
        """websockets refused a message over ``max_message_bytes`` without reading it and closed
        with 1009: counted like any other bad message; the reconnect that follows resnapshots."""
        self.malformed += 1
        limit = self.feed_options.max_message_bytes
        self._bad.record(TOO_LARGE, f"a message over max_message_bytes={limit:,} ({reason}); reconnecting")
        return f"closed by us (code 1009: a message over max_message_bytes={limit:,})"

    def _close_text(self, code: int | None, reason: str) -> str:
        if code is None or code == 1006:
            return "connection lost (no close frame)"
        return self._scrub(f"closed by the server (code {code}{': ' + reason if reason else ''})", self._token)

    def _lost(self, epoch: int, detail: str, unexpected: bool) -> None:
        """The socket ended: its token slot is given back; a loss we did not ask for is reported
        (the kit client reconnects with backoff)."""
        self._release()
        if not unexpected:
            return
        self.stale = False
        self.last_error = detail
        log.warning("psx_feed venue %s: %s; reconnecting with backoff", self.venue, detail)
        self._report("disconnected", detail)

    def _retry_failed(self, exc: BaseException, failures: int) -> None:
        self.last_error = str(exc)
        log.warning("psx_feed venue %s: reconnect attempt %d failed: %s", self.venue, failures, exc)

    def _reconnected(self, epoch: int, failures: int) -> None:
        log.warning("psx_feed venue %s: reconnected after %d failed attempt(s); resubscribed %d symbol(s)",
                    self.venue, failures, len(self._client.intent))
        self._report("connected", f"reconnected after {failures} failed attempt(s)")

    # ---- background tasks ----------------------------------------------------------------
    async def _watchdog(self, stop: anyio.Event) -> None:
        """Stale and dead-feed detection by counting messages that decoded (no per-message clock
        read): a feed sending only frames that cannot be used is as good as silent (PSX-5, the
        feed's own rule; the connection's liveness is the kit client's ping/pong)."""
        client = self._client
        opts = self.feed_options
        stale_s = float(opts.stale_seconds)
        dead_s = float(opts.stale_reconnect_seconds)
        interval = max(0.005, min(stale_s, dead_s or stale_s) / 4)
        seen = -1
        serial = -1
        idle_since = time.monotonic()
        while not stop.is_set():
            with anyio.move_on_after(interval):
                await stop.wait()
            if stop.is_set():
                return
            now = time.monotonic()
            if client.ws is None or client.epoch != serial or self.messages_used != seen or not self._watching():
                serial = client.epoch
                seen = self.messages_used
                idle_since = now
                continue
            idle = now - idle_since
            if not self.stale and idle >= stale_s:
                self.stale = True
                self.stale_events += 1
                log.warning("psx_feed venue %s: no message for %.1f s: stale", self.venue, idle)
                self._report("stale", f"no message for {idle:.1f} s")
            if dead_s and idle >= dead_s:
                log.warning("psx_feed venue %s: no traffic for %.1f s: reconnecting", self.venue, idle)
                client.drop(f"no traffic for {idle:.1f} s", serial)  # the kit client reconnects
                idle_since = now

    def _watching(self) -> bool:
        if self.feed_options.stale_when_closed:
            return True
        if self._market_state is not None:
            return self._market_state not in _QUIET_MARKET_STATES
        return self._phase is None or self._phase is not Phase.CLOSED

    # ---- messages ------------------------------------------------------------------------
    def _on_data(self, data: str | bytes, epoch: int = 0) -> None:
        """One message: decode, then hand market data to the sink in order (the hot path)."""
        self.messages_in += 1
        try:
            events = self._decoder.decode(data, self.clock.now_ns())
        except Exception as exc:  # any failure is this message's alone (never a cancellation: BaseException)
            self._dropped(data, exc)
            return  # not data: a feed sending only garbage goes stale, then is reconnected
        self.messages_used += 1
        if self.stale:
            self.stale = False
            self._report("connected", "data flowing again")
        sink = self.sink
        try:
            for event in events:
                kind = type(event)
                if kind is BookUpdate:
                    if event.snapshot and self.level == "L2":
                        self._l3.reset(event.symbol)
                    sink.on_book(event)
                elif kind is Trade:
                    sink.on_trade(event)
                elif kind is InstrumentStatus:
                    if self._deliver_status is not None:
                        self._deliver_status(event)
                elif kind is L3Order:
                    self._l3.apply(event)
                else:
                    self._protocol_event(event)
        except Exception:
            self.sink_errors += 1
            if not self._sink_errors_logged:
                self._sink_errors_logged = True
                log.exception("psx_feed venue %s: the engine raised on a market data event (counted; logged once)",
                              self.venue)
        self._client.healthy()

    def _dropped(self, data: str | bytes, exc: Exception) -> None:
        """A message the decoder could not read: counted by kind, logged rate-limited, skipped. The
        decoder changed no state for it, so a lost ``seq`` shows as a gap on the next message."""
        self.malformed += 1
        kind = BINARY if type(data) is not str else kind_of(exc)
        sample = self._scrub(sample_of(data), self._token)
        self.last_malformed_sample = sample
        reason = self._scrub(str(exc)[:200] or type(exc).__name__, self._token)
        self._bad.record(kind, f"{type(exc).__name__}: {reason}", sample)

    def _protocol_event(self, event: Any) -> None:
        kind = type(event)
        if kind is Gap:
            self.gaps += 1
            log.warning("psx_feed venue %s: sequence gap (expected seq %d, got %d): asking for fresh snapshots",
                        self.venue, event.expected, event.received)
            if not self._resync_pending:
                self._resync_pending = True
                self.start_task(self._resubscribe)
        elif kind is MarketStatus:
            self._market_state = event.state
        elif kind is IndexValue:
            self.indices[event.symbol] = event
        elif kind is Welcome:
            self.server_level = event.level
            if event.level != self.level:
                log.warning("psx_feed venue %s: server grants access level %s, configured %s", self.venue,
                            event.level, self.level)
        elif kind is FeedError:
            log.warning("psx_feed venue %s: server error %s: %s%s", self.venue, event.code, event.message,
                        f" ({', '.join(event.symbols)})" if event.symbols else "")
        elif kind is Subscribed:
            log.debug("psx_feed venue %s: subscribed %s", self.venue, ", ".join(event.symbols))
