"""What the inventory pages share: the rows a user may see, search and paging, and
turning a valid create form into an operation."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.paginator import Paginator

from console.access.permissions import require, restrict
from console.core.environments import current_environment

PAGE_SIZE = 50


def visible_rows(request, model, area: str):
    """(environment, the ``model`` rows of the current environment the user may see).
    ``area`` names the permissions: "images" checks ``images.view``. Rows outside this
    queryset are a 404 for the views that look them up in it."""
    environment = current_environment(request)
    require(request.user, f"{area}.view", environment)
    return environment, restrict(model.objects.all(), request.user, f"{area}.view", environment)


def search_page(request, rows, *order_by):
    """(query, page): rows whose ``search_text`` holds the ``q`` parameter, 50 to a page."""
    query = request.GET.get("q", "").strip()
    if query:
        rows = rows.filter(search_text__contains=query.lower())
    return query, Paginator(rows.order_by(*order_by), PAGE_SIZE).get_page(request.GET.get("page"))


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
