"""Account budgets shared by many engines: static allocation, checked before the feed starts.

The rule (issue 27, "shared risk"): every engine on one venue account states its own share in its
own config, exactly the keys one engine uses alone: ``venues.<name>.account.cash`` (and
``holdings``) is its buying power, ``venues.<name>.rate_limits`` its part of the venue's request
budget. ``engine feed ACCOUNT_CONFIG --engines E1.yaml E2.yaml ...`` refuses to start when the
engines' shares add up to more than the account's (the feed's config states the whole account in
the same keys). Each engine's own gate and pacer then hold it to its share, so N engines never
spend more than the account has.

Why static and not leases through NATS key-value: a demanding user wants the limit to hold under
engine crash and restart. With static shares there is nothing to lose or to reclaim: a crashed
engine's share is simply unused, a restarted one gets the same share back (its journal restores
what it already spent), and no order ever waits for, or trusts, a lease that the broker, a
partition or a dead holder may have made wrong. A lease scheme must either let a dead engine's
lease expire (the budget is short until the TTL) or trust a clock across machines, and it adds a
broker round trip to the order path. The cost of static shares: budget one engine leaves unused is
not lent to another; re-split by editing configs and restarting the engines.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from engine.config import LoadedConfig


def _per_second(limits: list, scope: str) -> tuple[Decimal, int]:
    rate = Decimal(0)
    burst = 0
    for limit in limits:
        if limit.scope == scope:
            rate += Decimal(limit.count) / limit.per_seconds
            burst += limit.burst or limit.count
    return rate, burst


def check_allocation(account: LoadedConfig, engines: list[LoadedConfig]) -> list[str]:
    """What the engines' shares exceed of the account, one sentence each naming the venue and key;
    empty when the split holds."""
    problems: list[str] = []
    for venue, whole in account.config.venues.items():
        users = [(e, e.config.venues[venue]) for e in engines if venue in e.config.venues]
        if not users:
            continue
        cash = sum((Decimal(getattr(v.account, "cash", 0)) for _e, v in users), Decimal(0))
        whole_cash = Decimal(getattr(whole.account, "cash", 0))
        if cash > whole_cash:
            problems.append(f"venue {venue!r}: the engines' account.cash adds up to {cash}, the account has "
                            f"{whole_cash} ({account.display})")
        held: defaultdict[str, Decimal] = defaultdict(Decimal)
        for _e, v in users:
            for symbol, qty in getattr(v.account, "holdings", {}).items():
                held[symbol] += qty
        whole_holdings = getattr(whole.account, "holdings", {})
        for symbol, qty in sorted(held.items()):
            if qty > whole_holdings.get(symbol, Decimal(0)):
                problems.append(f"venue {venue!r}: the engines' account.holdings.{symbol} add up to {qty}, the "
                                f"account has {whole_holdings.get(symbol, 0)}")
        if whole.rate_limits is None:
            problems.append(f"venue {venue!r}: {account.display} states no rate_limits: the venue's request budget "
                            "must be written out to be split")
            continue
        for e, v in users:
            if v.rate_limits is None:
                problems.append(f"venue {venue!r}: {e.display} states no rate_limits, so it would spend the venue's "
                                "whole request budget; give it its share")
        for scope in sorted({r.scope for r in whole.rate_limits}):
            have, have_burst = _per_second(list(whole.rate_limits), scope)
            used = [_per_second(list(v.rate_limits or ()), scope) for _e, v in users]
            rate = sum((r for r, _b in used), Decimal(0))
            burst = sum(b for _r, b in used)
            if rate > have:
                problems.append(f"venue {venue!r}: the engines' {scope} rate_limits add up to {rate.normalize()}/s, "
                                f"the account's budget is {have.normalize()}/s")
            if burst > have_burst:
                problems.append(f"venue {venue!r}: the engines' {scope} bursts add up to {burst}, the account's is "
                                f"{have_burst}")
    return problems
