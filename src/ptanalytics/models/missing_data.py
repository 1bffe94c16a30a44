"""Multiple imputation of a missing follow-up score, Rubin's rules and a delta tipping point.

Patients who drop out of an exercise program rarely answer the follow-up questionnaire, and they
drop out more often when their pain does not improve: the missing follow-up scores are *missing
not at random* (MNAR). A completers analysis then describes the patients who did well enough to
stay. This module

* imputes the missing follow-up score ``m`` times by Bayesian linear-regression imputation
  (:func:`impute_followup`) under missing at random (MAR) given baseline pain, pain at the end of
  the guided phase, adherence and age, optionally shifted by ``delta`` points (an MNAR
  sensitivity analysis: the *delta adjustment* of the pattern-mixture approach);
* pools the analyses of the completed copies with Rubin's rules (:func:`rubin`, a
  :class:`Pooled` result);
* gives responder proportions in which every patient counts (:func:`mi_responders`); and
* repeats the adherence-outcome regression over a grid of ``delta`` to find where its conclusion
  changes (:func:`tipping_point`).

:func:`rubin`, :func:`mi_responders` and :func:`tipping_point` return results with ``table``,
``n``, ``notes`` and ``figure()`` (:mod:`ptanalytics.models._result`); :func:`impute_followup`
prepares data and returns the completed copies.

MAR is an assumption the data cannot check; the delta grid shows how far the answer moves when
it fails in a stated direction. Every stochastic function takes ``seed`` and draws only from
``numpy.random.default_rng(seed)``: the same seed gives the same numbers. Inputs are never
modified.

References: Rubin (1987) *Multiple Imputation for Nonresponse in Surveys*; Barnard & Rubin (1999)
Biometrika 86:948-955; van Buuren (2018) *Flexible Imputation of Missing Data*, 2nd ed., sections
3.2 (``norm``), 5.2 (pooling) and 9.2 (delta adjustment).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from ptanalytics._checks import check_alpha as _check_alpha
from ptanalytics._checks import check_bool, check_number
from ptanalytics._checks import check_seed as _check_seed
from ptanalytics.exceptions import ConfigError
from ptanalytics.metrics.responders import Proportions, flag_responders
from ptanalytics.metrics.timepoints import canonical_instrument
from ptanalytics.models._result import Estimates
from ptanalytics.models._tidy import TIDY_COLUMNS
from ptanalytics.vocab import INSTRUMENT_RANGES

__all__ = [
    "Pooled",
    "TippingPoint",
    "imputation_predictors",
    "impute_followup",
    "mi_responders",
    "rubin",
    "tipping_point",
]

#: Instrument scales used when ``integer_scale=True``: (low, high) of the recorded integer score,
#: for the instruments the patient summary scores (its ``nprs_*`` and ``odi_*`` columns).
_SCALES = {
    name.lower(): (float(INSTRUMENT_RANGES[name][0]), float(INSTRUMENT_RANGES[name][1]))
    for name in ("NPRS", "ODI")
}
#: Ridge added to X'X, relative to its diagonal (as in R mice's ``norm``), for near-collinearity.
_RIDGE = 1e-5
#: Columns of :func:`mi_responders` (after any ``by`` columns).
_MI_RESPONDER_COLUMNS = [
    "group",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "n",
    "n_imputed",
    "m",
    "df",
    "fraction_missing_info",
    "definition",
    "analysis",
]
#: Columns of :func:`tipping_point`.
_TIPPING_COLUMNS = [
    "delta",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "p_value",
    "significant",
    "df",
    "fraction_missing_info",
    "n",
    "m",
    "tipping_delta",
]


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------


def _check_m(m, minimum: int) -> int:
    what = f"a whole number of imputations >= {minimum}"
    return check_number("m", m, low=minimum, integer=True, what=what)


def _check_delta(delta, name: str = "delta") -> float:
    return check_number(name, delta, what="a finite number of score points")


def _check_summary(summary) -> None:
    if not isinstance(summary, pd.DataFrame):
        raise ConfigError(
            f"summary is a {type(summary).__name__}; pass the DataFrame of patient_summary()."
        )


def _numeric_column(summary: pd.DataFrame, col: str, argument: str) -> np.ndarray:
    if col not in summary.columns:
        raise ConfigError(f"{argument}: summary has no column {col!r}.")
    series = summary[col]
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        raise ConfigError(
            f"{argument}: column {col!r} is {series.dtype}, not numeric; encode it as numbers "
            "(for example 0/1 indicators) first."
        )
    return series.to_numpy(dtype=float, na_value=np.nan)


# --------------------------------------------------------------------------------------------
# Rubin's rules
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pooled:
    """One scalar pooled over ``m`` completed data sets by Rubin's rules (:func:`rubin`).

    Attributes
    ----------
    estimate : float
        Mean of the estimates (Q-bar).
    std_error : float
        ``sqrt(total)``.
    ci_low, ci_high : float
        ``1 - alpha`` interval, t distribution with ``df``.
    p_value : float
        Two-sided, t distribution with ``df``; ``statistic`` is ``estimate / std_error``.
    df : float
        Degrees of freedom; ``df_method`` is ``"rubin1987"`` or ``"barnard-rubin1999"``.
    within, between, total : float
        U-bar (mean of the variances), B (sample variance of the estimates, ddof=1) and
        ``T = U-bar + (1 + 1/m) B``.
    riv : float
        Relative increase in variance, ``(1 + 1/m) B / U-bar``.
    lambda_ : float
        ``(1 + 1/m) B / T``, the proportion of the total variance due to missing data (column
        ``lambda`` of ``table``).
    fraction_missing_info : float
        Rubin's ``(riv + 2 / (df + 3)) / (1 + riv)``.
    m : int
        Completed data sets; ``alpha`` the level of the interval.
    term : str
        What was pooled (the ``term`` of ``table``).
    n : int or None
        Patients the analyses rest on, when the caller gave it.
    notes : list of str
        Plain-language messages.
    """

    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    statistic: float
    df: float
    df_method: str
    within: float
    between: float
    total: float
    riv: float
    lambda_: float
    fraction_missing_info: float
    m: int
    alpha: float
    term: str = "estimate"
    n: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def table(self) -> pd.DataFrame:
        """One row: ``term``, ``estimate``, ``std_error``, ``ci_low``, ``ci_high``, ``p_value``,
        ``statistic``, ``df``, ``df_method``, ``within``, ``between``, ``total``, ``riv``,
        ``lambda``, ``fraction_missing_info``, ``m`` and ``alpha``."""
        row = {"term": self.term}
        for name in _POOLED_COLUMNS[1:]:
            row[name] = getattr(self, "lambda_" if name == "lambda" else name)
        return pd.DataFrame([row], columns=_POOLED_COLUMNS)

    def figure(self, ax=None):
        """The pooled estimate with its interval (:func:`ptanalytics.plotting.plot_terms`)."""
        from ptanalytics.plotting import plot_terms

        return plot_terms(self.table, ax=ax)


_POOLED_COLUMNS = [
    *TIDY_COLUMNS,
    "statistic",
    "df",
    "df_method",
    "within",
    "between",
    "total",
    "riv",
    "lambda",
    "fraction_missing_info",
    "m",
    "alpha",
]


def rubin(
    estimates,
    variances,
    *,
    df_complete: float = np.inf,
    alpha: float = 0.05,
    term: str = "estimate",
    n: int | None = None,
) -> Pooled:
    """Pool ``m`` completed-data estimates of one scalar with Rubin's rules.

    Parameters
    ----------
    estimates, variances : array-like of shape (m,)
        The estimate and its squared standard error from each completed data set (m >= 2).
    df_complete : float, default inf
        Degrees of freedom the analysis would have without missing data (for a regression, the
        residual degrees of freedom). ``inf`` (the default) gives Rubin's (1987) classic degrees
        of freedom ``(m - 1) / lambda**2``; a finite value gives the Barnard-Rubin (1999)
        small-sample degrees of freedom ``1 / (1 / nu_old + 1 / nu_obs)`` with
        ``nu_old = (m - 1) / lambda**2`` and
        ``nu_obs = (df_complete + 1) / (df_complete + 3) * df_complete * (1 - lambda)``,
        which never exceed ``df_complete`` (as in R's ``mice::pool``).
    alpha : float, default 0.05
        The interval is the ``1 - alpha`` confidence interval.
    term : str, default "estimate"
        Name of the pooled quantity (``term`` of the result's table).
    n : int, optional
        Patients the analyses rest on (the result's ``n``).

    Returns
    -------
    Pooled
        The estimate, its parts and the interval (see :class:`Pooled`); ``table`` holds them as
        one row. When the estimates agree exactly (B = 0) the degrees of freedom are
        ``df_complete`` adjusted as above, the fractions are 0, and ``notes`` says so.
    """
    q, u = _check_pool_input(estimates, variances, df_complete)
    alpha = _check_alpha(alpha)
    m = len(q)
    qbar = float(q.mean())
    ubar = float(u.mean())
    b = float(q.var(ddof=1))
    extra = (1 + 1 / m) * b
    total = ubar + extra
    lam = extra / total if total > 0 else 0.0
    riv = extra / ubar if ubar > 0 else (0.0 if extra == 0 else np.inf)
    df, method = _pooled_df(lam, m, df_complete)
    fmi = (riv + 2 / (df + 3)) / (1 + riv) if np.isfinite(riv) else 1.0
    if extra == 0:
        fmi = 0.0
    se = float(np.sqrt(total))
    crit = float(stats.t.ppf(1 - alpha / 2, df))
    if se > 0:
        statistic = qbar / se
        p_value = float(2 * stats.t.sf(abs(statistic), df))
    else:
        statistic, p_value = np.nan, np.nan
    notes = [] if b > 0 else [f"the {m} estimates agree exactly: no between-imputation variance."]
    parts = dict(within=ubar, between=b, total=total, riv=float(riv), lambda_=float(lam))
    return Pooled(
        estimate=qbar,
        std_error=se,
        ci_low=qbar - crit * se,
        ci_high=qbar + crit * se,
        p_value=p_value,
        statistic=float(statistic),
        df=float(df),
        df_method=method,
        fraction_missing_info=float(fmi),
        **parts,
        m=m,
        alpha=alpha,
        term=term,
        n=n,
        notes=notes,
    )


def _check_pool_input(estimates, variances, df_complete) -> tuple[np.ndarray, np.ndarray]:
    """The estimates and variances of :func:`rubin` as float arrays, checked."""
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    if q.ndim != 1 or q.shape != u.shape:
        raise ConfigError(
            f"estimates has shape {q.shape} and variances {u.shape}; expected two 1-d arrays of "
            "the same length m."
        )
    m = len(q)
    if m < 2:
        raise ConfigError(f"estimates has {m} value(s); Rubin's rules need m >= 2 imputations.")
    if not (np.isfinite(q).all() and np.isfinite(u).all()):
        raise ConfigError("estimates and variances must be finite (no NaN or infinity).")
    if (u < 0).any():
        raise ConfigError("variances must be >= 0 (squared standard errors).")
    if isinstance(df_complete, bool) or not isinstance(df_complete, numbers.Real):
        raise ConfigError(f"df_complete={df_complete!r}; expected a positive number or inf.")
    if not df_complete > 0:
        raise ConfigError(f"df_complete={df_complete!r}; expected a positive number or inf.")
    return q, u


def _pooled_df(lam: float, m: int, df_complete: float) -> tuple[float, str]:
    """Rubin's (1987) degrees of freedom, or Barnard-Rubin's (1999) with finite ``df_complete``."""
    nu_old = (m - 1) / lam**2 if lam > 0 else np.inf
    if np.isinf(df_complete):
        return nu_old, "rubin1987"
    nu_com = float(df_complete)
    nu_obs = (nu_com + 1) / (nu_com + 3) * nu_com * (1 - lam)
    df = nu_obs if np.isinf(nu_old) else nu_old * nu_obs / (nu_old + nu_obs)
    return df, "barnard-rubin1999"


# --------------------------------------------------------------------------------------------
# Bayesian linear-regression imputation
# --------------------------------------------------------------------------------------------


def _design(columns: list[np.ndarray], n: int) -> np.ndarray:
    return np.column_stack([np.ones(n), *columns]) if columns else np.ones((n, 1))


def _norm_draw(
    x_obs: np.ndarray, y_obs: np.ndarray, x_mis: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One proper draw of the missing ``y`` (Rubin 1987, p. 167; van Buuren 2018, Algorithm 3.1).

    With a flat prior, ``sigma^2 | y`` is scaled inverse chi-square: ``SSR / chi2(n - p)``;
    ``beta | sigma^2, y ~ N(beta_hat, sigma^2 (X'X)^-1)``; the imputation adds ``N(0, sigma^2)``
    residual noise to ``X_mis beta``. Draw order (fixed, for reproducibility): chi-square, then
    the p normal deviates of beta, then one normal deviate per missing row.
    """
    n, p = x_obs.shape
    xtx = x_obs.T @ x_obs
    xtx = xtx + np.diag(_RIDGE * np.diag(xtx))
    v = np.linalg.inv(xtx)
    v = (v + v.T) / 2
    beta_hat = v @ (x_obs.T @ y_obs)
    ssr = float(np.sum((y_obs - x_obs @ beta_hat) ** 2))
    sigma = np.sqrt(ssr / rng.chisquare(max(n - p, 1)))
    beta = beta_hat + sigma * (np.linalg.cholesky(v) @ rng.standard_normal(p))
    return x_mis @ beta + sigma * rng.standard_normal(len(x_mis))


def _scale_for(outcome: str) -> tuple[float, float]:
    instrument = outcome.split("_", 1)[0]
    instrument = canonical_instrument(instrument).lower()  # "NPRS", "nprs", " Nprs" alike
    if instrument not in _SCALES:
        raise ConfigError(
            f"integer_scale=True but outcome={outcome!r} is not an nprs_* or odi_* score whose "
            "scale is known; pass integer_scale=False."
        )
    return _SCALES[instrument]


def impute_followup(
    summary: pd.DataFrame,
    *,
    m: int = 20,
    seed: int,
    outcome: str = "nprs_followup",
    predictors: Sequence[str] = ("nprs_baseline", "nprs_end_guided", "adherence", "age"),
    delta: float = 0.0,
    integer_scale: bool = True,
) -> list[pd.DataFrame]:
    """Multiply impute a missing outcome score by Bayesian linear regression (``norm``).

    For each of the ``m`` copies, one independent proper draw (van Buuren 2018, Algorithm 3.1):
    the residual variance from its scaled inverse chi-square posterior, ``sigma^2 = SSR /
    chi2(n_obs - p)``, the coefficients from their normal posterior ``N(beta_hat, sigma^2
    (X'X)^-1)`` (flat prior; a ridge of 1e-5 times the diagonal of X'X guards against
    collinearity, as in R's ``mice``), then ``X beta + N(0, sigma^2)`` noise for every patient
    whose ``outcome`` is missing.

    **Missing predictors.** Predictors are filled before the outcome is imputed, by the same
    Bayesian regression, one at a time in a fixed order: the incomplete predictors in the order
    given in ``predictors``, each regressed on an intercept, the complete predictors and the
    incomplete predictors already filled (all rows where it is observed). The outcome model is
    then fitted on the patients with the outcome *and every predictor* observed (so the predictor
    draws, which do not use the outcome, cannot attenuate its coefficients) and applied to the
    patients with a missing outcome, using their drawn predictor values. This is a single
    sequential (monotone-style) pass, not iterated chained equations. The predictor draws serve
    only the outcome imputation and are **not written back**: predictor columns in the copies are
    exactly those of ``summary``.

    Parameters
    ----------
    summary : DataFrame
        One row per patient, from :func:`ptanalytics.patient_summary`. Not modified.
    m : int, default 20
        Number of completed copies (>= 1).
    seed : int
        Seed of ``numpy.random.default_rng``; the copies are drawn in order from one generator.
        Draws do not depend on ``delta``, so the same seed under two deltas gives imputations
        that differ only by the shift (before rounding and clipping).
    outcome : str, default "nprs_followup"
        The numeric column to impute.
    predictors : sequence of str
        Numeric columns of the imputation model (an intercept is added). Must not include
        ``outcome``.
    delta : float, default 0.0
        Added to every imputed value (in score points) before rounding: 0 is MAR; a positive
        value makes the imputed patients that much *worse* (more pain) than MAR predicts, the
        delta-adjustment MNAR sensitivity analysis. Observed values are never shifted.
    integer_scale : bool, default True
        Round the imputed values half up to integers and clip them to the instrument's recorded
        scale: 0-10 for NPRS (the 11-point numeric rating scale is recorded as whole points),
        0-100 for ODI, chosen from the prefix of ``outcome``. Applied only to imputed values;
        clipping bounds the effective shift of ``delta`` for patients near 0 or 10. With
        ``False``, imputed values are left continuous and unbounded.

    Returns
    -------
    list of pandas.DataFrame
        ``m`` copies of ``summary`` (same index, rows and columns) in which the missing
        ``outcome`` values are imputed (the column becomes float64), plus a boolean column
        ``imputed`` (True where ``outcome`` was missing and has been imputed). Derived columns
        of ``summary`` (for example ``nprs_change_followup``) are *not* recomputed. With no
        missing outcome every copy equals ``summary`` plus ``imputed=False``.

    Raises
    ------
    ConfigError
        On a missing or non-numeric column, ``outcome`` among the ``predictors``, an existing
        ``imputed`` column, an invalid ``m``, ``seed`` or ``delta``, or too few complete rows to
        fit an imputation model.
    """
    _check_summary(summary)
    m = _check_m(m, 1)
    seed = _check_seed(seed)
    delta = _check_delta(delta)
    check_bool("integer_scale", integer_scale)
    if isinstance(predictors, str):
        predictors = (predictors,)
    predictors = list(predictors)
    if len(set(predictors)) != len(predictors):
        raise ConfigError(f"predictors={predictors!r} names a column twice.")
    if outcome in predictors:
        raise ConfigError(f"predictors includes the outcome {outcome!r}; remove it.")
    if "imputed" in summary.columns:
        raise ConfigError(
            "summary already has an 'imputed' column (an imputed copy?); pass the original "
            "patient summary."
        )
    y = _numeric_column(summary, outcome, "outcome")
    xs = {col: _numeric_column(summary, col, "predictors") for col in predictors}
    bounds = _scale_for(outcome) if integer_scale else None

    n = len(summary)
    missing_y = np.isnan(y)
    x_missing = np.column_stack([np.isnan(xs[c]) for c in predictors] or [np.zeros(n, bool)])
    complete = [c for c in predictors if not np.isnan(xs[c]).any()]
    incomplete = [c for c in predictors if c not in complete]
    fit_rows = ~missing_y & ~x_missing.any(axis=1)
    n_coef = 1 + len(predictors)
    if missing_y.any() and fit_rows.sum() <= n_coef:
        raise ConfigError(
            f"outcome={outcome!r}: only {int(fit_rows.sum())} rows have it and every predictor "
            f"observed; the imputation model needs more than {n_coef}."
        )
    for position, col in enumerate(incomplete):
        n_observed, k = int((~np.isnan(xs[col])).sum()), 1 + len(complete) + position
        if missing_y.any() and n_observed <= k:
            raise ConfigError(
                f"predictors: column {col!r} is observed in {n_observed} rows; filling it needs "
                f"more than {k}."
            )

    rng = np.random.default_rng(seed)
    copies = []
    for _ in range(m):
        out = summary.copy()
        y_filled = y.copy()
        if missing_y.any():
            filled = {c: xs[c] for c in complete}
            for col in incomplete:
                x_col = xs[col]
                miss = np.isnan(x_col)
                design = _design([filled[c] for c in filled], n)
                draw = _norm_draw(design[~miss], x_col[~miss], design[miss], rng)
                x_new = x_col.copy()
                x_new[miss] = draw
                filled[col] = x_new
            design = _design([filled[c] for c in predictors], n)
            values = _norm_draw(design[fit_rows], y[fit_rows], design[missing_y], rng) + delta
            if bounds is not None:
                values = np.clip(np.floor(values + 0.5), *bounds)
            y_filled[missing_y] = values
        out[outcome] = y_filled
        out["imputed"] = missing_y.copy()
        copies.append(out)
    return copies


# --------------------------------------------------------------------------------------------
# Responder proportions
# --------------------------------------------------------------------------------------------


def _analysis_label(delta: float) -> str:
    return (
        "multiple imputation (MAR)" if delta == 0 else f"multiple imputation (MNAR delta={delta:g})"
    )


def mi_responders(
    summary: pd.DataFrame,
    *,
    m: int = 20,
    seed: int,
    preset: str = "ostelo",
    instrument: str = "nprs",
    timepoint: str = "followup",
    by: str | list[str] | None = None,
    delta: float = 0.0,
    alpha: float = 0.05,
    predictors: Sequence[str] | None = None,
    **definition,
) -> Proportions:
    """Responder proportions with every patient counted: multiple imputation and Rubin's rules.

    The missing ``<instrument>_<timepoint>`` scores are imputed ``m`` times with
    :func:`impute_followup` (``integer_scale=True``; ``delta`` shifts the imputed scores),
    responders are flagged on each completed copy with
    :func:`ptanalytics.flag_responders` (``analysis="completers"``: after imputation
    only patients without a baseline score drop out), and the proportions are pooled with
    :func:`rubin` on the logit scale (completed-data variance of the logit ``1 / (n p (1 - p))``;
    Barnard-Rubin degrees of freedom with ``n - 1`` complete-data degrees of freedom) and
    back-transformed. A group in which any copy has 0 or ``n`` responders uses the empirical
    logit ``log((k + 0.5) / (n - k + 0.5))`` and its variance ``1 / (k + 0.5) + 1 / (n - k +
    0.5)`` in every copy, so the pooled estimate stays finite.

    Parameters
    ----------
    summary : DataFrame
        From :func:`ptanalytics.patient_summary`. Not modified.
    m : int, default 20
        Number of imputations (>= 2).
    seed : int
        Seed of the imputations (see :func:`impute_followup`).
    preset, instrument, timepoint
        The responder definition and score, as in :func:`flag_responders`.
    by : str or list of str, optional
        Grouping column(s); one row for all patients when None.
    delta : float, default 0.0
        MNAR shift of the imputed scores in points (positive: more pain than MAR predicts).
    alpha : float, default 0.05
        The intervals are ``1 - alpha`` intervals.
    predictors : sequence of str, optional
        Imputation model predictors. Default: ``<instrument>_baseline``,
        ``<instrument>_end_guided`` (for the follow-up only), ``adherence`` and ``age``, those of
        them that ``summary`` has (an outcomes-only cohort has no adherence). For NPRS at
        follow-up this is :func:`impute_followup`'s default. A default predictor missing for
        every patient (a timepoint the design does not have) is left out.
    **definition
        ``level``, ``points``, ``percent``, ``cutoff`` for :func:`flag_responders`.

    Returns
    -------
    Proportions
        ``n``: patients with a baseline score; ``notes``: how many scores were imputed;
        ``figure()``: the proportions with their intervals
        (:func:`ptanalytics.plotting.plot_proportions`). ``table``: one row per group: the
        ``by`` columns (when given), then ``group`` (the group's values
        as text joined by ", "; ``"all"`` without ``by``), ``estimate`` (pooled responder
        proportion), ``std_error`` (pooled standard error of the *logit* of the proportion),
        ``ci_low``, ``ci_high`` (back-transformed ``1 - alpha`` interval), ``n`` (patients in the
        group with a baseline score), ``n_imputed`` (of them, patients whose score was imputed),
        ``m``, ``df`` (Barnard-Rubin degrees of freedom), ``fraction_missing_info``,
        ``definition`` (the responder rule) and ``analysis`` (``"multiple imputation (MAR)"`` or
        ``"multiple imputation (MNAR delta=<delta>)"``).
    """
    _check_summary(summary)
    m = _check_m(m, 2)
    delta = _check_delta(delta)
    alpha = _check_alpha(alpha)
    keys, instrument, outcome = _check_mi_responders(summary, by, instrument, timepoint, definition)
    if predictors is None:
        predictors = _default_predictors(summary, instrument, timepoint)
    # Only the columns the imputation and the flags read: each copy is then small (on 10^5
    # patients, copying every column of the summary m times took most of the time).
    summary = summary[_columns(keys, f"{instrument}_baseline", outcome, *predictors)]
    copies = impute_followup(
        summary, m=m, seed=seed, outcome=outcome, predictors=predictors, delta=delta
    )
    flags = pd.concat(
        [
            flag_responders(
                copy.assign(_copy=j),
                preset=preset,
                instrument=instrument,
                timepoint=timepoint,
                analysis="completers",
                **definition,
            )
            for j, copy in enumerate(copies)
        ],
        ignore_index=True,
    )
    definition_text = flags["definition"].iloc[0] if len(flags) else None
    group_keys = keys or ["_all"]
    flags["_all"] = "all"
    grouped = flags.groupby([*group_keys, "_copy"], observed=True, dropna=False)
    counts = grouped.agg(
        n=("responder", "size"), k=("responder", "sum"), n_imputed=("imputed", "sum")
    )
    # One row per group, one column per copy (every copy has the same patients in each group).
    k = counts["k"].unstack("_copy").astype(float)
    first = counts.xs(0, level="_copy").reindex(k.index)
    rows = []
    for g, (group, kg) in enumerate(k.iterrows()):
        ng = float(first["n"].iloc[g])
        pooled = _pooled_proportion(kg.to_numpy(), ng, alpha)
        values = (group if isinstance(group, tuple) else (group,)) if keys else ()
        rows.append(
            {
                **dict(zip(keys, values, strict=True)),
                "group": ", ".join(str(v) for v in values) or "all",
                "estimate": float(expit(pooled.estimate)),
                "std_error": pooled.std_error,
                "ci_low": float(expit(pooled.ci_low)),
                "ci_high": float(expit(pooled.ci_high)),
                "n": int(ng),
                "n_imputed": int(first["n_imputed"].iloc[g]),
                "m": m,
                "df": pooled.df,
                "fraction_missing_info": pooled.fraction_missing_info,
                "definition": definition_text,
                "analysis": _analysis_label(delta),
            }
        )
    table = pd.DataFrame(rows, columns=[*keys, *_MI_RESPONDER_COLUMNS])
    n, n_imputed = int(table["n"].sum()), int(table["n_imputed"].sum())
    notes = [
        f"{n_imputed} of {n} patients' {outcome} imputed {m} times ({_analysis_label(delta)})."
    ]
    if len(summary) > n:
        notes.append(f"{len(summary) - n} patient(s) without a baseline score were left out.")
    return Proportions(table=table, n=n, notes=notes)


def _check_mi_responders(summary, by, instrument, timepoint, definition):
    """The ``by`` columns, the canonical instrument and the outcome column, checked."""
    keys = [by] if isinstance(by, str) else list(by or [])
    for key in keys:
        if key not in summary.columns:
            raise ConfigError(f"by: summary has no column {key!r}.")
        if key in _MI_RESPONDER_COLUMNS:
            raise ConfigError(f"by: column {key!r} clashes with a result column; rename it.")
    allowed = {"level", "points", "percent", "cutoff"}
    unknown = sorted(set(definition) - allowed)
    if unknown:
        raise ConfigError(f"unknown argument(s) {unknown}; allowed: {sorted(allowed)}.")
    instrument = canonical_instrument(instrument).lower()  # "NPRS", "nprs", " Nprs" alike
    if instrument not in _SCALES:
        raise ConfigError(f"instrument={instrument!r}; allowed: {', '.join(_SCALES)}.")
    outcome = f"{instrument}_{timepoint}"
    if outcome not in summary.columns:
        raise ConfigError(
            f"timepoint={timepoint!r}: summary has no column {outcome!r} (timepoints: end_guided, "
            "followup)."
        )
    return keys, instrument, outcome


def imputation_predictors(
    summary: pd.DataFrame, *, instrument: str = "nprs", timepoint: str = "followup"
) -> list[str]:
    """The predictors of :func:`mi_responders`' imputation model when none are given: the
    columns of ``summary`` it imputes the missing ``<instrument>_<timepoint>`` scores from.

    Examples
    --------
    >>> import ptanalytics as pt
    >>> imputation_predictors(pt.patient_summary(pt.simulate_cohort(30, seed=1)))
    ['nprs_baseline', 'nprs_end_guided', 'adherence', 'age']
    """
    _check_summary(summary)
    return _default_predictors(summary, canonical_instrument(instrument).lower(), timepoint)


def _default_predictors(summary, instrument: str, timepoint: str) -> list[str]:
    """Baseline (and end-of-guided for the follow-up) score, adherence and age, where known."""
    candidates = [f"{instrument}_baseline", "adherence", "age"]
    if timepoint == "followup":
        candidates.insert(1, f"{instrument}_end_guided")
    # A timepoint the design does not have (no end of guided phase in an outcomes-only trial)
    # is all missing: it cannot predict anything and is left out.
    return [c for c in candidates if c in summary.columns and summary[c].notna().any()]


def _pooled_proportion(k: np.ndarray, n: float, alpha: float) -> Pooled:
    """Responder counts ``k`` of ``n`` in each copy pooled on the logit scale (see
    :func:`mi_responders`; the empirical logit when any copy has 0 or ``n``)."""
    if ((k == 0) | (k == n)).any():
        logit = np.log((k + 0.5) / (n - k + 0.5))
        var = 1 / (k + 0.5) + 1 / (n - k + 0.5)
    else:
        logit = np.log(k / (n - k))
        var = n / (k * (n - k))
    return rubin(logit, var, df_complete=max(n - 1, 1), alpha=alpha, term="logit", n=int(n))


# --------------------------------------------------------------------------------------------
# Tipping point
# --------------------------------------------------------------------------------------------

_TIPPING_VARIABLES = ("nprs_followup", "nprs_baseline", "adherence", "age")


@dataclass
class TippingPoint(Estimates):
    """The delta-adjusted sensitivity analysis (:func:`tipping_point`).

    ``table`` has one row per delta, ``tipping_delta`` is the delta of smallest absolute value
    whose interval includes 0 (None when there is none); ``figure()`` draws the estimate over
    the deltas.
    """

    tipping_delta: float | None = None

    @property
    def covariates(self) -> list[str]:
        """What the adherence coefficient is adjusted for: the analysis model's other
        columns (``nprs_baseline``, ``age``)."""
        return [c for c in _TIPPING_VARIABLES[1:] if c != "adherence"]

    def figure(self, ax=None):
        """Estimate and interval over delta (:func:`ptanalytics.plotting.plot_tipping_point`)."""
        from ptanalytics.plotting import plot_tipping_point

        return plot_tipping_point(self, ax=ax)


def _columns(*names) -> list[str]:
    """Column names in order, once each (strings and sequences of strings alike)."""
    flat = []
    for name in names:
        flat.extend([name] if isinstance(name, str) else list(name or ()))
    return list(dict.fromkeys(flat))


def _adherence_fit(copy: pd.DataFrame) -> tuple[float, float, float, int]:
    """OLS of follow-up change on adherence, baseline and age: (coef, variance, resid df, n)."""
    import statsmodels.api as sm

    data = copy[list(_TIPPING_VARIABLES)].to_numpy(dtype=float, na_value=np.nan)
    data = data[~np.isnan(data).any(axis=1)]
    followup, baseline, adherence, age = data.T
    x = np.column_stack([np.ones(len(data)), adherence, baseline, age])
    fit = sm.OLS(followup - baseline, x).fit()
    return float(fit.params[1]), float(fit.bse[1] ** 2), float(fit.df_resid), len(data)


def tipping_point(
    summary: pd.DataFrame,
    *,
    deltas: Sequence[float] = (0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0),
    m: int = 20,
    seed: int,
    alpha: float = 0.05,
) -> TippingPoint:
    """Delta-adjusted MNAR sensitivity analysis of the adherence-outcome association.

    The analysis model is the OLS regression (statsmodels) of the follow-up change,
    ``nprs_followup - nprs_baseline ~ adherence + nprs_baseline + age``; the reported effect is
    the ``adherence`` coefficient per 10 percentage points of overall adherence (coefficient x
    0.1; negative = more adherent patients improve more). For each ``delta`` the missing
    follow-up scores are imputed ``m`` times with :func:`impute_followup` (default predictors,
    integer NPRS scale, the imputed scores shifted by ``delta`` points), the model is fitted to
    each copy (patients missing baseline, adherence or age are left out) and the ``m`` fits are
    pooled with :func:`rubin` (Barnard-Rubin degrees of freedom from the residual degrees of
    freedom). ``delta = 0`` is the MAR analysis. Every delta uses the same ``seed``, so the
    grid differs only by the shift (common random numbers) and moves smoothly.

    **Interpretation.** ``delta`` answers "how much worse (in NPRS points) must the missing
    patients' follow-up pain be, beyond what MAR predicts from their baseline, end-of-guided
    pain, adherence and age, for the adherence association to vanish?". The direction of the
    move follows from the model: adding ``delta`` to the imputed patients shifts the coefficient
    by ``delta`` times the coefficient of adherence in the regression of the missingness
    indicator on the same covariates (before rounding and clipping). Missing follow-up is
    concentrated in low-adherence patients (dropouts), so that coefficient is negative and a
    *positive* delta makes the adherence coefficient *more* negative: worse pain among the
    missing strengthens the association rather than erasing it. The association vanishes only
    for negative deltas (missing patients doing *better* than MAR predicts, for example patients
    who stopped because their pain went away); include negative values in ``deltas`` to find
    that tipping point.

    Parameters
    ----------
    summary : DataFrame
        From :func:`ptanalytics.patient_summary` (needs ``nprs_followup``,
        ``nprs_baseline``, ``nprs_end_guided``, ``adherence``, ``age``). Not modified.
    deltas : sequence of float
        Shifts to try, in NPRS points; returned in the order given.
    m : int, default 20
        Imputations per delta (>= 2).
    seed : int
        Seed of the imputations, the same for every delta.
    alpha : float, default 0.05
        Significance level; intervals are ``1 - alpha`` intervals.

    Returns
    -------
    TippingPoint
        ``tipping_delta`` (as below); ``n``: patients in the model; ``notes``: the tipping
        point in words and the reminder that this is an association; ``figure()``: the estimate
        over the deltas (:func:`ptanalytics.plotting.plot_tipping_point`). ``table``: one row
        per delta: ``delta``, ``estimate`` (pooled adherence coefficient per 10
        percentage points, NPRS points of follow-up change), ``std_error``, ``ci_low``,
        ``ci_high`` (t interval with the pooled degrees of freedom), ``p_value`` (two-sided),
        ``significant`` (bool: ``p_value < alpha``, the interval excludes 0), ``df``
        (Barnard-Rubin), ``fraction_missing_info``, ``n`` (patients in the model), ``m``, and
        ``tipping_delta`` (constant: the delta of smallest absolute value whose interval
        includes 0, the negative one on a tie; None when every interval excludes 0). The same
        value is in ``table.attrs["tipping_delta"]``.
    """
    _check_summary(summary)
    m = _check_m(m, 2)
    alpha = _check_alpha(alpha)
    deltas = _check_deltas(deltas)
    for col in _TIPPING_VARIABLES:
        _numeric_column(summary, col, "summary")
    # Only the columns the imputation and the model read (copies m x deltas times).
    summary = summary[_columns(_TIPPING_VARIABLES, "nprs_end_guided")]

    rows = []
    for delta in deltas:
        copies = impute_followup(summary, m=m, seed=seed, delta=delta)
        fits = np.array([_adherence_fit(c) for c in copies])
        n_used = int(fits[0, 3])
        if n_used <= 4:
            raise ConfigError(
                f"summary: only {n_used} patients have baseline, adherence and age; the "
                "adherence model needs more than 4."
            )
        pooled = rubin(fits[:, 0] * 0.1, fits[:, 1] * 0.01, df_complete=fits[0, 2], alpha=alpha)
        rows.append(
            {
                "delta": delta,
                "estimate": pooled.estimate,
                "std_error": pooled.std_error,
                "ci_low": pooled.ci_low,
                "ci_high": pooled.ci_high,
                "p_value": pooled.p_value,
                "significant": bool(pooled.p_value < alpha),
                "df": pooled.df,
                "fraction_missing_info": pooled.fraction_missing_info,
                "n": n_used,
                "m": m,
            }
        )
    out = pd.DataFrame(rows)
    tipping = _tipping_delta(out)
    out["tipping_delta"] = pd.Series([tipping] * len(out), dtype=object)
    out.attrs["tipping_delta"] = tipping
    told = (
        "no delta in the grid makes the interval include 0"
        if tipping is None
        else f"the interval first includes 0 at delta = {tipping:g}"
    )
    notes = [
        f"adherence coefficient per 10 points under delta-adjusted imputation: {told}.",
        "An association, not an effect: adherence was not randomised.",
    ]
    return TippingPoint(
        table=out[_TIPPING_COLUMNS], n=int(out["n"].iloc[0]), notes=notes, tipping_delta=tipping
    )


def _check_deltas(deltas) -> list[float]:
    try:
        if isinstance(deltas, str | bytes):
            raise TypeError
        deltas = list(deltas)
    except TypeError:
        raise ConfigError(f"deltas={deltas!r}; expected a sequence of numbers.") from None
    deltas = [_check_delta(d, "deltas") for d in deltas]
    if not deltas:
        raise ConfigError("deltas is empty; give at least one shift (0 is MAR).")
    if len(set(deltas)) != len(deltas):
        raise ConfigError(f"deltas={deltas!r} repeats a value.")
    return deltas


def _tipping_delta(out: pd.DataFrame) -> float | None:
    """The delta of smallest absolute value whose interval includes 0 (the negative on a tie)."""
    includes_zero = (out["ci_low"] <= 0) & (out["ci_high"] >= 0)
    if not includes_zero.any():
        return None
    candidates = out.loc[includes_zero, "delta"]
    order = np.lexsort((candidates.to_numpy(), np.abs(candidates.to_numpy())))
    return float(candidates.to_numpy()[order[0]])
