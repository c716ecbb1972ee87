"""The runtime: wires adapters <-> books <-> strategies <-> the pre-trade gate.

Adapters push model events in through the :class:`engine.venue.VenueEvents` methods
(``on_book``, ``on_trade``, ``on_fill``, ``on_order_update``, ``on_venue_status``). The runtime
updates books, orders and positions, then calls the hooks of the strategies subscribed to that
instrument. Hot hooks are called directly through callables resolved once at load (no pluggy call
per event, no logging, no validation); hooks a strategy does not define are simply absent from the
dispatch tuples.

Things a strategy causes inside its own hook (a local reject's ``on_order_update``) are queued and
delivered after that hook returns, so no hook ever runs inside another.

The runtime also owns the risk state the gate reads: one cash account per venue (settled and
unsettled cash and shares, reservations of open orders), the rule pack per instrument, the
reference and closing prices and halts per instrument, request budgets, MMP, the kill switch and
the connection state of every venue (cancel-on-disconnect and reconciliation).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import traceback
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from decimal import Decimal
from time import perf_counter_ns
from typing import Any, NamedTuple

import anyio

from engine.clientids import format_client_id
from engine.clock import NS_PER_S, Clock
from engine.context import OrderContext, strategy_logger
from engine.countedlog import CountedLog
from engine.journal import Journal
from engine.model import (
    MARGIN_CALL,
    ZERO,
    AccountEvent,
    Book,
    BookUpdate,
    Fill,
    IllegalTransition,
    Instrument,
    InstrumentStatus,
    Order,
    OrderStatus,
    OrderUpdate,
    Phase,
    SessionState,
    Side,
    Trade,
    apply_venue_update,
)
from engine.portfolio import Position
from engine.recovery import PROBE_MISSES, ask_venue, reconcile_venue
from engine.rejects import Reject
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
from engine.risk.gate import Gate, OrderRequest, Rejection
from engine.risk.killswitch import (
    KillSwitch,
    KillSwitchCheck,
    KillSwitchConfig,
    StrategyLossLimit,
    TradingState,
    Transition,
    order_to_trade_ratio,
)
from engine.risk.mmp import MmpCheck, MmpConfig, MmpState
from engine.risk.psx import cancel_refusal, psx_checks
from engine.risk.ratelimit import RateGuard, RateLimitCheck, RateLimitConfig, venue_buckets
from engine.risk.rulepack import DEFAULT_PROFILE, RulePack, resolve_packs
from engine.risk.storm import RepeatRefusals, RepeatRefusalsConfig
from engine.risk.structural import structural_checks
from engine.sessions import TradingCalendar
from engine.timeline import Timeline
from engine.timing import HOOK_FLOOR_NS, Log2Histogram
from engine.venue import Adapter, VenueAdapter

log = logging.getLogger("engine")

#: how many queued callbacks one drain may run before the runtime decides a strategy is looping
DEFERRED_LOOP_LIMIT = 10_000
#: at most this many anomaly samples (unknown fills, illegal transitions) are kept for the report
ANOMALY_SAMPLES = 20
#: what call_rare returns when the hook raised (None is a value a hook may return)
HOOK_FAILED = object()

# Enum members as globals for the per-order paths: on Python 3.11 ``OrderStatus.NEW`` runs
# EnumType's attribute hook, some twenty times the cost of a global read (same objects).
_NEW = OrderStatus.NEW
_PARTIALLY_FILLED = OrderStatus.PARTIALLY_FILLED
_PENDING_CANCEL = OrderStatus.PENDING_CANCEL
_REJECTED = OrderStatus.REJECTED


#: how often (engine time) the loss limits and the kill switch's PnL triggers are evaluated
RISK_TICK_NS = 1_000_000_000
#: an engine-initiated cancel refused by the venue's request budget is retried this soon at the latest
CANCEL_RETRY_MAX_NS = 1_000_000_000
# a venue that cannot answer reconciliation after a reconnect is asked again after 1, 2, 4 ... 30 s
RECONCILE_RETRY_MAX_S = 30
# a derivatives account that differs from the venue asks again this many engine seconds later and
# takes the venue's figures only if the same difference is still there (a fill notice in flight is not one)
ACCOUNT_CONFIRM_S = 2
#: refusals of one kind (strategy, code, symbol, side) are logged once, then counted: one line per this
REFUSAL_LOG_INTERVAL_S = 60.0
#: the shipped repeat-refusal rule (risk.containment.repeat_refusals), on unless a config turns it off
DEFAULT_REPEAT_REFUSALS = RepeatRefusalsConfig()


class Containment(NamedTuple):
    """The repeat-refusal rule tripped: fail the strategy or pause it; ``why`` is the sentence the
    refused order's reason and the log carry, ``what`` the refusal that repeated."""

    fails: bool
    why: str
    what: str


_RULE = "risk.containment.repeat_refusals"


class StrategyRunner:
    """One configured strategy instance: its hooks, context, orders, positions and guards."""

    __slots__ = (
        "name", "venue", "symbols", "instruments", "facts", "loaded", "ctx", "state", "failure", "gate",
        "open_orders", "positions", "on_book", "on_trade", "on_fill", "on_order_update",
        "orders_submitted", "orders_refused", "fills", "client_seq", "pm",
        "mmp", "mmp_triggers", "rate", "limits", "loss_limit", "pnl_day_start",
        "hook_errors", "hook_overruns", "stop_code", "client_reserved", "refused_in_row",
        "hook_stats", "book_stats", "trade_stats",
        "hook_errors_by", "rejects_by_code", "final_status", "dispatch_base", "algo_id",
        "amends_sent", "cancels_sent", "otr_day_base",
        "throttled", "repeats", "pauses", "pauses_today", "pause_reason", "pause_told", "resume_timer",
        "amends_refused", "cancels_refused",
    )

    def __init__(
        self, name: str, venue: str, instruments: Iterable[Instrument], loaded: Any, algo_id: str = ""
    ) -> None:
        self.name = name
        self.algo_id = algo_id or name  # config algo_id (SECP: a registered id per algorithm)
        self.venue = venue
        self.instruments: dict[str, Instrument] = {i.symbol: i for i in instruments}
        self.symbols = tuple(self.instruments)
        self.facts: dict[str, InstrumentFacts] = {}  # the venue's market facts of its instruments
        self.loaded = loaded
        self.pm = getattr(loaded, "pm", None)
        hooks: dict = getattr(loaded, "hooks", {}) or {}
        self.on_book = hooks.get("on_book")
        self.on_trade = hooks.get("on_trade")
        self.on_fill = hooks.get("on_fill")
        self.on_order_update = hooks.get("on_order_update")
        self.ctx: OrderContext | None = None
        self.state = "running"
        self.failure = ""
        self.gate: Gate = Gate(())
        self.open_orders: dict[str, Order] = {}
        self.positions: dict[str, Position] = {}
        self.orders_submitted = 0  # handed to the venue adapter: what reached the wire
        self.orders_refused = 0  # refused by the engine (gate, session, budget): never sent
        self.fills = 0
        # order-to-trade ratio: amends and cancels that reached the wire, and (orders + amends +
        # cancels, fills) at the start of the trading day: the day's figures are the difference
        self.amends_sent = 0
        self.cancels_sent = 0
        self.otr_day_base = (0, 0)
        self.client_seq = 0
        self.client_reserved = 0  # client ids up to here are reserved in the journal
        self.refused_in_row = 0  # orders refused locally since the last one sent (each used a client id)
        self.mmp: MmpState | None = None
        self.mmp_triggers = 0
        self.rate: RateGuard | None = None
        self.limits: Any = None
        self.loss_limit: StrategyLossLimit | None = None
        self.pnl_day_start = ZERO
        self.hook_errors = 0
        self.hook_overruns = 0
        # timing per hook; on_book / on_trade calls are counted per book entry (see settle_hook_counts)
        self.dispatch_base: dict[tuple[Any, str], int] = {}
        self.hook_stats: dict[str, Log2Histogram] = {}
        self.book_stats = self.stats_for("on_book")
        self.trade_stats = self.stats_for("on_trade")
        self.hook_errors_by: Counter[str] = Counter()
        self.rejects_by_code: Counter[int] = Counter()  # refusals, local and venue, by code
        self.final_status: Counter[str] = Counter()  # orders by final status, local rejects included
        self.stop_code = int(Reject.STRATEGY_NOT_RUNNING)  # what its orders are refused with once stopped
        self.amends_refused = 0  # local amend refusals (the order stays as it was; counted apart from orders)
        self.cancels_refused = 0  # a strategy's cancels refused (session, budget, venue away)
        # reject storms (engine/risk/storm.py): True once a refusal spent from the refusal budget, so
        # the next submit asks that budget first; accepted orders never look further than this flag
        self.throttled = False
        self.repeats: RepeatRefusals | None = None
        self.pauses = 0  # times the repeat-refusal rule paused it (run)
        self.pauses_today = 0
        self.pause_reason = ""  # the last pause's reason (kept after it resumes, for the report)
        self.pause_told: Order | None = None  # the refusal that paused it: its on_order_update is still told
        self.resume_timer: Any = None

    def stats_for(self, hook: str) -> Log2Histogram:
        stats = self.hook_stats.get(hook)
        if stats is None:
            stats = self.hook_stats[hook] = Log2Histogram(HOOK_FLOOR_NS)
        return stats

    @property
    def rejects(self) -> int:
        return sum(self.rejects_by_code.values())

    @property
    def messages_sent(self) -> int:
        """Orders, amends and cancels of this strategy that reached the wire (the order-to-trade
        ratio's numerator; local refusals never left the process)."""
        return self.orders_submitted + self.amends_sent + self.cancels_sent

    def day_messages_and_fills(self) -> tuple[int, int]:
        """Messages sent and fills since the start of the trading day."""
        messages, fills = self.otr_day_base
        return self.messages_sent - messages, self.fills - fills

    @property
    def slowest_hook_ns(self) -> int:
        """The slowest hook call over the 4 us floor (faster calls are counted, not tracked)."""
        return max((stats.slowest_ns for stats in self.hook_stats.values()), default=0)

    def position(self, symbol: str) -> Position:
        position = self.positions.get(symbol)
        if position is None:
            position = self.positions[symbol] = Position(symbol)
        return position

    @property
    def realized_pnl(self) -> Decimal:
        """Net of fees."""
        return sum((p.realized_pnl for p in self.positions.values()), ZERO)

    @property
    def fees(self) -> Decimal:
        return sum((p.fees for p in self.positions.values()), ZERO)


class _BookEntry(InstrumentFacts):
    """A book, the runners that receive its events (tuples for a tight dispatch loop), and what
    the gate reads about the instrument (the :class:`InstrumentFacts` it is)."""

    __slots__ = ("book_subs", "trade_subs", "band_halts", "n_book", "n_trade")

    def __init__(self, book: Book, instrument: Instrument, pack: RulePack) -> None:
        super().__init__(book, instrument.tick_size, pack, instrument.previous_close)
        self.book_subs: tuple[StrategyRunner, ...] = ()
        self.trade_subs: tuple[StrategyRunner, ...] = ()
        self.band_halts = pack.band_hit_halts
        self.n_book = 0
        self.n_trade = 0


class _MarketDataSink:
    """What a venue's separate market-data adapter sends into: data straight to the runtime (bound
    methods, no extra call on the event path), statuses as data health only."""

    def __init__(self, runtime: Runtime, venue: str) -> None:
        self.on_book = runtime.on_book
        self.on_trade = runtime.on_trade
        self.on_instrument_status = runtime.on_instrument_status
        self._runtime = runtime
        self._venue = venue

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None:
        self._runtime.on_market_data_status(self._venue, status, detail)

    def on_account_event(self, event: AccountEvent) -> None:
        self._runtime.on_account_event(event)

    def on_order_update(self, update: OrderUpdate) -> None:
        self._runtime._anomaly("feed_order_event", f"market-data adapter of {self._venue} sent an order update: "
                                                   f"{update!r}")

    def on_fill(self, fill: Fill) -> None:
        self._runtime._anomaly("feed_order_event", f"market-data adapter of {self._venue} sent a fill: {fill!r}")


class _Venue:
    """One venue account: adapter, books, orders, the cash account and the connection state."""

    __slots__ = (
        "name", "adapter", "entries", "orders", "exec_ids", "instruments", "status", "account", "packs",
        "guard", "cancel_on_disconnect", "on_reconnect", "disconnects", "dropped_at_ns", "at_drop",
        "awaiting_cancels", "ever_connected", "buckets", "cancel_when_back", "orphans", "orphan_retry_due",
        "reconcile_failures", "feed", "data_status", "told_stale", "mass_cancel",
        "n_fill", "n_order_update", "n_duplicate_fills", "n_unlisted", "tick_to_order", "fee_schedules",
        "account_events",
    )

    def __init__(
        self, name: str, adapter: Adapter, instruments: dict[str, Instrument],
        account: CashAccount | DerivativesAccount, packs: dict[str, RulePack], guard: RateGuard, buckets: list,
        cancel_on_disconnect: bool, on_reconnect: str,
    ) -> None:
        self.name = name
        self.adapter = adapter
        self.instruments = instruments
        self.entries: dict[str, _BookEntry] = {}
        self.orders: dict[str, Order] = {}  # every order of this run by client id: the id is single-use
        self.exec_ids: set[str] = set()
        self.status = "disconnected"
        self.account = account
        self.packs = packs
        #: what a fill is charged when the venue states no fee, and what a stated fee is checked against
        self.fee_schedules = {symbol: pack.fee_schedule() for symbol, pack in packs.items()}
        self.guard = guard  # the venue account's request budget, for cancels the engine itself sends
        self.cancel_on_disconnect = cancel_on_disconnect
        self.on_reconnect = on_reconnect
        self.disconnects = 0
        self.dropped_at_ns = 0
        self.at_drop: dict[str, Order] = {}  # open when the connection dropped, by client id
        self.awaiting_cancels: set[str] = set()
        self.ever_connected = False
        self.buckets = buckets  # the venue account's shared budgets, in every strategy's RateGuard
        self.cancel_when_back: dict[str, Order] = {}
        # open at the venue for a strategy this config no longer runs (restart): cancelled, no hooks
        self.orphans: dict[str, Order] = {}
        self.orphan_retry_due = False
        self.reconcile_failures = 0  # in a row, after a reconnect: spaces the next attempt
        self.feed: VenueAdapter | None = None  # a separate market-data adapter (``venues.<name>.market_data``)
        self.data_status = "disconnected"  # that feed's own connection
        self.told_stale = False  # strategies were told "stale" and not yet that data flows again
        self.mass_cancel = True  # halt and shutdown cancel in one request where the adapter can
        # counters for metrics and the report: plain ints, read at scrape time (books count their own events)
        self.n_fill = 0
        self.n_order_update = 0
        self.n_duplicate_fills = 0
        self.n_unlisted = 0  # market data for an instrument the venue does not list
        self.tick_to_order = Log2Histogram()
        self.account_events: Counter[str] = Counter()  # margin calls, account alerts, by kind


class Runtime:
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
        self._rolled_day: dt.date | None = None
        self.venues: dict[str, _Venue] = {}
        self.runners: dict[str, StrategyRunner] = {}
        self._deferred: deque = deque()
        self.kill_switch = KillSwitch(kill_switch if kill_switch is not None else KillSwitchConfig(), clock)
        self.kill_switch.on_change.append(self._on_trading_state)
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
        self._slow_ns = min(HOOK_FLOOR_NS, self.hook_budget_ns)
        self.max_hook_overruns = max_hook_overruns
        self.refusals_per_s = refusals_per_s
        self.repeat_refusals = repeat_refusals
        # refusals are logged once per kind, then counted (a storm writes a line a minute, not 68k)
        self.refusal_log = CountedLog(log, REFUSAL_LOG_INTERVAL_S, lambda: clock.now_ns() / NS_PER_S,
                                      _refusal_subject)
        # async work (reconciliation queries): the engine runs it; the simulated clock waits for it
        self.pending_tasks: list[Awaitable[None]] = []
        self.task_starter: Callable[[Callable[[], Awaitable[None]]], None] | None = None
        self._cancel_retries: set[str] = set()
        self._ready_after_notify: list[_Venue] = []
        self._risk_timer: Any = None
        # counters: plain ints on the hot path, read by heartbeat and report
        self.orders_submitted = 0  # handed to a venue adapter (refusals are not: orders_refused)
        self.orders_refused = 0
        self.mmp_triggers = 0
        self.anomalies: Counter[str] = Counter()
        self.anomaly_samples: list[str] = []
        # perf_counter_ns() when the event being dispatched entered the runtime (0 between events):
        # tick-to-order latency is measured from it to the adapter hand-off
        self._event_ns = 0
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

    # ---- construction ---------------------------------------------------------------------
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
    ) -> None:
        """Register a venue account. ``packs`` (rule pack per symbol) defaults to the default
        profile; ``rate_limits`` to what the adapter declares. A derivatives account's amounts are
        in ``currency`` (its config's, else this: the instruments' settlement currency)."""
        master = {i.symbol: i for i in instruments}
        if packs is None:
            packs = resolve_packs(DEFAULT_PROFILE, None, None, master)
        # every listed instrument has its facts (reference, band, halts) from the start, subscribed or not
        entries = {symbol: _BookEntry(Book(name, symbol), instrument, packs[symbol])
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
        guard = RateGuard(f"venue-{name}", None, buckets, self.clock)
        self.venues[name] = _Venue(
            name, adapter, master, held, packs, guard, buckets, cancel_on_disconnect, on_reconnect
        )
        self.venues[name].entries = entries

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
        runner.rate = RateGuard(runner.name, rate_limit, venue.buckets, self.clock, self.refusals_per_s)
        runner.repeats = RepeatRefusals(self.repeat_refusals) if self.repeat_refusals is not None else None
        runner.facts = {symbol: venue.entries[symbol] for symbol in runner.symbols}
        self.runners[runner.name] = runner
        runner.gate = Gate(self._checks_for(runner, venue))
        self._rebuild_dispatch()
        return runner

    def _checks_for(self, runner: StrategyRunner, venue: _Venue) -> list:
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

    def _rebuild_dispatch(self) -> None:
        """Recompute the per-book subscriber tuples (at load and when a strategy stops)."""
        self.settle_hook_counts()
        for venue in self.venues.values():
            for symbol, entry in venue.entries.items():
                live = [r for r in self.runners.values()
                        if r.venue == venue.name and symbol in r.instruments and r.state == "running"]
                entry.book_subs = tuple(r for r in live if r.on_book is not None)
                entry.trade_subs = tuple(r for r in live if r.on_trade is not None)
                for runner in self.runners.values():
                    for hook, subs, count in (("on_book", entry.book_subs, entry.n_book),
                                              ("on_trade", entry.trade_subs, entry.n_trade)):
                        if runner in subs:
                            runner.dispatch_base.setdefault((entry, hook), count)
                        else:
                            runner.dispatch_base.pop((entry, hook), None)

    def hold_strategies(self) -> None:
        """Restart: strategies hear nothing (and can send nothing) until reconciliation is done."""
        for runner in self.runners.values():
            if runner.state == "running":
                runner.state = "starting"
        self._rebuild_dispatch()

    def release_strategies(self) -> None:
        for runner in self.runners.values():
            if runner.state == "starting":
                runner.state = "running"
        self._rebuild_dispatch()

    def settle_hook_counts(self) -> None:
        """Bring every runner's on_book / on_trade call counts up to date.

        The per-event loops do not count calls per strategy (an integer per strategy per event is
        measurable at 10 strategies): every subscriber of an entry is called once per event the
        entry counts, so a strategy's calls are the entry's events since it subscribed. Metrics
        and the report call this before reading ``hook_stats``."""
        for runner in self.runners.values():
            base = runner.dispatch_base
            for key, since in base.items():
                entry, hook = key
                now = entry.n_book if hook == "on_book" else entry.n_trade
                if now != since:
                    runner.hook_stats[hook].calls += now - since
                    base[key] = now

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

    # ---- MarketView: what the gate reads ------------------------------------------------------
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

    # ---- the hot path: market data --------------------------------------------------------
    def on_book(self, update: BookUpdate) -> None:
        venue = self.venues.get(update.venue)
        entry = venue.entries.get(update.symbol) if venue is not None else None
        if entry is None:
            self._unlisted(venue)
            return
        entry.n_book += 1
        book = entry.book
        book.apply(update)
        slow = self._slow_ns
        outer = self._event_ns
        started = self._event_ns = perf_counter_ns()  # one clock read per hook: each hook's end starts the next
        for runner in entry.book_subs:
            try:
                runner.on_book(runner.ctx, book)
            except Exception:
                self.hook_raised(runner, "on_book")
            ended = perf_counter_ns()
            elapsed = ended - started
            started = ended
            if elapsed > slow:  # counted per entry; only a slow call is bucketed or held to the budget
                self._slow_hook(runner, runner.book_stats, "on_book", elapsed)
        self._event_ns = outer
        if self._deferred:
            self.drain()

    def on_trade(self, trade: Trade) -> None:
        venue = self.venues.get(trade.venue)
        entry = venue.entries.get(trade.symbol) if venue is not None else None
        if entry is None:
            self._unlisted(venue)
            return
        entry.n_trade += 1
        price = trade.price
        entry.last_price = price
        if entry.band_halts and entry.band is not None and entry.band_halt is None and (
            price <= entry.band[0] or price >= entry.band[1]
        ):
            self._band_hit(entry, trade)
        slow = self._slow_ns
        outer = self._event_ns
        started = self._event_ns = perf_counter_ns()  # one clock read per hook: each hook's end starts the next
        for runner in entry.trade_subs:
            try:
                runner.on_trade(runner.ctx, trade)
            except Exception:
                self.hook_raised(runner, "on_trade")
            ended = perf_counter_ns()
            elapsed = ended - started
            started = ended
            if elapsed > slow:
                self._slow_hook(runner, runner.trade_stats, "on_trade", elapsed)
        self._event_ns = outer
        if self._deferred:
            self.drain()

    def _slow_hook(self, runner: StrategyRunner, stats: Log2Histogram, hook: str, elapsed: int) -> None:
        """A hook call over the histogram floor or the budget (already counted): bucket it, and hold
        it to the budget."""
        if elapsed > stats.floor_ns:
            stats.record_slow(elapsed)
        if elapsed > self.hook_budget_ns:
            self.hook_overran(runner, hook, elapsed)

    def _hook_took(self, runner: StrategyRunner, hook: str, elapsed: int, budgeted: bool = True) -> None:
        """Record a timed hook call outside the per-event loops, and hold it to the budget."""
        runner.stats_for(hook).record(elapsed)
        if budgeted and elapsed > self.hook_budget_ns:
            self.hook_overran(runner, hook, elapsed)

    def _unlisted(self, venue: _Venue | None) -> None:
        if venue is not None:
            venue.n_unlisted += 1
        else:
            self._anomaly("market_data_unknown_venue", "market data for a venue this engine does not know")

    def _band_hit(self, entry: _BookEntry, trade: Trade) -> None:
        low, high = entry.band  # type: ignore[misc]
        edge = "upper" if trade.price >= high else "lower"
        entry.band_halt = (
            f"circuit breaker: {trade.symbol} traded at {trade.price}, the {edge} edge of its band [{low}, {high}]; "
            "halted for the rest of the day (profile rule band_hit_halts)"
        )
        log.warning("%s", entry.band_halt)

    def on_instrument_status(self, status: InstrumentStatus) -> None:
        """A venue's word on an instrument: halt, reference price for the day, closing price."""
        venue = self.venues.get(status.venue)
        entry = venue.entries.get(status.symbol) if venue is not None else None
        if entry is None:
            return
        if status.reference_price is not None and status.reference_price != entry.reference:
            entry.set_reference(status.reference_price)
        if status.closing_price is not None:
            entry.closing = status.closing_price
        if status.halted is not None:
            was = entry.venue_halt
            entry.venue_halt = (status.reason or "halted by the venue") if status.halted else None
            if (was is None) != (entry.venue_halt is None):
                log.warning("instrument %s:%s %s%s", status.venue, status.symbol,
                            "halted" if status.halted else "trading again",
                            f": {status.reason}" if status.reason else "")

    # ---- executions and order updates ---------------------------------------------------------
    def on_fill(self, fill: Fill) -> None:
        venue = self.venues.get(fill.venue)
        if venue is None:
            self._anomaly("fill_unknown_venue", f"fill for unknown venue: {fill!r}")
            return
        if fill.exec_id in venue.exec_ids:
            venue.n_duplicate_fills += 1
            return
        venue.exec_ids.add(fill.exec_id)
        order = venue.orders.get(fill.client_id)
        if order is None:
            # Not ours or lost: keep it visible (report, log) rather than guess which order it was.
            self._anomaly("fill_unknown_order", f"fill for an order this engine does not know: {fill!r}")
            return
        fee_source = self._price_fee(venue, fill)
        journal = self.journal
        seq = None
        if journal is not None:
            seq = journal.add_fill(fill, order._strategy, self._today(), fee_source)
            if seq is None:  # the journal has this exec id: applied before (a restart, a re-sent fill)
                venue.n_duplicate_fills += 1
                if not journal.same_fill(fill):
                    self._anomaly("exec_id_reused", f"venue reused exec id {fill.exec_id} for a different fill; "
                                                    f"not applied: {fill!r}")
                return
        try:
            order.apply_fill(fill.qty, fill.price, fill.ts)
        except (IllegalTransition, ValueError) as exc:
            if journal is not None and seq is not None:
                journal.unapplied(seq)
                journal.commit(fill.ts)
            self._anomaly("fill_rejected", f"fill not applied: {exc}; {fill!r}")
            return
        venue.n_fill += 1
        runner = self.runners.get(order._strategy)
        if runner is None or (venue.orphans and order._client_id in venue.orphans):
            self._orphan_fill(venue, order, fill, runner)
            return
        self.timeline.fill(fill.ts, runner.name, venue.name, fill.symbol, fill.side, fill.qty, fill.price,
                           fill.liquidity)
        runner.fills += 1
        runner.position(fill.symbol).apply_fill(fill.side, fill.qty, fill.price, fill.fee)
        venue.account.apply_fill(fill, self._today())
        self._order_changed(venue, order)
        if journal is not None:
            journal.commit(fill.ts)  # durable before the strategy hears of it
        if order.is_terminal:
            self._terminal(runner, order)
        log.info(
            "fill  %-12s %s %s %s @ %s (%s) pos=%s",
            runner.name, fill.symbol, fill.side.value, fill.qty, fill.price, fill.liquidity.value,
            runner.positions[fill.symbol].qty,
        )
        trigger = None
        if order._mmp and runner.mmp is not None:
            trigger = runner.mmp.on_fill(fill.qty, fill.ts)
            if trigger is not None:
                self._mmp_triggered(runner, trigger)
        self._call_hook(runner, runner.on_fill, "on_fill", fill)
        if self._ready_after_notify:
            self._flush_ready()
        if trigger is not None:
            self.call_rare(runner, "on_mmp_trigger", info=trigger)
        if self.watches_losses:  # a loss rule is configured: react to the fill at once
            self._check_losses()

    def _price_fee(self, venue: _Venue, fill: Fill) -> str:
        """Every fill carries its fee: the schedule's when the venue states none (paper without a
        schedule, Optimus, whose executions carry no commission); a venue's own fee is taken at
        its word and compared with the schedule, a difference beyond the pack's ``fee_tolerance``
        counted as the anomaly ``fee_mismatch`` (logged once, then counted)."""
        schedule = venue.fee_schedules.get(fill.symbol)
        if schedule is None:
            if fill.fee is None:
                fill.fee = ZERO
                return "schedule"
            return "venue"
        expected = schedule.fee(fill.side, fill.qty * fill.price)
        if fill.fee is None:
            fill.fee = expected
            return "schedule"
        tolerance = schedule.pack.fee_tolerance
        if abs(fill.fee - expected) > tolerance:
            self._anomaly("fee_mismatch", f"venue fee {fill.fee} differs from the schedule's {expected} "
                                          f"(tolerance {tolerance}); the venue's is applied: {fill!r}")
        return "venue"

    def _orphan_fill(self, venue: _Venue, order: Order, fill: Fill, runner: StrategyRunner | None) -> None:
        """A fill on an order the engine is cancelling without its strategy (reconciliation found it
        under the strategy's client id, or the strategy left the config): the account and the
        strategy's position still move, and a running strategy hears the fill, since its position
        changed; the order itself stays the engine's."""
        journal = self.journal
        if runner is not None:
            runner.fills += 1
            runner.position(fill.symbol).apply_fill(fill.side, fill.qty, fill.price, fill.fee)
        else:
            self.retired_fill(order._strategy, fill)
        venue.account.apply_fill(fill, self._today())
        self._order_changed(venue, order)
        if journal is not None:
            journal.commit(fill.ts)
        if order.is_terminal:
            venue.orphans.pop(order._client_id, None)
        log.warning("fill  %-12s %s %s %s @ %s on %s, an order the engine is cancelling", order._strategy,
                    fill.symbol, fill.side.value, fill.qty, fill.price, order._client_id)
        if runner is not None:
            self._call_hook(runner, runner.on_fill, "on_fill", fill)

    def retired_fill(self, strategy: str, fill: Fill) -> None:
        """Keep the position of a strategy this config no longer runs true (it is in every snapshot)."""
        saved = self.retired_positions.setdefault(strategy, {"positions": {}, "pnl_day_start": "0"})
        held = saved["positions"].get(fill.symbol)
        position = Position.restored(fill.symbol, held) if held is not None else Position(fill.symbol)
        position.apply_fill(fill.side, fill.qty, fill.price, fill.fee)
        saved["positions"][fill.symbol] = position.persisted()

    def on_order_update(self, update: OrderUpdate) -> None:
        venue = self.venues.get(update.venue)
        order = venue.orders.get(update.client_id) if venue is not None else None
        if order is None:
            self._anomaly("update_unknown_order", f"order update for an order this engine does not know: {update!r}")
            return
        venue.n_order_update += 1
        runner = self.runners.get(order._strategy)
        if runner is None or (venue.orphans and order._client_id in venue.orphans):
            # an orphan the engine is cancelling (restart, reconciliation): track it, nobody to tell
            with contextlib.suppress(IllegalTransition):
                apply_venue_update(order, update)
            self._order_changed(venue, order)
            if order.is_terminal:
                venue.orphans.pop(order._client_id, None)
            return
        try:
            changed = apply_venue_update(order, update)
        except IllegalTransition as exc:
            self._anomaly("illegal_transition", f"{exc}; {update!r}")
            return
        if not changed:
            return
        self._order_changed(venue, order)
        if order.is_terminal:
            self._terminal(runner, order)
            if order._status is _REJECTED:
                self._count_reject(runner, order.reject_code or Reject.EXCHANGE_REJECT)
                log.warning(
                    "venue reject %-12s %s %s: %s %s", runner.name, order.symbol, order.client_id,
                    order.reject_code, order.reject_reason,
                )
        self._notify_order(runner, order)

    def _order_changed(self, venue: _Venue, order: Order) -> None:
        """After every change to an order: its reservation in the account, and its journal row."""
        venue.account.track(order)
        journal = self.journal
        if journal is not None:
            journal.order(order)

    def _terminal(self, runner: StrategyRunner, order: Order) -> None:
        if runner.open_orders.pop(order.client_id, None) is not None:
            runner.final_status[order.status.value] += 1
        venue = self.venues[runner.venue]
        if venue.awaiting_cancels and order.client_id in venue.awaiting_cancels:
            venue.awaiting_cancels.discard(order.client_id)
            if not venue.awaiting_cancels and venue.status == "reconciling":
                self._ready_after_notify.append(venue)  # "connected" only after this final state is told

    def _flush_ready(self) -> None:
        while self._ready_after_notify:
            self._venue_ready(self._ready_after_notify.pop(0))

    def _notify_order(self, runner: StrategyRunner, order: Order) -> None:
        self._call_hook(runner, runner.on_order_update, "on_order_update", order)
        if self._ready_after_notify:
            self._flush_ready()

    def _call_hook(self, runner: StrategyRunner, hook: Any, name: str, arg: Any) -> None:
        """Call one strategy's hot hook, contained and timed, then deliver what it queued. (The
        per-book and per-trade loops inline this for speed.)"""
        if hook is not None and runner.state == "running":
            outer = self._event_ns
            started = self._event_ns = perf_counter_ns()
            try:
                hook(runner.ctx, arg)
            except Exception:
                self.hook_raised(runner, name)
            elapsed = perf_counter_ns() - started
            self._event_ns = outer
            self._hook_took(runner, name, elapsed)
        if self._deferred:
            self.drain()

    # ---- venue connection: cancel-on-disconnect and reconciliation -------------------------------
    def on_account_event(self, event: AccountEvent) -> None:
        """A venue's margin call or account alert: counted (report, ``engine_venue_account_events``),
        logged, and told to the strategies on that venue (``on_account_event``). A margin call
        first moves the kill switch as ``risk.kill_switch.on_margin_call`` says (reducing by
        default), so a strategy hearing of it already trades under the new state."""
        venue = self.venues.get(event.venue)
        if venue is None:
            self._anomaly("unknown_venue_event", f"account event from unknown venue {event.venue!r}: {event.kind}")
            return
        venue.account_events[event.kind] += 1
        shown = ", ".join(f"{key}={value}" for key, value in event.detail)
        margin_call = event.kind == MARGIN_CALL
        log.log(logging.ERROR if margin_call else logging.WARNING, "venue %s: %s%s", event.venue,
                event.kind.replace("_", " "), f" ({shown})" if shown else "")
        action = self.kill_switch.config.on_margin_call
        if margin_call and action != "off":
            self.kill_switch.trigger(action, f"margin call from venue {event.venue}", source="margin_call")
        for runner in self._runners_on(event.venue):
            self.call_rare(runner, "on_account_event", event=event)

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None:
        """``disconnected``: the venue's open orders become unknown and new orders are refused
        (9001). ``connected`` after a drop: reconcile with the venue, cancel (or keep) what was
        open at the drop, deliver every final state, and only then let orders flow again."""
        state = self.venues.get(venue)
        log.log(logging.WARNING if status != "connected" else logging.INFO,
                "venue %s %s%s", venue, status, f": {detail}" if detail else "")
        if state is None:
            return
        if status == "disconnected":
            if state.status == "disconnected":
                return
            was_reconciling = state.status == "reconciling"
            state.status = "disconnected"
            state.disconnects += 1
            if not was_reconciling:
                state.dropped_at_ns = self.clock.now_ns()
            state.awaiting_cancels.clear()
            now = self.clock.now_ns()
            marked: list[tuple[StrategyRunner, Order]] = []
            for runner in self._runners_on(venue):
                for order in list(runner.open_orders.values()):
                    if order.status is not OrderStatus.UNKNOWN and order.can_transition(OrderStatus.UNKNOWN):
                        order.transition(OrderStatus.UNKNOWN, now)
                        marked.append((runner, order))
                        state.at_drop[order._client_id] = order
            self._tell_venue_status(venue, "disconnected")
            for runner, order in marked:
                self._notify_order(runner, order)
        elif status == "connected":
            if not state.ever_connected:
                state.ever_connected = True
                if state.status != "recovering":  # at a restart, recovery says when orders may flow
                    state.status = "connected"
                return
            if state.status != "disconnected":
                self._data_flows_again(state)
                return
            state.told_stale = False
            state.status = "reconciling"
            self._tell_venue_status(venue, "reconciling")
            self.spawn(lambda: self.reconcile(state))
        else:  # "stale" and anything a future adapter reports: tell strategies, keep trading state
            if status == "stale":
                state.told_stale = True
            self._tell_venue_status(venue, status)

    def market_data_sink(self, venue: str) -> _MarketDataSink:
        """The sink of a venue's separate market-data adapter: its data goes where any adapter's
        does; its connection statuses only say whether the data is current."""
        return _MarketDataSink(self, venue)

    def on_market_data_status(self, venue: str, status: str, detail: str = "") -> None:
        """A market-data adapter's connection: a drop or silence makes the venue's data stale
        (strategies hear ``stale``), never its orders unknown; when data flows again, and the
        order side is connected, strategies hear ``connected``."""
        state = self.venues.get(venue)
        log.log(logging.WARNING if status != "connected" else logging.INFO, "market data for venue %s %s%s",
                venue, status, f": {detail}" if detail else "")
        if state is None:
            return
        state.data_status = status
        if status == "connected":
            self._data_flows_again(state)
        elif not state.told_stale:
            state.told_stale = True
            self._tell_venue_status(venue, "stale")

    def _data_flows_again(self, venue: _Venue) -> None:
        """After ``stale``: tell strategies ``connected`` once orders flow and every data source of
        the venue (its own adapter, a separate market-data one) is current again."""
        feed_ok = venue.feed is None or venue.data_status == "connected"
        if venue.told_stale and venue.status == "connected" and feed_ok:
            venue.told_stale = False
            self._tell_venue_status(venue.name, "connected")

    def cancel_orphans(self, venue: _Venue) -> None:
        """Cancel the orders a restart found with no strategy to own them (a strategy no longer in
        the config, or ``on_restart.unknown_orders: cancel``); called again at every session
        change, since the venue refuses cancels outside the phases that take them."""
        now = self.clock.now_ns()
        for order in list(venue.orphans.values()):
            if order.is_terminal:
                venue.orphans.pop(order._client_id, None)
                continue
            if order.status is not OrderStatus.PENDING_CANCEL and order.can_transition(OrderStatus.PENDING_CANCEL):
                if venue.guard.take_cancel() is not None:  # the venue's budget: the rest when it has room
                    if not venue.orphan_retry_due:
                        venue.orphan_retry_due = True
                        self.clock.call_at(max(venue.guard.next_cancel_ns(), now + 1), self._cancel_orphans_again,
                                           venue)
                    return
                order.transition(OrderStatus.PENDING_CANCEL, now)
                self._order_changed(venue, order)
                venue.adapter.cancel(order)

    def _cancel_orphans_again(self, venue: _Venue) -> None:
        venue.orphan_retry_due = False
        if venue.status in ("connected", "reconciling"):
            self.cancel_orphans(venue)

    def _runners_on(self, venue: str) -> list[StrategyRunner]:
        return [r for r in self.runners.values() if r.venue == venue]

    def _tell_venue_status(self, venue: str, status: str) -> None:
        for runner in self._runners_on(venue):
            self.call_rare(runner, "on_venue_status", venue=venue, status=status)

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

    async def reconcile(self, venue: _Venue) -> None:
        """After a reconnect: the same reconciliation as a restart (engine.recovery), then the
        cancels of what was open at the drop (``on_reconnect: cancel``) and of what the engine
        decided while the venue was away; ``connected`` is told once their final states are. A
        venue that cannot answer is asked again, backing off, while orders stay refused (9001)."""
        try:
            answer = await ask_venue(self, venue, venue.dropped_at_ns)
        except Exception as exc:
            venue.reconcile_failures += 1
            delay_s = min(RECONCILE_RETRY_MAX_S, 2 ** min(venue.reconcile_failures - 1, 5))
            log.error("reconciliation with venue %s failed (%s: %s); orders stay refused (9001), asking again "
                      "in %d s", venue.name, type(exc).__name__, exc, delay_s)
            if venue.status == "reconciling":
                self.clock.call_later(delay_s * NS_PER_S, self._reconcile_again, venue)
            return
        if venue.status != "reconciling":
            return  # dropped again meanwhile; the next reconnect reconciles
        venue.reconcile_failures = 0
        reconcile_venue(self, venue, answer, self.unknown_orders)  # an adopted order is told like any other
        await self.sync_account(venue)  # missed fills applied first: then the venue's account figures
        self.cancel_orphans(venue)
        to_cancel = venue.at_drop if venue.on_reconnect == "cancel" else {}
        # plus the cancels the engine itself decided while the venue was away (kill switch, MMP, a failure)
        to_cancel.update(venue.cancel_when_back)
        venue.at_drop = {}
        venue.cancel_when_back = {}
        for order in to_cancel.values():
            runner = self.runners[order.strategy]
            if order.is_terminal or runner.open_orders.get(order._client_id) is not order:
                continue
            venue.awaiting_cancels.add(order.client_id)
            sent = self.request_cancel(runner, order, by_engine=True, allow_reconciling=True)
            # a cancel paced by the venue's budget is still awaited: "connected" waits for it
            if not sent and order._client_id not in self._cancel_retries and order.status is not (
                OrderStatus.PENDING_CANCEL
            ):
                venue.awaiting_cancels.discard(order.client_id)
        if self.journal is not None:
            self.journal.commit(self.clock.now_ns())
        if not venue.awaiting_cancels:
            self._venue_ready(venue)
        if self._deferred:
            self.drain()

    async def sync_account(self, venue: _Venue, confirming: bool = False) -> None:
        """A derivatives account takes the venue's equity, margins and positions
        (``OrderEntryAdapter.query_account``): each difference is logged and counted as the anomaly
        ``account_mismatch``, and the venue's figure wins. At connect, after every reconnect's
        reconciliation and every ``account.sync_s``. A venue that cannot answer leaves the engine's
        own figures in force (logged), since refusing orders would not make them truer."""
        account = venue.account
        if not isinstance(account, DerivativesAccount) or not account.venue_reports:
            return
        if account.awaiting_confirmation and not confirming:
            return  # a difference waits for its confirming answer: only that one may take it
        fills_before = venue.n_fill
        try:
            figures = await venue.adapter.query_account(account.currency)
        except NotImplementedError as exc:
            account.venue_reports = False  # said once: the paper venue has no account figures to ask
            log.warning("venue %s: %s; the derivatives account keeps the engine's own figures", venue.name, exc)
            return
        except Exception as exc:
            log.warning("venue %s: account figures not available (%s: %s); the engine's own stay in force",
                        venue.name, type(exc).__name__, exc)
            return
        if venue.n_fill != fills_before:
            # a fill arrived while the venue answered: its figures may or may not count it, so they
            # are not compared now (the next sync does)
            log.info("venue %s: a fill arrived during the account query; compared at the next sync", venue.name)
            return
        for sentence in account.reconcile(figures):
            self._anomaly("account_mismatch", f"venue {venue.name}: {sentence}")
        if account.awaiting_confirmation:  # a difference seen once: asked again soon, taken if it stays
            log.info("venue %s: the account differs from the venue's; asking again in %d s", venue.name,
                     ACCOUNT_CONFIRM_S)
            if self.clock.simulated:
                self.clock.call_later(ACCOUNT_CONFIRM_S * NS_PER_S, self._confirm_account, venue)
            else:
                # real seconds, not the (maybe scaled) engine clock's: a fill notice still on its way
                # takes real time to arrive, however fast the session clock runs (--speed 60 made it
                # 33 ms, and a loaded machine counted an in-flight fill as a mismatch)
                self.spawn(lambda: self._confirm_account_later(venue))
            return
        log.info("venue %s account: equity %s %s, initial margin %s, available %s", venue.name,
                 account.equity().quantize(Decimal("0.01")), account.currency,
                 account.initial_margin().quantize(Decimal("0.01")), account.available().quantize(Decimal("0.01")))

    def _confirm_account(self, venue: _Venue) -> None:
        if venue.status == "connected":
            self.spawn(lambda: self.sync_account(venue, confirming=True))
        elif isinstance(venue.account, DerivativesAccount):
            venue.account.drop_unconfirmed()  # dropped meanwhile: the reconnect's sync compares afresh

    async def _confirm_account_later(self, venue: _Venue) -> None:
        await anyio.sleep(ACCOUNT_CONFIRM_S)
        self._confirm_account(venue)

    def start_account_sync(self, venue: _Venue) -> None:
        """Ask the venue's account figures every ``account.sync_s`` while the venue is connected."""
        account = venue.account
        if isinstance(account, DerivativesAccount) and account.venue_reports and account.config.sync_s is not None:
            self.clock.call_later(int(account.config.sync_s * NS_PER_S), self._sync_account_again, venue)

    def _sync_account_again(self, venue: _Venue) -> None:
        if venue.status == "connected":
            self.spawn(lambda: self.sync_account(venue))
        self.start_account_sync(venue)

    def _reconcile_again(self, venue: _Venue) -> None:
        if venue.status == "reconciling":
            self.spawn(lambda: self.reconcile(venue))

    def _venue_ready(self, venue: _Venue) -> None:
        venue.status = "connected"
        log.info("venue %s reconciled; orders flow again", venue.name)
        self._tell_venue_status(venue.name, "connected")
        if venue.feed is not None and venue.data_status != "connected":  # orders are back, data is not
            venue.told_stale = True
            self._tell_venue_status(venue.name, "stale")

    # ---- requests from the order context ------------------------------------------------------
    def next_client_id(self, runner: StrategyRunner) -> str:
        """``<strategy>-<epoch>-<n>``: short, venue-safe ([A-Za-z0-9_-], <= 32 chars), unique in the
        journal, and across journals by the journal's epoch."""
        used = self.venues[runner.venue].orders
        while True:
            runner.client_seq += 1
            if runner.client_seq > runner.client_reserved and self.journal is not None:
                # reserved (committed) before use: a restarted engine never hands out this id again
                runner.client_reserved = self.journal.reserve_client_ids(runner.name, runner.client_seq)
            candidate = format_client_id(runner.name, self.client_epoch, runner.client_seq)
            if candidate not in used:
                return candidate

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
        self._count_reject(runner, code)
        self.refusal_log.record(("order", runner.name, code, order._symbol, order._side.value), reason,
                                "reject %-12s %s %s: %s %s", runner.name, order.symbol, order.client_id, code, reason)
        if runner.on_order_update is not None:
            self._deferred.append((runner, order))
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
        self._count_reject(runner, code)
        self.refusal_log.record(("amend", runner.name, code, symbol, getattr(side, "value", "?")), reason,
                                "amend refused %-12s %s: %s %s", runner.name, getattr(order, "client_id", order),
                                code, reason)
        if contained is not None:
            self._contain(runner, None, contained)

    def refuse_cancel(self, runner: StrategyRunner, order: Order, rejection: Rejection) -> None:
        code = int(rejection.code)
        runner.cancels_refused += 1
        self._count_reject(runner, code)
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
        self._rebuild_dispatch()
        self.cancel_strategy_orders(runner)
        if cfg is not None and cfg.pause_s is not None:
            runner.resume_timer = self.clock.call_later(int(cfg.pause_s * NS_PER_S),
                                                        lambda: self.resume_strategy(runner))

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
        self._rebuild_dispatch()

    def flush_logs(self) -> None:
        """Say what the refusal log counted but did not yet tell (at each close, at stop)."""
        self.refusal_log.flush()

    def _count_reject(self, runner: StrategyRunner, code: int) -> None:
        runner.rejects_by_code[int(code)] += 1
        self.timeline.reject(self.clock.now_ns(), runner.name, int(code))
        self.kill_switch.on_reject(self.clock.now_ns())

    def send_new(self, runner: StrategyRunner, order: Order) -> Order:
        venue = self.venues[runner.venue]
        if runner.refused_in_row:
            if runner.refused_in_row >= PROBE_MISSES - 1 and self.journal is not None:
                # refused ids are unknown at the venue: were their rows lost in a crash, restart's probe
                # would run out of misses on them before reaching this order; so they are made durable
                self.journal.commit(self.clock.now_ns())
            runner.refused_in_row = 0
        self.orders_submitted += 1
        runner.orders_submitted += 1
        venue.orders[order.client_id] = order
        runner.open_orders[order.client_id] = order
        self._order_changed(venue, order)
        self.kill_switch.on_order(order._created_ts)
        if self.watches_order_to_trade:
            self._check_order_to_trade(runner)
        if self._event_ns:
            venue.tick_to_order.record(perf_counter_ns() - self._event_ns)
        venue.adapter.submit(order)
        return order

    def request_cancel(
        self, runner: StrategyRunner, order: Order, *, by_engine: bool = False, allow_reconciling: bool = False
    ) -> bool:
        """Send a cancel. A strategy's cancel passes the session rule and its own cancel budget
        (refusals are counted and logged, the order is untouched). A cancel the engine sends
        (kill switch, MMP, a failed strategy, shutdown, reconnect) takes only the venue's budget
        and, when that is exhausted for the moment, is retried as soon as it has room."""
        if not isinstance(order, Order) or runner.open_orders.get(order._client_id) is not order:
            return False
        if not order.can_transition(_PENDING_CANCEL):
            return False
        venue = self.venues[runner.venue]
        if by_engine and venue.status == "disconnected":
            venue.cancel_when_back[order._client_id] = order  # sent by reconcile once the venue is back
            return False
        if venue.status != "connected" and not ((by_engine or allow_reconciling) and venue.status == "reconciling"):
            if not by_engine:
                self.refuse_cancel(runner, order, Rejection(
                    Reject.BACKEND_CONNECTIVITY,
                    f"venue {venue.name!r} is {venue.status}; the order's state is unknown until it is reconciled",
                ))
            return False
        if by_engine:
            if venue.guard.take_cancel() is not None:
                self._retry_cancel_later(runner, order, venue)
                return False
        else:
            rejection = cancel_refusal(self.session)
            if rejection is None:
                rejection = runner.rate.take_cancel() if runner.rate is not None else None
            if rejection is not None:
                self.refuse_cancel(runner, order, rejection)
                return False
        order.transition(_PENDING_CANCEL, self.clock.now_ns())
        if self.journal is not None:
            self.journal.order(order)
        venue.adapter.cancel(order)
        runner.cancels_sent += 1
        if self.watches_order_to_trade:
            self._check_order_to_trade(runner)
        return True

    def _retry_cancel_later(self, runner: StrategyRunner, order: Order, venue: _Venue) -> None:
        if order._client_id in self._cancel_retries:
            return
        self._cancel_retries.add(order._client_id)
        now = self.clock.now_ns()
        due = min(max(venue.guard.next_cancel_ns(), now + 1), now + CANCEL_RETRY_MAX_NS)

        def retry() -> None:
            self._cancel_retries.discard(order._client_id)
            self.request_cancel(runner, order, by_engine=True, allow_reconciling=True)

        self.clock.call_at(due, retry)

    def request_amend(
        self, runner: StrategyRunner, order: Order, price: Decimal | None, qty: Decimal | None
    ) -> bool:
        # the engine reads the order's slots directly: this runs on the tick-to-order path
        if not isinstance(order, Order) or runner.open_orders.get(order._client_id) is not order:
            self.refuse_amend(runner, order, Rejection(Reject.ORDER_NOT_OPEN, "not an open order of this strategy"))
            return False
        if runner.state != "running":
            self.refuse_amend(runner, order, Rejection(runner.stop_code, f"strategy is {runner.state}"))
            return False
        if runner.throttled:  # refusals spent its budget: refused before any other rule runs
            spent = runner.rate.refusal_budget_spent()  # type: ignore[union-attr]
            if spent is not None:
                self.refuse_amend(runner, order, spent)
                return False
            runner.throttled = False
        venue = self.venues[runner.venue]
        adapter = venue.adapter
        if not adapter.capabilities.amend:
            self.refuse_amend(
                runner, order, Rejection(Reject.ORDER_TYPE_NOT_SUPPORTED, f"venue {venue.name!r} cannot amend orders")
            )
            return False
        status = order._status
        if status is not _NEW and status is not _PARTIALLY_FILLED:
            self.refuse_amend(
                runner, order,
                Rejection(Reject.ORDER_NOT_OPEN, f"order {order._client_id} is {status.value}; cannot amend now"),
            )
            return False
        old_price = order._price
        old_qty = order._qty
        if price is None and qty is None:
            self.refuse_amend(runner, order, Rejection(Reject.INVALID_ORDER, "amend needs a new price or quantity"))
            return False
        if (price is None or price == old_price) and (qty is None or qty == old_qty):
            return False  # nothing to change: no message, no refusal
        if qty is not None and qty <= order._cum_qty:
            self.refuse_amend(
                runner, order,
                Rejection(Reject.INVALID_ORDER, f"new quantity {qty} is not above the {order._cum_qty} already filled"),
            )
            return False
        symbol = order._symbol
        request = OrderRequest(
            runner.name, runner.venue, symbol, runner.instruments.get(symbol), order._side,
            old_qty if qty is None else qty, old_price if price is None else price,
            order._type, order._tif, order._post_only, order._client_id, order, order._mmp,
            runner.facts.get(symbol), order._reduce_only,
        )
        rejection = runner.gate.check(request)
        if rejection is not None:
            self.refuse_amend(runner, order, rejection)
            return False
        order.request_replace(price, qty, self.clock.now_ns())
        self._order_changed(venue, order)
        if self._event_ns:
            venue.tick_to_order.record(perf_counter_ns() - self._event_ns)
        adapter.amend(order, price, qty)
        runner.amends_sent += 1
        if self.watches_order_to_trade:
            self._check_order_to_trade(runner)
        return True

    def _check_order_to_trade(self, runner: StrategyRunner) -> None:
        """After a message went out: the day's order-to-trade ratio against the kill switch's limit."""
        messages, fills = runner.day_messages_and_fills()
        self.kill_switch.on_order_to_trade(runner.name, messages, fills)

    # ---- session ---------------------------------------------------------------------------------
    def on_session_change(self, old: SessionState, new: SessionState) -> None:
        """Tell venues first (the embedded venue expires DAY orders at the close), then strategies.
        A new trading day resets the day's references; the close rolls settlement one day."""
        self.session = new
        self.sessions_seen.append(new.phase.value)
        log.info("session %s -> %s (%s)", old.phase.value, new.phase.value, new.trading_day)
        if new.phase is not Phase.CLOSED and new.trading_day:
            day = dt.date.fromisoformat(new.trading_day)
            if day != self.trading_day:
                self._new_day(day)
        for venue in self.venues.values():
            venue.adapter.on_session(new)
            if venue.feed is not None:
                venue.feed.on_session(new)
            if venue.orphans and new.accepts_modify_cancel:
                self.cancel_orphans(venue)
        if new.phase is Phase.CLOSED and old.phase is not Phase.CLOSED:
            self._end_of_day()
        for runner in list(self.runners.values()):
            if runner.state == "paused":  # a pause lasts at most until the next session phase
                self.resume_strategy(runner)
            self.call_rare(runner, "on_session_change", old=old.phase.value, new=new.phase.value)
        self.timeline.phase(self.clock.now_ns(), new.phase.value)
        if new.phase is Phase.PRE_OPEN and new.trading_day:
            for venue, symbol, entry in self._traded_entries():
                if entry.band is not None and entry.reference is not None:
                    self.timeline.band(new.trading_day, f"{venue}:{symbol}", *entry.band, entry.reference)
        self.sample_timeline()

    def _traded_entries(self) -> Iterator[tuple[str, str, _BookEntry]]:
        """The book entries of every configured strategy's instruments (stopped ones included)."""
        traded = {(r.venue, symbol): entry for r in self.runners.values() for symbol, entry in r.facts.items()}
        for (venue, symbol), entry in traded.items():
            yield venue, symbol, entry  # type: ignore[misc]

    def sample_timeline(self) -> None:
        """One point of every strategy's PnL and positions and every traded price, for the page."""
        strategies = {
            runner.name: {
                "realized": runner.realized_pnl,
                "unrealized": self.unrealized_pnl(runner),
                "positions": {symbol: p.qty for symbol, p in runner.positions.items()},
            }
            for runner in self.runners.values()
        }
        prices = {
            f"{venue}:{symbol}": entry.last_price if entry.last_price is not None else entry.book.mid
            for venue, symbol, entry in self._traded_entries()
        }
        self.timeline.sample(self.clock.now_ns(), strategies, prices)

    def _new_day(self, day: dt.date) -> None:
        """Yesterday's close becomes today's reference; band halts lift; daily PnL starts at 0."""
        self.trading_day = day
        for venue in self.venues.values():
            for entry in venue.entries.values():
                if entry.closing is not None:
                    entry.set_reference(entry.closing)
                entry.closing = None
                entry.band_halt = None
        for runner in self.runners.values():
            runner.pnl_day_start = self.strategy_pnl(runner)
            runner.otr_day_base = (runner.messages_sent, runner.fills)
            runner.pauses_today = 0
        self.pnl_day_start = sum((self.strategy_pnl(r) for r in self.runners.values()), ZERO)
        if self.kill_switch.reset_day() is not None:
            self.journal_kill_switch()
        self.forget_finished_orders()
        if self.journal is not None:
            self.journal.mark_day(day)
            self.take_snapshot("day start")

    def forget_finished_orders(self) -> int:
        """Drop the orders that reached a final state before this trading day from each venue's
        order map, so a process that runs for weeks does not keep every order it ever sent (issue
        17). They are in the journal; no venue message can change them; a restarted engine does not
        load them either, and reconciliation treats a late word about one the way it does after a
        restart (it asks the venue). Client ids stay unique: the per-strategy sequence only grows
        (and is reserved in the journal). Returns how many were dropped."""
        dropped = 0
        for venue in self.venues.values():
            orders = venue.orders  # mutated in place: the gate's UniqueClientId holds this dict
            finished = [client_id for client_id, order in orders.items() if order.is_terminal]
            for client_id in finished:
                del orders[client_id]
            dropped += len(finished)
        return dropped

    def _end_of_day(self) -> None:
        """Settlement rolls one trading day: what settles by the next trading day becomes usable."""
        self.flush_logs()
        today = self._today()
        if self._rolled_day == today:
            return
        self._rolled_day = today
        next_day = self.calendar.next_trading_day(today, include_self=False)
        now = self.clock.now_ns()
        for venue in self.venues.values():
            settled = venue.account.roll(next_day)
            if settled or venue.account.has_unsettled:
                # totals only: one short line however many fills the day had (issue 18)
                log.info("settlement %s %s close: %s", venue.name, today.isoformat(),
                         venue.account.settlement_line(settled))
            if settled and self.journal is not None:
                self.journal.settled(venue.name, now, settled)
        if self.journal is not None:
            self.save_strategy_states()
            self.journal.mark_day_done(today)
            self.take_snapshot("close")

    def _today(self) -> dt.date:
        return self.trading_day if self.trading_day is not None else self.clock.now().date()

    def call_rare(self, runner: StrategyRunner, hook: str, **kwargs: Any) -> Any:
        """Call a rare hook (start, session change, venue status, MMP, stop, save, load) through
        pluggy, contained; timed against the budget except on_start, on_stop and on_load. Returns
        what the hook returned (``on_save``), :data:`HOOK_FAILED` when it raised."""
        if runner.state != "running" or runner.pm is None:
            return None
        caller = getattr(runner.pm.hook, hook)
        if not caller.get_hookimpls():
            return None
        started = perf_counter_ns()
        try:
            result = caller(ctx=runner.ctx, **kwargs)
        except Exception:
            self.hook_raised(runner, hook)
            result = HOOK_FAILED
        self._hook_took(runner, hook, perf_counter_ns() - started,
                        budgeted=hook not in ("on_start", "on_stop", "on_load"))
        if self._deferred:
            self.drain()
        return result

    # ---- the journal's view of the runtime ----------------------------------------------------
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
            "rolled_day": self._rolled_day.isoformat() if self._rolled_day is not None else None,
        }

    def take_snapshot(self, reason: str) -> None:
        if self.journal is not None:
            self.journal.snapshot(self.clock.now_ns(), self._today(), reason, self.persisted_state())

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

    # ---- MMP, losses and the kill switch ----------------------------------------------------
    def _mmp_triggered(self, runner: StrategyRunner, trigger: Any) -> None:
        """Cancel every MMP order of the strategy at once (the venue's budget, not the
        strategy's: protection must not wait for the strategy's cancel budget)."""
        runner.mmp_triggers += 1
        self.mmp_triggers += 1
        log.warning("MMP triggered for %s: %s; cancelling its MMP orders", runner.name, trigger.reason)
        self.journal_mmp(runner)
        for order in list(runner.open_orders.values()):
            if order._mmp and order.status is not OrderStatus.PENDING_CANCEL:
                self.request_cancel(runner, order, by_engine=True)

    def journal_mmp(self, runner: StrategyRunner) -> None:
        """A freeze (or its reset) survives a restart."""
        if self.journal is not None and runner.mmp is not None:
            self.journal.control(self.clock.now_ns(), "mmp", runner.name, runner.mmp.persisted())

    def journal_kill_switch(self) -> None:
        if self.journal is not None:
            self.journal.control(self.clock.now_ns(), "kill_switch", "account",
                                 self.kill_switch.persisted(self._today()))

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
        self._mmp_triggered(runner, trigger)
        self.call_rare(runner, "on_mmp_trigger", info=trigger)

    def strategy_pnl(self, runner: StrategyRunner) -> Decimal:
        """Realized plus unrealized PnL at the current marks, since the start of the run."""
        return runner.realized_pnl + self.unrealized_pnl(runner)

    def start_risk_timer(self) -> None:
        """Evaluate loss limits and the kill switch's PnL triggers every second of engine time."""
        if not self.watches_losses:
            return

        def tick() -> None:
            self._check_losses()
            self._risk_timer = self.clock.call_later(RISK_TICK_NS, tick)

        self._risk_timer = self.clock.call_later(RISK_TICK_NS, tick)

    def stop_risk_timer(self) -> None:
        if self._risk_timer is not None:
            self._risk_timer.cancel()
            self._risk_timer = None

    def _check_losses(self) -> None:
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
        self._rebuild_dispatch()
        self.cancel_strategy_orders(runner)

    def manual_trigger(self, state: TradingState, reason: str) -> None:
        """Operator's kill switch (SIGUSR1 / ``engine halt``)."""
        self.kill_switch.trigger(state, reason, source="manual")

    def _on_trading_state(self, transition: Transition) -> None:
        """Halted: cancel everything. Reducing: cancel what would grow a position."""
        state = transition.state
        log.error("kill switch: account %s (%s)", state.value, transition.reason)
        self.journal_kill_switch()
        if state is TradingState.HALTED:
            self.cancel_everything()
            return
        for runner in self.runners.values():
            reducing_left: dict[str, Decimal] = {}  # symbol -> what working orders may still reduce
            for order in list(runner.open_orders.values()):
                if order.status is OrderStatus.PENDING_CANCEL:
                    continue
                if state is TradingState.REDUCING:
                    symbol = order._symbol
                    position = self.position_of(runner.name, symbol)
                    grows = (order._side is Side.BUY and position >= 0) or (order._side is Side.SELL and position <= 0)
                    left = reducing_left.get(symbol, abs(position))
                    leaves = order.leaves_qty
                    if grows or leaves > left:  # it would grow the position or carry it across zero
                        self.request_cancel(runner, order, by_engine=True)
                    else:
                        reducing_left[symbol] = left - leaves

    # ---- containment ------------------------------------------------------------------------
    def hook_raised(self, runner: StrategyRunner, hook: str) -> None:
        """Called from inside ``except``: count it; at ``max_hook_failures`` the strategy fails."""
        runner.hook_errors += 1
        runner.hook_errors_by[hook] += 1
        if runner.hook_errors >= self.max_hook_failures:
            self.strategy_failed(runner, hook)
        else:
            log.error("strategy %s raised in %s (%d of %d allowed); it keeps running", runner.name, hook,
                      runner.hook_errors, self.max_hook_failures - 1, exc_info=True)

    def hook_overran(self, runner: StrategyRunner, hook: str, elapsed_ns: int) -> None:
        """A hook ran longer than its budget: counted and logged; repeated overruns stop it."""
        runner.hook_overruns += 1
        budget_ms = self.hook_budget_ns / 1e6
        log.warning("strategy %s: %s took %.1f ms, over its %.0f ms budget (%d of %d)", runner.name, hook,
                    elapsed_ns / 1e6, budget_ms, runner.hook_overruns, self.max_hook_overruns)
        if runner.hook_overruns >= self.max_hook_overruns and runner.state == "running":
            runner.stop_code = int(Reject.HOOK_BUDGET)
            self.strategy_failed(
                runner, hook, f"hooks ran over the {budget_ms:.0f} ms budget {runner.hook_overruns} times"
            )

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
        self._rebuild_dispatch()
        self.cancel_strategy_orders(runner)

    def cancel_strategy_orders(self, runner: StrategyRunner) -> int:
        sent = 0
        for order in list(runner.open_orders.values()):
            if order.status is not OrderStatus.PENDING_CANCEL and self.request_cancel(runner, order, by_engine=True):
                sent += 1
        return sent

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
        self._rebuild_dispatch()
        if cancel:
            self.cancel_strategy_orders(runner)

    def cancel_everything(self) -> None:
        """Every open order of every strategy (halt, shutdown): one mass cancel per venue whose
        adapter has one (``capabilities.mass_cancel``, ``venues.<name>.mass_cancel``), else order
        by order within the venue's request budget."""
        for venue in self.venues.values():
            runners = self._runners_on(venue.name)
            if not self._mass_cancel(venue, runners):
                for runner in runners:
                    self.cancel_strategy_orders(runner)

    def _mass_cancel(self, venue: _Venue, runners: list[StrategyRunner]) -> bool:
        """One request for all of them: faster than the venue's per-request budget allows order by
        order, and nothing can slip between two cancels. If the request fails, order by order."""
        if not (venue.mass_cancel and venue.adapter.capabilities.mass_cancel and venue.status == "connected"):
            return False
        orders = [(runner, order) for runner in runners for order in runner.open_orders.values()
                  if order.can_transition(OrderStatus.PENDING_CANCEL)]
        if len(orders) < 2 or venue.guard.take_cancel() is not None:
            return False
        now = self.clock.now_ns()
        for _, order in orders:
            order.transition(OrderStatus.PENDING_CANCEL, now)
            self._order_changed(venue, order)
        log.warning("venue %s: mass cancel of %d orders", venue.name, len(orders))

        async def send() -> None:
            try:
                await venue.adapter.cancel_all()
            except Exception as exc:
                log.error("venue %s: mass cancel failed (%s: %s); cancelling order by order", venue.name,
                          type(exc).__name__, exc)
                for runner, order in orders:
                    if order.status is OrderStatus.PENDING_CANCEL:
                        order.transition(order.live_status(), self.clock.now_ns())
                        self.request_cancel(runner, order, by_engine=True)

        self.spawn(send)
        return True

    def drain(self) -> None:
        """Deliver queued on_order_update calls (local rejects) after the hook that caused them."""
        deferred = self._deferred
        handled = 0
        while deferred:
            runner, order = deferred.popleft()
            handled += 1
            if handled > DEFERRED_LOOP_LIMIT:
                deferred.clear()
                self.strategy_failed(
                    runner, "on_order_update", f"more than {DEFERRED_LOOP_LIMIT} rejected orders from one event"
                )
                return
            if runner.on_order_update is not None and (runner.state == "running" or order is runner.pause_told):
                try:
                    runner.on_order_update(runner.ctx, order)
                except Exception:
                    self.hook_raised(runner, "on_order_update")

    def _anomaly(self, kind: str, sample: str) -> None:
        """Something a venue sent that cannot be applied: counted, logged once per kind, kept."""
        self.anomalies[kind] += 1
        if len(self.anomaly_samples) < ANOMALY_SAMPLES:
            self.anomaly_samples.append(sample)
        if self.anomalies[kind] == 1:
            log.error("%s (further ones are counted, see the report)", sample)
        else:
            log.debug(sample)

    # ---- read side ---------------------------------------------------------------------------
    @property
    def final_status(self) -> Counter[str]:
        """Orders by final status over every strategy (the strategies' own counters are the truth)."""
        return sum((r.final_status for r in self.runners.values()), Counter())

    @property
    def rejects_by_code(self) -> Counter[int]:
        return sum((r.rejects_by_code for r in self.runners.values()), Counter())

    @property
    def n_book(self) -> int:
        return sum(entry.n_book for venue in self.venues.values() for entry in venue.entries.values())

    @property
    def n_trade(self) -> int:
        return sum(entry.n_trade for venue in self.venues.values() for entry in venue.entries.values())

    @property
    def n_fill(self) -> int:
        return sum(venue.n_fill for venue in self.venues.values())

    @property
    def n_duplicate_fills(self) -> int:
        return sum(venue.n_duplicate_fills for venue in self.venues.values())

    def open_order_count(self) -> int:
        return sum(len(r.open_orders) for r in self.runners.values())

    def unrealized_pnl(self, runner: StrategyRunner) -> Decimal:
        """The strategy's open positions marked at mid, else last trade, else the reference."""
        unrealized = ZERO
        for symbol, position in runner.positions.items():
            unrealized += position.unrealized_pnl(self.last_price(runner.venue, symbol))
        return unrealized

    def strategy_summary(self, runner: StrategyRunner) -> dict[str, Any]:
        """realized_pnl is net: gross_pnl - fees."""
        unrealized = self.unrealized_pnl(runner)
        fees = runner.fees
        return {
            "orders": runner.orders_submitted,
            "refused": runner.orders_refused,
            "amends_refused": runner.amends_refused,
            "cancels_refused": runner.cancels_refused,
            "fills": runner.fills,
            "amends": runner.amends_sent,
            "cancels": runner.cancels_sent,
            # (orders + amends + cancels that reached the wire) per fill over the run; no fill: the count
            "order_to_trade": str(order_to_trade_ratio(runner.messages_sent, runner.fills)),
            "algo_id": runner.algo_id,
            "rejects": runner.rejects,
            "position": {s: str(p.qty) for s, p in sorted(runner.positions.items())},
            "gross_pnl": str(runner.realized_pnl + fees),
            "fees": str(fees),
            "realized_pnl": str(runner.realized_pnl),
            "unrealized_pnl": str(unrealized.quantize(Decimal("0.01"))),
            "state": runner.state,
            "mmp_triggers": runner.mmp_triggers,
            "hook_errors": runner.hook_errors,
            "hook_overruns": runner.hook_overruns,
            "slowest_hook_ms": round(runner.slowest_hook_ns / 1e6, 3),
            **({"failure": runner.failure} if runner.failure else {}),
            **({"pauses": runner.pauses, "pause_reason": runner.pause_reason} if runner.pauses else {}),
        }

    def venue_summary(self, venue: _Venue) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "status": venue.status,
            "disconnects": venue.disconnects,
            "currency": venue.account.currency,  # every amount of the account (PKR on PSX)
            "account": venue.account.snapshot(),
        }
        if venue.account_events:
            summary["account_events"] = dict(sorted(venue.account_events.items()))
        summary.update(_wire_counts(venue.adapter))
        if venue.feed is not None:
            summary["market_data"] = {"adapter": venue.feed.name, "status": venue.data_status,
                                      **_wire_counts(venue.feed)}
        return summary


def _refusal_subject(key: Any) -> str:
    """The counted refusal line's subject: "mm: 4002 MEBL sell order refused"."""
    kind, strategy, code, symbol, side = key
    return f"{strategy}: {code} {symbol} {side} {kind} refused"


def _wire_counts(adapter: VenueAdapter) -> dict[str, Any]:
    """The counters every adapter reports (``Adapter.stats``), and what it dropped as bad input
    by kind (``Adapter.bad_input``), for the report's venue section."""
    stats = adapter.stats()
    counts: dict[str, Any] = {key: int(stats.get(key, 0)) for key in ("messages_in", "messages_out", "reconnects")}
    counts["bad_input"] = {kind: int(n) for kind, n in sorted(adapter.bad_input().items())}
    return counts
