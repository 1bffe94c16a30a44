"""Simulated cohorts with known ground truth: configuration, generative model and writer."""

from ptanalytics.simulate.config import SimulationConfig, load_config
from ptanalytics.simulate.engine import default_cohort, simulate_cohort, simulate_to_disk

__all__ = [
    "SimulationConfig",
    "default_cohort",
    "load_config",
    "simulate_cohort",
    "simulate_to_disk",
]
