"""Keep secrets out of everything the engine writes: logs, the JSON report, the HTML page.

A secret is any value the config read from the environment (``${TOKEN}``). Redacting the config
itself is not enough: a strategy that puts its token into an exception message, or an adapter
error that echoes a request, would carry it into a log line or the report's failure text. So every
output passes one :class:`Redactor`, which replaces each secret value wherever it appears.
Values shorter than :data:`MIN_SECRET_LEN` are left alone: scrubbing "1" or "on" from every line
would wreck the logs and protect nothing. The journal passes the strategies' ``on_save`` state
through the same :class:`Redactor` (:meth:`Redactor.scrub_value`).

:class:`RedactingFilter` is the one logging filter for every secret, the engine's and the venues':
the engine's log handlers scrub the config's secrets with it, and each venue adapter puts one on its
own and its WebSocket library's loggers (through the port, ``engine.venue.RedactingFilter``), naming
the credential fields of its protocol (by key) and handing it the secrets and tokens it handles at
run time (by value, :meth:`RedactingFilter.remember`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.outfile import write_atomic

__all__ = ["MAX_REMEMBERED", "MIN_SECRET_LEN", "REDACTED", "RedactingFilter", "Redactor", "write_scrubbed"]

#: what a secret is replaced with, everywhere (config dumps, logs, reports, journal)
REDACTED = "***"
MIN_SECRET_LEN = 4
#: values a filter remembers at most (a venue's tokens rotate at every refresh; the oldest are dropped)
MAX_REMEMBERED = 256


class Redactor:
    """Replaces every known secret value in a text with ``***`` (longest first, so a secret that
    contains another is removed whole)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        kept = sorted({s for s in secrets if len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)
        self.secrets: tuple[str, ...] = tuple(kept)
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
    """A logger or handler filter: the record's message and traceback are formatted, scrubbed, and
    frozen into the record, so no handler or formatter (human or JSON) sees a secret.

    Two layers, both applied to every message and formatted traceback:

    - by value: every secret of ``redactor`` and every value handed to :meth:`remember`, wherever it
      appears (as written and as it looks inside a JSON string);
    - by key (when ``keys`` are named): the value of each of those fields in JSON, Python reprs,
      query strings and keyword text (``"access_token": "..."``, ``token=...``), and every
      ``Authorization:`` header value.

    A logged WebSocket frame (a websockets ``Frame`` argument: a dataclass with a bytes ``data``)
    is rendered elided by its library, which could cut a secret in half past any pattern: its
    payload is scrubbed first and the frame then renders itself as usual.
    """

    def __init__(self, redactor: Redactor | None = None, keys: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = list(redactor.secrets) if redactor is not None else []
        self._remembered: OrderedDict[str, None] = OrderedDict()
        self.redactor = redactor if redactor is not None else Redactor(())
        names = sorted(set(keys))
        self._by_key: tuple[tuple[re.Pattern[str], str], ...] = () if not names else (
            # "key": "value" (JSON), 'key': 'value' (repr), key=value (query string, keyword)
            (re.compile(r"""(?i)(["']?)\b(""" + "|".join(map(re.escape, names))
                        + r""")\1(\s*[:=]\s*)(["']?)((?:\\.|[^"'\s,}&\\])*)"""), r"\1\2\1\3\4" + REDACTED),
            (re.compile(r"(?i)(authorization:\s*\S+\s+)\S+"), r"\1" + REDACTED),
        )

    def remember(self, *values: str) -> None:
        """Scrub these values (a secret, a token the venue issued) from every later record, as
        written and as they look inside a JSON string; the last :data:`MAX_REMEMBERED` are kept."""
        changed = False
        for value in values:
            if not value or len(value) < MIN_SECRET_LEN:
                continue
            for form in {value, json.dumps(value)[1:-1]}:
                if form in self._remembered:
                    self._remembered.move_to_end(form)
                else:
                    self._remembered[form] = None
                    changed = True
        while len(self._remembered) > MAX_REMEMBERED:
            self._remembered.popitem(last=False)
            changed = True
        if changed:
            self.redactor = Redactor([*self._secrets, *self._remembered])

    def scrub(self, text: str) -> str:
        """``text`` without any credential this filter knows, by key or by value."""
        for pattern, replacement in self._by_key:
            text = pattern.sub(replacement, text)
        return self.redactor.scrub(text)

    def _frame(self, arg: Any) -> Any:
        """A websockets frame with its payload scrubbed (the same frame if nothing was found)."""
        data = arg.data
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            return arg
        cleaned = self.scrub(text)
        return arg if cleaned == text else dataclasses.replace(arg, data=cleaned.encode("utf-8"))

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redactor and not self._by_key:
            return True
        args = record.args
        if isinstance(args, tuple) and args:
            record.args = tuple(self._frame(a) if _is_frame(a) else a for a in args)
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def _is_frame(arg: Any) -> bool:
    """A websockets ``Frame`` (recognised by shape: the engine does not import websockets)."""
    return dataclasses.is_dataclass(arg) and isinstance(getattr(arg, "data", None), (bytes, bytearray, memoryview))


def write_scrubbed(path: Path | str, text: str, redactor: Redactor | None = None) -> None:
    """Write an output file atomically (a temp file renamed over the target: a crash mid-write
    never leaves half a report), scrubbed of secrets first, and only to a regular file or a new
    path (:func:`engine.outfile.write_atomic`; else :class:`~engine.outfile.OutputPathError`).
    The JSON report and the HTML page both go through here."""
    write_atomic(path, redactor.scrub(text) if redactor else text)
