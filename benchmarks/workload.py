"""The shared workload of benchmarks/vs_nautilus.py: one L2 event list, built once, that each engine
converts to its own objects before any timing, so both run exactly the same book.

The book is a window of ``depth`` price levels either side of a mid that walks one tick at a time.
Bids sit at ``mid - 1 .. mid - depth``, asks at ``mid + 1 .. mid + depth``: the spread is two ticks
whenever both touches are present and the book is never crossed. When the mid steps, the level the
walk runs into is deleted first (so no moment is crossed), the new touch on the other side is added,
and the level that falls out of the window behind it is deleted; everything else is size changes
(some to zero: a level emptied inside the window, re-added later by a size change). Every event is
one level change, as a feed's delta is.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import NamedTuple

ADD, UPDATE, DELETE = 1, 2, 3  # the level's action, as an L2 delta names it (NautilusTrader's BookAction values)


class Change(NamedTuple):
    """One L2 event: the level at ``ticks`` (price in ticks) on one side now holds ``size`` (0: gone)."""

    is_bid: bool
    ticks: int
    size: int
    action: int


def make_stream(n: int, *, seed: int = 7, mid: int = 18750, depth: int = 10) -> list[Change]:
    """``n`` level changes of a realistic, never-crossed book around ``mid`` ticks (187.50 at 0.01).

    The mid steps on ~5% of draws (each step is up to four events); the rest change the size of a
    random level in the window, a quarter of the non-touch ones to zero."""
    rng = random.Random(seed)
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    out: list[Change] = []

    def put(is_bid: bool, ticks: int, size: int) -> None:
        levels = bids if is_bid else asks
        if size:
            action = UPDATE if ticks in levels else ADD
            levels[ticks] = size
        elif ticks in levels:
            del levels[ticks]
            action = DELETE
        else:
            return  # emptying a level that is not there: no event
        out.append(Change(is_bid, ticks, size, action))

    for k in range(1, depth + 1):
        put(True, mid - k, 100 * k)
        put(False, mid + k, 100 * k)
    while len(out) < n:
        r = rng.random()
        if r < 0.05:
            step = 1 if r < 0.025 else -1
            if step == 1:
                put(False, mid + 1, 0)  # the ask the walk runs into goes first
                mid += 1
                put(True, mid - 1, rng.randint(1, 50) * 100)
                put(True, mid - depth - 1, 0)
                put(False, mid + depth, rng.randint(1, 50) * 100)
            else:
                put(True, mid - 1, 0)
                mid -= 1
                put(False, mid + 1, rng.randint(1, 50) * 100)
                put(False, mid + depth + 1, 0)
                put(True, mid - depth, rng.randint(1, 50) * 100)
        else:
            is_bid = r < 0.525
            offset = rng.randint(1, depth)
            size = rng.randint(1, 50) * 100
            if offset > 1 and rng.random() < 0.25:
                size = 0
            put(is_bid, mid - offset if is_bid else mid + offset, size)
    return out[:n]


class Replay(NamedTuple):
    """What replaying a stream found: the most levels at once, the average, the crossed events."""

    max_levels: int
    mean_levels: float
    crossed: int


def replay(stream: Iterable[Change]) -> Replay:
    """Apply the stream to a plain book, independently of ``make_stream``'s own bookkeeping, and
    count the events after which best bid >= best ask (the benchmark asserts none)."""
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    crossed = total = count = most = 0
    for change in stream:
        levels = bids if change.is_bid else asks
        if change.action == DELETE:
            del levels[change.ticks]  # a delete of an absent level would be a generator bug
        else:
            if (change.action == ADD) == (change.ticks in levels):
                raise AssertionError(f"{change} does not match the book")
            levels[change.ticks] = change.size
        if bids and asks and max(bids) >= min(asks):
            crossed += 1
        n = len(bids) + len(asks)
        total += n
        most = max(most, n)
        count += 1
    return Replay(most, total / count if count else 0.0, crossed)


def reachable_orders(stream: list[Change], every: int, away: int) -> int:
    """How many of the benchmark's orders (a buy ``away`` ticks under the best bid after every
    ``every``-th event) the best ask reaches before the next order replaces it. The benchmark
    asserts none: a fill would be work one engine's venue does (NautilusTrader matches its orders
    against the deltas) and the other's does not (the paper venue here matches its own market)."""
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    reached = 0
    order: int | None = None  # the working order's price in ticks
    touched = False
    for n, change in enumerate(stream, 1):
        levels = bids if change.is_bid else asks
        if change.size:
            levels[change.ticks] = change.size
        else:
            del levels[change.ticks]
        if order is not None and not touched and asks and min(asks) <= order:
            touched = True
            reached += 1
        if not n % every and bids and asks:
            order, touched = max(bids) - away, False
    return reached
