"""``engine sandbox VENUE [--run CONFIG]``: a venue's local sandbox, alone or with an engine in ONE
process on ONE clock.

Why one process: in the two-terminal mode the engine runs on the wall clock, so the sandbox must
too, and a PSX day takes a day. With ``--run`` the sandbox and the engine share the sandbox's
:class:`~engine.clock.ScaledClock`: ``--speed 60`` runs a whole PSX day, pre-open to post-close, in
about six and a half minutes, still through the real adapters over loopback. Session phases, token
lifetimes, rate buckets, settlement and the synthetic market all run on that clock, so they keep
their proportions.

This is the engine's half; the venue's half is its :class:`~engine.venue.SandboxCommand` (found in
the registry), which starts the sandbox and says, in a :class:`~engine.venue.SandboxLink`, where
it listens and with which credentials. What that does to the loaded config, in memory only (the
file is never written):

- the options of the adapters the sandbox serves point at it (it listens on any free ports, so a
  two-terminal sandbox may run beside it), and the secret-file options that would win over its
  credentials are dropped;
- the credentials are the sandbox's: put in this process's environment under the names the options
  now give, and every value is scrubbed from logs, the report and the page;
- the account starts fresh: the sandbox's account is new at every start, so the engine's journal
  of an earlier run is moved aside (nothing is deleted), as ``engine run --fresh-account``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from engine.clock import Clock
from engine.errors import ConfigError, StartupError, StrategyLoadError
from engine.venue import SandboxCommand, SandboxLink, SandboxStartError, sandbox_registry

__all__ = ["RUN_FLAGS", "add_run_arguments", "point_config_at", "sandbox_main"]

log = logging.getLogger("engine.sandbox")

#: the one-process flags every ``engine sandbox VENUE`` has, besides the sandbox's own
RUN_FLAGS = ("--run", "--report", "--html", "--journal")

SetupLogging = Callable[..., None]


def add_run_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    one = parser.add_argument_group(
        "one command: venue and engine in one process on one clock",
        textwrap.fill(
            "--run CONFIG runs the engine on CONFIG against this sandbox: one process, one clock, so --speed 60 "
            "runs a day 60 times faster through the real adapters over loopback. The sandbox takes instruments, "
            "sessions and account from CONFIG (unless --config says otherwise) and listens on any free ports; the "
            f"options of the config's {name} adapters are pointed at it and at its credentials in memory (the file "
            "is not changed). The account starts fresh: an earlier journal is moved aside, nothing deleted. Exit "
            "codes as engine run: 0 done, 1 the engine refused to start.", 100),
    )
    one.add_argument("--run", type=Path, metavar="CONFIG",
                     help="run the engine on this config in the same process (e.g. config.psx-sandbox.yaml)")
    one.add_argument("--report", type=Path, metavar="FILE", help="with --run: write the run's JSON report here")
    one.add_argument("--html", type=Path, metavar="FILE", help="with --run: write the page of the day here")
    one.add_argument("--journal", type=Path, metavar="FILE",
                     help="with --run: the engine's journal (default: the config's journal.path)")


def sandbox_main(name: str, argv: list[str], *, setup_logging: SetupLogging,
                 on_clock: Callable[[Clock], None]) -> int:
    """``engine sandbox NAME ARGS``: exit 1 when no sandbox has that name; else parse (exit 2 on
    bad arguments) and run the sandbox alone, or with an engine when ``--run`` is given."""
    commands = sandbox_registry()
    command = commands.get(name)
    if command is None:
        print(f"engine: no sandbox for {name!r}; sandboxes: {', '.join(sorted(commands))}", file=sys.stderr)
        return 1
    parser = command.build_parser()
    add_run_arguments(parser, name)
    args = parser.parse_args(argv)
    if args.run is None:
        for flag in ("report", "html", "journal"):
            if getattr(args, flag) is not None:
                parser.error(f"--{flag} needs --run CONFIG (it is about the engine's run)")
        return command.serve(args)
    return run_with_sandbox(command, args, setup_logging=setup_logging, on_clock=on_clock)


def point_config_at(loaded: Any, link: SandboxLink) -> tuple[Any, str | None]:
    """A copy of ``loaded`` (a ``LoadedConfig``) whose adapters use the sandbox of ``link``, and
    the venue whose orders go to it. Raises ``ConfigError`` when no venue, or more than one, uses
    its order adapter (the sandbox is one account), or when no venue uses any adapter it serves."""
    cfg = loaded.config.model_copy(deep=True)
    orders: list[str] = []
    served = 0
    for name, venue in cfg.venues.items():
        parts = [(venue.adapter, venue.options)]
        if venue.market_data is not None:
            parts.append((venue.market_data.adapter, venue.market_data.options))
        for adapter, options in parts:
            changes = link.adapter_options.get(adapter)
            if changes is None:
                continue
            served += 1
            if adapter == link.order_adapter and venue.adapter == adapter:
                orders.append(name)
            for key, value in changes.items():
                if value is None:
                    options.pop(key, None)
                else:
                    options[key] = value
    if link.order_adapter is not None and len(orders) != 1:
        found = ", ".join(orders) or "none"
        raise ConfigError(
            f"{loaded.display}: --run needs exactly one venue with adapter: {link.order_adapter} (the sandbox is "
            f"one account); found {found}"
        )
    if not served:
        raise ConfigError(f"{loaded.display}: --run needs a venue using one of this sandbox's adapters "
                          f"({', '.join(sorted(link.adapter_options))}); found none")
    secret_values = set(loaded.secret_values) | set(link.secret_values)
    pointed = dataclasses.replace(loaded, config=cfg, secret_values=frozenset(secret_values))
    return pointed, (orders[0] if orders else None)


async def _stop_after(engine: Any, seconds: float) -> None:
    await anyio.sleep(seconds)
    engine.request_stop("duration")


async def _run(command: SandboxCommand, args: argparse.Namespace, loaded: Any, setup_logging: SetupLogging,
               on_clock: Callable[[Clock], None]) -> Any:
    from engine.app import Engine
    from engine.secrets import Redactor

    async with command.start(args, args.run) as link:
        on_clock(link.clock)  # log lines carry the sandbox's (scaled) time
        loaded, order_venue = point_config_at(loaded, link)
        cfg = loaded.config
        # again, now that the sandbox's credentials are known: every log line is scrubbed of them
        setup_logging(args.log_level or cfg.logging.level, cfg.logging.format, Redactor(loaded.secret_values))
        os.environ.update(link.environment)  # this process only
        engine = Engine(loaded, fresh_account=True, clock=link.clock, journal_path=args.journal)
        if link.attach is not None and order_venue is not None:
            link.attach(engine.adapters.get(order_venue))
        log.info("%s", link.description)
        async with anyio.create_task_group() as tg:
            if args.duration > 0:
                tg.start_soon(_stop_after, engine, args.duration)
            result = await engine.run()
            tg.cancel_scope.cancel()
    log.info("%s", link.stopped())
    return result, loaded


def run_with_sandbox(command: SandboxCommand, args: argparse.Namespace, *, setup_logging: SetupLogging,
                     on_clock: Callable[[Clock], None]) -> int:
    """Load ``args.run``, set up logging like ``engine run``, run sandbox and engine until the
    config's last day ends (or Ctrl-C / SIGTERM / ``--duration``). Exit codes as ``engine run``:
    0 done, 1 the engine refused to start (config, strategies, a venue it cannot log in to), a
    report that cannot be written; and 2 when the sandbox cannot start (a port, a secret file)."""
    from engine.app import publish_result
    from engine.config import load_config
    from engine.outfile import check_output_path
    from engine.secrets import Redactor

    try:
        loaded = load_config(args.run)
    except ConfigError as exc:
        print(f"engine: {exc}\nengine: refusing to start", file=sys.stderr)
        return 1
    cfg = loaded.config
    setup_logging(args.log_level or cfg.logging.level, cfg.logging.format, Redactor(loaded.secret_values))
    try:
        # refused now, not after the day: reports go only to a regular file or a new path
        check_output_path(args.report, "--report")
        check_output_path(args.html, "--html")
        result, loaded = anyio.run(_run, command, args, loaded, setup_logging, on_clock, backend="asyncio")
        publish_result(result, loaded, args.report)
        if args.html is not None:
            from engine.report.page import write_html

            write_html(result.report, args.html, Redactor(loaded.secret_values))
            log.info("html report written to %s", args.html)
    except (ConfigError, StrategyLoadError, StartupError) as exc:
        print(f"engine: {exc}\nengine: refusing to start", file=sys.stderr)
        return 1
    except SandboxStartError as exc:
        print(f"engine sandbox {command.name}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the report or page cannot be written
        print(f"engine sandbox {command.name}: {exc}", file=sys.stderr)
        return 1
    return int(result.exit_code)
