"""One English word for an errand: the tables, columns, constraints and indexes called
``submission`` are called ``errand``, as the code calls them.

Pipeline messages still waiting in the outbox get their ``submission_id`` argument renamed
too, so that a database upgraded with work in flight finishes it. On SQLite (the demo) the
names of CHECK and UNIQUE constraints live inside each table's SQL and keep their old
words; only error messages show them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _rename_everywhere("submission", "errand")


def downgrade() -> None:
    _rename_everywhere("errand", "submission")


def _rename_everywhere(old: str, new: str) -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    for table in inspector.get_table_names():
        for column in inspector.get_columns(table):
            if old in column["name"]:
                op.alter_column(
                    table, column["name"], new_column_name=column["name"].replace(old, new)
                )
    for table in inspector.get_table_names():
        if old in table:
            op.rename_table(table, table.replace(old, new))
    if bind.dialect.name == "postgresql":
        _rename_postgresql_objects(old, new)
    else:
        _rename_sqlite_indexes(old, new)
    op.execute(
        sa.text(
            "UPDATE outbox_message SET kwargs = CAST(REPLACE(CAST(kwargs AS TEXT), :old, :new) AS JSON)"
            " WHERE done_dt IS NULL"
        ).bindparams(old=f'"{old}_id"', new=f'"{new}_id"')
    )


def _rename_postgresql_objects(old: str, new: str) -> None:
    bind = op.get_bind()
    constraints = bind.execute(
        sa.text(
            "SELECT rel.relname, con.conname FROM pg_constraint con"
            " JOIN pg_class rel ON rel.oid = con.conrelid"
            " JOIN pg_namespace nsp ON nsp.oid = rel.relnamespace"
            " WHERE nsp.nspname = current_schema() AND con.conname LIKE :pattern"
        ),
        {"pattern": f"%{old}%"},
    ).all()
    for table, name in constraints:
        op.execute(
            f'ALTER TABLE "{table}" RENAME CONSTRAINT "{name}" TO "{name.replace(old, new)}"'
        )
    # Indexes (those behind primary keys and unique constraints were renamed with them).
    for kind, keyword in (("i", "INDEX"), ("S", "SEQUENCE")):
        names = bind.execute(
            sa.text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND c.relkind = :kind AND c.relname LIKE :pattern"
            ),
            {"kind": kind, "pattern": f"%{old}%"},
        ).scalars()
        for name in list(names):
            op.execute(f'ALTER {keyword} "{name}" RENAME TO "{name.replace(old, new)}"')


def _rename_sqlite_indexes(old: str, new: str) -> None:
    # SQLite rewrote the indexes' table and column names with the renames above; an index
    # cannot be renamed, so each is made again under its new name. Constraint names live
    # inside the tables' SQL and only name the rule in error messages.
    bind = op.get_bind()
    indexes = bind.execute(
        sa.text(
            "SELECT name, sql FROM sqlite_master"
            " WHERE type = 'index' AND sql IS NOT NULL AND name LIKE :pattern"
        ),
        {"pattern": f"%{old}%"},
    ).all()
    for name, sql in indexes:
        op.execute(f'DROP INDEX "{name}"')
        op.execute(sql.replace(name, name.replace(old, new), 1))
