"""In Debian's chromium: add a registry that needs credentials, test them, browse
its repositories and tags, and pull a tag from there."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from engine.config import EngineConfig
from engine.distribution import transfer as distribution
from engine.distribution.credentials import Credentials
from engine.images.store import ImageStore
from tests.support.browser import screenshot
from tests.support.imagebuilder import busybox_image
from tests.support.registry import run_registry

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory):
    source = ImageStore(EngineConfig(root=tmp_path_factory.mktemp("source"), run_root=Path("/tmp")))
    busybox_image(source, ref="test/busybox:latest")
    with run_registry(users={"alice": "wonderland"}) as registry:
        for target in ("team/busybox:1.0", "team/busybox:1.1", "team/busybox:latest", "tools/shell:2024.1"):
            distribution.push(source, "test/busybox:latest", f"{registry.host}/{target}",
                              credentials=Credentials("alice", "wonderland"))
        yield registry


def sign_in(page, console):
    page.goto(console.url)
    page.get_by_label("Username").fill(console.admin_username)
    page.get_by_label("Password").fill(console.admin_password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("signed-in-user")).to_be_visible()


def test_add_test_browse_and_pull_from_a_registry(page, live_console, private_registry):
    sign_in(page, live_console)
    page.get_by_role("link", name="Registries").click()
    page.get_by_test_id("add-registry").click()
    expect(page.get_by_label("ACR region")).to_be_hidden()  # only for Alibaba Cloud ACR
    page.get_by_label("Name", exact=True).fill("team registry")
    page.get_by_role("textbox", name=re.compile("^Host")).fill(f"{private_registry.host.split(':')[0]}:70000")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password or token").fill("wonderland")
    page.get_by_role("button", name="Add registry").click()
    expect(page.locator(".field-error")).to_contain_text("from 1 to 65535")
    expect(page.get_by_label("Password or token")).to_have_value("")  # never sent back
    screenshot(page, "registry-form-error")

    page.get_by_role("textbox", name=re.compile("^Host")).fill(private_registry.host)
    page.get_by_label("Password or token").fill("wonderland")
    page.get_by_role("button", name="Add registry").click()
    expect(page.get_by_role("heading", name="team registry")).to_be_visible()
    expect(page.get_by_test_id("secret-state")).to_contain_text("set")

    page.get_by_test_id("test-registry").click()
    expect(page.get_by_test_id("test-result")).to_have_attribute("data-result", "ok", timeout=30_000)
    expect(page.get_by_test_id("test-message")).to_contain_text("Signed in")

    page.get_by_test_id("browse-registry").click()
    rows = page.locator("tr[data-repository]")
    expect(rows).to_have_count(2, timeout=30_000)
    busybox = page.locator('tr[data-repository="team/busybox"]')
    expect(busybox.get_by_test_id("pull-tag")).to_have_count(3)
    assert "wonderland" not in page.content()
    screenshot(page, "registry-browsed")

    page.get_by_label("Search repositories").fill("tools")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("2024.1")

    rows.first.get_by_role("button", name=re.compile("2024.1")).click()
    expect(page).to_have_url(re.compile(r"/operations/[0-9a-f-]+/$"))
    progress = page.locator("#operation-progress")
    expect(progress).to_have_attribute("data-state", "succeeded", timeout=60_000)
    expect(page.get_by_test_id("operation-result")).to_contain_text(f"{private_registry.host}/tools/shell:2024.1")

    page.get_by_role("link", name="Registries").click()
    row = page.locator('tr[data-registry="team registry"]')
    expect(row).to_contain_text("ok")
    screenshot(page, "registries-list")

    # Editing shows that a secret is set, never the secret; ACR offers its regions.
    row.get_by_role("link", name="team registry").click()
    page.get_by_role("button", name="Edit").or_(page.get_by_role("link", name="Edit")).click()
    expect(page.get_by_text("A secret is set: leave empty to keep it.")).to_be_visible()
    expect(page.get_by_label("Password or token")).to_have_value("")
    expect(page.get_by_label("Clear the stored secret")).not_to_be_checked()
    page.get_by_label("Kind").select_option("acr")
    expect(page.get_by_label("ACR region")).to_be_visible()
    page.get_by_label("Kind").select_option("dockerhub")
    expect(page.get_by_role("textbox", name=re.compile("^Host"))).to_be_hidden()
    page.get_by_label("Kind").select_option("v2")
    screenshot(page, "registry-edit")
    assert "wonderland" not in page.content()
