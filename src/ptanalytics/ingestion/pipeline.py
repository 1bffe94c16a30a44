"""Ingest source exports into a cohort: read, map, validate, quarantine, write.

Two levels of accounting, both exact:

* **source rows**: every row of every file is either *used* (it fed at least one table) or *set
  aside* (unparseable, blank, or excluded by a mapping filter, e.g. healthy controls), with its
  reason in ``quarantine/source_rows.csv``;
* **table records**: every record a used row produced (a wide outcome row gives one record per
  instrument with a value) is either *accepted* or *quarantined* with its reasons in
  ``quarantine/<table>.csv``.

``cohort.json`` stores both under ``ingest``; :func:`format_ingest_summary` prints them.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from ptanalytics._hashing import file_sha256
from ptanalytics.cohort.catalogue import exercise_catalogue
from ptanalytics.cohort.container import Cohort
from ptanalytics.cohort.schema import TABLES
from ptanalytics.exceptions import IngestError, MappingError
from ptanalytics.ingestion.mapping import (
    DEFAULT_DATE_FORMATS,
    MAX_MAPPING_BYTES,
    ColumnRule,
    Mapping,
    SourceRule,
    TableRule,
    load_mapping,
)
from ptanalytics.ingestion.readers import (
    FILE,
    ROW,
    SourceTable,
    header_looks_like_data,
    is_workbook,
    read_source_table,
    sheets_with_data,
    workbook_sheets,
)
from ptanalytics.ingestion.validate import (
    FORMATS,
    PROBLEM,
    PROBLEM_CODE,
    REPORTED,
    ValidationResult,
    validate_records,
)

__all__ = [
    "IngestResult",
    "format_ingest_check",
    "format_ingest_line",
    "format_ingest_summary",
    "impute_session_minutes",
    "ingest",
    "validate_cohort_dir",
]

SOURCE_QUARANTINE = "source_rows"
_DERIVABLE = {"category"}  # filled in from the exercise catalogue
_FHIR_SUFFIXES = (".json", ".ndjson")
_T = TypeVar("_T")


@dataclass
class IngestResult:
    """What :func:`ingest` produced.

    Attributes
    ----------
    cohort : Cohort
        Accepted rows as canonical tables, with ``metadata["ingest"]`` (the summary) and
        ``quarantine`` (rejected rows per table, plus ``source_rows``).
    sources : pandas.DataFrame
        One row per source (a file, or one sheet of a workbook): ``file``, ``sheet`` (empty
        unless a workbook), ``format``, ``encoding``, ``delimiter``, ``rows_read``, ``rows_used``,
        ``rows_set_aside``, ``tables`` (what it fed), ``mapped`` (each table's canonical columns
        and the source columns they come from), ``sha256`` (hex SHA-256 of the file's bytes as
        read; the same for every sheet of one workbook).
    tables : pandas.DataFrame
        One row per table: ``table``, ``records``, ``accepted``, ``quarantined``.
    reasons : pandas.DataFrame
        Quarantined records per ``table`` and ``reason_code``: ``rows``.
    warnings : list of str
        Things to look at (identifier-like columns, conflicting patient attributes, files without
        data rows, tables emptied by quarantine, ids that differ from a patient's only in case or
        spaces). They never contain patient data.
    imputed : dict or None
        Session minutes (see :func:`impute_session_minutes`): ``rows``, ``imputed``,
        ``still_missing``; None without sessions.
    """

    cohort: Cohort
    sources: pd.DataFrame
    tables: pd.DataFrame
    reasons: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    imputed: dict[str, int] | None = None

    @property
    def quarantined(self) -> int:
        """Records quarantined plus source rows set aside."""
        return int(self.tables["quarantined"].sum() + self.sources["rows_set_aside"].sum())


# ------------------------------------------------------------------------------------ mapping
def _auto_rule(path: Path, table: SourceTable | None, sheet: str | None = None) -> SourceRule:
    """Without a mapping: the table named like the file (or sheet), else the one whose columns
    it has."""
    stem = (sheet or path.stem).strip().lower()
    columns = set(table.data.columns) if table is not None else set()
    named = [n for n in TABLES if stem == n or stem.startswith(n + "_")]
    if named:
        name = named[0]
    else:
        fits = [n for n, t in TABLES.items() if set(t.required) - _DERIVABLE <= columns]
        if len(fits) != 1:
            found = sorted(c for c in columns if not c.startswith("_"))
            raise IngestError(
                f"{path}: cannot tell which table this file feeds ({_columns_text(found)}). Fix: "
                f"name it "
                f"after a table (e.g. sessions.csv or sessions_2024.csv) with the canonical "
                f"columns, or give a mapping file (--mapping)."
            )
        name = fits[0]
    cols = {c: ColumnRule(column=c) for c in TABLES[name].names if c in columns}
    return SourceRule(
        match=path.name,
        tables=(TableRule(name, cols, keep_extra_columns=True),),
        sheet=sheet,
    )


def _columns_text(columns: list[str]) -> str:
    """The source's columns for a message; never the values of a headerless file's first row."""
    if header_looks_like_data(columns):
        return (
            f"{len(columns)} column(s) whose names look like values: the first line seems to be "
            f"a data row, not a header (its values are not shown); add a header row"
        )
    return "columns: " + ", ".join(columns)


def _plan(path: Path, mapping: Mapping | None) -> list[tuple[SourceRule | None, str | None]]:
    """The (rule, sheet) pairs that read one file; rule None: decided from the file itself."""
    workbook = is_workbook(path)
    if mapping is None:
        if workbook:
            sheets = workbook_sheets(path)
            named = [sh for sh in sheets if _auto_table(sh)]
            return [(None, sh) for sh in named] or [(None, sheets[0])]
        return [(None, None)]
    rules = mapping.rules_for(path, workbook=workbook)
    if not rules:
        sheet_rules = [r for r in mapping.sources if r.matches(path) and r.sheet is not None]
        if sheet_rules:
            raise MappingError(
                f"{mapping.path}: {sheet_rules[0].label} names a sheet, but {path.name} is not "
                f"an Excel workbook. Fix: drop 'sheet' or narrow 'match' to the workbook."
            )
        raise MappingError(
            f"{mapping.path}: no [[sources]] entry matches {path.name}. Fix: add one with "
            f"match = '{path.name}' (or a pattern)."
        )
    return [(r, r.sheet) for r in rules]


def _auto_table(name: str) -> bool:
    stem = name.strip().lower()
    return any(stem == n or stem.startswith(n + "_") for n in TABLES)


def _take(
    src: SourceTable,
    rule: ColumnRule,
    where: str,
    mapping_path: str,
    frame: pd.DataFrame | None = None,
    canonical: str = "",
) -> pd.Series:
    """One canonical column from the source: a column (recoded, extracted) or a constant.

    Values an ``extract`` pattern does not match are kept as they are and flagged in ``frame``
    (``no_pattern_match``), so that validation quarantines them with the value and the pattern.
    """
    data = src.data
    if rule.column is not None:
        if rule.column not in data.columns:
            found = [c for c in data.columns if not c.startswith("_")]
            raise MappingError(
                f"{mapping_path}: {where} names column '{rule.column}', which {_label(src)} "
                f"does not have ({_columns_text(found)}). Fix: correct the mapping."
            )
        s = data[rule.column]
    else:
        s = pd.Series(rule.value, index=data.index, dtype="string")
    if rule.values is not None:
        s = s.map(rule.values).astype("string").fillna(s)
    if rule.extract is not None:
        got = s.str.extract(rule.extract, expand=False).astype("string")
        bad = s.notna() & got.isna()
        if frame is not None and bad.any():
            name = canonical or where
            message = (
                f"{name} "
                + _quote(s)
                + f" (column '{rule.column}') does not match the pattern '{rule.extract}'; fix: "
                f"correct the value, or the pattern ({where}.extract in the mapping)"
            )
            _flag(frame, bad, "no_pattern_match", message, name)
        s = got.where(~bad, s).str.strip()
    return s


def _quote(values: pd.Series) -> pd.Series:
    return "'" + values.astype("string").fillna("") + "'"


def _flag(frame: pd.DataFrame, mask: pd.Series, code: str, message, column: str = "") -> None:
    """Add a problem (code, message) to the rows of ``frame`` under ``mask``, in place."""
    mask = pd.Series(np.asarray(mask, dtype=bool), index=frame.index)
    if not mask.any():
        return
    for col in (PROBLEM_CODE, PROBLEM, REPORTED):
        if col not in frame:
            frame[col] = pd.Series("", index=frame.index, dtype="object")
        frame[col] = frame[col].fillna("").astype("object")
    msg = message if isinstance(message, str) else pd.Series(message, index=frame.index)
    msg = pd.Series(msg, index=frame.index).astype("object")
    for col, add, sep in (
        (PROBLEM_CODE, pd.Series(code, index=frame.index), ";"),
        (PROBLEM, msg, "; "),
        (REPORTED, pd.Series(column, index=frame.index), ";"),
    ):
        old = frame.loc[mask, col]
        frame.loc[mask, col] = np.where(old == "", add[mask], old + sep + add[mask])


def _label(src: SourceTable) -> str:
    """A source as messages name it: the file, and the sheet of a workbook."""
    return f"{src.path.name}[{src.sheet}]" if src.sheet else src.path.name


def _to_iso(s: pd.Series, formats: tuple[str, ...]) -> pd.Series:
    """Dates in the declared formats, as ISO text; unparsed values unchanged."""
    if formats == DEFAULT_DATE_FORMATS:
        return s
    out = s.copy()
    todo = s.notna()
    for fmt in formats:
        parsed = pd.to_datetime(s.where(todo), format=fmt, errors="coerce")
        hit = parsed.notna()
        out[hit] = parsed[hit].dt.strftime("%Y-%m-%d")
        todo &= ~hit
    return out


def _records(
    src: SourceTable, rule: SourceRule, trule: TableRule, mapping_path: str, warnings: list[str]
) -> pd.DataFrame:
    """Raw canonical records of one table from one (filtered, missing-cleaned) source."""
    table = TABLES[trule.table]
    where = f"{trule.table}"
    frame = pd.DataFrame({FILE: src.data[FILE], ROW: src.data[ROW]})
    for c, r in trule.columns.items():
        frame[c] = _take(src, r, f"[sources.{where}].{c}", mapping_path, frame, c)
    if trule.timepoint is not None:
        tp = trule.timepoint
        code = _take(
            src, ColumnRule(column=tp.column), f"[sources.{where}].timepoint", mapping_path
        )
        weeks = code.map(tp.weeks)
        start = pd.Timestamp(tp.start)
        date = (start + pd.to_timedelta(7 * weeks.astype("float64"), unit="D")).dt.strftime(
            "%Y-%m-%d"
        )
        date_col = {"outcomes": "assessed_on", "sessions": "performed_on"}.get(trule.table)
        if date_col:
            frame[date_col] = date.astype("string")
        frame["_week"] = weeks
        _flag(
            frame,
            code.notna() & weeks.isna(),
            "unmapped_timepoint",
            "time point " + code.fillna("").astype("string") + " (column " + tp.column
            + ") has no week in the mapping; fix: add it to timepoint.weeks",
        )  # fmt: skip
        if trule.table == "patients" and "enrolled_on" not in frame:
            frame["enrolled_on"] = tp.start
    for c in table.names:
        if table.column(c).kind == "date" and c in frame:
            frame[c] = _to_iso(frame[c].astype("string"), rule.date_formats)
    frame[FORMATS] = ", ".join(rule.date_formats)
    for name, r in trule.attributes.items():
        frame[name] = _take(
            src, r, f"[sources.{where}].attributes.{name}", mapping_path, frame, name
        )
    if trule.keep_extra_columns and trule.table == "patients":
        for c in src.data.columns:
            if c not in frame and not c.startswith("_") and c not in trule.columns:
                frame[c] = src.data[c]
    if trule.instruments:
        frame = _melt(src, frame, trule, mapping_path)
    if trule.table == "patients" and trule.timepoint is not None:
        frame = _one_per_patient(frame, _label(src), warnings)
    missing = [c for c in table.required if c not in frame and c not in _DERIVABLE]
    if missing:
        found = [c for c in src.data.columns if not c.startswith("_")]
        hint = ""
        if len(found) == 1 and any(d in found[0] for d in ",;\t|"):
            hint = " The header is a single column: the delimiter looks wrong."
        raise IngestError(
            f"{src.path}{f'[{src.sheet}]' if src.sheet else ''}: feeds '{trule.table}' but has "
            f"no column for required {missing} ({_columns_text(found)}).{hint} Fix: rename "
            f"the column(s), map them in a mapping file, or correct the delimiter."
        )
    return frame.drop(columns=["_week"], errors="ignore")


def _melt(src, frame, trule, mapping_path) -> pd.DataFrame:
    parts = []
    for instrument, rule in trule.instruments.items():
        part = frame.copy()
        where = f"[sources.outcomes].instruments.{instrument}"
        score = _take(src, rule, where, mapping_path, part, "score")
        part = part.assign(instrument=instrument, score=score)
        parts.append(part[score.notna()])
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values([ROW, "instrument"], kind="stable").reset_index(drop=True)


def _one_per_patient(frame: pd.DataFrame, file: str, warnings: list[str]) -> pd.DataFrame:
    """Patients from a long file: one record per patient, values from the earliest time point."""
    frame = frame.sort_values(["_week", ROW], kind="stable")
    values = [c for c in frame.columns if not c.startswith("_") and c != "patient_id"]
    first = frame.groupby("patient_id", sort=False, dropna=False).first()
    distinct = frame.groupby("patient_id", sort=False)[values].nunique()
    conflicts = distinct.gt(1).sum()
    for col, n in conflicts[conflicts > 0].items():
        warnings.append(
            f"{file}: {n} patient(s) have differing '{col}' across time points; "
            f"the earliest value was kept"
        )
    first = first.reset_index()
    first[ROW] = frame.groupby("patient_id", sort=False)[ROW].first().to_numpy()
    return first.sort_values(ROW, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------- per source
def _prepare(src: SourceTable, rule: SourceRule) -> tuple[SourceTable, pd.DataFrame]:
    """Missing tokens to <NA>; filters applied. Returns the kept rows and the set-aside ones."""
    data = src.data
    tokens = list(rule.missing)
    for col in data.columns:
        if col not in (FILE, ROW):
            data[col] = data[col].where(~data[col].isin(tokens))
    reason = src.unparsed["reason"].astype(str)
    aside = [
        src.unparsed.assign(
            reason_code=np.select(
                [reason == "blank row", reason.str.startswith("footer line")],
                ["blank_row", "footer_row"],
                "unparseable_row",
            )
        )
    ]
    keep = pd.Series(True, index=data.index)
    for f in rule.filters:
        if f.column not in data.columns:
            raise MappingError(
                f"filter on column '{f.column}', which {_label(src)} does not have. Fix: "
                f"correct the mapping's filter."
            )
        out = keep & ~data[f.column].isin(list(f.keep))
        aside.append(
            pd.DataFrame(
                {
                    FILE: data.loc[out, FILE],
                    ROW: data.loc[out, ROW],
                    "reason_code": "excluded_by_filter",
                    "reason": f.reason,
                    "text": "",
                }
            )
        )
        keep &= ~out
    kept = SourceTable(
        src.path,
        data[keep].reset_index(drop=True),
        src.unparsed,
        src.encoding,
        src.delimiter,
        src.sheet,
    )
    set_aside = pd.concat([a for a in aside if len(a)] or [aside[0]], ignore_index=True)
    return kept, set_aside[[FILE, ROW, "reason_code", "reason", "text"]]


def _hashed(path: Path, read: Callable[[], _T], *, max_bytes: int | None = None) -> tuple[_T, str]:
    """``read()`` and the SHA-256 of ``path``'s bytes, hashed before and after the read.

    The file is hashed in chunks before ``read()`` and again after it; the two must agree, so the
    hash recorded is that of the bytes read. A file that changed while it was read (an export
    still being written) is refused rather than recorded with a hash of other bytes. A file that
    is missing, unreadable or over ``max_bytes`` is not hashed first: ``read()`` raises its own
    error for it.

    Raises
    ------
    IngestError
        The file changed while it was read, or could be read but not hashed.
    """

    def digest() -> str | None:
        try:
            if not path.is_file():
                return None
            if max_bytes is not None and path.stat().st_size > max_bytes:
                return None
            return file_sha256(path)
        except OSError:
            return None

    before = digest()
    value = read()
    after = digest()
    if after is None:
        raise IngestError(
            f"{path}: was read but could not be hashed afterwards (removed or made unreadable "
            f"meanwhile?). Fix: ingest a copy that nothing else is changing."
        )
    if before != after:
        raise IngestError(
            f"{path}: changed while ingest read it (its SHA-256 before and after reading "
            f"differ). Fix: ingest a copy that nothing is writing to, e.g. once the export has "
            f"finished."
        )
    return value, after


def _read(path: Path, mapping: Mapping | None, used: set[int]):
    """Per source (a file, or a sheet of a workbook): records per table, set-aside rows, a
    description (with ``sha256``, the hash of the file's bytes as read, the same for every sheet
    of a workbook) and warnings. ``used`` collects the indices of the mapping rules that read it.
    """
    out, sha256 = _hashed(path, lambda: _read_sources(path, mapping, used))
    for _, _, desc, _ in out:
        desc["sha256"] = sha256
    return out


def _read_sources(path: Path, mapping: Mapping | None, used: set[int]):
    """:func:`_read` without the hash."""
    if path.suffix.lower() in _FHIR_SUFFIXES:
        from ptanalytics.ingestion.fhir import read_fhir

        fhir = read_fhir(path)
        desc = {
            "file": path.name,
            "sheet": "",
            "format": "fhir",
            "encoding": "utf-8",
            "delimiter": "",
            "rows_read": fhir.resources,
            "rows_used": fhir.resources - len(fhir.set_aside),
            "rows_set_aside": len(fhir.set_aside),
            "tables": ",".join(k for k, v in fhir.records.items() if len(v)),
            "mapped": "",
        }
        return [(fhir.records, fhir.set_aside, desc, [])]
    out = []
    for rule, sheet in _plan(path, mapping):
        warnings: list[str] = []
        if rule is None:
            raw = read_source_table(path, sheet=sheet)
            rule = _auto_rule(path, raw, raw.sheet or None)
        else:
            used.add(rule.index)
            raw = read_source_table(
                path, delimiter=rule.delimiter, encoding=rule.encoding, sheet=rule.sheet
            )
        label = _label(raw)
        warnings += raw.warnings
        if raw.rows_read == 0:
            warnings.append(f"{label}: no data rows (header only)")
        _warn_identifiers(raw.data, label, warnings, rule)
        kept, aside = _prepare(raw, rule)
        mp = mapping.path if mapping else "<no mapping>"
        records = {t.table: _records(kept, rule, t, mp, warnings) for t in rule.tables}
        desc = {
            "file": path.name,
            "sheet": raw.sheet,
            "format": path.suffix.lower().lstrip("."),
            "encoding": raw.encoding,
            "delimiter": raw.delimiter,
            "rows_read": raw.rows_read,
            "rows_used": len(kept.data),
            "rows_set_aside": len(aside),
            "tables": ",".join(t.table for t in rule.tables),
            "mapped": _mapped(rule),
        }
        out.append((records, aside, desc, warnings))
    if is_workbook(path) and out:
        read = {d["sheet"] for _, _, d, _ in out}
        unread = [sh for sh in sheets_with_data(path) if sh not in read]
        out[-1][3].extend(
            f"{path.name}: sheet '{sh}' was not read (it holds data, but "
            + ("no mapping entry names it" if mapping else "it is not named after a table")
            + f"); fix: add a [[sources]] entry with sheet = '{sh}' if it holds records"
            for sh in unread
        )
    return out


def _mapped(rule: SourceRule) -> str:
    """``table: canonical <- source column, ...`` for every table a rule feeds (no data)."""
    parts = []
    for t in rule.tables:
        cols = [
            f"{c} <- {r.column!r}" if r.column is not None else f"{c} = {r.value!r}"
            for c, r in {**t.columns, **t.attributes}.items()
        ]
        cols += [f"{i} <- {r.column!r}" for i, r in t.instruments.items()]
        if t.timepoint is not None:
            cols.append(f"timepoint <- {t.timepoint.column!r}")
        parts.append(f"{t.table}: {', '.join(cols)}")
    return "; ".join(parts)


def _warn_identifiers(data: pd.DataFrame, file: str, warnings: list[str], rule) -> None:
    try:
        from ptanalytics.privacy.identifiers import find_identifier_columns
    except ImportError:  # pragma: no cover - deidentify is part of the package
        return
    found = find_identifier_columns(data.drop(columns=[FILE, ROW]))
    if found:
        listed = ", ".join(f"{c} ({k})" for c, k in found)
        extra = any(t.keep_extra_columns and t.table == "patients" for t in rule.tables)
        copied = (
            "they are copied into the cohort as extra patient attributes (no mapping, or "
            "keep_extra_columns)"
            if extra
            else "they are copied only where the mapping names them"
        )
        warnings.append(
            f"{file}: identifier-like column(s) {listed}; {copied}; 'ptanalytics deidentify' "
            f"drops every column it is not told to keep: run it before sharing the cohort"
        )


# ------------------------------------------------------------------------------------- public
def ingest(
    sources: list[str | os.PathLike],
    *,
    mapping: str | os.PathLike | Mapping | None = None,
    today: dt.date | None = None,
) -> IngestResult:
    """Read source exports, map them to the canonical tables, validate and quarantine.

    Parameters
    ----------
    sources : list of path-like
        CSV/TSV, Excel (``.xlsx``), Parquet, or FHIR R4 (``.json`` Bundle, ``.ndjson``) files.
    mapping : path-like or Mapping, optional
        A mapping file (TOML or YAML, see ``docs/ingest.md``). Without one, each file must be named
        after a table or carry one table's canonical columns.
    today : datetime.date, optional
        Reference for "date in the future" (default: today).

    Returns
    -------
    IngestResult

    Raises
    ------
    IngestError, MappingError
        For unusable input only (unreadable file, missing required column, mapping naming an
        absent column, no source for ``patients``); bad rows are quarantined, never raised.

    Examples
    --------
    >>> import ptanalytics as pt
    >>> result = pt.ingest(["clinic_export.xlsx"], mapping="mapping.toml")  # doctest: +SKIP
    >>> print(pt.format_ingest_summary(result))  # doctest: +SKIP
    >>> result.cohort.write("cohorts/clinic")  # doctest: +SKIP
    """
    if not sources:
        raise IngestError("no source files given. Fix: name at least one file.")
    mapping, mapping_sha256 = _load_mapping(mapping)
    today = today or dt.date.today()
    per_table: dict[str, list[pd.DataFrame]] = {}
    asides, descs, warnings = [], [], []
    used: set[int] = set()
    for source in sources:
        for records, aside, desc, warn in _read(Path(source), mapping, used):
            for name, frame in records.items():
                per_table.setdefault(name, []).append(frame)
            asides.append(aside)
            descs.append(desc)
            warnings += warn
    if mapping is not None:
        _check_all_rules_used(mapping, used, sources)
    if "patients" not in per_table:
        raise IngestError(
            "no source feeds the 'patients' table, so no record can be checked against a "
            "patient. Fix: add a patients file (patient_id, enrolled_on) or map patient columns."
        )
    records = {n: pd.concat(f, ignore_index=True) for n, f in per_table.items()}
    result = validate_records(records, today=today)
    return _result(result, records, asides, descs, warnings, today, mapping, mapping_sha256)


def _load_mapping(
    mapping: str | os.PathLike | Mapping | None,
) -> tuple[Mapping | None, str | None]:
    """The mapping and the SHA-256 of its file's bytes (None without a mapping file).

    A path is read and hashed as the sources are (see :func:`_hashed`). A :class:`Mapping` given
    directly is hashed from ``mapping.path`` when that names an existing file: that is the file's
    content at ingest, which matches the object only if it was loaded from it unchanged.
    """
    if mapping is None:
        return None, None
    if isinstance(mapping, Mapping):
        try:
            path = Path(mapping.path)
            return mapping, file_sha256(path) if path.is_file() else None
        except (OSError, ValueError):  # "<mapping>", or a path that is not one on this system
            return mapping, None
    path = Path(mapping)
    return _hashed(path, lambda: load_mapping(path), max_bytes=MAX_MAPPING_BYTES)


def _check_all_rules_used(mapping: Mapping, used: set[int], sources) -> None:
    """Every mapping entry must read something: an unused one would leave its tables empty."""
    paths = [Path(s) for s in sources]
    for rule in mapping.sources:
        if rule.index in used:
            continue
        fits = [p for p in paths if rule.matches(p)]
        if fits:
            first = mapping.rules_for(fits[0])
            by = f"{first[0].label} reads it" if first else "another entry reads it"
            raise MappingError(
                f"{mapping.path}: {rule.label} matches {fits[0].name} but is never used: {by} "
                f"(one entry without 'sheet' reads a file). Fix: give this entry a 'sheet' "
                f"(workbooks), a narrower 'match', or merge its tables into that entry."
            )
        names = ", ".join(p.name for p in paths)
        raise MappingError(
            f"{mapping.path}: {rule.label} matches no file or sheet given (files: {names}), so "
            f"the table(s) it feeds would be empty. Fix: correct its 'match' or 'sheet', give "
            f"the file, or remove the entry."
        )


# ------------------------------------------------------------------------- session minutes
IMPUTED = "duration_imputed"


def impute_session_minutes(sessions: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Missing ``duration_min`` from the catalogue's default minutes of the exercise, flagged.

    Parameters
    ----------
    sessions : pandas.DataFrame
        Accepted sessions (canonical columns); not modified.

    Returns
    -------
    sessions : pandas.DataFrame
        A copy with ``duration_min`` filled where it was missing and the exercise has a catalogue
        default (``exercise_catalogue()["duration_min"]``, one prescribed bout at the default
        dose), and ``duration_imputed`` (bool): True where the minutes were filled here (or were
        flagged so in the source). Rows whose exercise has no default stay missing.
    counts : dict
        ``rows`` (sessions), ``imputed`` (minutes filled here), ``still_missing`` (no minutes
        and no catalogue default).
    """
    out = sessions.copy()
    if "duration_min" not in out:
        out["duration_min"] = pd.Series(np.nan, index=out.index, dtype="float64")
    before = out[IMPUTED].fillna(False).astype(bool) if IMPUTED in out else None
    missing = out["duration_min"].isna()
    defaults = exercise_catalogue().set_index("exercise")["duration_min"]
    fill = out["exercise"].astype("string").map(defaults).astype("float64")
    filled = missing & fill.notna()
    out["duration_min"] = out["duration_min"].where(~filled, fill).astype("float64")
    flag = filled if before is None else (before | filled)
    out[IMPUTED] = flag.astype(bool).to_numpy()
    counts = {
        "rows": len(out),
        "imputed": int(filled.sum()),
        "still_missing": int((missing & ~filled).sum()),
    }
    return out, counts


def _result(
    vr: ValidationResult, records, asides, descs, warnings, today, mapping, mapping_sha256=None
) -> IngestResult:
    sources = pd.DataFrame(descs, columns=_SOURCE_COLUMNS)
    rows = []
    for name in TABLES:
        n = len(records.get(name, ()))
        acc = len(vr.accepted.get(name, ()))
        rows.append({"table": name, "records": n, "accepted": acc, "quarantined": n - acc})
    tables = pd.DataFrame(rows)
    reasons = vr.counts()
    reasons = reasons[reasons["reason_code"] != "(accepted)"].reset_index(drop=True)
    aside = pd.concat(asides, ignore_index=True)
    quarantine = {k: v for k, v in vr.quarantine.items() if len(v)}
    if len(aside):
        quarantine[SOURCE_QUARANTINE] = aside
        codes = aside.groupby("reason_code").size()
        reasons = pd.concat(
            [
                reasons,
                pd.DataFrame(
                    {
                        "table": SOURCE_QUARANTINE,
                        "reason_code": codes.index,
                        "rows": codes.to_numpy(),
                    }
                ),
            ],
            ignore_index=True,
        )
    warnings = list(warnings) + _emptied_warnings(tables, reasons) + _near_id_warnings(quarantine)
    accepted = dict(vr.accepted)
    imputed = None
    if "sessions" in accepted:
        accepted["sessions"], imputed = impute_session_minutes(accepted["sessions"])
        if imputed["still_missing"]:
            warnings.append(
                f"sessions: {imputed['still_missing']} of {imputed['rows']} record(s) have no "
                f"minutes and their exercise no catalogue default; duration_min stays missing"
            )
    nominal = any(
        t.timepoint is not None for s in (mapping.sources if mapping else ()) for t in s.tables
    )
    meta = {
        "source": "ingested: " + ", ".join(dict.fromkeys(sources["file"])),
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "ingest": {
            "mapping": None if mapping is None else Path(mapping.path).name,
            **({"mapping_sha256": mapping_sha256} if mapping_sha256 else {}),
            "today": today.isoformat(),
            "nominal_dates": nominal,
            "sources": sources.to_dict("records"),
            "tables": tables.to_dict("records"),
            "reasons": reasons.to_dict("records"),
            "imputed": {} if imputed is None else {"sessions.duration_min": imputed},
            "emptied_tables": _emptied(tables),
            "warnings": warnings,
        },
    }
    if mapping is not None and mapping.schedule:
        meta["schedule"] = dict(mapping.schedule)  # read by ptanalytics.metrics.timepoints
    cohort = Cohort(**accepted, metadata=meta, quarantine=quarantine)
    return IngestResult(cohort, sources, tables, reasons, warnings, imputed)


_SOURCE_COLUMNS = [
    "file",
    "sheet",
    "format",
    "encoding",
    "delimiter",
    "rows_read",
    "rows_used",
    "rows_set_aside",
    "tables",
    "mapped",
    "sha256",
]


def _emptied(tables: pd.DataFrame) -> list[str]:
    """Tables that had records and kept none."""
    return [t.table for t in tables.itertuples() if t.records and not t.accepted]


_REASON_HINTS = {
    "bad_date": "declare the source's date format in the mapping (date_formats = ['%d/%m/%Y'])",
    "unknown_patient": "check that patient ids are written the same way in every source",
    "unknown_exercise": "map the exercise names (exercise.values)",
    "missing_value": "check that the mapping names the right source columns",
}


def _emptied_warnings(tables: pd.DataFrame, reasons: pd.DataFrame) -> list[str]:
    out = []
    for name in _emptied(tables):
        n = int(tables.set_index("table").loc[name, "records"])
        mine = reasons[reasons["table"] == name].sort_values("rows", ascending=False)
        top = ", ".join(f"{r.reason_code} {r.rows}" for r in mine.head(3).itertuples())
        first = mine["reason_code"].iloc[0] if len(mine) else ""
        hint = _REASON_HINTS.get(first, "read the reasons in quarantine/" + name + ".csv")
        out.append(
            f"TABLE EMPTIED: every one of the {n} '{name}' record(s) was quarantined "
            f"(by reason: {top}); the cohort has no {name}. Fix: {hint}"
        )
    return out


def _near_id_warnings(quarantine: dict[str, pd.DataFrame]) -> list[str]:
    """Counts (never the ids) of records whose patient id matches one but for case/spaces."""
    out = []
    for name, q in quarantine.items():
        if "reason" not in q or name == SOURCE_QUARANTINE:
            continue
        near = (
            q["reason"]
            .astype("string")
            .str.contains("is not in patients (did you mean", regex=False)
        )
        if near.any():
            out.append(
                f"{name}: {int(near.sum())} record(s) name a patient id that matches one in "
                f"patients when case and spaces are ignored; see quarantine/{name}.csv. Fix: "
                f"correct the ids in the export or map them (patient_id.values)"
            )
    return out


def format_ingest_summary(result: IngestResult) -> str:
    """The ingest summary as text (counts and reasons only: no patient data)."""
    lines = ["sources:"]
    for s in result.sources.itertuples():
        how = s.format + (f", {s.encoding}, delimiter {s.delimiter!r}" if s.delimiter else "")
        name = f"{s.file}[{s.sheet}]" if s.sheet else s.file
        lines.append(
            f"  {name} ({how}): {s.rows_read} rows read = {s.rows_used} used + "
            f"{s.rows_set_aside} set aside -> {s.tables or 'nothing'}"
        )
    lines.append("tables:            records   accepted  quarantined")
    for t in result.tables.itertuples():
        if t.records:
            lines.append(f"  {t.table:<15} {t.records:>9} {t.accepted:>10} {t.quarantined:>12}")
    if len(result.reasons):
        lines.append("quarantine reasons (a record failing several checks counts under each):")
        for r in result.reasons.itertuples():
            lines.append(f"  {r.table:<15} {r.reason_code:<22} {r.rows:>8}")
    if result.imputed and (result.imputed["imputed"] or result.imputed["still_missing"]):
        m = result.imputed
        lines.append(
            f"session minutes: {m['imputed']} of {m['rows']} imputed from the catalogue's "
            f"default (duration_imputed = true), {m['still_missing']} still missing"
        )
    for w in result.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def format_ingest_check(result: IngestResult) -> str:
    """What ingest would read and reject, per source: the dry run's text (no patient data).

    Per source (file, or file and sheet): rows read, used and set aside, the tables fed with
    each canonical column's source column, and the records that would be quarantined per table
    and reason; then the summary of :func:`format_ingest_summary`.
    """
    q = result.cohort.quarantine or {}
    lines = ["dry run (--check): nothing is written", "per source:"]
    for s in result.sources.itertuples():
        name = f"{s.file}[{s.sheet}]" if s.sheet else s.file
        lines.append(
            f"  {name}: {s.rows_read} rows read = {s.rows_used} used + {s.rows_set_aside} set aside"
        )
        for part in filter(None, s.mapped.split("; ")):
            lines.append(f"    maps {part}")
        for table, frame in q.items():
            mine = frame[frame[FILE] == name] if FILE in frame else frame.iloc[:0]
            if not len(mine):
                continue
            codes = mine["reason_code"].str.split(";").explode().value_counts().sort_index()
            kind = "set aside" if table == SOURCE_QUARANTINE else f"{table} quarantined"
            detail = ", ".join(f"{c} {n}" for c, n in codes.items())
            lines.append(f"    would be {kind}: {len(mine)} ({detail})")
    lines.append(format_ingest_summary(result))
    return "\n".join(lines)


def format_ingest_line(result: IngestResult) -> str:
    """One line: records accepted and quarantined, rows set aside, tables emptied."""
    t = result.tables
    line = (
        f"{int(t['accepted'].sum())} record(s) accepted, {int(t['quarantined'].sum())} "
        f"quarantined, {int(result.sources['rows_set_aside'].sum())} source row(s) set aside"
    )
    emptied = _emptied(t)
    if emptied:
        line += (
            f"; WARNING: every record of {', '.join(emptied)} was quarantined "
            f"({'it is' if len(emptied) == 1 else 'they are'} empty)"
        )
    return line


def validate_cohort_dir(path: str | os.PathLike, *, today: dt.date | None = None) -> IngestResult:
    """Re-check an existing cohort folder with the ingest validation; nothing is written.

    First everything :func:`~ptanalytics.cohort.io.load_cohort` relies on is checked:
    ``cohort.json`` parses and has its format version and a row count for every table present,
    each table file (or folder of Parquet parts, as ``simulate_to_disk`` writes) is readable, of
    its schema and has exactly the rows ``cohort.json`` lists. Then the table files are read as
    text and validated exactly as :func:`ingest` would (without a mapping), so a cohort edited by
    hand is checked as strictly as a new export.

    Raises
    ------
    IngestError, CohortFormatError
        The folder is not a usable cohort (``ptanalytics validate`` exits 2); failing records
        are reported in the result, not raised (exit 1).
    """
    import tempfile

    from ptanalytics.cohort.io import validation_sources

    folder = Path(path)
    if not (folder / "cohort.json").is_file():
        raise IngestError(
            f"{folder}: not a cohort folder (no cohort.json). Fix: point to a "
            f"folder written by 'ptanalytics ingest' or 'simulate'."
        )
    with tempfile.TemporaryDirectory(prefix="ptanalytics-validate-") as work:
        return ingest(validation_sources(folder, work), today=today)
