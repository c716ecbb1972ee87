"""The FIX session's durable state: both sequence numbers and the application messages we may be
asked to resend, per session and trading day, in one SQLite file.

Why SQLite beside the journal and not the journal: adapters import only the port, the model and the
kit (tests/unit/test_venue_port.py), so the engine's journal is out of reach, and its schema is a
user-visible contract this layer must not change. A separate file keeps the session's bookkeeping
(one write per FIX message) out of the journal's transactions. The caller names the path; the
adapter will put it next to the journal (``<journal>.midchains-fix.sqlite``).

Durability: WAL with ``synchronous=NORMAL``, like the other adapter stores (adapters/optimus,
adapters/sim): a committed write survives the process dying; a power cut may lose the last few,
which the counterpart's ResendRequest or our gap detection then recovers.

The trading day (MID-13): sequence numbers reset at 01:00 UTC. :func:`trading_day` names the day a
moment belongs to; :meth:`SequenceStore.open_day` starts both sides at 1 (and forgets the old
day's messages) when the day changed since the last write.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["DAY_BOUNDARY", "SequenceStore", "trading_day"]

# MID-13: the document's "Sequence numbers reset daily at 01:00 UTC"; one configurable boundary.
DAY_BOUNDARY = timedelta(hours=1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS session (
    session_key TEXT PRIMARY KEY,
    day TEXT NOT NULL,
    next_out INTEGER NOT NULL,
    next_in INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sent (
    session_key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    frame BLOB NOT NULL,
    PRIMARY KEY (session_key, seq)
);
"""


def trading_day(now_ns: int, boundary: timedelta = DAY_BOUNDARY) -> str:
    """The trading day (ISO date) that the UTC moment ``now_ns`` belongs to: a day starts at
    ``boundary`` past midnight UTC, so 00:59:59 UTC still belongs to the day before."""
    moment = datetime.fromtimestamp(now_ns // 1_000_000_000, tz=UTC) - boundary  # whole seconds: exact
    return moment.date().isoformat()


class SequenceStore:
    """Sequence numbers and sent application frames of one FIX session (``session_key``, e.g.
    ``SENDER->TARGET``), surviving a restart of the process."""

    def __init__(self, path: Path | str, session_key: str) -> None:
        self.session_key = session_key
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute(
            "SELECT day, next_out, next_in FROM session WHERE session_key = ?", (session_key,)
        ).fetchone()
        if row is None:
            self.day, self.next_out, self.next_in = "", 1, 1
        else:
            self.day, self.next_out, self.next_in = str(row[0]), int(row[1]), int(row[2])
        self._committed_in = self.next_in  # the next_in a restart starts from (see commit_inbound)

    def open_day(self, day: str) -> bool:
        """Make ``day`` the current trading day; when it is a new one, both sides start at 1 and the
        old day's frames are dropped (they can no longer be asked for). True when it reset."""
        if day == self.day:
            return False
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM sent WHERE session_key = ?", (self.session_key,))
            self.day, self.next_out, self.next_in = day, 1, 1
            self._committed_in = 1
            self._save()
        return True

    def record_sent(self, seq: int, frame: bytes | None) -> None:
        """``seq`` was given to an outbound message; ``frame`` is kept when it may be resent
        (application messages; administrative ones are gap-filled instead). Written before the
        bytes leave, so a restart never reuses a sequence number."""
        with self._db:
            self._db.execute("BEGIN")
            if frame is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO sent (session_key, seq, frame) VALUES (?, ?, ?)",
                    (self.session_key, seq, frame),
                )
            self._save(next_out=seq + 1)
        # only once it is durable: a failed write leaves the number unused, so the message reads as
        # never numbered (the link reports it not sent) and the next one takes the same number
        self.next_out = seq + 1

    def set_next_in(self, seq: int) -> None:
        """The next inbound sequence number we expect (after processing one, a gap fill or a reset);
        durable only at :meth:`commit_inbound`."""
        self.next_in = seq

    def commit_inbound(self) -> None:
        """Make ``next_in`` durable: called once the messages before it have been handed on (the
        transport calls it after each read's messages reached the adapter). A crash before the
        commit restarts from the last committed number, so the gateway resends what the adapter may
        not have seen (PossDup, de-duplicated by ExecID), and nothing is lost; and the SQLite write
        is one per socket read, not one per message (26 µs each: half of a market-data message's cost)."""
        if self.next_in != self._committed_in:
            self._committed_in = self.next_in
            self._save()

    def sent_frames(self, begin: int, end: int) -> dict[int, bytes]:
        """The kept frames with ``begin <= seq <= end``."""
        rows = self._db.execute(
            "SELECT seq, frame FROM sent WHERE session_key = ? AND seq BETWEEN ? AND ? ORDER BY seq",
            (self.session_key, begin, end),
        ).fetchall()
        return {int(seq): bytes(frame) for seq, frame in rows}

    def changes(self) -> int:
        """Rows SQLite has written through this store since it opened (for tests and metrics)."""
        return int(self._db.total_changes)

    def close(self) -> None:
        self._db.close()

    def _save(self, next_out: int | None = None) -> None:
        self._db.execute(
            "INSERT INTO session (session_key, day, next_out, next_in) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(session_key) DO UPDATE SET day = excluded.day, next_out = excluded.next_out,"
            " next_in = excluded.next_in",
            (self.session_key, self.day, self.next_out if next_out is None else next_out, self._committed_in),
        )
