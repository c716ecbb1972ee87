"""Average-cost positions and exact realized PnL."""

from decimal import Decimal

from engine.model import Side
from engine.portfolio import Position

D = Decimal


def test_round_trip_realizes_exact_pnl():
    p = Position("MEBL")
    p.apply_fill(Side.BUY, D(100), D("187.50"))
    p.apply_fill(Side.BUY, D(100), D("187.60"))
    assert p.avg_cost == D("187.55")
    p.apply_fill(Side.SELL, D(150), D("187.70"))
    assert p.realized_pnl == D("22.50")
    assert p.qty == D(50) and p.avg_cost == D("187.55")
    p.apply_fill(Side.SELL, D(50), D("187.40"))
    assert p.realized_pnl == D("15.00")
    assert p.qty == 0 and p.avg_cost == 0


def test_fees_reduce_realized_pnl():
    p = Position("KEL")
    p.apply_fill(Side.BUY, D(10), D("102.50"), fee=D("1.25"))
    assert p.realized_pnl == D("-1.25")


def test_flip_through_zero_opens_the_remainder_at_the_fill_price():
    p = Position("OGDC")
    p.apply_fill(Side.SELL, D(100), D("109.30"))
    p.apply_fill(Side.BUY, D(150), D("109.00"))
    assert p.qty == D(50)
    assert p.avg_cost == D("109.00")
    assert p.realized_pnl == D("30.00")


def test_unrealized_pnl_marks_the_open_quantity():
    p = Position("PSO")
    p.apply_fill(Side.BUY, D(200), D("75.12"))
    assert p.unrealized_pnl(D("75.22")) == D("20.00")
    assert p.unrealized_pnl(None) == 0
