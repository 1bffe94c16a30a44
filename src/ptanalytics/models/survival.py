"""Time to dropout: Kaplan-Meier curves, a landmark analysis by early adherence, and a Cox model
of dropout on time-varying pain.

Time is counted in weeks since enrolment (week *w* covers days ``7w`` to ``7w + 6``). A dropout's
event time is its ``dropout_week`` (the first week it was no longer in the program, see
:func:`ptanalytics.patient_summary`); every other patient is censored at ``weeks_planned``.

Everything here is an association: neither adherence nor pain was randomised, and in the simulator
as in life patients whose pain does not improve are more likely to stop.

.. code-block:: python

    import ptanalytics as pt
    from ptanalytics.models.survival import (
        cox_dropout, early_adherence_band, kaplan_meier, plot_kaplan_meier,
    )

    cohort = pt.simulate_cohort(2000, seed=1)
    weeks, summary = pt.patient_weeks(cohort), pt.patient_summary(cohort)
    early = summary.merge(early_adherence_band(weeks), on="patient_id")
    km = kaplan_meier(early, by="early_band", landmark_week=4)
    fig = plot_kaplan_meier(km)
    cox_dropout(weeks, summary)
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
from scipy import stats

from ptanalytics.catalogue import CATEGORIES
from ptanalytics.exceptions import ConfigError
from ptanalytics.models._tidy import tidy

__all__ = [
    "category_emphasis",
    "cox_dropout",
    "dropout_intervals",
    "early_adherence_band",
    "kaplan_meier",
    "plot_kaplan_meier",
]

KM_COLUMNS = ["group", "week", "n_at_risk", "events", "censored", "survival", "ci_low", "ci_high"]
_SHARES = [f"share_{c}" for c in CATEGORIES]


# ------------------------------------------------------------------------------------ checks
_SOURCES = {
    "summary": "ptanalytics.patient_summary of a cohort with prescriptions and sessions (dropout "
    "is not defined for an outcomes-only cohort)",
    "weeks": "ptanalytics.patient_weeks of a cohort with prescriptions and sessions",
    "km": "ptanalytics.models.survival.kaplan_meier",
}


def _require(frame: pd.DataFrame, columns, name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"{name} lacks column(s) {missing}; allowed: a frame from {_SOURCES[name]}."
        )


def _check_alpha(alpha) -> float:
    if not isinstance(alpha, int | float) or isinstance(alpha, bool) or not 0 < alpha < 1:
        raise ConfigError(f"alpha={alpha!r}; allowed: a number strictly between 0 and 1.")
    return float(alpha)


def _check_landmark(landmark_week, *, allow_none: bool) -> int | None:
    if landmark_week is None and allow_none:
        return None
    if (
        isinstance(landmark_week, bool)
        or not isinstance(landmark_week, int | np.integer)
        or landmark_week < (0 if allow_none else 1)
    ):
        allowed = "None or a whole number of weeks >= 0" if allow_none else "a whole number >= 1"
        raise ConfigError(f"landmark_week={landmark_week!r}; allowed: {allowed}.")
    return int(landmark_week)


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


# ------------------------------------------------------------------------------------ Kaplan-Meier
def _km_table(time: np.ndarray, status: np.ndarray, alpha: float) -> pd.DataFrame:
    """One group's KM table: an origin row, then one row per distinct time."""
    from statsmodels.duration.survfunc import SurvfuncRight

    sf = SurvfuncRight(time, status)
    utimes, inverse = np.unique(time, return_inverse=True)
    events = np.bincount(inverse, weights=status, minlength=len(utimes)).astype(np.int64)
    total = np.bincount(inverse, minlength=len(utimes)).astype(np.int64)
    at_risk = len(time) - np.concatenate([[0], np.cumsum(total)[:-1]])
    # statsmodels keeps event times only; between them the curve is flat.
    pos = np.searchsorted(np.asarray(sf.surv_times, dtype=float), utimes, side="right") - 1
    has = pos >= 0
    surv = np.where(has, np.asarray(sf.surv_prob)[np.maximum(pos, 0)], 1.0)
    se = np.where(has, np.asarray(sf.surv_prob_se)[np.maximum(pos, 0)], 0.0)
    low, high = _loglog_ci(surv, se, alpha)
    table = pd.DataFrame(
        {
            "week": np.concatenate([[0], utimes]).astype(np.int64),
            "n_at_risk": np.concatenate([[len(time)], at_risk]),
            "events": np.concatenate([[0], events]),
            "censored": np.concatenate([[0], total - events]),
            "survival": np.concatenate([[1.0], surv]),
            "ci_low": np.concatenate([[1.0], low]),
            "ci_high": np.concatenate([[1.0], high]),
        }
    )
    return table


def _loglog_ci(surv: np.ndarray, se: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise log-log interval (R's ``conf.type = "log-log"``) from Greenwood's SE of S."""
    z = stats.norm.ppf(1 - alpha / 2)
    low = np.full(len(surv), np.nan)
    high = np.full(len(surv), np.nan)
    one = surv >= 1
    low[one] = high[one] = 1.0
    ok = (surv > 0) & (surv < 1) & np.isfinite(se)
    s = surv[ok]
    v = se[ok] / (s * np.abs(np.log(s)))  # SE of log(-log S) by the delta method
    low[ok] = s ** np.exp(z * v)
    high[ok] = s ** np.exp(-z * v)
    return low, high


def kaplan_meier(
    summary: pd.DataFrame,
    *,
    by: str | None = None,
    landmark_week: int | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Kaplan-Meier estimate of staying in the program (time to dropout, in weeks).

    A dropout's event time is ``dropout_week``; every other patient is censored at
    ``weeks_planned``. Survival at week *t* is the share still in the program in week *t*
    (``S(t) = P(T > t)``), estimated with statsmodels' ``SurvfuncRight``.

    Parameters
    ----------
    summary : pandas.DataFrame
        From :func:`ptanalytics.patient_summary` (needs ``dropout``, ``dropout_week``,
        ``weeks_planned`` and the ``by`` column), possibly merged with other per-patient columns
        such as :func:`early_adherence_band`'s ``early_band``.
    by : str, optional
        Column of ``summary`` to estimate one curve per value of (patients with a missing value
        are left out). Without it, one curve for everybody (group ``"all"``).
    landmark_week : int, optional
        Landmark analysis: keep only the patients still in the program at the start of this week
        (not dropped out before it, and not censored before it) and count time from it, so week
        0 of the result is the landmark week. Patients whose ``dropout_week`` equals the landmark
        are kept and drop out at time 0. Use it with a grouping measured before the landmark
        (:func:`early_adherence_band`), never with one that uses later weeks.
    alpha : float
        1 - confidence level of the pointwise intervals.

    Returns
    -------
    pandas.DataFrame
        One block per group (in the order of the ``by`` categories, else sorted), each starting
        with an origin row (week 0, survival 1, nobody counted yet) followed by one row per
        distinct event or censoring time (so patients who leave in week 0 itself, with no session
        at all, are in a second week-0 row). Columns:

        - ``group`` (str): the ``by`` value, or ``"all"``.
        - ``week`` (int): weeks since enrolment (since the landmark with ``landmark_week``).
        - ``n_at_risk`` (int): patients still in the program just before ``week``.
        - ``events`` (int): dropouts at ``week``; ``censored`` (int): patients censored at it.
        - ``survival`` (float): the Kaplan-Meier estimate just after ``week``.
        - ``ci_low``, ``ci_high`` (float): pointwise ``1 - alpha`` interval, log-log transform
          with Greenwood's variance (as R's ``survfit(conf.type = "log-log")``); 1 before the
          first dropout, missing once the survival reaches 0.
        - ``logrank_p`` (float, only with ``by``): the log-rank test of equal curves across all
          groups (statsmodels ``survdiff``; chi-square with groups - 1 degrees of freedom),
          constant over rows; missing with fewer than two groups.

        ``attrs`` holds ``by``, ``landmark_week``, ``alpha`` and, with ``by``, ``logrank_p``.

    Raises
    ------
    ConfigError
        When a needed column is missing, ``by`` is not a column, or ``landmark_week`` or
        ``alpha`` is out of range.
    """
    alpha = _check_alpha(alpha)
    landmark_week = _check_landmark(landmark_week, allow_none=True)
    time, status = _time_status(summary)
    if by is not None:
        if not isinstance(by, str) or by not in summary.columns:
            raise ConfigError(
                f"by={by!r} is not a column of summary; allowed: None or one of "
                f"{sorted(map(str, summary.columns))}."
            )
        values = summary[by]
        keep = values.notna().to_numpy(copy=True)
    else:
        values = pd.Series("all", index=summary.index)
        keep = np.ones(len(summary), dtype=bool)
    if landmark_week is not None:
        keep &= time >= landmark_week
        time = time - landmark_week
    values = values[keep]
    time, status = time[keep], status[keep]
    if isinstance(values.dtype, pd.CategoricalDtype):
        order = [c for c in values.cat.categories if (values == c).any()]
    else:
        order = sorted(pd.unique(values.to_numpy()), key=lambda v: (str(type(v)), v))
    vals = values.to_numpy()
    blocks = []
    for level in order:
        m = vals == level
        block = _km_table(time[m], status[m], alpha)
        block.insert(0, "group", str(level))
        blocks.append(block)
    km = (
        pd.concat(blocks, ignore_index=True)
        if blocks
        else pd.DataFrame({c: pd.Series(dtype=float) for c in KM_COLUMNS})
    )
    km["group"] = km["group"].astype("str")
    km.attrs = {"by": by, "landmark_week": landmark_week, "alpha": alpha}
    if by is not None:
        p = _logrank(time, status, np.asarray([str(v) for v in vals]))
        km["logrank_p"] = p
        km.attrs["logrank_p"] = p
    return km


def _logrank(time: np.ndarray, status: np.ndarray, group: np.ndarray) -> float:
    from statsmodels.duration.survfunc import survdiff

    if len(np.unique(group)) < 2 or status.sum() == 0:
        return float("nan")
    chisq, _p = survdiff(time, status, group)
    # survdiff's p is 1 - cdf, which floors at about 1e-16; the upper tail keeps small p exact.
    return float(stats.chi2.sf(chisq, len(np.unique(group)) - 1))


# ------------------------------------------------------------------------------------ landmark
def early_adherence_band(
    weeks: pd.DataFrame, *, landmark_week: int = 4, bands: tuple[float, float] = (0.5, 0.75)
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
                categories=["low", "medium", "high"],
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


# ------------------------------------------------------------------------------------ Cox
_TIME_VARYING = ("maintenance",)


def dropout_intervals(
    weeks: pd.DataFrame, summary: pd.DataFrame, *, covariates=("nprs_baseline", "age")
) -> pd.DataFrame:
    """Counting-process rows for a Cox model of dropout with time-varying pain.

    Each patient contributes one row per week in the program, the interval ``[week, week + 1)``:
    a dropout weeks ``0 .. dropout_week`` with ``event = 1`` in the dropout week's interval only,
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


def _design(intervals: pd.DataFrame, terms: list[str]) -> pd.DataFrame:
    """Numeric design: numbers and booleans as they are, categories as treatment dummies."""
    cols = {}
    for name in terms:
        col = intervals[name]
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            cols[name] = pd.to_numeric(col).astype("Float64").to_numpy(dtype=float, na_value=np.nan)
            continue
        cat = col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype("category")
        levels = [c for c in cat.cat.categories if (cat == c).any()]
        for level in levels[1:]:
            dummy = (cat == level).to_numpy(dtype=float, copy=True)
            dummy[cat.isna().to_numpy()] = np.nan
            cols[f"{name}[T.{level}]"] = dummy
    return pd.DataFrame(cols, index=intervals.index)


def _fit_cox(intervals: pd.DataFrame, terms, *, alpha: float = 0.05, extra=None):
    """Cox PH (Efron ties) on counting-process rows ``start``, ``stop``, ``event`` + ``terms``.

    Rows with a missing term are dropped. Returns the tidy table (hazard ratios) and the
    statsmodels result.
    """
    from statsmodels.duration.hazard_regression import PHReg

    x = _design(intervals, list(terms))
    ok = x.notna().all(axis=1).to_numpy()
    x = x[ok]
    rows = intervals[ok]
    if int(rows["event"].sum()) == 0:
        raise ConfigError(
            "no dropouts among the patients with complete covariates; nothing to fit."
        )
    model = PHReg(
        rows["stop"].to_numpy(dtype=float),
        x,
        status=rows["event"].to_numpy(dtype=float),
        entry=rows["start"].to_numpy(dtype=float),
        ties="efron",
    )
    result = model.fit()
    names = list(x.columns)
    # PHReg's result exposes params, bse and pvalues as arrays; name them for tidy().
    view = SimpleNamespace(
        params=pd.Series(np.asarray(result.params), index=names),
        bse=pd.Series(np.asarray(result.bse), index=names),
        pvalues=pd.Series(np.asarray(result.pvalues), index=names),
        conf_int=lambda alpha=0.05: np.asarray(result.conf_int(alpha=alpha)),
    )
    extra = dict(extra or {})
    if "patient_id" in rows:
        extra["n_patients"] = int(rows["patient_id"].nunique())
    extra["n_events"] = int(rows["event"].sum())
    return tidy(view, exponentiate=True, alpha=alpha, extra=extra), result


def cox_dropout(
    weeks: pd.DataFrame,
    summary: pd.DataFrame,
    *,
    covariates=("nprs_baseline", "age"),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Cox model of dropout on time-varying pain change and baseline covariates.

    A proportional-hazards model (statsmodels ``PHReg``, Efron ties) fitted to the
    counting-process rows of :func:`dropout_intervals` (``entry`` = ``start``, time = ``stop``),
    so ``pain_change`` may change week by week. Patients with a missing covariate (or baseline
    NPRS) are left out.

    Read the result as an association, not a causal effect. In the simulator the weekly log-odds
    of dropout rise by ``dropout_pain_log_odds`` (0.4 by default; ``cohort.truth["effects"]``,
    term ``pain_change_from_baseline``) per point of *latent* pain change, a hazard ratio of about
    exp(0.4) ≈ 1.49 per point (weekly hazards are small, so odds and hazard ratios agree). The
    model sees only observed NPRS (measurement noise, rounding, missed and sparser assessments,
    carried forward from the previous week), so the estimate is attenuated towards 1 (about 1.24
    on 3,000 default simulated patients). Baseline NPRS enters because an observed baseline's
    noise enters the change with the opposite sign.

    Parameters
    ----------
    weeks, summary : pandas.DataFrame
        From :func:`ptanalytics.patient_weeks` and :func:`ptanalytics.patient_summary`.
    covariates : sequence of str
        Baseline columns of ``summary`` (numeric, boolean or categorical: categories are
        treatment-coded against the first, as ``sex[T.male]``) and/or ``"maintenance"`` (the
        time-varying phase indicator of :func:`dropout_intervals`). ``pain_change`` is always
        included. Default ``("nprs_baseline", "age")``.
    alpha : float
        1 - confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        One row per term (``pain_change`` first). Columns:

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
    table, _result = _fit_cox(
        intervals,
        ["pain_change", *covariates],
        alpha=alpha,
        extra={"scale": "hazard ratio", "model": "cox_dropout"},
    )
    return table


# ------------------------------------------------------------------------------------ plot
def plot_kaplan_meier(km: pd.DataFrame, *, ax=None):
    """Step curves of staying in the program with their confidence bands, one per group.

    Parameters
    ----------
    km : pandas.DataFrame
        From :func:`kaplan_meier`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made when omitted (the caller owns it, close it with
        ``matplotlib.pyplot.close(fig)``).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes: one step line and one shaded band per group, axis labels,
        a legend, and the log-rank p-value in the title when ``km`` has one.
    """
    _require(km, ["group", "week", "survival", "ci_low", "ci_high"], "km")
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5))
    else:
        fig = ax.figure
    groups = list(dict.fromkeys(km["group"].astype("str")))
    for name in groups:
        g = km[km["group"].astype("str") == name]
        x = g["week"].to_numpy(dtype=float)
        (line,) = ax.step(x, g["survival"].to_numpy(dtype=float), where="post", label=name)
        lo = g["ci_low"].to_numpy(dtype=float)
        hi = g["ci_high"].to_numpy(dtype=float)
        band = np.isfinite(lo) & np.isfinite(hi)
        if band.any():
            ax.fill_between(
                x[band],
                lo[band],
                hi[band],
                step="post",
                alpha=0.2,
                color=line.get_color(),
                linewidth=0,
            )
    landmark = km.attrs.get("landmark_week")
    ax.set_xlabel(
        "Weeks since enrolment" if landmark is None else f"Weeks since the week-{landmark} landmark"
    )
    ax.set_ylabel("Still in the program")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    title = "Time to dropout (Kaplan-Meier)"
    p = km.attrs.get("logrank_p")
    if p is None and "logrank_p" in km.columns and len(km):
        p = km["logrank_p"].iloc[0]
    if p is not None and np.isfinite(p):
        title += f"; log-rank p = {p:.3g}" if p >= 1e-4 else "; log-rank p < 0.0001"
    ax.set_title(title)
    if groups:
        ax.legend(title=km.attrs.get("by") or None, loc="lower left")
    return fig
