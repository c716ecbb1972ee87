"""The kill switch broadcast: one ``engine halt`` halts every engine on the account.

``engine halt CONFIG`` publishes the state on ``halt.<account>`` (every running engine whose ``bus``
market-data adapter names the account triggers its own kill switch, the same manual trigger as
SIGUSR1) and writes it to the JetStream key-value bucket ``HALT``, so an engine that was down or
restarting during the broadcast reads it at connect and starts halted. States only escalate
(halted is never overwritten by reducing); ``--clear`` deletes the key for the next start, and
running engines stay halted until restarted, as with the local kill switch.
"""

from __future__ import annotations

from typing import Any

from engine.venue import buswire as wire


async def broadcast_halt(nats_url: str, account: str, state: str) -> str:
    """Record and broadcast ``state`` ("halted", "reducing" or "clear"); returns the state now kept."""
    subject = wire.halt_subject(account)
    nc: Any = await wire.connect_nats(nats_url, "engine-halt", 5.0)
    try:
        js = nc.jetstream()
        try:
            kv = await js.key_value(wire.HALT_BUCKET)
        except Exception:  # first use on this server
            kv = await js.create_key_value(bucket=wire.HALT_BUCKET, history=1)
        if state == "clear":
            try:
                await kv.delete(account)
            except Exception:  # nothing kept: nothing to clear
                pass
            return "clear"
        try:
            kept = (await kv.get(account)).value or b""
        except Exception:
            kept = b""
        if kept == b"halted":
            state = "halted"
        await kv.put(account, state.encode())
        await nc.publish(subject, state.encode())
        await nc.flush()
        return state
    finally:
        await nc.close()


def bus_accounts(loaded) -> list[tuple[str, str]]:
    """``(nats_url, account)`` of every venue of CONFIG whose market data comes over the bus."""
    found = []
    for venue in loaded.config.venues.values():
        md = venue.market_data
        if md is not None and md.adapter == "bus" and md.options.get("account"):
            found.append((str(md.options.get("nats_url", "nats://127.0.0.1:4222")), str(md.options["account"])))
    return found
