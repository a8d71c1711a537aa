"""In Debian's chromium: sign in and see the engine facts a real worker reports.

Behind the page: the launcher's daphne, Celery worker and beat, and real Redis.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import open_menu, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_signed_in_dashboard_shows_engine_facts_from_the_worker(page, live_console):
    sign_in(page, live_console)
    expect(page.get_by_test_id("signed-in-user")).to_contain_text("admin")
    facts = page.locator("#engine-facts")
    expect(facts).to_have_attribute("data-state", "fresh", timeout=60_000)
    expect(facts.locator('[data-fact="runtime"]')).to_contain_text("runc")
    expect(facts.locator('[data-fact="overlayfs"]')).to_contain_text("usable")
    expect(facts.locator('[data-fact="storage_root"]')).to_contain_text(str(live_console.data_dir / "engine"))
    expect(facts.locator('[data-fact="cgroup_mode"]')).to_have_text(re.compile("v1|v2|hybrid"))
    expect(facts).to_contain_text("Reported by worker")
    screenshot(page, "dashboard")

    # Refresh asks the worker again over the same websocket.
    page.get_by_test_id("refresh-facts").click()
    expect(facts).to_have_attribute("data-state", "fresh", timeout=60_000)


def test_menu_opens_the_settings_page(page, live_console):
    sign_in(page, live_console)
    menu = page.get_by_role("navigation", name="Main menu")
    for label in ("Dashboard", "Containers", "Images", "Registries", "Volumes", "Networks", "Operations",
                  "Events", "Users & Teams", "Audit log", "Settings"):
        expect(menu.get_by_role("link", name=label, exact=True)).to_be_visible()
    open_menu(page, "Settings")
    expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(page.get_by_role("heading", name="Sign-in protection")).to_be_visible()
    expect(page.get_by_text("not built yet")).to_have_count(0)
    expect(menu.get_by_role("link", name="Settings")).to_have_attribute("aria-current", "page")


def test_wrong_password_then_sign_out(page, live_console):
    sign_in(page, live_console, password="not-the-password")
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    screenshot(page, "sign-in-error")
    sign_in(page, live_console)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.goto(live_console.url)
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
