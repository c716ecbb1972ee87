"""Hostile frames for the sandboxes' ``badframe`` fault: what a broken venue or an attacker on the
socket could send, so the adapters' readers are tried with it end to end (issue 17, item 1).

One vocabulary for every WebSocket sandbox (``adapters/psx_feed/sandbox.py``, the combined
``engine sandbox psx`` and ``adapters/pulse/sandbox.py``): each builds a well-formed message of its
own protocol and the two venue-specific ones (a discriminator that is a list, a number no
``Decimal`` holds); the rest are built here from the good message.
"""

from __future__ import annotations

__all__ = ["BAD_FRAME_KINDS", "DEEP_LEVELS", "HUGE_BYTES", "HUGE_NUMBER", "bad_frame", "check_kind"]

#: kind -> what the frame is (help texts and README list these)
BAD_FRAME_KINDS: dict[str, str] = {
    "type_list": "the message's discriminator is a list, e.g. {\"type\":[]} (unhashable in a dict lookup)",
    "deep": "an array nested 100,000 deep (past any recursion limit)",
    "huge_number": "a number with a 20-digit exponent, e.g. \"ltp\":1e9999999999999999999",
    "binary": "a well-formed message sent as a binary frame on a text protocol",
    "truncated": "the first half of a real message, sent as a complete frame",
    "huge": "a well-formed message padded to 10 MiB (over every adapter's default max_message_bytes)",
}
DEEP_LEVELS = 100_000
HUGE_BYTES = 10 << 20
#: the issue's number: Decimal's parser refuses its exponent (InvalidOperation)
HUGE_NUMBER = "1e9999999999999999999"


def check_kind(kind: str) -> str:
    """``kind`` if it is one of :data:`BAD_FRAME_KINDS`; else ValueError naming them."""
    if kind not in BAD_FRAME_KINDS:
        raise ValueError(f"bad frame kind {kind!r}; kinds: {', '.join(BAD_FRAME_KINDS)}")
    return kind


def bad_frame(kind: str, good: str, *, type_list: str, huge_number: str) -> str | bytes:
    """One frame of ``kind``. ``good`` is a well-formed JSON object message of the venue's protocol;
    ``type_list`` and ``huge_number`` are the venue's own frames of those two kinds."""
    check_kind(kind)
    if kind == "type_list":
        return type_list
    if kind == "huge_number":
        return huge_number
    if kind == "deep":
        return "[" * DEEP_LEVELS + "]" * DEEP_LEVELS
    if kind == "binary":
        return good.encode()
    if kind == "truncated":
        return good[: len(good) // 2]
    pad = max(0, HUGE_BYTES - len(good) - 10)  # huge: the good message, padded at the front
    return '{"pad":"' + "x" * pad + '",' + good[1:]
