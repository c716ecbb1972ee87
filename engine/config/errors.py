"""Config problems as sentences a person can act on: ``path:line: key.path: what is wrong``.

pydantic reports a location in its own terms (union members, ``function-after[...]``) and a
message written for programmers; this module maps each error back to the key path in the file
(and so to its line), says unknown keys with a "did you mean", and never shows a value that came
from the environment.
"""

from __future__ import annotations

import datetime as dt
import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from engine.errors import ConfigError

if TYPE_CHECKING:
    from engine.config.loaded import LoadedConfig

__all__ = ["CrossFieldProblems", "KeyPath", "at_key", "did_you_mean", "format_key_path", "validate_section"]

KeyPath = tuple[str | int, ...]
"""Where a value sits in the config: ``("strategies", 0, "params", "spread")``."""

ModelT = TypeVar("ModelT", bound=BaseModel)


class CrossFieldProblems(ValueError):
    """Problems that involve several entries (a duplicate name, a dangling venue), each with the
    key path it belongs to, so :func:`load_config` can name each one's line."""

    def __init__(self, problems: list[tuple[KeyPath, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{format_key_path(path)}: {sentence}" for path, sentence in problems))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the closest of ``choices``, or nothing when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def format_key_path(key_path: KeyPath) -> str:
    """``("strategies", 0, "params", "spread")`` -> ``strategies[0].params.spread``."""
    text = ""
    for key in key_path:
        if isinstance(key, int):
            text += f"[{key}]"
        else:
            text += f".{key}" if text else str(key)
    return text


def at_key(key_path: KeyPath, sentence: str) -> str:
    """``a.b[0]: sentence``, or the sentence alone for the top level: how every config problem
    names its place (the file and line go in front, from :class:`ConfigError`)."""
    shown = format_key_path(key_path)
    return f"{shown}: {sentence}" if shown else sentence


def validate_section(loaded: LoadedConfig, model_cls: type[ModelT], data: Any, key_path: KeyPath) -> ModelT:
    """Validate ``data`` (found at ``key_path`` in the config) with ``model_cls``, turning every
    problem into a line-numbered sentence. For sub-blocks checked after loading, such as an
    adapter's options: ``validate_section(loaded, Adapter.options_model, venue.options,
    ("venues", "psx", "options"))``."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        problems = _problems_from_validation(loaded, model_cls, data, tuple(key_path), exc)
        problems.sort(key=lambda problem: problem.line or 0)  # read top to bottom, like the file
        summary = f"{loaded.display}: {len(problems)} problems in the config:"
        raise ConfigError.combine(problems, summary) from None


def _problems_from_validation(
    loaded: LoadedConfig, model_cls: type[BaseModel], data: Any, prefix: KeyPath, exc: ValidationError
) -> list[ConfigError]:
    problems: list[ConfigError] = []
    seen: set[str] = set()
    for error in exc.errors(include_url=False):
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, CrossFieldProblems):
            base = _data_path(data, error["loc"], error["type"])
            located = [(base + path, sentence) for path, sentence in cause.problems]
        else:
            path = _data_path(data, error["loc"], error["type"])
            located = [(path, _sentence(error, model_cls, path, loaded.is_secret(prefix + path)))]
        for path, sentence in located:
            problem = loaded.error(prefix + path, sentence)
            if str(problem) not in seen:  # a union reports once per member; say it once
                seen.add(str(problem))
                problems.append(problem)
    return problems


def _data_path(data: Any, loc: tuple[str | int, ...], error_type: str) -> KeyPath:
    """The part of pydantic's ``loc`` that names places in the data: pydantic adds steps of its
    own (union members, ``[key]``, ``function-after[...]``) which are dropped; a missing key is
    kept as the last step."""
    path: list[str | int] = []
    node = data
    for index, step in enumerate(loc):
        if isinstance(node, dict) and step in node:
            path.append(step)
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            path.append(step)
            node = node[step]
        elif index == len(loc) - 1 and error_type == "missing" and isinstance(step, str):
            path.append(step)
    return tuple(path)


def _sentence(error: Mapping[str, Any], model_cls: type[BaseModel], path: KeyPath, secret: bool) -> str:
    kind = error["type"]
    if kind == "extra_forbidden" and path:
        key = str(path[-1])
        parent = _model_at(model_cls, path[:-1])
        allowed = list(parent.model_fields) if parent is not None else []
        hint = did_you_mean(key, allowed)
        if not hint and allowed:
            hint = f" (allowed: {', '.join(allowed)})"
        return f"unknown key {key!r}{hint}"
    if kind == "missing" and path:
        return f"required key {path[-1]!r} is missing"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping (key: value lines), got {_describe(error.get('input'))}"
    if kind == "list_type":
        return f"expected a list, got {_describe(error.get('input'))}"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    shown = _shown_value(error.get("input"))
    if shown is not None and not secret and kind not in ("value_error", "assertion_error"):
        message += f" (got {shown})"
    return message


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"the {type(value).__name__} value"


def _shown_value(value: Any) -> str | None:
    """A short rendering of a scalar input for an error message; None for containers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Decimal | int):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return None


def _model_at(model_cls: type[BaseModel], path: KeyPath) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``path`` (for "did you mean" suggestions)."""
    annotation: Any = model_cls
    for step in path:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field_info = annotation.model_fields.get(step) if isinstance(step, str) else None
            if field_info is None:
                return None
            annotation = field_info.annotation
            continue
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin in (list, tuple, set, frozenset) and isinstance(step, int) and args:
            annotation = args[0]
        elif origin is dict and len(args) == 2:
            annotation = args[1]
        else:
            return None
    annotation = _unwrap(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``; ``Annotated[X, ...]`` -> ``X``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
