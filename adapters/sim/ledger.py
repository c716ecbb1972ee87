"""The paper venue's own side of the account, on disk: our orders and our executions.

A real venue keeps working (and remembers) while the engine is down; the embedded one must too, or a
restarted engine would meet a venue that forgot everything and restart recovery could not be
tested for real. The venue writes here *before* it tells the engine anything that moved money (a
fill, with its order's row), so this file is the independent record of what the venue did (the
crash test compares the engine's journal with it).

An operation that only changed an order (an acknowledgement, a replace, a cancel) is not worth a
transaction of its own on the event path: its order waits in memory (:meth:`VenueLedger.defer`) and
goes to disk with the next fill, when :data:`FLUSH_ROWS` rows wait or the oldest waited
:data:`FLUSH_AGE_NS` of the venue's clock (a timer of the venue's), before anything reads the
ledger, and at close. A crash can lose those rows; so that it never loses anything that matters:

- the first row waiting writes ``unflushed`` = 1 (one write per batch, not per order) and the flush
  clears it in its transaction: a venue restarted over a ledger with ``unflushed`` = 1 knows its
  working orders may be stale (a replace or cancel it had announced is lost) and cancels them,
  so no order the engine was told is gone can fill;
- venue order ids are reserved in blocks (``order_ids_reserved``, :meth:`reserve_order_ids`)
  before they are handed out, so a restarted venue never hands out an id it gave an order whose
  row was lost.

A waiting order's row is built when it is written, not when it was deferred: every change of an
order is followed by a :meth:`~VenueLedger.defer` or :meth:`~VenueLedger.write` of it, so its state
at the flush is its state after its last operation, the row deferring a tuple would have written;
an order that changes three times in a batch is turned into a row once.

SQLite in WAL mode with ``synchronous=NORMAL``: a commit survives the process being killed.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from engine.model import Fill, Liquidity, OrderStatus, Side

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    client_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, side TEXT NOT NULL, venue_order_id TEXT NOT NULL,
    price TEXT, qty TEXT NOT NULL, cum_qty TEXT NOT NULL, status TEXT NOT NULL, tif TEXT NOT NULL,
    order_type TEXT NOT NULL, post_only INTEGER NOT NULL, day TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fills (
    seq INTEGER PRIMARY KEY, exec_id TEXT NOT NULL UNIQUE, client_id TEXT NOT NULL, venue_order_id TEXT NOT NULL,
    symbol TEXT NOT NULL, side TEXT NOT NULL, price TEXT NOT NULL, qty TEXT NOT NULL, ts INTEGER NOT NULL,
    liquidity TEXT NOT NULL, fee TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: order-only rows waiting in memory before a flush is due
FLUSH_ROWS = 256
#: ... or when the oldest of them waited this long on the venue's clock (100 ms)
FLUSH_AGE_NS = 100_000_000
#: meta keys: rows were waiting when the last commit happened; the highest venue order id reserved
UNFLUSHED = "unflushed"
ORDER_IDS_RESERVED = "order_ids_reserved"
_UPSERT_ORDER = "INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SET_META = "INSERT OR REPLACE INTO meta VALUES (?, ?)"
# the unflushed flag changes twice per batch of rows: an UPDATE of the existing row rewrites one
# page where INSERT OR REPLACE deletes and re-inserts it in the table and its key index (16k
# instructions instead of 33k); the meta row's key and value are the same either way
_UPDATE_META = "UPDATE meta SET value = ? WHERE key = ?"
_INSERT_FILL = ("INSERT OR IGNORE INTO fills (exec_id, client_id, venue_order_id, symbol, side, price, qty, ts, "
                "liquidity, fee) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


class OrderRecord(Protocol):
    """An order as the venue tracks it: its ledger row when asked, ``(client_id, symbol, side,
    venue_order_id, price, qty, cum_qty, status, tif, order_type, post_only, day)``."""

    @property
    def client_id(self) -> str: ...

    def row(self) -> tuple: ...


class OrderRow:
    """One of our orders as the venue keeps it."""

    __slots__ = ("client_id", "symbol", "side", "venue_order_id", "price", "qty", "cum_qty", "status", "tif",
                 "order_type", "post_only", "day")

    def __init__(self, row: sqlite3.Row) -> None:
        self.client_id = row["client_id"]
        self.symbol = row["symbol"]
        self.side = Side(row["side"])
        self.venue_order_id = row["venue_order_id"]
        self.price = Decimal(row["price"]) if row["price"] is not None else None
        self.qty = Decimal(row["qty"])
        self.cum_qty = Decimal(row["cum_qty"])
        self.status = OrderStatus(row["status"])
        self.tif = row["tif"]
        self.order_type = row["order_type"]
        self.post_only = bool(row["post_only"])
        self.day = row["day"]


class VenueLedger:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                self.db.execute(statement)
        #: orders whose rows are not on disk yet, by client id (a later record of an order replaces its
        #: earlier one); their rows are built when written (see the module doc)
        self._waiting: dict[str, OrderRecord] = {}

    @property
    def waiting(self) -> int:
        """Order rows not on disk yet."""
        return len(self._waiting)

    def defer(self, orders: Iterable[OrderRecord]) -> None:
        """Orders whose change moves no money: their rows are written with the next flush (see the
        module doc; the venue flushes a batch :data:`FLUSH_AGE_NS` after it began, on its own clock)."""
        waiting = self._waiting
        if not waiting:
            self._set_unflushed("1")  # before any row can be lost
        for record in orders:
            waiting[record.client_id] = record
        if len(waiting) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Write the waiting order rows now."""
        if self._waiting:
            self.write((), ())

    def write(self, orders: Iterable[OrderRecord], fills: Iterable[Fill]) -> None:
        """One transaction, now: the waiting orders' rows, then the rows of ``orders`` and new fills."""
        db = self.db
        db.execute("BEGIN")
        waiting = self._waiting
        if waiting:
            db.executemany(_UPSERT_ORDER, [record.row() for record in waiting.values()])
            self._set_unflushed("0")
        rows = [record.row() for record in orders]
        if rows:
            db.executemany(_UPSERT_ORDER, rows)
        new_fills = [(f.exec_id, f.client_id, f.venue_order_id, f.symbol, f.side.value, str(f.price), str(f.qty), f.ts,
                      f.liquidity.value, "" if f.fee is None else str(f.fee)) for f in fills]
        if new_fills:
            db.executemany(_INSERT_FILL, new_fills)
        db.execute("COMMIT")
        waiting.clear()

    def _set_unflushed(self, value: str) -> None:
        """Set the ``unflushed`` flag: the same meta row :meth:`set_meta` writes, updated in place
        once it exists (inside the caller's transaction, if any)."""
        if not self.db.execute(_UPDATE_META, (value, UNFLUSHED)).rowcount:
            self.db.execute(_SET_META, (UNFLUSHED, value))

    def reserve_order_ids(self, up_to: int) -> None:
        """Venue order ids up to ``up_to`` may be handed out: on disk before the first of them is."""
        self.set_meta(ORDER_IDS_RESERVED, up_to)

    def set_meta(self, key: str, value: object) -> None:
        self.db.execute(_SET_META, (key, str(value)))

    def meta(self, key: str) -> str | None:
        self.flush()
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def orders(self) -> list[OrderRow]:
        self.flush()
        return [OrderRow(r) for r in self.db.execute("SELECT * FROM orders")]

    def fills(self, venue: str) -> list[Fill]:
        self.flush()
        return [
            Fill(venue, r["symbol"], r["client_id"], r["venue_order_id"], r["exec_id"], Side(r["side"]),
                 Decimal(r["price"]), Decimal(r["qty"]), r["ts"], Liquidity(r["liquidity"]),
                 Decimal(r["fee"]) if r["fee"] else None)
            for r in self.db.execute("SELECT * FROM fills ORDER BY seq")
        ]

    def close(self) -> None:
        """Flush the waiting rows and close. Never raises."""
        with contextlib.suppress(sqlite3.Error):
            self.flush()
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
