"""PSX Live Feed wire format: endpoints, authentication, and a sans-I/O decoder from WebSocket text
frames to model events.

Source: ``shared/seeds/002_ad1dca0bc7545d13.txt`` (PSX Live Feed), digested in ``shared/VENUES.md``
section 3. The document gives hosts, paths, access levels, the bearer token and the limit of two
connections per token, and **no message format at all** (gap PSX-1). Every message shape below is
the digest's proposed format (VENUES.md 3.5, PSX-1) plus the few extensions this module needs, each
marked with the gap it fills. A real broker's format replaces this one module: the adapter
(transport) and the engine only see model events.

The decoder is a small state machine (per connection): it checks the per-connection ``seq``, keeps
the books of symbols whose snapshot was lost out of the engine until a fresh one arrives, turns a
tick's growing volume into a public trade, and says when a symbol's reference price changes. It does
no I/O and never reads the time: the caller passes the receive time.

Numbers are JSON numbers (PSX-1): they are parsed from the raw text straight into ``Decimal``
(``parse_float=Decimal``), never through a binary float.

Hostile input (issue 17): :meth:`FeedDecoder.decode` raises only :class:`Malformed`, for any str or
bytes whatever, and ``Malformed.kind`` says what was wrong (an :mod:`engine.venue.badinput` kind:
``binary``, ``not_json``, ``too_large``, ``too_deep``, ``bad_number``, ``malformed``,
``unknown_message``). JSON is read by the shared bounded reader (:mod:`adapters.kit.wirejson`: size,
depth, number length and exponent checked before conversion, ``NaN``/``Infinity`` refused) and every
price, quantity and value is bounded (``|x| < 10**18``) before the engine sees it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from adapters.kit.wirejson import (
    MAGNITUDE_LIMIT,
    Reader,
    WireError,
    amount,
    int_decimal,
    lookup,
    typed_decoder,
)
from engine.model import BookUpdate, InstrumentStatus, Side, Trade
from engine.venue.badinput import BINARY, MALFORMED, UNKNOWN_MESSAGE

__all__ = [
    "ACCESS_LEVELS",
    "AUTH_HEADER",
    "DOCUMENT",
    "HOSTS",
    "MAX_CONNECTIONS_PER_TOKEN",
    "PATHS",
    "TOKEN_QUERY_PARAM",
    "FeedDecoder",
    "FeedError",
    "Gap",
    "IndexValue",
    "L3Order",
    "Malformed",
    "MarketStatus",
    "Subscribed",
    "Welcome",
    "encode_subscribe",
    "encode_unsubscribe",
    "feed_url",
    "parse_ts",
    "public_url",
    "with_token_query",
]

DOCUMENT = "shared/seeds/002_ad1dca0bc7545d13.txt (PSX Live Feed)"

# ---- endpoints and limits: stated by the document -------------------------------------------
#: "Connection Environments": the named presets; any other ws(s) URL is allowed too
HOSTS: dict[str, str] = {"staging": "wss://uat.csapis.com", "production": "wss://csapis.com"}
#: "Socket Endpoints": config's access name -> path
PATHS: dict[str, str] = {
    "feed": "/2.0/market/feed",
    "full": "/2.0/market/feed/full",
    "l2": "/2.0/market/feed/l2",
}
#: the document's access level of each path
ACCESS_LEVELS: dict[str, str] = {"feed": "L0", "full": "L1", "l2": "L2"}
#: "Only 2 concurrent connections are allowed per authentication token."
MAX_CONNECTIONS_PER_TOKEN = 2

# ---- authentication: "Bearer Token (passed as query parameter or header)" ---------------------
AUTH_HEADER = "Authorization"  # PSX-2: the header is not named; the standard bearer header is assumed
TOKEN_QUERY_PARAM = "token"  # PSX-2: the query parameter's name is not given; "token" is assumed

NS_PER_S = 1_000_000_000
SAMPLE_CHARS = 200  # how much of a malformed message is kept for the log
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_BUY = Side.BUY
_SELL = Side.SELL
_SIDES = {"B": _BUY, "S": _SELL}  # PSX-1: "side":"B|S"
_ORDER_ACTIONS = frozenset({"add", "modify", "delete", "execute"})  # PSX-1
#: PSX-4: which board feeds the engine. The engine trades the regular market; ticks of other
#: boards (odd lots, futures, ...) are read but not turned into trades or books.
REGULAR_BOARD = "REG"
ZERO = Decimal(0)
_NONE: list[Any] = []  # an absent side: no levels (read, never written)
#: a feed frame larger than this is refused unread (a 40-level book is about 2 KB)
MAX_FRAME_CHARS = 1 << 20


# --------------------------------------------------------------------------------------------
# URLs


def feed_url(base: str, access: str) -> str:
    """The socket URL for ``base`` (a preset name's host or any ``ws``/``wss`` URL) at an access
    level. A URL without a path gets the level's path (VENUES.md 3.1: URL = host + path); a URL
    with a path is used as given, so a broker with other paths needs no code change."""
    if access not in PATHS:
        raise ValueError(f"unknown access level {access!r}; use one of {', '.join(PATHS)}")
    parts = urlsplit(base)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"feed URL must be ws://host[:port][/path] or wss://..., got {public_url(base)!r}")
    path = parts.path if parts.path not in ("", "/") else PATHS[access]
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def with_token_query(url: str, token: str) -> str:
    """``url`` carrying the token as a query parameter (PSX-2: ``?token=``). Never log the result."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != TOKEN_QUERY_PARAM]
    query.append((TOKEN_QUERY_PARAM, token))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def public_url(url: str) -> str:
    """``url`` fit for a log line: any user info and the query (which may carry a token) removed."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# --------------------------------------------------------------------------------------------
# Client -> server (PSX-1)


def encode_subscribe(symbols: list[str] | tuple[str, ...]) -> str:
    """PSX-1: ``{"action":"subscribe","symbols":[...]}``. Subscribing again to a symbol already
    subscribed asks for its snapshot again (PSX-1, our extension): the way to get a fresh snapshot
    after a sequence gap, since the document defines no snapshot request."""
    return json.dumps({"action": "subscribe", "symbols": list(symbols)}, separators=(",", ":"))


def encode_unsubscribe(symbols: list[str] | tuple[str, ...]) -> str:
    """PSX-1 (our extension, symmetrical to subscribe): ``{"action":"unsubscribe","symbols":[...]}``."""
    return json.dumps({"action": "unsubscribe", "symbols": list(symbols)}, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# Protocol events (what the adapter handles itself; market data leaves as engine model objects)


class Malformed(ValueError):
    """A message that cannot be decoded: counted by ``kind`` (an :mod:`engine.venue.badinput` kind),
    logged once with ``sample``, and skipped."""

    def __init__(self, reason: str, data: object, kind: str = MALFORMED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        if isinstance(data, (str, bytes, bytearray)):
            data = data[:SAMPLE_CHARS]  # never repr a megabyte to keep 200 characters of it
        text = data if isinstance(data, str) else repr(data)
        self.sample = text[:SAMPLE_CHARS]


class Welcome:
    """PSX-1: the server's first message: the access level it grants."""

    __slots__ = ("level", "server_time")

    def __init__(self, level: str, server_time: int | None) -> None:
        self.level = level
        self.server_time = server_time


class Subscribed:
    """PSX-1: the answer to a subscribe."""

    __slots__ = ("symbols",)

    def __init__(self, symbols: tuple[str, ...]) -> None:
        self.symbols = symbols


class FeedError:
    """PSX-1 (our extension): ``{"type":"error","code":..,"message":..,"symbols":[..]}``, the
    server's answer to a request it refuses (unknown symbol, bad request)."""

    __slots__ = ("code", "message", "symbols")

    def __init__(self, code: str, message: str, symbols: tuple[str, ...]) -> None:
        self.code = code
        self.message = message
        self.symbols = symbols


class Gap:
    """The per-connection ``seq`` jumped: messages were lost. Every book needs a fresh snapshot;
    until one arrives, that symbol's deltas are dropped (counted in ``FeedDecoder.dropped``)."""

    __slots__ = ("expected", "received")

    def __init__(self, expected: int, received: int) -> None:
        self.expected = expected
        self.received = received


class MarketStatus:
    """PSX-1: market-wide phase, ``PRE_OPEN|OPEN|POST_CLOSE|CLOSED`` (other words kept as sent)."""

    __slots__ = ("state", "ts")

    def __init__(self, state: str, ts: int) -> None:
        self.state = state
        self.ts = ts


class IndexValue:
    """PSX-1: an index level (e.g. KSE100). The engine model has no index event; the adapter keeps
    the latest value per index."""

    __slots__ = ("symbol", "value", "change", "ts")

    def __init__(self, symbol: str, value: Decimal, change: Decimal | None, ts: int) -> None:
        self.symbol = symbol
        self.value = value
        self.change = change
        self.ts = ts


class L3Order:
    """PSX-1 L2 access "individual orders": one order's add/modify/delete/execute. The engine
    model has no order-level event (VENUES.md 6.7 keeps L3 adapter-internal), so the adapter
    keeps the order table; public prints reach the engine from ticks (see ``FeedDecoder``).
    For ``execute`` ``qty`` is the quantity executed; for ``add``/``modify`` it is the order's
    remaining quantity (PSX-1: not stated, assumed)."""

    __slots__ = ("symbol", "action", "order_id", "side", "price", "qty", "seq", "ts")

    def __init__(
        self, symbol: str, action: str, order_id: str, side: Side | None,
        price: Decimal | None, qty: Decimal | None, seq: int | None, ts: int,
    ) -> None:
        self.symbol = symbol
        self.action = action
        self.order_id = order_id
        self.side = side
        self.price = price
        self.qty = qty
        self.seq = seq
        self.ts = ts

    def __repr__(self) -> str:
        return f"L3Order({self.symbol} {self.action} {self.order_id} {self.side} {self.qty}@{self.price})"


#: one resting order as the L3 table keeps it: (side, price, remaining quantity)
RestingOrder = tuple[Side | None, Decimal | None, Decimal]


class OrderTable:
    """L2 access: the orders resting in each book, kept from :class:`L3Order` events (sans I/O:
    the adapter feeds it events and reads it). A book snapshot starts its symbol's table again
    (``reset``); a new connection clears every table (``clear``)."""

    __slots__ = ("tables", "unknown")

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, RestingOrder]] = {}
        self.unknown = 0  # modify/execute/delete of an order the table does not hold

    def clear(self) -> None:
        self.tables.clear()

    def reset(self, symbol: str) -> None:
        self.tables[symbol] = {}

    def orders(self, symbol: str) -> dict[str, RestingOrder]:
        return dict(self.tables.get(symbol, {}))

    def apply(self, event: L3Order) -> None:
        table = self.tables.setdefault(event.symbol, {})
        action = event.action
        order_id = event.order_id
        if action == "add":
            table[order_id] = (event.side, event.price, event.qty)  # type: ignore[assignment]
            return
        known = table.get(order_id)
        if known is None:
            self.unknown += 1
            return
        if action == "delete":
            del table[order_id]
        elif action == "modify":
            if event.qty:
                table[order_id] = (event.side or known[0], event.price or known[1], event.qty)
            else:
                del table[order_id]
        else:  # execute: qty is the executed quantity
            left = known[2] - event.qty  # type: ignore[operator]
            if left > 0:
                table[order_id] = (known[0], known[1], left)
            else:
                del table[order_id]


# --------------------------------------------------------------------------------------------
# Field readers: raise ValueError/KeyError/TypeError, which the decoder turns into Malformed


_decode_json = Reader(MAX_FRAME_CHARS).loads  # raises WireError (a ValueError) with its kind
_PRICE_LIMIT = Decimal(MAGNITUDE_LIMIT)  # for the inlined checks of _number and _levels


def _number(value: Any, name: str) -> Decimal:
    """A JSON number as a Decimal, bounded (wirejson.amount: |x| < 10**18, never a bool)."""
    kind = type(value)
    if kind is Decimal:  # the common cases, inlined: this runs for every number of every tick
        if -_PRICE_LIMIT < value < _PRICE_LIMIT:
            return value
    elif kind is int and -MAGNITUDE_LIMIT < value < MAGNITUDE_LIMIT:
        return Decimal(value)
    return amount(value, name)


def _price(value: Any, name: str) -> Decimal:
    price = _number(value, name)
    if price <= 0:
        raise ValueError(f"{name}: a price must be positive, got {price}")
    return price


def _qty(value: Any, name: str) -> Decimal:
    qty = _number(value, name)
    if qty < 0:
        raise ValueError(f"{name}: a quantity cannot be negative, got {qty}")
    return qty


def _opt_price(msg: dict, name: str) -> Decimal | None:
    value = msg.get(name)
    return None if value is None else _price(value, name)


def _opt_qty(msg: dict, name: str) -> Decimal | None:
    value = msg.get(name)
    return None if value is None else _qty(value, name)


def _text(msg: dict, name: str) -> str:
    value = msg[name]
    if type(value) is not str or not value:
        raise ValueError(f"{name}: expected a non-empty string, got {value!r}")
    return value


def _seq(msg: dict) -> int | None:
    """PSX-1: ``seq`` per connection, monotonic. Optional: a message without one is not checked."""
    value = msg.get("seq")
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise ValueError(f"seq: expected a non-negative integer, got {value!r}")
    return value


_ts_seconds: dict[str, int] = {}


def parse_ts(value: Any) -> int:
    """ISO 8601 UTC (PSX-1: ``YYYY-MM-DDTHH:mm:ss.sssZ``) -> int ns since the epoch, exactly.

    The common shape is parsed by hand with the whole-second part cached (ticks of one second
    share it); any other ISO 8601 form with an explicit offset goes through ``fromisoformat``."""
    if value == _last_ts[0] and type(value) is str:
        return _last_ts[1]  # a busy feed repeats the same millisecond
    ns = _parse_ts(value)
    _last_ts[0] = value
    _last_ts[1] = ns
    return ns


_last_ts: list[Any] = [None, 0]


def _parse_ts(value: Any) -> int:
    if type(value) is not str:
        raise ValueError(f"ts: expected an ISO 8601 string, got {value!r}")
    if len(value) >= 20 and value[-1] == "Z" and value[10] == "T":
        head = value[:19]
        base = _ts_seconds.get(head)
        if base is None:
            moment = datetime.fromisoformat(head).replace(tzinfo=UTC)
            base = (moment - _EPOCH) // _SECOND * NS_PER_S
            if len(_ts_seconds) > 4096:
                _ts_seconds.clear()
            _ts_seconds[head] = base
        fraction = value[19:-1]
        if not fraction:
            return base
        digits = fraction[1:]
        if fraction[0] != "." or not digits or len(digits) > 9 or not (digits.isascii() and digits.isdigit()):
            raise ValueError(f"ts: bad fraction of a second in {value!r}")
        return base + int(digits.ljust(9, "0"))
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"ts: {value!r} has no time zone (PSX-1: times are UTC, suffix Z)")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


def _levels(raw: Any, side: Side, name: str, snapshot: bool, out: list[tuple[Side, Decimal, Decimal]]) -> None:
    """PSX-1: ``[[price, qty, orders], ...]``; qty is the level's total, 0 deletes the level. The
    order count is optional (our sandbox may not know it) and not part of the engine's book.

    Appends each level's ``(side, price, qty)`` to ``out`` (both sides go into one list: no list
    per side, no copy). The common numbers (a Decimal price, an integer or Decimal quantity within
    bounds) are checked inline once; anything else goes through ``_price`` / ``_qty``, which refuse
    what the bounds refuse."""
    if type(raw) is not list:
        raise ValueError(f"{name}: expected a list of [price, qty, orders], got {raw!r}")
    append = out.append
    for level in raw:
        if type(level) is not list or not 2 <= len(level) <= 3:
            raise ValueError(f"{name}: a level is [price, qty] or [price, qty, orders], got {level!r}")
        price = level[0]
        qty = level[1]
        if type(price) is not Decimal or not 0 < price < _PRICE_LIMIT:
            price = _price(price, name)
        kind = type(qty)
        if kind is int and 0 <= qty < MAGNITUDE_LIMIT:  # shares: an integer, the common case at PSX
            if snapshot and not qty:
                continue  # an empty level in a snapshot is simply absent
            qty = int_decimal(qty)
        else:
            if kind is not Decimal or not 0 <= qty < _PRICE_LIMIT:
                qty = _qty(qty, name)
            if snapshot and not qty:
                continue
        append((side, price, qty))


# --------------------------------------------------------------------------------------------
# Book frames straight into their shape (issue 22 part 4)


#: what a level's third item (the order count, not read) may be in the fast path: a scalar that
#: nests nothing (a nested one may be past the reader's depth bound; a fraction is read by the
#: reader's bounded number hook): anything else goes the general way, which decides
_Orders = int | str | bool | None


class _Level(msgspec.Struct, array_like=True, forbid_unknown_fields=True, gc=False):
    """A level as ``_levels`` accepts it: ``[price, qty]`` or ``[price, qty, orders]`` (msgspec
    refuses any other length). Price and quantity are ``Any``, so that numbers come from the
    reader's bounded, remembered Decimals and are judged in Python as ``_levels`` judges them."""

    price: Any
    qty: Any
    orders: _Orders = None


class _BookFrame(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The shape of an L2 ``book`` message as :meth:`FeedDecoder._book` accepts it, for
    :meth:`FeedDecoder.decode`'s fast path. Unknown fields are refused (the general way skips them,
    after the reader's depth check). ``snapshot`` and ``ts`` are unset when absent (absent and
    ``null`` differ for them); ``seq`` is absent or ``null`` alike, as ``_seq`` reads it. Fields in
    the sandbox's order: msgspec finds a key fastest where it is declared. ``gc=False``: the shape
    holds no cycle."""

    type: Literal["book"]
    symbol: str
    snapshot: bool | msgspec.UnsetType = msgspec.UNSET
    bids: list[_Level] = []
    asks: list[_Level] = []
    ts: str | msgspec.UnsetType = msgspec.UNSET
    seq: Annotated[int, msgspec.Meta(ge=0)] | None = None


_decode_book_frame = typed_decoder(_BookFrame)
_UNSET = msgspec.UNSET


class _Refused(Exception):
    """The fast path leaves this frame to the general way (which may well accept it)."""


def _fast_int_price(price: Any) -> Decimal:
    """A level's price that is not a Decimal within bounds: an integer within bounds becomes
    ``Decimal(price)`` (as ``_number`` makes it); anything else raises :class:`_Refused`."""
    if type(price) is not int or not 0 < price < MAGNITUDE_LIMIT:
        raise _Refused
    return Decimal(price)


def _fast_side(side: Side, levels: list[_Level], keep_empty: bool,
               out: list[tuple[Side, Decimal, Decimal]]) -> None:
    """One side's levels into ``out`` as the general way reads them (``keep_empty``: a delta's
    quantity 0 deletes its level; a snapshot or whole book leaves such a level out); anything the
    general way would judge (a bound, a type) raises :class:`_Refused`."""
    append = out.append
    for level in levels:
        price = level.price
        qty = level.qty
        if type(price) is not Decimal or not ZERO < price < _PRICE_LIMIT:
            price = _fast_int_price(price)
        if type(qty) is int and 0 <= qty < MAGNITUDE_LIMIT:
            if not qty and not keep_empty:
                continue
            qty = int_decimal(qty)
        elif type(qty) is not Decimal or not ZERO <= qty < _PRICE_LIMIT:
            raise _Refused
        elif not qty and not keep_empty:
            continue
        append((side, price, qty))


# --------------------------------------------------------------------------------------------
# The decoder


class FeedDecoder:
    """Decodes one connection's messages into engine model events and protocol events.

    ``level`` is the access level the adapter asked for (``L0``/``L1``/``L2``). Below L2 there is no
    depth: a tick's best bid/ask becomes a one-level book snapshot (PSX-4: L1 carries top of book).
    At L2 the ``book`` messages are the book and ticks add nothing to it.

    Call :meth:`new_connection` for every new socket: ``seq`` restarts and every book waits for its
    snapshot again.
    """

    __slots__ = (
        "venue", "level", "book_from_ticks", "last_seq", "synced", "volume", "tops", "reference",
        "closing", "dropped", "other_board", "refused_shape", "whole", "_handlers",
    )

    def __init__(self, venue: str, level: str = "L1") -> None:
        self.venue = venue
        self.level = level
        self.book_from_ticks = level != "L2"
        self.last_seq: int | None = None
        #: symbols whose book had a snapshot since the connection opened or the last gap
        self.synced: set[str] = set()
        self.volume: dict[str, Decimal] = {}  # last cumulative volume per symbol (trade detection)
        self.tops: dict[str, tuple] = {}  # last top of book sent per symbol (below L2)
        self.reference: dict[str, Decimal] = {}  # last reference price announced per symbol
        self.closing: dict[str, Decimal] = {}
        self.dropped = 0  # deltas dropped while their book waited for a snapshot
        self.other_board = 0  # ticks of boards other than REG (PSX-4)
        #: frames naming "book" that the fast shape refused and the general way read (a venue that
        #: adds a field to its book frames shows here: every frame read twice, none lost)
        self.refused_shape = 0
        #: per symbol, the last whole book (price -> qty per side) of a feed whose book messages
        #: carry no ``snapshot`` field: each is the whole book, handed on as what changed
        self.whole: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}
        self._handlers = {
            "tick": self._tick,
            "book": self._book,
            "order": self._order,
            "index": self._index,
            "market_status": self._market_status,
            "welcome": self._welcome,
            "subscribed": self._subscribed,
            "error": self._error,
        }

    def new_connection(self) -> None:
        """A new socket: ``seq`` starts over (PSX-1: per connection), books wait for snapshots,
        and the first tick of each symbol is a snapshot, not a print."""
        self.last_seq = None
        self.synced.clear()
        self.volume.clear()
        self.tops.clear()
        self.whole.clear()

    def decode(self, data: str | bytes, recv_ns: int) -> list[Any]:
        """One WebSocket message -> events, in order. Raises :class:`Malformed` (and changes no
        state) when the message cannot be read.

        A text naming ``"book"`` is first read straight into its shape (:class:`_BookFrame`,
        msgspec) and its levels built once, with no dict and no second check in Python of what the
        shape checked: book changes are most of an L2 feed. Any frame the shape or a bound refuses
        goes the general way, which decides: the same events or the same :class:`Malformed`
        (tests/protocol/test_psx_fastbook.py compares the two on generated frames)."""
        if type(data) is str and len(data) <= MAX_FRAME_CHARS and '"book"' in data:
            try:
                frame = _decode_book_frame(data)
                symbol = frame.symbol
                snapshot = frame.snapshot
                if not symbol:
                    raise _Refused
                changes: list[tuple[Side, Decimal, Decimal]] = []
                if snapshot is _UNSET:  # a whole book (002 literal): the sides apart, empty levels left out
                    bids: list[tuple[Side, Decimal, Decimal]] = []
                    _fast_side(_BUY, frame.bids, False, bids)
                    _fast_side(_SELL, frame.asks, False, changes)
                    whole = (bids, changes)
                else:
                    whole = None
                    _fast_side(_BUY, frame.bids, not snapshot, changes)
                    _fast_side(_SELL, frame.asks, not snapshot, changes)
                stamp = frame.ts
                if stamp is _UNSET:
                    ts = recv_ns
                elif stamp == _last_ts[0]:  # parse_ts's common case inlined: a busy feed repeats it
                    ts = _last_ts[1]
                else:
                    ts = parse_ts(stamp)
            except Exception:  # refused by the shape or a bound: the general way decides
                self.refused_shape += 1
            else:
                try:  # what follows can refuse only a seq that went backwards, before any change
                    if whole is None:
                        return self._book_events(symbol, frame.seq, snapshot, changes, ts)  # type: ignore[arg-type]
                    return self._whole_book_events(symbol, frame.seq, whole[0], whole[1], ts)
                except (ValueError, TypeError, ArithmeticError) as exc:  # as the general way words it
                    raise Malformed(f"book: {exc}", data) from None
        if type(data) is not str:
            raise Malformed("binary frame (PSX-1: messages are JSON text frames)", data, BINARY)
        try:
            msg = _decode_json(data)
        except WireError as exc:
            raise Malformed(f"invalid JSON: {exc}", data, exc.kind) from None
        if type(msg) is not dict:
            raise Malformed("not a JSON object", data)
        kind = msg.get("type")
        handler = self._handlers.get(kind) if type(kind) is str else None  # wirejson.lookup, inlined
        if handler is None:
            if type(kind) is not str:
                raise Malformed(f"type: expected a string, got {type(kind).__name__}", data)
            raise Malformed(f"unknown message type {kind[:40]!r}", data, UNKNOWN_MESSAGE)
        try:
            return handler(msg, recv_ns)
        except KeyError as exc:
            raise Malformed(f"{kind}: missing field {exc.args[0]!r}", data) from None
        except WireError as exc:
            raise Malformed(f"{kind}: {exc}", data, exc.kind) from None
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise Malformed(f"{kind}: {exc}", data) from None

    # ---- sequence --------------------------------------------------------------------------
    def _check_seq(self, seq: int | None, out: list[Any]) -> None:
        """Validate first, then call: a message that fails validation leaves ``last_seq`` alone, so
        the next good message shows its lost ``seq`` as a gap."""
        if seq is None:
            return
        last = self.last_seq
        if last is not None and seq != last + 1:
            if seq <= last:
                raise ValueError(f"seq went backwards: {seq} after {last}")
            out.append(Gap(last + 1, seq))
            self.synced.clear()
        self.last_seq = seq

    # ---- market data -----------------------------------------------------------------------
    def _tick(self, msg: dict, recv_ns: int) -> list[Any]:
        """PSX-1 tick: last trade, day's volume and OHLC, previous close, best bid/ask.

        A public trade is a tick whose cumulative ``volume`` grew: price ``ltp``, quantity ``ltq``
        (PSX-1 assumes one tick per print; a feed that merges prints loses the earlier ones). Its id
        is ``SYMBOL:volume``, the same after a reconnect. The aggressor is not in the feed
        (VENUES.md 6.7: unknown). The first tick of a connection is a snapshot, not a print."""
        symbol = _text(msg, "symbol")
        seq = _seq(msg)
        ts = parse_ts(msg["ts"]) if "ts" in msg else recv_ns  # PSX-1 has ts; tolerate its absence
        board = msg.get("market", REGULAR_BOARD)  # PSX-4: absent = the regular board
        ltp = _opt_price(msg, "ltp")
        ltq = _opt_qty(msg, "ltq")
        volume = _opt_qty(msg, "volume")
        prev_close = _opt_price(msg, "prev_close")
        close = _opt_price(msg, "close")  # PSX-1 (our extension): official closing price once fixed
        bid = _opt_price(msg, "bid")
        bid_qty = _opt_qty(msg, "bid_qty")
        ask = _opt_price(msg, "ask")
        ask_qty = _opt_qty(msg, "ask_qty")
        out: list[Any] = []
        self._check_seq(seq, out)
        if board != REGULAR_BOARD:
            self.other_board += 1
            return out
        venue = self.venue
        reference = None
        if prev_close is not None and self.reference.get(symbol) != prev_close:
            self.reference[symbol] = reference = prev_close
        closing = None
        if close is not None and self.closing.get(symbol) != close:
            self.closing[symbol] = closing = close
        if reference is not None or closing is not None:
            out.append(InstrumentStatus(venue, symbol, ts, reference_price=reference, closing_price=closing))
        if volume is not None:
            before = self.volume.get(symbol)
            self.volume[symbol] = volume
            if before is not None and volume > before and ltp is not None and ltq:
                out.append(Trade(venue, symbol, ts, ltp, ltq, None, f"{symbol}:{volume}"))
        if self.book_from_ticks and (bid is not None or ask is not None):
            top = (bid, bid_qty, ask, ask_qty)
            if self.tops.get(symbol) != top:
                self.tops[symbol] = top
                changes = []
                if bid is not None and bid_qty:
                    changes.append((_BUY, bid, bid_qty))
                if ask is not None and ask_qty:
                    changes.append((_SELL, ask, ask_qty))
                self.synced.add(symbol)
                out.append(BookUpdate(venue, symbol, ts, seq or 0, tuple(changes), snapshot=True))
        return out

    def _book(self, msg: dict, recv_ns: int) -> list[Any]:
        """PSX-1 L2 book: snapshot first, then changed levels only; qty 0 deletes. The proposal has
        no ``ts`` in book messages, so the receive time stands in unless one is sent."""
        symbol = _text(msg, "symbol")
        seq = _seq(msg)
        if "snapshot" not in msg:
            return self._whole_book(msg, symbol, seq, recv_ns)
        snapshot = msg["snapshot"]
        if type(snapshot) is not bool:
            raise ValueError(f"snapshot: expected true or false, got {snapshot!r}")
        changes: list[tuple[Side, Decimal, Decimal]] = []
        _levels(msg.get("bids", _NONE), _BUY, "bids", snapshot, changes)
        _levels(msg.get("asks", _NONE), _SELL, "asks", snapshot, changes)
        ts = parse_ts(msg["ts"]) if "ts" in msg else recv_ns
        return self._book_events(symbol, seq, snapshot, changes, ts)

    def _book_events(self, symbol: str, seq: int | None, snapshot: bool,
                     changes: list[tuple[Side, Decimal, Decimal]], ts: int) -> list[Any]:
        """A read snapshot/delta book message's events and state (both ways share it). Raises
        (ValueError) only for a ``seq`` that went backwards, and then before changing anything."""
        out: list[Any] = []
        last = self.last_seq
        if seq is not None and last is not None and seq == last + 1:
            self.last_seq = seq  # in order: the common case of _check_seq
        else:
            self._check_seq(seq, out)
        whole = self.whole
        if whole and symbol in whole:
            del whole[symbol]  # the feed speaks snapshot/delta again
        if snapshot:
            self.synced.add(symbol)
        elif symbol not in self.synced:
            self.dropped += 1  # a delta on a book we do not hold: wait for the snapshot
            return out
        out.append(BookUpdate(self.venue, symbol, ts, seq or 0, tuple(changes), snapshot))
        return out

    def _whole_book(self, msg: dict, symbol: str, seq: int | None, recv_ns: int) -> list[Any]:
        """A book message without ``snapshot`` (002 documents "bid/ask levels", not deltas): it is
        the symbol's whole book. The first one after connecting (or after a gap) is handed on as a
        snapshot, every later one as the levels that changed against the last (qty 0 deletes), so
        the engine sees deltas and a lost message heals itself at the next."""
        bids: list[tuple[Side, Decimal, Decimal]] = []
        asks: list[tuple[Side, Decimal, Decimal]] = []
        _levels(msg.get("bids", _NONE), _BUY, "bids", True, bids)
        _levels(msg.get("asks", _NONE), _SELL, "asks", True, asks)
        ts = parse_ts(msg["ts"]) if "ts" in msg else recv_ns
        return self._whole_book_events(symbol, seq, bids, asks, ts)

    def _whole_book_events(self, symbol: str, seq: int | None, bids: list[tuple[Side, Decimal, Decimal]],
                           asks: list[tuple[Side, Decimal, Decimal]], ts: int) -> list[Any]:
        """A read whole-book message's events and state (both ways share it). Raises (ValueError)
        only for a ``seq`` that went backwards, and then before changing anything."""
        out: list[Any] = []
        self._check_seq(seq, out)
        now = ({price: qty for _, price, qty in bids}, {price: qty for _, price, qty in asks})
        before = self.whole.get(symbol) if symbol in self.synced else None
        self.whole[symbol] = now
        self.synced.add(symbol)
        if before is None:
            out.append(BookUpdate(self.venue, symbol, ts, seq or 0, tuple(bids + asks), True))
            return out
        changes = []
        for side, old, new in ((_BUY, before[0], now[0]), (_SELL, before[1], now[1])):
            changes += [(side, price, qty) for price, qty in new.items() if old.get(price) != qty]
            changes += [(side, price, ZERO) for price in old if price not in new]
        if changes:
            out.append(BookUpdate(self.venue, symbol, ts, seq or 0, tuple(changes), False))
        return out

    def _order(self, msg: dict, recv_ns: int) -> list[Any]:
        """PSX-1 L2 order detail. ``add`` needs side, price and qty; ``modify`` price and qty;
        ``execute`` qty; ``delete`` only the id."""
        symbol = _text(msg, "symbol")
        seq = _seq(msg)
        action = msg["action"]
        if type(action) is not str or action not in _ORDER_ACTIONS:
            raise ValueError(f"action: expected add|modify|delete|execute, got {action!r}")
        order_id = msg["order_id"]
        if type(order_id) is int:
            order_id = str(order_id)
        elif type(order_id) is not str or not order_id:
            raise ValueError(f"order_id: expected a string, got {order_id!r}")
        raw_side = msg.get("side")
        side = None if raw_side is None else lookup(_SIDES, raw_side)
        if raw_side is not None and side is None:
            raise ValueError(f"side: expected B or S, got {raw_side!r}")
        price = _opt_price(msg, "price")
        qty = _opt_qty(msg, "qty")
        if action == "add" and (side is None or price is None or qty is None):
            raise ValueError("add needs side, price and qty")
        if action == "modify" and qty is None:
            raise ValueError("modify needs qty")
        if action == "execute" and not qty:
            raise ValueError("execute needs a positive qty")
        ts = parse_ts(msg["ts"]) if "ts" in msg else recv_ns
        out: list[Any] = []
        self._check_seq(seq, out)
        if symbol not in self.synced:
            self.dropped += 1  # the order table is rebuilt from the snapshot that follows
            return out
        out.append(L3Order(symbol, action, order_id, side, price, qty, seq, ts))
        return out

    def _index(self, msg: dict, recv_ns: int) -> list[Any]:
        symbol = _text(msg, "symbol")
        value = _number(msg["value"], "value")
        change = msg.get("change")
        change = None if change is None else _number(change, "change")
        ts = parse_ts(msg["ts"]) if "ts" in msg else recv_ns
        out: list[Any] = []
        self._check_seq(_seq(msg), out)
        out.append(IndexValue(symbol, value, change, ts))
        return out

    def _market_status(self, msg: dict, recv_ns: int) -> list[Any]:
        """PSX-1 market status. With a ``symbol`` (our extension, the digest's 6.7 MarketStatus per
        instrument) it is that instrument's state: ``HALT`` halts it, any other state lifts a halt."""
        state = _text(msg, "state")
        ts = parse_ts(msg["ts"]) if "ts" in msg else recv_ns
        symbol = msg.get("symbol")
        if symbol is not None and (type(symbol) is not str or not symbol):
            raise ValueError(f"symbol: expected a non-empty string, got {symbol!r}")
        reason = msg.get("reason", "")
        if type(reason) is not str:
            raise ValueError(f"reason: expected a string, got {reason!r}")
        out: list[Any] = []
        self._check_seq(_seq(msg), out)
        if symbol is None:
            out.append(MarketStatus(state, ts))
        else:
            halted = state == "HALT"
            out.append(InstrumentStatus(self.venue, symbol, ts, halted=halted,
                                        reason=reason or ("halted by the exchange" if halted else state.lower())))
        return out

    # ---- session ---------------------------------------------------------------------------
    def _welcome(self, msg: dict, recv_ns: int) -> list[Any]:
        level = _text(msg, "level")
        server_time = msg.get("server_time")
        return [Welcome(level, None if server_time is None else parse_ts(server_time))]

    def _subscribed(self, msg: dict, recv_ns: int) -> list[Any]:
        symbols = msg["symbols"]
        if type(symbols) is not list or not all(type(s) is str for s in symbols):
            raise ValueError(f"symbols: expected a list of strings, got {symbols!r}")
        return [Subscribed(tuple(symbols))]

    def _error(self, msg: dict, recv_ns: int) -> list[Any]:
        code = msg.get("code", "")
        message = msg.get("message", "")
        symbols = msg.get("symbols") or []
        if type(symbols) is not list:
            raise ValueError(f"symbols: expected a list, got {symbols!r}")
        return [FeedError(str(code), str(message), tuple(str(s) for s in symbols))]
