"""The ``operando`` command line.

Subcommands are registered in :data:`COMMANDS` and imported lazily. Library
errors (:class:`dems.errors.DemsError`, :class:`tofsims.errors.TofsimsError`)
become a one-line message and exit status 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from pipelines._version import __version__
from pipelines.lazy import LazyGroup

__all__ = ["COMMANDS", "cli", "main"]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "show_default": True}

#: Top-level commands: name -> "module:attribute" (imported on first use).
COMMANDS: dict[str, str] = {
    "dems": "pipelines.commands.dems:dems",
    "tofsims": "pipelines.commands.tofsims:tofsims",
    "batch": "pipelines.commands.batch:batch",
    "compare": "pipelines.commands.compare:compare",
    "serve": "pipelines.commands.serve:serve",
    "demo": "pipelines.commands.demo:demo",
}


class OperandoGroup(LazyGroup):
    """Root group: turns known library errors into clean one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise
        except Exception as err:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            raise _as_click_exception(err) from err


def _as_click_exception(err: Exception) -> click.ClickException:
    from dems.errors import DemsError
    from pipelines.atomic import OutputError
    from tofsims.errors import TofsimsError

    if isinstance(err, DemsError | TofsimsError):
        return click.ClickException(str(err))
    if isinstance(err, OutputError):
        refused = click.ClickException(str(err))
        refused.exit_code = err.exit_code
        return refused
    missing_folder = isinstance(err, FileExistsError | NotADirectoryError)
    if missing_folder and err.filename and os.path.isfile(err.filename):
        # a folder to create (an output's parent) is an existing file
        return click.ClickException(f"{err.filename}: a file, not a folder: cannot write into it")
    if isinstance(err, OSError) and err.filename:
        return click.ClickException(f"{err.filename}: {err.strerror or err}")
    exception = click.ClickException(
        f"internal error: {type(err).__name__}: {err} (rerun with --debug for the traceback)"
    )
    exception.exit_code = 3
    return exception


@click.group(
    cls=OperandoGroup,
    lazy_subcommands=COMMANDS,
    context_settings=CONTEXT_SETTINGS,
    epilog=(
        "\b\nExamples:\n"
        "  operando demo                      # the whole tool on generated example data\n"
        "  operando dems inspect run.asc cell_C01.mpt\n"
        "  operando tofsims inspect profile.txt\n\n"
        "Run 'operando COMMAND --help' for the options of a command."
    ),
)
@click.version_option(__version__, "--version", prog_name="operando")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Process operando DEMS and TOF-SIMS data from battery research."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="operando", standalone_mode=True)
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error of ours.
        sys.stderr.close()
        os._exit(0)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
