from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest

import ptanalytics as pt


@pytest.fixture
def rng():
    return np.random.default_rng(20240108)


@pytest.fixture(scope="session")
def small_cohort():
    """A 400-patient default cohort, simulated once per test session."""
    return pt.simulate_cohort(400, seed=7)


@pytest.fixture(scope="session")
def large_cohort():
    """A 20,000-patient default cohort for calibration statistics (about 3 s)."""
    return pt.simulate_cohort(20_000, seed=11)


@pytest.fixture(autouse=True)
def _close_figures():
    """Figures made by a test are closed after it (matplotlib is only imported if used)."""
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="session")
def ashar_dir(tmp_path_factory):
    """The Ashar 2022 trial export (examples/ashar2022), ingested once with its mapping by the
    CLI; the cohort folder (tests must not write into it)."""
    from pathlib import Path

    from ptanalytics.cli import main

    src = Path(__file__).resolve().parents[1] / "examples" / "ashar2022"
    out = tmp_path_factory.mktemp("ashar") / "cohort"
    args = [
        str(src / "Ashar2022_outcomes_demographics.csv"),
        "--mapping",
        str(src / "mapping.toml"),
    ]
    assert main(["ingest", *args, "--out", str(out)]) == 0
    return out
