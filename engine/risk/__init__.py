"""Pre-trade checks. Each rule is a small class with one method, ``check(request)``, returning
``None`` to allow or a :class:`Rejection` (code, reason); a :class:`Gate` runs them in order.

Open a module here to find a rule: ``structural.py`` holds the checks every order passes whatever
the venue (symbol, lot, tick, order type, client id).
"""

from engine.risk.gate import Check, Gate, OrderRequest, Rejection

__all__ = ["Check", "Gate", "OrderRequest", "Rejection"]
