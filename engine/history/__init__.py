"""Outside history into the recording format (``engine data import``): CSV readers
(:mod:`.csvread`), the bar-to-book mapping (:mod:`.bars`) and the import itself (:mod:`.importer`)."""
