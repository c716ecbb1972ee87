"""Keep secrets out of everything the engine writes: logs, the JSON report, the HTML page.

A secret is any value the config read from the environment (``${TOKEN}``). Redacting the config
itself is not enough: a strategy that puts its token into an exception message, or an adapter
error that echoes a request, would carry it into a log line or the report's failure text. So every
output passes one :class:`Redactor`, which replaces each secret value wherever it appears.
Values shorter than :data:`MIN_SECRET_LEN` are left alone: scrubbing "1" or "on" from every line
would wreck the logs and protect nothing. The journal passes the strategies' ``on_save`` state
through the same :class:`Redactor` (:meth:`Redactor.scrub_value`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.config import REDACTED
from engine.outfile import write_atomic

__all__ = ["MIN_SECRET_LEN", "RedactingFilter", "Redactor", "write_scrubbed"]

MIN_SECRET_LEN = 4


class Redactor:
    """Replaces every known secret value in a text with ``***`` (longest first, so a secret that
    contains another is removed whole)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        kept = sorted({s for s in secrets if len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, kept))) if kept else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def scrub(self, text: str) -> str:
        return text if self._pattern is None else self._pattern.sub(REDACTED, text)

    def scrub_value(self, value: Any) -> tuple[Any, bool]:
        """Scrub a JSON-like value (a strategy's ``on_save`` state): every string, dict key
        included, at any depth; a number whose text holds a secret (a PIN saved as an int)
        becomes ``***``. Scrubbing the value, not its JSON text, also catches a secret JSON would
        escape (a quote, non-ASCII). Returns the scrubbed value and whether anything was found."""
        if self._pattern is None:
            return value, False
        found = False

        def walk(item: Any) -> Any:
            nonlocal found
            if isinstance(item, str):
                clean = self.scrub(item)
                found = found or clean != item
                return clean
            if isinstance(item, dict):
                return {walk(k) if isinstance(k, str) else k: walk(v) for k, v in item.items()}
            if isinstance(item, (list, tuple)):
                return [walk(v) for v in item]
            if isinstance(item, (int, float, Decimal)) and not isinstance(item, bool):
                if self.scrub(str(item)) != str(item):
                    found = True
                    return REDACTED
            return item

        return walk(value), found


class RedactingFilter(logging.Filter):
    """A handler filter: the record's message and traceback are formatted, scrubbed, and frozen
    into the record, so no formatter (human or JSON) sees a secret."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redactor:
            return True
        record.msg = self.redactor.scrub(record.getMessage())
        record.args = None
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.redactor.scrub(formatted)
            record.exc_info = None
        return True


def write_scrubbed(path: Path | str, text: str, redactor: Redactor | None = None) -> None:
    """Write an output file atomically (a temp file renamed over the target: a crash mid-write
    never leaves half a report), scrubbed of secrets first, and only to a regular file or a new
    path (:func:`engine.outfile.write_atomic`; else :class:`~engine.outfile.OutputPathError`).
    The JSON report and the HTML page both go through here."""
    write_atomic(path, redactor.scrub(text) if redactor else text)
