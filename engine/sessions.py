"""PSX trading calendar and session phases. (Stub: being filled in; the config model below is the
agreed interface.)"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class HolidaysConfig(BaseModel):
    """Trading days = weekdays minus the maintained holiday source, plus/minus overrides."""

    model_config = ConfigDict(extra="forbid")
    provider: str = "XKAR"  # holidays.financial_holidays("XKAR")
    add: list[dt.date] = Field(default_factory=list)  # extra closures (PSX notices)
    remove: list[dt.date] = Field(default_factory=list)  # days the provider lists that PSX opens


class SessionsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    profile: str = "broker-doc"
    timezone: str = "Asia/Karachi"
    holidays: HolidaysConfig = Field(default_factory=HolidaysConfig)
