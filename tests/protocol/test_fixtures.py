"""Every document excerpt under tests/fixtures is its document's text, checked against the text.

The venue documents (and VENUES.md, whose PSX-1 proposal is the only PSX feed wire format) are
copied whole into tests/fixtures/documents, so that the suite checks the excerpts from this
repository alone. tests/fixtures/index.toml records each copy's SHA-256 and, for every fixture
file, its document and line numbers. Here:

- each copy has its recorded SHA-256, and where the shared folder is next to the checkout (a
  developer's machine), each original too: a changed document shows up as a failing test;
- the index and the files agree both ways: a fixture with no index line, or a line with no file,
  fails;
- each fixture is exactly its lines of its document, byte for byte (no normalisation: the
  JSON-RPC envelope the Pulse tests wrap around a documented result is added by the tests, never
  stored in a fixture); a difference names the fixture and the first line that differs.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from functools import cache
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent.parent / "fixtures"
DOCUMENTS = FIXTURES / "documents"
INDEX = tomllib.loads((FIXTURES / "index.toml").read_text(encoding="utf-8"))
NOT_EXCERPTS = set(INDEX["not_excerpts"]["folders"])
#: files in the fixture folders that describe the fixtures rather than copy a document
DESCRIPTIONS = {"README.md", "index.toml"}


def shared_folder() -> Path | None:
    """The shared folder (``shared/seeds`` inside it) beside the checkout or one of its parents, as
    on the developers' machines; None where there is none (CI builds from the repository alone)."""
    for parent in Path(__file__).resolve().parents[2].parents:
        if (parent / "shared" / "seeds").is_dir():
            return parent / "shared"
    return None


def fixture_files() -> set[str]:
    """Every file under tests/fixtures that copies document text, as a path relative to it."""
    found = set()
    for path in FIXTURES.rglob("*"):
        relative = path.relative_to(FIXTURES)
        if path.is_file() and relative.parts[0] not in NOT_EXCERPTS and "__pycache__" not in relative.parts \
                and path.name not in DESCRIPTIONS:
            found.add(relative.as_posix())
    return found


def line_ranges(spec: str) -> list[tuple[int, int]]:
    """``"10, 15-17"`` -> ``[(10, 10), (15, 17)]`` (1-based, inclusive)."""
    ranges = []
    for part in spec.split(","):
        first, _, last = part.strip().partition("-")
        ranges.append((int(first), int(last or first)))
    return ranges


@cache
def document_lines(name: str) -> tuple[str, ...]:
    """The copy's lines, split at ``\\n`` only: the documents hold characters (mis-encoded bullets)
    that ``str.splitlines`` would also split at."""
    return tuple((DOCUMENTS / name).read_text(encoding="utf-8").split("\n"))


def first_difference(fixture: Path, entry: dict[str, str]) -> str | None:
    """None when ``fixture`` is exactly its indexed lines, else where it first differs."""
    document = document_lines(entry["document"])
    expected: list[tuple[int, str]] = []
    for first, last in line_ranges(entry["lines"]):
        if not 1 <= first <= last <= len(document):
            return f"lines {first}-{last} are not inside {entry['document']} ({len(document)} lines)"
        expected += [(number, document[number - 1]) for number in range(first, last + 1)]
    text = fixture.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        return "the fixture does not end with a newline (every line is whole, its end included)"
    actual = text[:-1].split("\n")
    for position, (line, (number, original)) in enumerate(zip(actual, expected, strict=False), start=1):
        if line != original:
            return f"fixture line {position} {line!r} is not {entry['document']} line {number} {original!r}"
    if len(actual) != len(expected):
        return f"the fixture has {len(actual)} lines where {entry['lines']} are {len(expected)}"
    return None


# ---- the document copies ------------------------------------------------------------------


def test_each_document_copy_has_its_recorded_sha256() -> None:
    documents = INDEX["documents"]
    assert {p.name for p in DOCUMENTS.iterdir()} == set(documents), "documents/ and [documents] differ"
    for name, entry in documents.items():
        digest = hashlib.sha256((DOCUMENTS / name).read_bytes()).hexdigest()
        assert digest == entry["sha256"], f"documents/{name} is not the copy recorded in index.toml"


def test_each_document_is_cited_and_each_excerpt_names_a_copied_document() -> None:
    cited = {entry["document"] for entry in INDEX["excerpts"].values()}
    assert cited == set(INDEX["documents"]), "a document no fixture cites, or a fixture citing no copy"


def test_the_copies_are_the_shared_originals() -> None:
    shared = shared_folder()
    if shared is None:
        pytest.skip("no shared/seeds beside the checkout: the copies' recorded hashes are checked alone")
    for name, entry in INDEX["documents"].items():
        digest = hashlib.sha256((shared / entry["original"]).read_bytes()).hexdigest()
        assert digest == entry["sha256"], (
            f"shared/{entry['original']} changed: copy it to tests/fixtures/documents/{name}, record its "
            "sha256 in index.toml and re-check the fixtures that cite it")


# ---- the index and the files ---------------------------------------------------------------


def test_the_index_lists_every_fixture_file_and_only_those() -> None:
    on_disk, indexed = fixture_files(), set(INDEX["excerpts"])
    assert not on_disk - indexed, f"fixtures without a line in tests/fixtures/index.toml: {sorted(on_disk - indexed)}"
    assert not indexed - on_disk, f"index.toml lines without a fixture file: {sorted(indexed - on_disk)}"


@pytest.mark.parametrize("name", sorted(INDEX["excerpts"]))
def test_each_fixture_is_exactly_its_lines_of_its_document(name: str) -> None:
    entry = INDEX["excerpts"][name]
    assert entry.get("section"), f"{name}: index.toml names no section"
    assert entry["document"] in INDEX["documents"], f"{name}: {entry['document']} is not a copied document"
    difference = first_difference(FIXTURES / name, entry)
    assert difference is None, f"{name} is not {entry['document']} lines {entry['lines']}: {difference}"


PULSE_BLOCKS = {"request": "Body parameter", "response": "200 Response"}


@pytest.mark.parametrize("name", sorted(n for n in INDEX["excerpts"] if n.startswith("pulse/")))
def test_each_pulse_fixture_is_the_block_its_name_says(name: str) -> None:
    """004 repeats the same example under many methods (one order object answers buy, edit,
    cancel, get_order_state ...), so the right text is not enough: the lines must be the block of
    the method or channel the file is named after. 004 titles each one on the line before "Code
    samples" ("/private/buy", "user.orders.{instrument_name}.raw"); its "POST ..." lines are not
    used, as they name the ``raw`` channels ``{interval}``."""
    entry = INDEX["excerpts"][name]
    first = line_ranges(entry["lines"])[0][0]
    above = [line for line in document_lines(entry["document"])[:first - 1] if line.strip()]
    stem, kind = re.fullmatch(r"pulse/(.+)\.(request|response)\.json", name).groups()  # type: ignore[union-attr]
    assert above[-1] == PULSE_BLOCKS[kind], f"{name}: line {first} does not follow {PULSE_BLOCKS[kind]!r}"
    title = next(above[i - 1] for i in range(len(above) - 1, 0, -1) if above[i] == "Code samples")
    assert title.strip("/").replace("/", ".").replace("{", "").replace("}", "") == stem, (
        f"{name}: lines {entry['lines']} are under {title!r}")
    assert entry["section"].split(",")[0] == title, f"{name}: index.toml's section is not {title!r}"


def test_a_changed_fixture_is_named_with_its_first_differing_line(tmp_path: Path) -> None:
    """The check itself: an edited line, a missing line and lines outside the document are caught."""
    fixture = tmp_path / "x.json"
    entry = {"document": "004_df0ce6c3f341e5af.txt", "lines": "111-117"}
    lines = list(document_lines(entry["document"])[110:117])
    fixture.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert first_difference(fixture, entry) is None
    lines[4] = lines[4].replace("mainaccount", "subaccount")
    fixture.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert first_difference(fixture, entry) == (
        "fixture line 5 '  \"scope\": \"connection subaccount\",' is not 004_df0ce6c3f341e5af.txt line 115 "
        "'  \"scope\": \"connection mainaccount\",'")
    fixture.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    assert first_difference(fixture, entry | {"lines": "111-113, 999999"}).startswith("lines 999999-999999")
    assert first_difference(fixture, entry | {"lines": "111-114"}) == (
        "the fixture has 3 lines where 111-114 are 4")
