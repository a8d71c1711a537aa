"""Django's ``flush``, which also empties the audit log.

``flush`` deletes every row of every table on purpose (tests run it between
transactional tests); the audit triggers would refuse it. This raises the
retention flag for the audit tables only, empties them, then runs Django's flush.
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
        tables = set(connection.introspection.table_names())
        if "audit_auditevent" in tables and not options.get("interactive", True):
            with transaction.atomic(using=database), connection.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) FROM audit_auditevent")
                count = cursor.fetchone()[0]
                if count:
                    cursor.execute("DELETE FROM audit_retentionflag")
                    cursor.execute("INSERT INTO audit_retentionflag (id, active) VALUES (1, %s)", [True])
                    cursor.execute("DELETE FROM audit_terminalrecording")
                    cursor.execute("DELETE FROM audit_auditevent")
                    cursor.execute("UPDATE audit_retentionflag SET active = %s", [False])
                    if options.get("verbosity", 1) > 1:
                        log.warning("flush: %s audit records deleted", count)
        return super().handle(**options)
