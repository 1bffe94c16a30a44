"""Effects under assumptions: estimators whose target is a causal contrast, with the assumptions
each one needs stated beside it.

Every other model in :mod:`ptanalytics.models` reports associations: adherence, the exercise mix
and the actual program length are not randomised, and patients whose pain does not improve do
fewer sessions. The estimators here answer causal questions, but only under assumptions the data
cannot prove; each result lists them in its ``notes``.

* :func:`complier_effect` — two-stage least squares with a randomised instrument (a trial arm,
  or an encouragement that raises adherence): the effect of the exposure among the patients whose
  exposure the instrument moved (the complier average causal effect, for a binary exposure; a
  weighted average of per-unit effects for a continuous one). Assumptions: the instrument was
  randomised (or is as good as randomised given the covariates); it changes pain only through
  the exposure (exclusion restriction); it moves nobody's exposure the other way (monotonicity);
  and it moves the exposure enough (relevance: the first-stage F, with a weak-instrument warning
  below 10, Staiger & Stock 1997).
* :func:`e_value` — VanderWeele & Ding's (2017) E-value: how strong an unmeasured confounder
  would have to be, on the risk-ratio scale with both the exposure and the outcome, to move an
  estimate (or its confidence limit) to the null.

Validation: :func:`complier_effect` reproduces R's ``AER::ivreg`` with ``sandwich::vcovHC``
(tests/test_causal.py, the R call beside each assert) and recovers a known complier effect in a
simulated encouragement design with non-compliance where the naive comparison does not;
:func:`e_value` reproduces the worked examples of VanderWeele & Ding (2017).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ptanalytics._checks import check_alpha, check_option
from ptanalytics.exceptions import ConfigError
from ptanalytics.models._result import Estimates

__all__ = [
    "GFORMULA_ASSUMPTIONS",
    "HEAVY_WEIGHT",
    "IV_ASSUMPTIONS",
    "MIN_PROBABILITY",
    "MSM_ASSUMPTIONS",
    "REGIMES",
    "TTE_ASSUMPTIONS",
    "WEAK_F",
    "ComplierEffect",
    "MSMResult",
    "complier_effect",
    "e_value",
    "gformula",
    "ipw_msm",
    "target_trial",
]

#: First-stage F below which an instrument is called weak (Staiger & Stock 1997).
WEAK_F = 10.0

#: The assumptions of :func:`complier_effect`, as its notes state them.
IV_ASSUMPTIONS = (
    "the instrument was randomised (independent of everything that affects pain, given the "
    "covariates)",
    "the instrument changes pain only through the exposure (exclusion restriction)",
    "the instrument moves nobody's exposure the other way (monotonicity: no defiers)",
    "the instrument moves the exposure (relevance: see the first-stage F)",
)


@dataclass
class ComplierEffect(Estimates):
    """:func:`complier_effect`'s result: the protocol's ``table``, ``n``, ``notes`` and
    ``figure()`` (a forest plot of ``table``), plus:

    Attributes
    ----------
    first_stage_f : float
        F statistic of the instrument(s) in the first stage (the exposure on the instrument and
        the covariates), classical; below :data:`WEAK_F` the instrument is weak.
    first_stage : DataFrame
        The first stage's tidy table (how much the instrument moves the exposure).
    naive : DataFrame
        One tidy row: the same covariate-adjusted OLS of the outcome on the exposure, for
        comparison (an association, confounded by whatever makes patients adhere).
    weak : bool
        ``first_stage_f < WEAK_F``.
    """

    first_stage_f: float = float("nan")
    first_stage: pd.DataFrame = field(default_factory=pd.DataFrame)
    naive: pd.DataFrame = field(default_factory=pd.DataFrame)
    weak: bool = False


def _design(data: pd.DataFrame, covariates: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Intercept and covariates (patsy terms, ``C(x)`` for a factor) as a matrix with names;
    rows with a missing covariate are NaN (left out as incomplete cases)."""
    from patsy import EvalEnvironment, PatsyError, dmatrix

    from ptanalytics.models._formula import formula_env, text_as_categorical

    rhs = " + ".join(covariates) if covariates else "1"
    # Categories as text, so that a level nobody in ``data`` has is no column of zeros.
    cats = {
        c: data[c].astype("string") for c in data if isinstance(data[c].dtype, pd.CategoricalDtype)
    }
    try:
        m = dmatrix(
            rhs,
            text_as_categorical(data.assign(**cats)),
            NA_action="drop",
            return_type="dataframe",
            eval_env=EvalEnvironment([formula_env()]),
        )
    except PatsyError as exc:
        raise ConfigError(f"covariates={list(covariates)!r}: {exc}. Fix: name columns.") from exc
    return m.reindex(data.index).to_numpy(dtype=float), list(m.columns)


def _instrument(data: pd.DataFrame, column: str, level) -> np.ndarray:
    """The instrument as numbers: 0/1 (or any numbers) as they are, booleans as 0/1, a text arm
    as 1 for ``level`` and 0 for the other level."""
    col = data[column]
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy(dtype=float)
    if pd.api.types.is_numeric_dtype(col.dtype) and level is None:
        return col.to_numpy(dtype=float, na_value=np.nan)
    values = sorted(col.dropna().astype(str).unique())
    if level is None or str(level) not in values or len(values) != 2:
        raise ConfigError(
            f"instrument {column!r} has levels {values}; a text instrument needs exactly two "
            "levels and instrument_level= naming the randomised (encouraged or active) one. "
            "Fix: pass instrument_level=, or a 0/1 column."
        )
    return (col.astype(str) == str(level)).to_numpy(dtype=float)


def _ols(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and residuals of the least-squares fit of ``y`` on ``x``."""
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    return beta, y - x @ beta


def _tidy(names, est, se, df, alpha, **extra) -> pd.DataFrame:
    t = stats.t.ppf(1 - alpha / 2, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * stats.t.sf(np.abs(est / se), df)
    table = pd.DataFrame(
        {
            "term": names,
            "estimate": est,
            "std_error": se,
            "ci_low": est - t * se,
            "ci_high": est + t * se,
            "p_value": p,
        }
    )
    return table.assign(**extra)


def _sandwich(xhat: np.ndarray, resid: np.ndarray, robust: str | None) -> np.ndarray:
    """Covariance of the coefficients: classical ``s^2 (X'X)^-1`` or HC0/HC1 on the regressors
    ``xhat`` (for two-stage least squares: the projected ones, as ``sandwich::vcovHC`` of an
    ``AER::ivreg`` fit)."""
    n, p = xhat.shape
    bread = np.linalg.inv(xhat.T @ xhat)
    if robust is None:
        return bread * float(resid @ resid) / (n - p)
    meat = (xhat * resid[:, None] ** 2).T @ xhat
    cov = bread @ meat @ bread
    return cov * (n / (n - p)) if robust == "HC1" else cov


def complier_effect(
    data: pd.DataFrame,
    *,
    outcome: str,
    exposure: str,
    instrument: str,
    instrument_level=None,
    covariates: Sequence[str] = (),
    robust: str | None = "HC1",
    alpha: float = 0.05,
) -> ComplierEffect:
    """The effect of ``exposure`` on ``outcome`` with a randomised ``instrument``: two-stage
    least squares (the Wald estimator when there are no covariates).

    Parameters
    ----------
    data : DataFrame
        One row per patient (e.g. :func:`ptanalytics.patient_summary`, with the trial arm).
    outcome : str
        A numeric column, e.g. ``nprs_change_followup``.
    exposure : str
        The treatment actually received: a 0/1 column (completed the program; supervised
        sessions attended) or a number (``adherence``; then the estimate is per unit).
    instrument : str
        The randomised assignment: a 0/1 or boolean column, or a two-level text column with
        ``instrument_level`` naming the active (encouraged) level.
    covariates : sequence of str
        Baseline covariates (patsy terms: ``nprs_baseline``, ``C(sex)``), in both stages.
    robust : {"HC1", "HC0", None}
        Heteroskedasticity-robust standard errors (default HC1, Stata's ``robust`` and
        ``sandwich::vcovHC(type = "HC1")``), or None for the classical ones.
    alpha : float
        Intervals are ``1 - alpha`` t intervals with the residual degrees of freedom.

    Returns
    -------
    ComplierEffect
        ``table``: the exposure's row (``term`` = the exposure, the effect per unit of it) and
        the covariates'; ``first_stage``, ``first_stage_f``, ``weak``, ``naive`` (the OLS
        association beside it); ``notes``: the assumptions, rows left out, and a weak-instrument
        warning. ``n``: patients used (complete cases).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> z = rng.integers(0, 2, 2000)                    # randomised encouragement
    >>> u = rng.normal(size=2000)                       # unmeasured: who adheres anyway
    >>> took = ((0.8 * z + 0.6 * u + rng.normal(size=2000)) > 0.4).astype(float)
    >>> pain = -1.5 * took + 1.0 * u + rng.normal(size=2000)  # the true effect is -1.5
    >>> d = pd.DataFrame({"z": z, "took": took, "pain": pain})
    >>> fit = complier_effect(d, outcome="pain", exposure="took", instrument="z")
    >>> fit.table.loc[0, ["estimate", "ci_low", "ci_high"]].astype(float).round(2).tolist()
    [-1.64, -2.08, -1.2]
    >>> round(float(fit.naive.loc[0, "estimate"]), 2), fit.weak  # the association misses
    (-0.77, False)
    """
    alpha = check_alpha(alpha)
    check_option("robust", robust, ("HC1", "HC0", None), what="'HC1', 'HC0' or None")
    if not isinstance(data, pd.DataFrame):
        raise ConfigError(f"data is a {type(data).__name__}; allowed: a DataFrame.")
    for name, col in (("outcome", outcome), ("exposure", exposure), ("instrument", instrument)):
        if col not in data:
            raise ConfigError(f"{name}={col!r} is not a column of data; columns: {list(data)}.")
    if len({outcome, exposure, instrument}) < 3:
        raise ConfigError("outcome, exposure and instrument must be three different columns.")
    frame = data.reset_index(drop=True)
    z_all = _instrument(frame, instrument, instrument_level)
    frame = frame.assign(_z=z_all)
    ok = np.isfinite(_design(frame, covariates)[0]).all(axis=1)
    for c in (outcome, exposure, "_z"):
        ok &= np.isfinite(pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float))
    n_all, n = len(frame), int(ok.sum())
    # The design again on the complete cases: their own levels, no empty column.
    x_all, x_names = np.full((n_all, 0), np.nan), []
    if n:
        x_ok, x_names = _design(frame[ok].reset_index(drop=True), covariates)
        x_all = np.full((n_all, x_ok.shape[1]), np.nan)
        x_all[ok] = x_ok
    y = pd.to_numeric(frame[outcome], errors="coerce").to_numpy(dtype=float)[ok]
    d = pd.to_numeric(frame[exposure], errors="coerce").to_numpy(dtype=float)[ok]
    z = z_all[ok]
    w = x_all[ok]
    if n <= w.shape[1] + 2:
        raise ConfigError(f"{n} complete cases cannot estimate {w.shape[1] + 1} coefficients.")
    if np.ptp(z) == 0:
        raise ConfigError(f"instrument {instrument!r} takes one value in the complete cases.")
    if np.ptp(d) == 0:
        raise ConfigError(f"exposure {exposure!r} takes one value in the complete cases.")
    if np.linalg.matrix_rank(np.column_stack([z, d, w])) < w.shape[1] + 2:
        raise ConfigError(
            "the design is singular: a covariate is constant or a combination of the others "
            "(or of the instrument or exposure) in the complete cases. Fix: drop it."
        )
    # First stage: exposure on instrument and covariates; F of the instrument (classical).
    zw = np.column_stack([z, w])
    gamma, resid_u = _ols(d, zw)
    _, resid_r = _ols(d, w)
    df_first = n - zw.shape[1]
    rss_u, rss_r = float(resid_u @ resid_u), float(resid_r @ resid_r)
    f_stat = (rss_r - rss_u) / (rss_u / df_first) if rss_u > 0 else math.inf
    first_cov = _sandwich(zw, resid_u, None)
    first = _tidy(
        [instrument, *x_names], gamma, np.sqrt(np.diag(first_cov)), df_first, alpha,
        model="first stage",
    )  # fmt: skip
    # Second stage: the outcome on the projected exposure; residuals with the actual exposure.
    dhat = zw @ gamma
    xhat = np.column_stack([dhat, w])
    beta, _ = _ols(y, xhat)
    resid = y - np.column_stack([d, w]) @ beta
    cov = _sandwich(xhat, resid, robust)
    df = n - xhat.shape[1]
    table = _tidy(
        [exposure, *x_names], beta, np.sqrt(np.diag(cov)), df, alpha, model="2SLS",
        robust=robust or "classical",
    )  # fmt: skip
    # The association beside it: OLS of the outcome on the exposure and covariates.
    xd = np.column_stack([d, w])
    b_naive, r_naive = _ols(y, xd)
    naive = _tidy(
        [exposure], b_naive[:1], np.sqrt(np.diag(_sandwich(xd, r_naive, robust)))[:1], df,
        alpha, model="OLS (association)",
    )  # fmt: skip
    weak = bool(f_stat < WEAK_F)
    notes = [f"assumes {a}" for a in IV_ASSUMPTIONS]
    notes.append(f"first-stage F = {f_stat:.1f} (instrument {instrument!r} on {exposure!r})")
    if weak:
        notes.append(
            f"weak instrument: first-stage F = {f_stat:.1f} < {WEAK_F:g}; the estimate is biased "
            "towards the association and its interval is unreliable"
        )
    if n < n_all:
        notes.append(f"{n_all - n} patient(s) with a missing value left out (complete cases)")
    return ComplierEffect(
        table, n, notes, first_stage_f=float(f_stat), first_stage=first, naive=naive, weak=weak
    )


def _rr_e_value(rr: float) -> float:
    """E-value of a risk ratio: ``RR + sqrt(RR (RR - 1))`` for RR >= 1, of ``1/RR`` below 1."""
    if not np.isfinite(rr) or rr <= 0:
        return float("nan")
    rr = rr if rr >= 1 else 1 / rr
    return float(rr + math.sqrt(rr * (rr - 1)))


def _as_risk_ratio(value: float, scale: str, rare: bool) -> float:
    """VanderWeele & Ding's approximations of a risk ratio from the other scales."""
    if scale == "RR" or (scale in ("OR", "HR") and rare):
        return value
    if scale == "OR":  # common outcome
        return math.sqrt(value)
    if scale == "HR":  # common outcome
        return (1 - 0.5 ** math.sqrt(value)) / (1 - 0.5 ** math.sqrt(1 / value))
    return math.exp(0.91 * value)  # SMD: a difference in outcome standard deviations


def e_value(
    estimate: float,
    ci_low: float | None = None,
    ci_high: float | None = None,
    *,
    scale: str = "RR",
    rare: bool = False,
) -> pd.DataFrame:
    """VanderWeele & Ding's (2017) E-value of an estimate and of its confidence limit.

    The E-value is the smallest strength of association, on the risk-ratio scale, that an
    unmeasured confounder would need with both the exposure and the outcome (beyond the
    measured covariates) to move the estimate to the null; the E-value of the limit nearer the
    null moves the interval to include it (1 when it already does).

    Parameters
    ----------
    estimate, ci_low, ci_high : float
        On the ``scale`` given: a ratio for RR, OR and HR; for ``"SMD"`` a difference in outcome
        standard deviations (e.g. an NPRS difference divided by the NPRS SD).
    scale : {"RR", "OR", "HR", "SMD"}
        OR and HR of a common outcome (``rare=False``) are turned into risk ratios by
        ``sqrt(OR)`` and ``(1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))``; an SMD ``d`` by
        ``exp(0.91 d)``, as in VanderWeele & Ding (2017).
    rare : bool
        The outcome is rare (< 15%): OR and HR are used as risk ratios.

    Returns
    -------
    DataFrame
        One row: ``estimate``, ``risk_ratio`` (the estimate as a risk ratio), ``e_value``,
        ``e_value_ci`` (of the limit nearer the null; NaN without limits).

    Examples
    --------
    >>> e_value(3.9, 1.8, 8.7).round(2).to_dict("records")  # VanderWeele & Ding (2017)
    [{'estimate': 3.9, 'risk_ratio': 3.9, 'e_value': 7.26, 'e_value_ci': 3.0}]
    """
    check_option("scale", scale, ("RR", "OR", "HR", "SMD"), what="'RR', 'OR', 'HR' or 'SMD'")
    null = 0.0 if scale == "SMD" else 1.0
    for name, v in (("estimate", estimate), ("ci_low", ci_low), ("ci_high", ci_high)):
        if v is not None and (not np.isfinite(v) or (scale != "SMD" and v <= 0)):
            raise ConfigError(
                f"{name}={v!r}; allowed: a finite number" + ("" if scale == "SMD" else " > 0")
            )
    rr = _as_risk_ratio(float(estimate), scale, rare)
    ev_ci = float("nan")
    if ci_low is not None and ci_high is not None:
        if ci_low > ci_high:
            raise ConfigError(f"ci_low={ci_low} > ci_high={ci_high}.")
        if ci_low <= null <= ci_high:
            ev_ci = 1.0
        else:
            near = ci_low if estimate > null else ci_high
            ev_ci = _rr_e_value(_as_risk_ratio(float(near), scale, rare))
    return pd.DataFrame(
        [
            {
                "estimate": float(estimate),
                "risk_ratio": rr,
                "e_value": _rr_e_value(rr),
                "e_value_ci": ev_ci,
            }
        ]
    )


# ------------------------------------------------------------------ marginal structural models
#: A stabilised weight above this makes :func:`ipw_msm` warn that its intervals may be too narrow.
HEAVY_WEIGHT = 20.0

#: The assumptions of :func:`ipw_msm`, as its notes state them.
MSM_ASSUMPTIONS = (
    "no unmeasured confounding: given the measured history (the time-varying confounders, "
    "past treatment and the baseline covariates), treatment each period is as if randomised",
    "positivity: every patient could have been treated or not in every period (see the "
    "positivity check)",
    "consistency: the outcome under the treatment received is the outcome observed",
    "the weight models (pooled logistic regressions) are correctly specified",
)


@dataclass
class MSMResult(Estimates):
    """:func:`ipw_msm`'s result: the protocol's ``table``, ``n``, ``notes``, ``figure()``, plus:

    Attributes
    ----------
    weights : DataFrame
        Per patient: ``id``, the stabilised treatment weight, the censoring weight and the
        weight used (their product, after truncation).
    weight_summary : DataFrame
        Mean, SD, minimum, 1st/50th/99th percentiles and maximum of the weights used (stabilised
        weights should average about 1).
    positivity : dict
        ``rows``: person-periods; ``extreme``: share of them whose probability of the treatment
        received, given the history, is below 0.05 (practical positivity violations).
    naive : DataFrame
        The unweighted regression of the outcome on the cumulative treatment and the baseline
        covariates (an association).
    """

    weights: pd.DataFrame = field(default_factory=pd.DataFrame)
    weight_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    positivity: dict = field(default_factory=dict)
    naive: pd.DataFrame = field(default_factory=pd.DataFrame)


def _check_long(data, outcome_data, columns, id: str, outcome: str) -> None:
    """The long frame and the outcome frame have the columns the method names."""
    for name, frame, need in (
        ("data", data, columns),
        ("outcome_data", outcome_data, [id, outcome]),
    ):
        missing = [c for c in need if c not in frame]
        if missing:
            raise ConfigError(f"{name} lacks column(s) {missing}; it has {list(frame)}.")


def _logistic_probability(frame: pd.DataFrame, formula: str) -> np.ndarray:
    """Fitted probabilities of a pooled logistic regression given as a formula (patsy), by
    :func:`_logistic`, the one logistic fitter of this module."""
    from patsy import EvalEnvironment, dmatrices

    from ptanalytics.models._formula import formula_env

    y, x = dmatrices(formula, frame, eval_env=EvalEnvironment([formula_env()]))
    y = np.asarray(y, dtype=float)[:, 0]
    x = np.asarray(x, dtype=float)
    beta = _logistic(x, y, np.ones(len(y)))
    if beta is None:
        raise ConfigError(
            f"the logistic model {formula!r} does not converge: some period or covariate "
            "pattern predicts the outcome perfectly (positivity fails there). Fix: drop that "
            "period or coarsen the covariate."
        )
    from scipy.special import expit

    return expit(x @ beta)


def _weighted_fit(y, x, w, names, alpha, model) -> pd.DataFrame:
    """Weighted least squares with the robust (HC0) sandwich, as ``survey``/``geeglm`` use for
    inverse-probability weights (conservative: the weights' estimation is ignored)."""
    sw = np.sqrt(w)
    beta, *_ = np.linalg.lstsq(x * sw[:, None], y * sw, rcond=None)
    resid = y - x @ beta
    bread = np.linalg.inv((x * w[:, None]).T @ x)
    meat = (x * (w * resid)[:, None]).T @ (x * (w * resid)[:, None])
    cov = bread @ meat @ bread
    return _tidy(names, beta, np.sqrt(np.diag(cov)), len(y) - x.shape[1], alpha, model=model)


def _stabilised(frame, event: str, history: str, numerator: str) -> tuple[np.ndarray, np.ndarray]:
    """Per row: P(observed event | numerator terms) / P(observed event | history terms)."""
    observed = frame[event].to_numpy(dtype=float)
    den = _logistic_probability(frame, f"{event} ~ {history}")
    num = _logistic_probability(frame, f"{event} ~ {numerator}")
    p_den = np.where(observed == 1, den, 1 - den)
    p_num = np.where(observed == 1, num, 1 - num)
    return p_num / p_den, p_den


def ipw_msm(
    data: pd.DataFrame,
    *,
    id: str,
    time: str,
    treatment: str,
    confounders: Sequence[str],
    outcome_data: pd.DataFrame,
    outcome: str,
    baseline: Sequence[str] = (),
    censored: str | None = None,
    truncate: tuple[float, float] | None = None,
    alpha: float = 0.05,
) -> MSMResult:
    """Inverse-probability-weighted marginal structural model of a time-varying treatment.

    ``E[Y^a] = b0 + psi * (number of treated periods) + baseline terms``: ``psi`` is the
    change in the outcome for each period treated, had every patient followed the treatment
    pattern (an effect, under the assumptions in the notes, unlike a regression that adjusts
    for the time-varying confounders, which is biased when treatment affects them).

    The stabilised weight of a patient is the product over periods of ``P(A_t | A_t-1, baseline,
    period) / P(A_t | confounders_t, A_t-1, baseline, period)`` (pooled logistic regressions with
    a separate intercept per period), times the same ratio for remaining uncensored when
    ``censored`` is given; ``truncate`` (percentiles, e.g. ``(1, 99)``) truncates the weights.
    The outcome is then regressed on the cumulative treatment and the baseline covariates by
    weighted least squares with robust (sandwich) standard errors.

    Parameters
    ----------
    data : DataFrame
        Long: one row per patient and period (``id``, ``time``), with the 0/1 ``treatment`` of
        the period (e.g. adhered: at least 80% of the prescribed sessions), the time-varying
        ``confounders`` measured before it (e.g. last week's NPRS), the ``baseline`` columns
        (constant within a patient) and, optionally, ``censored`` (1 in a patient's last period
        when they leave before the outcome).
    outcome_data : DataFrame
        One row per patient: ``id`` and ``outcome`` (missing for a censored patient).
    truncate : (low, high), optional
        Percentiles at which the weights are truncated.

    Returns
    -------
    MSMResult
        ``table``: ``cumulative_treatment`` (per period treated) and the baseline terms;
        ``naive``, ``weights``, ``weight_summary``, ``positivity``; ``notes``: the assumptions.
    """
    alpha = check_alpha(alpha)
    _check_long(data, outcome_data, [id, time, treatment, *confounders, *baseline], id, outcome)
    if truncate is not None and not (0 <= truncate[0] < truncate[1] <= 100):
        raise ConfigError(f"truncate={truncate!r}; allowed: percentiles (low, high), low < high.")
    cols = [id, time, treatment, *confounders, *baseline] + ([censored] if censored else [])
    long = data[cols].dropna().sort_values([id, time], kind="stable").reset_index(drop=True)
    a = long[treatment].to_numpy(dtype=float)
    if not np.isin(a, (0.0, 1.0)).all():
        raise ConfigError(f"treatment {treatment!r} must be 0/1 (or boolean) in every row.")
    first = ~long[id].duplicated()
    long["_a"] = a
    long["_lag"] = np.where(first, 0.0, np.r_[0.0, a[:-1]])
    long["_t"] = pd.Categorical(long[time])
    base = " + ".join(["_lag", "C(_t)", *baseline])
    hist = " + ".join([*confounders, base])
    ratio, p_den = _stabilised(long, "_a", hist, base)
    weights = pd.Series(ratio).groupby(long[id].to_numpy()).prod()
    cens_w = pd.Series(1.0, index=weights.index)
    if censored:
        long["_stay"] = 1.0 - long[censored].to_numpy(dtype=float)
        stay_ratio, _ = _stabilised(
            long, "_stay", " + ".join(["_a", *confounders, base]), " + ".join(["_a", base])
        )
        cens_w = pd.Series(stay_ratio).groupby(long[id].to_numpy()).prod()
    per = pd.DataFrame(
        {
            "id": weights.index,
            "treatment_weight": weights.to_numpy(),
            "censoring_weight": cens_w.reindex(weights.index).to_numpy(),
        }
    )
    per["weight"] = per["treatment_weight"] * per["censoring_weight"]
    if truncate is not None:
        lo, hi = np.percentile(per["weight"], truncate)
        per["weight"] = per["weight"].clip(lo, hi)
    cum = long.groupby(id, sort=False)["_a"].sum()
    first_rows = long[first.to_numpy()].set_index(id)
    patients = (
        per.set_index("id")
        .join(cum.rename("cumulative_treatment"))
        .join(first_rows[list(baseline)])
        .join(outcome_data.drop_duplicates(id).set_index(id)[[outcome]])
    )
    used = patients.dropna(subset=[outcome, "cumulative_treatment", *baseline])
    if len(used) <= 2 + len(baseline):
        raise ConfigError(f"{len(used)} patients with an outcome: too few for the model.")
    x = np.column_stack(
        [np.ones(len(used)), used["cumulative_treatment"], *(used[b] for b in baseline)]
    ).astype(float)
    names = ["Intercept", "cumulative_treatment", *baseline]
    y = used[outcome].to_numpy(dtype=float)
    table = _weighted_fit(y, x, used["weight"].to_numpy(float), names, alpha, "IPW MSM")
    naive = _weighted_fit(y, x, np.ones(len(used)), names, alpha, "unweighted (association)")
    w = used["weight"]
    summary = pd.DataFrame(
        [
            {
                "mean": w.mean(),
                "sd": w.std(),
                "min": w.min(),
                "p1": w.quantile(0.01),
                "p50": w.median(),
                "p99": w.quantile(0.99),
                "max": w.max(),
            }
        ]
    )
    extreme = float(np.mean(p_den < 0.05))
    notes = [f"assumes {a}" for a in MSM_ASSUMPTIONS]
    notes.append(
        f"stabilised weights: mean {w.mean():.2f} (about 1 when the models fit), range "
        f"{w.min():.2f} to {w.max():.2f}"
        + (f", truncated at percentiles {truncate}" if truncate else "")
    )
    if w.max() > HEAVY_WEIGHT:
        notes.append(
            f"the largest weight is {w.max():.0f}: a few patients carry the estimate and the "
            "robust intervals may be too narrow; compare truncate=(1, 99), which trades "
            "variance for bias"
        )
    if extreme > 0.01:
        notes.append(
            f"positivity: {100 * extreme:.1f}% of person-periods had a probability below 0.05 "
            "of the treatment they received; the weights are unstable there"
        )
    if len(used) < len(patients):
        notes.append(f"{len(patients) - len(used)} patient(s) without an outcome left out")
    return MSMResult(
        table.iloc[1:].reset_index(drop=True),
        len(used),
        notes,
        weights=per,
        weight_summary=summary,
        positivity={"rows": len(long), "extreme": extreme},
        naive=naive.iloc[1:].reset_index(drop=True),
    )


# ------------------------------------------------------------------------ parametric g-formula
#: The assumptions of :func:`gformula`, as its notes state them.
GFORMULA_ASSUMPTIONS = (
    "no unmeasured confounding: given the measured history, treatment each period is as if "
    "randomised",
    "positivity: the regimes compared are ones the patients could have followed",
    "consistency: the outcome under the treatment received is the outcome observed",
    "the models of the history are correctly specified (pain and the outcome: linear, "
    "Gaussian errors; the treatment: logistic, with a normal spread of each period's log-odds "
    "around it when a period has several sessions; on the whole history or on its summaries)",
)

#: The regimes :func:`gformula` knows by name: treated every period (every prescribed session),
#: never, and the natural course (treatment drawn from its fitted model, which should reproduce
#: the data). Three more are named with a value: ``natural+<x>``, the natural course with each
#: prescribed session's probability raised by x (capped at 1); ``natural+<q>*missed``, a share q
#: of the sessions the patient would have missed made up (p becomes p + q (1 - p)); and
#: ``keep>=<x>``, the natural
#: course except that a period (from the second) that opens with less than a share x of the
#: prescribed so far done is done in full (a dynamic regime: adherence kept at x).
REGIMES = ("always", "never", "natural")

_SHIFT = re.compile(r"(natural\s*\+|keep\s*>=)\s*([0-9]*\.?[0-9]+)(\s*\*\s*missed)?")


def _parse_regime(name) -> tuple[str, float]:
    """(kind, value) of a regime name: always, never, natural, add (natural+x), keep (keep>=x)."""
    if name in REGIMES:
        return str(name), 0.0
    m = _SHIFT.fullmatch(str(name).strip())
    if m and 0 < float(m.group(2)) <= 1 and not (m.group(3) and m.group(1).startswith("keep")):
        kind = "keep" if m.group(1).startswith("keep") else "make_up" if m.group(3) else "add"
        return kind, float(m.group(2))
    raise ConfigError(
        f"regime={name!r}; allowed: always, never, natural, natural+<x> (each prescribed "
        "session's probability raised by x, capped at 1), natural+<x>*missed (a share x of the "
        "sessions that would have been missed made up) or keep>=<x> (a period that opens with "
        "less than a share x of the prescribed so far done is done in full), 0 < x <= 1."
    )


def _treat(regime: tuple[str, float], prob, trials, u, done=None, due=None) -> np.ndarray:
    """Treatment of one period under ``regime``: the number of the ``trials`` prescribed done.

    ``prob`` is the fitted probability of each (the natural course; None for ``always`` and
    ``never``), ``u`` (n, max trials) the uniforms every regime shares (common random numbers: a
    regime that raises the probability never lowers anyone's count) and ``done``/``due`` the
    treatment and the prescribed so far under the regime (for ``keep``)."""
    kind, x = regime
    if kind == "always":
        return trials.astype(float)
    if kind == "never":
        return np.zeros(len(trials))
    if kind == "add":
        prob = np.minimum(prob + x, 1.0)
    elif kind == "make_up":
        prob = prob + x * (1.0 - prob)
    elif kind == "keep" and done is not None:
        prob = np.where((due > 0) & (done < x * due), 1.0, prob)
    slots = np.arange(u.shape[1])[None, :] < trials[:, None]
    return ((u < prob[:, None]) & slots).sum(axis=1).astype(float)


def _logistic(x: np.ndarray, y: np.ndarray, m: np.ndarray, w=None, start=None):
    """Coefficients of ``logit P = x b`` for ``y`` successes of ``m`` trials (frequency weights
    ``w``), by Newton's method; None when it does not converge (separation)."""
    from scipy.special import expit

    w = np.ones(len(y)) if w is None else w
    beta = np.zeros(x.shape[1]) if start is None else start.copy()
    for _ in range(100):
        prob = expit(x @ beta)
        grad = x.T @ (w * (y - m * prob))
        hess = (x * (w * m * prob * (1 - prob))[:, None]).T @ x
        # Least squares, not solve: a design may hold collinear columns (a schedule constant
        # over the data); the minimum-norm step leaves the fitted probabilities the same.
        step = np.linalg.lstsq(hess, grad, rcond=1e-10)[0]
        beta += step
        if np.max(np.abs(step)) < 1e-9:
            return beta if np.max(np.abs(x @ beta)) < 30 else None
    return None


def _wide(long: pd.DataFrame, id: str, time: str, cols: list[str]) -> tuple[pd.DataFrame, list]:
    """One row per patient, ``<col>_<k>`` per period k (periods in order)."""
    periods = sorted(long[time].unique())
    wide = long.pivot(index=id, columns=time, values=cols)
    wide.columns = [f"{c}_{periods.index(t)}" for c, t in wide.columns]
    return wide, periods


def _lstsq(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Coefficients and residual SD of the least-squares fit of ``y`` on ``x`` (with frequency
    weights ``w``: a bootstrap sample's counts)."""
    if w is None:
        beta, resid = _ols(y, x)
        return beta, float(np.sqrt(resid @ resid / max(len(y) - x.shape[1], 1)))
    sw = np.sqrt(w)
    beta = np.linalg.lstsq(x * sw[:, None], y * sw, rcond=None)[0]
    resid = y - x @ beta
    return beta, float(np.sqrt((w * resid * resid).sum() / max(w.sum() - x.shape[1], 1)))


# -- history="full": per-period models on the whole history (complete patients, 0/1 treatment)
def _fit_full(w: np.ndarray, lc: np.ndarray, a: np.ndarray, y: np.ndarray, fw) -> dict:
    """Per-period models on the whole history: each confounder (linear, Gaussian), the
    treatment (logistic, for the natural course and its shifts) and the outcome (linear).

    ``w`` baseline (n, b) with an intercept column; ``lc`` confounders (n, T, k); ``a``
    treatments (n, T); ``y`` outcome (n,); ``fw`` frequency weights (n,)."""
    n, periods, k = lc.shape
    models: dict = {"confounders": [], "treatment": []}
    for t in range(periods):
        past = np.column_stack([w, lc[:, :t, :].reshape(n, -1), a[:, :t]])
        models["confounders"].append([_lstsq(past, lc[:, t, j], fw) for j in range(k)])
        now = np.column_stack([past, lc[:, t, :]])
        models["treatment"].append(_logistic(now, a[:, t], np.ones(n), fw))
    models["outcome"] = _lstsq(np.column_stack([w, lc.reshape(n, -1), a]), y, fw)
    return models


def _simulate_full(models: dict, w: np.ndarray, k: int, periods: int, regime, seed) -> float:
    """Mean outcome under ``regime`` by Monte Carlo over the baseline rows ``w`` (the same
    ``seed`` for every regime: common random numbers)."""
    from scipy.special import expit

    rng = np.random.default_rng(seed)
    n = len(w)
    lc = np.zeros((n, periods, k))
    a = np.zeros((n, periods))
    ones = np.ones(n, dtype=np.int64)
    natural = np.zeros((n, periods))  # what each patient would have done, for the shifts
    shifts = regime[0] not in ("always", "never")
    for t in range(periods):
        past = np.column_stack([w, lc[:, :t, :].reshape(n, -1), a[:, :t]])
        for j, (beta, sd) in enumerate(models["confounders"][t]):
            lc[:, t, j] = past @ beta + sd * rng.standard_normal(n)
        u = rng.random((n, 1))
        coef = models["treatment"][t]
        if coef is None and shifts:
            return float("nan")
        now = np.column_stack([w, lc[:, :t, :].reshape(n, -1), natural[:, :t], lc[:, t, :]])
        prob = expit(now @ coef) if shifts else None
        a[:, t] = _treat(regime, prob, ones, u, a[:, :t].sum(axis=1), np.full(n, t))
        if shifts:
            natural[:, t] = _treat(("natural", 0.0), prob, ones, u)
    beta, _ = models["outcome"]
    return float(np.mean(np.column_stack([w, lc.reshape(n, -1), a]) @ beta))


# -- history="summary": models pooled over periods on summaries of the history (any length)
def _summaries(first, last, l_mean, a_last, a_sum, a_4, m_sum, m_4, t: int, periods: int):
    """The summaries of the history before period ``t``, as a list of columns (11 + 3k in all):
    the period (linear and quadratic), each confounder's first, last and mean value, and the
    treatment's last value, total (and its square), total over the last 4 periods, the share of
    the prescribed done so far and over the last 4 periods, and the empirical log-odds of the
    share done, alone and times the period (a patient's propensity is known better the longer
    they are seen)."""
    n = len(first)
    scale = max(periods, 1)
    rate = np.divide(a_sum, m_sum, out=np.zeros(n), where=m_sum > 0)
    rate_4 = np.divide(a_4, m_4, out=np.zeros(n), where=m_4 > 0)
    elogit = np.log((a_sum + 0.5) / (m_sum - a_sum + 0.5)) if t else np.zeros(n)
    return [
        np.full(n, t / scale),
        np.full(n, (t / scale) ** 2),
        first,
        last,
        l_mean,
        a_last,
        a_sum / scale,
        (a_sum / scale) ** 2,
        a_4,
        rate,
        rate_4,
        elogit,
        elogit * t / scale,
    ]


def _linear(parts: list, beta: np.ndarray) -> np.ndarray:
    """``column_stack(parts) @ beta`` without building the matrix (columns 1-D or 2-D)."""
    out = np.zeros(len(parts[0]))
    at = 0
    for part in parts:
        if part.ndim == 1:
            out += beta[at] * part
            at += 1
        else:
            width = part.shape[1]
            out += part @ beta[at : at + width]
            at += width
    return out


class _Running:
    """Running sums of a history, period by period, for :func:`_summaries`."""

    def __init__(self, first: np.ndarray, periods: int):
        self.first, self.last, self.l_sum = first, first, np.zeros_like(first)
        n = len(first)
        # Totals before each period (a row per period): the last 4 periods are a difference.
        self.a_cum = np.zeros((periods + 1, n))
        self.m_cum = np.zeros((periods + 1, n))
        self.a_last = np.zeros(n)
        self.t, self.periods = 0, periods

    def add(self, lc_t: np.ndarray, a_t: np.ndarray, m_t: np.ndarray) -> None:
        """Period ``t``'s confounders, treatment and prescribed count."""
        self.last, self.l_sum = lc_t, self.l_sum + lc_t
        t = self.t
        self.a_cum[t + 1] = self.a_cum[t] + a_t
        self.m_cum[t + 1] = self.m_cum[t] + m_t
        self.a_last = a_t
        self.t += 1

    def summaries(self) -> list:
        t = self.t
        if t == 0:
            zero = np.zeros(len(self.first))
            return _summaries(self.first, self.first, self.first, *[zero] * 5, 0, self.periods)
        back = max(t - 4, 0)
        a_sum, m_sum = self.a_cum[t], self.m_cum[t]
        return _summaries(
            self.first, self.last, self.l_sum / t, self.a_last, a_sum, a_sum - self.a_cum[back],
            m_sum, m_sum - self.m_cum[back], t, self.periods,
        )  # fmt: skip


def _history(lc: np.ndarray, a: np.ndarray, m: np.ndarray, t: int, periods: int) -> list:
    """:func:`_summaries` of the observed history before period ``t``."""
    run = _Running(lc[:, 0, :], periods)
    if t:
        run.a_cum[1 : t + 1] = np.cumsum(a[:, :t], axis=1).T
        run.m_cum[1 : t + 1] = np.cumsum(m[:, :t], axis=1).T
        run.t, run.last, run.a_last = t, lc[:, t - 1, :], a[:, t - 1]
        run.l_sum = lc[:, :t, :].sum(axis=1)
    return run.summaries()


def _summary_designs(w, lc, a, m, sched, y) -> dict:
    """The pooled design of each model over the rows observed (patient, period), with each
    row's patient: confounders at periods 1..T-1 given the history; treatment at 0..T-1 given
    the history, the period's schedule and the current confounders; outcome given the whole."""
    periods = lc.shape[1]
    seen_l = np.cumprod(~np.isnan(lc).any(axis=2), axis=1).astype(bool)
    seen_a = np.cumprod(~np.isnan(a), axis=1).astype(bool) & seen_l
    conf, treat = [], []
    for t in range(periods):
        hist = np.column_stack([w, *_history(lc, a, m, t, periods), sched[:, t, :], m[:, t]])
        if t >= 1:
            rows = np.flatnonzero(seen_l[:, t] & seen_a[:, t - 1])
            conf.append((rows, hist[rows], lc[rows, t, :]))
        rows = np.flatnonzero(seen_a[:, t])
        treat.append(
            (rows, np.column_stack([hist[rows], lc[rows, t, :]]), a[rows, t], m[rows, t],
             np.full(len(rows), t))
        )  # fmt: skip
    done = np.flatnonzero(seen_a[:, -1] & ~np.isnan(y))
    out_x = np.column_stack([w, *_history(lc, a, m, periods, periods)])[done]

    def stack(parts, j):
        return np.concatenate([p[j] for p in parts]) if parts else np.zeros((0,))

    return {
        "conf": (stack(conf, 0), stack(conf, 1), stack(conf, 2)) if conf else None,
        "treat": tuple(stack(treat, j) for j in range(4)),
        "period": stack(treat, 4).astype(np.int64),
        "outcome": (done, out_x, y[done]),
        "completed": int(seen_a[:, -1].sum()),
    }


def _fit_summary(designs: dict, counts: np.ndarray, start=None) -> dict:
    """Pooled models with the bootstrap sample's patient ``counts`` as frequency weights; the
    treatment's latent spread (:func:`_overdispersion`) with its mean model."""
    models: dict = {}
    if designs["conf"] is not None:
        rows, x, lc = designs["conf"]
        fw = counts[rows]
        models["confounders"] = [_lstsq(x, lc[:, j], fw) for j in range(lc.shape[1])]
    rows, x, a, m = designs["treat"]
    coef = _logistic(x, a, m, counts[rows], start)
    models["treatment"] = coef
    if coef is not None:
        sigma = _overdispersion(x @ coef, a, m, designs["period"], counts[rows])
        models["sigma"], models["latent_mu"] = sigma, _latent_table(sigma)
    rows, x, y = designs["outcome"]
    models["outcome"] = _lstsq(x, y, counts[rows])
    return models


#: Nodes and weights (summing to 1) of the standard normal for :func:`_latent_moments`: 121 equally
#: spaced nodes on [-8, 8] weighted by the density. Against 2,001 nodes on [-9, 9] the mean and
#: second moment agree to 1e-15 up to a latent SD of 3 and 4e-8 at 8; Gauss-Hermite with 24
#: nodes was off by 3e-4 at SD 3 and 0.02 at 8 (the sigmoid's step is narrower than its nodes).
_NORMAL_NODES = np.linspace(-8.0, 8.0, 121)
_NORMAL_WEIGHTS = np.exp(-0.5 * _NORMAL_NODES**2) / np.exp(-0.5 * _NORMAL_NODES**2).sum()
#: The grid of latent log-odds on which :func:`_latent_moments` tabulates a period's latent
#: probability.
_LATENT_GRID = np.linspace(-14.0, 14.0, 281)
_MAX_SIGMA = 8.0


def _latent_moments(sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(periods, grid) mean and second moment of the probability ``expit(mu + sigma z)``, z
    standard normal, at each ``mu`` of :data:`_LATENT_GRID`, for each period's ``sigma``."""
    from scipy.special import expit

    p = expit(_LATENT_GRID[None, :, None] + sigma[:, None, None] * _NORMAL_NODES)
    return p @ _NORMAL_WEIGHTS, (p * p) @ _NORMAL_WEIGHTS


def _overdispersion(eta, a, m, period, w) -> np.ndarray:
    """The SD of a normal random effect on the log-odds of a patient's sessions that period
    (an observation-level random effect: Harrison 2014), by the method of moments.

    The pooled logistic model gives each row's mean probability ``expit(eta)``; with ``m``
    sessions prescribed, the latent probability ``p`` (mean the fitted one, log-odds normal with
    SD ``sigma``) makes ``E[a (a - 1)] = m (m - 1) E[p^2]``, which grows with ``sigma``; the
    equation summed over the rows is solved by bisection, once for the first period (no history
    seen: the spread of patients' propensities) and once for the later ones pooled (what their
    history does not tell; per-period values swing with the schedule, e.g. 0 where phases end).
    Patients differ in their propensity beyond what their history shows: a binomial makes their
    adherence less spread and less persistent than it is. Returns (first period, later periods);
    0 where no row has two sessions or the data are not overdispersed."""
    from scipy.special import expit

    pbar = expit(eta)
    w = w * (m >= 2)
    group = (period > 0).astype(np.int64)
    target = np.bincount(group, w * a * (a - 1), minlength=2)
    # The rows' pairs of sessions, pooled in 4,096 bins of the mean probability at their
    # weighted mean (E[p^2] is smooth in it: the pooling moves the sum by about 1e-8 of it).
    pairs = w * m * (m - 1)
    bins = np.minimum((pbar * 4096).astype(np.int64), 4095) + 4096 * group
    weight = np.bincount(bins, pairs, minlength=8192).reshape(2, -1)
    where = np.divide(np.bincount(bins, pairs * pbar, minlength=8192).reshape(2, -1), weight,
                      out=np.zeros((2, 4096)), where=weight > 0)  # fmt: skip

    def excess(sigma):  # model minus data, per group: increasing in sigma
        mean, second = _latent_moments(sigma)
        model = [(weight[g] * np.interp(where[g], mean[g], second[g])).sum() for g in range(2)]
        return np.array(model) - target

    # Bisection in [0, _MAX_SIGMA], both groups at once: a group not overdispersed at 0 gets 0.
    lo, hi = np.zeros(2), np.full(2, _MAX_SIGMA)
    while np.max(hi - lo) > 1e-4:
        mid = 0.5 * (lo + hi)
        below = excess(mid) < 0
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return np.where(excess(np.zeros(2)) >= 0, 0.0, 0.5 * (lo + hi))


def _summary_draws(n: int, periods: int, k: int, width: int, rng) -> tuple:
    """The random numbers of one Monte Carlo run, drawn once and shared by every regime (common
    random numbers): the confounders' standard normals (periods, n, k), the sessions' uniforms
    (periods, n, width) and the standard normals of each period's latent log-odds (periods, n)."""
    return (
        rng.standard_normal((periods, n, k)),
        rng.random((periods, n, width)),
        rng.standard_normal((periods, n)),
    )


#: The uniform grid of the treatment model's linear predictor on which :func:`_latent_table`
#: tabulates the latent log-odds (looked up by arithmetic, not by search: np.interp's search cost
#: a fit with 200 bootstrap samples about 10 s).
_ETA_GRID = np.linspace(-14.0, 14.0, 561)


def _latent_table(sigma: np.ndarray) -> np.ndarray:
    """(2, len(_ETA_GRID)): for the first period and the later ones (their latent SDs
    ``sigma``), the latent log-odds ``mu`` at which ``expit(mu + sigma z)``, z standard normal,
    has the mean ``expit(eta)``, at each ``eta`` of :data:`_ETA_GRID`."""
    from scipy.special import expit

    mean = _latent_moments(sigma)[0]
    p = expit(_ETA_GRID)
    return np.array([np.interp(p, mean[g], _LATENT_GRID) for g in range(len(sigma))])


def _latent_probability(models: dict, t: int, eta: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Period ``t``'s latent probability of each session: log-odds normal with the period's SD,
    placed so that its mean is the treatment model's ``expit(eta)`` (:func:`_overdispersion`),
    at the standard normals ``z``."""
    from scipy.special import expit

    later = min(t, 1)  # the first period, or the later ones
    sigma = models["sigma"][later]
    if sigma == 0:
        return expit(eta)
    table = models["latent_mu"][later]
    step = _ETA_GRID[1] - _ETA_GRID[0]
    x = np.clip((eta - _ETA_GRID[0]) / step, 0, len(_ETA_GRID) - 1.000001)
    i = x.astype(np.int64)
    mu = table[i] + (x - i) * (table[i + 1] - table[i])
    return expit(mu + sigma * z)


def _simulate_summary(models, w, l0, m, sched, regime, draws, trace=None) -> float:
    """Mean outcome under ``regime``: patients (baseline ``w``, first confounders ``l0``,
    schedule ``m``/``sched``) run forward period by period with :func:`_summary_draws`; each
    period's treatment is appended to the list ``trace`` when one is given (for checks)."""

    periods = m.shape[1]
    normals, uniforms, latent = draws
    shifts = regime[0] not in ("always", "never")
    coef = models["treatment"]
    if coef is None and shifts:
        return float("nan")
    # The history as the regime made it, and with each patient's own (natural) treatment, which
    # the treatment model sees: past treatment stands for the patient's propensity. Under the
    # natural course and always/never only the first is needed.
    made = _Running(l0, periods)
    own = _Running(l0, periods) if shifts and regime[0] != "natural" else None
    lc_t = l0
    for t in range(periods):
        period = [sched[:, t, :], m[:, t]]
        summaries = made.summaries()
        hist = [w, *summaries, *period]
        if t >= 1:
            lc_t = np.column_stack(
                [_linear(hist, beta) + sd * normals[t, :, j] for j, (beta, sd) in
                 enumerate(models["confounders"])]
            )  # fmt: skip
        u = uniforms[t]
        trials = m[:, t].astype(np.int64)
        prob = None
        if shifts:
            seen = summaries if own is None else own.summaries()
            prob = _latent_probability(models, t, _linear([w, *seen, *period, lc_t], coef),
                                       latent[t])  # fmt: skip
        a_t = _treat(regime, prob, trials, u, made.a_cum[t], made.m_cum[t])
        made.add(lc_t, a_t, m[:, t])
        if trace is not None:
            trace.append(a_t)
        if own is not None:
            own.add(lc_t, _treat(("natural", 0.0), prob, trials, u), m[:, t])
    beta, _ = models["outcome"]
    return float(np.mean(_linear([w, *made.summaries()], beta)))


HISTORIES = ("full", "summary")


def gformula(
    data: pd.DataFrame,
    *,
    id: str,
    time: str,
    treatment: str,
    confounders: Sequence[str],
    outcome_data: pd.DataFrame,
    outcome: str,
    baseline: Sequence[str] = (),
    regimes: Sequence[str] = REGIMES,
    reference: str = "never",
    contrasts: Sequence[tuple[str, str]] | None = None,
    history: str = "full",
    trials: str | None = None,
    schedule: Sequence[str] = (),
    n_sim: int = 10_000,
    bootstrap: int = 200,
    seed: int,
    alpha: float = 0.05,
) -> Estimates:
    """The parametric g-formula (Robins 1986): the mean outcome had every patient followed a
    treatment regime, by Monte Carlo over fitted models of the time-varying history.

    Regimes: ``always`` (treated every period; every prescribed session with ``trials``),
    ``never``, ``natural`` (the fitted treatment model, a check that the models reproduce the
    observed mean), ``natural+0.1`` (each prescribed session's probability raised by 0.1, capped
    at 1), ``natural+0.25*missed`` (a quarter of the sessions that would have been missed made
    up) and ``keep>=0.8`` (natural, except that a period from the second on that opens with
    less than 80% of the prescribed so far done is done in full). The
    table gives the mean under each regime and each regime against ``reference`` (or the pairs
    in ``contrasts``).

    ``history="full"`` (short designs): for each period ``t`` each confounder is regressed on
    the whole past (baseline, earlier confounders and treatments; Gaussian errors with that
    period's residual SD), the 0/1 treatment on the past and the current confounders
    (logistic), the outcome on the whole history; complete patients only (others are counted
    in the notes). ``history="summary"`` (any number of periods, censoring): one model pooled
    over periods for each confounder, the treatment and the outcome, on summaries of the
    history (the period, linear and quadratic; each confounder's first, last and mean value;
    the treatment's last value, total, total squared and total over the last 4 periods; the
    period's ``schedule`` columns and prescribed ``trials``); with ``trials`` the treatment is
    the number done of that many prescribed: binomial given a latent probability whose log-odds
    are normal around the logistic model's (an observation-level random effect, its SD estimated
    by moments for the first period and for the later ones pooled), because patients differ in
    their propensity beyond what their history shows; the shifts act on that latent probability,
    as they would on a patient's own. Each model is fitted on the periods a
    patient was observed through, so patients who leave count until they leave (censoring at
    random given the measured history); the regimes are simulated with nobody leaving.

    ``n_sim`` patients drawn from the baseline rows (with their first confounder values and
    schedule) are simulated forward under each regime with common random numbers; intervals are
    nonparametric bootstrap percentiles (patients resampled, every model refitted,
    ``bootstrap`` times).

    Returns
    -------
    Estimates
        ``table``: one row per regime (``term`` = ``mean under <regime>``) and one per contrast
        (``<regime> vs <reference>``): ``estimate``, ``std_error`` (bootstrap SD), ``ci_low``,
        ``ci_high`` (percentiles); ``notes``: the assumptions, the observed mean beside the
        natural course, the patients left out or censored. ``n``: patients used.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> n = 3000; u = rng.normal(size=n); prev = np.zeros(n); rows = []; total = np.zeros(n)
    >>> for t in range(3):
    ...     pain = 0.8 * u - 0.6 * prev + rng.normal(size=n)
    ...     a = (rng.random(n) < 1 / (1 + np.exp(0.2 - 0.5 * pain))).astype(float)
    ...     rows.append(pd.DataFrame({"pid": range(n), "week": t, "a": a, "pain": pain}))
    ...     total += a; prev = a
    >>> long = pd.concat(rows); y = -0.5 * total + 1.5 * u + rng.normal(size=n)
    >>> out = pd.DataFrame({"pid": range(n), "y": y})
    >>> fit = gformula(long, id="pid", time="week", treatment="a", confounders=["pain"],
    ...                outcome_data=out, outcome="y", bootstrap=20, seed=1)
    >>> row = fit.table.set_index("term").loc["always vs never"]  # the truth is 3 x -0.5
    >>> bool(row["ci_low"] <= -1.5 <= row["ci_high"]), round(float(row["estimate"]), 1)
    (True, -1.7)
    """
    from ptanalytics._checks import check_seed

    alpha = check_alpha(alpha)
    seed = check_seed(seed)
    check_option("history", history, HISTORIES, what=", ".join(HISTORIES))
    parsed = {r: _parse_regime(r) for r in (*regimes, reference)}
    names = list(dict.fromkeys([*regimes, reference]))
    pairs = [(r, reference) for r in names if r != reference] if contrasts is None else contrasts
    for pair in pairs:
        if len(pair) != 2 or any(r not in parsed for r in pair):
            raise ConfigError(
                f"contrast {pair!r}; allowed: pairs of the regimes asked for ({names})."
            )
    for name, value, low in (("n_sim", n_sim, 100), ("bootstrap", bootstrap, 10)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name}={value!r}; allowed: a whole number >= {low}.")
    if history == "full" and (trials is not None or schedule):
        raise ConfigError(
            "trials= and schedule= need history='summary' (the full-history models take a 0/1 "
            "treatment and no schedule)."
        )
    extra = ([trials] if trials else []) + list(schedule)
    _check_long(
        data, outcome_data, [id, time, treatment, *confounders, *baseline, *extra], id, outcome
    )
    if data.duplicated([id, time]).any():
        raise ConfigError(f"data has more than one row for some ({id}, {time}); allowed: one.")
    rng = np.random.default_rng(seed)
    if history == "full":
        fitter = _full_fitter(data, outcome_data, id, time, treatment, confounders, outcome,
                              baseline)  # fmt: skip
    else:
        fitter = _summary_fitter(data, outcome_data, id, time, treatment, confounders, outcome,
                                 baseline, trials, list(schedule))  # fmt: skip
    n_patients = fitter["n"]

    def estimates(counts: np.ndarray, draw_seed: int, start=None) -> tuple[dict, object]:
        models = fitter["fit"](counts, start)
        pool = np.repeat(np.arange(n_patients), counts.astype(np.int64))
        sim_rows = pool[np.random.default_rng(draw_seed).integers(0, len(pool), n_sim)]
        # Common random numbers: every regime uses the same draws.
        draws = fitter["draws"](n_sim, draw_seed + 1)
        out = {r: fitter["simulate"](models, sim_rows, parsed[r], draws) for r in names}
        return out, models

    point, point_models = estimates(np.ones(n_patients), int(rng.integers(2**31)))
    start = point_models.get("treatment") if isinstance(point_models, dict) else None
    boots = []
    for _ in range(bootstrap):
        counts = np.bincount(rng.integers(0, n_patients, n_patients), minlength=n_patients)
        boots.append(estimates(counts.astype(float), int(rng.integers(2**31)), start)[0])
    rows = []
    for term, fn in [
        *((f"mean under {r}", lambda e, r=r: e[r]) for r in names),
        *((f"{r} vs {ref}", lambda e, r=r, ref=ref: e[r] - e[ref]) for r, ref in pairs),
    ]:
        values = np.array([fn(b) for b in boots])
        lo, hi = np.nanpercentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
        rows.append(
            {
                "term": term,
                "estimate": fn(point),
                "std_error": float(np.nanstd(values, ddof=1)),
                "ci_low": lo,
                "ci_high": hi,
                "p_value": np.nan,
                "model": "g-formula",
            }
        )
    notes = [f"assumes {x}" for x in GFORMULA_ASSUMPTIONS]
    if history == "summary":
        notes.append(
            "the models use summaries of the history (first, last and mean confounder values; "
            "last, total and recent treatment) pooled over periods; patients who left count "
            "until they left (censoring assumed at random given the measured history)"
        )
        sigma = point_models.get("sigma") if isinstance(point_models, dict) else None
        if sigma is not None and len(sigma):
            notes.append(
                f"the sessions' latent log-odds spread (SD) beyond the treatment model: "
                f"{sigma[0]:.2f} in the first period, {sigma[-1]:.2f} later (0: binomial)"
            )
    if "natural" in point:
        notes.append(
            f"natural course {point['natural']:.3f} against the observed mean "
            f"{fitter['observed_mean']:.3f} (they should agree when the models fit and nobody "
            "left, or those who left are like those who stayed given their history)"
        )
    notes.append(
        f"{n_sim} simulated patients per regime, {bootstrap} bootstrap samples, seed {seed}"
    )
    notes.extend(fitter["notes"])
    return Estimates(pd.DataFrame(rows), n_patients, notes)


def _full_fitter(data, outcome_data, id, time, treatment, confounders, outcome, baseline):
    """Fit and simulate closures of ``history="full"`` (complete patients)."""
    wide, periods = _wide(data, id, time, [treatment, *confounders])
    base = data.sort_values(time, kind="stable").drop_duplicates(id).set_index(id)[list(baseline)]
    y = outcome_data.drop_duplicates(id).set_index(id)[outcome]
    table = wide.join(base).join(y.rename("_y"))
    complete = table.dropna()
    n_all, n = len(table), len(complete)
    if n < 10 * (2 + len(periods) * (1 + len(confounders)) + len(baseline)):
        raise ConfigError(
            f"{n} complete patients for {len(periods)} periods: too few for the g-formula's "
            "models (about ten patients per coefficient); history='summary' needs fewer."
        )
    k, nt = len(confounders), len(periods)
    a = complete[[f"{treatment}_{t}" for t in range(nt)]].to_numpy(dtype=float)
    if not np.isin(a, (0.0, 1.0)).all():
        raise ConfigError(f"treatment {treatment!r} must be 0/1 in every period.")
    lc = np.stack(
        [complete[[f"{c}_{t}" for c in confounders]].to_numpy(dtype=float) for t in range(nt)],
        axis=1,
    )
    w = np.column_stack([np.ones(n), complete[list(baseline)].to_numpy(dtype=float)])
    yv = complete["_y"].to_numpy(dtype=float)
    notes = [f"{n_all - n} patient(s) with a missing period or outcome left out"][: n < n_all]
    return {
        "n": n,
        "fit": lambda counts, start: _fit_full(w, lc, a, yv, counts),
        "draws": lambda n_sim, seed: seed,
        "simulate": lambda models, rows, regime, seed: _simulate_full(
            models, w[rows], k, nt, regime, seed
        ),
        "observed_mean": float(yv.mean()),
        "notes": notes,
    }


def _summary_fitter(data, outcome_data, id, time, treatment, confounders, outcome, baseline,
                    trials, schedule):  # fmt: skip
    """Fit and simulate closures of ``history="summary"`` (pooled models, censoring)."""
    cols = [treatment, *confounders, *([trials] if trials else []), *schedule]
    wide, periods = _wide(data, id, time, cols)
    nt, k = len(periods), len(confounders)
    base = data.sort_values(time, kind="stable").drop_duplicates(id).set_index(id)[list(baseline)]
    y = outcome_data.drop_duplicates(id).set_index(id)[outcome].reindex(wide.index)
    first = [f"{c}_0" for c in confounders]
    keep = wide[first].notna().all(axis=1) & base.reindex(wide.index).notna().all(axis=1)
    wide, n_all = wide[keep], len(wide)
    n = len(wide)

    def block(col):
        return wide[[f"{col}_{t}" for t in range(nt)]].to_numpy(dtype=float)

    a = block(treatment)
    lc = np.stack([block(c) for c in confounders], axis=2)
    if trials:  # prescribed sessions are known after a patient leaves: carried forward
        m = pd.DataFrame(block(trials)).ffill(axis=1).bfill(axis=1).to_numpy()
        if np.isnan(m).any() or (m < 0).any() or (m != np.round(m)).any():
            raise ConfigError(f"trials {trials!r} must be a whole number >= 0 in every period.")
    else:
        m = np.ones((n, nt))
    sched = np.zeros((n, nt, len(schedule)))  # known in advance: carried over gaps
    for j, c in enumerate(schedule):
        sched[:, :, j] = pd.DataFrame(block(c)).ffill(axis=1).bfill(axis=1).to_numpy()
    seen = ~np.isnan(a)
    if ((a[seen] < 0) | (a[seen] > m[seen]) | (a[seen] != np.round(a[seen]))).any():
        raise ConfigError(
            f"treatment {treatment!r} must be "
            + (f"a whole number from 0 to {trials!r}" if trials else "0/1")
            + " in every observed period."
        )
    w = np.column_stack([np.ones(n), base.reindex(wide.index).to_numpy(dtype=float)])
    yv = y.to_numpy(dtype=float)
    designs = _summary_designs(w, lc, a, m, sched, yv)
    n_out = len(designs["outcome"][0])
    if n_out < 10 * (w.shape[1] + 11 + 3 * k):
        raise ConfigError(
            f"{n_out} patients observed through every period with an outcome: too few for the "
            "g-formula's outcome model (about ten patients per coefficient)."
        )
    notes = []
    if n < n_all:
        notes.append(f"{n_all - n} patient(s) without a first period or baseline left out")
    if designs["completed"] < n:
        notes.append(
            f"{n - designs['completed']} of {n} patients left (or missed a period) before the "
            "last period: counted until then"
        )
    return {
        "n": n,
        "fit": lambda counts, start: _fit_summary(designs, counts, start),
        "draws": lambda n_sim, seed: _summary_draws(
            n_sim, nt, k, max(int(m.max()), 1), np.random.default_rng(seed)
        ),
        "simulate": lambda models, rows, regime, draws, trace=None: _simulate_summary(
            models, w[rows], lc[rows, 0, :], m[rows], sched[rows], regime, draws, trace
        ),
        "observed_mean": float(designs["outcome"][2].mean()),
        "notes": notes,
    }


# ------------------------------------------------------------ target-trial emulation (one decision)
#: The assumptions of :func:`target_trial`, as its notes state them.
TTE_ASSUMPTIONS = (
    "no unmeasured confounding of the decision: given the covariates measured by the decision "
    "point, which strategy a patient's care followed is as if randomised",
    "positivity: at every covariate pattern some patients' care followed each strategy",
    "consistency: a patient whose care followed a strategy has the outcome that strategy gives",
    "the outcome is missing at random given the covariates and the strategy followed",
    "the models of following each strategy and of the outcome being observed (logistic, on "
    "the covariates) are correctly specified",
)

#: Fitted probabilities of following a strategy below this are positivity failures.
MIN_PROBABILITY = 0.01


def _distinct(x: np.ndarray, y: np.ndarray, rows: np.ndarray | None = None) -> tuple:
    """The distinct rows of ``[x | y]``: ``(x, y, inverse, rows)``, ``inverse`` mapping each
    input row to its distinct row and ``rows`` the input rows' patients (all by default)."""
    both = np.column_stack([x, y])
    inverse, _ = pd.MultiIndex.from_arrays(list(both.T)).factorize()  # hashing, no sort
    first = np.unique(inverse, return_index=True)[1]
    unique = both[first]
    rows = np.arange(len(y)) if rows is None else rows
    return unique[:, :-1], unique[:, -1], np.asarray(inverse, dtype=np.int64), rows


def _weighted_means(y, follow_p, observed_p, keep, counts) -> float:
    """Hajek mean of ``y`` over the clones ``keep`` (indices: those that followed the strategy
    with an outcome), weighted by 1 / (P(follow) P(observed | followed)) and the bootstrap
    counts; ``follow_p``/``observed_p`` None: unweighted (the per-protocol mean)."""
    w = counts[keep]
    if follow_p is not None:
        w = w / (follow_p[keep] * observed_p[keep])
    total = w.sum()
    return float(np.dot(w, y[keep]) / total) if total > 0 else float("nan")


def target_trial(
    data: pd.DataFrame,
    *,
    id: str,
    outcome: str,
    strategies: dict[str, str],
    covariates: Sequence[str],
    reference: str,
    observed_covariates: Sequence[str] | None = None,
    bootstrap: int = 200,
    seed: int,
    alpha: float = 0.05,
) -> Estimates:
    """Emulate a target trial of strategies decided at one point: clone, censor, weight.

    Every eligible patient is cloned into each strategy; a clone whose care did not follow the
    strategy at the decision point (``strategies[name]``: a 0/1 column, 1 = followed) is
    censored there, and the clones that followed are weighted by the inverse of the fitted
    probability of following it given the ``covariates`` measured by then (logistic), and of
    their outcome being observed (logistic, among the followers, on ``observed_covariates``,
    which may include what was measured after the decision, such as the last pain score before
    leaving; by default the ``covariates``). The
    mean outcome under each strategy is the weighted mean of the followers' outcomes (Hajek);
    intervals are nonparametric bootstrap percentiles (patients resampled, every model
    refitted). For example, "plan 8 guided weeks and extend by 2 when the improvement at the
    week-4 review is below 10%" against "a fixed 8 weeks", among patients planned 8 weeks:
    ``studies.causal_recovery.extension_rule_trial`` builds that frame from a cohort.

    Where a strategy was (almost) never followed at some covariate pattern — a rule the clinic
    did not use — the fitted probability is below ``MIN_PROBABILITY`` (0.01) for some clones:
    the estimate is then not given (NaN) and the notes say where positivity fails.

    Returns
    -------
    Estimates
        ``table``: ``mean under <strategy>`` and ``<strategy> vs <reference>`` rows
        (``estimate``, bootstrap ``std_error``, percentile ``ci_low``/``ci_high``), and beside
        them ``naive: <strategy> vs <reference>``, the unweighted difference between the
        patients whose care followed each (the per-protocol association); ``notes``:
        the assumptions, followers per strategy, weights and positivity. ``n``: patients.
    """
    from scipy.special import expit

    from ptanalytics._checks import check_seed

    alpha = check_alpha(alpha)
    seed = check_seed(seed)
    if reference not in strategies:
        raise ConfigError(f"reference={reference!r}; allowed: one of {list(strategies)}.")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 10:
        raise ConfigError(f"bootstrap={bootstrap!r}; allowed: a whole number >= 10.")
    need = [id, outcome, *strategies.values()]
    missing = [c for c in need if c not in data]
    if missing:
        raise ConfigError(f"data lacks column(s) {missing}; it has {list(data)}.")
    if data[id].duplicated().any():
        raise ConfigError(f"data has more than one row for some {id}; allowed: one per patient.")
    x, _ = _design(data, covariates)
    xo, _ = _design(data, covariates if observed_covariates is None else observed_covariates)
    complete = ~np.isnan(x).any(axis=1) & ~np.isnan(xo).any(axis=1)
    frame = data[complete].reset_index(drop=True)
    x, xo = x[complete], xo[complete]
    n = len(frame)
    if n < 20 * x.shape[1]:
        raise ConfigError(
            f"{n} eligible patients with the covariates: too few for the models of following "
            f"each strategy ({x.shape[1]} coefficients; about 20 patients per coefficient)."
        )
    y = frame[outcome].to_numpy(dtype=float)
    observed = ~np.isnan(y)
    y = np.where(observed, y, 0.0)
    followed = {}
    for name, column in strategies.items():
        f = frame[column].to_numpy(dtype=float)
        if not np.isin(f, (0.0, 1.0)).all():
            raise ConfigError(f"strategy column {column!r} must be 0/1 in every row.")
        followed[name] = f == 1
    ones = np.ones(n)
    # Each model is fitted on the distinct (covariates, response) rows with the patients'
    # bootstrap counts summed (the same likelihood; covariates are bands and scores, so a few
    # hundred rows stand for thousands of patients), from the point estimate's coefficients.
    follow_rows = {name: _distinct(x, f.astype(float)) for name, f in followed.items()}
    seen_rows = {
        name: _distinct(xo[f], observed[f].astype(float), np.flatnonzero(f))
        for name, f in followed.items()
    }
    kept = {name: np.flatnonzero(f & observed) for name, f in followed.items()}

    def probabilities(counts, names, starts) -> tuple[dict, dict]:
        """Per strategy of ``names``: P(follow) for every clone and P(observed | followed)
        (None: no fit), and the coefficients, each fit started from ``starts``' (by strategy
        and model)."""
        out, coefs = {}, {}
        for name in names:
            coef = []
            for key, (ux, uy, inv, rows) in (("f", follow_rows[name]), ("o", seen_rows[name])):
                w = np.bincount(inv, weights=counts[rows], minlength=len(uy))
                start = starts.get((name, key))
                coef.append(_logistic(ux, uy, np.ones(len(uy)), w, start))
            b_f, b_o = coef
            if b_f is None or b_o is None:
                out[name] = None
                continue
            out[name] = (expit(x @ b_f), expit(xo @ b_o))
            coefs[(name, "f")], coefs[(name, "o")] = b_f, b_o
        return out, coefs

    def estimates(counts, names, probs=None) -> dict:
        """The weighted mean under each strategy of ``names`` (NaN for the others and where
        positivity fails), and every strategy's per-protocol mean; ``probs``: the strategies'
        probabilities at ``counts`` when already fitted."""
        probs = probabilities(counts, names, starts)[0] if probs is None else probs
        result = {}
        for name in followed:
            p = probs.get(name)
            bad = p is None or np.any(p[0] < MIN_PROBABILITY)
            keep = kept[name]
            result[name] = float("nan") if bad else _weighted_means(y, p[0], p[1], keep, counts)
            # The per-protocol association: the followers with an outcome, unweighted.
            result["naive " + name] = _weighted_means(y, None, None, keep, counts)
        return result

    # The bootstrap samples' fits start from the point estimate's coefficients.
    point_probs, starts = probabilities(ones, list(followed), {})
    point = estimates(ones, list(followed), point_probs)
    # A strategy whose point estimate fails positivity has no estimate whatever the bootstrap
    # samples give: its models are not refitted in them (its per-protocol mean still is).
    supported = [name for name in followed if np.isfinite(point[name])]
    rng = np.random.default_rng(seed)
    boots = [
        estimates(np.bincount(rng.integers(0, n, n), minlength=n).astype(float), supported)
        for _ in range(bootstrap)
    ]
    rows = []
    others = [s for s in strategies if s != reference]
    naive = "per-protocol, unweighted (association)"
    emulated = "target trial (clone-censor-weight)"
    for term, fn in [
        *((f"mean under {s}", lambda e, s=s: e[s]) for s in strategies),
        *((f"{s} vs {reference}", lambda e, s=s: e[s] - e[reference]) for s in others),
        *(
            (f"naive: {s} vs {reference}", lambda e, s=s: e["naive " + s] - e["naive " + reference])
            for s in others
        ),
    ]:
        values = np.array([fn(b) for b in boots])
        usable = np.isfinite(fn(point)) and np.isfinite(values).mean() >= 0.9
        lo, hi = (
            np.nanpercentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
            if usable
            else (np.nan, np.nan)
        )
        rows.append(
            {
                "term": term,
                "estimate": fn(point) if usable else np.nan,
                "std_error": float(np.nanstd(values, ddof=1)) if usable else np.nan,
                "ci_low": lo,
                "ci_high": hi,
                "p_value": np.nan,
                "model": naive if term.startswith("naive") else emulated,
            }
        )
    notes = [f"assumes {a}" for a in TTE_ASSUMPTIONS]
    for name, f in followed.items():
        p = point_probs[name]
        notes.append(
            f"{name}: care of {int(f.sum())} of {n} patients followed it, "
            f"{int((f & observed).sum())} of them with an outcome"
        )
        if p is None:
            notes.append(f"{name}: the model of following it did not converge (separation)")
            continue
        low = f & (p[0] < MIN_PROBABILITY)
        never = int((p[0] < MIN_PROBABILITY).sum())
        if low.any() or never:
            notes.append(
                f"positivity fails for {name}: {never} patients had a fitted probability below "
                f"{MIN_PROBABILITY} of care following it (the clinic rarely or never did this "
                "for patients like them); no estimate is given"
            )
        else:
            w = 1 / (p[0][f & observed] * p[1][f & observed])
            notes.append(f"{name}: weights from {w.min():.2f} to {w.max():.2f}")
    notes.append(f"{bootstrap} bootstrap samples, seed {seed}")
    return Estimates(pd.DataFrame(rows), n, notes)
