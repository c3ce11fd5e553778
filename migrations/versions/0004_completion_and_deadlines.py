"""Completion requests (komplettering), paused due dates, deadline reminders, team leads.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "completion_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("requested_by_staff_id", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("requested_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(answer IS NULL) = (answered_dt IS NULL)",
            name=op.f("ck_completion_request_answer_has_time"),
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submission.id"],
            name=op.f("fk_completion_request_submission_id_submission"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_staff_id"],
            ["staff_member.id"],
            name=op.f("fk_completion_request_requested_by_staff_id_staff_member"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_completion_request")),
    )
    op.create_index(
        op.f("ix_completion_request_submission_id"),
        "completion_request",
        ["submission_id"],
        unique=False,
    )
    with op.batch_alter_table("submission") as batch:
        for column in ("paused_dt", "reminded_dt", "escalated_dt"):
            batch.add_column(sa.Column(column, app.db.UTCDateTime(timezone=True), nullable=True))
    # Indexes of the queue's lists that the models declared and 0001 did not create.
    op.create_index("ix_submission_state_due", "submission", ["state", "due_dt"])
    op.create_index("ix_submission_state_expires", "submission", ["state", "expires_dt"])
    op.create_index("ix_submission_assigned_state", "submission", ["assigned_staff_id", "state"])
    with op.batch_alter_table("staff_member") as batch:
        batch.add_column(
            sa.Column("is_team_lead", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_member") as batch:
        batch.drop_column("is_team_lead")
    for index in (
        "ix_submission_assigned_state",
        "ix_submission_state_expires",
        "ix_submission_state_due",
    ):
        op.drop_index(index, table_name="submission")
    with op.batch_alter_table("submission") as batch:
        for column in ("escalated_dt", "reminded_dt", "paused_dt"):
            batch.drop_column(column)
    op.drop_index(op.f("ix_completion_request_submission_id"), table_name="completion_request")
    op.drop_table("completion_request")
