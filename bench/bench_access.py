"""Benchmark of "Hantera behörigheter" with a large employer, on PostgreSQL.

    .venv/bin/python bench/bench_access.py [--users 5000] [--errands 100000]
        [--employers 2000] [--runs 50] [--search-param q]

A fresh database (created beside the tests' ones, dropped afterwards; ``--keep`` keeps it)
is migrated, seeded with the demo data and bulk-loaded with PostgreSQL COPY: one employer
("Storverket", 10 employer codes) with ``--users`` users holding 1–4 service permissions
each across its codes, last logins spread over 900 days (a third or so inactive), its
orderer and an administrator; ``--employers`` employers in all with a code each and a
submitter; ``--errands`` closed errands spread over them. Then, as Storverket's orderer
signed in (through the Flask test client, the whole request: session, queries, template):

- overview: ``GET /hantera-behorigheter`` (the page as it is on this branch);
- search: the same with ``?<search-param>=<a family name>``;
- review: ``GET /hantera-behorigheter/granska/<id>``, the inactive users with their marks;
- export: the permissions as CSV;
- grant change: one service permission granted to a user and ended again, each its own
  committed transaction, audited and with the user's email queued.

Prints p50/p95 per measurement and ends with ``RESULT <name> <p95 ms> 100 PASS|FAIL``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from psycopg import sql
from servers import quiet_logs

from tests.sample_forms import REGISTRATION, REMOVAL

TARGET_MS = 100.0
EXPORT_TARGET_MS = 1000.0
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
SERVICES = ("employment_reporting", "invoices", "pension_cases", "statistics")
GIVEN = ("Anna", "Bo", "Cecilia", "David", "Elin", "Filip", "Greta", "Hugo", "Ida", "Jonas")
FAMILY = ("Andersson", "Berg", "Carlsson", "Dahl", "Ek", "Falk", "Gustafsson", "Holm", "Isaksson")
BIG_CODES = 10


# ---- the database ----------------------------------------------------------------------


def _pg_url(database: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{database}"


@contextmanager
def fresh_database(keep: bool) -> Iterator[str]:
    name = f"behorighet_bench_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _pg_url(name)
    finally:
        if not keep:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def _copy(
    conn: psycopg.Connection[Any], table: str, columns: list[str], rows: Iterable[tuple[Any, ...]]
) -> int:
    count = 0
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _next_id(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(
        sql.SQL("SELECT coalesce(max(id), 0) + 1 FROM {}").format(sql.Identifier(table))
    ).fetchone()
    assert row is not None
    return int(row[0])


def _resync(conn: psycopg.Connection[Any], tables: Iterable[str]) -> None:
    for table in tables:
        conn.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence({t}, 'id'), (SELECT max(id) FROM {i}))"
            ).format(t=sql.Literal(table), i=sql.Identifier(table))
        )


OPEN_CYCLE = 20
"""Open errands (``open_errands``) take their state from their place in a cycle of 20:
12 in review unassigned, 3 in review with the caseworker, 3 awaiting completion with
the caseworker, 1 failed, 1 in review with a step being retried."""


def _open_state(slot: int) -> tuple[str, bool]:
    """The state of an open errand at ``slot`` of the cycle, and whether the caseworker
    holds it."""
    if slot < 12:
        return "in_review", False
    if slot < 15:
        return "in_review", True
    if slot < 18:
        return "awaiting_completion", True
    return ("failed", False) if slot == 18 else ("in_review", False)


def bulk_load(
    url: str,
    users: int,
    errands: int,
    employers: int,
    *,
    open_errands: int = 0,
    audit_events: int = 0,
    own_errands: int = 0,
) -> dict[str, int]:
    """COPY the large employer, the other employers and the errands; returns the ids the
    measurements need.

    ``open_errands`` of the errands are open (``_open_state``; due dates from 5 days past to
    15 ahead, each with a passed check and every fifth with a flagged one), the rest closed;
    ``audit_events`` events are spread over the errands' histories; ``own_errands`` of the
    errands (every so many) were submitted by Storverket's orderer."""
    rnd = random.Random(11)
    now = datetime.now(UTC)
    conn_url = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conn_url) as conn:
        staff_row = conn.execute(
            "SELECT min(id) FROM staff_member WHERE is_caseworker AND is_active"
        ).fetchone()
        assert staff_row is not None
        staff_id = staff_row[0]
        first_employer = _next_id(conn, "employer")
        employer_ids = list(range(first_employer, first_employer + employers))
        big = employer_ids[0]
        _copy(
            conn,
            "employer",
            ["id", "orgnr", "name", "created_dt"],
            (
                (eid, f"55{eid:08d}", "Storverket" if eid == big else f"Arbetsgivare {eid}", now)
                for eid in employer_ids
            ),
        )
        first_code = _next_id(conn, "employer_code")
        code_rows = [
            (first_code + i, big, f"S{i:05d}", f"Storverket enhet {i}", "active")
            for i in range(BIG_CODES)
        ]
        code_rows += [
            (first_code + BIG_CODES + n, eid, f"E{eid:07d}", f"Arbetsgivare {eid}", "active")
            for n, eid in enumerate(employer_ids[1:])
        ]
        _copy(conn, "employer_code", ["id", "employer_id", "code", "name", "status"], code_rows)
        big_codes = [row[0] for row in code_rows[:BIG_CODES]]

        first_person = _next_id(conn, "person")
        people = users + employers + 2  # the users, a submitter per employer, orderer, admin
        person_rows = []
        for n in range(people):
            pid = first_person + n
            seen = now - timedelta(days=rnd.randint(0, 900)) if n < users else now
            person_rows.append(
                (
                    pid,
                    f"1980{pid:08d}",
                    GIVEN[n % len(GIVEN)],
                    f"{FAMILY[n % len(FAMILY)]}{n}",
                    f"person{pid}@storverket.example",
                    seen,
                    now - timedelta(days=1000),
                )
            )
        _copy(
            conn,
            "person",
            [
                "id",
                "personnummer",
                "given_name",
                "family_name",
                "email",
                "last_login_dt",
                "created_dt",
            ],
            person_rows,
        )
        administrator = first_person + users + employers + 1

        first_permission = _next_id(conn, "service_permission")

        def permissions() -> Iterator[tuple[Any, ...]]:
            pid_counter = first_permission
            for n in range(users):
                pairs = {
                    (rnd.choice(big_codes), rnd.choice(SERVICES)) for _ in range(rnd.randint(1, 4))
                }
                for code_id, service in sorted(pairs):
                    yield (pid_counter, first_person + n, code_id, service, administrator, now)
                    pid_counter += 1

        granted = _copy(
            conn,
            "service_permission",
            [
                "id",
                "person_id",
                "employer_code_id",
                "service",
                "granted_by_person_id",
                "valid_from_dt",
            ],
            permissions(),
        )

        first_errand = _next_id(conn, "errand")
        orderer = first_person + users + employers
        own_every = errands // own_errands if own_errands else 0
        forms = {"registration": json.dumps(REGISTRATION), "removal": json.dumps(REMOVAL)}

        def errand_rows() -> Iterator[tuple[Any, ...]]:
            for n in range(errands):
                eid = employer_ids[n % employers]
                submitter = first_person + users + (n % employers)
                if own_every and n % own_every == 1:
                    submitter = orderer
                kind = "removal" if n % 7 == 3 else "registration"
                channel = "paper" if n % 5 == 2 else "e_sign"
                if n < open_errands:
                    state, held = _open_state(n % OPEN_CYCLE)
                    when = now - timedelta(days=rnd.randint(0, 20), minutes=n % 1440)
                    due = when + timedelta(days=rnd.randint(0, 20))
                    yield (
                        first_errand + n,
                        f"BB-{first_errand + n:09d}",
                        kind,
                        channel,
                        state,
                        1,
                        forms[kind],
                        eid,
                        f"1980{submitter:08d}",
                        submitter,
                        None,
                        staff_id if held else None,
                        "verify" if state == "failed" else None,
                        "bench" if state == "failed" else None,
                        "verify" if n % OPEN_CYCLE == 19 else None,
                        when,
                        when,
                        when,
                        None,
                        due,
                        now if state == "awaiting_completion" else None,
                        "sv",
                    )
                    continue
                when = now - timedelta(days=rnd.randint(1, 2000))
                yield (
                    first_errand + n,
                    f"BB-{first_errand + n:09d}",
                    kind,
                    channel,
                    "closed",
                    1,
                    forms[kind],
                    eid,
                    f"1980{submitter:08d}",
                    submitter,
                    staff_id,
                    None,
                    None,
                    None,
                    None,
                    when,
                    when,
                    when,
                    when + timedelta(days=3),
                    when + timedelta(days=14),
                    None,
                    "sv",
                )

        _copy(
            conn,
            "errand",
            [
                "id",
                "reference",
                "kind",
                "channel",
                "state",
                "version",
                "form_data",
                "employer_id",
                "subject_personnummer",
                "submitted_by_id",
                "decided_by_staff_id",
                "assigned_staff_id",
                "failed_step",
                "failure_reason",
                "retrying_step",
                "created_dt",
                "updated_dt",
                "received_dt",
                "decided_dt",
                "due_dt",
                "paused_dt",
                "language",
            ],
            errand_rows(),
        )
        _load_checks(conn, first_errand, open_errands, now)
        _load_audit_events(conn, first_errand, errands, audit_events, staff_id, now)
        orderer_errand = first_errand + ((errands - 1) // employers) * employers
        grant_id = _next_id(conn, "role_grant")
        _copy(
            conn,
            "role_grant",
            [
                "id",
                "person_id",
                "employer_id",
                "role",
                "is_all_codes",
                "valid_from_dt",
                "granted_by_person_id",
                "source_errand_id",
            ],
            [
                (grant_id, orderer, big, "orderer", True, now, None, orderer_errand),
                (grant_id + 1, administrator, big, "administrator", True, now, orderer, None),
            ],
        )
        _resync(
            conn,
            [
                "employer",
                "employer_code",
                "person",
                "service_permission",
                "errand",
                "role_grant",
                "verification_check",
                "audit_event",
            ],
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return {
        "employer": big,
        "staff": staff_id,
        "first_errand": first_errand,
        "orderer": orderer,
        "user": first_person,
        "code": big_codes[0],
        "permissions": granted,
    }


def _load_checks(
    conn: psycopg.Connection[Any], first_errand: int, open_errands: int, now: datetime
) -> None:
    """A passed check on every open errand, and a flagged one on every fifth."""
    first = _next_id(conn, "verification_check")
    rows: list[tuple[Any, ...]] = []
    for n in range(open_errands):
        rows.append((first + len(rows), first_errand + n, "signature", "passed", "[]", "", now))
        if n % 5 == 0:
            flagged = (first + len(rows), first_errand + n, "signatory", "flagged", "[]", "", now)
            rows.append(flagged)
    columns = ["id", "errand_id", "name", "outcome", "findings", "detail", "checked_dt"]
    _copy(conn, "verification_check", columns, rows)


def _load_audit_events(
    conn: psycopg.Connection[Any],
    first_errand: int,
    errands: int,
    events: int,
    staff_id: int,
    now: datetime,
) -> None:
    """``events`` audit events over the errands' histories, on the shared chain after the
    seed's (the hashes are stand-ins: a page reads the history, it does not verify it)."""
    if not events:
        return
    head = conn.execute("SELECT seq FROM audit_chain_head WHERE chain = ''").fetchone()
    seq = int(head[0]) if head else 0
    first = _next_id(conn, "audit_event")
    actions = ("received", "verified", "claimed", "commented", "approved", "applied")

    def rows() -> Iterator[tuple[Any, ...]]:
        for n in range(events):
            errand_id = first_errand + n % errands
            actor = f"staff:{staff_id}" if n % 3 else "system:pipeline"
            digest = f"{seq + n + 1:064x}"
            yield (
                first + n,
                seq + n + 1,
                now - timedelta(minutes=events - n),
                actor,
                actions[(n // errands) % len(actions)],
                "errand",
                str(errand_id),
                "{}",
                f"{seq + n:064x}",
                digest,
                1,
            )

    columns = ["id", "seq", "occurred_dt", "actor", "action", "object_type", "object_id"]
    columns += ["data", "prev_hash", "hash", "key_version"]
    _copy(conn, "audit_event", columns, rows())
    last = seq + events
    conn.execute(
        "UPDATE audit_chain_head SET seq = %s, last_hash = %s WHERE chain = ''",
        (last, f"{last:064x}"),
    )


# ---- the measurements ------------------------------------------------------------------


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    index = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def measure(run: Callable[[], None], runs: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--errands", type=int, default=100_000)
    parser.add_argument("--employers", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--search-param", default="sok")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    quiet_logs()

    from sqlalchemy import select

    from app import create_app
    from app.access import management
    from app.access.models import Person, SelfService
    from app.cli import migrate_database
    from app.config import Settings
    from devtools.seed import seed_demo

    with fresh_database(args.keep) as url:
        url = url.replace("postgresql://", "postgresql+psycopg://")
        migrate_database(url)
        app = create_app(
            Settings(database_url=url, broker_url="stub://", secret_key="bench", testing=True)
        )
        runtime = app.extensions["behorighet"]
        with runtime.unit_of_work() as session:
            seed_demo(session)
        started = time.perf_counter()
        ids = bulk_load(url, args.users, args.errands, args.employers)
        load_s = time.perf_counter() - started
        print(
            f"Loaded {args.employers} employers, {args.users} users with {ids['permissions']} "
            f"permissions at one of them, {args.errands} errands in {load_s:.1f} s"
        )

        client = app.test_client()
        with client.session_transaction() as browser:
            now = time.time()
            browser["agent"] = {"kind": "person", "id": ids["orderer"]}
            browser["login_ts"] = now
            browser["seen_ts"] = now
            browser["employer_id"] = ids["employer"]

        def get(path: str) -> Callable[[], None]:
            def run() -> None:
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)

            return run

        base_url = runtime.settings.public_base_url

        def grant_change() -> None:
            """The orderer grants a user one permission, then ends it: two changes, each
            one audited transaction with its email, through the same service as the page."""
            permission = [(SelfService.STATISTICS, ids["code"])]
            for grant, revoke in ((permission, []), ([], permission)):
                with runtime.unit_of_work() as session:
                    authority = management.authority_at(session, ids["orderer"], ids["employer"])
                    actor = management.Actor(authority, base_url)
                    management.change_permissions(
                        session, actor, ids["user"], grant=grant, revoke=revoke, reason="bench"
                    )

        with runtime.session_factory() as session:
            family = session.scalars(
                select(Person.family_name).where(Person.id == ids["user"] + 1234)
            ).one()
        page = "/hantera-behorigheter"
        review = f"/hantera-behorigheter/granska/{ids['employer']}"
        search = f"{page}?{args.search_param}={family}"
        export = f"{review}/behorigheter.csv"
        cases: list[tuple[str, str, Callable[[], None], int, float]] = [
            ("overview", page, get(page), args.runs, TARGET_MS),
            ("search", search, get(search), args.runs, TARGET_MS),
            ("review", review, get(review), args.runs, TARGET_MS),
            ("grant_change", "grant + end a permission", grant_change, args.runs, TARGET_MS),
            # A download of every permission (≈ 12,500 rows), not a page: a second will do.
            ("export", export, get(export), max(5, args.runs // 5), EXPORT_TARGET_MS),
        ]
        results = []
        for name, what, run, runs, target in cases:
            samples = measure(run, runs)
            results.append(
                (name, what, runs, statistics.median(samples), percentile(samples, 95), target)
            )

    print()
    print("| measurement | what | runs | p50 ms | p95 ms | target ms |")
    print("|---|---|---|---|---|---|")
    for name, what, runs, p50, p95, target in results:
        print(f"| {name} | `{what}` | {runs} | {p50:.1f} | {p95:.1f} | {target:.0f} |")
    print()
    failed = False
    for name, _what, _runs, _p50, p95, target in results:
        verdict = "PASS" if p95 < target else "FAIL"
        failed |= verdict == "FAIL"
        print(f"RESULT {name} {p95:.1f} {target:.0f} {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
