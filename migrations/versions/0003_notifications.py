"""Notifications: queued emails, and the demo mail sink's received messages.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("to_address", sa.String(length=254), nullable=False),
        sa.Column("to_name", sa.String(length=200), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=True),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.Column("role_grant_id", sa.Integer(), nullable=True),
        sa.Column("service_permission_id", sa.Integer(), nullable=True),
        sa.Column("created_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "language IN ('sv', 'en')", name=op.f("ck_email_message_language_supported")
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_email_message_attempts_not_negative")),
        sa.CheckConstraint(
            "sent_dt IS NULL OR attempts > 0", name=op.f("ck_email_message_sent_after_an_attempt")
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submission.id"],
            name=op.f("fk_email_message_submission_id_submission"),
        ),
        sa.ForeignKeyConstraint(
            ["role_grant_id"],
            ["role_grant.id"],
            name=op.f("fk_email_message_role_grant_id_role_grant"),
        ),
        sa.ForeignKeyConstraint(
            ["service_permission_id"],
            ["service_permission.id"],
            name=op.f("fk_email_message_service_permission_id_service_permission"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_message")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_email_message_dedupe_key")),
    )
    with op.batch_alter_table("email_message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_email_message_submission_id"), ["submission_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_email_message_role_grant_id"), ["role_grant_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_email_message_service_permission_id"),
            ["service_permission_id"],
            unique=False,
        )
        batch_op.create_index("ix_email_message_unsent", ["sent_dt", "created_dt"], unique=False)

    op.create_table(
        "sink_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("mail_from", sa.String(length=320), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("to_header", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(length=300), nullable=True),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sink_message")),
    )
    with op.batch_alter_table("sink_message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sink_message_received_dt"), ["received_dt"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sink_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sink_message_received_dt"))
    op.drop_table("sink_message")
    with op.batch_alter_table("email_message", schema=None) as batch_op:
        batch_op.drop_index("ix_email_message_unsent")
        batch_op.drop_index(batch_op.f("ix_email_message_service_permission_id"))
        batch_op.drop_index(batch_op.f("ix_email_message_role_grant_id"))
        batch_op.drop_index(batch_op.f("ix_email_message_submission_id"))
    op.drop_table("email_message")
