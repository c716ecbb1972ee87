"""FIFO positions and exact realized PnL."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from engine.model import Side
from engine.portfolio import Position

D = Decimal


def test_round_trip_realizes_exact_fifo_pnl():
    p = Position("MEBL")
    p.apply_fill(Side.BUY, D(100), D("187.50"))
    p.apply_fill(Side.BUY, D(100), D("187.60"))
    assert p.avg_cost == D("187.55")
    p.apply_fill(Side.SELL, D(150), D("187.70"))
    assert p.realized_pnl == D("25.00")  # 100 x 0.20 from the first lot, 50 x 0.10 from the second
    assert p.qty == D(50) and p.avg_cost == D("187.60")
    p.apply_fill(Side.SELL, D(50), D("187.40"))
    assert p.realized_pnl == D("15.00")
    assert p.qty == 0 and p.avg_cost == 0 and p.cost == 0


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


fills = st.lists(
    st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 500), st.integers(7000, 8000)),
    min_size=1,
    max_size=60,
)


@given(fills)
def test_pnl_is_exact_and_conserves_cash(trades):
    """Realized + unrealized always equals the cash the fills moved plus the marked position,
    to the last paisa, with no rounding residue."""
    p = Position("PSO")
    cash = D(0)
    for side, qty, cents in trades:
        price = D(cents) / 100
        p.apply_fill(side, D(qty), price)
        cash += -D(qty) * price if side is Side.BUY else D(qty) * price
        mark = price
        assert p.realized_pnl + p.unrealized_pnl(mark) == cash + p.qty * mark
        assert p.realized_pnl == p.realized_pnl.quantize(D("0.01"))
