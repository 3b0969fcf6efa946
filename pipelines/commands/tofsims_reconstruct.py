"""``operando tofsims reconstruct``: GRD raw events -> calibrated fragment volumes (Zarr)."""

from __future__ import annotations

import contextlib
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipelines.options import build_options, option_flags, overwrite_option, usage_errors
from pipelines.progress import CountingBar, Echo, computing
from tofsims.workflows.options import ReconstructOptions

if TYPE_CHECKING:  # typing only
    from pipelines.outputs import Staging

#: Names of dask's synchronous scheduler (``operando batch`` inside a worker).
SYNCHRONOUS = ("sync", "synchronous", "single-threaded")

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


def _echo_calibration(calibration: Any, echo: Echo) -> None:
    fit, sample = calibration.fit, calibration.sample
    echo(
        f"mass calibration: SF {fit.sf_start:.3f} -> {fit.sf:.3f}, "
        f"K0 {fit.k0_start:.3f} -> {fit.k0:.3f}"
    )
    echo(
        f"  fitted on {sample.events:,} events ({100 * sample.fraction:.3g} % of the file, "
        f"{sample.runs} runs); ±{calibration.mass_error_ppm:.2g} ppm at the fragments"
    )
    status = fit.status or tuple(
        "used" if u else ("rejected" if math.isfinite(r) else "not found")
        for u, r in zip(fit.used, fit.residual_ppm, strict=True)
    )
    not_found = [ion for ion, state in zip(fit.ions, status, strict=True) if state == "not found"]
    for ion, state, counts, residual in zip(
        fit.ions, status, fit.counts, fit.residual_ppm, strict=True
    ):
        if state == "not found":
            continue
        shown = f"{residual:+8.2f} ppm" if math.isfinite(residual) else "       n/a"
        echo(f"  {ion:<6} {counts:>10.0f} counts  {shown}  {state}")
    if not_found:
        echo(f"  not found: {', '.join(not_found)}")
    low, high = fit.used_mass_range
    for entry in fit.to_record()["fragments"]:
        note = (
            f"  extrapolated beyond the calibration ions ({low:.1f}–{high:.1f} u)"
            if entry["extrapolated"]
            else ""
        )
        echo(
            f"  {entry['fragment']:<8} {entry['mass_u']:9.4f} u  ±{entry['error_ppm']:.2g} ppm"
            f"{note}"
        )


def echo_windows(record: list[dict[str, Any]], source: str, echo: Echo) -> None:
    """Print every mass window, the listed interferents in it and its purity estimate."""
    echo(f"mass windows: {source}")
    for entry in record:
        power = entry["resolving_power"]
        shown = f"R {power:>7.0f}" if power is not None else "R     n/a"
        purity = entry["purity"]
        if purity is not None:
            estimate = f"purity {purity:.3f}"
        elif entry.get("purity_upper_bound") is not None:
            estimate = f"purity ≤ {entry['purity_upper_bound']:.3f}"
        else:
            estimate = "purity n/a"
        # the peak width is a line through the measured peaks: beyond them it is a guess
        note = (
            "  R extrapolated beyond the peaks measured"
            if entry.get("resolving_power_extrapolated")
            else ""
        )
        echo(
            f"  {entry['fragment']:<8} {entry['mass_low_u']:.4f}–{entry['mass_high_u']:.4f} u  "
            f"{shown}  {estimate}{note}"
        )
        for item in entry["interferents_in_window"]:
            state = {True: "resolved, fitted", False: "NOT resolved", None: "?"}[item["resolved"]]
            echo(
                f"      {item['interferent']:<8} Δm {item['delta_mass_u']:.4f} u  needs R "
                f"{item['required_resolving_power']:>7.0f}  {state}"
            )


def _ratio(value: float | None, error: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3g} ± {error:.2g}" if error is not None else f"{value:.3g}"


def _verdict(name: str, entry: dict[str, Any], reasons: dict[str, str]) -> str:
    if name == "boron":
        state = entry["consistent_with_boron"]
        if state is None:
            reason = entry.get("consistent_with_boron_reason") or reasons.get(
                "isotope_evidence.boron.ratio", "no counts"
            )
            return f"inconclusive ({reason})"
        return "consistent with boron" if state else "INCONSISTENT with boron"
    state = entry["saturated"]
    if state is None:
        return f"n/a ({reasons.get('isotope_evidence.lithium.ratio', 'no counts')})"
    return "7LiF2- SATURATED" if state else "not saturated"


def echo_isotope_evidence(
    evidence: dict[str, Any], reasons: dict[str, str], source: str, echo: Echo
) -> None:
    """Print 10B/11B and 6Li/7Li (run and per depth block) with their verdicts.

    ``evidence`` is the ``isotope_evidence`` block of ``summary.json``
    (:func:`tofsims.workflows.fragment_purity.purity_summary`).
    """
    echo(f"isotope evidence: {source}")
    for name, label in (("boron", "10B/11B"), ("lithium", "6Li/7Li")):
        entry = evidence.get(name)
        if entry is None:
            echo(f"  {label:<8} n/a ({reasons.get(f'isotope_evidence.{name}', 'not binned')})")
            continue
        counts = "fitted" if entry["counts"] == "fitted" else "window"
        window = ""
        if counts == "fitted":
            window = f", window {_ratio(entry['window_ratio'], entry['window_ratio_error'])}"
        echo(
            f"  {label:<8} {_ratio(entry['ratio'], entry['ratio_error'])} ({counts} counts"
            f"{window}; natural {entry['natural_ratio']:.3g})  {_verdict(name, entry, reasons)}"
        )
        blocks = entry["per_block"]
        if len(blocks) < 2:  # the run is one block: its ratio is the run's
            continue
        cells = [
            f"scan {b['first_scan']:>4}: {_ratio(b['ratio'], b['ratio_error']):<16}" for b in blocks
        ]
        for start in range(0, len(cells), 3):
            echo("      " + "  ".join(cells[start : start + 3]).rstrip())
        flagged = entry.get("interfered_blocks", entry.get("saturated_blocks", []))
        if flagged:
            what = "interfered" if name == "boron" else "saturated"
            echo(f"      {what} in the blocks from scans {', '.join(map(str, flagged))}")


#: What the isotope evidence after the pass imports (xarray imports dask.array as soon as it
#: wraps an array): about 0.7 s, which the one-pass binning does not need.
EVIDENCE_MODULES = ("xarray", "dask.array", "tofsims.workflows.fragment_purity")


def _import_in_background(modules: tuple[str, ...]) -> None:
    """Import ``modules`` on a daemon thread, overlapping the binning's pass over the file.

    The binning threads spend their time in compiled code without the GIL; the import lock
    makes the later imports of the same modules wait for this one instead of repeating it.
    """
    import importlib
    import threading

    def run() -> None:
        for name in modules:
            with contextlib.suppress(Exception):  # the evidence step imports it again and reports
                importlib.import_module(name)

    threading.Thread(target=run, name="operando-prefetch-imports", daemon=True).start()


def _report_store(store: Path, echo: Echo) -> None:
    """Print what a written store says: large dead-time corrections, the isotope evidence.

    Both as ``warning: …`` lines on ``echo`` (the experiment's log in a batch), read from the
    store rather than caught as Python warnings: catching swaps process-global state, which
    the threads of a batch reconstructing several files at once would share.
    """
    from tofsims.dead_time import large_increase_message
    from tofsims.io.volume_store import open_volume
    from tofsims.workflows.fragment_purity import block_spectra, spectrum_isotope_summary

    volume = open_volume(store, dask=False)  # a few channels of the block spectra
    if "dead_time_increase" in volume.attrs:
        fragments = [str(f) for f in volume["fragment"].values]
        source = str(volume.attrs.get("source_file", store))
        message = large_increase_message(volume.attrs["dead_time_increase"], fragments, source)
        if message is not None:
            echo(f"warning: {message}", err=True)
    if "spectrum_part" not in volume:
        return
    # read once: the fits and window sums index the same few thousand channels many times
    evidence, reasons, found = spectrum_isotope_summary(block_spectra(volume).load())
    blocks = volume.sizes["block"]
    echo_isotope_evidence(
        evidence,
        reasons,
        f"counts in the windows of {blocks} depth-block spectr{'um' if blocks == 1 else 'a'}, "
        "fitted where the neighbours are resolved (before dead-time correction)",
        echo,
    )
    for warning in found:
        echo(f"warning: {warning}", err=True)


def _on_a_cluster() -> bool:
    """Whether the caller set a dask scheduler that is not this process's threads.

    ``operando batch`` drives a large experiment with the cluster as scheduler, so that its
    chunks spread over the workers. Without dask imported nobody has chosen one.
    """
    dask = sys.modules.get("dask")
    scheduler = None if dask is None else dask.config.get("scheduler", None)
    return scheduler not in (None, "threads", "threading", *SYNCHRONOUS)


def _local_threads(workers: int | None) -> int | None:
    """Binning threads: one inside a batch worker (one experiment per worker thread)."""
    dask = sys.modules.get("dask")
    synchronous = dask is not None and dask.config.get("scheduler", None) in SYNCHRONOUS
    return 1 if synchronous else workers


def run_reconstruct(
    raw: Path,
    options: ReconstructOptions,
    *,
    output: Path,
    staging: Staging,
    properties: Path | None = None,
    workers: int | None = None,
    echo: Echo = click.echo,
    progress: bool = True,
) -> Path:
    """Reconstruct a GRD file into a volume store (the command and ``operando batch``).

    With ``options.recalibrate`` the mass scale is refitted first, on a sample of the events.
    On one machine the file is then binned in one pass on local threads while the store is
    written (:func:`tofsims.workflows.reconstruct_into`); with a dask cluster as the
    caller's scheduler, by the lazy :func:`tofsims.workflows.reconstruct` on the cluster.
    The store is written under the name ``staging`` gives and published when the caller's
    :func:`pipelines.outputs.publishing` block ends.
    """
    from pipelines.atomic import atomic_directory
    from tofsims.io.grd_records import is_event_list
    from tofsims.workflows.reconstruction import RunWindows, mass_recalibration, open_records

    if not is_event_list(raw):
        raise click.UsageError(f"{raw}: reconstruct needs a GRD event list (*.grd)")
    records = open_records(raw, properties=properties)
    fit = None
    with usage_errors(ReconstructOptions):
        if options.recalibrate:
            fit = mass_recalibration(records, options)
            _echo_calibration(fit, echo)
        windows = RunWindows(records, options, fit)
        echo_windows(windows.record, windows.source, echo)
        with atomic_directory(staging.path(output)) as temporary:
            if _on_a_cluster():
                _reconstruct_with_dask(records, options, fit, windows, temporary, workers,
                                       progress)  # fmt: skip
            else:
                from tofsims.workflows.reconstruction import reconstruct_into

                threads = _local_threads(workers)
                _import_in_background(EVIDENCE_MODULES)
                with CountingBar(records.n_records, enabled=progress) as bar:
                    reconstruct_into(temporary, records, options, fit, windows, workers=threads,
                                     on_events=bar, warn_dead_time=False)  # fmt: skip
    _report_store(staging.path(output), echo)
    ny, nx = (-(-side // options.bin) for side in records.raster)
    sf, k0 = (fit.fit.sf, fit.fit.k0) if fit else (records.properties.sf, records.properties.k0)
    echo(
        f"wrote {output}: {len(windows.fragments)} fragments × {records.n_scans} scans × "
        f"{ny} × {nx} (sf {sf:.3f}, k0 {k0:.3f})"
    )
    return output


def _reconstruct_with_dask(
    records: Any,
    options: ReconstructOptions,
    fit: Any,
    windows: Any,
    folder: Path,
    workers: int | None,
    progress: bool,
) -> None:
    from tofsims.io.volume_store import write_volume
    from tofsims.workflows.reconstruction import open_events, reconstruct

    events = open_events(records.path, records.properties_path)
    volume = reconstruct(events, options, fit, windows)
    with computing(progress=progress, num_workers=workers):
        write_volume(volume, folder, warn_dead_time=False)


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
@overwrite_option
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
    from pipelines.outputs import publishing
    from tofsims.io.grd_records import is_event_list
    from tofsims.workflows import input_files

    options = build_options(ReconstructOptions, values)
    if not is_event_list(raw):
        raise click.UsageError(f"{raw}: reconstruct needs a GRD event list (*.grd)")
    inputs = [raw, *input_files(raw, properties)]
    with publishing({"-o": output}, inputs, overwrite=overwrite) as staging:
        run_reconstruct(
            raw, options, output=output, staging=staging, properties=properties, workers=workers
        )
