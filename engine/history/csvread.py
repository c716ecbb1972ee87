"""The CSV files ``engine data import`` reads: PSX daily bars (OHLCV) and trade prints.

Both are UTF-8 (a byte-order mark is allowed), comma-separated, one header line naming the
columns (any order, any case, surrounding spaces ignored). Columns not listed here are ignored
and named in the import's summary. Numbers are plain decimals (``187.50``, ``1200``): no
thousands separators, no exponents, at most 18 digits (what the recording holds exactly), so an
amount is read exactly as written. Days and times fall between 1970 and 2261 (int64 ns).

Daily bars (``--kind bars``)::

    date,symbol,open,high,low,close,volume[,ldcp]

- ``date``: the trading day, ``YYYY-MM-DD``;
- ``symbol``: the PSX symbol (letters, digits, ``.``, ``_``, ``-``), e.g. ``OGDC``;
- ``open``, ``high``, ``low``, ``close``: prices in PKR, positive, on the tick (``--tick-size``,
  default 0.01), with ``low <= open, close <= high``;
- ``volume``: shares traded that day, a whole number >= 0;
- ``ldcp`` (optional): the last day's closing price, the reference of the day's circuit band; when
  absent the previous bar's close of the same symbol in the file is used (none for the first).

Trade prints (``--kind trades``)::

    time,symbol,price,qty[,side][,trade_id]

- ``time``: ISO 8601, e.g. ``2025-03-04T10:15:02.250+05:00``; a time without an offset is local
  PSX time (Asia/Karachi);
- ``price`` positive on the tick, ``qty`` a whole number > 0;
- ``side`` (optional): the aggressor, ``buy`` or ``sell`` (empty: not known);
- ``trade_id`` (optional): unique per symbol; when absent ``<file>:<line>``.

Bad input is refused whole with :class:`CsvInputError`: ``FILE:LINE:COLUMN: what is wrong``
(COLUMN is the 1-based field number, with the column's name), and nothing is imported.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

from engine.progress import Progress

#: makes the progress of reading one file: (label, total lines, unit) -> Progress
ProgressFactory = Callable[[str, int, str], Progress]

__all__ = ["Bar", "CsvInputError", "Print", "Table", "read_bars", "read_prints", "BAR_COLUMNS", "PRINT_COLUMNS"]

BAR_COLUMNS = ("date", "symbol", "open", "high", "low", "close", "volume")
BAR_OPTIONAL = ("ldcp",)
PRINT_COLUMNS = ("time", "symbol", "price", "qty")
PRINT_OPTIONAL = ("side", "trade_id")
PSX_TZ = ZoneInfo("Asia/Karachi")
_SYMBOL = re.compile(r"^[A-Za-z0-9._\-]+$")  # what a recording partition can be named
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
#: the recording keeps a number as an int64 coefficient (engine.recording.format): 18 digits always fit
MAX_DIGITS = 18
#: the recording's times are int64 ns since 1970, which end in 2262
FIRST_DAY, LAST_DAY = dt.date(1970, 1, 2), dt.date(2261, 12, 31)


class CsvInputError(ValueError):
    """One thing wrong with an input file, located: ``FILE:LINE:COLUMN: message``."""

    def __init__(self, path: Path | str, line: int, column: int | None, message: str) -> None:
        self.path, self.line, self.column = Path(path), line, column
        where = f"{path}:{line}" + (f":{column}" if column is not None else "")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Bar:
    """One daily bar, exact as written."""

    line: int
    day: dt.date
    symbol: str
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    ldcp: Decimal | None


@dataclass(frozen=True, slots=True)
class Print:
    """One trade print; ``ts`` in ns since the epoch (UTC)."""

    line: int
    ts: int
    symbol: str
    price: Decimal
    qty: Decimal
    side: str | None
    trade_id: str


class _Rows:
    """The rows of one CSV file with the header resolved: ``cell(row, name)`` and located errors."""

    def __init__(self, path: Path, required: tuple[str, ...], optional: tuple[str, ...],
                 progress: ProgressFactory | None = None) -> None:
        self.path = path
        self.progress: Progress | None = None
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CsvInputError(path, 0, None, f"cannot read: {exc.strerror or exc}") from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b"\n") + 1
            column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            raise CsvInputError(path, line, None, f"not UTF-8 text (byte {column} of the line)") from None
        self.reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        if progress is not None:
            lines = text.count("\n") + (0 if text.endswith("\n") else 1) - 1  # rows after the header
            self.progress = progress(f"read {path.name}", max(lines, 1), "rows")
        try:
            header = next(self.reader, None)
        except csv.Error as exc:
            raise CsvInputError(path, 1, None, f"not CSV: {exc}") from None
        if header is None or not any(h.strip() for h in header):
            raise CsvInputError(path, 1, None, f"empty file: expected a header line with {', '.join(required)}")
        names = [h.strip().lower() for h in header]
        self.index: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in self.index and name in required + optional:
                raise CsvInputError(path, 1, i + 1, f"column {name!r} appears twice in the header")
            self.index.setdefault(name, i)
        missing = [name for name in required if name not in self.index]
        if missing:
            raise CsvInputError(path, 1, None, f"the header lacks column{'s' if len(missing) > 1 else ''} "
                                f"{', '.join(missing)} (it has: {', '.join(names)}; expected "
                                f"{', '.join(required)}[, {', '.join(optional)}])")
        self.ignored = [n for n in names if n and n not in required + optional]
        self.width = len(header)

    def __iter__(self):  # type: ignore[no-untyped-def]
        bar = self.progress
        while True:
            try:
                row = next(self.reader)
            except StopIteration:
                if bar is not None:
                    bar.close()
                return
            except csv.Error as exc:
                raise CsvInputError(self.path, self.reader.line_num, None, f"not CSV: {exc}") from None
            if bar is not None:
                bar.advance()
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line
            if len(row) != self.width:
                raise CsvInputError(self.path, self.reader.line_num, None,
                                    f"{len(row)} fields, the header has {self.width}")
            yield self.reader.line_num, row

    def fail(self, line: int, name: str, message: str) -> CsvInputError:
        return CsvInputError(self.path, line, self.index[name] + 1, f"{name}: {message}")

    def text(self, line: int, row: list[str], name: str, required: bool = True) -> str:
        value = row[self.index[name]].strip() if name in self.index else ""
        if required and not value:
            raise self.fail(line, name, "empty")
        return value

    def number(self, line: int, row: list[str], name: str) -> Decimal:
        value = self.text(line, row, name)
        if not _PLAIN_NUMBER.match(value):
            raise self.fail(line, name, f"{value!r} is not a plain decimal number")
        try:
            number = Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern admits only what Decimal reads
            raise self.fail(line, name, f"{value!r} is not a number") from None
        if len(number.as_tuple().digits) > MAX_DIGITS:
            raise self.fail(line, name, f"{value!r} has more than {MAX_DIGITS} digits")
        return number

    def price(self, line: int, row: list[str], name: str, tick: Decimal) -> Decimal:
        value = self.number(line, row, name)
        if value <= 0:
            raise self.fail(line, name, f"{value} is not a positive price")
        if value % tick:
            raise self.fail(line, name, f"{value} is not on the tick {tick}")
        return value

    def count(self, line: int, row: list[str], name: str, positive: bool) -> Decimal:
        value = self.number(line, row, name)
        if value != value.to_integral_value() or value < (1 if positive else 0):
            raise self.fail(line, name, f"{value} is not a whole number {'> 0' if positive else '>= 0'}")
        return value.to_integral_value()

    def symbol(self, line: int, row: list[str]) -> str:
        value = self.text(line, row, "symbol")
        if not _SYMBOL.match(value):
            raise self.fail(line, "symbol", f"{value!r} has characters a symbol cannot have (letters, digits, . _ -)")
        return value


@dataclass(frozen=True, slots=True)
class Table:
    """What a file held: its rows (bars or prints), the columns ignored, and each column's
    1-based field number (so a later check can still name the column)."""

    rows: list
    ignored: list[str]
    columns: dict[str, int]

    def error(self, path: Path | str, line: int, column: str, message: str) -> CsvInputError:
        """A located error about one cell, raised by checks after reading (e.g. a non-trading day)."""
        return CsvInputError(path, line, self.columns.get(column), f"{column}: {message}")


def read_bars(path: Path | str, tick_size: Decimal = Decimal("0.01"), progress: ProgressFactory | None = None) -> Table:
    """Every bar of a daily OHLCV file (module docstring); ``progress`` shows the reading."""
    rows = _Rows(Path(path), BAR_COLUMNS, BAR_OPTIONAL, progress)
    bars: list[Bar] = []
    seen: dict[tuple[str, dt.date], int] = {}
    for line, row in rows:
        text = rows.text(line, row, "date")
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise rows.fail(line, "date", f"{text!r} is not a date YYYY-MM-DD") from None
        if not FIRST_DAY <= day <= LAST_DAY:
            raise rows.fail(line, "date", f"{day} is outside {FIRST_DAY} to {LAST_DAY}")
        symbol = rows.symbol(line, row)
        o, h, lo, c = (rows.price(line, row, name, tick_size) for name in ("open", "high", "low", "close"))
        if h < max(o, c, lo):
            raise rows.fail(line, "high", f"{h} is below the bar's open, low or close")
        if lo > min(o, c):
            raise rows.fail(line, "low", f"{lo} is above the bar's open or close")
        volume = rows.count(line, row, "volume", positive=False)
        ldcp = rows.price(line, row, "ldcp", tick_size) if rows.text(line, row, "ldcp", required=False) else None
        if (symbol, day) in seen:
            raise rows.fail(line, "date", f"a second bar for {symbol} on {day} (the first is on line "
                            f"{seen[(symbol, day)]})")
        seen[(symbol, day)] = line
        bars.append(Bar(line, day, symbol, o, h, lo, c, volume, ldcp))
    return Table(bars, rows.ignored, {name: i + 1 for name, i in rows.index.items()})


def _ns(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * 86_400 * 1_000_000_000


def _time_ns(text: str, tz: dt.tzinfo) -> int:
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def read_prints(path: Path | str, tick_size: Decimal = Decimal("0.01"), tz: dt.tzinfo = PSX_TZ,
                progress: ProgressFactory | None = None) -> Table:
    """Every print of a trade-prints file (module docstring); ``progress`` shows the reading."""
    path = Path(path)
    rows = _Rows(path, PRINT_COLUMNS, PRINT_OPTIONAL, progress)
    prints: list[Print] = []
    ids: dict[tuple[str, str], int] = {}
    for line, row in rows:
        text = rows.text(line, row, "time")
        try:
            ts = _time_ns(text, tz)
        except ValueError:
            raise rows.fail(line, "time", f"{text!r} is not an ISO 8601 time") from None
        if not _ns(FIRST_DAY) <= ts < _ns(LAST_DAY):
            raise rows.fail(line, "time", f"{text!r} is outside {FIRST_DAY} to {LAST_DAY}")
        symbol = rows.symbol(line, row)
        price = rows.price(line, row, "price", tick_size)
        qty = rows.count(line, row, "qty", positive=True)
        side = rows.text(line, row, "side", required=False).lower() or None
        if side not in (None, "buy", "sell"):
            raise rows.fail(line, "side", f"{side!r} is not buy, sell or empty")
        trade_id = rows.text(line, row, "trade_id", required=False) or f"{path.name}:{line}"
        if (symbol, trade_id) in ids:
            raise rows.fail(line, "trade_id" if "trade_id" in rows.index else "time",
                            f"trade id {trade_id!r} of {symbol} repeats line {ids[(symbol, trade_id)]}")
        ids[(symbol, trade_id)] = line
        prints.append(Print(line, ts, symbol, price, qty, side, trade_id))
    return Table(prints, rows.ignored, {name: i + 1 for name, i in rows.index.items()})
