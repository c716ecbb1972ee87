"""The venue port's shape (issue 19, item 1): dependencies point one way, a feed-only adapter has
no order methods, and the shipped adapters are found like any third-party one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from engine.venue import MarketDataAdapter, OrderEntryAdapter, adapter_registry, sandbox_registry

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_nothing_in_the_engine_imports_adapters() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(name for name in _imports(path) if name.split(".")[0] == "adapters")
        for path in (ROOT / "engine").rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_adapters_import_no_engine_internals_beyond_the_port_and_model() -> None:
    """An adapter may use the port, the model and the engine's leaf utilities (clock, rejects,
    secrets...), never the runtime, the app or the command line: a sandbox does not pretend to be
    the engine. Running an engine against a sandbox is the engine's (engine/sandboxrun.py)."""
    forbidden = {"engine.runtime", "engine.app", "engine.context", "engine.recovery", "engine.loader",
                 "engine.cli", "engine.sandboxrun"}
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & forbidden)
        for path in (ROOT / "adapters").rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_shipped_adapters_register_through_the_entry_point_group() -> None:
    registry = adapter_registry()
    assert {"paper", "optimus", "pulse", "psx_feed"} <= set(registry)
    assert issubclass(registry["psx_feed"], MarketDataAdapter)
    for name in ("paper", "optimus", "pulse"):
        assert issubclass(registry[name], OrderEntryAdapter), name
    assert {"psx", "psx_feed", "optimus", "pulse"} <= set(sandbox_registry())


def test_a_market_data_adapter_has_no_order_methods() -> None:
    for method in ("submit", "cancel", "amend", "query_open_orders", "query_fills", "cancel_all",
                   "set_rate_limits", "configure_mmp"):
        assert not hasattr(MarketDataAdapter, method), method


def test_a_feed_named_where_orders_go_is_a_config_error(tmp_path: Path) -> None:
    from engine.app import Engine
    from engine.config import ConfigError, load_config

    config = (ROOT / "config.psx-sandbox.yaml").read_text(encoding="utf-8")
    assert "    adapter: optimus " in config
    path = tmp_path / "config.yaml"
    path.write_text(config.replace("    adapter: optimus ", "    adapter: psx_feed ", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"carries market data only and takes no orders"):
        Engine(load_config(path))
