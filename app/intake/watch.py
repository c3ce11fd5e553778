"""The scanners' folder: files dropped there become batches, then move out of the way.

A file is taken once its size has stopped changing (a scanner writes it in parts), read
into a batch with :func:`app.intake.reading.receive_file` and moved to ``inläst/``
(or ``avvisad/`` with a ``.txt`` saying why, when it is no scan). Files in the folder
at start are taken too, so nothing dropped while the watcher was down is missed.
Names starting with ``.`` or ``~`` and files ending in ``.tmp`` or ``.part`` are
left alone until renamed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from app.core.agents import Agent
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


@dataclass(frozen=True)
class Taken:
    path: Path
    batch_id: int
    is_new: bool
    error_code: str | None


def _is_candidate(path: Path) -> bool:
    name = path.name
    return (
        path.is_file() and not name.startswith((".", "~")) and not name.endswith((".tmp", ".part"))
    )


def _settled(path: Path, settle_s: float) -> bool:
    try:
        first = path.stat()
        time.sleep(settle_s)
        second = path.stat()
    except FileNotFoundError:
        return False
    return first.st_size == second.st_size and first.st_mtime_ns == second.st_mtime_ns


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
    data = path.read_bytes()
    with runtime.unit_of_work() as session:
        received = receive_file(
            session, Agent.system("intake-folder"), data, path.name, BatchSource.FOLDER
        )
        batch_id, error = received.batch.id, received.batch.error_code
    if error:
        moved = _move(path, path.parent / REJECTED_DIR)
        moved.with_name(moved.name + ".txt").write_text(
            f"batch {batch_id}: {error}\n", encoding="utf-8"
        )
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
            except Exception:
                log.exception("intake.folder.failed", file=path.name)

    def take_existing(self) -> None:
        for path in sorted(self.folder.iterdir()):
            if _is_candidate(path):
                self._take(path)

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
