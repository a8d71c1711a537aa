"""In Debian's chromium: run a container from a local image, find it in the list,
read its output, stop it, remove it."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from engine.config import EngineConfig
from engine.containers.manager import Containers
from engine.images.store import ImageStore
from tests.support.browser import open_menu, screenshot, sign_in
from tests.support.imagebuilder import busybox_image

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def console_engine(live_console):
    """The live console's own engine root, with a busybox image in it."""
    config = EngineConfig(root=live_console.data_dir / "engine", run_root=Path(live_console.run_root))
    busybox_image(ImageStore(config), ref="demo/busybox:latest")
    yield config
    containers = Containers(config)
    for summary in containers.list(all=True):
        containers.remove(summary["Id"], force=True)



def test_run_find_stop_and_remove_a_container(page, live_console, console_engine):
    sign_in(page, live_console)
    expect(page.get_by_test_id("signed-in-user")).to_be_visible()
    open_menu(page, "Containers")
    page.get_by_test_id("create-container").click()
    page.get_by_label("Image", exact=True).fill("demo/busybox:latest")
    page.get_by_label("Name", exact=True).fill("hello-web")
    page.get_by_label("Command", exact=True).fill("sh -c 'echo ready to serve; sleep 600'")
    page.get_by_label("Memory", exact=True).fill("12 parsecs")
    page.get_by_test_id("submit-container").click()
    expect(page.locator(".field-error")).to_contain_text("invalid size")
    expect(page.get_by_label("No seccomp filter (administrators)")).not_to_be_checked()  # an administrator's option
    screenshot(page, "container-create")
    page.get_by_label("Memory", exact=True).fill("64m")
    page.get_by_test_id("submit-container").click()
    expect(page).to_have_url(re.compile(r"/operations/[0-9a-f-]+/$"))
    expect(page.locator("#operation-progress")).to_have_attribute("data-state", "succeeded", timeout=60_000)

    open_menu(page, "Containers")
    page.get_by_label("Search containers").fill("hello")
    row = page.locator('tr[data-container="hello-web"]')
    expect(row).to_have_attribute("data-state", "running", timeout=20_000)
    screenshot(page, "containers-list")

    row.get_by_role("link", name="hello-web").click()
    expect(page.get_by_test_id("container-state")).to_have_text("running")
    expect(page.get_by_test_id("container-logs")).to_contain_text("ready to serve")
    screenshot(page, "container-detail")

    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#operation-progress")).to_have_attribute("data-state", "succeeded", timeout=60_000)
    page.goto(live_console.url + "containers/?q=hello-web")
    expect(page.locator('tr[data-container="hello-web"]')).to_have_attribute("data-state", "exited")

    page.locator('tr[data-container="hello-web"] input[name=container]').check()
    page.get_by_test_id("bulk-remove").click()
    expect(page.locator("#operation-progress")).to_have_attribute("data-state", "succeeded", timeout=60_000)
    page.goto(live_console.url + "containers/?q=hello-web")
    expect(page.locator('tr[data-container="hello-web"]')).to_have_count(0)
