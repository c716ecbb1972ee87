"""Client ids carry their journal's epoch (engine/clientids.py, issue 17 item 7)."""

from __future__ import annotations

import re

from engine.clientids import MAX_CLIENT_ID_LEN, format_client_id, new_epoch, parse_client_id, strategy_of_other_epoch
from engine.journal import Journal


def test_each_new_journal_draws_its_own_venue_safe_epoch_and_keeps_it(tmp_path):
    epochs = []
    for n in range(3):
        journal = Journal.open(tmp_path / f"j{n}.sqlite")
        epochs.append(journal.client_epoch)
        journal.close()
        reopened = Journal.open(tmp_path / f"j{n}.sqlite")
        assert reopened.client_epoch == epochs[-1]  # kept: the journal's ids stay one sequence
        reopened.close()
    assert len(set(epochs)) == 3 and all(re.fullmatch(r"[a-z][a-z0-9]{4}", e) for e in epochs)


def test_the_longest_id_fits_the_tightest_venue_limit_and_reads_back():
    longest = format_client_id("x" * 16, new_epoch(), 999_999_999)
    assert len(longest) == MAX_CLIENT_ID_LEN and re.fullmatch(r"[A-Za-z0-9_-]+", longest)
    assert parse_client_id("mm-k3z9a-12", "k3z9a") == ("mm", 12)
    assert parse_client_id("my-mm-k3z9a-12", "k3z9a") == ("my-mm", 12)  # names may hold '-'
    assert parse_client_id("mm-12", "") == ("mm", 12)  # a journal from before epochs


def test_another_journals_ids_are_recognised_as_such_and_never_as_ours():
    names = {"mm", "my-mm"}
    assert parse_client_id("mm-b0000-12", "k3z9a") is None
    assert strategy_of_other_epoch("mm-b0000-12", "k3z9a", names) == "mm"
    assert strategy_of_other_epoch("mm-12", "k3z9a", names) == "mm"  # a pre-epoch journal's
    assert strategy_of_other_epoch("mm-b0000-12", "", names) == "mm"  # seen from a pre-epoch journal
    assert strategy_of_other_epoch("mm-k3z9a-12", "k3z9a", names) is None  # ours
    assert strategy_of_other_epoch("my-mm-12", "", names) is None  # ours (pre-epoch)
    assert strategy_of_other_epoch("hedge-b0000-12", "k3z9a", names) is None  # someone else's
    assert strategy_of_other_epoch("ABC123", "k3z9a", names) is None
