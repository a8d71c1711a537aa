"""In Debian's chromium: the audit log lists sign-ins and actions, filters them, and a
terminal session recorded through the audit API plays back in the browser."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.support.browser import ROOT, screenshot

pytestmark = pytest.mark.browser

RECORD_SESSION = """
import datetime as dt, os, django
os.environ["DJANGO_SETTINGS_MODULE"] = "console.settings"
django.setup()
from django.contrib.auth import get_user_model
from django.utils import timezone
from console import audit
from console.core.models import Environment

recorder = audit.TerminalRecorder(80, 24, command="/bin/sh")
recorder.output(b"/ # echo hello\\r\\n", at=0.2)
recorder.output(b"hello\\r\\n", at=0.5)
recorder.output(b"progress  10%\\rprogress 100%\\r\\n", at=0.9)
recorder.output(b"\\x1b[1;32mgreen\\x1b[0m and plain\\r\\n/ # exit\\r\\n", at=1.3)
ended = timezone.now()
event = audit.record_terminal_session(
    user=get_user_model().objects.get(username="admin"), environment=Environment.objects.get(name="local"),
    container_id="0123456789ab", container_name="web-1", command="/bin/sh", run_as="root",
    started_at=ended - dt.timedelta(seconds=2), ended_at=ended, recording=recorder, exit_code=0)
print(event.pk)
"""


def sign_in(page, console):
    page.goto(console.url + "login/")
    page.get_by_label("Username").fill(console.admin_username)
    page.get_by_label("Password").fill(console.admin_password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("signed-in-user")).to_contain_text(console.admin_username)


def record_session(console) -> int:
    env = {**os.environ, "BERTH_DATA_DIR": str(console.data_dir), "BERTH_LOG_LEVEL": "WARNING",
           "BERTH_ENGINE_ROOT": str(console.data_dir / "engine")}
    out = subprocess.run([sys.executable, "-c", RECORD_SESSION], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip().splitlines()[-1])


def test_audit_page_lists_and_filters_then_a_session_plays_back(page, live_console):
    sign_in(page, live_console)
    event_id = record_session(live_console)

    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    rows = page.locator("#audit-rows tr[data-event]")
    expect(rows.first).to_be_visible()
    expect(page.locator("#audit-rows")).to_contain_text("auth.sign_in")
    expect(page.locator(f'tr[data-event="{event_id}"]')).to_contain_text("container.terminal")
    screenshot(page, "audit-log")

    # Filtering swaps the rows in place (htmx) and keeps the filter in the address.
    page.get_by_label("Action").fill("container.terminal")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=container\.terminal"))
    expect(rows).to_have_count(1)
    # The export follows the filter now in the address.
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    exported = download.value.path().read_text().splitlines()
    assert len(exported) == 2 and ",container.terminal," in exported[1], exported

    page.locator(f'tr[data-event="{event_id}"]').get_by_role("link", name="▶ play").click()
    expect(page.get_by_role("heading", name=re.compile("Terminal session in web-1"))).to_be_visible()
    player = page.get_by_test_id("player")
    expect(player).to_have_attribute("data-state", "ready")
    page.get_by_test_id("player-play").click()
    screen = page.get_by_test_id("player-screen")
    # Frames appear in order, with their timing: "hello" before the rest.
    expect(screen).to_contain_text("hello")
    expect(player).to_have_attribute("data-state", "ended", timeout=10_000)
    text = screen.inner_text()
    assert text.splitlines() == ["/ # echo hello", "hello", "progress 100%", "green and plain", "/ # exit"]
    expect(page.get_by_test_id("player-clock")).to_contain_text("1.3 / 1.3 s")
    screenshot(page, "audit-session-playback")

    # The detail page links the recording and shows the chain.
    page.goto(live_console.url + f"audit/{event_id}/")
    expect(page.get_by_test_id("play-session")).to_be_visible()
    expect(page.get_by_test_id("event-details")).to_contain_text('"command": "/bin/sh"')
    screenshot(page, "audit-event")
