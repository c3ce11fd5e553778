"""The audit chain keyed (HMAC-SHA256): each event's key version, and the legacy boundary.

Events chained before this revision keep their plain SHA-256 hashes (``key_version`` 0) and
keep verifying; ``audit_chain_head.legacy_until_seq`` records the last of them, and every
later event must be keyed (``key_version`` 1). The boundary is written into every audit
checkpoint too (outside the database), so moving it is found. Write the first checkpoint
right after upgrading: ``behorighet audit checkpoint``.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 20:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, not a batch (SQLite's batch copies the table and loses its triggers).
    op.add_column(
        "audit_event",
        sa.Column("key_version", sa.SmallInteger(), server_default="0", nullable=False),
    )
    op.add_column(
        "audit_chain_head",
        sa.Column("legacy_until_seq", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.execute("UPDATE audit_chain_head SET legacy_until_seq = seq")


def downgrade() -> None:
    with op.batch_alter_table("audit_chain_head") as batch:
        batch.drop_column("legacy_until_seq")
    op.drop_column("audit_event", "key_version")
