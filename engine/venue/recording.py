"""Recordings, as the port gives them to venues: the replay venue (``adapters/replay``) reads a
recording through the one format the engine writes (:mod:`engine.recording.format`), so a replay
and ``run.record`` can never disagree on a column. pyarrow is loaded only when a recording is read.
"""

from engine.recording.format import (
    INSTALL_HINT,
    DayTimes,
    RecordedEvent,
    day_times,
    read_events,
    recorded_dates,
    require_pyarrow,
)

__all__ = ["INSTALL_HINT", "DayTimes", "RecordedEvent", "day_times", "read_events", "recorded_dates",
           "require_pyarrow"]
