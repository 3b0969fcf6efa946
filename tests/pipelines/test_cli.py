import subprocess
import sys

import pytest
from click.testing import CliRunner

from pipelines import __version__
from pipelines.cli import cli


def test_help_lists_groups():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "dems" in result.output and "tofsims" in result.output


def test_short_help_option():
    assert CliRunner().invoke(cli, ["-h"]).exit_code == 0


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


HELP_COMMANDS = [
    [],
    ["dems"],
    ["dems", "calibrate"],
    ["dems", "process"],
    ["tofsims"],
    ["tofsims", "reconstruct"],
    ["tofsims", "cei"],
    ["tofsims", "profile"],
    ["batch"],
]


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=lambda c: " ".join(c) or "operando")
def test_help_does_not_import_heavy_libraries(command):
    """--help of every command (its options made from the workflows' options) stays light."""
    code = (
        "import sys\n"
        "from pipelines.cli import main\n"
        "try:\n"
        f"    main({[*command, '--help']!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "for name in ('xarray', 'dask', 'holoviews', 'pandas', 'numpy'):\n"
        "    assert name not in sys.modules, name\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_library_error_is_one_line_without_traceback(tmp_path):
    empty = tmp_path / "empty.asc"
    empty.write_text("")
    result = CliRunner().invoke(cli, ["dems", "inspect", str(empty)])
    assert result.exit_code == 1
    assert "empty.asc" in result.output and "empty" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_unknown_content_is_rejected(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 10)
    result = CliRunner().invoke(cli, ["dems", "inspect", str(junk)])
    assert result.exit_code == 1
    assert "junk.bin" in result.output
    assert "Traceback" not in result.output


def test_missing_file_is_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["dems", "inspect", str(tmp_path / "nope.asc")])
    assert result.exit_code == 2


def test_unknown_timezone_is_a_usage_error_in_every_dems_command(tmp_path):
    raw = tmp_path / "run.asc"
    raw.write_text("x")
    commands = [
        ["dems", "inspect", str(raw)],
        ["dems", "calibrate", str(raw), "--steps", str(raw), "-o", str(tmp_path / "c.json")],
        [
            "dems",
            "process",
            str(raw),
            "--ec",
            str(raw),
            "-o",
            str(tmp_path / "r.zarr"),
            "--summary",
            str(tmp_path / "s.json"),
        ],
    ]
    for args in commands:
        result = CliRunner().invoke(cli, [*args, "--timezone", "Mars/Base"])
        assert result.exit_code == 2, (args, result.output)
        assert "unknown time zone" in result.output
