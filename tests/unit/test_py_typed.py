"""PEP 561: ``engine`` and ``adapters`` ship a ``py.typed`` marker, so a type checker (and an editor)
reads the inline types of an installed engine; without it mypy says "module is installed, but
missing library stubs or py.typed marker" and treats every engine type as Any. Checked by hand
with ``pip install .`` into a scratch venv: the markers land in site-packages."""

from __future__ import annotations

import tomllib

import pytest
from support import REPO


@pytest.mark.parametrize("package", ["engine", "adapters"])
def test_package_has_a_py_typed_marker(package: str) -> None:
    assert (REPO / package / "py.typed").is_file()


@pytest.mark.parametrize("package", ["engine", "adapters"])
def test_a_non_editable_install_ships_the_marker(package: str) -> None:
    """setuptools copies only the data files package-data names into a wheel."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"].get(package, [])
