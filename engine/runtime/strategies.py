"""A strategy's life in the runtime: held at a restart, released, paused, failed, stopped.

Each change rebuilds the per-book subscriber tuples (:meth:`~engine.runtime.dispatch.DispatchMixin.rebuild_dispatch`)
so a strategy that is not running hears nothing, and cancels its orders where the change says so.
"""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING

from engine.rejects import Reject

if TYPE_CHECKING:
    from engine.runtime.runner import StrategyRunner


log = logging.getLogger("engine")


class StrategiesMixin:
    """Strategy states of :class:`~engine.runtime.Runtime`."""

    def hold_strategies(self) -> None:
        """Restart: strategies hear nothing (and can send nothing) until reconciliation is done."""
        for runner in self.runners.values():
            if runner.state == "running":
                runner.state = "starting"
        self.rebuild_dispatch()

    def release_strategies(self) -> None:
        for runner in self.runners.values():
            if runner.state == "starting":
                runner.state = "running"
        self.rebuild_dispatch()

    def strategy_failed(self, runner: StrategyRunner, hook: str, why: str | None = None) -> None:
        """A hook raised (or ``why`` says what else went wrong): stop that strategy, cancel its
        orders, log the traceback once."""
        if runner.state == "failed":
            return
        runner.state = "failed"
        if why is None:
            runner.failure = f"{hook} raised {traceback.format_exc(limit=-1).strip().splitlines()[-1]}"
            log.error("strategy %s failed in %s; its orders are being cancelled, the others keep trading",
                      runner.name, hook, exc_info=True)
        else:
            runner.failure = f"{hook}: {why}"
            log.error("strategy %s failed in %s: %s; its orders are being cancelled", runner.name, hook, why)
        self.rebuild_dispatch()
        self.cancel_strategy_orders(runner)

    def stop_strategy(self, runner: StrategyRunner, *, cancel: bool = True) -> None:
        """Normal stop: on_stop, then cancel what is still open (``cancel=False``: the caller
        cancels every strategy's orders at once, see :meth:`cancel_everything`)."""
        self.call_rare(runner, "on_stop")
        if runner.state == "paused":  # it stays out: no timer or session change may resume it now
            if runner.resume_timer is not None:
                runner.resume_timer.cancel()
                runner.resume_timer = None
            runner.state = "stopped"
        if runner.state == "running":
            runner.state = "stopped"
        self.rebuild_dispatch()
        if cancel:
            self.cancel_strategy_orders(runner)

    def resume_strategy(self, runner: StrategyRunner) -> None:
        """A paused strategy trades again (its pause ran out, or a new session phase began)."""
        if runner.state != "paused":
            return
        if runner.resume_timer is not None:
            runner.resume_timer.cancel()
            runner.resume_timer = None
        runner.state = "running"
        runner.failure = ""
        runner.pause_told = None
        runner.stop_code = int(Reject.STRATEGY_NOT_RUNNING)
        if runner.repeats is not None:
            runner.repeats.clear()
        log.warning("strategy %s resumes after its pause (%s)", runner.name, runner.pause_reason)
        self.rebuild_dispatch()
