"""The report's sentences that do not read a model: built from the data and from the parameters
the analysis actually used (the timepoint window, the dropout rule, the imputations), never
hard-coded beside them."""

from __future__ import annotations

import pandas as pd

from ptanalytics.metrics.summary import TRAJECTORY_THRESHOLD
from ptanalytics.metrics.timepoints import DEFAULT_WINDOW_DAYS
from ptanalytics.metrics.weeks import INACTIVITY_DAYS
from ptanalytics.vocab import ATTENDANCE_BANDS, ATTENDANCE_CUTS

__all__ = [
    "adherence_text",
    "adjusted_for_text",
    "covariate_words",
    "intro_text",
    "landmark_text",
    "methods_text",
    "populations_text",
    "timepoints_text",
]


def intro_text(total: str, *, simulated: bool, min_cell: int) -> str:
    """The opening paragraph: patients (as disclosure shows the total), source, suppression."""
    return (
        f"{total} patients; "
        + ("simulated cohort (known ground truth)." if simulated else "ingested cohort.")
        + f" Counts below {min_cell} are shown as <{min_cell}, and counts from which one of "
        "them could be worked out as *suppressed*. All results are **associations**: "
        "adherence, the exercise mix and the actual program length were not randomised."
    )


def timepoints_text(window_days: int = DEFAULT_WINDOW_DAYS) -> str:
    """What the timepoints table counts."""
    return (
        "Patients assessed at each timepoint. A score counts for a timepoint when it lies within "
        f"{window_days} days of the target (enrolment; the end of the patient's guided phase; "
        "the follow-up of the study's schedule); a patient with nothing in the window is "
        "**missing** there and is never given another timepoint's score."
    )


def adherence_text(summary: pd.DataFrame, *, inactivity_days: int = INACTIVITY_DAYS) -> str:
    """Mean adherence overall and by phase, and the dropout share."""
    return (
        f"Mean adherence over the planned program: {100 * summary['adherence'].mean():.0f}% "
        f"(guided phase {100 * summary['adherence_guided'].mean():.0f}%, maintenance "
        f"{100 * summary['adherence_maintenance'].mean():.0f}%). Dropout (no session in the "
        f"last {inactivity_days} days or more before the planned end): "
        f"{100 * summary['dropout'].mean():.0f}%."
    )


def definitions_text(
    *,
    cuts: tuple[float, float] = ATTENDANCE_CUTS,
    threshold: float = TRAJECTORY_THRESHOLD,
) -> str:
    """What the attendance bands and the adherence trajectory classes mean.

    Examples
    --------
    >>> print(definitions_text())  # doctest: +ELLIPSIS
    **Attendance bands** (sessions completed / prescribed over the whole planned program, weeks after dropout counted as missed): low below 50%, medium 50% to below 75%, high 75% or more. ...
    """  # noqa: E501
    low, high = (100 * c for c in cuts)
    points = 100 * threshold
    b_low, b_mid, b_high = ATTENDANCE_BANDS
    return (
        "**Attendance bands** (sessions completed / prescribed over the whole planned program, "
        f"weeks after dropout counted as missed): {b_low} below {low:g}%, {b_mid} {low:g}% to "
        f"below {high:g}%, {b_high} {high:g}% or more. **Adherence trajectories** (slope of "
        "weekly adherence, capped at 100%, over the planned weeks, zeros after dropout): "
        f"declining at -{points:g} percentage point a week or steeper, "
        f"increasing at +{points:g} or more, stable in between; too few weeks to fit: not "
        "classified."
    )


def covariate_words(terms) -> list[str]:
    """A model's covariate terms in words, for a sentence (:func:`ptanalytics.plotting.
    term_labels` without their units; the ilr coordinates as the exercise mix and the
    co-interventions as one item each).

    Examples
    --------
    >>> covariate_words(["nprs_baseline", "age", "C(sex)", "ilr_1", "ilr_2", "co_massage"])
    ['baseline NPRS', 'age', 'sex', 'the exercise mix (2 ilr coordinates)', 'co-interventions (massage)']
    """  # noqa: E501
    import re

    from ptanalytics.plotting import term_labels

    terms = [str(t) for t in terms]
    labels = dict(zip(terms, term_labels(terms), strict=True))
    ilr = [t for t in terms if re.fullmatch(r"ilr_\d+", t)]
    co = [t for t in terms if t.startswith("co_")]
    words = []
    for t in terms:
        if t in ilr:
            if t == ilr[0]:
                words.append(f"the exercise mix ({len(ilr)} ilr coordinates)")
        elif t in co:
            if t == co[0]:
                kinds = [labels[c].removeprefix("co-intervention: ") for c in co]
                words.append(f"co-interventions ({', '.join(kinds)})")
        else:
            words.append(re.sub(r" \(per [^)]*\)$", "", labels[t]))
    return words


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def adjusted_for_text(terms, *, lead: str = "Adjusted for") -> str:
    """One sentence: what an estimate is adjusted for, from the model's own covariate terms
    (a result's ``covariates``), in words (:func:`covariate_words`).

    Examples
    --------
    >>> adjusted_for_text(["nprs_baseline", "age", "C(sex)", "C(chronicity)"])
    'Adjusted for baseline NPRS, age, sex and chronicity.'
    >>> adjusted_for_text([])
    'Adjusted for nothing else: no covariate varies in this cohort.'
    """
    words = covariate_words(terms)
    if not words:
        return f"{lead} nothing else: no covariate varies in this cohort."
    return f"{lead} {_and(words)}."


def landmark_text(
    week: int,
    *,
    min_cell: int,
    logrank_p=None,
    cuts: tuple[float, float] = ATTENDANCE_CUTS,
) -> str:
    """What the Kaplan-Meier landmark figure shows: its groups in words and the log-rank test.

    Examples
    --------
    >>> print(landmark_text(4, min_cell=11, logrank_p=0.0004))  # doctest: +ELLIPSIS
    Staying in the program from week 4, by adherence in weeks 0-3: low below 50%, ... p < 0.001.
    """
    from ptanalytics.report.tables import format_p

    low, high = (100 * c for c in cuts)
    b_low, b_mid, b_high = ATTENDANCE_BANDS
    test = (
        ""
        if logrank_p is None or pd.isna(logrank_p)
        else f" Log-rank test of equal curves (every group): p {_p_words(format_p(logrank_p))}."
    )
    return (
        f"Staying in the program from week {week}, by adherence in weeks 0-{week - 1}: "
        f"{b_low} below {low:g}%, {b_mid} {low:g}% to below {high:g}%, {b_high} {high:g}% or "
        f"more of the prescribed sessions (groups of at least {min_cell} patients; each curve "
        f"stops where fewer than {min_cell} remain at risk). Patients who dropped out before "
        f"week {week} are not in the curves; differences between the curves are associations."
        + test
    )


def _p_words(p: str) -> str:
    """``"< 0.001"`` as it is, ``"0.043"`` as ``"= 0.043"``."""
    return p if p.startswith("<") else f"= {p}"


def tipping_text(tipping_delta, *, m: int, seed: int, covariates=()) -> str:
    """The MNAR tipping point in words (``tipping_delta`` None: not reached on the grid;
    ``covariates``: the analysis model's, :attr:`~ptanalytics.models.missing_data.TippingPoint.
    covariates`)."""
    where = (
        f"The association's 95% interval first includes 0 at delta = {tipping_delta:g} points."
        if tipping_delta is not None
        else "Over the deltas tried, the association's 95% interval never includes 0."
    )
    words = covariate_words(covariates)
    adjusted = f", adjusted for {_and(words)}" if words else ""
    return (
        "**Missing follow-up not at random (tipping point).** The dose-response of adherence at "
        f"follow-up (NPRS change per 10 points of adherence{adjusted}) "
        f"re-estimated with the imputed follow-up scores shifted by delta points (m = {m}, seed "
        f"{seed}); delta = 0 is the MAR analysis, a negative delta means the missing patients "
        f"did better than MAR predicts. {where}"
    )


def populations_text(*, m: int, seed: int) -> str:
    """The three analysis populations of the responder tables."""
    return (
        "Three analysis populations. **ITT**: every patient, a missing follow-up counted as "
        "non-response. **Completers**: only patients assessed at follow-up. **Multiple "
        f"imputation** (MAR, m = {m}, seed {seed}): missing follow-up scores imputed from "
        "baseline and the other observed scores and covariates, proportions pooled by Rubin's "
        "rules. They differ whenever follow-up is missing; none is unbiased if missingness "
        "depends on the unobserved pain itself (see the tipping-point analysis in docs/models.md)."
    )


def methods_text(
    *, inactivity_days: int = INACTIVITY_DAYS, window_days: int = DEFAULT_WINDOW_DAYS
) -> str:
    """Methods and limitations, with the definitions' actual parameters."""
    return f"""\
* **Design**: observational. Adherence, the exercise mix and the actual program length are chosen
  by patients and therapists, so every estimate is an association that may reflect confounding
  (for example, patients in more pain adhere less) and reverse causation (patients who do not
  improve stop). Only randomised comparisons support causal claims.
* **Definitions**: a session is a day with at least one exercise logged; adherence is completed
  over prescribed sessions, weeks after dropout counting as missed; dropout is no session in the
  last {inactivity_days} days or more before the planned end; scores are the nearest assessment \
within {window_days} days of
  the target week. See docs/metrics.md.
* **Models**: the pain-trajectory model is fitted by profiled REML vectorised over patients
  (`ptanalytics.models.lmm`), which reproduces R's lme4 to at least six significant digits;
  its intervals are Wald intervals that treat the variance parameters as known (as lme4's),
  a little short for rare co-interventions in small cohorts. See docs/models.md.
* **Missing data**: responder tables show both ITT (missing = non-response) and completers; the
  mixed model assumes data missing at random given the covariates; multiple imputation (MAR) and
  the MNAR tipping point are in docs/models.md.
* **Privacy**: counts below the minimum cell size are suppressed; no patient identifier, birth
  date or calendar date appears in this report."""
