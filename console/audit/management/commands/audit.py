"""``manage.py audit verify|retention|head``: the audit chain from the command line."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Verify the audit chain, apply retention, or print the chain's head."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="what", required=True)
        verify = sub.add_parser("verify", help="walk the chain; name the first broken record")
        verify.add_argument("--archives", action="store_true", help="also walk the retention archives")
        verify.add_argument("--no-store", action="store_true", help="do not store the result for the page")
        retention = sub.add_parser("retention", help="archive and purge records older than --days")
        retention.add_argument("--days", type=int, default=None,
                               help="default: the Settings page's value, else BERTH_AUDIT_RETENTION_DAYS; "
                                    "0 keeps everything")
        sub.add_parser("head", help="print the last record's number and hash (to keep elsewhere)")

    def handle(self, *args, what, **options):
        from console.audit import chain
        from console.audit.models import ChainHead

        if what == "head":
            head = ChainHead.objects.filter(pk=1).first() or ChainHead()
            self.stdout.write(f"#{head.last_id} {head.last_hash}")
            return
        if what == "retention":
            from console.audit.retention import purge_older_than

            files = purge_older_than(options["days"])
            for path in files:
                self.stdout.write(f"archived and purged: {path}")
            if not files:
                self.stdout.write("nothing to purge")
            return
        if options["no_store"]:
            result = chain.verify()
        else:
            from console.audit.tasks import run_verify

            check = run_verify()
            result = chain.VerifyResult(check.ok, check.records, check.broken_id, check.message,
                                        check.head_id, check.head_hash)
        self.stdout.write(str(result))
        if options["archives"]:
            from console.audit.retention import verify_archives

            archives = verify_archives()
            self.stdout.write(("archives intact: " if archives.ok else "archives BROKEN: ")
                              + (f"{archives.records} records" if archives.ok else archives.message))
            if not archives.ok:
                raise CommandError("the audit archives do not verify")
        if not result.ok:
            raise CommandError(f"the audit chain is broken at record #{result.broken_id}")
