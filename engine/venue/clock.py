"""Time, as the port gives it to venues: an adapter or sandbox never reads the system time.

Why a venue needs it: timestamps on events, reconnect back-off, heartbeats, token lifetimes and a
sandbox's simulated trading day all come from the one :class:`Clock` the engine hands over, so a
whole PSX day runs in seconds under :class:`SimClock` or :class:`ScaledClock` and a replay with a
seed is the same every time. A sandbox serving alone picks its own clock (``WallClock`` at speed
1). The clocks are the engine's (:mod:`engine.clock`); this is the name adapters import.
"""

from engine.clock import KARACHI, NS_PER_S, Clock, ScaledClock, SimClock, Timer, WallClock

__all__ = ["KARACHI", "NS_PER_S", "Clock", "ScaledClock", "SimClock", "Timer", "WallClock"]
