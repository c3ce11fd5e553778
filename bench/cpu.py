"""CPU time of processes and of the machine, from Linux ``/proc``: what the benches that run
servers on the same cores measure their parts by."""

from __future__ import annotations

import os
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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    _, fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS


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


def cpu_by_part(parts: dict[str, Callable[[Process], bool]]) -> dict[str, float]:
    """CPU seconds so far of each part: the processes its test accepts (the first part that
    accepts a process has it)."""
    found = dict.fromkeys(parts, 0.0)
    for process in processes():
        for name, accepts in parts.items():
            if accepts(process):
                found[name] += process.cpu_s
                break
    return found


def machine_times() -> tuple[int, int]:
    """The machine's (busy, total) CPU ticks so far, every core (``/proc/stat``)."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)
