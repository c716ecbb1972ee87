"""Report values as page text: HTML escaping, the report's exact decimals with thousands separators,
timestamps and the time zone. Tables show the report's own decimal strings; a float is never
used for a number a person reads as exact."""

from __future__ import annotations

import datetime as dt
import html
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo


def esc(value: object) -> str:
    """Every string from the report goes through here before it reaches the page."""
    return html.escape(str(value), quote=True)


def decimal_of(value: object) -> Decimal | None:
    """A report value as an exact finite Decimal, or None when it is not a number."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def fmt_num(value: object) -> str:
    """The report's own digits with thousands separators: ``"4476697.00"`` -> ``4,476,697.00``."""
    number = decimal_of(value)
    if number is None:
        return esc("" if value is None else value)
    return esc(format(number, ",f"))


def fmt_money(value: object) -> str:
    """:func:`fmt_num`, coloured by sign."""
    number = decimal_of(value)
    text = fmt_num(value)
    if number is None or number == 0:
        return text
    return f'<span class="{"pos" if number > 0 else "neg"}">{text}</span>'


def parse_ts(text: object) -> dt.datetime | None:
    """An ISO 8601 time with its offset, or None (a time without a zone is not trusted)."""
    try:
        moment = dt.datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def time_zone_of(timeline: dict[str, Any] | None) -> dt.tzinfo:
    """The timeline's time zone, Asia/Karachi when it names none or one not known here."""
    name = (timeline or {}).get("timezone") or "Asia/Karachi"
    try:
        return ZoneInfo(str(name))
    except (KeyError, ValueError):
        return ZoneInfo("Asia/Karachi")


def count_or_zero(value: object) -> int:
    """A count from the report, 0 for anything that is not an int."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def int_or_zero(value: object) -> int:
    """A reject code as an int (the report's keys are strings), 0 when it is not one."""
    try:
        return int(str(value))
    except ValueError:
        return 0
