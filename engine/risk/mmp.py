"""Market-maker protection (MMP): stop quoting after a burst of fills.

A market maker's quotes can all be hit within milliseconds when the market jumps; each fill alone
is fine, together they are a position nobody chose. MMP counts the fills of orders flagged
``mmp=True`` over a trailing interval and, when their quantity (or number) reaches a limit, freezes:
the runtime cancels the MMP orders and :class:`MmpCheck` refuses new ones until the freeze ends or
the strategy resets it. The names follow the Pulse venue's ``set_mmp_config`` so one config drives
both the engine's own MMP and a venue's native one, and a venue trigger (``user.mmp_trigger``)
lands in the same state through :meth:`MmpState.venue_trigger`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.clock import NS_PER_S, Clock
from engine.rejects import Reject
from engine.risk.gate import OrderRequest, Rejection


def _ns(seconds: Decimal) -> int:
    """Seconds to whole nanoseconds, rounding up so a window or freeze is never shorter than configured."""
    return int((seconds * NS_PER_S).to_integral_value(ROUND_CEILING))


class MmpConfig(BaseModel):
    """MMP limits, named as in Pulse's ``set_mmp_config``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval: Decimal = Field(gt=0, description="Trailing window, seconds, over which MMP fills add up.")
    frozen_time: Decimal = Field(ge=0, description="Freeze length in seconds; 0 = frozen until reset.")
    quantity_limit: Decimal = Field(gt=0, description="Filled quantity within the interval that triggers.")
    fill_count_limit: int | None = Field(None, gt=0, description="Number of fills within the interval that triggers.")


@dataclass(frozen=True, slots=True)
class MmpTrigger:
    """One freeze: when, until when (None = until reset), what had filled, and why."""

    ts: int
    frozen_until_ns: int | None
    filled_qty: Decimal
    fill_count: int
    reason: str


class MmpState:
    """The MMP fill window and freeze of one strategy on one venue.

    Feed it only fills of MMP orders. While frozen, fills are not accumulated: the orders they come
    from are being cancelled, and counting them would only re-trigger the moment the freeze ends.
    """

    __slots__ = (
        "config", "clock", "triggers", "frozen_until_ns", "last_trigger",
        "_frozen", "_interval_ns", "_frozen_ns", "_fills", "_qty",
    )

    def __init__(self, config: MmpConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.triggers = 0
        self.frozen_until_ns: int | None = None
        self.last_trigger: MmpTrigger | None = None
        self._frozen = False
        self._interval_ns = _ns(config.interval)
        self._frozen_ns = _ns(config.frozen_time)
        self._fills: deque[tuple[int, Decimal]] = deque()
        self._qty = Decimal(0)

    @property
    def filled_qty(self) -> Decimal:
        """MMP quantity filled inside the current window (as of the last fill)."""
        return self._qty

    @property
    def fill_count(self) -> int:
        return len(self._fills)

    def is_frozen(self, now_ns: int | None = None) -> bool:
        """True while MMP orders are refused; a timed freeze ends by itself at ``frozen_until_ns``."""
        if not self._frozen:
            return False
        now = self.clock.now_ns() if now_ns is None else now_ns
        if self.frozen_until_ns is not None and now >= self.frozen_until_ns:
            self._frozen = False
            self.frozen_until_ns = None
            return False
        return True

    def remaining_ns(self, now_ns: int | None = None) -> int | None:
        """Freeze time left (0 when not frozen), or None when frozen until reset."""
        now = self.clock.now_ns() if now_ns is None else now_ns
        if not self.is_frozen(now):
            return 0
        return None if self.frozen_until_ns is None else self.frozen_until_ns - now

    def on_fill(self, qty: Decimal, ts: int) -> MmpTrigger | None:
        """Record an MMP order's fill; returns the trigger when this fill reaches a limit."""
        if qty <= 0:
            raise ValueError(f"an MMP fill quantity must be positive, got {qty}")
        if self.is_frozen(ts):
            return None
        fills = self._fills
        cutoff = ts - self._interval_ns  # window is (ts - interval, ts]
        while fills and fills[0][0] <= cutoff:
            self._qty -= fills.popleft()[1]
        fills.append((ts, qty))
        self._qty += qty
        cfg = self.config
        if self._qty >= cfg.quantity_limit:
            reason = f"filled {self._qty} (limit {cfg.quantity_limit}) within {cfg.interval}s"
        elif cfg.fill_count_limit is not None and len(fills) >= cfg.fill_count_limit:
            reason = f"{len(fills)} fills (limit {cfg.fill_count_limit}) within {cfg.interval}s"
        else:
            return None
        until = ts + self._frozen_ns if self._frozen_ns else None
        return self._freeze(MmpTrigger(ts, until, self._qty, len(fills), f"MMP triggered: {reason}"))

    def venue_trigger(self, ts: int, frozen_until_ns: int | None) -> MmpTrigger:
        """The venue froze our MMP orders itself: mirror it so local checks agree with the venue.

        ``frozen_until_ns`` None (or 0, the venue's own spelling) = until reset. An existing longer
        freeze is kept: the two may race and the stricter one is the true state.
        """
        until = frozen_until_ns or None
        if self.is_frozen(ts):
            current = self.frozen_until_ns
            if current is None or (until is not None and until < current):
                until = current
        return self._freeze(MmpTrigger(ts, until, self._qty, len(self._fills), "MMP triggered by the venue"))

    def extend_freeze(self, frozen_until_ns: int | None) -> None:
        """The venue froze too, moments after the engine's own trigger: one trigger, and the
        stricter freeze of the two (``None``/0 = until reset) holds."""
        until = frozen_until_ns or None
        current = self.frozen_until_ns
        if current is not None and (until is None or until > current):
            self.frozen_until_ns = until

    def _freeze(self, trigger: MmpTrigger) -> MmpTrigger:
        self._frozen = True
        self.frozen_until_ns = trigger.frozen_until_ns
        self._fills.clear()
        self._qty = Decimal(0)
        self.triggers += 1
        self.last_trigger = trigger
        return trigger

    def persisted(self) -> dict[str, Any]:
        """The freeze as plain data for the journal (the fill window is not kept: it is seconds long)."""
        trigger = self.last_trigger
        return {"frozen": self._frozen, "until_ns": self.frozen_until_ns,
                "reason": trigger.reason if trigger is not None else "", "triggers": self.triggers}

    def restore(self, state: dict[str, Any], now_ns: int) -> None:
        """Put back a freeze a previous run left in force (a timed one only if it has not ended)."""
        until = state.get("until_ns")
        if not state.get("frozen") or (until is not None and until <= now_ns):
            return
        self._frozen = True
        self.frozen_until_ns = until
        self.last_trigger = MmpTrigger(now_ns, until, Decimal(0), 0, state.get("reason") or "MMP frozen before restart")

    def reset(self) -> None:
        """End any freeze and forget the window (``ctx.reset_mmp()``)."""
        self._frozen = False
        self.frozen_until_ns = None
        self._fills.clear()
        self._qty = Decimal(0)


class MmpCheck:
    """7009: while MMP is frozen, orders flagged ``mmp=True`` are refused; other orders pass."""

    __slots__ = ("state",)

    def __init__(self, state: MmpState) -> None:
        self.state = state

    def check(self, request: OrderRequest) -> Rejection | None:
        if not request.mmp:
            return None
        state = self.state
        now = state.clock.now_ns()
        if not state.is_frozen(now):
            return None
        why = state.last_trigger.reason if state.last_trigger is not None else "MMP triggered"
        if state.frozen_until_ns is None:
            until = "until ctx.reset_mmp()"
        else:
            left_ms = -(-(state.frozen_until_ns - now) // 1_000_000)
            until = f"for another {left_ms} ms or until ctx.reset_mmp()"
        return Rejection(Reject.MMP_FROZEN, f"{why}; MMP orders refused {until}")
