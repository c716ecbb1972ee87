"""One credential reader for adapters and sandboxes (adapters/kit/credentials.py): adapters read with
``read_secret``, sandboxes provide with ``sandbox_secret``, values are held in a ``Secret`` that
never prints, and no adapter or sandbox reads a credential its own way."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from support import REPO

from adapters.kit.credentials import MissingSecret, Secret, read_secret, sandbox_secret

VALUE = "s3cret-value-0042"


def test_read_secret_takes_a_file_first_line_over_the_variable(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIT_TEST_SECRET", "from-env")
    (tmp_path / "s").write_text(f" {VALUE} \nsecond\n")
    assert read_secret("KIT_TEST_SECRET", tmp_path / "s", "thing") == VALUE
    assert read_secret("KIT_TEST_SECRET", None, "thing") == "from-env"


def test_read_secret_errors_name_the_place_never_a_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KIT_TEST_SECRET", raising=False)
    with pytest.raises(MissingSecret, match="thing: environment variable KIT_TEST_SECRET is not set"):
        read_secret("KIT_TEST_SECRET", None, "thing")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(MissingSecret, match=r"thing: file .*empty is empty"):
        read_secret(None, tmp_path / "empty", "thing")
    with pytest.raises(MissingSecret, match=r"thing: cannot read .*absent"):
        read_secret(None, tmp_path / "absent", "thing")


def test_a_secret_never_prints() -> None:
    secret = Secret(VALUE, "env", "X")
    assert VALUE not in repr(secret) and VALUE not in str(secret) and VALUE not in f"{secret!r} {secret}"
    assert VALUE not in repr([secret]) and secret.value == VALUE


def test_sandbox_secret_reads_every_line_of_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "tokens").write_text("one\n\n two \n")
    secret = sandbox_secret("UNUSED", tmp_path / "tokens", "feed token", lambda: "never")
    assert (secret.value, secret.source, secret.file) == ("one\ntwo", "file", tmp_path / "tokens")


def test_sandbox_secret_writes_a_generated_value_to_a_missing_file_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new.token"
    secret = sandbox_secret("UNUSED", path, "feed token", lambda: VALUE)
    assert (secret.value, secret.source) == (VALUE, "written")
    assert path.read_text() == VALUE + "\n" and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_sandbox_secret_refuses_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("  \n")
    with pytest.raises(MissingSecret, match=r"the password file .*empty is empty"):
        sandbox_secret("UNUSED", tmp_path / "empty", "password", lambda: "never")


def test_sandbox_secret_takes_the_variable_else_generates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIT_TEST_SECRET", f" {VALUE} ")
    secret = sandbox_secret("KIT_TEST_SECRET", None, "password", lambda: "never")
    assert (secret.value, secret.source, secret.env) == (VALUE, "env", "KIT_TEST_SECRET")
    monkeypatch.delenv("KIT_TEST_SECRET")
    assert sandbox_secret("KIT_TEST_SECRET", None, "password", lambda: "made-up").source == "generated"


def test_no_adapter_or_sandbox_reads_credentials_its_own_way() -> None:
    """Credentials come only through the kit: no module outside it reads the environment (the PSX
    run command only sets it for the engine it starts) or defines its own secret holder."""
    own = []
    for path in (REPO / "adapters").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(REPO))
        if name == "adapters/kit/credentials.py":
            continue
        if "os.environ.get(" in text or "os.getenv(" in text or "class _Secret" in text:
            own.append(name)
    assert own == []
