"""Inactivity (rule 11): an orderer's or administrator's confirmation that an inactive user
still needs their permissions at the employer.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 17:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inactivity_confirmation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("employer_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("confirmed_by_person_id", sa.Integer(), nullable=False),
        sa.Column("confirmed_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["employer_id"],
            ["employer.id"],
            name=op.f("fk_inactivity_confirmation_employer_id_employer"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_inactivity_confirmation_person_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["confirmed_by_person_id"],
            ["person.id"],
            name=op.f("fk_inactivity_confirmation_confirmed_by_person_id_person"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inactivity_confirmation")),
    )
    with op.batch_alter_table("inactivity_confirmation", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inactivity_confirmation_employer_person",
            ["employer_id", "person_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("inactivity_confirmation", schema=None) as batch_op:
        batch_op.drop_index("ix_inactivity_confirmation_employer_person")
    op.drop_table("inactivity_confirmation")
