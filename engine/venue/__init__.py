"""The engine's port to venues: the contracts adapters implement, the events they deliver, what
they declare (capabilities, rate limits, options), the bad-input vocabulary they report in, and the
registry that finds them, and the one credential filter for their logs. Nothing in ``engine``
imports ``adapters``; adapters import this."""

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
from engine.venue.sandbox import SandboxCommand, SandboxLink, SandboxStartError

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
    "SandboxLink",
    "SandboxStartError",
    "UnknownAdapter",
    "VenueAdapter",
    "VenueEvents",
    "adapter_hookimpl",
    "adapter_registry",
    "get_adapter",
    "sandbox_registry",
]
