"""``operando dems calibrate``: sensitivity factors and transit delay from a gas-step run."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import click

from pipelines.options import parse_window, timezone_option

EPILOG = """\b
Examples:
  operando dems calibrate cal_run.asc --steps steps.toml -o calibration.json
  operando dems calibrate cal_run.asc --steps steps.toml -o cal.json --timezone Europe/Berlin
  operando dems calibrate co_strip.asc --faradaic CO2:44:2 --ec strip_C01.mpt \\
      --ec-window 1200:1500 --bg-window 1000:1150 --bg-window 1700:1800 --delay 8 -o cal.json

\b
steps.toml (times in s since the first sample of the calibration file):
  carrier = "Ar"
  total_flow_sccm = 1.0            # or total_flow_mol_per_s = 7.436e-07
  [[step]]
  start_s = 60.0                   # valve switch
  end_s = 659.0
  mole_fraction = { CO2 = 0.0, O2 = 0.0 }     # all-zero baseline step
  [[step]]
  start_s = 660.0
  end_s = 1259.0
  mole_fraction = { CO2 = 0.0005, O2 = 0.0 }
"""


def build_calibration(ms_path: Path, steps_path: Path, timezone: str | None) -> dict[str, Any]:
    """Open the calibration run, fit it and return the calibration document."""
    import dems
    from dems.calibration import calibrate_gas_steps
    from dems.calibration_file import FORMAT
    from dems.calibration_steps import read_steps
    from pipelines import __version__

    steps = read_steps(steps_path)
    ms = dems.open_ms(ms_path, **({"timezone": timezone} if timezone else {}))
    result = calibrate_gas_steps(ms, steps)
    return {
        "format": FORMAT,
        "version": 1,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "operando_version": __version__,
        "source_file": str(Path(ms_path).resolve()),
        "steps_file": str(Path(steps_path).resolve()),
        "ms_start_time": ms.attrs.get("start_time"),
        "total_flow_mol_per_s": [s.total_flow_mol_per_s for s in steps.steps],
        **result,
    }


def _faradaic_spec(text: str) -> tuple[str, float, float]:
    try:
        gas, mass, z = text.split(":")
        return gas, float(mass), float(z)
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected GAS:MZ:Z, e.g. CO2:44:2") from None


def build_faradaic(
    ms_path: Path, ec_path: Path, spec: tuple[str, float, float], options: dict[str, Any]
) -> dict[str, Any]:
    """Faradaic calibration document (``options``: timezone, ec_window, bg_windows, delay_s)."""
    import dems
    from dems.calibration import faradaic_calibration
    from dems.calibration_file import FORMAT
    from pipelines import __version__

    reader = {"timezone": options["timezone"]} if options.get("timezone") else {}
    ms, ec = dems.align(dems.open_ms(ms_path, **reader), dems.open_ec(ec_path, **reader))
    gas, mass, z = spec
    result = faradaic_calibration(
        ms,
        ec,
        gas=gas,
        mass=mass,
        z=z,
        ec_window=options["ec_window"],
        background_windows=options["bg_windows"],
        delay_s=options["delay_s"],
    )
    return {
        "format": FORMAT,
        "version": 1,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "operando_version": __version__,
        "source_file": str(Path(ms_path).resolve()),
        "ec_file": str(Path(ec_path).resolve()),
        "ms_start_time": ms.attrs.get("start_time"),
        **result,
    }


def _echo(document: dict[str, Any]) -> None:
    click.echo(f"{'gas':<6}{'m/z':>5}{'F (C/mol)':>14}{'± stderr':>12}{'r²':>10}")
    for gas, masses in document["sensitivity"].items():
        for mass, entry in masses.items():
            click.echo(
                f"{gas:<6}{mass:>5}{entry['F_C_per_mol']:>14.5g}"
                f"{entry.get('F_stderr_C_per_mol', math.nan):>12.2g}"
                f"{entry.get('r2', math.nan):>10.6f}"
            )
    click.echo(
        f"transit delay: {document['delay_s']:.2f} s   "
        f"response (10–90 %): {document['response_time_s']:.2f} s"
    )


@click.command(epilog=EPILOG)
@click.argument("cal_ms_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--steps",
    "steps_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file describing the gas steps (see below).",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Calibration JSON to write (reuse with 'dems process --calibration').",
)
@timezone_option
@click.option(
    "--faradaic",
    "faradaic",
    default=None,
    metavar="GAS:MZ:Z",
    help="Faradaic calibration of one gas/m/z with z electrons per molecule.",
)
@click.option(
    "--ec",
    "ec_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="EC file of a Faradaic calibration.",
)
@click.option(
    "--ec-window",
    default=None,
    metavar="START:END",
    help="Faradaic: window (s, MS time axis after alignment) holding the charge.",
)
@click.option(
    "--bg-window",
    "bg_windows",
    multiple=True,
    metavar="START:END",
    help="Faradaic: quiet window(s) of the MS channel (repeatable).",
)
@click.option(
    "--delay",
    "delay_s",
    type=float,
    default=0.0,
    metavar="S",
    help="Faradaic: transit delay shifting the MS window (s).",
)
def calibrate(
    cal_ms_file: Path,
    steps_path: Path | None,
    output: Path,
    timezone: str | None,
    faradaic: str | None,
    ec_file: Path | None,
    ec_window: str | None,
    bg_windows: tuple[str, ...],
    delay_s: float,
) -> None:
    """Fit sensitivity factors F (C/mol) per gas and m/z from a gas-step MS run.

    For each m/z channel the plateau means of the steps are fitted linearly against
    the known molar fluxes (x · total flow); slope = F, with intercept and r². The
    transit delay (valve switch to 50 % of the change) and the 10–90 % response time
    are measured at every step where a gas's fraction changes.

    With --faradaic GAS:MZ:Z instead of --steps: F = ∫(S − S_bg) dt / (Q/(z·F)) for a gas
    produced at a known charge Q (the EC file's current integrated over --ec-window).
    """
    from pipelines.atomic import write_json_atomic as write_json

    if (steps_path is None) == (faradaic is None):
        raise click.UsageError("give either --steps (gas steps) or --faradaic GAS:MZ:Z")
    if faradaic is not None:
        if ec_file is None or ec_window is None or not bg_windows:
            raise click.UsageError(
                "--faradaic needs --ec, --ec-window and at least one --bg-window"
            )
        options = {
            "timezone": timezone,
            "ec_window": parse_window(ec_window),
            "bg_windows": [parse_window(w) for w in bg_windows],
            "delay_s": delay_s,
        }
        document = build_faradaic(cal_ms_file, ec_file, _faradaic_spec(faradaic), options)
        write_json(output, document)
        _echo(document)
        click.echo(f"wrote {output}")
        return
    document = build_calibration(cal_ms_file, steps_path, timezone)
    write_json(output, document)
    _echo(document)
    click.echo(f"wrote {output}")
