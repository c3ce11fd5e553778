"""The intake decoder as its callers see it: one process, isolated, restarted when it dies.

A scanned file comes from outside: it may be broken, huge, or made to hang or exhaust
the software reading it. So nothing in it is parsed in the caller's process (a
multi-threaded web server or worker). All parsing and decoding happens in one decoder
process (:mod:`app.intake.decoding`), started with the ``spawn`` method (never ``fork``,
which copies a multi-threaded parent's locks), started on first use and kept for later
pages and files. Each page has a wall-time limit, enforced by killing the process; a page
that kills the process twice is unreadable. Pages after it are still read, in a new
process.

Like every use of ``spawn``, the decoder imports the caller's main module: a script
that reads scans keeps its top-level code under ``if __name__ == "__main__":`` (console
scripts, pytest, gunicorn and dramatiq do).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import structlog

from app.intake.decoding import serve
from app.intake.scan_file import (
    PAGE_TIMED_OUT,
    PAGE_UNREADABLE,
    PDF,
    BadScanFile,
    IntakeLimits,
    PageRead,
    ScanFileInfo,
    sniff_media_type,
)

log = structlog.get_logger(__name__)


def _check_outside(data: bytes, limits: IntakeLimits) -> str:
    """What can be checked without parsing: size and magic bytes. The media type."""
    if len(data) > limits.max_file_bytes:
        raise BadScanFile(
            BadScanFile.FILE_TOO_LARGE,
            f"{len(data)} bytes, more than the {limits.max_file_bytes} allowed",
        )
    media_type = sniff_media_type(data)
    if media_type is None:
        raise BadScanFile(BadScanFile.NOT_PDF_OR_IMAGE, "no PDF, TIFF, PNG or JPEG signature")
    return media_type


def inspect_scan(data: bytes, limits: IntakeLimits | None = None) -> ScanFileInfo:
    """The file's media type and page count, or :class:`BadScanFile`.

    The file is opened in the decoder process, never in the caller's.
    """
    if limits is None:
        limits = IntakeLimits()
    media_type = _check_outside(data, limits)
    return _DECODER.inspect(data, media_type, limits)


def read_scan(
    data: bytes, key: bytes, limits: IntakeLimits | None = None, *, start_page: int = 0
) -> Iterator[PageRead]:
    """One :class:`PageRead` for every page from ``start_page`` (0-based) on, in order.

    The file is checked and opened before this returns (raising :class:`BadScanFile`);
    the pages are read as they are iterated. ``start_page`` lets a job that was
    interrupted resume where it stopped. :class:`RuntimeError` when the decoder process
    cannot be started at all (not the file's fault: retry later).
    """
    if start_page < 0:
        raise ValueError("start_page must not be negative")
    if limits is None:
        limits = IntakeLimits()
    media_type = _check_outside(data, limits)
    batch = _Batch(next(_batch_ids), data, media_type, key, limits)
    info = _DECODER.open(batch)
    return _pages(batch, range(start_page, info.pages))


def _pages(batch: _Batch, indexes: range) -> Iterator[PageRead]:
    try:
        for index in indexes:
            yield _DECODER.page(batch, index)
    finally:
        _DECODER.forget(batch)


def start_decoder() -> None:
    """Start the decoder process now rather than on the first file (it takes ~0.5 s),
    and wait until it is ready."""
    _DECODER.start()


def stop_decoder() -> None:
    """Stop the decoder process; the next file starts a new one."""
    _DECODER.stop()


@dataclass(frozen=True)
class _Batch:
    """One file being read: sent to the decoder once (again only if it had to restart)."""

    id: int
    data: bytes
    media_type: str
    key: bytes
    limits: IntakeLimits


_batch_ids = itertools.count(1)


class _TimedOut(Exception):
    pass


class _Died(Exception):
    pass


_BOOT_TIMEOUT_S = 120.0


class _Decoder:
    """The decoder process, shared by the threads of this process, one request at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._closing: deque[int] = deque()
        """Files the decoder may drop."""

    def _after_fork(self) -> None:
        """In a forked copy of this process (a pre-forking server's worker): the decoder
        and its pipe belong to the parent, so start afresh without touching them."""
        process, self._process, self._conn = self._process, None, None
        self._lock = threading.Lock()
        self._closing = deque()
        if process is not None:  # nor let multiprocessing signal it when the copy exits
            multiprocessing.process._children.discard(process)  # type: ignore[attr-defined]

    def start(self) -> None:
        """Start the process (if it is not running) and wait until it answers."""
        with self._lock:
            self._connection()

    def stop(self) -> None:
        with self._lock:
            self._kill()

    def _connection(self) -> Connection:
        if self._process is not None and self._conn is not None and self._process.is_alive():
            return self._conn
        self._kill()
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(target=serve, args=(theirs,), name="intake-decoder", daemon=True)
        process.start()
        theirs.close()
        self._process, self._conn = process, ours
        # Booting (imports) must not count against the first page's time limit.
        try:
            ours.send(("ping", 0))
            if ours.poll(_BOOT_TIMEOUT_S) and ours.recv() == "pong":
                return ours
        except (EOFError, OSError):
            pass
        self._kill()
        raise RuntimeError("the intake decoder process did not start")

    def _kill(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(5)
            process.close()

    def _call(self, message: tuple[Any, ...], timeout: float, data: bytes | None = None) -> Any:
        """Send a request (and the file's bytes, unpickled: no copy) and wait for the
        reply; kill the process when it takes too long or dies. A process found dead
        before it got the request is restarted first."""
        conn = self._connection()
        try:
            while self._closing:
                conn.send(("close", self._closing.popleft()))  # no reply to these
            self._send(conn, message, data)
        except OSError:  # it died while idle: nothing was lost
            self._kill()
            conn = self._connection()
            self._send(conn, message, data)
        if not conn.poll(timeout):
            self._kill()
            raise _TimedOut
        try:
            return conn.recv()
        except (EOFError, OSError):
            self._kill()
            raise _Died from None

    @staticmethod
    def _send(conn: Connection, message: tuple[Any, ...], data: bytes | None) -> None:
        conn.send(message)
        if data is not None:
            conn.send_bytes(data)

    def _load(self, batch: _Batch) -> Any:
        return self._call(
            ("open", batch.id, batch.media_type, batch.key, batch.limits),
            batch.limits.page_timeout_s,
            batch.data,
        )

    def inspect(self, data: bytes, media_type: str, limits: IntakeLimits) -> ScanFileInfo:
        batch = _Batch(next(_batch_ids), data, media_type, b"", limits)
        try:
            return self.open(batch)
        finally:
            self.forget(batch)

    def open(self, batch: _Batch) -> ScanFileInfo:
        code = BadScanFile.BROKEN_PDF if batch.media_type == PDF else BadScanFile.NOT_PDF_OR_IMAGE
        with self._lock:
            for attempt in (1, 2):
                try:
                    reply = self._load(batch)
                except _TimedOut:
                    raise BadScanFile(
                        code, f"opening took over {batch.limits.page_timeout_s} s"
                    ) from None
                except _Died:
                    if attempt == 2:
                        raise BadScanFile(code, "opening it took the decoder down twice") from None
                    continue
                if isinstance(reply, BadScanFile):
                    raise reply
                assert isinstance(reply, ScanFileInfo)
                return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def page(self, batch: _Batch, index: int) -> PageRead:
        timeout = batch.limits.page_timeout_s
        unreadable = PageRead(index, None, PAGE_UNREADABLE, False, b"")
        with self._lock:
            for attempt in (1, 2):
                try:
                    reply = self._call(("page", batch.id, index), timeout)
                    if reply == "missing":  # restarted, or evicted by other files
                        self._load(batch)
                        reply = self._call(("page", batch.id, index), timeout)
                except _TimedOut:
                    log.warning("intake.page_timed_out", page_index=index, timeout_s=timeout)
                    return PageRead(index, None, PAGE_TIMED_OUT, False, b"")
                except _Died:
                    log.warning("intake.decoder_died", page_index=index, attempt=attempt)
                    continue
                if not isinstance(reply, tuple):  # could not be opened again: cannot happen
                    return unreadable
                page_read, detail = reply
                if detail:
                    log.warning("intake.page_unreadable", page_index=index, detail=detail)
                assert isinstance(page_read, PageRead)
                return page_read
        return unreadable

    def forget(self, batch: _Batch) -> None:
        """Let the decoder drop the file, with the next request. Takes no lock: this runs
        when a generator is finalised, which the garbage collector may do at any point,
        also in a thread that holds the lock."""
        self._closing.append(batch.id)


_DECODER = _Decoder()
os.register_at_fork(after_in_child=_DECODER._after_fork)
