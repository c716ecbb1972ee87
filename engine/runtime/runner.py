"""One configured strategy instance as the runtime holds it: hooks, context, orders, positions,
budgets and counters. Plain slots: the per-event loops read them directly."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from engine.model import ZERO, Instrument, Order
from engine.observe.timing import HOOK_FLOOR_NS, Log2Histogram
from engine.portfolio import Position
from engine.rejects import Reject
from engine.risk.facts import InstrumentFacts
from engine.risk.gate import Gate
from engine.risk.killswitch import StrategyLossLimit
from engine.risk.mmp import MmpState
from engine.risk.ratelimit import RateLimiter
from engine.risk.storm import RepeatRefusals


class StrategyRunner:
    """One configured strategy instance: its hooks, context, orders, positions and gate."""

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
        self.ctx: Any = None  # its engine.context.OrderContext, set by Runtime.add_strategy
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
        self.rate: RateLimiter | None = None
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

