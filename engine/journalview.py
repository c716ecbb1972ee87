"""``engine journal inspect``: a journal's orders, fills, positions and account, for a human.

Read-only (no lock, no migration): it can look at the journal of an engine that is running.
Positions are every applied fill replayed through the engine's own FIFO accounting; the account is
the last snapshot plus the movements journaled after it. All amounts are exact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path

from engine.clock import KARACHI, NS_PER_S
from engine.journal import Journal
from engine.portfolio import Position

ZERO = Decimal(0)


def _time(ns: int | None) -> str:
    if not ns:
        return "-"
    return dt.datetime.fromtimestamp(ns / NS_PER_S, KARACHI).strftime("%Y-%m-%d %H:%M:%S")


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    if len(rows) <= 1:
        return ["  (none)"]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  " + "  ".join("-" * w for w in widths))
    return lines


def positions(journal: Journal) -> dict[str, dict[str, Position]]:
    """Every strategy's positions from all applied fills."""
    books: dict[str, dict[str, Position]] = {}
    for journaled in journal.fills():
        if not journaled.applied:
            continue
        fill = journaled.fill
        book = books.setdefault(journaled.strategy, {})
        position = book.get(fill.symbol)
        if position is None:
            position = book[fill.symbol] = Position(fill.symbol)
        position.apply_fill(fill.side, fill.qty, fill.price, fill.fee)
    return books


def account(journal: Journal) -> dict[str, dict[str, Decimal | dict[str, Decimal]]]:
    """Per venue: cash, unsettled cash and holdings now (last snapshot + movements after it)."""
    result: dict[str, dict] = {}
    snapshot = journal.last_snapshot()
    after_ts = -1
    if snapshot is not None:
        _, _, state = snapshot
        row = journal.db.execute("SELECT ts FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()
        after_ts = row[0]
        for venue, saved in state["venues"].items():
            result[venue] = {
                "cash": Decimal(saved["cash"]), "unsettled_cash": Decimal(saved["unsettled_cash"]),
                "holdings": {s: Decimal(q) for s, q in saved["held"].items()},
            }
    last_fill = snapshot[0] if snapshot is not None else 0
    rows = journal.db.execute(
        "SELECT venue, kind, symbol, amount FROM movements WHERE (fill_seq > ?) OR (fill_seq IS NULL AND ts > ?) "
        "ORDER BY seq", (last_fill, after_ts),
    )
    for row in rows:
        entry = result.setdefault(row["venue"], {"cash": ZERO, "unsettled_cash": ZERO, "holdings": {}})
        amount = Decimal(row["amount"])
        kind = row["kind"]
        if kind == "cash":
            entry["cash"] += amount
        elif kind == "cash_unsettled":
            entry["unsettled_cash"] += amount
        elif kind == "settled_cash":
            entry["cash"] += amount
            entry["unsettled_cash"] -= amount
        elif kind in ("shares", "shares_unsettled"):
            entry["holdings"][row["symbol"]] = entry["holdings"].get(row["symbol"], ZERO) + amount
    return result


def inspect_text(path: Path, orders: int = 20, fills: int = 20) -> str:
    journal = Journal.open_readonly(path)
    try:
        return "\n".join(_lines(journal, orders, fills))
    finally:
        journal.close()


def _lines(journal: Journal, n_orders: int, n_fills: int) -> Iterable[str]:
    runs = journal.runs()
    yield f"journal {journal.path} (schema v{journal.schema_version()})"
    yield (f"last word {_time(journal.last_ns)}; trading day {journal.meta('trading_day') or '-'}, "
           f"last day run to its close {journal.meta('last_day_done') or '-'}")
    yield ""
    yield "runs"
    yield from _table([("run", "started", "first day", "stopped", "how")] + [
        (str(r["run_id"]), _time(r["started_ns"]), r["trading_day"] or "-", _time(r["stopped_ns"]),
         r["stopped_by"] or ("running, or killed" if r["stopped_ns"] is None else "-"))
        for r in runs[-10:]
    ])
    yield ""
    yield "account (last snapshot + movements since)"
    rows = [("venue", "cash", "unsettled cash", "holdings")]
    for venue, entry in sorted(account(journal).items()):
        held = " ".join(f"{s}:{q}" for s, q in sorted(entry["holdings"].items()) if q) or "none"
        rows.append((venue, str(entry["cash"]), str(entry["unsettled_cash"]), held))
    yield from _table(rows)
    yield ""
    yield "positions by strategy (every applied fill, FIFO)"
    rows = [("strategy", "symbol", "qty", "avg cost", "gross", "fees", "net realized", "bought", "sold")]
    for strategy, book in sorted(positions(journal).items()):
        for symbol, p in sorted(book.items()):
            avg = f"{p.avg_cost:.4f}" if p.qty else "-"
            rows.append((strategy, symbol, str(p.qty), avg, str(p.gross_pnl), str(p.fees), str(p.realized_pnl),
                         str(p.bought), str(p.sold)))
    yield from _table(rows)
    yield ""
    open_rows = journal.open_orders()
    yield f"open orders ({len(open_rows)})"
    yield from _table([("client id", "strategy", "symbol", "side", "qty", "filled", "price", "status", "venue id")] + [
        (o.client_id, o.strategy, o.symbol, o.side.value, str(o.qty), str(o.cum_qty),
         str(o.price) if o.price is not None else "market", o.status.value, o.venue_order_id or "-")
        for o in open_rows
    ])
    yield ""
    recent = journal.orders(n_orders)
    yield f"last {len(recent)} orders"
    yield from _table([("updated", "client id", "strategy", "symbol", "side", "qty", "filled", "price", "status",
                        "why")] + [
        (_time(r["updated_ns"]), r["client_id"], r["strategy"], r["symbol"], r["side"], r["qty"], r["cum_qty"],
         r["price"] or "market", r["status"], (f"{r['reject_code']} " if r["reject_code"] else "") + r["reason"])
        for r in recent
    ])
    yield ""
    total = journal.db.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
    rows_f = list(journal.db.execute("SELECT * FROM fills ORDER BY seq DESC LIMIT ?", (n_fills,)))
    yield f"last {len(rows_f)} of {total} fills"
    yield from _table([("time", "exec id", "client id", "strategy", "symbol", "side", "qty", "price", "fee",
                        "fee from", "applied")] + [
        (_time(r["ts"]), r["exec_id"], r["client_id"], r["strategy"], r["symbol"], r["side"], r["qty"], r["price"],
         r["fee"], r["fee_source"] or "-", "yes" if r["applied"] else "NO")
        for r in rows_f
    ])
    controls = journal.latest_controls()
    if controls:
        yield ""
        yield "controls"
        yield from _table([("kind", "key", "since", "state")] + [
            (kind, key, _time(ts), ", ".join(f"{k}={v}" for k, v in sorted(state.items())))
            for (kind, key), (ts, state) in sorted(controls.items())
        ])
    saved = journal.strategy_states()
    if saved:
        yield ""
        yield "saved strategy state: " + ", ".join(sorted(saved))
