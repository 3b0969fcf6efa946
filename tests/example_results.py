"""Real result files of the generated example study, made once per test session.

``operando batch`` runs on a small study (16 x 16 pixels) through click's CliRunner while the
process's file descriptors 1 and 2 are redirected to a file, so the output of the batch's
worker processes (which write to the inherited descriptors, not to CliRunner's stream) is kept
too.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from pipelines.cli import cli
from pipelines.example_study import StudySize, write_example_study


@dataclass(frozen=True)
class BatchRun:
    """Where the study and the batch outputs are, and what the batch printed."""

    manifest: Path
    outdir: Path
    exit_code: int
    output: str  # CliRunner's captured stdout + stderr
    worker_output: str  # written to descriptors 1 and 2 (worker processes)


_RUN: BatchRun | None = None


@contextlib.contextmanager
def _descriptors_to(path: Path) -> Iterator[None]:
    saved = [os.dup(1), os.dup(2)]
    with open(path, "wb") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def run_example_batch(root: Path) -> BatchRun:
    """Generate the small example study in ``root/study`` and run ``operando batch`` on it."""
    manifest = write_example_study(root / "study", size=StudySize(pixels=16), seed=3)
    outdir = root / "out"
    captured = Path(tempfile.mkstemp(dir=root, suffix=".log")[1])
    with _descriptors_to(captured):
        result = CliRunner().invoke(
            cli, ["batch", str(manifest), "-o", str(outdir), "--workers", "2"]
        )
    return BatchRun(
        manifest=manifest,
        outdir=outdir,
        exit_code=result.exit_code,
        output=result.output,
        worker_output=captured.read_text(encoding="utf-8", errors="replace"),
    )


def example_batch(tmp_path_factory) -> BatchRun:
    """Run ``operando batch`` on the example study once per session; return its outputs."""
    global _RUN
    if _RUN is None:
        _RUN = run_example_batch(tmp_path_factory.mktemp("example-results"))
    return _RUN
