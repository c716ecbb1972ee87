"""Rate limits: exact bucket arithmetic, the cancel reserve, all-or-nothing limiters, and a long
randomised run whose accepted timestamps prove no budget was ever exceeded."""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from engine.clock import NS_PER_S, SimClock
from engine.model import OrderType, Side, TimeInForce
from engine.rejects import Reject
from engine.risk.gate import Gate, OrderRequest, Rejection
from engine.risk.ratelimit import (
    RateBucket,
    RateLimitCheck,
    RateLimitConfig,
    RateLimiter,
    venue_buckets,
)
from engine.venue import RateLimit

T0 = 1_795_000_000 * NS_PER_S
MS = 1_000_000


def request() -> OrderRequest:
    return OrderRequest(
        "mm", "pulse", "BTC-PERP", None, Side.BUY, Decimal(1), Decimal(100), OrderType.LIMIT, TimeInForce.GTC,
        False, "c1",
    )


# --- RateBucket ---------------------------------------------------------------------------------


def test_burst_then_refusal_has_no_side_effect() -> None:
    clock = SimClock(T0)
    bucket = RateBucket("b", 10, Decimal(1), None, clock)
    assert all(bucket.try_take() for _ in range(10))
    before = (bucket.headroom(), bucket.taken, bucket.next_free_ns())
    assert bucket.try_take() is False
    assert bucket.try_take("cancel") is False
    assert (bucket.headroom(), bucket.taken, bucket.next_free_ns()) == before
    assert (bucket.taken, bucket.refused) == (10, 2)


def test_gcra_spacing_is_exact_to_the_nanosecond() -> None:
    clock = SimClock(T0)
    bucket = RateBucket("b", 10, Decimal(1), 1, clock)  # one at a time, one per 100 ms
    assert bucket.try_take()
    clock.set_time(T0 + 100 * MS - 1)
    assert not bucket.try_take()
    clock.set_time(T0 + 100 * MS)
    assert bucket.try_take()


def test_gcra_with_a_rate_that_is_not_a_whole_number_of_ns() -> None:
    """3 per second: the emission interval is 333_333_333.33 ns; scaled integers never round it."""
    clock = SimClock(T0)
    bucket = RateBucket("b", 3, Decimal(1), 1, clock)
    assert bucket.try_take()
    assert bucket.next_free_ns() == T0 + 333_333_334  # ceil(1e9 / 3)
    clock.set_time(T0 + 333_333_334)
    assert bucket.try_take()
    # that take came 2/3 ns after its slot, and GCRA does not bank lateness: the next slot is one
    # exact interval after it, ceil(333_333_334 + 1e9 / 3)
    assert bucket.next_free_ns() == T0 + 666_666_668
    clock.set_time(T0 + 666_666_667)
    assert not bucket.try_take()


def test_window_cap_binds_where_the_token_bucket_alone_would_not() -> None:
    clock = SimClock(T0)
    bucket = RateBucket("b", 20, Decimal(1), 40, clock)
    assert all(bucket.try_take() for _ in range(40))
    # the token bucket has refilled 10 tokens by now, but 40 takes already sit in this 1 s window
    clock.set_time(T0 + 500 * MS)
    assert bucket.headroom() == 0
    assert not bucket.try_take()
    clock.set_time(T0 + NS_PER_S - 1)
    assert bucket.headroom() == 0
    clock.set_time(T0 + NS_PER_S)  # the first 40 leave the window (T0, T0 + 1 s]
    assert bucket.headroom() == 20  # now the token bucket binds: 20 refilled in 1 s
    assert bucket.next_free_ns() == T0 + NS_PER_S


def test_reserve_keeps_tokens_for_cancels() -> None:
    clock = SimClock(T0)
    bucket = RateBucket("v", 10, Decimal(1), None, clock, reserve=2)
    assert [bucket.try_take("order") for _ in range(9)] == [True] * 8 + [False]
    assert bucket.headroom() == 2
    assert bucket.try_take("cancel") and bucket.try_take("cancel")
    assert not bucket.try_take("cancel")
    assert bucket.next_free_ns("cancel") == T0 + NS_PER_S
    # an order needs reserve + 1 = 3 free: the window must shed the first 3 takes, i.e. at T0 + 1 s
    assert bucket.next_free_ns("order") == T0 + NS_PER_S


@pytest.mark.parametrize(
    ("count", "per_seconds", "burst", "reserve"),
    [(0, Decimal(1), None, 0), (5, Decimal("1e-10"), None, 0), (5, Decimal(1), 0, 0), (5, Decimal(1), None, 5),
     (5, Decimal(1), 2, 2), (5, Decimal(0), None, 0)],
)
def test_bucket_refuses_meaningless_limits(count: int, per_seconds: Decimal, burst: int | None, reserve: int) -> None:
    with pytest.raises(ValueError):
        RateBucket("b", count, per_seconds, burst, SimClock(T0), reserve)


def test_unknown_take_kind_is_an_error() -> None:
    with pytest.raises(ValueError):
        RateBucket("b", 1, Decimal(1), None, SimClock(T0)).try_take("amend")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    count=st.integers(1, 30),
    per_ms=st.sampled_from([1, 250, 1000, 10_000]),
    burst=st.one_of(st.none(), st.integers(1, 60)),
    reserve_frac=st.floats(0, 0.99),
    gaps=st.lists(st.tuples(st.integers(0, 400 * MS), st.sampled_from(["order", "cancel"])), max_size=80),
)
def test_next_free_ns_is_the_earliest_instant_a_take_succeeds(
    count: int, per_ms: int, burst: int | None, reserve_frac: float, gaps: list[tuple[int, str]]
) -> None:
    clock = SimClock(T0)
    capacity = burst if burst is not None else count
    bucket = RateBucket("b", count, Decimal(per_ms) / 1000, burst, clock, reserve=int(reserve_frac * capacity))
    for gap, kind in gaps:
        clock.set_time(clock.now_ns() + gap)
        bucket.try_take(kind)  # type: ignore[arg-type]
    now = clock.now_ns()
    for kind in ("order", "cancel"):
        when = bucket.next_free_ns(kind)
        assert when >= now
        assert bucket.can_take(kind, when)
        assert bucket.can_take(kind, now) == (when == now)
        if when > now:
            assert not bucket.can_take(kind, when - 1)
    assert bucket.next_free_ns("cancel") <= bucket.next_free_ns("order")


# --- config and venue buckets -------------------------------------------------------------------


def test_config_forbids_unknown_keys_and_a_burst_without_a_rate() -> None:
    with pytest.raises(ValidationError):
        RateLimitConfig(orders_per_sec=5)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        RateLimitConfig(orders_burst=5)
    with pytest.raises(ValidationError):
        RateLimitConfig(cancels_per_s=0)
    assert RateLimitConfig(orders_per_s=5, orders_burst=10).orders_burst == 10


def test_venue_buckets_by_scope_with_a_cancel_reserve_on_all() -> None:
    clock = SimClock(T0)
    limits = [
        RateLimit("orders", 10, Decimal(1)),
        RateLimit("cancels", 20, Decimal(1)),
        RateLimit("all", 50, Decimal(10)),
        RateLimit("market_data", 100, Decimal(1)),
    ]
    buckets = venue_buckets("pulse", limits, clock)
    assert [(b.name, b.scope, b.reserve) for b in buckets] == [
        ("venue 'pulse' orders", "orders", 0),
        ("venue 'pulse' cancels", "cancels", 0),
        ("venue 'pulse' all", "all", 10),  # 20% of 50
    ]
    small = venue_buckets("p", [RateLimit("all", 3, Decimal(1)), RateLimit("all", 1, Decimal(1))], clock)
    assert [b.reserve for b in small] == [1, 0]  # at least 1, but orders must keep one token


# --- RateLimiter --------------------------------------------------------------------------------


def test_limiter_refusal_names_the_bucket_and_says_not_queued() -> None:
    clock = SimClock(T0)
    limiter = RateLimiter("mm", RateLimitConfig(orders_per_s=20, orders_burst=40), [], clock)
    assert all(limiter.take_order() is None for _ in range(40))
    rejection = limiter.take_order()
    assert rejection == Rejection(
        Reject.RATE_LIMIT_EXCEEDED,
        "rate limit: strategy 'mm' orders 20/1s (burst 40) exhausted; order refused, not queued; next slot in 1000 ms",
    )
    assert limiter.take_cancel() is None  # no cancel budget configured: unlimited
    assert limiter.next_order_ns() == T0 + NS_PER_S


def test_limiter_is_all_or_nothing() -> None:
    clock = SimClock(T0)
    shared = venue_buckets("pulse", [RateLimit("orders", 3, Decimal(1))], clock)
    limiter = RateLimiter("mm", RateLimitConfig(orders_per_s=5), shared, clock)
    own = limiter.buckets[0]
    assert all(limiter.take_order() is None for _ in range(3))
    rejection = limiter.take_order()
    assert rejection is not None and "venue 'pulse' orders 3/1s exhausted" in rejection.reason
    assert own.taken == 3 and own.headroom() == 2  # the strategy's token was not spent on a refused order
    assert (shared[0].refused, own.refused) == (1, 0)

    tight = RateLimiter("arb", RateLimitConfig(orders_per_s=1), venue_buckets("x", [RateLimit("all", 10, Decimal(1))],
                                                                            clock), clock)
    venue = tight.buckets[1]
    assert tight.take_order() is None
    assert tight.take_order() is not None
    assert venue.taken == 1


def test_venue_buckets_are_shared_between_strategies() -> None:
    clock = SimClock(T0)
    shared = venue_buckets("pulse", [RateLimit("all", 5, Decimal(1))], clock)  # reserve 1
    a = RateLimiter("a", None, shared, clock)
    b = RateLimiter("b", RateLimitConfig(orders_per_s=100), shared, clock)
    assert all(a.take_order() is None for _ in range(4))
    rejection = b.take_order()
    assert rejection is not None and "venue 'pulse' all 5/1s exhausted (1 kept for cancels)" in rejection.reason
    assert b.take_cancel() is None  # the reserve is there for any strategy's cancel
    assert a.take_cancel() is not None
    assert b.headroom() == {"strategy 'b' orders": 100, "venue 'pulse' all": 0}


def test_cancels_use_their_own_strategy_bucket_not_the_orders_one() -> None:
    clock = SimClock(T0)
    limiter = RateLimiter("mm", RateLimitConfig(orders_per_s=2, cancels_per_s=3), [], clock)
    assert [limiter.take_order() is None for _ in range(3)] == [True, True, False]
    assert [limiter.take_cancel() is None for _ in range(4)] == [True, True, True, False]
    assert limiter.next_cancel_ns() == T0 + NS_PER_S


def test_rate_limit_check_spends_only_when_it_allows_and_runs_last() -> None:
    clock = SimClock(T0)
    limiter = RateLimiter("mm", RateLimitConfig(orders_per_s=1), [], clock)

    class Refuse:
        def check(self, request: OrderRequest) -> Rejection | None:
            return Rejection(Reject.INVALID_QUANTITY, "no")

    assert Gate([Refuse(), RateLimitCheck(limiter)]).check(request()) == Rejection(Reject.INVALID_QUANTITY, "no")
    assert limiter.buckets[0].taken == 0
    gate = Gate([RateLimitCheck(limiter)])
    assert gate.check(request()) is None
    rejection = gate.check(request())
    assert rejection is not None and rejection.code == Reject.RATE_LIMIT_EXCEEDED


# --- the long randomised run --------------------------------------------------------------------


def _max_in_window(times: list[int], period_ns: int) -> int:
    """The most takes in any half-open window (t - period, t]; the worst window ends at a take."""
    return max((bisect_right(times, t) - bisect_right(times, t - period_ns) for t in times), default=0)


def _sustained_bound_holds(times: list[int], count: int, period_ns: int, capacity: int) -> bool:
    """For every pair of takes i < j: (j - i + 1 - capacity) x period <= (t_j - t_i) x count.

    That is the GCRA guarantee over every interval, long or short, in exact integers. Checked in one
    pass as f(j) - f(i) <= (capacity - 1) x period with f(k) = k x period - t_k x count.
    """
    best_later = None
    for k in range(len(times) - 1, -1, -1):
        f = k * period_ns - times[k] * count
        if best_later is not None and best_later - f > (capacity - 1) * period_ns:
            return False
        best_later = f if best_later is None else max(best_later, f)
    return True


def test_random_bursts_never_exceed_any_budget_and_cancels_get_through() -> None:
    rng = random.Random(20261123)
    clock = SimClock(T0)
    shared = venue_buckets("pulse", [RateLimit("all", 30, Decimal(1), 45)], clock)  # cap 45, reserve 9
    venue = shared[0]
    mm = RateLimiter("mm", RateLimitConfig(orders_per_s=20, orders_burst=40, cancels_per_s=25), shared, clock)
    arb = RateLimiter("arb", None, shared, clock)  # no own limits: only the venue's
    mm_orders, mm_cancels = mm.buckets[0], mm.buckets[1]
    accepted: dict[str, list[int]] = {b.name: [] for b in (mm_orders, mm_cancels, venue)}
    venue_log: list[tuple[int, str]] = []
    attempts = cancels_past_blocked_orders = venue_order_refusals = 0
    end = T0 + 3 * 60 * NS_PER_S
    while clock.now_ns() < end:
        roll = rng.random()
        if roll < 0.02:
            gap = rng.randint(0, 3 * NS_PER_S)  # a quiet spell: the buckets refill
        elif roll < 0.15:
            gap = 0  # several requests in the same nanosecond
        else:
            gap = rng.randint(1, 20 * MS)
        clock.set_time(clock.now_ns() + gap)
        for _ in range(rng.choice((1, 1, 1, 2, 5, 12))):  # bursts
            attempts += 1
            limiter = mm if rng.random() < 0.75 else arb
            now = clock.now_ns()
            if rng.random() < 0.65:
                rejection = limiter.take_order()
                if rejection is None:
                    venue_log.append((now, "order"))
                    if limiter is mm:
                        accepted[mm_orders.name].append(now)
                elif "venue 'pulse' all" in rejection.reason:
                    venue_order_refusals += 1
            else:
                orders_blocked = not venue.can_take("order")
                rejection = limiter.take_cancel()
                if rejection is None:
                    venue_log.append((now, "cancel"))
                    cancels_past_blocked_orders += orders_blocked
                    if limiter is mm:
                        accepted[mm_cancels.name].append(now)
    accepted[venue.name] = [t for t, _ in venue_log]

    assert attempts > 10_000
    for bucket in (mm_orders, mm_cancels, venue):
        times = accepted[bucket.name]
        assert len(times) == bucket.taken
        period = bucket.per_seconds * NS_PER_S
        assert _max_in_window(times, int(period)) <= bucket.window_cap, bucket.name
        assert _sustained_bound_holds(times, bucket.count, int(period), bucket.capacity), bucket.name
        # the same bound read over long windows: at most capacity + 60 x count in any minute
        minute = 60 * NS_PER_S
        most_in_a_minute = max(bisect_left(times, t + minute) - i for i, t in enumerate(times))
        assert most_in_a_minute <= bucket.capacity + 60 * bucket.count
    # the run really pushed the shared bucket to its cap (otherwise the bounds above prove nothing)
    assert _max_in_window(accepted[venue.name], NS_PER_S) == venue.window_cap
    # orders never ate the cancel reserve: when an order was taken, the window (including it) held at
    # most cap - reserve takes, so a cancel could always follow
    venue_times = accepted[venue.name]
    for k, (t, kind) in enumerate(venue_log):
        if kind == "order":
            in_window = k + 1 - bisect_right(venue_times, t - NS_PER_S, 0, k + 1)
            assert in_window <= venue.window_cap - venue.reserve
    assert venue_order_refusals > 100
    assert cancels_past_blocked_orders > 100  # cancels went through while the shared bucket refused orders


def test_sustained_bound_checker_can_fail() -> None:
    """The proof helpers are not vacuous: a schedule over the limit is caught."""
    too_fast = [T0 + i * 10 * MS for i in range(30)]  # 30 in 290 ms against 10/s burst 10
    assert not _sustained_bound_holds(too_fast, 10, NS_PER_S, 10)
    assert _max_in_window(too_fast, NS_PER_S) == 30
    paced = [T0 + i * 100 * MS for i in range(30)]
    assert _sustained_bound_holds(paced, 10, NS_PER_S, 1)
    assert _max_in_window(paced, NS_PER_S) == 10


class _SteppedClock(SimClock):
    """A clock a test sets to any time, earlier ones too (the system clock stepped back)."""

    def set(self, now: int) -> None:
        self._stepped = now

    def now_ns(self) -> int:
        return getattr(self, "_stepped", super().now_ns())


def test_a_clock_stepped_back_leaves_the_bucket_as_it_was() -> None:
    """Five orders of a venue's 100 a second, then the system clock steps 5 s back (an NTP
    correction, a VM migrated): read as is, every take would lie in the future and the gate would
    refuse orders and cancels alike for 4 s. The bucket follows the step: the same room as before
    it, and a drained bucket frees one window after its takes, not one window plus the step."""
    clock = _SteppedClock(T0)
    clock.set(T0)
    bucket = RateBucket("venue x all", 100, Decimal(1), None, clock, reserve=20)
    for _ in range(5):
        assert bucket.take_order() is None
    clock.set(T0 - 5 * NS_PER_S)
    # asked first when room comes (the stop's chase of working orders asks before it decides)
    assert bucket.next_free_ns("cancel") == T0 - 5 * NS_PER_S
    assert bucket.can_take("order") and bucket.can_take("cancel")
    assert bucket.headroom() == 95  # what it had before the step
    assert bucket.take_order() is None and bucket.take_order(cancel=True) is None

    drained = RateBucket("venue y all", 100, Decimal(1), None, clock)
    clock.set(T0)
    while drained.take_order(cancel=True) is None:
        pass
    clock.set(T0 - 5 * NS_PER_S)
    assert not drained.can_take("cancel")
    assert drained.next_free_ns("cancel") == T0 - 5 * NS_PER_S + NS_PER_S
    clock.set(T0 - 4 * NS_PER_S)
    assert drained.can_take("cancel")
