"""Errors the engine reports to a person, each pointing at the file and line to fix.

A user reads these in a terminal and clicks through to the file, so the text is always
``path:line: sentence`` (``path:line:column:`` when the column is known). When several problems are
found at once (a config with three typos, two broken strategy files) they travel together in one
exception, so the user fixes everything in one go instead of one error per run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Self

__all__ = ["ConfigError", "EngineError", "LocatedError", "StartupError", "StrategyLoadError", "only_error"]


class EngineError(Exception):
    """Base for errors meant for the user: ``str(error)`` is the whole message."""


class LocatedError(EngineError):
    """A problem at a place in a file.

    ``file`` is the path as the user gave it (so the message matches what they typed), ``line`` and
    ``column`` are 1-based. ``problems`` holds every problem this error stands for: just itself for
    a single problem, or each one when :meth:`combine` gathered several.
    """

    def __init__(
        self,
        message: str,
        file: str | os.PathLike[str] | None = None,
        line: int | None = None,
        column: int | None = None,
        *,
        problems: Sequence[LocatedError] = (),
    ) -> None:
        self.message = message
        self.file = None if file is None else os.fspath(file)
        self.line = line
        self.column = column
        self.problems: tuple[LocatedError, ...] = tuple(problems) or (self,)
        super().__init__(self._text())

    @property
    def location(self) -> str:
        """``path:line:column`` with the parts that are known, or ``""``."""
        parts = [self.file] if self.file else []
        if self.file and self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def _single_text(self) -> str:
        where = self.location
        return f"{where}: {self.message}" if where else self.message

    def _text(self) -> str:
        if len(self.problems) == 1:
            return self._single_text()
        lines = [self.message] + [f"  {problem._single_text()}" for problem in self.problems]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._text()

    @classmethod
    def combine(cls, problems: Sequence[LocatedError], summary: str) -> Self:
        """One error standing for all ``problems``: the problem itself when there is only one,
        else an error whose message is ``summary`` followed by one line per problem."""
        if not problems:
            raise ValueError("combine() needs at least one problem")
        first = problems[0]
        if len(problems) == 1:
            if isinstance(first, cls):
                return first
            return cls(first.message, first.file, first.line, first.column)
        return cls(summary, first.file, first.line, first.column, problems=problems)


class ConfigError(LocatedError):
    """The config file is unreadable, does not parse, or holds a value the engine refuses."""


class StrategyLoadError(LocatedError):
    """A strategy file cannot be loaded: missing, broken, or its hooks or params are wrong."""


class StartupError(EngineError):
    """The engine cannot start on this host as configured (e.g. the metrics port is taken). Nothing
    has traded yet; the message says what to change."""


def only_error(group: BaseExceptionGroup, kinds: type[BaseException] | tuple[type[BaseException], ...]
               ) -> BaseException | None:
    """The one ``kinds`` exception a task group raised, when nothing else went wrong in it: the
    caller raises it alone, so the user reads one clear line, not the task group's traceback."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        item = pending.pop()
        if isinstance(item, BaseExceptionGroup):
            pending.extend(item.exceptions)
        else:
            leaves.append(item)
    return leaves[0] if len(leaves) == 1 and isinstance(leaves[0], kinds) else None
