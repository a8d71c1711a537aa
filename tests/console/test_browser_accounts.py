"""In Debian's chromium: an administrator adds a user and a team, puts the user
in the team, gives the team a role in the local environment, and the
effective-access page says what the user may now do and why."""

import pytest
from playwright.sync_api import expect

from tests.support.browser import open_menu, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_admin_creates_user_and_team_assigns_a_role_and_sees_effective_access(page, live_console):
    sign_in(page, live_console)
    open_menu(page, "Users & Teams")
    page.get_by_test_id("create-user").click()
    page.get_by_label("Username").fill("nina-e2e")
    page.get_by_label("Password").fill("a long enough passphrase 42")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("heading", name="nina-e2e")).to_be_visible()
    expect(page.get_by_text("User nina-e2e created.")).to_be_visible()
    screenshot(page, "accounts-user")

    page.get_by_role("link", name="Teams", exact=True).click()
    page.get_by_test_id("create-team").click()
    page.get_by_label("Name").fill("web-e2e")
    page.get_by_label("Description").fill("runs the web tier")
    page.get_by_role("button", name="Create team").click()
    expect(page.get_by_role("heading", name="web-e2e")).to_be_visible()
    page.get_by_label("User", exact=True).select_option(label="nina-e2e")
    page.get_by_test_id("add-member").click()
    expect(page.locator('[data-member="nina-e2e"]')).to_be_visible()
    page.get_by_label("Role").select_option(label="Operator")
    page.locator("#id_environment").select_option(label="local")
    page.get_by_test_id("assign-role").click()
    expect(page.locator('[data-assignment="local:Operator"]')).to_be_visible()
    screenshot(page, "accounts-team")

    page.get_by_role("link", name="Effective access").click()
    page.get_by_label("User", exact=True).select_option(label="nina-e2e")
    local = page.locator('article[data-environment="local"]')
    expect(local).to_contain_text("Operator through team web-e2e")
    expect(local.locator('[data-permission="containers.operate"]')).to_be_visible()
    expect(local.locator('[data-permission="containers.remove"]')).to_have_count(0)
    expect(page.get_by_text("the union applies")).to_be_visible()
    screenshot(page, "accounts-effective-access")

    page.get_by_role("link", name="Roles").click()
    expect(page.get_by_test_id("role-matrix")).to_contain_text("Environment administrator")
    screenshot(page, "accounts-roles")
    page.get_by_test_id("create-role").click()
    page.get_by_label("Name", exact=True).fill("Log reader e2e")
    page.get_by_label("Every resource in the environment").check()
    page.get_by_label("containers.logs: Read container logs").check()
    page.get_by_label("containers.view: See containers and their details").check()
    screenshot(page, "accounts-role-form")
    page.get_by_role("button", name="Save role").click()
    expect(page.locator('[data-role="Log reader e2e"]')).to_contain_text("environment")
