"""ptanalytics: adherence, exercise-mix and outcome analytics for low-back-pain programs.

The package reads as its pipeline; the top level holds what a researcher calls most, and each
stage is a namespace of its own (as ``statsmodels.api``):

* **make or read a cohort** — :func:`simulate_cohort`, :func:`default_cohort`,
  :func:`simulate_to_disk` (:mod:`ptanalytics.simulate`); :func:`ingest`,
  :func:`validate_cohort_dir`, :func:`load_mapping` (:mod:`ptanalytics.ingestion`);
  :func:`load_cohort` and :class:`Cohort` (:mod:`ptanalytics.cohort`);
* **protect it** — :func:`deidentify`, :func:`find_identifier_columns`, :func:`k_anonymity`
  (:mod:`ptanalytics.privacy`, which also holds small-count suppression and ``MIN_CELL``);
* **metrics** — :func:`patient_weeks`, :func:`patient_summary`, :func:`assessment_timepoints`,
  :func:`flag_responders`, :func:`responder_table` (:mod:`ptanalytics.metrics`);
* **models** — ``ptanalytics.models.fit_pain_model``, ``dose_response``,
  ``category_substitution``, ``program_length``, ``kaplan_meier``, ``cox_ph``,
  ``mi_responders`` ... (:mod:`ptanalytics.models`; every result has ``table``, ``n``,
  ``notes`` and ``figure()``);
* **figures** — :mod:`ptanalytics.plotting`; **the report** — :func:`render_report`
  (:mod:`ptanalytics.report`);
* **plan a study** — :func:`power`, with the designs :class:`TwoArmSlope` and
  :class:`SimulatorDesign` and :func:`load_design` (:mod:`ptanalytics.studies.power`).

Examples
--------
>>> import ptanalytics as pt
>>> cohort = pt.simulate_cohort(200, seed=1)
>>> summary = pt.patient_summary(cohort)
>>> result = pt.models.dose_response(summary, timepoint="end_guided")
>>> sorted(vars(result))[:4], result.n
(['covariates', 'curve', 'linear', 'n'], 135)
"""

from importlib.metadata import PackageNotFoundError, version

from ptanalytics import models, plotting
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
from ptanalytics.report import render_report
from ptanalytics.simulate import (
    SimulationConfig,
    default_cohort,
    load_config,
    simulate_cohort,
    simulate_to_disk,
)
from ptanalytics.studies.power import SimulatorDesign, TwoArmSlope, load_design, power

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
    "SimulatorDesign",
    "TwoArmSlope",
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
    "load_design",
    "load_mapping",
    "models",
    "patient_summary",
    "patient_weeks",
    "plotting",
    "power",
    "render_report",
    "responder_table",
    "simulate_cohort",
    "simulate_to_disk",
    "timepoint_counts",
    "timepoint_scores",
    "validate_cohort_dir",
]
