"""The one command shape of every venue sandbox: ``engine sandbox VENUE`` with the same flags.

Why one module: four sandboxes had four parsers, and the same flag meant different things (or
was missing) from one venue to the next. Here the flags every sandbox has are written once
(:data:`COMMON_FLAGS`), with one meaning and one check each, and so are the things behind them
(the clock from ``--speed``/``--start``, stopping on Ctrl-C, SIGTERM or ``--duration``; the
instruments and account of ``--config`` are read on the engine's side of the port, by
:func:`engine.venue.venue_from_config`). A venue's module adds only its protocol's own flags
(credential variables and files, webhook URL, token lifetimes, ...) and says how it serves
(:class:`VenueSandboxCommand`). The one-process mode's flags (``--run``, ``--report``,
``--html``, ``--journal``) are the engine's: ``engine sandbox`` adds them (engine/sandboxrun.py).

``--fault SPEC`` is read by the one fault vocabulary (adapters/sim/faults.py) through one hook
per venue (``VenueSandboxCommand.parse_fault``), which refuses by name the kinds the venue does
not play.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from adapters.sim.sessions import parse_start, sandbox_start_ns
from engine.venue import SandboxLink, SandboxStartError
from engine.venue.clock import Clock, ScaledClock, WallClock

__all__ = [
    "COMMON_FLAGS",
    "Port",
    "VenueSandboxCommand",
    "at_least",
    "free_ports",
    "sandbox_clock",
    "until_stopped",
]

#: the flags every ``engine sandbox VENUE`` has (a venue's ports replace ``--port`` where it serves
#: more than one server, e.g. psx's ``--feed-port``/``--broker-port``)
COMMON_FLAGS = ("--host", "--port", "--seed", "--no-market", "--always-open", "--speed", "--start", "--duration",
                "--fault", "--log-level", "--config")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class Port:
    """One server's listen port flag: ``--{flag}``, its default alone (with ``--run``: any free
    port, so a two-terminal sandbox may run beside it)."""

    flag: str
    default: int
    what: str

    @property
    def dest(self) -> str:
        return self.flag.replace("-", "_")


# ---- flag readers: a parsed namespace is a valid one ---------------------------------------


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535, got {port}")
    return port


def _speed(text: str) -> float:
    try:
        speed = float(Decimal(text))
    except ArithmeticError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < speed < float("inf"):
        raise argparse.ArgumentTypeError("must be positive")
    return speed


def _seconds(text: str) -> float:
    try:
        seconds = float(Decimal(text))
    except ArithmeticError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError("must be 0 or more seconds")
    return seconds


def _start(text: str) -> str:
    try:
        parse_start(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected YYYY-MM-DDTHH:MM") from None
    return text


def _level(text: str) -> str:
    level = text.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r}: one of {', '.join(LOG_LEVELS)}")
    return level


def at_least(minimum: int) -> Callable[[str], int]:
    """A reader of whole numbers of at least ``minimum`` (a venue's own counts and limits)."""

    def read(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return read


def _fault_reader(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def read(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    read.__name__ = "fault"  # argparse names the reader in its messages
    return read


# ---- what the flags stand for --------------------------------------------------------------


def sandbox_clock(args: argparse.Namespace, schedule: Any = None) -> tuple[Clock, str]:
    """The sandbox's clock from ``--speed``/``--start`` (wall at speed 1 without a start; else
    scaled, by default five minutes before ``schedule``'s next session) and how to say it."""
    if args.speed == 1 and not args.start:
        return WallClock(), "wall (real time)"
    if schedule is None and not args.start and not args.always_open and args.speed > 1:
        from engine.venue.sessions import SessionSchedule

        schedule = SessionSchedule()
    clock = ScaledClock(sandbox_start_ns(args.start, args.speed, args.always_open, schedule), args.speed)
    return clock, f"scaled x{args.speed:g} from {clock.now():%Y-%m-%d %H:%M:%S} Asia/Karachi"


async def until_stopped(duration_s: float) -> None:
    """Wait for Ctrl-C or SIGTERM, or ``duration_s`` real seconds when above 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        if duration_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration_s)
        else:
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


# ---- the command -----------------------------------------------------------------------------


@dataclass(frozen=True)
class VenueSandboxCommand:
    """One venue's ``engine sandbox NAME`` (an :class:`engine.venue.SandboxCommand`).

    ``add_arguments`` adds the protocol's own flags; ``parse_fault`` reads one ``--fault SPEC``
    (ValueError when it is not one this venue plays) and ``fault_help`` lists the kinds;
    ``serve_async(args)`` runs the sandbox alone until :func:`until_stopped` returns;
    ``start(args, config)`` is the sandbox for an engine in this process."""

    name: str
    description: str
    ports: tuple[Port, ...]
    add_arguments: Callable[[argparse.ArgumentParser], None]
    parse_fault: Callable[[str], Any]
    fault_syntax: str
    fault_help: Callable[[], str]
    serve_async: Callable[[argparse.Namespace], Awaitable[int]]
    start: Callable[[argparse.Namespace, Path], AbstractAsyncContextManager[SandboxLink]]
    seed: int = 0
    config_help: str = "take the instruments (and the account of this venue) from this engine config"
    epilog: str = ""
    #: loggers that write a line per request at INFO (quieted unless --log-level DEBUG)
    noisy_loggers: tuple[str, ...] = field(default=("httpx", "httpcore"))
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def build_parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(
            prog=f"engine sandbox {self.name}", description=textwrap.fill(self.description, 100),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=(self.epilog + "\n\n" if self.epilog else "") + "faults (--fault):\n" + self.fault_help()
            + "\n\nexit codes: 0 stopped (Ctrl-C, SIGTERM, --duration); 2 bad arguments, a config that does "
            "not load, or a port that cannot be listened on.",
        )
        common = parser.add_argument_group("every sandbox")
        common.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
        for port in self.ports:
            common.add_argument(f"--{port.flag}", type=_port, default=None, metavar="PORT",
                                help=f"{port.what} port, 0 = any free port (default {port.default}; with --run 0)")
        common.add_argument("--seed", type=int, default=self.seed,
                            help=f"seed of the synthetic market (default {self.seed})")
        common.add_argument("--no-market", action="store_true",
                            help="no synthetic market: the books hold only the orders clients place")
        common.add_argument("--always-open", action="store_true",
                            help="continuous trading all the time instead of the session schedule (a 24/7 venue "
                            "always is)")
        common.add_argument("--speed", type=_speed, default=1.0, metavar="X",
                            help="run the sandbox clock X times faster than real time (default 1 = the wall clock). "
                            "An engine in another terminal runs at real time, so use X > 1 with --run (the engine "
                            "shares this clock) or for a sandbox alone")
        common.add_argument("--start", type=_start, metavar="YYYY-MM-DDTHH:MM",
                            help="sandbox time at start, Asia/Karachi unless an offset is given (default: now; with "
                            "--speed > 1, five minutes before the next session)")
        common.add_argument("--duration", type=_seconds, default=0, metavar="S",
                            help="stop after S real seconds (default 0 = run until Ctrl-C; with --run, until the "
                            "config's last trading day ends)")
        common.add_argument("--fault", action="append", default=[], metavar="SPEC",
                            type=_fault_reader(self.parse_fault),
                            help=f"inject a fault on a schedule; repeatable. {self.fault_syntax}")
        common.add_argument("--log-level", type=_level, default=None, metavar="LEVEL",
                            help="DEBUG, INFO, WARNING or ERROR (default INFO; with --run the config's "
                            "logging.level)")
        common.add_argument("--config", type=Path, metavar="CONFIG",
                            help=f"{self.config_help} (default with --run: the run's config)")
        own = parser.add_argument_group(f"{self.name} only")
        self.add_arguments(own)  # type: ignore[arg-type]  # a group adds arguments like a parser
        if self.defaults:
            parser.set_defaults(**self.defaults)
        return parser

    def serve(self, args: argparse.Namespace) -> int:
        """Run alone: the ports the shipped configs name unless told, logs on stderr."""
        for port in self.ports:
            if getattr(args, port.dest) is None:
                setattr(args, port.dest, port.default)
        logging.basicConfig(level=args.log_level or "INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        for noisy in self.noisy_loggers:
            logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
        try:
            return asyncio.run(self.serve_async(args))
        except KeyboardInterrupt:
            return 0
        except SandboxStartError as exc:
            print(f"engine sandbox {self.name}: {exc}", file=sys.stderr)
            return 2

    def main(self, argv: list[str] | None = None) -> int:
        """``python -m adapters.<venue>.sandbox ARGS``: the sandbox alone, as ``engine sandbox``
        without ``--run`` (which needs the engine)."""
        return self.serve(self.build_parser().parse_args(argv))


V = TypeVar("V", bound=AbstractAsyncContextManager[Any])


@contextlib.asynccontextmanager
async def listening(venue: V, where: str) -> AsyncIterator[V]:
    """``venue`` entered (listening) for the block, left after it; a socket that cannot be listened
    on is a :class:`SandboxStartError` naming ``where`` (``host:port``), which ``engine sandbox``
    prints as one line and exit 2, not a traceback."""
    try:
        await venue.__aenter__()
    except OSError as exc:
        raise SandboxStartError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    try:
        yield venue
    finally:
        await venue.__aexit__(None, None, None)


def free_ports(args: argparse.Namespace, ports: tuple[Port, ...]) -> None:
    """With an engine in this process: any free port where none was asked for."""
    for port in ports:
        if getattr(args, port.dest) is None:
            setattr(args, port.dest, 0)
