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

_EXERCISES = tuple(exercise_catalogue()["exercise"])

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
                Column(
                    "sessions_per_week",
                    "int",
                    "Prescribed sessions per week.",
                    unit="sessions/week",
                    min=0,
                    max=14,
                ),
                Column(
                    "supervised_per_week",
                    "int",
                    "Of those, sessions supervised by a therapist.",
                    unit="sessions/week",
                    min=0,
                    max=14,
                    required=False,
                ),
                Column(
                    "sets",
                    "int",
                    "Prescribed sets per session.",
                    min=0,
                    max=20,
                    required=False,
                    dtype="Int16",
                ),
                Column(
                    "reps",
                    "int",
                    "Prescribed repetitions (or holds) per side per set.",
                    min=0,
                    max=200,
                    required=False,
                    dtype="Int16",
                ),
                Column(
                    "hold_s",
                    "int",
                    "Prescribed hold.",
                    unit="seconds",
                    min=0,
                    max=600,
                    required=False,
                    dtype="Int16",
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
                Column("sets", "int", "Sets done.", min=0, max=20, required=False, dtype="Int16"),
                Column(
                    "reps",
                    "int",
                    "Repetitions (or holds) per side per set done.",
                    min=0,
                    max=200,
                    required=False,
                    dtype="Int16",
                ),
                Column(
                    "hold_s",
                    "int",
                    "Hold.",
                    unit="seconds",
                    min=0,
                    max=600,
                    required=False,
                    dtype="Int16",
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
                    "NPRS (0-10 integer pain), ODI (Oswestry 0-100), RMDQ (0-24), or "
                    "another named instrument.",
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
    out = df.copy()
    for col in table.columns:
        if col.name not in out.columns:
            continue
        out[col.name] = _coerce_column(out[col.name], col, table.name, source)
    return out.reset_index(drop=True)


def _first_bad(values: pd.Series, ok: pd.Series) -> tuple[int, object]:
    pos = int(np.flatnonzero(~np.asarray(ok, dtype=bool))[0])
    value = values.iloc[pos]
    return pos + 1, value.item() if isinstance(value, np.generic) else value


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
        if bad.any():
            row, value = _first_bad(s, ~bad)
            raise CohortFormatError(
                f"{where}, row {row}: {value!r} is not a date in YYYY-MM-DD form. "
                f"Fix: write dates as ISO 8601 (e.g. 2024-03-01)."
            )
        early = parsed.notna() & (parsed < pd.Timestamp(EARLIEST_DATE))
        if early.any():
            row, value = _first_bad(s, ~early)
            raise CohortFormatError(
                f"{where}, row {row}: {value!r} is before {EARLIEST_DATE.isoformat()}. "
                f"Fix: correct the date (ingest quarantines such dates)."
            )
        return parsed.astype(target)
    if col.kind == "category":
        values = s.astype("str") if not isinstance(s.dtype, pd.CategoricalDtype) else s
        known = values.isin(target.categories) | values.isna()
        if not known.all():
            row, value = _first_bad(values, known)
            raise CohortFormatError(
                f"{where}, row {row}: {value!r} is not one of {list(target.categories)}. "
                f"Fix: map the value to an allowed one (ingest --mapping)."
            )
        return values.astype(target)
    if col.kind == "bool":
        if s.dtype == bool:
            return s
        words = {"true": True, "false": False, "1": True, "0": False}
        mapped = s.astype("str").str.strip().str.lower().map(words).where(s.notna())
        bad = mapped.isna()
        if bad.any():
            row, value = _first_bad(s, ~bad)
            raise CohortFormatError(
                f"{where}, row {row}: {value!r} is not true/false. Fix: use true or false."
            )
        return mapped.astype(bool)
    if col.kind == "int":
        num = _finite(s, where)
        bad = (num.isna() & s.notna()) | (num.notna() & (num != np.floor(num)))
        if bad.any():
            row, value = _first_bad(s, ~bad)
            raise CohortFormatError(
                f"{where}, row {row}: {value!r} is not a whole number. "
                f"Fix: correct the value; ptanalytics never rounds data."
            )
        return num.astype(target)
    if col.kind == "float":
        num = _finite(s, where)
        bad = num.isna() & s.notna()
        if bad.any():
            row, value = _first_bad(s, ~bad)
            raise CohortFormatError(
                f"{where}, row {row}: {value!r} is not a number. Fix: correct the value."
            )
        return num.astype(target)
    # id / str
    return s.astype(target)


def _finite(s: pd.Series, where: str) -> pd.Series:
    """Numbers of ``s``; a non-finite one (inf, -inf, nan) is refused naming its row."""
    num = pd.to_numeric(s, errors="coerce")
    values = num.to_numpy(dtype="float64", na_value=np.nan)
    infinite = pd.Series(np.isinf(values), index=s.index)
    if not pd.api.types.is_numeric_dtype(s.dtype):  # text: 'nan' too is not a number
        text = s.astype("string").str.strip().str.lower().str.lstrip("+-")
        infinite |= text.isin(["nan", "inf", "infinity"]).fillna(False)
    infinite &= s.notna()
    if infinite.any():
        row, value = _first_bad(s, ~infinite)
        raise CohortFormatError(
            f"{where}, row {row}: {value!r} is not a finite number. Fix: correct the value or "
            f"leave it empty (ingest quarantines such values)."
        )
    return num


def data_dictionary_markdown() -> str:
    """The data dictionary of the canonical cohort format, as Markdown."""
    lines = [
        "# Data dictionary: the ptanalytics cohort format",
        "",
        "<!-- Generated from src/ptanalytics/cohort/schema.py by `make docs`; "
        "do not edit by hand. -->",
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
    ]
    kind_names = {
        "id": "string",
        "date": "date",
        "int": "integer",
        "float": "number",
        "bool": "boolean",
        "category": "category",
        "str": "string",
    }
    for table in TABLES.values():
        lines += [
            f"## {table.name}",
            "",
            f"Grain: {table.grain}.",
            "",
            "| column | type | unit | allowed values | required | description |",
            "|---|---|---|---|---|---|",
        ]
        for c in table.columns:
            if c.allowed and len(c.allowed) <= 8:
                allowed = ", ".join(f"`{a}`" for a in c.allowed)
            elif c.allowed:
                allowed = "exercise catalogue identifiers (`docs/exercise_catalogue.md`)"
            elif c.min is not None:
                allowed = f"{c.min:g} to {c.max:g}"
            else:
                allowed = ""
            req = "yes" if c.required else "optional"
            lines.append(
                f"| `{c.name}` | {kind_names[c.kind]} | {c.unit} | {allowed} | {req} | "
                f"{c.description} |"
            )
        lines.append("")
    lines += [
        "## Instrument ranges",
        "",
        "| instrument | range | notes |",
        "|---|---|---|",
        "| `NPRS` | integers 0-10 | Numeric Pain Rating Scale; 0 no pain, 10 worst imaginable |",
        "| `ODI` | 0-100 | Oswestry Disability Index, percent; simulated scores are even "
        "integers (10 items scored 0-5, doubled) |",
        "| `RMDQ` | integers 0-24 | Roland-Morris Disability Questionnaire |",
        "",
    ]
    return "\n".join(lines)
