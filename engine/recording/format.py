"""The recording format: every market-data event a run received, as Parquet, one stable layout.

Layout (hive partitioning, readable by pyarrow, DuckDB and polars as one dataset)::

    ROOT/venue=<venue>/symbol=<symbol>/date=<YYYY-MM-DD>/<run>-<n>.parquet

``date`` is the UTC date of the local receive time (PSX's session, 09:15-15:30 Asia/Karachi, falls
in one UTC date; crypto venues roll their day at UTC). Session changes belong to no instrument and
are kept under the symbol :data:`SESSION_SYMBOL`. Several runs may record into one root: each run
names its files with its own ``run`` prefix, so nothing is overwritten.

One table, one row per *change* (:data:`SCHEMA`): a book update with N level changes is N rows that
share ``seq`` (a snapshot of an empty book is one row with a null ``side``), a trade, an instrument
status and a session change one row each. Columns a kind does not use are null.

========== ======== ==============================================================================
column     type     meaning
========== ======== ==============================================================================
seq        int64    the recorder's event number, global and increasing within one run
recv_ns    int64    local receive time (the engine clock when the runtime got the event): the
                    replay clock
ts         int64    the venue's own event time, as the adapter stamped it
kind       string   ``book`` | ``trade`` | ``status`` | ``session``
snapshot   bool     book: the update replaces the whole book
book_seq   int64    book: the adapter's sequence number
side       string   book: the level's side; trade: the aggressor (null when the venue did not say)
price_m/e  int64/8  book: the level price; trade: the print price (see *Exact decimals*)
qty_m/e    int64/8  book: the level's new total quantity (0 removes it); trade: the print quantity
trade_id   string   trade: the venue's trade id
halted     bool     status: halted (True) / trading (False) / not said (null)
reason     string   status: the venue's reason text
ref_m/e    int64/8  status: the reference price (LDCP) the circuit band is built on
close_m/e  int64/8  status: the official closing price
session    string   session: the :class:`~engine.model.SessionState` as JSON (phase, trading_day,
                    accepts_new, accepts_modify_cancel, matches, flags)
========== ======== ==============================================================================

*Exact decimals.* A price or quantity is stored as a scaled integer, ``mantissa * 10**exponent``
(``price_m``, ``price_e``), exactly the coefficient and exponent of the :class:`~decimal.Decimal`
the adapter delivered. Chosen over ``decimal128(p, s)`` because a fixed scale cannot hold both a
PSX price (2 places) and a crypto quantity (8+) without rewriting one of them, and a rewritten
``Decimal("1.50")`` reads back as ``1.500000000000000000``: equal, but not the same text in a
strategy's log or a report, and replay promises the same bytes. A coefficient beyond int64 (19
digits) is refused at write with the value named, never rounded. To query: ``price_m *
power(10, price_e)`` in DuckDB.

Reading: :func:`read_events` yields :class:`RecordedEvent` in replay order (``recv_ns``, then
``seq``), rebuilt as the engine's own model objects. The schema carries ``FORMAT_VERSION`` in its
metadata; a file of a newer version is refused.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.clock import local_date
from engine.model import BookUpdate, InstrumentStatus, Phase, SessionState, Side, Trade

if TYPE_CHECKING:
    import pyarrow as pa

#: bump when the table changes incompatibly; readers refuse newer files
FORMAT_VERSION = 1
#: the partition symbol session changes are filed under (they belong to no instrument)
SESSION_SYMBOL = "_session"
KIND_BOOK = "book"
KIND_TRADE = "trade"
KIND_STATUS = "status"
KIND_SESSION = "session"
KINDS = (KIND_BOOK, KIND_TRADE, KIND_STATUS, KIND_SESSION)

INSTALL_HINT = ("recording and replay need pyarrow: pip install 'psx-strategy-engine[record]' "
                "(or pip install pyarrow)")

_INT64_MAX = 2**63 - 1
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_PARTITION_SAFE = re.compile(r"^[A-Za-z0-9._\-]+$")


def require_pyarrow() -> None:
    """Raise ImportError with how to install, so a config naming ``run.record`` or the replay
    adapter fails at load, not at the first event."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the test extra installs pyarrow
        raise ImportError(INSTALL_HINT) from exc


def schema() -> pa.Schema:
    """The one table every recording file holds (see the module docstring)."""
    import pyarrow as pa

    dec = [pa.int64(), pa.int8()]
    fields = [
        ("seq", pa.int64()), ("recv_ns", pa.int64()), ("ts", pa.int64()), ("kind", pa.string()),
        ("snapshot", pa.bool_()), ("book_seq", pa.int64()), ("side", pa.string()),
        ("price_m", dec[0]), ("price_e", dec[1]), ("qty_m", dec[0]), ("qty_e", dec[1]),
        ("trade_id", pa.string()), ("halted", pa.bool_()), ("reason", pa.string()),
        ("ref_m", dec[0]), ("ref_e", dec[1]), ("close_m", dec[0]), ("close_e", dec[1]),
        ("session", pa.string()),
    ]
    return pa.schema(fields, metadata={b"engine.recording.version": str(FORMAT_VERSION).encode()})


COLUMNS: tuple[str, ...] = ("seq", "recv_ns", "ts", "kind", "snapshot", "book_seq", "side", "price_m", "price_e",
                            "qty_m", "qty_e", "trade_id", "halted", "reason", "ref_m", "ref_e", "close_m",
                            "close_e", "session")


def split_decimal(value: Decimal) -> tuple[int, int]:
    """``value`` as ``(mantissa, exponent)``, exact; ValueError for what int64 cannot hold."""
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"cannot record a non-finite decimal {value!r}")
    mantissa = int("".join(map(str, digits))) if digits else 0
    if mantissa > _INT64_MAX or not -128 <= exponent <= 127:
        raise ValueError(f"decimal {value} does not fit the recording format (int64 coefficient, int8 exponent)")
    return (-mantissa if sign else mantissa), exponent


def join_decimal(mantissa: int, exponent: int) -> Decimal:
    """The exact inverse of :func:`split_decimal`, exponent kept (``150, -2`` is ``1.50``)."""
    return Decimal(mantissa).scaleb(exponent)


def partition_dir(root: Path, venue: str, symbol: str, recv_ns: int) -> Path:
    """Where an event received at ``recv_ns`` is filed. Names are checked, since they become paths."""
    for label, value in (("venue", venue), ("symbol", symbol)):
        if not _PARTITION_SAFE.match(value):
            raise ValueError(f"{label} {value!r} cannot name a recording partition (letters, digits, . _ - only)")
    return root / f"venue={venue}" / f"symbol={symbol}" / f"date={utc_date(recv_ns)}"


def utc_date(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).date().isoformat()


# ---------------------------------------------------------------------------------------------- rows

Row = dict[str, Any]


def rows_for(seq: int, recv_ns: int, event: BookUpdate | Trade | InstrumentStatus | SessionState) -> list[Row]:
    """The table rows of one event (several for a book update). Runs on the writer thread."""
    if isinstance(event, BookUpdate):
        base: Row = {"seq": seq, "recv_ns": recv_ns, "ts": event.ts, "kind": KIND_BOOK,
                     "snapshot": event.snapshot, "book_seq": event.seq}
        if not event.changes:
            return [base]
        rows = []
        for side, price, qty in event.changes:
            pm, pe = split_decimal(price)
            qm, qe = split_decimal(qty)
            rows.append({**base, "side": str(side), "price_m": pm, "price_e": pe, "qty_m": qm, "qty_e": qe})
        return rows
    if isinstance(event, Trade):
        pm, pe = split_decimal(event.price)
        qm, qe = split_decimal(event.qty)
        return [{"seq": seq, "recv_ns": recv_ns, "ts": event.ts, "kind": KIND_TRADE,
                 "side": None if event.aggressor is None else str(event.aggressor),
                 "price_m": pm, "price_e": pe, "qty_m": qm, "qty_e": qe, "trade_id": event.trade_id}]
    if isinstance(event, InstrumentStatus):
        row: Row = {"seq": seq, "recv_ns": recv_ns, "ts": event.ts, "kind": KIND_STATUS,
                    "halted": event.halted, "reason": event.reason}
        if event.reference_price is not None:
            row["ref_m"], row["ref_e"] = split_decimal(event.reference_price)
        if event.closing_price is not None:
            row["close_m"], row["close_e"] = split_decimal(event.closing_price)
        return [row]
    if isinstance(event, SessionState):
        return [{"seq": seq, "recv_ns": recv_ns, "ts": recv_ns, "kind": KIND_SESSION,
                 "session": json.dumps({"phase": str(event.phase), "trading_day": event.trading_day,
                                        "accepts_new": event.accepts_new,
                                        "accepts_modify_cancel": event.accepts_modify_cancel,
                                        "matches": event.matches, "flags": event.flags},
                                       sort_keys=True, default=str)}]
    raise TypeError(f"cannot record {type(event).__name__}")


def table_for(rows: Sequence[Row]) -> pa.Table:
    """Rows (as :func:`rows_for` makes them) as one Arrow table of :func:`schema`."""
    import pyarrow as pa

    columns = {name: [row.get(name) for row in rows] for name in COLUMNS}
    return pa.Table.from_pydict(columns, schema=schema())


def write_table(table: pa.Table, path: Path) -> None:
    """Write one complete file atomically (temp name, then rename): a reader never sees half."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


class Writer:
    """Files events into partitions and writes each partition's rows as one file per :meth:`flush`.

    Not thread-safe and not for the event path: the recorder (:mod:`engine.recording.recorder`)
    calls it from its own thread; an importer calls it directly. ``run`` prefixes the file names
    (default: UTC start time and pid), so runs recording into one root never overwrite each other.
    """

    def __init__(self, root: Path, run: str | None = None) -> None:
        require_pyarrow()
        self.root = Path(root)
        self.run = run or f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}-{os.getpid()}"
        self._pending: dict[Path, list[Row]] = {}
        self._files = 0
        self.events = 0
        self.rows = 0

    def add(self, venue: str, symbol: str, seq: int, recv_ns: int,
            event: BookUpdate | Trade | InstrumentStatus | SessionState) -> None:
        """File one event (a :class:`~engine.model.SessionState` under :data:`SESSION_SYMBOL`)."""
        rows = rows_for(seq, recv_ns, event)
        self._pending.setdefault(partition_dir(self.root, venue, symbol, recv_ns), []).extend(rows)
        self.events += 1
        self.rows += len(rows)

    def flush(self) -> list[Path]:
        """Write what is pending, one complete file per partition; returns the files written."""
        written = []
        pending, self._pending = self._pending, {}
        items = sorted(pending.items())
        for index, (directory, rows) in enumerate(items):
            self._files += 1
            path = directory / f"{self.run}-{self._files:06d}.parquet"
            try:
                write_table(table_for(rows), path)
            except OSError:
                # kept for the next flush (a full disk may be freed): nothing is dropped silently
                for later, later_rows in items[index:]:
                    self._pending.setdefault(later, [])[:0] = later_rows
                raise
            written.append(path)
        return written

    @property
    def pending_rows(self) -> int:
        """Rows not written yet (after a failed flush: what a later one retries)."""
        return sum(len(rows) for rows in self._pending.values())


# ------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One event as recorded: where from, when received, and the model object the runtime got."""

    recv_ns: int
    seq: int
    venue: str
    symbol: str
    event: BookUpdate | Trade | InstrumentStatus | SessionState


def files(root: Path, venues: Iterable[str] | None = None, symbols: Iterable[str] | None = None,
          start: dt.date | None = None, end: dt.date | None = None) -> list[tuple[str, str, Path]]:
    """``(venue, symbol, file)`` for every recording file under ``root`` that the filters keep
    (dates inclusive), sorted; session files are kept whatever ``symbols`` says."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no recording at {root} (not a directory)")
    want_v = set(venues) if venues is not None else None
    want_s = set(symbols) if symbols is not None else None
    found: list[tuple[str, str, Path]] = []
    for vdir in sorted(root.glob("venue=*")):
        venue = vdir.name[len("venue="):]
        if want_v is not None and venue not in want_v:
            continue
        for sdir in sorted(vdir.glob("symbol=*")):
            symbol = sdir.name[len("symbol="):]
            if want_s is not None and symbol not in want_s and symbol != SESSION_SYMBOL:
                continue
            for ddir in sorted(sdir.glob("date=*")):
                day = dt.date.fromisoformat(ddir.name[len("date="):])
                if (start is not None and day < start) or (end is not None and day > end):
                    continue
                found.extend((venue, symbol, f) for f in sorted(ddir.glob("*.parquet")))
    return found


def recorded_dates(root: Path, venues: Iterable[str] | None = None,
                   symbols: Iterable[str] | None = None) -> list[dt.date]:
    """The UTC dates that hold a file for these venues and symbols (session files included), sorted:
    what a ``from``/``to`` could select, for a message saying it selected nothing."""
    return sorted({dt.date.fromisoformat(path.parent.name[len("date="):])
                   for _, _, path in files(root, venues, symbols)})


def read_events(root: Path, venues: Iterable[str] | None = None, symbols: Iterable[str] | None = None,
                start: dt.date | None = None, end: dt.date | None = None,
                sessions: bool = True) -> Iterator[RecordedEvent]:
    """Every recorded event the filters keep, in replay order (``recv_ns``, then the recorder's
    ``seq``, then venue and symbol), as the engine's model objects with exact decimals."""
    import pyarrow.parquet as pq

    events: list[RecordedEvent] = []
    for venue, symbol, path in files(root, venues, symbols, start, end):
        if symbol == SESSION_SYMBOL and not sessions:
            continue
        table = pq.read_table(path, schema=schema())
        _check_version(table, path)
        events.extend(_events_of(table, venue, symbol))
    events.sort(key=lambda e: (e.recv_ns, e.seq, e.venue, e.symbol))
    return iter(events)


def _check_version(table: pa.Table, path: Path) -> None:
    meta = table.schema.metadata or {}
    version = int(meta.get(b"engine.recording.version", b"1"))
    if version > FORMAT_VERSION:
        raise ValueError(f"{path}: recording format {version} is newer than this engine reads ({FORMAT_VERSION})")


def _events_of(table: pa.Table, venue: str, symbol: str) -> list[RecordedEvent]:
    """Rebuild events column-wise: one pass over Python lists, decimals cached by (m, e) since a
    day's prices repeat (the rebuild is the replay's start-up cost, not its event path)."""
    cols = {name: table.column(name).to_pylist() for name in COLUMNS}
    cache: dict[tuple[int, int], Decimal] = {}

    def dec(m: int | None, e: int | None) -> Decimal | None:
        if m is None or e is None:
            return None
        key = (m, e)
        value = cache.get(key)
        if value is None:
            value = cache[key] = join_decimal(m, e)
        return value

    out: list[RecordedEvent] = []
    n = table.num_rows
    i = 0
    seqs, kinds, recvs, tss = cols["seq"], cols["kind"], cols["recv_ns"], cols["ts"]
    while i < n:
        seq, kind, recv = seqs[i], kinds[i], recvs[i]
        event: BookUpdate | Trade | InstrumentStatus | SessionState
        if kind == KIND_BOOK:
            j = i
            changes = []
            while j < n and seqs[j] == seq and kinds[j] == KIND_BOOK:
                if cols["side"][j] is not None:
                    changes.append((_SIDES[cols["side"][j]], dec(cols["price_m"][j], cols["price_e"][j]),
                                    dec(cols["qty_m"][j], cols["qty_e"][j])))
                j += 1
            event = BookUpdate(venue, symbol, tss[i], cols["book_seq"][i], tuple(changes),  # type: ignore[arg-type]
                               snapshot=bool(cols["snapshot"][i]))
            out.append(RecordedEvent(recv, seq, venue, symbol, event))
            i = j
            continue
        if kind == KIND_TRADE:
            side = cols["side"][i]
            event = Trade(venue, symbol, tss[i], dec(cols["price_m"][i], cols["price_e"][i]),  # type: ignore[arg-type]
                          dec(cols["qty_m"][i], cols["qty_e"][i]),  # type: ignore[arg-type]
                          None if side is None else _SIDES[side], cols["trade_id"][i] or "")
        elif kind == KIND_STATUS:
            event = InstrumentStatus(venue, symbol, tss[i], halted=cols["halted"][i], reason=cols["reason"][i] or "",
                                     reference_price=dec(cols["ref_m"][i], cols["ref_e"][i]),
                                     closing_price=dec(cols["close_m"][i], cols["close_e"][i]))
        elif kind == KIND_SESSION:
            state = json.loads(cols["session"][i])
            event = SessionState(phase=Phase(state["phase"]), accepts_new=state["accepts_new"],
                                 accepts_modify_cancel=state["accepts_modify_cancel"], matches=state["matches"],
                                 trading_day=state["trading_day"], flags=state["flags"])
        else:
            raise ValueError(f"recording row {i} has an unknown kind {kind!r}")
        out.append(RecordedEvent(recv, seq, venue, symbol, event))
        i += 1
    return out


# ------------------------------------------------------------------------------------ receive times


@dataclass(frozen=True)
class DayTimes:
    """When one local day's recorded events arrived: the market events (books, trades, statuses;
    sorted) and the session changes (sorted). Enough to pick a replay's days and window without
    rebuilding a single event (issue 26)."""

    events: tuple[int, ...]
    sessions: tuple[int, ...]

    @property
    def span(self) -> tuple[int, int] | None:
        """(first, last) receive time of anything that day (events and session changes)."""
        firsts = [times[0] for times in (self.events, self.sessions) if times]
        lasts = [times[-1] for times in (self.events, self.sessions) if times]
        return (min(firsts), max(lasts)) if firsts else None

    def outside(self, start_ns: int, end_ns: int) -> list[int]:
        """The market events received before ``start_ns`` or after ``end_ns``, in order."""
        events = self.events
        return [*events[:bisect.bisect_left(events, start_ns)], *events[bisect.bisect_right(events, end_ns):]]


def day_times(root: Path, tz: dt.tzinfo, venues: Iterable[str] | None = None, symbols: Iterable[str] | None = None,
              start: dt.date | None = None, end: dt.date | None = None,
              sessions: bool = True) -> dict[dt.date, DayTimes]:
    """The receive times of what :func:`read_events` would yield for the same filters, by local
    date in ``tz`` (a partition is a UTC date: one can hold the end of a local day and the start
    of the next). Reads two columns (``recv_ns``, ``seq``); days with nothing recorded are absent."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    events: dict[dt.date, list[int]] = {}
    changes: dict[dt.date, list[int]] = {}
    for _, symbol, path in files(root, venues, symbols, start, end):
        is_session = symbol == SESSION_SYMBOL
        if is_session and not sessions:
            continue
        table = pq.read_table(path, columns=["recv_ns", "seq"])
        _check_version(table, path)
        recv = table.column("recv_ns").combine_chunks()
        if not is_session and len(recv) > 1:
            # a book update of N changes is N rows sharing seq: one event (its first row), kept by
            # Arrow's kernels, since a Python pass over every row cost more than the rest together
            seq = table.column("seq").combine_chunks()
            later = pc.not_equal(seq.slice(1), seq.slice(0, len(seq) - 1))
            recv = recv.filter(pa.concat_arrays([pa.array([True]), later]))
        received = recv.to_pylist()
        if not received:
            continue
        received.sort()  # already in order as written: a linear pass
        into = changes if is_session else events
        day, last_day, lo = local_date(received[0], tz), local_date(received[-1], tz), 0
        while day <= last_day:  # a UTC date touches at most two or three local ones
            following = day + dt.timedelta(days=1)
            hi = bisect.bisect_left(received, _local_midnight_ns(following, tz), lo)
            if hi > lo:
                into.setdefault(day, []).extend(received[lo:hi])
            day, lo = following, hi
    return {day: DayTimes(tuple(sorted(events.get(day, ()))), tuple(sorted(changes.get(day, ()))))
            for day in sorted(events.keys() | changes.keys())}


def _local_midnight_ns(day: dt.date, tz: dt.tzinfo) -> int:
    return int(dt.datetime.combine(day, dt.time(), tzinfo=tz).timestamp()) * 1_000_000_000
