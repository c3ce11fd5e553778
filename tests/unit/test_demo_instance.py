"""The demo keeps its secret key and its SQLite database private to its user (mode 0600),
whatever the umask it was started with, and narrows files an older demo left readable."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.cli import prepare_instance


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # what most shells start with: files readable by all
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("open_umask")
def test_the_demo_writes_its_secret_and_database_for_its_user_only(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    database = instance / "behorighet.sqlite3"
    secret = prepare_instance(instance, f"sqlite:///{database}")
    assert len(secret) == 64
    assert _mode(instance / "secret_key") == 0o600
    assert _mode(database) == 0o600
    assert _mode(instance) == 0o700
    (instance / "later.txt").write_text("x")  # what the demo writes afterwards
    assert _mode(instance / "later.txt") == 0o600
    assert prepare_instance(instance, f"sqlite:///{database}") == secret  # kept


@pytest.mark.usefixtures("open_umask")
def test_files_an_older_demo_left_readable_are_narrowed(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    (instance / "secret_key").write_text("ab" * 32)
    database = instance / "behorighet.sqlite3"
    database.write_bytes(b"")
    os.chmod(instance / "secret_key", 0o644)
    os.chmod(database, 0o644)
    assert prepare_instance(instance, f"sqlite:///{database}") == "ab" * 32
    assert _mode(instance / "secret_key") == 0o600
    assert _mode(database) == 0o600
