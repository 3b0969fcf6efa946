"""The README's Python tour runs as written, on the demo's raw files, and shows true numbers."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pipelines.example_study import write_example_study

README = Path(__file__).parents[2] / "README.md"
#: A statement ending in ``# 4.396 …``: the value the tour shows for it.
SHOWN = re.compile(r"^(?P<code>[^#\n]+?)\s+#\s*(?P<value>-?\d+\.\d+)\b", re.MULTILINE)


def _tour_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    tour = text[text.index("## Tour: Python and xarray") :]
    tour = tour[: tour.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", tour, re.DOTALL)


def test_the_tour_has_python_blocks():
    assert len(_tour_blocks()) == 2


def test_python_tour_runs_and_shows_the_numbers_it_gets(tmp_path, monkeypatch):
    write_example_study(tmp_path)  # the demo's study (same size and seed)
    monkeypatch.chdir(tmp_path / "raw")
    namespace: dict = {}
    checked = 0
    for block in _tour_blocks():
        exec(compile(block, str(README), "exec"), namespace)
        for match in SHOWN.finditer(block):
            code = match["code"].strip()
            try:
                ast.parse(code, mode="eval")
            except SyntaxError:
                continue  # an assignment: its comment describes, not shows
            shown = match["value"]
            digits = len(shown.split(".")[1])
            value = float(eval(code, namespace))
            assert round(value, digits) == pytest.approx(float(shown)), code
            checked += 1
    assert checked >= 3
