"""The replay venue: a recording (:mod:`engine.recording.format`) fed through the same runtime, gate,
journal and strategies on the simulated clock, our orders matched by the simulated venue
(:class:`~adapters.sim.venue.SimVenue`, synthetic market off) against the recorded book through the
queue-position model of :mod:`adapters.replay.queue`.

What the strategies see is the recording, event for event, at its receive times: the books as the
recorded adapter delivered them, trades and instrument statuses. The venue's own book changes,
prints and statuses (which include our orders) are not shown: the recording is the market, and a
strategy sees its own orders through their acknowledgements and fills, as on any venue.

Latency applies both ways: an order, cancel or amend reaches the venue ``latency_ms`` after the
strategy sent it; acknowledgements and fills come back ``latency_ms`` after the venue produced them.

Decisions where the issue is silent:

- The engine's days come from the recording (:meth:`recorded_days`, read before the engine picks
  its days and clock; :mod:`engine.recording.replaydays`): the recorded dates of this selection, unless
  ``run.start`` and ``run.days`` are both set (then the calendar's, and the recorded days left out
  are named in the log). A ``from``/``to`` that selects nothing is refused at the options.
- Sessions (``sessions`` option): ``recorded`` follows the session changes the recording holds
  for the replayed days, at their recorded times, phase, trading day and flags as the live run saw
  them (:meth:`session_changes`; the engine swaps its schedule's driver for them); ``config``
  follows the config's profile, as a paper run does. Unset: ``recorded`` when the recording holds
  session changes for the replayed days (the same selection of venue, dates and the clock's day
  as the events), else ``config``. Either way settlement and the journal roll with the sessions
  the engine follows. The run's window follows them too: with recorded sessions it spans the
  first day's first recorded change or event to the last day's last, so nothing recorded is out
  of reach; with the profile it is the profile's, and the events recorded outside it are counted
  and named in the log, once per day.
- The venue takes quantities at any precision (the gate checks the lot), so a recorded level is
  never refused for a size the config's lot does not divide; it has no circuit band of its own
  (the gate's is the one), and a recorded closing price becomes the venue's for post-close.
- Events for instruments the config does not list are skipped and counted (``skipped`` in
  ``describe``). Events of days before the clock's day at connect are history (a run continuing
  its journal's account starts on the next day): skipped and counted (``before_start``); the
  day's events before the clock (snapshots taken before the first phase) are delivered at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import sys
import time
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator

from adapters.replay.queue import ReplayBook
from adapters.sim.market import MarketOptions
from adapters.sim.venue import SimVenue
from engine.model import (
    BookUpdate,
    Fill,
    Instrument,
    InstrumentStatus,
    Order,
    OrderType,
    OrderUpdate,
    SessionState,
    Side,
    TimeInForce,
    Trade,
    VenueOrder,
)
from engine.venue import Adapter, AdapterOptions, Capabilities, RateLimit, VenueEvents
from engine.venue.clock import NS_PER_S, Clock
from engine.venue.fees import FeeSchedule
from engine.venue.progress import Progress
from engine.venue.recording import DayTimes, RecordedEvent, day_times, read_events, recorded_dates, require_pyarrow

log = logging.getLogger(__name__)

NS_PER_MS = 1_000_000
#: events this close (simulated time) to the one before are delivered from the same timer
INLINE_NS = NS_PER_MS
#: when the next timer is due while the clock has none: later than any recorded time
NOTHING_DUE = sys.maxsize


class ReplayOptions(AdapterOptions):
    """``venues.<name>.options`` of ``adapter: replay``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    path: Path = Field(description="The recording's root folder (engine record --out, run.record); relative to the "
                                   "working directory, like every adapter's file option.")
    venue: str | None = Field(None, description="The recorded venue to replay (default: this venue's name).")
    symbols: list[str] | None = Field(None, description="Only these instruments (default: every configured one).")
    from_: dt.date | None = Field(None, alias="from", description="First recorded date (UTC), inclusive.")
    to: dt.date | None = Field(None, description="Last recorded date (UTC), inclusive.")
    latency_ms: Decimal = Field(Decimal(0), ge=0, le=60_000,
                                description="One-way latency: orders to the venue and answers back.")
    fill_model: Literal["queue", "none"] = Field(
        "queue", description="queue: the queue-position model (README); none: orders rest and never fill.")
    sessions: Literal["recorded", "config"] | None = Field(
        None, description="recorded: the recording's session changes drive the sessions; config: the config's "
                          "profile. Default: recorded when the recording holds session changes for the replayed "
                          "days, else config.")
    progress: bool = Field(True, description="Progress through the recording: a bar on stderr when it is a "
                                             "terminal, else a log line at each tenth (engine/progress.py).")

    @field_validator("path")
    @classmethod
    def _recording(cls, path: Path) -> Path:
        try:
            require_pyarrow()
        except ImportError as exc:
            raise ValueError(str(exc)) from None
        if not path.is_dir():
            raise ValueError(f"path {path}: no recording there (not a folder; engine record --out DIR makes one)")
        return path


class ReplayAdapter(Adapter):
    """Recorded market data in, orders matched against it (see the module docstring)."""

    name: ClassVar[str] = "replay"
    capabilities: ClassVar[Capabilities] = Capabilities(
        amend=True, post_only="reject", ioc=True, fok=True, gtc=True, market_orders=True,
        self_trade_prevention=True,
    )
    rate_limits: ClassVar[tuple[RateLimit, ...]] = ()
    options_model: ClassVar[type[AdapterOptions]] = ReplayOptions

    def __init__(self, venue: str, options: AdapterOptions, instruments: Iterable[Instrument], clock: Clock,
                 sink: VenueEvents, seed: int = 0) -> None:
        super().__init__(venue, options, instruments, clock, sink, seed)
        opts = self.options
        assert isinstance(opts, ReplayOptions)
        self.replay_options = opts
        if opts.from_ is not None and opts.to is not None and opts.to < opts.from_:
            raise ValueError(f"to ({opts.to}) is before from ({opts.from_})")
        unknown = sorted(set(opts.symbols or ()) - set(self.instruments))
        if unknown:
            raise ValueError(f"symbols {', '.join(unknown)}: not instruments of venue {venue!r} in the config")
        self.latency_ns = int(opts.latency_ms * NS_PER_MS)
        # quantities at any precision: the recorded size is the market's, the gate checks our lot
        venue_instruments = [dataclasses.replace(i, lot_size=Decimal("1E-18")) for i in self.instruments.values()]
        self._answers = _Answers(self)
        self.sim = SimVenue(venue, venue_instruments, clock, account="replay", market=MarketOptions(enabled=False),
                            cancel_on_disconnect=False, seed=seed, listeners=(self._answers,), circuit_bands=False)
        self.books = {symbol: ReplayBook(self.sim.matching_engine(symbol), self._crowd_trader(symbol), clock.now_ns)
                      for symbol in self.instruments}
        self.subscribed: set[str] = set()
        self.events: list[RecordedEvent] = []
        #: the recorded session changes of the replayed days, ``(recv_ns, state)``
        self.recorded_sessions: list[tuple[int, SessionState]] = []
        self.position = 0
        self.delivered = 0
        self.skipped = 0
        #: real time (perf_counter) when the first delivery began and the last ended: the replay's
        #: own speed, without the recording's read (benchmarks/bench_replay.py)
        self.delivery_span = (0.0, 0.0)
        self.before_start = 0  # events of days before the run's first: history to a continued account
        self._timer: Any = None
        self.progress: Progress | None = None

    @classmethod
    def recorded_days(cls, venue: str, options: AdapterOptions, symbols: list[str],
                      tz: dt.tzinfo) -> dict[dt.date, DayTimes] | None:
        """The local days this replay's selection holds (the same venue, symbols, ``from``/``to``
        and session choice :meth:`connect` reads), each with its receive times. A selection that
        holds nothing is refused here, naming what selected it: a replay of nothing is a mistake."""
        opts = options
        assert isinstance(opts, ReplayOptions)
        if opts.from_ is not None and opts.to is not None and opts.to < opts.from_:
            raise ValueError(f"to ({opts.to}) is before from ({opts.from_})")
        source = opts.venue or venue
        chosen = opts.symbols if opts.symbols is not None else symbols
        days = day_times(opts.path, tz, venues=[source], symbols=chosen, start=opts.from_, end=opts.to,
                         sessions=opts.sessions != "config")
        if any(times.events for times in days.values()):
            return days
        what = f"venue {source} ({', '.join(chosen)})"
        if opts.from_ is None and opts.to is None:
            raise ValueError(f"path {opts.path}: no recorded events of {what}")
        held = recorded_dates(opts.path, venues=[source], symbols=chosen)
        there = f"its dates there are {held[0]} to {held[-1]} ({len(held)} days)" if held else "it holds none"
        picked = " ".join(f"{name} {value}" for name, value in (("from", opts.from_), ("to", opts.to)) if value)
        raise ValueError(f"{picked} selects no recorded data of {what} in {opts.path}: {there} (UTC dates)")

    def _crowd_trader(self, symbol: str) -> Any:
        submit_for = self.sim.submit_for

        def trade(owner: str, side: Side, qty: Decimal, price: Decimal, tif: TimeInForce) -> None:
            submit_for(owner, "", symbol, side, qty, price, OrderType.LIMIT, tif)
        return trade

    def set_state_path(self, path: Path) -> None:
        """The venue's side of the account on disk, as the paper venue keeps it: a replay continued
        the next day (the journal's account) meets the venue it left, exec and order ids unique."""
        self.sim.set_state_path(path)

    # ---- lifecycle -------------------------------------------------------------------------
    async def connect(self) -> None:
        """Read the recording (the whole selection, sorted: the replay's start-up cost), start
        the venue and put the first event on the clock."""
        opts = self.replay_options
        symbols = opts.symbols if opts.symbols is not None else list(self.instruments)
        source = opts.venue or self.venue
        # a run continuing its journal's account starts on a later day: earlier days are history.
        # Today's events before the clock (snapshots taken before the run's first phase) come at once
        now = self.clock.now()
        today_ns = int(dt.datetime.combine(now.date(), dt.time(), tzinfo=now.tzinfo).timestamp()) * NS_PER_S
        events = []
        sessions: list[tuple[int, SessionState]] = []
        instruments = self.instruments
        rename = source != self.venue
        for recorded in read_events(opts.path, venues=[source], symbols=symbols, start=opts.from_, end=opts.to,
                                    sessions=opts.sessions != "config"):
            if isinstance(recorded.event, SessionState):
                if recorded.recv_ns >= today_ns:
                    sessions.append((recorded.recv_ns, recorded.event))
                continue
            if recorded.symbol not in instruments:
                self.skipped += 1
                continue
            if recorded.recv_ns < today_ns:
                self.before_start += 1
                continue
            events.append(_renamed(recorded, self.venue) if rename else recorded)
        self.events = events
        self.recorded_sessions = sessions
        if opts.sessions == "recorded" and not sessions:
            log.warning("replay %s: sessions: recorded, but %s holds no session changes of venue %s for the replayed "
                        "days; the config's profile drives the sessions", self.venue, opts.path, source)
        if opts.progress and events:
            self.progress = Progress(f"replay {self.venue}", len(events), log=log)
        self.sim.start()
        self._schedule()

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.progress is not None:
            self.progress.close()
        self.sim.stop()

    def subscribe(self, symbols: Iterable[str]) -> None:
        """The recording brings its own snapshots; nothing is invented here."""
        self.subscribed.update(symbols)

    def session_changes(self) -> list[tuple[int, SessionState]] | None:
        """The recorded session changes to follow (``sessions`` recorded, or unset and the recording
        holds some), else None: the config's profile."""
        return self.recorded_sessions or None

    def describe(self) -> dict[str, Any]:
        opts = self.replay_options
        return {"name": self.name, "venue": self.venue, "path": str(opts.path), "source": opts.venue or self.venue,
                "from": str(opts.from_ or ""), "to": str(opts.to or ""), "latency_ms": str(opts.latency_ms),
                "fill_model": opts.fill_model, "sessions": "recorded" if self.recorded_sessions else "config",
                "events": len(self.events), "delivered": self.delivered,
                "skipped": self.skipped, "before_start": self.before_start,
                "crowd_refused": sum(b.refused for b in self.books.values())}

    # ---- the recording on the clock ------------------------------------------------------------
    def _schedule(self) -> None:
        if self.position < len(self.events):
            self._timer = self.clock.call_at(self.events[self.position].recv_ns, self._deliver)

    def _deliver(self) -> None:
        """Deliver the due event, then the following ones that are due before anything else on the
        clock and within :data:`INLINE_NS` (no pacing visible), then schedule the next. The
        replay's per-event path: locals only, one timer per batch."""
        events = self.events
        n = len(events)
        i = self.position
        clock = self.clock
        next_due = getattr(clock, "next_due", None)
        set_time = getattr(clock, "set_time", None)
        steps = next_due is not None and set_time is not None  # a clock this can step (SimClock): batches
        sink = self.sink
        on_book = sink.on_book
        on_trade = sink.on_trade
        books = self.books
        subscribed = self.subscribed
        fills = self.replay_options.fill_model == "queue"
        began = time.perf_counter()
        now = clock.now_ns()
        start = i
        scheduled = -1  # SimClock.scheduled when ``due`` was read: re-read only once it moves
        due = 0
        while True:
            recorded = events[i]
            event = recorded.event
            symbol = recorded.symbol
            if type(event) is BookUpdate:
                if fills:
                    books[symbol].apply_book(event)
                if symbol in subscribed:
                    on_book(event)
            elif type(event) is Trade:
                if fills:
                    book = books[symbol]
                    if book.our_bid is not None or book.our_ask is not None:
                        book.apply_trade(event)
                if symbol in subscribed:
                    on_trade(event)
            elif type(event) is InstrumentStatus:
                if event.closing_price is not None:
                    books[symbol].engine.restore_close(event.closing_price)
                sink.on_instrument_status(event)
            i += 1
            if i >= n:
                break
            when = events[i].recv_ns
            if when != now:
                if not steps or when - now > INLINE_NS:
                    break
                if clock.scheduled != scheduled:  # type: ignore[attr-defined]
                    scheduled = clock.scheduled  # type: ignore[attr-defined]
                    due = next_due()  # type: ignore[misc]
                    if due is None:  # nothing else on the clock: only the gap ends the batch
                        due = NOTHING_DUE
                if when >= due:
                    break
                set_time(when)  # type: ignore[misc]
                now = when
        self.delivered += i - start
        if self.progress is not None:
            self.progress.advance(i - start)
            if i >= n:
                self.progress.close()
        self.position = i
        ended = time.perf_counter()
        self.delivery_span = (self.delivery_span[0] or began, ended)
        self._schedule()

    # ---- orders: latency out, the book set to the recording, then the venue ------------------------
    def submit(self, order: Order) -> None:
        """At ``latency_ms`` 0 the order reaches the venue at this instant: the book is set now and
        the venue processes it from its own timer, as ever after the strategy's hook returns."""
        if self.latency_ns:
            self.clock.call_at(self.clock.now_ns() + self.latency_ns, self._arrive_submit, order.client_id,
                               order.symbol, order.side, order.qty, order.price, order.type, order.tif,
                               order.post_only)
        else:
            self._arrive_submit(order.client_id, order.symbol, order.side, order.qty, order.price, order.type,
                                order.tif, order.post_only)

    def cancel(self, order: Order) -> None:
        if self.latency_ns:
            self.clock.call_at(self.clock.now_ns() + self.latency_ns, self.sim.cancel, order.client_id)
        else:
            self.sim.cancel(order.client_id)  # processed from the venue's timer, never inside this call

    def amend(self, order: Order, price: Decimal | None, qty: Decimal | None) -> None:
        if self.latency_ns:
            self.clock.call_at(self.clock.now_ns() + self.latency_ns, self._arrive_amend, order.symbol,
                               order.client_id, price, qty)
        else:
            self._arrive_amend(order.symbol, order.client_id, price, qty)

    def _arrive_submit(self, client_id: str, symbol: str, side: Side, qty: Decimal, price: Decimal | None,
                       order_type: OrderType, tif: TimeInForce, post_only: bool) -> None:
        book = self.books.get(symbol)
        if book is not None and self.replay_options.fill_model == "queue":
            # fill_model none: the engine holds our orders only, they never meet a price
            book.sync(side, None if order_type is OrderType.MARKET else price)
        self.sim.place(client_id, symbol, side, qty, price, order_type, tif, post_only)

    def _arrive_amend(self, symbol: str, client_id: str, price: Decimal | None, qty: Decimal | None) -> None:
        book = self.books.get(symbol)
        current = self.sim.order(client_id)
        if book is not None and current is not None and self.replay_options.fill_model == "queue":
            book.sync(current.side, price if price is not None else current.price)
        self.sim.amend(client_id, price, qty)

    def _ours_changed(self, symbol: str) -> None:
        """Tell the symbol's book where our orders rest now (after each of the venue's answers)."""
        book = self.books.get(symbol)
        if book is not None:
            book.set_ours(self.sim.resting_levels(symbol))

    # ---- queries, sessions, rules -------------------------------------------------------------
    async def query_open_orders(self) -> list[VenueOrder]:
        return self.sim.open_orders()

    async def query_order(self, client_id: str) -> VenueOrder | None:
        return self.sim.order(client_id)

    async def query_fills(self, since_ns: int) -> list[Fill]:
        return self.sim.fills(since_ns)

    def on_session(self, state: SessionState) -> None:
        self.sim.on_session(state)  # the close expires DAY crowd orders: the next sync puts them back

    def set_fee_schedules(self, schedules: dict[str, FeeSchedule]) -> None:
        self.sim.set_fee_schedules(schedules)


class _Answers:
    """The simulated venue's one listener: our acknowledgements and fills go to the engine
    ``latency_ms`` later; its book changes, prints and statuses are dropped (the recording's are
    delivered instead)."""

    def __init__(self, adapter: ReplayAdapter) -> None:
        self.adapter = adapter

    def _later(self, fn: Any, arg: Any) -> None:
        """``fn(arg)`` ``latency_ms`` from now. Only with a latency: at 0 the callers call ``fn``
        themselves (every answer passes there, and a direct call builds no argument tuple)."""
        adapter = self.adapter
        adapter.clock.call_at(adapter.clock.now_ns() + adapter.latency_ns, fn, arg)

    def on_order_update(self, update: OrderUpdate) -> None:
        adapter = self.adapter
        symbol = adapter.sim.symbol_of(update.client_id)
        if symbol is not None:
            adapter._ours_changed(symbol)
        if adapter.latency_ns:
            self._later(adapter.sink.on_order_update, update)
        else:
            adapter.sink.on_order_update(update)

    def on_fill(self, fill: Fill) -> None:
        adapter = self.adapter
        adapter._ours_changed(fill.symbol)  # what our order took is given back at the next sync
        if adapter.latency_ns:
            self._later(adapter.sink.on_fill, fill)
        else:
            adapter.sink.on_fill(fill)

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None:
        self.adapter.sink.on_venue_status(venue, status, detail)

    def on_book(self, update: BookUpdate) -> None:
        return None

    def on_trade(self, trade: Trade) -> None:
        return None

    def on_instrument_status(self, status: InstrumentStatus) -> None:
        return None


def _renamed(recorded: RecordedEvent, venue: str) -> RecordedEvent:
    """A recorded event told as this venue's (``options.venue`` names another)."""
    event = recorded.event
    if isinstance(event, BookUpdate):
        event = BookUpdate(venue, event.symbol, event.ts, event.seq, event.changes, event.snapshot)
    elif isinstance(event, Trade):
        event = Trade(venue, event.symbol, event.ts, event.price, event.qty, event.aggressor, event.trade_id)
    elif isinstance(event, InstrumentStatus):
        event = dataclasses.replace(event, venue=venue)
    return RecordedEvent(recorded.recv_ns, recorded.seq, venue, recorded.symbol, event)


__all__ = ["NS_PER_S", "ReplayAdapter", "ReplayOptions"]
