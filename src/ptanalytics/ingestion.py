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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ptanalytics.cohort import Cohort
from ptanalytics.exceptions import IngestError, MappingError
from ptanalytics.mapping import (
    DEFAULT_DATE_FORMATS,
    ColumnRule,
    Mapping,
    SourceRule,
    TableRule,
    load_mapping,
)
from ptanalytics.readers import FILE, ROW, SourceTable, read_source_table
from ptanalytics.schema import TABLES
from ptanalytics.validation import (
    FORMATS,
    PROBLEM,
    PROBLEM_CODE,
    ValidationResult,
    validate_records,
)

__all__ = ["IngestResult", "format_ingest_summary", "ingest", "validate_cohort_dir"]

SOURCE_QUARANTINE = "source_rows"
_DERIVABLE = {"category"}  # filled in from the exercise catalogue
_FHIR_SUFFIXES = (".json", ".ndjson")


@dataclass
class IngestResult:
    """What :func:`ingest` produced.

    Attributes
    ----------
    cohort : Cohort
        Accepted rows as canonical tables, with ``metadata["ingest"]`` (the summary) and
        ``quarantine`` (rejected rows per table, plus ``source_rows``).
    sources : pandas.DataFrame
        One row per source file: ``file``, ``format``, ``encoding``, ``delimiter``,
        ``rows_read``, ``rows_used``, ``rows_set_aside``, ``tables`` (what it fed).
    tables : pandas.DataFrame
        One row per table: ``table``, ``records``, ``accepted``, ``quarantined``.
    reasons : pandas.DataFrame
        Quarantined records per ``table`` and ``reason_code``: ``rows``.
    warnings : list of str
        Things to look at that did not reject rows (identifier-like columns, conflicting patient
        attributes, files without data rows). They never contain patient data.
    """

    cohort: Cohort
    sources: pd.DataFrame
    tables: pd.DataFrame
    reasons: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    @property
    def quarantined(self) -> int:
        """Records quarantined plus source rows set aside."""
        return int(self.tables["quarantined"].sum() + self.sources["rows_set_aside"].sum())


# ------------------------------------------------------------------------------------ mapping
def _rule_for(path: Path, table: SourceTable | None, mapping: Mapping | None) -> SourceRule:
    if mapping is not None:
        rule = mapping.rule_for(path)
        if rule is None:
            raise MappingError(
                f"{mapping.path}: no [[sources]] entry matches {path.name}. Fix: add one with "
                f"match = '{path.name}' (or a pattern)."
            )
        return rule
    return _auto_rule(path, table)


def _auto_rule(path: Path, table: SourceTable | None) -> SourceRule:
    """Without a mapping: the table named like the file, else the one whose columns it has."""
    stem = path.stem.lower()
    columns = set(table.data.columns) if table is not None else set()
    named = [n for n in TABLES if stem == n or stem.startswith(n + "_")]
    if named:
        name = named[0]
    else:
        fits = [n for n, t in TABLES.items() if set(t.required) - _DERIVABLE <= columns]
        if len(fits) != 1:
            found = sorted(c for c in columns if not c.startswith("_"))
            raise IngestError(
                f"{path}: cannot tell which table this file feeds (columns {found}). Fix: name it "
                f"after a table (e.g. sessions.csv or sessions_2024.csv) with the canonical "
                f"columns, or give a mapping file (--mapping)."
            )
        name = fits[0]
    cols = {c: ColumnRule(column=c) for c in TABLES[name].names if c in columns}
    return SourceRule(match=path.name, tables=(TableRule(name, cols, keep_extra_columns=True),))


def _take(src: SourceTable, rule: ColumnRule, where: str, mapping_path: str) -> pd.Series:
    data = src.data
    if rule.column is not None:
        if rule.column not in data.columns:
            found = [c for c in data.columns if not c.startswith("_")]
            raise MappingError(
                f"{mapping_path}: {where} names column '{rule.column}', which {src.path.name} "
                f"does not have (columns: {', '.join(found)}). Fix: correct the mapping."
            )
        s = data[rule.column]
    else:
        s = pd.Series(rule.value, index=data.index, dtype="string")
    if rule.values is not None:
        s = s.map(rule.values).astype("string").fillna(s)
    return s


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
    base = {FILE: src.data[FILE], ROW: src.data[ROW]}
    cols = {
        c: _take(src, r, f"[sources.{where}].{c}", mapping_path) for c, r in trule.columns.items()
    }
    frame = pd.DataFrame({**base, **cols})
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
        bad = code.notna() & weeks.isna()
        frame[PROBLEM_CODE] = pd.Series(np.where(bad, "unmapped_timepoint", ""), index=frame.index)
        frame[PROBLEM] = (
            "time point "
            + code.fillna("").astype("string")
            + " (column "
            + tp.column
            + ") has no week in the mapping; fix: add it to "
            "timepoint.weeks"
        ).where(bad, "")
        if trule.table == "patients" and "enrolled_on" not in frame:
            frame["enrolled_on"] = tp.start
    for c in table.names:
        if table.column(c).kind == "date" and c in frame:
            frame[c] = _to_iso(frame[c].astype("string"), rule.date_formats)
    frame[FORMATS] = ", ".join(rule.date_formats)
    for name, r in trule.attributes.items():
        frame[name] = _take(src, r, f"[sources.{where}].attributes.{name}", mapping_path)
    if trule.keep_extra_columns and trule.table == "patients":
        for c in src.data.columns:
            if c not in frame and not c.startswith("_") and c not in trule.columns:
                frame[c] = src.data[c]
    if trule.instruments:
        frame = _melt(src, frame, trule, mapping_path)
    if trule.table == "patients" and trule.timepoint is not None:
        frame = _one_per_patient(frame, src.path.name, warnings)
    missing = [c for c in table.required if c not in frame and c not in _DERIVABLE]
    if missing:
        found = [c for c in src.data.columns if not c.startswith("_")]
        hint = ""
        if len(found) == 1 and any(d in found[0] for d in ",;\t|"):
            hint = " The header is a single column: the delimiter looks wrong."
        raise IngestError(
            f"{src.path}: feeds '{trule.table}' but has no column for required {missing} "
            f"(columns: {', '.join(found)}).{hint} Fix: rename the column(s), map them in a "
            f"mapping file, or correct the delimiter."
        )
    return frame.drop(columns=["_week"], errors="ignore")


def _melt(src, frame, trule, mapping_path) -> pd.DataFrame:
    parts = []
    for instrument, column in trule.instruments.items():
        score = _take(
            src,
            ColumnRule(column=column),
            f"[sources.outcomes].instruments.{instrument}",
            mapping_path,
        )
        part = frame.assign(instrument=instrument, score=score)
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
    aside = [
        src.unparsed.assign(
            reason_code=np.where(
                src.unparsed["reason"] == "blank row", "blank_row", "unparseable_row"
            )
        )
    ]
    keep = pd.Series(True, index=data.index)
    for f in rule.filters:
        if f.column not in data.columns:
            raise MappingError(
                f"filter on column '{f.column}', which {src.path.name} does not have. Fix: "
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
        src.path, data[keep].reset_index(drop=True), src.unparsed, src.encoding, src.delimiter
    )
    set_aside = pd.concat([a for a in aside if len(a)] or [aside[0]], ignore_index=True)
    return kept, set_aside[[FILE, ROW, "reason_code", "reason", "text"]]


def _read(path: Path, mapping: Mapping | None):
    """Records per table, set-aside rows and a source description for one file."""
    warnings: list[str] = []
    if path.suffix.lower() in _FHIR_SUFFIXES:
        from ptanalytics.fhir import read_fhir

        fhir = read_fhir(path)
        desc = {
            "file": path.name,
            "format": "fhir",
            "encoding": "utf-8",
            "delimiter": "",
            "rows_read": fhir.resources,
            "rows_used": fhir.resources - len(fhir.set_aside),
            "rows_set_aside": len(fhir.set_aside),
            "tables": ",".join(k for k, v in fhir.records.items() if len(v)),
        }
        return fhir.records, fhir.set_aside, desc, warnings
    raw = read_source_table(path)
    rule = _rule_for(path, raw, mapping)
    if rule.delimiter or rule.encoding or rule.sheet is not None:
        raw = read_source_table(
            path, delimiter=rule.delimiter, encoding=rule.encoding, sheet=rule.sheet
        )
    if raw.rows_read == 0:
        warnings.append(f"{path.name}: no data rows (header only)")
    _warn_identifiers(raw.data, path.name, warnings)
    kept, aside = _prepare(raw, rule)
    mp = mapping.path if mapping else "<no mapping>"
    records = {t.table: _records(kept, rule, t, mp, warnings) for t in rule.tables}
    used = len(kept.data)
    desc = {
        "file": path.name,
        "format": path.suffix.lower().lstrip("."),
        "encoding": raw.encoding,
        "delimiter": raw.delimiter,
        "rows_read": raw.rows_read,
        "rows_used": used,
        "rows_set_aside": len(aside),
        "tables": ",".join(t.table for t in rule.tables),
    }
    return records, aside, desc, warnings


def _warn_identifiers(data: pd.DataFrame, file: str, warnings: list[str]) -> None:
    try:
        from ptanalytics.deidentification import find_identifier_columns
    except ImportError:  # pragma: no cover - deidentify is part of the package
        return
    found = find_identifier_columns(data.drop(columns=[FILE, ROW]))
    if found:
        listed = ", ".join(f"{c} ({k})" for c, k in found)
        warnings.append(
            f"{file}: identifier-like column(s) {listed}; they are not copied unless "
            f"mapped; run 'ptanalytics deidentify' before sharing the cohort"
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
    """
    if not sources:
        raise IngestError("no source files given. Fix: name at least one file.")
    if mapping is not None and not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    today = today or dt.date.today()
    per_table: dict[str, list[pd.DataFrame]] = {}
    asides, descs, warnings = [], [], []
    for source in sources:
        records, aside, desc, warn = _read(Path(source), mapping)
        for name, frame in records.items():
            per_table.setdefault(name, []).append(frame)
        asides.append(aside)
        descs.append(desc)
        warnings += warn
    if "patients" not in per_table:
        raise IngestError(
            "no source feeds the 'patients' table, so no record can be checked against a "
            "patient. Fix: add a patients file (patient_id, enrolled_on) or map patient columns."
        )
    records = {n: pd.concat(f, ignore_index=True) for n, f in per_table.items()}
    result = validate_records(records, today=today)
    return _result(result, records, asides, descs, warnings, today, mapping)


def _result(vr: ValidationResult, records, asides, descs, warnings, today, mapping) -> IngestResult:
    sources = pd.DataFrame(
        descs,
        columns=[
            "file",
            "format",
            "encoding",
            "delimiter",
            "rows_read",
            "rows_used",
            "rows_set_aside",
            "tables",
        ],
    )
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
    nominal = any(
        t.timepoint is not None for s in (mapping.sources if mapping else ()) for t in s.tables
    )
    meta = {
        "source": "ingested: " + ", ".join(sources["file"]),
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "ingest": {
            "mapping": None if mapping is None else Path(mapping.path).name,
            "today": today.isoformat(),
            "nominal_dates": nominal,
            "sources": sources.to_dict("records"),
            "tables": tables.to_dict("records"),
            "reasons": reasons.to_dict("records"),
            "warnings": warnings,
        },
    }
    tables_out = {n: vr.accepted[n] for n in vr.accepted}
    cohort = Cohort(**tables_out, metadata=meta, quarantine=quarantine)
    return IngestResult(cohort, sources, tables, reasons, warnings)


def format_ingest_summary(result: IngestResult) -> str:
    """The ingest summary as text (counts and reasons only: no patient data)."""
    lines = ["sources:"]
    for s in result.sources.itertuples():
        how = s.format + (f", {s.encoding}, delimiter {s.delimiter!r}" if s.delimiter else "")
        lines.append(
            f"  {s.file} ({how}): {s.rows_read} rows read = {s.rows_used} used + "
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
    for w in result.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def validate_cohort_dir(path: str | os.PathLike, *, today: dt.date | None = None) -> IngestResult:
    """Re-check an existing cohort folder with the ingest validation; nothing is written.

    The folder's table files are read as text and validated exactly as :func:`ingest` would
    (without a mapping), so a cohort edited by hand is checked as strictly as a new export.
    """
    folder = Path(path)
    if not (folder / "cohort.json").is_file():
        raise IngestError(
            f"{folder}: not a cohort folder (no cohort.json). Fix: point to a "
            f"folder written by 'ptanalytics ingest' or 'simulate'."
        )
    files = [
        f
        for name in TABLES
        for f in sorted(folder.glob(f"{name}.*"))
        if f.suffix in (".csv", ".parquet")
    ]
    return ingest(files, today=today)
