"""Helpers of the hostile-input suite (``test_hostile_*.py``; not a test module).

Inputs are generated once per session (a synthetic DEMS run with its calibration, a small GRD
with its properties) and copied into each test's folder, so a test may damage its copy.
Commands run in-process (:func:`invoke`) or, where a hang or a memory blow-up is the risk, in
a child process with a generous timeout and its peak memory measured (:func:`run_child`).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from pipelines.cli import cli

#: ``tofsims cei`` on the GRD of the ``grd_inputs`` fixture, writing ``c.json``.
CEI_ON_GRD = [
    "tofsims",
    "cei",
    "run.itm.grd",
    "--sputter-rate",
    "0.05",
    "--seconds-per-scan",
    "2",
    "--summary",
    "c.json",
]

#: Console command of the package, run with the interpreter of the test session.
OPERANDO = [sys.executable, "-c", "from pipelines.cli import main; main()"]


def invoke(*args: object, cwd: Path | None = None):
    """Run ``operando ARGS`` in-process; return click's result (``exit_code``, ``output``)."""
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(cli, [str(a) for a in args])
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        return runner.invoke(cli, [str(a) for a in args])
    finally:
        os.chdir(previous)


def message_lines(output: str) -> list[str]:
    """Non-empty lines of a command's output."""
    return [line for line in output.splitlines() if line.strip()]


def one_line_error(result) -> str:
    """Return the single ``Error: ...`` line of a failed command (assert it is alone)."""
    usage = ("Usage:", "Try ")
    lines = [line for line in message_lines(result.output) if not line.startswith(usage)]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), result.output
    return lines[0]


@dataclass
class ChildRun:
    """What a child ``operando`` process did."""

    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    max_rss_mb: float
    timed_out: bool


#: Starts the command and reports its peak memory: measured from a small process, because a
#: child forked from the (large) test process would count the parent's pages in its peak.
LAUNCHER = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as report:
    json.dump({"max_rss_kb": usage.ru_maxrss}, report)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_child(
    *args: object, cwd: Path, timeout_s: float = 60.0, program: list[str] = OPERANDO
) -> ChildRun:
    """Run ``operando ARGS`` (or ``program ARGS``) in a child process; kill it after ``timeout_s``.

    The child's peak resident memory is its own ``ru_maxrss`` (kB on Linux, bytes on macOS).
    """
    out, err, usage = cwd / ".child-stdout", cwd / ".child-stderr", cwd / ".child-usage"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(usage), *program, *(str(a) for a in args)],
            cwd=cwd,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            returncode, timed_out = process.wait(timeout=timeout_s), False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            returncode, timed_out = process.wait(), True
    seconds = time.monotonic() - started
    scale = 1024 if sys.platform != "darwin" else 1
    peak = json.loads(usage.read_text())["max_rss_kb"] if usage.exists() else 0
    result = ChildRun(
        returncode=returncode,
        stdout=out.read_text(),
        stderr=err.read_text(),
        seconds=seconds,
        max_rss_mb=peak * scale / 2**20,
        timed_out=timed_out,
    )
    for path in (out, err, usage):
        path.unlink(missing_ok=True)
    return result


def digest(path: Path) -> dict[str, str]:
    """Content hash of a file, or of every file under a folder (relative path -> sha256)."""
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def dems_manifest(folder: Path, inputs: Path, names=("pd",), defaults: str = "") -> Path:
    """Write ``folder/manifest.toml``: one DEMS experiment per name on the files of ``inputs``."""
    entries = "".join(
        f"""
[[experiment]]
name = "{name}"
kind = "dems"
ms = "{inputs / "operando.asc"}"
ec = "{inputs / "cell.mpt"}"
calibration = "{inputs / "cal.json"}"
"""
        for name in names
    )
    path = folder / "manifest.toml"
    path.write_text(f"[defaults]\n{defaults}\n{entries}")
    return path


def write_wide_grd(path: Path, *, side: int, scans: int, events: int, seed: int = 0) -> Path:
    """Write a GRD of ``events`` records spread uniformly over a ``side`` × ``side`` raster.

    Flight times are those of the default fragments and the calibration ions (a recalibration
    finds its peaks); the properties go to ``<path>.properties.txt``. Few events per pixel, as
    in a large raster: memory is then the raster's, not the file's.
    """
    import numpy as np

    from tofsims.fragments import CALIBRATION_IONS, ion_mass
    from tofsims.masscal import mass_to_tof
    from tofsims.synthetic_raw import write_properties
    from tofsims.workflows.options import DEFAULT_FRAGMENTS

    sf, k0 = 72000.0, -2100.0
    rng = np.random.default_rng(seed)
    ions = (*DEFAULT_FRAGMENTS, *CALIBRATION_IONS["negative"])
    masses = np.array([ion_mass(ion) for ion in ions])
    per_scan = np.full(scans, events // scans)
    per_scan[: events % scans] += 1
    with open(path, "wb") as handle:
        for scan, n in enumerate(per_scan):
            records = np.zeros((n, 5), dtype="<u4")
            records[:, 0] = scan
            records[:, 2:4] = rng.integers(0, side, (n, 2))
            mass = rng.choice(masses, n) * (1 + rng.normal(0, 1e-4, n))
            records[:, 4] = np.rint(mass_to_tof(mass, sf, k0))
            records.tofile(handle)
    write_properties(
        path.with_name(path.name + ".properties.txt"),
        sf=sf,
        k0=k0,
        raster=(side, side),
        scans=scans,
        sputter_time_s=2.0 * scans,
    )
    return path
