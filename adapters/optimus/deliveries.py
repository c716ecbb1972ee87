"""The webhook delivery ids already applied, kept across restarts.

A signature is valid for ``tolerance_s`` either side of our clock, so a delivery captured off the
wire can be sent again inside that window and passes the signature check. Remembering applied ids
only in the process lets such a replay through as soon as the engine restarts (a fill applied
twice). With a state path (``Adapter.set_state_path``: ``<config>.journal.venue-<venue>.sqlite``
beside the journal) each id is committed to a small SQLite table *before* the event is applied
and kept for twice the tolerance window; without one (journal disabled) the ids live in the
process only, as before, and that is said once in the log.

Written before applying, not after: a crash between the commit and the apply loses that one push,
which the adapter's poll of open orders recovers; the other order would apply a fill twice.
SQLite in WAL mode with ``synchronous=NORMAL`` (as the paper venue's ledger): a commit survives the
process being killed, which is the restart this guards against. The file is created mode 0600.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections import OrderedDict
from pathlib import Path

__all__ = ["SeenDeliveries"]

log = logging.getLogger("engine.optimus")

SCHEMA = "CREATE TABLE IF NOT EXISTS seen (delivery_id TEXT PRIMARY KEY, received_ns INTEGER NOT NULL)"


class SeenDeliveries:
    """Applied delivery ids: the newest ``remember`` in memory (the fast check), and with
    :meth:`open` also on disk for ``keep_ns`` (twice the signature tolerance) from arrival."""

    def __init__(self, keep_ns: int, remember: int = 100_000) -> None:
        self.keep_ns = keep_ns
        self.remember = remember
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._db: sqlite3.Connection | None = None
        self.path: Path | None = None
        self._next_prune_ns = 0

    @property
    def durable(self) -> bool:
        return self._db is not None

    def open(self, path: Path, now_ns: int) -> None:
        """Use ``path`` (created 0600 if new): prune what is past the window, load the rest."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))  # sqlite would create it 0644
        os.chmod(path, 0o600)
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(SCHEMA)
        except sqlite3.Error:
            db.close()
            raise
        self._db = db
        self.path = path
        self.prune(now_ns)
        for (delivery_id,) in db.execute("SELECT delivery_id FROM seen ORDER BY received_ns"):
            self._remember_here(delivery_id)

    def __contains__(self, delivery_id: str) -> bool:
        return delivery_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, delivery_id: str, now_ns: int) -> None:
        """Remember ``delivery_id`` (committed before this returns when durable)."""
        self._remember_here(delivery_id)
        if self._db is not None:
            self._db.execute("INSERT OR REPLACE INTO seen VALUES (?, ?)", (delivery_id, now_ns))
            if now_ns >= self._next_prune_ns:
                self.prune(now_ns)

    def discard(self, delivery_id: str) -> None:
        """Forget an id whose event was not applied after all, so the broker's retry applies it."""
        self._ids.pop(delivery_id, None)
        if self._db is not None:
            self._db.execute("DELETE FROM seen WHERE delivery_id = ?", (delivery_id,))

    def prune(self, now_ns: int) -> int:
        """Drop the stored ids that arrived more than ``keep_ns`` ago; returns how many. Runs at
        most once per quarter of ``keep_ns`` from :meth:`add`, so the table holds at most 1.25 of it."""
        self._next_prune_ns = now_ns + self.keep_ns // 4
        if self._db is None:
            return 0
        return self._db.execute("DELETE FROM seen WHERE received_ns < ?", (now_ns - self.keep_ns,)).rowcount

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def _remember_here(self, delivery_id: str) -> None:
        self._ids[delivery_id] = None
        self._ids.move_to_end(delivery_id)
        if len(self._ids) > self.remember:
            self._ids.popitem(last=False)
