"""PSX Live Feed sandbox: a local WebSocket server that speaks the Live Feed wire format (VENUES.md
3.5, PSX-1), backed by the simulated venue (:class:`adapters.sim.venue.SimVenue`: matching engine and
synthetic market).

It takes market events as a listener of the simulated venue (``on_book``, ``on_trade``,
``on_instrument_status``, plus ``on_session`` for the market phase), so one venue can feed it and
the Optimus sandbox together (``engine sandbox psx``). It enforces what the document says of the
server: a bearer token (header or query parameter), the access level of each path, and at most 2 connections per token.

It writes its messages itself from the engine model, not through the client's codec
(ARCHITECTURE principle 5): a field the adapter misreads shows up as a failing test instead of
being mirrored. Document facts (paths, the limit) are restated here for the same reason.

Faults on request, for the adapter's recovery paths (``inject(kind, ...)`` in process, or
``GET /sandbox/fault?kind=...&...`` on the same port), from the simulated venue's one vocabulary
(:mod:`adapters.sim.faults`); the feed plays these (:data:`SUPPORTED_FAULTS`) and refuses the
others by name:

=================  ===========================================================================
``drop``           abort every socket (no close frame)
``drop_mid_frame`` send the first half of a frame, then close the TCP connection
``truncate``       send half a JSON message as a complete frame, then drop the socket
``garbage``        send a message that is not valid Live Feed data (``text=`` to choose it)
``stall``          send nothing for ``seconds=`` (messages queue, nothing is lost)
``gap``            lose the next ``count=`` sequenced messages (their seq numbers are skipped)
``expire_token``   expire ``token=`` (default: every token in use): its sockets close with 1008
                   "token expired" and new handshakes get HTTP 401
``add_token``      accept ``token=`` from now on (``level=`` L0/L1/L2, default L2)
``refuse``         answer every handshake with HTTP ``status=`` (default 503) for ``seconds=``
``burst``          send ``count=`` synthetic book changes (L2) or ticks (L0/L1) of ``symbol=``
                   as fast as the socket takes them, then a fresh snapshot (benchmarks)
``badframe``       send ``count=`` (default 1) hostile frames of class ``frame=``
                   (adapters/sim/badframes.py): ``type_list`` ``{"type":[]}``, ``deep`` (an
                   array nested 100,000 deep), ``huge_number`` (``"ltp":1e9999999999999999999``),
                   ``binary`` (a tick as a binary frame), ``truncated`` (half of a real tick: its
                   seq is used up, so the client sees a gap), ``huge`` (a tick padded to 10 MiB);
                   the server keeps the connection (a client refusing a huge frame closes it, 1009)
=================  ===========================================================================

``GET /sandbox/status`` answers with the connections and counters as JSON.

Every assumption beyond document 002 is a named flag of :class:`FeedExtensions` (``extensions=``):
all on by default, all off in document-literal mode (``FeedExtensions.document_literal()``,
``--document-literal``; issue 20).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import secrets
import sys
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from adapters.kit.credentials import MissingSecret, sandbox_secret
from adapters.kit.wirejson import Reader
from adapters.psx_feed.adapter import REDACT
from adapters.sim.badframes import HUGE_NUMBER, bad_frame
from adapters.sim.cli import (
    Port,
    VenueSandboxCommand,
    at_least,
    free_ports,
    sandbox_clock,
    until_stopped,
)
from adapters.sim.extensions import Extensions, add_extension_arguments, extensions_from_args, extensions_line
from adapters.sim.faults import (
    FaultTimers,
    canonical_kind,
    check_params,
    check_supported,
    fault_help,
    spec_reader,
)
from adapters.sim.sessions import SessionFollower
from engine.model import (
    Book,
    BookUpdate,
    Instrument,
    InstrumentStatus,
    Phase,
    SessionState,
    Side,
    Trade,
)
from engine.venue import SandboxLink, SandboxStartError, venue_from_config
from engine.venue.clock import NS_PER_S, Clock

__all__ = ["COMMAND", "FAULTS", "SUPPORTED_FAULTS", "FeedExtensions", "FeedServer", "SessionFollower", "main",
           "paper_order_source"]

log = logging.getLogger("engine.psx_feed.sandbox")
#: what clients send is read as the adapter reads the venue: one bounded, exact reader (adapters.kit.wirejson)
_READ_JSON = Reader().loads


wire_log = logging.getLogger("engine.psx_feed.sandbox.wire")
wire_log.addFilter(REDACT)  # the adapter's: one filter for both ends

# The document's paths and their access levels (Socket Endpoints), restated on purpose (see above).
LEVEL_OF_PATH = {"/2.0/market/feed": 0, "/2.0/market/feed/full": 1, "/2.0/market/feed/l2": 2}
LEVEL_NAMES = ("L0", "L1", "L2")
#: "Only 2 concurrent connections are allowed per authentication token."
DOCUMENT_CONNECTION_LIMIT = 2
#: the kinds of :data:`adapters.sim.faults.FAULT_KINDS` the feed plays (``FAULTS``: the older name)
SUPPORTED_FAULTS = FAULTS = frozenset({
    "drop", "drop_mid_frame", "truncate", "garbage", "stall", "gap", "expire_token", "add_token", "refuse", "burst",
    "badframe",
})
#: PSX-1: market-wide states, from the engine's session phase
_MARKET_STATE = {
    Phase.CLOSED: "CLOSED",
    Phase.PRE_OPEN: "PRE_OPEN",
    Phase.OPENING_MATCH: "PRE_OPEN",
    Phase.OPEN: "OPEN",
    Phase.BREAK: "CLOSED",
    Phase.POST_CLOSE: "POST_CLOSE",
}
_GARBAGE = '{"type":"tick","symbol":'  # default garbage: a JSON object cut short
_SIDE_CODE = {Side.BUY: "B", Side.SELL: "S"}
NS_PER_MS = 1_000_000

#: ``order_source(symbol)`` -> resting orders as ``(order_id, side, price, remaining_qty)``
OrderSource = Callable[[str], Iterable[tuple[str, Side, Decimal, Decimal]]]


# --------------------------------------------------------------------------------------------
# What the server says beyond document 002 (issue 20: document-literal mode)


@dataclasses.dataclass(frozen=True)
class FeedExtensions(Extensions):
    """The Live Feed sandbox's assumptions beyond document 002, one flag each (VENUES.md 3.5).

    002 documents paths, hosts, bearer-token auth and the 2-connection limit, and names the
    content (snapshot ticks of price and volume, bid/ask levels, L2 individual orders) but no wire
    schema at all (PSX-1). Both modes therefore share one minimal dialect, without which there is no
    feed: JSON text frames ``{"type":"tick"|"book"|"order", "symbol", ...}`` with the PSX-1 field
    names and ``ts``, and the subscribe request answered with the symbol's current state (the
    document gives no way to choose symbols or to learn a quiet symbol's state). Everything else
    is one of these flags."""

    welcome: bool = True
    """PSX-1: a ``welcome`` message (level, server time) on connect. Literal: none."""
    market_status: bool = True
    """PSX-1: market-wide ``market_status`` (PRE_OPEN/OPEN/POST_CLOSE/CLOSED) on connect and on every
    phase change. Literal: none; a client knows the phase from its own schedule only."""
    symbol_status: bool = True
    """PSX-1 (our extension): per-symbol ``market_status`` with ``symbol`` (HALT / OPEN). Literal:
    none; a halt shows only as silence."""
    request_answers: bool = True
    """PSX-1: ``subscribed`` confirmations and ``error`` messages (unknown symbol, bad request).
    Literal: the server answers requests with data only; an unknown symbol is silently ignored."""
    sequence_numbers: bool = True
    """PSX-1: ``seq``, per connection and monotonic (gap detection). Literal: no ``seq``; a lost
    message (fault ``gap``) cannot be noticed, so the literal book messages are whole books."""
    book_deltas: bool = True
    """PSX-1: book messages carry ``snapshot`` (true first, then false) and after the snapshot only
    the changed levels (qty 0 deletes). Literal: no ``snapshot`` field; every book message is the
    symbol's whole book (002: "Order book data (bid/ask levels)"), so a lost one heals itself."""
    order_counts: bool = True
    """PSX-1: a third element per book level, the number of orders at that price. Literal:
    ``[price, qty]`` only."""
    closing_price: bool = True
    """PSX-1 (our extension): ``close`` in a tick once the closing price is fixed. Literal: none."""
    board_field: bool = True
    """PSX-4: ``market`` ("REG") in a tick. Literal: none (the client takes the regular board)."""
    server_ping: bool = True
    """PSX-5: the server sends a WebSocket ping every 20 s. Literal: none (it still answers the
    client's pings: RFC 6455 requires it); liveness is the client's own ping/pong."""
    refuse_over_limit: bool = True
    """PSX-3: a handshake beyond 2 connections per token is refused with HTTP 429. Literal: 002's
    "will result in connection termination": the handshake succeeds, then the new connection is
    closed with 1008."""
    access_token_alias: bool = True
    """PSX-2: the query parameter may be called ``access_token`` as well as ``token``. Literal:
    ``token`` (or the Authorization header) only."""


# --------------------------------------------------------------------------------------------
# Encoding (the server's own, from the model)


def _n(value: Decimal) -> str:
    """A Decimal as a JSON number, never in exponent notation (VENUES.md 6.12)."""
    return format(value, "f")


_iso_heads: dict[int, str] = {}


def _iso(ts_ns: int) -> str:
    """PSX-1 time: ISO 8601 UTC with milliseconds and Z."""
    seconds, rest = divmod(ts_ns, NS_PER_S)
    head = _iso_heads.get(seconds)
    if head is None:
        if len(_iso_heads) > 4096:
            _iso_heads.clear()
        head = _iso_heads[seconds] = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{head}.{rest // NS_PER_MS:03d}Z"


def _level_list(levels: Iterable[tuple[Decimal, Decimal]], counts: dict[Decimal, int] | None) -> str:
    if counts is None:
        return "[" + ",".join(f"[{_n(p)},{_n(q)}]" for p, q in levels) + "]"
    return "[" + ",".join(f"[{_n(p)},{_n(q)},{counts.get(p, 0)}]" for p, q in levels) + "]"


class _Tick:
    """What a tick says about one symbol (PSX-1 fields), kept up to date from trades and the book."""

    __slots__ = ("ltp", "ltq", "volume", "open", "high", "low", "prev_close", "close", "bid", "bid_qty", "ask",
                 "ask_qty", "ts")

    def __init__(self, prev_close: Decimal | None) -> None:
        self.prev_close = prev_close
        self.new_day(prev_close)
        self.bid: Decimal | None = None
        self.bid_qty: Decimal | None = None
        self.ask: Decimal | None = None
        self.ask_qty: Decimal | None = None
        self.ts = 0

    def new_day(self, prev_close: Decimal | None) -> None:
        self.prev_close = prev_close
        self.ltp: Decimal | None = None
        self.ltq: Decimal | None = None
        self.volume = Decimal(0)
        self.open: Decimal | None = None
        self.high: Decimal | None = None
        self.low: Decimal | None = None
        self.close: Decimal | None = None

    def body(self, symbol: str, with_top: bool, ext: FeedExtensions | None = None) -> str:
        """The tick without its closing brace (the seq goes there). L0 has no top of book (PSX-4);
        ``market`` and ``close`` only where ``ext`` has them (default: everyday)."""
        board = ext is None or ext.board_field
        parts = [f'{{"type":"tick","symbol":{json.dumps(symbol)}' + (',"market":"REG"' if board else "")]
        for name in ("ltp", "ltq", "volume", "open", "high", "low", "prev_close", "close"):
            if name == "close" and ext is not None and not ext.closing_price:
                continue
            value = getattr(self, name)
            if value is not None:
                parts.append(f',"{name}":{_n(value)}')
        if with_top:
            for name in ("bid", "bid_qty", "ask", "ask_qty"):
                value = getattr(self, name)
                if value is not None:
                    parts.append(f',"{name}":{_n(value)}')
        parts.append(f',"ts":"{_iso(self.ts)}"')
        return "".join(parts)


class _Client:
    """One connection: what it may see, what it asked for, and its own seq and send queue."""

    __slots__ = ("ident", "ws", "token", "level", "symbols", "all", "seq", "outbox", "wake", "stall_until", "skip",
                 "sent")

    def __init__(self, ident: int, ws: ServerConnection, token: str, level: int) -> None:
        self.ident = ident
        self.ws = ws
        self.token = token
        self.level = level
        self.symbols: set[str] = set()
        self.all = False
        self.seq = 0  # PSX-1: per connection, monotonic
        self.outbox: deque[str | Callable[[_Client], Awaitable[None]]] = deque()
        self.wake = asyncio.Event()
        self.stall_until = 0.0
        self.skip = 0  # sequenced messages still to lose (gap fault)
        self.sent = 0

    def wants(self, symbol: str) -> bool:
        return self.all or symbol in self.symbols


# --------------------------------------------------------------------------------------------
# The server


class FeedServer:
    """The Live Feed sandbox server. ``async with FeedServer(...) as server`` (or ``start``/``stop``);
    ``server.url`` is ``ws://host:port`` once started (port 0 picks a free one)."""

    def __init__(
        self,
        instruments: Iterable[Instrument],
        clock: Clock,
        tokens: Iterable[str] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_connections_per_token: int = DOCUMENT_CONNECTION_LIMIT,
        order_source: OrderSource | None = None,
        ping_interval: float | None = 20.0,
        outbox_limit: int = 100_000,
        extensions: FeedExtensions | None = None,
    ) -> None:
        #: what the server says beyond document 002 (everyday: all of it)
        self.extensions = ext = extensions if extensions is not None else FeedExtensions.everyday()
        if not ext.server_ping:
            ping_interval = None
        self.clock = clock
        self.host = host
        self.port = port
        self.max_connections_per_token = max_connections_per_token
        self.order_source = order_source
        self.ping_interval = ping_interval
        self.outbox_limit = outbox_limit
        self._tokens: dict[str, int] = {token: 2 for token in tokens}  # token -> highest level
        self._expired: set[str] = set()
        self._instruments = {i.symbol: i for i in instruments}
        self._books = {s: Book("sandbox", s) for s in self._instruments}
        self._ticks = {
            s: _Tick(i.previous_close if i.previous_close > 0 else None) for s, i in self._instruments.items()
        }
        self._orders: dict[str, dict[str, tuple[Side, Decimal, Decimal]]] = {s: {} for s in self._instruments}
        self._traded: dict[str, set[Decimal]] = {s: set() for s in self._instruments}
        self._halted: dict[str, str] = {}  # symbol -> reason
        self._market_state = "CLOSED"
        self._clients: dict[int, _Client] = {}
        self._per_token: Counter[str] = Counter()
        self._next_ident = 0
        self._refuse_until = 0.0
        self._refuse_status = 503
        self._server: Server | None = None
        self._tasks: set[asyncio.Task] = set()
        #: counters for tests, benchmarks and ``/sandbox/status``
        self.stats: Counter[str] = Counter()

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._server = await serve(
            self._handler, self.host, self.port, process_request=self._process_request,
            ping_interval=self.ping_interval, compression=None, max_size=1 << 16, logger=wire_log,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("psx feed sandbox listening on %s", self.url)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()

    async def __aenter__(self) -> FeedServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def feed_url(self, level: str = "L2") -> str:
        path = next(p for p, n in LEVEL_OF_PATH.items() if LEVEL_NAMES[n] == level)
        return self.url + path

    @property
    def connections(self) -> int:
        return len(self._clients)

    def book(self, symbol: str) -> Book:
        """The sandbox's own book of ``symbol`` (what every snapshot sends)."""
        return self._books[symbol]

    def status(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "extensions_off": list(self.extensions.off()),
            "market_state": self._market_state,
            "connections": [
                {"id": c.ident, "level": LEVEL_NAMES[c.level], "symbols": sorted(c.symbols) or (["*"] if c.all else []),
                 "seq": c.seq, "queued": len(c.outbox), "sent": c.sent}
                for c in self._clients.values()
            ],
            "stats": dict(self.stats),
        }

    # ---- tokens --------------------------------------------------------------------------
    def add_token(self, token: str, level: str = "L2") -> None:
        if level not in LEVEL_NAMES:
            raise ValueError(f"level must be one of {', '.join(LEVEL_NAMES)}, got {level!r}")
        self._tokens[token] = LEVEL_NAMES.index(level)
        self._expired.discard(token)

    def expire_token(self, token: str | None = None) -> int:
        """Expire one token (default: every token with an open connection); its sockets close
        with 1008 "token expired" (PSX-2: the document says nothing of expiry; assumed)."""
        targets = {token} if token is not None else {c.token for c in self._clients.values()}
        self._expired |= targets
        closing = [c for c in self._clients.values() if c.token in targets]
        for client in closing:
            self._spawn(client.ws.close(1008, "token expired"))
        return len(closing)

    # ---- market events in (sink-shaped) --------------------------------------------------
    def on_book(self, update: BookUpdate) -> None:
        symbol = update.symbol
        book = self._books.get(symbol)
        if book is None:
            return
        before = (book.best_bid, book.bid_size, book.best_ask, book.ask_size)
        book.apply(update)
        ts = update.ts
        l2 = [c for c in self._clients.values() if c.level == 2 and c.wants(symbol)]
        counts = None
        ext = self.extensions
        if self.order_source is not None:
            messages = self._diff_orders(symbol, ts)
            counts = self._counts(symbol) if ext.order_counts else None
            for body in messages:
                for client in l2:
                    self._push_seq(client, body)
        if l2:
            bids = [(p, q) for s, p, q in update.changes if s is Side.BUY]
            asks = [(p, q) for s, p, q in update.changes if s is Side.SELL]
            if update.snapshot or not ext.book_deltas:
                bids, asks = book.bids, book.asks
            body = self._book_body(symbol, update.snapshot, bids, asks, counts, ts)
            for client in l2:
                self._push_seq(client, body)
        after = (book.best_bid, book.bid_size, book.best_ask, book.ask_size)
        if after != before:
            tick = self._ticks[symbol]
            tick.bid = after[0]
            tick.bid_qty = after[1] if after[0] is not None else None
            tick.ask = after[2]
            tick.ask_qty = after[3] if after[2] is not None else None
            tick.ts = ts
            self._broadcast_tick(symbol, levels=(1, 2))

    def on_trade(self, trade: Trade) -> None:
        tick = self._ticks.get(trade.symbol)
        if tick is None:
            return
        price = trade.price
        tick.ltp = price
        tick.ltq = trade.qty
        tick.volume += trade.qty
        if tick.open is None:
            tick.open = price
        tick.high = price if tick.high is None or price > tick.high else tick.high
        tick.low = price if tick.low is None or price < tick.low else tick.low
        tick.ts = trade.ts
        self._traded[trade.symbol].add(price)
        self._broadcast_tick(trade.symbol, levels=(0, 1, 2))

    def on_instrument_status(self, status: InstrumentStatus) -> None:
        symbol = status.symbol
        tick = self._ticks.get(symbol)
        if tick is None:
            return
        changed = False
        if status.reference_price is not None and status.reference_price != tick.prev_close:
            tick.new_day(status.reference_price)  # a new trading day: volume and OHLC start again
            changed = True
        if status.closing_price is not None and status.closing_price != tick.close:
            tick.close = status.closing_price
            changed = True
        if changed:
            tick.ts = status.ts
            self._broadcast_tick(symbol, levels=(0, 1, 2))
        if status.halted is not None and status.halted != (symbol in self._halted):
            if status.halted:
                self._halted[symbol] = status.reason or "halted"
            else:
                self._halted.pop(symbol, None)
            if not self.extensions.symbol_status:
                return
            body = self._symbol_status(symbol, status.ts, status.halted, status.reason)
            for client in self._clients.values():
                if client.wants(symbol):
                    self._push(client, body)

    def on_session(self, state: SessionState) -> None:
        """The market phase (PSX-1 market_status): sent to every connection."""
        market = _MARKET_STATE.get(state.phase, "CLOSED")
        if market == self._market_state:
            return
        self._market_state = market
        if not self.extensions.market_status:
            return
        body = self._market_status(self.clock.now_ns())
        for client in self._clients.values():
            self._push(client, body)

    # ---- messages ------------------------------------------------------------------------
    def _book_body(self, symbol: str, snapshot: bool, bids: Iterable[tuple[Decimal, Decimal]],
                   asks: Iterable[tuple[Decimal, Decimal]],
                   counts: tuple[dict[Decimal, int], dict[Decimal, int]] | None, ts: int) -> str:
        """A book message without its closing brace; literal (no ``book_deltas``): no ``snapshot``
        field, the caller passes the whole book."""
        flag = f',"snapshot":{"true" if snapshot else "false"}' if self.extensions.book_deltas else ""
        return (f'{{"type":"book","symbol":{json.dumps(symbol)}{flag},'
                f'"bids":{_level_list(bids, counts and counts[0])},"asks":{_level_list(asks, counts and counts[1])},'
                f'"ts":"{_iso(ts)}"')

    def _market_status(self, ts: int) -> str:
        return f'{{"type":"market_status","state":"{self._market_state}","ts":"{_iso(ts)}"}}'

    def _symbol_status(self, symbol: str, ts: int, halted: bool, reason: str) -> str:
        """PSX-1 (our extension): a per-symbol market_status; HALT halts, OPEN lifts it."""
        state = "HALT" if halted else "OPEN"
        return (f'{{"type":"market_status","symbol":{json.dumps(symbol)},"state":"{state}",'
                f'"reason":{json.dumps(reason)},"ts":"{_iso(ts)}"}}')

    def _broadcast_tick(self, symbol: str, levels: tuple[int, ...]) -> None:
        tick = self._ticks[symbol]
        bodies: dict[bool, str] = {}
        for client in self._clients.values():
            if client.level in levels and client.wants(symbol):
                with_top = client.level > 0
                body = bodies.get(with_top)
                if body is None:
                    body = bodies[with_top] = tick.body(symbol, with_top, self.extensions)
                self._push_seq(client, body)

    def _order_body(self, symbol: str, action: str, order_id: str, side: Side | None, price: Decimal | None,
                    qty: Decimal | None, ts: int) -> str:
        parts = [f'{{"type":"order","symbol":{json.dumps(symbol)},"action":"{action}","order_id":"{order_id}"']
        if side is not None:
            parts.append(f',"side":"{_SIDE_CODE[side]}"')
        if price is not None:
            parts.append(f',"price":{_n(price)}')
        if qty is not None:
            parts.append(f',"qty":{_n(qty)}')
        parts.append(f',"ts":"{_iso(ts)}"')
        return "".join(parts)

    def _diff_orders(self, symbol: str, ts: int) -> list[str]:
        """L2 order details from the matching engine's resting orders: what changed since the last
        book update. A shrink or removal at a price that traded since then is an ``execute``."""
        assert self.order_source is not None
        before = self._orders[symbol]
        now = {oid: (side, price, qty) for oid, side, price, qty in self.order_source(symbol)}
        traded = self._traded[symbol]
        out: list[str] = []
        for oid, (side, price, qty) in before.items():
            current = now.get(oid)
            if current is None:
                action = "execute" if price in traded else "delete"
                out.append(self._order_body(symbol, action, oid, side, price if action == "execute" else None,
                                            qty if action == "execute" else None, ts))
            elif current != (side, price, qty):
                if current[1] == price and current[2] < qty and price in traded:
                    out.append(self._order_body(symbol, "execute", oid, side, price, qty - current[2], ts))
                else:
                    out.append(self._order_body(symbol, "modify", oid, side, current[1], current[2], ts))
        for oid, (side, price, qty) in now.items():
            if oid not in before:
                out.append(self._order_body(symbol, "add", oid, side, price, qty, ts))
        self._orders[symbol] = now
        traded.clear()
        return out

    def _counts(self, symbol: str) -> tuple[dict[Decimal, int], dict[Decimal, int]]:
        bids: dict[Decimal, int] = {}
        asks: dict[Decimal, int] = {}
        for side, price, _ in self._orders[symbol].values():
            counts = bids if side is Side.BUY else asks
            counts[price] = counts.get(price, 0) + 1
        return bids, asks

    def _snapshot(self, client: _Client, symbol: str) -> None:
        """Everything a new subscriber of ``symbol`` needs: the tick, and at L2 the whole book and
        every resting order (as ``add``)."""
        ts = self.clock.now_ns()
        tick = self._ticks[symbol]
        ext = self.extensions
        self._push_seq(client, tick.body(symbol, client.level > 0, ext))
        if client.level == 2:
            book = self._books[symbol]
            counts = self._counts(symbol) if self.order_source is not None and ext.order_counts else None
            self._push_seq(client, self._book_body(symbol, True, book.bids, book.asks, counts, ts))
            for oid, (side, price, qty) in self._orders[symbol].items():
                self._push_seq(client, self._order_body(symbol, "add", oid, side, price, qty, ts))
        if symbol in self._halted and ext.symbol_status:
            self._push(client, self._symbol_status(symbol, ts, True, self._halted[symbol]))

    # ---- per-connection queue ------------------------------------------------------------
    def _seq_suffix(self, client: _Client) -> str:
        """The next ``seq`` as a field (used up either way: a fault's lost message still takes
        its number), or nothing when the feed has no ``sequence_numbers``."""
        client.seq += 1
        return f',"seq":{client.seq}' if self.extensions.sequence_numbers else ""

    def _push_seq(self, client: _Client, body: str) -> None:
        client.seq += 1
        if client.skip:
            client.skip -= 1  # gap fault: this message is lost, its seq number with it
            self.stats["gap_lost"] += 1
            return
        self._push(client, f'{body},"seq":{client.seq}}}' if self.extensions.sequence_numbers else body + "}")

    def _push(self, client: _Client, item: str | Callable[[_Client], Awaitable[None]]) -> None:
        outbox = client.outbox
        if len(outbox) >= self.outbox_limit:
            log.warning("psx feed sandbox: connection %d is %d messages behind: closing it", client.ident, len(outbox))
            self.stats["slow_consumers"] += 1
            outbox.clear()
            self._spawn(client.ws.close(1008, "slow consumer"))
            return
        outbox.append(item)
        client.wake.set()

    async def _writer(self, client: _Client) -> None:
        loop = asyncio.get_running_loop()
        ws = client.ws
        outbox = client.outbox
        wake = client.wake
        try:
            while True:
                if not outbox:
                    wake.clear()
                    await wake.wait()
                    continue
                pause = client.stall_until - loop.time()
                if pause > 0:
                    await asyncio.sleep(pause)
                    continue
                item = outbox.popleft()
                if type(item) is str:
                    await ws.send(item)
                    client.sent += 1
                else:
                    await item(client)
        except ConnectionClosed:
            return

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- handshake and connection --------------------------------------------------------
    def _authorize(self, request: Request) -> tuple[str, int] | tuple[HTTPStatus, str]:
        """(token, level) for a good handshake, else (HTTP status, reason). PSX-2: bearer token in
        the Authorization header, or as the query parameter ``token`` (or ``access_token``)."""
        path, _, query = request.path.partition("?")
        level = LEVEL_OF_PATH.get(path)
        if level is None:
            return HTTPStatus.NOT_FOUND, f"no feed at {path}; paths: {', '.join(LEVEL_OF_PATH)}"
        if self._refuse_until > asyncio.get_running_loop().time():
            return HTTPStatus(self._refuse_status), "sandbox: refusing connections (injected fault)"
        token = ""
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if not token:
            params = dict(parse_qsl(query))
            token = params.get("token") or (params.get("access_token") if self.extensions.access_token_alias
                                             else None) or ""
        if not token:
            return HTTPStatus.UNAUTHORIZED, "missing bearer token (Authorization header or ?token=)"
        if token in self._expired:
            return HTTPStatus.UNAUTHORIZED, "token expired"
        allowed = self._tokens.get(token)
        if allowed is None:
            return HTTPStatus.UNAUTHORIZED, "invalid token"
        if level > allowed:
            return HTTPStatus.FORBIDDEN, f"token not entitled to {LEVEL_NAMES[level]} (has {LEVEL_NAMES[allowed]})"
        if self._per_token[token] >= self.max_connections_per_token and self.extensions.refuse_over_limit:
            # PSX-3: which connection the limit terminates is not said; the new one is refused
            return HTTPStatus.TOO_MANY_REQUESTS, (
                f"connection limit: {self.max_connections_per_token} concurrent connections per token"
            )
        return token, level

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.startswith("/sandbox/"):
            return self._control(connection, request)
        verdict = self._authorize(request)
        if isinstance(verdict[0], HTTPStatus):
            status, reason = verdict
            self.stats[f"refused_{int(status)}"] += 1
            return connection.respond(status, reason + "\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        verdict = self._authorize(ws.request)  # again: two handshakes may have raced past the cap
        if isinstance(verdict[0], HTTPStatus):
            self.stats["closed_1008"] += 1
            await ws.close(1008, str(verdict[1])[:120])
            return
        token, level = verdict
        if self._per_token[token] >= self.max_connections_per_token:
            # literal (no refuse_over_limit): 002's "connection termination", after the handshake
            self.stats["terminated_over_limit"] += 1
            await ws.close(1008, f"connection limit: {self.max_connections_per_token} concurrent connections per token")
            return
        self._per_token[token] += 1
        self._next_ident += 1
        client = _Client(self._next_ident, ws, token, level)
        self._clients[client.ident] = client
        self.stats["connections"] += 1
        writer = asyncio.ensure_future(self._writer(client))
        now = self.clock.now_ns()
        if self.extensions.welcome:
            self._push(client, f'{{"type":"welcome","level":"{LEVEL_NAMES[level]}","server_time":"{_iso(now)}"}}')
        if self.extensions.market_status:
            self._push(client, self._market_status(now))
        try:
            async for message in ws:
                self._on_request(client, message)
        except ConnectionClosed:
            pass
        finally:
            del self._clients[client.ident]
            self._per_token[token] -= 1
            if self._per_token[token] <= 0:
                del self._per_token[token]
            writer.cancel()

    def _on_request(self, client: _Client, message: str | bytes) -> None:
        try:
            request = _READ_JSON(message)
            action = request["action"]
            symbols = request.get("symbols", [])
            if isinstance(symbols, str):
                symbols = [symbols]
            if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                raise ValueError("symbols must be a list of strings")
        except (ValueError, KeyError, TypeError) as exc:
            self._answer(client, self._error("bad_request", f"cannot read request: {exc}", []))
            return
        if action == "subscribe":
            wanted = list(self._instruments) if "*" in symbols else symbols
            unknown = [s for s in wanted if s not in self._instruments]
            known = [s for s in wanted if s in self._instruments]
            if "*" in symbols:
                client.all = True
            client.symbols.update(known)
            self.stats["subscribes"] += 1
            if unknown:
                self._answer(client, self._error("unknown_symbol", "no such symbol", unknown))
            self._answer(client, self._subscribed(client))
            for symbol in known:
                self._snapshot(client, symbol)
        elif action == "unsubscribe":
            if "*" in symbols:
                client.all = False
                client.symbols.clear()
            client.symbols.difference_update(symbols)
            self._answer(client, self._subscribed(client))
        else:
            self._answer(client, self._error("bad_request", f"unknown action {action!r}", []))

    def _answer(self, client: _Client, message: str) -> None:
        """A ``subscribed`` or ``error`` answer: only with ``request_answers`` (PSX-1)."""
        if self.extensions.request_answers:
            self._push(client, message)

    def _subscribed(self, client: _Client) -> str:
        return '{"type":"subscribed","symbols":' + json.dumps(sorted(client.symbols)) + "}"

    @staticmethod
    def _error(code: str, message: str, symbols: list[str]) -> str:
        """PSX-1 (our extension): the document defines no error message."""
        return json.dumps({"type": "error", "code": code, "message": message, "symbols": symbols})

    # ---- faults --------------------------------------------------------------------------
    def _control(self, connection: ServerConnection, request: Request) -> Response:
        path, _, query = request.path.partition("?")
        if path == "/sandbox/status":
            return _json_response(connection, HTTPStatus.OK, self.status())
        if path != "/sandbox/fault":
            return _json_response(connection, HTTPStatus.NOT_FOUND, {"error": f"unknown control path {path}"})
        params = dict(parse_qsl(query))
        kind = params.pop("kind", "")
        try:
            result = self.inject(kind, **params)
        except (TypeError, ValueError) as exc:
            return _json_response(connection, HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        return _json_response(connection, HTTPStatus.OK, result)

    def inject(self, kind: str, **params: Any) -> dict[str, Any]:
        """Inject one fault now (see the module docstring). Returns what it did; ValueError for a
        kind the feed does not play or a parameter it does not take."""
        kind = canonical_kind(kind)
        check_supported(kind, "psx_feed", SUPPORTED_FAULTS)
        params = check_params(kind, params)
        clients = list(self._clients.values())
        self.stats[f"fault_{kind}"] += 1
        log.warning("psx feed sandbox: injecting %s %s", kind, {k: v for k, v in params.items() if k != "token"})
        if kind == "drop":
            for client in clients:
                client.ws.transport.abort()
        elif kind == "drop_mid_frame":
            for client in clients:
                self._push(client, self._half_frame)
        elif kind == "truncate":
            for client in clients:
                self._push(client, self._truncated)
        elif kind == "garbage":
            text = str(params.get("text", _GARBAGE))
            for client in clients:
                self._push(client, text)
        elif kind == "stall":
            until = asyncio.get_running_loop().time() + float(params.get("seconds", params.get("duration_s", 5)))
            for client in clients:
                client.stall_until = until
        elif kind == "gap":
            count = int(params.get("count", 1))
            for client in clients:
                client.skip += count
        elif kind == "expire_token":
            token = params.get("token")
            return {"kind": kind, "closed": self.expire_token(str(token) if token else None)}
        elif kind == "add_token":
            self.add_token(str(params["token"]), str(params.get("level", "L2")))
            return {"kind": kind}
        elif kind == "refuse":
            self._refuse_until = asyncio.get_running_loop().time() + float(params.get("seconds", 5))
            self._refuse_status = int(params.get("status", 503))
            HTTPStatus(self._refuse_status)  # ValueError for a status that does not exist
        elif kind == "burst":
            count = int(params.get("count", 10_000))
            symbol = params.get("symbol")
            for client in clients:
                target = symbol or next(iter(sorted(client.symbols)), None)
                if target in self._instruments:
                    self._push(client, _Burst(self, count, str(target)))
        elif kind == "badframe":
            frame_kind, count = params["frame"], params.get("count", 1)  # checked by check_params
            for client in clients:
                self._push(client, _BadFrames(self._bad_frames(client, frame_kind, count)))
        return {"kind": kind, "clients": len(clients)}

    def _bad_frames(self, client: _Client, kind: str, count: int) -> list[str | bytes]:
        """``count`` hostile frames of ``kind`` for ``client``, built now so a used-up seq takes its
        place among the messages queued around it. Only a ``truncated`` frame uses one: it is a real
        message cut short, so the client must see the gap; the others stand for no message."""
        symbol = next(iter(sorted(client.symbols)), next(iter(self._instruments)))
        name = json.dumps(symbol)
        type_list = '{"type":[]}'
        huge_number = f'{{"type":"tick","symbol":{name},"ltp":{HUGE_NUMBER}}}'
        frames = []
        for _ in range(count):
            good = self._ticks[symbol].body(symbol, client.level > 0, self.extensions)
            if kind == "truncated":
                good += self._seq_suffix(client)
            frames.append(bad_frame(kind, good + "}", type_list=type_list, huge_number=huge_number))
        self.stats[f"badframe_{kind}"] += count
        return frames

    async def _half_frame(self, client: _Client) -> None:
        """Half of a text frame's bytes, then the TCP connection closes (no close frame)."""
        symbol = next(iter(client.symbols), next(iter(self._instruments)))
        payload = (self._ticks[symbol].body(symbol, True, self.extensions) + self._seq_suffix(client) + "}").encode()
        size = len(payload)
        if size < 126:
            header = bytes([0x81, size])
        else:
            header = bytes([0x81, 126]) + size.to_bytes(2, "big")
        transport = client.ws.transport
        transport.write(header + payload[: size // 2])
        transport.close()  # flushes the half frame, then closes

    async def _truncated(self, client: _Client) -> None:
        """Half of a JSON message sent as a whole frame, then the socket drops."""
        symbol = next(iter(client.symbols), next(iter(self._instruments)))
        text = self._ticks[symbol].body(symbol, True, self.extensions) + self._seq_suffix(client) + "}"
        await client.ws.send(text[: len(text) // 2])
        client.ws.transport.close()


class _Burst:
    """Synthetic changes of one symbol sent back to back (a load test), then a true snapshot."""

    def __init__(self, server: FeedServer, count: int, symbol: str) -> None:
        self.server = server
        self.count = count
        self.symbol = symbol

    async def __call__(self, client: _Client) -> None:
        server = self.server
        symbol = self.symbol
        name = json.dumps(symbol)
        book = server._books[symbol]
        bid = book.best_bid or Decimal("100.00")
        ask = book.best_ask or bid + Decimal("0.01")
        send = client.ws.send
        ts = f'"{_iso(server.clock.now_ns())}"'
        ext = server.extensions
        flag = ',"snapshot":false' if ext.book_deltas else ""  # literal: a (one-level) whole book
        count = ",1" if ext.order_counts else ""
        board = ',"market":"REG"' if ext.board_field else ""
        for i in range(self.count):
            seq = server._seq_suffix(client)
            qty = 100 + (i % 50) * 100
            if client.level == 2:
                text = (f'{{"type":"book","symbol":{name}{flag},"bids":[[{_n(bid)},{qty}{count}]],'
                        f'"asks":[[{_n(ask)},{qty + 100}{count}]],"ts":{ts}{seq}}}')
            else:
                text = (f'{{"type":"tick","symbol":{name}{board},"bid":{_n(bid)},"bid_qty":{qty},'
                        f'"ask":{_n(ask)},"ask_qty":{qty + 100},"ts":{ts}{seq}}}')
            await send(text)
        client.sent += self.count
        server._snapshot(client, symbol)  # the truth again, after the synthetic changes


class _BadFrames:
    """Hostile frames (``badframe`` fault), sent in the client's queue order; a binary one too (the
    queue's plain items are text)."""

    def __init__(self, frames: list[str | bytes]) -> None:
        self.frames = frames

    async def __call__(self, client: _Client) -> None:
        for frame in self.frames:
            await client.ws.send(frame)
            client.sent += 1


def _json_response(connection: ServerConnection, status: HTTPStatus, body: Any) -> Response:
    response = connection.respond(status, json.dumps(body, default=str) + "\n")
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response


# --------------------------------------------------------------------------------------------
# Wiring to the paper venue (the session follower is shared: adapters/sim/sessions.py,
# re-exported here as ``SessionFollower``)


def paper_order_source(paper: Any) -> OrderSource:
    """The paper venue's resting orders of a symbol, for the L2 order details (read only)."""

    def source(symbol: str) -> list[tuple[str, Side, Decimal, Decimal]]:
        return [(str(o.order_id), o.side, o.price, o.leaves) for o in paper.matching_engine(symbol).resting_orders()]

    return source


# --------------------------------------------------------------------------------------------
# Command line

#: the broker document's holdings page (VENUES.md 1.12), prices as previous close
DEFAULT_INSTRUMENTS = (
    ("MEBL", "187.50"), ("SYS", "432.10"), ("ENGRO", "321.75"), ("OGDC", "109.30"), ("PSO", "75.12"), ("KEL", "102.50"),
)


def _feed_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags only this venue has: its tokens and the connection limit."""
    parser.add_argument("--token-env", default="PSX_FEED_TOKEN", metavar="NAME",
                        help="environment variable holding the accepted token (default PSX_FEED_TOKEN); unset: a "
                        "token is generated and printed")
    parser.add_argument("--token-file", type=Path, metavar="FILE",
                        help="file of accepted tokens, one a line; created with a random token if missing")
    parser.add_argument("--max-connections", type=at_least(1), default=DOCUMENT_CONNECTION_LIMIT, metavar="N",
                        help=f"concurrent connections per token (the document: {DOCUMENT_CONNECTION_LIMIT})")
    add_extension_arguments(parser, FeedExtensions)


def _tokens(args: argparse.Namespace, announce: bool = True) -> list[str]:
    """The accepted tokens: the file's (created with a random one if missing), the variable's, or
    a generated one (printed when ``announce``: how the user of a sandbox alone learns it)."""
    try:
        token = sandbox_secret(args.token_env, args.token_file, "feed token", lambda: secrets.token_urlsafe(24))
    except MissingSecret as exc:
        raise SandboxStartError(f"psx feed sandbox: {exc}") from None
    if token.source == "written":
        print(f"psx feed sandbox: wrote a new token to {args.token_file}", flush=True)
    elif token.source == "generated" and announce:
        # a throwaway token for a local sandbox: printing it is how the user learns it
        print(f"psx feed sandbox: no ${args.token_env} set; accepting the generated token {token.value}", flush=True)
    return token.value.splitlines()


def _instruments(args: argparse.Namespace) -> tuple[list[Instrument], Any]:
    """The instruments and session schedule: --config's, else the broker document's."""
    if args.config is None:
        from engine.venue.sessions import SessionSchedule

        return [Instrument(s, "PSX", previous_close=Decimal(p)) for s, p in DEFAULT_INSTRUMENTS], SessionSchedule()
    taken = venue_from_config(args.config, "psx_feed")
    return taken.instruments, taken.schedule


@contextlib.asynccontextmanager
async def _feed(args: argparse.Namespace, tokens: list[str]) -> AsyncIterator[FeedServer]:
    """The server on the simulated venue, following the session schedule (or always open), playing
    the scheduled ``--fault`` specs."""
    from adapters.sim.market import MarketOptions
    from adapters.sim.venue import SimVenue

    instruments, schedule = _instruments(args)
    clock, _text = sandbox_clock(args, schedule)
    server = FeedServer(instruments, clock, tokens, host=args.host, port=args.port,
                        max_connections_per_token=args.max_connections,
                        extensions=extensions_from_args(FeedExtensions, args))
    # the one simulated exchange (adapters/sim/venue.py); the feed listens to its book and tape
    sim = SimVenue("PSX", instruments, clock, market=MarketOptions(enabled=not args.no_market),
                   cancel_on_disconnect=False, seed=args.seed, listeners=(server,))
    server.order_source = paper_order_source(sim)
    try:
        await server.start()
    except OSError as exc:
        raise SandboxStartError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    sim.start()
    sim.subscribe_book([i.symbol for i in instruments])
    if args.always_open:
        sim.always_open(server.on_session)
    else:
        sim.follow_sessions(schedule, server.on_session)
    faults = FaultTimers(clock, lambda spec: server.inject(spec.kind, **spec.params), log)
    faults.arm(args.fault)
    try:
        yield server
    finally:
        faults.cancel()
        sim.stop()  # stops its session follower too
        await server.stop()


def _stopped_line(server: FeedServer) -> str:
    return f"psx feed sandbox: stopped; {json.dumps({k: v for k, v in server.stats.items() if v})}"


async def _serve(args: argparse.Namespace) -> int:
    async with _feed(args, _tokens(args)) as server:
        print(f"psx feed sandbox listening on {server.url} (paths {', '.join(LEVEL_OF_PATH)}); "
              f"faults: GET http://{args.host}:{server.port}/sandbox/fault?kind=drop", flush=True)
        print(f"psx feed sandbox: {extensions_line(server.extensions)}", flush=True)
        await until_stopped(args.duration)
    print(_stopped_line(server), flush=True)
    return 0


@contextlib.asynccontextmanager
async def _start(args: argparse.Namespace, config: Path) -> AsyncIterator[SandboxLink]:
    free_ports(args, COMMAND.ports)
    args.config = args.config or config
    tokens = _tokens(args, announce=False)
    async with _feed(args, tokens) as server:
        yield SandboxLink(
            clock=server.clock,
            adapter_options={"psx_feed": {"url": server.url, "token_env": args.token_env, "token_file": None}},
            environment={args.token_env: tokens[0]}, secret_values=frozenset(tokens),
            description=f"psx feed sandbox: {server.url}, clock {server.clock.describe()}",
            stopped=lambda: _stopped_line(server),
        )


def _fault_help() -> str:
    return (fault_help(SUPPORTED_FAULTS)
            + "\n  on request too: GET http://HOST:PORT/sandbox/fault?kind=KIND&key=value...; GET /sandbox/status")


COMMAND = VenueSandboxCommand(
    name="psx_feed",
    description="A local PSX Live Feed WebSocket server (market data only) on the simulated venue "
    "(adapters/sim/venue.py: matching engine and synthetic market); engine sandbox psx serves it together "
    "with the Optimus broker.",
    ports=(Port("port", 8765, "WebSocket"),),
    add_arguments=_feed_arguments,
    parse_fault=spec_reader("psx_feed", SUPPORTED_FAULTS),
    fault_syntax="SPEC = KIND[@WHEN[/EVERY]][,key=value...] of the one vocabulary (below), e.g. drop@30/60, "
    "gap@10,count=3, badframe@5/10,frame=deep",
    fault_help=_fault_help,
    serve_async=_serve,
    start=_start,
    seed=42,
    config_help="take the instruments and the session profile from this engine config (default: the broker "
    "document's six symbols and hours)",
)


def build_parser() -> argparse.ArgumentParser:
    """The flags of ``engine sandbox psx_feed`` (those of every sandbox and this venue's own)."""
    return COMMAND.build_parser()


#: ``python -m adapters.<venue>.sandbox ARGS``: the venue alone until Ctrl-C (exit 0); 2 for bad
#: arguments or a port that cannot be listened on
main = COMMAND.main


if __name__ == "__main__":
    sys.exit(main())
