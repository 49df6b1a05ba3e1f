"""The console in a real browser: Debian's Chromium, headless, driven by
Selenium through Debian's chromedriver (nothing is downloaded), against a
live server holding the demo story.

Without the browser the tests skip on a developer machine and fail when
``CI=true``: CI must never pass without running them (``.ci/run`` installs
it). ``TRUSTLEDGER_SCREENSHOTS=1`` also saves the pages the README shows
under docs/console/.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from api.auth import Role
from client import TrustLedger
from ledger.app import LedgerApp
from tests.e2e.support import live_server
from tools.scenario import run_scenario

if TYPE_CHECKING:  # at run time selenium may be absent: the tests then skip, or fail in CI
    from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
# Read once, as the tests are collected: every test runs without TRUSTLEDGER_*
# variables (tests/conftest.py), so that settings read none.
SCREENSHOTS_WANTED = os.environ.get("TRUSTLEDGER_SCREENSHOTS") == "1"
# A laptop's screen.
WINDOW = (1366, 860)
# What the window takes beyond the page (a headless window keeps some).
WINDOW_CHROME = 140
CATCH_UP_SECONDS = 30


@dataclass(frozen=True)
class Story:
    """The live server with the demo story: its address, a key per role,
    how many events the story wrote and a typed client per role."""

    url: str
    keys: dict[Role, str]
    events: int

    def client(self, role: Role) -> TrustLedger:
        return TrustLedger(self.url, self.keys[role], retries=2)


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401, PLC0415 - only to tell whether it is installed
    except ImportError:
        return "the selenium package is not installed (pip install -e '.[dev]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


@pytest.fixture(scope="session")
def browser_present() -> None:
    missing = _missing()
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the browser tests cannot run: {missing}")
        pytest.skip(f"no browser: {missing}")


def story_log(folder: Path) -> tuple[str, int]:
    """A SQLite ledger in ``folder`` holding the demo story: its URL and last position."""
    database_url = f"sqlite:///{folder / 'story.db'}"
    ledger = LedgerApp(database_url)
    try:
        written = run_scenario(ledger)
    finally:
        ledger.close()
    return database_url, max(position for _, appended in written for position in appended.positions)


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    folder = tmp_path_factory.mktemp("console")
    database_url, last = story_log(folder)
    with live_server(database_url, folder) as (url, keys):
        story = Story(url, keys, events=last)
        _wait_for_the_story(story, last)
        yield story


def _wait_for_the_story(story: Story, last: int) -> None:
    """Until the view and the signed tree head both cover the whole story."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    with story.client(Role.AUDITOR) as auditor:
        auditor.get_seller_dsr("bob-shop", min_position=last)
        while auditor.get_tree_head().tree_size < last:
            if time.monotonic() > deadline:
                raise RuntimeError("the tree head did not cover the story in time")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def driver(browser_present: None) -> Iterator[WebDriver]:
    from selenium import webdriver  # noqa: PLC0415 - the package may be absent
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root in a container
        "--disable-dev-shm-usage",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--force-device-scale-factor=1",
        "--lang=en-GB",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        browser.set_page_load_timeout(30)
        yield browser
    finally:
        browser.quit()


def requests_sent(browser: WebDriver) -> list[dict[str, Any]]:
    """Every request the pages sent since the last call (Chrome's
    performance log, drained): each ``Network.requestWillBeSent``'s request."""
    sent = []
    # Selenium leaves get_log unannotated.
    for entry in browser.get_log("performance"):  # type: ignore[no-untyped-call]
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            sent.append(message["params"]["request"])
    return sent


def screenshot(browser: WebDriver, name: str) -> None:
    """The whole page as docs/console/<name>.png, when asked for."""
    if not SCREENSHOTS_WANTED:
        return
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(WINDOW[0], max(WINDOW[1], int(height) + WINDOW_CHROME))
    try:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    finally:
        browser.set_window_size(*WINDOW)
