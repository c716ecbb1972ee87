"""A deterministic synthetic market: background liquidity and order flow for the paper venue.

Each symbol gets a random-walk mid price (inside the ±10% circuit band around its previous close)
and a background market maker quoting a few levels each side of it, plus background buyers and
sellers who hit the book at Poisson times. Every background order goes through the symbol's
:class:`~adapters.sim.matching.MatchingEngine`, so the book a strategy sees is the engine's real
book, and a strategy's passive quote at the touch really is traded against.

No clock and no I/O here: the adapter calls :meth:`SymbolMarket.step` and
:meth:`SymbolMarket.aggress` from its timers and asks for the delays between them. Determinism:
each symbol draws from its own ``random.Random`` seeded from the run's seed and
``zlib.crc32(symbol)`` (never the salted built-in ``hash``), so the same seed gives the same event
sequence. Floats appear only as random draws; prices and sizes are built from whole numbers of
ticks and size units and are ``Decimal``.
"""

from __future__ import annotations

import random
import zlib
from decimal import ROUND_HALF_EVEN, Decimal

from pydantic import Field

from adapters.sim.matching import Accepted, EngineEvent, MatchingEngine, band_around
from engine.model import Instrument, OrderType, Phase, Side, TimeInForce
from engine.venue import AdapterOptions

__all__ = [
    "BACKGROUND_OWNERS",
    "BG_BUYER",
    "BG_MAKER",
    "BG_SELLER",
    "MarketOptions",
    "SymbolMarket",
    "stream_seed",
]

NS_PER_S = 1_000_000_000

# Background owners. Quotes, buying flow and selling flow use distinct owners so background
# orders never meet self-trade prevention among themselves (and the opening auction can trade).
BG_MAKER = "~bg-maker"
BG_BUYER = "~bg-buyer"
BG_SELLER = "~bg-seller"
BACKGROUND_OWNERS = frozenset({BG_MAKER, BG_BUYER, BG_SELLER})

_LIMIT = OrderType.LIMIT
_MARKET = OrderType.MARKET
_DAY = TimeInForce.DAY
_IOC = TimeInForce.IOC


class MarketOptions(AdapterOptions):
    """The synthetic market of the paper venue (``venues.<name>.options.market``)."""

    enabled: bool = Field(True, description="Run the synthetic market. Off: the book holds only your own orders.")
    step_interval_s: Decimal = Field(
        Decimal(1), gt=0, description="Mean simulated seconds between two market steps of one symbol (Poisson)."
    )
    levels: int = Field(5, ge=1, le=50, description="Background price levels quoted on each side of the mid.")
    volatility_ticks: Decimal = Field(
        Decimal("0.5"), ge=0, description="Standard deviation of the mid's move per step, in ticks."
    )
    half_spread_ticks: int = Field(1, ge=1, description="Distance from the mid to the best background quote, in ticks.")
    aggressive_interval_s: Decimal = Field(
        Decimal(20),
        gt=0,
        description="Mean simulated seconds between two aggressive background orders (market or marketable IOC) "
        "per symbol, during continuous trading.",
    )
    size_unit_shares: int = Field(
        100, ge=1, description="Background order sizes are whole multiples of this, rounded up to the lot size."
    )
    max_size_units: int = Field(10, ge=1, description="Largest background quote, in size units.")
    circuit_band_pct: Decimal = Field(
        Decimal("0.10"), gt=0, lt=1, description="Circuit band around the previous close (0.10 = ±10%)."
    )


def stream_seed(seed: int, symbol: str) -> int:
    """The seed of one symbol's random stream: stable across runs and Python processes."""
    return (seed << 32) ^ zlib.crc32(symbol.encode())


class SymbolMarket:
    """Background liquidity and flow for one symbol. Methods return the engine events they
    caused; the adapter turns them into venue events (and batches the level changes)."""

    __slots__ = (
        "symbol", "engine", "rng", "tick", "unit", "levels", "half_spread", "volatility",
        "max_units", "low_ticks", "high_ticks", "mid_ticks", "quoted_mid", "bid_quotes", "ask_quotes",
        "preopen_orders", "step_mean_ns", "flow_mean_ns", "band_pct",
    )

    def __init__(self, instrument: Instrument, engine: MatchingEngine, options: MarketOptions, seed: int) -> None:
        if instrument.previous_close <= 0:
            raise ValueError(f"{instrument.symbol}: the synthetic market needs a positive previous_close")
        self.symbol = instrument.symbol
        self.engine = engine
        self.rng = random.Random(stream_seed(seed, instrument.symbol))
        tick = instrument.tick_size
        self.tick = tick
        lot = instrument.lot_size
        lots_per_unit = (Decimal(options.size_unit_shares) / lot).to_integral_value(rounding="ROUND_CEILING")
        self.unit = lot * max(lots_per_unit, Decimal(1))
        self.levels = options.levels
        self.half_spread = options.half_spread_ticks
        self.volatility = float(options.volatility_ticks)
        self.max_units = options.max_size_units
        self.band_pct = options.circuit_band_pct
        self.low_ticks = self.high_ticks = self.mid_ticks = 0
        self.rebase(instrument.previous_close, move_mid=True)
        self.quoted_mid = self.mid_ticks
        self.bid_quotes: dict[int, int] = {}  # price in ticks -> order id of our background quote
        self.ask_quotes: dict[int, int] = {}
        self.preopen_orders: list[int] = []  # crossing orders entered in pre-open
        self.step_mean_ns = int(options.step_interval_s * NS_PER_S)
        self.flow_mean_ns = int(options.aggressive_interval_s * NS_PER_S)

    def rebase(self, reference: Decimal, *, move_mid: bool = False) -> None:
        """A day's reference price (yesterday's close): the walk stays inside its circuit band. The
        mid moves to it only when the market starts there (a new venue, or one restarted on its
        own last close); from one day to the next it carries on from where it stood."""
        tick = self.tick
        low, high = band_around(reference, tick, self.band_pct)
        self.low_ticks = int(low / tick)
        self.high_ticks = int(high / tick)
        if move_mid:
            self.mid_ticks = int((reference / tick).to_integral_value(rounding=ROUND_HALF_EVEN))
        self.mid_ticks = min(max(self.mid_ticks, self.low_ticks), self.high_ticks)

    # ---- timing --------------------------------------------------------------------------
    def next_step_delay_ns(self) -> int:
        """Exponential wait to the next market step (a Poisson process of the configured rate)."""
        return max(1, int(self.rng.expovariate(1.0) * self.step_mean_ns))

    def next_flow_delay_ns(self) -> int:
        return max(1, int(self.rng.expovariate(1.0) * self.flow_mean_ns))

    # ---- phase behaviour -----------------------------------------------------------------
    def step(self, phase: Phase, ts: int) -> list[EngineEvent]:
        """One market step: the mid moves (or not) and the ladder follows; a step where the mid
        stands and no quote is missing resizes one quote instead, so every step changes the book.
        Pre-open adds some crossing orders for the auction; post-close a few orders at the
        closing price."""
        events: list[EngineEvent] = []
        if phase is Phase.OPEN or phase is Phase.PRE_OPEN:
            if self._walk() or self._ladder_has_gaps():
                self._requote(ts, events)
            else:
                self._churn(ts, events)
            if phase is Phase.PRE_OPEN and self.rng.random() < 0.3:
                self._crossing_order(ts, events)
        elif phase is Phase.POST_CLOSE:
            if self.rng.random() < 0.3:
                self._closing_price_order(ts, events)
        return events

    def aggress(self, phase: Phase, ts: int) -> list[EngineEvent]:
        """An aggressive background order: a market order or a marketable IOC, sized around the
        quantity at the touch so it sometimes clears the level (and the strategies' quotes in it)."""
        events: list[EngineEvent] = []
        if phase is not Phase.OPEN:
            return events
        rng = self.rng
        engine = self.engine
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        touch = engine.best_ask if side is Side.BUY else engine.best_bid
        if touch is None:
            return events
        touch_units = int(engine.level_qty(side.opposite, touch) / self.unit)
        units = max(1, round(max(touch_units, 1) * rng.uniform(0.5, 1.6)))
        qty = self.unit * units
        owner = BG_BUYER if side is Side.BUY else BG_SELLER
        if rng.random() < 0.3:
            events.extend(engine.submit(owner, "", side, qty, None, _MARKET, _IOC, False, ts).events)
        else:
            through = rng.randint(0, 2)
            touch_ticks = int(touch / self.tick)
            limit_ticks = touch_ticks + through if side is Side.BUY else touch_ticks - through
            limit_ticks = min(max(limit_ticks, self.low_ticks), self.high_ticks)
            price = self._price(limit_ticks)
            events.extend(engine.submit(owner, "", side, qty, price, _LIMIT, _IOC, False, ts).events)
        return events

    def on_phase(self, old: Phase, new: Phase, ts: int) -> list[EngineEvent]:
        """Tidy up when the session moves on: the crossing pre-open orders that the auction left
        are withdrawn at the open; the quotes are withdrawn for the closing-price session."""
        events: list[EngineEvent] = []
        engine = self.engine
        if new is Phase.OPEN:
            for order_id in self.preopen_orders:
                if order_id in engine.resting:
                    events.extend(engine.cancel(order_id, ts, "background pre-open order withdrawn").events)
            self.preopen_orders.clear()
        elif new is Phase.POST_CLOSE:
            for quotes in (self.bid_quotes, self.ask_quotes):
                for order_id in quotes.values():
                    if order_id in engine.resting:
                        events.extend(engine.cancel(order_id, ts, "background quote withdrawn").events)
                quotes.clear()
        elif new is Phase.CLOSED:
            # DAY orders expire at the close; forget them.
            self.bid_quotes.clear()
            self.ask_quotes.clear()
            self.preopen_orders.clear()
        return events

    # ---- internals -----------------------------------------------------------------------
    def _price(self, ticks: int) -> Decimal:
        return Decimal(ticks) * self.tick

    def _size(self) -> Decimal:
        # int(random() * n) rather than randint: same determinism, a third of the cost
        return self.unit * (1 + int(self.rng.random() * self.max_units))

    def _walk(self) -> bool:
        """Move the mid; True if it moved. Up to one tick of volatility the mid moves one tick
        with probability volatility² (so the standard deviation per step is the option); above
        that by a rounded normal draw."""
        vol = self.volatility
        if not vol:
            return False
        if vol <= 1.0:
            draw = self.rng.random() / (vol * vol)
            move = 0 if draw >= 1.0 else (1 if draw < 0.5 else -1)
        else:
            move = round(self.rng.gauss(0.0, vol))
        if not move:
            return False
        mid = min(max(self.mid_ticks + move, self.low_ticks), self.high_ticks)
        moved = mid != self.mid_ticks
        self.mid_ticks = mid
        return moved

    def _ladder_has_gaps(self) -> bool:
        resting = self.engine.resting
        bids, asks = self.bid_quotes, self.ask_quotes
        if len(bids) < self.levels or len(asks) < self.levels:
            return True  # also near the band edge, where the ladder is legitimately short: cheap
        for order_id in bids.values():
            if order_id not in resting:
                return True
        for order_id in asks.values():
            if order_id not in resting:
                return True
        return False

    def _requote(self, ts: int, events: list[EngineEvent]) -> None:
        """Keep the background ladder on ``levels`` prices each side of the mid.

        Quotes that fell off the ladder are moved (one amend, with a fresh size) to the prices it
        now lacks, extra ones are cancelled, remaining gaps get new orders. The side the mid moved
        towards goes first: its stale quotes are the ones that could be crossed by the other
        side's new quotes, so the background maker never meets itself."""
        engine = self.engine
        mid = self.mid_ticks
        first = self.half_spread
        low, high = self.low_ticks, self.high_ticks
        bids = [t for t in range(mid - first, mid - first - self.levels, -1) if t >= low]
        asks = [t for t in range(mid + first, mid + first + self.levels) if t <= high]
        sides = (
            (self.ask_quotes, asks, Side.SELL, self.bid_quotes, bids, Side.BUY)
            if mid >= self.quoted_mid
            else (self.bid_quotes, bids, Side.BUY, self.ask_quotes, asks, Side.SELL)
        )
        self.quoted_mid = mid
        for quotes, wanted, side in (sides[0:3], sides[3:6]):
            self._relocate(quotes, wanted, side, ts, events, engine)  # type: ignore[arg-type]

    def _relocate(
        self,
        quotes: dict[int, int],
        wanted: list[int],
        side: Side,
        ts: int,
        events: list[EngineEvent],
        engine: MatchingEngine,
    ) -> None:
        resting = engine.resting
        stale: list[int] = []
        for ticks, order_id in list(quotes.items()):
            alive = order_id in resting
            if alive and ticks in wanted:
                continue
            del quotes[ticks]
            if alive:
                stale.append(order_id)
        for ticks in wanted:
            if ticks in quotes:
                continue
            if stale:
                order_id = stale.pop()
                filled = resting[order_id].filled
                outcome = engine.amend(order_id, self._price(ticks), filled + self._size(), ts)
                events.extend(outcome.events)
                if order_id in resting:
                    quotes[ticks] = order_id
            else:
                new_id = self._enter(BG_MAKER, side, ticks, self._size(), ts, events)
                if new_id is not None:
                    quotes[ticks] = new_id
        for order_id in stale:
            events.extend(engine.cancel(order_id, ts, "background quote withdrawn").events)

    def _churn(self, ts: int, events: list[EngineEvent]) -> None:
        """Resize one random quote, so the book breathes even while the mid stands."""
        rng = self.rng
        quotes = self.bid_quotes if rng.random() < 0.5 else self.ask_quotes
        if not quotes:
            return
        order_ids = list(quotes.values())
        order = self.engine.resting.get(order_ids[int(rng.random() * len(order_ids))])
        if order is None:
            return
        events.extend(self.engine.amend(order.order_id, None, order.filled + self._size(), ts).events)

    def _crossing_order(self, ts: int, events: list[EngineEvent]) -> None:
        """A pre-open order priced through the mid, so the opening auction has something to do."""
        rng = self.rng
        depth = rng.randint(1, self.levels)
        if rng.random() < 0.5:
            side, owner, ticks = Side.BUY, BG_BUYER, min(self.mid_ticks + depth, self.high_ticks)
        else:
            side, owner, ticks = Side.SELL, BG_SELLER, max(self.mid_ticks - depth, self.low_ticks)
        order_id = self._enter(owner, side, ticks, self._size(), ts, events)
        if order_id is not None:
            self.preopen_orders.append(order_id)

    def _closing_price_order(self, ts: int, events: list[EngineEvent]) -> None:
        close = self.engine.closing_price
        if close is None:
            return
        side = Side.BUY if self.rng.random() < 0.5 else Side.SELL
        owner = BG_BUYER if side is Side.BUY else BG_SELLER
        events.extend(self.engine.submit(owner, "", side, self._size(), close, _LIMIT, _DAY, False, ts).events)

    def _enter(
        self, owner: str, side: Side, ticks: int, qty: Decimal, ts: int, events: list[EngineEvent]
    ) -> int | None:
        """Enter a DAY limit order; return its id if it is resting afterwards."""
        outcome = self.engine.submit(owner, "", side, qty, self._price(ticks), _LIMIT, _DAY, False, ts)
        events.extend(outcome.events)
        first = outcome.events[0]
        if type(first) is Accepted and first.order_id in self.engine.resting:
            return first.order_id
        return None
