"""Registers the adapters that ship with the engine, through the same hook third parties use."""

from __future__ import annotations

from adapters.base import Adapter, adapter_hookimpl


@adapter_hookimpl
def engine_register_adapters() -> dict[str, type[Adapter]]:
    from adapters.optimus.adapter import OptimusAdapter
    from adapters.paper.adapter import PaperAdapter
    from adapters.psx_feed.adapter import LiveFeedAdapter
    from adapters.pulse.adapter import PulseAdapter

    return {cls.name: cls for cls in (PaperAdapter, LiveFeedAdapter, OptimusAdapter, PulseAdapter)}
