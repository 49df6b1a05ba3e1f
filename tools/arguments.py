"""What the ``trustledger`` subcommands share: argument types, the global options."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import click

from ledger.database import database_url_from_environment
from ledger.policy import DEFAULT_RULEBOOK


@dataclass
class GlobalOptions:
    """The options every command takes, before or after its name (given after, they win)."""

    database_url: str | None = None
    rulebook: str = DEFAULT_RULEBOOK

    @property
    def url(self) -> str:
        """The database URL given, else the environment's (or the default)."""
        return self.database_url or database_url_from_environment()


# Hands a command the global options, however far up the command line gave them.
pass_global_options = click.make_pass_decorator(GlobalOptions, ensure=True)


class Rfc3339Time(click.ParamType[datetime]):
    """An RFC 3339 time, offset required (``Z`` included), as UTC."""

    name = "time"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):  # a default given in code
            at = value
        else:
            text = str(value)
            try:
                at = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                self.fail(f"not an RFC 3339 time: {text!r}", param, ctx)
            if at.tzinfo is None:
                self.fail(f"{text!r} needs a timezone, e.g. Z", param, ctx)
        return at.astimezone(UTC)


class PositiveSeconds(click.ParamType[float]):
    """A duration in seconds, more than zero."""

    name = "seconds"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = float(str(value))  # a str, or a float default
        except ValueError:
            self.fail(f"not a number of seconds: {value!r}", param, ctx)
        if not seconds > 0:  # also refuses nan
            self.fail(f"{value!r}: a duration is more than 0 seconds", param, ctx)
        return seconds


class Count(click.ParamType[int]):
    """A whole number from ``low`` to ``high``; outside, refused with ``refusal``."""

    def __init__(self, name: str, low: int, high: int, refusal: str) -> None:
        self.name = name
        self.low = low
        self.high = high
        self.refusal = refusal

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        try:
            count = int(str(value))  # a str, or an int default
        except ValueError:
            self.fail(f"not a whole number: {value!r}", param, ctx)
        if not self.low <= count <= self.high:
            self.fail(f"{value!r}: {self.refusal}", param, ctx)
        return count


rfc3339_time = Rfc3339Time()
positive_seconds = PositiveSeconds()


class SpreadCommand(click.Command):
    """A command whose ``multiple`` options also take several values after one name.

    ``--only import big_sellers`` reads as ``--only import --only big_sellers``:
    the values run up to the next option (or ``--``).
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, spread(args, self._multiple_names(ctx)))

    def _multiple_names(self, ctx: click.Context) -> frozenset[str]:
        return frozenset(
            name
            for param in self.get_params(ctx)
            if isinstance(param, click.Option) and param.multiple
            for name in param.opts
        )


def spread(args: Sequence[str], names: frozenset[str]) -> list[str]:
    """``args`` with each value after a name in ``names`` given its own copy of the name."""
    spread_args: list[str] = []
    name: str | None = None
    for index, arg in enumerate(args):
        if arg == "--":
            return spread_args + list(args[index:])
        if arg.startswith("-"):
            name = arg if arg in names else None
            spread_args.append(arg)
        elif name is not None and spread_args[-1] != name:
            spread_args += [name, arg]
        else:
            spread_args.append(arg)
    return spread_args
