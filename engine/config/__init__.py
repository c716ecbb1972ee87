"""The engine's config file: YAML read with exact line numbers into strict pydantic models.

- :mod:`engine.config.schema`: the models, one per section, and the checks across sections;
- :mod:`engine.config.yamlfile`: the line-tracking YAML reader with ``${ENV}`` substitution
  (exact Decimals, no duplicate keys, YAML 1.2 booleans);
- :mod:`engine.config.loaded`: :func:`load_config` and the :class:`LoadedConfig` that points back
  into the file;
- :mod:`engine.config.errors`: pydantic's errors as line-numbered sentences, and
  :func:`validate_section` for blocks checked later (an adapter's options);
- :mod:`engine.config.overrides`: the command line's ``run:`` overrides.

The names below are what the rest of the engine, adapters and tests import; they stay importable
from ``engine.config``.
"""

from engine.config.errors import CrossFieldProblems, KeyPath, format_key_path, validate_section
from engine.config.loaded import LoadedConfig, load_config
from engine.config.overrides import apply_overrides
from engine.config.schema import (
    EngineConfig,
    InstrumentConfig,
    LoggingConfig,
    MetricsConfig,
    RiskConfig,
    RunConfig,
    StrategyConfig,
    VenueConfig,
)
from engine.errors import ConfigError
from engine.secrets import REDACTED

__all__ = [
    "REDACTED",
    "ConfigError",
    "CrossFieldProblems",
    "EngineConfig",
    "InstrumentConfig",
    "KeyPath",
    "LoadedConfig",
    "LoggingConfig",
    "MetricsConfig",
    "RiskConfig",
    "RunConfig",
    "StrategyConfig",
    "VenueConfig",
    "apply_overrides",
    "format_key_path",
    "load_config",
    "validate_section",
]
