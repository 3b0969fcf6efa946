"""``operando tofsims inspect``: what is in a TOF-SIMS file (any supported format)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import click

EPILOG = """\b
Examples:
  operando tofsims inspect "I241209p_A_MAPI_1f-1nA_neg-B4 - NF.txt"
  operando tofsims inspect Example_Continuous.imzML --json
  operando tofsims inspect export_folder/          (IONTOF 3D ASCII per-peak files)
  operando tofsims inspect images.bif6 raw.grd
"""


def inspect_path(path: Path) -> dict[str, Any]:
    """Open ``path`` with the reader its content calls for and describe the result."""
    from tofsims.inventory import describe
    from tofsims.io import detect_format

    module = detect_format(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = module.read(path)
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    summary = describe(dataset)
    summary["file"] = str(path)
    summary["engine"] = getattr(module, "ENGINE", None)
    summary |= _grd_windows(path)
    return summary


def _grd_windows(path: Path) -> dict[str, Any]:
    """Describe a GRD event list's default mass windows, measured on a sample of its events.

    ``window_source``, ``resolving_power`` (per fragment) and ``mass_windows`` (the listed
    interferents in each window, a purity estimate); nothing for other formats.
    """
    from tofsims.io.grd_records import is_event_list

    if not is_event_list(path):
        return {}
    from tofsims.workflows.options import ReconstructOptions
    from tofsims.workflows.reconstruction import RunWindows, open_records

    windows = RunWindows(open_records(path), ReconstructOptions(recalibrate=False), None)
    record = windows.record
    return {
        "window_source": windows.source,
        "resolving_power": {e["fragment"]: e["resolving_power"] for e in record},
        "mass_windows": record,
        **_sample_isotope_evidence(windows),
    }


def _sample_isotope_evidence(windows: Any) -> dict[str, Any]:
    """Take ``isotope_evidence`` from the sample's spectrum (the run as one block)."""
    from tofsims.workflows.fragment_purity import spectrum_isotope_summary

    spectra = windows.sample_spectra()
    if spectra is None:
        reason = f"no sampled spectrum to take it from (windows: {windows.source})"
        return {
            "isotope_evidence": None,
            "isotope_evidence_reasons": {"isotope_evidence": reason},
            "isotope_evidence_warnings": [],
        }
    evidence, reasons, found = spectrum_isotope_summary(spectra)
    return {
        "isotope_evidence": evidence,
        "isotope_evidence_reasons": reasons,
        "isotope_evidence_warnings": found,
    }


def _number(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:g}{unit}" if isinstance(value, float) else f"{value}{unit}"


def _echo_sample_evidence(summary: dict[str, Any]) -> None:
    from pipelines.commands.tofsims_reconstruct import echo_isotope_evidence

    evidence, reasons = summary["isotope_evidence"], summary["isotope_evidence_reasons"]
    if evidence is None:
        click.echo(f"isotope evidence: n/a ({reasons['isotope_evidence']})")
        return
    echo_isotope_evidence(
        evidence,
        reasons,
        "counts in the windows of the sampled spectrum (the whole run; per depth block in "
        "the reconstruct output), fitted where the neighbours are resolved",
        click.echo,
    )
    for warning in summary["isotope_evidence_warnings"]:
        click.echo(f"warning: {warning}", err=True)


def _echo_summary(summary: dict[str, Any]) -> None:
    click.echo(summary["file"])
    click.echo(f"  format           : {summary['format']}  (engine {summary['engine']})")
    dims = ", ".join(f"{k}={v}" for k, v in summary["dimensions"].items())
    click.echo(f"  dimensions       : {dims}")
    for name, var in summary["variables"].items():
        lazy = "lazy" if var["lazy"] else "in memory"
        click.echo(
            f"  variable         : {name}({', '.join(var['dims'])}) {var['dtype']} "
            f"[{var['units'] or '-'}] {lazy}"
        )
    for name in ("sputter_time", "mz"):
        span = summary[name]
        if span is not None:
            unit = f" {span['units']}" if span["units"] else ""
            note = f"  ({span['note']})" if span.get("note") else ""
            click.echo(f"  {name:<17}: {_number(span['min'])} … {_number(span['max'])}{unit}{note}")
    for key, value in summary["attributes"].items():
        text = _number(value)
        click.echo(f"  {key:<17}: {text[:100] + '…' if len(text) > 100 else text}")
    if "mass_windows" in summary:
        from pipelines.commands.tofsims_reconstruct import echo_windows

        echo_windows(summary["mass_windows"], summary["window_source"], click.echo)
        _echo_sample_evidence(summary)
    peaks = summary["peaks"]
    if peaks:
        click.echo(f"  peaks            : {len(peaks)}")
        for index, peak in enumerate(peaks):
            label = peak.get("peak_label", peak.get("fragment"))
            masses = " ".join(
                f"{key.removeprefix('mass_')}={_number(peak[key])}"
                for key in ("mass_low", "mass_center", "mass_high")
                if key in peak
            )
            fragment = peak.get("fragment") or ""
            click.echo(
                f"    {index:>4} {peak.get('kind') or '':<6} {fragment:<16} {masses:<40} {label}"
            )


@click.command(epilog=EPILOG)
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    metavar="FILE...",
    type=click.Path(exists=True, path_type=Path),
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of text."
)
def inspect(paths: tuple[Path, ...], as_json: bool) -> None:
    """Show format, dimensions, peaks/fragments with masses and sputter-time range of FILEs.

    The format is recognised from the content (SurfaceLab ASCII profile, imzML, BIF6,
    IONTOF 3D ASCII export folder or file, GRD when available). Nothing large is computed:
    lazy readers only read their headers.
    """
    report = []
    for path in paths:
        summary = inspect_path(path)
        report.append(summary)
        if not as_json:
            _echo_summary(summary)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
