"""EC-Lab .mpt column-title variants from real files: each read against the raw text.

Files: yadg's EC-Lab test files (tests/data/dems/eclab_yadg) and ixdat's quirk files
(tests/data/dems/ixdat_variants); see their SOURCES.md.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from dems.io.biologic import read_ec
from dems.io.eclab_columns import canonical_variables, split_column_title, variable_names

TZ = "UTC"
SECOND_CURRENT = r"'<I>/mA' repeats quantity 'I_mean'; stored as 'I_mean_2'"
ZIR = "multiple_techniques_dataset_01_07_ZIR_C01.mpt"


@pytest.fixture(scope="module")
def yadg_dir(data_dir: Path) -> Path:
    return data_dir / "dems" / "eclab_yadg"


@pytest.fixture(scope="module")
def ixdat_dir(data_dir: Path) -> Path:
    return data_dir / "dems" / "ixdat_variants"


def raw_columns(path: Path) -> tuple[list[str], list[list[str]], int]:
    """Titles, data fields and title-line number, split by hand from the raw text."""
    lines = path.read_bytes().decode("latin-1").splitlines()
    n_header = int(re.search(r"\d+", lines[1]).group())
    titles = lines[n_header - 1].split("\t")
    rows = [line.split("\t") for line in lines[n_header:] if line.strip()]
    return titles, rows, n_header


def raw_column(path: Path, title: str, occurrence: int = 0) -> np.ndarray:
    """The ``occurrence``-th column titled ``title``, parsed from the text (either decimal)."""
    titles, rows, _ = raw_columns(path)
    index = [i for i, t in enumerate(titles) if t == title][occurrence]
    return np.array([float(row[index].replace(",", ".")) for row in rows])


def quiet_read(path: Path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_ec(path, timezone=TZ, **options)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("<Ewe/V>", ("<Ewe>", "V")),
        ("<Ewe>/V", ("<Ewe>", "V")),
        ("Ecell/V", ("Ecell", "V")),
        ("<I>/mA", ("<I>", "mA")),
        ("control/V/mA", ("control", "V/mA")),
        ("d(Q-Qo)/dE/mA.h/V", ("d(Q-Qo)/dE", "mA.h/V")),
        ("dI/dt/mA/s", ("dI/dt", "mA/s")),
        ("Q charge/discharge/mA.h", ("Q charge/discharge", "mA.h")),
        ("Acir/Dcir Control", ("Acir/Dcir Control", "")),
    ],
)
def test_titles_split_into_quantity_and_unit(title, expected):
    assert split_column_title(title) == expected


def test_names_read_well_and_never_collide():
    titles = ["<Ewe/V>", "<I>/mA", "control/V/mA", "control/V", "control/mA", "<I>/mA"]
    with pytest.warns(UserWarning, match=SECOND_CURRENT):
        names = variable_names(titles, "x.mpt")
    assert names == ["Ewe_mean", "I_mean", "control", "control_V", "control_mA", "I_mean_2"]


@pytest.mark.parametrize("stem", ["cp.issue_149", "coc.issue_185"])
def test_averaged_potential_written_as_ewe_slash_v(yadg_dir, stem):
    path = yadg_dir / f"{stem}.mpt"
    ds = quiet_read(path)
    expected = raw_column(path, "<Ewe/V>")
    assert ds.attrs["potential_source"] == "Ewe_mean"
    assert "Ewe_mean" in ds and ds["Ewe_mean"].attrs["units"] == "V"
    assert np.isfinite(ds["potential"]).all()
    np.testing.assert_array_equal(ds["potential"].values, expected)
    assert float(np.abs(ds["potential"]).max()) > 1e-3  # a measured potential, not zeros


def test_battery_cell_voltage_ecell_is_the_potential(yadg_dir):
    path = yadg_dir / "bcd.issue_241.mpt"
    ds = quiet_read(path)
    assert ds.attrs["potential_source"] == "Ecell"
    np.testing.assert_array_equal(ds["potential"].values, raw_column(path, "Ecell/V"))
    assert ds.attrs["software"] == "BT-Lab"
    assert ds.attrs["ec_lab_version"] == "1.79"
    np.testing.assert_array_equal(ds["current"].values, raw_column(path, "I/mA"))


@pytest.mark.parametrize(
    ("name", "first_current"),
    [
        ("multiple_techniques_dataset_01_01_PEIS_C01.mpt", -2.3689946e-2),
        ("dataset_with_loop_01_05_PEIS_DUSB0_C01.mpt", None),
    ],
)
def test_duplicate_current_columns_both_survive(ixdat_dir, name, first_current):
    path = ixdat_dir / name
    with pytest.warns(UserWarning, match=SECOND_CURRENT):
        ds = read_ec(path, timezone=TZ)
    first, second = raw_column(path, "<I>/mA", 0), raw_column(path, "<I>/mA", 1)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(ds["I_mean"].values, first)
    np.testing.assert_array_equal(ds["I_mean_2"].values, second)
    np.testing.assert_array_equal(ds["current"].values, first)
    if first_current is not None:
        assert ds["current"].values[0] == pytest.approx(first_current, rel=1e-12)


def test_peis_title_line_with_empty_and_dataless_titles(yadg_dir):
    path = yadg_dir / "peis.issue_225.ewe_ece.mpt"
    titles, rows, title_line = raw_columns(path)
    assert len(titles) == 63 and titles[61] == "" and titles[62] == "Ewe-Ece/V"
    assert {len(row) for row in rows} == {61}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = read_ec(path, timezone=TZ)
    messages = [str(w.message) for w in caught]
    empty = f"line {title_line}: empty column title(s) at position(s) 62"
    dataless = f"line {title_line}: column title(s) 'Ewe-Ece/V' have no data"
    assert any(empty in m for m in messages)
    assert any(dataless in m for m in messages)
    assert ds.sizes["time"] == 32
    assert "Ewe-Ece" not in ds
    np.testing.assert_array_equal(ds["Rwe-ce"].values, raw_column(path, "Rwe-ce/Ohm"))
    np.testing.assert_array_equal(ds["potential"].values, raw_column(path, "<Ewe>/V"))
    np.testing.assert_array_equal(ds["cycle"].values, raw_column(path, "cycle number"))


@pytest.mark.parametrize(
    ("folder", "name", "technique"),
    [
        ("eclab_yadg", "wait.mpt", "Wait"),
        ("ixdat_variants", ZIR, "IR compensation (PEIS)"),
    ],
)
def test_technique_without_data_points_gives_an_empty_dataset(data_dir, folder, name, technique):
    path = data_dir / "dems" / folder / name
    with pytest.warns(UserWarning, match=rf"{re.escape(name)}: line \d+: no data points"):
        ds = read_ec(path, timezone=TZ)
    assert ds.sizes["time"] == 0
    assert ds["potential"].shape == (0,) and ds["current"].shape == (0,)
    assert ds.attrs["technique"] == technique
    assert ds.attrs["start_time"]  # the header still dates the (empty) step


def test_variant_datasets_write_to_netcdf(yadg_dir, tmp_path):
    ds = quiet_read(yadg_dir / "cp.issue_149.mpt")
    target = tmp_path / "cp.nc"
    ds.to_netcdf(target, engine="netcdf4")
    assert target.stat().st_size > 0


def test_cycle_from_half_cycle_matches_ec_labs_cycle_number(yadg_dir):
    ds = quiet_read(yadg_dir / "gcpl.pr_182.1.mpt")
    columns = {name: ds[name].values for name in ds.data_vars if name != "cycle number"}
    units = {name: ds[name].attrs.get("units", "") for name in ds.data_vars}
    time = ds["time"].values
    variables, attrs = canonical_variables(columns, units, time, np.arange(time.size), "x")
    assert attrs["cycle_source"].startswith("half cycle // 2")
    assert int(ds["cycle number"].max()) == 4
    np.testing.assert_array_equal(variables["cycle"].values, ds["cycle number"].values)


def test_control_current_where_the_file_holds_no_measured_current(yadg_dir):
    """GCPL: without <I> and dq, the applied current of control/V/mA is the current."""
    ds = quiet_read(yadg_dir / "gcpl.pr_182.1.mpt")
    columns = {name: ds[name].values for name in ds.data_vars if name not in ("I_mean", "dq")}
    units = {name: ds[name].attrs.get("units", "") for name in ds.data_vars}
    time = ds["time"].values
    variables, attrs = canonical_variables(columns, units, time, np.arange(time.size), "x")
    current, measured, mode = variables["current"].values, ds["I_mean"].values, ds["mode"].values
    assert attrs["current_source"].startswith("control on galvanostatic rows")
    galvanostatic = mode == 1
    assert galvanostatic.sum() > 1000
    scale = np.abs(measured).max()
    assert np.abs(current[galvanostatic] - measured[galvanostatic]).max() < 0.01 * scale
    np.testing.assert_array_equal(current[mode == 3], 0.0)
    np.testing.assert_array_equal(measured[mode == 3], 0.0)  # what EC-Lab itself exports
    assert np.isnan(current[mode == 2]).all()


def test_mpt_without_header_has_no_software_version(yadg_dir):
    ds = quiet_read(yadg_dir / "gcpl.pr_182.1.mpt")
    assert ds.attrs["ec_lab_version"] == ""
    assert "ec_lab_version_missing" in ds.attrs
    assert ds.attrs["start_time"] == ""
