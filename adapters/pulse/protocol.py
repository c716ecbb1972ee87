"""The Pulse session's protocol state, sans I/O: text in -> events out, requests -> frames out.

What the JSON-RPC session has to remember lives here, apart from the socket (as websockets keeps
``protocol.py`` apart from ``asyncio/connection.py``), so it is tested by feeding it frames, without
a connection or a clock (every time is passed in):

- **request ids and pending requests**: ``request`` allocates the id and encodes the frame;
  ``receive`` matches an answer to its request (an answer nobody waits for is a late one);
  ``expired(now)`` and ``lost(epoch)`` give back the requests that timed out or whose connection
  went away;
- **book continuity** (``book``): a snapshot syncs the book; a change applies only when its
  ``prev_change_id`` is the last ``change_id`` (004 makes ``prev_change_id`` optional: a change
  without one applies when its ``change_id`` is newer); a change already applied is a duplicate,
  skipped; anything else is a gap, after which changes are skipped until a snapshot (the
  resubscribe's, or ``private/get_order_book`` when none comes: ``unsynced_since`` says how long a
  book has waited, in the caller's time);
- **de-duplication** (``first_public_trade``): each public trade id is delivered once, whichever
  of the channel and the polled history brings it, in constant memory.

The adapter (:mod:`adapters.pulse.adapter`) keeps the transport and the mapping to the engine.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from typing import Any

from adapters.kit.orders import RecentIds
from adapters.pulse import codec
from adapters.pulse.codec import NO_CHANGE_ID, BookMsg, Heartbeat, Notification, Response, RpcError

#: public trade ids remembered per instrument, to deliver each trade once
PUBLIC_TRADE_IDS_KEPT = 2000

# ---- what ``book`` says about one book message
SNAPSHOT = "snapshot"  # a snapshot: the book is (again) known; deliver it whole
APPLY = "apply"  # a change continuing the last one: deliver it
WAITING = "waiting"  # a change while the book waits for the snapshot of a resubscribe: skip it
GAP = "gap"  # a change that does not continue the last one: the book is unsynced; resubscribe
DUPLICATE = "duplicate"  # a change already applied (the venue sent it again): skip it, the book is right
UNKNOWN = "unknown"  # a book this session does not keep


class Pending:
    """A request waiting for its answer. ``context`` is the requester's (what to do with the
    answer); ``deadline`` is infinite until the frame departs (``departed``)."""

    __slots__ = ("req_id", "method", "context", "deadline", "epoch")

    def __init__(self, req_id: int, method: str, context: Any, epoch: int) -> None:
        self.req_id = req_id
        self.method = method
        self.context = context
        self.deadline = math.inf
        self.epoch = epoch


class Answer:
    """The venue answered request ``req_id``: ``result`` or ``error``. ``pending`` is None when no
    request waits for it any more (timed out, or from a lost connection): a late answer."""

    __slots__ = ("req_id", "pending", "result", "error")

    def __init__(self, req_id: int | None, pending: Pending | None, result: Any, error: RpcError | None) -> None:
        self.req_id = req_id
        self.pending = pending
        self.result = result
        self.error = error


class BookSync:
    """Where one book's change-id chain stands. A snapshot without a change id (fetched with
    ``private/get_order_book``, whose answer carries none) continues from ``seen``: the last change
    the channel brought before the answer, which the venue's book already holds (one socket, in
    order). With none seen, ``change_id`` is :data:`codec.NO_CHANGE_ID` and the next change starts
    the chain."""

    __slots__ = ("change_id", "synced", "gaps", "duplicates", "seen")

    def __init__(self) -> None:
        self.change_id = NO_CHANGE_ID
        self.synced = False
        self.gaps = 0
        self.duplicates = 0
        self.seen = NO_CHANGE_ID  # the highest change id the channel brought, applied or not


class PulseProtocol:
    """One Pulse session's state for ``instruments`` (see the module's docstring)."""

    def __init__(self, instruments: Iterable[str], trade_ids_kept: int = PUBLIC_TRADE_IDS_KEPT) -> None:
        names = list(instruments)
        self._ids = itertools.count(1)
        self.pending: dict[int, Pending] = {}
        self.books = {name: BookSync() for name in names}
        self.public_seen = {name: RecentIds(trade_ids_kept) for name in names}

    # ---- requests ------------------------------------------------------------------------
    def request(self, method: str, params: dict[str, Any], context: Any = None, epoch: int = 0) -> tuple[int, str]:
        """A new request on connection ``epoch``: its id and its frame. It is pending until
        answered, expired, lost or withdrawn."""
        req_id = next(self._ids)
        frame = codec.encode_request(req_id, method, params)  # raises before anything is pending
        self.pending[req_id] = Pending(req_id, method, context, epoch)
        return req_id, frame

    def departed(self, req_id: int, deadline: float) -> None:
        """The frame left: its answer is due by ``deadline`` (a request that waited for room in
        the rate limit must not time out before it was sent)."""
        pending = self.pending.get(req_id)
        if pending is not None:
            pending.deadline = deadline

    def withdraw(self, req_id: int) -> Pending | None:
        """The frame never left (or will not): nothing waits for its answer."""
        return self.pending.pop(req_id, None)

    def expired(self, now: float) -> list[Pending]:
        """The requests whose answer was due by ``now``: no longer pending."""
        due = [req_id for req_id, p in self.pending.items() if p.deadline <= now]
        return [self.pending.pop(req_id) for req_id in due]

    def lost(self, epoch: int) -> list[Pending]:
        """Connection ``epoch`` is gone: its requests' outcomes are unknown, and no book is known
        to be right any more (each waits for the snapshot of the resubscribe)."""
        gone = [req_id for req_id, p in self.pending.items() if p.epoch == epoch]
        for state in self.books.values():
            state.synced = False
        return [self.pending.pop(req_id) for req_id in gone]

    def unsync_books(self) -> None:
        """Every book waits for a snapshot (a new login resubscribes); change ids seen on the old
        connection say nothing about the new one's (a restarted venue counts again)."""
        for state in self.books.values():
            state.synced = False
            state.seen = NO_CHANGE_ID

    # ---- frames in -----------------------------------------------------------------------
    def receive(self, raw: str | bytes) -> Answer | Notification | Heartbeat:
        """One frame: an answer matched to its request, or a notification or heartbeat as the
        codec decoded it. Raises :class:`codec.CodecError` for a frame that cannot be read."""
        msg = codec.decode_frame(raw)  # a book notification's data comes decoded (BookMsg)
        kind = type(msg)
        if kind is Notification:  # most frames: first
            return msg  # type: ignore[return-value]
        if kind is Response:
            return Answer(msg.id, self.pending.pop(msg.id, None), msg.result, None)  # type: ignore[union-attr]
        if kind is RpcError:
            req_id: int | None = msg.id  # type: ignore[union-attr]  # None: the venue could not read our request
            pending = self.pending.pop(req_id, None) if req_id is not None else None
            return Answer(req_id, pending, None, msg)  # type: ignore[arg-type]
        return msg  # type: ignore[return-value]

    # ---- book continuity -----------------------------------------------------------------
    def book(self, msg: BookMsg) -> tuple[str, BookSync | None]:
        """What to do with one decoded book message (SNAPSHOT, APPLY, DUPLICATE, WAITING, GAP,
        UNKNOWN), and the book's state after it (None for UNKNOWN)."""
        state = self.books.get(msg.symbol)
        if state is None:
            return UNKNOWN, None
        change_id = msg.change_id
        if change_id > state.seen:  # not max(): a builtin with keyword parsing, per frame
            state.seen = change_id
        if msg.snapshot:
            state.change_id = change_id if change_id != NO_CHANGE_ID else state.seen
            state.synced = True
            return SNAPSHOT, state
        if not state.synced:
            return WAITING, state
        last = state.change_id
        if last != NO_CHANGE_ID:
            if change_id <= last:
                state.duplicates += 1
                return DUPLICATE, state
            prev = msg.prev_change_id
            if prev is not None and prev != last:
                state.synced = False
                state.gaps += 1
                return GAP, state
        state.change_id = change_id
        return APPLY, state

    def book_unreadable(self, symbol: str) -> BookSync | None:
        """A frame on ``symbol``'s book channel could not be read: it may have been a change, so
        the book is unsynced as after a gap. Returns its state when this unsynced it (resubscribe
        once), None when it was not synced anyway."""
        state = self.books.get(symbol)
        if state is None or not state.synced:
            return None
        state.synced = False
        state.gaps += 1
        return state

    # ---- de-duplication ------------------------------------------------------------------
    def first_public_trade(self, symbol: str, trade_id: str) -> bool:
        """True the first time public trade ``trade_id`` of ``symbol`` is seen (an instrument this
        session does not keep has no memory: always True)."""
        seen = self.public_seen.get(symbol)
        return seen is None or seen.add(trade_id)
