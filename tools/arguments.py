"""Argument types the ``trustledger`` subcommands share."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime


def rfc3339_time(text: str) -> datetime:
    """An RFC 3339 time, offset required (``Z`` included), as UTC."""
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}") from error
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a timezone, e.g. Z")
    return at.astimezone(UTC)


def positive_seconds(text: str) -> float:
    """A duration in seconds, more than zero."""
    try:
        seconds = float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from error
    if not seconds > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r}: a duration is more than 0 seconds")
    return seconds
