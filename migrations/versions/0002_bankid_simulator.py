"""BankID simulator: its orders and injected RP API faults.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 00:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

HINT_CODES = (
    "outstandingTransaction",
    "noClient",
    "started",
    "userMrtd",
    "userCallConfirm",
    "userSign",
    "expiredTransaction",
    "certificateErr",
    "userCancel",
    "cancelled",
    "startFailed",
    "userDeclinedCall",
    "notSupportedByUserApp",
    "transactionRiskBlocked",
)


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade() -> None:
    op.create_table(
        "bankid_sim_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_ref", sa.String(length=36), nullable=False),
        sa.Column("kind", _enum("bankid_sim_order_kind", "auth", "sign"), nullable=False),
        sa.Column(
            "call_initiator", _enum("bankid_sim_call_initiator", "user", "RP"), nullable=True
        ),
        sa.Column("end_user_ip", sa.String(length=45), nullable=True),
        sa.Column("auto_start_token", sa.String(length=36), nullable=True),
        sa.Column("qr_start_token", sa.String(length=36), nullable=True),
        sa.Column("qr_start_secret", sa.String(length=36), nullable=True),
        sa.Column("user_visible_data", sa.Text(), nullable=True),
        sa.Column("user_non_visible_data", sa.Text(), nullable=True),
        sa.Column("user_visible_data_format", sa.String(length=32), nullable=True),
        sa.Column("requirement", sa.JSON(), nullable=False),
        sa.Column("required_personal_number", sa.String(length=12), nullable=True),
        sa.Column("return_risk", sa.Boolean(), nullable=False),
        sa.Column(
            "status",
            _enum("bankid_sim_order_status", "pending", "failed", "complete"),
            nullable=False,
        ),
        sa.Column("hint_code", _enum("bankid_sim_hint_code", *HINT_CODES), nullable=True),
        sa.Column("personal_number", sa.String(length=12), nullable=True),
        sa.Column("given_name", sa.String(length=100), nullable=True),
        sa.Column("surname", sa.String(length=100), nullable=True),
        sa.Column("device_ip", sa.String(length=45), nullable=True),
        sa.Column("completion_data", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("created_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("opened_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_dt", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status = 'complete' OR completion_data IS NULL",
            name=op.f("ck_bankid_sim_order_completion_only_when_complete"),
        ),
        sa.CheckConstraint(
            "(status = 'complete') = (hint_code IS NULL)",
            name=op.f("ck_bankid_sim_order_hint_unless_complete"),
        ),
        sa.CheckConstraint(
            "(call_initiator IS NULL) = (qr_start_secret IS NOT NULL)",
            name=op.f("ck_bankid_sim_order_phone_orders_have_no_qr"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bankid_sim_order")),
        sa.UniqueConstraint("order_ref", name=op.f("uq_bankid_sim_order_order_ref")),
        sa.UniqueConstraint("qr_start_token", name=op.f("uq_bankid_sim_order_qr_start_token")),
    )
    with op.batch_alter_table("bankid_sim_order", schema=None) as batch_op:
        batch_op.create_index("ix_bankid_sim_order_status", ["status", "expires_dt"], unique=False)
        batch_op.create_index(
            "uq_bankid_sim_order_pending_personal_number",
            ["required_personal_number"],
            unique=True,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
    op.create_table(
        "bankid_sim_fault",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "error_code",
            _enum(
                "bankid_sim_fault_code",
                "unauthorized",
                "requestTimeout",
                "internalError",
                "maintenance",
            ),
            nullable=False,
        ),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("created_dt", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("remaining > 0", name=op.f("ck_bankid_sim_fault_remaining_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bankid_sim_fault")),
    )


def downgrade() -> None:
    op.drop_table("bankid_sim_fault")
    with op.batch_alter_table("bankid_sim_order", schema=None) as batch_op:
        batch_op.drop_index("uq_bankid_sim_order_pending_personal_number")
        batch_op.drop_index("ix_bankid_sim_order_status")
    op.drop_table("bankid_sim_order")
