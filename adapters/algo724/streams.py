"""Algo724 Cadenza streams over Centrifugo: the client side (issue 25, part 2).

Transport: centrifuge-python (the official, maintained Centrifugo client; JSON protocol). It owns
connect, the server's ping/pong, reconnect with backoff, token refresh and recovery by offset +
epoch. This module owns what the engine needs around it:

- **callbacks hand off at once.** The library awaits each event handler before it processes the
  next reply of its queue, and the server's pings wait in that same queue: a handler that did
  engine work would delay our pong, and a burst would get us disconnected ("no pong"). Every
  handler here only puts a tuple into an anyio memory stream (``send_nowait``: no await, no
  decode) and returns; :meth:`Algo724Streams.run` drains it in the engine's task group and does
  the decoding and the engine calls (:class:`StreamRouter`), taking what is queued without a
  loop trip per item. Past ``queue_size`` waiting publications the library is still never
  blocked: the publication is dropped and counted, its book resynced or its account reconciled
  over REST (nothing is lost silently); connection and subscription events are never dropped.
- **the JWT.** ``get_token`` (an async callable; the REST login's ``accessToken``) is asked at
  connect, again when the connect reply says ``expires`` (the library refreshes ``ttl`` seconds
  later with a ``refresh`` command), and after a "token expired" (109) refusal.
- **channels** (document 003): ``tradingAccount:{accountId}``, ``market:orderBook:{instrumentId}``
  and ``market:trade:{instrumentId}``, each subscribed ``recoverable``: after a reconnect the
  library sends ``recover`` with the last offset and epoch and the server replays what was missed.
  When it cannot (``was_recovering`` and not ``recovered``: another epoch, or the history is too
  short) ``on_recovery_failed("recovery failed for channel X")`` is called so the adapter
  reconciles over REST.
- **books** (ALG-3, :mod:`adapters.algo724.streams_codec`): the subscribe reply's ``data`` is a
  SNAPSHOT; DELTAs must follow by ``sequence`` + 1. A gap drops the book (strategies see no
  stale book) and resubscribes, which brings a fresh snapshot; older publications replayed by
  recovery are skipped by sequence. No publication on the market channels for ``stale_s`` ->
  ``stale``; data again -> ``connected``.
- **account**: ORDER publications go to the order adapter (:class:`OrderStream`: the REST path's
  own decoder, ALG-5 mapping and fill dedupe by ``executionId`` take them, as a poll answer);
  without an adapter :class:`EngineOrders` maps them to order updates and fills itself, with the
  same ALG-5 table. An update for a ``tradeOrderId`` the adapter has not bound yet (the stream
  beats the REST submit answer: the sandbox publishes SUBMITTED before it answers) is held and
  replayed by :meth:`StreamRouter.bind_order`. An order the venue calls UNKNOWN, or an account
  publication that cannot be read, is a reconciliation over REST.

Client caveats handled: the library's JSON codec parses with stdlib ``json`` (so numbers become
floats: the codec accepts only decimal strings) and stops for good ("bad protocol", no
reconnect) when a frame cannot be parsed or a handler raises: our handlers never raise, and a
terminal disconnect is answered by connecting again after a backoff. Its JSON mode sent an empty
``Sec-WebSocket-Protocol`` header before 0.7.0 (fixed there; the sandbox tolerates it anyway). It
logs its commands at DEBUG (connect and refresh carry the JWT): :data:`REDACT` scrubs them.
"""

from __future__ import annotations

import logging
import math
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableSet
from typing import Any, Protocol
from urllib.parse import urlsplit

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from centrifuge import (
    Client,
    ClientEventHandler,
    ConnectedContext,
    ConnectingContext,
    DisconnectedContext,
    ErrorContext,
    PublicationContext,
    SubscribedContext,
    SubscribingContext,
    Subscription,
    SubscriptionErrorContext,
    SubscriptionEventHandler,
    UnsubscribedContext,
)

from adapters.algo724.codec import STATUS
from adapters.algo724.streams_codec import (
    AccountNote,
    BookMessage,
    ExecutionMessage,
    OrderMessage,
    StreamCodecError,
    TradeMessage,
    account_channel,
    book_channel,
    decode,
    decode_book_snapshot,
    parse_channel,
    trade_channel,
)
from adapters.kit.backoff import Backoff
from adapters.kit.urls import is_loopback, refuse_clear_text
from engine.model import BookUpdate, Fill, OrderStatus, OrderUpdate, Side, Trade
from engine.venue import RedactingFilter, VenueEvents
from engine.venue.badinput import BadInput, kind_of, sample_of
from engine.venue.clock import Clock

__all__ = ["ALG5_STATUS", "Algo724Streams", "EngineOrders", "OrderStream", "StreamRouter"]

log = logging.getLogger("engine.algo724.streams")

#: the library logs its commands at DEBUG (connect and refresh carry the JWT) and websockets logs
#: the frames: the engine's one credential filter scrubs the token from both, by key and by value
REDACT = RedactingFilter(keys=("token",))
for _name in ("centrifuge", "websockets.client"):
    logging.getLogger(_name).addFilter(REDACT)

NS_PER_MS = 1_000_000
_SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}

#: ALG-5: document 003's 14 order statuses -> the engine's, the adapter codec's one table
ALG5_STATUS = STATUS
_BEFORE_FILLS = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})
_AFTER_FILLS = frozenset({OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED, OrderStatus.UNKNOWN})
#: queued items delivered in a row before the consumer lets the engine's other tasks run
YIELD_EVERY = 256
#: updates held for tradeOrderIds not bound yet, at most (oldest dropped first, counted)
MAX_HELD_ORDERS = 1000
#: executionIds remembered for deduplication when the adapter shares no set
MAX_SEEN_EXECUTIONS = 200_000


class _SeenExecutions(MutableSet[str]):
    """A bounded set of executionIds (oldest forgotten first): a day's fills, not a memory leak."""

    def __init__(self, limit: int = MAX_SEEN_EXECUTIONS) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def __iter__(self) -> Any:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, value: str) -> None:
        self._ids[value] = None
        if len(self._ids) > self._limit:
            self._ids.popitem(last=False)

    def discard(self, value: str) -> None:
        self._ids.pop(value, None)


class OrderStream(Protocol):
    """Where the account channel's order publications go. The order adapter implements it (its
    REST path's own state machine, ALG-5 mapping and executionId dedupe take them, exactly as a
    poll answer); without one the router's :class:`EngineOrders` maps them itself."""

    def stream_order(self, message: OrderMessage) -> bool:
        """An ORDER publication (``message.data`` is the validated Order object). False when its
        ``tradeOrderId`` is not bound to one of our orders yet: the router holds it."""

    def stream_execution(self, message: ExecutionMessage) -> bool:
        """An EXECUTION publication; False as above."""


class EngineOrders:
    """Order publications straight to engine events, for a stream used without the REST adapter
    (tests, tools): document 003's status by the adapter codec's one ALG-5 table
    (:data:`adapters.algo724.codec.STATUS`), fills deduplicated by ``executionId``."""

    def __init__(self, router: StreamRouter, seen_executions: MutableSet[str] | None = None) -> None:
        self.router = router
        self.client_ids: dict[str, str] = {}
        self.seen_executions: MutableSet[str] = seen_executions if seen_executions is not None else _SeenExecutions()

    def stream_order(self, m: OrderMessage) -> bool:
        client_id = self.client_ids.get(m.trade_order_id)
        if client_id is None:
            return False
        router = self.router
        status = ALG5_STATUS.get(m.status)
        if status is None:
            router.bad.record("malformed", f"order {m.trade_order_id}: status {m.status[:40]!r} not in document 003")
            return True
        ts = router.ts(m.updated_ms)
        sink = router.sink
        if status in _BEFORE_FILLS:
            sink.on_order_update(OrderUpdate(router.venue, client_id, OrderStatus.NEW, ts, m.trade_order_id))
        for execution in m.executions:
            self._fill(client_id, execution)
        if status in _AFTER_FILLS:
            sink.on_order_update(OrderUpdate(router.venue, client_id, status, ts, m.trade_order_id, reason=m.reason))
        return True

    def stream_execution(self, m: ExecutionMessage) -> bool:
        client_id = self.client_ids.get(m.trade_order_id)
        if client_id is None:
            return False
        self._fill(client_id, m)
        return True

    def _fill(self, client_id: str, e: ExecutionMessage) -> None:
        router = self.router
        if e.execution_id in self.seen_executions:
            router.count("duplicate_executions")
            return
        symbol = router.by_instrument.get(e.instrument_id)
        if symbol is None:
            router.count("unknown_instrument")
            return
        self.seen_executions.add(e.execution_id)
        # a fee in another asset than the quote (003 fees[] name the asset: BTC on BTC/USDT) is not
        # money in the engine's currency: the engine then charges its fee schedule instead
        quote = e.instrument_id.rpartition("/")[2]
        fee = e.fee if e.fee is not None and e.fee_asset in ("", quote) else None
        router.sink.on_fill(Fill(router.venue, symbol, client_id, e.trade_order_id, e.execution_id, _SIDES[e.side],
                                 e.price, e.qty, router.ts(e.ts_ms), fee=fee))
        router.count("fills")


class StreamRouter:
    """Sans-I/O: decoded stream events in, engine events out (``sink``). No socket, no library:
    the client's queue feeds it, and so do the unit tests and the benchmark.

    ``symbols`` maps the engine symbol to 003's ``instrumentId``. ``resync(instrument_id)`` is
    called on a sequence gap, ``reconcile(reason)`` when account state may have been missed.
    """

    def __init__(self, venue: str, symbols: dict[str, str], sink: VenueEvents, clock: Clock,
                 resync: Callable[[str], None], reconcile: Callable[[str], None],
                 orders: OrderStream | None = None, bad: BadInput | None = None) -> None:
        self.venue = venue
        self.sink = sink
        self.clock = clock
        self.resync = resync
        self.reconcile = reconcile
        self.by_instrument = {instrument_id: symbol for symbol, instrument_id in symbols.items()}
        self.bad = bad or BadInput(log, f"algo724 venue {venue} streams")
        self.engine_orders = EngineOrders(self)
        self.orders: OrderStream = orders if orders is not None else self.engine_orders
        self._held: OrderedDict[str, list[OrderMessage | ExecutionMessage]] = OrderedDict()
        #: instrumentId -> last applied sequence; None: no book (waiting for a snapshot)
        self.sequences: dict[str, int | None] = {}
        self.counts: dict[str, int] = {}

    def count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def ts(self, ms: int) -> int:
        """A venue time in ms as engine ns; the engine's clock when the venue gave none."""
        return ms * NS_PER_MS if ms else self.clock.now_ns()

    # ---- entry points --------------------------------------------------------------------
    def publication(self, channel: str, data: Any) -> None:
        """One publication's ``data``: decoded, checked, delivered. Never raises: a bad one is
        counted by kind and logged rate-limited (engine.venue.badinput)."""
        try:
            message = decode(channel, data)
        except StreamCodecError as exc:
            self.bad.record(kind_of(exc), str(exc), sample_of(repr(data)))
            self.count("bad")
            if channel.startswith("tradingAccount:"):  # an account update we could not read: ask REST
                self.reconcile(f"undecodable publication on channel {channel}")
            return
        self._deliver(message)

    def subscribed(self, channel: str, data: Any, was_recovering: bool, recovered: bool) -> None:
        """A subscribe reply: a book's snapshot (ALG-3) and the recovery verdict."""
        self.count("subscribed")  # replies handled (the client then knows each channel's position)
        try:
            kind, key = parse_channel(channel)
        except StreamCodecError:
            return
        if was_recovering and not recovered:
            self.count("recovery_failed")
            log.warning("algo724 venue %s: recovery failed for channel %s", self.venue, channel)
            self.reconcile(f"recovery failed for channel {channel}")
        elif was_recovering:
            self.count("recovered")
        if kind != "book":
            return
        if data is None:
            self.sequences[key] = None  # wait for a SNAPSHOT publication
            return
        try:
            snapshot = decode_book_snapshot(key, data)
        except StreamCodecError as exc:
            self.bad.record(kind_of(exc), f"subscribe data of {channel}: {exc}", sample_of(repr(data)))
            self.sequences[key] = None
            return
        self._book(snapshot)

    def lost(self, channel: str) -> None:
        """The subscription is gone until resubscribed: its book is not trusted meanwhile (the
        resubscribe's snapshot or recovery decides)."""
        if channel.startswith("market:orderBook:"):
            self.count("books_suspended")

    def bind_order(self, trade_order_id: str, client_id: str) -> None:
        """The REST submit answer's ``tradeOrderId`` is our ``client_id`` (ALG-4: the Order object
        carries no clientOrderId): replays what the stream said about it before we knew."""
        self.engine_orders.client_ids[trade_order_id] = client_id
        held = self._held.pop(trade_order_id, None)
        for message in held or ():
            self._deliver(message)

    # ---- delivery ------------------------------------------------------------------------
    def _deliver(self, message: Any) -> None:
        kind = type(message)
        if kind is BookMessage:
            self._book(message)
        elif kind is TradeMessage:
            self._trade(message)
        elif kind is OrderMessage:
            self._order(message)
        elif kind is ExecutionMessage:
            self._execution(message)
        elif kind is AccountNote:
            self.count("account_notes")

    def _book(self, m: BookMessage) -> None:
        symbol = self.by_instrument.get(m.instrument_id)
        if symbol is None:
            self.count("unknown_instrument")
            return
        last = self.sequences.get(m.instrument_id)
        if m.snapshot:
            if last is not None and m.sequence <= last:
                self.count("stale_snapshot")
                return
        elif last is None:
            self.count("awaiting_snapshot")
            return
        elif m.sequence <= last:
            self.count("duplicate")  # replayed by recovery after the snapshot covered it
            return
        elif m.sequence != last + 1:
            self.count("gaps")
            log.warning("algo724 venue %s: book %s sequence gap (expected %d, got %d): resyncing", self.venue,
                        m.instrument_id, last + 1, m.sequence)
            self.sequences[m.instrument_id] = None
            self.sink.on_book(BookUpdate(self.venue, symbol, self.ts(m.ts_ms), m.sequence, (), snapshot=True))
            self.resync(m.instrument_id)
            return
        self.sequences[m.instrument_id] = m.sequence
        changes = [(Side.BUY, p, q) for p, q in m.bids]
        changes.extend((Side.SELL, p, q) for p, q in m.asks)
        self.sink.on_book(BookUpdate(self.venue, symbol, self.ts(m.ts_ms), m.sequence, tuple(changes),
                                     snapshot=m.snapshot))

    def _trade(self, m: TradeMessage) -> None:
        symbol = self.by_instrument.get(m.instrument_id)
        if symbol is None:
            self.count("unknown_instrument")
            return
        self.sink.on_trade(Trade(self.venue, symbol, self.ts(m.ts_ms), m.price, m.qty, _SIDES[m.side], m.trade_id))

    def _hold(self, trade_order_id: str, message: OrderMessage | ExecutionMessage) -> None:
        held = self._held.get(trade_order_id)
        if held is None:
            held = self._held[trade_order_id] = []
            if len(self._held) > MAX_HELD_ORDERS:
                self._held.popitem(last=False)
                self.count("held_dropped")
        if len(held) < 64:
            held.append(message)
        self.count("held")

    def _order(self, m: OrderMessage) -> None:
        if not self.orders.stream_order(m):
            self._hold(m.trade_order_id, m)
        elif m.status in ("", "UNKNOWN"):  # ALG-5: the venue itself does not know: ask REST
            self.reconcile(f"order {m.trade_order_id} status {m.status or 'empty'}")

    def _execution(self, m: ExecutionMessage) -> None:
        if not self.orders.stream_execution(m):
            self._hold(m.trade_order_id, m)



# --------------------------------------------------------------------------------------------
# The library's callbacks: each only queues (never awaits, never decodes, never raises)


class _Events(ClientEventHandler):
    def __init__(self, owner: Algo724Streams) -> None:
        self.owner = owner

    async def on_connected(self, ctx: ConnectedContext) -> None:
        self.owner._put(("connected", ctx.client))

    async def on_connecting(self, ctx: ConnectingContext) -> None:
        self.owner._put(("connecting", f"{ctx.code} {ctx.reason}"))

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        self.owner._put(("disconnected", f"{ctx.code} {ctx.reason}"))

    async def on_error(self, ctx: ErrorContext) -> None:
        self.owner.errors += 1
        self.owner.last_error = f"{ctx.code}: {type(ctx.error).__name__}: {str(ctx.error)[:200]}"


class _SubEvents(SubscriptionEventHandler):
    def __init__(self, owner: Algo724Streams, channel: str) -> None:
        self.owner = owner
        self.channel = channel

    async def on_publication(self, ctx: PublicationContext) -> None:
        self.owner._put(("pub", self.channel, ctx.pub.data))

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        self.owner._put(("subscribed", self.channel, ctx.data, ctx.was_recovering, ctx.recovered))

    async def on_subscribing(self, ctx: SubscribingContext) -> None:
        self.owner._put(("subscribing", self.channel))

    async def on_unsubscribed(self, ctx: UnsubscribedContext) -> None:
        self.owner._put(("unsubscribed", self.channel, f"{ctx.code} {ctx.reason}"))

    async def on_error(self, ctx: SubscriptionErrorContext) -> None:
        self.owner.errors += 1
        self.owner.last_error = f"{self.channel}: {ctx.code}: {type(ctx.error).__name__}"


TokenProvider = Callable[[], Awaitable[str]]


class Algo724Streams:
    """One Centrifugo connection for one trading account: its account channel and the book and
    trade channels of ``symbols`` (engine symbol -> instrumentId). ``await run()`` in the engine's
    task group (``adapter.start_task(streams.run)``); ``await close()`` ends it."""

    def __init__(
        self,
        venue: str,
        url: str,
        account_id: str,
        symbols: dict[str, str],
        sink: VenueEvents,
        clock: Clock,
        get_token: TokenProvider,
        *,
        on_recovery_failed: Callable[[str], None] | None = None,
        report: Callable[[str, str], None] | None = None,
        orders: OrderStream | None = None,
        queue_size: int = 10_000,
        stale_s: float = 30.0,
        timeout_s: float = 5.0,
        max_server_ping_delay_s: float = 10.0,
        reconnect_min_s: float = 0.1,
        reconnect_max_s: float = 20.0,
        client_name: str = "psx-strategy-engine",
        seed: int = 0,
    ) -> None:
        refuse_clear_text(url, "streams url", "the access token")
        self.venue = venue
        self.url = url
        self.account_id = account_id
        self.symbols = dict(symbols)
        self.sink = sink
        self.stale_s = stale_s
        self._report_status = report or (lambda status, detail: sink.on_venue_status(venue, status, detail))
        self._on_recovery_failed = on_recovery_failed or (lambda reason: None)
        self.bad = BadInput(log, f"algo724 venue {venue} streams")
        self._account = account_channel(account_id) if account_id else ""
        self.router = StreamRouter(venue, self.symbols, sink, clock, self._resync_later, self._reconcile,
                                   orders, self.bad)
        self._send: MemoryObjectSendStream[tuple[Any, ...]]
        self._receive: MemoryObjectReceiveStream[tuple[Any, ...]]
        # unbounded as a stream: the bound is on publications alone (``_put``), so a connection or
        # subscription event (a snapshot, a recovery verdict, a disconnect) is never the one dropped
        self._send, self._receive = anyio.create_memory_object_stream(max_buffer_size=math.inf)
        self.queue_size = queue_size
        self._waiting = 0  # publications queued, not yet taken
        host = urlsplit(url).hostname or ""

        async def token() -> str:
            value = await get_token()
            REDACT.remember(value)
            return value

        self.client = Client(
            url, events=_Events(self), get_token=token, name=client_name, timeout=timeout_s,
            max_server_ping_delay=max_server_ping_delay_s, min_reconnect_delay=reconnect_min_s,
            max_reconnect_delay=reconnect_max_s, proxy=None if is_loopback(host) else True,
        )
        self._backoff = Backoff(max(reconnect_min_s, 0.05), reconnect_max_s, random.Random(seed))
        self._subs: dict[str, Subscription] = {}
        self._resyncing: set[str] = set()
        self._overflowed: set[str] = set()
        self._closed = False
        self._stale = False
        self._was_connected = False
        self._account_live = False  # the account channel subscribed and delivering (see account_live)
        self._tg: TaskGroup | None = None
        # counters
        self.queued = 0
        self.dropped = 0
        self.errors = 0
        self.last_error = ""
        self.connects = 0
        self.terminal_disconnects = 0
        self.sink_errors = 0

    # ---- channels ------------------------------------------------------------------------
    def channels(self) -> list[str]:
        out = [account_channel(self.account_id)] if self.account_id else []
        for instrument_id in self.symbols.values():
            out.append(book_channel(instrument_id))
            out.append(trade_channel(instrument_id))
        return out

    def account_live(self) -> bool:
        """True while the account channel is subscribed on a live connection: each order change
        then arrives as it happens, and the adapter's REST poll can slow to a safety net. A lost
        connection, an unsubscription or a resubscribe makes it False until the channel is
        subscribed again (whose recovery verdict reconciles what was missed); a publication dropped
        on a full queue leaves it True and reconciles the account at once instead."""
        return self._account_live and not self._closed

    def bind_order(self, trade_order_id: str, client_id: str) -> None:
        """See :meth:`StreamRouter.bind_order` (the adapter calls it with each submit answer)."""
        self.router.bind_order(trade_order_id, client_id)

    def stats(self) -> dict[str, int]:
        return {"queued": self.queued, "dropped": self.dropped, "errors": self.errors, "connects": self.connects,
                "terminal_disconnects": self.terminal_disconnects, "sink_errors": self.sink_errors,
                **self.router.counts}

    # ---- the hand-off ----------------------------------------------------------------------
    def _put(self, item: tuple[Any, ...]) -> None:
        """From the library's read loop: queue and return. Past ``queue_size`` waiting
        publications one is dropped and its channel marked, which the consumer resyncs (book) or
        reconciles (account); connection and subscription events always go in, in order."""
        if item[0] == "pub":
            if self._waiting >= self.queue_size:
                self.dropped += 1
                self._overflowed.add(item[1])
                return
            self._waiting += 1
        try:
            self._send.send_nowait(item)
            self.queued += 1
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    # ---- running -------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, subscribe every channel, and deliver until :meth:`close`."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            for channel in self.channels():
                sub = self.client.new_subscription(channel, events=_SubEvents(self, channel), recoverable=True)
                self._subs[channel] = sub
                await sub.subscribe()  # registers the intent; sent once connected (and again on reconnects)
            await self.client.connect()
            await self._consume()
            tg.cancel_scope.cancel()

    async def close(self) -> None:
        """Disconnect and end :meth:`run`. Never raises."""
        self._closed = True
        try:
            await self.client.disconnect()
        except Exception:  # the library's teardown: nothing of ours to save
            log.debug("algo724 streams: disconnect raised", exc_info=True)
        self._send.close()
        self.bad.flush()

    async def _consume(self) -> None:
        """Deliver what the callbacks queued. What is already queued is taken without a trip
        through the event loop (``receive_nowait``; a burst costs one wake-up, not one per
        publication), yielding every ``YIELD_EVERY`` items so the engine's other tasks run."""
        router = self.router
        receive = self._receive
        stale_s = self.stale_s if math.isfinite(self.stale_s) else None
        taken = 0
        while True:
            item: tuple[Any, ...] | None = None
            try:
                item = receive.receive_nowait()
                taken += 1
                if taken % YIELD_EVERY == 0:
                    await anyio.lowlevel.checkpoint()
            except anyio.WouldBlock:
                with anyio.move_on_after(stale_s):
                    try:
                        item = await receive.receive()
                    except anyio.EndOfStream:
                        return
            except anyio.EndOfStream:
                return
            if item is None:
                self._silence()
                continue
            kind = item[0]
            try:
                if kind == "pub":
                    self._waiting -= 1
                    if self._stale:
                        self._stale = False
                        self._report_status("connected", "stream data flowing again")
                    router.publication(item[1], item[2])
                elif kind == "subscribed":
                    if item[1] == self._account:
                        self._account_live = True
                    if self._stale and item[2] is not None:  # a snapshot: data again
                        self._stale = False
                        self._report_status("connected", "stream data flowing again")
                    self._resyncing.discard(item[1])
                    router.subscribed(item[1], item[2], item[3], item[4])
                else:
                    await self._lifecycle(item)
            except Exception:  # the engine raised on an event: counted, logged once, the stream goes on
                self.sink_errors += 1
                if self.sink_errors == 1:
                    log.exception("algo724 venue %s: the engine raised on a stream event (counted; logged once)",
                                  self.venue)
            if self._overflowed:
                self._after_overflow()

    def _silence(self) -> None:
        if not self._stale and self._was_connected and len(self._subs) > 1:
            self._stale = True
            self._report_status("stale", f"no stream publication for {self.stale_s:g} s")

    async def _lifecycle(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind in ("connecting", "disconnected") or (kind in ("subscribing", "unsubscribed") and
                                                     item[1] == self._account):
            self._account_live = False
        if kind == "connected":
            self.connects += 1
            self._backoff.reset()
            if self._was_connected or self._stale:
                self._stale = False
                self._report_status("connected", "stream reconnected")
            self._was_connected = True
        elif kind == "connecting":
            if self._was_connected and not self._stale:
                self._stale = True
                self._report_status("stale", f"stream lost ({item[1]}); reconnecting")
        elif kind == "disconnected":
            if self._closed:
                return
            # terminal for the library (bad protocol, unauthorized): we try again, with backoff
            self.terminal_disconnects += 1
            delay = self._backoff.next_delay()
            log.warning("algo724 venue %s: stream stopped (%s); connecting again in %.1f s", self.venue, item[1], delay)
            self._stale = True
            self._report_status("stale", f"stream stopped ({item[1]})")
            self._later(self._reconnect_after, delay)
        elif kind == "subscribing":
            self.router.lost(item[1])
        elif kind == "unsubscribed":
            channel = item[1]
            if channel in self._resyncing or self._closed:
                return
            log.warning("algo724 venue %s: server unsubscribed %s (%s); subscribing again", self.venue, channel,
                        item[2])
            sub = self._subs.get(channel)
            if sub is not None:
                self._later(sub.subscribe)

    def _later(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn`` beside the consumer; one that raises is logged and ends alone (the library's
        calls can raise on a connection that just ended), never taking :meth:`run` with it."""
        if self._tg is not None:
            self._tg.start_soon(self._guarded, fn, args)

    async def _guarded(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        try:
            await fn(*args)
        except Exception:
            log.exception("algo724 venue %s: stream task %s failed", self.venue, getattr(fn, "__name__", fn))
            if fn == self._resubscribe and args:
                self._resyncing.discard(args[0])  # the next gap asks again

    async def _reconnect_after(self, delay: float) -> None:
        await anyio.sleep(delay)
        if not self._closed:
            # a refused token (101 "unauthorized") is never offered again: "" makes the library ask
            # get_token (the adapter's REST login) for a fresh one on this connect
            self.client.set_token("")
            await self.client.connect()

    def _resync_later(self, instrument_id: str) -> None:
        """A sequence gap: resubscribe the book (its reply carries a fresh snapshot)."""
        channel = book_channel(instrument_id)
        if channel in self._resyncing or self._tg is None:
            return
        self._resyncing.add(channel)
        self._later(self._resubscribe, channel)

    async def _resubscribe(self, channel: str) -> None:
        sub = self._subs.get(channel)
        if sub is None:
            return
        await sub.unsubscribe()
        await sub.subscribe()

    def _reconcile(self, reason: str) -> None:
        self._on_recovery_failed(reason)

    def _after_overflow(self) -> None:
        channels, self._overflowed = self._overflowed, set()
        for channel in channels:
            log.warning("algo724 venue %s: stream queue full, publications of %s dropped", self.venue, channel)
            try:
                kind, key = parse_channel(channel)
            except StreamCodecError:
                continue
            if kind == "book":
                self.router.sequences[key] = None
                self._resync_later(key)
            elif kind == "account":
                self._reconcile(f"recovery failed for channel {channel} (stream queue overflow)")

