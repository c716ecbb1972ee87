"""9001 (7015 at restart): no order goes to a venue the engine cannot hear.

While the connection is down (or back but not yet reconciled) the state of the venue's orders is
unknown; a new order sent then could duplicate one the venue already has, or be lost unseen.
"""

from __future__ import annotations

from typing import Protocol

from engine.rejects import Reject
from engine.risk.gate import OrderRequest, Rejection


class _VenueState(Protocol):
    name: str
    status: str


class VenueConnected:
    """9001: the venue must be connected and reconciled."""

    __slots__ = ("venue",)

    def __init__(self, venue: _VenueState) -> None:
        self.venue = venue

    def check(self, request: OrderRequest) -> Rejection | None:
        status = self.venue.status
        if status == "connected":
            return None
        if status == "recovering":
            return Rejection(
                Reject.RECOVERING,
                f"venue {self.venue.name!r} is being reconciled with the journal after a restart: "
                "orders are refused until that is done",
            )
        return Rejection(
            Reject.BACKEND_CONNECTIVITY,
            f"venue {self.venue.name!r} is {status}: orders are refused until it is connected and reconciled",
        )
