"""In Debian's chromium, under the console's Content-Security-Policy: the main pages work
(the dashboard's engine facts over htmx's websocket, the containers list, a container's logs,
terminal and stats charts, images, the audit log's htmx filter, a confirmation before a
removal) and the browser reports no violation of the policy."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from engine.config import EngineConfig
from engine.containers.manager import Containers
from engine.images.store import ImageStore
from tests.support.browser import container_page, sign_in
from tests.support.imagebuilder import busybox_image

pytestmark = pytest.mark.browser

# Chromium fires this event for every refusal, enforced or not; kept across a page's life.
LISTEN = """window.__csp = []; document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));"""


@pytest.fixture
def talker(live_console):
    config = EngineConfig(root=live_console.data_dir / "engine", run_root=live_console.run_root)
    images = ImageStore(config)
    if not images.exists("test/busybox:latest"):
        busybox_image(images, ref="test/busybox:latest")
    containers = Containers(config)
    container, _ = containers.run("test/busybox:latest", ["sh", "-c", "while true; do echo csp says hi; sleep 0.5; done"],
                                  name="browser-csp")
    yield container
    containers.remove(container.id, force=True)


@pytest.fixture
def watched(page):
    """The page, with every CSP violation and console error it reports."""
    page.add_init_script(LISTEN)
    reported = []
    page.on("console", lambda m: reported.append(m.text) if m.type == "error" or "Content Security Policy" in m.text
            else None)
    page.on("pageerror", lambda e: reported.append(f"page error: {e}"))
    page.on("response", lambda r: reported.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.reported = reported
    return page


def violations(page) -> list[str]:
    return page.evaluate("() => window.__csp") + [m for m in page.reported if "Security Policy" in m]


def test_main_pages_work_under_the_csp(watched, live_console, talker):
    page = watched
    sign_in(page, live_console)
    expect(page.locator("#engine-facts")).to_have_attribute("data-state", "fresh", timeout=60_000)
    assert violations(page) == []

    pk = container_page(page, live_console, "browser-csp")
    expect(page.get_by_test_id("log-status")).to_contain_text("Following live", timeout=45_000)
    expect(page.get_by_test_id("container-logs")).to_contain_text("csp says hi")
    page.get_by_role("tab", name="Terminal").click()
    page.get_by_test_id("terminal-open").click()
    pane = page.locator(".terminal-pane").first
    expect(pane.locator("[data-terminal-status]")).to_contain_text("Connected", timeout=20_000)
    pane.locator(".xterm").click()
    page.keyboard.type("printf '\\033[38;2;255;0;0mred\\033[0m ok\\n'\n")  # a 24-bit colour: xterm's style attribute
    rows = pane.locator(".xterm-rows > div")
    expect(rows.filter(has_text=re.compile(r"^\s*red ok\s*$"))).to_have_count(1)
    # xterm.js's own stylesheets apply (they carry the page's nonce): its rows are laid out in cells
    assert page.evaluate("() => [...document.querySelectorAll('.xterm style')].every((s) => s.sheet !== null)")
    red = rows.filter(has_text=re.compile(r"^\s*red ok\s*$")).locator("span", has_text="red").first
    assert red.evaluate("(el) => getComputedStyle(el).color") == "rgb(255, 0, 0)"
    page.get_by_role("tab", name="Stats").click()
    expect(page.locator("[data-stats]")).to_have_attribute("data-samples", re.compile(r"^([3-9]|\d\d+)$"),
                                                           timeout=20_000)
    expect(page.locator(".uplot").first).to_be_visible()
    assert violations(page) == []

    page.goto(live_console.url + "containers/")
    expect(page.locator(f'tr a[href="/containers/{pk}/"]')).to_be_visible()
    page.get_by_label("Select all").check()  # static/js/berth.js, not an inline handler
    assert page.locator("input[name=container]").evaluate_all("(boxes) => boxes.every((b) => b.checked)")

    page.goto(live_console.url + "images/")
    expect(page.get_by_role("heading", name="Images")).to_be_visible()
    messages = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name=re.compile("Prune", re.I)).click()
    expect(page).to_have_url(re.compile(r"/images/$"))  # dismissed: nothing submitted
    assert messages == ["Remove dangling images?"]

    page.goto(live_console.url + "audit/")
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    page.get_by_label("Action").fill("auth.sign_in")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=auth\.sign_in"))
    expect(page.locator("#audit-rows")).to_contain_text("auth.sign_in")
    assert violations(page) == []
    assert [m for m in page.reported if "WebSocket" not in m] == [], page.reported
