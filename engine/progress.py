"""Progress of a long job (an import, a replay) for the person waiting on it.

On a terminal: one line redrawn in place (``\\r``), a bar, the count, the rate and the time left,
at most ten redraws a second so drawing never costs the job measurable time. Anywhere else (a
file, a pipe, CI's log): no control characters, a plain line at every tenth of the way and at the
end, so a log reads as a few lines and not thousands of redraws.

Callers call :meth:`Progress.advance` as often as they like (per event is fine: it is an integer
add and a clock read every ``check_every`` calls), then :meth:`Progress.close`.

Inside a run, log lines share the terminal: while a bar is drawn, a filter on the log handlers
writing to the same stream wipes the bar before each log line (the next advance redraws it), so a
line never starts in the middle of a bar. With ``log`` given, the plain lines go through that
logger instead of the stream (engine time stamped, and valid JSON lines with ``--log-format json``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress"]

BAR_WIDTH = 28


def _count(n: float) -> str:
    """1234567 -> 1,234,567; a rate 12345.6 -> 12.3k."""
    if n >= 10_000 and n != int(n):
        return f"{n / 1000:,.1f}k"
    return f"{round(n):,}"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Progress of ``total`` units (None: unknown, then only the count and rate are shown).

    ``tty`` None asks the stream (``isatty()``); tests pass it. ``clock`` is a monotonic clock in
    seconds (injectable for tests)."""

    def __init__(self, label: str, total: int | None, unit: str = "events", stream: TextIO | None = None,
                 tty: bool | None = None, clock: Callable[[], float] = time.monotonic,
                 redraw_s: float = 0.1, check_every: int = 256, log: logging.Logger | None = None,
                 quiet_s: float = 1.0) -> None:
        self.label = label
        self.total = total if total is None or total > 0 else None
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self._isatty(self.stream) if tty is None else tty
        self.clock = clock
        self.redraw_s = redraw_s
        self.quiet_s = quiet_s  # plain mode: a job done sooner prints only its last line
        # a small job still gets each of its tenths: never more than a hundredth between checks
        self.check_every = max(1, min(check_every, self.total // 100 if self.total else check_every))
        self.done = 0
        self.started = clock()
        self._since_check = 0
        self._last_draw = -1e18
        self._next_tenth = 1  # plain mode: the next tenth of the way to print
        self._closed = False
        self._width = 0
        self.log = log
        self._wiper: _WipeBeforeLog | None = None
        if self.tty:
            self._wiper = _WipeBeforeLog(self)
            for handler in logging.getLogger().handlers:
                if getattr(handler, "stream", None) is self.stream:
                    handler.addFilter(self._wiper)

    @staticmethod
    def _isatty(stream: TextIO) -> bool:
        try:
            return stream.isatty()
        except (AttributeError, ValueError):  # a closed or stand-in stream
            return False

    def advance(self, n: int = 1) -> None:
        """``n`` more units done; draws when due."""
        self.done += n
        self._since_check += n
        if self._since_check < self.check_every:
            return
        self._since_check = 0
        self._maybe_draw()

    def _maybe_draw(self) -> None:
        if self.tty:
            now = self.clock()
            if now - self._last_draw >= self.redraw_s:
                self._last_draw = now
                self._draw_tty(now)
        elif self.total is not None:
            tenth = self.done * 10 // self.total
            if tenth >= self._next_tenth and tenth < 10:
                self._next_tenth = tenth + 1
                now = self.clock()
                if now - self.started >= self.quiet_s:
                    self._line(now)

    def line_text(self, now: float) -> str:
        """The status text (without a bar): count, percentage, rate, time left."""
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        parts = [f"{self.label}:"]
        if self.total is not None:
            parts.append(f"{min(100, self.done * 100 // self.total)}% {_count(self.done)}/{_count(self.total)} "
                         f"{self.unit}")
        else:
            parts.append(f"{_count(self.done)} {self.unit}")
        parts.append(f"{_count(rate)}/s")
        if self.total is not None and 0 < self.done < self.total and not self._closed:
            parts.append(f"ETA {_duration((self.total - self.done) / rate)}")
        elif self._closed:
            parts.append(f"in {_duration(elapsed)}")
        return " ".join(parts)

    def _draw_tty(self, now: float) -> None:
        text = self.line_text(now)
        if self.total is not None:
            filled = min(BAR_WIDTH, self.done * BAR_WIDTH // self.total)
            text = f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {text}"
        pad = " " * max(0, self._width - len(text))  # wipe what a longer previous line left
        self._width = len(text)
        self.stream.write(f"\r{text}{pad}")
        self.stream.flush()

    def _line(self, now: float) -> None:
        if self.log is not None:
            self.log.info("%s", self.line_text(now))
            return
        self.stream.write(self.line_text(now) + "\n")
        self.stream.flush()

    def wipe(self) -> None:
        """Clear a drawn bar off its line (before someone else writes there); the next advance
        that is due redraws it."""
        if self._width:
            self.stream.write("\r\x1b[K")
            self._width = 0
            self._last_draw = -1e18

    def close(self) -> None:
        """The final state: the bar completed and a newline (terminal), or the last plain line."""
        if self._closed:
            return
        self._closed = True
        now = self.clock()
        if self._wiper is not None:
            for handler in logging.getLogger().handlers:
                handler.removeFilter(self._wiper)
        if self.tty:
            self._draw_tty(now)
            self.stream.write("\n")
            self.stream.flush()
        else:
            self._line(now)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _WipeBeforeLog(logging.Filter):
    """On a log handler sharing the bar's stream: wipe the bar before the record is written."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def filter(self, record: logging.LogRecord) -> bool:
        self.progress.wipe()
        return True
