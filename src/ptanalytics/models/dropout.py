"""Time to dropout from the program: Kaplan-Meier (landmark), counting-process rows and Cox.

Built on the general estimators of :mod:`ptanalytics.models.survival` (checked against R's
``survival``). Time is counted in weeks since enrolment (week *w* covers days ``7w`` to
``7w + 6``). A dropout's event time is its ``dropout_week`` (the first week it was no longer in
the program, see :func:`ptanalytics.patient_summary`); every other patient is censored at
``weeks_planned``. :func:`kaplan_meier` (landmark analysis by :func:`early_adherence_band`, or
by :func:`category_emphasis`), :func:`dropout_intervals` and :func:`cox_dropout` (time-varying
pain). The two models return results with ``table``, ``n``, ``notes`` and ``figure()``;
:func:`early_adherence_band`, :func:`category_emphasis` and :func:`dropout_intervals` prepare
data and return frames.

Everything about dropout is an association: neither adherence nor pain was randomised, and in the
simulator as in life patients whose pain does not improve are more likely to stop.

.. code-block:: python

    import ptanalytics as pt
    from ptanalytics.models.dropout import cox_dropout, early_adherence_band, kaplan_meier
    from ptanalytics.models.survival import km_median

    cohort = pt.simulate_cohort(2000, seed=1)
    weeks, summary = pt.patient_weeks(cohort), pt.patient_summary(cohort)
    early = summary.merge(early_adherence_band(weeks), on="patient_id")
    km = kaplan_meier(early, by="early_band", landmark_week=4)
    km.table, km.figure(), km_median(km).table
    cox_dropout(weeks, summary).table
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ptanalytics._checks import check_alpha as _check_alpha
from ptanalytics._checks import check_number
from ptanalytics.cohort.catalogue import CATEGORIES
from ptanalytics.exceptions import ConfigError
from ptanalytics.models._result import Estimates
from ptanalytics.models.survival import (
    KM_COLUMNS,
    CoxResult,
    KaplanMeier,
    _check_conf_type,
    cox_ph,
    group_labels,
    km_estimate,
    logrank_test,
)
from ptanalytics.vocab import ATTENDANCE_BANDS, ATTENDANCE_CUTS, SHARE_COLUMNS

__all__ = [
    "CoxDropout",
    "category_emphasis",
    "cox_dropout",
    "dropout_intervals",
    "early_adherence_band",
    "kaplan_meier",
]

#: Columns of :func:`kaplan_meier`'s table (``week`` for the time; ``logrank_p`` with ``by``).
DROPOUT_KM_COLUMNS = ["group", "week", *KM_COLUMNS]
_SHARES = list(SHARE_COLUMNS)
_TIME_VARYING = ("maintenance",)
_ASSOCIATION = (
    "An association, not an effect: neither adherence nor pain was randomised, and patients "
    "whose pain does not improve are more likely to stop."
)


@dataclass
class CoxDropout(Estimates):
    """The Cox model of dropout (:func:`cox_dropout`).

    ``table`` holds the hazard ratios (see :func:`cox_dropout`), ``n`` the patients in the fit,
    ``notes`` the fit's messages, and ``fit`` the full :class:`~ptanalytics.models.survival.
    CoxResult` of the counting-process rows (log-likelihoods, tests, covariance).
    ``covariates`` are the columns the pain-change hazard ratio is adjusted for (the model's
    terms besides ``pain_change``, as given: e.g. ``nprs_baseline``, ``age``).
    """

    fit: CoxResult | None = None
    covariates: list[str] = field(default_factory=list)

    def figure(self, ax=None):
        """Hazard ratios with intervals (:func:`ptanalytics.plotting.plot_hazard_ratios`)."""
        from ptanalytics.plotting import plot_hazard_ratios

        return plot_hazard_ratios(self, ax=ax)


# ------------------------------------------------------------------------------------ checks
_SOURCES = {
    "summary": "ptanalytics.patient_summary of a cohort with prescriptions and sessions (dropout "
    "is not defined for an outcomes-only cohort)",
    "weeks": "ptanalytics.patient_weeks of a cohort with prescriptions and sessions",
}


def _require(frame: pd.DataFrame, columns, name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"{name} lacks column(s) {missing}; allowed: a frame from {_SOURCES[name]}."
        )


def _check_landmark(landmark_week, *, allow_none: bool) -> int | None:
    if allow_none:
        return check_number(
            "landmark_week",
            landmark_week,
            low=0,
            integer=True,
            allow_none=True,
            what="a whole number of weeks >= 0",
        )
    return check_number("landmark_week", landmark_week, low=1, integer=True)


# ------------------------------------------------------------------------------------ dropout KM
def _time_status(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Event time (weeks) and status (1 = dropout) per patient of ``summary``."""
    _require(summary, ["dropout", "dropout_week", "weeks_planned"], "summary")
    dropped = summary["dropout"]
    if dropped.isna().any():
        raise ConfigError(
            "summary.dropout has missing values; allowed: True/False for every patient."
        )
    dropped = dropped.to_numpy(dtype=bool)
    dweek = pd.to_numeric(summary["dropout_week"]).astype("Float64")
    if dweek[dropped].isna().any():
        raise ConfigError(
            "summary.dropout_week is missing for a dropout; allowed: the week of every dropout."
        )
    planned = pd.to_numeric(summary["weeks_planned"]).astype("Float64")
    time = np.where(dropped, dweek.fillna(0).to_numpy(dtype=float), planned.to_numpy(dtype=float))
    if np.isnan(time).any() or (time < 0).any():
        raise ConfigError(
            "summary.weeks_planned is missing or negative; allowed: weeks >= 0 for every patient."
        )
    return time, dropped.astype(np.int64)


def kaplan_meier(
    summary: pd.DataFrame,
    *,
    by: str | list[str] | None = None,
    landmark_week: int | None = None,
    conf_type: str = "log",
    alpha: float = 0.05,
) -> KaplanMeier:
    """Kaplan-Meier estimate of staying in the program (time to dropout, in weeks).

    A dropout's event time is ``dropout_week``; every other patient is censored at
    ``weeks_planned``. Survival at week *t* is the share still in the program in week *t*
    (``S(t) = P(T > t)``), estimated by :func:`km_estimate` (R's ``survfit``).

    Parameters
    ----------
    summary : pandas.DataFrame
        From :func:`ptanalytics.patient_summary` (needs ``dropout``, ``dropout_week``,
        ``weeks_planned`` and the ``by`` column), possibly merged with other per-patient columns
        such as :func:`early_adherence_band`'s ``early_band``.
    by : str or list of str, optional
        Column(s) of ``summary`` to estimate one curve per value of (patients with a missing
        value are left out; several columns: their values joined by ", ", as
        :func:`ptanalytics.models.survival.group_labels`). Without it, one curve for everybody
        (group ``"all"``).
    landmark_week : int, optional
        Landmark analysis: keep only the patients still in the program at the start of this week
        (not dropped out before it, and not censored before it) and count time from it, so week
        0 of the result is the landmark week. Patients whose ``dropout_week`` equals the landmark
        are kept and drop out at time 0. Use it with a grouping measured before the landmark
        (:func:`early_adherence_band`), never with one that uses later weeks.
    conf_type : {"log", "log-log", "plain"}
        Pointwise interval type; ``"log"`` is R's ``survfit`` default (see :func:`km_estimate`).
    alpha : float
        1 - confidence level of the pointwise intervals.

    Returns
    -------
    KaplanMeier
        ``n``: patients in the estimate (after the landmark); ``notes``: patients left out;
        ``figure()``: the curves (:func:`ptanalytics.plotting.plot_kaplan_meier`);
        :func:`ptanalytics.models.survival.km_median` gives the median week. ``table``: one
        block per group (in the order of the ``by`` categories, else sorted), each starting
        with an origin row (week 0, survival 1, nobody counted yet) followed by one row per
        distinct event or censoring time (so patients who leave in week 0 itself, with no session
        at all, are in a second week-0 row). Columns:

        - ``group`` (str): the ``by`` value, or ``"all"``.
        - ``week`` (float): weeks since enrolment (since the landmark with ``landmark_week``).
        - ``n_at_risk`` (int): patients still in the program just before ``week``.
        - ``events`` (int): dropouts at ``week``; ``censored`` (int): patients censored at it.
        - ``survival`` (float): the Kaplan-Meier estimate just after ``week``.
        - ``std_error`` (float): Greenwood's standard error of ``survival`` (0 at the origin).
        - ``ci_low``, ``ci_high`` (float): pointwise ``1 - alpha`` interval of type
          ``conf_type`` with Greenwood's variance; 1 before the first dropout, missing once the
          survival reaches 0.
        - ``logrank_p`` (float, only with ``by``): the log-rank test of equal curves across all
          groups (:func:`logrank_test`, as R's ``survdiff``), constant over rows; missing with
          fewer than two groups or no dropout.

        ``table.attrs`` holds ``by``, ``landmark_week``, ``conf_type``, ``alpha`` and, with ``by``,
        ``logrank_p``.

    Raises
    ------
    ConfigError
        When a needed column is missing, ``by`` is not a column, or ``landmark_week``,
        ``conf_type`` or ``alpha`` is out of range.

    Examples
    --------
    >>> import ptanalytics as pt
    >>> from ptanalytics import models
    >>> km = models.kaplan_meier(pt.patient_summary(pt.simulate_cohort(200, seed=1)))
    >>> km.n, list(km.table.columns[:4])
    (200, ['group', 'week', 'n_at_risk', 'events'])
    >>> fig = km.figure()
    """
    alpha, conf_type = _check_alpha(alpha), _check_conf_type(conf_type)
    landmark_week = _check_landmark(landmark_week, allow_none=True)
    time, status = _time_status(summary)
    if by is not None:
        values = group_labels(summary, by, frame="summary", none_allowed=True)
        values = values.reset_index(drop=True)
    else:
        values = pd.Series("all", index=range(len(summary)), dtype="str")
    keep = np.ones(len(summary), dtype=bool)
    notes = []
    if landmark_week is not None:
        keep = time >= landmark_week
        time = time - landmark_week
        if (~keep).sum():
            notes.append(
                f"{int((~keep).sum())} patient(s) no longer in the program at the week-"
                f"{landmark_week} landmark were left out."
            )
    frame = pd.DataFrame({"time": time, "event": status, "group": values})[keep]
    km = km_estimate(
        frame, time="time", event="event", by="group", conf_type=conf_type, alpha=alpha
    )
    missing = int(frame["group"].isna().sum())
    if missing:
        notes.append(f"{missing} patient(s) with a missing by={by!r} were left out.")
    table = _with_origin(km.table)
    table.attrs = {"by": by, "landmark_week": landmark_week, "conf_type": conf_type, "alpha": alpha}
    if by is not None:
        p = _logrank_p(frame.dropna(subset=["group"]))
        table["logrank_p"] = p
        table.attrs["logrank_p"] = p
    return KaplanMeier(table=table, n=km.n, notes=notes)


def _with_origin(km: pd.DataFrame) -> pd.DataFrame:
    """:func:`km_estimate`'s table with an origin row (week 0, survival 1) before each group."""
    blocks = []
    for name, g in km.groupby("group", sort=False):
        origin = {
            "group": name,
            "time": 0.0,
            "n_at_risk": int(g["n_at_risk"].iloc[0]),
            "events": 0,
            "censored": 0,
            "survival": 1.0,
            "std_error": 0.0,
            "ci_low": 1.0,
            "ci_high": 1.0,
        }
        blocks.extend([pd.DataFrame([origin]), g])
    out = (
        pd.concat(blocks, ignore_index=True)
        if blocks
        else pd.DataFrame({c: pd.Series(dtype=float) for c in ["group", "time", *KM_COLUMNS]})
    )
    out = out.rename(columns={"time": "week"})[DROPOUT_KM_COLUMNS]
    out["group"] = out["group"].astype("str")
    out["week"] = out["week"].astype(float)
    for col in ("n_at_risk", "events", "censored"):
        out[col] = out[col].astype(np.int64)
    return out


def _logrank_p(frame: pd.DataFrame) -> float:
    """The log-rank p-value across the groups of ``frame``; missing when there is no test."""
    try:
        return logrank_test(frame, time="time", event="event", group="group").p_value
    except ConfigError:  # fewer than two groups or no dropout: no test
        return float("nan")


# ------------------------------------------------------------------------------------ landmark
def early_adherence_band(
    weeks: pd.DataFrame, *, landmark_week: int = 4, bands: tuple[float, float] = ATTENDANCE_CUTS
) -> pd.DataFrame:
    """Adherence band from the weeks before a landmark, for a landmark analysis of dropout.

    Why not the summary's ``attendance_band``: it is computed over the whole planned program
    with the weeks after dropout counted as missed, so a dropout is low-adherence *because* it
    dropped out; comparing dropout across those bands is circular (the band is partly the
    outcome). A landmark analysis avoids this: the band comes from the first ``landmark_week``
    weeks only, and survival is then measured from the landmark among the patients still in the
    program (``kaplan_meier(..., by="early_band", landmark_week=4)``), so the grouping is fixed
    before any of the dropouts it is compared on.

    Parameters
    ----------
    weeks : pandas.DataFrame
        From :func:`ptanalytics.patient_weeks` (needs ``patient_id``, ``week``,
        ``sessions_prescribed``, ``sessions_completed``).
    landmark_week : int
        Weeks ``0 .. landmark_week - 1`` count (default 4).
    bands : (low, high)
        ``low`` below the first, ``medium`` up to the second, ``high`` at or above it, as the
        summary's attendance bands (default 50% and 75%).

    Returns
    -------
    pandas.DataFrame
        One row per patient of ``weeks`` (in its order). Columns:

        - ``patient_id`` (str).
        - ``early_adherence`` (float): sessions completed / prescribed over the weeks before the
          landmark (uncapped; missing when nothing was prescribed). A patient who dropped out
          before the landmark is measured over the weeks it has in ``weeks`` (with the default,
          truncated frame: up to its dropout week); such patients are left out of a landmark
          Kaplan-Meier anyway.
        - ``early_band`` (ordered category ``low``/``medium``/``high``; missing with the
          adherence).

    Raises
    ------
    ConfigError
        When a needed column is missing or ``landmark_week`` or ``bands`` is out of range.
    """
    landmark_week = _check_landmark(landmark_week, allow_none=False)
    try:
        low, high = (float(b) for b in bands)
    except (TypeError, ValueError):
        low, high = -1.0, -1.0
    if not 0 <= low <= high:
        raise ConfigError(f"bands={bands!r}; allowed: (low, high) with 0 <= low <= high.")
    _require(weeks, ["patient_id", "week", "sessions_prescribed", "sessions_completed"], "weeks")
    early = weeks["week"].to_numpy() < landmark_week
    frame = pd.DataFrame(
        {
            "patient_id": weeks["patient_id"].astype("str").to_numpy(),
            "p": np.where(early, weeks["sessions_prescribed"].to_numpy(dtype=float), 0.0),
            "d": np.where(early, weeks["sessions_completed"].to_numpy(dtype=float), 0.0),
        }
    )
    sums = frame.groupby("patient_id", sort=False)[["p", "d"]].sum()
    adh = (sums["d"] / sums["p"].where(sums["p"] > 0)).to_numpy(dtype=float)
    band = np.select([adh >= high, adh >= low], ["high", "medium"], "low")
    return pd.DataFrame(
        {
            "patient_id": sums.index.astype("str"),
            "early_adherence": adh,
            "early_band": pd.Categorical(
                np.where(np.isnan(adh), None, band),
                categories=list(ATTENDANCE_BANDS),
                ordered=True,
            ),
        }
    )


# ------------------------------------------------------------------------------------ emphasis
def category_emphasis(summary: pd.DataFrame) -> pd.Series:
    """The exercise category with the largest share of a patient's exercise minutes.

    Parameters
    ----------
    summary : pandas.DataFrame
        From :func:`ptanalytics.patient_summary` (needs the five ``share_<category>`` columns).

    Returns
    -------
    pandas.Series
        Named ``category_emphasis``, indexed like ``summary``: the category name (without
        ``share_``), the first in catalogue order on ties, and ``"none"`` for a patient without
        exercise minutes (all shares missing or zero).
    """
    _require(summary, _SHARES, "summary")
    shares = summary[_SHARES].apply(pd.to_numeric).to_numpy(dtype=float)
    filled = np.where(np.isnan(shares), -np.inf, shares)
    best = filled.argmax(axis=1)
    has = (np.nan_to_num(shares, nan=0.0) > 0).any(axis=1)
    names = np.asarray(CATEGORIES, dtype=object)[best]
    return pd.Series(
        np.where(has, names, "none"), index=summary.index, name="category_emphasis", dtype="str"
    )


# ------------------------------------------------------------------------------------ dropout Cox
def dropout_intervals(
    weeks: pd.DataFrame, summary: pd.DataFrame, *, covariates=("nprs_baseline", "age")
) -> pd.DataFrame:
    """Counting-process rows for a Cox model of dropout with time-varying pain.

    Each patient contributes one row per week in the program, the interval
    ``(start, stop] = (week, week + 1]`` in R's counting-process sense (at risk at ``stop``, not
    at ``start``, so back-to-back rows count a patient once): a dropout weeks
    ``0 .. dropout_week`` with ``event = 1`` in the dropout week's interval only,
    every other patient weeks ``0 .. weeks_planned - 1`` (censored at ``weeks_planned``, as in
    :func:`kaplan_meier`). The rows are built from ``summary``, so ``weeks`` may be truncated at
    dropout or not.

    ``pain_change`` of the interval starting at week *w* is the last weekly NPRS observed in
    weeks ``1 .. w - 1`` (last observation carried forward) minus ``nprs_baseline``: only what is
    known when the interval starts (a predictable covariate). The week's own NPRS is not used:
    dropouts have no assessment in their dropout week, so using it would give survivors a fresher
    value than the patients who leave and bias the comparison. Rows before any NPRS observed after
    baseline (weeks 0 and 1 always) use 0. It is missing when ``nprs_baseline`` is.

    Parameters
    ----------
    weeks : pandas.DataFrame
        From :func:`ptanalytics.patient_weeks` (needs ``patient_id``, ``week``, ``nprs``; with a
        ``phase`` column the ``maintenance`` indicator is added).
    summary : pandas.DataFrame
        From :func:`ptanalytics.patient_summary` (needs ``patient_id``, ``dropout``,
        ``dropout_week``, ``weeks_planned``, ``nprs_baseline`` and the ``covariates``).
    covariates : sequence of str
        Per-patient columns of ``summary`` copied onto every row of the patient.

    Returns
    -------
    pandas.DataFrame
        Sorted by patient (in ``summary`` order) and ``start``. Columns:

        - ``patient_id`` (str).
        - ``start`` (int, the week), ``stop`` (int, ``start + 1``).
        - ``event`` (int): 1 in the dropout week's interval, else 0.
        - ``pain_change`` (float): carried-forward NPRS minus baseline, as above (positive =
          worse pain than at baseline).
        - ``nprs_locf`` (float): the carried-forward NPRS itself (missing before any).
        - ``maintenance`` (int, when ``weeks`` has ``phase``): 1 when the week's phase is
          maintenance.
        - ``nprs_baseline`` and each of ``covariates`` (as in ``summary``).

    Raises
    ------
    ConfigError
        When a needed column is missing or a covariate is not a column of ``summary``.
    """
    covariates = _check_covariates(covariates, summary, time_varying=False)
    _require(weeks, ["patient_id", "week", "nprs"], "weeks")
    _require(summary, ["patient_id", "nprs_baseline"], "summary")
    time, status = _time_status(summary)
    nrows = np.where(status == 1, time + 1, time).astype(np.int64)
    ids = summary["patient_id"].astype("str").to_numpy()
    # Week of each row: position within its patient's block of nrows rows.
    start = np.arange(int(nrows.sum()), dtype=np.int64) - np.repeat(np.cumsum(nrows) - nrows, nrows)
    out = pd.DataFrame({"patient_id": np.repeat(ids, nrows), "start": start})
    out["stop"] = out["start"] + 1
    last = np.repeat(nrows - 1, nrows)
    out["event"] = ((out["start"].to_numpy() == last) & (np.repeat(status, nrows) == 1)).astype(
        np.int64
    )
    wk = pd.DataFrame(
        {
            "patient_id": weeks["patient_id"].astype("str").to_numpy(),
            "start": weeks["week"].to_numpy(dtype=np.int64),
            "nprs": weeks["nprs"].to_numpy(dtype=float),
        }
    )
    if "phase" in weeks.columns:
        wk["maintenance"] = (weeks["phase"].astype("str") == "maintenance").to_numpy(np.int64)
    if wk.duplicated(["patient_id", "start"]).any():
        raise ConfigError(
            "weeks has more than one row for a patient and week; allowed: the frame from "
            "ptanalytics.patient_weeks."
        )
    out = out.merge(wk, on=["patient_id", "start"], how="left", sort=False)
    # Last NPRS observed after the baseline week and before this interval's week.
    post = out["nprs"].where(out["start"] >= 1)
    locf = post.groupby(out["patient_id"], sort=False).ffill()
    out["nprs_locf"] = locf.groupby(out["patient_id"], sort=False).shift(1).astype(float)
    base = pd.to_numeric(summary["nprs_baseline"]).to_numpy(dtype=float)
    base_rows = np.repeat(base, nrows)
    change = out["nprs_locf"].to_numpy() - base_rows
    out["pain_change"] = np.where(out["nprs_locf"].isna(), 0.0, change)
    out.loc[np.isnan(base_rows), "pain_change"] = np.nan
    if "maintenance" in out:
        out["maintenance"] = out["maintenance"].fillna(0).astype(np.int64)
    out = out.drop(columns="nprs")
    take = np.repeat(np.arange(len(summary)), nrows)
    for name in dict.fromkeys(["nprs_baseline", *covariates]):
        out[name] = summary[name].iloc[take].reset_index(drop=True)
    first = ["patient_id", "start", "stop", "event", "pain_change", "nprs_locf"]
    return out[first + [c for c in out.columns if c not in first]]


def _check_covariates(covariates, summary: pd.DataFrame, *, time_varying: bool) -> list[str]:
    if isinstance(covariates, str):
        covariates = (covariates,)
    try:
        covariates = list(covariates)
    except TypeError:
        covariates = [covariates]
    allowed = set(summary.columns) | ({"pain_change", *_TIME_VARYING} if time_varying else set())
    bad = [c for c in covariates if not isinstance(c, str) or c not in allowed]
    if bad or len(set(covariates)) != len(covariates):
        extra = f" or {list(_TIME_VARYING)}" if time_varying else ""
        raise ConfigError(
            f"covariates={tuple(covariates)!r}: {bad or 'duplicates'} not usable; allowed: "
            f"distinct columns of summary (e.g. 'nprs_baseline', 'age', 'sex'){extra}."
        )
    return covariates


def cox_dropout(
    weeks: pd.DataFrame,
    summary: pd.DataFrame,
    *,
    covariates=("nprs_baseline", "age"),
    ties: str = "efron",
    alpha: float = 0.05,
) -> CoxDropout:
    """Cox model of dropout on time-varying pain change and baseline covariates.

    :func:`cox_ph` (R's ``coxph``) fitted to the counting-process rows of
    :func:`dropout_intervals`: ``Surv(start, stop, event) ~ pain_change + covariates``, each row
    at risk on ``(start, stop]``, so a patient is counted once at each dropout time and
    ``pain_change`` may change week by week. Patients with a missing covariate (or baseline
    NPRS) are left out.

    Read the result as an association, not a causal effect. In the simulator the weekly log-odds
    of dropout rise by ``dropout_pain_log_odds`` (0.4 by default; ``cohort.truth["effects"]``,
    term ``pain_change_from_baseline``) per point of *latent* pain change, a hazard ratio of about
    exp(0.4) ≈ 1.49 per point (weekly hazards are small, so odds and hazard ratios agree). The
    model sees only observed NPRS (measurement noise, rounding, missed and sparser assessments,
    carried forward from the previous week), so the estimate is attenuated towards 1 (about
    1.21, 1.17 to 1.25, on 3,000 default simulated patients, ``simulate_cohort(3000, seed=5)``).
    Baseline NPRS enters because an observed baseline's noise enters the change with the opposite
    sign.

    Parameters
    ----------
    weeks, summary : pandas.DataFrame
        From :func:`ptanalytics.patient_weeks` and :func:`ptanalytics.patient_summary`.
    covariates : sequence of str
        Baseline columns of ``summary`` (numeric, boolean or categorical: categories are
        treatment-coded against the first, as ``sex[T.male]``) and/or ``"maintenance"`` (the
        time-varying phase indicator of :func:`dropout_intervals`). ``pain_change`` is always
        included. Default ``("nprs_baseline", "age")``.
    ties : {"efron", "breslow"}
        Handling of tied dropout weeks (R's default ``"efron"``).
    alpha : float
        1 - confidence level of the intervals.

    Returns
    -------
    CoxDropout
        ``n``: patients in the fit; ``notes``: patients left out, the fit's messages and the
        reminder that this is an association; ``fit``: the :func:`cox_ph` result;
        ``figure()``: the hazard ratios. ``table``: one row per term (``pain_change`` first).
        Columns:

        - ``term`` (str).
        - ``estimate`` (float): hazard ratio per unit of the term.
        - ``std_error`` (float): standard error of the log hazard ratio.
        - ``ci_low``, ``ci_high`` (float): ``1 - alpha`` Wald interval of the hazard ratio.
        - ``p_value`` (float): Wald test of no association.
        - ``scale`` (``"hazard ratio"``), ``model`` (``"cox_dropout"``).
        - ``n_patients``, ``n_events`` (int): patients and dropouts in the fit.

    Raises
    ------
    ConfigError
        When a needed column is missing, a covariate is not usable, or there is no dropout.
    """
    alpha = _check_alpha(alpha)
    covariates = _check_covariates(covariates, summary, time_varying=True)
    if "pain_change" in covariates:
        covariates.remove("pain_change")
    baseline = [c for c in covariates if c not in _TIME_VARYING]
    intervals = dropout_intervals(weeks, summary, covariates=baseline)
    missing = [c for c in covariates if c not in intervals.columns]
    if missing:
        raise ConfigError(
            f"covariates include {missing} but weeks has no 'phase' column; allowed: a weeks "
            "frame from ptanalytics.patient_weeks of a cohort with prescriptions."
        )
    terms = ["pain_change", *covariates]
    complete = intervals.dropna(subset=terms)
    if int(complete["event"].sum()) == 0:
        raise ConfigError(
            "no dropouts among the patients with complete covariates; nothing to fit."
        )
    fit = cox_ph(
        complete,
        time="stop",
        start="start",
        event="event",
        covariates=terms,
        ties=ties,
        alpha=alpha,
    )
    table = fit.table[["term", "estimate", "std_error", "ci_low", "ci_high", "p_value"]].copy()
    table["scale"] = "hazard ratio"
    table["model"] = "cox_dropout"
    n_patients = int(complete["patient_id"].nunique())
    table["n_patients"] = n_patients
    table["n_events"] = fit.n_events
    left_out = int(intervals["patient_id"].nunique()) - n_patients
    notes = [f"{left_out} patient(s) with a missing covariate were left out."] if left_out else []
    return CoxDropout(
        table=table,
        n=n_patients,
        notes=[*notes, *fit.notes, _ASSOCIATION],
        fit=fit,
        covariates=list(covariates),
    )
