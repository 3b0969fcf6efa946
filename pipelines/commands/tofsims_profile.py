"""``operando tofsims profile``: whole-field depth profile of a volume or a raw export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pipelines.options import build_options, option_flags, overwrite_option
from pipelines.progress import computing
from tofsims.workflows.options import ProfileOptions

EPILOG = """\b
Examples:
  operando tofsims profile volume.zarr -o profiles.csv
  operando tofsims profile volume.zarr -o profiles.nc
  operando tofsims profile "I241209p_A_MAPI_1f-1nA_neg-B4 - NF.txt" -o neg.csv

\b
A volume (Zarr store, GRD, 3D ASCII) is summed over all pixels, one column per
fragment; a SurfaceLab profile is written as it is (columns in file order).
A reconstructed GRD gives the fitted counts (peak fits of its block spectra,
as `tofsims cei`), an export the counts of its mass windows; one line says which.
CSV columns: scan, sputter_time_s, depth_nm (if calibrated), then one column per
signal named by its label ("C2HO-"; repeated labels get "#<column index>"); with
fitted counts then the window counts, one column per signal ("C2HO- (window)").
"""

#: Suffix of the CSV columns of window counts beside fitted ones.
WINDOW_COLUMN = " (window)"


def _column_names(profile: Any) -> list[str]:
    labels = (
        [str(v) for v in profile["peak_label"].values]
        if "peak_label" in profile.coords
        else [str(v) for v in profile["fragment"].values]
    )
    seen: dict[str, int] = {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
    return [label if seen[label] == 1 else f"{label}#{i}" for i, label in enumerate(labels)]


def write_profile_csv(profile: Any, path: Path) -> None:
    """Write ``intensity(scan, peak)`` as CSV with time (and depth) columns.

    ``intensity_window`` (window counts beside fitted ones) follows as ``<label> (window)``.
    """
    import pandas as pd

    columns = _column_names(profile)
    table = pd.DataFrame(profile["intensity"].transpose("scan", "peak").values, columns=columns)
    if "intensity_window" in profile:
        window = profile["intensity_window"].transpose("scan", "peak").values
        table = table.join(pd.DataFrame(window, columns=[c + WINDOW_COLUMN for c in columns]))
    front = {"scan": profile["scan"].values}
    if "sputter_time" in profile.coords:
        front["sputter_time_s"] = profile["sputter_time"].values
    if "depth" in profile.coords:
        front["depth_nm"] = profile["depth"].values
    table = pd.concat([pd.DataFrame(front), table], axis=1)
    table.to_csv(path, index=False, float_format="%.10g")


@click.command(epilog=EPILOG)
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file: .csv (table) or .nc (netCDF, all coordinates).",
)
@option_flags(ProfileOptions)
@overwrite_option
def profile(input_path: Path, output: Path, overwrite: bool, **values: Any) -> None:
    """Write the depth profile of INPUT (volume store or raw TOF-SIMS export)."""
    suffix = output.suffix.lower()
    if suffix not in (".csv", ".nc"):
        raise click.BadParameter("the output must end in .csv or .nc", param_hint="-o/--output")
    from pipelines.atomic import write_atomically, write_netcdf_atomic
    from pipelines.outputs import publishing
    from tofsims.workflows import input_files
    from tofsims.workflows import profile as depth_profile

    options = build_options(ProfileOptions, values)
    inputs = [input_path, *input_files(input_path)]
    with publishing({"-o": output}, inputs, overwrite=overwrite) as staging:
        with computing(minimum=1.0):
            result = depth_profile(input_path, options).compute()
        if suffix == ".csv":
            write_atomically(staging.path(output), lambda tmp: write_profile_csv(result, tmp))
        else:
            write_netcdf_atomic(result, staging.path(output))
    click.echo(counts_line(result, suffix))
    click.echo(f"wrote {output} ({result.sizes['scan']} scans x {result.sizes['peak']} signals)")


def counts_line(profile: Any, suffix: str) -> str:
    """Say which counts a profile holds and where the window counts went."""
    counts = str(profile.attrs.get("counts", "window"))
    if "intensity_window" not in profile:
        reason = profile.attrs.get("counts_reason")
        return f"counts: {counts}" + (f"; not fitted: {reason}" if reason else "")
    kept = f"'<label>{WINDOW_COLUMN}' columns" if suffix == ".csv" else "intensity_window"
    return f"counts: {counts}; the window counts are kept as the {kept}"
