"""In Debian's chromium: an administrator opens Settings from the menu, turns terminal
recording off, saves, and the value is kept after a reload."""

import pytest
from playwright.sync_api import expect

from tests.support.browser import open_menu, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_admin_turns_terminal_recording_off_from_the_settings_page(page, live_console):
    sign_in(page, live_console)
    expect(page.get_by_test_id("signed-in-user")).to_contain_text(live_console.admin_username)
    open_menu(page, "Settings")
    expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
    expect(page.get_by_test_id("settings-when")).to_contain_text("terminals opened from now on")

    recording = page.get_by_role("switch", name="Record terminal sessions")
    row = page.locator("#setting-audit_record_terminals")
    expect(recording).to_be_checked()
    expect(row).to_contain_text("from the environment")
    expect(page.get_by_label("Largest recording")).to_have_value("16")
    recording.uncheck()
    page.get_by_role("button", name="Save settings").click()

    expect(page.get_by_role("status")).to_contain_text("Settings saved. Record terminal sessions: on → off.")
    expect(recording).not_to_be_checked()
    expect(row).to_contain_text("set on this page")
    expect(row.get_by_role("button", name="Reset to the environment's value")).to_be_visible()
    screenshot(page, "settings")

    page.reload()
    expect(page.get_by_role("status")).to_have_count(0)
    expect(page.get_by_role("switch", name="Record terminal sessions")).not_to_be_checked()

    # A bad value is refused beside its field, and nothing is stored.
    page.get_by_label("Failed sign-ins per user name from one address").fill("-3")
    page.get_by_role("switch", name="Record terminal sessions").check()
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("form.settings > .form-error")).to_contain_text("Nothing was saved")
    expect(page.locator("#setting-signin_user_threshold [role=alert]")).to_have_text(
        "Enter a whole number from 0 to 1000 failures.")
    screenshot(page, "settings-error")
    page.goto(live_console.url + "settings/")
    expect(page.get_by_role("switch", name="Record terminal sessions")).not_to_be_checked()
    expect(page.get_by_label("Failed sign-ins per user name from one address")).to_have_value("5")

    # Back to the environment's value.
    page.locator("#setting-audit_record_terminals").get_by_role(
        "button", name="Reset to the environment's value").click()
    expect(page.get_by_role("status")).to_contain_text("back to the environment's value: on")
    expect(page.get_by_role("switch", name="Record terminal sessions")).to_be_checked()
