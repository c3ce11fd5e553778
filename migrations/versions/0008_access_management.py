"""Hantera behörigheter: users' requests for permissions, and the indexes the overview
needs (a user's permissions, persons by name).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 17:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "permission_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("employer_id", sa.Integer(), nullable=False),
        sa.Column("employer_code_id", sa.Integer(), nullable=False),
        sa.Column(
            "service",
            sa.Enum(
                "employment_reporting",
                "invoices",
                "pension_cases",
                "statistics",
                name="self_service",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("created_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by_person_id", sa.Integer(), nullable=True),
        sa.Column(
            "outcome",
            sa.Enum(
                "granted",
                "declined",
                name="request_outcome",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.CheckConstraint(
            "(decided_dt IS NULL) = (outcome IS NULL)",
            name=op.f("ck_permission_request_decided_with_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_permission_request_person_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["employer_id"],
            ["employer.id"],
            name=op.f("fk_permission_request_employer_id_employer"),
        ),
        sa.ForeignKeyConstraint(
            ["employer_code_id"],
            ["employer_code.id"],
            name=op.f("fk_permission_request_employer_code_id_employer_code"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_person_id"],
            ["person.id"],
            name=op.f("fk_permission_request_decided_by_person_id_person"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_permission_request")),
    )
    with op.batch_alter_table("permission_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_permission_request_person_id"), ["person_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_permission_request_employer_id"), ["employer_id"], unique=False
        )
        batch_op.create_index(
            "uq_permission_request_pending",
            ["person_id", "employer_code_id", "service"],
            unique=True,
            postgresql_where=sa.text("decided_dt IS NULL"),
            sqlite_where=sa.text("decided_dt IS NULL"),
        )
    with op.batch_alter_table("service_permission", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_service_permission_person_id"), ["person_id"], unique=False
        )
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.create_index("ix_person_name", ["family_name", "given_name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_index("ix_person_name")
    with op.batch_alter_table("service_permission", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_permission_person_id"))
    op.drop_table("permission_request")
