"""Pain trajectories: a linear mixed model of weekly NPRS (REML), by patient.

Fitted by the fast engine :mod:`ptanalytics.models.lmm` (profiled REML vectorised over patients,
agreeing with lme4 to rounding) by default, or by statsmodels' ``MixedLM`` with
``engine="statsmodels"`` (the reference in the tests; both give the same estimates).

The model frame (:func:`pain_model_frame`) has one row per NPRS assessment:

* ``months_guided`` = min(week, G) / 4 and ``months_maintenance`` = max(week - G, 0) / 4, where G is
  the patient's guided-phase length in weeks (from the prescriptions; else the planned length):
  piecewise time in 4-week units, so that slope variances are of the order of the intercept
  variance and the optimiser does not hit the boundary;
* ``maintenance_step`` (1 after the guided phase; in the formula only with ``step=True``);
* ``adherence_between``: the patient's mean weekly adherence (capped at 1) over the planned
  program, centred on the cohort mean, per 10 percentage points;
* ``adherence_within``: last week's adherence minus the patient's mean, per 10 points (0 in
  week 0);
* ``ilr_1`` ... ``ilr_4``: the exercise-time composition (:mod:`ptanalytics.metrics.composition`),
  centred; patients with no exercise time (every category share zero or missing) have no
  composition and are left out of the frame, their number in ``attrs["n_no_exercise_time"]``
  (and in the fitted model's ``notes``);
* ``planned_weeks_c``: planned guided length minus 8 weeks;
* ``age_c`` (per 10 years, centred), ``sex``, ``chronicity``;
* ``co_<kind>``: 1 when a co-intervention episode covers the assessment day.

Default formula::

    nprs ~ months_guided + months_maintenance
           + adherence_between + adherence_between:months_guided
           + adherence_between:months_maintenance + adherence_within
           + ilr_1 + ilr_2 + ilr_3 + ilr_4 + planned_weeks_c + age_c + C(sex) + C(chronicity)
           + co_heat_cold + co_massage + co_manual_therapy + co_acupuncture
           + co_epidural_injection + co_analgesic

with a random intercept and random slopes for both time pieces per patient. Terms of covariates
that do not vary in the cohort are dropped (and listed in the result's notes).

The model is fitted to the frame, not to the cohort: ``fit_pain_model(pain_model_frame(cohort))``
(the frame needs several of the cohort's tables; the model needs only the frame). The result,
:class:`PainModel`, draws the predicted trajectories by attendance band as its ``figure()``.

Reading it: ``adherence_between:months_guided`` is how much faster (NPRS points per 4 weeks) pain
falls in the guided phase for patients whose adherence is 10 points higher — an association
between patients, confounded by whatever makes patients adhere; ``adherence_within`` is the
within-patient association of a better-than-usual week with next week's pain. Neither is a causal
effect: adherence is not randomised.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from ptanalytics._checks import check_alpha, check_number, check_option
from ptanalytics.cohort.container import Cohort
from ptanalytics.cohort.schema import COINTERVENTION_KINDS
from ptanalytics.exceptions import ConfigError
from ptanalytics.metrics import patient_summary, patient_weeks
from ptanalytics.metrics.weeks import WeekGrid
from ptanalytics.models._tidy import tidy
from ptanalytics.models.lmm import LMMResult, fit_lmm, variance_table
from ptanalytics.vocab import ATTENDANCE_BANDS

__all__ = [
    "DEFAULT_FORMULA",
    "PainModel",
    "design_matrix",
    "fit_pain_model",
    "pain_model_frame",
    "predicted_trajectories",
]

COINTERVENTION_TERMS = [f"co_{k}" for k in COINTERVENTION_KINDS]
DEFAULT_FORMULA = (
    "nprs ~ months_guided + months_maintenance + adherence_between"
    " + adherence_between:months_guided + adherence_between:months_maintenance"
    " + adherence_within + ilr_1 + ilr_2 + ilr_3 + ilr_4 + planned_weeks_c + age_c"
    " + C(sex) + C(chronicity) + " + " + ".join(COINTERVENTION_TERMS)
)
DEFAULT_RE = "~ months_guided + months_maintenance"
#: The model frame's time and adherence columns: what the model estimates (alone and in their
#: interactions); every other term of the formula adjusts them (:attr:`PainModel.covariates`).
TIME_AND_ADHERENCE = (
    "months_guided",
    "months_maintenance",
    "maintenance_step",
    "adherence_between",
    "adherence_within",
)


def pain_model_frame(
    cohort: Cohort, *, summary: pd.DataFrame | None = None, grid: WeekGrid | None = None
) -> pd.DataFrame:
    """One row per NPRS assessment with the model's covariates (see the module docstring).

    ``summary`` (:func:`~ptanalytics.metrics.summary.patient_summary` of the cohort) and ``grid``
    (:func:`~ptanalytics.metrics.weeks.week_grid` of the cohort) are used when given instead
    of being computed again.

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, ``week``, ``nprs``, ``months_guided``, ``months_maintenance``,
        ``maintenance_step``, ``guided_weeks_used`` (the G above), ``adherence_between``,
        ``adherence_within``, ``ilr_1`` ... ``ilr_4``, ``planned_weeks_c``, ``age_c``, ``sex``,
        ``chronicity``, ``co_<kind>`` for the six co-interventions, and ``attendance_band``.
    """
    if len(cohort.sessions) == 0 and len(cohort.prescriptions) == 0:
        raise ConfigError(
            "the pain-trajectory model needs sessions and prescriptions; this "
            "cohort has outcomes only."
        )
    s = summary if summary is not None else patient_summary(cohort, grid=grid)
    s = s.set_index("patient_id")
    weeks = patient_weeks(
        cohort,
        truncate_at_dropout=False,
        grid=grid,
        columns=("phase", "sessions_prescribed", "adherence_capped"),
    )
    pts = cohort.patients.set_index("patient_id")
    out = cohort.outcomes[cohort.outcomes["instrument"] == "NPRS"][
        ["patient_id", "assessed_on", "score"]
    ].rename(columns={"score": "nprs"})
    out = out.merge(pts[["enrolled_on"]], left_on="patient_id", right_index=True)
    day = (out["assessed_on"] - out["enrolled_on"]).dt.days.to_numpy()
    out["week"] = day // 7
    # Per-patient values are read by the patient's position (one lookup of the ids).
    pos = _positions(pts.index, out["patient_id"])

    def per_patient(values: pd.Series) -> np.ndarray:
        """``values`` (indexed by patient id) at each row's patient, NaN where absent."""
        return values.reindex(pts.index).to_numpy(dtype=float, na_value=np.nan)[pos]

    # Guided length: the first week whose phase is not guided (else the planned length).
    guided = weeks[weeks["phase"] == "guided"].groupby("patient_id")["week"].max() + 1
    g = pd.Series(per_patient(guided), index=out.index)
    if "guided_weeks" in pts:
        g = g.fillna(pd.Series(per_patient(pts["guided_weeks"]), index=out.index))
    g = g.fillna(0.0)
    week = out["week"].to_numpy(dtype=float)
    out["guided_weeks_used"] = g
    out["months_guided"] = np.minimum(week, g) / 4
    out["months_maintenance"] = np.maximum(week - g, 0) / 4
    out["maintenance_step"] = (week > g).astype(float)
    # Adherence: person mean over planned weeks, and last week's deviation from it.
    planned = weeks[weeks["sessions_prescribed"] > 0]
    mean_adh = planned.groupby("patient_id")["adherence_capped"].mean()
    centre = mean_adh.mean()
    patient_mean = per_patient(mean_adh)
    out["adherence_between"] = 10 * (patient_mean - centre)
    out["adherence_within"] = 10 * (_last_week(weeks, pts.index, pos, out) - patient_mean)
    out["adherence_within"] = out["adherence_within"].fillna(0.0)
    # Patients with no exercise time (every share zero or missing) have no composition: their
    # ilr coordinates are missing and they are left out below; the count is in attrs.
    no_mix = s.index[s["ilr_1"].isna()]
    n_no_mix = int(out.loc[out["patient_id"].isin(no_mix), "patient_id"].nunique())
    for k in range(1, 5):
        col = s[f"ilr_{k}"]
        out[f"ilr_{k}"] = per_patient(col - col.mean())
    planned_w = pts["guided_weeks"].astype(float) if "guided_weeks" in pts else None
    out["planned_weeks_c"] = per_patient(planned_w - 8) if planned_w is not None else 0
    age = pts["age"].astype(float) if "age" in pts else pd.Series(0.0, index=pts.index)
    out["age_c"] = per_patient((age - age.mean()) / 10)
    for col in ("sex", "chronicity"):
        out[col] = (
            pd.Series(pts[col].astype("string").array.take(pos), index=out.index)
            if col in pts
            else "unknown"
        )
    active = _cointerventions_on(cohort.cointerventions, out, pts.index, pos)
    for kind, name in zip(COINTERVENTION_KINDS, COINTERVENTION_TERMS, strict=True):
        out[name] = active.get(kind, 0.0)
    band = s["attendance_band"].astype("string").reindex(pts.index)
    out["attendance_band"] = pd.Series(band.array.take(pos), index=out.index)
    out = out.drop(columns=["enrolled_on"]).sort_values(["patient_id", "week", "assessed_on"])
    out = out.dropna(subset=["adherence_between", "ilr_1", "age_c"]).reset_index(drop=True)
    out.attrs["adherence_centre"] = float(centre)
    out.attrs["n_no_exercise_time"] = n_no_mix
    return out


def _positions(index: pd.Index, ids: pd.Series) -> np.ndarray:
    """Positions of ``ids`` in ``index`` (patient ids; every id is in it)."""
    lookup = pd.Index(index.astype("string").astype(object), dtype=object)
    return lookup.get_indexer(ids.astype("string").astype(object))


def _last_week(weeks: pd.DataFrame, index: pd.Index, pos: np.ndarray, out) -> np.ndarray:
    """Each assessment's previous week's capped adherence (NaN when that week has no row or
    nothing was prescribed in it), from the patient-week frame by integer keys."""
    wpos = _positions(index, weeks["patient_id"])
    span = int(max(weeks["week"].max(), out["week"].max())) + 2 if len(weeks) else 2
    keys = pd.Index(wpos.astype(np.int64) * span + weeks["week"].to_numpy(dtype=np.int64) + 1)
    found = keys.get_indexer(pos.astype(np.int64) * span + out["week"].to_numpy(dtype=np.int64))
    values = weeks["adherence_capped"].to_numpy(dtype=float, na_value=np.nan)
    return np.where(found >= 0, values[np.maximum(found, 0)], np.nan)


def _cointerventions_on(co: pd.DataFrame, out: pd.DataFrame, index, pos) -> dict:
    """Kind -> 1.0 where an episode of that kind covers the assessment day, else 0.0."""
    flags: dict = {}
    if not len(co) or not len(out):
        return flags
    cpos = _positions(index, co["patient_id"])
    order = np.argsort(pos, kind="stable")
    sorted_pos = pos[order]
    lo = np.searchsorted(sorted_pos, cpos, side="left")
    hi = np.searchsorted(sorted_pos, cpos, side="right")
    counts = hi - lo
    ep = np.repeat(np.arange(len(co)), counts)  # episode x assessment of its patient
    starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
    rows = order[np.arange(len(ep)) + starts]
    day = out["assessed_on"].to_numpy().astype("datetime64[s]")[rows]
    first = co["start_on"].to_numpy().astype("datetime64[s]")[ep]
    last = co["end_on"].to_numpy().astype("datetime64[s]")[ep]
    covered = (first <= day) & (day <= last)
    kinds = co["kind"].astype("string").to_numpy(dtype=object)[ep]
    for kind in COINTERVENTION_KINDS:
        hit = np.zeros(len(out))
        hit[rows[covered & (kinds == kind)]] = 1.0
        flags[kind] = hit
    return flags


@dataclass
class PainModel:
    """A fitted pain-trajectory model (a model result: ``table``, ``n``, ``notes``, ``figure()``).

    Attributes
    ----------
    table : DataFrame
        Fixed effects, tidy (``term``, ``estimate``, ``std_error``, ``ci_low``, ``ci_high``,
        ``p_value``, ``model``), intervals at the ``1 - alpha`` level.
    n : int
        Patients in the model frame.
    variance : DataFrame
        Variance components: ``component`` (e.g. ``sd(Intercept)``, ``cor(...)``,
        ``residual_sd``) and ``estimate``.
    result : LMMResult or statsmodels MixedLMResults
        The engine's result (``fe_params``, ``bse_fe``, ``cov_re``, ``scale``, ``llf``,
        ``random_effects``, ``cov_params()`` in both).
    frame : DataFrame
        The model frame used.
    notes : list of str
        Convergence and other messages, in plain words (a boundary fit, an optimiser that
        failed, a fall-back to the fast engine).
    singular : bool
        Boundary (singular) fit: a random-effect variance at 0 or a correlation at +-1
        (lme4's ``isSingular`` rule, tolerance 1e-4 on the relative Cholesky factor).
    alpha : float
        Significance level of ``table``'s intervals (and the default of
        :func:`predicted_trajectories`).
    """

    table: pd.DataFrame
    variance: pd.DataFrame
    result: object
    frame: pd.DataFrame
    formula: str
    notes: list[str] = field(default_factory=list)
    singular: bool = False
    alpha: float = 0.05

    @property
    def converged(self) -> bool:
        return bool(getattr(self.result, "converged", False))

    @property
    def n(self) -> int:
        """Patients in the model frame."""
        return int(self.frame["patient_id"].nunique())

    @property
    def terms(self) -> list[str]:
        """The fixed-effect terms of the formula fitted (patsy's names, e.g. ``C(sex)``,
        ``adherence_between:months_guided``; no intercept; dropped constant terms left out)."""
        from patsy import INTERCEPT, ModelDesc

        desc = ModelDesc.from_formula(self.formula)
        return [t.name() for t in desc.rhs_termlist if t != INTERCEPT]

    @property
    def covariates(self) -> list[str]:
        """The terms the time and adherence estimates are adjusted for: every term of
        :attr:`terms` that reads none of :data:`TIME_AND_ADHERENCE`."""
        return [t for t in self.terms if not set(t.split(":")) & set(TIME_AND_ADHERENCE)]

    def figure(self, ax=None):
        """Predicted mean NPRS by attendance band, with confidence bands.

        :func:`predicted_trajectories` drawn by :func:`ptanalytics.plotting.plot_trajectories`;
        the model frame must be :func:`pain_model_frame` output. For a forest plot of the fixed
        effects: ``ptanalytics.plotting.plot_terms(model.table)``.
        """
        from ptanalytics.plotting import plot_trajectories

        return plot_trajectories(predicted_trajectories(self), ax=ax)


def _term_columns(term, frame: pd.DataFrame) -> list[str]:
    """The frame's columns that a patsy term reads (``C(sex)`` reads ``sex``)."""
    from patsy.eval import ast_names

    return [name for f in term.factors for name in ast_names(f.name()) if name in frame]


def _drop_constant_terms(formula: str, frame: pd.DataFrame, notes: list[str]) -> str:
    """``formula`` without the terms that read a column constant in ``frame`` (each noted).

    The terms are patsy's; the formula is rewritten as patsy's canonical text
    (``ModelDesc.describe``), which is the formula as written for the default formulas.
    """
    from patsy import INTERCEPT, ModelDesc

    desc = ModelDesc.from_formula(formula)
    keep = []
    for term in desc.rhs_termlist:
        cols = _term_columns(term, frame) if term != INTERCEPT else []
        if cols and any(frame[c].nunique(dropna=True) < 2 for c in cols):
            notes.append(f"term {term.name()} dropped: it does not vary in this cohort")
            continue
        keep.append(term)
    return ModelDesc(desc.lhs_termlist, keep).describe()


def fit_pain_model(
    frame: pd.DataFrame,
    *,
    formula: str = DEFAULT_FORMULA,
    re_formula: str = DEFAULT_RE,
    step: bool = False,
    reml: bool = True,
    engine: str = "fast",
    alpha: float = 0.05,
) -> PainModel:
    """Fit the pain-trajectory linear mixed model (see the module docstring).

    Parameters
    ----------
    frame : DataFrame
        The model frame, one row per NPRS assessment: :func:`pain_model_frame` output (or any
        frame with ``patient_id`` and the formula's columns).
    formula, re_formula : str
        Fixed-effects formula (patsy) and random-effects formula (default: intercept and both
        time pieces).
    step : bool
        Add a level change at the phase change (``maintenance_step``).
    reml : bool
        REML (default) or maximum likelihood.
    engine : {"fast", "statsmodels"}
        ``"fast"`` (default): :func:`ptanalytics.models.lmm.fit_lmm`, profiled REML vectorised
        over patients; standard errors ``sigma^2 (X'V^-1X)^-1`` as lme4's. ``"statsmodels"``:
        ``MixedLM`` (slower; its standard errors come from the joint information matrix and are
        about 1% larger).
    alpha : float
        Significance level of the intervals in ``table`` (0.05: 95%).

    Returns
    -------
    PainModel
        Convergence problems are not raised: they are listed in ``notes`` and ``converged``.

    Examples
    --------
    >>> import ptanalytics as pt
    >>> from ptanalytics import models
    >>> from ptanalytics.models.trajectory import pain_model_frame
    >>> model = models.fit_pain_model(pain_model_frame(pt.simulate_cohort(200, seed=1)))
    >>> model.n, model.converged
    (195, True)
    >>> model.table["term"].iloc[0]
    'Intercept'
    """
    check_option("engine", engine, ("fast", "statsmodels"), what="'fast', 'statsmodels'")
    alpha = check_alpha(alpha)
    if isinstance(frame, Cohort):
        raise ConfigError(
            "fit_pain_model takes the model frame, not a Cohort. "
            "Fix: fit_pain_model(pain_model_frame(cohort))."
        )
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(
            f"frame is a {type(frame).__name__}; allowed: a DataFrame (pain_model_frame output)."
        )
    notes: list[str] = []
    if frame.attrs.get("n_no_exercise_time"):
        notes.append(
            f"{frame.attrs['n_no_exercise_time']} patient(s) with no exercise time (no exercise "
            "mix, so no ilr coordinates) left out of the model frame"
        )
    if step:
        formula = formula + " + maintenance_step"
    formula = _drop_constant_terms(formula, frame, notes)
    if engine == "fast":
        return _fit_fast(formula, frame, re_formula, reml, notes, alpha)
    return _fit_statsmodels(formula, frame, re_formula, reml, notes, alpha)


def _fit_fast(formula, frame, re_formula, reml, notes, alpha) -> PainModel:
    """The fast engine's fit (:func:`fit_lmm`) as a :class:`PainModel`."""
    result = fit_lmm(
        frame, formula, group="patient_id", re_formula=re_formula, reml=reml, alpha=alpha
    )
    notes.extend(result.notes)
    table = tidy(result, alpha=alpha, extra={"model": "pain_lmm"})
    variance = _variance(result)
    return PainModel(table, variance, result, frame, formula, notes, result.singular, alpha)


_SM_ERRORS = (np.linalg.LinAlgError, ValueError, FloatingPointError, ZeroDivisionError)


def _fit_statsmodels(formula, frame, re_formula, reml, notes, alpha) -> PainModel:
    """MixedLM with fallbacks; never raises on a singular or boundary fit.

    Each optimiser that raises (statsmodels inverts ``X'V^-1X`` and the random-effects covariance,
    which fails when a variance is 0, e.g. lme4's ``Dyestuff2``) is noted and the next is tried;
    when none gives a usable fit, the fast engine (:func:`fit_lmm`) fits the model and ``notes``
    say so. A boundary fit (relative Cholesky factor of the random-effects covariance with a
    diagonal element < 1e-4, lme4's ``isSingular`` rule) is noted.
    """
    result = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = smf.mixedlm(formula, frame, groups=frame["patient_id"], re_formula=re_formula)
        except _SM_ERRORS as exc:
            model = None
            notes.append(f"statsmodels MixedLM could not be set up ({type(exc).__name__}: {exc})")
        # bfgs with a tight gradient tolerance reaches lme4's optimum (|dlogLik| <= 2e-10 in
        # tests/test_lme4.py); statsmodels ignores lbfgs tolerances, so lbfgs is the fallback.
        attempts = (
            (["bfgs"], {"gtol": 1e-7, "maxiter": 1000}),
            (["lbfgs"], {}),
            (["powell", "lbfgs"], {}),
            (["nm"], {"maxiter": 5000}),
        )
        for method, options in attempts if model is not None else ():
            try:
                fit = model.fit(reml=reml, method=method, **options)
                fixed = _FixedOnly(fit, fit.fe_params.index)
                table = tidy(fixed, alpha=alpha, extra={"model": "pain_lmm"})
                variance = _variance(fit)
            except _SM_ERRORS as exc:
                notes.append(f"optimiser {'+'.join(method)} failed: {type(exc).__name__}: {exc}")
                continue
            if not np.isfinite(fit.llf) or not np.isfinite(fit.fe_params).all():
                notes.append(f"optimiser {'+'.join(method)} gave a non-finite fit")
                continue
            result = fit
            if fit.converged:
                break
    for w in caught:
        if issubclass(w.category, ConvergenceWarning | RuntimeWarning | UserWarning):
            text = str(w.message).split("\n")[0]
            if f"optimiser: {text}" not in notes:
                notes.append(f"optimiser: {text}")
    if result is None:
        notes.append(
            "statsmodels MixedLM gave no usable fit; fitted by the fast engine "
            "(ptanalytics.models.lmm.fit_lmm) instead"
        )
        return _fit_fast(formula, frame, re_formula, reml, notes, alpha)
    if not result.converged:
        notes.append("the optimiser did not converge; estimates are not reliable")
    singular = _is_singular(result.cov_re.to_numpy() / result.scale)
    if singular:
        notes.append(
            "boundary (singular) fit: a random-effect variance is (near) 0 or a correlation at "
            "+-1; consider a simpler random part"
        )
    return PainModel(table, variance, result, frame, formula, notes, singular, alpha)


def _is_singular(relative_cov: np.ndarray, tol: float = 1e-4) -> bool:
    """lme4's ``isSingular``: a diagonal element of the relative Cholesky factor below ``tol``."""
    cov = np.atleast_2d(np.asarray(relative_cov, dtype=float))
    try:
        diag = np.diag(np.linalg.cholesky(cov))
    except np.linalg.LinAlgError:  # not positive definite: on the boundary
        return True
    return bool((diag < tol).any())


class _FixedOnly:
    """The fixed-effect part of a MixedLM result, for :func:`tidy`."""

    def __init__(self, result, names):
        self._r, self._n = result, names
        self.params = result.fe_params
        self.bse = result.bse_fe
        self.pvalues = result.pvalues[names]

    def conf_int(self, alpha=0.05):
        return self._r.conf_int(alpha=alpha).loc[self._n]


def _variance(result) -> pd.DataFrame:
    """Either engine's variance components (:func:`variance_table`) and the log-likelihood."""
    # statsmodels calls the random intercept "Group"; both engines report it as "Intercept".
    names = ["Intercept" if n == "Group" else str(n) for n in result.cov_re.index]
    cov = result.cov_re.set_axis(names, axis=0).set_axis(names, axis=1)
    out = variance_table(cov, result.scale)
    out.loc[len(out)] = ("log_likelihood", float(result.llf))
    return out


_PREDICTION_COLUMNS = ("week", "attendance_band", "adherence_between", "sex", "chronicity")


def predicted_trajectories(
    model: PainModel,
    *,
    weeks: int | None = None,
    guided_weeks: float | None = None,
    alpha: float | None = None,
    score_range: tuple[float, float] = (0.0, 10.0),
) -> pd.DataFrame:
    """Model-predicted mean NPRS by attendance band, with confidence intervals.

    Each band's curve uses the band's mean ``adherence_between``; every other covariate is at its
    reference (centred covariates 0, reference categories, no co-intervention), the within-patient
    deviation 0. Intervals reflect the fixed effects' uncertainty only.

    The design comes from the data, never from the simulator's defaults: the curves run from week
    0 to the last week with an NPRS assessment in the model frame (``weeks`` to shorten it; a
    longer ``weeks`` is an error, it would extrapolate), and the phase change is at the median
    guided-phase length of the patients in the frame (``guided_weeks`` to set it). Estimates and
    interval ends are kept within the instrument's ``score_range``; the rows where that clipped
    anything are marked in ``clipped``. ``alpha`` defaults to the model's.

    Returns
    -------
    pandas.DataFrame
        ``attendance_band``, ``week`` (int), ``estimate``, ``ci_low``, ``ci_high`` (float, NPRS),
        ``clipped`` (bool). ``attrs`` holds ``weeks`` and ``guided_weeks`` used.
    """
    from scipy import stats

    alpha = model.alpha if alpha is None else check_alpha(alpha)
    frame = model.frame
    missing = [c for c in _PREDICTION_COLUMNS if c not in frame]
    if missing:
        raise ConfigError(
            f"predicted trajectories need the pain_model_frame columns {missing}; the model was "
            "fitted to another frame. Fix: fit the model to pain_model_frame(cohort), or draw "
            "the fixed effects with ptanalytics.plotting.plot_terms(model.table)."
        )
    observed_to = int(frame["week"].max()) if len(frame) else 0
    check_number(
        "weeks", weeks, low=0, integer=True, allow_none=True, what="a whole number of weeks >= 0"
    )
    if weeks is None:
        weeks = observed_to
    elif weeks > observed_to:
        raise ConfigError(
            f"weeks={weeks} is beyond the last assessment in the data (week {observed_to}); "
            f"allowed: at most {observed_to} (the model is not extrapolated)."
        )
    if guided_weeks is None:
        g = frame["guided_weeks_used"] if "guided_weeks_used" in frame else pd.Series(dtype=float)
        g = g.groupby(frame["patient_id"]).first() if len(g) else g
        guided_weeks = float(g.median()) if len(g) and g.notna().any() else float(weeks)
    band_adh = frame.groupby("attendance_band")["adherence_between"].mean()
    week = np.arange(weeks + 1, dtype=float)
    z = stats.norm.ppf(1 - alpha / 2)
    fe = model.result.fe_params
    cov = model.result.cov_params().loc[fe.index, fe.index].to_numpy()
    template = frame.iloc[[0] * len(week)].reset_index(drop=True).copy()
    for col in template.columns:
        if col.startswith(("co_", "ilr_")) or col in (
            "adherence_within",
            "planned_weeks_c",
            "age_c",
            "maintenance_step",
        ):
            template[col] = 0.0
    template["sex"] = frame["sex"].mode().iloc[0]
    template["chronicity"] = frame["chronicity"].mode().iloc[0]
    template["months_guided"] = np.minimum(week, guided_weeks) / 4
    template["months_maintenance"] = np.maximum(week - guided_weeks, 0) / 4
    template["maintenance_step"] = (week > guided_weeks).astype(float)
    rows = []
    for band in ATTENDANCE_BANDS:
        if band not in band_adh:
            continue
        data = template.assign(adherence_between=band_adh[band])
        x = design_matrix(model.result, data)[fe.index].to_numpy()
        est = x @ fe.to_numpy()
        se = np.sqrt(np.einsum("ij,jk,ik->i", x, cov, x))
        low, high = est - z * se, est + z * se
        lo_end, hi_end = score_range
        clipped = (est < lo_end) | (est > hi_end) | (low < lo_end) | (high > hi_end)
        rows.append(
            pd.DataFrame(
                {
                    "attendance_band": band,
                    "week": week.astype(int),
                    "estimate": np.clip(est, lo_end, hi_end),
                    "ci_low": np.clip(low, lo_end, hi_end),
                    "ci_high": np.clip(high, lo_end, hi_end),
                    "clipped": clipped,
                }
            )
        )
    out = pd.concat(rows, ignore_index=True)
    out.attrs.update(weeks=int(weeks), guided_weeks=float(guided_weeks))
    return out


def design_matrix(result, data: pd.DataFrame) -> pd.DataFrame:
    """Fixed-effects design matrix of new ``data`` for a formula-fitted statsmodels result.

    statsmodels keeps the formula's specification (patsy or formulaic, by version) on
    ``model.data.model_spec``; both are handled, and the fast engine's :class:`LMMResult`.
    """
    if isinstance(result, LMMResult):
        from patsy import build_design_matrices

        (x,) = build_design_matrices([result.design_info], data, return_type="dataframe")
        return x
    spec = result.model.data.model_spec
    if hasattr(spec, "get_model_matrix"):  # formulaic
        return pd.DataFrame(spec.get_model_matrix(data))
    from patsy import build_design_matrices

    (x,) = build_design_matrices([spec], data, return_type="dataframe")
    return x
