"""The summary of a processed DEMS run: onsets, evolved amounts, per cycle, with budgets.

:func:`summarize` works on a *computed* result of :func:`dems.process.quantify_run`
(this is where the numbers are produced) and returns a :class:`Summary`: typed
onsets (:class:`dems.onset.Onset`), amounts (:class:`Amount`), cycles and half-cycles,
and a report of the background (:class:`BackgroundReport`). ``Summary.to_dict()`` is
``summary.json`` (keys documented in ``docs/cli.md``); a ``Summary`` also reads and
updates like that dictionary, so callers may add their own bookkeeping keys. The
top-level ``onsets``, ``evolved``, ``delay_s``, ``sensitivity`` and ``cycles`` are a
contract. A number that cannot be determined is ``None`` with a ``reason`` beside it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from dems.amounts import Amount, AmountBudget
from dems.calibration import FARADAY
from dems.drift import white_noise
from dems.onset import Onset, detect_onset
from dems.uncertainty import combine

__all__ = ["BackgroundReport", "CycleSummary", "HalfCycleSummary", "Summary", "summarize"]

PLACEHOLDER_MASS_G = 0.001
#: A charge's onset baseline ends at its first stretch this long (s) without anchors.
BASELINE_GAP_S = 360.0


@dataclass
class HalfCycleSummary:
    """One half-cycle (``summary.json`` ``half_cycles[]``); ``onsets`` for charges only."""

    half_cycle: int
    direction: str
    cycle: int | None
    start_s: float
    end_s: float
    charge_C: float
    evolved: dict[str, Amount]
    onsets: dict[str, Onset] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        out = {
            "half_cycle": self.half_cycle,
            "direction": self.direction,
            "cycle": self.cycle,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "charge_C": self.charge_C,
            "evolved": {g: a.to_dict() for g, a in self.evolved.items()},
        }
        if self.onsets is not None:
            out["onsets"] = {g: o.to_dict() for g, o in self.onsets.items()}
        return out


@dataclass
class CycleSummary:
    """One EC cycle (``summary.json`` ``cycles[]``): onsets of its first charge."""

    cycle: int
    onsets: dict[str, Onset]
    evolved: dict[str, Amount]
    charge_C: float

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "cycle": self.cycle,
            "onsets": {g: o.to_dict() for g, o in self.onsets.items()},
            "evolved": {g: a.to_dict() for g, a in self.evolved.items()},
            "charge_C": self.charge_C,
        }


@dataclass
class BackgroundReport:
    """Which background was subtracted (``summary.json`` ``background``).

    ``channels`` maps each m/z used to its ``anchors_s`` (MS-time intervals the
    background was fitted to), ``steps_s``, ``anchor_fraction`` and ``noise`` (A).
    """

    model: str
    parameters: dict[str, Any]
    channels: dict[str, dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "model": self.model,
            "parameters": dict(self.parameters),
            "channels": self.channels,
            "warnings": list(self.warnings),
        }


@dataclass
class Summary(MutableMapping):
    """Everything ``summary.json`` holds about a run (see :meth:`to_dict`).

    Behaves as a mutable mapping over its JSON form: ``summary["onsets"]`` reads the
    serialised value, ``summary["inputs"] = ...`` adds a key of the caller's (kept in
    ``extra``).
    """

    onsets: dict[str, Onset]
    evolved: dict[str, Amount]
    delay_s: float
    sensitivity: dict[str, dict[str, float]]
    mass_g: float | None
    onset_method: str
    cycles: list[CycleSummary]
    half_cycles: list[HalfCycleSummary]
    background: BackgroundReport
    uncertainty: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``summary.json`` (JSON-ready apart from NaN, which writers turn into null)."""
        out = {
            "onsets": {g: o.to_dict() for g, o in self.onsets.items()},
            "evolved": {g: a.to_dict() for g, a in self.evolved.items()},
            "delay_s": self.delay_s,
            "sensitivity": self.sensitivity,
            "mass_g": self.mass_g,
            "onset_method": self.onset_method,
            "cycles": [c.to_dict() for c in self.cycles],
            "half_cycles": [h.to_dict() for h in self.half_cycles],
            "background": self.background.to_dict(),
            "uncertainty": self.uncertainty,
            "warnings": list(self.warnings),
        }
        out.update(self.extra)
        return out

    def __getitem__(self, key: str) -> Any:
        if key in self.extra:
            return self.extra[key]
        return self.to_dict()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.extra[key] = value

    def __delitem__(self, key: str) -> None:
        del self.extra[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


def _charge_C(t: np.ndarray, current_mA: np.ndarray, sel: np.ndarray) -> float:
    ok = sel & np.isfinite(current_mA)
    return float(np.trapezoid(current_mA[ok] * 1e-3, t[ok])) if ok.sum() > 1 else float("nan")


def _integers(values: xr.DataArray) -> np.ndarray:
    return np.nan_to_num(np.asarray(values.values, float), nan=-1).astype(int)


def _intervals(time: np.ndarray, mask: np.ndarray, join_s: float) -> list[list[float]]:
    """Return the runs of ``mask`` as [start, end] times, joining those closer than ``join_s``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    out: list[list[float]] = []
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        start, end = float(time[a]), float(time[b - 1])
        if out and start - out[-1][1] < join_s:
            out[-1][1] = end
        else:
            out.append([start, end])
    return out


def _background_report(result: xr.Dataset, masses: list[float]) -> BackgroundReport:
    model = json.loads(result.attrs.get("background_model", "{}"))
    report = BackgroundReport(
        str(model.get("model")),
        {k: v for k, v in model.items() if k not in ("model", "windows")},
        {},
    )
    channel_mass = np.asarray(result["channel_mass"].values, float)
    for mass in masses:
        hits = np.flatnonzero(channel_mass == mass)
        if hits.size == 0 or "background_anchor" not in result:
            continue
        c = int(hits[0])
        time = np.asarray(result["channel_time"].values[c], float)
        valid = np.isfinite(time) & np.isfinite(np.asarray(result["signal"].values[c], float))
        anchors = np.asarray(result["background_anchor"].values[c], bool) & valid
        steps = np.asarray(result["background_step_s"].values[c], float)
        report.channels[f"{mass:g}"] = {
            "anchors_s": _intervals(time, anchors, 300.0),
            "steps_s": [float(s) for s in steps[np.isfinite(steps)]],
            "anchor_fraction": float(anchors.sum() / max(valid.sum(), 1)),
            "noise": float(result["background_sigma"].values[c]),
        }
        if report.model == "als" or not valid.any():
            continue
        start, end = float(time[valid].min()), float(time[valid].max())
        margin = max(1800.0, 0.05 * (end - start))
        if not anchors.any():
            report.warnings.append(f"m/z {mass:g}: no background anchors")
        elif time[anchors].min() > start + margin or time[anchors].max() < end - margin:
            report.warnings.append(
                f"m/z {mass:g}: background anchors span {time[anchors].min():.0f}–"
                f"{time[anchors].max():.0f} s of a {start:.0f}–{end:.0f} s record: the "
                "background is extrapolated beyond them"
            )
    return report


@dataclass
class _Run:
    """The computed arrays of a result, the options, and the per-window summaries."""

    result: xr.Dataset
    gases: list[str]
    options: dict[str, Any]
    z: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        result = self.result
        self.t = np.asarray(result["time"].values, float)
        self.potential = np.asarray(result["potential"].values, float)
        self.current = np.asarray(result["current"].values, float)
        self.half = _integers(result["half_cycle"])
        self.direction = np.nan_to_num(np.asarray(result["direction"].values, float)).astype(int)
        self.cycle = (
            _integers(result["cycle"]) if "cycle" in result else np.where(self.half >= 0, 1, -1)
        )
        self.mass_g = float(result.attrs.get("mass_g", np.nan))
        self.budget = AmountBudget(result, self.gases)
        self.noise = {g: white_noise(self.budget.series[g]) for g in self.gases}
        self.charges = [
            h for h in np.unique(self.half[self.half >= 0]) if np.any(self.charge_mask(h))
        ]
        self._onsets: dict[int, dict[str, Onset]] = {}

    def charge_mask(self, h: int) -> np.ndarray:
        return (self.half == h) & (self.direction == 1)

    def onsets(self, h: int | None) -> dict[str, Onset]:
        """Onset of every gas in charge half-cycle ``h`` (None: no charge to look at)."""
        if h is None:
            return {
                gas: Onset(None, None, self.options["method"], {}, reason="no charge half-cycle")
                for gas in self.gases
            }
        if h not in self._onsets:
            self._onsets[h] = {gas: self._onset(gas, int(h)) for gas in self.gases}
        return self._onsets[h]

    def _baseline(self, gas: str, index: np.ndarray) -> np.ndarray:
        """Return the onset baseline of charge samples ``index``.

        Its anchors before the first long stretch without anchors; without anchors, the
        samples below ``baseline_potential_V`` or in the lowest quarter of the rise.
        """
        u = self.potential[index]
        limit = self.options["baseline_potential_V"]
        anchors = self.budget.anchors[gas][index]
        if limit is None and anchors.any():
            t = self.t[index]
            step = float(np.nanmedian(np.diff(t))) if t.size > 1 else 1.0
            gap = max(int(BASELINE_GAP_S / step), 2)
            missing = np.convolve(~anchors, np.ones(gap, int), mode="valid") == gap
            first = int(np.flatnonzero(missing)[0]) if missing.any() else index.size
            return anchors & (np.arange(index.size) < first)
        if limit is None:
            finite = u[np.isfinite(u)]
            if finite.size == 0:
                return np.zeros(index.size, bool)
            limit = finite.min() + 0.25 * (finite.max() - finite.min())
        below = np.isfinite(u) & (u <= limit)
        first_above = np.flatnonzero(~below & np.isfinite(u))
        stop = int(first_above[0]) if first_above.size else index.size
        return below & (np.arange(index.size) < stop)

    def _onset(self, gas: str, h: int) -> Onset:
        options = self.options
        index = np.flatnonzero(self.half == h)
        if index.size < 10:
            return Onset(None, None, options["method"], {}, reason="half-cycle too short")
        values = self.budget.series[gas][index]
        flux = xr.DataArray(
            values,
            dims="time",
            coords={"time": self.t[index], "potential": ("time", self.potential[index])},
        )
        rate = None
        if self.budget.calibrated and np.isfinite(self.mass_g) and self.mass_g > 0:
            rate = options["onset_rate_umol_per_min_g"] * self.mass_g / 60e6
        onset = detect_onset(
            flux,
            self._baseline(gas, index),
            background_sd=self.budget.band[gas][index],
            noise=self.noise[gas],
            method=options["method"],
            k=options["k"],
            persistence=options["persistence"],
            delay_uncertainty_s=options["delay_uncertainty_s"],
            rate=rate,
        )
        onset.extra["signal_units"] = self.budget.units
        onset.extra["half_cycle"] = int(h)
        cycles = self.cycle[index][self.cycle[index] >= 0]
        onset.extra["cycle"] = int(np.bincount(cycles).argmax()) if cycles.size else None
        if onset.rate is not None:
            onset.rate["rate_umol_per_min_g"] = options["onset_rate_umol_per_min_g"]
        if onset.detected:
            onset.extra["charge_at_onset_mAh"] = self._charge_until(index, onset.threshold_time_s)
            if np.isfinite(self.mass_g) and self.mass_g > 0:
                capacity = onset.extra["charge_at_onset_mAh"] / self.mass_g
                onset.extra["specific_capacity_at_onset_mAh_per_g"] = capacity
        else:
            limit = self.budget.flux_limit(gas, k=options["k"], noise=self.noise[gas])
            onset.extra["detection_limit_mol_per_s"] = limit
            if np.isfinite(self.mass_g) and self.mass_g > 0 and self.budget.calibrated:
                onset.extra["detection_limit_umol_per_min_g"] = limit * 60e6 / self.mass_g
        return onset

    def _charge_until(self, index: np.ndarray, t_end: float) -> float:
        """Charge (mAh) passed from the start of the half-cycle to ``t_end``."""
        t = self.t[index]
        current = np.nan_to_num(self.current[index])
        keep = t <= t_end
        t_part = np.append(t[keep], t_end)
        i_part = np.append(current[keep], np.interp(t_end, t, current))
        return float(np.trapezoid(i_part, t_part)) / 3600.0

    def evolved(self, sel: np.ndarray, charges: list[int] | None = None) -> dict[str, Amount]:
        """Return the amount of every gas over the samples ``sel``.

        ``charges``: the charges of the window, whose onsets say whether each gas was
        detected (an upper bound is given when it was not).
        """
        detected = None
        if charges is not None:
            detected = {g: any(self.onsets(h)[g].detected for h in charges) for g in self.gases}
        return self.budget.amounts(self.t, sel, self.mass_g, detected)

    def _charges_in(self, sel: np.ndarray) -> list[int]:
        return [h for h in self.charges if np.any(self.charge_mask(h) & sel)]

    def half_cycle_entries(self) -> list[HalfCycleSummary]:
        entries = []
        for h in np.unique(self.half[self.half >= 0]):
            sel = self.half == h
            cycles = self.cycle[sel][self.cycle[sel] >= 0]
            charge = bool(self.direction[sel][0] == 1)
            entry = HalfCycleSummary(
                int(h),
                "charge" if charge else "discharge",
                int(np.bincount(cycles).argmax()) if cycles.size else None,
                float(self.t[sel][0]),
                float(self.t[sel][-1]),
                _charge_C(self.t, self.current, sel),
                self.evolved(sel, [int(h)] if charge else None),
                self.onsets(int(h)) if charge else None,
            )
            _ratios(entry.evolved, entry.charge_C, self.z)
            entries.append(entry)
        return entries

    def cycle_entries(self) -> list[CycleSummary]:
        entries = []
        for c in np.unique(self.cycle[self.cycle >= 0]):
            sel = self.cycle == c
            charges = self._charges_in(sel)
            entry = CycleSummary(
                int(c),
                self.onsets(charges[0] if charges else None),
                self.evolved(sel, charges),
                _charge_C(self.t, self.current, sel & (self.current > 0)),
            )
            _ratios(entry.evolved, entry.charge_C, self.z)
            entries.append(entry)
        return entries

    def sensitivity(self) -> dict[str, dict[str, float]]:
        if "sensitivity" not in self.result:
            return {}
        matrix = self.result["sensitivity"]
        out = {}
        for gas in self.gases:
            column = matrix.sel(gas=gas)
            out[gas] = {
                f"{m:g}": float(v)
                for m, v in zip(column["mass"].values, column.values, strict=True)
                if v > 0
            }
        return out


def summarize(
    result: xr.Dataset,
    *,
    method: str = "threshold",
    k: float = 3.0,
    persistence: int = 5,
    delay_uncertainty_s: float = 1.0,
    gases: list[str] | None = None,
    z: Mapping[str, float] | None = None,
    baseline_potential_V: float | None = None,
    onset_rate_umol_per_min_g: float = 0.1,
) -> Summary:
    """Summarise a computed DEMS result.

    Parameters
    ----------
    result
        Output of :func:`dems.process.quantify_run`, computed (in memory).
    method, k, persistence
        Onset criterion (:func:`dems.onset.detect_onset`).
    delay_uncertainty_s
        1σ uncertainty of the clock alignment (s, default 1); combined with the
        transit-delay terms the result records from its calibration.
    gases
        Gases to report (default: all gases of the result).
    z
        Electrons per molecule for a Faradaic efficiency, e.g. ``{"CO2": 2}``.
    baseline_potential_V
        Onset baseline: the samples of each charge below this potential (V). Default
        None: the background anchors inside the charge (the samples judged free of
        evolution), else the lowest quarter of the charge's potential rise.
    onset_rate_umol_per_min_g
        Specific rate (µmol min⁻¹ g⁻¹, default 0.1) of the rate onset.

    Returns
    -------
    Summary
        ``onsets`` (the first charge half-cycle of the run), ``evolved`` (whole run),
        ``delay_s``, ``sensitivity``, ``mass_g``, ``cycles``, ``half_cycles``,
        ``background``, ``uncertainty``, ``onset_method``, ``warnings``.
    """
    transit = json.loads(result.attrs.get("transit_terms_json", "{}"))
    transit["clock"] = float(delay_uncertainty_s)
    options = {
        "method": method,
        "k": k,
        "persistence": persistence,
        "delay_uncertainty_s": combine(transit),
        "baseline_potential_V": baseline_potential_V,
        "onset_rate_umol_per_min_g": float(onset_rate_umol_per_min_g),
    }
    gases = list(gases or json.loads(result.attrs.get("gases_json", "[]")))
    run = _Run(result, gases, options, dict(z or {}))
    warnings = []
    if np.isfinite(run.mass_g) and abs(run.mass_g - PLACEHOLDER_MASS_G) < 1e-12:
        warnings.append("active mass is 0.001 g, EC-Lab's placeholder: check --mass")
    background = _background_report(result, run.budget.masses)
    warnings += background.warnings
    return Summary(
        onsets=run.onsets(run.charges[0] if run.charges else None),
        evolved=run.evolved(np.ones(run.t.size, bool), run.charges),
        delay_s=float(result.attrs.get("transit_delay_s", np.nan)),
        sensitivity=run.sensitivity(),
        mass_g=run.mass_g if np.isfinite(run.mass_g) else None,
        onset_method=method,
        cycles=run.cycle_entries(),
        half_cycles=run.half_cycle_entries(),
        background=background,
        uncertainty={
            "alignment_s": combine(transit),
            "alignment_terms_s": transit,
            "calibration_terms": json.loads(result.attrs.get("calibration_terms_json", "{}")),
            "calibration_transfer": json.loads(result.attrs.get("calibration_transfer_json", "{}")),
        },
        warnings=warnings,
    )


def _ratios(evolved: dict[str, Amount], charge: float, z: Mapping[str, float] | None) -> None:
    """Add mol gas per mol e⁻ (and a Faradaic efficiency when z is given)."""
    for gas, amount in evolved.items():
        if amount.umol is None or not np.isfinite(charge) or charge == 0:
            continue
        amount.mol_per_mol_electrons = amount.umol * 1e-6 / (abs(charge) / FARADAY)
        if z and gas in z:
            amount.faradaic_efficiency = z[gas] * FARADAY * amount.umol * 1e-6 / abs(charge)
