"""Our client order id <-> Algo724's ``tradeOrderId``, kept on disk beside the engine's journal.

Why: the Order object has no ``clientOrderId`` (ALG-4) and cancel takes only ``tradeOrderId``, so
the mapping learnt from each submit answer is the only way back from the venue's orders to ours.
A restarted engine (same journal folder, :meth:`OrderEntryAdapter.set_state_path`) must still
cancel, query and book fills of the orders it placed before. Each order is written twice: its
intent (client id, symbol, side, quantity, price) before the request leaves, so that an answer lost
in a crash is resolved by asking again with the same ``idempotencyKey``, and its ``tradeOrderId``
once known. One JSON object per line, appended and flushed (fsync'd when ``durable``); a torn last
line (a crash mid-write) is skipped with a warning, never fatal.

Durability (``durable``): an intent is fsync'd before its request leaves (the key must outlive a
power cut, or a lost answer could not be asked about). A binding is written and flushed at once
(a crashed process loses nothing: the OS has it) and fsync'd with the next intent, the next
:meth:`sync` (the adapter's poll) or :meth:`close`: one fsync per order on the order path, not two.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["IdEntry", "IdJournal"]

log = logging.getLogger("engine.algo724.ids")


@dataclass
class IdEntry:
    client_id: str
    symbol: str
    side: str
    qty: str
    price: str | None
    trade_order_id: str = ""


class IdJournal:
    """The map, in memory always and on disk once :meth:`open` has a path."""

    def __init__(self, durable: bool = True) -> None:
        self.durable = durable
        self.by_client: dict[str, IdEntry] = {}
        self.by_trade: dict[str, str] = {}
        self._file: IO[str] | None = None
        self._unsynced = False
        self.path: Path | None = None

    def open(self, path: Path) -> int:
        """Load what ``path`` holds and append to it from now on; returns how many orders it knew."""
        self.close()
        self.path = path
        if path.exists():
            with path.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    try:
                        row = json.loads(line)
                        entry = IdEntry(row["c"], row["s"], row["d"], row["q"], row.get("p"), row.get("t", ""))
                    except (ValueError, KeyError, TypeError):
                        log.warning("algo724 ids %s line %d unreadable (a torn write?): skipped", path, number)
                        continue
                    self._remember(entry)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        return len(self.by_client)

    def close(self) -> None:
        if self._file is not None:
            self.sync()
            self._file.close()
            self._file = None

    def _remember(self, entry: IdEntry) -> None:
        known = self.by_client.get(entry.client_id)
        if known is not None and not entry.trade_order_id:
            entry.trade_order_id = known.trade_order_id
        self.by_client[entry.client_id] = entry
        if entry.trade_order_id:
            self.by_trade[entry.trade_order_id] = entry.client_id

    def _write(self, entry: IdEntry, sync: bool) -> None:
        if self._file is None:
            return
        row = {"c": entry.client_id, "s": entry.symbol, "d": entry.side, "q": entry.qty, "p": entry.price}
        if entry.trade_order_id:
            row["t"] = entry.trade_order_id
        self._file.write(json.dumps(row, separators=(",", ":")) + "\n")
        self._file.flush()
        self._unsynced = True
        if sync:
            self.sync()

    def sync(self) -> None:
        """fsync what was written since the last one (when ``durable``)."""
        if self._file is not None and self._unsynced and self.durable:
            os.fsync(self._file.fileno())
        self._unsynced = False

    def intent(self, entry: IdEntry) -> None:
        """An order about to be sent (before its request leaves)."""
        if entry.client_id in self.by_client:
            return
        self._remember(entry)
        self._write(entry, sync=True)

    def bind(self, client_id: str, trade_order_id: str) -> None:
        """The venue's id of one of our orders, once."""
        entry = self.by_client.get(client_id)
        if entry is None or entry.trade_order_id == trade_order_id:
            return
        entry.trade_order_id = trade_order_id
        self.by_trade[trade_order_id] = client_id
        self._write(entry, sync=False)

    def client_of(self, trade_order_id: str) -> str | None:
        return self.by_trade.get(trade_order_id)

    def trade_of(self, client_id: str) -> str:
        entry = self.by_client.get(client_id)
        return entry.trade_order_id if entry is not None else ""
