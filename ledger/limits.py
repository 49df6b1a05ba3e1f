"""A command's field limits, checked on the command as it was built.

The limits are declared once, as msgspec metadata on the command Structs
(``ledger.commands``). msgspec applies them when it decodes, but a command
built in Python (by a tool, the simulator, a test) is never decoded, and
``msgspec.convert`` takes a Struct instance as already valid. So every command
is checked here against the same metadata: read once per command type through
``msgspec.inspect`` and turned into one check per field, which reads the
command's own values (nothing is encoded, decoded or copied).

A refusal is ``invalid_input`` naming the field as a path (``dsr.service``,
``trade_ids[1]``), with a message in msgspec's words (``Expected `int` >= 1``)
and Python's type names, since only Python code can build such a command.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sized
from datetime import UTC, datetime
from typing import Any

import msgspec
import msgspec.inspect as mi

from ledger.errors import ErrorCode, InvalidInputError

# A field's check: its value and its path; raises InvalidInputError when out of limits.
Check = Callable[[Any, str], None]

# The business times the ledger takes, in a command or a query: far from the
# calendar's ends, so no window, deadline or conversion to UTC computed from
# one leaves the range Python's datetime holds.
EARLIEST_BUSINESS_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_BUSINESS_TIME = datetime(3000, 1, 1, tzinfo=UTC)
BUSINESS_TIME_RANGE = f"from {EARLIEST_BUSINESS_TIME:%Y-%m-%dT%H:%M:%SZ} to before {LATEST_BUSINESS_TIME:%Y-%m-%dT%H:%M:%SZ}"
# A business time as text, the form the HTTP API takes: RFC 3339 with an
# offset, to the microsecond, written in a year of the range. A schema states
# it as a pattern, so a caller can tell a well-formed time before sending it.
BUSINESS_TIME_PATTERN = (
    r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)


def business_time_refusal(value: datetime) -> str | None:
    """Why an aware time is out of the ledger's range, or None."""
    if EARLIEST_BUSINESS_TIME <= value < LATEST_BUSINESS_TIME:
        return None
    return f"Expected a time {BUSINESS_TIME_RANGE}"


def check_limits(command: msgspec.Struct) -> None:
    """Refuse a command any of whose fields (nested ones included) breaks its limits."""
    _struct_check(type(command))(command, "")


@functools.cache
def _struct_check(kind: type[msgspec.Struct]) -> Check:
    info = mi.type_info(kind)
    if not isinstance(info, mi.StructType):
        raise TypeError(f"{kind.__name__} is not a Struct")
    return _fields(info)


def _check_of(field_type: mi.Type) -> Check:
    match field_type:
        case mi.StrType():
            return _text(field_type)
        case mi.IntType():
            return _whole_number(field_type)
        case mi.BoolType():
            return _flag
        case mi.LiteralType():
            return _one_of(field_type)
        case mi.DateTimeType():
            return _time(field_type)
        case mi.VarTupleType():
            return _batch(field_type)
        case mi.StructType():
            return _fields(field_type)
        case mi.UnionType():
            return _optional(field_type)
        case mi.Metadata():
            return _check_of(field_type.type)
    # Failing loudly here keeps a new kind of command field from going unchecked.
    raise TypeError(f"no limits check for a command field of type {field_type!r}")


def _fields(info: mi.StructType) -> Check:
    checks = [(field.name, _check_of(field.type)) for field in info.fields]
    cls = info.cls

    def check(value: Any, path: str) -> None:
        if not isinstance(value, cls):
            raise _refusal(path, _expected(cls.__name__, value))
        for name, check_field in checks:
            check_field(getattr(value, name), f"{path}.{name}" if path else name)

    return check


def _text(info: mi.StrType) -> Check:
    low, high, pattern = info.min_length, info.max_length, info.pattern
    # The whole value must match: msgspec searches a pattern, and in Python's
    # re an anchored ``...$`` also matches a value that ends in a line break.
    search = re.compile(pattern).fullmatch if pattern is not None else None

    def check(value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise _refusal(path, _expected("str", value))
        _check_length("str", value, low, high, path)
        if search is not None and search(value) is None:
            raise _refusal(path, f"Expected `str` matching regex {pattern!r}")

    return check


def _whole_number(info: mi.IntType) -> Check:
    if info.multiple_of is not None:
        raise TypeError("no limits check for multiple_of on a command field")
    gt, ge, lt, le = info.gt, info.ge, info.lt, info.le

    def check(value: Any, path: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _refusal(path, _expected("int", value))
        if gt is not None and value <= gt:
            raise _refusal(path, f"Expected `int` > {gt}")
        if ge is not None and value < ge:
            raise _refusal(path, f"Expected `int` >= {ge}")
        if lt is not None and value >= lt:
            raise _refusal(path, f"Expected `int` < {lt}")
        if le is not None and value > le:
            raise _refusal(path, f"Expected `int` <= {le}")

    return check


def _flag(value: Any, path: str) -> None:
    if not isinstance(value, bool):
        raise _refusal(path, _expected("bool", value))


def _one_of(info: mi.LiteralType) -> Check:
    if not all(isinstance(allowed, str) for allowed in info.values):
        raise TypeError("no limits check for a non-string literal on a command field")
    allowed = frozenset(info.values)
    listed = ", ".join(repr(v) for v in info.values)

    def check(value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise _refusal(path, _expected("str", value))
        if value not in allowed:
            raise _refusal(path, f"Invalid enum value {value!r} (one of {listed})")

    return check


def _time(info: mi.DateTimeType) -> Check:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, datetime):
            raise _refusal(path, _expected("datetime", value))
        # Aware means an offset, not just a tzinfo (a tzinfo may answer None).
        aware = value.utcoffset() is not None
        if info.tz is True and not aware:
            raise _refusal(path, "Expected `datetime` with a timezone component")
        if info.tz is False and aware:
            raise _refusal(path, "Expected `datetime` with no timezone component")
        refused = business_time_refusal(value) if aware else None
        if refused is not None:
            raise _refusal(path, refused)

    return check


def _batch(info: mi.VarTupleType) -> Check:
    low, high = info.min_length, info.max_length
    check_item = _check_of(info.item_type)

    def check(value: Any, path: str) -> None:
        if not isinstance(value, tuple):
            raise _refusal(path, _expected("tuple", value))
        _check_length("tuple", value, low, high, path)
        for index, item in enumerate(value):
            check_item(item, f"{path}[{index}]")

    return check


def _optional(info: mi.UnionType) -> Check:
    others = [t for t in info.types if not isinstance(t, mi.NoneType)]
    if len(others) != 1 or len(info.types) != 2:
        raise TypeError(f"no limits check for a command field of type {info!r}")
    check_present = _check_of(others[0])

    def check(value: Any, path: str) -> None:
        if value is not None:
            check_present(value, path)

    return check


def _check_length(kind: str, value: Sized, low: int | None, high: int | None, path: str) -> None:
    if low is not None and len(value) < low:
        raise _refusal(path, f"Expected `{kind}` of length >= {low}")
    if high is not None and len(value) > high:
        raise _refusal(path, f"Expected `{kind}` of length <= {high}")


def _expected(kind: str, value: Any) -> str:
    return f"Expected `{kind}`, got `{type(value).__name__}`"


def _refusal(path: str, message: str) -> InvalidInputError:
    return InvalidInputError(ErrorCode.INVALID_INPUT, f"{message} - at `$.{path}`", field=path)
