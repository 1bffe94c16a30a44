"""Survival analysis that matches R's ``survival`` package, and time to dropout.

Two layers:

* **General estimators** that work on any DataFrame, seaborn/pingouin style
  (``fn(data, *, time=..., event=..., ...)``), each checked against R's ``survival`` package on
  ``lung``, ``veteran`` and ``heart`` (``tests/test_r_survival.py``):

  - :func:`km_estimate`: Kaplan-Meier curves with Greenwood standard errors and pointwise
    intervals of type ``"log"`` (R's ``survfit`` default, and ours), ``"log-log"`` or
    ``"plain"``, one row per distinct time, as ``summary(survfit(...), censored = TRUE)``;
  - :func:`km_median`: median survival with its interval, by R's convention
    (``print.survfit``);
  - :func:`logrank_test`: the log-rank test of two or more groups, as ``survdiff``;
  - :func:`cox_ph`: Cox proportional hazards with counting-process ``(start, stop]`` rows,
    Efron or Breslow ties and strata, fitted by Newton-Raphson with step-halving as ``coxph``.

* **Dropout from the program** built on them. Time is counted in weeks since enrolment (week *w*
  covers days ``7w`` to ``7w + 6``). A dropout's event time is its ``dropout_week`` (the first
  week it was no longer in the program, see :func:`ptanalytics.patient_summary`); every other
  patient is censored at ``weeks_planned``. :func:`kaplan_meier` (landmark analysis by early
  adherence), :func:`dropout_intervals` and :func:`cox_dropout` (time-varying pain).

Everything about dropout is an association: neither adherence nor pain was randomised, and in the
simulator as in life patients whose pain does not improve are more likely to stop.

.. code-block:: python

    import ptanalytics as pt
    from ptanalytics.models.survival import (
        cox_dropout, cox_ph, early_adherence_band, kaplan_meier, km_estimate, km_median,
        logrank_test, plot_kaplan_meier,
    )

    cohort = pt.simulate_cohort(2000, seed=1)
    weeks, summary = pt.patient_weeks(cohort), pt.patient_summary(cohort)
    early = summary.merge(early_adherence_band(weeks), on="patient_id")
    km = kaplan_meier(early, by="early_band", landmark_week=4)
    fig = plot_kaplan_meier(km)
    cox_dropout(weeks, summary)

    # any data: R's survival::lung exported to CSV (status 2 = dead)
    lung = pd.read_csv("lung.csv").assign(dead=lambda d: d["status"] == 2)
    km_estimate(lung, time="time", event="dead", by="sex")
    km_median(lung, time="time", event="dead", by="sex")
    logrank_test(lung, time="time", event="dead", group="sex")
    cox_ph(lung, time="time", event="dead", covariates=["age", "sex", "ph.ecog"]).table
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ptanalytics._checks import check_alpha as _check_alpha
from ptanalytics.cohort.catalogue import CATEGORIES
from ptanalytics.exceptions import ConfigError
from ptanalytics.vocab import ATTENDANCE_BANDS, ATTENDANCE_CUTS, SHARE_COLUMNS

__all__ = [
    "CONF_TYPES",
    "CoxResult",
    "category_emphasis",
    "cox_dropout",
    "cox_ph",
    "dropout_intervals",
    "early_adherence_band",
    "kaplan_meier",
    "km_estimate",
    "km_median",
    "logrank_test",
    "plot_kaplan_meier",
]

#: Pointwise interval types of :func:`km_estimate`; the first is the default (R's ``survfit``).
CONF_TYPES = ("log", "log-log", "plain")
KM_COLUMNS = [
    "group",
    "week",
    "n_at_risk",
    "events",
    "censored",
    "survival",
    "std_error",
    "ci_low",
    "ci_high",
]
_SHARES = list(SHARE_COLUMNS)
# R's tolerance for "the curve is at exactly 0.5" (print.survfit: .Machine$double.eps^0.5).
_MEDIAN_TOL = np.sqrt(np.finfo(float).eps)


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


def _check_conf_type(conf_type) -> str:
    if conf_type not in CONF_TYPES:
        raise ConfigError(
            f"conf_type={conf_type!r}; allowed: one of {list(CONF_TYPES)} (R's survfit default "
            "is 'log')."
        )
    return conf_type


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


def _check_data(data) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise ConfigError(
            f"data is a {type(data).__name__}; allowed: a pandas DataFrame with one row per "
            "subject (or per (start, stop] interval)."
        )
    return data


def _column(data: pd.DataFrame, name, role: str) -> pd.Series:
    if not isinstance(name, str) or name not in data.columns:
        raise ConfigError(
            f"{role}={name!r} is not a column of data; allowed: one of "
            f"{sorted(map(str, data.columns))}."
        )
    return data[name]


def _numeric(col: pd.Series, role: str) -> np.ndarray:
    """A numeric column as float (missing as NaN), or a ConfigError naming it."""
    if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
        raise ConfigError(
            f"{role}={col.name!r} has dtype {col.dtype}; allowed: a numeric column (times in one "
            "unit, e.g. days or weeks)."
        )
    values = pd.to_numeric(col).astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    if np.isinf(values).any():
        raise ConfigError(f"{role}={col.name!r} has infinite values; allowed: finite times.")
    return values


def _event(col: pd.Series) -> np.ndarray:
    """0/1 or boolean event indicator as float (missing as NaN)."""
    if pd.api.types.is_bool_dtype(col):
        return col.astype("boolean").astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    present = col.dropna()
    if col.dtype == object and present.map(lambda v: isinstance(v, bool | int | float)).all():
        col = pd.to_numeric(col.astype("float64"))  # e.g. 0/1 mixed with True/False
    if pd.api.types.is_numeric_dtype(col):
        values = pd.to_numeric(col).astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        seen = np.unique(values[~np.isnan(values)])
        if np.isin(seen, [0.0, 1.0]).all():
            return values
        bad = [float(v) for v in seen[~np.isin(seen, [0.0, 1.0])][:5]]
    else:
        bad = [str(v) for v in pd.unique(col.dropna())[:5]]
    raise ConfigError(
        f"event={col.name!r} has values {bad}; allowed: 1/True for an event and 0/False for "
        "censored (recode first, e.g. R's lung status: event = data['status'] == 2)."
    )


def _groups(col: pd.Series) -> list:
    """Levels in order: a Categorical's categories (those present), else sorted values."""
    present = col.dropna()
    if isinstance(col.dtype, pd.CategoricalDtype):
        return [c for c in col.cat.categories if (present == c).any()]
    values = pd.unique(present.to_numpy())
    return sorted(values, key=lambda v: (str(type(v)), v))


def _time_event(data, time, event, by=None, by_role="by"):
    """Validated (time, event, group values, group levels) of the complete rows."""
    data = _check_data(data)
    t = _numeric(_column(data, time, "time"), "time")
    e = _event(_column(data, event, "event"))
    keep = ~np.isnan(t) & ~np.isnan(e)
    if by is None:
        g = np.full(len(data), "all", dtype=object)
        levels = ["all"]
    else:
        col = _column(data, by, by_role)
        keep &= col.notna().to_numpy()
        levels = _groups(col[keep])
        g = col.to_numpy(dtype=object)
    return t[keep], e[keep].astype(np.int64), g[keep], levels


# ------------------------------------------------------------------------------------ Kaplan-Meier
def _km_arrays(time: np.ndarray, event: np.ndarray, conf_type: str, alpha: float) -> dict:
    """One group's Kaplan-Meier estimate at each distinct time (R's survfit conventions)."""
    utimes, inverse = np.unique(time, return_inverse=True)
    events = np.bincount(inverse, weights=event, minlength=len(utimes)).astype(np.int64)
    total = np.bincount(inverse, minlength=len(utimes)).astype(np.int64)
    at_risk = len(time) - np.concatenate([[0], np.cumsum(total)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - events / at_risk)
        # Greenwood: var(log S) = sum d / (n (n - d)); infinite once everybody has had the event.
        terms = np.where(events > 0, events / (at_risk * (at_risk - events)), 0.0)
        se_log = np.sqrt(np.cumsum(terms))
        std_error = np.where(surv > 0, surv * se_log, np.nan)
        low, high = _km_interval(surv, se_log, conf_type, alpha)
    return {
        "time": utimes,
        "n_at_risk": at_risk,
        "events": events,
        "censored": total - events,
        "survival": surv,
        "std_error": std_error,
        "ci_low": low,
        "ci_high": high,
    }


def _km_interval(surv, se_log, conf_type: str, alpha: float):
    """R's ``survfit_confint`` (``conf.lower = "usual"``) from the SE of the log survival.

    The only difference: with ``"log-log"`` R gives no interval while the survival is 1 (before
    the first event, where the SE is 0); we give [1, 1] there, as the other two types do.
    """
    z = stats.norm.ppf(1 - alpha / 2)
    zero = surv <= 0
    if conf_type == "plain":
        half = z * se_log * surv
        low, high = np.maximum(surv - half, 0.0), np.minimum(surv + half, 1.0)
    elif conf_type == "log":
        s = np.where(zero, np.nan, surv)
        low, high = s * np.exp(-z * se_log), np.minimum(s * np.exp(z * se_log), 1.0)
    else:  # log-log
        one = surv >= 1
        s = np.where(zero | one, np.nan, surv)
        w = z * se_log / np.log(s)
        low, high = np.exp(-np.exp(np.log(-np.log(s)) - w)), np.exp(-np.exp(np.log(-np.log(s)) + w))
        low, high = np.where(one, 1.0, low), np.where(one, 1.0, high)
    low = np.where(zero, np.nan, low)
    high = np.where(zero, np.nan, high)
    return low, high


def km_estimate(
    data: pd.DataFrame,
    *,
    time: str,
    event: str,
    by: str | None = None,
    conf_type: str = "log",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Kaplan-Meier estimate of survival, one row per group and distinct time.

    The same numbers as R's ``summary(survfit(Surv(time, event) ~ by, conf.type = ...),
    censored = TRUE)``: the product-limit estimate, Greenwood's standard error and a pointwise
    interval. The default interval type is ``"log"``, R's ``survfit`` default (a symmetric
    interval for log S, upper end capped at 1); ``"log-log"`` (the default of Stata and SAS) and
    ``"plain"`` (S +- z SE, clipped to [0, 1]) are the others.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject; not modified. Rows with a missing time, event or ``by`` are left
        out (R's ``na.omit``).
    time : str
        Column of follow-up times: any real numbers in one unit (not rounded).
    event : str
        Column of event indicators: 1/True for an event, 0/False for censored.
    by : str, optional
        Column to estimate one curve per value of, in the order of a Categorical's categories,
        else sorted. Without it, one curve (group ``"all"``).
    conf_type : {"log", "log-log", "plain"}
        Interval type (R's ``conf.type``).
    alpha : float
        1 - confidence level (R's ``conf.int = 1 - alpha``).

    Returns
    -------
    pandas.DataFrame
        One row per group and distinct time (event or censoring), sorted by group then time.
        Columns:

        - ``group`` (str): the ``by`` value, or ``"all"``.
        - ``time`` (float): the distinct time.
        - ``n_at_risk`` (int): subjects with time >= ``time`` (R's ``n.risk``).
        - ``events``, ``censored`` (int): events and censorings at ``time``.
        - ``survival`` (float): the estimate just after ``time``.
        - ``std_error`` (float): Greenwood's standard error of ``survival`` (R's ``std.err`` of
          ``summary.survfit``); missing once the survival is 0.
        - ``ci_low``, ``ci_high`` (float): the pointwise ``1 - alpha`` interval; missing once the
          survival is 0 (as R).

        ``attrs`` holds ``by``, ``conf_type`` and ``alpha``.

    Raises
    ------
    ConfigError
        When ``data`` is not a DataFrame, a column is missing, ``time`` is not numeric,
        ``event`` is not 0/1, or ``conf_type`` or ``alpha`` is not allowed.
    """
    conf_type, alpha = _check_conf_type(conf_type), _check_alpha(alpha)
    t, e, g, levels = _time_event(data, time, event, by)
    blocks = []
    for level in levels:
        m = g == level
        block = pd.DataFrame(_km_arrays(t[m], e[m], conf_type, alpha))
        block.insert(0, "group", str(level))
        blocks.append(block)
    columns = ["group", "time", *KM_COLUMNS[2:]]
    out = (
        pd.concat(blocks, ignore_index=True)
        if blocks
        else pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    )
    out["group"] = out["group"].astype("str")
    out.attrs = {"by": by, "conf_type": conf_type, "alpha": alpha}
    return out[columns]


def _first_below_half(values: np.ndarray, times: np.ndarray) -> float:
    """R's ``print.survfit`` rule (``survmean``'s ``minmin``) for where a curve reaches 0.5.

    The first time the curve is <= 0.5; when it is at exactly 0.5 there (within sqrt(machine
    eps)) and drops below later, the midpoint of that time and the time of the drop.
    """
    keep = ~np.isnan(values) & (values < 0.5 + _MEDIAN_TOL)
    if not keep.any():
        return float("nan")
    y, x = values[keep], times[keep]
    lower = np.flatnonzero(y < y[0])
    if abs(y[0] - 0.5) < _MEDIAN_TOL and len(lower):
        return float((x[0] + x[lower[0]]) / 2)
    return float(x[0])


def km_median(
    data: pd.DataFrame,
    *,
    time: str,
    event: str,
    by: str | None = None,
    conf_type: str = "log",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Median survival time with its interval, per group, by R's convention.

    As ``print(survfit(...))`` (the ``median``, ``0.95LCL`` and ``0.95UCL`` columns of
    ``summary(fit)$table``): the median is the first time the Kaplan-Meier curve is at or below
    0.5, except that where the curve is flat at exactly 0.5 it is the midpoint between the time
    it reached 0.5 and the time it drops below. The interval ends are the same rule applied to
    the lower and upper pointwise confidence curves (Brookmeyer-Crowley style inversion), so they
    depend on ``conf_type``. A median or end is missing when its curve never reaches 0.5.

    R's ``quantile.survfit`` agrees except when a curve ends flat at exactly 0.5: it then takes
    the midpoint with the last time, where ``print.survfit`` (and this function) takes the time
    the curve reached 0.5.

    Parameters
    ----------
    data, time, event, by, conf_type, alpha
        As :func:`km_estimate`.

    Returns
    -------
    pandas.DataFrame
        One row per group. Columns:

        - ``group`` (str).
        - ``n`` (int): subjects; ``events`` (int): events.
        - ``median`` (float): median survival time (missing if the curve stays above 0.5).
        - ``ci_low``, ``ci_high`` (float): its ``1 - alpha`` interval.

    Raises
    ------
    ConfigError
        As :func:`km_estimate`.
    """
    km = km_estimate(data, time=time, event=event, by=by, conf_type=conf_type, alpha=alpha)
    rows = []
    for name, g in km.groupby("group", sort=False):
        x = g["time"].to_numpy(dtype=float)
        rows.append(
            {
                "group": name,
                "n": int(g["n_at_risk"].iloc[0]),
                "events": int(g["events"].sum()),
                "median": _first_below_half(g["survival"].to_numpy(dtype=float), x),
                "ci_low": _first_below_half(g["ci_low"].to_numpy(dtype=float), x),
                "ci_high": _first_below_half(g["ci_high"].to_numpy(dtype=float), x),
            }
        )
    columns = ["group", "n", "events", "median", "ci_low", "ci_high"]
    out = pd.DataFrame(rows, columns=columns)
    out.attrs = dict(km.attrs)
    return out


# ------------------------------------------------------------------------------------ log-rank
def _logrank_arrays(time, event, g, levels):
    """Observed, expected and the variance matrix of the log-rank test (survdiff, rho = 0)."""
    codes = np.asarray([levels.index(v) for v in g]) if len(g) else np.zeros(0, dtype=int)
    k = len(levels)
    etimes = np.unique(time[event == 1])
    # n_at_risk[t, group] and deaths[t, group] at each event time.
    order = np.argsort(time, kind="stable")
    ts, cs, es = time[order], codes[order], event[order]
    risk = np.zeros((len(etimes), k))
    deaths = np.zeros((len(etimes), k))
    for j in range(k):
        tj = ts[cs == j]
        risk[:, j] = len(tj) - np.searchsorted(tj, etimes, side="left")
        dj = ts[(cs == j) & (es == 1)]
        deaths[:, j] = np.searchsorted(dj, etimes, side="right") - np.searchsorted(
            dj, etimes, side="left"
        )
    n = risk.sum(axis=1)
    d = deaths.sum(axis=1)
    observed = deaths.sum(axis=0)
    expected = (risk * (d / n)[:, None]).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(n > 1, d * (n - d) / (n * (n - 1)), 0.0)
    var = np.einsum("t,tj,tk->jk", factor, risk, -risk / n[:, None])
    var[np.diag_indices(k)] += (factor[:, None] * risk).sum(axis=0)
    counts = np.bincount(codes, minlength=k)
    return counts, observed, expected, var


def logrank_test(data: pd.DataFrame, *, time: str, event: str, group: str) -> pd.DataFrame:
    """Log-rank test of equal survival in two or more groups, as R's ``survdiff``.

    The statistic is ``(O - E)' V^- (O - E)`` on all groups but the first (R's ``survdiff``,
    ``rho = 0``), with ``df`` = groups with a positive expected count - 1 and ``p`` from the
    upper tail of the chi-square distribution (exact for small p, not floored at 1e-16).

    Parameters
    ----------
    data, time, event
        As :func:`km_estimate`.
    group : str
        Column with the groups (order as ``by`` of :func:`km_estimate`; rows with a missing
        group are left out).

    Returns
    -------
    pandas.DataFrame
        One row per group. Columns:

        - ``group`` (str).
        - ``n`` (int): subjects; ``observed`` (int): events.
        - ``expected`` (float): expected events under equal hazards.
        - ``oe2_e``, ``oe2_v`` (float): ``(O - E)^2 / E`` and ``(O - E)^2 / V`` (as printed by
          ``survdiff``).
        - ``chisq`` (float), ``df`` (int), ``p_value`` (float): the test, the same on every row.

    Raises
    ------
    ConfigError
        As :func:`km_estimate`, and when there are fewer than two groups or no event.
    """
    t, e, g, levels = _time_event(data, time, event, group, by_role="group")
    if len(levels) < 2:
        raise ConfigError(
            f"group={group!r} has {len(levels)} group(s) {list(map(str, levels))} among the "
            "complete rows; allowed: a column with at least two groups."
        )
    if e.sum() == 0:
        raise ConfigError(f"event={event!r} has no event; the log-rank test needs at least one.")
    counts, observed, expected, var = _logrank_arrays(t, e, g, levels)
    use = expected > 0
    diff = (observed - expected)[use][1:]
    vv = var[np.ix_(use, use)][1:, 1:]
    chisq = float(diff @ np.linalg.solve(vv, diff)) if use.sum() >= 2 else 0.0
    df = int(use.sum()) - 1
    p = float(stats.chi2.sf(chisq, df)) if df > 0 else float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        oe2_e = (observed - expected) ** 2 / expected
        oe2_v = (observed - expected) ** 2 / np.diag(var)
    return pd.DataFrame(
        {
            "group": [str(v) for v in levels],
            "n": counts.astype(np.int64),
            "observed": observed.astype(np.int64),
            "expected": expected,
            "oe2_e": oe2_e,
            "oe2_v": oe2_v,
            "chisq": chisq,
            "df": df,
            "p_value": p,
        }
    )


# ------------------------------------------------------------------------------------ Cox
TIES = ("efron", "breslow")


def _design_matrix(data: pd.DataFrame, covariates: list[str]) -> pd.DataFrame:
    """Numeric design, treatment coding: numbers and booleans as they are; a Categorical's
    categories in their order (the first present is the reference), other values sorted."""
    cols = {}
    for name in covariates:
        col = data[name]
        if pd.api.types.is_bool_dtype(col) or (
            pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype)
        ):
            values = pd.to_numeric(col).astype("Float64").to_numpy(dtype=float, na_value=np.nan)
            if np.isinf(values).any():
                raise ConfigError(
                    f"covariate {name!r} has infinite values; allowed: finite numbers."
                )
            cols[name] = values
            continue
        is_text = pd.api.types.is_string_dtype(col) or col.dtype == object
        if not isinstance(col.dtype, pd.CategoricalDtype) and not is_text:
            raise ConfigError(
                f"covariate {name!r} has dtype {col.dtype}; allowed: numeric, boolean, "
                "categorical or text (treatment-coded) columns."
            )
        if is_text and not col.dropna().map(lambda v: isinstance(v, str)).all():
            raise ConfigError(
                f"covariate {name!r} mixes text with other values; allowed: a numeric column, or "
                "a categorical/text column (convert it, e.g. data[col].astype('category'))."
            )
        levels = _groups(col)
        missing = col.isna().to_numpy()
        values = col.to_numpy(dtype=object)
        for level in levels[1:]:
            dummy = (values == level).astype(float)
            dummy[missing] = np.nan
            cols[f"{name}[T.{level}]"] = dummy
        if len(levels) == 1:
            cols[f"{name}[T.{levels[0]}]"] = np.where(missing, np.nan, 0.0)
    return pd.DataFrame(cols, index=data.index)


@dataclass
class CoxResult:
    """A fitted Cox proportional-hazards model (:func:`cox_ph`).

    Attributes
    ----------
    table : DataFrame
        One row per model term. Columns: ``term`` (str; a level of a categorical covariate as
        ``name[T.level]``), ``estimate`` (hazard ratio, R's ``exp(coef)``), ``coef`` (log hazard
        ratio), ``std_error`` (of ``coef``, R's ``se(coef)``), ``statistic`` (Wald z),
        ``ci_low``, ``ci_high`` (``1 - alpha`` Wald interval of the hazard ratio), ``p_value``
        (Wald test).
    coef : Series
        Log hazard ratios by term.
    cov : DataFrame
        Their covariance matrix (inverse information, R's ``vcov``).
    loglik : float
        Log partial likelihood at the estimate (R's ``fit$loglik[2]``).
    loglik_null : float
        At all coefficients 0 (R's ``fit$loglik[1]``).
    lr_chisq, lr_df, lr_p_value : float, int, float
        Likelihood-ratio test of all coefficients 0 (R's ``summary(fit)$logtest``).
    wald_chisq, score_chisq : float
        Wald and score (log-rank) tests of the same hypothesis, ``lr_df`` degrees of freedom.
    n, n_events : int
        Rows used and events among them; ``n_dropped``: rows left out for a missing value.
    ties : str
        ``"efron"`` or ``"breslow"``.
    converged : bool
        Newton-Raphson met R's criterion ``|1 - loglik_old / loglik_new| <= eps`` within
        ``max_iter`` iterations.
    iterations : int
    notes : list of str
        Plain-language messages (rows dropped, non-convergence, infinite coefficients).
    """

    table: pd.DataFrame
    coef: pd.Series
    cov: pd.DataFrame
    loglik: float
    loglik_null: float
    lr_chisq: float
    lr_df: int
    lr_p_value: float
    wald_chisq: float
    score_chisq: float
    n: int
    n_events: int
    n_dropped: int
    ties: str
    converged: bool
    iterations: int
    notes: list[str] = field(default_factory=list)


class _CoxData:
    """Sorted arrays of one fit: per stratum, the event times and the risk-set bookkeeping."""

    def __init__(self, start, stop, event, x, strata, ties):
        self.x = x
        self.blocks = []
        for s in np.unique(strata):
            rows = np.flatnonzero(strata == s)
            st, sp, ev, xb = start[rows], stop[rows], event[rows], x[rows]
            etimes, dcount = np.unique(sp[ev == 1], return_counts=True)
            if len(etimes) == 0:
                continue
            by_stop = np.argsort(sp, kind="stable")
            by_start = np.argsort(st, kind="stable")
            # Rows at risk at t: stop >= t minus start >= t, i.e. start < t <= stop.
            i_stop = np.searchsorted(sp[by_stop], etimes, side="left")
            i_start = np.searchsorted(st[by_start], etimes, side="left")
            deaths = np.flatnonzero(ev == 1)
            d_time = np.searchsorted(etimes, sp[deaths])
            order = np.argsort(d_time, kind="stable")
            deaths, d_time = deaths[order], d_time[order]
            # Efron: the k-th of d tied deaths (k = 0 .. d - 1) keeps (d - k)/d of the dead's
            # risk in the denominator; Breslow keeps all of it.
            first = np.concatenate([[0], np.cumsum(dcount)[:-1]])
            k = np.arange(len(deaths)) - np.repeat(first, dcount)
            frac = k / np.repeat(dcount, dcount) if ties == "efron" else np.zeros(len(deaths))
            xx = xb[:, :, None] * xb[:, None, :]
            self.blocks.append(
                (
                    xb,
                    xx,
                    by_stop,
                    by_start,
                    i_stop,
                    i_start,
                    deaths,
                    d_time,
                    len(etimes),
                    frac,
                )
            )

    @staticmethod
    def _risk_sums(a, by_stop, by_start, i_stop, i_start):
        """Sum of ``a`` over the rows at risk at each event time."""
        pad = np.zeros((1, *a.shape[1:]))
        suffix_stop = np.concatenate([np.cumsum(a[by_stop][::-1], axis=0)[::-1], pad])
        suffix_start = np.concatenate([np.cumsum(a[by_start][::-1], axis=0)[::-1], pad])
        return suffix_stop[i_stop] - suffix_start[i_start]

    def evaluate(self, beta: np.ndarray):
        """Log partial likelihood, score and information at ``beta``."""
        p = self.x.shape[1]
        loglik, score, info = 0.0, np.zeros(p), np.zeros((p, p))
        for (
            xb,
            xx,
            by_stop,
            by_start,
            i_stop,
            i_start,
            deaths,
            d_time,
            nt,
            frac,
        ) in self.blocks:
            eta = xb @ beta
            eta = eta - eta.max()  # the partial likelihood does not change; exp cannot overflow
            r = np.exp(eta)
            s = []
            for a in (r, r[:, None] * xb, r[:, None, None] * xx):
                at_risk = self._risk_sums(a, by_stop, by_start, i_stop, i_start)
                dead = np.zeros((nt, *a.shape[1:]))
                np.add.at(dead, d_time, a[deaths])
                tail = (slice(None),) + (None,) * (a.ndim - 1)
                s.append(at_risk[d_time] - frac[tail] * dead[d_time])
            s0, s1, s2 = s
            with np.errstate(divide="ignore", invalid="ignore"):
                mean = s1 / s0[:, None]
                loglik += float(eta[deaths].sum() - np.log(s0).sum())
                score += xb[deaths].sum(axis=0) - mean.sum(axis=0)
                info += (s2 / s0[:, None, None]).sum(axis=0) - mean.T @ mean
        return loglik, score, info


def _solve(info: np.ndarray, score: np.ndarray):
    """``info^-1 score`` by Cholesky, or None when ``info`` is not positive definite."""
    try:
        chol = np.linalg.cholesky(info)
    except np.linalg.LinAlgError:
        return None
    y = np.linalg.solve(chol, score)
    return np.linalg.solve(chol.T, y)


def _newton(model: _CoxData, p: int, max_iter: int, eps: float):
    """coxph's Newton-Raphson (agfit4/coxfit6): start at 0, step-halving when the log partial
    likelihood gets worse, stop when ``|1 - loglik_old / loglik_new| <= eps``."""
    beta = np.zeros(p)
    loglik0, score, info = model.evaluate(beta)
    step = _solve(info, score)
    if step is None:
        return beta, loglik0, loglik0, info, 0.0, False, 0, score
    score_test = float(score @ step)
    best, old = loglik0, beta.copy()
    beta = beta + step
    halving = 0
    loglik = loglik0
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):
        loglik, score, info = model.evaluate(beta)
        fail = not np.isfinite(loglik) or not np.isfinite(info).all()
        step = None if fail else _solve(info, score)
        fail = fail or step is None
        if not fail and halving == 0 and abs(1 - best / loglik) <= eps:
            converged = True
            break
        if iterations == max_iter:
            if fail or loglik < best:
                beta = old
                loglik, score, info = model.evaluate(beta)
            break
        if fail or loglik < best:
            halving += 1
            beta = (old * halving + beta) / (halving + 1.0)
        else:
            halving = 0
            best = loglik
            old = beta.copy()
            beta = beta + step
    return beta, loglik, loglik0, info, score_test, converged, iterations, score


def _check_covariate_list(covariates, data: pd.DataFrame, reserved: list[str]) -> list[str]:
    if isinstance(covariates, str):
        covariates = [covariates]
    try:
        covariates = list(covariates)
    except TypeError:
        covariates = [covariates]
    bad = [c for c in covariates if not isinstance(c, str) or c not in data.columns]
    if not covariates or bad or len(set(covariates)) != len(covariates):
        why = bad or ("none given" if not covariates else "duplicates")
        raise ConfigError(
            f"covariates={tuple(covariates)!r}: {why} not usable; allowed: one or more distinct "
            f"columns of data, e.g. {sorted(map(str, data.columns))[:8]}."
        )
    clash = [c for c in covariates if c in reserved]
    if clash:
        raise ConfigError(
            f"covariates={tuple(covariates)!r} include {clash}, the time/event/strata "
            "column(s); allowed: other columns."
        )
    return covariates


def _check_design(x: pd.DataFrame) -> None:
    """A clear error for a constant or collinear design column (R would give NA)."""
    values = x.to_numpy(dtype=float)
    for j, name in enumerate(x.columns):
        if np.ptp(values[:, j]) == 0:
            raise ConfigError(
                f"covariate {name!r} is constant ({values[0, j]:g}) in the rows used; its hazard "
                "ratio is not estimable: drop it (or check the filtering)."
            )
    centred = values - values.mean(axis=0)
    rank = 0
    for j, name in enumerate(x.columns):
        new = np.linalg.matrix_rank(centred[:, : j + 1])
        if new == rank:
            raise ConfigError(
                f"covariate {name!r} is a linear combination of {list(x.columns[:j])} in the rows "
                "used; its hazard ratio is not estimable: drop one of them."
            )
        rank = new


def cox_ph(
    data: pd.DataFrame,
    *,
    time: str,
    event: str,
    covariates,
    start: str | None = None,
    ties: str = "efron",
    strata: str | None = None,
    alpha: float = 0.05,
    max_iter: int = 20,
    eps: float = 1e-9,
) -> CoxResult:
    """Cox proportional-hazards regression, as R's ``coxph``.

    With ``start``, each row is a counting-process interval ``(start, time]``: it is at risk at
    times ``t`` with ``start < t <= time`` (R's ``Surv(start, stop, event)``), so back-to-back
    intervals of one subject count it once. Ties are handled by Efron's approximation (R's
    default) or Breslow's. ``strata`` gives each stratum its own baseline hazard
    (``+ strata(s)``). Fitted by Newton-Raphson on the log partial likelihood from all
    coefficients 0, with step-halving and R's convergence rule
    (``|1 - loglik_old / loglik_new| <= eps``, ``coxph.control(eps = 1e-9, iter.max = 20)``),
    so the estimate is R's to near machine precision. Standard errors are model-based
    (inverse information); robust (``cluster``) standard errors are not computed. R's
    ``timefix`` (merging times that differ by rounding error) is not applied: pass times that
    are equal when they should be.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject, or per interval with ``start``; not modified. Rows with a missing
        time, event, strata or covariate are left out (R's ``na.omit``; counted in
        ``n_dropped`` and ``notes``).
    time : str
        Column of (stop) times, numeric.
    event : str
        Column of event indicators: 1/True for an event at ``time``, 0/False for censored.
    covariates : sequence of str
        Columns of ``data``. Numeric and boolean columns enter as they are. A Categorical is
        treatment-coded against its first category present in the data (reorder its
        categories to choose the reference, as R's ``relevel``), text columns against their
        first value in sorted order (as R's ``factor``); a level ``b`` of column ``x`` is the
        term ``x[T.b]``.
    start : str, optional
        Column of interval start times (counting-process data); each must be < its ``time``.
    ties : {"efron", "breslow"}
    strata : str, optional
        Column whose values define strata.
    alpha : float
        1 - confidence level of the intervals.
    max_iter : int
        Newton-Raphson iterations at most (R's ``iter.max``).
    eps : float
        Convergence tolerance (R's ``eps``).

    Returns
    -------
    CoxResult
        ``table`` (the tidy table: ``term``, ``estimate`` [hazard ratio], ``coef``,
        ``std_error``, ``statistic``, ``ci_low``, ``ci_high``, ``p_value``), the log partial
        likelihoods, the likelihood-ratio, Wald and score tests, ``n``, ``n_events``,
        convergence and ``notes``; see :class:`CoxResult`.

    Raises
    ------
    ConfigError
        When ``data`` is not a DataFrame; a column is missing; a time is not numeric; the event
        is not 0/1; a start is not before its stop; a covariate is text mixed with numbers, or
        constant, or collinear with others; there is no event among the complete rows; or
        ``ties``, ``alpha``, ``max_iter`` or ``eps`` is not allowed.
    """
    data = _check_data(data)
    alpha = _check_alpha(alpha)
    if ties not in TIES:
        raise ConfigError(f"ties={ties!r}; allowed: one of {list(TIES)} (R's default 'efron').")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 1:
        raise ConfigError(f"max_iter={max_iter!r}; allowed: a whole number >= 1 (R uses 20).")
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < 1:
        raise ConfigError(f"eps={eps!r}; allowed: a number in (0, 1) (R uses 1e-9).")
    stop = _numeric(_column(data, time, "time"), "time")
    ev = _event(_column(data, event, "event"))
    st = (
        np.full(len(data), -np.inf)
        if start is None
        else _numeric(_column(data, start, "start"), "start")
    )
    reserved = [c for c in (time, event, start, strata) if c is not None]
    covariates = _check_covariate_list(covariates, data, reserved)
    x = _design_matrix(data, covariates)
    ok = ~np.isnan(stop) & ~np.isnan(ev) & ~np.isnan(st) & x.notna().all(axis=1).to_numpy()
    if strata is not None:
        ok &= _column(data, strata, "strata").notna().to_numpy()
    bad = ok & ~(st < stop)
    if bad.any():
        first = data.index[np.flatnonzero(bad)[0]]
        raise ConfigError(
            f"start={start!r} is not before time={time!r} in {int(bad.sum())} row(s) (first: "
            f"index {first!r}, start {st[bad][0]:g}, time {stop[bad][0]:g}); allowed: "
            "start < time in every row, intervals (start, time]."
        )
    n_dropped = int((~ok).sum())
    n_events = int(ev[ok].sum())
    if n_events == 0:
        raise ConfigError(
            f"event={event!r} has no event among the {int(ok.sum())} complete row(s); a Cox "
            "model needs at least one."
        )
    x = x[ok]
    _check_design(x)
    values = x.to_numpy(dtype=float)
    centred = values - values.mean(axis=0)
    strata_codes = (
        np.zeros(int(ok.sum()), dtype=np.int64)
        if strata is None
        else pd.factorize(data[strata][ok])[0]
    )
    model = _CoxData(st[ok], stop[ok], ev[ok].astype(np.int64), centred, strata_codes, ties)
    p = values.shape[1]
    beta, loglik, loglik0, info, score_test, converged, iterations, score = _newton(
        model, p, int(max_iter), float(eps)
    )
    names = list(x.columns)
    notes = []
    if n_dropped:
        notes.append(f"{n_dropped} row(s) with a missing value were left out.")
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = np.full((p, p), np.nan)
    if not converged:
        notes.append(
            f"Newton-Raphson did not converge in {iterations} iteration(s) (max_iter={max_iter}); "
            "the estimates are the last good ones and may be unreliable."
        )
    # R's check (coxph.fit): a coefficient whose Newton step would still be large relative to
    # itself after the log-likelihood converged is drifting to infinity (monotone likelihood).
    drift = np.abs(score @ cov)
    infinite = ~np.isfinite(score) | ((drift > eps) & (drift > np.sqrt(eps) * np.abs(beta)))
    for name in np.asarray(names)[infinite]:
        notes.append(
            f"the log-likelihood converged before {name!r}: its coefficient may be infinite "
            "(e.g. no events in one of its groups); do not read its hazard ratio or interval."
        )
    se = np.sqrt(np.diag(cov))
    z = stats.norm.ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        statistic = beta / se
        table = pd.DataFrame(
            {
                "term": names,
                "estimate": np.exp(beta),
                "coef": beta,
                "std_error": se,
                "statistic": statistic,
                "ci_low": np.exp(beta - z * se),
                "ci_high": np.exp(beta + z * se),
                "p_value": 2 * stats.norm.sf(np.abs(statistic)),
            }
        )
        wald = float(beta @ np.linalg.solve(cov, beta)) if np.isfinite(cov).all() else np.nan
    lr = 2 * (loglik - loglik0)
    return CoxResult(
        table=table,
        coef=pd.Series(beta, index=names),
        cov=pd.DataFrame(cov, index=names, columns=names),
        loglik=float(loglik),
        loglik_null=float(loglik0),
        lr_chisq=float(lr),
        lr_df=p,
        lr_p_value=float(stats.chi2.sf(lr, p)),
        wald_chisq=wald,
        score_chisq=score_test,
        n=int(ok.sum()),
        n_events=n_events,
        n_dropped=n_dropped,
        ties=ties,
        converged=converged,
        iterations=int(iterations),
        notes=notes,
    )


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
    by: str | None = None,
    landmark_week: int | None = None,
    conf_type: str = "log",
    alpha: float = 0.05,
) -> pd.DataFrame:
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
    by : str, optional
        Column of ``summary`` to estimate one curve per value of (patients with a missing value
        are left out). Without it, one curve for everybody (group ``"all"``).
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
    pandas.DataFrame
        One block per group (in the order of the ``by`` categories, else sorted), each starting
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

        ``attrs`` holds ``by``, ``landmark_week``, ``conf_type``, ``alpha`` and, with ``by``,
        ``logrank_p``.

    Raises
    ------
    ConfigError
        When a needed column is missing, ``by`` is not a column, or ``landmark_week``,
        ``conf_type`` or ``alpha`` is out of range.
    """
    alpha, conf_type = _check_alpha(alpha), _check_conf_type(conf_type)
    landmark_week = _check_landmark(landmark_week, allow_none=True)
    time, status = _time_status(summary)
    if by is not None:
        if not isinstance(by, str) or by not in summary.columns:
            raise ConfigError(
                f"by={by!r} is not a column of summary; allowed: None or one of "
                f"{sorted(map(str, summary.columns))}."
            )
        values = summary[by].reset_index(drop=True)
    else:
        values = pd.Series("all", index=range(len(summary)), dtype="str")
    keep = np.ones(len(summary), dtype=bool)
    if landmark_week is not None:
        keep = time >= landmark_week
        time = time - landmark_week
    frame = pd.DataFrame({"time": time, "event": status, "group": values})[keep]
    km = km_estimate(
        frame, time="time", event="event", by="group", conf_type=conf_type, alpha=alpha
    )
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
    km = (
        pd.concat(blocks, ignore_index=True)
        if blocks
        else pd.DataFrame({c: pd.Series(dtype=float) for c in ["group", "time", *KM_COLUMNS[2:]]})
    )
    km = km.rename(columns={"time": "week"})[KM_COLUMNS]
    km["group"] = km["group"].astype("str")
    km["week"] = km["week"].astype(float)
    for col in ("n_at_risk", "events", "censored"):
        km[col] = km[col].astype(np.int64)
    km.attrs = {"by": by, "landmark_week": landmark_week, "conf_type": conf_type, "alpha": alpha}
    if by is not None:
        kept = frame.dropna(subset=["group"])
        try:
            p = float(
                logrank_test(kept, time="time", event="event", group="group")["p_value"].iloc[0]
            )
        except ConfigError:  # fewer than two groups or no dropout: no test
            p = float("nan")
        km["logrank_p"] = p
        km.attrs["logrank_p"] = p
    return km


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
_TIME_VARYING = ("maintenance",)


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
) -> pd.DataFrame:
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
    table["n_patients"] = int(complete["patient_id"].nunique())
    table["n_events"] = fit.n_events
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
