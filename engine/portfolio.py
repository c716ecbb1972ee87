"""Per-strategy positions and PnL, exact to the paisa.

FIFO lot accounting: each fill that opens or adds to a position becomes a lot; a fill that reduces
it closes the oldest lots first and realizes ``(exit - entry) * qty`` per lot. Only multiplication
and addition are involved, so realized PnL is exact in Decimal (average-cost accounting divides,
and leaves residues such as ``-605.000...0140``). Fees reduce realized PnL when they occur:
``realized_pnl`` is net of every fee paid (a buy's fee counts at the buy, not when its lot is
closed), ``gross_pnl`` is the same before fees, and ``fees`` their sum.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any

from engine.model import ZERO, Side


class Position:
    __slots__ = ("symbol", "qty", "cost", "realized_pnl", "fees", "bought", "sold", "_lots")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.qty = ZERO  # net: positive long, negative short
        self.cost = ZERO  # signed entry value of the open lots (sum of qty * price)
        self.realized_pnl = ZERO
        self.fees = ZERO
        self.bought = ZERO
        self.sold = ZERO
        self._lots: deque[list[Decimal]] = deque()  # [signed qty, price], oldest first

    @property
    def avg_cost(self) -> Decimal:
        """Average entry price of the open quantity (for display and marks; not used in PnL)."""
        return self.cost / self.qty if self.qty else ZERO

    def apply_fill(self, side: Side, qty: Decimal, price: Decimal, fee: Decimal = ZERO) -> None:
        signed = qty if side is Side.BUY else -qty
        if side is Side.BUY:
            self.bought += qty
        else:
            self.sold += qty
        lots = self._lots
        remaining = signed
        # close opposite-signed lots, oldest first
        while remaining and lots and (lots[0][0] > 0) != (remaining > 0):
            lot = lots[0]
            closing = min(abs(lot[0]), abs(remaining))
            direction = 1 if lot[0] > 0 else -1
            self.realized_pnl += (price - lot[1]) * closing * direction
            lot[0] -= closing * direction
            remaining += closing * direction
            self.cost -= lot[1] * closing * direction
            if not lot[0]:
                lots.popleft()
        if remaining:
            lots.append([remaining, price])
            self.cost += remaining * price
        self.qty += signed
        if fee:
            self.fees += fee
            self.realized_pnl -= fee

    @property
    def gross_pnl(self) -> Decimal:
        """Realized PnL before fees: net plus every fee paid."""
        return self.realized_pnl + self.fees

    def persisted(self) -> dict[str, Any]:
        """Exact state for the journal's snapshots: the open lots, not just their average."""
        return {
            "qty": str(self.qty), "cost": str(self.cost), "realized_pnl": str(self.realized_pnl),
            "fees": str(self.fees), "bought": str(self.bought), "sold": str(self.sold),
            "lots": [[str(q), str(p)] for q, p in self._lots],
        }

    @classmethod
    def restored(cls, symbol: str, saved: dict[str, Any]) -> Position:
        position = cls(symbol)
        position.qty, position.cost = Decimal(saved["qty"]), Decimal(saved["cost"])
        position.realized_pnl, position.fees = Decimal(saved["realized_pnl"]), Decimal(saved["fees"])
        position.bought, position.sold = Decimal(saved["bought"]), Decimal(saved["sold"])
        position._lots = deque([Decimal(q), Decimal(p)] for q, p in saved["lots"])
        return position

    def unrealized_pnl(self, mark: Decimal | None) -> Decimal:
        """PnL of the open quantity marked at ``mark`` (mid or last); zero without a mark."""
        if mark is None or self.qty == 0:
            return ZERO
        return mark * self.qty - self.cost

    def __repr__(self) -> str:
        return f"Position({self.symbol} {self.qty} cost={self.cost} realized={self.realized_pnl})"
