"""The ``operando tofsims`` command group."""

from __future__ import annotations

import click

from pipelines.lazy import LazyGroup

#: ``operando tofsims`` subcommands: name -> "module:attribute" (imported on first use).
TOFSIMS_COMMANDS: dict[str, str] = {
    "inspect": "pipelines.commands.tofsims_inspect:inspect",
    "profile": "pipelines.commands.tofsims_profile:profile",
    "cei": "pipelines.commands.tofsims_cei:cei",
}


@click.group(cls=LazyGroup, lazy_subcommands=TOFSIMS_COMMANDS)
def tofsims() -> None:
    """TOF-SIMS: reconstruct fragment volumes, depth profiles and CEI thickness."""
