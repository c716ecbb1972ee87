"""A local Optimus REST server: the broker's API as VENUES.md section 1 assumes it, served on the
simulated venue (:class:`~adapters.sim.venue.SimVenue`: matching engine + synthetic market), with
webhook delivery and faults on request.

What it enforces, as the broker document says Optimus does before anything reaches Vision Max:
market hours (2006; OPT-6: new orders in pre-open, continuous and post-close, there limit orders at
the closing price only), board lots (2002), the ±10% circuit band and the tick grid (2003), order
types (2007; MIT/MTL are listed by the document but not emulated here), short selling (2005: a
sell needs holdings), buying power (2004; T+2: sale proceeds stay unsettled), idempotency keys
(3002), JWT lifetimes (1001/1002) and the rate limits of document section 11 (3001:
authentication 5/minute per IP, trading 100/second per user). Every answer uses the document's
envelope (section 12), with the 4-digit code in ``error_details.error_code`` (OPT-4).

It deliberately does not import the client's codec (adapters/optimus/codec.py): it writes the wire
format from the same assumptions independently, so a field the adapter misreads is caught by the
tests instead of being mirrored. Only the HTTP transport class is shared.

Orders are placed on a :class:`~adapters.sim.venue.SimVenue` (its own, or one passed in and shared
with the PSX Live Feed sandbox), which this broker listens to: the venue's execution reports
(acknowledgements, fills, cancels and rejects) become order state and signed webhooks
(``order.confirmed``, ``order.execution``, ``order.cancelled``, ``order.rejected``).

Session phases: ``sessions="schedule"`` follows the broker document's hours with the shared
:class:`adapters.sim.sessions.SessionFollower`; ``"external"`` leaves them to the caller (the
combined PSX sandbox, adapters/psx/sandbox.py, drives one follower for the simulated venue and
the feed); ``"always_open"`` is continuous trading all the time.

Faults (``inject(kind, ...)`` or ``POST /sandbox/faults {"kind": ..., ...}``), from the simulated
venue's one vocabulary (:mod:`adapters.sim.faults`; older names such as ``error_5xx``,
``lose_webhooks``, ``duplicate_webhooks`` still read); the others are refused by name:

``5xx`` (count, status, process)         the next requests answer 5xx (9001), processed first if asked
``slow`` (count, delay_s)               the next answers come late (after processing)
``garbage`` (count)                     the next answers are not JSON (HTTP 200)
``lost_webhooks`` (count, event)        the next events (of that kind only, if given) are never delivered
``duplicate_reports`` (count)           the next events are delivered twice
``expire_tokens`` (refresh)             every access token (and refresh token) expires now
``drop_connections``                    every open client socket is aborted now
``outage`` (seconds)                    every request's socket is aborted for a while

Account webhooks on request (``announce(event, data)`` or ``POST /sandbox/events {"event":
"margin.call", "data": {...}}``): ``margin.call`` and ``account.alert``, as 000 lists them.

Every assumption beyond document 000 is a named flag of :class:`OptimusExtensions`
(``SandboxSettings.extensions``): all on by default, all off in document-literal mode
(``OptimusExtensions.document_literal()``, ``--document-literal``; issue 20).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import secrets
import sys
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import httpx

from adapters.kit.credentials import MissingSecret, read_secret
from adapters.kit.wirejson import Reader
from adapters.optimus.webhooks import HttpRequest, HttpResponse, HttpServer
from adapters.sim.cli import Port, VenueSandboxCommand, free_ports, sandbox_clock, until_stopped
from adapters.sim.extensions import Extensions, add_extension_arguments, extensions_from_args, extensions_line
from adapters.sim.faults import (
    FaultTimers,
    fault_help,
    spec_reader,
)
from adapters.sim.market import MarketOptions
from adapters.sim.restfaults import HttpFaults, json_object
from adapters.sim.sessions import SessionFollower
from adapters.sim.venue import SimVenue
from engine.model import (
    Fill,
    Instrument,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Phase,
    Side,
    TimeInForce,
    Trade,
)
from engine.venue import SandboxLink, SandboxStartError, venue_from_config
from engine.venue.clock import NS_PER_S, Clock, WallClock
from engine.venue.ratelimit import RateBucket

__all__ = ["COMMAND", "DOC_HOLDINGS", "DOC_INSTRUMENTS", "OptimusExtensions", "OptimusSandbox", "SandboxSettings",
           "main"]

log = logging.getLogger("engine.optimus.sandbox")
#: what clients send is read as the adapter reads the venue: one bounded, exact reader (adapters.kit.wirejson)
_READ_JSON = Reader().loads

NS_PER_MS = 1_000_000
ZERO = Decimal(0)
API = "/v1"
#: arrival times the sandbox keeps for a test to count windows in (a day-long run stays bounded)
ARRIVALS_KEPT = 100_000

# Document "YOUR HOLDINGS" card (symbol, price, quantity). The prices serve as previous closes.
DOC_HOLDINGS: dict[str, tuple[Decimal, Decimal]] = {
    "MEBL": (Decimal("187.50"), Decimal(1000)),
    "SYS": (Decimal("432.10"), Decimal(500)),
    "ENGRO": (Decimal("321.75"), Decimal(800)),
    "OGDC": (Decimal("109.30"), Decimal(2000)),
    "PSO": (Decimal("75.12"), Decimal(3000)),
    "KEL": (Decimal("102.50"), Decimal(1500)),
}
# Document "Lot Size Requirements": "Example: MEBL lot size = 500 shares"; the others are not given
# (OPT-6) and the holdings (ENGRO 800) show lots are per symbol: one share here.
DOC_INSTRUMENTS: tuple[Instrument, ...] = tuple(
    Instrument(symbol, "PSX", Decimal("0.01"), Decimal(500) if symbol == "MEBL" else Decimal(1), price)
    for symbol, (price, _qty) in DOC_HOLDINGS.items()
)

_ERROR_TEXT = {  # document section 13, for the sandbox's own messages
    1001: "Invalid token", 1002: "Token expired", 1003: "Insufficient permissions",
    2001: "Invalid symbol", 2002: "Invalid quantity (lot size)", 2003: "Invalid price (outside circuit breaker)",
    2004: "Insufficient buying power", 2005: "Position not held (for sell orders)", 2006: "Market closed",
    2007: "Order type not supported", 2008: "Position limit exceeded", 2009: "Sector exposure limit exceeded",
    2010: "Circuit breaker triggered", 3001: "Rate limit exceeded", 3002: "Idempotency key reused",
    4001: "Unsettled funds not available", 4002: "T+2 settlement in progress",
    9001: "Backend connectivity issue", 9002: "Order rejected by exchange",
}
_OPEN = frozenset({"pending", "open", "partially_filled"})
#: 000 lists post-close (15:30-15:35) among the market-hours sessions orders are validated against,
#: and PSX trades there at the closing price only (PSX_RULES 3): the engine's broker-doc profile and
#: this broker agree (issue 20: the sandbox used to refuse every post-close order)
_ACCEPTS_NEW = frozenset({Phase.PRE_OPEN, Phase.OPEN, Phase.POST_CLOSE})
#: the account webhooks of 000 ("Webhooks") the sandbox sends on request, with the document's words
ACCOUNT_WEBHOOKS = {"margin.call": "Margin call threshold hit", "account.alert": "Deposit/withdrawal status"}
#: the kinds of :data:`adapters.sim.faults.FAULT_KINDS` this broker plays
SUPPORTED_FAULTS = frozenset({
    "5xx", "slow", "garbage", "lost_webhooks", "duplicate_reports", "expire_tokens", "drop_connections", "outage",
})


# --------------------------------------------------------------------------------------------
# The sandbox's own JSON and time writing (independent of the client codec on purpose)


def _json_text(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, Decimal):
        return format(value, "f")  # a JSON number, exact, never exponent notation
    if isinstance(value, int | str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json_text(v) for v in value) + "]"
    raise TypeError(f"sandbox cannot write {type(value).__name__}")


def _iso(ts_ns: int) -> str:
    moment = datetime.fromtimestamp(ts_ns // NS_PER_S, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ts_ns % NS_PER_S // NS_PER_MS:03d}Z"


def _read_iso(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.timestamp()) * NS_PER_S + moment.microsecond * 1000


class _Refusal(Exception):
    """An error envelope to answer with."""

    def __init__(self, http_status: int, message: str, error_code: int | None = None, **details: Any) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.error_code = error_code
        self.details = details


@dataclass(frozen=True)
class OptimusExtensions(Extensions):
    """The Optimus sandbox's assumptions beyond document 000, one flag each (VENUES.md 1.13).

    000 names the REST base, "ALL POST", the portfolio paths, ``/orders``, JWT with 1-hour access
    and 7-day refresh tokens, the webhook event names, the envelope, the error codes and the PSX
    rules, but no request or answer body, no login, cancel or status path and no webhook payload.
    Both modes therefore keep one way to do each thing an adapter must do, in the project's
    dialect (OPT-3, OPT-5): log in and refresh (``/auth/login``, ``/auth/refresh``: 000 has
    "Authentication APIs" and refresh tokens), place (``/orders`` with ``idempotency_key``),
    cancel (``/orders/cancel``: 000 has "Order cancelled by user"), ask one order's state
    (``/orders/status``: without it a lost answer could never be resolved), the portfolio reads,
    and webhooks ``{"event", "data": {order fields}}``. Every second way and every convenience
    is one of these flags. MIT and MTL (listed by 000) are refused with 2007 in both modes: the
    sandbox does not emulate them (OPT-7)."""

    error_code_field: bool = True
    """OPT-4: the 4-digit code in ``error_details.error_code``, the envelope's ``code`` the HTTP
    status. Literal: 000's envelope has one code field and section 13 lists "error codes", so the
    4-digit code is ``code`` (the HTTP status stays on the status line); ``error_details`` holds
    only details."""
    webhook_signature: bool = True
    """OPT-5: webhooks signed ``X-Optimus-Signature: t=<ms>,v1=<HMAC-SHA256>``. Literal: unsigned
    (000 has no signature scheme). An adapter cannot tell a literal webhook from a forged one: the
    Optimus adapter refuses them (401, counted) and learns every order's state by polling."""
    event_ids: bool = True
    """OPT-5: ``event_id`` and ``occurred_at`` in the payload and the ``X-Optimus-Event-Id``
    header (de-duplication of at-least-once delivery). Literal: ``{"event", "data"}`` only."""
    order_listing: bool = True
    """OPT-3: ``POST /orders/open`` (every working order) and ``POST /orders/executions`` (fills
    since a time). Literal: 404; one order's state (``/orders/status``, with its executions) is
    the only query."""
    idempotency_header: bool = True
    """OPT-8: the idempotency key read from the ``Idempotency-Key`` header as well as the body.
    Literal: the body field ``idempotency_key`` only (000: snake_case JSON properties)."""
    client_id_dedup: bool = True
    """OPT-8: a repeated ``client_order_id`` is refused with 3002 like a repeated key. Literal: only
    the idempotency key is checked (000: "Idempotency Keys: Prevent duplicate order submissions")."""
    session_rules: bool = True
    """OPT-6: pre-open takes limit DAY orders only, post-close limit orders at the closing price
    only, and no cancel is taken during the opening match. Literal: 000's "All orders validated
    against market hours": any order in pre-open, continuous and post-close, 2006 outside them."""


@dataclass
class SandboxSettings:
    """Everything the sandbox can be told. Secrets (passwords, the webhook secret) are values here:
    ``main`` reads them from the environment or files; tests pass throwaway ones."""

    host: str = "127.0.0.1"
    port: int = 0
    users: dict[str, str] = field(default_factory=dict)  # username -> password
    webhook_url: str | None = None
    webhook_secret: bytes = b""
    access_ttl_s: int = 3600  # document section 11: 1 hour
    refresh_ttl_s: int = 7 * 24 * 3600  # document section 11: 7 days
    auth_per_minute: int = 5  # document section 11, per IP
    trading_per_second: int = 100  # document section 11, per user
    webhook_attempts: int = 5
    webhook_retry_s: Decimal = Decimal("0.2")
    webhook_timeout_s: Decimal = Decimal(2)
    sessions: Literal["always_open", "schedule", "external"] = "always_open"
    cash: Decimal = Decimal(10_000_000)
    holdings: dict[str, Decimal] = field(default_factory=lambda: {s: q for s, (_p, q) in DOC_HOLDINGS.items()})
    market: bool = True
    market_step_s: Decimal = Decimal(1)
    seed: int = 0
    #: what the broker does beyond document 000 (everyday: all of it; issue 20)
    extensions: OptimusExtensions = field(default_factory=OptimusExtensions.everyday)


class _Order:
    """One order as the broker keeps it."""

    __slots__ = (
        "order_id", "client_order_id", "user", "symbol", "side", "order_type", "tif", "quantity", "price",
        "status", "filled", "notional", "reject_code", "reason", "created_ns", "updated_ns", "executions",
        "placed", "reserve_unit", "held",
    )

    def __init__(self, order_id: str, client_order_id: str, user: str, body: dict[str, Any], now: int) -> None:
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.user = user
        self.symbol = str(body.get("symbol", ""))
        self.side = str(body.get("side", ""))
        self.order_type = str(body.get("order_type", "limit"))
        self.tif = str(body.get("time_in_force", "day"))
        self.quantity: Decimal = body["quantity"]
        self.price: Decimal | None = body.get("price")
        self.status = "pending"
        self.filled = ZERO
        self.notional = ZERO
        self.reject_code: int | None = None
        self.reason = ""
        self.created_ns = now
        self.updated_ns = now
        self.executions: list[dict[str, Any]] = []
        self.placed = False  # sent to the simulated venue (past the broker's own checks)
        self.reserve_unit = ZERO  # cash held per unfilled share of a buy
        self.held = False  # its unfilled part counts against buying power / holdings

    def view(self, with_executions: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side,
            "order_type": self.order_type,
            "time_in_force": self.tif,
            "quantity": self.quantity,
            "price": self.price,
            "status": self.status,
            "filled_quantity": self.filled,
            "remaining_quantity": self.quantity - self.filled,
            "average_price": (self.notional / self.filled).quantize(Decimal("0.0001")) if self.filled else None,
            "reject_code": self.reject_code,
            "reason": self.reason,
            "created_at": _iso(self.created_ns),
            "updated_at": _iso(self.updated_ns),
        }
        if with_executions:
            data["executions"] = [
                {k: e[k] for k in ("execution_id", "price", "quantity", "executed_at")} for e in self.executions
            ]
        return data



@dataclass
class _Token:
    user: str
    expires_ns: int
    kind: str


class OptimusSandbox:
    """The Optimus REST API on localhost. ``async with OptimusSandbox(...) as sandbox`` starts it;
    ``sandbox.base_url`` is what the adapter's ``base_url`` option takes."""

    def __init__(
        self,
        settings: SandboxSettings | None = None,
        *,
        instruments: Iterable[Instrument] = DOC_INSTRUMENTS,
        clock: Clock | None = None,
        sim: SimVenue | None = None,
    ) -> None:
        self.settings = settings = settings if settings is not None else SandboxSettings()
        self.clock = clock if clock is not None else WallClock()
        self.instruments = {i.symbol: i for i in instruments}
        if sim is None:
            market = MarketOptions(enabled=settings.market, step_interval_s=settings.market_step_s)
            sim = SimVenue("PSX", self.instruments.values(), self.clock, market=market, cancel_on_disconnect=False,
                           seed=settings.seed)
            self._owns_sim = True
        else:
            self._owns_sim = False
        #: the simulated exchange this broker routes to; the broker hears its reports as a listener
        self.sim = sim
        sim.add_listener(self)
        self.webhook_url = settings.webhook_url
        #: asked at every delivery instead of ``webhook_url`` when set: a receiver whose address is
        #: known only once it listens (an engine's adapter in this process on port 0)
        self.webhook_url_source: Callable[[], str | None] | None = None
        self._server = HttpServer(self._handle, settings.host, settings.port, name="optimus sandbox")
        self._ids = itertools.count(1)
        self._request_ids = itertools.count(1)
        self._event_ids = itertools.count(1)
        self._exec_ids = itertools.count(1)
        self._tokens: dict[str, _Token] = {}
        self._orders: dict[str, _Order] = {}
        self._by_client: dict[tuple[str, str], _Order] = {}
        self._keys: dict[tuple[str, str], str] = {}  # (user, idempotency key) -> order id
        self._executions: list[dict[str, Any]] = []
        self._ip_buckets: dict[str, RateBucket] = {}
        self._user_buckets: dict[str, RateBucket] = {}
        #: when each authenticated (trading-budget) request arrived, on the sandbox's clock: a test
        #: counts the requests in every sliding window itself, whatever the bucket above decides
        self.trading_arrivals: deque[int] = deque(maxlen=ARRIVALS_KEPT)
        self.cash = settings.cash
        self._reserved = ZERO  # cash held for the unfilled part of open buys
        self._selling: dict[str, Decimal] = {}  # shares held for the unfilled part of open sells
        self.unsettled = ZERO
        self.holdings: dict[str, Decimal] = dict(settings.holdings)
        self.last_price: dict[str, Decimal] = {s: i.previous_close for s, i in self.instruments.items()}
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._follower: SessionFollower | None = None
        #: set by a combined sandbox (adapters/psx/sandbox.py): ``POST /sandbox/faults`` then goes
        #: through it, so one control endpoint reaches the feed's faults as well as these
        self.fault_router: Callable[..., dict[str, Any]] | None = None
        self.counts: Counter[str] = Counter()
        self.faults = HttpFaults("optimus", SUPPORTED_FAULTS, self.clock, self.counts, log,
                                 lambda: self._tokens.values(), self._server.drop_connections)
        self.webhooks_sent: list[dict[str, Any]] = []  # every delivery attempt that got a 2xx, in order

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        if self._owns_sim:
            self.sim.start()
            self.sim.subscribe_book(list(self.instruments))  # public trades give the holdings their last price
        mode = self.settings.sessions
        if mode == "always_open":
            self.sim.always_open()
        elif mode == "schedule":
            from engine.venue.sessions import SessionSchedule

            # the shipped default profile: the broker document's hours; on the clock's own timers,
            # so a scaled clock runs the day at its speed (the follower the feed sandbox uses too)
            self._follower = SessionFollower(SessionSchedule(), self.clock, (self.sim.on_session,))
            self._follower.start()
        await self._server.start()
        self._worker = asyncio.create_task(self._deliver_loop())
        log.info("optimus sandbox on %s (sessions %s)", self.base_url, mode)

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._worker
            self._worker = None
        if self._follower is not None:
            self._follower.stop()
            self._follower = None
        await self._server.close()
        if self._owns_sim:
            self.sim.stop()

    async def __aenter__(self) -> OptimusSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return self._server.url + API

    def order(self, order_id_or_client_id: str) -> dict[str, Any] | None:
        """The broker's view of one order (tests read it)."""
        order = self._orders.get(order_id_or_client_id)
        if order is None:
            order = next((o for o in self._orders.values() if o.client_order_id == order_id_or_client_id), None)
        return None if order is None else order.view(with_executions=True)

    def working_orders(self) -> list[str]:
        """Client order ids of the orders still working at the broker (an engine that stopped
        cleanly leaves none)."""
        return [o.client_order_id for o in self._orders.values() if o.status in _OPEN]

    # ---- faults --------------------------------------------------------------------------
    def inject(self, kind: str, count: int = 1, **params: Any) -> None:
        """Inject a fault (see the module docstring); ValueError for a kind this broker does not
        play or a parameter it does not take."""
        self.faults.inject(kind, count, **params)

    # ---- HTTP ----------------------------------------------------------------------------
    def _envelope_ok(self, data: Any, status: int = 200) -> HttpResponse:
        body = {"status": "success", "code": status, "data": data, "request_id": self._request_id()}
        return HttpResponse(status, _json_text(body).encode())

    def _envelope_error(self, refusal: _Refusal) -> HttpResponse:
        details = dict(refusal.details)
        code = refusal.http_status
        if refusal.error_code is not None:
            if self.settings.extensions.error_code_field:
                details = {"error_code": refusal.error_code, **details}  # OPT-4
            else:
                code = refusal.error_code  # literal: the envelope's one code field
        body = {
            "status": "error", "code": code, "message": refusal.message,
            "error_details": details, "request_id": self._request_id(),
        }
        return HttpResponse(refusal.http_status, _json_text(body).encode())

    def _request_id(self) -> str:
        return f"req-{next(self._request_ids):08d}"

    async def _handle(self, request: HttpRequest) -> HttpResponse | None:
        return await self.faults.serve(request, control=self._control, route=self._answer,
                                       fault_answer=lambda params, processed: self._fault_answer(params),
                                       garbage=b"<html><body>502 Bad Gateway</body>")

    async def _answer(self, request: HttpRequest) -> HttpResponse:
        try:
            return self._route(request)
        except _Refusal as refusal:
            return self._envelope_error(refusal)

    def _fault_answer(self, params: dict[str, Any]) -> HttpResponse:
        status = int(params.get("status", 503))
        return self._envelope_error(_Refusal(status, _ERROR_TEXT[9001] + " (injected)", 9001))

    async def _control(self, request: HttpRequest) -> HttpResponse:
        """The sandbox's own control plane (loopback only, no auth): faults, account webhooks
        (``/sandbox/events``) and the webhook URL."""
        try:
            body = self._body(request)
            if request.path == "/sandbox/faults":
                kind = str(body.pop("kind", ""))
                if self.fault_router is not None:
                    return self._envelope_ok(self.fault_router(kind, **body))
                count = int(body.pop("count", 1))
                self.inject(kind, count, **body)
                return self._envelope_ok({"kind": kind, "count": count})
            if request.path == "/sandbox/events":
                data = body.get("data")
                if data is not None and not isinstance(data, dict):
                    raise _Refusal(400, "data must be a JSON object")
                return self._envelope_ok({"event_id": self.announce(str(body.get("event", "")), data)})
            if request.path == "/sandbox/webhook":
                url = body.get("url")
                if not isinstance(url, str) or not url.startswith("http"):
                    raise _Refusal(400, "url must be an http(s) URL")
                self.webhook_url = url
                return self._envelope_ok({"url": url})
            raise _Refusal(404, f"no such control path {request.path}")
        except ValueError as exc:
            return self._envelope_error(_Refusal(400, str(exc)))
        except _Refusal as refusal:
            return self._envelope_error(refusal)

    @staticmethod
    def _body(request: HttpRequest) -> dict[str, Any]:
        if request.method != "POST":
            raise _Refusal(405, "every endpoint is POST (document: ALL POST)")
        try:
            return json_object(request.body)
        except ValueError as exc:
            raise _Refusal(400, str(exc)) from None

    def _route(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        if not path.startswith(API + "/"):
            raise _Refusal(404, f"no such endpoint {path}")
        path = path[len(API):]
        body = self._body(request)
        if path == "/auth/login":
            return self._login(request, body)
        if path == "/auth/refresh":
            return self._refresh(request, body)
        handlers = {
            "/orders": self._place,
            "/orders/cancel": self._cancel,
            "/orders/status": self._status,
            "/portfolio/summary": self._summary,
            "/portfolio/holdings": self._holdings,
            "/account/buying-power": self._buying_power,
        }
        if self.settings.extensions.order_listing:
            handlers |= {"/orders/open": self._open_orders, "/orders/executions": self._list_executions}
        handler = handlers.get(path)
        if handler is None:
            raise _Refusal(404, f"no such endpoint {request.path}")
        user = self._authenticate(request)
        bucket = self._user_buckets.get(user)
        if bucket is None:
            bucket = self._user_buckets[user] = RateBucket(
                f"user {user}", self.settings.trading_per_second, Decimal(1), None, self.clock
            )
        self.trading_arrivals.append(self.clock.now_ns())
        if not bucket.try_take():
            self.counts["rate_limited"] += 1
            raise _Refusal(429, _ERROR_TEXT[3001], 3001, limit="100 requests per second per user")
        return handler(request, user, body)

    # ---- authentication (OPT-10) ---------------------------------------------------------
    def _auth_budget(self, request: HttpRequest) -> None:
        bucket = self._ip_buckets.get(request.peer)
        if bucket is None:
            bucket = self._ip_buckets[request.peer] = RateBucket(
                f"ip {request.peer}", self.settings.auth_per_minute, Decimal(60), None, self.clock
            )
        if not bucket.try_take():
            raise _Refusal(429, _ERROR_TEXT[3001], 3001, limit="5 requests per minute per IP")

    def _issue(self, user: str, kind: str, ttl_s: int) -> str:
        now = self.clock.now_ns()
        header = {"alg": "HS256", "typ": "JWT"}
        payload = {"sub": user, "typ": kind, "iat": now // NS_PER_S, "exp": now // NS_PER_S + ttl_s,
                   "jti": f"{kind}-{next(self._ids)}"}
        signing = b".".join(_b64(json.dumps(part).encode()) for part in (header, payload))
        signature = hmac.new(self.settings.webhook_secret or b"sandbox", signing, hashlib.sha256).digest()
        token = (signing + b"." + _b64(signature)).decode()
        self._tokens[token] = _Token(user, now + ttl_s * NS_PER_S, kind)
        return token

    def _token_answer(self, user: str, refresh: str | None) -> HttpResponse:
        s = self.settings
        access = self._issue(user, "access", s.access_ttl_s)
        refresh_token = refresh if refresh is not None else self._issue(user, "refresh", s.refresh_ttl_s)
        left = (self._tokens[refresh_token].expires_ns - self.clock.now_ns()) // NS_PER_S
        return self._envelope_ok({
            "access_token": access, "refresh_token": refresh_token, "token_type": "Bearer",
            "expires_in": s.access_ttl_s, "refresh_expires_in": max(0, left),
        })

    def _login(self, request: HttpRequest, body: dict[str, Any]) -> HttpResponse:
        self._auth_budget(request)
        user = body.get("username")
        password = body.get("password")
        known = self.settings.users.get(user) if isinstance(user, str) else None
        if known is None or not isinstance(password, str) or not hmac.compare_digest(known, password):
            raise _Refusal(401, "invalid credentials", 1001)
        self.counts["logins"] += 1
        return self._token_answer(user, None)

    def _refresh(self, request: HttpRequest, body: dict[str, Any]) -> HttpResponse:
        self._auth_budget(request)
        token = self._tokens.get(str(body.get("refresh_token", "")))
        if token is None or token.kind != "refresh":
            raise _Refusal(401, _ERROR_TEXT[1001], 1001)
        if self.clock.now_ns() >= token.expires_ns:
            raise _Refusal(401, "refresh token expired", 1002)
        self.counts["refreshes"] += 1
        return self._token_answer(token.user, str(body["refresh_token"]))

    def _authenticate(self, request: HttpRequest) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        token = self._tokens.get(value) if scheme.lower() == "bearer" else None
        if token is None or token.kind != "access":
            raise _Refusal(401, _ERROR_TEXT[1001], 1001)
        if self.clock.now_ns() >= token.expires_ns:
            raise _Refusal(401, _ERROR_TEXT[1002], 1002)
        return token.user

    # ---- orders --------------------------------------------------------------------------
    def _key(self, request: HttpRequest, body: dict[str, Any]) -> Any:
        """The idempotency key: the body field, or (OPT-8, ``idempotency_header``) the header."""
        header = request.headers.get("idempotency-key") if self.settings.extensions.idempotency_header else None
        return header or body.get("idempotency_key")

    def _place(self, request: HttpRequest, user: str, body: dict[str, Any]) -> HttpResponse:
        key = self._key(request, body)
        if not isinstance(key, str) or not key:
            raise _Refusal(400, "an idempotency key is required (idempotency_key)")
        client_id = body.get("client_order_id")
        if not isinstance(client_id, str) or not client_id:
            raise _Refusal(400, "client_order_id is required")
        seen = self._keys.get((user, key))
        if seen is None and self.settings.extensions.client_id_dedup and (user, client_id) in self._by_client:
            seen = self._by_client[(user, client_id)].order_id
        if seen is not None:
            existing = self._orders[seen]
            raise _Refusal(409, _ERROR_TEXT[3002], 3002, order_id=seen, client_order_id=existing.client_order_id,
                           status=existing.status)
        for name in ("quantity", "price"):
            value = body.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | Decimal)):
                raise _Refusal(400, f"{name} must be a JSON number", field=name)
        if body.get("quantity") is None:
            raise _Refusal(400, "quantity is required", field="quantity")
        body["quantity"] = Decimal(body["quantity"])
        if body.get("price") is not None:
            body["price"] = Decimal(body["price"])
        now = self.clock.now_ns()
        order = _Order(f"OPT-{next(self._ids):08d}", client_id, user, body, now)
        self._keys[(user, key)] = order.order_id
        self._orders[order.order_id] = order
        self._by_client[(user, client_id)] = order
        problem = self._pre_trade(order)
        if problem is not None:
            code, reason = problem
            self._reject(order, code, reason)
            raise _Refusal(400, reason, code, order_id=order.order_id, client_order_id=client_id)
        if order.side == "buy":
            order.reserve_unit = order.price if order.price is not None else self._upper(order.symbol)
        self._hold(order, order.quantity)
        self.counts["orders"] += 1
        order.placed = True
        self.sim.place(order.order_id, order.symbol, Side(order.side), order.quantity, order.price,
                       OrderType(order.order_type), TimeInForce(order.tif))
        return self._envelope_ok(order.view())

    def _upper(self, symbol: str) -> Decimal:
        engine = self.sim.matching_engine(symbol)
        band = engine.price_band
        reference = engine.reference_price or self.instruments[symbol].previous_close
        return band[1] if band is not None else reference * Decimal("1.1")

    def _pre_trade(self, order: _Order) -> tuple[int, str] | None:
        """The broker's own checks (document "PSX Compliance" and section 13), first failure wins."""
        if order.symbol not in self.instruments:
            return 2001, f"unknown symbol {order.symbol!r}"
        if order.side not in ("buy", "sell"):
            return 2007, f"side must be buy or sell, not {order.side!r}"
        if order.order_type in ("mit", "mtl"):  # OPT-7: listed by the document, not emulated here
            return 2007, f"order type {order.order_type.upper()} is not supported by the sandbox"
        if order.order_type not in ("limit", "market"):
            return 2007, f"unknown order type {order.order_type!r}"
        if order.tif not in ("day", "ioc", "fok"):  # OPT-9: no GTC
            return 2007, f"time in force {order.tif!r} is not supported"
        engine = self.sim.matching_engine(order.symbol)
        qty = order.quantity
        if qty <= 0 or qty != qty.to_integral_value() or qty % engine.lot_size:
            return 2002, f"quantity {qty} is not a positive multiple of the board lot {engine.lot_size}"
        if order.order_type == "limit":
            price = order.price
            if price is None:
                return 2003, "a limit order needs a price"
            if price <= 0 or price % engine.tick_size:
                return 2003, f"price {price} is not on the tick grid {engine.tick_size}"
            band = engine.price_band
            if band is not None and not band[0] <= price <= band[1]:
                return 2003, f"price {price} is outside the circuit breaker band {band[0]}-{band[1]}"
        elif order.price is not None:
            return 2007, "a market order takes no price"
        phase = engine.phase
        if phase not in _ACCEPTS_NEW:  # OPT-6: pre-open, continuous and post-close
            return 2006, f"market closed ({phase.value}): new orders are not accepted"
        if self.settings.extensions.session_rules:  # literal: market hours are 000's only session rule
            problem = self._session_rule(order, phase, engine.closing_price)
            if problem is not None:
                return problem
        if order.side == "sell":
            selling = self._selling.get(order.symbol, ZERO)
            held = self.holdings.get(order.symbol, ZERO)
            if qty + selling > held:  # document: "Short Selling: Not permitted for retail investors"
                return 2005, f"selling {qty} {order.symbol} with {held - selling} available"
        else:
            need = qty * (order.price if order.price is not None else self._upper(order.symbol))
            if need > self.buying_power():
                return 2004, f"needs PKR {need}, buying power PKR {self.buying_power()}"
        return None

    @staticmethod
    def _session_rule(order: _Order, phase: Phase, close: Decimal | None) -> tuple[int, str] | None:
        """OPT-6 (``session_rules``): what each session takes, beyond 000's market hours."""
        if phase is Phase.PRE_OPEN and (order.order_type != "limit" or order.tif != "day"):
            return 2007, "pre-open accepts limit DAY orders only"
        if phase is Phase.POST_CLOSE:
            if order.order_type != "limit":
                return 2007, "post-close accepts only limit orders at the closing price"
            if close is not None and order.price != close:
                return 2003, f"post-close accepts only the closing price {close}, not {order.price}"
        return None

    def buying_power(self) -> Decimal:
        """Cash not held for open buys; sale proceeds are unsettled until T+2 and do not count."""
        return self.cash - self._reserved

    def _hold(self, order: _Order, qty: Decimal) -> None:
        """Count ``qty`` more (negative: less) of an open order against buying power or holdings;
        running totals, so a check costs the same with ten orders open or ten thousand."""
        order.held = True
        if order.side == "buy":
            self._reserved += qty * order.reserve_unit
        else:
            self._selling[order.symbol] = self._selling.get(order.symbol, ZERO) + qty

    def _release(self, order: _Order) -> None:
        """The order is over: what it did not fill stops counting."""
        if order.held:
            self._hold(order, order.filled - order.quantity)
            order.held = False

    def _reject(self, order: _Order, code: int, reason: str) -> None:
        self._release(order)
        order.status = "rejected"
        order.reject_code = code
        order.reason = reason
        order.updated_ns = self.clock.now_ns()
        self.counts["rejected"] += 1
        self._emit("order.rejected", order)

    def _find(self, user: str, body: dict[str, Any]) -> _Order:
        order_id = body.get("order_id")
        client_id = body.get("client_order_id")
        order = self._orders.get(order_id) if isinstance(order_id, str) else None
        if order is None and isinstance(client_id, str):
            order = self._by_client.get((user, client_id))
        if order is None or order.user != user:
            raise _Refusal(404, "order not found", None, order_id=order_id, client_order_id=client_id)
        return order

    def _cancel(self, request: HttpRequest, user: str, body: dict[str, Any]) -> HttpResponse:
        key = self._key(request, body)
        if isinstance(key, str) and key:
            if (user, key) in self._keys:
                raise _Refusal(409, _ERROR_TEXT[3002], 3002, order_id=self._keys[(user, key)])
        order = self._find(user, body)
        if isinstance(key, str) and key:
            self._keys[(user, key)] = order.order_id
        if order.status not in _OPEN:
            raise _Refusal(409, f"order is {order.status}, not open", None, order_id=order.order_id,
                           status=order.status)
        phase = self.sim.matching_engine(order.symbol).phase
        if phase is Phase.OPENING_MATCH and self.settings.extensions.session_rules:
            raise _Refusal(400, "cancels are not accepted during the opening match", 2006, order_id=order.order_id)
        assert order.placed
        self.counts["cancels"] += 1
        self.sim.cancel(order.order_id)
        return self._envelope_ok(order.view())

    def _status(self, request: HttpRequest, user: str, body: dict[str, Any]) -> HttpResponse:
        return self._envelope_ok(self._find(user, body).view(with_executions=True))

    def _open_orders(self, request: HttpRequest, user: str, body: dict[str, Any]) -> HttpResponse:
        rows = [o.view() for o in self._orders.values() if o.user == user and o.status in _OPEN]
        return self._envelope_ok({"orders": rows})

    def _list_executions(self, request: HttpRequest, user: str, body: dict[str, Any]) -> HttpResponse:
        since = body.get("since")
        try:
            since_ns = _read_iso(since) if isinstance(since, str) else 0
        except ValueError:
            raise _Refusal(400, f"since must be ISO 8601, got {since!r}") from None
        rows = [{k: v for k, v in e.items() if k != "ts"} for e in self._executions
                if e["user"] == user and e["ts"] >= since_ns]
        for row in rows:
            row.pop("user", None)
        return self._envelope_ok({"executions": rows})

    # ---- account (document "Portfolio APIs", section 4) ---------------------------------
    def _holdings(self, request: HttpRequest, user: str, body: dict[str, Any]) -> HttpResponse:
        rows = []
        for symbol, qty in self.holdings.items():
            if not qty:
                continue
            price = self.last_price.get(symbol, ZERO)
            reference = self.instruments[symbol].previous_close if symbol in self.instruments else price
            selling = self._selling.get(symbol, ZERO)
            change = ((price - reference) / reference * 100).quantize(Decimal("0.01")) if reference else ZERO
            rows.append({
                "symbol": symbol, "quantity": qty, "available_quantity": qty - selling, "current_price": price,
                "market_value": price * qty, "change_percent": change, "average_cost": None, "unrealized_pnl": None,
            })
        return self._envelope_ok({"holdings": rows, "last_updated": _iso(self.clock.now_ns())})

    def _summary(self, request: HttpRequest, user: str, body: dict[str, Any]) -> HttpResponse:
        value = sum((self.last_price.get(s, ZERO) * q for s, q in self.holdings.items()), ZERO)
        total = value + self.cash + self.unsettled
        return self._envelope_ok({
            "total_value": total, "cash_balance": self.cash, "todays_pnl": ZERO, "todays_pnl_percent": ZERO,
            "total_pnl": ZERO, "total_pnl_percent": ZERO, "positions": sum(1 for q in self.holdings.values() if q),
            "sectors": 0, "currency": "PKR", "last_updated": _iso(self.clock.now_ns()),
        })

    def _buying_power(self, request: HttpRequest, user: str, body: dict[str, Any]) -> HttpResponse:
        return self._envelope_ok({
            "buying_power": self.buying_power(), "cash_balance": self.cash, "unsettled_funds": self.unsettled,
            "currency": "PKR",
        })

    # ---- the simulated venue's reports (this broker is one of its listeners) ----------------
    def on_order_update(self, update: OrderUpdate) -> None:
        order = self._orders.get(update.client_id)
        if order is None:
            return  # not an order placed through this sandbox (a shared simulated venue)
        status = update.status
        order.updated_ns = self.clock.now_ns()
        if update.reject_code is not None and status is not OrderStatus.REJECTED:
            log.info("optimus sandbox: the venue refused a cancel of %s: %s", order.order_id, update.reason)
            return
        if status is OrderStatus.NEW:
            if order.status == "pending":
                order.status = "open"
                self._emit("order.confirmed", order)
        elif status is OrderStatus.REJECTED:
            code = update.reject_code if update.reject_code in _ERROR_TEXT else 9002
            self._reject(order, code or 9002, update.reason or _ERROR_TEXT[9002])
        elif status is OrderStatus.CANCELLED:
            self._release(order)
            order.status = "cancelled"
            order.reason = update.reason or "cancelled"
            self._emit("order.cancelled", order)
        elif status is OrderStatus.EXPIRED:
            self._release(order)
            order.status = "expired"  # OPT-5: no expiry event in the document: order.cancelled carries it
            order.reason = update.reason or "expired"
            self._emit("order.cancelled", order)

    def on_fill(self, fill: Fill) -> None:
        order = self._orders.get(fill.client_id)
        if order is None:
            return
        now = self.clock.now_ns()
        if order.status == "pending":  # an execution proves the exchange accepted it
            order.status = "open"
            self._emit("order.confirmed", order)
        qty, price = fill.qty, fill.price
        if order.held and order.status in _OPEN:
            self._hold(order, -qty)
        order.filled += qty
        order.notional += qty * price
        order.updated_ns = now
        if order.side == "buy":
            self.cash -= qty * price
            self.holdings[order.symbol] = self.holdings.get(order.symbol, ZERO) + qty
        else:
            self.holdings[order.symbol] = self.holdings.get(order.symbol, ZERO) - qty
            self.unsettled += qty * price  # T+2: not available for trading (document section 4)
        if order.filled >= order.quantity:
            order.status = "filled"
        elif order.status in ("pending", "open"):
            order.status = "partially_filled"
        execution = {
            "execution_id": f"EXE-{next(self._exec_ids):08d}", "order_id": order.order_id,
            "client_order_id": order.client_order_id, "symbol": order.symbol, "side": order.side,
            "price": price, "quantity": qty, "executed_at": _iso(fill.ts), "user": order.user, "ts": fill.ts,
        }
        order.executions.append(execution)
        self._executions.append(execution)
        self.last_price[order.symbol] = price
        self.counts["executions"] += 1
        self._emit("order.execution", order, execution)

    def on_trade(self, trade: Trade) -> None:
        self.last_price[trade.symbol] = trade.price

    # ---- webhooks (OPT-5) ----------------------------------------------------------------
    def _emit(self, event: str, order: _Order, execution: dict[str, Any] | None = None) -> None:
        data = order.view()
        if execution is not None:
            data["execution_id"] = execution["execution_id"]
            data["last_fill_price"] = execution["price"]
            data["last_fill_quantity"] = execution["quantity"]
        self._send_event(event, data)

    def announce(self, event: str, data: dict[str, Any] | None = None) -> str:
        """Send one of the account webhooks 000 lists, ``margin.call`` ("Margin call threshold hit")
        or ``account.alert`` ("Deposit/withdrawal status"), with ``data`` (the document gives no
        fields: OPT-5; by default its one sentence). Returns the event id. ValueError for another
        event: order events come from the orders themselves."""
        if event not in ACCOUNT_WEBHOOKS:
            raise ValueError(f"event {event!r}: the sandbox announces {', '.join(ACCOUNT_WEBHOOKS)}")
        self.counts[event] += 1
        return self._send_event(event, dict(data) if data is not None else {"message": ACCOUNT_WEBHOOKS[event]})

    def _send_event(self, event: str, data: dict[str, Any]) -> str:
        event_id = f"EVT-{next(self._event_ids):08d}"  # the sandbox's own handle, on the wire only with event_ids
        if self.settings.extensions.event_ids:
            payload = {"event": event, "event_id": event_id, "occurred_at": _iso(self.clock.now_ns()), "data": data}
        else:
            payload = {"event": event, "data": data}
        only = self.faults.params.get("lost_webhooks", {}).get("event")
        if (only is None or only == event) and self.faults.take("lost_webhooks") is not None:
            self.counts["webhooks_lost"] += 1
            log.warning("optimus sandbox: webhook %s %s lost on purpose", event, event_id)
            return event_id
        body = _json_text(payload).encode()
        self._queue.put_nowait((event_id, body))
        if self.faults.take("duplicate_reports") is not None:
            self.counts["webhooks_duplicated"] += 1
            self._queue.put_nowait((event_id, body))
        return event_id

    def sign(self, body: bytes, timestamp_ms: int) -> str:
        """``t=<ms>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`` (the scheme notes/optimus.md documents)."""
        mac = hmac.new(self.settings.webhook_secret, str(timestamp_ms).encode() + b"." + body, hashlib.sha256)
        return f"t={timestamp_ms},v1={mac.hexdigest()}"

    async def _deliver_loop(self) -> None:
        s = self.settings
        timeout = httpx.Timeout(float(s.webhook_timeout_s))
        async with httpx.AsyncClient(timeout=timeout) as client:
            while True:
                event_id, body = await self._queue.get()
                await self._deliver(client, event_id, body)

    async def _deliver(self, client: httpx.AsyncClient, event_id: str, body: bytes) -> None:
        """At least once: retried with backoff until a 2xx or ``webhook_attempts`` run out."""
        s = self.settings
        delay = float(s.webhook_retry_s)
        for attempt in range(1, s.webhook_attempts + 1):
            url = self.webhook_url if self.webhook_url_source is None else self.webhook_url_source()
            if url is None:
                self.counts["webhooks_unrouted"] += 1
                return
            ext = self.settings.extensions
            headers = {"Content-Type": "application/json"}
            if ext.webhook_signature:
                headers["X-Optimus-Signature"] = self.sign(body, self.clock.now_ns() // NS_PER_MS)
            if ext.event_ids:
                headers["X-Optimus-Event-Id"] = event_id
            try:
                response = await client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                log.info("optimus sandbox: webhook %s attempt %d failed: %s", event_id, attempt, exc)
            else:
                if 200 <= response.status_code < 300:
                    self.counts["webhooks_delivered"] += 1
                    self.webhooks_sent.append(_READ_JSON(body))
                    return
                log.info("optimus sandbox: webhook %s attempt %d answered %d", event_id, attempt,
                         response.status_code)
            await asyncio.sleep(delay)
            delay *= 2
        self.counts["webhooks_failed"] += 1
        log.warning("optimus sandbox: webhook %s given up after %d attempts", event_id, s.webhook_attempts)


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


# --------------------------------------------------------------------------------------------
# Command line: python -m adapters.optimus.sandbox (the lead wires it into `engine sandbox psx`)


def _secret(env: str | None, file: Path | None, what: str, generate: bool) -> str:
    """A credential from ``file`` (first line) or the variable ``env``; when neither has one,
    refused (a sandbox alone: the user must know it) or, with ``generate`` (``--run``: the engine
    is handed it), made up."""
    try:
        return read_secret(env, file, what)
    except MissingSecret as exc:
        if generate and file is None:
            return "sandbox" if what == "username" else secrets.token_urlsafe(24)
        raise SandboxStartError(f"optimus sandbox: {exc} (or pass a file)") from None


def _optimus_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags only this venue has: webhook receiver, credentials, sessions and broker limits."""
    parser.add_argument("--webhook-url", metavar="URL",
                        help="where to POST webhooks, e.g. http://127.0.0.1:8088/webhook/visionmax")
    parser.add_argument("--username-env", default="OPTIMUS_USERNAME", metavar="NAME",
                        help="environment variable holding the login (default OPTIMUS_USERNAME)")
    parser.add_argument("--password-env", default="OPTIMUS_PASSWORD", metavar="NAME",
                        help="environment variable holding the password (default OPTIMUS_PASSWORD)")
    parser.add_argument("--password-file", type=Path, metavar="FILE", help="or: a file holding it (first line)")
    parser.add_argument("--webhook-secret-env", default="OPTIMUS_WEBHOOK_SECRET", metavar="NAME",
                        help="environment variable holding the webhook HMAC secret (default OPTIMUS_WEBHOOK_SECRET)")
    parser.add_argument("--webhook-secret-file", type=Path, metavar="FILE", help="or: a file holding it (first line)")
    parser.add_argument("--sessions", choices=("always_open", "schedule"), default="schedule",
                        help="schedule: PSX market hours (broker-doc profile); always_open (= --always-open): for "
                        "tests and demos")
    parser.add_argument("--access-ttl", type=int, default=3600, metavar="S", help="access token lifetime, seconds")
    parser.add_argument("--trading-rate", type=int, default=100, metavar="N",
                        help="trading requests per second per user")
    parser.add_argument("--cash", type=Decimal, default=None, metavar="PKR",
                        help="cash balance at start (default: the config's account, else 10000000)")
    add_extension_arguments(parser, OptimusExtensions)


def _sandbox_from_args(args: argparse.Namespace, generate: bool) -> OptimusSandbox:
    username = _secret(args.username_env, None, "username", generate)
    password = _secret(args.password_env, args.password_file, "password", generate)
    secret = _secret(args.webhook_secret_env, args.webhook_secret_file, "webhook secret", generate).encode()
    instruments: Iterable[Instrument] = DOC_INSTRUMENTS
    account: dict[str, Any] = {}
    if args.config is not None:
        taken = venue_from_config(args.config, "optimus")
        instruments, account = taken.instruments, taken.account
    cash = args.cash if args.cash is not None else account.get("cash", Decimal(10_000_000))
    settings = SandboxSettings(
        host=args.host, port=args.port, users={username: password}, webhook_url=args.webhook_url,
        webhook_secret=secret, access_ttl_s=args.access_ttl, trading_per_second=args.trading_rate,
        sessions="always_open" if args.always_open else args.sessions, market=not args.no_market, seed=args.seed,
        cash=cash, extensions=extensions_from_args(OptimusExtensions, args),
    )
    if "holdings" in account:
        settings.holdings = dict(account["holdings"])
    clock, _text = sandbox_clock(args)
    return OptimusSandbox(settings, instruments=instruments, clock=clock)


def _stopped_line(sandbox: OptimusSandbox) -> str:
    return f"optimus sandbox: stopped; {json.dumps({k: v for k, v in sandbox.counts.items() if v})}"


async def _listen(sandbox: OptimusSandbox, args: argparse.Namespace) -> FaultTimers:
    """Start ``sandbox`` (SandboxStartError naming the address when it cannot listen) and arm the
    ``--fault`` specs on it; the caller cancels the returned timers when it stops."""
    try:
        await sandbox.start()
    except OSError as exc:
        await sandbox.stop()
        raise SandboxStartError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    timers = FaultTimers(sandbox.clock, lambda spec: sandbox.inject(spec.kind, **spec.params), log)
    timers.arm(args.fault)
    return timers


async def _serve(args: argparse.Namespace) -> int:
    sandbox = _sandbox_from_args(args, generate=False)
    faults = await _listen(sandbox, args)
    try:
        print(f"optimus sandbox: {sandbox.base_url} (webhooks to {sandbox.webhook_url or 'nowhere yet'})", flush=True)
        print(f"optimus sandbox: {extensions_line(sandbox.settings.extensions)}", flush=True)
        await until_stopped(args.duration)
    finally:
        faults.cancel()
        await sandbox.stop()
    print(_stopped_line(sandbox), flush=True)
    return 0


@contextlib.asynccontextmanager
async def _start(args: argparse.Namespace, config: Path) -> AsyncIterator[SandboxLink]:
    free_ports(args, COMMAND.ports)
    args.config = args.config or config
    args.webhook_url = None  # until the engine's receiver listens (SandboxLink.attach)
    sandbox = _sandbox_from_args(args, generate=True)
    faults = await _listen(sandbox, args)
    (username, password), = sandbox.settings.users.items()
    secret = sandbox.settings.webhook_secret.decode()

    def attach(adapter: Any) -> None:
        sandbox.webhook_url_source = lambda: adapter.webhook_url

    try:
        yield SandboxLink(
            clock=sandbox.clock,
            adapter_options={"optimus": {
                "base_url": sandbox.base_url, "webhook_listen": f"{args.host}:0", "username_env": args.username_env,
                "password_env": args.password_env, "webhook_secret_env": args.webhook_secret_env,
                "username_file": None, "password_file": None, "webhook_secret_file": None,
            }},
            environment={args.username_env: username, args.password_env: password, args.webhook_secret_env: secret},
            secret_values=frozenset({password, secret}), order_adapter="optimus", attach=attach,
            description=f"optimus sandbox: {sandbox.base_url}, clock {sandbox.clock.describe()}",
            stopped=lambda: _stopped_line(sandbox),
        )
    finally:
        faults.cancel()
        await sandbox.stop()


def _fault_help() -> str:
    return (fault_help(SUPPORTED_FAULTS)
            + '\n  on request too: POST http://HOST:PORT/sandbox/faults {"kind": KIND, key: value}')


COMMAND = VenueSandboxCommand(
    name="optimus",
    description="The Optimus REST broker API on localhost (orders only, signed webhooks), on the simulated venue; "
    "engine sandbox psx serves it together with the PSX Live Feed. Alone, it needs its credentials in the "
    "environment (or files).",
    ports=(Port("port", 8090, "REST"),),
    add_arguments=_optimus_arguments,
    parse_fault=spec_reader("optimus", SUPPORTED_FAULTS),
    fault_syntax="SPEC = KIND[@WHEN[/EVERY]][,key=value...] of the one vocabulary (below), e.g. 5xx@10,count=3, "
    "expire_tokens@10:15, drop_connections@30/60",
    fault_help=_fault_help,
    serve_async=_serve,
    start=_start,
    config_help="take the instruments and the account (cash, holdings of the optimus venue) from this engine config "
    "(default: the broker document's six symbols and holdings)",
)


def main(argv: list[str] | None = None) -> int:
    """``python -m adapters.optimus.sandbox ARGS``: the broker alone until Ctrl-C or --duration."""
    return COMMAND.main(argv)


if __name__ == "__main__":
    sys.exit(main())
