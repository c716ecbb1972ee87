"""Options of the optimus adapter (``venues.<name>.options``): what config may say, checked at load."""


from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from adapters.kit.urls import refuse_clear_text
from adapters.optimus import codec
from adapters.optimus.webhooks import parse_listen
from engine.venue import AdapterOptions


class OptimusOptions(AdapterOptions):
    """Options of the Optimus adapter (``venues.<name>.options``). Secrets are named, never given."""

    base_url: str = Field(
        "https://api.optimuscapital.com/v1",
        description="REST base URL including /v1 (document section 2); the sandbox prints its own.",
    )
    username_env: str = Field("OPTIMUS_USERNAME", min_length=1, description="Environment variable holding the login.")
    password_env: str | None = Field(
        "OPTIMUS_PASSWORD", description="Environment variable holding the password (ignored when password_file is set)."
    )
    password_file: Path | None = Field(
        None, description="File holding the password (first line), e.g. a mounted secret."
    )
    connect_timeout_s: Decimal = Field(Decimal(2), gt=0, description="TCP/TLS connect timeout per request.")
    request_timeout_s: Decimal = Field(
        Decimal(5), gt=0,
        description="Read/write timeout per request; an order whose answer takes longer is 'unknown' until queried.",
    )
    max_connections: int = Field(8, ge=1, le=100, description="Kept-alive connections to the broker.")
    refresh_margin_s: Decimal = Field(
        Decimal(300), ge=0, description="Renew the access token this long before it expires (at most half its life)."
    )
    webhook_listen: str = Field(
        "127.0.0.1:8088", description="host:port the webhook receiver listens on (port 0: any free port)."
    )
    webhook_path: str = Field(codec.Paths.WEBHOOK, description="Path the broker POSTs webhooks to.")
    webhook_secret_env: str | None = Field(
        "OPTIMUS_WEBHOOK_SECRET", description="Environment variable holding the webhook HMAC secret."
    )
    webhook_secret_file: Path | None = Field(None, description="File holding the webhook HMAC secret (first line).")
    webhook_tolerance_s: int = Field(300, ge=1, description="Refuse webhooks signed further than this from our clock.")
    webhook_max_body: int = Field(1 << 20, ge=1024, description="Largest webhook body accepted (bytes; more: 413).")
    webhook_read_timeout_s: Decimal = Field(
        Decimal(10), gt=0, description="A webhook request must arrive whole within this (else 408 and closed).",
    )
    webhook_max_connections: int = Field(64, ge=1, description="Webhook connections open at once; more are closed.")
    poll_interval_s: Decimal = Field(
        Decimal(1), gt=0, description="Poll the open orders this often: the backup for lost webhooks."
    )
    unknown_grace_s: Decimal = Field(
        Decimal(10), ge=0,
        description="An order whose answer was lost is believed never received only when the broker still says "
        "'not found' this long after it was sent.",
    )
    disconnect_after_failures: int = Field(3, ge=1, description="Failed requests in a row that mean 'disconnected'.")
    connect_retries: int = Field(2, ge=0, description="Resends of a request that could not even connect (never sent).")
    retry_backoff_s: Decimal = Field(Decimal("0.2"), ge=0, description="Wait between such resends.")

    @field_validator("webhook_listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        refuse_clear_text(value, "base_url", "the login and the bearer token")  # 000: TLS 1.2+ required
        return value.rstrip("/")

    @model_validator(mode="after")
    def _secret_sources(self) -> OptimusOptions:
        if self.password_env is None and self.password_file is None:
            raise ValueError("give password_env or password_file (the password itself never goes in config)")
        if self.webhook_secret_env is None and self.webhook_secret_file is None:
            raise ValueError("give webhook_secret_env or webhook_secret_file (webhooks must be signed)")
        return self
