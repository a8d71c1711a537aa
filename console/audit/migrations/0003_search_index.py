"""An index for the free-text filter, so a search that matches little does not read every row.

SQLite: an FTS5 table with the trigram tokenizer over ``search_text`` (external content,
kept by triggers), which answers ``LIKE '%text%'`` from its index (3 characters or more).
PostgreSQL: a pg_trgm GIN index on ``search_text``, when the extension can be created
(otherwise the filter still works, by scanning).
"""

from django.db import migrations

SQLITE = [
    """CREATE VIRTUAL TABLE audit_search USING fts5(search_text, content='audit_auditevent',
       content_rowid='id', tokenize='trigram')""",
    """CREATE TRIGGER audit_search_insert AFTER INSERT ON audit_auditevent BEGIN
       INSERT INTO audit_search (rowid, search_text) VALUES (new.id, new.search_text); END""",
    """CREATE TRIGGER audit_search_delete AFTER DELETE ON audit_auditevent BEGIN
       INSERT INTO audit_search (audit_search, rowid, search_text) VALUES ('delete', old.id, old.search_text); END""",
    "INSERT INTO audit_search (audit_search) VALUES ('rebuild')",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS audit_search_insert",
    "DROP TRIGGER IF EXISTS audit_search_delete",
    "DROP TABLE IF EXISTS audit_search",
]


def create(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "sqlite":
        for sql in SQLITE:
            schema_editor.execute(sql, None)
    elif connection.vendor == "postgresql":
        from django.db import DatabaseError, transaction

        try:
            with transaction.atomic(using=connection.alias):
                schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm", None)
        except DatabaseError:
            return  # no rights to add the extension: the filter scans instead
        schema_editor.execute("CREATE INDEX IF NOT EXISTS audit_search_trgm ON audit_auditevent "
                              "USING gin (search_text gin_trgm_ops)", None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for sql in SQLITE_REVERSE:
            schema_editor.execute(sql, None)
    elif schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS audit_search_trgm", None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only")]
    operations = [migrations.RunPython(create, drop)]
