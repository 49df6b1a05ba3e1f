"""``trustledger settings``: every setting of the service, where it comes from.

Plain, each setting with its environment variable, the value this process
would run with and whether the environment gave it; ``--markdown``, the
table of ``docs/operations.md`` (name, variable, default, meaning), which a
test keeps equal to what this prints.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import PydanticUndefined

from api.settings import CODE_ONLY, ENV_PREFIX, Settings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    listed = commands.add_parser(
        "settings", help="every setting: its variable, value and where the value comes from"
    )
    listed.add_argument(
        "--markdown", action="store_true", help="the documentation's table: defaults, not values"
    )


def run(args: argparse.Namespace) -> int:
    print(markdown_table() if args.markdown else current(Settings.from_environment()))
    return 0


def variable(name: str) -> str:
    return "(code only)" if name in CODE_ONLY else ENV_PREFIX + name.upper()


def markdown_table() -> str:
    rows = ["| setting | variable | default | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        rows.append(f"| `{name}` | `{variable(name)}` | {_shown(default)} | {field.description} |")
    return "\n".join(rows)


def current(settings: Settings) -> str:
    lines = []
    for name in Settings.model_fields:
        source = "environment" if variable(name) in os.environ else "default or code"
        value = _plain(getattr(settings, name))
        lines.append(f"{name} = {value}    ({variable(name)}; {source})")
    return "\n".join(lines)


def _shown(value: Any) -> str:
    return "(none)" if value is None or value is PydanticUndefined else f"`{_plain(value)}`"


def _plain(value: Any) -> str:
    """A value as the environment variable would carry it."""
    builtin = _json_values.dump_python(value, mode="json")
    if isinstance(builtin, dict | list):
        return json.dumps(builtin, separators=(",", ":"))
    if isinstance(builtin, bool):
        return "true" if builtin else "false"
    return str(builtin)


_json_values: TypeAdapter[Any] = TypeAdapter(Any)
