"""Market-data recording and replay (issue 26): the Parquet format (:mod:`.format`) and the recorder
that writes it off the event path (:mod:`.recorder`)."""
