"""Protection: market-maker protection, loss limits, the kill switch, margin calls.

MMP cancels a strategy's MMP orders when its fills trip the limits (or the venue's own MMP says so);
a strategy's loss limit stops that strategy; the kill switch moves the whole account to reducing
or halted (cancelling what would grow a position, or everything). Loss rules are evaluated on
every fill and every second of engine time, only when one is configured.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.model import (
    MARGIN_CALL,
    ZERO,
    AccountEvent,
    OrderStatus,
    Side,
)
from engine.risk.killswitch import (
    TradingState,
    Transition,
)

if TYPE_CHECKING:
    from engine.runtime.runner import StrategyRunner


log = logging.getLogger("engine")

#: how often (engine time) the loss limits and the kill switch's PnL triggers are evaluated
RISK_TICK_NS = 1_000_000_000
#: while halted with orders not yet final: how often they are looked at (engine time), as shutdown does
HALT_LOOK_NS = 250_000_000
#: ... and how often the ones still working are named in an ERROR line (the chase's own time)
HALT_NAME_NS = 30_000_000_000
#: while halted with every order final: how often to look again for one that appeared since (an
#: in-flight submit acked after the halt, an orphan found at a reconnect)
HALT_IDLE_LOOK_NS = 5_000_000_000
#: a halt chases for as long as the account stays halted: no deadline
HALT_NO_DEADLINE_NS = 10**18


class ProtectionMixin:
    """MMP, loss limits and the kill switch of :class:`~engine.runtime.Runtime`."""

    _risk_timer: Any = None  # the running risk tick (start_risk_timer), cancelled by stop_protection_timers
    _halt_timer: Any = None  # the halt's next look at the orders not yet final (chase_halt)

    def on_account_event(self, event: AccountEvent) -> None:
        """A venue's margin call or account alert: counted (report, ``engine_venue_account_events``),
        logged, and told to the strategies on that venue (``on_account_event``). A margin call
        first moves the kill switch as ``risk.kill_switch.on_margin_call`` says (reducing by
        default), so a strategy hearing of it already trades under the new state."""
        venue = self.venues.get(event.venue)
        if venue is None:
            self.anomaly("unknown_venue_event", f"account event from unknown venue {event.venue!r}: {event.kind}")
            return
        venue.account_events[event.kind] += 1
        shown = ", ".join(f"{key}={value}" for key, value in event.detail)
        margin_call = event.kind == MARGIN_CALL
        log.log(logging.ERROR if margin_call else logging.WARNING, "venue %s: %s%s", event.venue,
                event.kind.replace("_", " "), f" ({shown})" if shown else "")
        action = self.kill_switch.config.on_margin_call
        if margin_call and action != "off":
            self.kill_switch.trigger(action, f"margin call from venue {event.venue}", source="margin_call")
        for runner in self.runners_on(event.venue):
            self.call_rare(runner, "on_account_event", event=event)

    def mmp_triggered(self, runner: StrategyRunner, trigger: Any) -> None:
        """Cancel every MMP order of the strategy at once (the venue's budget, not the
        strategy's: protection must not wait for the strategy's cancel budget)."""
        runner.mmp_triggers += 1
        self.mmp_triggers += 1
        log.warning("MMP triggered for %s: %s; cancelling its MMP orders", runner.name, trigger.reason)
        self.journal_mmp(runner)
        for order in list(runner.open_orders.values()):
            if order.mmp and order.status is not OrderStatus.PENDING_CANCEL:
                self.cancel_order(runner, order, by_engine=True)

    def reset_mmp(self, runner: StrategyRunner) -> None:
        """``ctx.reset_mmp()``: lift the engine's freeze (journaled) and, on a venue with MMP of its
        own (Pulse), the venue's: the order context asks the runtime, it never calls an adapter."""
        runner.mmp.reset()  # type: ignore[union-attr]
        self.journal_mmp(runner)
        self.venues[runner.venue].adapter.reset_mmp(runner.name)

    def journal_mmp(self, runner: StrategyRunner) -> None:
        """A freeze (or its reset) survives a restart."""
        if self.journal is not None and runner.mmp is not None:
            self.journal.control(self.clock.now_ns(), "mmp", runner.name, runner.mmp.persisted())

    def journal_kill_switch(self) -> None:
        if self.journal is not None:
            self.journal.control(self.clock.now_ns(), "kill_switch", "account",
                                 self.kill_switch.persisted(self.today()))

    def venue_mmp_trigger(self, strategy: str, ts: int, frozen_until_ns: int | None, reason: str = "") -> None:
        """A venue-native MMP trigger (Pulse ``user.mmp_trigger``) drives the same path."""
        runner = self.runners[strategy]
        if runner.mmp is None:
            return
        if runner.mmp.is_frozen(ts):
            # the engine's own trigger came first (same limits, the engine counts the fills before
            # the venue's word arrives): one trigger, one on_mmp_trigger; the stricter freeze holds
            runner.mmp.extend_freeze(frozen_until_ns)
            self.journal_mmp(runner)
            log.info("MMP: venue %s froze %s too (%s); frozen until %s", runner.venue, strategy, reason or "venue",
                     runner.mmp.frozen_until_ns)
            return
        trigger = runner.mmp.venue_trigger(ts, frozen_until_ns)
        self.mmp_triggered(runner, trigger)
        self.call_rare(runner, "on_mmp_trigger", info=trigger)

    def strategy_pnl(self, runner: StrategyRunner) -> Decimal:
        """Realized plus unrealized PnL at the current marks, since the start of the run."""
        return runner.realized_pnl + self.unrealized_pnl(runner)

    def start_risk_timer(self) -> None:
        """Evaluate loss limits and the kill switch's PnL triggers every second of engine time."""
        if not self.watches_losses:
            return

        def tick() -> None:
            self.check_losses()
            self._risk_timer = self.clock.call_later(RISK_TICK_NS, tick)

        self._risk_timer = self.clock.call_later(RISK_TICK_NS, tick)

    def stop_protection_timers(self) -> None:
        """The risk tick and a halt's chase end at shutdown (whose own closer takes the orders over)."""
        if self._risk_timer is not None:
            self._risk_timer.cancel()
            self._risk_timer = None
        if self._halt_timer is not None:
            self._halt_timer.cancel()
            self._halt_timer = None

    def chase_halt(self) -> None:
        """A halt's first cancels are only the start, as at shutdown: a venue may refuse one (3001,
        9001), lose it, or drop. While the account stays halted, shutdown's
        :class:`~engine.shutdown.OrderCloser` looks at every order not yet final every
        :data:`HALT_LOOK_NS`: cancels again what the venue still works (backing off per order,
        within the venue's budget) and asks the venue about what is unknown or unanswered, with no
        deadline; every :data:`HALT_NAME_NS` the orders still working are named in an ERROR line.
        Once every order is final (logged) it looks every :data:`HALT_IDLE_LOOK_NS` for one that
        appeared since (an in-flight submit acked after the halt, an orphan found at a reconnect)
        and chases that too. It ends when the halt does (a new day) or at shutdown. A restart that
        finds the account halted starts it when a venue is reconciled (:meth:`venue_ready`)."""
        import time

        from engine.shutdown import OrderCloser

        if self._halt_timer is not None:
            return  # already chasing
        # real time unless the engine steps time itself: network venues answer in real time
        now_ns = self.clock.now_ns if self.clock.simulated else time.monotonic_ns
        closer = OrderCloser(self, HALT_NO_DEADLINE_NS, now_ns)
        began = named_at = now_ns()
        settled = False  # every order final, and said so

        def look() -> None:
            nonlocal named_at, settled
            self._halt_timer = None
            if not self.kill_switch.halted:
                return
            if closer.done():
                if not settled and (closer.cancels_sent or closer.queries):
                    log.warning("kill switch: every order final while halted (%d cancels sent again, %d venue "
                                "queries)", closer.cancels_sent, closer.queries)
                settled = True
                self._halt_timer = self.clock.call_later(HALT_IDLE_LOOK_NS, look)
                return
            settled = False
            closer.chase()
            now = now_ns()
            if now - named_at >= HALT_NAME_NS:
                named_at = now
                left = closer.left_working()
                log.error("kill switch: halted, and %d orders still working at the venue after %.0f s of "
                          "cancels: %s", len(left), (now - began) / 1e9,
                          ", ".join(f"{each['venue']}:{each['client_id']} ({each['status']})" for each in left))
            self._halt_timer = self.clock.call_later(HALT_LOOK_NS, look)

        self._halt_timer = self.clock.call_later(HALT_LOOK_NS, look)

    def check_losses(self) -> None:
        total = ZERO
        for runner in self.runners.values():
            pnl = self.strategy_pnl(runner)
            total += pnl
            if runner.loss_limit is not None and runner.state == "running":
                day = pnl - runner.pnl_day_start
                if runner.loss_limit.breached(day):
                    self.stop_for_loss(runner, day)
        self.kill_switch.on_pnl(total - self.pnl_day_start)

    def stop_for_loss(self, runner: StrategyRunner, day_pnl: Decimal) -> None:
        runner.state = "stopped"
        runner.failure = (
            f"loss limit: day PnL {day_pnl.quantize(Decimal('0.01'))} reached -{runner.loss_limit.limit}"  # type: ignore[union-attr]
        )
        log.error("strategy %s stopped: %s; its orders are being cancelled, the others keep trading",
                  runner.name, runner.failure)
        self.rebuild_dispatch()
        self.cancel_strategy_orders(runner)

    def manual_trigger(self, state: TradingState, reason: str) -> None:
        """Operator's kill switch (SIGUSR1 / ``engine halt``)."""
        self.kill_switch.trigger(state, reason, source="manual")

    def on_trading_state(self, transition: Transition) -> None:
        """Halted: cancel everything. Reducing: cancel what would grow a position."""
        state = transition.state
        log.error("kill switch: account %s (%s)", state.value, transition.reason)
        self.journal_kill_switch()
        if state is TradingState.HALTED:
            self.cancel_everything()
            self.chase_halt()
            return
        for runner in self.runners.values():
            reducing_left: dict[str, Decimal] = {}  # symbol -> what working orders may still reduce
            for order in list(runner.open_orders.values()):
                if order.status is OrderStatus.PENDING_CANCEL:
                    continue
                if state is TradingState.REDUCING:
                    symbol = order.symbol
                    position = self.position_of(runner.name, symbol)
                    grows = (order.side is Side.BUY and position >= 0) or (order.side is Side.SELL and position <= 0)
                    left = reducing_left.get(symbol, abs(position))
                    leaves = order.leaves_qty
                    if grows or leaves > left:  # it would grow the position or carry it across zero
                        self.cancel_order(runner, order, by_engine=True)
                    else:
                        reducing_left[symbol] = left - leaves
