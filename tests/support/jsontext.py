"""Hypothesis pieces for writing JSON frames as text, shared by the fast-path equivalence tests
(tests/protocol/test_pulse_fastbook.py, test_psx_fastbook.py): texts written piece by piece, so
numbers, repeated or unknown fields, field order and spacing vary the way a venue's can."""

from __future__ import annotations

from hypothesis import strategies as st

#: values an unknown field may carry: scalars, deep nesting (past a decoder's depth limit), objects
ODD_VALUES = ["1", '"a"', "null", "[" * 70 + "]" * 70, "[" * 30 + "]" * 30, '{"a":[1,2]}']


def mostly(good: st.SearchStrategy[str], bad: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``good`` 29 times in 30: a frame holds some 10-20 values, so most frames are valid but for one
    or two of them, and both ways (fast, and refused then general) are exercised."""
    return st.integers(0, 29).flatmap(lambda pick: bad if pick == 13 else good)  # not 0: hypothesis favours it


def members(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[str]], space: str, unknown: list[str],
            shuffle_always: bool = True) -> str:
    """An object's text: each field present or not, possibly repeated, plus possibly one of the
    ``unknown`` names. Field order is shuffled always, or (``shuffle_always=False``) one time in
    four, keeping the venue's own order the rest of the time."""
    pairs = []
    for name, values in fields.items():
        for _ in range(draw(mostly(st.just(1), st.sampled_from([0, 2])))):
            pairs.append((name, draw(values)))
    if draw(st.integers(0, 9)) == 0:
        pairs.append((draw(st.sampled_from(unknown)), draw(st.sampled_from(ODD_VALUES))))
    if shuffle_always or draw(st.integers(0, 3)) == 0:
        pairs = draw(st.permutations(pairs))
    return "{" + ("," + space).join(f'"{name}":{space}{value}' for name, value in pairs) + "}"
