"""The paper venue: the simulated venue (:class:`~adapters.sim.venue.SimVenue`: a matching engine
per symbol, a synthetic market, our account, PSX sessions) behind the engine's
:class:`~engine.venue.Adapter` interface, so paper mode runs the engine exactly as a network venue
would.

The adapter only translates: the engine's orders in (``submit``/``cancel``/``amend`` become
``place``/``cancel``/``amend`` in venue terms), the venue's reports out (the engine's sink is the
venue's listener), the reconciliation queries answered from the venue's state. Faults of the config
(``faults``: see :mod:`adapters.paper.faults`) are played by the venue on the clock, so the
engine's recovery paths run in paper mode too.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from adapters.paper.options import PaperOptions
from adapters.sim.matching import MatchingEngine
from adapters.sim.venue import CODE_HALTED, CODE_INVALID_SYMBOL, SimVenue
from engine.model import Fill, Order, SessionState, VenueOrder
from engine.venue import Adapter, AdapterOptions, Capabilities, RateLimit
from engine.venue.fees import FeeSchedule

__all__ = ["CODE_HALTED", "CODE_INVALID_SYMBOL", "PaperAdapter", "PaperOptions"]


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
        cancel_on_disconnect=True,
        self_trade_prevention=True,
    )
    # the paper venue stands in for the PSX broker, so it declares the broker's budget
    rate_limits: ClassVar[tuple[RateLimit, ...]] = (
        RateLimit("all", 100, Decimal(1), None, source="broker document 1.9: Trading APIs 100 requests/second/user"),
    )
    options_model: ClassVar[type[AdapterOptions]] = PaperOptions
    whole_shares: ClassVar[bool] = True  # it stands in for PSX, where shares are whole

    def setup(self) -> None:
        options = self.options  # a PaperOptions: Adapter.__init__ validates it against options_model
        assert isinstance(options, PaperOptions)
        self.paper_options = options
        #: the simulated exchange this adapter trades on; the engine's sink is its one listener
        self.sim = SimVenue(
            self.venue, self.instruments.values(), self.clock, account=options.account, latency_ms=options.latency_ms,
            stp=options.stp, market=options.market,
            cancel_on_disconnect=options.cancel_on_disconnect and self.cancel_on_disconnect,
            daily_faults=[fault.spec() for fault in options.faults], seed=self.seed, listeners=(self.sink,),
        )

    def set_cancel_on_disconnect(self, enabled: bool) -> None:
        super().set_cancel_on_disconnect(enabled)
        self.sim.cancel_on_disconnect = self.paper_options.cancel_on_disconnect and self.cancel_on_disconnect

    def set_state_path(self, path: Path) -> None:
        self.sim.set_state_path(path)

    # ---- lifecycle -----------------------------------------------------------------------
    async def connect(self) -> None:
        """Start the venue (its market, today's faults) and report ``connected``."""
        self.sim.start()

    async def close(self) -> None:
        """Stop every timer; requests still in flight are dropped. Never raises."""
        self.sim.stop()

    def subscribe(self, symbols: Iterable[str]) -> None:
        """A snapshot per symbol now; deltas follow as the book changes."""
        self.sim.subscribe_book(symbols)

    def describe(self) -> dict[str, Any]:
        options = self.paper_options
        return {
            "name": self.name,
            "venue": self.venue,
            "account": options.account,
            "latency_ms": str(options.latency_ms),
            "stp": options.stp,
            "market": options.market.enabled,
            "seed": self.seed,
            "cancel_on_disconnect": options.cancel_on_disconnect,
            "faults": [fault.model_dump(mode="json") for fault in options.faults],
        }

    def matching_engine(self, symbol: str) -> MatchingEngine:
        """The engine behind one symbol: for tests, replay tooling and debugging (read it, do not
        trade through it: its events would not reach the sink)."""
        return self.sim.matching_engine(symbol)

    # ---- requests: the engine's orders, in venue terms -------------------------------------
    def submit(self, order: Order) -> None:
        self.sim.place(order.client_id, order.symbol, order.side, order.qty, order.price, order.type, order.tif,
                       order.post_only)

    def cancel(self, order: Order) -> None:
        self.sim.cancel(order.client_id)

    def amend(self, order: Order, price: Decimal | None, qty: Decimal | None) -> None:
        self.sim.amend(order.client_id, price, qty)

    # ---- reconciliation queries (answered from the venue's own state, at once) -------------
    async def query_open_orders(self) -> list[VenueOrder]:
        """Our orders still resting, in the order they were accepted."""
        return self.sim.open_orders()

    async def query_order(self, client_id: str) -> VenueOrder | None:
        """A live order, or one finished today (final status and quantities); None when the venue
        never saw it (or finished it before today)."""
        return self.sim.order(client_id)

    async def query_fills(self, since_ns: int) -> list[Fill]:
        """Our fills at or after ``since_ns``, including the ones withheld during a drop."""
        return self.sim.fills(since_ns)

    # ---- session and the engine's rules ---------------------------------------------------
    def on_session(self, state: SessionState) -> None:
        self.sim.on_session(state)

    def set_price_bands(self, bands: dict[str, tuple[Decimal, Decimal]]) -> None:
        self.sim.set_price_bands(bands)

    def set_fee_schedules(self, schedules: dict[str, FeeSchedule]) -> None:
        self.sim.set_fee_schedules(schedules)
