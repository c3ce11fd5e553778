"""A closed-loop load generator, run in its own process by bench/bench_api.py.

    python bench/loadgen.py SPEC.json   → one JSON line with the figures on stdout

SPEC: {"kind": "http" | "grpc", "host", "port", "path", "headers": {...},
"bodies": [...] (JSON texts for http, hex of serialized protobuf for grpc),
"concurrency", "warmup_s", "duration_s"}.

``concurrency`` workers each send one request, wait for its answer and send the next (the
bodies taken in turn), over one kept-alive connection each (http: HTTP/1.1 written by hand
on asyncio streams, the least work a Python client can do; grpc: grpcio's asyncio channel,
one HTTP/2 connection, the request bytes sent as they are). Requests started in the
``duration_s`` after ``warmup_s`` are counted; an answer that is not 200 (http) or OK
(grpc) counts as an error. The figures include the generator's own CPU time, to tell
how much of the two cores it took from the server. The window's start and end are said on
standard error as they pass (``WINDOW_STARTED``, ``WINDOW_ENDED``).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

WINDOW_STARTED = "window started"
WINDOW_ENDED = "window ended"


class Window:
    def __init__(self, warmup_s: float, duration_s: float) -> None:
        self.start = time.perf_counter() + warmup_s
        self.end = self.start + duration_s
        self.latencies: list[float] = []
        self.allowed = 0
        self.errors = 0
        self.error_sample = ""

    def record(self, started: float, ok: bool, allowed: bool, detail: str = "") -> None:
        if not self.start <= started < self.end:
            return
        if ok:
            self.latencies.append(time.perf_counter() - started)
            self.allowed += allowed
        else:
            self.errors += 1
            self.error_sample = self.error_sample or detail


async def http_worker(spec: dict[str, Any], window: Window, offset: int) -> None:
    host, port = spec["host"], spec["port"]
    head = f"POST {spec['path']} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in spec["headers"].items())
    requests = []
    for body in spec["bodies"]:
        data = body.encode()
        requests.append(
            (
                head + f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data
        )
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    while time.perf_counter() < window.end:
        started = time.perf_counter()
        writer.write(requests[i % len(requests)])
        i += 1
        try:
            header = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
            window.record(started, False, False, "connection closed")
            continue
        status = header[9:12]
        lower = header.lower()
        at = lower.find(b"content-length:")
        length = int(lower[at + 15 : lower.find(b"\r\n", at)]) if at >= 0 else 0
        body = await reader.readexactly(length)
        if status == b"200":
            window.record(started, True, b'"allowed":true' in body.replace(b" ", b""))
        else:
            window.record(started, False, False, (header + body)[:300].decode(errors="replace"))
        if b"connection: close" in lower:
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
    writer.close()


async def grpc_run(spec: dict[str, Any], window: Window) -> None:
    import grpc
    from authzed.api.v1 import CheckPermissionResponse

    has_permission = CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION
    bodies = [bytes.fromhex(b) for b in spec["bodies"]]
    async with grpc.aio.insecure_channel(f"{spec['host']}:{spec['port']}") as channel:
        call = channel.unary_unary(spec["path"])

        async def worker(offset: int) -> None:
            i = offset
            while time.perf_counter() < window.end:
                started = time.perf_counter()
                try:
                    raw = await call(bodies[i % len(bodies)])
                except grpc.aio.AioRpcError as exc:
                    window.record(started, False, False, f"{exc.code()}: {exc.details()}")
                else:
                    allowed = CheckPermissionResponse.FromString(raw).permissionship
                    window.record(started, True, allowed == has_permission)
                i += 1

        await asyncio.gather(*(worker(k * 997) for k in range(spec["concurrency"])))


def percentile(ordered: list[float], p: float) -> float:
    index = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    window = Window(spec["warmup_s"], spec["duration_s"])

    async def mark(at: float, label: str) -> float:
        """This process's CPU time at ``at``, said on standard error (a bench that measures
        the servers over the same window waits for these lines)."""
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(label, file=sys.stderr, flush=True)
        return usage.ru_utime + usage.ru_stime

    started = asyncio.create_task(mark(window.start, WINDOW_STARTED))
    ended = asyncio.create_task(mark(window.end, WINDOW_ENDED))
    if spec["kind"] == "http":
        await asyncio.gather(
            *(http_worker(spec, window, k * 997) for k in range(spec["concurrency"]))
        )
    else:
        await grpc_run(spec, window)
    cpu_s = await ended - await started
    ordered = sorted(window.latencies)
    done = len(ordered)
    return {
        "requests": done,
        "errors": window.errors,
        "error_sample": window.error_sample,
        "allowed": window.allowed,
        "throughput": done / spec["duration_s"],
        "p50_ms": percentile(ordered, 50) * 1000 if done else None,
        "p95_ms": percentile(ordered, 95) * 1000 if done else None,
        "p99_ms": percentile(ordered, 99) * 1000 if done else None,
        "loadgen_cpu": cpu_s / spec["duration_s"],
    }


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    print(json.dumps(asyncio.run(main(spec))))
