"""Power and sample size by simulation (``pt.power``, ``ptanalytics power``): docs/power.md.

A *design* is what the study would collect plus the analysis that tests the effect:

* :class:`TwoArmSlope`: the textbook two-arm longitudinal trial (random intercept and slope per
  patient, no dropout) whose power is also known analytically (:meth:`TwoArmSlope.analytic_power`,
  the GLS variance from the variance components; Hedeker, Gibbons & Waternaux 1999), the check
  that the simulation is right;
* :class:`SimulatorDesign`: any simulator configuration (a named scenario plus parameters, with
  its dropout, adherence, assessment schedule and response-driven extension) and one of
  :data:`ANALYSES`: the guided-phase pain slope by randomised arm (the mixed model's
  ``week:arm`` term), the follow-up change by arm (ANCOVA), the association of adherence with
  the follow-up change, or the complier effect of adherence with the arm as instrument.

:func:`power` simulates ``replications`` studies of each size ``n`` (patients in all), fits the
analysis to each and counts the two-sided Wald tests at ``alpha`` that reject. Each replication's
random numbers come from ``SeedSequence(seed, spawn_key=(n, replication))``, and tasks are cut
into fixed chunks, so the result is the same whatever the number of workers or the backend.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ptanalytics._checks import check_alpha, check_number, check_option, check_seed
from ptanalytics.exceptions import ConfigError

__all__ = [
    "ANALYSES",
    "CHUNK",
    "PowerResult",
    "SimulatorDesign",
    "TwoArmSlope",
    "load_design",
    "power",
    "write_power_figure",
    "write_power_table",
]

#: The analyses a :class:`SimulatorDesign` can test, and the term each tests.
ANALYSES = {
    "slope": "week:arm, the difference in the guided-phase NPRS slope between the randomised "
    "arms (mixed model with a random intercept and slope per patient, REML, Wald test)",
    "followup": "arm, the difference in the follow-up NPRS change between the randomised arms "
    "(ANCOVA on baseline NPRS, completers)",
    "responder": "arm, the log odds ratio of MCID response at follow-up (Ostelo: NPRS >= 2 "
    "points or >= 30% better) between the randomised arms (logistic on baseline NPRS, "
    "completers)",
    "adherence": "adherence, the association of overall adherence with the follow-up NPRS "
    "change (OLS on baseline NPRS, completers; an association, not an effect)",
    "category": "the substitution of 10% of exercise time from the first to the second category "
    "of ``substitution`` (mean change in predicted follow-up NPRS change; OLS on the ilr "
    "coordinates of the exercise mix and covariates, completers; an association)",
    "complier": "the complier effect of adherence on the follow-up NPRS change, the randomised "
    "arm as instrument (2SLS, docs/causal.md)",
}

#: Replications per task: fixed, so that the chunks (and with them every warm start of the
#: optimiser) are the same whatever the number of workers.
CHUNK = 25


# ------------------------------------------------------------------------------------ designs
@dataclass(frozen=True)
class TwoArmSlope:
    """A two-arm trial analysed by the slope difference, with random intercepts and slopes.

    ``nprs_ij = baseline_mean + a_i + (control_slope + slope_difference * treated_i + b_i)
    t_j + e_ij`` at the assessment ``weeks`` t_j, with ``(a_i, b_i)`` normal (SDs
    ``intercept_sd``, ``slope_sd``, correlation ``correlation``), ``e_ij`` normal (SD
    ``residual_sd``), a share ``treated_share`` of the patients treated (allocated exactly,
    rounded down), nobody missing. Units: NPRS points and weeks.
    """

    slope_difference: float = -0.15
    weeks: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 6.0, 8.0)
    control_slope: float = -0.2
    baseline_mean: float = 6.0
    intercept_sd: float = 1.5
    slope_sd: float = 0.2
    correlation: float = 0.0
    residual_sd: float = 1.0
    treated_share: float = 0.5

    def __post_init__(self):
        weeks = _sequence("weeks", self.weeks)
        weeks = tuple(float(check_number("weeks", w, low=0)) for w in weeks)
        if len(set(weeks)) < 3:
            raise ConfigError(
                f"weeks={list(self.weeks)!r}; allowed: at least 3 distinct assessment weeks (a "
                "random slope needs them)."
            )
        object.__setattr__(self, "weeks", weeks)
        for name in ("slope_difference", "control_slope", "baseline_mean"):
            check_number(name, getattr(self, name))
        for name in ("intercept_sd", "slope_sd"):
            check_number(name, getattr(self, name), low=0)
        check_number("residual_sd", self.residual_sd, low=0, inclusive=False)
        check_number("correlation", self.correlation, low=-1, high=1, inclusive=False)
        check_number("treated_share", self.treated_share, low=0, high=1, inclusive=False)

    analysis = "slope"
    min_n = 8

    @classmethod
    def from_cohort(
        cls,
        cohort,
        *,
        slope_difference: float,
        weeks=None,
        slope_weeks: int | None = None,
        treated_share: float = 0.5,
    ) -> TwoArmSlope:
        """A design with a cohort's own variability: the mixed model ``nprs ~ week + (week |
        patient)`` fitted (REML) to the NPRS recorded in weeks 0 to ``slope_weeks`` (default:
        the cohort's median planned guided weeks, or 8 when it has none) gives the baseline
        mean, the control slope, the intercept and slope SDs, their correlation and the
        residual SD. ``weeks``: the planned assessment weeks (default: the weeks in that window
        at which at least half the patients were assessed)."""
        from ptanalytics.metrics import patient_weeks
        from ptanalytics.models.lmm import fit_lmm

        if slope_weeks is None:
            patients = cohort.patients
            planned = (
                pd.to_numeric(patients["guided_weeks"], errors="coerce").dropna()
                if "guided_weeks" in patients
                else pd.Series(dtype=float)
            )
            slope_weeks = int(planned.median()) if len(planned) else 8
        check_number("slope_weeks", slope_weeks, low=2, integer=True)
        frame = patient_weeks(cohort, columns=["nprs"])
        frame = frame[(frame["week"] <= slope_weeks) & frame["nprs"].notna()]
        if frame["patient_id"].nunique() < 10 or frame["week"].nunique() < 3:
            raise ConfigError(
                f"the cohort has {frame['patient_id'].nunique()} patient(s) with NPRS in weeks "
                f"0-{slope_weeks} at {frame['week'].nunique()} distinct week(s): too few to "
                "estimate a slope's variability (at least 10 patients and 3 weeks)."
            )
        fit = fit_lmm(frame, "nprs ~ week", group="patient_id", re_formula="~ week")
        cov = fit.cov_re.to_numpy()
        sd = np.sqrt(np.diag(cov))
        corr = float(cov[0, 1] / (sd[0] * sd[1])) if sd.min() > 0 else 0.0
        if weeks is None:
            share = frame.groupby("week")["patient_id"].nunique() / frame["patient_id"].nunique()
            weeks = [float(w) for w in share.index[share >= 0.5]]
        return cls(
            slope_difference=slope_difference,
            weeks=tuple(weeks),
            control_slope=float(fit.fe_params["week"]),
            baseline_mean=float(fit.fe_params["Intercept"]),
            intercept_sd=float(sd[0]),
            slope_sd=float(sd[1]),
            correlation=float(np.clip(corr, -0.99, 0.99)),
            residual_sd=float(np.sqrt(fit.scale)),
            treated_share=treated_share,
        )

    def _covariance(self) -> np.ndarray:
        cov = self.correlation * self.intercept_sd * self.slope_sd
        return np.array([[self.intercept_sd**2, cov], [cov, self.slope_sd**2]])

    def slope_variance(self) -> float:
        """Variance of one patient's GLS slope, ``[(X'V^-1 X)^-1]_{22}`` with ``X = [1, t]`` and
        ``V = Z G Z' + residual_sd^2 I`` at the known variance components."""
        t = np.asarray(self.weeks)
        x = np.column_stack([np.ones_like(t), t])
        v = x @ self._covariance() @ x.T + self.residual_sd**2 * np.eye(len(t))
        return float(np.linalg.inv(x.T @ np.linalg.solve(v, x))[1, 1])

    def arms(self, n: int) -> tuple[int, int]:
        """(treated, control) patients of ``n``."""
        treated = math.floor(n * self.treated_share)
        return treated, n - treated

    def standard_error(self, n: int) -> float:
        """SE of the slope difference's GLS estimator with ``n`` patients (known components)."""
        treated, control = self.arms(n)
        return math.sqrt(self.slope_variance() * (1.0 / treated + 1.0 / control))

    def analytic_power(self, n: int, alpha: float = 0.05) -> float:
        """Power of the two-sided Wald (z) test of the slope difference: ``Phi(|d|/se - z) +
        Phi(-|d|/se - z)``, ``z`` the ``1 - alpha/2`` normal quantile."""
        shift = abs(self.slope_difference) / self.standard_error(n)
        z = stats.norm.ppf(1 - alpha / 2)
        return float(stats.norm.cdf(shift - z) + stats.norm.cdf(-shift - z))

    def arrays(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The fixed and random designs and group codes of ``n`` patients (built once per n):
        ``X = [1, week, treated, week x treated]``, ``Z = [1, week]``."""
        treated, _ = self.arms(n)
        t = np.tile(np.asarray(self.weeks), n)
        codes = np.repeat(np.arange(n), len(self.weeks))
        arm = (codes < treated).astype(float)
        x = np.column_stack([np.ones_like(t), t, arm, t * arm])
        return x, np.column_stack([np.ones_like(t), t]), codes

    def theta(self) -> np.ndarray:
        """The true relative covariance factor (lower triangle of chol(G) / residual_sd)."""
        g = self._covariance() / self.residual_sd**2
        lam = np.linalg.cholesky(g + 1e-12 * np.eye(2))
        return lam[np.tril_indices(2)]

    def outcome(self, x: np.ndarray, z: np.ndarray, codes: np.ndarray, rng) -> np.ndarray:
        """One replication's NPRS scores on :meth:`arrays`' rows."""
        n = int(codes[-1]) + 1
        beta = np.array([self.baseline_mean, self.control_slope, 0.0, self.slope_difference])
        z1, z2 = rng.standard_normal((2, n))
        slope = self.slope_sd * (self.correlation * z1 + math.sqrt(1 - self.correlation**2) * z2)
        effects = np.column_stack([self.intercept_sd * z1, slope])
        noise = rng.normal(0.0, self.residual_sd, len(codes))
        return x @ beta + np.einsum("ij,ij->i", z, effects[codes]) + noise


@dataclass(frozen=True)
class SimulatorDesign:
    """The simulator's cohorts under ``scenario`` with ``parameters`` on top (docs/simulator.md),
    analysed by ``analysis`` (:data:`ANALYSES`). ``slope_weeks``: the guided-phase window of the
    ``slope`` analysis (weeks 0 to it, the NPRS recorded in that window).

    The effect under test is the one the configuration implies: e.g. a home-only guided phase
    (``home_only_share``), a longer planned phase (``length_trial_share``,
    ``length_trial_weeks``), an encouragement design (``encouragement_share``,
    ``encouragement_log_odds``) or the dose effect of sessions (``benefit_max``); the
    ``null_adherence`` scenario has none.
    """

    scenario: str = "optimistic"
    parameters: dict = field(default_factory=dict)
    analysis: str = "slope"
    slope_weeks: int = 8
    substitution: tuple[str, str] = ("flexibility", "core_strengthening")

    min_n = 20

    def __post_init__(self):
        from ptanalytics.simulate import scenario_config

        check_option("analysis", self.analysis, tuple(ANALYSES))
        if not isinstance(self.parameters, dict):
            raise ConfigError(
                f"parameters={self.parameters!r}; allowed: a table of simulator parameters."
            )
        check_number("slope_weeks", self.slope_weeks, low=2, integer=True)
        from ptanalytics.cohort.catalogue import CATEGORIES

        pair = _sequence("substitution", self.substitution)
        if len(pair) != 2 or pair[0] == pair[1] or not set(pair) <= set(CATEGORIES):
            raise ConfigError(
                f"substitution={self.substitution!r}; allowed: two different categories of "
                f"{', '.join(CATEGORIES)} (from, to)."
            )
        object.__setattr__(self, "substitution", tuple(pair))
        cfg = scenario_config(self.scenario, **self.parameters)
        if self.analysis in ("slope", "followup", "responder", "complier") and cfg.trial is None:
            raise ConfigError(
                f"analysis={self.analysis!r} compares randomised arms, and the configuration has "
                "no randomised design. Fix: set one of home_only_share, length_trial_share or "
                "encouragement_share (e.g. 0.5), or use analysis='adherence'."
            )
        if self.slope_weeks > cfg.horizon_weeks:
            raise ConfigError(
                f"slope_weeks={self.slope_weeks} is beyond the follow-up (week "
                f"{cfg.horizon_weeks})."
            )
        object.__setattr__(self, "_config", cfg)

    @property
    def config(self):
        """The :class:`~ptanalytics.simulate.SimulationConfig` the cohorts are drawn from."""
        return self._config

    def analytic_power(self, n: int, alpha: float = 0.05) -> float:
        return float("nan")


def _sequence(name: str, value) -> list:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise ConfigError(f"{name}={value!r}; allowed: a list of numbers.")
    return list(value)


_KINDS = {"two_arm_slope": TwoArmSlope, "simulator": SimulatorDesign}


def design_from_mapping(values: dict) -> TwoArmSlope | SimulatorDesign:
    """A design from a mapping (a design file's tables): ``kind`` (``two_arm_slope`` or
    ``simulator``) and that design's fields; for ``simulator``, the simulator's parameters in
    a ``parameters`` table."""
    if not isinstance(values, dict):
        raise ConfigError("a design must be a table of name = value pairs.")
    values = dict(values)
    kind = check_option("kind", values.pop("kind", None), tuple(_KINDS))
    cls = _KINDS[kind]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown {kind} design key(s) {unknown}; allowed: kind, {', '.join(sorted(known))}."
        )
    return cls(**values)


def load_design(path: str | Path) -> TwoArmSlope | SimulatorDesign:
    """Read a design from a TOML file (docs/power.md): ``kind = "two_arm_slope"`` or
    ``"simulator"``, the design's fields, and for a simulator design a ``[parameters]`` table."""
    p = Path(path)
    try:
        values = tomllib.loads(p.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the design file ({exc.strerror}).") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc}).") from None
    try:
        return design_from_mapping(values)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


# ------------------------------------------------------------------------------ replications
def _seed(seed: int, n: int, replication: int) -> np.random.SeedSequence:
    """The random numbers of replication ``replication`` of size ``n``: independent of which
    other sizes or how many replications are asked, and of the workers."""
    return np.random.SeedSequence(seed, spawn_key=(n, replication))


def _two_arm_chunk(design: TwoArmSlope, n: int, reps: range, seed: int) -> list[tuple]:
    """(estimate, std_error, converged) of the slope difference in each replication of ``reps``.

    The design arrays are built once; the optimiser starts from the true covariance factor."""
    from ptanalytics.models.lmm import wald_term

    x, z, codes = design.arrays(n)
    start = design.theta()
    out = []
    for r in reps:
        rng = np.random.default_rng(_seed(seed, n, r))
        y = design.outcome(x, z, codes, rng)
        est, se, ok, _ = wald_term(y, x, z, codes, 3, theta0=start)
        out.append((est, se, ok))
    return out


def _simulator_chunk(design: SimulatorDesign, n: int, reps: range, seed: int) -> list[tuple]:
    """(estimate, std_error, converged) of the design's analysis in each replication."""
    from ptanalytics.simulate import simulate_cohort

    out = []
    start = None
    for r in reps:
        cohort_seed = int(_seed(seed, n, r).generate_state(1, np.uint32)[0])
        cohort = simulate_cohort(n, seed=cohort_seed, config=design.config)
        est, se, ok, theta = _ANALYSE[design.analysis](design, cohort, start)
        if ok and theta is not None:
            start = theta  # a warm start for the next replication of this chunk
        out.append((est, se, ok))
    return out


def _active(design: SimulatorDesign, frame: pd.DataFrame) -> np.ndarray:
    return (frame["arm"] == design.config.trial_arms[0]).to_numpy(dtype=float)


def _slope(design: SimulatorDesign, cohort, start):
    """``nprs ~ week * arm + (week | patient)`` over weeks 0..slope_weeks, the week:arm term."""
    from ptanalytics.metrics import patient_weeks
    from ptanalytics.models.lmm import wald_term

    weeks = patient_weeks(cohort, columns=["nprs"])
    weeks = weeks[(weeks["week"] <= design.slope_weeks) & weeks["nprs"].notna()]
    arm = cohort.patients.set_index("patient_id")["arm"]
    weeks = weeks.assign(arm=weeks["patient_id"].map(arm))
    codes, _ = pd.factorize(weeks["patient_id"], sort=True)
    t = weeks["week"].to_numpy(dtype=float)
    a = _active(design, weeks)
    per_patient = np.bincount(codes)
    usable = (per_patient >= 2).sum()
    if a.min() == a.max() or usable < 4:
        return float("nan"), float("nan"), False, None
    x = np.column_stack([np.ones_like(t), t, a, t * a])
    z = np.column_stack([np.ones_like(t), t])
    y = weeks["nprs"].to_numpy(dtype=float)
    try:
        est, se, ok, theta = wald_term(y, x, z, codes.astype(np.int64), 3, theta0=start)
    except (np.linalg.LinAlgError, ConfigError):
        return float("nan"), float("nan"), False, None
    return est, se, ok, theta


def _ols_term(y: np.ndarray, x: np.ndarray, column: int) -> tuple[float, float, bool]:
    """OLS estimate and classical SE of one column (NaN when not estimable)."""
    n, p = x.shape
    if n <= p + 1 or np.linalg.matrix_rank(x) < p:
        return float("nan"), float("nan"), False
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    sigma2 = float(resid @ resid) / (n - p)
    var = sigma2 * np.linalg.inv(x.T @ x)[column, column]
    return float(beta[column]), float(np.sqrt(var)), True


def _completers(cohort, columns: list[str]) -> pd.DataFrame:
    from ptanalytics.metrics import patient_summary

    summary = patient_summary(cohort)
    return summary.dropna(subset=columns)


def _followup(design: SimulatorDesign, cohort, start):
    data = _completers(cohort, ["nprs_change_followup", "nprs_baseline"])
    a = _active(design, data)
    x = np.column_stack([np.ones(len(data)), a, data["nprs_baseline"].to_numpy(dtype=float)])
    return (*_ols_term(data["nprs_change_followup"].to_numpy(dtype=float), x, 1), None)


def _responder(design: SimulatorDesign, cohort, start):
    """Logistic regression of MCID response at follow-up (completers) on arm + baseline NPRS."""
    import warnings

    import statsmodels.api as sm

    from ptanalytics.metrics import patient_summary
    from ptanalytics.metrics.responders import flag_responders

    flags = flag_responders(
        patient_summary(cohort), preset="ostelo", timepoint="followup", analysis="completers"
    )
    a = _active(design, flags)
    y = flags["responder"].to_numpy(dtype=float)
    if len(y) < 10 or a.min() == a.max() or y.min() == y.max():
        return float("nan"), float("nan"), False, None
    x = np.column_stack([np.ones(len(y)), a, flags["nprs_baseline"].to_numpy(dtype=float)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # separation or no convergence: a failed fit
        try:
            fit = sm.GLM(y, x, family=sm.families.Binomial()).fit()
        except (Warning, ValueError, np.linalg.LinAlgError):
            return float("nan"), float("nan"), False, None
    return float(fit.params[1]), float(fit.bse[1]), bool(fit.converged), None


def _adherence(design: SimulatorDesign, cohort, start):
    data = _completers(cohort, ["nprs_change_followup", "nprs_baseline", "adherence"])
    x = np.column_stack(
        [np.ones(len(data)), data["adherence"].to_numpy(dtype=float),
         data["nprs_baseline"].to_numpy(dtype=float)]
    )  # fmt: skip
    return (*_ols_term(data["nprs_change_followup"].to_numpy(dtype=float), x, 1), None)


def _category(design: SimulatorDesign, cohort, start):
    from ptanalytics.metrics import patient_summary
    from ptanalytics.models.outcomes import category_substitution

    try:
        fit = category_substitution(
            patient_summary(cohort), timepoint="followup", pairs=[design.substitution]
        )
    except (ConfigError, ValueError, np.linalg.LinAlgError):
        return float("nan"), float("nan"), False, None
    if len(fit.table) == 0:  # nobody had 10% of their time in the first category
        return float("nan"), float("nan"), False, None
    row = fit.table.iloc[0]
    return float(row["estimate"]), float(row["std_error"]), True, None


def _complier(design: SimulatorDesign, cohort, start):
    from ptanalytics.models.causal import complier_effect

    data = _completers(cohort, ["nprs_change_followup", "nprs_baseline", "adherence"])
    try:
        fit = complier_effect(
            data,
            outcome="nprs_change_followup",
            exposure="adherence",
            instrument="arm",
            instrument_level=design.config.trial_arms[0],
            covariates=["nprs_baseline"],
        )
    except ConfigError:
        return float("nan"), float("nan"), False, None
    row = fit.table.iloc[0]
    return float(row["estimate"]), float(row["std_error"]), True, None


_ANALYSE = {
    "slope": _slope,
    "followup": _followup,
    "responder": _responder,
    "adherence": _adherence,
    "category": _category,
    "complier": _complier,
}


def _task(args: tuple) -> list[tuple]:
    """One task: a chunk of replications of one size (module level: it is sent to workers)."""
    design, n, reps, seed = args
    chunk = _two_arm_chunk if isinstance(design, TwoArmSlope) else _simulator_chunk
    return chunk(design, n, reps, seed)


# ------------------------------------------------------------------------------------ result
@dataclass
class PowerResult:
    """Power by simulation: ``table`` (one row per n), ``n`` (the largest n), ``notes``,
    :meth:`figure` (the power curve) and :meth:`n_for` (the n for a target power).

    ``table`` columns: ``n``, ``replications``, ``rejections``, ``failed`` (fits that did not
    converge or could not be made; counted as not rejecting), ``power``, ``mc_se`` (its Monte
    Carlo SE, sqrt(p (1 - p) / R)), ``ci_low``/``ci_high`` (95% Wilson interval),
    ``analytic_power`` (where the design has it), ``mean_estimate``, ``sd_estimate``,
    ``mean_std_error``.
    """

    table: pd.DataFrame
    n: int
    notes: list[str]
    design: Any
    alpha: float
    seed: int
    estimates: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    def n_for(self, target: float = 0.8) -> float:
        """The n at which the power curve reaches ``target``, by linear interpolation between
        the two sizes that bracket it (NaN when none do: add larger or smaller n)."""
        target = check_number("target", target, low=0, high=1, inclusive=False)
        t = self.table.sort_values("n")
        n, p = t["n"].to_numpy(dtype=float), t["power"].to_numpy(dtype=float)
        if len(n) and p[0] >= target:
            return float(n[0])
        for i in range(1, len(n)):
            if p[i - 1] < target <= p[i]:
                return float(n[i - 1] + (target - p[i - 1]) * (n[i] - n[i - 1]) / (p[i] - p[i - 1]))
        return float("nan")

    def figure(self, ax=None, target: float = 0.8):
        """The power curve with its Monte Carlo intervals (and the analytic curve, if any)."""
        from ptanalytics.plotting import plot_power

        return plot_power(self.table, target=target, ax=ax)


def power(
    design,
    *,
    n,
    replications: int = 500,
    alpha: float = 0.05,
    seed: int,
    analysis: str | None = None,
    workers: int | None = None,
    backend: str = "processes",
    client=None,
    progress: bool | None = None,
) -> PowerResult:
    """Power of ``design``'s test at each sample size in ``n``, by simulation.

    Parameters
    ----------
    design : TwoArmSlope, SimulatorDesign, mapping or path
        The design (a mapping or a TOML file as :func:`load_design` reads).
    n : int or list of int
        Patients in all (both arms) per simulated study.
    replications : int
        Simulated studies per n (500 gives a Monte Carlo SE of at most 0.022).
    alpha : float
        Two-sided significance level of the Wald test.
    seed : int
        Same seed, same table, whatever ``workers`` and ``backend``.
    analysis : str, optional
        Replaces a simulator design's analysis (:data:`ANALYSES`).
    workers, backend, client
        Where the replications run (:func:`ptanalytics.studies._pool.run_tasks`): local
        processes (default: every core) or ``backend="dask"`` (``client``: a
        ``distributed.Client``; without one a ``LocalCluster`` of ``workers`` is started).
    progress : bool, optional
        A progress line on stderr; by default shown for runs of 20 tasks (500 studies) or
        more.

    Examples
    --------
    >>> from ptanalytics.studies.power import TwoArmSlope, power
    >>> design = TwoArmSlope(slope_difference=-0.15)
    >>> res = power(design, n=[60, 120], replications=50, seed=1, workers=1)
    >>> res.table[["n", "power", "analytic_power"]].round(2).to_dict("list")
    {'n': [60, 120], 'power': [0.72, 0.9], 'analytic_power': [0.65, 0.91]}
    >>> round(res.n_for(0.8))
    87
    """
    from ptanalytics.studies._pool import run_tasks

    if isinstance(design, (str, Path)):
        design = load_design(design)
    elif isinstance(design, dict):
        design = design_from_mapping(design)
    elif not isinstance(design, (TwoArmSlope, SimulatorDesign)):
        raise ConfigError(
            f"design is a {type(design).__name__}; allowed: TwoArmSlope, SimulatorDesign, a "
            "mapping with 'kind', or the path of a design TOML file."
        )
    if analysis is not None:
        if not isinstance(design, SimulatorDesign):
            raise ConfigError(
                "analysis= applies to simulator designs; TwoArmSlope tests its slope."
            )
        design = SimulatorDesign(**{**_fields(design), "analysis": analysis})
    alpha = check_alpha(alpha)
    seed = check_seed(seed)
    sizes = [n] if isinstance(n, (int, float, np.number)) and not isinstance(n, bool) else n
    sizes = _sequence("n", sizes)
    if not sizes:
        raise ConfigError("n=[]; allowed: one or more whole numbers of patients.")
    sizes = [
        int(check_number("n", v, low=design.min_n, integer=True,
                         what=f"a whole number >= {design.min_n} (patients in all)"))
        for v in sizes
    ]  # fmt: skip
    if len(set(sizes)) < len(sizes):
        raise ConfigError(f"n={sizes}; each sample size once.")
    replications = int(check_number("replications", replications, low=10, integer=True))
    tasks = [
        (design, size, range(lo, min(lo + CHUNK, replications)), seed)
        for size in sizes
        for lo in range(0, replications, CHUNK)
    ]
    if progress is None:
        progress = len(tasks) >= 20
    parts = run_tasks(
        _task, tasks, workers=workers, backend=backend, client=client, label="power",
        progress=bool(progress),
    )  # fmt: skip
    rows = []
    for (_, size, reps, _), part in zip(tasks, parts, strict=True):
        rows += [(size, r, *values) for r, values in zip(reps, part, strict=True)]
    est = pd.DataFrame(rows, columns=["n", "replication", "estimate", "std_error", "converged"])
    table = _summarise(est, design, alpha)
    notes = _notes(design, table, alpha, seed, replications)
    return PowerResult(table, max(sizes), notes, design, alpha, seed, est)


def _fields(design) -> dict:
    return {f.name: getattr(design, f.name) for f in fields(design)}


def _summarise(est: pd.DataFrame, design, alpha: float) -> pd.DataFrame:
    z = stats.norm.ppf(1 - alpha / 2)
    ok = est["converged"] & np.isfinite(est["estimate"]) & (est["std_error"] > 0)
    reject = ok & (est["estimate"].abs() > z * est["std_error"])
    rows = []
    for size, idx in est.groupby("n", sort=False).groups.items():
        part = est.loc[idx]
        r = len(part)
        k = int(reject.loc[idx].sum())
        p = k / r
        lo, hi = _wilson(k, r)
        good = part[ok.loc[idx]]
        rows.append(
            {
                "n": int(size),
                "replications": r,
                "rejections": k,
                "failed": int(r - len(good)),
                "power": p,
                "mc_se": math.sqrt(p * (1 - p) / r),
                "ci_low": lo,
                "ci_high": hi,
                "analytic_power": design.analytic_power(int(size), alpha),
                "mean_estimate": float(good["estimate"].mean()) if len(good) else np.nan,
                "sd_estimate": float(good["estimate"].std(ddof=1)) if len(good) > 1 else np.nan,
                "mean_std_error": float(good["std_error"].mean()) if len(good) else np.nan,
            }
        )
    return pd.DataFrame(rows).sort_values("n", ignore_index=True)


def _wilson(k: int, r: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval of k successes in r."""
    p = k / r
    centre = (p + z * z / (2 * r)) / (1 + z * z / r)
    half = z * math.sqrt(p * (1 - p) / r + z * z / (4 * r * r)) / (1 + z * z / r)
    return max(0.0, centre - half), min(1.0, centre + half)


def _notes(design, table: pd.DataFrame, alpha: float, seed: int, replications: int) -> list[str]:
    if isinstance(design, TwoArmSlope):
        what = (
            f"two-arm slope design, slope difference {design.slope_difference:g} NPRS points "
            f"per week, assessments at weeks {', '.join(f'{w:g}' for w in design.weeks)}"
        )
        test = ANALYSES["slope"]
    else:
        extra = ", ".join(f"{k} = {v!r}" for k, v in sorted(design.parameters.items()))
        what = f"simulator scenario {design.scenario!r}" + (f" with {extra}" if extra else "")
        test = ANALYSES[design.analysis]
    notes = [
        f"{what}; tested: {test}; two-sided, alpha {alpha:g}",
        f"{replications} simulated studies per n, seed {seed}; power's Monte Carlo SE is "
        "sqrt(p (1 - p) / replications) and its interval Wilson's",
    ]
    failed = int(table["failed"].sum())
    if failed:
        notes.append(
            f"{failed} fit(s) did not converge or could not be made (an arm empty, too few "
            "patients followed); they count as not rejecting, so power is if anything "
            "understated"
        )
    return notes


_TABLE_COLUMNS = (
    "n", "replications", "rejections", "failed", "power", "mc_se", "ci_low", "ci_high",
    "analytic_power", "mean_estimate", "sd_estimate", "mean_std_error",
)  # fmt: skip
_FIGURE_MARK = "ptanalytics power curve"


def _own_table(path: Path) -> str | None:
    """None when ``path`` is a power table this module wrote (its header), else why not."""
    with open(path, "rb") as fh:
        first = fh.readline().decode("utf-8", "replace").strip()
    return None if first == ",".join(_TABLE_COLUMNS) else "is not a ptanalytics power table"


def _own_figure(path: Path) -> str | None:
    """None when ``path`` is a power curve this module wrote (its PNG text chunk)."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    return None if _FIGURE_MARK.encode() in head else "is not a ptanalytics power curve"


def check_outputs(table=None, figure=None) -> None:
    """Refuse, before a run, a table or figure destination that the writers would refuse."""
    from ptanalytics.cohort._atomic import check_file

    if table is not None:
        check_file(table, owned=_own_table, what="power table")
    if figure is not None:
        check_file(figure, owned=_own_figure, what="power curve")


def write_power_table(result: PowerResult, path) -> Path:
    """Write ``result.table`` as CSV, atomically; an existing file is replaced only when it is a
    power table written here."""
    from ptanalytics.cohort._atomic import replace_file
    from ptanalytics.cohort.io import safe_csv

    text = safe_csv(result.table[list(_TABLE_COLUMNS)]).to_csv(index=False, float_format="%.6g")
    check_outputs(table=path)
    return replace_file(path, text.encode("utf-8"), owned=_own_table)


def write_power_figure(result: PowerResult, path, *, target: float = 0.8) -> Path:
    """Write the power curve as PNG (no timestamp: same seed, same bytes), atomically; an
    existing file is replaced only when it is a power curve written here."""
    import io

    import matplotlib.pyplot as plt

    from ptanalytics.cohort._atomic import replace_file

    check_outputs(figure=path)
    fig = result.figure(target=target)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, metadata={"Software": _FIGURE_MARK})
    plt.close(fig)
    return replace_file(path, buf.getvalue(), owned=_own_figure)
