"""Where an adapter may talk in clear text: only to this machine (a local sandbox). Every other
host gets TLS (000 and 002 require TLS 1.2+), so a credential never crosses a network unencrypted."""

from __future__ import annotations

from urllib.parse import urlsplit

from engine.venue.credentials import is_loopback

__all__ = ["ClearTextRefused", "is_loopback", "refuse_clear_text"]

#: the clear-text scheme of each secure one
_CLEAR = {"http": "https", "ws": "wss"}


class ClearTextRefused(ValueError):
    """A clear-text URL to another machine: a credential would cross the network unencrypted."""


def refuse_clear_text(url: str, option: str, what: str) -> None:
    """Raise :class:`ClearTextRefused` when ``url`` is ``http://`` or ``ws://`` to a host that is
    not this machine. ``option`` names the option, ``what`` the credential at stake, so the message
    says what to change. The URL is quoted without any user or password part."""
    parts = urlsplit(url)
    secure = _CLEAR.get(parts.scheme)
    if secure is None or is_loopback(parts.hostname or ""):
        return
    shown = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
    raise ClearTextRefused(
        f"{option} {shown!r}: plain {parts.scheme}:// would send {what} unencrypted; use {secure}:// "
        f"({parts.scheme}:// is allowed only to this machine, e.g. a local sandbox)"
    )
