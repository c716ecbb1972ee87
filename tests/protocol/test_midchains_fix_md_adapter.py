"""The ``midchains_fix_md`` adapter end to end on 127.0.0.1: against the MidChains sandbox's
market-data acceptor (a session-level gap, a dropped connection) and against a scripted gateway
(tests/support/midchains_gateway.py) for what the sandbox never sends (an inconsistent X, a
replay from before the logon). Nothing here waits on a timer as proof: every wait is a condition
with a generous timeout."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from support.midchains_fix import CLIENT
from support.midchains_gateway import ScriptedGateway
from support.sinks import RecordingSink

from adapters.midchains.marketdata import MD_PORT, MidChainsMarketData, MidChainsMdOptions
from adapters.midchains.sandbox import MidChainsSandbox
from engine.clock import WallClock
from engine.model import Instrument, Side
from engine.venue.registry import get_adapter

pytestmark = pytest.mark.anyio
D = Decimal
LTC = "LTCUSD"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def options(port: int, tmp_path: Path, **extra: object) -> MidChainsMdOptions:
    given: dict[str, object] = {"heartbeat_s": 1, **extra}
    return MidChainsMdOptions(host="127.0.0.1", port=port, tls=False, sender_comp_id=CLIENT,
                              state_file=tmp_path / "md.sqlite", book_settle_s=D("0.1"), book_settle_max_s=D("0.5"),
                              reconnect_min_s=0.05, reconnect_max_s=0.2, **given)  # type: ignore[arg-type]


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.005)


@contextlib.asynccontextmanager
async def adapter_on(port: int, tmp_path: Path, sink: RecordingSink, **extra: object
                     ) -> AsyncIterator[MidChainsMarketData]:
    async with anyio.create_task_group() as tasks:
        adapter = MidChainsMarketData("midchains", options(port, tmp_path, **extra),
                                      [Instrument(LTC, "midchains", lot_size=D("0.0001"))], WallClock(), sink)
        adapter.bind(tasks)
        try:
            await adapter.connect()
            yield adapter
        finally:
            await adapter.close()
            tasks.cancel_scope.cancel()


async def burst_gateway(tasks: anyio.abc.TaskGroup) -> ScriptedGateway:
    """A scripted gateway, started in ``tasks``, that answers the next logon with ``X_BURST``."""
    gateway = ScriptedGateway()
    gateway.queued = list(X_BURST)
    await gateway.start(tasks)
    return gateway


def matches(sink: RecordingSink, venue: MidChainsSandbox) -> bool:
    book = sink.books.get(LTC)
    bids, asks = venue.depth(LTC)
    return book is not None and (book.bids, book.asks) == (bids, asks)


def test_registered_and_sandbox_run_options_validate() -> None:
    """The engine finds the adapter by name; the options ``engine sandbox midchains --run`` gives it
    validate; clear TCP is refused beyond this machine; the document's port is the default."""
    assert get_adapter("midchains_fix_md") is MidChainsMarketData
    given = {"host": "127.0.0.1", "tls": False, "sender_comp_id": "X1", "target_comp_id": "MIDCDEV1", "port": 44325}
    assert MidChainsMdOptions.model_validate(given).port == MD_PORT == 44325
    with pytest.raises(ValueError, match="only to this machine"):
        MidChainsMdOptions(host="fix-sandbox.midchains.com", tls=False, sender_comp_id="X1")


async def test_sequence_gap_is_filled_without_resync(tmp_path: Path) -> None:
    """The sandbox numbers two X and never sends them: the session's ResendRequest brings them in
    order, the book matches the venue's, one snapshot, no resync."""
    async with MidChainsSandbox() as venue:
        venue.place(LTC, Side.BUY, D(1), D(139))
        venue.place(LTC, Side.SELL, D(1), D(141))
        sink = RecordingSink()
        async with adapter_on(venue.md_port, tmp_path, sink) as adapter:
            adapter.subscribe([LTC])
            await until(lambda: matches(sink, venue))
            venue.gap(2, target="feed", instrument=LTC)
            venue.place(LTC, Side.BUY, D(2), D("138.5"))  # lost on the way
            venue.place(LTC, Side.SELL, D(3), D("141.5"))  # lost on the way
            venue.place(LTC, Side.BUY, D(4), D(138))  # shows the gap
            await until(lambda: matches(sink, venue) and len(sink.books[LTC].bids) == 3)
            assert sink.snapshots(LTC) == 1 and adapter.resyncs == 0 and adapter.bad_input() == {}
            assert sink.statuses() == ["connected"]


async def test_a_dropped_connection_comes_back_with_fresh_books(tmp_path: Path) -> None:
    """A drop: ``disconnected``, then a new logon whose burst is a fresh snapshot (including what
    changed while we were away), then ``connected``."""
    async with MidChainsSandbox() as venue:
        venue.place(LTC, Side.BUY, D(1), D(139))
        sink = RecordingSink()
        async with adapter_on(venue.md_port, tmp_path, sink) as adapter:
            adapter.subscribe([LTC])
            await until(lambda: matches(sink, venue))
            venue.drop(target="feed")
            await until(lambda: "disconnected" in sink.statuses())
            venue.place(LTC, Side.SELL, D(2), D(141))  # while away: only a fresh snapshot carries it
            await until(lambda: sink.statuses()[-1] == "connected" and sink.snapshots(LTC) == 2
                        and matches(sink, venue))
            assert sink.statuses() == ["connected", "disconnected", "connected"]
            assert adapter.resyncs == 0


async def test_trades_are_published_once(tmp_path: Path) -> None:
    """A cross at the venue prints one trade (X 269=2); W's last trade is not a second one."""
    async with MidChainsSandbox() as venue:
        venue.place(LTC, Side.SELL, D(1), D(141))
        sink = RecordingSink()
        async with adapter_on(venue.md_port, tmp_path, sink) as adapter:
            adapter.subscribe([LTC])
            await until(lambda: matches(sink, venue))
            tops = adapter.feed.counters["in_W"]
            venue.place(LTC, Side.BUY, D("0.4"), D(141))
            await until(lambda: len(sink.of("trade")) == 1 and matches(sink, venue))
            await until(lambda: adapter.feed.counters["in_W"] > tops)  # the W with the last trade came too
            (trade,) = sink.of("trade")
            assert (trade.symbol, trade.price, trade.qty) == (LTC, D(141), D("0.4"))
            assert len(sink.of("trade")) == 1 and adapter.feed.last_trade[LTC].price == D(141)


X_BURST = [("X", [(262, "0"), (268, "2"),
                  (279, "0"), (269, "0"), (278, "247697979505377327"), (55, LTC), (270, "120"), (271, "0.1"),
                  (279, "0"), (269, "1"), (278, "247697979505377328"), (55, LTC), (270, "121"), (271, "0.2")])]


async def test_an_inconsistent_x_reports_stale_and_logs_on_again(tmp_path: Path) -> None:
    """A Delete of an id the book does not hold: counted (``unknown_id``), ``stale`` with the
    reason, a Logout and a new logon, whose burst makes the book whole again: ``connected``."""
    async with anyio.create_task_group() as tasks:
        gateway = await burst_gateway(tasks)
        sink = RecordingSink()
        async with adapter_on(gateway.port, tmp_path, sink) as adapter:
            adapter.subscribe([LTC])
            assert sink.books[LTC].bids == [(D(120), D("0.1"))] and sink.books[LTC].asks == [(D(121), D("0.2"))]
            gateway.queued = list(X_BURST)  # what the next logon sends
            await gateway.send("X", [(262, "0"), (268, "1"), (279, "2"), (269, "0"), (278, "NOT-HELD"), (55, LTC)])
            await until(lambda: gateway.logons == 2 and sink.statuses()[-1] == "connected")
            assert sink.statuses() == ["connected", "stale", "connected"]
            assert "book inconsistent" in sink.of("status")[1][2]
            assert adapter.bad_input() == {"unknown_id": 1} and adapter.resyncs == 1
            assert gateway.received("5")  # it logged out before logging on again
            assert sink.snapshots(LTC) == 2 and sink.books[LTC].bids == [(D(120), D("0.1"))]
        await gateway.stop()
        tasks.cancel_scope.cancel()


async def test_replay_from_before_the_logon_is_not_applied(tmp_path: Path) -> None:
    """A PossDup X ahead of the logon burst (the old connection's traffic) is skipped: the book is
    the burst's alone, no resync."""
    async with anyio.create_task_group() as tasks:
        gateway = ScriptedGateway()
        old = ("X", [(43, "Y"), (122, "20210713-14:00:00"), (262, "0"), (268, "1"), (279, "2"), (269, "0"),
                     (278, "FROM-BEFORE"), (55, LTC)])
        gateway.queued = [old, *X_BURST]
        await gateway.start(tasks)
        sink = RecordingSink()
        async with adapter_on(gateway.port, tmp_path, sink) as adapter:
            adapter.subscribe([LTC])
            assert adapter.stats()["replayed_skipped"] == 1 and adapter.resyncs == 0
            assert sink.books[LTC].bids == [(D(120), D("0.1"))]
        await gateway.stop()
        tasks.cancel_scope.cancel()


async def test_silence_is_reported_stale_and_data_brings_it_back(tmp_path: Path) -> None:
    """No frame for ``stale_s``: ``stale``; a frame again: ``connected``."""
    async with anyio.create_task_group() as tasks:
        gateway = await burst_gateway(tasks)
        sink = RecordingSink()
        async with adapter_on(gateway.port, tmp_path, sink, stale_s=0.3, heartbeat_s=30) as adapter:
            adapter.subscribe([LTC])
            gateway.answer_test_requests = False  # silent from now on: no Heartbeat, no answer
            await until(lambda: "stale" in sink.statuses())
            await gateway.send("X", [(262, "0"), (268, "1"), (279, "0"), (269, "0"), (278, "N1"), (55, LTC),
                                     (270, "119"), (271, "1")])
            await until(lambda: sink.statuses()[-1] == "connected")
            assert sink.statuses()[:3] == ["connected", "stale", "connected"]
            assert sink.books[LTC].bids == [(D(120), D("0.1")), (D(119), D(1))]
        await gateway.stop()
        tasks.cancel_scope.cancel()


async def test_wire_counters_outlive_the_link(tmp_path: Path) -> None:
    """The run report reads ``stats()`` after ``close()``: the counters of the links left behind
    (closed, or replaced by a resync) stay in it."""
    async with anyio.create_task_group() as tasks:
        gateway = await burst_gateway(tasks)
        sink = RecordingSink()
        async with adapter_on(gateway.port, tmp_path, sink) as adapter:
            adapter.subscribe([LTC])
        stats = adapter.stats()
        assert stats["messages_in"] >= 3 and stats["messages_out"] >= 2 and stats["reconnects"] == 0
        await gateway.stop()
        tasks.cancel_scope.cancel()


async def test_a_resync_without_a_state_file_logs_on_with_the_days_numbers(tmp_path: Path) -> None:
    """Issue 23 finding 7: with no ``state_file`` (sequence numbers in memory) a resync's new link
    keeps the same store: its Logon goes on from the session's numbers, not 34=1 (which a gateway
    that remembers the day's numbers answers with a Logout)."""
    async with anyio.create_task_group() as tasks:
        gateway = await burst_gateway(tasks)
        sink = RecordingSink()
        opts = MidChainsMdOptions(host="127.0.0.1", port=gateway.port, tls=False, sender_comp_id=CLIENT,
                                  heartbeat_s=1, book_settle_s=D("0.1"), book_settle_max_s=D("0.5"),
                                  reconnect_min_s=0.05, reconnect_max_s=0.2)
        assert opts.state_file is None
        adapter = MidChainsMarketData("midchains", opts, [Instrument(LTC, "midchains", lot_size=D("0.0001"))],
                                      WallClock(), sink)
        adapter.bind(tasks)
        await adapter.connect()
        adapter.subscribe([LTC])
        gateway.queued = list(X_BURST)
        await gateway.send("X", [(262, "0"), (268, "1"), (279, "2"), (269, "0"), (278, "NOT-HELD"), (55, LTC)])
        await until(lambda: gateway.logons == 2 and sink.statuses()[-1] == "connected")
        first, second = gateway.received("A")
        assert int(second.fields[34]) > int(first.fields[34])
        await adapter.close()
        await gateway.stop()
        tasks.cancel_scope.cancel()


async def test_inbound_numbers_skipped_during_the_session_resync_the_books(tmp_path: Path) -> None:
    """Issue 23 finding 6: the gateway gap-fills three numbers during the session (our ResendRequest
    answered by a SequenceReset-GapFill): any of them may have been a book update, so the books are
    rebuilt: stale, a new logon, fresh books, connected."""
    async with anyio.create_task_group() as tasks:
        gateway = await burst_gateway(tasks)
        sink = RecordingSink()
        async with adapter_on(gateway.port, tmp_path, sink) as adapter:
            adapter.subscribe([LTC])
            gateway.queued = list(X_BURST)  # what the next logon sends
            gateway.skip(3)
            await gateway.send("0", [])
            await until(lambda: gateway.logons == 2 and sink.statuses()[-1] == "connected")
            assert sink.statuses() == ["connected", "stale", "connected"] and adapter.resyncs == 1
            assert "skipped" in sink.of("status")[1][2]
            assert adapter.stats()["skipped_messages"] == 3
            assert sink.snapshots(LTC) == 2
        await gateway.stop()
        tasks.cancel_scope.cancel()
