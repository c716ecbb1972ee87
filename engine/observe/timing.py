"""Latency histograms cheap enough for the per-event path.

A hook runs tens of thousands of times a second, so its timing may cost no more than a couple of
integer additions. :class:`Log2Histogram` keeps a call count and a nanosecond sum for every call,
and puts a call into a bucket only when it is slower than ``floor_ns`` (one integer comparison in
the caller decides that); the calls at or under the floor are the count minus the bucketed ones.
Buckets are powers of two of nanoseconds (``int.bit_length``): no search, no float.

While the hook watch runs (under ``engine run``), the runtime times on_book / on_trade calls one
event in about :data:`HOOK_SAMPLE_EVERY` (engine/runtime/dispatch.py; the watch's thread holds the
others to the budget) and records each sampled call for the events since the last sample: its
count and, when slow, its bucket grow by that weight, so the count is exact at each sample, the
buckets an unbiased estimate, and both only grow (what Prometheus needs of a histogram).

The metrics collector turns one into Prometheus' cumulative buckets at scrape time.
"""

from __future__ import annotations

__all__ = ["HOOK_FLOOR_NS", "HOOK_SAMPLE_EVERY", "Log2Histogram"]

#: hooks at or under this are only counted, not bucketed: 2**12 ns = 4.1 us
HOOK_FLOOR_NS = 1 << 12
#: while the hook watch runs, one event in this many (on average) is timed per hook
HOOK_SAMPLE_EVERY = 16
#: the largest finite bucket bound: 2**31 ns = 2.1 s; anything slower is only in +Inf
_TOP_BITS = 31


class Log2Histogram:
    """Counts, sum and power-of-two buckets of durations in nanoseconds."""

    __slots__ = ("calls", "total_ns", "slow", "floor_ns", "_floor_bits", "slowest_ns")

    def __init__(self, floor_ns: int = 0) -> None:
        if floor_ns and floor_ns & (floor_ns - 1):
            raise ValueError(f"floor_ns must be 0 or a power of two, got {floor_ns}")
        self.calls = 0
        self.total_ns = 0
        self.floor_ns = floor_ns
        self._floor_bits = floor_ns.bit_length() - 1 if floor_ns else 0
        self.slow = [0] * 65  # index: bit_length of the duration
        self.slowest_ns = 0

    def record(self, elapsed_ns: int) -> None:
        """Count one duration (callers on the hot path count inline and call :meth:`record_slow`)."""
        self.calls += 1
        self.total_ns += elapsed_ns
        if elapsed_ns > self.floor_ns:
            self.record_slow(elapsed_ns)

    def record_slow(self, elapsed_ns: int, weight: int = 1) -> None:
        """Bucket a duration over the floor (``weight`` times: a sampled call stands for that many);
        the caller has counted it already."""
        # (x - 1).bit_length() = b  <=>  2**(b-1) < x <= 2**b: Prometheus bounds are inclusive
        self.slow[min((elapsed_ns - 1).bit_length(), 64)] += weight
        if elapsed_ns > self.slowest_ns:
            self.slowest_ns = elapsed_ns

    def buckets(self) -> list[tuple[float, int]]:
        """Cumulative ``(upper bound in seconds, count)`` pairs, the last one +Inf with every call.

        A duration in bucket ``b`` lies in (2**(b-1), 2**b], so it counts under every bound 2**k
        with k >= b. Bounds start at the floor: nothing at or under it was bucketed."""
        out: list[tuple[float, int]] = []
        slow = self.slow
        above = sum(slow)  # bucketed calls not yet under the bound
        for bits in range(self._floor_bits, _TOP_BITS + 1):
            above -= slow[bits]
            out.append(((1 << bits) / 1e9, self.calls - above))
        out.append((float("inf"), self.calls))
        return out
