"""README's hook table (section "### Hooks") is generated from ``engine/hookspecs.py``, the single
source: one row per hook in ``HOOK_NAMES`` order, its description the first paragraph of the
spec's docstring (RST ````code```` written as Markdown ```code```), its signature the spec's own
(``(ctx: Ctx, book: Book)``, plus ``-> Any`` for a hook that returns something).

To change a row, edit the docstring, then paste the table this prints::

    python tests/unit/test_readme_hooks.py
"""

from __future__ import annotations

import inspect
import re

import pytest
from support import REPO

from engine import hookspecs

README = REPO / "README.md"
SECTION = "### Hooks"
HEADER = ("| hook | description | signature |", "| --- | --- | --- |")


def description(name: str) -> str:
    """The first paragraph of the spec's docstring, on one line, in Markdown."""
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    first = " ".join(doc.split("\n\n", 1)[0].split())
    return re.sub(r"``(.+?)``", r"`\1`", first)


def signature(name: str) -> str:
    """``(ctx: Ctx, book: Book)`` as the spec reads (annotations are the names it writes)."""
    spec = inspect.signature(getattr(hookspecs, name))
    arguments = ", ".join(f"{p.name}: {p.annotation}" for p in spec.parameters.values())
    returns = "" if spec.return_annotation == "None" else f" -> {spec.return_annotation}"
    return f"({arguments}){returns}"


def expected_rows() -> dict[str, tuple[str, str]]:
    return {name: (description(name), signature(name)) for name in hookspecs.HOOK_NAMES}


def expected_table() -> str:
    rows = [f"| `{name}` | {text} | `{sig}` |" for name, (text, sig) in expected_rows().items()]
    return "\n".join([*HEADER, *rows])


def readme_table_lines(text: str) -> list[str]:
    """The lines of the first table in the README's hooks section."""
    start = text.find(f"\n{SECTION}\n")
    assert start >= 0, f"README.md has no {SECTION!r} section"
    section = text[start + len(SECTION) + 2:]
    end = re.search(r"^#{1,3} ", section, flags=re.MULTILINE)
    section = section[: end.start()] if end else section
    lines = section.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    assert first is not None, f"README.md's {SECTION!r} section has no table"
    table = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        table.append(line.rstrip())
    return table


def split_row(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split(" | ")]


def readme_rows() -> dict[str, tuple[str, str]]:
    lines = readme_table_lines(README.read_text(encoding="utf-8"))
    rows: dict[str, tuple[str, str]] = {}
    for line in lines[2:]:
        cells = split_row(line)
        assert len(cells) == 3, f"README hook table row has {len(cells)} cells, not 3: {line}"
        hook, text, sig = cells
        rows[hook.strip("`")] = (text, sig.strip("`"))
    return rows


def fix_hint() -> str:
    return ("\nThe table generated from engine/hookspecs.py (python tests/unit/test_readme_hooks.py):\n\n"
            f"{expected_table()}")


def test_readme_hook_table_has_the_generated_header() -> None:
    assert tuple(readme_table_lines(README.read_text(encoding="utf-8"))[:2]) == HEADER, fix_hint()


def test_readme_lists_every_hook_and_no_other() -> None:
    listed = list(readme_rows())
    missing = [name for name in hookspecs.HOOK_NAMES if name not in listed]
    extra = [name for name in listed if name not in hookspecs.HOOK_NAMES]
    assert not missing, f"README's hook table lacks {missing}" + fix_hint()
    assert not extra, f"README's hook table lists {extra}, which engine/hookspecs.py does not define" + fix_hint()
    assert listed == list(hookspecs.HOOK_NAMES), "README's hook table is not in HOOK_NAMES order" + fix_hint()


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_readme_signature_is_the_specs(name: str) -> None:
    listed = readme_rows().get(name)
    assert listed is not None, f"README's hook table lacks {name}" + fix_hint()
    assert listed[1] == signature(name), (
        f"README says {name}{listed[1]}, engine/hookspecs.py says {name}{signature(name)}" + fix_hint()
    )


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_readme_description_is_the_docstrings_first_paragraph(name: str) -> None:
    listed = readme_rows().get(name)
    assert listed is not None, f"README's hook table lacks {name}" + fix_hint()
    assert listed[0] == description(name), (
        f"README describes {name} as\n  {listed[0]}\nits docstring's first paragraph says\n  {description(name)}"
        + fix_hint()
    )


def test_the_generated_table_parses_back_to_the_specs() -> None:
    """The checker and the generator agree, whatever README holds today."""
    lines = expected_table().splitlines()
    assert tuple(lines[:2]) == HEADER
    parsed = {split_row(line)[0].strip("`"): (split_row(line)[1], split_row(line)[2].strip("`")) for line in lines[2:]}
    assert parsed == expected_rows()
    assert all("|" not in text for text, _ in parsed.values()), "a description holds '|': the table would break"


if __name__ == "__main__":
    print(expected_table())
