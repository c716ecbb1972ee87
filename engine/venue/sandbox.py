"""The sandbox side of the port: what ``engine sandbox VENUE`` asks of a venue's local sandbox.

Why a contract: ``engine sandbox VENUE --run CONFIG`` runs a sandbox and an engine in one process
on one clock. The engine half (load the config, point it at the sandbox, run, report) is the
engine's (:mod:`engine.sandboxrun`); the venue half (serve the protocol, say where and with which
credentials) is the adapter package's. They meet here, so neither imports the other: a sandbox is
registered through the ``engine.adapters`` entry points like an adapter, as a
:class:`SandboxCommand`, and a started one describes itself with a :class:`SandboxLink`.

A sandbox also reads an engine config (``--config``, or the ``--run`` one) for its instruments,
sessions and account: :func:`venue_from_config` is that reading, on the engine's side of the port,
so a sandbox gets a :class:`SandboxConfig` and never the engine's config models.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from engine.clock import Clock
from engine.model import Instrument

if TYPE_CHECKING:
    from engine.sessions import SessionSchedule

__all__ = ["SandboxCommand", "SandboxConfig", "SandboxLink", "SandboxStartError", "venue_from_config"]


class SandboxStartError(Exception):
    """The sandbox cannot start (a port that cannot be listened on, a secret file that cannot be
    read): ``engine sandbox`` exits 2 with this message, which names the port or the file."""


@dataclass(frozen=True)
class SandboxLink:
    """What a sandbox started for an engine in this process tells that engine.

    ``adapter_options`` maps an adapter name (``optimus``, ``psx_feed``, ``pulse``) to the option
    values that point it at this sandbox; a value of ``None`` removes the option (a secret file
    that would win over the variable the sandbox fills). ``environment`` holds the credentials,
    by the variable names those options give: set in this process only. Each of ``secret_values``
    is scrubbed from logs, the report and the page (a login name need not be: logs keep it). ``order_adapter`` is the
    adapter orders reach this sandbox through: the sandbox is one account, so exactly one venue of
    the config may use it (``None``: a market-data sandbox). ``attach`` is called with that
    venue's adapter once the engine has built it (a webhook receiver whose address is known only
    then). ``stopped`` is the sandbox's last line, read after it stopped."""

    clock: Clock
    adapter_options: Mapping[str, Mapping[str, Any]]
    description: str
    stopped: Callable[[], str]
    environment: Mapping[str, str] = field(default_factory=dict)
    secret_values: frozenset[str] = frozenset()
    order_adapter: str | None = None
    attach: Callable[[Any], None] | None = None

    def __repr__(self) -> str:  # the environment holds secrets
        return f"SandboxLink(adapters={sorted(self.adapter_options)}, order_adapter={self.order_adapter!r})"


@runtime_checkable
class SandboxCommand(Protocol):
    """A venue's local sandbox as ``engine sandbox NAME`` runs it.

    ``build_parser()`` returns the parser of its flags: the common ones every sandbox has
    (``--host``, its ports, ``--seed``, ``--no-market``, ``--always-open``, ``--speed``,
    ``--start``, ``--duration``, ``--fault``, ``--log-level``, ``--config``) and its protocol's own;
    the engine adds ``--run``/``--report``/``--html``/``--journal``. Every flag is checked by its
    parser, so a parsed namespace is valid. ``serve(args)`` runs the sandbox alone until Ctrl-C,
    SIGTERM or ``--duration`` and returns the exit code; ``start(args, config)`` is the sandbox
    for an engine running ``config`` in this process: entered, it listens (on any free ports
    unless told otherwise), takes instruments, sessions and account from ``config`` (unless
    ``--config`` names another) and yields its :class:`SandboxLink`; it raises
    :class:`SandboxStartError` when it cannot start."""

    name: str

    def build_parser(self) -> argparse.ArgumentParser: ...

    def serve(self, args: argparse.Namespace) -> int: ...

    def start(self, args: argparse.Namespace, config: Path) -> AbstractAsyncContextManager[SandboxLink]: ...


@dataclass(frozen=True)
class SandboxConfig:
    """What a sandbox takes from an engine config: its instruments, session schedule, the account
    of the venue it serves (cash, holdings) and the config's raw venues (to warn where they point
    elsewhere)."""

    instruments: list[Instrument]
    schedule: SessionSchedule
    account: dict[str, Any]
    venues: dict[str, Any]


def venue_from_config(path: Path, adapter: str) -> SandboxConfig:
    """Read ``path``; the account is the one of the venue using ``adapter`` (else the first
    venue's). Raises :class:`SandboxStartError` naming the file when it does not load.

    The engine's config and sessions are imported here, not at the top: ``import engine.venue``
    stays light for a live adapter, and :mod:`engine.config` imports the port."""
    from engine.config import load_config
    from engine.errors import ConfigError
    from engine.sessions import SessionSchedule

    try:
        loaded = load_config(path)
    except ConfigError as exc:
        raise SandboxStartError(f"--config {path}: {exc}") from None
    except OSError as exc:
        raise SandboxStartError(f"--config {path}: {exc.strerror or exc}") from None
    cfg = loaded.config
    seen: dict[str, Instrument] = {}
    for entry in cfg.instruments:
        seen.setdefault(entry.symbol, entry.to_instrument())
    if not seen:
        raise SandboxStartError(f"--config {path}: no instruments")
    account: dict[str, Any] = {}
    chosen = next((name for name, v in cfg.venues.items() if v.adapter == adapter), next(iter(cfg.venues), None))
    if chosen is not None:
        acct = cfg.venues[chosen].account
        if acct.kind == "derivatives":  # a venue funded with the account's equity, holding its positions
            account = {"kind": "derivatives", "equity": acct.equity, "positions": dict(acct.positions),
                       "currency": cfg.account_currency(chosen)}
        else:
            account = {"cash": acct.cash, "holdings": dict(acct.holdings)}
    return SandboxConfig(list(seen.values()), SessionSchedule(cfg.sessions), account,
                         loaded.data.get("venues") or {})
