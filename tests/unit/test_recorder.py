"""The recorder (engine/recording/recorder.py): what the sink records and forwards, and a disk
that refuses the write is counted and logged, never raised into the engine."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.model import BookUpdate, InstrumentStatus, Phase, SessionState, Side, Trade
from engine.recording.format import read_events
from engine.recording.recorder import Recorder


class Runtime:
    """Stands for the runtime: every call it gets, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_book(self, update: Any) -> None:
        self.calls.append(("book", update))

    def on_trade(self, trade: Any) -> None:
        self.calls.append(("trade", trade))

    def on_instrument_status(self, status: Any) -> None:
        self.calls.append(("status", status))

    def on_order_update(self, update: Any) -> None:
        self.calls.append(("order", update))

    def on_fill(self, fill: Any) -> None:
        self.calls.append(("fill", fill))

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None:
        self.calls.append(("venue", status))

    def on_account_event(self, event: Any) -> None:
        self.calls.append(("account", event))

    def something_else(self) -> str:
        return "the runtime's"


def test_the_sink_records_market_data_and_forwards_everything(tmp_path: Path) -> None:
    clock = iter(range(1_700_000_000_000_000_000, 1_700_000_000_000_001_000))
    recorder = Recorder(tmp_path, lambda: next(clock))
    runtime = Runtime()
    sink = recorder.sink(runtime, "psx")
    book = BookUpdate("psx", "OGDC", 1, 1, ((Side.BUY, Decimal("100.10"), Decimal("5")),), True)
    trade = Trade("psx", "OGDC", 2, Decimal("100.10"), Decimal("1"), Side.SELL, "t1")
    status = InstrumentStatus("psx", "OGDC", 3, halted=True, reason="halt")
    recorder.start()
    sink.on_book(book)
    sink.on_trade(trade)
    sink.on_instrument_status(status)
    sink.on_order_update("u")
    sink.on_fill("f")
    sink.on_venue_status("psx", "connected")
    sink.on_account_event("a")
    recorder.record_session(["psx"], SessionState(phase=Phase.OPEN, trading_day="2023-11-14"))
    assert sink.something_else() == "the runtime's"  # a listener's optional hook is the runtime's
    recorder.close()
    assert [kind for kind, _ in runtime.calls] == ["book", "trade", "status", "order", "fill", "venue", "account"]
    recorded = list(read_events(tmp_path))
    assert [type(r.event).__name__ for r in recorded] == ["BookUpdate", "Trade", "InstrumentStatus", "SessionState"]
    assert [r.recv_ns for r in recorded] == sorted(r.recv_ns for r in recorded)
    assert recorder.stats()["events"] == 4 and recorder.errors == 0


def test_a_write_that_fails_is_counted_and_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    recorder = Recorder(blocked / "rec", lambda: 1_700_000_000_000_000_000)
    recorder.record("psx", "OGDC", Trade("psx", "OGDC", 0, Decimal("1"), Decimal("1"), None, "x"))
    recorder.close()  # never started: close drains and writes what is queued
    assert recorder.errors == 1
    assert "recording: cannot write" in caplog.text and "1 rows could not be written" in caplog.text


def test_rows_a_failed_write_kept_are_written_by_the_next(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "rec", lambda: 1_700_000_000_000_000_000)
    (tmp_path / "rec").write_text("in the way")  # the folder cannot be made: the write fails
    recorder.record("psx", "OGDC", Trade("psx", "OGDC", 0, Decimal("1"), Decimal("1"), None, "kept"))
    recorder.flush()  # the writer thread's step, here without the thread
    assert recorder.errors == 1 and recorder.writer.pending_rows == 1
    (tmp_path / "rec").unlink()
    recorder.close()
    assert [r.event.trade_id for r in read_events(tmp_path / "rec")] == ["kept"]


def test_a_value_the_format_cannot_hold_is_dropped_and_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(tmp_path, lambda: 1_700_000_000_000_000_000)
    recorder.record("psx", "OGDC", Trade("psx", "OGDC", 0, Decimal("NaN"), Decimal("1"), None, "x"))
    recorder.record("psx", "OGDC", Trade("psx", "OGDC", 0, Decimal("1"), Decimal("1"), None, "kept"))
    recorder.close()
    assert recorder.errors == 1 and "dropped an event of psx OGDC" in caplog.text
    assert [r.event.trade_id for r in read_events(tmp_path)] == ["kept"]
