"""``operando dems calibrate``: sensitivity factors and transit delay from a gas-step run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dems.workflows.options import CalibrateOptions, FaradaicOptions
from pipelines.options import build_options, option_flags, overwrite_option
from pipelines.progress import Echo

if TYPE_CHECKING:  # typing only: the command imports xarray when it runs
    from dems.calibration_file import Calibration

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


def _echo_calibration(calibration: Calibration, echo: Echo) -> None:
    echo(f"{'gas':<6}{'m/z':>5}{'F (C/mol)':>14}{'± stderr':>12}{'r²':>10}")
    for gas, masses in calibration.sensitivity.items():
        for mass, entry in masses.items():
            echo(
                f"{gas:<6}{mass:>5}{entry['F_C_per_mol']:>14.5g}"
                f"{entry.get('F_stderr_C_per_mol', math.nan):>12.2g}"
                f"{entry.get('r2', math.nan):>10.6f}"
            )
    echo(
        f"transit delay: {calibration.delay_s:.2f} s   "
        f"response (10–90 %): {calibration.response_time_s:.2f} s"
    )


def publish_calibration(
    calibration: Calibration, output: Path, echo: Echo = click.echo, *, written: Path | None = None
) -> Path:
    """Write the calibration JSON document atomically and show its factors.

    ``written`` is the name to write it under (a staged name of
    :class:`pipelines.outputs.Staging`, renamed onto ``output`` by the caller); default
    ``output``.
    """
    from pipelines.atomic import write_json_atomic

    write_json_atomic(written or output, calibration.to_document())
    _echo_calibration(calibration, echo)
    echo(f"wrote {output}")
    return output


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
@click.option(
    "--ec",
    "ec_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="EC file of a Faradaic calibration.",
)
@overwrite_option
@option_flags(CalibrateOptions, FaradaicOptions, required=False)
def calibrate(
    cal_ms_file: Path,
    steps_path: Path | None,
    output: Path,
    ec_file: Path | None,
    overwrite: bool,
    **values: Any,
) -> None:
    """Fit sensitivity factors F (C/mol) per gas and m/z from a gas-step MS run.

    For each m/z channel the plateau means of the steps are fitted linearly against
    the known molar fluxes (x · total flow); slope = F, with intercept and r². The
    transit delay (valve switch to 50 % of the change) and the 10–90 % response time
    are measured at every step where a gas's fraction changes.

    With --faradaic GAS:MZ:Z instead of --steps: F = ∫(S − S_bg) dt / (Q/(z·F)) for a gas
    produced at a known charge Q (the EC file's current integrated over --ec-window).
    """
    from dems import workflows
    from pipelines.outputs import publishing

    if (steps_path is None) == (values["faradaic"] is None):
        raise click.UsageError("give either --steps (gas steps) or --faradaic GAS:MZ:Z")
    if values["faradaic"] is not None and (
        ec_file is None or values["ec_window"] is None or not values["bg_windows"]
    ):
        raise click.UsageError("--faradaic needs --ec, --ec-window and at least one --bg-window")
    inputs = [cal_ms_file, steps_path, ec_file]
    with publishing({"-o": output}, inputs, overwrite=overwrite) as staging:
        if values["faradaic"] is None:
            options = build_options(CalibrateOptions, values)
            calibration = workflows.calibrate(cal_ms_file, steps_path, options)
        else:
            options = build_options(FaradaicOptions, values)
            calibration = workflows.calibrate_faradaic(cal_ms_file, ec_file, options)
        publish_calibration(calibration, output, written=staging.path(output))
