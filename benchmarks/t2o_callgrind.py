"""Instructions of tick-to-order alone, for callgrind. Not a test.

    PYTHONHASHSEED=0 valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file=/dev/null \\
        python benchmarks/t2o_callgrind.py 2000      # then 6000: (I(6000) - I(2000)) / 40 per order

``benchmarks/run.py``'s latency loop (the strategy amends on every 100th book event, the paper
venue answers between ticks), with callgrind collecting only from a book event that will order
until the adapter is handed the order: ``--collect-atstart=no`` and the ``CALLGRIND_TOGGLE_COLLECT``
client request, issued through a three-line C helper this script compiles with ``cc`` into a
temporary folder (it needs a C compiler and valgrind's ``callgrind.h``, and says so when either is
missing). Outside valgrind the request does nothing.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import run  # noqa: E402

HELPER = "#include <valgrind/callgrind.h>\nvoid toggle(void) { CALLGRIND_TOGGLE_COLLECT; }\n"
EVERY = 100  # benchmarks/bench_strategy.py's default: an order message every 100 book events


def toggler() -> Any:
    """The compiled helper's ``toggle``, or exit naming what is missing."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise SystemExit("t2o_callgrind.py needs a C compiler (cc) to build its callgrind helper")
    folder = Path(tempfile.mkdtemp(prefix="t2o-callgrind-"))
    (folder / "toggle.c").write_text(HELPER)
    built = subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(folder / "toggle.so"),
                            str(folder / "toggle.c")], capture_output=True, text=True)
    if built.returncode:
        raise SystemExit(f"t2o_callgrind.py could not build its helper (is valgrind's callgrind.h "
                         f"installed?):\n{built.stderr}")
    return ctypes.CDLL(str(folder / "toggle.so")).toggle


def main(n: int) -> None:
    toggle = toggler()
    events = run.make_events(n)
    engine = run.build(1)
    adapter = engine.adapters["paper"]
    collecting = [False]
    orders = [0]
    submit, amend = adapter.submit, adapter.amend

    def handed() -> None:
        if collecting[0]:
            toggle()
            collecting[0] = False
            orders[0] += 1

    def timed_submit(order: Any) -> None:
        handed()
        submit(order)

    def timed_amend(order: Any, price: Any, qty: Any) -> None:
        handed()
        amend(order, price, qty)

    adapter.submit, adapter.amend = timed_submit, timed_amend
    on_book = engine.runtime.on_book
    clock = engine.clock
    for i, event in enumerate(events, 1):
        if not i % EVERY:
            toggle()
            collecting[0] = True
        on_book(event)
        if collecting[0]:  # the event ordered nothing after all
            toggle()
            collecting[0] = False
        if not (i - 1) % 100:  # the venue answers between ticks, as in run.py
            clock.set_time(clock.now_ns() + 1_000_000)
            while clock.advance(clock.now_ns()):
                pass
    print(f"orders={orders[0]}", file=sys.stderr)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
