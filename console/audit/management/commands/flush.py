"""Django's ``flush``, which also empties the audit log.

``flush`` deletes every row of every table on purpose (tests run it between
transactional tests); the audit triggers would refuse it. Run without prompting
(``--noinput``, as tests do), this raises the retention flag for the audit tables,
then runs Django's flush: on SQLite it first empties the audit tables itself (the
flag table is emptied by the flush too, in an order it does not promise); on
PostgreSQL the one TRUNCATE statement sees the flag in its BEFORE TRUNCATE
triggers. An interactive flush is refused by the triggers when there are records.
"""

from __future__ import annotations

import logging

from django.core.management.commands.flush import Command as DjangoFlush
from django.db import DEFAULT_DB_ALIAS, connections, transaction

log = logging.getLogger("berth.audit")


class Command(DjangoFlush):
    def handle(self, **options):
        database = options.get("database", DEFAULT_DB_ALIAS)
        connection = connections[database]
        if options.get("interactive", True) or "audit_auditevent" not in connection.introspection.table_names():
            return super().handle(**options)
        with transaction.atomic(using=database):
            with connection.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) FROM audit_auditevent")
                count = cursor.fetchone()[0]
                cursor.execute("DELETE FROM audit_retentionflag")
                cursor.execute("INSERT INTO audit_retentionflag (id, active) VALUES (1, %s)", [True])
                if connection.vendor != "postgresql":
                    cursor.execute("DELETE FROM audit_terminalrecording")
                    cursor.execute("DELETE FROM audit_auditevent")
                    cursor.execute("UPDATE audit_retentionflag SET active = %s", [False])
            if count:
                log.info("flush: %s audit records deleted", count)
            return super().handle(**options)
