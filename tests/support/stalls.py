"""A stall between a pacer's release and the write, for the write-hold tests (adapters/kit/pacing.py).

The pacer decides when a request may leave; the venue counts when it arrives. Whatever runs between
the two (the loop busy with a burst of market data, a slow store write, the process descheduled)
moves the write later, so requests the pacer spaced a window apart can reach the wire closer than
that. :func:`stall_first_send` makes the kit WebSocket client's ``send`` block the loop before the
first frame holding a marker, as such a stall does.
"""

from __future__ import annotations

import time
from typing import Any


def stall_first_send(client: Any, marker: str, seconds: float = 0.4) -> list[str]:
    """Wrap ``client.send`` (the kit's ``WsClient``) so that the first frame containing ``marker``
    is written ``seconds`` late, the loop blocked meanwhile. Returns a list that holds the marker
    once the stall happened (a test asserts it did)."""
    send = client.send
    stalled: list[str] = []

    async def late_send(text: str | bytes, epoch: int | None = None) -> bool:
        if not stalled and marker in (text if isinstance(text, str) else text.decode(errors="replace")):
            stalled.append(marker)
            time.sleep(seconds)  # blocks the loop: nothing else runs, as in a stall
        sent: bool = await send(text, epoch)
        return sent

    client.send = late_send
    return stalled
