"""Registers the adapters and sandboxes that ship with the engine, through the same entry-point
hook third parties use (``pyproject.toml``: ``[project.entry-points."engine.adapters"]``)."""

from __future__ import annotations

from engine.venue import SandboxCommand, VenueAdapter, adapter_hookimpl


@adapter_hookimpl
def engine_register_adapters() -> dict[str, type[VenueAdapter]]:
    from adapters.algo724.adapter import Algo724Adapter
    from adapters.optimus.adapter import OptimusAdapter
    from adapters.paper.adapter import PaperAdapter
    from adapters.psx_feed.adapter import LiveFeedAdapter
    from adapters.pulse.adapter import PulseAdapter

    return {cls.name: cls for cls in (PaperAdapter, LiveFeedAdapter, OptimusAdapter, PulseAdapter, Algo724Adapter)}


@adapter_hookimpl
def engine_register_sandboxes() -> dict[str, SandboxCommand]:
    from adapters.algo724.sandbox import COMMAND as ALGO724
    from adapters.optimus.sandbox import COMMAND as OPTIMUS
    from adapters.psx.sandbox import COMMAND as PSX  # Live Feed data + Optimus orders on one market
    from adapters.psx_feed.sandbox import COMMAND as PSX_FEED
    from adapters.pulse.sandbox import COMMAND as PULSE

    return {command.name: command for command in (PSX, PSX_FEED, OPTIMUS, PULSE, ALGO724)}
