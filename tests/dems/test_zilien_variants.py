"""Zilien files that are only partly readable: a bad auxiliary series, mass-scan spectra."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from dems.errors import DemsReadError, MissingStreamError
from dems.io import zilien

NAME = "2024-01-17 15_13_45 ec-included-mpt-missing.tsv"
MS_SERIES = re.compile(r"^C\d+M\d+$")


@pytest.fixture(scope="module")
def tsv(data_dir: Path) -> Path:
    return data_dir / "dems" / "ixdat_variants" / NAME


def test_auxiliary_series_with_a_backwards_clock_is_dropped(tsv):
    with pytest.warns(UserWarning) as caught:
        ds = zilien.read_ms(tsv, timezone="UTC")
    messages = [str(w.message) for w in caught]
    assert any(
        "line 122: series 'pot': time is not monotonic" in m and "series 'pot' dropped" in m
        for m in messages
    )
    assert not [name for name in ds.variables if str(name).startswith("pot_")]
    assert "iongauge_value_pressure" in ds  # the valid auxiliary series stay
    assert list(ds["channel"].values) == ["M2", "M4", "M18", "M28", "M32", "M40", "M44"]


def test_ms_channels_match_ixdat(tsv):
    import ixdat

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = zilien.read_ms(tsv, timezone="UTC")
        theirs = ixdat.Measurement.read(tsv, reader="zilien")
    for channel in ours["channel"].values:
        expected = theirs[f"{channel} [A]"].data
        values = ours["signal"].sel(channel=channel).values
        np.testing.assert_array_equal(values[np.isfinite(values)], expected)


def test_file_without_ec_block_says_so(tsv):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(MissingStreamError, match="holds no EC-lab block"):
            zilien.read_ec(tsv)


def test_ms_channel_with_a_backwards_clock_stays_an_error(tsv, tmp_path):
    lines = tsv.read_bytes().decode("latin-1").split("\n")
    n_header = int(lines[0].split("\t")[4])
    series = lines[n_header].split("\t")
    column = next(i for i, name in enumerate(series) if MS_SERIES.match(name.strip()))
    row = n_header + 2 + 3  # fourth data row
    fields = lines[row].split("\t")
    fields[column] = "-1.0"
    lines[row] = "\t".join(fields)
    path = tmp_path / "back.tsv"
    path.write_bytes("\n".join(lines).encode("latin-1"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 'pot' series is still dropped
        with pytest.raises(DemsReadError, match=rf"back\.tsv: line {row + 1}: series "):
            zilien.read_ms(path)


def write_mass_scan(path: Path) -> Path:
    """A Zilien mass-scan spectrum: five-field metadata, then ``Mass [AMU]`` vs current."""
    meta = [
        ("num_header_lines", "Number of header lines", "", "int", "8"),
        ("num_data_header_lines", "Number of data header lines", "", "int", "2"),
        ("data_start", "Line number of data start (0-based)", "", "int", "10"),
        ("mass_scan_started_at", "Start time of the mass scan", "", "double", "12.5"),
        ("start_mass", "First mass", "", "double", "1.0"),
        ("stop_mass", "Last mass", "", "double", "50.0"),
        ("points_per_amu", "Points per amu", "", "int", "10"),
        ("dwell_time", "Dwell time [ms]", "", "int", "32"),
    ]
    lines = ["\t".join(fields) for fields in meta]
    lines += ["\t", "Mass [AMU]\tCurrent [A]"]
    lines += [f"{1 + 0.1 * i:.1f}\t{1e-12 * (i + 1):.3e}" for i in range(20)]
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")
    return path


def test_mass_scan_spectrum_is_refused_clearly(tmp_path):
    path = write_mass_scan(tmp_path / "scan.tsv")
    with pytest.raises(DemsReadError, match=r"scan\.tsv: not supported yet: mass-scan spectrum"):
        zilien.read_ms(path)
    with pytest.raises(DemsReadError, match=r"m/z 1-50"):
        zilien.read_ms(path)
