"""MidChains WebSocket JSON API: every message the document shows, both directions, with no I/O.

Source: ``shared/seeds/001_a6a531a293923345.txt`` ("WEBSOCKET API"), digested in shared/VENUES.md
section 2 (gap numbers ``MID-n``) and venue-notes/midchains-algo724.md 3.3-3.4. Every place where
the document is silent, wrong or contradicts itself is decided here once, with its gap number, so
that the adapter and the (separate, document-built) sandbox both stand on one reading:

- **Both directions.** :func:`decode_message` reads what the venue sends (answers and pushes) into
  the frozen dataclasses below, :func:`decode_request` reads what a client sends (for the sandbox);
  :func:`encode` writes either kind back (the adapter's requests, the sandbox's answers). One field
  table per message (``WIRE``) drives both directions, so a name read is the name written.
- **Numbers are exact.** The document's numbers are strings mostly, sometimes JSON numbers
  (``"amount":180``, ``"id":120947223715360``, ``"rec_no":1``, ``"total_rec":3`` vs ``"total_rec":"1"``),
  sometimes booleans as strings (``'alo': 'true'``). Each field accepts either form (VENUES.md 2.3)
  and becomes a bounded ``Decimal`` / ``int`` / ``bool`` read from its text (adapters.kit.wirejson),
  never a float; a value that is not a number is refused with :class:`WsCodecError`. Written
  numbers are decimal strings in positional notation (``"0.00001"``, never ``"1E-5"``), as the
  document's requests show.
- **Times** are epoch milliseconds, kept as ``int`` ms (MID-2). Inbound: ms strings or numbers; a
  value below 10**11 is seconds (the text's own unit) and is scaled. Outbound request times are
  ms truncated to whole seconds (the document: ``'1614331055123' is not supported``), and a
  request read by the sandbox with a sub-second part is refused with that reason.
- **Typos** (MID-1): the JSON spellings of the examples are the names (``lastttime``,
  ``openingprice``, ``highprice``); ``clientorderi`` is read as ``clientorderid`` on input, never
  written; ``querymultiorder`` is answered as ``querymultiorders`` and both are read;
  ``"ordertype":"LIMIT"`` (one reject echo) reads as a limit order.
- **No request id.** Replies correlate by ``type`` plus the keys the venue echoes:
  :func:`request_key` of a request equals :func:`answer_key` of its answer. ``addorder`` echoes
  ``clientorderid`` (we always send one, 32 characters at most), ``cancelorder``/``queryorder``
  echo ``refno``, ``lshistory``/``tradehistory`` echo ``security``; ``querymultiorder``,
  ``querytrade``, ``querypos``, ``querypendingpos``, ``getsymbols`` and the login steps echo
  nothing, so the adapter keeps **at most one of each outstanding** and its answer is that one's.
  ``{"result":"error parsing json"}`` carries no ``type`` at all (VENUES.md 2.15): it is a
  :class:`VenueError` whose key is None, and it answers the **oldest** outstanding request
  (the venue answers in order on one socket).
- **Multi-record answers** carry ``rec_no``/``total_rec`` in chunks of at most 100 records
  (``querytrade``, ``tradehistory``); :class:`RecordAssembler` puts a reply back together and says
  when it is complete, refusing a duplicate or out-of-range ``rec_no``.
- **Order state** (MID-11, MID-15): :func:`order_status`. ``Open`` with ``execqty`` > 0 is
  partially filled; ``Executed`` with ``execqty`` >= ``qty`` is filled, with less (an IOC's
  remainder) cancelled; ``Cancelled`` is cancelled (with whatever ``execqty`` says was filled);
  ``liveqty`` is the remainder and wins over ``qty - execqty``. ``queryorder`` has no
  ``orderstatus`` (MID-15): the state is derived from ``liveqty``/``execqty``; an order with nothing
  live and nothing filled is ``UNKNOWN`` there (cancelled and rejected look alike): the adapter
  resolves it with ``querymultiorder``, which carries ``orderstatus``.
- **Rejects**: the ``result`` (or an ``order``'s ``text``) of each reject the document lists maps to
  an engine code in :data:`REJECT_TEXTS`; an unknown text maps to :data:`UNKNOWN_REJECT` (9002,
  "rejected by exchange") and is counted by :class:`RejectCodes`.
- **Rate limits** as data: :data:`WS_RATE_LIMITS` and each request's pacing lane
  (:data:`WS_LANES`, :data:`REQUEST_LANE`), for adapters.kit.pacing and the engine's buckets.
- **The book** (MID-7) is order-level (L3) with neither sequence numbers nor a snapshot-end
  marker: :mod:`adapters.midchains.ws_book` holds the rule for when it is whole and when to
  resubscribe.
- **Unknown types** ("new message types can be added at any point in time. Clients are expected
  to ignore messages they do not support"): refused with kind ``unknown_message``, so the adapter
  counts and ignores them like any input it cannot use, and a new type shows in the metrics.

Hostile input: :func:`decode_message` and :func:`decode_request` raise only :class:`WsCodecError`,
for any str or bytes, with ``kind`` an engine.venue.badinput kind; frames are read by the shared
bounded reader (size, depth, number digits and exponent checked before conversion).

The document's own invalid samples (a trailing comma in the login answer, ``{"type":"logout",}``,
a Python dict repr, two objects on one line, a ``pass`` that is not base64) are refused as they
are, each with the reader's or this codec's reason. What the adapter does with them: an
unreadable frame that still says which reject it is (:func:`recognise_reject`) is counted under
its code and makes the adapter reconcile its pending orders by query; it never rejects an order on
a guess. A login answer that cannot be read fails the login at once (adapters.midchains.ws_auth).
"""

from __future__ import annotations

import binascii
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

import msgspec

from adapters.kit.pacing import LaneSpec
from adapters.kit.wirejson import (
    MAGNITUDE_LIMIT,
    Reader,
    WireError,
    amount,
    amount_text,
)
from engine.model import Fill, InstrumentStatus, Liquidity, OrderStatus, OrderType, Side, TimeInForce, Trade, VenueOrder
from engine.venue import RateLimit
from engine.venue.badinput import BAD_NUMBER, MALFORMED, UNKNOWN_MESSAGE
from engine.venue.rejects import Reject

__all__ = [
    "CREDENTIAL_KEYS",
    "DOCUMENT",
    "MAX_CHUNK_RECORDS",
    "MESSAGE_TYPES",
    "REJECT_TEXTS",
    "REQUEST_LANE",
    "REQUEST_TYPES",
    "UNKNOWN_REJECT",
    "URLS",
    "WS_LANES",
    "WS_RATE_LIMITS",
    "ANSWER_TYPE",
    "NO_RECORDS",
    "AddOrder",
    "AddOrderAnswer",
    "BookEntry",
    "BookMsg",
    "CancelAnswer",
    "CancelOrder",
    "Challenge",
    "ChallengeAnswer",
    "GetSymbols",
    "HighLowMsg",
    "HistoryTick",
    "Login",
    "LoginAnswer",
    "Logout",
    "LogoutAnswer",
    "LsHistory",
    "MinuteBar",
    "OrderMsg",
    "PositionMsg",
    "QueryMultiOrder",
    "QueryOrder",
    "QueryOrderAnswer",
    "QueryPendingPos",
    "QueryPos",
    "QueryTrade",
    "RecordAssembler",
    "RecordsAnswer",
    "RejectCodes",
    "RejectText",
    "SaleMsg",
    "SalvagedReject",
    "SubscribeAnswer",
    "SubscribeEntry",
    "Subscribe",
    "SubscribeHighLow",
    "SubscribeSymbolStatus",
    "SymbolInfo",
    "SymbolStatus",
    "SymbolStatusMsg",
    "SymbolsAnswer",
    "TradeHistory",
    "TradeMsg",
    "VenueError",
    "WsCodecError",
    "answer_key",
    "decode_message",
    "decode_request",
    "encode",
    "order_status",
    "order_type",
    "recognise_reject",
    "request_key",
]

DOCUMENT = "shared/seeds/001_a6a531a293923345.txt (MidChains API 1.0.0, WEBSOCKET API)"
#: "WebSocket API": production and the sandbox ("For testing, use:")
URLS: dict[str, str] = {"production": "wss://ws.midchains.com:8081", "sandbox": "wss://ws-sandbox.midchains.com:8081/"}
#: the one ``dest`` the document allows in a subscribe ("This value will alway be set to CROX")
DEST = "CROX"
#: a frame larger than this is refused unread: 100 querytrade records are about 40 KB
MAX_FRAME_CHARS = 1 << 20
#: the document's deepest message (a records answer: object > data list > record) has 3 levels
MAX_DEPTH = 8
#: "Each response will carry maximum of 100 entries" (tradehistory; querytrade: "each will have 100")
MAX_CHUNK_RECORDS = 100
#: most records one multi-record reply may announce (``total_rec``): bounds what an assembler holds
MAX_TOTAL_RECORDS = 100_000
#: the fields that carry a credential: the RedactingFilter keys of the adapter's loggers
CREDENTIAL_KEYS = ("pass",)
#: longest client order id: the engine's ids are 32 characters at most (VENUES.md 6.5)
MAX_CLIENT_ORDER_ID = 32
#: below this an inbound time is seconds, not ms (MID-2: the text says seconds, examples are ms)
_SECONDS_LIMIT = 100_000_000_000
#: a time at or beyond this (ms) is refused: 10**14 ms is the year 5138
_MS_LIMIT = 100_000_000_000_000
_DIGITS = re.compile(r"[0-9]{1,20}")
#: a number in a string: ASCII digits, optional sign, fraction and exponent ("472.33", "-841663670.18")
_NUMBER_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_OK = "OK"
NS_PER_MS = 1_000_000


class WsCodecError(ValueError):
    """A frame that is not what the document (or a decision stated here) says it is; the text names
    what is wrong. ``kind`` is the engine.venue.badinput kind a reader counts it under."""

    def __init__(self, reason: str, kind: str = MALFORMED, message_type: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        #: the ``type`` of the message being read, when it got that far (a sandbox answers a login
        #: it cannot read with ``invalid user/password``, anything else with ``error parsing json``)
        self.message_type = message_type


# --------------------------------------------------------------------------------------------
# Field kinds: how one wire value is read and written


class _Kind:
    """How a field is read from JSON (any type the document shows for it) and written back."""

    name = "value"

    def read(self, value: Any, where: str) -> Any:
        raise NotImplementedError

    def write(self, value: Any) -> Any:
        return value


class _Text(_Kind):
    name = "a string"

    def read(self, value: Any, where: str) -> str:
        if type(value) is not str:
            raise WsCodecError(f"{where}: expected a string, got {_short(value)}")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:  # a "\ud800" escape: no text, and no log line could hold it
                raise WsCodecError(f"{where}: a lone surrogate is not text") from None
        return value


class _Dec(_Kind):
    """A decimal string (or JSON number): exact, bounded, finite. Written as a positional string."""

    name = "a number"

    def read(self, value: Any, where: str) -> Decimal:
        kind = type(value)
        try:
            if kind is str:
                if not _NUMBER_TEXT.fullmatch(value):  # Decimal() alone takes "٣", "+1", ".5"
                    raise WsCodecError(f"{where}: {_short(value)} is not a decimal number", BAD_NUMBER)
                return amount_text(value, where)
            if kind is Decimal or kind is int:
                return amount(value, where)
        except WireError as exc:
            raise WsCodecError(exc.reason, exc.kind) from None
        raise WsCodecError(f"{where}: expected a number, got {_short(value)}", BAD_NUMBER)

    def write(self, value: Decimal) -> str:
        return _decimal_text(value)


class _Int(_Kind):
    """A non-negative integer, as a JSON number or a string of digits (``rec_no``, ``total_rec``,
    ``fractionbase``, a book ``id``). Written as a JSON number, as the document's examples do."""

    name = "an integer"

    def read(self, value: Any, where: str) -> int:
        kind = type(value)
        if kind is str and _DIGITS.fullmatch(value):
            value = int(value)
        elif kind is Decimal and value == value.to_integral_value() and value.is_finite():
            value = int(value) if abs(value) < MAGNITUDE_LIMIT else MAGNITUDE_LIMIT  # "1.0": a whole number
        elif kind is not int:
            raise WsCodecError(f"{where}: expected an integer, got {_short(value)}", BAD_NUMBER)
        if not 0 <= value < MAGNITUDE_LIMIT:
            raise WsCodecError(f"{where}: {_short(value)} is not an integer in [0, 1e18)", BAD_NUMBER)
        return value


class _Ms(_Kind):
    """Epoch time (MID-2): ms as a string or number; below 10**11 it is seconds and is scaled.
    Kept as int ms; written as a string of ms, as the document's examples do. A time before 1973
    (10**11 ms) is refused: it would read back as seconds."""

    name = "an epoch time"

    def read(self, value: Any, where: str) -> int:
        kind = type(value)
        if kind is str and _DIGITS.fullmatch(value):
            value = int(value)
        elif kind is not int:
            raise WsCodecError(f"{where}: expected epoch milliseconds, got {_short(value)}", BAD_NUMBER)
        if value < _SECONDS_LIMIT:  # seconds (MID-2)
            value *= 1000
        if not _SECONDS_LIMIT <= value < _MS_LIMIT:  # so every time read is written back as the same ms
            raise WsCodecError(f"{where}: {_short(value)} is not an epoch time after 1973 in ms", BAD_NUMBER)
        return value

    def write(self, value: int) -> str:
        return str(value)


class _Bool(_Kind):
    """A JSON boolean, or the strings ``"true"``/``"false"`` (the reject sample's ``'alo': 'true'``)."""

    name = "a boolean"

    def read(self, value: Any, where: str) -> bool:
        if value is True or value is False:
            return value
        if type(value) is str and value in ("true", "false"):
            return value == "true"
        raise WsCodecError(f"{where}: expected true or false, got {_short(value)}")


class _Side(_Kind):
    name = "B or S"

    def read(self, value: Any, where: str) -> Side:
        if value == "B" and type(value) is str:
            return Side.BUY
        if value == "S" and type(value) is str:
            return Side.SELL
        raise WsCodecError(f"{where}: side must be 'B' or 'S', got {_short(value)}")

    def write(self, value: Side) -> str:
        return "B" if value is Side.BUY else "S"


TEXT, DEC, INT, MS, BOOL, SIDE = _Text(), _Dec(), _Int(), _Ms(), _Bool(), _Side()


@dataclass(frozen=True, slots=True)
class F:
    """One wire field: its JSON name, the attribute it fills, its kind, whether the message needs
    it, and names also read for it (MID-1 typos; never written)."""

    wire: str
    attr: str
    kind: _Kind
    required: bool = False
    aliases: tuple[str, ...] = ()


def _read_fields(obj: Mapping[str, Any], specs: tuple[F, ...], where: str) -> dict[str, Any]:
    """The attributes ``specs`` name, read from ``obj``; a JSON ``null`` counts as absent. Fields
    the table does not name are ignored: the venue may add fields (001: new types and fields)."""
    out: dict[str, Any] = {}
    for spec in specs:
        value = obj.get(spec.wire)
        if value is None:
            for alias in spec.aliases:
                value = obj.get(alias)
                if value is not None:
                    break
        if value is None:
            if spec.required:
                raise WsCodecError(f"{where}: {spec.wire} is missing")
            out[spec.attr] = None
        else:
            out[spec.attr] = spec.kind.read(value, f"{where}.{spec.wire}")
    return out


def _write_fields(message: Any, specs: tuple[F, ...]) -> dict[str, Any]:
    """The wire object of ``message``: every field that is not None, in table order."""
    out: dict[str, Any] = {}
    for spec in specs:
        value = getattr(message, spec.attr)
        if value is not None:
            out[spec.wire] = spec.kind.write(value)
    return out


def _decimal_text(value: Decimal) -> str:
    """Positional notation, never an exponent (VENUES.md 6.12); a non-finite value is a bug."""
    if type(value) is not Decimal or not value.is_finite():
        raise WsCodecError(f"cannot write {value!r} as a number (money must be a finite Decimal)")
    return format(value, "f")


def _short(value: Any) -> str:
    """A bounded repr for an error message (a value can be a megabyte list or a long string)."""
    if type(value) is int and not -MAGNITUDE_LIMIT < value < MAGNITUDE_LIMIT:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    if type(value) is str:
        value = value[:81]
    text = repr(value) if type(value) not in (list, dict) else type(value).__name__
    return text if len(text) <= 80 else text[:80] + "..."


class _Wire:
    """A message with a field table: read with :meth:`from_wire`, written with :meth:`to_wire`."""

    TYPE: ClassVar[str] = ""
    WIRE: ClassVar[tuple[F, ...]] = ()

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any], where: str = "") -> Any:
        return cls(**_read_fields(obj, cls.WIRE, where or cls.TYPE))

    def to_wire(self) -> dict[str, Any]:
        out = _write_fields(self, self.WIRE)
        if self.TYPE:
            out["type"] = self.TYPE
        return out


# --------------------------------------------------------------------------------------------
# Records: what pushes and multi-record answers carry


_RESULT = F("result", "result", TEXT, True)  # every answer the document shows has one
_REC_NO = F("rec_no", "rec_no", INT)


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolInfo(_Wire):
    """One ``getsymbols`` entry: an asset (``LTC``) or a trading pair (``LTCUSD``). ``fractionbase``
    ("The number of decimals supported. e.g 100 = 1.00") must be a power of ten: anything else
    names no decimal step and is refused. The document lists ``USD`` with ``"fiat":false`` [sic];
    the flag is kept as sent."""

    WIRE: ClassVar[tuple[F, ...]] = (
        F("security", "security", TEXT, True), F("fractionbase", "fraction_base", INT, True),
        F("tradingsymbol", "trading_symbol", BOOL), F("fiat", "fiat", BOOL), F("pair", "pair", BOOL),
        F("pair_first", "base", TEXT), F("pair_second", "quote", TEXT),
    )
    security: str
    fraction_base: int
    trading_symbol: bool | None = None
    fiat: bool | None = None
    pair: bool | None = None
    base: str | None = None
    quote: str | None = None

    def __post_init__(self) -> None:
        text = str(self.fraction_base)
        if text[0] != "1" or text.strip("0") != "1":
            raise WsCodecError(f"getsymbols {self.security}: fractionbase {self.fraction_base} is not a power of ten")

    @property
    def qty_step(self) -> Decimal:
        """The smallest quantity step: ``1 / fractionbase`` (100 -> 0.01), exact."""
        return Decimal(1).scaleb(-(len(str(self.fraction_base)) - 1))


@dataclass(frozen=True, slots=True, kw_only=True)
class BookEntry(_Wire):
    """One order of the L3 book. ``act`` ``U`` = add or update (upsert by ``id``), ``R`` = remove
    (MID-7). A ``U`` needs side, price and quantity; an ``R`` needs only ``id`` (``side`` on ``R``
    since 2021-09, optional). A ``U`` with quantity 0 is read as a removal by the L3 book."""

    WIRE: ClassVar[tuple[F, ...]] = (
        F("act", "act", TEXT, True), F("id", "order_id", INT, True), F("side", "side", SIDE),
        F("price", "price", DEC), F("qty", "qty", DEC), F("time", "ts_ms", MS),
        F("src", "src", TEXT), F("mpid", "mpid", TEXT), F("key", "key", TEXT),
    )
    act: str
    order_id: int
    side: Side | None = None
    price: Decimal | None = None
    qty: Decimal | None = None
    ts_ms: int | None = None
    src: str | None = None
    mpid: str | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        if self.act == "U":
            if self.side is None or self.price is None or self.qty is None:
                raise WsCodecError(f"book entry {self.order_id}: act U needs side, price and qty")
            if self.price <= 0 or self.qty < 0:
                raise WsCodecError(f"book entry {self.order_id}: price {self.price} / qty {self.qty} out of range")
        elif self.act != "R":
            raise WsCodecError(f"book entry {self.order_id}: act must be 'U' or 'R', got {_short(self.act)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderMsg(_Wire):
    """An order as the venue shows it: the ``order`` push (on login for every open order, then on
    every change), a ``querymultiorders`` record, and ``queryorder``'s ``data`` (no ``orderstatus``,
    MID-15). ``qty`` original, ``liveqty`` remaining (authoritative, MID-11), ``execqty``
    cumulative filled, ``execamount`` cumulative notional; ``text`` a reject reason."""

    TYPE: ClassVar[str] = "order"
    WIRE: ClassVar[tuple[F, ...]] = (
        F("refno", "refno", TEXT, True), F("security", "security", TEXT, True), F("side", "side", SIDE, True),
        F("orderstatus", "status", TEXT), F("ordertype", "order_type", TEXT), F("tif", "tif", TEXT),
        F("price", "price", DEC), F("qty", "qty", DEC), F("liveqty", "live_qty", DEC), F("execqty", "exec_qty", DEC),
        F("execamount", "exec_amount", DEC), F("amount", "amount", DEC), F("stoptype", "stop_type", TEXT),
        F("stopprice", "stop_price", DEC), F("exptime", "expire_ms", MS), F("alo", "post_only", BOOL),
        F("updtime", "updated_ms", MS), F("enttime", "entered_ms", MS),
        F("clientorderid", "client_order_id", TEXT, aliases=("clientorderi",)), F("text", "text", TEXT),
        F("category", "category", TEXT), F("account", "account", TEXT), F("userid", "userid", TEXT),
        F("firm", "firm", TEXT), _REC_NO,
    )
    refno: str
    security: str
    side: Side
    status: str | None = None
    order_type: str | None = None
    tif: str | None = None
    price: Decimal | None = None
    qty: Decimal | None = None
    live_qty: Decimal | None = None
    exec_qty: Decimal | None = None
    exec_amount: Decimal | None = None
    amount: Decimal | None = None
    stop_type: str | None = None
    stop_price: Decimal | None = None
    expire_ms: int | None = None
    post_only: bool | None = None
    updated_ms: int | None = None
    entered_ms: int | None = None
    client_order_id: str | None = None
    text: str | None = None
    category: str | None = None
    account: str | None = None
    userid: str | None = None
    firm: str | None = None
    rec_no: int | None = None

    @property
    def state(self) -> OrderStatus:
        return order_status(self)

    @property
    def leaves_qty(self) -> Decimal:
        """What is still live: ``liveqty`` when sent (MID-11: authoritative), else ``qty - execqty``;
        0 once the order is terminal."""
        if self.state in _TERMINAL:
            return _ZERO
        if self.live_qty is not None:
            return self.live_qty
        return max(_ZERO, (self.qty or _ZERO) - (self.exec_qty or _ZERO))

    def to_venue_order(self, venue: str, client_id: str = "") -> VenueOrder:
        """For reconciliation: the venue's word on the order (status, size, filled)."""
        return VenueOrder(venue, client_id or self.client_order_id or "", self.refno, self.security, self.side,
                          self.state, self.qty or _ZERO, self.exec_qty or _ZERO,
                          self.price if self.price else None)


@dataclass(frozen=True, slots=True, kw_only=True)
class SaleMsg(_Wire):
    """One of our executions: the ``sale`` push and a ``querytrade`` record. ``traderefno`` is the
    execution id (fills de-duplicate on it), ``exchangeref`` the match id, ``ismaker`` the
    liquidity. ``comm``/``commsecurity`` (the fee and its asset: ``LTC`` for an LTCUSD buy) appear
    only in ``querytrade``; the adapter converts the fee, the codec keeps both as sent."""

    TYPE: ClassVar[str] = "sale"
    WIRE: ClassVar[tuple[F, ...]] = (
        F("traderefno", "exec_id", TEXT, True), F("refno", "refno", TEXT, True),
        F("security", "security", TEXT, True), F("side", "side", SIDE, True),
        F("execprice", "price", DEC, True), F("execqty", "qty", DEC, True), F("trdtime", "ts_ms", MS),
        F("ismaker", "is_maker", BOOL), F("exchangeref", "match_id", TEXT), F("comm", "fee", DEC),
        F("commsecurity", "fee_asset", TEXT), F("clientorderid", "client_order_id", TEXT, aliases=("clientorderi",)),
        F("category", "category", TEXT), F("account", "account", TEXT), F("userid", "userid", TEXT),
        F("firm", "firm", TEXT), _REC_NO,
    )
    exec_id: str
    refno: str
    security: str
    side: Side
    price: Decimal
    qty: Decimal
    ts_ms: int | None = None
    is_maker: bool | None = None
    match_id: str | None = None
    fee: Decimal | None = None
    fee_asset: str | None = None
    client_order_id: str | None = None
    category: str | None = None
    account: str | None = None
    userid: str | None = None
    firm: str | None = None
    rec_no: int | None = None

    def to_fill(self, venue: str, client_id: str = "") -> Fill:
        """The engine's fill (de-duplicated on ``traderefno``). ``fee`` stays None: ``comm`` is in
        ``commsecurity`` (the base asset for a buy), which the engine's fee field does not carry;
        the adapter converts it when it knows the pair's quote."""
        liquidity = Liquidity.UNKNOWN if self.is_maker is None else (
            Liquidity.MAKER if self.is_maker else Liquidity.TAKER)
        return Fill(venue, self.security, client_id or self.client_order_id or "", self.refno, self.exec_id,
                    self.side, self.price, self.qty, (self.ts_ms or 0) * NS_PER_MS, liquidity)


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionMsg(_Wire):
    """A balance: the ``position`` push (on login, then after every trade), a ``querypos`` or
    ``querypendingpos`` record. ``curpos`` includes ``managedpos`` (held in open orders)."""

    TYPE: ClassVar[str] = "position"
    WIRE: ClassVar[tuple[F, ...]] = (
        F("security", "security", TEXT, True), F("curpos", "curpos", DEC, True), F("cost", "cost", DEC),
        F("managedpos", "managed", DEC), F("openpos", "openpos", DEC), F("account", "account", TEXT),
        F("firm", "firm", TEXT), _REC_NO,
    )
    security: str
    curpos: Decimal
    cost: Decimal | None = None
    managed: Decimal | None = None
    openpos: Decimal | None = None
    account: str | None = None
    firm: str | None = None
    rec_no: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryTick(_Wire):
    """An ``lshistory`` record: one public execution."""

    WIRE: ClassVar[tuple[F, ...]] = (
        F("security", "security", TEXT), F("execprice", "price", DEC, True), F("execqty", "qty", DEC, True),
        F("time", "ts_ms", MS, True), _REC_NO,
    )
    price: Decimal
    qty: Decimal
    ts_ms: int
    security: str | None = None
    rec_no: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MinuteBar(_Wire):
    """A ``tradehistory`` record: one minute with trades (``lastttime`` [sic], MID-1)."""

    WIRE: ClassVar[tuple[F, ...]] = (
        F("blocktime", "block_ms", MS, True), F("startprice", "open", DEC), F("highprice", "high", DEC),
        F("lowprice", "low", DEC), F("lastprice", "close", DEC), F("volume", "volume", DEC),
        F("numoftrades", "trades", INT), F("starttime", "first_ms", MS), F("lastttime", "last_ms", MS), _REC_NO,
    )
    block_ms: int
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    close: Decimal | None = None
    volume: Decimal | None = None
    trades: int | None = None
    first_ms: int | None = None
    last_ms: int | None = None
    rec_no: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolStatus(_Wire):
    """One pair's status: ``Halt``, ``PreOpening`` or ``Normal`` (kept as sent; see :attr:`halted`)."""

    WIRE: ClassVar[tuple[F, ...]] = (
        F("security", "security", TEXT, True), F("status", "status", TEXT, True), F("time", "ts_ms", MS),
    )
    security: str
    status: str
    ts_ms: int | None = None

    @property
    def halted(self) -> bool | None:
        """True for ``Halt``, False for ``Normal`` and ``PreOpening`` (not halted, though an order
        may wait for the opening), None for a status the document does not list (not said)."""
        return {"Halt": True, "Normal": False, "PreOpening": False}.get(self.status)

    def to_status(self, venue: str, received_ns: int) -> InstrumentStatus:
        """The engine's instrument status; the venue's time when sent, else ``received_ns``."""
        ts = self.ts_ms * NS_PER_MS if self.ts_ms is not None else received_ns
        return InstrumentStatus(venue, self.security, ts, halted=self.halted, reason=self.status)


# --------------------------------------------------------------------------------------------
# Server -> client: answers and pushes


@dataclass(frozen=True, slots=True, kw_only=True)
class _Answer(_Wire):
    @property
    def ok(self) -> bool:
        return getattr(self, "result", None) == _OK


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueError(_Answer):
    """A ``result`` with no ``type``: ``{"result":"error parsing json"}`` (VENUES.md 2.15). Its
    key is None: it answers the oldest outstanding request."""

    WIRE: ClassVar[tuple[F, ...]] = (F("result", "result", TEXT, True),)
    result: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolsAnswer(_Answer):
    TYPE: ClassVar[str] = "getsymbols"
    result: str
    symbols: tuple[SymbolInfo, ...] = ()

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any], where: str = "") -> SymbolsAnswer:
        result = TEXT.read(_need(obj, "result", cls.TYPE), "getsymbols.result")
        return cls(result=result, symbols=_records(obj, SymbolInfo, "getsymbols", None))

    def to_wire(self) -> dict[str, Any]:
        return _with_result(self, {"data": [s.to_wire() for s in self.symbols]})


@dataclass(frozen=True, slots=True, kw_only=True)
class BookMsg(_Wire):
    """A ``book`` push: changes of one pair's L3 book (MID-7: no sequence number)."""

    TYPE: ClassVar[str] = "book"
    security: str
    entries: tuple[BookEntry, ...]

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any], where: str = "") -> BookMsg:
        security = TEXT.read(_need(obj, "security", "book"), "book.security")
        return cls(security=security, entries=_records(obj, BookEntry, "book", None, key="books", required=True))

    def to_wire(self) -> dict[str, Any]:
        return {"security": self.security, "books": [e.to_wire() for e in self.entries], "type": self.TYPE}


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeMsg(_Wire):
    """A public ``trade`` push. ``maker_side`` (since 2021-09) gives the aggressor: the opposite."""

    TYPE: ClassVar[str] = "trade"
    WIRE: ClassVar[tuple[F, ...]] = (
        F("security", "security", TEXT, True), F("price", "price", DEC, True), F("qty", "qty", DEC, True),
        F("time", "ts_ms", MS, True), F("matchid", "match_id", TEXT, True), F("maker_side", "maker_side", SIDE),
        F("src", "src", TEXT),
    )
    security: str
    price: Decimal
    qty: Decimal
    ts_ms: int
    match_id: str
    maker_side: Side | None = None
    src: str | None = None

    @property
    def aggressor(self) -> Side | None:
        """The taker's side (VENUES.md 6.7: maker ``B`` -> a SELL aggressor); None when not sent."""
        if self.maker_side is None:
            return None
        return Side.SELL if self.maker_side is Side.BUY else Side.BUY

    def to_trade(self, venue: str) -> Trade:
        """The engine's public trade print (ns timestamps, ``matchid`` as the trade id)."""
        return Trade(venue, self.security, self.ts_ms * NS_PER_MS, self.price, self.qty, self.aggressor, self.match_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolStatusMsg(_Wire):
    """A ``symbolstatus`` push: one or more pairs' new status."""

    TYPE: ClassVar[str] = "symbolstatus"
    entries: tuple[SymbolStatus, ...]

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any], where: str = "") -> SymbolStatusMsg:
        return cls(entries=_records(obj, SymbolStatus, "symbolstatus", None, required=True))

    def to_wire(self) -> dict[str, Any]:
        return {"data": [e.to_wire() for e in self.entries], "type": self.TYPE}


@dataclass(frozen=True, slots=True, kw_only=True)
class HighLowMsg(_Wire):
    """A ``highlow`` push (``openingprice`` as the JSON spells it; the table's ``ppeningprice`` is
    not read, MID-1)."""

    TYPE: ClassVar[str] = "highlow"
    WIRE: ClassVar[tuple[F, ...]] = (
        F("security", "security", TEXT, True), F("openingprice", "opening", DEC), F("highprice", "high", DEC),
        F("lowprice", "low", DEC), F("prevcloseprice", "prev_close", DEC),
    )
    security: str
    opening: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    prev_close: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeAnswer(_Answer):
    """The acknowledgement of ``subscribesymbolstatus`` / ``subscribehighlow`` (and of a
    ``subscribe``, should the venue send one: the document shows none, MID-7)."""

    WIRE: ClassVar[tuple[F, ...]] = (_RESULT, F("security", "security", TEXT))
    type: str
    result: str
    security: str | None = None

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any], where: str = "") -> SubscribeAnswer:
        return cls(type=obj["type"], **_read_fields(obj, cls.WIRE, obj["type"]))

    def to_wire(self) -> dict[str, Any]:
        return {**_write_fields(self, self.WIRE), "type": self.type}


@dataclass(frozen=True, slots=True, kw_only=True)
class ChallengeAnswer(_Answer):
    """``challenge``: ``key`` is base64 DER SubjectPublicKeyInfo (checked as strict base64 here;
    loaded as RSA by adapters.midchains.ws_auth)."""

    TYPE: ClassVar[str] = "challenge"
    WIRE: ClassVar[tuple[F, ...]] = (_RESULT, F("key", "key", TEXT))
    result: str
    key: str | None = None

    def __post_init__(self) -> None:
        if self.result == _OK and self.key is None:
            raise WsCodecError("challenge: result OK without a key")
        if self.key is not None:
            _base64(self.key, "challenge.key")


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginAnswer(_Answer):
    """``login``: ``result`` OK or a reason (``invalid user/password``). ``need2FA``/``use2fa`` are
    kept; no 2FA step exists in the document (MID-10: API users are assumed to have it off)."""

    TYPE: ClassVar[str] = "login"
    WIRE: ClassVar[tuple[F, ...]] = (
        _RESULT, F("userid", "userid", TEXT), F("firm", "firm", TEXT), F("need2FA", "need_2fa", BOOL),
        F("use2fa", "use_2fa", TEXT), F("roles", "roles", TEXT), F("active", "active", TEXT),
        F("secondary_account", "secondary_account", TEXT),
    )
    result: str
    userid: str | None = None
    firm: str | None = None
    need_2fa: bool | None = None
    use_2fa: str | None = None
    roles: str | None = None
    active: str | None = None
    secondary_account: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogoutAnswer(_Answer):
    TYPE: ClassVar[str] = "logout"
    WIRE: ClassVar[tuple[F, ...]] = (_RESULT,)
    result: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AddOrderAnswer(_Answer):
    """``addorder``'s answer: the request echoed with ``result`` (OK, then ``order``/``sale``/
    ``position`` pushes follow) and, when OK, ``refno``. ``"amount":180`` is a JSON number there."""

    TYPE: ClassVar[str] = "addorder"
    WIRE: ClassVar[tuple[F, ...]] = (
        F("result", "result", TEXT, True), F("refno", "refno", TEXT), F("security", "security", TEXT),
        F("side", "side", SIDE), F("ordertype", "order_type", TEXT), F("tif", "tif", TEXT), F("price", "price", DEC),
        F("qty", "qty", DEC), F("amount", "amount", DEC), F("alo", "post_only", BOOL),
        F("stoptype", "stop_type", TEXT), F("stopprice", "stop_price", DEC), F("exptime", "expire_ms", MS),
        F("clientorderid", "client_order_id", TEXT, aliases=("clientorderi",)), F("userid", "userid", TEXT),
        F("firm", "firm", TEXT),
    )
    result: str
    refno: str | None = None
    security: str | None = None
    side: Side | None = None
    order_type: str | None = None
    tif: str | None = None
    price: Decimal | None = None
    qty: Decimal | None = None
    amount: Decimal | None = None
    post_only: bool | None = None
    stop_type: str | None = None
    stop_price: Decimal | None = None
    expire_ms: int | None = None
    client_order_id: str | None = None
    userid: str | None = None
    firm: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAnswer(_Answer):
    """``cancelorder``: OK, ``order not found`` or ``failed``; echoes ``refno`` and ``security``."""

    TYPE: ClassVar[str] = "cancelorder"
    WIRE: ClassVar[tuple[F, ...]] = (
        F("result", "result", TEXT, True), F("refno", "refno", TEXT), F("security", "security", TEXT),
    )
    result: str
    refno: str | None = None
    security: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryOrderAnswer(_Answer):
    """``queryorder``: the order in ``data`` (no ``orderstatus``, MID-15) or a reason."""

    TYPE: ClassVar[str] = "queryorder"
    WIRE: ClassVar[tuple[F, ...]] = (
        F("result", "result", TEXT, True), F("refno", "refno", TEXT), F("security", "security", TEXT),
    )
    result: str
    refno: str | None = None
    security: str | None = None
    order: OrderMsg | None = None

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any], where: str = "") -> QueryOrderAnswer:
        values = _read_fields(obj, cls.WIRE, cls.TYPE)
        data = obj.get("data")
        if data is not None:
            if not isinstance(data, dict):
                raise WsCodecError(f"queryorder.data: expected an object, got {_short(data)}")
            values["order"] = OrderMsg.from_wire(data, "queryorder.data")
        return cls(**values)

    def to_wire(self) -> dict[str, Any]:
        out = _write_fields(self, self.WIRE)
        if self.order is not None:
            out["data"] = self.order.to_wire()
        out["type"] = self.TYPE
        return out


#: answer type -> (record class, the ``type`` its records carry, or None)
_RECORD_TYPES: dict[str, tuple[type[_Wire], str | None]] = {
    "querymultiorders": (OrderMsg, "order"),
    "querymultiorder": (OrderMsg, "order"),  # MID-1: the request's name, should the venue fix the answer's
    "querytrade": (SaleMsg, "sale"),
    "querypos": (PositionMsg, "position"),
    "querypendingpos": (PositionMsg, "position"),
    "lshistory": (HistoryTick, None),
    "tradehistory": (MinuteBar, None),
}
#: answers that mean "nothing to list", not a failure: ``querypos``/``querypendingpos``
NO_RECORDS = frozenset({"no position"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordsAnswer(_Answer):
    """A multi-record answer (``querymultiorders``, ``querytrade``, ``querypos``,
    ``querypendingpos``, ``lshistory``, ``tradehistory``): one chunk of at most 100 ``records``
    with their ``rec_no``, and ``total_rec`` for the whole reply (a string in the history answers,
    a number elsewhere: both read). ``result`` ``no position`` is an empty answer
    (:attr:`empty`), not a failure. Put chunks together with :class:`RecordAssembler`."""

    WIRE: ClassVar[tuple[F, ...]] = (
        _RESULT, F("total_rec", "total", INT), F("security", "security", TEXT), F("starttime", "start_ms", MS),
        F("userid", "userid", TEXT), F("firm", "firm", TEXT),
    )
    type: str
    result: str
    records: tuple[Any, ...] = ()
    total: int | None = None
    security: str | None = None
    start_ms: int | None = None
    userid: str | None = None
    firm: str | None = None

    @property
    def empty(self) -> bool:
        return self.result in NO_RECORDS or (self.ok and self.total == 0)

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any], where: str = "") -> RecordsAnswer:
        kind = obj["type"]
        record, record_type = _RECORD_TYPES[kind]
        values = _read_fields(obj, cls.WIRE, kind)
        records = _records(obj, record, kind, record_type)
        if len(records) > MAX_CHUNK_RECORDS:
            raise WsCodecError(f"{kind}: {len(records)} records in one message (at most {MAX_CHUNK_RECORDS})")
        if values["total"] is not None and values["total"] > MAX_TOTAL_RECORDS:
            raise WsCodecError(f"{kind}: total_rec {values['total']} beyond {MAX_TOTAL_RECORDS}")
        return cls(type=kind, records=records, **values)

    def to_wire(self) -> dict[str, Any]:
        out = _write_fields(self, self.WIRE)
        if self.records:
            out["data"] = [r.to_wire() for r in self.records]
        out["type"] = self.type
        return out


def _need(obj: Mapping[str, Any], key: str, where: str) -> Any:
    value = obj.get(key)
    if value is None:
        raise WsCodecError(f"{where}: {key} is missing")
    return value


def _with_result(answer: Any, body: dict[str, Any]) -> dict[str, Any]:
    return {"result": answer.result, **body, "type": answer.TYPE}


def _records(obj: Mapping[str, Any], record: type[_Wire], where: str, record_type: str | None,
             key: str = "data", required: bool = False) -> tuple[Any, ...]:
    """The objects of ``obj[key]`` read as ``record``; each must carry ``record_type`` as its
    ``type`` when it carries one (a ``position`` record in a ``querytrade`` answer is refused)."""
    items = obj.get(key)
    if items is None:
        if required:
            raise WsCodecError(f"{where}: {key} is missing")
        return ()
    if not isinstance(items, list):
        raise WsCodecError(f"{where}.{key}: expected a list, got {_short(items)}")
    out = []
    for index, item in enumerate(items):
        place = f"{where}.{key}[{index}]"
        if not isinstance(item, dict):
            raise WsCodecError(f"{place}: expected an object, got {_short(item)}")
        stated = item.get("type")
        if record_type is not None and stated is not None and stated != record_type:
            raise WsCodecError(f"{place}: a {_short(stated)} record where {record_type!r} records belong")
        out.append(record.from_wire(item, place))
    return tuple(out)


def _base64(text: str, where: str) -> bytes:
    """Strict base64 (no stray characters, right padding): the challenge key and the login pass."""
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise WsCodecError(f"{where}: not valid base64 ({len(text)} characters: {exc})") from None


# --------------------------------------------------------------------------------------------
# Client -> server: requests


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge(_Wire):
    TYPE: ClassVar[str] = "challenge"


@dataclass(frozen=True, slots=True, kw_only=True)
class Login(_Wire):
    """``pass`` = base64(RSA PKCS#1 v1.5 of the password) under the challenge's key (ws_auth). Its
    repr never shows it; encode it with :func:`encode`, log it with ``loggable=True``."""

    TYPE: ClassVar[str] = "login"
    WIRE: ClassVar[tuple[F, ...]] = (F("userid", "userid", TEXT, True), F("pass", "password", TEXT, True))
    userid: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        _base64(self.password, "login.pass")


@dataclass(frozen=True, slots=True, kw_only=True)
class Logout(_Wire):
    TYPE: ClassVar[str] = "logout"


@dataclass(frozen=True, slots=True, kw_only=True)
class GetSymbols(_Wire):
    TYPE: ClassVar[str] = "getsymbols"


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeEntry(_Wire):
    """``msg`` ``book`` (one pair or ``*``) or ``trade`` ("You must specify a single trading pair");
    ``dest`` is always ``CROX``."""

    WIRE: ClassVar[tuple[F, ...]] = (
        F("msg", "msg", TEXT, True), F("security", "security", TEXT, True), F("dest", "dest", TEXT),
    )
    msg: str
    security: str
    dest: str | None = DEST

    def __post_init__(self) -> None:
        if self.msg not in ("book", "trade"):
            raise WsCodecError(f"subscribe: msg must be 'book' or 'trade', got {_short(self.msg)}")
        if self.msg == "trade" and self.security == "*":
            raise WsCodecError("subscribe: trade needs a single trading pair, not '*'")


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribe(_Wire):
    TYPE: ClassVar[str] = "subscribe"
    entries: tuple[SubscribeEntry, ...]

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any], where: str = "") -> Subscribe:
        entries = _records(obj, SubscribeEntry, "subscribe", None, key="request", required=True)
        if not entries:
            raise WsCodecError("subscribe: request is empty")
        return cls(entries=entries)

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.TYPE, "request": [e.to_wire() for e in self.entries]}


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeSymbolStatus(_Wire):
    TYPE: ClassVar[str] = "subscribesymbolstatus"


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeHighLow(_Wire):
    TYPE: ClassVar[str] = "subscribehighlow"
    WIRE: ClassVar[tuple[F, ...]] = (F("security", "security", TEXT, True),)
    security: str


class _RequestTime(_Ms):
    """A request's time (MID-2): written as whole seconds in ms (``...000``: "'1614331055123' is
    not supported"). Read as sent, milliseconds included: the document's own ``querytrade``
    example sends ``"fromtime":"1557323619303"``, so a sandbox must take it."""

    def write(self, value: int) -> str:
        return str(value - value % 1000)


REQUEST_MS = _RequestTime()


@dataclass(frozen=True, slots=True, kw_only=True)
class LsHistory(_Wire):
    TYPE: ClassVar[str] = "lshistory"
    WIRE: ClassVar[tuple[F, ...]] = (
        F("security", "security", TEXT, True), F("starttime", "start_ms", REQUEST_MS, True),
    )
    security: str
    start_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeHistory(_Wire):
    TYPE: ClassVar[str] = "tradehistory"
    WIRE: ClassVar[tuple[F, ...]] = (F("security", "security", TEXT, True),)
    security: str


_ORDER_TYPES = {"LMT": OrderType.LIMIT, "LIMIT": OrderType.LIMIT, "MKT": OrderType.MARKET}
_TIFS = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK, "GTT": None}

@dataclass(frozen=True, slots=True, kw_only=True)
class AddOrder(_Wire):
    """``addorder``. The document's rules (VENUES.md 2.4, 2.11), checked when built (so neither the
    adapter nor a test can send a request the document forbids), are in :meth:`problem`; the one
    the venue names has its text (``cannot use qty for market buy order``). A request the sandbox
    reads is *not* checked on reading: the sandbox answers with :meth:`problem` as a venue would.

    ``ordertype`` ``LMT`` (default) / ``MKT``; ``tif`` ``GTC`` (default) / ``IOC`` / ``FOK`` / ``GTT``
    (+ ``exptime``); ``stoptype`` ``STOP`` + ``stopprice``; ``alo`` post-only (GTC, rejects when
    marketable); a market buy by fiat ``amount``, every other order by ``qty``."""

    TYPE: ClassVar[str] = "addorder"
    WIRE: ClassVar[tuple[F, ...]] = (
        F("security", "security", TEXT, True), F("side", "side", SIDE, True), F("ordertype", "order_type", TEXT),
        F("tif", "tif", TEXT), F("qty", "qty", DEC), F("price", "price", DEC), F("amount", "amount", DEC),
        F("stoptype", "stop_type", TEXT), F("stopprice", "stop_price", DEC), F("exptime", "expire_ms", REQUEST_MS),
        F("alo", "post_only", BOOL), F("clientorderid", "client_order_id", TEXT, aliases=("clientorderi",)),
    )
    security: str
    side: Side
    order_type: str | None = "LMT"
    tif: str | None = "GTC"
    qty: Decimal | None = None
    price: Decimal | None = None
    amount: Decimal | None = None
    stop_type: str | None = None
    stop_price: Decimal | None = None
    expire_ms: int | None = None
    post_only: bool | None = None
    client_order_id: str | None = None

    def problem(self) -> str | None:
        """What the document forbids in this request, or None. The texts the venue documents are
        its own; the others name the rule."""
        order_type = self.order_type or "LMT"
        tif = self.tif or "GTC"
        if order_type not in _ORDER_TYPES:
            return f"ordertype must be LMT or MKT, got {order_type!r}"
        if tif not in _TIFS:
            return f"tif must be GTC, IOC, FOK or GTT, got {tif!r}"
        market = _ORDER_TYPES[order_type] is OrderType.MARKET
        for name in ("qty", "price", "amount", "stop_price"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                return f"{name} must be positive, got {value}"
        if market and self.side is Side.BUY:
            if self.qty is not None:
                return "cannot use qty for market buy order"
            if self.amount is None:
                return "a market buy needs amount (fiat)"
        elif self.qty is None:
            return "qty is required (every order but a market buy)"
        elif self.amount is not None:
            return "amount is for market buys only"
        if market and self.price is not None:
            return "a market order takes no price"
        if not market and self.price is None:
            return "a limit order needs a price"
        if market and tif not in ("IOC", "FOK"):
            return f"a market order is IOC or FOK, not {tif}"
        if (tif == "GTT") != (self.expire_ms is not None):
            return "exptime is required with GTT and only with it"
        if self.stop_type is not None and self.stop_type != "STOP":
            return f"stoptype must be STOP, got {self.stop_type!r}"
        if (self.stop_type is None) != (self.stop_price is None):
            return "stoptype STOP and stopprice go together"
        if self.stop_type is not None and not market and tif not in ("GTC", "IOC", "FOK"):
            return f"a stop limit order is GTC, IOC or FOK, not {tif}"
        if self.post_only:
            if market or self.stop_type is not None or tif != "GTC":
                return "alo (post-only) is for GTC limit orders only"
        if self.client_order_id is not None and not 0 < len(self.client_order_id) <= MAX_CLIENT_ORDER_ID:
            return f"clientorderid must be 1 to {MAX_CLIENT_ORDER_ID} characters"
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder(_Wire):
    """``cancelorder`` by ``refno`` only (no ``clientorderid``, VENUES.md 2.13)."""

    TYPE: ClassVar[str] = "cancelorder"
    WIRE: ClassVar[tuple[F, ...]] = (F("security", "security", TEXT, True), F("refno", "refno", TEXT, True))
    security: str
    refno: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryOrder(_Wire):
    TYPE: ClassVar[str] = "queryorder"
    WIRE: ClassVar[tuple[F, ...]] = (F("security", "security", TEXT, True), F("refno", "refno", TEXT, True))
    security: str
    refno: str


_QUERY_WIRE = (
    F("security", "security", TEXT), F("maxreturn", "max_return", INT), F("lastfirst", "last_first", BOOL),
    F("fromtime", "from_ms", REQUEST_MS),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryMultiOrder(_Wire):
    """Answered as ``querymultiorders`` (MID-1). Every field optional."""

    TYPE: ClassVar[str] = "querymultiorder"
    WIRE: ClassVar[tuple[F, ...]] = _QUERY_WIRE
    security: str | None = None
    max_return: int | None = None
    last_first: bool | None = None
    from_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryTrade(_Wire):
    TYPE: ClassVar[str] = "querytrade"
    WIRE: ClassVar[tuple[F, ...]] = (*_QUERY_WIRE, F("userid", "userid", TEXT))
    security: str | None = None
    max_return: int | None = None
    last_first: bool | None = None
    from_ms: int | None = None
    userid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryPos(_Wire):
    TYPE: ClassVar[str] = "querypos"
    WIRE: ClassVar[tuple[F, ...]] = (F("security", "security", TEXT),)
    security: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryPendingPos(_Wire):
    TYPE: ClassVar[str] = "querypendingpos"
    WIRE: ClassVar[tuple[F, ...]] = (F("security", "security", TEXT),)
    security: str | None = None


#: request type -> its class: every request of the document (the sandbox's reading table)
REQUEST_TYPES: dict[str, type[_Wire]] = {cls.TYPE: cls for cls in (
    Challenge, Login, Logout, GetSymbols, Subscribe, SubscribeSymbolStatus, SubscribeHighLow, LsHistory,
    TradeHistory, AddOrder, CancelOrder, QueryOrder, QueryMultiOrder, QueryTrade, QueryPos, QueryPendingPos,
)}

#: message type -> its class: every answer and push of the document
MESSAGE_TYPES: dict[str, type[_Wire]] = {
    "getsymbols": SymbolsAnswer, "book": BookMsg, "trade": TradeMsg, "symbolstatus": SymbolStatusMsg,
    "highlow": HighLowMsg, "subscribesymbolstatus": SubscribeAnswer, "subscribehighlow": SubscribeAnswer,
    "subscribe": SubscribeAnswer, "challenge": ChallengeAnswer, "login": LoginAnswer, "logout": LogoutAnswer,
    "addorder": AddOrderAnswer, "cancelorder": CancelAnswer, "queryorder": QueryOrderAnswer,
    "order": OrderMsg, "sale": SaleMsg, "position": PositionMsg,
    **{kind: RecordsAnswer for kind in _RECORD_TYPES},
}


# --------------------------------------------------------------------------------------------
# Entry points


_READ = Reader(MAX_FRAME_CHARS, MAX_DEPTH).loads


_AT_CHAR = re.compile(r"\(char (\d+)\)$")


def _load(raw: str | bytes | bytearray | memoryview) -> dict[str, Any]:
    try:
        obj = _READ(raw)
    except WireError as exc:
        raise WsCodecError(exc.reason + _trailing_comma(raw, exc.reason), exc.kind) from None
    if not isinstance(obj, dict):
        raise WsCodecError(f"a message is a JSON object, got {_short(obj)}")
    return obj


def _trailing_comma(raw: str | bytes | bytearray | memoryview, reason: str) -> str:
    """" (a trailing comma)" when the parser stopped just after a comma and before a closing
    bracket: the document's login answer and logout request (venue-notes 3.4)."""
    at = _AT_CHAR.search(reason)
    if at is None or not isinstance(raw, str):
        return ""
    position = int(at.group(1))
    if raw[:position].rstrip().endswith(",") and raw[position:position + 1] in ("}", "]"):
        return " (a trailing comma)"
    return ""


def _build(table: Mapping[str, type[_Wire]], obj: dict[str, Any], what: str) -> Any:
    kind = obj["type"]
    if type(kind) is not str:
        raise WsCodecError(f"type: expected a string, got {_short(kind)}")
    cls = table.get(kind)
    if cls is None:
        raise WsCodecError(f"{what} type {_short(kind)} is not in the document", UNKNOWN_MESSAGE)
    try:
        return cls.from_wire(obj)
    except WsCodecError as exc:
        exc.message_type = kind
        raise
    except (TypeError, ValueError, ArithmeticError) as exc:  # a dataclass's own check: never let it out raw
        raise WsCodecError(f"{kind}: {exc}", MALFORMED, kind) from None


def decode_message(raw: str | bytes | bytearray | memoryview) -> Any:
    """One frame from the venue -> an answer or push object. Raises only :class:`WsCodecError`."""
    obj = _load(raw)
    if "type" not in obj:
        if "result" in obj:
            return VenueError.from_wire(obj)
        raise WsCodecError("a message without type (and without result)")
    return _build(MESSAGE_TYPES, obj, "message")


def decode_request(raw: str | bytes | bytearray | memoryview) -> Any:
    """One frame from a client -> a request object (the sandbox's side). Raises only
    :class:`WsCodecError`; the sandbox answers a frame it cannot read with
    ``{"result":"error parsing json"}`` as the venue does (VENUES.md 2.15)."""
    obj = _load(raw)
    if "type" not in obj:
        raise WsCodecError("a request without type")
    return _build(REQUEST_TYPES, obj, "request")


def encode(message: Any, *, loggable: bool = False) -> str:
    """A request or an answer/push as compact JSON text. An :class:`AddOrder` the document forbids
    raises :class:`WsCodecError` naming the rule. ``loggable`` writes ``pass`` as ``***``."""
    if isinstance(message, AddOrder):
        problem = message.problem()
        if problem is not None:
            raise WsCodecError(f"addorder: {problem}")
    obj = message.to_wire()
    if loggable:
        for key in CREDENTIAL_KEYS:
            if key in obj:
                obj[key] = "***"
    try:
        return msgspec.json.encode(obj).decode("utf-8")
    except (UnicodeEncodeError, TypeError, ValueError) as exc:  # a lone surrogate in a field we were handed
        raise WsCodecError(f"cannot encode {type(message).__name__}: {exc}") from None


# --------------------------------------------------------------------------------------------
# Correlation: no request id (VENUES.md 2.8)


#: request type -> the answer type it is answered with (only where they differ: MID-1)
ANSWER_TYPE = {"querymultiorder": "querymultiorders"}
_ECHOED: dict[str, tuple[str, ...]] = {
    "addorder": ("client_order_id",), "cancelorder": ("refno",), "queryorder": ("refno",),
    "lshistory": ("security",), "tradehistory": ("security",), "subscribehighlow": ("security",),
}


def request_key(request: Any) -> tuple[str, ...]:
    """The key its answer will carry: the answer's ``type`` and the fields the venue echoes. An
    ``addorder`` without ``clientorderid`` cannot be told from another: the adapter always sends one."""
    kind = ANSWER_TYPE.get(request.TYPE, request.TYPE)
    return (kind, *(str(getattr(request, name)) for name in _ECHOED.get(request.TYPE, ())))


def answer_key(answer: Any) -> tuple[str, ...] | None:
    """:func:`request_key` of the request ``answer`` answers; None for a push (``order``,
    ``sale``, ``position``, ``book``, ``trade``, ``symbolstatus``, ``highlow``: nobody asked) and
    for a :class:`VenueError` (no type: it answers the oldest outstanding request). An
    ``addorder`` answer that does not echo ``clientorderid`` (the document shows two) has the key
    ``("addorder",)``: it answers the oldest outstanding ``addorder``."""
    if isinstance(answer, (VenueError, OrderMsg, SaleMsg, PositionMsg, BookMsg, TradeMsg, SymbolStatusMsg,
                           HighLowMsg)):
        return None
    kind = getattr(answer, "type", None) or answer.TYPE
    if kind == "querymultiorder":
        kind = "querymultiorders"
    if isinstance(answer, AddOrderAnswer) and answer.client_order_id is None:
        return (kind,)  # an echo without our id (two of the document's rejects): the oldest addorder
    request = "querymultiorder" if kind == "querymultiorders" else kind
    return (kind, *(str(getattr(answer, name)) for name in _ECHOED.get(request, ())))


# --------------------------------------------------------------------------------------------
# Multi-record replies


class RecordAssembler:
    """Puts one multi-record reply back together from its chunks (<= 100 records each). Records
    are kept by ``rec_no`` (1..``total_rec``); the reply is complete when all are there. A record
    number out of range, a record repeated with other content, or a chunk of another type is
    refused; a record repeated identically is ignored (a resent chunk). Records without ``rec_no``
    (none in the document) are numbered in arrival order."""

    __slots__ = ("kind", "total", "found")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.total: int | None = None
        self.found: dict[int, Any] = {}

    def add(self, chunk: RecordsAnswer) -> tuple[Any, ...] | None:
        """The whole reply, in ``rec_no`` order, once complete; None while chunks are missing."""
        if chunk.type != self.kind:
            raise WsCodecError(f"a {chunk.type} chunk in a {self.kind} reply")
        if chunk.empty:
            return ()
        total = chunk.total if chunk.total is not None else len(chunk.records) + len(self.found)
        if self.total is None:
            self.total = total
        elif total != self.total:
            raise WsCodecError(f"{self.kind}: total_rec changed from {self.total} to {total}")
        for record in chunk.records:
            number = record.rec_no if record.rec_no is not None else len(self.found) + 1
            if not 1 <= number <= self.total:
                raise WsCodecError(f"{self.kind}: rec_no {number} outside 1..{self.total}")
            known = self.found.get(number)
            if known is not None and known != record:
                raise WsCodecError(f"{self.kind}: rec_no {number} sent twice with different content")
            self.found[number] = record
        if len(self.found) == self.total:
            return tuple(self.found[n] for n in range(1, self.total + 1))
        return None


# --------------------------------------------------------------------------------------------
# Order state (MID-11, MID-15)


_ZERO = Decimal(0)
_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED})


def order_status(order: OrderMsg) -> OrderStatus:
    """The engine's status of a venue order (VENUES.md 6.6, MID-11, MID-15):

    - ``Open``: ``execqty`` > 0 -> PARTIALLY_FILLED, else NEW;
    - ``Executed``: ``execqty`` >= ``qty`` -> FILLED, less -> CANCELLED (an IOC/FOK remainder);
    - ``Cancelled`` -> CANCELLED (``execqty`` says what filled before); ``Rejected`` -> REJECTED;
    - no ``orderstatus`` (``queryorder``, MID-15): ``liveqty`` > 0 -> NEW / PARTIALLY_FILLED as
      above; nothing live and ``execqty`` >= ``qty`` -> FILLED, nothing live and something filled
      -> CANCELLED; nothing live and nothing filled -> UNKNOWN (cancelled or rejected: ask
      ``querymultiorder``, which says);
    - any other ``orderstatus`` -> UNKNOWN (never a guess)."""
    filled = order.exec_qty or _ZERO
    status = order.status
    if status == "Open":
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.NEW
    if status == "Executed":
        return OrderStatus.FILLED if order.qty is None or filled >= order.qty else OrderStatus.CANCELLED
    if status == "Cancelled":
        return OrderStatus.CANCELLED
    if status == "Rejected":
        return OrderStatus.REJECTED
    if status is not None:
        return OrderStatus.UNKNOWN
    live = order.live_qty if order.live_qty is not None else max(_ZERO, (order.qty or _ZERO) - filled)
    if live > 0:
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.NEW
    if order.qty is not None and filled >= order.qty and filled > 0:
        return OrderStatus.FILLED
    return OrderStatus.CANCELLED if filled > 0 else OrderStatus.UNKNOWN


def order_type(order: OrderMsg | AddOrder | AddOrderAnswer) -> OrderType | None:
    """``LMT`` (and ``LIMIT``, one reject echo, MID-1) -> LIMIT, ``MKT`` -> MARKET, else None."""
    return _ORDER_TYPES.get(order.order_type or "")


# --------------------------------------------------------------------------------------------
# Reject texts -> engine codes (VENUES.md 2.15, 6.11; engine/rejects.py)


@dataclass(frozen=True, slots=True)
class RejectText:
    """One reject text the document lists, the engine code it maps to, and where it comes."""

    text: str
    code: Reject
    meaning: str
    answers: str


REJECT_TEXTS: tuple[RejectText, ...] = (
    RejectText("exceed order/sec limit", Reject.RATE_LIMIT_EXCEEDED,
               "more than 4 orders per second (MID-9)", "addorder"),
    RejectText("order marketable to existing quote/book", Reject.POST_ONLY_WOULD_TAKE,
               "a post-only (alo) order would execute: rejected, not repriced", "addorder"),
    RejectText("no crypto pos", Reject.POSITION_NOT_HELD,
               "insufficient virtual-asset balance", "addorder, order.text"),
    RejectText("wash sale prohibited", Reject.SELF_TRADE_PREVENTED,
               "would match our own opposite order: the incoming order is rejected", "order.text"),
    RejectText("Exceeds margin limit Exceed total Amount", Reject.POSITION_LIMIT_EXCEEDED,
               "above the maximum daily notional (a venue risk limit, VENUES.md 6.11 RISK_LIMIT)",
               "addorder, order.text"),
    RejectText("error parsing json", Reject.INVALID_ORDER,
               "the venue could not read our request (no type: answers the oldest outstanding one)", "any"),
    RejectText("cannot use qty for market buy order", Reject.INVALID_QUANTITY,
               "a market buy is sized by fiat amount, not qty", "addorder"),
    RejectText("order not found", Reject.ORDER_NOT_OPEN,
               "no such order (unknown refno, or no longer open)", "cancelorder, queryorder"),
    RejectText("failed", Reject.EXCHANGE_REJECT,
               "the venue gives no reason: the order's state is unknown until queried", "cancelorder"),
    RejectText("no position", Reject.POSITION_NOT_HELD,
               "nothing held: an empty answer to querypos/querypendingpos, not an error", "querypos, querypendingpos"),
    RejectText("invalid user/password", Reject.INVALID_TOKEN, "login refused: wrong user id or password", "login"),
)
#: what a text the document does not list maps to: the generic "order rejected by exchange"
UNKNOWN_REJECT = Reject.EXCHANGE_REJECT


def _normal(text: str) -> str:
    """Compared without case and extra spaces: ``"Order Not Found "`` is ``order not found``."""
    return " ".join(text.split()).casefold()


_BY_TEXT: dict[str, RejectText] = {_normal(r.text): r for r in REJECT_TEXTS}


class RejectCodes:
    """Reject text -> engine code, counting the texts the document does not list (kept up to
    ``max_texts`` distinct, 80 characters each; the rest summed under ``"(other)"``), so the
    adapter reports what it had to map to :data:`UNKNOWN_REJECT`."""

    __slots__ = ("unknown", "max_texts")

    def __init__(self, max_texts: int = 64) -> None:
        self.unknown: Counter[str] = Counter()
        self.max_texts = max_texts

    def code(self, text: str) -> int:
        known = _BY_TEXT.get(_normal(text)) if type(text) is str else None
        if known is not None:
            return int(known.code)
        key = str(text)[:80]
        if key not in self.unknown and len(self.unknown) >= self.max_texts:
            key = "(other)"
        self.unknown[key] += 1
        return int(UNKNOWN_REJECT)

    @staticmethod
    def known(text: str) -> RejectText | None:
        return _BY_TEXT.get(_normal(text))


_SALVAGE_RESULT = re.compile(r"""["']result["']\s*:\s*["']([^"']{1,200})["']""")
_SALVAGE_ID = re.compile(r"""["'](clientorderid|clientorderi|refno)["']\s*:\s*["']([^"']{1,64})["']""")
#: how much of an unreadable frame :func:`recognise_reject` looks at
SALVAGE_CHARS = 4096


@dataclass(frozen=True, slots=True)
class SalvagedReject:
    """A documented reject found in a frame that is not JSON (the Python-repr sample)."""

    reject: RejectText
    client_order_id: str | None
    refno: str | None


def recognise_reject(raw: str | bytes | bytearray | memoryview) -> SalvagedReject | None:
    """The documented reject an unreadable frame carries, if it plainly does: a ``result`` key
    (either quote style) whose value is a listed text, and the ``clientorderid``/``refno`` it names.

    Why not more: the frame was refused, so nothing in it is trusted to change an order. The
    adapter counts the reject under its code and reconciles by query (``querymultiorder``): the
    venue's answer to that, not this guess, settles the order."""
    if isinstance(raw, str):
        text = raw[:SALVAGE_CHARS]
    else:
        text = bytes(raw[:SALVAGE_CHARS]).decode("utf-8", "replace")
    found = _SALVAGE_RESULT.search(text)
    if found is None:
        return None
    known = RejectCodes.known(found.group(1))
    if known is None:
        return None
    ids = {name: value for name, value in _SALVAGE_ID.findall(text)}
    return SalvagedReject(known, ids.get("clientorderid") or ids.get("clientorderi"), ids.get("refno"))


# --------------------------------------------------------------------------------------------
# Rate limits (MID-9) as data


WS_RATE_LIMITS: tuple[RateLimit, ...] = (
    RateLimit("all", 5, Decimal(1), 10,
              source="001 Rate Limits: private endpoints 5 requests/s per user ID, up to 10/s in bursts"),
    RateLimit("orders", 4, Decimal(1), 4,
              source="001 Reject Messages, exceed order/sec limit: more than 4 orders per second (MID-9)"),
    RateLimit("public", 3, Decimal(1), 6,
              source="001 Rate Limits: public endpoints 3 requests/s per IP, up to 6/s in bursts"),
)
#: pacing lanes (adapters.kit.pacing), in priority order: cancels first, then orders, queries, public
WS_LANES: dict[str, LaneSpec] = {
    "cancel": (("cancels", "all"), "cancel"),
    "order": (("orders", "all"), "order"),
    "query": (("all",), "order"),
    "public": (("public",), "order"),
}
#: each request's lane. The login steps are public: before login the venue knows no user id, only
#: the IP. ``logout`` is private but must never wait behind orders: it spends the cancel lane.
REQUEST_LANE: dict[str, str] = {
    "addorder": "order", "cancelorder": "cancel", "logout": "cancel",
    "queryorder": "query", "querymultiorder": "query", "querytrade": "query", "querypos": "query",
    "querypendingpos": "query",
    "challenge": "public", "login": "public", "getsymbols": "public", "subscribe": "public",
    "subscribesymbolstatus": "public", "subscribehighlow": "public", "lshistory": "public", "tradehistory": "public",
}
assert set(REQUEST_LANE) == set(REQUEST_TYPES), "every request needs a lane"
