"""Typed workflow options: one definition per parameter for Python, the CLI and batch manifests.

A workflow's options are a frozen dataclass whose fields are declared with :func:`option`: the
default, how a value is converted and checked, its units and help text, and the command-line
flag. ``__post_init__`` calls :func:`validate`, so a notebook user, the command line and a batch
manifest get the same checks and the same canonical values; :mod:`pipelines` builds the click
options and reads the manifest keys from the same fields (:func:`option_fields`).

Example
-------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Smoothing:
...     sigma_s: float = option(2.0, convert=number, greater_than=0, units="s",
...                             flag="--sigma", help="Gaussian width.")
...     def __post_init__(self) -> None:
...         validate(self)
>>> Smoothing(sigma_s=3).sigma_s
3.0
>>> Smoothing(sigma_s=-1)
Traceback (most recent call last):
...
operando_core.options.OptionError: sigma_s: must be > 0, got -1.0

Adding an option to a workflow is adding one such field (and using it in the workflow).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "OptionError",
    "OptionSpec",
    "boolean",
    "canonical",
    "integer",
    "number",
    "option",
    "option_fields",
    "text",
    "validate",
]

_METADATA_KEY = "operando_option"


class OptionError(ValueError):
    """An option value that a workflow cannot use.

    ``message`` may name options as ``{field}`` placeholders (e.g. ``"give either {window_u}
    or {resolution}"``): :meth:`render` spells them as the caller knows them (field names in
    Python and manifests, flags on the command line).

    Attributes
    ----------
    name
        The option (field name) the value belongs to.
    """

    def __init__(self, name: str, message: str):
        self.name = name
        self.message = message
        super().__init__(f"{name}: {self.render(str)}")

    def render(self, spell: Callable[[str], str]) -> str:
        """Return the message with every ``{field}`` spelled by ``spell(field)``."""
        return self.message.format_map(_Spelling(spell))


class _Spelling(dict):
    def __init__(self, spell: Callable[[str], str]):
        super().__init__()
        self.spell = spell

    def __missing__(self, key: str) -> str:
        return self.spell(key)


@dataclass(frozen=True)
class OptionSpec:
    """How one option is converted, checked and offered; see :func:`option`."""

    convert: Callable[[Any], Any]
    help: str
    flag: str | None = None
    metavar: str | None = None
    units: str | None = None
    choices: tuple[Any, ...] | None = None
    greater_than: float | None = None
    at_least: float | None = None
    at_most: float | None = None
    multiple: bool = False
    nullable: bool = False
    check: Callable[[Any], str | None] | None = None


def option(
    default: Any = dataclasses.MISSING,
    *,
    convert: Callable[[Any], Any],
    help: str,
    flag: str | None = None,
    metavar: str | None = None,
    units: str | None = None,
    choices: Sequence[Any] | None = None,
    greater_than: float | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
    multiple: bool = False,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """Declare a dataclass field as a workflow option.

    Parameters
    ----------
    default
        Default value; omitted: the option is required. ``None``: the option may be left out
        (the workflow decides, e.g. "from the file").
    convert
        Turns a Python/manifest value (one item, for ``multiple``) into the canonical value;
        raises ``ValueError``/``TypeError`` with a message. :func:`number`, :func:`integer`,
        :func:`text`, :func:`boolean` or a domain converter (which also accepts the
        command-line text, e.g. ``"0:600"`` for a window).
    help
        One line for ``--help`` and the documentation.
    flag
        Command-line flag(s), e.g. ``"--sputter-rate"`` or ``"--recalibrate/--no-recalibrate"``;
        ``None``: not offered on the command line.
    metavar, units
        Shown in the help (``units``: the physical units of the value, e.g. ``"nm/s"``).
    choices
        Allowed values.
    greater_than, at_least, at_most
        Range of a number (exclusive, inclusive, inclusive).
    multiple
        The value is a tuple of items (a repeatable flag; a list or table in a manifest).
    check
        ``check(value) -> message or None``: a further check of the canonical value.
    """
    spec = OptionSpec(
        convert=convert,
        help=help,
        flag=flag,
        metavar=metavar,
        units=units,
        choices=tuple(choices) if choices is not None else None,
        greater_than=greater_than,
        at_least=at_least,
        at_most=at_most,
        multiple=multiple,
        nullable=default is None,
        check=check,
    )
    return dataclasses.field(default=default, metadata={_METADATA_KEY: spec})


def option_fields(options: Any) -> Iterator[tuple[dataclasses.Field, OptionSpec]]:
    """Yield the options of an options class (or instance) with their specifications."""
    for field in dataclasses.fields(options):
        spec = field.metadata.get(_METADATA_KEY)
        if spec is not None:
            yield field, spec


def validate(options: Any) -> None:
    """Convert every option of a frozen options dataclass to its canonical value and check it.

    Call it from ``__post_init__``.

    Raises
    ------
    OptionError
        The first option whose value cannot be used, naming it.
    """
    for field, spec in option_fields(options):
        value = getattr(options, field.name)
        if value is None and spec.nullable:
            continue
        try:
            value = canonical(spec, value)
        except (TypeError, ValueError) as err:
            raise OptionError(field.name, str(err)) from None
        object.__setattr__(options, field.name, value)


def canonical(spec: OptionSpec, value: Any) -> Any:
    """Convert and check one option value (a tuple of items for ``multiple``).

    Raises
    ------
    ValueError, TypeError
        The value cannot be used; the message says why.
    """
    if not spec.multiple:
        return _checked(spec.convert(value), spec)
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, str | bytes) or not isinstance(value, Sequence):
        items = [value]
    else:
        items = list(value)
    values = tuple(_checked(spec.convert(item), spec) for item in items)
    if spec.check is not None and (problem := spec.check(values)):
        raise ValueError(problem)
    return values


def _checked(value: Any, spec: OptionSpec) -> Any:
    if spec.choices is not None and value not in spec.choices:
        allowed = ", ".join(map(str, spec.choices))
        raise ValueError(f"must be one of {allowed}, got {value!r}")
    if spec.greater_than is not None and not value > spec.greater_than:
        raise ValueError(f"must be > {spec.greater_than:g}, got {value!r}")
    if spec.at_least is not None and not value >= spec.at_least:
        raise ValueError(f"must be ≥ {spec.at_least:g}, got {value!r}")
    if spec.at_most is not None and not value <= spec.at_most:
        raise ValueError(f"must be ≤ {spec.at_most:g}, got {value!r}")
    if spec.check is not None and not spec.multiple and (problem := spec.check(value)):
        raise ValueError(problem)
    return value


def number(value: Any) -> float:
    """Convert a finite real number (an int is accepted) to ``float``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)


def integer(value: Any) -> int:
    """Accept an integer (not a bool, not a float)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return int(value)


def text(value: Any) -> str:
    """Accept a string."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def boolean(value: Any) -> bool:
    """Accept ``true`` or ``false``."""
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value
