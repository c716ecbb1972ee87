"""The recording format (issue 26): exact decimals, partitioning, replay order, hostile values."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.model import BookUpdate, InstrumentStatus, Phase, SessionState, Side, Trade
from engine.recording.format import (
    SESSION_SYMBOL,
    Writer,
    files,
    join_decimal,
    read_events,
    split_decimal,
)

DAY1 = 1_700_000_000_000_000_000  # 2023-11-14 22:13 UTC
DAY2 = DAY1 + 86_400 * 10**9

decimals = st.decimals(allow_nan=False, allow_infinity=False, min_value=Decimal("-1e12"), max_value=Decimal("1e12"),
                       places=None).filter(lambda d: len(d.as_tuple().digits) <= 18)


@given(decimals)
def test_split_join_keeps_value_and_text(value: Decimal) -> None:
    back = join_decimal(*split_decimal(value))
    assert back == value
    if value or not value.is_signed():
        assert str(back) == str(value)


def test_a_coefficient_beyond_int64_is_refused_not_rounded() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        split_decimal(Decimal("12345678901234567890.5"))
    with pytest.raises(ValueError, match="non-finite"):
        split_decimal(Decimal("NaN"))


def test_round_trip_is_exact_and_ordered(tmp_path: Path) -> None:
    events = [
        ("psx", "OGDC", BookUpdate("psx", "OGDC", 10, 1, ((Side.BUY, Decimal("101.50"), Decimal("500")),
                                                            (Side.SELL, Decimal("101.6"), Decimal("0"))), True)),
        ("pulse", "BTC-USDT", Trade("pulse", "BTC-USDT", 11, Decimal("43000.12"), Decimal("0.00000001"),
                                    Side.SELL, "t-1")),
        ("psx", "OGDC", InstrumentStatus("psx", "OGDC", 12, halted=False, reason="resumed",
                                          reference_price=Decimal("100.00"), closing_price=None)),
        ("psx", "OGDC", BookUpdate("psx", "OGDC", 13, 2, (), snapshot=True)),
        ("psx", SESSION_SYMBOL, SessionState(phase=Phase.OPEN, accepts_new=True, trading_day="2023-11-15",
                                             flags={"x": 1})),
        ("psx", "OGDC", Trade("psx", "OGDC", 14, Decimal("101.55"), Decimal("100"), None, "")),
    ]
    writer = Writer(tmp_path, run="r1")
    for seq, (venue, symbol, event) in enumerate(events):
        writer.add(venue, symbol, seq, DAY1 + seq, event)
    writer.flush()
    back = list(read_events(tmp_path))
    assert [e.seq for e in back] == list(range(len(events)))
    for rec, (venue, symbol, event) in zip(back, events, strict=True):
        assert (rec.venue, rec.symbol) == (venue, symbol)
        assert repr(rec.event) == repr(event)
        if isinstance(event, BookUpdate):
            assert [tuple(map(str, c)) for c in rec.event.changes] == [tuple(map(str, c)) for c in event.changes]
            assert (rec.event.ts, rec.event.seq, rec.event.snapshot) == (event.ts, event.seq, event.snapshot)
        elif isinstance(event, Trade):
            assert (str(rec.event.price), str(rec.event.qty), rec.event.aggressor, rec.event.ts) == (
                str(event.price), str(event.qty), event.aggressor, event.ts)
        else:
            assert rec.event == event


def test_partitioned_by_venue_symbol_and_utc_date(tmp_path: Path) -> None:
    writer = Writer(tmp_path, run="r1")
    writer.add("psx", "OGDC", 0, DAY1, Trade("psx", "OGDC", 0, Decimal("1"), Decimal("1"), None, "a"))
    writer.add("psx", "OGDC", 1, DAY2, Trade("psx", "OGDC", 0, Decimal("2"), Decimal("1"), None, "b"))
    writer.add("psx", "HBL", 2, DAY2, Trade("psx", "HBL", 0, Decimal("3"), Decimal("1"), None, "c"))
    writer.flush()
    rel = sorted(str(p.relative_to(tmp_path).parent) for _, _, p in files(tmp_path))
    assert rel == ["venue=psx/symbol=HBL/date=2023-11-15", "venue=psx/symbol=OGDC/date=2023-11-14",
                   "venue=psx/symbol=OGDC/date=2023-11-15"]
    import datetime as dt
    only = [e.event.trade_id for e in read_events(tmp_path, symbols=["OGDC"], start=dt.date(2023, 11, 15))]
    assert only == ["b"]


def test_two_runs_into_one_root_do_not_overwrite(tmp_path: Path) -> None:
    for run in ("a", "b"):
        writer = Writer(tmp_path, run=run)
        writer.add("psx", "OGDC", 0, DAY1, Trade("psx", "OGDC", 0, Decimal("1"), Decimal("1"), None, run))
        writer.flush()
    assert sorted(e.event.trade_id for e in read_events(tmp_path)) == ["a", "b"]


def test_hostile_partition_names_are_refused(tmp_path: Path) -> None:
    writer = Writer(tmp_path, run="r")
    with pytest.raises(ValueError, match="cannot name a recording partition"):
        writer.add("psx", "../etc", 0, DAY1, Trade("psx", "x", 0, Decimal("1"), Decimal("1"), None, ""))


def test_missing_root_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no recording at"):
        list(read_events(tmp_path / "nope"))


def test_run_record_without_pyarrow_fails_at_config_load_with_the_install_line(monkeypatch) -> None:
    import sys

    from pydantic import ValidationError

    from engine.config.schema import RunConfig

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    with pytest.raises(ValidationError, match=r"psx-strategy-engine\[record\]"):
        RunConfig.model_validate({"record": "rec"})
    assert RunConfig.model_validate({}).record is None  # a run that records nothing never needs it
