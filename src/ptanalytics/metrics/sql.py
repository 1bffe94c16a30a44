"""Patient-week aggregation in SQL: DuckDB over a cohort's files, or Spark where the data live.

:func:`patient_weeks_sql` (DuckDB) and :func:`patient_weeks_spark` (Spark) return the frame of
:func:`ptanalytics.patient_weeks` -- same columns, dtypes, row order and values -- without
loading the sessions table into memory: the engine streams the session rows, reduces them to one
row per patient and day, then per patient and week, and spills to disk beyond ``memory_limit``.

The SQL lives in one place, :func:`patient_weeks_query`, written in the subset both engines accept
(CTEs, ``CASE``, ``GROUP BY``, window functions, explicit ``CAST``); the one construct that differs
(days between two dates) comes from :data:`DIALECTS`. The query reads four tables or views,
``patients``, ``prescriptions``, ``sessions`` and ``outcomes``, with the columns in
:data:`INPUT_COLUMNS`. See ``docs/columnar.md``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ptanalytics._checks import check_bool, check_number
from ptanalytics.cohort.catalogue import CATEGORIES
from ptanalytics.cohort.io import TableLocation, find_table
from ptanalytics.cohort.schema import coerce_table
from ptanalytics.exceptions import CohortFormatError, ConfigError
from ptanalytics.metrics.weeks import INACTIVITY_DAYS, MISSED_SESSIONS
from ptanalytics.vocab import MINUTES_COLUMNS, PHASE_LABELS, SHARE_COLUMNS

__all__ = [
    "DIALECTS",
    "INPUT_COLUMNS",
    "MAX_WEEKS",
    "patient_weeks_query",
    "patient_weeks_spark",
    "patient_weeks_sql",
]

#: Engine-specific snippets; everything else in the query is shared. ``days_between`` is the
#: whole number of days from ``{start}`` to ``{end}`` (negative when ``end`` is earlier).
DIALECTS: dict[str, dict[str, str]] = {
    "duckdb": {"days_between": "date_diff('day', {start}, {end})"},
    "spark": {"days_between": "datediff({end}, {start})"},
}


def _columns(spec: str) -> tuple[tuple[str, str, bool], ...]:
    """``"a STRING, b DATE?"`` as ``(("a", "STRING", True), ("b", "DATE", False))``.

    ``?`` after the type marks an optional column.
    """
    columns = []
    for item in spec.split(","):
        name, sql_type = item.split()
        columns.append((name, sql_type.rstrip("?"), not sql_type.endswith("?")))
    return tuple(columns)


#: Columns the query reads, per table: (name, SQL type, required). Optional columns that a source
#: lacks are supplied as NULL (``sets`` counts as 1, ``supervised_per_week`` and ``duration_min``
#: as 0, as in :func:`ptanalytics.patient_weeks`). ``patients.patient_order`` gives the
#: row order of the result (the order of the patients file).
INPUT_COLUMNS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "patients": _columns(
        "patient_id STRING, patient_order BIGINT, enrolled_on DATE, followup_weeks BIGINT?"
    ),
    "prescriptions": _columns(
        "patient_id STRING, phase STRING, sessions_per_week DOUBLE, supervised_per_week DOUBLE?, "
        "sets DOUBLE?, start_on DATE, end_on DATE"
    ),
    "sessions": _columns(
        "patient_id STRING, performed_on DATE, category STRING, supervised BOOLEAN, sets DOUBLE?, "
        "duration_min DOUBLE?"
    ),
    "outcomes": _columns("patient_id STRING, assessed_on DATE, instrument STRING, score DOUBLE"),
}

#: Longest follow-up the query's week generator covers (weeks 0 to MAX_WEEKS - 1).
MAX_WEEKS = 10_000

_TABLES = tuple(INPUT_COLUMNS)
_PHASE_LABELS = list(PHASE_LABELS)
_MINUTES, _SHARES = list(MINUTES_COLUMNS), list(SHARE_COLUMNS)
_INT_COLUMNS = ("sessions_completed", "supervised_sessions", "home_sessions")
_WINDOW = "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"


# ------------------------------------------------------------------------------------ options
@dataclass(frozen=True)
class _Options:
    min_exercises: int = 1
    dropout_rule: str = "inactivity"
    inactivity_days: int = INACTIVITY_DAYS
    missed_sessions: int = MISSED_SESSIONS
    truncate_at_dropout: bool = True

    def __post_init__(self) -> None:
        for name in ("min_exercises", "inactivity_days", "missed_sessions"):
            check_number(name, getattr(self, name), integer=True)
        check_number("min_exercises", self.min_exercises, low=1, integer=True)
        if self.dropout_rule not in ("inactivity", "missed_supervised"):
            raise ConfigError(
                f"dropout_rule={self.dropout_rule!r} is not known; allowed: 'inactivity', "
                f"'missed_supervised'."
            )
        if self.missed_sessions < 1:
            raise ConfigError(
                f"missed_sessions={self.missed_sessions} is not supported by the SQL path; "
                f"allowed: a whole number >= 1."
            )
        check_bool("truncate_at_dropout", self.truncate_at_dropout)


# ------------------------------------------------------------------------------------ the SQL
def _week(expr: str) -> str:
    """Week number of a day number (floor division by 7, also for negative days)."""
    return f"CAST(FLOOR(CAST({expr} AS DOUBLE) / 7) AS BIGINT)"


def _days_between(dialect: str):
    """``days(start, end)``: the dialect's SQL for the days from ``start`` to ``end``."""
    if dialect not in DIALECTS:
        raise ConfigError(f"dialect={dialect!r} is not known; allowed: {sorted(DIALECTS)}.")
    span = DIALECTS[dialect]["days_between"]
    return lambda start, end: span.format(start=start, end=end)


def _ctes(dialect: str, has_prescriptions: bool, opt: _Options) -> list[tuple[str, str]]:
    """The common table expressions, in order (each may use the ones before it)."""
    days = _days_between(dialect)
    return [
        _DIGITS,
        *_horizon_ctes(days, has_prescriptions),
        *_week_ctes(),
        *_session_ctes(days, opt),
        *_prescription_ctes(),
        _activity_cte(),
        *_dropout_ctes(opt),
        _pain_cte(),
    ]


def _horizon_ctes(days, has_prescriptions: bool) -> list[tuple[str, str]]:
    """``rx`` and ``assessments`` keyed by patient, and ``horizons``: each patient's last week.

    Every record is keyed by its patient's row number in ``patients`` (pk) from here on: one join
    per table on the text id, then integer keys only.
    """
    # Patients without followup_weeks take their horizon from the prescriptions (when the cohort
    # has any; patients without prescriptions then get 0), else from the last assessment.
    from_rx = f"CASE WHEN fw < 0 THEN {_week('pe + 7')} ELSE fw END" if has_prescriptions else "fw"
    return [
        (
            "rx",
            f"""SELECT p.patient_order AS pk,
    CASE r.phase WHEN 'guided' THEN 0 WHEN 'maintenance' THEN 1 ELSE 2 END AS phase_code,
    GREATEST({days("p.enrolled_on", "r.start_on")}, 0) AS s,
    {days("p.enrolled_on", "r.end_on")} AS e,
    COALESCE(r.sessions_per_week, 0) AS spw,
    COALESCE(r.supervised_per_week, 0) AS sup,
    COALESCE(r.sets, 1) AS sets
  FROM prescriptions r JOIN patients p ON r.patient_id = p.patient_id""",
        ),
        ("rx_end", "SELECT pk, MAX(e) AS max_end FROM rx GROUP BY pk"),
        (
            "assessments",
            f"""SELECT p.patient_order AS pk, o.instrument, CAST(o.score AS DOUBLE) AS score,
    {_week(days("p.enrolled_on", "o.assessed_on"))} AS week
  FROM outcomes o JOIN patients p ON o.patient_id = p.patient_id""",
        ),
        ("assessed", "SELECT pk, MAX(week) AS last_week FROM assessments GROUP BY pk"),
        (
            "horizon_inputs",
            """SELECT p.patient_order AS pk, p.patient_id,
    COALESCE(p.followup_weeks, -1) AS fw,
    GREATEST(COALESCE(x.max_end, -1), -1) AS pe,
    GREATEST(COALESCE(a.last_week, -1), -1) AS last_assessed
  FROM patients p
  LEFT JOIN rx_end x ON p.patient_order = x.pk
  LEFT JOIN assessed a ON p.patient_order = a.pk""",
        ),
        (
            "horizons",
            f"""SELECT pk, patient_id, horizon,
    CASE WHEN pe < 0 THEN 7 * horizon - 1 ELSE pe END AS planned_end
  FROM (
    SELECT pk, patient_id, pe,
      GREATEST(CASE WHEN h < 0 THEN last_assessed ELSE h END, 0) AS horizon
    FROM (SELECT pk, patient_id, pe, last_assessed, {from_rx} AS h FROM horizon_inputs) h1
  ) h2""",
        ),
    ]


#: ``digits``: 0 to 9, from which :func:`_week_ctes` builds weeks 0 to MAX_WEEKS - 1.
_DIGITS = (
    "digits",
    "SELECT CAST(n AS BIGINT) AS n FROM (VALUES "
    + ", ".join(f"({i})" for i in range(10))
    + ") AS t(n)",
)


def _week_ctes() -> list[tuple[str, str]]:
    """``bounds`` (weeks 0 to the longest horizon) and ``weeks``, generated from ``digits``."""
    places = " + ".join(f"{10**i} * d{i}.n" for i in range(4))
    digit_join = " CROSS JOIN ".join(f"digits d{i}" for i in range(4))
    return [
        ("bounds", "SELECT COALESCE(MAX(horizon), 0) + 1 AS width FROM horizons"),
        (
            "weeks",
            f"""SELECT week FROM (SELECT {places} AS week FROM {digit_join}) w
  CROSS JOIN bounds WHERE week < bounds.width""",
        ),
    ]


def _session_ctes(days, opt: _Options) -> list[tuple[str, str]]:
    """``done_weeks``: sessions completed (and minutes per category) per patient and week."""
    minutes = ", ".join(f"d.m_{c}" for c in CATEGORIES)
    minutes_day = ",\n      ".join(
        f"SUM(CASE WHEN category = '{c}' THEN COALESCE(duration_min, 0) ELSE 0 END) AS m_{c}"
        for c in CATEGORIES
    )
    minutes_week = ", ".join(f"SUM(m_{c}) AS m_{c}" for c in CATEGORIES)
    session = f"n_exercises >= {int(opt.min_exercises)}"
    return [
        # The heavy step: one pass over the session rows, reduced to one row per patient and day.
        (
            "session_days",
            f"""SELECT p.patient_order AS pk, {days("p.enrolled_on", "d.performed_on")} AS day,
    d.n_exercises, d.any_supervised, d.sets_done, {minutes}
  FROM (
    SELECT patient_id, performed_on,
      COUNT(*) AS n_exercises,
      MAX(CASE WHEN supervised THEN 1 ELSE 0 END) AS any_supervised,
      SUM(COALESCE(sets, 1)) AS sets_done,
      {minutes_day}
    FROM sessions GROUP BY patient_id, performed_on
  ) d JOIN patients p ON d.patient_id = p.patient_id""",
        ),
        (
            "done_weeks",
            f"""SELECT pk, week,
    SUM(CASE WHEN {session} THEN 1 ELSE 0 END) AS completed,
    SUM(CASE WHEN {session} AND any_supervised = 1 THEN 1 ELSE 0 END) AS supervised,
    MAX(CASE WHEN {session} THEN day END) AS last_day,
    SUM(sets_done) AS sets_done, {minutes_week}
  FROM (
    SELECT d.*, {_week("d.day")} AS week
    FROM session_days d CROSS JOIN bounds
    WHERE d.day >= 0 AND d.day < 7 * bounds.width
  ) k
  GROUP BY pk, week""",
        ),
        ("last_days", "SELECT pk, MAX(last_day) AS last_day FROM done_weeks GROUP BY pk"),
    ]


def _prescription_ctes() -> list[tuple[str, str]]:
    """``due_weeks``: sessions (and sets) prescribed per patient and week, phase coverage.

    One window per patient, phase and period (the exercises of a phase share their sessions),
    spread over the weeks it covers; amounts in sevenths of a session.
    """
    return [
        (
            "rx_windows",
            """SELECT pk, phase_code, s, e,
    MAX(spw) AS spw, MAX(sup) AS sup, SUM(sets * spw) AS sets
  FROM rx GROUP BY pk, phase_code, s, e""",
        ),
        (
            "rx_window_weeks",
            f"""SELECT w.pk, k.week, w.phase_code, w.spw, w.sup, w.sets,
    GREATEST(LEAST(w.e, 7 * k.week + 6) - GREATEST(w.s, 7 * k.week) + 1, 0) AS days
  FROM rx_windows w
  JOIN weeks k ON k.week >= {_week("w.s")} AND k.week <= {_week("w.e")}""",
        ),
        (
            "due_weeks",
            """SELECT pk, week,
    SUM(spw * days) AS due7, SUM(sup * days) AS due_supervised7, SUM(sets * days) AS sets7,
    SUM(CASE WHEN phase_code = 0 THEN days ELSE 0 END) AS cover_guided,
    SUM(CASE WHEN phase_code = 1 THEN days ELSE 0 END) AS cover_maintenance,
    SUM(CASE WHEN phase_code = 2 THEN days ELSE 0 END) AS cover_other
  FROM rx_window_weeks GROUP BY pk, week""",
        ),
    ]


def _activity_cte() -> tuple[str, str]:
    """``activity``: what was due and what was done, per patient and week (either may be 0)."""
    minutes_any = ", ".join(f"COALESCE(b.m_{c}, 0) AS m_{c}" for c in CATEGORIES)
    return (
        "activity",
        f"""SELECT COALESCE(a.pk, b.pk) AS pk, COALESCE(a.week, b.week) AS week,
    COALESCE(a.due7, 0) AS due7, COALESCE(a.due_supervised7, 0) AS due_supervised7,
    COALESCE(a.sets7, 0) AS sets7, COALESCE(a.cover_guided, 0) AS cover_guided,
    COALESCE(a.cover_maintenance, 0) AS cover_maintenance,
    COALESCE(a.cover_other, 0) AS cover_other,
    COALESCE(b.completed, 0) AS completed, COALESCE(b.supervised, 0) AS supervised,
    COALESCE(b.sets_done, 0) AS sets_done, {minutes_any}
  FROM due_weeks a FULL OUTER JOIN done_weeks b ON a.pk = b.pk AND a.week = b.week""",
    )


def _pain_cte() -> tuple[str, str]:
    """``pain``: the mean NPRS per patient and week (missing when any score is missing)."""
    return (
        "pain",
        """SELECT pk, week,
    CASE WHEN COUNT(score) = COUNT(*) THEN SUM(score) / COUNT(*) END AS nprs
  FROM assessments CROSS JOIN bounds
  WHERE instrument = 'NPRS' AND week >= 0 AND week < bounds.width
  GROUP BY pk, week""",
    )


def _dropout_ctes(opt: _Options) -> list[tuple[str, str]]:
    """``dropouts``: per patient, ``dropped`` (0/1) and ``dropout_week`` (-1 when none)."""
    if opt.dropout_rule == "inactivity":
        return [
            (
                "dropouts",
                f"""SELECT h.pk,
    CASE WHEN h.planned_end - COALESCE(l.last_day, -1) >= {int(opt.inactivity_days)}
      THEN 1 ELSE 0 END AS dropped,
    CASE WHEN l.last_day IS NULL THEN 0 ELSE {_week("l.last_day")} + 1 END AS dropout_week
  FROM horizons h LEFT JOIN last_days l ON h.pk = l.pk""",
            )
        ]
    # missed_supervised: a week with a supervised session starts a new run; the run's missed
    # supervised sessions accumulate (in sevenths, exactly); the dropout week is the first week
    # with a miss in the first run that reaches the threshold.
    return [
        (
            "runs",
            f"""SELECT pk, week, missed7,
    SUM(CASE WHEN supervised > 0 THEN 1 ELSE 0 END)
      OVER (PARTITION BY pk ORDER BY week {_WINDOW}) AS run_id
  FROM (SELECT pk, week, supervised,
          GREATEST(due_supervised7 - 7 * supervised, 0) AS missed7 FROM activity) x""",
        ),
        (
            "run_totals",
            f"""SELECT pk, week,
    SUM(missed7) OVER (PARTITION BY pk, run_id ORDER BY week {_WINDOW}) AS run7,
    MIN(CASE WHEN missed7 > 0 THEN week END)
      OVER (PARTITION BY pk, run_id ORDER BY week {_WINDOW}) AS run_start
  FROM runs""",
        ),
        (
            "dropouts",
            f"""SELECT h.pk,
    CASE WHEN f.found IS NULL THEN 0 ELSE 1 END AS dropped,
    COALESCE(f.found, -1) AS dropout_week
  FROM horizons h LEFT JOIN (
    SELECT pk, MIN(run_start) AS found FROM run_totals
    WHERE run7 >= {7 * int(opt.missed_sessions)} GROUP BY pk
  ) f ON h.pk = f.pk""",
        ),
    ]


def _final(has_program: bool, opt: _Options) -> str:
    if not has_program:
        return """SELECT h.patient_id, CAST(k.week AS BIGINT) AS week,
  CAST(n.nprs AS DOUBLE) AS nprs
FROM horizons h
JOIN weeks k ON k.week <= h.horizon
LEFT JOIN pain n ON h.pk = n.pk AND k.week = n.week
ORDER BY h.pk, k.week"""
    truncate = "TRUE" if opt.truncate_at_dropout else "FALSE"
    minutes = ",\n  ".join(
        f"CAST(COALESCE(a.m_{c}, 0) AS DOUBLE) AS minutes_{c}" for c in CATEGORIES
    )
    total = " + ".join(f"COALESCE(a.m_{c}, 0)" for c in CATEGORIES)
    shares = ",\n  ".join(
        f"CASE WHEN {total} > 0 THEN COALESCE(a.m_{c}, 0) / ({total}) END AS share_{c}"
        for c in CATEGORIES
    )
    due = "COALESCE(a.due7, 0)"
    done = "COALESCE(a.completed, 0)"
    cg, cm, co = (f"COALESCE(a.cover_{p}, 0)" for p in ("guided", "maintenance", "other"))
    return f"""SELECT g.patient_id, CAST(g.week AS BIGINT) AS week,
  CASE WHEN GREATEST({cg}, {cm}, {co}) <= 0 THEN 'none'
    WHEN {cg} >= {cm} AND {cg} >= {co} THEN 'guided'
    WHEN {cm} >= {co} THEN 'maintenance' ELSE 'none' END AS phase,
  CAST({due} / 7 AS DOUBLE) AS sessions_prescribed,
  CAST({done} AS BIGINT) AS sessions_completed,
  CASE WHEN {due} > 0 THEN {done} / ({due} / 7) END AS adherence,
  CASE WHEN {due} > 0 THEN LEAST({done} / ({due} / 7), 1) END AS adherence_capped,
  CAST(COALESCE(a.sets7, 0) / 7 AS DOUBLE) AS sets_prescribed,
  CAST(COALESCE(a.sets_done, 0) AS DOUBLE) AS sets_completed,
  CAST(COALESCE(a.supervised, 0) AS BIGINT) AS supervised_sessions,
  CAST({done} - COALESCE(a.supervised, 0) AS BIGINT) AS home_sessions,
  CAST({total} AS DOUBLE) AS minutes_total,
  {minutes},
  {shares},
  CAST(n.nprs AS DOUBLE) AS nprs,
  CASE WHEN g.dropped = 1 AND g.week = g.dropout_week THEN TRUE ELSE FALSE END AS dropout
FROM (
  SELECT l.pk, l.patient_id, l.dropped, l.dropout_week, k.week
  FROM (
    SELECT h.pk, h.patient_id, d.dropped, d.dropout_week,
      CASE WHEN {truncate} AND d.dropped = 1 THEN LEAST(h.horizon, d.dropout_week)
        ELSE h.horizon END AS last_week
    FROM horizons h JOIN dropouts d ON h.pk = d.pk
  ) l JOIN weeks k ON k.week <= l.last_week
) g
LEFT JOIN activity a ON g.pk = a.pk AND g.week = a.week
LEFT JOIN pain n ON g.pk = n.pk AND g.week = n.week
ORDER BY g.pk, g.week"""


def _with(ctes: list[tuple[str, str]], final: str) -> str:
    body = ",\n".join(f"{name} AS (\n  {sql}\n)" for name, sql in ctes)
    return f"WITH\n{body}\n{final}\n"


def patient_weeks_query(
    *,
    dialect: str = "duckdb",
    has_prescriptions: bool = True,
    has_sessions: bool = True,
    min_exercises: int = 1,
    dropout_rule: str = "inactivity",
    inactivity_days: int = INACTIVITY_DAYS,
    missed_sessions: int = MISSED_SESSIONS,
    truncate_at_dropout: bool = True,
) -> str:
    """The SQL that computes the patient-week frame, for running where the data live.

    Parameters
    ----------
    dialect : {"duckdb", "spark"}
        Which :data:`DIALECTS` snippets to use.
    has_prescriptions, has_sessions : bool
        Whether the cohort has any prescription / session rows (the tables must exist either
        way; they may be empty). Without both, the query returns the outcomes-only frame
        (``patient_id``, ``week``, ``nprs``), as :func:`ptanalytics.patient_weeks` does.
    min_exercises, dropout_rule, inactivity_days, missed_sessions, truncate_at_dropout
        As in :func:`ptanalytics.patient_weeks`.

    Returns
    -------
    str
        One ``SELECT`` statement (with CTEs) reading ``patients``, ``prescriptions``,
        ``sessions`` and ``outcomes`` with the columns of :data:`INPUT_COLUMNS`. Its result has
        the columns of :func:`ptanalytics.patient_weeks`, with ``phase`` as text, ordered
        by ``patients.patient_order`` and week.
    """
    opt = _Options(
        min_exercises, dropout_rule, inactivity_days, missed_sessions, truncate_at_dropout
    )
    has_program = has_prescriptions or has_sessions
    return _with(_ctes(dialect, has_prescriptions, opt), _final(has_program, opt))


def _checks_query(dialect: str, has_prescriptions: bool) -> str:
    """Rows (check, bad, example): duplicate ids, orphan records per table, the longest horizon."""
    ctes = [_DIGITS, *_horizon_ctes(_days_between(dialect), has_prescriptions)]
    orphans = [
        f"""SELECT '{t}' AS check_name, COUNT(*) AS bad, MIN(x.patient_id) AS example
FROM (SELECT DISTINCT patient_id FROM {t}) x
LEFT JOIN patients p ON x.patient_id = p.patient_id WHERE p.patient_id IS NULL"""
        for t in ("prescriptions", "sessions", "outcomes")
    ]
    final = "\nUNION ALL\n".join(
        [
            "SELECT 'duplicates' AS check_name, COUNT(*) - COUNT(DISTINCT patient_id) AS bad, "
            "MIN(patient_id) AS example FROM patients",
            *orphans,
            "SELECT 'horizon' AS check_name, COALESCE(MAX(horizon), 0) AS bad, "
            "CAST(NULL AS STRING) AS example FROM horizons",
        ]
    )
    return _with(ctes, final)


def _raise_on_checks(rows: list[tuple], where: str) -> None:
    found = {name: (int(bad or 0), example) for name, bad, example in rows}
    if found["duplicates"][0]:
        raise ConfigError(
            f"{where}: patients.patient_id has duplicates; validate the cohort first "
            f"('ptanalytics validate')."
        )
    orphans = {t: v for t, v in found.items() if t not in ("duplicates", "horizon") and v[0]}
    if orphans:
        listed = "; ".join(f"{t}: {n} ids, e.g. {ex!r}" for t, (n, ex) in orphans.items())
        raise ConfigError(
            f"{where}: records of patients missing from the patients table ({listed}); "
            f"validate the cohort first ('ptanalytics validate')."
        )
    if found["horizon"][0] >= MAX_WEEKS:
        raise ConfigError(
            f"{where}: a patient's follow-up runs to week {found['horizon'][0]}; the SQL path "
            f"covers weeks below {MAX_WEEKS}. Fix: check followup_weeks and the dates of "
            f"prescriptions and outcomes."
        )


def _checked_query(dialect: str, has: dict[str, bool], opt: _Options, rows, where: str) -> str:
    """The patient-week query for the tables that have rows (``has``), after the id checks.

    ``rows(sql)`` runs a query on the engine and returns its rows; ``None`` skips the checks.
    """
    if rows is not None:
        _raise_on_checks(rows(_checks_query(dialect, has["prescriptions"])), where)
    return patient_weeks_query(
        dialect=dialect,
        has_prescriptions=has["prescriptions"],
        has_sessions=has["sessions"],
        **opt.__dict__,
    )


# ------------------------------------------------------------------------------------ inputs
def _sources(path: str | os.PathLike) -> dict[str, TableLocation | None]:
    """Where the four tables are (:func:`~ptanalytics.cohort.io.find_table`); patients required."""
    folder = Path(path)
    if not folder.is_dir():
        raise CohortFormatError(
            f"{folder}: no such cohort folder. Fix: pass the folder written by 'ptanalytics "
            f"simulate', 'ptanalytics ingest' or Cohort.write."
        )
    patients = find_table(folder, "patients")
    if patients is None:
        raise CohortFormatError(
            f"{folder}: no patients table (patients.parquet, patients.csv or "
            f"patients/*.parquet). Fix: restore it or re-create the cohort."
        )
    counts: dict[str, Any] = {}
    meta = folder / "cohort.json"
    if meta.is_file():
        try:
            counts = json.loads(meta.read_text(encoding="utf-8")).get("row_counts", {})
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CohortFormatError(f"{meta}: not valid JSON ({exc}).") from exc
    others = {name: find_table(folder, name, rows=counts.get(name, 0)) for name in _TABLES[1:]}
    return {"patients": patients, **others}


_PATIENT_COLUMNS = ("patient_id", "enrolled_on", "followup_weeks")


def _read_patients(source: TableLocation) -> pa.Table:
    """The patients table (small) in file order, with the columns the query needs."""
    try:
        if source.format == "csv":
            raw = pd.read_csv(
                source.files[0],
                usecols=lambda c: c in _PATIENT_COLUMNS,
                dtype={"patient_id": "str"},
                keep_default_na=False,
                na_values=[""],
                encoding="utf-8",
            )
        else:
            tables = []
            for f in source.files:
                names = pq.read_schema(f).names
                tables.append(pq.read_table(f, columns=[c for c in names if c in _PATIENT_COLUMNS]))
            raw = pa.concat_tables(tables, promote_options="permissive").to_pandas(
                date_as_object=False
            )
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise CohortFormatError(f"{source.path}: cannot be read ({exc}).") from exc
    pts = coerce_table("patients", raw, source=str(source.path))
    # Without the column every horizon is "unknown" (from prescriptions or assessments).
    fw = pts["followup_weeks"] if "followup_weeks" in pts else pd.Series(pd.NA, index=pts.index)
    return pa.table(
        {
            "patient_id": pa.array(pts["patient_id"].astype("str").to_numpy(dtype=object)),
            "patient_order": pa.array(np.arange(len(pts), dtype=np.int64)),
            "enrolled_on": pa.array(pts["enrolled_on"].to_numpy().astype("datetime64[D]")),
            "followup_weeks": pa.array(pd.array(fw, dtype="Int64"), type=pa.int64()),
        }
    )


def _normalise_sql(name: str, present: set[str], raw: str, where: str) -> str:
    """A SELECT giving table ``name`` its INPUT_COLUMNS (absent optional columns as NULL)."""
    cols = []
    for col, sql_type, required in INPUT_COLUMNS[name]:
        if col in present:
            cols.append(f"CAST({col} AS {sql_type}) AS {col}")
        elif required:
            raise CohortFormatError(
                f"{where}: table '{name}' lacks required column '{col}'; found "
                f"{sorted(present)}. Fix: rename or add the column (see docs/data_dictionary.md)."
            )
        else:
            cols.append(f"CAST(NULL AS {sql_type}) AS {col}")
    source = f"FROM {raw}" if raw else "WHERE 1 = 0"
    return f"SELECT {', '.join(cols)} {source}"


def _empty_view(name: str) -> str:
    cols = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t, _ in INPUT_COLUMNS[name])
    return f"SELECT {cols} WHERE 1 = 0"


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    """Give the engine's result the dtypes of frames.patient_weeks."""
    out = df.reset_index(drop=True)
    out["patient_id"] = pd.array(out["patient_id"].to_numpy(dtype=object), dtype="string")
    out["week"] = out["week"].to_numpy(dtype=np.int64)
    if "phase" in out:
        out["phase"] = pd.Categorical(out["phase"].to_numpy(dtype=object), categories=_PHASE_LABELS)
        for col in _INT_COLUMNS:
            out[col] = out[col].to_numpy(dtype=np.int64)
        out["dropout"] = out["dropout"].to_numpy(dtype=bool)
    for col in out.columns:
        if col not in ("patient_id", "week", "phase", "dropout", *_INT_COLUMNS):
            out[col] = out[col].to_numpy(dtype=np.float64, na_value=np.nan)
    return out


# ------------------------------------------------------------------------------------ DuckDB
def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _duckdb_reader(source: TableLocation) -> str:
    files = "[" + ", ".join(_quote(f) for f in source.files) + "]"
    if source.format == "csv":
        return f"read_csv({files}, header = true, all_varchar = true)"
    return f"read_parquet({files}, union_by_name = true)"


def _register_duckdb(con, sources: dict[str, TableLocation | None]) -> dict[str, bool]:
    """Create the four input views; return which of the tables have rows."""
    con.register("patients_frame", _read_patients(sources["patients"]))
    con.execute(
        "CREATE OR REPLACE TEMPORARY VIEW patients AS "
        + _normalise_sql(
            "patients", {c for c, _, _ in INPUT_COLUMNS["patients"]}, "patients_frame", ""
        )
    )
    has = {"patients": True}
    for name in _TABLES[1:]:
        source = sources[name]
        if source is None:
            con.execute(f"CREATE OR REPLACE TEMPORARY VIEW {name} AS {_empty_view(name)}")
            has[name] = False
            continue
        reader = _duckdb_reader(source)
        try:
            present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
        except Exception as exc:  # duckdb raises its own exception types
            raise CohortFormatError(f"{source.path}: cannot be read ({exc}).") from exc
        con.execute(
            f"CREATE OR REPLACE TEMPORARY VIEW {name} AS "
            + _normalise_sql(name, present, reader, str(source.path))
        )
        has[name] = bool(
            con.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {name} LIMIT 1) t").fetchone()[0]
        )
    return has


_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)


def patient_weeks_sql(
    path: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    memory_limit: str = "4GB",
    threads: int | None = None,
    temp_directory: str | os.PathLike | None = None,
    check_ids: bool = True,
    min_exercises: int = 1,
    dropout_rule: str = "inactivity",
    inactivity_days: int = INACTIVITY_DAYS,
    missed_sessions: int = MISSED_SESSIONS,
    truncate_at_dropout: bool = True,
) -> pd.DataFrame | Path:
    """:func:`ptanalytics.patient_weeks` computed by DuckDB over a cohort folder's files.

    Tables are read where they lie -- ``<table>.parquet``, ``<table>.csv`` or a folder
    ``<table>/`` of Parquet parts -- and streamed: memory stays below ``memory_limit`` (DuckDB
    spills to ``temp_directory`` beyond it); only the patients table is read into pandas.

    Parameters
    ----------
    path : path-like
        A cohort folder (``cohort.json`` optional; when present, a table it lists with rows must
        exist).
    out : path-like, optional
        Write the frame to this Parquet file (``phase`` as text) and return its path instead of
        a DataFrame: for results larger than memory.
    memory_limit : str
        DuckDB's memory limit, e.g. ``"4GB"``.
    threads : int, optional
        DuckDB worker threads (default: one per core).
    temp_directory : path-like, optional
        Where DuckDB spills; default a temporary folder removed afterwards.
    check_ids : bool
        Check first that patient ids are unique and that every record's patient is in the
        patients table (one extra pass over the ids of the sessions), as ``patient_weeks`` does.
    min_exercises, dropout_rule, inactivity_days, missed_sessions, truncate_at_dropout
        As in :func:`ptanalytics.patient_weeks` (``missed_sessions`` >= 1).

    Returns
    -------
    pandas.DataFrame or pathlib.Path
        The columns, dtypes and row order of :func:`ptanalytics.patient_weeks` (see its
        *Returns*); the path of ``out`` when given.

    Raises
    ------
    CohortFormatError
        When the folder, the patients table or a required column is missing, or a file cannot
        be read.
    ConfigError
        For an option outside what is supported, duplicate patient ids, or records of patients
        missing from the patients table.
    """
    import duckdb

    opt = _Options(
        min_exercises, dropout_rule, inactivity_days, missed_sessions, truncate_at_dropout
    )
    if not isinstance(memory_limit, str) or not _MEMORY.match(memory_limit):
        raise ConfigError(
            f"memory_limit={memory_limit!r}; allowed: a size such as '4GB' or '512MB'."
        )
    if threads is not None:
        threads = check_number(
            "threads", threads, low=1, integer=True, what="a whole number >= 1 or None"
        )
    sources = _sources(path)
    with tempfile.TemporaryDirectory(prefix="ptanalytics-duckdb-") as scratch:
        config = {
            "memory_limit": memory_limit,
            "temp_directory": str(temp_directory or scratch),
            "preserve_insertion_order": False,
        }
        if threads is not None:
            config["threads"] = threads
        con = duckdb.connect(config=config)
        try:
            has = _register_duckdb(con, sources)
            rows = None if not check_ids else lambda sql: con.execute(sql).fetchall()
            query = _checked_query("duckdb", has, opt, rows, str(path))
            if out is not None:
                con.execute(f"COPY ({query}) TO {_quote(Path(out))} (FORMAT parquet)")
                return Path(out)
            return _finish(con.execute(query).df())
        finally:
            con.close()


# ------------------------------------------------------------------------------------ Spark
def _register_spark(spark, data, where: str) -> dict[str, bool]:
    """Create the four temporary views from a cohort folder or a mapping of Spark DataFrames."""
    from pyspark.sql import functions

    if isinstance(data, Mapping):
        unknown = sorted(set(data) - set(_TABLES))
        if unknown or "patients" not in data:
            raise ConfigError(
                f"tables {sorted(data)}: expected 'patients' and any of {list(_TABLES[1:])}"
                + (f"; not used: {unknown}" if unknown else "")
                + ". Fix: pass a dict of Spark DataFrames keyed by table name."
            )
        frames = dict(data)
        pts = frames["patients"]
        if "patient_order" not in pts.columns:
            pts.createOrReplaceTempView("patients_raw")
            pts = spark.sql(
                "SELECT *, ROW_NUMBER() OVER (ORDER BY patient_id) - 1 AS patient_order "
                "FROM patients_raw"
            )
        if "followup_weeks" not in pts.columns:  # unknown: from prescriptions or assessments
            pts = pts.withColumn("followup_weeks", functions.lit(None).cast("bigint"))
        frames["patients"] = pts
    else:
        sources = _sources(data)
        frames = {"patients": spark.createDataFrame(_read_patients(sources["patients"]))}
        for name in _TABLES[1:]:
            source = sources[name]
            if source is None:
                continue
            files = [str(f) for f in source.files]
            if source.format == "csv":
                frames[name] = spark.read.csv(files, header=True)
            else:
                frames[name] = spark.read.option("mergeSchema", "true").parquet(*files)
    has = {}
    for name in _TABLES:
        frame = frames.get(name)
        if frame is None:
            spark.sql(_empty_view(name)).createOrReplaceTempView(name)
            has[name] = False
            continue
        frame.createOrReplaceTempView(f"{name}_raw")
        select = _normalise_sql(name, set(frame.columns), f"{name}_raw", f"{where}: {name}")
        spark.sql(select).createOrReplaceTempView(name)
        has[name] = name == "patients" or not spark.table(name).isEmpty()
    return has


def patient_weeks_spark(
    data: str | os.PathLike | Mapping[str, Any],
    *,
    spark=None,
    out: str | os.PathLike | None = None,
    check_ids: bool = True,
    min_exercises: int = 1,
    dropout_rule: str = "inactivity",
    inactivity_days: int = INACTIVITY_DAYS,
    missed_sessions: int = MISSED_SESSIONS,
    truncate_at_dropout: bool = True,
) -> pd.DataFrame | Path:
    """:func:`ptanalytics.patient_weeks` computed by Spark SQL (same query as DuckDB's).

    Parameters
    ----------
    data : path-like or mapping of str to pyspark.sql.DataFrame
        A cohort folder (as for :func:`patient_weeks_sql`), or Spark DataFrames keyed by table
        name (``patients`` and any of ``prescriptions``, ``sessions``, ``outcomes``), e.g. read
        from warehouse tables. Without a ``patient_order`` column, patients are ordered by id.
    spark : pyspark.sql.SparkSession, optional
        The session to use (default: the active one, or a new one).
    out : path-like, optional
        Write the frame as a Parquet folder there (Spark's format: part files) and return its
        path instead of collecting it to pandas.
    check_ids, min_exercises, dropout_rule, inactivity_days, missed_sessions, truncate_at_dropout
        As in :func:`patient_weeks_sql`.

    Returns
    -------
    pandas.DataFrame or pathlib.Path
        As :func:`patient_weeks_sql`.
    """
    from pyspark.sql import SparkSession

    opt = _Options(
        min_exercises, dropout_rule, inactivity_days, missed_sessions, truncate_at_dropout
    )
    spark = spark or SparkSession.builder.getOrCreate()
    where = str(data) if not isinstance(data, Mapping) else "spark tables"
    has = _register_spark(spark, data, where)
    rows = None if not check_ids else lambda sql: [tuple(r) for r in spark.sql(sql).collect()]
    query = _checked_query("spark", has, opt, rows, where)
    result = spark.sql(query)
    if out is not None:
        result.write.parquet(str(out))
        return Path(out)
    return _finish(result.toArrow().to_pandas())
