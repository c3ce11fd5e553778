"""The archive's view of each stored PDF: its PAdES level, when its newest timestamp's TSA
certificate ends, when it was last checked (``app.registrations.archive``).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 09:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

UNCHECKED = sa.text("archive_level IS NULL AND media_type = 'application/pdf'")


def upgrade() -> None:
    with op.batch_alter_table("errand_document") as batch:
        batch.add_column(sa.Column("archive_level", sa.String(8), nullable=True))
        batch.add_column(
            sa.Column("timestamp_expires_dt", app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("archive_checked_dt", app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch.create_index(
            "ix_errand_document_unchecked",
            ["id"],
            postgresql_where=UNCHECKED,
            sqlite_where=UNCHECKED,
        )
        batch.create_index("ix_errand_document_timestamp_expires", ["timestamp_expires_dt"])


def downgrade() -> None:
    with op.batch_alter_table("errand_document") as batch:
        batch.drop_index("ix_errand_document_timestamp_expires")
        batch.drop_index("ix_errand_document_unchecked")
        batch.drop_column("archive_checked_dt")
        batch.drop_column("timestamp_expires_dt")
        batch.drop_column("archive_level")
