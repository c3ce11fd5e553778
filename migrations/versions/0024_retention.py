"""Retention (``app.retention``): when an errand ended, what retention removed, and audit
events whose chain covers a salted digest of the payload (``key_version`` 3), so that the
payload can be removed and the chain still verifies. The events already there keep their
hashes (over the payload itself) and verify as before. The append-only trigger lets one
update through: the removal of a ``key_version`` 3 event's payload, nothing else changed.

Revision ID: 0024
Revises: 0022
Create Date: 2026-12-03 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0022"
branch_labels = None
depends_on = None

MESSAGE = "audit_event is append-only"
TERMINAL = "('closed', 'rejected', 'withdrawn', 'expired')"

# The trigger as this revision made it (``app.audit.db_role.TRIGGER_FUNCTION`` makes the
# same where it is missing): a migration keeps its own copy, so that it does what it did
# even when the application's later changes.
POSTGRESQL_TRIGGER = f"""
    CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND OLD.key_version = 3 AND OLD.data_digest IS NOT NULL
            AND OLD.redacted_dt IS NULL AND NEW.redacted_dt IS NOT NULL
            AND NEW.data_salt IS NULL AND CAST(NEW.data AS jsonb) = CAST('{{}}' AS jsonb)
            AND (NEW.id, NEW.chain, NEW.seq, NEW.occurred_dt, NEW.actor, NEW.action,
                 NEW.object_type, NEW.object_id, NEW.prev_hash, NEW.hash, NEW.key_version,
                 NEW.data_digest)
            IS NOT DISTINCT FROM
                (OLD.id, OLD.chain, OLD.seq, OLD.occurred_dt, OLD.actor, OLD.action,
                 OLD.object_type, OLD.object_id, OLD.prev_hash, OLD.hash, OLD.key_version,
                 OLD.data_digest)
        THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION '{MESSAGE}';
    END;
    $$ LANGUAGE plpgsql
"""

POSTGRESQL_TRIGGER_BEFORE = f"""
    CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '{MESSAGE}';
    END;
    $$ LANGUAGE plpgsql
"""

SQLITE_NO_UPDATE = f"""
    CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
    WHEN NOT (
        OLD.key_version = 3 AND OLD.data_digest IS NOT NULL AND OLD.redacted_dt IS NULL
        AND NEW.redacted_dt IS NOT NULL AND NEW.data_salt IS NULL AND NEW.data = '{{}}'
        AND NEW.id = OLD.id AND NEW.chain = OLD.chain AND NEW.seq = OLD.seq
        AND NEW.occurred_dt = OLD.occurred_dt AND NEW.actor = OLD.actor
        AND NEW.action = OLD.action AND NEW.object_type = OLD.object_type
        AND NEW.object_id = OLD.object_id AND NEW.prev_hash = OLD.prev_hash
        AND NEW.hash = OLD.hash AND NEW.key_version = OLD.key_version
        AND NEW.data_digest = OLD.data_digest
    )
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END
"""


NEW_TIMES = (
    ("audit_event", "redacted_dt"),
    ("errand", "ended_dt"),
    ("person", "pseudonymised_dt"),
    ("scan_batch", "content_removed_dt"),
    ("email_message", "body_removed_dt"),
)


def upgrade() -> None:
    # Plain ADD COLUMN, not a batch (SQLite's batch copies the table and loses its triggers).
    op.add_column("audit_event", sa.Column("data_digest", sa.String(64), nullable=True))
    op.add_column("audit_event", sa.Column("data_salt", sa.String(32), nullable=True))
    for table, column in NEW_TIMES:
        op.add_column(table, sa.Column(column, sa.DateTime(timezone=True), nullable=True))
    # The errands that ended before: their last change is when they ended.
    op.execute(f"UPDATE errand SET ended_dt = updated_dt WHERE state IN {TERMINAL}")
    op.create_index("ix_errand_state_ended", "errand", ["state", "ended_dt"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_TRIGGER)
    else:
        op.execute("DROP TRIGGER audit_event_no_update")
        op.execute(SQLITE_NO_UPDATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_TRIGGER_BEFORE)
    else:
        op.execute("DROP TRIGGER audit_event_no_update")
        op.execute(f"""
            CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
            BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END
        """)
    op.drop_index("ix_errand_state_ended", "errand")
    for table, column in NEW_TIMES[1:]:
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
    for column in ("redacted_dt", "data_salt", "data_digest"):
        op.drop_column("audit_event", column)
