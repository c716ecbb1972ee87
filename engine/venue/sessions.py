"""The session schedule a simulated venue follows.

Why a venue needs it: a sandbox opens, auctions and closes its market on the same PSX phases and
holidays as the engine (:class:`SessionSchedule`, from a config's ``sessions`` or the shipped
profile) and announces them as they pass (:class:`SessionDriver`), so an engine run against it
sees the day it would see live. The schedule is the engine's (:mod:`engine.sessions`); this is the
name adapters import.

Not imported by ``engine.venue`` itself: the schedule loads the holiday calendars, YAML and
pydantic models, which a live adapter does not need.
"""

from engine.sessions import SessionDriver, SessionSchedule

__all__ = ["SessionDriver", "SessionSchedule"]
