"""The scanners' folder trusts nothing dropped in it: links, pipes and files above the limit
are never read and go to ``avvisad/`` with the reason beside them, a file that keeps failing
goes there too instead of being tried for ever, and the watcher's memory stays bounded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.intake import watch
from app.intake.models import ScanBatch
from app.intake.watch import (
    FAILED_REPEATEDLY,
    FILE_TOO_LARGE,
    MAX_ATTEMPTS,
    NOT_A_REGULAR_FILE,
    REJECTED_DIR,
    FolderWatcher,
    take_file,
)
from tests.conftest import TEST_DATABASE_URL
from tests.scan_corpus import text_file
from tests.support import TEST_PROCESS
from workflows.runtime import Runtime


def _batches(session: Session) -> int:
    return session.scalar(select(func.count(ScanBatch.id))) or 0


def _reason(folder: Path, name: str) -> str:
    return (folder / REJECTED_DIR / f"{name}.txt").read_text(encoding="utf-8")


def _refusals(session: Session, name: str) -> list[str]:
    """The reasons the audit log gives for refusing files called ``name``."""
    session.expire_all()
    events = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "scan_file.refused", AuditEvent.object_id == name
        )
    )
    return [event.data["reason"] for event in events]


def test_links_and_pipes_are_refused_unread(
    runtime: Runtime, session: Session, tmp_path: Path
) -> None:
    folder = tmp_path / "skanner"
    folder.mkdir()
    secret = tmp_path / "hemlig.pdf"
    secret.write_bytes(b"%PDF-1.7 not for the watcher")
    (folder / "lank.pdf").symlink_to(secret)
    (folder / "lank-till-mapp").symlink_to(tmp_path)
    os.mkfifo(folder / "ror.pdf")
    before = _batches(session)

    for name in ("lank.pdf", "lank-till-mapp", "ror.pdf"):
        taken = take_file(runtime, folder / name, settle_s=0)
        assert taken is not None and taken.error_code == NOT_A_REGULAR_FILE, name
        assert (folder / REJECTED_DIR / name).is_symlink() or name == "ror.pdf"
        assert NOT_A_REGULAR_FILE in _reason(folder, name)
        assert _refusals(session, name) == [NOT_A_REGULAR_FILE]
    assert _batches(session) == before
    assert secret.read_bytes() == b"%PDF-1.7 not for the watcher"  # the target stays put
    assert sorted(p.name for p in folder.iterdir()) == [REJECTED_DIR]


def test_a_file_above_the_limit_is_refused_before_it_is_read(
    runtime: Runtime, session: Session, tmp_path: Path
) -> None:
    big = tmp_path / "stor.pdf"
    with big.open("wb") as file:  # sparse: takes no disk
        file.truncate(runtime.settings.intake_max_file_bytes + 1)
    before = _batches(session)
    taken = take_file(runtime, big, settle_s=0)
    assert taken is not None and taken.error_code == FILE_TOO_LARGE
    assert FILE_TOO_LARGE in _reason(tmp_path, "stor.pdf")
    assert (tmp_path / REJECTED_DIR / "stor.pdf").exists()
    assert _refusals(session, "stor.pdf") == [FILE_TOO_LARGE]
    assert _batches(session) == before


def test_a_file_that_keeps_failing_goes_to_avvisad(
    runtime: Runtime, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def database_down(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("INSERT", {}, Exception("the database is down"))

    monkeypatch.setattr(watch, "receive_file", database_down)
    (tmp_path / "skanning.txt").write_bytes(text_file())
    watcher = FolderWatcher(runtime, tmp_path, settle_s=0)
    for _attempt in range(MAX_ATTEMPTS - 1):
        watcher.take_existing()
        assert (tmp_path / "skanning.txt").exists()  # tried again, by the rescan
    watcher.take_existing()
    assert not (tmp_path / "skanning.txt").exists()
    assert (tmp_path / REJECTED_DIR / "skanning.txt").exists()
    reason = _reason(tmp_path, "skanning.txt")
    assert FAILED_REPEATEDLY in reason and "OperationalError" in reason
    assert _refusals(session, "skanning.txt") == [FAILED_REPEATEDLY]
    watcher.take_existing()  # nothing left to try
    assert sorted(p.name for p in tmp_path.iterdir()) == [REJECTED_DIR]


_MEASURE = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


@pytest.mark.slow  # a process of its own (the command's start takes seconds)
def test_the_watcher_stays_in_bounded_memory_with_a_huge_file(tmp_path: Path) -> None:
    folder = tmp_path / "skanner"
    folder.mkdir()
    with (folder / "en-gigabyte.pdf").open("wb") as file:  # sparse: takes no disk
        file.truncate(1024**3)
    behorighet = str(Path(sys.executable).with_name("behorighet"))
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, behorighet, "intake", "watch", "--once", str(folder)],
        env={
            **os.environ,
            **TEST_PROCESS,
            "DATABASE_URL": TEST_DATABASE_URL,
            "BROKER_URL": "stub://",
            "SECRET_KEY": "test-secret",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    peak_kib = int(measured.stdout.strip().splitlines()[-1])
    assert peak_kib < 400 * 1024, f"peak RSS {peak_kib // 1024} MiB"
    assert FILE_TOO_LARGE in _reason(folder, "en-gigabyte.pdf")
