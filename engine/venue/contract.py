"""The venue contract: what the engine asks of an adapter and what an adapter delivers back.

Two contracts, because a venue can carry market data, orders, or both: a
:class:`MarketDataAdapter` subscribes and delivers books, trades and statuses; an
:class:`OrderEntryAdapter` also takes orders, declares :class:`Capabilities` and
:class:`RateLimit` budgets, and answers reconciliation queries. Both deliver into a
:class:`VenueEvents` sink (the runtime). The engine depends on this module only; adapters depend on
it, the model and ``adapters.kit``, never the other way round (ARCHITECTURE principle 1).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from anyio.abc import TaskGroup
from pydantic import BaseModel, ConfigDict

from engine.clock import Clock
from engine.model import (
    AccountEvent,
    BookUpdate,
    Fill,
    Instrument,
    InstrumentStatus,
    Order,
    OrderUpdate,
    SessionState,
    Trade,
    VenueAccount,
    VenueOrder,
)

if TYPE_CHECKING:
    import datetime as dt

    from engine.recording.format import DayTimes
    from engine.risk.rulepack import FeeSchedule

_log = logging.getLogger("engine.adapters")


class VenueEvents(Protocol):
    """What an adapter may call on the runtime. All calls are synchronous and cheap."""

    def on_book(self, update: BookUpdate) -> None: ...
    def on_trade(self, trade: Trade) -> None: ...
    def on_order_update(self, update: OrderUpdate) -> None: ...
    def on_fill(self, fill: Fill) -> None: ...
    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None:
        """``status``: "connected", "disconnected" (the connection is lost: the engine marks the
        venue's open orders unknown and reconciles when it is back) or "stale" (no data)."""

    def on_instrument_status(self, status: InstrumentStatus) -> None: ...
    def on_account_event(self, event: AccountEvent) -> None:
        """A margin call or an account alert (issue 20): counted, logged, told to the strategies on
        the venue, and a margin call moves the kill switch (``risk.kill_switch.on_margin_call``)."""

    def on_anomaly(self, venue: str, kind: str, detail: str) -> None:
        """The venue's own words do not add up and the adapter cannot settle it (a CumQty that does
        not follow, reports dropped at a daily reset, a fill it cannot price): counted with the
        engine's anomalies by ``kind`` (``engine_anomalies`` metric, the report), logged once per
        kind. The adapter keeps the order unknown itself; this is how people hear of it."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a venue does natively. The runtime refuses or emulates what is missing rather than
    silently degrading (VENUES.md 6.9)."""

    amend: bool = False
    mass_cancel: bool = False
    post_only: str = "none"  # "reject" | "reprice" | "none"
    ioc: bool = False
    fok: bool = False
    gtc: bool = False
    market_orders: bool = True
    mmp: bool = False
    cancel_on_disconnect: bool = False
    self_trade_prevention: bool = False


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A venue's documented request budget, as data: ``count`` requests per ``per_seconds``
    (``burst`` tokens at most) for one ``scope`` ("orders", "cancels", "all", ...)."""

    scope: str
    count: int
    per_seconds: Decimal
    burst: int | None = None
    source: str = ""


class AdapterOptions(BaseModel):
    """Base for an adapter's own config block. Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class VenueAdapter(ABC):
    """What every adapter is, whether it carries market data, orders or both: one connection to one
    venue account, its options, its background tasks, and what it reports.

    Lifecycle: construct -> ``await connect()`` -> ``subscribe`` -> trading -> ``await close()``.
    """

    #: registry name, e.g. "paper"
    name: ClassVar[str] = ""
    #: pydantic model for this adapter's options in config (``venues.<name>.options``)
    options_model: ClassVar[type[AdapterOptions]] = AdapterOptions

    def __init__(
        self,
        venue: str,
        options: AdapterOptions,
        instruments: Iterable[Instrument],
        clock: Clock,
        sink: VenueEvents,
        seed: int = 0,
    ) -> None:
        self.venue = venue
        if not isinstance(options, self.options_model):  # a base AdapterOptions from config or a test
            options = self.options_model.model_validate(options.model_dump())
        self.options = options
        self.instruments = {i.symbol: i for i in instruments}
        self.clock = clock
        self.sink = sink
        self.seed = seed
        self._task_group: TaskGroup | None = None
        self.setup()

    def setup(self) -> None:
        """What an adapter builds from its options, once, at the end of construction (``venue``,
        ``options`` validated against ``options_model``, ``instruments``, ``clock``, ``sink`` and
        ``seed`` are set): so an adapter does not repeat the constructor's signature to do it."""
        return None

    def bind(self, task_group: TaskGroup) -> None:
        """The engine's task group, given before ``connect``: a network adapter's reader loops,
        heartbeats and token refreshes run in it, so they stop when the engine stops."""
        self._task_group = task_group

    @property
    def bound(self) -> bool:
        """Whether :meth:`bind` has given the adapter its task group (``connect`` needs it)."""
        return self._task_group is not None

    def start_task(self, fn: Callable[..., Awaitable[Any]], *args: Any, name: str | None = None) -> None:
        """Run ``fn(*args)`` in the background for as long as the engine runs. A task that fails
        is logged with its traceback and ends alone: an exception let into the engine's task group
        would end the whole process without its shutdown cancels, leaving orders working."""
        if self._task_group is None:
            raise RuntimeError(f"adapter {self.name!r} started a task before the engine bound its task group")
        self._task_group.start_soon(self._contained, fn, args, name, name=name)

    async def _contained(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], name: str | None) -> None:
        try:
            await fn(*args)
        except Exception:  # never BaseException: cancellation must still end the task
            _log.exception("%s venue %s: background task %s failed; the engine goes on",
                           self.name, self.venue, name or getattr(fn, "__qualname__", fn))

    @abstractmethod
    async def connect(self) -> None:
        """Open connections, authenticate, and report ``connected`` through the sink."""

    @abstractmethod
    async def close(self) -> None:
        """Close connections. Must not raise."""

    @abstractmethod
    def subscribe(self, symbols: Iterable[str]) -> None:
        """Ask for market data for these symbols; a snapshot comes first."""

    def set_state_path(self, path: Path) -> None:
        """Where an adapter keeps its own durable state, beside the journal (called only when the
        journal is enabled; ``--fresh-account`` moves the file aside): an embedded venue its side
        of the account (our orders and executions) so that a restarted engine meets the venue it
        left; a network adapter what must outlive the process (Optimus: the webhook delivery ids
        already applied). Others ignore it."""
        return None

    def on_session(self, state: SessionState) -> None:
        """Told of every session phase change. Embedded and sandbox venues follow it; a real
        venue keeps its own schedule and may ignore it."""
        return None

    def session_changes(self) -> list[tuple[int, SessionState]] | None:
        """Session changes the engine must follow instead of its schedule, as ``(when_ns, state)``
        (read after ``connect``): a replay of a recording that holds them (``sessions: recorded``).
        None, as for every live venue: the engine's own profile drives the sessions."""
        return None

    @classmethod
    def recorded_days(cls, venue: str, options: AdapterOptions, symbols: list[str],
                      tz: dt.tzinfo) -> dict[dt.date, DayTimes] | None:
        """The days a recording holds for this venue (a replay, issue 26), by local date in ``tz``,
        read before anything is built: the engine takes its days and run window from them. None,
        as for every live venue: the calendar and the session profile decide. ``symbols``: the
        config's instruments of the venue. A selection that holds nothing raises ValueError."""
        return None

    def stats(self) -> dict[str, int]:
        """Counters for the report and metrics: at least ``messages_in`` (frames, answers and
        events received), ``messages_out`` (requests sent) and ``reconnects``; an embedded venue
        has no wire, so zeros."""
        return {"messages_in": 0, "messages_out": 0, "reconnects": 0}

    def bad_input(self) -> dict[str, int]:
        """What the venue sent that was dropped, counted by kind (``engine.venue.badinput`` names the
        kinds: ``not_json``, ``bad_number``, ``bad_signature`` ...), for the report and
        ``/metrics``. An adapter keeps a :class:`engine.venue.badinput.BadInput` and returns its
        ``counts``; an embedded venue sends nothing bad, so empty."""
        return {}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "venue": self.venue}


class MarketDataAdapter(VenueAdapter):
    """A market-data-only adapter (``venues.<name>.market_data``): books, trades and instrument
    statuses, no orders. Its connection statuses tell strategies about data health and never touch
    order state; it has no order methods at all, so nothing can route an order to it."""


class OrderEntryAdapter(VenueAdapter):
    """An adapter that carries orders (and usually the venue's market data too).

    Requests are non-blocking: ``submit`` returns at once and the venue's answer comes back later
    through the sink (``on_order_update`` / ``on_fill``), exactly as it would from a network venue.
    """

    capabilities: ClassVar[Capabilities] = Capabilities()
    rate_limits: ClassVar[tuple[RateLimit, ...]] = ()
    #: True for a venue that trades whole units only (PSX: shares, in lots of 1 or 500): a
    #: fractional ``lot_size`` for its instruments, in the master or a rule pack, is a config
    #: error. Crypto venues trade fractions (a Pulse amount, a 0.0001 lot), so the default is False
    whole_shares: ClassVar[bool] = False

    def __init__(
        self,
        venue: str,
        options: AdapterOptions,
        instruments: Iterable[Instrument],
        clock: Clock,
        sink: VenueEvents,
        seed: int = 0,
    ) -> None:
        # before the base's __init__, so that an adapter's ``setup`` finds it
        self.cancel_on_disconnect = self.capabilities.cancel_on_disconnect
        super().__init__(venue, options, instruments, clock, sink, seed)

    @abstractmethod
    def submit(self, order: Order) -> None:
        """Send a new order. Returns at once; the answer arrives through the sink, never from
        inside this call (the runtime books the order right after the hand-off)."""

    @abstractmethod
    def cancel(self, order: Order) -> None:
        """Ask the venue to cancel. The order is already ``pending_cancel``."""

    @abstractmethod
    def amend(self, order: Order, price: Decimal | None, qty: Decimal | None) -> None:
        """Ask the venue to change price and/or total quantity. The order is ``pending_replace``."""

    def set_price_bands(self, bands: dict[str, tuple[Decimal, Decimal]]) -> None:
        """The engine's circuit-band rule per symbol, ``(pct, abs_floor)``. A simulated venue uses
        it to build the same band as the pre-trade gate; a real venue has its own and ignores it."""
        return None

    def set_fee_schedules(self, schedules: dict[str, FeeSchedule]) -> None:
        """The engine's fee schedule per symbol. A simulated venue charges it on its fills; a real
        venue either states its own fee (taken at its word, compared by the engine) or none (the
        engine then charges the schedule), and ignores this."""
        return None

    def set_rate_limits(self, limits: tuple[RateLimit, ...]) -> tuple[RateLimit, ...]:
        """The venue account's effective request budget (what the adapter declares, or the config's
        ``venues.<name>.rate_limits``), given before ``connect``. A network adapter paces its
        departures with these limits, since the venue counts what arrives (``adapters.kit.pacing``),
        and returns the limits it will actually let requests leave at (with its safety margin):
        the gate spends exactly those at submit, so it never admits more than the wire can carry
        and the departure queue cannot grow without bound. An embedded venue has no wire: the
        limits come back unchanged."""
        return limits

    def set_cancel_on_disconnect(self, enabled: bool) -> None:
        """The engine's ``venues.<name>.cancel_on_disconnect``: a venue that cancels our orders
        itself when the connection drops is asked to (at login) only when this is on."""
        self.cancel_on_disconnect = enabled and self.capabilities.cancel_on_disconnect

    async def query_open_orders(self) -> list[VenueOrder]:
        """Every order the venue still works for this account."""
        raise NotImplementedError(f"adapter {self.name!r} cannot list open orders")

    async def query_order(self, client_id: str) -> VenueOrder | None:
        """One order's state by our client id, None when the venue never saw it."""
        raise NotImplementedError(f"adapter {self.name!r} cannot query an order")

    async def query_fills(self, since_ns: int) -> list[Fill]:
        """Our executions at or after ``since_ns``; the runtime drops the ones it already has."""
        raise NotImplementedError(f"adapter {self.name!r} cannot list fills")

    async def query_account(self, currency: str) -> VenueAccount:
        """The account's equity, margins and positions in ``currency`` as the venue reports them,
        for a derivatives account (``venues.<name>.account.kind: derivatives``), which takes the
        venue's figures where they differ from its own."""
        raise NotImplementedError(f"adapter {self.name!r} cannot report the account")

    def configure_mmp(self, strategy: str, symbols: Iterable[str], interval: Decimal, frozen_time: Decimal,
                      quantity_limit: Decimal) -> None:
        """A strategy's ``mmp:`` limits, given before ``connect`` to an adapter whose venue has
        market-maker protection of its own (``capabilities.mmp``); others ignore it."""
        return None

    def reset_mmp(self, strategy: str) -> None:
        """``ctx.reset_mmp()`` of ``strategy``: lift the venue's own MMP freeze on the strategy's
        instruments too (an adapter with ``capabilities.mmp``; others ignore it). Without it a venue
        freeze with ``frozen_time: 0`` would outlast the engine's until the next reconnect."""
        return None

    async def cancel_all(self, symbol: str | None = None) -> int:
        """Mass cancel every order of this account (or of one symbol) in one request, for an adapter
        that declares ``capabilities.mass_cancel``; the cancels arrive as order updates. Returns how
        many the venue cancelled."""
        raise NotImplementedError(f"adapter {self.name!r} has no mass cancel")


#: The name third-party adapters and the engine have always used for an order-entry adapter.
Adapter = OrderEntryAdapter
