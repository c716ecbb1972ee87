"""The MidChains sandbox over loopback, measured from a bare simplefix client in the same process
(so the figures include the client's parsing; they say how fast a test or an adapter can be fed,
not what the venue could do).

Run: ``python benchmarks/bench_midchains_sandbox.py`` (about 5 s). No synthetic market; the rate
limits are raised (001: "This can be increased as needed") so the figures are not the throttle's.
Prints ``key=value`` lines:

- ``midchains_md_x_per_s``: book changes (a participant's resting order each) turned into X
  messages, written and read back, per second, over 5000 changes with one market-data session;
- ``midchains_order_rtt_p50_us`` / ``..._p99_us``: D of a passive limit order to its ER NEW read by
  the client, one at a time, each order cancelled (F -> ER 150=4) before the next; 300 orders.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.midchains_client import FixClient, new_order, text

from adapters.midchains.sandbox import MidChainsSandbox

CHANGES = 5000
ORDERS = 300


async def main() -> None:
    async with MidChainsSandbox(message_rate=10**6, order_rate=10**6) as venue:
        feed = await FixClient(venue.md_port).connect()
        await feed.logon()
        for _ in range(len(venue.pairs)):
            await feed.expect("W")
        started = time.perf_counter()
        for i in range(CHANGES):
            venue.place("LTCUSD", "buy", Decimal("0.1"), Decimal(100) - Decimal(i % 50) / 100)
        seen = 0
        while seen < CHANGES:
            if text(await feed.recv(), 35) == "X":
                seen += 1
        print(f"midchains_md_x_per_s={CHANGES / (time.perf_counter() - started):.0f}")
        feed.close()
        orders = await FixClient(venue.port).connect()
        await orders.logon()
        rtts = []
        for i in range(ORDERS):
            sent = time.perf_counter()
            orders.send("D", *new_order(f"B{i}", price="90"))
            await orders.expect("8")
            rtts.append(time.perf_counter() - sent)
            orders.send("F", (11, f"C{i}"), (38, 1), (41, f"B{i}"), (54, "1"), (55, "LTCUSD"))
            await orders.expect("8")
        rtts.sort()
        print(f"midchains_order_rtt_p50_us={statistics.median(rtts) * 1e6:.0f}")
        print(f"midchains_order_rtt_p99_us={rtts[int(len(rtts) * 0.99) - 1] * 1e6:.0f}")
        orders.close()


if __name__ == "__main__":
    asyncio.run(main())
