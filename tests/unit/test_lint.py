"""The codebase stays ruff-clean (ruff comes with the test extra)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO, absolute_imports


def test_ruff_is_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install '.[test]' brings it)")
    done = subprocess.run([ruff, "check", "--no-cache", str(REPO)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _declared_distributions() -> set[str]:
    """The distributions pyproject.toml names as dependencies (all extras included)."""
    import re
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    return {re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in specs}


def test_every_third_party_module_the_engine_imports_is_declared():
    """A module imported by engine/ or adapters/ comes from the standard library, this project, or
    a distribution pyproject.toml declares: one that arrives only as another package's dependency
    (h11 under httpx, once) can vanish with that package's next release."""
    from importlib.metadata import packages_distributions

    providers = packages_distributions()
    declared = _declared_distributions()
    ours = {"engine", "adapters", "strategies"}
    missing: list[str] = []
    for path in sorted([*(REPO / "engine").rglob("*.py"), *(REPO / "adapters").rglob("*.py")]):
        for line, name in absolute_imports(path):
            top = name.split(".")[0]
            if top in ours or top in sys.stdlib_module_names:
                continue
            dists = {d.lower().replace("_", "-") for d in providers.get(top, [top])}
            if not dists & declared:
                missing.append(f"{path.relative_to(REPO)}:{line}: {name} ({', '.join(sorted(dists))})")
    assert missing == [], "imported but not declared in pyproject.toml:\n" + "\n".join(missing)
