"""ptanalytics: adherence, exercise-mix and outcome analytics for low-back-pain programs."""

from importlib.metadata import PackageNotFoundError, version

from ptanalytics.catalogue import CATEGORIES, exercise_catalogue
from ptanalytics.cohort import Cohort, load_cohort
from ptanalytics.exceptions import CohortFormatError, ConfigError, PtAnalyticsError
from ptanalytics.simconfig import SimulationConfig, load_config
from ptanalytics.simulate import simulate_cohort

try:
    __version__ = version("ptanalytics")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = [
    "CATEGORIES",
    "Cohort",
    "CohortFormatError",
    "ConfigError",
    "PtAnalyticsError",
    "SimulationConfig",
    "__version__",
    "exercise_catalogue",
    "load_cohort",
    "load_config",
    "simulate_cohort",
]
