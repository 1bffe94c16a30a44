"""Survival analysis that matches R's ``survival`` package, on any DataFrame.

The estimators work seaborn/pingouin style (``fn(data, *, time=..., event=..., ...)``) and are
each checked against R's ``survival`` package on ``lung``, ``veteran`` and ``heart``
(``tests/test_r_survival.py``):

- :func:`km_estimate`: Kaplan-Meier curves with Greenwood standard errors and pointwise
  intervals of type ``"log"`` (R's ``survfit`` default, and ours), ``"log-log"`` or ``"plain"``,
  one row per distinct time, as ``summary(survfit(...), censored = TRUE)``;
- :func:`km_median`: median survival of a Kaplan-Meier estimate with its interval, by R's
  convention (``print.survfit``);
- :func:`logrank_test`: the log-rank test of two or more groups, as ``survdiff``;
- :func:`cox_ph`: Cox proportional hazards with counting-process ``(start, stop]`` rows, Efron
  or Breslow ties and strata, fitted by Newton-Raphson with step-halving as ``coxph``.

Each returns a result with ``table``, ``n``, ``notes`` and ``figure()`` (the one result protocol,
:mod:`ptanalytics.models._result`). Time to dropout from the program, built on these, is in
:mod:`ptanalytics.models.dropout`.

.. code-block:: python

    from ptanalytics.models.survival import cox_ph, km_estimate, km_median, logrank_test

    # R's survival::lung exported to CSV (status 2 = dead)
    lung = pd.read_csv("lung.csv").assign(dead=lambda d: d["status"] == 2)
    km = km_estimate(lung, time="time", event="dead", by="sex")
    km.table, km.figure()
    km_median(km).table
    logrank_test(lung, time="time", event="dead", group="sex").p_value
    cox_ph(lung, time="time", event="dead", covariates=["age", "sex", "ph.ecog"]).table
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd
import patsy
from scipy import sparse, stats

from ptanalytics._checks import check_alpha as _check_alpha
from ptanalytics._checks import check_number, check_option
from ptanalytics.exceptions import ConfigError
from ptanalytics.models._result import Estimates

__all__ = [
    "CONF_TYPES",
    "TIES",
    "CoxResult",
    "KaplanMeier",
    "LogRank",
    "SurvivalMedians",
    "cox_ph",
    "group_labels",
    "km_estimate",
    "km_median",
    "logrank_test",
]

#: Pointwise interval types of :func:`km_estimate`; the first is the default (R's ``survfit``).
CONF_TYPES = ("log", "log-log", "plain")
#: Columns of :func:`km_estimate` (after ``group``, ``time``).
KM_COLUMNS = ["n_at_risk", "events", "censored", "survival", "std_error", "ci_low", "ci_high"]
# R's tolerance for "the curve is at exactly 0.5" (print.survfit: .Machine$double.eps^0.5).
_MEDIAN_TOL = np.sqrt(np.finfo(float).eps)


# ------------------------------------------------------------------------------------ results
@dataclass
class KaplanMeier(Estimates):
    """A Kaplan-Meier estimate (:func:`km_estimate`, or time to dropout).

    ``table`` has one row per group and time (see :func:`km_estimate`; ``attrs`` holds the
    settings), ``n`` the subjects counted, ``notes`` the rows left out. ``figure()`` draws the
    curves with their bands (:func:`ptanalytics.plotting.plot_kaplan_meier`).
    """

    def figure(self, ax=None):
        """Step curves with pointwise bands (:func:`ptanalytics.plotting.plot_kaplan_meier`)."""
        from ptanalytics.plotting import plot_kaplan_meier

        return plot_kaplan_meier(self, ax=ax)


@dataclass
class SurvivalMedians(Estimates):
    """Median survival per group (:func:`km_median`); ``figure()`` draws them with intervals."""

    def figure(self, ax=None):
        """Medians and intervals (:func:`ptanalytics.plotting.plot_survival_medians`)."""
        from ptanalytics.plotting import plot_survival_medians

        return plot_survival_medians(self, ax=ax)


@dataclass
class LogRank(Estimates):
    """The log-rank test (:func:`logrank_test`): per-group ``table`` plus the test itself.

    Attributes
    ----------
    chisq : float
        The chi-square statistic; ``df`` (int) its degrees of freedom; ``p_value`` (float).
    """

    chisq: float = float("nan")
    df: int = 0
    p_value: float = float("nan")

    def figure(self, ax=None):
        """Observed and expected events (:func:`ptanalytics.plotting.plot_logrank`)."""
        from ptanalytics.plotting import plot_logrank

        return plot_logrank(self, ax=ax)


# ------------------------------------------------------------------------------------ checks
def _check_conf_type(conf_type) -> str:
    return check_option(
        "conf_type",
        conf_type,
        CONF_TYPES,
        what=f"one of {list(CONF_TYPES)} (R's survfit default is 'log')",
    )


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


def group_labels(
    data: pd.DataFrame, by, *, role: str = "by", frame: str = "data", none_allowed: bool = False
) -> pd.Series:
    """The group of each row: the ``by`` column, or the values of several joined by ", ".

    ``by`` is a column name or a list of them. With one column its values are returned as they
    are (a Categorical keeps its categories); with several, an ordered Categorical of labels
    such as ``"low, female"``, ordered by the first column's levels, then the second's ...
    (each as :func:`km_estimate` orders a ``by``), missing where any of the columns is.
    ``role`` and ``frame`` name the argument and ``data`` in the error message, which says
    that None is allowed too when ``none_allowed``.
    """
    keys = [by] if isinstance(by, str) else by
    try:
        keys = list(keys)
    except TypeError:
        keys = []
    if not keys or any(not isinstance(k, str) or k not in data.columns for k in keys):
        none = "None or " if none_allowed else ""
        raise ConfigError(
            f"{role}={by!r} is not a column of {frame}; allowed: {none}one of "
            f"{sorted(map(str, data.columns))}."
        )
    if len(keys) == 1:
        return data[keys[0]]
    values = data[keys]
    complete = values.notna().all(axis=1).to_numpy()
    rank = [{v: i for i, v in enumerate(_groups(values.loc[complete, k]))} for k in keys]
    rows = list(values[complete].itertuples(index=False, name=None))
    combos = sorted(set(rows), key=lambda row: tuple(r[v] for r, v in zip(rank, row, strict=True)))
    labels = np.full(len(values), None, dtype=object)
    labels[complete] = [", ".join(map(str, row)) for row in rows]
    categories = list(dict.fromkeys(", ".join(map(str, row)) for row in combos))
    return pd.Series(
        pd.Categorical(labels, categories=categories, ordered=True),
        index=data.index,
        name=", ".join(keys),
    )


def _time_event(data, time, event, by=None, by_role="by"):
    """Validated (time, event, group values, group levels, rows dropped) of the complete rows."""
    data = _check_data(data)
    t = _numeric(_column(data, time, "time"), "time")
    e = _event(_column(data, event, "event"))
    keep = ~np.isnan(t) & ~np.isnan(e)
    if by is None:
        g = np.full(len(data), "all", dtype=object)
        levels = ["all"]
    else:
        col = group_labels(data, by, role=by_role)
        keep &= col.notna().to_numpy()
        levels = _groups(col[keep])
        g = col.to_numpy(dtype=object)
    return t[keep], e[keep].astype(np.int64), g[keep], levels, int((~keep).sum())


def _left_out(dropped: int, what: str) -> list[str]:
    """The note on rows left out for a missing value (none when nothing was)."""
    return [f"{dropped} row(s) with a missing {what} were left out."] if dropped else []


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
    by: str | list[str] | None = None,
    conf_type: str = "log",
    alpha: float = 0.05,
) -> KaplanMeier:
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
    by : str or list of str, optional
        Column(s) to estimate one curve per value of, in the order of a Categorical's
        categories, else sorted (several columns: their values joined by ", ", see
        :func:`group_labels`). Without it, one curve (group ``"all"``).
    conf_type : {"log", "log-log", "plain"}
        Interval type (R's ``conf.type``).
    alpha : float
        1 - confidence level (R's ``conf.int = 1 - alpha``).

    Returns
    -------
    KaplanMeier
        ``n``: subjects in the estimate; ``notes``: rows left out. ``table``: one row per group
        and distinct time (event or censoring), sorted by group then time. Columns:

        - ``group`` (str): the ``by`` value, or ``"all"``.
        - ``time`` (float): the distinct time.
        - ``n_at_risk`` (int): subjects with time >= ``time`` (R's ``n.risk``).
        - ``events``, ``censored`` (int): events and censorings at ``time``.
        - ``survival`` (float): the estimate just after ``time``.
        - ``std_error`` (float): Greenwood's standard error of ``survival`` (R's ``std.err`` of
          ``summary.survfit``); missing once the survival is 0.
        - ``ci_low``, ``ci_high`` (float): the pointwise ``1 - alpha`` interval; missing once the
          survival is 0 (as R).

        ``table.attrs`` holds ``by``, ``conf_type`` and ``alpha``.

    Raises
    ------
    ConfigError
        When ``data`` is not a DataFrame, a column is missing, ``time`` is not numeric,
        ``event`` is not 0/1, or ``conf_type`` or ``alpha`` is not allowed.
    """
    conf_type, alpha = _check_conf_type(conf_type), _check_alpha(alpha)
    t, e, g, levels, dropped = _time_event(data, time, event, by)
    blocks = []
    for level in levels:
        m = g == level
        block = pd.DataFrame(_km_arrays(t[m], e[m], conf_type, alpha))
        block.insert(0, "group", str(level))
        blocks.append(block)
    columns = ["group", "time", *KM_COLUMNS]
    out = (
        pd.concat(blocks, ignore_index=True)
        if blocks
        else pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    )
    out["group"] = out["group"].astype("str")
    out = out[columns]
    out.attrs = {"by": by, "conf_type": conf_type, "alpha": alpha}
    return KaplanMeier(table=out, n=len(t), notes=_left_out(dropped, "time, event or group"))


# ------------------------------------------------------------------------------------ median
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


def km_median(km: KaplanMeier) -> SurvivalMedians:
    """Median survival time with its interval, per group, by R's convention.

    As ``print(survfit(...))`` (the ``median``, ``0.95LCL`` and ``0.95UCL`` columns of
    ``summary(fit)$table``): the median is the first time the Kaplan-Meier curve is at or below
    0.5, except that where the curve is flat at exactly 0.5 it is the midpoint between the time
    it reached 0.5 and the time it drops below. The interval ends are the same rule applied to
    the lower and upper pointwise confidence curves (Brookmeyer-Crowley style inversion), so they
    depend on the estimate's ``conf_type``. A median or end is missing when its curve never
    reaches 0.5.

    R's ``quantile.survfit`` agrees except when a curve ends flat at exactly 0.5: it then takes
    the midpoint with the last time, where ``print.survfit`` (and this function) takes the time
    the curve reached 0.5.

    Parameters
    ----------
    km : KaplanMeier
        From :func:`km_estimate` (times in ``time``) or
        :func:`ptanalytics.models.dropout.kaplan_meier` (weeks in ``week``).

    Returns
    -------
    SurvivalMedians
        ``n`` and ``notes`` of ``km``; ``table``: one row per group. Columns:

        - ``group`` (str).
        - ``n`` (int): subjects; ``events`` (int): events.
        - ``median`` (float): median survival time (missing if the curve stays above 0.5).
        - ``ci_low``, ``ci_high`` (float): its interval, at the estimate's ``1 - alpha``.

        ``table.attrs`` is ``km.table.attrs``.

    Raises
    ------
    ConfigError
        When ``km`` is not a Kaplan-Meier result.
    """
    if not isinstance(km, KaplanMeier):
        raise ConfigError(
            f"km is a {type(km).__name__}; allowed: the result of km_estimate or "
            "ptanalytics.models.dropout.kaplan_meier (e.g. km_median(km_estimate(data, ...)))."
        )
    table = km.table
    when = "week" if "week" in table.columns else "time"
    rows = []
    for name, g in table.groupby("group", sort=False):
        x = g[when].to_numpy(dtype=float)
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
    out.attrs = dict(table.attrs)
    return SurvivalMedians(table=out, n=km.n, notes=list(km.notes))


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


def logrank_test(data: pd.DataFrame, *, time: str, event: str, group: str | list[str]) -> LogRank:
    """Log-rank test of equal survival in two or more groups, as R's ``survdiff``.

    The statistic is ``(O - E)' V^- (O - E)`` on all groups but the first (R's ``survdiff``,
    ``rho = 0``), with ``df`` = groups with a positive expected count - 1 and ``p`` from the
    upper tail of the chi-square distribution (exact for small p, not floored at 1e-16).

    Parameters
    ----------
    data, time, event
        As :func:`km_estimate`.
    group : str or list of str
        Column(s) with the groups (order as ``by`` of :func:`km_estimate`; rows with a missing
        group are left out).

    Returns
    -------
    LogRank
        ``chisq``, ``df`` and ``p_value`` of the test; ``n``: subjects in it; ``notes``: rows
        left out. ``table``: one row per group. Columns:

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
    t, e, g, levels, dropped = _time_event(data, time, event, group, by_role="group")
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
    table = pd.DataFrame(
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
    notes = _left_out(dropped, "time, event or group")
    return LogRank(table=table, n=len(t), notes=notes, chisq=chisq, df=df, p_value=p)


# ------------------------------------------------------------------------------------ Cox
#: Tie handling of :func:`cox_ph`; the first is the default (R's ``coxph``).
TIES = ("efron", "breslow")


def _covariate_values(col: pd.Series, name: str) -> np.ndarray | None:
    """A numeric or boolean covariate as float (missing as NaN); None for one to dummy-code."""
    if pd.api.types.is_bool_dtype(col) or (
        pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype)
    ):
        values = pd.to_numeric(col).astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        if np.isinf(values).any():
            raise ConfigError(f"covariate {name!r} has infinite values; allowed: finite numbers.")
        return values
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
    return None


def _dummies(col: pd.Series, name: str) -> pd.DataFrame:
    """Treatment coding by patsy against the first level (:func:`_groups`), as ``name[T.b]``.

    Missing values stay missing in every dummy. A column with one level gives one all-zero
    dummy (which :func:`_check_design` then reports as constant) rather than none.
    """
    levels = _groups(col)
    present = col.notna().to_numpy()
    if len(levels) == 1:
        return pd.DataFrame({f"{name}[T.{levels[0]}]": np.where(present, 0.0, np.nan)})
    term = "C(x, Treatment, levels=levels)"
    coded = patsy.dmatrix(
        term,
        {"x": col[present].to_numpy(dtype=object), "levels": levels},
        NA_action="raise",
        return_type="dataframe",
    ).drop(columns="Intercept")
    values = np.full((len(col), coded.shape[1]), np.nan)
    values[present] = coded.to_numpy(dtype=float)
    columns = [c.replace(term, name, 1) for c in coded.columns]
    return pd.DataFrame(values, columns=columns)


def _design_matrix(data: pd.DataFrame, covariates: list[str]) -> pd.DataFrame:
    """Numeric design, treatment coding: numbers and booleans as they are; a Categorical's
    categories in their order (the first present is the reference), other values sorted."""
    parts = []
    for name in covariates:
        values = _covariate_values(data[name], name)
        parts.append(
            pd.DataFrame({name: values}) if values is not None else _dummies(data[name], name)
        )
    return pd.concat(parts, axis=1).set_axis(data.index, axis=0)


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
        Rows used (R's ``fit$n``: subjects, or intervals with ``start``, since :func:`cox_ph`
        does not know which rows belong to one subject) and events among them; ``n_dropped``:
        rows left out for a missing value.
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

    def figure(self, ax=None):
        """Hazard ratios with intervals (:func:`ptanalytics.plotting.plot_hazard_ratios`)."""
        from ptanalytics.plotting import plot_hazard_ratios

        return plot_hazard_ratios(self, ax=ax)


class _Stratum(NamedTuple):
    """One stratum of a Cox fit: its design, the risk-set bookkeeping and the deaths."""

    xb: np.ndarray  # design rows of the stratum
    xx: np.ndarray  # their outer products
    # (event times + 1) x rows: +1 at the first event time a row is at risk, -1 after its
    # last, so that a cumulative sum over event times of ``entry @ a`` is the at-risk sum.
    entry: object
    deaths: np.ndarray  # rows with an event, ordered by event time
    d_time: np.ndarray  # the event time index of each
    nt: int  # distinct event times
    frac: np.ndarray  # Efron's share of each tied death kept in the denominator


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
            # Rows at risk at t: start < t <= stop, i.e. the event times from the first after
            # start (lo) to the last up to stop (hi - 1).
            lo = np.searchsorted(etimes, st, side="right")
            hi = np.searchsorted(etimes, sp, side="right")
            n_rows = len(rows)
            entry = sparse.csr_array(
                (
                    np.r_[np.ones(n_rows), -np.ones(n_rows)],
                    (np.r_[lo, hi], np.r_[np.arange(n_rows), np.arange(n_rows)]),
                ),
                shape=(len(etimes) + 1, n_rows),
            )
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
            self.blocks.append(_Stratum(xb, xx, entry, deaths, d_time, len(etimes), frac))

    @staticmethod
    def _risk_sums(a, block: _Stratum):
        """Sum of ``a`` over the rows of ``block`` at risk at each event time (one sparse
        product over the rows and a cumulative sum over the event times)."""
        flat = a.reshape(len(a), -1)
        sums = np.cumsum(block.entry @ flat, axis=0)[: block.nt]
        return sums.reshape(block.nt, *a.shape[1:])

    def evaluate(self, beta: np.ndarray):
        """Log partial likelihood, score and information at ``beta``."""
        p = self.x.shape[1]
        loglik, score, info = 0.0, np.zeros(p), np.zeros((p, p))
        for block in self.blocks:
            xb, deaths, d_time, frac = block.xb, block.deaths, block.d_time, block.frac
            eta = xb @ beta
            eta = eta - eta.max()  # the partial likelihood does not change; exp cannot overflow
            r = np.exp(eta)
            s = []
            for a in (r, r[:, None] * xb, r[:, None, None] * block.xx):
                at_risk = self._risk_sums(a, block)
                dead = np.zeros((block.nt, *a.shape[1:]))
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


def _check_cox_options(ties, max_iter, eps) -> None:
    check_option("ties", ties, TIES, what=f"one of {list(TIES)} (R's default 'efron')")
    check_number("max_iter", max_iter, low=1, integer=True, what="a whole number >= 1 (R uses 20)")
    check_number(
        "eps", eps, low=0, high=1, inclusive=False, what="a number in (0, 1) (R uses 1e-9)"
    )


@dataclass
class _CoxRows:
    """The complete rows of a Cox fit: interval ends, events, centred design, strata codes."""

    start: np.ndarray
    stop: np.ndarray
    event: np.ndarray
    x: pd.DataFrame
    strata: np.ndarray
    n_dropped: int


def _cox_rows(data, *, time, event, covariates, start, strata) -> _CoxRows:
    """Validate the columns of :func:`cox_ph` and keep the complete rows."""
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
    if int(ev[ok].sum()) == 0:
        raise ConfigError(
            f"event={event!r} has no event among the {int(ok.sum())} complete row(s); a Cox "
            "model needs at least one."
        )
    x = x[ok]
    _check_design(x)
    codes = (
        np.zeros(int(ok.sum()), dtype=np.int64)
        if strata is None
        else pd.factorize(data[strata][ok])[0]
    )
    return _CoxRows(st[ok], stop[ok], ev[ok].astype(np.int64), x, codes, int((~ok).sum()))


def _cox_notes(rows: _CoxRows, names, beta, score, cov, converged, iterations, max_iter, eps):
    """Rows left out, non-convergence and coefficients drifting to infinity, in words."""
    notes = _left_out(rows.n_dropped, "value")
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
    return notes


def _cox_table(names, beta, cov, alpha) -> tuple[pd.DataFrame, float]:
    """The tidy table of hazard ratios and the Wald chi-square of all coefficients 0."""
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
    return table, wald


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
        convergence, ``notes`` and ``figure()`` (the hazard ratios); see :class:`CoxResult`.

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
    _check_cox_options(ties, max_iter, eps)
    rows = _cox_rows(
        data, time=time, event=event, covariates=covariates, start=start, strata=strata
    )
    values = rows.x.to_numpy(dtype=float)
    centred = values - values.mean(axis=0)
    model = _CoxData(rows.start, rows.stop, rows.event, centred, rows.strata, ties)
    p = values.shape[1]
    beta, loglik, loglik0, info, score_test, converged, iterations, score = _newton(
        model, p, int(max_iter), float(eps)
    )
    names = list(rows.x.columns)
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = np.full((p, p), np.nan)
    notes = _cox_notes(rows, names, beta, score, cov, converged, iterations, max_iter, eps)
    table, wald = _cox_table(names, beta, cov, alpha)
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
        n=len(rows.stop),
        n_events=int(rows.event.sum()),
        n_dropped=rows.n_dropped,
        ties=ties,
        converged=converged,
        iterations=int(iterations),
        notes=notes,
    )
