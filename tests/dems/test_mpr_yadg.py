"""Binary EC-Lab .mpr through yadg (extra operando[mpr]): checked against EC-Lab's own .mpt.

Each .mpr in tests/data/dems/eclab_yadg has the .mpt export of the same run beside it (yadg's
test files, GPL-3.0): the .mpt is the ground truth for rows, time, potential, current,
cycle, technique, software version and start time.
"""

from __future__ import annotations

import re
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import dems
from dems.errors import DemsReadError
from dems.io import detect_format, mpr
from dems.io.biologic import read_ec as read_mpt

TZ = "Europe/Berlin"

#: stem, technique code, EC-Lab version in the .mpr log, whether a cycle is expected
PAIRS = [
    ("cp.issue_149", "CP", "11.50", True),
    ("coc.issue_185", "coC", "11.50", True),
    ("ca.issue_149", "CA", "11.50", True),
    ("mb.issue_95", "MB", "11.43", True),
    ("ocv", "OCV", "11.30", False),
    ("peis.issue_225.ewe_ece", "PEIS", "11.61", True),
    ("zir", "ZIR", "11.18", False),
    ("gcpl.pr_182.1", "GCPL", "", True),
    ("bcd.issue_241", "BCD", "1.79", True),
]


@pytest.fixture(scope="module")
def folder(data_dir: Path) -> Path:
    return data_dir / "dems" / "eclab_yadg"


def quiet(reader, path: Path, **options) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return reader(path, timezone=TZ, **options)


def test_yadg_is_installed_for_the_mpr_tests():
    """The test extra must pull in the [mpr] extractor: these tests run, never skip."""
    import yadg.extractors

    assert callable(yadg.extractors.extract)


@pytest.mark.parametrize(("stem", "code", "version", "has_cycle"), PAIRS)
def test_mpr_reads_like_the_mpt_of_the_same_run(folder, stem, code, version, has_cycle):
    binary = quiet(dems.open_ec, folder / f"{stem}.mpr")
    text = quiet(read_mpt, folder / f"{stem}.mpt")
    assert binary.attrs["format"] == mpr.FORMAT
    assert binary.sizes["time"] == text.sizes["time"] > 0
    np.testing.assert_allclose(binary["time"], text["time"], rtol=0, atol=1e-3)
    np.testing.assert_allclose(binary["potential"], text["potential"], rtol=0, atol=1e-6)
    assert binary.attrs["potential_source"] == text.attrs["potential_source"]

    current, expected = binary["current"].values, text["current"].values
    if np.isnan(expected).all():
        assert np.isnan(current).all()
        assert binary.attrs["current_source"].startswith("none")
    else:
        scale = np.nanmax(np.abs(expected))
        np.testing.assert_allclose(current, expected, rtol=0, atol=1e-6 * scale)

    assert ("cycle" in binary) == has_cycle
    if has_cycle:
        np.testing.assert_array_equal(binary["cycle"].values, text["cycle number"].values)
        assert binary["cycle"].dtype == np.int64

    assert binary.attrs["technique_code"] == code
    if text.attrs["technique"]:
        assert binary.attrs["technique"] == text.attrs["technique"]
    assert binary.attrs["ec_lab_version"] == version == text.attrs["ec_lab_version"]
    if text.attrs["start_time"]:
        start_binary = datetime.fromisoformat(binary.attrs["start_time"])
        start_text = datetime.fromisoformat(text.attrs["start_time"])
        assert abs((start_binary - start_text).total_seconds()) < 1.0
        assert binary.attrs["timezone"] == TZ
    else:
        assert binary.attrs["start_time"] == "" and binary.attrs["start_time_missing"]


def test_galvanostatic_mpr_current_is_ec_labs_mean_current(folder):
    """GCPL .mpr store no current; dq/Δt is what EC-Lab exports as <I>/mA."""
    binary = quiet(dems.open_ec, folder / "gcpl.pr_182.1.mpr")
    text = quiet(read_mpt, folder / "gcpl.pr_182.1.mpt")
    assert not {"I", "I_mean"} & set(binary.data_vars)
    assert binary.attrs["current_source"].startswith("dq / time step")
    assert text.attrs["current_source"] == "I_mean"
    np.testing.assert_allclose(binary["current"], text["I_mean"], rtol=0, atol=1e-12)
    # every operating mode is covered: galvanostatic, potentiostatic and rest rows
    assert set(np.unique(binary["mode"].values)) == {1, 2, 3}


def test_mpr_columns_have_the_mpt_names(folder):
    binary = quiet(dems.open_ec, folder / "gcpl.pr_182.1.mpr")
    text = quiet(read_mpt, folder / "gcpl.pr_182.1.mpt")
    shared = {"mode", "ox_red", "Ns", "dq", "control", "Ewe", "Ece", "half cycle", "Q-Qo"}
    assert shared <= set(binary.data_vars) & set(text.data_vars)
    assert binary["control"].attrs["units"] == text["control"].attrs["units"] == "V/mA"
    for name in sorted(shared):
        np.testing.assert_allclose(
            binary[name].values.astype(float), text[name].values, rtol=1e-6, atol=1e-12
        )


def test_waiting_step_is_empty_in_both_formats(folder):
    with pytest.warns(UserWarning, match=r"wait\.mpr: no data points"):
        binary = mpr.read_ec(folder / "wait.mpr", timezone=TZ)
    text = quiet(read_mpt, folder / "wait.mpt")
    assert binary.sizes["time"] == text.sizes["time"] == 0
    assert binary.attrs["technique"] == text.attrs["technique"] == "Wait"
    assert binary.attrs["start_time"] == text.attrs["start_time"]


def test_mpr_backend_and_sniffing(folder):
    path = folder / "ca.issue_149.mpr"
    assert detect_format(path) is mpr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = xr.open_dataset(path, engine="dems_mpr", timezone=TZ, drop_variables=["Pwe"])
    assert "Pwe" not in ds and ds.sizes["time"] == 80
    assert ds.attrs["extractor"].startswith("yadg ")


def test_corrupt_mpr_is_a_one_line_error(folder, tmp_path):
    path = tmp_path / "cut.mpr"
    path.write_bytes((folder / "ca.issue_149.mpr").read_bytes()[:3000])
    with pytest.raises(DemsReadError, match=r"cut\.mpr: yadg cannot read this \.mpr file") as info:
        dems.open_ec(path)
    assert "\n" not in str(info.value)


def test_inspect_shows_technique_and_version_for_mpr_and_mpt(folder):
    from pipelines.cli import cli

    files = [str(folder / "coc.issue_185.mpr"), str(folder / "coc.issue_185.mpt")]
    result = CliRunner().invoke(cli, ["dems", "inspect", *files, "--timezone", TZ])
    assert result.exit_code == 0, result.output
    assert result.output.count("technique  : Constant Current") == 2
    assert re.search(r"software   : v11\.50\n", result.output)  # .mpr: version only
    assert re.search(r"software   : EC-Lab 11\.50\n", result.output)
    json_result = CliRunner().invoke(cli, ["dems", "inspect", files[0], "--json"])
    assert '"ec_lab_version": "11.50"' in json_result.output
