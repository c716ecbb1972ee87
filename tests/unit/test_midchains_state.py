"""The midchains_fix adapter's durable memory (adapters/midchains/state.py): orders as the gateway
last reported them and executions by ExecID, surviving a reopen of the file."""

from __future__ import annotations

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
