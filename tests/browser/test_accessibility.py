"""The console's accessibility in Chromium, on every page the demo story
opens: each form control has a name, each picture that means something has a
text alternative, text stands out from its background (WCAG 2.x AA), the
keyboard alone reaches every control, shows where it is and signs in, and
each page declares its language, one main landmark and headings in order.

The checks are written by hand in tests/browser/accessibility.js and run in
the page; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from api.auth import Role
from tests.browser.conftest import Story
from tests.browser.test_console import AS_OF_DATE, BUYER, SELLER, TRADE, open_page, sign_in

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

CHECKS = Path(__file__).with_name("accessibility.js").read_text(encoding="utf-8")
# Each page the story opens: its route and what shows it is fully drawn. The
# sign-in page has no route: it is what a tab without a key sees.
PAGES: dict[str, tuple[str, str] | None] = {
    "sign-in": None,
    "look-up": ("#/", "form.controls"),
    "seller": (f"#/seller/{SELLER}?as_of={AS_OF_DATE}", "#penalty-series svg.chart"),
    "trade": (f"#/trade/{TRADE}", "ol.timeline"),
    "buyer": (f"#/buyer/{BUYER}?as_of={AS_OF_DATE}", "#trades [data-figure]"),
    "explanation": (f"#/explain/{SELLER}?role=seller", "#pages[data-state]"),
    "audit": ("#/audit", "#lag [data-figure=log_position]"),
    "what-if": ("#/whatif", "#whatif-levels svg[data-chart=levels]"),
    "operations": ("#/operations", "#ops-recent-refusals"),
}
# More TAB presses than any page has links and controls: a page that keeps
# focus in a loop fails instead of hanging.
MOST_TABS = 200
WAIT_SECONDS = 20


def run(browser: WebDriver, check: str) -> Any:
    """The answer of one of accessibility.js's checks on the page shown."""
    return browser.execute_script(CHECKS, check)


@dataclass(frozen=True)
class Survey:
    """What the checks found on one page: each static check's offences, the
    element each TAB press focused (with whether it showed focus) and the
    header links and page controls a keyboard user has to reach."""

    offences: dict[str, list[str]]
    tabbed: list[tuple[str, bool]]
    must_reach: list[str]


# --- Driving the pages -------------------------------------------------------------


def _keys(browser: WebDriver, keys: str) -> None:
    """Keys typed as a person would: into whatever has focus."""
    from selenium.webdriver.common.action_chains import ActionChains  # noqa: PLC0415

    ActionChains(browser).send_keys(keys).perform()


def _walk(browser: WebDriver) -> list[tuple[str, bool]]:
    """Each element TAB focuses from the top of the page, until focus leaves
    the page or comes round to the first again."""
    from selenium.webdriver.common.keys import Keys  # noqa: PLC0415

    assert run(browser, "toTop"), "focus could not be put at the top of the page"
    walk: list[tuple[str, bool]] = []
    for _ in range(MOST_TABS):
        _keys(browser, Keys.TAB)
        now = run(browser, "focused")
        if now is None or (walk and now["where"] == walk[0][0]):
            return walk
        walk.append((now["where"], now["indicated"]))
    pytest.fail(f"{MOST_TABS} TAB presses did not leave the page: focus is trapped")


def _signed_out(browser: WebDriver, story: Story) -> None:
    browser.get(f"{story.url}/console/")
    browser.execute_script("sessionStorage.clear()")
    open_page(browser, story, "", "#sign-in")


def _show(browser: WebDriver, story: Story, page: str) -> None:
    route = PAGES[page]
    if route is None:
        _signed_out(browser, story)
        return
    who = browser.execute_script("return document.getElementById('who-role')?.textContent")
    if not str(who).startswith(f"{Role.ADMIN} key "):
        sign_in(browser, story, Role.ADMIN)  # an admin's key sees every page
    open_page(browser, story, *route)


def _survey(browser: WebDriver, story: Story, page: str) -> Survey:
    _show(browser, story, page)
    offences = {
        check: run(browser, check) for check in ("names", "images", "contrast", "structure")
    }
    return Survey(offences, _walk(browser), run(browser, "mustReach"))


@pytest.fixture(scope="module")
def survey(driver: WebDriver, story: Story) -> Callable[[str], Survey]:
    """Each page's survey, taken once however many tests read it."""
    done: dict[str, Survey] = {}

    def of(page: str) -> Survey:
        if page not in done:
            done[page] = _survey(driver, story, page)
        return done[page]

    return of


# --- The checks, page by page ------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_every_form_control_has_a_name(survey: Callable[[str], Survey], page: str) -> None:
    assert survey(page).offences["names"] == []


@pytest.mark.parametrize("page", PAGES)
def test_every_picture_has_a_text_alternative_or_is_hidden_as_decoration(
    survey: Callable[[str], Survey], page: str
) -> None:
    assert survey(page).offences["images"] == []


@pytest.mark.parametrize("page", PAGES)
def test_text_stands_out_from_its_background(survey: Callable[[str], Survey], page: str) -> None:
    assert survey(page).offences["contrast"] == []


@pytest.mark.parametrize("page", PAGES)
def test_tab_reaches_every_header_link_and_page_control_and_shows_focus(
    survey: Callable[[str], Survey], page: str
) -> None:
    found = survey(page)
    reached = {where for where, _ in found.tabbed}
    assert [where for where in found.must_reach if where not in reached] == []
    assert [where for where, indicated in found.tabbed if not indicated] == []


@pytest.mark.parametrize("page", PAGES)
def test_the_page_has_a_language_one_main_landmark_and_headings_in_order(
    survey: Callable[[str], Survey], page: str
) -> None:
    assert survey(page).offences["structure"] == []


# --- The keyboard alone signs in ---------------------------------------------------


def test_a_key_typed_and_entered_from_the_keyboard_alone_signs_in(
    driver: WebDriver, story: Story
) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.common.keys import Keys  # noqa: PLC0415
    from selenium.webdriver.support.wait import WebDriverWait  # noqa: PLC0415

    _signed_out(driver, story)
    assert run(driver, "toTop")
    for _ in range(MOST_TABS):
        _keys(driver, Keys.TAB)
        if driver.switch_to.active_element.get_attribute("id") == "api-key":
            break
    else:
        pytest.fail("TAB never reached the key's field")
    _keys(driver, story.keys[Role.AUDITOR] + Keys.ENTER)
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "#nav:not([hidden])")
    )
    who = driver.find_element(By.ID, "who-role").get_attribute("textContent") or ""
    assert who.startswith(f"{Role.AUDITOR} key ")


# --- The checks themselves ---------------------------------------------------------

# One offence for each check to find, drawn into a page: if a check let it
# pass, every page above would pass it unexamined.
OFFENCES = """
<div id="offences">
  <h4>A heading two levels down</h4>
  <input id="unnamed">
  <svg id="unnamed-picture" viewBox="0 0 1 1"><rect width="1" height="1"/></svg>
  <p id="faint">Grey on white</p>
  <button id="ringless">No ring</button>
</div>
"""
# Set through the CSSOM: the console's content security policy ignores style attributes.
OFFENDING_STYLES = """
document.getElementById('faint').style.cssText = 'color: #aaa; background: #fff';
document.getElementById('ringless').style.outline = 'none';
"""


@pytest.fixture
def offending(driver: WebDriver, story: Story) -> Iterator[None]:
    """The sign-in page with OFFENCES drawn into it, a second main and no
    language; drawn again from the server afterwards."""
    _signed_out(driver, story)
    driver.execute_script(
        "document.getElementById('main').insertAdjacentHTML('beforeend', arguments[0]);"
        "document.body.append(document.createElement('main'));"
        "document.documentElement.lang = '';",
        OFFENCES,
    )
    driver.execute_script(OFFENDING_STYLES)
    yield
    driver.refresh()


@pytest.mark.usefixtures("offending")
def test_each_check_finds_the_offence_drawn_for_it(driver: WebDriver) -> None:
    assert any("input#unnamed" in offence for offence in run(driver, "names"))
    assert any("svg#unnamed-picture" in offence for offence in run(driver, "images"))
    assert any("p#faint" in offence for offence in run(driver, "contrast"))
    structure = run(driver, "structure")
    assert "html: no lang" in structure and "2 <main> landmarks, not one" in structure
    assert any("h4 after h1" in offence for offence in structure)
    driver.execute_script("document.getElementById('ringless').focus()")
    assert run(driver, "focused") == {"where": "button#ringless", "indicated": False}
    unreachable = "document.getElementById('unnamed').tabIndex = -1"
    driver.execute_script(unreachable)
    assert "input#unnamed" not in {where for where, _ in _walk(driver)}
    assert "input#unnamed" in run(driver, "mustReach")
