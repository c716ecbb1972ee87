"""The order-entry adapter's durable memory: our orders as the gateway last reported them and every
execution, in SQLite beside the FIX sequence store (same file, own tables).

Why the adapter keeps it: FIX here has no OrderStatusRequest ``H`` and no execution query (MID-5),
so after a reconnect or a restart the only record of what the venue did is what it told us; the
engine's reconciliation (``query_open_orders``, ``query_order``, ``query_fills``) is answered from
it. Executions are keyed by ExecID (``17``): a fill the gateway sends again (a resend after a
restart, a duplicate) is found here and never delivered twice, across restarts too. Written
before the engine hears of it, in WAL with ``synchronous=NORMAL`` like the sequence store.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from engine.model import Fill, Liquidity, OrderStatus, OrderType, Side, TimeInForce, VenueOrder

__all__ = ["OrderRow", "OrderState"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mc_orders (
    client_id TEXT PRIMARY KEY,
    root TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty TEXT NOT NULL,
    price TEXT,
    order_type TEXT NOT NULL,
    tif TEXT NOT NULL,
    base INTEGER NOT NULL,
    expire_ns INTEGER,
    status TEXT NOT NULL,
    cum_qty TEXT NOT NULL,
    venue_order_id TEXT NOT NULL,
    clordid TEXT NOT NULL,
    chain INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL,
    sent INTEGER NOT NULL DEFAULT 1,
    pending_replace TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS mc_fills (
    exec_id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    venue_order_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    price TEXT NOT NULL,
    qty TEXT NOT NULL,
    ts INTEGER NOT NULL,
    liquidity TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mc_fills_ts ON mc_fills (ts);
"""

OPEN = ("pending_new", "new", "partially_filled", "pending_cancel", "pending_replace", "unknown")


@dataclass(slots=True)
class OrderRow:
    """One order: its terms now (after any replace), the venue's last word, and its ClOrdID chain
    (``clordid`` the one the venue works it under now, ``chain`` the last ``~n`` used)."""

    client_id: str
    root: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal | None
    order_type: OrderType
    tif: TimeInForce
    base: int
    expire_ns: int | None
    status: OrderStatus
    cum_qty: Decimal
    venue_order_id: str
    clordid: str
    chain: int
    updated_ns: int
    #: its D was numbered and handed to the socket: the venue may have it (a restart keeps it UNKNOWN,
    #: never "never received"); rows written before this column existed count as sent
    sent: bool = True
    #: our G the venue has not answered, ``clordid|qty|price|base`` ('' for none): kept across a
    #: restart so its confirmation (39=5, or 0/1/2 under the new 11) is applied, not ignored
    pending_replace: str = ""

    def venue_order(self, venue: str) -> VenueOrder:
        """As a reconciliation answer: a pending state is the live one the venue works."""
        status = self.status
        if status in (OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE, OrderStatus.UNKNOWN):
            status = OrderStatus.PARTIALLY_FILLED if self.cum_qty else OrderStatus.NEW
        return VenueOrder(venue, self.client_id, self.venue_order_id, self.symbol, self.side, status, self.qty,
                          self.cum_qty, self.price)


class OrderState:
    """Orders and executions of one venue account, in ``path`` (``:memory:`` for none)."""

    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {found[1] for found in self._db.execute("PRAGMA table_info(mc_orders)").fetchall()}
        if "sent" not in columns:  # a state file from before these columns: migrated in place
            self._db.execute("ALTER TABLE mc_orders ADD COLUMN sent INTEGER NOT NULL DEFAULT 1")
        if "pending_replace" not in columns:
            self._db.execute("ALTER TABLE mc_orders ADD COLUMN pending_replace TEXT NOT NULL DEFAULT ''")

    def close(self) -> None:
        self._db.close()

    # ---- orders --------------------------------------------------------------------------------
    def save(self, row: OrderRow) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO mc_orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.client_id, row.root, row.symbol, row.side.value, str(row.qty),
             None if row.price is None else str(row.price), row.order_type.value, row.tif.value, row.base,
             row.expire_ns, row.status.value, str(row.cum_qty), row.venue_order_id, row.clordid, row.chain,
             row.updated_ns, int(row.sent), row.pending_replace),
        )

    def by_client_id(self, client_id: str) -> OrderRow | None:
        found = self._db.execute("SELECT * FROM mc_orders WHERE client_id = ?", (client_id,)).fetchone()
        return None if found is None else _row(found)

    def by_root(self, root: str) -> OrderRow | None:
        found = self._db.execute("SELECT * FROM mc_orders WHERE root = ?", (root,)).fetchone()
        return None if found is None else _row(found)

    def open_orders(self) -> list[OrderRow]:
        marks = ", ".join("?" for _ in OPEN)
        rows = self._db.execute(f"SELECT * FROM mc_orders WHERE status IN ({marks}) ORDER BY rowid", OPEN)
        return [_row(found) for found in rows.fetchall()]

    # ---- executions ----------------------------------------------------------------------------
    def has_fill(self, exec_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM mc_fills WHERE exec_id = ?", (exec_id,)).fetchone() is not None

    def add_fill(self, fill: Fill) -> bool:
        """Keep ``fill``; False when its ExecID is already here (a repeat: not delivered again)."""
        done = self._db.execute(
            "INSERT OR IGNORE INTO mc_fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (fill.exec_id, fill.client_id, fill.venue_order_id, fill.symbol, fill.side.value, str(fill.price),
             str(fill.qty), fill.ts, fill.liquidity.value),
        )
        return done.rowcount == 1

    def filled(self, client_id: str) -> tuple[Decimal, Decimal]:
        """Quantity and notional of the executions kept for ``client_id`` (what a report without
        LastPx is priced against)."""
        qty = notional = Decimal(0)
        for price, size in self._db.execute("SELECT price, qty FROM mc_fills WHERE client_id = ?", (client_id,)):
            qty += Decimal(size)
            notional += Decimal(size) * Decimal(price)
        return qty, notional

    def fills_since(self, venue: str, since_ns: int) -> list[Fill]:
        rows = self._db.execute("SELECT * FROM mc_fills WHERE ts >= ? ORDER BY ts, rowid", (since_ns,)).fetchall()
        return [Fill(venue, symbol, client_id, venue_order_id, exec_id, Side(side), Decimal(price), Decimal(qty), ts,
                     Liquidity(liquidity))
                for exec_id, client_id, venue_order_id, symbol, side, price, qty, ts, liquidity in rows]


def _row(found: tuple[object, ...]) -> OrderRow:
    (client_id, root, symbol, side, qty, price, order_type, tif, base, expire_ns, status, cum_qty, venue_order_id,
     clordid, chain, updated_ns, sent, pending_replace) = found
    return OrderRow(str(client_id), str(root), str(symbol), Side(str(side)), Decimal(str(qty)),
                    None if price is None else Decimal(str(price)), OrderType(str(order_type)), TimeInForce(str(tif)),
                    int(str(base)), None if expire_ns is None else int(str(expire_ns)), OrderStatus(str(status)),
                    Decimal(str(cum_qty)), str(venue_order_id), str(clordid), int(str(chain)), int(str(updated_ns)),
                    bool(sent), str(pending_replace))
