"""Shared fixtures: paths to the committed real instrument files."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Root of the committed fixtures (see tests/data/SOURCES.md)."""
    return DATA
