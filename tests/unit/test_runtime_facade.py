"""The runtime's facade (engine/runtime/facade.py): the order context and the engine's driver use
the runtime only through the names their protocol lists, and the context does not import the
runtime's modules (issue 21)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from engine.clock import SimClock
from engine.runtime import Runtime
from engine.runtime.facade import EngineFacade, StrategyDesk

# the checkout: the folder with pyproject.toml above this file (wherever tests/ puts it)
ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())


def _members(protocol: type) -> set[str]:
    names = set(vars(protocol)) | set(getattr(protocol, "__annotations__", {}))
    return {name for name in names if not name.startswith("_")}


def _uses(path: Path, holders: set[str], self_attr: str) -> dict[str, int]:
    """Attributes read of the runtime in ``path``: ``holder.X`` for a local named in ``holders``,
    and ``self.<self_attr>.X``; each with its first line."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        by_name = isinstance(owner, ast.Name) and owner.id in holders
        by_self = (isinstance(owner, ast.Attribute) and owner.attr == self_attr
                   and isinstance(owner.value, ast.Name) and owner.value.id == "self")
        if by_name or by_self:
            found.setdefault(node.attr, node.lineno)
    return found


def _writes_below(path: Path, holders: set[str], self_attr: str) -> list[str]:
    """Attribute writes on something reached through the runtime (``rt.venues[name].status = ...``):
    the runtime's own attributes the protocol lists may be set (``rt.task_starter = ...``), its
    parts' state is the runtime's to change."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del))):
            continue
        owner = node.value
        depth = 0
        while isinstance(owner, (ast.Attribute, ast.Subscript, ast.Call)):
            if isinstance(owner, ast.Attribute) and owner.attr == self_attr and (
                isinstance(owner.value, ast.Name) and owner.value.id == "self"
            ):
                break
            owner = owner.func if isinstance(owner, ast.Call) else owner.value
            depth += 1
        rooted = (isinstance(owner, ast.Name) and owner.id in holders) or isinstance(owner, ast.Attribute)
        if rooted and depth:
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_neither_user_writes_the_runtimes_parts() -> None:
    """Issue 21's reaches were writes (``rt.venues[name].status = "recovering"``, ``.feed``,
    ``.mass_cancel``): a name check of ``rt.X`` does not see them."""
    found = (_writes_below(ROOT / "engine" / "app.py", {"rt", "runtime"}, "runtime")
             + _writes_below(ROOT / "engine" / "context.py", {"runtime"}, "_runtime"))
    assert not found, found


def test_the_write_scan_catches_the_old_reaches(tmp_path: Path) -> None:
    source = tmp_path / "app.py"
    source.write_text(
        "def run(self, rt, name):\n"
        "    rt.venues[name].status = 'recovering'\n"
        "    self.runtime.venues[name].feed = None\n"
        "    rt.task_starter = None\n"  # a listed attribute of the runtime itself: allowed
        "    self.observer.stalled = True\n"  # not the runtime: not looked at
    )
    found = _writes_below(source, {"rt", "runtime"}, "runtime")
    assert [line.split(": ", 1)[0] for line in found] == ["app.py:2", "app.py:3"], found


def test_the_engine_driver_uses_only_the_engine_facade() -> None:
    used = _uses(ROOT / "engine" / "app.py", {"rt", "runtime"}, "runtime")
    outside = {name: line for name, line in used.items() if name not in _members(EngineFacade)}
    assert not outside, f"engine/app.py uses runtime names EngineFacade does not list: {outside}"


def test_the_order_context_uses_only_the_strategy_desk() -> None:
    used = _uses(ROOT / "engine" / "context.py", {"runtime"}, "_runtime")
    outside = {name: line for name, line in used.items() if name not in _members(StrategyDesk)}
    assert not outside, f"engine/context.py uses runtime names StrategyDesk does not list: {outside}"


def test_the_runtime_has_every_name_of_both_protocols() -> None:
    runtime = Runtime(SimClock(0))
    missing = {name for name in _members(EngineFacade) | _members(StrategyDesk) if not hasattr(runtime, name)}
    assert not missing


def test_the_order_context_imports_only_the_facade_and_only_for_typing() -> None:
    tree = ast.parse((ROOT / "engine" / "context.py").read_text())
    runtime_imports = [
        (node.lineno, node.module) for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("engine.runtime")
    ]
    assert runtime_imports and all(module == "engine.runtime.facade" for _, module in runtime_imports)
    # and at run time not at all: importing the context loads none of the runtime
    probe = "import sys, engine.context; print(any(m.startswith('engine.runtime') for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "False"


def test_the_order_context_calls_no_adapter() -> None:
    """The context reads what a venue can do (``adapter.capabilities``) and asks the runtime for
    everything else: no adapter method is called from it (``ctx.reset_mmp`` goes through
    ``Runtime.reset_mmp``)."""
    calls = [
        f"engine/context.py:{node.lineno}: {ast.unparse(node.func)}"
        for node in ast.walk(ast.parse((ROOT / "engine" / "context.py").read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "adapter"
    ]
    assert not calls, calls


ORDER_ACTIONS = {"submit", "amend", "cancel", "cancel_all"}


def test_every_order_action_leaves_through_the_one_entrance() -> None:
    """Only engine/runtime/entrance.py runs a strategy's gate or hands an order action (submit,
    amend, cancel, mass cancel) to a venue adapter: there is one entrance to check."""
    found: list[str] = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = node.func.value
            owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if (node.func.attr in ORDER_ACTIONS and owner_name == "adapter") or (
                node.func.attr == "check" and owner_name == "gate"
            ):
                found.append(f"{relative}:{node.lineno}: {ast.unparse(node.func)}")
    assert found, "the scan found no order action at all"
    outside = [line for line in found if not line.startswith("engine/runtime/entrance.py:")]
    assert not outside, outside
