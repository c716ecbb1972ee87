"""The Algo724 Cadenza Fermata wire format (document 003, VENUES.md section 4): sans-I/O.

Every ambiguity of the document is decided here, once, with its gap number:

- Envelope ``{success, errno, error, details, data}`` (+ ``pagination`` on lists). The examples
  show success and error fields together (schema dumps); we read ``success`` (a JSON boolean,
  required) as the verdict, ``errno``/``error``/``details.code`` as the failure's words (ALG-6).
  An answer that contradicts its HTTP status (``success: true`` on a 4xx/5xx) is a codec error.
- Decimals are strings matching ``^-?\\d+(\\.\\d+)?$`` ("Decimal value as string to preserve
  precision"). Anything else where a decimal is due (a JSON number, an exponent, a ``+``, a bare
  ``.5``, more than 64 characters) is a :class:`CodecError` of kind ``bad_number``: never a guess.
  We send Decimals the same way: plain digits, never an exponent.
- Session: ``accessToken``, ``refreshToken``, ``tokenType`` (``bearer``, any case), ``expiresIn``
  seconds (> 0). ``expiresAt``'s unit is unknown (example ``0``): ignored; the refresh token's
  lifetime is not given: it is used until refused, then we log in again.
- Submit answers an **array** of Orders (ALG-8): element 0 is our order, others are logged. The
  Order object has no ``clientOrderId`` (ALG-4): the caller keeps ``clientOrderId`` <->
  ``tradeOrderId`` from the submit answer. We send our client id as both ``idempotencyKey`` and
  ``clientOrderId`` (ALG-4).
- The 14 ``status`` values map to the engine's states in :data:`STATUS` (ALG-5).
- Fills: ``executions[]`` entries by ``executionId``; fees from each execution's ``fees[]``,
  converted to the quote asset: a fee in the quote asset as is, in the base asset at the
  execution's price (the document's example charges a BUY of BTC/USDT in BTC); a fee in a third
  asset cannot be converted without a rate: the fill then carries none (the engine charges its
  schedule) and the adapter counts it.
- ``GTX`` is post-only (ALG-7); the engine's DAY/GTC/IOC/FOK go as named.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from adapters.kit.wirejson import MAX_DEPTH, NUMBER_CHARS, Reader, WireError, amount_text, lookup
from engine.model import Fill, Order, OrderStatus, OrderType, Side, TimeInForce, VenueOrder
from engine.venue.badinput import BAD_NUMBER, MALFORMED
from engine.venue.rejects import Reject

__all__ = [
    "DECIMAL_PATTERN", "STATUS", "CodecError", "Execution", "Failure", "OrderView", "Page", "Session", "Success",
    "classify_failure", "decimal_text", "decode_order", "decode_orders", "decode_session", "dumps", "encode_cancel",
    "encode_list_query", "encode_login", "encode_refresh", "encode_submit", "engine_code", "format_decimal", "loads",
    "parse_envelope",
]

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
ZERO = Decimal(0)
#: document 003, every decimal field: "string (decimal) ^-?\d+(\.\d+)?$"
DECIMAL_PATTERN = r"^-?\d+(\.\d+)?$"
_DECIMAL = re.compile(r"-?\d+(\.\d+)?")
_READER = Reader(8 << 20, MAX_DEPTH)


class CodecError(ValueError):
    """A message off the wire format: counted by ``kind`` (engine.venue.badinput), never guessed."""

    def __init__(self, reason: str, kind: str = MALFORMED) -> None:
        super().__init__(reason)
        self.kind = kind


# ---- JSON and decimals ------------------------------------------------------------------------


def loads(raw: bytes | str) -> Any:
    try:
        return _READER.loads(raw)
    except WireError as exc:
        raise CodecError(exc.reason, exc.kind) from None


def dumps(value: Any) -> bytes:
    """Compact JSON of a request body (every decimal is already a string: :func:`format_decimal`)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def decimal_text(value: Any, name: str) -> Decimal:
    """A document decimal: a *string* matching ``^-?\\d+(\\.\\d+)?$``, bounded; else CodecError."""
    if type(value) is not str:
        raise CodecError(f"{name}: expected a decimal string, got {type(value).__name__} {str(value)[:40]!r}",
                         BAD_NUMBER)
    if len(value) > NUMBER_CHARS or not _DECIMAL.fullmatch(value):
        raise CodecError(f"{name}: {value[:40]!r} is not a decimal string ({DECIMAL_PATTERN})", BAD_NUMBER)
    try:
        return amount_text(value, name)
    except WireError as exc:
        raise CodecError(exc.reason, BAD_NUMBER) from None


def format_decimal(value: Decimal) -> str:
    """A Decimal as the document's decimal string (plain digits, never an exponent)."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise CodecError(f"cannot send {value!r} as a decimal", BAD_NUMBER)
    text = format(value, "f")
    if not _DECIMAL.fullmatch(text):
        raise CodecError(f"{text!r} is not a decimal string", BAD_NUMBER)
    return text


def _obj(value: Any, what: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise CodecError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _str(data: dict[str, Any], name: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if type(value) is not str:
        if value is None and default is None:
            raise CodecError(f"{name} is missing")
        raise CodecError(f"{name}: expected a string, got {type(value).__name__}")
    return value


def _dec(data: dict[str, Any], name: str, default: Decimal | None = None) -> Decimal | None:
    value = data.get(name)
    if value is None or value == "":
        return default
    return decimal_text(value, name)


def _ms(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if type(value) is not int or not 0 <= value < 10**15:
        raise CodecError(f"{name}: expected milliseconds since the epoch, got {str(value)[:40]!r}", BAD_NUMBER)
    return value


# ---- envelope ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Success:
    data: Any
    pagination: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    """A refused request: HTTP status, ``errno``, ``error`` text, ``details.code`` (None when absent)
    and ``data`` (an Order or Orders when the refusal is about one, else None)."""

    http_status: int
    errno: int | None
    message: str
    code: str | None
    data: Any = None

    def describe(self) -> str:
        code = f" {self.code}" if self.code else ""
        return f"HTTP {self.http_status}{code}: {self.message or 'no message'}"


def parse_envelope(http_status: int, raw: bytes) -> Success | Failure:
    """One answer. A 4xx/5xx whose body is not the envelope (a proxy's HTML) is a Failure naming
    the status; a 2xx that is not the envelope is a CodecError (the request's outcome is unknown)."""
    try:
        body = loads(raw)
        if type(body) is not dict or type(body.get("success")) is not bool:
            raise CodecError("not the document's envelope: no boolean 'success'")
    except CodecError:
        if http_status >= 400:
            return Failure(http_status, None, f"unreadable HTTP {http_status} answer", None)
        raise
    errno = body.get("errno")
    if errno is not None and type(errno) is not int:
        raise CodecError(f"errno: expected an integer, got {type(errno).__name__}")
    if body["success"]:
        if http_status >= 400 or (errno not in (None, 0)):
            raise CodecError(f"success true with HTTP {http_status} and errno {errno}")
        pagination = body.get("pagination")
        if pagination is not None:
            pagination = _obj(pagination, "pagination")
        return Success(body.get("data"), pagination)
    details = body.get("details")
    code = details.get("code") if type(details) is dict else None
    message = body.get("error")
    return Failure(http_status, errno, message if type(message) is str else "",
                   code if type(code) is str and code else None, body.get("data"))


#: ALG-6's symbolic codes (and INVALID_TOKEN, the document's one) -> the engine's reject codes
CODE_REJECTS: dict[str, int] = {
    "INVALID_TOKEN": Reject.INVALID_TOKEN,
    "TOKEN_EXPIRED": Reject.TOKEN_EXPIRED,
    "PERMISSION_DENIED": Reject.INSUFFICIENT_PERMISSIONS,
    "VALIDATION_ERROR": Reject.INVALID_ORDER,
    "INVALID_INSTRUMENT": Reject.INVALID_SYMBOL,
    "INSUFFICIENT_BALANCE": Reject.INSUFFICIENT_BUYING_POWER,
    "ORDER_REJECTED": Reject.EXCHANGE_REJECT,
    "RATE_LIMITED": Reject.RATE_LIMIT_EXCEEDED,
    "DUPLICATE_IDEMPOTENCY_KEY": Reject.IDEMPOTENCY_KEY_REUSED,
    "NOT_FOUND": Reject.INVALID_ORDER,
    "ORDER_NOT_OPEN": Reject.ORDER_NOT_OPEN,
}
#: by HTTP status when there is no code (document-literal answers)
HTTP_REJECTS: dict[int, int] = {400: Reject.INVALID_ORDER, 401: Reject.INVALID_TOKEN,
                                403: Reject.INSUFFICIENT_PERMISSIONS, 404: Reject.INVALID_ORDER,
                                409: Reject.IDEMPOTENCY_KEY_REUSED, 422: Reject.EXCHANGE_REJECT,
                                429: Reject.RATE_LIMIT_EXCEEDED}


def engine_code(failure: Failure) -> int:
    if failure.code is not None and failure.code in CODE_REJECTS:
        return int(CODE_REJECTS[failure.code])
    return int(HTTP_REJECTS.get(failure.http_status, Reject.EXCHANGE_REJECT))


def classify_failure(failure: Failure) -> str:
    """``auth`` (renew the token, resend once: a refused token processed nothing), ``unknown``
    (5xx: the venue may have acted; ALG-6's 502 VENUE_ERROR too), else ``rejected``."""
    if failure.http_status == 401 or failure.code in ("INVALID_TOKEN", "TOKEN_EXPIRED"):
        return "auth"
    if failure.http_status >= 500:
        return "unknown"
    return "rejected"


# ---- session ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    access_token: str
    refresh_token: str
    expires_in_s: int
    access_expires_ns: int

    def __repr__(self) -> str:  # never print a token
        return f"Session(expires in {self.expires_in_s} s)"


def encode_login(email: str, password: str) -> dict[str, Any]:
    return {"email": email, "password": password}


def encode_refresh(refresh_token: str) -> dict[str, Any]:
    return {"refreshToken": refresh_token}


def decode_session(data: Any, now_ns: int) -> Session:
    data = _obj(data, "session")
    token_type = data.get("tokenType", "bearer")
    if type(token_type) is not str or token_type.lower() != "bearer":
        raise CodecError(f"tokenType must be bearer, got {str(token_type)[:20]!r}")
    access, refresh = _str(data, "accessToken"), _str(data, "refreshToken")
    if not access or not refresh:
        raise CodecError("empty accessToken or refreshToken")
    expires = data.get("expiresIn")
    if type(expires) is not int or not 0 < expires < 10**9:
        raise CodecError(f"expiresIn: expected positive seconds, got {str(expires)[:20]!r}", BAD_NUMBER)
    return Session(access, refresh, expires, now_ns + expires * NS_PER_S)


# ---- orders -----------------------------------------------------------------------------------

WIRE_SIDE = {Side.BUY: "BUY", Side.SELL: "SELL"}
SIDE_FROM_WIRE = {v: k for k, v in WIRE_SIDE.items()}
WIRE_TYPE = {OrderType.LIMIT: "LIMIT", OrderType.MARKET: "MARKET"}
WIRE_TIF = {TimeInForce.DAY: "DAY", TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}
#: ALG-7: Good-Till-Crossing is post-only
POST_ONLY_TIF = "GTX"

#: ALG-5: the document's 14 ``status`` values -> the engine's state. PENDING_CANCEL/PENDING_REPLACE
#: and REPLACED leave the order working (no amend exists, REPLACED keeps the venue's terms);
#: REVOKED is a cancel by the venue or the gateway; "" and UNKNOWN are unknown (reconcile by listing).
STATUS: dict[str, OrderStatus] = {
    "": OrderStatus.UNKNOWN,
    "CREATED": OrderStatus.PENDING_NEW,
    "SUBMITTED": OrderStatus.PENDING_NEW,
    "ACCEPTED": OrderStatus.NEW,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELLED": OrderStatus.CANCELLED,
    "PENDING_CANCEL": OrderStatus.NEW,
    "REPLACED": OrderStatus.NEW,
    "PENDING_REPLACE": OrderStatus.NEW,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "REVOKED": OrderStatus.CANCELLED,
    "UNKNOWN": OrderStatus.UNKNOWN,
}
OPEN_STATUSES = frozenset({"CREATED", "SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED", "PENDING_CANCEL", "REPLACED",
                           "PENDING_REPLACE"})


def encode_submit(order: Order, account_id: str, instrument_id: str, key: str) -> dict[str, Any]:
    """The submit body (document field names). ``key`` goes in both ``idempotencyKey`` and
    ``clientOrderId`` (ALG-4); ``awaitClosed`` false: the answer comes at once."""
    body: dict[str, Any] = {
        "tradingAccountId": account_id,
        "instrumentId": instrument_id,
        "idempotencyKey": key,
        "clientOrderId": key,
        "orderSide": WIRE_SIDE[order.side],
        "orderType": WIRE_TYPE[order.type],
        "quantity": format_decimal(order.qty),
        "quantityType": "BASE",
        "timeInForce": POST_ONLY_TIF if order.post_only else WIRE_TIF[order.tif],
        "awaitClosed": False,
    }
    if order.type is OrderType.LIMIT:
        if order.price is None:
            raise CodecError(f"order {order.client_id}: a LIMIT order needs a price")
        body["limitPrice"] = format_decimal(order.price)
    stop = getattr(order, "stop_price", None)
    if stop is not None:
        body["stopPrice"] = format_decimal(stop)
    return body


def encode_cancel(account_id: str, trade_order_id: str) -> dict[str, Any]:
    return {"tradingAccountId": account_id, "tradeOrderId": trade_order_id}


def encode_list_query(account_id: str, *, trade_order_id: str | None = None, status: str | None = None,
                      instrument_id: str | None = None, start_ms: int | None = None, end_ms: int | None = None,
                      limit: int = 100, cursor: str | None = None, ascending: bool = True) -> dict[str, str]:
    """The list operation's query string (document filters). Pages go by ``cursor``."""
    query = {"tradingAccountId": account_id, "limit": str(limit), "ascending": "true" if ascending else "false"}
    for name, value in (("tradeOrderId", trade_order_id), ("orderStatus", status), ("instrumentId", instrument_id),
                        ("startTime", start_ms), ("endTime", end_ms), ("cursor", cursor)):
        if value is not None and value != "":
            query[name] = str(value)
    return query


@dataclass(frozen=True, slots=True)
class Execution:
    execution_id: str
    external_id: str
    quantity: Decimal
    price: Decimal
    ts_ns: int
    fees: tuple[tuple[str, Decimal], ...]  # (asset, quantity)

    def fee_in(self, base: str, quote: str) -> Decimal | None:
        """The fee in the quote asset; None when one is in an asset we cannot convert."""
        total = ZERO
        for asset, qty in self.fees:
            if asset == quote:
                total += qty
            elif asset == base:
                total += qty * self.price
            else:
                return None
        return total


@dataclass(frozen=True, slots=True)
class OrderView:
    """One Order object, decoded. ``status`` is the document's word, ``engine_status`` ours."""

    trade_order_id: str
    instrument_id: str
    side: Side
    status: str
    engine_status: OrderStatus
    quantity: Decimal
    limit_price: Decimal | None
    executed_quantity: Decimal
    base: str
    quote: str
    reject_reason: str
    cancel_reason: str
    created_ms: int | None
    executions: tuple[Execution, ...] = field(default=())

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_venue_order(self, venue: str, client_id: str, symbol: str) -> VenueOrder:
        status = self.engine_status
        if status is OrderStatus.NEW and self.executed_quantity > 0:
            status = OrderStatus.PARTIALLY_FILLED
        return VenueOrder(venue, client_id, self.trade_order_id, symbol, self.side, status, self.quantity,
                          self.executed_quantity, self.limit_price)

    def fill(self, execution: Execution, venue: str, client_id: str, symbol: str) -> Fill:
        return Fill(venue, symbol, client_id, self.trade_order_id, execution.execution_id, self.side,
                    execution.price, execution.quantity, execution.ts_ns,
                    fee=execution.fee_in(self.base, self.quote))


def _execution(data: Any) -> Execution:
    data = _obj(data, "execution")
    execution_id = _str(data, "executionId")
    if not execution_id:
        raise CodecError("executionId is empty")
    quantity = decimal_text(data.get("executedQuantity"), "executedQuantity")
    price = decimal_text(data.get("executedPrice"), "executedPrice")
    if quantity <= 0 or price <= 0:
        raise CodecError(f"execution {execution_id}: quantity {quantity} at {price}", BAD_NUMBER)
    at = _ms(data, "executedAt")
    if at is None:  # a fill without its time cannot be placed in the day (nor found by query_fills)
        raise CodecError(f"execution {execution_id}: executedAt is missing")
    fees = []
    raw_fees = data.get("fees") or []
    if type(raw_fees) is not list:
        raise CodecError("fees: expected an array")
    for fee in raw_fees:
        fee = _obj(fee, "fee")
        fees.append((_str(fee, "asset"), decimal_text(fee.get("quantity"), "fee quantity")))
    return Execution(execution_id, _str(data, "externalTradeId", ""), quantity, price,
                     at * NS_PER_MS, tuple(fees))


def decode_order(data: Any) -> OrderView:
    data = _obj(data, "order")
    trade_order_id = _str(data, "tradeOrderId")
    if not trade_order_id:
        raise CodecError("tradeOrderId is empty")
    side = lookup(SIDE_FROM_WIRE, data.get("orderSide"))
    if side is None:
        raise CodecError(f"order {trade_order_id}: orderSide {str(data.get('orderSide'))[:20]!r}")
    status = data.get("status", "")
    if type(status) is not str or status not in STATUS:
        raise CodecError(f"order {trade_order_id}: unknown status {str(status)[:30]!r}")
    quantity = decimal_text(data.get("quantity"), "quantity")
    executed = _dec(data, "executedQuantity", ZERO)
    assert executed is not None
    raw_executions = data.get("executions") or []
    if type(raw_executions) is not list:
        raise CodecError("executions: expected an array")
    instrument_id = _str(data, "instrumentId")
    base, _, quote = instrument_id.partition(":")[2].partition("/")
    return OrderView(
        trade_order_id, instrument_id, side, status, STATUS[status], quantity, _dec(data, "limitPrice"), executed,
        _str(data, "baseAsset", base), _str(data, "quoteAsset", quote), _str(data, "rejectReason", ""),
        _str(data, "cancelReason", ""), _ms(data, "createdAt"), tuple(_execution(e) for e in raw_executions),
    )


def decode_orders(data: Any) -> list[OrderView]:
    if type(data) is not list:
        raise CodecError(f"expected an array of orders, got {type(data).__name__}")
    return [decode_order(item) for item in data]


@dataclass(frozen=True, slots=True)
class Page:
    """A list answer's ``pagination``: where the next page starts (``cursor``) if ``has_next``."""

    has_next: bool
    cursor: str
    total: int | None


def decode_page(pagination: dict[str, Any] | None) -> Page:
    if pagination is None:
        return Page(False, "", None)
    has_next = pagination.get("hasNext", False)
    cursor = pagination.get("cursor") or ""
    total = pagination.get("total")
    if type(has_next) is not bool or type(cursor) is not str or (total is not None and type(total) is not int):
        raise CodecError("pagination: hasNext must be a boolean, cursor a string, total an integer")
    if has_next and not cursor:
        raise CodecError("pagination: hasNext without a cursor")
    return Page(has_next, cursor, total)
