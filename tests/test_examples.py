"""The numpydoc Examples of the public entry points run and print what they say.

Every module of the package whose docstrings hold a ``>>>`` example is run with :mod:`doctest`
from the repository root (the examples read ``data/synthetic/default``). Examples that need a
user's own files are marked ``# doctest: +SKIP`` in the docstring.
"""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
from pathlib import Path

import matplotlib
import pytest

import ptanalytics

ROOT = Path(__file__).resolve().parents[1]


def _modules_with_examples() -> list[str]:
    names = ["ptanalytics"]
    for info in pkgutil.walk_packages(ptanalytics.__path__, prefix="ptanalytics."):
        spec = importlib.util.find_spec(info.name)
        origin = getattr(spec, "origin", None)
        if origin and origin.endswith(".py") and ">>> " in Path(origin).read_text():
            names.append(info.name)
    return sorted(names)


MODULES = _modules_with_examples()


def test_the_main_entry_points_have_examples():
    expected = {
        "ptanalytics.cohort.io",
        "ptanalytics.simulate.cohort",
        "ptanalytics.metrics.summary",
        "ptanalytics.metrics.weeks",
        "ptanalytics.metrics.responders",
        "ptanalytics.models.outcomes",
        "ptanalytics.models.dropout",
        "ptanalytics.models.trajectory",
        "ptanalytics.ingestion.pipeline",
        "ptanalytics.privacy.deidentification",
        "ptanalytics.report.render",
    }
    assert expected <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name, monkeypatch):
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    monkeypatch.chdir(ROOT)
    module = importlib.import_module(name)
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    try:
        result = doctest.testmod(module, optionflags=flags, verbose=False, report=True)
    finally:
        plt.close("all")
    assert result.attempted > 0, f"{name}: no example ran"
    assert result.failed == 0, f"{name}: {result.failed} example(s) failed (see the output above)"
    assert os.getcwd() == str(ROOT)
