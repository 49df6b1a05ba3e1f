"""``trustledger settings``: every setting of the service, where it comes from.

Each setting with its environment variable, the value this process would run
with and whether the environment gave it: a table on a terminal, plain lines
otherwise, JSON with ``--json``. ``--markdown``, the table of
``docs/operations.md`` (name, variable, default, meaning), which a test keeps
equal to what this prints.
"""

from __future__ import annotations

import json
import os
from typing import Any

import click
from pydantic import TypeAdapter
from pydantic_core import PydanticUndefined

from api.settings import CODE_ONLY, ENV_PREFIX, Settings
from tools.listing import is_terminal, json_option, print_json, print_table


def register(group: click.Group) -> None:
    group.add_command(settings)


@click.command(help="every setting: its variable, value and where the value comes from")
@click.option("--markdown", is_flag=True, help="the documentation's table: defaults, not values")
@json_option("every setting, its variable, value and source")
def settings(markdown: bool, as_json: bool) -> int:
    if markdown and as_json:
        raise click.UsageError("--markdown and --json are two formats: give one")
    if markdown:
        print(markdown_table())
    elif as_json:
        print_json(records(Settings.from_environment()))
    elif is_terminal():
        rows = [
            (r["setting"], r["variable"], _plain(r["value"]), r["source"])
            for r in records(Settings.from_environment())
        ]
        print_table(("setting", "variable", "value", "source"), rows)
    else:
        print(current(Settings.from_environment()))
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
    return "\n".join(
        f"{r['setting']} = {_plain(r['value'])}    ({r['variable']}; {r['source']})"
        for r in records(settings)
    )


def records(settings: Settings) -> list[dict[str, Any]]:
    """Each setting: its name, variable, value (as JSON has it) and where it comes from."""
    return [
        {
            "setting": name,
            "variable": variable(name),
            "value": _json_values.dump_python(getattr(settings, name), mode="json"),
            "source": "environment" if variable(name) in os.environ else "default or code",
        }
        for name in Settings.model_fields
    ]


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
