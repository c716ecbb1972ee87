"""Options of the MidChains FIX order-entry adapter (``venues.<name>.options``), checked at load.

No secret is written here: the document's Logon has no password (identity is the CompIDs plus TLS
or a whitelisted IP, VENUES.md 2.5), and a gateway that wants one anyway (FIX Password, 554) gets
it from ``password_env`` or ``password_file``, read at each logon and never logged."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from adapters.kit.urls import is_loopback
from engine.venue import AdapterOptions


class MidChainsFixOptions(AdapterOptions):
    """``midchains_fix``: order entry over FIX 4.2 (001 "FIX API"; VENUES.md 2.5, 2.6)."""

    host: str = Field("127.0.0.1", description="Gateway host: fix-sandbox.midchains.com (sandbox), the address "
                      "MidChains trade operations assign (production), or 127.0.0.1 (local sandbox or stunnel).")
    port: int = Field(44323, ge=1, le=65535, description="Order-entry port (sandbox 44323).")
    tls: bool = Field(True, description="TLS to the gateway. Clear TCP only to this machine (a local sandbox, or a "
                      "local stunnel as 001 suggests).")
    ca_bundle: Path | None = Field(None, description="PEM CA bundle replacing the system's CAs (MID-12: MidChains' "
                                   "certificates may be private).")
    sender_comp_id: str = Field(min_length=1, description="SenderCompID (49), provided by MidChains.")
    target_comp_id: str = Field("MIDCDEV1", min_length=1, description="TargetCompID (56), provided by MidChains "
                                "(MIDCDEV1 in 001's examples).")
    account: str | None = Field(None, min_length=1, description="Account (1) on every order, echoed in reports; "
                                "omitted when not set (001: optional).")
    handl_inst: Literal["1", "2", "3"] = Field("2", description="HandlInst (21): 1 automated private, 2 automated "
                                               "public (001's D example), 3 manual.")
    heartbeat_s: int = Field(60, ge=1, description="HeartBtInt (108) in the Logon (001's examples: 60).")
    password_env: str | None = Field(None, min_length=1, description="Environment variable holding a FIX Password "
                                     "(554) for a gateway that wants one. 001's does not: leave unset.")
    password_file: Path | None = Field(None, description="Or: a file holding it (first line); read at each logon.")
    state_file: Path | None = Field(None, description="SQLite file for sequence numbers, orders and executions. "
                                    "Default: the engine's venue state path beside the journal; without either, "
                                    "memory only (a restart then logs on at 34=1, which the gateway refuses within "
                                    "the trading day).")
    day_tif: Literal["gtd", "gtc", "refuse"] = Field(
        "gtd", description="What a DAY order is sent as. gtd: TimeInForce 6 with ExpireTime (126) at the next "
        "trading-day boundary, 01:00 UTC (MID-13, MID-6); gtc: TimeInForce 1; refuse: rejected 2007 locally.")
    fraction_bases: dict[str, int] = Field(
        default_factory=dict, description="Symbol -> FractionBase (43229) to send; default: the symbol's "
        "fractionbase from 001's getsymbols (LTCUSD 10000, BTCUSD/ETHUSD/BCHUSD 100000), else 10^(decimal "
        "places of the instrument's lot size); raised by powers of 10 when an order's quantity needs it (MID-3).")
    connect_timeout_s: float = Field(10.0, gt=0, description="Connect (TCP + TLS) and first logon deadline.")
    reconnect_min_s: float = Field(0.5, gt=0, description="First reconnect delay; doubles per failure.")
    reconnect_max_s: float = Field(10.0, gt=0, description="Longest reconnect delay.")

    @model_validator(mode="after")
    def _checked(self) -> MidChainsFixOptions:
        if not self.tls and not is_loopback(self.host):
            raise ValueError(f"tls: false is allowed only to this machine (a local sandbox or stunnel), not "
                             f"{self.host!r}")
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("give password_env or password_file, not both")
        for symbol, base in self.fraction_bases.items():
            if base < 1 or str(base).rstrip("0") != "1":
                raise ValueError(f"fraction_bases[{symbol!r}] must be a power of 10, got {base}")
        return self
