"""``operando tofsims reconstruct``: GRD raw events -> calibrated fragment volumes (Zarr)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

DEFAULT_FRAGMENTS = "C2HO-,PO3-,LiF2-,BO2-,CeO2-,NiO2-"

EPILOG = """\b
Examples:
  operando tofsims reconstruct run.itm.grd -o volume.zarr
  operando tofsims reconstruct run.itm.grd --fragments "C2HO-,PO3-,LiF2-,6LiF2-" \\
      --resolution 5000 --bin 2 -o volume.zarr
  operando tofsims reconstruct run.itm.grd --dead-time 65 --no-recalibrate -o v.zarr

\b
Fragments use our notation: "6LiF2-" = 6LiF2-, "LiF2-" = 7LiF2- (most abundant
isotope), "BO2-" = 11BO2-, "NiO2-" = 58NiO2-, "CeO2-" = 140CeO2-.
The properties.txt is looked up beside RAW (RAW.properties.txt, NAME.properties.txt,
properties.txt) unless --properties is given.
"""


def _echo_calibration(fit: Any) -> None:
    click.echo(
        f"mass calibration: SF {fit.attrs['sf_start']:.3f} -> {float(fit.sf):.3f}, "
        f"K0 {fit.attrs['k0_start']:.3f} -> {float(fit.k0):.3f}"
    )
    for ion, used, counts, residual in zip(
        fit.ion.values, fit.used.values, fit.counts.values, fit.residual_ppm.values, strict=True
    ):
        state = "used" if used else ("rejected" if math.isfinite(residual) else "not found")
        shown = f"{residual:+8.2f} ppm" if math.isfinite(residual) else "       n/a"
        click.echo(f"  {ion:<6} {counts:>10.0f} counts  {shown}  {state}")


def _fit_record(fit: Any) -> str:
    return json.dumps(
        {
            "sf_start": fit.attrs["sf_start"],
            "k0_start": fit.attrs["k0_start"],
            "sf": float(fit.sf),
            "k0": float(fit.k0),
            "peaks": [
                {
                    "ion": str(ion),
                    "mass_u": float(m),
                    "used": bool(u),
                    "residual_ppm": float(r) if math.isfinite(r) else None,
                }
                for ion, m, u, r in zip(
                    fit.ion.values,
                    fit.mass.values,
                    fit.used.values,
                    fit.residual_ppm.values,
                    strict=True,
                )
            ],
        }
    )


@click.command(epilog=EPILOG)
@click.argument("raw", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Output Zarr store (folder), written atomically.",
)
@click.option(
    "--fragments",
    default=DEFAULT_FRAGMENTS,
    show_default=True,
    help="Comma-separated fragments (our notation).",
)
@click.option(
    "--window-u",
    type=float,
    default=None,
    help="Fixed window half-width ±Δm in u [default: 0.05 unless --resolution].",
)
@click.option(
    "--resolution",
    type=float,
    default=None,
    help="Mass resolving power m/Δm: window = m ± m/(2R) (excludes --window-u).",
)
@click.option(
    "--bin",
    "lateral_bin",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Lateral binning: sum BIN×BIN pixels.",
)
@click.option(
    "--dead-time",
    "dead_time_ns",
    type=float,
    default=None,
    help="Detector dead time in ns; enables the Poisson correction.",
)
@click.option(
    "--poisson", is_flag=True, help="Poisson-correct with the dead time from properties.txt."
)
@click.option(
    "--recalibrate/--no-recalibrate",
    default=True,
    show_default=True,
    help="Refit SF/K0 on the calibration peaks of the summed spectrum first "
    "(one extra pass over the file).",
)
@click.option(
    "--seconds-per-scan",
    type=float,
    default=None,
    help="Sputter + analysis time per scan (s) for the sputter_time coordinate.",
)
@click.option(
    "--properties",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The properties.txt of RAW, if not beside it.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Threads used for binning [default: all cores].",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing OUTPUT.")
def reconstruct(
    raw: Path,
    output: Path,
    fragments: str,
    window_u: float | None,
    resolution: float | None,
    lateral_bin: int,
    dead_time_ns: float | None,
    poisson: bool,
    recalibrate: bool,
    seconds_per_scan: float | None,
    properties: Path | None,
    workers: int | None,
    overwrite: bool,
) -> None:
    """Bin the raw ions of a GRD event list into fragment volumes counts(fragment, scan, y, x).

    Each fragment's mass window (coordinates mass_low/mass_high, u) and the calibration
    applied (attributes sf, k0) are stored with the volume; the summed spectrum is stored
    as the variable `spectrum`.
    """
    import dask

    from pipelines.atomic import atomic_directory
    from pipelines.progress import progress_bar
    from tofsims.io import grd
    from tofsims.io.volume_store import write_volume
    from tofsims.masscal import calibrate
    from tofsims.reconstruct import reconstruct as reconstruct_volume

    if window_u is not None and resolution is not None:
        raise click.UsageError("give either --window-u or --resolution, not both")
    if output.exists() and not overwrite:
        raise click.UsageError(f"{output} already exists (add --overwrite to replace it)")
    with open(raw, "rb") as handle:
        if not grd.can_open(raw, handle.read(grd.RECORD_BYTES)):
            raise click.UsageError(f"{raw}: reconstruct needs a GRD event list (*.grd)")
    names = [f.strip() for f in fragments.split(",") if f.strip()]
    if not names:
        raise click.UsageError("--fragments is empty")
    events = grd.read(raw, properties=properties, validate=False)
    dead_time_s = None if dead_time_ns is None else dead_time_ns * 1e-9
    if poisson and dead_time_s is None:
        dead_time_s = events.attrs["dead_time_s"]
        if not math.isfinite(dead_time_s):
            raise click.UsageError("properties.txt has no dead time: give --dead-time NS")
    options = {"window_u": window_u, "resolution": resolution}
    # `operando batch` sets the scheduler (the cluster for a large file, in-task on a worker);
    # on the command line, local threads
    caller_chose = dask.config.get("scheduler", None) is not None
    scheduler = {} if caller_chose else {"scheduler": "threads", "num_workers": workers}
    sf, k0, record = events.attrs["sf"], events.attrs["k0"], None
    with dask.config.set(scheduler):
        if recalibrate:
            click.echo("pass 1/2: summed spectrum")
            spectrum = reconstruct_volume(events, names, **options)["spectrum"]
            with progress_bar():
                fit = calibrate(spectrum, sf, k0, polarity=events.attrs["polarity"]).compute()
            _echo_calibration(fit)
            sf, k0, record = float(fit.sf), float(fit.k0), _fit_record(fit)
            click.echo("pass 2/2: fragment volumes")
        volume = reconstruct_volume(
            events,
            names,
            sf=sf,
            k0=k0,
            lateral_bin=lateral_bin,
            dead_time_s=dead_time_s,
            seconds_per_scan=seconds_per_scan,
            **options,
        )
        volume.attrs.update(
            sf_properties=events.attrs["sf"],
            k0_properties=events.attrs["k0"],
            mass_calibration_json=record or "null",
        )
        with progress_bar(), atomic_directory(output) as temporary:
            write_volume(volume, temporary)
    click.echo(
        f"wrote {output}: {len(names)} fragments × {volume.sizes['scan']} scans × "
        f"{volume.sizes['y']} × {volume.sizes['x']} (sf {sf:.3f}, k0 {k0:.3f})"
    )
