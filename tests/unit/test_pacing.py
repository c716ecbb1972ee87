"""Departure pacing (adapters/kit/pacing.py): the venue's budget held where the venue counts it.

The decision is driven by a fake clock (no sleeping, no timing in any assertion): a property test
holds :class:`DepartureQueue` to the window limit, the cancels' share and FIFO for any arrival
pattern; :class:`WirePacer` is driven by a manual real-time clock; the runtime is checked to hand
the effective limits to its adapter."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from decimal import Decimal
from functools import partial

import anyio
import pytest
from anyio import wait_all_tasks_blocked
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.kit.pacing import (
    ARRIVAL_SPREAD_GUARD,
    ORDER_LANES,
    DepartureQueue,
    Outbox,
    PacerClosed,
    WirePacer,
    WriteHold,
    guarded,
    lane_buckets,
    max_in_window,
    pacing_clock,
)
from adapters.paper.adapter import PaperAdapter
from engine.clock import NS_PER_S, Clock, ScaledClock, SimClock, Timer, WallClock
from engine.model import Instrument
from engine.risk.ratelimit import venue_cancel_reserve
from engine.runtime import Runtime
from engine.venue import AdapterOptions, RateLimit

T0 = 1_795_000_000 * NS_PER_S
D = Decimal


class ManualClock(Clock):
    """A real-time clock (not ``simulated``) whose time a test moves; timers run on ``advance``."""

    def __init__(self, start: int = T0) -> None:
        super().__init__()
        self.now = start
        self.timers: list[Timer] = []

    def now_ns(self) -> int:
        return self.now

    def call_at(self, when_ns: int, fn: Callable[..., object], *args: object) -> Timer:
        timer = Timer(when_ns, fn, args)
        self.timers.append(timer)
        return timer

    def advance(self, to: int) -> None:
        self.now = to
        due = [t for t in self.timers if t.when <= to and not t.cancelled]
        self.timers = [t for t in self.timers if t not in due]
        for timer in sorted(due, key=lambda t: t.when):
            timer.fn(*timer.args)


def recording(wire: list[str], name: str) -> Callable[[], Awaitable[bool]]:
    """A write for the hold that records ``name`` on ``wire`` and says it sent."""
    async def written() -> bool:
        wire.append(name)
        return True
    return written


def test_the_guard_is_never_less_than_a_share_of_real_time() -> None:
    """On a clock scaled 60 times a 1 s window is 17 ms of real time, and 5% of it less than the
    loop's latency: the stretch is at least 10 ms of real time (0.6 s of that clock; the write
    hold's half, 0.3 s). At real time the 5% of a window of 0.2 s or more stands, and a window
    shorter than that gets 10 ms."""
    order = RateLimit("orders", 4, D(1), 4, "doc")
    assert guarded([order], speed=60) == (replace(order, per_seconds=D("1.6")),)
    assert guarded([order], ARRIVAL_SPREAD_GUARD / 2, speed=60) == (replace(order, per_seconds=D("1.3")),)
    assert guarded([order]) == (replace(order, per_seconds=D("1.05")),)
    assert guarded([replace(order, per_seconds=D("0.1"))]) == (replace(order, per_seconds=D("0.11")),)
    assert guarded([order], D(0), speed=60) == (order,)
    scaled = ScaledClock(speed=60)
    pacer = WirePacer("v", [order], ORDER_LANES, scaled, on_depart=lambda lane, item: None)
    assert pacer.departure_limits == (replace(order, per_seconds=D("1.6")),)
    assert WirePacer("v", [order], ORDER_LANES, ManualClock()).departure_limits == guarded([order])
    # a speed whose floor is not whole nanoseconds (a sandbox's --speed is any float): rounded up,
    # or the write hold's bucket (half the guard: 1.1666666665 s) refuses to be built
    assert guarded([order], ARRIVAL_SPREAD_GUARD / 2, 33.3333333) == (replace(order, per_seconds=D("1.166666667")),)
    odd = WirePacer("v", [order], ORDER_LANES, ScaledClock(speed=33.3333333), on_depart=lambda lane, item: None)
    assert odd.departure_limits == (replace(order, per_seconds=D("1.333333333")),)


def test_the_pacer_counts_a_window_longer_than_the_venue() -> None:
    """Requests that left a window apart may arrive closer: the pacer's windows are 5% longer."""
    assert guarded([RateLimit("all", 95, D(1), 10, "doc")]) == (RateLimit("all", 95, D("1.05"), 10, "doc"),)
    clock = ManualClock()
    pacer = WirePacer("v", [RateLimit("cancels", 2, D(1))], ORDER_LANES, clock)
    for n in range(3):
        pacer.put("cancel", n)
    assert pacer.departed["cancel"] == 2
    clock.advance(T0 + NS_PER_S)
    assert pacer.departed["cancel"] == 2  # the venue's window has passed, the pacer's not yet
    clock.advance(T0 + NS_PER_S * 105 // 100)
    assert pacer.departed["cancel"] == 3


def test_withdraw_hands_back_the_waiting_and_keeps_what_was_spent() -> None:
    """A dropped connection takes back what waits; the budget spent before the drop still counts."""
    clock = ManualClock()
    left: list[int] = []
    pacer = WirePacer("v", [RateLimit("cancels", 2, D(1))], ORDER_LANES, clock, on_depart=lambda _l, n: left.append(n))
    for n in range(3):
        pacer.put("cancel", n)
    assert pacer.withdraw() == [("cancel", 2)] and not pacer.closed
    pacer.put("cancel", 3)
    assert left == [0, 1]  # the two spent before still count
    clock.advance(T0 + NS_PER_S * 105 // 100)
    assert left == [0, 1, 3]


def test_take_back_removes_only_what_still_waits_and_spends_nothing() -> None:
    """A request taken back while it waits never departs and costs no token: the one behind it
    leaves in its place. Found by identity: an equal but different request stays."""
    clock = ManualClock()
    left: list[list[str]] = []
    pacer = WirePacer("v", [RateLimit("cancels", 1, D(1))], ORDER_LANES, clock, on_depart=lambda _l, n: left.append(n))
    first, twin, twin_again, last = ["a"], ["b"], ["b"], ["c"]
    for item in (first, twin, twin_again, last):
        pacer.put("cancel", item)
    assert left == [first]
    assert not pacer.take_back("cancel", first)  # departed: too late
    assert pacer.take_back("cancel", twin_again) and not pacer.take_back("cancel", twin_again)
    clock.advance(T0 + NS_PER_S * 105 // 100)
    assert left == [first, twin] and left[1] is twin
    clock.advance(T0 + NS_PER_S * 210 // 100)
    assert left == [first, twin, last] and pacer.waiting() == 0


@pytest.mark.anyio
async def test_take_back_sender_wakes_a_waiting_sender_not_a_granted_one() -> None:
    """A ``sending`` request taken back wakes its sender with PacerClosed and leaves no place or
    token spent; one already granted is not taken back."""
    clock = ManualClock()
    pacer = WirePacer("v", [RateLimit("all", 2, D(1))], ORDER_LANES, clock)  # reserve 1: one order
    outcomes: list[str] = []

    async def send(what: str) -> None:
        try:
            async with pacer.sending("order", what):
                outcomes.append(f"sent {what}")
        except PacerClosed:
            outcomes.append(f"taken back {what}")

    async with anyio.create_task_group() as tg:
        for what in ("o1", "o2", "o3"):
            tg.start_soon(send, what)
            await wait_all_tasks_blocked()
        assert not pacer.take_back_sender("order", "o1")  # granted already
        assert pacer.take_back_sender("order", "o2") and not pacer.take_back_sender("order", "o2")
        await wait_all_tasks_blocked()
        assert outcomes == ["sent o1", "taken back o2"] and pacer.waiting("order") == 1
        clock.advance(T0 + NS_PER_S * 105 // 100)
    assert outcomes == ["sent o1", "taken back o2", "sent o3"] and pacer.in_flight == 0


def test_max_in_window_counts_the_buckets_window() -> None:
    assert max_in_window([], NS_PER_S) == 0
    assert max_in_window([0, NS_PER_S], NS_PER_S) == 1  # (t - P, t]: the first has left
    assert max_in_window([0, NS_PER_S - 1, 5, 3], NS_PER_S) == 4


# ---- the decision, for any arrival pattern ------------------------------------------------------

limits_st = st.builds(
    lambda count, per_ms, burst_frac, orders: (count, per_ms, burst_frac, orders),
    st.integers(2, 25), st.sampled_from([100, 250, 1000, 2000]), st.sampled_from([None, 0.5, 1.0]),
    st.sampled_from([None, (1, 3), (2, 5)]),
)
arrivals_st = st.lists(
    st.tuples(st.integers(0, 400), st.sampled_from(["order", "cancel"])), min_size=1, max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(limits_st, arrivals_st)
def test_departures_hold_the_window_the_cancels_share_and_fifo(limits, arrivals) -> None:
    """Whatever arrives when: in every sliding window the shared bucket's cap holds (its count,
    unless a larger burst was declared), orders alone never take the cancels' reserve, a cancel
    waits only while the buckets could not take a cancel, each lane leaves in arrival order, and
    everything leaves in the end (nothing dropped, never stuck)."""
    count, per_ms, burst_frac, orders = limits
    per_ns = per_ms * 1_000_000
    burst = None if burst_frac is None else max(1, int(count * burst_frac))
    declared = [RateLimit("all", count, D(per_ms) / 1000, burst)]
    if orders is not None:
        declared.append(RateLimit("orders", orders[0], D(per_ms) / 1000, orders[1]))
    clock = SimClock(T0)
    lanes = lane_buckets("v", declared, ORDER_LANES, clock)
    queue = DepartureQueue(lanes)
    shared = next(b for b, _ in lanes["cancel"] if b.scope == "all")
    cancel_buckets = lanes["cancel"]
    departed: list[tuple[int, str, int]] = []

    def release(now: int) -> None:
        clock.set_time(now)
        while (ready := queue.pop_ready(now)) is not None:
            departed.append((now, ready[0], ready[1]))
        if queue.waiting("cancel"):  # a cancel waits only when a cancel could not leave now
            assert not all(b.can_take(kind, now) for b, kind in cancel_buckets)

    def run_until(target: int) -> None:
        while (due := queue.next_due_ns()) is not None and due <= target:
            before = len(departed)
            release(max(due, clock.now_ns()))
            assert len(departed) > before, "a head said due left nothing: stuck"
        release(target)

    now = T0
    for seq, (gap_ms, lane) in enumerate(arrivals):
        now += gap_ms * 1_000_000
        run_until(now)
        queue.put(lane, seq)
        release(now)
    run_until(now + 10_000 * NS_PER_S)
    assert queue.waiting() == 0
    assert sorted(seq for _, _, seq in departed) == list(range(len(arrivals)))
    times = [t for t, _, _ in departed]
    assert max_in_window(times, per_ns) <= shared.window_cap
    assert max_in_window([t for t, lane, _ in departed if lane == "order"], per_ns) <= (
        shared.window_cap - shared.reserve
    )
    assert shared.reserve == venue_cancel_reserve(shared.capacity, shared.window_cap)
    for lane in ("order", "cancel"):
        in_lane = [seq for _, name, seq in departed if name == lane]
        assert in_lane == sorted(in_lane)
    assert times == sorted(times)


def test_a_cancel_overtakes_waiting_orders_and_orders_leave_the_reserve() -> None:
    clock = SimClock(T0)
    queue = DepartureQueue(lane_buckets("v", [RateLimit("all", 5, D(1))], ORDER_LANES, clock))  # reserve 1
    for n in range(6):
        queue.put("order", n)
    assert [queue.pop_ready(T0) for _ in range(5)] == [("order", n) for n in range(4)] + [None]
    queue.put("cancel", "c")
    assert queue.pop_ready(T0) == ("cancel", "c")  # the reserve is the cancel's
    assert queue.pop_ready(T0) is None
    assert queue.waiting("order") == 2


# ---- the async pacer ----------------------------------------------------------------------------

@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_waiting_requests_leave_in_order_cancels_first_as_the_clock_moves() -> None:
    clock = ManualClock()
    # GCRA one per 200 ms; no arrival-spread guard, so the window is exactly 1 s
    pacer = WirePacer("v", [RateLimit("all", 5, D(1))], ORDER_LANES, clock, guard=D(0))
    left: list[str] = []

    async def send(lane: str, name: str) -> None:
        await pacer.depart(lane)
        left.append(name)

    async with anyio.create_task_group() as tg:
        for n in range(6):
            tg.start_soon(send, "order", f"o{n}")
            await wait_all_tasks_blocked()
        assert left == ["o0", "o1", "o2", "o3"]  # the fifth would take the cancels' reserve
        tg.start_soon(send, "cancel", "c0")
        await wait_all_tasks_blocked()
        tg.start_soon(send, "cancel", "c1")
        await wait_all_tasks_blocked()
        assert left[-1] == "c0" and pacer.waiting() == 3
        clock.advance(T0 + NS_PER_S - 1)  # the window (t - 1 s, t] still holds all five
        await wait_all_tasks_blocked()
        assert pacer.waiting() == 3
        clock.advance(T0 + NS_PER_S)
        await wait_all_tasks_blocked()
    assert left == ["o0", "o1", "o2", "o3", "c0", "c1", "o4", "o5"]  # the waiting cancel first


@pytest.mark.anyio
async def test_the_write_hold_counts_from_when_writes_returned() -> None:
    """Four orders released at T0 are written 0.4 s late (a stall between release and write); the
    fifth, released one window later, must wait for the window counted from the writes, not from
    the releases: on the wire no 1 s holds five. A stall under half the guard holds nothing."""
    clock = ManualClock()
    limits = [RateLimit("orders", 4, D(1))]
    pacer = WirePacer("v", limits, ORDER_LANES, clock, on_depart=lambda lane, item: None, guard=D("0.1"))
    wire: list[int] = []

    async def written() -> bool:
        wire.append(clock.now_ns())
        return True

    clock.advance(T0 + 400_000_000)
    for _ in range(4):
        assert await pacer.hold.write("order", written)
    clock.advance(T0 + 1_100_000_000)  # the pacer's own window (1.1 s) from the releases at T0
    async with anyio.create_task_group() as tg:
        tg.start_soon(pacer.hold.write, "order", written)
        await wait_all_tasks_blocked()
        assert len(wire) == 4  # held: 1.05 s from the writes is 1.45 s
        clock.advance(T0 + 1_450_000_000 - 1)
        await wait_all_tasks_blocked()
        assert len(wire) == 4
        clock.advance(T0 + 1_450_000_000)
        await wait_all_tasks_blocked()
    assert wire[-1] == T0 + 1_450_000_000 and pacer.hold.held == 1
    assert max_in_window(wire, NS_PER_S) <= 4
    clock.advance(T0 + 2_540_000_000)  # 1.09 s after the last write: room again, nothing held
    assert await pacer.hold.write("order", written) and pacer.hold.held == 1


@pytest.mark.anyio
async def test_a_writer_with_room_is_not_held_behind_one_waiting_for_it() -> None:
    """An order waits in the hold for the orders budget; a cancel, which spends only ``all`` (with
    room), is written meanwhile. Both writers of one hold still write one at a time, and the
    order then leaves when its window has passed, its room checked again."""
    clock = ManualClock()
    limits = [RateLimit("all", 10, D(1)), RateLimit("orders", 1, D(1))]
    pacer = WirePacer("v", limits, ORDER_LANES, clock, on_depart=lambda lane, item: None, guard=D(0))
    wire: list[str] = []

    writer = partial(recording, wire)

    assert await pacer.hold.write("order", writer("o1"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(pacer.hold.write, "order", writer("o2"))
        await wait_all_tasks_blocked()
        assert await pacer.hold.write("cancel", writer("c1"))  # not behind o2
        assert wire == ["o1", "c1"]
        clock.advance(T0 + NS_PER_S)
        await wait_all_tasks_blocked()
    assert wire == ["o1", "c1", "o2"] and pacer.hold.held == 1


@pytest.mark.anyio
async def test_the_outbox_writes_cancels_beside_the_rest_each_in_order() -> None:
    """An order whose write waits does not hold one order's cancels queued after it; a mass cancel
    (``ahead`` False: it names no order) stays behind what departed before it; each queue keeps
    its order."""
    outbox: Outbox[str] = Outbox()
    release = anyio.Event()
    wire: list[str] = []

    async def write(lane: str, item: str) -> None:
        if item == "o1":
            await release.wait()
        wire.append(item)

    for lane, item in (("order", "o1"), ("control", "q1"), ("cancel", "c1"), ("cancel", "c2")):
        outbox.put(lane, item, ahead=lane == "cancel")
    outbox.put("cancel", "all")  # a mass cancel
    async with anyio.create_task_group() as tg:
        tg.start_soon(outbox.run, write)
        await wait_all_tasks_blocked()
        assert wire == ["c1", "c2"]  # o1 waits; q1 and the mass cancel behind it, in order
        release.set()
        await wait_all_tasks_blocked()
        assert wire == ["c1", "c2", "o1", "q1", "all"]
        tg.cancel_scope.cancel()
    for lane, item in (("order", "o2"), ("cancel", "c3")):  # no writer now: a connection ended
        outbox.put(lane, item, ahead=lane == "cancel")
    assert sorted(outbox.take_all()) == [("cancel", "c3"), ("order", "o2")] and outbox.take_all() == []


@pytest.mark.anyio
async def test_writers_sharing_a_hold_write_one_at_a_time() -> None:
    """Two writers on one hold (adapters sharing an address's public budget), a transport that
    yields while writing: both would find the room the first has not spent yet. One at a time,
    the second waits for the window."""
    clock = ManualClock()
    pacer = WirePacer("v", [RateLimit("orders", 1, D(1))], ORDER_LANES, clock, on_depart=lambda lane, item: None,
                      guard=D(0))
    wire: list[int] = []

    async def yielding_send() -> bool:
        await anyio.sleep(0)
        wire.append(clock.now_ns())
        return True

    async with anyio.create_task_group() as tg:
        tg.start_soon(pacer.hold.write, "order", yielding_send)
        tg.start_soon(pacer.hold.write, "order", yielding_send)
        await wait_all_tasks_blocked()
        assert wire == [T0]
        clock.advance(T0 + NS_PER_S)
        await wait_all_tasks_blocked()
    assert wire == [T0, T0 + NS_PER_S]


@pytest.mark.anyio
async def test_a_cancel_waiting_in_the_hold_is_written_before_an_order_that_waited_longer() -> None:
    """A stall left an order, then a cancel, waiting in the hold for a shared budget with room for
    one more at a time: the cancel is written first (cancels first, as in the pacer), the order
    when the next token frees; the order never takes a token a waiting cancel needs, and a cancel
    that gives up waiting lets the order go at once."""
    clock = ManualClock()
    pacer = WirePacer("v", [RateLimit("all", 2, D(1))], ORDER_LANES, clock, on_depart=lambda lane, item: None,
                      guard=D(0))
    wire: list[str] = []

    writer = partial(recording, wire)

    assert await pacer.hold.write("order", writer("o1"))
    clock.advance(T0 + NS_PER_S // 2)
    assert await pacer.hold.write("order", writer("o2"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(pacer.hold.write, "order", writer("o3"))
        await wait_all_tasks_blocked()
        tg.start_soon(pacer.hold.write, "cancel", writer("c1"))
        await wait_all_tasks_blocked()
        clock.advance(T0 + NS_PER_S)  # o1's token frees: one write
        await wait_all_tasks_blocked()
        assert wire == ["o1", "o2", "c1"]
        clock.advance(T0 + NS_PER_S * 3 // 2)  # o2's
        await wait_all_tasks_blocked()
    assert wire == ["o1", "o2", "c1", "o3"]

    # a cancel short only on its own budget keeps nothing of "all" (the pacer, too, lets others
    # pass a head waiting on a budget they do not share); short on "all" as well, it keeps its
    # token there until it gives up
    pacer = WirePacer("v", [RateLimit("all", 3, D(1)), RateLimit("cancels", 1, D(1))], ORDER_LANES, clock,
                      on_depart=lambda lane, item: None, guard=D(0))
    assert await pacer.hold.write("cancel", writer("c2"))
    assert await pacer.hold.write("order", writer("o4"))
    async with anyio.create_task_group() as tg:
        waiting_cancel = anyio.CancelScope()

        async def cancel_c3() -> None:
            with waiting_cancel:
                await pacer.hold.write("cancel", writer("c3"))

        tg.start_soon(cancel_c3)
        await wait_all_tasks_blocked()
        assert await pacer.hold.write("order", writer("o5"))  # "all" had room: not kept for c3
        tg.start_soon(pacer.hold.write, "order", writer("o6"))
        await wait_all_tasks_blocked()
        # "all" is full now: c3, short there too, keeps its next token (and one of "cancels")
        assert wire[-3:] == ["c2", "o4", "o5"] and pacer.hold.cancels_waiting == 2
        waiting_cancel.cancel()  # c3's order filled meanwhile: its sender gave up
        await wait_all_tasks_blocked()
        assert pacer.hold.cancels_waiting == 0
        clock.advance(clock.now + NS_PER_S)
        await wait_all_tasks_blocked()
    assert wire[-4:] == ["c2", "o4", "o5", "o6"]


@pytest.mark.anyio
async def test_an_order_behind_a_waiting_cancel_goes_when_time_frees_room_for_both() -> None:
    """A cancel waits for its own budget (1 per 2 s) and keeps the token of "all" (3/s) it was
    short of; an order waits behind it. When time frees "all" (1.0 s) the cancel looks again,
    keeps nothing there (it still waits for its own budget) and the order goes then, not when
    the cancel's own budget frees (2.0 s): nothing but time would have woken either (a review's
    repro; the cancel still finds room in "all" at 2.0 s)."""
    clock = ManualClock()
    pacer = WirePacer("v", [RateLimit("all", 3, D(1)), RateLimit("cancels", 1, D(2))], ORDER_LANES, clock,
                      on_depart=lambda lane, item: None, guard=D(0))
    wire: list[tuple[str, int]] = []

    def stamped(name: str) -> Callable[[], Awaitable[bool]]:
        async def written() -> bool:
            wire.append((name, clock.now - T0))
            return True
        return written

    assert await pacer.hold.write("cancel", stamped("c0"))
    clock.advance(T0 + NS_PER_S // 10)
    assert await pacer.hold.write("order", stamped("o1"))
    clock.advance(T0 + NS_PER_S // 5)
    assert await pacer.hold.write("order", stamped("o2"))
    async with anyio.create_task_group() as tg:
        clock.advance(T0 + NS_PER_S // 2)
        tg.start_soon(pacer.hold.write, "cancel", stamped("c1"))
        await wait_all_tasks_blocked()
        clock.advance(T0 + 6 * NS_PER_S // 10)
        tg.start_soon(pacer.hold.write, "order", stamped("o3"))
        await wait_all_tasks_blocked()
        for tenth in range(10, 21):
            clock.advance(T0 + tenth * NS_PER_S // 10)
            await wait_all_tasks_blocked()
    assert wire[3:] == [("o3", NS_PER_S), ("c1", 2 * NS_PER_S)]


class CountingClock(ScaledClock):
    """Real (scaled) time, counting the timers armed: a waiter that re-arms one for "now" spins."""

    def __init__(self, speed: float) -> None:
        super().__init__(speed=speed)
        self.armed = 0

    def call_at(self, when_ns: int, fn: Callable[..., object], *args: object) -> Timer:
        self.armed += 1
        return super().call_at(when_ns, fn, *args)


@pytest.mark.anyio
async def test_writes_waiting_behind_a_cancel_on_a_real_clock_neither_spin_nor_wait_for_it() -> None:
    """On a real clock (x10), with "all" 1/s and a "cancels" budget of 1 per 10 s: c1 waits for its
    own budget and at first for "all"; o1 behind it goes when "all" refills, before c1 (a cancel
    that kept its token of "all" until its own budget refilled held o1 that long: a review's repro
    at 1 per 3 s; 10 s leaves the loop 0.9 s of real time to be late in before c1 could go first),
    and nobody re-arms a timer for the present over and over (a waiter behind more kept tokens
    than the bucket holds did, at ~30,000 a second: reviews' repros, a full core each)."""
    clock = CountingClock(speed=10)
    hold = WriteHold("v", [RateLimit("all", 1, D(1)), RateLimit("cancels", 1, D(10))], ORDER_LANES, clock)
    wire: list[str] = []
    writer = partial(recording, wire)
    assert await hold.write("cancel", writer("c0"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(hold.write, "cancel", writer("c1"))
        await anyio.sleep(0.01)
        tg.start_soon(hold.write, "order", writer("o1"))
    assert wire == ["c0", "o1", "c1"]
    assert clock.armed < 20, clock.armed

    # more kept than the bucket holds: two writes in progress fill "all" (2), a cancel waits
    clock = CountingClock(speed=10)
    hold = WriteHold("v", [RateLimit("all", 2, D(1))], ORDER_LANES, clock)
    turns = [await hold.turn("order"), await hold.turn("order")]
    async with anyio.create_task_group() as tg:
        tg.start_soon(hold.write, "cancel", writer("c2"))
        await anyio.sleep(0.01)
        tg.start_soon(hold.write, "order", writer("o2"))
        await anyio.sleep(0.2)  # two seconds of the clock, the writes still in progress
        armed = clock.armed
        for turn in turns:
            assert turn is not None
            turn.end(sent=False)
    assert armed < 20, armed
    assert wire[-2:] == ["c2", "o2"]


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_the_hold_under_random_writes_give_ups_and_time(seed: int) -> None:
    """Random orders and cancels, some giving up while they wait, the clock moving in random
    steps: every write that did not give up is written, no window of either budget holds more
    than its count on the write times, and nothing stays counted in progress or waiting."""
    rng = random.Random(seed)
    clock = ManualClock()
    pacer = WirePacer("v", [RateLimit("all", 3, D(1)), RateLimit("cancels", 2, D(1))], ORDER_LANES, clock,
                      on_depart=lambda lane, item: None, guard=D(0))
    wire: dict[str, list[int]] = {"order": [], "cancel": []}
    writers: list[tuple[anyio.CancelScope, list[bool]]] = []

    async def write(lane: str, scope: anyio.CancelScope, wrote: list[bool]) -> None:
        async def written() -> bool:
            wire[lane].append(clock.now_ns())
            wrote.append(True)
            return True

        with scope:
            await pacer.hold.write(lane, written)

    async with anyio.create_task_group() as tg:
        for _ in range(60):
            action = rng.random()
            if action < 0.5:
                writers.append((anyio.CancelScope(), []))
                tg.start_soon(write, rng.choice(("order", "cancel")), *writers[-1])
            elif action < 0.6 and writers:
                rng.choice(writers)[0].cancel()  # gives up (if it has not written yet)
            else:
                clock.advance(clock.now + rng.randrange(400_000_000))
            await wait_all_tasks_blocked()
        for _ in range(40):  # time enough for everyone left
            clock.advance(clock.now + NS_PER_S)
            await wait_all_tasks_blocked()
    assert all(wrote or scope.cancel_called for scope, wrote in writers)
    assert max_in_window(sorted(wire["order"] + wire["cancel"]), NS_PER_S) <= 3
    assert max_in_window(sorted(wire["cancel"]), NS_PER_S) <= 2
    assert pacer.hold.in_progress == 0 and pacer.hold.cancels_waiting == 0


@pytest.mark.anyio
async def test_a_write_taken_back_while_the_hold_keeps_it_stops_waiting() -> None:
    """An order waits in the hold for the orders budget; its request is taken back (``wanted``
    turns False) and the adapter asks the hold to look again: the write returns False at once,
    with nothing written, spent or counted as held, and the clock never moved, so what queued
    behind it is not kept a window for room it will not use."""
    clock = ManualClock()
    pacer = WirePacer("v", [RateLimit("orders", 1, D(1))], ORDER_LANES, clock, on_depart=lambda lane, item: None,
                      guard=D(0))
    wire: list[str] = []
    results: list[bool] = []
    wanted = [True]

    writer = partial(recording, wire)

    async def held_write() -> None:
        results.append(await pacer.hold.write("order", writer("o2"), lambda: wanted[0]))

    assert await pacer.hold.write("order", writer("o1"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(held_write)
        await wait_all_tasks_blocked()
        pacer.hold.recheck()  # woken while still wanted: waits on
        await wait_all_tasks_blocked()
        assert results == []
        wanted[0] = False
        pacer.hold.recheck()
        await wait_all_tasks_blocked()
        assert results == [False]
    assert wire == ["o1"] and pacer.hold.held == 0 and pacer.hold.in_progress == 0
    clock.advance(T0 + NS_PER_S)
    assert await pacer.hold.write("order", writer("o3"))  # o2 spent nothing: o1's window alone
    assert wire == ["o1", "o3"]


@pytest.mark.anyio
async def test_the_write_hold_spends_nothing_for_what_was_not_sent() -> None:
    clock = ManualClock()
    pacer = WirePacer("v", [RateLimit("orders", 1, D(1))], ORDER_LANES, clock, on_depart=lambda lane, item: None)

    async def refused() -> bool:
        return False  # the connection it was made for is gone

    async def sent() -> bool:
        return True

    assert not await pacer.hold.write("order", refused)
    assert await pacer.hold.write("order", sent)  # the refused one took no token
    assert await pacer.hold.write("login", sent)  # a lane the pacer does not know: never held
    assert pacer.hold.held == 0


@pytest.mark.anyio
async def test_close_hands_back_what_never_left_and_wakes_its_senders() -> None:
    clock = ManualClock()
    pacer = WirePacer("v", [RateLimit("all", 2, D(1))], ORDER_LANES, clock)  # reserve 1: one order
    outcomes: list[str] = []

    async def send(lane: str, what: str) -> None:
        try:
            await pacer.depart(lane, what)
            outcomes.append(f"sent {what}")
        except PacerClosed:
            outcomes.append(f"not sent {what}")

    async with anyio.create_task_group() as tg:
        for lane, what in (("order", "o1"), ("order", "o2"), ("cancel", "c1"), ("cancel", "c2")):
            tg.start_soon(send, lane, what)
            await wait_all_tasks_blocked()
        assert pacer.close() == [("cancel", "c2"), ("order", "o2")]
    assert outcomes == ["sent o1", "sent c1", "not sent c2", "not sent o2"]
    assert pacer.waiting() == 0
    assert all(timer.cancelled for timer in clock.timers)  # no timer left to fire
    with pytest.raises(PacerClosed):
        pacer.put("cancel", "late")


@pytest.mark.anyio
async def test_a_sender_cancelled_while_waiting_leaves_the_queue() -> None:
    clock = ManualClock()
    pacer = WirePacer("v", [RateLimit("all", 2, D(1))], ORDER_LANES, clock)
    await pacer.depart("order")
    with anyio.move_on_after(0.05):
        await pacer.depart("order")
    assert pacer.waiting() == 0


@pytest.mark.anyio
async def test_only_free_connections_let_requests_leave() -> None:
    """A request granted while every connection is busy would queue in the HTTP pool and leave in
    a bunch later: with ``max_in_flight`` the next one is granted only when an answer is in."""
    pacer = WirePacer("v", [RateLimit("all", 100, D(1))], ORDER_LANES, ManualClock(), max_in_flight=2)
    done = [anyio.Event() for _ in range(3)]
    started: list[int] = []

    async def send(n: int) -> None:
        async with pacer.sending("order"):
            started.append(n)
            await done[n].wait()

    async with anyio.create_task_group() as tg:
        for n in range(3):
            tg.start_soon(send, n)
        await wait_all_tasks_blocked()
        assert started == [0, 1] and pacer.in_flight == 2
        done[0].set()
        await wait_all_tasks_blocked()
        assert started == [0, 1, 2]
        done[1].set()
        done[2].set()
    assert pacer.in_flight == 0


@pytest.mark.anyio
async def test_an_engine_on_the_simulated_clock_paces_on_real_time() -> None:
    """The simulated clock moves only when the engine steps it (and not at all at shutdown): a
    request waiting on it would never leave. The pacer waits on real time instead."""
    frozen = SimClock(T0)
    pacer = WirePacer("v", [RateLimit("all", 2, D("0.01"))], ORDER_LANES, frozen)  # one order per 10 ms
    with anyio.fail_after(10):  # generous: each waits about 10 ms of real time
        for _ in range(3):
            await pacer.depart("order")
    assert pacer.departed["order"] == 3
    assert isinstance(pacing_clock(frozen), ScaledClock) and not pacing_clock(frozen).simulated
    assert pacing_clock(clock := ManualClock()) is clock  # a real-time clock (scaled) is kept


@pytest.mark.anyio
@pytest.mark.parametrize("step_s", [-3600, 3600])
async def test_a_step_of_the_system_clock_does_not_move_the_window(monkeypatch: pytest.MonkeyPatch,
                                                                   step_s: int) -> None:
    """Two orders leave at once (2 per 0.2 s), then the system clock is stepped an hour (an NTP
    correction, an operator). Back: the third must not wait out the hour with everything queued
    behind it. Forward: it must not take the first two for expired and leave at once, two
    windows' worth inside one of the venue's real windows. It leaves one (guarded) window after
    them, as without the step: the pacer reads the monotonic clock."""
    pacer = WirePacer("v", [RateLimit("orders", 2, D("0.2"))], ORDER_LANES, WallClock())
    start = time.monotonic()
    for _ in range(2):
        await pacer.depart("order")
    stepped = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: stepped() + step_s * NS_PER_S)
    with anyio.fail_after(10):  # generous: the window is 0.21 s
        await pacer.depart("order")
    assert time.monotonic() - start >= 0.2  # a lower bound only: a loaded machine waits longer


class _LimitsRecorded(PaperAdapter):
    """Records the limits it is given and answers, like a pacing adapter, with a longer window."""

    def set_rate_limits(self, limits: tuple[RateLimit, ...]) -> tuple[RateLimit, ...]:
        self.limits_given = limits
        return guarded(limits)


@pytest.mark.parametrize("override", [None, [RateLimit("all", 40, D(1), source="config")]])
def test_the_runtime_hands_the_effective_limits_to_the_adapter(override) -> None:
    """What the gate spends is what the adapter paces with: the declared limits, or the config's."""
    clock = SimClock(T0)
    runtime = Runtime(clock)
    listed = [Instrument("MEBL", "psx", tick_size=D("0.01"), lot_size=D(1), previous_close=D(100))]
    adapter = _LimitsRecorded("psx", AdapterOptions(), listed, clock, runtime)
    runtime.add_venue("psx", adapter, listed, rate_limits=override)
    assert adapter.limits_given == tuple(override if override is not None else PaperAdapter.rate_limits)
    # the gate's venue buckets spend what the adapter says really departs, not the raw limits
    spent = [(b.count, b.per_seconds) for b in runtime.venues["psx"].buckets]
    assert spent == [(limit.count, limit.per_seconds) for limit in guarded(adapter.limits_given)]


@pytest.mark.anyio
async def test_a_write_given_up_while_the_socket_is_busy_spends_nothing() -> None:
    """Two writes have room (2 a second); the first holds the socket, the second is cancelled while
    it waits for it: it never left, so its token is not spent and a third write goes at once."""
    clock = ManualClock()
    pacer = WirePacer("v", [RateLimit("orders", 2, D(1))], ORDER_LANES, clock, on_depart=lambda lane, item: None,
                      guard=D(0))
    release = anyio.Event()
    wire: list[str] = []

    async def slow() -> bool:
        await release.wait()
        wire.append("first")
        return True

    async def quick() -> bool:
        wire.append("third")
        return True

    async with anyio.create_task_group() as tg:
        tg.start_soon(pacer.hold.write, "order", slow)
        await wait_all_tasks_blocked()
        with anyio.move_on_after(0.05):
            await pacer.hold.write("order", quick)  # waits for the socket, then is given up
        assert wire == []
        release.set()
    with anyio.fail_after(5):
        assert await pacer.hold.write("order", quick)  # the window's second token was not spent
    assert wire == ["first", "third"] and pacer.hold.held == 0
