"""The notebooks are stored clean: no outputs, no execution counts, a papermill parameters cell.

nbval runs them (``pytest --nbval-lax notebooks/``, with their in-cell asserts); this file checks
only how they are committed.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
EXPECTED = [
    "01_cohort",
    "02_data_quality",
    "03_adherence",
    "04_outcomes",
    "05_models",
    "06_dropout",
    "07_large_cohorts",
    "08_effects",
    "09_power",
]
LOAD = "cohort = pt.load_cohort(data_dir) if data_dir else pt.default_cohort()"
# Notebooks are thin: the analysis comes from the package; only plotting and file glue besides.
ALLOWED_IMPORTS = {"ptanalytics", "matplotlib", "math", "pathlib", "tempfile"}
IMPORT = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_][\w]*)", re.MULTILINE)


def test_the_numbered_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.name)
def notebook(request):
    return nbformat.read(request.param, as_version=4)


def _code(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_notebook_is_valid(notebook):
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"


def test_no_outputs_and_no_execution_counts(notebook):
    dirty = [
        i
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert dirty == [], f"cells {dirty} have outputs or execution counts; clear them"


def test_first_cell_is_a_parameters_cell(notebook):
    first = notebook.cells[0]
    assert first.cell_type == "code"
    assert "parameters" in first.metadata.get("tags", [])
    assert re.search(r"^data_dir = None\b", first.source, re.MULTILINE)


def test_title_follows_the_parameters(notebook):
    title = notebook.cells[1]
    assert title.cell_type == "markdown"
    assert title.source.startswith("# ")


def test_loads_the_cohort_one_way(notebook):
    assert any(LOAD in cell.source for cell in _code(notebook))


def test_imports_only_the_package_and_plotting(notebook):
    imported = {m for cell in _code(notebook) for m in IMPORT.findall(cell.source)}
    assert imported <= ALLOWED_IMPORTS, f"unexpected imports: {imported - ALLOWED_IMPORTS}"


def test_figures_are_closed(notebook):
    for cell in _code(notebook):
        opened = cell.source.count("fig = ") + cell.source.count("fig, ")
        assert cell.source.count("plt.close(fig)") == opened, cell.source


def test_papermill_sees_every_parameter():
    """A parameters cell papermill cannot parse silently drops the injected value's default."""
    import json

    from papermill.translators import PythonTranslator

    report = NOTEBOOKS_DIR.parent / "src" / "ptanalytics" / "report" / "report.ipynb"
    paths = [*NOTEBOOKS, report]
    for path in paths:
        cell = json.loads(path.read_text())["cells"][0]
        source = cell["source"]
        cell = {**cell, "source": "".join(source) if isinstance(source, list) else source}
        names = {p.name for p in PythonTranslator.inspect(cell)}
        assert "data_dir" in names, path.name
