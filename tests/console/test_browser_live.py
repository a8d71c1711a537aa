"""In Debian's chromium: a container's live logs (new lines appear, a regex search finds a
line far beyond the loaded window), its terminal (echo, the pty follows the window's size,
exit) and its stats charts. Screenshots: live-logs, live-terminal, live-stats."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from engine.config import EngineConfig
from engine.containers.manager import Containers
from engine.images.store import ImageStore
from tests.support.browser import container_page, screenshot, sign_in
from tests.support.imagebuilder import busybox_image

pytestmark = pytest.mark.browser


@pytest.fixture
def logger(live_console):
    config = EngineConfig(root=live_console.data_dir / "engine", run_root=live_console.run_root)
    images = ImageStore(config)
    if not images.exists("test/busybox:latest"):
        busybox_image(images, ref="test/busybox:latest")
    containers = Containers(config)
    container, _ = containers.run("test/busybox:latest", ["sh", "-c",
                                  "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done; "
                                  "while true; do echo tick $i; i=$((i+1)); sleep 0.3; done"], name="browser-live")
    yield container
    containers.remove(container.id, force=True)


def open_detail(page, live_console, name):
    sign_in(page, live_console)
    container_page(page, live_console, name)


def test_logs_terminal_and_stats(page, live_console, logger):
    open_detail(page, live_console, "browser-live")
    output = page.get_by_test_id("container-logs")
    expect(page.get_by_test_id("log-status")).to_contain_text("Following live", timeout=45_000)
    last = output.locator(".ll").last
    expect(last).to_contain_text("tick")
    first_tick = last.inner_text()
    expect(output.locator(".ll").last).not_to_have_text(first_tick, timeout=10_000)  # a new line arrived live
    assert "line 12\n" not in output.inner_text()  # far before the loaded window

    page.get_by_label("Search the logs").fill(r"^line 12$")
    page.get_by_label("regex").check()
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_test_id("search-count")).to_contain_text("1 match")
    page.get_by_role("button", name="Next match").click()
    expect(output.locator(".focus")).to_have_text(re.compile(r"line 12$"))
    screenshot(page, "live-logs")

    page.get_by_role("tab", name="Terminal").click()
    page.get_by_test_id("terminal-open").click()
    pane = page.locator(".terminal-pane").first
    expect(pane.locator("[data-terminal-status]")).to_contain_text("Connected", timeout=20_000)
    pane.locator(".xterm").click()
    page.keyboard.type("echo hi\n")
    lines = pane.locator(".xterm-rows > div")
    expect(lines.filter(has_text=re.compile(r"^\s*hi\s*$"))).to_have_count(1)
    page.set_viewport_size({"width": 1000, "height": 700})
    page.wait_for_timeout(300)
    size = page.evaluate("() => { const t = document.querySelector('.terminal-pane').term; return [t.rows, t.cols]; }")
    page.keyboard.type("stty size\n")
    expect(lines.filter(has_text=re.compile(rf"^\s*{size[0]} {size[1]}\s*$"))).to_have_count(1)
    assert size != [24, 80]
    screenshot(page, "live-terminal")
    page.keyboard.type("exit\n")
    expect(pane.locator("[data-terminal-status]")).to_contain_text("exited (code 0)")

    page.get_by_role("tab", name="Stats").click()
    stats = page.locator("[data-stats]")
    expect(stats).to_have_attribute("data-samples", re.compile(r"^([3-9]|\d\d+)$"), timeout=20_000)
    expect(page.locator("[data-stats-now]")).to_contain_text("CPU")
    screenshot(page, "live-stats")


def test_list_events_and_merged_logs(page, live_console, logger):
    config = EngineConfig(root=live_console.data_dir / "engine", run_root=live_console.run_root)
    containers = Containers(config)
    other, _ = containers.run("test/busybox:latest", ["sh", "-c", "while true; do echo other says hi; sleep 0.5; done"],
                              name="browser-other")
    try:
        open_detail(page, live_console, "browser-other")
        page.goto(live_console.url + "containers/")
        row = page.locator('tr[data-container="browser-other"]')
        expect(row.locator("[data-live-cpu]")).to_have_text(re.compile(r"%$"), timeout=20_000)
        expect(row.locator("[data-live-mem]")).to_have_text(re.compile(r"B$"))
        containers.kill(other.id)  # not through the console: the row follows anyway
        expect(row).to_have_attribute("data-state", "exited", timeout=20_000)
        screenshot(page, "live-list")

        page.get_by_role("button", name="Events").click()
        events = page.get_by_test_id("events")
        expect(events.locator('tr[data-action="die"]').first).to_contain_text("browser-other", timeout=20_000)
        containers.start(other.id)
        expect(events.locator("tr").first).to_contain_text("browser-other", timeout=20_000)
        page.get_by_label("Type").select_option("image")
        expect(events.locator("tr:visible")).to_have_count(0)
        page.get_by_label("Type").select_option("")
        screenshot(page, "live-events")

        page.goto(live_console.url + "live/logs/")
        page.get_by_label("Containers").select_option(label=["browser-live", "browser-other"])
        page.get_by_role("button", name="Show").click()
        output = page.get_by_test_id("container-logs")
        expect(output.locator(".src", has_text="browser-other").first).to_be_visible(timeout=20_000)
        expect(output.locator(".src", has_text="browser-live").first).to_be_visible()
        screenshot(page, "live-merged-logs")
        page.get_by_label("Search the logs").fill("other says")  # over both containers' logs
        page.get_by_role("button", name="Search", exact=True).click()
        expect(page.get_by_test_id("search-count")).to_contain_text(re.compile(r"\d+ match"))
        page.get_by_role("button", name="Previous match").click()
        expect(output.locator(".focus")).to_contain_text("other says hi")
    finally:
        containers.remove(other.id, force=True)
