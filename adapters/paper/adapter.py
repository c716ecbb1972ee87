"""The paper venue: an embedded matching engine per symbol plus a synthetic market, behind the
same :class:`~adapters.base.Adapter` interface as a network venue.

Requests return at once and are processed ``latency_ms`` later on the clock, as a round trip to a
real venue would be; answers come back through the sink in the order the venue produced them:
acknowledgement (``OrderUpdate`` NEW) before any fill of that order, then fills (``Fill``), public
prints (``Trade``), cancels/expiries, and finally the L2 delta (``BookUpdate``) of the operation.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import Field, field_validator

from adapters.base import Adapter, AdapterOptions, Capabilities, VenueEvents
from adapters.paper.market import MarketOptions, SymbolMarket
from adapters.paper.matching import (
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
from engine.clock import Clock, Timer
from engine.model import (
    BookUpdate,
    Fill,
    Instrument,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Phase,
    SessionState,
    Side,
    TimeInForce,
    Trade,
)
from engine.rejects import Reject

__all__ = ["CODE_INVALID_SYMBOL", "PaperAdapter", "PaperOptions"]

CODE_INVALID_SYMBOL = int(Reject.INVALID_SYMBOL)  # 2001
NS_PER_MS = 1_000_000
_ACTIVE_STEP_PHASES = frozenset({Phase.PRE_OPEN, Phase.OPEN, Phase.POST_CLOSE})
ZERO = Decimal(0)


class PaperOptions(AdapterOptions):
    """Options of the paper venue (``venues.<name>.options`` in config)."""

    account: str = Field(
        "paper",
        min_length=1,
        description="Account (owner) of our orders in the matching engine; self-trade prevention works per account.",
    )
    latency_ms: Decimal = Field(
        Decimal("0.5"),
        ge=0,
        description="Simulated order round trip: a request is processed this long after it is sent.",
    )
    stp: StpPolicy = Field(
        "cancel_newest",
        description="Self-trade prevention: cancel_newest (the incoming remainder), cancel_oldest (the resting "
        "order), or cancel_both.",
    )
    market: MarketOptions = Field(default_factory=MarketOptions, description="The synthetic market.")

    @field_validator("account")
    @classmethod
    def _not_background(cls, value: str) -> str:
        if value.startswith("~"):  # BACKGROUND_OWNERS all start with "~"
            raise ValueError("account names starting with '~' are reserved for the synthetic market")
        return value


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


class PaperAdapter(Adapter):
    """Embedded venue: price-time matching, PSX session phases, and a deterministic synthetic
    market. The default venue of paper mode."""

    name: ClassVar[str] = "paper"
    capabilities: ClassVar[Capabilities] = Capabilities(
        amend=True,
        mass_cancel=False,
        post_only="reject",
        ioc=True,
        fok=True,
        gtc=True,
        market_orders=True,
        self_trade_prevention=True,
    )
    options_model: ClassVar[type[AdapterOptions]] = PaperOptions

    def __init__(
        self,
        venue: str,
        options: AdapterOptions,
        instruments: Iterable[Instrument],
        clock: Clock,
        sink: VenueEvents,
        seed: int = 0,
    ) -> None:
        if not isinstance(options, PaperOptions):
            options = PaperOptions.model_validate(options.model_dump())
        super().__init__(venue, options, instruments, clock, sink, seed)
        self.paper_options = options
        self._account = options.account
        self._latency_ns = int(options.latency_ms * NS_PER_MS)
        next_id = itertools.count(1).__next__  # venue order ids unique across symbols
        self._symbols: dict[str, _Symbol] = {}
        for symbol, instrument in self.instruments.items():
            reference = instrument.previous_close if instrument.previous_close > 0 else None
            band = (
                band_around(reference, instrument.tick_size, options.market.circuit_band_pct)
                if reference is not None
                else None
            )
            engine = MatchingEngine(
                symbol,
                tick_size=instrument.tick_size,
                lot_size=instrument.lot_size,
                reference_price=reference,
                price_band=band,
                stp=options.stp,
                next_id=next_id,
            )
            market = (
                SymbolMarket(instrument, engine, options.market, seed)
                if options.market.enabled and reference is not None
                else None
            )
            self._symbols[symbol] = _Symbol(symbol, engine, market)
        self._phase = Phase.CLOSED
        self._connected = False
        self._exec_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        # our resting orders: client_id -> (symbol state, engine order id)
        self._live: dict[str, tuple[_Symbol, int]] = {}
        # our orders the venue has finished with: client_id -> final status (answers late cancels)
        self._done: dict[str, OrderStatus] = {}

    # ---- lifecycle -----------------------------------------------------------------------
    async def connect(self) -> None:
        """Start the synthetic market on the clock and report ``connected``."""
        self._connected = True
        self._schedule_market()
        self.sink.on_venue_status(self.venue, "connected")

    async def close(self) -> None:
        """Stop every timer; requests still in flight are dropped. Never raises."""
        self._connected = False
        for state in self._symbols.values():
            self._stop_timers(state)

    def subscribe(self, symbols: Iterable[str]) -> None:
        """Send a snapshot per symbol now; deltas follow as the book changes."""
        for symbol in symbols:
            state = self._symbols.get(symbol)
            if state is None:
                known = ", ".join(sorted(self._symbols)) or "none"
                raise ValueError(f"paper venue {self.venue!r} has no instrument {symbol!r}; known: {known}")
            state.subscribed = True
            state.seq += 1
            self.sink.on_book(
                BookUpdate(self.venue, symbol, self.clock.now_ns(), state.seq, state.engine.snapshot(), snapshot=True)
            )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "venue": self.venue,
            "account": self._account,
            "latency_ms": str(self.paper_options.latency_ms),
            "stp": self.paper_options.stp,
            "market": self.paper_options.market.enabled,
            "seed": self.seed,
        }

    def matching_engine(self, symbol: str) -> MatchingEngine:
        """The engine behind one symbol: for tests, replay tooling and debugging (read it, do not
        trade through it: its events would not reach the sink)."""
        return self._symbols[symbol].engine

    # ---- requests ------------------------------------------------------------------------
    def submit(self, order: Order) -> None:
        request = _Request(
            order.client_id, order.symbol, order.side, order.qty, order.price, order.type, order.tif, order.post_only
        )
        self.clock.call_later(self._latency_ns, self._process_submit, request)

    def cancel(self, order: Order) -> None:
        self.clock.call_later(self._latency_ns, self._process_cancel, order.client_id)

    def amend(self, order: Order, price: Decimal | None, qty: Decimal | None) -> None:
        self.clock.call_later(self._latency_ns, self._process_amend, order.client_id, price, qty)

    def _process_submit(self, request: _Request) -> None:
        if not self._connected:
            return
        ts = self.clock.now_ns()
        state = self._symbols.get(request.symbol)
        if state is None:
            self.sink.on_order_update(
                OrderUpdate(
                    self.venue, request.client_id, OrderStatus.REJECTED, ts,
                    reject_code=CODE_INVALID_SYMBOL, reason=f"unknown symbol {request.symbol!r}",
                )
            )
            return
        outcome = state.engine.submit(
            self._account, request.client_id, request.side, request.qty, request.price,
            request.order_type, request.tif, request.post_only, ts,
        )
        self._emit(state, outcome.events, outcome.changes, ts)

    def _process_cancel(self, client_id: str) -> None:
        if not self._connected:
            return
        ts = self.clock.now_ns()
        live = self._live.get(client_id)
        if live is None or live[1] not in live[0].engine.resting:
            self._refuse(client_id, ts, "cancel refused: the order is no longer working")
            return
        state, order_id = live
        outcome = state.engine.cancel(order_id, ts)
        self._emit(state, outcome.events, outcome.changes, ts)

    def _process_amend(self, client_id: str, price: Decimal | None, qty: Decimal | None) -> None:
        if not self._connected:
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
        status = self._done.get(client_id)
        if status is None:
            reason = "unknown order: " + reason
            status = OrderStatus.REJECTED
        self.sink.on_order_update(
            OrderUpdate(self.venue, client_id, status, ts, reject_code=CODE_UNKNOWN_ORDER, reason=reason)
        )

    # ---- session -------------------------------------------------------------------------
    def on_session(self, state: SessionState) -> None:
        """Follow the PSX session: every engine changes phase (leaving pre-open runs the opening
        auction), DAY orders expire at CLOSED, and the synthetic market follows the phase."""
        old = self._phase
        new = state.phase
        if new is old:
            return
        self._phase = new
        ts = self.clock.now_ns()
        if old is Phase.CLOSED:
            self._done.clear()  # a new trading day: late answers about yesterday's orders are moot
        for symbol_state in self._symbols.values():
            engine = symbol_state.engine
            outcome = engine.set_phase(new, ts)
            self._emit(symbol_state, outcome.events, outcome.changes, ts)
            if new is Phase.CLOSED:
                outcome = engine.expire_day_orders(ts)
                self._emit(symbol_state, outcome.events, outcome.changes, ts)
            if symbol_state.market is not None:
                engine.begin_batch()
                events = symbol_state.market.on_phase(old, new, ts)
                self._emit(symbol_state, events, engine.end_batch(), ts)
        self._schedule_market()

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
        changes: tuple[tuple[Side, Decimal, Decimal], ...],
        ts: int,
    ) -> None:
        """Turn one operation's engine events into sink calls, in order, then its book delta."""
        sink = self.sink
        venue = self.venue
        account = self._account
        symbol = state.symbol
        subscribed = state.subscribed
        event: Any
        for event in events:
            kind = type(event)
            if kind is Execution:
                if event.maker_owner == account:
                    self._our_fill(state, event, event.maker_client_id, event.maker_id, event.maker_side,
                                   event.maker_leaves, Liquidity.MAKER, ts)
                if event.taker_owner == account:
                    self._our_fill(state, event, event.taker_client_id, event.taker_id, event.taker_side,
                                   event.taker_leaves, Liquidity.TAKER, ts)
                if subscribed:
                    aggressor = None if event.auction else event.taker_side
                    sink.on_trade(
                        Trade(venue, symbol, ts, event.price, event.qty, aggressor, f"T{next(self._trade_ids)}")
                    )
            elif event.owner != account:
                continue
            elif kind is Accepted:
                self._live[event.client_id] = (state, event.order_id)
                sink.on_order_update(
                    OrderUpdate(venue, event.client_id, OrderStatus.NEW, ts, venue_order_id=str(event.order_id))
                )
            elif kind is Cancelled:
                self._finish(event.client_id, OrderStatus.CANCELLED)
                sink.on_order_update(
                    OrderUpdate(
                        venue, event.client_id, OrderStatus.CANCELLED, ts,
                        venue_order_id=str(event.order_id), reason=event.reason,
                    )
                )
            elif kind is Expired:
                self._finish(event.client_id, OrderStatus.EXPIRED)
                sink.on_order_update(
                    OrderUpdate(
                        venue, event.client_id, OrderStatus.EXPIRED, ts,
                        venue_order_id=str(event.order_id), reason="day order expired at the close",
                    )
                )
            elif kind is Replaced:
                sink.on_order_update(
                    OrderUpdate(
                        venue, event.client_id, _live_status(event.filled), ts,
                        venue_order_id=str(event.order_id), price=event.price, qty=event.qty,
                    )
                )
            elif kind is Rejected:
                self._done[event.client_id] = OrderStatus.REJECTED
                sink.on_order_update(
                    OrderUpdate(
                        venue, event.client_id, OrderStatus.REJECTED, ts,
                        reject_code=event.code, reason=event.reason,
                    )
                )
            elif kind is ReplaceRejected or kind is CancelRejected:
                filled = event.filled if event.filled is not None else ZERO
                sink.on_order_update(
                    OrderUpdate(
                        venue, event.client_id, _live_status(filled), ts,
                        venue_order_id=str(event.order_id), reject_code=event.code, reason=event.reason,
                    )
                )
        if changes and subscribed:
            state.seq += 1
            sink.on_book(BookUpdate(venue, symbol, ts, state.seq, changes))

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
        if not leaves:
            self._finish(client_id, OrderStatus.FILLED)
        self.sink.on_fill(
            Fill(
                self.venue, state.symbol, client_id, str(order_id), f"E{next(self._exec_ids)}",
                side, event.price, event.qty, ts, liquidity, ZERO,
            )
        )

    def _finish(self, client_id: str, status: OrderStatus) -> None:
        self._live.pop(client_id, None)
        self._done[client_id] = status


def _live_status(filled: Decimal) -> OrderStatus:
    return OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.NEW
