"""Server-side web sessions, each person's last permission change found quickly (it ends
their sessions), and blank forms kept once rendered.

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-03 02:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_session",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("expires_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_session")),
    )
    op.create_index(op.f("ix_web_session_expires_dt"), "web_session", ["expires_dt"])
    op.create_index(
        "ix_permission_change_person_created", "permission_change", ["person_id", "created_dt"]
    )
    op.create_table(
        "blank_form",
        sa.Column(
            "kind",
            sa.Enum(
                "registration",
                "removal",
                name="errand_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("template_version", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "kind", "language", "template_version", "key_id", name=op.f("pk_blank_form")
        ),
    )


def downgrade() -> None:
    op.drop_table("blank_form")
    op.drop_index("ix_permission_change_person_created", table_name="permission_change")
    op.drop_index(op.f("ix_web_session_expires_dt"), table_name="web_session")
    op.drop_table("web_session")
