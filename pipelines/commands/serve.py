"""``operando serve``: browse results and raw files in a web browser."""

from __future__ import annotations

from pathlib import Path

import click

EPILOG = """\b
Examples:
  operando serve results/run12.zarr
  operando serve cei.zarr profile.txt "2022-09-19 11_27_59 test-21.tsv" --port 5007
  operando serve run12.zarr --address 0.0.0.0   # reachable from other machines

\b
The app binds 127.0.0.1 (this machine only) unless --address says otherwise,
and shows only the PATHs given: Zarr stores, netCDF files, raw DEMS and
TOF-SIMS files. Stop it with Ctrl-C.
"""


@click.command(epilog=EPILOG)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--port", type=click.IntRange(1, 65535), default=5006, help="TCP port to listen on.")
@click.option("--address", default="127.0.0.1", help="Interface to bind (0.0.0.0: all).")
@click.option("--show/--no-show", default=False, help="Open a web browser on the app.")
def serve(paths: tuple[Path, ...], port: int, address: str, show: bool) -> None:
    """Serve interactive views of PATHs (result stores and raw files) in the browser.

    Each dataset is recognised by its structure and shown with its views: ion currents,
    gas flux against potential with onsets, depth profiles, fragment slices with a scan
    slider and linked x–z / y–z sections, RGB overlays, 3D volumes, CEI thickness maps.
    A dataset picker switches between them. Volumes are read slice by slice, never whole.
    """
    from pipelines.server import NothingToShowError
    from pipelines.server import serve as run_server

    try:
        run_server(list(paths), port=port, address=address, show=show)
    except NothingToShowError as err:
        raise click.ClickException(str(err)) from err
