"""The ground truth of a simulated cohort: true effects, calibration and ``truth.json``.

Effects are either generating parameters (``structural``) or exact counterfactual contrasts for
the simulated patients (``cohort_average``): the same patients and random numbers run again
with adherence forced, time moved between categories or another planned length, nobody dropping
out. Calibration compares the targets of the config with what the cohort realised. Both can be
pooled over chunks of a large cohort (:func:`pool_effects`, :class:`PooledStats`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ptanalytics.simulate._model import Draws, Patients, nprs_observed, run, slots
from ptanalytics.simulate.config import SimulationConfig
from ptanalytics.vocab import CATEGORIES, COINTERVENTION_KINDS, TRAJECTORY_CLASSES

__all__ = [
    "ADHERENCE_REGIMES",
    "EXTENSION_THRESHOLDS",
    "TRUTH_FORMAT_VERSION",
    "PooledStats",
    "SampleStats",
    "calibration_samples",
    "pool_effects",
    "realised_calibration",
    "true_effects",
    "truth_document",
]

TRUTH_FORMAT_VERSION = 1

#: An effect as written to truth.json, with the number of patients a cohort-average contrast
#: averages over (None for generating parameters), the weight used to pool chunks.
Weighted = tuple[dict[str, Any], int | None]


def _mean(x: np.ndarray) -> float | None:
    return float(np.mean(x)) if len(x) else None


def _effect(term, model, value, scale, kind, definition, weight=None) -> Weighted:
    """One entry of ``truth["effects"]`` and its pooling weight."""
    effect = {
        "term": term,
        "model": model,
        "value": value,
        "scale": scale,
        "kind": kind,
        "definition": definition,
    }
    return effect, weight


def true_effects(p: Patients, d: Draws, cfg: SimulationConfig, co: np.ndarray) -> list[Weighted]:
    """True effects, each named by the model term it corresponds to.

    Each effect comes with the number of patients a cohort-average contrast averages over (None
    for generating parameters), so that chunks of a large cohort can be pooled
    (:func:`pool_effects`).
    Counterfactual contrasts rerun the same patients with the same random numbers (``co`` is
    their co-intervention effect), nobody dropping out.
    """
    # The runs several contrasts share, each made once: own adherence, every session, none.
    own = run(p, d, cfg, co, dropout=False)
    full = run(p, d, cfg, co, adherence=1.0, dropout=False)
    none = run(p, d, cfg, co, adherence=0.0, dropout=False)
    return [
        *_structural_effects(cfg),
        *_adherence_contrasts(cfg, full, none, p.n),
        *_substitution_contrasts(p, d, cfg, co, own),
        *_guided_weeks_contrasts(p, d, cfg, co),
        *_regime_contrasts(p, d, cfg, co, own, full, none),
        *_extension_rule_contrasts(p, d, cfg, co),
        *_trial_contrasts(p, d, cfg, co),
    ]


def _structural_effects(cfg: SimulationConfig) -> list[Weighted]:
    """Generating parameters on the scale of the pain model and the dropout hazard."""
    out = [
        _effect(
            "sd(Intercept|patient_id)",
            "pain_lmm",
            cfg.latent_nprs_sd,
            "NPRS points",
            "structural",
            "SD of latent baseline pain between patients.",
        ),
        _effect(
            "sd(week|patient_id)",
            "pain_lmm",
            cfg.natural_slope_sd,
            "NPRS points per week",
            "structural",
            "SD of natural-history slopes between patients (exercise benefit adds "
            "further slope heterogeneity).",
        ),
        _effect(
            "residual_sd",
            "pain_lmm",
            float(np.sqrt(cfg.measurement_sd**2 + 1 / 12)),
            "NPRS points",
            "approximate",
            "Measurement noise plus rounding to integers (clipping at 0 and 10 ignored).",
        ),
        _effect(
            "natural_slope",
            "pain_lmm",
            cfg.natural_slope,
            "NPRS points per week",
            "structural",
            "Mean weekly change without exercise.",
        ),
    ]
    for kind in COINTERVENTION_KINDS:
        out.append(
            _effect(
                f"cointervention[{kind}]",
                "pain_lmm",
                cfg.cointervention_effect[kind],
                "NPRS points",
                "structural",
                f"Pain difference while a {kind} episode is active (week of "
                f"assessment inside the episode).",
            )
        )
    out.append(
        _effect(
            "pain_change_from_baseline",
            "dropout_hazard",
            cfg.dropout_pain_log_odds,
            "log odds (weekly hazard) per NPRS point",
            "structural",
            "Discrete-time dropout log-odds per point of latent pain change from baseline (a Cox "
            "log hazard ratio is close to this for small weekly hazards; observed, noisy pain "
            "attenuates it).",
        )
    )
    return out


def _contrast_weeks(cfg: SimulationConfig) -> tuple[tuple[int, str], ...]:
    """The weeks contrasts are reported at: week 8 (or the horizon if earlier) and follow-up."""
    h = cfg.horizon_weeks
    guided_week = 8 if h >= 8 else h
    return (guided_week, f"week{guided_week}"), (h, "followup")


def _adherence_contrasts(cfg, full, none, n: int) -> list[Weighted]:
    """Every prescribed session done minus none done, at week 8 and follow-up."""
    return [
        _effect(
            f"adherence_full_vs_none[{label}]",
            "counterfactual",
            float(np.mean(full.pain[:, week] - none.pain[:, week])),
            "NPRS points",
            "cohort_average",
            f"Mean latent NPRS at week {week} if every prescribed session were done minus if "
            f"none were, for these patients with no dropout (negative = less pain).",
            n,
        )
        for week, label in _contrast_weeks(cfg)
    ]


def _substitution_contrasts(p, d, cfg, co, natural) -> list[Weighted]:
    """10% of exercise time moved from flexibility to core strengthening, at own attendance."""
    flex, core = CATEGORIES.index("flexibility"), CATEGORIES.index("core_strengthening")
    eligible = p.shares[:, flex] >= 0.10
    eff = np.array([cfg.category_effectiveness[c] for c in CATEGORIES])
    moved = p.effectiveness + 0.10 * (eff[core] - eff[flex])
    sub = run(
        p, d, cfg, co, effectiveness=np.where(eligible, moved, p.effectiveness), dropout=False
    )
    out = []
    for week, label in _contrast_weeks(cfg):
        diff = sub.pain[eligible, week] - natural.pain[eligible, week]
        out.append(
            _effect(
                f"substitution[flexibility->core_strengthening,0.10][{label}]",
                "counterfactual",
                _mean(diff),
                "NPRS points",
                "cohort_average",
                f"Mean latent NPRS change at week {week} when 10% of exercise time moves from "
                f"flexibility to core strengthening, among patients with >= 10% flexibility "
                f"time, at their own attendance, no dropout.",
                int(eligible.sum()),
            )
        )
    return out


def _guided_weeks_contrasts(p, d, cfg, co, ref: int = 8) -> list[Weighted]:
    """Each planned guided length of the mix (within the horizon) against ``ref`` weeks."""
    h = cfg.horizon_weeks
    others = [w for w in sorted(set(cfg.guided_weeks_mix) | {ref}) if w != ref and w <= h]
    if not others:
        return []
    base = run(p, d, cfg, co, planned_weeks=np.full(p.n, ref), dropout=False)
    out = []
    for weeks in others:
        alt = run(p, d, cfg, co, planned_weeks=np.full(p.n, weeks), dropout=False)
        out.append(
            _effect(
                f"guided_weeks[{weeks}_vs_{ref}][followup]",
                "counterfactual",
                float(np.mean(alt.pain[:, h] - base.pain[:, h])),
                "NPRS points",
                "cohort_average",
                f"Mean latent NPRS at the follow-up (week {h}) if every patient were planned "
                f"{weeks} rather than {ref} guided weeks, own adherence and review rule, no "
                f"dropout.",
                p.n,
            )
        )
    return out


#: Adherence regimes against the patients' own adherence, by the term's label: adherence kept
#: at 0.8 (a week that opens with less than 80% of the sessions prescribed so far done is done in
#: full); every session's probability of being done raised by 0.10 (capped at 1); or a quarter
#: of the sessions each patient would have missed made up (about +10 points of adherence in the
#: default cohort, and, unlike the +0.10, a function of what the patient would have done, which
#: weekly data can identify).
ADHERENCE_REGIMES = {
    "kept_at_0.8_vs_own": {"adherence_kept_at": 0.8},
    "plus_0.10_vs_own": {"adherence_add": 0.10},
    "make_up_0.25_vs_own": {"adherence_make_up": 0.25},
}

_RECORDED = (
    "recorded NPRS (rounded, 0-10, these patients' measurement noise: the data's scale, which "
    "the bounded scale compresses near 0)"
)


def _recorded(r, d, week: int) -> np.ndarray:
    """Each patient's NPRS at ``week`` as it would be recorded in run ``r``."""
    return nprs_observed(r.pain[:, week], d.noise[:, week])


def _regime_contrasts(p, d, cfg, co, own, full, none) -> list[Weighted]:
    """Adherence regimes against the patients' own (natural) adherence, at week 8 and follow-up.

    Under a regime the feedback from pain still acts (a patient whose pain worsens under it is
    still less likely to attend, before the regime raises the probability)."""
    if np.isinf(p.propensity_logit).all():
        return []  # adherence fixed by the config: the regimes are not defined
    h = cfg.horizon_weeks
    out = [
        _effect(
            "regime[adherence_all_vs_none][followup]",
            "counterfactual",
            float(np.mean(_recorded(full, d, h) - _recorded(none, d, h))),
            "NPRS points",
            "cohort_average",
            f"Mean {_RECORDED} at the follow-up (week {h}) if every prescribed session were "
            "done minus if none were, no dropout (adherence_full_vs_none on the latent scale).",
            p.n,
        )
    ]
    for label, change in ADHERENCE_REGIMES.items():
        alt = run(p, d, cfg, co, dropout=False, **change)
        what = {
            "adherence_kept_at": lambda x: (
                f"every week from week 1 that opens with less than "
                f"{x:.0%} of the sessions prescribed so far done, done in full (adherence kept at "
                "that level by a therapist who calls in whoever falls behind)"
            ),
            "adherence_add": lambda x: (
                f"every session's probability of being done raised by {x:g} (capped at 1)"
            ),
            "adherence_make_up": lambda x: (
                f"a share {x:g} of the sessions each patient would "
                "have missed made up (probability p becomes p + q (1 - p))"
            ),
        }[next(iter(change))](next(iter(change.values())))
        for week, when in _contrast_weeks(cfg):
            out.append(
                _effect(
                    f"regime[adherence_{label}][{when}]",
                    "counterfactual",
                    float(np.mean(_recorded(alt, d, week) - _recorded(own, d, week))),
                    "NPRS points",
                    "cohort_average",
                    f"Mean {_RECORDED} at week {week} with {what}, minus with the patients' own "
                    "adherence (the feedback from pain acting in both), no dropout.",
                    p.n,
                )
            )
    return out


#: Improvement thresholds of the dynamic extension rule whose effect truth.json gives (with the
#: config's own ``extend_below_improvement``, the threshold the simulated review uses).
EXTENSION_THRESHOLDS = (0.30,)


def _extension_rule_contrasts(p, d, cfg, co, ref: int = 8) -> list[Weighted]:
    """The dynamic rule "plan ``ref`` weeks, extend by ``extend_weeks`` if the reported
    improvement at the review is below a threshold" against a fixed ``ref`` weeks, at follow-up."""
    h = cfg.horizon_weeks
    if cfg.review_week >= min(ref, h) or cfg.extend_weeks == 0:
        return []
    planned = np.full(p.n, min(ref, h))
    fixed = run(p, d, cfg, co, planned_weeks=planned, review="none", dropout=False)
    out = []
    for below in sorted({cfg.extend_below_improvement, *EXTENSION_THRESHOLDS}):
        rule = run(
            p, d, cfg, co, planned_weeks=planned, review="rule", extend_below=below, dropout=False
        )
        out.append(
            _effect(
                f"regime[extend_below_{below:g}_vs_fixed_{ref}][followup]",
                "counterfactual",
                float(np.mean(_recorded(rule, d, h) - _recorded(fixed, d, h))),
                "NPRS points",
                "cohort_average",
                f"Mean {_RECORDED} at the follow-up (week {h}) if every patient were planned "
                f"{ref} guided weeks and extended by {cfg.extend_weeks} when assessed at the "
                f"week-{cfg.review_week} review with an improvement below {below:.0%}, minus a "
                f"fixed {ref} weeks for all; own adherence, no dropout.",
                p.n,
            )
        )
    return out


def _program_adherence(r, cfg: SimulationConfig) -> np.ndarray:
    """Overall adherence as ``patient_summary`` defines it: sessions done over sessions
    prescribed across the planned program (weeks after dropout count as missed)."""
    _, _, act_g, act_m = slots(cfg)
    g = r.guided_weeks
    prescribed = g * int(act_g.sum()) + (cfg.horizon_weeks - g) * int(act_m.sum())
    done = r.attended.sum(axis=(1, 2))
    return np.divide(done, prescribed, out=np.full(len(g), np.nan), where=prescribed > 0)


#: Complier effects are ratios of two cohort averages, so pooled from them, never averaged:
#: ``complier_effect[<exposure>][followup]`` = ``<design>_itt[followup]`` over
#: ``<design>_first_stage[<exposure>]``.
COMPLIER_PREFIX = "complier_effect["

#: Per randomised design: the exposure the arm moves, its scale and what the arm does.
_TRIAL_EXPOSURES = {
    "encouragement": ("adherence", "adherence (proportion)", "encouraged"),
    "home_only": ("adherence", "adherence (proportion)", "assigned a home-only guided phase"),
    "length": ("guided_weeks", "weeks", "planned the longer guided phase"),
}


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def _trial_contrasts(p, d, cfg, co) -> list[Weighted]:
    """In a randomised design: everyone in the active arm against no one, same random numbers,
    dropout as it happens: the effect of the arm on pain at follow-up (ITT), on the exposure it
    moves (first stage: overall adherence, or actual guided weeks in a length trial), and their
    ratio, the complier (Wald) effect of the exposure."""
    if p.arm is None:
        return []
    design, h = cfg.trial, cfg.horizon_weeks
    exposure, scale, what = _TRIAL_EXPOSURES[design]
    yes = run(p, d, cfg, co, arm=np.ones(p.n, dtype=bool))
    no = run(p, d, cfg, co, arm=np.zeros(p.n, dtype=bool))

    # On the recorded scale (rounded, 0-10, the measurement noise of these patients): the
    # scale of the data's NPRS change, which a bounded scale compresses near 0.
    def change(r):
        nprs = nprs_observed(r.pain[:, [0, h]], d.noise[:, [0, h]])
        return nprs[:, 1] - nprs[:, 0]

    def exposed(r):
        if exposure == "guided_weeks":
            return r.guided_weeks.astype(float)
        return _program_adherence(r, cfg)

    itt = float(np.mean(change(yes) - change(no)))
    first = float(np.nanmean(exposed(yes) - exposed(no)))
    exposure_words = {
        "adherence": "overall adherence (sessions done over prescribed across the planned program)",
        "guided_weeks": "actual guided weeks (after the review's extensions and shortenings)",
    }[exposure]
    unit = {"adherence": "unit of overall adherence (0 to 1)", "guided_weeks": "guided week"}
    return [
        _effect(
            f"{design}_itt[followup]",
            "counterfactual",
            itt,
            "NPRS points",
            "cohort_average",
            f"Mean change in recorded NPRS (rounded, 0-10) from baseline to the follow-up (week "
            f"{h}) if every patient were {what} minus if none were (dropout as it happens, "
            "every patient's follow-up counted).",
            p.n,
        ),
        _effect(
            f"{design}_first_stage[{exposure}]",
            "counterfactual",
            first,
            scale,
            "cohort_average",
            f"Mean {exposure_words} if every patient were {what} minus if none were.",
            p.n,
        ),
        _effect(
            f"{COMPLIER_PREFIX}{exposure}][followup]",
            "counterfactual",
            _ratio(itt, first),
            f"NPRS points per {unit[exposure]}",
            "cohort_average",
            f"The ratio of the two above: the change in follow-up pain per {unit[exposure]} "
            f"among the patients whose {exposure.replace('_', ' ')} the arm moved (the Wald "
            "estimand that two-stage least squares with the arm as instrument targets).",
            p.n,
        ),
    ]


def calibration_samples(p, r, d, cfg, observed) -> dict[str, np.ndarray]:
    """The values each realised calibration statistic is a mean (or SD) of, by name."""
    h = cfg.horizon_weeks
    nprs = nprs_observed(r.pain, d.noise)
    g = r.guided_weeks
    idx = np.arange(p.n)
    base = nprs[:, 0]
    out = {"baseline_nprs": base}
    for j, t in enumerate(TRAJECTORY_CLASSES):
        out[f"trajectory_share_{t}"] = p.trajectory == j
    if h >= 8:
        out["dropout_by_week8"] = (r.dropout_week >= 0) & (r.dropout_week <= 8)
    # Completers of the guided phase with the end-of-guided NPRS observed.
    completer = ((r.dropout_week < 0) | (r.dropout_week > g)) & observed[idx, g]
    change = base - nprs[idx, g]
    responder = (change >= 2) | (change >= 0.3 * base)
    out["responder_end_guided_completers"] = responder[completer]
    _, _, act_g, _ = slots(cfg)
    presc = g * int(act_g.sum())
    guided_wk = np.arange(h)[None, :] < g[:, None]
    done = (r.attended.sum(axis=2) * guided_wk).sum(axis=1)
    adh = np.divide(done, presc, out=np.full(p.n, np.nan), where=presc > 0)
    out["change_adherent_completers"] = change[completer & (adh >= 0.75)]
    out["change_nonadherent_completers"] = change[completer & (adh < 0.50)]
    out["adherence_guided"] = adh[~np.isnan(adh)]
    return out


class SampleStats:
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

    def moments(self) -> PooledStats:
        """Count, mean and sum of squared deviations of each sample, for pooling chunks."""
        out = {}
        for key, x in self.samples.items():
            mean = float(np.mean(x)) if len(x) else 0.0
            out[key] = (len(x), mean, float(np.sum((x - mean) ** 2)))
        return PooledStats(out)


class PooledStats:
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

    def pool(self, other: PooledStats) -> PooledStats:
        out = {}
        for key, (na, ma, m2a) in self.moments_.items():
            nb, mb, m2b = other.moments_[key]
            n = na + nb
            if n == 0:
                out[key] = (0, 0.0, 0.0)
                continue
            delta = mb - ma
            out[key] = (n, ma + delta * nb / n, m2a + m2b + delta * delta * na * nb / n)
        return PooledStats(out)


def realised_calibration(cfg: SimulationConfig, st: SampleStats | PooledStats) -> dict[str, Any]:
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
    for t in TRAJECTORY_CLASSES:
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


def truth_document(
    seed: int,
    n: int,
    cfg: SimulationConfig,
    effects: list[dict[str, Any]],
    calibration: dict[str, Any],
    notes: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The content of ``truth.json``: parameters, derived values, effects, calibration, notes."""
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


def pool_effects(
    parts: list[list[Weighted]],
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
    values = {e["term"]: e["value"] for e in pooled}
    for effect in pooled:  # a ratio of pooled averages, not an average of the chunks' ratios
        if effect["term"].startswith(COMPLIER_PREFIX):
            exposure = effect["term"][len(COMPLIER_PREFIX) :].split("]")[0]
            design = next(d for d in _TRIAL_EXPOSURES if f"{d}_itt[followup]" in values)
            effect["value"] = _ratio(
                values[f"{design}_itt[followup]"], values[f"{design}_first_stage[{exposure}]"]
            )
    return pooled
