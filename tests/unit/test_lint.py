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


HOOK = REPO / ".githooks" / "commit-msg"
HISTORY_RULE_SINCE = "69b1b38"  # issue 21: every commit after this one keeps the rule


@pytest.mark.parametrize(
    "message, accepted",
    [
        ("Runtime becomes a package\n\nThe why, with figures.\n", True),
        ("x" * 72 + "\n", True),
        ("x" * 73 + "\n\nbody\n", False),
        ("Subject\nbody glued to the subject\n", False),
        ("\n\nbody without a subject\n", False),
        ("# a comment git strips\nSubject after a comment\n\nbody\n", True),
    ],
)
def test_commit_msg_hook_holds_subjects_to_72_characters(tmp_path, message, accepted):
    """History a reader can scan: the hook (enabled with `git config core.hooksPath .githooks`)
    refuses a subject over 72 characters or a body glued to it, and says why."""
    (tmp_path / "MSG").write_text(message)
    done = subprocess.run(["sh", str(HOOK), str(tmp_path / "MSG")], capture_output=True, text=True)
    assert (done.returncode == 0) is accepted, done.stderr
    if not accepted:
        assert done.stderr.startswith("commit-msg: ")


def test_commits_since_issue_21_keep_the_subject_rule():
    """The rule holds on the history itself where a clone has it (a source tarball has no .git)."""
    git = shutil.which("git")
    if git is None or not (REPO / ".git").exists():
        pytest.skip("no git history here (not a git checkout)")
    known = subprocess.run([git, "-C", str(REPO), "cat-file", "-e", f"{HISTORY_RULE_SINCE}^{{commit}}"],
                           capture_output=True)
    if known.returncode != 0:
        pytest.skip(f"history before {HISTORY_RULE_SINCE} is not in this clone (shallow)")
    subjects = subprocess.run([git, "-C", str(REPO), "log", "--format=%h %s", f"{HISTORY_RULE_SINCE}..HEAD"],
                              capture_output=True, text=True, check=True).stdout.splitlines()
    long = [line for line in subjects if len(line.split(" ", 1)[1]) > 72]
    assert not long, "commit subjects over 72 characters:\n" + "\n".join(long)
