"""``operando compare``: the results of a batch, grouped by a label, on shared axes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pipelines.compare import CompareOptions
from pipelines.options import build_options, option_flags, overwrite_option

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
journal column; PNG at --dpi). FIGDIR is written as a whole: an existing one is
replaced only with --overwrite and only if operando wrote it; it may not be, hold
or lie inside an experiment folder it reads.
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
@overwrite_option
@option_flags(CompareOptions)
def compare(results_dir: Path, figdir: Path, overwrite: bool, **values: Any) -> None:
    """Compare the experiments of RESULTS_DIR grouped by a label: figures and one page.

    DEMS: gas flux against potential during the first charge per gas with the onsets
    (± band), gas evolved per cycle as grouped bars with ±1σ. TOF-SIMS: depth profiles
    normalised per fragment (depth in nm, sputter time above, time to maximum and CEI
    marked; a fragment absent from a group is said to be, not drawn as noise), CEI
    thickness maps on one colour scale with their histograms, a 3D render per group.
    """
    from pipelines.compare import load_comparison, write_comparison
    from pipelines.outputs import check_outputs, publishing
    from pipelines.results import ResultsFolderError, find_results

    options = build_options(CompareOptions, values)
    try:
        # what is read: every finished experiment's folder and the batch table
        inputs = [r.folder for r in find_results(results_dir)]
        inputs += [results_dir / name for name in ("summary.csv", "index.html")]
        outputs = {"-o": figdir}
        check_outputs(outputs, inputs, overwrite=overwrite, folders={"-o"})
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
    with publishing(
        outputs, inputs, overwrite=overwrite, folders={"-o"}, written_by="operando compare"
    ) as staging:
        staged = staging.path(figdir)
        written = write_comparison(comparison, options, staged)
    for path in written:
        click.echo(f"wrote {figdir / path.relative_to(staged)}")
