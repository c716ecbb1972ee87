"""The venue port's shape (issue 19, item 1): dependencies point one way, a feed-only adapter has
no order methods, and the shipped adapters are found like any third-party one."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import absolute_imports

import engine.venue
from engine.venue import MarketDataAdapter, OrderEntryAdapter, adapter_registry, sandbox_registry

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    return {name for _line, name in absolute_imports(path)}


def test_nothing_in_the_engine_imports_adapters() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(name for name in _imports(path) if name.split(".")[0] == "adapters")
        for path in (ROOT / "engine").rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


ALLOWED_ENGINE_MODULES = ("engine.model", "engine.venue")


def _engine_imports(path: Path) -> list[tuple[int, str]]:
    """Every import of an ``engine`` module in ``path`` (module level, inside functions, under
    ``TYPE_CHECKING``), as (line, the module or ``module.name`` imported): ``from engine import x``
    names ``engine.x``, since ``x`` may be a submodule."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "engine")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "engine":
                found.extend((node.lineno, f"engine.{alias.name}") for alias in node.names)
            elif node.module.split(".")[0] == "engine":
                found.append((node.lineno, node.module))
    return sorted(found)


def _allowed(module: str) -> bool:
    return any(module == allowed or module.startswith(allowed + ".") for allowed in ALLOWED_ENGINE_MODULES)


def test_adapters_import_from_the_engine_only_the_model_and_the_port() -> None:
    """From ``engine``, adapters import only ``engine.model`` and ``engine.venue`` (and its
    submodules); everything else a venue needs (time, reject codes, rate buckets, bands, fees,
    sessions, a config's sandbox view) the port re-exports. An adapter then depends on one
    published surface, and the engine may rearrange the rest without breaking any venue."""
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in sorted((ROOT / "adapters").rglob("*.py"))
        for line, module in _engine_imports(path)
        if not _allowed(module)
    ]
    assert offenders == [], "adapters may import only engine.model and engine.venue:\n" + "\n".join(offenders)


def test_the_import_rule_scan_sees_function_level_and_aliased_imports(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "import engine.model\n"
        "from engine.venue.badinput import MALFORMED\n"
        "from engine import venue, clock\n"
        "def f():\n"
        "    import engine.config as config\n"
        "    from engine.sessions import SessionSchedule\n",
        encoding="utf-8",
    )
    imports = _engine_imports(source)
    assert [entry for entry in imports if not _allowed(entry[1])] == [
        (3, "engine.clock"), (5, "engine.config"), (6, "engine.sessions")]


PORT_MODULES = sorted(f"engine.venue.{info.name}" for info in pkgutil.iter_modules(engine.venue.__path__))
#: what a live adapter need not load: config models, holiday calendars, rule packs (the port's
#: sessions, fees and sandbox-config parts load them when asked)
HEAVY_FOR_THE_PORT = {"engine.config", "engine.sessions", "engine.risk.rulepack", "holidays", "yaml"}


def _loaded_by_importing(module: str) -> set[str]:
    """The modules a fresh interpreter has loaded after importing ``module`` alone (a cycle
    between the port and the engine module it re-exports fails here, whichever comes first)."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


@pytest.mark.e2e  # a fresh interpreter per module: about a second each
@pytest.mark.parametrize("module", ["engine.venue", *PORT_MODULES])
def test_each_part_of_the_port_imports_alone(module: str) -> None:
    assert module in _loaded_by_importing(module)


def test_importing_the_port_loads_no_config_sessions_or_rule_packs() -> None:
    assert _loaded_by_importing("engine.venue") & HEAVY_FOR_THE_PORT == set()


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
