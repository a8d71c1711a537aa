"""The hash chain: canonical content, appending under the head's lock, verifying.

Each record's ``hash`` is ``sha256(prev_hash + "\\n" + canonical_json(content))``
where ``content`` is every stored field except the two foreign keys (which
Django may null when a user or environment is deleted; the names at the time
are part of the content) and the hashes themselves. Canonical JSON: sorted
keys, no spaces, UTF-8, times in UTC with microseconds.

Writers serialise on the ``ChainHead`` row: ``select_for_update`` on
PostgreSQL; on SQLite every transaction is IMMEDIATE (see settings), so the
write lock is taken at BEGIN. The record's number is the head's + 1, so numbers
have no gaps and a missing number is a deleted record.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from console.audit.models import GENESIS, AuditEvent, ChainHead, TerminalRecording

HASHED_FIELDS = (
    "id", "time", "actor_name", "source_ip", "user_agent", "environment_name", "action",
    "target_type", "target_id", "target_name", "outcome", "error", "request_id", "operation_id",
    "details",
)


def canonical_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def normalize_details(details) -> dict:
    """Details as they will read back from the JSON column (str keys, lists, plain values)."""
    return json.loads(json.dumps(details or {}, default=str, allow_nan=False))


def content_of(row: dict) -> dict:
    content = {name: row.get(name) for name in HASHED_FIELDS}
    content["time"] = canonical_time(row["time"])
    if content["operation_id"] is not None:
        content["operation_id"] = str(content["operation_id"])
    for name in ("actor_name", "user_agent", "environment_name", "action", "target_type", "target_id",
                 "target_name", "outcome", "error", "request_id"):
        content[name] = content[name] or ""
    content["details"] = content["details"] or {}
    return content


def compute_hash(prev_hash: str, row: dict) -> str:
    payload = prev_hash + "\n" + canonical_json(content_of(row))
    return hashlib.sha256(payload.encode()).hexdigest()


def _head_for_update(cursor) -> tuple[int, str]:
    """The chain head's (last_id, last_hash), locked until the transaction ends."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    cursor.execute(f"SELECT last_id, last_hash FROM audit_chainhead WHERE id = 1{lock}")
    found = cursor.fetchone()
    if found is None:
        # A fresh or flushed database: start the chain. Two first writers race only
        # on PostgreSQL; the loser waits for the winner's row, then locks it.
        try:
            with transaction.atomic():
                ChainHead.objects.create(pk=1)
        except IntegrityError:
            pass
        cursor.execute(f"SELECT last_id, last_hash FROM audit_chainhead WHERE id = 1{lock}")
        found = cursor.fetchone()
    return found


_INSERT: dict[str, tuple[str, list]] = {}


def _insert_sql() -> tuple[str, list]:
    """The INSERT for one event, made once per vendor (the ORM's per-call work costs more
    than the insert itself here, and every action pays it)."""
    if connection.vendor not in _INSERT:
        fields = [f for f in AuditEvent._meta.concrete_fields]
        quote = connection.ops.quote_name
        sql = (f"INSERT INTO {quote(AuditEvent._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
               f"VALUES ({', '.join(['%s'] * len(fields))})")
        _INSERT[connection.vendor] = (sql, fields)
    return _INSERT[connection.vendor]


def append(fields: dict, recording: bytes | None = None) -> AuditEvent:
    """Write one record at the end of the chain; ``fields`` are AuditEvent fields
    without id, time and hashes. ``recording`` is asciicast text (bytes) to keep.

    SQLite answers "locked" at once, without waiting, when its shared cache is in use
    (the in-memory test database shared by threads): outside an outer transaction the
    append is retried for a few seconds then."""
    retry = not connection.in_atomic_block
    deadline = time.monotonic() + 5
    while True:
        try:
            return _append(fields, recording)
        except OperationalError as exc:
            if not retry or "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _append(fields: dict, recording: bytes | None) -> AuditEvent:
    sql, columns = _insert_sql()
    with transaction.atomic(), connection.cursor() as cursor:
        last_id, last_hash = _head_for_update(cursor)
        row = dict(fields)
        row["id"] = last_id + 1
        row["time"] = timezone.now()
        row["details"] = normalize_details(row.get("details"))
        row["prev_hash"] = last_hash
        row["hash"] = compute_hash(last_hash, row)
        event = AuditEvent(**row)
        cursor.execute(sql, [f.get_db_prep_save(getattr(event, f.attname), connection) for f in columns])
        event._state.adding, event._state.db = False, connection.alias
        if recording is not None:
            TerminalRecording.objects.create(event=event, data=gzip.compress(recording, 6), size=len(recording))
        cursor.execute("UPDATE audit_chainhead SET last_id = %s, last_hash = %s WHERE id = 1",
                       [row["id"], row["hash"]])
    return event


@dataclass
class VerifyResult:
    ok: bool
    records: int
    broken_id: int | None = None
    message: str = ""
    head_id: int = 0
    head_hash: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.records} records, head #{self.head_id} {self.head_hash}"
        return f"audit chain BROKEN at record #{self.broken_id}: {self.message}"


VERIFY_VALUES = (*HASHED_FIELDS, "prev_hash", "hash")


def _rows(batch: int = 5000) -> Iterator[dict]:
    last = -1
    while True:
        chunk = list(AuditEvent.objects.filter(id__gt=last).order_by("id").values(*VERIFY_VALUES)[:batch])
        if not chunk:
            return
        yield from chunk
        last = chunk[-1]["id"]


def verify() -> VerifyResult:
    """Walk the chain from its anchor; name the first record that is changed or missing."""
    head = ChainHead.objects.filter(pk=1).first() or ChainHead()
    expected_id, expected_prev = head.anchor_id, head.anchor_hash
    count = 0
    recordings = _recording_hashes()

    def broken(record_id, message):
        return VerifyResult(False, count, record_id, message, head.last_id, head.last_hash)

    for row in _rows():
        if row["id"] != expected_id + 1:
            missing = expected_id + 1
            more = f" (and up to #{row['id'] - 1})" if row["id"] - 1 > missing else ""
            return broken(missing, f"record #{missing}{more} is missing: deleted")
        if row["prev_hash"] != expected_prev:
            return broken(row["id"], f"record #{row['id']} does not follow #{expected_id}: its previous "
                                     "hash differs (a record was replaced)")
        if compute_hash(row["prev_hash"], row) != row["hash"]:
            return broken(row["id"], f"record #{row['id']} was changed: its content no longer matches its hash")
        wanted = (row["details"] or {}).get("recording", {}).get("sha256") if isinstance(
            (row["details"] or {}).get("recording"), dict) else None
        if wanted and recordings.get(row["id"]) != wanted:
            return broken(row["id"], f"the terminal recording of record #{row['id']} was changed or removed")
        expected_id, expected_prev = row["id"], row["hash"]
        count += 1
    if expected_id != head.last_id or expected_prev != head.last_hash:
        if expected_id < head.last_id:
            return broken(expected_id + 1, f"records #{expected_id + 1} to #{head.last_id} are missing: deleted")
        return broken(expected_id, f"the chain ends at #{expected_id}, not at the head #{head.last_id}")
    return VerifyResult(True, count, None, "", head.last_id, head.last_hash)


def _recording_hashes() -> dict[int, str]:
    hashes = {}
    for event_id, data in TerminalRecording.objects.values_list("event_id", "data").iterator(chunk_size=100):
        try:
            hashes[event_id] = hashlib.sha256(gzip.decompress(bytes(data))).hexdigest()
        except (OSError, EOFError):
            hashes[event_id] = "unreadable"
    return hashes


def archive_line(row: dict) -> str:
    """One archived record: its hashed content plus both hashes."""
    return canonical_json({**content_of(row), "prev_hash": row["prev_hash"], "hash": row["hash"]})


def verify_archive_lines(lines, start_hash: str = GENESIS) -> VerifyResult:
    """Check an archive's records chain from ``start_hash``; returns the last hash as head."""
    prev, count, last_id = start_hash, 0, 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        record = json.loads(line)
        if record.get("type") == "archive":
            prev = record.get("anchor_hash", prev)
            continue
        record["time"] = dt.datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
        if record["prev_hash"] != prev or compute_hash(prev, record) != record["hash"]:
            return VerifyResult(False, count, record["id"], f"archived record #{record['id']} does not verify",
                                last_id, prev)
        prev, last_id, count = record["hash"], record["id"], count + 1
    return VerifyResult(True, count, None, "", last_id, prev)
