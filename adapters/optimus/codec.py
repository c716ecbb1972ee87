"""The Optimus wire format, sans I/O: bytes in, model objects out, and back.

Source: shared/seeds/000_fea88fb25a350a1d.txt ("Complete Trading API Documentation for Vision Max
Integration", Version 1.0), digested in shared/VENUES.md section 1. The document names endpoints,
webhook events, the response envelope, the JSON conventions (section 12), the error table (section
13) and the rate limits (section 11), but defines **no request or response body**. Every field
name below that the document does not give is an assumption, marked with the gap it fills
(``OPT-n`` from VENUES.md 1.13; OPT-10 and up are new gaps listed in notes/optimus.md). A real
broker's format replaces this one module: the adapter and its tests only see the functions and
records here.

Conventions (document section 12): snake_case names, ISO 8601 ``YYYY-MM-DDTHH:mm:ss.sssZ`` times,
numbers as JSON numbers. Numbers are read straight from the text into ``Decimal``
(``parse_float=Decimal``) and written from ``Decimal`` without exponent and without ever passing
through a binary float.

Hostile input (issue 17): the decode entry points (:func:`loads`, :func:`parse_envelope`,
:func:`decode_webhook` and the ``WebhookEvent`` readers, the ``decode_*`` functions, :func:`parse_ts`)
raise only :class:`CodecError`, for any bytes whatever, with ``CodecError.kind`` an
:mod:`engine.venue.badinput` kind (``not_json``, ``too_large``, ``too_deep``, ``bad_number``,
``malformed``). JSON is read by the shared bounded reader (:mod:`adapters.kit.wirejson`); numbers are
bounded (``|x| < 10**18``) before any arithmetic, so no sum can overflow the decimal context.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from adapters.kit.wirejson import Reader, WireError, amount, integer
from engine.model import Fill, Liquidity, Order, OrderStatus, OrderType, Side, TimeInForce, VenueOrder
from engine.venue.badinput import BAD_SIGNATURE, MALFORMED, STALE_SIGNATURE
from engine.venue.rejects import REJECT_CODES, Reject

__all__ = [
    "BROKER_ERRORS",
    "IDEMPOTENCY_HEADER",
    "ORDER_EVENTS",
    "SIGNATURE_HEADER",
    "WEBHOOK_EVENTS",
    "BuyingPower",
    "CodecError",
    "Execution",
    "Failure",
    "Holding",
    "OrderView",
    "Paths",
    "PortfolioSummary",
    "SignatureError",
    "StaleSignatureError",
    "Success",
    "Tokens",
    "WebhookEvent",
    "classify_order_failure",
    "decode_buying_power",
    "decode_executions",
    "decode_holdings",
    "decode_order",
    "decode_orders",
    "decode_summary",
    "decode_tokens",
    "decode_webhook",
    "dumps",
    "encode_cancel",
    "encode_executions_query",
    "encode_login",
    "encode_place",
    "encode_refresh",
    "encode_status",
    "engine_code",
    "format_ts",
    "loads",
    "order_reject_code",
    "parse_envelope",
    "parse_ts",
    "sign_webhook",
    "verify_webhook",
]

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000


class CodecError(ValueError):
    """A message that does not follow the wire format: the caller counts it (by ``kind``, an
    :mod:`engine.venue.badinput` kind), logs it once with a sample, and never guesses what it meant."""

    def __init__(self, reason: str, kind: str = MALFORMED) -> None:
        super().__init__(reason)
        self.kind = kind


class SignatureError(ValueError):
    """A webhook whose HMAC signature is missing, malformed or wrong (answered 401)."""

    kind: str = BAD_SIGNATURE


class StaleSignatureError(SignatureError):
    """A well-formed signature made too far from our clock: a replay, or a clock that drifted."""

    kind = STALE_SIGNATURE


# --------------------------------------------------------------------------------------------
# Endpoints


class Paths:
    """REST paths under the base URL (document section 2: ``https://api.optimuscapital.com/v1``,
    "ALL POST": every call is a POST, reads included)."""

    # OPT-10 (new gap): the document implies an "Authentication APIs" class (section 11) and JWTs
    # with 1 h / 7 d lifetimes but names no endpoint or body. Assumed: login and refresh below.
    LOGIN = "/auth/login"
    REFRESH = "/auth/refresh"
    # OPT-3: "/orders" is named only in a comment; cancel and status are assumed as the digest proposes.
    ORDERS = "/orders"
    CANCEL = "/orders/cancel"
    STATUS = "/orders/status"
    # OPT-3 extension (no listing exists in the document): the open orders of the account and its
    # executions since a time, which reconciliation and webhook-backup polling need.
    OPEN_ORDERS = "/orders/open"
    EXECUTIONS = "/orders/executions"
    # document section 2 / "Portfolio APIs", verbatim
    SUMMARY = "/portfolio/summary"
    HOLDINGS = "/portfolio/holdings"
    BUYING_POWER = "/account/buying-power"
    # document "Webhook Notifications": Optimus POSTs here on the integrator's side (OPT-1)
    WEBHOOK = "/webhook/visionmax"


# OPT-8: the idempotency-key carrier is unnamed; the key goes in this header *and* in the body.
IDEMPOTENCY_HEADER = "Idempotency-Key"
# OPT-5: the document is silent on webhook authentication; see :func:`sign_webhook`.
SIGNATURE_HEADER = "X-Optimus-Signature"

# --------------------------------------------------------------------------------------------
# Error codes (document section 13, complete): the engine uses the same numbers (engine/rejects.py)

BROKER_ERRORS: dict[int, str] = {
    1001: "Authentication - Invalid token",
    1002: "Authentication - Token expired",
    1003: "Authorization - Insufficient permissions",
    2001: "Trading - Invalid symbol",
    2002: "Trading - Invalid quantity (lot size)",
    2003: "Trading - Invalid price (outside circuit breaker)",
    2004: "Trading - Insufficient buying power",
    2005: "Trading - Position not held (for sell orders)",
    2006: "Trading - Market closed",
    2007: "Trading - Order type not supported",
    2008: "Trading - Position limit exceeded",
    2009: "Trading - Sector exposure limit exceeded",
    2010: "Trading - Circuit breaker triggered",
    3001: "System - Rate limit exceeded",
    3002: "System - Idempotency key reused",
    4001: "Settlement - Unsettled funds not available",
    4002: "Settlement - T+2 settlement in progress",
    9001: "Vision Max - Backend connectivity issue",
    9002: "Vision Max - Order rejected by exchange",
}
assert all(code in REJECT_CODES for code in BROKER_ERRORS), "engine/rejects.py must carry the broker table"


def engine_code(error_code: int | None, http_status: int) -> int:
    """The engine's reject code for a broker error.

    The broker's 4-digit codes *are* engine codes (engine/rejects.py copies the table). Where the
    broker gives none, the HTTP status decides: 401 -> 1001, 403 -> 1003, 429 -> 3001, 5xx -> 9001,
    any other 4xx -> 7005 (the broker refused the request itself, not a trading rule). A code the
    table does not know (a newer broker release) becomes 9002 "rejected by exchange"; the caller
    keeps the broker's number in the reason.
    """
    if error_code is not None:
        return error_code if error_code in BROKER_ERRORS else int(Reject.EXCHANGE_REJECT)
    if http_status == 401:
        return int(Reject.INVALID_TOKEN)
    if http_status == 403:
        return int(Reject.INSUFFICIENT_PERMISSIONS)
    if http_status == 429:
        return int(Reject.RATE_LIMIT_EXCEEDED)
    if http_status >= 500:
        return int(Reject.BACKEND_CONNECTIVITY)
    return int(Reject.INVALID_ORDER)


# --------------------------------------------------------------------------------------------
# JSON and time


#: a body larger than this is refused unread (a listing of a thousand orders is about 500 KB)
MAX_BODY_CHARS = 8 << 20
_READER = Reader(MAX_BODY_CHARS)


def loads(raw: bytes | str) -> Any:
    """Parse UTF-8 JSON with every non-integer number as an exact ``Decimal`` (never a float),
    within the shared reader's bounds (adapters.kit.wirejson)."""
    try:
        return _READER.loads(raw)
    except WireError as exc:
        raise CodecError(exc.reason, exc.kind) from None


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(json.dumps(value))
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise CodecError(f"cannot send the non-finite number {value}")
        # document section 12: JSON numbers, not strings; VENUES.md 6.12: never exponent notation
        out.append(format(value, "f"))
    elif isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise CodecError(f"JSON keys must be strings, got {key!r}")
            if i:
                out.append(",")
            out.append(json.dumps(key))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif isinstance(value, float):
        raise CodecError(f"binary float {value!r} on the wire: money must be a Decimal")
    else:
        raise CodecError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> bytes:
    """Compact JSON; ``Decimal`` as a plain JSON number, a float refused."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode()


_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_ts(ts_ns: int) -> str:
    """Document section 12: ``YYYY-MM-DDTHH:mm:ss.sssZ`` (UTC, milliseconds)."""
    seconds, rest = divmod(ts_ns, NS_PER_S)
    moment = datetime.fromtimestamp(seconds, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{rest // NS_PER_MS:03d}Z"


def parse_ts(text: Any) -> int:
    """ISO 8601 with ``Z`` or an offset, any fraction up to ns, to ns since the epoch (exact)."""
    if not isinstance(text, str):
        raise CodecError(f"timestamp must be an ISO 8601 string, got {text!r}")
    match = _ISO.match(text)
    if match is None:
        raise CodecError(f"timestamp {text!r} is not ISO 8601 (YYYY-MM-DDTHH:mm:ss.sssZ)")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    except ValueError as exc:
        raise CodecError(f"timestamp {text!r}: {exc}") from None
    ns = int((moment - _EPOCH).total_seconds()) * NS_PER_S
    if fraction:
        ns += int(fraction.ljust(9, "0"))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        ns -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * NS_PER_S
    return ns


# --------------------------------------------------------------------------------------------
# Field readers: strict, with the field name in every error


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CodecError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _field(data: dict[str, Any], name: str) -> Any:
    try:
        return data[name]
    except KeyError:
        raise CodecError(f"missing field {name!r}") from None


def _str(data: dict[str, Any], name: str, default: str | None = None) -> str:
    value = data.get(name, default) if default is not None else _field(data, name)
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise CodecError(f"field {name!r} must be a string, got {value!r}")
    return value


def _dec(data: dict[str, Any], name: str, *, optional: bool = False) -> Decimal | None:
    value = data.get(name) if optional else _field(data, name)
    if value is None:
        if optional:
            return None
        raise CodecError(f"field {name!r} must be a number, got null")
    # document section 12: "Numbers: Use JSON number type (not strings)"; a string is a misread
    if type(value) is not int and type(value) is not Decimal:
        raise CodecError(f"field {name!r} must be a JSON number, got {str(value)[:40]!r}")
    try:
        return amount(value, f"field {name!r}")
    except WireError as exc:
        raise CodecError(exc.reason, exc.kind) from None


def _req_dec(data: dict[str, Any], name: str) -> Decimal:
    value = _dec(data, name)
    assert value is not None
    return value


def _int(data: dict[str, Any], name: str, *, optional: bool = False) -> int | None:
    value = data.get(name) if optional else _field(data, name)
    if value is None and optional:
        return None
    try:
        return integer(value, f"field {name!r}")
    except WireError as exc:
        raise CodecError(exc.reason, exc.kind) from None


# --------------------------------------------------------------------------------------------
# The response envelope (document section 12, verbatim):
#   Success: { "status": "success", "code": 200, "data": { ... }, "request_id": "..." }
#   Error:   { "status": "error", "code": 400, "message": "Summary", "error_details": { ... }, "request_id": "..." }


@dataclass(frozen=True, slots=True)
class Success:
    http_status: int
    data: Any
    request_id: str


@dataclass(frozen=True, slots=True)
class Failure:
    """An error envelope (or an HTTP error without one). ``error_code`` is the 4-digit business
    code when the broker gave one (OPT-4: in ``error_details.error_code``)."""

    http_status: int
    error_code: int | None
    message: str
    details: dict[str, Any]
    request_id: str

    @property
    def engine_code(self) -> int:
        return engine_code(self.error_code, self.http_status)

    def describe(self) -> str:
        """One line for logs and reject reasons: broker code, message, request id (never a token)."""
        code = f"{self.error_code} " if self.error_code is not None else ""
        rid = f" (request_id {self.request_id})" if self.request_id else ""
        return f"HTTP {self.http_status}: {code}{self.message}{rid}"


def parse_envelope(http_status: int, raw: bytes) -> Success | Failure:
    """Read one response. A 5xx whose body is not an envelope (a proxy's HTML page) is still a
    :class:`Failure`; any other body that is not an envelope raises :class:`CodecError`."""
    try:
        body = _obj(loads(raw), "response")
        status = body.get("status")
        # OPT-4: "code" is taken as the HTTP status echoed; the business code is in error_details,
        # or in "code" itself when it is one of section 13's
        code = _int(body, "code", optional=True)
        request_id = body.get("request_id") or ""
        if not isinstance(request_id, str):
            raise CodecError(f"field 'request_id' must be a string, got {request_id!r}")
        if status == "success":
            if http_status >= 300:
                raise CodecError(f"HTTP {http_status} with a success envelope")
            if "data" not in body:
                raise CodecError("success envelope without 'data'")
            return Success(code or http_status, body["data"], request_id)
        if status == "error":
            details = body.get("error_details") or {}
            details = _obj(details, "error_details")
            error_code = _int(details, "error_code", optional=True)  # OPT-4
            if error_code is None and code in BROKER_ERRORS:
                # 000's envelope has one code field: a broker that puts section 13's code there
                # (a document-literal one) says 2002 in "code" where we assumed the HTTP status
                error_code = code
            message = body.get("message") or ""
            if not isinstance(message, str):
                raise CodecError(f"field 'message' must be a string, got {message!r}")
            return Failure(http_status, error_code, message, details, request_id)
        raise CodecError(f"envelope status must be 'success' or 'error', got {status!r}")
    except CodecError:
        if http_status >= 500:
            return Failure(http_status, None, f"HTTP {http_status} without an error envelope", {}, "")
        raise


def order_reject_code(reject_code: int | None) -> int:
    """The engine's code for an order the broker reports rejected (a status, a webhook): its own
    code when the table has it, else 9002 "Order rejected by exchange"."""
    return reject_code if reject_code in BROKER_ERRORS else int(Reject.EXCHANGE_REJECT)


OrderOutcome = Literal["rejected", "unknown", "auth", "duplicate"]


def classify_order_failure(failure: Failure) -> OrderOutcome:
    """What a failed order request means for the order.

    - ``auth``: 401 / 1001 / 1002, refused before any processing: refresh the token and resend.
    - ``duplicate``: 3002, the broker already holds a request with this idempotency key (OPT-8):
      the order exists; only a status query says in which state.
    - ``unknown``: 5xx or 9001 (the broker or Vision Max failed somewhere after receiving it): the
      order may or may not have been placed; never guessed, resolved by a status query.
    - ``rejected``: any other 4xx: the broker refused the order (a trading rule, a malformed
      request, a rate limit); the order does not exist at the broker.
    """
    code = failure.error_code
    if failure.http_status == 401 or code in (Reject.INVALID_TOKEN, Reject.TOKEN_EXPIRED):
        return "auth"
    if code == Reject.IDEMPOTENCY_KEY_REUSED:
        return "duplicate"
    if failure.http_status >= 500 or code == Reject.BACKEND_CONNECTIVITY:
        return "unknown"
    return "rejected"


# --------------------------------------------------------------------------------------------
# Authentication (OPT-10: bodies assumed; document section 11: "JWT Expiry: 1 hour access
# tokens, 7 day refresh tokens"; VENUES.md 1.2: "Authorization: Bearer <access_jwt>")

ACCESS_TTL_S = 3600  # document section 11
REFRESH_TTL_S = 7 * 24 * 3600  # document section 11


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str
    access_expires_ns: int
    refresh_expires_ns: int

    def __repr__(self) -> str:  # never print a token
        return f"Tokens(access expires {self.access_expires_ns}, refresh expires {self.refresh_expires_ns})"


def encode_login(username: str, password: str) -> dict[str, Any]:
    return {"username": username, "password": password}


def encode_refresh(refresh_token: str) -> dict[str, Any]:
    return {"refresh_token": refresh_token}


def decode_tokens(data: Any, now_ns: int) -> Tokens:
    """``{access_token, refresh_token, token_type: "Bearer", expires_in, refresh_expires_in}``
    (OPT-10; lifetimes in seconds, defaulting to the document's 1 h and 7 d when absent)."""
    data = _obj(data, "token data")
    token_type = data.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise CodecError(f"token_type must be 'Bearer', got {token_type!r}")
    access = _str(data, "access_token")
    refresh = _str(data, "refresh_token")
    if not access or not refresh:
        raise CodecError("empty token")
    expires_in = _int(data, "expires_in", optional=True)
    refresh_in = _int(data, "refresh_expires_in", optional=True)
    return Tokens(
        access,
        refresh,
        now_ns + (ACCESS_TTL_S if expires_in is None else expires_in) * NS_PER_S,
        now_ns + (REFRESH_TTL_S if refresh_in is None else refresh_in) * NS_PER_S,
    )


# --------------------------------------------------------------------------------------------
# Orders (OPT-3: the request and response bodies are assumed as VENUES.md 1.13 proposes)

WIRE_SIDE = {Side.BUY: "buy", Side.SELL: "sell"}
SIDE_FROM_WIRE = {v: k for k, v in WIRE_SIDE.items()}
# OPT-3 / OPT-7: "limit" and "market" are implied, "mit" and "mtl" listed; the engine's model
# has limit and market only, so those are all the adapter ever sends.
WIRE_ORDER_TYPE = {OrderType.LIMIT: "limit", OrderType.MARKET: "market"}
# OPT-7 / OPT-9: IOC and FOK (listed as "order types") are time in force; DAY is the default;
# GTC is not offered (the adapter declares gtc=False and the engine refuses it before sending).
WIRE_TIF = {TimeInForce.DAY: "day", TimeInForce.IOC: "ioc", TimeInForce.FOK: "fok"}

# OPT-3: order status values, assumed snake_case; "pending" = accepted by Optimus, not yet
# confirmed by the exchange (the engine's pending_new).
STATUS_FROM_WIRE: dict[str, OrderStatus | None] = {
    "pending": None,
    "open": OrderStatus.NEW,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "cancelled": OrderStatus.CANCELLED,
    "rejected": OrderStatus.REJECTED,
    "expired": OrderStatus.EXPIRED,
}
OPEN_WIRE_STATUSES = frozenset({"pending", "open", "partially_filled"})


def encode_place(order: Order) -> dict[str, Any]:
    """``POST /orders``. The client order id doubles as the idempotency key (VENUES.md 6.5):
    resending the same order after a lost answer can never place it twice."""
    try:
        tif = WIRE_TIF[order.tif]
        order_type = WIRE_ORDER_TYPE[order.type]
    except KeyError as exc:
        raise CodecError(f"Optimus has no wire value for {exc.args[0]!r}") from None
    body: dict[str, Any] = {
        "symbol": order.symbol,
        "side": WIRE_SIDE[order.side],
        "order_type": order_type,
        "time_in_force": tif,
        "quantity": order.qty,
        "client_order_id": order.client_id,
        "idempotency_key": order.client_id,  # OPT-8: body field as well as the header
    }
    if order.price is not None:
        body["price"] = order.price
    return body


def encode_cancel(client_order_id: str, order_id: str, idempotency_key: str) -> dict[str, Any]:
    """``POST /orders/cancel`` (OPT-3). The broker's order id when known, else our id (the sandbox
    accepts either)."""
    body: dict[str, Any] = {"client_order_id": client_order_id, "idempotency_key": idempotency_key}
    if order_id:
        body["order_id"] = order_id
    return body


def encode_status(client_order_id: str) -> dict[str, Any]:
    """``POST /orders/status`` by our id (OPT-3), so an order whose placing answer was lost (no
    broker id known) can still be found."""
    return {"client_order_id": client_order_id}


def encode_executions_query(since_ns: int) -> dict[str, Any]:
    return {"since": format_ts(since_ns)}


@dataclass(frozen=True, slots=True)
class Execution:
    """One fill of one of our orders. ``execution_id`` is the broker's id of the fill, the same in
    the ``order.execution`` webhook and in every query (OPT-5 extension), so a fill seen twice is
    recognised."""

    execution_id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    ts_ns: int

    def to_fill(self, venue: str) -> Fill:
        # the document's order.execution carries no commission field: the fill states no fee
        # (None) and the engine charges its rule pack's fee schedule
        return Fill(
            venue, self.symbol, self.client_order_id, self.order_id, self.execution_id, self.side,
            self.price, self.quantity, self.ts_ns, Liquidity.UNKNOWN,
        )


@dataclass(frozen=True, slots=True)
class OrderView:
    """One order as the broker reports it (a status answer, a listing row or a webhook's data)."""

    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    wire_status: str
    quantity: Decimal
    filled_quantity: Decimal
    price: Decimal | None
    average_price: Decimal | None
    reject_code: int | None
    reason: str
    executions: tuple[Execution, ...] = ()

    @property
    def status(self) -> OrderStatus | None:
        """The engine's status; None while the broker has not yet confirmed ("pending")."""
        return STATUS_FROM_WIRE[self.wire_status]

    @property
    def is_open(self) -> bool:
        return self.wire_status in OPEN_WIRE_STATUSES

    def to_venue_order(self, venue: str) -> VenueOrder:
        status = self.status
        if status is None:  # the broker has it; not yet on the book: as good as new for reconciliation
            status = OrderStatus.NEW
        return VenueOrder(
            venue, self.client_order_id, self.order_id, self.symbol, self.side, status,
            self.quantity, self.filled_quantity, self.price,
        )


def _side(data: dict[str, Any]) -> Side:
    wire = _str(data, "side")
    try:
        return SIDE_FROM_WIRE[wire]
    except KeyError:
        raise CodecError(f"field 'side' must be 'buy' or 'sell', got {wire!r}") from None


def _execution(data: Any, parent: dict[str, Any] | None = None) -> Execution:
    data = _obj(data, "execution")
    base = parent if parent is not None else data
    quantity = _req_dec(data, "quantity")
    if quantity <= 0:
        raise CodecError(f"execution quantity must be positive, got {quantity}")
    return Execution(
        _str(data, "execution_id"),
        _str(base, "order_id"),
        _str(base, "client_order_id"),
        _str(base, "symbol"),
        _side(base),
        _req_dec(data, "price"),
        quantity,
        parse_ts(_field(data, "executed_at")),
    )


def decode_order(data: Any) -> OrderView:
    """An order object (OPT-3): ``{order_id, client_order_id, symbol, side, order_type,
    time_in_force, quantity, price, status, filled_quantity, remaining_quantity, average_price,
    reject_code, reason, created_at, updated_at, executions?: [{execution_id, price, quantity,
    executed_at}]}``."""
    data = _obj(data, "order")
    status = _str(data, "status")
    if status not in STATUS_FROM_WIRE:
        raise CodecError(f"unknown order status {status!r}")
    executions = data.get("executions") or []
    if not isinstance(executions, list):
        raise CodecError("field 'executions' must be a list")
    reason = data.get("reason") or ""
    if not isinstance(reason, str):
        raise CodecError(f"field 'reason' must be a string, got {reason!r}")
    view = OrderView(
        _str(data, "order_id"),
        _str(data, "client_order_id"),
        _str(data, "symbol"),
        _side(data),
        status,
        _req_dec(data, "quantity"),
        _req_dec(data, "filled_quantity"),
        _dec(data, "price", optional=True),
        _dec(data, "average_price", optional=True),
        _int(data, "reject_code", optional=True),
        reason,
        tuple(_execution(e, data) for e in executions),
    )
    if view.filled_quantity < 0 or view.filled_quantity > view.quantity:
        raise CodecError(f"filled_quantity {view.filled_quantity} outside 0..quantity {view.quantity}")
    return view


def decode_orders(data: Any) -> list[OrderView]:
    """``POST /orders/open`` answer: ``{orders: [order, ...]}`` (OPT-3 extension)."""
    rows = _field(_obj(data, "data"), "orders")
    if not isinstance(rows, list):
        raise CodecError("field 'orders' must be a list")
    return [decode_order(row) for row in rows]


def decode_executions(data: Any) -> list[Execution]:
    """``POST /orders/executions`` answer: ``{executions: [{execution_id, order_id,
    client_order_id, symbol, side, price, quantity, executed_at}]}`` (OPT-3 extension)."""
    rows = _field(_obj(data, "data"), "executions")
    if not isinstance(rows, list):
        raise CodecError("field 'executions' must be a list")
    return [_execution(row) for row in rows]


# --------------------------------------------------------------------------------------------
# Account (document "Portfolio APIs" and section 4; fields assumed from the holdings card, OPT-11)


@dataclass(frozen=True, slots=True)
class Holding:
    """One row of the document's holdings card ("MEBL 187.50 1,000 PKR 187.5K +3.88%"):
    symbol, price, quantity, value, change, plus what "available quantities" (section 2) and P&L
    need."""

    symbol: str
    quantity: Decimal
    available_quantity: Decimal
    current_price: Decimal
    market_value: Decimal
    change_percent: Decimal
    average_cost: Decimal | None
    unrealized_pnl: Decimal | None


@dataclass(frozen=True, slots=True)
class PortfolioSummary:
    """The document's portfolio card: Total Value, Today's P&L, Total P&L, Positions, Sectors."""

    total_value: Decimal
    todays_pnl: Decimal
    todays_pnl_percent: Decimal
    total_pnl: Decimal
    total_pnl_percent: Decimal
    positions: int
    sectors: int
    currency: str
    last_updated_ns: int | None


@dataclass(frozen=True, slots=True)
class BuyingPower:
    """Section 4: "Real-time available funds"; T+2: unsettled funds are not available (4001)."""

    buying_power: Decimal
    cash_balance: Decimal
    unsettled_funds: Decimal
    currency: str


def decode_holdings(data: Any) -> list[Holding]:
    """``POST /portfolio/holdings`` answer: ``{holdings: [...], last_updated}`` (OPT-11)."""
    rows = _field(_obj(data, "data"), "holdings")
    if not isinstance(rows, list):
        raise CodecError("field 'holdings' must be a list")
    holdings = []
    for row in rows:
        row = _obj(row, "holding")
        holdings.append(Holding(
            _str(row, "symbol"),
            _req_dec(row, "quantity"),
            _req_dec(row, "available_quantity"),
            _req_dec(row, "current_price"),
            _req_dec(row, "market_value"),
            _req_dec(row, "change_percent"),
            _dec(row, "average_cost", optional=True),
            _dec(row, "unrealized_pnl", optional=True),
        ))
    return holdings


def decode_summary(data: Any) -> PortfolioSummary:
    """``POST /portfolio/summary`` answer (OPT-11)."""
    data = _obj(data, "data")
    updated = data.get("last_updated")
    return PortfolioSummary(
        _req_dec(data, "total_value"),
        _req_dec(data, "todays_pnl"),
        _req_dec(data, "todays_pnl_percent"),
        _req_dec(data, "total_pnl"),
        _req_dec(data, "total_pnl_percent"),
        _int(data, "positions") or 0,
        _int(data, "sectors") or 0,
        _str(data, "currency", "PKR"),
        None if updated is None else parse_ts(updated),
    )


def decode_buying_power(data: Any) -> BuyingPower:
    """``POST /account/buying-power`` answer (OPT-11)."""
    data = _obj(data, "data")
    return BuyingPower(
        _req_dec(data, "buying_power"),
        _req_dec(data, "cash_balance"),
        _req_dec(data, "unsettled_funds"),
        _str(data, "currency", "PKR"),
    )


# --------------------------------------------------------------------------------------------
# Webhooks (document: the six event names; OPT-5: payload, signature, retries and de-duplication
# are not documented)

WEBHOOK_EVENTS = (
    "order.confirmed",  # "Order accepted by exchange"
    "order.rejected",  # "Order rejected by pre-trade checks"
    "order.cancelled",  # "Order cancelled by user"
    "order.execution",  # "Partial or full fill"
    "margin.call",  # "Margin call threshold hit"
    "account.alert",  # "Deposit/withdrawal status"
)
ORDER_EVENTS = frozenset(WEBHOOK_EVENTS[:4])


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """OPT-5: ``{event, event_id, occurred_at, data: {...}}``. Delivery is at least once, so the
    receiver de-duplicates on ``event_id``; a retry of one event keeps its id."""

    event: str
    event_id: str
    occurred_ns: int
    data: dict[str, Any]

    def order(self) -> OrderView:
        """The order an ``order.*`` event is about. OPT-5 data: ``{order_id, client_order_id,
        symbol, side, status, quantity, filled_quantity, remaining_quantity, price,
        average_price, reject_code?, reason?}``; ``order.execution`` adds ``execution_id,
        last_fill_price, last_fill_quantity`` (see :meth:`execution`)."""
        data = dict(self.data)
        if "quantity" not in data and "remaining_quantity" in data and "filled_quantity" in data:
            data["quantity"] = _req_dec(data, "remaining_quantity") + _req_dec(data, "filled_quantity")
        data.pop("executions", None)
        return decode_order(data)

    def execution(self) -> Execution:
        """The fill an ``order.execution`` event reports (OPT-5; ``execution_id`` is our
        extension so a polled fill and a pushed one share an id)."""
        data = self.data
        price, qty = _req_dec(data, "last_fill_price"), _req_dec(data, "last_fill_quantity")
        if price <= 0 or qty <= 0:  # a fill moves money: a zero or negative one is never a guess to apply
            raise CodecError(f"execution: last_fill_price {price} and last_fill_quantity {qty} must be positive")
        return Execution(
            _str(data, "execution_id"),
            _str(data, "order_id"),
            _str(data, "client_order_id"),
            _str(data, "symbol"),
            _side(data),
            price,
            qty,
            self.occurred_ns,
        )


def decode_webhook(raw: bytes, received_ns: int | None = None) -> WebhookEvent:
    """One webhook body. ``event_id`` and ``occurred_at`` are OPT-5 assumptions, not 000's: a
    broker that sends neither (``received_ns`` given) is read with the body's digest as its
    delivery id (a retry resends the same bytes, so it is still caught) and the receive time."""
    body = _obj(loads(raw), "webhook")
    event = _str(body, "event")
    if event not in WEBHOOK_EVENTS:
        raise CodecError(f"unknown webhook event {event!r}")
    if received_ns is not None and "event_id" not in body:
        event_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    else:
        event_id = _str(body, "event_id")
        if not event_id:
            raise CodecError("empty event_id")
    if received_ns is not None and "occurred_at" not in body:
        occurred_ns = received_ns
    else:
        occurred_ns = parse_ts(_field(body, "occurred_at"))
    return WebhookEvent(event, event_id, occurred_ns, _obj(body.get("data") or {}, "data"))


# OPT-5 (no scheme in the document). Chosen: the Stripe-style scheme, because it covers integrity,
# authenticity and replay with one header and no clock-free shortcut:
#   X-Optimus-Signature: t=<unix milliseconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>
# Several v1= entries may be present while a secret is rotated; one valid entry is enough. The
# receiver refuses a timestamp further than its tolerance from its clock (replay protection).


def sign_webhook(secret: bytes, timestamp_ms: int, body: bytes) -> str:
    digest = hmac.new(secret, f"{timestamp_ms}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp_ms},v1={digest}"


#: bounds on the signature header: a sane one is ~90 characters with one or two v1 entries
MAX_SIGNATURE_HEADER = 1024
MAX_SIGNATURES = 4
_SIGNATURE_TS = re.compile(r"[0-9]{1,15}")  # unix ms, ASCII digits only: int() also takes '٣' and '²'
_SIGNATURE_V1 = re.compile(r"[0-9a-fA-F]{64}")  # hex SHA-256 only: compare_digest refuses non-ASCII str


def verify_webhook(
    secrets: Iterable[bytes], header: str | None, body: bytes, now_ns: int, tolerance_s: int
) -> None:
    """Raise :class:`SignatureError` unless ``header`` signs ``body`` with one of ``secrets``
    within ``tolerance_s`` of ``now_ns`` (:class:`StaleSignatureError` when only the time is
    wrong). Anything but one ``t=`` of ASCII digits and 1..4 ``v1=`` of 64 hex digits is
    malformed, so no header can make this raise anything else. Comparisons are constant time."""
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    malformed = SignatureError(f"malformed {SIGNATURE_HEADER} header (expected t=<ms>,v1=<hex>)")
    if len(header) > MAX_SIGNATURE_HEADER:
        raise malformed
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            if timestamp is not None or not _SIGNATURE_TS.fullmatch(value):
                raise malformed
            timestamp = int(value)
        elif key == "v1":
            if not _SIGNATURE_V1.fullmatch(value) or len(signatures) == MAX_SIGNATURES:
                raise malformed
            signatures.append(value.lower())
    if timestamp is None or not signatures:
        raise malformed
    skew_ms = abs(now_ns // NS_PER_MS - timestamp)
    if skew_ms > tolerance_s * 1000:
        raise StaleSignatureError(
            f"signature timestamp {skew_ms} ms away from our clock (tolerance {tolerance_s} s)"
        )
    signed = f"{timestamp}.".encode() + body
    for secret in secrets:
        expected = hmac.new(secret, signed, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, candidate) for candidate in signatures):
            return
    raise SignatureError("signature does not match")
