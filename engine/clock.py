"""Time for the engine and adapters: a wall clock and a simulated clock behind one interface.

Engine and adapter code never read the system time directly: they ask a :class:`Clock`. The same
code then runs a whole simulated PSX day in seconds, and a replay with the same seed gives the same
orders every time.

Both clocks schedule callbacks (``call_at`` / ``call_later``). The simulated clock keeps them in a
heap and jumps time from one to the next; the wall clock hands them to the running asyncio loop.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo

NS_PER_S = 1_000_000_000
KARACHI = ZoneInfo("Asia/Karachi")


def local_date(ts_ns: int, tz: tzinfo) -> date:
    """The calendar date in ``tz`` of a nanosecond timestamp (integer seconds: no float rounding
    across midnight)."""
    return datetime.fromtimestamp(ts_ns // NS_PER_S, tz).date()


class Timer:
    """A scheduled callback; ``cancel()`` makes it a no-op."""

    __slots__ = ("when", "fn", "args", "cancelled", "_handle")

    def __init__(self, when: int, fn: Callable[..., object], args: tuple) -> None:
        self.when = when
        self.fn = fn
        self.args = args
        self.cancelled = False
        self._handle: asyncio.TimerHandle | None = None

    def cancel(self) -> None:
        self.cancelled = True
        if self._handle is not None:
            self._handle.cancel()


class Clock(ABC):
    """What the engine and adapters may ask about time."""

    def __init__(self, tz: ZoneInfo = KARACHI) -> None:
        self.tz = tz

    @abstractmethod
    def now_ns(self) -> int:
        """Nanoseconds since the Unix epoch, UTC."""

    def now(self) -> datetime:
        """The current time as an aware datetime in the venue time zone (Asia/Karachi by default)."""
        return datetime.fromtimestamp(self.now_ns() / NS_PER_S, self.tz)

    @abstractmethod
    def call_at(self, when_ns: int, fn: Callable[..., object], *args: object) -> Timer:
        """Run ``fn(*args)`` at ``when_ns`` (or at once if that is already past)."""

    def call_later(self, delay_ns: int, fn: Callable[..., object], *args: object) -> Timer:
        return self.call_at(self.now_ns() + delay_ns, fn, *args)

    @property
    def simulated(self) -> bool:
        return False

    #: clock seconds per real second on a real-time clock (a scaled sandbox day: its speed); what
    #: a simulated clock's would be means nothing (it moves when the engine steps it)
    speed: int | float = 1

    def describe(self) -> str:
        """How the report, the log and the ``engine_info`` metric name this clock."""
        return "simulated" if self.simulated else "wall"

    @property
    def system_time(self) -> bool:
        """True when this clock reads the system's time of day, so a scheduler that reads the
        system clock itself (APScheduler) agrees with it: only :class:`WallClock`."""
        return False


class SimClock(Clock):
    """Deterministic simulated time. Time only moves when :meth:`advance` runs the next timer.

    Timers due at the same instant run in the order they were scheduled.
    """

    def __init__(self, start_ns: int, tz: ZoneInfo = KARACHI) -> None:
        super().__init__(tz)
        self._now = start_ns
        self._heap: list[tuple[int, int, Timer]] = []
        self._seq = itertools.count()
        #: timers scheduled so far: a caller that stepped time itself (the replay venue) knows
        #: :meth:`next_due` may have moved only when this has
        self.scheduled = 0

    @property
    def simulated(self) -> bool:
        return True

    def now_ns(self) -> int:
        return self._now

    def call_at(self, when_ns: int, fn: Callable[..., object], *args: object) -> Timer:
        timer = Timer(max(when_ns, self._now), fn, args)
        heapq.heappush(self._heap, (timer.when, next(self._seq), timer))
        self.scheduled += 1
        return timer

    def next_due(self) -> int | None:
        """When the next live timer is due, or None when nothing is scheduled."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def advance(self, until_ns: int | None = None) -> bool:
        """Run the next due timer (if it is due no later than ``until_ns``), moving time to it.

        Returns False when there is nothing (more) to run before ``until_ns``; time then moves to
        ``until_ns`` if one was given.
        """
        heap = self._heap
        while heap:
            when, _, timer = heap[0]
            if until_ns is not None and when > until_ns:
                break
            heapq.heappop(heap)
            if timer.cancelled:
                continue
            if when > self._now:  # a timer overtaken by set_time runs late, time never goes back
                self._now = when
            timer.fn(*timer.args)
            return True
        if until_ns is not None and until_ns > self._now:
            self._now = until_ns
        return False

    def set_time(self, ts_ns: int) -> None:
        """Jump forward (never back) with no timers run: for tests and day boundaries."""
        if ts_ns < self._now:
            raise ValueError("the simulated clock never goes back")
        self._now = ts_ns


class WallClock(Clock):
    """Real time. Callbacks run on the asyncio loop that is running when they are scheduled."""

    @property
    def system_time(self) -> bool:
        return True

    def now_ns(self) -> int:
        return time.time_ns()

    def call_at(self, when_ns: int, fn: Callable[..., object], *args: object) -> Timer:
        timer = Timer(when_ns, fn, args)
        loop = asyncio.get_running_loop()
        delay_s = max(0.0, (when_ns - time.time_ns()) / NS_PER_S)
        timer._handle = loop.call_later(delay_s, fn, *args)
        return timer


class ScaledClock(Clock):
    """Real time running ``speed`` times faster from ``start_ns``: a network sandbox and the engine
    talking to it share a simulated trading day over real sockets, a day in minutes.

    Two processes given the same ``start_ns`` and ``speed`` (and started within a moment of each
    other) agree on the time of day; ``speed=1`` with ``start_ns=None`` is the wall clock.
    """

    def __init__(self, start_ns: int | None = None, speed: int | float = 1, tz: ZoneInfo = KARACHI) -> None:
        super().__init__(tz)
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._origin_wall = time.time_ns()
        self._origin_mono = time.monotonic_ns()
        self._start = self._origin_wall if start_ns is None else start_ns

    def describe(self) -> str:
        return f"scaled x{self.speed:g}"

    def now_ns(self) -> int:
        return self._start + int((time.monotonic_ns() - self._origin_mono) * self.speed)

    def call_at(self, when_ns: int, fn: Callable[..., object], *args: object) -> Timer:
        timer = Timer(when_ns, fn, args)
        loop = asyncio.get_running_loop()
        delay_s = max(0.0, (when_ns - self.now_ns()) / self.speed / NS_PER_S)
        timer._handle = loop.call_later(delay_s, fn, *args)
        return timer
