"""The options of issue 11 reach the numbers, from the command line and from a batch manifest.

A generated run whose carrier flow (2.5 sccm) differs from its calibration's (1 sccm, both
controllers at 20 °C) is processed with ``operando dems process`` and by a manifest: the carrier
flow scales the amounts by the flow ratio, the tolerances appear in the budget, the background
and onset options in the summary — and every option is offered, documented and range-checked.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import xarray as xr
from click.testing import CliRunner

from dems.calibration_steps import sccm_mol_per_s
from dems.summary import summarize
from dems.synthetic import SCENARIOS, make_experiment
from dems.synthetic_files import write_experiment
from dems.workflows import ProcessOptions
from operando_core.options import option_fields
from pipelines.batch import execute_experiment
from pipelines.cli import cli
from pipelines.fingerprint import DigestCache, experiment_fingerprint
from pipelines.manifest import ManifestError, load_manifest

DOCS = Path(__file__).parents[2] / "docs"

#: Options that change the calibration transfer, the budget and the onsets (not the background).
TRANSFER = {
    "carrier_flow_sccm": 2.5,
    "flow_reference_C": 25.0,
    "cylinder_tolerance": 0.05,
    "flow_controller_tolerance": 0.03,
    "baseline_potential_V": 4.0,
    "onset_rate_umol_per_min_g": 0.5,
}
#: Options of the drift background (m/z 18 is measured and quantifies no gas here).
BACKGROUND = {"knot_spacing_s": 7200.0, "step_reference_mass": 18.0}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def flags(values):
    """Command-line flags of option values (field name -> value)."""
    spelled = {field.name: spec.flag for field, spec in option_fields(ProcessOptions)}
    return [item for name, value in values.items() for item in (spelled[name], value)]


def process_cli(run, name, values):
    """``operando dems process`` with the given options; return (summary, result path)."""
    result_path, summary_path = run["folder"] / f"{name}.zarr", run["folder"] / f"{name}.json"
    files = run["files"]
    result = invoke(
        "dems", "process", files["ms"], "--ec", files["ec"], "--calibration", run["calibration"],
        "-o", result_path, "--summary", summary_path, *flags(values),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(summary_path.read_text()), result_path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("carrier-flow")
    experiment = make_experiment(seed=8, ms_cycle_s=6.0, **SCENARIOS["carrier_flow"])
    files = write_experiment(experiment, folder)
    calibration = folder / "cal.json"
    made = invoke(
        "dems", "calibrate", files["calibration_ms"], "--steps", files["steps"], "-o", calibration
    )
    assert made.exit_code == 0, made.output
    run = {"folder": folder, "files": files, "calibration": calibration, "truth": experiment.truth}
    run["default"], _ = process_cli(run, "default", {})
    return run


def expected_scale():
    """Calibration flow / carrier flow in mol/s: 1 sccm at 20 °C against 2.5 sccm at 25 °C."""
    return sccm_mol_per_s(20.0) / (2.5 * sccm_mol_per_s(25.0))


def assert_transfer_applied(summary, default):
    transfer = summary["uncertainty"]["calibration_transfer"]
    assert transfer["carrier_flow_sccm"] == 2.5 and transfer["flow_reference_C"] == 25.0
    assert transfer["factor_scale"] == pytest.approx(expected_scale(), rel=1e-9)
    assert default["uncertainty"]["calibration_transfer"] == {}
    for gas in ("O2", "CO2"):
        amount, unscaled = summary["evolved"][gas], default["evolved"][gas]
        # the MS follows the mole fraction: amounts scale by carrier flow / calibration flow
        ratio = amount["umol"] / unscaled["umol"]
        assert ratio == pytest.approx(1 / expected_scale(), rel=0.01), gas
        terms = amount["uncertainty_terms_umol"]
        assert terms["cylinder"] == pytest.approx(abs(amount["umol"]) * 0.05 / math.sqrt(3))
        assert terms["flow_controller"] == pytest.approx(abs(amount["umol"]) * 0.03 / math.sqrt(3))
        rate = summary["onsets"][gas]["rate_onset"]
        assert rate["rate_umol_per_min_g"] == 0.5
        assert rate["rate_mol_per_s"] == pytest.approx(0.5 * summary["mass_g"] / 60e6, abs=0)
        assert default["onsets"][gas]["rate_onset"]["rate_umol_per_min_g"] == 0.1


def assert_baseline_applied(summary, result_path):
    """The onset baseline is the one below 4.0 V, not the anchors (re-summarised here)."""
    dataset = xr.open_zarr(result_path).compute()
    below = summarize(dataset, baseline_potential_V=4.0)["onsets"]
    anchors = summarize(dataset)["onsets"]
    for gas in ("O2", "CO2"):
        got = summary["onsets"][gas]["baseline_sigma_mol_per_s"]
        assert got == pytest.approx(below[gas]["baseline_sigma_mol_per_s"], rel=1e-9, abs=0)
        assert got != pytest.approx(anchors[gas]["baseline_sigma_mol_per_s"], rel=1e-3, abs=0)


def assert_background_applied(summary, truth):
    assert summary["background"]["model"] == "anchored"
    assert summary["background"]["parameters"]["knot_spacing_s"] == 7200.0
    assert summary["background"]["parameters"]["step_reference_mass"] == 18.0
    for gas in ("O2", "CO2"):  # the true amounts, as transferred with a 25 °C reference
        want = truth["evolved"][gas]["umol"] * 293.15 / 298.15
        assert summary["evolved"][gas]["umol"] == pytest.approx(want, rel=0.05), gas


def test_without_the_carrier_flow_the_amounts_are_low_by_the_flow_ratio(run):
    for gas in ("O2", "CO2"):
        want = run["truth"]["evolved"][gas]["umol"] / 2.5
        assert run["default"]["evolved"][gas]["umol"] == pytest.approx(want, rel=0.05), gas
    assert run["default"]["background"]["parameters"]["knot_spacing_s"] == 3600.0
    assert run["default"]["background"]["parameters"]["step_reference_mass"] == 40.0


def test_command_line_passes_the_transfer_budget_and_onset_options(run):
    summary, result_path = process_cli(run, "transfer", TRANSFER)
    assert_transfer_applied(summary, run["default"])
    assert_baseline_applied(summary, result_path)


def test_command_line_passes_the_background_options(run):
    summary, _ = process_cli(run, "background", {**BACKGROUND, **TRANSFER})
    assert_background_applied(summary, run["truth"])


def _manifest(run, folder, lines):
    files = run["files"]
    path = folder / "manifest.toml"
    path.write_text(
        f'[[experiment]]\nname = "flow"\nkind = "dems"\nms = "{files["ms"]}"\n'
        f'ec = "{files["ec"]}"\ncalibration = "{run["calibration"]}"\n{lines}\n'
    )
    return path


def test_manifest_passes_every_new_option(run, tmp_path):
    lines = "\n".join(f"{key} = {value}" for key, value in {**TRANSFER, **BACKGROUND}.items())
    (experiment,) = load_manifest(_manifest(run, tmp_path, lines))
    assert experiment.options_of(ProcessOptions) == ProcessOptions(**TRANSFER, **BACKGROUND)
    out = tmp_path / "out"
    fingerprint = experiment_fingerprint(experiment, DigestCache(tmp_path / "digests.json"))
    record = execute_experiment(experiment, str(out), fingerprint)
    assert "error" not in record, record
    summary = json.loads((out / "flow" / "summary.json").read_text())
    assert_transfer_applied(summary, run["default"])
    assert_background_applied(summary, run["truth"])
    assert_baseline_applied(summary, out / "flow" / "result.zarr")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("carrier_flow_sccm", "0"),
        ("carrier_flow_sccm", "nan"),
        ("flow_reference_C", "80"),
        ("cylinder_tolerance", "0.6"),
        ("flow_controller_tolerance", "-0.01"),
        ("knot_spacing_s", "60"),
        ("step_reference_mass", "0"),
        ("baseline_potential_V", "inf"),
        ("onset_rate_umol_per_min_g", "0"),
        ("carrier_flow_sccm", '"2.5"'),
    ],
)
def test_manifest_refuses_bad_values_before_any_work(run, tmp_path, key, value):
    with pytest.raises(ManifestError, match=rf"experiment 'flow'.*{key}") as info:
        load_manifest(_manifest(run, tmp_path, f"{key} = {value}"))
    assert "manifest.toml" in str(info.value)


def test_a_flow_reference_needs_a_carrier_flow(run, tmp_path):
    with pytest.raises(ManifestError, match=r"flow_reference_C.*carrier_flow_sccm"):
        load_manifest(_manifest(run, tmp_path, "flow_reference_C = 20.0"))
    files = run["files"]
    result = invoke(
        "dems", "process", files["ms"], "--ec", files["ec"], "--calibration", run["calibration"],
        "-o", tmp_path / "r.zarr", "--summary", tmp_path / "s.json", "--flow-reference", "20",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--flow-reference" in result.output and "--carrier-flow" in result.output
    assert not (tmp_path / "s.json").exists()


def test_a_carrier_flow_needs_a_calibration_with_a_flow(run, tmp_path):
    files = run["files"]
    common = ["dems", "process", files["ms"], "--ec", files["ec"], "-o", tmp_path / "r.zarr"]
    common += ["--summary", tmp_path / "s.json", "--carrier-flow", "2.5"]
    result = invoke(*common)
    assert result.exit_code == 1 and "--calibration" in result.output
    faradaic = json.loads(run["calibration"].read_text())
    faradaic.pop("total_flow_mol_per_s")
    faradaic["method"] = "faradaic"
    (tmp_path / "faradaic.json").write_text(json.dumps(faradaic))
    result = invoke(*common, "--calibration", tmp_path / "faradaic.json")
    assert result.exit_code == 1 and "faradaic.json" in result.output, result.output
    assert "carrier flow" in result.output
    assert not (tmp_path / "s.json").exists()


def test_help_offers_every_option_and_the_anchored_background():
    result = invoke("dems", "process", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for field, spec in option_fields(ProcessOptions):
        assert spec.flag in text, field.name
    assert re.search(r"--background \[auto\|anchored\|drift\|", text)
    assert "anchors found from the data" in text
    assert "quiet windows come from the EC record" not in text  # the old background


def test_background_choices_are_the_models_of_the_numerics():
    from dems.background import MODELS
    from dems.workflows.options import BACKGROUND_MODELS

    assert set(BACKGROUND_MODELS) == {"auto", *MODELS}


def test_every_summary_key_is_documented(run):
    """Every key of a summary.json (gases and m/z aside) is named in docs/cli.md."""
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    keys = set()

    def walk(node):
        if isinstance(node, dict):
            keys.update(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(run["default"])
    walk(process_cli(run, "documented", {"carrier_flow_sccm": 2.5, "z": "CO2=2"})[0])
    keys -= {"O2", "CO2", "CO"}
    keys = {key for key in keys if not re.fullmatch(r"[\d.]+", key)}
    assert len(keys) > 60
    spelled = ("`{}`", "`{}[]`", "`{}.")  # a key, a list, a table: `sensitivity.<gas>...`
    assert sorted(k for k in keys if not any(s.format(k) in text for s in spelled)) == []
