"""Finding adapters and sandboxes by name, through the ``engine.adapters`` entry-point group.

Every adapter, the shipped ones included, registers the same way a third-party package does: an
entry point in the ``engine.adapters`` group names a module with ``@adapter_hookimpl`` functions
(the way pytest and datasette find plugins). So the engine never imports ``adapters``: the shipped
ones are found because this project's ``pyproject.toml`` declares ``adapters.builtin`` there.

- ``engine_register_adapters() -> {name: AdapterClass}``
- ``engine_register_sandboxes() -> {name: SandboxCommand}``: a local sandbox of a venue
  (``engine sandbox NAME ARGS...``; :class:`~engine.venue.sandbox.SandboxCommand`).
"""

from __future__ import annotations

import pluggy

from engine.venue.contract import VenueAdapter
from engine.venue.sandbox import SandboxCommand

ENTRY_POINT_GROUP = "engine.adapters"
adapter_hookspec = pluggy.HookspecMarker(ENTRY_POINT_GROUP)
adapter_hookimpl = pluggy.HookimplMarker(ENTRY_POINT_GROUP)


class _AdapterSpec:
    @adapter_hookspec
    def engine_register_adapters(self) -> dict[str, type[VenueAdapter]]:  # type: ignore[empty-body]
        """Return ``{name: AdapterClass}`` for the adapters this plugin provides."""

    @adapter_hookspec
    def engine_register_sandboxes(self) -> dict[str, SandboxCommand]:  # type: ignore[empty-body]
        """Return ``{name: SandboxCommand}`` for the local venue sandboxes this plugin provides."""


class UnknownAdapter(LookupError):
    pass


def _plugins() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(_AdapterSpec)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm


def adapter_registry() -> dict[str, type[VenueAdapter]]:
    """All adapters by name: the shipped ones plus those third-party packages register."""
    registry: dict[str, type[VenueAdapter]] = {}
    for mapping in _plugins().hook.engine_register_adapters():
        registry.update(mapping)
    return registry


def sandbox_registry() -> dict[str, SandboxCommand]:
    """Every registered venue sandbox by name."""
    registry: dict[str, SandboxCommand] = {}
    for mapping in _plugins().hook.engine_register_sandboxes():
        registry.update(mapping)
    return registry


def get_adapter(name: str) -> type[VenueAdapter]:
    registry = adapter_registry()
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry)) or "none"
        raise UnknownAdapter(f"unknown adapter {name!r}; known adapters: {known}") from None
