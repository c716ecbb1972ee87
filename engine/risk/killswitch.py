"""The account kill switch: ACTIVE -> REDUCING -> HALTED.

When a day goes badly the safe move is not a clever one: first stop adding risk (REDUCING: only
orders that shrink a position pass), then stop trading (HALTED: nothing passes and the runtime
cancels every open order). States only escalate during a run, so a flapping PnL cannot switch
trading back on; the one way down is :meth:`KillSwitch.reset_day`, and it undoes only the daily
triggers (loss and drawdown are measured per day). A manual trigger or the reject-rate breaker
(something is wrong with the strategy or the venue link, not with the day) persists for the run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from engine.clock import NS_PER_S, Clock
from engine.model import Side
from engine.rejects import Reject
from engine.risk.gate import OrderRequest, Rejection


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"

    @property
    def rank(self) -> int:
        """Severity: states may only move to a higher rank."""
        return _RANK[self]


_RANK = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}

#: trigger sources that belong to one trading day and are undone by ``reset_day``
DAILY_SOURCES = frozenset({"daily_loss", "drawdown", "order_to_trade"})


class RejectRateConfig(BaseModel):
    """Breaker for a storm of rejects: ``max_rejects`` within ``window_s`` seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_rejects: int = Field(gt=0)
    window_s: Decimal = Field(gt=0)
    action: Literal["reducing", "halted"] = "halted"


class OrderToTradeConfig(BaseModel):
    """Order-to-trade ratio limit (SECP), per strategy over its trading day.

    A strategy's messages are its orders that reached the wire plus its amends and cancels that
    reached the wire (local refusals never left the process and are not counted); its ratio is
    ``messages / max(fills, 1)`` (fills: fill events, a partial fill counts once). With no fill
    the ratio is the message count, so ``min_orders`` keeps a quiet start from tripping: the limit
    is looked at once a strategy has sent ``min_orders`` messages that day, and trips when the
    ratio is above ``max_ratio``. The action is the account's (the kill switch's states); it
    belongs to the day, like the loss triggers, and lifts at the next trading day.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_ratio: Decimal = Field(gt=0, description="Messages per fill above which the action is taken.")
    min_orders: int = Field(100, gt=0, description="Messages of a strategy in the day before the ratio counts.")
    window: Literal["day"] = "day"
    action: Literal["reducing", "halted"] = "halted"


class KillSwitchConfig(BaseModel):
    """Account loss limits (positive numbers in the accounts' currency: PKR on PSX, the settlement
    currency on a derivatives venue) and the reject-rate breaker; None = off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    daily_loss_limit: Decimal | None = Field(None, gt=0, description="Loss = -(realized + unrealized) day PnL.")
    max_drawdown: Decimal | None = Field(None, gt=0, description="Fall from the day's peak PnL.")
    loss_action: Literal["reducing", "halted"] = "halted"
    reducing_at_fraction: Decimal | None = Field(
        None, gt=0, lt=1, description="Go REDUCING at this fraction of daily_loss_limit (e.g. 0.8)."
    )
    reject_rate: RejectRateConfig | None = None
    order_to_trade: OrderToTradeConfig | None = None
    on_margin_call: Literal["reducing", "halted", "off"] = Field(
        "reducing",
        description="What a venue's margin call does to the account: reducing (only orders that shrink a position), "
        "halted (cancel all, refuse all), or off (counted, logged and told to strategies only).",
    )


class Transition(NamedTuple):
    """One escalation (or a day reset) as recorded in :attr:`KillSwitch.history`."""

    ts: int
    state: TradingState
    reason: str


class KillSwitch:
    """The account's trading state and the triggers that raise it.

    ``on_change`` callbacks get each escalation's :class:`Transition` (the runtime cancels every
    open order on HALTED).
    """

    __slots__ = (
        "config", "clock", "state", "reason", "source", "history", "on_change",
        "peak_pnl", "day_pnl", "_floor", "_floor_reason", "_floor_source", "_rejects", "_orders", "_window_ns",
    )

    def __init__(self, config: KillSwitchConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.state = TradingState.ACTIVE
        self.reason = ""
        self.source = ""
        self.history: list[Transition] = []
        self.on_change: list[Callable[[Transition], object]] = []
        self.peak_pnl = Decimal(0)  # the day starts flat, so the peak is at least 0
        self.day_pnl = Decimal(0)
        # the highest state set by a persistent (non-daily) trigger: reset_day never goes below it
        self._floor = TradingState.ACTIVE
        self._floor_reason = ""
        self._floor_source = ""
        self._rejects: deque[int] = deque()
        self._orders: deque[int] = deque()
        rr = config.reject_rate
        self._window_ns = int((rr.window_s * NS_PER_S).to_integral_value(ROUND_CEILING)) if rr else 0

    # --- escalation --------------------------------------------------------------------------

    def _escalate(self, state: TradingState, reason: str, source: str) -> Transition | None:
        if source not in DAILY_SOURCES and state.rank > self._floor.rank:
            self._floor, self._floor_reason, self._floor_source = state, reason, source
        if state.rank <= self.state.rank:
            return None
        self.state, self.reason, self.source = state, reason, source
        transition = Transition(self.clock.now_ns(), state, reason)
        self.history.append(transition)
        for callback in list(self.on_change):
            callback(transition)
        return transition

    def trigger(self, state: TradingState | str, reason: str, source: str = "manual") -> Transition | None:
        """Raise the state (never lowers it); returns the transition, or None when already there or above."""
        state = TradingState(state)
        if state is TradingState.ACTIVE:
            raise ValueError("the kill switch only escalates; use reset_day() to clear the daily triggers")
        return self._escalate(state, reason, source)

    def report(self) -> dict[str, Any]:
        """Final state, why, and every escalation, for the JSON run report."""
        return {
            "state": self.state.value,
            "reason": self.reason,
            "source": self.source,
            "history": [{"ts": t.ts, "state": t.state.value, "reason": t.reason} for t in self.history],
        }

    @property
    def halted(self) -> bool:
        return self.state is TradingState.HALTED

    # --- daily PnL -----------------------------------------------------------------------------

    def on_pnl(self, day_pnl: Decimal) -> Transition | None:
        """Feed the day's PnL (realized + unrealized); escalates straight to the worst state it reaches."""
        self.day_pnl = day_pnl
        if day_pnl > self.peak_pnl:
            self.peak_pnl = day_pnl
        cfg = self.config
        action = TradingState(cfg.loss_action)
        loss = -day_pnl
        target, reason, source = TradingState.ACTIVE, "", ""

        def consider(state: TradingState, why: str, src: str) -> None:
            nonlocal target, reason, source
            if state.rank > target.rank:
                target, reason, source = state, why, src

        if cfg.daily_loss_limit is not None:
            if loss >= cfg.daily_loss_limit:
                consider(action, f"daily loss {loss} reached the limit {cfg.daily_loss_limit}", "daily_loss")
            elif cfg.reducing_at_fraction is not None and loss >= cfg.daily_loss_limit * cfg.reducing_at_fraction:
                consider(
                    TradingState.REDUCING,
                    f"daily loss {loss} reached {cfg.reducing_at_fraction} of the limit {cfg.daily_loss_limit}",
                    "daily_loss",
                )
        if cfg.max_drawdown is not None:
            drawdown = self.peak_pnl - day_pnl
            if drawdown >= cfg.max_drawdown:
                consider(
                    action, f"drawdown {drawdown} from the day's peak {self.peak_pnl} reached {cfg.max_drawdown}",
                    "drawdown",
                )
        if target is TradingState.ACTIVE:
            return None
        return self._escalate(target, reason, source)

    def persisted(self, trading_day: Any) -> dict[str, Any]:
        """State for the journal: the current one (valid for ``trading_day``) and the persistent floor."""
        return {
            "day": str(trading_day), "state": self.state.value, "reason": self.reason, "source": self.source,
            "floor": self._floor.value, "floor_reason": self._floor_reason, "floor_source": self._floor_source,
        }

    def restore(self, saved: dict[str, Any], trading_day: Any) -> None:
        """Put back what a previous run left: all of it on the same trading day, else only the
        persistent floor (a manual halt survives a restart; a daily loss trigger ends with its day)."""
        self._floor = TradingState(saved["floor"])
        self._floor_reason, self._floor_source = saved["floor_reason"], saved["floor_source"]
        if saved["day"] == str(trading_day):
            self.state, self.reason, self.source = TradingState(saved["state"]), saved["reason"], saved["source"]
        else:
            self.state, self.reason, self.source = self._floor, self._floor_reason, self._floor_source
        if self.state is not TradingState.ACTIVE:
            self.history.append(Transition(self.clock.now_ns(), self.state, f"restored: {self.reason}"))

    def reset_day(self) -> Transition | None:
        """New trading day: forget the day's PnL and undo a daily trigger (down to any persistent one)."""
        self.peak_pnl = Decimal(0)
        self.day_pnl = Decimal(0)
        if self.source not in DAILY_SOURCES:
            return None
        changed = self.state is not self._floor
        self.state, self.reason, self.source = self._floor, self._floor_reason, self._floor_source
        if not changed:  # a persistent trigger reached the same state: it now owns it
            return None
        transition = Transition(self.clock.now_ns(), self.state, self.reason or "new trading day")
        self.history.append(transition)
        return transition

    # --- order-to-trade ratio ----------------------------------------------------------------

    def on_order_to_trade(self, strategy: str, messages: int, fills: int) -> Transition | None:
        """A strategy sent a message: its day's ``messages`` and ``fills`` (see
        :class:`OrderToTradeConfig`); takes the configured action when the ratio is over the limit."""
        otr = self.config.order_to_trade
        if otr is None or messages < otr.min_orders:
            return None
        action = TradingState(otr.action)
        if action.rank <= self.state.rank or messages <= otr.max_ratio * max(fills, 1):
            return None
        ratio = order_to_trade_ratio(messages, fills)
        reason = (
            f"strategy {strategy!r}: order-to-trade ratio {ratio} ({messages} orders, amends and cancels, "
            f"{fills} fills today) is above the limit {otr.max_ratio}"
        )
        return self._escalate(action, reason, "order_to_trade")

    # --- reject-rate breaker -------------------------------------------------------------------

    def _prune(self, window: deque[int], now: int) -> None:
        cutoff = now - self._window_ns  # the window is (now - window_s, now]
        while window and window[0] <= cutoff:
            window.popleft()

    def on_order(self, ts: int | None = None) -> None:
        """An order went out: counted only to say, in the breaker's reason, how many it was among."""
        if self.config.reject_rate is None:
            return
        now = self.clock.now_ns() if ts is None else ts
        self._orders.append(now)
        self._prune(self._orders, now)

    def on_reject(self, ts: int | None = None) -> Transition | None:
        """A venue or local reject; trips the breaker at ``max_rejects`` within ``window_s``."""
        rr = self.config.reject_rate
        if rr is None:
            return None
        now = self.clock.now_ns() if ts is None else ts
        self._rejects.append(now)
        self._prune(self._rejects, now)
        self._prune(self._orders, now)
        if len(self._rejects) < rr.max_rejects:
            return None
        reason = (
            f"{len(self._rejects)} rejects (limit {rr.max_rejects}) within {rr.window_s}s"
            f" ({len(self._orders)} orders sent)"
        )
        return self._escalate(TradingState(rr.action), reason, "reject_rate")


def order_to_trade_ratio(messages: int, fills: int) -> Decimal:
    """Messages per fill to two places; with no fill, the message count (as if one fill)."""
    return (Decimal(messages) / max(fills, 1)).quantize(Decimal("0.01"))


_ACTIVE = TradingState.ACTIVE  # a global read: cheaper than the enum lookup per order
_HALTED = TradingState.HALTED
_ZERO = Decimal(0)  # comparing two Decimals skips an int conversion
_BUY = Side.BUY
_SELL = Side.SELL


class KillSwitchCheck:
    """7013 when HALTED; 7012 in REDUCING unless the order shrinks the strategy's position.

    A reducing order may not cross zero even if every open order on its side fills: a sell of at
    most ``position - open sells`` when long, a buy of at most ``-position - open buys`` when short.
    An amend is judged on its new remaining quantity, with the amended order's own leaves taken out
    of the open quantity.
    """

    __slots__ = ("switch", "position", "open_qty")

    def __init__(
        self,
        switch: KillSwitch,
        position: Callable[[str, str], Decimal],
        open_qty: Callable[[str, str, Side], Decimal],
    ) -> None:
        self.switch = switch
        self.position = position
        self.open_qty = open_qty

    def check(self, request: OrderRequest) -> Rejection | None:
        switch = self.switch
        state = switch.state
        if state is _ACTIVE:
            return None
        if state is _HALTED:
            return Rejection(Reject.TRADING_HALTED, f"trading halted by the kill switch: {switch.reason}")
        side = Side(request.side)
        pos = self.position(request.strategy, request.symbol)
        if pos == _ZERO:
            return self._refuse(request, f"strategy {request.strategy!r} is flat in {request.symbol}")
        reducing_side = _SELL if pos > _ZERO else _BUY
        if side is not reducing_side:
            return self._refuse(request, f"a {side.value} would grow the position {pos} in {request.symbol}")
        open_same = self.open_qty(request.strategy, request.symbol, side)
        qty = request.qty
        amended = request.amend_of
        if amended is not None:
            open_same -= amended.leaves_qty
            qty = request.qty - amended.cum_qty
        room = abs(pos) - open_same
        if qty > room:
            return self._refuse(
                request,
                f"a {side.value} of {qty} would cross zero: position {pos} in {request.symbol} with {open_same}"
                f" already open on the {side.value} side leaves {max(room, Decimal(0))}",
            )
        return None

    def _refuse(self, request: OrderRequest, why: str) -> Rejection:
        return Rejection(
            Reject.ACCOUNT_REDUCING,
            f"account is reducing ({self.switch.reason}): only orders that shrink a position pass; {why}",
        )


class StrategyLossLimit:
    """A strategy's own daily loss limit (positive, in its venue account's currency): the runtime
    stops the strategy when breached."""

    __slots__ = ("limit",)

    def __init__(self, limit: Decimal) -> None:
        if limit <= 0:
            raise ValueError(f"a loss limit must be a positive amount, got {limit}")
        self.limit = Decimal(limit)

    def breached(self, pnl: Decimal) -> bool:
        """True once the strategy's day PnL is a loss of at least the limit."""
        return -pnl >= self.limit
