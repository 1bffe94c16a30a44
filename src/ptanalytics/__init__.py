"""ptanalytics: adherence, exercise-mix and outcome analytics for low-back-pain programs."""

from importlib.metadata import PackageNotFoundError, version

from ptanalytics.cohort.catalogue import CATEGORIES, exercise_catalogue
from ptanalytics.cohort.container import Cohort
from ptanalytics.cohort.io import load_cohort
from ptanalytics.exceptions import (
    CohortFormatError,
    ConfigError,
    IngestError,
    MappingError,
    PtAnalyticsError,
)
from ptanalytics.ingestion.mapping import load_mapping
from ptanalytics.ingestion.pipeline import (
    IngestResult,
    format_ingest_summary,
    ingest,
    validate_cohort_dir,
)
from ptanalytics.metrics import patient_summary, patient_weeks
from ptanalytics.metrics.responders import flag_responders, responder_table
from ptanalytics.metrics.timepoints import (
    TIMEPOINTS,
    assessment_timepoints,
    canonical_instrument,
    timepoint_counts,
    timepoint_scores,
)
from ptanalytics.privacy.deidentification import (
    deidentify,
    deidentify_directory,
    generalise,
    k_anonymity,
)
from ptanalytics.privacy.identifiers import find_identifier_columns
from ptanalytics.simulate import (
    SimulationConfig,
    default_cohort,
    load_config,
    simulate_cohort,
    simulate_to_disk,
)

try:
    __version__ = version("ptanalytics")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = [
    "CATEGORIES",
    "TIMEPOINTS",
    "Cohort",
    "CohortFormatError",
    "ConfigError",
    "IngestError",
    "IngestResult",
    "MappingError",
    "PtAnalyticsError",
    "SimulationConfig",
    "__version__",
    "assessment_timepoints",
    "canonical_instrument",
    "default_cohort",
    "deidentify",
    "deidentify_directory",
    "exercise_catalogue",
    "find_identifier_columns",
    "flag_responders",
    "format_ingest_summary",
    "generalise",
    "ingest",
    "k_anonymity",
    "load_cohort",
    "load_config",
    "load_mapping",
    "patient_summary",
    "patient_weeks",
    "responder_table",
    "simulate_cohort",
    "simulate_to_disk",
    "timepoint_counts",
    "timepoint_scores",
    "validate_cohort_dir",
]
