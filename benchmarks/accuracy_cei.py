"""Accuracy sweep of the CEI thickness at real TOF-SIMS count levels (issue 12).

Not a speed benchmark. For every count level (counts per pixel and scan at the LiF2− maximum)
and seed it generates two 64 × 64 × 250 volumes — ``cycled`` (CEI 4.5–11.5 nm, mean ≈ 8 nm,
no coating) and ``thin`` (3 nm CEI on a 2 nm CeO2 coating), both with an MRI depth resolution of
16–84 % width ≈ 2.4 nm and a surface transient — and runs :func:`tofsims.stackmap.
cei_stack_analysis` on LiF2−, C2HO−, PO3−, CeO2−, NiO2−. It prints, per level:

* mean CEI error (% of the true field mean): map mean (headline), whole-field stack fit, and the
  legacy whole-field "50 % after the maximum" of LiF2−;
* thin-CEI and coating errors (nm): map mean / stack fit / legacy (50 % and erf box);
* map RMSE at 4 × 4-pixel bins (% of the mean) and the valid fraction of bins;
* coverage of 2σ: the headline ± (every budget term, information-depth prior included) and the
  measurement σ alone (statistical ⊕ estimator ⊕ fragment jackknife; the synthetic data use the
  default information depth and the exact sputter rate, so those prior terms are not tested).

Run: ``.venv/bin/python benchmarks/accuracy_cei.py [--seeds 20] [--levels 1 0.5 0.1 0.05]
[--workers 2]``. Uses a process pool (one volume per task, single-threaded dask inside).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

from tofsims.budget import BUDGET_TERMS

FRAGMENTS = ("LiF2-", "C2HO-", "PO3-", "CeO2-", "NiO2-")

RATE_NM_PER_S = 0.05
GOALS = (
    "goals at 0.5: mean within 2 %, thin CEI and coating within 0.15 nm, RMSE <= 5 %, 2σ >= 90 %"
)


def _legacy(profile) -> tuple[float, float]:
    """Whole-field 50 %-after-maximum of LiF2− and the erf-box coating (the old estimators)."""
    from tofsims.interfaces import layer_marker
    from tofsims.profiles import select_fragment
    from tofsims.thickness import coating_thickness

    fifty = float(
        layer_marker(select_fragment(profile["intensity"], "LiF2-"), n_boot=0)["position_50"]
    )
    coating = coating_thickness(select_fragment(profile["intensity"], "CeO2-"), n_boot=0)
    return fifty, float(coating["thickness"])


def run_one(preset: str, level: float, seed: int) -> dict[str, float]:
    """Analyse one generated volume; return errors, σ and map figures."""
    import dask

    from tofsims.budget import layer_stack_budgets
    from tofsims.depth import depth_constant_rate
    from tofsims.profiles import depth_profile
    from tofsims.stackmap import cei_stack_analysis, stack_map_statistics
    from tofsims.synthetic import layered_sample

    with dask.config.set(scheduler="synchronous"):
        volume, truth = layered_sample(preset, seed=seed, marker_peak=("LiF2-", level))
        volume = depth_constant_rate(volume, RATE_NM_PER_S)
        stack, thickness_map = cei_stack_analysis(volume, FRAGMENTS)
        statistics = stack_map_statistics(thickness_map)
        budgets = layer_stack_budgets(stack, statistics)
        stack, thickness_map, statistics = (x.compute() for x in (stack, thickness_map, statistics))
        budgets = {k: v.compute() for k, v in budgets.items()}
        legacy_cei, legacy_coating = _legacy(depth_profile(volume).compute())
    true_map = truth.cei_thickness_nm.coarsen(y=4, x=4, boundary="trim").mean().values
    mean_true = float(truth.cei_thickness_nm.mean())
    found = thickness_map["thickness"].values
    cei, coating = budgets["cei"], budgets["coating"]

    def measurement_sigma(budget) -> float:
        terms = budget["uncertainty"].sel(term=["statistical", "estimator", "fragment_consistency"])
        return float(np.sqrt((terms**2).sum()))

    return {
        "preset": preset,
        "level": level,
        "seed": seed,
        "truth": mean_true,
        "cei": float(cei["value"]),
        "cei_fit": float(stack["value"].sel(parameter="cei_nm")),
        "cei_legacy": legacy_cei,
        "cei_sigma": float(cei["combined"]),
        "cei_sigma_measurement": measurement_sigma(cei),
        "coating_truth": truth.coating_thickness_nm,
        "coating": float(coating["value"]),
        "coating_legacy": legacy_coating,
        "coating_sigma": float(coating["combined"]),
        "coating_sigma_measurement": measurement_sigma(coating),
        "map_rmse": float(np.sqrt(np.nanmean((found - true_map) ** 2))),
        "valid_fraction": float(statistics["valid_fraction"]),
        "mask_fraction": float(thickness_map["mask"].mean()),
        "sigmas": {
            name: dict(
                zip(b["term"].values.tolist(), b["uncertainty"].values.tolist(), strict=True)
            )
            for name, b in budgets.items()
        },
    }


def _stats(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    if not np.isfinite(v).any():
        return "n/a"
    return f"{np.nanmean(v):+.3f}/{np.sqrt(np.nanmean(v**2)):.3f}/{np.nanmax(np.abs(v)):.3f}"


def _coverage(errors: list[float], sigmas: list[float]) -> str:
    e, s = np.asarray(errors), np.asarray(sigmas)
    ok = np.isfinite(e) & np.isfinite(s)
    return f"{np.mean(np.abs(e[ok]) <= 2 * s[ok]) * 100:.0f}%" if ok.any() else "n/a"


def report(results: list[dict[str, float]], levels: list[float]) -> str:
    """Format the table: bias/RMS/max over seeds for every error."""
    lines = [
        "errors as bias/RMS/max|err| over seeds; coverage = share of seeds with |err| <= 2σ",
        "",
        "| counts/px/scan | seeds | mean CEI err % map / fit / legacy 50 % | thin CEI err nm map / "
        "fit / legacy | coating err nm fit / legacy erf-box | map RMSE % (mean/max) | valid "
        "bins (min) | 2σ coverage mean / thin / coating (headline ±) | 2σ coverage (measurement "
        "σ) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for level in levels:
        cyc = [r for r in results if r["preset"] == "cycled" and r["level"] == level]
        thin = [r for r in results if r["preset"] == "thin" and r["level"] == level]
        if not cyc or not thin:
            continue

        def rel(rows, key):
            return [100 * (r[key] - r["truth"]) / r["truth"] for r in rows]

        def diff(rows, key, truth="truth"):
            return [r[key] - r[truth] for r in rows]

        rmse = [100 * r["map_rmse"] / r["truth"] for r in cyc]
        valid = [r["valid_fraction"] for r in cyc + thin]
        coating_errors = diff(thin, "coating", "coating_truth")
        headline = (
            _coverage(diff(cyc, "cei"), [r["cei_sigma"] for r in cyc]),
            _coverage(diff(thin, "cei"), [r["cei_sigma"] for r in thin]),
            _coverage(coating_errors, [r["coating_sigma"] for r in thin]),
        )
        measurement = (
            _coverage(diff(cyc, "cei"), [r["cei_sigma_measurement"] for r in cyc]),
            _coverage(diff(thin, "cei"), [r["cei_sigma_measurement"] for r in thin]),
            _coverage(coating_errors, [r["coating_sigma_measurement"] for r in thin]),
        )
        lines.append(
            f"| {level:g} | {len(cyc)} "
            f"| {_stats(rel(cyc, 'cei'))} / {_stats(rel(cyc, 'cei_fit'))} / "
            f"{_stats(rel(cyc, 'cei_legacy'))} "
            f"| {_stats(diff(thin, 'cei'))} / {_stats(diff(thin, 'cei_fit'))} / "
            f"{_stats(diff(thin, 'cei_legacy'))} "
            f"| {_stats(diff(thin, 'coating', 'coating_truth'))} / "
            f"{_stats(diff(thin, 'coating_legacy', 'coating_truth'))} "
            f"| {np.mean(rmse):.2f} / {np.max(rmse):.2f} "
            f"| {np.mean(valid):.3f} ({np.min(valid):.3f}) "
            f"| {' / '.join(headline)} | {' / '.join(measurement)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--levels", type=float, nargs="+", default=[1.0, 0.5, 0.1, 0.05])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    tasks = [
        (preset, level, seed)
        for level in args.levels
        for seed in range(args.seeds)
        for preset in ("cycled", "thin")
    ]
    results, start = [], time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = {pool.submit(run_one, *task): task for task in tasks}
        for done, future in enumerate(as_completed(futures), start=1):
            results.append(future.result())
            preset, level, seed = futures[future]
            print(
                f"[{done}/{len(tasks)} {time.perf_counter() - start:.0f} s] {preset} "
                f"{level:g} counts seed {seed}",
                flush=True,
            )
    print()
    print(GOALS)
    print(report(results, args.levels))
    print()
    print("median budget terms (nm) per level: " + ", ".join(BUDGET_TERMS))
    for level in args.levels:
        for preset, layer in (("cycled", "cei"), ("thin", "cei"), ("thin", "coating")):
            rows = [
                r["sigmas"][layer] for r in results if r["preset"] == preset and r["level"] == level
            ]
            medians = [np.nanmedian([row[t] for row in rows]) for t in BUDGET_TERMS]
            print(f"  {level:g} {preset} {layer}: " + " ".join(f"{m:.3f}" for m in medians))


if __name__ == "__main__":
    main()
