"""Options of the paper adapter (``venues.<name>.options``): what config may say, checked at load."""


from __future__ import annotations

from decimal import Decimal

from pydantic import Field, field_validator

from adapters.paper.faults import (
    Fault,
)
from adapters.sim.market import MarketOptions
from adapters.sim.matching import (
    StpPolicy,
)
from engine.venue import AdapterOptions


class PaperOptions(AdapterOptions):
    """Options of the paper venue (``venues.<name>.options`` in config)."""

    account: str = Field(
        "paper",
        min_length=1,
        description="Account (owner) of our orders in the matching engine; self-trade prevention works per account.",
    )
    latency_ms: Decimal = Field(
        Decimal("0.5"),
        ge=0,
        description="Simulated order round trip: a request is processed this long after it is sent.",
    )
    stp: StpPolicy = Field(
        "cancel_newest",
        description="Self-trade prevention: cancel_newest (the incoming remainder), cancel_oldest (the resting "
        "order), or cancel_both.",
    )
    market: MarketOptions = Field(default_factory=MarketOptions, description="The synthetic market.")
    cancel_on_disconnect: bool = Field(
        True,
        description="Emulate a venue-native cancel-on-disconnect: when the connection drops the venue cancels "
        "all our resting orders (silently: the engine learns it by reconciling after the reconnect).",
    )
    faults: tuple[Fault, ...] = Field(
        (),
        description="Faults injected on purpose (drop, reject, delay_acks, halt, reject_cancels), each starting at a "
        "time of day 'HH:MM[:SS]' Asia/Karachi on every trading day of the run; see adapters/paper/faults.py.",
    )

    @field_validator("account")
    @classmethod
    def _not_background(cls, value: str) -> str:
        if value.startswith("~"):  # BACKGROUND_OWNERS all start with "~"
            raise ValueError("account names starting with '~' are reserved for the synthetic market")
        return value
