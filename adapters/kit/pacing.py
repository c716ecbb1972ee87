"""Departure pacing: a venue's request budget held at the moment a request leaves the process.

The pre-trade gate spends the venue account's budget when a strategy submits (and refuses, never
queues, what could not be sent in time). But a request reaches the socket later: background tasks,
token renewals, resends and reconciliation queries make requests bunch up on the wire, and the
venue counts what arrives, not what the gate allowed. So each network adapter sends through a
:class:`WirePacer` built from the same limits as the venue account's bucket (what the adapter
declares, or ``venues.<name>.rate_limits``): it decides WHEN a request leaves, so that no window of
``per_seconds`` ever sees more than ``count`` departures.

The pacer reuses :class:`engine.risk.ratelimit.RateBucket` (GCRA plus the sliding-window cap) as
separate instances: the gate's tokens are spent at submit, the pacer's at departure, and nothing is
spent twice in one bucket.

Requests wait in lanes, first in first out per lane, and the lanes are served in priority order
(cancels first). A lane names the scopes it spends and how: an ``"order"`` take leaves the ``all``
bucket's cancel reserve untouched (20%, :func:`engine.risk.ratelimit.venue_cancel_reserve`), a
``"cancel"`` take may use it all. Nothing is dropped: a request waits until its lane's buckets have
room, and :meth:`WirePacer.close` hands back whatever never left so the adapter can say so.

Three margins keep "what left" equal to "what arrives": each window is counted 5% longer than the
venue's (:data:`ARRIVAL_SPREAD_GUARD`); a REST adapter lets a request go only when one of its
connections is free (``max_in_flight``), so nothing waits in the HTTP pool after being paced; and
every request is written through the pacer's :class:`WriteHold` (a writer behind an ``on_depart``
queue with :meth:`WriteHold.write`; a REST request from inside the HTTP client, by
:class:`adapters.kit.rest.HeldWrite`), which holds the same limits on the times writes returned, so
a stall between a release and its write (the loop busy with a burst of market data, the process
descheduled) cannot bring two requests closer on the wire than the venue allows.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from decimal import ROUND_CEILING, Decimal
from typing import Any, Generic, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from engine.venue import RateLimit
from engine.venue.clock import Clock, ScaledClock, Timer, WallClock
from engine.venue.ratelimit import RateBucket, TakeKind, venue_buckets

T = TypeVar("T")

#: a lane: the scopes of the venue's limits its requests spend, and the kind of take
LaneSpec = tuple[tuple[str, ...], TakeKind]

#: lanes of an adapter whose venue counts orders and cancels in the shared "all" budget
ORDER_LANES: dict[str, LaneSpec] = {
    "cancel": (("cancels", "all"), "cancel"),
    "order": (("orders", "all"), "order"),
}


#: the pacer counts each window this much longer than the venue does. The venue counts arrivals, and
#: requests that left a window apart do not arrive a window apart: a burst the venue reads (and
#: stamps) over tens of milliseconds, followed exactly one window later by the next requests the
#: budget allows, lands in one of the venue's windows. 5% of the window (50 ms at 1 s) absorbs that
#: spread; it costs the same 5% of the sustained rate.
ARRIVAL_SPREAD_GUARD = Decimal("0.05")

#: the spread is real time: a guard's stretch is never less than its fraction of this many real
#: seconds (10 ms at the pacer's 5%, 5 ms at the write hold's half), however short the window is
#: in real time (:func:`guarded`)
REAL_TIME_FLOOR_S = Decimal("0.2")
NANOSECOND = Decimal("1e-9")


def guarded(limits: Iterable[RateLimit], guard: Decimal = ARRIVAL_SPREAD_GUARD,
            speed: int | float = 1) -> tuple[RateLimit, ...]:
    """The venue's limits with each window ``guard`` of itself longer, and never less than
    ``guard`` of :data:`REAL_TIME_FLOOR_S` of real time longer (same count, same burst).
    ``speed``: clock seconds per real second. On a sandbox day scaled 60 times a 1 s window is
    17 ms of real time and 5% of it 0.8 ms, less than the loop's own latency: the MidChains
    sandbox, counting on the same scaled clock in the same process, once counted an order over its
    4 a second. The floor makes that window 1.6 s of the scaled clock (10 ms real). A floor of
    50 ms real (a 4 s window) cost the sandbox session's market maker 22 orders and 30 amends
    refused at the gate where 10 ms cost 0 and 1, the same as without a floor. At real time, on
    windows of 0.2 s or longer, the floor changes nothing."""
    floor = guard * REAL_TIME_FLOOR_S * Decimal(str(speed))
    # a bucket's window is whole nanoseconds: a speed like 33.3333333 gives a floor that is not
    return tuple(replace(limit, per_seconds=(limit.per_seconds + max(limit.per_seconds * guard, floor))
                         .quantize(NANOSECOND, rounding=ROUND_CEILING))
                 for limit in limits)


class WriteHold:
    """A pacer's limits held once more where its requests are written, on the times the writes
    returned: the pacer decides when a request is released, but the venue counts when it arrives,
    and whatever runs between the release and the write moves the write later by a varying amount.
    Written through :meth:`write` (or a :meth:`turn`), no request reaches the socket before its
    lane's buckets have room counted from the earlier writes' own times. The windows are half the
    pacer's guard longer than the venue's, so the hold waits only when a stall ate more than half
    the guard (the pacer, on the whole guard, does the spacing; the other half is left for the
    network). Only the hard cap is held (one token a request: the pacer already kept the cancel
    reserve).

    Writes run at once as long as the buckets have room for every write in progress (each spends
    its token when it returns, never sooner): a write waits for another only when the budget is
    short, not for its turn on a lock, so REST requests on separate connections are not made to
    queue behind each other's writes when the loop is busy.

    Cancels first, as in the pacer: a write of a lane that takes as a cancel (``"cancel"`` in its
    lane spec) waiting here keeps a token from the other lanes' writes in each of its buckets it is
    short of (not in one where it has room: as the pacer lets others pass a head waiting on a
    budget they do not share), so after a stall an order that waited longer does not take the room
    a waiting cancel needs; a write behind kept tokens waits for the time there is one more."""

    def __init__(self, venue: str, limits: Iterable[RateLimit], lanes: Mapping[str, LaneSpec], clock: Clock,
                 guard: Decimal = ARRIVAL_SPREAD_GUARD) -> None:
        self.clock = clock
        by_lane = lane_buckets(venue, guarded(limits, guard / 2, clock.speed), lanes, clock)
        self._lanes = {lane: tuple(bucket for bucket, _kind in buckets) for lane, buckets in by_lane.items()}
        self._first = frozenset(lane for lane, (_scopes, kind) in lanes.items() if kind == "cancel")
        self._first_waiting: Counter[RateBucket] = Counter()  # per bucket: cancels' writes waiting for room
        self.held = 0  # requests that had to wait here (each a stall the pacer could not see)
        self._writing: Counter[RateBucket] = Counter()  # per bucket: writes started, not yet returned
        self._waiting: list[anyio.Event] = []  # turns waiting for a write in progress to return
        self._socket: anyio.Lock | None = None  # :meth:`write`'s writers share one socket

    async def write(self, lane: str, send: Callable[[], Awaitable[bool]],
                    wanted: Callable[[], bool] | None = None) -> bool:
        """``await send()`` once ``lane`` has room, its tokens spent when it returned, unless it
        says it sent nothing (False); when it raises they are spent too (a write cut short may have
        left, and the cost is one window's wait at most). Returns what ``send`` returned. A lane
        the hold does not know is written at once and spends nothing. Writers through this method
        share one socket (a FIX session, a WebSocket): they write one at a time, each after its
        room was secured, so a writer with room never waits for one still waiting for room.
        ``wanted``: asked whenever the wait is woken (:meth:`recheck`); once False (its request
        was taken back) the write stops waiting, sends nothing and returns False, so what queues
        behind it is not kept for room it will not use."""
        try:
            turn = await self.turn(lane, wanted)
        except _Unwanted:
            return False
        if turn is None:
            return await send()
        if self._socket is None:
            self._socket = anyio.Lock()
        sent = False  # cancelled while another writer has the socket: nothing left, nothing spent
        try:
            async with self._socket:
                sent = True  # from here a write cut short may have left
                sent = await send()
            return sent
        finally:
            turn.end(sent)

    async def turn(self, lane: str, wanted: Callable[[], bool] | None = None) -> WriteTurn | None:
        """Wait until ``lane``'s buckets have room for this write on top of every write in progress,
        and return its turn (None for a lane the hold does not know: nothing to hold). The caller
        writes, then calls :meth:`WriteTurn.end`. For a writer whose write happens inside a library
        (an HTTP client's trace callback starts the turn, the end of the request body ends it)
        where :meth:`write` cannot wrap it. Room, once granted, stays: a bucket's headroom only
        grows with time, and only the writes in progress (counted here) will spend it. ``wanted``
        as in :meth:`write` (raises ``_Unwanted`` there, which :meth:`write` turns into False)."""
        buckets = self._lanes.get(lane, ())
        if not buckets:
            return None
        first = lane in self._first
        kept = self._kept(first)
        waited = False
        keeping: Sequence[RateBucket] = ()  # a cancel's write: the buckets it keeps a token of while it waits
        try:
            while True:
                now = self.clock.now_ns()
                short = [bucket for bucket in buckets if bucket.headroom(now) <= kept[bucket]]
                if first:  # keeps a token only where it is short itself, as the pacer lets others pass
                    keeping = self._keep(keeping, short, wake=bool(short))
                if not short:
                    break
                waited = True
                # woken when a write in progress returns (what it spent decides), a waiting cancel
                # gives up or stops keeping a token, or at the time its buckets have room: all of
                # them; a cancel's, the first (it looks again where to keep a token)
                dues = [when for when in (self._room_at(bucket, now, kept, first) for bucket in short)
                        if when is not None]
                due = (min(dues) if first else max(dues)) if dues else None
                woken = anyio.Event()
                self._waiting.append(woken)
                try:
                    await _woken_or_due(woken, due, self.clock)
                finally:
                    if woken in self._waiting:
                        self._waiting.remove(woken)
                if wanted is not None and not wanted():
                    raise _Unwanted
                kept = self._kept(first)
        except BaseException:
            self._keep(keeping, (), wake=True)  # gave up: the tokens it kept are the others' again
            raise
        if waited:
            self.held += 1
        for bucket in buckets:
            self._writing[bucket] += 1
        return WriteTurn(self, buckets)

    def _ended_write(self, buckets: Sequence[RateBucket], sent: bool) -> None:
        now = self.clock.now_ns()
        for bucket in buckets:
            if sent:
                bucket.take(now)
            self._writing[bucket] -= 1
        self._wake_waiting()

    @property
    def in_progress(self) -> int:
        """Writes started and not yet returned, over all buckets (0 when idle)."""
        return sum(self._writing.values())

    @property
    def cancels_waiting(self) -> int:
        """Cancels' writes waiting for room, over all buckets (0 when none waits)."""
        return sum(self._first_waiting.values())

    def _keep(self, before: Sequence[RateBucket], after: Sequence[RateBucket], wake: bool) -> Sequence[RateBucket]:
        """A waiting cancel's kept tokens move from ``before`` to ``after`` (given up: to none);
        ``wake``: the other waiters look again where it stopped keeping one. Returns ``after``."""
        if list(before) != list(after):
            self._first_waiting -= Counter(before)
            self._first_waiting.update(after)
            if wake and set(before) - set(after):
                self._wake_waiting()
        return after

    def _room_at(self, bucket: RateBucket, now: int, kept: Counter[RateBucket], first: bool) -> int | None:
        """When ``bucket`` (short for this write) has room for it, if time alone decides: a token
        when it has none, or for a write behind waiting cancels one more than they keep. None when
        the writes in progress decide (their end wakes it)."""
        if bucket.headroom(now) < 1:
            return bucket.next_free_ns("cancel")
        if not first and self._first_waiting[bucket] and kept[bucket] < bucket.capacity:  # at most capacity at once
            return bucket.free_at_ns(kept[bucket] + 1)  # later than now: it holds at most ``kept`` now
        return None  # the writes in progress decide (or more than the bucket holds is kept): their ends

    def _kept(self, first: bool) -> Counter[RateBucket]:
        """Per bucket, the tokens a write must leave: the writes in progress, and for any but a
        cancel's the cancels' writes waiting (none, nearly always: no sum made then)."""
        if first or not self._first_waiting:
            return self._writing
        return self._writing + self._first_waiting

    def recheck(self) -> None:
        """Wake every write waiting for room to look again (a request one of them carries was taken
        back: see ``wanted`` in :meth:`write`)."""
        self._wake_waiting()

    def _wake_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        for woken in waiting:
            woken.set()


class Withdrawable:
    """A request a cancel may take back until its write begins: waiting for its pacer, in the
    writer's queue, or kept by the write hold after a stall (:meth:`WirePacer.take_back_unwritten`,
    :func:`write_unless_withdrawn`). ``written`` once the writer began writing it; ``withdrawn``
    when taken back before that: the writer then drops it, spending nothing."""

    __slots__ = ("written", "withdrawn")

    def __init__(self) -> None:
        self.written = False
        self.withdrawn = False

    def wanted(self) -> bool:
        """Still to be written (not taken back): what the write hold asks while it keeps it."""
        return not self.withdrawn


async def write_unless_withdrawn(hold: WriteHold, lane: str, item: Withdrawable,
                                 send: Callable[[], Awaitable[bool]]) -> bool:
    """Write ``item`` through ``hold`` (:meth:`WriteHold.write`) unless it is taken back first:
    before its turn, while the hold keeps it, or while another writer has the socket. Returns
    whether ``send`` said it sent."""
    if item.withdrawn:
        return False

    async def send_if_wanted() -> bool:
        if item.withdrawn:  # taken back while it waited in the hold or for the socket: nothing spent
            return False
        item.written = True
        return await send()

    return await hold.write(lane, send_if_wanted, item.wanted)


class _Unwanted(Exception):
    """A write waiting in the hold whose request was taken back (``wanted`` said so)."""


class WriteTurn:
    """One write's turn in a :class:`WriteHold` (see :meth:`WriteHold.turn`)."""

    __slots__ = ("_hold", "_buckets", "ended")

    def __init__(self, hold: WriteHold, buckets: Sequence[RateBucket]) -> None:
        self._hold = hold
        self._buckets = buckets
        self.ended = False

    def end(self, sent: bool = True) -> None:
        """The write returned: spend its tokens now (the venue sees it no earlier) unless it sent
        nothing. Once only; later calls do nothing (a trace's failure event and the caller's own
        cleanup may both end it). Any task may end it."""
        if self.ended:
            return
        self.ended = True
        self._hold._ended_write(self._buckets, sent)


class Outbox(Generic[T]):
    """What a pacer let go, on its way to the socket: one order's cancels in a queue of their own,
    everything else in one queue in the order it departed. :meth:`run` writes both at once, each
    in its order, so such a cancel never waits behind an order the write hold keeps (after a
    stall); a write in progress still finishes first (the hold's writers share one socket). Only a
    cancel that names an order already written may go ahead (``ahead``): the adapters send one
    only after its order's request was written (FIX: on_sent; WebSocket: the refno; Pulse: the
    order id). A mass cancel names no order: it must stay in departure order, or orders that left
    the pacer before it would reach the venue after it and stay live."""

    def __init__(self) -> None:
        self._queues = {kind: anyio.create_memory_object_stream[tuple[str, T]](math.inf) for kind in ("ahead", "rest")}

    def put(self, lane: str, item: T, *, ahead: bool = False) -> None:
        """Queue ``item`` of ``lane`` (``write`` gets the lane); ``ahead``: one order's cancel (above)."""
        self._queues["ahead" if ahead else "rest"][0].send_nowait((lane, item))

    async def run(self, write: Callable[[str, T], Awaitable[None]]) -> None:
        """Write what comes, ``write(lane, item)`` one at a time per queue, until cancelled."""
        async with anyio.create_task_group() as tasks:
            for _send, receive in self._queues.values():
                tasks.start_soon(self._drain, receive, write)

    @staticmethod
    async def _drain(receive: MemoryObjectReceiveStream[tuple[str, T]],
                     write: Callable[[str, T], Awaitable[None]]) -> None:
        async for lane, item in receive:
            await write(lane, item)

    def take_all(self) -> list[tuple[str, T]]:
        """Everything not yet handed to a writer (a connection ended: it will not be written)."""
        out: list[tuple[str, T]] = []
        for _send, receive in self._queues.values():
            while True:
                try:
                    out.append(receive.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    break
        return out


async def wait_for_room(buckets: Sequence[RateBucket], clock: Clock) -> bool:
    """Return once every one of ``buckets`` has a token (one, as a cancel takes), spending none;
    True when that meant waiting. One timer on ``clock`` per wait, for the latest bucket's due time."""
    waited = False
    while True:
        now = clock.now_ns()
        due = max((bucket.next_free_ns("cancel") for bucket in buckets if not bucket.can_take("cancel", now)),
                  default=None)
        if due is None:
            return waited
        waited = True
        await _woken_or_due(anyio.Event(), due, clock)


async def _woken_or_due(woken: anyio.Event, due: int | None, clock: Clock) -> None:
    """Return when ``woken`` is set (by another task) or, with ``due``, when ``clock`` reaches it
    (never a timer in the past: no spinning when a bound says "now")."""
    timer = clock.call_at(max(due, clock.now_ns() + 1), woken.set) if due is not None else None
    try:
        await woken.wait()
    finally:
        if timer is not None:
            timer.cancel()


class PacerClosed(ConnectionError):
    """The adapter is closing: the request never left the process."""


def pacing_clock(clock: Clock) -> Clock:
    """The clock departures are paced on: the engine's when it is real time (wall, or a scaled day
    shared with a sandbox venue, which counts on that same clock), the wall clock when the engine
    runs a simulated clock. A network venue counts in real time, and a simulated clock moves only
    when the engine steps it: a request waiting on it could wait forever (at shutdown) or leave in
    a real-time burst (when the engine steps fast).

    Wall time is read from the monotonic clock (a :class:`ScaledClock` at speed 1, which counts
    from the wall time it was made at): the system clock can be stepped (an NTP correction, an
    operator), and a pacer on it would, stepped back, wait out the step with every request queued
    behind it, or, stepped forward, take the last window's requests for expired and let a second
    window's worth reach the venue inside one of its real seconds."""
    if clock.simulated or isinstance(clock, WallClock):
        return ScaledClock(tz=clock.tz)
    return clock


def lane_buckets(
    venue: str, limits: Iterable[RateLimit], lanes: Mapping[str, LaneSpec], clock: Clock
) -> dict[str, tuple[tuple[RateBucket, TakeKind], ...]]:
    """Each lane's buckets: the venue account's own (:func:`venue_buckets`, the cancel reserve on
    "all" included) plus one per other scope a lane names ("queries", "auth" ...), shared between
    lanes that name the same scope. A scope the limits do not have costs nothing."""
    limits = tuple(limits)
    by_scope: dict[str, list[RateBucket]] = {}
    for bucket in venue_buckets(venue, limits, clock):
        by_scope.setdefault(bucket.scope, []).append(bucket)
    for limit in limits:
        if limit.scope in ("orders", "cancels", "all"):
            continue
        by_scope.setdefault(limit.scope, []).append(RateBucket(
            f"venue {venue!r} {limit.scope}", limit.count, limit.per_seconds, limit.burst, clock, scope=limit.scope,
        ))
    return {
        lane: tuple((bucket, kind) for scope in scopes for bucket in by_scope.get(scope, ()))
        for lane, (scopes, kind) in lanes.items()
    }


class DepartureQueue:
    """The pacing decision with no I/O and no waiting, so a fake clock can drive it: requests wait
    in lanes (FIFO each); :meth:`pop_ready` lets out the next one whose lane's buckets all have room
    now, lanes in priority order (the mapping's order), and spends its tokens."""

    __slots__ = ("_lanes", "_queues")

    def __init__(self, lanes: Mapping[str, Sequence[tuple[RateBucket, TakeKind]]]) -> None:
        self._lanes = {lane: tuple(buckets) for lane, buckets in lanes.items()}
        self._queues: dict[str, deque[Any]] = {lane: deque() for lane in lanes}

    def put(self, lane: str, item: Any) -> None:
        """Queue ``item`` at the back of ``lane`` (KeyError for a lane the pacer has not)."""
        self._queues[lane].append(item)

    def pop_ready(self, now: int) -> tuple[str, Any] | None:
        """The next request that may leave at ``now``, its tokens spent; None when none may.

        A lane whose head must wait does not hold up a lower lane that spends other buckets or
        needs fewer tokens: an order never needs less of the shared bucket than a cancel does, so
        it cannot overtake a waiting cancel there."""
        for lane, queue in self._queues.items():
            if not queue:
                continue
            buckets = self._lanes[lane]
            if all(bucket.can_take(kind, now) for bucket, kind in buckets):
                for bucket, _ in buckets:
                    bucket.take(now)
                return lane, queue.popleft()
        return None

    def next_due_ns(self) -> int | None:
        """When the earliest waiting lane head could leave (None when nothing waits); the buckets'
        own clock tells the time."""
        due: int | None = None
        for lane, queue in self._queues.items():
            if not queue:
                continue
            buckets = self._lanes[lane]
            if not buckets:
                return 0
            when = max(bucket.next_free_ns(kind) for bucket, kind in buckets)
            due = when if due is None else min(due, when)
        return due

    def remove(self, lane: str, item: Any) -> bool:
        """Take a request out before it left (its sender gave up, or its order was cancelled); True
        when it was waiting. Found by identity: two requests with equal fields are still two."""
        return self.remove_first(lane, lambda waiting: waiting is item) is not None

    def remove_first(self, lane: str, match: Callable[[Any], bool]) -> Any:
        """Take out the first request of ``lane`` that ``match`` accepts; it, or None."""
        queue = self._queues[lane]
        for at, waiting in enumerate(queue):
            if match(waiting):
                del queue[at]
                return waiting
        return None

    def drain(self) -> list[tuple[str, Any]]:
        """Everything still waiting, lanes in priority order, each lane in its order; now empty."""
        out = [(lane, item) for lane, queue in self._queues.items() for item in queue]
        for queue in self._queues.values():
            queue.clear()
        return out

    def waiting(self, lane: str | None = None) -> int:
        """Requests waiting (in one lane, or in all)."""
        if lane is not None:
            return len(self._queues[lane])
        return sum(len(queue) for queue in self._queues.values())


class _Ticket:
    """One sender waiting in :meth:`WirePacer.depart`; ``what`` is the adapter's note of whose
    request it is, handed back by :meth:`WirePacer.close` when the request never left."""

    __slots__ = ("what", "place", "event", "granted", "closed")

    def __init__(self, what: Any, place: bool) -> None:
        self.what = what
        self.place = place  # holds one of ``max_in_flight`` places from its grant until released
        self.event = anyio.Event()
        self.granted = False
        self.closed = False


class WirePacer:
    """A venue connection's departure limiter (see the module docstring).

    Two ways in: ``await depart(lane)`` right before a request is written (a sender per request,
    like the REST adapter's tasks), or ``put(lane, item)`` with ``on_depart(lane, item)`` called the
    moment the item may leave (a queue in front of one writer, like the WebSocket adapter's). The
    waiting is done by one timer on the pacing clock, armed for the next head's due time.
    """

    def __init__(
        self,
        venue: str,
        limits: Iterable[RateLimit],
        lanes: Mapping[str, LaneSpec],
        clock: Clock,
        on_depart: Callable[[str, Any], None] | None = None,
        max_in_flight: int | None = None,
        guard: Decimal = ARRIVAL_SPREAD_GUARD,
    ) -> None:
        self.venue = venue
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.clock = pacing_clock(clock)
        self.lane_specs = dict(lanes)
        self.guard = guard
        self._limits = tuple(limits)
        self._queue = DepartureQueue(lane_buckets(venue, guarded(limits, guard, self.clock.speed), self.lane_specs,
                                                  self.clock))
        #: where an ``on_depart`` adapter's writer writes through (see :class:`WriteHold`)
        self.hold = WriteHold(venue, self._limits, self.lane_specs, self.clock, guard)
        self._on_depart = on_depart
        self._timer: Timer | None = None
        self._timer_at = 0
        self.closed = False
        self.departed: Counter[str] = Counter()  # per lane
        self.delayed: Counter[str] = Counter()  # per lane: ``depart`` senders that had to wait for room

    def set_limits(self, limits: Iterable[RateLimit], lanes: Mapping[str, LaneSpec] | None = None) -> None:
        """New limits (the engine's effective ones, given before the first request) and, when
        given, new lane specs under the same lane names: buckets start full, waiting requests keep
        their places."""
        if lanes is not None:
            if set(lanes) != set(self.lane_specs):
                raise ValueError(f"lanes {sorted(lanes)} are not the pacer's {sorted(self.lane_specs)}")
            self.lane_specs = dict(lanes)
        self._limits = tuple(limits)
        waiting = self._queue.drain()
        self._queue = DepartureQueue(lane_buckets(self.venue, guarded(self._limits, self.guard, self.clock.speed),
                                                  self.lane_specs, self.clock))
        self.hold = WriteHold(self.venue, self._limits, self.lane_specs, self.clock, self.guard)
        for lane, item in waiting:
            self._queue.put(lane, item)
        self._pump()

    @property
    def departure_limits(self) -> tuple[RateLimit, ...]:
        """The limits requests actually leave at (each window ``guard`` longer): what the gate must
        spend at submit so that it admits no more than departs, and the queue stays bounded."""
        return guarded(self._limits, self.guard, self.clock.speed)

    def put(self, lane: str, item: Any) -> None:
        """Queue ``item``; ``on_depart(lane, item)`` runs when it may leave (at once if there is room)."""
        if self.closed:
            raise PacerClosed(f"venue {self.venue!r}: the adapter is closing; request not sent")
        self._queue.put(lane, item)
        self._pump()

    def take_back(self, lane: str, item: Any) -> bool:
        """Take ``item`` (queued with :meth:`put`) back before it departed: True when it was still
        waiting, so it never leaves and ``on_depart`` never runs for it; False once it has departed.
        Its lane's tokens were never spent (they are spent at departure)."""
        return self._queue.remove(lane, item)

    def take_back_unwritten(self, lane: str, item: Withdrawable, departed: Callable[[], None] | None = None) -> bool:
        """Take ``item`` back if its write has not begun (:class:`Withdrawable`): out of this
        pacer's queue if it still waits there; if it already departed, ``departed()`` undoes what
        its departure set up and the write hold stops keeping it. True then (also when taken back
        before), False once it is being written. What the pacer spent at its departure stays spent."""
        if item.written:
            return False
        if not item.withdrawn:
            item.withdrawn = True
            if not self.take_back(lane, item):
                if departed is not None:
                    departed()
                self.hold.recheck()
        return True

    def take_back_sender(self, lane: str, what: Any) -> bool:
        """Take back the request a :meth:`depart` / :meth:`sending` sender is waiting to send for
        ``what`` (found by identity), if it has not been granted: its sender gets
        :class:`PacerClosed` and nothing leaves. True when one was waiting."""
        ticket = self._queue.remove_first(lane, lambda item: isinstance(item, _Ticket) and item.what is what)
        if ticket is None:
            return False
        ticket.closed = True
        ticket.event.set()
        return True

    async def depart(self, lane: str, what: Any = None) -> None:
        """Return when a request of ``lane`` may be written now (its tokens spent). Raises
        :class:`PacerClosed` when the pacer closes first; a cancelled sender leaves the queue."""
        await self._wait(lane, _Ticket(what, place=False))

    async def _wait(self, lane: str, ticket: _Ticket) -> None:
        self.put(lane, ticket)
        if ticket.granted:
            return
        self.delayed[lane] += 1
        try:
            await ticket.event.wait()
        except BaseException:
            if ticket.granted:
                self._release(ticket)  # let go as its sender was cancelled: the place goes unused
            elif not ticket.closed:
                self._queue.remove(lane, ticket)
            raise
        if not ticket.granted:
            raise PacerClosed(f"venue {self.venue!r}: the adapter closed; request not sent")

    @asynccontextmanager
    async def sending(self, lane: str, what: Any = None) -> AsyncIterator[None]:
        """:meth:`depart`, then hold one of ``max_in_flight`` places until the answer is in. A
        request granted while every connection is busy would wait in the HTTP pool and leave in a
        bunch with the next ones: with the places counted here it is not granted until one frees,
        and then cancels still come first."""
        ticket = _Ticket(what, place=True)
        await self._wait(lane, ticket)
        try:
            yield
        finally:
            self._release(ticket)

    def _release(self, ticket: _Ticket) -> None:
        if ticket.place:
            ticket.place = False
            self.in_flight -= 1
            self._pump()

    def waiting(self, lane: str | None = None) -> int:
        """Requests waiting for room (in one lane, or in all)."""
        return self._queue.waiting(lane)

    def close(self) -> list[tuple[str, Any]]:
        """Stop: nothing more leaves. Returns what was waiting, ``(lane, item)`` (a ``depart``
        sender's ``what``), so the adapter reports each as not sent; those senders get
        :class:`PacerClosed`."""
        self.closed = True
        return self.withdraw()

    def withdraw(self) -> list[tuple[str, Any]]:
        """Take back everything waiting, as :meth:`close` does, but stay open with the buckets as
        they are: a connection that dropped has lost its waiting requests, while the venue still
        counts (per account or session) what left before the drop."""
        self._cancel_timer()
        out = []
        for lane, item in self._queue.drain():
            if isinstance(item, _Ticket):
                item.closed = True
                item.event.set()
                out.append((lane, item.what))
            else:
                out.append((lane, item))
        return out

    # ---- the timer -----------------------------------------------------------------------
    def _pump(self) -> None:
        if self.closed:
            return
        queue = self._queue
        clock = self.clock
        # the time is read for each departure: an on_depart that puts (and pumps) again spends at a
        # later instant, and an instant older than a bucket's last take reads as a clock stepped back
        while not self._full() and (ready := queue.pop_ready(clock.now_ns())) is not None:
            lane, item = ready
            self.departed[lane] += 1
            if isinstance(item, _Ticket):
                item.granted = True
                if item.place:
                    self.in_flight += 1
                item.event.set()
            elif self._on_depart is not None:
                self._on_depart(lane, item)
        if self._full():
            self._cancel_timer()  # the next answer frees a place and pumps
            return
        due = queue.next_due_ns()
        if due is None:
            self._cancel_timer()
            return
        due = max(due, clock.now_ns() + 1)  # never a timer in the past: no spinning if the bounds disagree
        if self._timer is None or self._timer_at != due:
            self._cancel_timer()
            self._timer_at = due
            self._timer = self.clock.call_at(due, self._on_timer)

    def _full(self) -> bool:
        """Every place taken (only :meth:`sending` takes places): nothing leaves until one frees."""
        return self.max_in_flight is not None and self.in_flight >= self.max_in_flight

    def _on_timer(self) -> None:
        self._timer = None
        self._pump()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def max_in_window(times_ns: Iterable[int], per_ns: int) -> int:
    """The most of ``times_ns`` in any window ``(t - per_ns, t]``, the window the buckets count:
    what a venue counting arrivals with a sliding window sees at its worst moment."""
    ordered = sorted(times_ns)
    most = start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - per_ns:
            start += 1
        most = max(most, end - start + 1)
    return most
