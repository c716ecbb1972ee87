"""The replay venue on its own (adapters/replay/adapter.py): recorded events arrive at their
receive times, latency applies both ways, and a resting order fills as the recorded prints reach
it behind the displayed size."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest

from adapters.replay.adapter import ReplayAdapter, ReplayOptions
from engine.clock import SimClock
from engine.model import (
    BookUpdate,
    Instrument,
    Order,
    OrderStatus,
    Phase,
    SessionState,
    Side,
    Trade,
)
from engine.recording.format import Writer

T0 = 1_763_870_400_000_000_000  # 2025-11-23 04:00 UTC, 09:00 in Karachi
MS = 1_000_000
D = Decimal


class Sink:
    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.calls: list[tuple[int, str, Any]] = []

    def _add(self, kind: str, item: Any) -> None:
        self.calls.append((self.clock.now_ns(), kind, item))

    def on_book(self, update: Any) -> None:
        self._add("book", update)

    def on_trade(self, trade: Any) -> None:
        self._add("trade", trade)

    def on_order_update(self, update: Any) -> None:
        self._add("order", update)

    def on_fill(self, fill: Any) -> None:
        self._add("fill", fill)

    def on_instrument_status(self, status: Any) -> None:
        self._add("status", status)

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None:
        self._add("venue", status)

    def on_account_event(self, event: Any) -> None:
        self._add("account", event)


def recording(folder: Path) -> Path:
    writer = Writer(folder, run="t")
    events = [
        (T0, BookUpdate("psx", "OGDC", T0, 1, ((Side.BUY, D("100.00"), D("300")),
                                                 (Side.SELL, D("100.10"), D("200"))), True)),
        (T0 + 1000 * MS, Trade("psx", "OGDC", T0, D("100.00"), D("250"), Side.SELL, "t1")),
        (T0 + 1000 * MS, BookUpdate("psx", "OGDC", T0, 2, ((Side.BUY, D("100.00"), D("50")),))),
        (T0 + 2000 * MS, Trade("psx", "OGDC", T0, D("100.00"), D("120"), Side.SELL, "t2")),
    ]
    for seq, (recv, event) in enumerate(events):
        writer.add("psx", "OGDC", seq, recv, event)
    writer.flush()
    return folder


def venue(tmp_path: Path, latency_ms: str = "0") -> tuple[ReplayAdapter, SimClock, Sink]:
    clock = SimClock(T0 - 60_000 * MS)
    sink = Sink(clock)
    instrument = Instrument(symbol="OGDC", venue="psx", tick_size=D("0.01"), lot_size=D(1),
                            previous_close=D("100.00"))
    options = ReplayOptions(path=recording(tmp_path / "rec"), latency_ms=D(latency_ms))
    adapter = ReplayAdapter("psx", options, [instrument], clock, sink)
    anyio.run(adapter.connect)
    adapter.subscribe(["OGDC"])
    adapter.on_session(SessionState(Phase.OPEN, True, True, True, "2025-11-23"))
    return adapter, clock, sink


def run_until(clock: SimClock, when: int) -> None:
    while clock.advance(when):
        pass


def test_recorded_events_arrive_at_their_receive_times(tmp_path: Path) -> None:
    _, clock, sink = venue(tmp_path)
    run_until(clock, T0 + 3000 * MS)
    market = [(t, kind) for t, kind, _ in sink.calls if kind in ("book", "trade")]
    assert market == [(T0, "book"), (T0 + 1000 * MS, "trade"), (T0 + 1000 * MS, "book"), (T0 + 2000 * MS, "trade")]


def test_latency_applies_both_ways_and_the_queue_decides_the_fill(tmp_path: Path) -> None:
    adapter, clock, sink = venue(tmp_path, latency_ms="50")
    run_until(clock, T0 + 500 * MS)
    order = Order("c1", "s", "psx", "OGDC", Side.BUY, D("100"), D("100.00"))
    sent = clock.now_ns()
    adapter.submit(order)
    run_until(clock, T0 + 3000 * MS)
    acks = [(t, u) for t, kind, u in sink.calls if kind == "order" and u.status is OrderStatus.NEW]
    assert acks and acks[0][0] == sent + 100 * MS  # 50 ms to the venue, 50 ms back
    fills = [(t, f) for t, kind, f in sink.calls if kind == "fill"]
    # behind 300: the first print (250) leaves 50 ahead, the shrink to 50 keeps them ahead of us,
    # the second (120) takes those 50 and 70 of ours; each fill is told 50 ms after the print
    assert [(t, f.qty, f.price) for t, f in fills] == [(T0 + 2050 * MS, D("70"), D("100.00"))]


def test_a_recording_missing_is_refused_at_the_option(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no recording there"):
        ReplayOptions(path=tmp_path / "none")
