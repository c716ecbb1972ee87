"""The config file's YAML, read by hand from the node tree into plain data with a line map.

Why not ``yaml.safe_load``:

- every key keeps its line and column, so any later complaint (a pydantic error, an unknown
  strategy param, a bad adapter option) names the line to fix;
- YAML floats become ``Decimal`` from the scalar's source text (``tick_size: 0.01`` is exactly
  ``Decimal("0.01")``): money never passes through a binary float;
- duplicate keys are an error instead of the last one silently winning;
- ``${ENV_VAR}`` / ``${ENV_VAR:-default}`` inside strings is substituted, and the key paths whose
  values came from the environment are remembered so reports and logs can redact them.

Three deliberate departures from YAML 1.1, all towards YAML 1.2: mapping keys are always strings
(their source text), only ``true``/``false`` are booleans (``on``, ``no``, ``yes`` stay text: a
strategy named ``on`` or a symbol ``NO`` keeps its name), and base-60 numbers stay strings
(``9:30`` is a time of day to a quant, not the integer 570).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from engine.config.errors import KeyPath, at_key
from engine.errors import ConfigError

__all__ = ["ConfigYaml", "read_config_yaml"]

_TAG = "tag:yaml.org,2002:"
_ENV_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_ENV_BODY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)
_SPECIAL_FLOATS = {".inf": "Infinity", "+.inf": "Infinity", "-.inf": "-Infinity", ".nan": "NaN"}


class _TreeBuilder:
    """Builds plain Python data from a composed YAML node tree, recording key positions, env
    substitutions and every problem found (all of them, not just the first)."""

    def __init__(self, display: str, environ: Mapping[str, str]) -> None:
        self.display = display
        self.environ = environ
        self.lines: dict[KeyPath, tuple[int, int]] = {}
        self.secret_paths: set[KeyPath] = set()
        self.secret_values: set[str] = set()
        self.problems: list[ConfigError] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._active: set[int] = set()

    def problem(self, node: yaml.Node, key_path: KeyPath, sentence: str) -> None:
        self.problems.append(ConfigError(at_key(key_path, sentence), self.display, node.start_mark.line + 1))

    def mark(self, key_path: KeyPath, node: yaml.Node) -> None:
        self.lines[key_path] = (node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node, key_path: KeyPath) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, key_path)
        if id(node) in self._active:
            self.problem(node, key_path, "this alias refers to itself (a recursive anchor)")
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _TAG + "seq":
                    self.problem(node, key_path, f"the tag {node.tag} is not supported here")
                items = []
                for index, child in enumerate(node.value):
                    child_path = (*key_path, index)
                    self.mark(child_path, child)
                    items.append(self.build(child, child_path))
                return items
            if isinstance(node, yaml.MappingNode):
                if node.tag != _TAG + "map":
                    self.problem(node, key_path, f"the tag {node.tag} is not supported here")
                return self._mapping(node, key_path)
            self.problem(node, key_path, "this YAML node type is not supported")
            return None
        finally:
            self._active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, key_path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged_keys: set[str] = set()
        explicit: dict[str, int] = {}
        # Merge keys (<<: *defaults) go first so that explicit keys override them, as YAML says.
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                for source in self._merge_sources(value_node, key_path):
                    for key, value in self._mapping(source, key_path).items():
                        if key not in result:
                            result[key] = value
                            merged_keys.add(key)
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, key_path, "a key must be a plain name, not a list or mapping")
                continue
            key = key_node.value
            if key == "":
                self.problem(key_node, key_path, "a key is empty")
                continue
            child_path = (*key_path, key)
            if key in explicit:
                self.problem(
                    key_node,
                    child_path,
                    f"key {key!r} appears twice in this mapping (first at line {explicit[key]}); keep one",
                )
                continue
            explicit[key] = key_node.start_mark.line + 1
            if key in merged_keys:
                self._forget_below(child_path)
            self.mark(child_path, key_node)
            result[key] = self.build(value_node, child_path)
        return result

    def _merge_sources(self, value_node: yaml.Node, key_path: KeyPath) -> list[yaml.MappingNode]:
        """The mappings a ``<<`` merges, highest priority first: earlier entries of a sequence
        override later ones."""
        if isinstance(value_node, yaml.MappingNode):
            return [value_node]
        if isinstance(value_node, yaml.SequenceNode) and all(
            isinstance(item, yaml.MappingNode) for item in value_node.value
        ):
            return list(value_node.value)
        self.problem(value_node, key_path, "<< merges a mapping or a list of mappings (*anchors)")
        return []

    def _forget_below(self, key_path: KeyPath) -> None:
        size = len(key_path)
        for stale in [path for path in self.lines if path[:size] == key_path]:
            del self.lines[stale]
        self.secret_paths = {path for path in self.secret_paths if path[:size] != key_path}

    def _scalar(self, node: yaml.ScalarNode, key_path: KeyPath) -> Any:
        tag = node.tag
        text = node.value
        try:
            if tag == _TAG + "str" or tag == _TAG + "value":
                return self._substitute(node, key_path)
            if tag == _TAG + "null":
                return None
            if tag == _TAG + "bool":
                # YAML 1.2: only true/false. yes/no/on/off stay text (a strategy named "on", a
                # symbol "NO"); pydantic's bool fields still accept those words.
                return text.lower() == "true" if text.lower() in ("true", "false") else text
            if tag == _TAG + "int":
                if ":" in text:  # base 60 (9:30): a time, not 570
                    return text
                return self._constructor.construct_yaml_int(node)
            if tag == _TAG + "float":
                if ":" in text:
                    return text
                return _decimal_from_yaml(text)
            if tag == _TAG + "timestamp":
                return self._constructor.construct_yaml_timestamp(node)
        except (ValueError, InvalidOperation, yaml.YAMLError) as exc:
            self.problem(node, key_path, f"{text!r} is not a valid {tag.removeprefix(_TAG)} ({exc})")
            return text
        self.problem(node, key_path, f"the tag {tag} is not supported; write the value without it")
        return text

    def _substitute(self, node: yaml.ScalarNode, key_path: KeyPath) -> str:
        """Replace ``${NAME}`` / ``${NAME:-default}``; ``$${`` is a literal ``${``. Errors name
        the variable, never a value."""
        raw = node.value
        if "${" not in raw:
            return raw
        from_environment = False
        pieces: list[str] = []
        position = 0
        for match in _ENV_REFERENCE.finditer(raw):
            pieces.append(raw[position : match.start()])
            position = match.end()
            token = match.group(0)
            if token == "$${":
                pieces.append("${")
                continue
            body = match.group(1)
            if body is None:
                self.problem(node, key_path, "'${' is not closed; write ${NAME} (or $${ for a literal '${')")
                continue
            parsed = _ENV_BODY.match(body)
            if parsed is None:
                self.problem(
                    node,
                    key_path,
                    f"'${{{body}}}' is not an environment reference; write ${{NAME}} or ${{NAME:-default}}",
                )
                continue
            name, default = parsed.group(1), parsed.group(2)
            from_environment = True
            value = self.environ.get(name)
            if default is not None and not value:
                value = default
            if value is None:
                self.problem(
                    node,
                    key_path,
                    f"environment variable {name} is not set (set it, or write ${{{name}:-default}})",
                )
                continue
            if value != default:
                self.secret_values.add(value)
            pieces.append(value)
        pieces.append(raw[position:])
        if from_environment:
            self.secret_paths.add(key_path)
        return "".join(pieces)


def _decimal_from_yaml(text: str) -> Decimal:
    """A YAML 1.1 float's source text as an exact Decimal."""
    cleaned = text.replace("_", "")
    special = _SPECIAL_FLOATS.get(cleaned.lower())
    return Decimal(special if special is not None else cleaned)


def _compose(path: Path, display: str) -> yaml.Node:
    """The file's YAML node tree, or a ConfigError saying why not."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("the config file does not exist", display) from None
    except IsADirectoryError:
        raise ConfigError("this is a directory; give the config .yaml file", display) from None
    except OSError as exc:
        raise ConfigError(f"the config file cannot be read: {exc.strerror}", display) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("the file is not UTF-8 text", display, line) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "unknown problem"
        if exc.context and exc.problem and exc.context_mark is not None:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        raise ConfigError(f"the YAML does not parse: {problem}", display, line, column) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"the YAML does not parse: {exc}", display) from None
    if root is None:
        raise ConfigError("the config file is empty", display, 1)
    return root


@dataclass(frozen=True)
class ConfigYaml:
    """A config file as plain data, with where each key is and which values the environment gave."""

    data: Any
    #: each key path (and list item) -> its 1-based ``(line, column)``
    lines: Mapping[KeyPath, tuple[int, int]]
    #: key paths whose values were substituted from the environment: redact them everywhere
    secret_paths: frozenset[KeyPath]
    #: the substituted values themselves, so logs and reports can scrub them wherever they appear
    secret_values: frozenset[str]


def read_config_yaml(path: Path, display: str, environ: Mapping[str, str]) -> ConfigYaml:
    """Read and substitute ``path`` (shown to the user as ``display``). Raises :class:`ConfigError`
    listing every problem found in the YAML, each with its line."""
    root = _compose(path, display)
    builder = _TreeBuilder(display, environ)
    builder.mark((), root)
    data = builder.build(root, ())
    if builder.problems:
        raise ConfigError.combine(builder.problems, f"{display}: {len(builder.problems)} problems in the config:")
    return ConfigYaml(data, builder.lines, frozenset(builder.secret_paths), frozenset(builder.secret_values))
