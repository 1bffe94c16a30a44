"""The canonical cohort tables (and ``truth_patients``) from one run of the generative model.

Every table comes from the patients' draws (:class:`~._model.Patients`), the run
(:class:`~._model.Run`) and, for the sessions, a few further draws from the same generator; the
columns and types are those of docs/data_dictionary.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptanalytics.cohort.catalogue import exercise_catalogue
from ptanalytics.simulate._model import Draws, Patients, Run, expit, nprs_observed, slots
from ptanalytics.simulate.config import SimulationConfig
from ptanalytics.vocab import (
    CATEGORIES,
    CHRONICITIES,
    COINTERVENTION_KINDS,
    PHASES,
    SEXES,
    TRAJECTORY_CLASSES,
    share_column,
)

__all__ = ["cohort_tables", "numbered_ids", "truth_patients_table"]


def numbered_ids(prefix: str, idx: np.ndarray, width: int) -> np.ndarray:
    """Identifiers ``<prefix><idx zero-padded to width>``, e.g. ``P000001``."""
    return np.char.add(prefix, np.char.zfill(idx.astype(str), width))


def cohort_tables(
    p: Patients,
    r: Run,
    d: Draws,
    ids: np.ndarray,
    cfg: SimulationConfig,
    observed: np.ndarray,
    odi_noise: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, pd.DataFrame]:
    """The five canonical tables, by name, in the order of ``TABLE_NAMES``.

    ``observed`` says which weekly assessments exist (:func:`~._model.observed_weeks`);
    ``odi_noise`` is the (N, 3) ODI measurement noise; the sessions table draws from ``rng``.
    """
    return {
        "patients": _patients_table(p, ids, cfg),
        "prescriptions": _prescriptions_table(p, r, ids, cfg),
        "sessions": _sessions_table(p, r, ids, cfg, rng),
        "outcomes": _outcomes_table(p, r, d, ids, cfg, observed, odi_noise),
        "cointerventions": _cointerventions_table(p, r, ids, cfg),
    }


def _patients_table(p: Patients, ids: np.ndarray, cfg: SimulationConfig) -> pd.DataFrame:
    cw = max(2, len(str(cfg.n_clinics)))
    tw = max(3, len(str(cfg.n_clinics * cfg.therapists_per_clinic)))
    table = pd.DataFrame(
        {
            "patient_id": pd.array(ids, dtype="str"),
            "enrolled_on": p.enrolled.astype("datetime64[s]"),
            "age": pd.array(p.age, dtype="Int64"),
            "sex": pd.Categorical.from_codes(np.where(p.female, 0, 1), categories=list(SEXES)),
            "chronicity": pd.Categorical.from_codes(p.chronicity, categories=list(CHRONICITIES)),
            "guided_weeks": pd.array(p.planned_weeks, dtype="Int64"),
            "followup_weeks": pd.array(np.full(p.n, cfg.horizon_weeks), dtype="Int64"),
            "clinic_id": pd.array(numbered_ids("C", p.clinic + 1, cw), dtype="str"),
            "therapist_id": pd.array(numbered_ids("T", p.therapist + 1, tw), dtype="str"),
        }
    )
    if p.arm is not None:  # a randomised arm: an extra patient attribute
        active, control = cfg.trial_arms
        table["arm"] = pd.array(np.where(p.arm, active, control), dtype="str")
    return table


def _home_only(p, cfg) -> np.ndarray:
    """(N,) bool: patients randomised to a home-only guided phase."""
    if cfg.trial == "home_only":
        return p.arm
    return np.zeros(p.n, dtype=bool)


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
            sup = np.where(_home_only(p, cfg)[idx], 0, cfg.guided_supervised_per_week)
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
    days, sup, _, _ = slots(cfg)
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
    supervised = guided & sup[sl[srow]] & ~_home_only(p, cfg)[i]
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
    nprs = nprs_observed(r.pain, d.noise)
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


def truth_patients_table(p, r, ids, cfg) -> pd.DataFrame:
    """``truth_patients``: one row per patient of latent values, shares, program and dropout."""
    g = r.guided_weeks
    h = cfg.horizon_weeks
    adjusted = np.where(
        g > np.minimum(p.planned_weeks, h),
        "extended",
        np.where(g < p.planned_weeks, "shortened", "none"),
    )
    _, _, act_g, act_m = slots(cfg)
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
        "adherence_propensity": expit(p.propensity_logit),
        "adherence_trajectory": pd.array(np.array(TRAJECTORY_CLASSES)[p.trajectory], dtype="str"),
        "effectiveness_per_session": p.effectiveness,
    }
    for j, c in enumerate(CATEGORIES):
        out[share_column(c)] = p.shares[:, j]
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
