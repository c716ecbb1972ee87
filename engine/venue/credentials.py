"""Reading a credential from an environment variable or a file, in the port so the engine's own
NATS clients (``engine feed``, ``engine halt``) read theirs exactly as every adapter does
(``adapters.kit.credentials`` re-exports both names): secrets never come from a config value.
:func:`is_loopback` says where a credential may still travel in clear text (``adapters.kit.urls``
and the bus's URL check share it)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

__all__ = ["MissingSecret", "is_loopback", "read_secret"]


class MissingSecret(ValueError):
    """A credential an adapter's options name is not there; the message names the variable or
    file, never a value."""


def read_secret(env: str | None, file: Path | None, what: str) -> str:
    """A credential, read now (a rotated file is picked up at the next login): the first line of
    ``file`` when one is named, else the environment variable ``env``."""
    if file is not None:
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise MissingSecret(f"{what}: cannot read {file}: {exc.strerror or exc}") from None
        value = lines[0].strip() if lines else ""
        if not value:
            raise MissingSecret(f"{what}: file {file} is empty")
        return value
    value = os.environ.get(env or "", "").strip()
    if not value:
        raise MissingSecret(f"{what}: environment variable {env} is not set")
    return value


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
