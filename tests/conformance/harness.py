"""What a venue harness is: one running sandbox (or embedded venue), one adapter built on its public
constructor and options, the recording sink standing in for the runtime, and the few moves the
conformance tests need that only the venue's own side can make (cross the market, drop the
connection, duplicate a report, restart the adapter, provoke a reject).

The tests in this folder talk to the adapter only through the engine's contract (``submit``,
``cancel``, ``amend``, ``cancel_all``, ``query_*`` and the :class:`~engine.venue.VenueEvents` calls
the sink records); a harness never reaches into the adapter. Adding a venue means writing one
``harness_<venue>.py`` with a subclass of :class:`OrderEntryHarness` (and, for a market-data
adapter, of :class:`MarketDataHarness`) and naming it in ``conftest.py``.

Modes (issue 20): every test runs against each venue in every mode of :data:`MODES`. ``everyday``
is the sandbox as the project runs it; ``literal`` is the sandbox answering exactly its document's
shapes, every assumption beyond the document switched off. A harness lists the modes it can start
in ``modes`` and takes ``mode=`` in its constructor when it lists more than ``everyday``; the
fixtures skip a mode it does not list, with a reason naming the harness.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Self, TypeVar

import anyio
from anyio.abc import TaskGroup
from support.sinks import RecordingSink

from adapters.sim.extensions import Extensions
from engine.model import Book, Order, OrderStatus, OrderType, Side, TimeInForce
from engine.venue import Capabilities, MarketDataAdapter, OrderEntryAdapter

S = OrderStatus
EVERYDAY = "everyday"
LITERAL = "literal"
#: the venue modes every test runs in (columns of the matrix: ``venue-mode``)
MODES = (EVERYDAY, LITERAL)
E = TypeVar("E", bound=Extensions)


@dataclass(frozen=True)
class RejectCase:
    """One way to make the venue itself refuse an order: ``provoke`` places the order (through the
    adapter, after arranging whatever the venue needs) and returns it; the venue's own code is
    ``venue_code`` (for the matrix), the engine code it must arrive as is ``engine_code`` (None:
    any code of the engine's table)."""

    name: str
    provoke: Callable[[], Any]  # async () -> Order
    venue_code: str
    engine_code: int | None = None


@dataclass
class HarnessFacts:
    """What a harness declares about its venue, beside the adapter's own capabilities: what the
    tests may ask of it and why not when they may not (each a reason for an explicit skip)."""

    market_data: str | None = None  # None: subscribe gives a book; else why it does not
    duplicate_reports: str | None = None  # None: the venue can send a report twice; else why not
    extra: dict[str, str] = field(default_factory=dict)


def extensions_for(kind: type[E], mode: str) -> E:
    """A sandbox's extensions (``kind``) for a conformance mode: ``everyday`` (all on) or ``literal``
    (the venue document alone, all off)."""
    if mode == EVERYDAY:
        return kind.everyday()
    if mode == LITERAL:
        return kind.document_literal()
    raise ValueError(f"mode must be {EVERYDAY} or {LITERAL}, got {mode!r}")


async def wait_until(condition: Callable[[], bool], timeout: float, poll_s: float = 0.005) -> None:
    """Poll ``condition`` in real time until it holds; ``TimeoutError`` after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(poll_s)


class _ModalHarness:
    """What both harness bases share: the venue modes a harness can start in, a fresh sink, and
    the life of a networked venue: credentials in the environment, the venue started on an exit
    stack, a task group, one adapter (``connect_adapter``), all torn down in reverse on exit.

    A harness names its ``env`` and writes ``start_venue`` and ``connect_adapter``; an embedded
    venue (paper) overrides ``__aenter__``/``__aexit__``/``until`` instead."""

    name = ""
    #: the venue modes (of :data:`MODES`) this harness can start its venue in
    modes: ClassVar[tuple[str, ...]] = (EVERYDAY,)
    #: why a mode it does not list cannot apply (default reason: "no <mode> mode yet")
    mode_skips: ClassVar[dict[str, str]] = {}
    #: conformance tests whose premise the venue's document does not give, by test function name:
    #: skipped in the literal mode with this reason (the adapter's literal behaviour is tested in the
    #: adapter's own tests instead)
    literal_limits: ClassVar[dict[str, str]] = {}
    #: environment variables the adapter reads its credentials from: set while the harness runs,
    #: restored (or removed) when it stops
    env: ClassVar[dict[str, str]] = {}
    #: how often ``until`` looks at its condition, in real seconds
    poll_s: ClassVar[float] = 0.005

    def __init__(self, tmp_path: Any, mode: str = EVERYDAY) -> None:
        if mode not in self.modes:
            raise ValueError(f"{self.name}: no venue mode {mode!r} (modes: {', '.join(self.modes)})")
        self.mode = mode
        self.tmp_path = tmp_path
        self.sink = RecordingSink()
        #: what ``__aexit__`` unwinds: the environment, the venue, the task group
        self.stack = contextlib.AsyncExitStack()
        self.task_group: TaskGroup
        #: the adapter instance to close on exit (None between the two instances of a restart)
        self.open_adapter: Any = None

    async def start_venue(self) -> None:
        """Start the venue (entered on ``self.stack``) and give it its starting state."""
        raise NotImplementedError

    async def connect_adapter(self, sink: RecordingSink) -> Any:
        """A new adapter on the venue, reporting to ``sink``, bound to ``task_group`` and connected."""
        raise NotImplementedError

    def check_venue(self) -> None:
        """After everything stopped: what the venue must not have seen (default: nothing checked)."""

    def _set_env(self) -> None:
        saved = {name: os.environ.get(name) for name in self.env}

        def restore() -> None:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

        self.stack.callback(restore)
        os.environ.update(self.env)

    async def __aenter__(self) -> Self:
        self._set_env()
        await self.start_venue()
        self.task_group = await self.stack.enter_async_context(anyio.create_task_group())
        self.adapter = self.open_adapter = await self.connect_adapter(self.sink)
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.open_adapter is not None:
                await self.open_adapter.close()
            self.task_group.cancel_scope.cancel()
        finally:
            await self.stack.aclose()
        self.check_venue()

    async def until(self, condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        """Let the venue work until ``condition`` holds (real time on a network venue, simulated
        time on an embedded one); fail after ``timeout`` seconds."""
        await wait_until(condition, timeout, self.poll_s)


class OrderEntryHarness(_ModalHarness):
    """Base of every order-entry harness. ``async with Harness(tmp_path) as h`` starts the venue,
    builds and connects the adapter (a fresh ``RecordingSink`` as its sink) and, where the venue
    has market data, subscribes ``h.symbol``."""

    #: the order venue name events carry (the adapter's ``venue``)
    venue = ""
    symbol = ""
    lot = Decimal(1)
    tick = Decimal("0.01")
    facts = HarnessFacts()

    def __init__(self, tmp_path: Any, mode: str = EVERYDAY) -> None:
        super().__init__(tmp_path, mode)
        #: every sink this harness gave an adapter (a restart adds one): none may record an anomaly
        self.sinks = [self.sink]
        self.adapter: OrderEntryAdapter
        self._ids = itertools.count(1)

    def new_sink(self) -> RecordingSink:
        """A sink for a restarted adapter: a new record of calls, the same orders the engine knows."""
        sink = RecordingSink()
        sink.orders = self.sink.orders
        self.sink = sink
        self.sinks.append(sink)
        return sink

    #: what this adapter is known to get wrong, by test (``"restart_fills"`` ...) with the reason:
    #: the test runs as a strict xfail there, so it fails the day the adapter is mended
    known_gaps: ClassVar[dict[str, str]] = {}

    # ---- what every venue provides -------------------------------------------------------
    @property
    def capabilities(self) -> Capabilities:
        return self.adapter.capabilities

    @property
    def post_only(self) -> str:
        """What the adapter, as the harness configured it, does with a post-only order that would
        take: the declared capability unless an option of the adapter chooses otherwise."""
        return self.capabilities.post_only

    def post_only_modes(self) -> tuple[str, ...]:
        """Every post-only behaviour the adapter offers (through its options): each is tested."""
        return (self.post_only,)

    async def use_post_only(self, mode: str) -> None:
        """Reconnect the adapter configured for post-only ``mode`` (one of ``post_only_modes``)."""
        if mode != self.post_only:
            raise ValueError(f"{self.name}: no post-only mode {mode!r}")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every credential the venue was given: none may appear in any log line."""
        raise NotImplementedError

    async def settle(self) -> None:
        """Let whatever is in flight arrive (a late duplicate, a second stream's copy)."""
        raise NotImplementedError

    def passive_price(self, side: Side = Side.BUY) -> Decimal:
        """A price at which an order rests and does not trade for the length of a test."""
        raise NotImplementedError

    async def marketable(self, side: Side = Side.BUY) -> tuple[Decimal, Decimal]:
        """``(price, qty)``: an order of ``side`` for ``qty`` at ``price`` fills at once and whole."""
        raise NotImplementedError

    async def partial(self, side: Side = Side.BUY) -> tuple[Decimal, Decimal]:
        """``(price, qty)``: an order of ``side`` at ``price`` for ``qty`` trades part at once and
        rests the rest (the venue has less at that price than asked)."""
        raise NotImplementedError

    async def drop(self) -> None:
        """Lose the connection now (an abort, not a goodbye); the adapter must see it."""
        raise NotImplementedError

    async def duplicate_reports(self) -> None:
        """From now on the venue sends every order report twice."""
        raise NotImplementedError

    def duplicates_sent(self) -> int:
        """How many reports the venue sent a second time so far (so a test knows it met some)."""
        raise NotImplementedError

    async def restart(self) -> None:
        """Close the adapter and connect a new instance of it (same options, a new sink that knows
        the same orders), as an engine restarted on the same account would."""
        assert self.open_adapter is not None
        await self.open_adapter.close()
        self.open_adapter = None
        self.adapter = self.open_adapter = await self.connect_adapter(self.new_sink())

    def reject_cases(self) -> list[RejectCase]:
        """Every reject the venue can be made to send, each as one provocation."""
        raise NotImplementedError

    def book_at_venue(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]] | None:
        """The venue's own book of ``symbol`` as ``(bids, asks)``; None when it has no book to show."""
        return None

    # ---- the runtime's moves, as the engine makes them ----------------------------------
    def order(self, side: Side = Side.BUY, qty: Decimal | None = None, price: Decimal | None = None, *,
              symbol: str | None = None, tif: TimeInForce = TimeInForce.DAY, post_only: bool = False,
              order_type: OrderType = OrderType.LIMIT) -> Order:
        """A new order registered with the sink (the runtime knows it) but not yet sent."""
        order = Order(f"cf-{next(self._ids)}", "conformance", self.venue, symbol or self.symbol, side,
                      qty if qty is not None else self.lot, price, order_type, tif, post_only)
        self.sink.orders[order.client_id] = order
        return order

    def submit(self, side: Side = Side.BUY, qty: Decimal | None = None, price: Decimal | None = None,
               **kwargs: Any) -> Order:
        order = self.order(side, qty, price, **kwargs)
        self.adapter.submit(order)
        return order

    def cancel(self, order: Order) -> None:
        order.transition(S.PENDING_CANCEL)
        self.adapter.cancel(order)

    def amend(self, order: Order, price: Decimal | None = None, qty: Decimal | None = None) -> None:
        order.request_replace(price, qty)
        self.adapter.amend(order, price, qty)

    async def two_sided(self, engine: Any) -> None:
        """Wait until a synthetic market's matching ``engine`` shows both a bid and an ask."""
        await self.until(lambda: engine.best_ask is not None and engine.best_bid is not None, "a synthetic book")

    async def acked(self, order: Order) -> None:
        await self.until(lambda: order.status not in (S.PENDING_NEW,), f"{order.client_id} answered")

    def book(self) -> Book | None:
        return self.sink.books.get(self.symbol)


class MarketDataHarness(_ModalHarness):
    """Base of every market-data harness: a venue whose book the harness can change, gap and
    silence, and an adapter subscribed to ``symbol`` through a fresh ``RecordingSink``."""

    symbol = ""

    def __init__(self, tmp_path: Any, mode: str = EVERYDAY) -> None:
        super().__init__(tmp_path, mode)
        self.adapter: MarketDataAdapter | OrderEntryAdapter

    @property
    def secrets(self) -> tuple[str, ...]:
        raise NotImplementedError

    def venue_book(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """The venue's own book of ``symbol`` as ``(bids, asks)``, best first."""
        raise NotImplementedError

    def change_book(self, step: int) -> None:
        """Change the venue's book of ``symbol`` (one delta; ``step`` makes each call different)."""
        raise NotImplementedError

    def lose_next_change(self) -> None:
        """The next book change of ``symbol`` never reaches the adapter (a sequence gap)."""
        raise NotImplementedError

    def stall(self, seconds: float) -> None:
        """The venue sends nothing (nor answers) for ``seconds``."""
        raise NotImplementedError

    def book_matches(self) -> bool:
        mine = self.sink.books.get(self.symbol)
        bids, asks = self.venue_book()
        return mine is not None and mine.bids == bids and mine.asks == asks
