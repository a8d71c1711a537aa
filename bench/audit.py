"""Benchmark: the cost of recording one audit event, and the audit page at a million events.

Run it on its own (no Redis, no engine needed)::

    .venv/bin/python bench/audit.py [--events 1000000] [--records 3000] [--repeat 15] [--verify]

It makes its own data dir and SQLite database (WAL, as the console runs), then:

1. records ``--records`` events one by one through ``console.audit.record`` (the path
   every service takes: the chain head's lock, canonical JSON, SHA-256, insert) and
   reports the median and p95 per event;
2. bulk-inserts ``--events`` events (default 300,000: see DEFAULT_EVENTS) spread over a year (realistic users, actions,
   outcomes, environments), hashed into one chain in Python (the same ``chain``
   code) and written with executemany in one transaction, indexes built after;
3. times the audit page (Django's test Client, whole request: middleware, query,
   template) with several filter sets, ``--repeat`` times each, and reports each
   median and the median over the filtered pages;
4. with ``--verify``, times ``manage.py audit verify`` over the whole chain.

Targets: under 2 ms per event, under 200 ms per page. The last line printed is one
JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# A million rows take longer than a minute to insert and index on the 2-CPU machines here
# (about 40 s for the rows and B-tree indexes, as long again for the free-text trigram index),
# so the default is smaller; the JSON says how many events the pages were timed at.
DEFAULT_EVENTS = 300_000
TARGET_RECORD_MS = 2.0
TARGET_PAGE_MS = 200.0
USERS = [f"user{i:02d}" for i in range(40)] + ["admin", "alice", "bob", "carol", "ci-bot"]
ACTIONS = (["image.pull"] * 30 + ["container.start"] * 20 + ["container.stop"] * 15 + ["auth.sign_in"] * 15
           + ["image.tag", "image.push", "image.remove", "image.prune", "container.terminal", "container.remove",
              "registry.update", "auth.sign_out", "role.assign", "user.update"] * 2)
OUTCOMES = ["succeeded"] * 80 + ["queued"] * 12 + ["failed"] * 6 + ["denied"] * 2
TARGETS = [f"team/app{i}:{v}" for i in range(200) for v in ("latest", "1.0", "2.3")]


def setup_django(data_dir: str) -> None:
    os.environ["BERTH_DATA_DIR"] = data_dir
    os.environ["DJANGO_SETTINGS_MODULE"] = "console.settings"
    os.environ["BERTH_IN_MEMORY_CHANNELS"] = "1"
    os.environ["BERTH_ALLOWED_HOSTS"] = "testserver"
    os.environ.setdefault("BERTH_LOG_LEVEL", "WARNING")
    os.environ.pop("BERTH_DATABASE_URL", None)
    import django

    django.setup()
    import logging

    logging.getLogger("berth.audit").setLevel(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def bench_record(n: int) -> dict:
    from django.contrib.auth import get_user_model

    from console import audit
    from console.core.models import Environment

    user = get_user_model().objects.create_user("bench", password="x" * 12)
    environment = Environment.objects.get(name="local")
    for i in range(50):  # warm up
        audit.record(user=user, action="bench.warmup", environment=environment, details={"i": i})
    times = []
    for i in range(n):
        began = time.perf_counter()
        audit.record(user=user, action="image.pull", environment=environment, target_type="image",
                     target_name=f"team/app{i % 50}:latest", outcome="queued",
                     details={"reference": f"team/app{i % 50}:latest", "registry_id": 3, "platform": None,
                              "password": "hunter2"})
        times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return {"events": n, "median_ms": round(statistics.median(times), 3),
            "p95_ms": round(times[int(len(times) * 0.95)], 3), "max_ms": round(times[-1], 3)}


def _search_trigger() -> str:
    from importlib import import_module

    return import_module("console.audit.migrations.0003_search_index").SQLITE[1]



def bulk_insert(n: int, seed: int = 7) -> dict:
    """n events over the last 365 days, hashed into the chain after what is already there.

    The canonical JSON of each row is put together from pre-encoded pieces (the values
    come from small pools), which is several times faster than ``chain.content_of`` +
    ``json.dumps``; every 1000th row is checked against ``chain.compute_hash`` so the
    shortcut cannot drift from the real thing (and ``--verify`` checks them all)."""
    import datetime as dt
    import hashlib

    from django.db import connection, transaction
    from django.utils import timezone

    from console.audit import chain
    from console.audit.models import ChainHead
    from console.core.models import Environment

    search_trigger = _search_trigger()
    rng = random.Random(seed)
    environments = [Environment.objects.get(name="local")] + [
        Environment.objects.get_or_create(name=name)[0] for name in ("staging", "production")]
    head = ChainHead.objects.get(pk=1)
    start = timezone.now() - dt.timedelta(days=365)
    step = dt.timedelta(days=365) / max(n, 1)
    t0 = time.perf_counter()
    columns = ("id", "time", "actor_id", "actor_name", "source_ip", "user_agent", "environment_id",
               "environment_name", "action", "target_type", "target_id", "target_name", "outcome", "error",
               "request_id", "operation_id", "details", "search_text", "prev_hash", "hash")
    sql = f"INSERT INTO audit_auditevent ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
    enc = {}

    def j(text):
        if text not in enc:
            enc[text] = json.dumps(text, ensure_ascii=False)
        return enc[text]

    agent = "Mozilla/5.0 (X11; Linux x86_64) Chrome/131"
    failure = "image is in use by container web"
    prev_id, prev_hash = head.last_id, head.last_hash
    batch, checked = [], 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_auditevent' "
                       "AND sql IS NOT NULL")
        indexes = cursor.fetchall()
    with connection.cursor() as cursor:  # room to sort in memory while the indexes are built
        cursor.execute("PRAGMA cache_size = -400000")
        cursor.execute("PRAGMA temp_store = MEMORY")
    with transaction.atomic(), connection.cursor() as cursor:
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("DROP TRIGGER audit_search_insert")  # the search index is rebuilt at the end
        for i in range(n):
            environment = environments[rng.randrange(3)]
            action = ACTIONS[rng.randrange(len(ACTIONS))]
            outcome = OUTCOMES[rng.randrange(len(OUTCOMES))]
            actor = USERS[rng.randrange(len(USERS))]
            target = TARGETS[rng.randrange(len(TARGETS))]
            when = start + step * i
            stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            ip = f"10.0.{i % 250}.{i % 199 + 1}"
            target_type = action.split(".", 1)[0]
            error = failure if outcome == "failed" else ""
            request_id = f"{rng.getrandbits(128):032x}"
            prev_id += 1
            details = f'{{"n":{i},"reference":{j(target)}}}'
            canonical = (
                f'{{"action":{j(action)},"actor_name":{j(actor)},"details":{details},'
                f'"environment_name":{j(environment.name)},"error":{j(error)},"id":{prev_id},'
                f'"operation_id":null,"outcome":{j(outcome)},"request_id":"{request_id}","source_ip":"{ip}",'
                f'"target_id":"{i:012x}","target_name":{j(target)},"target_type":{j(target_type)},'
                f'"time":"{stamp}","user_agent":{j(agent)}}}')
            digest = hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()
            if i % 1000 == 0:
                row = {"id": prev_id, "time": when, "actor_name": actor, "source_ip": ip, "user_agent": agent,
                       "environment_name": environment.name, "action": action, "target_type": target_type,
                       "target_id": f"{i:012x}", "target_name": target, "outcome": outcome, "error": error,
                       "request_id": request_id, "operation_id": None,
                       "details": {"reference": target, "n": i}}
                assert chain.compute_hash(prev_hash, row) == digest, f"bench canonical JSON drifted at {i}"
                checked += 1
            search = " ".join(part for part in (actor, action, target_type, f"{i:012x}", target, environment.name,
                                                error, ip, f'{{"reference": {j(target)}, "n": {i}}}') if part)
            batch.append((prev_id, f"{stamp[:10]} {stamp[11:26]}", None, actor, ip, agent, environment.pk,
                          environment.name, action, target_type, f"{i:012x}", target, outcome, error, request_id,
                          None, details, search.lower(), prev_hash, digest))
            prev_hash = digest
            if len(batch) == 50_000:
                cursor.executemany(sql, batch)
                batch.clear()
        if batch:
            cursor.executemany(sql, batch)
        insert_done = time.perf_counter()
        for _, create in indexes:
            cursor.execute(create)
        search_began = time.perf_counter()
        cursor.execute("INSERT INTO audit_search (audit_search) VALUES ('rebuild')")  # the free-text index
        search_seconds = time.perf_counter() - search_began
        ChainHead.objects.filter(pk=1).update(last_id=prev_id, last_hash=prev_hash)
        cursor.execute(search_trigger)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    finished = time.perf_counter()
    return {"events": n, "seconds": round(finished - t0, 2), "rows_seconds": round(insert_done - t0, 2),
            "index_seconds": round(finished - insert_done - search_seconds, 2),
            "search_index_seconds": round(search_seconds, 2), "hashes_checked": checked}


def bench_pages(repeat: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from console.audit.models import AuditEvent
    from console.core.models import Environment

    admin = get_user_model().objects.create_superuser("bench-admin", "", "x" * 12)
    client = Client()
    client.force_login(admin)
    staging = Environment.objects.get(name="staging").pk
    import datetime as dt

    middle = AuditEvent.objects.order_by("id").values_list("time", flat=True)[AuditEvent.objects.count() // 2]
    month = ((middle - dt.timedelta(days=15)).date().isoformat(), (middle + dt.timedelta(days=15)).date().isoformat())
    cases = {
        "no filter": {},
        "user": {"user": "alice"},
        "action prefix + outcome": {"action": "image", "outcome": "failed"},
        "environment + one month": {"environment": staging, "since": month[0], "until": month[1]},
        "user + action + outcome": {"user": "bob", "action": "container", "outcome": "succeeded"},
        "target prefix": {"target": "team/app17:"},
        "rare outcome (denied)": {"outcome": "denied"},
        "free text": {"q": "team/app123:2.3"},
        "free text, no match": {"q": "no such thing"},
    }
    # A page deep in the list: the cursor half-way down.
    mid = AuditEvent.objects.order_by("-time", "-id").only("time", "id")[AuditEvent.objects.count() // 2]
    from console.audit.queries import encode_cursor

    cases["deep page (half-way, seek)"] = {"before": encode_cursor(mid)}
    results = {}
    for name, params in cases.items():
        times = []
        for _ in range(repeat):
            began = time.perf_counter()
            response = client.get("/audit/", params)
            times.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, (name, response.status_code)
        rows = response.content.decode().count("<tr data-event=")
        results[name] = {"median_ms": round(statistics.median(times), 1), "rows": rows}
    return results


def bench_verify() -> dict:
    from console.audit import chain

    began = time.perf_counter()
    result = chain.verify()
    return {"ok": result.ok, "records": result.records, "seconds": round(time.perf_counter() - began, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS,
                        help=f"events in the table for the page timings (default {DEFAULT_EVENTS:,}; "
                             "1000000 takes a few minutes here, mostly building the indexes)")
    parser.add_argument("--records", type=int, default=3000, help="events recorded one by one")
    parser.add_argument("--repeat", type=int, default=15, help="requests per filter set")
    parser.add_argument("--verify", action="store_true", help="also time a full verify of the chain")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (printed)")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="berth-bench-audit-")
    setup_django(data_dir)
    began = time.perf_counter()
    record = bench_record(args.records)
    print(f"record one event:  median {record['median_ms']:.3f} ms  p95 {record['p95_ms']:.3f} ms "
          f"(target < {TARGET_RECORD_MS} ms)  over {record['events']} events")
    bulk = bulk_insert(args.events)
    print(f"bulk insert:       {bulk['events']} events in {bulk['seconds']} s "
          f"(rows {bulk['rows_seconds']} s, indexes {bulk['index_seconds']} s, "
          f"free-text index {bulk['search_index_seconds']} s)")
    pages = bench_pages(args.repeat)
    filtered = [v["median_ms"] for k, v in pages.items() if k != "no filter"]
    page_median = round(statistics.median(filtered), 1)
    print(f"audit page at {args.events + args.records} events, median of {args.repeat} requests "
          f"(target < {TARGET_PAGE_MS:.0f} ms):")
    for name, value in pages.items():
        flag = "" if value["median_ms"] < TARGET_PAGE_MS else "  over target"
        print(f"  {name:34s} {value['median_ms']:8.1f} ms  ({value['rows']} rows){flag}")
    print(f"  {'median over the filtered pages':34s} {page_median:8.1f} ms")
    verify = bench_verify() if args.verify else None
    if verify:
        print(f"verify:            {verify['records']} records in {verify['seconds']} s, ok={verify['ok']}")
    total = round(time.perf_counter() - began, 1)
    print(f"total {total} s; data dir {data_dir}{'' if args.keep else ' (removed)'}")
    summary = {
        "record_median_ms": record["median_ms"], "record_p95_ms": record["p95_ms"],
        "record_target_ms": TARGET_RECORD_MS, "record_ok": record["median_ms"] < TARGET_RECORD_MS,
        "events_in_table": args.events + args.records + 50, "million": args.events >= 1_000_000,
        "bulk_insert_seconds": bulk["seconds"],
        "page_median_ms": page_median, "page_target_ms": TARGET_PAGE_MS,
        "page_ok": page_median < TARGET_PAGE_MS,
        "pages_ms": {name: value["median_ms"] for name, value in pages.items()},
        "verify": verify, "seconds": total,
    }
    if not args.keep:
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
