"""The report's tables: Table 1, the linked count tables of :func:`report_disclosure`, and the
model and survival tables as the report may show them (small groups and terms withheld).

Every count table is registered in one :class:`~ptanalytics.report.disclosure.Disclosure`, so
that a suppressed count cannot be recovered from a total, another table or a percentage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptanalytics.cohort.container import Cohort
from ptanalytics.metrics.responders import flag_responders, responder_table
from ptanalytics.metrics.timepoints import (
    TIMEPOINT_LABELS,
    assessment_timepoints,
    timepoint_counts,
    timepoint_scores,
)
from ptanalytics.privacy.suppression import MIN_CELL, suppress_small_counts
from ptanalytics.report.disclosure import Disclosure
from ptanalytics.vocab import ATTENDANCE_BANDS

__all__ = [
    "aggregate_html",
    "km_for_report",
    "mathtext_safe",
    "mi_for_report",
    "model_patients",
    "report_disclosure",
    "small_factor_terms",
    "table_one",
]


def aggregate_html(
    table: pd.DataFrame, *, counts=(), derived=(), digits: int = 2, min_cell: int = MIN_CELL
) -> str:
    """An aggregate table (never rows of patients) as HTML, its small counts suppressed.

    Counts from 1 to ``min_cell - 1`` in ``counts`` show as ``<min_cell`` and the ``derived``
    columns of their rows as ``suppressed`` (:func:`~ptanalytics.privacy.suppress_small_counts`);
    numbers are rounded to ``digits``.
    """
    shown = suppress_small_counts(
        table.round(digits), counts=list(counts), derived=list(derived), min_cell=min_cell
    )
    return shown.to_html(index=False, na_rep="")


def _table_one_counts(cohort: Cohort) -> tuple[pd.DataFrame, dict]:
    pts = cohort.patients
    total = len(pts)
    ids = pts["patient_id"]
    rows = [{"characteristic": "patients", "level": "", "n": total, "percent": 100.0}]
    masks = {(0, "n"): ids}
    for col in ("sex", "chronicity", "guided_weeks", "arm"):
        if col not in pts or pts[col].isna().all():
            continue
        values = pts[col].astype("string").fillna("missing")
        counts = values.value_counts()
        counts = counts.sort_index(key=lambda idx: [(len(v), v) for v in idx])
        for level, n in counts.items():
            masks[(len(rows), "n")] = ids[values == level]
            rows.append(
                {
                    "characteristic": col.replace("_", " "),
                    "level": str(level),
                    "n": int(n),
                    "percent": round(100 * n / total, 1) if total else 0.0,
                }
            )
    return pd.DataFrame(rows), masks


def _table_one_means(cohort: Cohort, min_cell: int) -> list[tuple[str, str, str]]:
    pts = cohort.patients
    extra = []
    for name, s in [("age, years", pts["age"] if "age" in pts else pd.Series(dtype=float))]:
        s = pd.to_numeric(s, errors="coerce").dropna()
        if len(s) >= max(min_cell, 2):
            extra.append((name, "mean (SD)", f"{s.mean():.1f} ({s.std():.1f})"))
    scores = timepoint_scores(cohort, instruments=("NPRS", "ODI"))
    for inst in ("NPRS", "ODI"):
        col = f"{inst.lower()}_baseline"
        s = scores[col].dropna() if col in scores else pd.Series(dtype=float)
        if len(s) >= max(min_cell, 2):
            extra.append((f"baseline {inst}", "mean (SD)", f"{s.mean():.1f} ({s.std():.1f})"))
    return extra


def table_one(
    cohort: Cohort, *, min_cell: int = MIN_CELL, disclosure: Disclosure | None = None
) -> pd.DataFrame:
    """Baseline characteristics (Table 1) with small counts suppressed.

    Counts from 1 to ``min_cell - 1`` are shown as ``<min_cell``, and complementary counts as
    ``suppressed`` so that none can be derived from the patients total; means are shown only
    over at least ``min_cell`` patients (and two). With ``disclosure``, the table is registered
    there (as ``"table_one"``) so that its suppression is linked with the report's other tables.

    Returns
    -------
    pandas.DataFrame
        ``characteristic``, ``level``, ``n`` and ``percent`` for sex, chronicity, planned
        guided weeks and arm, and ``mean (SD)`` rows (in ``n``) for age and baseline NPRS / ODI.
    """
    own = disclosure is None
    disc = Disclosure(cohort.patients["patient_id"], min_cell=min_cell) if own else disclosure
    if not disc.has_table("table_one"):
        table, masks = _table_one_counts(cohort)
        disc.add_table("table_one", table, masks, derived={"percent": ["n"]})
    if own:
        disc.protect(keep=[("table_one", 0, "n")])
    out = disc.table("table_one")
    for name, level, value in _table_one_means(cohort, disc.min_cell):
        out.loc[len(out)] = {"characteristic": name, "level": level, "n": value, "percent": ""}
    return out


def _group_table(frame: pd.DataFrame, by: str, order, name: str) -> pd.DataFrame:
    counts = frame[by].value_counts()
    if order is not None:
        counts = counts.reindex([o for o in order if o in counts.index])
    return counts.rename_axis(name).reset_index(name="patients")


def report_disclosure(
    cohort: Cohort,
    summary: pd.DataFrame,
    *,
    group: str | None,
    min_cell: int = MIN_CELL,
    timepoint: str = "followup",
) -> tuple[Disclosure, dict]:
    """The report's linked count tables, registered in one :class:`Disclosure`.

    Tables (names): ``table_one``; ``timepoints`` (observed / missing per instrument,
    timepoint and group); ``bands`` and ``trajectories`` (with sessions); ``itt`` and
    ``completers`` (responders); ``lengths`` (planned vs actual guided length). Every count is
    linked to the others through the patients it counts, so a suppressed count cannot be
    recovered from a total, another table or a percentage. Register the counts quoted in
    sentences (:meth:`Disclosure.add`), then call :meth:`Disclosure.protect` once.

    Returns
    -------
    (Disclosure, dict)
        The disclosure, and the raw inputs the report also needs (``flags`` per analysis,
        ``assessments``).
    """
    disc = Disclosure(cohort.patients["patient_id"], min_cell=min_cell)
    t1, masks = _table_one_counts(cohort)
    disc.add_table("table_one", t1, masks, derived={"percent": ["n"]})
    extra = {"assessments": _link_timepoints(disc, cohort, summary, group)}
    if len(cohort.sessions) > 0 and "attendance_band" in summary:
        _link_adherence(disc, summary)
    extra["flags"] = _link_responders(disc, summary, group, timepoint)
    _link_lengths(disc, summary, timepoint)
    return disc, extra


def _link_timepoints(
    disc: Disclosure, cohort: Cohort, summary: pd.DataFrame, group: str | None
) -> pd.DataFrame:
    """Register ``timepoints``: patients observed / missing per instrument, timepoint, group."""
    assessments = assessment_timepoints(cohort)
    if group:
        assessments = assessments.merge(summary[["patient_id", group]], on="patient_id", how="left")
    counts = timepoint_counts(assessments, by=group).rename(
        columns={"with_target": "with a target"}
    )
    frame = assessments.assign(
        timepoint=assessments["timepoint"].map(TIMEPOINT_LABELS),
        _target=assessments["target_day"].notna(),
        _obs=assessments["observed"].astype(bool),
    )
    frame["_missing"] = ~frame["_obs"]
    disc.link_table(
        "timepoints",
        counts,
        frame,
        keys=["instrument", "timepoint", *([group] if group else [])],
        counts={
            "patients": None,
            "with a target": "_target",
            "observed": "_obs",
            "missing": "_missing",
        },
    )
    return assessments


def _link_adherence(disc: Disclosure, summary: pd.DataFrame) -> None:
    """Register ``bands`` (patients and percent by attendance band) and ``trajectories``."""
    bands = _group_table(summary, "attendance_band", list(ATTENDANCE_BANDS), "attendance band")
    bands["percent"] = (100 * bands["patients"] / max(len(summary), 1)).round(1)
    frame = summary.rename(columns={"attendance_band": "attendance band"})
    disc.link_table(
        "bands",
        bands,
        frame,
        keys=["attendance band"],
        counts={"patients": None},
        derived={"percent": ["patients"]},
    )
    traj = _group_table(summary, "adherence_trajectory", None, "trajectory")
    frame = summary.rename(columns={"adherence_trajectory": "trajectory"})
    disc.link_table("trajectories", traj, frame, keys=["trajectory"], counts={"patients": None})


def _link_responders(
    disc: Disclosure, summary: pd.DataFrame, group: str | None, timepoint: str
) -> dict[str, pd.DataFrame]:
    """Register ``itt`` and ``completers`` (responders by group); return their flags."""
    keys = [group] if group else []
    flags = {}
    for analysis in ("itt", "completers"):
        f = flag_responders(summary, timepoint=timepoint, analysis=analysis)
        f = f.assign(_missing=~f["observed"].astype(bool), _resp=f["responder"].astype(bool))
        flags[analysis] = f
        table = responder_table(f, by=group).table.drop(
            columns=["definition", "timepoint", "analysis"]
        )
        if not keys:
            f = f.assign(_all="all")
            table.insert(0, "_all", "all")
        disc.link_table(
            analysis,
            table,
            f,
            keys=keys or ["_all"],
            counts={"n": None, "responders": "_resp", "missing_followup": "_missing"},
            derived={c: ["n", "responders"] for c in ("proportion", "ci_low", "ci_high")},
        )
        if not keys:
            disc.drop_columns(analysis, ["_all"])
    return flags


def _link_lengths(disc: Disclosure, summary: pd.DataFrame, timepoint: str) -> None:
    """Register ``lengths``: planned vs actual guided length, with the mean outcome."""
    if "guided_weeks" not in summary or "guided_weeks_actual" not in summary:
        return
    s = summary.dropna(subset=["guided_weeks", "guided_weeks_actual"])
    if not len(s):
        return
    s = s.assign(
        planned=s["guided_weeks"].astype(int),
        _ext=s["guided_weeks_actual"] > s["guided_weeks"],
        _short=s["guided_weeks_actual"] < s["guided_weeks"],
    )
    lengths = (
        s.groupby("planned")
        .agg(
            n=("patient_id", "size"),
            mean_actual=("guided_weeks_actual", "mean"),
            extended=("_ext", "sum"),
            shortened=("_short", "sum"),
            mean_outcome=(f"nprs_change_{timepoint}", "mean"),
        )
        .reset_index()
        .round(2)
    )
    for c in ("n", "extended", "shortened"):
        lengths[c] = lengths[c].astype(int)
    disc.link_table(
        "lengths",
        lengths,
        s,
        keys=["planned"],
        counts={"n": None, "extended": "_ext", "shortened": "_short"},
        derived={"mean_actual": ["n"], "mean_outcome": ["n"]},
    )


def model_patients(summary: pd.DataFrame, outcome: str, adherence: str) -> pd.Series:
    """Patient ids of the complete cases a dose-response fit uses (for its quoted n)."""
    from ptanalytics.models.outcomes import DEFAULT_COVARIATES, _usable_covariates

    covs = _usable_covariates(summary, DEFAULT_COVARIATES)
    cols = [outcome, adherence, *(c[2:-1] if c.startswith("C(") else c for c in covs)]
    return summary.dropna(subset=cols)["patient_id"]


def mi_for_report(mi: pd.DataFrame, disclosure: Disclosure, *, group: str | None) -> pd.DataFrame:
    """The multiple-imputation table with its counts as the ITT table shows them.

    Its ``n`` and ``n_imputed`` count the same patients as the ITT table's ``n`` and
    ``missing_followup`` (checked), so they share their suppression; the pooled proportion and
    its interval are blanked where ``n`` is hidden. A row that matches no ITT row shows no count.
    """
    raw = disclosure.raw("itt")
    shown = disclosure.table("itt")
    keys = [group] if group else []
    cols = [*keys, "n", "n_imputed", "estimate", "ci_low", "ci_high"]
    out = mi[cols].round(3).astype(object).reset_index(drop=True)
    for i in range(len(out)):
        if keys:
            match = np.flatnonzero(raw[group].astype(str).to_numpy() == str(out.loc[i, group]))
        else:
            match = np.array([0])
        same = len(match) and (int(mi["n"].iloc[i]), int(mi["n_imputed"].iloc[i])) == (
            int(raw["n"].iloc[int(match[0])]),
            int(raw["missing_followup"].iloc[int(match[0])]),
        )
        if not same:  # not the ITT table's patients: show no count rather than an unlinked one
            out.loc[i, ["n", "n_imputed"]] = "suppressed"
            continue
        j = int(match[0])
        out.loc[i, "n"] = shown["n"].iloc[j]
        out.loc[i, "n_imputed"] = shown["missing_followup"].iloc[j]
        if not disclosure.shown(("itt", j, "n")):
            out.loc[i, ["estimate", "ci_low", "ci_high"]] = "suppressed"
    return out


def small_factor_terms(
    cohort: Cohort, summary: pd.DataFrame, *, min_cell: int = MIN_CELL
) -> list[str]:
    """Model terms to withhold: factor levels and co-interventions with fewer than ``min_cell``
    patients on either side (the estimate would describe a handful of patients)."""
    out = []
    n = len(summary)
    for col in ("sex", "chronicity"):
        if col in summary:
            for level, k in summary[col].value_counts().items():
                if k < min_cell or n - k < min_cell:
                    out.append(f"C({col})[T.{level}]")
    co = cohort.cointerventions
    if len(co) and "kind" in co:
        for kind, k in co.groupby("kind")["patient_id"].nunique().items():
            if k < min_cell or n - k < min_cell:
                out.append(f"co_{kind}")
    return out


def mathtext_safe(text) -> str:
    """Text from data made safe for a matplotlib label (``$`` would start mathtext)."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


def km_for_report(km: pd.DataFrame, *, min_cell: int = MIN_CELL) -> pd.DataFrame:
    """Kaplan-Meier rows that may be drawn: groups of at least ``min_cell`` patients, each curve
    cut where fewer than ``min_cell`` remain at risk; group names made safe for matplotlib."""
    out = []
    for _, part in km.groupby("group", sort=False, observed=True):
        size = int(part["n_at_risk"].max()) if len(part) else 0
        if size < min_cell:
            continue
        keep = (part["n_at_risk"] >= min_cell) | (part.index == part.index[0])
        out.append(part[keep])
    result = pd.concat(out) if out else km.iloc[:0]
    result = result.assign(group=result["group"].map(mathtext_safe))
    result.attrs = dict(km.attrs)
    return result
