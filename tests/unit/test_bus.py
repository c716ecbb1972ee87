"""The bus wire (engine/bus/wire.py) and the bus adapter's sequence rules, without a NATS server:
exact decimals, hostile bytes, and no delta ever delivered over a hole or across feed epochs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.bus_configs import engine_config, feed_config, psx_config

from adapters.bus.adapter import BusMarketData, BusOptions
from engine.clock import WallClock
from engine.model import BookUpdate, Side, Trade
from engine.venue import buswire as wire


class Sink:
    def __init__(self) -> None:
        self.books: list[BookUpdate] = []
        self.trades: list[Trade] = []
        self.statuses: list[str] = []

    def on_book(self, update: BookUpdate) -> None:
        self.books.append(update)

    def on_trade(self, trade: Trade) -> None:
        self.trades.append(trade)

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None:
        self.statuses.append(status)


def book(epoch: int, seq: int, snapshot: bool = False, price: str = "109.30") -> bytes:
    update = BookUpdate("psx", "OGDC", 1, 0, ((Side.BUY, Decimal(price), Decimal("500")),), snapshot)
    return wire.encode(wire.book_wire(update, epoch, seq, 0))


def adapter() -> tuple[BusMarketData, Sink]:
    sink = Sink()
    bus = BusMarketData("psx", BusOptions(recover="snapshot"), [], WallClock(), sink)
    bus.subscribe(["OGDC"])
    bus.track("OGDC")
    return bus, sink


def test_decimals_cross_the_wire_exactly() -> None:
    update = BookUpdate("psx", "OGDC", 5, 9, ((Side.SELL, Decimal("109.3000001"), Decimal("0.00000001")),), True)
    back = wire.to_book("psx", "OGDC", wire.decode(wire.encode(wire.book_wire(update, 1, 2, 3))))  # type: ignore[arg-type]
    assert back.changes == update.changes and str(back.changes[0][1]) == "109.3000001"
    assert back.snapshot and back.seq == 9


def test_names_that_would_split_a_subject_are_refused() -> None:
    with pytest.raises(wire.BadSubjectToken, match=r"symbol 'OG\.DC'"):
        wire.symbol_subject("psx", "OG.DC")
    with pytest.raises(wire.BadSubjectToken, match="account"):
        wire.halt_subject("a>")


def test_a_gap_stops_the_book_until_a_snapshot_mends_it() -> None:
    bus, sink = adapter()
    bus.on_message("OGDC", book(7, 1))  # no snapshot yet: nothing to apply it to
    assert sink.books == []
    bus.on_message("OGDC", book(7, 2, snapshot=True))
    bus.on_message("OGDC", book(7, 3))
    bus.on_message("OGDC", book(7, 5))  # 4 is missing
    bus.on_message("OGDC", book(7, 6))
    assert [b.snapshot for b in sink.books] == [True, False]
    assert bus.counts["gaps"] == 1 and bus.counts["missed"] == 1 and bus.counts["dropped_waiting"] == 3
    bus.on_message("OGDC", book(7, 7, snapshot=True))
    bus.on_message("OGDC", book(7, 8))
    assert [b.snapshot for b in sink.books] == [True, False, True, False]
    assert bus.counts["recovered_by_snapshot"] == 2


def test_a_restarted_feed_is_a_new_book_and_duplicates_are_dropped() -> None:
    bus, sink = adapter()
    bus.on_message("OGDC", book(7, 1, snapshot=True))
    bus.on_message("OGDC", book(7, 1, snapshot=True))  # a replayed duplicate
    bus.on_message("OGDC", book(8, 1))  # new epoch, seq 1 again: not a continuation
    assert len(sink.books) == 1 and bus.counts["duplicates"] == 1
    bus.on_message("OGDC", book(8, 2, snapshot=True))
    bus.on_message("OGDC", book(8, 3))
    assert len(sink.books) == 3 and bus.counts["epochs"] == 2


def test_hostile_bytes_are_counted_and_change_nothing() -> None:
    bus, sink = adapter()
    bus.on_message("OGDC", book(7, 1, snapshot=True))
    bus.on_message("OGDC", b"\xc1garbage")
    bus.on_message("OGDC", wire.encode(wire.Heartbeat(1, 2, "connected", 3)))  # valid msgpack, wrong shape
    bus.on_message("OGDC", book(7, 2))
    assert len(sink.books) == 2 and bus.counts["malformed"] == 2
    assert sum(bus.bad_input().values()) == 2


def test_halt_with_nats_down_still_signals_the_local_engine_and_says_so(tmp_path) -> None:
    import signal
    import socket
    import subprocess
    import sys

    from engine.app import pid_file_for
    from engine.cli import main

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = engine_config(tmp_path, f'nats_url: "nats://127.0.0.1:{port}", account: desk1')
    engine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        pid_file_for(config).write_text(f"{engine.pid}\n")
        assert main(["halt", str(config)]) == 1
        assert engine.wait(30) == -signal.SIGUSR1  # the local kill switch still went
    finally:
        engine.kill()
        engine.wait(30)


def test_the_feed_never_snapshots_a_book_from_before_its_venue_reconnected() -> None:
    from engine.bus.feed import Publisher

    publisher = Publisher("psx", 7)
    level = ((Side.BUY, Decimal("109.30"), Decimal("500")),)
    publisher.on_book(BookUpdate("psx", "OGDC", 1, 1, level, True))
    publisher.on_venue_status("psx", "connected")
    publisher.snapshot_all()
    assert publisher.snapshots == 1 and wire.decode_heartbeat(publisher.heartbeat()).upstream == "connected"
    publisher.on_venue_status("psx", "disconnected", "connection lost")
    publisher.on_venue_status("psx", "connected", "reconnected")
    publisher.on_book(BookUpdate("psx", "OGDC", 2, 2, level))  # a delta before the venue's snapshot
    publisher.snapshot_all()
    assert publisher.snapshots == 1  # the old book is not re-published as current
    assert wire.decode_heartbeat(publisher.heartbeat()).upstream == "resyncing"  # engines stay stale
    publisher.on_book(BookUpdate("psx", "OGDC", 3, 3, level, True))
    publisher.snapshot_all()
    assert publisher.snapshots == 2 and wire.decode_heartbeat(publisher.heartbeat()).upstream == "connected"


def _config(tmp_path, name: str, venue_block: str):
    from engine.config import load_config

    return load_config(psx_config(tmp_path, name, venue_block))


def test_static_shares_are_checked_against_the_whole_account(tmp_path) -> None:
    from engine.bus.allocation import check_allocation

    account = _config(tmp_path, "feed", """\
    account: {cash: 3000000, holdings: {OGDC: 1000}}
    rate_limits: [{scope: orders, count: 30, per_seconds: 10, burst: 6}]""")
    share = """\
    account: {cash: 1000000, holdings: {OGDC: 400}}
    rate_limits: [{scope: orders, count: 1, burst: 2}]"""
    two = [_config(tmp_path, f"e{i}", share) for i in (1, 2)]
    assert check_allocation(account, two) == []
    problems = check_allocation(account, [*two, _config(tmp_path, "e3", share)])
    assert any("holdings.OGDC add up to 1200" in p for p in problems)
    assert not any("cash" in p for p in problems)  # 3,000,000 of 3,000,000: exactly the account
    greedy = _config(tmp_path, "e4", "    account: {cash: 1000000}")
    problems = check_allocation(account, [*two, greedy])
    assert any("e4.yaml states no rate_limits" in p for p in problems)
    fast = _config(tmp_path, "e5", "    account: {cash: 0}\n    rate_limits: [{scope: orders, count: 2, burst: 2}]")
    assert any("orders rate_limits add up to 4/s, the account's budget is 3/s" in p
               for p in check_allocation(account, [*two, fast]))


def test_a_well_formed_message_with_a_bad_side_or_number_is_refused_not_raised() -> None:
    """msgspec read any string as a side and "NaN" as a Decimal: a side that is not buy/sell raised a
    KeyError out of the NATS callback after the book was marked whole, and a NaN price reached it."""
    bus, sink = adapter()
    bus.on_message("OGDC", book(7, 1, snapshot=True))
    bad_side = wire.WireBook(7, 2, 0, 0, False, 2, [("x", Decimal(1), Decimal(1))])  # type: ignore[list-item]
    nan_price = wire.WireBook(7, 2, 0, 0, False, 2, [("buy", Decimal("NaN"), Decimal(1))])
    for message in (bad_side, nan_price):
        bus.on_message("OGDC", wire.encode(message))
    assert len(sink.books) == 1 and bus.counts["malformed"] == 2


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_any_bytes_are_counted_never_raised(data: bytes) -> None:
    bus, sink = adapter()
    bus.on_message("OGDC", book(7, 1, snapshot=True))
    bus.on_message("OGDC", data)
    assert all(price.is_finite() for update in sink.books for _, price, _ in update.changes)


def test_engine_feed_with_nats_unreachable_says_one_line_and_exits_1(tmp_path, capsys, monkeypatch) -> None:
    """A feed that cannot reach NATS (or whose venue refuses it) says so in one line naming the
    server, as every other start-up refusal does, not with the task group's traceback."""
    import socket

    from engine.cli import main

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = feed_config(tmp_path, port, token_env="FEED_TEST_TOKEN")
    monkeypatch.setenv("FEED_TEST_TOKEN", "feed-test-token-0b1e")
    assert main(["feed", str(config), "--nats", f"nats://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert f"cannot connect to NATS at nats://127.0.0.1:{port}" in err
    assert "Traceback" not in err and "ExceptionGroup" not in err
