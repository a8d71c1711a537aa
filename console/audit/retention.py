"""Retention: records past an age are archived to JSONL, then purged.

An archive file holds a header line (``{"type": "archive", "anchor_hash": ...}``, the
hash the first archived record follows) and one line per record: its hashed content
and both hashes (and its terminal recording, base64 of the gzip, outside the hashed
part; the hashed details hold its SHA-256). The archive's last hash becomes the
chain's anchor: the oldest remaining record follows it, so ``verify`` still walks an
unbroken chain, and ``verify_archives`` walks the archives up to that anchor.

The archive is written (temp file, fsync, rename) and read back and checked before
anything is deleted; the delete runs in one transaction that raises the retention
flag (the only way past the DELETE triggers) and clears it before committing.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from console.audit import chain
from console.audit.models import GENESIS, AuditEvent, ChainHead, RetentionFlag, TerminalRecording
from console.sitesettings import catalog

BATCH = 100_000


def archive_dir() -> Path:
    path = Path(getattr(settings, "BERTH_AUDIT_ARCHIVE_DIR", settings.DATA_DIR / "audit-archive"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_archive(directory: Path, first_id: int, last_id: int, anchor_hash: str) -> tuple[Path, str, int]:
    path = directory / f"audit-{first_id:012d}-{last_id:012d}.jsonl"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    recordings = dict(TerminalRecording.objects.filter(event_id__gte=first_id, event_id__lte=last_id)
                      .values_list("event_id", "data"))
    last_hash, count = anchor_hash, 0
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(chain.canonical_json({"type": "archive", "first_id": first_id, "last_id": last_id,
                                        "anchor_hash": anchor_hash,
                                        "created_at": chain.canonical_time(timezone.now())}) + "\n")
        rows = AuditEvent.objects.filter(id__gte=first_id, id__lte=last_id).order_by("id").values(
            *chain.VERIFY_VALUES)
        for row in rows.iterator(chunk_size=5000):
            line = chain.archive_line(row)
            if row["id"] in recordings:
                extra = base64.b64encode(bytes(recordings[row["id"]])).decode()
                line = line[:-1] + f',"recording_gzip_base64":"{extra}"}}'
            out.write(line + "\n")
            last_hash, count = row["hash"], count + 1
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    with open(path, encoding="utf-8") as archived:
        check = chain.verify_archive_lines(archived, anchor_hash)
    if not check.ok or check.head_hash != last_hash or check.records != last_id - first_id + 1:
        path.unlink()
        raise RuntimeError(f"the archive of records #{first_id}-#{last_id} does not verify ({check}); "
                           "nothing was purged. Run `manage.py audit verify`.")
    return path, last_hash, count


def purge_older_than(days: int | None = None, *, now: dt.datetime | None = None) -> list[Path]:
    """Archive then purge records older than ``days`` (default: the Settings page's value,
    else BERTH_AUDIT_RETENTION_DAYS; 0 keeps everything). Returns the archive files written."""
    days = catalog.get("audit_retention_days") if days is None else days
    if not days or days <= 0:
        return []
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    last_old = AuditEvent.objects.filter(time__lt=cutoff).order_by("-id").values_list("id", flat=True).first()
    if last_old is None:
        return []
    files = []
    directory = archive_dir()
    while True:
        head = ChainHead.objects.get(pk=1)
        first = head.anchor_id + 1
        if first > last_old:
            break
        last = min(last_old, first + BATCH - 1)
        path, last_hash, count = _write_archive(directory, first, last, head.anchor_hash)
        _purge(first, last, last_hash, head.anchor_id)
        files.append(path)
        from console import audit

        audit.record(user=None, actor_name="berth", action="audit.retention", target_type="archive",
                     target_name=path.name, details={"first_id": first, "last_id": last, "records": count,
                                                     "anchor_hash": last_hash, "older_than_days": days})
    return files


def _purge(first: int, last: int, last_hash: str, expected_anchor: int) -> None:
    with transaction.atomic():
        head = ChainHead.objects.select_for_update().get(pk=1)
        if head.anchor_id != expected_anchor:
            raise RuntimeError("another retention run moved the anchor; nothing was purged by this one")
        stored = AuditEvent.objects.filter(pk=last).values_list("hash", flat=True).first()
        if stored != last_hash:
            raise RuntimeError(f"record #{last} changed while it was archived; nothing was purged")
        RetentionFlag.objects.update_or_create(pk=1, defaults={"active": True})
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_terminalrecording WHERE event_id >= %s AND event_id <= %s",
                           [first, last])
            cursor.execute("DELETE FROM audit_auditevent WHERE id >= %s AND id <= %s", [first, last])
        RetentionFlag.objects.filter(pk=1).update(active=False)
        ChainHead.objects.filter(pk=1).update(anchor_id=last, anchor_hash=last_hash)


def verify_archives(directory: Path | None = None) -> chain.VerifyResult:
    """Walk every archive in order from the genesis; the last hash must be the chain's anchor."""
    directory = directory or archive_dir()
    head = ChainHead.objects.filter(pk=1).first() or ChainHead()
    prev, total, expected_first = GENESIS, 0, 1
    for path in sorted(directory.glob("audit-*.jsonl")):
        with open(path, encoding="utf-8") as lines:
            header = json.loads(lines.readline())
            if header.get("first_id") != expected_first or header.get("anchor_hash") != prev:
                return chain.VerifyResult(False, total, header.get("first_id"),
                                          f"{path.name} does not follow the archive before it")
            result = chain.verify_archive_lines(lines, prev)
        if not result.ok:
            return chain.VerifyResult(False, total + result.records, result.broken_id,
                                      f"{path.name}: {result.message}")
        prev, total, expected_first = result.head_hash, total + result.records, header["last_id"] + 1
    if prev != head.anchor_hash:
        return chain.VerifyResult(False, total, head.anchor_id,
                                  "the archives do not end at the chain's anchor (an archive is missing)")
    return chain.VerifyResult(True, total, None, "", expected_first - 1, prev)
