"""``bus``: market data from ``engine feed`` over NATS, for many engines sharing one venue feed.

Configured as ``venues.<name>.market_data: {adapter: bus, options: {nats_url: ...}}``; orders still
go through the venue's own order adapter. Per symbol it subscribes ``md.<venue>.<symbol>``, checks
every message's sequence number and the feed's epoch, and never hands the engine a book built over a
hole:

- a message whose sequence is above the next expected one is a gap: the symbol's book stops (no
  delta is delivered over it), the venue is reported ``stale``, and the missing messages are
  replayed from the feed's JetStream window (``recover: jetstream``); when the window no longer
  reaches back, from the last snapshot in it; when there is none, from the next live snapshot
  (the feed sends one per symbol every ``snapshot_s``). Messages that arrive meanwhile are held
  (at most ``max_held`` per symbol) and applied after the replay.
- a new feed epoch (the feed restarted) is the same: the old sequence means nothing, the book
  restarts from the new epoch's snapshot.
- no feed heartbeat for ``stale_seconds``, or a heartbeat saying the feed's own venue connection is
  not ``connected``: ``stale``; all of it healthy again: ``connected``.
- at connect: ``connect()`` waits (at most ``stale_seconds``) for the feed's first heartbeat, so the
  first word is ``connected`` (or ``stale`` when no heartbeat came); a newly subscribed symbol has
  ``stale_seconds`` for its first book (the window's last snapshot, or the next live one) before its
  absence calls the venue ``stale``, so a start does not flicker connected-stale-connected.

Counters (``stats()``/``describe()``): messages, gaps, messages missed in gaps, recovered by replay,
recovered by snapshot, deltas dropped while a book waited, duplicates, undecodable messages (by kind,
``bad_input()``).

Logging in: ``token_env``/``token_file``, ``user`` + ``password_env``/``password_file`` or
``creds_file``, and ``tls_ca_file``/``tls_cert_file``/``tls_key_file`` (:class:`engine.venue.buswire.NatsAuth`):
secrets by name only, a ``nats_url`` with a user or password in it refused at load, TLS required
when asked for, a refused login one line naming the server (:func:`engine.venue.buswire.connect_nats`).

The kill switch broadcast: with ``account`` set, the adapter listens on ``halt.<account>`` and reads
the ``HALT`` key-value bucket at connect, so an ``engine halt`` sent while this engine was down still
halts it when it comes back (the state only escalates, as the kill switch itself does).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Literal

import anyio
import msgspec
from pydantic import Field

from engine.model import Instrument
from engine.venue import AdapterOptions, MarketDataAdapter, VenueEvents
from engine.venue import buswire as wire
from engine.venue.badinput import BadInput
from engine.venue.clock import Clock

log = logging.getLogger("engine.bus")


class BusOptions(wire.NatsConnection):
    """``nats_url`` and how to log in (token, user + password or creds file, from the environment
    or files only; TLS): :class:`engine.venue.buswire.NatsAuth`. A URL with a user or password in
    it, or credentials over plain ``nats://`` to another machine, are refused at load."""

    #: the venue's name on the bus (the feed's config); default: this engine's venue name
    feed_venue: str | None = None
    stale_seconds: Decimal = Field(Decimal("2"), gt=0)
    recover: Literal["jetstream", "snapshot"] = "jetstream"
    max_held: int = Field(10_000, gt=0)
    #: the account whose kill switch broadcast this engine obeys (``halt.<account>``); None = none
    account: str | None = None
    connect_timeout_s: Decimal = Field(Decimal("10"), gt=0)


@dataclass
class SymbolTrack:
    """Where one symbol's stream stands: the epoch and next sequence, and whether its book is whole."""

    epoch: int = 0
    expected: int = 0  # 0: nothing yet, waiting for a snapshot
    whole: bool = False
    recovering: bool = False
    last_replay: float = -1e9  # monotonic: one replay a second at most while a book waits
    loading_until: float = 0.0  # monotonic: a new subscription's first book is not "stale" before this
    held: list[wire.Wire] = field(default_factory=list)


class BusMarketData(MarketDataAdapter):
    """Books, trades and statuses from ``engine feed`` over NATS, gap-checked per symbol."""

    name: ClassVar[str] = "bus"
    options_model: ClassVar[type[AdapterOptions]] = BusOptions

    def __init__(self, venue: str, options: AdapterOptions, instruments: Iterable[Instrument], clock: Clock,
                 sink: VenueEvents, seed: int = 0) -> None:
        super().__init__(venue, options, instruments, clock, sink, seed)
        opts = self.options
        assert isinstance(opts, BusOptions)
        self.bus_options = opts
        self.feed_venue = wire.token("venue", opts.feed_venue or venue)
        if opts.account is not None:
            wire.token("account", opts.account)
        self._wanted: set[str] = set()
        self._tracks: dict[str, SymbolTrack] = {}
        self._nc: Any = None
        self._js: Any = None
        self._subs: list[Any] = []
        self._stop: anyio.Event | None = None
        self._bad = BadInput(log, f"bus venue {venue}")
        self._deliver_status = getattr(sink, "on_instrument_status", None)
        self._kill = getattr(sink, "on_kill_switch", None)
        self.status = "new"
        self.last_heartbeat = 0.0  # monotonic
        self.upstream = "new"
        self.feed_epoch = 0
        self.halted_by_bus: str | None = None
        self._heard = anyio.Event()  # the feed's first heartbeat (connect waits for it)
        self.counts = {"messages_in": 0, "delivered": 0, "gaps": 0, "missed": 0, "replayed": 0,
                       "recovered_by_replay": 0, "recovered_by_snapshot": 0, "dropped_waiting": 0,
                       "duplicates": 0, "malformed": 0, "held_overflow": 0, "epochs": 0}

    # ---- lifecycle -----------------------------------------------------------------------
    async def connect(self) -> None:
        try:
            import nats  # noqa: F401
        except ImportError:
            raise ConnectionError("market_data adapter 'bus' needs nats-py: pip install "
                                  "'psx-strategy-engine[nats]'") from None
        opts = self.bus_options
        try:
            self._nc = await wire.connect_nats(opts.nats_url, f"engine-bus-{self.venue}", float(opts.connect_timeout_s),
                                               auth=opts, disconnected_cb=self._nats_down,
                                               reconnected_cb=self._nats_up)
        except Exception as exc:  # the reason names the server without its user part, and no secret
            raise ConnectionError(f"venue {self.venue!r}: cannot connect to NATS at {wire.shown_url(opts.nats_url)}: "
                                  f"{exc}") from None
        self._js = self._nc.jetstream()
        self._stop = anyio.Event()
        self._subs.append(await self._nc.subscribe(wire.heartbeat_subject(self.feed_venue), cb=self._on_heartbeat))
        for symbol in sorted(self._wanted):
            await self._subscribe_symbol(symbol)
        if opts.account is not None:
            await self._watch_halt(opts.account)
        # the first word is "connected" once the feed's heartbeat is in (waited for here, at most
        # stale_seconds), "stale" when none comes: the engine takes the data as not current until
        # this adapter says so, and tells strategies where it stands after on_start
        self.status = "connecting"
        with anyio.move_on_after(float(opts.stale_seconds)):
            await self._heard.wait()
        why = self._why_stale() if self._heard.is_set() else f"no heartbeat from the feed within {opts.stale_seconds} s"
        if why is not None:
            self._report("stale", why)
        elif self.status != "connected":  # (a heartbeat during the wait may have said it already)
            self._report("connected", "feed live, every book whole")
        self.start_task(self._watchdog, self._stop, name=f"bus[{self.venue}] watchdog")

    async def close(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._nc is not None:
            nc, self._nc = self._nc, None
            try:
                await nc.close()
            except Exception:  # close must not raise
                log.debug("bus venue %s: NATS close failed", self.venue, exc_info=True)
        self.status = "closed"
        self._bad.flush()

    def subscribe(self, symbols: Iterable[str]) -> None:
        new = [wire.token("symbol", s) for s in symbols if s not in self._wanted]
        self._wanted.update(new)
        loading_until = time.monotonic() + float(self.bus_options.stale_seconds)
        for symbol in new:  # its first book has stale_seconds to come before the venue is called stale
            self.track(symbol).loading_until = loading_until
        if self._nc is not None:
            for symbol in new:
                self.start_task(self._subscribe_symbol, symbol)

    def track(self, symbol: str) -> SymbolTrack:
        """The symbol's sequence state (created on subscription)."""
        return self._tracks.setdefault(symbol, SymbolTrack())

    async def _subscribe_symbol(self, symbol: str) -> None:
        self.track(symbol)

        async def on_message(msg: Any) -> None:
            self.on_message(symbol, msg.data)

        self._subs.append(await self._nc.subscribe(wire.symbol_subject(self.feed_venue, symbol), cb=on_message))
        # a replay at once: the book starts from the window's last snapshot, not the next live one
        if self.bus_options.recover == "jetstream":
            self._start_recovery(symbol, self._tracks[symbol])

    # ---- counters ------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        return {"messages_out": 0, "reconnects": 0, **self.counts}  # counts carries messages_in

    def bad_input(self) -> dict[str, int]:
        return dict(self._bad.counts)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "venue": self.venue, "feed_venue": self.feed_venue, "status": self.status,
                "upstream": self.upstream, "feed_epoch": self.feed_epoch, "symbols": len(self._wanted),
                "waiting": sorted(s for s, t in self._tracks.items() if not t.whole),
                "halted_by_bus": self.halted_by_bus, **self.counts}

    # ---- messages ------------------------------------------------------------------------
    def on_message(self, symbol: str, data: bytes) -> None:
        """One message of ``md.<venue>.<symbol>`` (public: tests and benchmarks feed it bytes)."""
        self.counts["messages_in"] += 1
        try:
            message = wire.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            # changed no state: if it carried a sequence, the next message shows the gap
            self.counts["malformed"] += 1
            self._bad.record("not_msgpack" if isinstance(exc, msgspec.DecodeError) else "bad_field",
                             f"{symbol}: {exc}", data[:64].hex())
            return
        track = self._tracks.get(symbol)
        if track is None:
            return
        if track.recovering:
            if len(track.held) >= self.bus_options.max_held:
                self.counts["held_overflow"] += 1
                track.held.clear()  # the replay's result is stale anyway: wait for a snapshot
                track.whole = False
                track.expected = 0
            track.held.append(message)
            return
        self._apply(symbol, track, message, live=True)

    def _apply(self, symbol: str, track: SymbolTrack, message: wire.Wire, live: bool) -> bool:
        """Deliver ``message`` if it is the next one of a whole book, or a snapshot that makes the
        book whole; otherwise count and (live) start a recovery. True when delivered."""
        snapshot = type(message) is wire.WireBook and message.snapshot
        if message.epoch != track.epoch or not track.whole:
            if snapshot:
                if message.epoch != track.epoch:
                    self.counts["epochs"] += 1
                    track.epoch = message.epoch
                if not track.whole:
                    self.counts["recovered_by_snapshot" if live else "recovered_by_replay"] += 1
                track.whole = True
                track.expected = message.seq + 1
                self._deliver(symbol, message)
                self._health()
                return True
            self.counts["dropped_waiting"] += 1
            if track.whole:  # a new epoch: the old book means nothing now
                track.whole = False
                self.counts["gaps"] += 1
                self._health()
            if live and self.bus_options.recover == "jetstream":
                self._start_recovery(symbol, track, message)
            return False
        if message.seq < track.expected:
            self.counts["duplicates"] += 1
            return False
        if message.seq > track.expected:
            if snapshot:  # a snapshot mends any hole
                self.counts["missed"] += message.seq - track.expected
                track.expected = message.seq + 1
                self._deliver(symbol, message)
                return True
            self.counts["gaps"] += 1
            self.counts["missed"] += message.seq - track.expected
            self.counts["dropped_waiting"] += 1
            track.whole = False
            log.warning("bus venue %s %s: sequence gap (expected %d, got %d)", self.venue, symbol, track.expected,
                        message.seq)
            self._health()
            if live and self.bus_options.recover == "jetstream":
                self._start_recovery(symbol, track, message)
            return False
        track.expected += 1
        self._deliver(symbol, message)
        return True

    def _deliver(self, symbol: str, message: wire.Wire) -> None:
        self.counts["delivered"] += 1
        if isinstance(message, wire.WireBook):
            self.sink.on_book(wire.to_book(self.venue, symbol, message))
        elif isinstance(message, wire.WireTrade):
            self.sink.on_trade(wire.to_trade(self.venue, symbol, message))
        elif self._deliver_status is not None:
            self._deliver_status(wire.to_status(self.venue, symbol, message))

    # ---- recovery ------------------------------------------------------------------------
    def _start_recovery(self, symbol: str, track: SymbolTrack, trigger: wire.Wire | None = None) -> None:
        if track.recovering:
            if trigger is not None:
                track.held.append(trigger)
            return
        now = time.monotonic()
        if trigger is not None and now - track.last_replay < 1.0:
            return  # replayed a moment ago and still not whole: the next snapshot mends it
        track.last_replay = now
        track.recovering = True
        track.held = [] if trigger is None else [trigger]
        self.start_task(self._recover, symbol, track, name=f"bus[{self.venue}] replay {symbol}")

    async def _recover(self, symbol: str, track: SymbolTrack) -> None:
        """Replay the symbol's JetStream window: from the next expected message when the window
        still holds it, else from its last snapshot when that is past the hole; then the messages
        held meanwhile."""
        try:
            window = await self._window(symbol)
        except Exception as exc:  # the replay is an optimisation: the next live snapshot still mends
            log.warning("bus venue %s %s: replay failed (%s); waiting for the next snapshot", self.venue, symbol, exc)
            window = []
        finally:
            track.recovering = False
        held, track.held = track.held, []
        epoch = max((m.epoch for m in (*window, *held)), default=track.epoch)
        window = [m for m in window if m.epoch == epoch]
        if track.epoch == epoch and track.whole is False and track.expected:
            start = next((i for i, m in enumerate(window) if m.seq == track.expected), None)
            if start is not None:
                track.whole = True  # the window holds the missing messages: continue from them
                for message in window[start:]:
                    self.counts["replayed"] += 1
                    self._apply(symbol, track, message, live=False)
                self.counts["recovered_by_replay"] += 1
                window = []
        snaps = [i for i, m in enumerate(window) if type(m) is wire.WireBook and m.snapshot]
        # a snapshot from before the hole leads back to the same hole: replaying it would hand the
        # engine again the book, trades and statuses it already had (a trade counted twice), and
        # end not whole; only a snapshot at or past the hole mends it (else the next live one will)
        if snaps and track.epoch == epoch and window[snaps[-1]].seq < track.expected:
            snaps = []
        if snaps and not track.whole:
            for message in window[snaps[-1]:]:
                self.counts["replayed"] += 1
                self._apply(symbol, track, message, live=False)
        for message in held:
            self._apply(symbol, track, message, live=False)
        self._health()

    async def _window(self, symbol: str) -> list[wire.Wire]:
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE, inactive_threshold=10.0)
        sub = await self._js.pull_subscribe(wire.symbol_subject(self.feed_venue, symbol), durable=None,
                                            stream=wire.stream_name(self.feed_venue), config=config)
        out: list[wire.Wire] = []
        try:
            while True:
                try:
                    batch = await sub.fetch(batch=1000, timeout=2)
                except (NatsTimeout, TimeoutError):
                    break
                for msg in batch:
                    try:
                        out.append(wire.decode(msg.data))
                    except (msgspec.DecodeError, msgspec.ValidationError):
                        self.counts["malformed"] += 1
                if not batch or batch[-1].metadata.num_pending == 0:
                    break
        finally:
            await sub.unsubscribe()
        return out

    # ---- health --------------------------------------------------------------------------
    def _on_heartbeat_data(self, data: bytes) -> None:
        try:
            beat = wire.decode_heartbeat(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.counts["malformed"] += 1
            self._bad.record("bad_heartbeat", str(exc), data[:64].hex())
            return
        self.last_heartbeat = time.monotonic()
        self.upstream = beat.upstream
        self._heard.set()
        self.feed_epoch = beat.epoch
        self._health()

    async def _on_heartbeat(self, msg: Any) -> None:
        self._on_heartbeat_data(msg.data)

    def _health(self) -> None:
        """``connected`` only when the feed is alive, sees its venue, and every book is whole."""
        why = self._why_stale()
        if why is None:
            if self.status != "connected":
                self._report("connected", "feed live, every book whole")
        elif self.status != "connecting" and self.status != "stale" and self.status != "disconnected":
            self._report("stale", why)

    def _why_stale(self) -> str | None:
        if not self.last_heartbeat or time.monotonic() - self.last_heartbeat > float(self.bus_options.stale_seconds):
            return "no heartbeat from the feed"
        if self.upstream != "connected":
            return f"the feed's venue connection is {self.upstream}"
        now = time.monotonic()
        waiting = [s for s in self._wanted
                   if (track := self._tracks.get(s)) is None or (not track.whole and now >= track.loading_until)]
        if waiting:
            return f"book(s) waiting for recovery: {', '.join(sorted(waiting)[:5])}"
        return None

    async def _watchdog(self, stop: anyio.Event) -> None:
        interval = max(0.01, float(self.bus_options.stale_seconds) / 4)
        while not stop.is_set():
            with anyio.move_on_after(interval):
                await stop.wait()
            self._health()

    async def _nats_down(self) -> None:
        self._report("disconnected", "NATS connection lost")

    async def _nats_up(self) -> None:
        self.status = "reconnecting"
        replay = self.bus_options.recover == "jetstream"
        for symbol, track in self._tracks.items():
            track.whole = False  # what was published meanwhile is unknown: replay or snapshot
            if replay:
                self._start_recovery(symbol, track)
        self._health()
        if self.bus_options.account is not None:
            await self._read_kept_halt(self.bus_options.account, "kept in KV while NATS was out of reach")

    def _report(self, status: str, detail: str = "") -> None:
        self.status = status
        self.sink.on_venue_status(self.venue, status, detail)

    # ---- the account's kill switch -------------------------------------------------------
    async def _watch_halt(self, account: str) -> None:
        async def on_halt(msg: Any) -> None:
            self._halt(msg.data.decode("utf-8", "replace"), "broadcast")

        self._subs.append(await self._nc.subscribe(wire.halt_subject(account), cb=on_halt))
        await self._read_kept_halt(account, "kept in KV while this engine was down")

    async def _read_kept_halt(self, account: str, how: str) -> None:
        """The state ``engine halt`` keeps in the KV bucket: read at connect and again after every
        NATS reconnect, because a broadcast published while this engine was cut off never reaches
        it (core NATS keeps no messages for a disconnected subscriber)."""
        try:
            kv = await self._js.key_value(wire.HALT_BUCKET)
            entry = await kv.get(account)
        except Exception:  # no bucket or no key: nobody halted this account
            return
        if entry is not None and entry.value:
            state = entry.value.decode("utf-8", "replace")
            if state != self.halted_by_bus:  # already taken (the broadcast, or the last read)
                self._halt(state, how)

    def _halt(self, state: str, how: str) -> None:
        if state not in ("halted", "reducing"):
            self._bad.record("bad_halt", f"halt.{self.bus_options.account}: unknown state {state[:40]!r}")
            return
        self.halted_by_bus = state
        log.error("bus venue %s: kill switch for account %s -> %s (%s)", self.venue, self.bus_options.account,
                  state, how)
        if self._kill is not None:
            self._kill(state, f"account {self.bus_options.account} kill switch over NATS ({how})")
