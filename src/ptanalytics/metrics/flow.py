"""The participant flow (a CONSORT-style diagram): who reached each step of the program.

Every patient enrolled goes down one chain of steps and leaves it at the first step they did not
reach; every box is the sum of its children (``docs/metrics.md`` › *Participant flow*):

1. **Enrolled**: every row of ``patients``.
2. **Started the program**: at least one session on or after enrolment (``last_active_week`` of
   :func:`~ptanalytics.metrics.summary.patient_summary` is set). Else *did not start*.
3. **Completed the guided phase**: started and not a dropout before the end of the guided phase:
   no dropout, or a ``dropout_week`` at or after the guided phase's last week
   (``guided_weeks_actual``, else the planned ``guided_weeks``; a patient with neither completes
   it unless a dropout). Else *stopped before the end of the guided phase*.
4. **Assessed at the end of the guided phase**: of those, a score of the instrument (NPRS by
   default) at that timepoint (:mod:`ptanalytics.metrics.timepoints`). Else *not assessed*.
5. **Assessed at follow-up**: of those, a score at follow-up. Else *not assessed at follow-up*.

The chain counts the patients who remain at every step (a patient who stopped early but came to
the follow-up assessment is counted where they left). One box outside the chain,
``followup_any``, counts every patient with a follow-up score, whatever step they left at (the
patients an analysis of observed follow-up scores uses).

**Steps a cohort does not record** have ``n`` missing (``<NA>``), not 0, and no exit box: the two
program steps of a cohort without sessions (an outcomes-only export), and the end of the guided
phase when no patient has a score there (a design without that assessment, or a program without a
maintenance phase, whose end-of-guided assessment is its follow-up). The next step then counts
from the last recorded one.

**Reasons.** When the ``patients`` table has a status column (``status``, an extra patient
attribute mapped at ingest, e.g. "Completed", "Lost to follow-up", "Withdrawn"), every exit box is
split by its values (a patient without a status: "no status recorded"); otherwise an exit box
states the rule that put the patient there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptanalytics._checks import check_option
from ptanalytics.cohort.container import Cohort
from ptanalytics.privacy.suppression import (
    MIN_CELL,
    PRIMARY,
    SECONDARY,
    complementary_suppression,
)

__all__ = ["ANY_FOLLOWUP", "STATUS_COLUMN", "flow_membership", "participant_flow", "suppress_flow"]

#: The patients column whose values give the reasons of the exit boxes when present.
STATUS_COLUMN = "status"
#: Reason of a patient without a status, when the cohort has a status column.
NO_STATUS = "no status recorded"
#: The label of the box outside the chain: every patient with a follow-up score.
ANY_FOLLOWUP = "With a follow-up score (whatever step they left at)"

# (box, label, exit box, exit label, the rule's reason) per step, in order.
_STEPS = (
    ("started", "Started the program", "not_started", "Did not start", "no session recorded"),
    (
        "completed_guided",
        "Completed the guided phase",
        "left_guided",
        "Stopped before the end of the guided phase",
        "a dropout by the patient summary's rule",
    ),
    (
        "assessed_end_guided",
        "Assessed at the end of the guided phase",
        "missed_end_guided",
        "Not assessed at the end of the guided phase",
        "no score in the timepoint's window",
    ),
    (
        "assessed_followup",
        "Assessed at follow-up",
        "missed_followup",
        "Not assessed at follow-up",
        "no score in the timepoint's window",
    ),
)


def _step_flags(summary: pd.DataFrame, instrument: str) -> dict[str, np.ndarray | None]:
    """Per step, who passes it given they reached it (None: the cohort does not record it)."""
    flags: dict[str, np.ndarray | None] = {"started": None, "completed_guided": None}
    if "last_active_week" in summary and "dropout" in summary:
        flags["started"] = summary["last_active_week"].notna().to_numpy()
        end = pd.Series(pd.NA, index=summary.index, dtype="Float64")
        for col in ("guided_weeks_actual", "guided_weeks"):
            if col in summary:
                end = end.fillna(pd.to_numeric(summary[col], errors="coerce").astype("Float64"))
        dweek = summary["dropout_week"].astype("Float64")
        stayed = ~summary["dropout"].fillna(False).astype(bool) | (dweek >= end).fillna(
            end.isna()  # no guided length known: only a dropout leaves
        )
        flags["completed_guided"] = stayed.to_numpy(dtype=bool)
    inst = instrument.lower()
    end_guided = summary[f"{inst}_end_guided"].notna().to_numpy()
    flags["assessed_end_guided"] = end_guided if end_guided.any() else None
    flags["assessed_followup"] = summary[f"{inst}_followup"].notna().to_numpy()
    return flags


def _reasons(cohort: Cohort, summary: pd.DataFrame, status: str | None) -> pd.Series | None:
    """Each patient's status text (in ``summary`` order), or None without a status column."""
    pts = cohort.patients
    if status is None or status not in pts:
        return None
    values = pts.set_index(pts["patient_id"].astype("string"))[status]
    text = values.astype("string").str.strip().replace("", pd.NA).fillna(NO_STATUS)
    return (
        text.reindex(summary["patient_id"].astype("string"))
        .fillna(NO_STATUS)
        .reset_index(drop=True)
    )


def flow_membership(
    cohort: Cohort,
    *,
    summary: pd.DataFrame | None = None,
    instrument: str = "NPRS",
    status: str | None = STATUS_COLUMN,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The flow's boxes and which patients each counts (for linked suppression).

    Parameters are those of :func:`participant_flow`.

    Returns
    -------
    (DataFrame, DataFrame)
        The boxes (as :func:`participant_flow`) and the membership: ``patient_id`` and one
        boolean column per recorded box (True for the patients it counts).
    """
    from ptanalytics.metrics.summary import patient_summary

    check_option("instrument", instrument, ("NPRS", "ODI"))
    summary = patient_summary(cohort) if summary is None else summary
    summary = summary.reset_index(drop=True)
    flags = _step_flags(summary, instrument)
    reasons = _reasons(cohort, summary, status)
    here = np.ones(len(summary), dtype=bool)
    members = {"enrolled": here}
    rows = [_row("enrolled", None, "Enrolled", 0, "step")]
    last = "enrolled"
    for stage, (box, label, out, out_label, rule) in enumerate(_STEPS, start=1):
        passed = flags[box]
        if passed is None:
            rows.append(_row(box, last, f"{label}: not recorded", stage, "step", recorded=False))
            continue
        left = here & ~passed
        here = here & passed
        rows.append(
            _row(out, last, out_label, stage, "exit", None if reasons is not None else rule)
        )
        members[out] = left
        if reasons is not None:
            for reason in sorted(reasons[left].unique()):
                rows.append(_row(f"{out}/{reason}", out, reason, stage, "reason", reason))
                members[f"{out}/{reason}"] = left & (reasons == reason).to_numpy()
        rows.append(_row(box, last, label, stage, "step"))
        members[box] = here
        last = box
    # Outside the chain: everyone with a follow-up score, whatever step they left at.
    rows.append(_row("followup_any", None, ANY_FOLLOWUP, len(_STEPS) + 1, "summary"))
    members["followup_any"] = flags["assessed_followup"]
    boxes = pd.DataFrame(rows)
    membership = pd.DataFrame(members)
    n = boxes["box"].map(membership.sum()).astype("Int64")
    boxes["n"] = n.where(boxes["recorded"], pd.NA)
    order = ["box", "parent", "label", "n", "reason", "stage", "kind"]
    membership.insert(0, "patient_id", summary["patient_id"].astype("string"))
    return boxes[order], membership


def _row(box, parent, label, stage, kind, reason=None, *, recorded: bool = True) -> dict:
    return {
        "box": box,
        "parent": parent,
        "label": label,
        "reason": reason,
        "stage": stage,
        "kind": kind,
        "recorded": recorded,
    }


def participant_flow(
    cohort: Cohort,
    *,
    summary: pd.DataFrame | None = None,
    instrument: str = "NPRS",
    status: str | None = STATUS_COLUMN,
) -> pd.DataFrame:
    """The participant flow: enrolled → started → completed the guided phase → assessed at the
    end of the guided phase → assessed at follow-up, with the exits at every step.

    Parameters
    ----------
    cohort : Cohort
        A validated cohort.
    summary : DataFrame, optional
        Its :func:`~ptanalytics.metrics.summary.patient_summary` (computed when not given; pass
        it to use other dropout rules or timepoint windows).
    instrument : {"NPRS", "ODI"}
        Whose score makes a patient assessed at a timepoint.
    status : str or None
        The patients column holding each patient's status (its values are the exits' reasons);
        ignored when the cohort has no such column; None never reads one.

    Returns
    -------
    pandas.DataFrame
        One row per box, by stage (an exit and its reasons before the step its patients did
        not reach):

        - ``box`` (str): the box's id (``enrolled``, ``started``, ``not_started``,
          ``completed_guided``, ``left_guided``, ``assessed_end_guided``, ``missed_end_guided``,
          ``assessed_followup``, ``missed_followup``; a reason box is ``<exit>/<reason>``).
        - ``parent`` (str or None): the box it is part of (None for ``enrolled``).
        - ``label`` (str): the box in plain words.
        - ``n`` (Int64): patients in the box; missing (not 0) for a step the cohort does not
          record. Every box's ``n`` is the sum of its children's.
        - ``reason`` (str or None): for an exit box, the rule that put patients there (without a
          status column); for a reason box, the status value.
        - ``stage`` (int): 0 (enrolled) to 4 (follow-up); an exit has the stage of the step its
          patients did not reach; 5 for ``followup_any``.
        - ``kind`` (str): ``step``, ``exit``, ``reason`` or ``summary`` (``followup_any``: every
          patient with a follow-up score, outside the chain, with no parent and no children).

    Examples
    --------
    >>> import ptanalytics as pt
    >>> from ptanalytics.metrics.flow import participant_flow
    >>> flow = participant_flow(pt.simulate_cohort(50, seed=1))
    >>> int(flow.loc[flow["box"] == "enrolled", "n"].iloc[0])
    50
    """
    return flow_membership(cohort, summary=summary, instrument=instrument, status=status)[0]


def suppress_flow(
    flow: pd.DataFrame,
    membership: pd.DataFrame,
    *,
    min_cell: int = MIN_CELL,
    keep=("enrolled",),
) -> pd.DataFrame:
    """The flow with a ``shown`` column: each box's count as it may be published.

    Counts from 1 to ``min_cell - 1`` show as ``"<min_cell"``; further boxes show as
    ``"suppressed"`` wherever a hidden count could be derived from a parent minus its siblings
    (:func:`~ptanalytics.privacy.complementary_suppression` over the patients each box counts);
    a step not recorded shows ``"not recorded"``. ``keep``: boxes published elsewhere anyway
    (the enrolled total), never chosen to hide another.
    """
    recorded = flow[flow["n"].notna()]
    cells = {b: membership[b].to_numpy() for b in recorded["box"]}
    fate = complementary_suppression(cells, min_cell=min_cell, keep=[k for k in keep if k in cells])
    out = flow.copy()
    out["shown"] = [
        _shown(n, fate.get(b), min_cell) for b, n in zip(flow["box"], flow["n"], strict=True)
    ]
    return out


def _shown(n, fate, min_cell: int) -> str:
    if pd.isna(n):
        return "not recorded"
    if fate == PRIMARY:
        return f"<{min_cell}"
    if fate == SECONDARY:
        return "suppressed"
    return f"{int(n):,}"
