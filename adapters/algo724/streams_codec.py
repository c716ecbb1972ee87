"""Algo724 Cadenza stream payloads: the ONE place that decides what a publication's ``data`` is.

Document 003 (``shared/seeds/003_…``) names three Centrifugo channels and says "See the WebSocket
schemas section for detailed message structures"; that section is not in the document (VENUES.md
**ALG-3**). So the shapes below are the project's decision, written once here. The stream client
(:mod:`adapters.algo724.streams`) decodes with it and the sandbox's publisher
(:mod:`adapters.algo724.centrifugo_feed`) encodes with it, so both sides agree by construction;
the Centrifugo *framing* around them is not in this module (the server writes it from the
Centrifugo protocol, the client is the real centrifuge-python).

ALG-3 decisions (every field camelCase, as the REST objects are; decimals are strings):

- ``market:orderBook:{instrumentId}``: the REST ``OrderBook`` object (``instrumentId``, ``venue``,
  ``symbol``, ``asks``/``bids`` as ``[price, quantity]`` string pairs, ``timestamp`` ms) plus
  ``"type": "SNAPSHOT" | "DELTA"`` and ``"sequence"`` (int, +1 per publication of that book).
  A SNAPSHOT replaces the book; a DELTA's levels are new totals, ``"0"`` removes the level.
  VENUES.md ALG-3 first read "a full snapshot each time, optional sequence"; deltas need a
  sequence to be safe, so the sequence is *required* and a missing ``type`` means SNAPSHOT (the
  older reading stays valid). The subscribe reply's ``data`` carries a SNAPSHOT of the book (the
  client's starting point, and its resync after a sequence gap).
- ``market:trade:{instrumentId}``: ``{"instrumentId", "venue", "tradeId", "price", "quantity",
  "side": "BUY" | "SELL" (the aggressor), "timestamp"}``.
- ``tradingAccount:{accountId}``: ``{"type": "ORDER" | "EXECUTION" | "PORTFOLIO" | "BALANCE",
  "data": ...}``. ORDER carries the REST Order object (document 003: ``tradeOrderId``,
  ``status``, ``executions[]`` ...), so a fill is an ``executions[]`` entry not seen before (by
  ``executionId``); EXECUTION carries one such entry plus ``tradeOrderId`` and
  ``tradingAccountId``, for a venue that pushes fills alone. PORTFOLIO and BALANCE are passed on
  undecoded (the engine takes positions from its own fills).

Hostile input: a decimal must match ``^-?[0-9]+(\\.[0-9]+)?$`` exactly (no exponent, ``+``,
bare ``.5``, whitespace or non-ASCII digit; 003's "Decimal value as string"), within the kit's
bounds (:func:`adapters.kit.wirejson.amount_text`); integers are JSON integers, never bools or
floats; strings and lists are bounded. Anything else raises :class:`StreamCodecError` with a
``kind`` from :mod:`engine.venue.badinput`, and nothing else is ever raised
(tests/protocol/test_algo724_streams_codec.py proves it with hypothesis).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from adapters.kit.wirejson import MAX_DEPTH, Reader, WireError, amount_text
from engine.venue.badinput import BAD_NUMBER, MALFORMED, UNKNOWN_MESSAGE

__all__ = [
    "ACCOUNT_PREFIX",
    "BOOK_PREFIX",
    "MAX_LEVELS",
    "TRADE_PREFIX",
    "AccountNote",
    "BookMessage",
    "ExecutionMessage",
    "OrderMessage",
    "StreamCodecError",
    "TradeMessage",
    "account_channel",
    "book_channel",
    "book_payload",
    "decode",
    "decimal_string",
    "decode_text",
    "execution_payload",
    "order_payload",
    "parse_channel",
    "trade_channel",
    "trade_payload",
]

ACCOUNT_PREFIX = "tradingAccount:"
BOOK_PREFIX = "market:orderBook:"
TRADE_PREFIX = "market:trade:"
#: 003's order book ``depth`` is [1..1000]: more levels per side is not a book we asked for
MAX_LEVELS = 1000
#: executions listed in one Order object
MAX_EXECUTIONS = 10_000
#: ids, enums and free texts (reject reasons) are short; a megabyte "id" is hostile
MAX_TEXT = 512
#: sequences, offsets and ms timestamps fit an int64
MAX_INT = 2**63

#: 003: "Decimal value as string to preserve precision", pattern ^-?\d+(\.\d+)?$ (ASCII digits:
#: Python's \d also matches Arabic-Indic digits, which Decimal() would accept)
_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)
_SIDES = {"BUY": "BUY", "SELL": "SELL"}
_BOOK_TYPES = {"SNAPSHOT": True, "DELTA": False}
_ACCOUNT_TYPES = frozenset({"ORDER", "EXECUTION", "PORTFOLIO", "BALANCE"})
_READER = Reader(max_chars=4 << 20, max_depth=MAX_DEPTH)


class StreamCodecError(ValueError):
    """A publication that is not what ALG-3 decided. ``kind``: an engine.venue.badinput kind."""

    def __init__(self, reason: str, kind: str = MALFORMED) -> None:
        super().__init__(reason)
        self.kind = kind


# --------------------------------------------------------------------------------------------
# Messages (slotted: one per publication on the hot path)


class BookMessage:
    """One order-book publication: ``levels`` are ``(price, qty)`` with qty 0 = remove (deltas)."""

    __slots__ = ("instrument_id", "sequence", "snapshot", "bids", "asks", "ts_ms")

    def __init__(self, instrument_id: str, sequence: int, snapshot: bool, bids: tuple[tuple[Decimal, Decimal], ...],
                 asks: tuple[tuple[Decimal, Decimal], ...], ts_ms: int) -> None:
        self.instrument_id = instrument_id
        self.sequence = sequence
        self.snapshot = snapshot
        self.bids = bids
        self.asks = asks
        self.ts_ms = ts_ms

    def __repr__(self) -> str:
        kind = "SNAPSHOT" if self.snapshot else "DELTA"
        return f"BookMessage({self.instrument_id} {kind} seq={self.sequence} bids={self.bids} asks={self.asks})"


class TradeMessage:
    """One public trade; ``side`` is the aggressor ("BUY" / "SELL")."""

    __slots__ = ("instrument_id", "trade_id", "price", "qty", "side", "ts_ms")

    def __init__(self, instrument_id: str, trade_id: str, price: Decimal, qty: Decimal, side: str, ts_ms: int) -> None:
        self.instrument_id = instrument_id
        self.trade_id = trade_id
        self.price = price
        self.qty = qty
        self.side = side
        self.ts_ms = ts_ms


class ExecutionMessage:
    """One execution of one of our orders (003 ``executions[]`` entry). ``fee`` is the sum of
    ``fees[].quantity`` (None when the venue states none), ``fee_asset`` the first fee's asset."""

    __slots__ = ("execution_id", "trade_order_id", "instrument_id", "side", "price", "qty", "fee", "fee_asset",
                 "ts_ms")

    def __init__(self, execution_id: str, trade_order_id: str, instrument_id: str, side: str, price: Decimal,
                 qty: Decimal, fee: Decimal | None, fee_asset: str, ts_ms: int) -> None:
        self.execution_id = execution_id
        self.trade_order_id = trade_order_id
        self.instrument_id = instrument_id
        self.side = side
        self.price = price
        self.qty = qty
        self.fee = fee
        self.fee_asset = fee_asset
        self.ts_ms = ts_ms


class OrderMessage:
    """An ORDER publication: the Order object's state as of ``updated_ms``. ``status`` is 003's
    raw value (the adapter maps it, ALG-5); ``executions`` are all listed so far; ``data`` is the
    Order object itself, checked here, for the order adapter's own decoder (the REST path's)."""

    __slots__ = ("trade_order_id", "account_id", "instrument_id", "side", "status", "limit_price", "quantity",
                 "executed_qty", "reason", "updated_ms", "executions", "data")

    def __init__(self, trade_order_id: str, account_id: str, instrument_id: str, side: str, status: str,
                 limit_price: Decimal | None, quantity: Decimal | None, executed_qty: Decimal | None, reason: str,
                 updated_ms: int, executions: tuple[ExecutionMessage, ...], data: dict[str, Any] | None = None) -> None:
        self.trade_order_id = trade_order_id
        self.account_id = account_id
        self.instrument_id = instrument_id
        self.side = side
        self.status = status
        self.limit_price = limit_price
        self.quantity = quantity
        self.executed_qty = executed_qty
        self.reason = reason
        self.updated_ms = updated_ms
        self.executions = executions
        self.data = data if data is not None else {}


class AccountNote:
    """A PORTFOLIO or BALANCE publication, passed on undecoded (``data`` is the JSON value)."""

    __slots__ = ("kind", "data")

    def __init__(self, kind: str, data: Any) -> None:
        self.kind = kind
        self.data = data


StreamMessage = BookMessage | TradeMessage | OrderMessage | ExecutionMessage | AccountNote


# --------------------------------------------------------------------------------------------
# Channels


def account_channel(account_id: str) -> str:
    return ACCOUNT_PREFIX + account_id


def book_channel(instrument_id: str) -> str:
    return BOOK_PREFIX + instrument_id


def trade_channel(instrument_id: str) -> str:
    return TRADE_PREFIX + instrument_id


def parse_channel(channel: str) -> tuple[str, str]:
    """``(kind, key)``: kind "book" / "trade" / "account", key the instrument or account id.
    Instrument ids contain ``:`` and ``/`` (``market:orderBook:BINANCE:BTC/USDT``), so the match is
    by prefix, never by splitting on ``:``."""
    if type(channel) is not str:
        raise StreamCodecError("channel is not a string")
    for prefix, kind in ((BOOK_PREFIX, "book"), (TRADE_PREFIX, "trade"), (ACCOUNT_PREFIX, "account")):
        if channel.startswith(prefix) and len(channel) > len(prefix):
            return kind, channel[len(prefix):]
    raise StreamCodecError(f"not an Algo724 channel: {channel[:80]!r}", UNKNOWN_MESSAGE)


# --------------------------------------------------------------------------------------------
# Field readers


def _obj(value: Any, field: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise StreamCodecError(f"{field}: expected an object, got {type(value).__name__}")
    return value


def _text(data: dict[str, Any], field: str, required: bool = True) -> str:
    value = data.get(field)
    if value is None and not required:
        return ""
    if type(value) is not str or (required and not value):
        raise StreamCodecError(f"{field}: expected a non-empty string")
    if len(value) > MAX_TEXT:
        raise StreamCodecError(f"{field}: {len(value):,} characters (limit {MAX_TEXT})")
    return value


def _int(data: dict[str, Any], field: str, required: bool = True) -> int:
    value = data.get(field)
    if value is None and not required:
        return 0
    if type(value) is not int:  # a bool is not an int here; a float is not exact
        raise StreamCodecError(f"{field}: expected an integer, got {type(value).__name__}")
    if not 0 <= value < MAX_INT:
        raise StreamCodecError(f"{field}: {value if abs(value) < 10**30 else 'huge'} out of range", BAD_NUMBER)
    return value


def decimal_text(value: Any, field: str) -> Decimal:
    """003's decimal string -> Decimal; a JSON number, ``"1e5"``, ``"+1"``, ``".5"``, ``"NaN"`` are
    refused (the client library parses JSON numbers to binary floats, so a number is never exact)."""
    if type(value) is not str:
        raise StreamCodecError(f"{field}: expected a decimal string, got {type(value).__name__}", BAD_NUMBER)
    if len(value) > 64 or _DECIMAL.fullmatch(value) is None:
        raise StreamCodecError(f"{field}: {value[:40]!r} is not a decimal string (^-?\\d+(\\.\\d+)?$)", BAD_NUMBER)
    try:
        return amount_text(value, field)
    except WireError as exc:
        raise StreamCodecError(exc.reason, exc.kind) from None


def _decimal(data: dict[str, Any], field: str, required: bool = True) -> Decimal | None:
    value = data.get(field)
    if value is None and not required:
        return None
    return decimal_text(value, field)


def _levels(value: Any, field: str, snapshot: bool) -> tuple[tuple[Decimal, Decimal], ...]:
    if type(value) is not list:
        raise StreamCodecError(f"{field}: expected a list of [price, quantity]")
    if len(value) > MAX_LEVELS:
        raise StreamCodecError(f"{field}: {len(value):,} levels (limit {MAX_LEVELS})")
    out = []
    for level in value:
        if type(level) is not list or len(level) != 2:
            raise StreamCodecError(f"{field}: a level is not [price, quantity]")
        price = decimal_text(level[0], field + " price")
        qty = decimal_text(level[1], field + " quantity")
        if price <= 0 or qty < 0 or (snapshot and qty == 0):
            raise StreamCodecError(f"{field}: level {level[0]!r} x {level[1]!r} out of range", BAD_NUMBER)
        out.append((price, qty))
    return tuple(out)


def _side(data: dict[str, Any], field: str) -> str:
    value = data.get(field)
    side = _SIDES.get(value) if type(value) is str else None
    if side is None:
        raise StreamCodecError(f"{field}: expected BUY or SELL")
    return side


# --------------------------------------------------------------------------------------------
# Decoding


def decode(channel: str, data: Any) -> StreamMessage:
    """A publication's ``data`` (the JSON value the Centrifugo client hands over) on ``channel``
    -> one message. Raises only :class:`StreamCodecError`."""
    try:
        kind, key = parse_channel(channel)
        body = _obj(data, "data")
        if kind == "book":
            return _book(body, key)
        if kind == "trade":
            return _trade(body, key)
        return _account(body, key)
    except StreamCodecError:
        raise
    except Exception as exc:  # a bug here must not kill the reader: the frame is counted and dropped
        raise StreamCodecError(f"undecodable publication ({type(exc).__name__})") from None


def decode_text(channel: str, raw: str | bytes) -> StreamMessage:
    """:func:`decode` of a publication's JSON text (the kit's bounded reader: depth, size, numbers).
    For payloads met as text (a recording, the benchmark, the hostile-input tests)."""
    try:
        value = _READER.loads(raw)
    except WireError as exc:
        raise StreamCodecError(exc.reason, exc.kind) from None
    return decode(channel, value)


def decode_book_snapshot(instrument_id: str, data: Any) -> BookMessage:
    """The subscribe reply's ``data`` of a book channel: a SNAPSHOT (ALG-3)."""
    message = decode(book_channel(instrument_id), data)
    if type(message) is not BookMessage or not message.snapshot:
        raise StreamCodecError("subscribe data of a book channel is not a SNAPSHOT")
    return message


def _book(body: dict[str, Any], instrument_id: str) -> BookMessage:
    kind = body.get("type", "SNAPSHOT")
    snapshot = _BOOK_TYPES.get(kind) if type(kind) is str else None
    if snapshot is None:
        raise StreamCodecError("type: expected SNAPSHOT or DELTA")
    said = body.get("instrumentId", instrument_id)
    if said != instrument_id:
        raise StreamCodecError("instrumentId differs from the channel's")
    return BookMessage(instrument_id, _int(body, "sequence"), snapshot,
                       _levels(body.get("bids", []), "bids", snapshot), _levels(body.get("asks", []), "asks", snapshot),
                       _int(body, "timestamp", required=False))


def _trade(body: dict[str, Any], instrument_id: str) -> TradeMessage:
    if body.get("instrumentId", instrument_id) != instrument_id:
        raise StreamCodecError("instrumentId differs from the channel's")
    price = decimal_text(body.get("price"), "price")
    qty = decimal_text(body.get("quantity"), "quantity")
    if price <= 0 or qty <= 0:
        raise StreamCodecError("price and quantity must be positive", BAD_NUMBER)
    return TradeMessage(instrument_id, _text(body, "tradeId"), price, qty, _side(body, "side"),
                        _int(body, "timestamp", required=False))


def _account(body: dict[str, Any], account_id: str) -> StreamMessage:
    kind = body.get("type")
    if type(kind) is not str or kind not in _ACCOUNT_TYPES:
        raise StreamCodecError("type: expected ORDER, EXECUTION, PORTFOLIO or BALANCE", UNKNOWN_MESSAGE)
    if kind in ("PORTFOLIO", "BALANCE"):
        return AccountNote(kind, body.get("data"))
    data = _obj(body.get("data"), "data")
    owner = data.get("tradingAccountId", account_id)
    if owner != account_id:
        raise StreamCodecError("tradingAccountId differs from the channel's")
    if kind == "EXECUTION":
        return _execution(data, _text(data, "tradeOrderId"))
    return _order(data, account_id)


def _execution(data: dict[str, Any], trade_order_id: str) -> ExecutionMessage:
    price = decimal_text(data.get("executedPrice"), "executedPrice")
    qty = decimal_text(data.get("executedQuantity"), "executedQuantity")
    if price <= 0 or qty <= 0:
        raise StreamCodecError("executedPrice and executedQuantity must be positive", BAD_NUMBER)
    fees = data.get("fees", [])
    if type(fees) is not list or len(fees) > 16:
        raise StreamCodecError("fees: expected a short list")
    fee: Decimal | None = None
    asset = ""
    for entry in fees:
        entry = _obj(entry, "fees[]")
        amount = decimal_text(entry.get("quantity"), "fees[].quantity")
        fee = amount if fee is None else fee + amount
        asset = asset or _text(entry, "asset", required=False)
    return ExecutionMessage(_text(data, "executionId"), trade_order_id, _text(data, "instrumentId"),
                            _side(data, "orderSide"), price, qty, fee, asset, _int(data, "executedAt", required=False))


def _order(data: dict[str, Any], account_id: str) -> OrderMessage:
    trade_order_id = _text(data, "tradeOrderId")
    executions = data.get("executions", [])
    if type(executions) is not list or len(executions) > MAX_EXECUTIONS:
        raise StreamCodecError("executions: expected a list")
    reason = _text(data, "rejectReason", required=False) or _text(data, "cancelReason", required=False)
    return OrderMessage(
        trade_order_id, account_id, _text(data, "instrumentId"), _side(data, "orderSide"), _text(data, "status"),
        _decimal(data, "limitPrice", required=False), _decimal(data, "quantity", required=False),
        _decimal(data, "executedQuantity", required=False), reason, _int(data, "updatedAt", required=False),
        tuple(_execution(_obj(e, "executions[]"), trade_order_id) for e in executions), data,
    )


# --------------------------------------------------------------------------------------------
# Encoding (the sandbox's side of the same decision)


def decimal_string(value: Decimal) -> str:
    """A Decimal as 003's decimal string: fixed point, never an exponent."""
    text = format(value, "f")
    return "0" if text in ("-0", "") else text


Levels = list[tuple[Decimal, Decimal]]


def book_payload(instrument_id: str, venue: str, sequence: int, snapshot: bool, bids: Levels, asks: Levels,
                 ts_ms: int) -> dict[str, Any]:
    """A book publication (or the subscribe reply's snapshot): the REST OrderBook + type/sequence."""
    return {
        "type": "SNAPSHOT" if snapshot else "DELTA",
        "sequence": sequence,
        "instrumentId": instrument_id,
        "venue": venue,
        "symbol": instrument_id.partition(":")[2],
        "bids": [[decimal_string(p), decimal_string(q)] for p, q in bids],
        "asks": [[decimal_string(p), decimal_string(q)] for p, q in asks],
        "timestamp": ts_ms,
    }


def trade_payload(instrument_id: str, venue: str, trade_id: str, price: Decimal, qty: Decimal, side: str,
                  ts_ms: int) -> dict[str, Any]:
    return {"instrumentId": instrument_id, "venue": venue, "tradeId": trade_id, "price": decimal_string(price),
            "quantity": decimal_string(qty), "side": side, "timestamp": ts_ms}


def order_payload(order: dict[str, Any]) -> dict[str, Any]:
    """An ORDER publication around a REST Order object (the sandbox's own, the one its REST
    answers carry, so stream and REST can never disagree)."""
    return {"type": "ORDER", "data": order}


def execution_payload(account_id: str, trade_order_id: str, execution: dict[str, Any]) -> dict[str, Any]:
    return {"type": "EXECUTION", "data": {**execution, "tradeOrderId": trade_order_id, "tradingAccountId": account_id}}
