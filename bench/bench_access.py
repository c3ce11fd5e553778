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


def bulk_load(url: str, users: int, errands: int, employers: int) -> dict[str, int]:
    """COPY the large employer, the other employers and the errands; returns the ids the
    measurements need."""
    rnd = random.Random(11)
    now = datetime.now(UTC)
    conn_url = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conn_url) as conn:
        staff_row = conn.execute("SELECT min(id) FROM staff_member").fetchone()
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
        orderer = first_person + users + employers
        administrator = orderer + 1

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

        def errand_rows() -> Iterator[tuple[Any, ...]]:
            for n in range(errands):
                eid = employer_ids[n % employers]
                submitter = first_person + users + (n % employers)
                when = now - timedelta(days=rnd.randint(1, 2000))
                yield (
                    first_errand + n,
                    f"BB-{first_errand + n:09d}",
                    "registration",
                    "e_sign",
                    "closed",
                    1,
                    "{}",
                    eid,
                    f"1980{submitter:08d}",
                    submitter,
                    staff_id,
                    when,
                    when,
                    when,
                    when + timedelta(days=3),
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
                "created_dt",
                "updated_dt",
                "received_dt",
                "decided_dt",
                "language",
            ],
            errand_rows(),
        )
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
            ["employer", "employer_code", "person", "service_permission", "errand", "role_grant"],
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return {
        "employer": big,
        "orderer": orderer,
        "user": first_person,
        "code": big_codes[0],
        "permissions": granted,
    }


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
            for change in ({"grant": permission}, {"revoke": permission}):
                with runtime.unit_of_work() as session:
                    authority = management.authority_at(session, ids["orderer"], ids["employer"])
                    actor = management.Actor(authority, base_url)
                    management.change_permissions(
                        session, actor, ids["user"], reason="bench", **change
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
