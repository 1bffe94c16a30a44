"""The canonical cohort format: tables, columns, types, units and allowed values.

This module is the single source of the data dictionary: ``docs/data_dictionary.md`` is generated
from it (``make docs``) and a test keeps the two in step.
Loading a cohort coerces every known column to the type given here; columns not listed are kept as
they are (for example trial arm or extra covariates in ``patients``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ptanalytics.cohort.catalogue import CATEGORIES, exercise_catalogue
from ptanalytics.exceptions import CohortFormatError
from ptanalytics.vocab import (
    CHRONICITIES,
    COINTERVENTION_KINDS,
    EARLIEST_DATE,
    INSTRUMENT_RANGES,
    PHASES,
    SEXES,
)

__all__ = [
    "CHRONICITIES",
    "COINTERVENTION_KINDS",
    "EARLIEST_DATE",
    "PHASES",
    "SEXES",
    "TABLES",
    "Column",
    "Table",
    "coerce_table",
    "data_dictionary_markdown",
    "empty_table",
]


@dataclass(frozen=True)
class Column:
    """One column of a canonical table."""

    name: str
    kind: str  # id | date | int | float | bool | category | str
    description: str
    required: bool = True
    unit: str = ""
    allowed: tuple[str, ...] | None = None  # closed vocabularies (categoricals)
    min: float | None = None
    max: float | None = None
    dtype: str = ""  # pandas dtype after loading; derived from kind when empty

    @property
    def pandas_dtype(self):
        if self.kind == "category":
            return pd.CategoricalDtype(list(self.allowed or ()))
        return self.dtype or _KIND_DTYPES[self.kind]


@dataclass(frozen=True)
class Table:
    """A canonical table: its name, grain and columns."""

    name: str
    grain: str
    columns: tuple[Column, ...]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


_KIND_DTYPES = {
    "id": "str",
    "date": "datetime64[s]",
    "int": "Int64",
    "float": "float64",
    "bool": "bool",
    "str": "str",
}

#: The text a boolean column of a cohort file may hold. Stricter than ingest on purpose: ingest
#: reads every word of ``vocab.TRUE_WORDS`` / ``vocab.FALSE_WORDS`` and writes ``true``/``false``.
_BOOL_TEXT = {"true": True, "false": False, "1": True, "0": False}

_EXERCISES = tuple(exercise_catalogue()["exercise"])


def _dose_columns(sets: str, reps: str, hold: str) -> tuple[Column, Column, Column]:
    """The optional dose columns ``sets``, ``reps`` and ``hold_s`` with their descriptions."""
    dose = {"kind": "int", "min": 0, "required": False, "dtype": "Int16"}
    return (
        Column("sets", description=sets, max=20, **dose),
        Column("reps", description=reps, max=200, **dose),
        Column("hold_s", description=hold, unit="seconds", max=600, **dose),
    )


def _per_week(name: str, description: str, *, required: bool = True) -> Column:
    """A count of sessions per week (0 to 14)."""
    return Column(name, "int", description, unit="sessions/week", min=0, max=14, required=required)


def _span(instrument: str) -> str:
    """An instrument's score range as ``lo-hi`` (``0-10``)."""
    lo, hi, _ = INSTRUMENT_RANGES[instrument]
    return f"{lo:g}-{hi:g}"


_PID = Column("patient_id", "id", "Pseudonymous patient identifier (never a name, MRN or SSN).")
_EXERCISE = Column("exercise", "category", "Exercise (catalogue identifier).", allowed=_EXERCISES)
_CATEGORY = Column(
    "category", "category", "Exercise category (from the catalogue).", allowed=CATEGORIES
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "patients",
            "one row per patient",
            (
                _PID,
                Column("enrolled_on", "date", "Date the program started (week 0, day 0)."),
                Column(
                    "age", "int", "Age at enrolment.", unit="years", min=0, max=120, required=False
                ),
                Column("sex", "category", "Sex as recorded.", allowed=SEXES, required=False),
                Column(
                    "chronicity",
                    "category",
                    "Duration of the current episode at enrolment: acute < 6 weeks, "
                    "subacute 6-12 weeks, chronic > 12 weeks.",
                    allowed=CHRONICITIES,
                    required=False,
                ),
                Column(
                    "guided_weeks",
                    "int",
                    "Planned length of the guided (supervised) phase at enrolment.",
                    unit="weeks",
                    min=0,
                    max=104,
                    required=False,
                ),
                Column(
                    "followup_weeks",
                    "int",
                    "Planned follow-up horizon: weeks from enrolment to the final assessment.",
                    unit="weeks",
                    min=0,
                    max=520,
                    required=False,
                ),
                Column("clinic_id", "id", "Clinic identifier.", required=False),
                Column("therapist_id", "id", "Treating therapist identifier.", required=False),
            ),
        ),
        Table(
            "prescriptions",
            "one row per patient x phase x exercise",
            (
                _PID,
                Column("phase", "category", "Program phase.", allowed=PHASES),
                _EXERCISE,
                _CATEGORY,
                _per_week("sessions_per_week", "Prescribed sessions per week."),
                _per_week(
                    "supervised_per_week",
                    "Of those, sessions supervised by a therapist.",
                    required=False,
                ),
                *_dose_columns(
                    "Prescribed sets per session.",
                    "Prescribed repetitions (or holds) per side per set.",
                    "Prescribed hold.",
                ),
                Column("start_on", "date", "First day of the prescription."),
                Column("end_on", "date", "Last day of the prescription (inclusive)."),
            ),
        ),
        Table(
            "sessions",
            "one row per exercise performed in a session",
            (
                _PID,
                Column("performed_on", "date", "Day the exercise was done."),
                Column("phase", "category", "Program phase on that day.", allowed=PHASES),
                _EXERCISE,
                _CATEGORY,
                Column("supervised", "bool", "Done under a therapist's supervision."),
                *_dose_columns(
                    "Sets done.", "Repetitions (or holds) per side per set done.", "Hold."
                ),
                Column(
                    "duration_min",
                    "float",
                    "Time spent on the exercise. Left empty in the export, ingest fills it with "
                    "the catalogue's default minutes for the exercise (see duration_imputed).",
                    unit="minutes",
                    min=0,
                    max=240,
                    required=False,
                ),
                Column(
                    "duration_imputed",
                    "bool",
                    "True when duration_min was not logged and ingest took the exercise's "
                    "default minutes from the catalogue; count it for data quality "
                    "(sessions['duration_imputed'].sum()).",
                    required=False,
                ),
            ),
        ),
        Table(
            "outcomes",
            "one row per assessment of one instrument",
            (
                _PID,
                Column("assessed_on", "date", "Day of the assessment."),
                Column(
                    "instrument",
                    "str",
                    f"NPRS ({_span('NPRS')} integer pain), ODI (Oswestry {_span('ODI')}), "
                    f"RMDQ ({_span('RMDQ')}), or another named instrument.",
                ),
                Column("score", "float", "Score on the instrument's own scale.", min=0, max=100),
            ),
        ),
        Table(
            "cointerventions",
            "one row per co-intervention episode",
            (
                _PID,
                Column("kind", "category", "Co-intervention.", allowed=COINTERVENTION_KINDS),
                Column("start_on", "date", "First day of the episode."),
                Column("end_on", "date", "Last day of the episode (inclusive)."),
            ),
        ),
    )
}


def empty_table(name: str) -> pd.DataFrame:
    """An empty frame with every column of table ``name`` in its canonical type."""
    table = TABLES[name]
    return pd.DataFrame({c.name: pd.Series([], dtype=c.pandas_dtype) for c in table.columns})


def coerce_table(name: str, df: pd.DataFrame, *, source: str = "<frame>") -> pd.DataFrame:
    """Return ``df`` with every known column of table ``name`` in its canonical type.

    Raises :class:`CohortFormatError` naming the source, column, first offending row (1-based data
    row) and value when a required column is absent or a value cannot be represented. Never
    rounds, clips or drops a value; columns the schema does not list are kept unchanged.
    """
    table = TABLES[name]
    missing = [c for c in table.required if c not in df.columns]
    if missing:
        raise CohortFormatError(
            f"{source}: table '{name}' lacks required column(s) {missing}; "
            f"found {list(df.columns)}. Fix: rename or add the column(s) "
            f"(see docs/data_dictionary.md)."
        )
    out = df.copy(deep=False)  # copy-on-write: assigning a column never touches ``df``
    for col in table.columns:
        if col.name not in out.columns:
            continue
        out[col.name] = _coerce_column(out[col.name], col, table.name, source)
    return out.reset_index(drop=True)


def _first_bad(values: pd.Series, ok: pd.Series) -> tuple[int, object]:
    pos = int(np.flatnonzero(~np.asarray(ok, dtype=bool))[0])
    value = values.iloc[pos]
    return pos + 1, value.item() if isinstance(value, np.generic) else value


def _refuse_bad(values: pd.Series, bad: pd.Series, where: str, problem: str) -> None:
    """Refuse ``values`` when ``bad`` holds anywhere, naming the first such row and its value."""
    if bad.any():
        row, value = _first_bad(values, ~bad)
        raise CohortFormatError(f"{where}, row {row}: {value!r} {problem}")


def _coerce_column(s: pd.Series, col: Column, table: str, source: str) -> pd.Series:
    """Coerce once per distinct value when the column is text (far fewer values than rows)."""
    text = s.dtype == "string" or s.dtype == "str" or s.dtype == object
    if col.kind in ("id", "str", "bool") or not text:
        return _coerce_values(s, col, table, source)
    codes, uniq = pd.factorize(s, use_na_sentinel=True)
    if not len(uniq):  # every value missing (an optional column left empty in every row)
        return pd.Series(index=s.index, dtype=col.pandas_dtype)
    try:
        converted = _coerce_values(pd.Series(uniq, dtype=s.dtype), col, table, source)
    except CohortFormatError:
        return _coerce_values(s, col, table, source)  # again on the rows, for the row number
    out = converted.take(np.where(codes < 0, 0, codes)) if len(converted) else converted
    out = out.reset_index(drop=True)
    if (codes < 0).any():
        out = out.where(codes >= 0)
    out.index = s.index
    return out.astype(col.pandas_dtype) if len(converted) else s.astype(col.pandas_dtype)


def _coerce_values(s: pd.Series, col: Column, table: str, source: str) -> pd.Series:
    target = col.pandas_dtype
    where = f"{source}: table '{table}', column '{col.name}'"
    if col.kind == "date":
        if isinstance(s.dtype, np.dtype) and s.dtype.kind == "M":
            return s.astype(target)
        parsed = pd.to_datetime(s, format="%Y-%m-%d", errors="coerce")
        bad = parsed.isna() & s.notna()
        _refuse_bad(
            s,
            bad,
            where,
            "is not a date in YYYY-MM-DD form. Fix: write dates as ISO 8601 (e.g. 2024-03-01).",
        )
        early = parsed.notna() & (parsed < pd.Timestamp(EARLIEST_DATE))
        _refuse_bad(
            s,
            early,
            where,
            f"is before {EARLIEST_DATE.isoformat()}. "
            "Fix: correct the date (ingest quarantines such dates).",
        )
        return parsed.astype(target)
    if col.kind == "category":
        if isinstance(s.dtype, pd.CategoricalDtype) and set(s.dtype.categories) <= set(
            target.categories
        ):
            return s.astype(target)  # every value is one of its categories: all allowed
        values = s.astype("str") if not isinstance(s.dtype, pd.CategoricalDtype) else s
        known = values.isin(target.categories) | values.isna()
        _refuse_bad(
            values,
            ~known,
            where,
            f"is not one of {list(target.categories)}. "
            f"Fix: map the value to an allowed one (ingest --mapping).",
        )
        return values.astype(target)
    if col.kind == "bool":
        if s.dtype == bool:
            return s
        mapped = s.astype("str").str.strip().str.lower().map(_BOOL_TEXT).where(s.notna())
        bad = mapped.isna()
        _refuse_bad(s, bad, where, "is not true/false. Fix: use true or false.")
        return mapped.astype(bool)
    if col.kind == "int":
        if _integers_that_fit(s, target):
            return s.astype(target)
        num = _finite(s, where)
        bad = (num.isna() & s.notna()) | (num.notna() & (num != np.floor(num)))
        _refuse_bad(
            s,
            bad,
            where,
            "is not a whole number. Fix: correct the value; ptanalytics never rounds data.",
        )
        limits = np.iinfo(pd.api.types.pandas_dtype(target).numpy_dtype)
        _refuse_bad(
            s,
            num.notna() & ((num < limits.min) | (num > limits.max)),
            where,
            f"is outside the range the column holds ({limits.min} to {limits.max}). Fix: "
            "correct the value (it would otherwise wrap around).",
        )
        return num.astype(target)
    if col.kind == "float":
        if pd.api.types.is_float_dtype(s.dtype) or _integers_that_fit(s, np.dtype("int64")):
            values = s.to_numpy(dtype="float64", na_value=np.nan)
            _refuse_bad(
                s,
                pd.Series(np.isinf(values), index=s.index),
                where,
                "is not a finite number. Fix: correct the value or "
                "leave it empty (ingest quarantines such values).",
            )
            return s.astype(target)
        num = _finite(s, where)
        bad = num.isna() & s.notna()
        _refuse_bad(s, bad, where, "is not a number. Fix: correct the value.")
        return num.astype(target)
    # id / str
    return s.astype(target)


def _integers_that_fit(s: pd.Series, target) -> bool:
    """Whether ``s`` already holds integers (not booleans) within ``target``'s range: then
    casting is exact and no value needs checking one by one (Parquet written by us)."""
    dtype = s.dtype
    if not pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        return False
    target = pd.api.types.pandas_dtype(target)
    limits = np.iinfo(getattr(target, "numpy_dtype", target))
    if s.notna().sum() == 0:
        return True
    return bool(limits.min <= s.min() and s.max() <= limits.max)


def _finite(s: pd.Series, where: str) -> pd.Series:
    """Numbers of ``s``; a non-finite one (inf, -inf, nan) is refused naming its row."""
    num = pd.to_numeric(s, errors="coerce")
    values = num.to_numpy(dtype="float64", na_value=np.nan)
    infinite = pd.Series(np.isinf(values), index=s.index)
    if not pd.api.types.is_numeric_dtype(s.dtype):  # text: 'nan' too is not a number
        text = s.astype("string").str.strip().str.lower().str.lstrip("+-")
        infinite |= text.isin(["nan", "inf", "infinity"]).fillna(False)
    infinite &= s.notna()
    _refuse_bad(
        s,
        infinite,
        where,
        "is not a finite number. Fix: correct the value or "
        "leave it empty (ingest quarantines such values).",
    )
    return num


#: The data dictionary's opening: the folder layout and the keys of ``cohort.json``.
_DICTIONARY_INTRO: tuple[str, ...] = (
    "# Data dictionary: the ptanalytics cohort format",
    "",
    "<!-- Generated from src/ptanalytics/cohort/schema.py by `make docs`; do not edit by hand. -->",
    "",
    "A cohort is one folder with one file per table (`<table>.parquet` or `<table>.csv`, "
    "identical columns either way) and `cohort.json`. A large cohort may store a table as a "
    "folder of Parquet parts instead (`<table>/part-00000.parquet`, ...; written by "
    "`simulate_to_disk`, read by `load_cohort` and the DuckDB/Spark aggregation), with "
    "`chunking` in `cohort.json`. Simulated cohorts add `truth.json` "
    "(generating parameters and true effects) and `truth_patients` (per-patient latent "
    "values). Dates are ISO 8601 days (`YYYY-MM-DD`); CSV files are UTF-8 with a header row.",
    "Columns marked *optional* may be absent; columns not listed here are kept as extra "
    "attributes (for example a trial arm in `patients`).",
    "",
    "## cohort.json",
    "",
    "| key | meaning |",
    "|---|---|",
    "| `format_version` | version of this format (integer; currently 1) |",
    "| `source` | `simulated`, or a description of the exports the cohort came from |",
    "| `created` | UTC time the cohort was written (ISO 8601); `null` for simulated cohorts, "
    "which are a pure function of `ptanalytics_version`, `seed` and `config_sha256`, so that "
    "the same seed gives byte-identical files |",
    "| `ptanalytics_version` | version of ptanalytics that wrote the cohort |",
    "| `written_by` | `ptanalytics`: marks the folder as an output that `--overwrite` may "
    "replace (a non-empty folder without it, or with files ptanalytics did not write, is "
    "never replaced) |",
    "| `csv_neutralised` | `quote-prefix-v1`: in every CSV of the folder a text cell (or "
    "header) starting with `=`, `+`, `-`, `@`, tab, carriage return or `'` was written with "
    "one `'` prefixed (OWASP CSV injection; numbers are never touched); `load_cohort` strips "
    "exactly one, so values read back as they were. Other programs see the `'` |",
    "| `file_format` | `parquet` or `csv` |",
    "| `row_counts` | rows per table, checked when the cohort is loaded and by "
    "`ptanalytics validate` (which requires one for every table file) |",
    "| `seed`, `config_sha256` | simulated cohorts: the seed and a hash of the configuration |",
    "| `ingest` | ingested cohorts: sources (rows read, used, set aside), tables (records, "
    "accepted, quarantined), quarantine reasons, warnings, `nominal_dates` "
    "(docs/ingest.md) |",
    "| `deidentified` | de-identified cohorts: what was done and which columns were dropped |",
    "",
    "Ingested cohorts also have `quarantine/<table>.csv` (rejected records with their source "
    "file, row and reason) and `quarantine/source_rows.csv` (rows set aside before mapping).",
    "",
)
_KIND_NAMES = {
    "id": "string",
    "date": "date",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "category": "category",
    "str": "string",
}
#: What the data dictionary says about each instrument beside its range (vocab.INSTRUMENT_RANGES).
_INSTRUMENT_NOTES = {
    "NPRS": "Numeric Pain Rating Scale; 0 no pain, 10 worst imaginable",
    "ODI": "Oswestry Disability Index, percent; simulated scores are even integers (10 items "
    "scored 0-5, doubled)",
    "RMDQ": "Roland-Morris Disability Questionnaire",
}


def data_dictionary_markdown() -> str:
    """The data dictionary of the canonical cohort format, as Markdown."""
    lines = list(_DICTIONARY_INTRO)
    for table in TABLES.values():
        lines += _table_markdown(table)
    lines += _instruments_markdown()
    return "\n".join(lines)


def _table_markdown(table: Table) -> list[str]:
    """One table's section: its grain and a row per column."""
    lines = [
        f"## {table.name}",
        "",
        f"Grain: {table.grain}.",
        "",
        "| column | type | unit | allowed values | required | description |",
        "|---|---|---|---|---|---|",
    ]
    for c in table.columns:
        req = "yes" if c.required else "optional"
        lines.append(
            f"| `{c.name}` | {_KIND_NAMES[c.kind]} | {c.unit} | {_allowed_markdown(c)} | {req} | "
            f"{c.description} |"
        )
    lines.append("")
    return lines


def _allowed_markdown(c: Column) -> str:
    """A column's allowed values: the vocabulary (the catalogue when long), or its range."""
    if c.allowed and len(c.allowed) <= 8:
        return ", ".join(f"`{a}`" for a in c.allowed)
    if c.allowed:
        return "exercise catalogue identifiers (`docs/exercise_catalogue.md`)"
    if c.min is not None:
        return f"{c.min:g} to {c.max:g}"
    return ""


def _instruments_markdown() -> list[str]:
    """The instrument ranges of :data:`ptanalytics.vocab.INSTRUMENT_RANGES` with their notes."""
    lines = [
        "## Instrument ranges",
        "",
        "| instrument | range | notes |",
        "|---|---|---|",
    ]
    for name, (_, _, whole) in INSTRUMENT_RANGES.items():
        span = f"integers {_span(name)}" if whole else _span(name)
        lines.append(f"| `{name}` | {span} | {_INSTRUMENT_NOTES[name]} |")
    lines.append("")
    return lines
