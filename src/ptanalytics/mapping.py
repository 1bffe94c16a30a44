"""Mapping files: how the columns of a source export become the canonical tables.

A mapping is a TOML or YAML file with one ``[[sources]]`` entry per kind of file (see
``docs/ingest.md`` for the reference and ``examples/`` for real ones)::

    [[sources]]
    match = "visits_*.csv"            # file-name glob
    missing = ["-99", "NaN"]          # extra missing-value tokens
    date_formats = ["%d/%m/%Y"]       # tried in order; never guessed

      [sources.sessions]              # the table this source feeds
      patient_id = "PatientID"        # canonical column = source column
      performed_on = "VisitDate"
      exercise = { column = "Exercise", values = { "HS stretch" = "hamstring_stretch" } }
      supervised = { value = "true" } # a constant

Without a mapping, a file named like a table (``sessions.csv``) or holding all of a table's
required columns feeds that table with its columns taken as they are.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ptanalytics.exceptions import MappingError
from ptanalytics.schema import TABLES

__all__ = [
    "DEFAULT_MISSING",
    "ColumnRule",
    "FilterRule",
    "Mapping",
    "SourceRule",
    "TableRule",
    "TimepointRule",
    "load_mapping",
]

#: Cells equal to one of these (after stripping white space) are missing in every source.
DEFAULT_MISSING: tuple[str, ...] = ("", "NA", "N/A", "NaN", "nan", "NULL", "null", "None")
DEFAULT_DATE_FORMATS: tuple[str, ...] = ("%Y-%m-%d",)


@dataclass(frozen=True)
class ColumnRule:
    """Where one canonical column comes from: a source column (optionally recoded) or a constant."""

    column: str | None = None
    value: str | None = None
    values: dict[str, str] | None = None


@dataclass(frozen=True)
class TimepointRule:
    """Time-point codes in place of dates: ``date = start + 7 x weeks[code]`` (nominal dates)."""

    column: str
    weeks: dict[str, float]
    start: str = "2000-01-03"


@dataclass(frozen=True)
class FilterRule:
    """Keep only rows whose ``column`` is one of ``keep``; others are set aside with ``reason``."""

    column: str
    keep: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class TableRule:
    """How one source feeds one canonical table."""

    table: str
    columns: dict[str, ColumnRule] = field(default_factory=dict)
    attributes: dict[str, ColumnRule] = field(default_factory=dict)
    instruments: dict[str, str] = field(default_factory=dict)  # wide outcomes
    timepoint: TimepointRule | None = None
    keep_extra_columns: bool = False

    @property
    def layout(self) -> str:
        return "wide" if self.instruments else "long"


@dataclass(frozen=True)
class SourceRule:
    """One kind of source file and the tables it feeds."""

    match: str
    tables: tuple[TableRule, ...]
    missing: tuple[str, ...] = DEFAULT_MISSING
    date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS
    filters: tuple[FilterRule, ...] = ()
    delimiter: str | None = None
    encoding: str | None = None
    sheet: str | int | None = None

    def matches(self, path: Path) -> bool:
        return fnmatch.fnmatch(path.name, self.match)


@dataclass(frozen=True)
class Mapping:
    """A parsed mapping file."""

    sources: tuple[SourceRule, ...]
    path: str = "<mapping>"

    def rule_for(self, path: Path) -> SourceRule | None:
        """The first source rule whose ``match`` fits the file name."""
        for rule in self.sources:
            if rule.matches(path):
                return rule
        return None


_SOURCE_KEYS = {"match", "missing", "date_formats", "filter", "delimiter", "encoding", "sheet"}
_TABLE_KEYS = {"attributes", "instruments", "timepoint", "keep_extra_columns"}


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file (``.toml``, ``.yaml`` or ``.yml``).

    Raises
    ------
    MappingError
        Naming the file and the key path of anything malformed or unknown.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"{p}: cannot read the mapping file ({exc.strerror}).") from None
    try:
        raw = yaml.safe_load(text) if p.suffix.lower() in (".yaml", ".yml") else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise MappingError(f"{p}: not valid {p.suffix.lstrip('.').upper()} ({exc}).") from None
    return parse_mapping(raw, where=str(p))


def parse_mapping(raw: Any, *, where: str = "<mapping>") -> Mapping:
    """Check a mapping given as a dict (the parsed file) and build a :class:`Mapping`."""
    if not isinstance(raw, dict) or not isinstance(raw.get("sources"), list) or not raw["sources"]:
        raise MappingError(
            f"{where}: a mapping needs a non-empty list 'sources' ([[sources]] in TOML)."
        )
    unknown = set(raw) - {"sources"}
    if unknown:
        raise MappingError(f"{where}: unknown top-level key(s) {sorted(unknown)}.")
    return Mapping(
        tuple(_source(s, f"{where}: sources[{i}]") for i, s in enumerate(raw["sources"])),
        path=where,
    )


def _source(raw: Any, where: str) -> SourceRule:
    if not isinstance(raw, dict):
        raise MappingError(f"{where} must be a table of keys.")
    if not isinstance(raw.get("match"), str):
        raise MappingError(f"{where}.match is required: a file-name pattern such as '*.csv'.")
    tables = []
    for key, value in raw.items():
        if key in _SOURCE_KEYS:
            continue
        if key not in TABLES:
            raise MappingError(
                f"{where}: unknown key {key!r}; allowed: {sorted(_SOURCE_KEYS)} or a table name "
                f"({', '.join(TABLES)})."
            )
        tables.append(_table(key, value, f"{where}.{key}"))
    if not tables:
        raise MappingError(f"{where} feeds no table; add e.g. [sources.outcomes].")
    missing = raw.get("missing", [])
    if not isinstance(missing, list) or not all(isinstance(m, str | int | float) for m in missing):
        raise MappingError(f"{where}.missing must be a list of tokens such as ['-99', 'NaN'].")
    formats = raw.get("date_formats", list(DEFAULT_DATE_FORMATS))
    if isinstance(formats, str):
        formats = [formats]
    if not isinstance(formats, list) or not all(isinstance(f, str) and "%" in f for f in formats):
        raise MappingError(f"{where}.date_formats must be strptime formats such as '%d/%m/%Y'.")
    filters = raw.get("filter", [])
    filters = [filters] if isinstance(filters, dict) else filters
    return SourceRule(
        match=raw["match"],
        tables=tuple(tables),
        missing=tuple(dict.fromkeys([*DEFAULT_MISSING, *(str(m) for m in missing)])),
        date_formats=tuple(formats),
        filters=tuple(_filter(f, f"{where}.filter[{i}]") for i, f in enumerate(filters)),
        delimiter=raw.get("delimiter"),
        encoding=raw.get("encoding"),
        sheet=raw.get("sheet"),
    )


def _filter(raw: Any, where: str) -> FilterRule:
    if not isinstance(raw, dict) or "column" not in raw or "keep" not in raw:
        raise MappingError(
            f"{where} must look like {{ column = 'is_patient', keep = ['1'], reason = '...' }}."
        )
    keep = raw["keep"] if isinstance(raw["keep"], list) else [raw["keep"]]
    reason = raw.get("reason") or f"excluded by filter: {raw['column']} not in {keep}"
    return FilterRule(str(raw["column"]), tuple(str(k) for k in keep), str(reason))


def _column(raw: Any, where: str) -> ColumnRule:
    if isinstance(raw, str):
        return ColumnRule(column=raw)
    if isinstance(raw, dict) and ("column" in raw or "value" in raw):
        extra = set(raw) - {"column", "value", "values"}
        if extra:
            raise MappingError(
                f"{where}: unknown key(s) {sorted(extra)}; allowed: column, value, values."
            )
        values = raw.get("values")
        if values is not None and not isinstance(values, dict):
            raise MappingError(f"{where}.values must map source values to canonical ones.")
        return ColumnRule(
            column=raw.get("column"),
            value=None if raw.get("value") is None else str(raw["value"]),
            values=None if values is None else {str(k): str(v) for k, v in values.items()},
        )
    raise MappingError(
        f"{where} must be a source column name, {{ column = '...', values = {{...}} }} or "
        f"{{ value = '...' }}."
    )


def _table(name: str, raw: Any, where: str) -> TableRule:
    if not isinstance(raw, dict):
        raise MappingError(f"{where} must be a table of canonical column = source column.")
    known = set(TABLES[name].names)
    columns, attributes, instruments, timepoint = {}, {}, {}, None
    for key, value in raw.items():
        if key == "attributes":
            if name != "patients" or not isinstance(value, dict):
                raise MappingError(
                    f"{where}.attributes: only patients take extra attributes, "
                    f"as a table of name = source column."
                )
            attributes = {k: _column(v, f"{where}.attributes.{k}") for k, v in value.items()}
        elif key == "instruments":
            if name != "outcomes" or not isinstance(value, dict):
                raise MappingError(
                    f"{where}.instruments: only outcomes take instruments, as a "
                    f"table of instrument = source column (wide layout)."
                )
            instruments = {str(k): str(v) for k, v in value.items()}
        elif key == "timepoint":
            if not isinstance(value, dict) or "column" not in value or "weeks" not in value:
                raise MappingError(
                    f"{where}.timepoint must look like {{ column = 'time', "
                    f"weeks = {{ '1' = 0, '2' = 4 }} }}."
                )
            weeks = {str(k): float(v) for k, v in value["weeks"].items()}
            timepoint = TimepointRule(
                str(value["column"]), weeks, str(value.get("start", TimepointRule.start))
            )
        elif key == "keep_extra_columns":
            continue
        elif key in known:
            columns[key] = _column(value, f"{where}.{key}")
        else:
            raise MappingError(
                f"{where}: {key!r} is not a column of '{name}' (columns: {', '.join(sorted(known))}"
                f"; or {', '.join(sorted(_TABLE_KEYS))})."
            )
    return TableRule(
        name,
        columns,
        attributes,
        instruments,
        timepoint,
        bool(raw.get("keep_extra_columns", False)),
    )
