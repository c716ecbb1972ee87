"""Reading a config file: :func:`load_config` and the :class:`LoadedConfig` it returns.

A loaded config keeps what is needed to point back into the file (each key's line, which values
came from the environment), so any later complaint about it, from the engine or an adapter,
names the line to fix and never shows a secret. Top-level keys starting with ``x-`` are ignored,
so shared blocks can be written once and merged with ``<<: *anchor``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config.errors import KeyPath, at_key, validate_section
from engine.config.schema import EngineConfig
from engine.config.yamlfile import read_config_yaml
from engine.errors import ConfigError
from engine.secrets import REDACTED  # one replacement text for every secret (config dumps, logs, reports)

__all__ = ["EXTENSION_PREFIX", "LoadedConfig", "load_config"]

EXTENSION_PREFIX = "x-"  # top-level keys ignored by validation, for YAML anchors


@dataclass(frozen=True, repr=False)
class LoadedConfig:
    """A validated config plus what is needed to point back into the file.

    ``path`` and ``base_dir`` are kept as the user gave them, so messages show what they typed.
    ``lines`` maps each key path (and list item) to its 1-based ``(line, column)``. ``secret_paths``
    are the key paths whose values were substituted from the environment: redact them everywhere.
    ``data`` is the plain data the models were validated from.
    """

    config: EngineConfig
    path: Path
    lines: Mapping[KeyPath, tuple[int, int]]
    secret_paths: frozenset[KeyPath]
    base_dir: Path
    data: dict[str, Any] = field(default_factory=dict)
    #: the values read from the environment: logs, reports and pages scrub them wherever they appear
    secret_values: frozenset[str] = frozenset()

    @property
    def display(self) -> str:
        return str(self.path)

    def position(self, key_path: KeyPath) -> tuple[int, int] | None:
        """``(line, column)`` of the deepest key of ``key_path`` that is in the file."""
        for end in range(len(key_path), -1, -1):
            found = self.lines.get(tuple(key_path[:end]))
            if found is not None:
                return found
        return None

    def line_of(self, key_path: KeyPath) -> int | None:
        found = self.position(key_path)
        return found[0] if found else None

    def error(self, key_path: KeyPath, sentence: str) -> ConfigError:
        """A :class:`ConfigError` at the line of ``key_path``, reading ``path:line: a.b[0]: sentence``."""
        return ConfigError(at_key(key_path, sentence), self.display, self.line_of(key_path))

    def is_secret(self, key_path: KeyPath) -> bool:
        """True when the value at ``key_path`` is, or holds, a value from the environment."""
        path = tuple(key_path)
        return any(path[: len(secret)] == secret or secret[: len(path)] == path for secret in self.secret_paths)

    def resolve(self, relative: str | os.PathLike[str]) -> Path:
        """A path from the config, relative to the config file's folder unless absolute."""
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    @property
    def journal_path(self) -> Path:
        """``journal.path`` resolved; by default ``<config name>.journal.sqlite`` beside the config."""
        configured = self.config.journal.path
        if configured is not None:
            return self.resolve(configured)
        return self.base_dir / f"{Path(self.path).stem}.journal.sqlite"

    def redacted(self) -> dict[str, Any]:
        """The config as JSON-ready data with every environment-substituted value replaced by
        ``"***"``: what a report or a log may show."""
        dumped = self.config.model_dump(mode="json")
        for secret in self.secret_paths:
            _replace_at(dumped, secret, REDACTED)
        return dumped

    def __repr__(self) -> str:
        # Never let a debug print show a secret.
        return f"LoadedConfig(path={self.display!r}, strategies={[s.name for s in self.config.strategies]})"


def _replace_at(data: Any, key_path: KeyPath, replacement: Any) -> None:
    node = data
    for key in key_path[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return
    try:
        if key_path and ((isinstance(node, dict) and key_path[-1] in node) or isinstance(node, list)):
            node[key_path[-1]] = replacement
    except (IndexError, TypeError):
        return


def load_config(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, substitute and validate a config file.

    Raises :class:`ConfigError` listing every problem found, each as ``path:line: key.path: sentence``.
    ``environ`` defaults to ``os.environ`` (tests pass their own).
    """
    display = os.fspath(path)
    config_path = Path(display)
    read = read_config_yaml(config_path, display, os.environ if environ is None else environ)
    data = read.data
    if not isinstance(data, dict):
        raise ConfigError("the top level of the config must be a mapping (run:, venues:, strategies: ...)", display, 1)
    # validate_section needs the line map; the placeholder config is replaced just below.
    loaded = LoadedConfig(
        config=EngineConfig.model_construct(),
        path=config_path,
        lines=read.lines,
        secret_paths=read.secret_paths,
        secret_values=read.secret_values,
        base_dir=config_path.parent,
        data=data,
    )
    # Top-level "x-..." keys are free space for YAML anchors (the docker-compose convention).
    settings = {key: value for key, value in data.items() if not key.startswith(EXTENSION_PREFIX)}
    config = validate_section(loaded, EngineConfig, settings, ())
    return dataclasses.replace(loaded, config=config)
