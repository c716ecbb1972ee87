"""Where an adapter may talk in clear text: only to this machine (a local sandbox). Every other
host gets TLS (000 and 002 require TLS 1.2+), so a credential never crosses a network unencrypted."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
