"""The codebase stays ruff-clean (ruff comes with the test extra)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_ruff_is_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install '.[test]' brings it)")
    done = subprocess.run([ruff, "check", "--no-cache", str(REPO)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
