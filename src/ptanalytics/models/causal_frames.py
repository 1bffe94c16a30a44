"""Analysis frames of the causal estimators built from a cohort: the weekly history the
g-formula models (:func:`weekly_history`) and the target-trial frame of the review's extension
rule (:func:`extension_rule_trial`), both from the cohort's own tables (no simulator truth)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptanalytics.exceptions import ConfigError

__all__ = [
    "REVIEW_BANDS",
    "RULE_TRIAL",
    "WEEKLY_GFORMULA",
    "cohort_weeks",
    "extension_rule_trial",
    "followup_horizon",
    "weekly_history",
]

#: :func:`~ptanalytics.models.causal.gformula`'s arguments for :func:`weekly_history`'s frames:
#: ``gformula(long, outcome_data=final, baseline=[...], regimes=..., seed=..., **WEEKLY_GFORMULA)``.
WEEKLY_GFORMULA = {
    "id": "patient_id",
    "time": "week",
    "treatment": "sessions_completed",
    "trials": "sessions_prescribed",
    "confounders": ["nprs"],
    "schedule": ["guided"],
    "outcome": "nprs_at_followup",
    "history": "summary",
}

#: :func:`~ptanalytics.models.causal.target_trial`'s arguments for
#: :func:`extension_rule_trial`'s frame: ``target_trial(frame, seed=..., **RULE_TRIAL)``.
RULE_TRIAL = {
    "id": "patient_id",
    "outcome": "nprs_at_followup",
    "strategies": {"rule": "followed_rule", "fixed": "followed_fixed"},
    "covariates": ["C(review_band)", "nprs_baseline"],
    "observed_covariates": ["C(review_band)", "nprs_baseline", "nprs_last", "last_assessed_week"],
    "reference": "fixed",
}


def followup_horizon(cohort) -> int:
    """The follow-up week the frames run to: the latest planned follow-up, from
    ``patients.followup_weeks`` or, without it, the cohort's follow-up targets
    (:func:`~ptanalytics.metrics.timepoints.timepoint_targets`: the study schedule, the
    prescriptions or the assessments); a ConfigError when no patient has one."""
    pts = cohort.patients
    if "followup_weeks" in pts and pts["followup_weeks"].notna().any():
        return int(pts["followup_weeks"].max())
    from ptanalytics.metrics.timepoints import timepoint_targets

    targets = timepoint_targets(cohort)
    days = targets.loc[targets["timepoint"] == "followup", "target_day"].dropna()
    if days.empty:
        raise ConfigError(
            "the cohort has no planned follow-up week (no patients.followup_weeks, study "
            "schedule, prescriptions or later assessments). Fix: map followup_weeks in the "
            "ingest mapping or give the schedule in cohort.json."
        )
    return round(float(days.max()) / 7)


def cohort_weeks(cohort, grid=None) -> pd.DataFrame:
    """``patient_weeks`` of every week to the follow-up (not cut at dropout: a follow-up score
    after leaving counts) with the columns both frames below read; ``grid``: the cohort's
    ``week_grid``, when the caller has it."""
    from ptanalytics.metrics import patient_weeks

    columns = ["phase", "sessions_prescribed", "sessions_completed", "nprs"]
    if len(cohort.sessions) == 0:
        columns = ["nprs"]  # outcomes only: patient_weeks has no session columns
    return patient_weeks(cohort, truncate_at_dropout=False, columns=columns, grid=grid)


def weekly_history(cohort, *, grid=None, weeks=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The g-formula's frames from a cohort: one row per patient and week before the follow-up
    (``sessions_completed`` of ``sessions_prescribed``, the ``nprs`` of the assessment opening
    the week, ``guided`` 1/0), missing from the first week without an NPRS on (the patient has
    left); and one row per patient with the follow-up NPRS (``nprs_at_followup``). ``weeks``:
    :func:`cohort_weeks` of the cohort, when the caller has it (else built, with ``grid``)."""
    if len(cohort.sessions) == 0:
        raise ConfigError(
            "the cohort has no session records (an outcomes-only export): the g-formula's "
            "weekly history needs the sessions done of those prescribed each week. Fix: "
            "include the session log in the export."
        )
    weeks = cohort_weeks(cohort, grid) if weeks is None else weeks
    horizon = followup_horizon(cohort)
    long = weeks[weeks["week"] < horizon].copy()
    long["guided"] = (long["phase"] == "guided").astype(float)
    gone = long["nprs"].isna().groupby(long["patient_id"], sort=False).cummax()
    long.loc[gone.to_numpy(), ["sessions_completed", "nprs"]] = np.nan
    final = weeks[weeks["week"] == horizon][["patient_id", "nprs"]]
    return long.drop(columns="phase"), final.rename(columns={"nprs": "nprs_at_followup"})


#: Bands of the improvement reported at the review (relative to baseline) that the models of
#: following a review strategy use: the thresholds of the rules emulated must be among the cuts.
REVIEW_BANDS = (0.1, 0.3, 0.5)


def extension_rule_trial(
    cohort,
    threshold: float,
    *,
    planned: int = 8,
    review_week: int = 4,
    extend_weeks: int = 2,
    summary: pd.DataFrame | None = None,
    grid=None,
    weeks: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The target-trial frame of the rule "plan ``planned`` guided weeks and extend by
    ``extend_weeks`` when the improvement reported at the week-``review_week`` review is below
    ``threshold``" against "a fixed ``planned`` weeks": one row per patient planned that length,
    with ``followed_rule`` and ``followed_fixed`` (1 when their care followed the strategy at the
    review: a patient who left before it followed both), the ``review_band`` (``not assessed``,
    ``left``, or the band of improvement between :data:`REVIEW_BANDS`), ``nprs_baseline``, the
    last NPRS recorded before the follow-up week and its week (``nprs_last``,
    ``last_assessed_week``) and the recorded NPRS at the follow-up week (``nprs_at_followup``,
    missing when not assessed). ``summary`` (``patient_summary``), ``grid`` (``week_grid``) and
    ``weeks`` (:func:`cohort_weeks`) of the cohort may be passed when the caller has them.

    Examples
    --------
    >>> import ptanalytics as pt
    >>> frame = extension_rule_trial(pt.simulate_cohort(400, seed=1), 0.1)
    >>> sorted(frame.columns)[:4]
    ['followed_fixed', 'followed_rule', 'last_assessed_week', 'nprs_at_followup']
    """
    from ptanalytics.metrics import patient_summary

    if threshold not in REVIEW_BANDS:
        raise ConfigError(
            f"threshold={threshold!r}; allowed: one of the review bands' cuts {REVIEW_BANDS} "
            "(the model of following the rule must be able to tell its two sides apart)."
        )
    summary = patient_summary(cohort, grid=grid) if summary is None else summary
    missing = [c for c in ("guided_weeks", "guided_weeks_actual") if c not in summary]
    if missing:
        raise ConfigError(
            f"the cohort's patient summary has no {' or '.join(missing)}: the extension rule "
            "needs each patient's planned and actual guided weeks. Fix: include the "
            "prescriptions (guided phase dates) or patients.guided_weeks in the export."
        )
    weeks = cohort_weeks(cohort, grid) if weeks is None else weeks
    horizon = followup_horizon(cohort)
    nprs = weeks.pivot(index="patient_id", columns="week", values="nprs")
    frame = summary[["patient_id", "guided_weeks", "guided_weeks_actual", "nprs_baseline"]]
    frame = frame[frame["guided_weeks"] == planned].set_index("patient_id")
    base = nprs[0].reindex(frame.index)
    review = nprs[review_week].reindex(frame.index) if review_week in nprs else np.nan
    later = nprs.loc[frame.index, [w for w in nprs.columns if w > review_week]]
    left = review.isna() & later.isna().all(axis=1)  # no score from the review on
    rel = (base - review) / base.where(base > 0)
    band = pd.cut(rel, [-np.inf, *REVIEW_BANDS, np.inf], right=False).astype("string")
    band = band.where(review.notna(), "not assessed").where(~left, "left")
    actual = frame["guided_weeks_actual"].astype("Float64")
    below = review.notna() & (rel.fillna(0) < threshold)
    rule = np.where(below, actual == planned + extend_weeks, actual == planned)
    # The last score before the follow-up, and when: what the chance of a follow-up score
    # depends on (patients whose pain has not improved leave).
    before = nprs.loc[frame.index, [w for w in nprs.columns if w < horizon]]
    seen = before.notna()
    last_week = seen.to_numpy().cumsum(axis=1).argmax(axis=1)
    out = pd.DataFrame(
        {
            "patient_id": frame.index,
            "nprs_baseline": frame["nprs_baseline"].to_numpy(dtype=float),
            "nprs_last": before.to_numpy()[np.arange(len(before)), last_week],
            "last_assessed_week": before.columns.to_numpy()[last_week].astype(float),
            "review_band": band.to_numpy(),
            "followed_rule": (left | rule).astype(float).to_numpy(),
            "followed_fixed": (left | (actual == planned)).astype(float).to_numpy(),
            "nprs_at_followup": nprs[horizon].reindex(frame.index).to_numpy(dtype=float),
        }
    )
    return out.reset_index(drop=True)
