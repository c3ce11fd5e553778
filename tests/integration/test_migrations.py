"""The Alembic migrations build exactly the schema the models describe.

Alembic's autogenerate compares tables, columns, types, indexes and unique constraints, but
not CHECK constraints, and the enums are stored as strings checked by CHECK constraints: the
rules and the allowed states live exactly there. So the CHECK constraints of the migrated
database are compared, as PostgreSQL itself prints them, with those of a database built
straight from the models.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from psycopg import sql
from sqlalchemy import Connection, create_engine, text

import app.models  # noqa: F401  (every model registered on Base.metadata)
from app.db import Base
from devtools import models as devtools_models
from tests.support import PG_ADMIN_URL, PG_TEST_DB

CheckConstraints = dict[tuple[str, str], str]

_CHECKS = text(
    """
    SELECT rel.relname, con.conname, pg_get_constraintdef(con.oid)
    FROM pg_constraint con
    JOIN pg_class rel ON rel.oid = con.conrelid
    JOIN pg_namespace nsp ON nsp.oid = rel.relnamespace
    WHERE con.contype = 'c' AND nsp.nspname = 'public' AND rel.relname <> 'alembic_version'
    """
)


def check_constraints(conn: Connection) -> CheckConstraints:
    """Every CHECK constraint of the product's tables: (table, name) → PostgreSQL's own
    definition (the stand-ins' tables, which the tests make beside them, left out)."""
    return {
        (table, name): definition
        for table, name, definition in conn.execute(_CHECKS)
        if table not in devtools_models.metadata.tables
    }


def check_differences(migrated: CheckConstraints, modelled: CheckConstraints) -> list[str]:
    """What the migrations lack, have in addition, or define otherwise than the models."""
    differences = [f"missing in the migrations: {key}" for key in modelled.keys() - migrated]
    differences += [f"not in the models: {key}" for key in migrated.keys() - modelled]
    differences += [
        f"{key}: migrations say {migrated[key]!r}, models say {modelled[key]!r}"
        for key in migrated.keys() & modelled.keys()
        if migrated[key] != modelled[key]
    ]
    return sorted(differences)


@pytest.fixture(scope="module")
def modelled_checks(database_url: str) -> Iterator[CheckConstraints]:
    """The CHECK constraints of a scratch database made by ``create_all`` from the models."""
    name = f"{PG_TEST_DB}_models"
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(drop)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    engine = create_engine(database_url.rsplit("/", 1)[0] + f"/{name}")
    try:
        Base.metadata.create_all(engine)
        with engine.connect() as conn:
            yield check_constraints(conn)
    finally:
        engine.dispose()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(drop)


def _production_object(name: str | None, type_: str, _parents: dict[str, str | None]) -> bool:
    """Everything but the stand-ins' own tables, which the tests make beside the product's."""
    return not (type_ == "table" and name in devtools_models.metadata.tables)


def test_migrations_match_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": _production_object}
            )
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_check_constraints_and_enum_values_match_the_models(
    database_url: str, modelled_checks: CheckConstraints
) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            migrated = check_constraints(conn)
    finally:
        engine.dispose()
    assert len(migrated) > 20, "the migrated database has hardly any CHECK constraints"
    assert check_differences(migrated, modelled_checks) == []


def test_an_altered_check_constraint_is_caught(
    database_url: str, modelled_checks: CheckConstraints
) -> None:
    """A migration that forgets an enum value, drops a rule or loosens it is reported."""
    enum_check = next(
        (table, name)
        for (table, name), definition in modelled_checks.items()
        if "'approved'" in definition and "'closed'" in definition
    )
    rule_check = ("role_grant", "ck_role_grant_orderer_from_errand")
    assert rule_check in modelled_checks
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn, conn.begin() as transaction:
            table, name = enum_check
            without_closed = modelled_checks[enum_check].replace(
                ", 'closed'::character varying", ""
            )
            assert without_closed != modelled_checks[enum_check]
            conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
            conn.execute(
                text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {without_closed} NOT VALID')
            )
            conn.execute(text(f'ALTER TABLE role_grant DROP CONSTRAINT "{rule_check[1]}"'))
            conn.execute(text("ALTER TABLE role_grant ADD CONSTRAINT loose CHECK (true)"))
            differences = check_differences(check_constraints(conn), modelled_checks)
            transaction.rollback()
    finally:
        engine.dispose()
    assert len(differences) == 3, differences
    assert differences[0].startswith(f"{enum_check}: migrations say ")
    assert "'closed'" not in differences[0].split(", models say")[0]
    assert differences[1:] == [
        f"missing in the migrations: {rule_check}",
        "not in the models: ('role_grant', 'loose')",
    ]


def test_no_stand_in_table_is_the_products() -> None:
    assert not set(devtools_models.metadata.tables) & set(Base.metadata.tables)
