"""The paper venue's own side of the account, on disk: our orders and our executions.

A real venue keeps working (and remembers) while the engine is down; the embedded one must too, or a
restarted engine would meet a venue that forgot everything and restart recovery could not be
tested for real. The venue writes here *before* it tells the engine anything, so this file is the
independent record of what the venue did (the crash test compares the engine's journal with it).

SQLite in WAL mode with ``synchronous=NORMAL``: a commit survives the process being killed.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

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

    def write(self, orders: Iterable[tuple], fills: Iterable[Fill]) -> None:
        """One transaction: order rows ``(client_id, symbol, side, venue_order_id, price, qty, cum_qty,
        status, tif, order_type, post_only, day)`` and new fills."""
        db = self.db
        db.execute("BEGIN")
        db.executemany("INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", orders)
        db.executemany(
            "INSERT OR IGNORE INTO fills (exec_id, client_id, venue_order_id, symbol, side, price, qty, ts, liquidity, "
            "fee) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(f.exec_id, f.client_id, f.venue_order_id, f.symbol, f.side.value, str(f.price), str(f.qty), f.ts,
              f.liquidity.value, "" if f.fee is None else str(f.fee)) for f in fills],
        )
        db.execute("COMMIT")

    def set_meta(self, key: str, value: object) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def orders(self) -> list[OrderRow]:
        return [OrderRow(r) for r in self.db.execute("SELECT * FROM orders")]

    def fills(self, venue: str) -> list[Fill]:
        return [
            Fill(venue, r["symbol"], r["client_id"], r["venue_order_id"], r["exec_id"], Side(r["side"]),
                 Decimal(r["price"]), Decimal(r["qty"]), r["ts"], Liquidity(r["liquidity"]),
                 Decimal(r["fee"]) if r["fee"] else None)
            for r in self.db.execute("SELECT * FROM fills ORDER BY seq")
        ]

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
