"""The MidChains sandbox's order entry, driven by a bare simplefix client (tests/support/midchains_client.py):
logon, the order lifecycle of document 001 (new, partial, fill, cancel, replace, reject, the market
buy refusal of MID-5), the FractionBase rescaling of 001's example, literal vs everyday answers to F/G."""

from __future__ import annotations

import ssl
from decimal import Decimal
from pathlib import Path

import pytest
from support.midchains_client import CLIENT, GATEWAY, FixClient, logged_on, new_order, running, text
from support.tls import self_signed

from adapters.midchains.sandbox import MidChainsSandbox

pytestmark = pytest.mark.anyio
D = Decimal


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# ---- logon ------------------------------------------------------------------------------------------


async def test_logon_is_answered_with_98_0_and_the_clients_heartbeat_interval() -> None:
    async with running() as venue:
        client = await FixClient(venue.port).connect()
        answer = await client.logon(heartbeat_s=45)
        assert text(answer, 49) == GATEWAY and text(answer, 56) == CLIENT
        assert text(answer, 98) == "0" and text(answer, 108) == "45" and text(answer, 34) == "1"
        client.close()


async def test_a_logon_from_an_unknown_sender_is_logged_out_without_echoing_it() -> None:
    async with running() as venue:
        client = await FixClient(venue.port, sender="SOMEONE-ELSE").connect()
        client.send("A", (98, 0), (108, 30))
        answer = await client.recv()
        assert text(answer, 35) == "5" and text(answer, 58) == "unknown SenderCompID"
        assert b"SOMEONE-ELSE" not in answer.encode().split(b"\x0156=")[0]
        await client.closed()
        assert venue.counters["oe.refused_logons"] == 1


async def test_a_logon_without_heartbtint_is_refused() -> None:
    async with running() as venue:
        client = await FixClient(venue.port).connect()
        client.send("A", (98, 0))
        answer = await client.recv()
        assert text(answer, 35) == "5" and "108" in (text(answer, 58) or "")


async def test_a_first_message_other_than_logon_closes_the_socket() -> None:
    async with running() as venue:
        client = await FixClient(venue.port).connect()
        client.send("D", *new_order("X1"))
        await client.closed()
        assert venue.orders() == []


# ---- new orders -------------------------------------------------------------------------------------


async def test_the_documents_limit_buy_rests_and_is_reported_in_the_pairs_fraction_base() -> None:
    """001's D sends 38=1 with 43229=10 (0.1 LTC, MID-3); its ER NEW answers 38=1000 43229=10000."""
    async with running() as venue, logged_on(venue) as client:
        client.send("D", *new_order("43637618552482556000", qty=1, base=10, price="150"))
        report = await client.expect("8")
        assert text(report, 150) == "0" and text(report, 39) == "0"
        assert text(report, 38) == "1000" and text(report, 43229) == "10000" and text(report, 151) == "1000"
        assert text(report, 14) == "0" and text(report, 6) == "0.0" and text(report, 44) == "150.0"
        assert text(report, 11) == "43637618552482556000" and text(report, 20) == "0"
        assert text(report, 40) == "2" and text(report, 54) == "1" and text(report, 55) == "LTCUSD"
        assert text(report, 59) == "1" and text(report, 60) and text(report, 17)
        assert len(text(report, 37) or "") == 14
        assert venue.depth("LTCUSD")[0] == [(D(150), D("0.1"))]


async def test_reports_use_the_orders_own_fraction_base_when_configured() -> None:
    async with running(report_fraction_base="order") as venue, logged_on(venue) as client:
        client.send("D", *new_order("A1", qty=1, base=10, price="150"))
        report = await client.expect("8")
        assert text(report, 38) == "1" and text(report, 43229) == "10"


async def test_a_crossing_order_is_filled_with_liquidity_flags_and_the_fill_fields() -> None:
    async with running() as venue, logged_on(venue) as client:
        venue.place("LTCUSD", "sell", D("0.1"), D("141.78"))
        client.send("D", *new_order("B1", qty=1, base=10, price="150"))
        new = await client.expect("8")
        fill = await client.expect("8")
        assert text(new, 150) == "0"
        assert text(fill, 150) == "2" and text(fill, 39) == "2"
        assert text(fill, 31) == "141.78" and text(fill, 32) == "1000" and text(fill, 14) == "1000"
        assert text(fill, 151) == "0" and text(fill, 6) == "141.78"
        assert (text(fill, 43211), text(fill, 43212), text(fill, 43214)) == ("CROX", "MIDC", "T")
        assert (text(fill, 17) or "").startswith(text(fill, 37) + "2_")  # 001: <OrderID>2_<match>


async def test_a_partial_fill_then_the_rest_reports_maker_liquidity() -> None:
    async with running() as venue, logged_on(venue) as client:
        client.send("D", *new_order("P1", side="2", qty=3000, base=10000, price="140"))
        await client.expect("8")
        venue.place("LTCUSD", "buy", D("0.1"), D(140), tif=venue_ioc())
        partial = await client.expect("8")
        assert text(partial, 150) == "1" and text(partial, 39) == "1"
        assert text(partial, 32) == "1000" and text(partial, 151) == "2000" and text(partial, 43214) == "P"
        venue.place("LTCUSD", "buy", D("0.2"), D(140), tif=venue_ioc())
        filled = await client.expect("8")
        assert text(filled, 39) == "2" and text(filled, 14) == "3000" and text(filled, 151) == "0"
        assert text(partial, 17) != text(filled, 17)


def venue_ioc():  # type: ignore[no-untyped-def]
    from engine.model import TimeInForce

    return TimeInForce.IOC


async def test_an_ioc_remainder_is_cancelled_after_its_fill() -> None:
    async with running() as venue, logged_on(venue) as client:
        venue.place("LTCUSD", "sell", D("0.1"), D(140))
        client.send("D", *new_order("I1", qty=3, base=10, price="140", tif="3"))
        kinds = [(text(m, 150), text(m, 39)) for m in [await client.expect("8") for _ in range(3)]]
        assert kinds == [("0", "0"), ("1", "1"), ("4", "4")]


async def test_a_market_buy_is_refused_as_mid_5_says() -> None:
    async with running() as venue, logged_on(venue) as client:
        venue.place("LTCUSD", "sell", D(1), D(140))
        client.send("D", *new_order("M1", ord_type="1", price=None, tif="3"))
        report = await client.expect("8")
        assert text(report, 39) == "8" and text(report, 150) == "8"
        assert text(report, 58) == "market buy not supported"
        assert venue.depth("LTCUSD")[1] == [(D(140), D(1))]


async def test_a_market_sell_trades_against_the_bids() -> None:
    async with running() as venue, logged_on(venue) as client:
        venue.place("LTCUSD", "buy", D(1), D(139))
        client.send("D", *new_order("M2", side="2", qty=5000, base=10000, ord_type="1", price=None, tif="3"))
        await client.expect("8")
        fill = await client.expect("8")
        assert text(fill, 39) == "2" and text(fill, 31) == "139.0" and text(fill, 40) == "1"


@pytest.mark.parametrize(("fields", "why"), [
    (new_order("R1", symbol="DOGEUSD"), "unknown symbol"),
    (new_order("R2", price=None), "Price (44) is required"),
    (new_order("R3", tif="2"), "TimeInForce (59) 2 is not supported"),
    (new_order("R4", qty=1, base=1_000_000), "finer than"),
    (new_order("R5", tif="6"), "ExpireTime (126) is required"),
    (tuple(f for f in new_order("R6") if f[0] != 21), "HandlInst (21) is required"),
    (tuple(f for f in new_order("R7") if f[0] != 43229), "FractionBase (43229) is required"),
])
async def test_an_invalid_order_is_rejected_with_a_text_naming_the_problem(fields: tuple, why: str) -> None:
    async with running() as venue, logged_on(venue) as client:
        client.send("D", *fields)
        report = await client.expect("8")
        assert text(report, 39) == "8" and why in (text(report, 58) or "")
        assert text(report, 11) == fields[0][1]


async def test_a_duplicate_clordid_is_refused() -> None:
    async with running() as venue, logged_on(venue) as client:
        client.send("D", *new_order("DUP"))
        await client.expect("8")
        client.send("D", *new_order("DUP"))
        report = await client.expect("8")
        assert text(report, 39) == "8" and text(report, 58) == "duplicate ClOrdID"
        assert len(venue.orders()) == 1


async def test_a_gtd_order_expires_at_its_expire_time() -> None:
    from datetime import UTC, datetime, timedelta

    async with running() as venue, logged_on(venue) as client:
        soon = datetime.now(UTC) + timedelta(seconds=1)
        stamp = f"{soon:%Y%m%d-%H:%M:%S}.{soon.microsecond // 1000:03d}"
        client.send("D", *new_order("G1", tif="6", extra=((126, stamp),)))
        new = await client.expect("8")
        assert text(new, 126) == stamp
        expired = await client.expect("8", timeout=5)
        assert text(expired, 150) == "C" and text(expired, 39) == "C"


# ---- cancel and replace ----------------------------------------------------------------------------


async def test_a_cancel_is_answered_with_an_er_150_4_naming_both_clordids() -> None:
    async with running() as venue, logged_on(venue) as client:
        client.send("D", *new_order("C1"))
        new = await client.expect("8")
        client.send("F", (11, "C2"), (21, "1"), (38, 1), (40, "2"), (41, "C1"), (44, "150"), (54, "1"),
                    (55, "LTCUSD"), (59, "1"), (43229, 10))
        answer = await client.recv()
        assert text(answer, 35) == "8"  # everyday: the report alone (MID-4)
        assert (text(answer, 150), text(answer, 39)) == ("4", "4")
        assert (text(answer, 11), text(answer, 41)) == ("C2", "C1") and text(answer, 37) == text(new, 37)
        assert venue.depth("LTCUSD")[0] == []


async def test_literal_mode_echoes_the_cancel_first_as_the_document_shows() -> None:
    async with running(literal=True) as venue, logged_on(venue) as client:
        client.send("D", *new_order("C1"))
        await client.expect("8")
        client.send("F", (11, "C2"), (38, 1), (41, "C1"), (54, "1"), (55, "LTCUSD"), (43229, 10))
        echo = await client.recv()
        assert text(echo, 35) == "F" and text(echo, 41) == "C1" and text(echo, 11) == "C2"
        report = await client.recv()
        assert text(report, 35) == "8" and text(report, 150) == "4"


async def test_cancelling_an_unknown_order_is_a_9_with_434_1() -> None:
    async with running() as venue, logged_on(venue) as client:
        client.send("F", (11, "C9"), (38, 1), (41, "NOPE"), (54, "1"), (55, "LTCUSD"))
        reject = await client.expect("9")
        assert text(reject, 434) == "1" and text(reject, 102) == "1" and text(reject, 41) == "NOPE"
        assert text(reject, 11) == "C9" and text(reject, 17) and text(reject, 58) == "unknown order"


async def test_cancelling_a_filled_order_is_refused_too_late() -> None:
    async with running() as venue, logged_on(venue) as client:
        venue.place("LTCUSD", "sell", D("0.1"), D(140))
        client.send("D", *new_order("F1", qty=1, base=10, price="140"))
        await client.expect("8", where=lambda m: text(m, 39) == "2")
        client.send("F", (11, "F2"), (38, 1), (41, "F1"), (54, "1"), (55, "LTCUSD"))
        reject = await client.expect("9")
        assert text(reject, 39) == "2" and text(reject, 102) == "0"


async def test_a_replace_changes_price_and_quantity_and_answers_150_5() -> None:
    async with running() as venue, logged_on(venue) as client:
        client.send("D", *new_order("G1", qty=1, base=10, price="130"))
        await client.expect("8")
        client.send("G", (11, "G2"), (21, "1"), (38, 2), (40, "2"), (41, "G1"), (44, "131"), (54, "1"),
                    (55, "LTCUSD"), (59, "1"), (43229, 10))
        report = await client.expect("8")
        assert (text(report, 150), text(report, 39)) == ("5", "5")
        assert (text(report, 11), text(report, 41)) == ("G2", "G1")
        assert text(report, 38) == "2000" and text(report, 44) == "131.0"
        assert venue.depth("LTCUSD")[0] == [(D(131), D("0.2"))]
        client.send("F", (11, "G3"), (38, 2), (41, "G2"), (54, "1"), (55, "LTCUSD"))
        cancelled = await client.expect("8")
        assert text(cancelled, 150) == "4" and text(cancelled, 41) == "G2"


async def test_a_refused_replace_is_a_9_with_434_2() -> None:
    async with running() as venue, logged_on(venue) as client:
        client.send("G", (11, "X2"), (38, 2), (40, "2"), (41, "X1"), (44, "131"), (54, "1"), (55, "LTCUSD"),
                    (43229, 10))
        reject = await client.expect("9")
        assert text(reject, 434) == "2" and text(reject, 39) == "8"


# ---- sandbox API -----------------------------------------------------------------------------------


async def test_ports_are_free_ports_and_differ() -> None:
    async with MidChainsSandbox() as venue:
        assert venue.port and venue.md_port and venue.port != venue.md_port


async def test_both_acceptors_serve_tls_when_given_a_certificate(tmp_path: Path) -> None:
    """001: "secure tcp+ssl connection"; MID-12: a self-signed certificate, the client's CA bundle."""
    cert, server = self_signed(tmp_path)
    client_context = ssl.create_default_context(cafile=str(cert))
    async with running(tls=server) as venue:
        for port in (venue.port, venue.md_port):
            client = await FixClient(port).connect(tls=client_context)
            assert text(await client.logon(), 35) == "A"
            client.close()
