"""The console's pages in Chromium against the demo story: what they show is
what the API answers, the charts have a vertex per point of their series,
the audit page checks the signed head and inclusion proofs itself, a key
sees only what its role may, and no request leaves for another host."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx2 as httpx
import pytest

from api.answers import RatingExplained
from api.auth import Role
from ledger import commands as c
from ledger import merkle
from ledger.events import Score
from tests.browser.conftest import Story, requests_sent, screenshot
from tools import scenario

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

SELLER = "bob-shop"
TRADE = "T-1001"
COMPLAINED_TRADE = "T-1003"  # disputed, and a complaint upheld
BUYER = "alice"
# A pair the story leaves alone, whose ratings the tests below add: some
# counted, some excluded by a rule (docs/rules.md, section 3).
RATED_SELLER = "erin-shop"
RATED_BUYER = "frank"
AS_OF_DATE = "2026-02-14"
AS_OF = datetime(2026, 2, 14, 23, 59, 59, tzinfo=UTC)  # the end of that day, as the page asks
WEEKS_13 = timedelta(days=91)
PAGE_SECONDS = 20


# --- Driving the pages -------------------------------------------------------------


def _wait(browser: WebDriver, css: str, *, state: str = "ready") -> WebElement:
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.support import expected_conditions as ec  # noqa: PLC0415
    from selenium.webdriver.support.wait import WebDriverWait  # noqa: PLC0415

    WebDriverWait(browser, PAGE_SECONDS).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, f"main[data-state='{state}']"))
    )
    found: WebElement = WebDriverWait(browser, PAGE_SECONDS).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css))
    )
    return found


def _text(browser: WebDriver, css: str) -> str:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    text: str = browser.find_element(By.CSS_SELECTOR, css).get_attribute("textContent") or ""
    return text.strip()


def _all(browser: WebDriver, css: str) -> list[WebElement]:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    return browser.find_elements(By.CSS_SELECTOR, css)


def sign_in(browser: WebDriver, story: Story, role: Role) -> None:
    """A fresh tab state, then the key typed into the sign-in form."""
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    browser.get(f"{story.url}/console/")
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    _wait(browser, "#api-key")
    browser.find_element(By.ID, "api-key").send_keys(story.keys[role])
    browser.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit]").click()
    _wait(browser, "#nav:not([hidden])")
    assert _text(browser, "#who-role").startswith(f"{role} key ")


def _stale(browser: WebDriver) -> None:
    """Mark the page shown: the next wait is for the page drawn after it."""
    browser.execute_script("document.getElementById('main').dataset.state = 'stale'")


def open_page(browser: WebDriver, story: Story, route: str, css: str) -> None:
    _stale(browser)
    browser.get(f"{story.url}/console/{route}")
    _wait(browser, css)


@pytest.fixture
def sent(driver: WebDriver, story: Story) -> Iterator[list[dict[str, object]]]:
    """The requests a test's pages send; afterwards, each was to this server
    and no key was in a URL."""
    requests_sent(driver)  # what earlier tests left
    seen: list[dict[str, object]] = []
    yield seen
    seen += requests_sent(driver)
    _check_requests(seen, story)


def _check_requests(seen: list[dict[str, object]], story: Story) -> None:
    origin = urlsplit(story.url)
    assert seen, "the performance log recorded no request"
    for request in seen:
        url = str(request["url"])
        if url.startswith("data:"):
            continue  # the page's empty icon: nothing is fetched
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == (origin.scheme, origin.netloc), url
        assert not any(key in url for key in story.keys.values()), "an API key in a URL"


# --- Helpers for the expected text ------------------------------------------------


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.2f} %"


def _score(mean: float | None) -> str:
    return "—" if mean is None else f"{mean:.2f}"


def _number(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _vertices(polyline: WebElement) -> int:
    points = (polyline.get_attribute("points") or "").split()
    assert all(re.fullmatch(r"-?[\d.]+,-?[\d.]+", point) for point in points), points
    return len(points)


# --- The tests ---------------------------------------------------------------------


def test_the_root_leads_to_the_console_whose_files_need_no_key(story: Story) -> None:
    home = httpx.get(f"{story.url}/", follow_redirects=False)
    assert home.status_code == 307 and home.headers["location"] == "/console/"
    page = httpx.get(f"{story.url}/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    for name in re.findall(r'(?:src|href)="([^"#]+)"', page.text):
        if name.startswith("data:"):
            continue
        assert "//" not in name, name
        answer = httpx.get(f"{story.url}/console/{name}")
        assert answer.status_code == 200, name
    # The modules the page imports, and the modules they import, are all here.
    script = httpx.get(f"{story.url}/console/app.js").text
    for module in re.findall(r"from '\./([a-z]+\.js)'", script):
        assert httpx.get(f"{story.url}/console/{module}").status_code == 200, module


def test_an_unknown_key_is_refused_at_sign_in(driver: WebDriver, story: Story) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    driver.get(f"{story.url}/console/")
    driver.execute_script("sessionStorage.clear()")
    driver.refresh()
    _wait(driver, "#api-key").send_keys("tl_00000000_not-a-key")
    driver.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit]").click()
    _wait(driver, "#sign-in-error:not(:empty)")
    assert "not known" in _text(driver, "#sign-in-error")
    assert driver.execute_script("return sessionStorage.length") == 0


def test_the_seller_page_shows_the_apis_figures(
    driver: WebDriver, story: Story, sent: list[dict[str, object]]
) -> None:
    sign_in(driver, story, Role.READER)
    open_page(driver, story, f"#/seller/{SELLER}?as_of={AS_OF_DATE}", "#penalty-series svg.chart")
    with story.client(Role.READER) as reader:
        credit = reader.get_credit(SELLER, as_of=AS_OF)
        dsr = reader.get_seller_dsr(SELLER, as_of=AS_OF)
        penalty = reader.get_seller_penalty(SELLER, as_of=AS_OF)

    # The credit badge: the level's icon, as many times as its name counts, and its name.
    assert credit.ratings.positive > 0  # the story gives the seller something to show
    assert _text(driver, "[data-figure=score]") == str(credit.score)
    assert _text(driver, "#credit [data-figure=level]") == credit.level.name
    (badge,) = _all(driver, "#credit .badge")
    assert badge.get_attribute("data-icon") == credit.level.icon
    glyphs = len(_all(driver, "#credit .badge svg.glyph"))
    count = re.match(r"\d+", credit.level.name)
    assert glyphs == ((min(int(count[0]), 5) if count else 1) if credit.level.icon else 0)
    for name in ("positive_rate_lifetime", "positive_rate_180d"):
        assert _text(driver, f"[data-figure={name}]") == _percent(getattr(credit, name)), name
    assert _text(driver, "#credit .stamp").startswith(credit.rulebook)

    # The four shop scores, each a bar as long as its score.
    assert dsr.count > 0
    for key in ("as_described", "service", "shipping_speed", "logistics"):
        mean = getattr(dsr, key)
        assert _text(driver, f"[data-figure=dsr_{key}]") == _score(mean), key
        (fill,) = _all(driver, f"[data-dsr={key}] rect.fill")
        assert float(fill.get_attribute("width") or "nan") == pytest.approx((mean or 0) / 5 * 100)
    assert _text(driver, "[data-figure=dsr_count]") == str(dsr.count)

    # The penalty, and each reason with its figure.
    assert _text(driver, "[data-figure=searchable]") == ("yes" if penalty.searchable else "no")
    assert _text(driver, "[data-figure=multiplier]") == f"\u00d7 {_number(penalty.multiplier)}"
    assert _text(driver, "[data-figure=verified]") == ("yes" if penalty.verified else "no")
    shown = [row.get_attribute("data-reason") for row in _all(driver, "#penalty [data-reason]")]
    assert shown == [reason.code for reason in penalty.reasons]
    assert bool(_all(driver, "[data-figure=no_reasons]")) == (not penalty.reasons)

    screenshot(driver, "seller")


def test_each_chart_has_a_vertex_per_point_of_its_series(
    driver: WebDriver, story: Story, sent: list[dict[str, object]]
) -> None:
    """One request per series (the credit series draws the score, level and
    rate charts), and a vertex per point where the line has a value."""
    sign_in(driver, story, Role.READER)
    open_page(driver, story, f"#/seller/{SELLER}?as_of={AS_OF_DATE}", "#penalty-series svg.chart")
    start = AS_OF - WEEKS_13
    with story.client(Role.READER) as reader:
        credit_series = reader.get_credit_series(SELLER, from_=start, to=AS_OF, step="week")
        dsr_series = reader.get_seller_dsr_series(SELLER, from_=start, to=AS_OF, step="week")
        penalty_series = reader.get_seller_penalty_series(
            SELLER, from_=start, to=AS_OF, step="week"
        )
        violations = reader.get_seller_violations_series(SELLER, from_=start, to=AS_OF, step="week")
    window = _all(driver, "#window")[0]
    assert window.get_attribute("data-from") == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert window.get_attribute("data-to") == AS_OF.strftime("%Y-%m-%dT%H:%M:%SZ")
    sent += requests_sent(driver)
    asked = [str(r["url"]) for r in sent if "/series" in str(r["url"])]
    assert len(asked) == 4, asked
    credit = credit_series.points
    charts: dict[str, dict[str, list[Any]]] = {
        "credit-series": {"score": [p.score for p in credit]},
        "level-series": {"level": [p.level.index for p in credit]},
        "rate-series": {
            "positive_rate_lifetime": [p.positive_rate_lifetime for p in credit],
            "positive_rate_180d": [p.positive_rate_180d for p in credit],
        },
        "violations-series": {
            "general": [p.points.general for p in violations.points],
            "serious": [p.points.serious for p in violations.points],
        },
        "dsr-series": {
            key: [getattr(p, key) for p in dsr_series.points]
            for key in ("as_described", "service", "shipping_speed", "logistics")
        },
        "penalty-series": {"multiplier": [p.multiplier for p in penalty_series.points]},
    }
    for chart, lines in charts.items():
        (svg,) = _all(driver, f"svg[data-chart={chart}]")
        points = len(next(iter(lines.values())))
        assert points > 1 and svg.get_attribute("data-points") == str(points), chart
        for line, values in lines.items():
            (polyline,) = _all(driver, f"svg[data-chart={chart}] polyline[data-line={line}]")
            assert _vertices(polyline) == sum(v is not None for v in values) > 0, (chart, line)


def test_the_rulebook_switch_reads_the_figures_again_under_the_rulebook_chosen(
    driver: WebDriver, story: Story, sent: list[dict[str, object]]
) -> None:
    from selenium.webdriver.support.select import Select  # noqa: PLC0415

    sign_in(driver, story, Role.READER)
    open_page(driver, story, f"#/seller/{SELLER}?as_of={AS_OF_DATE}", "#credit .stamp")
    with story.client(Role.READER) as reader:
        ebay = reader.get_credit(SELLER, as_of=AS_OF, rulebook="ebay-style")
        graded = reader.get_seller_level(SELLER, as_of=AS_OF, rulebook="ebay-style").level
    # taobao-classic grades no seller level; ebay-style does.
    assert (
        _all(driver, "#seller-level [data-figure=seller_level]")[0].get_attribute("data-level")
        == ""
    )

    _stale(driver)
    Select(_all(driver, "#rulebook")[0]).select_by_value("ebay-style")
    _wait(driver, "#credit .stamp")
    assert "rulebook=ebay-style" in driver.current_url
    assert _text(driver, "#credit .stamp").startswith(ebay.rulebook)
    assert _text(driver, "#credit [data-figure=level]") == ebay.level.name
    assert _all(driver, "#credit .badge")[0].get_attribute("data-icon") == ebay.level.icon
    assert _text(driver, "[data-figure=score]") == str(ebay.score)
    assert graded is not None
    shown = _all(driver, "#seller-level [data-figure=seller_level]")[0]
    assert shown.get_attribute("data-level") == graded.level
    assert _text(driver, "#seller-level [data-figure=defects]") == str(graded.defects)
    assert _text(driver, "#seller-level [data-figure=level_trades]") == str(graded.trades)


def test_the_trade_page_shows_every_fact_of_the_trade(
    driver: WebDriver, story: Story, sent: list[dict[str, object]]
) -> None:
    sign_in(driver, story, Role.READER)
    open_page(driver, story, f"#/trade/{TRADE}", "ol.timeline")
    with story.client(Role.READER) as reader:
        trade = reader.get_trade(TRADE)
    assert _text(driver, "[data-figure=state]") == "succeeded"
    items = _all(driver, "ol.timeline > li")
    assert len(trade.facts) >= 5 and len(items) == len(trade.facts)
    for item, fact in zip(items, trade.facts, strict=True):
        assert item.get_attribute("data-position") == str(fact.position)
        assert item.get_attribute("data-topic") == fact.topic
        text = item.get_attribute("textContent") or ""
        for moment in (fact.occurred_at, fact.recorded_at):
            shown = moment.strftime("%Y-%m-%d %H:%M:%S")
            assert shown in text, (fact.position, shown)
        assert f"#{fact.version}" in text
        recorder = item.find_element("css selector", "[data-figure=recorded_by]")
        assert recorder.get_attribute("textContent") == fact.recorded_by == scenario.CALLER
    # A reader's key may not audit: positions are not links to the audit page.
    assert _all(driver, "ol.timeline a[href^='#/audit']") == []
    assert _text(driver, "[data-figure=complaint]") == "No complaint."
    screenshot(driver, "trade")


def test_a_trades_complaint_is_in_its_timeline_in_log_order(
    driver: WebDriver, story: Story, sent: list[dict[str, object]]
) -> None:
    sign_in(driver, story, Role.READER)
    open_page(driver, story, f"#/trade/{COMPLAINED_TRADE}", "ol.timeline")
    with story.client(Role.READER) as reader:
        trade = reader.get_trade(COMPLAINED_TRADE)
    assert trade.complaint is not None and trade.complaint.outcome == "upheld"
    both = sorted([*trade.facts, *trade.complaint.facts], key=lambda fact: fact.position)
    items = _all(driver, "ol.timeline > li")
    assert [i.get_attribute("data-position") for i in items] == [str(f.position) for f in both]
    complaint_positions = {str(f.position) for f in trade.complaint.facts}
    assert {
        i.get_attribute("data-position") for i in items if i.get_attribute("data-of") == "complaint"
    } == complaint_positions
    assert _text(driver, "[data-figure=complaint]") == trade.complaint.complaint_id
    assert _text(driver, "[data-figure=complaint_outcome]") == "upheld"


def test_the_audit_page_verifies_the_head_and_an_inclusion_and_refuses_a_tampered_proof(
    driver: WebDriver, story: Story, sent: list[dict[str, object]]
) -> None:
    sign_in(driver, story, Role.AUDITOR)
    with story.client(Role.READER) as reader:
        position = reader.get_trade(TRADE).facts[2].position
    open_page(driver, story, f"#/audit?position={position}", "[data-verdict=inclusion]")
    with story.client(Role.AUDITOR) as auditor:
        head = auditor.get_tree_head()
    assert _text(driver, "[data-figure=tree_size]") == str(head.tree_size)
    assert _text(driver, "[data-figure=key_id]") == head.key_id
    assert _text(driver, "[data-verdict=head] .word") == "verified"
    assert _text(driver, "[data-verdict=inclusion] .word") == "verified"
    assert _text(driver, "[data-figure=position]") == str(position)
    screenshot(driver, "audit")

    # The proof as served checks; one hash of it changed, or another leaf, does not.
    (box,) = _all(driver, "#proof")
    proof = json.loads(box.get_attribute("value") or "{}")
    assert proof["position"] == position and proof["proof"]
    assert _check_pasted(driver, proof) == "verified"
    tampered = {**proof, "proof": [proof["proof"][1], proof["proof"][0], *proof["proof"][2:]]}
    if len(proof["proof"]) < 2:
        tampered = {**proof, "proof": [proof["leaf_hash"]]}
    assert _check_pasted(driver, tampered) == "does not verify"
    moved = {**proof, "leaf_index": proof["leaf_index"] ^ 1}
    assert _check_pasted(driver, moved) == "does not verify"
    other = {**proof, "position": position + 1}
    assert _check_pasted(driver, other) == "does not verify"


def _check_pasted(browser: WebDriver, proof: dict[str, object]) -> str:
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.support.wait import WebDriverWait  # noqa: PLC0415

    box = browser.find_element(By.ID, "proof")
    box.clear()
    box.send_keys(json.dumps(proof))
    browser.find_element(By.CSS_SELECTOR, "#paste-form button[type=submit]").click()
    WebDriverWait(browser, PAGE_SECONDS).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "[data-verdict=pasted]")
    )
    return _text(browser, "[data-verdict=pasted] .word")


def test_a_readers_key_does_not_see_the_audit_page(
    driver: WebDriver, story: Story, sent: list[dict[str, object]]
) -> None:
    sign_in(driver, story, Role.READER)
    assert _all(driver, "#nav-audit")[0].is_displayed() is False
    open_page(driver, story, "#/audit", "[data-refused=audit]")
    assert _all(driver, "[data-verdict]") == []
    sent += requests_sent(driver)
    audit_calls = [r for r in sent if "/v1/audit" in str(r["url"])]
    assert audit_calls == []


def test_the_key_goes_in_the_authorization_header_only(
    driver: WebDriver, story: Story, sent: list[dict[str, object]]
) -> None:
    sign_in(driver, story, Role.AUDITOR)
    sent += requests_sent(driver)  # the sign-in (the tab first tried its previous key)
    open_page(driver, story, f"#/trade/{TRADE}", "ol.timeline")
    page = requests_sent(driver)
    sent += page
    api_calls = [r for r in page if urlsplit(str(r["url"])).path.startswith("/v1/")]
    assert api_calls
    for request in api_calls:
        headers = {str(k).lower(): v for k, v in request["headers"].items()}
        assert headers.get("authorization") == f"Bearer {story.keys[Role.AUDITOR]}", request
    stored = driver.execute_script("return Object.keys(localStorage).length")
    assert stored == 0  # the key is in this tab's sessionStorage only


# --- The buyer, a credit's explanation, consistency ---------------------------------


def _check_the_tier_thresholds(driver: WebDriver, story: Story, stamp: str, tier: str) -> None:
    """Every tier of the rulebook the figures were reached under, with what
    it takes, the buyer's own marked."""
    with story.client(Role.READER) as reader:
        book_id = next(r.id for r in reader.list_rulebooks().rulebooks if r.scoring_stamp == stamp)
        tiers = reader.get_rulebook(book_id).scoring.buyer_tiers
    table = _all(driver, "#tier-thresholds")[0]
    assert table.get_attribute("data-window-days") == str(tiers.window_days)
    rows = _all(driver, "#tier-thresholds tbody tr")
    assert [row.get_attribute("data-tier") for row in rows] == [t.name for t in tiers.tiers]
    for row, t in zip(rows, tiers.tiers, strict=True):
        cells = {
            name: row.find_element("css selector", f"[data-figure={name}]").text
            for name in ("min_purchases", "min_net_spend")
        }
        assert cells == {
            "min_purchases": str(t.min_purchases),
            "min_net_spend": _amount(t.min_net_spend_major * 100),
        }
        assert row.get_attribute("data-current") == str(t.name == tier).lower()
    assert len(tiers.tiers) > 1 and tier in {t.name for t in tiers.tiers}


def test_the_buyer_page_shows_the_apis_history_tier_credit_and_trades(
    driver: WebDriver, story: Story, sent: list[dict[str, object]]
) -> None:
    sign_in(driver, story, Role.READER)
    open_page(driver, story, f"#/buyer/{BUYER}?as_of={AS_OF_DATE}", "#trades [data-figure]")
    with story.client(Role.READER) as reader:
        history = reader.get_buyer_history(BUYER, as_of=AS_OF)
        credit = reader.get_credit(BUYER, role="buyer", as_of=AS_OF)
        trades = reader.list_buyer_trades(BUYER)

    assert (
        history.trades > 0 and history.disputes > 0
    )  # the story gives the buyer something to show
    assert _text(driver, "[data-figure=tier_label]") == history.tier_label
    assert _text(driver, "[data-figure=tier]") == history.tier
    assert _text(driver, "[data-figure=window_purchases]") == str(history.window_purchases)
    assert _text(driver, "[data-figure=window_net_spend]") == _amount(
        history.window_net_spend_minor
    )
    _check_the_tier_thresholds(driver, story, history.rulebook, history.tier)
    for name in ("trades", "purchases", "ratings_given", "ratings_received", "fake_trades"):
        assert _text(driver, f"#history [data-figure={name}]") == str(getattr(history, name)), name
    assert _text(driver, "[data-figure=net_spend]") == _amount(history.net_spend_minor)
    assert _text(driver, "[data-figure=refunds]") == (
        f"{history.refunds}, {_amount(history.refunded_minor)}"
    )
    assert _text(driver, "[data-figure=disputes]") == (
        f"{history.disputes}: {history.disputes_won} won, {history.disputes_lost} lost"
    )
    assert _text(driver, "[data-figure=ratings_given_negative_share]") == _percent(
        history.ratings_given_negative_share
    )
    assert _text(driver, "#history .stamp").startswith(history.rulebook)

    # The credit as a buyer, not as a seller.
    assert _text(driver, "#buyer-credit [data-figure=score]") == str(credit.score)
    assert _text(driver, "#buyer-credit [data-figure=level]") == credit.level.name
    for name in ("positive_rate_lifetime", "positive_rate_180d"):
        assert _text(driver, f"#buyer-credit [data-figure={name}]") == _percent(
            getattr(credit, name)
        )
    link = _all(driver, "#buyer-credit #explain-link")[0].get_attribute("href") or ""
    assert link.endswith(f"#/explain/{BUYER}?role=buyer&as_of={AS_OF_DATE}")

    # The first page of trades, each a link to its trade.
    links = _all(driver, "#buyer-trades li a")
    assert [a.get_attribute("textContent") for a in links] == [t.trade_id for t in trades.trades]
    assert [urlsplit(a.get_attribute("href") or "").fragment for a in links] == [
        f"/trade/{t.trade_id}" for t in trades.trades
    ]
    screenshot(driver, "buyer")


def _amount(minor: int) -> str:
    return f"{'-' if minor < 0 else ''}{abs(minor) // 100}.{abs(minor) % 100:02d}"


@pytest.fixture(scope="module")
def rated(story: Story) -> int:
    """Five ratings of ``RATED_SELLER`` by ``RATED_BUYER``: two counted, one
    excluded for the amount, one as a further positive on the same item
    within 14 days, a neutral its rater revised to positive the next day.
    The log position the last fact was written at."""
    start = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
    trades: list[tuple[str, str, int, Score]] = [
        ("R-1", "hat", 100, "positive"),
        ("R-2", "mug", 5_000, "positive"),
        ("R-3", "mug", 5_000, "positive"),
        ("R-4", "vase", 8_000, "negative"),
        ("R-5", "lamp", 6_000, "neutral"),
    ]
    with story.client(Role.SERVICE) as service:
        for member in (RATED_SELLER, RATED_BUYER):
            service.register_member(c.RegisterMember(member_id=member, occurred_at=start))
        for number, (trade_id, item, amount, score) in enumerate(trades):
            at = start + timedelta(days=number + 1)
            service.create_trade(
                c.CreateTrade(
                    trade_id=trade_id,
                    buyer_id=RATED_BUYER,
                    seller_id=RATED_SELLER,
                    item_id=item,
                    amount_minor=amount,
                    currency="CNY",
                    goods_kind="physical",
                    shipping="express",
                    occurred_at=at,
                )
            )
            hour = timedelta(hours=1)
            service.pay_into_escrow(c.PayIntoEscrow(trade_id=trade_id, occurred_at=at + hour))
            service.ship_trade(c.ShipTrade(trade_id=trade_id, occurred_at=at + 2 * hour))
            confirmed = c.ConfirmReceipt(trade_id=trade_id, occurred_at=at + 3 * hour)
            service.confirm_receipt(confirmed)
            rating = c.GiveRating(
                trade_id=trade_id, rater="buyer", score=score, occurred_at=at + 4 * hour
            )
            service.give_rating(rating)
        revised = c.ReviseRating(trade_id="R-5", rater="buyer", occurred_at=at + timedelta(days=1))
        service.revise_rating(revised)
        written = service.written
    with story.client(Role.AUDITOR) as auditor:
        auditor.get_credit(RATED_SELLER, min_position=written)
        deadline = datetime.now(UTC) + timedelta(seconds=PAGE_SECONDS)
        while auditor.get_tree_head().tree_size < written:
            assert datetime.now(UTC) < deadline, "the tree head did not cover the ratings in time"
            time.sleep(0.1)
    return written


def test_the_explanation_lists_every_rating_the_api_lists_and_filters_the_excluded(
    driver: WebDriver, story: Story, rated: int, sent: list[dict[str, object]]
) -> None:
    from selenium.webdriver.support.select import Select  # noqa: PLC0415

    # From the seller page's credit card, one rating a page: "More" until the end.
    sign_in(driver, story, Role.READER)
    open_page(driver, story, f"#/seller/{RATED_SELLER}", "#credit #explain-link")
    link = _all(driver, "#credit #explain-link")[0].get_attribute("href") or ""
    assert urlsplit(link).fragment == f"/explain/{RATED_SELLER}?role=seller"
    open_page(driver, story, f"#/explain/{RATED_SELLER}?role=seller&limit=1", "#pages")
    clicks = 0
    while _all(driver, "#pages[data-state=more]"):
        _all(driver, "#more")[0].click()
        clicks += 1
        _wait(driver, "#pages:is([data-state=more], [data-state=complete], [data-state=error])")
        assert clicks < 20
    assert _all(driver, "#pages[data-state=complete]")

    # The pages are read as of the first one's time; so are the API's here.
    as_of = datetime.fromisoformat(
        _all(driver, "#explain .stamp")[0].get_attribute("data-as-of") or ""
    )
    listed: list[RatingExplained] = []
    with story.client(Role.READER) as reader:
        cursor = None
        while True:
            page = reader.explain_credit(
                RATED_SELLER, role="seller", limit=1, cursor=cursor, as_of=as_of
            )
            listed += page.ratings
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert clicks == len(listed) >= 4  # a page a rating, and the last (empty) page
    rows = _all(driver, "#ratings tbody tr")
    shown = [(r.get_attribute("data-trade"), r.get_attribute("data-reason")) for r in rows]
    assert shown == [(r.trade_id, r.reason or "") for r in listed]
    for row, rating in zip(rows, listed, strict=True):
        points = row.find_element("css selector", "[data-figure=points]")
        assert points.get_attribute("textContent") == str(rating.points)
    excluded = [r.trade_id for r in listed if r.reason is not None]
    assert {r.reason for r in listed} == {None, "amount_le_1", "same_item_14d"}
    assert _text(driver, "[data-figure=loaded]") == str(len(listed))
    assert _text(driver, "[data-figure=excluded]") == str(len(excluded))

    _check_the_revised_rating(driver, listed)

    # "Excluded only" leaves the excluded rows; a reason narrows them further.
    _all(driver, "#excluded-only")[0].click()
    visible = [r.get_attribute("data-trade") for r in rows if r.is_displayed()]
    assert visible == excluded
    assert all(r.get_attribute("data-status") == "excluded" for r in rows if r.is_displayed())
    Select(_all(driver, "#reason")[0]).select_by_value("same_item_14d")
    visible = [r.get_attribute("data-trade") for r in rows if r.is_displayed()]
    assert visible == [r.trade_id for r in listed if r.reason == "same_item_14d"] == ["R-3"]
    _all(driver, "#excluded-only")[0].click()
    Select(_all(driver, "#reason")[0]).select_by_value("")
    assert all(r.is_displayed() for r in rows)
    screenshot(driver, "explanation")


def _check_the_revised_rating(driver: WebDriver, listed: list[RatingExplained]) -> None:
    """The revised rating counts with its revised score and says what it was
    given; "Corrected only" leaves it alone."""
    revised = [r for r in listed if r.revised_at is not None]
    assert [(r.trade_id, r.given_score, r.score) for r in revised] == [
        ("R-5", "neutral", "positive")
    ]
    assert _text(driver, "[data-figure=corrected]") == "1"
    correction = _text(driver, "tr[data-trade=R-5] [data-figure=correction]")
    assert correction.startswith("revised from neutral ")
    rows = _all(driver, "#ratings tbody tr")
    _all(driver, "#corrected-only")[0].click()
    assert [r.get_attribute("data-trade") for r in rows if r.is_displayed()] == ["R-5"]
    _all(driver, "#corrected-only")[0].click()
    assert all(r.is_displayed() for r in rows)


def _leaves(story: Story, count: int) -> list[bytes]:
    """The leaf hashes of the log's first ``count`` events, from its bytes."""
    leaves: list[bytes] = []
    with story.client(Role.AUDITOR) as auditor:
        for event in auditor.read_log():
            if len(leaves) == count:
                break
            canonical = merkle.canonical_leaf(
                event.position,
                UUID(event.originator_id),
                event.originator_version,
                event.topic,
                bytes(event.body),
            )
            leaves.append(merkle.leaf_hash(canonical))
    assert len(leaves) == count
    return leaves


def test_the_audit_page_checks_consistency_with_an_earlier_root_and_shows_the_views_lag(
    driver: WebDriver, story: Story, rated: int, sent: list[dict[str, object]]
) -> None:
    sign_in(driver, story, Role.AUDITOR)
    open_page(driver, story, "#/audit", "#lag [data-figure=log_position]")
    size = int(_text(driver, "#head [data-figure=tree_size]"))
    with story.client(Role.AUDITOR) as auditor:
        head = auditor.get_tree_head()
        ready = auditor.get_readiness()
    assert head.tree_size == size >= rated

    # Earlier roots, computed here from the log's bytes: one of a size that is
    # a power of two (its root opens the proof), one that is not.
    leaves = _leaves(story, size)
    for first in (16, size // 2 + 1, size):
        earlier = {"tree_size": first, "root_hash": _b64(merkle.root_of_leaves(leaves[:first]))}
        assert _check_consistency(driver, earlier) == "verified", first
    first = size // 2 + 1
    root = merkle.root_of_leaves(leaves[:first])
    tampered = bytes([root[0] ^ 1, *root[1:]])
    assert _check_consistency(driver, {"tree_size": first, "root_hash": _b64(tampered)}) == (
        "does not verify"
    )
    moved = {"tree_size": first + 1, "root_hash": _b64(root)}
    assert _check_consistency(driver, moved) == "does not verify"

    # A witness file's line: the head's signature is checked too.
    line = json.loads(
        httpx.get(
            f"{story.url}/v1/audit/tree-head",
            headers={"Authorization": f"Bearer {story.keys[Role.AUDITOR]}"},
        ).text
    )
    assert _check_consistency(driver, line) == "verified"
    assert "signature holds" in _text(driver, "[data-verdict=consistency] .why")
    forged = {**line, "root_hash": _b64(tampered)}
    assert _check_consistency(driver, forged) == "does not verify"
    assert "signature" in _text(driver, "[data-verdict=consistency] .why")

    _check_a_kept_head(driver, story)

    # The view's lag, as /readyz answers it.
    assert _text(driver, "[data-figure=log_position]") == str(ready["log_position"])
    assert _text(driver, "[data-figure=view_position]") == str(ready["view_position"])
    assert _text(driver, "[data-figure=lag]").startswith(f"{ready['lag_events']} events")


def _check_a_kept_head(driver: WebDriver, story: Story) -> None:
    """The heads the server kept are offered as the API lists them; the
    oldest, picked, is signed and consistent with the latest."""
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.support.select import Select  # noqa: PLC0415

    with story.client(Role.AUDITOR) as auditor:
        kept = auditor.list_tree_heads(limit=50).heads
    options = _all(driver, "#kept-head option[data-tree-size]")
    assert [o.get_attribute("data-tree-size") for o in options] == [
        str(head.tree_size) for head in kept
    ]
    driver.execute_script("document.querySelector('[data-verdict=consistency]')?.remove()")
    Select(_all(driver, "#kept-head")[0]).select_by_index(len(options))  # after "choose one"
    picked = json.loads(driver.find_element(By.ID, "earlier-head").get_attribute("value") or "")
    assert picked["tree_size"] == kept[-1].tree_size
    driver.find_element(By.CSS_SELECTOR, "#consistency-form button[type=submit]").click()
    _wait(driver, "[data-verdict=consistency] .word")
    assert _text(driver, "[data-verdict=consistency] .word") == "verified"
    assert "signature holds" in _text(driver, "[data-verdict=consistency] .why")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _check_consistency(browser: WebDriver, earlier: dict[str, object]) -> str:
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.support.wait import WebDriverWait  # noqa: PLC0415

    browser.execute_script("document.querySelector('[data-verdict=consistency]')?.remove()")
    box = browser.find_element(By.ID, "earlier-head")
    box.clear()
    box.send_keys(json.dumps(earlier))
    browser.find_element(By.CSS_SELECTOR, "#consistency-form button[type=submit]").click()
    WebDriverWait(browser, PAGE_SECONDS).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "[data-verdict=consistency]")
    )
    return _text(browser, "[data-verdict=consistency] .word")
