"""Pages of the live app: log download, merged logs of several containers, engine events."""

from __future__ import annotations

import json

from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.text import slugify

from console import audit
from console.access.permissions import require
from console.core import sockettokens
from console.core.environments import current_environment
from console.drivers import driver_for
from console.inventory.models import Container
from console.web.pages import label_filter, row_ids
from engine.errors import InvalidArgument

COLOURS = ("#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2", "#dc2626", "#65a30d")
MAX_MERGED = 12


def _visible(request, permission):
    environment = current_environment(request)
    require(request.user, "containers.view", environment)
    require(request.user, permission, environment)
    return environment, Container.objects.restrict(request.user, permission, environment)


def logs_download(request, pk):
    environment, containers = _visible(request, "containers.logs")
    container = get_object_or_404(containers, pk=pk)
    timestamps = request.GET.get("timestamps") == "1"
    stdout = request.GET.get("stdout", "1") == "1"
    stderr = request.GET.get("stderr", "1") == "1"
    since = request.GET.get("since", "").strip() or None
    stream = driver_for(environment).log_stream(container.container_id)
    try:
        start = stream.start_cursor(since)
    except InvalidArgument as exc:
        return render(request, "live/error.html", {"message": str(exc)}, status=400)
    audit.record(user=request.user, action="container.logs.download", environment=environment,
                 target_type="container", target_id=container.container_id, target_name=container.name,
                 request=request, details={"since": since or "", "stdout": stdout, "stderr": stderr})

    def lines():
        follower = stream.follower(start, stdout=stdout, stderr=stderr) if start else None
        try:
            while follower is not None and (batch := follower.poll()) is not None:
                out = []
                for raw in batch.data.split(b"\n"):
                    if not raw:
                        continue
                    try:
                        record = json.loads(raw)
                    except ValueError:
                        continue
                    text = record.get("log", "")
                    if timestamps:
                        text = f"{record.get('time', '')} {text}"
                    out.append(text)
                yield "".join(out).encode()
        finally:
            if follower is not None:
                follower.close()

    response = StreamingHttpResponse(lines(), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{slugify(container.name) or "container"}.log"'
    return response


def merged_logs(request):
    environment, containers = _visible(request, "containers.logs")
    selected = containers.filter(pk__in=row_ids(request.GET.getlist("container")))
    label = request.GET.get("label", "").strip()
    if label:
        selected = label_filter(containers, label)
    selected = list(selected.order_by("name")[:MAX_MERGED])
    # the colour by index: the page names it with a class (src-N, static/css/live.css), not a style attribute
    sources = [{"pk": c.pk, "name": c.name, "colour": COLOURS[i % len(COLOURS)], "index": i % len(COLOURS)}
               for i, c in enumerate(selected)]
    return render(request, "live/merged_logs.html", {
        "sources": sources, "label": label, "containers": containers.order_by("name")[:500],
        "selected": {c.pk for c in selected}, "max_merged": MAX_MERGED, "sources_json": json.dumps(sources)})


def events(request):
    environment = current_environment(request)
    require(request.user, "containers.view", environment)
    return render(request, "live/events.html", {})


def terminal_token(request, pk):
    """A fresh terminal token for a page whose own is about to expire (see
    console.core.sockettokens). Another origin cannot read this answer."""
    environment = current_environment(request)
    require(request.user, "containers.view", environment)
    require(request.user, "containers.terminal", environment)
    container = get_object_or_404(Container.objects.restrict(request.user, "containers.terminal", environment),
                                  pk=pk)
    response = JsonResponse(sockettokens.issue(request.user, request.session.session_key,
                                               sockettokens.purpose_for("terminal", container.pk)))
    response["Cache-Control"] = "no-store"
    return response
