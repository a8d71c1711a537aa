"""Who may read which events, the filters, and seek pagination on (time, id).

Pages never use OFFSET: a page is "the 50 events before (time, id)" (or after, for
"Newer"), which the (filter column, time, id) indexes answer directly at any depth.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django import forms
from django.core.exceptions import PermissionDenied
from django.db.models import Q

from console.access.permissions import environment_ids_for
from console.audit.models import AuditEvent
from console.core.models import Environment

PAGE_SIZE = 50
TOP = "\U0010ffff"  # sorts after every character: [x, x + TOP) is "starts with x"


def visible_events(user):
    """Everything for administrators; otherwise the events of the environments where the user
    holds ``audit.view`` (events outside any environment, such as sign-ins, are for
    administrators only). Nobody else: 403. Returns (events, environments or None for all)."""
    ids = environment_ids_for(user, "audit.view")
    if ids is None:
        return AuditEvent.objects.all(), None
    if not ids:
        raise PermissionDenied("You may not read the audit log.")
    allowed = list(Environment.objects.filter(pk__in=ids).order_by("name"))
    return AuditEvent.objects.filter(environment_id__in=[env.pk for env in allowed]), allowed


class FilterForm(forms.Form):
    since = forms.DateTimeField(required=False, label="From",
                                input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"],
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(required=False, label="To",
                                input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"],
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    user = forms.CharField(required=False, max_length=150,
                           widget=forms.TextInput(attrs={"placeholder": "Username", "list": "audit-users"}))
    team = forms.TypedChoiceField(required=False, coerce=int, empty_value=None,
                                  help_text="Events by the team's current members")
    environment = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    action = forms.CharField(required=False, max_length=80,
                             widget=forms.TextInput(attrs={"placeholder": "e.g. image or image.pull",
                                                           "list": "audit-actions"}))
    outcome = forms.ChoiceField(required=False, choices=[("", "Any outcome"), *AuditEvent.Outcome.choices])
    target = forms.CharField(required=False, max_length=300,
                             widget=forms.TextInput(attrs={"placeholder": "Target name or id"}))
    q = forms.CharField(required=False, max_length=200, label="Search",
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Free text"}))

    def __init__(self, *args, environments=(), teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "Any team")] + [(t.pk, t.name) for t in teams]
        self.fields["environment"].choices = [("", "Any environment")] + [(e.pk, e.name) for e in environments]

    def clean_until(self):
        until = self.cleaned_data.get("until")
        raw = self.data.get("until", "")
        if until is not None and len(raw) == 10:  # a bare date means the whole day
            until = until + dt.timedelta(days=1)
        return until


def apply_filters(events, data: dict):
    """``data`` is a FilterForm's cleaned_data (invalid fields are simply absent)."""
    if data.get("since"):
        events = events.filter(time__gte=data["since"])
    if data.get("until"):
        events = events.filter(time__lt=data["until"])
    if data.get("user"):
        events = events.filter(actor_name=data["user"].strip())
    if data.get("team"):
        from console.accounts.models import Membership

        events = events.filter(actor_id__in=Membership.objects.filter(team_id=data["team"]).values("user_id"))
    if data.get("environment"):
        events = events.filter(environment_id=data["environment"])
    if data.get("action"):
        action = data["action"].strip().rstrip(".*")
        # "image" means image and image.*; an index range, not a LIKE
        events = events.filter(Q(action=action) | Q(action__gte=action + ".", action__lt=action + "/"))
    if data.get("outcome"):
        events = events.filter(outcome=data["outcome"])
    if data.get("target"):
        target = data["target"].strip()
        # An id (an image digest, a user's pk) when some event has it as one; else a name prefix.
        if AuditEvent.objects.filter(target_id=target).exists():
            events = events.filter(target_id=target)
        else:
            events = events.filter(target_name__gte=target, target_name__lt=target + TOP)
    if data.get("q"):
        events = free_text(events, data["q"].strip().lower())
    return events


def free_text(events, text: str):
    """Events whose search text contains ``text``. On SQLite the trigram index answers
    first (its LIKE treats % and _ as wildcards, so the exact test follows)."""
    from django.db import connections
    from django.db.models.expressions import RawSQL

    exact = events.filter(search_text__contains=text)
    if connections[events.db].vendor != "sqlite" or len(text) < 3:
        return exact
    return exact.filter(id__in=RawSQL("SELECT rowid FROM audit_search WHERE search_text LIKE %s", [f"%{text}%"]))


def encode_cursor(event) -> str:
    return f"{int(event.time.timestamp() * 1_000_000)}-{event.pk}"


def decode_cursor(text: str):
    try:
        micros, pk = text.split("-", 1)
        return dt.datetime.fromtimestamp(int(micros) / 1_000_000, tz=dt.UTC), int(pk)
    except (ValueError, OverflowError, OSError):
        return None


@dataclass
class SeekPage:
    events: list
    newer: str | None  # cursor for the page before (newer events), None on the first page
    older: str | None  # cursor for the next page (older events)
    first: bool


def seek(events, *, before: str = "", after: str = "", size: int = PAGE_SIZE) -> SeekPage:
    """The page of ``size`` events older than ``before`` (or newer than ``after``), newest first."""
    if after and (cursor := decode_cursor(after)):
        time, pk = cursor
        rows = list(events.filter(time__gte=time).exclude(time=time, id__lte=pk)
                    .order_by("time", "id")[:size + 1])
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        return SeekPage(rows, encode_cursor(rows[0]) if more_newer and rows else None,
                        encode_cursor(rows[-1]) if rows else None, first=not more_newer)
    rows = events.order_by("-time", "-id")
    cursor = decode_cursor(before) if before else None
    if cursor:
        time, pk = cursor
        rows = rows.filter(time__lte=time).exclude(time=time, id__gte=pk)
    rows = list(rows[:size + 1])
    more_older = len(rows) > size
    rows = rows[:size]
    return SeekPage(rows, encode_cursor(rows[0]) if cursor and rows else None,
                    encode_cursor(rows[-1]) if more_older else None, first=cursor is None)
