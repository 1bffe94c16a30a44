"""Timepoints, defined once: baseline, end of the guided phase and follow-up.

Every part of ptanalytics that speaks of a patient's baseline, end-of-guided-phase or follow-up
score (Table 1, ``ptanalytics summary``, :func:`ptanalytics.patient_summary`, responders, the
models and the report) takes it from :func:`assessment_timepoints` here.

**Targets** (days since enrolment, per patient):

* ``baseline``: day 0, the enrolment day.
* ``end_guided``: the day after the patient's last guided prescription day (the guided phase as it
  was actually prescribed, after any extension or shortening); else ``7 x patients.guided_weeks``
  (the planned length); else ``7 x schedule.end_guided_weeks`` of ``cohort.json``; else none.
* ``followup``: ``7 x patients.followup_weeks``; else ``7 x schedule.followup_weeks`` of
  ``cohort.json``; else the end of the patient's prescriptions (rounded up to whole weeks); else,
  for a cohort without prescriptions, the study's schedule *inferred* from the assessments: the
  most common week of an assessment after the baseline window (the earliest such week on ties),
  the same for every patient. Which source was used is reported (column ``target_source``).

**Windows**: an assessment counts for a timepoint when it lies within ``window_days`` of the
target (default 7 days either side; a dict gives each timepoint its own tolerance).

**Choosing and ties**:

1. *One assessment serves at most one timepoint.* An assessment inside several windows goes to
   the timepoint whose target is nearest; on equal distance to the timepoint first in the order
   ``baseline``, ``followup``, ``end_guided`` (follow-up, the usual primary timepoint, before the
   end of the guided phase). When the end of the guided phase and the follow-up fall on the same
   day (a program without maintenance), the assessment is the follow-up and the end-of-guided
   score is missing.
2. Within its window a timepoint takes the assessment nearest the target; on equal distance the
   earlier one. Several scores of one instrument on the same day are averaged.
3. *No window, no value*: a patient with nothing in a window is missing there, never given another
   timepoint's score.

Nothing here reads or prints calendar dates or identifiers beyond ``patient_id``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ptanalytics._checks import check_number
from ptanalytics.cohort.container import Cohort
from ptanalytics.exceptions import ConfigError

__all__ = [
    "TIMEPOINTS",
    "TIMEPOINT_LABELS",
    "assessment_timepoints",
    "canonical_instrument",
    "timepoint_counts",
    "timepoint_scores",
    "timepoint_targets",
]

TIMEPOINTS = ("baseline", "end_guided", "followup")
TIMEPOINT_LABELS = {
    "baseline": "baseline",
    "end_guided": "end of guided phase",
    "followup": "follow-up",
}
# Tie order when one assessment is equally near two targets (see the module docstring).
_PRIORITY = {"baseline": 0, "followup": 1, "end_guided": 2}
DEFAULT_WINDOW_DAYS = 7


def canonical_instrument(name, *, available=None) -> str:
    """The instrument's canonical (upper-case) name, whatever case or spaces the user typed.

    ``available`` (optional): the instruments a cohort has; a name not among them is an error that
    lists them.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"instrument={name!r}; allowed: an instrument name such as 'NPRS'.")
    canon = name.strip().upper()
    if available is not None:
        known = sorted({str(a).strip().upper() for a in available})
        if canon not in known:
            raise ConfigError(
                f"instrument={name!r} is not in this cohort; allowed: {', '.join(known) or 'none'}."
            )
    return canon


def _windows(window_days) -> dict[str, float]:
    if isinstance(window_days, Mapping):
        unknown = set(window_days) - set(TIMEPOINTS)
        if unknown:
            raise ConfigError(
                f"window_days has unknown timepoint(s) {sorted(unknown)}; allowed keys: "
                f"{', '.join(TIMEPOINTS)}."
            )
        out = {tp: window_days.get(tp, DEFAULT_WINDOW_DAYS) for tp in TIMEPOINTS}
    else:
        out = dict.fromkeys(TIMEPOINTS, window_days)
    return {
        tp: check_number(f"window_days[{tp!r}]", v, low=0, what="a number of days >= 0")
        for tp, v in out.items()
    }


def _week_override(value, name: str):
    return check_number(name, value, low=0, allow_none=True, what="a number of weeks >= 0")


def _days_since_enrolment(frame: pd.DataFrame, column: str, enrolled: pd.Series) -> np.ndarray:
    start = frame["patient_id"].astype("string").map(enrolled)
    dates = pd.to_datetime(frame[column]).astype("datetime64[s]")
    return ((dates - start.astype("datetime64[s]")).dt.days).to_numpy(dtype=float, na_value=np.nan)


def _schedule(cohort: Cohort) -> dict:
    schedule = (cohort.metadata or {}).get("schedule") or {}
    return schedule if isinstance(schedule, dict) else {}


def _column_weeks(pts: pd.DataFrame, column: str) -> np.ndarray:
    if column not in pts:
        return np.full(len(pts), np.nan)
    return pd.to_numeric(pts[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _inferred_followup_day(cohort: Cohort, enrolled: pd.Series, baseline_window: float):
    """The most common week of an assessment after the baseline window (earliest on ties)."""
    out = cohort.outcomes
    if not len(out):
        return None
    day = _days_since_enrolment(out, "assessed_on", enrolled)
    later = day[np.isfinite(day) & (day > baseline_window)]
    if not len(later):
        return None
    weeks, counts = np.unique(np.round(later / 7), return_counts=True)
    return 7.0 * float(weeks[np.argmax(counts)])


def timepoint_targets(
    cohort: Cohort,
    *,
    end_of_guided_week: float | None = None,
    followup_week: float | None = None,
    window_days: int | float | Mapping = DEFAULT_WINDOW_DAYS,
) -> pd.DataFrame:
    """Each patient's target day for every timepoint, and where it came from.

    Parameters
    ----------
    cohort : Cohort
        A validated cohort.
    end_of_guided_week, followup_week : float, optional
        One target week for every patient, overriding the rules of the module docstring.
    window_days : int, float or dict
        Tolerance in days either side of the target (a dict per timepoint). Used here only to
        tell the baseline window from later assessments when the follow-up is inferred.

    Returns
    -------
    pandas.DataFrame
        One row per patient and timepoint (patients in ``patients`` order, then ``TIMEPOINTS``
        order). Columns:

        - ``patient_id`` (str), ``timepoint`` (str).
        - ``target_day`` (float): days since enrolment; missing when the patient has no target.
        - ``target_source`` (str): ``enrolment``, ``prescriptions``, ``patients.guided_weeks``,
          ``patients.followup_weeks``, ``cohort.json schedule``, ``inferred from assessments``,
          ``argument`` or ``none``.
    """
    windows = _windows(window_days)
    end_of_guided_week = _week_override(end_of_guided_week, "end_of_guided_week")
    followup_week = _week_override(followup_week, "followup_week")
    pts = cohort.patients.reset_index(drop=True)
    ids = pts["patient_id"].astype("string")
    n = len(pts)
    enrolled = pd.Series(pd.to_datetime(pts["enrolled_on"]).to_numpy(), index=ids.to_numpy())
    schedule = _schedule(cohort)
    rx = cohort.prescriptions

    # Prescriptions: the day after the last guided day, and the program's end (whole weeks).
    guided_end = np.full(n, np.nan)
    program_end = np.full(n, np.nan)
    if len(rx):
        code = pd.Index(ids).get_indexer(rx["patient_id"].astype("string"))
        end = _days_since_enrolment(rx, "end_on", enrolled) + 1
        ok = code >= 0
        frame = pd.DataFrame({"c": code[ok], "end": end[ok], "p": rx["phase"].to_numpy()[ok]})
        last = frame.groupby("c")["end"].max()
        program_end[last.index.to_numpy()] = 7 * np.ceil(last.to_numpy() / 7)
        guided = frame[frame["p"] == "guided"].groupby("c")["end"].max()
        guided_end[guided.index.to_numpy()] = guided.to_numpy()

    def pick(candidates) -> tuple[np.ndarray, np.ndarray]:
        value = np.full(n, np.nan)
        source = np.full(n, "none", dtype=object)
        for days, name in candidates:
            days = np.broadcast_to(np.asarray(days, dtype=float), (n,))
            take = np.isnan(value) & np.isfinite(days)
            value[take] = days[take]
            source[take] = name
        return value, source

    def sched(key: str) -> float:
        weeks = schedule.get(key)
        if isinstance(weeks, int | float) and not isinstance(weeks, bool) and weeks >= 0:
            return 7.0 * weeks
        return np.nan

    if end_of_guided_week is not None:
        eg = pick([(7 * end_of_guided_week, "argument")])
    else:
        eg = pick(
            [
                (guided_end, "prescriptions"),
                (7 * _column_weeks(pts, "guided_weeks"), "patients.guided_weeks"),
                (sched("end_guided_weeks"), "cohort.json schedule"),
            ]
        )
    if followup_week is not None:
        fu = pick([(7 * followup_week, "argument")])
    else:
        candidates = [
            (7 * _column_weeks(pts, "followup_weeks"), "patients.followup_weeks"),
            (sched("followup_weeks"), "cohort.json schedule"),
            (program_end, "prescriptions"),
        ]
        inferred = None
        if not len(rx):
            inferred = _inferred_followup_day(cohort, enrolled, windows["baseline"])
        if inferred is not None:
            candidates.append((inferred, "inferred from assessments"))
        fu = pick(candidates)
    base = (np.zeros(n), np.full(n, "enrolment", dtype=object))
    parts = {"baseline": base, "end_guided": eg, "followup": fu}
    return pd.DataFrame(
        {
            "patient_id": pd.array(np.repeat(ids.to_numpy(), len(TIMEPOINTS)), dtype="string"),
            "timepoint": np.tile(np.array(TIMEPOINTS, dtype=object), n),
            "target_day": np.column_stack([parts[tp][0] for tp in TIMEPOINTS]).ravel(),
            "target_source": np.column_stack([parts[tp][1] for tp in TIMEPOINTS]).ravel(),
        }
    )


def assessment_timepoints(
    cohort: Cohort,
    *,
    instruments=None,
    window_days: int | float | Mapping = DEFAULT_WINDOW_DAYS,
    end_of_guided_week: float | None = None,
    followup_week: float | None = None,
) -> pd.DataFrame:
    """Each patient's score at each timepoint, by the rules of the module docstring.

    Parameters
    ----------
    cohort : Cohort
        A validated cohort.
    instruments : str or sequence of str, optional
        Instruments to take (any case: ``"nprs"`` is ``NPRS``); default every instrument in
        ``cohort.outcomes``.
    window_days : int, float or dict
        Tolerance in days either side of each target (a dict per timepoint).
    end_of_guided_week, followup_week : float, optional
        One target week for all patients (see :func:`timepoint_targets`).

    Returns
    -------
    pandas.DataFrame
        One row per patient, instrument and timepoint (every patient, observed or not). Columns:

        - ``patient_id`` (str), ``instrument`` (str, canonical), ``timepoint`` (str).
        - ``target_day`` (float), ``target_source`` (str): as in :func:`timepoint_targets`.
        - ``day`` (float): days since enrolment of the assessment used; missing when none.
        - ``score`` (float): the score (the mean of same-day scores); missing when none.
        - ``observed`` (bool): a score was found in the window.
    """
    windows = _windows(window_days)
    targets = timepoint_targets(
        cohort,
        end_of_guided_week=end_of_guided_week,
        followup_week=followup_week,
        window_days=window_days,
    )
    out = cohort.outcomes
    present = out["instrument"].astype("string").str.strip().str.upper()
    if instruments is None:
        wanted = sorted(present.dropna().unique())
    else:
        if isinstance(instruments, str):
            instruments = [instruments]
        wanted = list(dict.fromkeys(canonical_instrument(i) for i in instruments))
    pts = cohort.patients.reset_index(drop=True)
    ids = pd.Index(pts["patient_id"].astype("string"))
    n, k = len(ids), len(TIMEPOINTS)
    target = targets["target_day"].to_numpy(dtype=float).reshape(n, k)
    enrolled = pd.Series(pd.to_datetime(pts["enrolled_on"]).to_numpy(), index=ids.to_numpy())
    tol = np.array([windows[tp] for tp in TIMEPOINTS])
    prio = np.array([_PRIORITY[tp] for tp in TIMEPOINTS])
    frames = []
    for inst in wanted:
        sub = out[(present == inst).to_numpy(dtype=bool, na_value=False)]
        code = ids.get_indexer(sub["patient_id"].astype("string"))
        day = _days_since_enrolment(sub, "assessed_on", enrolled)
        score = pd.to_numeric(sub["score"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        ok = (code >= 0) & np.isfinite(day) & np.isfinite(score)
        code, day, score = code[ok], day[ok], score[ok]
        dist = np.abs(day[:, None] - target[code])  # (assessments, timepoints)
        inside = np.isfinite(dist) & (dist <= tol[None, :])
        # Nearest target first, then the tie order; outside every window: no timepoint.
        key = np.where(inside, dist * (len(prio) + 1) + prio[None, :], np.inf)
        tp = np.argmin(key, axis=1) if len(key) else np.zeros(0, dtype=np.int64)
        used = np.isfinite(key[np.arange(len(key)), tp]) if len(key) else np.zeros(0, bool)
        chosen = pd.DataFrame(
            {
                "c": code[used],
                "t": tp[used],
                "d": day[used],
                "dist": dist[np.arange(len(dist))[used], tp[used]],
                "s": score[used],
            }
        )
        chosen = chosen.groupby(["c", "t", "d"], as_index=False).agg(
            dist=("dist", "first"), s=("s", "mean")
        )
        best = chosen.sort_values(["c", "t", "dist", "d"], kind="stable").drop_duplicates(
            ["c", "t"]
        )
        cell = best["c"].to_numpy() * k + best["t"].to_numpy()
        d_out = np.full(n * k, np.nan)
        s_out = np.full(n * k, np.nan)
        d_out[cell] = best["d"].to_numpy()
        s_out[cell] = best["s"].to_numpy()
        frames.append(
            targets.assign(instrument=inst, day=d_out, score=s_out, observed=np.isfinite(s_out))
        )
    columns = [
        "patient_id",
        "instrument",
        "timepoint",
        "target_day",
        "target_source",
        "day",
        "score",
        "observed",
    ]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.concat(frames, ignore_index=True)[columns]


def timepoint_scores(
    cohort: Cohort,
    *,
    instruments=("NPRS", "ODI"),
    window_days: int | float | Mapping = DEFAULT_WINDOW_DAYS,
    end_of_guided_week: float | None = None,
    followup_week: float | None = None,
) -> pd.DataFrame:
    """One row per patient: ``<instrument>_<timepoint>`` scores (lower-case instrument).

    Returns
    -------
    pandas.DataFrame
        ``patient_id`` (in ``patients`` order), then for each instrument and timepoint a float
        column such as ``nprs_baseline``, ``nprs_end_guided``, ``nprs_followup`` (missing when
        there is no assessment in the window), then ``target_day_end_guided`` and
        ``target_day_followup`` (float, days since enrolment).
    """
    long = assessment_timepoints(
        cohort,
        instruments=instruments,
        window_days=window_days,
        end_of_guided_week=end_of_guided_week,
        followup_week=followup_week,
    )
    ids = cohort.patients["patient_id"].astype("string").reset_index(drop=True)
    out = pd.DataFrame({"patient_id": ids})
    k = len(TIMEPOINTS)
    wanted = [
        canonical_instrument(i)
        for i in ([instruments] if isinstance(instruments, str) else instruments)
    ]
    for inst in wanted:
        part = long[long["instrument"] == inst]
        values = (
            part["score"].to_numpy(dtype=float).reshape(len(ids), k)
            if len(part)
            else np.full((len(ids), k), np.nan)
        )
        for j, tp in enumerate(TIMEPOINTS):
            out[f"{inst.lower()}_{tp}"] = values[:, j]
    # Every wanted instrument has a row per patient and timepoint, with the same targets.
    if len(long):
        days = long["target_day"].to_numpy(dtype=float)[: len(ids) * k].reshape(len(ids), k)
    else:
        targets = timepoint_targets(
            cohort,
            end_of_guided_week=end_of_guided_week,
            followup_week=followup_week,
            window_days=window_days,
        )
        days = targets["target_day"].to_numpy(dtype=float).reshape(len(ids), k)
    out["target_day_end_guided"] = days[:, TIMEPOINTS.index("end_guided")]
    out["target_day_followup"] = days[:, TIMEPOINTS.index("followup")]
    return out


def timepoint_counts(assessments: pd.DataFrame, *, by: str | None = None) -> pd.DataFrame:
    """Patients observed and missing at each timepoint (from :func:`assessment_timepoints`).

    Parameters
    ----------
    assessments : pandas.DataFrame
        From :func:`assessment_timepoints`; with ``by``, a column of it (merge a patient
        attribute such as ``arm`` onto it first).
    by : str, optional
        A grouping column.

    Returns
    -------
    pandas.DataFrame
        One row per instrument, timepoint (``TIMEPOINTS`` order) and group: ``instrument``,
        ``timepoint`` (its label, e.g. "end of guided phase"), [``by``], ``patients``,
        ``with_target`` (patients with a target day), ``observed`` and ``missing``
        (``patients - observed``), all int.
    """
    need = ["instrument", "timepoint", "target_day", "observed"] + ([by] if by else [])
    missing = [c for c in need if c not in assessments]
    if missing:
        raise ConfigError(
            f"assessments lacks column(s) {missing}; allowed: the frame from "
            "ptanalytics.metrics.timepoints.assessment_timepoints (with the by column merged on)."
        )
    frame = assessments.assign(
        _order=assessments["timepoint"].map({tp: i for i, tp in enumerate(TIMEPOINTS)}),
        _target=assessments["target_day"].notna(),
        _obs=assessments["observed"].astype(bool),
    )
    keys = ["instrument", "_order", "timepoint", *([by] if by else [])]
    table = (
        frame.groupby(keys, observed=True, sort=True, dropna=False)
        .agg(patients=("_obs", "size"), with_target=("_target", "sum"), observed=("_obs", "sum"))
        .reset_index()
        .drop(columns="_order")
    )
    table["missing"] = table["patients"] - table["observed"]
    table["timepoint"] = table["timepoint"].map(TIMEPOINT_LABELS)
    for col in ("patients", "with_target", "observed", "missing"):
        table[col] = table[col].astype(np.int64)
    return table
