"""What the gate knows about one instrument, kept in one object by whoever owns the market data.

The checks used to ask the runtime five questions per order (reference, band, halt, last trade,
mid), each a method call and two dict lookups. One lookup now hands them this object, and the
circuit band lives here, built once per reference price, so no check keeps a cache of its own that
could drift from the venue's band.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from engine.risk.bands import price_band
from engine.risk.rulepack import RulePack

__all__ = ["HasMid", "InstrumentFacts"]


class HasMid(Protocol):
    """A book, or anything that knows the instrument's mid price. ``known_mid`` is the mid when
    already worked out for the current touch, else None (then ``mid`` works it out)."""

    known_mid: Decimal | None

    @property
    def mid(self) -> Decimal | None: ...


class InstrumentFacts:
    """Reference (previous close / LDCP), today's band, closing price, last trade, halts and mid.

    ``band`` is exact and rounded inward to the tick (:func:`~engine.risk.bands.price_band`) from
    the pack's rule; None without a reference or a pack. ``halted`` says why trading is stopped
    (a venue halt first, then a band hit), None while it trades.
    """

    __slots__ = ("book", "pack", "tick", "reference", "band", "closing", "last_price", "venue_halt", "band_halt")

    def __init__(self, book: HasMid, tick: Decimal, pack: RulePack | None, reference: Decimal | None) -> None:
        self.book = book
        self.pack = pack
        self.tick = tick
        self.closing: Decimal | None = None
        self.last_price: Decimal | None = None
        self.venue_halt: str | None = None
        self.band_halt: str | None = None
        self.reference: Decimal | None = None
        self.band: tuple[Decimal, Decimal] | None = None
        self.set_reference(reference)

    def set_reference(self, reference: Decimal | None) -> None:
        """A new day's reference price: the band is rebuilt here and nowhere else."""
        self.reference = reference if reference is not None and reference > 0 else None
        pack = self.pack
        self.band = (
            price_band(self.reference, self.tick, pack.band_pct, pack.band_abs_floor)
            if self.reference is not None and pack is not None and pack.circuit_band else None
        )

    @property
    def halted(self) -> str | None:
        return self.venue_halt or self.band_halt

    @property
    def mid(self) -> Decimal | None:
        return self.book.mid
