"""The instruction-count modes of the benchmarks (paths.py; the wire ones: record, decode, floor) run
as README says: a benchmark nobody runs breaks unseen (bench_replay.py did once)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def bench(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize(("script", "figure"), [
    ("bench_psx_feed.py", "psx_feed_decode_path_msgs_per_s"),
    ("bench_pulse.py", "pulse_decode_msgs_per_s"),
])
def test_record_then_decode(tmp_path, script, figure):
    frames = tmp_path / "frames.txt"
    assert re.search(r"^\d+ frames -> ", bench(script, "record", str(frames)), re.M)
    assert re.search(rf"^{figure}=\d+$", bench(script, "decode", str(frames), "--frames", "500"), re.M)
    short = subprocess.run([sys.executable, str(BENCHMARKS / script), "decode", str(frames), "--frames",
                            str(10**7)], capture_output=True, text=True, timeout=300)
    assert short.returncode != 0 and "fewer than 10000000" in short.stderr


def test_the_psx_floor_mode_receives_over_loopback(tmp_path):
    frames = tmp_path / "frames.txt"
    bench("bench_psx_feed.py", "record", str(frames))
    assert re.search(r"^psx_feed_floor_msgs_per_s=\d+$",
                     bench("bench_psx_feed.py", "floor", str(frames), "--frames", "300"), re.M)
    assert re.search(r"^psx_feed_wire_msgs_per_s=\d+$",
                     bench("bench_psx_feed.py", "floor", str(frames), "--frames", "300", "--decode"), re.M)


@pytest.mark.parametrize("path", ["book", "book10", "empty", "empty10", "events", "gate", "orders"])
def test_every_instruction_count_path_runs(path):
    """benchmarks/paths.py: README's instruction counts per event, check and order cycle come from
    these; each runs briefly and exits 0 (orders checks its own cycle: acked, amended, cancelled)."""
    bench("paths.py", path, "20")
