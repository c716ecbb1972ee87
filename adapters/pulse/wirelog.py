"""Logging for the Pulse adapter and sandbox that never carries a credential, at any level.

Pulse authenticates inside JSON-RPC frames: ``public/auth`` carries the client secret (grant
``client_credentials``), an HMAC ``signature``, or a ``refresh_token``, and its answer carries the
access and refresh tokens. The websockets library logs every frame at DEBUG (``> TEXT '...'``),
elided to its first and last few dozen characters, so a secret at the end of a frame shows in a
DEBUG log even though the middle is cut.

The mechanism is the PSX Live Feed adapter's (``adapters/psx_feed/adapter.py``, logger
``engine.psx_feed.wire``): websockets is given a logger of our own whose filter rewrites each
record before any handler sees it. Because Pulse's credentials are in frame bodies, not in the
handshake, this filter also works on the frame itself: a websockets frame record still holds the
:class:`~websockets.frames.Frame` object with its whole payload, so the payload is cleaned first
and only then elided the way websockets does it (a cut can never leave half a secret behind).

Two layers, both applied to every message (and formatted traceback):

- by key: the value of ``client_secret``, ``access_token``, ``refresh_token`` and ``signature``
  in JSON, Python reprs and query strings, and ``Authorization:`` header values;
- by value: every secret and token the adapter has handled (:meth:`CredentialFilter.remember`),
  wherever it appears, through the engine's own :class:`engine.secrets.Redactor`.
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from typing import Any

from websockets.frames import Frame, Opcode

from engine.config import REDACTED
from engine.secrets import MIN_SECRET_LEN, Redactor

__all__ = ["CREDENTIAL_KEYS", "REDACT", "CredentialFilter", "adapter_log", "sandbox_log", "sandbox_wire_log",
           "wire_log"]

#: fields whose value is a credential, in any message
CREDENTIAL_KEYS = ("client_secret", "access_token", "refresh_token", "signature")
#: how many remembered values are kept (tokens rotate at every refresh; the oldest are dropped)
MAX_REMEMBERED = 256

_BY_KEY = (
    # "key": "value" (JSON), 'key': 'value' (repr), key=value (query string, keyword)
    (re.compile(r"""(["']?)\b(""" + "|".join(CREDENTIAL_KEYS) + r""")\1(\s*[:=]\s*)(["']?)((?:\\.|[^"'\s,}&\\])*)"""),
     r"\1\2\1\3\4" + REDACTED),
    (re.compile(r"(?i)(authorization:\s*\S+\s+)\S+"), r"\1" + REDACTED),
)
_DATA_OPCODES = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class CredentialFilter(logging.Filter):
    """A logger filter: the record's message (its frame payloads first) and traceback are cleaned
    and frozen into the record, so no handler or formatter sees a credential."""

    def __init__(self) -> None:
        super().__init__()
        self._values: OrderedDict[str, None] = OrderedDict()
        self._redactor = Redactor(())

    def remember(self, *values: str) -> None:
        """Scrub these values (a secret, a token) from every later record, as written and as they
        look inside a JSON string."""
        changed = False
        for value in values:
            if not value or len(value) < MIN_SECRET_LEN:
                continue
            for form in {value, json.dumps(value)[1:-1]}:
                if form in self._values:
                    self._values.move_to_end(form)
                else:
                    self._values[form] = None
                    changed = True
        while len(self._values) > MAX_REMEMBERED:
            self._values.popitem(last=False)
            changed = True
        if changed:
            self._redactor = Redactor(self._values)

    def scrub(self, text: str) -> str:
        for pattern, replacement in _BY_KEY:
            text = pattern.sub(replacement, text)
        return self._redactor.scrub(text)

    def _frame(self, frame: Frame) -> Any:
        if frame.opcode not in _DATA_OPCODES:
            return frame
        try:
            text = bytes(frame.data).decode("utf-8")
        except UnicodeDecodeError:
            return frame
        cleaned = self.scrub(text)
        if cleaned == text:
            return frame
        # websockets' own rendering (opcode, elided payload, length) of the cleaned payload
        return str(Frame(frame.opcode, cleaned.encode("utf-8"), frame.fin))

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args:
            record.args = tuple(self._frame(a) if isinstance(a, Frame) else a for a in args)
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


#: the one filter of this process: every Pulse adapter remembers its secret and tokens in it
REDACT = CredentialFilter()

#: the adapter's own log
adapter_log = logging.getLogger("engine.pulse")
#: the websockets library logs the adapter's connections through this one
wire_log = logging.getLogger("engine.pulse.wire")
#: the sandbox's own log, and the websockets server's log of the sandbox's connections
sandbox_log = logging.getLogger("engine.pulse.sandbox")
sandbox_wire_log = logging.getLogger("engine.pulse.sandbox.wire")

# a logger's filters see only the records made on that logger, not its children's: each gets it
for _logger in (adapter_log, wire_log, sandbox_log, sandbox_wire_log):
    if REDACT not in _logger.filters:
        _logger.addFilter(REDACT)
