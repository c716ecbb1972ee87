"""The test suite's own layout (README "Running the tests"): every test file sits in the folder of
its kind, so conftest marks it and ``pytest -m unit`` finds it; helpers come from tests/support, and
no test module imports another."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from support import KINDS, REPO, absolute_imports, could_select

TESTS = REPO / "tests"

WHERE = (
    "tests/unit/ (one piece in process, fast), tests/protocol/ (codecs, document fixtures, adapters "
    "against sandboxes on 127.0.0.1, hostile bytes), tests/e2e/ (whole runs, subprocesses, simulated "
    "days, signals) or tests/conformance/ (the venue adapters' common suite)"
)


#: a line that may import a test module or conftest: only such files are parsed (parsing them all
#: took two seconds of the unit run)
IMPORT_LINE = re.compile(r"^\s*(?:from|import)\s[^\n]*\b(?:test_\w+|conftest)\b", re.MULTILINE)


def all_test_files() -> list[Path]:
    return sorted(TESTS.rglob("test_*.py"))


def test_no_test_file_sits_directly_in_tests() -> None:
    loose = sorted(path.name for path in TESTS.glob("test_*.py"))
    assert not loose, (
        f"{', '.join(loose)} sit directly in tests/, where no marker reaches them: move each (git mv) into "
        f"{WHERE}; shared helpers go to tests/support/"
    )


def test_every_test_file_is_in_the_folder_of_a_kind() -> None:
    elsewhere = [path.relative_to(TESTS).as_posix() for path in all_test_files()
                 if len(path.relative_to(TESTS).parts) > 1 and path.relative_to(TESTS).parts[0] not in KINDS]
    assert not elsewhere, f"{elsewhere}: test files belong in {WHERE}"


def test_this_test_is_marked_by_its_folder(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("unit") is not None
    assert all(request.node.get_closest_marker(kind) is None for kind in KINDS if kind != "unit")


def test_no_test_module_imports_another_or_conftest() -> None:
    """Shared helpers live in tests/support; a test module importing another runs that module's
    import-time code and breaks when either moves."""
    offenders = [
        f"{path.relative_to(TESTS).as_posix()}:{line} imports {module}"
        for path in TESTS.rglob("*.py")
        if path.parent != TESTS / "support" and IMPORT_LINE.search(path.read_text(encoding="utf-8"))
        for line, module in absolute_imports(path)
        if module.split(".")[0].startswith("test_")
        or (module.split(".")[0] == "conftest" and path.name != "conftest.py")
    ]
    assert not offenders, offenders


def test_only_unit_tests_name_another_kind_themselves() -> None:
    """``pytest -m unit`` leaves the other folders out without importing them (conftest's
    pytest_ignore_collect): that is right only while no test there marks itself with a kind. A
    slow test in a unit file may say ``@pytest.mark.e2e``; elsewhere, the folder says it."""
    offenders = []
    for path in TESTS.rglob("test_*.py"):
        text = path.read_text(encoding="utf-8")
        if path.relative_to(TESTS).parts[0] == "unit" or not any(f".{kind}" in text for kind in KINDS):
            continue
        for node in ast.walk(ast.parse(text)):
            if (isinstance(node, ast.Attribute) and node.attr in KINDS and isinstance(node.value, ast.Attribute)
                    and node.value.attr == "mark"):
                offenders.append(f"{path.relative_to(TESTS).as_posix()}:{node.lineno} pytest.mark.{node.attr}")
    assert not offenders, offenders


def test_a_mark_expression_leaves_out_only_folders_it_cannot_select() -> None:
    assert could_select("unit", "unit") and not could_select("unit", "e2e")
    assert could_select("not unit", "e2e") and not could_select("not e2e", "e2e")
    assert could_select("unit or protocol", "protocol") and not could_select("unit or protocol", "conformance")
    assert could_select("e2e and slow", "e2e") and not could_select("unit and slow", "e2e")
    assert could_select("not slow", "e2e")  # another marker: it may or may not be there
    assert could_select("e2e(x=1)", "unit")  # beyond plain names: collected, never wrongly left out
