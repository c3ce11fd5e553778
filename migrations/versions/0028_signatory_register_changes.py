"""Signatory register changes (issue 18 item 5): the imported extract's signing rule and
registration date on each entry, the recorded changes (``signatory_register_change``), the
review flags of orderers' roles (``role_review_flag``) and the errand kind
``signatory_change`` (SPV's own review of an orderer whose registration's signatory left).

Revision ID: 0028
Revises: 0026
Create Date: 2026-12-03 12:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0028"
down_revision = "0026"
branch_labels = None
depends_on = None

OLD_KINDS = ("registration", "removal")
NEW_KINDS = (*OLD_KINDS, "signatory_change")


def _listed(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _kind_type(kinds: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*kinds, name="errand_kind", native_enum=False, create_constraint=True, length=32)


def _errand_kinds(kinds: tuple[str, ...]) -> None:
    """The kinds an errand (and a cached blank form: the same enum) may have."""
    with op.batch_alter_table("blank_form") as batch:
        batch.drop_constraint(op.f("ck_blank_form_errand_kind"), type_="check")
        batch.create_check_constraint(
            op.f("ck_blank_form_errand_kind"), f"kind IN {_listed(kinds)}"
        )
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("ck_errand_errand_kind"), "errand", type_="check")
        op.create_check_constraint(
            op.f("ck_errand_errand_kind"), "errand", f"kind IN {_listed(kinds)}"
        )
        return
    # SQLite (the demo): the table is made again with the new constraint.
    names = {c["name"] for c in sa.inspect(op.get_bind()).get_check_constraints("errand")}
    with op.batch_alter_table("errand", recreate="always") as batch_op:
        for name in ("ck_submission_submission_kind", "ck_errand_errand_kind"):
            if name in names:
                batch_op.drop_constraint(op.f(name), type_="check")
        batch_op.alter_column("kind", type_=_kind_type(kinds))


def upgrade() -> None:
    with op.batch_alter_table("signatory_register_entry") as batch:
        batch.add_column(
            sa.Column("signing_rule", sa.String(length=20), nullable=False, server_default="alone")
        )
        batch.add_column(sa.Column("registered_on", sa.Date(), nullable=True))
    _errand_kinds(NEW_KINDS)
    op.create_table(
        "signatory_register_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("orgnr", sa.String(length=10), nullable=False),
        sa.Column("personnummer", sa.String(length=12), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "added",
                "removed",
                "changed",
                name="register_change_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("capacity", sa.String(length=100), nullable=False),
        sa.Column("signing_rule", sa.String(length=32), nullable=True),
        sa.Column("extract_sha256", sa.String(length=64), nullable=False),
        sa.Column("recorded_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signatory_register_change")),
    )
    op.create_index(
        "ix_signatory_register_change_orgnr",
        "signatory_register_change",
        ["orgnr", "recorded_dt"],
    )
    op.create_table(
        "role_review_flag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("role_grant_id", sa.Integer(), nullable=False),
        sa.Column(
            "reason",
            sa.Enum(
                "signatory_left",
                name="review_reason",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("signatory_personnummer", sa.String(length=12), nullable=False),
        sa.Column("signatory_name", sa.String(length=200), nullable=False),
        sa.Column("errand_id", sa.Integer(), nullable=False),
        sa.Column("created_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_staff_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(resolved_dt IS NULL) = (resolved_by_staff_id IS NULL)",
            name=op.f("ck_role_review_flag_resolved_by_staff"),
        ),
        sa.ForeignKeyConstraint(
            ["role_grant_id"],
            ["role_grant.id"],
            name=op.f("fk_role_review_flag_role_grant_id_role_grant"),
        ),
        sa.ForeignKeyConstraint(
            ["errand_id"], ["errand.id"], name=op.f("fk_role_review_flag_errand_id_errand")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_staff_id"],
            ["staff_member.id"],
            name=op.f("fk_role_review_flag_resolved_by_staff_id_staff_member"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_review_flag")),
    )
    op.create_index(
        op.f("ix_role_review_flag_role_grant_id"), "role_review_flag", ["role_grant_id"]
    )
    op.create_index(op.f("ix_role_review_flag_errand_id"), "role_review_flag", ["errand_id"])
    op.create_index(
        "uq_role_review_flag_open",
        "role_review_flag",
        ["role_grant_id", "reason"],
        unique=True,
        postgresql_where=sa.text("resolved_dt IS NULL"),
        sqlite_where=sa.text("resolved_dt IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("role_review_flag")
    op.drop_index("ix_signatory_register_change_orgnr", table_name="signatory_register_change")
    op.drop_table("signatory_register_change")
    # SPV's own review errands had no kind before: they go with their flags.
    own = "(SELECT id FROM errand WHERE kind = 'signatory_change')"
    op.execute(f"DELETE FROM verification_check WHERE errand_id IN {own}")
    op.execute(f"DELETE FROM errand_comment WHERE errand_id IN {own}")
    op.execute(f"UPDATE email_message SET errand_id = NULL WHERE errand_id IN {own}")
    op.execute("DELETE FROM errand WHERE kind = 'signatory_change'")
    _errand_kinds(OLD_KINDS)
    with op.batch_alter_table("signatory_register_entry") as batch:
        batch.drop_column("registered_on")
        batch.drop_column("signing_rule")
