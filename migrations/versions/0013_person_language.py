"""A person's language (the one they last logged in with): their emails are written in it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 19:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("person") as batch:
        batch.add_column(sa.Column("language", sa.String(length=2), nullable=True))
        batch.create_check_constraint(
            op.f("ck_person_language_supported"), "language IN ('sv', 'en')"
        )


def downgrade() -> None:
    with op.batch_alter_table("person") as batch:
        batch.drop_constraint(op.f("ck_person_language_supported"), type_="check")
        batch.drop_column("language")
