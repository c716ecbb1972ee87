"""The hook watch: a thread that holds strategies' ``on_book`` / ``on_trade`` calls to the hook
budget, so the per-event loop reads the clock once per event (when it starts) and not again when
the hooks return (issue 22: the read after the hooks was ~1,050 of ~9,200 instructions per event).

Every ``period_s`` the watch reads the clock, then :attr:`Runtime.event_ns` (when the event being
dispatched entered the runtime, 0 between events). An event that has run longer than the budget is
flagged: ``Runtime.overrun_began`` is set to its start and :data:`OVERRUN_SEEN` is appended to the
runtime's deferred queue (a deque: appends are atomic), which the event's end already checks, so
the loop pays nothing for the watch. The loop then times the event (one read), and names the
strategy: alone on its book, it is held to the budget as if timed; shared, the book times each
call from then on (as a batch over the budget always did).

The clock is read before ``event_ns``, so a flagged event really ran past the budget; and on
CPython 3.11 no eval-breaker check lies between the watch's read of ``event_ns`` and its append
(nor between the loop's restore of ``event_ns`` and its check of the queue), so the loop's thread
cannot run in between: a flag is for an event still running. Looks are ``period_s`` apart, plus up
to CPython's GIL switch interval (5 ms) while a hook runs Python code; inside one long C call
that holds the GIL the look comes at the eval-breaker check after it, still inside the hook
(measured: a 84.6 ms ``sorted()`` seen at 84.7 ms). So an event longer than budget + period +
switch interval is seen whenever the watch's thread gets a CPU in time (on a loaded 2 vCPU VM,
looks were 10-13 ms apart at a 5 ms period); a shorter overrun by chance, or by the sampled
per-call timing (one event in about 16 times each call exactly). One flag at a time: an event
or a ``call_hook`` call dispatched inside another (nothing does that today: hooks never run
inside hooks) that is flagged too replaces the outer's flag, and the outer overrun goes uncounted.

``event_ns`` is also set while ``call_hook`` runs a hook (``on_fill``, a venue's
``on_order_update``): the watch flags those too, but they time themselves, so their flag is
dropped at their drain; it is still what makes a stuck ``on_fill`` reported.

A hook still running after :data:`STUCK_REPORT_NS` (or twice the budget) is logged from the
watch's thread with where the loop's thread is, and again each time its running time doubles: a
strategy stuck in a loop is named while it is stuck, not only when (if) it returns.

The watch holds the runtime by a weak reference and ends with it, or at :meth:`HookWatch.stop`.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
import weakref
from pathlib import Path
from time import perf_counter_ns
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.runtime.core import Runtime

log = logging.getLogger("engine")

__all__ = ["OVERRUN_SEEN", "STUCK_REPORT_NS", "HookWatch", "where_stuck"]

#: put in the runtime's deferred queue by the watch: "an event overran; time it when it ends"
OVERRUN_SEEN = object()
#: a hook running this long (or twice the budget, if more) is reported while it runs
STUCK_REPORT_NS = 1_000_000_000
#: the per-event loops' file: the frame after its frame is the hook it called
_DISPATCH_FILE = str(Path(__file__).with_name("dispatch.py"))
#: how often the watch looks: a quarter of the budget, within these bounds
MIN_PERIOD_S = 0.001
MAX_PERIOD_S = 0.25


class HookWatch:
    """One runtime's watch thread (see the module docstring)."""

    def __init__(self, runtime: Runtime, budget_ns: int) -> None:
        self._runtime = weakref.ref(runtime)
        self.budget_ns = budget_ns
        self.period_s = min(max(budget_ns / 4e9, MIN_PERIOD_S), MAX_PERIOD_S)
        self.stuck_after_ns = max(STUCK_REPORT_NS, 2 * budget_ns)
        #: the thread that dispatches events (the one that started the watch): where a stuck hook is
        self.loop_thread = threading.get_ident()
        self.looks = 0
        self.flagged = 0  # the start of the last event flagged, so each is flagged once
        self.report_at_ns = 0  # the running time at which a flagged event is next reported
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="hook-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the thread (and wait for it, unless called from it)."""
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _watch(self) -> None:
        while not self._stopped.wait(self.period_s):
            runtime = self._runtime()
            if runtime is None:  # the runtime is gone: so is the need to watch it
                return
            try:
                self.look(runtime)
            except Exception:  # a look that failed must not end the watch: the budget would go unheld
                log.exception("the hook watch failed to look; it goes on")
            del runtime  # no strong reference while sleeping

    def look(self, runtime: Runtime) -> None:
        """One look: flag the event being dispatched if it has run past the budget, and report it
        while it runs on (see the module docstring)."""
        self.looks += 1
        now = perf_counter_ns()  # first: if event_ns is then still set, the event ran at least now - began
        began = runtime.event_ns
        if not began:
            return
        running = now - began
        if running <= self.budget_ns:
            return
        if began != self.flagged:
            self.flagged = began
            self.report_at_ns = self.stuck_after_ns
            runtime.overrun_began = began
            runtime.deferred.append(OVERRUN_SEEN)
        if running >= self.report_at_ns:
            self.report_at_ns = 2 * running
            files: dict[str, str] = {}
            for name, runner in list(runtime.runners.items()):  # list(): one step, whatever the loop does
                file = getattr(runner.loaded, "file", None)
                if file is not None:
                    files[str(file)] = f"{files[str(file)]}, {name}" if str(file) in files else name
            whose, at = where_stuck(self.loop_thread, files)
            log.warning("%s: a hook has been running for %.1f s (budget %.0f ms), the event loop waits: %s",
                        f"strategy {whose}" if whose else "an event", running / 1e9, self.budget_ns / 1e6, at)


def where_stuck(thread_id: int, files: dict[str, str]) -> tuple[str | None, str]:
    """Where a thread is: whose file the frame after the dispatch's is (``files``: a strategy's
    file to its name), and that frame and the innermost one, as ``file:line in function``."""
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return None, "(the loop's thread is gone)"
    stack = traceback.extract_stack(frame)
    called = next((i + 1 for i in range(len(stack) - 1, -1, -1)
                   if stack[i].filename == _DISPATCH_FILE), 0)
    hook = stack[min(called, len(stack) - 1)]
    inner = stack[-1]
    at = f"{hook.filename}:{hook.lineno} in {hook.name}"
    if inner is not hook:
        at += f", now at {inner.filename}:{inner.lineno} in {inner.name}"
    return files.get(hook.filename), at
