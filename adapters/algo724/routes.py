"""Every REST method and path the Algo724 adapter calls: the project's assumptions, in one place.

Why a table: document 003 is a Redoc page whose rendering lost every HTTP method and path (ALG-1);
only the operations' descriptions, parameters and examples survive, and the one path hint is the
error example's ``"resource": "/api/v3/tradingAccount"``. So each route below is an assumption,
written once with its gap number (VENUES.md 4.11), and each can be replaced in config
(``venues.<name>.options.routes.<operation>: {method, path}``) the day Algo724 says otherwise. The
sandbox (adapters/algo724/sandbox.py) serves exactly these defaults, written independently.

Placement (ALG-2): a ``GET`` sends its parameters as a query string, everything else a JSON body.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_BASE_PATH", "DEFAULT_ROUTES", "OPERATIONS", "Route"]

#: ALG-1: the base under the host; the only hint is the error example's "/api/v3/tradingAccount"
DEFAULT_BASE_PATH = "/api/v3"


@dataclass(frozen=True)
class Route:
    """One operation's method and path (relative to the base URL) and the gap that assumes it."""

    method: str
    path: str
    gap: str = "ALG-1"
    operation: str = ""  # the document's own words for it


#: operation -> its assumed route. Keys are the names config uses under ``routes:``.
DEFAULT_ROUTES: dict[str, Route] = {
    "login": Route("POST", "/auth/login", "ALG-1", "Authenticate user and return access/refresh tokens"),
    "refresh": Route("POST", "/auth/refresh", "ALG-1", "Get new access token using refresh token"),
    "logout": Route("POST", "/auth/logout", "ALG-1", "(no description; answers data \"ok\")"),
    "submit": Route("POST", "/tradeOrder", "ALG-1", "Submit a new trade order"),
    "cancel": Route("POST", "/tradeOrder/cancel", "ALG-1", "Cancel an existing trade order"),
    "list": Route("GET", "/tradeOrder", "ALG-1, ALG-2", "List trade orders with filtering options"),
}
OPERATIONS = tuple(DEFAULT_ROUTES)
