"""Stand-ins out of the production schema: the BankID simulator's and the mail sink's tables.

The demo and the tests make these tables themselves now, outside the production
migrations; a demo database made before loses the simulator's orders and the sink's mail.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from alembic.script import ScriptDirectory

import app.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("bankid_sim_fault")
    op.drop_table("bankid_sim_order")
    op.drop_table("sink_message")


def downgrade() -> None:
    # The simulator's tables exactly as revision 0002 made them.
    script = ScriptDirectory.from_config(op.get_context().config)
    simulator = script.get_revision("0002")
    assert simulator is not None
    simulator.module.upgrade()
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
