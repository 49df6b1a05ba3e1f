"""Rulebooks: the write-side policy and the read-side scoring, as versioned data.

Both parts live in one TOML file per rulebook (``ledger/rulebooks``). The
ledger reads the policy; projections read the scoring, and can replay any log
under any scoring rulebook. A malformed file is refused with a message that
names the offending field, e.g. ``at `$.scoring.credit.cap_min```.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from ledger.events import Score
from ledger.policy import (
    DEFAULT_RULEBOOK,
    NonNegativeInt,
    Policy,
    PositiveInt,
    RulebookError,
    RulebookHeader,
    Strict,
    builtin_rulebook_ids,
    rulebook_bytes,
)

Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]

ExclusionRule = Literal[
    "fake_trade",
    "shielded",
    "withdrawn",
    "amount_le_1",
    "same_item_14d",
    "not_allowed_by_rulebook",
    "pair_month_cap",
]
CapPeriod = Literal["calendar_month", "week_monday"]
FactorCode = Literal[
    "dispute_rate",
    "refund_rate",
    "complaint_rate",
    "fake_trade_recent",
    "positive_rate_180d",
    "dsr_low",
    "shop_demoted",
]
NodeAction = Literal["hidden_listing_ban", "listings_removed", "shop_closed", "account_sealed"]


class ScorePoints(Strict, frozen=True):
    positive: int
    neutral: int
    negative: int

    def of(self, score: Score) -> int:
        points: int = getattr(self, score)
        return points


class CreditScoring(Strict, frozen=True):
    exclusions: tuple[ExclusionRule, ...]
    points: ScorePoints
    seller_to_buyer_scores: tuple[Score, ...]
    min_amount_exclusive_major: NonNegativeInt
    same_item_group_days: PositiveInt
    cap_period: CapPeriod
    cap_min: int
    cap_max: int
    positive_rate_window_days: PositiveInt
    positive_rate_denominator: tuple[Score, ...]

    def __post_init__(self) -> None:
        if len(set(self.exclusions)) != len(self.exclusions):
            raise ValueError("exclusions repeat a rule")
        if not self.cap_min <= 0 <= self.cap_max:
            raise ValueError("the cap band must contain 0")
        if "positive" not in self.positive_rate_denominator:
            raise ValueError("positive_rate_denominator must include positive")


class VisibilityScoring(Strict, frozen=True):
    non_positive_delay_hours: NonNegativeInt


class Level(Strict, frozen=True):
    index: Annotated[int, msgspec.Meta(ge=0, le=20)]
    name: str
    icon: str
    min_score: int


class DsrScoring(Strict, frozen=True):
    window_days: PositiveInt
    first_trades_per_pair_month: PositiveInt
    display_decimals: Annotated[int, msgspec.Meta(ge=0, le=4)]


class BuyerTier(Strict, frozen=True):
    name: str
    label: str
    min_purchases: NonNegativeInt
    min_net_spend_major: NonNegativeInt


class BuyerTierScoring(Strict, frozen=True):
    window_days: PositiveInt
    tiers: Annotated[tuple[BuyerTier, ...], msgspec.Meta(min_length=1)]

    def __post_init__(self) -> None:
        first = self.tiers[0]
        if first.min_purchases != 0 or first.min_net_spend_major != 0:
            raise ValueError("the first tier must start at 0 purchases and 0 spend")


class SeriousNode(Strict, frozen=True):
    points: PositiveInt
    action: NodeAction
    days: PositiveInt | None = None


class ViolationScoring(Strict, frozen=True):
    sealed_serious_points: PositiveInt
    serious_nodes: Annotated[tuple[SeriousNode, ...], msgspec.Meta(min_length=1)]
    general_every_points: PositiveInt
    general_action: NodeAction
    general_days: PositiveInt

    def __post_init__(self) -> None:
        points = [node.points for node in self.serious_nodes]
        if points != sorted(set(points)):
            raise ValueError("serious_nodes must strictly increase in points")


class RateScoring(Strict, frozen=True):
    window_days: PositiveInt
    min_denominator: PositiveInt


class Factor(Strict, frozen=True):
    code: FactorCode
    multiplier: Fraction
    above: float | None = None
    below: float | None = None
    min_count: NonNegativeInt = 0
    sort_hidden: bool = False


class PenaltyScoring(Strict, frozen=True):
    demoted_items_listed_max: PositiveInt
    reason_positions_max: PositiveInt
    fake_trade_window_days: PositiveInt
    factors: tuple[Factor, ...]

    def factor(self, code: FactorCode) -> Factor | None:
        return next((f for f in self.factors if f.code == code), None)


class SearchCheatingScoring(Strict, frozen=True):
    item_demotion_days: PositiveInt
    shop_demotion_distinct_items: PositiveInt
    shop_demotion_window_days: PositiveInt
    shop_demotion_days: PositiveInt


class SellerLevelScoring(Strict, frozen=True):
    short_window_days: PositiveInt
    long_window_days: PositiveInt
    short_window_min_trades: PositiveInt
    top_rated_max_defect_rate: Fraction
    top_rated_max_defect_buyers: NonNegativeInt
    top_rated_min_trades: NonNegativeInt
    top_rated_min_sales_major: NonNegativeInt
    top_rated_sales_window_days: PositiveInt
    top_rated_min_days_registered: NonNegativeInt
    below_standard_min_defect_rate: Fraction
    below_standard_min_defect_buyers: NonNegativeInt


class Scoring(Strict, frozen=True):
    version: PositiveInt
    timezone: str
    credit: CreditScoring
    visibility: VisibilityScoring
    levels: Annotated[tuple[Level, ...], msgspec.Meta(min_length=1)]
    dsr: DsrScoring
    buyer_tiers: BuyerTierScoring
    violations: ViolationScoring
    rates: RateScoring
    penalty: PenaltyScoring
    search_cheating: SearchCheatingScoring
    seller_level: SellerLevelScoring | None = None

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown timezone {self.timezone!r}") from error
        if [level.index for level in self.levels] != list(range(len(self.levels))):
            raise ValueError("levels must be numbered 0, 1, 2, ... in order")
        minimums = [level.min_score for level in self.levels]
        if minimums != sorted(set(minimums)):
            raise ValueError("level min_score must strictly increase")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def level(self, score: int) -> Level:
        """The highest level whose minimum the score reaches."""
        reached = self.levels[0]
        for level in self.levels:
            if score < level.min_score:
                break
            reached = level
        return reached


class Rulebook(Strict, frozen=True):
    rulebook: RulebookHeader
    policy: Policy
    scoring: Scoring

    @property
    def id(self) -> str:
        return self.rulebook.id

    @property
    def scoring_stamp(self) -> str:
        """Names what produced a figure, e.g. ``taobao-classic@1``."""
        return f"{self.rulebook.id}@{self.scoring.version}"


def parse_rulebook(data: bytes, *, source: str = "<rulebook>") -> Rulebook:
    try:
        return msgspec.toml.decode(data, type=Rulebook)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise RulebookError(f"rulebook {source}: {error}") from error


def load_rulebook(rulebook_id: str = DEFAULT_RULEBOOK) -> Rulebook:
    """A built-in rulebook by id, or a rulebook file by path."""
    return parse_rulebook(rulebook_bytes(rulebook_id), source=rulebook_id)


def builtin_rulebooks() -> tuple[Rulebook, ...]:
    """Every rulebook the package ships, by id."""
    return tuple(load_rulebook(rulebook_id) for rulebook_id in builtin_rulebook_ids())


class Rulebooks:
    """The rulebooks a reader may name, by id: the built-in ones and those an
    operator loaded from files. A query names a rulebook by its id only, so
    nothing a caller sends makes the server open a file."""

    def __init__(self, rulebooks: Iterable[Rulebook]) -> None:
        self._by_id = {rulebook.id: rulebook for rulebook in rulebooks}

    @classmethod
    def serving(cls, *loaded: Rulebook) -> Rulebooks:
        """The built-in rulebooks and these; one of these replaces a built-in of its id."""
        return cls([*builtin_rulebooks(), *loaded])

    def get(self, rulebook_id: str) -> Rulebook:
        found = self._by_id.get(rulebook_id)
        if found is None:
            known = ", ".join(sorted(self._by_id))
            raise RulebookError(f"unknown rulebook {rulebook_id[:64]!r}; known: {known}")
        return found

    def __iter__(self) -> Iterator[Rulebook]:
        return iter(sorted(self._by_id.values(), key=lambda rulebook: rulebook.id))
