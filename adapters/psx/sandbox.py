"""``engine sandbox psx``: one local PSX venue serving both the Live Feed WebSocket (market data,
seed 002) and the Optimus REST broker API with webhooks (orders, seed 000).

Why one process: the engine's ``psx`` venue takes its market data from the Live Feed and sends its
orders through Optimus. For the two to describe one market, they must share one matching engine:
an order placed over REST must trade against the book the feed shows, and its trade must appear on
the feed. So there is ONE :class:`~adapters.sim.venue.SimVenue` (matching engine +
synthetic market) on the given clock, whose events fan out: book, trades and instrument statuses
to the :class:`~adapters.psx_feed.sandbox.FeedServer`, our orders' updates and fills (and trades,
for the holdings' last price) to the :class:`~adapters.optimus.sandbox.OptimusSandbox`. ONE
:class:`~adapters.sim.sessions.SessionFollower` drives the paper venue and the feed from the
same schedule, so the broker's market-hours rule (2006, read from the matching engine's phase) and
the feed's ``market_status`` can never disagree.

The broker enforces the document's server-side rules (lot 2002, band and tick 2003, market hours
2006, order types 2007, buying power 2004, short selling 2005, idempotency 3002, tokens
1001/1002, rate limits 3001) in the document's error envelope; the feed enforces its bearer
token, access levels and 2 connections per token. Both are the standalone sandboxes' code.
``document_literal=True`` (``--document-literal``) turns every extension of both off (issue 20:
each server says only what its document shows); ``--extension`` / ``--no-extension NAME`` one of
either server's flags.

Faults (:data:`FAULTS`, of the simulated venue's one vocabulary, :mod:`adapters.sim.faults`), in
process (``sandbox.inject(kind, **params)``), on a schedule (``faults=`` / ``--fault SPEC``), or
over HTTP on the broker port:
``POST http://HOST:BROKER_PORT/sandbox/faults {"kind": "drop_sockets", ...}``. The feed's own
``GET http://HOST:FEED_PORT/sandbox/fault?kind=...`` keeps working for the feed's faults.

``engine sandbox psx --run CONFIG`` runs an engine in the same process on the same clock:
:data:`COMMAND` starts the venue and describes it to the engine (engine/sandboxrun.py) with a
:class:`~engine.venue.SandboxLink`: its URLs, credentials and webhook receiver.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import secrets
import sys
import textwrap
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.kit.credentials import MissingSecret, Secret, sandbox_secret, write_secret_file
from adapters.optimus import codec as optimus_codec
from adapters.optimus.adapter import OptimusOptions
from adapters.optimus.sandbox import DOC_HOLDINGS, DOC_INSTRUMENTS, OptimusExtensions, OptimusSandbox, SandboxSettings
from adapters.optimus.sandbox import SUPPORTED_FAULTS as BROKER_FAULTS
from adapters.psx_feed.sandbox import (
    DOCUMENT_CONNECTION_LIMIT,
    LEVEL_OF_PATH,
    FeedExtensions,
    FeedServer,
    paper_order_source,
)
from adapters.psx_feed.sandbox import SUPPORTED_FAULTS as FEED_FAULTS
from adapters.sim.cli import (
    Port,
    VenueSandboxCommand,
    at_least,
    free_ports,
    sandbox_clock,
    until_stopped,
)
from adapters.sim.extensions import add_extension_arguments, extensions_from_args, extensions_line
from adapters.sim.faults import (
    FaultSpec,
    FaultTimers,
    canonical_kind,
    check_params,
    check_supported,
    fault_help,
    split_target,
)
from adapters.sim.faults import parse_fault_spec as parse_spec
from adapters.sim.market import MarketOptions
from adapters.sim.sessions import SessionFollower
from adapters.sim.venue import SimVenue
from engine.model import Instrument, SessionState
from engine.venue import SandboxLink, SandboxStartError, venue_from_config
from engine.venue.clock import Clock

__all__ = [
    "DEFAULT_BROKER_PORT",
    "DEFAULT_FEED_PORT",
    "COMMAND",
    "DEFAULT_WEBHOOK_URL",
    "FAULTS",
    "Credentials",
    "PsxSandbox",
    "SUPPORTED_FAULTS",
    "SandboxListenError",
    "ScheduledFault",
    "build_parser",
    "main",
    "parse_fault_spec",
]

log = logging.getLogger("engine.psx_sandbox")

DEFAULT_FEED_PORT = 8765  # the Live Feed sandbox's default
DEFAULT_BROKER_PORT = 8090  # the Optimus sandbox's default
#: where an engine with the Optimus adapter's default options receives webhooks
DEFAULT_WEBHOOK_URL = (
    f"http://{OptimusOptions.model_fields['webhook_listen'].default}{optimus_codec.Paths.WEBHOOK}"
)
#: the environment variables the shipped config (config.psx-sandbox.yaml) names
ENV_NAMES = {
    "feed_token": "PSX_FEED_TOKEN",
    "username": "OPTIMUS_USERNAME",
    "password": "OPTIMUS_PASSWORD",
    "webhook_secret": "OPTIMUS_WEBHOOK_SECRET",
}


# --------------------------------------------------------------------------------------------
# Credentials


@dataclass(frozen=True)
class Credentials:
    """Every secret the venue checks. Values, not sources: ``main`` reads them from the
    environment or files (or generates them); tests and the one-command mode pass or generate
    their own. ``repr`` never shows a value."""

    feed_tokens: tuple[str, ...]
    username: str
    password: str = field(repr=False)
    webhook_secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not self.feed_tokens or not all(self.feed_tokens):
            raise ValueError("at least one non-empty feed token is needed")
        if not self.username or not self.password or not self.webhook_secret:
            raise ValueError("username, password and webhook secret must not be empty")

    def __repr__(self) -> str:
        return f"Credentials(feed_tokens=<{len(self.feed_tokens)}>, username=<secret>, password=<secret>)"

    @classmethod
    def generate(cls) -> Credentials:
        """Throwaway credentials for a local sandbox."""
        return cls((secrets.token_urlsafe(24),), "sandbox", secrets.token_urlsafe(18),
                   secrets.token_urlsafe(24).encode())

    def env(self, names: Mapping[str, str] = ENV_NAMES) -> dict[str, str]:
        """The environment an engine needs for these credentials (by default the names
        config.psx-sandbox.yaml uses): ``os.environ.update(psx.credentials.env())``."""
        return {
            names["feed_token"]: self.feed_tokens[0],
            names["username"]: self.username,
            names["password"]: self.password,
            names["webhook_secret"]: self.webhook_secret.decode(),
        }


class SandboxListenError(SandboxStartError, OSError):
    """A server of the sandbox could not listen (the port is taken, the address is not local)."""


# --------------------------------------------------------------------------------------------
# Faults


#: the kinds of :data:`adapters.sim.faults.FAULT_KINDS` the combined venue plays itself;
#: ``feed.KIND`` and ``broker.KIND`` reach either server's own (its ``SUPPORTED_FAULTS``)
SUPPORTED_FAULTS = FAULTS = frozenset({
    "drop_sockets", "5xx", "slow", "lost_webhooks", "duplicate_reports", "expire_tokens", "badframe",
})
_SERVER_FAULTS = {"feed": FEED_FAULTS, "broker": BROKER_FAULTS}
#: the older name of a scheduled fault: one spec of the one vocabulary now
ScheduledFault = FaultSpec
FEED_PREFIX = "feed."
BROKER_PREFIX = "broker."
#: a fault asked for over HTTP that drops the broker's sockets waits this long: the answer goes first
_HTTP_DROP_DELAY_S = Decimal("0.05")


def _fault_name(kind: str) -> tuple[str, str, str]:
    """``kind`` as (target, canonical kind, name): ``feed.gap`` -> ("feed", "gap", "feed.gap");
    ValueError for a kind the combined venue (or the server named) does not play."""
    target, base = split_target(kind.strip())
    base = canonical_kind(base)
    if target:
        if target not in _SERVER_FAULTS:  # another venue's server (ws. is MidChains')
            raise ValueError(f"fault {kind.strip()!r}: psx serves feed and broker, not {target}")
        check_supported(base, f"psx ({target})", _SERVER_FAULTS[target])
        return target, base, f"{target}.{base}"
    check_supported(base, "psx", SUPPORTED_FAULTS)
    return target, base, base


def check_fault(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and convert a fault's parameters; ValueError names what is wrong."""
    _target, base, _name = _fault_name(kind)
    return check_params(base, params)


def parse_fault_spec(text: str) -> FaultSpec:
    """One ``--fault`` SPEC of the one vocabulary (:func:`adapters.sim.faults.parse_fault_spec`),
    refused by name if the combined venue (or the server it targets) does not play it."""
    spec = parse_spec(text)
    _fault_name(spec.name)
    return spec


# --------------------------------------------------------------------------------------------
# The venue


class PsxSandbox:
    """The PSX venue on localhost: Live Feed WebSocket + Optimus REST on one paper market.

    ``async with PsxSandbox(clock=clock) as psx`` starts both servers (port 0: any free port);
    ``psx.feed_url`` (``ws://host:port``; the adapter adds the access level's path) and
    ``psx.broker_url`` (REST base with ``/v1``) say where. ``psx.inject(kind, **params)`` injects a
    fault now (:data:`FAULTS`, ``feed.<kind>``, ``broker.<kind>``)."""

    def __init__(
        self,
        *,
        clock: Clock,
        instruments: Iterable[Instrument] = DOC_INSTRUMENTS,
        credentials: Credentials | None = None,
        host: str = "127.0.0.1",
        feed_port: int = 0,
        broker_port: int = 0,
        webhook_url: str | None = DEFAULT_WEBHOOK_URL,
        seed: int = 0,
        market: bool = True,
        market_step_s: Decimal = Decimal(1),
        always_open: bool = False,
        schedule: Any = None,
        cash: Decimal = Decimal(10_000_000),
        holdings: Mapping[str, Decimal] | None = None,
        max_connections_per_token: int = DOCUMENT_CONNECTION_LIMIT,
        access_ttl_s: int = 3600,
        trading_per_second: int = 100,
        webhook_retry_s: Decimal = Decimal("0.2"),
        feed_token_file: Path | None = None,
        faults: Iterable[ScheduledFault] = (),
        document_literal: bool = False,
        feed_extensions: FeedExtensions | None = None,
        broker_extensions: OptimusExtensions | None = None,
    ) -> None:
        """``document_literal``: both servers answer only their documents' shapes (every extension
        off); ``feed_extensions`` / ``broker_extensions`` choose single ones instead."""
        self.clock = clock
        self.instruments = {i.symbol: i for i in instruments}
        self.credentials = credentials if credentials is not None else Credentials.generate()
        self.host = host
        self.always_open = always_open
        self.schedule = schedule
        self.feed_token_file = feed_token_file
        #: the feed tokens accepted now (rotation adds to it)
        self.feed_tokens = list(self.credentials.feed_tokens)
        self.scheduled_faults = tuple(faults)
        self._ports = (feed_port, broker_port)
        if holdings is None:
            holdings = {s: q for s, (_p, q) in DOC_HOLDINGS.items() if s in self.instruments}
        if feed_extensions is None:
            feed_extensions = FeedExtensions.document_literal() if document_literal else FeedExtensions.everyday()
        if broker_extensions is None:
            broker_extensions = (OptimusExtensions.document_literal() if document_literal
                                 else OptimusExtensions.everyday())
        self.feed = FeedServer(self.instruments.values(), clock, self.feed_tokens, host=host, port=feed_port,
                               max_connections_per_token=max_connections_per_token, extensions=feed_extensions)
        market_options = MarketOptions(enabled=market, step_interval_s=market_step_s)
        #: the one simulated exchange both servers serve: the feed listens to its book and tape
        #: (first), the broker to our orders' reports and the tape (it values holdings with them)
        self.sim = SimVenue("PSX", self.instruments.values(), clock, market=market_options,
                            cancel_on_disconnect=False, seed=seed, listeners=(self.feed,))
        self.feed.order_source = paper_order_source(self.sim)  # L2 order details
        creds = self.credentials
        settings = SandboxSettings(
            host=host, port=broker_port, users={creds.username: creds.password}, webhook_url=webhook_url,
            webhook_secret=creds.webhook_secret, access_ttl_s=access_ttl_s, trading_per_second=trading_per_second,
            webhook_retry_s=webhook_retry_s, sessions="external", cash=cash, holdings=dict(holdings),
            market=market, market_step_s=market_step_s, seed=seed, extensions=broker_extensions,
        )
        self.broker = OptimusSandbox(settings, instruments=self.instruments.values(), clock=clock, sim=self.sim)
        self.broker.fault_router = self._http_fault
        self.follower: SessionFollower | None = None
        self._always_open_state: SessionState | None = None
        #: scheduled faults (and a socket drop asked for over HTTP, played after its answer)
        self._timers = FaultTimers(clock, lambda spec: self.inject(spec.name, **spec.params), log)
        self._started = False
        #: faults injected so far, by kind
        self.faults_injected: Counter[str] = Counter()

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Listen (feed, then broker), start the market and the sessions, arm scheduled faults.
        Raises :class:`SandboxListenError` naming the address when a server cannot listen."""
        try:
            await self.feed.start()
        except OSError as exc:
            raise SandboxListenError(
                f"cannot listen on {self.host}:{self._ports[0]} (live feed): {exc.strerror or exc}"
            ) from None
        try:
            await self.broker.start()
        except OSError as exc:
            await self.broker.stop()
            await self.feed.stop()
            raise SandboxListenError(
                f"cannot listen on {self.host}:{self._ports[1]} (optimus broker): {exc.strerror or exc}"
            ) from None
        self._started = True
        self.sim.start()
        self.sim.subscribe_book(list(self.instruments))
        if self.always_open:
            self._always_open_state = self.sim.always_open(self.feed.on_session)
        else:
            if self.schedule is None:
                from engine.venue.sessions import SessionSchedule

                self.schedule = SessionSchedule()  # the shipped default profile: the broker document's hours
            self.follower = self.sim.follow_sessions(self.schedule, self.feed.on_session)
        self._timers.arm(self.scheduled_faults)
        log.info("psx sandbox: feed %s, broker %s, webhooks to %s", self.feed_url, self.broker_url,
                 self.webhook_url or "nowhere yet")

    async def stop(self) -> None:
        """Stop everything this sandbox started. Safe to call twice."""
        self._timers.cancel()
        self.follower = None  # the venue stops its own follower
        if self._started:
            self._started = False
            self.sim.stop()
            await self.broker.stop()
            await self.feed.stop()

    async def __aenter__(self) -> PsxSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- where -----------------------------------------------------------------------------
    @property
    def feed_url(self) -> str:
        """``ws://host:port``: the Live Feed adapter's ``url`` option (it adds the access path)."""
        return self.feed.url

    @property
    def broker_url(self) -> str:
        """The Optimus REST base including ``/v1``: the Optimus adapter's ``base_url`` option."""
        return self.broker.base_url

    @property
    def webhook_url(self) -> str | None:
        source = self.broker.webhook_url_source
        return self.broker.webhook_url if source is None else source()

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        """Deliver webhooks here from now on."""
        self.broker.webhook_url = url
        self.broker.webhook_url_source = None

    def deliver_webhooks_to(self, source: Callable[[], str | None]) -> None:
        """Ask ``source`` for the receiver's address at every delivery: an engine in this process
        whose receiver listens on port 0 (``lambda: adapter.webhook_url``)."""
        self.broker.webhook_url_source = source

    def engine_options(self) -> dict[str, dict[str, str]]:
        """Option values that point an engine's adapters at this sandbox (ports chosen at start)."""
        return {"optimus": {"base_url": self.broker_url}, "psx_feed": {"url": self.feed_url}}

    @property
    def session(self) -> SessionState | None:
        """The phase both servers are in now."""
        return self._always_open_state if self.follower is None else self.follower.state

    def status(self) -> dict[str, Any]:
        session = self.session
        return {
            "feed": self.feed.status(),
            "broker": {"url": self.broker_url, "webhook_url": self.webhook_url, "counts": dict(self.broker.counts)},
            "session": None if session is None else {"phase": session.phase.value, "day": session.trading_day},
            "faults_injected": dict(self.faults_injected),
            "extensions_off": {"feed": list(self.feed.extensions.off()),
                               "broker": list(self.broker.settings.extensions.off())},
        }

    # ---- faults ----------------------------------------------------------------------------
    def inject(self, kind: str, **params: Any) -> dict[str, Any]:
        """Inject one fault now (:data:`FAULTS`; ``feed.<kind>`` / ``broker.<kind>`` reach either
        server's own faults). Returns what it did; ValueError for an unknown kind or parameter."""
        target, base, kind = _fault_name(kind)
        params = check_params(base, params)
        self.faults_injected[kind] += 1
        log.warning("psx sandbox: injecting %s %s", kind, {k: v for k, v in params.items() if k != "token"})
        if target == "feed":
            return {"kind": kind, "feed": self.feed.inject(base, **params)}
        if target == "broker":
            count = params.pop("count", 1)
            self.broker.inject(base, count, **params)
            return {"kind": kind, "count": count}
        target = params.get("target", "both")
        result: dict[str, Any] = {"kind": kind}
        if kind == "drop_sockets":
            if target in ("both", "feed"):
                result["feed_sockets"] = self.feed.inject("drop")["clients"]
            if target in ("both", "broker"):
                result["broker_sockets"] = self.broker._server.drop_connections()
        elif kind == "badframe":
            result["feed"] = self.feed.inject("badframe", **params)
        elif kind == "expire_tokens":
            if target in ("both", "broker"):
                self.broker.inject("expire_tokens", refresh=params.get("refresh", False))
                result["broker"] = "access tokens expired" + (" (refresh tokens too)" if params.get("refresh") else "")
            if target in ("both", "feed"):
                result["feed_sockets_closed"] = self._expire_feed_tokens(bool(params.get("rotate", False)))
                result["feed_rotated"] = bool(params.get("rotate", False))
        else:  # the broker's counted faults
            count = params.pop("count", 1)
            self.broker.inject(kind, count, **params)
            result["count"] = count
        return result

    def _expire_feed_tokens(self, rotate: bool) -> int:
        """Every accepted feed token expires (sockets close 1008, handshakes get 401); with
        ``rotate`` a new one is accepted and written to the token file (an engine reading the
        file picks it up at its next connect)."""
        closed = self.feed.expire_token(None)  # the tokens in use, and their sockets
        for token in self.feed_tokens:
            self.feed.expire_token(token)
        self.feed_tokens.clear()
        if rotate:
            token = secrets.token_urlsafe(24)
            self.feed.add_token(token)
            self.feed_tokens.append(token)
            if self.feed_token_file is not None:
                write_secret_file(self.feed_token_file, token)
        return closed

    def _http_fault(self, kind: str, **params: Any) -> dict[str, Any]:
        """``POST /sandbox/faults`` on the broker port. A fault that drops the broker's sockets is
        injected a moment later, so the control request itself still gets its answer."""
        params = check_fault(kind, params)
        target, base, name = _fault_name(kind)
        drops_broker = (name == "drop_sockets" and params.get("target", "both") != "feed") or name in (
            BROKER_PREFIX + "drop_connections", BROKER_PREFIX + "outage",
        )
        if drops_broker:
            self._timers.arm([FaultSpec(base, params, after_s=_HTTP_DROP_DELAY_S, target=target)])
            return {"kind": kind, "in_s": _HTTP_DROP_DELAY_S}
        return self.inject(kind, **params)


# --------------------------------------------------------------------------------------------
# Command line: engine sandbox psx [ARGS] (= python -m adapters.psx.sandbox [ARGS])


def _fault_help() -> str:
    """The one vocabulary's help for the kinds this venue plays, and the two servers' own."""
    servers = [
        ("feed.KIND", f"the feed's own faults: {', '.join(sorted(FEED_FAULTS))} (adapters/psx_feed/sandbox.py)"),
        ("broker.KIND", f"the broker's own faults: {', '.join(sorted(BROKER_FAULTS))} (adapters/optimus/sandbox.py)"),
    ]
    return "\n".join([fault_help(FAULTS), *(textwrap.fill(f"{kind}: {text}", 100, initial_indent="  ",
                                                          subsequent_indent="      ") for kind, text in servers)])


def _psx_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags only this venue has: its webhook receiver, credentials and broker limits."""
    parser.add_argument("--webhook-url", type=_http_url, default=DEFAULT_WEBHOOK_URL, metavar="URL",
                        help=f"where the broker POSTs signed webhooks (default {DEFAULT_WEBHOOK_URL}: the Optimus "
                        "adapter's default receiver, so an engine with default options just works)")
    parser.add_argument("--feed-token-env", default=ENV_NAMES["feed_token"], metavar="NAME",
                        help="environment variable holding the accepted Live Feed token (default PSX_FEED_TOKEN); "
                        "unset: a token is generated and printed")
    parser.add_argument("--feed-token-file", type=Path, metavar="FILE",
                        help="file of accepted feed tokens, one a line (instead of the variable); created with a "
                        "random token (mode 600) if missing")
    parser.add_argument("--max-connections", type=at_least(1), default=DOCUMENT_CONNECTION_LIMIT, metavar="N",
                        help=f"concurrent feed connections per token (the document: {DOCUMENT_CONNECTION_LIMIT})")
    parser.add_argument("--username-env", default=ENV_NAMES["username"], metavar="NAME",
                        help="environment variable holding the broker login (default OPTIMUS_USERNAME); unset: "
                        "'sandbox', printed")
    parser.add_argument("--password-env", default=ENV_NAMES["password"], metavar="NAME",
                        help="environment variable holding the broker password (default OPTIMUS_PASSWORD); unset: "
                        "one is generated and printed")
    parser.add_argument("--password-file", type=Path, metavar="FILE",
                        help="file holding the broker password, first line (instead of the variable); created "
                        "with a random one if missing")
    parser.add_argument("--webhook-secret-env", default=ENV_NAMES["webhook_secret"], metavar="NAME",
                        help="environment variable holding the webhook HMAC secret (default OPTIMUS_WEBHOOK_SECRET); "
                        "unset: one is generated and printed")
    parser.add_argument("--webhook-secret-file", type=Path, metavar="FILE",
                        help="file holding the webhook secret, first line (instead of the variable); created with "
                        "a random one if missing")
    parser.add_argument("--access-ttl", type=int, default=3600, metavar="S",
                        help="broker access token lifetime in sandbox seconds (document: 3600)")
    parser.add_argument("--trading-rate", type=int, default=100, metavar="N",
                        help="broker trading requests per second per user (document: 100; over it: 3001)")
    parser.add_argument("--cash", type=Decimal, default=None, metavar="PKR",
                        help="broker cash balance at start (default: the config's account, else 10000000)")
    add_extension_arguments(parser, FeedExtensions, OptimusExtensions)


def _http_url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError("must be an http(s) URL")
    return text


class SandboxSetupError(SandboxStartError):
    """Exit 2 with this message."""


def _secret(env: str, file: Path | None, what: str, default: Callable[[], str]) -> Secret:
    try:
        return sandbox_secret(env, file, what, default)
    except MissingSecret as exc:
        raise SandboxSetupError(str(exc)) from None


def _config_mismatches(venues: Mapping[str, Any], psx: PsxSandbox) -> list[str]:
    """Where the config points its adapters elsewhere than this sandbox (a warning, not an error)."""
    problems = []
    for name, venue in venues.items():
        if not isinstance(venue, Mapping):
            continue
        parts = [(venue.get("adapter"), venue.get("options") or {})]
        data = venue.get("market_data")
        if isinstance(data, Mapping):
            parts.append((data.get("adapter"), data.get("options") or {}))
        for adapter, options in parts:
            if adapter == "optimus" and options.get("base_url", "").rstrip("/") != psx.broker_url:
                problems.append(f"venue {name}: optimus base_url {options.get('base_url')} (sandbox: {psx.broker_url})")
            if adapter == "optimus":
                fields = OptimusOptions.model_fields
                listen = options.get("webhook_listen", fields["webhook_listen"].default)
                receiver = f"http://{listen}{options.get('webhook_path', fields['webhook_path'].default)}"
                if not str(listen).endswith(":0") and receiver != psx.webhook_url:
                    problems.append(f"venue {name}: optimus receives webhooks at {receiver} "
                                    f"(sandbox delivers to {psx.webhook_url})")
            if adapter == "psx_feed" and "url" in options and not str(options["url"]).startswith(psx.feed_url):
                problems.append(f"venue {name}: psx_feed url {options['url']} (sandbox: {psx.feed_url})")
    return problems


def _banner(psx: PsxSandbox, secrets_used: Mapping[str, Secret], clock_text: str) -> str:
    broker_http = psx.broker_url.removesuffix("/v1")
    session = psx.session
    phase = "always open" if psx.always_open else f"schedule, now {session.phase.value if session else '?'}"
    lines = [
        f"psx sandbox: live feed on {psx.feed_url} (paths {', '.join(LEVEL_OF_PATH)})",
        f"psx sandbox: optimus broker on {psx.broker_url} (webhooks to {psx.webhook_url or 'nowhere'})",
        f"psx sandbox: clock {clock_text}; sessions {phase}",
        f"psx sandbox: live feed {extensions_line(psx.feed.extensions)}; "
        f"broker {extensions_line(psx.broker.settings.extensions)}",
        f"psx sandbox: faults: POST {broker_http}/sandbox/faults {{\"kind\": \"drop_sockets\"}} "
        f"(kinds: {', '.join(FAULTS)}, feed.KIND, broker.KIND)",
        "psx sandbox: the engine (engine run config.psx-sandbox.yaml) needs in its environment:",
    ]
    for secret in secrets_used.values():
        if secret.source == "generated":
            lines.append(f"  export {secret.env}={secret.value}")  # throwaway values made up just now
        elif secret.source == "env":
            lines.append(f"  {secret.env}: as set in this shell (not printed)")
        else:
            lines.append(f"  {secret.env}: the first line of {secret.file} (not printed; or point the adapter's "
                         "*_file option at it)")
    return "\n".join(lines)


@dataclass
class SandboxSetup:
    """A sandbox built from the command line, not yet listening."""

    psx: PsxSandbox
    secrets_used: dict[str, Secret]
    clock_text: str
    venues: dict[str, Any]  # the --config file's raw venues (for the mismatch warnings)


def setup_from_args(args: argparse.Namespace) -> SandboxSetup:
    """Instruments, sessions and account (from ``--config`` or the document), the secrets (from
    the environment, files, or generated) and the clock (wall, or scaled with ``--speed``)."""
    instruments: list[Instrument] = list(DOC_INSTRUMENTS)
    schedule: Any = None
    account: dict[str, Any] = {}
    venues: dict[str, Any] = {}
    if args.config is not None:
        taken = venue_from_config(args.config, "optimus")
        instruments, schedule, account, venues = taken.instruments, taken.schedule, taken.account, taken.venues
    if schedule is None:
        from engine.venue.sessions import SessionSchedule

        schedule = SessionSchedule()
    used = {
        "feed_token": _secret(args.feed_token_env, args.feed_token_file, "feed token",
                              lambda: secrets.token_urlsafe(24)),
        "username": _secret(args.username_env, None, "username", lambda: "sandbox"),
        "password": _secret(args.password_env, args.password_file, "password", lambda: secrets.token_urlsafe(18)),
        "webhook_secret": _secret(args.webhook_secret_env, args.webhook_secret_file, "webhook secret",
                                  lambda: secrets.token_urlsafe(24)),
    }
    credentials = Credentials(
        tuple(used["feed_token"].value.splitlines()), used["username"].value.splitlines()[0],
        used["password"].value.splitlines()[0], used["webhook_secret"].value.splitlines()[0].encode(),
    )
    clock, clock_text = sandbox_clock(args, schedule)
    cash = args.cash if args.cash is not None else account.get("cash", Decimal(10_000_000))
    psx = PsxSandbox(
        clock=clock, instruments=instruments, credentials=credentials, host=args.host, feed_port=args.feed_port,
        broker_port=args.broker_port, webhook_url=args.webhook_url, seed=args.seed, market=not args.no_market,
        always_open=args.always_open, schedule=schedule, cash=cash, holdings=account.get("holdings"),
        max_connections_per_token=args.max_connections, access_ttl_s=args.access_ttl,
        trading_per_second=args.trading_rate, feed_token_file=args.feed_token_file, faults=args.fault,
        feed_extensions=extensions_from_args(FeedExtensions, args),
        broker_extensions=extensions_from_args(OptimusExtensions, args),
    )
    return SandboxSetup(psx, used, clock_text, venues)


def stopped_line(psx: PsxSandbox) -> str:
    counts = {k: v for k, v in psx.broker.counts.items() if v}
    feed = {k: v for k, v in psx.feed.stats.items() if v}
    working = psx.broker.working_orders()
    return (f"psx sandbox: stopped; broker {json.dumps(counts)}; feed {json.dumps(feed)}; "
            f"orders working at the broker: {len(working)}{' (' + ', '.join(working) + ')' if working else ''}")


async def _serve(args: argparse.Namespace) -> int:
    setup = setup_from_args(args)
    psx = setup.psx
    async with psx:
        print(_banner(psx, setup.secrets_used, setup.clock_text), flush=True)
        for problem in _config_mismatches(setup.venues, psx):
            print(f"psx sandbox: warning: the config points elsewhere: {problem}", flush=True)
        await until_stopped(args.duration)
    print(stopped_line(psx), flush=True)
    return 0


def engine_link(psx: PsxSandbox, setup: SandboxSetup, names: Mapping[str, str]) -> SandboxLink:
    """What an engine in this process needs of ``psx``: the Optimus and Live Feed options that
    point at it, its credentials under the variables ``names`` (the ``--*-env`` flags), and the
    webhook receiver's address asked of the engine's Optimus adapter at each delivery."""
    creds = psx.credentials
    secret_files = dict.fromkeys(("username_file", "password_file", "webhook_secret_file"))
    options = {
        "optimus": {**secret_files, "base_url": psx.broker_url, "webhook_listen": f"{psx.host}:0",
                    "username_env": names["username"], "password_env": names["password"],
                    "webhook_secret_env": names["webhook_secret"]},
        "psx_feed": {"token_file": None, "url": psx.feed_url, "token_env": names["feed_token"]},
    }
    # the username is a login, not a secret: logs keep the word "sandbox"
    environment = {setup.secrets_used[key].env: setup.secrets_used[key].value.splitlines()[0] for key in names}
    return SandboxLink(
        clock=psx.clock, adapter_options=options, environment=environment,
        secret_values=frozenset({*creds.feed_tokens, creds.password, creds.webhook_secret.decode()}),
        order_adapter="optimus", attach=lambda broker: psx.deliver_webhooks_to(lambda: broker.webhook_url),
        description=f"psx sandbox: live feed {psx.feed_url}, optimus broker {psx.broker_url}, clock "
        f"{setup.clock_text}",
        stopped=lambda: stopped_line(psx),
    )


@contextlib.asynccontextmanager
async def _start(args: argparse.Namespace, config: Path) -> AsyncIterator[SandboxLink]:
    free_ports(args, COMMAND.ports)
    args.config = args.config or config  # the venue serves the instruments, sessions and account traded
    args.webhook_url = None  # until the engine's receiver listens (SandboxLink.attach)
    setup = setup_from_args(args)
    names = {key: getattr(args, f"{key}_env") for key in ENV_NAMES}
    async with setup.psx:
        yield engine_link(setup.psx, setup, names)


COMMAND = VenueSandboxCommand(
    name="psx",
    description="One local PSX venue: the PSX Live Feed WebSocket (market data) and the Optimus REST broker "
    "API with signed webhooks (orders), both on ONE simulated venue (matching engine and synthetic market), "
    "so an order placed over REST trades against the book the feed shows. The broker enforces the "
    "document's rules (lot 2002, band 2003, market hours 2006, ...) in its error envelope; one session "
    "schedule (the broker document's hours) drives both servers.",
    epilog="Two terminals (real time):\n"
    "  engine sandbox psx [--always-open]          # terminal 1; prints the environment the engine needs\n"
    "  engine run config.psx-sandbox.yaml          # terminal 2, with those variables exported\n"
    "One command (a PSX day in about 6.5 minutes):\n"
    "  engine sandbox psx --run config.psx-sandbox.yaml --speed 60 --report report.json\n\n"
    "Faults also on request: POST http://HOST:BROKER_PORT/sandbox/faults {\"kind\": KIND, key: value}.",
    ports=(Port("feed-port", DEFAULT_FEED_PORT, "Live Feed WebSocket"), Port("broker-port", DEFAULT_BROKER_PORT,
                                                                                "Optimus REST")),
    add_arguments=_psx_arguments,
    parse_fault=parse_fault_spec,  # the fault hook: adapters/sim/faults.py's parser replaces it
    fault_syntax="SPEC = KIND[@WHEN[/EVERY]][,key=value...]: WHEN = seconds after start (default 0) or HH:MM[:SS] "
    "on the sandbox clock; EVERY = repeat every so many seconds. E.g. drop_sockets@30/60, 5xx@10,count=3, "
    "expire_tokens@10:15, badframe@5/10,frame=deep,count=50",
    fault_help=_fault_help,
    serve_async=_serve,
    start=_start,
    seed=42,
    config_help="take the instruments (symbols, lots, ticks, previous closes), the session profile and the account "
    "(cash, holdings of the optimus venue) from this engine config (default: the broker document's six symbols, "
    "MEBL lot 500, its holdings, PKR 10,000,000, its hours)",
)


def build_parser() -> argparse.ArgumentParser:
    """The flags of ``engine sandbox psx`` (those of every sandbox and this venue's own)."""
    return COMMAND.build_parser()


def main(argv: list[str] | None = None) -> int:
    """``python -m adapters.psx.sandbox ARGS``: run the combined venue until Ctrl-C (exit 0); exit
    2 for bad arguments, a config that does not load, or a port that cannot be listened on."""
    return COMMAND.main(argv)


if __name__ == "__main__":
    sys.exit(main())
