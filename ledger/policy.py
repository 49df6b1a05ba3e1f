"""The write-side policy: the part of a rulebook the ledger enforces.

Rulebooks are TOML files shipped in ``ledger/rulebooks``. This module reads
their ``[rulebook]`` header and ``[policy]`` table; the read side reads the
scoring part of the same files. A malformed file is refused with msgspec's
message, which names the offending field (``at `$.policy.refund...```).
"""

from __future__ import annotations

from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import msgspec

NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
Points = Annotated[int, msgspec.Meta(ge=0, le=48)]

GoodsKind = Literal["physical", "virtual", "auto_delivery", "top_up"]
ShippingMethod = Literal["express", "surface_mail", "overseas", "none"]
Severity = Literal["minor", "moderate", "severe"]
ViolationCategory = Literal["general", "serious"]
ComplaintType = Literal[
    "late_shipment", "not_as_described", "counterfeit", "service_attitude", "other"
]

RULEBOOK_FILE_MAX_BYTES = 1_000_000


class RulebookError(ValueError):
    """A rulebook file that cannot be used; the message names the field."""


class Strict(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A table of a rulebook file: a misspelt key is refused, not silently ignored.

    Both parts of a rulebook build on it: the policy here, the scoring in
    ``projections.rulebook``.
    """


RULEBOOK_ID_PATTERN = r"^[a-z0-9-]{1,64}$"


class RulebookHeader(Strict, frozen=True):
    id: Annotated[str, msgspec.Meta(pattern=RULEBOOK_ID_PATTERN)]
    version: PositiveInt
    title: str = ""


class PhysicalTimerDays(Strict, frozen=True):
    express: NonNegativeInt
    none: NonNegativeInt
    overseas: NonNegativeInt
    surface_mail: NonNegativeInt


class ConfirmTimerPolicy(Strict, frozen=True):
    top_up_days: NonNegativeInt
    auto_delivery_days: NonNegativeInt
    virtual_days: NonNegativeInt
    physical_days: PhysicalTimerDays
    extension_max_count: NonNegativeInt
    extension_min_days: PositiveInt
    extension_max_days: PositiveInt

    def duration(self, goods_kind: GoodsKind, shipping: ShippingMethod) -> timedelta:
        """How long after shipping receipt is confirmed automatically."""
        if goods_kind == "top_up":
            days = self.top_up_days
        elif goods_kind == "auto_delivery":
            days = self.auto_delivery_days
        elif goods_kind == "virtual":
            days = self.virtual_days
        else:
            days = getattr(self.physical_days, shipping)
        return timedelta(days=days)


class RefundPolicy(Strict, frozen=True):
    silence_before_shipping_hours: PositiveInt
    silence_after_shipping_days: PositiveInt
    silence_after_shipping_virtual_days: PositiveInt
    return_ship_days: PositiveInt
    return_confirm_days: PositiveInt
    return_confirm_surface_mail_days: PositiveInt
    rejected_open_days: PositiveInt

    def seller_silence(self, *, shipped: bool, goods_kind: GoodsKind) -> timedelta:
        """How long a seller may stay silent before a request counts as agreed."""
        if not shipped:
            return timedelta(hours=self.silence_before_shipping_hours)
        if goods_kind == "physical":
            return timedelta(days=self.silence_after_shipping_days)
        return timedelta(days=self.silence_after_shipping_virtual_days)

    def return_confirm(self, shipping: ShippingMethod) -> timedelta:
        if shipping == "surface_mail":
            return timedelta(days=self.return_confirm_surface_mail_days)
        return timedelta(days=self.return_confirm_days)


class RatingPolicy(Strict, frozen=True):
    window_days: PositiveInt
    default_positive: bool
    revision_days: PositiveInt
    explanation_days: PositiveInt
    follow_up_days: PositiveInt
    comment_max_chars: PositiveInt


class PointsBySeverity(Strict, frozen=True):
    minor: Points
    moderate: Points
    severe: Points

    def of(self, severity: Severity) -> int:
        points: int = getattr(self, severity)
        return points


class CashWaiver(Strict, frozen=True):
    share_basis_points: Annotated[int, msgspec.Meta(ge=0, le=10_000)]
    min_major: NonNegativeInt
    max_major: NonNegativeInt


class ComplaintConsequence(Strict, frozen=True):
    category: ViolationCategory
    points: PointsBySeverity
    cash_waiver: CashWaiver | None = None


class ComplaintRulings(Strict, frozen=True):
    late_shipment: ComplaintConsequence
    not_as_described: ComplaintConsequence
    counterfeit: ComplaintConsequence
    service_attitude: ComplaintConsequence
    other: ComplaintConsequence

    def of(self, complaint_type: ComplaintType) -> ComplaintConsequence:
        ruling: ComplaintConsequence = getattr(self, complaint_type)
        return ruling


class FakeTradeTier(Strict, frozen=True):
    from_offence: PositiveInt
    small_case_points: Points
    large_case_points: Points


class FakeTradePolicy(Strict, frozen=True):
    large_case_trades: PositiveInt
    serious_from_points: PositiveInt
    item_demotion_days: PositiveInt
    tiers: Annotated[tuple[FakeTradeTier, ...], msgspec.Meta(min_length=1)]

    def __post_init__(self) -> None:
        offences = [tier.from_offence for tier in self.tiers]
        if offences[0] != 1 or offences != sorted(set(offences)):
            raise ValueError("tiers must start at from_offence = 1 and strictly increase")

    def points(self, *, offence_number: int, trade_count: int) -> int:
        tier = [t for t in self.tiers if t.from_offence <= offence_number][-1]
        if trade_count >= self.large_case_trades:
            return tier.large_case_points
        return tier.small_case_points

    def category(self, points: int) -> ViolationCategory:
        return "serious" if points >= self.serious_from_points else "general"


class Policy(Strict, frozen=True):
    version: PositiveInt
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
    currency_decimals: Annotated[int, msgspec.Meta(ge=0, le=4)]
    clock_skew_seconds: NonNegativeInt
    confirm_timer: ConfirmTimerPolicy
    refund: RefundPolicy
    rating: RatingPolicy
    complaint_rulings: ComplaintRulings
    fake_trade: FakeTradePolicy

    @property
    def clock_skew(self) -> timedelta:
        return timedelta(seconds=self.clock_skew_seconds)

    @property
    def minor_per_major(self) -> int:
        return int(10**self.currency_decimals)


class PolicyBook(msgspec.Struct, frozen=True):
    """A rulebook's header and policy; its scoring part is the read side's."""

    rulebook: RulebookHeader
    policy: Policy

    @property
    def stamp(self) -> str:
        """The policy version stamped on every event, e.g. ``taobao-classic@1``."""
        return f"{self.rulebook.id}@{self.policy.version}"


DEFAULT_RULEBOOK = "taobao-classic"


def builtin_rulebook_ids() -> list[str]:
    folder = resources.files("ledger") / "rulebooks"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def rulebook_bytes(rulebook_id: str) -> bytes:
    """The raw text of a built-in rulebook, or of a rulebook file path."""
    if rulebook_id in builtin_rulebook_ids():
        return (resources.files("ledger") / "rulebooks" / f"{rulebook_id}.toml").read_bytes()
    path = Path(rulebook_id)
    if path.suffix == ".toml" and path.is_file():
        if path.stat().st_size > RULEBOOK_FILE_MAX_BYTES:
            raise RulebookError(f"rulebook file {path} is over {RULEBOOK_FILE_MAX_BYTES} bytes")
        return path.read_bytes()
    known = ", ".join(builtin_rulebook_ids())
    raise RulebookError(f"unknown rulebook {rulebook_id!r}; built in: {known}")


def load_policy(rulebook_id: str = DEFAULT_RULEBOOK) -> PolicyBook:
    """Load the policy of a built-in rulebook (by id) or of a TOML file (by path)."""
    return parse_policy(rulebook_bytes(rulebook_id), source=rulebook_id)


def parse_policy(data: bytes, *, source: str = "<rulebook>") -> PolicyBook:
    try:
        return msgspec.toml.decode(data, type=PolicyBook)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise RulebookError(f"rulebook {source}: {error}") from error
