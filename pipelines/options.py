"""Command-line options made from the workflows' typed options (one definition per parameter).

A workflow's options class (e.g. :class:`dems.workflows.options.ProcessOptions`) declares every
parameter once (:func:`operando_core.options.option`): default, units, range, help text, flag.
:func:`option_flags` turns its fields into click options, :func:`build_options` turns what
click parsed into the options object (a bad value: a usage error naming the flag, exit 2), and
the batch manifest reads the same fields (:func:`pipelines.manifest.load_manifest`). To add a
parameter to ``operando dems process`` or ``tofsims cei``, add a field to the options class
and use it in the workflow: the flag, the manifest key, the check and ``--help`` follow.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import click

from operando_core.options import (
    OptionError,
    OptionSpec,
    boolean,
    canonical,
    integer,
    number,
    option_fields,
    text,
)

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["build_options", "flag_of", "option_flags", "overwrite_option", "usage_errors"]

_CLICK_TYPES = {number: float, integer: int, text: str}


def overwrite_option(command: F) -> F:
    """Add ``--overwrite`` (replace existing outputs) to a command that writes files.

    The one definition of the flag for every command (:mod:`pipelines.outputs` applies it):
    without it an existing output is an error; with it the output is replaced — but never an
    input, and never a folder operando did not write.
    """
    return click.option(
        "--overwrite",
        is_flag=True,
        help="Replace existing outputs (never an input, never a folder operando did not write).",
    )(command)


def flag_of(options_class: type, name: str) -> str:
    """Return the command-line flag of an option (its field name when it has none)."""
    for field, spec in option_fields(options_class):
        if field.name == name and spec.flag:
            return spec.flag.split("/")[0]
    return name


def _check_value(spec: OptionSpec) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """Click callback: convert and check the parsed value as the options class will."""

    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None or (spec.multiple and not value):
            return value
        try:
            return canonical(spec, value)
        except (TypeError, ValueError) as err:
            raise click.BadParameter(str(err)) from None

    return check


def _cli_default(field: dataclasses.Field, spec: OptionSpec) -> Any:
    """Spell the default as the command line would (a tuple as comma-separated text)."""
    default = field.default
    if default is dataclasses.MISSING or spec.multiple:
        return () if spec.multiple else None
    return ",".join(map(str, default)) if isinstance(default, tuple) else default


def _click_option(field: dataclasses.Field, spec: OptionSpec, required: bool) -> Any:
    declarations = [spec.flag, field.name]
    if spec.convert is boolean:
        return click.option(*declarations, default=field.default, is_flag=True, help=spec.help)
    kind = click.Choice(spec.choices) if spec.choices else _CLICK_TYPES.get(spec.convert, str)
    return click.option(
        *declarations,
        type=kind,
        default=_cli_default(field, spec),
        required=required and field.default is dataclasses.MISSING,
        multiple=spec.multiple,
        metavar=spec.metavar,
        help=spec.help,
        callback=_check_value(spec),
    )


def option_flags(*options_classes: type, required: bool = True) -> Callable[[F], F]:
    """Decorate a click command with the flags of the options classes' fields.

    Each field with a flag becomes a click option whose parameter name is the field name;
    a field shared by several classes (e.g. ``timezone``) is offered once. ``required=False``
    makes options without a default optional on the command line (a command with modes).
    """

    def decorate(command: F) -> F:
        seen: set[str] = set()
        pairs = [
            (field, spec)
            for options_class in options_classes
            for field, spec in option_fields(options_class)
            if spec.flag and not (field.name in seen or seen.add(field.name))
        ]
        for field, spec in reversed(pairs):  # click lists the last decorator first
            command = _click_option(field, spec, required)(command)
        return command

    return decorate


@contextlib.contextmanager
def usage_errors(options_class: type) -> Iterator[None]:
    """Turn an :class:`~operando_core.options.OptionError` into a usage error naming the flag.

    Raises
    ------
    click.BadParameter
        A value the workflow cannot use (exit status 2).
    """
    try:
        yield
    except OptionError as err:
        raise click.BadParameter(
            err.render(lambda name: flag_of(options_class, name)),
            param_hint=flag_of(options_class, err.name),
        ) from None


def build_options(options_class: type, values: Mapping[str, Any]) -> Any:
    """Make ``options_class`` from the parsed command line (only its own fields are taken).

    Raises
    ------
    click.BadParameter
        A value the workflow cannot use, naming its flag (exit status 2).
    """
    names = {field.name for field, _ in option_fields(options_class)}
    with usage_errors(options_class):
        return options_class(**{k: v for k, v in values.items() if k in names and v is not None})
