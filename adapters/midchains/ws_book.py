"""When the MidChains WebSocket book is whole, and when to ask for it again (MID-7): a pure rule.

The ``book`` feed (001, "Subscribe Order Book") is order-level: each entry has an ``id``, ``act``
``U`` (add or update) or ``R`` (remove). The document says the subscribe "Retrieves the latest order
book information and then subscribes the user to ongoing market data event updates", and gives
**no sequence number, no snapshot-end marker and no acknowledgement**. So the adapter cannot be told
that it holds the whole book or that it missed a message; it has to infer both, and this module is
that inference, with no I/O and no clock of its own (time in, decision out):

**Whole.** After a subscribe the book is BUILDING: the venue sends the current orders as a burst of
``U`` entries (VENUES.md 2.10 assumption; the sandbox sends <= 50 per message). The book is WHOLE
once the burst has ended: ``quiet_ns`` (250 ms, MID-7) have passed since the last ``book`` message
of that pair, or, when no message came at all, ``empty_ns`` (2 s) after the subscribe (an empty
book is a real state: a pair nobody quotes). A busy pair is never quiet for 250 ms (its live
changes follow the burst at once), so ``max_build_ns`` (when given) ends BUILDING that long after the
subscribe whatever the traffic: the burst is sent in one go right after the subscribe, and a
live change after it is applied to the book like any other. Until then the adapter keeps the pair's book to itself
(no BookUpdate reaches the strategies: a half-sent book would look like a thin market).

**Resubscribe** (clear the pair's book, subscribe again, BUILDING again) when the book is known
wrong:

1. a new connection: the venue keeps no subscription across one (:meth:`BookSync.subscribed` on
   every connect);
2. an ``R`` for an ``id`` the WHOLE book does not hold: its ``U`` was lost (while BUILDING this is
   the snapshot racing live updates: tolerated, and the adapter keeps such ids as tombstones so a
   late snapshot ``U`` of a removed order is dropped);
3. the book crossed (best bid >= best ask) for longer than ``cross_grace_ns`` (1 s): one venue's own
   L3 book never stays crossed, so a remove was lost. A crossing shorter than that is the venue
   sending a new order's ``U`` before the ``R`` of what it matched, and is waited out;
4. the adapter's own reasons (a decode error on that pair's message: ``lost``).

Silence is not a reason: a quiet pair sends nothing. A dead connection is found by the keepalive
rule (MID-8: no frame for 60 s -> reconnect), which then resubscribes everything (1.).

Resubscribing costs a public request (3/s per IP, MID-9) and a burst of the whole book, so it is
limited to one per ``min_interval_ns`` (5 s) per pair: a reason found sooner waits (STALE, with the
time it becomes due), so a feed that keeps losing messages cannot make the adapter loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["BookPhase", "BookSync", "Decision"]

MS = 1_000_000


class BookPhase(Enum):
    BUILDING = "building"  # subscribed, the snapshot burst may still be arriving: not shown
    WHOLE = "whole"        # the burst has ended: the book is shown and kept by U/R
    STALE = "stale"        # known wrong: a resubscribe is due (now, or at ``due_ns``)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the adapter does now. ``resubscribe`` is the reason to resubscribe *now* (None: not now);
    ``due_ns`` when the adapter must call :meth:`BookSync.poll` again (None: on the next message)."""

    phase: BookPhase
    resubscribe: str | None = None
    due_ns: int | None = None


class BookSync:
    """One pair's book completeness. The adapter calls :meth:`subscribed` when it sends the
    subscribe, :meth:`on_book` for each ``book`` message of the pair (after applying it to its L3
    book, with what applying it found), and :meth:`poll` at ``due_ns``."""

    __slots__ = ("quiet_ns", "empty_ns", "cross_grace_ns", "min_interval_ns", "max_build_ns", "phase", "reason",
                 "subscribed_ns", "last_book_ns", "messages", "crossed_since_ns", "resubscribes")

    def __init__(self, quiet_ns: int = 250 * MS, empty_ns: int = 2000 * MS, cross_grace_ns: int = 1000 * MS,
                 min_interval_ns: int = 5000 * MS, max_build_ns: int | None = None) -> None:
        self.quiet_ns = quiet_ns
        self.max_build_ns = max_build_ns
        self.empty_ns = empty_ns
        self.cross_grace_ns = cross_grace_ns
        self.min_interval_ns = min_interval_ns
        self.phase = BookPhase.STALE
        self.reason: str | None = "not subscribed"
        self.subscribed_ns: int | None = None
        self.last_book_ns: int | None = None
        self.messages = 0
        self.crossed_since_ns: int | None = None
        self.resubscribes = 0

    def subscribed(self, now_ns: int) -> None:
        """The subscribe was sent (on a new connection, or as a resubscribe): the adapter has
        cleared the pair's book; the snapshot burst starts."""
        if self.subscribed_ns is not None:
            self.resubscribes += 1
        self.phase = BookPhase.BUILDING
        self.reason = None
        self.subscribed_ns = now_ns
        self.last_book_ns = None
        self.messages = 0
        self.crossed_since_ns = None

    def on_book(self, now_ns: int, *, unknown_removes: int = 0, crossed: bool = False) -> Decision:
        """A ``book`` message of the pair was applied: ``unknown_removes`` of its ``R`` entries named
        ids the book did not hold; ``crossed`` is the book's state after it."""
        if self.phase is BookPhase.STALE:
            return self.poll(now_ns, crossed=crossed)
        self.messages += 1
        self.last_book_ns = now_ns
        if self.phase is BookPhase.WHOLE and unknown_removes:
            return self._stale(now_ns, f"remove of {unknown_removes} order id(s) the book does not hold")
        return self.poll(now_ns, crossed=crossed)

    def lost(self, now_ns: int, reason: str) -> Decision:
        """The adapter knows the book is wrong for its own reason (a message of the pair it could
        not read)."""
        return self._stale(now_ns, reason)

    def poll(self, now_ns: int, *, crossed: bool = False) -> Decision:
        """The decision at ``now_ns``; ``crossed`` is the book's state now."""
        if self.phase is BookPhase.STALE:
            due = self._due(now_ns)
            if due > now_ns:
                return Decision(BookPhase.STALE, None, due)
            return Decision(BookPhase.STALE, self.reason or "stale")
        if self.phase is BookPhase.BUILDING:
            assert self.subscribed_ns is not None
            ends = (self.last_book_ns + self.quiet_ns if self.last_book_ns is not None
                    else self.subscribed_ns + self.empty_ns)
            if self.max_build_ns is not None:
                ends = min(ends, self.subscribed_ns + self.max_build_ns)
            if now_ns < ends:
                return Decision(BookPhase.BUILDING, None, ends)
            self.phase = BookPhase.WHOLE
        if not crossed:
            self.crossed_since_ns = None
            return Decision(BookPhase.WHOLE)
        if self.crossed_since_ns is None:
            self.crossed_since_ns = now_ns
        if now_ns - self.crossed_since_ns >= self.cross_grace_ns:
            return self._stale(now_ns, f"crossed for {(now_ns - self.crossed_since_ns) // MS} ms")
        return Decision(BookPhase.WHOLE, None, self.crossed_since_ns + self.cross_grace_ns)

    def _due(self, now_ns: int) -> int:
        """When the next resubscribe may go: ``min_interval_ns`` after the last subscribe."""
        if self.subscribed_ns is None:
            return now_ns
        return max(now_ns, self.subscribed_ns + self.min_interval_ns)

    def _stale(self, now_ns: int, reason: str) -> Decision:
        self.phase = BookPhase.STALE
        self.reason = reason
        due = self._due(now_ns)
        if due > now_ns:
            return Decision(BookPhase.STALE, None, due)
        return Decision(BookPhase.STALE, reason)
