"""The MidChains sandbox's market-data session (document 001 "FIX Market Data", MID-14), driven by a
bare simplefix client: the book as X "new" entries on logon, then X increments (a change = delete
+ new, trades as 269=2) and W top of book; a book rebuilt from the X stream alone equals the
venue's; MarketDataRequest V and its Y reject in everyday mode, ignored in literal mode; the CLI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from decimal import Decimal

import pytest
import simplefix
from support import REPO
from support.midchains_client import FixClient, logged_on, new_order, running, text, values

from adapters.midchains.sandbox import MidChainsSandbox
from adapters.sim.market import MarketOptions

pytestmark = pytest.mark.anyio
D = Decimal


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def entries(message: simplefix.FixMessage) -> list[dict[int, str]]:
    """An X's repeating group, each entry from its 279 (001: "must be the first field")."""
    found: list[dict[int, str]] = []
    for tag, value in message.pairs:
        number = int(tag)
        if number == 279:
            found.append({})
        if found and number in (279, 269, 278, 55, 65, 270, 271, 58):
            found[-1][number] = value.decode()
    return found


class L3Book:
    """A book kept by MDEntryID from X messages alone, as an adapter must (venue-notes 3.2)."""

    def __init__(self) -> None:
        self.orders: dict[str, tuple[str, str, Decimal, Decimal]] = {}
        self.trades: list[dict[int, str]] = []

    def apply(self, message: simplefix.FixMessage) -> None:
        for entry in entries(message):
            if entry[269] == "2":
                self.trades.append(entry)
            elif entry[279] == "0":
                self.orders[entry[278]] = (entry[55], entry[269], D(entry[270]), D(entry[271]))
            else:
                assert self.orders.pop(entry[278], None) is not None, f"delete of unknown {entry[278]}"

    def depth(self, symbol: str) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        sides: dict[str, dict[Decimal, Decimal]] = {"0": {}, "1": {}}
        for sym, side, price, size in self.orders.values():
            if sym == symbol:
                sides[side][price] = sides[side].get(price, D(0)) + size
        return (sorted(sides["0"].items(), reverse=True), sorted(sides["1"].items()))


async def test_logon_sends_the_whole_book_as_x_new_entries_then_w_per_pair() -> None:
    async with running() as venue:
        venue.place("LTCUSD", "buy", D("0.5"), D(139))
        venue.place("LTCUSD", "buy", D("0.25"), D(139))
        venue.place("LTCUSD", "sell", D("0.91"), D("141.5"))
        async with logged_on(venue, md=True) as client:
            snapshot = await client.expect("X")
            got = entries(snapshot)
            assert [e[279] for e in got] == ["0", "0", "0"] and text(snapshot, 262) == "0"
            assert [(e[269], e[270], e[271]) for e in got] == [("0", "139", "0.5"), ("0", "139", "0.25"),
                                                               ("1", "141.5", "0.91")]
            assert all(e[55] == "LTCUSD" and e[278].isdigit() and len(e[58]) == 14 and 65 not in e for e in got)
            top = await client.expect("W", where=lambda m: text(m, 55) == "LTCUSD")
            assert text(top, 262) == "0" and text(top, 268) == "2"
            assert values(top, 269) == ["0", "1"] and values(top, 270) == ["139", "141.5"]
            assert values(top, 271) == ["0.75", "0.91"]
            others = [await client.expect("W") for _ in range(3)]  # every pair, empty books too
            assert {text(m, 55) for m in others} == {"BTCUSD", "ETHUSD", "BCHUSD"}
            assert all(text(m, 268) == "0" for m in others)


async def test_increments_are_deletes_and_news_and_trades_are_269_2() -> None:
    async with running() as venue, logged_on(venue, md=True) as client:
        for _ in range(4):
            await client.expect("W")
        venue.place("LTCUSD", "sell", D("0.3"), D(141))
        added = entries(await client.expect("X"))
        assert [(e[279], e[269], e[270], e[271]) for e in added] == [("0", "1", "141", "0.3")]
        order_id = added[0][278]
        top = await client.expect("W")
        assert values(top, 269) == ["1"]
        venue.place("LTCUSD", "buy", D("0.1"), D(141))  # an IOC taking part of the offer
        changed = entries(await client.expect("X"))
        assert [(e[279], e[269]) for e in changed] == [("2", "1"), ("0", "1"), ("0", "2")]
        assert changed[0][278] == changed[1][278] == order_id and changed[1][271] == "0.2"
        assert (changed[2][270], changed[2][271], changed[2][58]) == ("141", "0.1", added[0][58])
        after = await client.expect("W")
        assert values(after, 269) == ["1", "2"] and values(after, 271) == ["0.2", "0.1"]


async def test_a_clients_own_orders_appear_in_market_data_with_their_order_id() -> None:
    async with running() as venue, logged_on(venue) as orders, logged_on(venue, md=True) as feed:
        for _ in range(4):
            await feed.expect("W")
        orders.send("D", *new_order("MD1", qty=5, base=10, price="138"))
        report = await orders.expect("8")
        entry = entries(await feed.expect("X"))[0]
        assert entry[58] == text(report, 37) and (entry[270], entry[271]) == ("138", "0.5")


async def test_the_book_rebuilt_from_x_alone_matches_the_venue_under_a_live_market() -> None:
    market = MarketOptions(enabled=True, step_interval_s=D("0.02"), aggressive_interval_s=D("0.05"),
                           size_unit_shares=1, circuit_band_pct=D("0.5"))
    async with MidChainsSandbox(market=market, seed=7) as venue, logged_on(venue, md=True) as client:
        book = L3Book()
        deadline = asyncio.get_running_loop().time() + 1.5
        while asyncio.get_running_loop().time() < deadline:
            message = await client.recv()
            if text(message, 35) == "X":
                book.apply(message)
        venue.sim.stop()  # quiet the market, then take what is still on the wire
        with pytest.raises(TimeoutError):
            while True:
                message = await client.recv(timeout=0.3)
                if text(message, 35) == "X":
                    book.apply(message)
        assert book.trades, "the live market traded"
        for symbol in ("LTCUSD", "BTCUSD"):
            assert book.depth(symbol) == venue.depth(symbol)


async def test_everyday_answers_a_market_data_request_and_rejects_an_unknown_symbol() -> None:
    async with running() as venue, logged_on(venue, md=True) as client:
        for _ in range(4):
            await client.expect("W")
        client.send("V", (262, "REQ-1"), (263, "1"), (264, "1"), (146, 2), (55, "LTCUSD"), (55, "DOGEUSD"))
        top = await client.expect("W")
        assert text(top, 262) == "REQ-1" and text(top, 55) == "LTCUSD"
        reject = await client.expect("Y")
        assert text(reject, 262) == "REQ-1" and text(reject, 58) == "unknown symbol DOGEUSD"
        assert text(reject, 281) == "0"


async def test_literal_mode_ignores_a_market_data_request_as_001_says() -> None:
    async with running(literal=True) as venue, logged_on(venue, md=True) as client:
        for _ in range(4):
            await client.expect("W")
        client.send("V", (262, "REQ-1"), (263, "1"), (264, "1"), (146, 1), (55, "DOGEUSD"))
        client.send("1", (112, "AFTER"))
        answer = await client.recv()
        assert text(answer, 35) == "0" and text(answer, 112) == "AFTER"
        assert venue.counters["md.ignored"] == 1


async def test_market_data_and_order_entry_number_their_messages_apart() -> None:
    async with running() as venue, logged_on(venue) as orders, logged_on(venue, md=True) as feed:
        orders.send("D", *new_order("SEQ1", price="100"))
        report = await orders.expect("8")
        assert text(report, 34) == "2"
        messages = [await feed.recv() for _ in range(5)]
        assert [text(m, 34) for m in messages] == ["2", "3", "4", "5", "6"]
        assert venue.sessions("md")["YOURSENDCOMP"][0] > venue.sessions("oe")["YOURSENDCOMP"][0]


async def test_a_feed_gap_of_one_pair_is_resent_on_request() -> None:
    async with running() as venue, logged_on(venue, md=True) as client:
        for _ in range(4):
            await client.expect("W")
        venue.gap(count=1, target="feed", instrument="LTCUSD")
        venue.place("LTCUSD", "buy", D(1), D(100))
        top = await client.expect("W")
        assert text(top, 34) == "7"  # the X (6) was lost
        client.send("2", (7, 6), (16, 6))
        resent = await client.expect("X")
        assert text(resent, 43) == "Y" and text(resent, 34) == "6"


# ---- the command line ----------------------------------------------------------------------------------


def test_the_command_serves_both_ports_and_stops_after_its_duration() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "sandbox", "midchains", "--port", "0", "--md-port", "0", "--no-market",
         "--duration", "3", "--log-level", "WARNING", "--fault", "feed.gap@0.5,count=1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("midchains sandbox listening: order entry 127.0.0.1:"), line
        port = int(line.split("order entry 127.0.0.1:")[1].split(",")[0])

        async def logon() -> str | None:
            client = await FixClient(port).connect()
            answer = await client.logon()
            client.close()
            return text(answer, 35)

        import anyio

        assert anyio.run(logon) == "A"
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    stopped = out.strip().splitlines()[-1]
    assert stopped.startswith("midchains sandbox: stopped;") and '"oe.logons": 1' in stopped
    assert "YOURSENDCOMP" not in out + err  # the SenderCompID is the credential: never printed


async def test_run_points_both_midchains_adapters_at_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """``engine sandbox midchains --run CONFIG``: the link names the order-entry and market-data
    adapters' host, ports and CompIDs; the SenderCompID is generated and scrubbed from logs."""
    from adapters.midchains.sandbox import COMMAND

    monkeypatch.delenv("MIDCHAINS_SANDBOX_SENDER_COMP_ID", raising=False)
    args = COMMAND.build_parser().parse_args(["--no-market", "--pairs", "LTCUSD"])
    async with COMMAND.start(args, REPO / "config.pulse-sandbox.yaml") as link:
        orders, feed = link.adapter_options["midchains_fix"], link.adapter_options["midchains_fix_md"]
        assert link.order_adapter == "midchains_fix" and orders["tls"] is False
        assert orders["port"] != feed["port"] and orders["host"] == feed["host"] == "127.0.0.1"
        assert orders["sender_comp_id"] in link.secret_values and orders["target_comp_id"] == "MIDCDEV1"
        client = await FixClient(int(orders["port"]), sender=str(orders["sender_comp_id"])).connect()
        assert text(await client.logon(), 35) == "A"
        client.close()


async def test_after_a_feed_drop_the_next_logon_sends_a_fresh_snapshot() -> None:
    async with running() as venue:
        venue.place("LTCUSD", "sell", D(1), D(150))
        first = await FixClient(venue.md_port).connect()
        await first.logon()
        await first.expect("X")
        venue.drop(target="feed")
        venue.place("LTCUSD", "sell", D(2), D(151))  # while nobody listens: not queued, part of the next snapshot
        await first.closed()
        again = await FixClient(venue.md_port, seq=first.seq).connect()
        await again.logon()
        snapshot = entries(await again.expect("X"))
        assert [(e[270], e[271]) for e in snapshot] == [("150", "1"), ("151", "2")]
        assert venue.counters.get("md.queued_delivered", 0) == 0
        again.close()


async def test_a_replace_that_keeps_priority_is_a_delete_and_a_new_of_the_same_entry() -> None:
    async with running() as venue, logged_on(venue) as orders, logged_on(venue, md=True) as feed:
        for _ in range(4):
            await feed.expect("W")
        orders.send("D", *new_order("K1", qty=5, base=10, price="120"))
        await orders.expect("8")
        added = entries(await feed.expect("X"))[0]
        orders.send("G", (11, "K2"), (38, 3), (40, "2"), (41, "K1"), (44, "120"), (54, "1"), (55, "LTCUSD"),
                    (43229, 10))
        await orders.expect("8")
        changed = entries(await feed.expect("X"))
        assert [(e[279], e[278], e[271]) for e in changed] == [("2", added[278], "0.5"), ("0", added[278], "0.3")]


async def test_the_daily_reset_restarts_the_feed_at_one_with_a_snapshot() -> None:
    async with running() as venue:
        venue.place("LTCUSD", "buy", D(1), D(130))
        client = await FixClient(venue.md_port).connect()
        await client.logon()
        venue.day_reset()
        logout = await client.expect("5")
        assert text(logout, 58) == "Session closed"
        client.send("5")
        await client.closed()
        fresh = await FixClient(venue.md_port, seq=1).connect()
        logon = await fresh.logon()
        assert text(logon, 34) == "1"
        snapshot = await fresh.expect("X")
        assert text(snapshot, 34) == "2" and entries(snapshot)[0][270] == "130"
        fresh.close()
