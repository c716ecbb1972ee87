"""Reconnect backoff shared by every network adapter (one jitter rule for all venues)."""

from __future__ import annotations

import random


class Backoff:
    """Exponential backoff with "equal jitter" for reconnects: attempt n waits between d/2 and d,
    where d = min(max, base * 2**n). Jitter spreads the reconnects of many clients after an outage;
    the floor of d/2 keeps a flapping server from being hammered."""

    def __init__(self, base_s: float, max_s: float, rng: random.Random) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.rng = rng
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.max_s, self.base_s * 2 ** min(self.attempt, 62))
        self.attempt += 1
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.attempt = 0
