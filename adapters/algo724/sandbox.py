"""A local Algo724 Cadenza Fermata REST server on the simulated venue (``engine sandbox algo724``).

Built from document 003 (``shared/seeds/003_8a08da99c6d461d3.txt``) and the project's
assumptions in VENUES.md section 4.11 (ALG-n). It deliberately does not import the adapter's codec
(adapters/algo724/codec.py): it writes the wire format from the same document independently, so a
field the adapter misreads is caught by the tests instead of being mirrored. Only the HTTP
transport (adapters/optimus/webhooks.py ``HttpServer``) and the simulated venue are shared.

What it serves (ALG-1: the document lost every method and path; these are VENUES.md's, under
``/api/v3``; ALG-2: reads take a query string, actions a JSON body):

=======  ========================  ============================================================
POST     /auth/login               ``{email, password}`` -> Session (``accessToken``, ``refreshToken``,
                                   ``tokenType``, ``expiresIn``, ``expiresAt``, ``user``)
POST     /auth/refresh             ``{refreshToken}`` -> Session (a new access token, same refresh)
POST     /auth/logout              -> ``"ok"``; the bearer's access and refresh tokens die
GET      /auth/user                -> User
GET      /health                   not enveloped (document "Health check")
POST     /tradeOrder               submit -> ``[Order]`` (an array, ALG-8)
POST     /tradeOrder/cancel        ``{tradingAccountId, tradeOrderId}`` -> Order
GET      /tradeOrder               list: ``tradeOrderId``, ``orderStatus``, ``tradingAccountId``,
                                   ``instrumentId``, ``startTime``, ``endTime``, ``limit`` (1..1000,
                                   50), ``offset``, ``cursor``, ``ascending`` -> ``[Order]`` +
                                   ``pagination {offset, limit, total, cursor, hasNext}``
=======  ========================  ============================================================

Every answer is the document's envelope ``{success, errno, error, details, data}``; decimals are
strings matching ``^-?\\d+(\\.\\d+)?$`` both ways (a JSON number, an exponent, a ``+`` or a bare
``.5`` in a request is refused 400). Idempotency (ALG-4): a repeated ``idempotencyKey`` (or
``clientOrderId`` when no key is given) answers the original order, HTTP 200, never a second order.

Orders go to a :class:`~adapters.sim.venue.SimVenue` (crypto: no circuit band, open all the time)
under their ``tradeOrderId``; the venue's reports become the document's 14 statuses: ``SUBMITTED``
when taken, ``ACCEPTED`` when the book has it, ``PARTIALLY_FILLED``, ``FILLED``, ``CANCELLED``,
``REJECTED``, ``EXPIRED`` (IOC/FOK rest). Each fill is an ``executions[]`` entry (``executionId``
UUID, ``externalTradeId``) with its ``fees[]``, summed into the order's ``fees[]``. The account has
balances per asset (``balances``); a buy beyond the free quote balance or a sell beyond the free
base balance is ``REJECTED`` ("insufficient balance").

Faults (``inject(kind, ...)``, ``--fault``, or ``POST /sandbox/faults {"kind": ...}``), from the
one vocabulary (:mod:`adapters.sim.faults`):

``5xx`` (count, status, process)   the next answers are 5xx (``VENUE_ERROR``); process=true takes the
                                   order first (its answer is lost)
``slow`` (count, delay_s)          the next answers come late, after processing: a client timing
                                   out before then has an order it does not know about (the
                                   idempotency test)
``garbage`` (count)                the next answers are not JSON
``expire_tokens`` (refresh)        every access token (refresh=true: refresh tokens too) expires now
``drop_connections``               every open client socket is aborted now
``outage`` (seconds)               every request's socket is aborted for a while

Python API (the Centrifugo streams helper plugs into these; adapters/algo724/streams*.py):

- ``AlgoSandbox(settings, instruments=DOC_INSTRUMENTS, clock=None)``; ``async with`` starts and stops
  it; ``base_url`` is the REST base (``http://host:port/api/v3``), the adapter's ``base_url``.
- ``verify_token(token) -> str | None``: the user (email) of a live access token, else None (the
  Centrifugo ``connect.token`` is the same JWT-like access token).
- ``trading_account_id``: the one account's UUID (channel ``tradingAccount:{id}``).
- ``order_listeners``: callables given the full Order object (document shape, ALG-3: as it reads
  on the wire, decimals as strings) at every change of an order (taken, acknowledged, each fill,
  final state).
- ``sim``: the :class:`SimVenue`; ``sim.add_listener(x)`` hears books and trades by engine symbol.
- ``instrument_id(symbol)`` / ``symbol_of(instrument_id)``: ``BTC/USDT`` <-> ``BINANCE:BTC/USDT``.
- ``order_view(trade_order_id)``, ``orders_by_key``: the server's own state, for tests.
- ``inject(kind, count=1, **params)``: a fault (above); ``counts``: what happened.

Every assumption beyond document 003 is a named flag of :class:`AlgoExtensions`: all on in the
everyday sandbox, all off in document-literal mode (``--document-literal``; issue 20).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import itertools
import json
import logging
import random
import re
import secrets
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from adapters.algo724.centrifugo_feed import StreamFeed
from adapters.kit.credentials import MissingSecret, read_secret
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
from adapters.sim.venue import SimVenue
from engine.model import Fill, Instrument, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce
from engine.venue import SandboxLink, SandboxStartError, venue_from_config
from engine.venue.clock import NS_PER_S, Clock, WallClock
from engine.venue.ratelimit import RateBucket

__all__ = ["COMMAND", "DOC_INSTRUMENTS", "AlgoExtensions", "AlgoSandbox", "SandboxSettings", "main"]

log = logging.getLogger("engine.algo724.sandbox")

API = "/api/v3"
NS_PER_MS = 1_000_000
ZERO = Decimal(0)
#: document 003, "Decimal value as string to preserve precision"
DECIMAL_TEXT = re.compile(r"-?\d+(\.\d+)?")
#: the underlying venue the sandbox routes to (document 003's examples: BINANCE)
DOC_VENUE = "BINANCE"
#: document 003's example account and instrument
DOC_ACCOUNT = "14f773c5-2079-41e0-90e4-340a7b4d3391"
DOC_INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument("BTC/USDT", "algo724", Decimal("0.01"), Decimal("0.0001"), Decimal(50000), "Crypto", 2),
    Instrument("ETH/USDT", "algo724", Decimal("0.01"), Decimal("0.001"), Decimal(3000), "Crypto", 2),
)
_OPEN = frozenset({"CREATED", "SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED", "PENDING_CANCEL"})
_TIFS = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK, "DAY": TimeInForce.DAY,
         "GTX": TimeInForce.GTC, "": TimeInForce.GTC}
SUPPORTED_FAULTS = frozenset({"5xx", "slow", "garbage", "expire_tokens", "drop_connections", "outage"})
#: ALG-6's HTTP statuses by symbolic code (everyday); literal mode keeps the status, drops the code
_HTTP = {"INVALID_TOKEN": 401, "TOKEN_EXPIRED": 401, "PERMISSION_DENIED": 403, "VALIDATION_ERROR": 400,
         "NOT_FOUND": 404, "DUPLICATE_IDEMPOTENCY_KEY": 409, "ORDER_REJECTED": 422, "RATE_LIMITED": 429,
         "VENUE_ERROR": 502, "INVALID_INSTRUMENT": 400, "INSUFFICIENT_BALANCE": 422}


def _json_text(value: Any) -> str:
    """JSON with every Decimal as a *string* (document 003: decimals are strings)."""
    if isinstance(value, Decimal):
        return json.dumps(format(value, "f"))
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json_text(v) for v in value) + "]"
    return json.dumps(value)


def _wire(value: Any) -> Any:
    """``value`` as it reads on the wire: every Decimal a decimal string (what listeners get)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    return value


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Refusal(Exception):
    def __init__(self, code: str, message: str, data: Any = None, http_status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.http_status = http_status if http_status is not None else _HTTP.get(code, 400)


@dataclass(frozen=True)
class AlgoExtensions(Extensions):
    """The sandbox's assumptions beyond document 003, one flag each (VENUES.md 4.11).

    Both modes keep ALG-1's paths and ALG-2's placement (without them nothing can be called), the
    bearer token (ALG-6's 401), idempotent replay of a key (ALG-4: the document's "Idempotency key
    to prevent duplicate request processing") and the document's envelope, Order object, statuses,
    executions and pagination."""

    error_codes: bool = True
    """ALG-6: refusals carry a symbolic ``details.code`` (``VALIDATION_ERROR``, ``TOKEN_EXPIRED``,
    ``INVALID_INSTRUMENT``, ``INSUFFICIENT_BALANCE``, ``RATE_LIMITED``, ``VENUE_ERROR`` ...) and
    ``errno`` the HTTP status. Literal: ``details`` only for ``INVALID_TOKEN`` (the one code the
    document shows, used for an expired token too); other refusals have ``error`` text only."""
    reject_envelope: bool = True
    """ALG-6: an order the venue refuses after taking it (balance) answers HTTP 422
    ``ORDER_REJECTED`` with the REJECTED Order in ``data``. Literal: HTTP 200, ``success: true``,
    the Order with ``status: REJECTED`` and its ``rejectReason`` (the document's own fields)."""
    quote_fees: bool = True
    """Fees in the quote asset (USDT). Literal: in the asset received, as the document's example
    (a BUY of BTC/USDT charged in BTC), which the adapter converts at the execution price."""
    rate_limit: bool = True
    """ALG-10: ``rate_per_second`` requests per token, then 429 ``RATE_LIMITED``. Literal: no
    limit (the document gives none)."""
    stream_payloads: bool = True
    """ALG-3 (added with the streams, branch algcf): the Centrifugo channels publish the project's
    payloads (adapters/algo724/streams_codec.py: book SNAPSHOT/DELTA with a sequence, trades,
    ORDER updates) and a book's subscribe reply carries its snapshot. Literal: the endpoint still
    speaks Centrifugo (the document's connect example) and takes the three channels, but
    publishes nothing: the document defines no payload."""


@dataclass
class SandboxSettings:
    """Everything the sandbox can be told. Passwords are values here: ``main`` reads them from the
    environment or a file; tests pass throwaway ones."""

    host: str = "127.0.0.1"
    port: int = 0
    users: dict[str, str] = field(default_factory=dict)  # email -> password
    trading_account_id: str = DOC_ACCOUNT
    venue: str = DOC_VENUE
    access_ttl_s: int = 3600  # document 003: "expiresIn": 3600
    refresh_ttl_s: int = 7 * 24 * 3600  # not in the document: a week
    rate_per_second: int = 10  # ALG-10
    fee_rate: Decimal = Decimal("0.001")  # 0.1% of the notional
    balances: dict[str, Decimal] = field(default_factory=lambda: {"USDT": Decimal(10_000_000), "BTC": Decimal(100),
                                                                  "ETH": Decimal(1000)})
    market: bool = True
    market_step_s: Decimal = Decimal(1)
    seed: int = 0
    extensions: AlgoExtensions = field(default_factory=AlgoExtensions.everyday)


class _Order:
    """One order as the gateway keeps it."""

    __slots__ = ("trade_order_id", "account", "instrument_id", "symbol", "base", "quote", "side", "order_type",
                 "tif", "limit", "stop", "quantity", "status", "reject_reason", "cancel_reason", "executions",
                 "filled", "cost", "created_ms", "updated_ms", "canceled_ms", "expire_at", "reserved", "key",
                 "body")

    def __init__(self, trade_order_id: str, account: str, instrument_id: str, symbol: str, body: dict[str, Any],
                 quantity: Decimal, limit: Decimal | None, stop: Decimal | None, now_ms: int, key: str) -> None:
        self.trade_order_id = trade_order_id
        self.account = account
        self.instrument_id = instrument_id
        self.symbol = symbol
        self.base, _, self.quote = symbol.partition("/")
        self.side = str(body["orderSide"])
        self.order_type = str(body["orderType"])
        self.tif = str(body.get("timeInForce") or "GTC")
        self.limit = limit
        self.stop = stop
        self.quantity = quantity
        self.status = "SUBMITTED"
        self.reject_reason = ""
        self.cancel_reason = ""
        self.executions: list[dict[str, Any]] = []
        self.filled = ZERO
        self.cost = ZERO
        self.created_ms = self.updated_ms = now_ms
        self.canceled_ms: int | None = None
        self.expire_at = body.get("expireAt") if isinstance(body.get("expireAt"), int) else None
        self.reserved = ZERO  # what the unfilled part holds of the balance (quote for a buy, base for a sell)
        self.key = key
        self.body = body

    def view(self, venue: str) -> dict[str, Any]:
        """The document's Order object."""
        fees: dict[str, Decimal] = {}
        for execution in self.executions:
            for fee in execution["fees"]:
                fees[fee["asset"]] = fees.get(fee["asset"], ZERO) + fee["quantity"]
        data: dict[str, Any] = {
            "tradeOrderId": self.trade_order_id, "tradingAccountId": self.account, "venue": venue,
            "instrumentId": self.instrument_id, "baseAsset": self.base, "quoteAsset": self.quote,
            "orderSide": self.side, "orderType": self.order_type, "timeInForce": self.tif, "status": self.status,
            "rejectReason": self.reject_reason, "cancelReason": self.cancel_reason,
            "quantity": self.quantity, "orderQuantityType": "BASE", "quantityRounding": "",
            "executedQuantity": self.filled, "executedCost": self.cost,
            "fees": [{"security": f"{venue}:{asset}", "asset": asset, "venue": venue, "quantity": qty}
                     for asset, qty in fees.items()],
            "executions": list(self.executions),
            "createdAt": self.created_ms, "createdAtDateTime": _iso(self.created_ms),
            "updatedAt": self.updated_ms, "updatedAtDateTime": _iso(self.updated_ms),
        }
        if self.limit is not None:
            data["limitPrice"] = self.limit
        if self.stop is not None:
            data["stopPrice"] = self.stop
        if self.filled:
            data["executedPrice"] = (self.cost / self.filled).quantize(Decimal("0.00000001"))
        if self.expire_at is not None:
            data["expireAt"] = self.expire_at
            data["expireAtDateTime"] = _iso(self.expire_at)
        if self.canceled_ms is not None:
            data["canceledAt"] = self.canceled_ms
            data["canceledAtDateTime"] = _iso(self.canceled_ms)
        return data


@dataclass
class _Token:
    user: str
    kind: str  # "access" | "refresh"
    expires_ns: int
    pair: str = ""  # the refresh token of an access token (logout ends both)


class AlgoSandbox:
    """The Algo724 REST API on localhost (see the module docstring for the Python API)."""

    def __init__(self, settings: SandboxSettings | None = None, *, instruments: Iterable[Instrument] = DOC_INSTRUMENTS,
                 clock: Clock | None = None) -> None:
        self.settings = settings = settings if settings is not None else SandboxSettings()
        self.clock = clock if clock is not None else WallClock()
        self.instruments = {i.symbol: i for i in instruments}
        # crypto sizes: background quotes of 1 to 5 BTC (the default's 100-share units are PSX's)
        market = MarketOptions(enabled=settings.market, step_interval_s=settings.market_step_s, size_unit_shares=1,
                               max_size_units=5)
        self.sim = SimVenue(settings.venue, self.instruments.values(), self.clock, market=market,
                            cancel_on_disconnect=False, seed=settings.seed, circuit_bands=False)
        self.sim.add_listener(self)
        self.trading_account_id = settings.trading_account_id
        self._server = HttpServer(self._handle, settings.host, settings.port, name="algo724 sandbox")
        self._rng = random.Random(settings.seed)
        self._exec_numbers = itertools.count(1)
        self._tokens: dict[str, _Token] = {}
        self._orders: dict[str, _Order] = {}
        #: (account, idempotency key) -> the order it placed (ALG-4)
        self.orders_by_key: dict[tuple[str, str], str] = {}
        self.balances: dict[str, Decimal] = dict(settings.balances)
        self._reserved: dict[str, Decimal] = {}
        self._buckets: dict[str, RateBucket] = {}
        #: told the full Order object at every change (the streams server publishes it, ALG-3)
        self.order_listeners: list[Callable[[dict[str, Any]], None]] = []
        #: told ``(kind, params)`` after each injected fault (the streams feel drops and expiries too)
        self.fault_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self.counts: Counter[str] = Counter()
        self.faults = HttpFaults("algo724", SUPPORTED_FAULTS, self.clock, self.counts, log,
                                 lambda: self._tokens.values(), self._server.drop_connections)

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self.sim.start()
        self.sim.always_open()  # crypto: a 24/7 venue
        self.sim.subscribe_book(list(self.instruments))
        await self._server.start()
        log.info("algo724 sandbox on %s (%s)", self.base_url, extensions_line(self.settings.extensions))

    async def stop(self) -> None:
        await self._server.close()
        self.sim.stop()

    async def __aenter__(self) -> AlgoSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return self._server.url + API

    def instrument_id(self, symbol: str) -> str:
        return f"{self.settings.venue}:{symbol}"

    def symbol_of(self, instrument_id: str) -> str | None:
        venue, _, symbol = instrument_id.partition(":")
        return symbol if venue == self.settings.venue and symbol in self.instruments else None

    def verify_token(self, token: str) -> str | None:
        """The user of a live access token (the Centrifugo connect token is the same), else None."""
        found = self._tokens.get(token)
        if found is None or found.kind != "access" or self.clock.now_ns() >= found.expires_ns:
            return None
        return found.user

    def token_expiry_ns(self, token: str) -> int | None:
        """When a live access token expires (clock ns), else None: the streams' connection ``ttl``
        (added by the streams helper, branch algcf)."""
        found = self._tokens.get(token)
        return found.expires_ns if found is not None and found.kind == "access" else None

    def order_view(self, trade_order_id: str) -> dict[str, Any] | None:
        order = self._orders.get(trade_order_id)
        return None if order is None else order.view(self.settings.venue)

    def working_orders(self) -> list[str]:
        return [o.trade_order_id for o in self._orders.values() if o.status in _OPEN]

    # ---- faults --------------------------------------------------------------------------
    def inject(self, kind: str, count: int = 1, **params: Any) -> None:
        """A fault of the module docstring; ValueError for one this sandbox does not play."""
        kind, params = self.faults.inject(kind, count, **params)
        for listener in list(self.fault_listeners):
            listener(kind, params)

    # ---- HTTP ----------------------------------------------------------------------------
    def _ok(self, data: Any, pagination: dict[str, Any] | None = None, status: int = 200) -> HttpResponse:
        body: dict[str, Any] = {"success": True, "errno": 0, "data": data}
        if pagination is not None:
            body["pagination"] = pagination
        return HttpResponse(status, _json_text(body).encode())

    def _error(self, refusal: _Refusal) -> HttpResponse:
        body: dict[str, Any] = {"success": False, "errno": refusal.http_status, "error": refusal.message}
        code = refusal.code
        if not self.settings.extensions.error_codes:
            code = "INVALID_TOKEN" if refusal.http_status == 401 else ""
        if code:
            body["details"] = {"code": code, "request_id": f"req-{self._rng.getrandbits(48):012x}"}
        if refusal.data is not None:
            body["data"] = refusal.data
        return HttpResponse(refusal.http_status, _json_text(body).encode())

    async def _handle(self, request: HttpRequest) -> HttpResponse | None:
        return await self.faults.serve(request, control=self._control, route=self._answer,
                                       fault_answer=self._fault_answer)

    def _fault_answer(self, params: dict[str, Any], processed: bool) -> HttpResponse:
        text = "venue error (injected, processed)" if processed else "venue error (injected)"
        return self._error(_Refusal("VENUE_ERROR", text, http_status=params.get("status", 503)))

    async def _answer(self, request: HttpRequest) -> HttpResponse:
        try:
            return await self._route(request)
        except _Refusal as refusal:
            return self._error(refusal)

    async def _control(self, request: HttpRequest) -> HttpResponse:
        """Loopback control plane, no auth: ``POST /sandbox/faults {"kind": ..., ...}``."""
        try:
            body = self._body(request)
            if request.path != "/sandbox/faults":
                raise _Refusal("NOT_FOUND", f"no such control path {request.path}")
            kind = str(body.pop("kind", ""))
            count = int(body.pop("count", 1))
            self.inject(kind, count, **body)
            return self._ok({"kind": kind, "count": count})
        except ValueError as exc:
            return self._error(_Refusal("VALIDATION_ERROR", str(exc)))
        except _Refusal as refusal:
            return self._error(refusal)

    @staticmethod
    def _body(request: HttpRequest) -> dict[str, Any]:
        try:
            return json_object(request.body)
        except ValueError as exc:
            raise _Refusal("VALIDATION_ERROR", str(exc)) from None

    async def _route(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API):
            raise _Refusal("NOT_FOUND", f"no such endpoint {request.path}")
        path = request.path[len(API):].rstrip("/") or "/"
        route = (request.method, path)
        if route == ("GET", "/health"):  # document: not enveloped
            now_ms = self.clock.now_ns() // NS_PER_MS
            return HttpResponse(200, _json_text({"status": "healthy", "timestamp": now_ms, "isoDateTime": _iso(now_ms),
                                                 "version": "3.0.1", "checks": {}}).encode())
        if route == ("POST", "/auth/login"):
            return self._login(self._body(request))
        if route == ("POST", "/auth/refresh"):
            return self._refresh(self._body(request))
        handlers: dict[tuple[str, str], Callable[..., Any]] = {
            ("POST", "/auth/logout"): self._logout,
            ("GET", "/auth/user"): self._user,
            ("POST", "/tradeOrder"): self._submit,
            ("POST", "/tradeOrder/cancel"): self._cancel,
            ("GET", "/tradeOrder"): self._list,
        }
        handler = handlers.get(route)
        if handler is None:
            if any(p == path for _m, p in handlers):
                raise _Refusal("NOT_FOUND", f"{request.method} is not served on {path}", http_status=405)
            raise _Refusal("NOT_FOUND", f"no such endpoint {request.path}")
        token, user = self._authenticate(request)
        if self.settings.extensions.rate_limit:
            bucket = self._buckets.get(user)
            if bucket is None:
                bucket = self._buckets[user] = RateBucket(f"user {user}", self.settings.rate_per_second, Decimal(1),
                                                          None, self.clock)
            if not bucket.try_take():
                self.counts["rate_limited"] += 1
                raise _Refusal("RATE_LIMITED", f"more than {self.settings.rate_per_second} requests per second")
        body = parse_qs(request.query, keep_blank_values=True) if request.method == "GET" else self._body(request)
        result = handler(token, user, body)
        if asyncio.iscoroutine(result):
            result = await result
        return result  # type: ignore[no-any-return]

    # ---- authentication ------------------------------------------------------------------
    def _issue(self, user: str, kind: str, ttl_s: int, pair: str = "") -> str:
        token = f"{kind[0]}.{secrets.token_urlsafe(24)}"
        self._tokens[token] = _Token(user, kind, self.clock.now_ns() + ttl_s * NS_PER_S, pair)
        return token

    def _session(self, user: str, refresh: str) -> HttpResponse:
        s = self.settings
        access = self._issue(user, "access", s.access_ttl_s, refresh)
        expires_ms = self._tokens[access].expires_ns // NS_PER_MS
        return self._ok({"accessToken": access, "refreshToken": refresh, "tokenType": "bearer",
                         "expiresIn": s.access_ttl_s, "expiresAt": expires_ms, "user": self._user_object(user)})

    def _user_object(self, user: str) -> dict[str, Any]:
        return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, user)), "email": user, "role": "authenticated",
                "appMetadata": {"tenantId": "sandbox", "environments": ["sandbox"]}, "userMetadata": {}}

    def _login(self, body: dict[str, Any]) -> HttpResponse:
        email, password = body.get("email"), body.get("password")
        known = self.settings.users.get(email) if isinstance(email, str) else None
        if known is None or not isinstance(password, str) or not hmac.compare_digest(known, password):
            raise _Refusal("INVALID_CREDENTIALS", "invalid email or password", http_status=401)
        self.counts["logins"] += 1
        return self._session(email, self._issue(email, "refresh", self.settings.refresh_ttl_s))

    def _refresh(self, body: dict[str, Any]) -> HttpResponse:
        text = body.get("refreshToken")
        token = self._tokens.get(text) if isinstance(text, str) else None
        if token is None or token.kind != "refresh" or self.clock.now_ns() >= token.expires_ns:
            raise _Refusal("INVALID_TOKEN", "invalid or expired refresh token")
        self.counts["refreshes"] += 1
        return self._session(token.user, str(text))

    def _authenticate(self, request: HttpRequest) -> tuple[str, str]:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = self._tokens.get(value) if scheme.lower() == "bearer" else None
        if token is None or token.kind != "access":
            raise _Refusal("INVALID_TOKEN", "invalid token")
        if self.clock.now_ns() >= token.expires_ns:
            raise _Refusal("TOKEN_EXPIRED", "token expired")
        return value, token.user

    def _logout(self, token: str, user: str, body: Any) -> HttpResponse:
        found = self._tokens.pop(token, None)
        if found is not None and found.pair:
            self._tokens.pop(found.pair, None)
        self.counts["logouts"] += 1
        return self._ok("ok")

    def _user(self, token: str, user: str, body: Any) -> HttpResponse:
        return self._ok(self._user_object(user))

    # ---- orders --------------------------------------------------------------------------
    @staticmethod
    def _decimal(body: dict[str, Any], name: str, required: bool = False) -> Decimal | None:
        value = body.get(name)
        if value is None or value == "":
            if required:
                raise _Refusal("VALIDATION_ERROR", f"{name} is required")
            return None
        if not isinstance(value, str) or len(value) > 64 or not DECIMAL_TEXT.fullmatch(value):
            raise _Refusal("VALIDATION_ERROR", f"{name} must be a decimal string matching ^-?\\d+(\\.\\d+)?$")
        return Decimal(value)

    async def _submit(self, token: str, user: str, body: dict[str, Any]) -> HttpResponse:
        key = body.get("idempotencyKey") or body.get("clientOrderId")
        if key is not None and not isinstance(key, str):
            raise _Refusal("VALIDATION_ERROR", "idempotencyKey must be a string")
        account = body.get("tradingAccountId")
        if account != self.trading_account_id:
            raise _Refusal("NOT_FOUND", f"no trading account {account!r}")
        if key:
            seen = self.orders_by_key.get((account, key))
            if seen is not None:  # ALG-4: the original order, never a second one
                self.counts["idempotent_replays"] += 1
                return self._ok([self._orders[seen].view(self.settings.venue)])
        instrument_id = body.get("instrumentId")
        symbol = self.symbol_of(instrument_id) if isinstance(instrument_id, str) else None
        if symbol is None:
            raise _Refusal("INVALID_INSTRUMENT", f"unknown instrument {instrument_id!r}")
        side, order_type = body.get("orderSide"), body.get("orderType")
        if side not in ("BUY", "SELL"):
            raise _Refusal("VALIDATION_ERROR", f"orderSide must be BUY or SELL, not {side!r}")
        if order_type not in ("LIMIT", "MARKET"):
            raise _Refusal("VALIDATION_ERROR", f"orderType {order_type!r} is not supported by the sandbox")
        tif = body.get("timeInForce") or ""
        if tif not in _TIFS:
            raise _Refusal("VALIDATION_ERROR", f"timeInForce {tif!r} is not supported by the sandbox")
        quantity = self._decimal(body, "quantity", required=True)
        limit = self._decimal(body, "limitPrice", required=order_type == "LIMIT")
        stop = self._decimal(body, "stopPrice")
        assert quantity is not None
        engine = self.sim.matching_engine(symbol)
        if quantity <= 0 or quantity % engine.lot_size:
            raise _Refusal("VALIDATION_ERROR", f"quantity {quantity} is not a positive multiple of the lot size "
                           f"{engine.lot_size}")
        if order_type == "LIMIT" and (limit is None or limit <= 0 or limit % engine.tick_size):
            raise _Refusal("VALIDATION_ERROR", f"limitPrice {limit} is not on the price grid {engine.tick_size}")
        if order_type == "MARKET" and limit is not None:
            raise _Refusal("VALIDATION_ERROR", "a MARKET order takes no limitPrice")
        now_ms = self.clock.now_ns() // NS_PER_MS
        order = _Order(str(uuid.UUID(int=self._rng.getrandbits(128), version=4)), account, instrument_id, symbol,
                       body, quantity, limit, stop, now_ms, key or "")
        self._orders[order.trade_order_id] = order
        if key:
            self.orders_by_key[(account, key)] = order.trade_order_id
        self.counts["orders"] += 1
        problem = self._reserve(order)
        if problem is not None:
            self._finish(order, "REJECTED", problem)
            view = [order.view(self.settings.venue)]
            if self.settings.extensions.reject_envelope:
                code = "INSUFFICIENT_BALANCE" if self.settings.extensions.error_codes else "ORDER_REJECTED"
                raise _Refusal(code, problem, view, http_status=422)
            return self._ok(view)
        self._changed(order)
        self.sim.place(order.trade_order_id, symbol, Side(order.side.lower()), quantity, limit,
                       OrderType(order_type.lower()), _TIFS[tif], post_only=tif == "GTX")  # ALG-7: GTX = post-only
        await self._venue_pass(order)
        if body.get("awaitClosed") is True:  # document: wait up to 1 second for a final state
            deadline = asyncio.get_running_loop().time() + 1
            while order.status in _OPEN and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
        return self._ok([order.view(self.settings.venue)])

    async def _venue_pass(self, order: _Order) -> None:
        """Let the simulated venue take a request it processes at once (a few loop passes), so the
        answer shows its acknowledgement ("returns immediately with the initial order state")."""
        status = order.status
        for _ in range(4):
            if order.status != status:
                return
            await asyncio.sleep(0)

    def _reserve(self, order: _Order) -> str | None:
        """Hold what the order may spend; the refusal's reason when the free balance is short."""
        if order.side == "BUY":
            asset = order.quote
            price = order.limit if order.limit is not None else self._market_price(order.symbol)
            need = order.quantity * price * (1 + self.settings.fee_rate)
        else:
            asset, need = order.base, order.quantity
        free = self.balances.get(asset, ZERO) - self._reserved.get(asset, ZERO)
        if need > free:
            return f"insufficient balance: {need} {asset} needed, {free} {asset} free"
        order.reserved = need
        self._reserved[asset] = self._reserved.get(asset, ZERO) + need
        return None

    def _market_price(self, symbol: str) -> Decimal:
        engine = self.sim.matching_engine(symbol)
        best = engine.best_ask
        reference = best if best is not None else engine.reference_price or self.instruments[symbol].previous_close
        return reference * Decimal("1.05")

    def _release(self, order: _Order) -> None:
        if order.reserved:
            asset = order.quote if order.side == "BUY" else order.base
            self._reserved[asset] = self._reserved.get(asset, ZERO) - order.reserved
            order.reserved = ZERO

    def _finish(self, order: _Order, status: str, reason: str = "") -> None:
        self._release(order)
        order.status = status
        order.updated_ms = self.clock.now_ns() // NS_PER_MS
        if status == "REJECTED":
            order.reject_reason = reason
            self.counts["rejected"] += 1
        elif status in ("CANCELLED", "EXPIRED"):
            order.cancel_reason = reason
            order.canceled_ms = order.updated_ms
        self._changed(order)

    def _changed(self, order: _Order) -> None:
        if self.order_listeners:
            view = _wire(order.view(self.settings.venue))
            for listener in list(self.order_listeners):
                try:
                    listener(view)
                except Exception:
                    log.exception("algo724 sandbox: an order listener failed")

    async def _cancel(self, token: str, user: str, body: dict[str, Any]) -> HttpResponse:
        order = self._orders.get(body.get("tradeOrderId")) if isinstance(body.get("tradeOrderId"), str) else None
        if order is None or order.account != body.get("tradingAccountId"):
            raise _Refusal("NOT_FOUND", f"no trade order {body.get('tradeOrderId')!r} in that account")
        if order.status not in _OPEN:
            raise _Refusal("ORDER_NOT_OPEN", f"order is {order.status}", [order.view(self.settings.venue)],
                           http_status=409)
        self.counts["cancels"] += 1
        self.sim.cancel(order.trade_order_id)
        await self._venue_pass(order)
        return self._ok(order.view(self.settings.venue))

    def _list(self, token: str, user: str, query: dict[str, list[str]]) -> HttpResponse:
        def one(name: str) -> str | None:
            values = query.get(name)
            return values[-1] if values else None

        def integer(name: str, default: int, low: int, high: int) -> int:
            text = one(name)
            if text is None or text == "":
                return default
            if not text.isdigit() or not low <= int(text) <= high:
                raise _Refusal("VALIDATION_ERROR", f"{name} must be an integer in [{low}, {high}]")
            return int(text)

        rows = [o for o in self._orders.values() if o.account == self.trading_account_id]
        for name, attr in (("tradeOrderId", "trade_order_id"), ("orderStatus", "status"),
                           ("tradingAccountId", "account"), ("instrumentId", "instrument_id")):
            wanted = one(name)
            if wanted:
                rows = [o for o in rows if getattr(o, attr) == wanted]
        start, end = integer("startTime", 0, 0, 10**15), integer("endTime", 10**15, 0, 10**15)
        rows = [o for o in rows if start <= o.created_ms <= end]
        ascending = (one("ascending") or "false").lower() == "true"
        rows.sort(key=lambda o: o.created_ms, reverse=not ascending)  # stable: equal times keep their order
        limit = integer("limit", 50, 1, 1000)
        offset = integer("offset", 0, 0, 10**9)
        cursor = one("cursor")
        if cursor:
            if not cursor.startswith("o") or not cursor[1:].isdigit():
                raise _Refusal("VALIDATION_ERROR", "cursor is not one this server gave")
            offset = int(cursor[1:])
        page = rows[offset:offset + limit]
        more = offset + limit < len(rows)
        pagination = {"offset": offset, "limit": limit, "total": len(rows),
                      "cursor": f"o{offset + limit}" if more else "", "hasNext": more}
        return self._ok([o.view(self.settings.venue) for o in page], pagination)

    # ---- the simulated venue's reports ---------------------------------------------------
    def on_order_update(self, update: OrderUpdate) -> None:
        order = self._orders.get(update.client_id)
        if order is None or order.status not in _OPEN:
            return
        status = update.status
        if status is OrderStatus.NEW:
            if order.status in ("SUBMITTED", "CREATED"):
                order.status = "ACCEPTED"
                order.updated_ms = self.clock.now_ns() // NS_PER_MS
                self._changed(order)
        elif status is OrderStatus.CANCELLED:
            self._finish(order, "CANCELLED", update.reason or "cancelled")
        elif status is OrderStatus.EXPIRED:
            self._finish(order, "EXPIRED", update.reason or "expired")
        elif status is OrderStatus.REJECTED:
            self._finish(order, "REJECTED", update.reason or "rejected by the venue")

    def on_fill(self, fill: Fill) -> None:
        order = self._orders.get(fill.client_id)
        if order is None:
            return
        now_ms = fill.ts // NS_PER_MS
        qty, price = fill.qty, fill.price
        cost = qty * price
        rate = self.settings.fee_rate
        if self.settings.extensions.quote_fees or order.side == "SELL":
            fee_asset, fee = order.quote, (cost * rate).quantize(Decimal("0.00000001"))
        else:  # literal: as the document's example, a buy pays in the asset it receives
            fee_asset, fee = order.base, (qty * rate).quantize(Decimal("0.00000001"))
        venue = self.settings.venue
        number = next(self._exec_numbers)
        order.executions.append({
            "executionId": str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            "externalTradeId": f"{venue.lower()}-exec-{number}", "venue": venue, "instrumentId": order.instrument_id,
            "orderSide": order.side, "executedQuantity": qty, "executedPrice": price, "executedCost": cost,
            "fees": [{"security": f"{venue}:{fee_asset}", "asset": fee_asset, "venue": venue, "quantity": fee}],
            "executedAt": now_ms, "executedAtDateTime": _iso(now_ms),
        })
        order.filled += qty
        order.cost += cost
        order.updated_ms = now_ms
        if order.side == "BUY":
            spent = cost + (fee if fee_asset == order.quote else ZERO)
            self._move(order.quote, -spent)
            self._move(order.base, qty - (fee if fee_asset == order.base else ZERO))
            held = min(order.reserved, qty * (order.limit or price) * (1 + rate))
        else:
            self._move(order.base, -qty)
            self._move(order.quote, cost - fee)
            held = min(order.reserved, qty)
        asset = order.quote if order.side == "BUY" else order.base
        order.reserved -= held
        self._reserved[asset] = self._reserved.get(asset, ZERO) - held
        self.counts["executions"] += 1
        if order.filled >= order.quantity:
            self._finish(order, "FILLED")
        else:
            order.status = "PARTIALLY_FILLED"
            self._changed(order)

    def _move(self, asset: str, amount: Decimal) -> None:
        self.balances[asset] = self.balances.get(asset, ZERO) + amount


# --------------------------------------------------------------------------------------------
# Command line: engine sandbox algo724


def _secret(env: str | None, file: Path | None, what: str, generate: bool) -> str:
    try:
        return read_secret(env, file, what)
    except MissingSecret as exc:
        if generate and file is None:
            return "sandbox@example.com" if what == "email" else secrets.token_urlsafe(24)
        hint = " (or --password-file)" if what == "password" else ""
        raise SandboxStartError(f"algo724 sandbox: {exc}{hint}") from None


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--email-env", default="ALGO724_EMAIL", metavar="NAME",
                        help="environment variable holding the login email (default ALGO724_EMAIL)")
    parser.add_argument("--password-env", default="ALGO724_PASSWORD", metavar="NAME",
                        help="environment variable holding the password (default ALGO724_PASSWORD)")
    parser.add_argument("--password-file", type=Path, metavar="FILE", help="or: a file holding it (first line)")
    parser.add_argument("--access-ttl", type=int, default=3600, metavar="S",
                        help="access token lifetime, seconds (document: expiresIn 3600)")
    parser.add_argument("--rate", type=int, default=10, metavar="N", help="requests per second per user (ALG-10)")
    parser.add_argument("--trading-account-id", default=DOC_ACCOUNT, metavar="UUID",
                        help=f"the account's tradingAccountId (default the document's {DOC_ACCOUNT})")
    parser.add_argument("--route-venue", default=DOC_VENUE, metavar="VENUE",
                        help="the underlying venue of every instrumentId (default BINANCE)")
    add_extension_arguments(parser, AlgoExtensions)


def _sandbox_from_args(args: argparse.Namespace, generate: bool) -> AlgoSandbox:
    email = _secret(args.email_env, None, "email", generate)
    password = _secret(args.password_env, args.password_file, "password", generate)
    instruments: Iterable[Instrument] = DOC_INSTRUMENTS
    if args.config is not None:
        instruments = venue_from_config(args.config, "algo724").instruments
    settings = SandboxSettings(
        host=args.host, port=args.port, users={email: password}, access_ttl_s=args.access_ttl,
        rate_per_second=args.rate, trading_account_id=args.trading_account_id, venue=args.route_venue,
        market=not args.no_market, seed=args.seed, extensions=extensions_from_args(AlgoExtensions, args),
    )
    clock, _text = sandbox_clock(args)
    return AlgoSandbox(settings, instruments=instruments, clock=clock)


def _stopped_line(sandbox: AlgoSandbox) -> str:
    return f"algo724 sandbox: stopped; {json.dumps({k: v for k, v in sandbox.counts.items() if v})}"


async def _listen(sandbox: AlgoSandbox, args: argparse.Namespace) -> tuple[FaultTimers, StreamFeed]:
    # the Centrifugo streams beside the REST API (adapters/algo724/centrifugo_feed.py; branch algcf)
    feed = StreamFeed(sandbox, host=args.host, port=args.ws_port)
    try:
        await sandbox.start()
        await feed.start()
    except OSError as exc:
        await feed.stop()
        await sandbox.stop()
        raise SandboxStartError(f"cannot listen on {args.host}:{args.port}/{args.ws_port}: "
                                f"{exc.strerror or exc}") from None
    timers = FaultTimers(sandbox.clock, lambda spec: sandbox.inject(spec.kind, **spec.params), log)
    timers.arm(args.fault)
    return timers, feed


async def _serve(args: argparse.Namespace) -> int:
    sandbox = _sandbox_from_args(args, generate=False)
    faults, feed = await _listen(sandbox, args)
    try:
        print(f"algo724 sandbox: {sandbox.base_url} (account {sandbox.trading_account_id})", flush=True)
        print(f"algo724 sandbox: streams {feed.url}", flush=True)
        print(f"algo724 sandbox: {extensions_line(sandbox.settings.extensions)}", flush=True)
        await until_stopped(args.duration)
    finally:
        faults.cancel()
        await feed.stop()
        await sandbox.stop()
    print(_stopped_line(sandbox), flush=True)
    return 0


@contextlib.asynccontextmanager
async def _start(args: argparse.Namespace, config: Path) -> AsyncIterator[SandboxLink]:
    free_ports(args, COMMAND.ports)
    args.config = args.config or config
    sandbox = _sandbox_from_args(args, generate=True)
    faults, feed = await _listen(sandbox, args)
    (email, password), = sandbox.settings.users.items()
    try:
        yield SandboxLink(
            clock=sandbox.clock,
            adapter_options={"algo724": {
                "base_url": sandbox.base_url, "email_env": args.email_env, "password_env": args.password_env,
                "password_file": None, "trading_account_id": sandbox.trading_account_id,
                "route_venue": sandbox.settings.venue, "streams_url": feed.url,
            }},
            environment={args.email_env: email, args.password_env: password},
            secret_values=frozenset({password}), order_adapter="algo724",
            description=f"algo724 sandbox: {sandbox.base_url}, clock {sandbox.clock.describe()}",
            stopped=lambda: _stopped_line(sandbox),
        )
    finally:
        faults.cancel()
        await feed.stop()
        await sandbox.stop()


def _fault_help() -> str:
    return (fault_help(SUPPORTED_FAULTS)
            + '\n  on request too: POST http://HOST:PORT/sandbox/faults {"kind": KIND, key: value}')


COMMAND = VenueSandboxCommand(
    name="algo724",
    description="The Algo724 Cadenza Fermata REST API (document 003; paths per VENUES.md ALG-1) on localhost, on "
    "the simulated venue (crypto, open all the time). Alone, it needs its login in the environment (or a file).",
    ports=(Port("port", 8094, "REST"), Port("ws-port", 8095, "Centrifugo WebSocket (streams)")),
    add_arguments=_arguments,
    parse_fault=spec_reader("algo724", SUPPORTED_FAULTS),
    fault_syntax="SPEC = KIND[@WHEN[/EVERY]][,key=value...] of the one vocabulary (below), e.g. 5xx@10,count=3, "
    "slow@5,delay_s=3, expire_tokens@60",
    fault_help=_fault_help,
    serve_async=_serve,
    start=_start,
    config_help="take the instruments from this engine config (default: BTC/USDT and ETH/USDT)",
)


def main(argv: list[str] | None = None) -> int:
    """``python -m adapters.algo724.sandbox ARGS``: the REST server alone until Ctrl-C or --duration."""
    return COMMAND.main(argv)


if __name__ == "__main__":
    sys.exit(main())
