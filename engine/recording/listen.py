"""``engine record CONFIG --out DIR``: the config's venues, connected and subscribed to every
instrument they list, with no strategy that trades: market data to Parquet, nothing else.

The config is changed in memory only (the file is never written): each venue gets one listening
strategy (:data:`LISTENER_FILE`, a module with no trading hook) over all of its instruments, and
the journal is off (no orders, no account to keep).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from engine import hookimpl
from engine.config import LoadedConfig
from engine.config.schema import JournalConfig, StrategyConfig

#: this module is also the listening strategy's file
LISTENER_FILE = Path(__file__).resolve()


def recording_config(loaded: LoadedConfig) -> LoadedConfig:
    """``loaded`` with a listener per venue in place of its strategies, and no journal."""
    cfg = loaded.config
    listeners = []
    for venue in cfg.venues:
        symbols = [i.symbol for i in cfg.instruments if i.venue == venue]
        if symbols:
            listeners.append(StrategyConfig(name=f"record_{venue}"[:64], file=LISTENER_FILE, venue=venue,
                                            instruments=symbols))
    if not listeners:
        raise ValueError(f"{loaded.display}: no venue lists an instrument: nothing to record")
    journal = JournalConfig.model_validate({**cfg.journal.model_dump(), "enabled": False})
    config = cfg.model_copy(update={"strategies": listeners, "journal": journal})
    return dataclasses.replace(loaded, config=config)


@hookimpl
def on_start(ctx: object) -> None:
    """Listens only: the engine delivers the venue's data, the recorder writes it."""
    return None
