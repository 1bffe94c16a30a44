"""Patient-level outcome models: dose-response of adherence, exercise-mix substitutions, program
length, and responder models (logistic regression and GEE).

All take one row per patient from :func:`ptanalytics.patient_summary` (or, for the GEE, the
model frame of repeated assessments from :func:`ptanalytics.models.trajectory.pain_model_frame`)
and fit ordinary statsmodels models; every result follows the protocol of
:mod:`ptanalytics.models._result` (``table``, ``n``, ``notes``, ``figure()``). They are
associations: neither adherence, nor the exercise mix, nor the actual program length was
randomised, and the actual length is partly decided by early response (see
:func:`program_length`).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats

from ptanalytics._checks import check_alpha, check_number, check_option
from ptanalytics.exceptions import ConfigError
from ptanalytics.metrics.composition import closure, has_composition, ilr, replace_zeros
from ptanalytics.metrics.responders import flag_responders
from ptanalytics.models._formula import formula_env
from ptanalytics.models._result import Estimates
from ptanalytics.models._splines import NaturalSpline
from ptanalytics.models._tidy import linear_contrast, tidy
from ptanalytics.vocab import CATEGORIES, SHARE_COLUMNS

__all__ = [
    "DEFAULT_COVARIATES",
    "DoseResponse",
    "OddsRatios",
    "ProgramLength",
    "Substitutions",
    "category_substitution",
    "dose_response",
    "no_exercise_time",
    "program_length",
    "responder_gee",
    "responder_logistic",
]

DEFAULT_COVARIATES = ("nprs_baseline", "age", "C(sex)", "C(chronicity)")
_SHARES = list(SHARE_COLUMNS)


def _column(term: str) -> str:
    """The column a covariate term reads: ``C(sex)`` reads ``sex``, ``age`` reads ``age``."""
    return term[2:-1] if term.startswith("C(") else term


def _usable_covariates(data: pd.DataFrame, covariates) -> list[str]:
    """Covariates present and not constant (a constant column cannot be estimated)."""
    keep = []
    for term in covariates:
        col = _column(term)
        if col in data and data[col].nunique(dropna=True) > 1:
            keep.append(term)
    return keep


def _complete(data: pd.DataFrame, cols: list[str], covs: list[str]) -> pd.DataFrame:
    """Complete cases of ``cols`` and the covariates' columns; categorical covariates as text
    so that unused levels disappear."""
    out = data.dropna(subset=[*cols, *(_column(c) for c in covs)]).reset_index(drop=True)
    for term in covs:
        if term.startswith("C("):
            out[_column(term)] = out[_column(term)].astype(str)
    return out


def _change(timepoint: str) -> str:
    check_option(
        "timepoint", timepoint, ("end_guided", "followup"), what="'end_guided' or 'followup'"
    )
    return f"nprs_change_{timepoint}"


# ---------------------------------------------------------------------------------- dose-response
@dataclass
class DoseResponse:
    """A fitted dose-response model.

    Attributes
    ----------
    table : DataFrame
        Tidy coefficients (spline terms are not interpretable one by one; read ``curve``).
    curve : DataFrame
        ``adherence`` (0-1), ``estimate`` (difference in NPRS change against adherence
        ``reference``, 0 by default: negative = more improvement), ``ci_low``, ``ci_high``.
    linear : DataFrame
        The same model with adherence linear, per 10 percentage points: one tidy row.
    n : int
        Patients used (complete cases of outcome, adherence and covariates).
    result : statsmodels OLS results
        The spline fit.
    notes : list of str
        The knots used.
    reference : float
        The adherence (0-1) the curve is a difference against.
    patient_adherence : Series
        The adherence (capped at 1) of the patients used, for a rug under the curve.
    covariates : list of str
        The covariate terms both fits (spline and linear) are adjusted for, as in their formula
        (e.g. ``nprs_baseline``, ``C(sex)``; those constant in the data are left out).

    ``figure()`` draws ``curve`` (:func:`ptanalytics.plotting.plot_dose_response`).
    """

    table: pd.DataFrame
    curve: pd.DataFrame
    linear: pd.DataFrame
    n: int
    result: object = None
    notes: list[str] = field(default_factory=list)
    reference: float = 0.0
    patient_adherence: pd.Series | None = None
    covariates: list[str] = field(default_factory=list)

    def figure(self, ax=None):
        """The dose-response curve with its confidence band and a rug of the adherence."""
        from ptanalytics.plotting import plot_dose_response

        return plot_dose_response(self, ax=ax)


def dose_response(
    summary: pd.DataFrame,
    *,
    timepoint: str = "end_guided",
    adherence: str | None = None,
    df: int = 3,
    covariates=DEFAULT_COVARIATES,
    alpha: float = 0.05,
    reference: float | str = 0.0,
) -> DoseResponse:
    """Change in NPRS against adherence, as a natural cubic spline, adjusted.

    ``nprs_change_<timepoint> ~ ns(adherence, df) + covariates`` by OLS (complete cases), with
    R's ``splines::ns`` basis (:class:`ptanalytics.models._splines.NaturalSpline`): interior knots
    at the type-7 quantiles of all the patients' adherence values, boundary knots at their range,
    so the fit is R's ``lm(change ~ ns(adherence, df = 3) + ...)``. The adherence is
    ``adherence_guided`` for the end of the guided phase and the overall ``adherence`` for the
    follow-up unless given (capped at 1). The curve is the predicted difference in change against
    a patient with the same covariates and adherence ``reference`` (the basis is evaluated on the
    grid with the training knots, linear beyond the boundary knots as R's ``predict.ns``), with
    pointwise Wald intervals of that contrast (its variance from the spline coefficients'
    covariance, so the band is narrowest near the reference).

    ``reference`` is an adherence in [0, 1] (default 0: no adherence, where few patients are and
    the band is wide) or ``"median"``, the median adherence of the patients used.

    Returns
    -------
    DoseResponse
        ``table`` (tidy rows ``term``, ``estimate``, ``std_error``, ``ci_low``, ``ci_high``,
        ``p_value``, ``model``, ``timepoint``; the spline columns are ``ns(adh)1`` ... as R
        names them), ``curve`` (``adherence``, ``estimate``, ``ci_low``, ``ci_high``,
        ``timepoint``), ``linear`` (one tidy row, per 10 points), ``n``, ``result``, ``notes``
        (the knots used).

    Examples
    --------
    >>> import ptanalytics as pt
    >>> from ptanalytics import models
    >>> summary = pt.patient_summary(pt.simulate_cohort(200, seed=1))
    >>> dr = models.dose_response(summary, timepoint="end_guided")
    >>> dr.n
    135
    >>> dr.linear[["term", "estimate"]].round(2)
                            term  estimate
    0  adherence (per 10 points)     -0.23
    >>> fig = dr.figure()  # the curve with its 95% band
    """
    alpha = check_alpha(alpha)
    outcome = _change(timepoint)
    adh = adherence or ("adherence_guided" if timepoint == "end_guided" else "adherence")
    for col in (outcome, adh):
        if col not in summary:
            raise ConfigError(f"summary has no column {col!r}; use patient_summary() output.")
    if isinstance(df, bool) or not isinstance(df, numbers.Integral) or df < 1:
        raise ConfigError(f"df={df!r}; expected a whole number >= 1 (spline degrees of freedom).")
    covs = _usable_covariates(summary, covariates)
    data = summary.assign(adh=summary[adh].clip(upper=1.0))
    data = _complete(data, [outcome, "adh"], covs)
    if data["adh"].nunique() < 2:
        raise ConfigError(
            f"{adh!r} takes fewer than two distinct values among the {len(data)} complete cases; "
            "a dose-response curve needs varied adherence."
        )
    ref = _dose_reference(reference, data["adh"])
    spline = NaturalSpline(df).fit(data["adh"])
    names = [f"ns_adh_{k}" for k in range(1, df + 1)]
    data[names] = spline.transform(data["adh"])
    rhs = " + ".join([*names, *covs])
    result = smf.ols(f"{outcome} ~ {rhs}", data, eval_env=formula_env()).fit()
    linear = smf.ols(
        f"{outcome} ~ I(10 * adh) + {' + '.join(covs) or '1'}", data, eval_env=formula_env()
    ).fit()
    lin = (
        tidy(linear, alpha=alpha)
        .query("term == 'I(10 * adh)'")
        .assign(term="adherence (per 10 points)", model="dose_response_linear", timepoint=timepoint)
    )
    grid = np.linspace(0, float(data["adh"].quantile(0.99)), 41)
    # Only the spline columns differ between a grid point and the reference adherence.
    diff = pd.DataFrame(0.0, index=range(len(grid)), columns=result.params.index)
    diff[names] = spline.transform(grid) - spline.transform(np.array([ref]))
    diff = diff.to_numpy()
    est = diff @ result.params.to_numpy()
    se = np.sqrt(np.einsum("ij,jk,ik->i", diff, result.cov_params().to_numpy(), diff))
    z = stats.norm.ppf(1 - alpha / 2)
    curve = pd.DataFrame(
        {
            "adherence": grid,
            "estimate": est,
            "ci_low": est - z * se,
            "ci_high": est + z * se,
            "timepoint": timepoint,
        }
    )
    notes = [
        "natural spline (R's ns) with interior knots at "
        + ", ".join(f"{k:.4g}" for k in spline.knots_)
        + " and boundary knots at "
        + ", ".join(f"{k:.4g}" for k in spline.boundary_knots_)
        + f" of {adh}",
        f"curve: difference in NPRS change against adherence {ref:.4g}",
    ]
    table = tidy(result, alpha=alpha, extra={"model": "dose_response", "timepoint": timepoint})
    table["term"] = table["term"].replace({n: f"ns(adh){k}" for k, n in enumerate(names, 1)})
    return DoseResponse(
        table,
        curve,
        lin.reset_index(drop=True),
        len(data),
        result,
        notes,
        ref,
        data["adh"],
        list(covs),
    )


def _dose_reference(reference, adherence: pd.Series) -> float:
    """The reference adherence of a dose-response curve: a number in [0, 1] or ``"median"``."""
    if isinstance(reference, str):
        check_option("reference", reference, ("median",))
        return float(adherence.median())
    fix = "pass an adherence between 0 and 1, or reference='median'"
    return check_number("reference", reference, low=0.0, high=1.0, fix=fix)


# ---------------------------------------------------------------------------------- composition
@dataclass
class Substitutions(Estimates):
    """Substitution effects of the exercise-time composition (:func:`category_substitution`).

    Attributes
    ----------
    table : DataFrame
        One row per (from, to) pair (see :func:`category_substitution`).
    n : int
        Patients analysed (with the outcome, the covariates and some exercise time).
    notes : list of str
        Patients left out for having no exercise time.
    n_no_exercise_time : int
        Patients with the outcome left out because every category share is zero or missing.
    amount : float
        The share of exercise time moved.
    covariates : list of str
        The covariate terms of the fit besides the ilr coordinates (e.g. ``adherence``,
        ``C(sex)``; those constant in the data are left out).

    ``figure()`` draws the from x to grid (:func:`ptanalytics.plotting.plot_substitutions`).
    """

    n_no_exercise_time: int = 0
    amount: float = 0.10
    covariates: list[str] = field(default_factory=list)

    def figure(self, ax=None):
        """The substitution effects as a from x to grid of estimates."""
        from ptanalytics.plotting import plot_substitutions

        return plot_substitutions(self, ax=ax)


#: Covariates of :func:`category_substitution` besides the composition.
SUBSTITUTION_COVARIATES = ("adherence", *DEFAULT_COVARIATES)


def _mix_split(summary: pd.DataFrame, outcome: str, covs: list[str]):
    """The complete cases of the substitution model, and which of them have a composition."""
    data = _complete(summary, [outcome], covs)
    return data, has_composition(data[_SHARES])


def no_exercise_time(
    summary: pd.DataFrame, *, timepoint: str = "end_guided", covariates=SUBSTITUTION_COVARIATES
) -> pd.Series:
    """The patients :func:`category_substitution` leaves out for having no exercise time (the
    outcome and covariates observed, every ``share_*`` zero or missing): their ``patient_id``.
    Its length is the model's ``n_no_exercise_time``; a report registers the set itself, so that
    the count is protected with every other count it publishes."""
    if not set(_SHARES) <= set(summary.columns):
        raise ConfigError("summary has no composition (share_*) columns: it needs sessions.")
    data, mix = _mix_split(summary, _change(timepoint), _usable_covariates(summary, covariates))
    return data.loc[~mix.to_numpy(), "patient_id"].reset_index(drop=True)


def category_substitution(
    summary: pd.DataFrame,
    *,
    timepoint: str = "end_guided",
    amount: float = 0.10,
    pairs: list[tuple[str, str]] | None = None,
    covariates=SUBSTITUTION_COVARIATES,
    zero_delta: float | None = None,
    alpha: float = 0.05,
) -> Substitutions:
    """Substitution effects of the exercise-time composition on the change in NPRS.

    Fits ``nprs_change ~ ilr_1 + ... + ilr_4 + covariates`` (OLS; the ilr coordinates carry the
    composition, so no category is left out) and, for each (from, to) pair, moves ``amount`` of
    exercise time from one category to the other for every patient who has at least that much in
    the first; the effect is the mean change in the model's prediction, with a delta-method
    interval (the prediction is linear in the coefficients). Patients with no exercise time have
    no composition: they are left out and counted (``n_no_exercise_time``).

    Returns
    -------
    Substitutions
        ``table``: one row per pair: ``term`` (e.g. ``flexibility->core_strengthening``),
        ``estimate`` (NPRS points; negative = more improvement), ``std_error``, ``ci_low``,
        ``ci_high``, ``p_value``, ``amount``, ``n_patients`` (patients who could make the move),
        ``n_no_exercise_time`` (patients with the outcome left out because they have no exercise
        time: every share zero or missing), ``timepoint``. ``n``: patients analysed;
        ``n_no_exercise_time``, ``amount`` and ``notes`` as attributes.
    """
    alpha = check_alpha(alpha)
    outcome = _change(timepoint)
    if not set(_SHARES) <= set(summary.columns):
        raise ConfigError("summary has no composition (share_*) columns: it needs sessions.")
    covs = _usable_covariates(summary, covariates)
    data, mix = _mix_split(summary, outcome, covs)
    n_no_time = int((~mix).sum())
    data = data[mix.to_numpy()].reset_index(drop=True)
    if len(data) == 0:
        raise ConfigError(
            f"no patient with {outcome} has exercise time (all {n_no_time} have every share_* "
            "zero or missing): the exercise mix cannot be analysed."
        )
    shares = closure(data[_SHARES])
    positive = shares.to_numpy()[shares.to_numpy() > 0]
    delta = zero_delta if zero_delta is not None else 0.65 * positive.min()
    coords = ilr(replace_zeros(shares, delta=delta))
    data[coords.columns] = coords.to_numpy()
    rhs = " + ".join([*coords.columns, *covs])
    result = smf.ols(f"{outcome} ~ {rhs}", data, eval_env=formula_env()).fit()
    pairs = pairs or [(a, b) for a in CATEGORIES for b in CATEGORIES if a != b]
    rows = []
    for source, target in pairs:
        if source not in CATEGORIES or target not in CATEGORIES:
            raise ConfigError(f"pair ({source!r}, {target!r}); categories are {CATEGORIES}.")
        ok = shares[f"share_{source}"] >= amount
        if not ok.any():
            continue
        moved = shares[ok].copy()
        moved[f"share_{source}"] -= amount
        moved[f"share_{target}"] += amount
        new = ilr(replace_zeros(moved, delta=delta))
        old = coords[ok.to_numpy()]
        weights = pd.Series((new.to_numpy() - old.to_numpy()).mean(axis=0), index=coords.columns)
        rows.append(
            {
                "term": f"{source}->{target}",
                **linear_contrast(result, weights, alpha=alpha),
                "amount": amount,
                "n_patients": int(ok.sum()),
                "n_no_exercise_time": n_no_time,
                "timepoint": timepoint,
            }
        )
    notes = (
        [f"{n_no_time} patient(s) with no exercise time (every share zero or missing) left out"]
        if n_no_time
        else []
    )
    return Substitutions(pd.DataFrame(rows), len(data), notes, n_no_time, amount, list(covs))


# ---------------------------------------------------------------------------------- length
@dataclass
class ProgramLength(Estimates):
    """Outcome by planned program length (:func:`program_length`).

    Attributes
    ----------
    table : DataFrame
        Tidy OLS rows: ``C(guided_weeks)[T.w]`` (difference from ``reference`` weeks) and the
        covariates.
    n : int
        Patients used (complete cases).
    notes : list of str
        The reference length, when it is not the one asked for.
    planned_vs_actual : DataFrame or None
        Per planned length: ``planned``, ``n``, ``mean_actual``, ``extended``, ``shortened``
        (shares of the planned group), ``mean_outcome`` (unadjusted); None without
        ``guided_weeks_actual`` in the summary.
    reference : int
        The planned length the differences are against.
    covariates : list of str
        The covariate terms the differences are adjusted for (e.g. ``nprs_baseline``,
        ``C(sex)``; those constant in the data are left out).
    """

    planned_vs_actual: pd.DataFrame | None = None
    reference: int = 8
    covariates: list[str] = field(default_factory=list)


def program_length(
    summary: pd.DataFrame,
    *,
    outcome: str = "nprs_change_followup",
    reference: int = 8,
    covariates=DEFAULT_COVARIATES,
    alpha: float = 0.05,
) -> ProgramLength:
    """Outcome at a fixed follow-up by *planned* guided length, adjusted; planned vs actual.

    The planned length (``guided_weeks``) is decided at enrolment, so it is the right exposure;
    the *actual* length is extended for non-responders and shortened for early responders, so it
    is a consequence of the outcome and must not be used as an exposure (doing so makes longer
    programs look worse).

    Returns
    -------
    ProgramLength
        ``table``: tidy OLS rows for ``C(guided_weeks)[T.w]`` (difference from ``reference``
        weeks, or the shortest planned length when no patient has ``reference``; the level used
        is ``reference``) and covariates. ``planned_vs_actual``: per planned length, ``n``, mean
        actual length, shares extended and shortened, mean outcome (unadjusted).
    """
    alpha = check_alpha(alpha)
    for col in (outcome, "guided_weeks"):
        if col not in summary:
            raise ConfigError(f"summary has no column {col!r}.")
    covs = _usable_covariates(summary, covariates)
    data = _complete(summary, [outcome, "guided_weeks"], covs)
    data["guided_weeks"] = data["guided_weeks"].astype(int)
    levels = sorted(data["guided_weeks"].unique())
    notes = []
    if reference not in levels:
        notes.append(
            f"no patient has the reference length {reference}; differences are against "
            f"{levels[0]} weeks, the shortest planned length"
        )
        reference = levels[0]
    rhs = " + ".join([f"C(guided_weeks, Treatment({reference}))", *covs])
    result = smf.ols(f"{outcome} ~ {rhs}", data, eval_env=formula_env()).fit()
    table = tidy(result, alpha=alpha, extra={"model": "program_length", "outcome": outcome})
    table["term"] = table["term"].str.replace(
        f"C(guided_weeks, Treatment({reference}))", "C(guided_weeks)", regex=False
    )
    return ProgramLength(
        table,
        len(data),
        notes,
        _planned_vs_actual(summary, outcome),
        int(reference),
        list(covs),
    )


def _planned_vs_actual(summary: pd.DataFrame, outcome: str) -> pd.DataFrame | None:
    """Per planned length: n, mean actual length, shares extended and shortened, mean outcome."""
    lengths = None
    if "guided_weeks_actual" in summary:
        s = summary.dropna(subset=["guided_weeks", "guided_weeks_actual"])
        planned = s["guided_weeks"].astype(int)
        actual = s["guided_weeks_actual"].astype(int)
        lengths = pd.DataFrame({"planned": planned, "actual": actual, "outcome": s[outcome]})
        lengths = (
            lengths.groupby("planned")
            .agg(
                n=("actual", "size"),
                mean_actual=("actual", "mean"),
                extended=("actual", lambda a: float(np.mean(a > planned.loc[a.index]))),
                shortened=("actual", lambda a: float(np.mean(a < planned.loc[a.index]))),
                mean_outcome=("outcome", "mean"),
            )
            .reset_index()
        )
    return lengths


# ---------------------------------------------------------------------------------- responders
@dataclass
class OddsRatios(Estimates):
    """Tidy odds ratios of a logistic model; ``figure()`` is their forest plot against 1."""

    def figure(self, ax=None):
        """A forest plot of the odds ratios, the no-difference line at 1."""
        from ptanalytics.plotting import plot_terms

        return plot_terms(self.table, ax=ax, reference=1.0)


def responder_logistic(
    summary: pd.DataFrame,
    *,
    adherence: str = "adherence",
    covariates=DEFAULT_COVARIATES,
    alpha: float = 0.05,
    **definition,
) -> OddsRatios:
    """Logistic regression of MCID response (completers) on adherence (per 10 points), adjusted.

    Parameters
    ----------
    summary : DataFrame
        :func:`ptanalytics.patient_summary` output.
    adherence : str
        The adherence column (capped at 1, per 10 percentage points in the model).
    covariates : sequence of str
        Adjustment terms (``C(...)`` for categorical ones); constant or absent ones are dropped.
    alpha : float
        Significance level of the intervals.
    **definition
        The responder definition, in the keywords of
        :func:`ptanalytics.metrics.responders.flag_responders` (``timepoint``, ``preset``,
        ``instrument``, ``level``, ``points``, ``percent``, ``cutoff``; by default the Ostelo
        MCID of NPRS at follow-up). Completers are analysed: patients without a baseline or
        later score are left out.

    Returns
    -------
    OddsRatios
        ``table``: tidy odds ratios (``estimate``, ``ci_low``, ``ci_high`` exponentiated;
        ``std_error`` on the log-odds scale), ``scale`` = ``odds ratio``, ``definition``,
        ``timepoint``, ``n``. ``n``: patients fitted; ``notes``: patients left out.
    """
    alpha = check_alpha(alpha)
    data, formula, text = _logistic_data(
        summary, adherence=adherence, covariates=covariates, **definition
    )
    # tol: IRLS to convergence (statsmodels' default 1e-8 stops while the weights still move,
    # which limited the SEs' agreement with R's glm(epsilon = 1e-14) to about 6 digits).
    model = smf.glm(formula, data, family=sm.families.Binomial(), eval_env=formula_env())
    result = model.fit(tol=1e-14)
    timepoint = data["timepoint"].iloc[0]
    table = _odds_ratios(
        result,
        "adh10",
        alpha,
        model="responder_logistic",
        definition=text,
        timepoint=timepoint,
        n=len(data),
    )
    left_out = len(summary) - len(data)
    notes = (
        [
            f"{left_out} of {len(summary)} patient(s) left out: no baseline or {timepoint} score "
            "(completers), or a missing covariate"
        ]
        if left_out
        else []
    )
    return OddsRatios(table, len(data), notes)


def _logistic_data(summary, *, adherence, covariates, **definition):
    """The rows and formula :func:`responder_logistic` fits (for cross-checks with R's glm)."""
    if "analysis" in definition:
        raise ConfigError(
            f"analysis={definition['analysis']!r}; the responder model analyses completers "
            "only. Fix: leave analysis out."
        )
    flags = flag_responders(summary, analysis="completers", **definition)
    covs = _usable_covariates(flags, covariates)
    data = _complete(flags, ["responder", adherence], covs)
    data["responder"] = data["responder"].astype(int)
    data["adh10"] = 10 * data[adherence].clip(upper=1.0)
    rhs = " + ".join(["adh10", *covs])
    return data, f"responder ~ {rhs}", flags["definition"].iloc[0]


def responder_gee(
    frame: pd.DataFrame,
    *,
    points: float = 2.0,
    percent: float = 30.0,
    alpha: float = 0.05,
) -> OddsRatios:
    """GEE logistic model of response at every assessment after baseline.

    ``frame`` is :func:`ptanalytics.models.trajectory.pain_model_frame` output. Response at an
    assessment: NPRS improved by at least ``points`` or ``percent`` from the patient's week-0
    score. Model: response ~ adherence_between + months (since enrolment) + baseline NPRS,
    exchangeable working correlation within patient (moment estimator over all pairs, as R's
    geepack); robust (sandwich) standard errors. Equal to R's ``geepack::geeglm(...,
    family = binomial, corstr = "exchangeable")`` on the same rows.

    Returns
    -------
    OddsRatios
        ``table``: tidy odds ratios as in :func:`responder_logistic`, with ``n_assessments``
        and ``n_patients``; ``n``: patients.
    """
    alpha = check_alpha(alpha)
    data = _gee_data(frame, points=points, percent=percent)
    result = _fit_gee(_GEE_FORMULA, "patient_id", data)
    n_patients = data["patient_id"].nunique()
    table = _odds_ratios(
        result,
        "adherence_between",
        alpha,
        model="responder_gee",
        definition=f"NPRS improvement >= {points:g} points or >= {percent:g}%",
        n_assessments=len(data),
        n_patients=n_patients,
    )
    return OddsRatios(table, int(n_patients))


_GEE_FORMULA = "responder ~ adherence_between + months + nprs_baseline"


def _fit_gee(formula: str, group: str, data: pd.DataFrame):
    """Logistic GEE, exchangeable working correlation, robust SEs: R's ``geepack::geeglm``.

    ``ddof_scale=0``: the exchangeable correlation is the mean product of Pearson residuals over
    all within-cluster pairs (statsmodels' default divides by the number of pairs minus the
    number of coefficients); this reproduces geepack's default estimate of the correlation. The
    scale is 1 (binomial); geepack estimates it (``phi``), which does not enter the sandwich
    covariance. Estimates, robust SEs and the correlation then equal ``geeglm(..., family =
    binomial, corstr = "exchangeable")`` to >= 6 digits on the responder rows and on geepack's
    ``respiratory`` (tests/test_r_reference.py); ``geeglm(..., scale.fix = TRUE)`` estimates a
    slightly different correlation (0.2529 against 0.2541 on the default cohort's responder
    rows as simulated before issue 15's feedback from pain; 0.2629 for the geepack-matching
    estimate now) and is not the reference.
    """
    model = smf.gee(
        formula,
        group,
        data,
        family=sm.families.Binomial(),
        cov_struct=sm.cov_struct.Exchangeable(),
    )
    # ctol: stop when the coefficients change by < 1e-10 (default 1e-6, which limits agreement).
    return model.fit(ddof_scale=0, ctol=1e-10)


def _gee_data(frame: pd.DataFrame, *, points: float, percent: float) -> pd.DataFrame:
    """The rows :func:`responder_gee` fits, sorted by patient (for cross-checks with geepack)."""
    base = frame[frame["week"] == 0].groupby("patient_id")["nprs"].first()
    data = frame[frame["week"] > 0].copy()
    data["nprs_baseline"] = data["patient_id"].map(base)
    data = data.dropna(subset=["nprs_baseline", "adherence_between"])
    improvement = data["nprs_baseline"] - data["nprs"]
    pct = 100 * improvement / data["nprs_baseline"].where(data["nprs_baseline"] > 0)
    data["responder"] = ((improvement >= points) | (pct >= percent)).astype(int)
    data["months"] = data["week"] / 4
    return data


def _odds_ratios(result, adherence_term: str, alpha: float, **extra) -> pd.DataFrame:
    """Tidy odds ratios of a logistic fit, the adherence term named for readers."""
    out = tidy(result, exponentiate=True, alpha=alpha, extra={"scale": "odds ratio", **extra})
    out["term"] = out["term"].replace({adherence_term: "adherence (per 10 points)"})
    return out
