"""Credit (信用): counted rating points, levels and positive rates, per member and role.

``evaluate`` is the reference computation of docs/rules.md §3: given every rating
a member received in one role and a business time ``as_of``, it says for each
rating whether it counts, how much, and — if not — the first rule that
excluded it. It is a pure function of the ratings' facts, so the result does
not depend on the order in which they were recorded: a late rating of an
older order is slotted into order-creation order.

As-of semantics (docs/rules.md §0): only facts with ``occurred_at <= as_of`` are
used, and a rating counts only once it is visible at ``as_of``. A rating's
visibility time can be computed from the final facts: any later fact that
would move it is itself later than ``as_of`` whenever it matters.

Decisions where docs/rules.md is silent (README, rules section):
- Hidden ratings take no part in the exclusion rules: they neither start a
  14-day group nor use up the pair's cap until they show.
- The 14-day groups are formed from the ratings that reached that rule.
- Trailing windows (180 days for the positive rate) follow the trade's
  success time, like the shop scores of §4.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Literal

import msgspec

from ledger.events import Party, Score
from projections.marketplace import Cut, MemberFile, TradeFacts
from projections.rulebook import CreditScoring, ExclusionRule, Level, Rulebook, Scoring

Reason = ExclusionRule | Literal["hidden"]
SCORES: tuple[Score, ...] = ("positive", "neutral", "negative")


class RatingRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One rating and every later fact about it, as the log holds them."""

    trade_id: str
    rater: Party
    rater_id: str
    ratee_id: str
    item_id: str
    amount_minor: int
    order_created_at: datetime
    succeeded_at: datetime
    given_at: datetime
    score: Score
    position: int
    visible_at: datetime
    default: bool = False
    revised_at: datetime | None = None
    revised_score: Score | None = None
    withdrawn_at: datetime | None = None
    shielded_at: datetime | None = None
    fake_at: datetime | None = None

    def score_at(self, at: datetime) -> Score:
        if self.revised_at is not None and self.revised_score is not None and self.revised_at <= at:
            return self.revised_score
        return self.score

    @property
    def order_key(self) -> tuple[datetime, str]:
        """Order-creation order; ties broken by trade id (docs/rules.md §3)."""
        return (self.order_created_at, self.trade_id)


class Counted(msgspec.Struct, frozen=True):
    """How one rating fared as of a time: its points, or why it was excluded."""

    record: RatingRecord
    score: Score
    points: int
    reason: Reason | None

    @property
    def counted(self) -> bool:
        return self.reason is None


class CreditResult(msgspec.Struct, frozen=True):
    score: int
    level: Level
    positive: int
    neutral: int
    negative: int
    unscored: int
    positive_rate_lifetime: float | None
    positive_rate_window: float | None
    window_counted: int
    ratings: tuple[Counted, ...]


def visible_at(
    *,
    given_at: datetime,
    score: Score,
    other_given_at: datetime | None,
    other_score: Score | None,
    window_closes_at: datetime,
    delay: timedelta,
) -> datetime:
    """When a rating shows (docs/rules.md §3), from the original scores of both sides.

    A default positive is a rating given at window close, so "one side rated
    positive" shows at window close together with its default.
    """
    if other_given_at is None or other_score is None:
        return window_closes_at if score == "positive" else window_closes_at + delay
    second = max(given_at, other_given_at)
    if score == "positive" and other_score == "positive":
        return second
    return second + delay


def cap_period(at: datetime, scoring: Scoring) -> tuple[int, int]:
    """The cap period (docs/rules.md §3) an order created at ``at`` falls in."""
    local = at.astimezone(scoring.zone)
    if scoring.credit.cap_period == "calendar_month":
        return (local.year, local.month)
    iso = local.isocalendar()  # Monday-Sunday weeks
    return (iso.year, iso.week)


def cap_period_bounds(at: datetime, scoring: Scoring) -> tuple[datetime, datetime]:
    """The half-open span ``[start, end)`` of the cap period holding ``at``, in UTC."""
    local = at.astimezone(scoring.zone)
    midnight = datetime.combine(local.date(), time(0), tzinfo=scoring.zone)
    if scoring.credit.cap_period == "calendar_month":
        start = midnight.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        start = midnight - timedelta(days=local.weekday())
        end = datetime.combine(start.date() + timedelta(days=7), time(0), tzinfo=scoring.zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def evaluate(
    records: Iterable[RatingRecord],
    as_of: datetime,
    scoring: Scoring,
    *,
    minor_per_major: int,
) -> CreditResult:
    ordered = verdicts(records, as_of, scoring, minor_per_major=minor_per_major)
    return _summarise(ordered, as_of, scoring)


def verdicts(
    records: Iterable[RatingRecord],
    as_of: datetime,
    scoring: Scoring,
    *,
    minor_per_major: int,
) -> tuple[Counted, ...]:
    """How each rating known as of a time fares, in order-creation order
    (``evaluate`` without the figures)."""
    known = sorted((r for r in records if r.given_at <= as_of), key=lambda r: r.order_key)
    rules = ExclusionRules(scoring, minor_per_major=minor_per_major)
    state = RuleState()
    return tuple(rules.judge(record, as_of, state) for record in known)


ItemGroup = tuple[datetime, frozenset[Score]]  # when the 14-day group began, the scores it kept
CapBucket = tuple[str, tuple[int, int]]  # the rater's member id, the cap period of creation


class RuleState:
    """What the rules that look back (the 14-day item groups and the cap) know
    after judging some ratings: per rater and item, the current group; per
    rater and cap period, the running net. Values are immutable, so a copy of
    the two dicts is a checkpoint."""

    __slots__ = ("items", "nets")

    def __init__(
        self,
        items: dict[tuple[str, str], ItemGroup] | None = None,
        nets: dict[CapBucket, int] | None = None,
    ) -> None:
        self.items = {} if items is None else items
        self.nets = {} if nets is None else nets

    def copy(self) -> RuleState:
        return RuleState(dict(self.items), dict(self.nets))


class ExclusionRules:
    """The rulebook's exclusion rules (docs/rules.md §3), applied to one rating at a time.

    Ratings are judged in order-creation order. Each rule looks at the rating
    alone, except the 14-day item groups and the cap, which look at the ratings
    before it that reached them (``RuleState``). So judging ratings one by one,
    each through the rules in the rulebook's order, gives the same verdicts as
    applying each rule in turn to the survivors of the rules before it, and a
    rating's verdict depends only on itself and the ratings ordered before it.
    """

    def __init__(self, scoring: Scoring, *, minor_per_major: int) -> None:
        credit = scoring.credit
        self.scoring = scoring
        self.exclusions = credit.exclusions
        self.floor = credit.min_amount_exclusive_major * minor_per_major
        self.allowed = frozenset(credit.seller_to_buyer_scores)
        self.span = timedelta(days=credit.same_item_group_days)
        self.cap_min, self.cap_max = credit.cap_min, credit.cap_max
        self.points = {score: credit.points.of(score) for score in SCORES}
        self._buckets: dict[datetime, tuple[int, int]] = {}

    def judge(self, record: RatingRecord, as_of: datetime, state: RuleState) -> Counted:
        """The verdict of a rating given by ``as_of``, moving ``state`` past it."""
        score = record.score_at(as_of)
        if record.visible_at > as_of:
            return Counted(record, score, 0, "hidden")
        for rule in self.exclusions:
            if not self._passes(rule, record, score, as_of, state):
                return Counted(record, score, 0, rule)
        return Counted(record, score, self.points[score], None)

    def _passes(
        self,
        rule: ExclusionRule,
        record: RatingRecord,
        score: Score,
        as_of: datetime,
        state: RuleState,
    ) -> bool:
        if rule == "fake_trade":
            return record.fake_at is None or record.fake_at > as_of
        if rule == "shielded":
            return record.shielded_at is None or record.shielded_at > as_of
        if rule == "withdrawn":
            return record.withdrawn_at is None or record.withdrawn_at > as_of
        if rule == "amount_le_1":
            return record.amount_minor > self.floor
        if rule == "not_allowed_by_rulebook":
            return record.rater == "buyer" or score in self.allowed
        if rule == "same_item_14d":
            return self._first_in_item_group(record, score, state)
        return self._within_pair_cap(record, score, state)

    def _first_in_item_group(self, record: RatingRecord, score: Score, state: RuleState) -> bool:
        """Per pair and item, 14-day groups from each group's first trade: the
        first positive and the first negative count, further ones do not;
        neutrals do."""
        key = (record.rater_id, record.item_id)
        group = state.items.get(key)
        if group is None or record.order_created_at >= group[0] + self.span:
            group = (record.order_created_at, frozenset())
        kept = score == "neutral" or score not in group[1]
        state.items[key] = (group[0], group[1] | {score}) if kept else group
        return kept

    def _within_pair_cap(self, record: RatingRecord, score: Score, state: RuleState) -> bool:
        """Per pair and cap period of order creation, a running net clipped to
        the band: a rating whose points would leave the band is excluded."""
        bucket = (record.rater_id, self.cap_period(record.order_created_at))
        moved = state.nets.get(bucket, 0) + self.points[score]
        if self.cap_min <= moved <= self.cap_max:
            state.nets[bucket] = moved
            return True
        return False

    def entries(self, record: RatingRecord) -> tuple[tuple[str, str], CapBucket]:
        """The entries of ``RuleState`` judging this rating may move."""
        return (record.rater_id, record.item_id), (
            record.rater_id,
            self.cap_period(record.order_created_at),
        )

    def cap_period(self, at: datetime) -> tuple[int, int]:
        period = self._buckets.get(at)
        if period is None:
            period = self._buckets[at] = cap_period(at, self.scoring)
        return period


def _summarise(ratings: tuple[Counted, ...], as_of: datetime, scoring: Scoring) -> CreditResult:
    sums = CreditSums(as_of, scoring)
    sums.add(ratings)
    return sums.result(ratings)


class CreditSums:
    """The figures of judged ratings, summed as they come: a member's credit
    from its ratings page by page, holding none of them."""

    def __init__(self, as_of: datetime, scoring: Scoring) -> None:
        self.as_of, self.scoring = as_of, scoring
        self.window_start = as_of - timedelta(days=scoring.credit.positive_rate_window_days)
        self.score = self.unscored = 0
        self.lifetime: dict[Score, int] = dict.fromkeys(SCORES, 0)
        self.window: dict[Score, int] = dict.fromkeys(SCORES, 0)

    def add(self, ratings: Iterable[Counted]) -> None:
        for judged in ratings:
            if not judged.counted:
                self.unscored += 1
                continue
            self.score += judged.points
            self.lifetime[judged.score] += 1
            if self.window_start < judged.record.succeeded_at <= self.as_of:
                self.window[judged.score] += 1

    def result(self, ratings: tuple[Counted, ...] = ()) -> CreditResult:
        """The figures so far, listing ``ratings`` (the caller's, if it kept them)."""
        credit = self.scoring.credit
        return CreditResult(
            score=self.score,
            level=self.scoring.level(self.score),
            positive=self.lifetime["positive"],
            neutral=self.lifetime["neutral"],
            negative=self.lifetime["negative"],
            unscored=self.unscored,
            positive_rate_lifetime=positive_rate(self.lifetime, credit),
            positive_rate_window=positive_rate(self.window, credit),
            window_counted=sum(self.window[kind] for kind in credit.positive_rate_denominator),
            ratings=ratings,
        )


def positive_rate(tally: Mapping[Score, int], credit: CreditScoring) -> float | None:
    """Counted positives over the counted scores of the rulebook's denominator."""
    denominator = sum(tally[score] for score in credit.positive_rate_denominator)
    if denominator == 0:
        return None
    return tally["positive"] / denominator


# --- From the read model ------------------------------------------------------------


def rating_visible_at(
    trade: TradeFacts, rater: Party, cut: Cut, scoring: Scoring
) -> datetime | None:
    """When the rater's rating on this trade shows, as far as the cut's facts tell."""
    rating = trade.ratings.get(rater)
    if rating is None or not cut.sees(rating.given) or trade.window_closes_at is None:
        return None
    other = trade.ratings.get("seller" if rater == "buyer" else "buyer")
    other_seen = other if other is not None and cut.sees(other.given) else None
    return visible_at(
        given_at=rating.given.at,
        score=rating.score,
        other_given_at=other_seen.given.at if other_seen else None,
        other_score=other_seen.score if other_seen else None,
        window_closes_at=trade.window_closes_at,
        delay=timedelta(hours=scoring.visibility.non_positive_delay_hours),
    )


def rating_records(file: MemberFile, role: Party, cut: Cut, scoring: Scoring) -> list[RatingRecord]:
    """The ratings a member received in one role, as the cut's facts describe them."""
    rater: Party = "buyer" if role == "seller" else "seller"
    trades = file.as_seller if role == "seller" else file.as_buyer
    found = (rating_record(trade, rater, cut, scoring) for trade in trades)
    return [record for record in found if record is not None]


def rating_record(
    trade: TradeFacts, rater: Party, cut: Cut, scoring: Scoring
) -> RatingRecord | None:
    """The rater's rating on this trade as the cut's facts describe it (None: none given)."""
    rating = trade.ratings.get(rater)
    shown = rating_visible_at(trade, rater, cut, scoring)
    if rating is None or shown is None or trade.succeeded is None:
        return None
    revised = cut.sees(rating.revised)
    return RatingRecord(
        trade_id=trade.trade_id,
        rater=rater,
        rater_id=trade.buyer_id if rater == "buyer" else trade.seller_id,
        ratee_id=trade.seller_id if rater == "buyer" else trade.buyer_id,
        item_id=trade.item_id,
        amount_minor=trade.amount_minor,
        order_created_at=trade.created.at,
        succeeded_at=trade.succeeded.at,
        given_at=rating.given.at,
        score=rating.score,
        position=rating.given.position,
        visible_at=shown,
        default=rating.default,
        revised_at=rating.revised.at if revised and rating.revised else None,
        revised_score=rating.revised_score if revised else None,
        withdrawn_at=rating.withdrawn.at
        if cut.sees(rating.withdrawn) and rating.withdrawn
        else None,
        shielded_at=rating.shielded.at if cut.sees(rating.shielded) and rating.shielded else None,
        fake_at=trade.fake.at if cut.sees(trade.fake) and trade.fake else None,
    )


def credit_of(file: MemberFile, role: Party, cut: Cut, rulebook: Rulebook) -> CreditResult:
    records = rating_records(file, role, cut, rulebook.scoring)
    return evaluate(
        records, cut.as_of, rulebook.scoring, minor_per_major=rulebook.policy.minor_per_major
    )
