"""Adherence and outcome metrics: timepoints, the patient-week and patient-summary frames, the
cohort description, the exercise-time composition, responders and the SQL (DuckDB, Spark) path."""

from ptanalytics.metrics.describe import describe_cohort
from ptanalytics.metrics.responders import flag_responders, responder_table
from ptanalytics.metrics.summary import patient_summary
from ptanalytics.metrics.timepoints import (
    TIMEPOINTS,
    assessment_timepoints,
    canonical_instrument,
    timepoint_counts,
    timepoint_scores,
)
from ptanalytics.metrics.weeks import patient_weeks

__all__ = [
    "TIMEPOINTS",
    "assessment_timepoints",
    "canonical_instrument",
    "describe_cohort",
    "flag_responders",
    "patient_summary",
    "patient_weeks",
    "responder_table",
    "timepoint_counts",
    "timepoint_scores",
]
