"""The recurring review (issue 18 item 4): ``review_campaign`` (one open per employer)
and ``review_item`` (each administrator and service permission it asks about).

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-03 12:08:17.888948
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("employer_id", sa.Integer(), nullable=False),
        sa.Column("started_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deadline_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("escalated_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("final_warning_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["employer_id"], ["employer.id"], name=op.f("fk_review_campaign_employer_id_employer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_campaign")),
    )
    op.create_index(
        op.f("ix_review_campaign_employer_id"), "review_campaign", ["employer_id"], unique=False
    )
    op.create_index(
        "uq_review_campaign_open",
        "review_campaign",
        ["employer_id"],
        unique=True,
        postgresql_where=sa.text("closed_dt IS NULL"),
        sqlite_where=sa.text("closed_dt IS NULL"),
    )
    op.create_table(
        "review_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "service_permission",
                "administrator",
                name="review_item_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("service_permission_id", sa.Integer(), nullable=True),
        sa.Column("role_grant_id", sa.Integer(), nullable=True),
        sa.Column("employer_code_id", sa.Integer(), nullable=True),
        sa.Column(
            "decision",
            sa.Enum(
                "confirmed",
                "ended",
                "gone",
                name="review_decision",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("decided_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by_person_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(kind = 'service_permission') = (service_permission_id IS NOT NULL) AND (kind = 'administrator') = (role_grant_id IS NOT NULL)",
            name=op.f("ck_review_item_subject_of_kind"),
        ),
        sa.CheckConstraint(
            "(decision IS NULL) = (decided_dt IS NULL)", name=op.f("ck_review_item_decided_when")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["review_campaign.id"],
            name=op.f("fk_review_item_campaign_id_review_campaign"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_person_id"],
            ["person.id"],
            name=op.f("fk_review_item_decided_by_person_id_person"),
        ),
        sa.ForeignKeyConstraint(
            ["employer_code_id"],
            ["employer_code.id"],
            name=op.f("fk_review_item_employer_code_id_employer_code"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_review_item_person_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["role_grant_id"],
            ["role_grant.id"],
            name=op.f("fk_review_item_role_grant_id_role_grant"),
        ),
        sa.ForeignKeyConstraint(
            ["service_permission_id"],
            ["service_permission.id"],
            name=op.f("fk_review_item_service_permission_id_service_permission"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_item")),
    )
    op.create_index(
        "ix_review_item_campaign_decision", "review_item", ["campaign_id", "decision"], unique=False
    )
    op.create_index(op.f("ix_review_item_person_id"), "review_item", ["person_id"], unique=False)
    op.create_index(
        "uq_review_item_grant", "review_item", ["campaign_id", "role_grant_id"], unique=True
    )
    op.create_index(
        "uq_review_item_permission",
        "review_item",
        ["campaign_id", "service_permission_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_review_item_permission", table_name="review_item")
    op.drop_index("uq_review_item_grant", table_name="review_item")
    op.drop_index(op.f("ix_review_item_person_id"), table_name="review_item")
    op.drop_index("ix_review_item_campaign_decision", table_name="review_item")
    op.drop_table("review_item")
    op.drop_index(
        "uq_review_campaign_open",
        table_name="review_campaign",
        postgresql_where=sa.text("closed_dt IS NULL"),
        sqlite_where=sa.text("closed_dt IS NULL"),
    )
    op.drop_index(op.f("ix_review_campaign_employer_id"), table_name="review_campaign")
    op.drop_table("review_campaign")
