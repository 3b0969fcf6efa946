import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pipelines.cli import cli

DATA = Path(__file__).parents[1] / "data" / "tofsims"
NEGATIVE = DATA / "uhasselt_surfacelab73_depth_profiles" / "I241209p_A_MAPI_1f-1nA_neg-B4 - NF.txt"
STATIC = DATA / "uhasselt_surfacelab73_depth_profiles" / "I241213h_M_PCBM-ref_2D_neg-B1 - NF.txt"
CONTINUOUS = DATA / "pyimzml_examples" / "Example_Continuous.imzML"


def run(*args):
    return CliRunner().invoke(cli, ["tofsims", "inspect", *map(str, args)])


def test_surfacelab_text_output():
    result = run(STATIC)
    assert result.exit_code == 0, result.output
    assert "IONTOF SurfaceLab ASCII depth profile" in result.output
    assert "scan=47, peak=132" in result.output
    assert "1.6384 … 152.371 s" in result.output
    assert "PO3-" in result.output and "PO_3-" in result.output


def test_surfacelab_json_reports_peaks_and_warning():
    result = run("--json", NEGATIVE)
    assert result.exit_code == 0
    assert "dropped 1 final data point" in result.stderr
    (summary,) = json.loads(result.stdout)
    assert summary["engine"] == "tofsims_surfacelab"
    assert summary["dimensions"] == {"scan": 164, "peak": 132}
    assert summary["sputter_time"] == {"min": 0.0, "max": 239.056, "units": "s"}
    po3 = next(p for p in summary["peaks"] if p["peak_label"] == "PO_3-")
    assert po3 == {
        "peak_label": "PO_3-",
        "fragment": "PO3-",
        "kind": "single",
        "mass_center": 78.9639,
    }
    total = summary["peaks"][0]
    assert total["kind"] == "total" and total["mass_center"] is None  # NaN -> null
    assert summary["attributes"]["polarity"] == "negative"
    assert summary["attributes"]["poisson_corrected"] == 1
    assert summary["attributes"]["seconds_per_scan"] == pytest.approx(1.4666)


def test_imzml_json_is_lazy_summary():
    result = run("--json", CONTINUOUS)
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)
    assert summary["dimensions"] == {"z": 1, "y": 3, "x": 3, "mz": 8399}
    assert summary["variables"]["intensity"]["lazy"] is True
    assert summary["mz"]["min"] == pytest.approx(100.0833, abs=1e-4)
    assert summary["sputter_time"] is None


def test_bif6_and_ascii3d_folder(tmp_path):
    stack = np.arange(2 * 2 * 3, dtype=np.uint32).reshape(2, 2, 3)
    stack[0] = stack[1]
    bif = tmp_path / "img.bif6"
    bif.write_bytes(
        b"\x00\x00BIF6"
        + struct.pack("<3H", 2, 3, 2)
        + struct.pack("<I3f", 0, 0.0, 0.0, 500.0)
        + stack[0].tobytes()
        + struct.pack("<I3f", 1, 62.9, 62.96, 63.0)
        + stack[1].tobytes()
    )
    folder = tmp_path / "export"
    folder.mkdir()
    rows = "\n".join(f"{i % 2} {(i // 2) % 2} {i // 4} {i}" for i in range(8))
    (folder / "m (1) - ^6LiF_2-.txt").write_text("# h\n" + rows + "\n")
    result = run("--json", bif, folder)
    assert result.exit_code == 0, result.output
    bif_summary, ascii_summary = json.loads(result.stdout)
    assert bif_summary["peaks"][1]["mass_center"] == np.float32(62.96).item()
    assert bif_summary["attributes"]["layout"] == "12-byte header"
    assert ascii_summary["dimensions"] == {"fragment": 1, "scan": 2, "y": 2, "x": 2}
    assert ascii_summary["peaks"][0]["fragment"] == "6LiF2-"
    assert ascii_summary["sputter_time"]["min"] is None
    text = run(folder)
    assert "6LiF2-" in text.output and "not in the export" in text.output


def test_bad_file_is_one_line_error(tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_bytes(bytes(range(256)) * 4)
    result = run(junk)
    assert result.exit_code == 1
    assert "junk.txt" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    truncated = tmp_path / "cut.txt"
    truncated.write_bytes(STATIC.read_bytes()[:20000])
    result = run(truncated)
    assert result.exit_code == 1 and "cut.txt: line" in result.output


def test_missing_file_and_no_argument_are_usage_errors(tmp_path):
    assert run(tmp_path / "nope.txt").exit_code == 2
    assert run().exit_code == 2


def test_help_has_examples_and_stays_light():
    result = run("--help")
    assert result.exit_code == 0 and "Examples:" in result.output
    code = (
        "import sys\n"
        "from pipelines.cli import main\n"
        "try:\n"
        "    main(['tofsims', 'inspect', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "for name in ('xarray', 'dask', 'pyimzml'):\n"
        "    assert name not in sys.modules, name\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_every_tofsims_reader_names_its_engine():
    """`tofsims inspect` prints the module's ENGINE: the engine it is registered as."""
    import importlib
    from importlib.metadata import entry_points

    engines = [e for e in entry_points(group="xarray.backends") if e.name.startswith("tofsims_")]
    assert len(engines) >= 5
    for engine in engines:
        module = importlib.import_module(engine.value.split(":")[0])
        assert getattr(module, "ENGINE", None) == engine.name, engine.value
