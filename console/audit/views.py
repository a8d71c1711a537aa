"""Audit log pages: the list with filters, one event, exports, session playback."""

from __future__ import annotations

import csv
import gzip
import io
import json

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from console import audit
from console.audit.chain import canonical_time
from console.audit.models import ChainCheck, ChainHead, TerminalRecording
from console.audit.queries import FilterForm, apply_filters, seek, visible_events
from console.core.models import Environment
from console.operations.models import Operation

EXPORT_FIELDS = ("id", "time", "actor_name", "source_ip", "user_agent", "environment_name", "action",
                 "target_type", "target_id", "target_name", "outcome", "error", "request_id", "operation_id",
                 "details", "prev_hash", "hash")
EXPORT_CHUNK = 2000
KNOWN_ACTIONS = (
    "auth", "auth.sign_in", "auth.sign_out", "auth.lockout", "auth.two_factor",
    "image", "image.pull", "image.push", "image.tag", "image.remove", "image.prune", "image.import", "image.export",
    "container", "container.create", "container.start", "container.stop", "container.remove",
    "container.terminal", "registry", "registry.create", "registry.update", "registry.delete",
    "user", "team", "role", "role.assign", "role.unassign", "audit", "audit.export", "audit.retention",
    "settings", "settings.change", "http",
)


def _filtered(request):
    events, allowed = visible_events(request.user)
    environments = allowed if allowed is not None else list(Environment.objects.order_by("name"))
    from console.accounts.models import Team

    form = FilterForm(request.GET or None, environments=environments, teams=Team.objects.order_by("name"))
    data = {}
    if form.is_bound:
        form.is_valid()
        data = {key: value for key, value in form.cleaned_data.items() if value not in (None, "")}
    return apply_filters(events, data), form, data


def _every(seconds: float) -> str:
    if seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return "hour" if hours == 1 else f"{hours} hours"
    return f"{int(seconds // 60)} minutes" if seconds >= 60 else f"{int(seconds)} seconds"


def _operation_states(events) -> dict:
    ids = {event.operation_id for event in events if event.operation_id}
    return dict(Operation.objects.filter(pk__in=ids).values_list("pk", "state")) if ids else {}


def audit_list(request):
    events, form, data = _filtered(request)
    page = seek(events, before=request.GET.get("before", ""), after=request.GET.get("after", ""))
    states = _operation_states(page.events)
    for event in page.events:
        event.operation_state = states.get(event.operation_id, "")
    context = {
        "page": page, "form": form, "filtered": bool(data),
        "check": ChainCheck.objects.order_by("-checked_at").first(),
        "can_verify": request.user.is_superuser,
        "verify_every": _every(settings.BERTH_AUDIT_VERIFY_SECONDS),
        "users": get_user_model()._default_manager.order_by("username").values_list("username", flat=True)[:500],
        "actions": KNOWN_ACTIONS,
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "audit-rows":
        return render(request, "audit/_rows.html", context)
    return render(request, "audit/list.html", context)


def _visible_event(request, pk):
    events, _ = visible_events(request.user)
    return get_object_or_404(events.select_related("environment"), pk=pk)


def audit_detail(request, pk):
    event = _visible_event(request, pk)
    operation = Operation.objects.filter(pk=event.operation_id).first() if event.operation_id else None
    related = []
    if event.request_id:
        events, _ = visible_events(request.user)
        related = list(events.filter(request_id=event.request_id).exclude(pk=event.pk).order_by("id")[:20])
    context = {
        "event": event, "operation": operation, "related": related,
        "details_json": json.dumps(event.details, indent=2, sort_keys=True, ensure_ascii=False),
        "has_recording": TerminalRecording.objects.filter(event_id=event.pk).exists(),
        "canonical_time": canonical_time(event.time),
    }
    return render(request, "audit/detail.html", context)


def _recording_text(event) -> str:
    recording = TerminalRecording.objects.filter(event_id=event.pk).first()
    if recording is None:
        raise Http404("This event has no recording.")
    return gzip.decompress(bytes(recording.data)).decode("utf-8", errors="replace")


def audit_recording(request, pk):
    """The asciicast v2 file itself (for the player, or to download and play with asciinema)."""
    event = _visible_event(request, pk)
    response = HttpResponse(_recording_text(event), content_type="application/x-asciicast; charset=utf-8")
    if request.GET.get("download"):
        response["Content-Disposition"] = f'attachment; filename="berth-session-{event.pk}.cast"'
    return response


def audit_play(request, pk):
    event = _visible_event(request, pk)
    if not TerminalRecording.objects.filter(event_id=event.pk).exists():
        raise Http404("This event has no recording.")
    return render(request, "audit/play.html", {"event": event})


@require_POST
def audit_verify(request):
    """Queue a verify now (administrators); the page shows its result when it is done."""
    if not request.user.is_superuser:
        raise PermissionDenied("Only administrators may start a verify.")
    from console.audit.tasks import verify_chain

    verify_chain.delay()
    messages.success(request, "Verifying the audit chain; the result appears here when it is done.")
    return redirect("audit")


def _export_row(event) -> dict:
    return {
        "id": event.pk, "time": canonical_time(event.time), "actor_name": event.actor_name,
        "source_ip": event.source_ip or "", "user_agent": event.user_agent,
        "environment_name": event.environment_name, "action": event.action, "target_type": event.target_type,
        "target_id": event.target_id, "target_name": event.target_name, "outcome": event.outcome,
        "error": event.error, "request_id": event.request_id,
        "operation_id": str(event.operation_id) if event.operation_id else "",
        "details": event.details, "prev_hash": event.prev_hash, "hash": event.hash,
    }


def _csv_safe(value) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)
    # A cell that starts like a formula is text, not a formula, in a spreadsheet.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _chunks(events, last_id: int):
    """The export, newest first, in seek-paginated chunks (constant memory)."""
    events = events.filter(id__lte=last_id).order_by("-time", "-id")
    cursor = None
    while True:
        page = events
        if cursor is not None:
            page = page.filter(time__lte=cursor[0]).exclude(time=cursor[0], id__gte=cursor[1])
        rows = list(page[:EXPORT_CHUNK])
        if not rows:
            return
        yield rows
        cursor = (rows[-1].time, rows[-1].pk)


def _encode(fmt: str, rows) -> str:
    if fmt == "jsonl":
        return "".join(json.dumps(_export_row(e), sort_keys=True, ensure_ascii=False) + "\n" for e in rows)
    out = io.StringIO()
    writer = csv.writer(out)
    for event in rows:
        row = _export_row(event)
        writer.writerow([_csv_safe(row[field]) for field in EXPORT_FIELDS])
    return out.getvalue()


def _header(fmt: str) -> str:
    if fmt == "jsonl":
        return ""
    out = io.StringIO()
    csv.writer(out).writerow(EXPORT_FIELDS)
    return out.getvalue()


def audit_export(request, fmt: str):
    events, form, data = _filtered(request)
    head = ChainHead.objects.filter(pk=1).values_list("last_id", flat=True).first() or 0
    audit.record(user=request.user, action="audit.export", target_type="audit", target_name=fmt,
                 details={"format": fmt, "filters": {k: str(v) for k, v in data.items()}, "up_to_id": head})

    if isinstance(request, ASGIRequest):
        async def content():
            yield _header(fmt)
            chunks = _chunks(events, head)
            while True:
                rows = await sync_to_async(next, thread_sensitive=True)(chunks, None)
                if rows is None:
                    return
                yield _encode(fmt, rows)
    else:
        def content():
            yield _header(fmt)
            for rows in _chunks(events, head):
                yield _encode(fmt, rows)

    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8"
    response = StreamingHttpResponse(content(), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="berth-audit-{stamp}.{fmt}"'
    return response
