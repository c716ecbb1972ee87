"""The durable journal: one SQLite file (WAL) per engine, so that a crash at any instant is harmless.

It records every order (intent, acknowledgements, every state change; with strategy, client id and
venue id), every fill (unique on venue + exec id), the cash and holdings movements each fill and
each settlement makes, account snapshots (the T+N ledger included), kill-switch and MMP state, the
strategies' own saved state and the client ids handed out.

What is durable when (README "Journal and restart" says the same):

- **A fill** is committed, with its movements and every order change queued before it, before the
  strategy's ``on_fill`` runs.
- **Order intents and state changes** are queued in memory and group-committed every
  ``flush_ms`` of real time, and with the next fill, control change, day roll and at stop. A crash
  loses at most that window of order rows: every order carries a client id the venue echoes, and
  restart reconciliation finds those orders at the venue.
- **Client ids** are reserved in blocks, committed before the first id of a block is used: a
  restarted engine never reuses one, even for an order the journal never saw.
- **Kill switch and MMP freezes** are committed when they change.
- **Account and positions** are snapshotted at each day start (after the settlement roll) and at
  stop; the state at any later instant is that snapshot plus the journaled fills after it, replayed
  through the same code that applied them.
- **Strategy state** (``on_save``) at stop, at each close and every ``save_seconds``.

The schema is versioned (``PRAGMA user_version``) and migrated forward on open; a journal written
by a newer engine is refused rather than guessed at.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.clientids import new_epoch, parse_client_id
from engine.config import REDACTED
from engine.errors import StartupError
from engine.model import TERMINAL_STATUSES, Fill, Liquidity, Order, OrderStatus, OrderType, Side, TimeInForce
from engine.secrets import Redactor

#: schema migrations, in order: ``MIGRATIONS[i]`` takes a journal from version i to i + 1
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY, started_ns INTEGER NOT NULL, started_at TEXT NOT NULL, pid INTEGER NOT NULL,
        config TEXT NOT NULL, trading_day TEXT, stopped_ns INTEGER, stopped_by TEXT
    );
    CREATE TABLE orders (
        venue TEXT NOT NULL, client_id TEXT NOT NULL, strategy TEXT NOT NULL, symbol TEXT NOT NULL,
        side TEXT NOT NULL, order_type TEXT NOT NULL, tif TEXT NOT NULL, price TEXT, qty TEXT NOT NULL,
        cum_qty TEXT NOT NULL, notional TEXT NOT NULL, status TEXT NOT NULL, venue_order_id TEXT NOT NULL,
        post_only INTEGER NOT NULL, mmp INTEGER NOT NULL, reject_code INTEGER, reason TEXT NOT NULL,
        created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL, run_id INTEGER NOT NULL,
        PRIMARY KEY (venue, client_id)
    );
    CREATE INDEX orders_open ON orders (status);
    CREATE TABLE order_events (
        seq INTEGER PRIMARY KEY, venue TEXT NOT NULL, client_id TEXT NOT NULL, ts INTEGER NOT NULL,
        status TEXT NOT NULL, price TEXT, qty TEXT NOT NULL, cum_qty TEXT NOT NULL, detail TEXT NOT NULL
    );
    CREATE TABLE fills (
        seq INTEGER PRIMARY KEY, venue TEXT NOT NULL, exec_id TEXT NOT NULL, client_id TEXT NOT NULL,
        venue_order_id TEXT NOT NULL, strategy TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
        qty TEXT NOT NULL, price TEXT NOT NULL, fee TEXT NOT NULL, liquidity TEXT NOT NULL, ts INTEGER NOT NULL,
        trading_day TEXT NOT NULL, applied INTEGER NOT NULL DEFAULT 1, UNIQUE (venue, exec_id)
    );
    CREATE TABLE movements (
        seq INTEGER PRIMARY KEY, venue TEXT NOT NULL, ts INTEGER NOT NULL, kind TEXT NOT NULL,
        symbol TEXT NOT NULL, amount TEXT NOT NULL, trade_day TEXT, settle_day TEXT, fill_seq INTEGER
    );
    CREATE TABLE snapshots (
        seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, trading_day TEXT NOT NULL, reason TEXT NOT NULL,
        last_fill_seq INTEGER NOT NULL, state TEXT NOT NULL
    );
    CREATE TABLE controls (
        seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, state TEXT NOT NULL
    );
    CREATE TABLE strategy_state (strategy TEXT PRIMARY KEY, ts INTEGER NOT NULL, state TEXT NOT NULL);
    CREATE TABLE client_ids (strategy TEXT PRIMARY KEY, reserved INTEGER NOT NULL);
    """,
    # every block of client ids reserved, not only the highest: restart asks the venue about the ids
    # after the journal's last order *and* from the first id of each later block, which a run that
    # started after a crash began with (999 is the block size when version 1 was written; such a
    # journal knows only its last block)
    """
    CREATE TABLE client_id_blocks (
        strategy TEXT NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL, PRIMARY KEY (strategy, first)
    );
    INSERT INTO client_id_blocks (strategy, first, last)
        SELECT strategy, MAX(1, reserved - 999), reserved FROM client_ids;
    DROP TABLE client_ids;
    """,
    # client ids carry the journal's epoch (engine/clientids.py): a new journal draws one when it is
    # created (Journal.open); a journal from before keeps the empty epoch and its <strategy>-<n> ids
    """
    INSERT OR IGNORE INTO meta (key, value) VALUES ('client_epoch', '');
    """,
    # every order carries the registered algorithm id of its strategy (config algo_id, SECP audit
    # trail); an order journaled before had none, and the strategy's name is what algo_id defaults to.
    # Order events and fills get the engine's time beside the time they carry (the venue's for what
    # the venue reported): rows from before have none (NULL)
    """
    ALTER TABLE orders ADD COLUMN algo_id TEXT NOT NULL DEFAULT '';
    UPDATE orders SET algo_id = strategy;
    ALTER TABLE order_events ADD COLUMN engine_ts INTEGER;
    ALTER TABLE fills ADD COLUMN engine_ts INTEGER;
    """,
    # whose figure a fill's fee is: 'venue' (stated on the fill, checked against the schedule) or
    # 'schedule' (the rule pack's, the venue stated none); '' for fills journaled before
    """
    ALTER TABLE fills ADD COLUMN fee_source TEXT NOT NULL DEFAULT '';
    """,
    # a reduce-only order (derivatives accounts, issue 20) keeps the flag across a restart, so the
    # adopted order is still judged as one that may only shrink the position; rows from before: 0
    """
    ALTER TABLE orders ADD COLUMN reduce_only INTEGER NOT NULL DEFAULT 0;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
#: the schema version from which a journal has a client-id epoch
CLIENT_EPOCH_VERSION = 3
#: client ids reserved per commit: a restart skips at most this many ids per strategy
CLIENT_ID_BLOCK = 1000
#: queued order rows that force a commit before the flush timer (bounds memory and the loss window)
MAX_PENDING = 4096
_LIVE = tuple(s.value for s in OrderStatus if s not in TERMINAL_STATUSES)
ZERO = Decimal(0)
#: journal, venue state and their copies hold the account's orders, fills and the strategies' own
#: state: readable by the engine's user only
PRIVATE_MODE = 0o600
#: the files SQLite keeps beside a database in WAL mode
SQLITE_SIDE_FILES = ("-wal", "-shm")

log = logging.getLogger("engine.journal")


class JournalError(StartupError):
    """The journal cannot be opened or trusted; the message says what to do."""


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class JournaledFill:
    """A fill as the journal holds it, with the trading day it was applied on."""

    seq: int
    fill: Fill
    strategy: str
    trading_day: dt.date
    applied: bool


def order_from_row(row: sqlite3.Row) -> Order:
    """Rebuild an engine order from its journal row (the state it had at the last flush)."""
    order = Order(
        row["client_id"], row["strategy"], row["venue"], row["symbol"], Side(row["side"]), Decimal(row["qty"]),
        _dec(row["price"]), OrderType(row["order_type"]), TimeInForce(row["tif"]), bool(row["post_only"]),
        row["created_ns"], bool(row["mmp"]), row["algo_id"], bool(row["reduce_only"]),
    )
    order.restore(
        OrderStatus(row["status"]), Decimal(row["cum_qty"]), Decimal(row["notional"]), row["venue_order_id"],
        row["updated_ns"], row["reject_code"], row["reason"],
    )
    return order


def fill_from_row(row: sqlite3.Row) -> JournaledFill:
    fill = Fill(
        row["venue"], row["symbol"], row["client_id"], row["venue_order_id"], row["exec_id"], Side(row["side"]),
        Decimal(row["price"]), Decimal(row["qty"]), row["ts"], Liquidity(row["liquidity"]), Decimal(row["fee"]),
    )
    return JournaledFill(row["seq"], fill, row["strategy"], dt.date.fromisoformat(row["trading_day"]),
                         bool(row["applied"]))


class Journal:
    """One engine's journal. Open with :meth:`open`; the engine holds its lock until :meth:`close`."""

    def __init__(self, path: Path, connection: sqlite3.Connection, lock_fd: int | None) -> None:
        self.path = path
        self.db = connection
        self._lock_fd = lock_fd
        self.run_id = 0
        # queued order rows: (order, status, price, qty, cum_qty, ts, detail, engine ts) as they were when queued
        self._pending: list[tuple[Order, OrderStatus, Decimal | None, Decimal, Decimal, int, str, int]] = []
        # the engine's clock (set by restore): each event and fill is stamped with the engine's time
        # as well as the time it carries, for the audit trail; without one, the time it carries
        self.engine_clock: Callable[[], int] | None = None
        self._reserved: dict[str, int] = {}
        self.last_ns = 0
        # the config's secrets, scrubbed from the strategies' on_save state before it is stored
        self.redactor = Redactor(())
        # counters for the report and metrics: plain ints
        self.n_commits = 0
        self.n_fills = 0
        self.n_order_rows = 0
        self.commit_ns_total = 0

    # ---- open / close ---------------------------------------------------------------------
    @classmethod
    def open(
        cls, path: Path, *, sync: str = "full", fresh: bool = False, migrations: Sequence[str] = MIGRATIONS,
        lock: bool = True, redactor: Redactor | None = None,
    ) -> Journal:
        """Open (creating or migrating) the journal at ``path``. ``fresh`` moves an existing journal
        aside (``<name>.<timestamp>.bak``, nothing deleted) and starts an empty one. ``redactor``:
        the config's secrets, kept out of the strategies' saved state. The file (and SQLite's
        -wal/-shm beside it) is made readable by the owner only."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = _take_lock(path) if lock else None
        try:
            if fresh and path.exists():
                move_aside(path)
            make_private(path)
            try:
                db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                db.row_factory = sqlite3.Row
                db.execute("PRAGMA secure_delete=ON")  # a replaced row (an older saved state) is zeroed, not left
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
                db.execute("PRAGMA foreign_keys=ON")
                if _migrate(db, path, migrations) == 0 and len(migrations) >= CLIENT_EPOCH_VERSION:
                    # a new journal: its own epoch, so its ids never repeat an earlier journal's
                    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('client_epoch', ?)",
                               (new_epoch(),))
            except sqlite3.DatabaseError as exc:
                raise JournalError(
                    f"journal {path}: {exc}; it is not a journal this engine can read "
                    "(move it away or run with --fresh-account to start a new account)"
                ) from None
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        journal = cls(path, db, lock_fd)
        if redactor is not None:
            journal.redactor = redactor
        journal._reserved = {r["strategy"]: r["reserved"] for r in db.execute(
            "SELECT strategy, MAX(last) AS reserved FROM client_id_blocks GROUP BY strategy")}
        journal.last_ns = int(journal.meta("last_ns") or 0)
        return journal

    @classmethod
    def open_readonly(cls, path: Path) -> Journal:
        """Open for reading only (``engine journal inspect``): no lock, no migration, no writes, so
        it can look at the journal of an engine that is running."""
        path = Path(path)
        if not path.exists():
            raise JournalError(f"journal {path}: no such file")
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            db.row_factory = sqlite3.Row
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"journal {path}: {exc}; not a journal this engine can read") from None
        if version != SCHEMA_VERSION:
            db.close()
            raise JournalError(f"journal {path} has schema version {version}; this engine reads version "
                               f"{SCHEMA_VERSION} (an engine run migrates older journals forward)")
        journal = cls(path, db, None)
        journal.last_ns = int(journal.meta("last_ns") or 0)
        return journal

    def close(self) -> None:
        """Flush what is queued, checkpoint the WAL into the main file and release the lock."""
        try:
            if not self.db.in_transaction and not self._pending and self._lock_fd is None:
                self.db.close()  # read-only
                return
            self.commit()
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.db.close()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # ---- meta and runs --------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(value)))

    def begin_run(self, now_ns: int, config: str, trading_day: dt.date) -> int:
        with self._transaction():
            if self.meta("created_ns") is None:
                self._set_meta("created_ns", now_ns)
            cursor = self.db.execute(
                "INSERT INTO runs (started_ns, started_at, pid, config, trading_day) VALUES (?, ?, ?, ?, ?)",
                (now_ns, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), os.getpid(), config,
                 trading_day.isoformat()),
            )
            self._set_meta("stopped_cleanly", 0)
        self.run_id = int(cursor.lastrowid or 0)
        return self.run_id

    def end_run(self, now_ns: int, stopped_by: str, day_done: dt.date | None) -> None:
        """A clean stop: everything flushed; ``day_done`` is the last trading day run to its end."""
        with self._transaction():
            self.db.execute("UPDATE runs SET stopped_ns = ?, stopped_by = ? WHERE run_id = ?",
                            (now_ns, stopped_by, self.run_id))
            self._set_meta("stopped_cleanly", 1)
            if day_done is not None:
                self._set_meta("last_day_done", day_done.isoformat())

    def mark_day(self, day: dt.date) -> None:
        """The trading day now running (a restart after a crash resumes it)."""
        with self._transaction():
            self._set_meta("trading_day", day.isoformat())

    def mark_day_done(self, day: dt.date) -> None:
        with self._transaction():
            self._set_meta("last_day_done", day.isoformat())

    # ---- the write path -------------------------------------------------------------------
    def order(self, order: Order, detail: str = "") -> None:
        """Queue an order's current state (group-committed; see the module docstring)."""
        pending = self._pending
        clock = self.engine_clock
        ts = order._updated_ts
        pending.append((order, order._status, order._price, order._qty, order._cum_qty, ts, detail,
                        ts if clock is None else clock()))
        if len(pending) >= MAX_PENDING:
            self.commit()

    def add_fill(self, fill: Fill, strategy: str, trading_day: dt.date, fee_source: str = "") -> int | None:
        """Record a fill inside the open transaction; None when (venue, exec id) is already there.
        ``fee_source`` says whose figure ``fill.fee`` is ('venue' or 'schedule').
        Call :meth:`commit` before anything acts on it."""
        db = self.db
        if not db.in_transaction:
            db.execute("BEGIN")
        cursor = db.execute(
            "INSERT OR IGNORE INTO fills (venue, exec_id, client_id, venue_order_id, strategy, symbol, side, qty, "
            "price, fee, liquidity, ts, trading_day, engine_ts, fee_source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (fill.venue, fill.exec_id, fill.client_id, fill.venue_order_id, strategy, fill.symbol, fill.side.value,
             str(fill.qty), str(fill.price), str(fill.fee), fill.liquidity.value, fill.ts, trading_day.isoformat(),
             fill.ts if self.engine_clock is None else self.engine_clock(), fee_source),
        )
        if not cursor.rowcount:
            return None
        seq = int(cursor.lastrowid or 0)
        amount = fill.price * fill.qty
        if fill.side is Side.BUY:
            rows = (("cash", -(amount + fill.fee), None), ("shares_unsettled", fill.qty, "settle"))
        else:
            rows = (("shares", -fill.qty, None), ("cash_unsettled", amount - fill.fee, "settle"))
        db.executemany(
            "INSERT INTO movements (venue, ts, kind, symbol, amount, trade_day, fill_seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(fill.venue, fill.ts, kind, fill.symbol, str(value), trading_day.isoformat(), seq)
             for kind, value, _ in rows],
        )
        self.n_fills += 1
        if fill.ts > self.last_ns:
            self.last_ns = fill.ts
        return seq

    def unapplied(self, seq: int) -> None:
        """The fill at ``seq`` could not be applied to its order (kept: the venue did it)."""
        self.db.execute("UPDATE fills SET applied = 0 WHERE seq = ?", (seq,))

    def settled(self, venue: str, ts: int, entries: Sequence[Any]) -> None:
        """Record what a settlement roll made usable (``LedgerEntry`` rows)."""
        with self._transaction():
            self.db.executemany(
                "INSERT INTO movements (venue, ts, kind, symbol, amount, trade_day, settle_day) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(venue, ts, f"settled_{e.kind}", e.symbol, str(e.amount), e.trade_day.isoformat(),
                  e.settle_day.isoformat()) for e in entries],
            )

    def commit(self, now_ns: int = 0) -> None:
        """Write the queued order rows and commit everything pending (one fsync under sync=full)."""
        pending = self._pending
        db = self.db
        if not pending and not db.in_transaction:
            return
        started = time.perf_counter_ns()
        if not db.in_transaction:
            db.execute("BEGIN")
        if pending:
            self._write_orders(pending)
            self._pending = []
        if now_ns > self.last_ns:
            self.last_ns = now_ns
        self._set_meta("last_ns", self.last_ns)
        db.execute("COMMIT")
        self.n_commits += 1
        self.commit_ns_total += time.perf_counter_ns() - started

    def _write_orders(self, pending: list) -> None:
        events = []
        latest: dict[tuple[str, str], Order] = {}
        scrub = self.redactor.scrub  # a venue's reject text may echo a credential: not into the file
        for order, status, price, qty, cum_qty, ts, detail, engine_ts in pending:
            events.append((order._venue, order._client_id, ts, status.value, _text(price), str(qty), str(cum_qty),
                           scrub(detail) if detail else detail, engine_ts))
            latest[(order._venue, order._client_id)] = order
            if ts > self.last_ns:
                self.last_ns = ts
        run_id = self.run_id
        self.db.executemany(
            "INSERT INTO order_events (venue, client_id, ts, status, price, qty, cum_qty, detail, engine_ts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", events,
        )
        self.db.executemany(
            "INSERT OR REPLACE INTO orders (venue, client_id, strategy, symbol, side, order_type, tif, price, qty, "
            "cum_qty, notional, status, venue_order_id, post_only, mmp, reject_code, reason, created_ns, updated_ns, "
            "run_id, algo_id, reduce_only) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(o._venue, o._client_id, o._strategy, o._symbol, o._side.value, o._type.value, o._tif.value,
              _text(o._price), str(o._qty), str(o._cum_qty), str(o._notional), o._status.value, o._venue_order_id,
              int(o._post_only), int(o._mmp), o._reject_code, scrub(o._reject_reason) if o._reject_reason else "",
              o._created_ts, o._updated_ts, run_id,
              o._algo_id, int(o._reduce_only))
             for o in latest.values()],
        )
        self.n_order_rows += len(events)

    @property
    def pending_orders(self) -> int:
        return len(self._pending)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """Run the block in the open transaction (with what is queued) and commit it."""
        if not self.db.in_transaction:
            self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.commit()

    def reserve_client_ids(self, strategy: str, used: int) -> int:
        """Make sure ids up to ``used`` are reserved; returns the reserved high-water mark."""
        reserved = self._reserved.get(strategy, 0)
        if used <= reserved:
            return reserved
        reserved = used + CLIENT_ID_BLOCK - 1
        with self._transaction():
            self.db.execute("INSERT INTO client_id_blocks (strategy, first, last) VALUES (?, ?, ?)",
                            (strategy, used, reserved))
        self._reserved[strategy] = reserved
        return reserved

    @property
    def client_epoch(self) -> str:
        """This journal's part of every client id it hands out ('' for a journal from before
        epochs: its ids keep the ``<strategy>-<n>`` shape)."""
        return self.meta("client_epoch") or ""

    def client_ids_reserved(self, strategy: str) -> int:
        return self._reserved.get(strategy, 0)

    def client_id_blocks_after(self, strategy: str, number: int) -> list[int]:
        """The first id of each reserved block that starts after ``number``, in order: a run that
        began after a crash took its ids from a new block, past ids nobody used."""
        return [first for (first,) in self.db.execute(
            "SELECT first FROM client_id_blocks WHERE strategy = ? AND first > ? ORDER BY first", (strategy, number))]

    def last_client_seq(self, strategy: str) -> int:
        """The highest ``n`` of the strategy's ``<strategy>-<epoch>-<n>`` orders the journal has (0: none)."""
        best = 0
        epoch = self.client_epoch
        for (client_id,) in self.db.execute("SELECT client_id FROM orders WHERE strategy = ?", (strategy,)):
            parsed = parse_client_id(client_id, epoch)
            if parsed is not None:
                best = max(best, parsed[1])
        return best

    def control(self, now_ns: int, kind: str, key: str, state: dict[str, Any]) -> None:
        """Kill-switch or MMP state changed: committed at once. Its reasons are scrubbed of the
        config's secrets (an operator's halt reason, a venue's words) like a log line."""
        state, _ = self.redactor.scrub_value(state)
        with self._transaction():
            self.db.execute("INSERT INTO controls (ts, kind, key, state) VALUES (?, ?, ?, ?)",
                            (now_ns, kind, key, json.dumps(state, sort_keys=True)))

    def save_strategy_state(self, now_ns: int, strategy: str, state: Any) -> None:
        """Store a strategy's ``on_save`` value, scrubbed of the config's secrets like every log
        line and report (the journal and its .bak copies outlive the run)."""
        state, found = self.redactor.scrub_value(state)
        if found:
            log.warning("strategy %s: on_save returned a secret from the config; it is stored as %s",
                        strategy, REDACTED)
        text = json.dumps(state, sort_keys=True)
        with self._transaction():
            self.db.execute("INSERT OR REPLACE INTO strategy_state (strategy, ts, state) VALUES (?, ?, ?)",
                            (strategy, now_ns, text))

    def snapshot(self, now_ns: int, trading_day: dt.date, reason: str, state: dict[str, Any]) -> None:
        """Account and positions as they are now, with the last fill they include."""
        with self._transaction():
            last = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM fills").fetchone()[0]
            self.db.execute(
                "INSERT INTO snapshots (ts, trading_day, reason, last_fill_seq, state) VALUES (?, ?, ?, ?, ?)",
                (now_ns, trading_day.isoformat(), reason, last, json.dumps(state, sort_keys=True)),
            )

    # ---- the read path (restart, inspect) -------------------------------------------------
    def last_snapshot(self) -> tuple[int, dt.date, dict[str, Any]] | None:
        row = self.db.execute("SELECT * FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return row["last_fill_seq"], dt.date.fromisoformat(row["trading_day"]), json.loads(row["state"])

    def fills_after(self, seq: int) -> list[JournaledFill]:
        return [fill_from_row(r) for r in self.db.execute("SELECT * FROM fills WHERE seq > ? ORDER BY seq", (seq,))]

    def fills(self, venue: str | None = None) -> list[JournaledFill]:
        sql, args = "SELECT * FROM fills", ()
        if venue is not None:
            sql, args = sql + " WHERE venue = ?", (venue,)
        return [fill_from_row(r) for r in self.db.execute(sql + " ORDER BY seq", args)]

    def same_fill(self, fill: Fill) -> bool:
        """True when the journal's fill under this (venue, exec id) is this fill (order, side, qty, price)."""
        row = self.db.execute("SELECT client_id, side, qty, price FROM fills WHERE venue = ? AND exec_id = ?",
                              (fill.venue, fill.exec_id)).fetchone()
        return row is not None and (row[0], row[1], Decimal(row[2]), Decimal(row[3])) == (
            fill.client_id, fill.side.value, fill.qty, fill.price)

    def open_orders(self) -> list[Order]:
        marks = ", ".join("?" * len(_LIVE))
        rows = self.db.execute(f"SELECT * FROM orders WHERE status IN ({marks}) ORDER BY created_ns, client_id",
                               _LIVE)
        return [order_from_row(r) for r in rows]

    def orders(self, limit: int | None = None) -> list[sqlite3.Row]:
        sql = "SELECT * FROM orders ORDER BY created_ns DESC, client_id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return list(self.db.execute(sql))

    def latest_controls(self) -> dict[tuple[str, str], tuple[int, dict[str, Any]]]:
        rows = self.db.execute(
            "SELECT c.kind, c.key, c.ts, c.state FROM controls c JOIN "
            "(SELECT kind, key, MAX(seq) AS seq FROM controls GROUP BY kind, key) m ON c.seq = m.seq"
        )
        return {(r["kind"], r["key"]): (r["ts"], json.loads(r["state"])) for r in rows}

    def strategy_states(self) -> dict[str, Any]:
        return {r["strategy"]: json.loads(r["state"]) for r in self.db.execute("SELECT * FROM strategy_state")}

    def runs(self) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM runs ORDER BY run_id"))

    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])


def _migrate(db: sqlite3.Connection, path: Path, migrations: Sequence[str]) -> int:
    """Bring the schema forward; returns the version the file had (0: it was just created)."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > len(migrations):
        raise JournalError(
            f"journal {path} has schema version {version}, newer than this engine's {len(migrations)}: "
            "it was written by a newer engine; upgrade the engine (a journal is never downgraded)"
        )
    for target in range(version + 1, len(migrations) + 1):
        db.execute("BEGIN IMMEDIATE")
        for statement in _statements(migrations[target - 1]):
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {target}")
        db.execute("COMMIT")
    return version


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (executescript would commit on its own)."""
    return [s.strip() for s in script.split(";") if s.strip()]


def _take_lock(path: Path) -> int:
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise JournalError(
            f"journal {path} is in use by another engine (pid {holder}); one engine per journal"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def move_aside(path: Path) -> Path:
    """Checkpoint and rename an old journal (with its WAL) out of the way; nothing is deleted."""
    with contextlib.closing(sqlite3.connect(path)) as db, contextlib.suppress(sqlite3.DatabaseError):
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{stamp}.bak")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{stamp}-{n}.bak")
    path.rename(target)
    for suffix in SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    make_private(target)  # a copy from before 0600 journals is tightened too
    return target


def make_private(path: Path) -> None:
    """Create ``path`` (empty: SQLite takes an empty file as a new database) or tighten it, and its
    -wal/-shm, to owner-only. Done before SQLite opens it: SQLite creates the -wal and -shm with
    the main file's mode, so they are 0600 too; ones left by an older engine are tightened here."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)
    finally:
        os.close(fd)
    for suffix in SQLITE_SIDE_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path.with_name(path.name + suffix), PRIVATE_MODE)


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where an account's timeline stands, read before the engine plans its days."""

    last_day_done: dt.date | None
    day_in_progress: dt.date | None  # a day started and not run to its close (crash or stop mid-day)
    last_ns: int
    stopped_cleanly: bool


def peek(path: Path) -> ResumePoint | None:
    """Read a journal's resume point without locking or creating anything (None: no journal yet,
    or one the engine will refuse with a clear message when it opens it)."""
    if not Path(path).exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.Error:
        return None
    done = dt.date.fromisoformat(rows["last_day_done"]) if rows.get("last_day_done") else None
    running = dt.date.fromisoformat(rows["trading_day"]) if rows.get("trading_day") else None
    return ResumePoint(
        last_day_done=done,
        day_in_progress=running if running is not None and running != done else None,
        last_ns=int(rows.get("last_ns") or 0),
        stopped_cleanly=rows.get("stopped_cleanly") == "1",
    )
