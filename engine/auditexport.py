"""``engine journal export``: the audit trail (SECP) of a journal as CSV or Parquet.

One row per order event (every state an order went through: sent, refused, acknowledged, amended,
cancel requested, cancelled, rejected, expired, filled) and one per fill, in the order they were
journaled, each with the algorithm id and strategy that sent the order, the engine's time and the
venue's, and the reject code and reason. Read-only, like ``engine journal inspect``: it can export
the journal of an engine that is running (what the engine has committed so far).

Amounts are written as the journal holds them, exact decimal text (Parquet: strings too, never
floats). Times are integer nanoseconds since the epoch (UTC) with an ISO 8601 copy in Karachi time.
``venue_ts`` is the time the event carries: the venue's for what the venue reported (an ack, a
fill, a cancel, a reject); for what the engine did itself (an order sent, a local refusal, a cancel
requested) the engine's. ``engine_ts`` is when the engine recorded the row (empty for rows written
by an engine from before the audit columns).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.clock import KARACHI, NS_PER_S
from engine.journal import PRIVATE_MODE, Journal
from engine.outfile import output_target, write_atomic

#: the export's columns, in order (CSV header and Parquet schema alike)
COLUMNS: tuple[str, ...] = (
    "record", "seq", "venue", "algo_id", "strategy", "client_id", "venue_order_id", "symbol", "side",
    "order_type", "tif", "status", "price", "qty", "cum_qty", "fill_qty", "fill_price", "fee", "exec_id",
    "liquidity", "reject_code", "reason", "detail", "engine_ts", "engine_time", "venue_ts", "venue_time",
)
#: integer columns (the rest are text); empty where a row has none
INT_COLUMNS = frozenset({"seq", "reject_code", "engine_ts", "venue_ts"})
FORMATS = ("csv", "parquet")


class ExportError(Exception):
    """The export cannot be made; the message says why and what to do."""


def _iso(ns: int | None) -> str:
    if ns is None:
        return ""
    return dt.datetime.fromtimestamp(ns / NS_PER_S, KARACHI).isoformat(timespec="microseconds")


def audit_rows(journal: Journal) -> Iterator[dict[str, Any]]:
    """Every order event, then every fill, each with its order's algo id, strategy and reject
    fields (the order's final ones: the journal keeps the code and reason on the order)."""
    db = journal.db
    for r in db.execute(
        "SELECT e.seq, e.venue, e.client_id, e.ts, e.status, e.price, e.qty, e.cum_qty, e.detail, e.engine_ts, "
        "o.algo_id, o.strategy, o.symbol, o.side, o.order_type, o.tif, o.venue_order_id, o.reject_code, o.reason "
        "FROM order_events e LEFT JOIN orders o ON o.venue = e.venue AND o.client_id = e.client_id ORDER BY e.seq"
    ):
        rejected = r["status"] == "rejected"
        yield {
            "record": "order_event", "seq": r["seq"], "venue": r["venue"], "algo_id": r["algo_id"] or "",
            "strategy": r["strategy"] or "", "client_id": r["client_id"], "venue_order_id": r["venue_order_id"] or "",
            "symbol": r["symbol"] or "", "side": r["side"] or "", "order_type": r["order_type"] or "",
            "tif": r["tif"] or "", "status": r["status"], "price": r["price"] or "", "qty": r["qty"],
            "cum_qty": r["cum_qty"], "fill_qty": "", "fill_price": "", "fee": "", "exec_id": "", "liquidity": "",
            "reject_code": r["reject_code"] if rejected else None, "reason": (r["reason"] or "") if rejected else "",
            "detail": r["detail"], "engine_ts": r["engine_ts"], "engine_time": _iso(r["engine_ts"]),
            "venue_ts": r["ts"], "venue_time": _iso(r["ts"]),
        }
    for r in db.execute(
        "SELECT f.*, o.algo_id AS algo_id, o.order_type AS order_type, o.tif AS tif FROM fills f "
        "LEFT JOIN orders o ON o.venue = f.venue AND o.client_id = f.client_id ORDER BY f.seq"
    ):
        yield {
            "record": "fill", "seq": r["seq"], "venue": r["venue"], "algo_id": r["algo_id"] or r["strategy"],
            "strategy": r["strategy"], "client_id": r["client_id"], "venue_order_id": r["venue_order_id"],
            "symbol": r["symbol"], "side": r["side"], "order_type": r["order_type"] or "", "tif": r["tif"] or "",
            "status": "fill" if r["applied"] else "fill_not_applied", "price": "", "qty": "", "cum_qty": "",
            "fill_qty": r["qty"], "fill_price": r["price"], "fee": r["fee"], "exec_id": r["exec_id"],
            "liquidity": r["liquidity"], "reject_code": None, "reason": "", "detail": "",
            "engine_ts": r["engine_ts"], "engine_time": _iso(r["engine_ts"]), "venue_ts": r["ts"],
            "venue_time": _iso(r["ts"]),
        }


def _csv_text(rows: Iterator[dict[str, Any]]) -> tuple[str, int]:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    n = 0
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        n += 1
    return out.getvalue(), n


def _parquet_bytes(rows: Iterator[dict[str, Any]]) -> tuple[bytes, int]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ExportError(
            "--format parquet needs pyarrow (pip install 'psx-strategy-engine[audit]' or pip install pyarrow); "
            "--format csv needs nothing more"
        ) from None
    listed = list(rows)
    schema = pa.schema([(c, pa.int64() if c in INT_COLUMNS else pa.string()) for c in COLUMNS])
    table = pa.Table.from_pylist(listed, schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue(), len(listed)


def export(journal_path: Path, fmt: str, out: Path | None = None) -> tuple[Path, int]:
    """Write the audit trail of the journal at ``journal_path`` to ``out`` (default: beside the
    journal, ``<journal>.audit.<fmt>``). The path passes :mod:`engine.outfile`'s checks (a regular
    file or a new path) and is written atomically. Returns the file written and its row count."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    path = Path(out) if out is not None else Path(journal_path).with_name(f"{Path(journal_path).name}.audit.{fmt}")
    output_target(path)  # refused before any work (a directory, a FIFO, a device ...)
    journal = Journal.open_readonly(Path(journal_path))
    try:
        data, n = _csv_text(audit_rows(journal)) if fmt == "csv" else _parquet_bytes(audit_rows(journal))
    finally:
        journal.close()
    # owner-only when new: the export holds the account's orders and fills, like the journal
    return write_atomic(path, data, new_mode=PRIVATE_MODE), n

