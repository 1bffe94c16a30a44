"""Simulate a cohort in memory: :func:`simulate_cohort` and the default cohort."""

from __future__ import annotations

from typing import Any

import numpy as np

from ptanalytics.cohort.container import Cohort
from ptanalytics.simulate._chunk import checked_config, id_width, metadata, simulate_chunk
from ptanalytics.simulate._truth import realised_calibration, truth_document
from ptanalytics.simulate.config import SimulationConfig

__all__ = ["DEFAULT_PATIENTS", "DEFAULT_SEED", "default_cohort", "simulate_cohort"]

#: Size and seed of the default synthetic cohort shipped in data/synthetic/default.
DEFAULT_PATIENTS = 300
DEFAULT_SEED = 20240108


def simulate_cohort(
    n_patients: int,
    *,
    seed: int,
    config: SimulationConfig | dict | None = None,
    **overrides: Any,
) -> Cohort:
    """Simulate a cohort of patients in a low-back-pain exercise program, with its ground truth.

    Parameters
    ----------
    n_patients : int
        Number of patients (at least 1).
    seed : int
        Seed of the random generator: the same seed and config give identical tables and
        byte-identical files.
    config : SimulationConfig or dict, optional
        Generating parameters (docs/simulator.md). Defaults are calibrated to published programs.
    **overrides
        Individual parameters, e.g. ``horizon_weeks=12``; applied on top of ``config``.

    Returns
    -------
    Cohort
        The five canonical tables (``patients``, ``prescriptions``, ``sessions``, ``outcomes``,
        ``cointerventions``; see docs/data_dictionary.md), ``truth`` (parameters, true effects by
        model term, calibration targets and realised values) and ``truth_patients`` (one row per
        patient: latent baseline pain, slopes, adherence propensity and trajectory class, category
        time shares, planned and actual guided weeks, dropout week, latent pain at the end of the
        guided phase and at follow-up).

    Raises
    ------
    ConfigError
        When ``n_patients`` or ``seed`` is invalid, or a parameter is unknown or out of range.

    See Also
    --------
    simulate_to_disk : the same simulation for cohorts too large to hold in memory.

    Examples
    --------
    >>> import ptanalytics as pt
    >>> cohort = pt.simulate_cohort(200, seed=1)
    >>> cohort.row_counts()["patients"], cohort.row_counts()["prescriptions"]
    (200, 2400)
    >>> pt.simulate_cohort(200, seed=1).sessions.equals(cohort.sessions)  # same seed, same data
    True
    """
    cfg = checked_config(n_patients, seed, config, overrides)
    n = int(n_patients)
    chunk = simulate_chunk(n, cfg, np.random.default_rng(int(seed)), 1, id_width(n))
    cohort = Cohort(**chunk.tables, metadata=metadata(int(seed), n, cfg))
    cohort.truth_patients = chunk.truth_patients
    effects = [effect for effect, _ in chunk.effects]
    cohort.truth = truth_document(
        int(seed), n, cfg, effects, realised_calibration(cfg, chunk.stats)
    )
    return cohort


def default_cohort() -> Cohort:
    """The default synthetic cohort (300 patients, seed 20240108, default parameters).

    Identical to ``data/synthetic/default`` in the repository (a test checks it), so notebooks and
    the report work from an installed package without the repository's data folder.
    """
    return simulate_cohort(DEFAULT_PATIENTS, seed=DEFAULT_SEED)
