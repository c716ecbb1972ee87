"""What a venue sent that we could not use: counted by kind, logged without flooding.

A venue (or anyone who can reach a socket or a webhook port) can send garbage at any rate. Every
adapter hands each bad frame, message or request to one :class:`BadInput` instead of raising or
logging a line each: the first of a kind is logged at once with a sample, later ones of that kind
are summed and logged at most once per ``interval_s`` ("... 68,137 more in the last 60 s"), and the
per-kind totals reach the run report and ``/metrics`` through :meth:`Adapter.bad_input`.

Kinds are a small fixed vocabulary (the constants below) so a metric label never carries what a
venue chose to send.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from engine.countedlog import CountedLog

# Frame or body level: nothing in it could be used.
NOT_JSON = "not_json"              # not text, not UTF-8, or not JSON at all
TOO_DEEP = "too_deep"              # nesting past the codec's depth bound
TOO_LARGE = "too_large"            # a frame or body over the adapter's size bound
BAD_NUMBER = "bad_number"          # a number with too many digits, too large an exponent or magnitude
BINARY = "binary"                  # a binary frame on a text protocol
MALFORMED = "malformed"            # valid JSON, but a field missing, of the wrong type, or out of range
UNKNOWN_MESSAGE = "unknown_message"  # well formed, but a message type the document does not define
# Webhook level: refused before the body is trusted.
BAD_SIGNATURE = "bad_signature"    # missing, malformed or wrong signature header
STALE_SIGNATURE = "stale_signature"  # signed outside the tolerance window
REPLAYED = "replayed"              # a delivery id already applied

KINDS = (NOT_JSON, TOO_DEEP, TOO_LARGE, BAD_NUMBER, BINARY, MALFORMED, UNKNOWN_MESSAGE, BAD_SIGNATURE,
         STALE_SIGNATURE, REPLAYED)

SAMPLE_CHARS = 160


def sample_of(data: str | bytes | bytearray | memoryview, limit: int = SAMPLE_CHARS) -> str:
    """A short printable excerpt of what arrived, for a log line: never the whole of a 10 MB frame."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        head = bytes(data[: limit + 1])
        text = head.decode("utf-8", "backslashreplace")
        size = len(data)
    else:
        text = data[: limit + 1]
        size = len(data)
    text = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    if len(text) > limit or size > limit:
        text = f"{text[:limit]}... ({size:,} {'bytes' if not isinstance(data, str) else 'chars'})"
    return text


class BadInput:
    """Per-kind counters and a rate-limited log for one adapter's bad input.

    ``record`` is cheap (a dict update and a clock read) so a flood costs little more than the
    decode that failed. ``where`` names the adapter and venue in every line. The "first line, then
    a count per interval" part is :class:`engine.countedlog.CountedLog`, shared with the runtime's
    refused orders.
    """

    __slots__ = ("counts", "_where", "_lines")

    def __init__(self, logger: logging.Logger, where: str, interval_s: float = 60.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.counts: dict[str, int] = {}
        self._where = where
        self._lines = CountedLog(logger, interval_s, monotonic, self._subject)

    def _subject(self, kind: object) -> str:
        return f"{self._where}: dropped bad input ({kind})"

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def record(self, kind: str, reason: str, sample: str = "") -> None:
        """Count one bad input of ``kind``; log it now if it is the first of its kind or the
        interval since that kind's last line has passed, else only count it."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        detail = f"{reason}; sample: {sample}" if sample else reason
        self._lines.record(kind, detail, "%s: dropped bad input (%s): %s", self._where, kind, detail)

    def flush(self) -> None:
        """Log what was counted but not yet told (at close, so no count is left unsaid)."""
        self._lines.flush()


def kind_of(exc: BaseException) -> str:
    """The kind of a frame's decode failure: the codec error's own ``kind`` when it carries one;
    else what Python's parser raised on its own (a nesting past the recursion limit, a number
    ``Decimal`` cannot hold), else ``MALFORMED``. Readers use this so a codec that does not yet
    label every failure still gets an honest kind, never a crash."""
    kind = getattr(exc, "kind", None)
    if type(kind) is str:
        return kind
    if isinstance(exc, RecursionError):
        return TOO_DEEP
    if isinstance(exc, ArithmeticError):  # decimal.InvalidOperation / Overflow, OverflowError
        return BAD_NUMBER
    if isinstance(exc, UnicodeError):
        return NOT_JSON
    return MALFORMED
