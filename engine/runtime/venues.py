"""The runtime's per-venue state: one venue account's adapter, books, orders, cash account and
connection state (:class:`VenueState`), and one instrument's book with its subscribers and the
facts the gate reads (:class:`BookEntry`)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from engine.model import Book, Instrument, Order
from engine.observe.timing import Log2Histogram
from engine.risk.account import CashAccount
from engine.risk.derivatives import DerivativesAccount
from engine.risk.facts import InstrumentFacts
from engine.risk.ratelimit import RateLimiter
from engine.risk.rulepack import RulePack
from engine.runtime.connectivity import DISCONNECTED, VenueStatus
from engine.venue import Adapter, VenueAdapter

if TYPE_CHECKING:
    from engine.runtime.runner import StrategyRunner


class BookEntry(InstrumentFacts):
    """A book, the runners that receive its events (tuples for a tight dispatch loop), and what
    the gate reads about the instrument (the :class:`InstrumentFacts` it is)."""

    __slots__ = ("book_subs", "trade_subs", "band_halts", "n_book", "n_trade", "book_sample_at",
                 "trade_sample_at", "book_sampled", "trade_sampled", "hooks_each")

    def __init__(self, book: Book, instrument: Instrument, pack: RulePack) -> None:
        super().__init__(book, instrument.tick_size, pack, instrument.previous_close)
        self.book_subs: tuple[StrategyRunner, ...] = ()
        self.trade_subs: tuple[StrategyRunner, ...] = ()
        self.band_halts = pack.band_hit_halts
        self.n_book = 0
        self.n_trade = 0
        # hook timing (engine/runtime/dispatch.py): the next event timed per hook while the hook
        # watch runs (0: every event is), the count at the last one, and whether a batch of the
        # book's strategies ever overran
        self.book_sample_at = 0
        self.trade_sample_at = 0
        self.book_sampled = 0
        self.trade_sampled = 0
        self.hooks_each = False


class VenueState:
    """One venue account: adapter, books, orders, the cash account and the connection state."""

    __slots__ = (
        "name", "adapter", "entries", "orders", "exec_ids", "instruments", "status", "account", "packs",
        "limiter", "cancel_on_disconnect", "on_reconnect", "disconnects", "dropped_at_ns", "at_drop",
        "awaiting_cancels", "ever_connected", "buckets", "cancel_when_back", "orphans", "orphan_retry_due",
        "reconcile_failures", "feed", "data_status", "told_stale", "mass_cancel",
        "n_fill", "n_order_update", "n_duplicate_fills", "n_unlisted", "tick_to_order", "fee_schedules",
        "account_events",
    )

    def __init__(
        self, name: str, adapter: Adapter, instruments: dict[str, Instrument],
        account: CashAccount | DerivativesAccount, packs: dict[str, RulePack], limiter: RateLimiter, buckets: list,
        cancel_on_disconnect: bool, on_reconnect: str,
    ) -> None:
        self.name = name
        self.adapter = adapter
        self.instruments = instruments
        self.entries: dict[str, BookEntry] = {}
        self.orders: dict[str, Order] = {}  # every order of this run by client id: the id is single-use
        self.exec_ids: set[str] = set()
        self.status: VenueStatus = DISCONNECTED  # always a member: the runtime compares with ``is``
        self.account = account
        self.packs = packs
        #: what a fill is charged when the venue states no fee, and what a stated fee is checked against
        self.fee_schedules = {symbol: pack.fee_schedule() for symbol, pack in packs.items()}
        self.limiter = limiter  # the venue account's request budget, for cancels the engine itself sends
        self.cancel_on_disconnect = cancel_on_disconnect
        self.on_reconnect = on_reconnect
        self.disconnects = 0
        self.dropped_at_ns = 0
        self.at_drop: dict[str, Order] = {}  # open when the connection dropped, by client id
        self.awaiting_cancels: set[str] = set()
        self.ever_connected = False
        self.buckets = buckets  # the venue account's shared budgets, in every strategy's RateLimiter
        self.cancel_when_back: dict[str, Order] = {}
        # open at the venue for a strategy this config no longer runs (restart): cancelled, no hooks
        self.orphans: dict[str, Order] = {}
        self.orphan_retry_due = False
        self.reconcile_failures = 0  # in a row, after a reconnect: spaces the next attempt
        self.feed: VenueAdapter | None = None  # a separate market-data adapter (``venues.<name>.market_data``)
        self.data_status: str = DISCONNECTED  # that feed's own connection, as its adapter says it
        self.told_stale = False  # strategies were told "stale" and not yet that data flows again
        self.mass_cancel = True  # halt and shutdown cancel in one request where the adapter can
        # counters for metrics and the report: plain ints, read at scrape time (books count their own events)
        self.n_fill = 0
        self.n_order_update = 0
        self.n_duplicate_fills = 0
        self.n_unlisted = 0  # market data for an instrument the venue does not list
        self.tick_to_order = Log2Histogram()
        self.account_events: Counter[str] = Counter()  # margin calls, account alerts, by kind

