"""``operando dems inspect``: what is in a raw DEMS file."""

from __future__ import annotations

import json
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import click

from dems.workflows.options import CalibrateOptions
from pipelines.options import option_flags

EXAMPLE_FOLDER = "zilien_v2_test-21"

EPILOG = """\b
Examples:
  operando dems inspect "2022-09-19 11_27_59 test-21.tsv"
  operando dems inspect run.asc cell_C01.mpt --timezone Europe/Berlin
  operando dems inspect --example --json
  operando dems inspect export.asc --date-order day-first
"""


def example_files() -> list[Path]:
    """Return the real Zilien + EC-Lab example files shipped inside the package."""
    folder = resources.files("dems") / "data" / EXAMPLE_FOLDER
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith((".tsv", ".mpt")))


def _reader_options(reader: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Keep only the options a reader function accepts."""
    import inspect as _inspect

    accepted = _inspect.signature(reader).parameters
    return {key: value for key, value in options.items() if value is not None and key in accepted}


def inspect_file(path: Path, **options: Any) -> list[dict[str, Any]]:
    """Open ``path`` with every stream it holds and describe each one.

    ``options`` (``timezone``, ``date_order``) are passed to the readers that accept them.
    """
    from dems.inventory import describe_ec, describe_ms
    from dems.io import detect_format

    module = detect_format(path)
    streams = []
    for name, describe in (("read_ms", describe_ms), ("read_ec", describe_ec)):
        reader = getattr(module, name, None)
        if reader is None:
            continue
        try:
            streams.append(describe(reader(path, **_reader_options(reader, options))))
        except LookupError:  # MissingStreamError: the file lacks this stream (e.g. no EC block)
            pass
    return streams


def _software(stream: dict[str, Any]) -> str:
    """``EC-Lab 11.43``, ``BT-Lab 1.79``, ``v11.61`` (``.mpr``: no name); ``n/a`` if absent."""
    version = stream.get("ec_lab_version")
    if not version:
        return "n/a"
    software = stream.get("software")
    return f"{software} {version}" if software else f"v{version}"


def _echo_stream(stream: dict[str, Any]) -> None:
    duration = stream["duration_s"]
    click.echo(f"  {stream['kind'].upper()} stream  [{stream['format']}]")
    click.echo(
        f"    start time : {stream['start_time']}  (zone {stream['timezone']}, "
        f"from {stream['timezone_source']})"
    )
    click.echo(f"    duration   : {'n/a' if duration is None else f'{duration:.3f} s'}")
    if stream["kind"] == "ms" and stream.get("layout") == "mass scan":
        low, high = stream["mass_range"]
        click.echo(
            f"    mass scans : {stream['scans']} spectra, m/z {low:g}-{high:g} "
            f"({stream['masses']} masses, {stream['units']})"
        )
    elif stream["kind"] == "ms":
        click.echo(f"    channels   : {len(stream['channels'])}")
        for ch in stream["channels"]:
            mass = "" if ch["mass"] is None else f"m/z {ch['mass']:g}"
            click.echo(
                f"      {ch['name']:<12} {mass:<10} {ch['units'] or '':<6} "
                f"{ch['samples']:>8} samples   {ch['label']}"
            )
    else:
        mass = stream["characteristic_mass_g"]
        click.echo(f"    technique  : {stream['technique'] or 'n/a'}")
        click.echo(f"    software   : {_software(stream)}")
        click.echo(f"    mass       : {'n/a' if mass is None else f'{mass:g} g'}")
        click.echo(f"    samples    : {stream['samples']}")
        for col in stream["columns"]:
            click.echo(
                f"      {col['name']:<16} {col['units'] or '':<6} {col['samples']:>8} samples"
                f"   {col['long_name']}"
            )


@click.command(epilog=EPILOG)
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of text."
)
@option_flags(CalibrateOptions)  # --timezone, as the processing commands
@click.option(
    "--date-order",
    type=click.Choice(["day-first", "month-first", "year-first"]),
    default=None,
    help="Order of ambiguous vendor dates such as 03/04/2024 [default: inferred when possible].",
)
@click.option("--example", is_flag=True, help="Inspect the example run shipped with operando.")
def inspect(
    files: tuple[Path, ...],
    as_json: bool,
    timezone: str | None,
    date_order: str | None,
    example: bool,
) -> None:
    """Show format, start time, duration and channels of raw DEMS FILES.

    Each file's format is recognised from its content (BioLogic .mpt, Zilien .tsv,
    QUADERA .asc, PV MassSpec .dat, ixdat CSV, generic CSV).
    """
    paths = [*files, *(example_files() if example else [])]
    if not paths:
        raise click.UsageError("give at least one FILE (or --example)")
    report = []
    for path in paths:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            streams = inspect_file(path, timezone=timezone, date_order=date_order)
        notes = list(dict.fromkeys(str(w.message) for w in caught))
        report.append({"file": str(path), "streams": streams, "warnings": notes})
        if not as_json:
            click.echo(f"{path}")
            for stream in streams:
                _echo_stream(stream)
            for note in notes:
                click.echo(f"  warning: {note}")
    if as_json:
        click.echo(json.dumps(report, indent=2))
