"""The one fault vocabulary of the simulated venue: every sandbox's ``--fault SPEC``, every
sandbox's control endpoint and the paper config's ``faults:`` list name the same kinds with the
same parameters, read by the one parser here.

A venue plays only the faults that make sense on its protocol, so each sandbox declares the kinds
it supports and refuses the others with :func:`check_supported` (an error naming the kind and the
venue), rather than accepting a fault it would silently ignore.

Spec text (``engine sandbox VENUE --fault SPEC``)::

    [TARGET.]KIND[@WHEN[/EVERY]][,key=value...]

* ``WHEN``: seconds after the sandbox starts (default 0), or a time of day ``HH:MM[:SS]`` (two-digit
  hour) on the sandbox clock, Asia/Karachi; ``/EVERY`` repeats it every so many seconds.
* ``TARGET``: on a venue serving several servers (``engine sandbox psx``: ``feed``, ``broker``),
  the one server that plays it.
* Pulse's short form ``KIND@S:ARG[:ARG...]`` keeps working for the kinds that take positional
  arguments (``stall@5:2.5``, ``gap@2:BTC_USD-PERPETUAL``, ``error@1:private/buy:11:3``,
  ``badframe@2:deep:7``).

:func:`format_fault_spec` writes the canonical text back: ``parse_fault_spec(format_fault_spec(s))
== s`` for every spec.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import re
import textwrap
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import time
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.sim.badframes import BAD_FRAME_KINDS, check_kind
from engine.venue.clock import NS_PER_S, Clock, Timer

__all__ = [
    "FAULT_KINDS",
    "FAULT_TARGETS",
    "FaultKind",
    "FaultSpec",
    "FaultTimers",
    "UnsupportedFault",
    "canonical_kind",
    "check_params",
    "check_supported",
    "fault_help",
    "fault_label",
    "format_fault_spec",
    "parse_fault_spec",
    "read_bool",
    "read_count",
    "read_seconds",
    "seconds",
    "spec_reader",
    "split_target",
]

Reader = Callable[[Any], Any]

# ---- parameter readers: each turns text (or a JSON value) into the value a venue uses -----------


def read_bool(value: Any) -> bool:
    """true/false, yes/no, on/off, 1/0 (text from a command line or a JSON boolean)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def read_count(value: Any) -> int:
    """A count of at least 1 (a fault that happens zero times is a typo, not a request)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a count, got {value!r}")
    try:
        count = int(str(value).strip())
    except ValueError:
        raise ValueError(f"expected a count, got {value!r}") from None
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    return count


def read_seconds(value: Any) -> Decimal:
    """Seconds >= 0 as an exact Decimal (never a float: a schedule must not drift)."""
    if isinstance(value, bool):
        raise ValueError(f"expected seconds, got {value!r}")
    try:
        seconds = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"expected seconds, got {value!r}") from None
    if not seconds.is_finite() or seconds < 0:
        raise ValueError(f"expected seconds >= 0, got {value!r}")
    return seconds


def read_positive_seconds(value: Any) -> Decimal:
    """Seconds > 0: a window of no length is a typo."""
    seconds = read_seconds(value)
    if seconds <= 0:
        raise ValueError(f"expected seconds > 0, got {value!r}")
    return seconds


def read_code(value: Any) -> int:
    """A venue error code (an integer)."""
    if isinstance(value, bool):
        raise ValueError(f"expected an integer code, got {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"expected an integer code, got {value!r}") from None


def read_status(value: Any) -> int:
    """An HTTP 5xx status (a fault of the server, not of the request)."""
    status = read_code(value)
    if not 500 <= status <= 599:
        raise ValueError(f"status must be a 5xx code, got {status}")
    return status


def read_http_status(value: Any) -> int:
    """Any HTTP status a server may answer a handshake with (429 as well as 503)."""
    status = read_code(value)
    if not 100 <= status <= 599:
        raise ValueError(f"status must be an HTTP status, got {status}")
    return status


def read_text(value: Any) -> str:
    """Non-empty text."""
    text = str(value)
    if not text:
        raise ValueError("expected text, got nothing")
    return text


def read_target(value: Any) -> str:
    """Which of a combined venue's servers a socket/token fault reaches."""
    text = str(value).strip()
    if text not in ("both", "feed", "broker"):
        raise ValueError(f"target must be both, feed or broker, got {value!r}")
    return text


def read_level(value: Any) -> str:
    """A Live Feed access level."""
    text = str(value).strip().upper()
    if text not in ("L0", "L1", "L2"):
        raise ValueError(f"level must be L0, L1 or L2, got {value!r}")
    return text


# ---- the vocabulary ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultKind:
    """One kind of fault: what it does (help text), its parameters and their readers, the
    parameters a spec must give, Pulse's positional short form, and older names still accepted."""

    name: str
    text: str
    params: Mapping[str, Reader] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    positional: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    #: values a venue uses for parameters the spec leaves out (one place, so the paper config and a
    #: sandbox's --fault play the same fault)
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def with_defaults(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` completed with this kind's :attr:`defaults`."""
        return {**self.defaults, **params}


def _kinds(*kinds: FaultKind) -> dict[str, FaultKind]:
    return {kind.name: kind for kind in kinds}


_FRAMES = "|".join(BAD_FRAME_KINDS)

#: every fault kind of every simulated venue, by canonical name (help texts list them in this order)
FAULT_KINDS: dict[str, FaultKind] = _kinds(
    FaultKind("drop", "the connection is lost: every socket aborted without a goodbye (paper: nothing reaches the "
              "engine for duration_s=, requests sent meanwhile are lost)", {"duration_s": read_positive_seconds}),
    FaultKind("drop_sockets", "abort every socket of the servers named by target=both|feed|broker",
              {"target": read_target}),
    FaultKind("drop_connections", "every open client socket is aborted now"),
    FaultKind("drop_mid_frame", "send the first half of a frame, then close the TCP connection"),
    FaultKind("truncate", "send half a message as a complete frame, then drop the socket"),
    FaultKind("outage", "every request's socket is aborted for seconds= (default 1)", {"seconds": read_seconds}),
    FaultKind("stall", "send nothing (queued, not lost) for seconds= / duration_s= (default 5)",
              {"seconds": read_seconds, "duration_s": read_seconds}, positional=("duration_s",)),
    FaultKind("gap", "lose the next count= sequenced messages / book changes (of instrument=, if given): the "
              "client sees a gap", {"count": read_count, "instrument": read_text}, positional=("instrument",)),
    FaultKind("garbage", "send what is not valid protocol data (text= to choose it; count= answers on a REST venue)",
              {"text": read_text, "count": read_count}),
    FaultKind("badframe", f"send count= (default 1) hostile frames of class frame= ({_FRAMES}): the client must drop "
              "each, count it by kind and keep trading", {"frame": check_kind, "count": read_count},
              required=("frame",), positional=("frame", "count")),
    FaultKind("reject", "reject the next count= (default 1) new orders with code= (default 9002) and reason=",
              {"count": read_count, "code": read_code, "reason": read_text},
              defaults={"count": 1, "code": 9002, "reason": "injected reject: order rejected by exchange"}),
    FaultKind("reject_cancels", "refuse every cancel for duration_s= with code= (default 3001) and reason=; the "
              "orders keep working", {"duration_s": read_positive_seconds, "code": read_code, "reason": read_text},
              required=("duration_s",), defaults={"code": 3001, "reason": "injected: cancel refused"}),
    FaultKind("delay_acks", "process every request delay_ms= later for duration_s= (requests stay in order)",
              {"duration_s": read_positive_seconds, "delay_ms": read_positive_seconds},
              required=("duration_s", "delay_ms")),
    FaultKind("halt", "halt symbol= for duration_s=: the venue says so and rejects new orders in it",
              {"duration_s": read_positive_seconds, "symbol": read_text}, required=("duration_s", "symbol")),
    FaultKind("5xx", "the next count= answers are HTTP status= (default 503) with error 9001; process=true "
              "processes the request first (the order exists, its answer is lost)",
              {"count": read_count, "status": read_status, "process": read_bool}, aliases=("error_5xx",)),
    FaultKind("error", "answer the next count= requests of method= (\"*\" = any) with error code=",
              {"method": read_text, "code": read_code, "count": read_count}, required=("method",),
              positional=("method", "code", "count")),
    FaultKind("slow", "the next count= answers come delay_s= seconds late (default 1)",
              {"count": read_count, "delay_s": read_seconds}),
    FaultKind("lost_webhooks", "the next count= webhooks (only of event=, e.g. order.execution, if given) are never "
              "delivered", {"count": read_count, "event": read_text}, aliases=("lose_webhooks",)),
    FaultKind("duplicate_reports", "the next count= execution reports (webhooks) are delivered twice (same event id)",
              {"count": read_count}, aliases=("duplicate_webhooks",)),
    FaultKind("expire_tokens", "every access token (refresh=true: refresh tokens too) and every feed token expires "
              "now; rotate=true accepts a new feed token (target=both|feed|broker)",
              {"target": read_target, "refresh": read_bool, "rotate": read_bool}),
    FaultKind("expire_token", "expire token= (default: every token in use): its sockets close, new handshakes get 401",
              {"token": read_text}),
    FaultKind("add_token", "accept token= from now on (level= L0/L1/L2, default L2)",
              {"token": read_text, "level": read_level}, required=("token",)),
    FaultKind("refuse", "answer every handshake with HTTP status= (default 503) for seconds= (default 5)",
              {"status": read_http_status, "seconds": read_seconds}),
    FaultKind("burst", "send count= (default 10000) synthetic book changes of symbol= as fast as the socket takes "
              "them, then a fresh snapshot", {"count": read_count, "symbol": read_text}),
    FaultKind("stale_test_request", "leave the client's next count= (default 1) FIX TestRequests unanswered, or "
              "answer them delay_s= late", {"count": read_count, "delay_s": read_seconds}),
    FaultKind("logout", "the FIX gateway logs every session out (text=, default \"Session closed\") and closes "
              "the socket after the client's confirmation", {"text": read_text}),
    FaultKind("day_reset", "the FIX daily reset now: every session logged out, sequence numbers back to 1 both "
              "ways, messages queued for the old day discarded"),
)
_ALIASES = {alias: kind.name for kind in FAULT_KINDS.values() for alias in kind.aliases}
#: servers a combined venue can aim a fault at (``feed.gap``; ``ws.drop``: the MidChains sandbox's
#: WebSocket API beside its FIX acceptors)
FAULT_TARGETS = ("feed", "broker", "ws")
#: parameters whose value is a credential: shown as *** in logs
_SECRET_PARAMS = frozenset({"token"})
_TIME_OF_DAY = re.compile(r"(\d\d):(\d\d)(?::(\d\d))?")


class UnsupportedFault(ValueError):
    """A fault kind the venue does not play (a ValueError, so command lines report it as one)."""


@dataclass(frozen=True)
class FaultSpec:
    """One fault to play: its canonical kind, its checked parameters, when (``after_s`` seconds
    after start, or ``at_time`` of day on the sandbox clock), how often, and on which server."""

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    after_s: Decimal = Decimal(0)
    at_time: time | None = None
    every_s: Decimal | None = None
    target: str = ""

    @property
    def name(self) -> str:
        """The kind as the user wrote it for a venue with several servers: ``feed.gap``."""
        return f"{self.target}.{self.kind}" if self.target else self.kind

    def __str__(self) -> str:
        """The spec for a log line: its text with any token hidden (secrets never reach a log)."""
        shown = {key: ("***" if key in _SECRET_PARAMS else value) for key, value in self.params.items()}
        return format_fault_spec(FaultSpec(self.kind, shown, self.after_s, self.at_time, self.every_s, self.target))


def canonical_kind(kind: str) -> str:
    """The canonical name of ``kind`` (an older name maps to its new one); ValueError naming every
    kind if there is no such fault."""
    kind = kind.strip()
    if kind in FAULT_KINDS:
        return kind
    if kind in _ALIASES:
        return _ALIASES[kind]
    raise ValueError(f"unknown fault {kind!r} (unknown kind); faults: {', '.join(FAULT_KINDS)}")


def check_params(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of a ``kind`` fault, read and checked; ValueError naming what is wrong."""
    spec = FAULT_KINDS[canonical_kind(kind)]
    unknown = sorted(set(params) - set(spec.params))
    if unknown:
        known = ", ".join(spec.params) or "none"
        raise ValueError(f"fault {spec.name}: unknown parameter(s) {', '.join(unknown)}; known: {known}")
    missing = [name for name in spec.required if name not in params]
    if missing:
        raise ValueError(f"fault {spec.name} needs a {' and a '.join(missing)} ({', '.join(n + '=' for n in missing)})")
    checked = {}
    for name, value in params.items():
        try:
            checked[name] = spec.params[name](value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"fault {spec.name}: {name}: {exc}") from None
    return checked


def split_target(text: str) -> tuple[str, str]:
    """``feed.gap`` -> ("feed", "gap"); ``gap`` -> ("", "gap") (a venue with several servers aims
    a fault at one of them by this prefix)."""
    target, dot, kind = text.partition(".")
    if dot and target in FAULT_TARGETS:
        return target, kind
    return "", text


def parse_fault_spec(text: str, venue: str = "", supported: Collection[str] | None = None) -> FaultSpec:
    """Read one ``--fault`` SPEC (see the module docstring); ValueError naming what is wrong.
    With ``supported``, a kind ``venue`` does not play is refused first (:class:`UnsupportedFault`),
    before its parameters are looked at: "not played here" is the answer that helps."""
    head, *pairs = [part.strip() for part in text.strip().split(",")]
    name, _, when = head.partition("@")
    target, raw_kind = split_target(name.strip())
    try:
        kind = FAULT_KINDS[canonical_kind(raw_kind)]
    except ValueError:
        raise ValueError(f"fault {text!r}: unknown kind {raw_kind!r}; faults: {', '.join(FAULT_KINDS)}") from None
    if supported is not None:
        check_supported(kind.name, venue, supported)
    params: dict[str, Any] = {}
    if ":" in when and kind.positional and not _TIME_OF_DAY.fullmatch(when.partition("/")[0]):
        when, *values = when.split(":")  # Pulse's short form KIND@S:ARG...
        if len(values) > len(kind.positional):
            raise ValueError(f"fault {text!r}: {kind.name} takes at most {len(kind.positional)} argument(s) "
                             f"({':'.join(kind.positional)})")
        params.update((key, value) for key, value in zip(kind.positional, values, strict=False) if value)
    when, _, every = when.partition("/")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"fault {text!r}: expected key=value, got {pair!r}")
        params[key.strip()] = value.strip()
    try:
        checked = check_params(kind.name, params)
    except ValueError as exc:
        raise ValueError(f"fault {text!r}: {exc}") from None
    every_s = None
    if every:
        every_s = _when_seconds(text, every)
        if every_s <= 0:
            raise ValueError(f"fault {text!r}: the repeat interval must be positive")
    if ":" in when:
        return FaultSpec(kind.name, checked, at_time=_time_of_day(text, when), every_s=every_s, target=target)
    return FaultSpec(kind.name, checked, after_s=_when_seconds(text, when or "0"), every_s=every_s, target=target)


def _when_seconds(text: str, value: str) -> Decimal:
    try:
        return read_seconds(value)
    except ValueError as exc:
        raise ValueError(f"fault {text!r}: {exc}") from None


def _time_of_day(text: str, value: str) -> time:
    match = _TIME_OF_DAY.fullmatch(value)
    try:
        if match is None:
            raise ValueError
        hour, minute, second = match.groups()
        return time(int(hour), int(minute), int(second or 0))
    except ValueError:
        raise ValueError(f"fault {text!r}: {value!r} is not a time of day HH:MM[:SS]") from None


def seconds(value: Decimal) -> str:
    """A Decimal as plain text without exponent or trailing zeros ("30", "0.25")."""
    return format(value.normalize(), "f") if value else "0"


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return seconds(value)
    return str(value)


def format_fault_spec(spec: FaultSpec) -> str:
    """The canonical text of ``spec``; :func:`parse_fault_spec` reads it back to an equal spec."""
    if spec.at_time is not None:
        when = spec.at_time.strftime("%H:%M:%S" if spec.at_time.second else "%H:%M")
    else:
        when = _param_text(spec.after_s)
    if spec.every_s is not None:
        when += "/" + _param_text(spec.every_s)
    pairs = "".join(f",{key}={_param_text(value)}" for key, value in spec.params.items())
    return f"{spec.name}@{when}{pairs}"


#: what a fault does, in words, for the kinds whose log line says more than their spec
_LABELS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "drop": lambda p: f"connection drop for {seconds(p['duration_s'])} s",
    "reject": lambda p: f"reject of the next {p['count']} new order(s) with {p['code']}",
    "delay_acks": lambda p: f"{seconds(p['delay_ms'])} ms extra request delay for {seconds(p['duration_s'])} s",
    "halt": lambda p: f"halt of {p['symbol']} for {seconds(p['duration_s'])} s",
    "reject_cancels": lambda p: f"refusal of every cancel with {p['code']} for {seconds(p['duration_s'])} s",
}


def fault_label(spec: FaultSpec) -> str:
    """One line for logs: what happens, and when ("halt of MEBL for 5 s at 09:32:00"); a token is
    never shown."""
    label = _LABELS.get(spec.kind)
    try:
        what = label(FAULT_KINDS[spec.kind].with_defaults(spec.params)) if label is not None else None
    except KeyError:  # a parameter the words need is missing: the spec says it all
        what = None
    if what is None:
        return str(spec)
    return f"{what} at {spec.at_time.isoformat()}" if spec.at_time is not None else what


def check_supported(spec: FaultSpec | str, venue: str, supported: Collection[str]) -> None:
    """Refuse a fault ``venue`` does not play, naming the kind and the venue (a venue that took it
    silently would make a test or a drill pass without the fault ever happening)."""
    kind = spec.kind if isinstance(spec, FaultSpec) else canonical_kind(spec)
    if kind not in supported:
        raise UnsupportedFault(
            f"fault {kind!r} is not supported by venue {venue}; {venue} supports: "
            f"{', '.join(k for k in FAULT_KINDS if k in supported)}"
        )


def spec_reader(venue: str, supported: Collection[str]) -> Callable[[str], FaultSpec]:
    """The ``--fault`` reader of a sandbox serving one server: the one parser, then a refusal by
    name for a kind ``venue`` does not play or a ``TARGET.`` it has no second server for."""

    def read(text: str) -> FaultSpec:
        spec = parse_fault_spec(text, venue, supported)
        if spec.target:
            raise ValueError(f"fault {text!r}: {venue} serves one server; drop the {spec.target}. prefix")
        return spec

    return read


def fault_help(kinds: Iterable[str] | None = None, width: int = 100) -> str:
    """One help text of the kinds (all of them, or a venue's ``kinds``) and the spec syntax, for
    every sandbox's ``--fault``."""
    chosen = set(kinds) if kinds is not None else set(FAULT_KINDS)
    lines = [
        "SPEC: [TARGET.]KIND[@WHEN[/EVERY]][,key=value...]  WHEN = seconds after start (default 0) or HH:MM[:SS]",
        "(sandbox clock); /EVERY repeats; TARGET = feed|broker on a venue with both; Pulse's KIND@S:ARG... works too",
    ]
    for kind in FAULT_KINDS.values():
        if kind.name not in chosen:
            continue
        also = f" (also: {', '.join(kind.aliases)})" if kind.aliases else ""
        lines.append(textwrap.fill(f"{kind.name}: {kind.text}{also}", width, initial_indent="  ",
                                   subsequent_indent="      "))
    return "\n".join(lines)


class FaultTimers:
    """Scheduled faults (``--fault SPEC``) played on a sandbox: each at its moment (``after_s`` real
    seconds after :meth:`arm`, or ``at_time`` of day on the sandbox clock, tomorrow when today's has
    passed) and again every ``every_s`` real seconds, until :meth:`cancel`. One scheduler for every
    sandbox, so a spec means the same on each; a fault that fails is logged, and the schedule goes on."""

    def __init__(self, clock: Clock, play: Callable[[FaultSpec], object], log: logging.Logger) -> None:
        self.clock = clock
        self._play = play
        self._log = log
        # the next firing of each armed spec, by its number: a repeating one replaces its own entry
        # (a list appended at every repeat grew by one handle per period for the sandbox's life)
        self._handles: dict[int, asyncio.TimerHandle | Timer] = {}
        self._keys = itertools.count()
        self._armed = False

    def arm(self, specs: Iterable[FaultSpec]) -> None:
        """Schedule ``specs`` (call inside the running event loop)."""
        self._armed = True
        loop = asyncio.get_running_loop()
        for spec in specs:
            key = next(self._keys)
            if spec.at_time is None:
                self._handles[key] = loop.call_later(float(spec.after_s), self._fire, key, spec)
            else:
                now = self.clock.now()
                moment = dt.datetime.combine(now.date(), spec.at_time, tzinfo=now.tzinfo)
                if moment <= now:
                    moment += dt.timedelta(days=1)
                when_ns = int(moment.timestamp()) * NS_PER_S + moment.microsecond * 1000
                self._handles[key] = self.clock.call_at(when_ns, self._fire, key, spec)
            self._log.info("fault scheduled: %s", spec)

    def _fire(self, key: int, spec: FaultSpec) -> None:
        self._handles.pop(key, None)
        if not self._armed:
            return
        try:
            self._play(spec)
        except Exception:
            self._log.exception("fault %s failed", spec)
        if spec.every_s is not None and self._armed:
            self._handles[key] = asyncio.get_running_loop().call_later(float(spec.every_s), self._fire, key, spec)

    def cancel(self) -> None:
        """Stop every scheduled fault. Safe to call twice."""
        self._armed = False
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
