"""9001 (7015 at restart): no order goes to a venue the engine cannot hear.

While the connection is down (or back but not yet reconciled) the state of the venue's orders is
unknown; a new order sent then could duplicate one the venue already has, or be lost unseen.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from engine.rejects import Reject
from engine.risk.gate import OrderRequest, Rejection


class VenueStatus(StrEnum):
    """A venue account's connection state, as the runtime keeps it (engine.runtime.connectivity)
    and this rule reads it. A ``str`` enum: logs, metrics (``engine_venue_state``), the report and
    ``ctx.venue_status`` carry the same words as before, and a strategy may compare with the plain
    string. Defined here, below the runtime, so the rule compares by identity: an enum member's
    ``==`` with a string literal costs the gate ~150 instructions more per order (callgrind)."""

    DISCONNECTED = "disconnected"  # no connection: open orders unknown, orders refused (9001)
    CONNECTED = "connected"  # connected and reconciled: orders flow
    RECONCILING = "reconciling"  # back after a drop, asking the venue what happened meanwhile (9001)
    RECOVERING = "recovering"  # at a restart, until the journal's orders are reconciled (7015)
    STALE = "stale"  # told to strategies only: market data stopped; orders are not affected


# members as globals: on Python 3.11 ``VenueStatus.CONNECTED`` runs EnumType's attribute hook
DISCONNECTED = VenueStatus.DISCONNECTED
CONNECTED = VenueStatus.CONNECTED
RECONCILING = VenueStatus.RECONCILING
RECOVERING = VenueStatus.RECOVERING
STALE = VenueStatus.STALE


class _VenueState(Protocol):
    name: str
    status: VenueStatus


class VenueConnected:
    """9001: the venue must be connected and reconciled."""

    __slots__ = ("venue",)

    def __init__(self, venue: _VenueState) -> None:
        self.venue = venue

    def check(self, request: OrderRequest) -> Rejection | None:
        status = self.venue.status
        if status is CONNECTED:
            return None
        if status is RECOVERING:
            return Rejection(
                Reject.RECOVERING,
                f"venue {self.venue.name!r} is being reconciled with the journal after a restart: "
                "orders are refused until that is done",
            )
        return Rejection(
            Reject.BACKEND_CONNECTIVITY,
            f"venue {self.venue.name!r} is {status}: orders are refused until it is connected and reconciled",
        )
