"""The generative model of the simulator: patients, their random draws and the weekly process.

The generating model (all parameters in :class:`~ptanalytics.simulate.config.SimulationConfig`,
described in ``docs/simulator.md``), week by week for every patient at once (no loop over patients):

* **Baseline.** Latent pain ``b_i ~ N(mean, sd_latent)``; observed NPRS adds measurement noise and
  is rounded to an integer in 0-10. ODI is driven by latent pain.
* **Program.** A planned guided phase (supervised + home sessions), reviewed at ``review_week``:
  non-responders may be extended, early responders shortened. Then home maintenance to the horizon.
  Each patient gets ``exercises_per_session`` catalogue exercises drawn by a personal Dirichlet
  category mix.
* **Adherence.** Each prescribed session is attended with probability
  ``expit(z_i + slope_class * (week - centre) + maintenance shift + supervised bonus + feedback)``
  where the feedback is ``c1 (R_it - R_i0) + c2 (R_it - R_i,t-1)`` on the reported NPRS ``R`` of
  the assessment that opens the week (whether or not it was recorded): pain that has not improved
  lowers adherence, which in turn raises pain (treatment-confounder feedback).
* **Pain.** ``P_it = b_i + (natural_slope + u_i) t - B_i (1 - exp(-D_it / dose_scale)) +
  co-interventions``, where the dose ``D`` accumulates attended sessions weighted by the patient's
  category effectiveness and decays with ``dose_half_life_weeks`` (gains are lost when exercise
  stops). Observed NPRS = round(P + noise), clipped to 0-10.
* **Dropout.** Weekly hazard ``expit(h0 + k (change_it - mean change of those at risk))``, lower in
  maintenance; no sessions or assessments afterwards (the final follow-up is sometimes obtained).

All draws are made up front from one ``numpy.random.Generator`` so that counterfactual runs (forced
adherence, another program length, another category mix) reuse the same random numbers: the true
effects in ``truth.json`` are exact contrasts for the simulated patients (:mod:`._truth`). The
order of the draws is part of the output: changing it changes every simulated cohort.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptanalytics.cohort.catalogue import exercise_catalogue
from ptanalytics.simulate.config import SimulationConfig
from ptanalytics.vocab import CATEGORIES, CHRONICITIES, COINTERVENTION_KINDS, TRAJECTORY_CLASSES

__all__ = [
    "Draws",
    "Patients",
    "Run",
    "cointervention_effect",
    "draw_loop",
    "draw_patients",
    "expit",
    "logit",
    "nprs_observed",
    "observed_weeks",
    "run",
    "slots",
    "trial_planned_weeks",
]


def expit(x: np.ndarray) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-x))``.

    Not ``scipy.special.expit``, which differs from this formula by up to 2 ulp (2.2e-16) in
    about 1.4% of the adherence propensities (8 of the 300 patients of the default cohort;
    measured with SciPy 1.17.1, seeds 20240108, 7 and 1), so ``truth_patients`` would no longer
    be byte-identical to the cohorts simulated before. The tables and truth.json did not move.
    """
    return 1.0 / (1.0 + np.exp(-x))


def logit(p: float) -> float:
    """The log-odds ``log(p / (1 - p))`` of a probability.

    Not ``scipy.special.logit``, which differs in the last bit for some ``p`` (0.6: 5.6e-17; 0.3:
    1.1e-16), and so would move every adherence propensity of such a config by 1 ulp and change
    ``truth_patients``; kept for byte-identical cohorts (see :func:`expit`).
    """
    return float(np.log(p / (1 - p)))


def nprs_observed(latent: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Round half up and clip to the 0-10 integer scale."""
    return np.clip(np.floor(latent + noise + 0.5), 0, 10)


@dataclass
class Patients:
    """Per-patient fixed draws (arrays of length N)."""

    n: int
    enrolled: np.ndarray  # datetime64[D]
    age: np.ndarray
    female: np.ndarray
    chronicity: np.ndarray
    clinic: np.ndarray
    therapist: np.ndarray
    baseline: np.ndarray  # latent NPRS
    slope: np.ndarray  # natural-history slope per week
    benefit_max: np.ndarray
    propensity_logit: np.ndarray
    trajectory: np.ndarray  # index into TRAJECTORY_CLASSES
    planned_weeks: np.ndarray
    exercises: np.ndarray  # (N, k) catalogue row indices, sorted
    shares: np.ndarray  # (N, 5) prescribed time shares by category
    effectiveness: np.ndarray  # dose weight per session
    odi0: np.ndarray
    co_has: np.ndarray  # (N, K) bool
    co_start_day: np.ndarray  # (N, K) days from enrolment
    arm: np.ndarray | None = None  # bool: randomised to the active arm of cfg.trial (or None)


@dataclass
class Draws:
    """Random numbers used inside the week loop (shared by counterfactual runs)."""

    attend: np.ndarray  # (N, H, S)
    drop: np.ndarray  # (N, H)
    noise: np.ndarray  # (N, H+1) NPRS measurement noise
    miss: np.ndarray  # (N, H+1)
    adjust: np.ndarray  # (N,)
    followup: np.ndarray  # (N,)


@dataclass
class Run:
    """What one run of the program did: latent pain, attendance, guided length and dropout."""

    pain: np.ndarray  # (N, H+1) latent NPRS at the start of each week (week H = follow-up)
    attended: np.ndarray  # (N, H, S) bool
    guided_weeks: np.ndarray  # actual guided length
    dropout_week: np.ndarray  # first week without the patient, or -1


# ---------------------------------------------------------------------------------------- slots
def slots(cfg: SimulationConfig):
    """Session slots within a week: day offsets, supervised flag, active in guided / maintenance."""
    n_sup, n_home = cfg.guided_supervised_per_week, cfg.guided_home_per_week
    n_maint = cfg.maintenance_home_per_week
    s = max(n_sup + n_home, n_maint, 1)
    days = np.floor(np.arange(s) * 7 / s).astype(np.int64)
    supervised = np.arange(s) < n_sup
    guided_active = np.arange(s) < n_sup + n_home
    maint_active = np.arange(s) < n_maint
    return days, supervised, guided_active, maint_active


# ---------------------------------------------------------------------------------------- draws
def draw_patients(n: int, cfg: SimulationConfig, rng: np.random.Generator) -> Patients:
    """Draw every patient's fixed characteristics, in the generator order the outputs rely on."""
    demographics = _draw_demographics(n, cfg, rng)
    baseline = rng.normal(cfg.nprs_baseline_mean, cfg.latent_nprs_sd, n)
    slope = cfg.natural_slope + rng.normal(0.0, cfg.natural_slope_sd, n)
    cv = cfg.benefit_max_cv
    benefit_max = cfg.benefit_max * np.exp(rng.normal(-cv * cv / 2, cv, n))
    propensity = _draw_propensity(baseline, cfg, rng)
    trajectory = rng.choice(
        len(TRAJECTORY_CLASSES), n, p=[cfg.trajectory_shares[t] for t in TRAJECTORY_CLASSES]
    )
    weeks = np.array(list(cfg.guided_weeks_mix))
    planned = weeks[rng.choice(len(weeks), n, p=list(cfg.guided_weeks_mix.values()))]
    planned = np.minimum(planned, cfg.horizon_weeks)
    mix = _draw_category_mix(n, cfg, rng)
    exercises, shares = _draw_exercises(mix, cfg.exercises_per_session, rng)
    eff = np.array([cfg.category_effectiveness[c] for c in CATEGORIES])
    odi0 = cfg.odi_intercept + cfg.odi_per_nprs * baseline + rng.normal(0.0, cfg.odi_sd, n)
    co_has, co_start_day = _draw_cointerventions(n, cfg, rng)
    return Patients(
        n=n,
        **demographics,
        baseline=baseline,
        slope=slope,
        benefit_max=benefit_max,
        propensity_logit=propensity,
        trajectory=trajectory,
        planned_weeks=planned,
        exercises=exercises,
        shares=shares,
        effectiveness=shares @ eff,
        odi0=odi0,
        co_has=co_has,
        co_start_day=co_start_day,
    )


def _draw_demographics(n: int, cfg: SimulationConfig, rng: np.random.Generator) -> dict:
    """Enrolment date, age, sex, chronicity, clinic and therapist (the ``patients`` table)."""
    start = np.datetime64(cfg.start, "D")
    enrolled = start + rng.integers(0, cfg.recruitment_days + 1, n).astype("timedelta64[D]")
    age = np.clip(
        np.floor(rng.normal(cfg.age_mean, cfg.age_sd, n) + 0.5), cfg.age_min, cfg.age_max
    ).astype(np.int64)
    female = rng.random(n) < cfg.female_share
    chronicity = rng.choice(
        len(CHRONICITIES), n, p=[cfg.chronicity_shares[c] for c in CHRONICITIES]
    )
    clinic = rng.integers(0, cfg.n_clinics, n)
    therapist = clinic * cfg.therapists_per_clinic + rng.integers(0, cfg.therapists_per_clinic, n)
    return {
        "enrolled": enrolled,
        "age": age,
        "female": female,
        "chronicity": chronicity,
        "clinic": clinic,
        "therapist": therapist,
    }


def _draw_propensity(
    baseline: np.ndarray, cfg: SimulationConfig, rng: np.random.Generator
) -> np.ndarray:
    """Adherence propensity (logit), confounded by baseline pain; +-inf when adherence is 1 or 0."""
    n = len(baseline)
    if 0 < cfg.adherence_mean < 1:
        return (
            logit(cfg.adherence_mean)
            + rng.normal(0.0, cfg.adherence_sd_logit, n)
            + cfg.adherence_per_baseline_nprs * (baseline - cfg.nprs_baseline_mean)
        )
    return np.full(n, np.inf if cfg.adherence_mean == 1 else -np.inf)


def _draw_category_mix(n: int, cfg: SimulationConfig, rng: np.random.Generator) -> np.ndarray:
    """(N, 5) Dirichlet category mixes via normalised gammas (a zero mean share gives zero)."""
    alpha = (
        np.array([cfg.category_mix_mean[c] for c in CATEGORIES]) * cfg.category_mix_concentration
    )
    gam = np.zeros((n, len(CATEGORIES)))
    pos = alpha > 0
    gam[:, pos] = rng.standard_gamma(alpha[pos], size=(n, int(pos.sum())))
    tot = gam.sum(axis=1, keepdims=True)
    return np.divide(gam, tot, out=np.tile(alpha / alpha.sum(), (n, 1)), where=tot > 0)


def _draw_exercises(
    mix: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Each patient's ``k`` catalogue exercises and the category shares of their minutes.

    Weighted sampling without replacement (Gumbel top-k); an exercise's weight is its category's
    mix divided by the number of exercises in that category. Returns the sorted catalogue row
    indices (N, k) and the time shares (N, 5).
    """
    cat = exercise_catalogue()
    n = len(mix)
    cat_idx = cat["category"].cat.codes.to_numpy()
    per_cat = np.bincount(cat_idx, minlength=len(CATEGORIES))
    with np.errstate(divide="ignore"):
        logw = np.log(mix[:, cat_idx] / per_cat[cat_idx])
    keys = logw + rng.gumbel(size=(n, len(cat)))
    chosen = np.sort(np.argsort(-keys, axis=1, kind="stable")[:, :k], axis=1)
    minutes = cat["duration_min"].to_numpy()[chosen]
    cat_of = cat_idx[chosen]
    shares = np.zeros((n, len(CATEGORIES)))
    for j in range(len(CATEGORIES)):
        shares[:, j] = (minutes * (cat_of == j)).sum(axis=1)
    shares /= shares.sum(axis=1, keepdims=True)
    return chosen, shares


def _draw_cointerventions(
    n: int, cfg: SimulationConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) whether each patient has an episode of each kind, and its start day."""
    kinds = COINTERVENTION_KINDS
    co_has = rng.random((n, len(kinds))) < np.array(
        [cfg.cointervention_probability[c] for c in kinds]
    )
    co_start_day = 7 * rng.integers(0, max(cfg.horizon_weeks, 1), (n, len(kinds))) + rng.integers(
        0, 7, (n, len(kinds))
    )
    return co_has, co_start_day


def draw_loop(n: int, cfg: SimulationConfig, rng: np.random.Generator) -> Draws:
    """Draw the uniforms and noise the week loop compares against (after :func:`draw_patients`)."""
    h = cfg.horizon_weeks
    s = len(slots(cfg)[0])
    return Draws(
        attend=rng.random((n, h, s)),
        drop=rng.random((n, h)),
        noise=rng.normal(0.0, cfg.measurement_sd, (n, h + 1)),
        miss=rng.random((n, h + 1)),
        adjust=rng.random(n),
        followup=rng.random(n),
    )


def cointervention_effect(p: Patients, cfg: SimulationConfig) -> np.ndarray:
    """(N, H+1): NPRS points added by active co-interventions at each assessment day 7t."""
    h = cfg.horizon_weeks
    day = 7 * np.arange(h + 1)
    effect = np.zeros((p.n, h + 1))
    for j, kind in enumerate(COINTERVENTION_KINDS):
        start = p.co_start_day[:, j, None]
        end = start + 7 * cfg.cointervention_weeks[kind] - 1
        active = p.co_has[:, j, None] & (start <= day) & (day <= end)
        effect += cfg.cointervention_effect[kind] * active
    return effect


# ---------------------------------------------------------------------------------------- loop
def run(
    p: Patients,
    d: Draws,
    cfg: SimulationConfig,
    co: np.ndarray,
    *,
    adherence: float | None = None,
    planned_weeks: np.ndarray | None = None,
    effectiveness: np.ndarray | None = None,
    dropout: bool = True,
    arm: np.ndarray | None = None,
    adherence_add: float = 0.0,
    adherence_make_up: float = 0.0,
    adherence_kept_at: float = 0.0,
    review: str = "natural",
    extend_below: float | None = None,
) -> Run:
    """Run the program week by week for all patients (vectorised over patients).

    ``adherence`` forces the attendance probability of every prescribed session; ``planned_weeks``
    and ``effectiveness`` replace the patients' own; ``dropout=False`` keeps everyone in;
    ``arm`` replaces the randomised arm of the config's trial (e.g. the active arm for everyone):
    encouragement shifts every session's attendance logit, a home-only guided phase has no
    supervised sessions (nor their attendance bonus), a length trial plans the arm's weeks.

    Regimes that keep the patients' own behaviour but change it: ``adherence_add`` adds to every
    session's attendance probability (capped at 1; after the feedback from pain, so the regime's
    own pain drives it), ``adherence_make_up`` makes up that share of the sessions the patient
    would have missed (the probability ``p`` becomes ``p + q (1 - p)``) and ``adherence_kept_at``
    makes a patient do every session of a week
    (from week 1) that opens with the share of their prescribed sessions done so far below it;
    ``review="natural"`` applies the config's review, ``"none"`` keeps the planned length and
    ``"rule"`` extends by ``extend_weeks`` every patient assessed at the review whose reported
    improvement is below ``extend_below`` (a deterministic dynamic regime, nobody shortened).
    """
    n, h = p.n, cfg.horizon_weeks
    days, sup, act_g, act_m = slots(cfg)
    traj_slope = np.array([cfg.trajectory_slope_declining, 0.0, cfg.trajectory_slope_increasing])[
        p.trajectory
    ]
    eff = p.effectiveness if effectiveness is None else effectiveness
    active_arm = np.zeros(n, dtype=bool) if cfg.trial is None else p.arm if arm is None else arm
    active_arm = np.asarray(active_arm, dtype=bool)
    shift = cfg.encouragement_log_odds * active_arm if cfg.trial == "encouragement" else 0.0
    home = active_arm if cfg.trial == "home_only" else None
    if planned_weeks is None and arm is not None and cfg.trial == "length":
        planned_weeks = trial_planned_weeks(active_arm, cfg)
    guided_weeks = (p.planned_weeks if planned_weeks is None else planned_weeks).copy()
    rho = 0.5 ** (1.0 / cfg.dose_half_life_weeks)
    h0 = logit(cfg.weekly_dropout_hazard) if cfg.dropout_by_week8 > 0 else -np.inf
    log_or_maint = (
        np.log(cfg.maintenance_dropout_odds_ratio)
        if cfg.maintenance_dropout_odds_ratio > 0
        else -np.inf
    )

    pain = np.empty((n, h + 1))
    pain[:, 0] = p.baseline + co[:, 0]
    attended = np.zeros((n, h, len(days)), dtype=bool)
    dose = np.zeros(n)
    active = np.ones(n, dtype=bool)
    dropout_week = np.full(n, -1, dtype=np.int64)
    idle_weeks = np.zeros(n, dtype=np.int64)
    reported0 = previous = nprs_observed(pain[:, 0], d.noise[:, 0])
    prescribed = np.zeros(n, dtype=np.int64)  # sessions prescribed before week w
    for w in range(h):
        if dropout and w >= 1 and cfg.dropout_by_week8 > 0:
            base = h0 + np.where(w >= guided_weeks, log_or_maint, 0.0)
            # Pain not improving, and no session last week (disengagement precedes leaving).
            risk = cfg.dropout_pain_log_odds * (pain[:, w] - pain[:, 0]) + (
                cfg.dropout_idle_log_odds * (idle_weeks > 0)
            )
            logit_h = base + _calibrated_offset(base, risk, active)
            drop = active & (d.drop[:, w] < expit(logit_h))
            dropout_week[drop] = w
            active &= ~drop
        if w == cfg.review_week and review != "none":
            rule = extend_below if review == "rule" else None
            guided_weeks = _review(d, cfg, pain, guided_weeks, active, w, rule)
        guided = w < guided_weeks
        reported = nprs_observed(pain[:, w], d.noise[:, w])
        feedback = cfg.adherence_per_nprs_change * (reported - reported0) + (
            cfg.adherence_per_weekly_nprs_change * (reported - previous)
        )
        previous = reported
        prob = _attendance_probability(
            p, cfg, w, guided, sup, traj_slope, adherence, shift + feedback, home
        )
        if adherence_add:
            prob = np.minimum(prob + adherence_add, 1.0)
        if adherence_make_up:
            prob = prob + adherence_make_up * (1.0 - prob)
        slot_on = np.where(guided[:, None], act_g[None, :], act_m[None, :])
        if adherence_kept_at and w >= 1:
            behind = attended[:, :w, :].sum(axis=(1, 2)) < adherence_kept_at * prescribed
            prob = np.where(behind[:, None], 1.0, prob)
        prescribed = prescribed + slot_on.sum(axis=1)
        att = (d.attend[:, w, :] < prob) & slot_on & active[:, None]
        attended[:, w, :] = att
        idle_weeks = np.where(att.any(axis=1), 0, idle_weeks + 1)
        dose = rho * dose + att.sum(axis=1) * eff
        benefit = p.benefit_max * (1.0 - np.exp(-dose / cfg.dose_scale))
        pain[:, w + 1] = p.baseline + p.slope * (w + 1) - benefit + co[:, w + 1]
    return Run(pain, attended, guided_weeks, dropout_week)


def _attendance_probability(
    p: Patients,
    cfg: SimulationConfig,
    w: int,
    guided: np.ndarray,
    sup: np.ndarray,
    traj_slope: np.ndarray,
    adherence: float | None,
    shift=0.0,
    home: np.ndarray | None = None,
) -> np.ndarray:
    """(N, S): probability of attending each session slot of week ``w``.

    ``adherence`` forces it; an ``adherence_mean`` of 0 or 1 gives it exactly; otherwise the
    patient's propensity moves with the trajectory class, the phase, supervision and ``shift``
    (the encouragement arm's logit shift and the feedback from pain); ``home`` marks patients
    whose guided phase is home-only (no supervised bonus).
    """
    n, s = p.n, len(sup)
    if adherence is not None:
        return np.full((n, s), adherence)
    if np.isinf(p.propensity_logit).all():
        return np.full((n, s), float(cfg.adherence_mean))
    base = (
        p.propensity_logit
        + traj_slope * (w - cfg.trajectory_center_week)
        + np.where(guided, 0.0, cfg.maintenance_adherence_shift)
        + shift
    )
    supervised = guided[:, None] & sup[None, :]
    if home is not None:
        supervised &= ~home[:, None]
    return expit(base[:, None] + cfg.supervised_adherence_shift * supervised)


def trial_planned_weeks(arm: np.ndarray, cfg: SimulationConfig) -> np.ndarray:
    """Planned guided weeks in a length trial: the longer arm's weeks or 8 (within the horizon)."""
    return np.minimum(np.where(arm, cfg.length_trial_weeks, 8), cfg.horizon_weeks)


def _calibrated_offset(base: np.ndarray, risk: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Offset ``b`` with mean(expit(base + risk + b)) = mean(expit(base)) over those at risk.

    The covariates (pain change, idleness) then decide *who* leaves, not *how many*: the weekly
    dropout rate stays the one ``dropout_by_week8`` sets. Solved by Newton's method; the result is
    ``b - risk`` so that it adds to ``base``.
    """
    if not active.any() or not np.isfinite(base).any():
        return np.zeros_like(base)
    b0, r = base[active], risk[active]
    target = expit(b0).mean()
    shift = 0.0 - r.mean()
    for _ in range(50):
        p = expit(b0 + r + shift)
        f, slope = p.mean() - target, (p * (1 - p)).mean()
        if abs(f) < 1e-12 or slope <= 0:
            break
        shift -= f / slope
    return risk + shift


def _review(d, cfg, pain, guided_weeks, active, w, extend_below=None):
    """Early-response review: extend non-responders, shorten early responders (observed NPRS).

    With ``extend_below``, the deterministic rule instead: every patient assessed at the review
    whose improvement is below it is extended, nobody is shortened."""
    obs0 = nprs_observed(pain[:, 0], d.noise[:, 0])
    obs = nprs_observed(pain[:, w], d.noise[:, w])
    rel = np.divide(obs0 - obs, obs0, out=np.zeros_like(obs0), where=obs0 > 0)
    seen = active & (w < guided_weeks) & (d.miss[:, w] >= cfg.missed_assessment)
    if extend_below is not None:
        extend = seen & (rel < extend_below)
        return np.where(
            extend, np.minimum(guided_weeks + cfg.extend_weeks, cfg.horizon_weeks), guided_weeks
        )
    extend = seen & (rel < cfg.extend_below_improvement) & (d.adjust < cfg.extend_probability)
    shorten = seen & (rel >= cfg.shorten_at_improvement) & (d.adjust >= 1 - cfg.shorten_probability)
    out = np.where(
        extend, np.minimum(guided_weeks + cfg.extend_weeks, cfg.horizon_weeks), guided_weeks
    )
    floor = max(cfg.min_guided_weeks, w)
    shorter = np.minimum(guided_weeks, np.maximum(guided_weeks - cfg.shorten_weeks, floor))
    return np.where(shorten, shorter, out)  # shortening never lengthens


def observed_weeks(p: Patients, r: Run, d: Draws, cfg: SimulationConfig) -> np.ndarray:
    """(N, H+1) bool: which weekly NPRS assessments exist in the data."""
    h = cfg.horizon_weeks
    t = np.arange(h + 1)[None, :]
    g = r.guided_weeks[:, None]
    scheduled = (t <= g) | ((t - g) % cfg.maintenance_assessment_every == 0) | (t == h)
    present = d.miss >= cfg.missed_assessment
    present[:, 0] = True
    dw = r.dropout_week[:, None]
    stayed = (dw < 0) | (t < dw) | ((t == h) & (d.followup[:, None] < cfg.followup_after_dropout))
    return scheduled & present & stayed
