"""What the inventory pages share: the rows a user may see, search and paging, turning a
valid create form into an operation, a list page with its create form, and the engine's
view of an object that may be gone."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models.fields.json import KeyTransform
from django.shortcuts import redirect, render

from console.access.permissions import has_permission, require
from console.core.environments import current_environment
from engine.errors import NotFound

PAGE_SIZE = 50
MAX_LABEL_FILTER = 512


def visible_rows(request, model, area: str):
    """(environment, the ``model`` rows of the current environment the user may see).
    ``area`` names the permissions: "images" checks ``images.view``. Rows outside this
    queryset are a 404 for the views that look them up in it."""
    environment = current_environment(request)
    require(request.user, f"{area}.view", environment)
    return environment, model.objects.restrict(request.user, f"{area}.view", environment)


def search_page(request, rows, *order_by):
    """(query, page): rows whose ``search_text`` holds the ``q`` parameter, 50 to a page."""
    query = request.GET.get("q", "").strip()
    if query:
        rows = rows.filter(search_text__contains=query.lower())
    return query, Paginator(rows.order_by(*order_by), PAGE_SIZE).get_page(request.GET.get("page"))


def label_filter(rows, text: str):
    """Rows whose ``labels`` have the key (``key``) or the key with that value (``key=value``).

    The key is a label name, never an ORM lookup: ``k__regex=...`` looks for the label named
    ``k__regex`` (a lookup spelt by the user would run their regex in the database, or fail
    with a 500). A text too long matches nothing."""
    key, eq, value = text.partition("=")
    key = key.strip()
    if not key or len(text) > MAX_LABEL_FILTER:
        return rows.none()
    if not eq:
        return rows.filter(labels__has_key=key)
    return rows.alias(label_value=KeyTransform(key, "labels")).filter(label_value=value)


def row_ids(values) -> list[int]:
    """The values that are row ids (ASCII digits, at most 18: one past 2**63 makes the
    database driver fail in an ``__in`` lookup), as ints; others are dropped."""
    return [int(v) for v in values if v.isascii() and v.isdigit() and len(v) <= 18]


def start_from_form(form, start):
    """``start(**form.cleaned_data)`` for a valid form; a service's ValidationError goes back
    on the form, next to its field when it names one. Returns the operation or None."""
    if not form.is_valid():
        return None
    try:
        return start(**form.cleaned_data)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, exc)
    return None


def list_with_create(request, model, area: str, form_class, create):
    """The list page of ``area`` (volumes, networks) with its create form: a valid POST
    goes to ``create(user, environment, **cleaned_data)`` and on to its operation."""
    environment, rows = visible_rows(request, model, area)
    form = form_class(request.POST or None)
    if request.method == "POST":
        require(request.user, f"{area}.create", environment)
        operation = start_from_form(form, lambda **data: create(request.user, environment, **data))
        if operation is not None:
            return redirect("operation_detail", operation.pk)
    query, page = search_page(request, rows, "name")
    context = {"page": page, "query": query, "form": form}
    for action in ("create", "remove", "prune"):
        context[f"can_{action}"] = has_permission(request.user, f"{area}.{action}", environment)
    return render(request, f"{area}/list.html", context, status=400 if form.errors else 200)


def inspect_or_gone(request, environment, area: str, label: str, inspect):
    """``inspect()`` (the engine's view of a mirrored object), or None when the engine no
    longer has it: the mirror is reconciled and the user told (the caller goes back to the
    list)."""
    from console.drivers.base import EngineUnreachable
    from console.inventory.tasks import request_reconcile

    try:
        return inspect()
    except EngineUnreachable as exc:  # not "gone": the mirror stays as it is
        messages.error(request, str(exc))
        return None
    except NotFound:
        request_reconcile(environment, area)  # by a worker: this process may not see the engine
        messages.error(request, f"{label} is no longer on the engine.")
        return None
