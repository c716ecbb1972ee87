"""The kill switch broadcast: one ``engine halt`` halts every engine on the account.

``engine halt CONFIG`` publishes the state on ``halt.<account>`` (every running engine whose ``bus``
market-data adapter names the account triggers its own kill switch, the same manual trigger as
SIGUSR1) and writes it to the JetStream key-value bucket ``HALT``, so an engine that was down or
restarting during the broadcast reads it at connect and starts halted. States only escalate
(halted is never overwritten by reducing); ``--clear`` deletes the key for the next start, and
running engines stay halted until restarted, as with the local kill switch. It logs in to NATS with
the engine config's own bus options (token, password or creds file by name; TLS).
"""

from __future__ import annotations

from typing import Any

from engine.config import LoadedConfig, validate_section
from engine.venue import buswire as wire


async def broadcast_halt(nats_url: str, account: str, state: str, auth: wire.NatsAuth | None = None) -> str:
    """Record and broadcast ``state`` ("halted", "reducing" or "clear"); returns the state now kept.
    ``auth``: the engine's own bus login (its ``bus`` options), so a desk's account needs no other."""
    subject = wire.halt_subject(account)
    nc: Any = await wire.connect_nats(nats_url, "engine-halt", 5.0, auth=auth)
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


def bus_accounts(loaded: LoadedConfig) -> list[tuple[wire.NatsConnection, str]]:
    """``(connection, account)`` of every venue of CONFIG whose market data comes over the bus: the
    server and the login (token, password or creds file by name, TLS) of the engine's ``bus``
    options, checked as the engine checks them (a user or password in the URL is a ConfigError
    naming the option to use instead)."""
    found = []
    for name, venue in loaded.config.venues.items():
        md = venue.market_data
        if md is not None and md.adapter == "bus" and md.options.get("account"):
            own = {k: v for k, v in md.options.items() if k in wire.NatsConnection.model_fields}
            connection = validate_section(loaded, wire.NatsConnection, own, ("venues", name, "market_data", "options"))
            found.append((connection, str(md.options["account"])))
    return found
