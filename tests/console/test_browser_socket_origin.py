"""In Debian's chromium, with the administrator signed in: a page served from another port of
the console's host (as a user's container with a published port would be) tries to open the
console's terminal and events sockets. The browser sends the session cookie (same site),
the console refuses both handshakes (another origin); the console's own page still opens a
terminal."""

from __future__ import annotations

import http.server
import re
import threading
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from engine.config import EngineConfig
from engine.containers.manager import Containers
from engine.images.store import ImageStore
from tests.support.browser import container_page, sign_in
from tests.support.imagebuilder import busybox_image

pytestmark = pytest.mark.browser

ATTACK = """<!doctype html><title>a user's page</title><script>
window.results = {};
function attempt(name, url) {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const r = {opened: false, frames: 0};
  ws.onopen = () => { r.opened = true; ws.send(new TextEncoder().encode("0id\\r")); };
  ws.onmessage = () => { r.frames += 1; };
  ws.onclose = (ev) => { r.code = ev.code; window.results[name] = r; };
}
attempt("terminal", "ws://127.0.0.1:%(port)d/ws/containers/%(pk)d/terminal/?cols=80&rows=24&cmd=id");
attempt("events", "ws://127.0.0.1:%(port)d/ws/events/");
</script>"""


@pytest.fixture
def sleeper(live_console):
    config = EngineConfig(root=live_console.data_dir / "engine", run_root=live_console.run_root)
    images = ImageStore(config)
    if not images.exists("test/busybox:latest"):
        busybox_image(images, ref="test/busybox:latest")
    containers = Containers(config)
    container, _ = containers.run("test/busybox:latest", ["sleep", "3600"], name="browser-origin")
    yield container
    containers.remove(container.id, force=True)


@pytest.fixture
def other_port_site():
    """A tiny web server on another port of 127.0.0.1; ``site.page`` is the HTML it serves."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = server.page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.page = ""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_a_page_on_another_port_cannot_open_the_terminal(page, live_console, sleeper, other_port_site):
    sign_in(page, live_console)
    pk = container_page(page, live_console, "browser-origin")
    console_port = urlsplit(live_console.url).port

    other_port_site.page = ATTACK % {"port": console_port, "pk": pk}
    attacker = page.context.new_page()  # same browser, same cookie jar: the administrator's session
    attacker.goto(f"http://127.0.0.1:{other_port_site.server_address[1]}/")
    attacker.wait_for_function("() => window.results.terminal && window.results.events", timeout=20_000)
    results = attacker.evaluate("() => window.results")
    # refused at the handshake: never open, nothing received, the browser's 1006
    assert results["terminal"] == {"opened": False, "frames": 0, "code": 1006}, results
    assert results["events"] == {"opened": False, "frames": 0, "code": 1006}, results
    attacker.close()

    # the console's own page opens one, even when its token has expired: it gets a fresh one
    page.locator("[data-terminal]").evaluate("(el) => { el.dataset.token = 'stale'; el.dataset.tokenExpires = '0'; }")
    page.get_by_role("tab", name="Terminal").click()
    page.get_by_test_id("terminal-open").click()
    pane = page.locator(".terminal-pane").first
    expect(pane.locator("[data-terminal-status]")).to_contain_text("Connected", timeout=20_000)
    pane.locator(".xterm").click()
    page.keyboard.type("echo from-the-console\n")
    expect(pane.locator(".xterm-rows > div").filter(has_text=re.compile(r"^\s*from-the-console\s*$"))).to_have_count(1)
