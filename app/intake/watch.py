"""The scanners' folder: files dropped there become batches, then move out of the way.

A file is taken once its size has stopped changing (a scanner writes it in parts), read
into a batch with :func:`app.intake.reading.receive_file` and moved to ``inläst/``
(or ``avvisad/`` with a ``.txt`` saying why, when it is no scan). Files in the folder
at start are taken too, so nothing dropped while the watcher was down is missed.
Names starting with ``.`` or ``~`` and files ending in ``.tmp`` or ``.part`` are
left alone until renamed.

Nothing in the folder is trusted: a symbolic link, a named pipe or a device is never
opened (``lstat`` first, then ``O_NOFOLLOW`` and ``fstat`` on what was opened) and goes to
``avvisad/``; a file's size is checked against ``Settings.intake_max_file_bytes`` before a
byte of it is read, and it is read in chunks up to that limit only (a file above it goes to
``avvisad/`` unread), so the watcher's memory stays bounded whatever is dropped. A file that
fails :data:`MAX_ATTEMPTS` times (say, while the database is down) goes to ``avvisad/`` too,
with the last error beside it, rather than being tried for ever. Every file refused so
is an audit event (``scan_file.refused``: the name, the reason and where it went).
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from app.audit.service import record_event
from app.core.agents import Agent
from app.core.text import without_unsafe_characters
from app.intake.models import BatchSource
from app.intake.reading import receive_file
from workflows.runtime import Runtime

log = structlog.get_logger(__name__)

DONE_DIR = "inläst"
REJECTED_DIR = "avvisad"
SETTLE_S = 1.0
"""How long a file's size must stay the same before it is taken."""
RESCAN_S = 30.0
"""How often the whole folder is looked through again."""
MAX_ATTEMPTS = 5
"""Failed tries at one file (database down, say) before it is moved to ``avvisad/``."""
FOLDER_AGENT = Agent.system("intake-folder")
CHUNK_BYTES = 1024 * 1024
"""A file is read this much at a time."""

NOT_A_REGULAR_FILE = "not_a_regular_file"
"""A symbolic link, a named pipe, a device or a socket: never opened."""
FILE_TOO_LARGE = "file_too_large"
"""Larger than ``Settings.intake_max_file_bytes``: not read."""
FAILED_REPEATEDLY = "failed_repeatedly"
"""Could not be taken in :data:`MAX_ATTEMPTS` tries."""


@dataclass(frozen=True)
class Taken:
    path: Path
    batch_id: int | None
    """None for a file refused before it became a batch (not a regular file, too large)."""
    is_new: bool
    error_code: str | None


class Refused(Exception):
    """A dropped file the watcher will not read; ``code`` says why (written beside it)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def _is_candidate(path: Path) -> bool:
    """Anything in the folder but a directory (``inläst/``, ``avvisad/``), hidden files and
    files still being written; a symbolic link is a candidate (to be refused), never
    followed."""
    name = path.name
    if name.startswith((".", "~")) or name.endswith((".tmp", ".part")):
        return False
    try:
        return not stat.S_ISDIR(path.lstat().st_mode)
    except FileNotFoundError:
        return False


def _settled(path: Path, settle_s: float) -> bool:
    try:
        first = path.lstat()
        time.sleep(settle_s)
        second = path.lstat()
    except FileNotFoundError:
        return False
    return first.st_size == second.st_size and first.st_mtime_ns == second.st_mtime_ns


def read_dropped_file(path: Path, max_bytes: int) -> bytes:
    """The content of a regular file of at most ``max_bytes``, read in chunks; raises
    :class:`Refused` for anything else, without reading it."""
    if not stat.S_ISREG(path.lstat().st_mode):
        raise Refused(NOT_A_REGULAR_FILE, "a symbolic link, pipe, device or socket")
    try:  # O_NOFOLLOW: a link put in its place since is not followed; O_NONBLOCK: nor a pipe
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):
            raise Refused(NOT_A_REGULAR_FILE, "replaced by a link or pipe") from exc
        raise
    with os.fdopen(fd, "rb", buffering=0) as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Refused(NOT_A_REGULAR_FILE, "not a regular file when opened")
        if info.st_size > max_bytes:
            raise Refused(FILE_TOO_LARGE, f"{info.st_size} bytes, more than {max_bytes}")
        content = bytearray()
        while chunk := file.read(min(CHUNK_BYTES, max_bytes + 1 - len(content))):
            content += chunk
            if len(content) > max_bytes:  # it grew after the check
                raise Refused(FILE_TOO_LARGE, f"more than {max_bytes} bytes")
        return bytes(content)


def _reject(path: Path, reason: str) -> Path:
    """Move ``path`` (a link itself, never its target) to ``avvisad/`` with the reason in
    a ``.txt`` beside it."""
    moved = _move(path, path.parent / REJECTED_DIR)
    moved.with_name(moved.name + ".txt").write_text(reason + "\n", encoding="utf-8")
    return moved


def _refuse(runtime: Runtime, path: Path, code: str, detail: str) -> None:
    """Move a file the watcher will not take to ``avvisad/`` and record why in the audit
    log; the move comes first, so a database that is down never keeps it in the folder."""
    moved = _reject(path, f"{code}: {detail}")
    log.warning("intake.folder.refused", file=path.name, reason=code)
    name = without_unsafe_characters(path.name)
    try:
        with runtime.unit_of_work() as session:
            record_event(
                session,
                actor=FOLDER_AGENT.audit_label,
                action="scan_file.refused",
                object_type="scan_file",
                object_id=name[-64:],
                data={
                    "filename": name,
                    "reason": code,
                    "detail": detail,
                    "moved_to": f"{REJECTED_DIR}/{without_unsafe_characters(moved.name)}",
                },
            )
    except Exception:  # the file is out of the way; the log says it all
        log.exception("intake.folder.refusal_not_audited", file=name, reason=code)


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    counter = 1
    while target.exists():
        target = folder / f"{path.stem}-{counter}{path.suffix}"
        counter += 1
    return path.rename(target)


def take_file(runtime: Runtime, path: Path, settle_s: float = SETTLE_S) -> Taken | None:
    """Read one dropped file into a batch and move it away; None if it is not ready."""
    if not _is_candidate(path) or not _settled(path, settle_s):
        return None
    try:
        data = read_dropped_file(path, runtime.settings.intake_max_file_bytes)
    except Refused as refused:
        _refuse(runtime, path, refused.code, refused.detail)
        return Taken(path, None, False, refused.code)
    with runtime.unit_of_work() as session:
        received = receive_file(session, FOLDER_AGENT, data, path.name, BatchSource.FOLDER)
        batch_id, error = received.batch.id, received.batch.error_code
    if error:
        _reject(path, f"batch {batch_id}: {error}")
    else:
        _move(path, path.parent / DONE_DIR)
    log.info(
        "intake.folder.taken", file=path.name, batch_id=batch_id, new=received.is_new, error=error
    )
    return Taken(path, batch_id, received.is_new, error)


class _Handler(FileSystemEventHandler):
    def __init__(self, take: Callable[[Path], object]) -> None:
        self.take = take

    def on_created(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.take(Path(str(event.src_path)))

    def on_moved(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.take(Path(str(event.dest_path)))

    def on_closed(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.take(Path(str(event.src_path)))


class FolderWatcher:
    """Watches ``folder`` (not its sub-folders) and takes every file that lands there."""

    def __init__(
        self,
        runtime: Runtime,
        folder: Path,
        settle_s: float = SETTLE_S,
        rescan_s: float = RESCAN_S,
    ) -> None:
        self.runtime = runtime
        self.folder = folder
        self.settle_s = settle_s
        self.rescan_s = rescan_s
        self._lock = threading.Lock()
        self._failures: dict[Path, int] = {}
        self._observer = Observer()
        self._stopped = threading.Event()
        self._rescanner = threading.Thread(target=self._rescan, name="intake-rescan", daemon=True)

    def _rescan(self) -> None:
        """Now and then, take what is still lying there (a file that failed while the
        database was down, an event the file system did not deliver)."""
        while not self._stopped.wait(self.rescan_s):
            self.take_existing()

    def _take(self, path: Path) -> None:
        if path.parent != self.folder:
            return
        with self._lock:  # one file at a time; events for the same file come in bursts
            try:
                take_file(self.runtime, path, self.settle_s)
            except Exception as exc:
                log.exception("intake.folder.failed", file=path.name)
                self._failed(path, exc)
            else:
                self._failures.pop(path, None)

    def _failed(self, path: Path, exc: Exception) -> None:
        """Count a failed try; at :data:`MAX_ATTEMPTS` the file goes to ``avvisad/``."""
        failures = self._failures.get(path, 0) + 1
        if failures < MAX_ATTEMPTS:
            self._failures[path] = failures
            return
        self._failures.pop(path, None)
        try:
            _refuse(
                self.runtime,
                path,
                FAILED_REPEATEDLY,
                f"{failures} tries, last {type(exc).__name__}",
            )
        except OSError:
            log.exception("intake.folder.reject_failed", file=path.name)

    def take_existing(self) -> None:
        for path in sorted(self.folder.iterdir()):
            if _is_candidate(path):
                self._take(path)

    def take_once(self) -> None:
        """Take what lies in the folder now (``behorighet intake watch --once``)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.take_existing()

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._observer.schedule(_Handler(self._take), str(self.folder), recursive=False)
        self._observer.start()
        self.take_existing()
        self._rescanner.start()

    def stop(self) -> None:
        self._stopped.set()
        self._observer.stop()
        self._observer.join(timeout=10)
