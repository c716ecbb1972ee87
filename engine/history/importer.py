"""``engine data import``: CSV history into the recording format, all or nothing.

Every input file is read and checked, and every event mapped (:mod:`engine.history.bars`), before
anything is written; a bad cell stops the import with its file, line and column
(:class:`~engine.history.csvread.CsvInputError`). The recording is then written by the recorder's
own :class:`~engine.recording.format.Writer` (one format, one writer) into a temporary folder beside
the target and moved into place only when complete: into a new ``--out`` by one rename, into an
existing recording file by file after checking that none of them is already there (``--replace``
to overwrite an earlier import of the same data). A failure on the way removes the temporary folder:
the target never holds half an import.

The files are named ``import-<digest>-<n>.parquet``, the digest of the inputs' bytes and the
mapping's options: the same import twice gives the same names (and is refused as already there),
a different one never collides.

Why neither DuckDB nor polars: the readers must name the line and column of a bad cell and read
every amount as an exact Decimal; the standard ``csv`` module gives both directly, where a
dataframe reader infers float columns and reports a failing row only loosely. The Parquet side
is the recorder's pyarrow writer. (DuckDB reads the result as it is, README "Importing history".)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from engine.history.bars import BookShape, Timed, bar_events, print_events, schedule_for, session_events
from engine.history.csvread import Bar, CsvInputError, Print, ProgressFactory, read_bars, read_prints
from engine.recording.format import SESSION_SYMBOL, Writer

__all__ = ["ImportResult", "import_history", "map_bars", "map_prints"]

KINDS = ("bars", "trades")
NS_PER_DAY = 86_400 * 1_000_000_000  # partitions are by UTC date (engine.recording.format)


@dataclass
class ImportResult:
    out: Path
    events: int = 0
    rows: int = 0
    files: list[Path] = field(default_factory=list)
    days: list[str] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    ignored: dict[str, list[str]] = field(default_factory=dict)  # input file -> ignored columns


def map_bars(sources: Sequence[tuple[Path, Sequence[Bar], dict[str, int]]], venue: str, shape: BookShape,
             profile: str) -> list[Timed]:
    """Every bar of every file as events (sessions once per day), in replay order."""
    schedule = schedule_for(profile)
    bars = sorted(((b, path, cols) for path, rows, cols in sources for b in rows),
                  key=lambda item: (item[0].symbol, item[0].day))
    seen: dict[tuple[str, dt.date], tuple[Path, int]] = {}
    previous_close: dict[str, Decimal] = {}
    book_seq: dict[str, int] = {}
    days: set[dt.date] = set()
    out: list[Timed] = []
    for bar, path, cols in bars:
        key = (bar.symbol, bar.day)
        if key in seen:
            first = seen[key]
            raise CsvInputError(path, bar.line, cols.get("date"), f"date: a second bar for {bar.symbol} on {bar.day} "
                                f"(the first is {first[0]}:{first[1]})")
        seen[key] = (path, bar.line)
        reference = bar.ldcp if bar.ldcp is not None else previous_close.get(bar.symbol)
        try:
            events = bar_events(venue, bar, reference, schedule, shape, book_seq.get(bar.symbol, 0) + 1)
        except ValueError as exc:
            raise CsvInputError(path, bar.line, cols.get("date"), f"date: {exc}") from None
        book_seq[bar.symbol] = book_seq.get(bar.symbol, 0) + sum(1 for e in events if e.order == 2)
        previous_close[bar.symbol] = bar.close
        days.add(bar.day)
        out += events
    for day in sorted(days):
        out += session_events(schedule, day)
    return _ordered(out)


def map_prints(sources: Sequence[tuple[Path, Sequence[Print], dict[str, int]]], venue: str, shape: BookShape,
               profile: str) -> list[Timed]:
    """Every print as a book and a trade, and the session events of each day the prints fall on;
    a print outside the day's session is refused (a replay would drop it)."""
    schedule = schedule_for(profile)
    ids: dict[tuple[str, str], tuple[Path, int]] = {}
    days: set[dt.date] = set()
    prints: list[Print] = []
    for path, rows, cols in sources:
        for p in rows:
            if (p.symbol, p.trade_id) in ids:
                first = ids[(p.symbol, p.trade_id)]
                raise CsvInputError(path, p.line, cols.get("trade_id", cols.get("time")),
                                    f"trade id {p.trade_id!r} of {p.symbol} repeats {first[0]}:{first[1]}")
            ids[(p.symbol, p.trade_id)] = (path, p.line)
            phase = schedule.phase_at(p.ts)
            if not phase.matches:
                raise CsvInputError(path, p.line, cols.get("time"), f"time: the print falls in the {phase.phase} "
                                    f"phase of {phase.trading_day} ({schedule.tz}), when nothing trades")
            days.add(phase.trading_day)
            prints.append(p)
    out = print_events(venue, prints, shape)
    for day in sorted(days):
        out += session_events(schedule, day)
    return _ordered(out)


def _ordered(events: list[Timed]) -> list[Timed]:
    """Replay order: time, then session before status before book before trade, then symbol."""
    return sorted(events, key=lambda e: (e.ts, e.order, e.symbol or ""))


def _digest(paths: Sequence[Path], kind: str, venue: str, shape: BookShape, profile: str) -> str:
    h = hashlib.sha256(repr((kind, venue, shape, profile)).encode())
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def import_history(paths: Sequence[Path | str], kind: str, out: Path | str, venue: str = "psx",
                   shape: BookShape | None = None, profile: str = "broker-doc", replace: bool = False,
                   progress: ProgressFactory | None = None) -> ImportResult:
    """Read ``paths`` (all of one ``kind``: bars or trades), map them and write the recording
    under ``out`` (module docstring). Raises CsvInputError for bad input, FileExistsError for a
    file already imported, OSError for a write that failed (nothing left behind). ``progress``
    makes a bar for reading each file (lines) and one for writing (events)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    shape = shape or BookShape()
    files = [Path(p) for p in paths]
    out = Path(out)
    result = ImportResult(out)
    if kind == "bars":
        tables = [(path, read_bars(path, shape.tick, progress=progress)) for path in files]
        events = map_bars([(p, t.rows, t.columns) for p, t in tables], venue, shape, profile)
    else:
        tables = [(path, read_prints(path, shape.tick, progress=progress)) for path in files]
        events = map_prints([(p, t.rows, t.columns) for p, t in tables], venue, shape, profile)
    result.ignored = {str(p): t.ignored for p, t in tables if t.ignored}
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a folder")
    run = f"import-{_digest(files, kind, venue, shape, profile)}"
    staging_parent = out if out.is_dir() else out.absolute().parent
    staging_parent.mkdir(parents=True, exist_ok=True)
    staging = staging_parent / f".{out.name}.{run}.{os.getpid()}.tmp"
    bar = progress("write", len(events), "events") if progress is not None else None
    try:
        writer = Writer(staging, run=run)
        written: list[Path] = []
        day_ends = -1
        for seq, timed in enumerate(events, start=1):
            if timed.ts >= day_ends:  # a new (UTC) date: its partitions are complete, write them
                written += writer.flush()
                day_ends = (timed.ts // NS_PER_DAY + 1) * NS_PER_DAY
            writer.add(venue, timed.symbol or SESSION_SYMBOL, seq, timed.ts, timed.event)
            if bar is not None:
                bar.advance()
        written += writer.flush()
        result.events, result.rows = writer.events, writer.rows
        relative = [path.relative_to(staging) for path in written]
        if not out.exists():
            os.rename(staging, out)
        else:
            clash = [out / rel for rel in relative if (out / rel).exists()]
            if clash and not replace:
                raise FileExistsError(f"{clash[0]} is already there (this data was imported before); "
                                      "--replace overwrites it")
            for rel in relative:
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / rel, out / rel)
        result.files = [out / rel for rel in relative]
    finally:
        if bar is not None:
            bar.close()
        shutil.rmtree(staging, ignore_errors=True)
    result.days = sorted({str(getattr(t.event, "trading_day", "")) for t in events if t.symbol is None} - {""})
    result.symbols = sorted({t.symbol for t in events if t.symbol})
    return result
