"""Benchmark of every list and page under ``behorighet serve``, on PostgreSQL.

    .venv/bin/python bench/bench_pages.py [--errands 100000] [--employers 2000]
        [--users 5000] [--audit-events 400000] [--open-errands 10000] [--own-errands 1000]
        [--runs 40] [--workers 2] [--threads 4] [--keep]

A fresh database (dropped afterwards unless ``--keep``) is migrated, seeded with the demo
data and bulk-loaded by bench/bench_access.py's COPY loader: ``--employers`` employers,
``--errands`` errands of which ``--open-errands`` are open (in review, with a
caseworker, awaiting completion, failed, retried; due dates around today) and
``--own-errands`` submitted by one orderer, ``--audit-events`` audit events over their
histories, and one employer with ``--users`` users.

``behorighet serve`` (gunicorn, ``--workers`` × ``--threads``) is started on it with
``BEHORIGHET_TESTING=1`` (a process the tests start). The bench signs its requests in
as the caseworker and the orderer by sessions it puts in the server's session store
(what the BankID login puts there; no route is added). Each page
is requested ``--runs`` times one at a time, then by four clients at once (each
``--runs`` times), over kept-alive connections; the whole answer is read.

Prints a table (page, p50 and p95 at 1 and at 4, and the CPU time gunicorn's workers
spent a request during the one-at-a-time runs: the work, whatever else the machine is
doing) and one ``RESULT page_<name>_p95_ms <worse p95 of 1 and 4> 100 PASS|FAIL`` line a
page.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from bench_access import bulk_load, fresh_database, percentile
from cpu import snapshot, spent
from servers import quiet_logs, wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 100.0
SECRET = "bench-pages"
BIN = Path(sys.executable).parent


def log(message: str) -> None:
    print(message, flush=True)


def session_cookie(url: str, agent: dict[str, Any], **extra: Any) -> str:
    """The session a BankID login leaves (``app.web``: agent, login and seen times), put in
    the server's session store (``app.eid.sessions``) as a login does; the cookie is its id."""
    import secrets
    from datetime import timedelta

    from flask_session.base import ServerSideSession

    from app import create_app
    from app.config import Settings
    from app.eid.sessions import KEY_PREFIX

    app = create_app(Settings(database_url=url, secret_key=SECRET, testing=True))
    sid = secrets.token_urlsafe(32)
    now = time.time()
    # "Seen" far in the future, so that the 30-second rewrite never writes the store.
    data = {"agent": agent, "login_ts": now, "seen_ts": now + 3600, **extra}
    session = ServerSideSession(data, sid=sid, permanent=True)
    app.session_interface._upsert_session(timedelta(hours=10), session, KEY_PREFIX + sid)  # type: ignore[attr-defined]
    return sid


@contextmanager
def serve(url: str, workers: int, threads: int) -> Iterator[tuple[str, int]]:
    from tests.support import TEST_PROCESS, free_port

    port = free_port()
    log_path = Path(tempfile.gettempdir()) / f"bench-pages-serve-{os.getpid()}.log"
    log_file = log_path.open("wb")
    log(f"`behorighet serve` logs to {log_path}")
    env = {
        **os.environ,
        **TEST_PROCESS,
        "DATABASE_URL": url,
        "BROKER_URL": "stub://",
        "SECRET_KEY": SECRET,
        "SESSION_IDLE_MINUTES": "600",
        "LOG_LEVEL": "INFO",  # as in production: a line a request (into the file)
    }
    process = subprocess.Popen(
        [
            str(BIN / "behorighet"),
            "serve",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,  # gunicorn's access log
        stderr=log_file,  # the app's line a request: not into the bench's output
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, process)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)
        log_file.close()


def timed_gets(base: str, cookie: str, path: str, runs: int) -> list[float]:
    """``runs`` answers to ``path`` one after another on one kept-alive connection, each
    read whole, in ms. The standard library's client: it costs the machine a third of
    what httpx does a request, which the server's four-at-once figures would pay."""
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
    headers = {"Cookie": f"session={cookie}"}
    samples = []
    try:
        for n in range(runs + 2):
            started = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status == 200, (path, response.status)
            if n >= 2:  # the first two warm the connection and the worker
                samples.append(elapsed)
    finally:
        connection.close()
    return samples


def concurrent_gets(base: str, cookie: str, path: str, runs: int, clients: int) -> list[float]:
    results: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = timed_gets(base, cookie, path, runs)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [s for r in results for s in r]


def pages(ids: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(name, who, path) of every page measured."""
    q = "/handlaggning"
    return [
        ("queue_unassigned", "staff", q),
        ("queue_mine", "staff", f"{q}?lista=mina"),
        ("queue_overdue", "staff", f"{q}?lista=forsenade"),
        ("queue_completion", "staff", f"{q}?lista=komplettering"),
        ("queue_failed", "staff", f"{q}?lista=fel"),
        ("queue_sort_age", "staff", f"{q}?ordning=age"),
        ("queue_kind_channel", "staff", f"{q}?typ=removal&kanal=paper"),
        ("queue_flagged", "staff", f"{q}?kontroller=flagged"),
        ("queue_passed", "staff", f"{q}?kontroller=passed&ordning=age"),
        ("queue_employer_name", "staff", f"{q}?arbetsgivare=Arbetsgivare+1234"),
        ("queue_employer_orgnr", "staff", f"{q}?arbetsgivare={ids['orgnr']}"),
        ("queue_deep_page", "staff", ids["deep_queue"]),
        ("errand", "staff", f"{q}/{ids['errand_ref']}"),
        ("employer_lookup_name", "staff", f"{q}/arbetsgivare?q=Arbetsgivare+12"),
        ("employer_lookup_orgnr", "staff", f"{q}/arbetsgivare?q={ids['big_orgnr']}"),
        ("my_errands", "orderer", "/mina-arenden"),
        ("my_errands_deep_page", "orderer", ids["deep_own"]),
        ("my_errands_search", "orderer", f"/mina-arenden?sok={ids['own_ref']}"),
        ("my_errands_search_name", "orderer", "/mina-arenden?sok=Arbetsgivare+17"),
        ("access_overview", "orderer", "/hantera-behorigheter"),
        ("access_search", "orderer", f"/hantera-behorigheter?sok={ids['family']}"),
    ]


def deep_link(base: str, cookie: str, path: str, steps: int) -> str:
    """The page ``steps`` pages on from ``path``, by following the "Nästa" link as a
    caseworker or submitter would (the link is whatever the page offers)."""
    import re

    with httpx.Client(base_url=base, cookies={"session": cookie}, timeout=30) as client:
        for _ in range(steps):
            body = client.get(path).text
            found = re.search(r'<a href="([^"]+)"[^>]*rel="next"', body)
            if found is None:
                break
            path = found.group(1).replace("&amp;", "&")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errands", type=int, default=100_000)
    parser.add_argument("--employers", type=int, default=2000)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--audit-events", type=int, default=400_000)
    parser.add_argument("--open-errands", type=int, default=10_000)
    parser.add_argument("--own-errands", type=int, default=1000)
    parser.add_argument("--deep", type=int, default=100, help="pages on for the deep pages")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--pages", default="", help="only these pages (names, comma-separated)")
    parser.add_argument(
        "--load-only", action="store_true", help="load and keep the database, measure nothing"
    )
    args = parser.parse_args()
    quiet_logs()
    args.keep |= args.load_only

    from sqlalchemy import select

    from app import create_app
    from app.access.models import Employer, Person
    from app.cli import migrate_database
    from app.config import Settings
    from app.registrations.models import Errand
    from devtools.seed import seed_demo

    with fresh_database(args.keep) as url:
        url = url.replace("postgresql://", "postgresql+psycopg://")
        migrate_database(url)
        app = create_app(
            Settings(database_url=url, broker_url="stub://", secret_key=SECRET, testing=True)
        )
        runtime = app.extensions["behorighet"]
        with runtime.unit_of_work() as session:
            seed_demo(session)
        started = time.perf_counter()
        ids: dict[str, Any] = dict(
            bulk_load(
                url,
                args.users,
                args.errands,
                args.employers,
                open_errands=args.open_errands,
                audit_events=args.audit_events,
                own_errands=args.own_errands,
            )
        )
        log(
            f"Loaded {args.employers} employers, {args.errands} errands ({args.open_errands} "
            f"open, {args.own_errands} of one submitter), {args.audit_events} audit events, "
            f"{args.users} users at one employer in {time.perf_counter() - started:.1f} s"
        )
        with runtime.session_factory() as session:
            ids["family"] = session.scalars(
                select(Person.family_name).where(
                    Person.id == ids["user"] + min(1234, args.users - 1)
                )
            ).one()
            ids["big_orgnr"] = session.get(Employer, ids["employer"]).orgnr
            ids["orgnr"] = session.get(Employer, ids["employer"] + 77).orgnr
            ids["errand_ref"] = session.scalars(
                select(Errand.reference).where(Errand.id == ids["first_errand"] + 12)
            ).one()
            ids["own_ref"] = session.scalars(
                select(Errand.reference)
                .where(Errand.submitted_by_id == ids["orderer"])
                .order_by(Errand.id.desc())
                .offset(args.own_errands // 2)
                .limit(1)
            ).one()
        if args.load_only:
            log(f"Kept: {url}")
            return 0
        cookies = {
            "staff": session_cookie(url, {"kind": "staff", "id": ids["staff"]}),
            "orderer": session_cookie(
                url, {"kind": "person", "id": ids["orderer"]}, employer_id=ids["employer"]
            ),
        }
        results = []
        with serve(url, args.workers, args.threads) as (base, server):
            ids["deep_queue"] = deep_link(base, cookies["staff"], "/handlaggning", args.deep)
            ids["deep_own"] = deep_link(base, cookies["orderer"], "/mina-arenden", args.deep // 4)
            log(f"Deep pages: {ids['deep_queue']} and {ids['deep_own']}")
            chosen = set(filter(None, args.pages.split(",")))
            for name, who, path in pages(ids):
                if chosen and name not in chosen:
                    continue
                before = snapshot()
                one = timed_gets(base, cookies[who], path, args.runs)
                workers = {"workers": lambda p: p.ppid == server}  # gunicorn's
                cpu_ms = spent(workers, before, snapshot())["workers"] * 1000 / (args.runs + 2)
                four = concurrent_gets(base, cookies[who], path, args.runs, 4)
                row = (name, path, statistics.median(one), percentile(one, 95))
                results.append((*row, statistics.median(four), percentile(four, 95), cpu_ms))
                log(f"  {name}: p95 {results[-1][3]:.1f} ms at 1, {results[-1][5]:.1f} at 4")

    load = os.getloadavg()
    print()
    print(f"Load average while measuring: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"`behorighet serve`: {args.workers} workers × {args.threads} threads")
    print()
    print(
        "| page | path | p50 ms at 1 | p95 ms at 1 | p50 ms at 4 | p95 ms at 4 "
        "| web CPU ms a request |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, path, p50, p95, p50_4, p95_4, cpu_ms in results:
        short = path if len(path) < 60 else path[:57] + "…"
        print(
            f"| {name} | `{short}` | {p50:.1f} | {p95:.1f} | {p50_4:.1f} | {p95_4:.1f} "
            f"| {cpu_ms:.1f} |"
        )
    print()
    failed = False
    for name, _path, _p50, p95, _p50_4, p95_4, _cpu in results:
        worst = max(p95, p95_4)
        verdict = "PASS" if worst < TARGET_MS else "FAIL"
        failed |= verdict == "FAIL"
        print(f"RESULT page_{name}_p95_ms {worst:.1f} {TARGET_MS:.0f} {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
