"""Data model v1: permission store, staff, submissions, audit chain, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 23:29:07.820069
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_chain_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("occurred_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("seq > 0", name=op.f("ck_audit_event_seq_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
        sa.UniqueConstraint("seq", name=op.f("uq_audit_event_seq")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_event_object", ["object_type", "object_id"], unique=False)

    op.create_table(
        "employer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("orgnr", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("length(orgnr) = 10", name=op.f("ck_employer_orgnr_ten_digits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_employer")),
        sa.UniqueConstraint("orgnr", name=op.f("uq_employer_orgnr")),
    )
    op.create_table(
        "person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("personnummer", sa.String(length=12), nullable=False),
        sa.Column("given_name", sa.String(length=100), nullable=False),
        sa.Column("family_name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("last_login_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "length(personnummer) = 12", name=op.f("ck_person_personnummer_twelve_digits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
        sa.UniqueConstraint("personnummer", name=op.f("uq_person_personnummer")),
    )
    op.create_table(
        "signatory_register_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("orgnr", sa.String(length=10), nullable=False),
        sa.Column("personnummer", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("capacity", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signatory_register_entry")),
        sa.UniqueConstraint(
            "orgnr", "personnummer", name=op.f("uq_signatory_register_entry_orgnr")
        ),
    )
    with op.batch_alter_table("signatory_register_entry", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signatory_register_entry_orgnr"), ["orgnr"], unique=False
        )

    op.create_table(
        "staff_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("personnummer", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("is_caseworker", sa.Boolean(), nullable=False),
        sa.Column("is_intake_clerk", sa.Boolean(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "is_caseworker OR is_intake_clerk", name=op.f("ck_staff_member_has_a_role")
        ),
        sa.CheckConstraint(
            "length(personnummer) = 12", name=op.f("ck_staff_member_personnummer_twelve_digits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_member")),
        sa.UniqueConstraint("personnummer", name=op.f("uq_staff_member_personnummer")),
    )
    op.create_table(
        "employer_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("employer_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "closed",
                name="code_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["employer_id"], ["employer.id"], name=op.f("fk_employer_code_employer_id_employer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_employer_code")),
        sa.UniqueConstraint("code", name=op.f("uq_employer_code_code")),
    )
    with op.batch_alter_table("employer_code", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_employer_code_employer_id"), ["employer_id"], unique=False
        )

    op.create_table(
        "submission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=12), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "registration",
                "removal",
                name="submission_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "channel",
            sa.Enum(
                "e_sign",
                "paper",
                name="channel",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column(
            "state",
            sa.Enum(
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
                name="submission_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("form_data", sa.JSON(), nullable=False),
        sa.Column("employer_id", sa.Integer(), nullable=True),
        sa.Column("subject_personnummer", sa.String(length=12), nullable=True),
        sa.Column("submitted_by_id", sa.Integer(), nullable=False),
        sa.Column("assigned_staff_id", sa.Integer(), nullable=True),
        sa.Column("decided_by_staff_id", sa.Integer(), nullable=True),
        sa.Column("created_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("due_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_approved_by_staff_id", sa.Integer(), nullable=True),
        sa.Column("decision_code", sa.String(length=32), nullable=True),
        sa.Column("decision_text", sa.Text(), nullable=True),
        sa.Column("expires_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("failed_step", sa.String(length=32), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state <> 'failed' OR (failed_step IS NOT NULL AND failure_reason IS NOT NULL)",
            name=op.f("ck_submission_failed_has_step_and_reason"),
        ),
        sa.CheckConstraint(
            "state NOT IN ('applied', 'approved', 'awaiting_completion', 'closed', 'in_review', 'received', 'rejected', 'verifying') OR (received_dt IS NOT NULL AND channel IS NOT NULL AND employer_id IS NOT NULL)",
            name=op.f("ck_submission_received_has_channel_and_employer"),
        ),
        sa.CheckConstraint(
            "state NOT IN ('applied', 'approved', 'closed', 'rejected') OR (decided_dt IS NOT NULL AND decided_by_staff_id IS NOT NULL)",
            name=op.f("ck_submission_decided_has_decider"),
        ),
        sa.ForeignKeyConstraint(
            ["assigned_staff_id"],
            ["staff_member.id"],
            name=op.f("fk_submission_assigned_staff_id_staff_member"),
        ),
        sa.ForeignKeyConstraint(
            ["first_approved_by_staff_id"],
            ["staff_member.id"],
            name=op.f("fk_submission_first_approved_by_staff_id_staff_member"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_staff_id"],
            ["staff_member.id"],
            name=op.f("fk_submission_decided_by_staff_id_staff_member"),
        ),
        sa.ForeignKeyConstraint(
            ["employer_id"], ["employer.id"], name=op.f("fk_submission_employer_id_employer")
        ),
        sa.ForeignKeyConstraint(
            ["submitted_by_id"], ["person.id"], name=op.f("fk_submission_submitted_by_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission")),
        sa.UniqueConstraint("reference", name=op.f("uq_submission_reference")),
    )
    with op.batch_alter_table("submission", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_submission_employer_id"), ["employer_id"], unique=False
        )
        batch_op.create_index(
            "ix_submission_state_received", ["state", "received_dt"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_submission_subject_personnummer"), ["subject_personnummer"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_submission_submitted_by_id"), ["submitted_by_id"], unique=False
        )

    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_name", sa.String(length=64), nullable=False),
        sa.Column("kwargs", sa.JSON(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.Column("created_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_sent_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("send_count", sa.Integer(), nullable=False),
        sa.Column("done_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submission.id"],
            name=op.f("fk_outbox_message_submission_id_submission"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_message")),
    )
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbox_message_submission_id"), ["submission_id"], unique=False
        )
        batch_op.create_index("ix_outbox_message_undone", ["done_dt", "created_dt"], unique=False)

    op.create_table(
        "role_grant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("employer_id", sa.Integer(), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "orderer",
                "delegated_orderer",
                "administrator",
                name="role",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("is_all_codes", sa.Boolean(), nullable=False),
        sa.Column("contact_email", sa.String(length=254), nullable=True),
        sa.Column("valid_from_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_to_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("granted_by_person_id", sa.Integer(), nullable=True),
        sa.Column("source_submission_id", sa.Integer(), nullable=True),
        sa.Column("revoked_by_submission_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "role <> 'administrator' OR granted_by_person_id IS NOT NULL",
            name=op.f("ck_role_grant_administrator_appointed_by_person"),
        ),
        sa.CheckConstraint(
            "role NOT IN ('orderer', 'delegated_orderer') OR source_submission_id IS NOT NULL",
            name=op.f("ck_role_grant_orderer_from_submission"),
        ),
        sa.CheckConstraint(
            "valid_to_dt IS NULL OR valid_to_dt >= valid_from_dt",
            name=op.f("ck_role_grant_valid_period"),
        ),
        sa.ForeignKeyConstraint(
            ["employer_id"], ["employer.id"], name=op.f("fk_role_grant_employer_id_employer")
        ),
        sa.ForeignKeyConstraint(
            ["granted_by_person_id"],
            ["person.id"],
            name=op.f("fk_role_grant_granted_by_person_id_person"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_role_grant_person_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by_submission_id"],
            ["submission.id"],
            name=op.f("fk_role_grant_revoked_by_submission_id_submission"),
        ),
        sa.ForeignKeyConstraint(
            ["source_submission_id"],
            ["submission.id"],
            name=op.f("fk_role_grant_source_submission_id_submission"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_grant")),
        sa.UniqueConstraint(
            "source_submission_id", name=op.f("uq_role_grant_source_submission_id")
        ),
    )
    with op.batch_alter_table("role_grant", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_role_grant_employer_id"), ["employer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_role_grant_person_id"), ["person_id"], unique=False)
        batch_op.create_index(
            "uq_role_grant_active",
            ["person_id", "employer_id", "role"],
            unique=True,
            postgresql_where=sa.text("valid_to_dt IS NULL"),
            sqlite_where=sa.text("valid_to_dt IS NULL"),
        )

    op.create_table(
        "service_permission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("employer_code_id", sa.Integer(), nullable=False),
        sa.Column(
            "service",
            sa.Enum(
                "employment_reporting",
                "invoices",
                "pension_cases",
                "statistics",
                name="self_service",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("granted_by_person_id", sa.Integer(), nullable=True),
        sa.Column("valid_from_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_to_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "valid_to_dt IS NULL OR valid_to_dt >= valid_from_dt",
            name=op.f("ck_service_permission_valid_period"),
        ),
        sa.ForeignKeyConstraint(
            ["employer_code_id"],
            ["employer_code.id"],
            name=op.f("fk_service_permission_employer_code_id_employer_code"),
        ),
        sa.ForeignKeyConstraint(
            ["granted_by_person_id"],
            ["person.id"],
            name=op.f("fk_service_permission_granted_by_person_id_person"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_service_permission_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_permission")),
    )
    with op.batch_alter_table("service_permission", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_service_permission_employer_code_id"), ["employer_code_id"], unique=False
        )
        batch_op.create_index(
            "uq_service_permission_active",
            ["person_id", "employer_code_id", "service"],
            unique=True,
            postgresql_where=sa.text("valid_to_dt IS NULL"),
            sqlite_where=sa.text("valid_to_dt IS NULL"),
        )

    op.create_table(
        "submission_document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "printed",
                "signed",
                "scan",
                "receipt",
                "decision",
                "evidence",
                name="document_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submission.id"],
            name=op.f("fk_submission_document_submission_id_submission"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission_document")),
    )
    with op.batch_alter_table("submission_document", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_submission_document_submission_id"), ["submission_id"], unique=False
        )

    op.create_table(
        "verification_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "passed",
                "flagged",
                "failed",
                name="check_outcome",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("checked_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submission.id"],
            name=op.f("fk_verification_check_submission_id_submission"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_check")),
    )
    with op.batch_alter_table("verification_check", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_verification_check_submission_id"), ["submission_id"], unique=False
        )

    op.create_table(
        "role_grant_code",
        sa.Column("role_grant_id", sa.Integer(), nullable=False),
        sa.Column("employer_code_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["employer_code_id"],
            ["employer_code.id"],
            name=op.f("fk_role_grant_code_employer_code_id_employer_code"),
        ),
        sa.ForeignKeyConstraint(
            ["role_grant_id"],
            ["role_grant.id"],
            name=op.f("fk_role_grant_code_role_grant_id_role_grant"),
        ),
        sa.PrimaryKeyConstraint(
            "role_grant_id", "employer_code_id", name=op.f("pk_role_grant_code")
        ),
    )
    op.create_table(
        "submission_comment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submission.id"],
            name=op.f("fk_submission_comment_submission_id_submission"),
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_member.id"],
            name=op.f("fk_submission_comment_staff_id_staff_member"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission_comment")),
    )
    with op.batch_alter_table("submission_comment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_submission_comment_submission_id"), ["submission_id"], unique=False
        )
    op.create_table(
        "eid_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum(
                "login",
                "sign",
                name="order_purpose",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("order_ref", sa.String(length=64), nullable=False),
        sa.Column("auto_start_token", sa.String(length=64), nullable=False),
        sa.Column("qr_start_token", sa.String(length=64), nullable=False),
        sa.Column("qr_start_secret", sa.String(length=64), nullable=False),
        sa.Column("browser_binding", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "complete",
                "failed",
                "used",
                name="order_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("hint_code", sa.String(length=64), nullable=True),
        sa.Column("started_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_collect_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.Column("document", sa.LargeBinary(), nullable=True),
        sa.Column("document_sha256", sa.String(length=64), nullable=True),
        sa.Column("completion", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submission.id"], name=op.f("fk_eid_order_submission_id_submission")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eid_order")),
        sa.UniqueConstraint("order_ref", name=op.f("uq_eid_order_order_ref")),
    )
    with op.batch_alter_table("eid_order", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_eid_order_submission_id"), ["submission_id"], unique=False
        )
    op.execute(f"INSERT INTO audit_chain_head (id, seq, last_hash) VALUES (1, 0, '{'0' * 64}')")
    _make_audit_append_only()


APPEND_ONLY_MESSAGE = "audit_event is append-only"


def _make_audit_append_only() -> None:
    """Refuse UPDATE and DELETE of audit events in the database itself."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION audit_event_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}';
            END;
            $$ LANGUAGE plpgsql
        """)
        op.execute("""
            CREATE TRIGGER audit_event_append_only
            BEFORE UPDATE OR DELETE ON audit_event
            FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()
        """)
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER audit_event_no_{verb.lower()} BEFORE {verb} ON audit_event
                BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END
            """)


def downgrade() -> None:
    op.drop_table("submission_comment")
    op.drop_table("eid_order")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_event_append_only ON audit_event")
        op.execute("DROP FUNCTION audit_event_append_only()")
    op.drop_table("role_grant_code")
    with op.batch_alter_table("verification_check", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_verification_check_submission_id"))

    op.drop_table("verification_check")
    with op.batch_alter_table("submission_document", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_submission_document_submission_id"))

    op.drop_table("submission_document")
    with op.batch_alter_table("service_permission", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_service_permission_active",
            postgresql_where=sa.text("valid_to_dt IS NULL"),
            sqlite_where=sa.text("valid_to_dt IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_service_permission_employer_code_id"))

    op.drop_table("service_permission")
    with op.batch_alter_table("role_grant", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_role_grant_active",
            postgresql_where=sa.text("valid_to_dt IS NULL"),
            sqlite_where=sa.text("valid_to_dt IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_role_grant_person_id"))
        batch_op.drop_index(batch_op.f("ix_role_grant_employer_id"))

    op.drop_table("role_grant")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_message_undone")
        batch_op.drop_index(batch_op.f("ix_outbox_message_submission_id"))

    op.drop_table("outbox_message")
    with op.batch_alter_table("submission", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_submission_submitted_by_id"))
        batch_op.drop_index(batch_op.f("ix_submission_subject_personnummer"))
        batch_op.drop_index("ix_submission_state_received")
        batch_op.drop_index(batch_op.f("ix_submission_employer_id"))

    op.drop_table("submission")
    with op.batch_alter_table("employer_code", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_employer_code_employer_id"))

    op.drop_table("employer_code")
    op.drop_table("staff_member")
    with op.batch_alter_table("signatory_register_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signatory_register_entry_orgnr"))

    op.drop_table("signatory_register_entry")
    op.drop_table("person")
    op.drop_table("employer")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event_object")

    op.drop_table("audit_event")
    op.drop_table("audit_chain_head")
