"""The audit log as many chains (one per employer and a shared one); email to a group.

An event belongs to one chain (``audit_event.chain``: ``employer:<id>``, or ``''`` for the
shared chain of events about no employer); its ``seq`` counts within that chain and its
``prev_hash`` is the previous event of that chain. Two employers' events so lock two heads
and never wait on each other. Every event before this revision is the shared chain's.

An email may go to a group (``email_message.group_addresses``): the employer's orderers
are told of a role change in one email, not one each.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 02:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


APPEND_ONLY_MESSAGE = "audit_event is append-only"


def _sqlite_append_only_again() -> None:
    """SQLite's batch copied ``audit_event`` and lost its triggers (0001): make them again."""
    if op.get_bind().dialect.name != "sqlite":
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS audit_event_no_{verb.lower()}")
        op.execute(f"""
            CREATE TRIGGER audit_event_no_{verb.lower()} BEFORE {verb} ON audit_event
            BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END
        """)


def upgrade() -> None:
    op.add_column("email_message", sa.Column("group_addresses", sa.JSON(), nullable=True))
    with op.batch_alter_table("audit_event") as batch:
        batch.add_column(sa.Column("chain", sa.String(64), server_default="", nullable=False))
        batch.drop_constraint(op.f("uq_audit_event_seq"), type_="unique")
        batch.create_unique_constraint(op.f("uq_audit_event_chain"), ["chain", "seq"])
    _sqlite_append_only_again()
    with op.batch_alter_table("audit_chain_head") as batch:
        batch.add_column(sa.Column("chain", sa.String(64), server_default="", nullable=False))
        batch.drop_constraint(op.f("ck_audit_chain_head_single_row"), type_="check")
        batch.drop_constraint(op.f("pk_audit_chain_head"), type_="primary")
        batch.drop_column("id")
        batch.create_primary_key(op.f("pk_audit_chain_head"), ["chain"])


def downgrade() -> None:
    chains = op.get_bind().execute(sa.text("SELECT count(*) FROM audit_chain_head")).scalar()
    if chains and chains > 1:
        raise RuntimeError("the audit log has more than one chain: it cannot go back to one")
    with op.batch_alter_table("audit_chain_head") as batch:
        batch.drop_constraint(op.f("pk_audit_chain_head"), type_="primary")
        batch.add_column(sa.Column("id", sa.Integer(), server_default="1", nullable=False))
        batch.create_primary_key(op.f("pk_audit_chain_head"), ["id"])
        batch.create_check_constraint(op.f("ck_audit_chain_head_single_row"), "id = 1")
        batch.drop_column("chain")
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_constraint(op.f("uq_audit_event_chain"), type_="unique")
        batch.create_unique_constraint(op.f("uq_audit_event_seq"), ["seq"])
        batch.drop_column("chain")
    _sqlite_append_only_again()
    op.drop_column("email_message", "group_addresses")
