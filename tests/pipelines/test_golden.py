"""Every command and the batch give the committed golden outputs, byte for byte.

The goldens are regenerated with ``python tests/make_golden.py`` (see its docstring) after a
deliberate change of numbers.
"""

from __future__ import annotations

import pytest

from tests.example_results import example_batch
from tests.make_golden import GOLDEN, golden_texts

pytestmark = pytest.mark.timeout(600)


def test_outputs_equal_the_goldens(tmp_path_factory, tmp_path):
    run = example_batch(tmp_path_factory)
    assert run.exit_code == 0, run.output
    root = run.manifest.parent.parent
    texts = golden_texts(run.manifest.parent, run.outdir, tmp_path, {"tmp": root})
    # the commands ran in tmp_path, outside the batch's root: name that folder as make_golden does
    texts = {name: text.replace(str(tmp_path), "<tmp>/commands") for name, text in texts.items()}
    assert sorted(texts) == sorted(p.name for p in GOLDEN.iterdir())
    different = [name for name, text in texts.items() if text != (GOLDEN / name).read_text()]
    assert not different, f"differ from tests/data/golden: {different}"
