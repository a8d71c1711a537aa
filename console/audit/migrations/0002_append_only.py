"""The database refuses UPDATE and DELETE on audit records (SQLite and PostgreSQL).

Allowed: Django's SET_NULL of ``actor_id`` / ``environment_id`` when a user or an
environment is deleted (nothing else may change, and those two only to NULL), and
DELETE while the one ``audit_retentionflag`` row is active, which only the retention
transaction sets (and clears before it commits). A new column on ``audit_auditevent``
must be added to ``EVENT_COLUMNS`` in a new migration that recreates the SQLite trigger.
"""

from django.db import migrations

EVENT_COLUMNS = (
    "id", "time", "actor_name", "source_ip", "user_agent", "environment_name", "action", "target_type",
    "target_id", "target_name", "outcome", "error", "request_id", "operation_id", "details",
    "search_text", "prev_hash", "hash",
)
FLAG_OFF = "COALESCE((SELECT active FROM audit_retentionflag WHERE id = 1), 0) = 0"

SQLITE = [
    f"""CREATE TRIGGER audit_event_no_update BEFORE UPDATE OF {", ".join(EVENT_COLUMNS)} ON audit_auditevent
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_event_only_set_null BEFORE UPDATE OF actor_id, environment_id ON audit_auditevent
    WHEN (NEW.actor_id IS NOT NULL AND NEW.actor_id IS NOT OLD.actor_id)
      OR (NEW.environment_id IS NOT NULL AND NEW.environment_id IS NOT OLD.environment_id)
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only: UPDATE refused'); END""",
    f"""CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_auditevent WHEN {FLAG_OFF}
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only: DELETE refused'); END""",
    """CREATE TRIGGER audit_recording_no_update BEFORE UPDATE ON audit_terminalrecording
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only: UPDATE refused'); END""",
    f"""CREATE TRIGGER audit_recording_no_delete BEFORE DELETE ON audit_terminalrecording WHEN {FLAG_OFF}
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only: DELETE refused'); END""",
]
SQLITE_REVERSE = [
    f"DROP TRIGGER IF EXISTS {name}" for name in (
        "audit_event_no_update", "audit_event_only_set_null", "audit_event_no_delete",
        "audit_recording_no_update", "audit_recording_no_delete")
]

PG_FLAG_ON = "COALESCE((SELECT active FROM audit_retentionflag WHERE id = 1), false)"
POSTGRES = [
    f"""CREATE OR REPLACE FUNCTION audit_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'UPDATE' THEN
        IF (to_jsonb(NEW) - 'actor_id' - 'environment_id') = (to_jsonb(OLD) - 'actor_id' - 'environment_id')
           AND (NEW.actor_id IS NULL OR NEW.actor_id = OLD.actor_id)
           AND (NEW.environment_id IS NULL OR NEW.environment_id = OLD.environment_id) THEN
          RETURN NEW;
        END IF;
      ELSIF {PG_FLAG_ON} THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NULL;
      END IF;
      RAISE EXCEPTION 'audit records are append-only: % refused', TG_OP;
    END $$""",
    f"""CREATE OR REPLACE FUNCTION audit_recording_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP <> 'UPDATE' AND {PG_FLAG_ON} THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NULL;
      END IF;
      RAISE EXCEPTION 'audit records are append-only: % refused', TG_OP;
    END $$""",
    """CREATE TRIGGER audit_event_guard BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_guard()""",
    """CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_guard()""",
    """CREATE TRIGGER audit_recording_guard BEFORE UPDATE OR DELETE ON audit_terminalrecording
    FOR EACH ROW EXECUTE FUNCTION audit_recording_guard()""",
    """CREATE TRIGGER audit_recording_no_truncate BEFORE TRUNCATE ON audit_terminalrecording
    FOR EACH STATEMENT EXECUTE FUNCTION audit_recording_guard()""",
]
POSTGRES_REVERSE = [
    "DROP TRIGGER IF EXISTS audit_event_guard ON audit_auditevent",
    "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent",
    "DROP TRIGGER IF EXISTS audit_recording_guard ON audit_terminalrecording",
    "DROP TRIGGER IF EXISTS audit_recording_no_truncate ON audit_terminalrecording",
    "DROP FUNCTION IF EXISTS audit_event_guard()",
    "DROP FUNCTION IF EXISTS audit_recording_guard()",
]


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"sqlite": SQLITE, "postgresql": POSTGRES}.get(vendor)
    if statements is None:
        raise RuntimeError(f"the audit log's append-only triggers are written for SQLite and PostgreSQL, not {vendor}")
    for sql in statements:
        schema_editor.execute(sql, None)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in {"sqlite": SQLITE_REVERSE, "postgresql": POSTGRES_REVERSE}.get(vendor, []):
        schema_editor.execute(sql, None)


def create_rows(apps, schema_editor):
    apps.get_model("audit", "RetentionFlag").objects.get_or_create(pk=1, defaults={"active": False})
    apps.get_model("audit", "ChainHead").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [
        migrations.RunPython(create_rows, migrations.RunPython.noop),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
