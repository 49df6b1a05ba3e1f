"""The what-if and operations pages in Chromium against the demo story,
served under a rulebook of taobao-classic's levels with other thresholds and
multipliers: the what-if histogram and list are the API's answer, across
level scales it counts where sellers land; the operations page shows the
status an admin's key reads; other keys see neither page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from api.auth import Role
from client import errors
from tests.browser.conftest import Story, requests_sent, screenshot, story_log
from tests.e2e.support import live_server
from tests.e2e.test_api_whatif import strict_rulebook

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

# Within thirty days of the story's refund and upheld complaint: the rates
# the strict rulebook reads from the first trade are set.
AS_OF_DATE = "2026-01-20"
AS_OF = datetime(2026, 1, 20, 23, 59, 59, tzinfo=UTC)  # the end of that day, as the page asks
PAGE_SECONDS = 20
TIMES = "\N{MULTIPLICATION SIGN}"  # how the page writes a multiplier


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    """The demo story on a server whose own rulebook is the strict one."""
    folder = tmp_path_factory.mktemp("console-admin")
    database_url, last = story_log(folder)
    rulebook = str(strict_rulebook(folder))
    with live_server(database_url, folder, rulebook=rulebook) as (url, keys):
        story = Story(url, keys, events=last)
        with story.client(Role.AUDITOR) as auditor:
            auditor.get_seller_dsr("bob-shop", min_position=last)
        yield story


def _wait(browser: WebDriver, css: str) -> WebElement:
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.support import expected_conditions as ec  # noqa: PLC0415
    from selenium.webdriver.support.wait import WebDriverWait  # noqa: PLC0415

    WebDriverWait(browser, PAGE_SECONDS).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "main[data-state='ready']"))
    )
    found: WebElement = WebDriverWait(browser, PAGE_SECONDS).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css))
    )
    return found


def _all(browser: WebDriver, css: str) -> list[WebElement]:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    return browser.find_elements(By.CSS_SELECTOR, css)


def _text(element: WebElement) -> str:
    return (element.get_attribute("textContent") or "").strip()


def sign_in(browser: WebDriver, story: Story, role: Role) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    browser.get(f"{story.url}/console/")
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    _wait(browser, "#api-key")
    browser.find_element(By.ID, "api-key").send_keys(story.keys[role])
    browser.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit]").click()
    _wait(browser, "#nav:not([hidden])")


def open_page(browser: WebDriver, story: Story, route: str, css: str) -> None:
    browser.execute_script("document.getElementById('main').dataset.state = 'stale'")
    browser.get(f"{story.url}/console/{route}")
    _wait(browser, css)


def _number(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


def test_the_whatif_page_shows_the_apis_histogram_and_list(driver: WebDriver, story: Story) -> None:
    with story.client(Role.AUDITOR) as auditor:
        answer = auditor.compare_rulebooks("taobao-classic", base="strict", as_of=AS_OF)
    assert answer.level_shifts is not None and answer.multiplier_changes  # the story shows both
    sign_in(driver, story, Role.AUDITOR)
    assert _all(driver, "#nav-whatif")[0].is_displayed()
    route = f"#/whatif?base=strict&rulebook=taobao-classic&as_of={AS_OF_DATE}"
    open_page(driver, story, route, "#whatif-levels svg[data-chart=levels]")

    bars = _all(driver, "#whatif-levels g.bar")
    shown = [(b.get_attribute("data-levels"), b.get_attribute("data-sellers")) for b in bars]
    assert shown == [(str(s.levels), str(s.sellers)) for s in answer.level_shifts]
    counts = [_text(b.find_elements("css selector", "text.count")[0]) for b in bars]
    assert counts == [str(s.sellers) for s in answer.level_shifts]
    widths = [
        float(b.find_elements("css selector", "rect")[0].get_attribute("width") or 0) for b in bars
    ]
    most = max(s.sellers for s in answer.level_shifts)
    assert [w == max(widths) for w in widths] == [s.sellers == most for s in answer.level_shifts]

    rows = _all(driver, "#multiplier-changes tbody tr")
    assert [r.get_attribute("data-seller") for r in rows] == [
        m.seller_id for m in answer.multiplier_changes
    ]
    for row, change in zip(rows, answer.multiplier_changes, strict=True):
        figures = {
            name: _text(row.find_elements("css selector", f"[data-figure={name}]")[0])
            for name in ("base", "rulebook", "change")
        }
        assert figures["base"] == f"{TIMES} {_number(change.base)}"
        assert figures["rulebook"] == f"{TIMES} {_number(change.rulebook)}"
        assert figures["change"].lstrip("+") == _number(change.change)
    for name in ("sellers", "searchable_changed", "sort_hidden_changed", "multiplier_changed"):
        assert _text(_all(driver, f"[data-figure={name}]")[0]) == str(getattr(answer, name))


def test_across_scales_the_page_counts_where_sellers_land(driver: WebDriver, story: Story) -> None:
    with story.client(Role.ADMIN) as admin:
        answer = admin.compare_rulebooks("ebay-style", base="taobao-classic", as_of=AS_OF)
    assert answer.level_shifts is None
    sign_in(driver, story, Role.ADMIN)
    route = f"#/whatif?base=taobao-classic&rulebook=ebay-style&as_of={AS_OF_DATE}"
    open_page(driver, story, route, "#whatif-levels svg[data-chart=levels]")
    assert _all(driver, "[data-scales=different]")
    assert _all(driver, "#whatif-levels g.bar[data-levels]") == []
    bars = _all(driver, "#whatif-levels g.bar")
    shown = [
        (
            b.get_attribute("data-before"),
            b.get_attribute("data-after"),
            b.get_attribute("data-sellers"),
        )
        for b in bars
    ]
    assert shown == [(m.before, m.after, str(m.sellers)) for m in answer.level_moves]


@pytest.mark.parametrize(
    ("role", "page", "route", "drawn", "path"),
    [
        (
            Role.READER,
            "whatif",
            "#/whatif?rulebook=taobao-classic",
            "svg[data-chart]",
            "/v1/whatif",
        ),
        (Role.AUDITOR, "operations", "#/operations", "#ops-read-models", "/v1/operations"),
    ],
)
def test_a_key_without_the_role_does_not_see_the_page(
    driver: WebDriver, story: Story, role: Role, page: str, route: str, drawn: str, path: str
) -> None:
    """Neither its link, nor its content, nor a request for its answer."""
    sign_in(driver, story, role)
    assert _all(driver, f"#nav-{page}")[0].is_displayed() is False
    requests_sent(driver)  # the sign-in's
    open_page(driver, story, route, f"[data-refused={page}]")
    assert _all(driver, drawn) == []
    assert [r for r in requests_sent(driver) if path in str(r["url"])] == []


def _figure(browser: WebDriver, scope: str, name: str) -> str:
    return _text(_all(browser, f"{scope} [data-figure={name}]")[0])


def test_the_operations_page_shows_the_apis_status(driver: WebDriver, story: Story) -> None:
    with story.client(Role.READER) as reader, pytest.raises(errors.Forbidden):
        reader.get_operations_status()  # a problem for the page to count
    sign_in(driver, story, Role.ADMIN)
    assert _all(driver, "#nav-operations")[0].is_displayed()
    open_page(driver, story, "#/operations", "#ops-recent-refusals")
    with story.client(Role.ADMIN) as admin:
        status = admin.get_operations_status()

    assert _figure(driver, "#ops-models", "log_position") == str(status.log_position)
    for model in status.projections:
        row = f"#ops-read-models tr[data-model={model.name}]"
        assert _figure(driver, row, "position") == str(model.position)
        assert _figure(driver, row, "lag_events") == str(model.lag_events)
    assert _figure(driver, "#ops-deadlines", "due") == str(status.deadlines.due)
    shown_keys = [row.get_attribute("data-key") for row in _all(driver, "#ops-keys tbody tr")]
    assert shown_keys == [key.id for key in status.keys]
    counts = {
        row.get_attribute("data-code"): _figure(
            driver, f"tr[data-code={row.get_attribute('data-code')}]", "count"
        )
        for row in _all(driver, "#ops-refusal-counts tbody tr")
    }
    assert counts == {count.code: str(count.count) for count in status.refusals}
    assert int(counts["forbidden"]) >= 1
    screenshot(driver, "operations")
