"""``operando dems calibrate``: sensitivity factors and transit delay from a gas-step run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

EPILOG = """\b
Examples:
  operando dems calibrate cal_run.asc --steps steps.toml -o calibration.json
  operando dems calibrate cal_run.asc --steps steps.toml -o cal.json --timezone Europe/Berlin

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


def _echo(document: dict[str, Any]) -> None:
    click.echo(f"{'gas':<6}{'m/z':>5}{'F (C/mol)':>14}{'± stderr':>12}{'r²':>10}")
    for gas, masses in document["sensitivity"].items():
        for mass, entry in masses.items():
            click.echo(
                f"{gas:<6}{mass:>5}{entry['F_C_per_mol']:>14.5g}"
                f"{entry['F_stderr_C_per_mol']:>12.2g}{entry['r2']:>10.6f}"
            )
    click.echo(
        f"transit delay (valve → 50 %): {document['delay_s']:.2f} s   "
        f"response (10–90 %): {document['response_time_s']:.2f} s"
    )


@click.command(epilog=EPILOG)
@click.argument("cal_ms_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--steps",
    "steps_path",
    required=True,
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
@click.option(
    "--timezone",
    metavar="IANA",
    default=None,
    help="Zone of naive vendor timestamps [default: this machine's].",
)
def calibrate(cal_ms_file: Path, steps_path: Path, output: Path, timezone: str | None) -> None:
    """Fit sensitivity factors F (C/mol) per gas and m/z from a gas-step MS run.

    For each m/z channel the plateau means of the steps are fitted linearly against
    the known molar fluxes (x · total flow); slope = F, with intercept and r². The
    transit delay (valve switch to 50 % of the change) and the 10–90 % response time
    are measured at every step where a gas's fraction changes.
    """
    from dems.calibration_file import write_json

    document = build_calibration(cal_ms_file, steps_path, timezone)
    write_json(output, document)
    _echo(document)
    click.echo(f"wrote {output}")
