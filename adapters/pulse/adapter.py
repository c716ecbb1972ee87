"""The Pulse venue adapter: one WebSocket to ``/ws/api/v2`` speaking JSON-RPC 2.0.

The wire format lives in :mod:`adapters.pulse.codec` and the session's protocol state (request ids
and pending requests, book change-id continuity, de-duplication) in :mod:`adapters.pulse.protocol`,
both sans-I/O; the socket (liveness by WebSocket ping/pong, reconnect with backoff, subscription
intent, connection epochs) is the kit's :class:`adapters.kit.wsclient.WsClient`. This module is the
transport around them and the mapping to the engine:

- one connection, a writer task draining an outbound queue (requests leave in the order the runtime
  made them), a reader task, a sweeper that times requests out, a watchdog that probes a silent
  venue with a documented request, and a token refresher; all run in the engine's task group
  (``bind``/``start_task``);
- a callback per request id, so ``submit``/``cancel``/``amend`` never create a task on the order
  path; error answers become rejects with the engine's codes (codec.PULSE_ERRORS, one table);
- authentication (``client_credentials`` or ``client_signature``; ``refresh_token`` before expiry),
  ``public/set_heartbeat`` and answers to the venue's test requests, venue-native
  cancel-on-disconnect (enabled and checked at login), venue-native MMP (``set_mmp_config`` per
  index, ``user.mmp_trigger`` driven into the runtime's MMP path), ``private/logout`` on close;
- market data (``book.*.raw`` with change-id continuity: a gap resubscribes for a fresh snapshot,
  ``quote.*``, ``trades.*.raw``, or when the venue refuses that channel (the document has none,
  PUL-7) ``public/last_trades_by_instrument`` polled from the last ``trade_seq``, each public trade
  delivered once) and the private streams (``user.orders``, ``user.trades``, ``user.changes``,
  ``user.mmp_trigger``, ``heartbeat_trade``), deduplicated so each order state and each fill
  reaches the runtime once whichever stream brings it first;
- the NEW of an order the venue took at another price (a crossing post-only order is repriced
  "just below the spread") carries the venue's price, so the runtime records what really works;
- venue MMP limits come from the engine (``configure_mmp``, before ``connect``) or the options;
- ``stats()`` for the engine's report: frames in and out, reconnects, and every counter;
- a frame that cannot be used (not JSON, too deep, a number out of bounds, binary, any exception
  while decoding or handling it) is dropped, counted by kind and logged rate-limited
  (:class:`engine.venue.badinput.BadInput`, ``bad_input()``); the connection stays up. A book change
  that cannot be read unsyncs its book and resubscribes for a snapshot, as a change-id gap does
  (an unreadable frame whose channel is unknown shows as a gap at the next change). A frame over
  ``max_message_bytes`` is not read: websockets closes with 1009, counted ``too_large``, and the
  adapter reconnects;
- nothing it logs, nor anything websockets logs for its connection (every frame at DEBUG),
  contains the client secret or a token: :mod:`adapters.pulse.wirelog`;
- on a lost connection (socket closed, a WebSocket ping unanswered, or a silent venue that does
  not answer the probe either: no frame for two heartbeat intervals) the runtime hears
  ``disconnected`` at once, pending requests are dropped (their outcome is unknown: the runtime
  reconciles through the ``query_*`` methods once ``connected`` is reported again), and the
  adapter reconnects with backoff.

Transport timers (request timeouts, heartbeats, token refresh, backoff) run on the monotonic clock
(``time.monotonic``, what the event loop's timers use), not on the engine clock: they measure the
socket and the venue's real clock, which do not speed up with a scaled sandbox day. Order, fill and
book events carry the engine clock's time of receipt, because the engine's MMP windows and freezes
compare them with that clock.
"""

from __future__ import annotations

import math
import random
import secrets as _secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import partial
from typing import Any, ClassVar

import anyio
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from adapters.kit.backoff import Backoff
from adapters.kit.credentials import MissingSecret, read_secret
from adapters.kit.orders import OrderTracker, TrackedOrder
from adapters.kit.pacing import (
    ORDER_LANES,
    LaneSpec,
    Outbox,
    PacerClosed,
    WirePacer,
    Withdrawable,
    write_unless_withdrawn,
)
from adapters.kit.tasks import StoppableTasks
from adapters.kit.wsclient import WsClient
from adapters.pulse import codec
from adapters.pulse.codec import (
    BookMsg,
    CodecError,
    Heartbeat,
    Notification,
    PulseOrder,
    PulseTrade,
    RpcError,
)
from adapters.pulse.options import PulseMmp, PulseOptions
from adapters.pulse.protocol import APPLY, DUPLICATE, GAP, UNKNOWN, Answer, Pending, PulseProtocol
from adapters.pulse.wirelog import REDACT, adapter_log, wire_log
from engine.model import (
    BookUpdate,
    Fill,
    InstrumentStatus,
    Order,
    OrderStatus,
    Side,
    Trade,
    VenueAccount,
    VenueOrder,
)
from engine.venue import Adapter, AdapterOptions, Capabilities, RateLimit
from engine.venue.badinput import BINARY, MALFORMED, TOO_LARGE, BadInput, kind_of, sample_of
from engine.venue.rejects import Reject

__all__ = ["ConnectionLost", "PulseAdapter", "PulseError", "PulseMmp", "PulseOptions"]

log = adapter_log  # "engine.pulse"; with wire_log ("engine.pulse.wire") filtered by wirelog.REDACT

#: departure lanes, cancels first. The assumed limit (VENUES.md 5.14) is per connection and counts
#: every request: orders spend "orders" (matching-engine methods) and "all"; cancels "all" with its
#: reserve; everything else (login, refresh, heartbeat answers, subscriptions, queries, logout)
#: "all" without the cancels' reserve, ahead of orders
PACING_LANES: dict[str, LaneSpec] = {
    "cancel": ORDER_LANES["cancel"],
    "control": (("all",), "order"),
    "order": ORDER_LANES["order"],
}
_LANE_OF = {
    "private/buy": "order", "private/sell": "order", "private/edit": "order",
    "private/cancel": "cancel", "private/cancel_all": "cancel", "private/cancel_all_by_instrument": "cancel",
}


class _Frame(Withdrawable):
    """A request waiting for its departure: ``unsent(why)`` tells the engine when it never left;
    a cancel may take it back until its write begins (:meth:`PulseAdapter._take_back`)."""

    __slots__ = ("gen", "req_id", "text", "unsent", "lane", "ahead")

    def __init__(self, gen: int, req_id: int, text: str, unsent: Callable[[str], None] | None, lane: str,
                 ahead: bool = False) -> None:
        super().__init__()
        self.gen = gen
        self.req_id = req_id
        self.text = text
        self.unsent = unsent
        self.lane = lane
        self.ahead = ahead  # one order's cancel: may be written ahead of what departed before it

NS_PER_S = 1_000_000_000
GAP_LOGS = 5
#: levels per side asked of private/get_order_book when a book's snapshot is overdue
BOOK_FETCH_DEPTH = 1000
TRACK_KEEP_S = 600.0  # finished orders stay known this long (late answers, cancels, queries)
TRADE_POLL_COUNT = 100  # trades asked per public/last_trades_by_instrument poll
USER_TRADES_PAGE = 100  # trades asked per private/get_user_trades_by_instrument page
#: pages asked per instrument in one query_fills (5,000 trades): a bound on a reconciliation that
#: reaches far back; the rest is logged and left to the per-order query of the orders we track
USER_TRADES_MAX_PAGES = 50
POLL_ERROR_LOGS = 5
#: the documented request (004, no parameters) that asks a silent venue whether its session lives
LIVENESS_PROBE = "private/get_cancel_on_disconnect"


class PulseError(Exception):
    """A JSON-RPC error answer."""

    def __init__(self, method: str, error: RpcError) -> None:
        super().__init__(f"{method}: {codec.describe_error(error)}")
        self.method = method
        self.error = error
        self.code = error.code
        self.reject_code = codec.reject_code(error.code)


class ConnectionLost(ConnectionError):
    """The connection went away before the answer came: the outcome is unknown."""


class _Track(TrackedOrder):
    """One of our orders: what the engine was told (:class:`adapters.kit.orders.TrackedOrder`) and
    the requests this adapter still owes it (a cancel waiting for the venue's order id, an edit)."""

    __slots__ = ("post_only", "cancel_wanted", "pending_edit", "touched", "waiting_frame", "edit_frame")

    def __init__(self, order: Order, now: float) -> None:
        super().__init__(order.client_id, order.symbol, order.side, order.qty, order.price)
        self.post_only = order.post_only
        self.cancel_wanted = False
        self.pending_edit: tuple[Decimal | None, Decimal] | None = None
        self.touched = now  # time.monotonic() of the venue's last word on it
        self.waiting_frame: _Frame | None = None  # its buy/sell while queued (taken back by a cancel before it left)
        self.edit_frame: _Frame | None = None  # its edit until answered (a cancel takes it back if still queued)


class _TradePoll:
    """Polling ``public/last_trades_by_instrument`` for one instrument whose ``trades.*.raw``
    the venue refused (PUL-7). The first answer is the baseline (trades before it are history,
    as a channel would not replay them either); then each poll asks from the next ``trade_seq``."""

    __slots__ = ("symbol", "last_seq", "primed", "in_flight")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.last_seq: int | None = None
        self.primed = False
        self.in_flight = False


class PulseAdapter(Adapter):
    """Pulse API v2 over one WebSocket (shared/seeds/004_df0ce6c3f341e5af.txt, VENUES.md section 5)."""

    name: ClassVar[str] = "pulse"
    capabilities: ClassVar[Capabilities] = Capabilities(
        amend=True,  # private/edit keeps the order_id
        mass_cancel=True,  # private/cancel_all, private/cancel_all_by_instrument
        post_only="reprice",  # the venue reprices; reject mode is the adapter's local refusal (option post_only)
        ioc=True,
        fok=True,
        gtc=True,
        market_orders=True,
        mmp=True,
        cancel_on_disconnect=True,
        self_trade_prevention=False,  # undocumented (VENUES.md 6.9)
    )
    # PUL-11: no limits are documented; VENUES.md 5.14's assumption (the sandbox's own figures)
    rate_limits: ClassVar[tuple[RateLimit, ...]] = (
        RateLimit("all", 20, Decimal(1), 20, source="VENUES.md 5.14 assumption (PUL-11): 20 requests/s per connection"),
        RateLimit("orders", 5, Decimal(1), 20,
                  source="VENUES.md 5.14 assumption (PUL-11): matching-engine methods 5/s, burst 20"),
    )
    options_model: ClassVar[type[AdapterOptions]] = PulseOptions
    #: ``module:function`` of the local sandbox server (argv -> exit code), for ``engine sandbox pulse``

    def setup(self) -> None:
        options = self.options  # a PulseOptions: Adapter.__init__ validates it against options_model
        self.pulse_options = options
        try:  # a credential that is not there is a config error at start, not a failed login later
            self._client_id()
            self._secret()
        except ConnectionError as exc:
            raise ValueError(str(exc)) from None
        self._timeout = float(options.request_timeout_s)
        #: silence (seconds) after which the watchdog probes the venue
        self._heartbeat_s = float(options.liveness_probe_s or options.heartbeat_s)
        self._book_resync_s = float(options.book_resync_s)
        #: symbol -> time.monotonic() by which its book's snapshot is due (else it is fetched)
        self._snapshot_due: dict[str, float] = {}
        self._index = {s: options.index_names.get(s) or codec.index_name_for(s) for s in self.instruments}
        self._currency = {s: options.currencies.get(s) or codec.currency_for(s) for s in self.instruments}
        #: the socket, its liveness (WebSocket ping/pong), reconnects with backoff, the public
        #: subscription intent (symbols) and the connection epoch: the kit's one client
        #: every loop of this adapter and of its client: under a scope ``close`` cancels
        self._tasks = StoppableTasks(self.start_task)
        self._client = WsClient(
            f"pulse {self.venue}", self._open_socket, self._on_frame,
            spawn=self._tasks.spawn,
            backoff=Backoff(float(options.reconnect_min_s), float(options.reconnect_max_s), random.Random(self.seed)),
            ping_interval_s=float(options.ping_interval_s), ping_timeout_s=float(options.ping_timeout_s),
            close_timeout_s=self._timeout, on_up=self._on_up, on_intent=self._on_intent,
            on_lost=self._connection_lost, on_reconnected=self._reconnected, on_retry_failed=self._retry_failed,
            close_reason=self._closed_why,
        )
        self._closing = False
        #: request ids and pending requests, book change-id continuity, public trade de-duplication:
        #: the session's protocol state, sans I/O
        self._protocol = PulseProtocol(self.instruments)
        self._outbox: Outbox[_Frame] = Outbox()  # departed frames on their way to the socket
        self._limits: tuple[RateLimit, ...] = self.rate_limits
        self._pacer = self._new_pacer()
        self._quotes: dict[str, tuple[Decimal | None, Decimal | None]] = {}
        self._trades_channels = {f"trades.{s}.raw": s for s in self.instruments}
        self._trade_polls: dict[str, _TradePoll] = {}
        self._poller_running = False
        self._poll_errors_logged = 0
        self._trading_active: bool | None = None
        self._refresh_token = ""
        self._refresh_at = math.inf
        self._last_recv = 0.0
        self._venue_offset_ns = 0
        self._mmp_configs: dict[str, PulseMmp] = dict(options.mmp)
        self._mmp_strategies: dict[str, set[str]] = {}
        #: what the venue sent that could not be used: counted by kind, logged rate-limited
        self._bad = BadInput(log, f"pulse {self.venue}")
        self._handler_error_logged = False
        self.venue_cod: bool | None = None  # what get_cancel_on_disconnect said at the last login
        self.counters: Counter[str] = Counter()
        # our orders: each state and fill reaches the runtime once, whichever stream brings it first
        self._orders: OrderTracker[_Track] = OrderTracker(
            self.venue, self.sink, self.clock.now_ns, defer=partial(self.clock.call_later, 0), counts=self.counters,
            logger=log)
        self.messages_in = 0  # frames received (answers, notifications, heartbeats, bad frames)
        self.messages_out = 0  # frames sent
        self._handlers: dict[str, Callable[[Any], None]] = {}
        for symbol in self.instruments:
            handlers = self._handlers
            handlers[codec.book_channel(symbol)] = partial(self._on_book, symbol)
            handlers[f"quote.{symbol}"] = self._on_quote
            handlers[f"trades.{symbol}.raw"] = self._on_public_trades
            handlers[f"user.orders.{symbol}.raw"] = self._on_user_orders
            handlers[f"user.trades.{symbol}.raw"] = self._on_user_trades
            handlers[f"user.changes.{symbol}.raw"] = self._on_user_changes
        for index in set(self._index.values()):
            self._handlers[f"user.mmp_trigger.{index}"] = self._on_mmp_trigger
        self._handlers["heartbeat_trade"] = self._on_heartbeat_trade

    def set_rate_limits(self, limits: tuple[RateLimit, ...]) -> tuple[RateLimit, ...]:
        """Pace every frame at departure with the engine's effective limits, and give the gate the
        limits frames really leave at."""
        self._limits = tuple(limits)
        self._pacer.set_limits(self._limits)
        return self._pacer.departure_limits

    def _new_pacer(self) -> WirePacer:
        return WirePacer(self.venue, self._limits, PACING_LANES, self.clock, on_depart=self._depart)

    def _depart(self, lane: str, frame: _Frame) -> None:
        """The pacer let ``frame`` go: to the writer, and its answer deadline starts now (a request
        that waited for room must not time out, and be resolved as lost, before it was sent)."""
        self._protocol.departed(frame.req_id, time.monotonic() + self._timeout)
        # a private/cancel names an order id, so its order was written: it may go ahead (Outbox);
        # cancel_all names none and keeps departure order
        self._outbox.put(lane, frame, ahead=frame.ahead)

    def _unsent(self, waiting: list[tuple[str, _Frame]], why: str) -> None:
        """Frames the pacer still held (at close, or when their connection went) never left: each
        sender hears "not sent" (an order rejected, a cancel or edit refused with the order still
        live), not "lost" (which would leave a new order unknown until reconciliation)."""
        for _, frame in waiting:
            pending = self._protocol.withdraw(frame.req_id)
            if frame.unsent is not None:
                frame.unsent(why)
            elif pending is not None and pending.context is not None:
                pending.context(None, ConnectionLost(f"not sent: {why}"))

    # ---- lifecycle -----------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the socket, log in, start the background loops, report ``connected``. Raises a
        ConnectionError naming the URL (and the venue's answer) when the first login fails."""
        self._closing = False
        if self._pacer.closed:
            self._pacer = self._new_pacer()
        # the loops first: the login's own requests go through the writer and the sweeper
        self._tasks.spawn(self._writer, name=f"pulse-writer-{self.venue}")
        self._tasks.spawn(self._sweeper, name=f"pulse-sweeper-{self.venue}")
        self._tasks.spawn(self._watchdog, name=f"pulse-watchdog-{self.venue}")
        self._tasks.spawn(self._refresher, name=f"pulse-refresh-{self.venue}")
        await self._tasks.or_cancel(self._client.connect)
        self.sink.on_venue_status(self.venue, "connected")

    @property
    def _ready(self) -> bool:
        """Logged in on the current connection (requests other than the login's may go)."""
        return self._client.up

    async def close(self) -> None:
        """``private/logout`` (graceful: the venue cancels nothing, even with COD on), close the
        socket, stop the loops. Never raises."""
        self._closing = True
        try:
            if self._client.ws is not None and self._ready:
                with anyio.move_on_after(self._timeout):
                    await self._request("private/logout", {"invalidate_token": True})
                    self.counters["logouts"] += 1
                    log.info("pulse %s: logged out", self.venue)
        except Exception as exc:  # closing must not fail: the venue may already be gone
            log.info("pulse %s: logout: %s", self.venue, exc)
        self._unsent(self._pacer.close(),
                     f"venue {self.venue!r}: the adapter closed before the rate limit let it leave")
        await self._client.close()
        self._tasks.cancel()
        self._bad.flush()

    async def _open_socket(self) -> ClientConnection:
        """The kit client's opener: the WebSocket handshake (liveness pings are the client's)."""
        options = self.pulse_options
        try:
            return await websockets.connect(
                options.url, open_timeout=float(options.connect_timeout_s), ping_interval=None,
                compression="deflate" if options.compression else None, max_size=options.max_message_bytes,
                max_queue=None, proxy=None,
                logger=wire_log,  # its DEBUG frame log passes wirelog.REDACT: no secret or token in it
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise ConnectionError(f"pulse {self.venue}: cannot connect to {options.url}: {exc}") from None

    async def _on_up(self, epoch: int) -> None:
        """A new socket is open (its reader runs): log in. A failed login fails this attempt
        (the kit client closes the socket; the first connect raises, a reconnect retries)."""
        self._last_recv = time.monotonic()
        try:
            await self._login()
        except (PulseError, ConnectionLost, TimeoutError, CodecError) as exc:
            raise ConnectionError(f"pulse {self.venue}: login to {self.pulse_options.url} failed: {exc}") from None
        self._client.healthy()  # the venue answered: the next outage backs off from the start

    async def _login(self) -> None:
        options = self.pulse_options
        await self._authenticate()
        await self._request("public/set_heartbeat", {"interval": options.heartbeat_s})  # integer seconds (004)
        if self.cancel_on_disconnect and options.cancel_on_disconnect:
            await self._request("private/enable_cancel_on_disconnect", {})
            state = await self._request("private/get_cancel_on_disconnect", {})
            self.venue_cod = state is True
            if state is not True:
                self.counters["cod_not_confirmed"] += 1
                log.error("pulse %s: cancel-on-disconnect was enabled but the venue reports %r; the engine's "
                          "reconciliation still cancels what was open at a drop", self.venue, state)
        else:
            self.venue_cod = False
        for index, config in self._mmp_configs.items():
            await self._request("private/set_mmp_config", {
                "index_name": index, "interval": config.interval, "frozen_time": config.frozen_time,
                "quantity_limit": config.quantity_limit,
            })
        channels = [c for s in self.instruments for c in
                    (f"user.orders.{s}.raw", f"user.trades.{s}.raw", f"user.changes.{s}.raw")]
        channels += sorted(f"user.mmp_trigger.{i}" for i in set(self._index.values()))
        channels.append("heartbeat_trade")
        accepted = await self._request("private/subscribe", {"channels": channels})
        self._check_subscribed(channels, accepted)
        self._protocol.unsync_books()
        # the resubscribe (the kit client re-issues the intent after this) finds out again whether
        # trades.*.raw exists; a poll restarts from a baseline
        self._trade_polls.clear()

    async def _authenticate(self) -> None:
        options = self.pulse_options
        client_id = self._client_id()
        secret = self._secret()
        if options.auth == "client_signature":
            params = codec.auth_params(
                "client_signature", client_id=client_id, client_secret=secret,
                timestamp_ms=self.clock.now_ns() // 1_000_000, nonce=_secrets.token_hex(8),
            )
        else:
            params = codec.auth_params("client_credentials", client_id=client_id, client_secret=secret)
        self._take_login(await self._request("public/auth", params))
        self.counters["logins"] += 1

    def _take_login(self, result: Any) -> None:
        login = codec.decode_login(result, self.clock.now_ns() // NS_PER_S)
        REDACT.remember(login.access_token, login.refresh_token)
        self._refresh_token = login.refresh_token
        lifetime = float(login.expires_in_s)
        self._refresh_at = time.monotonic() + lifetime * float(self.pulse_options.refresh_fraction)
        log.info("pulse %s: authenticated (%s), token valid %.0f s", self.venue, login.scope or "no scope", lifetime)

    def _client_id(self) -> str:
        options = self.pulse_options
        if options.client_id is not None:
            return options.client_id
        try:
            return read_secret(options.client_id_env, None, f"pulse {self.venue}: client_id")
        except MissingSecret as exc:
            raise ConnectionError(str(exc)) from None

    def _secret(self) -> str:
        """The client secret, read now (a rotated file is picked up at the next login). Errors
        name the variable or file, never a value."""
        options = self.pulse_options
        try:
            value = read_secret(options.client_secret_env, options.client_secret_file,
                                f"pulse {self.venue}: client secret")
        except MissingSecret as exc:
            raise ConnectionError(str(exc)) from None
        REDACT.remember(value)
        return value

    # ---- background loops ----------------------------------------------------------------
    async def _writer(self) -> None:
        """Send queued frames on the connection they were made for, through the pacer's write hold
        (the limits again on the times writes returned: the venue counts arrivals): one order's
        cancels (``private/cancel``) in their order, the rest (mass cancels too) in theirs, the two
        at once (:class:`Outbox`), so such a cancel never waits behind an order the hold keeps."""
        await self._outbox.run(self._write_one)

    async def _write_one(self, lane: str, frame: _Frame) -> None:
        # not sent when taken back, when made for a connection that is gone (its request was
        # already failed) or when the socket closes meanwhile (the reader reports the loss)
        if await write_unless_withdrawn(self._pacer.hold, lane, frame,
                                        partial(self._client.send, frame.text, frame.gen)):
            self.messages_out += 1

    def _on_frame(self, raw: str | bytes, epoch: int) -> None:
        """One frame of the current connection (the kit client drops those of a dead one). Only a
        frame that reads as the venue's protocol is a sign of life for the watchdog: a socket that
        sends nothing but garbage is probed and dropped like a silent one."""
        self.messages_in += 1
        if type(raw) is not str:
            self._bad_frame(raw, BINARY, "a binary frame (the API is JSON text frames)")
            return
        try:
            self._dispatch(raw)
        except Exception as exc:  # this frame's alone; a cancellation (BaseException) still ends the loop
            self._bad_frame(raw, kind_of(exc), f"{type(exc).__name__}: {str(exc)[:200]}", exc)
            return
        self._last_recv = time.monotonic()

    def _closed_why(self, exc: ConnectionClosed | None, ws: ClientConnection) -> str:
        if exc is None:
            return "connection closed by the venue"
        if exc.rcvd is None and exc.sent is not None and exc.sent.code == 1009:
            limit = self.pulse_options.max_message_bytes
            self.counters["bad_frames"] += 1
            self._bad.record(TOO_LARGE, f"a frame over max_message_bytes={limit:,} ({exc.sent.reason}); "
                             "reconnecting")
            return f"closed by us (code 1009: a frame over max_message_bytes={limit:,})"
        return f"connection lost: {exc}"

    async def _sweeper(self) -> None:
        """Time out requests; fetch books whose snapshot is overdue; release terminal states that
        waited for their fills; forget old orders."""
        step = min(0.1, self._timeout / 4)
        while True:
            await anyio.sleep(step)
            now = time.monotonic()
            if self._snapshot_due:
                self._fetch_books(now)
            for pending in self._protocol.expired(now):
                self.counters["timeouts"] += 1
                log.warning("pulse %s: no answer to %s within %.1f s", self.venue, pending.method, self._timeout)
                if pending.context is not None:
                    pending.context(None, TimeoutError(f"no answer to {pending.method} within {self._timeout} s"))
            for track in self._orders.records():
                held = track.held
                if held is not None and now - held.since > self._timeout:
                    log.warning("pulse %s: order %s is %s at the venue but %s of its %s filled never arrived",
                                self.venue, track.client_id, held.status.value, track.cum_qty, held.venue_filled)
                    self._orders.release_held(track, force=True)
                elif track.terminal and now - track.touched > TRACK_KEEP_S:
                    self._orders.release(track)

    async def _watchdog(self) -> None:
        """Is the venue's session alive? After one heartbeat interval without any frame, ask with
        a documented request (``LIVENESS_PROBE``); no frame for another interval after that drops
        the connection. Silence alone never does (issue 20: 004 documents no heartbeat message, so
        a quiet venue that follows it must stay connected); the socket's own liveness is the kit
        client's WebSocket ping/pong."""
        interval = self._heartbeat_s
        probed: tuple[int, float] | None = None  # (epoch, when) of the probe waiting for any frame
        while True:
            await anyio.sleep(min(interval / 4, 1.0))
            if not self._ready:
                probed = None
                continue
            now = time.monotonic()
            epoch = self._client.epoch
            if probed is not None and (probed[0] != epoch or self._last_recv >= probed[1]):
                probed = None  # answered (or another connection): the session lives
            silent = now - self._last_recv
            if silent < interval:
                continue
            if probed is None:
                self.counters["liveness_probes"] += 1
                self._call(LIVENESS_PROBE, {})
                probed = (epoch, now)
            elif now - probed[1] >= interval:
                probed = None
                self.counters["heartbeat_missed"] += 1
                self._drop(f"no frame from the venue for {silent:.1f} s, {LIVENESS_PROBE} unanswered "
                           f"(interval {self._heartbeat_s:g} s)")

    async def _refresher(self) -> None:
        """Refresh the access token at ``refresh_fraction`` of its lifetime; a refused refresh
        falls back to a full login; a failed one drops the connection (reconnect logs in again)."""
        while True:
            wait = self._refresh_at - time.monotonic()
            if wait > 0:
                await anyio.sleep(min(wait, 1.0))
                continue
            if not self._ready:
                await anyio.sleep(0.1)
                continue
            self._refresh_at = math.inf
            try:
                try:
                    result = await self._request("public/auth", codec.auth_params(
                        "refresh_token", refresh_token=self._refresh_token))
                    self._take_login(result)
                    self.counters["token_refreshes"] += 1
                except PulseError as exc:
                    log.warning("pulse %s: token refresh refused (%s); logging in again", self.venue, exc)
                    await self._authenticate()
            except (PulseError, TimeoutError, ConnectionError, CodecError) as exc:
                self.counters["auth_failures"] += 1
                log.error("pulse %s: cannot renew the access token: %s; reconnecting", self.venue, exc)
                self._drop(f"token renewal failed: {exc}")

    def _drop(self, reason: str) -> None:
        """Abandon the connection now (the reader then reports it and the adapter reconnects)."""
        if self._client.drop(reason):
            log.warning("pulse %s: dropping the connection: %s", self.venue, reason)

    def _connection_lost(self, gen: int, reason: str, unexpected: bool) -> None:
        """The connection of epoch ``gen`` ended: its requests are lost (their outcome unknown)
        and every book unsynced; a loss we did not cause is reported (the kit client reconnects).
        Its frames still waiting for the budget never left: they are reported not sent (the writer
        would drop them, their connection gone), and the pacer keeps a newer connection's."""
        waiting = self._pacer.withdraw()
        for lane, frame in waiting:
            if frame.gen != gen:
                self._pacer.put(lane, frame)
        self._unsent([(lane, frame) for lane, frame in waiting if frame.gen == gen],
                     f"connection lost ({reason}) before the rate limit let it leave")
        for pending in self._protocol.lost(gen):
            if pending.context is not None:
                pending.context(None, ConnectionLost(reason))
        if self._closing or not unexpected:
            return
        self.counters["disconnects"] += 1
        log.warning("pulse %s: %s", self.venue, reason)
        self.sink.on_venue_status(self.venue, "disconnected", reason)

    def _retry_failed(self, exc: BaseException, failures: int) -> None:
        log.warning("pulse %s: reconnect failed: %s; trying again with backoff", self.venue, exc)

    def _reconnected(self, epoch: int, failures: int) -> None:
        self.counters["reconnects"] += 1
        log.warning("pulse %s: reconnected", self.venue)
        self.sink.on_venue_status(self.venue, "connected", "reconnected")

    # ---- requests ------------------------------------------------------------------------
    def _call(
        self, method: str, params: dict[str, Any],
        callback: Callable[[Any, BaseException | RpcError | None], None] | None = None,
        unsent: Callable[[str], None] | None = None,
    ) -> _Frame | None:
        """Queue a request; it leaves when the venue's budget has room (cancels first, see
        ``PACING_LANES``). ``callback(result, error)`` runs when it is answered, times out or is
        lost; ``unsent(why)``, when given, instead when the adapter closes before it left.
        Returns the queued frame (for :meth:`_take_back`), None (callback not called) when there
        is no connection."""
        if self._client.ws is None or self._pacer.closed:
            return None
        epoch = self._client.epoch
        # no deadline while it waits for room: the answer's deadline starts at departure (_depart)
        req_id, text = self._protocol.request(method, params, callback, epoch)
        frame = _Frame(epoch, req_id, text, unsent, _LANE_OF.get(method, "control"), ahead=method == "private/cancel")
        try:
            self._pacer.put(frame.lane, frame)
        except PacerClosed:
            self._protocol.withdraw(req_id)
            return None
        return frame

    def _take_back(self, frame: _Frame) -> bool:
        """Keep a queued request from leaving, if it has not begun to be written: still waiting for
        the pacer, or let go and waiting for the writer or the write hold (after a stall). True
        then (its callback and ``unsent`` never run: the caller answers for it), False once the
        writer has it on the socket. What the pacer spent at its departure stays spent."""
        if not self._pacer.take_back_unwritten(frame.lane, frame):
            return False
        self._protocol.withdraw(frame.req_id)  # no answer is awaited (again: a no-op)
        return True

    async def _request(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Send and await the answer; raises PulseError, TimeoutError or ConnectionLost."""
        done = anyio.Event()
        box: list[Any] = []

        def answer(result: Any, error: BaseException | RpcError | None) -> None:
            box.append((result, error))
            done.set()

        if not self._call(method, params or {}, answer):
            raise ConnectionLost(f"{method}: not connected")
        await done.wait()
        result, error = box[0]
        if error is None:
            return result
        if isinstance(error, RpcError):
            raise PulseError(method, error)
        raise error

    # ---- frames in -----------------------------------------------------------------------
    def _dispatch(self, raw: str | bytes) -> None:
        msg = self._protocol.receive(raw)
        kind = type(msg)
        if kind is Notification:
            handler = self._handlers.get(msg.channel)  # type: ignore[union-attr]
            if handler is None:
                self.counters["unexpected_channel"] += 1
                return
            handler(msg.data)  # type: ignore[union-attr]
        elif kind is Answer:
            self._answered(msg)  # type: ignore[arg-type]
        elif kind is Heartbeat:
            self.counters["heartbeats"] += 1
            if msg.kind == "test_request":  # type: ignore[union-attr]
                self.counters["test_requests"] += 1
                # any request answers it (VENUES.md 5.11); public/test is Deribit's, not 004's
                self._call("public/test" if self.pulse_options.deribit_heartbeats else LIVENESS_PROBE, {})

    def _answered(self, answer: Answer) -> None:
        pending: Pending | None = answer.pending
        if pending is None:
            self.counters["late_answers"] += 1  # timed out or from a lost connection
            return
        if pending.context is not None:
            pending.context(answer.result, answer.error)
        elif answer.error is not None:
            log.warning("pulse %s: %s refused: %s", self.venue, pending.method, codec.describe_error(answer.error))

    def _bad_frame(self, raw: str | bytes, kind: str, reason: str, exc: Exception | None = None) -> None:
        """Drop one frame: counted by kind, logged rate-limited. An exception that is neither the
        codec's nor explained by the input (too deep, a number out of range) is a bug of ours or
        of the codec: counted in ``handler_errors`` and its first traceback logged once."""
        self.counters["bad_frames"] += 1
        if exc is not None and kind == MALFORMED and not isinstance(exc, CodecError):
            self.counters["handler_errors"] += 1
            if not self._handler_error_logged:
                self._handler_error_logged = True
                log.error("pulse %s: a frame raised %s outside the codec's errors (traceback logged once)",
                          self.venue, type(exc).__name__, exc_info=exc)
        self._bad.record(kind, reason, sample_of(raw))  # the "engine.pulse" log scrubs credentials (wirelog)

    def bad_input(self) -> dict[str, int]:
        """Frames dropped, by kind (engine.venue.badinput), for the report and ``/metrics``."""
        return dict(self._bad.counts)

    # ---- market data ---------------------------------------------------------------------
    def subscribe(self, symbols: Iterable[str]) -> None:
        """Book, quote (and public trades) channels; each book starts with a snapshot."""
        wanted = []
        for symbol in symbols:
            if symbol not in self.instruments:
                known = ", ".join(sorted(self.instruments)) or "none"
                raise ValueError(f"pulse venue {self.venue!r} has no instrument {symbol!r}; known: {known}")
            wanted.append(symbol)
        self._client.want(wanted)  # issued now when logged in, and again after every reconnect

    def _on_intent(self, symbols: list[str], epoch: int) -> None:
        """The kit client issues the subscription intent: after each login, and new symbols."""
        self._subscribe_public(symbols)

    def _subscribe_public(self, symbols: list[str]) -> None:
        channels = []
        for symbol in symbols:
            self._await_snapshot(symbol)
            channels += [codec.book_channel(symbol), f"quote.{symbol}"]
            if self.pulse_options.public_trades:
                channels.append(f"trades.{symbol}.raw")
        self._call("public/subscribe", {"channels": channels}, partial(self._on_public_subscribed, channels))

    def _on_public_subscribed(self, channels: list[str], result: Any, error: BaseException | RpcError | None) -> None:
        if error is None:
            missing = self._check_subscribed(channels, result)
            # a trades channel counts only when the answer names it: 004's answer is "string", which
            # confirms nothing, and the document has no such channel (PUL-7), so it is polled too
            confirmed = isinstance(result, list)
            for channel in channels:
                symbol = self._trades_channels.get(channel)
                if symbol is not None and confirmed and channel not in missing:
                    self._trade_polls.pop(symbol, None)  # the channel brings them now
            self._poll_public_trades([c for c in channels if c in self._trades_channels
                                      and (not confirmed or c in missing)])
        elif isinstance(error, RpcError):
            self.counters["subscribe_errors"] += 1
            trades = [c for c in channels if c in self._trades_channels]
            if trades:
                # PUL-7: the document has no public trades channel; a venue may refuse the whole
                # request for it. The rest again without it, and the trades by polling.
                log.warning("pulse %s: public/subscribe refused (%s); subscribing again without %s", self.venue,
                            codec.describe_error(error), ", ".join(trades))
                rest = [c for c in channels if c not in self._trades_channels]
                if rest:
                    self._call("public/subscribe", {"channels": rest}, partial(self._on_public_subscribed, rest))
                self._poll_public_trades(trades)
                return
            log.error("pulse %s: public/subscribe refused: %s", self.venue, codec.describe_error(error))
        elif not isinstance(error, ConnectionLost):  # a lost connection resubscribes on reconnect
            self.counters["subscribe_errors"] += 1
            log.error("pulse %s: public/subscribe failed: %s", self.venue, error)

    def _check_subscribed(self, channels: list[str], result: Any) -> list[str]:
        """PUL-14: the result is documented as "string"; a list (Deribit) names what was
        subscribed, and anything missing from it is reported and returned."""
        if not isinstance(result, list):
            return []
        missing = [c for c in channels if c not in result]
        if missing:
            self.counters["channels_refused"] += len(missing)
            log.warning("pulse %s: the venue did not subscribe %s", self.venue, ", ".join(missing))
        return missing

    def _await_snapshot(self, symbol: str) -> None:
        """``symbol``'s book waits for a snapshot: if none comes within ``book_resync_s`` (a venue
        that sends none on subscribe: 004 does not say it does), the sweeper fetches the book."""
        self._snapshot_due[symbol] = time.monotonic() + self._book_resync_s

    def _fetch_books(self, now: float) -> None:
        """Fetch, with ``private/get_order_book``, every book whose snapshot is overdue (and
        again every ``book_resync_s`` while it stays so)."""
        for symbol, due in list(self._snapshot_due.items()):
            if due > now:
                continue
            state = self._protocol.books.get(symbol)
            if state is None or state.synced:
                del self._snapshot_due[symbol]
                continue
            self._snapshot_due[symbol] = now + self._book_resync_s
            self.counters["book_fetches"] += 1
            self._call("private/get_order_book", {"instrument_name": symbol, "depth": BOOK_FETCH_DEPTH},
                       partial(self._on_book_fetched, symbol))

    def _on_book_fetched(self, symbol: str, result: Any, error: BaseException | RpcError | None) -> None:
        if error is not None:
            if not isinstance(error, ConnectionLost):
                log.warning("pulse %s: book %s could not be fetched: %s", self.venue, symbol, error)
            return
        try:
            msg = codec.decode_order_book(result)
        except CodecError as exc:
            self.counters["book_fetch_errors"] += 1
            log.warning("pulse %s: book %s fetched but unreadable: %s", self.venue, symbol, exc)
            return
        if msg.symbol != symbol:
            self.counters["book_fetch_errors"] += 1
            log.warning("pulse %s: asked for book %s, got %s", self.venue, symbol, msg.symbol)
            return
        if self._protocol.books[symbol].synced:
            return  # the channel's snapshot came meanwhile: it is newer
        self._on_snapshot(msg, fetched=True)

    def _on_snapshot(self, msg: BookMsg, fetched: bool = False) -> None:
        """Deliver a whole book (the channel's snapshot, or a fetched one) and start its chain."""
        self._protocol.book(msg)
        self._snapshot_due.pop(msg.symbol, None)
        self.counters["book_snapshots_fetched" if fetched else "book_snapshots"] += 1
        self.sink.on_book(BookUpdate(self.venue, msg.symbol, self.clock.now_ns(), max(msg.change_id, 0), msg.changes,
                                     snapshot=True))

    def _resubscribe_book(self, symbol: str) -> None:
        """After a gap: subscribe the book channel again for a fresh snapshot (PUL-6; the sandbox
        sends one on every subscribe; there is no single-channel unsubscribe, PUL-14), and fetch
        the book if none comes in time."""
        self._await_snapshot(symbol)
        channel = codec.book_channel(symbol)
        self.counters["book_resubscribes"] += 1
        self._call("public/subscribe", {"channels": [channel]}, partial(self._on_public_subscribed, [channel]))

    def _on_book(self, channel_symbol: str, data: Any) -> None:
        try:
            msg: BookMsg = data if type(data) is BookMsg else codec.decode_book(data)  # decode_frame's, or a dict
        except Exception:
            self._book_unreadable(channel_symbol)
            raise  # the reader drops and counts the frame
        if msg.snapshot:
            if msg.symbol in self._protocol.books:
                self._on_snapshot(msg)
            else:
                self.counters["unexpected_channel"] += 1
            return
        verdict, state = self._protocol.book(msg)
        if verdict is APPLY:
            self.sink.on_book(BookUpdate(self.venue, msg.symbol, self.clock.now_ns(), msg.change_id, msg.changes))
        elif verdict is DUPLICATE:
            self.counters["book_duplicates"] += 1  # sent again: already applied, the book is right
        elif verdict is GAP:
            assert state is not None
            self.counters["book_gaps"] += 1
            if state.gaps <= GAP_LOGS:
                log.warning("pulse %s: book %s gap: prev_change_id %s after change_id %s; resubscribing for a "
                            "snapshot", self.venue, msg.symbol, msg.prev_change_id, state.change_id)
            self._resubscribe_book(msg.symbol)
        elif verdict is UNKNOWN:
            self.counters["unexpected_channel"] += 1
        else:  # WAITING
            self.counters["book_changes_skipped"] += 1  # waiting for the snapshot of a resubscribe

    def _book_unreadable(self, symbol: str) -> None:
        """A frame on ``symbol``'s book channel could not be read: it may have been a change, so the
        book is no longer known to be right. As after a change-id gap: unsync (later changes are
        skipped) and resubscribe for a fresh snapshot, once until that snapshot arrives."""
        state = self._protocol.book_unreadable(symbol)
        if state is None:
            return
        self.counters["book_gaps"] += 1
        if state.gaps <= GAP_LOGS:
            log.warning("pulse %s: book %s: a frame on its channel could not be read; resubscribing for a snapshot",
                        self.venue, symbol)
        self._resubscribe_book(symbol)

    def _on_quote(self, data: Any) -> None:
        quote = codec.decode_quote(data)
        self._quotes[quote.symbol] = (quote.bid, quote.ask)
        if quote.ts_ns:
            self._venue_offset_ns = quote.ts_ns - self.clock.now_ns()

    def _on_public_trades(self, data: Any) -> None:
        now = self.clock.now_ns()
        for trade in codec.decode_trades(data):
            if not self._protocol.first_public_trade(trade.instrument, trade.trade_id):
                self.counters["duplicate_public_trades"] += 1
                continue
            self.sink.on_trade(Trade(self.venue, trade.instrument, now, trade.price, trade.amount, trade.side,
                                     trade.trade_id))

    # ---- public trades by polling (PUL-7) ------------------------------------------------
    def _poll_public_trades(self, channels: list[str]) -> None:
        """The venue refused these ``trades.{i}.raw`` channels, or did not confirm them by name:
        poll their instruments (each trade is delivered once, whichever way it comes)."""
        for channel in channels:
            symbol = self._trades_channels[channel]
            if symbol in self._trade_polls:
                continue
            poll = self._trade_polls[symbol] = _TradePoll(symbol)
            log.warning("pulse %s: %s not confirmed by this venue (PUL-7); polling public/last_trades_by_instrument "
                        "every %s s",
                        self.venue, channel, self.pulse_options.public_trades_poll_s)
            self._poll_trades(poll)  # the baseline, now
        if self._trade_polls and not self._poller_running:
            self._poller_running = True
            self._tasks.spawn(self._trade_poller, name=f"pulse-trade-poller-{self.venue}")

    async def _trade_poller(self) -> None:
        interval = float(self.pulse_options.public_trades_poll_s)
        try:
            while self._trade_polls:
                await anyio.sleep(interval)
                if not self._ready:
                    continue
                for poll in list(self._trade_polls.values()):
                    self._poll_trades(poll)
        finally:
            self._poller_running = False

    def _poll_trades(self, poll: _TradePoll) -> None:
        if poll.in_flight or self._trade_polls.get(poll.symbol) is not poll:
            return
        params: dict[str, Any] = {"instrument_name": poll.symbol, "count": TRADE_POLL_COUNT}
        if poll.last_seq is not None:
            params["start_seq"] = poll.last_seq + 1  # the next trades, oldest first
            params["sorting"] = "asc"
        else:
            params["sorting"] = "desc"  # the baseline, or a venue without trade_seq: the latest
        if self._call("public/last_trades_by_instrument", params, partial(self._on_trades_polled, poll)):
            poll.in_flight = True
            self.counters["public_trade_polls"] += 1

    def _on_trades_polled(self, poll: _TradePoll, result: Any, error: BaseException | RpcError | None) -> None:
        poll.in_flight = False
        if self._trade_polls.get(poll.symbol) is not poll:
            return  # a newer poll took over after a reconnect, or the channel works now
        if error is not None:
            if isinstance(error, RpcError):
                self.counters["public_trade_poll_errors"] += 1
                if self._poll_errors_logged < POLL_ERROR_LOGS:
                    self._poll_errors_logged += 1
                    log.warning("pulse %s: public/last_trades_by_instrument %s refused: %s", self.venue, poll.symbol,
                                codec.describe_error(error))
            return  # a timeout or a lost connection: the next poll asks again
        try:
            trades = [t for t in codec.decode_trades(result) if t.instrument in ("", poll.symbol)]
        except CodecError as exc:
            self._bad_frame(repr(result)[:200], exc)
            return
        trades.sort(key=lambda t: (t.trade_seq, t.ts_ns))
        now = self.clock.now_ns()
        for trade in trades:
            if trade.trade_seq and (poll.last_seq is None or trade.trade_seq > poll.last_seq):
                poll.last_seq = trade.trade_seq
            if not self._protocol.first_public_trade(poll.symbol, trade.trade_id) or not poll.primed:
                continue  # delivered already (or by the channel), or history before the baseline
            self.counters["public_trades_polled"] += 1
            self.sink.on_trade(Trade(self.venue, poll.symbol, now, trade.price, trade.amount, trade.side,
                                     trade.trade_id))
        poll.primed = True
        if len(trades) >= TRADE_POLL_COUNT and poll.last_seq is not None:
            self._poll_trades(poll)  # more are waiting: the next page at once

    def _on_heartbeat_trade(self, data: Any) -> None:
        """``heartbeat_trade`` inactive -> every instrument halted at the venue until active again."""
        active = codec.decode_heartbeat_trade(data)
        if active == self._trading_active:
            return
        first = self._trading_active is None
        self._trading_active = active
        if first and active:
            return
        deliver = getattr(self.sink, "on_instrument_status", None)
        if deliver is None:
            return
        now = self.clock.now_ns()
        reason = "Pulse heartbeat_trade: trading " + ("active" if active else "inactive")
        for symbol in self.instruments:
            deliver(InstrumentStatus(self.venue, symbol, now, halted=not active, reason=reason))

    # ---- MMP -----------------------------------------------------------------------------
    def configure_mmp(self, strategy: str, symbols: Iterable[str], interval: Decimal, frozen_time: Decimal,
                      quantity_limit: Decimal) -> None:
        """Send this strategy's MMP limits to the venue for the indexes of its instruments (at the
        next login). Pulse keeps one config per index: strategies sharing one get the strictest."""
        wanted = PulseMmp(interval=interval, frozen_time=frozen_time, quantity_limit=quantity_limit)
        for symbol in symbols:
            index = self._index.get(symbol)
            if index is None:
                continue
            self._mmp_strategies.setdefault(index, set()).add(strategy)
            if index in self.pulse_options.mmp:
                continue  # configured explicitly for the venue
            current = self._mmp_configs.get(index)
            if current is not None and current != wanted:
                log.warning("pulse %s: strategies share MMP index %s with different limits; using the strictest",
                            self.venue, index)
                wanted = PulseMmp(interval=max(current.interval, interval),
                                  frozen_time=max(current.frozen_time, frozen_time),
                                  quantity_limit=min(current.quantity_limit, quantity_limit))
            self._mmp_configs[index] = wanted

    def reset_mmp(self, strategy: str) -> None:
        """004: ``private/set_mmp_config`` "triggers MMP reset": send each index ``strategy`` quotes
        on its config again, so ``ctx.reset_mmp()`` lifts the venue's freeze too (with
        ``frozen_time: 0`` nothing else would, short of a reconnect). Strategies sharing an index
        share its freeze: the reset lifts it for all of them, as the venue does."""
        for index, strategies in sorted(self._mmp_strategies.items()):
            config = self._mmp_configs.get(index)
            if strategy not in strategies or config is None:
                continue
            self.counters["mmp_resets"] += 1
            sent = self._call("private/set_mmp_config", {
                "index_name": index, "interval": config.interval, "frozen_time": config.frozen_time,
                "quantity_limit": config.quantity_limit,
            }, partial(self._on_mmp_reset, index))
            if not sent:  # no connection: the login sends every config again, which resets it then
                log.warning("pulse %s: MMP reset of %s not sent (not connected); the next login resets it",
                            self.venue, index)

    def _on_mmp_reset(self, index: str, result: Any, error: BaseException | RpcError | None) -> None:
        if error is not None:
            log.error("pulse %s: MMP reset of %s refused: %s", self.venue, index, error)

    def _on_mmp_trigger(self, data: Any) -> None:
        """The venue froze our MMP orders on an index: drive the runtime's MMP path for every
        strategy quoting there (cancel state, refusals until frozen_until, on_mmp_trigger)."""
        index, until_venue_ns = codec.decode_mmp_trigger(data)
        self.counters["mmp_triggers"] += 1
        now = self.clock.now_ns()
        # the venue's instant on the engine clock, by the offset seen in quote timestamps
        until = until_venue_ns - self._venue_offset_ns if until_venue_ns else None
        strategies = sorted(self._mmp_strategies.get(index, ()))
        log.warning("pulse %s: venue MMP triggered on %s (frozen until %s); strategies %s", self.venue, index,
                    until_venue_ns // 1_000_000 or "reset", ", ".join(strategies) or "none")
        trigger = getattr(self.sink, "venue_mmp_trigger", None)
        if trigger is None:
            return
        for strategy in strategies:
            trigger(strategy, now, until, f"Pulse user.mmp_trigger.{index}")

    # ---- orders --------------------------------------------------------------------------
    def submit(self, order: Order) -> None:
        now = time.monotonic()
        track = self._orders.add(_Track(order, now))
        if order.post_only and self.pulse_options.post_only == "reject" and order.price is not None:
            crossing = self._crosses(order.symbol, order.side, order.price)
            if crossing is not None:
                self._orders.finish(track, OrderStatus.REJECTED, int(Reject.POST_ONLY_WOULD_TAKE),
                                    f"post-only order would take liquidity: {crossing}", later=True)
                return
        method, params = codec.order_request(order)
        track.waiting_frame = self._call(method, params, partial(self._on_submit_answer, track),
                                         partial(self._not_sent, track))
        if track.waiting_frame is None:
            self._orders.finish(track, OrderStatus.REJECTED, int(Reject.BACKEND_CONNECTIVITY),
                                f"venue {self.venue!r} is not connected: the order was not sent", later=True)

    def _adopt(self, order: Order) -> _Track | None:
        """An order the venue acknowledged to an earlier instance (working before an engine restart):
        tracked from the engine's record of it, so a cancel or an edit of it is sent and its answer
        understood, instead of being refused as unknown."""
        if not order.venue_order_id or order.is_terminal:
            return None
        track = _Track(order, time.monotonic())
        track.venue_order_id = order.venue_order_id
        track.acked = True  # the engine has the venue's word on it
        track.cum_qty = order.cum_qty
        track.status = order.live_status()
        self._orders.add(track)
        return track

    def cancel(self, order: Order) -> None:
        track = self._orders.get(order.client_id) or self._adopt(order)
        if track is None:
            self._orders.untracked_update(order.client_id, OrderStatus.REJECTED, int(Reject.ORDER_NOT_OPEN),
                                          "cancel refused: unknown order", later=True)
            return
        if track.terminal:
            return  # its final state is already on its way to the runtime
        if self._cancel_unsent(track):
            return
        if not track.venue_order_id:
            track.cancel_wanted = True  # sent when the venue's answer gives us the order_id
            return
        self._send_cancel(track)

    def _cancel_unsent(self, track: _Track) -> bool:
        """If ``track``'s buy/sell still waits for the order budget, take it back: it never leaves,
        and the order is cancelled here (told after the caller returns), never live at the venue.
        False when it has left (the venue must cancel it); an edit of it still waiting is taken
        back then (the cancel, which goes first, settles the order: the edit would only be refused,
        after spending the order budget, and its answer would read as the cancel's refusal)."""
        edit = track.edit_frame
        if edit is not None and self._take_back(edit):
            track.edit_frame = None
            track.pending_edit = None
        waiting = track.waiting_frame
        if waiting is None or not self._take_back(waiting):
            return False
        track.waiting_frame = None
        self._orders.taken_back(track, "its order request")
        return True

    def _send_cancel(self, track: _Track) -> None:
        if not self._call("private/cancel", {"order_id": track.venue_order_id}, partial(self._on_cancel_answer, track),
                          partial(self._not_sent, track)):
            self._orders.answer(track, int(Reject.BACKEND_CONNECTIVITY),
                                f"cancel not sent: venue {self.venue!r} is not connected", status=track.live,
                                later=True)

    def amend(self, order: Order, price: Decimal | None, qty: Decimal | None) -> None:
        track = self._orders.get(order.client_id) or self._adopt(order)
        refusal = "replace refused: the venue has not acknowledged this order or it is finished"
        if track is None:
            self._orders.untracked_update(order.client_id, order.live_status(), int(Reject.ORDER_NOT_OPEN), refusal,
                                          later=True)
            return
        if track.terminal or not track.venue_order_id:
            status = track.final if track.final is not None else order.live_status()
            self._orders.answer(track, int(Reject.ORDER_NOT_OPEN), refusal, status=status, later=True)
            return
        if price is not None and track.post_only and self.pulse_options.post_only == "reject":
            crossing = self._crosses(track.symbol, track.side, price)
            if crossing is not None:
                self._orders.answer(track, int(Reject.POST_ONLY_WOULD_TAKE),
                                    f"replace refused: post-only order would take liquidity: {crossing}",
                                    status=track.live, later=True)
                return
        amount = qty if qty is not None else track.qty
        track.pending_edit = (price, amount)
        track.edit_frame = self._call("private/edit", codec.edit_params(track.venue_order_id, amount, price),
                                      partial(self._on_edit_answer, track), partial(self._not_sent, track))
        if track.edit_frame is None:
            track.pending_edit = None
            self._orders.answer(track, int(Reject.BACKEND_CONNECTIVITY),
                                f"replace not sent: venue {self.venue!r} is not connected", status=track.live,
                                later=True)

    def _not_sent(self, track: _Track, why: str) -> None:
        """A request of ``track`` that never left (the adapter closed first): a new order is
        rejected; an edit or cancel refused, the order still live at the venue."""
        if track.terminal:
            return
        if not track.venue_order_id and not track.acked:
            self._orders.finish(track, OrderStatus.REJECTED, int(Reject.BACKEND_CONNECTIVITY),
                                f"order not sent: {why}")
            return
        what = "replace" if track.pending_edit is not None else "cancel"
        track.pending_edit = None
        self._orders.answer(track, int(Reject.BACKEND_CONNECTIVITY), f"{what} not sent: {why}", status=track.live)

    async def cancel_all(self, symbol: str | None = None) -> int:
        """Mass cancel (``private/cancel_all``, or ``cancel_all_by_instrument`` for one symbol);
        each cancelled order reaches the runtime as a cancel. Returns how many were cancelled: the
        venue's number plus the orders taken back before they left (never at the venue).

        The answer need not settle anything (issue 20, defect 2): Deribit answers a count, 004's
        example lists the orders with ``order_state`` "open", and 004 never says the private
        channels report a mass cancel. So every order of ours in its scope that is still open once
        the answer is in is asked for (``private/get_order_state``) and settled from the venue's
        word; one the venue still shows open has its cancel refused (back to its live state)."""
        scope = [t for t in self._orders.open_records() if symbol is None or t.symbol == symbol]
        # orders still waiting for the budget would leave after the mass cancel (cancels go first)
        # and stay live: they are taken back instead; those that left are written before it
        taken_back = sum(self._cancel_unsent(track) for track in scope)
        if symbol is None:
            result = await self._request("private/cancel_all", {"detailed": False})
        else:
            result = await self._request("private/cancel_all_by_instrument",
                                         {"instrument_name": symbol, "type": "all", "detailed": False})
        if isinstance(result, int) and not isinstance(result, bool):
            cancelled = result  # Deribit's count
        else:
            orders = codec.decode_orders(result)
            for pulse_order in orders:
                self._on_orders_and_trades([pulse_order], ())
            cancelled = len(orders)
        cancelled += taken_back
        for track in scope:
            if track.terminal:
                continue
            self.counters["mass_cancel_queries"] += 1
            found = await self._resolve(track, "mass cancel")
            still_open = found is not None and found.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)
            if still_open and not track.terminal:
                self._orders.answer(track, int(Reject.EXCHANGE_REJECT),
                                    "cancel refused: the venue still shows the order open after the mass cancel",
                                    status=track.live)
        return cancelled

    def _crosses(self, symbol: str, side: Side, price: Decimal) -> str | None:
        bid, ask = self._quotes.get(symbol, (None, None))
        if side is Side.BUY and ask is not None and price >= ask:
            return f"buy at {price} against the best ask {ask}"
        if side is Side.SELL and bid is not None and price <= bid:
            return f"sell at {price} against the best bid {bid}"
        return None

    # ---- answers -------------------------------------------------------------------------
    def _decode_order_answer(self, track: _Track, result: Any, method: str) -> tuple[Any, list[Any]] | None:
        """The order and trades of a ``buy``/``sell``/``edit`` answer; None when it cannot be read
        (counted as a bad frame, and the order's state asked for instead of guessed)."""
        try:
            pulse_order = codec.decode_order(result.get("order") if isinstance(result, dict) else None)
            trades = codec.decode_trades(result.get("trades") or [])
        except CodecError as exc:
            self._bad_frame(repr(result), exc)
            self._tasks.spawn(self._resolve, track, f"{method} answer unreadable")
            return None
        return pulse_order, trades

    def _on_submit_answer(self, track: _Track, result: Any, error: BaseException | RpcError | None) -> None:
        track.waiting_frame = None
        if error is None:
            decoded = self._decode_order_answer(track, result, "private/buy")
            if decoded is not None:
                self._on_orders_and_trades([decoded[0]], decoded[1])
        elif isinstance(error, RpcError):
            if not track.acked and not track.terminal:
                self._orders.finish(track, OrderStatus.REJECTED, codec.reject_code(error.code),
                                    codec.describe_error(error))
        elif isinstance(error, TimeoutError):
            self._tasks.spawn(self._resolve, track, str(error))
        # ConnectionLost: the outcome is unknown; the runtime reconciles after the reconnect

    def _on_cancel_answer(self, track: _Track, result: Any, error: BaseException | RpcError | None) -> None:
        if error is None:
            try:
                self._on_orders_and_trades(codec.decode_orders(result), ())
            except CodecError as exc:
                self._bad_frame(repr(result), exc)
        elif isinstance(error, RpcError):
            if track.terminal:
                return
            code, why = codec.reject_code(error.code), "cancel refused: " + codec.describe_error(error)
            if code == Reject.ORDER_NOT_OPEN:
                # not open at the venue: something ended it (a mass cancel, a fill, an expiry) whose
                # word has not come yet, or it is unknown there. Ask, rather than send the engine
                # back to the live state first and final after
                self._tasks.spawn(self._cancel_not_open, track, code, why)
                return
            # the cancel is refused: back to the live state; a final state follows when it arrives
            self._orders.answer(track, code, why, status=track.live)
        elif isinstance(error, TimeoutError):
            self._tasks.spawn(self._resolve, track, str(error))

    async def _cancel_not_open(self, track: _Track, code: int, why: str) -> None:
        """A cancel the venue answered "not open": the order's state from the venue settles it; only
        when the venue still shows it working (or cannot say) is the cancel refused."""
        await self._resolve(track, why)
        if not track.terminal and track.held is None:
            self._orders.answer(track, code, why, status=track.live)

    def _on_edit_answer(self, track: _Track, result: Any, error: BaseException | RpcError | None) -> None:
        track.edit_frame = None
        if error is None:
            decoded = self._decode_order_answer(track, result, "private/edit")
            if decoded is not None:
                self._on_orders_and_trades([decoded[0]], decoded[1], edited=True)
        elif isinstance(error, RpcError):
            if track.pending_edit is not None:
                track.pending_edit = None
                self._orders.answer(track, codec.reject_code(error.code),
                                    "replace refused: " + codec.describe_error(error))
        elif isinstance(error, TimeoutError):
            self._tasks.spawn(self._resolve, track, str(error))

    async def _resolve(self, track: _Track, why: str) -> PulseOrder | None:
        """A request's answer was lost or unreadable (or a mass cancel's says nothing final): ask
        the venue what became of the order and settle it; the venue's order, when it knows it."""
        try:
            if track.venue_order_id:
                orders = codec.decode_orders(await self._request("private/get_order_state",
                                                                 {"order_id": track.venue_order_id}))
            else:
                orders = await self._by_label(track)
        except (PulseError, TimeoutError, CodecError) as exc:
            log.error("pulse %s: order %s unresolved after %s: %s", self.venue, track.client_id, why, exc)
            return None
        except ConnectionLost:
            return None  # the runtime reconciles after the reconnect
        if not orders:
            if not track.acked and not track.terminal:
                self._orders.finish(
                    track, OrderStatus.REJECTED, int(Reject.BACKEND_CONNECTIVITY),
                    f"{why}; the venue does not know label {track.client_id!r}: the order was never placed")
            return None
        pulse_order = orders[0]
        trades: list[PulseTrade] = []
        if pulse_order.filled > track.cum_qty:
            try:
                trades = codec.decode_trades(await self._request(
                    "private/get_user_trades_by_order", {"order_id": pulse_order.order_id, "sorting": "asc"}))
            except (PulseError, TimeoutError, ConnectionLost, CodecError) as exc:
                log.error("pulse %s: fills of %s unresolved: %s", self.venue, track.client_id, exc)
        if track.pending_edit is not None:
            price, amount = track.pending_edit
            if pulse_order.amount == amount and (price is None or pulse_order.price == price):
                self._on_orders_and_trades([pulse_order], trades, edited=True)
                return pulse_order
            track.pending_edit = None
            self._orders.answer(track, int(Reject.BACKEND_CONNECTIVITY),
                                f"replace outcome unknown ({why}); the venue shows the order unchanged")
        self._on_orders_and_trades([pulse_order], trades)
        return pulse_order

    # ---- private streams -----------------------------------------------------------------
    def _on_user_orders(self, data: Any) -> None:
        self._on_orders_and_trades(codec.decode_orders(data), ())

    def _on_user_trades(self, data: Any) -> None:
        for trade in codec.decode_trades(data):
            self._on_trade(trade, None)

    def _on_user_changes(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise CodecError("user.changes payload is not an object")
        orders = codec.decode_orders(data.get("orders") or [])
        trades = codec.decode_trades(data.get("trades") or [])
        self._on_orders_and_trades(orders, trades)

    def _on_orders_and_trades(self, orders: list[PulseOrder], trades: Iterable[PulseTrade],
                              edited: bool = False) -> None:
        """One venue message about our orders: acks (and replace acks) first, then fills, then
        final states, so the runtime sees NEW before a fill and a fill before FILLED/CANCELLED."""
        tracks = [self._head(o, edited) for o in orders]
        # PUL-8: documented trade objects carry no order_id or label; with exactly one of our
        # orders in the message, its trades are that order's
        sole = tracks[0] if len(tracks) == 1 else None
        for trade in trades:
            self._on_trade(trade, sole)
        for pulse_order, track in zip(orders, tracks, strict=True):
            if track is not None:
                self._tail(pulse_order, track)

    def _head(self, pulse_order: PulseOrder, edited: bool) -> _Track | None:
        track = self._orders.find(pulse_order.order_id, pulse_order.label)
        if track is None:
            self.counters["foreign_orders"] += 1  # placed by another client of the account, or forgotten
            return None
        track.touched = time.monotonic()
        if pulse_order.state == "rejected":
            return track
        if not track.acked:
            self._ack(track, pulse_order)
        if track.pending_edit is not None:
            price, amount = track.pending_edit
            if edited or (pulse_order.replaced and pulse_order.amount == amount
                          and (price is None or pulse_order.price == price)):
                track.pending_edit = None
                track.qty = pulse_order.amount
                if pulse_order.price is not None:
                    track.price = pulse_order.price
                self._orders.answer(track, status=track.live, price=track.price, qty=track.qty)
        return track

    def _ack(self, track: _Track, pulse_order: PulseOrder | None = None) -> None:
        """NEW, once per order. When the venue works the order at another price than we asked (a
        crossing post-only order is repriced "just below the spread") or another amount, the NEW
        carries the venue's values so the runtime records what is really working."""
        price = qty = None
        if pulse_order is not None:
            if pulse_order.price is not None and track.price is not None and pulse_order.price != track.price:
                price = pulse_order.price
                self.counters["post_only_repriced" if track.post_only else "venue_repriced"] += 1
                log.info("pulse %s: the venue took %s %s at %s instead of %s%s", self.venue, track.client_id,
                         track.side.value, price, track.price, " (post-only reprice)" if track.post_only else "")
                track.price = price
            if pulse_order.amount != track.qty:
                qty = pulse_order.amount
                log.info("pulse %s: the venue took %s for %s instead of %s", self.venue, track.client_id, qty,
                         track.qty)
                track.qty = qty
        self._orders.ack(track, price=price, qty=qty)
        if track.cancel_wanted:
            track.cancel_wanted = False
            self._send_cancel(track)

    def _tail(self, pulse_order: PulseOrder, track: _Track) -> None:
        state = pulse_order.state
        if track.terminal:
            return
        if state == "rejected":
            self._orders.finish(track, OrderStatus.REJECTED, int(Reject.EXCHANGE_REJECT),
                                f"Pulse rejected the order ({pulse_order.cancel_reason or 'no reason given'})")
        elif state == "cancelled":
            # told once every fill the venue counts is delivered (they may come on another stream)
            self._orders.finish_after_fills(track, OrderStatus.CANCELLED, pulse_order.filled,
                                            reason=_cancel_sentence(pulse_order.cancel_reason), since=time.monotonic())
        elif state == "filled":
            self._orders.finish_after_fills(track, OrderStatus.FILLED, pulse_order.filled, since=time.monotonic())

    def _on_trade(self, trade: PulseTrade, sole: _Track | None) -> None:
        if self._orders.seen_fill(trade.trade_id):
            self.counters["duplicate_fills"] += 1
            return
        track = self._orders.find(trade.order_id, trade.label)
        if track is None and not trade.order_id and not trade.label:
            track = sole
        if track is None:
            self.counters["unattributed_trades"] += 1
            log.warning("pulse %s: trade %s cannot be attributed to one of our orders", self.venue, trade.trade_id)
            return
        self._orders.bind(track, trade.order_id)
        if not track.acked:
            self._ack(track)  # NEW first, and a cancel that waited for the venue's order id goes out
        track.touched = time.monotonic()
        fill = self._fill_of(trade, track, self.clock.now_ns())
        if fill is not None:
            self._orders.fill(track, fill)

    def _fill_of(self, trade: PulseTrade, track: _Track | None, ts: int, symbol: str = "") -> Fill | None:
        """The one mapping of a venue trade to the engine's Fill: of ``track`` when we know the
        order, else of the trade's own label, order id and instrument (``symbol`` when it names
        none). None for a trade of an order we do not know that does not say its side."""
        if track is not None:
            return Fill(self.venue, track.symbol, track.client_id, track.venue_order_id, trade.trade_id,
                        trade.side or track.side, trade.price, trade.amount, ts, trade.liquidity, trade.fee)
        if trade.side is None:
            self.counters["unattributed_trades"] += 1
            log.warning("pulse %s: trade %s of no order we know gives no direction", self.venue, trade.trade_id)
            return None
        return Fill(self.venue, trade.instrument or symbol, trade.label, trade.order_id, trade.trade_id, trade.side,
                    trade.price, trade.amount, ts, trade.liquidity, trade.fee)

    # ---- reconciliation queries ----------------------------------------------------------
    async def _by_label(self, track: _Track) -> list[PulseOrder]:
        result = await self._request("private/get_order_state_by_label",
                                     {"currency": self._currency[track.symbol], "label": track.client_id})
        return [o for o in codec.decode_orders(result) if o.label == track.client_id]

    async def query_open_orders(self) -> list[VenueOrder]:
        """Every order the venue still works for the account, by instrument; ``client_id`` is the
        order's label (an order without one belongs to someone else and shows up as a stray)."""
        out: list[VenueOrder] = []
        for symbol in self.instruments:
            result = await self._request("private/get_open_orders_by_instrument",
                                         {"instrument_name": symbol, "type": "all"})
            for pulse_order in codec.decode_orders(result):
                track = self._orders.find(pulse_order.order_id, pulse_order.label)
                out.append(pulse_order.to_venue_order(self.venue, track.side if track is not None else None))
        return out

    async def query_order(self, client_id: str) -> VenueOrder | None:
        """By order_id when the venue answered the submit, else by label (a submit whose answer
        was lost). None when the venue does not know it."""
        track = self._orders.get(client_id)
        try:
            if track is not None and track.venue_order_id:
                result = await self._request("private/get_order_state", {"order_id": track.venue_order_id})
                orders = codec.decode_orders(result)
            else:
                symbol = track.symbol if track is not None else next(iter(self.instruments), "")
                currency = self._currency.get(symbol, "USD")
                result = await self._request("private/get_order_state_by_label",
                                             {"currency": currency, "label": client_id})
                orders = [o for o in codec.decode_orders(result) if o.label == client_id]
        except PulseError as exc:
            if exc.code == 4:  # not found
                return None
            raise
        if not orders:
            return None
        pulse_order = orders[0]
        if track is not None and not track.venue_order_id:
            self._orders.find(pulse_order.order_id, client_id)
        return pulse_order.to_venue_order(self.venue, track.side if track is not None else None)

    async def query_fills(self, since_ns: int) -> list[Fill]:
        """Every fill of the account at or after ``since_ns``, so a restarted instance finds the ones
        made before it: per instrument, ``private/get_user_trades_by_instrument`` from ``since``
        (:meth:`_user_trades_since`), each trade attributed to our order by its ``order_id`` or
        ``label`` (our client id). The documented trade object has neither (PUL-8; the sandbox and
        Deribit send both): where the answer cannot name the order, or stopped at the page cap, the
        orders this instance tracks are asked for their own trades (``get_user_trades_by_order``).
        A trade of an order we do not know is still the account's fill: it goes out under its
        label (empty when it has none), and the runtime adopts an order of one of its strategies
        or keeps the fill visible as one of an order it does not know. Each fill once, on the
        engine clock at the venue's time of the trade; those of our orders are booked in the
        tracker (the runtime applies this list itself, so a stream repeating one drops it)."""
        now = self.clock.now_ns()
        start_ms = max(0, (since_ns + self._venue_offset_ns) // codec.NS_PER_MS)
        found: dict[str, tuple[PulseTrade, _Track | None, str]] = {}
        uncovered: set[str] = set()  # instruments whose answer does not give every fill's order
        for symbol in self.instruments:
            trades, complete = await self._user_trades_since(symbol, start_ms)
            if not complete:
                uncovered.add(symbol)
            for trade in trades:
                if not trade.order_id and not trade.label:
                    uncovered.add(symbol)
                found.setdefault(trade.trade_id, (trade, self._orders.find(trade.order_id, trade.label), symbol))
        for track in self._tracked_since(since_ns):
            if track.symbol in uncovered:
                for trade in await self._trades_of(track):
                    found[trade.trade_id] = (trade, track, track.symbol)
        fills: list[Fill] = []
        for trade, track, symbol in found.values():
            # the venue's time of the trade on the engine clock (offset seen in quote timestamps):
            # the runtime orders the queried fills by it
            ts = min(trade.ts_ns - self._venue_offset_ns if trade.ts_ns else now, now)
            fill = self._fill_of(trade, track, ts, symbol)
            if fill is None:
                continue
            if track is not None:
                self._orders.note_fill(track, trade.trade_id, trade.amount)
            fills.append(fill)
        return fills

    async def _user_trades_since(self, symbol: str, start_ms: int) -> tuple[list[PulseTrade], bool]:
        """The account's trades on ``symbol`` from ``start_ms`` (venue ms), page by page, and whether
        that is all of them. A page is full or says ``has_more``: the next starts at its last
        trade's millisecond (inclusive: trades sharing it come again and are dropped by id). Stops
        at :data:`USER_TRADES_MAX_PAGES`, or when a full page cannot move on (more trades in one
        millisecond than a page holds), logged: the caller then asks per order."""
        trades: dict[str, PulseTrade] = {}
        for _ in range(USER_TRADES_MAX_PAGES):
            page, has_more = codec.decode_trade_page(await self._request(
                "private/get_user_trades_by_instrument", codec.user_trades_params(symbol, start_ms, USER_TRADES_PAGE)))
            for trade in page:
                trades.setdefault(trade.trade_id, trade)
            if not (has_more if has_more is not None else len(page) >= USER_TRADES_PAGE):
                return list(trades.values()), True
            next_ms = max((trade.ts_ns // codec.NS_PER_MS for trade in page), default=start_ms)
            if next_ms <= start_ms:
                self.counters["fill_pages_stuck"] += 1
                log.warning("pulse %s: %s: a full page of user trades at %d ms, no later start to ask from; "
                            "fills of the orders this instance tracks are asked per order", self.venue, symbol,
                            start_ms)
                return list(trades.values()), False
            start_ms = next_ms
        self.counters["fill_pages_capped"] += 1
        log.warning("pulse %s: %s: %d pages of user trades (%d trades) and more follow from %d ms; not asked "
                    "(cap); fills of the orders this instance tracks are asked per order", self.venue, symbol,
                    USER_TRADES_MAX_PAGES, len(trades), start_ms)
        return list(trades.values()), False

    def _tracked_since(self, since_ns: int) -> list[_Track]:
        """Our orders that may have filled since ``since_ns``: still working, or touched since then."""
        horizon = time.monotonic() - max(0.0, (self.clock.now_ns() - since_ns) / NS_PER_S) - self._timeout
        return [track for track in self._orders.records()
                if track.final is not OrderStatus.REJECTED and not (track.terminal and track.touched < horizon)]

    async def _trades_of(self, track: _Track) -> list[PulseTrade]:
        """One order's trades (``get_user_trades_by_order``); an order whose submit answer was lost
        is first found by label. Empty when the venue does not know the order."""
        if not track.venue_order_id:
            orders = await self._by_label(track)
            if not orders:
                return []
            self._orders.find(orders[0].order_id, track.client_id)
        return codec.decode_trades(await self._request(
            "private/get_user_trades_by_order", {"order_id": track.venue_order_id, "sorting": "asc"}))

    async def query_account(self, currency: str) -> VenueAccount:
        """The account in ``currency`` for a derivatives account's reconciliation:
        ``private/get_positions`` then ``private/get_account_summary`` (equity, margins), the
        summary last so its equity already counts the positions just read."""
        positions = await self._request("private/get_positions", {"currency": currency})
        summary = await self._request("private/get_account_summary", {"currency": currency})
        return codec.decode_account(summary, positions, currency)

    def stats(self) -> dict[str, int]:
        """For the engine's report and metrics: ``messages_in`` (frames received), ``messages_out``
        (frames sent), ``reconnects`` (successful reconnects after a lost connection), and every
        other counter the adapter keeps (disconnects, logins, token_refreshes, timeouts,
        bad_frames, book_gaps, duplicate_fills, post_only_repriced, public_trade_polls, ...)."""
        out = {name: int(value) for name, value in self.counters.items()}
        out["messages_in"] = self.messages_in
        out["messages_out"] = self.messages_out
        out["reconnects"] = int(self.counters["reconnects"])
        return out

    def describe(self) -> dict[str, Any]:
        options = self.pulse_options
        return {
            "name": self.name,
            "venue": self.venue,
            "url": options.url,
            "auth": options.auth,
            "client_id": options.client_id or f"${options.client_id_env}",
            "heartbeat_s": str(options.heartbeat_s),
            "cancel_on_disconnect": bool(self.cancel_on_disconnect and options.cancel_on_disconnect),
            "venue_cod_confirmed": self.venue_cod,
            "mmp": {i: c.model_dump(mode="json") for i, c in self._mmp_configs.items()},
            "post_only": options.post_only,
            "public_trades_polled": sorted(self._trade_polls),  # trades.*.raw refused: polling (PUL-7)
            "counters": dict(self.counters),
            "connection": self._client.describe(),  # epoch, pings missed, stale frames dropped
        }


def _cancel_sentence(reason: str) -> str:
    if reason == "mmp_trigger":
        return "cancelled by the venue's market-maker protection"
    if reason == "cancel_on_disconnect":
        return "cancelled by the venue on disconnect"
    if reason == "user_request" or not reason:
        return "cancelled on request"
    return f"cancelled by the venue ({reason})"
