"""A first look at a cohort: sizes, baseline pain and, for simulated cohorts, calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptanalytics.cohort import Cohort

__all__ = ["describe_cohort"]


def describe_cohort(cohort: Cohort) -> pd.DataFrame:
    """Summarise a cohort in one tidy table.

    Returns
    -------
    pandas.DataFrame
        One row per figure, with columns:

        - ``section`` (str): ``size``, ``baseline`` or ``calibration``.
        - ``metric`` (str): what is counted or measured.
        - ``value`` (float): the figure (counts, means, shares).
        - ``target`` (float): for simulated cohorts' calibration rows, the configured target
          (the midpoint where the target is a range); missing otherwise.
    """
    rows: list[tuple[str, str, float, float]] = []
    nan = float("nan")
    for name, n in cohort.row_counts().items():
        rows.append(("size", f"{name} rows", float(n), nan))
    s = cohort.sessions
    if len(s):
        days = s[["patient_id", "performed_on"]].drop_duplicates()
        rows.append(("size", "session days", float(len(days)), nan))
        rows.append(("size", "session days per patient", len(days) / len(cohort.patients), nan))
    out = cohort.outcomes
    base = _baseline(cohort, "NPRS")
    if len(base):
        rows.append(("baseline", "baseline NPRS mean", float(base.mean()), nan))
        rows.append(
            ("baseline", "baseline NPRS SD", float(base.std(ddof=1)) if len(base) > 1 else nan, nan)
        )
    odi = _baseline(cohort, "ODI")
    if len(odi):
        rows.append(("baseline", "baseline ODI mean", float(odi.mean()), nan))
    for instrument, n in out["instrument"].value_counts().sort_index().items():
        rows.append(("size", f"{instrument} assessments", float(n), nan))
    for metric, entry in ((cohort.truth or {}).get("calibration") or {}).items():
        target = entry.get("target")
        if isinstance(target, list):
            target = float(np.mean(target))
        realised = entry.get("realised")
        rows.append(
            (
                "calibration",
                metric,
                nan if realised is None else float(realised),
                nan if target is None else float(target),
            )
        )
    return pd.DataFrame(rows, columns=["section", "metric", "value", "target"])


def _baseline(cohort: Cohort, instrument: str) -> pd.Series:
    """Scores on the enrolment day (the baseline assessment)."""
    out = cohort.outcomes
    out = out[out["instrument"] == instrument]
    merged = out.merge(cohort.patients[["patient_id", "enrolled_on"]], on="patient_id")
    return merged.loc[merged["assessed_on"] == merged["enrolled_on"], "score"]
