"""The permission API benchmark's data: one deterministic population, written to PostgreSQL
with COPY and, for a subset, to SpiceDB as relationships; the check requests drawn from it.

Person ``n`` (0 ≤ n < persons) works at employer ``n % employers`` and holds
``permissions_per_person`` service permissions there: consecutive (code, service) pairs of
that employer's codes, starting at a place that depends on ``n``. Employer ``e`` has
``2 + e % 4`` employer codes; about one code in twenty is closed. Each employer's first
person is its administrator, appointed by its second person.

Personnummer are valid (Luhn check digit) in the test range: born 1930–1998, individual
numbers 980–999 (the range of Skatteverket's test personnummer), half of them as
samordningsnummer (day + 60).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import psycopg
from psycopg import sql

SERVICES = ("employment_reporting", "invoices", "pension_cases", "statistics")
GIVEN = ("Anna", "Bo", "Cecilia", "David", "Elin", "Filip", "Greta", "Hugo", "Ida", "Jonas")
FAMILY = ("Andersson", "Berg", "Carlsson", "Dahl", "Ek", "Falk", "Gustafsson", "Holm", "Isaksson")
BORN_FROM = date(1930, 1, 1)
NOW = "2026-01-15 09:00:00+00"


def luhn_digit(digits: str) -> int:
    """The check digit that makes ``digits`` + it pass the Luhn test."""
    total = 0
    for i, ch in enumerate(digits):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10


def personnummer(n: int) -> str:
    """The ``n``th test personnummer, twelve digits."""
    born = BORN_FROM + timedelta(days=n // 40)
    k = n % 40
    day = born.day + (60 if k >= 20 else 0)
    ten = f"{born.year % 100:02d}{born.month:02d}{day:02d}{980 + k % 20:03d}"
    return f"{born.year // 100}{ten}{luhn_digit(ten)}"


def orgnr(e: int) -> str:
    nine = f"556{e:06d}"
    return f"{nine}{luhn_digit(nine)}"


@dataclass(frozen=True)
class Population:
    persons: int = 1_000_000
    employers: int = 50_000
    permissions_per_person: int = 5

    def codes_of(self, e: int) -> int:
        return 2 + e % 4

    def first_code(self, e: int) -> int:
        """The index of employer ``e``'s first code among all codes (0-based)."""
        full, rest = divmod(e, 4)
        return full * (2 + 3 + 4 + 5) + sum(2 + i for i in range(rest))

    @property
    def codes(self) -> int:
        return self.first_code(self.employers)

    @staticmethod
    def code(e: int, i: int) -> str:
        return f"K{e:06d}{i}"

    @staticmethod
    def code_closed(e: int, i: int) -> bool:
        return (e * 7 + i) % 20 == 3

    def employer_of(self, n: int) -> int:
        return n % self.employers

    def permissions_of(self, n: int) -> list[tuple[int, str]]:
        """Person ``n``'s (code index within the employer, service) pairs."""
        combos = self.codes_of(self.employer_of(n)) * len(SERVICES)
        start = (n * 7919) % combos
        return [
            divmod((start + j) % combos, len(SERVICES))
            for j in range(min(self.permissions_per_person, combos))
        ]  # type: ignore[misc]

    def allowed(self, n: int, code_index: int, service: str, access: str) -> bool:
        e = self.employer_of(n)
        held = any(
            ci == code_index and SERVICES[si] == service for ci, si in self.permissions_of(n)
        )
        if not held:
            return False
        return not self.code_closed(e, code_index) or (service == "invoices" and access == "read")


@dataclass(frozen=True)
class Check:
    subject: str
    service: str
    access: str
    employer_code: str
    expected: bool


def check_requests(
    pop: Population, count: int, employers: int | None = None, seed: int = 7
) -> list[Check]:
    """``count`` checks about the persons of the employers below ``employers`` (all by
    default): half of them about a permission the person holds (in read or write), half
    about any service at one of the person's employer's codes (mostly not held)."""
    rnd = random.Random(seed)
    out = []
    for k in range(count):
        e = rnd.randrange(employers or pop.employers)
        n = e + pop.employers * rnd.randrange((pop.persons - 1 - e) // pop.employers + 1)
        if k % 2 == 0:
            ci, si = rnd.choice(pop.permissions_of(n))
            service = SERVICES[si]
        else:
            ci, service = rnd.randrange(pop.codes_of(e)), rnd.choice(SERVICES)
        access = rnd.choice(("read", "write"))
        out.append(
            Check(
                personnummer(n),
                service,
                access,
                pop.code(e, ci),
                pop.allowed(n, ci, service, access),
            )
        )
    return out


# ---- PostgreSQL ------------------------------------------------------------------------


@contextmanager
def without_indexes(conn: psycopg.Connection[Any], table: str) -> Iterator[None]:
    """Drop ``table``'s secondary indexes, unique and foreign-key constraints (as
    pg_restore loads), and make them again, with the same definitions, afterwards."""
    constraints = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('f', 'u')",
        (table,),
    ).fetchall()
    indexes = conn.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)",
        (table,),
    ).fetchall()
    for name, _ in constraints:
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(table), sql.Identifier(name)
            )
        )
    for name, _ in indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    yield
    for _, definition in indexes:
        conn.execute(definition)
    for name, definition in constraints:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
                sql.Identifier(table), sql.Identifier(name)
            )
            + sql.SQL(definition)  # type: ignore[arg-type]
        )


def _copy_lines(
    conn: psycopg.Connection[Any], table: str, columns: list[str], lines: Iterator[str]
) -> int:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    count = 0
    chunk: list[str] = []
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for line in lines:
            chunk.append(line)
            if len(chunk) == 50_000:
                copy.write("".join(chunk))
                count += len(chunk)
                chunk = []
        copy.write("".join(chunk))
        count += len(chunk)
    return count


def load_postgres(url: str, pop: Population, progress: Any = print) -> dict[str, int]:
    """COPY the population into the migrated, empty database at ``url`` (psycopg URL)."""
    E, P = pop.employers, pop.persons
    counts: dict[str, int] = {}
    with psycopg.connect(url) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET synchronous_commit = off")
        counts["employer"] = _copy_lines(
            conn,
            "employer",
            ["id", "orgnr", "name", "created_dt"],
            (f"{e + 1}\t{orgnr(e)}\tArbetsgivare {e}\t{NOW}\n" for e in range(E)),
        )

        def codes() -> Iterator[str]:
            for e in range(E):
                first = pop.first_code(e)
                for i in range(pop.codes_of(e)):
                    status = "closed" if pop.code_closed(e, i) else "active"
                    yield f"{first + i + 1}\t{e + 1}\t{pop.code(e, i)}\tEnhet {i}\t{status}\n"

        counts["employer_code"] = _copy_lines(
            conn, "employer_code", ["id", "employer_id", "code", "name", "status"], codes()
        )
        progress(f"  employers {E:,}, employer codes {counts['employer_code']:,}")

        with without_indexes(conn, "person"):
            counts["person"] = _copy_lines(
                conn,
                "person",
                ["id", "personnummer", "given_name", "family_name", "email", "created_dt"],
                (
                    f"{n + 1}\t{personnummer(n)}\t{GIVEN[n % 10]}\t{FAMILY[n % 9]}{n}"
                    f"\tp{n}@example.org\t{NOW}\n"
                    for n in range(P)
                ),
            )
            progress(f"  persons {P:,} copied; indexing")
        progress("  persons indexed")

        def permissions() -> Iterator[str]:
            pid = 1
            for n in range(P):
                e = pop.employer_of(n)
                first = pop.first_code(e)
                admin = e + 1
                for ci, si in pop.permissions_of(n):
                    yield f"{pid}\t{n + 1}\t{first + ci + 1}\t{SERVICES[si]}\t{admin}\t{NOW}\n"
                    pid += 1

        with without_indexes(conn, "service_permission"):
            counts["service_permission"] = _copy_lines(
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
            progress(f"  service permissions {counts['service_permission']:,} copied; indexing")
        progress("  service permissions indexed")

        # Each employer's first person is its administrator, appointed by its second.
        counts["role_grant"] = _copy_lines(
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
            ],
            (
                f"{e + 1}\t{e + 1}\t{e + 1}\tadministrator\tt\t{NOW}\t{E + e + 1}\n"
                for e in range(E)
                if E + e < P
            ),
        )
        for table in ("employer", "employer_code", "person", "service_permission", "role_grant"):
            conn.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({t}, 'id'), (SELECT max(id) FROM {i}))"
                ).format(t=sql.Literal(table), i=sql.Identifier(table))
            )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return counts


# ---- SpiceDB ---------------------------------------------------------------------------


def subset_persons(pop: Population, employers: int) -> Iterator[int]:
    """The persons of the employers below ``employers``."""
    for e in range(employers):
        yield from range(e, pop.persons, pop.employers)


def spicedb_relationships(
    pop: Population, employers: int
) -> Iterator[tuple[str, str, str, str, str]]:
    """(resource type, resource id, relation, subject type, subject id) of the employers
    below ``employers``, their codes and their persons' service permissions: the same facts
    as the tables hold about them."""
    for e in range(employers):
        for i in range(pop.codes_of(e)):
            code = pop.code(e, i)
            if not pop.code_closed(e, i):
                yield ("employer_code", code, "active", "person", "*")
            for service in SERVICES:
                yield ("self_service", f"{code}_{service}", "code", "employer_code", code)
            yield ("self_service", f"{code}_invoices", "readable_when_closed", "person", "*")
    for n in subset_persons(pop, employers):
        e = pop.employer_of(n)
        subject = personnummer(n)
        for ci, si in pop.permissions_of(n):
            yield ("self_service", f"{pop.code(e, ci)}_{SERVICES[si]}", "user", "person", subject)
