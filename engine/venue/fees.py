"""The fee schedule a simulated venue charges.

Why a venue needs it: the simulated exchange (adapters/sim) and the paper adapter charge each fill
the commission, taxes and levies of the :class:`FeeSchedule` the engine hands them (from the
config's rule pack), so a paper or sandbox fill costs what the engine's own accounting expects.
The schedule is the engine's (:mod:`engine.risk.rulepack`); this is the name adapters import.

Kept apart from :mod:`engine.venue.bands` and not imported by ``engine.venue`` itself: the rule
packs load pydantic models and YAML, which a venue that only checks bands does not need.
"""

from engine.risk.rulepack import FeeSchedule

__all__ = ["FeeSchedule"]
