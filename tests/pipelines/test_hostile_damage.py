"""Hostile damage: truncated, deleted, corrupt, non-finite and overflowing data.

A damaged input must give an error naming the file (exit 1, nothing written) or a result whose
``summary.json`` lists the damage under ``warnings`` — never a confident number from data that
is not there.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pipelines.server import NothingToShowError, open_entries
from tests.pipelines.hostile import CEI_ON_GRD, invoke, one_line_error

PROCESS = [
    "dems",
    "process",
    "operando.asc",
    "--ec",
    "cell.mpt",
    "--calibration",
    "cal.json",
    "-o",
    "r.zarr",
    "--summary",
    "s.json",
]
CEI = CEI_ON_GRD


@pytest.fixture
def inputs(hostile_inputs):
    return hostile_inputs


def _truncate(path, fraction):
    records = path.stat().st_size // 20
    with open(path, "r+b") as handle:
        handle.truncate(int(records * fraction) * 20)  # at a record boundary


@pytest.mark.parametrize("fraction", [0.1, 0.9])
@pytest.mark.parametrize("command", ["cei", "reconstruct", "profile"])
def test_a_grd_shorter_than_its_properties_is_an_error(inputs, fraction, command):
    _truncate(inputs / "run.itm.grd", fraction)
    arguments = {
        "cei": CEI,
        "reconstruct": ["tofsims", "reconstruct", "run.itm.grd", "-o", "v.zarr"],
        "profile": ["tofsims", "profile", "run.itm.grd", "--seconds-per-scan", 2, "-o", "p.csv"],
    }[command]
    result = invoke(*arguments, cwd=inputs)
    assert result.exit_code == 1, result.output
    line = one_line_error(result)
    assert "run.itm.grd" in line and "truncated" in line
    assert not any((inputs / n).exists() for n in ("c.json", "v.zarr", "p.csv"))


def _chunk_files(store):
    return sorted(p for p in (store / "counts" / "c").rglob("*") if p.is_file())


@pytest.mark.parametrize("damage", ["deleted chunks", "corrupt chunk"])
@pytest.mark.parametrize("command", ["cei", "profile"])
def test_a_damaged_store_is_an_error_naming_it(tmp_path, volume_store, damage, command):
    store = tmp_path / "v.zarr"
    shutil.copytree(volume_store, store)
    chunks = _chunk_files(store)
    if damage == "deleted chunks":
        for path in chunks[::3]:
            path.unlink()
    else:
        chunks[0].write_bytes(b"\x02\x01" + bytes(range(200)))
    arguments = {
        "cei": ["tofsims", "cei", store, "--sputter-rate", 0.05, "--summary", "c.json"],
        "profile": ["tofsims", "profile", store, "-o", "p.csv"],
    }[command]
    result = invoke(*arguments, cwd=tmp_path)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "v.zarr" in lines[0], result.output
    expected = "chunk files are missing" if damage == "deleted chunks" else "cannot be decoded"
    assert expected in lines[0]
    assert not (tmp_path / "c.json").exists() and not (tmp_path / "p.csv").exists()


def test_serve_refuses_a_store_with_deleted_chunks(tmp_path, volume_store):
    store = tmp_path / "v.zarr"
    shutil.copytree(volume_store, store)
    _chunk_files(store)[0].unlink()
    with pytest.raises(NothingToShowError, match="chunk files are missing"):
        open_entries([store])


def _rewrite_columns(path, columns, value, rows=None, first_row=0):
    """Replace the tab-separated fields ``columns`` of data rows with ``value``."""
    lines = path.read_text(encoding="latin-1").split("\n")
    for index in range(first_row, len(lines)):
        fields = lines[index].split("\t")
        if len(fields) <= max(columns) or (rows is not None and index not in rows):
            continue
        for column in columns:
            if fields[column].strip():
                fields[column] = value
        lines[index] = "\t".join(fields)
    path.write_text("\n".join(lines), encoding="latin-1")


def _ms_current_columns(path):
    header = path.read_text(encoding="latin-1").split("\n")[7].split("\t")
    return [i for i, name in enumerate(header) if name.startswith("Ion Current")]


def _ec_column(path, name):
    lines = path.read_text(encoding="latin-1").split("\n")
    header_lines = int(lines[1].split(":")[1])
    header = lines[header_lines - 1].split("\t")
    return header_lines, header.index(name)


def test_an_all_nan_ms_file_is_an_error(inputs):
    ms = inputs / "operando.asc"
    _rewrite_columns(ms, _ms_current_columns(ms), "NaN", first_row=8)
    result = invoke(*PROCESS, cwd=inputs)
    assert result.exit_code == 1, result.output
    line = one_line_error(result)
    assert "operando.asc" in line and "no usable value" in line
    assert not (inputs / "s.json").exists()


@pytest.mark.parametrize("column", ["Ewe/V", "<I>/mA"])
def test_an_all_nan_ec_column_is_an_error(inputs, column):
    first, index = _ec_column(inputs / "cell.mpt", column)
    _rewrite_columns(inputs / "cell.mpt", [index], "NaN", first_row=first)
    result = invoke(*PROCESS, cwd=inputs)
    assert result.exit_code == 1, result.output
    assert "cell.mpt" in one_line_error(result)
    assert not (inputs / "s.json").exists()


def test_overflowing_samples_are_masked_and_reported_in_the_summary(inputs):
    ms = inputs / "operando.asc"
    _rewrite_columns(ms, _ms_current_columns(ms), "1e308", rows={500}, first_row=8)
    first, index = _ec_column(inputs / "cell.mpt", "<I>/mA")
    _rewrite_columns(inputs / "cell.mpt", [index], "1e308", rows={first + 300}, first_row=first)
    result = invoke(*PROCESS, cwd=inputs)
    assert result.exit_code == 0, result.output
    summary = json.loads((inputs / "s.json").read_text())
    warnings = " | ".join(summary["warnings"])
    assert "operando.asc: m/z 32: 1 of" in warnings and "cell.mpt: current: 1 of" in warnings
    assert summary["onsets"]["O2"]["potential_V"] is not None  # one bad row, still an answer
    assert "warning: " in result.output


def test_an_ill_conditioned_calibration_is_reported_in_the_summary(inputs):
    document = json.loads((inputs / "cal.json").read_text())
    o2 = document["sensitivity"]["O2"]
    document["sensitivity"] = {
        "O2": {"32": o2["32"], "16": o2["16"]},
        "CO2": {
            "32": {"F_C_per_mol": o2["32"]["F_C_per_mol"] * 1.00001},
            "16": {"F_C_per_mol": o2["16"]["F_C_per_mol"]},
        },
    }
    (inputs / "cal.json").write_text(json.dumps(document))
    result = invoke(*PROCESS, cwd=inputs)
    assert result.exit_code == 0, result.output
    summary = json.loads((inputs / "s.json").read_text())
    assert any("ill-conditioned" in w for w in summary["warnings"])


def test_an_ms_file_cut_inside_a_time_says_it_is_truncated(inputs):
    ms = inputs / "operando.asc"
    lines = ms.read_bytes().split(b"\n")
    fields = lines[500].split(b"\t")
    ms.write_bytes(b"\n".join(lines[:500]) + b"\n" + fields[0] + b"\t" + fields[1][:2])
    result = invoke(*PROCESS, cwd=inputs)
    assert result.exit_code == 1, result.output
    line = one_line_error(result)
    assert "operando.asc: line 501" in line and "truncated" in line


def test_a_value_cut_short_at_the_end_of_an_ms_file_is_not_read(inputs):
    import dems

    ms = inputs / "operando.asc"
    lines = ms.read_bytes().split(b"\n")
    fields = lines[500].split(b"\t")
    assert fields[2].endswith(b"e-012") or fields[2].endswith(b"e-011")
    ms.write_bytes(b"\n".join(lines[:500]) + b"\n" + b"\t".join(fields[:2]) + b"\t8.7")
    signal = dems.open_ms(ms)["signal"].values
    assert np.nanmax(signal) < 1e-3  # the cut "8.7" (A) is not a sample
