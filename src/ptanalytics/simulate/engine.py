"""Simulate cohorts of low-back-pain exercise programs with known ground truth.

The generating model (all parameters in :class:`~ptanalytics.simulate.config.SimulationConfig`,
described in ``docs/simulator.md``), week by week for every patient at once (no loop over patients):

* **Baseline.** Latent pain ``b_i ~ N(mean, sd_latent)``; observed NPRS adds measurement noise and
  is rounded to an integer in 0-10. ODI is driven by latent pain.
* **Program.** A planned guided phase (supervised + home sessions), reviewed at ``review_week``:
  non-responders may be extended, early responders shortened. Then home maintenance to the horizon.
  Each patient gets ``exercises_per_session`` catalogue exercises drawn by a personal Dirichlet
  category mix.
* **Adherence.** Each prescribed session is attended with probability
  ``expit(z_i + slope_class * (week - centre) + maintenance shift + supervised bonus)``.
* **Pain.** ``P_it = b_i + (natural_slope + u_i) t - B_i (1 - exp(-D_it / dose_scale)) +
  co-interventions``, where the dose ``D`` accumulates attended sessions weighted by the patient's
  category effectiveness and decays with ``dose_half_life_weeks`` (gains are lost when exercise
  stops). Observed NPRS = round(P + noise), clipped to 0-10.
* **Dropout.** Weekly hazard ``expit(h0 + k (change_it - mean change of those at risk))``, lower in
  maintenance; no sessions or assessments afterwards (the final follow-up is sometimes obtained).

All draws are made up front from one ``numpy.random.Generator`` so that counterfactual runs (forced
adherence, another program length, another category mix) reuse the same random numbers: the true
effects in ``truth.json`` are exact contrasts for the simulated patients.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ptanalytics.cohort.catalogue import CATEGORIES, exercise_catalogue
from ptanalytics.cohort.io import (
    _TRUTH_PATIENTS,
    TABLE_NAMES,
    Cohort,
    _write_json,
    _write_table,
    atomic_folder,
    cohort_json,
)
from ptanalytics.cohort.schema import CHRONICITIES, COINTERVENTION_KINDS, PHASES, coerce_table
from ptanalytics.exceptions import ConfigError
from ptanalytics.simulate.config import TRAJECTORIES, SimulationConfig

__all__ = [
    "DEFAULT_PATIENTS",
    "DEFAULT_SEED",
    "default_cohort",
    "simulate_cohort",
    "simulate_to_disk",
]

TRUTH_FORMAT_VERSION = 1
#: Size and seed of the default synthetic cohort shipped in data/synthetic/default.
DEFAULT_PATIENTS = 300
DEFAULT_SEED = 20240108


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def _nprs_observed(latent: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Round half up and clip to the 0-10 integer scale."""
    return np.clip(np.floor(latent + noise + 0.5), 0, 10)


@dataclass
class _Patients:
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
    trajectory: np.ndarray  # index into TRAJECTORIES
    planned_weeks: np.ndarray
    exercises: np.ndarray  # (N, k) catalogue row indices, sorted
    shares: np.ndarray  # (N, 5) prescribed time shares by category
    effectiveness: np.ndarray  # dose weight per session
    odi0: np.ndarray
    co_has: np.ndarray  # (N, K) bool
    co_start_day: np.ndarray  # (N, K) days from enrolment


@dataclass
class _Draws:
    """Random numbers used inside the week loop (shared by counterfactual runs)."""

    attend: np.ndarray  # (N, H, S)
    drop: np.ndarray  # (N, H)
    noise: np.ndarray  # (N, H+1) NPRS measurement noise
    miss: np.ndarray  # (N, H+1)
    adjust: np.ndarray  # (N,)
    followup: np.ndarray  # (N,)


@dataclass
class _Run:
    pain: np.ndarray  # (N, H+1) latent NPRS at the start of each week (week H = follow-up)
    attended: np.ndarray  # (N, H, S) bool
    guided_weeks: np.ndarray  # actual guided length
    dropout_week: np.ndarray  # first week without the patient, or -1


# ---------------------------------------------------------------------------------------- slots
def _slots(cfg: SimulationConfig):
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
def _draw_patients(n: int, cfg: SimulationConfig, rng: np.random.Generator) -> _Patients:
    cat = exercise_catalogue()
    k = cfg.exercises_per_session
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

    baseline = rng.normal(cfg.nprs_baseline_mean, cfg.latent_nprs_sd, n)
    slope = cfg.natural_slope + rng.normal(0.0, cfg.natural_slope_sd, n)
    cv = cfg.benefit_max_cv
    benefit_max = cfg.benefit_max * np.exp(rng.normal(-cv * cv / 2, cv, n))

    if 0 < cfg.adherence_mean < 1:
        propensity = (
            _logit(cfg.adherence_mean)
            + rng.normal(0.0, cfg.adherence_sd_logit, n)
            + cfg.adherence_per_baseline_nprs * (baseline - cfg.nprs_baseline_mean)
        )
    else:
        propensity = np.full(n, np.inf if cfg.adherence_mean == 1 else -np.inf)
    trajectory = rng.choice(
        len(TRAJECTORIES), n, p=[cfg.trajectory_shares[t] for t in TRAJECTORIES]
    )
    weeks = np.array(list(cfg.guided_weeks_mix))
    planned = weeks[rng.choice(len(weeks), n, p=list(cfg.guided_weeks_mix.values()))]
    planned = np.minimum(planned, cfg.horizon_weeks)

    # Category mix: Dirichlet via normalised gammas (a zero mean share gives a zero share).
    alpha = (
        np.array([cfg.category_mix_mean[c] for c in CATEGORIES]) * cfg.category_mix_concentration
    )
    gam = np.zeros((n, len(CATEGORIES)))
    pos = alpha > 0
    gam[:, pos] = rng.standard_gamma(alpha[pos], size=(n, int(pos.sum())))
    tot = gam.sum(axis=1, keepdims=True)
    mix = np.divide(gam, tot, out=np.tile(alpha / alpha.sum(), (n, 1)), where=tot > 0)
    # Exercises: weighted sampling without replacement (Gumbel top-k); weight = mix / n in category.
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
    eff = np.array([cfg.category_effectiveness[c] for c in CATEGORIES])
    effectiveness = shares @ eff

    odi0 = cfg.odi_intercept + cfg.odi_per_nprs * baseline + rng.normal(0.0, cfg.odi_sd, n)

    kinds = COINTERVENTION_KINDS
    co_has = rng.random((n, len(kinds))) < np.array(
        [cfg.cointervention_probability[c] for c in kinds]
    )
    co_start_day = 7 * rng.integers(0, max(cfg.horizon_weeks, 1), (n, len(kinds))) + rng.integers(
        0, 7, (n, len(kinds))
    )
    return _Patients(
        n,
        enrolled,
        age,
        female,
        chronicity,
        clinic,
        therapist,
        baseline,
        slope,
        benefit_max,
        propensity,
        trajectory,
        planned,
        chosen,
        shares,
        effectiveness,
        odi0,
        co_has,
        co_start_day,
    )


def _draw_loop(n: int, cfg: SimulationConfig, rng: np.random.Generator) -> _Draws:
    h = cfg.horizon_weeks
    s = len(_slots(cfg)[0])
    return _Draws(
        attend=rng.random((n, h, s)),
        drop=rng.random((n, h)),
        noise=rng.normal(0.0, cfg.measurement_sd, (n, h + 1)),
        miss=rng.random((n, h + 1)),
        adjust=rng.random(n),
        followup=rng.random(n),
    )


def _cointervention_effect(p: _Patients, cfg: SimulationConfig) -> np.ndarray:
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
def _run(
    p: _Patients,
    d: _Draws,
    cfg: SimulationConfig,
    co: np.ndarray,
    *,
    adherence: float | None = None,
    planned_weeks: np.ndarray | None = None,
    effectiveness: np.ndarray | None = None,
    dropout: bool = True,
) -> _Run:
    """Run the program week by week for all patients (vectorised over patients).

    ``adherence`` forces the attendance probability of every prescribed session; ``planned_weeks``
    and ``effectiveness`` replace the patients' own; ``dropout=False`` keeps everyone in.
    """
    n, h = p.n, cfg.horizon_weeks
    days, sup, act_g, act_m = _slots(cfg)
    traj_slope = np.array([cfg.trajectory_slope_declining, 0.0, cfg.trajectory_slope_increasing])[
        p.trajectory
    ]
    eff = p.effectiveness if effectiveness is None else effectiveness
    guided_weeks = (p.planned_weeks if planned_weeks is None else planned_weeks).copy()
    rho = 0.5 ** (1.0 / cfg.dose_half_life_weeks)
    h0 = _logit(cfg.weekly_dropout_hazard) if cfg.dropout_by_week8 > 0 else -np.inf
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
    for w in range(h):
        if dropout and w >= 1 and cfg.dropout_by_week8 > 0:
            base = h0 + np.where(w >= guided_weeks, log_or_maint, 0.0)
            # Pain not improving, and no session last week (disengagement precedes leaving).
            risk = cfg.dropout_pain_log_odds * (pain[:, w] - pain[:, 0]) + (
                cfg.dropout_idle_log_odds * (idle_weeks > 0)
            )
            logit_h = base + _calibrated_offset(base, risk, active)
            drop = active & (d.drop[:, w] < _expit(logit_h))
            dropout_week[drop] = w
            active &= ~drop
        if w == cfg.review_week:
            guided_weeks = _review(p, d, cfg, co, pain, guided_weeks, active, w)
        guided = w < guided_weeks
        if adherence is not None:
            prob = np.full((n, len(days)), adherence)
        elif np.isinf(p.propensity_logit).all():
            prob = np.full((n, len(days)), float(cfg.adherence_mean))
        else:
            base = (
                p.propensity_logit
                + traj_slope * (w - cfg.trajectory_center_week)
                + np.where(guided, 0.0, cfg.maintenance_adherence_shift)
            )
            prob = _expit(
                base[:, None] + cfg.supervised_adherence_shift * (guided[:, None] & sup[None, :])
            )
        slot_on = np.where(guided[:, None], act_g[None, :], act_m[None, :])
        att = (d.attend[:, w, :] < prob) & slot_on & active[:, None]
        attended[:, w, :] = att
        idle_weeks = np.where(att.any(axis=1), 0, idle_weeks + 1)
        dose = rho * dose + att.sum(axis=1) * eff
        benefit = p.benefit_max * (1.0 - np.exp(-dose / cfg.dose_scale))
        pain[:, w + 1] = p.baseline + p.slope * (w + 1) - benefit + co[:, w + 1]
    return _Run(pain, attended, guided_weeks, dropout_week)


def _calibrated_offset(base: np.ndarray, risk: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Offset ``b`` with mean(expit(base + risk + b)) = mean(expit(base)) over those at risk.

    The covariates (pain change, idleness) then decide *who* leaves, not *how many*: the weekly
    dropout rate stays the one ``dropout_by_week8`` sets. Solved by Newton's method; the result is
    ``b - risk`` so that it adds to ``base``.
    """
    if not active.any() or not np.isfinite(base).any():
        return np.zeros_like(base)
    b0, r = base[active], risk[active]
    target = _expit(b0).mean()
    shift = 0.0 - r.mean()
    for _ in range(50):
        p = _expit(b0 + r + shift)
        f, slope = p.mean() - target, (p * (1 - p)).mean()
        if abs(f) < 1e-12 or slope <= 0:
            break
        shift -= f / slope
    return risk + shift


def _review(p, d, cfg, co, pain, guided_weeks, active, w):
    """Early-response review: extend non-responders, shorten early responders (observed NPRS)."""
    obs0 = _nprs_observed(pain[:, 0], d.noise[:, 0])
    obs = _nprs_observed(pain[:, w], d.noise[:, w])
    rel = np.divide(obs0 - obs, obs0, out=np.zeros_like(obs0), where=obs0 > 0)
    seen = active & (w < guided_weeks) & (d.miss[:, w] >= cfg.missed_assessment)
    extend = seen & (rel < cfg.extend_below_improvement) & (d.adjust < cfg.extend_probability)
    shorten = seen & (rel >= cfg.shorten_at_improvement) & (d.adjust >= 1 - cfg.shorten_probability)
    out = np.where(
        extend, np.minimum(guided_weeks + cfg.extend_weeks, cfg.horizon_weeks), guided_weeks
    )
    floor = max(cfg.min_guided_weeks, w)
    shorter = np.minimum(guided_weeks, np.maximum(guided_weeks - cfg.shorten_weeks, floor))
    return np.where(shorten, shorter, out)  # shortening never lengthens


# ---------------------------------------------------------------------------------------- tables
def _ids(prefix: str, idx: np.ndarray, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(idx.astype(str), width))


def _observed_weeks(p: _Patients, r: _Run, d: _Draws, cfg: SimulationConfig) -> np.ndarray:
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


def _patients_table(p: _Patients, ids: np.ndarray, cfg: SimulationConfig) -> pd.DataFrame:
    cw = max(2, len(str(cfg.n_clinics)))
    tw = max(3, len(str(cfg.n_clinics * cfg.therapists_per_clinic)))
    return pd.DataFrame(
        {
            "patient_id": pd.array(ids, dtype="str"),
            "enrolled_on": p.enrolled.astype("datetime64[s]"),
            "age": pd.array(p.age, dtype="Int64"),
            "sex": pd.Categorical.from_codes(
                np.where(p.female, 0, 1), categories=["female", "male", "other"]
            ),
            "chronicity": pd.Categorical.from_codes(p.chronicity, categories=list(CHRONICITIES)),
            "guided_weeks": pd.array(p.planned_weeks, dtype="Int64"),
            "followup_weeks": pd.array(np.full(p.n, cfg.horizon_weeks), dtype="Int64"),
            "clinic_id": pd.array(_ids("C", p.clinic + 1, cw), dtype="str"),
            "therapist_id": pd.array(_ids("T", p.therapist + 1, tw), dtype="str"),
        }
    )


def _prescriptions_table(p, r, ids, cfg) -> pd.DataFrame:
    cat = exercise_catalogue()
    n, k = p.exercises.shape
    g = r.guided_weeks
    has_maint = g < cfg.horizon_weeks
    parts = []
    for phase, rows in (("guided", np.ones(n, dtype=bool)), ("maintenance", has_maint)):
        idx = np.repeat(np.flatnonzero(rows), k)
        ex = p.exercises[rows].ravel()
        if phase == "guided":
            per_week = cfg.guided_supervised_per_week + cfg.guided_home_per_week
            sup = cfg.guided_supervised_per_week
            start = p.enrolled[idx]
            end = p.enrolled[idx] + (7 * g[idx] - 1).astype("timedelta64[D]")
        else:
            per_week, sup = cfg.maintenance_home_per_week, 0
            start = p.enrolled[idx] + (7 * g[idx]).astype("timedelta64[D]")
            end = p.enrolled[idx] + np.timedelta64(7 * cfg.horizon_weeks - 1, "D")
        parts.append(
            pd.DataFrame(
                {
                    "order": idx * 2 + (phase == "maintenance"),
                    "patient_id": ids[idx],
                    "phase": phase,
                    "exercise": cat["exercise"].to_numpy()[ex],
                    "category": cat["category"].to_numpy()[ex],
                    "sessions_per_week": per_week,
                    "supervised_per_week": sup,
                    "sets": cat["sets"].to_numpy()[ex],
                    "reps": cat["reps"].to_numpy()[ex],
                    "hold_s": cat["hold_s"].to_numpy()[ex],
                    "start_on": start.astype("datetime64[s]"),
                    "end_on": end.astype("datetime64[s]"),
                }
            )
        )
    out = pd.concat(parts, ignore_index=True)
    out = out.sort_values("order", kind="stable").drop(columns="order").reset_index(drop=True)
    return out


def _sessions_table(p, r, ids, cfg, rng) -> pd.DataFrame:
    cat = exercise_catalogue()
    days, sup, _, _ = _slots(cfg)
    pi, wk, sl = np.nonzero(r.attended)  # ordered by patient, week, slot: chronological
    k = p.exercises.shape[1]
    n_sessions = len(pi)
    # Every attended session logs at least one exercise (its anchor); others with completion prob.
    anchor = rng.integers(0, k, n_sessions)
    done = rng.random((n_sessions, k)) < cfg.exercise_completion
    done[np.arange(n_sessions), anchor] = True
    srow, pos = np.nonzero(done)
    i = pi[srow]
    ex = p.exercises[i, pos]
    week = wk[srow]
    guided = week < r.guided_weeks[i]
    supervised = guided & sup[sl[srow]]
    performed = p.enrolled[i] + (7 * week + days[sl[srow]]).astype("timedelta64[D]")

    aerobic = (cat["category"].to_numpy() == "aerobic")[ex]
    reps_p = cat["reps"].to_numpy()[ex].astype(np.int64)
    minutes_p = cat["duration_min"].to_numpy()[ex]
    partial = rng.random(len(ex)) < cfg.partial_dose_probability
    factor = np.where(partial, rng.uniform(0.5, 1.0, len(ex)), 1.0)
    reps = np.where(aerobic, reps_p, np.maximum(1, np.floor(reps_p * factor + 0.5)))
    frac = np.where(aerobic, factor, reps / reps_p)
    minutes = np.maximum(0.5, np.floor(minutes_p * frac * 2 + 0.5) / 2)
    return pd.DataFrame(
        {
            "patient_id": pd.Categorical.from_codes(i, categories=ids),
            "performed_on": performed.astype("datetime64[s]"),
            "phase": pd.Categorical.from_codes(np.where(guided, 0, 1), categories=list(PHASES)),
            "exercise": pd.Categorical.from_codes(ex, categories=cat["exercise"].to_list()),
            "category": pd.Categorical.from_codes(
                cat["category"].cat.codes.to_numpy()[ex], categories=list(CATEGORIES)
            ),
            "supervised": supervised,
            "sets": cat["sets"].to_numpy()[ex],
            "reps": reps.astype(np.int16),
            "hold_s": cat["hold_s"].to_numpy()[ex],
            "duration_min": minutes,
        }
    )


def _outcomes_table(p, r, d, ids, cfg, observed, odi_noise) -> pd.DataFrame:
    h = cfg.horizon_weeks
    nprs = _nprs_observed(r.pain, d.noise)
    i, t = np.nonzero(observed)
    frames = [pd.DataFrame({"i": i, "t": t, "instrument": "NPRS", "score": nprs[i, t]})]
    # ODI at baseline, end of the guided phase and the horizon, when that NPRS was collected.
    g = r.guided_weeks
    odi_weeks = np.stack([np.zeros(p.n, dtype=np.int64), g, np.full(p.n, h)], axis=1)
    rows = np.repeat(np.arange(p.n), 3)
    tw = odi_weeks.ravel()
    keep = observed[rows, tw]
    keep &= ~np.concatenate([[False], (rows[1:] == rows[:-1]) & (tw[1:] == tw[:-1])])
    rows, tw = rows[keep], tw[keep]
    col = np.tile(np.arange(3), p.n)[keep]
    latent = (
        p.odi0[rows]
        + cfg.odi_per_nprs_change * (r.pain[rows, tw] - r.pain[rows, 0])
        + np.where(tw > 0, odi_noise[rows, col], 0.0)
    )
    odi = np.clip(2 * np.floor(latent / 2 + 0.5), 0, 100)
    frames.append(pd.DataFrame({"i": rows, "t": tw, "instrument": "ODI", "score": odi}))
    out = pd.concat(frames, ignore_index=True)
    out = out.sort_values(["i", "t", "instrument"], kind="stable").reset_index(drop=True)
    return pd.DataFrame(
        {
            "patient_id": pd.array(ids[out["i"].to_numpy()], dtype="str"),
            "assessed_on": (
                p.enrolled[out["i"].to_numpy()] + (7 * out["t"].to_numpy()).astype("timedelta64[D]")
            ).astype("datetime64[s]"),
            "instrument": pd.array(out["instrument"], dtype="str"),
            "score": out["score"].astype("float64"),
        }
    )


def _cointerventions_table(p, r, ids, cfg) -> pd.DataFrame:
    h = cfg.horizon_weeks
    until = np.where(r.dropout_week >= 0, 7 * r.dropout_week, 7 * h)  # recorded while in care
    rows, kinds = np.nonzero(p.co_has & (p.co_start_day < until[:, None]))
    start = p.co_start_day[rows, kinds]
    length = np.array([cfg.cointervention_weeks[k] for k in COINTERVENTION_KINDS])[kinds]
    return pd.DataFrame(
        {
            "patient_id": pd.array(ids[rows], dtype="str"),
            "kind": pd.Categorical.from_codes(kinds, categories=list(COINTERVENTION_KINDS)),
            "start_on": (p.enrolled[rows] + start.astype("timedelta64[D]")).astype("datetime64[s]"),
            "end_on": (p.enrolled[rows] + (start + 7 * length - 1).astype("timedelta64[D]")).astype(
                "datetime64[s]"
            ),
        }
    )


def _truth_patients(p, r, ids, cfg) -> pd.DataFrame:
    g = r.guided_weeks
    h = cfg.horizon_weeks
    adjusted = np.where(
        g > np.minimum(p.planned_weeks, h),
        "extended",
        np.where(g < p.planned_weeks, "shortened", "none"),
    )
    _, _, act_g, act_m = _slots(cfg)
    per_week_g, per_week_m = int(act_g.sum()), int(act_m.sum())
    weeks = np.arange(h)[None, :]
    guided_wk = weeks < g[:, None]
    attended_wk = r.attended.sum(axis=2)
    presc_g = (guided_wk * per_week_g).sum(axis=1)
    presc_m = (~guided_wk * per_week_m).sum(axis=1)
    done_g = (attended_wk * guided_wk).sum(axis=1)
    done_m = (attended_wk * ~guided_wk).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        adh_g = np.where(presc_g > 0, done_g / presc_g, np.nan)
        adh_m = np.where(presc_m > 0, done_m / presc_m, np.nan)
    last_week = np.where(
        attended_wk.any(axis=1), h - 1 - np.argmax(attended_wk[:, ::-1] > 0, axis=1), -1
    )
    out = {
        "patient_id": pd.array(ids, dtype="str"),
        "baseline_nprs_latent": p.baseline,
        "natural_slope": p.slope,
        "benefit_max": p.benefit_max,
        "adherence_propensity": _expit(p.propensity_logit),
        "adherence_trajectory": pd.array(np.array(TRAJECTORIES)[p.trajectory], dtype="str"),
        "effectiveness_per_session": p.effectiveness,
    }
    for j, c in enumerate(CATEGORIES):
        out[f"share_{c}"] = p.shares[:, j]
    out |= {
        "planned_guided_weeks": p.planned_weeks,
        "guided_weeks_actual": g,
        "guided_adjustment": pd.array(adjusted, dtype="str"),
        "dropout_week": pd.array(
            np.where(r.dropout_week >= 0, r.dropout_week, pd.NA), dtype="Int64"
        ),
        "last_active_week": pd.array(np.where(last_week >= 0, last_week, pd.NA), dtype="Int64"),
        "sessions_prescribed_guided": presc_g,
        "sessions_done_guided": done_g,
        "adherence_guided": adh_g,
        "sessions_prescribed_maintenance": presc_m,
        "sessions_done_maintenance": done_m,
        "adherence_maintenance": adh_m,
        "nprs_latent_end_guided": r.pain[np.arange(p.n), g],
        "nprs_latent_followup": r.pain[:, h],
    }
    return pd.DataFrame(out)


# ---------------------------------------------------------------------------------------- truth
def _mean(x: np.ndarray) -> float | None:
    return float(np.mean(x)) if len(x) else None


def _effects(p, d, cfg, co, r) -> list[tuple[dict[str, Any], int | None]]:
    """True effects, each named by the model term it corresponds to.

    Each effect comes with the number of patients a cohort-average contrast averages over (None
    for generating parameters), so that chunks of a large cohort can be pooled (``_pool_effects``).
    """
    h = cfg.horizon_weeks
    effects: list[tuple[dict[str, Any], int | None]] = []

    def add(term, model, value, scale, kind, definition, weight=None):
        effect = {
            "term": term,
            "model": model,
            "value": value,
            "scale": scale,
            "kind": kind,
            "definition": definition,
        }
        effects.append((effect, weight))

    add(
        "sd(Intercept|patient_id)",
        "pain_lmm",
        cfg.latent_nprs_sd,
        "NPRS points",
        "structural",
        "SD of latent baseline pain between patients.",
    )
    add(
        "sd(week|patient_id)",
        "pain_lmm",
        cfg.natural_slope_sd,
        "NPRS points per week",
        "structural",
        "SD of natural-history slopes between patients (exercise benefit adds "
        "further slope heterogeneity).",
    )
    add(
        "residual_sd",
        "pain_lmm",
        float(np.sqrt(cfg.measurement_sd**2 + 1 / 12)),
        "NPRS points",
        "approximate",
        "Measurement noise plus rounding to integers (clipping at 0 and 10 ignored).",
    )
    add(
        "natural_slope",
        "pain_lmm",
        cfg.natural_slope,
        "NPRS points per week",
        "structural",
        "Mean weekly change without exercise.",
    )
    for kind in COINTERVENTION_KINDS:
        add(
            f"cointervention[{kind}]",
            "pain_lmm",
            cfg.cointervention_effect[kind],
            "NPRS points",
            "structural",
            f"Pain difference while a {kind} episode is active (week of "
            f"assessment inside the episode).",
        )
    add(
        "pain_change_from_baseline",
        "dropout_hazard",
        cfg.dropout_pain_log_odds,
        "log odds (weekly hazard) per NPRS point",
        "structural",
        "Discrete-time dropout log-odds per point of latent pain change from baseline (a Cox "
        "log hazard ratio is close to this for small weekly hazards; observed, noisy pain "
        "attenuates it).",
    )

    # Counterfactual contrasts: same patients, same random numbers, nobody drops out.
    guided_week = 8 if h >= 8 else h
    full = _run(p, d, cfg, co, adherence=1.0, dropout=False)
    none = _run(p, d, cfg, co, adherence=0.0, dropout=False)
    for week, label in ((guided_week, f"week{guided_week}"), (h, "followup")):
        add(
            f"adherence_full_vs_none[{label}]",
            "counterfactual",
            float(np.mean(full.pain[:, week] - none.pain[:, week])),
            "NPRS points",
            "cohort_average",
            f"Mean latent NPRS at week {week} if every prescribed session were done minus if "
            f"none were, for these patients with no dropout (negative = less pain).",
            p.n,
        )
    natural = _run(p, d, cfg, co, dropout=False)
    shares = p.shares
    flex, core = CATEGORIES.index("flexibility"), CATEGORIES.index("core_strengthening")
    eligible = shares[:, flex] >= 0.10
    eff = np.array([cfg.category_effectiveness[c] for c in CATEGORIES])
    moved = p.effectiveness + 0.10 * (eff[core] - eff[flex])
    sub = _run(
        p, d, cfg, co, effectiveness=np.where(eligible, moved, p.effectiveness), dropout=False
    )
    for week, label in ((guided_week, f"week{guided_week}"), (h, "followup")):
        diff = sub.pain[eligible, week] - natural.pain[eligible, week]
        add(
            f"substitution[flexibility->core_strengthening,0.10][{label}]",
            "counterfactual",
            _mean(diff),
            "NPRS points",
            "cohort_average",
            f"Mean latent NPRS change at week {week} when 10% of exercise time moves from "
            f"flexibility to core strengthening, among patients with >= 10% flexibility time, at "
            f"their own attendance, no dropout.",
            int(eligible.sum()),
        )
    ref = 8
    for weeks in sorted(set(cfg.guided_weeks_mix) | {ref}):
        if weeks == ref or weeks > h:
            continue
        alt = _run(p, d, cfg, co, planned_weeks=np.full(p.n, weeks), dropout=False)
        base = _run(p, d, cfg, co, planned_weeks=np.full(p.n, ref), dropout=False)
        add(
            f"guided_weeks[{weeks}_vs_{ref}][followup]",
            "counterfactual",
            float(np.mean(alt.pain[:, h] - base.pain[:, h])),
            "NPRS points",
            "cohort_average",
            f"Mean latent NPRS at the follow-up (week {h}) if every patient were planned {weeks} "
            f"rather than {ref} guided weeks, own adherence and review rule, no dropout.",
            p.n,
        )
    return effects


def _calibration_samples(p, r, d, cfg, observed) -> dict[str, np.ndarray]:
    """The values each realised calibration statistic is a mean (or SD) of, by name."""
    h = cfg.horizon_weeks
    nprs = _nprs_observed(r.pain, d.noise)
    g = r.guided_weeks
    idx = np.arange(p.n)
    base = nprs[:, 0]
    out = {"baseline_nprs": base}
    for j, t in enumerate(TRAJECTORIES):
        out[f"trajectory_share_{t}"] = p.trajectory == j
    if h >= 8:
        out["dropout_by_week8"] = (r.dropout_week >= 0) & (r.dropout_week <= 8)
    # Completers of the guided phase with the end-of-guided NPRS observed.
    completer = ((r.dropout_week < 0) | (r.dropout_week > g)) & observed[idx, g]
    change = base - nprs[idx, g]
    responder = (change >= 2) | (change >= 0.3 * base)
    out["responder_end_guided_completers"] = responder[completer]
    _, _, act_g, _ = _slots(cfg)
    presc = g * int(act_g.sum())
    guided_wk = np.arange(h)[None, :] < g[:, None]
    done = (r.attended.sum(axis=2) * guided_wk).sum(axis=1)
    adh = np.divide(done, presc, out=np.full(p.n, np.nan), where=presc > 0)
    out["change_adherent_completers"] = change[completer & (adh >= 0.75)]
    out["change_nonadherent_completers"] = change[completer & (adh < 0.50)]
    out["adherence_guided"] = adh[~np.isnan(adh)]
    return out


class _SampleStats:
    """Means and SDs of calibration samples (one cohort, or one chunk of it)."""

    def __init__(self, samples: dict[str, np.ndarray]):
        self.samples = samples

    def __contains__(self, key: str) -> bool:
        return key in self.samples

    def count(self, key: str) -> int:
        return len(self.samples[key])

    def mean(self, key: str) -> float:
        return float(np.mean(self.samples[key]))

    def sd(self, key: str) -> float:
        return float(np.std(self.samples[key], ddof=1))

    def moments(self) -> _PooledStats:
        """Count, mean and sum of squared deviations of each sample, for pooling chunks."""
        out = {}
        for key, x in self.samples.items():
            mean = float(np.mean(x)) if len(x) else 0.0
            out[key] = (len(x), mean, float(np.sum((x - mean) ** 2)))
        return _PooledStats(out)


class _PooledStats:
    """The same statistics from (count, mean, M2) per sample, pooled over chunks exactly.

    Pooling uses the parallel update of Chan, Golub and LeVeque (1979): the pooled mean is the
    count-weighted mean of the chunk means and the SD uses the pooled sum of squared deviations.
    """

    def __init__(self, moments: dict[str, tuple[int, float, float]]):
        self.moments_ = moments

    def __contains__(self, key: str) -> bool:
        return key in self.moments_

    def count(self, key: str) -> int:
        return self.moments_[key][0]

    def mean(self, key: str) -> float:
        return self.moments_[key][1]

    def sd(self, key: str) -> float:
        n, _, m2 = self.moments_[key]
        return float(np.sqrt(m2 / (n - 1)))

    def pool(self, other: _PooledStats) -> _PooledStats:
        out = {}
        for key, (na, ma, m2a) in self.moments_.items():
            nb, mb, m2b = other.moments_[key]
            n = na + nb
            if n == 0:
                out[key] = (0, 0.0, 0.0)
                continue
            delta = mb - ma
            out[key] = (n, ma + delta * nb / n, m2a + m2b + delta * delta * na * nb / n)
        return _PooledStats(out)


def _calibration(cfg: SimulationConfig, st: _SampleStats | _PooledStats) -> dict[str, Any]:
    """Targets and what this cohort realised (documented in docs/simulator.md)."""
    out: dict[str, Any] = {}
    out["baseline_nprs_mean"] = {
        "target": cfg.nprs_baseline_mean,
        "realised": st.mean("baseline_nprs"),
    }
    out["baseline_nprs_sd"] = {
        "target": cfg.nprs_baseline_sd,
        "realised": st.sd("baseline_nprs") if st.count("baseline_nprs") > 1 else None,
    }
    for t in TRAJECTORIES:
        out[f"trajectory_share_{t}"] = {
            "target": cfg.trajectory_shares[t],
            "realised": st.mean(f"trajectory_share_{t}"),
        }
    if "dropout_by_week8" in st:
        out["dropout_by_week8"] = {
            "target": cfg.dropout_by_week8,
            "realised": st.mean("dropout_by_week8"),
        }

    def mean_or_none(key):
        return st.mean(key) if st.count(key) else None

    out["responder_share_end_guided_completers"] = {
        "target": [0.50, 0.70],
        "realised": mean_or_none("responder_end_guided_completers"),
        "definition": "NPRS improvement >= 2 points or >= 30% from baseline to the end of the "
        "guided phase, among patients observed there (completers).",
    }
    high, low = "change_adherent_completers", "change_nonadherent_completers"
    gap = (st.mean(high) - st.mean(low)) * 10 if st.count(high) and st.count(low) else None
    out["improvement_gap_adherent_vs_not_0_100"] = {
        "target": 15.0,
        "realised": gap,
        "definition": "Mean NPRS improvement (x10, on a 0-100 scale) to the end of the guided "
        "phase, completers with >= 75% of guided sessions done minus those with "
        "< 50%.",
    }
    out["adherence_guided_mean"] = {"target": None, "realised": mean_or_none("adherence_guided")}
    return out


# ---------------------------------------------------------------------------------------- public
def simulate_cohort(
    n_patients: int,
    *,
    seed: int,
    config: SimulationConfig | dict | None = None,
    **overrides: Any,
) -> Cohort:
    """Simulate a cohort of patients in a low-back-pain exercise program, with its ground truth.

    Parameters
    ----------
    n_patients : int
        Number of patients (at least 1).
    seed : int
        Seed of the random generator: the same seed and config give identical tables and
        byte-identical files.
    config : SimulationConfig or dict, optional
        Generating parameters (docs/simulator.md). Defaults are calibrated to published programs.
    **overrides
        Individual parameters, e.g. ``horizon_weeks=12``; applied on top of ``config``.

    Returns
    -------
    Cohort
        The five canonical tables (``patients``, ``prescriptions``, ``sessions``, ``outcomes``,
        ``cointerventions``; see docs/data_dictionary.md), ``truth`` (parameters, true effects by
        model term, calibration targets and realised values) and ``truth_patients`` (one row per
        patient: latent baseline pain, slopes, adherence propensity and trajectory class, category
        time shares, planned and actual guided weeks, dropout week, latent pain at the end of the
        guided phase and at follow-up).

    Raises
    ------
    ConfigError
        When ``n_patients`` or ``seed`` is invalid, or a parameter is unknown or out of range.

    See Also
    --------
    simulate_to_disk : the same simulation for cohorts too large to hold in memory.
    """
    cfg = _checked_config(n_patients, seed, config, overrides)
    n = int(n_patients)
    chunk = _simulate_chunk(n, cfg, np.random.default_rng(int(seed)), 1, _id_width(n))
    cohort = Cohort(**chunk.tables, metadata=_metadata(int(seed), n, cfg))
    cohort.truth_patients = chunk.truth_patients
    effects = [effect for effect, _ in chunk.effects]
    cohort.truth = _truth(int(seed), n, cfg, effects, _calibration(cfg, chunk.stats))
    return cohort


def _whole(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | np.integer)


def _checked_config(n_patients, seed, config, overrides) -> SimulationConfig:
    if not _whole(n_patients) or n_patients < 1:
        raise ConfigError(f"n_patients={n_patients!r}; allowed: a whole number >= 1.")
    if not _whole(seed) or seed < 0:
        raise ConfigError(f"seed={seed!r}; allowed: a whole number >= 0.")
    if isinstance(config, SimulationConfig):
        return SimulationConfig.from_mapping(config.to_dict(), **overrides) if overrides else config
    return SimulationConfig.from_mapping(config, **overrides)


def _id_width(n: int) -> int:
    """Digits of patient ids: at least 6, enough for the whole cohort."""
    return max(6, len(str(n)))


@dataclass
class _Chunk:
    """One simulated group of patients: its tables, truth and pooling weights."""

    tables: dict[str, pd.DataFrame]
    truth_patients: pd.DataFrame
    effects: list[tuple[dict[str, Any], int | None]]
    stats: _SampleStats


def _simulate_chunk(
    n: int, cfg: SimulationConfig, rng: np.random.Generator, first_id: int, width: int
) -> _Chunk:
    """Simulate ``n`` patients numbered from ``first_id`` with ids of ``width`` digits."""
    p = _draw_patients(n, cfg, rng)
    d = _draw_loop(n, cfg, rng)
    odi_noise = rng.normal(0.0, cfg.odi_noise_sd, (n, 3))
    co = _cointervention_effect(p, cfg)
    r = _run(p, d, cfg, co)
    observed = _observed_weeks(p, r, d, cfg)
    ids = _ids("P", np.arange(first_id, first_id + n), width)
    tables = {
        "patients": _patients_table(p, ids, cfg),
        "prescriptions": _prescriptions_table(p, r, ids, cfg),
        "sessions": _sessions_table(p, r, ids, cfg, rng),
        "outcomes": _outcomes_table(p, r, d, ids, cfg, observed, odi_noise),
        "cointerventions": _cointerventions_table(p, r, ids, cfg),
    }
    return _Chunk(
        tables,
        _truth_patients(p, r, ids, cfg),
        _effects(p, d, cfg, co, r),
        _SampleStats(_calibration_samples(p, r, d, cfg, observed)),
    )


def _metadata(seed: int, n: int, cfg: SimulationConfig) -> dict[str, Any]:
    return {
        "source": "simulated",
        "created": None,
        "seed": seed,
        "config_sha256": cfg.sha256(),
        "n_patients": n,
    }


def _truth(
    seed: int,
    n: int,
    cfg: SimulationConfig,
    effects: list[dict[str, Any]],
    calibration: dict[str, Any],
    notes: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "format_version": TRUTH_FORMAT_VERSION,
        "seed": seed,
        "n_patients": n,
        "config": cfg.to_dict(),
        "config_sha256": cfg.sha256(),
        "derived": {
            "latent_nprs_sd": cfg.latent_nprs_sd,
            "weekly_dropout_hazard": cfg.weekly_dropout_hazard,
            "dose_decay_per_week": 0.5 ** (1.0 / cfg.dose_half_life_weeks),
        },
        "effects": effects,
        "calibration": calibration,
        "notes": [
            "Weeks count from enrolment; the assessment of week t is on day 7t and reflects t "
            "weeks of program; sessions of week t fall on days 7t to 7t+6.",
            "Effects of kind 'structural' are generating parameters on the scale of the named "
            "model term; 'cohort_average' effects are exact counterfactual contrasts for these "
            "simulated patients (same random numbers, no dropout); adherence is not randomised "
            "in the data, so observational estimates need not equal them.",
            *notes,
        ],
    }


# ---------------------------------------------------------------------------------------- to disk
_POOLING_NOTE = (
    "This cohort was simulated in {n_chunks} chunks of up to {chunk} patients, each with its own "
    "random stream. Cohort-average effects are the patient-weighted means of the chunks' exact "
    "contrasts (weighted by the patients each contrast averages over, e.g. the eligible patients "
    "of a substitution), which equals the contrast over the whole cohort. Realised calibration "
    "values are pooled exactly from the chunks' counts, means and sums of squared deviations, "
    "except that dropout is calibrated within each chunk (the weekly offset that keeps the "
    "hazard of those at risk at its target is solved per chunk)."
)


def _chunk_rng(seed: int, chunk: int, children: list[np.random.SeedSequence]):
    """Chunk 0 draws from ``default_rng(seed)``, as simulate_cohort; chunk c >= 1 from child c-1."""
    return np.random.default_rng(seed if chunk == 0 else children[chunk - 1])


def _pool_effects(
    parts: list[list[tuple[dict[str, Any], int | None]]],
) -> list[dict[str, Any]]:
    """Weighted means of each cohort-average effect over chunks; structural values as they are."""
    pooled = []
    for same_term in zip(*parts, strict=True):
        effect, weight = same_term[0]
        effect = dict(effect)
        if weight is not None:
            used = [(e["value"], w) for e, w in same_term if w and e["value"] is not None]
            total = sum(w for _, w in used)
            effect["value"] = sum(v * w for v, w in used) / total if total else None
        pooled.append(effect)
    return pooled


def _as_str_ids(df: pd.DataFrame) -> pd.DataFrame:
    """``patient_id`` held as a Categorical, as canonical strings (via Arrow: 30x astype)."""
    ids = df["patient_id"]
    if not isinstance(ids.dtype, pd.CategoricalDtype):
        return df
    codes = pa.array(ids.cat.codes.to_numpy())
    values = pa.array(ids.cat.categories.to_numpy(dtype=str), pa.large_string())
    text = pa.DictionaryArray.from_arrays(codes, values).cast(pa.large_string())
    return df.assign(patient_id=pd.array(text, dtype="str"))


def _check_disk_args(chunk_patients: Any, format: Any, overwrite: Any) -> None:
    if not _whole(chunk_patients) or chunk_patients < 1:
        raise ConfigError(
            f"chunk_patients={chunk_patients!r}; allowed: a whole number >= 1 (10,000 or more "
            f"keeps the per-chunk dropout calibration tight; the default is 50,000)."
        )
    if format != "parquet":
        raise ConfigError(
            f"format={format!r} is not supported by simulate_to_disk, which writes each table as "
            f"a folder of Parquet parts. Fix: use format='parquet', or "
            f"simulate_cohort(...).write(path, format='csv') for a cohort that fits in memory."
        )
    if not isinstance(overwrite, bool):
        raise ConfigError(f"overwrite={overwrite!r}; allowed: True or False.")


def simulate_to_disk(
    path: str | os.PathLike,
    n_patients: int,
    *,
    seed: int,
    config: SimulationConfig | dict | None = None,
    chunk_patients: int = 50_000,
    format: str = "parquet",
    overwrite: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
    **overrides: Any,
) -> Path:
    """Simulate a cohort chunk by chunk and write it to the folder ``path``, never whole in memory.

    Each table (and ``truth_patients``) is a folder of Parquet parts, one per chunk of patients,
    ``<path>/<table>/part-00000.parquet``, ``part-00001.parquet``, ..., with the columns and types
    :meth:`Cohort.write` gives the table; :func:`~ptanalytics.cohort.io.load_cohort` reads it.
    ``cohort.json`` has :meth:`Cohort.write`'s keys (row counts summed over the parts) and
    ``chunking``; ``truth.json`` pools the chunks (see its ``notes``). Memory is bounded by the
    chunk size (about 1.9 GB at peak for the default 50,000 patients and 26 weeks).

    Chunk 0 uses the random stream of ``simulate_cohort(n, seed=seed)`` and chunk ``c >= 1`` the
    child ``c - 1`` of ``numpy.random.SeedSequence(seed).spawn(...)``. A cohort of at most
    ``chunk_patients`` patients therefore has exactly the tables and truth of
    ``simulate_cohort(n_patients, seed=seed)``; a larger one is a different, equally valid draw,
    and so is the same cohort with another ``chunk_patients``. Patient ids run ``P000001``, ...
    over the whole cohort (width set by ``n_patients``), in order across parts.

    Parameters
    ----------
    path : path-like
        Destination folder. Written whole or not at all (a temporary sibling folder is renamed
        into place at the end).
    n_patients : int
        Number of patients (at least 1).
    seed : int
        Seed: the same seed, config and ``chunk_patients`` give byte-identical files.
    config : SimulationConfig or dict, optional
        Generating parameters, as for :func:`simulate_cohort`.
    chunk_patients : int
        Patients simulated and written at a time (at least 1; 10,000 or more keeps the dropout
        calibration, which is solved within each chunk, on target).
    format : {"parquet"}
        Only Parquet is written in parts.
    overwrite : bool
        Replace an existing non-empty folder; without it that is an error.
    progress : callable, optional
        Called after each chunk with a dict: ``chunk`` (1-based), ``n_chunks``, ``patients_done``,
        ``n_patients``, ``rows`` (rows written in this chunk, all tables) and ``seconds`` elapsed.
    **overrides
        Individual parameters, applied on top of ``config``.

    Returns
    -------
    pathlib.Path
        The folder written.

    Raises
    ------
    ConfigError
        When an argument or parameter is invalid.
    CohortFormatError
        When ``path`` exists and is not empty and ``overwrite`` is false, or is a file.
    """
    cfg = _checked_config(n_patients, seed, config, overrides)
    _check_disk_args(chunk_patients, format, overwrite)
    n, seed, chunk = int(n_patients), int(seed), min(int(chunk_patients), int(n_patients))
    dest = Path(path)
    n_chunks = -(-n // chunk)
    children = np.random.SeedSequence(seed).spawn(n_chunks - 1)
    names = (*TABLE_NAMES, _TRUTH_PATIENTS)
    counts = dict.fromkeys(TABLE_NAMES, 0)
    effects, stats, t0 = [], None, time.perf_counter()
    with atomic_folder(dest, overwrite=overwrite) as tmp:
        for name in names:
            (tmp / name).mkdir()
        for c in range(n_chunks):
            size = min(chunk, n - c * chunk)
            part = _simulate_chunk(
                size, cfg, _chunk_rng(seed, c, children), c * chunk + 1, _id_width(n)
            )
            file = f"part-{c:05d}.parquet"
            for name, df in part.tables.items():
                df = coerce_table(name, _as_str_ids(df), source=f"cohort table {name}")
                _write_table(df, tmp / name / file, "parquet")
                counts[name] += len(df)
            _write_table(part.truth_patients, tmp / _TRUTH_PATIENTS / file, "parquet")
            effects.append(part.effects)
            moments = part.stats.moments()
            stats = moments if stats is None else stats.pool(moments)
            calibration = _calibration(cfg, part.stats) if n_chunks == 1 else None
            if progress is not None:
                progress(
                    {
                        "chunk": c + 1,
                        "n_chunks": n_chunks,
                        "patients_done": c * chunk + size,
                        "n_patients": n,
                        "rows": sum(len(df) for df in part.tables.values()),
                        "seconds": time.perf_counter() - t0,
                    }
                )
            del part
        if n_chunks == 1:  # exactly simulate_cohort's truth
            truth = _truth(seed, n, cfg, [e for e, _ in effects[0]], calibration)
        else:
            note = _POOLING_NOTE.format(n_chunks=n_chunks, chunk=chunk)
            truth = _truth(seed, n, cfg, _pool_effects(effects), _calibration(cfg, stats), (note,))
        meta = cohort_json(_metadata(seed, n, cfg), "parquet", counts)
        meta["chunking"] = {
            "chunk_patients": chunk,
            "n_chunks": n_chunks,
            "layout": "each table is a folder <table>/part-NNNNN.parquet, one part per chunk "
            "of patients, in patient order",
            "random_streams": "chunk 0: numpy default_rng(seed); chunk c >= 1: "
            "SeedSequence(seed).spawn(n_chunks - 1)[c - 1]",
        }
        _write_json(tmp / "cohort.json", meta)
        _write_json(tmp / "truth.json", truth)
    return dest


def default_cohort() -> Cohort:
    """The default synthetic cohort (300 patients, seed 20240108, default parameters).

    Identical to ``data/synthetic/default`` in the repository (a test checks it), so notebooks and
    the report work from an installed package without the repository's data folder.
    """
    return simulate_cohort(DEFAULT_PATIENTS, seed=DEFAULT_SEED)
