"""Typed hook specifications: every spec is annotated with types a strategy can import from
``engine.strategy``, the annotations do not change what pluggy and the loader accept or refuse,
the order context provides exactly the ``Ctx`` protocol, and the shipped strategies annotate their
hooks as the specs do. With mypy installed, a type checker proves what an editor completes."""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
import textwrap
import typing
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
import pytest
from support import REPO

import engine.strategy
from engine import hookspecs
from engine.config import load_config
from engine.context import OrderContext
from engine.errors import StrategyLoadError
from engine.loader import load_strategies

STRATEGIES = sorted((REPO / "strategies").glob("*.py"))
TYPE_NAMES = vars(engine.strategy)  # what a strategy can import; every spec annotation resolves here


def spec_of(name: str) -> Callable[..., Any]:
    spec: Callable[..., Any] = getattr(hookspecs, name)
    return spec


def spec_hints(name: str) -> dict[str, Any]:
    return typing.get_type_hints(spec_of(name), globalns=dict(TYPE_NAMES))


# ---- the specs ------------------------------------------------------------------------------


def test_hook_names_are_exactly_the_marked_specs() -> None:
    marker = f"{hookspecs.PROJECT}_spec"
    marked = {name for name, value in vars(hookspecs).items() if callable(value) and hasattr(value, marker)}
    assert set(hookspecs.HOOK_NAMES) == marked
    assert len(hookspecs.HOOK_NAMES) == len(marked)


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_every_spec_argument_and_return_is_annotated(name: str) -> None:
    signature = inspect.signature(spec_of(name))
    missing = [p.name for p in signature.parameters.values() if p.annotation is inspect.Parameter.empty]
    assert not missing, f"hookspecs.{name}: arguments without a type: {missing}"
    assert signature.return_annotation is not inspect.Signature.empty, f"hookspecs.{name}: no return type"


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_every_spec_type_is_importable_from_engine_strategy(name: str) -> None:
    signature = inspect.signature(spec_of(name))
    hints = spec_hints(name)  # raises NameError for a type engine.strategy does not offer
    assert set(hints) == {*signature.parameters, "return"}
    for annotation in signature.parameters.values():
        text = str(annotation.annotation)
        if text not in ("str", "Any"):
            assert text in engine.strategy.__all__, f"hookspecs.{name}: {text} is not in engine.strategy.__all__"


def test_every_hook_receives_ctx_first_typed_as_the_protocol() -> None:
    for name in hookspecs.HOOK_NAMES:
        first = next(iter(inspect.signature(spec_of(name)).parameters.values()))
        assert (first.name, spec_hints(name)["ctx"]) == ("ctx", engine.strategy.Ctx), name


def test_importing_engine_loads_no_type_module() -> None:
    """The types are named under TYPE_CHECKING: ``import engine`` (every strategy and adapter does)
    stays as light as before the specs were typed."""
    code = "import sys, engine; print(' '.join(sorted(m for m in sys.modules if m.startswith('engine'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    loaded = set(result.stdout.split())
    assert "engine.hookspecs" in loaded
    heavy = {"engine.strategy", "engine.model", "engine.context", "engine.risk", "engine.venue"}
    assert not loaded & heavy, f"import engine loads {sorted(loaded & heavy)} for the hook types"


# ---- pluggy and the loader with annotated hooks ------------------------------------------------


def test_pluggy_takes_the_typed_specs_and_an_annotated_plugin() -> None:
    class Annotated:
        @hookspecs.hookimpl
        def on_book(self, ctx: engine.strategy.Ctx, book: engine.strategy.Book) -> None:
            self.seen = book

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    plugin = Annotated()
    pm.register(plugin)
    pm.check_pending()
    assert pm.hook.on_book.spec.argnames == ("ctx", "book")
    pm.hook.on_book(ctx=None, book="the book")
    assert plugin.seen == "the book"


def test_pluggy_still_refuses_an_argument_the_typed_spec_lacks() -> None:
    class Wrong:
        @hookspecs.hookimpl
        def on_fill(self, ctx: engine.strategy.Ctx, trade: engine.strategy.Trade) -> None: ...

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    with pytest.raises(pluggy.PluginValidationError, match="trade"):
        pm.register(Wrong())


def load_source(tmp_path: Path, source: str) -> list[Any]:
    strategy = tmp_path / "typed.py"
    strategy.write_text(textwrap.dedent(source))
    config = tmp_path / "config.yaml"
    config.write_text(
        "instruments:\n  - {symbol: MEBL, venue: paper, tick_size: 0.01}\n"
        "venues:\n  paper: {adapter: paper}\n"
        f"strategies:\n  - name: s1\n    file: {strategy}\n    venue: paper\n    instruments: [MEBL]\n"
    )
    return load_strategies(load_config(config))


def test_loader_accepts_a_strategy_annotated_as_the_specs(tmp_path: Path) -> None:
    [loaded] = load_source(tmp_path, """\
        from engine import hookimpl
        from engine.strategy import Book, Ctx

        @hookimpl
        def on_book(ctx: Ctx, book: Book) -> None:
            pass
        """)
    assert set(loaded.hooks) == {"on_book"}


def test_loader_error_for_an_annotated_hook_still_names_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(StrategyLoadError) as caught:
        load_source(tmp_path, """\
            from engine import hookimpl
            from engine.strategy import Ctx, Fill

            @hookimpl
            def on_fill(ctx: Ctx, fil: Fill) -> None:
                pass
            """)
    text = str(caught.value)
    assert f"{tmp_path / 'typed.py'}:5" in text
    assert "fil" in text and "ctx, fill" in text


# ---- the shipped strategies show the way --------------------------------------------------------


def strategy_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"typed_check_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hookimpls_of(module: ModuleType) -> dict[str, Callable[..., Any]]:
    marker = f"{hookspecs.PROJECT}_impl"
    return {name: value for name, value in vars(module).items() if callable(value) and hasattr(value, marker)}


@pytest.mark.parametrize("path", STRATEGIES, ids=lambda path: path.name)
def test_shipped_strategy_annotates_each_hook_as_its_spec(path: Path) -> None:
    hooks = hookimpls_of(strategy_module(path))
    assert hooks, f"{path.name} defines no hooks"
    for name, function in hooks.items():
        hints = typing.get_type_hints(function)
        expected = {key: value for key, value in spec_hints(name).items() if key in hints}
        assert set(hints) == set(inspect.signature(function).parameters) | {"return"}, (
            f"{path.name}: {name} is not fully annotated"
        )
        assert hints == expected, f"{path.name}: {name} is annotated {hints}, its spec says {expected}"


# ---- ctx: the protocol and the real context ------------------------------------------------------


def protocol_members() -> dict[str, Any]:
    return {
        name: value for name, value in vars(engine.strategy.Ctx).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, property))
    }


def public_members(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def resolved_signature(function: Callable[..., Any]) -> inspect.Signature:
    """The signature with its annotations evaluated (names the module imports only for type
    checkers are looked up in engine.strategy)."""
    hints = typing.get_type_hints(function, globalns={**TYPE_NAMES, **function.__globals__})
    signature = inspect.signature(function)
    return signature.replace(
        parameters=[p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()],
        return_annotation=hints.get("return", signature.return_annotation),
    )


def test_context_offers_every_member_of_the_ctx_protocol() -> None:
    missing = sorted(set(protocol_members()) - public_members(OrderContext))
    assert not missing, f"OrderContext lacks what engine.strategy.Ctx promises strategies: {missing}"


def test_ctx_protocol_lists_every_public_member_of_the_context() -> None:
    """A new ``ctx.x`` is for strategies, so it belongs in the protocol their editors read."""
    unlisted = sorted(public_members(OrderContext) - set(protocol_members()))
    assert not unlisted, f"add these OrderContext members to engine.strategy.Ctx: {unlisted}"


def returns_fit(have: Any, want: Any) -> bool:
    """The context may return what the protocol promises or a subclass of it (a StrEnum for str)."""
    if have is inspect.Signature.empty or have == want:
        return True
    return isinstance(have, type) and isinstance(want, type) and issubclass(have, want)


@pytest.mark.parametrize("name", sorted(protocol_members()))
def test_context_member_matches_the_protocol(name: str) -> None:
    promised = protocol_members()[name]
    real = inspect.getattr_static(OrderContext, name)
    if isinstance(promised, property) and inspect.ismemberdescriptor(real):
        # a read-only slot (ctx.params: a slot read is ~6x cheaper than a property's): the context
        # refuses to assign or delete it, as a property without a setter would
        bare = object.__new__(OrderContext)
        with pytest.raises(AttributeError, match="read-only"):
            setattr(bare, name, None)
        with pytest.raises(AttributeError, match="read-only"):
            delattr(bare, name)
        return
    if isinstance(promised, property):
        assert isinstance(real, property), f"ctx.{name}: the protocol has a property, OrderContext a {type(real)}"
        assert real.fset is None, f"ctx.{name} is read-only in the protocol but settable on OrderContext"
        if inspect.isfunction(real.fget):  # not for the attrgetter properties, which declare no type
            have_type = resolved_signature(real.fget).return_annotation
            want_type = resolved_signature(promised.fget).return_annotation
            assert returns_fit(have_type, want_type), f"ctx.{name} is {have_type}, the protocol says {want_type}"
        return
    assert inspect.isfunction(real), f"ctx.{name}: the protocol has a method, OrderContext a {type(real)}"
    want = resolved_signature(promised)
    have = resolved_signature(real)
    assert [(p.name, p.kind, p.default) for p in have.parameters.values()] == [
        (p.name, p.kind, p.default) for p in want.parameters.values()
    ], f"ctx.{name}{have} differs from the protocol's {want}"
    for parameter in have.parameters.values():
        if parameter.annotation is not inspect.Parameter.empty:
            assert parameter.annotation == want.parameters[parameter.name].annotation, (
                f"ctx.{name}: argument {parameter.name} is {parameter.annotation} on OrderContext, "
                f"{want.parameters[parameter.name].annotation} in the protocol"
            )
    assert returns_fit(have.return_annotation, want.return_annotation), (
        f"ctx.{name} returns {have.return_annotation}, the protocol says {want.return_annotation}"
    )


# ---- what a type checker sees (mypy, when installed) --------------------------------------------

needs_mypy = pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None,
    reason="mypy is not installed (pip install mypy): the type-checker proof of the typed hooks is skipped",
)

TYPO = """\
from engine import hookimpl
from engine.strategy import Book, Ctx, Fill


@hookimpl
def on_book(ctx: Ctx, book: Book) -> None:
    ctx.submit(book.symbol, "buy", 1, book.mdi)


@hookimpl
def on_fill(ctx: Ctx, fill: Fill) -> None:
    ctx.cancel_al(fill.symbol)
    ctx.submit(fill.symbol, "buy", fill.qty, 1.5)
"""

CONFORMS = """\
from engine.context import OrderContext
from engine.strategy import Ctx


def as_ctx(context: OrderContext) -> Ctx:
    return context
"""


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """One mypy --strict run (about 4 s) over the shipped strategies and two probe files: each
    file's name -> its error lines. Engine's own modules are read for their types but their errors
    are not the subject here (follow-imports=silent)."""
    folder = tmp_path_factory.mktemp("mypy")
    (folder / "typo.py").write_text(TYPO)
    (folder / "conforms.py").write_text(CONFORMS)
    files = [*STRATEGIES, folder / "typo.py", folder / "conforms.py"]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental",
         "--no-error-summary", "--hide-error-context", "--cache-dir", str(folder / "cache"), *map(str, files)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr  # 2: mypy itself failed
    lines = result.stdout.splitlines()
    return {path.name: [line for line in lines if line.startswith(f"{path}:")] for path in files}


@needs_mypy
@pytest.mark.parametrize("path", STRATEGIES, ids=lambda path: path.name)
def test_mypy_accepts_the_shipped_strategy(path: Path, mypy_errors: dict[str, list[str]]) -> None:
    assert mypy_errors[path.name] == []


@needs_mypy
def test_mypy_sees_real_types_and_catches_misspelt_members(mypy_errors: dict[str, list[str]]) -> None:
    """Proof that the annotations carry the model's classes, not Any: what mypy flags here, an
    editor completes correctly."""
    errors = "\n".join(mypy_errors["typo.py"])
    assert '"Book" has no attribute "mdi"' in errors, errors
    assert '"Ctx" has no attribute "cancel_al"' in errors, errors
    assert 'Argument 4 to "submit" of "Ctx" has incompatible type "float"' in errors, errors


@needs_mypy
def test_mypy_finds_the_real_context_is_a_ctx(mypy_errors: dict[str, list[str]]) -> None:
    """The structural check the runtime tests above approximate: OrderContext satisfies Ctx."""
    assert mypy_errors["conforms.py"] == []
