"""The circuit band (PSX_RULES rule 6): the prices an instrument may trade at today.

One implementation serves the paper venue (which refuses and clamps prices with it) and the risk
gate (which refuses orders with it), so the two can never disagree about a band edge. Exact
``Decimal`` throughout: a band edge is a price, and a binary float would misplace it by a tick.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

__all__ = ["band_around", "price_band"]

ZERO = Decimal(0)


def price_band(
    reference: Decimal, tick: Decimal, pct: Decimal, abs_floor: Decimal = ZERO
) -> tuple[Decimal, Decimal]:
    """``(low, high)``: ``reference`` ± max(``reference`` x ``pct``, ``abs_floor``).

    The floor is PSX's "10% or Rs 1, whichever is higher", which matters for cheap stocks. Both
    bounds are rounded inward to the tick grid (low up, high down) so each is itself a valid price
    and no price outside the exact band is ever allowed; low is at least one tick, because a price
    must be positive.
    """
    if tick <= 0:
        raise ValueError(f"tick must be positive, got {tick}")
    if reference <= 0:
        raise ValueError(f"reference price must be positive, got {reference}")
    if pct < 0 or abs_floor < 0:
        raise ValueError(f"band percentage and floor must not be negative, got {pct} and {abs_floor}")
    half = max(reference * pct, abs_floor)
    low = ((reference - half) / tick).to_integral_value(rounding=ROUND_CEILING) * tick
    high = ((reference + half) / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
    if low < tick:
        low = tick
    return low.quantize(tick), high.quantize(tick)


def band_around(reference: Decimal, tick: Decimal, pct: Decimal = Decimal("0.10")) -> tuple[Decimal, Decimal]:
    """The band with no rupee floor: the paper venue's historical signature, kept so its callers
    and :func:`price_band` share one piece of arithmetic."""
    return price_band(reference, tick, pct)
