"""The words of the domain, defined once: categories, phases, kinds, instruments and their ranges,
trajectory classes, attendance bands, true/false words and the names of derived columns.

Every module that needs one of these imports it from here; none defines its own copy.
"""

from __future__ import annotations

import datetime as dt

__all__ = [
    "ATTENDANCE_BANDS",
    "ATTENDANCE_CUTS",
    "CATEGORIES",
    "CHRONICITIES",
    "COINTERVENTION_KINDS",
    "COLUMN_LABELS",
    "EARLIEST_DATE",
    "FALSE_WORDS",
    "INSTRUMENT_RANGES",
    "MAX_OTHER_SCORE",
    "MINUTES_COLUMNS",
    "PHASES",
    "PHASE_LABELS",
    "PROPORTION_COLUMNS",
    "SEXES",
    "SHARE_COLUMNS",
    "TRAJECTORY_CLASSES",
    "TRUE_WORDS",
    "minutes_column",
    "share_column",
]

#: The five exercise categories, in a fixed order used throughout (compositions, ilr coordinates).
CATEGORIES: tuple[str, ...] = (
    "core_strengthening",
    "lumbar_stabilization",
    "aerobic",
    "posture",
    "flexibility",
)
#: Program phases, in program order.
PHASES: tuple[str, ...] = ("guided", "maintenance")
#: Phase labels of the patient-week frame: a week outside every prescription is ``none``.
PHASE_LABELS: tuple[str, ...] = (*PHASES, "none")
SEXES: tuple[str, ...] = ("female", "male", "other")
CHRONICITIES: tuple[str, ...] = ("acute", "subacute", "chronic")
COINTERVENTION_KINDS: tuple[str, ...] = (
    "heat_cold",
    "massage",
    "manual_therapy",
    "acupuncture",
    "epidural_injection",
    "analgesic",
)
#: Adherence trajectory classes (simulated truth and the patient summary's estimate).
TRAJECTORY_CLASSES: tuple[str, ...] = ("declining", "stable", "increasing")
#: Attendance bands on adherence, lowest first, and the default cuts between them: ``low`` below
#: 0.50, ``medium`` from 0.50 to below 0.75, ``high`` from 0.75.
ATTENDANCE_BANDS: tuple[str, ...] = ("low", "medium", "high")
ATTENDANCE_CUTS: tuple[float, float] = (0.50, 0.75)

#: Dates before this day are refused (a year 1200 or 0001 is a typo or a placeholder; no program
#: or patient record of this toolkit starts before 1900). Ingest quarantines them.
EARLIEST_DATE = dt.date(1900, 1, 1)

#: Score range and whether scores must be whole numbers, per instrument (canonical upper case).
INSTRUMENT_RANGES: dict[str, tuple[float, float, bool]] = {
    "NPRS": (0, 10, True),
    "ODI": (0, 100, False),
    "RMDQ": (0, 24, True),
}
#: Scores of instruments without a range of their own must lie in 0..MAX_OTHER_SCORE (every
#: patient-reported outcome in use scores below 1000; 1e308 is an export error).
MAX_OTHER_SCORE = 1000.0

#: Text read as true / false in boolean columns (compared after stripping and lower-casing).
TRUE_WORDS: frozenset[str] = frozenset({"true", "1", "yes", "y", "t"})
FALSE_WORDS: frozenset[str] = frozenset({"false", "0", "no", "n", "f"})


def minutes_column(category: str) -> str:
    """Patient-week column of the minutes spent on one category: ``minutes_<category>``."""
    return f"minutes_{category}"


def share_column(category: str) -> str:
    """Column of one category's share of exercise time: ``share_<category>``."""
    return f"share_{category}"


#: Column names of the report's tables in words, as their headers (an unlisted name shows with
#: spaces for underscores; ``mean_<name>`` as "Mean " and the words of ``<name>``).
COLUMN_LABELS: dict[str, str] = {
    "arm": "Arm",
    "attendance_band": "Attendance band",
    "attendance band": "Attendance band",
    "trajectory": "Adherence trajectory",
    "instrument": "Instrument",
    "timepoint": "Timepoint",
    "n": "Patients",
    "patients": "Patients",
    "share": "Patients (%)",
    "with a target": "With a target day",
    "with_target": "With a target day",
    "observed": "Observed",
    "missing": "Missing",
    "responders": "Responders",
    "proportion": "Responders (%)",
    "missing_followup": "Missing at follow-up",
    "n_imputed": "Imputed (missing at follow-up)",
    "estimate": "Estimate",
    "delta": "Delta (NPRS points)",
    "table": "Table",
    "records": "Records",
    "accepted": "Accepted",
    "quarantined": "Quarantined",
    "reason_code": "Reason",
    "rows": "Rows",
    "planned": "Planned guided weeks",
    "mean_actual": "Mean actual guided weeks",
    "extended": "Guided phase extended",
    "shortened": "Guided phase shortened",
    "sha256": "SHA-256",
    "nprs_change_end_guided": "NPRS change at the end of the guided phase",
    "nprs_change_followup": "NPRS change at follow-up",
}
#: Columns of the report's tables that hold a proportion (0-1), shown as a percentage.
PROPORTION_COLUMNS: frozenset[str] = frozenset({"proportion", "share"})

#: ``minutes_<category>`` and ``share_<category>`` in category order.
MINUTES_COLUMNS: tuple[str, ...] = tuple(minutes_column(c) for c in CATEGORIES)
SHARE_COLUMNS: tuple[str, ...] = tuple(share_column(c) for c in CATEGORIES)
