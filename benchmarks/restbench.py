"""What the REST order-entry benchmarks (bench_optimus.py, bench_algo724.py) share: the sandbox in
its own process (started with ``--port 0``, its URL read from its first line) and the percentile."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_sandbox(name: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """``python -m adapters.NAME.sandbox --port 0 ARGS`` and the base URL its first line names."""
    process = subprocess.Popen(
        [sys.executable, "-m", f"adapters.{name}.sandbox", "--port", "0", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=os.environ.copy(),
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith(f"{name} sandbox: http"):
        raise SystemExit(f"sandbox did not start: {line!r}")
    return process, line.split()[2]


async def stop_sandbox(sandbox: Any, process: subprocess.Popen[str] | None) -> None:
    """Stop the in-process sandbox or end the sandbox's process, whichever ran."""
    if sandbox is not None:
        await sandbox.stop()
    if process is not None:
        process.terminate()
        process.wait(timeout=10)
