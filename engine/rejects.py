"""Every reject code the engine uses, with its sentence: the one place they are listed.

Codes 1001-9002 are the broker document's table (shared/seeds/000_fea88fb25a350a1d.txt, section 13)
so a local refusal and the broker's own reject read the same. Codes 7001 and up are the engine's
own, for refusals the broker table has no code for; they never collide with the broker's ranges.
README's reject table is generated from :data:`REJECT_CODES` (``engine codes`` prints it).
"""

from __future__ import annotations

from enum import IntEnum


class Reject(IntEnum):
    # --- broker document, section 13 ---------------------------------------------------------
    INVALID_TOKEN = 1001
    TOKEN_EXPIRED = 1002
    INSUFFICIENT_PERMISSIONS = 1003
    INVALID_SYMBOL = 2001
    INVALID_QUANTITY = 2002
    PRICE_OUTSIDE_CIRCUIT_BREAKER = 2003
    INSUFFICIENT_BUYING_POWER = 2004
    POSITION_NOT_HELD = 2005
    MARKET_CLOSED = 2006
    ORDER_TYPE_NOT_SUPPORTED = 2007
    POSITION_LIMIT_EXCEEDED = 2008
    SECTOR_EXPOSURE_EXCEEDED = 2009
    CIRCUIT_BREAKER_TRIGGERED = 2010
    RATE_LIMIT_EXCEEDED = 3001
    IDEMPOTENCY_KEY_REUSED = 3002
    UNSETTLED_FUNDS = 4001
    SETTLEMENT_IN_PROGRESS = 4002
    BACKEND_CONNECTIVITY = 9001
    EXCHANGE_REJECT = 9002
    # --- engine's own ------------------------------------------------------------------------
    PRICE_OFF_TICK = 7001
    PRICE_REQUIRED = 7002
    STRATEGY_NOT_RUNNING = 7003
    ORDER_NOT_OPEN = 7004
    INVALID_ORDER = 7005
    POST_ONLY_WOULD_TAKE = 7006
    SELF_TRADE_PREVENTED = 7007
    VENUE_NOT_CONNECTED = 7008
    MMP_FROZEN = 7009
    ORDER_TOO_LARGE = 7010
    PRICE_TOO_FAR = 7011
    ACCOUNT_REDUCING = 7012
    TRADING_HALTED = 7013
    HOOK_BUDGET = 7014
    RECOVERING = 7015
    STRATEGY_PAUSED = 7016


REJECT_CODES: dict[int, str] = {
    1001: "Invalid token",
    1002: "Token expired",
    1003: "Insufficient permissions",
    2001: "Invalid symbol",
    2002: "Invalid quantity (lot size)",
    2003: "Invalid price (outside circuit breaker)",
    2004: "Insufficient buying power",
    2005: "Position not held (for sell orders)",
    2006: "Market closed",
    2007: "Order type not supported",
    2008: "Position limit exceeded",
    2009: "Sector exposure limit exceeded",
    2010: "Circuit breaker triggered",
    3001: "Rate limit exceeded",
    3002: "Idempotency key reused",
    4001: "Unsettled funds not available",
    4002: "T+2 settlement in progress",
    9001: "Backend connectivity issue",
    9002: "Order rejected by exchange",
    7001: "Price not on the instrument's tick grid",
    7002: "Limit order without a price, or market order with one",
    7003: "Strategy is not running (failed or stopped)",
    7004: "Order is not open (already terminal or unknown)",
    7005: "Invalid order argument (side, quantity, client id or amend)",
    7006: "Post-only order would take liquidity",
    7007: "Self-trade prevented",
    7008: "Venue not connected",
    7009: "Market-maker protection triggered: MMP orders refused until the freeze ends or ctx.reset_mmp()",
    7010: "Order quantity or notional above the fat-finger maximum",
    7011: "Limit price too far from the last trade or mid (fat-finger guard)",
    7012: "Account is reducing: only orders that shrink a position are accepted",
    7013: "Trading halted by the kill switch",
    7014: "Strategy stopped: hooks repeatedly ran over their time budget",
    7015: "Engine is recovering after a restart: orders are refused until the journal and the venue are reconciled",
    7016: "Strategy paused: it repeated the same refused order too often; orders refused until it resumes",
}

assert set(REJECT_CODES) == {int(r) for r in Reject}, "every Reject member needs a sentence"


def describe(code: int) -> str:
    """The table sentence for a code, or a generic one for a venue code we do not know."""
    return REJECT_CODES.get(code, f"Venue reject code {code}")


class RejectError(Exception):
    """Raised inside a check to refuse an order with a code and a human sentence."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = int(code)
        self.reason = reason
