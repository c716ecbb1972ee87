"""Request-rate limits: a strategy's own budget and its venue account's shared budget.

A venue that sees more requests than it allows answers with throttling rejects, and a busy account
can be cut off. So the engine keeps its own count and refuses (never queues) an order locally when a
budget is spent: a queued order would go out late at a stale price, a refused one lets the strategy
decide again.

Each :class:`RateBucket` enforces two bounds, both in exact integer arithmetic:

* a GCRA token bucket (the sustained rate ``count / per_seconds``, at most ``burst`` at once), and
* a sliding-window cap: at most ``max(count, burst)`` takes in any window of ``per_seconds``.

The token bucket alone lets ``burst + count`` through in one window (a full bucket plus its refill);
the window cap is what makes "never more than the venue's number in any window" hold by
construction, whatever the traffic shape.

Cancels must never be starved by new orders (a strategy that cannot pull its quotes is the
dangerous one), so a bucket may hold back ``reserve`` takes that only a cancel may use.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.clock import NS_PER_S, Clock
from engine.rejects import Reject
from engine.risk.gate import OrderRequest, Rejection
from engine.venue import RateLimit

TakeKind = Literal["order", "cancel"]

#: share of an "all"-scope venue bucket's window cap that new orders may not use, kept for cancels
VENUE_CANCEL_RESERVE_PCT = 20


def _seconds_to_ns(seconds: Decimal) -> int:
    """Exact: a window that is not a whole number of nanoseconds would need rounding, so refuse it."""
    ns = Decimal(seconds) * NS_PER_S
    if ns <= 0 or ns != ns.to_integral_value():
        raise ValueError(f"per_seconds must be a positive whole number of nanoseconds, got {seconds}")
    return int(ns)


def _fmt_seconds(seconds: Decimal) -> str:
    text = format(Decimal(seconds).normalize(), "f")
    return f"{text}s"


def rate_refusal(bucket: RateBucket, kind: TakeKind, buckets: tuple[RateBucket, ...], now: int) -> Rejection:
    """3001 for ``bucket`` running out: what is spent and when the next take of ``kind`` passes
    every one of ``buckets`` (refused, never queued)."""
    wait_ns = max(b.next_free_ns(kind) for b in buckets) - now
    wait_ms = max(1, -(-wait_ns // 1_000_000))
    what = "order" if kind == "order" else "cancel"
    held = f" ({bucket.reserve} kept for cancels)" if kind == "order" and bucket.reserve else ""
    return Rejection(
        Reject.RATE_LIMIT_EXCEEDED,
        f"rate limit: {bucket.describe()} exhausted{held}; {what} refused, not queued; next slot in {wait_ms} ms",
    )


class RateBucket:
    """One request budget: ``count`` takes per ``per_seconds``, ``burst`` at once (default ``count``).

    ``try_take`` either takes one token or changes nothing but the ``refused`` counter. An
    ``"order"`` take must leave ``reserve`` takes available; a ``"cancel"`` take may use them all.
    ``scope`` ("orders", "cancels" or "all") says which requests the bucket applies to in a
    :class:`RateLimiter`.
    """

    __slots__ = (
        "name", "count", "per_seconds", "burst", "clock", "reserve", "scope",
        "capacity", "window_cap", "taken", "refused", "_period_ns", "_tat", "_recent", "_cap_period",
        "_scale", "_unscaled", "_interval", "_order_need", "_order_free", "_order_slack", "_last_take",
        "_cancel_free", "_cancel_slack",
    )

    def __init__(
        self,
        name: str,
        count: int,
        per_seconds: Decimal,
        burst: int | None,
        clock: Clock,
        reserve: int = 0,
        *,
        scope: str = "all",
    ) -> None:
        if count < 1:
            raise ValueError(f"rate bucket {name!r}: count must be at least 1, got {count}")
        if burst is not None and burst < 1:
            raise ValueError(f"rate bucket {name!r}: burst must be at least 1, got {burst}")
        self.name = name
        self.count = count
        self.per_seconds = Decimal(per_seconds)
        self.burst = burst
        self.clock = clock
        self.scope = scope
        self._period_ns = _seconds_to_ns(self.per_seconds)
        # GCRA runs in "scaled" time (ns x scale) where the emission interval (period / count) is
        # the integer ``_interval``, so nothing is ever rounded. When count divides the period (100/s
        # is 10 ms exactly) the scale is 1 and an order's take skips a multiplication of the clock.
        self._unscaled = self._period_ns % count == 0
        self._scale = 1 if self._unscaled else count
        self._interval = self._period_ns // count if self._unscaled else self._period_ns
        self.capacity = burst if burst is not None else count
        self._cap_period = self.capacity * self._interval
        self.window_cap = max(count, self.capacity)
        if not 0 <= reserve < self.capacity:
            raise ValueError(
                f"rate bucket {name!r}: reserve must be in [0, {self.capacity}) so orders can ever pass, got {reserve}"
            )
        self.reserve = reserve
        # an order take needs reserve + 1 tokens: the GCRA test ``(scaled + cap x I - tat) // I >= need``
        # solved once for the arrival time, so an order pays a subtraction, not a division
        self._order_need = reserve + 1
        self._order_slack = self._cap_period - self._order_need * self._interval
        self._order_free = self.window_cap - self._order_need  # takes the window holds before it can bind
        # the same two numbers for a cancel, which needs one token (it may use the reserve)
        self._cancel_slack = self._cap_period - self._interval
        self._cancel_free = self.window_cap - 1
        self.taken = 0
        self.refused = 0
        self._tat = 0  # GCRA theoretical arrival time, in scaled time
        # timestamps of the last ``window_cap`` takes, oldest first: older ones cannot matter, since
        # the window never holds more than ``window_cap``
        self._recent: deque[int] = deque(maxlen=self.window_cap)
        # the latest take's time: the takes are recorded in time order (a clock that went back moves
        # the record with it, :meth:`_clock_went_back`), so the window test is one index, not a search
        self._last_take = 0

    # --- the two bounds ----------------------------------------------------------------------

    def _gcra_headroom(self, now: int) -> int:
        scaled = now * self._scale
        return (scaled + self._cap_period - max(self._tat, scaled)) // self._interval

    def _window_headroom(self, now: int) -> int:
        # a take at ``now - period`` or earlier is out of the window (now - period, now]; nothing is
        # pruned here (the public questions first follow a clock that went back: _clock_went_back)
        recent = self._recent
        expired = bisect_right(recent, now - self._period_ns)
        return self.window_cap - (len(recent) - expired)

    def _need(self, kind: TakeKind) -> int:
        if kind == "order":
            return self.reserve + 1
        if kind == "cancel":
            return 1
        raise ValueError(f"take kind must be 'order' or 'cancel', got {kind!r}")

    # --- public ------------------------------------------------------------------------------

    def headroom(self, now_ns: int | None = None) -> int:
        """Takes available now (for any kind; orders may use ``headroom() - reserve``). ``now_ns``
        must be the clock's present, not a past instant: one earlier than the last take reads as
        the clock stepped back and moves the record (:meth:`_clock_went_back`)."""
        now = self.clock.now_ns() if now_ns is None else now_ns
        if now < self._last_take:
            self._clock_went_back(now)
        return max(0, min(self._gcra_headroom(now), self._window_headroom(now)))

    def can_take(self, kind: TakeKind = "order", now_ns: int | None = None) -> bool:
        """Would a take of ``kind`` succeed now? Never changes anything (the all-or-nothing take relies
        on it), except to follow a clock that went back (:meth:`_clock_went_back`)."""
        now = self.clock.now_ns() if now_ns is None else now_ns
        if now < self._last_take:
            self._clock_went_back(now)
        return self._room(self._need(kind), now)

    def _window_full(self, need: int, now: int) -> bool:
        """``_window_headroom(now) < need``, cheaply: the bound can only bind once ``over`` =
        len + need - window_cap is positive, and with the takes in time order the headroom is short
        exactly when the over-th oldest take is still inside the window (at most ``over - 1`` of
        them have left it), so one index answers what the binary search would."""
        recent = self._recent
        over = len(recent) + need - self.window_cap
        if over <= 0:
            return False
        return recent[over - 1] > now - self._period_ns

    def _room(self, need: int, now: int) -> bool:
        if self._window_full(need, now):
            return False
        # _gcra_headroom inlined: this runs for every order and cancel
        scaled = now if self._unscaled else now * self._scale
        tat = self._tat
        return (scaled + self._cap_period - (tat if tat > scaled else scaled)) // self._interval >= need

    def take(self, now_ns: int | None = None) -> None:
        """Spend one token unconditionally: only after :meth:`can_take` said yes."""
        now = self.clock.now_ns() if now_ns is None else now_ns
        if now < self._last_take:
            self._clock_went_back(now)
        scaled = now if self._unscaled else now * self._scale
        tat = self._tat
        self._tat = (tat if tat > scaled else scaled) + self._interval
        self._last_take = now
        self._recent.append(now)
        self.taken += 1

    def take_order(self, request: object = None, now: int | None = None, cancel: bool = False) -> Rejection | None:
        """Take one token for an order or amend (``reserve + 1`` must be available), or for a
        cancel when ``cancel`` (one token: it may use the reserve), or return the 3001 refusal with
        no token spent. ``now`` defaults to the clock.

        This is the gate's rate check itself when the bucket is the only one an order spends (the
        usual shape), so the window test, the GCRA test and the take are inlined in one call; like
        :meth:`RateLimiter.take_order` it takes the request it does not read. The limiter's
        one-bucket cancel take is this call too: ``can_take("cancel")`` and ``take`` in one."""
        if now is None:
            now = self.clock.now_ns()
        if now < self._last_take:
            self._clock_went_back(now)
        recent = self._recent
        over = len(recent) - (self._cancel_free if cancel else self._order_free)
        if over > 0 and recent[over - 1] > now - self._period_ns:
            return self._refuse(now, cancel)
        scaled = now if self._unscaled else now * self._scale
        tat = self._tat
        if tat > scaled:
            # (scaled + cap x I - tat) // I >= need  <=>  tat - scaled <= cap x I - need x I
            if tat - scaled > (self._cancel_slack if cancel else self._order_slack):
                return self._refuse(now, cancel)
        else:
            tat = scaled  # at or behind now: a full bucket, which always holds need <= capacity
        self._tat = tat + self._interval
        self._last_take = now
        recent.append(now)
        self.taken += 1
        return None

    def _clock_went_back(self, now: int) -> None:
        """A take, or a question about room (whether one fits, when, how many), at an instant
        earlier than the last take: the system clock was stepped back (an NTP
        correction, a VM's clock after a migration, an operator). Read as is, every take would be
        in the future and the bucket empty until the clock caught up again: five tokens of 100
        spent, then a 5 s step, refused orders and cancels alike for 4 s. The record moves back
        by the step as far as it can be seen (to the last take), so the bucket holds what it held
        at the last take; the time that passed since then is not credited (the step's size is
        not known), which errs on the side of the venue's limit."""
        shift = self._last_take - now
        self._tat -= shift * self._scale
        self._recent = deque((taken - shift for taken in self._recent), maxlen=self.window_cap)
        self._last_take = now

    def _refuse(self, now: int, cancel: bool) -> Rejection:
        self.refused += 1
        return rate_refusal(self, "cancel" if cancel else "order", (self,), now)

    def try_take(self, kind: TakeKind = "order") -> bool:
        """Take one token, or return False with no token spent (only ``refused`` counts up)."""
        now = self.clock.now_ns()
        if not self.can_take(kind, now):
            self.refused += 1
            return False
        self.take(now)
        return True

    def next_free_ns(self, kind: TakeKind = "order") -> int:
        """The earliest time a take of ``kind`` would succeed if nothing else is taken meanwhile."""
        return self.free_at_ns(self._need(kind))

    def free_at_ns(self, need: int) -> int:
        """The earliest time ``need`` tokens are free at once if nothing is taken meanwhile (``need``
        is held to 1 .. the bucket's size: more are never free together). For a waiter that must
        leave tokens to others (the write hold's cancels first).

        Both bounds only loosen as time passes, so the answer is the later of the two bounds' own.
        """
        now = self.clock.now_ns()
        if now < self._last_take:
            self._clock_went_back(now)
        need = max(1, min(need, self.capacity))  # window_cap is never less than capacity
        when = now
        # GCRA, I the interval: (t*scale + capacity*I - TAT) // I >= need  <=>  t*scale >= TAT - (capacity - need)*I
        threshold = self._tat - (self.capacity - need) * self._interval
        if threshold > now * self._scale:
            when = max(when, -(-threshold // self._scale))  # ceiling division
        # window: at most window_cap - need of the recorded takes may remain in (t - P, t]
        excess = len(self._recent) - (self.window_cap - need)
        if excess > 0:
            when = max(when, self._recent[excess - 1] + self._period_ns)
        return when

    def describe(self) -> str:
        """The limit as a person reads it, e.g. "strategy 'mm' orders 20/1s (burst 40)"."""
        text = f"{self.name} {self.count}/{_fmt_seconds(self.per_seconds)}"
        if self.burst is not None and self.burst != self.count:
            text += f" (burst {self.burst})"
        return text

    def __repr__(self) -> str:
        return f"RateBucket({self.describe()}, reserve={self.reserve}, taken={self.taken}, refused={self.refused})"


class RateLimitConfig(BaseModel):
    """A strategy's own request budget per second (None = unlimited); its venue's limits apply on top."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    orders_per_s: int | None = Field(None, gt=0, description="New orders and amends per second.")
    orders_burst: int | None = Field(None, gt=0, description="Orders at once; default orders_per_s.")
    cancels_per_s: int | None = Field(None, gt=0, description="Cancels per second.")
    cancels_burst: int | None = Field(None, gt=0, description="Cancels at once; default cancels_per_s.")

    @model_validator(mode="after")
    def _burst_needs_rate(self) -> RateLimitConfig:
        # a burst without a rate would silently mean "unlimited": almost certainly a typo
        if self.orders_burst is not None and self.orders_per_s is None:
            raise ValueError("orders_burst needs orders_per_s")
        if self.cancels_burst is not None and self.cancels_per_s is None:
            raise ValueError("cancels_burst needs cancels_per_s")
        return self


def venue_cancel_reserve(bucket_capacity: int, window_cap: int) -> int:
    """20% (at least 1) of the window cap, but always leaving orders at least one token."""
    return min(max(1, window_cap * VENUE_CANCEL_RESERVE_PCT // 100), bucket_capacity - 1)


def venue_buckets(venue_name: str, rate_limits: Iterable[RateLimit], clock: Clock) -> list[RateBucket]:
    """The shared buckets of one venue account: build once per venue, hand to every strategy's limiter.

    Scopes "orders", "cancels" and "all" become buckets; other scopes (market data, queries) are not
    order traffic and are left to the adapter. An "all" bucket keeps a cancel reserve.
    """
    buckets: list[RateBucket] = []
    for limit in rate_limits:
        if limit.scope not in ("orders", "cancels", "all"):
            continue
        reserve = 0
        if limit.scope == "all":
            capacity = limit.burst if limit.burst is not None else limit.count
            reserve = venue_cancel_reserve(capacity, max(limit.count, capacity))
        buckets.append(
            RateBucket(
                f"venue {venue_name!r} {limit.scope}", limit.count, limit.per_seconds, limit.burst, clock,
                reserve, scope=limit.scope,
            )
        )
    return buckets


def strategy_buckets(strategy: str, config: RateLimitConfig | None, clock: Clock) -> list[RateBucket]:
    """The strategy's own orders bucket and cancels bucket (absent where its config says unlimited)."""
    if config is None:
        return []
    buckets: list[RateBucket] = []
    if config.orders_per_s is not None:
        buckets.append(RateBucket(
            f"strategy {strategy!r} orders", config.orders_per_s, Decimal(1), config.orders_burst, clock,
            scope="orders",
        ))
    if config.cancels_per_s is not None:
        buckets.append(RateBucket(
            f"strategy {strategy!r} cancels", config.cancels_per_s, Decimal(1), config.cancels_burst, clock,
            scope="cancels",
        ))
    return buckets


class RateLimiter:
    """One strategy's view of every budget its requests spend: its own buckets and its venue's shared ones.

    A take is all-or-nothing: every bucket involved is asked first and only then does each spend a
    token, so a refusal never leaves a token spent in some other bucket.
    """

    __slots__ = (
        "strategy", "clock", "buckets", "_order_buckets", "_cancel_buckets", "_single_order_bucket",
        "_single_cancel_bucket", "refusal_bucket",
    )

    def __init__(
        self,
        strategy: str,
        config: RateLimitConfig | None,
        shared: Sequence[RateBucket],
        clock: Clock,
        refusals_per_s: int | None = None,
    ) -> None:
        self.strategy = strategy
        self.clock = clock
        own = strategy_buckets(strategy, config, clock)
        self.buckets: tuple[RateBucket, ...] = (*own, *shared)
        self._order_buckets = tuple(b for b in self.buckets if b.scope in ("orders", "all"))
        self._cancel_buckets = tuple(b for b in self.buckets if b.scope in ("cancels", "all"))
        # the usual shape (no strategy budget, one venue bucket): orders skip the two-phase take
        self._single_order_bucket = self._order_buckets[0] if len(self._order_buckets) == 1 else None
        self._single_cancel_bucket = self._cancel_buckets[0] if len(self._cancel_buckets) == 1 else None
        # what a refused order or amend spends (engine.risk.storm): the strategy's own order budget,
        # else a bucket only refusals spend (accepted orders never touch it, so none pays for it)
        self.refusal_bucket: RateBucket | None = next((b for b in own if b.scope == "orders"), None)
        if self.refusal_bucket is None and refusals_per_s is not None:
            self.refusal_bucket = RateBucket(
                f"strategy {strategy!r} refusals", refusals_per_s, Decimal(1), None, clock, scope="refusals",
            )

    def _take(self, buckets: tuple[RateBucket, ...], kind: TakeKind) -> Rejection | None:
        now = self.clock.now_ns()
        for bucket in buckets:
            if not bucket.can_take(kind, now):
                bucket.refused += 1
                return rate_refusal(bucket, kind, buckets, now)
        for bucket in buckets:
            bucket.take(now)
        return None

    def take_order(self, request: object = None) -> Rejection | None:
        """Spend one token for a new order or an amend, or say which budget is spent.

        ``request`` is not read (every order and amend spends the same): taking it lets
        :class:`RateLimitCheck` hand this method to the gate as its check, one call less per order."""
        bucket = self._single_order_bucket
        if bucket is None:
            return self._take(self._order_buckets, "order")
        return bucket.take_order()

    def take_cancel(self) -> Rejection | None:
        """Spend one token for a cancel (it may use the tokens held back from orders)."""
        bucket = self._single_cancel_bucket
        if bucket is None:
            return self._take(self._cancel_buckets, "cancel")
        # the usual shape (one bucket): _take's answer in the bucket's one inlined take
        return bucket.take_order(None, None, True)

    def spend_refusal(self) -> None:
        """A local refusal spends one token of the refusal budget when it has one (never below empty)."""
        bucket = self.refusal_bucket
        if bucket is not None:
            now = self.clock.now_ns()
            if bucket.can_take("order", now):
                bucket.take(now)

    def refusal_budget_spent(self) -> Rejection | None:
        """3001 when refusals have emptied the refusal budget: the next order is refused at once,
        before any other rule runs (a storm costs little); None when it has room again."""
        bucket = self.refusal_bucket
        if bucket is None:
            return None
        now = self.clock.now_ns()
        if bucket.can_take("order", now):
            return None
        bucket.refused += 1
        code, reason = rate_refusal(bucket, "order", (bucket,), now)
        return Rejection(code, f"{reason} (refused orders spend it too; no other check ran)")

    def next_order_ns(self) -> int:
        """When an order would next pass every budget (now when it would pass now)."""
        return max((b.next_free_ns("order") for b in self._order_buckets), default=self.clock.now_ns())

    def next_cancel_ns(self) -> int:
        """When a cancel would next pass every budget: the runtime paces its own cancels with it."""
        return max((b.next_free_ns("cancel") for b in self._cancel_buckets), default=self.clock.now_ns())

    def headroom(self) -> dict[str, int]:
        """Takes available now per bucket, for metrics."""
        return {b.name: b.headroom() for b in self.buckets}


class RateLimitCheck:
    """3001: the request must fit every rate budget of the strategy and its venue.

    Place it LAST in a gate: it spends a token when it allows, so it must only run for an order
    that every other rule already passed (otherwise refused orders would eat the budget).
    """

    __slots__ = ("limiter", "check")

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter
        # the check is the take itself, bound once: the single bucket's own when an order spends
        # only one (the usual shape), else the limiter's; the gate calls it directly
        single = limiter._single_order_bucket
        self.check: Callable[[OrderRequest], Rejection | None] = (
            limiter.take_order if single is None else single.take_order
        )
