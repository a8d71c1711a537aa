"""Fixtures for end-to-end tests: the whole console started the way the README
starts it (``python -m console.launcher``), and Debian's chromium driven by
Playwright."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.config import EngineConfig
from tests.support.networks import remove_engine
from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ADMIN_PASSWORD = "e2e-admin-password-1"
SCREENSHOT_DIR = Path(os.environ.get("BERTH_SCREENSHOT_DIR", tempfile.gettempdir())) / "berth-screenshots"


@dataclass
class LiveConsole:
    url: str
    data_dir: Path
    log_path: Path
    run_root: Path
    admin_username: str = "admin"
    admin_password: str = ADMIN_PASSWORD

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_until_up(url: str, proc: subprocess.Popen, log_path: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the console exited:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url + "healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the console did not come up:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
def live_console(tmp_path_factory):
    """The launcher with its real worker, beat and daphne, on a fresh data dir."""
    data_dir = tmp_path_factory.mktemp("console-data")
    run_root = Path(tempfile.mkdtemp(prefix="bl-", dir="/tmp"))
    port = free_port()
    env = {
        **os.environ,
        "BERTH_DATA_DIR": str(data_dir),
        "BERTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        # its own Redis database, so no stray message from other tests reaches its worker
        "BERTH_REDIS_URL": os.environ["BERTH_REDIS_URL"].rsplit("/", 1)[0] + "/3",
        "BERTH_ENGINE_ROOT": str(data_dir / "engine"),
        # short: unix socket paths under it are limited to 108 bytes
        "BERTH_ENGINE_RUN": str(run_root),
    }
    log_path = data_dir / "launcher.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "console.launcher", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(url, proc, log_path)
        yield LiveConsole(url=url, data_dir=data_dir, log_path=log_path, run_root=run_root)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        remove_engine(EngineConfig(root=data_dir / "engine", run_root=run_root))
        shutil.rmtree(run_root, ignore_errors=True)


@pytest.fixture(scope="module")
def chromium():
    # Module scope: Playwright's sync API keeps an event loop marked as running in this
    # thread while it lives, which would break asyncio in the tests that run after it.
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def open_menu(page, label: str) -> None:
    """Click an entry of the side menu (page content may have links with the same name)."""
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name=label, exact=True).click()


def sign_in(page, console, password: str | None = None) -> None:
    page.goto(console.url)
    page.get_by_label("Username").fill(console.admin_username)
    page.get_by_label("Password").fill(password or console.admin_password)
    page.get_by_role("button", name="Sign in").click()


def container_page(page, live_console, name) -> int:
    """Open the named container's page from the containers list; its row pk."""
    import re

    from playwright.sync_api import expect

    deadline = time.monotonic() + 30
    while True:  # the events follower puts it in the mirror
        page.goto(live_console.url + "containers/")
        link = page.get_by_role("link", name=name, exact=True)
        if link.count() or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    link.click()
    expect(page.get_by_test_id("live-panel")).to_be_visible()
    return int(re.search(r"/containers/(\d+)/", page.url).group(1))
