"""Joint signatories (issue 18 item 6): the first of two joint
signatures kept on the errand while the second is awaited
(``errand.first_signature_order_id``), and the clerk's check of the second handwritten
signature (``paper_form.co_signature_present``).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-03 12:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("errand") as batch:
        batch.add_column(sa.Column("first_signature_order_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_errand_first_signature_order_id_eid_order"),
            "eid_order",
            ["first_signature_order_id"],
            ["id"],
        )
    op.add_column("paper_form", sa.Column("co_signature_present", sa.Boolean(), nullable=True))


def downgrade() -> None:
    op.drop_column("paper_form", "co_signature_present")
    with op.batch_alter_table("errand") as batch:
        batch.drop_constraint(
            op.f("fk_errand_first_signature_order_id_eid_order"), type_="foreignkey"
        )
        batch.drop_column("first_signature_order_id")
