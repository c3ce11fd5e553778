"""The staff's access log records two more views (issue 19): the intake clerk's manual
queue of scanned pages (``scanned_pages``) and the typing-in of a form filled in by hand
(``paper_form_typing``).

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-03 12:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

# Migration 0025's VIEW_KINDS.
OLD_KINDS = ("errand", "errand_document", "employer_lookup", "paper_form", "access_log",
             "access_log_csv", "register_extract", "register_extract_document")  # fmt: skip
NEW_KINDS = (*OLD_KINDS, "scanned_pages", "paper_form_typing")


def _view_kinds(kinds: tuple[str, ...]) -> None:
    listed = ", ".join(f"'{kind}'" for kind in kinds)
    with op.batch_alter_table("staff_access_log") as batch:
        batch.drop_constraint(op.f("ck_staff_access_log_view_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_staff_access_log_view_kind"), f"what IN ({listed})")


def upgrade() -> None:
    _view_kinds(NEW_KINDS)


def downgrade() -> None:
    # The log refuses UPDATE: the views of the new kinds cannot be relabelled, so they go.
    new = ", ".join(f"'{kind}'" for kind in NEW_KINDS if kind not in OLD_KINDS)
    op.execute(f"DELETE FROM staff_access_log WHERE what IN ({new})")
    _view_kinds(OLD_KINDS)
