"""Pulse API v2 wire format: JSON-RPC 2.0 text frames <-> model events, with no I/O.

Source: shared/seeds/004_df0ce6c3f341e5af.txt ("Pulse API Documentation v2.0"), digested in
shared/VENUES.md section 5. Every place where the document is silent or contradicts itself is
decided here once, with the gap number (``PUL-n``) of VENUES.md 5.15 in a comment, so the adapter
(transport) never has to guess. The sandbox server deliberately does not import this module: it
builds its frames from the model and the matching engine, so a field this codec misreads is caught
by the adapter tests instead of being mirrored.

Numbers: JSON numbers are parsed straight from the text into ``Decimal`` (``parse_float``); integers
become ``Decimal`` where they are money or amounts. Nothing here ever holds a binary float.
Numbers are written in plain positional notation, never with an exponent (VENUES.md 6.12).

Hostile input (issue 17): every decode entry point (:func:`loads`, :func:`decode_message`, the
``decode_*`` functions and :func:`num` / :func:`to_ns`) raises only :class:`CodecError`, for any
input whatever, with ``CodecError.kind`` an :mod:`engine.venue.badinput` kind (``not_json``,
``too_large``, ``too_deep``, ``bad_number``, ``malformed``, ``unknown_message``). JSON is read by the
shared bounded reader (:mod:`adapters.kit.wirejson`); ``NaN``/``Infinity`` are refused; amounts are
bounded (``|x| < 10**18``) and timestamps (``|ms| < 10**14``) before any arithmetic, so no number can
spin ``int()``; a list or object where a word is expected (``direction``, ``order_state``, ...) is a
``malformed`` error, not a ``TypeError``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from adapters.kit.wirejson import (
    MAGNITUDE_LIMIT,
    Reader,
    WireError,
    amount,
    amount_text,
    int_decimal,
    lookup,
    typed_decoder,
)
from engine.model import (
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    VenueAccount,
    VenueOrder,
    VenuePosition,
)
from engine.venue.badinput import BAD_NUMBER, MALFORMED, UNKNOWN_MESSAGE
from engine.venue.rejects import Reject

__all__ = [
    "JSONRPC",
    "PULSE_ERRORS",
    "WS_PATH",
    "BookMsg",
    "CodecError",
    "Heartbeat",
    "Login",
    "Notification",
    "PulseOrder",
    "PulseTrade",
    "Quote",
    "Response",
    "RpcError",
    "auth_params",
    "book_channel",
    "currency_for",
    "decode_account",
    "decode_book",
    "decode_frame",
    "decode_heartbeat_trade",
    "decode_login",
    "decode_message",
    "decode_mmp_trigger",
    "decode_order",
    "decode_orders",
    "decode_quote",
    "decode_trade",
    "decode_trade_page",
    "decode_trades",
    "dumps",
    "edit_params",
    "encode_request",
    "index_name_for",
    "loads",
    "order_request",
    "reject_code",
    "signature",
    "to_ns",
    "user_trades_params",
]

JSONRPC = "2.0"
#: the WebSocket path (document: "wss://dev.pulsegateway.devucc.name/ws/api/v2")
WS_PATH = "/ws/api/v2"
NS_PER_MS = 1_000_000
_SECONDS_LIMIT = 100_000_000_000  # below this a timestamp is seconds, not ms (VENUES.md 5.13)
ZERO = Decimal(0)
_LIMIT = Decimal(MAGNITUDE_LIMIT)  # |amount| bound (adapters.kit.wirejson), for num's inlined check
_NEG_LIMIT = -_LIMIT
#: a timestamp (ms, or s when small) beyond this is refused: 10**14 ms is the year 5138
TIMESTAMP_LIMIT = Decimal(10**14)
_TIMESTAMP_INT = 10**14
#: a frame larger than this is refused unread (an order book answer is a few KB)
MAX_FRAME_CHARS = 4 << 20


class CodecError(ValueError):
    """A frame that is not what the document (or our stated assumption) says it is. ``kind`` is
    the :mod:`engine.venue.badinput` kind a reader counts it under."""

    def __init__(self, reason: str, kind: str = MALFORMED) -> None:
        super().__init__(reason)
        self.kind = kind


# --------------------------------------------------------------------------------------------
# JSON text


# one bounded reader for every frame (adapters.kit.wirejson: size, depth, number bounds)
_DECODE = Reader(MAX_FRAME_CHARS).loads


def loads(raw: str | bytes) -> Any:
    """Parse one frame; JSON numbers with a fraction become ``Decimal`` from their text."""
    try:
        return _DECODE(raw)
    except WireError as exc:
        raise CodecError(exc.reason, exc.kind) from None


_STR = json.encoder.encode_basestring  # the C string escaper json.dumps uses


def _dump(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_STR(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise CodecError(f"cannot send a non-finite number {value}")
        text = format(value, "f")  # positional notation: never "1E+2"
        out.append(text)
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for key, item in value.items():
            if not first:
                out.append(",")
            first = False
            out.append(_STR(str(key)))
            out.append(":")
            _dump(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _dump(item, out)
        out.append("]")
    else:  # a float would be a bug: money is never a binary float
        raise CodecError(f"cannot encode {type(value).__name__} {value!r} (money must be Decimal)")


def dumps(value: Any) -> str:
    """Compact JSON with Decimals as plain numbers (no exponent) and no float ever."""
    out: list[str] = []
    _dump(value, out)
    return "".join(out)


def num(value: Any, field: str = "number") -> Decimal:
    """A JSON number (or a decimal string: some Pulse payloads quote them, VENUES.md 5.13) as Decimal."""
    try:
        kind = type(value)
        if kind is Decimal:  # the common cases, inlined: this runs for every level of every book
            if _NEG_LIMIT < value < _LIMIT:
                return value
        elif kind is int and -MAGNITUDE_LIMIT < value < MAGNITUDE_LIMIT:
            return int_decimal(value)
        elif kind is str:
            return amount_text(value, field)
        return amount(value, field)
    except WireError as exc:
        raise CodecError(exc.reason, exc.kind) from None
    except ArithmeticError:  # a NaN Decimal passed in cannot be ordered
        raise CodecError(f"{field}: {value} is not a finite number", BAD_NUMBER) from None


def _opt_num(value: Any, field: str) -> Decimal | None:
    return None if value is None else num(value, field)


def to_ns(value: Any) -> int:
    """A Pulse timestamp as ns. The document says ms but many examples are seconds
    (``1612137600``): a value below 10^11 is read as seconds (VENUES.md 5.13)."""
    if value is None:
        return 0
    kind = type(value)
    if kind is int:
        if not -_TIMESTAMP_INT < value < _TIMESTAMP_INT:  # int against int: cheap for 4,000 digits too
            raise CodecError("timestamp out of range", BAD_NUMBER)
        ms = value
    elif kind is Decimal:
        if not value.is_finite() or not -TIMESTAMP_LIMIT < value < TIMESTAMP_LIMIT:  # before int(): 1e999999 spun
            raise CodecError(f"timestamp {str(value)[:40]} out of range", BAD_NUMBER)
        ms = int(value)
    else:
        raise CodecError(f"timestamp of type {kind.__name__} is not an integer")
    if ms < _SECONDS_LIMIT:
        return ms * 1_000_000_000
    return ms * NS_PER_MS


# --------------------------------------------------------------------------------------------
# JSON-RPC envelope (PUL-1: the document shows ``"method": "Method Name"`` and bare results; we use
# Deribit's envelope: method = the path without /api/v2/, results wrapped in ``result``)


class Response:
    """A successful answer to request ``id``."""

    __slots__ = ("id", "result")

    def __init__(self, id: int, result: Any) -> None:
        self.id = id
        self.result = result


class RpcError:
    """A JSON-RPC error answer. ``code`` is the venue's status (VENUES.md 5.12, PUL-4)."""

    __slots__ = ("id", "code", "message", "data")

    def __init__(self, id: int | None, code: int, message: str, data: Any = None) -> None:
        self.id = id
        self.code = code
        self.message = message
        self.data = data

    def __repr__(self) -> str:
        return f"RpcError(id={self.id} code={self.code} {self.message!r})"


class Notification(msgspec.Struct, gc=False):
    """A subscription message: ``channel`` and its ``data`` payload. A msgspec Struct only because
    one is made per frame: its ``__init__`` runs in C, half the cost of a Python one (no cycle can
    pass through it, so the garbage collector need not track it)."""

    channel: str
    data: Any


class Heartbeat:
    """The venue's keepalive (``kind`` "heartbeat") or its probe (``kind`` "test_request"), which
    must be answered with any request. Not in the document (VENUES.md 5.11): Deribit's shape."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind


Message = Response | RpcError | Notification | Heartbeat


def decode_message(raw: str | bytes) -> Message:
    """Classify one frame. Raises :class:`CodecError` for anything else."""
    msg = loads(raw)
    if not isinstance(msg, dict):
        raise CodecError(f"frame is a {type(msg).__name__}, not a JSON-RPC object")
    method = msg.get("method")
    if method == "subscription":
        params = msg.get("params")
        if not isinstance(params, dict) or not isinstance(params.get("channel"), str) or "data" not in params:
            raise CodecError("subscription message without params.channel / params.data")
        return Notification(params["channel"], params["data"])
    if "id" in msg and method is None:
        req_id = msg["id"]
        error = msg.get("error")
        if req_id is not None and type(req_id) is not int:  # the reader looks the id up in a dict
            raise CodecError(f"response id of type {type(req_id).__name__} is not an integer")
        if error is not None:
            if not isinstance(error, dict):
                raise CodecError("error member is not an object")
            code = error.get("code")
            if isinstance(code, bool) or not isinstance(code, int):
                raise CodecError(f"error code {code!r} is not an integer")
            return RpcError(req_id, code, str(error.get("message", "")), error.get("data"))
        if "result" not in msg:
            raise CodecError("response has neither result nor error")
        if isinstance(req_id, bool) or not isinstance(req_id, int):
            raise CodecError(f"response id {req_id!r} is not an integer")
        return Response(req_id, msg["result"])
    if method == "heartbeat":
        params = msg.get("params")
        kind = params.get("type") if isinstance(params, dict) else None
        if kind not in ("heartbeat", "test_request"):
            raise CodecError(f"heartbeat of unknown type {kind!r}")
        return Heartbeat(kind)
    if type(method) is not str:
        raise CodecError(f"neither a response nor a method ({type(method).__name__})")
    raise CodecError(f"unknown message (method {method[:40]!r})", UNKNOWN_MESSAGE)


def decode_frame(raw: str | bytes) -> Message:
    """:func:`decode_message`, except that a book notification's ``data`` comes already decoded,
    as the :class:`BookMsg` :func:`decode_book` makes of it (which passes it through).

    Why: book changes are most of what a session receives. Such a frame (its text names a
    ``"book.`` channel) is read straight into its shape (:class:`_BookFrame`, msgspec) and its levels
    built once, with no dicts and no second check in Python of what the shape checked. Anything
    else, and any frame the shape or a bound refuses, goes the general way, which decides: the
    same message or the same :class:`CodecError` as :func:`decode_message` then
    :func:`decode_book` (tests/protocol/test_pulse_fastbook.py compares the two on generated frames)."""
    if type(raw) is str and '"book.' in raw and len(raw) <= MAX_FRAME_CHARS:
        try:
            params = _decode_book_frame(raw).params
            return Notification(params.channel, _book_of(params.data))
        except Exception:  # refused by the shape or a bound: the general way decides
            pass
    return decode_message(raw)


def encode_request(req_id: int, method: str, params: dict[str, Any] | None = None) -> str:
    """One request frame. ``method`` is the document's path without ``/api/v2/`` (PUL-1)."""
    return dumps({"jsonrpc": JSONRPC, "id": req_id, "method": method, "params": params or {}})


# --------------------------------------------------------------------------------------------
# Authentication (VENUES.md 5.3)


def signature(client_secret: str, timestamp_ms: int, nonce: str = "", data: str = "") -> str:
    """``client_signature``: the document says only "HMAC ... with SHA256" over "some fields" and
    refers to Deribit (PUL-3). Deribit's formula: lowercase hex of
    HMAC-SHA256(key=client_secret, msg=f"{timestamp}\\n{nonce}\\n{data}")."""
    message = f"{timestamp_ms}\n{nonce}\n{data}".encode()
    return hmac.new(client_secret.encode(), message, hashlib.sha256).hexdigest()


def auth_params(
    grant_type: str,
    *,
    client_id: str = "",
    client_secret: str = "",
    refresh_token: str = "",
    timestamp_ms: int = 0,
    nonce: str = "",
    data: str = "",
) -> dict[str, Any]:
    """``public/auth`` params for one grant type. The document flags every param required; we send
    only those its descriptions say the grant needs (PUL-3)."""
    if grant_type == "client_credentials":
        return {"grant_type": grant_type, "client_id": client_id, "client_secret": client_secret}
    if grant_type == "client_signature":
        return {
            "grant_type": grant_type,
            "client_id": client_id,
            "timestamp": timestamp_ms,
            "signature": signature(client_secret, timestamp_ms, nonce, data),
            "nonce": nonce,
            "data": data,
        }
    if grant_type == "refresh_token":
        return {"grant_type": grant_type, "refresh_token": refresh_token}
    raise CodecError(f"unknown grant_type {grant_type!r}")


class Login:
    """``services.LoginResponse``. ``expires_in_s`` is the token's lifetime in seconds."""

    __slots__ = ("access_token", "refresh_token", "expires_in_s", "scope")

    def __init__(self, access_token: str, refresh_token: str, expires_in_s: Decimal, scope: str) -> None:
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.expires_in_s = expires_in_s
        self.scope = scope

    def __repr__(self) -> str:  # tokens are secrets: never in a repr
        return f"Login(expires_in_s={self.expires_in_s} scope={self.scope!r})"


def decode_login(result: Any, now_s: int) -> Login:
    """``expires_in`` is described as a lifetime in seconds but its example (1516239022) is an
    epoch (PUL-3): a value of 10^9 or more is taken as the expiry instant in epoch seconds."""
    if not isinstance(result, dict):
        raise CodecError("auth result is not an object")
    access = result.get("access_token")
    refresh = result.get("refresh_token")
    if not isinstance(access, str) or not access:
        raise CodecError("auth result without access_token")
    expires = num(result.get("expires_in"), "expires_in")
    if expires >= 1_000_000_000:
        expires = max(expires - now_s, ZERO)
    return Login(access, refresh if isinstance(refresh, str) else "", expires, str(result.get("scope", "")))


# --------------------------------------------------------------------------------------------
# Orders (VENUES.md 5.5, 5.6, 5.8)

_TIF_OUT = {
    TimeInForce.GTC: "good_til_cancelled",
    TimeInForce.DAY: "good_til_day",
    TimeInForce.IOC: "immediate_or_cancel",
    TimeInForce.FOK: "fill_or_kill",
}
_TIF_IN = {v: k for k, v in _TIF_OUT.items()}
_SIDE_IN = {"buy": Side.BUY, "sell": Side.SELL}


def order_request(order: Order) -> tuple[str, dict[str, Any]]:
    """``private/buy`` or ``private/sell`` for a new order; ``label`` carries our client id (the
    only client-side id the venue has, VENUES.md 6.5).

    - Side is the method; there is no side field (VENUES.md 5.5).
    - ``post_only`` is "Only valid in combination with time_in_force=good_til_cancelled" (PUL-12):
      a post-only DAY order is sent good_til_cancelled (the engine cancels its quotes at the end of
      its session itself); IOC/FOK post-only orders never get here (the gate refuses them).
    - ``reduce_only`` is the order's own (``ctx.submit(..., reduce_only=True)`` on a derivatives
      account): the venue refuses one that would not reduce the position.
    - Stop/take/trailing types, ``trigger``, OTO/OTOCO and ``advanced`` are not sent: the engine
      models limit and market orders only (PUL-13, PUL-15).
    """
    tif = order.tif
    time_in_force = "good_til_cancelled" if order.post_only and tif is TimeInForce.DAY else _TIF_OUT[tif]
    params: dict[str, Any] = {
        "instrument_name": order.symbol,
        "amount": order.qty,
        "type": "market" if order.type is OrderType.MARKET else "limit",
        "label": order.client_id,
        "time_in_force": time_in_force,
        "post_only": order.post_only,
        "reduce_only": order.reduce_only,
        "mmp": order.mmp,
    }
    if order.type is not OrderType.MARKET:
        params["price"] = order.price
    return ("private/buy" if order.side is Side.BUY else "private/sell"), params


def edit_params(order_id: str, amount: Decimal, price: Decimal | None) -> dict[str, Any]:
    """``private/edit``: ``amount`` is marked required although described "Optional" (PUL-5), so
    it is always sent (the current total when only the price changes)."""
    params: dict[str, Any] = {"order_id": order_id, "amount": amount}
    if price is not None:
        params["price"] = price
    return params


class PulseOrder:
    """The fields of ``models.OrderConfirmation`` the engine uses."""

    __slots__ = (
        "order_id", "label", "instrument", "side", "state", "amount", "filled", "price", "average_price",
        "cancel_reason", "replaced", "mmp", "post_only", "order_type", "tif", "ts_ns",
    )

    def __init__(self, obj: dict[str, Any]) -> None:
        order_id = obj.get("order_id")
        if not isinstance(order_id, str) or not order_id:
            raise CodecError("order without order_id")
        self.order_id = order_id
        label = obj.get("label")
        self.label = label if isinstance(label, str) else ""
        self.instrument = str(obj.get("instrument_name") or "")
        # direction also takes action words (edit, cancel, ...) in types.Side: only buy/sell are sides
        self.side = lookup(_SIDE_IN, obj.get("direction"))
        state = obj.get("order_state")
        if lookup(_STATE_STATUS, state) is None:
            raise CodecError(f"order {order_id}: unknown order_state {str(state)[:40]!r}")
        self.state: str = state
        self.amount = num(obj.get("amount"), "amount")
        self.filled = num(obj.get("filled_amount", 0), "filled_amount")
        self.price = _opt_num(obj.get("price"), "price")
        self.average_price = _opt_num(obj.get("average_price"), "average_price")
        reason = obj.get("cancel_reason")
        self.cancel_reason = reason if isinstance(reason, str) else ""
        self.replaced = obj.get("replaced") is True
        self.mmp = obj.get("mmp") is True
        self.post_only = obj.get("post_only") is True
        self.order_type = str(obj.get("order_type") or "")
        self.tif = lookup(_TIF_IN, obj.get("time_in_force"))
        self.ts_ns = to_ns(obj.get("last_update_timestamp") or obj.get("creation_timestamp"))

    @property
    def status(self) -> OrderStatus:
        """The model status. ``open`` with a fill is partially filled (VENUES.md 6.6); an
        ``untriggered`` order is working (the engine has no separate state for it)."""
        if self.state == "open" and self.filled > 0:
            return OrderStatus.PARTIALLY_FILLED
        return _STATE_STATUS[self.state]

    def to_venue_order(self, venue: str, side: Side | None = None) -> VenueOrder:
        price = None if self.order_type == "market" else self.price
        return VenueOrder(
            venue, self.label, self.order_id, self.instrument, self.side or side or Side.BUY, self.status,
            self.amount, self.filled, price,
        )

    def __repr__(self) -> str:
        return f"PulseOrder({self.order_id} {self.label!r} {self.state} {self.filled}/{self.amount} @ {self.price})"


_STATE_STATUS = {
    "open": OrderStatus.NEW,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "cancelled": OrderStatus.CANCELLED,
    "untriggered": OrderStatus.NEW,
    "rejected": OrderStatus.REJECTED,
}


def decode_order(obj: Any) -> PulseOrder:
    if not isinstance(obj, dict):
        raise CodecError("order is not an object")
    return PulseOrder(obj)


def decode_orders(result: Any) -> list[PulseOrder]:
    """A list of orders, or one order: ``get_order_state`` is documented as returning an array
    where Deribit returns one object (PUL-5); both are accepted everywhere."""
    if isinstance(result, dict):
        return [PulseOrder(result)]
    if not isinstance(result, list):
        raise CodecError("expected an order or a list of orders")
    return [decode_order(item) for item in result]


class PulseTrade:
    """``models.TradesResponse`` / ``TradeConfirmation``. ``order_id``, ``label``, ``liquidity``
    and ``fee`` are missing from the documented trade objects (PUL-8); when the venue adds them
    (Deribit does; our sandbox does) they are used, otherwise they stay empty (``fee`` None)."""

    __slots__ = ("trade_id", "trade_seq", "order_id", "label", "instrument", "side", "price", "amount",
                 "ts_ns", "liquidity", "fee")

    def __init__(self, obj: dict[str, Any]) -> None:
        trade_id = obj.get("trade_id")
        if not isinstance(trade_id, str) or not trade_id:
            raise CodecError("trade without trade_id")
        self.trade_id = trade_id
        seq = obj.get("trade_seq")
        self.trade_seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else 0
        order_id = obj.get("order_id")
        self.order_id = order_id if isinstance(order_id, str) else ""
        label = obj.get("label")
        self.label = label if isinstance(label, str) else ""
        self.instrument = str(obj.get("instrument_name") or "")
        self.side = lookup(_SIDE_IN, obj.get("direction"))
        self.price = num(obj.get("price"), "price")
        self.amount = num(obj.get("amount"), "amount")
        if self.amount <= 0:
            raise CodecError(f"trade {trade_id}: amount {self.amount} is not positive")
        self.ts_ns = to_ns(obj.get("timestamp"))
        liquidity = obj.get("liquidity")  # Deribit: "M" maker / "T" taker (PUL-8)
        self.liquidity = (
            Liquidity.MAKER if liquidity == "M" else Liquidity.TAKER if liquidity == "T" else Liquidity.UNKNOWN
        )
        fee = obj.get("fee")  # None: the venue stated no fee, the engine charges its schedule
        self.fee = None if fee is None else num(fee, "fee")

    def __repr__(self) -> str:
        return f"PulseTrade({self.trade_id} {self.order_id} {self.amount}@{self.price})"


def decode_trade(obj: Any) -> PulseTrade:
    if not isinstance(obj, dict):
        raise CodecError("trade is not an object")
    return PulseTrade(obj)


def decode_trades(data: Any) -> list[PulseTrade]:
    """``user.trades`` is documented as one trade object per message; Deribit sends a list.
    Both are accepted."""
    if isinstance(data, dict):
        return [PulseTrade(data)]
    if not isinstance(data, list):
        raise CodecError("expected a trade or a list of trades")
    return [decode_trade(item) for item in data]


def user_trades_params(instrument: str, start_ms: int, count: int) -> dict[str, Any]:
    """``private/get_user_trades_by_instrument`` from ``start_ms`` on, oldest first: the document's
    params (``instrument_name``, ``start_timestamp``, ``count``, ``sorting``; it has no sequence
    bound for this method), read as Deribit does: with a start, a page is the ``count`` oldest
    trades from it, so the next page starts at the last one's timestamp."""
    return {"instrument_name": instrument, "start_timestamp": start_ms, "count": count, "sorting": "asc"}


def decode_trade_page(result: Any) -> tuple[list[PulseTrade], bool | None]:
    """One answer of ``private/get_user_trades_by_instrument`` and whether more trades follow.
    The document's answer is a bare array of ``models.TradesResponse`` with no ``has_more``: then
    None, and the caller judges by a full page. Deribit's ``{"trades": [...], "has_more": b}`` is
    accepted too, and its ``has_more`` decides."""
    if isinstance(result, list):
        return [decode_trade(item) for item in result], None
    if isinstance(result, dict) and isinstance(result.get("trades"), list):
        has_more = result.get("has_more")
        return [decode_trade(item) for item in result["trades"]], has_more if isinstance(has_more, bool) else None
    raise CodecError("get_user_trades_by_instrument result is neither a list of trades nor {trades, has_more}")


# --------------------------------------------------------------------------------------------
# Market data (VENUES.md 5.7)

_ACTIONS = {"new": True, "change": True, "delete": False}


class BookMsg(msgspec.Struct, gc=False):
    """One ``book.{instrument}.raw`` message. ``changes`` are ``(side, price, new_total)``, 0 = delete.
    A msgspec Struct (C ``__init__``, untracked by the garbage collector) for the reason
    :class:`Notification` is one: one per frame."""

    symbol: str
    snapshot: bool
    change_id: int
    prev_change_id: int | None
    ts_ns: int
    changes: tuple[tuple[Side, Decimal, Decimal], ...]


#: the change id of a snapshot that has none (a fetched book): the next change starts the chain
NO_CHANGE_ID = -1


def _levels(side: Side, levels: Any, out: list[tuple[Side, Decimal, Decimal]]) -> None:
    """Level arrays are documented as ``[[null]]`` (PUL-6). Deribit's raw format is assumed:
    ``[action, price, amount]`` with action new/change/delete (amount 0 on delete); a plain
    ``[price, amount]`` is accepted too (amount 0 = delete)."""
    if not isinstance(levels, list):
        raise CodecError("book levels are not a list")
    for level in levels:
        if not isinstance(level, list):
            raise CodecError(f"book level {level!r} is not a list")
        if len(level) == 3:
            action, price, amount = level
            keep = _ACTIONS.get(action) if type(action) is str else None  # lookup(), inlined: every level
            if keep is None:
                raise CodecError(f"book level action {action!r} is not new/change/delete")
            price = num(price, "price")
            amount = num(amount, "amount") if keep else ZERO
        elif len(level) == 2:
            price = num(level[0], "price")
            amount = num(level[1], "amount")
        else:
            raise CodecError(f"book level {level!r} has {len(level)} elements")
        if amount < 0 or price <= 0:
            raise CodecError(f"book level {level!r} has a negative amount or non-positive price")
        out.append((side, price, amount))


def decode_book(data: Any) -> BookMsg:
    """``models.BookNotification``. ``type`` is "snapshot" or "change"; continuity holds when a
    change's ``prev_change_id`` equals the last ``change_id`` (PUL-6). A :class:`BookMsg` (the
    payload :func:`decode_frame` decoded already) is returned as it is."""
    if type(data) is BookMsg:
        return data
    if not isinstance(data, dict):
        raise CodecError("book payload is not an object")
    kind = data.get("type")
    if kind not in ("snapshot", "change"):
        raise CodecError(f"book type {kind!r} is not snapshot/change")
    symbol = data.get("instrument_name")
    change_id = data.get("change_id")
    if not isinstance(symbol, str) or isinstance(change_id, bool) or not isinstance(change_id, int):
        raise CodecError("book payload without instrument_name or integer change_id")
    prev = data.get("prev_change_id")
    if prev is not None and (isinstance(prev, bool) or not isinstance(prev, int)):
        raise CodecError(f"prev_change_id {prev!r} is not an integer")
    changes: list[tuple[Side, Decimal, Decimal]] = []
    _levels(Side.BUY, data.get("bids", []), changes)
    _levels(Side.SELL, data.get("asks", []), changes)
    return BookMsg(symbol, kind == "snapshot", change_id, prev, to_ns(data.get("timestamp")), tuple(changes))


#: a level's action as the fast path reads it: msgspec hands back these very strings, hash cached
_Action = Literal["new", "change", "delete"]
#: a change id as the fast path takes it, bounded by msgspec (a larger one goes the general way)
_ChangeId = Annotated[int, msgspec.Meta(gt=-MAGNITUDE_LIMIT, lt=MAGNITUDE_LIMIT)]


class _BookData(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, gc=False):
    """The shape of a book payload as :func:`decode_book` accepts it, for :func:`decode_frame`'s
    fast path. Unknown fields are refused (the general way skips them, after the reader's depth
    check); levels are 3-element arrays (a 2-element one goes the general way); their items are
    ``Any`` so that numbers come from the reader's bounded Decimals and :func:`num` judges them.
    Fields are declared in the order of the document's example (and the sandbox's frames):
    msgspec finds a key fastest when it comes where it is declared (-0.5k instructions a frame).
    ``gc=False`` here and below: the decoded shape holds no cycle, so the garbage collector need not
    track (nor count towards a collection) three objects a frame."""

    asks: list[tuple[_Action, Any, Any]] = []
    bids: list[tuple[_Action, Any, Any]] = []
    change_id: _ChangeId
    instrument_name: str
    prev_change_id: _ChangeId | None = None
    timestamp: Any = None
    type: Literal["snapshot", "change"]


class _BookParams(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    channel: str
    data: _BookData


class _BookFrame(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, gc=False):
    """A ``subscription`` notification carrying a book payload (fields in the frames' order)."""

    jsonrpc: str | None = None
    method: Literal["subscription"]
    params: _BookParams


_decode_book_frame = typed_decoder(_BookFrame)
_BUY = Side.BUY
_SELL = Side.SELL


def _book_of(data: _BookData) -> BookMsg:
    """A :class:`BookMsg` from a decoded :class:`_BookData`, checked as :func:`decode_book` checks
    the same fields. Raises (:class:`CodecError`) where the general way might answer otherwise
    (a level it would refuse)."""
    changes: list[tuple[Side, Decimal, Decimal]] = []
    for side, levels in ((_BUY, data.bids), (_SELL, data.asks)):
        for action, price, size in levels:
            keep = _ACTIONS[action]  # one of _Action: the shape checked it
            # num()'s common cases inlined (a reader's Decimal, an int size), with the sign checks
            if type(price) is not Decimal or not ZERO < price < _LIMIT:
                price = num(price, "price")
                if price <= 0:
                    raise CodecError("book level price")
            if not keep:  # a delete: its amount is not read, but one that nests may be past the
                if type(size) is list or type(size) is dict:  # reader's depth bound: the general way decides
                    raise CodecError("book level amount")
                size = ZERO
            elif type(size) is int and 0 <= size < MAGNITUDE_LIMIT:
                size = int_decimal(size)
            else:
                size = num(size, "amount")
                if size < 0:
                    raise CodecError("book level amount")
            changes.append((side, price, size))
    stamp = data.timestamp  # to_ns()'s common case inlined: an int of milliseconds
    ts_ns = stamp * NS_PER_MS if type(stamp) is int and _SECONDS_LIMIT <= stamp < _TIMESTAMP_INT else to_ns(stamp)
    return BookMsg(data.instrument_name, data.type == "snapshot", data.change_id, data.prev_change_id, ts_ns,
                   tuple(changes))


def decode_order_book(data: Any) -> BookMsg:
    """``private/get_order_book`` (004 ``models.GetOrderBookResponse``): the whole book as a
    snapshot, for a book whose channel sent no snapshot in time. The answer carries no
    ``change_id``: the snapshot's is :data:`NO_CHANGE_ID`, and the next change starts the chain."""
    if not isinstance(data, dict):
        raise CodecError("order book answer is not an object")
    symbol = data.get("instrument_name")
    if not isinstance(symbol, str):
        raise CodecError("order book answer without instrument_name")
    changes: list[tuple[Side, Decimal, Decimal]] = []
    _levels(Side.BUY, data.get("bids", []), changes)
    _levels(Side.SELL, data.get("asks", []), changes)
    return BookMsg(symbol, True, NO_CHANGE_ID, None, to_ns(data.get("timestamp")), tuple(changes))


class Quote:
    """``quote.{instrument}``: best bid/ask; a price is null when its side is empty."""

    __slots__ = ("symbol", "bid", "bid_qty", "ask", "ask_qty", "ts_ns")

    def __init__(self, data: dict[str, Any]) -> None:
        self.symbol = str(data.get("instrument_name") or "")
        self.bid = _opt_num(data.get("best_bid_price"), "best_bid_price")
        self.ask = _opt_num(data.get("best_ask_price"), "best_ask_price")
        self.bid_qty = num(data.get("best_bid_amount") or 0, "best_bid_amount")
        self.ask_qty = num(data.get("best_ask_amount") or 0, "best_ask_amount")
        self.ts_ns = to_ns(data.get("timestamp"))


def decode_quote(data: Any) -> Quote:
    if not isinstance(data, dict):
        raise CodecError("quote payload is not an object")
    return Quote(data)


def decode_mmp_trigger(data: Any) -> tuple[str, int]:
    """``user.mmp_trigger.{index_name}`` -> (index_name, frozen_until in ns since the epoch; 0 =
    frozen until reset). The example value 1640995200 looks like seconds; ms is assumed like other
    timestamps, and a seconds-sized value is read as seconds (PUL-9, VENUES.md 5.13)."""
    if not isinstance(data, dict) or not isinstance(data.get("index_name"), str):
        raise CodecError("mmp trigger without index_name")
    until = data.get("frozen_until")
    return data["index_name"], (to_ns(until) if until else 0)


def decode_heartbeat_trade(data: Any) -> bool:
    """``heartbeat_trade``: True while ``status_trade`` is "active" (trading allowed)."""
    if not isinstance(data, dict) or data.get("status_trade") not in ("active", "inactive"):
        raise CodecError("heartbeat_trade without status_trade active/inactive")
    return data["status_trade"] == "active"


# --------------------------------------------------------------------------------------------
# Channels and names

def book_channel(symbol: str) -> str:
    """Only the ``raw`` interval is documented ("value is raw")."""
    return f"book.{symbol}.raw"


def index_name_for(symbol: str) -> str:
    """Default index of an instrument: ``BTC_USD-PERPETUAL`` -> ``btc_usd``, ``BTC-31JUN23-50000-C``
    -> ``btc_usd`` (the document's index names are ``btc_usd``, ``eth_usd``). Config may override."""
    head = symbol.split("-", 1)[0].lower()
    return head if "_" in head else f"{head}_usd"


def currency_for(symbol: str) -> str:
    """Currency of an instrument for the currency-keyed queries (``get_order_state_by_label``)."""
    return index_name_for(symbol).split("_", 1)[0].upper()


# --------------------------------------------------------------------------------------------
# Errors: the venue's status codes onto the engine's reject codes, one table.
# CommonCodes 1..13 have no meanings in the document (PUL-4); the meanings are ours (VENUES.md 5.12)
# and the sandbox uses the same ones.

PULSE_ERRORS: dict[int, tuple[str, Reject]] = {
    1: ("bad request / invalid params", Reject.INVALID_ORDER),
    2: ("unauthorized", Reject.INVALID_TOKEN),
    3: ("forbidden", Reject.INSUFFICIENT_PERMISSIONS),
    4: ("not found", Reject.ORDER_NOT_OPEN),
    5: ("instrument not found / inactive", Reject.INVALID_SYMBOL),
    6: ("insufficient funds / margin", Reject.INSUFFICIENT_BUYING_POWER),
    7: ("invalid price", Reject.PRICE_OUTSIDE_CIRCUIT_BREAKER),
    8: ("invalid amount", Reject.INVALID_QUANTITY),
    9: ("post-only / reduce-only violation", Reject.POST_ONLY_WOULD_TAKE),
    10: ("MMP frozen", Reject.MMP_FROZEN),
    11: ("rate limited", Reject.RATE_LIMIT_EXCEEDED),
    12: ("order not open", Reject.ORDER_NOT_OPEN),
    13: ("internal error", Reject.EXCHANGE_REJECT),
}
# JSON-RPC 2.0's own codes (-32700 parse error ... -32603 internal error): our request was malformed
_JSONRPC_RESERVED = range(-32768, -31999)


def reject_code(pulse_code: int) -> int:
    """The engine's reject code for a venue error code; an unknown code is an exchange reject."""
    entry = PULSE_ERRORS.get(pulse_code)
    if entry is not None:
        return int(entry[1])
    if pulse_code in _JSONRPC_RESERVED:
        return int(Reject.INVALID_ORDER)
    return int(Reject.EXCHANGE_REJECT)


def describe_error(error: RpcError) -> str:
    """A sentence for logs and order reasons: venue code, its meaning, the venue's message."""
    meaning = PULSE_ERRORS.get(error.code, ("unknown code", Reject.EXCHANGE_REJECT))[0]
    return f"Pulse error {error.code} ({meaning}): {error.message}"


def decode_account(summary: Any, positions: Any, currency: str) -> VenueAccount:
    """``private/get_account_summary`` plus ``private/get_positions`` (004: every field optional):
    equity (required here: without it there is nothing to reconcile), balance, margin balance,
    initial and maintenance margin, and each position's signed size (``direction: sell`` is a
    short), average and mark price. A summary without ``currency`` is in the one asked for."""
    if not isinstance(summary, dict):
        raise CodecError("account summary is not an object")
    if "equity" not in summary:
        raise CodecError("account summary has no equity")
    if not isinstance(positions, list):
        raise CodecError("get_positions result is not a list")
    held = []
    for item in positions:
        if not isinstance(item, dict) or not isinstance(item.get("instrument_name"), str):
            raise CodecError("position is not an object with an instrument_name")
        size = num(item.get("size", 0), "size")
        if item.get("direction") == "sell" and size > 0:
            size = -size
        held.append(VenuePosition(item["instrument_name"], size, num(item.get("average_price", 0), "average_price"),
                                  _opt_num(item.get("mark_price"), "mark_price")))
    stated = summary.get("currency")
    return VenueAccount(
        currency=stated if isinstance(stated, str) and stated else currency,
        equity=num(summary["equity"], "equity"),
        balance=_opt_num(summary.get("balance"), "balance"),
        margin_balance=_opt_num(summary.get("margin_balance"), "margin_balance"),
        initial_margin=_opt_num(summary.get("initial_margin"), "initial_margin"),
        maintenance_margin=_opt_num(summary.get("maintenance_margin"), "maintenance_margin"),
        positions=tuple(held),
    )
