"""The audit log's store: record, redact, the hash chain, the append-only triggers,
verify naming the first broken record, retention with archives, terminal recordings."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory, override_settings
from django.utils import timezone

from console import audit
from console.audit import chain, retention
from console.audit.context import RequestContextMiddleware, client_ip
from console.audit.models import GENESIS, AuditEvent, ChainCheck, ChainHead, TerminalRecording
from console.core.models import Environment

pytestmark = pytest.mark.django_db


@pytest.fixture
def local():
    return Environment.objects.get(name="local")


def some_events(user, environment, n=5):
    return [audit.record(user=user, action="image.pull", environment=environment, target_type="image",
                         target_name=f"busybox:{i}", details={"n": i}) for i in range(n)]


def drop_triggers(recordings_only=False):
    """What someone with the database's password could do; verify must still notice."""
    if connection.vendor == "postgresql":
        names = [("audit_recording_guard", "audit_terminalrecording")]
        if not recordings_only:
            names.append(("audit_event_guard", "audit_auditevent"))
        statements = [f"DROP TRIGGER {name} ON {table}" for name, table in names]
    else:
        names = ["audit_recording_no_update", "audit_recording_no_delete"]
        if not recordings_only:
            names += ["audit_event_no_update", "audit_event_only_set_null", "audit_event_no_delete"]
        statements = [f"DROP TRIGGER {name}" for name in names]
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def test_record_stores_one_event_with_its_fields_and_chains_it(admin, local):
    first = audit.record(user=admin, action="image.pull", environment=local, target_type="image",
                         target_id="sha256:abc", target_name="busybox:latest", details={"platform": None})
    second = audit.record(user=admin, action="image.remove", environment=local, outcome="failed",
                          error="image is in use")
    assert AuditEvent.objects.count() == 2
    event = AuditEvent.objects.get(pk=first.pk)
    assert (event.actor, event.actor_name, event.environment, event.environment_name) == (admin, "admin", local, "local")
    assert (event.action, event.target_type, event.target_id, event.target_name, event.outcome) == (
        "image.pull", "image", "sha256:abc", "busybox:latest", "succeeded")
    assert event.prev_hash == GENESIS and second.prev_hash == event.hash
    assert AuditEvent.objects.get(pk=second.pk).error == "image is in use"
    assert chain.verify().ok
    head = ChainHead.objects.get(pk=1)
    assert (head.last_id, head.last_hash) == (second.pk, second.hash)


def test_unknown_outcomes_are_refused(admin):
    with pytest.raises(ValueError):
        audit.record(user=admin, action="x.y", outcome="maybe")


def test_redact_hides_passwords_tokens_and_env_values_marked_secret():
    details = {
        "username": "alice", "password": "hunter2", "registry_token": "t0k", "secret_set": True,
        "nested": {"api_key": "k", "size": 3},
        "env": ["PORT=80", "DB_PASSWORD=pw"],
        "environment": {"PORT": "80", "AWS_SECRET_ACCESS_KEY": "x"},
        "variables": [{"name": "DSN", "value": "postgres://u:p@h/db", "secret": True},
                      {"name": "MODE", "value": "prod"}],
        "empty_password": "",
    }
    clean = audit.redact(details)
    text = json.dumps(clean)
    for secret in ("hunter2", "t0k", "\"k\"", "DB_PASSWORD=pw", "postgres://", "AWS_SECRET_ACCESS_KEY\": \"x"):
        assert secret not in text
    assert clean["username"] == "alice" and clean["secret_set"] is True and clean["empty_password"] == ""
    assert clean["env"] == ["PORT=80", "DB_PASSWORD=[redacted]"]
    assert clean["variables"][1] == {"name": "MODE", "value": "prod"}
    assert clean["variables"][0]["name"] == "DSN" and clean["variables"][0]["value"] == "[redacted]"
    assert details["password"] == "hunter2"  # a copy: the caller's dict is untouched


def test_record_redacts_even_when_the_caller_forgot(admin):
    event = audit.record(user=admin, action="registry.update", details={"password": "hunter2"})
    assert "hunter2" not in json.dumps(AuditEvent.objects.get(pk=event.pk).details)


def test_the_database_refuses_update_and_delete(admin, local):
    event = some_events(admin, local, 2)[0]
    for sql in ("UPDATE audit_auditevent SET outcome = 'denied' WHERE id = %s",
                "UPDATE audit_auditevent SET actor_id = NULL, action = 'x' WHERE id = %s",
                "DELETE FROM audit_auditevent WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as c:
            c.execute(sql, [event.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(target_name="else")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.count() == 2 and chain.verify().ok


def test_deleting_the_user_or_environment_keeps_their_names_and_the_chain(django_user_model, local):
    bob = django_user_model.objects.create_user("bob", password="x" * 12)
    staging = Environment.objects.create(name="staging")
    event = audit.record(user=bob, action="image.pull", environment=staging)
    bob.delete()
    staging.delete()
    event = AuditEvent.objects.get(pk=event.pk)
    assert (event.actor_id, event.actor_name, event.environment_id, event.environment_name) == (
        None, "bob", None, "staging")
    assert chain.verify().ok
    # SET_NULL is the only change allowed: the key may not point at someone else.
    other = django_user_model.objects.create_user("carol", password="x" * 12)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(actor=other)


def test_verify_names_a_changed_record(admin, local):
    events = some_events(admin, local)
    drop_triggers()
    AuditEvent.objects.filter(pk=events[2].pk).update(target_name="evil:latest")
    result = chain.verify()
    assert not result.ok and result.broken_id == events[2].pk and "changed" in result.message
    out = StringIO()
    with pytest.raises(CommandError, match=f"#{events[2].pk}"):
        call_command("audit", "verify", stdout=out)
    assert f"BROKEN at record #{events[2].pk}" in out.getvalue()
    check = ChainCheck.objects.get()
    assert not check.ok and check.broken_id == events[2].pk


def test_verify_names_a_deleted_record_and_a_deleted_tail(admin, local):
    events = some_events(admin, local)
    drop_triggers()
    AuditEvent.objects.filter(pk=events[1].pk).delete()
    result = chain.verify()
    assert not result.ok and result.broken_id == events[1].pk and "missing" in result.message
    AuditEvent.objects.filter(pk=events[-1].pk).delete()
    AuditEvent.objects.filter(pk__lte=events[1].pk).delete()  # now only the middle remains
    result = chain.verify()
    assert not result.ok and result.broken_id == events[0].pk


def test_verify_finds_a_rehashed_record_by_its_successor(admin, local):
    """Someone who changes a record and recomputes its hash breaks the next link."""
    events = some_events(admin, local)
    drop_triggers()
    row = AuditEvent.objects.filter(pk=events[2].pk).values(*chain.VERIFY_VALUES).get()
    row["target_name"] = "evil:latest"
    AuditEvent.objects.filter(pk=events[2].pk).update(target_name="evil:latest",
                                                       hash=chain.compute_hash(row["prev_hash"], row))
    result = chain.verify()
    assert not result.ok and result.broken_id == events[3].pk


def test_verify_command_passes_on_an_intact_chain(admin, local):
    some_events(admin, local, 3)
    out = StringIO()
    call_command("audit", "verify", stdout=out)
    assert "intact: 3 records" in out.getvalue()
    assert ChainCheck.objects.get().ok


def test_retention_archives_old_records_purges_them_and_the_chain_still_verifies(admin, local, tmp_path):
    events = some_events(admin, local, 6)
    later = timezone.now() + dt.timedelta(days=400)
    with override_settings(BERTH_AUDIT_ARCHIVE_DIR=tmp_path):
        # Everything recorded so far is 400 days old "later": all archived, then purged.
        files = retention.purge_older_than(365, now=later)
        assert len(files) == 1
        assert not AuditEvent.objects.filter(pk__lte=events[-1].pk).exists()
        retained = list(AuditEvent.objects.order_by("id"))
        assert [e.action for e in retained] == ["audit.retention"]  # the purge is itself recorded
        head = ChainHead.objects.get(pk=1)
        assert head.anchor_id == events[-1].pk and head.anchor_hash == events[-1].hash
        assert retained[0].prev_hash == head.anchor_hash
        assert chain.verify().ok
        assert retention.verify_archives().ok
        lines = files[0].read_text().splitlines()
        assert json.loads(lines[0])["type"] == "archive" and len(lines) == 7
        assert json.loads(lines[-1])["hash"] == events[-1].hash
        some_events(admin, local, 2)
        assert chain.verify().ok
        call_command("audit", "verify", "--archives", stdout=StringIO())
        # An archive that was edited no longer verifies.
        tampered = lines[:3] + [lines[3].replace("busybox:2", "evil:2")] + lines[4:]
        files[0].write_text("\n".join(tampered) + "\n")
        assert not retention.verify_archives().ok


def test_retention_keeps_recent_records_and_zero_keeps_all(admin, local, tmp_path):
    some_events(admin, local, 3)
    with override_settings(BERTH_AUDIT_ARCHIVE_DIR=tmp_path):
        assert retention.purge_older_than(365) == []
        assert retention.purge_older_than(0, now=timezone.now() + dt.timedelta(days=9999)) == []
    assert AuditEvent.objects.count() == 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_flush_empties_the_audit_log_on_purpose(admin, local):
    some_events(admin, local, 2)
    call_command("flush", interactive=False, verbosity=0)
    assert not AuditEvent.objects.exists()
    event = audit.record(user=None, actor_name="x", action="auth.sign_in", outcome="failed")
    assert event.pk == 1 and event.prev_hash == GENESIS and chain.verify().ok


def test_client_ip_believes_x_forwarded_for_only_from_a_trusted_proxy():
    meta = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 203.0.113.7, 10.0.0.9"}
    assert client_ip(meta) == "10.0.0.2"
    with override_settings(BERTH_TRUSTED_PROXIES=["10.0.0.0/24"]):
        assert client_ip(meta) == "203.0.113.7"  # the first hop from the right that is not a proxy
        assert client_ip({**meta, "HTTP_X_FORWARDED_FOR": "garbage"}) == "10.0.0.2"
        assert client_ip({"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}) == "192.0.2.1"


def test_events_carry_the_request_id_source_ip_and_user_agent(admin):
    seen = {}

    def view(request):
        seen["event"] = audit.record(user=admin, action="image.prune")
        from django.http import HttpResponse

        return HttpResponse("ok")

    request = RequestFactory().post("/x/", HTTP_USER_AGENT="curl/8", REMOTE_ADDR="192.0.2.5")
    response = RequestContextMiddleware(view)(request)
    event = AuditEvent.objects.get(pk=seen["event"].pk)
    assert event.request_id == response["X-Request-ID"] == request.request_id
    assert (event.source_ip, event.user_agent) == ("192.0.2.5", "curl/8")
    # outside a request (a Celery task): none
    event = audit.record(user=admin, action="image.prune")
    assert (event.request_id, event.source_ip) == ("", None)


def test_lockout_is_recorded_as_a_denied_sign_in(admin):
    event = audit.record_sign_in_lockout(username="mallory", reason="10 failures in 5 minutes",
                                         until=timezone.now() + dt.timedelta(minutes=15))
    event = AuditEvent.objects.get(pk=event.pk)
    assert (event.action, event.outcome, event.actor_name, event.actor_id) == ("auth.lockout", "denied", "mallory", None)
    assert event.details["reason"] == "10 failures in 5 minutes"


def test_terminal_session_is_recorded_with_its_asciicast(admin, local):
    recorder = audit.TerminalRecorder(100, 30, command="/bin/sh")
    recorder.output(b"$ ls\r\n", at=0.5)
    recorder.output("caf\xc3".encode("latin-1"), at=1.0)  # half of "café" in UTF-8...
    recorder.output(b"\xa9\r\n", at=1.1)                  # ...and the other half
    recorder.resize(120, 40, at=1.5)
    recorder.input(b"secret\r", at=1.6)                   # not kept by default
    started = timezone.now() - dt.timedelta(seconds=2)
    event = audit.record_terminal_session(
        user=admin, environment=local, container_id="c0ffee", container_name="web", command=["/bin/sh"],
        run_as="root", started_at=started, ended_at=started + dt.timedelta(seconds=2), recording=recorder,
        exit_code=0)
    event = AuditEvent.objects.get(pk=event.pk)
    assert (event.action, event.target_type, event.target_id, event.target_name) == (
        "container.terminal", "container", "c0ffee", "web")
    assert event.details["command"] == "/bin/sh" and event.details["user"] == "root"
    assert event.details["duration_seconds"] == 2.0 and event.details["exit_code"] == 0
    text = gzip.decompress(bytes(TerminalRecording.objects.get(event_id=event.pk).data)).decode()
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0] == {"version": 2, "width": 100, "height": 30, "timestamp": recorder.timestamp,
                        "command": "/bin/sh"}
    assert lines[1:] == [[0.5, "o", "$ ls\r\n"], [1.0, "o", "caf"], [1.1, "o", "\xe9\r\n"], [1.5, "r", "120x40"]]
    assert event.details["recording"]["bytes"] == len(text.encode())
    assert chain.verify().ok
    # A changed recording is found by verify.
    drop_triggers(recordings_only=True)
    TerminalRecording.objects.filter(event_id=event.pk).update(data=gzip.compress(b"{}\n"))
    result = chain.verify()
    assert not result.ok and result.broken_id == event.pk and "recording" in result.message


def test_recordings_can_be_turned_off(admin, local):
    now = timezone.now()
    with override_settings(BERTH_AUDIT_RECORD_TERMINALS=False):
        event = audit.record_terminal_session(user=admin, environment=local, container_id="c", command="sh",
                                              started_at=now, ended_at=now, recording='{"version": 2}\n')
    assert "recording" not in event.details and not TerminalRecording.objects.exists()


def test_recordings_stop_at_the_size_limit():
    with override_settings(BERTH_AUDIT_RECORDING_MAX_BYTES=200):
        recorder = audit.TerminalRecorder()
        for i in range(50):
            recorder.output(f"line {i}\r\n", at=i / 10)
    assert recorder.truncated and len(recorder.text()) < 400
    assert json.loads(recorder.text().splitlines()[-1])[1] == "m"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_writers_never_fork_the_chain(admin):
    """Threads with their own connections (as workers and daphne have) append at once."""
    import threading

    from django.db import connections

    errors = []

    def write(n):
        try:
            for i in range(15):
                audit.record(user=None, actor_name=f"w{n}", action="test.concurrent", details={"i": i})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert AuditEvent.objects.count() == 60
    assert chain.verify().ok


WRITER = """
import os, sys, django
os.environ["DJANGO_SETTINGS_MODULE"] = "console.settings"
django.setup()
from console import audit
for i in range(int(sys.argv[2])):
    audit.record(user=None, actor_name=sys.argv[1], action="test.concurrent", details={"i": i})
"""


def test_processes_writing_at_once_to_one_database_never_fork_the_chain(tmp_path):
    """Several processes (Celery workers, daphne) on one SQLite file: one unbroken chain."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "BERTH_DATA_DIR": str(tmp_path), "BERTH_LOG_LEVEL": "WARNING"}
    env.pop("BERTH_DATABASE_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], env=env, check=True, timeout=120)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, f"w{n}", "40"], env=env) for n in range(4)]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0, 0]
    out = subprocess.run([sys.executable, "manage.py", "audit", "verify", "--no-store"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "intact: 160 records" in out.stdout, out.stdout + out.stderr


def test_values_are_hashed_as_they_read_back(admin):
    """An IPv4-mapped IPv6 address, an operation id given as hex, over-long fields: the
    stored row must still match its hash."""
    request = RequestFactory().get("/", REMOTE_ADDR="::ffff:192.0.2.1", HTTP_USER_AGENT="x" * 400)
    event = audit.record(user=admin, action="image.pull", operation="0123456789ABCDEF0123456789ABCDEF",
                         target_id="t" * 250, request=request, details={1: ("a", 2.5), "when": timezone.now()})
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.source_ip == "192.0.2.1" and str(stored.operation_id) == "01234567-89ab-cdef-0123-456789abcdef"
    assert len(stored.target_id) == 200 and stored.details["1"] == ["a", 2.5]
    assert chain.verify().ok


def test_websocket_consumers_give_their_scope(admin):
    scope = {"client": ("10.0.0.3", 5555), "headers": [(b"user-agent", b"Mozilla/5.0"),
                                                      (b"x-forwarded-for", b"198.51.100.4")]}
    event = audit.record(user=admin, action="container.terminal", request=audit.info_from_scope(scope))
    assert (event.source_ip, event.user_agent, len(event.request_id)) == ("10.0.0.3", "Mozilla/5.0", 32)
    with override_settings(BERTH_TRUSTED_PROXIES=["10.0.0.3"]):
        assert audit.info_from_scope(scope).source_ip == "198.51.100.4"
