"""The MidChains WebSocket adapter (``midchains_ws``): document 001's WebSocket JSON API as one
venue adapter carrying both order entry and market data, beside the FIX ones (issue 24).

The wire is the sans-I/O trio :mod:`.ws_codec` (every message, reject texts, rate limits as data),
:mod:`.ws_auth` (the RSA challenge login) and :mod:`.ws_book` (when the L3 book is whole, when to
resubscribe, MID-7); the L3 book is the FIX market-data adapter's :class:`.l3book.L3Book`; the
socket is the kit's :class:`~adapters.kit.wsclient.WsClient` (WebSocket ping every 20 s, reconnect
with backoff, subscription intent, connection epochs). This module is the loop around them:

- **Login within 30 s** (``login_timeout_s``): ``challenge`` -> RSA ``pass`` -> ``login``; the
  password is read from ``password_env``/``password_file`` at each login, encrypted and dropped;
  neither it nor its ciphertext reaches any log line (:data:`REDACT`, keyed on
  :data:`~.ws_codec.CREDENTIAL_KEYS`, remembering the login's secrets). ``invalid user/password``
  is not retried by the first ``connect`` (it raises); a reconnect keeps backing off.
- **Correlation without request ids** (VENUES.md 2.8): an answer finds its request by
  :func:`~.ws_codec.answer_key`; a request type that echoes nothing (the queries, ``getsymbols``)
  has at most one outstanding (a lock per type), and a ``{"result":"error parsing json"}`` answers
  the OLDEST outstanding request (the venue answers in order on one socket).
- **After every login** ``getsymbols`` (``fractionbase`` per pair: the quantity step an order must
  respect, refused locally 2002 when finer), ``subscribesymbolstatus`` (Halt -> the instrument
  halted, so the gate refuses orders), then the book and trade subscriptions, and a reconciliation
  in the background: ``querytrade`` (fills missed while away), ``querymultiorder`` (the state of
  every order this instance tracks; an order whose ``addorder`` answer was lost and that the venue
  does not list never reached it: rejected 9001) and ``querypos`` (balances, :meth:`describe`).
  The login pushes of open orders and positions have no end marker; the queries' ``total_rec``
  says when their answers are whole.
- **The book** (MID-7): ``U`` upserts and ``R`` removes by ``id`` are turned into the L3 book's
  Delete/New entries; an ``R`` of an id the book does not hold is counted for :class:`BookSync`
  (and kept as a tombstone while the book builds, so a late snapshot ``U`` of that order is
  dropped); a ``U`` of quantity 0 removes. Nothing reaches the engine until :class:`BookSync` says
  the book is whole: then a snapshot, then deltas. A book crossed after a message is not shown
  (a snapshot follows when it uncrosses; crossed for 1 s -> resubscribe). A busy pair that never
  goes 250 ms quiet is whole 1 s after the subscribe (``book_build_max_ms``, MID-7).
- **Liveness** (MID-8): no frame for ``probe_after_s`` (30 s) -> a ``getsymbols`` probe; no frame
  for ``silence_s`` (60 s) -> the connection is dropped and re-made (re-login, resubscribe).
- **Rate limits on the wire** (MID-9): every request leaves through a
  :class:`~adapters.kit.pacing.WirePacer` with the codec's lanes (cancels first, then orders,
  queries, public) and :data:`~.ws_codec.WS_RATE_LIMITS`: public 3/s burst 6, private 5/s burst
  10, orders 4/s.
- **Orders**: LMT/MKT; GTC, IOC, FOK; DAY as ``day_tif`` says (GTT with ``exptime`` at the next
  01:00 UTC trading-day boundary by default, MID-13); post-only as ``alo`` (the venue refuses it
  when marketable: "order marketable to existing quote/book" -> 7006); ``clientorderid`` = the
  engine's client id (or a digest of it past 28 characters, as the FIX adapter does). A market BUY
  is refused locally 2007: the venue sizes it by fiat ``amount`` ("cannot use qty for market buy
  order"), and the engine's order has a quantity. No stop orders (the engine has none). The order
  is NEW at its first ``order`` push (not at the ``addorder`` OK, which a "wash sale prohibited"
  ``Rejected`` push may still follow); fills come from ``sale`` pushes de-duplicated on
  ``traderefno``, with ``ismaker`` as the liquidity.
- **Fees**: ``querytrade``'s ``comm`` is in ``commsecurity`` (the base asset on a buy of 001's
  sample): converted to the quote currency at the execution price; a ``sale`` push states none
  (the engine then charges its schedule).
- **Capabilities**: no amend, no mass cancel, no venue cancel-on-disconnect (001 documents none):
  the engine's own per-order cancels and cancel-on-disconnect apply.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import sqlite3
import ssl
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import anyio
import websockets
from pydantic import Field, model_validator
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from adapters.kit.backoff import Backoff
from adapters.kit.credentials import read_secret
from adapters.kit.orders import OrderTracker, RecentIds, TrackedOrder
from adapters.kit.pacing import Outbox, PacerClosed, WirePacer, Withdrawable, guarded, write_unless_withdrawn
from adapters.kit.tasks import StoppableTasks
from adapters.kit.urls import ClearTextRefused, refuse_clear_text
from adapters.kit.wsclient import WsClient
from adapters.midchains.l3book import BID, CROSSED, DELETE, NEW, OFFER, BookError, Entry, L3Book
from adapters.midchains.orders import day_expiry, wire_root
from adapters.midchains.ws_auth import Deliver, LoggedIn, LoginFailed, LoginMachine, SendText
from adapters.midchains.ws_book import BookPhase, BookSync, Decision
from adapters.midchains.ws_codec import (
    CREDENTIAL_KEYS,
    NS_PER_MS,
    REQUEST_LANE,
    URLS,
    WS_LANES,
    WS_RATE_LIMITS,
    AddOrder,
    AddOrderAnswer,
    BookMsg,
    CancelAnswer,
    CancelOrder,
    GetSymbols,
    OrderMsg,
    PositionMsg,
    QueryMultiOrder,
    QueryPos,
    QueryTrade,
    RecordAssembler,
    RecordsAnswer,
    RejectCodes,
    SaleMsg,
    Subscribe,
    SubscribeEntry,
    SubscribeSymbolStatus,
    SymbolsAnswer,
    SymbolStatusMsg,
    TradeMsg,
    VenueError,
    WsCodecError,
    answer_key,
    decode_message,
    encode,
    recognise_reject,
    request_key,
)
from engine.model import (
    BookUpdate,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    VenueOrder,
)
from engine.venue import Adapter, AdapterOptions, Capabilities, RateLimit, RedactingFilter
from engine.venue.badinput import BINARY, TOO_LARGE, BadInput, kind_of, sample_of
from engine.venue.clock import Clock
from engine.venue.rejects import Reject

__all__ = ["REDACT", "MidChainsWsAdapter", "MidChainsWsOptions", "WsRequestError", "fee_in_quote"]

log = logging.getLogger("engine.midchains.ws")
#: the websockets library logs our connections (every frame at DEBUG) through this one
wire_log = logging.getLogger("engine.midchains.ws.wire")
#: one filter for both: ``pass`` by key, and every password and ciphertext the adapters handled
REDACT = RedactingFilter(keys=CREDENTIAL_KEYS)
for _logger in (log, wire_log):
    if REDACT not in _logger.filters:
        _logger.addFilter(REDACT)

NS = 1_000_000_000
ZERO = Decimal(0)
PASSWORD_ENV = "MIDCHAINS_WS_PASSWORD"
#: the ticker's period: book quiet windows (250 ms), request deadlines and silence are checked on it
TICK_S = 0.05
#: order ids the venue names that this instance does not track, remembered for a cancel after restart
FOREIGN_MEMORY = 4096
#: finished orders stay tracked this long (late pushes, a query), then are released
TRACK_KEEP_S = 600.0
#: how often the ticker sweeps the tracked orders (held final states, finished orders)
SWEEP_S = 1.0


#: a JSON text's trailing commas (001's login answer and logout request, venue-notes 3.4)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")

#: 001: "public endpoints 3 requests/s per IP": every adapter of this process to one venue address
#: spends the same budget (an engine restarting its adapter, two venues on one account's IP), so
#: public requests leave through one pacer per address and event loop (its timers are the loop's):
#: loop -> address -> (its limits, the pacer)
_PUBLIC_PACERS: weakref.WeakKeyDictionary[Any, dict[str, tuple[tuple[RateLimit, ...], WirePacer]]] = \
    weakref.WeakKeyDictionary()
_PUBLIC_LANES = {"public": WS_LANES["public"]}


def _public_pacer(url: str, limits: tuple[RateLimit, ...], clock: Clock) -> WirePacer:
    """The shared pacer of ``url``'s address on the running loop; its items are ``(depart, item)``."""
    address = urlsplit(url).netloc
    public = tuple(limit for limit in limits if limit.scope == "public")
    pacers = _PUBLIC_PACERS.setdefault(asyncio.get_running_loop(), {})
    known = pacers.get(address)
    if known is not None and known[0] == public:
        return known[1]
    pacer = WirePacer(f"midchains_ws {address} public", public, _PUBLIC_LANES, clock,
                      on_depart=lambda lane, item: item[0](lane, item[1]))
    pacers[address] = (public, pacer)
    return pacer


class MidChainsWsOptions(AdapterOptions):
    """``midchains_ws``: order entry and market data over 001's WebSocket JSON API."""

    url: str = Field(URLS["sandbox"], description="wss://ws-sandbox.midchains.com:8081/ (sandbox), "
                     "wss://ws.midchains.com:8081 (production), or ws://127.0.0.1:PORT (the local sandbox). "
                     "ws:// is refused to any other host.")
    userid: str = Field(min_length=1, description="The login's userid, provided by MidChains.")
    password_env: str | None = Field(PASSWORD_ENV, min_length=1, description="Environment variable holding the "
                                     "password (read at each login, never logged).")
    password_file: Path | None = Field(None, description="Or: a file holding it (first line); wins over "
                                       "password_env; a rotated file is used at the next login.")
    ca_bundle: Path | None = Field(None, description="PEM CA bundle replacing the system's CAs for wss:// (MID-12: "
                                   "MidChains' certificate may be private).")
    day_tif: Literal["gtt", "gtc", "refuse"] = Field(
        "gtt", description="What a DAY order is sent as. gtt: GTT with exptime at the next trading-day boundary, "
        "01:00 UTC (MID-13); gtc: GTC; refuse: rejected 2007 locally.")
    fraction_bases: dict[str, int] = Field(default_factory=dict, description="Symbol -> fractionbase, for a pair "
                                           "getsymbols does not list (getsymbols' own value wins).")
    login_timeout_s: float = Field(30.0, gt=0, description="001: the login must complete within 30 s of connecting.")
    connect_timeout_s: float = Field(10.0, gt=0, description="TCP + TLS + WebSocket handshake deadline.")
    request_timeout_s: float = Field(10.0, gt=0, description="An answer not in by then: the request's outcome is "
                                     "unknown (an order is reconciled by query).")
    ping_interval_s: float = Field(20.0, gt=0, description="WebSocket ping period (MID-8).")
    ping_timeout_s: float = Field(20.0, gt=0, description="No pong within this: the connection is dead.")
    probe_after_s: float = Field(30.0, gt=0, description="No frame for this long: a getsymbols probe (MID-8).")
    silence_s: float = Field(60.0, gt=0, description="No frame for this long: reconnect and log in again (MID-8).")
    book_quiet_ms: int = Field(250, ge=1, description="The snapshot burst has ended after this much quiet (MID-7).")
    book_empty_ms: int = Field(2000, ge=1, description="No book message this long after a subscribe: an empty book.")
    book_build_max_ms: int = Field(1000, ge=1, description="The book is whole this long after a subscribe even "
                                   "if the pair never went quiet (a busy market, MID-7).")
    book_cross_grace_ms: int = Field(1000, ge=0, description="A book crossed this long lost a remove: resubscribe.")
    book_resubscribe_ms: int = Field(5000, ge=0, description="At most one resubscribe per pair this often.")
    reconnect_min_s: float = Field(0.5, gt=0, description="First reconnect delay; doubles per failure.")
    reconnect_max_s: float = Field(30.0, gt=0, description="Longest reconnect delay.")
    max_message_bytes: int = Field(1 << 20, ge=1024, description="A larger frame closes the connection (1009).")
    state_file: Path | None = Field(None, description="SQLite file keeping refno -> client id of our orders, so a "
                                    "restarted engine names orders the venue lists without clientorderid (001's "
                                    "querymultiorders and querytrade records). Default: the engine's venue state "
                                    "path beside the journal; without either, memory only.")

    @model_validator(mode="after")
    def _checked(self) -> MidChainsWsOptions:
        try:
            refuse_clear_text(self.url, "url", "the login")
        except ClearTextRefused as exc:
            raise ValueError(str(exc)) from None
        if not self.url.startswith(("ws://", "wss://")):
            raise ValueError(f"url must be ws:// or wss://, got {self.url!r}")
        if self.password_env is None and self.password_file is None:
            raise ValueError("give password_env or password_file")
        if self.probe_after_s >= self.silence_s:
            raise ValueError("probe_after_s must be below silence_s (the probe needs time to be answered)")
        for symbol, base in self.fraction_bases.items():
            if base < 1 or str(base).rstrip("0") != "1":
                raise ValueError(f"fraction_bases[{symbol!r}] must be a power of 10, got {base}")
        return self


class _IdStore:
    """refno -> (client id, clientorderid) of our orders, durable: 001's ``querymultiorders`` and
    ``querytrade`` records carry no ``clientorderid``, so after a restart only this names an order
    that is no longer open (the login pushes name the open ones). One row per order, written when
    the venue's ``refno`` arrives; WAL, as the other adapter stores."""

    def __init__(self, path: Path | None) -> None:
        self._db: sqlite3.Connection | None = None
        self.ids: dict[str, tuple[str, str]] = {}
        if path is None:
            return
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS ids (refno TEXT PRIMARY KEY, client_id TEXT, wire_id TEXT)")
        for refno, client_id, wire_id in self._db.execute("SELECT refno, client_id, wire_id FROM ids"):
            self.ids[refno] = (client_id, wire_id)

    def put(self, refno: str, client_id: str, wire_id: str) -> None:
        if self.ids.get(refno) == (client_id, wire_id):
            return
        self.ids[refno] = (client_id, wire_id)
        if self._db is not None:
            self._db.execute("INSERT OR REPLACE INTO ids VALUES (?, ?, ?)", (refno, client_id, wire_id))

    def refno_of(self, client_id: str) -> str:
        return next((refno for refno, (known, _) in self.ids.items() if known == client_id), "")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class WsRequestError(ConnectionError):
    """A request that got no usable answer: the connection went, the deadline passed, or the venue
    answered with a failure (``result``)."""


class _Track(TrackedOrder):
    __slots__ = ("wire_id", "request_seq", "cancel_wanted", "waiting_add")

    def __init__(self, order: Order) -> None:
        super().__init__(order.client_id, order.symbol, order.side, order.qty, order.price, order.venue_order_id)
        self.wire_id = wire_root(order.client_id)
        self.request_seq = 0  # departure number of its addorder (0: not departed)
        self.cancel_wanted = False  # a cancel asked before the venue's refno came
        #: its addorder, which a cancel takes back until its write begins (:meth:`_take_back`)
        self.waiting_add: _Request | None = None


class _Request(Withdrawable):
    """One request on its way: its key (what the answer carries), its handlers, its departure; a
    cancel may take it back until its write begins (:meth:`MidChainsWsAdapter._take_back`)."""

    __slots__ = ("message", "key", "lane", "on_answer", "on_unsent", "seq", "epoch", "deadline", "assembler")

    def __init__(self, message: Any, on_answer: Callable[[Any], None], on_unsent: Callable[[str], None]) -> None:
        super().__init__()
        self.message = message
        self.key = request_key(message)
        self.lane = REQUEST_LANE[message.TYPE]
        self.on_answer = on_answer  # the answer, or a WsRequestError
        self.on_unsent = on_unsent  # never left (closed, dropped before departure)
        self.seq = 0
        self.epoch = 0
        self.deadline = 0.0
        self.assembler: RecordAssembler | None = None


class MidChainsWsAdapter(Adapter):
    name = "midchains_ws"
    options_model = MidChainsWsOptions
    capabilities: ClassVar[Capabilities] = Capabilities(
        amend=False, mass_cancel=False, post_only="reject", ioc=True, fok=True, gtc=True, market_orders=True,
        cancel_on_disconnect=False, self_trade_prevention=True,
    )
    rate_limits: ClassVar[tuple[RateLimit, ...]] = WS_RATE_LIMITS

    def setup(self) -> None:
        self.ws_options: MidChainsWsOptions = self.options  # type: ignore[assignment]
        opts = self.ws_options
        #: the loops close stops (writer, ticker, the client's reader, reconciliations)
        self._tasks = StoppableTasks(self.start_task)
        self._client = WsClient(
            f"midchains_ws {self.venue}", self._open_socket, self._on_frame, spawn=self._tasks.spawn,
            backoff=Backoff(opts.reconnect_min_s, opts.reconnect_max_s, random.Random(self.seed)),
            ping_interval_s=opts.ping_interval_s, ping_timeout_s=opts.ping_timeout_s,
            on_up=self._on_up, on_intent=self._on_intent, on_lost=self._on_lost,
            on_reconnected=self._on_reconnected, on_retry_failed=self._on_retry_failed,
            close_reason=self._closed_why,
        )
        self._limits: tuple[RateLimit, ...] = self.rate_limits
        self._pacer = self._new_pacer()
        #: (connection epoch, frame, its request: None for a login step or a subscribe) by lane
        self._outbox: Outbox[tuple[int, str, _Request | None]] = Outbox()
        self.counters: Counter[str] = Counter()
        self._rejects = RejectCodes()
        self._bad = BadInput(log, f"midchains_ws {self.venue}")
        self._orders: OrderTracker[_Track] = OrderTracker(
            self.venue, self.sink, self.clock.now_ns, defer=partial(self.clock.call_later, 0), counts=self.counters,
            logger=log)
        self._by_wire: dict[str, _Track] = {}
        #: wire id -> the reject an unreadable answer named (used once the venue's list confirms it)
        self._salvaged: dict[str, tuple[int, str]] = {}
        #: refno -> clientorderid, of orders this instance does not track (bounded)
        self._wire_of: dict[str, str] = {}
        self._state_path: Path | None = opts.state_file
        self._ids: _IdStore | None = None
        #: requests that left, by departure order (the oldest answers a VenueError)
        self._outstanding: dict[int, _Request] = {}
        self._by_key: dict[tuple[str, ...], list[_Request]] = {}
        self._seq = 0
        self._type_locks: dict[str, anyio.Lock] = {}
        self._login: LoginMachine | None = None
        self._logged_in = anyio.Event()
        self._login_failure: LoginFailed | None = None
        self._closing = False
        self._last_frame = time.monotonic()
        self._probe_sent = False
        self._swept = time.monotonic()
        self._done_at: dict[str, float] = {}  # client id -> when its order was seen finished
        # market data
        self._symbols: dict[str, None] = {}
        self._book = L3Book()
        self._sync: dict[str, BookSync] = {}
        self._tombstones: dict[str, set[str]] = {}
        self._shown: dict[str, bool] = {}  # the engine holds this pair's book (a snapshot went out)
        self._dirty: dict[str, bool] = {}  # changes were held back (crossed): the next showing is a snapshot
        self._book_seq: dict[str, int] = {}
        self._due: dict[str, int] = {}  # pair -> monotonic ns its BookSync wants polling
        self._trade_ids = RecentIds(8192)
        #: per pair: the quantity step (1 / fractionbase), from getsymbols or the options
        self.fraction_bases: dict[str, int] = dict(opts.fraction_bases)
        self.positions: dict[str, Decimal] = {}
        self.halted: dict[str, bool | None] = {}
        self.messages_in = 0
        self.messages_out = 0

    # ---- pacing ----------------------------------------------------------------------------
    def set_state_path(self, path: Path) -> None:
        """The engine's venue state file (beside the journal); the ``state_file`` option wins."""
        if self.ws_options.state_file is None:
            self._state_path = path

    def set_rate_limits(self, limits: tuple[RateLimit, ...]) -> tuple[RateLimit, ...]:
        """Pace every request at departure with the engine's limits (the venue counts arrivals)."""
        self._limits = tuple(limits)
        self._pacer.set_limits(tuple(limit for limit in self._limits if limit.scope != "public"))
        public = tuple(limit for limit in self._limits if limit.scope == "public")
        return self._pacer.departure_limits + guarded(public, speed=self._pacer.clock.speed)

    def _put(self, lane: str, item: Any) -> None:
        """Into the departure queue of ``lane``: public requests share their address's pacer."""
        if lane == "public":
            _public_pacer(self.ws_options.url, self._limits, self.clock).put(lane, (self._depart, item))
        else:
            self._pacer.put(lane, item)

    def _new_pacer(self) -> WirePacer:
        private = tuple(limit for limit in self._limits if limit.scope != "public")
        return WirePacer(self.venue, private, WS_LANES, self.clock, on_depart=self._depart)

    # ---- lifecycle -------------------------------------------------------------------------
    def _password(self) -> str:
        opts = self.ws_options
        value = read_secret(opts.password_env, opts.password_file, f"midchains_ws {self.venue}: password")
        REDACT.remember(value)
        return value

    async def connect(self) -> None:
        """Open the socket, log in, report ``connected``. Raises ConnectionError naming the URL and
        the reason when the first login fails."""
        self._closing = False
        if self._ids is None:
            self._ids = _IdStore(self._state_path)
        if self._pacer.closed:
            self._pacer = self._new_pacer()
        self._tasks.spawn(self._writer, name=f"midchains-ws-writer-{self.venue}")
        self._tasks.spawn(self._ticker, name=f"midchains-ws-ticker-{self.venue}")
        await self._tasks.or_cancel(self._client.connect)
        self.sink.on_venue_status(self.venue, "connected")

    async def close(self) -> None:
        """Close the socket and stop the loops; requests still waiting never leave. Never raises."""
        self._closing = True
        self._fail_waiting(self._pacer.close(), "the adapter closed before the rate limit let it leave")
        await self._client.close()
        self._tasks.cancel()
        self._bad.flush()
        if self._ids is not None:
            self._ids.close()
            self._ids = None

    async def _open_socket(self) -> ClientConnection:
        opts = self.ws_options
        context: ssl.SSLContext | None = None
        if opts.url.startswith("wss://"):
            context = ssl.create_default_context(cafile=str(opts.ca_bundle) if opts.ca_bundle else None)
        try:
            return await websockets.connect(opts.url, ssl=context, open_timeout=opts.connect_timeout_s,
                                            ping_interval=None, max_size=opts.max_message_bytes, max_queue=None,
                                            proxy=None, logger=wire_log)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise ConnectionError(f"midchains_ws {self.venue}: cannot connect to {opts.url}: {exc}") from None

    async def _on_up(self, epoch: int) -> None:
        """A new socket: log in within ``login_timeout_s``, then learn the pairs and subscribe to
        their status; the kit client then issues the book and trade subscriptions."""
        self._last_frame = time.monotonic()
        self._probe_sent = False
        self._logged_in = anyio.Event()
        self._login_failure = None
        machine = self._login = LoginMachine(self.ws_options.userid, self._password,
                                             int(self.ws_options.login_timeout_s * NS), self._rejects)
        self._login_actions(machine.connected(time.monotonic_ns()), epoch)
        with anyio.move_on_after(self.ws_options.login_timeout_s + 1):
            await self._logged_in.wait()
        if not self._logged_in.is_set():
            self._login_actions(machine.tick(time.monotonic_ns() + int(self.ws_options.login_timeout_s * NS)), epoch)
        failure = self._login_failure
        if failure is not None or not self._logged_in.is_set():
            reason = failure.reason if failure is not None else "no login answer"
            self.counters["login_failures"] += 1
            raise ConnectionError(f"midchains_ws {self.venue}: login to {self.ws_options.url} failed: {reason}")
        self.counters["logins"] += 1
        self._client.healthy()
        log.info("midchains_ws %s: logged in as %s", self.venue, self.ws_options.userid)
        try:
            symbols = await self._ask(GetSymbols(), epoch)
            self._take_symbols(symbols)
            await self._ask(SubscribeSymbolStatus(), epoch)
        except WsRequestError as exc:
            raise ConnectionError(f"midchains_ws {self.venue}: after login: {exc}") from None
        self._tasks.spawn(self._reconcile_quietly, epoch, name=f"midchains-ws-reconcile-{self.venue}")

    def _login_actions(self, actions: list[Any], epoch: int) -> None:
        for action in actions:
            if isinstance(action, SendText):
                if self._login is not None:
                    REDACT.remember(*self._login.secrets)
                kind = "login" if '"login"' in action.loggable else "challenge"
                self._put(REQUEST_LANE[kind], (epoch, action.text))
            elif isinstance(action, LoggedIn):
                self._logged_in.set()
            elif isinstance(action, LoginFailed):
                self._login_failure = action
                self._logged_in.set()
            elif isinstance(action, Deliver):
                self._handle(action.message, epoch)

    def _on_lost(self, epoch: int, reason: str, unexpected: bool) -> None:
        """The connection went: requests in flight have lost their answers (an order among them is
        unknown until the venue's word comes back); what waits in the pacer is withdrawn."""
        self._login = None
        self._fail_outstanding(f"connection lost: {reason}")
        self._fail_waiting(self._pacer.withdraw(), f"connection lost before it was sent: {reason}")
        self._due.clear()
        for symbol in self._symbols:
            self._sync[symbol] = self._new_sync()
            self._shown[symbol] = False
        if unexpected:
            log.warning("midchains_ws %s: connection lost (%s); reconnecting", self.venue, reason)
            self.sink.on_venue_status(self.venue, "disconnected", reason)

    def _closed_why(self, exc: ConnectionClosed | None, ws: ClientConnection) -> str:
        if exc is None:
            return "connection closed by the venue"
        if exc.rcvd is None and exc.sent is not None and exc.sent.code == 1009:
            limit = self.ws_options.max_message_bytes
            self._bad.record(TOO_LARGE, f"a frame over max_message_bytes={limit:,}; reconnecting")
            return f"closed by us (code 1009: a frame over max_message_bytes={limit:,})"
        return f"connection lost: {exc}"

    def _on_reconnected(self, epoch: int, failures: int) -> None:
        self.sink.on_venue_status(self.venue, "connected", f"after {failures} failed attempt(s)")

    def _on_retry_failed(self, exc: BaseException, failures: int) -> None:
        log.warning("midchains_ws %s: reconnect attempt %d failed: %s", self.venue, failures, exc)

    # ---- sending ---------------------------------------------------------------------------
    def _send(self, message: Any, on_answer: Callable[[Any], None], on_unsent: Callable[[str], None],
              epoch: int | None = None) -> _Request | None:
        """Queue ``message`` for departure on the current connection; None when not logged in."""
        if not self._client.up and epoch is None:
            return None
        request = _Request(message, on_answer, on_unsent)
        request.epoch = self._client.epoch if epoch is None else epoch
        try:
            self._put(request.lane, request)
        except PacerClosed:
            return None
        return request

    def _depart(self, lane: str, item: Any) -> None:
        """The pacer let ``item`` go: to the writer, in this order; its answer is awaited from now."""
        if isinstance(item, tuple):  # a login step, made by the LoginMachine: (epoch, frame)
            epoch, frame = item
            self._outbox.put(lane, (epoch, frame, None))
            return
        request: _Request = item
        if not self._client.current(request.epoch):
            request.on_unsent("the connection it was made for is gone")
            return
        text = encode(request.message)
        if request.message.TYPE == "subscribe":  # 001 shows no answer to it: nothing is awaited
            self._outbox.put(lane, (request.epoch, text, None))
            return
        self._seq += 1
        request.seq = self._seq
        if isinstance(request.message, AddOrder):
            rec = self._by_wire.get(request.message.client_order_id or "")
            if rec is not None:
                rec.request_seq = request.seq
        request.deadline = time.monotonic() + self.ws_options.request_timeout_s
        self._outstanding[request.seq] = request
        self._by_key.setdefault(request.key, []).append(request)
        # a cancelorder names a refno, so its addorder was written: it may go ahead (Outbox)
        self._outbox.put(lane, (request.epoch, text, request), ahead=isinstance(request.message, CancelOrder))

    async def _writer(self) -> None:
        """Write what the pacers let go, each through its pacer's write hold (the limits again on
        the times writes returned: the venue counts arrivals): cancelorders in their order, the rest
        (logout too) in theirs, the two at once (:class:`Outbox`), so a cancelorder never waits
        behind a held order."""
        await self._outbox.run(self._write_one)

    async def _write_one(self, lane: str, item: tuple[int, str, _Request | None]) -> None:
        epoch, text, request = item
        pacer = _public_pacer(self.ws_options.url, self._limits, self.clock) if lane == "public" else self._pacer
        send = partial(self._client.send, text, epoch)
        if await (pacer.hold.write(lane, send) if request is None
                  else write_unless_withdrawn(pacer.hold, lane, request, send)):
            self.messages_out += 1

    def _take_back(self, request: _Request) -> bool:
        """Keep a request from leaving, if it has not begun to be written: still waiting for the
        pacer, or let go and waiting for the writer or the write hold (after a stall). True then
        (neither handler runs: the caller answers for it), False once the writer has it on the
        socket. What the pacer spent at its departure stays spent."""
        # departed: no answer will come, none is awaited
        return self._pacer.take_back_unwritten(request.lane, request, departed=partial(self._forget, request))

    def _resolve(self, request: _Request, answer: Any) -> None:
        self._forget(request)
        request.on_answer(answer)

    def _forget(self, request: _Request) -> None:
        """``request`` is answered or will never be: out of the outstanding and by-key tables."""
        self._outstanding.pop(request.seq, None)
        waiting = self._by_key.get(request.key)
        if waiting is not None:
            try:
                waiting.remove(request)
            except ValueError:
                pass
            if not waiting:
                del self._by_key[request.key]

    def _fail_outstanding(self, why: str) -> None:
        for request in list(self._outstanding.values()):
            self._resolve(request, WsRequestError(why))

    def _fail_waiting(self, waiting: list[tuple[str, Any]], why: str) -> None:
        for _lane, item in waiting:
            if isinstance(item, _Request):
                item.on_unsent(why)

    async def _ask(self, message: Any, epoch: int | None = None) -> Any:
        """Send and wait for the answer (a failed ``result`` raises WsRequestError, except the
        multi-record ``no position``). A type whose answer echoes nothing has one outstanding."""
        lock = None
        if len(request_key(message)) == 1 and message.TYPE != "addorder":
            lock = self._type_locks.setdefault(message.TYPE, anyio.Lock())
        if lock is not None:
            await lock.acquire()
        try:
            done = anyio.Event()
            box: list[Any] = []

            def answered(answer: Any) -> None:
                box.append(answer)
                done.set()

            def unsent(why: str) -> None:
                box.append(WsRequestError(f"{message.TYPE} not sent: {why}"))
                done.set()

            if not self._send(message, answered, unsent, epoch):
                raise WsRequestError(f"{message.TYPE}: venue {self.venue!r} is not connected")
            await done.wait()
        finally:
            if lock is not None:
                lock.release()
        answer = box[0]
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, RecordsAnswer) and answer.empty:
            return answer
        if not getattr(answer, "ok", True):
            raise WsRequestError(f"{message.TYPE} refused: {answer.result}")
        return answer

    async def _records(self, message: Any, epoch: int | None = None) -> tuple[Any, ...]:
        answer = await self._ask(message, epoch)
        return answer.records

    # ---- receiving -------------------------------------------------------------------------
    def _on_frame(self, raw: str | bytes, epoch: int) -> None:
        self._last_frame = time.monotonic()
        self._probe_sent = False
        self.messages_in += 1
        if type(raw) is not str:
            self._bad.record(BINARY, "a binary frame (the API is JSON text frames)", sample_of(raw))
            return
        try:
            message = decode_message(raw)
        except WsCodecError as exc:
            message = self._lenient(raw, exc)
            if message is None:
                self._undecodable(raw, exc, epoch)
                return
        try:
            machine = self._login
            if machine is not None and not self._logged_in.is_set():
                self._login_actions(machine.receive(message, time.monotonic_ns()), epoch)
            else:
                self._handle(message, epoch)
        except Exception as exc:  # this frame's alone: counted and logged, the connection goes on
            self._bad.record(kind_of(exc), f"{type(exc).__name__}: {str(exc)[:200]}", sample_of(raw))

    def _lenient(self, raw: str, exc: WsCodecError) -> Any:
        """A frame whose only fault is a trailing comma, read without it: 001's own login answer
        has one (venue-notes 3.4), and a venue that sends it so would otherwise never let us log
        in; a comma before a closing bracket changes no meaning. Counted (``trailing_commas``);
        anything else stays refused."""
        if not exc.reason.endswith("(a trailing comma)"):
            return None
        try:
            message = decode_message(_TRAILING_COMMA.sub(r"\1", raw))
        except WsCodecError:
            return None
        self.counters["trailing_commas"] += 1
        return message

    def _undecodable(self, raw: str, exc: WsCodecError, epoch: int) -> None:
        self._bad.record(exc.kind, exc.reason, sample_of(raw))
        machine = self._login
        if machine is not None and not self._logged_in.is_set():
            self._login_actions(machine.undecodable(exc, time.monotonic_ns()), epoch)
            return
        if exc.message_type == "book":
            symbol = _book_symbol(raw)
            for pair in ([symbol] if symbol in self._sync else list(self._sync)):
                self._book_decision(pair, self._sync[pair].lost(time.monotonic_ns(), "an unreadable book message"))
            return
        salvaged = recognise_reject(raw)
        if salvaged is not None:
            # the venue refused something and we cannot read which: never a guess on an order; the
            # pending ones are settled by the venue's list (codec: recognise_reject)
            self.counters[f"unreadable_reject_{int(salvaged.reject.code)}"] += 1
            adds = [r for r in self._outstanding.values() if isinstance(r.message, AddOrder)]
            named = [r for r in adds if r.message.client_order_id == salvaged.client_order_id]
            answered = named[0] if named else (adds[0] if adds and salvaged.client_order_id is None else None)
            if answered is not None:  # its answer, unreadable: settled below by the venue's list
                self._salvaged[answered.message.client_order_id] = (
                    int(salvaged.reject.code), f"{salvaged.reject.text} (an unreadable answer; the venue does not "
                    "list the order)")
                self._resolve(answered, WsRequestError(f"an unreadable answer: {exc.reason}"))
            log.warning("midchains_ws %s: an unreadable frame carries the reject %r; reconciling by query",
                        self.venue, salvaged.reject.text)
            self._tasks.spawn(self._reconcile_quietly, epoch, name=f"midchains-ws-reconcile-{self.venue}")

    def _handle(self, message: Any, epoch: int) -> None:
        if isinstance(message, BookMsg):
            self._on_book(message)
        elif isinstance(message, OrderMsg):
            self._on_order(message)
        elif isinstance(message, SaleMsg):
            self._on_sale(message)
        elif isinstance(message, PositionMsg):
            self.positions[message.security] = message.curpos
        elif isinstance(message, TradeMsg):
            self._on_trade(message)
        elif isinstance(message, SymbolStatusMsg):
            self._on_status(message)
        elif isinstance(message, VenueError):
            self.counters["venue_errors"] += 1
            oldest = next(iter(self._outstanding.values()), None)
            if oldest is None:
                log.warning("midchains_ws %s: venue error %r answers no request", self.venue, message.result)
            else:
                self._resolve(oldest, message)
        else:
            self._answered(message)

    def _answered(self, answer: Any) -> None:
        key = answer_key(answer)
        if key is None:
            self.counters["ignored"] += 1
            return
        waiting = self._by_key.get(key)
        if not waiting and len(key) == 1 and key[0] == "addorder":
            waiting = [r for r in self._outstanding.values() if r.message.TYPE == "addorder"]
        if not waiting:
            self.counters["unmatched_answers"] += 1
            log.info("midchains_ws %s: an answer %s matches no outstanding request", self.venue, key)
            return
        request = waiting[0]
        if isinstance(answer, RecordsAnswer):
            if request.assembler is None:
                request.assembler = RecordAssembler(answer.type)
            try:
                records = request.assembler.add(answer)
            except WsCodecError as exc:
                self._resolve(request, WsRequestError(f"{answer.type}: {exc.reason}"))
                return
            if records is None:
                request.deadline = time.monotonic() + self.ws_options.request_timeout_s
                return
            answer = RecordsAnswer(type=answer.type, result=answer.result, records=records,
                                   total=answer.total, security=answer.security)
        self._resolve(request, answer)

    # ---- the ticker: book quiet windows, request deadlines, silence ------------------------
    async def _ticker(self) -> None:
        while True:
            await anyio.sleep(TICK_S)
            self._tick()

    def _tick(self) -> None:
        now = time.monotonic()
        now_ns = time.monotonic_ns()
        for symbol, due in list(self._due.items()):
            if now_ns >= due:
                del self._due[symbol]
                sync = self._sync.get(symbol)
                if sync is not None:
                    self._book_decision(symbol, sync.poll(now_ns, crossed=self._book.book(symbol).crossed))
        for request in [r for r in self._outstanding.values() if r.deadline <= now]:
            self.counters["timeouts"] += 1
            self._resolve(request, WsRequestError(f"no answer within {self.ws_options.request_timeout_s:g} s"))
        if now - self._swept >= SWEEP_S:
            self._swept = now
            self._sweep(now)
        if not self._client.up:
            return
        quiet = now - self._last_frame
        opts = self.ws_options
        if quiet >= opts.silence_s:
            self.counters["silence_drops"] += 1
            self._client.drop(f"no frame for {quiet:.1f} s (MID-8)")
        elif quiet >= opts.probe_after_s and not self._probe_sent:
            self._probe_sent = True
            self.counters["probes"] += 1
            if "getsymbols" not in {r.message.TYPE for r in self._outstanding.values()}:
                self._send(GetSymbols(), self._take_symbols, lambda why: None)

    def _sweep(self, now: float) -> None:
        """A final state held for fills that never came is told anyway after ``request_timeout_s``
        (the venue's word on the order stands); a finished order is forgotten after
        :data:`TRACK_KEEP_S` (its fill ids stay remembered), so memory stays bounded."""
        timeout = self.ws_options.request_timeout_s
        for rec in self._orders.records():
            held = rec.held
            if held is not None and now - held.since > timeout:
                log.warning("midchains_ws %s: order %s is %s at the venue but %s of its %s filled never arrived",
                            self.venue, rec.client_id, held.status.value, rec.cum_qty, held.venue_filled)
                self._orders.release_held(rec, force=True)
            if rec.terminal:
                done = self._done_at.setdefault(rec.client_id, now)
                if now - done > TRACK_KEEP_S:
                    self._orders.release(rec)
                    self._done_at.pop(rec.client_id, None)
                    if self._by_wire.get(rec.wire_id) is rec:
                        del self._by_wire[rec.wire_id]

    # ---- instruments -----------------------------------------------------------------------
    def _take_symbols(self, answer: Any) -> None:
        if not isinstance(answer, SymbolsAnswer) or not answer.ok:
            return
        for info in answer.symbols:
            if info.security in self.instruments:
                self.fraction_bases[info.security] = info.fraction_base
                lot = self.instruments[info.security].lot_size
                if lot % info.qty_step:
                    log.warning("midchains_ws %s: %s lot_size %s is not a multiple of the venue's step %s "
                                "(fractionbase %d): orders off the step are refused", self.venue, info.security,
                                lot, info.qty_step, info.fraction_base)

    def _on_status(self, message: SymbolStatusMsg) -> None:
        now = self.clock.now_ns()
        for entry in message.entries:
            if entry.security not in self.instruments:
                continue
            self.halted[entry.security] = entry.halted
            self.sink.on_instrument_status(entry.to_status(self.venue, now))

    # ---- market data -----------------------------------------------------------------------
    def subscribe(self, symbols: Iterable[str]) -> None:
        new = [s for s in symbols if s not in self._symbols]
        for symbol in new:
            self._symbols[symbol] = None
            self._sync[symbol] = self._new_sync()
        self._client.want(new)

    def _new_sync(self) -> BookSync:
        opts = self.ws_options
        ms = 1_000_000
        return BookSync(opts.book_quiet_ms * ms, opts.book_empty_ms * ms, opts.book_cross_grace_ms * ms,
                        opts.book_resubscribe_ms * ms, opts.book_build_max_ms * ms)

    def _on_intent(self, symbols: list[str], epoch: int) -> None:
        self._subscribe_books(symbols, epoch)

    def _subscribe_books(self, symbols: list[str], epoch: int | None = None) -> None:
        entries = tuple(SubscribeEntry(msg=msg, security=s) for s in symbols for msg in ("book", "trade"))
        if not entries:
            return
        now = time.monotonic_ns()
        for symbol in symbols:
            self._book.books.pop(symbol, None)
            self._tombstones[symbol] = set()
            self._dirty[symbol] = False
            sync = self._sync.setdefault(symbol, self._new_sync())
            sync.subscribed(now)
            self._book_decision(symbol, sync.poll(now))
        # 001 shows no answer to subscribe: not outstanding (_depart), an answer if one came is ignored
        self._send(Subscribe(entries=entries), lambda answer: None, lambda why: None, epoch)

    def _resubscribe(self, symbol: str, reason: str) -> None:
        self.counters["resubscribes"] += 1
        log.info("midchains_ws %s: %s book resubscribed: %s", self.venue, symbol, reason)
        self._subscribe_books([symbol])

    def _on_book(self, message: BookMsg) -> None:
        symbol = message.security
        sync = self._sync.get(symbol)
        if sync is None:
            self.counters["book_unsubscribed"] += 1
            return
        book = self._book.book(symbol)
        building = sync.phase is BookPhase.BUILDING
        tombstones = self._tombstones.setdefault(symbol, set())
        held = book.orders
        pending: dict[str, bool] = {}  # id -> held after the entries so far of this message
        entries: list[Entry] = []
        unknown_removes = 0
        for item in message.entries:
            order_id = str(item.order_id)
            is_held = pending.get(order_id, order_id in held)
            if item.act == "R" or (item.qty is not None and item.qty == 0):
                if is_held:
                    entries.append(Entry(DELETE, None, order_id, symbol, None, None))
                    pending[order_id] = False
                elif item.act == "R":
                    unknown_removes += 1
                    if building:
                        tombstones.add(order_id)
                continue
            if building and order_id in tombstones:
                self.counters["book_tombstoned"] += 1
                continue
            if is_held:
                entries.append(Entry(DELETE, None, order_id, symbol, None, None))
            entries.append(Entry(NEW, BID if item.side is Side.BUY else OFFER, order_id, symbol, item.price, item.qty))
            pending[order_id] = True
        changes: list[tuple[Side, Decimal, Decimal]] = []
        try:
            changed, _prints = self._book.apply(entries)
            changes = changed.get(symbol, [])
        except BookError as exc:
            if exc.kind == CROSSED:
                self._dirty[symbol] = True  # applied; held back from the engine while crossed
            else:
                self._book_decision(symbol, sync.lost(time.monotonic_ns(), exc.args[0]))
                return
        crossed = book.crossed
        decision = sync.on_book(time.monotonic_ns(), unknown_removes=unknown_removes if not building else 0,
                                crossed=crossed)
        if decision.phase is BookPhase.WHOLE and self._shown.get(symbol) and not crossed \
                and not self._dirty.get(symbol):
            if changes:
                self._publish(symbol, tuple(changes), snapshot=False)
            self._arm(symbol, decision)
            return
        self._book_decision(symbol, decision)

    def _book_decision(self, symbol: str, decision: Decision) -> None:
        if decision.resubscribe is not None:
            self._shown[symbol] = False
            self._resubscribe(symbol, decision.resubscribe)
            return
        if decision.phase is BookPhase.WHOLE:
            book = self._book.book(symbol)
            if not book.crossed and (not self._shown.get(symbol) or self._dirty.get(symbol)):
                self._dirty[symbol] = False
                self._shown[symbol] = True
                self._publish(symbol, book.snapshot_changes(), snapshot=True)
        self._arm(symbol, decision)

    def _arm(self, symbol: str, decision: Decision) -> None:
        if decision.due_ns is not None:
            self._due[symbol] = decision.due_ns
        else:
            self._due.pop(symbol, None)

    def _publish(self, symbol: str, changes: tuple[tuple[Side, Decimal, Decimal], ...], snapshot: bool) -> None:
        seq = self._book_seq[symbol] = self._book_seq.get(symbol, 0) + 1
        self.sink.on_book(BookUpdate(self.venue, symbol, self.clock.now_ns(), seq, changes, snapshot))

    def _on_trade(self, message: TradeMsg) -> None:
        if message.security not in self._symbols:
            return
        if not self._trade_ids.add(f"{message.security}:{message.match_id}"):
            return  # the last trade again, sent at a resubscribe
        self.sink.on_trade(message.to_trade(self.venue))

    # ---- orders ----------------------------------------------------------------------------
    def submit(self, order: Order) -> None:
        rec = self._orders.add(_Track(order))
        self._by_wire[rec.wire_id] = rec
        try:
            request = self._add_order(order, rec.wire_id)
        except _Refused as refused:
            self._orders.finish(rec, OrderStatus.REJECTED, int(refused.code), refused.reason, later=True)
            return
        queued = self._send(request, partial(self._on_add_answer, rec), partial(self._not_sent, rec))
        if queued is None:
            self._orders.finish(rec, OrderStatus.REJECTED, int(Reject.BACKEND_CONNECTIVITY),
                                f"venue {self.venue!r} is not connected: the order was not sent", later=True)
        else:  # a cancel may take it back until its write begins (waiting for the budget or after it)
            rec.waiting_add = queued

    def _add_order(self, order: Order, wire_id: str) -> AddOrder:
        base = self.fraction_bases.get(order.symbol)
        if base is not None and (order.qty * base) % 1:
            raise _Refused(Reject.INVALID_QUANTITY, f"quantity {order.qty} is finer than {order.symbol}'s step "
                           f"1/{base} (getsymbols fractionbase)")
        market = order.type is OrderType.MARKET
        if market and order.side is Side.BUY:
            raise _Refused(Reject.ORDER_TYPE_NOT_SUPPORTED, "a market buy is sized by fiat amount at MidChains "
                           "(cannot use qty for market buy order): send a marketable limit order")
        tif, expire_ms = self._tif(order, market)
        request = AddOrder(security=order.symbol, side=order.side, order_type="MKT" if market else "LMT", tif=tif,
                           qty=order.qty, price=None if market else order.price, expire_ms=expire_ms,
                           post_only=True if order.post_only else None, client_order_id=wire_id)
        problem = request.problem()
        if problem is not None:
            raise _Refused(Reject.INVALID_ORDER, f"addorder: {problem}")
        return request

    def _tif(self, order: Order, market: bool) -> tuple[str, int | None]:
        tif = order.tif
        if market:
            return ("FOK" if tif is TimeInForce.FOK else "IOC"), None
        if tif is TimeInForce.DAY:
            if order.post_only or self.ws_options.day_tif == "gtc":
                return "GTC", None  # alo is for GTC orders only (001)
            if self.ws_options.day_tif == "refuse":
                raise _Refused(Reject.ORDER_TYPE_NOT_SUPPORTED, "a DAY order (day_tif: refuse)")
            return "GTT", day_expiry(self.clock.now_ns()) // NS_PER_MS
        return {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}[tif], None

    def _on_add_answer(self, rec: _Track, answer: Any) -> None:
        if isinstance(answer, WsRequestError):
            self._orders.mark_unknown(rec, f"addorder: {answer}")
            return
        if isinstance(answer, AddOrderAnswer) and answer.ok and answer.refno:
            self._orders.bind(rec, answer.refno)
            if self._ids is not None:
                self._ids.put(answer.refno, rec.client_id, rec.wire_id)
            if rec.cancel_wanted:
                self._send_cancel(rec)
            return
        text = getattr(answer, "result", "no result")
        self._orders.finish(rec, OrderStatus.REJECTED, self._rejects.code(text), text)

    def _not_sent(self, rec: _Track, why: str) -> None:
        if rec.terminal:
            return
        if not rec.venue_order_id and rec.request_seq == 0:
            self._orders.finish(rec, OrderStatus.REJECTED, int(Reject.BACKEND_CONNECTIVITY), f"order not sent: {why}")
            return
        self._orders.answer(rec, int(Reject.BACKEND_CONNECTIVITY), f"cancel not sent: {why}")

    def _adopt(self, order: Order) -> _Track | None:
        """An order an earlier instance placed (engine restart): tracked from the engine's record."""
        if not order.venue_order_id or order.is_terminal:
            return None
        rec = _Track(order)
        rec.acked = True
        rec.cum_qty = order.cum_qty
        rec.status = order.live_status()
        self._orders.add(rec)
        self._by_wire[rec.wire_id] = rec
        return rec

    def cancel(self, order: Order) -> None:
        rec = self._orders.get(order.client_id) or self._adopt(order)
        if rec is None:
            self._orders.untracked_update(order.client_id, OrderStatus.REJECTED, int(Reject.ORDER_NOT_OPEN),
                                          "cancel refused: unknown order", later=True)
            return
        if rec.terminal:
            return
        waiting = rec.waiting_add
        if waiting is not None and self._take_back(waiting):
            # its addorder still waits for the order budget or, after a stall, in the write hold:
            # it never leaves, so the order is cancelled here, with no cancelorder and no moment
            # live at the venue
            rec.waiting_add = None
            self._orders.taken_back(rec, "its addorder")
            return
        if not rec.venue_order_id:
            rec.cancel_wanted = True  # sent when the addorder answer brings the refno
            return
        self._send_cancel(rec)

    def _send_cancel(self, rec: _Track) -> None:
        rec.cancel_wanted = False
        if not self._send(CancelOrder(security=rec.symbol, refno=rec.venue_order_id),
                          partial(self._on_cancel_answer, rec), partial(self._not_sent, rec)):
            self._orders.answer(rec, int(Reject.BACKEND_CONNECTIVITY),
                                f"cancel not sent: venue {self.venue!r} is not connected", later=True)

    def _on_cancel_answer(self, rec: _Track, answer: Any) -> None:
        if isinstance(answer, CancelAnswer) and answer.ok:
            return  # the order push Cancelled follows
        if rec.terminal:
            return
        text = str(answer) if isinstance(answer, WsRequestError) else getattr(answer, "result", "no result")
        code = int(Reject.BACKEND_CONNECTIVITY) if isinstance(answer, WsRequestError) else self._rejects.code(text)
        self._orders.answer(rec, code, f"cancel refused: {text}")
        if text == "failed":  # 001: no reason; the order's state is the venue's list's
            self._tasks.spawn(self._reconcile_quietly, self._client.epoch, name=f"midchains-ws-reconcile-{self.venue}")

    def amend(self, order: Order, price: Decimal | None, qty: Decimal | None) -> None:
        """001's WebSocket API has no amend: refused 2007, the order unchanged."""
        rec = self._orders.get(order.client_id)
        reason = "replace refused: MidChains' WebSocket API has no amend (cancel and place anew)"
        if rec is None:
            self._orders.untracked_update(order.client_id, order.live_status(), int(Reject.ORDER_TYPE_NOT_SUPPORTED),
                                          reason, order.venue_order_id, later=True)
            return
        self._orders.answer(rec, int(Reject.ORDER_TYPE_NOT_SUPPORTED), reason, later=True)

    def _rec_of(self, refno: str, wire_id: str | None) -> _Track | None:
        rec = self._orders.by_venue_id(refno)
        if rec is None and wire_id:
            rec = self._by_wire.get(wire_id)
            if rec is not None:
                self._orders.bind(rec, refno)
        return rec

    def _client_id(self, wire_id: str | None, refno: str = "") -> str:
        """Our client id of a venue order. ``querymultiorders`` records carry no ``clientorderid``
        (001's sample): for an order this instance does not track (placed before a restart) it is
        found through what the venue said with both (the login's order pushes, ``sale`` records)."""
        rec = self._rec_of(refno, wire_id) if refno else self._by_wire.get(wire_id or "")
        if rec is not None:
            return rec.client_id
        known = self._ids.ids.get(refno) if refno and self._ids is not None else None
        if known is not None:
            return known[0]
        if not wire_id and refno:
            wire_id = self._wire_of.get(refno)
        return wire_id or ""

    def _learn(self, refno: str, wire_id: str | None) -> None:
        if refno and wire_id and refno not in self._wire_of:
            self._wire_of[refno] = wire_id
            if len(self._wire_of) > FOREIGN_MEMORY:
                del self._wire_of[next(iter(self._wire_of))]

    def _on_order(self, message: OrderMsg) -> None:
        rec = self._rec_of(message.refno, message.client_order_id)
        if rec is None:
            self._learn(message.refno, message.client_order_id)
            return
        self._apply_order(rec, message)

    def _apply_order(self, rec: _Track, message: OrderMsg) -> None:
        self._orders.mark_known(rec)
        status = message.state
        filled = message.exec_qty or ZERO
        text = message.text or ""
        if status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED):
            self._orders.ack(rec)
        elif status is OrderStatus.FILLED:
            self._orders.finish_after_fills(rec, OrderStatus.FILLED, filled, since=time.monotonic())
        elif status is OrderStatus.CANCELLED:
            final = OrderStatus.EXPIRED if "expired" in text.lower() else OrderStatus.CANCELLED
            code = self._rejects.code(text) if text and final is OrderStatus.CANCELLED else None
            self._orders.finish_after_fills(rec, final, filled, code, text, since=time.monotonic())
        elif status is OrderStatus.REJECTED:
            if rec.acked:  # accepted, then refused (a wash sale found at matching): it is gone
                self._orders.finish_after_fills(rec, OrderStatus.CANCELLED, filled, self._rejects.code(text), text,
                                                since=time.monotonic())
            else:
                self._orders.finish(rec, OrderStatus.REJECTED, self._rejects.code(text), text or "rejected")
        else:
            self.counters["order_state_unknown"] += 1

    def _on_sale(self, message: SaleMsg, fee_known: bool = False) -> None:
        rec = self._rec_of(message.refno, message.client_order_id)
        if rec is None:
            self._learn(message.refno, message.client_order_id)
        fill = self._fill(message, rec.client_id if rec is not None else self._client_id(message.client_order_id),
                          fee_known)
        if rec is None:
            self._orders.untracked_fill(fill)
            return
        self._orders.fill(rec, fill)

    def _fill(self, message: SaleMsg, client_id: str, fee_known: bool = False) -> Fill:
        fill = message.to_fill(self.venue, client_id)
        if fee_known and message.fee is not None:
            fill.fee = fee_in_quote(message)
        return fill

    # ---- reconciliation --------------------------------------------------------------------
    async def _reconcile_quietly(self, epoch: int) -> None:
        try:
            await self._reconcile(epoch)
        except WsRequestError as exc:
            log.info("midchains_ws %s: reconciliation after login not finished: %s", self.venue, exc)

    async def _reconcile(self, epoch: int) -> None:
        """The venue's word on every order this instance tracks: fills missed while away, the
        states, and the orders whose ``addorder`` answer was lost (not listed: never placed)."""
        if not self._client.current(epoch):
            return
        tracked = self._orders.open_records()
        seqs = {id(rec): rec.request_seq for rec in tracked}
        if tracked:
            for sale in await self._records(QueryTrade(), epoch):
                if self._rec_of(sale.refno, sale.client_order_id) is not None:
                    self._on_sale(sale, fee_known=True)
        listed = await self._records(QueryMultiOrder(), epoch)
        seen: set[str] = set()
        for order in listed:
            rec = self._rec_of(order.refno, order.client_order_id)
            if rec is not None:
                seen.add(rec.client_id)
                if not rec.terminal:
                    self._apply_order(rec, order)
        for rec in tracked:
            if rec.terminal or rec.client_id in seen:
                continue
            if not rec.venue_order_id and (rec.unknown or 0 < seqs[id(rec)]):
                if not any(r.message.TYPE == "addorder" and r.message.client_order_id == rec.wire_id
                           for r in self._outstanding.values()):
                    code, reason = self._salvaged.pop(rec.wire_id, (
                        int(Reject.BACKEND_CONNECTIVITY), "the venue does not list the order: its addorder never "
                        "reached it"))
                    self._orders.finish(rec, OrderStatus.REJECTED, code, reason)
        try:
            for position in await self._records(QueryPos(), epoch):
                self.positions[position.security] = position.curpos
        except WsRequestError as exc:
            log.info("midchains_ws %s: querypos: %s", self.venue, exc)

    async def query_open_orders(self) -> list[VenueOrder]:
        records = await self._records(QueryMultiOrder())
        return [self._venue_order(o) for o in records if o.state in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)]

    async def query_order(self, client_id: str) -> VenueOrder | None:
        rec = self._orders.get(client_id)
        wire_id = rec.wire_id if rec is not None else wire_root(client_id)
        refno = rec.venue_order_id if rec is not None else ""
        security = rec.symbol if rec is not None else None
        if not refno and self._ids is not None:
            refno = self._ids.refno_of(client_id)
        if not refno:
            refno = next((r for r, w in self._wire_of.items() if w == wire_id), "")
        for order in await self._records(QueryMultiOrder(security=security)):
            if (refno and order.refno == refno) or (order.client_order_id and order.client_order_id == wire_id):
                return self._venue_order(order)
        return None

    async def query_fills(self, since_ns: int) -> list[Fill]:
        since_ms = since_ns // NS_PER_MS
        sales = await self._records(QueryTrade(from_ms=since_ms - since_ms % 1000 if since_ms else None))
        for sale in sales:
            if self._orders.by_venue_id(sale.refno) is None:
                self._learn(sale.refno, sale.client_order_id)
        return [self._fill(s, self._client_id(s.client_order_id, s.refno), fee_known=True) for s in sales
                if (s.ts_ms or 0) * NS_PER_MS >= since_ns]

    def _venue_order(self, order: OrderMsg) -> VenueOrder:
        return order.to_venue_order(self.venue, self._client_id(order.client_order_id, order.refno))

    # ---- reports ---------------------------------------------------------------------------
    def bad_input(self) -> dict[str, int]:
        return dict(self._bad.counts)

    def stats(self) -> dict[str, int]:
        out = {"messages_in": self.messages_in, "messages_out": self.messages_out,
               "reconnects": self._client.reconnects}
        out.update(self.counters)
        out.update({f"unknown_reject_texts.{k}": v for k, v in self._rejects.unknown.items()})
        return out

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "venue": self.venue, "url": self.ws_options.url, "userid": self.ws_options.userid,
                "connection": self._client.describe(), "fraction_bases": dict(self.fraction_bases),
                "positions": {k: str(v) for k, v in self.positions.items()},
                "books": {s: self._sync[s].phase.value for s in self._sync}}


class _Refused(Exception):
    def __init__(self, code: Reject, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def fee_in_quote(message: SaleMsg) -> Decimal | None:
    """``comm`` in the pair's quote currency, the engine's fee unit: as is when ``commsecurity`` is
    the quote asset (or not said), times the execution price when it is the pair's base asset (001's
    sample: ``LTC`` on an LTCUSD buy); None for any other asset (the engine then charges its own
    schedule rather than a fee in a currency it cannot value)."""
    fee, asset, symbol = message.fee, message.fee_asset, message.security
    if fee is None:
        return None
    if not asset or (symbol.endswith(asset) and not symbol.startswith(asset)):
        return fee
    if symbol.startswith(asset):
        return fee * message.price
    return None


def _book_symbol(raw: str) -> str | None:
    """The pair an unreadable book message names, if it plainly does (so only that book resyncs)."""
    at = raw.find('"security"')
    if at < 0:
        return None
    rest = raw[at + 10:at + 60].lstrip(" :")
    if not rest.startswith('"'):
        return None
    end = rest.find('"', 1)
    return rest[1:end] if end > 0 else None

