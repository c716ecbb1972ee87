"""``engine feed CONFIG``: one process holds a venue's market-data connections and publishes every
normalised event on NATS, so many engines share one feed (issue 27).

The feed builds each venue's ``venues.<name>.market_data`` adapter exactly as ``engine run`` would
(the same options, the same per-token connection cap: PSX Live Feed allows two per token, and the
feed holds one), and gives it a sink that publishes instead of trading:

- every book change, trade and instrument status on ``md.<venue>.<symbol>`` with the symbol's own
  sequence number (1, 2, 3 ... per symbol, per feed epoch);
- a full-book snapshot of every symbol every ``snapshot_s`` seconds, in the same sequence, so a
  consumer that lost messages beyond the replay window recovers from the next one;
- a heartbeat on ``mdhb.<venue>`` every ``heartbeat_s`` with the feed's epoch and what its own venue
  connection last reported, so an engine goes ``stale`` when the feed is silent or blind.

JetStream stream ``MD_<VENUE>`` (memory storage) keeps the last ``window_msgs`` messages per
subject and at most ``window_s`` seconds of them: a consumer replays a gap from it. Publishing
goes through core NATS (no per-message acknowledgement on the hot path); JetStream stores what
matches the stream's subjects. A restarted feed has a new epoch: consumers drop the old sequence
and wait for the new epoch's snapshot.

The feed logs in to NATS as an engine's bus adapter does (``--nats-token-env`` ... ``--nats-tls-ca-file``,
:class:`engine.venue.buswire.NatsAuth` in :attr:`FeedSettings.nats_auth`); its URL is shown, in its
errors and its systemd status line, without any user part.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anyio

from engine import systemd
from engine.clock import WallClock
from engine.config import LoadedConfig, validate_section
from engine.errors import ConfigError, StartupError, only_error
from engine.model import BookUpdate, InstrumentStatus, Side, Trade
from engine.venue import MarketDataAdapter, UnknownAdapter, get_adapter
from engine.venue import buswire as wire

log = logging.getLogger("engine.feed")


@dataclass
class FeedSettings:
    """The feed's own knobs (command-line flags; the config file is the engines' config format)."""

    nats_url: str = "nats://127.0.0.1:4222"
    snapshot_s: float = 1.0
    heartbeat_s: float = 0.5
    window_msgs: int = 5000
    window_s: float = 60.0
    venues: tuple[str, ...] = ()
    #: how the feed logs in to NATS and checks it (flags --nats-token-env ... --nats-ca): secrets by name only
    nats_auth: wire.NatsAuth = field(default_factory=wire.NatsAuth)


@dataclass
class SymbolState:
    """One symbol's sequence and the book the feed holds to draw snapshots from."""

    seq: int = 0
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    #: the venue's snapshot arrived since the feed's venue connection was last (re)made: only then is
    #: the feed's own book current enough to snapshot from
    has_book: bool = False
    had_book: bool = False

    def apply(self, update: BookUpdate) -> None:
        if update.snapshot:
            self.bids.clear()
            self.asks.clear()
            self.has_book = self.had_book = True
        for side, price, qty in update.changes:
            levels = self.bids if side is Side.BUY else self.asks
            if qty:
                levels[price] = qty
            else:
                levels.pop(price, None)

    def snapshot_changes(self) -> tuple[tuple[Side, Decimal, Decimal], ...]:
        return (*((Side.BUY, p, q) for p, q in self.bids.items()), *((Side.SELL, p, q) for p, q in self.asks.items()))


class Publisher:
    """The market-data sink of one venue: numbers each event per symbol and queues it for NATS.

    The adapter calls the sink synchronously; nats-py publishes from a coroutine, so events are
    queued in order and one task writes them (a burst goes out in one flush)."""

    def __init__(self, venue: str, epoch: int) -> None:
        self.venue = venue
        self.epoch = epoch
        self.symbols: dict[str, SymbolState] = {}
        self.queue: list[tuple[str, bytes]] = []
        self.wake = anyio.Event()
        self.upstream = "new"
        self.published = 0
        self.snapshots = 0

    def _state(self, symbol: str) -> SymbolState:
        state = self.symbols.get(symbol)
        if state is None:
            state = self.symbols[symbol] = SymbolState()
        return state

    def _put(self, symbol: str, message: wire.Wire) -> None:
        self.queue.append((wire.symbol_subject(self.venue, symbol), wire.encode(message)))
        self.wake.set()

    def _next(self, symbol: str) -> tuple[SymbolState, int]:
        state = self._state(symbol)
        state.seq += 1
        return state, state.seq

    # ---- VenueEvents (market data only) ----------------------------------------------------
    def on_book(self, update: BookUpdate) -> None:
        state, seq = self._next(update.symbol)
        state.apply(update)
        self._put(update.symbol, wire.book_wire(update, self.epoch, seq, time.time_ns()))

    def on_trade(self, trade: Trade) -> None:
        _state, seq = self._next(trade.symbol)
        self._put(trade.symbol, wire.trade_wire(trade, self.epoch, seq, time.time_ns()))

    def on_instrument_status(self, status: InstrumentStatus) -> None:
        _state, seq = self._next(status.symbol)
        self._put(status.symbol, wire.status_wire(status, self.epoch, seq, time.time_ns()))

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None:
        """The feed's own venue connection: carried by the heartbeat, so every engine hears it. A
        lost or silent connection makes every book the feed holds old: no periodic snapshot is
        drawn from it until the venue's own snapshot arrives after the reconnect."""
        self.upstream = status
        if status != "connected":
            for state in self.symbols.values():
                state.has_book = False
        log.warning("feed venue %s: upstream %s %s", venue, status, detail)

    def upstream_word(self) -> str:
        """What the heartbeat says: ``connected`` only once every book the feed had is current
        again (``resyncing`` between the venue's reconnect and its snapshots), so an engine never
        hears ``connected`` while it still holds a book from before the outage."""
        if self.upstream == "connected" and any(s.had_book and not s.has_book for s in self.symbols.values()):
            return "resyncing"
        return self.upstream

    def on_order_update(self, update: Any) -> None:  # a market-data adapter sends none
        return None

    def on_fill(self, fill: Any) -> None:
        return None

    def on_account_event(self, event: Any) -> None:
        return None

    def on_anomaly(self, venue: str, kind: str, detail: str) -> None:
        """The feed has no engine to count it: logged, as the adapter logs it too."""
        log.error("feed venue %s: anomaly %s: %s", venue, kind, detail)

    # ---- periodic --------------------------------------------------------------------------
    def snapshot_all(self) -> None:
        """A full book of every symbol that has one, in the symbol's sequence."""
        now = time.time_ns()
        for symbol, state in self.symbols.items():
            if not state.has_book:
                continue
            state.seq += 1
            update = BookUpdate(self.venue, symbol, now, 0, state.snapshot_changes(), True)
            self._put(symbol, wire.book_wire(update, self.epoch, state.seq, now))
            self.snapshots += 1

    def heartbeat(self) -> bytes:
        return wire.encode(wire.Heartbeat(self.epoch, time.time_ns(), self.upstream_word(), len(self.symbols)))


def build_feeds(loaded: LoadedConfig, settings: FeedSettings, epoch: int
                ) -> list[tuple[MarketDataAdapter, Publisher, list[str]]]:
    """Each venue's market-data adapter with a publishing sink; a venue without a
    ``market_data`` section, or one whose adapter is the bus itself, is a config error."""
    cfg = loaded.config
    clock = WallClock()
    wanted = settings.venues or tuple(name for name, v in cfg.venues.items() if v.market_data is not None)
    if not wanted:
        raise loaded.error(("venues",), "engine feed needs a venue with a market_data section (the feed's adapter)")
    built = []
    for name in wanted:
        venue_cfg = cfg.venues.get(name)
        if venue_cfg is None or venue_cfg.market_data is None:
            raise loaded.error(("venues", name), f"venue {name!r} has no market_data section to run a feed from")
        where = ("venues", name, "market_data")
        try:
            adapter_cls = get_adapter(venue_cfg.market_data.adapter)
        except UnknownAdapter as exc:
            raise loaded.error((*where, "adapter"), str(exc)) from None
        if adapter_cls.name == "bus":
            raise loaded.error((*where, "adapter"), "the feed reads the venue itself; 'bus' is what engines use")
        options = validate_section(loaded, adapter_cls.options_model, venue_cfg.market_data.options,
                                   (*where, "options"))
        instruments = [i.to_instrument() for i in cfg.instruments if i.venue == name]
        symbols = [wire.token("symbol", i.symbol) for i in instruments]
        publisher = Publisher(wire.token("venue", name), epoch)
        adapter = adapter_cls(name, options, instruments, clock, publisher, seed=cfg.run.seed)
        if not isinstance(adapter, MarketDataAdapter):
            raise loaded.error((*where, "adapter"), f"adapter {adapter_cls.name!r} is not a market-data adapter")
        built.append((adapter, publisher, symbols))
    return built


async def _publish_loop(nc: Any, publisher: Publisher) -> None:
    while True:
        await publisher.wake.wait()
        publisher.wake = anyio.Event()
        batch, publisher.queue = publisher.queue, []
        for subject, data in batch:
            await nc.publish(subject, data)
        publisher.published += len(batch)
        await nc.flush()


async def _every(seconds: float, fn: Any, *args: Any) -> None:
    while True:
        await anyio.sleep(seconds)
        await fn(*args)


async def ensure_stream(js: Any, venue: str, settings: FeedSettings) -> None:
    """The venue's replay window: memory storage, bounded per subject and in age."""
    from nats.js.api import DiscardPolicy, StorageType, StreamConfig

    config = StreamConfig(name=wire.stream_name(venue), subjects=[wire.venue_wildcard(venue)],
                          storage=StorageType.MEMORY, max_msgs_per_subject=settings.window_msgs,
                          max_age=settings.window_s, discard=DiscardPolicy.OLD)
    try:
        await js.add_stream(config)
    except Exception:  # exists with another window: take ours
        await js.update_stream(config)


async def run_feed(loaded: LoadedConfig, settings: FeedSettings, stop: anyio.Event | None = None) -> None:
    """Connect NATS, then every venue's adapter, and publish until cancelled (SIGINT/SIGTERM)."""
    try:
        import nats  # noqa: F401
    except ImportError:
        raise StartupError("engine feed needs nats-py: pip install 'psx-strategy-engine[nats]'") from None
    epoch = time.time_ns()
    feeds = build_feeds(loaded, settings, epoch)
    try:
        nc: Any = await wire.connect_nats(settings.nats_url, "engine-feed", 10.0, auth=settings.nats_auth)
    except Exception as exc:  # the reason names the server without its user part, and no secret
        shown = wire.shown_url(settings.nats_url)
        raise StartupError(f"engine feed: cannot connect to NATS at {shown}: {exc}") from None
    js = nc.jetstream()
    try:
        async with anyio.create_task_group() as tg:
            for adapter, publisher, symbols in feeds:
                await ensure_stream(js, publisher.venue, settings)
                adapter.bind(tg)
                adapter.subscribe(symbols)
                tg.start_soon(_publish_loop, nc, publisher)
                tg.start_soon(_every, settings.snapshot_s, _snapshot, publisher)
                tg.start_soon(_every, settings.heartbeat_s, _heartbeat, nc, publisher)
                await adapter.connect()
                log.warning("feed venue %s: publishing %d symbol(s) on %s (epoch %d)", publisher.venue,
                            len(symbols), wire.venue_wildcard(publisher.venue), epoch)
            # systemd (deploy/systemd/engine-feed.service is Type=notify): ready once every venue
            # is connected and publishing, so engines ordered After= it start on a live bus
            systemd.ready(f"publishing {sum(len(s) for _a, _p, s in feeds)} symbol(s) of "
                          f"{len(feeds)} venue(s) on {wire.shown_url(settings.nats_url)}")
            interval = systemd.watchdog_interval()
            if interval is not None:
                tg.start_soon(_every, interval, _watchdog)
            await (anyio.sleep_forever() if stop is None else stop.wait())
            systemd.stopping("stopping: closing the venues and NATS")
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            for adapter, _publisher, _symbols in feeds:
                await adapter.close()
            await nc.close()


async def _watchdog() -> None:
    """Ping systemd's watchdog from the event loop: a stalled loop stops the pings, and systemd
    restarts the feed (engines then resume from the new epoch's snapshots)."""
    systemd.watchdog()


async def _snapshot(publisher: Publisher) -> None:
    publisher.snapshot_all()


async def _heartbeat(nc: Any, publisher: Publisher) -> None:
    await nc.publish(wire.heartbeat_subject(publisher.venue), publisher.heartbeat())


def feed_main(loaded: LoadedConfig, settings: FeedSettings) -> int:
    """``engine feed``: runs until SIGINT/SIGTERM; exit 0 then, 1 when it cannot start."""
    import signal

    async def main() -> None:
        stop = anyio.Event()

        async def signals() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
                async for _ in received:
                    stop.set()
                    return

        async with anyio.create_task_group() as tg:
            tg.start_soon(signals)
            await run_feed(loaded, settings, stop)
            tg.cancel_scope.cancel()

    try:
        anyio.run(main)
    except BaseExceptionGroup as group:  # NATS unreachable, a venue refusing: one line, no traceback
        refusal = only_error(group, (ConfigError, StartupError, ConnectionError))
        if isinstance(refusal, ConnectionError):
            raise StartupError(f"engine feed: {refusal}") from None
        if refusal is not None:
            raise refusal from None
        raise
    return 0


def venues_of(loaded: LoadedConfig) -> Iterable[str]:
    return [name for name, v in loaded.config.venues.items() if v.market_data is not None]
