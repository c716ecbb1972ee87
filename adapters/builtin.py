"""Registers the adapters and sandboxes that ship with the engine, through the same entry-point
hook third parties use (``pyproject.toml``: ``[project.entry-points."engine.adapters"]``)."""

from __future__ import annotations

from engine.venue import VenueAdapter, adapter_hookimpl


@adapter_hookimpl
def engine_register_adapters() -> dict[str, type[VenueAdapter]]:
    from adapters.optimus.adapter import OptimusAdapter
    from adapters.paper.adapter import PaperAdapter
    from adapters.psx_feed.adapter import LiveFeedAdapter
    from adapters.pulse.adapter import PulseAdapter

    return {cls.name: cls for cls in (PaperAdapter, LiveFeedAdapter, OptimusAdapter, PulseAdapter)}


@adapter_hookimpl
def engine_register_sandboxes() -> dict[str, str]:
    return {
        "psx": "adapters.psx.sandbox:main",  # Live Feed data + Optimus orders on one market
        "psx_feed": "adapters.psx_feed.sandbox:main",
        "optimus": "adapters.optimus.sandbox:main",
        "pulse": "adapters.pulse.sandbox:main",
    }
