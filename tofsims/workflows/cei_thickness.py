"""The CEI workflow: thickness of the cathode-electrolyte interphase (map, budget), coating.

:func:`cei` opens a volume (Zarr store, GRD, 3D ASCII …) or a depth profile, checks that it is
a depth profile of a surface film (:mod:`tofsims.checks`), puts it on the depth scale of a
constant sputter rate and builds, lazily, the layer-stack analysis: for a volume the
whole-field stack fit and the per-bin CEI map refined against each other
(:func:`tofsims.stackmap.cei_stack_analysis`), for a depth profile the stack fit
(:func:`tofsims.stackfit.fit_layer_stack`), and the uncertainty budgets of the CEI and coating
thicknesses (:func:`tofsims.budget.layer_stack_budgets`). :meth:`CeiRun.compute` computes them
in one pass over the data and derives every number of :class:`CeiSummary` (``summary.json`` of
``operando tofsims cei``): the headline thickness (map mean, else whole-field stack fit) with
its budget, the simple estimators beside it, the coating, every fragment's time to maximum
with σ, the bulk marker's time to plateau and the two-marker crossing. Nothing is written.

Fixed processing parameters (documented in ``docs/cli.md``): :data:`BIN_SIZE`, :data:`N_BOOT`,
:data:`SMOOTH_SCANS`, :data:`PLATEAU_FRACTION`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import xarray as xr
from dask.base import is_dask_collection

from operando_core.options import OptionError
from operando_core.readers import package_version
from tofsims.budget import layer_stack_budgets
from tofsims.checks import static_acquisition, surface_marker_diagnostics, surface_marker_warning
from tofsims.depth import depth_constant_rate
from tofsims.errors import AnalysisError, InputCheckError
from tofsims.interfaces import fit_layer, layer_marker, two_marker_crossing
from tofsims.lateral import pixel_size_um
from tofsims.profiles import depth_profile, select_fragment
from tofsims.stackfit import fit_layer_stack
from tofsims.stackmap import cei_stack_analysis, stack_map_statistics
from tofsims.thickness import coating_thickness
from tofsims.timing import time_to_maximum, time_to_plateau
from tofsims.workflows.cei_summary import (
    CeiSummary,
    put_cei,
    put_coating,
    put_crossing,
    put_fragments,
    put_plateau,
    put_stack,
)
from tofsims.workflows.fragment_purity import PurityAnalysis, purity_analysis, purity_summary
from tofsims.workflows.inputs import is_profile, open_input
from tofsims.workflows.options import DEFAULT_BULK, STACK_FRAGMENTS, CeiOptions

__all__ = ["BIN_SIZE", "N_BOOT", "PLATEAU_FRACTION", "SMOOTH_SCANS", "CeiResult", "CeiRun",
           "CeiSummary", "cei"]  # fmt: skip

#: Lateral bin of the CEI map (pixels per side; invalid bins take their 2x and 4x parents).
BIN_SIZE = 4
#: Poisson bootstrap resamples of the whole-field uncertainties (times, crossing, 50 %).
N_BOOT = 20
#: Gaussian smoothing (σ, scans) of a profile before its maximum is located.
SMOOTH_SCANS = 2.0
#: Share of its plateau at which the bulk marker counts as reached (time to plateau).
PLATEAU_FRACTION = 0.9

_COATING = {"auto": None, "yes": True, "no": False}


@dataclass(frozen=True)
class CeiResult:
    """A computed CEI analysis.

    Attributes
    ----------
    map
        Per-bin CEI thickness map of a volume (:func:`tofsims.stackmap.stack_thickness_map`:
        ``thickness(y, x)`` and ``thickness_std`` in nm, ``valid``, ``mask``, ``bin_size``,
        ``reason``, ``counts``); ``None`` for a depth profile.
    profile
        The whole-field depth profile ``intensity(scan, peak)`` with ``depth``.
    stack
        The whole-field layer-stack fit (:func:`tofsims.stackfit.fit_layer_stack`).
    summary
        Every number, :class:`CeiSummary`.
    """

    map: xr.Dataset | None
    profile: xr.Dataset
    stack: xr.Dataset
    summary: CeiSummary


@dataclass(frozen=True)
class CeiRun:
    """A CEI analysis ready to compute: the lazy profile, stack fit, map and budgets.

    Attributes
    ----------
    data
        The input on the depth scale (volume or profile).
    profile
        Whole-field depth profile (lazy for a volume).
    stack
        Whole-field layer-stack fit (lazy).
    thickness_map, statistics
        Per-bin CEI map and its statistics (lazy; ``None`` for a depth profile).
    budgets
        ``{"cei": …, "coating": …}`` uncertainty budgets (lazy).
    stack_fragments
        The fragments fitted jointly by the layer stack.
    warnings
        Failed input checks found so far (only with ``options.force``).
    purity
        Peak fits of the windows and isotope evidence of a volume (lazy; ``None`` for a
        depth profile): the volume's counts are already the fitted ones.
    """

    data: xr.Dataset
    profile: xr.Dataset
    stack: xr.Dataset
    thickness_map: xr.Dataset | None
    statistics: xr.Dataset | None
    budgets: dict[str, xr.Dataset]
    stack_fragments: tuple[str, ...]
    options: CeiOptions
    source: str | None
    warnings: tuple[str, ...] = ()
    purity: PurityAnalysis | None = None

    @property
    def is_volume(self) -> bool:
        """Whether the input is a volume (a map is made) rather than a depth profile."""
        return self.thickness_map is not None

    @property
    def bulk(self) -> str:
        """The bulk marker of the two-marker crossing."""
        return self.options.bulk or DEFAULT_BULK

    def compute(self, **compute_options: Any) -> CeiResult:
        """Compute the profile, stack fit, map and budgets in one pass; derive the summary.

        ``compute_options`` go to :func:`dask.compute`.

        Raises
        ------
        InputCheckError
            The marker's maximum is buried (not a surface film) and ``options.force`` is off.
        """
        lazy = [self.profile, self.stack, *self.budgets.values()]
        if self.thickness_map is not None and self.statistics is not None:
            lazy += [self.thickness_map, self.statistics]
        purity_lazy = [] if self.purity is None else self.purity.lazy()
        computed = _compute_together([*lazy, *purity_lazy], **compute_options)
        purity_computed = computed[len(lazy) :]
        computed = computed[: len(lazy)]
        profile, stack, cei_budget, coating_budget = computed[:4]
        thickness_map, statistics = computed[4:] if len(computed) > 4 else (None, None)
        summary = CeiSummary()
        summary.warnings.extend(self.warnings)
        if self.purity is not None:
            values, reasons, warnings = purity_summary(
                self.data, self.purity.with_computed(purity_computed)
            )
            summary.values |= values
            summary.null_reasons |= reasons
            summary.warnings.extend(warnings)
        else:
            for key in ("resolving_power", "mass_windows", "isotope_evidence"):
                summary.put([key], None, "depth-profile input: no spectrum, no volume")
        self._check_marker(profile, summary)
        if not bool(stack["converged"]):
            summary.warnings.append("the layer-stack fit did not converge")
        self._fill(profile, stack, {"cei": cei_budget, "coating": coating_budget}, statistics,
                   summary)  # fmt: skip
        if thickness_map is not None:
            thickness_map.attrs |= {
                "source_file": self.source,
                "sputter_rate_nm_per_s": self.options.sputter_rate_nm_per_s,
                "producer": f"operando {package_version()} tofsims cei",
                **self._map_scale(),
            }
        return CeiResult(thickness_map, profile, stack, summary)

    def _map_scale(self) -> dict[str, float]:
        """Lateral scale of the map: one cell is BIN_SIZE × BIN_SIZE volume pixels."""
        size = pixel_size_um(self.data)
        if size is None:
            return {}
        scale = {"pixel_size_um": size * BIN_SIZE}
        if "field_of_view_m" in self.data.attrs:
            scale["field_of_view_m"] = float(self.data.attrs["field_of_view_m"])
        return scale

    def _check_marker(self, profile: xr.Dataset, summary: CeiSummary) -> None:
        """Raise (or warn, with ``force``) when the marker's maximum is not at the surface."""
        marker = _marker_counts(profile, self.options.marker, "marker")
        bulk = _column(profile, self.bulk)
        verdict = surface_marker_warning(
            surface_marker_diagnostics(marker, bulk, smooth_scans=SMOOTH_SCANS),
            self.options.marker,
            self.bulk if bulk is not None else None,
        )
        if verdict is None:
            return
        if not self.options.force:
            raise InputCheckError(self.source, verdict)
        summary.warnings.append(verdict)

    def _fill(
        self,
        profile: xr.Dataset,
        stack: xr.Dataset,
        budgets: dict[str, xr.Dataset],
        statistics: xr.Dataset | None,
        summary: CeiSummary,
    ) -> None:
        options, marker = self.options, self.options.marker
        rate_rel = options.sputter_rate_uncertainty_nm_per_s / options.sputter_rate_nm_per_s
        counts = _marker_counts(profile, marker, "marker")
        fifty = layer_marker(counts, level="fitted", n_boot=N_BOOT)
        simple = {
            "50 % after the maximum": fifty["position_50"],
            "erf fit": fit_layer(counts, model="erf", n_boot=0)["position"],
            "emg fit": fit_layer(counts, model="emg", n_boot=0)["position"],
        }
        put_cei(
            summary,
            marker=marker,
            budgets=budgets,
            stack=stack,
            statistics=statistics,
            fifty=fifty,
            simple=simple,
            rate_rel=rate_rel,
            descriptions=_descriptions(marker, self.stack_fragments),
        )
        ceo2 = _column(profile, "CeO2-")
        erf_box = None if ceo2 is None else coating_thickness(ceo2, n_boot=0)
        put_coating(
            summary, budgets["coating"], stack, coating_option=options.coating, erf_box=erf_box
        )
        put_stack(summary, stack, self.stack_fragments, options.coating)
        names, columns = _single_columns(profile)
        if names:
            selected = profile["intensity"].isel(peak=columns)
            put_fragments(
                summary,
                names,
                time_to_maximum(selected, smooth_scans=SMOOTH_SCANS, n_boot=N_BOOT),
                layer_marker(selected, level="fitted", n_boot=0),
                (profile["sputter_time"].values, profile["depth"].values),
            )
        else:
            summary.values["fragments"] = {}
        bulk = _column(profile, self.bulk)
        if bulk is None:
            summary.put(
                ["two_marker_crossing_nm", "value"], None, f"no {self.bulk} signal in the data"
            )
        else:
            plateau = time_to_plateau(
                bulk, fraction=PLATEAU_FRACTION, smooth_scans=SMOOTH_SCANS, n_boot=N_BOOT
            )
            put_plateau(summary, self.bulk, plateau, PLATEAU_FRACTION)
            put_crossing(
                summary, two_marker_crossing(counts, bulk, n_boot=N_BOOT), marker, self.bulk
            )
        summary.values["input"] = {
            "path": self.source,
            "kind": "volume" if self.is_volume else "depth profile",
            "sputter_rate_nm_per_s": options.sputter_rate_nm_per_s,
            "sputter_rate_uncertainty_nm_per_s": options.sputter_rate_uncertainty_nm_per_s,
            "sputter_time_source": self.data.attrs.get("sputter_time_source", "file"),
            "marker": marker,
            "bulk": self.bulk,
            "stack_fragments": list(self.stack_fragments),
            "coating": options.coating,
            "information_depth_nm": options.information_depth_nm,
            "information_depth_uncertainty_nm": options.information_depth_uncertainty_nm,
            "force": options.force,
        }


def cei(data: xr.Dataset | str | os.PathLike[str], options: CeiOptions) -> CeiRun:
    """CEI thickness of a volume or depth profile: layer stack, per-bin map, budgets (lazy).

    Volumes give the whole-field layer-stack fit and a per-bin CEI map
    (:data:`BIN_SIZE` × :data:`BIN_SIZE` pixels, invalid bins filled from their 2× and 4×
    parents) refined against each other; a depth profile gives the stack fit only.

    Parameters
    ----------
    data
        A volume ``counts(fragment, scan, y, x)`` or profile ``intensity(scan, peak)`` of raw
        counts with a ``sputter_time`` (s), or a file/store
        (:func:`tofsims.workflows.open_input`; a GRD is binned with the battery fragments, the
        markers and the stack fragments).
    options
        Sputter rate (and its uncertainty), seconds per scan, CEI and bulk markers, the layer
        stack's fragments, coating and information depth, ``force``.

    Returns
    -------
    CeiRun
        The lazy analysis; nothing is computed (unless ``data`` is held in memory, numpy-backed).

    Raises
    ------
    OptionError
        The marker, a bulk marker or a stack fragment given explicitly is not in the data.
    InputCheckError
        The input is a static acquisition (no depth profile) and ``options.force`` is off.
    """
    wanted = (options.marker, options.bulk or DEFAULT_BULK, *(options.stack_fragments or ()))
    if isinstance(data, xr.Dataset):
        source = data.attrs.get("source_file")
    else:
        source = str(Path(data).resolve())
        data = open_input(data, seconds_per_scan=options.seconds_per_scan, fragments=wanted)
    warnings = []
    purity = None
    if not is_profile(data):
        data, purity = purity_analysis(data)
    static = static_acquisition(data)
    if static is not None:
        if not options.force:
            raise InputCheckError(source, static)
        warnings.append(static)
    data = depth_constant_rate(
        data,
        options.sputter_rate_nm_per_s,
        rate_uncertainty_nm_per_s=options.sputter_rate_uncertainty_nm_per_s,
    )
    volume = not is_profile(data)
    profile = depth_profile(data) if volume else data
    _marker_counts(profile, options.marker, "marker")  # fail fast, before any computation
    if options.bulk is not None:
        _marker_counts(profile, options.bulk, "bulk")  # an explicit bulk marker must exist
    fragments = _stack_fragments(profile, options)
    stack_options = {
        "coating": _COATING[options.coating],
        "information_depth_nm": options.information_depth_nm,
        "information_depth_uncertainty_nm": options.information_depth_uncertainty_nm,
    }
    thickness_map = statistics = None
    if volume:
        stack, thickness_map = cei_stack_analysis(
            data, fragments, bin_size=BIN_SIZE, **stack_options
        )
        statistics = stack_map_statistics(thickness_map)
    else:
        names = _fragment_names(profile)
        columns = profile["intensity"].isel(peak=[names.index(f) for f in fragments])
        stack = fit_layer_stack(columns, **stack_options)
    budgets = layer_stack_budgets(
        stack,
        statistics,
        rate_relative_uncertainty=options.sputter_rate_uncertainty_nm_per_s
        / options.sputter_rate_nm_per_s,
    )
    return CeiRun(data, profile, stack, thickness_map, statistics, budgets, fragments, options,
                  source, tuple(warnings), purity)  # fmt: skip


def _compute_together(datasets: Sequence[xr.Dataset], **compute_options: Any) -> list[xr.Dataset]:
    """Compute several datasets in one :func:`dask.compute` (their shared inputs read once).

    Works on the variables' dask arrays: ``dask.compute`` of Datasets that share 0-d variables
    fails in xarray (pydata/xarray#11329).
    """
    lazy = [
        (index, name)
        for index, ds in enumerate(datasets)
        for name, variable in ds.variables.items()
        if is_dask_collection(variable.data)
    ]
    values = dask.compute(*(datasets[i].variables[name].data for i, name in lazy),
                          **compute_options)  # fmt: skip
    out = [ds.copy(deep=False) for ds in datasets]
    for (index, name), value in zip(lazy, values, strict=True):
        out[index].variables[name].data = value
    return out


def _descriptions(marker: str, fragments: Sequence[str]) -> dict[str, str]:
    """Each headline method in words."""
    joint = ", ".join(fragments)
    return {
        "stack map": f"mean of the per-bin CEI map: Poisson fit of the whole-field layer stack "
        f"({joint}; MRI depth resolution) with one CEI thickness per {BIN_SIZE}x{BIN_SIZE}-pixel "
        "bin, invalid bins filled from their 2x and 4x parents; uncertainty = every budget term "
        "combined",
        "stack fit": f"whole-field layer-stack fit ({joint}; MRI depth resolution, Poisson "
        "likelihood); uncertainty = every budget term combined",
        "50 % after the maximum": f"whole-field depth where {marker} falls to 50 % of its fitted "
        f"maximum after the peak (the layer stack found no CEI); uncertainty = Poisson "
        f"bootstrap ({N_BOOT} resamples), estimator spread and sputter rate combined",
    }


def _marker_counts(profile: Any, fragment: str, role: str) -> Any:
    try:
        return select_fragment(profile["intensity"], fragment)
    except AnalysisError as err:
        raise OptionError(role, str(err)) from err


def _fragment_names(profile: Any) -> list[str]:
    return [str(v) for v in profile["fragment"].values]


def _column(profile: Any, fragment: str) -> Any:
    """Return the profile column of ``fragment``, or None when absent."""
    if fragment not in _fragment_names(profile):
        return None
    return select_fragment(profile["intensity"], fragment)


def _stack_fragments(profile: Any, options: CeiOptions) -> tuple[str, ...]:
    """Choose the stack fragments: as given, else the defaults present plus the markers."""
    present = set(_fragment_names(profile))
    if options.stack_fragments is not None:
        missing = [f for f in options.stack_fragments if f not in present]
        if missing:
            raise OptionError(
                "stack_fragments", f"{', '.join(missing)} not in the data (have: "
                f"{', '.join(sorted(n for n in present if n))})"
            )  # fmt: skip
        return tuple(dict.fromkeys(options.stack_fragments))
    markers = (options.marker, options.bulk or DEFAULT_BULK)
    chosen = [f for f in (*markers, *STACK_FRAGMENTS) if f in present]
    return tuple(dict.fromkeys(chosen))


def _single_columns(profile: Any) -> tuple[list[str], list[int]]:
    """First column of every single (non-sum, non-ratio) fragment: names and peak indices."""
    names = _fragment_names(profile)
    kinds = [str(v) for v in profile["kind"].values] if "kind" in profile.coords else None
    columns: dict[str, int] = {}
    for index, name in enumerate(names):
        if name and name not in columns and (kinds is None or kinds[index] == "single"):
            columns[name] = index
    return list(columns), list(columns.values())
