"""Mandates that end: the planned end (``ends_on``) of a role grant and of a service
permission, which the scheduled actor ``end_mandates`` carries out on the day.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-03 12:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

TABLES = ("role_grant", "service_permission")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("ends_on", sa.Date(), nullable=True))
        op.create_index(f"ix_{table}_ends_on", table, ["ends_on"])


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_ends_on", table_name=table)
        op.drop_column(table, "ends_on")
