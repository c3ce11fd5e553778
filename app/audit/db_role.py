"""The application's own PostgreSQL role: it works, but cannot rewrite the audit log.

Migrations run as the owner of the tables; the application connects as another role
(``behorighet db grant-app-role ROLE``, run by the owner after every ``migrate``), which

* may read and write every table of the schema, except the audit log and the staff's access
  log: on ``audit_event`` ``SELECT``, ``INSERT`` and ``UPDATE`` of the payload columns only
  (no other ``UPDATE``, no ``DELETE``, ``TRUNCATE``, ``TRIGGER``), and the trigger lets an
  update through only when it removes the payload of an event whose chain covers a digest
  of it (retention, ``app.audit.service.redact_events``), nothing else changed; on
  ``staff_access_log`` ``SELECT`` and ``INSERT`` only; the oldest views leave the access log
  only through the owner's function ``staff_access_log_delete_before``, which it may run;
* owns nothing, so it cannot drop or disable the trigger that refuses ``UPDATE`` and
  ``DELETE`` of audit events (made here too when it is missing), nor alter the table;
* is no superuser and cannot create roles or databases.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

AUDIT_TABLE = "audit_event"
ACCESS_LOG_TABLE = "staff_access_log"
ACCESS_LOG_DELETE = "staff_access_log_delete_before(timestamptz, integer)"
"""Migration 0025's function: the only way rows leave the access log (``app.privacy``)."""
TRIGGER = "audit_event_append_only"
APPEND_ONLY_MESSAGE = "audit_event is append-only"


TRIGGER_FUNCTION = f"""
    CREATE OR REPLACE FUNCTION {TRIGGER}() RETURNS trigger AS $$
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
            RETURN NEW;  -- retention removes a payload its chain covers by digest only
        END IF;
        RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}';
    END;
    $$ LANGUAGE plpgsql
"""
"""Refuses ``UPDATE`` and ``DELETE`` of audit events, except the removal of a payload whose
event's chain covers a digest of it (migration 0024; 0001 refused every update)."""
REDACTABLE_COLUMNS = "data, data_salt, redacted_dt"


class RoleError(ValueError):
    """The role cannot be made the application's (the message says why)."""


def _ident(connection: Connection, name: str) -> str:
    return str(connection.execute(text("SELECT quote_ident(:n)"), {"n": name}).scalar_one())


def ensure_append_only_trigger(connection: Connection) -> bool:
    """Make the trigger refusing ``UPDATE`` and ``DELETE`` on ``audit_event`` when it is
    missing (migration 0001 makes it); ``True`` when it was made now."""
    exists = connection.execute(
        text(
            "SELECT 1 FROM pg_trigger WHERE tgname = :t AND tgrelid = CAST(:tbl AS regclass)"
            " AND NOT tgisinternal"
        ),
        {"t": TRIGGER, "tbl": AUDIT_TABLE},
    ).first()
    if exists:
        return False
    connection.execute(text(TRIGGER_FUNCTION))
    connection.execute(
        text(
            f"CREATE TRIGGER {TRIGGER} BEFORE UPDATE OR DELETE ON {AUDIT_TABLE}"
            f" FOR EACH ROW EXECUTE FUNCTION {TRIGGER}()"
        )
    )
    return True


def grant_app_role(connection: Connection, role: str, password: str | None = None) -> None:
    """Create ``role`` (``LOGIN``) if missing and give it what the application needs and
    no more (see the module). Run as the tables' owner, in a transaction."""
    if connection.dialect.name != "postgresql":
        raise RoleError("database roles are PostgreSQL's: this database is not")
    owner_query = "SELECT tableowner FROM pg_tables WHERE tablename = :t"
    owner = connection.execute(
        text(owner_query + " AND schemaname = current_schema()"),
        {"t": AUDIT_TABLE},
    ).scalar_one_or_none()
    if owner is None:
        raise RoleError(f"no {AUDIT_TABLE} table here: run `behorighet migrate` first")
    if owner == role:
        raise RoleError(f"{role} owns the tables: the application needs a role of its own")
    quoted = _ident(connection, role)
    existing = connection.execute(
        text("SELECT rolsuper FROM pg_roles WHERE rolname = :r"), {"r": role}
    ).first()
    if existing is None:
        connection.execute(text(f"CREATE ROLE {quoted} LOGIN"))
    elif existing[0]:
        raise RoleError(f"{role} is a superuser: it could rewrite anything")
    connection.execute(
        text(f"ALTER ROLE {quoted} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS LOGIN")
    )
    if password:
        connection.execute(text(f"ALTER ROLE {quoted} PASSWORD {_literal(connection, password)}"))
    database = _ident(
        connection, str(connection.execute(text("SELECT current_database()")).scalar_one())
    )
    schema = _ident(
        connection, str(connection.execute(text("SELECT current_schema()")).scalar_one())
    )
    for statement in (
        f"GRANT CONNECT ON DATABASE {database} TO {quoted}",
        f"GRANT USAGE ON SCHEMA {schema} TO {quoted}",
        f"REVOKE CREATE ON SCHEMA {schema} FROM {quoted}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {quoted}",
        f"REVOKE ALL ON {AUDIT_TABLE} FROM {quoted}",
        f"GRANT SELECT, INSERT ON {AUDIT_TABLE} TO {quoted}",
        f"GRANT UPDATE ({REDACTABLE_COLUMNS}) ON {AUDIT_TABLE} TO {quoted}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {quoted}",
    ):
        connection.execute(text(statement))
    if connection.execute(text(f"SELECT to_regclass('{ACCESS_LOG_TABLE}')")).scalar_one():
        connection.execute(text(f"REVOKE ALL ON {ACCESS_LOG_TABLE} FROM {quoted}"))
        connection.execute(text(f"GRANT SELECT, INSERT ON {ACCESS_LOG_TABLE} TO {quoted}"))
        connection.execute(text(f"GRANT EXECUTE ON FUNCTION {ACCESS_LOG_DELETE} TO {quoted}"))
    if connection.execute(text("SELECT to_regclass('alembic_version')")).scalar_one():
        connection.execute(text(f"REVOKE ALL ON alembic_version FROM {quoted}"))
        connection.execute(text(f"GRANT SELECT ON alembic_version TO {quoted}"))
    ensure_append_only_trigger(connection)


def _scalar(connection: Connection, query: str) -> str:
    return str(connection.execute(text(query)).scalar_one())


def _literal(connection: Connection, value: str) -> str:
    return str(connection.execute(text("SELECT quote_literal(:v)"), {"v": value}).scalar_one())
