"""Indexes for a caseworker's own list ("Mina ärenden" in casework): their open errands in
due-date and in received order, each ending in the id (the lists' keyset tiebreak), by
partial indexes on the open states. With thousands of errands on one caseworker, the list
read and sorted them all for each page (12 ms); now it reads the page's rows.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-03 15:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

OPEN = sa.text("state IN ('in_review', 'awaiting_completion', 'suspected_fraud')")
INDEXES = {
    "ix_errand_mine_due": ["assigned_staff_id", "due_dt", "id"],
    "ix_errand_mine_received": ["assigned_staff_id", "received_dt", "id"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "errand", columns, postgresql_where=OPEN, sqlite_where=OPEN)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="errand")
