"""The patient-summary frame (:func:`patient_summary`): one row per patient.

Adherence overall and by phase, attendance band, adherence trajectory class, dropout, exercise
composition and the outcome scores at each timepoint (the numbers of a Table 1 and of every
patient-level model). The weekly definitions it sums are those of :mod:`ptanalytics.metrics.weeks`;
timepoints are those of :mod:`ptanalytics.metrics.timepoints`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptanalytics._checks import check_option
from ptanalytics.cohort.container import Cohort
from ptanalytics.exceptions import ConfigError
from ptanalytics.metrics.composition import closure, ilr, replace_zeros
from ptanalytics.metrics.timepoints import TIMEPOINTS, timepoint_scores
from ptanalytics.metrics.weeks import (
    INACTIVITY_DAYS,
    MISSED_SESSIONS,
    WeekGrid,
    grid_dropout,
    grid_of,
)
from ptanalytics.vocab import ATTENDANCE_BANDS, ATTENDANCE_CUTS, SHARE_COLUMNS, TRAJECTORY_CLASSES

__all__ = ["TRAJECTORY_CLASSES", "patient_summary"]

_SHARES = list(SHARE_COLUMNS)

#: Slope of weekly capped adherence (per week) at or beyond which a patient's adherence
#: trajectory is ``increasing`` or ``declining`` (one percentage point a week).
TRAJECTORY_THRESHOLD = 0.01


def _slope(y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """OLS slope of y on week over the masked weeks, per row (missing with < 3 weeks)."""
    x = np.broadcast_to(np.arange(y.shape[1], dtype=float), y.shape)
    m = mask & np.isfinite(y)
    k = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = np.where(m, x, 0).sum(axis=1) / k
        ym = np.where(m, y, 0).sum(axis=1) / k
        sxy = np.where(m, (x - xm[:, None]) * (y - ym[:, None]), 0).sum(axis=1)
        sxx = np.where(m, (x - xm[:, None]) ** 2, 0).sum(axis=1)
        return np.where((k >= 3) & (sxx > 0), sxy / sxx, np.nan)


def _longest_streak(met: np.ndarray) -> np.ndarray:
    run = np.zeros(met.shape[0], dtype=np.int64)
    best = np.zeros(met.shape[0], dtype=np.int64)
    for w in range(met.shape[1]):
        run = np.where(met[:, w], run + 1, 0)
        best = np.maximum(best, run)
    return best


def patient_summary(
    cohort: Cohort,
    *,
    bands: tuple[float, float] = ATTENDANCE_CUTS,
    trajectory_threshold: float = TRAJECTORY_THRESHOLD,
    trajectory_weeks: str = "planned",
    window_days: int = 7,
    end_of_guided_week: int | None = None,
    followup_week: int | None = None,
    zero_delta: float | None = None,
    min_exercises: int = 1,
    dropout_rule: str = "inactivity",
    inactivity_days: int = INACTIVITY_DAYS,
    missed_sessions: int = MISSED_SESSIONS,
    grid: WeekGrid | None = None,
) -> pd.DataFrame:
    """One row per patient: adherence, dropout, exercise mix and outcomes.

    Parameters
    ----------
    cohort : Cohort
        A validated cohort.
    bands : (low, high)
        Attendance bands on overall adherence: ``low`` below the first, ``medium`` up to the
        second, ``high`` at or above it (default 50% and 75%).
    trajectory_threshold : float
        Slope of weekly capped adherence (per week) at or beyond which a patient is
        ``increasing`` or ``declining`` (default 0.01: one percentage point a week, 26 over a
        26-week program); ``stable`` in between.
    trajectory_weeks : {"planned", "active"}
        Weeks the slope is fitted over: every planned week with sessions prescribed (zeros after
        dropout included, the default), or only the weeks before dropout.
    window_days : int or dict
        An assessment counts for a timepoint when it lies within this many days of its target
        (a dict gives each timepoint its own). Targets, windows, ties and the rule that one
        assessment serves one timepoint are those of :mod:`ptanalytics.metrics.timepoints`.
    end_of_guided_week, followup_week : int, optional
        Target weeks for the same for all patients. Default: as in
        :func:`ptanalytics.metrics.timepoints.timepoint_targets` (the end of each patient's guided
        prescriptions, else ``patients.guided_weeks``; ``patients.followup_weeks``, else the
        ``cohort.json`` schedule, else the end of the program, else the schedule inferred from
        the assessments).
    zero_delta : float, optional
        Zero replacement for the composition (see :mod:`~ptanalytics.metrics.composition`).
    min_exercises, dropout_rule, inactivity_days, missed_sessions, grid
        As in :func:`ptanalytics.metrics.weeks.patient_weeks`.

    Returns
    -------
    pandas.DataFrame
        The ``patients`` columns (attributes such as a trial arm included), then:

        - ``weeks_planned`` (int): weeks the patient-week frame runs to (``followup_weeks``, else
          the end of the prescriptions, else the last assessment).
        - ``guided_weeks_actual`` (Int64): weeks of guided prescriptions (after any extension or
          shortening; compare with the planned ``guided_weeks``).
        - ``sessions_prescribed``, ``sessions_completed``; ``adherence`` (completed / prescribed
          over the whole planned program; weeks after dropout count as missed),
          ``adherence_guided``, ``adherence_maintenance`` (float, uncapped).
        - ``attendance_band`` (category ``low``/``medium``/``high``).
        - ``adherence_slope`` (float, per week, of weekly capped adherence over the planned
          weeks, including zeros after dropout) and ``adherence_trajectory`` (category).
        - ``dropout`` (bool), ``dropout_week`` (Int64), ``last_active_week`` (Int64).
        - ``longest_streak`` (int): most consecutive weeks with every prescribed session done.
        - ``minutes_total``; ``share_<category>`` (float, of all exercise minutes; missing when
          none) and ``ilr_1`` ... ``ilr_4`` (pivot coordinates after zero replacement).
        - ``nprs_baseline``, ``nprs_end_guided``, ``nprs_followup`` and the same for ``odi``
          (float; from :mod:`ptanalytics.metrics.timepoints`: the nearest assessment within
          ``window_days`` of the target, missing when there is none — never another timepoint's
          score).
        - ``nprs_change_end_guided``, ``nprs_change_followup`` (later minus baseline: negative is
          improvement) and ``nprs_pct_change_*`` (percent of baseline; missing when the baseline
          is 0); the same for ``odi``.

        Adherence, dropout and composition columns are absent (not zero) for a cohort without
        prescriptions or sessions.

    Examples
    --------
    >>> import ptanalytics as pt
    >>> summary = pt.patient_summary(pt.simulate_cohort(200, seed=1))
    >>> len(summary)  # one row per patient
    200
    >>> summary["attendance_band"].value_counts().sort_index().to_dict()
    {'low': 106, 'medium': 29, 'high': 65}
    """
    if not 0 <= bands[0] <= bands[1]:
        raise ConfigError(f"bands={bands}; allowed: (low, high) with 0 <= low <= high.")
    g = grid_of(cohort, min_exercises, grid)
    summary = cohort.patients.reset_index(drop=True).copy()
    summary["weeks_planned"] = g.horizon
    if g.has_program and g.guided_end is not None:
        actual = np.where(g.guided_end >= 0, np.ceil(g.guided_end / 7), np.nan)
        summary["guided_weeks_actual"] = pd.array(
            np.where(np.isnan(actual), 0, actual).astype(np.int64), dtype="Int64"
        )
        summary.loc[np.isnan(actual), "guided_weeks_actual"] = pd.NA
    if g.has_program:
        _adherence_columns(
            summary,
            g,
            bands,
            trajectory_threshold,
            trajectory_weeks,
            dropout_rule,
            inactivity_days,
            missed_sessions,
            zero_delta,
        )
    # Outcome scores at each timepoint: one definition, in ptanalytics.metrics.timepoints.
    scores = timepoint_scores(
        cohort,
        instruments=("NPRS", "ODI"),
        window_days=window_days,
        end_of_guided_week=end_of_guided_week,
        followup_week=followup_week,
    )
    for inst in ("nprs", "odi"):
        for name in TIMEPOINTS:
            summary[f"{inst}_{name}"] = scores[f"{inst}_{name}"].to_numpy()
        base = summary[f"{inst}_baseline"]
        for name in ("end_guided", "followup"):
            change = summary[f"{inst}_{name}"] - base
            summary[f"{inst}_change_{name}"] = change
            summary[f"{inst}_pct_change_{name}"] = 100 * change / base.where(base != 0)
    return summary


def _adherence_columns(
    summary,
    g: WeekGrid,
    bands,
    threshold,
    traj_weeks,
    rule,
    inactivity_days,
    missed_sessions,
    zero_delta,
) -> None:
    _n, width = g.prescribed.shape
    weeks = np.arange(width)
    planned = weeks[None, :] < g.horizon[:, None]
    presc = np.where(planned, g.prescribed, 0)
    done = np.where(planned, g.completed, 0)
    phase = g.phase

    def ratio(mask):
        p = (presc * mask).sum(axis=1)
        d = (done * mask).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(p > 0, d / np.where(p > 0, p, 1), np.nan)

    summary["sessions_prescribed"] = presc.sum(axis=1)
    summary["sessions_completed"] = done.sum(axis=1).astype(np.int64)
    summary["adherence"] = ratio(np.ones_like(presc))
    summary["adherence_guided"] = ratio(phase == 0)
    summary["adherence_maintenance"] = ratio(phase == 1)
    adh = summary["adherence"]
    band = np.select([adh >= bands[1], adh >= bands[0]], ["high", "medium"], "low")
    summary["attendance_band"] = pd.Categorical(
        np.where(adh.isna(), None, band), categories=list(ATTENDANCE_BANDS), ordered=True
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        weekly = np.where(presc > 0, np.minimum(done / np.where(presc > 0, presc, 1), 1), np.nan)
    dropped, dweek = grid_dropout(g, rule, inactivity_days, missed_sessions)
    fit = presc > 0
    check_option(
        "trajectory_weeks", traj_weeks, ("planned", "active"), what="'planned' or 'active'"
    )
    if traj_weeks == "active":
        fit &= ~dropped[:, None] | (weeks[None, :] < dweek[:, None])
    slope = _slope(weekly, fit)
    summary["adherence_slope"] = slope
    traj = np.select(
        [slope <= -threshold, slope >= threshold], ["declining", "increasing"], "stable"
    )
    summary["adherence_trajectory"] = pd.Categorical(
        np.where(np.isnan(slope), None, traj), categories=list(TRAJECTORY_CLASSES)
    )
    summary["dropout"] = dropped
    summary["dropout_week"] = pd.array(np.where(dropped, dweek, 0), dtype="Int64")
    summary.loc[~dropped, "dropout_week"] = pd.NA
    last = np.where(g.last_day >= 0, g.last_day // 7, 0)
    summary["last_active_week"] = pd.array(last, dtype="Int64")
    summary.loc[g.last_day < 0, "last_active_week"] = pd.NA
    summary["longest_streak"] = _longest_streak((presc > 0) & (done >= presc - 1e-9))
    minutes = pd.DataFrame(g.minutes.sum(axis=1), columns=_SHARES)
    summary["minutes_total"] = minutes.sum(axis=1).to_numpy()
    shares = closure(minutes)
    for col in _SHARES:
        summary[col] = shares[col].to_numpy()
    coords = ilr(replace_zeros(shares, delta=zero_delta))
    for col in coords:
        summary[col] = coords[col].to_numpy()
