"""Reject storms: a strategy that keeps sending what the gate refuses is slowed, then stopped.

A strategy whose every ``on_book`` resubmits an order the gate refuses (a sell of shares still
settling, a quote while the kill switch is halted) sends tens of thousands of refusals a day. Two
things bound it:

* each local refusal spends one token of the strategy's own order budget (its
  ``rate_limit.orders_per_s`` bucket, else a refusals-only bucket of
  ``risk.containment.refusals_per_s``), and once that budget is empty the next submit or amend is
  refused 3001 at once, before any other rule runs; accepted orders pay nothing extra;
* :class:`RepeatRefusals` notices the same refusal (code, symbol, side) ``max`` times within
  ``window_s`` and the runtime pauses the strategy (or fails it), see
  ``risk.containment.repeat_refusals``.
"""

from __future__ import annotations

from collections import deque
from decimal import ROUND_CEILING, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.clock import NS_PER_S
from engine.model import Side


class RepeatRefusalsConfig(BaseModel):
    """Pause (or fail) a strategy that repeats the same refusal ``max`` times within ``window_s``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max: int = Field(default=20, ge=2, description="Same refusals (code, symbol, side) that trip the rule.")
    window_s: Decimal = Field(default=Decimal(60), gt=0, description="Within this many seconds (engine time).")
    action: Literal["pause", "fail"] = "pause"
    pause_s: Decimal | None = Field(
        default=Decimal(300), gt=0,
        description="A pause ends after this long or at the next session phase, whichever is first; "
                    "null: only at the next session phase.",
    )
    fail_after_pauses: int | None = Field(
        default=3, ge=1, description="A strategy paused this many times in one trading day fails at the next trip.",
    )


class RepeatRefusals:
    """Per strategy: the times of its last ``max`` refusals of each (code, symbol, side)."""

    __slots__ = ("config", "_window_ns", "_seen")

    def __init__(self, config: RepeatRefusalsConfig) -> None:
        self.config = config
        self._window_ns = int((config.window_s * NS_PER_S).to_integral_value(ROUND_CEILING))
        self._seen: dict[tuple[int, str, Side], deque[int]] = {}

    def record(self, code: int, symbol: str, side: Side, now_ns: int) -> int:
        """Note one refusal; returns how many of this kind fell within the window when that reaches
        ``max`` (the rule trips, and the kind starts counting afresh), else 0."""
        key = (code, symbol, side)
        times = self._seen.get(key)
        if times is None:
            times = self._seen[key] = deque(maxlen=self.config.max)
        times.append(now_ns)
        if len(times) == self.config.max and times[0] > now_ns - self._window_ns:
            times.clear()
            return self.config.max
        return 0

    def clear(self) -> None:
        """Forget what was counted (a resumed strategy starts with a clean slate)."""
        self._seen.clear()
