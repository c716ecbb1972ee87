"""benchmarks/vs_nautilus.py (issue 22, part 1): its shared book never crosses and never piles up
levels the walk left (run.py's old book was crossed in 299,904 of 300,000 events, 237 levels on
average), and the script runs this engine's side without NautilusTrader installed. No timing is
asserted; the suite never installs NautilusTrader."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

from support import REPO

_spec = importlib.util.spec_from_file_location("vs_nautilus_workload", REPO / "benchmarks" / "workload.py")
assert _spec is not None and _spec.loader is not None
workload = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(workload)


def test_the_shared_book_is_never_crossed_and_stays_within_its_window():
    stream = workload.make_stream(30_000, depth=10)
    assert len(stream) == 30_000
    book = workload.replay(stream)
    assert book.crossed == 0
    assert book.max_levels <= 20  # levels the walk leaves are deleted, not kept
    assert book.mean_levels > 10  # a real book, not a near-empty one
    prices = {c.ticks for c in stream}
    assert max(prices) - min(prices) > 40  # the mid really walks
    assert sum(c.action == workload.DELETE for c in stream) > 1_000


def test_the_benchmark_orders_rest_where_the_walk_never_reaches():
    """No fill on either side: NautilusTrader's venue matches orders against the deltas, the paper
    venue against its own market, so a fill would be work only one of them does."""
    stream = workload.make_stream(30_000)
    assert workload.reachable_orders(stream, 100, 0) > 0  # at the touch the walk does reach them
    assert workload.reachable_orders(stream, 1000, 50) == 0
    assert workload.reachable_orders(stream, 100, 50) == 0


def test_the_replay_counts_a_crossed_book():
    """The check the benchmark asserts on is not vacuous."""
    Change = workload.Change
    crossed = [Change(True, 100, 5, workload.ADD), Change(False, 101, 5, workload.ADD),
               Change(True, 101, 5, workload.ADD), Change(True, 101, 0, workload.DELETE)]
    assert workload.replay(crossed).crossed == 1


def without_nautilus(tmp_path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """benchmarks/``script`` with ``args``, nautilus_trader made unimportable even where it is
    installed (a sys.modules entry of None)."""
    launcher = (
        "import runpy, sys; sys.modules['nautilus_trader'] = None; "
        f"sys.argv = {[script, *args]!r}; "
        f"runpy.run_path({str(REPO / 'benchmarks' / script)!r}, run_name='__main__')"
    )
    return subprocess.run([sys.executable, "-c", launcher], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TMPDIR": str(tmp_path)}, cwd=tmp_path)


def test_the_script_runs_this_engine_alone_without_nautilus_trader(tmp_path):
    done = without_nautilus(tmp_path, "vs_nautilus.py", "--events", "300", "--runs", "1", "--every", "100")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "nautilus_trader=absent" in out
    assert "nautilus_trader is not installed" in out
    assert "events=300 " in out and " crossed=0 " in out
    # three orders in 300 events, each after the first cancelling the one before
    assert re.search(r"^every=100 engine median=[\d,]+ runs=[\d,]+ orders=3 cancels=2$", out, re.M), out
    assert "every=100 nautilus" not in out


def test_the_replay_benchmark_runs_this_engine_alone_without_nautilus_trader(tmp_path):
    """bench_replay.py on a small recording: the replay, and the recording's cost on the event path
    (it broke once when the recorder's sink began binding on_trade and nothing ran the script)."""
    done = without_nautilus(tmp_path, "bench_replay.py", "--events", "2000", "--runs", "1", "--every", "100")
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "nautilus_trader=absent" in out and "events=2000 " in out
    assert re.search(r"^recording: \d+ ns per event on the event path; writer [\d,]+ events/s", out, re.M), out
    assert re.search(r"^every=100 replay median=[\d,]+ runs=[\d,]+ orders=20 cancels=19 load_s=", out, re.M), out
    assert "every=100 nautilus" not in out


def test_the_callgrind_mode_runs_no_floor_and_the_same_orders(tmp_path):
    """--callgrind (instruction counts): no floor runs, the same orders as a timed run."""
    done = without_nautilus(tmp_path, "vs_nautilus.py", "--events", "300", "--runs", "1", "--every", "100",
                            "--callgrind")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^every=100 engine median=[\d,]+ runs=[\d,]+ orders=3 cancels=2$", done.stdout, re.M)
    assert "floor" not in done.stdout


def test_the_dispatch_parts_benchmark_names_every_part(tmp_path):
    done = without_nautilus(tmp_path, "dispatch_parts.py", "--events", "300", "--runs", "1")
    assert done.returncode == 0, done.stderr
    parts = re.findall(r"^(\w+) +[\d.]+ ns/event", done.stdout, re.M)
    assert parts == ["loop", "apply", "lookups", "hook", "timing", "runtime"], done.stdout
