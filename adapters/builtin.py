"""Registers the adapters that ship with the engine, through the same hook third parties use."""

from __future__ import annotations

from adapters.base import Adapter, adapter_hookimpl


@adapter_hookimpl
def engine_register_adapters() -> dict[str, type[Adapter]]:
    from adapters.paper.adapter import PaperAdapter

    return {PaperAdapter.name: PaperAdapter}
