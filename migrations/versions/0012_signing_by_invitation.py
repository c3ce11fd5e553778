"""Signing by invitation: the state ``awaiting_signatory`` and the links emailed to the
signatory (``signing_invitation``), stored as SHA-256 of their tokens.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 19:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

OLD_STATES = (
    "draft",
    "awaiting_signature",
    "signed",
    "awaiting_post",
    "received",
    "verifying",
    "in_review",
    "awaiting_completion",
    "approved",
    "applied",
    "closed",
    "rejected",
    "withdrawn",
    "expired",
    "failed",
)
NEW_STATES = ("draft", "awaiting_signatory", *OLD_STATES[1:])


def _state_type(states: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(
        *states, name="errand_state", native_enum=False, create_constraint=True, length=32
    )


def _set_states(states: tuple[str, ...], previous: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("ck_errand_errand_state"), "errand", type_="check")
        listed = ", ".join(f"'{s}'" for s in states)
        op.create_check_constraint(op.f("ck_errand_errand_state"), "errand", f"state IN ({listed})")
        return
    # SQLite (the demo) keeps the state's CHECK under the name it was created with
    # (``ck_submission_submission_state`` before 0007 renamed the table): drop it by name.
    names = {c["name"] for c in sa.inspect(op.get_bind()).get_check_constraints("errand")}
    with op.batch_alter_table("errand", recreate="always") as batch_op:
        for name in ("ck_submission_submission_state", "ck_errand_errand_state"):
            if name in names:
                batch_op.drop_constraint(op.f(name), type_="check")
        batch_op.alter_column(
            "state", type_=_state_type(states), existing_type=_state_type(previous)
        )


def upgrade() -> None:
    _set_states(NEW_STATES, OLD_STATES)
    op.create_table(
        "signing_invitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("errand_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "invitation",
                "reminder",
                "expiry_reminder",
                name="invitation_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("signatory_personnummer", sa.String(length=12), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("created_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_by_person_id", sa.Integer(), nullable=True),
        sa.Column("ended_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "outcome",
            sa.Enum(
                "signed",
                "declined",
                "recalled",
                "printed",
                "withdrawn",
                "expired",
                name="invitation_outcome",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("decline_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "(ended_dt IS NULL) = (outcome IS NULL)",
            name=op.f("ck_signing_invitation_ended_has_outcome"),
        ),
        sa.CheckConstraint(
            "outcome <> 'declined' OR decline_reason IS NOT NULL",
            name=op.f("ck_signing_invitation_declined_has_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["errand_id"], ["errand.id"], name=op.f("fk_signing_invitation_errand_id_errand")
        ),
        sa.ForeignKeyConstraint(
            ["sent_by_person_id"],
            ["person.id"],
            name=op.f("fk_signing_invitation_sent_by_person_id_person"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_invitation")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_signing_invitation_token_sha256")),
    )
    with op.batch_alter_table("signing_invitation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signing_invitation_errand_id"), ["errand_id"], unique=False
        )
        batch_op.create_index(
            "ix_signing_invitation_errand_open", ["errand_id", "ended_dt"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("signing_invitation", schema=None) as batch_op:
        batch_op.drop_index("ix_signing_invitation_errand_open")
        batch_op.drop_index(batch_op.f("ix_signing_invitation_errand_id"))
    op.drop_table("signing_invitation")
    op.execute("UPDATE errand SET state = 'draft' WHERE state = 'awaiting_signatory'")
    _set_states(OLD_STATES, NEW_STATES)
