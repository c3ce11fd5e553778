"""Scanned intake: batches, their pages and the paper forms they make up.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 02:45:53.686615
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submission") as batch:
        batch.add_column(sa.Column("received_by_staff_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_submission_received_by_staff_id_staff_member"),
            "staff_member",
            ["received_by_staff_id"],
            ["id"],
        )
    op.create_table(
        "scan_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "upload",
                "folder",
                name="batch_source",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("uploaded_by_staff_id", sa.Integer(), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "queued",
                "reading",
                "done",
                "rejected",
                name="batch_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("page_count", sa.Integer(), nullable=False),
        sa.Column("pages_read", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("reader_until_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("read_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(
            "(state = 'rejected') = (error_code IS NOT NULL)",
            name=op.f("ck_scan_batch_rejected_has_error"),
        ),
        sa.CheckConstraint(
            "pages_read <= page_count", name=op.f("ck_scan_batch_pages_read_within_count")
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_staff_id"],
            ["staff_member.id"],
            name=op.f("fk_scan_batch_uploaded_by_staff_id_staff_member"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_batch")),
        sa.UniqueConstraint("sha256", name=op.f("uq_scan_batch_sha256")),
    )
    op.create_table(
        "paper_form",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "awaiting_confirmation",
                "confirmed",
                "taken_apart",
                name="paper_form_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("signature_present", sa.Boolean(), nullable=True),
        sa.Column("signer_is_named", sa.Boolean(), nullable=True),
        sa.Column("clerk_note", sa.Text(), nullable=True),
        sa.Column("confirmed_by_staff_id", sa.Integer(), nullable=True),
        sa.Column("confirmed_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("created_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state <> 'confirmed' OR (confirmed_by_staff_id IS NOT NULL AND confirmed_dt IS NOT NULL AND signature_present IS NOT NULL AND signer_is_named IS NOT NULL AND document_id IS NOT NULL)",
            name=op.f("ck_paper_form_confirmed_is_complete"),
        ),
        sa.ForeignKeyConstraint(
            ["confirmed_by_staff_id"],
            ["staff_member.id"],
            name=op.f("fk_paper_form_confirmed_by_staff_id_staff_member"),
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["submission_document.id"],
            name=op.f("fk_paper_form_document_id_submission_document"),
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submission.id"],
            name=op.f("fk_paper_form_submission_id_submission"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paper_form")),
    )
    op.create_index(
        op.f("ix_paper_form_submission_id"), "paper_form", ["submission_id"], unique=False
    )
    op.create_table(
        "scan_page",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("page_index", sa.Integer(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
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
                name="page_outcome",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "waiting",
                "needs_clerk",
                "filed",
                "discarded",
                name="page_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.Column("form_page", sa.Integer(), nullable=True),
        sa.Column("form_pages", sa.Integer(), nullable=True),
        sa.Column("form_kind", sa.String(length=3), nullable=True),
        sa.Column("upside_down", sa.Boolean(), nullable=False),
        sa.Column("matched_by_clerk", sa.Boolean(), nullable=False),
        sa.Column("paper_form_id", sa.Integer(), nullable=True),
        sa.Column("preview", sa.LargeBinary(), nullable=False),
        sa.Column("created_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_by_staff_id", sa.Integer(), nullable=True),
        sa.Column("resolved_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status <> 'filed' OR (paper_form_id IS NOT NULL AND submission_id IS NOT NULL)",
            name=op.f("ck_scan_page_filed_has_form"),
        ),
        sa.CheckConstraint(
            "status <> 'waiting' OR (submission_id IS NOT NULL AND form_page IS NOT NULL AND form_pages IS NOT NULL)",
            name=op.f("ck_scan_page_waiting_has_place"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["scan_batch.id"], name=op.f("fk_scan_page_batch_id_scan_batch")
        ),
        sa.ForeignKeyConstraint(
            ["paper_form_id"], ["paper_form.id"], name=op.f("fk_scan_page_paper_form_id_paper_form")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_staff_id"],
            ["staff_member.id"],
            name=op.f("fk_scan_page_resolved_by_staff_id_staff_member"),
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submission.id"], name=op.f("fk_scan_page_submission_id_submission")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_page")),
        sa.UniqueConstraint("batch_id", "page_index", name=op.f("uq_scan_page_batch_id")),
    )
    op.create_index(op.f("ix_scan_page_batch_id"), "scan_page", ["batch_id"], unique=False)
    op.create_index(
        op.f("ix_scan_page_paper_form_id"), "scan_page", ["paper_form_id"], unique=False
    )
    op.create_index(op.f("ix_scan_page_status"), "scan_page", ["status"], unique=False)
    op.create_index(
        op.f("ix_scan_page_submission_id"), "scan_page", ["submission_id"], unique=False
    )


def downgrade() -> None:
    with op.batch_alter_table("submission") as batch:
        batch.drop_constraint(
            op.f("fk_submission_received_by_staff_id_staff_member"), type_="foreignkey"
        )
        batch.drop_column("received_by_staff_id")
    op.drop_index(op.f("ix_scan_page_submission_id"), table_name="scan_page")
    op.drop_index(op.f("ix_scan_page_status"), table_name="scan_page")
    op.drop_index(op.f("ix_scan_page_paper_form_id"), table_name="scan_page")
    op.drop_index(op.f("ix_scan_page_batch_id"), table_name="scan_page")
    op.drop_table("scan_page")
    op.drop_index(op.f("ix_paper_form_submission_id"), table_name="paper_form")
    op.drop_table("paper_form")
    op.drop_table("scan_batch")
