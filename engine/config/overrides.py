"""Command-line overrides of the ``run:`` section (``--speed``, ``--seed``, ``--report``,
``--shutdown-timeout-s``), validated like the file's own values."""

from __future__ import annotations

import copy
import dataclasses
import os
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from engine.config.loaded import LoadedConfig
from engine.config.schema import EngineConfig, RunConfig
from engine.errors import ConfigError

__all__ = ["apply_overrides"]

_ConfigT = TypeVar("_ConfigT", EngineConfig, LoadedConfig)


def apply_overrides(
    config: _ConfigT,
    speed: Decimal | int | str | None = None,
    seed: int | None = None,
    report: str | os.PathLike[str] | None = None,
    shutdown_timeout_s: Decimal | int | str | None = None,
) -> _ConfigT:
    """A copy with command-line values in place of ``run.speed`` / ``run.seed`` / ``run.report`` /
    ``run.shutdown_timeout_s``;
    the original is untouched. Accepts an :class:`EngineConfig` or a :class:`LoadedConfig` and
    returns the same kind. Bad values raise :class:`ConfigError` naming the option."""
    if isinstance(config, LoadedConfig):
        return dataclasses.replace(
            config, config=apply_overrides(config.config, speed, seed, report, shutdown_timeout_s)
        )
    changes: dict[str, Any] = {}
    if speed is not None:
        if isinstance(speed, float):
            raise ConfigError("--speed: give the speed as text or an integer, not a binary float")
        changes["speed"] = speed
    if seed is not None:
        changes["seed"] = seed
    if report is not None:
        changes["report"] = Path(report)
    if shutdown_timeout_s is not None:
        changes["shutdown_timeout_s"] = shutdown_timeout_s
    if not changes:
        return copy.deepcopy(config)
    try:
        run = RunConfig.model_validate({**config.run.model_dump(), **changes})
    except ValidationError as exc:
        problems = [
            ConfigError(f"--{'.'.join(str(step) for step in error['loc'])}: {error['msg']}")
            for error in exc.errors(include_url=False)
        ]
        raise ConfigError.combine(problems, "the command-line overrides are not valid:") from None
    return config.model_copy(update={"run": run}, deep=True)
