"""The HTTP edge takes exactly what its OpenAPI document states: a business
time matching the stated pattern, a whole number as JSON Schema counts one."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from api.schemas import At, NewRating, TimerExtension
from ledger.limits import BUSINESS_TIME_PATTERN, business_time_refusal

WRITTEN = re.compile(BUSINESS_TIME_PATTERN)


def _taken(text: object) -> bool:
    try:
        At(occurred_at=text)  # type: ignore[arg-type]
    except ValidationError:
        return False
    return True


@given(st.from_regex(BUSINESS_TIME_PATTERN, fullmatch=True))
def test_a_time_of_the_stated_pattern_is_taken_when_it_is_a_date(text: str) -> None:
    try:
        written = datetime.fromisoformat(text)
    except ValueError:  # 31 February matches the pattern; no calendar has it
        assert not _taken(text)
        return
    in_range = business_time_refusal(written.astimezone(UTC)) is None
    assert _taken(text) == in_range, text


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-02T09:30:00z",  # a lower-case zone
        "2026-11-02 09:30:00Z",  # a space for the T
        "2026-11-02T09:30:00",  # no offset
        "2026-11-02",  # a date alone
        "2026-11-02T09:30Z",  # no seconds
        "2026-11-02T09:30:00.1234567Z",  # beyond the microsecond
        "1969-12-31T23:59:59Z",  # before the range
        "3000-01-01T00:00:00Z",  # after it
        "20261102T093000Z",  # the basic format
    ],
)
def test_a_time_outside_the_stated_pattern_is_refused(text: str) -> None:
    assert WRITTEN.fullmatch(text) is None
    assert not _taken(text)


@pytest.mark.parametrize("days", [3, 3.0])
def test_a_whole_number_may_be_written_with_a_zero_fraction(days: float) -> None:
    extension = TimerExtension(occurred_at="2026-11-02T09:30:00Z", days=days)  # type: ignore[arg-type]
    assert extension.days == 3
    assert type(extension.days) is int


@pytest.mark.parametrize("days", [3.5, "3", True])
def test_a_number_with_a_fraction_text_or_a_truth_value_is_no_whole_number(
    days: object,
) -> None:
    with pytest.raises(ValidationError):
        TimerExtension(occurred_at="2026-11-02T09:30:00Z", days=days)  # type: ignore[arg-type]


def test_shop_scores_are_whole_numbers_too() -> None:
    body = {
        "occurred_at": "2026-11-02T09:30:00Z",
        "rater": "buyer",
        "score": "positive",
        "dsr": {"as_described": 5.0, "service": 4, "shipping_speed": 5, "logistics": 4.0},
    }
    rating = NewRating.model_validate(body)
    assert rating.dsr is not None and rating.dsr.as_described == 5
    with pytest.raises(ValidationError):
        NewRating.model_validate({**body, "dsr": {**body["dsr"], "service": 4.5}})  # type: ignore[dict-item]
