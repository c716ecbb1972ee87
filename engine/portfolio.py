"""Per-strategy positions and PnL, exact to the paisa.

Average-cost accounting: buying into a long (or selling into a short) moves the average cost;
reducing a position realizes ``(price - avg_cost) * closed_qty`` (sign-adjusted). Fees reduce
realized PnL when they occur.
"""

from __future__ import annotations

from decimal import Decimal

from engine.model import ZERO, Side


class Position:
    __slots__ = ("symbol", "qty", "avg_cost", "realized_pnl", "fees", "bought", "sold")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.qty = ZERO
        self.avg_cost = ZERO
        self.realized_pnl = ZERO
        self.fees = ZERO
        self.bought = ZERO
        self.sold = ZERO

    def apply_fill(self, side: Side, qty: Decimal, price: Decimal, fee: Decimal = ZERO) -> None:
        signed = qty if side is Side.BUY else -qty
        if side is Side.BUY:
            self.bought += qty
        else:
            self.sold += qty
        old = self.qty
        new = old + signed
        if old == 0 or (old > 0) == (signed > 0):
            # opening or adding: weighted average cost
            self.avg_cost = (self.avg_cost * abs(old) + price * qty) / abs(new)
        else:
            closed = min(abs(old), qty)
            direction = 1 if old > 0 else -1
            self.realized_pnl += (price - self.avg_cost) * closed * direction
            if new == 0:
                self.avg_cost = ZERO
            elif (new > 0) != (old > 0):
                # flipped through zero: the remainder opens at this fill's price
                self.avg_cost = price
        self.qty = new
        if fee:
            self.fees += fee
            self.realized_pnl -= fee

    def unrealized_pnl(self, mark: Decimal | None) -> Decimal:
        """PnL of the open quantity marked at ``mark`` (mid or last); zero without a mark."""
        if mark is None or self.qty == 0:
            return ZERO
        return (mark - self.avg_cost) * self.qty

    def __repr__(self) -> str:
        return f"Position({self.symbol} {self.qty} @ {self.avg_cost} realized={self.realized_pnl})"
