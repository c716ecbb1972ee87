"""The price bands a simulated venue applies.

Why a venue needs them: the simulated exchange (adapters/sim) refuses an order outside the day's
price band, and draws a band around a reference price for a market it simulates. It uses the
engine's own :func:`price_band` and :func:`band_around` (:mod:`engine.risk.bands`), so the venue
and the engine's risk gate never disagree on a band edge. This is the name adapters import.
"""

from engine.risk.bands import band_around, price_band

__all__ = ["band_around", "price_band"]
