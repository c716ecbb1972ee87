"""Progress of a long job, as the port gives it to venues: the replay venue (``adapters/replay``)
shows how far a long replay has come with the engine's one progress display
(:mod:`engine.progress`: a bar on a terminal, plain or log lines elsewhere), since adapters import
only ``engine.model`` and ``engine.venue``."""

from engine.progress import Progress

__all__ = ["Progress"]
