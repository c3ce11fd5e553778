"""Scanned intake: blank sheets set aside automatically, and why a page was set aside.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 19:55:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

OUTCOMES = (
    "matched",
    "no_qr_code",
    "malformed",
    "mac_mismatch",
    "blank_form",
    "unknown_errand",
    "digest_mismatch",
    "duplicate",
    "timed_out",
    "too_large",
    "unreadable",
)
CHECK = "ck_scan_page_page_outcome"


def _outcomes(values: tuple[str, ...]) -> str:
    return "outcome IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _replace_check(values: tuple[str, ...]) -> None:
    with op.batch_alter_table("scan_page") as batch:
        batch.drop_constraint(op.f(CHECK), type_="check")
        batch.create_check_constraint(op.f(CHECK), _outcomes(values))


def upgrade() -> None:
    with op.batch_alter_table("scan_page") as batch:
        batch.add_column(sa.Column("set_aside_reason", sa.String(length=300), nullable=True))
    at = OUTCOMES.index("duplicate") + 1  # in the order of the model's enum
    _replace_check((*OUTCOMES[:at], "blank_sheet", *OUTCOMES[at:]))


def downgrade() -> None:
    op.execute("UPDATE scan_page SET outcome = 'no_qr_code' WHERE outcome = 'blank_sheet'")
    _replace_check(OUTCOMES)
    with op.batch_alter_table("scan_page") as batch:
        batch.drop_column("set_aside_reason")
