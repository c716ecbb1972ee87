"""Metrics and health endpoints: a real engine, real HTTP on 127.0.0.1, the real exposition parser.

The live test runs ``engine run`` in a subprocess on the shipped default config (paced so a scrape
can watch the session open) and scrapes it as Prometheus would.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from support import REPO, open_session, write_engine_config
from support.scrape import free_port, get, scrape, total

from engine.app import Engine
from engine.config import load_config
from engine.observe.metrics import CATALOG, exported_names
from engine.observe.server import MetricsServer
from engine.observe.snapshot import Observer
from engine.observe.timing import Log2Histogram
from engine.risk.killswitch import TradingState

# ---- the histogram behind hook and tick-to-order latency ------------------------------------------


@settings(max_examples=200)
@given(durations=st.lists(st.integers(0, 5 * 10**9), max_size=200), floor_bits=st.sampled_from([0, 4, 12]))
def test_log2_histogram_buckets_count_exactly_the_durations_at_or_under_each_bound(durations, floor_bits):
    histogram = Log2Histogram(1 << floor_bits if floor_bits else 0)
    for ns in durations:
        histogram.record(ns)
    buckets = histogram.buckets()
    assert buckets[-1] == (float("inf"), len(durations))
    for bound_s, count in buckets[:-1]:
        bound_ns = round(bound_s * 1e9)
        assert count == sum(1 for ns in durations if ns <= bound_ns), bound_ns
    assert histogram.total_ns == sum(durations)
    assert [c for _, c in buckets] == sorted(c for _, c in buckets)  # cumulative


def test_log2_histogram_refuses_a_floor_that_is_not_a_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        Log2Histogram(5000)


# ---- hook call counts: derived per book entry, exact ----------------------------------------------

COUNTING = """\
from engine import hookimpl

seen = {"book": 0, "trade": 0}

@hookimpl
def on_book(ctx, book):
    seen["book"] += 1

@hookimpl
def on_trade(ctx, trade):
    seen["trade"] += 1
"""

FAILING_LATE = """\
from engine import hookimpl

seen = {"book": 0}

@hookimpl
def on_book(ctx, book):
    seen["book"] += 1
    if seen["book"] == 500:
        raise RuntimeError("boom at the 500th book")
"""


def test_hook_histogram_counts_every_call_including_a_strategy_that_failed(tmp_path: Path):
    config = write_engine_config(tmp_path, {"counter": COUNTING, "quitter": FAILING_LATE}, market=True)
    engine = Engine(load_config(config))
    anyio.run(engine.run, backend="asyncio")
    runtime = engine.runtime
    runtime.settle_hook_counts()
    counter, quitter = runtime.runners["counter"], runtime.runners["quitter"]
    seen_counter = counter.loaded.module.seen
    assert seen_counter["book"] > 1000 and seen_counter["trade"] > 100
    assert counter.hook_stats["on_book"].calls == seen_counter["book"]
    assert counter.hook_stats["on_trade"].calls == seen_counter["trade"]
    assert quitter.state == "failed"
    assert quitter.hook_stats["on_book"].calls == 500  # not one call counted after it stopped
    assert quitter.hook_errors_by["on_book"] == 1


# ---- endpoints on an in-process engine --------------------------------------------------------------


def started_observer(tmp_path: Path, stall_seconds: str = "10") -> tuple[Engine, Observer, MetricsServer]:
    config = write_engine_config(tmp_path, {"idle": "from engine import hookimpl\n"
                                            "@hookimpl\ndef on_book(ctx, book):\n    pass\n"})
    engine = Engine(load_config(config))
    observer = Observer(engine.runtime, "simulated", Decimal(stall_seconds))
    server = MetricsServer(observer, ("127.0.0.1", 0))
    server.start()
    return engine, observer, server


def test_readyz_names_the_venue_that_is_down_while_healthz_stays_ok(tmp_path: Path):
    engine, observer, server = started_observer(tmp_path)
    try:
        status, body = get(server.url + "/readyz")
        assert (status, body.strip()) == (503, "starting: venues not connected yet")
        open_session(engine)
        observer.session_known = True
        observer.publish()
        assert get(server.url + "/readyz") == (200, "ready: session open\n")
        engine.runtime.on_venue_status("paper", "disconnected", "test drop")
        observer.publish()
        status, body = get(server.url + "/readyz")
        assert status == 503 and "venue paper is disconnected" in body
        assert get(server.url + "/healthz") == (200, "ok\n")
        series = scrape(server.url)
        assert series["engine_venue_up"] == {(("venue", "paper"),): 0.0}
        assert total(series, "engine_venue_state", venue="paper", state="disconnected") == 1.0
        assert get(server.url + "/nothing")[0] == 404
    finally:
        server.stop()


def test_readyz_says_not_ready_while_the_kill_switch_is_halted(tmp_path: Path):
    """A halted engine is alive (/healthz ok) but will not trade: /readyz says so, and why."""
    engine, observer, server = started_observer(tmp_path)
    try:
        open_session(engine)
        observer.session_known = True
        observer.publish()
        assert get(server.url + "/readyz") == (200, "ready: session open\n")
        engine.runtime.manual_trigger(TradingState.HALTED, "operator: engine halt")
        observer.publish()
        assert get(server.url + "/readyz") == (503, "kill switch halted: operator: engine halt\n")
        assert get(server.url + "/healthz") == (200, "ok\n")
    finally:
        server.stop()


def test_healthz_says_stalled_when_the_loop_stops_publishing(tmp_path: Path):
    _, observer, server = started_observer(tmp_path, stall_seconds="0.2")
    try:
        observer.publish()
        assert get(server.url + "/healthz")[0] == 200
        time.sleep(0.4)  # the loop "stalls": nothing publishes
        status, body = get(server.url + "/healthz")
        assert status == 503 and "event loop stalled" in body
        assert get(server.url + "/readyz")[0] == 503
        age = scrape(server.url)["engine_metrics_age_seconds"][()]
        assert age >= 0.4
    finally:
        server.stop()


def test_a_taken_port_refuses_to_start_naming_the_address(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_engine_config(tmp_path, {"idle": "from engine import hookimpl\n"
                                                "@hookimpl\ndef on_start(ctx):\n    pass\n"})
        config.write_text(config.read_text() + f"metrics: {{listen: '127.0.0.1:{port}'}}\n")
        done = subprocess.run([sys.executable, "-m", "engine.cli", "run", str(config)], capture_output=True,
                              text=True, cwd=REPO, timeout=60)
    assert done.returncode == 1
    assert f"metrics.listen 127.0.0.1:{port}" in done.stderr and "metrics.enabled: false" in done.stderr
    assert "Traceback" not in done.stderr


def test_metrics_listen_must_be_host_and_port(tmp_path: Path):
    config = write_engine_config(tmp_path, {"idle": "from engine import hookimpl\n"})
    config.write_text(config.read_text() + "metrics: {listen: '9310'}\n")
    done = subprocess.run([sys.executable, "-m", "engine.cli", "check", str(config)], capture_output=True,
                          text=True, cwd=REPO, timeout=60)
    assert done.returncode == 1 and "host:port" in done.stderr and "metrics" in done.stderr


# ---- the live scrape ---------------------------------------------------------------------------------


@pytest.fixture
def live_engine(tmp_path: Path):
    """The shipped config at 300x real time (09:14 -> 09:30 in about 3 s) on a free port."""
    shutil.copytree(REPO / "strategies", tmp_path / "strategies")
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text((REPO / "config.yaml").read_text() + f"\nmetrics: {{listen: '127.0.0.1:{port}'}}\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "run", str(config), "--speed", "300", "--report",
         str(tmp_path / "report.json")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if get(base + "/healthz", timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            process.kill()
            pytest.fail(f"the engine never answered /healthz: {process.communicate()[1][-2000:]}")
        yield process, base
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_live_scrape_of_a_simulated_day_moves_and_names_only_catalogue_series(live_engine, tmp_path: Path):
    process, base = live_engine
    first = scrape(base)
    deadline = time.monotonic() + 60
    later = first
    while time.monotonic() < deadline:
        time.sleep(1)
        later = scrape(base)
        if total(later, "engine_session_phase", phase="open") == 1 and total(
            later, "engine_orders_submitted_total"
        ) > 0 and total(later, "engine_events_total", kind="book") > total(first, "engine_events_total", kind="book"):
            break
    assert total(first, "engine_session_phase", phase="open") == 0  # 09:14 or pre-open at the first look
    assert total(later, "engine_session_phase", phase="open") == 1
    assert total(later, "engine_events_total", kind="book") > total(first, "engine_events_total", kind="book")
    assert total(later, "engine_events_total", kind="trade") > 0
    assert total(later, "engine_orders_submitted_total", strategy="mm") > 0
    assert total(later, "engine_venue_up", venue="paper") == 1
    assert total(later, "engine_kill_switch_state", state="active") == 1
    assert total(later, "engine_account_cash", venue="paper", kind="settled") > 0
    assert total(later, "engine_hook_duration_seconds_count", strategy="mm", hook="on_book") > 0
    assert get(base + "/readyz") == (200, "ready: session open\n")

    # every family of the catalogue is there, and nothing else carries the engine_ prefix
    _, text = get(base + "/metrics")
    exported = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    engine_names = {name for name in exported if name.startswith("engine_")}
    assert engine_names <= exported_names()
    assert {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in engine_names} >= set(CATALOG)
    for family in text_string_to_metric_families(text):  # bounded labels: never an order id or a price
        for sample in family.samples:
            assert not {"client_id", "order_id", "price"} & set(sample.labels), sample
    if shutil.which("promtool"):
        checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-2000:]
    assert (tmp_path / "report.json").exists()



def test_metrics_listen_defaults_to_loopback_on_the_documented_port(monkeypatch: pytest.MonkeyPatch):
    from engine.config import MetricsConfig

    monkeypatch.delenv("ENGINE_METRICS_LISTEN")
    assert MetricsConfig().address == ("127.0.0.1", 9310)
    monkeypatch.setenv("ENGINE_METRICS_LISTEN", "127.0.0.1:9999")
    assert MetricsConfig().address == ("127.0.0.1", 9999)
    assert MetricsConfig(listen="0.0.0.0:9310").address == ("0.0.0.0", 9310)  # written in config: wins
