"""Which registries a pull may reach, and what a failure tells whom (issue 12): the allow-list
checked in the services and again in the tasks; loopback and private hosts only when listed;
one plain "cannot reach registry X" for non-administrators, whatever listens on the port."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.urls import reverse

from console.access.roles import grant
from console.core.models import Environment
from console.images import services as image_services
from console.operations.models import Operation
from console.operations.runner import run_operation
from console.registries import reach, services
from console.registries.models import Registry
from console.sitesettings import catalog
from tests.support.services import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def local():
    return Environment.objects.get(name="local")


@pytest.fixture
def standard(local):
    user = get_user_model().objects.create_user("sam")
    grant(user, "standard", local)
    return user


@pytest.fixture
def nothing_listed(settings):
    settings.REGISTRY_ALLOWLIST = []


@pytest.fixture
def closed_port():
    with socket.socket() as probe:  # bound, never listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        yield probe.getsockname()[1]


@pytest.fixture
def not_a_registry():
    """An open port that answers HTTP, but not as a registry."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("reference", [
    "127.0.0.1:5000/team/app:1", "localhost:5000/app", "10.0.0.5:5000/app", "192.168.1.20/app",
    "[::1]:5000/app", "169.254.169.254/latest:1", "ghcr.io/someone/app:1",
])
def test_a_host_nobody_allowed_is_refused_before_enqueueing(nothing_listed, standard, local, reference):
    with pytest.raises(ValidationError, match="may not reach registry"):
        image_services.pull(standard, local, reference)
    assert not Operation.objects.exists()


def test_the_pull_page_says_so_next_to_the_field(nothing_listed, client, standard):
    client.force_login(standard)
    response = client.post(reverse("image_pull"), {"reference": "127.0.0.1:5000/team/app:1"})
    assert response.status_code == 400 and "may not reach registry 127.0.0.1:5000" in response.content.decode()
    assert not Operation.objects.exists()


def test_what_is_allowed_by_default_and_by_listing(nothing_listed, settings):
    assert reach.allowed("docker.io") and reach.allowed("registry-1.docker.io")
    assert not reach.allowed("quay.io")
    Registry.objects.create(name="public", host="registry.example.com")
    Registry.objects.create(name="loopback", host="127.0.0.1:5000")
    assert reach.allowed("registry.example.com")  # configured, and not an internal address
    assert not reach.allowed("127.0.0.1:5000")  # configured, but loopback: it must be listed
    settings.REGISTRY_ALLOWLIST = ["127.0.0.1:5000", "*.corp.example", "*"]
    assert reach.allowed("127.0.0.1:5000") and not reach.allowed("127.0.0.1:6000")
    assert reach.allowed("registry.corp.example") and reach.allowed("quay.io")
    assert not reach.allowed("10.1.2.3:5000")  # "*" is any public host, never an internal one
    assert not reach.allowed("[::ffff:127.0.0.1]:5000")


def test_registry_operations_are_refused_for_a_loopback_registry_not_listed(nothing_listed, admin, local):
    registry = Registry.objects.create(name="loopback", host="127.0.0.1:5000")
    for start in (services.test, services.browse):
        with pytest.raises(ValidationError, match="may not reach"):
            start(admin, local, registry)
    assert not Operation.objects.exists()


def test_the_task_checks_again_when_it_runs(settings, standard, local, closed_port):
    settings.REGISTRY_ALLOWLIST = ["127.0.0.1"]
    operation = image_services.pull(standard, local, f"127.0.0.1:{closed_port}/team/app:1")
    settings.REGISTRY_ALLOWLIST = []
    run_operation(str(operation.pk))
    operation.refresh_from_db()
    assert operation.state == "failed" and "may not reach registry" in operation.error


def pull_now(user, local, port) -> Operation:
    operation = image_services.pull(user, local, f"127.0.0.1:{port}/team/app:1")
    run_operation(str(operation.pk))
    operation.refresh_from_db()
    assert operation.state == "failed"
    return operation


def test_non_administrators_cannot_tell_open_from_closed_ports(standard, admin, local, closed_port,
                                                                not_a_registry, caplog):
    closed = pull_now(standard, local, closed_port)
    answering = pull_now(standard, local, not_a_registry)
    assert closed.error == f"cannot reach registry 127.0.0.1:{closed_port}"
    assert answering.error == f"cannot reach registry 127.0.0.1:{not_a_registry}"
    for operation in (closed, answering):
        assert str(operation.progress).count("refused") == 0
    assert "refused" in caplog.text  # the details, for whoever reads the server's log
    # Administrators read the engine's own words.
    assert "connection refused" in pull_now(admin, local, closed_port).error
    assert "HTTP" in pull_now(admin, local, not_a_registry).error


def test_administrators_set_the_list_on_the_settings_page(admin_client):
    response = admin_client.post(reverse("settings"), {
        **{s.key: s.shown(s.default()) for s in catalog.SETTINGS.values() if s.kind == catalog.INT},
        "audit_record_terminals": "on", "registry_allowlist": "127.0.0.1:5000\n*.corp.example, 10.0.0.5"})
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert catalog.get("registry_allowlist") == ["127.0.0.1:5000", "*.corp.example", "10.0.0.5"]
    assert reach.allowed("127.0.0.1:5000") and reach.allowed("10.0.0.5:443")
    page = admin_client.get(reverse("settings")).content.decode()
    assert "Registries Berth may reach" in page and "*.corp.example" in page
    response = admin_client.post(reverse("settings"), {"registry_allowlist": "http://evil.example/x"})
    assert response.status_code == 400 and "Not a registry host" in response.content.decode()
    assert catalog.get("registry_allowlist") == ["127.0.0.1:5000", "*.corp.example", "10.0.0.5"]


def test_the_permission_is_checked_before_the_host(nothing_listed, local):
    from django.core.exceptions import PermissionDenied

    viewer = get_user_model().objects.create_user("viewer")
    grant(viewer, "read-only", local)  # no images.pull: whether a host is allowed is none of theirs
    with pytest.raises(PermissionDenied):
        image_services.pull(viewer, local, "10.0.0.5:5000/app")
