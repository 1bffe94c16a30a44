"""A first look at a cohort: sizes, baseline pain and, for simulated cohorts, calibration
(:func:`describe_cohort`); and the descriptive aggregates the notebooks and the report draw:
weekly means (adherence by phase, pain by group), assessments and minutes per week, counts and
means by group, patients per level with their percent (:func:`weekly_means`,
:func:`weekly_assessments`, :func:`weekly_minutes`, :func:`phase_totals`, :func:`patient_counts`,
:func:`patient_shares`, :func:`group_means`, :func:`comparison_group`)."""

from __future__ import annotations

import pandas as pd

from ptanalytics._checks import check_option
from ptanalytics.cohort.container import Cohort
from ptanalytics.metrics.timepoints import TIMEPOINT_LABELS, TIMEPOINTS, timepoint_scores
from ptanalytics.privacy.suppression import MIN_CELL
from ptanalytics.vocab import CATEGORIES, minutes_column

__all__ = [
    "comparison_group",
    "describe_cohort",
    "group_means",
    "patient_counts",
    "patient_shares",
    "phase_totals",
    "weekly_adherence",
    "weekly_assessments",
    "weekly_means",
    "weekly_minutes",
]

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


def comparison_group(summary: pd.DataFrame, *, has_sessions: bool = True) -> str | None:
    """The column that tables and figures are grouped by.

    The randomised arm (``arm``) where the data has one, else the attendance band (which needs
    session data), else None (one group).
    """
    if "arm" in summary:
        return "arm"
    if has_sessions and "attendance_band" in summary:
        return "attendance_band"
    return None


def weekly_means(
    weeks: pd.DataFrame,
    column: str,
    *,
    by: str | None = None,
    summary: pd.DataFrame | None = None,
    min_patients: int = MIN_CELL,
    patient: str = "patient_id",
) -> pd.DataFrame:
    """Mean of a patient-week column by week (and group), over weeks with enough patients.

    Parameters
    ----------
    weeks : DataFrame
        The patient-week frame (:func:`~ptanalytics.metrics.weeks.patient_weeks`).
    column : str
        The column averaged (``adherence_capped``, ``nprs``, ...); its missing values are left
        out of both the mean and the count.
    by : str, optional
        A grouping column: of ``weeks`` (``phase``), or of ``summary`` (``attendance_band``,
        ``arm``), joined on ``patient``.
    summary : DataFrame, optional
        The patient summary, when ``by`` is one of its columns.
    min_patients : int
        Rows whose mean is over fewer patient-weeks are dropped (default
        :data:`~ptanalytics.privacy.suppression.MIN_CELL`).

    Returns
    -------
    pandas.DataFrame
        ``week``, ``by`` (when given), ``mean`` (float) and ``n`` (int, patient-weeks with a
        value), sorted by group and week. Groups with a missing key are left out.
    """
    data = weeks.dropna(subset=[column])
    if by is not None and by not in data:
        data = data.merge(summary[[patient, by]], on=patient)
    keys = [by, "week"] if by is not None else ["week"]
    out = (
        data.groupby(keys, observed=True)[column]
        .agg(mean="mean", n="size")
        .reset_index()[["week", *keys[:-1], "mean", "n"]]
    )
    return out[out["n"] >= min_patients].reset_index(drop=True)


def weekly_adherence(
    weeks: pd.DataFrame,
    *,
    summary: pd.DataFrame | None = None,
    dropouts_as_zero: bool = False,
    min_patients: int = MIN_CELL,
    patient: str = "patient_id",
) -> pd.DataFrame:
    """Mean weekly adherence (capped at 1) by week and phase, over the weeks with sessions
    prescribed: of the patients still in, or of everyone with the dropouts counted as 0.

    The patients still in (``dropouts_as_zero=False``) are the rows of the patient-week frame:
    each dropout's rows stop at its dropout week, so the mean of the later weeks is over the
    patients who stayed, who adhere better (survivorship: maintenance adherence seems to rise).
    With ``dropouts_as_zero`` every patient counts in every week of the planned program: a
    dropout's weeks after its dropout week (through ``weeks_planned - 1``) are added with
    adherence 0, in the guided phase before ``guided_weeks_actual`` (the planned
    ``guided_weeks`` when missing) and in maintenance after.

    Parameters
    ----------
    weeks : DataFrame
        The patient-week frame (:func:`~ptanalytics.metrics.weeks.patient_weeks`).
    summary : DataFrame, optional
        The patient summary (``dropout``, ``dropout_week``, ``weeks_planned``,
        ``guided_weeks_actual``); needed with ``dropouts_as_zero``.
    dropouts_as_zero : bool, default False
        Count every patient in every planned week, a dropout as 0 after it left.
    min_patients : int
        Rows over fewer patients are dropped (default
        :data:`~ptanalytics.privacy.suppression.MIN_CELL`).

    Returns
    -------
    pandas.DataFrame
        ``week`` (int), ``phase`` (str), ``mean`` (float, 0-1) and ``n`` (int, patients that
        week and phase), sorted by week and phase.
    """
    from ptanalytics._checks import check_bool

    check_bool("dropouts_as_zero", dropouts_as_zero)
    rows = weeks.loc[weeks["sessions_prescribed"] > 0, [patient, "week", "phase"]].assign(
        adherence=weeks["adherence_capped"].astype(float), phase=lambda d: d["phase"].astype(str)
    )
    if dropouts_as_zero:
        rows = pd.concat([rows, _weeks_after_dropout(rows, summary, patient)], ignore_index=True)
    out = (
        rows.groupby(["week", "phase"])["adherence"]
        .agg(mean="mean", n="size")
        .reset_index()
        .sort_values(["week", "phase"])
    )
    return out[out["n"] >= min_patients].reset_index(drop=True)


def _weeks_after_dropout(rows: pd.DataFrame, summary, patient: str) -> pd.DataFrame:
    """The planned weeks after each dropout's dropout week, at adherence 0 (not in ``rows``)."""
    import numpy as np

    from ptanalytics.exceptions import ConfigError

    need = [patient, "dropout", "dropout_week", "weeks_planned", "guided_weeks_actual"]
    missing = [c for c in need if not isinstance(summary, pd.DataFrame) or c not in summary]
    if missing:
        raise ConfigError(
            f"summary lacks column(s) {missing}; allowed: the patient summary. Fix: pass "
            "summary=patient_summary(cohort) with dropouts_as_zero=True."
        )
    gone = summary[summary["dropout"].fillna(False).astype(bool)].dropna(
        subset=["dropout_week", "weeks_planned"]
    )
    start = gone["dropout_week"].to_numpy(dtype=int) + 1
    counts = np.clip(gone["weeks_planned"].to_numpy(dtype=int) - start, 0, None)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    week = np.repeat(start, counts) + offset
    guided = gone["guided_weeks_actual"].astype(float)
    if "guided_weeks" in gone:
        guided = guided.fillna(gone["guided_weeks"].astype(float))
    extra = pd.DataFrame(
        {
            patient: np.repeat(gone[patient].to_numpy(), counts),
            "week": week,
            "phase": np.where(week < np.repeat(guided.to_numpy(), counts), "guided", "maintenance"),
            "adherence": 0.0,
        }
    )
    seen = pd.MultiIndex.from_frame(rows[[patient, "week"]])
    return extra[~pd.MultiIndex.from_frame(extra[[patient, "week"]]).isin(seen)]


def weekly_assessments(weeks: pd.DataFrame, column: str = "nprs") -> pd.DataFrame:
    """Patients and assessments per week of the patient-week frame.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``week``: ``patients`` (rows that week), ``assessed`` (rows with a ``column``
        score) and ``missing`` (float, the share of patients without one).
    """
    out = weeks.groupby("week")[column].agg(patients="size", assessed="count")
    return out.assign(missing=1 - out["assessed"] / out["patients"])


def weekly_minutes(weeks: pd.DataFrame) -> pd.DataFrame:
    """Mean exercise minutes per patient-week by category, over weeks with sessions prescribed.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``week``; one float column per exercise category (its name, e.g. ``aerobic``).
    """
    program = weeks[weeks["sessions_prescribed"] > 0]
    columns = {minutes_column(c): c for c in CATEGORIES}
    return program.groupby("week")[list(columns)].mean().rename(columns=columns)


def phase_totals(
    weeks: pd.DataFrame, columns=("sessions_prescribed", "sessions_completed")
) -> pd.DataFrame:
    """Sums of patient-week columns by phase (indexed by ``phase``; one column per input)."""
    return weeks.groupby("phase", observed=True)[list(columns)].sum()


def patient_counts(summary: pd.DataFrame, rows: str, columns: str) -> pd.DataFrame:
    """Patients by two summary columns (e.g. attendance band x trajectory class).

    Returns
    -------
    pandas.DataFrame
        Indexed by the levels of ``rows``, one column per level of ``columns``; missing where a
        combination has no patient. Patients with a missing level are left out.
    """
    return summary.groupby([rows, columns], observed=True).size().unstack()


def patient_shares(
    data: pd.DataFrame, column: str, *, dropna: bool = False, order: str = "level"
) -> pd.DataFrame:
    """Patients at each level of one column, with their percent of all patients.

    Parameters
    ----------
    data : DataFrame
        One row per patient (the patients table, the patient summary or a subset of either).
    column : str
        The column counted (``sex``, ``attendance_band``, ``nprs_baseline``, ...).
    dropna : bool, default False
        Leave out patients with a missing level (by default they are a level of their own).
    order : {"level", "count"}
        Rows sorted by level, or by count (most patients first, as ``value_counts`` does).

    Returns
    -------
    pandas.DataFrame
        Indexed by the levels of ``column`` (index named ``column``): ``patients`` (int) and
        ``percent`` (float, ``100 * patients / len(data)``: missing levels stay in the
        denominator when ``dropna`` leaves them out of the rows).
    """
    check_option("order", order, ("level", "count"))
    counts = data[column].value_counts(dropna=dropna)
    if order == "level":
        counts = counts.sort_index()
    return counts.to_frame("patients").assign(percent=100 * counts / len(data))


def group_means(
    summary: pd.DataFrame, columns: list[str], *, by: str, counts: bool = False
) -> pd.DataFrame:
    """Means of summary columns by group (a missing group level is a group of its own).

    Returns
    -------
    pandas.DataFrame
        Indexed by the levels of ``by``; one float column per input column, or, with
        ``counts``, a (column, ``count`` / ``mean``) pair for each (``count``: patients with a
        value).
    """
    grouped = summary.groupby(by, observed=True, dropna=False)[list(columns)]
    return grouped.agg(["count", "mean"]) if counts else grouped.mean()
