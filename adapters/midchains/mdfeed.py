"""MidChains FIX market data, sans I/O: the gateway's application messages in (in sequence order,
as the session delivers them), the engine's :class:`~engine.model.BookUpdate` and
:class:`~engine.model.Trade` out. The adapter (:mod:`.marketdata`) only carries them between the
FIX link and the engine, so every decision below is a plain function call in a test.

Decisions where document 001 is silent (MID-14 and the venue notes 3.2, 3.4):

- **A logon starts a fresh book.** 001: "After you connect to a market data session you will
  automatically receive msg type X and W for all available trading pairs"; there is no snapshot
  message and no MarketDataRequest. So at each connection every book is emptied and rebuilt from
  the ``X`` New groups the gateway sends for the resting orders (as the WebSocket book does, MID-7).
- **When a book is whole** (nothing marks the end of that burst): a symbol's book is published
  (a snapshot ``BookUpdate``) once no ``X`` touched it for ``settle_ns`` after it got at least one,
  or ``settle_max_ns`` after the logon at the latest (an empty book, or a gateway that sends
  nothing for it). Until then its ``X`` are applied to the L3 book but not published. ``W`` does
  not end it (it may come before the ``X`` burst); a ``W`` whose bid or offer differs from the
  derived top of a whole book is counted (``top_mismatch``), not acted on (001 does not say when
  ``W`` is sent relative to ``X``).
- **What came before this logon is not this book's.** A gateway that replays, for our
  ResendRequest, the messages it numbered before the drop sends them with PossDupFlag ``43=Y``
  before its fresh burst; every ``43=Y`` message up to the first one without it is skipped
  (counted ``replayed_skipped``). A ``43=Y`` message later (the fill of a gap in this connection)
  is applied: the session delivers it in order.
- **A gap the gateway gap-fills is invisible here.** FIX lets a gateway answer a ResendRequest for
  market data with SequenceReset-GapFill instead of the messages; the session then moves on and
  tells nobody, and the deltas are lost. The sandbox replays them (as 001's gateway does for order
  entry); against a gateway that gap-fills, the next Delete of a lost order (``unknown_id``) or New
  of a reused id (``duplicate_id``) or a crossed book shows it, and the resync below follows. The
  session would have to report a GapFill over application messages to close this.
- **Inconsistency means resync**: a malformed ``X`` naming a tracked symbol (or no symbol), a
  Delete of an unknown id, a New for a held id, a Delete on the wrong side, a crossed book, a sum
  that cannot be held exactly: counted by kind, every book stops being published, and
  :attr:`MdFeed.resync_reason` tells the adapter to log on again (which starts fresh books).
- **Symbols**: the gateway sends every pair. The books of the ``tracked`` symbols (the venue's
  configured instruments, and any subscribed) are kept; groups of other symbols are skipped before
  their numbers are read. Only subscribed symbols are published. Subscribing a symbol that was not
  tracked on a live connection asks for a resync (its orders so far were not kept).
- **Trades**: ``269=2`` in ``X`` is a public trade print, published as a :class:`Trade` (no
  aggressor side: the document gives none; ``trade_id`` is its ``278``). ``269=2`` in ``W`` is the
  last trade (MID-14), kept in :attr:`MdFeed.last_trade`; it is published only with
  ``w_trades=True`` (a gateway that prints trades only through ``W``), since with ``X`` prints it
  would be the same trade twice.
- **Y** (Market Data Request Reject): counted and its reason kept; 001 says "268 Text", the
  standard says ``58`` (``281`` the reason code): ``58`` is read, then ``268``, then ``281``.
- ``262`` MDReqID is ignored (MID-14: always ``0``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from adapters.midchains.codec import FixMessage
from adapters.midchains.l3book import BookError, L3Book, Print, TopOfBook, parse_incremental, parse_snapshot
from engine.model import BookUpdate, Side, Trade

__all__ = ["MdFeed", "Refused"]

Event = BookUpdate | Trade

#: the counter of each message type, named once (not an f-string per message)
_COUNTER_IN = {"X": "in_X", "W": "in_W", "Y": "in_Y"}


@dataclass(frozen=True, slots=True)
class Refused:
    """Something the feed could not use: the :mod:`engine.venue.badinput` (or book) kind, the
    reason, and whether the books were given up for it."""

    kind: str
    reason: str
    resync: bool


class MdFeed:
    """The books and the mapping of one market-data connection after another (see the module
    docstring). Call :meth:`start` before each connection, :meth:`logged_on` at its logon,
    :meth:`on_message` for each application message, :meth:`tick` by :meth:`next_deadline`."""

    def __init__(self, venue: str, tracked: Iterable[str], settle_ns: int, settle_max_ns: int,
                 w_trades: bool = False) -> None:
        self.venue = venue
        self.tracked: set[str] = set(tracked)
        self.subscribed: set[str] = set()
        self.settle_ns = settle_ns
        self.settle_max_ns = settle_max_ns
        self.w_trades = w_trades
        self.book = L3Book()
        self.whole: set[str] = set()
        self.started = False
        self.resync_reason: str | None = None
        self.counters: Counter[str] = Counter()
        self.refused: list[Refused] = []  # what the adapter has not yet counted and logged
        self.last_trade: dict[str, Print] = {}
        self.top: dict[str, TopOfBook] = {}
        self._since_ns: int | None = None
        self._last_x_ns: dict[str, int] = {}
        self._replaying = True

    # ---- connection life ---------------------------------------------------------------------
    def start(self) -> None:
        """A new connection is coming: empty books, none whole, the previous connection's replay to
        be skipped. The settle clock starts at :meth:`logged_on` or the first message."""
        self.book.clear()
        self.whole.clear()
        self._last_x_ns.clear()
        self._since_ns = None
        self._replaying = True
        self.resync_reason = None
        self.started = True

    def logged_on(self, now_ns: int) -> None:
        """The session is logged on (if no message came first): the longest settle counts from now."""
        if self._since_ns is None:
            self._since_ns = now_ns

    def stop(self) -> None:
        """The connection is gone: nothing is whole until the next logon's books settle."""
        self.whole.clear()
        self.started = False

    @property
    def settled(self) -> bool:
        """Every tracked book is whole (the adapter reports ``connected`` only then)."""
        return self.started and self.resync_reason is None and self.tracked <= self.whole

    def subscribe(self, symbols: Iterable[str], now_ns: int) -> list[Event]:
        """Publish these symbols from now on: a snapshot of each whole book at once."""
        events: list[Event] = []
        for symbol in symbols:
            if symbol in self.subscribed:
                continue
            self.subscribed.add(symbol)
            if symbol not in self.tracked:
                self.tracked.add(symbol)
                if self.started:
                    self._resync(Refused("untracked", f"{symbol} subscribed after the logon: its orders so far "
                                                      "were not kept", True))
            elif symbol in self.whole:
                events.append(self._snapshot(symbol, now_ns))
        return events

    def tick(self, now_ns: int) -> list[Event]:
        """Books whose burst has settled become whole: a snapshot for each subscribed one."""
        if not self.started or self.resync_reason is not None or self._since_ns is None:
            return []
        events: list[Event] = []
        for symbol in self.tracked - self.whole:
            if now_ns >= self._whole_at(symbol):
                self.whole.add(symbol)
                if symbol in self.subscribed:
                    events.append(self._snapshot(symbol, now_ns))
        return events

    def next_deadline(self) -> int | None:
        if not self.started or self.resync_reason is not None or self._since_ns is None:
            return None
        pending = self.tracked - self.whole
        return min((self._whole_at(symbol) for symbol in pending), default=None)

    def _whole_at(self, symbol: str) -> int:
        latest = (self._since_ns or 0) + self.settle_max_ns
        last = self._last_x_ns.get(symbol)
        return latest if last is None else min(latest, last + self.settle_ns)

    # ---- messages --------------------------------------------------------------------------
    def on_message(self, message: FixMessage, now_ns: int) -> list[Event]:
        """One application message, in sequence order."""
        msg_type = message.msg_type
        self.counters[_COUNTER_IN.get(msg_type, "in_other")] += 1
        if self._since_ns is None:
            self._since_ns = now_ns
        if self._replaying:
            if message.get(43) == "Y":
                self.counters["replayed_skipped"] += 1
                return []
            self._replaying = False
        if not self.started or self.resync_reason is not None:
            self.counters["skipped_resyncing"] += 1
            return []
        if msg_type == "X":
            return self._on_incremental(message, now_ns)
        if msg_type == "W":
            return self._on_top(message, now_ns)
        if msg_type == "Y":
            reason = message.get(58) or message.get(268) or message.get(281) or "no reason given"
            self._refuse(Refused("md_reject", f"Market Data Request Reject (262={message.get(262)}): {reason}", False))
        else:
            self.counters["ignored"] += 1  # 001: a message not in the document is ignored
        return []

    def _on_incremental(self, message: FixMessage, now_ns: int) -> list[Event]:
        tracked = self.tracked
        try:
            entries = parse_incremental(message, tracked.__contains__)
            if not entries:
                self.counters["untracked_dropped"] += 1
                return []
            changes, prints = self.book.apply(entries)
        except BookError as exc:
            if exc.symbol is not None and exc.symbol not in tracked:
                self.counters["untracked_dropped"] += 1  # not a book we keep: nothing of ours was lost
                return []
            self._resync(Refused(exc.kind, str(exc), True)) if exc.resync else self._refuse(
                Refused(exc.kind, str(exc), False))
            return []
        seq = _seq(message)
        events: list[Event] = []
        subscribed = self.subscribed
        whole = self.whole
        for symbol, levels in changes.items():
            if symbol not in whole:  # the settle timer reads it only for a book still building
                self._last_x_ns[symbol] = now_ns
            elif levels and symbol in subscribed:
                events.append(BookUpdate(self.venue, symbol, now_ns, seq, tuple(levels)))
        for trade in prints:
            self.last_trade[trade.symbol] = trade
            if trade.symbol in subscribed:
                events.append(Trade(self.venue, trade.symbol, now_ns, trade.price, trade.qty, None, trade.trade_id))
        return events

    def _on_top(self, message: FixMessage, now_ns: int) -> list[Event]:
        try:
            top = parse_snapshot(message)
        except BookError as exc:
            if exc.symbol is None or exc.symbol in self.tracked:
                self._refuse(Refused(exc.kind, str(exc), False))
            return []
        symbol = top.symbol
        if symbol not in self.tracked:
            self.counters["untracked_dropped"] += 1
            return []
        self.top[symbol] = top
        if symbol in self.whole:
            book = self.book.book(symbol)
            for stated, side, best in ((top.bid, Side.BUY, book.best_bid), (top.offer, Side.SELL, book.best_ask)):
                if stated is not None and (stated[0] != best or stated[1] != book.levels[side].get(best)):
                    self.counters["top_mismatch"] += 1
        if top.last is None:
            return []
        self.last_trade[symbol] = top.last
        if self.w_trades and symbol in self.subscribed:
            last = top.last
            return [Trade(self.venue, symbol, now_ns, last.price, last.qty, None, last.trade_id or f"W{_seq(message)}")]
        return []

    # ---- helpers ---------------------------------------------------------------------------
    def _snapshot(self, symbol: str, now_ns: int) -> BookUpdate:
        changes = self.book.book(symbol).snapshot_changes()
        return BookUpdate(self.venue, symbol, now_ns, 0, changes, snapshot=True)

    def _refuse(self, refused: Refused) -> None:
        self.counters[f"refused_{refused.kind}"] += 1
        self.refused.append(refused)

    def _resync(self, refused: Refused) -> None:
        """The books may now differ from the venue's: stop publishing until the next logon."""
        self._refuse(refused)
        if self.resync_reason is None:
            self.resync_reason = refused.reason
            self.counters["resyncs"] += 1
        self.whole.clear()

    def take_refused(self) -> list[Refused]:
        """What was refused since the last call (the adapter counts and logs it)."""
        refused, self.refused = self.refused, []
        return refused


def _seq(message: FixMessage) -> int:
    text = message.get(34) or ""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 12 else 0
