"""The CSV readers of ``engine data import`` (engine/history/csvread.py): the documented columns
read exactly, and every bad input refused with FILE:LINE:COLUMN and what is wrong."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from support import REPO

from engine.history.csvread import BAR_COLUMNS, PRINT_COLUMNS, CsvInputError, read_bars, read_prints

BARS_HEADER = "date,symbol,open,high,low,close,volume"
SAMPLE = REPO / "engine" / "history" / "sample" / "psx-daily-sample.csv"


def write(tmp_path: Path, text: str | bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_bars_read_exactly_in_any_column_order_and_case(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeff Symbol ,DATE,Volume,Close,Low,High,Open,ldcp,change\n"
                 "OGDC,2026-11-02,1200,108.40,107.56,109.54,109.29,109.30,-0.90\n\n")
    table = read_bars(path)
    (bar,) = table.rows
    assert (bar.day, bar.symbol) == (dt.date(2026, 11, 2), "OGDC")
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        Decimal("109.29"), Decimal("109.54"), Decimal("107.56"), Decimal("108.40"), Decimal(1200))
    assert str(bar.close) == "108.40"  # the text as written: exact, trailing zero kept
    assert bar.ldcp == Decimal("109.30") and bar.line == 2
    assert table.ignored == ["change"]
    assert table.columns["open"] == 7


def test_the_shipped_sample_reads_and_has_the_documented_columns() -> None:
    table = read_bars(SAMPLE)
    assert SAMPLE.read_text().splitlines()[0] == ",".join((*BAR_COLUMNS, "ldcp"))
    assert {b.symbol for b in table.rows} == {"OGDC", "MEBL", "SYS"}
    assert len(table.rows) == 30 and table.ignored == []


def test_prints_read_with_and_without_offset(tmp_path: Path) -> None:
    path = write(tmp_path, "time,symbol,price,qty,side,trade_id\n"
                 "2026-11-02T10:00:00.250+05:00,OGDC,109.30,500,BUY,t1\n"
                 "2026-11-02T05:00:01Z,OGDC,109.31,100,,t2\n"
                 "2026-11-02 10:00:02,OGDC,109.29,100,sell,\n")
    rows = read_prints(path).rows
    utc = dt.datetime(2026, 11, 2, 5, tzinfo=dt.UTC)
    base = int(utc.timestamp()) * 1_000_000_000
    assert [r.ts - base for r in rows] == [250_000_000, 1_000_000_000, 2_000_000_000]  # naive = Asia/Karachi
    assert [r.side for r in rows] == ["buy", None, "sell"]
    assert [r.trade_id for r in rows] == ["t1", "t2", "in.csv:4"]
    assert rows[0].qty == Decimal(500) and rows[0].price == Decimal("109.30")
    assert read_prints(write(tmp_path, ",".join(PRINT_COLUMNS) + "\n", "empty.csv")).rows == []


@pytest.mark.parametrize("body, where, says", [
    ("2026-11-02,OGDC,109.29,109.54,107.56,108.40", ":2", "6 fields, the header has 7"),
    ("2026-13-02,OGDC,109.29,109.54,107.56,108.40,1", ":2:1", "date: '2026-13-02' is not a date"),
    ("02/11/2026,OGDC,109.29,109.54,107.56,108.40,1", ":2:1", "is not a date YYYY-MM-DD"),
    (",OGDC,109.29,109.54,107.56,108.40,1", ":2:1", "date: empty"),
    ("2026-11-02,OG DC,109.29,109.54,107.56,108.40,1", ":2:2", "symbol: 'OG DC' has characters"),
    ("2026-11-02,OGDC,abc,109.54,107.56,108.40,1", ":2:3", "open: 'abc' is not a plain decimal number"),
    ("2026-11-02,OGDC,1e2,109.54,107.56,108.40,1", ":2:3", "open: '1e2' is not a plain decimal"),
    ("2026-11-02,OGDC,NaN,109.54,107.56,108.40,1", ":2:3", "open: 'NaN' is not a plain decimal"),
    ("2026-11-02,OGDC,0,109.54,107.56,108.40,1", ":2:3", "open: 0 is not a positive price"),
    ("2026-11-02,OGDC,-1.00,109.54,107.56,108.40,1", ":2:3", "open: -1.00 is not a positive price"),
    ("2026-11-02,OGDC,109.295,109.54,107.56,108.40,1", ":2:3", "open: 109.295 is not on the tick 0.01"),
    ("2026-11-02,OGDC,109.29,109.00,107.56,109.40,1", ":2:4", "high: 109.00 is below"),
    ("2026-11-02,OGDC,109.29,109.54,108.50,108.40,1", ":2:5", "low: 108.50 is above"),
    ("2026-11-02,OGDC,109.29,109.54,107.56,108.40,1.5", ":2:7", "volume: 1.5 is not a whole number >= 0"),
    ("2026-11-02,OGDC,109.29,109.54,107.56,108.40,-3", ":2:7", "volume: -3 is not a whole number"),
    ('2026-11-02,OGDC,109.29,109.54,107.56,108.40,"1,200"', ":2:7", "volume: '1,200' is not a plain decimal"),
    ("2026-11-02,OGDC,109.29,109.54,107.56,108.40,1234567890123456789", ":2:7",
     "volume: '1234567890123456789' has more than 18 digits"),
    ("9999-11-02,OGDC,109.29,109.54,107.56,108.40,1", ":2:1", "date: 9999-11-02 is outside 1970-01-02 to 2261-12-31"),
    ("2026-11-02,OGDC,109.29,109.54,107.56,108.40,1\n2026-11-02,OGDC,109.29,109.54,107.56,108.40,1",
     ":3:1", "date: a second bar for OGDC on 2026-11-02 (the first is on line 2)"),
])
def test_every_bad_bar_cell_is_named_by_file_line_and_column(tmp_path: Path, body: str, where: str,
                                                             says: str) -> None:
    path = write(tmp_path, f"{BARS_HEADER}\n{body}\n")
    with pytest.raises(CsvInputError) as caught:
        read_bars(path)
    assert str(caught.value).startswith(f"{path}{where}: "), str(caught.value)
    assert says in str(caught.value)


@pytest.mark.parametrize("text, where, says", [
    (b"", ":1", "empty file: expected a header line with date, symbol"),
    (b"date,symbol,open,high,low,close\n", ":1", "the header lacks column volume"),
    (b"date,symbol,open,open,high,low,close,volume\n", ":1:4", "column 'open' appears twice"),
    (b"date,symbol,open,high,low,close,volume\n2026-11-02,\xff\xfe,1,1,1,1,1\n", ":2", "not UTF-8 text"),
    (b'date,symbol,open,high,low,close,volume\n2026-11-02,"OGDC,1,1,1,1,1\n', ":", "not CSV"),
])
def test_a_bad_file_is_refused_naming_the_file_and_line(tmp_path: Path, text: bytes, where: str, says: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CsvInputError) as caught:
        read_bars(path)
    assert str(caught.value).startswith(f"{path}{where}"), str(caught.value)
    assert says in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CsvInputError, match=r"nope\.csv:0: cannot read"):
        read_bars(tmp_path / "nope.csv")


@pytest.mark.parametrize("row, where, says", [
    ("yesterday,OGDC,109.30,100,,", ":2:1", "time: 'yesterday' is not an ISO 8601 time"),
    ("2026-11-02T10:00:00+05:00,OGDC,109.30,0,,", ":2:4", "qty: 0 is not a whole number > 0"),
    ("2300-01-01T10:00:00+05:00,OGDC,109.30,10,,", ":2:1", "time: '2300-01-01T10:00:00+05:00' is outside"),
    ("2026-11-02T10:00:00+05:00,OGDC,109.301,10,,", ":2:3", "price: 109.301 is not on the tick"),
    ("2026-11-02T10:00:00+05:00,OGDC,109.30,10,short,", ":2:5", "side: 'short' is not buy, sell or empty"),
    ("2026-11-02T10:00:00+05:00,OGDC,109.30,10,,a\n2026-11-02T10:00:01+05:00,OGDC,109.30,10,,a", ":3:6",
     "trade id 'a' of OGDC repeats line 2"),
])
def test_every_bad_print_cell_is_named(tmp_path: Path, row: str, where: str, says: str) -> None:
    path = write(tmp_path, f"time,symbol,price,qty,side,trade_id\n{row}\n")
    with pytest.raises(CsvInputError) as caught:
        read_prints(path)
    assert str(caught.value).startswith(f"{path}{where}: "), str(caught.value)
    assert says in str(caught.value)
