"""A first look at a cohort: sizes, baseline pain and, for simulated cohorts, calibration."""

from __future__ import annotations

import pandas as pd

from ptanalytics.cohort.io import Cohort
from ptanalytics.metrics.timepoints import TIMEPOINT_LABELS, TIMEPOINTS, timepoint_scores

__all__ = ["describe_cohort"]

_COLUMNS = ["section", "metric", "value", "target_low", "target_high"]


def describe_cohort(cohort: Cohort) -> pd.DataFrame:
    """Summarise a cohort in one tidy table.

    Returns
    -------
    pandas.DataFrame
        One row per figure, with columns:

        - ``section`` (str): ``size``, ``baseline``, ``timepoints`` (patients with a score at
          each timepoint, :mod:`ptanalytics.metrics.timepoints`) or ``calibration``.
        - ``metric`` (str): what is counted or measured.
        - ``value`` (float): the figure (counts, means, shares).
        - ``target_low``, ``target_high`` (float): for simulated cohorts' calibration rows, the
          configured target (equal for a single value, the ends of a range otherwise); missing
          elsewhere.
    """
    rows: list[dict] = []

    def add(section: str, metric: str, value: float, target=None) -> None:
        low, high = target if isinstance(target, list) else [target, target]
        rows.append(
            {
                "section": section,
                "metric": metric,
                "value": value,
                "target_low": low,
                "target_high": high,
            }
        )

    for name, n in cohort.row_counts().items():
        add("size", f"{name} rows", n)
    if len(cohort.sessions):
        days = cohort.sessions[["patient_id", "performed_on"]].drop_duplicates()
        add("size", "session days", len(days))
        add("size", "session days per patient", len(days) / len(cohort.patients))
    for instrument, n in cohort.outcomes["instrument"].value_counts().sort_index().items():
        add("size", f"{instrument} assessments", n)
    scores = timepoint_scores(cohort, instruments=("NPRS", "ODI"))
    base = scores["nprs_baseline"].dropna()
    if len(base):
        add("baseline", "baseline NPRS mean", base.mean())
        if len(base) > 1:
            add("baseline", "baseline NPRS SD", base.std(ddof=1))
    odi = scores["odi_baseline"].dropna()
    if len(odi):
        add("baseline", "baseline ODI mean", odi.mean())
    for inst in ("NPRS", "ODI"):
        for tp in TIMEPOINTS:
            observed = int(scores[f"{inst.lower()}_{tp}"].notna().sum())
            add("timepoints", f"{inst} observed at {TIMEPOINT_LABELS[tp]}", observed)
    for metric, entry in ((cohort.truth or {}).get("calibration") or {}).items():
        add("calibration", metric, entry.get("realised"), entry.get("target"))
    return pd.DataFrame(rows, columns=_COLUMNS).astype(
        {"value": "float64", "target_low": "float64", "target_high": "float64"}
    )
