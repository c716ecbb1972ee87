"""The midchains_fix adapter's durable memory (adapters/midchains/state.py): orders as the gateway
last reported them and executions by ExecID, surviving a reopen of the file."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

from adapters.midchains.state import OrderRow, OrderState
from engine.model import Fill, Liquidity, OrderStatus, OrderType, Side, TimeInForce

D = Decimal
S = OrderStatus


def row(client_id: str, status: OrderStatus, cum: str = "0") -> OrderRow:
    return OrderRow(client_id, client_id, "LTCUSD", Side.BUY, D("0.5"), D("140.25"), OrderType.LIMIT, TimeInForce.GTC,
                    10_000, None, status, D(cum), f"O-{client_id}", f"{client_id}~1", 1, 7)


def fill(exec_id: str, ts: int) -> Fill:
    return Fill("mc", "LTCUSD", "a", "O-a", exec_id, Side.BUY, D("141.78"), D("0.1"), ts, Liquidity.TAKER)


def test_orders_and_executions_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    state = OrderState(path)
    for client_id, status in (("a", S.PARTIALLY_FILLED), ("b", S.FILLED), ("c", S.PENDING_CANCEL), ("d", S.NEW)):
        state.save(row(client_id, status, "0.1" if client_id in "ac" else "0"))
    assert state.add_fill(fill("E1", 100)) and state.add_fill(fill("E2", 200))
    state.close()
    again = OrderState(path)
    assert not again.add_fill(fill("E1", 300))  # the same ExecID: a repeat, never delivered twice
    assert [f.exec_id for f in again.fills_since("mc", 150)] == ["E2"]
    got = again.fills_since("mc", 0)[0]
    assert (got.qty, got.price, got.liquidity) == (D("0.1"), D("141.78"), Liquidity.TAKER)
    assert [r.client_id for r in again.open_orders()] == ["a", "c", "d"]
    assert again.by_root("b") == row("b", S.FILLED)
    # a pending state is the live one the venue works
    assert again.by_client_id("c").venue_order("mc").status is S.PARTIALLY_FILLED  # type: ignore[union-attr]
    assert again.by_client_id("d").venue_order("mc").status is S.NEW  # type: ignore[union-attr]
    assert again.by_client_id("nope") is None


def test_a_file_from_before_the_sent_and_replace_columns_is_migrated(tmp_path: Path) -> None:
    """Issue 23: rows now keep whether the D left and the unanswered G. A state file written before
    opens with both columns added; its rows count as sent (the D may have left: UNKNOWN, never
    "never received"), with no pending replace."""
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE mc_orders (client_id TEXT PRIMARY KEY, root TEXT NOT NULL UNIQUE, symbol TEXT NOT NULL, "
               "side TEXT NOT NULL, qty TEXT NOT NULL, price TEXT, order_type TEXT NOT NULL, tif TEXT NOT NULL, "
               "base INTEGER NOT NULL, expire_ns INTEGER, status TEXT NOT NULL, cum_qty TEXT NOT NULL, "
               "venue_order_id TEXT NOT NULL, clordid TEXT NOT NULL, chain INTEGER NOT NULL, "
               "updated_ns INTEGER NOT NULL)")
    db.execute("INSERT INTO mc_orders VALUES ('p', 'p', 'LTCUSD', 'buy', '0.5', '140', 'limit', 'gtc', 10000, NULL, "
               "'pending_new', '0', '', 'p', 0, 7)")
    db.commit()
    db.close()
    state = OrderState(path)
    old = state.by_client_id("p")
    assert old is not None and old.sent and old.pending_replace == ""
    fresh = row("q", S.NEW)
    fresh.sent, fresh.pending_replace = False, "q~2|0.4|141|10000"
    state.save(fresh)
    assert state.by_client_id("q") == fresh
    assert state.filled("q") == (0, 0)
