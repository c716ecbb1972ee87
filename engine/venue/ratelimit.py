"""The rate buckets behind a venue's declared :class:`~engine.venue.RateLimit`\\ s.

Why a venue needs them: an adapter paces its own requests (adapters/kit/pacing.py) with the same
token buckets the engine's rate limiter keeps for that venue (:func:`venue_buckets` builds them
from the declared limits), so adapter and engine agree on when the next order or cancel may go;
a sandbox enforces its venue's documented limits with a :class:`RateBucket` too. The buckets are
the engine's (:mod:`engine.risk.ratelimit`); this is the name adapters import.

Not imported by ``engine.venue`` itself: :mod:`engine.risk.ratelimit` imports the port.
"""

from engine.risk.ratelimit import RateBucket, TakeKind, venue_buckets

__all__ = ["RateBucket", "TakeKind", "venue_buckets"]
