"""``operando tofsims reconstruct``: GRD raw events -> calibrated fragment volumes (Zarr)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from pipelines.options import build_options, option_flags, usage_errors
from pipelines.progress import Echo, computing
from tofsims.workflows.options import ReconstructOptions

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


def _echo_calibration(fit: Any, echo: Echo) -> None:
    echo(
        f"mass calibration: SF {fit.attrs['sf_start']:.3f} -> {float(fit.sf):.3f}, "
        f"K0 {fit.attrs['k0_start']:.3f} -> {float(fit.k0):.3f}"
    )
    for ion, used, counts, residual in zip(
        fit.ion.values, fit.used.values, fit.counts.values, fit.residual_ppm.values, strict=True
    ):
        state = "used" if used else ("rejected" if math.isfinite(residual) else "not found")
        shown = f"{residual:+8.2f} ppm" if math.isfinite(residual) else "       n/a"
        echo(f"  {ion:<6} {counts:>10.0f} counts  {shown}  {state}")


def run_reconstruct(
    raw: Path,
    options: ReconstructOptions,
    *,
    output: Path,
    properties: Path | None = None,
    workers: int | None = None,
    echo: Echo = click.echo,
    progress: bool = True,
) -> Path:
    """Run :func:`tofsims.workflows.reconstruct` on a GRD file and write the volume store.

    With ``options.recalibrate`` the mass scale is refitted first (one pass over the file).
    The store is written atomically (a temporary folder renamed when complete); used by the
    command and by ``operando batch``.
    """
    from pipelines.atomic import atomic_directory
    from tofsims.io.volume_store import write_volume
    from tofsims.workflows import mass_recalibration, open_events, reconstruct
    from tofsims.workflows.inputs import is_event_list

    if not is_event_list(raw):
        raise click.UsageError(f"{raw}: reconstruct needs a GRD event list (*.grd)")
    events = open_events(raw, properties)
    fit = None
    with computing(progress=progress, num_workers=workers), usage_errors(ReconstructOptions):
        if options.recalibrate:
            echo("pass 1/2: summed spectrum")
            fit = mass_recalibration(events, options).compute()
            _echo_calibration(fit, echo)
            echo("pass 2/2: fragment volumes")
        volume = reconstruct(events, options, fit)
        with atomic_directory(output) as temporary:
            write_volume(volume, temporary)
    echo(
        f"wrote {output}: {len(options.fragments)} fragments × {volume.sizes['scan']} scans × "
        f"{volume.sizes['y']} × {volume.sizes['x']} "
        f"(sf {volume.attrs['sf']:.3f}, k0 {volume.attrs['k0']:.3f})"
    )
    return output


@click.command(epilog=EPILOG)
@click.argument("raw", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Output Zarr store (folder), written atomically.",
)
@option_flags(ReconstructOptions)
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
    properties: Path | None,
    workers: int | None,
    overwrite: bool,
    **values: Any,
) -> None:
    """Bin the raw ions of a GRD event list into fragment volumes counts(fragment, scan, y, x).

    Each fragment's mass window (coordinates mass_low/mass_high, u) and the calibration
    applied (attributes sf, k0) are stored with the volume; the summed spectrum is stored
    as the variable `spectrum`.
    """
    options = build_options(ReconstructOptions, values)
    if output.exists() and not overwrite:
        raise click.UsageError(f"{output} already exists (add --overwrite to replace it)")
    run_reconstruct(raw, options, output=output, properties=properties, workers=workers)
