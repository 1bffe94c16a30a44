"""The patient-week frame (:func:`patient_weeks`): one row per patient and week since enrolment.

Both analysis frames are read from one dense patient x week grid (:func:`week_grid`: sessions
prescribed and completed, phase, minutes by category, weekly NPRS) and one dropout rule
(:func:`grid_dropout`); :mod:`ptanalytics.metrics.summary` sums the same grid per patient.

Definitions (all in ``docs/metrics.md``; each can be changed by an argument):

* **Week** *w* of a patient covers days ``7w`` to ``7w + 6`` after enrolment (week 0 starts on the
  enrolment day). Weeks run to the planned follow-up: ``patients.followup_weeks`` when present,
  else the end of the last prescription. Week ``H`` (the follow-up week itself) is included so that
  the final assessment has a row; nothing is prescribed in it.
* **Session**: a day with at least ``min_exercises`` exercises logged (default 1).
* **Prescribed sessions** in a week: for each phase, the prescription's ``sessions_per_week`` times
  the share of the week's days it covers (so a prescription starting mid-week counts in part);
  the exercises of one phase share their sessions (the largest ``sessions_per_week`` counts).
  **Prescribed sets**: the sum over exercises of ``sets x sessions``; a logged exercise without
  ``sets`` counts as one set.
* **Phase** of a week: the phase whose prescriptions cover most of its days (``none`` when none).
* **Adherence** = completed / prescribed sessions (``adherence``, uncapped, and
  ``adherence_capped`` at 1); undefined (missing) when nothing was prescribed.
* **Dropout** (rule ``inactivity``, default): no session during the last ``inactivity_days`` (14)
  or more days before the planned end of the program; the dropout week is the week after the last
  week with a session (week 0 when there was none). Rule ``missed_supervised``: ``missed_sessions``
  (4) consecutive prescribed supervised sessions missed, counted week by week (a week with any
  supervised session ends a run; the run's first week is the dropout week).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ptanalytics._checks import check_number, check_option
from ptanalytics.cohort.catalogue import CATEGORIES
from ptanalytics.cohort.container import Cohort
from ptanalytics.cohort.schema import PHASES
from ptanalytics.exceptions import ConfigError
from ptanalytics.vocab import MINUTES_COLUMNS, PHASE_LABELS, SHARE_COLUMNS

__all__ = ["INACTIVITY_DAYS", "MISSED_SESSIONS", "WeekGrid", "patient_weeks", "week_grid"]

#: Days without a session before the planned end that make a patient a dropout (rule
#: ``inactivity``), the default of :func:`patient_weeks` and
#: :func:`~ptanalytics.metrics.summary.patient_summary`.
INACTIVITY_DAYS = 14
#: Missed supervised sessions in a row that make a patient a dropout (rule ``missed_supervised``).
MISSED_SESSIONS = 4

_PHASE_LABELS = list(PHASE_LABELS)
_MINUTES, _SHARES = list(MINUTES_COLUMNS), list(SHARE_COLUMNS)


@dataclass
class WeekGrid:
    """Dense patient x week arrays (N patients, W = max weeks + 1)."""

    ids: pd.Series
    enrolled: np.ndarray  # datetime64[D]
    horizon: np.ndarray  # H per patient (weeks); rows are weeks 0..H
    has_program: bool
    prescribed: np.ndarray | None = None  # (N, W) sessions prescribed
    supervised_prescribed: np.ndarray | None = None
    sets_prescribed: np.ndarray | None = None
    phase: np.ndarray | None = None  # (N, W) int codes into _PHASE_LABELS
    completed: np.ndarray | None = None
    supervised: np.ndarray | None = None
    sets_completed: np.ndarray | None = None
    minutes: np.ndarray | None = None  # (N, W, 5)
    last_day: np.ndarray | None = None  # last session day, -1 when none
    planned_end: np.ndarray | None = None  # last prescribed day
    guided_end: np.ndarray | None = None  # day after the last guided day, -1 when none
    nprs: np.ndarray | None = None  # (N, W) mean NPRS, NaN when none
    min_exercises: int = 1  # exercises a day needs to be a session (as built)
    rows: tuple = ()  # rows of the cohort's tables it was built from (checked on reuse)


def _days(dates: pd.Series, codes: np.ndarray, enrolled: np.ndarray) -> np.ndarray:
    return (dates.to_numpy().astype("datetime64[D]") - enrolled[codes]).astype(np.int64)


def _codes(ids: pd.Series, frame: pd.DataFrame) -> np.ndarray:
    """Row positions in ``patients`` of each record's patient (hash lookup in Arrow, no objects)."""
    values = pa.array(frame["patient_id"].astype("string").array, type=pa.large_string())
    lookup = pa.array(ids.array, type=pa.large_string())
    codes = pc.index_in(values, value_set=lookup).fill_null(-1).to_numpy(zero_copy_only=False)
    if (codes < 0).any():
        raise ConfigError(
            "records of patients missing from the patients table; validate the cohort first "
            "('ptanalytics validate')."
        )
    return codes.astype(np.int64)


def _category_codes(values: pd.Series, labels) -> np.ndarray:
    """Codes of ``values`` in ``labels`` (-1 for anything else)."""
    return pd.Categorical(values, categories=list(labels)).codes.astype(np.int64)


def week_grid(cohort: Cohort, min_exercises: int = 1) -> WeekGrid:
    """The cohort as dense patient x week arrays (the one source of both analysis frames).

    :func:`patient_weeks`, :func:`~ptanalytics.metrics.summary.patient_summary` and
    :func:`~ptanalytics.models.trajectory.pain_model_frame` each build it; a caller that needs
    several of them for one cohort (the report) builds it once and passes it as ``grid=``.
    """
    pts = cohort.patients.reset_index(drop=True)
    ids = pts["patient_id"].astype("string")
    if not ids.is_unique:
        raise ConfigError("patients.patient_id has duplicates; validate the cohort first.")
    enrolled = pts["enrolled_on"].to_numpy().astype("datetime64[D]")
    n = len(pts)
    rx, ss = cohort.prescriptions, cohort.sessions
    has_program = len(rx) > 0 or len(ss) > 0
    # -1: not given; then from the prescriptions, else the last assessment (below).
    horizon = np.full(n, -1, dtype=np.int64)
    if "followup_weeks" in pts:
        horizon = pts["followup_weeks"].fillna(-1).to_numpy(dtype=np.int64)
    planned_end = np.full(n, -1, dtype=np.int64)
    if len(rx):
        rc = _codes(ids, rx)
        end = _days(rx["end_on"], rc, enrolled)
        np.maximum.at(planned_end, rc, end)
        horizon = np.where(horizon < 0, -(-(planned_end + 1) // 7), horizon)
    out = cohort.outcomes
    if len(out):
        oc = _codes(ids, out)
        last = np.full(n, -1, dtype=np.int64)
        np.maximum.at(last, oc, _days(out["assessed_on"], oc, enrolled) // 7)
        horizon = np.where(horizon < 0, last, horizon)
    horizon = np.maximum(horizon, 0)
    planned_end = np.where(planned_end < 0, 7 * horizon - 1, planned_end)
    width = int(horizon.max()) + 1 if n else 1
    g = WeekGrid(
        ids,
        enrolled,
        horizon,
        has_program,
        planned_end=planned_end,
        min_exercises=min_exercises,
        rows=_table_rows(cohort),
    )
    if has_program:
        _prescribed(g, rx, n, width)
        _completed(g, ss, n, width, min_exercises)
    g.nprs = _weekly_score(out, "NPRS", ids, enrolled, n, width)
    return g


def _prescribed(g: WeekGrid, rx: pd.DataFrame, n: int, width: int) -> None:
    g.prescribed = np.zeros((n, width))
    g.supervised_prescribed = np.zeros((n, width))
    g.sets_prescribed = np.zeros((n, width))
    cover = np.zeros((len(_PHASE_LABELS), n, width))
    g.guided_end = np.full(n, -1, dtype=np.int64)
    if not len(rx):
        g.phase = np.full((n, width), _PHASE_LABELS.index("none"))
        return
    codes = _codes(g.ids, rx)
    start = np.maximum(_days(rx["start_on"], codes, g.enrolled), 0)
    end = _days(rx["end_on"], codes, g.enrolled)
    phase = _category_codes(rx["phase"], PHASES)
    spw = rx["sessions_per_week"].astype("float64").fillna(0).to_numpy()
    sup = (
        rx["supervised_per_week"].astype("float64").fillna(0).to_numpy()
        if "supervised_per_week" in rx
        else np.zeros(len(rx))
    )
    sets = rx["sets"].astype("float64").fillna(1).to_numpy() if "sets" in rx else np.ones(len(rx))
    is_guided = phase == 0
    np.maximum.at(g.guided_end, codes[is_guided], end[is_guided] + 1)
    # One window per patient, phase and period: the largest sessions_per_week, summed sets.
    win = pd.DataFrame(
        {"c": codes, "p": phase, "s": start, "e": end, "spw": spw, "sup": sup, "sets": sets * spw}
    )
    win = (
        win.groupby(["c", "p", "s", "e"], sort=False)
        .agg(spw=("spw", "max"), sup=("sup", "max"), sets=("sets", "sum"))
        .reset_index()
    )
    for w in range(width):
        lo, hi = 7 * w, 7 * w + 6
        days = np.clip(
            np.minimum(win["e"].to_numpy(), hi) - np.maximum(win["s"].to_numpy(), lo) + 1, 0, 7
        )
        frac = days / 7
        c, p = win["c"].to_numpy(), win["p"].to_numpy()
        np.add.at(g.prescribed[:, w], c, win["spw"].to_numpy() * frac)
        np.add.at(g.supervised_prescribed[:, w], c, win["sup"].to_numpy() * frac)
        np.add.at(g.sets_prescribed[:, w], c, win["sets"].to_numpy() * frac)
        np.add.at(cover[:, :, w], (p, c), days)
    best = cover.argmax(axis=0)
    g.phase = np.where(cover.max(axis=0) > 0, best, _PHASE_LABELS.index("none"))


def _completed(g: WeekGrid, ss: pd.DataFrame, n: int, width: int, min_exercises: int) -> None:
    g.completed = np.zeros((n, width))
    g.supervised = np.zeros((n, width))
    g.sets_completed = np.zeros((n, width))
    g.minutes = np.zeros((n, width, len(CATEGORIES)))
    g.last_day = np.full(n, -1, dtype=np.int64)
    if not len(ss):
        return
    codes = _codes(g.ids, ss)
    day = _days(ss["performed_on"], codes, g.enrolled)
    week = day // 7
    keep = (day >= 0) & (week < width)
    codes, day, week = codes[keep], day[keep], week[keep]

    def column(name: str, fill: float) -> np.ndarray:
        if name not in ss:
            return np.full(int(keep.sum()), fill)
        return ss[name].to_numpy(dtype="float64", na_value=fill)[keep]

    # One array per session row is large (2 x 10^7 rows for 10^5 patients): each is dropped
    # as soon as it has been summed, to keep the peak low.
    cell = codes * width + week
    del week
    size = n * width
    sets = column("sets", 1.0)
    g.sets_completed = np.bincount(cell, weights=sets, minlength=size).reshape(n, width)
    del sets
    minutes = column("duration_min", 0.0)
    cat = _category_codes(ss["category"], CATEGORIES)[keep]
    known = cat >= 0  # an exercise of no catalogue category adds no category's minutes
    k = len(CATEGORIES)
    g.minutes = np.bincount(
        cell[known] * k + cat[known], weights=minutes[known], minlength=size * k
    ).reshape(n, width, k)
    del minutes, cat, known, cell
    # Session days: days with at least min_exercises exercises logged.
    span = int(day.max()) + 1
    key = codes.astype(np.int64) * span + day
    del codes, day
    uniq, inverse, count = _unique_keys(key)
    del key
    sup = ss["supervised"].to_numpy(dtype=bool)[keep]
    any_sup = np.bincount(inverse, weights=sup, minlength=len(uniq)) > 0
    del inverse, sup
    is_session = count >= min_exercises
    sc, sd = (uniq // span)[is_session], (uniq % span)[is_session]
    scell = sc * width + sd // 7
    g.completed = np.bincount(scell, minlength=size).reshape(n, width).astype(float)
    g.supervised = (
        np.bincount(scell[any_sup[is_session]], minlength=size).reshape(n, width).astype(float)
    )
    last = np.flatnonzero(np.diff(sc, append=-1) != 0)  # sorted by patient, then day
    g.last_day[sc[last]] = sd[last]


def _unique_keys(key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(key, return_inverse=True, return_counts=True)``, without the sort when the
    keys are already in order (sessions exported by patient and date): one pass instead."""
    if len(key) and bool(np.all(key[1:] >= key[:-1])):
        new = np.r_[True, key[1:] != key[:-1]]
        starts = np.flatnonzero(new)
        return key[starts], np.cumsum(new) - 1, np.diff(np.r_[starts, len(key)])
    return np.unique(key, return_inverse=True, return_counts=True)


def _weekly_score(out: pd.DataFrame, instrument: str, ids, enrolled, n, width) -> np.ndarray:
    res = np.full((n, width), np.nan)
    sub = out[out["instrument"] == instrument]
    if not len(sub):
        return res
    codes = _codes(ids, sub)
    week = _days(sub["assessed_on"], codes, enrolled) // 7
    ok = (week >= 0) & (week < width)
    cell = codes[ok] * width + week[ok]
    total = np.bincount(cell, weights=sub["score"].to_numpy(dtype=float)[ok], minlength=n * width)
    count = np.bincount(cell, minlength=n * width)
    with np.errstate(invalid="ignore", divide="ignore"):
        res = (total / count).reshape(n, width)
    return res


def _table_rows(cohort: Cohort) -> tuple:
    return tuple(len(t) for t in cohort.tables.values())


#: The columns of :func:`patient_weeks` (with a program; an outcomes-only cohort has the first
#: two and ``nprs``).
WEEK_COLUMNS = (
    "patient_id",
    "week",
    "phase",
    "sessions_prescribed",
    "sessions_completed",
    "adherence",
    "adherence_capped",
    "sets_prescribed",
    "sets_completed",
    "supervised_sessions",
    "home_sessions",
    "minutes_total",
    *_MINUTES,
    *_SHARES,
    "nprs",
    "dropout",
)


def _wanted_columns(columns) -> set | None:
    if columns is None:
        return None
    wanted = {columns} if isinstance(columns, str) else set(columns)
    unknown = sorted(wanted - set(WEEK_COLUMNS))
    if unknown:
        raise ConfigError(
            f"columns={unknown}; allowed: {', '.join(WEEK_COLUMNS)}. Fix: name columns of "
            "patient_weeks, or leave columns out for all of them."
        )
    return wanted


def grid_of(cohort: Cohort, min_exercises: int, grid: WeekGrid | None) -> WeekGrid:
    """``grid`` when given, else a new one. A given grid must be this cohort's at
    ``min_exercises``: the same patients, enrolment dates and table sizes (a cheap check that
    catches another cohort, not an edit of a value in place)."""
    if grid is None:
        return week_grid(cohort, min_exercises)
    if not isinstance(grid, WeekGrid):
        raise ConfigError(
            f"grid is a {type(grid).__name__}; allowed: a WeekGrid from week_grid(cohort)."
        )
    pts = cohort.patients
    same = (
        grid.rows == _table_rows(cohort)
        and bool((grid.ids.to_numpy() == pts["patient_id"].astype("string").to_numpy()).all())
        and bool((grid.enrolled == pts["enrolled_on"].to_numpy().astype("datetime64[D]")).all())
    )
    if not same or grid.min_exercises != min_exercises:
        raise ConfigError(
            "grid was built for another cohort or another min_exercises. Fix: pass "
            f"grid=week_grid(cohort, min_exercises={min_exercises}) of this cohort, or no grid."
        )
    return grid


# ------------------------------------------------------------------------------------ dropout
def grid_dropout(g: WeekGrid, rule: str, inactivity_days: int, missed_sessions: int):
    """Per patient: dropped (bool) and dropout week (-1 when not dropped)."""
    n = len(g.ids)
    if not g.has_program:
        return np.zeros(n, dtype=bool), np.full(n, -1, dtype=np.int64)
    check_option("dropout_rule", rule, ("inactivity", "missed_supervised"))
    if rule == "inactivity":
        gap = g.planned_end - g.last_day
        dropped = gap >= inactivity_days
        week = np.where(g.last_day >= 0, g.last_day // 7 + 1, 0)
        return dropped, np.where(dropped, week, -1)
    # rule == "missed_supervised"
    run = np.zeros(n)
    start = np.full(n, -1, dtype=np.int64)
    found = np.full(n, -1, dtype=np.int64)
    for w in range(g.prescribed.shape[1]):
        due = g.supervised_prescribed[:, w]
        done = g.supervised[:, w]
        missed = np.maximum(due - done, 0)
        broke = done > 0
        start = np.where(broke | (run == 0) & (missed > 0) & (start < 0), -1, start)
        run = np.where(broke, missed, run + missed)
        start = np.where((start < 0) & (run > 0), w, start)
        hit = (found < 0) & (run >= missed_sessions)
        found = np.where(hit, start, found)
    return found >= 0, found


# ------------------------------------------------------------------------------------ weeks
def patient_weeks(
    cohort: Cohort,
    *,
    min_exercises: int = 1,
    dropout_rule: str = "inactivity",
    inactivity_days: int = INACTIVITY_DAYS,
    missed_sessions: int = MISSED_SESSIONS,
    truncate_at_dropout: bool = True,
    grid: WeekGrid | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per patient and week since enrolment, through the follow-up or dropout.

    Parameters
    ----------
    cohort : Cohort
        A validated cohort (``load_cohort``, ``ingest`` or ``simulate_cohort``).
    min_exercises : int
        Exercises logged on a day for it to count as a session.
    dropout_rule : {"inactivity", "missed_supervised"}
        How dropout is recognised (see the module docstring).
    inactivity_days, missed_sessions : int
        Parameters of the two rules.
    truncate_at_dropout : bool
        Stop each dropout's rows at the dropout week (default); ``False`` keeps every week.
    grid : WeekGrid, optional
        ``week_grid(cohort, min_exercises)`` of this cohort, when the caller already built it
        (the same frame, without building the grid again).
    columns : sequence of str, optional
        Only these columns (besides ``patient_id`` and ``week``), in the usual order: the same
        values, less memory (a frame of 10^5 patients' weeks has about 3 x 10^6 rows). An
        unknown name is refused.

    Returns
    -------
    pandas.DataFrame
        Sorted by patient (in ``patients`` order) and week. Columns:

        - ``patient_id`` (str), ``week`` (int, 0 = the enrolment week).
        - ``phase`` (category): ``guided``, ``maintenance`` or ``none``.
        - ``sessions_prescribed`` (float), ``sessions_completed`` (int).
        - ``adherence`` (float, completed / prescribed, uncapped; missing when nothing was
          prescribed) and ``adherence_capped`` (at most 1).
        - ``sets_prescribed`` (float), ``sets_completed`` (float).
        - ``supervised_sessions``, ``home_sessions`` (int).
        - ``minutes_total`` and ``minutes_<category>`` (float) for the five categories;
          ``share_<category>`` (float, of the week's minutes; missing when no minutes).
        - ``nprs`` (float): mean NPRS assessed that week; missing when none.
        - ``dropout`` (bool): True in the dropout week (the last row of a dropout).

        For a cohort without prescriptions or sessions (outcomes only), only ``patient_id``,
        ``week`` and ``nprs`` are returned: adherence columns are absent, not zero.

    Examples
    --------
    >>> import ptanalytics as pt
    >>> weeks = pt.patient_weeks(pt.simulate_cohort(200, seed=1))
    >>> weeks[["patient_id", "week", "phase", "sessions_prescribed", "sessions_completed"]].shape
    (3626, 5)
    >>> bool(weeks.duplicated(["patient_id", "week"]).any())  # one row per patient and week
    False
    """
    check_number("min_exercises", min_exercises, low=1, what="a whole number >= 1")
    wanted = _wanted_columns(columns)
    g = grid_of(cohort, min_exercises, grid)
    width = g.nprs.shape[1]
    weeks = np.arange(width)
    limit = g.horizon.copy()
    dropped, dweek = grid_dropout(g, dropout_rule, inactivity_days, missed_sessions)
    if truncate_at_dropout:
        limit = np.where(dropped, np.minimum(limit, dweek), limit)
    valid = weeks[None, :] <= limit[:, None]
    rows, cols = np.nonzero(valid)
    out = {
        "patient_id": pd.array(g.ids.to_numpy()[rows], dtype="string"),
        "week": cols.astype(np.int64),
    }
    if g.has_program:
        presc = g.prescribed[rows, cols]
        done = g.completed[rows, cols]
        with np.errstate(invalid="ignore", divide="ignore"):
            adh = np.where(presc > 0, done / np.where(presc > 0, presc, 1), np.nan)
        out |= {
            "phase": lambda: pd.Categorical.from_codes(
                g.phase[rows, cols], categories=_PHASE_LABELS
            ),
            "sessions_prescribed": lambda: presc,
            "sessions_completed": lambda: done.astype(np.int64),
            "adherence": lambda: adh,
            "adherence_capped": lambda: np.minimum(adh, 1.0),
            "sets_prescribed": lambda: g.sets_prescribed[rows, cols],
            "sets_completed": lambda: g.sets_completed[rows, cols],
            "supervised_sessions": lambda: g.supervised[rows, cols].astype(np.int64),
            "home_sessions": lambda: (done - g.supervised[rows, cols]).astype(np.int64),
        }
        if wanted is None or wanted & {"minutes_total", *_MINUTES, *_SHARES}:
            minutes = g.minutes[rows, cols, :]
            total = minutes.sum(axis=1)
            out["minutes_total"] = total
            for j, name in enumerate(_MINUTES):
                out[name] = minutes[:, j]
            with np.errstate(invalid="ignore", divide="ignore"):
                for j, name in enumerate(_SHARES):
                    out[name] = np.where(
                        total > 0, minutes[:, j] / np.where(total > 0, total, 1), np.nan
                    )
    out["nprs"] = g.nprs[rows, cols]
    if g.has_program:
        out["dropout"] = lambda: dropped[rows] & (cols == dweek[rows])
    keep = {"patient_id", "week"} | (set(out) if wanted is None else wanted)
    out = {k: v() if callable(v) else v for k, v in out.items() if k in keep}
    return pd.DataFrame(out)
