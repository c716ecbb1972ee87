"""Faults the paper venue can inject on purpose (``venues.<name>.options.faults``).

A strategy and the engine around it must survive what a real broker does on a bad day: a dropped
connection, a burst of rejects, slow acknowledgements, a halted symbol. The paper venue plays these
on the clock so the recovery paths (reconciliation, risk gates, halt handling) run in every paper
and simulated run instead of only in production.

Each fault starts at a time of day (``at``: ``"HH:MM"`` or ``"HH:MM:SS"``, Asia/Karachi) on every
trading day of the run; a fault whose time has already passed when the day is scheduled is skipped.
Config example::

    faults:
      - {kind: drop, at: "11:00", duration_s: 30}
      - {kind: reject, at: "11:30", count: 3, code: 9002}
      - {kind: delay_acks, at: "12:00", duration_s: 60, delay_ms: 250}
      - {kind: halt, at: "13:00", duration_s: 600, symbol: MEBL}
      - {kind: reject_cancels, at: "15:34", duration_s: 20, code: 3001}
      - "halt@13:30,duration_s=60,symbol=OGDC"     # the sandboxes' --fault SPEC text works too

The kinds and the spec text are the simulated venue's one vocabulary (:mod:`adapters.sim.faults`);
the paper venue plays :data:`SUPPORTED_FAULTS` and refuses the others by name.
"""

from __future__ import annotations

import re
from datetime import time
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from adapters.sim.faults import FAULT_KINDS, FaultSpec, check_supported, fault_label, parse_fault_spec

__all__ = [
    "SUPPORTED_FAULTS",
    "DelayAcksFault",
    "DropFault",
    "Fault",
    "HaltFault",
    "RejectCancelsFault",
    "RejectFault",
    "TimeOfDay",
]

#: the kinds of :data:`adapters.sim.faults.FAULT_KINDS` the paper venue plays
SUPPORTED_FAULTS = frozenset({"drop", "reject", "delay_acks", "halt", "reject_cancels"})

_REJECT = FAULT_KINDS["reject"].defaults
_REJECT_CANCELS = FAULT_KINDS["reject_cancels"].defaults
_TIME_OF_DAY = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?")
_DAY_S = 86_400
_AT_DESCRIPTION = (
    "Start of the fault: a time of day 'HH:MM' or 'HH:MM:SS' in Asia/Karachi (quote it in YAML), "
    "applied on every trading day of the run; skipped on a day when it has already passed."
)


def _time_of_day(value: object) -> object:
    """Accept only the documented text form, so a date, a number or an offset is an error rather
    than a silently different instant."""
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise ValueError("a time of day is always Asia/Karachi: give it without a UTC offset")
        return value
    if isinstance(value, str):
        match = _TIME_OF_DAY.fullmatch(value.strip())
        if match is not None:
            hour, minute, second = match.groups()
            return time(int(hour), int(minute), int(second or 0))
    raise ValueError(f"expected a time of day 'HH:MM' or 'HH:MM:SS' (Asia/Karachi), got {value!r}")


#: a wall-clock time of day in Asia/Karachi, written "HH:MM" or "HH:MM:SS"
TimeOfDay = Annotated[time, BeforeValidator(_time_of_day)]


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: TimeOfDay = Field(description=_AT_DESCRIPTION)

    @property
    def label(self) -> str:
        """One line for logs: what happens, and when."""
        return fault_label(self.spec())

    def spec(self) -> FaultSpec:
        """This fault in the one vocabulary (its ``--fault`` text is ``str(fault.spec())``)."""
        params = self.model_dump(exclude={"kind", "at"}, exclude_defaults=True)  # the venue has the same defaults
        return FaultSpec(getattr(self, "kind"), params, at_time=self.at)  # noqa: B009 - each kind declares it


class DropFault(_Fault):
    """The connection is lost for ``duration_s``: the venue goes on matching, nothing reaches the
    engine, requests sent meanwhile are lost, and the engine must reconcile afterwards."""

    kind: Literal["drop"] = Field("drop", description="Connection drop.")
    duration_s: Decimal = Field(gt=0, le=_DAY_S, description="Seconds until the connection is back.")



class RejectFault(_Fault):
    """The next ``count`` new orders after ``at`` are rejected by the venue, whatever they are."""

    kind: Literal["reject"] = Field("reject", description="Reject a run of new orders.")
    count: int = Field(_REJECT["count"], ge=1, description="How many new orders are rejected.")
    code: int = Field(
        _REJECT["code"], ge=1, le=9999, description="Reject code sent (default 9002: order rejected by exchange)."
    )
    reason: str = Field(_REJECT["reason"], min_length=1, description="Sentence sent with the reject.")



class DelayAcksFault(_Fault):
    """Every request sent during the window is processed ``delay_ms`` later than ``latency_ms``
    (requests stay in order: one sent later is never processed earlier)."""

    kind: Literal["delay_acks"] = Field("delay_acks", description="Slow venue answers.")
    duration_s: Decimal = Field(gt=0, le=_DAY_S, description="Length of the slow window in seconds.")
    delay_ms: Decimal = Field(gt=0, description="Extra processing delay per request, in milliseconds.")



class HaltFault(_Fault):
    """``symbol`` is halted for ``duration_s``: the venue says so (InstrumentStatus halted) and
    rejects our new orders in it with 2010; the market itself keeps running."""

    kind: Literal["halt"] = Field("halt", description="Trading halt of one symbol.")
    duration_s: Decimal = Field(gt=0, le=_DAY_S, description="Seconds until the halt is lifted.")
    symbol: str = Field(min_length=1, description="The halted instrument (must be one of the venue's).")



class RejectCancelsFault(_Fault):
    """Every cancel the venue receives during ``duration_s`` is refused with ``code`` and the order
    keeps working: what a broker does when its rate limit (3001) or its backend (9001) refuses a
    cancel. The engine's shutdown must retry until the window ends or its deadline passes."""

    kind: Literal["reject_cancels"] = Field("reject_cancels", description="Refuse every cancel for a while.")
    duration_s: Decimal = Field(gt=0, le=_DAY_S, description="Seconds during which cancels are refused.")
    code: int = Field(
        _REJECT_CANCELS["code"], ge=1, le=9999, description="Code sent with each refusal (default 3001: rate limit)."
    )
    reason: str = Field(_REJECT_CANCELS["reason"], min_length=1, description="Sentence sent with each refusal.")



def _from_spec_text(value: object) -> object:
    """A config entry written as ``--fault`` text ("drop@11:00,duration_s=30") becomes the mapping
    the models read, through the one parser; a mapping passes unchanged (configs keep working)."""
    if not isinstance(value, str):
        return value
    spec = parse_fault_spec(value)
    check_supported(spec, "paper", SUPPORTED_FAULTS)
    if spec.at_time is None or spec.every_s is not None or spec.target:
        raise ValueError(f"paper fault {value!r}: give a time of day KIND@HH:MM[:SS] (no /EVERY, no target): the "
                         "paper venue plays each fault at that time on every trading day")
    return {"kind": spec.kind, "at": spec.at_time, **spec.params}


Fault = Annotated[
    DropFault | RejectFault | DelayAcksFault | HaltFault | RejectCancelsFault,
    Field(discriminator="kind"),
    BeforeValidator(_from_spec_text),
]

