"""The containers list links each published port on the host the console was reached at:
the whole link, text and address, on the page and in a row re-rendered for the live socket."""

from __future__ import annotations

import re

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from console.core.models import Environment
from console.inventory.models import Container

pytestmark = pytest.mark.django_db

PORTS = [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 18081, "Type": "tcp"},
         {"PrivatePort": 443, "Type": "tcp"}]  # exposed, not published: no link


@pytest.fixture
def row():
    return Container.objects.create(environment=Environment.local(), container_id="p" * 64, name="web",
                                    state="running", ports=PORTS)


def port_links(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<a href="([^"]*)" target="_blank" rel="noopener">([^<]*)</a>', html)


@pytest.mark.parametrize(("host", "link"), [
    ("127.0.0.1:8000", "http://127.0.0.1:18081/"),
    ("localhost", "http://localhost:18081/"),
    ("[::1]:8000", "http://[::1]:18081/"),
])
def test_the_port_links_to_the_consoles_host_and_the_published_port(admin_client, row, host, link):
    response = admin_client.get(reverse("containers"), HTTP_HOST=host)
    assert response.status_code == 200
    assert port_links(response.content.decode()) == [(link, "18081:80/tcp")]


def test_a_row_rendered_for_the_live_socket_links_the_same(row):
    html = render_to_string("containers/_row.html", {"c": row, "host": "127.0.0.1:8000"})
    assert port_links(html) == [("http://127.0.0.1:18081/", "18081:80/tcp")]
    # no host known (a handshake whose Host is not one the console serves): the loopback
    html = render_to_string("containers/_row.html", {"c": row, "host": None})
    assert port_links(html) == [("http://127.0.0.1:18081/", "18081:80/tcp")]
