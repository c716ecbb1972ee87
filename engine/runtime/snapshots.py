"""What the journal keeps of the runtime: account, positions and strategy states."""

from __future__ import annotations

import logging
from typing import Any

from engine.runtime.dispatch import HOOK_FAILED

log = logging.getLogger("engine")


class SnapshotsMixin:
    """The journal's view of :class:`~engine.runtime.Runtime`."""

    def persisted_state(self) -> dict[str, Any]:
        """Account, positions and day-start PnL as exact strings: a journal snapshot."""
        strategies = dict(self.retired_positions)
        for name, runner in self.runners.items():
            strategies[name] = {
                "positions": {symbol: p.persisted() for symbol, p in runner.positions.items()},
                "pnl_day_start": str(runner.pnl_day_start),
            }
        return {
            "venues": {name: venue.account.persisted() for name, venue in self.venues.items()},
            "strategies": strategies,
            "pnl_day_start": str(self.pnl_day_start),
            "rolled_day": self.rolled_day.isoformat() if self.rolled_day is not None else None,
        }

    def take_snapshot(self, reason: str) -> None:
        if self.journal is not None:
            self.journal.snapshot(self.clock.now_ns(), self.today(), reason, self.persisted_state())

    def save_strategy_states(self) -> None:
        """Ask every running strategy for its ``on_save`` state and store it. A hook that raises
        or returns something JSON cannot hold keeps the state saved before."""
        journal = self.journal
        if journal is None:
            return
        now = self.clock.now_ns()
        for runner in self.runners.values():
            if runner.pm is None or not runner.pm.hook.on_save.get_hookimpls():
                continue
            state = self.call_rare(runner, "on_save")
            if state is HOOK_FAILED:
                continue
            try:
                journal.save_strategy_state(now, runner.name, state)
            except (TypeError, ValueError) as exc:
                log.error("strategy %s: on_save returned a value JSON cannot hold (%s); the state saved before "
                          "is kept", runner.name, exc)
