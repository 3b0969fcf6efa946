"""The documentation matches the code: files it names exist, every option is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dems.workflows.options import CalibrateOptions, FaradaicOptions, ProcessOptions
from operando_core.options import option_fields
from pipelines.compare import CompareOptions
from pipelines.kinds import KINDS
from tofsims.workflows.options import CeiOptions, ProfileOptions, ReconstructOptions

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"


def test_architecture_names_only_files_that_exist():
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    top = "operando_core|dems|tofsims|pipelines|tests|benchmarks|docs"
    paths = set(re.findall(rf"\b((?:{top})/[\w./]*)", text))
    assert len(paths) > 10
    assert [p for p in paths if not (ROOT / p.rstrip(".")).exists()] == []
    listing = text[text.index("## `pipelines/` modules") :]
    names = set(re.findall(r"\b(\w+\.py|\w+/)(?=[\s,])", listing))
    assert len(names) > 10
    assert [n for n in names if not (ROOT / "pipelines" / n).exists()] == []


def test_no_document_points_to_files_outside_the_repository():
    for path in [ROOT / "README.md", *DOCS.glob("*.md")]:
        text = path.read_text(encoding="utf-8")
        assert "reference/" not in text and "atomic_files" not in text, path.name


@pytest.mark.parametrize(
    "options_class",
    [
        ProcessOptions,
        CalibrateOptions,
        FaradaicOptions,
        ReconstructOptions,
        CeiOptions,
        ProfileOptions,
        CompareOptions,
    ],
)
def test_every_flag_is_documented(options_class):
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for field, spec in option_fields(options_class):
        for flag in re.findall(r"--[\w-]+", spec.flag or ""):
            assert flag in text, f"{options_class.__name__}.{field.name}: {flag}"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_manifest_key_is_documented(kind):
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    keys = [f.name for c in KINDS[kind].options for f, _ in option_fields(c)]
    keys += sorted(KINDS[kind].inputs)
    assert [key for key in keys if f"`{key}`" not in text] == []
