"""``operando serve``: browse results and raw files in a web browser."""

from __future__ import annotations

from pathlib import Path

import click

EPILOG = """\b
Examples:
  operando serve results/run12.zarr
  operando serve results/                # every experiment of a batch, and a comparison tab
  operando serve cei.zarr profile.txt "2022-09-19 11_27_59 test-21.tsv" --port 5007
  operando serve run12.zarr --address 0.0.0.0 --allow-remote   # other machines too

\b
The app binds 127.0.0.1 (this machine only). Another --address (e.g. 0.0.0.0,
every interface) also needs --allow-remote: the app has no authentication, and
anyone who can reach the port can read the served data. It shows only the PATHs
given: Zarr stores, netCDF files, raw DEMS and TOF-SIMS files, and batch or demo
output folders (each experiment's outputs, named by experiment and labels). Stop
it with Ctrl-C.
"""


@click.command(epilog=EPILOG)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--port", type=click.IntRange(1, 65535), default=5006, help="TCP port to listen on.")
@click.option(
    "--address",
    default="127.0.0.1",
    help="Interface to bind (0.0.0.0: all; beyond loopback needs --allow-remote).",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow an --address other machines can reach (no authentication: a warning is shown).",
)
@click.option("--show/--no-show", default=False, help="Open a web browser on the app.")
def serve(paths: tuple[Path, ...], port: int, address: str, allow_remote: bool, show: bool) -> None:
    """Serve interactive views of PATHs (results, raw files, batch folders) in the browser.

    Each dataset is recognised by its structure and shown with its views: ion currents,
    gas flux against potential with onsets, depth profiles, fragment slices with a scan
    slider and linked x–z / y–z sections, RGB overlays, 3D volumes, CEI thickness maps.
    A dataset picker switches between them; a batch or demo output folder adds a tab
    comparing its samples. Volumes are read slice by slice, never whole.
    """
    from pipelines.server import NothingToShowError, is_loopback
    from pipelines.server import serve as run_server

    if not is_loopback(address):
        exposure = (
            f"--address {address or '(every interface)'} lets other machines reach the app, "
            f"which has no authentication: anyone who can connect to port {port} can read "
            "the served data"
        )
        if not allow_remote:
            raise click.UsageError(f"{exposure}; add --allow-remote to confirm")
        click.echo(f"WARNING: {exposure}.", err=True)
    try:
        run_server(list(paths), port=port, address=address, show=show)
    except NothingToShowError as err:
        raise click.ClickException(str(err)) from err
