"""The runtime object: its state, its construction, and what the gate reads (the market view).

:class:`Runtime` is composed of one mixin per concern, each in its own module (dispatch, orders,
entrance, refusals, connectivity, recovery, protection, dayroll, snapshots, summary); this
module holds the state they share (``Runtime.__init__``: every attribute is named here), the
construction (:meth:`Runtime.add_venue`, :meth:`Runtime.add_strategy`) and what every concern
uses (:meth:`Runtime.runners_on`, :meth:`Runtime.spawn` for async venue work). Mixins talk to each other
only through public names; a name with a leading underscore is used only in its own module
(tests/unit/test_private_names.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from typing import Any

from engine.clock import NS_PER_S, Clock
from engine.context import OrderContext, strategy_logger
from engine.countedlog import CountedLog
from engine.journal import Journal
from engine.model import (
    ZERO,
    Book,
    Instrument,
    SessionState,
    Side,
)
from engine.observe.timeline import Timeline
from engine.observe.timing import HOOK_FLOOR_NS
from engine.risk.account import AccountConfig, BuyingPower, CashAccount, NoShortSelling, PositionLimit, SectorLimit
from engine.risk.connectivity import VenueConnected
from engine.risk.derivatives import (
    DerivativesAccount,
    DerivativesAccountConfig,
    DerivativesPositionLimit,
    MarginCheck,
    ReduceOnly,
)
from engine.risk.facts import InstrumentFacts
from engine.risk.gate import Gate
from engine.risk.killswitch import (
    KillSwitch,
    KillSwitchCheck,
    KillSwitchConfig,
    StrategyLossLimit,
)
from engine.risk.mmp import MmpCheck, MmpConfig, MmpState
from engine.risk.psx import psx_checks
from engine.risk.ratelimit import RateLimitCheck, RateLimitConfig, RateLimiter, venue_buckets
from engine.risk.rulepack import DEFAULT_PROFILE, RulePack, resolve_packs
from engine.risk.storm import RepeatRefusals, RepeatRefusalsConfig
from engine.risk.structural import structural_checks
from engine.runtime.connectivity import ConnectivityMixin
from engine.runtime.dayroll import DayRollMixin
from engine.runtime.dispatch import DispatchMixin
from engine.runtime.entrance import EntranceMixin
from engine.runtime.hookwatch import HookWatch
from engine.runtime.orders import OrdersMixin
from engine.runtime.protection import ProtectionMixin
from engine.runtime.recovery import RecoveryMixin
from engine.runtime.refusals import DEFAULT_REPEAT_REFUSALS, REFUSAL_LOG_INTERVAL_S, RefusalsMixin, refusal_subject
from engine.runtime.runner import StrategyRunner
from engine.runtime.snapshots import SnapshotsMixin
from engine.runtime.strategies import StrategiesMixin
from engine.runtime.summary import SummaryMixin
from engine.runtime.venues import BookEntry, VenueState
from engine.sessions import TradingCalendar
from engine.venue import Adapter, VenueAdapter

log = logging.getLogger("engine")

__all__ = ["Runtime"]


class Runtime(DispatchMixin, EntranceMixin, OrdersMixin, RefusalsMixin, StrategiesMixin, ConnectivityMixin,
              RecoveryMixin, ProtectionMixin, DayRollMixin, SnapshotsMixin, SummaryMixin):
    """Event wiring, order bookkeeping and risk state. Build with :meth:`add_venue` /
    :meth:`add_strategy`. It is also the gate's :class:`~engine.risk.gate.MarketView`."""

    def __init__(
        self,
        clock: Clock,
        calendar: TradingCalendar | None = None,
        kill_switch: KillSwitchConfig | None = None,
        max_hook_failures: int = 1,
        hook_budget_ms: Decimal = Decimal(50),
        max_hook_overruns: int = 3,
        refusals_per_s: int | None = 10,
        repeat_refusals: RepeatRefusalsConfig | None = DEFAULT_REPEAT_REFUSALS,
    ) -> None:
        self.clock = clock
        self.calendar = calendar if calendar is not None else TradingCalendar()
        self.session = SessionState()  # closed until the session driver says otherwise
        self.sessions_seen: list[str] = [self.session.phase.value]
        self.trading_day: dt.date | None = None
        self.rolled_day: dt.date | None = None
        self.venues: dict[str, VenueState] = {}
        self.runners: dict[str, StrategyRunner] = {}
        self.deferred: deque = deque()
        #: the run's window has ended (close_market_data): books still update, strategies hear nothing
        self.market_data_closed = False
        self.kill_switch = KillSwitch(kill_switch if kill_switch is not None else KillSwitchConfig(), clock)
        self.kill_switch.on_change.append(self.on_trading_state)
        ks = self.kill_switch.config
        self.watches_order_to_trade = ks.order_to_trade is not None
        # True when some rule reads PnL (a strategy loss limit, the daily loss or drawdown trigger);
        # without one no PnL is computed per fill or per second
        self.watches_losses = ks.daily_loss_limit is not None or ks.max_drawdown is not None
        self.pnl_day_start = ZERO
        self.max_hook_failures = max_hook_failures
        self.hook_budget_ns = int(hook_budget_ms * 1_000_000)
        # the per-event loops look closer at a hook call only above this: the histogram floor, or
        # the budget where someone configured one below it
        self.slow_hook_ns = min(HOOK_FLOOR_NS, self.hook_budget_ns)
        self.max_hook_overruns = max_hook_overruns
        self.refusals_per_s = refusals_per_s
        self.repeat_refusals = repeat_refusals
        # refusals are logged once per kind, then counted (a storm writes a line a minute, not 68k)
        self.refusal_log = CountedLog(log, REFUSAL_LOG_INTERVAL_S, lambda: clock.now_ns() / NS_PER_S,
                                      refusal_subject)
        # async work (reconciliation queries): the engine runs it; the simulated clock waits for it
        self.pending_tasks: list[Awaitable[None]] = []
        self.task_starter: Callable[[Callable[[], Awaitable[None]]], None] | None = None
        self.cancel_retries: set[str] = set()
        self.ready_after_notify: list[VenueState] = []
        # counters: plain ints on the hot path, read by heartbeat and report
        self.orders_submitted = 0  # handed to a venue adapter (refusals are not: orders_refused)
        self.orders_refused = 0
        self.mmp_triggers = 0
        self.anomalies: Counter[str] = Counter()
        self.anomaly_samples: list[str] = []
        # perf_counter_ns() when the event being dispatched entered the runtime, or call_hook's hook
        # started (0 between events): tick-to-order latency is measured from it to the adapter
        # hand-off, and the hook watch reads it
        self.event_ns = 0
        # the hook watch (engine/runtime/hookwatch.py; the engine starts it for its run) and the start
        # of the last event it saw run past the budget, until that event's end has timed it
        self.hook_watch: HookWatch | None = None
        self.overrun_began = 0
        # what the HTML page of the day draws: fills, rejects, phases, bands, periodic samples
        self.timeline = Timeline()
        # the durable journal (engine/journal.py); None in tests that build a runtime by hand
        self.journal: Journal | None = None
        # the journal's part of every client id (engine/clientids.py); restore sets it, and a run
        # without a journal draws its own (Engine), so only a bare runtime (tests) has none
        self.client_epoch = ""
        # positions of strategies the journal knows and this config no longer runs: kept, not lost
        self.retired_positions: dict[str, Any] = {}
        # what reconciliation does with an order under our client ids the engine never saw (journal.on_restart)
        self.unknown_orders = "cancel"

    def add_venue(
        self,
        name: str,
        adapter: Adapter,
        instruments: Iterable[Instrument],
        *,
        account: AccountConfig | DerivativesAccountConfig | None = None,
        packs: dict[str, RulePack] | None = None,
        rate_limits: Iterable[Any] | None = None,
        cancel_on_disconnect: bool = True,
        on_reconnect: str = "cancel",
        currency: str | None = None,
        feed: VenueAdapter | None = None,
        mass_cancel: bool = True,
    ) -> None:
        """Register a venue account. ``packs`` (rule pack per symbol) defaults to the default
        profile; ``rate_limits`` to what the adapter declares. A derivatives account's amounts are
        in ``currency`` (its config's, else this: the instruments' settlement currency). ``feed``
        is the venue's separate market-data adapter, if any; ``mass_cancel: False`` makes halt and
        shutdown cancel order by order even where the adapter has a mass cancel."""
        master = {i.symbol: i for i in instruments}
        if packs is None:
            packs = resolve_packs(DEFAULT_PROFILE, None, None, master)
        # every listed instrument has its facts (reference, band, halts) from the start, subscribed or not
        entries = {symbol: BookEntry(Book(name, symbol), instrument, packs[symbol])
                   for symbol, instrument in master.items()}

        def reference(symbol: str) -> Decimal | None:  # market buys reserve at today's upper band
            entry = entries.get(symbol)
            return entry.reference if entry is not None else None

        held: CashAccount | DerivativesAccount
        if isinstance(account, DerivativesAccountConfig):
            settles_in = account.currency or currency
            if not settles_in:
                raise ValueError(f"venue {name}: a derivatives account needs its settlement currency")
            held = DerivativesAccount(account, settles_in, master, packs, self._mark_for(name))
        else:
            held = CashAccount(account if account is not None else AccountConfig(), self.calendar, master, packs,
                               reference_price=reference)
        limits = tuple(rate_limits) if rate_limits is not None else tuple(adapter.rate_limits)
        # the adapter paces its wire with these limits and answers with what really departs (its
        # margin included): the gate spends exactly that, so it never admits more than can leave
        buckets = venue_buckets(name, adapter.set_rate_limits(limits), self.clock)
        limiter = RateLimiter(f"venue-{name}", None, buckets, self.clock)
        venue = self.venues[name] = VenueState(
            name, adapter, master, held, packs, limiter, buckets, cancel_on_disconnect, on_reconnect
        )
        venue.entries = entries
        venue.feed = feed
        venue.mass_cancel = mass_cancel

    def add_strategy(
        self,
        runner: StrategyRunner,
        params: Any = None,
        *,
        limits: Any = None,
        rate_limit: RateLimitConfig | None = None,
        mmp: MmpConfig | None = None,
        loss_limit: Decimal | None = None,
    ) -> StrategyRunner:
        venue = self.venues[runner.venue]
        runner.ctx = OrderContext(runner, self, params, strategy_logger(runner.name))
        runner.mmp = MmpState(mmp, self.clock) if mmp is not None else None
        runner.limits = limits
        runner.loss_limit = StrategyLossLimit(loss_limit) if loss_limit is not None else None
        if runner.loss_limit is not None:
            self.watches_losses = True
        runner.rate = RateLimiter(runner.name, rate_limit, venue.buckets, self.clock, self.refusals_per_s)
        runner.repeats = RepeatRefusals(self.repeat_refusals) if self.repeat_refusals is not None else None
        runner.facts = {symbol: venue.entries[symbol] for symbol in runner.symbols}
        self.runners[runner.name] = runner
        runner.gate = Gate(self._checks_for(runner, venue))
        self.rebuild_dispatch()
        return runner

    def _checks_for(self, runner: StrategyRunner, venue: VenueState) -> list:
        """The gate of one strategy, cheapest and most basic first; the request budget last so
        only an order that passed every rule spends a token."""
        checks: list = structural_checks(venue.adapter.capabilities, venue.orders)
        checks.append(VenueConnected(venue))
        checks.append(KillSwitchCheck(self.kill_switch, self.position_of, self.open_qty))
        checks.extend(psx_checks(self, venue.packs))
        if runner.mmp is not None:
            checks.append(MmpCheck(runner.mmp))
        if runner.limits is not None:
            checks.append(PositionLimit({runner.name: runner.limits}, self.position_of, self.open_qty))
        account = venue.account
        if isinstance(account, DerivativesAccount):
            # positions may go short: margin instead of cash, no blank-sale or sector rule
            checks.append(ReduceOnly(account))
            checks.append(DerivativesPositionLimit(account))
            checks.append(MarginCheck(account))
            checks.append(RateLimitCheck(runner.rate))
            return checks
        checks.append(NoShortSelling(venue.account))
        checks.append(BuyingPower(venue.account))
        if venue.account.config.sector_limits:
            checks.append(SectorLimit(venue.account, self._mark_for(venue.name)))
        checks.append(RateLimitCheck(runner.rate))
        return checks

    # ---- what every concern uses: a venue's strategies, async work ------------------------------
    def runners_on(self, venue: str) -> list[StrategyRunner]:
        return [r for r in self.runners.values() if r.venue == venue]

    def spawn(self, make: Callable[[], Awaitable[None]]) -> None:
        """Run async work (venue queries). On the wall clock it starts at once in the engine's task
        group; on the simulated clock the engine runs it before time moves on."""
        if self.task_starter is not None:
            self.task_starter(make)
        else:
            self.pending_tasks.append(make())

    async def run_pending(self) -> None:
        """Run queued async work to completion (the simulated clock's loop and tests call this)."""
        while self.pending_tasks:
            await self.pending_tasks.pop(0)

    def subscriptions(self, venue: str) -> list[str]:
        return list(self.venues[venue].entries)

    def book(self, venue: str, symbol: str) -> Book | None:
        entry = self.venues[venue].entries.get(symbol)
        return entry.book if entry is not None else None

    def last_price(self, venue: str, symbol: str) -> Decimal | None:
        """The mark: mid, else last trade, else the reference price."""
        entry = self.venues[venue].entries.get(symbol)
        if entry is None:
            return None
        mid = entry.book.mid
        if mid is not None:
            return mid
        return entry.last_price if entry.last_price is not None else entry.reference

    def _mark_for(self, venue: str) -> Callable[[str], Decimal | None]:
        def mark(symbol: str) -> Decimal | None:
            return self.last_price(venue, symbol)

        return mark

    def facts(self, venue: str, symbol: str) -> InstrumentFacts | None:
        return self.venues[venue].entries.get(symbol)

    def position_of(self, strategy: str, symbol: str) -> Decimal:
        position = self.runners[strategy].positions.get(symbol)
        return position.qty if position is not None else ZERO

    def open_qty(self, strategy: str, symbol: str, side: Side) -> Decimal:
        """Quantity still working in this strategy's orders for one symbol and side."""
        total = ZERO
        for order in self.runners[strategy].open_orders.values():
            if order._symbol == symbol and order._side is side:
                total += order.leaves_qty
        return total
