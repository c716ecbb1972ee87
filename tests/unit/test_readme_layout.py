"""README's "## Layout" section matches the tree.

What is read: the code block in that section whose lines name paths from the first column
(``engine/model.py   instruments, orders ...``). A line starting in the first column is an
entry: its first word is a path relative to the repository (a trailing ``/`` for a folder), the
rest of the line and the indented lines below it are its description. (The diagram block, whose
lines start with spaces, is not read.)

The rules, each failure naming the offending path:

1. Every entry exists: a folder for ``x/``, a file otherwise.
2. Every top-level module (``engine/*.py``, ``adapters/*.py``, not ``__init__.py``) and every
   top-level package (a folder with ``__init__.py``) of ``engine/`` and ``adapters/`` is listed,
   as its own entry or as a ``name.py`` in the description of an entry in the same folder
   (``engine/journal.py  the SQLite journal; recovery.py, shutdown.py: ...``). Files inside a
   package need not be listed, and folders without ``__init__.py`` (``engine/data/``) are data.
3. Every ``name.py`` a description names exists: inside the entry's folder for a folder entry
   (``adapters/kit/  wirejson.py ...``), beside the entry for a file entry. Names written without
   ``.py`` (``engine/risk/  gate, structural, ...``) are prose and not checked; write ``.py`` to
   have them checked.
4. Every repository path a description names (``tests/conformance/``) exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from support import REPO

README = REPO / "README.md"
SECTION = "## Layout"
CHECKED_ROOTS = ("engine", "adapters")  # rule 2: every top-level module and package listed
PATH_IN_TEXT = re.compile(r"(?<![\w./-])((?:engine|adapters|strategies|benchmarks|deploy|tests)/[\w./-]*\w/?)")
MODULE_IN_TEXT = re.compile(r"(?<![\w./-])(\w+\.py)\b")


@dataclass(frozen=True)
class Entry:
    path: str  # as written: "engine/model.py", "engine/risk/"
    description: str

    @property
    def is_folder(self) -> bool:
        return self.path.endswith("/")

    @property
    def folder(self) -> str:
        """Where the ``name.py`` words of the description live."""
        return self.path.rstrip("/") if self.is_folder else str(Path(self.path).parent)


def layout_section(text: str) -> str:
    heading = re.search(rf"^{re.escape(SECTION)}$", text, flags=re.MULTILINE)
    assert heading is not None, f"README.md has no {SECTION!r} section"
    section = text[heading.end():]
    end = re.search(r"^## ", section, flags=re.MULTILINE)
    return section[: end.start()] if end else section


def code_blocks(section: str) -> list[list[str]]:
    return [block.splitlines() for block in re.findall(r"^```[^\n]*\n(.*?)^```", section, re.MULTILINE | re.DOTALL)]


def layout_entries(text: str) -> list[Entry]:
    """The entries of the Layout section's file list (the block whose lines start with paths)."""
    blocks = [block for block in code_blocks(layout_section(text)) if any(line.startswith("engine/") for line in block)]
    assert len(blocks) == 1, f"README's {SECTION!r}: {len(blocks)} code blocks list engine/... paths, not one"
    entries: list[tuple[str, list[str]]] = []
    for line in blocks[0]:
        if not line.strip():
            continue
        if line[0].isspace():
            assert entries, f"README layout: a description line before any entry: {line!r}"
            entries[-1][1].append(line.strip())
        else:
            path, _, rest = line.partition(" ")
            entries.append((path, [rest.strip()]))
    return [Entry(path, " ".join(part for part in parts if part)) for path, parts in entries]


def entries() -> list[Entry]:
    return layout_entries(README.read_text(encoding="utf-8"))


def top_level_units(root: str) -> list[str]:
    """``engine/model.py`` and ``engine/risk/``: the modules and packages directly under ``root``."""
    units = []
    for child in sorted((REPO / root).iterdir()):
        if child.is_file() and child.suffix == ".py" and child.name != "__init__.py":
            units.append(f"{root}/{child.name}")
        elif child.is_dir() and (child / "__init__.py").is_file():
            units.append(f"{root}/{child.name}/")
    return units


def listed_units(listed: list[Entry]) -> set[str]:
    """Every path the layout accounts for: the entries, and ``name.py`` named beside a file entry."""
    paths = {entry.path for entry in listed}
    for entry in listed:
        if not entry.is_folder:
            paths.update(f"{entry.folder}/{name}" for name in MODULE_IN_TEXT.findall(entry.description))
    return paths


def test_layout_lists_entries() -> None:
    listed = entries()
    assert len(listed) > 10, f"README's {SECTION!r} file list looks empty: {listed}"
    assert any(entry.path == "engine/model.py" for entry in listed)


def test_every_layout_entry_exists() -> None:
    wrong = []
    for entry in entries():
        target = REPO / entry.path
        if entry.is_folder and not target.is_dir():
            wrong.append(f"{entry.path} (no such folder)")
        elif not entry.is_folder and not target.is_file():
            wrong.append(f"{entry.path} (no such file)")
    assert not wrong, f"README's {SECTION!r} lists paths the tree does not have: {', '.join(wrong)}"


def test_every_top_level_module_and_package_is_listed() -> None:
    listed = listed_units(entries())
    unlisted = [unit for root in CHECKED_ROOTS for unit in top_level_units(root) if unit not in listed]
    assert not unlisted, (
        f"README's {SECTION!r} does not list {', '.join(unlisted)}: add an entry for each (or name the "
        "module as name.py in the description of an entry in the same folder)"
    )


def test_every_file_a_description_names_exists() -> None:
    wrong = []
    for entry in entries():
        for name in MODULE_IN_TEXT.findall(entry.description):
            if not (REPO / entry.folder / name).is_file():
                wrong.append(f"{entry.folder}/{name} (named by {entry.path})")
        for path in PATH_IN_TEXT.findall(entry.description):
            if not (REPO / path).exists():
                wrong.append(f"{path} (named by {entry.path})")
    assert not wrong, f"README's {SECTION!r} names files the tree does not have: {', '.join(wrong)}"


# ---- the rules themselves, on a small layout ----------------------------------------------------

SAMPLE = """\
## Layout

```
  strategies/*.py (plugins)
        v
  engine/  context -> runtime
```

```
engine/model.py       instruments; clock.py, gone.py: time
engine/risk/          the gate: gate.py, structural, missing.py
adapters/kit/         wirejson.py; see tests/conformance/ and tests/nowhere/
```

## Status
"""


def test_parser_reads_entries_and_continuations_not_the_diagram() -> None:
    text = SAMPLE.replace("engine/risk/          the gate: gate.py, structural, missing.py",
                          "engine/risk/          the gate: gate.py,\n                      structural")
    assert layout_entries(text) == [
        Entry("engine/model.py", "instruments; clock.py, gone.py: time"),
        Entry("engine/risk/", "the gate: gate.py, structural"),
        Entry("adapters/kit/", "wirejson.py; see tests/conformance/ and tests/nowhere/"),
    ]


def test_names_in_a_description_point_beside_a_file_and_inside_a_folder() -> None:
    listed = layout_entries(SAMPLE)
    assert listed_units(listed) == {
        "engine/model.py", "engine/risk/", "adapters/kit/", "engine/clock.py", "engine/gone.py",
    }
    assert MODULE_IN_TEXT.findall(listed[1].description) == ["gate.py", "missing.py"]
    assert listed[1].folder == "engine/risk"
    assert PATH_IN_TEXT.findall(listed[2].description) == ["tests/conformance/", "tests/nowhere/"]
