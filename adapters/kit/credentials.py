"""Credential reading for every adapter and sandbox, written once.

- An adapter reads a credential with :func:`read_secret` (in the port, :mod:`engine.venue.credentials`,
  so the engine's own NATS clients read theirs the same way): from a file or an environment variable,
  read at each login so a rotated file is picked up, and an error (:class:`MissingSecret`) that
  names where it looked, never a value.
- A sandbox provides the other end with :func:`sandbox_secret`: the same sources, but a missing
  credential is made up (a throwaway value for a local venue) and, when a file is named, written
  there owner-only, so the engine can be pointed at it.
- :class:`Secret` holds a value that never prints (repr, str, a log line's ``%s``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from engine.venue.credentials import MissingSecret, read_secret

__all__ = ["MissingSecret", "Secret", "read_secret", "sandbox_secret", "write_secret_file"]


class Secret:
    """A credential and where it came from (``source``: ``env``, ``file``, ``written`` = generated
    into a new file, ``generated``, or empty when not told); its value never prints."""

    __slots__ = ("env", "file", "source", "value")

    def __init__(self, value: str, source: str = "", env: str | None = None, file: Path | None = None) -> None:
        self.value = value
        self.source = source
        self.env = env
        self.file = file

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


def sandbox_secret(env: str | None, file: Path | None, what: str, generate: Callable[[], str]) -> Secret:
    """What a sandbox accepts: with ``file``, its non-empty lines (joined by newlines: a feed may
    accept several tokens), or, when the file does not exist, ``generate()`` written to it
    owner-only; without, the environment variable ``env``, else ``generate()``. Raises
    :class:`MissingSecret` for a file that cannot be read or written, or is empty."""
    if file is not None:
        if file.exists():
            try:
                lines = [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
            except OSError as exc:
                raise MissingSecret(f"cannot read the {what} file {file}: {exc.strerror or exc}") from None
            if not lines:
                raise MissingSecret(f"the {what} file {file} is empty")
            return Secret("\n".join(lines), "file", env, file)
        value = generate()
        try:
            write_secret_file(file, value)
        except OSError as exc:
            raise MissingSecret(f"cannot write the {what} file {file}: {exc.strerror or exc}") from None
        return Secret(value, "written", env, file)
    value = os.environ.get(env or "", "").strip()
    if value:
        return Secret(value, "env", env)
    return Secret(generate(), "generated", env)


def write_secret_file(path: Path, text: str) -> None:
    """Write a secret file readable by its owner only (created that way, never world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    path.chmod(0o600)
