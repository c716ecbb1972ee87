"""Options of the pulse adapter (``venues.<name>.options``): what config may say, checked at load."""


from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.kit.urls import refuse_clear_text
from engine.venue import AdapterOptions


class PulseMmp(BaseModel):
    """Venue MMP limits for one index (``private/set_mmp_config``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval: Decimal = Field(gt=0, description="Trailing window in seconds.")
    frozen_time: Decimal = Field(ge=0, description="Freeze in seconds after a trigger; 0 = until reset.")
    quantity_limit: Decimal = Field(gt=0, description="Filled amount of mmp orders within the window that triggers.")


class PulseOptions(AdapterOptions):
    """Options of the Pulse adapter (``venues.<name>.options``). Secrets are never written here:
    name the environment variable or the file that holds them."""

    url: str = Field(
        "ws://127.0.0.1:8765/ws/api/v2",
        description="WebSocket URL, e.g. wss://dev.pulsegateway.devucc.name/ws/api/v2 or the local sandbox.",
    )
    client_id: str | None = Field(None, min_length=1, description="The API client_id (not a secret).")
    client_id_env: str | None = Field(None, min_length=1, description="Or: environment variable holding client_id.")
    client_secret_env: str | None = Field(
        "PULSE_CLIENT_SECRET", min_length=1, description="Environment variable holding the client_secret."
    )
    client_secret_file: Path | None = Field(
        None, description="Or: a file holding the client_secret (first line); takes precedence over the variable."
    )
    auth: Literal["client_signature", "client_credentials"] = Field(
        "client_signature",
        description="public/auth grant: client_signature (HMAC-SHA256; the secret never travels) or "
        "client_credentials (the secret is sent). Tokens are refreshed with grant refresh_token.",
    )
    heartbeat_s: int = Field(
        10, ge=1, description="public/set_heartbeat interval in whole seconds (004: \"interval integer\"; a "
        "fraction is refused here, not by the venue at login).",
    )
    liveness_probe_s: Decimal | None = Field(
        None, gt=0, description="After this long without any frame the adapter probes the venue with a documented "
        "request; no frame for another period is a disconnect. Default: heartbeat_s.",
    )
    deribit_heartbeats: bool = Field(
        False, description="Answer the venue's heartbeat test_request with public/test, as Deribit expects. 004 "
        "documents neither the message nor public/test, so by default a test_request (from a venue that sends one "
        "anyway) is answered with a documented request, which Deribit's rule (any request) accepts too.",
    )
    ping_interval_s: Decimal = Field(
        Decimal(10), gt=0, description="WebSocket ping interval: liveness of the connection (never market silence)."
    )
    ping_timeout_s: Decimal = Field(Decimal(10), gt=0, description="Drop the socket when a ping is unanswered.")
    request_timeout_s: Decimal = Field(Decimal(5), gt=0, description="Answer deadline of one JSON-RPC request.")
    book_resync_s: Decimal = Field(
        Decimal(5), gt=0,
        description="A book whose snapshot has not come this long after a subscribe or a gap is fetched with "
        "private/get_order_book (and again every period while it stays unsynced): a venue that sends no "
        "snapshot cannot freeze a book.",
    )
    connect_timeout_s: Decimal = Field(Decimal(10), gt=0, description="WebSocket opening handshake deadline.")
    max_message_bytes: int = Field(
        8 << 20, ge=1 << 16, description="Largest frame read (default 8 MiB). The largest legitimate one is an answer "
        "listing orders or trades (about 600 bytes each: 8 MiB holds ~13,000) or a full book snapshot; a bigger "
        "frame is not read: the socket closes with 1009, it is counted too_large and the adapter reconnects.",
    )
    refresh_fraction: Decimal = Field(
        Decimal("0.8"), gt=0, lt=1, description="Refresh the access token at this fraction of its lifetime."
    )
    cancel_on_disconnect: bool = Field(
        True,
        description="Ask the venue to cancel this session's orders if the connection drops "
        "(private/enable_cancel_on_disconnect at login); only when venues.<name>.cancel_on_disconnect is on too.",
    )
    index_names: dict[str, str] = Field(
        default_factory=dict,
        description="Instrument -> MMP index name; default from the name (BTC_USD-PERPETUAL -> btc_usd).",
    )
    currencies: dict[str, str] = Field(
        default_factory=dict, description="Instrument -> currency for get_order_state_by_label; default BTC, ETH, ..."
    )
    mmp: dict[str, PulseMmp] = Field(
        default_factory=dict,
        description="Venue MMP per index name. Empty: the mmp: blocks of the strategies on this venue, which the "
        "engine hands over with configure_mmp before connecting.",
    )
    post_only: Literal["reject", "reprice"] = Field(
        "reject",
        description="reject: a post-only order that would cross the last known quote is refused locally (7006); "
        "reprice: sent as is, and Pulse moves its price just inside the spread.",
    )
    public_trades: bool = Field(
        True,
        description="Public trades for strategies: subscribe to trades.{instrument}.raw (a sandbox extension, PUL-7); "
        "when the venue refuses it, poll public/last_trades_by_instrument every public_trades_poll_s instead.",
    )
    public_trades_poll_s: Decimal = Field(
        Decimal(1), gt=0, description="Poll interval of public/last_trades_by_instrument when trades.*.raw is refused."
    )
    reconnect_min_s: Decimal = Field(Decimal("0.5"), gt=0, description="First reconnect delay; doubles per failure.")
    reconnect_max_s: Decimal = Field(Decimal(10), gt=0, description="Longest reconnect delay.")
    compression: bool = Field(False, description="permessage-deflate on the WebSocket.")

    @model_validator(mode="after")
    def _credentials_named(self) -> PulseOptions:
        if (self.client_id is None) == (self.client_id_env is None):
            raise ValueError("give exactly one of client_id or client_id_env")
        if self.client_secret_env is None and self.client_secret_file is None:
            raise ValueError("give client_secret_env or client_secret_file (never the secret itself)")
        if not self.url.startswith(("ws://", "wss://")):
            raise ValueError(f"url must be ws:// or wss://, got {self.url!r}")
        refuse_clear_text(self.url, "url", "the client credentials and tokens")
        return self
