"""``engine sandbox psx --run CONFIG``: the PSX venue and an engine in ONE process, on ONE clock.

Why: in the two-terminal mode the engine runs on the wall clock, so the sandbox must too, and a
PSX day takes a day. Here the sandbox and the engine share one :class:`~engine.clock.ScaledClock`:
``--speed 60`` runs a whole PSX day, pre-open to post-close, in about six and a half minutes,
still through the real adapters over loopback (Optimus REST with signed webhooks for orders, the
Live Feed WebSocket for books). Session phases, token lifetimes, rate buckets, settlement and the
synthetic market all run on that clock, so they keep their proportions.

What this does to the loaded config, in memory only (the file is never written):

- the ``optimus`` venue's ``base_url`` and the ``psx_feed`` ``url`` point at this sandbox, which
  listens on any free ports (a two-terminal sandbox may run beside it); the webhook receiver listens
  on any free port and the sandbox asks the adapter for its address at each delivery;
- the credentials are the sandbox's (from the ``--*-env`` variables, files, or generated): they are
  put in this process's environment under the ``--*-env`` names and the adapters are pointed at
  those names, and every value is scrubbed from logs, the report and the page;
- the account starts fresh: the sandbox's broker account is new at every start, so the engine's
  journal of an earlier run is moved aside (nothing is deleted), as ``engine run --fresh-account``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from typing import Any

import anyio

from adapters.psx.sandbox import (
    ENV_NAMES,
    PsxSandbox,
    SandboxListenError,
    SandboxSetupError,
    setup_from_args,
    stopped_line,
)

__all__ = ["point_config_at", "run_with_engine"]

log = logging.getLogger("engine.psx_sandbox")


def point_config_at(loaded: Any, psx: PsxSandbox, names: dict[str, str]) -> tuple[Any, str]:
    """A copy of ``loaded`` (an engine ``LoadedConfig``) whose Optimus and Live Feed adapters use
    ``psx`` and its credentials (read from the variables ``names``), and the name of the venue
    whose orders go through Optimus. Raises ``ConfigError`` when no venue, or more than one, uses
    the ``optimus`` adapter: the sandbox has one broker account."""
    from engine.errors import ConfigError

    cfg = loaded.config.model_copy(deep=True)
    brokers: list[str] = []
    for name, venue in cfg.venues.items():
        parts = [(venue.adapter, venue.options)]
        if venue.market_data is not None:
            parts.append((venue.market_data.adapter, venue.market_data.options))
        for adapter, options in parts:
            if adapter == "optimus":
                brokers.append(name)
                for key in ("username_file", "password_file", "webhook_secret_file"):
                    options.pop(key, None)
                options.update(
                    base_url=psx.broker_url, webhook_listen=f"{psx.host}:0", username_env=names["username"],
                    password_env=names["password"], webhook_secret_env=names["webhook_secret"],
                )
            elif adapter == "psx_feed":
                options.pop("token_file", None)
                options.update(url=psx.feed_url, token_env=names["feed_token"])
    if len(brokers) != 1:
        found = ", ".join(brokers) or "none"
        raise ConfigError(
            f"{loaded.display}: --run needs exactly one venue with adapter: optimus (the sandbox is one broker "
            f"account); found {found}"
        )
    creds = psx.credentials
    secret_values = set(loaded.secret_values) | {*creds.feed_tokens, creds.password, creds.webhook_secret.decode()}
    return dataclasses.replace(loaded, config=cfg, secret_values=frozenset(secret_values)), brokers[0]


async def _stop_after(engine: Any, seconds: float) -> None:
    await anyio.sleep(seconds)
    engine.request_stop("duration")


async def _run(args: argparse.Namespace, loaded: Any) -> int:
    from engine.app import Engine, publish_result
    from engine.cli import TIME_FILTER, setup_logging
    from engine.secrets import Redactor

    args.webhook_url = None  # until the engine's receiver listens (deliver_webhooks_to, below)
    setup = setup_from_args(args)
    psx = setup.psx
    TIME_FILTER.clock = psx.clock  # log lines carry the sandbox's (scaled) time
    names = {key: getattr(args, f"{key}_env") for key in ENV_NAMES}
    async with psx:
        loaded, broker_venue = point_config_at(loaded, psx, names)
        cfg = loaded.config
        # again, now that the sandbox's generated secrets are known: every log line is scrubbed of them
        setup_logging(args.log_level or cfg.logging.level, cfg.logging.format, Redactor(loaded.secret_values))
        for secret in setup.secrets_used.values():
            os.environ[secret.env] = secret.value.splitlines()[0]  # this process only
        engine = Engine(loaded, fresh_account=True, clock=psx.clock, journal_path=args.journal)
        broker = engine.adapters.get(broker_venue)
        if broker is not None:
            psx.deliver_webhooks_to(lambda: broker.webhook_url)  # type: ignore[attr-defined]
        log.info("psx sandbox: live feed %s, optimus broker %s, clock %s", psx.feed_url, psx.broker_url,
                 setup.clock_text)
        async with anyio.create_task_group() as tg:
            if args.duration > 0:
                tg.start_soon(_stop_after, engine, args.duration)
            result = await engine.run()
            tg.cancel_scope.cancel()
    log.info("%s", stopped_line(psx))
    publish_result(result, loaded, args.report)
    if args.html is not None:
        from engine.htmlreport import write_html

        write_html(result.report, args.html, Redactor(loaded.secret_values))
        log.info("html report written to %s", args.html)
    return result.exit_code


def run_with_engine(args: argparse.Namespace) -> int:
    """Load ``args.run``, set up logging like ``engine run``, run venue and engine until the
    config's last day ends (or Ctrl-C / SIGTERM / ``--duration``). Exit codes as ``engine run``:
    0 done, 1 the engine refused to start (config, strategies, a venue it cannot log in to); and
    2 when the sandbox cannot start (a port, a secret file)."""
    from engine.cli import setup_logging
    from engine.config import load_config
    from engine.errors import ConfigError, StartupError, StrategyLoadError
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
        return anyio.run(_run, args, loaded, backend="asyncio")
    except (ConfigError, StrategyLoadError, StartupError) as exc:
        print(f"engine: {exc}\nengine: refusing to start", file=sys.stderr)
        return 1
    except (SandboxListenError, SandboxSetupError) as exc:
        print(f"engine sandbox psx: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the report or page cannot be written
        print(f"engine sandbox psx: {exc}", file=sys.stderr)
        return 1
