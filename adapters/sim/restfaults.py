"""The faults a REST sandbox plays on the simulated venue (Optimus, Algo724): one bookkeeping and
one request path, so both sandboxes fail alike (``5xx``, ``slow``, ``garbage``, ``outage``,
``drop_connections``, ``expire_tokens``; other kinds are counted for the sandbox to take)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable
from decimal import Decimal
from typing import Any, Protocol

from adapters.kit.wirejson import Reader, WireError
from adapters.optimus.webhooks import HttpRequest, HttpResponse
from adapters.sim.faults import canonical_kind, check_params, check_supported, read_count
from engine.venue.clock import NS_PER_S, Clock

_READ_JSON = Reader().loads

#: what ``garbage`` answers: a proxy's error page where JSON was due
GARBAGE = b"<html><body>502 Bad Gateway</body></html>"


class Token(Protocol):
    """What ``expire_tokens`` needs of a sandbox's issued token."""

    kind: str
    expires_ns: int


class HttpFaults:
    """Pending faults by kind (with the parameters of the last injection) and the outage's end.

    ``tokens`` lists the sandbox's issued tokens (``expire_tokens``); ``drop`` drops its open
    connections (``drop_connections``, ``outage``)."""

    def __init__(self, label: str, supported: Collection[str], clock: Clock, counts: Counter[str],
                 logger: logging.Logger, tokens: Callable[[], Iterable[Token]], drop: Callable[[], None]) -> None:
        self.label = label
        self.supported = supported
        self.clock = clock
        self.counts = counts
        self.log = logger
        self.tokens = tokens
        self.drop = drop
        self.pending: Counter[str] = Counter()
        self.params: dict[str, dict[str, Any]] = {}
        self.outage_until_ns = 0

    def inject(self, kind: str, count: int = 1, **params: Any) -> tuple[str, dict[str, Any]]:
        """Play or queue a fault; ValueError for a kind this sandbox does not play or a parameter
        it does not take. Returns the canonical kind and the checked parameters."""
        kind = canonical_kind(kind)
        check_supported(kind, self.label, self.supported)
        params = check_params(kind, params)
        count = read_count(count)
        now = self.clock.now_ns()
        self.counts[f"fault_{kind}"] += 1  # faults played, by kind (the stopped line shows them)
        self.log.warning("%s sandbox: fault %s x%d %s", self.label, kind, count, params or "")
        if kind == "expire_tokens":
            for token in self.tokens():
                if token.kind == "access" or params.get("refresh"):
                    token.expires_ns = min(token.expires_ns, now)
        elif kind == "drop_connections":
            self.drop()
        elif kind == "outage":
            self.outage_until_ns = now + int(Decimal(str(params.get("seconds", 1))) * NS_PER_S)
            self.drop()
        else:
            self.pending[kind] += count
            self.params[kind] = params
        return kind, params

    def take(self, kind: str) -> dict[str, Any] | None:
        """The parameters of one pending ``kind`` (spending it), None when none is pending."""
        if self.pending[kind] <= 0:
            return None
        self.pending[kind] -= 1
        return self.params.get(kind, {})

    async def serve(self, request: HttpRequest, *, control: Callable[[HttpRequest], Awaitable[HttpResponse]],
                    route: Callable[[HttpRequest], Awaitable[HttpResponse]],
                    fault_answer: Callable[[dict[str, Any], bool], HttpResponse],
                    garbage: bytes = GARBAGE) -> HttpResponse | None:
        """One request with the faults played on it: ``/sandbox/`` to ``control``; none answered
        during an outage (None: the connection is dropped); a ``5xx`` answered before ``route``
        (or after it with ``process``: the venue acted and the answer says otherwise); ``slow``
        delays the answer, ``garbage`` replaces it. ``fault_answer(params, processed)`` is the
        venue's error envelope."""
        self.counts["requests"] += 1
        if request.path.startswith("/sandbox/"):
            return await control(request)
        if self.clock.now_ns() < self.outage_until_ns:
            self.counts["aborted"] += 1
            return None
        fault_5xx = self.take("5xx")
        if fault_5xx is not None and not fault_5xx.get("process"):
            return fault_answer(fault_5xx, False)
        response = await route(request)
        if fault_5xx is not None:
            response = fault_answer(fault_5xx, True)
        slow = self.take("slow")
        if slow is not None:
            await asyncio.sleep(float(slow.get("delay_s", 1)))
        if self.take("garbage") is not None:
            return HttpResponse(200, garbage, content_type="text/html")
        return response


def json_object(body: bytes) -> dict[str, Any]:
    """A request's JSON object body ({} for none); ValueError naming what is wrong (the sandbox
    answers it in its own envelope)."""
    if not body:
        return {}
    try:
        data = _READ_JSON(body)
    except WireError:
        raise ValueError("body is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data
