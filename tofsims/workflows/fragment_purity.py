"""Fragment purity of a run: windows, interferents inside them, fitted purity, isotope evidence.

At reconstruction (:func:`window_record`, NumPy only) the store records per fragment its
window, the listed interferents inside it with the resolving power each needs, and a purity
estimate from a peak fit of the summed spectrum (attributes ``peak_width_json``,
``mass_windows_json``). At analysis (:func:`purity_analysis`, lazy) the block spectra are
fitted, the counts assigned by the fitted fractions and the isotope evidence taken on them;
:func:`purity_summary` turns the computed result into the ``resolving_power``,
``mass_windows`` and ``isotope_evidence`` blocks of ``summary.json`` (``docs/cli.md``).
:func:`analysis_volume` is the one rule for which counts an analysis uses (``cei``,
``profile``, ``compare``): the fitted ones when the volume can be fitted, else the window's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tofsims.errors import AnalysisError
from tofsims.fragments import NATURAL_6LI_7LI, NATURAL_10B_11B, ion_mass
from tofsims.masscal import window_channels
from tofsims.peak_fit import (
    fit_components,
    fit_range_of,
    fit_window_fractions,
    spectrum_channels,
)
from tofsims.peak_windows import PeakWidth, measure_peak_width, window_interferences

if TYPE_CHECKING:
    import xarray as xr

#: Standard errors by which an isotope ratio must differ from the natural one to be flagged
#: (the default of :func:`tofsims.fragment_evidence.isotope_evidence`).
SIGMAS = 3.0

__all__ = [
    "FITTED_COUNTS",
    "ISOTOPOLOGUES",
    "WINDOW_COUNTS",
    "PurityAnalysis",
    "analysis_volume",
    "block_spectra",
    "measured_on",
    "peak_width_from_resolution",
    "purity_analysis",
    "purity_summary",
    "spectrum_isotope_summary",
    "spectrum_purity_analysis",
    "volume_peak_width",
    "window_record",
    "with_isotopologues",
]

#: The attribute ``counts`` of an analysed volume (and of its profiles): what the counts are.
FITTED_COUNTS = "fitted (peak fits of the block spectra)"
WINDOW_COUNTS = "window"

#: Isotopologue binned beside a fragment so that its isotope ratio can be checked.
ISOTOPOLOGUES = {"BO2-": "10BO2-", "LiF2-": "6LiF2-"}


def with_isotopologues(fragments: Sequence[str]) -> tuple[str, ...]:
    """Add ¹⁰BO₂⁻ after BO₂⁻ and ⁶LiF₂⁻ after LiF₂⁻ when they are not asked already."""
    out: list[str] = []
    for name in fragments:
        out.append(name)
        partner = ISOTOPOLOGUES.get(name)
        if partner is not None and partner not in fragments:
            out.append(partner)
    return tuple(dict.fromkeys(out))


def measured_on(width: PeakWidth) -> str:
    """Say in words which peaks a measured width comes from and the mass range they span.

    The ions one by one are in the record (:meth:`tofsims.peak_windows.PeakWidth.to_record`).
    """
    span = width.measured_mass_range
    if span is None:
        return "peak width (not measured)"
    lightest, heaviest = (
        width.ions[int(np.argmin(width.masses))],
        width.ions[int(np.argmax(width.masses))],
    )
    peaks = "1 calibration peak" if len(width.ions) == 1 else f"{len(width.ions)} calibration peaks"
    return (
        f"peak width measured on {peaks}, {lightest} to {heaviest} ({span[0]:.1f}–{span[1]:.1f} u)"
    )


def peak_width_from_resolution(resolution: float, sf: float, k0: float) -> PeakWidth:
    """Return the peak width a constant resolving power means: ``FWHM_t = (t − k0)/(2R)``."""
    return PeakWidth(0.0, 1.0 / (2.0 * resolution), float(sf), float(k0))


def window_record(
    fragments: Sequence[str],
    mass_low: Sequence[float],
    mass_high: Sequence[float],
    peak_width: PeakWidth | None,
    spectrum: np.ndarray | None,
) -> list[dict[str, Any]]:
    """Every window checked against the interference table, with a purity estimate.

    Parameters
    ----------
    fragments, mass_low, mass_high
        The windows (u).
    peak_width
        The run's peak width (measured or from ``--resolution``); ``None``: unknown.
    spectrum
        Summed spectrum (counts per TOF channel, the calibration of ``peak_width``) for the
        purity fit; ``None``: no purity.

    Returns
    -------
    list of dict
        :func:`tofsims.peak_windows.window_interferences` entries plus
        ``resolving_power_extrapolated`` (the fragment lies outside the mass range of the
        peaks the width was measured on; ``None`` when the width was not measured),
        ``fitted_species``, ``unresolved``, ``purity`` (fragment share of the window's
        counts, or ``None``), ``purity_upper_bound`` and ``purity_reason``.
    """
    masses = [ion_mass(f) for f in fragments]
    powers = [None] * len(fragments) if peak_width is None else peak_width.resolving_power(masses)
    extrapolated: list[bool | None] = [None] * len(fragments)
    if peak_width is not None and peak_width.measured_mass_range is not None:
        extrapolated = [bool(x) for x in peak_width.extrapolated(masses)]
    report = window_interferences(fragments, mass_low, mass_high, list(powers))
    for entry, low, high, outside in zip(report, mass_low, mass_high, extrapolated,
                                         strict=True):  # fmt: skip
        name = entry["fragment"]
        inside = [i["interferent"] for i in entry["interferents_in_window"]]
        entry |= {
            "resolving_power_extrapolated": outside,
            "fitted_species": [],
            "unresolved": [],
            "purity_upper_bound": None,
        }
        if peak_width is None:
            entry |= {"purity": None, "purity_reason": "the peak width is unknown: no fit"}
            continue
        components, unresolved = fit_components(name, float(low), float(high), peak_width)
        entry |= {"fitted_species": components[1:], "unresolved": unresolved}
        if not inside and not components[1:]:
            entry |= {"purity": 1.0, "purity_reason": "no listed interferent in the window"}
            continue
        if spectrum is None:
            entry |= {"purity": None, "purity_reason": "no spectrum to fit"}
            continue
        first, stop = fit_range_of(name, float(low), float(high), peak_width)
        part = np.asarray(spectrum[first : min(stop, len(spectrum))], dtype="float64")
        _, run, _ = fit_window_fractions(part[None, :], first, name, float(low), float(high),
                                         peak_width)  # fmt: skip
        share = float(run[0])
        if unresolved:
            entry |= {
                "purity": None,
                "purity_upper_bound": share if math.isfinite(share) else None,
                "purity_reason": f"{', '.join(unresolved)} not resolved at this resolving "
                "power: counted as the fragment (see isotope_evidence)",
            }
        elif math.isfinite(share):
            entry |= {"purity": share, "purity_reason": "peak fit of the summed spectrum"}
        else:
            entry |= {"purity": None, "purity_reason": "no counts in the window"}
    return report


def volume_peak_width(volume: xr.Dataset) -> tuple[PeakWidth | None, str]:
    """Return the peak width of a volume and where it comes from.

    As recorded at reconstruction, else measured on its summed spectrum (computed here);
    ``None`` with the reason when neither works.
    """
    record = volume.attrs.get("peak_width_json")
    if record not in (None, "null"):
        return PeakWidth.from_record(record), "recorded at reconstruction"
    if "spectrum" not in volume:
        return None, "the volume holds no spectrum (an export, not a reconstructed GRD)"
    sf, k0 = float(volume.attrs["sf"]), float(volume.attrs["k0"])
    try:
        width = measure_peak_width(
            np.asarray(volume["spectrum"].values), sf, k0,
            polarity=str(volume.attrs.get("polarity", "negative")),
            fragments=[str(f) for f in volume["fragment"].values],
        )  # fmt: skip
    except AnalysisError as err:
        return None, str(err)
    return width, "measured on the volume's summed spectrum"


@dataclass(frozen=True)
class PurityAnalysis:
    """Lazy peak fits and isotope evidence of a volume.

    Attributes
    ----------
    peak_width
        The width used (``None``: unknown, nothing fitted).
    width_source
        Where it comes from, or why it is unknown.
    purity
        :func:`tofsims.peak_fit.window_purity` (``None`` without a width or block spectra).
    evidence
        :func:`tofsims.fragment_evidence.isotope_evidence` of the fitted counts.
    evidence_window
        The same of the window counts (what was binned).
    """

    peak_width: PeakWidth | None
    width_source: str
    purity: xr.Dataset | None
    evidence: dict[str, xr.Dataset]
    evidence_window: dict[str, xr.Dataset]

    def lazy(self) -> list[xr.Dataset]:
        """Return the datasets to compute (in this order for :meth:`with_computed`)."""
        out = [] if self.purity is None else [self.purity]
        return out + list(self.evidence.values()) + list(self.evidence_window.values())

    def compute(self, **compute_options: Any) -> PurityAnalysis:
        """Compute every dataset in one :func:`dask.compute` (their inputs read once)."""
        import dask

        lazy = self.lazy()
        keys = [
            (i, name)
            for i, ds in enumerate(lazy)
            for name, variable in ds.variables.items()
            if dask.is_dask_collection(variable.data)
        ]
        # variables, not Datasets: dask.compute of Datasets sharing 0-d variables fails
        # in xarray (pydata/xarray#11329)
        values = dask.compute(*(lazy[i].variables[n].data for i, n in keys), **compute_options)
        out = [ds.copy(deep=False) for ds in lazy]
        for (i, name), value in zip(keys, values, strict=True):
            out[i].variables[name].data = value
        return self.with_computed(out)

    def with_computed(self, computed: Sequence[xr.Dataset]) -> PurityAnalysis:
        """Return a copy holding the computed datasets of :meth:`lazy`."""
        rest = list(computed)
        purity = None if self.purity is None else rest.pop(0)
        evidence = {k: rest.pop(0) for k in self.evidence}
        window = {k: rest.pop(0) for k in self.evidence_window}
        return PurityAnalysis(self.peak_width, self.width_source, purity, evidence, window)


def _fitted_volume(
    volume: xr.Dataset,
) -> tuple[xr.Dataset, PeakWidth | None, str, xr.Dataset | None]:
    """Return the volume with the counts an analysis uses, the peak width, its source, the fits."""
    from tofsims.peak_fit import fitted_counts, window_purity

    if "counts_window" in volume:  # analysed already: fit the window counts, not the fitted
        volume = volume.assign(counts=volume["counts_window"]).drop_vars("counts_window")
    width, source = volume_peak_width(volume) if "counts" in volume else (None, "no volume")
    if width is None or "spectrum_part" not in volume:
        reason = source if width is None else "the volume holds no block spectra to fit"
        return volume.assign_attrs(counts=WINDOW_COUNTS, counts_reason=reason), width, source, None
    purity = window_purity(volume, width)
    fitted = volume.assign(counts_window=volume["counts"], counts=fitted_counts(volume, purity))
    return fitted.assign_attrs(counts=FITTED_COUNTS), width, source, purity


def analysis_volume(volume: xr.Dataset) -> xr.Dataset:
    """Return the volume with the counts every analysis uses: fitted when it can be (lazy).

    A reconstructed GRD volume (block spectra ``spectrum_part`` and a peak width, recorded at
    reconstruction or measured on its summed spectrum) gets the fitted counts
    (:func:`tofsims.peak_fit.fitted_counts`; the binned ones kept as ``counts_window``);
    any other volume (exports: SurfaceLab, 3D ASCII, imzML, BIF6) keeps its window counts.
    ``cei`` (:func:`purity_analysis`), ``profile`` and ``compare`` all take their counts
    from here, so one sample gives one set of numbers.

    Parameters
    ----------
    volume
        ``counts(fragment, scan, y, x)`` (counts per voxel) with ``mass_low``/``mass_high``
        (u); already analysed volumes are fitted again from their ``counts_window``.

    Returns
    -------
    xarray.Dataset
        The volume with attribute ``counts`` = :data:`FITTED_COUNTS` or
        :data:`WINDOW_COUNTS` (then ``counts_reason`` says why nothing was fitted). Lazy:
        only a store without a recorded peak width has its summed spectrum read, to measure
        the width.
    """
    return _fitted_volume(volume)[0]


def purity_analysis(volume: xr.Dataset) -> tuple[xr.Dataset, PurityAnalysis]:
    """Fit the block spectra and assign the counts (lazy); the volume with fitted counts.

    Returns
    -------
    volume, analysis
        :func:`analysis_volume` of the volume — its ``counts`` the fitted counts (the binned
        ones kept as ``counts_window``), the window counts when nothing can be fitted — and
        the lazy :class:`PurityAnalysis`.
    """
    from tofsims.fragment_evidence import isotope_evidence
    from tofsims.peak_fit import block_of_scan

    fitted, width, source, purity = _fitted_volume(volume)
    try:
        blocks = block_of_scan(fitted)
    except ValueError:
        blocks = np.zeros(fitted.sizes["scan"], dtype=np.int64)
    window_evidence = isotope_evidence(fitted.get("counts_window", fitted["counts"]), blocks)
    evidence = isotope_evidence(fitted["counts"], blocks) if purity is not None else {}
    return fitted, PurityAnalysis(width, source, purity, evidence, window_evidence)


def block_spectra(volume: xr.Dataset) -> xr.Dataset:
    """Return the block spectra of a volume with the windows of the isotope pairs' fragments.

    ``spectrum_part(block, tof_channel)`` (and the summed ``spectrum``), the fragments of
    :data:`tofsims.fragment_evidence.ISOTOPE_PAIRS` binned in the volume with their
    ``mass_low``/``mass_high``, ``block_first_scan`` and the volume's attributes: what
    :func:`spectrum_purity_analysis` needs, without the counts.
    """
    import xarray as xr

    from tofsims.fragment_evidence import ISOTOPE_PAIRS

    paired = {f for _, minor, major in ISOTOPE_PAIRS for f in (minor, major)}
    names = [str(f) for f in volume["fragment"].values if str(f) in paired]
    windows = volume[["mass_low", "mass_high"]].sel(fragment=names)
    coords = {
        "fragment": names,
        "mass_low": ("fragment", windows["mass_low"].values),
        "mass_high": ("fragment", windows["mass_high"].values),
    }
    if "block_first_scan" in volume.coords:
        coords["block_first_scan"] = ("block", volume["block_first_scan"].values)
    variables = {}
    for name in ("spectrum_part", "spectrum"):
        if name in volume:
            part = volume[name]
            part = part.drop_vars([c for c in part.coords if c not in part.dims])
            if "tof_channel" not in part.coords:
                part = part.assign_coords(tof_channel=np.arange(part.sizes["tof_channel"]))
            variables[name] = part
    channels = _evidence_channels(volume.attrs, names, coords["mass_low"][1],
                                  coords["mass_high"][1])  # fmt: skip
    if channels is not None and "spectrum_part" in variables:
        # a recorded peak width fixes the channels the fits need: read only those (the
        # stored rows span the whole TOF range), and no summed spectrum to measure it on
        variables["spectrum_part"] = spectrum_channels(variables["spectrum_part"], *channels)[0]
        variables.pop("spectrum", None)
    return xr.Dataset(variables, coords=coords, attrs=dict(volume.attrs))


def _evidence_channels(
    attrs: dict[str, Any], names: Sequence[str], lows: np.ndarray, highs: np.ndarray
) -> tuple[int, int] | None:
    """Channels ``(first, stop)`` holding the windows and fit ranges; ``None``: unknown."""
    record = attrs.get("peak_width_json")
    if record in (None, "null") or not names:
        return None
    width = PeakWidth.from_record(record)
    sf, k0 = float(attrs["sf"]), float(attrs["k0"])
    first, last = window_channels(lows, highs, sf, k0)
    ranges = [
        fit_range_of(n, float(lo), float(hi), width)
        for n, lo, hi in zip(names, lows, highs, strict=True)
    ]
    start = min(int(first.min()), *(r[0] for r in ranges))
    stop = max(int(last.max()) + 1, *(r[1] for r in ranges))
    return max(start, 0), stop


def spectrum_purity_analysis(spectra: xr.Dataset) -> PurityAnalysis:
    """Isotope evidence from block spectra alone: window counts and fitted shares (lazy).

    The counts are the windows' counts in each block's spectrum
    (:func:`tofsims.fragment_evidence.spectrum_isotope_evidence`): what the binning put in
    the volume before any dead-time correction, taken without reading the volume. Used by
    ``operando tofsims reconstruct`` (the stored block spectra) and ``inspect`` (the
    sample's spectrum as one block).

    Parameters
    ----------
    spectra
        :func:`block_spectra` of a volume, or the same built from a spectrum.
    """
    from tofsims.fragment_evidence import spectrum_isotope_evidence
    from tofsims.peak_fit import window_purity

    width, source = volume_peak_width(spectra)
    if spectra.sizes.get("fragment", 0) == 0:  # no isotope pair binned: nothing to take
        return PurityAnalysis(width, source, None, {}, {})
    purity = window_purity(spectra, width) if width is not None else None
    window = spectrum_isotope_evidence(spectra, sigmas=SIGMAS)
    fitted = spectrum_isotope_evidence(spectra, purity, sigmas=SIGMAS) if purity is not None else {}
    return PurityAnalysis(width, source, purity, fitted, window)


def spectrum_isotope_summary(
    spectra: xr.Dataset, **compute_options: Any
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """Compute the ``isotope_evidence`` block of block spectra (:func:`block_spectra`).

    The same block, verdicts and warnings as ``cei``'s ``summary.json``
    (:func:`purity_summary`), from :func:`spectrum_purity_analysis`.

    Returns
    -------
    evidence, null_reasons, warnings
        ``{"boron": …, "lithium": …}`` (``None`` for a pair not binned), dotted key ->
        reason of each ``None``, and the warnings.
    """
    analysis = spectrum_purity_analysis(spectra).compute(**compute_options)
    values, reasons, warnings = purity_summary(spectra, analysis)
    reasons = {k: v for k, v in reasons.items() if k.startswith("isotope_evidence.")}
    return values["isotope_evidence"], reasons, warnings


def _number(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _windows_block(volume: xr.Dataset, analysis: PurityAnalysis) -> dict[str, Any]:
    """``mass_windows``: the recorded window report, with the block fits' purity."""
    names = [str(f) for f in volume["fragment"].values]
    recorded = json.loads(volume.attrs.get("mass_windows_json", "null") or "null")
    if recorded is None:
        spectrum = None  # the block fits below give the purity
        recorded = window_record(names, volume["mass_low"].values, volume["mass_high"].values,
                                 analysis.peak_width, spectrum)  # fmt: skip
    block = {}
    for entry in recorded:
        name = entry["fragment"]
        out = dict(entry)
        if analysis.purity is not None and name in names:
            run = _number(analysis.purity["purity_run"].sel(fragment=name))
            per_block = [_number(v) for v in analysis.purity["purity"].sel(fragment=name).values]
            out["purity_per_block"] = per_block
            if out.get("unresolved"):
                out["purity_upper_bound"] = run
            elif out.get("fitted_species"):
                out["purity"] = run
                out["purity_reason"] = "peak fit of the block spectra (run total)"
                if run is None:
                    out["purity_reason"] = "no counts in the window"
        block[name] = out
    return block


def _evidence_block(
    name: str, fitted: xr.Dataset | None, window: xr.Dataset
) -> tuple[dict[str, Any], list[str]]:
    """One isotope pair's evidence (run and per block) and its warnings."""
    natural = NATURAL_10B_11B if name == "boron" else NATURAL_6LI_7LI
    flag = "interfered" if name == "boron" else "saturated"
    source = fitted if fitted is not None else window
    out: dict[str, Any] = {
        "minor": window.attrs["minor"],
        "major": window.attrs["major"],
        "natural_ratio": natural,
        "counts": "fitted" if fitted is not None else "window",
        "ratio": _number(source["ratio_run"]),
        "ratio_error": _number(source["ratio_error_run"]),
        "window_ratio": _number(window["ratio_run"]),
        "window_ratio_error": _number(window["ratio_error_run"]),
        "per_block": [
            {
                "first_scan": int(first),
                "ratio": _number(r),
                "ratio_error": _number(e),
                "minor_counts": _number(m),
                "major_counts": _number(n),
            }
            for first, r, e, m, n in zip(
                source["first_scan"].values,
                source["ratio"].values,
                source["ratio_error"].values,
                source["minor_counts"].values,
                source["major_counts"].values,
                strict=True,
            )
        ],
    }
    warnings = []
    major = float(window["major_counts"].sum())
    if name == "boron":
        # below natural, m/z 43 holds more than 11BO2- (C2F-, organics): not (only) boron.
        # Above natural, m/z 42 holds more than 10BO2- (CNO-, C2H2O- unresolved): the check
        # can then neither confirm nor refute boron, and says so instead of a verdict.
        ratio, error = out["ratio"], out["ratio_error"]
        below = bool(window["interfered_run"]) and major > 0
        above = (
            not below
            and ratio is not None
            and error is not None
            and ratio > natural + SIGMAS * error
        )
        out["consistent_with_boron"] = None if major == 0 or above else not below
        if below:
            warnings.append(
                f"{window.attrs['major']} window counts are inconsistent with boron: "
                f"10B/11B = {out['window_ratio']:.3g} ± {out['window_ratio_error']:.2g} vs "
                f"natural {natural:.3f}; m/z 43 carries other species (C2F-, CHNO-, C2H3O-, "
                "AlO-), the BO2- signal is not boron"
            )
        elif above:
            out["consistent_with_boron_reason"] = (
                "10B/11B above natural: m/z 42 carries unresolved species (CNO-, C2H2O-)"
            )
            warnings.append(
                f"boron isotope check inconclusive: 10B/11B = {ratio:.3g} ± {error:.2g} is above "
                f"natural {natural:.3f}, m/z 42 carries unresolved species (CNO-, C2H2O-); "
                f"{window.attrs['major']} can be neither confirmed nor refuted as boron"
            )
    else:
        saturated = bool(window["saturated_run"]) and major > 0
        out["saturated"] = None if major == 0 else saturated
        if saturated:
            warnings.append(
                f"6Li/7Li of LiF2- = {out['window_ratio']:.3g} ± {out['window_ratio_error']:.2g} "
                f"above natural {natural:.4f}: 7LiF2- is saturated (or 6LiF2- interfered by "
                "CH2NO-/CO2-)"
            )
    out[flag + "_blocks"] = [
        int(b) for b, v in zip(window["first_scan"].values, window[flag].values, strict=True) if v
    ]
    return out, warnings


def purity_summary(
    volume: xr.Dataset, analysis: PurityAnalysis
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """Make the ``resolving_power``, ``mass_windows`` and ``isotope_evidence`` blocks.

    ``analysis`` must hold computed datasets (:meth:`PurityAnalysis.with_computed`).

    Returns
    -------
    values, null_reasons, warnings
        The blocks, dotted key -> reason of each ``None`` and the warnings (a BO₂⁻ signal
        inconsistent with boron, a saturated ⁷LiF₂⁻).
    """
    names = [str(f) for f in volume["fragment"].values]
    reasons: dict[str, str] = {}
    width = analysis.peak_width
    power: dict[str, Any] = {
        "source": analysis.width_source if width is not None else None,
        "window_source": volume.attrs.get("window_source", "unknown (store predates it)"),
    }
    if width is None:
        power["at_fragments"] = None
        reasons["resolving_power.at_fragments"] = analysis.width_source
    else:
        power["peak_width"] = width.to_record()
        power["at_fragments"] = {n: _number(width.resolving_power(ion_mass(n))) for n in names}
    windows = _windows_block(volume, analysis)
    for name, entry in windows.items():
        if entry.get("purity") is None:
            reasons[f"mass_windows.{name}.purity"] = entry.get("purity_reason", "not fitted")
    evidence: dict[str, Any] = {}
    warnings: list[str] = []
    for key in ("boron", "lithium"):
        if key not in analysis.evidence_window:
            evidence[key] = None
            pair = "10BO2- and BO2-" if key == "boron" else "6LiF2- and LiF2-"
            reasons[f"isotope_evidence.{key}"] = f"{pair} are not both in the volume"
            continue
        block, found = _evidence_block(
            key, analysis.evidence.get(key), analysis.evidence_window[key]
        )
        if block["ratio"] is None:
            reasons[f"isotope_evidence.{key}.ratio"] = f"no {block['major']} counts"
        evidence[key] = block
        warnings += found
    values = {"resolving_power": power, "mass_windows": windows, "isotope_evidence": evidence}
    return values, reasons, warnings
