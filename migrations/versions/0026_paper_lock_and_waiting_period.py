"""Fraud protection for the paper channel: the employer's lock against posted forms
(``paper_lock``, the page outcome ``paper_locked``, the errand state ``stopped``) and the
waiting period of an approved posted registration (the states ``awaiting_effect`` and
``suspected_fraud``, ``errand.takes_effect_dt``).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

OLD_STATES = (
    "draft",
    "awaiting_signatory",
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
_AT = OLD_STATES.index("approved") + 1
NEW_STATES = (*OLD_STATES[:_AT], "awaiting_effect", "suspected_fraud", *OLD_STATES[_AT:], "stopped")

OLD_RECEIVED = (
    "applied",
    "approved",
    "awaiting_completion",
    "closed",
    "in_review",
    "received",
    "rejected",
    "verifying",
)
NEW_RECEIVED = tuple(sorted((*OLD_RECEIVED, "awaiting_effect", "suspected_fraud")))
OLD_DECIDED = ("applied", "approved", "closed", "rejected")
NEW_DECIDED = tuple(sorted((*OLD_DECIDED, "awaiting_effect")))

OLD_OUTCOMES = (
    "matched",
    "no_qr_code",
    "malformed",
    "mac_mismatch",
    "blank_form",
    "unknown_errand",
    "digest_mismatch",
    "duplicate",
    "blank_sheet",
    "timed_out",
    "too_large",
    "unreadable",
)
_AFTER_BLANK = OLD_OUTCOMES.index("blank_sheet") + 1
NEW_OUTCOMES = (*OLD_OUTCOMES[:_AFTER_BLANK], "paper_locked", *OLD_OUTCOMES[_AFTER_BLANK:])


def _listed(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _state_type(states: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(
        *states, name="errand_state", native_enum=False, create_constraint=True, length=32
    )


def _errand_checks(
    states: tuple[str, ...], received: tuple[str, ...], decided: tuple[str, ...]
) -> None:
    received_check = (
        f"state NOT IN {_listed(received)} OR "
        "(received_dt IS NOT NULL AND channel IS NOT NULL AND employer_id IS NOT NULL)"
    )
    decided_check = (
        f"state NOT IN {_listed(decided)} OR "
        "(decided_dt IS NOT NULL AND decided_by_staff_id IS NOT NULL)"
    )
    if op.get_bind().dialect.name == "postgresql":
        for name, condition in (
            ("ck_errand_errand_state", f"state IN {_listed(states)}"),
            ("ck_errand_received_has_channel_and_employer", received_check),
            ("ck_errand_decided_has_decider", decided_check),
        ):
            op.drop_constraint(op.f(name), "errand", type_="check")
            op.create_check_constraint(op.f(name), "errand", condition)
        return
    # SQLite (the demo): the table is made again with the new constraints.
    names = {c["name"] for c in sa.inspect(op.get_bind()).get_check_constraints("errand")}
    with op.batch_alter_table("errand", recreate="always") as batch_op:
        for name in (
            "ck_submission_submission_state",
            "ck_errand_errand_state",
            "ck_errand_received_has_channel_and_employer",
            "ck_submission_received_has_channel_and_employer",
            "ck_errand_decided_has_decider",
            "ck_submission_decided_has_decider",
        ):
            if name in names:
                batch_op.drop_constraint(op.f(name), type_="check")
        batch_op.alter_column("state", type_=_state_type(states))
        batch_op.create_check_constraint(
            op.f("ck_errand_received_has_channel_and_employer"), received_check
        )
        batch_op.create_check_constraint(op.f("ck_errand_decided_has_decider"), decided_check)


def _page_outcomes(values: tuple[str, ...]) -> None:
    with op.batch_alter_table("scan_page") as batch:
        batch.drop_constraint(op.f("ck_scan_page_page_outcome"), type_="check")
        batch.create_check_constraint(
            op.f("ck_scan_page_page_outcome"), f"outcome IN {_listed(values)}"
        )


def upgrade() -> None:
    with op.batch_alter_table("errand") as batch:
        batch.add_column(
            sa.Column("takes_effect_dt", app.db.UTCDateTime(timezone=True), nullable=True)
        )
    _errand_checks(NEW_STATES, NEW_RECEIVED, NEW_DECIDED)
    _page_outcomes(NEW_OUTCOMES)
    op.create_table(
        "paper_lock",
        sa.Column("employer_id", sa.Integer(), nullable=False),
        sa.Column("locked_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_by_person_id", sa.Integer(), nullable=False),
        sa.Column("contact_email", sa.String(length=254), nullable=True),
        sa.ForeignKeyConstraint(
            ["employer_id"], ["employer.id"], name=op.f("fk_paper_lock_employer_id_employer")
        ),
        sa.ForeignKeyConstraint(
            ["locked_by_person_id"],
            ["person.id"],
            name=op.f("fk_paper_lock_locked_by_person_id_person"),
        ),
        sa.PrimaryKeyConstraint("employer_id", name=op.f("pk_paper_lock")),
    )


def downgrade() -> None:
    op.drop_table("paper_lock")
    op.execute("UPDATE scan_page SET outcome = 'unknown_errand' WHERE outcome = 'paper_locked'")
    _page_outcomes(OLD_OUTCOMES)
    # An errand stopped or waiting had no such state before: stopped ones expire; waiting
    # and disputed ones go back to review.
    op.execute("UPDATE errand SET state = 'expired' WHERE state = 'stopped'")
    op.execute(
        "UPDATE errand SET state = 'in_review', decided_dt = NULL, decided_by_staff_id = NULL "
        "WHERE state IN ('awaiting_effect', 'suspected_fraud')"
    )
    _errand_checks(OLD_STATES, OLD_RECEIVED, OLD_DECIDED)
    with op.batch_alter_table("errand") as batch:
        batch.drop_column("takes_effect_dt")
