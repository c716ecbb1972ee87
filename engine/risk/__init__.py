"""Pre-trade checks. Each rule is a small class with one method, ``check(request)``, returning
``None`` to allow or a :class:`Rejection` (code, reason); a :class:`Gate` runs them in order.

Open a module here to find a rule: ``structural.py`` (symbol, lot, tick, order type, client id),
``connectivity.py`` (venue reachable), ``psx.py`` (session, circuit breaker, fat finger, with values
from ``rulepack.py``, bands from ``bands.py`` and market facts from ``facts.py``), ``account.py``
(buying power, no short selling, position and sector limits), ``mmp.py``, ``killswitch.py``,
``ratelimit.py``; on a derivatives venue ``derivatives.py`` (margin, reduce-only, account limits)
replaces the cash account's buying power, no-short-selling and sector rules. The order they run
in is built by ``Runtime._checks_for``.
"""

from engine.risk.gate import Check, Gate, OrderRequest, Rejection

__all__ = ["Check", "Gate", "OrderRequest", "Rejection"]
