"""properties.txt parser: values, encoding, NaN, consistency check, malformed input."""

from __future__ import annotations

import math

import pytest

from tofsims.errors import TofsimsReadError
from tofsims.io.properties import parse_properties, read_properties

# Same layout and values as the SurfaceLab 6 PTFE example in formats-tofsims.md §2.
PTFE = (
    "Analysis.PIShots\t6553600\t6553600\t6553600\r\n"
    "Analysis.TotalScans\t100\t100\t100\r\n"
    "Context.MassScale.K0\t-2128\t-2129.247002858151\t-2129.247 \r\n"
    "Context.MassScale.SF\t68915\t68914.58265738007\t68914.583 \r\n"
    "Context.MassScale.Polarity\t1\t1\tPositive\r\n"
    "Measurement.CycleTime\t200\t0.00019999999494757503\t2e+002 \xb5s\r\n"
    "Registration.Raster.FieldOfView\t199\t0.0001992065372178331\t199.207 \xb5m\r\n"
    "Registration.Raster.Resolution\t256\t256\t256\r\n"
    "Registration.Raster.ShotsPerPixel\t1\t1\t1\r\n"
    "Registration.TimeResolution\t0\t5e-11\t50ps\r\n"
    "Measurement.StopCondition.TotalDose\t0\tNaN\t\r\n"
)


@pytest.fixture
def ptfe(tmp_path):
    path = tmp_path / "PTFE4.raw.properties.txt"
    path.write_bytes(PTFE.encode("cp1252"))
    return path


def test_real_layout_values(ptfe):
    props = read_properties(ptfe)
    assert props.sf == pytest.approx(68914.58265738007)  # the double, not the integer 68915
    assert props.k0 == pytest.approx(-2129.247002858151)
    assert props.time_resolution_s == 5e-11
    assert props.raster == (256, 256)
    assert props.total_scans == 100
    assert props.shots_per_pixel == 1
    assert props.field_of_view_m == pytest.approx(199.207e-6, rel=1e-5)
    assert props.cycle_time_s == pytest.approx(200e-6)
    assert props.polarity == "positive"
    assert math.isnan(props.dead_time_s)
    assert math.isnan(props.items["Measurement.StopCondition.TotalDose"].value)
    assert props.items["Registration.Raster.FieldOfView"].display == "199.207 µm"  # cp1252 µ
    assert props.items["Context.MassScale.SF"].line == 4
    props.check_pi_shots()  # 256² × 100 × 1 = 6 553 600


def test_shots_per_pixel_from_pi_shots_when_missing(tmp_path):
    text = PTFE.replace("Registration.Raster.ShotsPerPixel\t1\t1\t1\r\n", "")
    text = text.replace("6553600\t6553600\t6553600", "13107200\t13107200\t13107200")
    props = parse_properties(text, tmp_path / "p.txt")
    assert props.shots_per_pixel == 2


def test_display_string_fallback_and_stage_raster(tmp_path):
    text = (
        "Context.MassScale.SF\t72000\t\t72000.5 \r\n"
        "Registration.Raster.StageRaster.TotalResolution.X\t300\t300\t300\r\n"
        "Registration.Raster.StageRaster.TotalResolution.Y\t200\t200\t200\r\n"
        "Context.MassScale.Polarity\t-1\t-1\t\r\n"
    )
    props = parse_properties(text, tmp_path / "p.txt")
    assert props.sf == 72000.5
    assert props.raster == (200, 300)
    assert props.polarity == "negative"


def test_inconsistent_pi_shots_names_file_and_line(tmp_path):
    path = tmp_path / "bad.properties.txt"
    path.write_bytes(PTFE.replace("6553600\t6553600", "6553600\t6553601").encode("cp1252"))
    with pytest.raises(TofsimsReadError, match=r"bad\.properties\.txt: line 1: Analysis\.PIShots"):
        read_properties(path).check_pi_shots()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Context.MassScale.SF 72000 72000\r\n", r"line 1: expected 'key<TAB>"),
        (
            "Analysis.TotalScans\t1\t1\t1\r\nContext.MassScale.SF\t7\tabc\tabc\r\n",
            r"line 2: property Context.MassScale.SF: the value 'abc' is not a number",
        ),
        (
            "Analysis.TotalScans\t1\t1\t1\r\nAnalysis.TotalScans\t2\t2\t2\r\n",
            r"line 2: property Analysis.TotalScans appears twice",
        ),
        ("\r\n\r\n", r"no properties found"),
    ],
)
def test_malformed_lines(tmp_path, text, message):
    path = tmp_path / "p.properties.txt"
    path.write_bytes(text.encode("cp1252"))
    with pytest.raises(TofsimsReadError, match=message):
        read_properties(path)


def test_missing_and_unusable_values(tmp_path):
    props = parse_properties("Analysis.TotalScans\t0\t2.5\t2.5\r\n", tmp_path / "p.txt")
    with pytest.raises(TofsimsReadError, match=r"Context\.MassScale\.SF is missing"):
        _ = props.sf
    with pytest.raises(TofsimsReadError, match=r"line 1: property Analysis\.TotalScans must be"):
        _ = props.total_scans
    nan_sf = parse_properties("Context.MassScale.SF\t0\tNaN\t\r\n", tmp_path / "p.txt")
    with pytest.raises(TofsimsReadError, match=r"line 1: property Context\.MassScale\.SF has no"):
        _ = nan_sf.sf


@pytest.mark.parametrize(
    ("sf", "k0", "message"),
    [
        ("-68914.6", "-2129.2", r"line 1: Context\.MassScale\.SF must be > 0"),
        ("0", "-2129.2", r"line 1: Context\.MassScale\.SF must be > 0"),
        ("1e12", "-2129.2", r"line 1: Context\.MassScale\.SF must be .* at most 530542"),
        ("68914.6", "-1e6", r"line 2: Context\.MassScale\.K0 = .* 1 u at -931085"),
        ("68914.6", "1e12", r"line 2: Context\.MassScale\.K0 = .* outside 0…16777216"),
    ],
)
def test_mass_scales_no_instrument_has_are_refused(tmp_path, sf, k0, message):
    text = f"Context.MassScale.SF\t0\t{sf}\t\r\nContext.MassScale.K0\t0\t{k0}\t\r\n"
    props = parse_properties(text, tmp_path / "p.txt")
    with pytest.raises(TofsimsReadError, match=message):
        _ = props.sf, props.k0


def test_a_real_mass_scale_is_accepted(tmp_path):
    text = "Context.MassScale.SF\t0\t68914.58\t\r\nContext.MassScale.K0\t0\t-2129.25\t\r\n"
    props = parse_properties(text, tmp_path / "p.txt")
    assert (props.sf, props.k0) == (68914.58, -2129.25)


def test_binary_and_missing_files(tmp_path):
    binary = tmp_path / "x.properties.txt"
    binary.write_bytes(b"\x00\x01\x02garbage")
    with pytest.raises(TofsimsReadError, match="binary content"):
        read_properties(binary)
    with pytest.raises(TofsimsReadError, match="no such file"):
        read_properties(tmp_path / "absent.txt")
