"""One group of patients simulated end to end, shared by :func:`simulate_cohort` (one chunk) and
:func:`simulate_to_disk` (many): arguments checked, patients drawn and run, tables and truth made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ptanalytics._checks import check_number
from ptanalytics.simulate._model import (
    cointervention_effect,
    draw_loop,
    draw_patients,
    observed_weeks,
    run,
    trial_planned_weeks,
)
from ptanalytics.simulate._tables import cohort_tables, numbered_ids, truth_patients_table
from ptanalytics.simulate._truth import SampleStats, Weighted, calibration_samples, true_effects
from ptanalytics.simulate.config import SimulationConfig

__all__ = ["Chunk", "checked_config", "id_width", "metadata", "simulate_chunk"]


def checked_config(n_patients, seed, config, overrides) -> SimulationConfig:
    """Check ``n_patients`` and ``seed``; the config with the keyword overrides applied."""
    check_number("n_patients", n_patients, low=1, integer=True)
    check_number("seed", seed, low=0, integer=True)
    if isinstance(config, SimulationConfig):
        return SimulationConfig.from_mapping(config.to_dict(), **overrides) if overrides else config
    return SimulationConfig.from_mapping(config, **overrides)


def id_width(n: int) -> int:
    """Digits of patient ids: at least 6, enough for the whole cohort."""
    return max(6, len(str(n)))


@dataclass
class Chunk:
    """One simulated group of patients: its tables, truth and pooling weights."""

    tables: dict[str, pd.DataFrame]
    truth_patients: pd.DataFrame
    effects: list[Weighted]
    stats: SampleStats


def simulate_chunk(
    n: int, cfg: SimulationConfig, rng: np.random.Generator, first_id: int, width: int
) -> Chunk:
    """Simulate ``n`` patients numbered from ``first_id`` with ids of ``width`` digits."""
    p = draw_patients(n, cfg, rng)
    d = draw_loop(n, cfg, rng)
    odi_noise = rng.normal(0.0, cfg.odi_noise_sd, (n, 3))
    co = cointervention_effect(p, cfg)
    if cfg.trial is not None:  # drawn only in a trial: other cohorts keep their draws
        p.arm = rng.random(n) < cfg.trial_share
        if cfg.trial == "length":
            p.planned_weeks = trial_planned_weeks(p.arm, cfg)
    r = run(p, d, cfg, co)
    observed = observed_weeks(p, r, d, cfg)
    ids = numbered_ids("P", np.arange(first_id, first_id + n), width)
    tables = cohort_tables(p, r, d, ids, cfg, observed, odi_noise, rng)
    return Chunk(
        tables,
        truth_patients_table(p, r, ids, cfg),
        true_effects(p, d, cfg, co),
        SampleStats(calibration_samples(p, r, d, cfg, observed)),
    )


def metadata(seed: int, n: int, cfg: SimulationConfig) -> dict[str, Any]:
    """The ``cohort.json`` body of a simulated cohort (no creation time: files are reproducible)."""
    return {
        "source": "simulated",
        "created": None,
        "seed": seed,
        "config_sha256": cfg.sha256(),
        "n_patients": n,
    }
