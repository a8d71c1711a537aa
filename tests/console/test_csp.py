"""Every page, crawled as an administrator, has a strict Content-Security-Policy and holds no
inline script, event handler, style block or style attribute (they live in static/), and a
signed-in page is never stored (Cache-Control: no-store). Real engine objects, so that the
detail pages (a running container's live panel included) are crawled too."""

from __future__ import annotations

import re
from collections import deque
from urllib.parse import urldefrag, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from console import audit
from console.accounts.models import Team
from console.core.models import Environment
from console.inventory.reconcile import reconcile
from console.operations.models import Operation
from console.registries.models import Registry
from engine.volumes import Volumes

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

INLINE = [
    (re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I), "an inline event handler"),
    (re.compile(r"<style\b", re.I), "a <style> block"),
    (re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]
HREF = re.compile(r'href="(/[^"]*)"')
SKIP = ("/logout/", "/static/", "/ws/")
MAX_PAGES = 400


@pytest.fixture
def objects(engine, admin_user):
    container, _ = engine.run("test/busybox:latest", ["sh", "-c", "echo csp; sleep 300"], name="csp-crawl",
                              labels={"app": "crawl"})
    Volumes(engine.config).create("csp-volume")
    local = Environment.objects.get(name="local")
    for kind in ("images", "containers", "volumes", "networks"):
        reconcile(local, kind)
    Operation.objects.create(environment=local, user=admin_user, username="admin", action="image.pull",
                             target_name="demo:1", state="succeeded")
    Team.objects.create(name="crawlers")
    registry = Registry(name="crawl-registry", host="127.0.0.1:1", username="alice")
    registry.set_secret("not-a-real-secret")
    registry.save()
    audit.record(user=admin_user, action="container.start", environment=local, target_type="container",
                 target_id=container.id, target_name="csp-crawl")
    yield
    engine.remove(container.id, force=True)


def crawl(client, start="/"):
    """{path: response} of every page reachable by links from ``start``."""
    seen, queue, pages = {start}, deque([start]), {}
    while queue and len(pages) < MAX_PAGES:
        path = queue.popleft()
        response = client.get(path)
        pages[path] = response
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        for link in HREF.findall(response.content.decode()):
            link = urldefrag(link.replace("&amp;", "&"))[0]
            key = urlsplit(link).path
            # one query string per path is enough (sort orders and pages share the template)
            if any(key.startswith(s) for s in SKIP) or "download" in key or "export" in key:
                continue
            if link not in seen and not any(urlsplit(s).path == key and s != link for s in seen):
                seen.add(link)
                queue.append(link)
    return pages


def test_every_page_has_a_strict_csp_and_no_inline_code(admin_client, objects):
    pages = crawl(admin_client)
    html = {path: r for path, r in pages.items() if r.status_code == 200 and "text/html" in r["Content-Type"]}
    assert len(html) > 30, sorted(pages)
    for wanted in ("/containers/", "/images/", "/volumes/", "/networks/", "/audit/", "/operations/",
                   "/registries/", "/users/roles/", "/live/events/", "/settings/"):
        assert any(p.startswith(wanted) for p in html), (wanted, sorted(html))
    for detail in (r"/containers/\d+/", r"/images/\d+/", r"/volumes/\d+/", r"/registries/\d+/", r"/audit/\d+/"):
        assert any(re.fullmatch(detail, p) for p in html), (detail, sorted(html))
    assert any('data-testid="live-panel"' in r.content.decode() for r in html.values())
    problems = []
    for path, response in html.items():
        policy = response.get("Content-Security-Policy", "")
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if " " in d.strip())
        if (directives.get("script-src") != "'self'" or directives.get("object-src") != "'none'"
                or directives.get("frame-ancestors") != "'none'" or "unsafe" in policy
                or not directives.get("style-src", "").startswith("'self' 'nonce-")):
            problems.append(f"{path}: policy {policy!r}")
        if response.get("Cache-Control") != "no-store":
            problems.append(f"{path}: Cache-Control {response.get('Cache-Control')!r}")
        text = response.content.decode()
        for pattern, what in INLINE:
            found = pattern.search(text)
            if found:
                problems.append(f"{path}: {what}: {found.group(0)[:80]}")
    assert not problems, "\n".join(problems)


def test_every_response_has_the_policy_and_each_its_own_nonce(admin_client, client):
    first, second = admin_client.get("/"), admin_client.get("/")
    assert first["Content-Security-Policy"] != second["Content-Security-Policy"]  # a fresh nonce
    assert "connect-src 'self' ws://testserver wss://testserver" in first["Content-Security-Policy"]
    signed_out = Client().get(reverse("login"))
    assert "script-src 'self'" in signed_out["Content-Security-Policy"]
    assert signed_out.get("Cache-Control") != "no-store"  # nothing of a user's on it
    assert "Content-Security-Policy" in admin_client.get("/no-such-page/")
