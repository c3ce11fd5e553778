"""CPU time of processes and of the machine, from Linux ``/proc``: what the benches that run
servers on the same cores measure their parts by."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    name: str
    """The kernel's short name (``comm``): ``postgres``, ``redis-server``, ``gunicorn``…"""
    cmdline: str
    cpu_s: float
    """User and system CPU time so far."""


def _stat(pid: int) -> tuple[str, list[str]]:
    text = Path(f"/proc/{pid}/stat").read_text()
    head, _, rest = text.rpartition(")")
    return head.split("(", 1)[1], rest.split()


def processes() -> Iterator[Process]:
    """Every process readable now (one that ends meanwhile is left out)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name, fields = _stat(int(entry.name))
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / TICKS
        yield Process(int(entry.name), int(fields[1]), name, cmdline.strip(), cpu)


_CLIENT_BACKEND = re.compile(r"\(\d+\)|\[local\]")
"""A PostgreSQL process title's client address: a backend serving a connection."""


def postgres_for(database: str, postmaster: int) -> Callable[[Process], bool]:
    """PostgreSQL's processes working for ``database`` on the server whose main process is
    ``postmaster`` (:func:`parent_of` a backend of it): the database's backends (their
    titles name it) and the server's own (WAL writer, checkpointer, background writer…);
    not backends of other databases, nor another server's processes."""

    def accepts(process: Process) -> bool:
        if process.name != "postgres" or postmaster not in (process.pid, process.ppid):
            return False
        return f" {database} " in process.cmdline or not _CLIENT_BACKEND.search(process.cmdline)

    return accepts


def parent_of(pid: int) -> int:
    """A process's parent's id."""
    _, fields = _stat(pid)
    return int(fields[1])


def snapshot() -> dict[int, Process]:
    """Every process readable now, by id."""
    return {p.pid: p for p in processes()}


def spent(
    parts: dict[str, Callable[[Process], bool]],
    before: dict[int, Process],
    after: dict[int, Process],
) -> dict[str, float]:
    """CPU seconds each part spent between two snapshots: the processes its test accepts
    (the first part that accepts a process has it), each from the first snapshot or from its
    start; a process that ended in between is left out, not subtracted."""
    found = dict.fromkeys(parts, 0.0)
    for pid, process in after.items():
        earlier = before.get(pid)
        since = earlier.cpu_s if earlier is not None and earlier.name == process.name else 0.0
        for name, accepts in parts.items():
            if accepts(process):
                found[name] += process.cpu_s - since
                break
    return found


def machine_times() -> tuple[int, int]:
    """The machine's (busy, total) CPU ticks so far, every core (``/proc/stat``)."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)
