"""A pipeline step that fails is shown on the errand at once: which step, which attempt
of how many, the error and when.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 19:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("errand") as batch:
        batch.add_column(sa.Column("retrying_step", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("step_attempt", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("step_max_attempts", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("step_error", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("step_error_dt", app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch.create_index("ix_errand_retrying_step", ["retrying_step"])


def downgrade() -> None:
    with op.batch_alter_table("errand") as batch:
        batch.drop_index("ix_errand_retrying_step")
        for column in (
            "step_error_dt",
            "step_error",
            "step_max_attempts",
            "step_attempt",
            "retrying_step",
        ):
            batch.drop_column(column)
