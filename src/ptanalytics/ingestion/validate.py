"""Validation of canonical records: every problem of every row found at once, nothing clipped.

Input: for each table, a frame of *raw* records (canonical column names, values as text, missing
as ``<NA>``) with ``_source_file`` and ``_source_row``. Output: the accepted rows in their
canonical types and the quarantined rows with their reasons. Rows in = accepted + quarantined,
for every table, always.

Checks, in order (a row that fails an earlier stage is not checked by later ones):

1. **Row checks** (all reported together): required values present; dates that parse (ISO, or
   the source's declared formats, converted before this step), are not before
   :data:`EARLIEST_DATE` (``date_out_of_range``: a year 1200 or 0001 is a typo or a placeholder)
   and are not in the future; numbers that are finite (``inf``, ``-inf``, ``nan`` and overflowing
   text such as ``1e400`` are ``non_finite``); whole numbers that are whole (a 7.5 is quarantined,
   never rounded); ranges (NPRS integers 0-10, ODI 0-100, RMDQ integers 0-24, other instruments
   0 to :data:`MAX_OTHER_SCORE`, and the data dictionary's ranges; never clipped); closed
   vocabularies (phase, sex, co-intervention kind); exercises in the catalogue (with the closest
   names suggested); a category that agrees with the catalogue.
2. **Duplicates**: a record identical to an earlier one is quarantined; so is a second record for
   the same patient in ``patients``.
3. **Patients and time**: records of patients absent from ``patients``; sessions before
   enrolment; outcomes more than 30 days before enrolment; intervals that end before they start;
   sessions whose phase contradicts the prescription covering their date.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ptanalytics.cohort.catalogue import exercise_catalogue
from ptanalytics.cohort.schema import EARLIEST_DATE, TABLES, Column, coerce_table
from ptanalytics.vocab import (
    FALSE_WORDS,
    INSTRUMENT_RANGES,
    MAX_OTHER_SCORE,
    PHASES,
    TRUE_WORDS,
)

__all__ = [
    "EARLIEST_DATE",
    "INSTRUMENT_RANGES",
    "MAX_OTHER_SCORE",
    "ValidationResult",
    "normalise_exercise",
    "validate_records",
]

FILE, ROW = "_source_file", "_source_row"
FORMATS = "_date_formats"
#: Problems found before validation (e.g. a FHIR unit, a value an ``extract`` pattern does not
#: match), carried per row as codes joined by ``;`` and messages joined by ``; ``.
PROBLEM, PROBLEM_CODE = "_problem", "_problem_code"
#: Per row, the canonical columns (joined by ``;``) whose problem is already in ``_problem``, so
#: that their own checks do not report the same value again.
REPORTED = "_reported_columns"
OUTCOME_LEEWAY_DAYS = 30


@dataclass
class ValidationResult:
    """Accepted and quarantined rows of each table.

    Attributes
    ----------
    accepted : dict of str to DataFrame
        Canonical tables (typed as in the data dictionary); extra patient attributes kept.
    quarantine : dict of str to DataFrame
        Per table, the rejected rows: ``_source_file``, ``_source_row``, ``reason_code`` (short
        codes joined by ``;``), ``reason`` (what is wrong, the value and the fix), then the raw
        values of the canonical columns.
    """

    accepted: dict[str, pd.DataFrame] = field(default_factory=dict)
    quarantine: dict[str, pd.DataFrame] = field(default_factory=dict)

    def counts(self) -> pd.DataFrame:
        """Rows read, accepted and quarantined per table and reason code.

        Returns
        -------
        pandas.DataFrame
            Columns ``table``, ``reason_code`` (``(accepted)`` for the accepted row count, else a
            quarantine code; a row failing several checks counts under each), ``rows``.
        """
        rows = []
        for name in TABLES:
            acc = self.accepted.get(name)
            rows.append((name, "(accepted)", 0 if acc is None else len(acc)))
            q = self.quarantine.get(name)
            if q is not None and len(q):
                codes = q["reason_code"].str.split(";").explode().value_counts().sort_index()
                rows += [(name, code, int(n)) for code, n in codes.items()]
        return pd.DataFrame(rows, columns=["table", "reason_code", "rows"])


class _Issues:
    """Collects (row mask, code, message) triples for one table and joins them per row."""

    def __init__(self, n: int):
        self.n = n
        self.codes = np.full(n, "", dtype=object)
        self.messages = np.full(n, "", dtype=object)

    def add(self, mask, code: str, message) -> None:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        idx = np.flatnonzero(mask)
        msg = message[mask] if isinstance(message, pd.Series | np.ndarray) else message
        msg = np.asarray(msg, dtype=object) if not isinstance(msg, str) else msg
        sep_c = np.where(self.codes[idx] == "", "", ";")
        sep_m = np.where(self.messages[idx] == "", "", "; ")
        self.codes[idx] = self.codes[idx] + sep_c + code
        self.messages[idx] = self.messages[idx] + sep_m + msg

    def merge(self, codes: np.ndarray, messages: np.ndarray) -> None:
        """Append per-row codes and messages (empty strings for rows without a problem)."""
        mask = codes != ""
        if not mask.any():
            return
        idx = np.flatnonzero(mask)
        sep_c = np.where(self.codes[idx] == "", "", ";")
        sep_m = np.where(self.messages[idx] == "", "", "; ")
        self.codes[idx] = self.codes[idx] + sep_c + codes[idx]
        self.messages[idx] = self.messages[idx] + sep_m + messages[idx]

    @property
    def bad(self) -> np.ndarray:
        return self.codes != ""


def _text(s: pd.Series) -> pd.Series:
    return s.astype("string")


def _quote(values: pd.Series) -> pd.Series:
    return "'" + values.astype("string").fillna("") + "'"


# ------------------------------------------------------------------------------- exercise names
def _norm(text: pd.Series | str):
    pat = r"[\s\-–—/]+"
    if isinstance(text, str):
        return re.sub(pat, "_", text.strip().lower().replace("'", ""))
    return text.str.strip().str.lower().str.replace("'", "").str.replace(pat, "_", regex=True)


def _exercise_lookup() -> dict[str, str]:
    cat = exercise_catalogue()
    lookup = {ex: ex for ex in cat["exercise"]}
    for ex, name in zip(cat["exercise"], cat["name"], strict=True):
        lookup[_norm(name)] = ex
    return lookup


def normalise_exercise(values: pd.Series) -> pd.Series:
    """Catalogue identifiers for exercise names written as ids or display names, any case.

    ``"Hamstring-Stretch"``, ``"hamstring stretch"`` and ``"Standing hamstring stretch"`` all give
    ``hamstring_stretch``. Names that match nothing are returned unchanged (and are quarantined by
    validation with suggestions). No fuzzy matching is applied silently.
    """
    lookup = _exercise_lookup()
    normed = _norm(_text(values))
    return normed.map(lookup).fillna(values)


def _suggest(name: str) -> str:
    cat = exercise_catalogue()
    ids = list(cat["exercise"])
    names = {_norm(n): ex for ex, n in zip(cat["exercise"], cat["name"], strict=True)}
    close = difflib.get_close_matches(_norm(name), ids + list(names), n=6, cutoff=0.5)
    close = list(dict.fromkeys(names.get(c, c) for c in close))[:3]
    return f"closest: {', '.join(close)}" if close else "no close catalogue name"


# ------------------------------------------------------------------------------------- checks
def _distinct(df: pd.DataFrame, cols: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Codes of each row's distinct combination of ``cols`` and those combinations.

    Row checks run once per distinct value (a million session rows hold a few thousand distinct
    dates), then expand back to the rows.
    """
    key = df[cols].astype("string")
    if len(cols) == 1:
        codes, uniq = pd.factorize(key[cols[0]], use_na_sentinel=False)
        return codes, pd.DataFrame({cols[0]: pd.array(uniq, dtype="string")})
    combined = np.zeros(len(key), dtype=np.int64)
    for c in cols:
        part, uniq = pd.factorize(key[c], use_na_sentinel=False)
        combined = combined * (len(uniq) + 1) + part
    codes, _ = pd.factorize(combined)
    first = np.unique(codes, return_index=True)[1]
    return codes, key.iloc[first].reset_index(drop=True)


def _check_column(df: pd.DataFrame, col: Column, table: str, issues: _Issues, today) -> pd.Series:
    """Row checks of one column; returns the normalised text of the column."""
    cols = [col.name] + ([FORMATS] if col.kind == "date" and FORMATS in df else [])
    codes, u = _distinct(df, cols)
    local = _Issues(len(u))
    formats = u[FORMATS] if FORMATS in u else pd.Series("%Y-%m-%d", index=u.index)
    norm = _check_values(u[col.name], formats, col, table, local, today)
    issues.merge(local.codes[codes], local.messages[codes])
    return pd.Series(norm.to_numpy()[codes], index=df.index, dtype="string")


def _check_values(s, formats, col: Column, table: str, issues: _Issues, today) -> pd.Series:
    """Row checks of one column's distinct values by kind; returns their normalised text."""
    if col.required:
        issues.add(
            ~s.notna(), "missing_value", f"{col.name} is missing; fix: fill it in (it is required)"
        )
    if col.kind == "date":
        return _check_dates(s, formats, col.name, issues, today)
    if col.kind in ("int", "float"):
        _check_numbers(s, col, table, issues)
        return s
    if col.kind == "bool":
        return _check_booleans(s, col.name, issues)
    if col.kind == "category":
        return _check_vocabulary(s, col, issues)
    return s


def _check_dates(s: pd.Series, formats: pd.Series, name: str, issues: _Issues, today) -> pd.Series:
    """Dates that parse, are not before EARLIEST_DATE and not after ``today``; as ISO days."""
    parsed = _parse_iso_date(s)
    bad = s.notna() & parsed.isna()
    issues.add(
        bad,
        "bad_date",
        f"{name} "
        + _quote(s)
        + " is not a date in the form "
        + formats.astype("string")
        + "; fix: correct it or declare the format in the mapping (date_formats)",
    )
    early = parsed.notna() & (parsed < pd.Timestamp(EARLIEST_DATE))
    issues.add(
        early,
        "date_out_of_range",
        f"{name} " + _quote(s) + f" is before {EARLIEST_DATE.isoformat()}; fix: correct "
        "the date (a placeholder or a typo in the year?)",
    )
    parsed = parsed.where(~early)
    future = parsed.notna() & (parsed > pd.Timestamp(today))
    issues.add(
        future,
        "future_date",
        f"{name} " + _quote(s) + f" is in the future (after {today}); fix: correct the date",
    )
    return parsed.dt.strftime("%Y-%m-%d").astype("string").where(parsed.notna(), s)


def _check_numbers(s: pd.Series, col: Column, table: str, issues: _Issues) -> None:
    """Finite numbers, whole for ``int`` columns, inside the data dictionary's range (outcome
    scores are checked per instrument by :func:`_check_scores`)."""
    num = _finite_numbers(s, col.name, issues)
    if col.kind == "int":
        issues.add(
            num.notna() & (num != np.floor(num)),
            "not_integer",
            f"{col.name} " + _quote(s) + " is not a whole number; fix: correct it "
            "(ptanalytics never rounds)",
        )
    if col.min is not None and not (table == "outcomes" and col.name == "score"):
        out = num.notna() & ((num < col.min) | (num > col.max))
        issues.add(
            out,
            "out_of_range",
            f"{col.name} "
            + _quote(s)
            + f" is outside {col.min:g}-{col.max:g}; fix: correct it (never clipped)",
        )


def _check_booleans(s: pd.Series, name: str, issues: _Issues) -> pd.Series:
    """True/false words of :mod:`ptanalytics.vocab`; as ``true``/``false``."""
    low = s.str.strip().str.lower()
    ok = low.isin(TRUE_WORDS | FALSE_WORDS) | ~s.notna()
    issues.add(
        ~ok, "not_boolean", f"{name} " + _quote(s) + " is not true/false; fix: use true or false"
    )
    return low.map(lambda v: "true" if v in TRUE_WORDS else "false", na_action="ignore").astype(
        "string"
    )


def _check_vocabulary(s: pd.Series, col: Column, issues: _Issues) -> pd.Series:
    """A closed vocabulary (any case) or, for ``exercise``, the catalogue (ids or display
    names, with the closest names suggested)."""
    present = s.notna()
    allowed = list(col.allowed or ())
    if col.name == "exercise":
        s = normalise_exercise(s)
        unknown = present & ~s.isin(allowed)
        issues.add(
            unknown,
            "unknown_exercise",
            "exercise "
            + _quote(s)
            + " is not in the catalogue ("
            + s.map(lambda v: _suggest(v) if isinstance(v, str) else "", na_action="ignore")
            + "); fix: map it in the mapping file (exercise.values)",
        )
        return s
    low = s.str.strip().str.lower()
    s = low.where(low.isin(allowed), s)
    issues.add(
        present & ~s.isin(allowed),
        "unknown_value",
        f"{col.name} " + _quote(s) + f" is not one of {', '.join(allowed)}; fix: map "
        f"it in the mapping file ({col.name}.values)",
    )
    return s


def _finite_numbers(s: pd.Series, name: str, issues: _Issues) -> pd.Series:
    """Numbers of ``s``; text that is no number (``not_a_number``) or no finite number
    (``non_finite``: inf, -inf, nan, 1e400) is reported and comes back missing."""
    num = pd.to_numeric(s, errors="coerce").astype("float64")
    finite = np.isfinite(num.to_numpy(dtype="float64", na_value=np.nan))
    spelled = s.str.strip().str.lower().str.lstrip("+-").isin(["nan", "inf", "infinity"])
    non_finite = s.notna() & (~finite & num.notna() | spelled.fillna(False))
    issues.add(
        non_finite,
        "non_finite",
        f"{name} " + _quote(s) + " is not a finite number; fix: correct it or leave it empty",
    )
    issues.add(
        s.notna() & num.isna() & ~non_finite,
        "not_a_number",
        f"{name} " + _quote(s) + " is not a number; fix: correct it",
    )
    return num.where(finite)


def _parse_iso_date(s: pd.Series) -> pd.Series:
    """ISO dates; an ISO date-time counts as its calendar day."""
    head = s.str.slice(0, 10)
    is_iso = s.str.fullmatch(r"\d{4}-\d{2}-\d{2}([T ].*)?").fillna(False)
    parsed = pd.to_datetime(head.where(is_iso), format="%Y-%m-%d", errors="coerce")
    return parsed.astype("datetime64[s]")


def _check_scores(df: pd.DataFrame, issues: _Issues) -> pd.Series:
    codes, u = _distinct(df, ["instrument", "score"])
    local = _Issues(len(u))
    inst = u["instrument"].str.strip()
    upper = inst.str.upper()
    inst = upper.where(upper.isin(list(INSTRUMENT_RANGES)), inst)
    score = pd.to_numeric(u["score"], errors="coerce").astype("float64")
    score = score.where(np.isfinite(score.to_numpy(dtype="float64", na_value=np.nan)))
    raw = _quote(u["score"])
    for name, (lo, hi, whole) in INSTRUMENT_RANGES.items():
        mine = (inst == name) & score.notna()
        kind = "integers " if whole else ""
        local.add(
            mine & ((score < lo) | (score > hi)),
            "out_of_range",
            f"{name} score " + raw + f" is outside {kind}{lo:g}-{hi:g}; fix: correct it "
            "(never clipped)",
        )
        if whole:
            local.add(
                mine & (score != np.floor(score)),
                "not_integer",
                f"{name} score " + raw + " is not a whole number; fix: correct it (never rounded)",
            )
    other = ~inst.isin(list(INSTRUMENT_RANGES)) & score.notna()
    local.add(other & (score < 0), "out_of_range", "score " + raw + " is negative; fix: correct it")
    local.add(
        other & (score > MAX_OTHER_SCORE),
        "out_of_range",
        "score "
        + raw
        + f" is above {MAX_OTHER_SCORE:g}, more than any instrument scores; fix: correct it",
    )
    issues.merge(local.codes[codes], local.messages[codes])
    return pd.Series(inst.to_numpy()[codes], index=df.index, dtype="string")


def _row_checks(name: str, df: pd.DataFrame, today) -> tuple[pd.DataFrame, _Issues]:
    table = TABLES[name]
    issues = _Issues(len(df))
    out = df.copy()
    if PROBLEM_CODE in out:
        code = out[PROBLEM_CODE].fillna("").astype(str)
        for c in sorted(set(code) - {""}):
            issues.add((code == c).to_numpy(), c, out[PROBLEM].astype("string"))
    reported = out[REPORTED].fillna("").astype(str) if REPORTED in out else None
    for col in table.columns:
        if col.name not in out:
            continue
        if reported is None or not reported.str.contains(col.name, regex=False).any():
            out[col.name] = _check_column(out, col, name, issues, today)
            continue
        local = _Issues(len(out))
        out[col.name] = _check_column(out, col, name, local, today)
        done = reported.str.split(";").map(lambda cols, c=col.name: c in cols).to_numpy()
        local.codes[done] = ""
        local.messages[done] = ""
        issues.merge(local.codes, local.messages)
    if name == "outcomes":
        out["instrument"] = _check_scores(out, issues)
    if name in ("sessions", "prescriptions") and "exercise" in out:
        out["category"] = _check_category(out, issues)
    return out, issues


def _check_category(df: pd.DataFrame, issues: _Issues) -> pd.Series:
    """Fill the category from the catalogue; a given category must agree with it."""
    if "category" not in df:
        df = df.assign(category=pd.NA)
    codes, u = _distinct(df, ["exercise", "category"])
    local = _Issues(len(u))
    cat = exercise_catalogue().set_index("exercise")["category"].astype("string")
    expected = u["exercise"].map(cat).astype("string")
    given = u["category"]
    clash = given.notna() & expected.notna() & (given != expected)
    local.add(
        clash,
        "category_mismatch",
        "category "
        + _quote(given)
        + " contradicts the catalogue ("
        + expected.fillna("")
        + " for "
        + u["exercise"]
        + "); fix: drop the category column or correct it",
    )
    issues.merge(local.codes[codes], local.messages[codes])
    filled = given.fillna(expected)
    return pd.Series(filled.to_numpy()[codes], index=df.index, dtype="string")


def _dates(df: pd.DataFrame, col: str) -> pd.Series:
    """ISO text to dates, parsed once per distinct value."""
    codes, uniq = pd.factorize(df[col], use_na_sentinel=True)
    parsed = pd.to_datetime(pd.Series(uniq, dtype="string"), format="%Y-%m-%d", errors="coerce")
    out = np.full(len(codes), np.datetime64("NaT", "s"))  # seconds: any year 1-9999 fits
    ok = codes >= 0
    out[ok] = parsed.astype("datetime64[s]").to_numpy()[codes[ok]]
    return pd.Series(out, index=df.index)


def _table_checks(
    name: str,
    df: pd.DataFrame,
    ok: np.ndarray,
    issues: _Issues,
    patients: pd.DataFrame | None,
    prescriptions: pd.DataFrame | None,
) -> None:
    """Checks across rows of the rows that passed the row checks: duplicates, then (against the
    accepted ``patients``) unknown patients and dates before enrolment or out of order."""
    live = pd.Series(ok, index=df.index)
    live &= ~_duplicate_rows(name, df, live, issues)
    if name == "patients":
        _duplicate_patients(df, live, issues)
        return
    if patients is None:
        return
    enrolled = patients.set_index("patient_id")["enrolled_on"]
    pid = df["patient_id"].astype("string")
    unknown = live & ~pid.isin(enrolled.index)
    near = _near_ids(pid, unknown, enrolled.index)
    issues.add(
        unknown.to_numpy(),
        "unknown_patient",
        "patient_id " + _quote(pid) + " is not in patients" + near
        + "; fix: add the patient or correct the id",
    )  # fmt: skip
    live &= ~unknown
    start = pid.map(enrolled)
    if name == "sessions":
        live &= ~_sessions_before_enrolment(df, live, start, issues)
        if prescriptions is not None and len(prescriptions):
            _phase_checks(df, live, issues, prescriptions)
    elif name == "outcomes":
        _outcomes_before_enrolment(df, live, start, issues)
    elif name in ("prescriptions", "cointerventions"):
        _backwards_intervals(df, live, issues)


def _duplicate_rows(name: str, df: pd.DataFrame, live: pd.Series, issues: _Issues) -> pd.Series:
    """Rows identical (in the canonical columns) to an earlier live row, reported with the
    earlier row's file and row number; returns their mask."""
    cols = [c for c in TABLES[name].names if c in df]
    key = df.loc[live, cols].astype("string").fillna("\x00")
    dup = key.duplicated(keep="first")
    mask = pd.Series(False, index=df.index)
    if not dup.any():
        return mask
    first = key.reset_index().merge(
        key[dup].drop_duplicates().reset_index(), on=cols, suffixes=("", "_d")
    )
    firsts = first.drop_duplicates(cols).set_index(cols)["index"]
    idx = key[dup].index
    origin = key.loc[idx].set_index(cols).index.map(firsts)
    msg = pd.Series("", index=df.index, dtype="string")
    msg[idx] = (
        "duplicate of "
        + df.loc[origin, FILE].astype("string").to_numpy()
        + " row "
        + df.loc[origin, ROW].astype("string").to_numpy()
        + "; fix: remove the repeated row"
    )
    mask[idx] = True
    issues.add(mask.to_numpy(), "duplicate_row", msg)
    return mask


def _duplicate_patients(df: pd.DataFrame, live: pd.Series, issues: _Issues) -> None:
    """A second live row of the same patient (with other values) in ``patients``."""
    again = live & df["patient_id"].where(live).duplicated(keep="first") & df["patient_id"].notna()
    issues.add(
        again.to_numpy(),
        "duplicate_patient",
        "patient_id " + _quote(df["patient_id"]) + " appears again with other "
        "values; fix: keep one row per patient",
    )


def _sessions_before_enrolment(
    df: pd.DataFrame, live: pd.Series, start: pd.Series, issues: _Issues
) -> pd.Series:
    """Sessions performed before their patient's enrolment; returns their mask."""
    early = live & (_dates(df, "performed_on") < start)
    issues.add(
        early.to_numpy(),
        "before_enrolment",
        "performed_on "
        + _quote(df["performed_on"])
        + " is before enrolment ("
        + start.dt.strftime("%Y-%m-%d").fillna("")
        + "); fix: correct the date or the enrolment date",
    )
    return early


def _outcomes_before_enrolment(
    df: pd.DataFrame, live: pd.Series, start: pd.Series, issues: _Issues
) -> None:
    """Assessments more than OUTCOME_LEEWAY_DAYS before their patient's enrolment."""
    early = live & (_dates(df, "assessed_on") < start - pd.Timedelta(days=OUTCOME_LEEWAY_DAYS))
    issues.add(
        early.to_numpy(),
        "before_enrolment",
        "assessed_on " + _quote(df["assessed_on"]) + " is more than "
        f"{OUTCOME_LEEWAY_DAYS} days before enrolment ("
        + start.dt.strftime("%Y-%m-%d").fillna("")
        + "); fix: correct the date",
    )


def _backwards_intervals(df: pd.DataFrame, live: pd.Series, issues: _Issues) -> None:
    """Prescriptions and co-interventions that end before they start."""
    backwards = live & (_dates(df, "end_on") < _dates(df, "start_on"))
    issues.add(
        backwards.to_numpy(),
        "bad_interval",
        "end_on "
        + _quote(df["end_on"])
        + " is before start_on "
        + _quote(df["start_on"])
        + "; fix: correct the dates",
    )


def _id_key(ids: pd.Series) -> pd.Series:
    """Identifiers compared without case and white space (``' p 001'`` ~ ``'P001'``)."""
    return ids.astype("string").str.replace(r"\s+", "", regex=True).str.casefold()


def _near_ids(pid: pd.Series, unknown: pd.Series, known: pd.Index) -> pd.Series:
    """``" (did you mean 'P001'?)"`` for unknown ids equal to known ones but for case/spaces."""
    out = pd.Series("", index=pid.index, dtype="string")
    if not unknown.any():
        return out
    keys = _id_key(pd.Series(known, dtype="string"))
    lookup = (
        pd.Series(known.astype("string"), index=keys.to_numpy())
        .groupby(level=0)
        .agg(lambda v: "' or '".join(sorted(v)))
    )
    near = _id_key(pid[unknown]).map(lookup)
    hit = near.notna()
    out[near.index[hit]] = " (did you mean '" + near[hit] + "'?)"
    return out


def _phase_checks(df, live, issues, prescriptions) -> None:
    """A session dated inside one phase's prescription window must carry that phase."""
    windows = prescriptions.groupby(["patient_id", "phase"], observed=True).agg(
        start=("start_on", "min"), end=("end_on", "max")
    )
    rows = df.index[live.to_numpy()]
    pid = df.loc[rows, "patient_id"]
    day = _dates(df.loc[rows], "performed_on")
    phase = df.loc[rows, "phase"].astype("string")
    inside = {}
    for ph in PHASES:
        w = windows.xs(ph, level="phase") if ph in windows.index.get_level_values(1) else None
        if w is None:
            inside[ph] = pd.Series(False, index=rows)
            continue
        start, end = pid.map(w["start"]), pid.map(w["end"])
        inside[ph] = ((day >= start) & (day <= end)).fillna(False)
        inside[ph + "_span"] = start.dt.strftime("%Y-%m-%d") + " to " + end.dt.strftime("%Y-%m-%d")
    own = np.where(phase == "guided", inside["guided"], inside["maintenance"])
    other = np.where(phase == "guided", inside["maintenance"], inside["guided"])
    bad = pd.Series(other & ~own, index=rows)
    if not bad.any():
        return
    b = bad[bad].index
    other_name = np.where(phase[b] == "guided", "maintenance", "guided")
    span = np.where(
        other_name == "guided",
        inside.get("guided_span", pd.Series("", index=rows))[b],
        inside.get("maintenance_span", pd.Series("", index=rows))[b],
    )
    msg = pd.Series("", index=df.index, dtype="object")
    msg[b] = (
        "phase '"
        + phase[b].to_numpy()
        + "' but "
        + df.loc[b, "performed_on"].astype("string").to_numpy()
        + " falls in the "
        + other_name
        + " prescription ("
        + span
        + "); fix: correct the phase or the date"
    )
    mask = np.zeros(len(df), dtype=bool)
    mask[df.index.get_indexer(b)] = True
    issues.add(mask, "phase_mismatch", msg.to_numpy())


# ------------------------------------------------------------------------------------- driver
def validate_records(
    records: dict[str, pd.DataFrame], *, today: dt.date | None = None
) -> ValidationResult:
    """Validate raw records of each canonical table (see the module docstring for the checks).

    Parameters
    ----------
    records : dict of str to DataFrame
        Per table name, raw records: canonical columns as text plus ``_source_file`` and
        ``_source_row`` (and optionally ``_date_formats``, the formats the source declared, for
        messages). Extra columns of ``patients`` are kept as attributes.
    today : datetime.date, optional
        Dates after it are "in the future" (default: today).

    Returns
    -------
    ValidationResult
    """
    today = today or dt.date.today()
    result = ValidationResult()
    checked: dict[str, tuple[pd.DataFrame, _Issues]] = {}
    for name in TABLES:
        if name in records:
            df = records[name].reset_index(drop=True)
            checked[name] = _row_checks(name, df, today)
    # Patients first: the others are checked against the accepted patients.
    patients = prescriptions = None
    for name in ("patients", "prescriptions", "sessions", "outcomes", "cointerventions"):
        if name not in checked:
            continue
        df, issues = checked[name]
        _table_checks(name, df, ~issues.bad, issues, patients, prescriptions)
        accepted, quarantined = _split(name, df, issues)
        result.accepted[name] = accepted
        result.quarantine[name] = quarantined
        if name == "patients":
            patients = accepted
        if name == "prescriptions":
            prescriptions = accepted
    return result


def _split(name: str, df: pd.DataFrame, issues: _Issues) -> tuple[pd.DataFrame, pd.DataFrame]:
    bad = issues.bad
    canon = [c for c in TABLES[name].names if c in df]
    extra = [c for c in df.columns if c not in canon and not c.startswith("_")]
    keep = canon + (extra if name == "patients" else [])
    accepted = coerce_table(name, df.loc[~bad, keep], source=f"validated {name}")
    q = df.loc[bad, [FILE, ROW, *canon]].copy()
    q.insert(2, "reason_code", issues.codes[bad])
    q.insert(3, "reason", issues.messages[bad])
    return accepted, q.reset_index(drop=True)
