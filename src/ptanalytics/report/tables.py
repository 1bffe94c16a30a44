"""The report's tables: Table 1, the linked count tables of :func:`report_disclosure`, and the
model and survival tables as the report may show them (small groups and terms withheld).

Every count table is registered in one :class:`~ptanalytics.report.disclosure.Disclosure`, so
that a suppressed count cannot be recovered from a total, another table or a percentage.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from ptanalytics.cohort.container import Cohort
from ptanalytics.metrics.describe import comparison_group
from ptanalytics.metrics.responders import flag_responders, responder_table
from ptanalytics.metrics.summary import patient_summary
from ptanalytics.metrics.table_one import (
    MISSING,
    OVERALL,
    TABLE_ONE_VARIABLES,
    table_one_cells,
    table_one_stats,
)
from ptanalytics.metrics.timepoints import (
    TIMEPOINT_LABELS,
    assessment_timepoints,
    timepoint_counts,
)
from ptanalytics.privacy.suppression import MIN_CELL, suppress_small_counts
from ptanalytics.report.disclosure import Disclosure
from ptanalytics.vocab import ATTENDANCE_BANDS, COLUMN_LABELS, PROPORTION_COLUMNS

__all__ = [
    "aggregate_html",
    "column_label",
    "group_totals",
    "km_for_report",
    "mathtext_safe",
    "mi_for_report",
    "model_patients",
    "readable_table",
    "report_disclosure",
    "small_factor_terms",
    "table_one",
    "table_one_html",
]


def aggregate_html(
    table: pd.DataFrame, *, counts=(), derived=(), digits: int = 2, min_cell: int = MIN_CELL
) -> str:
    """An aggregate table (never rows of patients) as HTML, its small counts suppressed.

    Counts from 1 to ``min_cell - 1`` in ``counts`` show as ``<min_cell`` and the ``derived``
    columns of their rows as ``suppressed`` (:func:`~ptanalytics.privacy.suppress_small_counts`);
    then the table is put in words (:func:`readable_table`, numbers to ``digits`` decimals).
    """
    shown = suppress_small_counts(
        table.round(digits), counts=list(counts), derived=list(derived), min_cell=min_cell
    )
    return readable_table(shown, digits=digits).to_html(index=False, na_rep="")


# ------------------------------------------------------------------------------ in words
#: Columns whose values are codes, and the words of a code (else spaces for underscores).
_CODE_COLUMNS = {"timepoint": TIMEPOINT_LABELS, "reason_code": {}, "trajectory": {}, "table": {}}
#: Grouping columns: a missing group reads as Table 1's column of patients without a group.
_GROUP_COLUMNS = {"arm", "attendance_band", "attendance band", "trajectory"}


def column_label(name) -> str:
    """A column's header in words (:data:`ptanalytics.vocab.COLUMN_LABELS`).

    An unlisted ``mean_<name>`` reads "Mean " and the words of ``<name>``; any other unlisted
    name reads with spaces for underscores and a capital first letter.

    Examples
    --------
    >>> [column_label(c) for c in ("attendance_band", "mean_nprs_change_followup", "rows_read")]
    ['Attendance band', 'Mean NPRS change at follow-up', 'Rows read']
    """
    name = str(name)
    if name in COLUMN_LABELS:
        return COLUMN_LABELS[name]
    if name.startswith("mean_"):
        rest = column_label(name[len("mean_") :])
        return "Mean " + (rest if rest[:4].isupper() else rest[:1].lower() + rest[1:])
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _percent(value) -> str:
    """A proportion (0-1) as a percentage with one decimal; text (a withheld cell) as it is."""
    if isinstance(value, str):
        return value
    return "" if pd.isna(value) else f"{100 * float(value):.1f}%"


def _number(value, digits: int, whole: bool) -> str:
    if isinstance(value, str):
        return value
    if value is None or pd.isna(value):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)) or whole:
        return f"{int(value):,}"
    return f"{float(value):,.{digits}f}"


def _whole(column: pd.Series) -> bool:
    """Every number of the column (text cells aside) is a whole number."""
    numbers = pd.to_numeric(column[column.map(lambda v: not isinstance(v, str))], errors="coerce")
    numbers = numbers.dropna()
    return bool(len(numbers)) and bool((numbers == numbers.round()).all())


def readable_table(
    table: pd.DataFrame, *, labels: dict | None = None, digits: int = 2, level: float = 95
) -> pd.DataFrame:
    """A table of the report in words: every report table goes through this, after suppression.

    * headers in words (:func:`column_label`; ``labels`` maps a column to its header where this
      table's differs, e.g. what its ``estimate`` is);
    * proportions (:data:`~ptanalytics.vocab.PROPORTION_COLUMNS`) as percentages with one
      decimal ("22.4%");
    * ``ci_low`` and ``ci_high`` as one ``"95% CI"`` column "a to b" (percentages when the table
      has a proportion, else ``digits`` decimals);
    * codes in words (``end_guided`` is "end of guided phase"; ``bad_date`` "bad date"), and a
      missing group as "not recorded" (Table 1's name for it);
    * counts with thousands separators, other numbers to ``digits`` decimals (a column of whole
      numbers as whole numbers).

    Text cells (``"<11"``, ``"suppressed"``) are left as they are, so a withheld count and
    everything derived from it stay withheld: format the table the disclosure gives, never the
    raw one. An interval with a withheld end shows as that end's text.

    Examples
    --------
    >>> t = pd.DataFrame({"attendance_band": ["low", "high"], "n": [165, "<11"],
    ...                   "proportion": [0.2242, "suppressed"], "ci_low": [0.16, "suppressed"],
    ...                   "ci_high": [0.29, "suppressed"]})
    >>> readable_table(t).to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'Attendance band': 'low', 'Patients': '165', 'Responders (%)': '22.4%',
      '95% CI': '16.0% to 29.0%'},
     {'Attendance band': 'high', 'Patients': '<11', 'Responders (%)': 'suppressed',
      '95% CI': 'suppressed'}]
    """
    labels = dict(labels or {})
    as_percent = bool(PROPORTION_COLUMNS & set(table.columns))
    out = {}
    for col in table.columns:
        values = table[col].astype(object)
        if col in _GROUP_COLUMNS:
            values = values.map(lambda v: _GROUP_NAMES[MISSING] if _missing(v) else v)
        if col == "ci_high" and "ci_low" in table.columns:
            continue
        if col == "ci_low" and "ci_high" in table.columns:
            ends = zip(values, table["ci_high"].astype(object), strict=True)
            out[labels.get(col, f"{level:g}% CI")] = [
                _interval(lo, hi, digits, as_percent) for lo, hi in ends
            ]
            continue
        if col in PROPORTION_COLUMNS:
            cells = [_percent(v) for v in values]
        elif col in _CODE_COLUMNS:
            words = _CODE_COLUMNS[col]
            cells = [
                v if not isinstance(v, str) else words.get(v, v.replace("_", " ")) for v in values
            ]
            cells = [_number(v, digits, False) if not isinstance(v, str) else v for v in cells]
        else:
            whole = _whole(values)
            cells = [_number(v, digits, whole) for v in values]
        out[labels.get(col, column_label(col))] = cells
    return pd.DataFrame(out, index=table.index)


def _missing(value) -> bool:
    return not isinstance(value, str) and (value is None or bool(pd.isna(value)))


def _interval(low, high, digits: int, as_percent: bool) -> str:
    for end in (low, high):
        if isinstance(end, str):
            return end
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return ""
    if as_percent:
        return f"{_percent(low)} to {_percent(high)}"
    return f"{float(low):.{digits}f} to {float(high):.{digits}f}"


def _table_one_counts(summary: pd.DataFrame, group: str | None) -> tuple[pd.DataFrame, dict]:
    """Table 1's counts as one long table (row 0: all patients) and the patients of each."""
    cells = table_one_cells(summary, group=group)
    sizes = {name: len(ids) for variable, _, name, ids in cells if variable == "patients"}
    rows, masks = [], {}
    for i, (variable, level, name, ids) in enumerate(cells):
        pct = round(100 * len(ids) / sizes[name], 1) if sizes[name] else 0.0
        rows.append(
            {
                "characteristic": variable,
                "level": level,
                "group": name,
                "n": len(ids),
                "percent": pct,
            }
        )
        masks[(i, "n")] = ids
    return pd.DataFrame(rows), masks


_STATS = ("mean", "sd", "median", "q1", "q3")
_GROUP_NAMES = {MISSING: "not recorded"}


def _shown_stats(stats: pd.DataFrame, column: str, names: list[str], min_cell: int) -> set[str]:
    """Groups whose mean, SD, median and quartiles of ``column`` may be shown.

    Each needs at least ``min_cell`` (and two) patients with a value. When the groups withheld
    hold fewer than ``min_cell`` values between them, Overall is withheld too: otherwise their
    mean would follow from Overall's and the shown groups' means and counts.
    """
    s = stats[(stats["variable"] == column) & (stats["statistic"] == "n") & (stats["level"] == "")]
    n = dict(zip(s["group"], s["value"].astype(int), strict=True))
    shown = {g for g in names if n.get(g, 0) >= max(min_cell, 2)}
    hidden = sum(n.get(g, 0) for g in names if g != OVERALL and g not in shown)
    if 0 < hidden < min_cell:
        shown.discard(OVERALL)
    return shown


def _table_one_layout(disc: Disclosure, stats: pd.DataFrame) -> pd.DataFrame:
    """Table 1 as it may be shown: one column per group, counts as ``n (%)``."""
    raw, shown = disc.raw("table_one"), disc.table("table_one")
    cell = {
        (r.characteristic, r.level, r.group): (n, r.percent)
        for r, n in zip(raw.itertuples(), shown["n"], strict=True)
    }
    names = list(raw.loc[raw["characteristic"] == "patients", "group"])
    groups = [g for g in names if g not in (OVERALL, MISSING)]
    value = stats.set_index(["variable", "level", "group", "statistic"])["value"]

    # A percent is shown only beside a shown count of a column whose total is shown (else the
    # total would be the count over the percent).
    total = {g: isinstance(cell[("patients", "", g)][0], int) for g in names}

    def counts(variable, level, pct=True):
        out = [(*cell[(variable, level, g)], total[g] and pct) for g in names]
        return [f"{n:,} ({p:.1f})" if ok and isinstance(n, int) else _n(n) for n, p, ok in out]

    def smd(column, ok):
        v = value.get((column, "", "SMD", "smd"), np.nan)
        return f"{v:.2f}" if ok and len(groups) >= 2 and not np.isnan(v) else ""

    rows = [["Patients", "n", *counts("patients", "", pct=False), ""]]
    for column, label, kind in TABLE_ONE_VARIABLES:
        if column not in set(raw["characteristic"]):
            continue
        levels = list(dict.fromkeys(raw.loc[raw["characteristic"] == column, "level"]))
        if kind == "categorical":
            known = [cell[(column, lv, g)][0] for lv in levels if lv != MISSING for g in groups]
            ok = all(isinstance(n, int) for n in known)
            for i, lv in enumerate(lv for lv in levels if lv != MISSING):
                first = (f"{label}, n (%)", smd(column, ok)) if i == 0 else ("", "")
                rows.append([first[0], lv, *counts(column, lv), first[1]])
        else:
            ok_groups = _shown_stats(stats, column, names, disc.min_cell)
            stat = {s: [value[(column, "", g, s)] for g in names] for s in _STATS}
            mean = [f"{m:.1f} ({sd:.1f})" for m, sd in zip(stat["mean"], stat["sd"], strict=True)]
            med = [
                f"{m:.1f} [{a:.1f}, {b:.1f}]"
                for m, a, b in zip(stat["median"], stat["q1"], stat["q3"], strict=True)
            ]
            hide = [g not in ok_groups for g in names]
            ok = all(g in ok_groups for g in groups)
            rows.append([label, "mean (SD)", *_withheld(mean, hide), smd(column, ok)])
            rows.append(["", "median [IQR]", *_withheld(med, hide), ""])
        rows.append(["", "missing", *counts(column, MISSING, False), ""])
    columns = ["characteristic", "level", *[_GROUP_NAMES.get(g, g) for g in names], "SMD"]
    out = pd.DataFrame(rows, columns=columns)
    if len(groups) < 2:
        out = out.drop(columns="SMD")
    return out


def _n(n) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)


def _withheld(texts: list[str], hide: list[bool]) -> list[str]:
    return ["suppressed" if h else t for t, h in zip(texts, hide, strict=True)]


def table_one(
    cohort: Cohort,
    *,
    summary: pd.DataFrame | None = None,
    group: str | None = "auto",
    min_cell: int = MIN_CELL,
    disclosure: Disclosure | None = None,
) -> pd.DataFrame:
    """Baseline characteristics (Table 1), overall and by group, small counts suppressed.

    Counts are ``n (%)`` (percent of the column's patients, one decimal), continuous
    characteristics mean (SD) and median [IQR], each characteristic with its ``missing`` count,
    and the standardised mean difference (``SMD``; :mod:`ptanalytics.metrics.table_one`) with
    two groups or more. Counts from 1 to ``min_cell - 1`` show as ``<min_cell`` and the counts
    that would give them away as ``suppressed``; means, SDs, medians and quartiles only over at
    least ``min_cell`` patients with a value (and never so that a withheld one follows from
    Overall); an SMD only when every figure it comes from is shown. With ``disclosure``, the
    counts are registered there (as ``"table_one"``, row 0 the patients total) so that their
    suppression is linked with the report's other tables.

    Parameters
    ----------
    cohort : Cohort
    summary : DataFrame, optional
        Its patient summary (:func:`~ptanalytics.patient_summary`), computed when not given.
    group : str or None, default "auto"
        The grouping column; ``"auto"``: the arm where the data has one, else attendance band
        (:func:`~ptanalytics.metrics.describe.comparison_group`); None: Overall only.

    Returns
    -------
    pandas.DataFrame
        Text columns ``characteristic``, ``level``, ``Overall``, one per group (``not
        recorded``: patients without a group) and ``SMD`` (with two groups or more).
        ``attrs["notes"]`` holds the table's notes.
    """
    if summary is None:
        summary = patient_summary(cohort)
    if group == "auto":
        group = comparison_group(summary, has_sessions=len(cohort.sessions) > 0)
    own = disclosure is None
    disc = Disclosure(cohort.patients["patient_id"], min_cell=min_cell) if own else disclosure
    if not disc.has_table("table_one"):
        table, masks = _table_one_counts(summary, group)
        disc.add_table("table_one", table, masks, derived={"percent": ["n"]})
    if own:
        disc.protect(keep=group_totals(disc))
    stats = table_one_stats(summary, group=group)
    out = _table_one_layout(disc, stats)
    out.attrs["notes"] = _table_one_notes(stats.attrs["smd"], disc.min_cell)
    return out


def group_totals(disc: Disclosure) -> list[tuple[str, int, str]]:
    """Keys of the totals :meth:`Disclosure.protect` should never choose as complementary cells
    (its ``keep``): all patients (quoted in the opening sentence) and, when every group has at
    least ``min_cell`` patients, each group's (the sizes of the arms or bands, which every
    grouped table shows). With a smaller group, only all patients: another group's size must
    then stay free to be suppressed, or the small one would be the total minus the others.
    """
    raw = disc.raw("table_one")
    rows = np.flatnonzero(raw["characteristic"] == "patients")
    if (raw["n"].to_numpy()[rows[1:]] < disc.min_cell).any():
        rows = rows[:1]
    return [("table_one", int(i), "n") for i in rows]


def _table_one_notes(smd: str, min_cell: int) -> list[str]:
    notes = [
        "Percentages are of the column's patients (those with a missing value included); "
        "mean (SD) and median [IQR] are over the patients with a value.",
        f"Counts below {min_cell} are shown as <{min_cell}, and counts that would give one "
        "away as suppressed; means, SDs, medians and quartiles are shown only over at least "
        f"{min_cell} patients with a value.",
    ]
    if smd != "none":
        which = (
            "between the two groups"
            if smd == "two groups"
            else ("the largest over every pair of groups")
        )
        notes.append(
            f"SMD: standardised mean difference, {which} (shown only where every figure it "
            "comes from is shown): for a continuous characteristic the difference in means over "
            "the pooled SD, sqrt((SD1^2 + SD2^2) / 2); for a categorical one the multi-level "
            "SMD of Yang & Dalton (2012). An SMD above 0.1 is often read as an imbalance."
        )
    return notes


def table_one_html(table: pd.DataFrame) -> str:
    """Table 1 (:func:`table_one`) as escaped HTML, its figures right-aligned."""

    def style(i: int) -> str:
        side = "left" if i < 2 else "right"
        return f'style="text-align: {side}; white-space: nowrap; padding: 0.1em 0.6em"'

    # The first two headers are words ("Characteristic", "Level"); the others name groups.
    names = [column_label(c) if i < 2 else str(c) for i, c in enumerate(table.columns)]
    head = "".join(f"<th {style(i)}>{html.escape(c)}</th>" for i, c in enumerate(names))
    body = "".join(
        "<tr>"
        + "".join(f"<td {style(i)}>{html.escape(str(v))}</td>" for i, v in enumerate(row))
        + "</tr>"
        for row in table.itertuples(index=False)
    )
    return f'<table class="table-one"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


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
    t1, masks = _table_one_counts(summary, group)
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
    """Register ``bands`` (patients and their share of all patients by attendance band) and
    ``trajectories``."""
    bands = _group_table(summary, "attendance_band", list(ATTENDANCE_BANDS), "attendance band")
    bands["share"] = bands["patients"] / max(len(summary), 1)
    frame = summary.rename(columns={"attendance_band": "attendance band"})
    disc.link_table(
        "bands",
        bands,
        frame,
        keys=["attendance band"],
        counts={"patients": None},
        derived={"share": ["patients"]},
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
    """Register ``lengths``: planned vs actual guided length, with the mean outcome
    (``mean_nprs_change_<timepoint>``)."""
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
            **{f"mean_nprs_change_{timepoint}": (f"nprs_change_{timepoint}", "mean")},
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
        derived={"mean_actual": ["n"], f"mean_nprs_change_{timepoint}": ["n"]},
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
    The pooled proportion is named ``proportion`` (as in the responder tables), so that
    :func:`readable_table` shows it and its interval as percentages.
    """
    raw = disclosure.raw("itt")
    shown = disclosure.table("itt")
    keys = [group] if group else []
    cols = [*keys, "n", "n_imputed", "estimate", "ci_low", "ci_high"]
    out = mi[cols].astype(object).reset_index(drop=True)
    for i in range(len(out)):
        if keys and _missing(out.loc[i, group]):  # patients without a group
            match = np.flatnonzero(raw[group].isna().to_numpy())
        elif keys:
            match = np.flatnonzero(raw[group].astype(str).to_numpy() == str(out.loc[i, group]))
        else:
            match = np.array([0])
        same = len(match) and (int(mi["n"].iloc[i]), int(mi["n_imputed"].iloc[i])) == (
            int(raw["n"].iloc[int(match[0])]),
            int(raw["missing_followup"].iloc[int(match[0])]),
        )
        if not same:  # not the ITT table's patients: show nothing rather than an unlinked count
            out.loc[i, ["n", "n_imputed", "estimate", "ci_low", "ci_high"]] = "suppressed"
            continue
        j = int(match[0])
        out.loc[i, "n"] = shown["n"].iloc[j]
        out.loc[i, "n_imputed"] = shown["missing_followup"].iloc[j]
        if not disclosure.shown(("itt", j, "n")):
            out.loc[i, ["estimate", "ci_low", "ci_high"]] = "suppressed"
    return out.rename(columns={"estimate": "proportion"})


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


# ------------------------------------------------------------------------------ model terms
def format_p(p) -> str:
    """A p-value as a report prints it: ``"< 0.001"`` below 0.001, else three decimals.

    Examples
    --------
    >>> format_p(0.00002), format_p(0.0432), format_p(float("nan"))
    ('< 0.001', '0.043', '')
    """
    if p is None or pd.isna(p):
        return ""
    return "< 0.001" if float(p) < 0.001 else f"{float(p):.3f}"


def terms_table(
    table: pd.DataFrame, *, estimate: str = "Estimate", digits: int = 3, alpha: float = 0.05
) -> pd.DataFrame:
    """A model's tidy rows in words: the term in plain words, the estimate, its interval, p.

    Parameters
    ----------
    table : DataFrame
        Tidy rows (``term``, ``estimate`` and, when present, ``ci_low``, ``ci_high``,
        ``p_value``), e.g. a model result's ``table``.
    estimate : str
        The estimate's column header in words (``"Hazard ratio"``, ``"NPRS points"``).
    digits : int
        Decimals of the estimate and interval.
    alpha : float
        The level the interval was computed at (for its header).

    Examples
    --------
    >>> rows = pd.DataFrame({"term": ["ilr_1"], "estimate": [-0.1234], "ci_low": [-0.2],
    ...                      "ci_high": [-0.05], "p_value": [0.0004]})
    >>> terms_table(rows).to_dict("records")
    [{'Term': 'core strengthening vs the rest (ilr 1)', 'Estimate': -0.123, '95% CI': '-0.200 to -0.050', 'p': '< 0.001'}]
    """  # noqa: E501
    from ptanalytics.plotting import term_labels

    out = pd.DataFrame({"Term": term_labels(table["term"])})
    out[estimate] = table["estimate"].astype(float).round(digits).to_numpy()
    if {"ci_low", "ci_high"} <= set(table.columns):
        level = f"{100 * (1 - alpha):g}% CI"
        out[level] = [
            "" if pd.isna(lo) or pd.isna(hi) else f"{lo:.{digits}f} to {hi:.{digits}f}"
            for lo, hi in zip(table["ci_low"], table["ci_high"], strict=True)
        ]
    if "p_value" in table.columns:
        out["p"] = [format_p(p) for p in table["p_value"]]
    return out
