"""Strategy files -> registered pluggy plugins, with errors that name the file and line to fix.

Each configured strategy instance gets its own module object (the file is executed under a module
name unique to the instance), so a file configured twice with different params shares no
module-level state. The file defines hooks either as module-level functions or as the methods of
ONE class (instantiated once per instance with no arguments), each marked ``@hookimpl``.

Why the loader checks so much before pluggy does: pluggy's own errors name neither the file nor the
line, and a hook silently ignored (a typo in its name, a missing ``@hookimpl``) is the worst kind
of bug in a trading strategy. Every problem found in every enabled strategy is reported at once.

Hooks are resolved once, here, into plain callables that take the spec's arguments positionally in
spec order (``on_book(ctx, book)``), so the runtime dispatches hot hooks without pluggy.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from operator import attrgetter
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import pluggy
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, create_model

from engine import hookspecs
from engine.config import LoadedConfig, StrategyConfig, format_key_path
from engine.config.errors import did_you_mean
from engine.errors import StrategyLoadError

__all__ = [
    "LoadedStrategy",
    "StrategyLoadError",
    "load_strategies",
    "load_strategy",
    "params_model",
]

HOOK_MARK = f"{hookspecs.PROJECT}_impl"  # the attribute @hookimpl sets on a function
MODULE_PREFIX = "engine_strategy_"


def _spec_argnames() -> dict[str, tuple[str, ...]]:
    """Each hook's arguments in spec order, read from the hookspecs themselves."""
    result = {}
    for name in hookspecs.HOOK_NAMES:
        spec = getattr(hookspecs, name)
        result[name] = tuple(inspect.signature(spec).parameters)
    return result


SPEC_ARGS: dict[str, tuple[str, ...]] = _spec_argnames()


@dataclass(eq=False)
class LoadedStrategy:
    """One strategy instance, ready for the runtime.

    ``hooks`` holds only the hooks the strategy defines, each a plain callable taking the spec's
    arguments positionally in spec order; ``pm`` is the instance's own PluginManager for rare
    hooks; ``params`` is the frozen params (``ctx.params``): a :func:`params_view` of the
    validated model.
    """

    name: str
    file: Path
    plugin: Any
    pm: pluggy.PluginManager
    params: Any
    hooks: dict[str, Callable[..., Any]]
    module: ModuleType = field(repr=False)
    config: StrategyConfig = field(repr=False)


# --------------------------------------------------------------------------------------------
# Params: PARAMS defaults -> a strict, frozen pydantic model


def _exact_decimal(value: Any) -> Decimal:
    """Decimal from an int, a Decimal or a numeric string; never through a binary float."""
    if isinstance(value, bool):
        raise ValueError("expected a number, got true/false")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"expected a number, got {value!r}") from None
    elif isinstance(value, float):
        raise ValueError("a binary float cannot be taken exactly; write the number in the config or as a string")
    else:
        raise ValueError(f"expected a number, got {type(value).__name__}")
    if not number.is_finite():
        raise ValueError("expected a finite number")
    return number


def _exact_int(value: Any) -> int:
    """An int from an int, a whole Decimal or an integer string; true/false is not a number."""
    if isinstance(value, bool):
        raise ValueError("expected a whole number, got true/false")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal | str):
        number = _exact_decimal(value)
        if number != number.to_integral_value():
            raise ValueError(f"expected a whole number, got {value}")
        return int(number)
    raise ValueError(f"expected a whole number, got {type(value).__name__}")


_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def _plain_bool(value: Any) -> bool:
    """A bool, or its word from an environment variable (``"true"``, ``"no"``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
        return value.strip().lower() in _TRUE_WORDS
    raise ValueError(f"expected true or false, got {value!r}")


def _plain_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError(f"expected text, got {value!r}; quote it in the config")


ExactDecimal = Annotated[Decimal, PlainValidator(_exact_decimal)]
ExactInt = Annotated[int, PlainValidator(_exact_int)]
PlainBool = Annotated[bool, PlainValidator(_plain_bool)]
PlainStr = Annotated[str, PlainValidator(_plain_str)]


class ParamsDeclarationError(ValueError):
    """A PARAMS default the loader cannot turn into a checked type."""


def _param_type(value: Any, where: str) -> Any:
    """The checked type for a PARAMS default."""
    if isinstance(value, bool):
        return PlainBool
    if isinstance(value, int):
        return ExactInt
    if isinstance(value, Decimal):
        return ExactDecimal
    if isinstance(value, float):
        raise ParamsDeclarationError(
            f"{where} is a binary float ({value!r}); write Decimal({str(value)!r}) so prices stay exact"
        )
    if isinstance(value, str):
        return PlainStr
    if value is None:
        return Any
    if isinstance(value, list | tuple):
        item_types = {repr(_param_type(item, f"{where}[{index}]")) for index, item in enumerate(value)}
        item_type = _param_type(value[0], f"{where}[0]") if len(item_types) == 1 else Any
        return list[item_type] if isinstance(value, list) else tuple[item_type, ...]  # type: ignore[valid-type]
    if isinstance(value, dict):
        return dict[str, Any]
    return type(value)  # dates, times, enums: pydantic knows them


_RESERVED = frozenset(dir(BaseModel))


class _FreshCopy:
    """A default factory handing each params instance its own copy of a mutable PARAMS default,
    so one strategy instance cannot change another's list."""

    def __init__(self, value: Any) -> None:
        self.value = copy.deepcopy(value)

    def __call__(self) -> Any:
        return copy.deepcopy(self.value)


def params_model(defaults: Mapping[str, Any], model_name: str = "Params") -> type[BaseModel]:
    """A frozen pydantic model whose fields are the PARAMS names, typed by their defaults.

    Ints accept whole numbers (and integer strings), Decimals accept ints, Decimals and numeric
    strings exactly, never floats; unknown keys are refused. Raises ParamsDeclarationError for a
    default it cannot type (a float, a name pydantic reserves).
    """
    fields: dict[str, Any] = {}
    for name, default in defaults.items():
        where = f"PARAMS[{name!r}]"
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise ParamsDeclarationError(f"{where}: a param name is an identifier not starting with '_'")
        if name in _RESERVED or name.startswith("model_"):
            raise ParamsDeclarationError(f"{where}: the name {name!r} is reserved by pydantic; rename it")
        annotation = _param_type(default, where)
        if isinstance(default, list | dict | set):
            fields[name] = (annotation, Field(default_factory=_FreshCopy(default)))
        else:
            fields[name] = (annotation, Field(default=default))
    try:
        return create_model(  # type: ignore[call-overload, no-any-return]
            model_name,
            __config__=ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True),
            **fields,
        )
    except Exception as exc:  # pydantic's schema errors: a default of a type it cannot check
        raise ParamsDeclarationError(f"PARAMS cannot be checked: {exc}") from None


class FrozenParams:
    """What ``ctx.params`` is: the validated params model's fields as slots.

    A strategy reads a param on every event; on the pydantic model each read went through
    ``BaseModel.__getattr__``'s slot, which CPython cannot specialise (890 instructions per
    ``ctx.params.every`` under callgrind, against ~170 for a slot). Everything else is the model's:
    assigning or deleting raises its frozen ``ValidationError``, an unknown name the same
    ``AttributeError``, and its public API (``model_dump``, ...) reads through to it."""

    __slots__ = ("_model",)

    def __setattr__(self, name: str, value: Any) -> None:
        self._model.__setattr__(name, value)  # frozen: raises pydantic's ValidationError

    def __delattr__(self, name: str) -> None:
        self._model.__delattr__(name)

    def __repr__(self) -> str:
        return repr(self._model)

    def __eq__(self, other: object) -> bool:
        return bool(self._model == (other._model if isinstance(other, FrozenParams) else other))

    def __hash__(self) -> int:
        return hash(self._model)


_VIEW_CLASSES: dict[type[BaseModel], type[FrozenParams]] = {}


def params_view(model: BaseModel) -> FrozenParams:
    """``model`` as :class:`FrozenParams` (one view class per params model, named like it)."""
    cls = type(model)
    view_class = _VIEW_CLASSES.get(cls)
    if view_class is None:
        namespace: dict[str, Any] = {"__slots__": tuple(cls.model_fields), "__module__": cls.__module__,
                                     "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
        for name in dir(BaseModel):  # never a field name (params_model refuses them)
            if not name.startswith("_"):
                namespace[name] = property(attrgetter(f"_model.{name}"))
        view_class = _VIEW_CLASSES[cls] = type(cls.__name__, (FrozenParams,), namespace)
    view = object.__new__(view_class)
    object.__setattr__(view, "_model", model)
    for name in cls.model_fields:
        object.__setattr__(view, name, getattr(model, name))
    return view


# --------------------------------------------------------------------------------------------
# Where things are in a strategy file


class _SourceMap:
    """Line numbers the runtime objects do not carry: the ``def`` line of a decorated function
    (``co_firstlineno`` is the first decorator's line), class lines, the PARAMS assignment."""

    def __init__(self, tree: ast.Module, filename: str) -> None:
        self.filename = filename
        self.def_line_by_first_line: dict[int, int] = {}
        self.class_lines: dict[str, int] = {}
        self.params_lines: dict[str | None, int] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                first = min([decorator.lineno for decorator in node.decorator_list] + [node.lineno])
                self.def_line_by_first_line[first] = node.lineno
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                self.class_lines.setdefault(node.name, node.lineno)
                for statement in node.body:
                    if _assigns_params(statement):
                        self.params_lines[node.name] = statement.lineno
            elif _assigns_params(node):
                self.params_lines[None] = node.lineno

    def locate(self, function: Any) -> tuple[str, int]:
        """``(file, def line)`` of a function, a bound method or a static/class method."""
        target = getattr(function, "__func__", function)
        target = inspect.unwrap(target)
        code = getattr(target, "__code__", None)
        if code is None:
            return self.filename, 1
        if code.co_filename != self.filename:
            return code.co_filename, code.co_firstlineno
        return self.filename, self.def_line_by_first_line.get(code.co_firstlineno, code.co_firstlineno)


def _assigns_params(node: ast.stmt) -> bool:
    if isinstance(node, ast.Assign):
        return any(isinstance(target, ast.Name) and target.id == "PARAMS" for target in node.targets)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and node.target.id == "PARAMS"
    return False


def _raise_line(exc: BaseException, filename: str) -> int | None:
    """The line in ``filename`` closest to where ``exc`` was raised."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == filename:
            line = frame.lineno
    return line


# --------------------------------------------------------------------------------------------
# Loading one strategy


class _Problems:
    """Collects the problems of one strategy so they are all reported together."""

    def __init__(self) -> None:
        self.items: list[StrategyLoadError] = []

    def add(self, message: str, file: str | None, line: int | None, column: int | None = None) -> None:
        self.items.append(StrategyLoadError(message, file, line, column))


def _hook_mark(obj: Any) -> dict[str, Any] | None:
    mark = getattr(obj, HOOK_MARK, None)
    return mark if isinstance(mark, dict) else None


def _module_name(strategy_name: str) -> str:
    return MODULE_PREFIX + strategy_name


def _check_hook(
    attribute: str,
    function: Any,
    owner: type | None,
    source: _SourceMap,
    problems: _Problems,
) -> None:
    """Refuse a marked hook pluggy would refuse or, worse, accept and never call as meant."""
    mark = _hook_mark(function) or {}
    hook_name = mark.get("specname") or attribute
    file, line = source.locate(function)
    where = f"{owner.__name__}.{attribute}" if owner is not None else attribute
    if hook_name not in hookspecs.HOOK_NAMES:
        hint = did_you_mean(hook_name, hookspecs.HOOK_NAMES) or f"; the hooks are {', '.join(hookspecs.HOOK_NAMES)}"
        problems.add(f"{where} is marked @hookimpl but {hook_name!r} is not a hook{hint}", file, line)
        return
    if mark.get("hookwrapper") or mark.get("wrapper"):
        problems.add(f"{where}: strategy hooks cannot be wrappers; remove hookwrapper/wrapper", file, line)
        return
    target = inspect.unwrap(getattr(function, "__func__", function))
    if inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target):
        problems.add(f"{where} is async; hooks are plain 'def' functions and must not await", file, line)
        return
    if inspect.isgeneratorfunction(target):
        problems.add(f"{where} contains 'yield', so calling it would do nothing; hooks return nothing", file, line)
        return
    allowed = SPEC_ARGS[hook_name]
    allowed_text = ", ".join(allowed)
    if owner is not None and not isinstance(inspect.getattr_static(owner, attribute, None), staticmethod | classmethod):
        first = next(iter(inspect.signature(target).parameters), None)
        if first is None or first in allowed:
            problems.add(
                f"{where}() is a method, so its first argument must be 'self' (got "
                f"{first or 'no arguments'}); write def {attribute}(self, {allowed_text})",
                file,
                line,
            )
            return
    try:
        parameters = list(inspect.signature(_as_called(attribute, function, owner)).parameters.values())
    except (TypeError, ValueError):
        return
    for parameter in parameters:
        kind = parameter.kind
        has_default = parameter.default is not inspect.Parameter.empty
        if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            problems.add(
                f"{where}() takes *{parameter.name}; hooks receive named arguments only: {allowed_text}", file, line
            )
        elif kind is inspect.Parameter.KEYWORD_ONLY and not has_default:
            problems.add(
                f"{where}() has the keyword-only argument {parameter.name!r}, which is never passed; "
                f"the allowed argument names are {allowed_text}",
                file,
                line,
            )
        elif kind is not inspect.Parameter.KEYWORD_ONLY and parameter.name in allowed and has_default:
            problems.add(
                f"{where}() gives {parameter.name!r} a default, so the engine would not pass it; remove the default",
                file,
                line,
            )
        elif kind is not inspect.Parameter.KEYWORD_ONLY and not has_default and parameter.name not in allowed:
            problems.add(
                f"{where}() takes the argument {parameter.name!r}, which the hook does not have; "
                f"the allowed argument names are {allowed_text} (any subset)",
                file,
                line,
            )


def _as_called(attribute: str, function: Any, owner: type | None) -> Any:
    """The callable as pluggy will call it: a plain method without its ``self``."""
    if owner is None:
        return function
    raw = inspect.getattr_static(owner, attribute, None)
    if isinstance(raw, staticmethod | classmethod):
        return function  # getattr gave the plain function or the class-bound method

    def drop_self(*args: Any) -> None: ...

    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())[1:]
    drop_self.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return drop_self


def _hook_functions_of_class(cls: type) -> dict[str, Any]:
    found = {}
    for attribute in dir(cls):
        try:
            value = getattr(cls, attribute)
        except Exception:  # a descriptor that raises is not a hook
            continue
        if inspect.isroutine(value) and _hook_mark(value) is not None:
            found[attribute] = value
    return found


def _unmarked_hooks(namespace: Mapping[str, Any], names: Any) -> list[tuple[str, Any]]:
    result = []
    for name in names:
        value = namespace.get(name)
        if value is not None and inspect.isroutine(value) and _hook_mark(value) is None:
            result.append((name, value))
    return result


def _resolve(hook_name: str, function: Callable[..., Any], impl_args: tuple[str, ...]) -> Callable[..., Any]:
    """A callable taking the spec's arguments positionally in spec order.

    When the implementation takes exactly those, it is the function itself. Otherwise a one-line
    adapter is generated once (``def on_book(ctx, book): return hook(book)``): compiled code, so
    the hot path pays one extra call and no per-call argument shuffling.
    """
    spec_args = SPEC_ARGS[hook_name]
    if impl_args == spec_args:
        return function
    namespace: dict[str, Any] = {"hook": function}
    exec(  # names come from the hookspecs and the validated signature: identifiers only
        f"def {hook_name}({', '.join(spec_args)}):\n    return hook({', '.join(impl_args)})\n", namespace
    )
    adapter: Callable[..., Any] = namespace[hook_name]
    adapter.__qualname__ = getattr(function, "__qualname__", hook_name)
    adapter.__doc__ = getattr(function, "__doc__", None)
    adapter.__wrapped__ = function  # type: ignore[attr-defined]
    return adapter


def _params_location(loaded: LoadedConfig, index: int, key: str | int | None) -> tuple[str, int | None]:
    key_path: tuple[str | int, ...] = ("strategies", index, "params")
    if key is not None:
        key_path = (*key_path, key)
    return loaded.display, loaded.line_of(key_path)


def _check_params(
    loaded: LoadedConfig,
    index: int,
    strategy: StrategyConfig,
    declared: Any,
    declared_at: tuple[str, int | None],
    problems: _Problems,
) -> BaseModel | None:
    """The params model instance from PARAMS defaults overridden by config, or None (problems added)."""
    given = strategy.params
    if declared is None:
        for key in given:
            file, line = _params_location(loaded, index, key)
            problems.add(
                f"strategy {strategy.name!r}: unknown param {key!r}: {strategy.file} declares no PARAMS", file, line
            )
        declared = {}
        if given:
            return None
    if not isinstance(declared, Mapping):
        problems.add(f"PARAMS must be a dict of name -> default, got {type(declared).__name__}", *declared_at)
        return None
    model_name = "".join(part.capitalize() for part in strategy.name.replace("-", "_").split("_")) + "Params"
    try:
        model = params_model(declared, model_name)
    except ParamsDeclarationError as exc:
        problems.add(str(exc), *declared_at)
        return None
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        names = list(model.model_fields)
        for error in exc.errors(include_url=False):
            key = error["loc"][0] if error["loc"] else None
            file, line = _params_location(loaded, index, key)
            if error["type"] == "extra_forbidden":
                suggestion = did_you_mean(str(key), names) or f" (declared: {', '.join(names) or 'none'})"
                message = f"strategy {strategy.name!r}: unknown param {key!r}{suggestion}"
            else:
                reason = str(error["msg"]).removeprefix("Value error, ")
                message = f"strategy {strategy.name!r}: param {format_key_path(error['loc'])!r}: {reason}"
            problems.add(message, file, line)
        return None


def load_strategy(loaded: LoadedConfig, index: int) -> LoadedStrategy:
    """Load ``loaded.config.strategies[index]``; raise StrategyLoadError listing its problems."""
    strategy = loaded.config.strategies[index]
    problems = _Problems()
    result = _load(loaded, index, strategy, problems)
    if problems.items or result is None:
        raise StrategyLoadError.combine(problems.items, f"strategy {strategy.name!r} cannot be loaded:")
    return result


def load_strategies(loaded: LoadedConfig) -> list[LoadedStrategy]:
    """Load every enabled strategy. All problems of all strategies are raised together as one
    StrategyLoadError (its ``problems`` hold each), so a user fixes everything in one go."""
    results: list[LoadedStrategy] = []
    problems = _Problems()
    for index, strategy in enumerate(loaded.config.strategies):
        if not strategy.enabled:
            continue
        result = _load(loaded, index, strategy, problems)
        if result is not None:
            results.append(result)
    if problems.items:
        # A broken file configured twice is one problem to fix, not two.
        unique = list({str(problem): problem for problem in problems.items}.values())
        raise StrategyLoadError.combine(unique, f"{len(unique)} problems loading strategies:")
    return results


def _load(loaded: LoadedConfig, index: int, strategy: StrategyConfig, problems: _Problems) -> LoadedStrategy | None:
    path = loaded.resolve(strategy.file)
    filename = str(path)
    file_key = loaded.display, loaded.line_of(("strategies", index, "file"))
    if not path.is_file():
        reason = "is a directory" if path.is_dir() else "does not exist"
        problems.add(f"strategy {strategy.name!r}: the file {filename} {reason}", *file_key)
        return None
    if path.suffix != ".py":
        problems.add(f"strategy {strategy.name!r}: {filename} is not a .py file", *file_key)
        return None
    try:
        source = path.read_bytes()
    except OSError as exc:
        problems.add(f"strategy {strategy.name!r}: {filename} cannot be read: {exc.strerror}", *file_key)
        return None

    try:
        code = compile(source, filename, "exec", dont_inherit=True)
        tree = ast.parse(source, filename)
    except SyntaxError as exc:
        problems.add(f"syntax error: {exc.msg}", exc.filename or filename, exc.lineno, exc.offset)
        return None
    except ValueError as exc:  # e.g. null bytes
        problems.add(f"the file cannot be compiled: {exc}", filename, 1)
        return None
    source_map = _SourceMap(tree, filename)

    module = _execute(strategy.name, path, code, problems)
    if module is None:
        return None
    before = len(problems.items)
    namespace = vars(module)

    module_hooks = {
        name: value for name, value in namespace.items() if inspect.isroutine(value) and _hook_mark(value) is not None
    }
    own_classes = [
        value for value in namespace.values() if inspect.isclass(value) and value.__module__ == module.__name__
    ]
    for cls in own_classes:
        if _hook_mark(cls) is not None or HOOK_MARK in vars(cls):
            problems.add(
                f"@hookimpl marks functions, not classes; put it on the methods of {cls.__name__}",
                filename,
                source_map.class_lines.get(cls.__name__),
            )
    hook_classes = [(cls, _hook_functions_of_class(cls)) for cls in own_classes]
    hook_classes = [(cls, hooks) for cls, hooks in hook_classes if hooks]

    if len(hook_classes) > 1:
        lines = source_map.class_lines
        listed = ", ".join(f"{cls.__name__} (line {lines.get(cls.__name__)})" for cls, _ in hook_classes)
        second = hook_classes[1][0]
        problems.add(
            f"{len(hook_classes)} classes define hooks: {listed}; keep the hooks in one class",
            filename,
            source_map.class_lines.get(second.__name__),
        )
    elif hook_classes and module_hooks:
        cls = hook_classes[0][0]
        problems.add(
            f"hooks are defined both at module level ({', '.join(module_hooks)}) and in class {cls.__name__}; "
            "use one style",
            filename,
            source_map.class_lines.get(cls.__name__),
        )

    owner: type | None = None
    if len(hook_classes) == 1 and not module_hooks:
        owner, candidates = hook_classes[0]
        methods = {name: getattr(owner, name, None) for name in hookspecs.HOOK_NAMES}
        unmarked = _unmarked_hooks(methods, hookspecs.HOOK_NAMES)
        unmarked += _unmarked_hooks(namespace, hookspecs.HOOK_NAMES)
    else:
        candidates = module_hooks
        unmarked = _unmarked_hooks(namespace, hookspecs.HOOK_NAMES)
    for name, function in unmarked:
        file, line = source_map.locate(function)
        problems.add(f"{name} is named like a hook but is not marked; add @hookimpl above it", file, line)
    for name, function in candidates.items():
        _check_hook(name, function, owner, source_map, problems)
    if not candidates and not hook_classes and not unmarked:
        problems.add(
            "the file defines no hooks; mark functions such as 'def on_book(ctx, book)' with @hookimpl "
            "(from engine import hookimpl)",
            filename,
            1,
        )

    # Params: class attribute first for a class-style strategy, else the module's.
    declared = None
    declared_at: tuple[str, int | None] = (filename, None)
    if owner is not None and "PARAMS" in dir(owner):
        declared = owner.PARAMS  # type: ignore[attr-defined]
        declared_at = (filename, source_map.params_lines.get(owner.__name__, source_map.params_lines.get(None)))
    elif "PARAMS" in namespace:
        declared = namespace["PARAMS"]
        declared_at = (filename, source_map.params_lines.get(None))
    params = _check_params(loaded, index, strategy, declared, declared_at, problems)

    if len(problems.items) > before or params is None:
        sys.modules.pop(module.__name__, None)
        return None

    plugin: Any = module
    if owner is not None:
        try:
            plugin = owner()
        except Exception as exc:
            line = _raise_line(exc, filename) or source_map.class_lines.get(owner.__name__)
            problems.add(
                f"{owner.__name__}() raised {type(exc).__name__}: {exc} (the class is created with no arguments)",
                filename,
                line,
            )
            sys.modules.pop(module.__name__, None)
            return None

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(plugin, name=strategy.name)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:  # a safety net: the checks above should catch these
        problems.add(f"pluggy refused the strategy: {exc}", filename, 1)
        sys.modules.pop(module.__name__, None)
        return None

    hooks: dict[str, Callable[..., Any]] = {}
    for hook_name in hookspecs.HOOK_NAMES:
        impls = getattr(pm.hook, hook_name).get_hookimpls()
        if impls:
            impl = impls[-1]
            hooks[hook_name] = _resolve(hook_name, impl.function, tuple(impl.argnames))
    return LoadedStrategy(
        name=strategy.name,
        file=path,
        plugin=plugin,
        pm=pm,
        params=params_view(params),
        hooks=hooks,
        module=module,
        config=strategy,
    )


def _execute(strategy_name: str, path: Path, code: Any, problems: _Problems) -> ModuleType | None:
    """Run the file as a fresh module unique to this strategy instance."""
    filename = str(path)
    module_name = _module_name(strategy_name)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None:
        problems.add("the file cannot be imported", filename, 1)
        return None
    module = importlib.util.module_from_spec(spec)
    # In sys.modules while it runs: dataclasses and typing look a class's module up there.
    sys.modules[module_name] = module
    try:
        exec(code, vars(module))
    except SyntaxError as exc:  # a compile() inside the file
        sys.modules.pop(module_name, None)
        problems.add(f"syntax error: {exc.msg}", exc.filename or filename, exc.lineno, exc.offset)
        return None
    except (Exception, SystemExit) as exc:
        sys.modules.pop(module_name, None)
        line = _raise_line(exc, filename)
        if isinstance(exc, ModuleNotFoundError):
            message = f"the import fails: no module named {exc.name!r}"
        elif isinstance(exc, ImportError):
            message = f"the import fails: {exc}"
        else:
            message = f"running the file raised {type(exc).__name__}: {exc}"
        problems.add(message, filename, line)
        return None
    return module
