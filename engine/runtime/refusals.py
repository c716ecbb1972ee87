"""Local refusals: counted, logged once per kind, spent from the refusal budget, contained.

A refused order, amend or cancel is never sent. Refusals of orders and amends spend from the
strategy's refusal budget (so a retry loop is bounded) and count towards the repeat-refusal rule
(``risk.containment.repeat_refusals``), which pauses or fails the strategy.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple

from engine.clock import NS_PER_S
from engine.model import (
    Order,
    OrderStatus,
    Side,
)
from engine.rejects import Reject
from engine.risk.gate import Rejection
from engine.risk.storm import RepeatRefusalsConfig

if TYPE_CHECKING:
    from engine.runtime.runner import StrategyRunner


log = logging.getLogger("engine")

#: refusals of one kind (strategy, code, symbol, side) are logged once, then counted: one line per this
REFUSAL_LOG_INTERVAL_S = 60.0
#: the shipped repeat-refusal rule (risk.containment.repeat_refusals), on unless a config turns it off
DEFAULT_REPEAT_REFUSALS = RepeatRefusalsConfig()

_RULE = "risk.containment.repeat_refusals"


class Containment(NamedTuple):
    """The repeat-refusal rule tripped: fail the strategy or pause it; ``why`` is the sentence the
    refused order's reason and the log carry, ``what`` the refusal that repeated."""

    fails: bool
    why: str
    what: str


def refusal_subject(key: Any) -> str:
    """The counted refusal line's subject: "mm: 4002 MEBL sell order refused"."""
    kind, strategy, code, symbol, side = key
    return f"{strategy}: {code} {symbol} {side} {kind} refused"


class RefusalsMixin:
    """Refusal bookkeeping of :class:`~engine.runtime.Runtime`."""

    def refuse(self, runner: StrategyRunner, order: Order, rejection: Rejection) -> Order:
        """Reject locally: nothing is sent; the strategy hears of it after its hook returns. The
        refusal spends from the strategy's refusal budget and may pause it (:meth:`_refusal_spends`);
        the order's reason then says so."""
        code = int(rejection.code)
        reason = rejection.reason
        contained = self._refusal_spends(runner, code, order._symbol, order._side)
        if contained is not None:
            reason = f"{reason}; {contained.why}"
        self.orders_refused += 1
        runner.orders_refused += 1
        order.reject(code, reason, self.clock.now_ns())
        runner.refused_in_row += 1
        if self.journal is not None:
            self.journal.order(order, "refused by the engine")
        runner.final_status[OrderStatus.REJECTED.value] += 1
        self.count_reject(runner, code)
        self.refusal_log.record(("order", runner.name, code, order._symbol, order._side.value), reason,
                                "reject %-12s %s %s: %s %s", runner.name, order.symbol, order.client_id, code, reason)
        if runner.on_order_update is not None:
            self.deferred.append((runner, order))
        if contained is not None:
            self._contain(runner, order, contained)
        return order

    def refuse_amend(self, runner: StrategyRunner, order: Order, rejection: Rejection) -> None:
        """A local amend refusal: the order is untouched; it spends like a refused order."""
        code = int(rejection.code)
        reason = rejection.reason
        symbol = getattr(order, "symbol", "?")
        side = getattr(order, "side", None)
        contained = self._refusal_spends(runner, code, symbol, side) if isinstance(side, Side) else None
        if contained is not None:
            reason = f"{reason}; {contained.why}"
        runner.amends_refused += 1
        self.count_reject(runner, code)
        self.refusal_log.record(("amend", runner.name, code, symbol, getattr(side, "value", "?")), reason,
                                "amend refused %-12s %s: %s %s", runner.name, getattr(order, "client_id", order),
                                code, reason)
        if contained is not None:
            self._contain(runner, None, contained)

    def refuse_cancel(self, runner: StrategyRunner, order: Order, rejection: Rejection) -> None:
        code = int(rejection.code)
        runner.cancels_refused += 1
        self.count_reject(runner, code)
        self.refusal_log.record(("cancel", runner.name, code, order.symbol, order.side.value), rejection.reason,
                                "cancel refused %-12s %s: %s %s", runner.name, order.client_id, code,
                                rejection.reason)

    def _refusal_spends(self, runner: StrategyRunner, code: int, symbol: str, side: Side) -> Containment | None:
        """A local refusal of an order or amend spends one token of the strategy's refusal budget
        (so its next submit is refused 3001 at once while the budget is empty) and counts towards
        the repeat-refusal rule. Returns the pause (or failure) when this refusal trips the rule,
        else None. Refusals of a strategy that is not running count nothing."""
        if runner.state != "running":
            return None
        rate = runner.rate
        if rate is not None and rate.refusal_bucket is not None:
            rate.spend_refusal()
            runner.throttled = True
        repeats = runner.repeats
        if repeats is None or not repeats.record(code, symbol, side, self.clock.now_ns()):
            return None
        cfg = repeats.config
        what = f"{code} {symbol} {side.value} refused {cfg.max} times within {cfg.window_s} s"
        if cfg.action == "fail":
            return Containment(True, f"strategy {runner.name!r} failed: {what} ({_RULE})", what)
        if cfg.fail_after_pauses is not None and runner.pauses_today >= cfg.fail_after_pauses:
            what += f" after {runner.pauses_today} pauses today"
            return Containment(True, f"strategy {runner.name!r} failed: {what} ({_RULE})", what)
        until = f"for {cfg.pause_s} s or until the next session phase" if cfg.pause_s is not None \
            else "until the next session phase"
        return Containment(False, f"strategy {runner.name!r} paused {until}: {what} ({_RULE})", what)

    def _contain(self, runner: StrategyRunner, order: Order | None, contained: Containment) -> None:
        """Pause or fail a strategy the repeat-refusal rule tripped on. ``order`` (the refusal that
        tripped it) is still told to its on_order_update, so the strategy reads why in its reason."""
        runner.pause_told = order
        if contained.fails:
            runner.stop_code = int(Reject.STRATEGY_NOT_RUNNING)
            self.strategy_failed(runner, "order flow", f"{contained.what} ({_RULE})")
            return
        cfg = self.repeat_refusals
        why = contained.why
        runner.state = "paused"
        runner.failure = why
        runner.pause_reason = why
        runner.pauses += 1
        runner.pauses_today += 1
        runner.stop_code = int(Reject.STRATEGY_PAUSED)
        log.error("strategy %s: %s; its orders are being cancelled", runner.name, why)
        self.rebuild_dispatch()
        self.cancel_strategy_orders(runner)
        if cfg is not None and cfg.pause_s is not None:
            runner.resume_timer = self.clock.call_later(int(cfg.pause_s * NS_PER_S),
                                                        lambda: self.resume_strategy(runner))

    def flush_logs(self) -> None:
        """Say what the refusal log counted but did not yet tell (at each close, at stop)."""
        self.refusal_log.flush()

    def count_reject(self, runner: StrategyRunner, code: int) -> None:
        runner.rejects_by_code[int(code)] += 1
        self.timeline.reject(self.clock.now_ns(), runner.name, int(code))
        self.kill_switch.on_reject(self.clock.now_ns())
