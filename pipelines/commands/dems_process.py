"""``operando dems process``: calibrated gas fluxes, amounts and onset potentials."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipelines.options import parse_window, timezone_option
from pipelines.report import export_options, rendering, write_exports

if TYPE_CHECKING:  # typing only: the command imports xarray when it runs
    import xarray as xr

EPILOG = """\b
Examples:
  operando dems process run.asc --ec cell_C01.mpt --calibration cal.json -o run.zarr \\
      --summary summary.json
  operando dems process run.asc --ec cell_C01.mpt --calibration cal.json --mass 12.5 \\
      --clock-offset -12 -o run.nc --summary summary.json
  operando dems process run.asc --ec cell_C01.mpt --bg-window 0:600 --bg-window 9000:9600 \\
      -o run.zarr --summary summary.json        # no calibration: onsets on signals only

\b
Without --bg-window, quiet windows come from the EC record: MS time before the EC
starts, rests followed by a charge, and a final rest after a discharge.
"""


def _z(text: str) -> tuple[str, float]:
    gas, _, value = text.partition("=")
    try:
        return gas.strip(), float(value)
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected GAS=Z, e.g. CO2=2") from None


def _active_mass_g(ec: xr.Dataset, mass_mg: float | None) -> tuple[float, str]:
    if mass_mg is not None:
        if not mass_mg > 0:
            raise click.BadParameter("--mass must be positive (mg)")
        return mass_mg * 1e-3, "--mass"
    value = float(ec.attrs.get("characteristic_mass_g", math.nan))
    return (value, ec.attrs.get("mass_key", "EC file")) if value > 0 else (math.nan, "unknown")


def relative_factor_uncertainty(calibration: dict | None, factors: dict | None) -> dict:
    """Gas -> stderr/F of its largest calibrated factor (0 when the stderr is unknown)."""
    out = {}
    for gas, by_mass in (factors or {}).items():
        mass = max(by_mass, key=lambda m: by_mass[m])
        entry = (calibration or {}).get("sensitivity", {}).get(gas, {}).get(f"{mass:g}", {})
        stderr = entry.get("F_stderr_C_per_mol") if isinstance(entry, dict) else None
        out[gas] = float(stderr) / by_mass[mass] if stderr else 0.0
    return out


def transit_delay(delay_s: float | None, calibration: dict | None) -> tuple[float, str]:
    """Return the delay to apply (s) and where it came from."""
    if delay_s is not None:
        return float(delay_s), "--delay"
    value = (calibration or {}).get("delay_s")
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value), "calibration"
    return 0.0, "assumed 0 s: no --delay and no delay in the calibration"


def process_datasets(
    ms: xr.Dataset, ec: xr.Dataset, calibration: dict | None, options: dict[str, Any]
) -> tuple[xr.Dataset, float, list[tuple[float, float]]]:
    """Run the lazy quantification on aligned datasets; return (result, delay, windows).

    ``options``: ``delay_s`` (None: from the calibration), ``windows`` (None: from
    the EC record), ``background``, ``degree``, ``mass_g``, ``gases``,
    ``negative_tolerance``, ``chunk_channels``.
    """
    from dems.calibration_file import sensitivity_factors
    from dems.process import default_background_windows, quantify_run
    from dems.quantify import grid_bounds

    delay, _ = transit_delay(options.get("delay_s"), calibration)
    windows = options.get("windows") or default_background_windows(ms, ec, delay)
    factors = sensitivity_factors(calibration) if calibration else None
    if factors and options.get("gases"):
        missing = [g for g in options["gases"] if g not in factors]
        if missing:
            from dems.errors import CalibrationError

            raise CalibrationError(f"gas(es) {missing} have no calibrated m/z in the calibration")
        factors = {g: factors[g] for g in options["gases"]}
    grid = grid_bounds(ms)
    lazy_ms = ms
    if options.get("chunk_channels", True):  # one dask task per channel; coordinates stay in memory
        lazy_ms = ms.chunk({"channel": 1}).assign_coords(
            {n: ms[n] for n in ("mass", "label") if n in ms.coords}
        )
    result = quantify_run(
        lazy_ms,
        ec,
        factors=factors,
        delay_s=delay,
        grid=grid,
        windows=windows,
        background=options.get("background", "auto"),
        degree=options.get("degree", 2),
        mass_g=options.get("mass_g", math.nan),
        gases=options.get("gases") or ("O2", "CO2"),
        negative_tolerance=options.get("negative_tolerance", 3.0),
        factor_uncertainty=relative_factor_uncertainty(calibration, factors),
    )
    return result, delay, windows


@click.command(epilog=EPILOG)
@export_options
@click.argument("ms_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--ec",
    "ec_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Potentiostat file (EC-Lab .mpt, ...).",
)
@click.option(
    "--calibration",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Calibration JSON from 'operando dems calibrate'.",
)
@click.option(
    "--mass",
    "mass_mg",
    type=float,
    default=None,
    help="Active mass in mg [default: the EC file's characteristic mass].",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="Result dataset, .zarr or .nc.",
)
@click.option(
    "--summary",
    "summary_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Summary JSON to write.",
)
@timezone_option
@click.option(
    "--clock-offset",
    type=float,
    default=None,
    metavar="S",
    help="EC clock correction passed to dems.align (s) [default: recorded or 0].",
)
@click.option(
    "--delay",
    "delay_s",
    type=float,
    default=None,
    metavar="S",
    help="Transit delay (s) [default: from the calibration, else 0].",
)
@click.option(
    "--delay-uncertainty",
    type=float,
    default=1.0,
    metavar="S",
    help="1σ uncertainty of delay + alignment (s), for the onset budget.",
)
@click.option(
    "--background",
    default="auto",
    type=click.Choice(["auto", "constant", "linear", "polynomial", "als"]),
    help="Background model (auto: by number of windows).",
)
@click.option(
    "--bg-window",
    "windows",
    multiple=True,
    callback=lambda c, p, v: [parse_window(x) for x in v],
    metavar="START:END",
    help="Quiet window in MS seconds (repeatable).",
)
@click.option("--degree", type=int, default=2, help="Degree of the polynomial drift model.")
@click.option("--gas", "gases", multiple=True, help="Gas to report (repeatable) [default: all].")
@click.option(
    "--onset-method",
    type=click.Choice(["threshold", "tangent"]),
    default="threshold",
    help="Reported onset estimate (both are in the summary).",
)
@click.option("--k", "k_sigma", type=float, default=3.0, help="Onset threshold in baseline σ.")
@click.option("--persistence", type=int, default=5, help="Samples the flux must stay above.")
@click.option(
    "--z",
    "z_values",
    multiple=True,
    metavar="GAS=Z",
    help="Electrons per molecule for a Faradaic efficiency (repeatable).",
)
def process(
    ms_file: Path,
    ec_file: Path,
    calibration: Path | None,
    mass_mg: float | None,
    output: Path,
    summary_path: Path,
    timezone: str | None,
    clock_offset: float | None,
    delay_s: float | None,
    delay_uncertainty: float,
    background: str,
    windows: list[tuple[float, float]],
    degree: int,
    gases: tuple[str, ...],
    onset_method: str,
    k_sigma: float,
    persistence: int,
    z_values: tuple[str, ...],
    html: Path | None,
    png: Path | None,
) -> None:
    """Turn an MS run and its EC file into gas fluxes, amounts and onset potentials.

    Pipeline: align the two clocks, fit the background, deconvolve all m/z into gas
    fluxes (mol/s) with the calibration's sensitivity matrix, apply the transit
    delay, match the potential, integrate per cycle and half-cycle, and detect the
    onset potential of every gas in every charge.
    """
    if output.suffix not in (".zarr", ".nc"):
        raise click.BadParameter("output must end in .zarr or .nc", param_hint="-o")
    from dems.fragmentation import PATTERNS

    unknown = [g for g in gases if g not in PATTERNS]
    if unknown:
        raise click.BadParameter(
            f"no fragmentation pattern for {unknown}; known: {', '.join(sorted(PATTERNS))}",
            param_hint="--gas",
        )
    import dask

    import dems
    from dems.calibration_file import read_calibration
    from dems.summary import summarize
    from pipelines import __version__
    from pipelines.atomic import write_dataset_atomic
    from pipelines.atomic import write_json_atomic as write_json
    from pipelines.progress import progress_bar

    reader_options = {"timezone": timezone} if timezone else {}
    cal = read_calibration(calibration) if calibration else None
    ms = dems.open_ms(ms_file, **reader_options)
    ec = dems.open_ec(ec_file, **reader_options)
    ms, ec = dems.align(ms, ec, offset_s=clock_offset)
    mass_g, mass_source = _active_mass_g(ec, mass_mg)
    options = {
        "delay_s": delay_s,
        "windows": windows,
        "background": background,
        "degree": degree,
        "mass_g": mass_g,
        "gases": list(gases),
    }
    result, delay, used_windows = process_datasets(ms, ec, cal, options)
    click.echo(f"transit delay {delay:.2f} s, {len(used_windows)} background window(s)", err=True)
    # keep a scheduler chosen by the caller (`operando batch`); else local threads
    local = {} if dask.config.get("scheduler", None) is not None else {"scheduler": "threads"}
    with progress_bar(), dask.config.set(local):
        result = result.compute()
    summary = summarize(
        result,
        method=onset_method,
        k=k_sigma,
        persistence=persistence,
        delay_uncertainty_s=delay_uncertainty,
        gases=list(gases) or None,
        z=dict(_z(v) for v in z_values),
    )
    summary.update(
        {
            "mass_source": mass_source,
            "delay_source": transit_delay(delay_s, cal)[1],
            "inputs": {
                "ms": str(ms_file.resolve()),
                "ec": str(ec_file.resolve()),
                "calibration": str(calibration.resolve()) if calibration else None,
            },
            "background_windows_s": [list(w) for w in used_windows],
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "operando_version": __version__,
        }
    )
    if cal is None:
        summary["evolved_reason"] = "no calibration: fluxes and amounts need --calibration"
    result.attrs["onsets_json"] = json.dumps(summary["onsets"])  # read by 'operando serve'
    write_dataset_atomic(result, output)
    write_json(summary_path, summary)
    for gas, onset in summary["onsets"].items():
        value = onset["potential_V"]
        text = f"{value:.3f} ± {onset['uncertainty_V']:.3f} V" if value is not None else "no onset"
        click.echo(f"{gas:<5} onset {text}")
    click.echo(f"wrote {output} and {summary_path}")
    _export_views(result, summary, html=html, png=png, title=ms_file.stem)


def _export_views(
    result: xr.Dataset, summary: dict, *, html: Path | None, png: Path | None, title: str
) -> None:
    """Save the report views (``--html``/``--png``) of a computed result."""
    if html is None and png is None:
        return
    from dems.result_views import process_report

    with rendering():  # views are built and saved by one thread at a time
        write_exports(
            process_report(result, summary),
            html=html,
            png=png,
            title=title,
            png_view=process_report(result, summary, static=True),
        )
    click.echo(f"wrote {', '.join(str(p) for p in (html, png) if p is not None)}")
