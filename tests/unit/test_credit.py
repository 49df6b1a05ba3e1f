"""docs/rules.md §3: counted points, exclusion reasons, levels and positive rates."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from ledger.events import Score
from projections.credit import RatingRecord, evaluate, visible_at
from projections.rulebook import load_rulebook

TAOBAO = load_rulebook("taobao-classic").scoring
EBAY = load_rulebook("ebay-style").scoring
SEPT = datetime(2026, 9, 1, 12, tzinfo=UTC)
LATER = datetime(2027, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)
_numbers = itertools.count(1)


def rating(
    score: Score = "positive",
    *,
    created: datetime = SEPT,
    item: str | None = None,
    rater_id: str = "buyer-1",
    amount_minor: int = 10_000,
    **facts: object,
) -> RatingRecord:
    n = next(_numbers)
    fields: dict[str, object] = {
        "trade_id": f"T{n:05d}",
        "rater": "buyer",
        "rater_id": rater_id,
        "ratee_id": "seller-1",
        "item_id": item or f"item-{n}",
        "amount_minor": amount_minor,
        "order_created_at": created,
        "succeeded_at": created + 3 * DAY,
        "given_at": created + 4 * DAY,
        "score": score,
        "position": n,
        "visible_at": created + 6 * DAY,
    }
    fields.update(facts)
    return RatingRecord(**fields)  # type: ignore[arg-type]


def credit(records: list[RatingRecord], as_of: datetime = LATER, scoring=TAOBAO):  # type: ignore[no-untyped-def]
    return evaluate(records, as_of, scoring, minor_per_major=100)


def test_seven_negatives_from_one_pair_in_a_month_make_minus_six() -> None:
    records = [rating("negative", created=SEPT + i * DAY) for i in range(7)]
    result = credit(records)
    assert result.score == -6
    assert [c.reason for c in result.ratings] == [None] * 6 + ["pair_month_cap"]


def test_six_negatives_then_a_positive_and_a_negative_all_count() -> None:
    six_negatives: list[Score] = ["negative"] * 6
    scores: list[Score] = [*six_negatives, "positive", "negative"]
    records = [rating(s, created=SEPT + i * DAY) for i, s in enumerate(scores)]
    result = credit(records)
    assert result.score == -6
    assert all(c.counted for c in result.ratings)


def test_six_positives_with_two_on_one_item_within_14_days_make_five() -> None:
    records = [rating(created=SEPT + i * 3 * DAY) for i in range(4)]
    records += [
        rating(created=SEPT + 1 * DAY, item="mug"),
        rating(created=SEPT + 10 * DAY, item="mug"),
    ]
    result = credit(records)
    assert result.score == 5
    assert sorted(str(c.reason) for c in result.ratings if not c.counted) == ["same_item_14d"]


def test_the_cap_is_per_calendar_month_of_order_creation_in_shanghai() -> None:
    # 2026-09-30 17:00 UTC is already October 1st in Shanghai.
    september = [rating(created=datetime(2026, 9, 2 + i, tzinfo=UTC)) for i in range(6)]
    october = rating(created=datetime(2026, 9, 30, 17, tzinfo=UTC))
    assert credit([*september, october]).score == 7
    late_september = rating(created=datetime(2026, 9, 30, 15, tzinfo=UTC))
    assert credit([*september, late_september]).score == 6


def test_a_new_14_day_group_starts_exactly_14_days_after_the_first_trade() -> None:
    first = rating(created=SEPT, item="mug")
    inside = rating(created=SEPT + 14 * DAY - timedelta(microseconds=1), item="mug")
    outside = rating(created=SEPT + 14 * DAY, item="mug")
    assert credit([first, inside]).score == 1
    assert credit([first, outside]).score == 2


def test_within_an_item_group_the_first_negative_and_neutrals_count() -> None:
    scores: list[Score] = ["positive", "negative", "neutral", "neutral", "negative", "positive"]
    records = [rating(s, created=SEPT + i * DAY, item="mug") for i, s in enumerate(scores)]
    result = credit(records)
    assert [c.reason for c in result.ratings] == [
        None,
        None,
        None,
        None,
        "same_item_14d",
        "same_item_14d",
    ]
    assert (result.positive, result.neutral, result.negative) == (1, 2, 1)


def test_exclusion_reasons_follow_the_rulebook_order() -> None:
    fake = rating(fake_at=SEPT + 20 * DAY, shielded_at=SEPT + 9 * DAY)
    shielded = rating(shielded_at=SEPT + 9 * DAY, withdrawn_at=SEPT + 9 * DAY)
    withdrawn = rating("negative", withdrawn_at=SEPT + 9 * DAY, amount_minor=100)
    cheap = rating(amount_minor=100)
    just_over = rating(amount_minor=101)
    result = credit([fake, shielded, withdrawn, cheap, just_over])
    assert [c.reason for c in result.ratings] == [
        "fake_trade",
        "shielded",
        "withdrawn",
        "amount_le_1",
        None,
    ]


def test_a_fake_trade_confirmation_lets_ratings_a_cap_had_cut_count() -> None:
    confirmed_at = SEPT + 30 * DAY
    fake = rating(created=SEPT, fake_at=confirmed_at)
    honest = [rating(created=SEPT + (i + 1) * DAY) for i in range(6)]

    before = credit([fake, *honest], as_of=confirmed_at - DAY)
    assert before.score == 6
    assert before.ratings[-1].reason == "pair_month_cap"

    after = credit([fake, *honest], as_of=confirmed_at)
    assert after.score == 6
    assert after.ratings[0].reason == "fake_trade"
    assert after.ratings[-1].reason is None  # computed as if the fake trade never happened


def test_as_of_uses_only_facts_that_had_occurred() -> None:
    revised = rating("negative", revised_at=SEPT + 10 * DAY, revised_score="positive")
    assert credit([revised], as_of=SEPT + 7 * DAY).score == -1
    assert credit([revised], as_of=SEPT + 10 * DAY).score == 1
    assert credit([revised], as_of=SEPT + 5 * DAY).score == 0  # not yet visible
    hidden = credit([revised], as_of=SEPT + 5 * DAY).ratings[0]
    assert hidden.reason == "hidden"


def test_the_order_ratings_were_recorded_in_does_not_matter() -> None:
    records = [
        rating("negative" if i % 3 else "positive", created=SEPT + i * DAY, item="mug")
        for i in range(9)
    ]
    expected = credit(records)
    for permutation in (records[::-1], records[3:] + records[:3]):
        assert credit(permutation).score == expected.score
        assert {c.record.trade_id: c.reason for c in credit(permutation).ratings} == {
            c.record.trade_id: c.reason for c in expected.ratings
        }


def test_positive_rate_is_a_fraction_or_null() -> None:
    assert credit([]).positive_rate_lifetime is None
    records = [rating(created=SEPT + i * DAY, rater_id=f"b{i}") for i in range(3)]
    records.append(rating("negative", rater_id="b9"))
    result = credit(records)
    assert result.positive_rate_lifetime == 0.75
    assert credit(records, as_of=SEPT + 200 * DAY).positive_rate_window is None


def test_ebay_style_clips_a_pairs_week_to_one_and_excludes_non_positive_seller_ratings() -> None:
    monday = datetime(2026, 9, 7, 18, tzinfo=UTC)  # Monday in Los Angeles
    week = [rating(created=monday + i * DAY) for i in range(5)]
    assert credit(week, scoring=EBAY).score == 1
    seller_negative = rating("negative", rater="seller", rater_id="seller-1")
    result = credit([seller_negative], scoring=EBAY)
    assert result.ratings[0].reason == "not_allowed_by_rulebook"
    neutral = rating("neutral", rater_id="b2")
    positive = rating("positive", rater_id="b3")
    assert credit([neutral, positive], scoring=EBAY).positive_rate_lifetime == 1.0


@pytest.mark.parametrize(
    ("score", "index"),
    [
        (-50, 0),
        (0, 0),
        (3, 0),
        (4, 1),
        (10, 1),
        (11, 2),
        (40, 2),
        (41, 3),
        (90, 3),
        (91, 4),
        (150, 4),
        (151, 5),
        (250, 5),
        (251, 6),
        (500, 6),
        (501, 7),
        (1_000, 7),
        (1_001, 8),
        (2_000, 8),
        (2_001, 9),
        (5_000, 9),
        (5_001, 10),
        (10_000, 10),
        (10_001, 11),
        (20_000, 11),
        (20_001, 12),
        (50_000, 12),
        (50_001, 13),
        (100_000, 13),
        (100_001, 14),
        (200_000, 14),
        (200_001, 15),
        (500_000, 15),
        (500_001, 16),
        (1_000_000, 16),
        (1_000_001, 17),
        (2_000_000, 17),
        (2_000_001, 18),
        (5_000_000, 18),
        (5_000_001, 19),
        (10_000_000, 19),
        (10_000_001, 20),
    ],
)
def test_every_edge_of_the_level_table(score: int, index: int) -> None:
    assert TAOBAO.level(score).index == index


def test_level_names_and_icons() -> None:
    assert (TAOBAO.level(0).icon, TAOBAO.level(4).name) == ("", "1 heart")
    assert TAOBAO.level(251).icon == "diamond"
    assert TAOBAO.level(10_001).icon == "crown"
    assert TAOBAO.level(500_001).name == "1 gold crown"


WINDOW_CLOSES = SEPT + 15 * DAY
NON_POSITIVE_DELAY = timedelta(hours=48)


@pytest.mark.parametrize(
    ("score", "other_given_at", "other_score", "visible"),
    [
        ("positive", SEPT + DAY, "positive", SEPT + DAY),
        ("negative", SEPT + DAY, "positive", SEPT + DAY + NON_POSITIVE_DELAY),
        ("positive", None, None, WINDOW_CLOSES),
        ("negative", None, None, WINDOW_CLOSES + NON_POSITIVE_DELAY),
    ],
    ids=["both-positive", "negative", "lone-positive", "lone-negative"],
)
def test_visibility_follows_both_sides(
    score: Score, other_given_at: datetime | None, other_score: Score | None, visible: datetime
) -> None:
    shows_at = partial(
        visible_at, given_at=SEPT, window_closes_at=WINDOW_CLOSES, delay=NON_POSITIVE_DELAY
    )
    assert shows_at(score=score, other_given_at=other_given_at, other_score=other_score) == visible
