"""``operando compare``: the results of a batch, grouped by a label, on shared axes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pipelines.compare import CompareOptions
from pipelines.options import build_options, option_flags

EPILOG = """\b
Examples:
  operando compare operando-demo -o operando-demo/compare
  operando compare results/ --by coating -o figures/
  operando compare results/ --fragments LiF2-,CeO2-,NiO2- --render CeO2- -o figures/

\b
RESULTS_DIR is the output folder of 'operando batch' or 'operando demo'. The
experiments are grouped by the value of a manifest label (--by, default sample);
each group's DEMS run and TOF-SIMS result are compared with the others' on shared
axes and units. Writes FIGDIR/index.html (one offline page) and every figure as
<figure>_85mm.png/.svg/.pdf and <figure>_175mm.png/.svg/.pdf (single and double
journal column; PNG at --dpi).
"""


@click.command(epilog=EPILOG)
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "figdir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the page and the figures (created).",
)
@option_flags(CompareOptions)
def compare(results_dir: Path, figdir: Path, **values: Any) -> None:
    """Compare the experiments of RESULTS_DIR grouped by a label: figures and one page.

    DEMS: gas flux against potential during the first charge per gas with the onsets
    (± band), gas evolved per cycle as grouped bars with ±1σ. TOF-SIMS: depth profiles
    normalised per fragment (depth in nm, sputter time above, time to maximum and CEI
    marked; a fragment absent from a group is said to be, not drawn as noise), CEI
    thickness maps on one colour scale with their histograms, a 3D render per group.
    """
    from pipelines.compare import load_comparison, write_comparison
    from pipelines.results import ResultsFolderError

    options = build_options(CompareOptions, values)
    try:
        comparison = load_comparison(results_dir, options)
    except ResultsFolderError as err:
        raise click.ClickException(str(err)) from err
    if not comparison.groups:
        raise click.ClickException(f"{results_dir}: no DEMS or TOF-SIMS result to compare")
    if len(comparison.groups) < 2:
        click.echo(f"warning: only one {options.by} ({comparison.groups[0]}): nothing to compare "
                   "it with; the figures show it alone", err=True)  # fmt: skip
    for name, why in comparison.skipped.items():
        click.echo(f"not compared: {name}: {why}", err=True)
    write_comparison(comparison, options, figdir, echo=click.echo)
