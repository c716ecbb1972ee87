"""The simulated venue: what every sandbox serves its protocol on and what the paper adapter wraps.

A :class:`SimVenue` is one exchange with one account of ours: a price-time matching engine per
instrument (:mod:`.matching`), a deterministic synthetic market trading through them
(:mod:`.market`), the account's orders and fills (kept on disk by :mod:`.ledger` when asked), PSX
session phases (:mod:`.sessions`) and the faults of the one vocabulary it plays
(:mod:`.faults`: drop, reject, delay_acks, halt, reject_cancels).

Its API is the venue's, not the engine's: :meth:`~SimVenue.place`, :meth:`~SimVenue.cancel`,
:meth:`~SimVenue.amend` with plain fields; :meth:`~SimVenue.open_orders`, :meth:`~SimVenue.order`
and :meth:`~SimVenue.fills` answer at once from the venue's state; listeners
(:meth:`~SimVenue.add_listener`) hear the execution reports (``on_order_update``, ``on_fill``),
the public tape and book changes (``on_trade``, ``on_book``), instrument statuses and the
connection's state, each implementing only what it serves (a feed server has no fills).

Requests return at once and are processed ``latency_ms`` later on the clock, as a round trip to a
real venue would be; answers come back in the order the venue produced them: acknowledgement
(``OrderUpdate`` NEW) before any fill of that order, then fills (``Fill``), public prints
(``Trade``), cancels/expiries, and finally the L2 delta (``BookUpdate``) of the operation.
The venue also says what a PSX feed says about each instrument (``InstrumentStatus``): the
reference price when a trading day starts, the closing price once it is fixed, and halts.

A venue server with accounts of its own (the Pulse sandbox: many clients, each with positions,
MMP and cancel-on-disconnect) trades through :meth:`~SimVenue.submit_for`,
:meth:`~SimVenue.cancel_for` and :meth:`~SimVenue.amend_for`, synchronous and answered with the
operation's engine events, and hears every operation of the venue (its own, the synthetic
market's, the session's) as one batch through a listener's ``on_engine_events``: that is how its
clients' orders fill from background flow too.
"""

from __future__ import annotations

import itertools
import logging
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from adapters.kit.orders import MUTED, OrderTracker, TrackedOrder
from adapters.sim.faults import FAULT_KINDS, FaultSpec, check_supported, fault_label, seconds
from adapters.sim.ledger import FLUSH_AGE_NS, ORDER_IDS_RESERVED, UNFLUSHED, VenueLedger
from adapters.sim.market import MarketOptions, SymbolMarket
from adapters.sim.matching import (
    CODE_UNKNOWN_ORDER,
    Accepted,
    Cancelled,
    CancelRejected,
    EngineEvent,
    Execution,
    Expired,
    MatchingEngine,
    Rejected,
    Replaced,
    ReplaceRejected,
    StpPolicy,
    band_around,
)
from adapters.sim.sessions import SessionFollower, always_open_state
from engine.model import (
    TERMINAL_STATUSES,
    BookUpdate,
    Fill,
    Instrument,
    InstrumentStatus,
    Liquidity,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Phase,
    SessionState,
    Side,
    TimeInForce,
    Trade,
    VenueOrder,
)
from engine.venue.bands import price_band
from engine.venue.clock import KARACHI, NS_PER_S, Clock, Timer
from engine.venue.fees import FeeSchedule
from engine.venue.rejects import Reject

__all__ = ["CODE_HALTED", "CODE_INVALID_SYMBOL", "SUPPORTED_FAULTS", "SimVenue"]

log = logging.getLogger("engine.paper")

CODE_INVALID_SYMBOL = int(Reject.INVALID_SYMBOL)  # 2001
CODE_HALTED = int(Reject.CIRCUIT_BREAKER_TRIGGERED)  # 2010: new orders in a halted symbol
#: the kinds of :data:`adapters.sim.faults.FAULT_KINDS` the venue itself plays (a sandbox plays
#: its wire faults, sockets and frames, in its own server)
SUPPORTED_FAULTS = frozenset({"drop", "reject", "delay_acks", "halt", "reject_cancels"})
NS_PER_MS = 1_000_000
#: venue order ids reserved in the ledger per write (the synthetic market's orders take ids too)
ORDER_ID_BLOCK = 4096
_ACTIVE_STEP_PHASES = frozenset({Phase.PRE_OPEN, Phase.OPEN, Phase.POST_CLOSE})
# Enum members the per-operation path names, as module constants (as adapters.sim.matching keeps
# them): in Python 3.11 ``OrderStatus.NEW`` costs several times a plain attribute, per lookup
_PENDING_NEW = OrderStatus.PENDING_NEW
_NEW = OrderStatus.NEW
_PARTIALLY_FILLED = OrderStatus.PARTIALLY_FILLED
_CANCELLED = OrderStatus.CANCELLED
_EXPIRED = OrderStatus.EXPIRED
_DAY = TimeInForce.DAY
_MAKER = Liquidity.MAKER
_TAKER = Liquidity.TAKER
#: each member's ``value`` by the member: in Python 3.11 ``.value`` is a property written in Python
#: (two calls per read), a dict lookup of a str-enum member is one C-level probe
_TEXT: dict[StrEnum, str] = {member: member.value for enum in (Side, OrderStatus, TimeInForce) for member in enum}
_CLOSE_FIXING_PHASES = frozenset({Phase.POST_CLOSE, Phase.CLOSED})  # where MatchingEngine.set_phase fixes it
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
ZERO = Decimal(0)
_EVENTS = ("on_book", "on_trade", "on_fill", "on_order_update", "on_instrument_status", "on_venue_status")
#: the listener method that hears every operation's engine events, whoever's orders they concern
ENGINE_EVENTS = "on_engine_events"
#: one operation's L2 changes: (side, price, quantity now at that level; 0 = level gone)
Changes = tuple[tuple[Side, Decimal, Decimal], ...]


@dataclass(slots=True)
class _Request:
    """What the venue needs from an order, read when the request is sent (orders change later)."""

    client_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal | None
    order_type: OrderType
    tif: TimeInForce
    post_only: bool


class _Tracked(TrackedOrder):
    """One of our orders as the venue knows it: what a reconciliation query needs after the engine
    lost the venue's word on it (kept for live orders, and for finished ones until the next day),
    and what the engine was told of it (:class:`adapters.kit.orders.TrackedOrder`)."""

    __slots__ = ("tif", "post_only", "day")

    def __init__(
        self,
        client_id: str,
        symbol: str,
        side: Side,
        venue_order_id: str,
        price: Decimal | None,
        qty: Decimal,
        status: OrderStatus,
        tif: TimeInForce = TimeInForce.DAY,
        post_only: bool = False,
        day: str = "",
    ) -> None:
        super().__init__(client_id, symbol, side, qty, price, venue_order_id)
        self.status = status
        if status in TERMINAL_STATUSES:
            self.final = status
        self.acked = status is not _PENDING_NEW  # a restored order: the engine had its word
        self.tif = tif
        self.post_only = post_only
        self.day = day

    def row(self) -> tuple:
        """The venue ledger's row for this order."""
        price = self.price
        return (self.client_id, self.symbol, _TEXT[self.side], self.venue_order_id,
                None if price is None else str(price), str(self.qty), str(self.cum_qty), _TEXT[self.status],
                _TEXT[self.tif], "limit" if price is not None else "market", int(self.post_only), self.day)

    def view(self, venue: str) -> VenueOrder:
        return VenueOrder(
            venue, self.client_id, self.venue_order_id, self.symbol, self.side, self.status,
            self.qty, self.cum_qty, self.price,
        )


def _dated_price(value: str | None, wanted: Callable[[str], bool]) -> Decimal | None:
    """``"<ISO day> <price>"`` as the ledger keeps it: the price if ``wanted(day)``."""
    if value is None:
        return None
    day, _, price = value.partition(" ")
    return Decimal(price) if wanted(day) else None


class _Symbol:
    """Per-symbol venue state: engine, generator, subscription, book sequence and timers."""

    __slots__ = ("symbol", "engine", "market", "subscribed", "seq", "step_timer", "flow_timer")

    def __init__(self, symbol: str, engine: MatchingEngine, market: SymbolMarket | None) -> None:
        self.symbol = symbol
        self.engine = engine
        self.market = market
        self.subscribed = False
        self.seq = 0
        self.step_timer: Timer | None = None
        self.flow_timer: Timer | None = None


class SimVenue:
    """One simulated exchange: books, synthetic market, our account, sessions and faults, on a clock."""

    def __init__(
        self,
        venue: str,
        instruments: Iterable[Instrument],
        clock: Clock,
        *,
        account: str | None = "paper",
        latency_ms: Decimal = ZERO,
        stp: StpPolicy = "cancel_newest",
        market: MarketOptions | None = None,
        cancel_on_disconnect: bool = True,
        daily_faults: Iterable[FaultSpec] = (),
        seed: int = 0,
        listeners: Iterable[Any] = (),
        circuit_bands: bool = True,
    ) -> None:
        """``account`` is the venue's own account (the paper/engine one), None when every order
        belongs to a server's accounts (:meth:`submit_for`); ``circuit_bands=False`` lists the
        instruments without a price band (a crypto venue has none), unless :meth:`set_price_bands`
        gives one."""
        self.venue = venue
        self.instruments = {i.symbol: i for i in instruments}
        self.clock = clock
        self.seed = seed
        self._market_options = market = market if market is not None else MarketOptions()
        #: the venue cancels our resting orders when the connection drops (a drop fault)
        self.cancel_on_disconnect = cancel_on_disconnect
        self._daily_faults = tuple(daily_faults)
        for fault in self._daily_faults:
            check_supported(fault, "paper", SUPPORTED_FAULTS)
            if fault.at_time is None:
                raise ValueError(f"fault {fault}: a daily fault needs a time of day")
            symbol = fault.params.get("symbol")
            if fault.kind == "halt" and symbol not in self.instruments:
                known = ", ".join(sorted(self.instruments)) or "none"
                raise ValueError(f"halt fault for {symbol!r}: paper venue {venue!r} has no such instrument; "
                                 f"known: {known}")
        self._listeners: list[Any] = []
        self._out: Any = _Listeners(())
        #: listeners' on_engine_events: every operation's engine events, in the order of operations
        self._engine_event_hooks: list[Callable[[str, list[EngineEvent], Changes, int], None]] = []
        self._circuit_bands = circuit_bands
        for listener in listeners:
            self.add_listener(listener)
        self._follower: SessionFollower | None = None
        self._account = account
        self._latency_ns = int(latency_ms * NS_PER_MS)
        self._order_ids = itertools.count(1)
        next_id = self._next_order_id  # venue order ids unique across symbols (and across restarts)
        self._band_rules: dict[str, tuple[Decimal, Decimal]] = {}
        #: the engine's fee schedule per symbol (set_fee_schedules): the fee each of our fills carries
        self._fee_schedules: dict[str, FeeSchedule] = {}
        self._symbols: dict[str, _Symbol] = {}
        for symbol, instrument in self.instruments.items():
            reference = instrument.previous_close if instrument.previous_close > 0 else None
            band = (
                band_around(reference, instrument.tick_size, market.circuit_band_pct)
                if reference is not None and circuit_bands
                else None
            )
            engine = MatchingEngine(
                symbol,
                tick_size=instrument.tick_size,
                lot_size=instrument.lot_size,
                reference_price=reference,
                price_band=band,
                stp=stp,
                next_id=next_id,
            )
            symbol_market = (
                SymbolMarket(instrument, engine, market, seed)
                if market.enabled and reference is not None
                else None
            )
            self._symbols[symbol] = _Symbol(symbol, engine, symbol_market)
        self._phase = Phase.CLOSED
        self._connected = False
        self._exec_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        # our resting orders: client_id -> (symbol state, engine order id)
        self._live: dict[str, tuple[_Symbol, int]] = {}
        # our orders of the day (finished ones answer late cancels and queries), plus live older ones;
        # every state and fill of ours reaches the sink through it, once
        self._orders: OrderTracker[_Tracked] = OrderTracker(venue, self._out, clock.now_ns, logger=log)
        # every fill of ours, delivered or withheld, in time order (answers fills())
        self._fills: list[Fill] = []
        self._close_fixed = False  # the day's closing price is fixed and was announced
        # ---- injected faults
        self._link_up = True  # False during an injected drop: nothing reaches the listeners
        self._down_until_ns = 0
        self._last_request_ns = 0  # requests are processed in the order they were sent
        self._extra_delays_ns: list[int] = []  # active delay_acks windows
        self._rejects: deque[tuple[int, str]] = deque()  # pending injected rejects: (code, reason)
        self._cancel_refusals: list[tuple[int, str]] = []  # active reject_cancels windows: (code, reason)
        self._halts: dict[str, int] = {}  # symbol -> number of halts in force
        self._fault_days: set[date] = set()
        self._fault_timers: list[Timer] = []
        # the venue's own record on disk (set_state_path): written before any listener hears anything
        self._state_path: Path | None = None
        self._ledger: VenueLedger | None = None
        self._persisted_fills = 0
        self._order_ids_reserved = 0  # venue order ids up to this one are reserved in the ledger
        # today's closing prices (day, price) a restarted venue had fixed before it stopped, until its first phase
        self._restored_closes: dict[str, tuple[str, Decimal]] = {}
        # _today(): the date, and the span of the clock it holds for
        self._day = ""
        self._day_from_ns = self._day_until_ns = 0

    def add_listener(self, listener: Any) -> None:
        """Tell ``listener`` what the venue says from now on: each of ``on_book``, ``on_trade``,
        ``on_fill``, ``on_order_update``, ``on_instrument_status``, ``on_venue_status`` it has,
        and ``on_engine_events(symbol, events, changes, ts)`` (every operation as one batch) if it
        keeps accounts of its own."""
        self._listeners.append(listener)
        hook = getattr(listener, ENGINE_EVENTS, None)
        if hook is not None:
            self._engine_event_hooks.append(hook)
        # one listener taking everything (the paper adapter's sink) is called directly: no fan-out cost
        whole = len(self._listeners) == 1 and all(hasattr(listener, name) for name in _EVENTS)
        self._out = listener if whole else _Listeners(self._listeners)
        if hasattr(self, "_orders"):  # the order tracker tells our orders' states and fills to them too
            self._orders.sink = self._out

    def _next_order_id(self) -> int:
        order_id = next(self._order_ids)
        if order_id > self._order_ids_reserved and self._ledger is not None:
            # on disk before it is used: a row that waited may be lost in a crash, its id never reused
            self._order_ids_reserved = order_id + ORDER_ID_BLOCK - 1
            self._ledger.reserve_order_ids(self._order_ids_reserved)
        return order_id

    def set_state_path(self, path: Path) -> None:
        self._state_path = Path(path)

    def _today(self) -> str:
        """The date on the venue's clock (ISO), as ``clock.now()`` says it. Remembered for the rest
        of that day: every order accepted asks, and making the clock's datetime costs more than the
        rest of an acknowledgement."""
        now_ns = self.clock.now_ns()
        if self._day_from_ns <= now_ns < self._day_until_ns:
            return self._day
        now = self.clock.now()
        day = now.date()
        tz = now.tzinfo
        self._day = day.isoformat()
        # a millisecond short of each end, where Clock.now() rounds through a float; outside the
        # span (and on a day whose ends do not read as that day: a time zone's jump at midnight)
        # the clock is asked again
        start_ns = _ns_of(datetime.combine(day, time(), tzinfo=tz)) + NS_PER_MS
        until_ns = _ns_of(datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)) - NS_PER_MS
        if all(datetime.fromtimestamp(ns / NS_PER_S, tz).date() == day for ns in (start_ns, until_ns - 1)):
            self._day_from_ns, self._day_until_ns = start_ns, until_ns
        else:
            self._day_from_ns = self._day_until_ns = 0
        return self._day

    def _open_ledger(self) -> None:
        """Meet the venue we left: our fills, our orders, and the resting ones working again."""
        assert self._state_path is not None
        ledger = self._ledger = VenueLedger(self._state_path)
        self._fills = sorted(ledger.fills(self.venue), key=_fill_ts)
        self._persisted_fills = len(self._fills)
        top_exec = max((int(f.exec_id[1:]) for f in self._fills if f.exec_id[1:].isdigit()), default=0)
        self._exec_ids = itertools.count(top_exec + 1)
        today = self._today()
        rows = ledger.orders()
        top_id = max((int(r.venue_order_id) for r in rows if r.venue_order_id.isdigit()), default=0)
        top_id = max(top_id, int(ledger.meta(ORDER_IDS_RESERVED) or 0))
        self._order_ids = itertools.count(top_id + 1)
        self._order_ids_reserved = top_id
        # rows were waiting when the last run stopped without closing: a replace or cancel it had
        # announced may be lost, so a working order here may not be what the engine was told
        stale = ledger.meta(UNFLUSHED) == "1"
        cancelled = 0
        expired = []
        for row in rows:
            record = _Tracked(row.client_id, row.symbol, row.side, row.venue_order_id, row.price, row.qty, row.status,
                              TimeInForce(row.tif), row.post_only, row.day)
            record.cum_qty = row.cum_qty
            if row.status in TERMINAL_STATUSES:
                if row.day == today:
                    self._orders.add(record)  # answers queries about today's finished orders
                continue
            state = self._symbols.get(row.symbol)
            if state is None or row.price is None or (record.tif is TimeInForce.DAY and row.day < today):
                record.status = record.final = OrderStatus.EXPIRED  # a DAY order of a past day ended at that close
                expired.append(record)
                self._orders.add(record)
                continue
            if stale:
                record.status = record.final = OrderStatus.CANCELLED
                expired.append(record)
                self._orders.add(record)
                cancelled += 1
                continue
            state.engine.restore_resting(self._account, row.client_id, int(row.venue_order_id), row.side, row.price,
                                         row.qty, row.cum_qty, record.tif, row.post_only)
            self._live[row.client_id] = (state, int(row.venue_order_id))
            self._orders.add(record)
        if expired:
            ledger.write(expired, ())
        if stale:
            ledger.set_meta(UNFLUSHED, "0")
            log.warning("paper venue %s: state %s: the last run stopped with order rows not yet written; "
                        "its %d working orders of ours are cancelled (their last replace or cancel may be lost)",
                        self.venue, self._state_path, cancelled)
        self._restore_references(ledger, today)
        if rows or self._fills:
            log.info("paper venue %s: state %s: %d of our orders working, %d fills on record", self.venue,
                     self._state_path, len(self._live), len(self._fills))

    def _restore_references(self, ledger: VenueLedger, today: str) -> None:
        """Each symbol's reference price from the venue's own history, not the config's
        previous_close: the close of the last day this venue traded, or today's reference when the
        venue restarts within the day."""
        for symbol, state in self._symbols.items():
            reference = _dated_price(ledger.meta(f"reference:{symbol}"), lambda day: day == today)
            if reference is None:
                reference = _dated_price(ledger.meta(f"close:{symbol}"), lambda day: day < today)
            engine = state.engine
            close_today = _dated_price(ledger.meta(f"close:{symbol}"), lambda day: day == today)
            if close_today is not None:  # restarted after today's close was fixed: it stays fixed
                self._restored_closes[symbol] = (today, close_today)
            if reference is None or reference == engine.reference_price:
                continue
            log.info("paper venue %s: %s reference price %s (config previous_close %s)", self.venue, symbol,
                     reference, engine.reference_price)
            engine.reference_price = reference
            engine.price_band = self._band(symbol, reference, engine.tick_size)
            if state.market is not None:
                state.market.rebase(reference, move_mid=True)

    def _persist(self, client_ids: list[str]) -> None:
        """Write what this operation did to our orders: with new fills, now, before anyone hears of
        it; order rows alone wait for the ledger's next flush (``adapters.sim.ledger``)."""
        ledger = self._ledger
        assert ledger is not None
        get = self._orders.get
        if len(client_ids) == 1:  # the common case: one order's operation
            record = get(client_ids[0])
            records = [] if record is None else [record]
        else:
            records = [record for record in map(get, dict.fromkeys(client_ids)) if record is not None]
        if len(self._fills) > self._persisted_fills:
            ledger.write(records, self._fills[self._persisted_fills:])
            self._persisted_fills = len(self._fills)
        elif records:
            if not ledger.waiting:  # a new batch: it goes to disk within FLUSH_AGE_NS even if nothing follows
                self.clock.call_later(FLUSH_AGE_NS, self._flush_ledger)
            ledger.defer(records)

    def _flush_ledger(self) -> None:
        if self._ledger is not None:
            self._ledger.flush()

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the synthetic market on the clock, schedule today's faults and report ``connected``
        (meeting the venue we left first, when it keeps its state on disk)."""
        if self._state_path is not None and self._ledger is None:
            self._open_ledger()
        self._connected = True
        self._link_up = True
        self._schedule_market()
        self._schedule_faults()
        self._out.on_venue_status(self.venue, "connected")

    def stop(self) -> None:
        """Stop every timer and the session follower; requests still in flight are dropped. Never raises."""
        self._connected = False
        if self._follower is not None:
            self._follower.stop()
            self._follower = None
        for state in self._symbols.values():
            self._stop_timers(state)
        for timer in self._fault_timers:
            timer.cancel()
        self._fault_timers.clear()
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def follow_sessions(self, schedule: Any, *others: Callable[[SessionState], None]) -> SessionFollower:
        """Follow ``schedule`` on the venue's clock, telling ``others`` (a feed server, ...) each
        phase too, so nothing serving this venue can disagree with it on the phase. Stopped by
        :meth:`stop`."""
        if self._follower is not None:
            self._follower.stop()
        self._follower = SessionFollower(schedule, self.clock, (self.on_session, *others))
        self._follower.start()
        return self._follower

    def always_open(self, *others: Callable[[SessionState], None]) -> SessionState:
        """Continuous trading whatever the time (demos outside PSX hours, tests), told to ``others`` too."""
        state = always_open_state(self.clock)
        self.on_session(state)
        for other in others:
            other(state)
        return state

    def subscribe_book(self, symbols: Iterable[str]) -> None:
        """Send a snapshot per symbol now; deltas follow as the book changes. During a drop the
        snapshot waits for the reconnect, which sends one for every subscribed symbol."""
        for symbol in symbols:
            state = self._symbols.get(symbol)
            if state is None:
                known = ", ".join(sorted(self._symbols)) or "none"
                raise ValueError(f"paper venue {self.venue!r} has no instrument {symbol!r}; known: {known}")
            state.subscribed = True
            if not self._link_up:
                continue
            state.seq += 1
            self._out.on_book(
                BookUpdate(self.venue, symbol, self.clock.now_ns(), state.seq, state.engine.snapshot(), snapshot=True)
            )

    def matching_engine(self, symbol: str) -> MatchingEngine:
        """The engine behind one symbol: its rules (lot, tick, band, phase) and book, for servers
        checking requests and for tests (read it, do not trade through it: its events would not
        reach the listeners)."""
        return self._symbols[symbol].engine

    @property
    def phase(self) -> Phase:
        """The session phase the venue is in."""
        return self._phase

    # ---- requests (what a client of the venue sends, in venue terms) ----------------------
    def place(
        self,
        client_id: str,
        symbol: str,
        side: Side,
        qty: Decimal,
        price: Decimal | None = None,
        order_type: OrderType = OrderType.LIMIT,
        tif: TimeInForce = TimeInForce.DAY,
        post_only: bool = False,
    ) -> None:
        """A new order of the venue's account. Returns at once; the execution reports follow
        through the listeners (``latency_ms`` later)."""
        self._send(self._process_submit, _Request(client_id, symbol, side, qty, price, order_type, tif, post_only))

    def cancel(self, client_id: str) -> None:
        """Ask the venue to cancel one of the account's orders (answered through the listeners)."""
        self._send(self._process_cancel, client_id)

    def amend(self, client_id: str, price: Decimal | None, qty: Decimal | None) -> None:
        """Ask the venue to change an order's price and/or total quantity."""
        self._send(self._process_amend, client_id, price, qty)

    # ---- operations of a server's own accounts (synchronous, answered with the engine's events) --
    def submit_for(
        self,
        owner: str,
        client_id: str,
        symbol: str,
        side: Side,
        qty: Decimal,
        price: Decimal | None = None,
        order_type: OrderType = OrderType.LIMIT,
        tif: TimeInForce = TimeInForce.GTC,
        post_only: bool = False,
    ) -> list[EngineEvent]:
        """A new order of ``owner`` (an account a venue server keeps, or a background participant),
        processed now: the operation's engine events are returned and told to every
        ``on_engine_events`` listener; its public prints and L2 delta go to the listeners as the
        venue's own orders' do. A halted symbol refuses it (:data:`CODE_HALTED`) like ours."""
        state = self._symbols[symbol]
        ts = self.clock.now_ns()
        if self._halts and self._halts.get(symbol):
            events: list[EngineEvent] = [Rejected(owner, client_id, CODE_HALTED, f"trading in {symbol} is halted")]
            self._emit(state, events, (), ts)
            return events
        outcome = state.engine.submit(owner, client_id, side, qty, price, order_type, tif, post_only, ts)
        self._emit(state, outcome.events, outcome.changes, ts)
        return outcome.events

    def cancel_for(self, symbol: str, order_id: int, reason: str = "cancelled on request") -> list[EngineEvent]:
        """Cancel a resting order of a server's account by its engine order id, now (``reason``
        goes into the ``Cancelled`` event); see :meth:`submit_for`."""
        state = self._symbols[symbol]
        ts = self.clock.now_ns()
        outcome = state.engine.cancel(order_id, ts, reason)
        self._emit(state, outcome.events, outcome.changes, ts)
        return outcome.events

    def amend_for(self, symbol: str, order_id: int, price: Decimal | None, qty: Decimal | None) -> list[EngineEvent]:
        """Change a resting order of a server's account (None keeps the value), now; see
        :meth:`submit_for`."""
        state = self._symbols[symbol]
        ts = self.clock.now_ns()
        outcome = state.engine.amend(order_id, price, qty, ts)
        self._emit(state, outcome.events, outcome.changes, ts)
        return outcome.events

    def _send(self, process: Callable[..., None], *args: Any) -> None:
        """Put a request on the wire: processed ``latency_ms`` (plus any injected delay) later, never
        before a request sent earlier (one connection, in order); lost while the link is down."""
        if not self._link_up:
            return
        when = self.clock.now_ns() + self._latency_ns
        if self._extra_delays_ns:
            when += max(self._extra_delays_ns)
        if when < self._last_request_ns:
            when = self._last_request_ns
        self._last_request_ns = when
        self.clock.call_at(when, process, *args)

    def _process_submit(self, request: _Request) -> None:
        if not self._connected or not self._link_up:
            return
        ts = self.clock.now_ns()
        if self._rejects:
            code, reason = self._rejects.popleft()
            self._venue_reject(request, ts, code, reason)
            return
        state = self._symbols.get(request.symbol)
        if state is None:
            self._venue_reject(request, ts, CODE_INVALID_SYMBOL, f"unknown symbol {request.symbol!r}")
            return
        if self._halts.get(request.symbol):
            self._venue_reject(request, ts, CODE_HALTED, f"trading in {request.symbol} is halted")
            return
        outcome = state.engine.submit(
            self._account, request.client_id, request.side, request.qty, request.price,
            request.order_type, request.tif, request.post_only, ts,
        )
        self._emit(state, outcome.events, outcome.changes, ts, request)

    def _venue_reject(self, request: _Request, ts: int, code: int, reason: str) -> None:
        """A reject decided by the venue before the matching engine sees the order."""
        record = self._orders.add(self._requested(request))
        held = _Held()  # told only after the ledger has it
        with self._orders.delivering_to(held):
            self._orders.finish(record, OrderStatus.REJECTED, code, reason, ts=ts)
        if self._ledger is not None:
            self._persist([request.client_id])
        held.deliver(self._out)

    def _requested(self, request: _Request) -> _Tracked:
        """A record of an order the venue refused before it had an id."""
        return _Tracked(request.client_id, request.symbol, request.side, "", request.price, request.qty,
                        OrderStatus.PENDING_NEW, request.tif, request.post_only, self._today())

    def _process_cancel(self, client_id: str) -> None:
        if not self._connected or not self._link_up:
            return
        ts = self.clock.now_ns()
        live = self._live.get(client_id)
        if live is None or live[1] not in live[0].engine.resting:
            self._refuse(client_id, ts, "cancel refused: the order is no longer working")
            return
        if self._cancel_refusals:
            self._refuse_cancel(client_id, ts, *self._cancel_refusals[-1])
            return
        state, order_id = live
        outcome = state.engine.cancel(order_id, ts)
        self._emit(state, outcome.events, outcome.changes, ts)

    def _refuse_cancel(self, client_id: str, ts: int, code: int, reason: str) -> None:
        """An injected refusal (``reject_cancels``): the order keeps working, its state unchanged."""
        record = self._orders.get(client_id)
        assert record is not None  # only orders the venue still works are refused this way
        self._orders.answer(record, code, f"{reason} ({code})", status=record.live, ts=ts)

    def _process_amend(self, client_id: str, price: Decimal | None, qty: Decimal | None) -> None:
        if not self._connected or not self._link_up:
            return
        ts = self.clock.now_ns()
        live = self._live.get(client_id)
        if live is None or live[1] not in live[0].engine.resting:
            self._refuse(client_id, ts, "replace refused: the order is no longer working")
            return
        state, order_id = live
        outcome = state.engine.amend(order_id, price, qty, ts)
        self._emit(state, outcome.events, outcome.changes, ts)

    def _refuse(self, client_id: str, ts: int, reason: str) -> None:
        """Answer a cancel/replace for an order the venue no longer works: the status is the one
        it ended in (the runtime has, or is about to get, the event that ended it)."""
        record = self._orders.get(client_id)
        if record is None:
            self._orders.untracked_update(client_id, OrderStatus.REJECTED, CODE_UNKNOWN_ORDER,
                                          "unknown order: " + reason, ts=ts)
        else:
            self._orders.answer(record, CODE_UNKNOWN_ORDER, reason, status=record.status, ts=ts)

    # ---- reconciliation queries (answered from the venue's own state, at once) -------------
    def open_orders(self) -> list[VenueOrder]:
        """Our orders still resting, in the order they were accepted."""
        orders = self._orders
        return [record.view(self.venue) for record in map(orders.get, self._live) if record is not None]

    def resting_levels(self, symbol: str) -> list[tuple[Side, Decimal]]:
        """``(side, price)`` of each of our orders resting in ``symbol``, in the order they were
        accepted: :meth:`open_orders` narrowed to what a book model needs (the replay venue asks
        after every answer), without a view per order."""
        orders = self._orders
        levels = []
        for client_id, (state, _) in self._live.items():
            if state.symbol == symbol:
                record = orders.get(client_id)
                if record is not None and record.price is not None:
                    levels.append((record.side, record.price))
        return levels

    def symbol_of(self, client_id: str) -> str | None:
        """The symbol of one of our orders the venue knows (as :meth:`order`), else None."""
        record = self._orders.get(client_id)
        return None if record is None else record.symbol

    def order(self, client_id: str) -> VenueOrder | None:
        """A live order, or one finished today (final status and quantities); None when the venue
        never saw it (or finished it before today)."""
        record = self._orders.get(client_id)
        return None if record is None else record.view(self.venue)

    def fills(self, since_ns: int = 0) -> list[Fill]:
        """Our fills at or after ``since_ns``, including the ones withheld during a drop."""
        fills = self._fills
        return fills[bisect_left(fills, since_ns, key=_fill_ts):]

    # ---- session -------------------------------------------------------------------------
    def on_session(self, state: SessionState) -> None:
        """Follow the PSX session: every engine changes phase (leaving pre-open runs the opening
        auction), DAY orders expire at CLOSED, and the synthetic market follows the phase. A new
        day announces each reference price (and moves the band to it); the end of continuous
        trading announces each closing price."""
        old = self._phase
        new = state.phase
        if new is old:
            return
        self._phase = new
        ts = self.clock.now_ns()
        new_day = old is Phase.CLOSED
        if new_day:
            # late answers and queries about yesterday's finished orders are moot; live GTC orders stay,
            # and so do today's finished ones (a venue restarted within the day still answers for them)
            today = self._today()
            for record in self._orders.records():
                if record.status in TERMINAL_STATUSES and record.day != today:
                    self._orders.release(record)
            self._close_fixed = False
        fixes_close = new in _CLOSE_FIXING_PHASES and not self._close_fixed
        restored_closes = self._restored_closes
        for symbol_state in self._symbols.values():
            engine = symbol_state.engine
            restored = restored_closes.pop(symbol_state.symbol, None) if restored_closes else None
            if restored is not None and restored[0] != state.trading_day:
                engine.reference_price = restored[1]  # the first phase is a later day's: the close is its reference
                if symbol_state.market is not None:
                    symbol_state.market.rebase(restored[1], move_mid=True)
            outcome = engine.set_phase(new, ts)
            if restored is not None and restored[0] == state.trading_day:
                engine.restore_close(restored[1])  # still the day whose close it is (set_phase began it anew)
            if new_day:
                self._start_day(symbol_state, ts)
            if fixes_close:
                close = engine.closing_price
                if self._ledger is not None and close is not None:
                    self._ledger.set_meta(f"close:{symbol_state.symbol}", f"{self._today()} {close}")
                self._instrument_status(InstrumentStatus(self.venue, symbol_state.symbol, ts, closing_price=close))
            self._emit(symbol_state, outcome.events, outcome.changes, ts)
            if new is Phase.CLOSED:
                outcome = engine.expire_day_orders(ts)
                self._emit(symbol_state, outcome.events, outcome.changes, ts)
            if symbol_state.market is not None:
                engine.begin_batch()
                events = symbol_state.market.on_phase(old, new, ts)
                self._emit(symbol_state, events, engine.end_batch(), ts)
        if fixes_close:
            self._close_fixed = True
        self._schedule_market()
        if new_day:
            self._schedule_faults()

    def set_price_bands(self, bands: dict[str, tuple[Decimal, Decimal]]) -> None:
        """The engine's rule pack per symbol as ``(pct, abs_floor)``: the venue then builds the same
        band as the pre-trade gate (psx-2026: 10% or Rs 1), so the two never disagree on an edge."""
        self._band_rules = dict(bands)
        for symbol, state in self._symbols.items():
            engine = state.engine
            if symbol in self._band_rules and engine.reference_price is not None:
                engine.price_band = self._band(symbol, engine.reference_price, engine.tick_size)

    def set_fee_schedules(self, schedules: dict[str, FeeSchedule]) -> None:
        """The venue charges each of our fills the engine's schedule (every line of it), as a
        broker would on its contract note; a symbol without one states no fee."""
        self._fee_schedules = dict(schedules)

    def _band(self, symbol: str, reference: Decimal, tick: Decimal) -> tuple[Decimal, Decimal] | None:
        rule = self._band_rules.get(symbol)
        if rule is None:
            if not self._circuit_bands:
                return None
            return band_around(reference, tick, self._market_options.circuit_band_pct)
        return price_band(reference, tick, rule[0], rule[1])

    def _start_day(self, state: _Symbol, ts: int) -> None:
        """The engine has rolled yesterday's close into its reference price: the circuit band
        follows it, and the feed announces it."""
        engine = state.engine
        reference = engine.reference_price
        if reference is None:
            return
        band = self._band(state.symbol, reference, engine.tick_size)
        if band != engine.price_band:
            engine.price_band = band
        if state.market is not None:
            state.market.rebase(reference)
        if self._ledger is not None:
            self._ledger.set_meta(f"reference:{state.symbol}", f"{self._today()} {reference}")
        self._instrument_status(InstrumentStatus(self.venue, state.symbol, ts, reference_price=reference))

    def _instrument_status(self, status: InstrumentStatus) -> None:
        """Send an instrument status if the link is up and the sink takes them (older sinks do not)."""
        if not self._link_up:
            return
        deliver = getattr(self._out, "on_instrument_status", None)
        if deliver is not None:
            deliver(status)

    # ---- injected faults -----------------------------------------------------------------
    def _schedule_faults(self) -> None:
        """Put today's faults on the clock (once per day); those whose time has passed are skipped.
        Dates come from the clock, in Asia/Karachi: the adapter has no calendar of its own."""
        faults = self._daily_faults
        if not faults or not self._connected:
            return
        now_ns = self.clock.now_ns()
        today = datetime.fromtimestamp(now_ns // NS_PER_S, KARACHI).date()
        if today in self._fault_days:
            return
        self._fault_days.add(today)
        self._fault_timers = [t for t in self._fault_timers if not t.cancelled and t.when >= now_ns]
        for fault in faults:
            assert fault.at_time is not None  # checked in __init__
            at = datetime.combine(today, fault.at_time, tzinfo=KARACHI)
            at_ns = _ns_of(at)
            if at_ns < now_ns:
                log.info("paper venue %s: %s skipped on %s: already past", self.venue, fault_label(fault), today)
                continue
            self._fault_timers.append(self.clock.call_at(at_ns, self._inject_daily, fault))

    def _later(self, duration_s: Decimal, fn: Callable[..., None], *args: Any) -> None:
        self._fault_timers.append(self.clock.call_later(int(duration_s * NS_PER_S), fn, *args))

    def _inject_daily(self, fault: FaultSpec) -> None:
        if self._connected:
            self.inject(fault)

    def inject(self, fault: FaultSpec) -> None:
        """Play one fault of :data:`SUPPORTED_FAULTS` now (its time of day, if any, is the
        schedule's business); :class:`~adapters.sim.faults.UnsupportedFault` for another kind."""
        check_supported(fault, "paper", SUPPORTED_FAULTS)
        params = FAULT_KINDS[fault.kind].with_defaults(fault.params)
        log.warning("paper venue %s: injected %s", self.venue, fault_label(fault))
        if fault.kind == "drop":
            self._drop(params["duration_s"])
        elif fault.kind == "reject":
            self._rejects.extend([(params["code"], params["reason"])] * params["count"])
        elif fault.kind == "delay_acks":
            delay_ns = int(params["delay_ms"] * NS_PER_MS)
            self._extra_delays_ns.append(delay_ns)
            self._later(params["duration_s"], self._extra_delays_ns.remove, delay_ns)
        elif fault.kind == "halt":
            self._halt(params["symbol"], params["duration_s"])
        else:  # reject_cancels
            refusal = (params["code"], params["reason"])
            self._cancel_refusals.append(refusal)
            self._later(params["duration_s"], self._cancel_refusals.remove, refusal)

    def _drop(self, duration_s: Decimal) -> None:
        """Lose the connection: report it, then (with cancel-on-disconnect) cancel our resting
        orders without a word; the market goes on and its events are withheld until the reconnect."""
        ts = self.clock.now_ns()
        until = ts + int(duration_s * NS_PER_S)
        self._down_until_ns = max(self._down_until_ns, until)
        self._fault_timers.append(self.clock.call_at(until, self._reconnect))
        if not self._link_up:
            return  # already down: the later of the two ends wins
        self._out.on_venue_status(self.venue, "disconnected", f"injected drop for {seconds(duration_s)} s")
        self._link_up = False
        if self.cancel_on_disconnect:
            for state, order_id in list(self._live.values()):
                outcome = state.engine.cancel(order_id, ts, "cancelled on disconnect")
                self._emit(state, outcome.events, outcome.changes, ts)

    def _reconnect(self) -> None:
        """Back after a drop: report ``connected``, then a fresh snapshot of each subscribed book and
        each instrument's status, since the deltas and statuses of the drop were never sent."""
        if self._link_up or not self._connected or self.clock.now_ns() < self._down_until_ns:
            return
        self._link_up = True
        log.warning("paper venue %s: connection back after an injected drop", self.venue)
        self._out.on_venue_status(self.venue, "connected", "reconnected after an injected drop")
        ts = self.clock.now_ns()
        for state in self._symbols.values():
            engine = state.engine
            if state.subscribed:
                state.seq += 1
                self._out.on_book(BookUpdate(self.venue, state.symbol, ts, state.seq, engine.snapshot(), snapshot=True))
            self._instrument_status(
                InstrumentStatus(
                    self.venue, state.symbol, ts, halted=bool(self._halts.get(state.symbol)),
                    reference_price=engine.reference_price,
                    closing_price=engine.closing_price if self._close_fixed else None,
                )
            )

    def _halt(self, symbol: str, duration_s: Decimal) -> None:
        count = self._halts.get(symbol, 0)
        self._halts[symbol] = count + 1
        if not count:
            self._instrument_status(
                InstrumentStatus(self.venue, symbol, self.clock.now_ns(), halted=True, reason="injected halt")
            )
        self._later(duration_s, self._lift_halt, symbol)

    def _lift_halt(self, symbol: str) -> None:
        count = self._halts[symbol] - 1
        if count:
            self._halts[symbol] = count
            return
        del self._halts[symbol]
        log.warning("paper venue %s: injected halt of %s lifted", self.venue, symbol)
        self._instrument_status(
            InstrumentStatus(self.venue, symbol, self.clock.now_ns(), halted=False, reason="injected halt lifted")
        )

    # ---- synthetic market timers ---------------------------------------------------------
    def _schedule_market(self) -> None:
        """Run the generator's timers in the phases where it acts, and only then (a closed night
        costs no timers)."""
        phase = self._phase
        for state in self._symbols.values():
            market = state.market
            if market is None or not self._connected:
                continue
            if phase in _ACTIVE_STEP_PHASES:
                if state.step_timer is None:
                    state.step_timer = self.clock.call_later(market.next_step_delay_ns(), self._on_step, state)
            elif state.step_timer is not None:
                state.step_timer.cancel()
                state.step_timer = None
            if phase is Phase.OPEN:
                if state.flow_timer is None:
                    state.flow_timer = self.clock.call_later(market.next_flow_delay_ns(), self._on_flow, state)
            elif state.flow_timer is not None:
                state.flow_timer.cancel()
                state.flow_timer = None

    def _stop_timers(self, state: _Symbol) -> None:
        for timer in (state.step_timer, state.flow_timer):
            if timer is not None:
                timer.cancel()
        state.step_timer = None
        state.flow_timer = None

    def _on_step(self, state: _Symbol) -> None:
        market = state.market
        assert market is not None
        self._generate(state, market.step)
        state.step_timer = self.clock.call_later(market.next_step_delay_ns(), self._on_step, state)

    def _on_flow(self, state: _Symbol) -> None:
        market = state.market
        assert market is not None
        self._generate(state, market.aggress)
        state.flow_timer = self.clock.call_later(market.next_flow_delay_ns(), self._on_flow, state)

    def _generate(self, state: _Symbol, action: Callable[[Phase, int], list]) -> None:
        """Run one generator action as a batch, so it becomes one BookUpdate."""
        ts = self.clock.now_ns()
        engine = state.engine
        engine.begin_batch()
        events = action(self._phase, ts)
        self._emit(state, events, engine.end_batch(), ts)

    # ---- engine events -> venue events ---------------------------------------------------
    def _emit(
        self,
        state: _Symbol,
        events: list[EngineEvent],
        changes: Changes,
        ts: int,
        request: _Request | None = None,
    ) -> None:
        """Turn one operation's engine events into sink calls, in order, then its book delta.
        Our orders' states are tracked either way (by the order tracker, which sends each once);
        during a drop nothing reaches the sink. ``request`` is the new order being submitted, if any
        (a reject records it)."""
        if self._account is None:  # no orders of ours: only the tape and the book, if subscribed
            if state.subscribed and self._link_up:
                self._apply(state, events, changes, ts, request, self._out)
        else:
            ledger = self._ledger
            real_sink = self._out
            sink: Any = _Held() if ledger is not None else real_sink  # told only after the ledger has it
            # the order tracker speaks to this operation's sink (OrderTracker.delivering_to, inlined:
            # a generator context manager cost 1.2 us of every operation, the market's included)
            orders = self._orders
            saved, orders.sink = orders.sink, sink if self._link_up else MUTED
            try:
                self._apply(state, events, changes, ts, request, sink)
            finally:
                orders.sink = saved
            if ledger is not None:
                sink.deliver(real_sink)
        for hook in self._engine_event_hooks:  # servers' accounts: whatever the link of ours does
            hook(state.symbol, events, changes, ts)

    def _apply(
        self,
        state: _Symbol,
        events: list[EngineEvent],
        changes: Changes,
        ts: int,
        request: _Request | None,
        sink: Any,
    ) -> None:
        orders = self._orders
        touched: list[str] = []
        venue = self.venue
        account = self._account
        symbol = state.symbol
        subscribed = state.subscribed and self._link_up
        event: Any
        for event in events:
            kind = type(event)
            if kind is Execution:
                if event.maker_owner == account:
                    self._our_fill(state, event, event.maker_client_id, event.maker_id, event.maker_side,
                                   event.maker_leaves, _MAKER, ts)
                    touched.append(event.maker_client_id)
                if event.taker_owner == account:
                    self._our_fill(state, event, event.taker_client_id, event.taker_id, event.taker_side,
                                   event.taker_leaves, _TAKER, ts)
                    touched.append(event.taker_client_id)
                if subscribed:
                    aggressor = None if event.auction else event.taker_side
                    sink.on_trade(
                        Trade(venue, symbol, ts, event.price, event.qty, aggressor, f"T{next(self._trade_ids)}")
                    )
                continue
            if event.owner != account:
                continue
            client_id = event.client_id
            touched.append(client_id)
            if kind is Accepted:
                self._live[client_id] = (state, event.order_id)
                record = orders.add(_Tracked(
                    client_id, symbol, event.side, str(event.order_id), event.price, event.qty,
                    _PENDING_NEW, request.tif if request is not None else _DAY,
                    request.post_only if request is not None else False, self._today(),
                ))
                orders.ack(record, ts=ts)
            elif kind is Cancelled:
                self._finish(client_id, _CANCELLED, event.reason, ts)
            elif kind is Expired:
                self._finish(client_id, _EXPIRED, "day order expired at the close", ts)
            elif kind is Replaced:
                record = self._record(client_id)
                record.price = event.price
                record.qty = event.qty
                record.status = _live_status(event.filled)
                orders.answer(record, status=record.status, price=event.price, qty=event.qty, ts=ts)
            elif kind is Rejected:
                if request is not None:
                    orders.finish(orders.add(self._requested(request)), OrderStatus.REJECTED, event.code,
                                  event.reason, ts=ts)
                else:
                    orders.untracked_update(client_id, OrderStatus.REJECTED, event.code, event.reason, ts=ts)
            elif kind is ReplaceRejected or kind is CancelRejected:
                filled = event.filled if event.filled is not None else ZERO
                orders.answer(self._record(client_id), event.code, event.reason, status=_live_status(filled), ts=ts)
        if changes and subscribed:
            state.seq += 1
            sink.on_book(BookUpdate(venue, symbol, ts, state.seq, changes))
        if touched and self._ledger is not None:
            self._persist(touched)

    def _record(self, client_id: str) -> _Tracked:
        record = self._orders.get(client_id)
        if record is None:  # the matching engine only speaks of orders this venue accepted
            raise KeyError(f"paper venue {self.venue}: no record of our order {client_id!r}")
        return record

    def _our_fill(
        self,
        state: _Symbol,
        event: Execution,
        client_id: str,
        order_id: int,
        side: Side,
        leaves: Decimal,
        liquidity: Liquidity,
        ts: int,
    ) -> None:
        record = self._record(client_id)
        schedule = self._fee_schedules.get(state.symbol)
        fill = Fill(
            self.venue, state.symbol, client_id, str(order_id), f"E{next(self._exec_ids)}",
            side, event.price, event.qty, ts, liquidity,
            schedule.fee(side, event.qty * event.price) if schedule is not None else None,
        )
        self._fills.append(fill)
        self._orders.fill(record, fill, ack_first=False)  # books it (FILLED when no leaves); sent if the link is up
        if not leaves:
            self._live.pop(client_id, None)

    def _finish(self, client_id: str, status: OrderStatus, reason: str, ts: int) -> None:
        self._live.pop(client_id, None)
        self._orders.finish(self._record(client_id), status, None, reason, ts=ts)


class _Held:
    """Venue events of one operation, held until the venue's ledger has recorded it."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_book(self, update: BookUpdate) -> None:
        self.calls.append(("on_book", update))

    def on_trade(self, trade: Trade) -> None:
        self.calls.append(("on_trade", trade))

    def on_fill(self, fill: Fill) -> None:
        self.calls.append(("on_fill", fill))

    def on_order_update(self, update: OrderUpdate) -> None:
        self.calls.append(("on_order_update", update))

    def deliver(self, sink: Any) -> None:
        for name, event in self.calls:
            getattr(sink, name)(event)


def _live_status(filled: Decimal) -> OrderStatus:
    return _PARTIALLY_FILLED if filled else _NEW


def _fill_ts(fill: Fill) -> int:
    return fill.ts


def _ns_of(moment: datetime) -> int:
    """An aware datetime as ns since the epoch, exactly (no float)."""
    return (moment - _EPOCH) // _MICROSECOND * 1000


class _Listeners:
    """Several listeners as one: each event goes to every listener that takes it, in the order
    they were added (a feed server takes the book and the tape, a broker our orders and fills)."""

    def __init__(self, listeners: Iterable[Any]) -> None:
        listeners = list(listeners)
        for name in _EVENTS:
            targets = [getattr(listener, name) for listener in listeners if hasattr(listener, name)]
            setattr(self, name, _fan_out(targets))


def _fan_out(targets: list[Callable[..., None]]) -> Callable[..., None]:
    def call(*args: Any) -> None:
        for target in targets:
            target(*args)
    return call
