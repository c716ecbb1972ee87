"""MidChains FIX market data as an order-level (L3) book, with the L2 book the engine wants derived
from it change by change. Pure: messages in, level changes and trade prints out, no I/O, no clock.

What the document gives (001 "FIX Market Data"; VENUES.md 2.7, MID-14; venue-notes 3.2): an
Incremental Refresh ``X`` carries ``268`` groups, each starting with ``279`` MDUpdateAction (only
``0`` New and ``2`` Delete exist, so a change arrives as a Delete then a New), ``269`` MDEntryType
(``0`` bid, ``1`` offer, ``2`` trade print), ``278`` MDEntryID (the order's id), ``55`` Symbol,
``65`` SymbolSfx, ``270`` price, ``271`` size as a plain decimal (never scaled by a FractionBase),
``58`` "Order ID reference" (read for a print's id when 278 is absent; not kept for orders).

Why an L3 book and not the sizes as sent: ``X`` names orders, not levels; a level's size is the sum
of the orders resting at its price. Every order change moves one level by exactly the order's size
(:data:`_EXACT` traps any rounding), so a message costs O(groups), never a rebuild, and a level
disappears when its last order goes: sizes are positive and summed exactly, so a level's sum is
zero exactly then (no order count per level is kept).

Decisions where the document is silent (MID-14 unless said otherwise):

- ``279`` must be the first field of every group (the document says so); a field between ``268``
  and the first ``279`` is refused. The group count must equal ``268``.
- ``55`` may stand once before ``268`` for all groups (as in ``W``) or in each group; a group
  without either is refused. ``65`` SymbolSfx, when present, names another instrument:
  ``<55>.<65>``.
- A Delete needs only ``278`` (and ``55``); a ``269`` on it must match the order's side, its
  ``270``/``271`` (the old values, if any) are not checked. A New needs ``269``, ``278``, ``270``
  > 0 and ``271`` > 0.
- Refused as an inconsistency (the book can no longer be trusted: the caller resyncs): a Delete of
  an id the book does not hold, a New for an id it holds, a Delete whose ``269`` is the other side,
  and a book left crossed (best bid >= best offer) once a whole message is applied. A message is
  checked whole before the book changes: a refused message changes nothing.
- A trade print (``269=2``) does not rest: a New is reported as a trade; a Delete of a trade print
  (a bust? the document has none) is skipped and counted in ``trade_deletes``; the book is whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Context, Decimal, DecimalException, Inexact, InvalidOperation, Rounded

from adapters.kit.wirejson import MAGNITUDE_LIMIT
from adapters.midchains.codec import FixMessage
from engine.model import Side
from engine.venue.badinput import BAD_NUMBER, MALFORMED

__all__ = [
    "BID",
    "DELETE",
    "NEW",
    "OFFER",
    "TRADE",
    "BookError",
    "Entry",
    "L3Book",
    "Print",
    "SymbolBook",
    "TopOfBook",
    "parse_incremental",
    "parse_snapshot",
    "plain_decimal",
]

NEW, DELETE = "0", "2"
BID, OFFER, TRADE = "0", "1", "2"
_SIDES = {BID: Side.BUY, OFFER: Side.SELL}
ZERO = Decimal(0)
#: level sums are exact or refused: 80 digits hold the sum of a million sizes below 1e18 with 38
#: decimals (a longer one raises decimal.Inexact, which :meth:`L3Book.apply` reports for a resync)
_EXACT = Context(prec=80, traps=[Inexact, Rounded, InvalidOperation])
_add = _EXACT.add
_subtract = _EXACT.subtract
#: the longest number text taken from the wire (a price or size); longer is refused unparsed
NUMBER_CHARS = 40
#: a price or size at or above this is refused (the kit's bound for every venue's numbers)
LIMIT = Decimal(MAGNITUDE_LIMIT)
#: consistency failures (the book is no longer the venue's: resync), beside the codec's kinds
UNKNOWN_ID = "unknown_id"
DUPLICATE_ID = "duplicate_id"
SIDE_MISMATCH = "side_mismatch"
CROSSED = "crossed"
#: fields a group may carry that this module reads (others are skipped)
_GROUP_TAGS = frozenset({279, 269, 278, 55, 65, 270, 271, 58})


class BookError(ValueError):
    """An ``X`` or ``W`` the book cannot apply; the text names what is wrong. ``kind`` is a
    :mod:`engine.venue.badinput` kind (``malformed``, ``bad_number``) or one of this module's
    consistency kinds; ``symbol`` is the instrument it concerns when known; ``resync`` says whether
    the book may now differ from the venue's."""

    def __init__(self, reason: str, kind: str = MALFORMED, symbol: str | None = None, resync: bool = True) -> None:
        super().__init__(reason)
        self.kind = kind
        self.symbol = symbol
        self.resync = resync


def plain_decimal(text: str | None, tag: int, positive: bool = True) -> Decimal:
    """A FIX float field (``270``, ``271``) as an exact Decimal: ASCII digits with at most one
    ``.``, no sign, no exponent, at most :data:`NUMBER_CHARS` characters, > 0 when ``positive``."""
    if text is None:
        raise BookError(f"{tag} missing", MALFORMED)
    if (
        len(text) > NUMBER_CHARS
        or not text.isascii()
        or not text.replace(".", "", 1).isdigit()
    ):
        raise BookError(f"{tag}={text[:NUMBER_CHARS]!r} is not a plain decimal", BAD_NUMBER)
    try:
        value = Decimal(text)
    except DecimalException:  # pragma: no cover - the check above admits only decimal text
        raise BookError(f"{tag}={text!r} is not a plain decimal", BAD_NUMBER) from None
    if positive and not value:
        raise BookError(f"{tag}={text} must be above 0", BAD_NUMBER)
    if value >= LIMIT:
        raise BookError(f"{tag}={text} is not below 1e18", BAD_NUMBER)
    return value


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``X`` group, read and checked for its own sake (not yet against the book)."""

    action: str  # NEW | DELETE
    entry_type: str | None  # BID | OFFER | TRADE; None on a Delete that does not say
    entry_id: str
    symbol: str
    price: Decimal | None
    qty: Decimal | None


@dataclass(frozen=True, slots=True)
class Print:
    """A trade print (``269=2``) of an ``X`` (a public trade) or a ``W`` (the last trade)."""

    symbol: str
    price: Decimal
    qty: Decimal
    trade_id: str


@dataclass(frozen=True, slots=True)
class TopOfBook:
    """A ``W``: the best bid and offer as the venue states them, and the last trade, each if sent."""

    symbol: str
    bid: tuple[Decimal, Decimal] | None
    offer: tuple[Decimal, Decimal] | None
    last: Print | None


def _symbol(name: str | None, suffix: str | None) -> str | None:
    if name is None:
        return None
    return f"{name}.{suffix}" if suffix else name


def _count(message: FixMessage) -> tuple[int, int]:
    """``268`` NoMDEntries and the index of the field after it."""
    fields = message.fields
    for index, (tag, value) in enumerate(fields):
        if tag == 268:
            if not value.isascii() or not value.isdigit() or len(value) > 6:
                raise BookError(f"268 NoMDEntries={value[:20]!r} is not a count", MALFORMED)
            return int(value), index + 1
    raise BookError("268 NoMDEntries missing", MALFORMED)


def parse_incremental(message: FixMessage, wanted: Callable[[str], bool] | None = None) -> list[Entry]:
    """The groups of an ``X``, checked one by one (see the module docstring). Groups of a symbol
    ``wanted`` refuses are skipped before their numbers are read (the gateway sends every pair)."""
    expected, start = _count(message)
    fields = message.fields
    default_name = default_suffix = None
    for tag, value in fields[:start]:
        if tag == 55:
            default_name = value
        elif tag == 65:
            default_suffix = value
    groups: list[dict[int, str]] = []
    group: dict[int, str] | None = None
    for tag, value in fields[start:]:
        if tag == 10:
            break
        if tag == 279:
            group = {279: value}
            groups.append(group)
            continue
        if group is None:
            raise BookError(f"field {tag} before the first 279 MDUpdateAction (279 must open each group)")
        if tag in _GROUP_TAGS:
            if tag in group:
                raise BookError(f"field {tag} twice in group {len(groups)}")
            group[tag] = value
    if len(groups) != expected:
        raise BookError(f"268 NoMDEntries={expected} but {len(groups)} groups")
    entries: list[Entry] = []
    for number, group in enumerate(groups, 1):
        symbol = _symbol(group.get(55, default_name), group.get(65, default_suffix))
        if symbol is None:
            raise BookError(f"group {number}: 55 Symbol missing")
        if wanted is not None and not wanted(symbol):
            continue
        entries.append(_entry(group, number, symbol))
    return entries


def _entry(group: dict[int, str], number: int, symbol: str) -> Entry:
    action = group[279]
    entry_id = group.get(278)
    entry_type = group.get(269)
    if not entry_id:
        raise BookError(f"group {number} ({symbol}): 278 MDEntryID missing", symbol=symbol)
    if entry_type is not None and entry_type not in (BID, OFFER, TRADE):
        raise BookError(f"group {number} ({symbol}): 269 MDEntryType={entry_type[:20]!r} (0, 1 or 2)", symbol=symbol)
    try:
        if action == NEW:
            if entry_type is None:
                raise BookError("269 MDEntryType missing", symbol=symbol)
            return Entry(NEW, entry_type, entry_id, symbol, plain_decimal(group.get(270), 270),
                         plain_decimal(group.get(271), 271))
        if action == DELETE:
            return Entry(DELETE, entry_type, entry_id, symbol, None, None)
    except BookError as exc:
        raise BookError(f"group {number} ({symbol}): {exc}", exc.kind, symbol) from None
    raise BookError(f"group {number} ({symbol}): 279 MDUpdateAction={action[:20]!r} (only 0 New, 2 Delete)",
                    symbol=symbol)


def parse_snapshot(message: FixMessage) -> TopOfBook:
    """A ``W``: ``55`` then ``268`` groups opened by ``269``; bid and offer at most once each, a
    trade print (``269=2``, the document's example) as the last trade."""
    expected, start = _count(message)
    symbol = _symbol(message.get(55), message.get(65))
    if symbol is None:
        raise BookError("W without 55 Symbol")
    groups: list[dict[int, str]] = []
    for tag, value in message.fields[start:]:
        if tag == 10:
            break
        if tag == 269:
            groups.append({269: value})
        elif not groups:
            raise BookError(f"W ({symbol}): field {tag} before the first 269 MDEntryType", symbol=symbol)
        elif tag in (270, 271, 278, 58):
            groups[-1][tag] = value
    if len(groups) != expected:
        raise BookError(f"W ({symbol}): 268 NoMDEntries={expected} but {len(groups)} groups", symbol=symbol)
    found: dict[str, tuple[Decimal, Decimal]] = {}
    last: Print | None = None
    for group in groups:
        kind = group[269]
        try:
            price = plain_decimal(group.get(270), 270)
            qty = plain_decimal(group.get(271), 271, positive=kind == TRADE)
        except BookError as exc:
            raise BookError(f"W ({symbol}): {exc}", exc.kind, symbol, resync=False) from None
        if kind == TRADE:
            last = Print(symbol, price, qty, group.get(278) or group.get(58) or "")
        elif kind in (BID, OFFER) and kind not in found:
            found[kind] = (price, qty)
        else:
            raise BookError(f"W ({symbol}): 269={kind[:20]!r} repeated or unknown", symbol=symbol, resync=False)
    return TopOfBook(symbol, found.get(BID), found.get(OFFER), last)


class SymbolBook:
    """One instrument: its resting orders by id, and per side the level sums. A level holds no
    order count: sizes are positive and summed exactly (``_EXACT`` traps any rounding), so a level's
    sum reaches zero exactly when its last order goes."""

    __slots__ = ("orders", "levels", "best_bid", "best_ask")

    def __init__(self) -> None:
        self.orders: dict[str, tuple[Side, Decimal, Decimal]] = {}
        self.levels: dict[Side, dict[Decimal, Decimal]] = {Side.BUY: {}, Side.SELL: {}}
        self.best_bid: Decimal | None = None
        self.best_ask: Decimal | None = None

    @property
    def crossed(self) -> bool:
        return self.best_bid is not None and self.best_ask is not None and self.best_bid >= self.best_ask

    def l2(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """``(bids, asks)`` best first, as the engine's :class:`~engine.model.Book` lists them."""
        bids = sorted(self.levels[Side.BUY].items(), reverse=True)
        asks = sorted(self.levels[Side.SELL].items())
        return bids, asks

    def snapshot_changes(self) -> tuple[tuple[Side, Decimal, Decimal], ...]:
        """Every level, for a snapshot :class:`~engine.model.BookUpdate`."""
        return tuple((side, price, qty) for side in (Side.BUY, Side.SELL) for price, qty in self.levels[side].items())

    def add(self, entry_id: str, side: Side, price: Decimal, qty: Decimal, touched: dict) -> None:
        self.orders[entry_id] = (side, price, qty)
        levels = self.levels[side]
        old = levels.get(price)
        key = (side, price)
        if key not in touched:
            touched[key] = old or ZERO
        if old is None:
            levels[price] = qty
            if side is Side.BUY:
                if self.best_bid is None or price > self.best_bid:
                    self.best_bid = price
            elif self.best_ask is None or price < self.best_ask:
                self.best_ask = price
        else:
            levels[price] = _add(old, qty)

    def remove(self, entry_id: str, touched: dict) -> None:
        side, price, qty = self.orders.pop(entry_id)
        levels = self.levels[side]
        old = levels[price]
        key = (side, price)
        if key not in touched:
            touched[key] = old
        left = _subtract(old, qty)
        if left:
            levels[price] = left
            return
        del levels[price]
        if side is Side.BUY:
            if price == self.best_bid:
                self.best_bid = max(levels) if levels else None
        elif price == self.best_ask:
            self.best_ask = min(levels) if levels else None


class L3Book:
    """Every tracked instrument's :class:`SymbolBook`. :meth:`apply` takes one ``X``'s entries."""

    __slots__ = ("books", "trade_deletes")

    def __init__(self) -> None:
        self.books: dict[str, SymbolBook] = {}
        self.trade_deletes = 0  # Deletes of a trade print: nothing rests to delete (skipped)

    def clear(self) -> None:
        self.books.clear()

    def book(self, symbol: str) -> SymbolBook:
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = SymbolBook()
        return book

    def check(self, entries: Iterable[Entry]) -> None:
        """Raise :class:`BookError` if ``entries`` (one message) do not fit the book, changing nothing."""
        added: dict[tuple[str, str], str | None] = {}  # (symbol, id) -> its side's type, or None if deleted here
        books = self.books
        for entry in entries:
            if entry.entry_type == TRADE:
                continue
            key = (entry.symbol, entry.entry_id)
            if key in added:
                held_type = added[key]
            else:
                book = books.get(entry.symbol)
                held = book.orders.get(entry.entry_id) if book is not None else None
                held_type = None if held is None else (BID if held[0] is Side.BUY else OFFER)
            if entry.action == NEW:
                if held_type is not None:
                    raise BookError(f"{entry.symbol}: New for order {entry.entry_id}, which the book holds",
                                    DUPLICATE_ID, entry.symbol)
                added[key] = entry.entry_type
            else:
                if held_type is None:
                    raise BookError(f"{entry.symbol}: Delete of order {entry.entry_id}, which the book does not hold",
                                    UNKNOWN_ID, entry.symbol)
                if entry.entry_type is not None and entry.entry_type != held_type:
                    raise BookError(f"{entry.symbol}: Delete of order {entry.entry_id} as 269={entry.entry_type}; "
                                    f"it rests as 269={held_type}", SIDE_MISMATCH, entry.symbol)
                added[key] = None

    def apply(self, entries: list[Entry]) -> tuple[dict[str, list[tuple[Side, Decimal, Decimal]]], list[Print]]:
        """Apply one message's entries: the net level changes per symbol (``(side, price, new
        total)``, 0 removes the level) and the trade prints, in order. A message that does not fit
        raises :class:`BookError` and changes nothing; one that leaves a book crossed raises it
        after applying (the caller resyncs)."""
        self.check(entries)
        try:
            return self._apply(entries)
        except DecimalException as exc:  # a level sum past 80 digits: refused, never rounded
            raise BookError(f"a level sum cannot be held exactly ({type(exc).__name__})", BAD_NUMBER) from None

    def _apply(self, entries: list[Entry]) -> tuple[dict[str, list[tuple[Side, Decimal, Decimal]]], list[Print]]:
        touched_by: dict[str, dict[tuple[Side, Decimal], Decimal]] = {}
        prints: list[Print] = []
        for entry in entries:
            entry_type = entry.entry_type
            if entry_type == TRADE:
                if entry.action == NEW:
                    prints.append(Print(entry.symbol, entry.price, entry.qty, entry.entry_id))  # type: ignore[arg-type]
                else:
                    self.trade_deletes += 1
                continue
            symbol = entry.symbol
            touched = touched_by.get(symbol)
            if touched is None:
                touched = touched_by[symbol] = {}
            if entry.action == NEW:
                self.book(symbol).add(entry.entry_id, _SIDES[entry_type], entry.price, entry.qty,  # type: ignore[index,arg-type]
                                      touched)
            else:
                self.books[symbol].remove(entry.entry_id, touched)
        changes: dict[str, list[tuple[Side, Decimal, Decimal]]] = {}
        for symbol, touched in touched_by.items():
            book = self.books[symbol]
            net = []
            for (side, price), before in touched.items():
                now = book.levels[side].get(price, ZERO)
                if now != before:
                    net.append((side, price, now))
            changes[symbol] = net
            if book.crossed:
                raise BookError(f"{symbol}: book crossed (bid {book.best_bid} >= offer {book.best_ask})", CROSSED,
                                symbol)
        return changes, prints
