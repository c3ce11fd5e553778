"""The staff's access log (``staff_access_log``: who looked at whose data, append-only) and
the register extracts (``register_extract``), whose PDF and JSON are archive documents
(``errand_document.register_extract_id``, the kind ``register_extract``).

On PostgreSQL a trigger refuses every ``UPDATE`` of the access log, and the only way rows
leave it is ``staff_access_log_delete_before(cutoff, batch)``, a ``SECURITY DEFINER``
function of the tables' owner; the application's role (``behorighet db grant-app-role``)
may insert and read the log and run the function, nothing else.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

OLD_KINDS = ("printed", "signed", "scan", "receipt", "decision", "evidence")
NEW_KINDS = (*OLD_KINDS, "register_extract")
VIEW_KINDS = (
    "errand",
    "errand_document",
    "employer_lookup",
    "paper_form",
    "access_log",
    "access_log_csv",
    "register_extract",
    "register_extract_document",
)
NO_UPDATE_MESSAGE = "staff_access_log is append-only"
DELETE_FUNCTION = "staff_access_log_delete_before"


def _kind_type(kinds: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(
        *kinds, name="document_kind", native_enum=False, create_constraint=True, length=32
    )


def upgrade() -> None:
    op.create_table(
        "staff_access_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("subject_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "what",
            sa.Enum(
                *VIEW_KINDS, name="view_kind", native_enum=False, create_constraint=True, length=32
            ),
            nullable=False,
        ),
        sa.Column("object_ref", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("viewed_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_member.id"],
            name=op.f("fk_staff_access_log_staff_id_staff_member"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_access_log")),
    )
    op.create_index(
        "ix_staff_access_log_subject", "staff_access_log", ["subject_hash", "viewed_dt"]
    )
    op.create_index("ix_staff_access_log_viewed", "staff_access_log", ["viewed_dt"])
    op.create_table(
        "register_extract",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=12), nullable=False),
        sa.Column("subject_hash", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("request_note", sa.String(length=200), nullable=False),
        sa.Column("made_by_staff_id", sa.Integer(), nullable=False),
        sa.Column("made_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_by_staff_id", sa.Integer(), nullable=True),
        sa.Column("delivery_note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "language IN ('sv', 'en')", name=op.f("ck_register_extract_language_supported")
        ),
        sa.CheckConstraint(
            "(delivered_dt IS NULL) = (delivered_by_staff_id IS NULL)",
            name=op.f("ck_register_extract_delivered_by_someone"),
        ),
        sa.ForeignKeyConstraint(
            ["made_by_staff_id"],
            ["staff_member.id"],
            name=op.f("fk_register_extract_made_by_staff_id_staff_member"),
        ),
        sa.ForeignKeyConstraint(
            ["delivered_by_staff_id"],
            ["staff_member.id"],
            name=op.f("fk_register_extract_delivered_by_staff_id_staff_member"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_register_extract")),
        sa.UniqueConstraint("reference", name=op.f("uq_register_extract_reference")),
    )
    op.create_index(op.f("ix_register_extract_subject_hash"), "register_extract", ["subject_hash"])
    _documents_of_extracts()
    if op.get_bind().dialect.name == "postgresql":
        _append_only_on_postgresql()


def _documents_of_extracts() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    names = {c["name"] for c in sa.inspect(op.get_bind()).get_check_constraints("errand_document")}
    with op.batch_alter_table("errand_document", recreate="auto" if postgresql else "always") as b:
        b.add_column(sa.Column("register_extract_id", sa.Integer(), nullable=True))
        b.alter_column("errand_id", existing_type=sa.Integer(), nullable=True)
        b.create_foreign_key(
            op.f("fk_errand_document_register_extract_id_register_extract"),
            "register_extract",
            ["register_extract_id"],
            ["id"],
        )
        b.create_index(op.f("ix_errand_document_register_extract_id"), ["register_extract_id"])
        b.create_check_constraint(
            op.f("ck_errand_document_of_errand_or_extract"),
            "(errand_id IS NULL) <> (register_extract_id IS NULL)",
        )
        # The kind's CHECK keeps, on SQLite, the name it was made with (before 0007).
        for name in ("ck_submission_document_document_kind", "ck_errand_document_document_kind"):
            if name in names:
                b.drop_constraint(op.f(name), type_="check")
        if postgresql:
            listed = ", ".join(f"'{k}'" for k in NEW_KINDS)
            b.create_check_constraint(
                op.f("ck_errand_document_document_kind"), f"kind IN ({listed})"
            )
        else:
            b.alter_column("kind", type_=_kind_type(NEW_KINDS), existing_type=_kind_type(OLD_KINDS))


def _append_only_on_postgresql() -> None:
    op.execute(f"""
        CREATE FUNCTION staff_access_log_no_update() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION '{NO_UPDATE_MESSAGE}';
        END;
        $$ LANGUAGE plpgsql
    """)
    op.execute("""
        CREATE TRIGGER staff_access_log_no_update BEFORE UPDATE ON staff_access_log
        FOR EACH ROW EXECUTE FUNCTION staff_access_log_no_update()
    """)
    op.execute(f"""
        CREATE FUNCTION {DELETE_FUNCTION}(cutoff timestamptz, batch integer)
        RETURNS integer
        LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
            WITH gone AS (
                DELETE FROM public.staff_access_log WHERE id IN (
                    SELECT id FROM public.staff_access_log
                    WHERE viewed_dt < cutoff ORDER BY id LIMIT batch
                )
                RETURNING 1
            )
            SELECT count(*)::integer FROM gone
        $$
    """)
    op.execute(f"REVOKE ALL ON FUNCTION {DELETE_FUNCTION}(timestamptz, integer) FROM PUBLIC")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {DELETE_FUNCTION}(timestamptz, integer)")
        op.execute("DROP TRIGGER staff_access_log_no_update ON staff_access_log")
        op.execute("DROP FUNCTION staff_access_log_no_update()")
    op.execute("DELETE FROM errand_document WHERE register_extract_id IS NOT NULL")
    with op.batch_alter_table("errand_document") as b:
        b.drop_constraint(op.f("ck_errand_document_of_errand_or_extract"), type_="check")
        b.drop_index(op.f("ix_errand_document_register_extract_id"))
        b.drop_constraint(
            op.f("fk_errand_document_register_extract_id_register_extract"), type_="foreignkey"
        )
        b.drop_column("register_extract_id")
        b.alter_column("errand_id", existing_type=sa.Integer(), nullable=False)
        b.alter_column("kind", type_=_kind_type(OLD_KINDS), existing_type=_kind_type(NEW_KINDS))
    op.drop_index(op.f("ix_register_extract_subject_hash"), table_name="register_extract")
    op.drop_table("register_extract")
    op.drop_index("ix_staff_access_log_viewed", table_name="staff_access_log")
    op.drop_index("ix_staff_access_log_subject", table_name="staff_access_log")
    op.drop_table("staff_access_log")
