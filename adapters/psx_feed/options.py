"""Options of the psx_feed adapter (``venues.<name>.options``): what config may say, checked at load."""


from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, field_validator, model_validator

from adapters.kit.urls import refuse_clear_text
from adapters.psx_feed.codec import (
    HOSTS,
    MAX_CONNECTIONS_PER_TOKEN,
    feed_url,
    public_url,
)
from engine.venue import AdapterOptions


class LiveFeedOptions(AdapterOptions):
    """Options of the PSX Live Feed adapter (``venues.<name>.options``). The token itself is never
    in config: name the environment variable (``token_env``) or the file (``token_file``)."""

    preset: Literal["staging", "production"] | None = Field(
        None, description="Host from the document: staging = wss://uat.csapis.com, production = wss://csapis.com.",
    )
    url: str | None = Field(
        None, description="Any ws:// or wss:// URL instead of a preset (e.g. the sandbox). Without a path the "
        "access level's path is added; with one it is used as given.",
    )
    access: Literal["feed", "full", "l2"] = Field(
        "full", description="Access level: feed = /2.0/market/feed (L0), full = /2.0/market/feed/full (L1, top of "
        "book), l2 = /2.0/market/feed/l2 (L2: depth and individual orders).",
    )
    token_env: str | None = Field(None, min_length=1, description="Environment variable holding the bearer token.")
    token_file: Path | None = Field(None, description="File holding the bearer token (read at every connect).")
    token_in: Literal["header", "query"] = Field(
        "header", description="Send the token as 'Authorization: Bearer <token>' or as the query parameter "
        "'token' (the document allows both and names neither: gap PSX-2).",
    )
    max_connections: int = Field(
        1, ge=1, description="Connections this process may hold on this token, over all adapters using it. The "
        "document allows 2 per token.",
    )
    backoff_base_s: Decimal = Field(Decimal("0.5"), gt=0, description="First reconnect delay (before jitter).")
    backoff_max_s: Decimal = Field(Decimal(30), gt=0, description="Longest reconnect delay.")
    stale_seconds: Decimal = Field(
        Decimal(10), gt=0, description="No usable message for this long (frames that cannot be decoded do not "
        "count) -> venue status 'stale'.",
    )
    stale_reconnect_seconds: Decimal = Field(
        Decimal(60), ge=0, description="No message for this long -> reconnect (PSX-5 assumes 60 s); 0 = never.",
    )
    stale_when_closed: bool = Field(
        False, description="Watch for staleness while the market is closed too (default: a closed market is quiet).",
    )
    ping_interval_s: Decimal = Field(Decimal(20), gt=0, description="WebSocket keepalive ping (PSX-5: 20 s).")
    ping_timeout_s: Decimal = Field(Decimal(20), gt=0, description="Drop the socket when a ping is unanswered.")
    open_timeout_s: Decimal = Field(Decimal(10), gt=0, description="Timeout of one connection attempt.")
    max_message_bytes: int = Field(
        1 << 20, ge=1024, description="Largest message read (default 1 MiB). The largest legitimate one is an L2 "
        "snapshot of one symbol, tens of KB; a bigger message is not read: the socket closes with 1009, the "
        "message is counted too_large and the adapter reconnects with backoff.",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_token_in_config(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("token", "bearer", "access_token"):
                if key in data:
                    raise ValueError(
                        f"{key!r}: the token never goes into config; set token_env (an environment variable's "
                        "name) or token_file (a file holding the token)"
                    )
        return data

    @field_validator("max_connections")
    @classmethod
    def _within_document_cap(cls, value: int) -> int:
        if value > MAX_CONNECTIONS_PER_TOKEN:
            raise ValueError(
                f"max_connections {value} exceeds the PSX Live Feed limit of {MAX_CONNECTIONS_PER_TOKEN} "
                "concurrent connections per token (the server terminates connections beyond it)"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LiveFeedOptions:
        if (self.preset is None) == (self.url is None):
            raise ValueError("set exactly one of preset (staging | production) or url")
        if (self.token_env is None) == (self.token_file is None):
            raise ValueError("set exactly one of token_env (environment variable) or token_file (file)")
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError("backoff_max_s must be at least backoff_base_s")
        if self.url is not None:
            feed_url(self.url, self.access)  # raises ValueError naming the problem
            parts = urlsplit(self.url)
            query_keys = {key.lower() for key, _ in parse_qsl(parts.query)}
            if parts.username or parts.password or query_keys & {"token", "access_token"}:
                raise ValueError(
                    f"url {public_url(self.url)!r} carries a credential; the token never goes into config: set "
                    "token_env or token_file (and token_in: query to send it as a query parameter)"
                )
            refuse_clear_text(self.url, "url", "the token")
        return self

    def base(self) -> str:
        return HOSTS[self.preset] if self.preset is not None else str(self.url)

    def token_source(self) -> str:
        return f"env:{self.token_env}" if self.token_env is not None else f"file:{self.token_file}"
