"""The report's sections: what each one shows, as functions of one prepared :class:`Report`.

:func:`prepare_report` builds the analysis frames, chooses the grouping, registers every count
the report publishes in one :class:`~ptanalytics.report.disclosure.Disclosure` and protects them;
each ``*_section`` function then adds its tables, figures and sentences to ``report.out`` (a
:class:`~ptanalytics.report.render.Blocks`). The report notebook (``report/report.ipynb``) only
calls these functions, one per section; every model call of the report is here.

Counts below ``min_cell`` are shown as ``<min_cell`` in every table; no patient identifier,
birth date or calendar date is printed.
"""

from __future__ import annotations

import html
import platform
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

import numpy as np
import pandas as pd
from numpy.linalg import LinAlgError

from ptanalytics._hashing import tables_sha256
from ptanalytics.cohort.container import Cohort
from ptanalytics.exceptions import PtAnalyticsError
from ptanalytics.metrics.describe import comparison_group, weekly_adherence, weekly_means
from ptanalytics.metrics.summary import patient_summary
from ptanalytics.metrics.weeks import WeekGrid, patient_weeks, week_grid
from ptanalytics.privacy.suppression import MIN_CELL
from ptanalytics.report.disclosure import Disclosure
from ptanalytics.report.render import Blocks
from ptanalytics.report.tables import (
    aggregate_html,
    column_label,
    group_totals,
    km_for_report,
    mathtext_safe,
    mi_for_report,
    model_patients,
    report_disclosure,
    small_factor_terms,
    table_one,
    table_one_html,
    terms_table,
)
from ptanalytics.report.text import (
    adherence_text,
    definitions_text,
    intro_text,
    methods_text,
    populations_text,
    timepoints_text,
    tipping_text,
)

__all__ = [
    "Report",
    "ReportSettings",
    "adherence_section",
    "cohort_fingerprint",
    "cohort_section",
    "data_quality_section",
    "dropout_section",
    "effects_section",
    "estimable",
    "flow_section",
    "methods_section",
    "models_section",
    "outcomes_section",
    "prepare_report",
    "provenance_section",
    "software_section",
    "software_versions",
    "title_section",
]

#: The key of the cohort total (Table 1's first count), quoted in the opening sentence.
TOTAL = ("table_one", 0, "n")
#: Dose-response fits of the report: timepoint -> the adherence it is read against.
DOSE = {"end_guided": "adherence_guided", "followup": "adherence"}
#: What sparse data raises (too few patients, a singular design, no events): such a model is
#: "not estimable on this cohort". Any other exception is a bug and stops the report.
SPARSE_DATA_ERRORS = (PtAnalyticsError, LinAlgError, ValueError, ArithmeticError)


@dataclass(frozen=True)
class ReportSettings:
    """The analysis choices of the report that its text quotes.

    Attributes
    ----------
    timepoint : str
        Timepoint of the responder tables (``followup``).
    mi_imputations, mi_seed : int
        Imputations and seed of the multiple-imputation responder table (the seed also of the
        effects section's bootstraps).
    landmark_week : int
        The Kaplan-Meier landmark: early adherence over weeks ``0 .. landmark_week - 1``.
    active_arm : str, optional
        The randomised active level of ``patients.arm`` (e.g. ``encouraged``): with it, the
        effects section estimates the complier effect of adherence with the arm as instrument.
    review_week : int
        The week of the early-response review whose extension rule the effects section
        emulates as a target trial.
    """

    timepoint: str = "followup"
    mi_imputations: int = 20
    mi_seed: int = 1
    landmark_week: int = 4
    active_arm: str | None = None
    review_week: int = 4


@dataclass
class Report:
    """One report's inputs, shared by its sections (built by :func:`prepare_report`)."""

    cohort: Cohort
    summary: pd.DataFrame
    weeks: pd.DataFrame
    title: str
    min_cell: int
    group: str | None
    disclosure: Disclosure
    linked: dict
    settings: ReportSettings
    out: Blocks
    #: The cohort's patient x week grid, built once for the summary, the weeks and the models.
    grid: WeekGrid | None = None

    @property
    def has_program(self) -> bool:
        """Whether the cohort has session data (adherence, the models and dropout need it)."""
        return len(self.cohort.sessions) > 0

    @property
    def simulated(self) -> bool:
        return self.cohort.metadata.get("source") == "simulated"


def prepare_report(
    cohort: Cohort,
    *,
    title: str = "ptanalytics report",
    min_cell: int = MIN_CELL,
    settings: ReportSettings | None = None,
    out: Blocks | None = None,
) -> Report:
    """Frames, grouping and the protected disclosure of every count the report shows.

    The grouping of every table is the randomised arm where the data has one, else attendance
    band (:func:`~ptanalytics.metrics.describe.comparison_group`). Every count the report shows
    is linked through the patients it counts and suppressed together, so that no count below
    ``min_cell`` can be derived from a total, another table or a percentage.
    """
    settings = settings or ReportSettings()
    grid = week_grid(cohort)
    summary = patient_summary(cohort, grid=grid)
    weeks = patient_weeks(cohort, grid=grid)
    group = comparison_group(summary, has_sessions=len(cohort.sessions) > 0)
    disc, linked = report_disclosure(
        cohort, summary, group=group, min_cell=min_cell, timepoint=settings.timepoint
    )
    for tp, adh in DOSE.items():
        if f"nprs_change_{tp}" in summary and adh in summary:
            disc.add(("dose_response", tp), model_patients(summary, f"nprs_change_{tp}", adh))
    linked["flow"] = _link_flow(disc, cohort, summary)
    _link_no_exercise_time(disc, summary)
    disc.protect(keep=[TOTAL, *group_totals(disc)])
    return Report(
        cohort,
        summary,
        weeks,
        title,
        min_cell,
        group,
        disc,
        linked,
        settings,
        out or Blocks(),
        grid,
    )


#: The disclosure key of the patients the exercise-mix model leaves out (no exercise time).
NO_EXERCISE_TIME = ("substitution", "no_exercise_time")


def _link_no_exercise_time(disc: Disclosure, summary: pd.DataFrame) -> None:
    """Register the patients the exercise-mix model leaves out for having no exercise time,
    so that the sentence that counts them is protected with every other count."""
    from ptanalytics.models.outcomes import no_exercise_time

    try:
        disc.add(NO_EXERCISE_TIME, no_exercise_time(summary))
    except PtAnalyticsError:  # no composition (outcomes only): the model is not shown
        return


def estimable(out: Blocks, what: str, fn: Callable):
    """Run a model; on a cohort too small or too sparse for it, say so instead of failing.

    Returns ``fn()``, or None after adding "**what**: not estimable on this cohort (error)" to
    ``out`` when it raises one of :data:`SPARSE_DATA_ERRORS`.
    """
    try:
        return fn()
    except SPARSE_DATA_ERRORS as exc:
        out.markdown(f"**{what}**: not estimable on this cohort ({type(exc).__name__}).")
        return None


# ------------------------------------------------------------------------------------ sections
def title_section(r: Report) -> None:
    """The title and the opening paragraph."""
    r.out.html(f"<h1>{html.escape(str(r.title))}</h1>")
    r.out.markdown(
        intro_text(r.disclosure.count(TOTAL), simulated=r.simulated, min_cell=r.min_cell)
    )


def cohort_section(r: Report) -> None:
    """1. Cohort summary: Table 1, overall and by the report's grouping, with its notes."""
    by = {"arm": "arm", "attendance_band": "attendance band"}.get(r.group, r.group)
    r.out.markdown(
        "**Table 1.** Baseline characteristics"
        + (f", overall and by {html.escape(str(by))}." if r.group else ".")
    )
    t1 = table_one(r.cohort, summary=r.summary, group=r.group, disclosure=r.disclosure)
    r.out.html(table_one_html(t1))
    r.out.markdown(html.escape(" ".join(t1.attrs["notes"])))


def _link_flow(disc: Disclosure, cohort: Cohort, summary: pd.DataFrame) -> pd.DataFrame:
    """Register ``flow``: the participant flow's recorded boxes, each linked to its patients
    (the enrolled box is the cohort total); return the flow."""
    from ptanalytics.metrics.flow import flow_membership

    flow, members = flow_membership(cohort, summary=summary)
    recorded = flow[flow["n"].notna()].reset_index(drop=True)
    ids = members["patient_id"]
    masks = {(i, "n"): ids[members[b].to_numpy()] for i, b in enumerate(recorded["box"])}
    disc.add_table("flow", recorded[["box"]].assign(n=recorded["n"].astype(int)), masks)
    return flow


def _flow_shown(value) -> str:
    """A flow count as the disclosure lets it be drawn ("<11", "suppressed" or the number)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "not recorded"
    return value if isinstance(value, str) else f"{int(value):,}"


def flow_section(r: Report) -> None:
    """Participant flow: who reached each step, drawn as a CONSORT-style diagram."""
    from ptanalytics import plotting
    from ptanalytics.metrics.flow import STATUS_COLUMN

    flow = r.linked["flow"]
    shown = r.disclosure.table("flow")
    counts = dict(zip(shown["box"], shown["n"], strict=True))
    flow = flow.assign(shown=[_flow_shown(counts.get(b)) for b in flow["box"]])
    r.out.figure(plotting.plot_flow(flow))
    reasons = (
        f"the reasons are the values of the patients' {STATUS_COLUMN} column"
        if STATUS_COLUMN in r.cohort.patients
        else "no status column was mapped, so each side box states the rule that put its "
        "patients there"
    )
    r.out.markdown(
        "**Participant flow.** Each patient leaves the chain at the first step they did not "
        "reach (side boxes); a patient who stopped early but was assessed later is counted "
        "where they left, and in the dashed box of every patient with a follow-up score. "
        "*Started*: at least one session; *completed the guided phase*: not a "
        "dropout before its last week; *assessed*: an NPRS score in the timepoint's window. "
        + (
            ""
            if r.has_program
            else "This cohort has no session data: the program steps are not recorded. "
        )
        + f"Counts below {r.min_cell} are shown as <{r.min_cell}, and further counts as "
        "suppressed where a hidden one could be derived from a box and its neighbours or "
        f"from another table; {reasons}."
    )


def data_quality_section(r: Report) -> None:
    """2. Data quality: the ingest accounting, imputed minutes and the timepoints table."""
    ingest = r.cohort.metadata.get("ingest")
    if ingest:
        r.out.markdown(
            "Rows read, accepted and quarantined by table (see quarantine/ in the cohort "
            "folder for every rejected row and its reason)."
        )
        counts = ["records", "accepted", "quarantined"]

        def ordered(records, first):  # the table first, then its counts
            frame = pd.DataFrame(records)
            return frame[[c for c in first if c in frame] + [c for c in frame if c not in first]]

        tables = ordered(ingest["tables"], ["table", *counts])
        r.out.html(aggregate_html(tables, counts=counts, min_cell=r.min_cell))
        if ingest["reasons"]:
            reasons = ordered(ingest["reasons"], ["table", "reason_code", "rows"])
            r.out.html(aggregate_html(reasons, counts=["rows"], min_cell=r.min_cell))
    else:
        r.out.markdown("This cohort was simulated, not ingested: no rows were quarantined.")
    sessions = r.cohort.sessions
    if r.has_program and "duration_imputed" in sessions:
        imputed = int(sessions["duration_imputed"].fillna(False).astype(bool).sum())
        still = int(sessions["duration_min"].isna().sum())
        r.out.markdown(
            f"Exercise minutes: {imputed:,} of {len(sessions):,} logged exercises had no "
            "minutes and took the catalogue's default for the exercise"
            + (f"; {still:,} have none and count as 0 minutes." if still else ".")
        )
    r.out.markdown(timepoints_text())
    r.out.html(r.disclosure.html("timepoints"))


def adherence_section(r: Report) -> None:
    """3. Adherence: bands, trajectory classes, weekly adherence by phase, the means."""
    if not r.has_program:
        r.out.markdown("This cohort has no session data, so adherence cannot be described.")
        return
    r.out.markdown(definitions_text())
    r.out.html(r.disclosure.html("bands"))
    r.out.html(r.disclosure.html("trajectories"))
    _adherence_figures(r)
    if len(r.summary) >= r.min_cell:
        r.out.markdown(adherence_text(r.summary))


def _adherence_figures(r: Report) -> None:
    """The adherence distribution (when no 10-point bin holds 1 to ``min_cell - 1`` patients,
    which would also let a suppressed band count be summed from the bars) and weekly adherence
    by phase, of the patients still in and of everyone (weeks of ``min_cell`` patients)."""
    import numpy as np

    from ptanalytics import plotting

    adherence = r.summary["adherence"].dropna().clip(0, 1)
    bins = np.histogram(100 * adherence, bins=np.arange(0, 110, 10))[0]
    if len(adherence) and not ((bins > 0) & (bins < r.min_cell)).any():
        r.out.figure(plotting.plot_adherence_distribution(adherence, binwidth=10))
    else:
        r.out.markdown(
            f"The adherence histogram is not shown: some bars would count fewer than "
            f"{r.min_cell} patients."
        )
    kept = {"summary": r.summary, "min_patients": r.min_cell}
    still_in = weekly_adherence(r.weeks, dropouts_as_zero=False, **kept)
    everyone = weekly_adherence(r.weeks, dropouts_as_zero=True, **kept)
    r.out.markdown(
        "Weekly adherence by phase, two ways: over the patients still in the program (who "
        "adhere better the longer they stay, because the less adherent leave) and over "
        "everyone, a dropout's remaining planned weeks counted as 0; weeks and phases with "
        f"fewer than {r.min_cell} patients are left out."
    )
    r.out.figure(plotting.plot_weekly_adherence_by_phase(still_in, everyone))


def outcomes_section(r: Report) -> None:
    """4. Outcomes and responders: ITT, completers, multiple imputation, weekly pain."""
    from ptanalytics.models import missing_data
    from ptanalytics.report.tables import readable_table
    from ptanalytics.report.text import adjusted_for_text

    s = r.settings
    r.out.markdown(populations_text(m=s.mi_imputations, seed=s.mi_seed))
    populations = {"itt": "intention to treat (ITT)", "completers": "completers"}
    for analysis in ("itt", "completers"):
        flags = r.linked["flags"][analysis]
        definition = flags["definition"].iloc[0] if len(flags) else "Responders"
        r.out.markdown(
            f"**{html.escape(str(definition))}** at follow-up, {populations[analysis]} "
            "(Wilson 95% intervals)."
        )
        r.out.html(r.disclosure.html(analysis))
    if r.summary["nprs_followup"].notna().any():
        mi = estimable(
            r.out,
            "Multiple imputation",
            lambda: (
                missing_data.mi_responders(
                    r.summary, m=s.mi_imputations, seed=s.mi_seed, by=r.group
                ).table
            ),
        )
        if mi is not None:
            r.out.markdown(
                "**Multiple imputation (MAR)**, pooled by Rubin's rules (95% intervals)."
            )
            shown = readable_table(mi_for_report(mi, r.disclosure, group=r.group))
            r.out.html(shown.to_html(index=False, na_rep=""))
            predictors = missing_data.imputation_predictors(r.summary)  # mi_responders' own
            lead = "The missing follow-up NPRS scores are imputed (MAR) given"
            r.out.markdown(adjusted_for_text(predictors, lead=lead))
        _tipping_blocks(r)
    else:
        r.out.markdown("No follow-up score was observed: nothing to impute from.")
    mean = weekly_means(r.weeks, "nprs", by=r.group, summary=r.summary, min_patients=r.min_cell)
    from ptanalytics import plotting

    if r.group:
        mean = mean.assign(**{r.group: mean[r.group].map(mathtext_safe)})
    title = f"Observed pain by week (weeks with at least {r.min_cell} patients)"
    fig = plotting.plot_weekly_means(mean, by=r.group, ylabel="Mean NPRS (observed)", title=title)
    r.out.figure(fig)


#: MNAR shifts of the imputed follow-up NPRS (points) tried by the report's tipping point.
TIPPING_DELTAS = (-8, -6, -4, -2, 0, 1, 2, 3)


def _tipping_blocks(r: Report) -> None:
    """The MNAR tipping point of the adherence association at follow-up: sentence, table, figure.

    Shown only when at least ``min_cell`` patients have a follow-up score and at least
    ``min_cell`` lack one (otherwise there is little to impute, or too few to fit).
    """
    from ptanalytics.models import missing_data
    from ptanalytics.report.tables import readable_table

    observed = int(r.summary["nprs_followup"].notna().sum())
    if observed < r.min_cell or len(r.summary) - observed < r.min_cell:
        return
    s = r.settings
    tipping = estimable(
        r.out,
        "Tipping point",
        lambda: missing_data.tipping_point(
            r.summary, deltas=TIPPING_DELTAS, m=s.mi_imputations, seed=s.mi_seed
        ),
    )
    if tipping is None:
        return
    r.out.markdown(
        tipping_text(
            tipping.tipping_delta,
            m=s.mi_imputations,
            seed=s.mi_seed,
            covariates=tipping.covariates,
        )
    )
    shown = readable_table(
        tipping.table[["delta", "estimate", "ci_low", "ci_high"]],
        labels={"estimate": "NPRS change per 10 points of adherence"},
    )
    r.out.html(shown.to_html(index=False))
    r.out.figure(tipping.figure())


def _ci(row) -> str:
    return f"{row['estimate']:.3f} (95% CI {row['ci_low']:.3f} to {row['ci_high']:.3f})"


def models_section(r: Report) -> None:
    """5. Models: pain trajectories, dose-response, exercise mix, program length."""
    from ptanalytics.models import trajectory

    model = None
    if r.has_program and len(r.summary) >= r.min_cell:
        model = estimable(
            r.out,
            "Pain-trajectory mixed model",
            lambda: trajectory.fit_pain_model(
                trajectory.pain_model_frame(r.cohort, summary=r.summary, grid=r.grid)
            ),
        )
    elif r.has_program:
        r.out.markdown(f"Fewer than {r.min_cell} patients: no model is shown.")
    else:
        r.out.markdown("No session data: the adherence and exercise-mix models need sessions.")
    if model is None:
        return
    _trajectory_blocks(r, model)
    for tp in DOSE:
        _dose_response_blocks(r, tp)
    _substitution_blocks(r)
    _program_length_blocks(r)
    if r.disclosure.has_table("lengths"):
        r.out.html(r.disclosure.html("lengths"))


def _trajectory_blocks(r: Report, model) -> None:
    """The mixed model's reading, its key terms (small ones withheld), what they are adjusted
    for, and the trajectories."""
    from ptanalytics import plotting
    from ptanalytics.models import trajectory
    from ptanalytics.report.text import adjusted_for_text

    fe = model.table.set_index("term")
    r.out.markdown(
        "**Pain-trajectory mixed model** (REML; random intercept and slopes per patient). "
        f"Pain changes by {_ci(fe.loc['months_guided'])} NPRS points per 4 weeks in the guided "
        f"phase and {_ci(fe.loc['months_maintenance'])} in maintenance for a patient of average "
        f"adherence. For each 10 percentage points more adherence, the guided-phase slope "
        f"differs by {_ci(fe.loc['adherence_between:months_guided'])} and the maintenance slope "
        f"by {_ci(fe.loc['adherence_between:months_maintenance'])}; a week 10 points better "
        f"than the patient's usual goes with {_ci(fe.loc['adherence_within'])} points the next "
        "week."
        + ("" if model.converged else " **The optimiser did not converge: read with care.**")
    )
    small = set(small_factor_terms(r.cohort, r.summary, min_cell=r.min_cell))
    key = [
        t
        for t in model.table["term"]
        if t.startswith(("months", "adherence", "ilr", "planned", "co_")) and t not in small
    ]
    if small & set(model.table["term"]):
        r.out.markdown(
            f"Terms for co-interventions or levels with fewer than {r.min_cell} patients (on "
            "either side) are in the model but not shown."
        )
    shown = terms_table(fe.loc[key].reset_index(), estimate="NPRS points")
    r.out.html(shown.to_html(index=False))
    lead = "The time and adherence estimates are adjusted for each other and for"
    r.out.markdown(adjusted_for_text(model.covariates, lead=lead))
    forest = fe.loc[key].reset_index()
    title = "Mixed-model terms (NPRS points; associations, adjusted for each other)"
    r.out.figure(plotting.plot_forest(forest, title=title))
    pred = estimable(
        r.out, "Predicted trajectories", lambda: trajectory.predicted_trajectories(model)
    )
    if pred is None:
        return
    sizes = r.summary["attendance_band"].value_counts()
    big = [b for b in sizes.index if sizes[b] >= r.min_cell]
    pred = pred[pred["attendance_band"].isin(big)]
    per_band = 30
    r.out.markdown(
        f"Predicted mean NPRS by attendance band (bands of at least {r.min_cell} patients) "
        f"from week 0 to week {pred.attrs['weeks']}, the last week with an assessment in "
        f"the data (not extrapolated), with the phase change at "
        f"{pred.attrs['guided_weeks']:g} weeks, the median guided-phase length; under each "
        f"mean, the observed weekly NPRS of up to {per_band} patients of the band drawn at "
        "random (the same patients every time the report is made)."
    )
    if len(pred):
        observed = r.weeks[["patient_id", "week", "nprs"]].merge(
            r.summary[["patient_id", "attendance_band"]], on="patient_id", how="left"
        )
        counts = {}  # band sizes as the bands table shows them (None where withheld)
        if r.disclosure.has_table("bands"):
            bands = r.disclosure.raw("bands")
            for i, band in enumerate(bands["attendance band"]):
                shown = r.disclosure.shown(("bands", i, "patients"))
                counts[band] = int(bands["patients"].iloc[i]) if shown else None
        fig = plotting.plot_band_trajectories(
            observed, pred, min_cell=r.min_cell, counts=counts, per_band=per_band
        )
        r.out.figure(fig)


def _dose_response_blocks(r: Report, tp: str) -> None:
    """The dose-response of adherence at one timepoint: one sentence and its figure."""
    from ptanalytics.models import outcomes as outcome_models
    from ptanalytics.report.text import adjusted_for_text

    label = "end of the guided phase" if tp == "end_guided" else "follow-up"
    if not r.disclosure.shown(("dose_response", tp)):
        r.out.markdown(f"**Dose-response at the {label}**: too few complete cases to show.")
        return
    dr = estimable(
        r.out,
        f"Dose-response at the {label}",
        lambda: outcome_models.dose_response(r.summary, timepoint=tp, reference="median"),
    )
    if dr is None:
        return
    r.linked.setdefault("dose_response", {})[tp] = dr  # the effects section reads it
    row = dr.linear.iloc[0]
    r.out.markdown(
        f"**Dose-response at the {label}**: each 10 points of adherence goes with "
        f"{row['estimate']:.2f} NPRS points of change (95% CI {row['ci_low']:.2f} to "
        f"{row['ci_high']:.2f}); n = {r.disclosure.count(('dose_response', tp))}. "
        + adjusted_for_text(dr.covariates)
    )
    r.out.figure(dr.figure())


def _substitution_blocks(r: Report) -> None:
    """Moving exercise time from flexibility to core strengthening: sentence and figure."""
    from ptanalytics.models import outcomes as outcome_models
    from ptanalytics.report.text import adjusted_for_text

    subs = estimable(r.out, "Exercise mix", lambda: outcome_models.category_substitution(r.summary))
    if subs is None or "flexibility->core_strengthening" not in set(subs.table["term"]):
        return
    fc = subs.table.set_index("term").loc["flexibility->core_strengthening"]
    left_out = (
        f" Patients with no logged exercise time have no exercise mix and are left out: "
        f"{r.disclosure.count(NO_EXERCISE_TIME)}."
        if subs.n_no_exercise_time
        else ""
    )
    r.out.markdown(
        f"**Exercise mix**: moving 10% of exercise time from flexibility to core "
        f"strengthening goes with {fc['estimate']:.2f} NPRS points of change by the end "
        f"of the guided phase (95% CI {fc['ci_low']:.2f} to {fc['ci_high']:.2f})."
        + left_out
        + " "
        + adjusted_for_text(subs.covariates, lead="Besides the exercise mix, adjusted for")
    )
    from ptanalytics import plotting

    shown = subs.table[subs.table["n_patients"] >= r.min_cell]
    r.out.figure(plotting.plot_substitutions(shown))


def _program_length_blocks(r: Report) -> None:
    """Planned program length, compared only over lengths with ``min_cell`` complete cases; then
    the words for the planned-vs-actual table that follows it (``lengths``)."""
    from ptanalytics.metrics.timepoints import TIMEPOINT_LABELS
    from ptanalytics.models import outcomes as outcome_models
    from ptanalytics.report.text import adjusted_for_text

    usable = r.summary.dropna(subset=["guided_weeks", "nprs_change_followup"])
    sizes = usable["guided_weeks"].value_counts()
    big = sizes[sizes >= r.min_cell].index
    if len(big) < 2:
        r.out.markdown(
            "**Program length**: fewer than two planned guided lengths have at least "
            f"{r.min_cell} patients with a follow-up score, so its association with the "
            "outcome is not estimated."
        )
    else:
        result = outcome_models.program_length(r.summary[r.summary["guided_weeks"].isin(big)])
        length = result.table
        rows = length[length["term"].str.startswith("C(guided")]
        reference = result.reference
        r.out.markdown(
            "**Program length** (planned at enrolment; the actual length responds to early "
            "pain relief and must not be the exposure): difference in NPRS change at "
            f"follow-up against {reference} planned weeks"
            + (
                f"; planned lengths with fewer than {r.min_cell} patients are left out."
                if len(big) < len(sizes)
                else "."
            )
        )
        shown = terms_table(rows, estimate="Difference in NPRS change")
        r.out.html(shown.to_html(index=False))
        r.out.markdown(adjusted_for_text(result.covariates))
    if r.disclosure.has_table("lengths"):
        when = TIMEPOINT_LABELS.get(r.settings.timepoint, r.settings.timepoint)
        r.out.markdown(
            "**Planned and actual guided length**: patients by planned guided weeks, the mean "
            "actual length, how many had their guided phase extended or shortened, and the mean "
            f"NPRS change at {when} (unadjusted; over the patients with a score). Counts below "
            f"{r.min_cell} are shown as <{r.min_cell}."
        )


def effects_section(r: Report) -> None:
    """5b. Effects under assumptions: how much unmeasured confounding would explain the main
    association away (E-value), and the complier effect of adherence where a randomised arm
    is named (``settings.active_arm``), each with the assumptions it rests on."""
    from ptanalytics.models.causal import e_value

    r.out.markdown(
        "Every estimate above is an **association**. An effect (what would change if patients "
        "adhered more) needs assumptions the data cannot check; this section states them next "
        "to each number."
    )
    dr = r.linked.get("dose_response", {}).get("followup")
    change = r.summary.get("nprs_change_followup")
    sd = float(change.std()) if change is not None else 0.0
    if dr is not None and sd > 0:
        row = dr.linear.iloc[0]
        ev = e_value(
            row["estimate"] / sd, row["ci_low"] / sd, row["ci_high"] / sd, scale="SMD"
        ).iloc[0]
        r.out.markdown(
            f"**How strong would unmeasured confounding have to be?** The association of 10 "
            f"more points of adherence with {row['estimate']:.2f} NPRS points of change at "
            f"follow-up ({row['estimate'] / sd:.2f} standard deviations of the change) would be "
            "explained away by an unmeasured factor associated with both adherence and pain, "
            f"beyond the adjustment set, by a risk ratio of **{ev['e_value']:.2f}** each "
            f"(E-value, VanderWeele & Ding 2017); {ev['e_value_ci']:.2f} would move its 95% "
            "interval to include no association. Patients whose pain does not improve adhere "
            "less, so confounding of this size is plausible: read the association as an upper "
            "bound on what adherence itself does, not as its effect."
        )
    else:
        r.out.markdown("No dose-response at follow-up was estimated, so no E-value is given.")
    _complier_blocks(r)
    if r.has_program:  # every week to the follow-up, once for both blocks
        from ptanalytics.models.causal_frames import cohort_weeks

        weeks = cohort_weeks(r.cohort, r.grid)
    else:
        weeks = None
    _gformula_block(r, weeks)
    _extension_rule_block(r, weeks)


#: The g-formula in the report: at least this share of the weeks before the follow-up (while a
#: patient is seen) with an NPRS score, and at most this many patients (its bootstrap).
GFORMULA_WEEKLY_SHARE = 0.9
GFORMULA_MAX_PATIENTS = 5000


def _gformula_block(r: Report, weeks: pd.DataFrame | None = None) -> None:
    """The g-formula's adherence regimes when pain is scored every week, with their E-values;
    otherwise why not."""
    from ptanalytics.models import gformula, weekly_history
    from ptanalytics.models.causal import GFORMULA_ASSUMPTIONS, e_value
    from ptanalytics.models.causal_frames import WEEKLY_GFORMULA, followup_horizon

    head = "**Adherence regimes under feedback (the g-formula)**: "
    if not r.has_program:
        r.out.markdown(head + "not estimated (no session data).")
        return
    # Per patient, the share of the weeks up to their last score that have one.
    seen = r.weeks[r.weeks["week"] < followup_horizon(r.cohort)]
    scored = seen.assign(week_=seen["week"].where(seen["nprs"].notna()))
    per = scored.groupby("patient_id", sort=False).agg(
        scored=("nprs", "count"), last=("week_", "max")
    )
    share = float((per["scored"] / (per["last"] + 1)).mean()) if len(per) else 0.0
    if share < GFORMULA_WEEKLY_SHARE:
        r.out.markdown(
            head + "not estimated. They model how each week's pain drives that week's sessions, "
            f"so they need pain scored every week; in this cohort {100 * share:.0f}% of the "
            "weeks a patient was followed have a score (patients are assessed less often in "
            "maintenance, or miss assessments). Record the NPRS weekly to estimate them."
        )
        return
    if len(r.summary) > GFORMULA_MAX_PATIENTS:
        r.out.markdown(
            head + f"not estimated in the report for more than {GFORMULA_MAX_PATIENTS:,} "
            "patients (its bootstrap); run ptanalytics.models.gformula (docs/causal.md)."
        )
        return
    long, final = weekly_history(r.cohort, grid=r.grid, weeks=weeks)
    regimes = {
        "natural+0.25*missed": "a quarter of the missed sessions made up",
        "keep>=0.8": "adherence kept at 80% (a week begun behind is done in full)",
        "always": "every prescribed session",
    }
    fit = estimable(
        r.out,
        "The g-formula",
        lambda: gformula(
            long.merge(r.summary[["patient_id", "age"]].astype({"age": float})),
            outcome_data=final,
            baseline=["age"],
            **WEEKLY_GFORMULA,
            regimes=("natural", *regimes),
            reference="natural",
            n_sim=2000,
            bootstrap=100,
            seed=r.settings.mi_seed,
        ),
    )
    if fit is None:
        return
    t = fit.table.set_index("term")
    sd = float(final["nprs_at_followup"].std())
    lines = []
    for regime, words in regimes.items():
        row = t.loc[f"{regime} vs natural"]
        ev = e_value(*(row[c] / sd for c in ("estimate", "ci_low", "ci_high")), scale="SMD")
        lines.append(
            f"- {words}: {row['estimate']:.2f} NPRS points at follow-up (95% CI "
            f"{row['ci_low']:.2f} to {row['ci_high']:.2f}; E-value {ev.loc[0, 'e_value']:.2f})"
        )
    r.out.markdown(
        head
        + "against the patients' own adherence, had nobody left:\n\n"
        + "\n".join(lines)
        + "\n\nThese hold only if "
        + "; ".join(GFORMULA_ASSUMPTIONS)
        + "; and past adherence stands for a patient's propensity rather than causing this "
        "week's."
    )


def _extension_rule_block(r: Report, weeks: pd.DataFrame | None = None) -> None:
    """The review's extension rule against a fixed 8 weeks, emulated as a target trial, with
    its E-value; the wider rule said to be unsupported where the clinic never followed it."""
    from ptanalytics.models import extension_rule_trial, target_trial
    from ptanalytics.models.causal import TTE_ASSUMPTIONS, e_value
    from ptanalytics.models.causal_frames import RULE_TRIAL

    week = r.settings.review_week
    if not r.has_program or "guided_weeks_actual" not in r.summary:
        r.out.markdown(
            "**The review's extension rule**: not emulated (no prescriptions give the guided "
            "phase's planned and actual length)."
        )
        return

    def emulate(threshold):
        frame = extension_rule_trial(
            r.cohort, threshold, review_week=week, summary=r.summary, grid=r.grid, weeks=weeks
        )
        return target_trial(frame, seed=r.settings.mi_seed, **RULE_TRIAL), frame

    done = estimable(r.out, "The review's extension rule, emulated", lambda: emulate(0.1))
    if done is None:
        return
    fit, frame = done
    t = fit.table.set_index("term")
    effect, naive = t.loc["rule vs fixed"], t.loc["naive: rule vs fixed"]
    lead = (
        f"**The review's extension rule, emulated as a target trial** (clone–censor–weight, "
        f"docs/causal.md): among the patients planned 8 guided weeks, *extend by 2 weeks every "
        f"patient less than 10% better at the week-{week} review* against *keep 8 weeks*. "
    )
    if not np.isfinite(effect["estimate"]):
        r.out.markdown(
            lead + "**The data cannot support it**: the clinic (almost) never followed one of "
            "the two strategies for some of its patients (positivity), so no estimate is given."
        )
        return
    sd = float(frame["nprs_at_followup"].std())
    ev = e_value(*(effect[c] / sd for c in ("estimate", "ci_low", "ci_high")), scale="SMD")
    r.out.markdown(
        lead + f"Difference in follow-up NPRS {effect['estimate']:.2f} (95% CI "
        f"{effect['ci_low']:.2f} to {effect['ci_high']:.2f}); the per-protocol association "
        f"(followers compared unweighted) {naive['estimate']:.2f}. E-value "
        f"{ev.loc[0, 'e_value']:.2f} ({ev.loc[0, 'e_value_ci']:.2f} for the interval). It "
        "holds only if " + "; ".join(TTE_ASSUMPTIONS) + "."
    )
    wider = estimable(r.out, "The rule at 30%", lambda: emulate(0.3))
    if wider is not None:
        row = wider[0].table.set_index("term").loc["rule vs fixed"]
        r.out.markdown(
            "Extending every patient less than **30%** better "
            + (
                f"would change follow-up NPRS by {row['estimate']:.2f} (95% CI "
                f"{row['ci_low']:.2f} to {row['ci_high']:.2f}) against keeping 8 weeks."
                if np.isfinite(row["estimate"])
                else "**cannot be estimated from these data**: the clinic (almost) never "
                "extended patients who were 10–30% better, so nothing in the data shows what "
                "extending them does (positivity)."
            )
        )


def _complier_blocks(r: Report) -> None:
    """The complier effect of adherence with the named randomised arm as instrument."""
    from ptanalytics.models.causal import IV_ASSUMPTIONS, complier_effect

    arm = r.settings.active_arm
    levels = sorted(r.summary["arm"].dropna().astype(str).unique()) if "arm" in r.summary else []
    if arm is None or arm not in levels or len(levels) != 2 or "adherence" not in r.summary:
        r.out.markdown(
            "**Effects with a randomised instrument**: not estimated. "
            + (
                "The cohort has an arm column; name its randomised active level "
                "(ReportSettings(active_arm=...)) to estimate the effect of adherence among "
                "the patients the arm moved, if the arm has two levels and sessions were logged."
                if levels
                else "The cohort has no randomised arm. Without one, an effect of adherence "
                "rests on no unmeasured confounding given the measured history (the "
                "weighting and g-formula methods of docs/causal.md)."
            )
        )
        return
    fit = estimable(
        r.out,
        "Complier effect",
        lambda: complier_effect(
            r.summary,
            outcome="nprs_change_followup",
            exposure="adherence",
            instrument="arm",
            instrument_level=arm,
            covariates=["nprs_baseline", "age", "C(sex)", "C(chronicity)"],
        ),
    )
    if fit is None:
        return
    rows = pd.concat([fit.table.iloc[:1], fit.naive]).assign(
        term=["complier effect (2SLS, arm as instrument)", "association (OLS)"]
    )
    shown = terms_table(
        rows[["term", "estimate", "std_error", "ci_low", "ci_high", "p_value"]],
        estimate="NPRS points per unit of adherence",
    )
    r.out.markdown(
        f"**Effect of adherence among the patients the '{html.escape(arm)}' arm moved** "
        f"(two-stage least squares, first-stage F = {fit.first_stage_f:.1f}"
        + ("; **weak instrument: do not rely on it**" if fit.weak else "")
        + "). It holds only if "
        + "; ".join(IV_ASSUMPTIONS)
        + ". The association beside it assumes nothing and is confounded."
    )
    r.out.html(shown.to_html(index=False))


def dropout_section(r: Report) -> None:
    """6. Dropout: Kaplan-Meier by early adherence (a landmark analysis) and a Cox model."""
    from ptanalytics import plotting
    from ptanalytics.models import dropout
    from ptanalytics.report.text import adjusted_for_text, landmark_text

    if not r.has_program:
        r.out.markdown("No session data: dropout from the program cannot be defined.")
        return
    if len(r.summary) < r.min_cell:
        r.out.markdown(f"Fewer than {r.min_cell} patients: dropout curves are not shown.")
        return
    week = r.settings.landmark_week
    bands = dropout.early_adherence_band(r.weeks, landmark_week=week)
    km = estimable(
        r.out,
        "Kaplan-Meier",
        lambda: (
            dropout.kaplan_meier(
                r.summary.merge(bands, on="patient_id"), by="early_band", landmark_week=week
            ).table
        ),
    )
    if km is not None:
        km = km_for_report(km, min_cell=r.min_cell)
        p = km.attrs.get("logrank_p") if len(km) else None
        r.out.markdown(landmark_text(week, min_cell=r.min_cell, logrank_p=p))
        if len(km):
            words = f"adherence in weeks 0-{week - 1}"
            r.out.figure(plotting.plot_kaplan_meier(km, legend_title=words))
    cox = estimable(
        r.out, "Cox regression of dropout", lambda: dropout.cox_dropout(r.weeks, r.summary)
    )
    if cox is not None:
        r.out.markdown(
            "Cox regression of dropout (hazard ratios; pain change is the last observed NPRS "
            "minus baseline, a time-varying covariate):"
        )
        r.out.html(terms_table(cox.table, estimate="Hazard ratio").to_html(index=False))
        lead = "The pain-change hazard ratio is adjusted for"
        r.out.markdown(adjusted_for_text(cox.covariates, lead=lead))


def methods_section(r: Report) -> None:
    """7. Methods and limitations (definitions with the parameters the report used)."""
    r.out.markdown(methods_text())


def software_section(r: Report) -> None:
    """8. Software and data: package versions and the cohort's fingerprint."""
    r.out.html(software_versions().rename(columns=column_label).to_html(index=False))
    r.out.markdown(
        f"Data fingerprint (SHA-256 of the cohort tables): `{cohort_fingerprint(r.cohort)}`"
    )


def provenance_section(r: Report, folder=None) -> None:
    """9. Provenance: the sources and mapping (pseudonymous names, hashes), the ingest summary,
    the hashes of the cohort folder's files (``folder``: the folder the report read, None for a
    cohort held in memory), every parameter and the software versions
    (:func:`ptanalytics.report.provenance.add_provenance`)."""
    from ptanalytics.report.provenance import add_provenance

    add_provenance(
        r.out,
        r.cohort.metadata or {},
        folder=folder,
        settings=r.settings,
        min_cell=r.min_cell,
        group=r.group,
        versions=software_versions(),
    )


# ------------------------------------------------------------------------------------ provenance
def cohort_fingerprint(cohort: Cohort) -> str:
    """SHA-256 of the cohort's tables, to tell which data a report used
    (:func:`ptanalytics._hashing.tables_sha256`: each column's name, kind, missing cells and
    values in a canonical binary form, so the same data read from CSV or Parquet gives the
    same fingerprint; about 2 s for 2 x 10^7 session rows)."""
    return tables_sha256(cohort.tables)


def software_versions() -> pd.DataFrame:
    """Versions of Python and of the packages the analysis used (``package``, ``version``)."""
    rows = [("python", platform.python_version())]
    for pkg in (
        "ptanalytics",
        "numpy",
        "pandas",
        "scipy",
        "statsmodels",
        "matplotlib",
        "pyarrow",
        "papermill",
        "nbconvert",
    ):
        try:
            rows.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            rows.append((pkg, "not installed"))
    return pd.DataFrame(rows, columns=["package", "version"])
