"""Recording a run's market data off the event path (issue 26 part 1).

:class:`RecordingSink` stands between an adapter and the runtime: it forwards every call unchanged
and, for market data (books as the adapter delivered them, trades, instrument statuses), appends
one tuple ``(venue, symbol, receive time, event)`` to a :class:`collections.deque` and returns. That
append is all the event path pays (``benchmarks/bench_replay.py`` measures it). The
:class:`Recorder`'s writer thread drains the deque, turns events into rows and writes Parquet
(:mod:`engine.recording.format`) every ``flush_seconds`` of real time, when ``max_events`` wait, and
at stop: a crash loses at most that window, and a full disk is logged and counted, never raised
into the engine.

Events are the engine's immutable model objects, so the thread reads them without a copy. The
deque's ``append`` and ``popleft`` are atomic, so there is no lock on the event path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.model import BookUpdate, InstrumentStatus, SessionState, Trade
from engine.recording.format import SESSION_SYMBOL, Writer

log = logging.getLogger("engine.recording")

Event = BookUpdate | Trade | InstrumentStatus | SessionState


class Recorder:
    """Owns the queue, the writer thread and the :class:`~engine.recording.format.Writer`."""

    def __init__(self, root: Path, now_ns: Callable[[], int], *, flush_seconds: float = 30.0,
                 max_events: int = 200_000, run: str | None = None) -> None:
        self.root = Path(root)
        self.now_ns = now_ns
        self.writer = Writer(self.root, run)
        self.queue: deque[tuple[str, str, int, Event]] = deque()
        self.flush_seconds = flush_seconds
        self.max_events = max_events
        self.errors = 0
        self.files = 0
        self._seq = 0
        self._pending_events = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- the event path ------------------------------------------------------------------
    def record(self, venue: str, symbol: str, event: Event) -> None:
        """One append; everything else happens on the writer thread."""
        self.queue.append((venue, symbol, self.now_ns(), event))

    def record_session(self, venues: list[str], state: SessionState) -> None:
        """A session change, filed under every recorded venue (it belongs to no instrument)."""
        now = self.now_ns()
        for venue in venues:
            self.queue.append((venue, SESSION_SYMBOL, now, state))

    def sink(self, inner: Any, venue: str) -> RecordingSink:
        return RecordingSink(inner, self, venue)

    # ---- the writer thread -----------------------------------------------------------------
    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._loop, name="engine-recorder", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Write everything still queued and stop the thread. Never raises."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._drain()
        self._write()
        if self.writer.pending_rows:
            log.error("recording: %d rows could not be written to %s and are lost", self.writer.pending_rows,
                      self.root)
        log.info("recorded %d events (%d rows, %d files) to %s%s", self.writer.events, self.writer.rows, self.files,
                 self.root, f"; {self.errors} write errors" if self.errors else "")

    def flush(self) -> None:
        """Write what is queued now (the writer thread's step; for a caller without the thread)."""
        self._drain()
        self._write()

    def stats(self) -> dict[str, Any]:
        return {"path": str(self.root), "events": self.writer.events, "rows": self.writer.rows,
                "files": self.files, "errors": self.errors}

    def _loop(self) -> None:
        last_write = time.monotonic()
        while not self._stop.wait(0.2):
            self._drain()
            if self.writer.events and (time.monotonic() - last_write >= self.flush_seconds
                                       or self._pending_events >= self.max_events):
                self._write()
                last_write = time.monotonic()

    def _drain(self) -> None:
        queue = self.queue
        add = self.writer.add
        while queue:
            venue, symbol, recv_ns, event = queue.popleft()
            try:
                add(venue, symbol, self._seq, recv_ns, event)
            except (ValueError, TypeError) as exc:  # a value the format cannot hold: dropped, named, counted
                self.errors += 1
                log.error("recording: dropped an event of %s %s: %s", venue, symbol, exc)
            self._seq += 1
            self._pending_events += 1

    def _write(self) -> None:
        try:
            self.files += len(self.writer.flush())
        except OSError as exc:
            self.errors += 1
            log.error("recording: cannot write to %s: %s", self.root, exc.strerror or exc)
        self._pending_events = 0


class RecordingSink:
    """The runtime's sink as an adapter sees it, recording market data on the way through."""

    __slots__ = ("_inner", "_append", "_now", "_venue", "_book", "_trade")

    def __init__(self, inner: Any, recorder: Recorder, venue: str) -> None:
        self._inner = inner
        self._append = recorder.queue.append
        self._now = recorder.now_ns
        self._venue = venue
        self._book = inner.on_book  # bound once: the two per-event forwards skip a lookup each
        self._trade = inner.on_trade

    def on_book(self, update: BookUpdate) -> None:
        self._append((self._venue, update.symbol, self._now(), update))
        self._book(update)

    def on_trade(self, trade: Trade) -> None:
        self._append((self._venue, trade.symbol, self._now(), trade))
        self._trade(trade)

    def on_instrument_status(self, status: InstrumentStatus) -> None:
        self._append((self._venue, status.symbol, self._now(), status))
        self._inner.on_instrument_status(status)

    def on_order_update(self, update: Any) -> None:
        self._inner.on_order_update(update)

    def on_fill(self, fill: Any) -> None:
        self._inner.on_fill(fill)

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None:
        self._inner.on_venue_status(venue, status, detail)

    def on_account_event(self, event: Any) -> None:
        self._inner.on_account_event(event)

    def on_anomaly(self, venue: str, kind: str, detail: str) -> None:
        self._inner.on_anomaly(venue, kind, detail)

    def __getattr__(self, name: str) -> Any:
        """Anything else an adapter asks of its sink (a listener's optional hooks) is the runtime's."""
        return getattr(self._inner, name)
