"""The conformance suite's venues: one harness per adapter, each test run against every one.

``venue`` is an order-entry harness (paper, optimus, pulse), ``feed`` a market-data harness
(psx_feed, pulse, bus ...), each in every venue mode of ``harness.MODES`` (test ids ``[pulse-literal]``); a
harness that does not list a mode in its ``modes`` is skipped there, with a reason naming it.
Adding a venue: write ``harness_<venue>.py`` and name its class below. Every test
runs with every logger at DEBUG; at the end no credential the harness gave the venue (nor any
8-character piece of one) may appear in any captured log line, and the sinks standing in for the
runtime must have recorded no anomaly (an event for an unknown order, an illegal transition, an
overfill)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from conformance.harness import EVERYDAY, LITERAL, MODES, MarketDataHarness, OrderEntryHarness
from conformance.harness_algo724 import Algo724Harness
from conformance.harness_algo724_streams import Algo724StreamsHarness
from conformance.harness_bus import BusHarness
from conformance.harness_midchains import MidChainsHarness
from conformance.harness_midchains_md import MidChainsFeedHarness
from conformance.harness_midchains_ws import MidChainsWsFeedHarness, MidChainsWsHarness
from conformance.harness_optimus import OptimusHarness
from conformance.harness_paper import PaperHarness
from conformance.harness_psx_feed import PsxFeedHarness
from conformance.harness_pulse import PulseFeedHarness, PulseHarness

ORDER_ENTRY: dict[str, type[OrderEntryHarness]] = {
    "midchains": MidChainsHarness,
    "midchains_ws": MidChainsWsHarness,
    "algo724": Algo724Harness,
    "paper": PaperHarness,
    "optimus": OptimusHarness,
    "pulse": PulseHarness,
}
MARKET_DATA: dict[str, type[MarketDataHarness]] = {
    "midchains": MidChainsFeedHarness,
    "midchains_ws": MidChainsWsFeedHarness,
    "algo724": Algo724StreamsHarness,
    "bus": BusHarness,
    "psx_feed": PsxFeedHarness,
    "pulse": PulseFeedHarness,
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # websockets and the HTTP servers run on asyncio


def pieces(secret: str, size: int = 8) -> set[str]:
    """Every ``size``-character piece of a secret: an elided log line may show part of one."""
    if len(secret) <= size:
        return {secret}
    return {secret[i:i + size] for i in range(len(secret) - size + 1)}


def leaked(text: str, secrets: tuple[str, ...]) -> list[str]:
    return sorted(piece for secret in secrets for piece in pieces(secret) if piece in text)


def combinations(harnesses: dict[str, type]) -> list[tuple[str, str]]:
    return [(name, mode) for name in sorted(harnesses) for mode in MODES]


def ids(pair: tuple[str, str]) -> str:
    return f"{pair[0]}-{pair[1]}"


def build(cls: type, name: str, mode: str, tmp_path, test: str) -> object:
    """The harness in ``mode``, or a skip naming the harness when it has no such mode yet, or when
    the venue's document does not give what ``test`` needs (its ``literal_limits``)."""
    if mode not in cls.modes:
        pytest.skip(cls.mode_skips.get(mode) or f"{cls.__name__} ({name}) has no {mode} mode yet")
    if mode == LITERAL and test in cls.literal_limits:
        pytest.skip(f"{name} literal: {cls.literal_limits[test]}")
    return cls(tmp_path) if mode == EVERYDAY else cls(tmp_path, mode=mode)


@pytest.fixture(params=combinations(ORDER_ENTRY), ids=ids)
def venue(request: pytest.FixtureRequest, tmp_path, caplog: pytest.LogCaptureFixture) -> Iterator[OrderEntryHarness]:
    caplog.set_level(logging.DEBUG)
    harness: OrderEntryHarness = build(ORDER_ENTRY[request.param[0]], *request.param, tmp_path,  # type: ignore[assignment]
                                       request.node.originalname)
    yield harness
    assert not leaked(caplog.text, harness.secrets), "a credential reached the log"
    errors = [error for sink in harness.sinks for error in sink.errors]
    assert errors == [], errors


@pytest.fixture(params=combinations(MARKET_DATA), ids=ids)
def feed(request: pytest.FixtureRequest, tmp_path, caplog: pytest.LogCaptureFixture) -> Iterator[MarketDataHarness]:
    caplog.set_level(logging.DEBUG)
    harness: MarketDataHarness = build(MARKET_DATA[request.param[0]], *request.param, tmp_path,  # type: ignore[assignment]
                                       request.node.originalname)
    # what the adapter is known to do otherwise (a harness's ``known_gaps``): a strict xfail naming why
    gap = getattr(harness, "known_gaps", {}).get(request.node.originalname)
    if gap is not None:
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=f"{request.param[0]}: {gap}"))
    yield harness
    assert not leaked(caplog.text, harness.secrets), "a credential reached the log"
    assert harness.sink.errors == [], harness.sink.errors
