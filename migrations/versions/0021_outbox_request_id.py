"""The request id on each outbox message, so a message sent again by the sweeper still
carries the id of the web request that queued it (``workflows.request_context``).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 02:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox_message", sa.Column("request_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_message") as batch:
        batch.drop_column("request_id")
