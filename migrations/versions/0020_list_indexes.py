"""Indexes for the lists' query plans: the caseworker queue in due-date and received
order (unassigned errands by a partial index), an employer's errands by state, a
submitter's errands newest first (each ends in the id, the lists' keyset tiebreak), and
the checks that need attention (the queue's filter on them).

Revision ID: 0020
Revises: 0018
Create Date: 2026-12-03 02:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0018"
branch_labels = None
depends_on = None

UNASSIGNED = sa.text("assigned_staff_id IS NULL")
ATTENTION = sa.text("outcome <> 'passed'")


def upgrade() -> None:
    with op.batch_alter_table("errand") as batch:
        batch.drop_index("ix_errand_state_due")
        batch.drop_index("ix_errand_state_received")
        batch.create_index("ix_errand_state_due", ["state", "due_dt", "id"])
        batch.create_index("ix_errand_state_received", ["state", "received_dt", "id"])
        batch.create_index(
            "ix_errand_unassigned_due",
            ["state", "due_dt", "id"],
            postgresql_where=UNASSIGNED,
            sqlite_where=UNASSIGNED,
        )
        batch.create_index(
            "ix_errand_unassigned_received",
            ["state", "received_dt", "id"],
            postgresql_where=UNASSIGNED,
            sqlite_where=UNASSIGNED,
        )
        batch.create_index("ix_errand_employer_state", ["employer_id", "state"])
        batch.create_index("ix_errand_submitter_created", ["submitted_by_id", "created_dt", "id"])
    with op.batch_alter_table("verification_check") as batch:
        batch.create_index(
            "ix_verification_check_attention",
            ["errand_id"],
            postgresql_where=ATTENTION,
            sqlite_where=ATTENTION,
        )


def downgrade() -> None:
    with op.batch_alter_table("verification_check") as batch:
        batch.drop_index("ix_verification_check_attention")
    with op.batch_alter_table("errand") as batch:
        for name in (
            "ix_errand_submitter_created",
            "ix_errand_employer_state",
            "ix_errand_unassigned_received",
            "ix_errand_unassigned_due",
            "ix_errand_state_received",
            "ix_errand_state_due",
        ):
            batch.drop_index(name)
        batch.create_index("ix_errand_state_due", ["state", "due_dt"])
        batch.create_index("ix_errand_state_received", ["state", "received_dt"])
