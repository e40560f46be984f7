"""`--json` for every command: one flag, remembered on the click context.

Commands that print a person's lines also build the same answer as a dict;
with ``--json`` they print only that dict (a submitted transaction is always
``"tx": HASH``). The flag is not a parameter of each command function, so the
helpers that submit transactions can honour it without every caller passing
it along.
"""

from __future__ import annotations

import json
from typing import Any

import click

_KEY = "vigil.json"


def _remember(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[_KEY] = True
    return value


def json_flag(f):  # type: ignore[no-untyped-def]
    """``--json``: print the command's answer as one JSON object instead of lines."""
    return click.option(
        "--json",
        "json_flag",
        is_flag=True,
        expose_value=False,
        callback=_remember,
        help="Print the answer as JSON.",
    )(f)


def wants_json() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(_KEY))


def emit(answer: dict[str, Any]) -> None:
    click.echo(json.dumps(answer, indent=2))


def say(text: str) -> None:
    """A line for a person (nothing with --json)."""
    if not wants_json():
        click.echo(text)
