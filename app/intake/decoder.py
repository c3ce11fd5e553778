"""The intake decoder as its callers see it: one process, isolated, restarted when it dies.

A scanned file comes from outside: it may be broken, huge, or made to hang or exhaust
the software reading it. So nothing in it is parsed in the caller's process (a
multi-threaded web server or worker). All parsing and decoding happens in one decoder
process (:mod:`app.intake.decoding`), started with the ``spawn`` method (never
``fork``, which copies a multi-threaded parent's locks), started as the server or worker
process starts (:func:`warm_decoder`; else on first use) and kept for later pages and
files. Each page is asked for while the caller still records the one before (read
ahead), and has a wall-time limit from when it is asked for, enforced by killing the
process; a page that kills the process twice is unreadable. Pages after it are still
read, in a new process.

Like every use of ``spawn``, the decoder imports the caller's main module: a script
that reads scans keeps its top-level code under ``if __name__ == "__main__":`` (console
scripts, pytest, gunicorn and dramatiq do).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
import time
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
    """The pages, each next one asked for before this one is handed on: the decoder reads
    it while the caller records this one."""
    try:
        for index in indexes:
            ahead = index + 1 if index + 1 < indexes.stop else None
            yield _DECODER.page(batch, index, ahead=ahead)
    finally:
        _DECODER.forget(batch)


def start_decoder() -> None:
    """Start the decoder process now rather than on the first file (it takes 1–2 s), and
    wait until it is ready."""
    _DECODER.start()


def warm_decoder() -> threading.Thread:
    """Start the decoder process in the background: what a server or worker process does
    as it starts, so that its first file does not wait for the decoder's start (1–2 s: a
    new interpreter importing pdfium, Pillow, zxing-cpp and the app's modules). A file
    that comes before it is ready waits for the rest of that start. Failing to start is
    only logged: the first file tries again."""

    def warm() -> None:
        try:
            _DECODER.start()
        except Exception:  # nothing may escape a thread (it would print, not log)
            log.warning("intake.decoder_warm_up_failed", exc_info=True)

    thread = threading.Thread(target=warm, name="intake-decoder-warm-up", daemon=True)
    thread.start()
    return thread


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


@dataclass(frozen=True)
class _Ahead:
    """A page asked for ahead of time."""

    batch_id: int
    index: int
    deadline: float
    """``time.monotonic()`` by which its answer must be there: its time limit runs from
    when it was asked for (the decoder starts on it then, or at once if it is busy
    with nothing else)."""


_NOT_ASKED = object()


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
        self._ahead: _Ahead | None = None
        """The page asked for ahead of time, its answer not yet taken from the pipe."""
        self._early: tuple[tuple[int, int], Any] | None = None
        """A page read ahead whose answer was taken from the pipe before its reader asked
        for it (another request came first): ``((batch id, index), answer or error)``."""

    def _after_fork(self) -> None:
        """In a forked copy of this process (a pre-forking server's worker): the decoder
        and its pipe belong to the parent, so start afresh without touching them."""
        process, self._process, self._conn = self._process, None, None
        self._lock = threading.Lock()
        self._closing = deque()
        self._ahead = self._early = None
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
        self._ahead = None
        if conn is not None:
            conn.close()
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(5)
            try:
                process.close()
            except ValueError:
                # Not reaped yet: as the process exits, multiprocessing's own exit handler
                # may be waiting for the same child in another thread.
                log.info("intake.decoder_left_to_reap", pid=process.pid)

    def _call(self, message: tuple[Any, ...], timeout: float, data: bytes | None = None) -> Any:
        """Send a request (and the file's bytes, unpickled: no copy) and wait for the
        reply; kill the process when it takes too long or dies. A process found dead
        before it got the request is restarted first."""
        self._set_ahead_aside()
        conn = self._connection()
        try:
            while self._closing:
                closing = self._closing.popleft()
                conn.send(("close", closing))  # no reply to these
                if self._early is not None and self._early[0][0] == closing:
                    self._early = None
            self._send(conn, message, data)
        except OSError:  # it died while idle: nothing was lost
            self._kill()
            conn = self._connection()
            self._send(conn, message, data)
        return self._answer(time.monotonic() + timeout)

    def _answer(self, deadline: float) -> Any:
        """The answer to the request in the pipe; the process killed when it is not there
        by ``deadline`` (``time.monotonic``), or died."""
        conn = self._conn
        assert conn is not None
        if not conn.poll(max(0.0, deadline - time.monotonic())):
            self._kill()
            raise _TimedOut
        try:
            return conn.recv()
        except (EOFError, OSError):
            self._kill()
            raise _Died from None

    def _ask_ahead(self, batch: _Batch, index: int) -> None:
        """Ask for a page without waiting for it (its time limit runs from now)."""
        conn = self._conn
        if conn is None:
            return
        try:
            conn.send(("page", batch.id, index))
        except OSError:  # it died: the page is asked for again when it is wanted
            self._kill()
            return
        self._ahead = _Ahead(batch.id, index, time.monotonic() + batch.limits.page_timeout_s)

    def _take_ahead(self, batch: _Batch, index: int) -> Any:
        """The answer to the page asked for ahead, when it is this one: the answer, or
        :class:`_TimedOut` / :class:`_Died` raised; :data:`_NOT_ASKED` otherwise."""
        if self._early is not None and self._early[0] == (batch.id, index):
            answer, self._early = self._early[1], None
            if isinstance(answer, BaseException):
                raise answer
            return answer
        ahead = self._ahead
        if ahead is None or (ahead.batch_id, ahead.index) != (batch.id, index):
            return _NOT_ASKED
        self._ahead = None
        return self._answer(ahead.deadline)

    def _set_ahead_aside(self) -> None:
        """Before another request: take the answer to the page asked for ahead from the
        pipe (its reader finds it in ``_early``)."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return
        answer: Any
        try:
            answer = self._answer(ahead.deadline)
        except (_TimedOut, _Died) as error:
            answer = error
        self._early = ((ahead.batch_id, ahead.index), answer)

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

    def page(self, batch: _Batch, index: int, *, ahead: int | None = None) -> PageRead:
        """Page ``index`` of the file; ``ahead``: the page to ask for next, without waiting
        for it (read while the caller works on this one)."""
        timeout = batch.limits.page_timeout_s
        unreadable = PageRead(index, None, PAGE_UNREADABLE, False, b"")
        with self._lock:
            try:
                return self._page(batch, index, timeout, unreadable)
            finally:
                if ahead is not None and self._ahead is None:
                    self._ask_ahead(batch, ahead)

    def _page(self, batch: _Batch, index: int, timeout: float, unreadable: PageRead) -> PageRead:
        for attempt in (1, 2):
            try:
                reply = _NOT_ASKED if attempt == 2 else self._take_ahead(batch, index)
                if reply is _NOT_ASKED:
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
