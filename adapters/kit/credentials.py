"""Credential reading for every adapter: from a file or an environment variable, read at each login
so a rotated file is picked up, and an error that names where it looked, never a value."""

from __future__ import annotations

import os
from pathlib import Path


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
