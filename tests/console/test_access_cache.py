"""``Model.objects.restrict`` and the per-request cache of what a user holds."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from console.access.cache import AccessCacheMiddleware
from console.access.permissions import has_permission
from console.access.roles import grant
from console.core.models import Environment
from console.inventory.models import Container
from console.operations.models import Operation

pytestmark = pytest.mark.django_db


def assignment_reads(queries) -> int:
    return sum('FROM "access_assignment"' in q["sql"] for q in queries)


def in_a_request(function):
    """Run ``function`` as a view behind the cache middleware, as a request would."""
    return AccessCacheMiddleware(lambda request: function())(None)


def test_a_request_reads_the_users_roles_once(django_user_model):
    local = Environment.local()
    alice = django_user_model.objects.create_user("alice")
    grant(alice, "helpdesk", local)

    def page():
        with CaptureQueriesContext(connection) as queries:
            answers = [has_permission(alice, "containers.view", local) for _ in range(5)]
            list(Container.objects.restrict(alice, "containers.view", local))
            list(Operation.objects.restrict(alice, "operations.view", local))
        return answers, assignment_reads(queries.captured_queries)

    answers, reads = in_a_request(page)
    assert answers == [True] * 5 and reads == 1
    # outside a request (a task, a socket): read each time
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            has_permission(alice, "containers.view", local)
    assert assignment_reads(queries.captured_queries) == 3


def test_a_change_within_the_request_is_seen(django_user_model):
    local = Environment.local()
    alice = django_user_model.objects.create_user("alice")

    def page():
        before = has_permission(alice, "containers.view", local)
        assignment = grant(alice, "helpdesk", local)
        granted = has_permission(alice, "containers.view", local)
        assignment.delete()
        return before, granted, has_permission(alice, "containers.view", local)

    assert in_a_request(page) == (False, True, False)


def test_restrict_is_a_queryset_method_that_keeps_the_filter(django_user_model):
    local = Environment.local()
    other = Environment.objects.create(name="zz-other")
    alice = django_user_model.objects.create_user("alice")
    grant(alice, "helpdesk", local)
    here = Container.objects.create(environment=local, container_id="a" * 64, name="a", state="running")
    Container.objects.create(environment=local, container_id="b" * 64, name="b", state="exited")
    Container.objects.create(environment=other, container_id="c" * 64, name="c", state="running")
    rows = Container.objects.filter(state="running").restrict(alice, "containers.view", local)
    assert list(rows) == [here]  # this environment's, and still only the running ones
    assert not Container.objects.restrict(alice, "containers.view", other).exists()  # no role there
    assert not Container.objects.restrict(alice, "no.such.permission", local).exists()  # fail closed
