"""Options of the algo724 adapter (``venues.<name>.options``): what config may say, checked at load."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adapters.algo724.routes import DEFAULT_BASE_PATH, DEFAULT_ROUTES, OPERATIONS, Route
from adapters.kit.urls import refuse_clear_text
from engine.venue import AdapterOptions

__all__ = ["Algo724Options", "RouteOption"]


class RouteOption(BaseModel):
    """One operation's method and path, replacing the assumed one (routes.py, ALG-1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str = Field(..., pattern="^(GET|POST|PUT|PATCH|DELETE)$")
    path: str = Field(..., pattern="^/")


class Algo724Options(AdapterOptions):
    """Options of the Algo724 adapter. Secrets are named (a variable or a file), never given."""

    base_url: str = Field(
        ..., description=f"REST base URL including the API prefix (assumed {DEFAULT_BASE_PATH}, ALG-1). Required: "
        "document 003 names no REST host, so none is made up; the sandbox prints its own.",
    )
    routes: dict[str, RouteOption] = Field(
        default_factory=dict,
        description=f"Per operation ({', '.join(OPERATIONS)}): {{method, path}} replacing the assumed route "
        "(ALG-1; README table).",
    )
    email_env: str = Field("ALGO724_EMAIL", min_length=1, description="Environment variable holding the login email.")
    password_env: str | None = Field("ALGO724_PASSWORD", description="Environment variable holding the password.")
    password_file: Path | None = Field(None, description="File holding the password (first line); wins over the "
                                       "variable.")
    trading_account_id: str = Field(..., min_length=1, description="The tradingAccountId (UUID) orders go to.")
    route_venue: str = Field("BINANCE", pattern="^[A-Z0-9_]+$",
                             description="Underlying venue of every instrumentId: VENUE:BASE/QUOTE, the engine "
                             "symbol being BASE/QUOTE.")
    instrument_ids: dict[str, str] = Field(default_factory=dict,
                                           description="Engine symbol -> instrumentId where it differs from "
                                           "route_venue:symbol.")
    connect_timeout_s: Decimal = Field(Decimal(2), gt=0, description="TCP/TLS connect timeout per request.")
    request_timeout_s: Decimal = Field(
        Decimal(5), gt=0, description="Read/write timeout per request; an order whose answer takes longer is "
        "'unknown' until its idempotency key is asked again.")
    max_connections: int = Field(8, ge=1, le=100, description="Kept-alive connections.")
    refresh_margin_s: Decimal = Field(Decimal(300), ge=0, description="Refresh the access token this long before "
                                      "expiresIn runs out (at most half its life).")
    poll_interval_s: Decimal = Field(Decimal(1), gt=0, description="List the open orders this often (fills and "
                                     "states until the Centrifugo stream carries them).")
    poll_interval_streaming_s: Decimal = Field(Decimal(15), gt=0, description="List the open orders this often "
                                               "while the Centrifugo stream's account channel is live (it pushes "
                                               "each change; the listing is the safety net).")
    unknown_retry_s: Decimal = Field(Decimal("0.5"), gt=0, description="Ask again this often, with the same "
                                     "idempotencyKey, about an order whose answer was lost.")
    disconnect_after_failures: int = Field(3, ge=1, description="Failed requests in a row that mean 'disconnected'.")
    connect_retries: int = Field(2, ge=0, description="Resends of a request that could not even connect.")
    retry_backoff_s: Decimal = Field(Decimal("0.2"), ge=0, description="Wait between such resends.")
    journal_fsync: bool = Field(True, description="fsync the id journal (ids.py): each order's key before it leaves "
                                "(its tradeOrderId with the next poll), so both survive a power cut; a few ms per "
                                "order on a VM disk.")
    page_size: int = Field(100, ge=1, le=1000, description="Orders per list page (document: 1..1000).")
    # the Centrifugo streams (adapters/algo724/streams.py; added by branch algcf)
    streams_url: str | None = Field(
        None, description="Centrifugo WebSocket of the order, book and trade streams (document 003: "
        "wss://cadenza-ws.algo724.com/connection/websocket, UAT wss://cadenza-ws-uat.algo724.com/connection/"
        "websocket). None: no streams (orders are polled, no market data); the sandbox prints its own.")
    streams_stale_s: Decimal = Field(Decimal(30), gt=0, description="No book or trade publication for this long "
                                     "-> venue status 'stale'.")
    streams_queue_size: int = Field(10_000, ge=16, description="Publications waiting for the engine at most; past "
                                    "it a book is resynced and the account reconciled over REST.")

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        refuse_clear_text(value, "base_url", "the login and the bearer token")
        return value.rstrip("/")

    @field_validator("streams_url")
    @classmethod
    def _stream_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("streams_url must start with ws:// or wss://")
        refuse_clear_text(value, "streams_url", "the access token")
        return value

    @field_validator("routes")
    @classmethod
    def _known(cls, value: dict[str, RouteOption]) -> dict[str, RouteOption]:
        unknown = sorted(set(value) - set(OPERATIONS))
        if unknown:
            raise ValueError(f"unknown operation {', '.join(unknown)}; operations: {', '.join(OPERATIONS)}")
        return value

    @model_validator(mode="after")
    def _secret_sources(self) -> Algo724Options:
        if self.password_env is None and self.password_file is None:
            raise ValueError("give password_env or password_file (the password itself never goes in config)")
        return self

    def route(self, operation: str) -> Route:
        """The route of ``operation``: config's when given, else the assumed one."""
        default = DEFAULT_ROUTES[operation]
        given = self.routes.get(operation)
        if given is None:
            return default
        return Route(given.method, given.path, "config", default.operation)

    def instrument_id(self, symbol: str) -> str:
        return self.instrument_ids.get(symbol) or f"{self.route_venue}:{symbol}"
