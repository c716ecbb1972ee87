"""The shape of the engine's client order ids: ``<strategy>-<epoch>-<n>``.

A venue remembers client ids for the life of the account (Optimus answers a reused idempotency key
with 3002), longer than any one journal: a fresh journal (``--fresh-account``, a deleted file)
numbering from 1 again would collide with the ids of every earlier journal, and restart would
mistake their orders and fills for its own. So each journal draws an *epoch* when it is created,
keeps it, and puts it in every id it hands out; ``n`` counts within the journal.

Budget: venues take at most 32 characters from ``[A-Za-z0-9_-]`` (FIX ClOrdID, the tightest); a
strategy name is at most 16, the epoch 5 and ``n`` up to 9 digits: 16 + 1 + 5 + 1 + 9 = 32.

A journal written before epochs existed keeps the empty epoch and its ``<strategy>-<n>`` ids, so
its orders stay recognisable; new journals never produce that shape, so the two cannot collide.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Collection

__all__ = ["EPOCH_LEN", "MAX_CLIENT_ID_LEN", "format_client_id", "new_epoch", "parse_client_id",
           "strategy_of_other_epoch"]

#: characters in an epoch: a lowercase letter, then lowercase letters or digits (26 * 36**4 = 43.7M)
EPOCH_LEN = 5
#: the tightest venue limit on a client id (FIX tag 11 ClOrdID)
MAX_CLIENT_ID_LEN = 32
_EPOCH = re.compile(rf"^[a-z][a-z0-9]{{{EPOCH_LEN - 1}}}$")
_ALNUM = string.ascii_lowercase + string.digits


def new_epoch() -> str:
    """A random epoch for a new journal. It starts with a letter so it never reads as a number
    (``s-12345-7`` could be strategy ``s-12345``'s seventh legacy id)."""
    return secrets.choice(string.ascii_lowercase) + "".join(secrets.choice(_ALNUM) for _ in range(EPOCH_LEN - 1))


def format_client_id(strategy: str, epoch: str, n: int) -> str:
    """``<strategy>-<epoch>-<n>``, or the legacy ``<strategy>-<n>`` for a journal without an epoch."""
    return f"{strategy}-{epoch}-{n}" if epoch else f"{strategy}-{n}"


def parse_client_id(client_id: str, epoch: str) -> tuple[str, int] | None:
    """``(strategy, n)`` when ``client_id`` has the shape this journal's ids have (its ``epoch``),
    else None: an id of another journal, or of someone else."""
    stem, sep, number = client_id.rpartition("-")
    if not sep or not number.isdigit():
        return None
    if epoch:
        stem, sep, tag = stem.rpartition("-")
        if not sep or tag != epoch:
            return None
    return (stem, int(number)) if stem else None


def strategy_of_other_epoch(client_id: str, epoch: str, strategies: Collection[str]) -> str | None:
    """The strategy name when ``client_id`` is shaped like one of ``strategies``' ids but was
    handed out by another journal (another epoch, or the legacy shape under an epoch journal):
    an earlier journal's history, which this journal must not take for its own."""
    parsed = parse_client_id(client_id, epoch)
    if parsed is not None and parsed[0] in strategies:
        return None  # this journal's own
    stem, sep, number = client_id.rpartition("-")
    if not sep or not number.isdigit():
        return None
    name, sep, tag = stem.rpartition("-")
    if sep and tag != epoch and _EPOCH.match(tag) and name in strategies:
        return name
    return stem if epoch and stem in strategies else None
