"""The engine's port to venues: the contracts adapters implement, the events they deliver, what
they declare (capabilities, rate limits, options), the bad-input vocabulary they report in, the
registry that finds them, the one credential filter for their logs, and what a sandbox is and
takes from an engine config (:func:`venue_from_config`).

The rule, checked by tests/unit/test_venue_port.py: nothing in ``engine`` imports ``adapters``, and from
``engine`` an adapter imports only :mod:`engine.model` and ``engine.venue`` (with its submodules).
What else a venue needs from the engine the port re-exports, one submodule per need, each saying
why; the heavier ones are loaded only by the adapters that import them, never by
``import engine.venue``:

- :mod:`engine.venue.clock`: time (``Clock``, ``Timer``, ``NS_PER_S``, ``KARACHI`` and the clocks);
- :mod:`engine.venue.rejects`: the reject codes a venue's refusals map to;
- :mod:`engine.venue.badinput`: the vocabulary for bad frames from a venue;
- :mod:`engine.venue.ratelimit`: the buckets behind the rate limits a venue declares;
- :mod:`engine.venue.bands`, :mod:`engine.venue.fees`: price bands and fee schedules a simulated
  venue applies;
- :mod:`engine.venue.sessions`: the session schedule a simulated venue follows;
- :mod:`engine.venue.recording`: the recordings the replay venue reads;
- :mod:`engine.venue.progress`: the progress display a long replay shows.
"""

from engine.secrets import REDACTED, RedactingFilter
from engine.venue.contract import (
    Adapter,
    AdapterOptions,
    Capabilities,
    MarketDataAdapter,
    OrderEntryAdapter,
    RateLimit,
    VenueAdapter,
    VenueEvents,
)
from engine.venue.registry import (
    ENTRY_POINT_GROUP,
    UnknownAdapter,
    adapter_hookimpl,
    adapter_registry,
    get_adapter,
    sandbox_registry,
)
from engine.venue.sandbox import SandboxCommand, SandboxConfig, SandboxLink, SandboxStartError, venue_from_config

__all__ = [
    "ENTRY_POINT_GROUP",
    "Adapter",
    "AdapterOptions",
    "Capabilities",
    "MarketDataAdapter",
    "OrderEntryAdapter",
    "REDACTED",
    "RateLimit",
    "RedactingFilter",
    "SandboxCommand",
    "SandboxConfig",
    "SandboxLink",
    "SandboxStartError",
    "UnknownAdapter",
    "VenueAdapter",
    "VenueEvents",
    "adapter_hookimpl",
    "adapter_registry",
    "get_adapter",
    "sandbox_registry",
    "venue_from_config",
]
