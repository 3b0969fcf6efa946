"""Command-line options and value parsers shared by several ``operando`` commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["parse_window", "timezone_option"]


def parse_window(text: str) -> tuple[float, float]:
    """Parse ``START:END`` (s) into a pair with END after START (``click.BadParameter`` else)."""
    try:
        start, end = (float(v) for v in text.split(":"))
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected START:END in seconds") from None
    if end <= start:
        raise click.BadParameter(f"{text!r}: END must be after START")
    return start, end


def _check_timezone(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from dems.io.timestamps import resolve_timezone

    if value is not None:
        try:
            resolve_timezone(value)
        except ValueError as err:
            raise click.BadParameter(str(err)) from err
    return value


def timezone_option(command: F) -> F:
    """``--timezone IANA``: the zone of naive vendor timestamps, validated (exit 2 if unknown)."""
    return click.option(
        "--timezone",
        metavar="IANA",
        default=None,
        callback=_check_timezone,
        help="Zone of naive vendor timestamps, e.g. Europe/Berlin [default: this machine's].",
    )(command)
