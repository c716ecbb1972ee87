"""A log that stays readable under a flood: the first line of a kind at once, then a count.

Anything that can repeat thousands of times a second (a venue's garbage, a strategy's refused
orders) must not write a line each: the log would bury everything else and cost more than the
event. :class:`CountedLog` logs the first event of each key in full, then only counts that key
and writes one summary line at most once per ``interval_s`` ("... refused 68,137 more times in the
last 60 s; latest: ..."). :meth:`CountedLog.flush` says what is still counted (at a close, at stop).

Used by ``engine.venue.badinput.BadInput`` (wall time) and the runtime's refusals (engine time, so a
simulated day reads the same as a real one).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable


class CountedLog:
    """Per-key first line, then at most one counted summary line per ``interval_s``.

    ``now`` is the clock in seconds; ``describe(key)`` is the summary line's subject, e.g.
    "reject mm 4002 MEBL sell refused" (built only when a summary is written).
    """

    __slots__ = ("_log", "_level", "_interval", "_now", "_describe", "_pending", "_last_logged", "_latest", "lines")

    def __init__(self, logger: logging.Logger, interval_s: float, now: Callable[[], float],
                 describe: Callable[[Hashable], str], level: int = logging.WARNING) -> None:
        self._log = logger
        self._level = level
        self._interval = interval_s
        self._now = now
        self._describe = describe
        self._pending: dict[Hashable, int] = {}       # recorded since the key's last line
        self._last_logged: dict[Hashable, float] = {}
        self._latest: dict[Hashable, str] = {}
        self.lines = 0  # lines written: what a flood cost the log

    def record(self, key: Hashable, latest: str, message: str, *args: object) -> None:
        """One event of ``key``: logged as ``message % args`` if it is the key's first, else counted
        (``latest`` is the detail the next summary line quotes) and summarised once the interval
        since the key's last line has passed."""
        now = self._now()
        last = self._last_logged.get(key)
        if last is None:
            self._last_logged[key] = now
            self.lines += 1
            self._log.log(self._level, message, *args)
            return
        self._pending[key] = self._pending.get(key, 0) + 1
        self._latest[key] = latest
        if now - last >= self._interval:
            self._emit(key, now)

    def flush(self) -> None:
        """Log what was counted but not yet told, so no count is left unsaid."""
        now = self._now()
        for key in list(self._pending):
            self._emit(key, now)

    def _emit(self, key: Hashable, now: float) -> None:
        more = self._pending.pop(key, 0)
        latest = self._latest.pop(key, "")
        if not more:
            return
        since = now - self._last_logged.get(key, now)
        self._last_logged[key] = now
        self.lines += 1
        self._log.log(self._level, "%s %s more time%s in the last %.0f s; latest: %s", self._describe(key),
                      f"{more:,}", "" if more == 1 else "s", since, latest)
