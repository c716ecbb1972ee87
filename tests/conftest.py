"""Fixtures and hooks for the whole suite; helpers live in ``support`` (tests/support/), never here.

Every test is marked by the folder it sits in (``unit``, ``protocol``, ``e2e``, ``conformance``), so
``pytest -m unit`` selects by kind and a new file cannot go unmarked. A test that carries one of
these marks itself (a subprocess test in a mostly in-process file) keeps its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from support import KINDS, could_select, engine_in

from engine.app import Engine

TESTS = Path(__file__).resolve().parent

# Property tests judge behaviour, never speed: Hypothesis's default 200 ms deadline per example
# failed a book property test in a loaded run (four workers beside two CPU burners) that passes in
# 0.4 s alone. A test's own @settings still sets its example count.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

# Engines started by the tests (in process and in subprocesses, which inherit this) take a free
# port instead of the fixed default, so a suite never collides with a running engine or another
# suite. Tests of the default itself clear it.
os.environ["ENGINE_METRICS_LISTEN"] = "127.0.0.1:0"


def kind_of(path: Path) -> str | None:
    """The kind a test file or folder has by its place: the first folder below tests/, if it is
    one of ``KINDS``."""
    try:
        parts = path.resolve().relative_to(TESTS).parts
    except ValueError:
        return None
    return parts[0] if parts and parts[0] in KINDS else None


#: the order tests start in: the long ones first, so that with pytest-xdist the last test to start
#: is a short one and no worker is left alone with a long run at the end
START_ORDER = {"e2e": 0, "conformance": 1, "protocol": 2, "unit": 3}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with its folder's kind unless it names a kind itself; start the slow kinds first."""
    for item in items:
        if any(item.get_closest_marker(kind) for kind in KINDS):
            continue
        kind = kind_of(item.path)
        if kind is not None:
            item.add_marker(getattr(pytest.mark, kind))
    items.sort(key=lambda item: START_ORDER.get(next((k for k in KINDS if item.get_closest_marker(k)), ""), 4))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """``pytest -m unit`` does not import the other folders' modules (a third of its time otherwise).

    A folder is left out only when the ``-m`` expression is false for its kind whatever any other
    marker says. Only tests in tests/unit may name another kind themselves (tests/unit/test_layout.py
    holds the others to that), so tests/unit itself is always collected."""
    kind = kind_of(collection_path)
    if kind is None or kind == "unit" or not config.option.markexpr:
        return None
    return None if could_select(config.option.markexpr, kind) else True


@pytest.fixture
def build_engine(tmp_path):
    """``build_engine(strategies, **kwargs)``: :func:`support.engine_in` in the test's tmp_path."""

    def build(strategies: dict[str, str] | None = None, **kwargs) -> Engine:
        return engine_in(tmp_path, strategies, **kwargs)

    return build
