"""In Debian's chromium: pull an image from a local registry, watch the
per-layer progress, find the image in the list, open it, remove it."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from engine.config import EngineConfig
from engine.distribution import transfer as distribution
from engine.images.store import ImageStore
from tests.support.browser import open_menu, screenshot, sign_in
from tests.support.imagebuilder import multilayer_image
from tests.support.registry import run_registry

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    source = ImageStore(EngineConfig(root=tmp_path_factory.mktemp("source"), run_root=Path("/tmp")))
    multilayer_image(source, ref="test/layers:latest")
    with run_registry() as registry:
        reference = f"{registry.host}/demo/layers:2.0"
        distribution.push(source, "test/layers:latest", reference)
        yield reference



def test_pull_with_progress_then_list_open_and_remove(page, live_console, published):
    sign_in(page, live_console)
    expect(page.get_by_test_id("signed-in-user")).to_be_visible()
    open_menu(page, "Images")
    page.get_by_test_id("pull-image").click()
    page.get_by_label("Image").fill("not a reference!")
    page.get_by_role("button", name="Pull").click()
    expect(page.locator(".field-error")).to_be_visible()

    page.get_by_label("Image").fill(published)
    page.get_by_role("button", name="Pull").click()
    expect(page).to_have_url(re.compile(r"/operations/[0-9a-f-]+/$"))
    progress = page.locator("#operation-progress")
    expect(progress).to_have_attribute("data-state", "succeeded", timeout=60_000)
    expect(progress.locator("tr[data-layer]")).to_have_count(4)
    expect(page.get_by_test_id("operation-result")).to_contain_text("Pulled")
    screenshot(page, "image-pulled")

    open_menu(page, "Images")
    page.get_by_label("Search images").fill("demo/layers")
    row = page.locator("tr[data-image]", has_text="demo/layers:2.0")
    expect(row).to_have_count(1)
    screenshot(page, "images-list")
    row.get_by_role("link").first.click()
    expect(page.get_by_role("heading", name="Layers", exact=True)).to_be_visible()
    expect(page.locator("text=COPY data")).to_be_visible()
    screenshot(page, "image-detail")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove image").click()
    expect(page.locator("#operation-progress")).to_have_attribute("data-state", "succeeded", timeout=30_000)
    page.goto(live_console.url + "images/?q=demo/layers")
    expect(page.locator("tr[data-image]")).to_have_count(0)
