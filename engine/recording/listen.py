"""``engine record CONFIG --out DIR``: the config's venues, connected and subscribed to every
instrument they list, with no strategy that trades: market data to Parquet, nothing else.

The config is changed in memory only (the file is never written): each venue gets one listening
strategy (:data:`LISTENER_FILE`, a module with no trading hook) over all of its instruments, and
the journal is off (no orders, no account to keep).

Only what carries market data is connected: a venue with a ``market_data:`` section records from
that adapter, and its order adapter is replaced by :class:`NoOrders` (never built, so it needs no
credentials: recording a PSX feed does not need the Optimus keys); a venue without one records
from its ``adapter``, which is then its market data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from engine import hookimpl
from engine.config import LoadedConfig
from engine.config.schema import JournalConfig, StrategyConfig
from engine.model import Fill, Order, VenueOrder
from engine.venue import OrderEntryAdapter

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


class NoOrders(OrderEntryAdapter):
    """The order side of a venue whose data comes from its ``market_data:`` adapter, while
    recording: connects to nothing (so it needs no credentials), knows no orders, takes none.
    Nothing sends it one: the listening strategy has no trading hook."""

    name = "record-no-orders"

    async def connect(self) -> None:
        self.sink.on_venue_status(self.venue, "connected", "recording: market data only, no order connection")

    async def close(self) -> None:
        return None

    def subscribe(self, symbols: Iterable[str]) -> None:
        return None  # the market_data adapter carries the data

    def submit(self, order: Order) -> None:
        raise RuntimeError(f"engine record sends no orders (venue {self.venue})")

    def cancel(self, order: Order) -> None:
        raise RuntimeError(f"engine record sends no orders (venue {self.venue})")

    def amend(self, order: Order, price: Decimal | None, qty: Decimal | None) -> None:
        raise RuntimeError(f"engine record sends no orders (venue {self.venue})")

    async def query_open_orders(self) -> list[VenueOrder]:
        return []

    async def query_order(self, client_id: str) -> VenueOrder | None:
        return None

    async def query_fills(self, since_ns: int) -> list[Fill]:
        return []
