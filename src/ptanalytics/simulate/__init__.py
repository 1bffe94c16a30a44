"""Simulated cohorts with known ground truth.

The flow: :mod:`.config` (parameters) -> ``_model`` (patients, draws, the weekly process) ->
``_tables`` (the cohort tables) and ``_truth`` (true effects, calibration) -> ``_chunk`` (one group
of patients end to end) -> :mod:`.cohort` (:func:`simulate_cohort`, in memory) and :mod:`.disk`
(:func:`simulate_to_disk`, chunk by chunk to Parquet parts).
"""

from ptanalytics.simulate.cohort import (
    DEFAULT_PATIENTS,
    DEFAULT_SEED,
    default_cohort,
    simulate_cohort,
)
from ptanalytics.simulate.config import SCENARIOS, SimulationConfig, load_config, scenario_config
from ptanalytics.simulate.disk import simulate_to_disk

__all__ = [
    "DEFAULT_PATIENTS",
    "DEFAULT_SEED",
    "SCENARIOS",
    "SimulationConfig",
    "default_cohort",
    "load_config",
    "scenario_config",
    "simulate_cohort",
    "simulate_to_disk",
]
