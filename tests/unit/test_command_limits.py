"""Command field limits, checked on commands built in Python (never decoded by msgspec).

Each refused case breaks one limit of one field; msgspec's own decoder, given
the same command as plain data, refuses it at the same place, so the check
reads the metadata as msgspec does.
"""

from __future__ import annotations

import re
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import msgspec
import pytest

from ledger import commands as c
from ledger import limits
from ledger.app import _validated
from ledger.errors import ErrorCode, InvalidInputError
from ledger.events import Dsr
from ledger.limits import check_limits
from ledger.policy import DEFAULT_RULEBOOK, load_policy
from tools.simulator import SimulationConfig, commands

# Commands within every limit, as the marketplace simulator plans them.
PLANNED = list(
    commands(
        SimulationConfig(members=60, trades=400, days=20, seed=3, farming_rings=1, violators=1),
        load_policy(DEFAULT_RULEBOOK).policy,
    )
)
DSR = Dsr(as_described=5, service=5, shipping_speed=5, logistics=5)
C = TypeVar("C", bound=c.Command)


def broken(kind: type[C], **fields: Any) -> C:
    """A planned command of a kind, with fields set past their limits (``replace`` checks nothing)."""
    planned = next(command for command in PLANNED if isinstance(command, kind))
    return msgspec.structs.replace(planned, **fields)


OUT_OF_LIMITS = [
    # Strings: length, pattern, type.
    pytest.param(broken(c.ExplainRating, text=""), "text", id="str-too-short"),
    pytest.param(broken(c.GiveRating, comment="x" * 2_001), "comment", id="str-too-long"),
    pytest.param(broken(c.CreateTrade, buyer_id="buyer 1"), "buyer_id", id="str-pattern"),
    pytest.param(broken(c.CreateTrade, currency="cny"), "currency", id="str-pattern-currency"),
    pytest.param(broken(c.CreateTrade, trade_id="T" * 129), "trade_id", id="str-too-long-id"),
    pytest.param(broken(c.CreateTrade, item_id=7), "item_id", id="str-given-int"),
    pytest.param(broken(c.GiveRating, rater_id="x" * 129), "rater_id", id="optional-str"),
    # Whole numbers: range and type (a bool is no number).
    pytest.param(broken(c.ExtendConfirmTimer, days=0), "days", id="int-below-ge"),
    pytest.param(broken(c.ExtendConfirmTimer, days=366), "days", id="int-above-le"),
    pytest.param(broken(c.CreateTrade, amount_minor=0), "amount_minor", id="int-not-gt"),
    pytest.param(
        broken(c.CreateTrade, amount_minor=c.AMOUNT_MINOR_MAX + 1),
        "amount_minor",
        id="int-too-large",
    ),
    pytest.param(broken(c.ExtendConfirmTimer, days=True), "days", id="int-given-bool"),
    pytest.param(broken(c.ExtendConfirmTimer, days="3"), "days", id="int-given-str"),
    pytest.param(broken(c.PayCompensation, amount_minor=0), "amount_minor", id="optional-int"),
    # Flags and closed sets.
    pytest.param(broken(c.RequestRefund, with_return="yes"), "with_return", id="bool-given-str"),
    pytest.param(broken(c.GiveRating, score="great"), "score", id="literal-value"),
    pytest.param(broken(c.GiveRating, rater=1), "rater", id="literal-given-int"),
    # Times: with a timezone, and a datetime at all.
    pytest.param(
        broken(c.ExtendConfirmTimer, occurred_at=datetime(2026, 3, 2, 9)), "occurred_at", id="naive"
    ),
    pytest.param(
        broken(c.ExtendConfirmTimer, occurred_at="2026-03-02"), "occurred_at", id="time-given-str"
    ),
    # Batches: length, each item, type.
    pytest.param(broken(c.ConfirmFakeTrades, trade_ids=()), "trade_ids", id="tuple-empty"),
    pytest.param(
        broken(
            c.ConfirmFakeTrades,
            trade_ids=tuple(f"T{n}" for n in range(c.FAKE_TRADE_CASE_TRADES_MAX + 1)),
        ),
        "trade_ids",
        id="tuple-too-long",
    ),
    pytest.param(
        broken(c.ConfirmFakeTrades, trade_ids=("T1", "T 2")), "trade_ids[1]", id="tuple-item"
    ),
    pytest.param(broken(c.ConfirmFakeTrades, trade_ids="T1"), "trade_ids", id="tuple-given-str"),
    # Nested Structs: each of their fields, and the Struct itself.
    pytest.param(
        broken(c.GiveRating, dsr=msgspec.structs.replace(DSR, service=0)),
        "dsr.service",
        id="nested-int",
    ),
    pytest.param(
        broken(c.GiveRating, dsr=msgspec.structs.replace(DSR, logistics="5")),
        "dsr.logistics",
        id="nested-type",
    ),
    pytest.param(broken(c.GiveRating, dsr={"as_described": 5}), "dsr", id="nested-given-dict"),
]


@pytest.mark.parametrize(("command", "field"), OUT_OF_LIMITS)
def test_a_field_out_of_its_limits_is_refused_and_named(command: c.Command, field: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        check_limits(command)
    assert refused.value.code is ErrorCode.INVALID_INPUT
    assert refused.value.field == field
    assert f"at `$.{field}`" in str(refused.value)


@pytest.mark.parametrize(("command", "field"), OUT_OF_LIMITS)
def test_msgspec_refuses_the_same_field_when_it_decodes(command: c.Command, field: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=re.escape(f"at `$.{field}`") + "$"):
        msgspec.convert(msgspec.to_builtins(command), type(command))


def test_every_planned_command_passes_as_it_is() -> None:
    for command in PLANNED:
        check_limits(command)
        assert _validated(command) is command  # in UTC already: nothing copied


@pytest.mark.parametrize("offset_hours", [0, 8, -5])
def test_the_time_is_put_in_utc_and_the_command_hash_is_what_it_was(offset_hours: int) -> None:
    """The hash of an idempotency record is that of the command as the JSON round trip
    (the earlier check) left it: stored records must keep matching their repeats."""
    encoder = msgspec.json.Encoder()
    zone = timezone(timedelta(hours=offset_hours))
    for command in PLANNED:
        local = msgspec.structs.replace(command, occurred_at=command.occurred_at.astimezone(zone))
        checked = _validated(local)
        assert checked.occurred_at == command.occurred_at and checked.occurred_at.tzinfo is UTC
        round_trip = msgspec.json.decode(encoder.encode(local), type=type(local))
        before = msgspec.structs.replace(round_trip, occurred_at=command.occurred_at)
        assert encoder.encode(checked) == encoder.encode(before)


def test_every_command_type_has_its_limits_checked() -> None:
    for command_type in typing.get_args(c.AnyCommand):
        limits._struct_check(command_type)  # raises for a field kind it cannot check


def test_a_field_of_a_kind_without_a_check_fails_loudly() -> None:
    class Weighed(c.Command, frozen=True, tag="weighed"):
        kilograms: float

    with pytest.raises(TypeError, match="no limits check"):
        check_limits(Weighed(kilograms=1.5, occurred_at=datetime(2026, 3, 2, 9, tzinfo=UTC)))
