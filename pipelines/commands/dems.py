"""The ``operando dems`` command group."""

from __future__ import annotations

import click

from pipelines.lazy import LazyGroup

#: ``operando dems`` subcommands: name -> "module:attribute" (imported on first use).
DEMS_COMMANDS: dict[str, str] = {
    "inspect": "pipelines.commands.dems_inspect:inspect",
    "calibrate": "pipelines.commands.dems_calibrate:calibrate",
    "process": "pipelines.commands.dems_process:process",
}


@click.group(cls=LazyGroup, lazy_subcommands=DEMS_COMMANDS)
def dems() -> None:
    """DEMS: read, calibrate and quantify mass-spectrometer + potentiostat runs."""
