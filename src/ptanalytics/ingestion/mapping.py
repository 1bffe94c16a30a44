"""Mapping files: how the columns of a source export become the canonical tables.

A mapping is a TOML or YAML file with one ``[[sources]]`` entry per kind of file or workbook
sheet (see ``docs/ingest.md`` for the reference and ``examples/`` for real ones)::

    [[sources]]
    match = "visits_*.csv"            # file-name glob
    missing = ["-99", "NaN"]          # extra missing-value tokens
    date_formats = ["%d/%m/%Y"]       # tried in order; never guessed

      [sources.sessions]              # the table this source feeds
      patient_id = "PatientID"        # canonical column = source column
      performed_on = "VisitDate"
      exercise = { column = "Exercise", values = { "HS stretch" = "hamstring_stretch" } }
      supervised = { value = "true" } # a constant

    [[sources]]
    match = "clinic.xlsx"
    sheet = "Outcomes"                # one source per sheet of a workbook
      [sources.outcomes]
      score = { column = "Pain", extract = '^(\\d+)\\s*/\\s*10$' }   # 7/10 -> 7

The file has a schema: every key is checked (an unknown key gets a did-you-mean suggestion) and
every value's type too (``keep_extra_columns = "false"`` is a string, not a boolean), each failure a
:class:`~ptanalytics.exceptions.MappingError` naming the file, the key, the value and the fix.

Without a mapping, a file named like a table (``sessions.csv``) or holding all of a table's
required columns feeds that table with its columns taken as they are.
"""

from __future__ import annotations

import codecs
import datetime as dt
import difflib
import fnmatch
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ptanalytics._checks import type_words
from ptanalytics.cohort.schema import TABLES
from ptanalytics.exceptions import MappingError
from ptanalytics.vocab import TRUE_WORDS

__all__ = [
    "DEFAULT_MISSING",
    "ColumnRule",
    "FilterRule",
    "Mapping",
    "SourceRule",
    "TableRule",
    "TimepointRule",
    "load_mapping",
    "parse_mapping",
]

#: Cells equal to one of these (after stripping white space) are missing in every source.
DEFAULT_MISSING: tuple[str, ...] = ("", "NA", "N/A", "NaN", "nan", "NULL", "null", "None")
DEFAULT_DATE_FORMATS: tuple[str, ...] = ("%Y-%m-%d",)


@dataclass(frozen=True)
class ColumnRule:
    """Where one canonical column comes from: a source column (optionally recoded) or a constant.

    ``values`` recodes source values; ``extract`` is a regular expression with one capture group
    that takes the number out of a value (``'^(\\d+)/10$'`` turns ``7/10`` into ``7``); values it
    does not match are quarantined.
    """

    column: str | None = None
    value: str | None = None
    values: dict[str, str] | None = None
    extract: str | None = None


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
    instruments: dict[str, ColumnRule] = field(default_factory=dict)  # wide outcomes
    timepoint: TimepointRule | None = None
    keep_extra_columns: bool = False

    @property
    def layout(self) -> str:
        return "wide" if self.instruments else "long"


@dataclass(frozen=True)
class SourceRule:
    """One kind of source file (or one sheet of a workbook) and the tables it feeds."""

    match: str
    tables: tuple[TableRule, ...]
    missing: tuple[str, ...] = DEFAULT_MISSING
    date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS
    filters: tuple[FilterRule, ...] = ()
    delimiter: str | None = None
    encoding: str | None = None
    sheet: str | int | None = None
    index: int = 0  # position in the mapping's sources list

    def matches(self, path: Path) -> bool:
        return fnmatch.fnmatch(path.name, self.match)

    @property
    def label(self) -> str:
        """How messages name this source: ``sources[1] (match = 'x.xlsx', sheet = 'Visits')``."""
        sheet = "" if self.sheet is None else f", sheet = {self.sheet!r}"
        return f"sources[{self.index}] (match = {self.match!r}{sheet})"


@dataclass(frozen=True)
class Mapping:
    """A parsed mapping file."""

    sources: tuple[SourceRule, ...]
    path: str = "<mapping>"
    # The study's schedule (weeks since enrolment), written to cohort.json for
    # ptanalytics.metrics.timepoints: {"followup_weeks": 4, "end_guided_weeks": 8}; {} if not given.
    schedule: dict = field(default_factory=dict)

    def rules_for(self, path: Path, *, workbook: bool = False) -> list[SourceRule]:
        """The source rules that read ``path``.

        A file is read by the first matching rule that names no sheet; a workbook is read, in
        addition, by every matching rule that names a sheet (one source per sheet).
        """
        fits = [r for r in self.sources if r.matches(path)]
        first = [r for r in fits if r.sheet is None][:1]
        if not workbook:
            return first
        return [r for r in fits if r.sheet is not None or r in first]

    def rule_for(self, path: Path) -> SourceRule | None:
        """The first source rule whose ``match`` fits the file name (no sheet)."""
        rules = self.rules_for(path)
        return rules[0] if rules else None


# ------------------------------------------------------------------------------------- schema
_TOP_KEYS = ("sources", "schedule")
_SCHEDULE_KEYS = ("followup_weeks", "end_guided_weeks")
_SOURCE_KEYS = ("match", "sheet", "missing", "date_formats", "filter", "delimiter", "encoding")
_TABLE_KEYS = ("attributes", "instruments", "timepoint", "keep_extra_columns")
_COLUMN_KEYS = ("column", "value", "values", "extract")
_FILTER_KEYS = ("column", "keep", "reason")
_TIMEPOINT_KEYS = ("column", "weeks", "start")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _wrong_type(where: str, value: Any, expected: str, fix: str) -> MappingError:
    return MappingError(
        f"{where} = {_show(value)} is {type_words(value)}; expected {expected}. Fix: {fix}."
    )


def _unknown_key(where: str, key: str, allowed: list[str] | tuple[str, ...]) -> MappingError:
    close = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return MappingError(
        f"{where}: unknown key {key!r}.{hint} Allowed: {', '.join(allowed)}. Fix: rename or "
        f"remove it."
    )


def _check_keys(raw: dict, where: str, allowed: tuple[str, ...]) -> None:
    for key in raw:
        if key not in allowed:
            raise _unknown_key(where, key, allowed)


def _text(value: Any, where: str, what: str) -> str:
    """A scalar as text (TOML/YAML numbers and booleans allowed as values)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise _wrong_type(where, value, what, f"write {what}")


def _name(value: Any, where: str, what: str, example: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _wrong_type(where, value, what, f"write e.g. {example}")
    return value


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file (``.toml``, ``.yaml`` or ``.yml``).

    Raises
    ------
    MappingError
        Naming the file, the key path, the value and the fix for anything malformed, of the wrong
        type or unknown (with the closest allowed key suggested).
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_MAPPING_BYTES:
            raise MappingError(
                f"{p}: the mapping file is {size:,} bytes, over the limit of "
                f"{MAX_MAPPING_BYTES:,}. Fix: check that this is the mapping file (a mapping is "
                f"a few kilobytes)."
            )
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"{p}: cannot read the mapping file ({exc.strerror}).") from None
    except UnicodeDecodeError as exc:
        raise MappingError(
            f"{p}: byte {exc.start} is not UTF-8 text. Fix: save the mapping file as UTF-8."
        ) from None
    kind = p.suffix.lstrip(".").upper()
    try:
        raw = _load_yaml(text) if p.suffix.lower() in (".yaml", ".yml") else tomllib.loads(text)
    except _YamlAlias as exc:
        raise MappingError(
            f"{p}: line {exc.line}: YAML aliases (*name) are not allowed in a mapping file "
            f"(they can expand a small file into billions of values). Fix: write the values out "
            f"in full instead of the anchor (&name) and its aliases."
        ) from None
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise MappingError(f"{p}: not valid {kind} ({' '.join(str(exc).split())}).") from None
    except RecursionError:
        raise MappingError(
            f"{p}: the {kind} is nested too deeply to be a mapping file. Fix: check the file."
        ) from None
    return parse_mapping(raw, where=str(p))


#: Largest mapping file read (bytes).
MAX_MAPPING_BYTES = 1 << 20


class _YamlAlias(Exception):
    def __init__(self, line: int):
        self.line = line


class _NoAliasLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses aliases: no billion-laughs expansion is possible."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise _YamlAlias(self.peek_event().start_mark.line + 1)
        return super().compose_node(parent, index)


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader subclass: safe


def parse_mapping(raw: Any, *, where: str = "<mapping>") -> Mapping:
    """Check a mapping given as a dict (the parsed file) and build a :class:`Mapping`.

    Raises
    ------
    MappingError
        As :func:`load_mapping`.
    """
    if not isinstance(raw, dict):
        raise MappingError(
            f"{where}: a mapping needs a non-empty list 'sources' ([[sources]] in TOML)."
        )
    _check_keys(raw, where, _TOP_KEYS)
    sources = raw.get("sources")
    if sources is not None and not isinstance(sources, list):
        raise _wrong_type(
            f"{where}: sources",
            sources,
            "a list of sources",
            "write [[sources]] (double brackets) in TOML, or '- match: ...' items in YAML",
        )
    if not isinstance(sources, list) or not sources:
        raise MappingError(
            f"{where}: a mapping needs a non-empty list 'sources' ([[sources]] in TOML)."
        )
    return Mapping(
        tuple(_source(s, f"{where}: sources[{i}]", i) for i, s in enumerate(sources)),
        path=where,
        schedule=_schedule(raw.get("schedule"), f"{where}: schedule"),
    )


def _schedule(raw: Any, where: str) -> dict:
    """``[schedule]``: the study's target weeks, used where the patients table has none."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _wrong_type(where, raw, "a table of keys", "write [schedule] followed by keys")
    _check_keys(raw, where, _SCHEDULE_KEYS)
    out = {}
    for key, value in raw.items():
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
        if not ok:
            raise _wrong_type(f"{where}.{key}", value, "a number of weeks >= 0", f"write {key} = 4")
        out[key] = value
    return out


def _source(raw: Any, where: str, index: int) -> SourceRule:
    if not isinstance(raw, dict):
        raise _wrong_type(where, raw, "a table of keys", "write [[sources]] followed by keys")
    if "match" in raw and not isinstance(raw["match"], str):
        raise _wrong_type(
            f"{where}.match", raw["match"], "a file-name pattern", "write e.g. match = '*.csv'"
        )
    if not isinstance(raw.get("match"), str) or not raw["match"].strip():
        raise MappingError(f"{where}.match is required: a file-name pattern such as '*.csv'.")
    tables = []
    for key, value in raw.items():
        if key in _SOURCE_KEYS:
            continue
        if key not in TABLES:
            allowed = (*_SOURCE_KEYS, *TABLES)
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise MappingError(
                f"{where}: unknown key {key!r}.{hint} Allowed: {', '.join(_SOURCE_KEYS)} or a "
                f"table name ({', '.join(TABLES)}). Fix: rename or remove it."
            )
        tables.append(_table(key, value, f"{where}.{key}"))
    if not tables:
        raise MappingError(f"{where} feeds no table; add e.g. [sources.outcomes].")
    return SourceRule(
        match=raw["match"],
        tables=tuple(tables),
        missing=_missing(raw.get("missing", []), f"{where}.missing"),
        date_formats=_date_formats(
            raw.get("date_formats", list(DEFAULT_DATE_FORMATS)), f"{where}.date_formats"
        ),
        filters=_filters(raw.get("filter", []), f"{where}.filter"),
        delimiter=_delimiter(raw.get("delimiter"), f"{where}.delimiter"),
        encoding=_encoding(raw.get("encoding"), f"{where}.encoding"),
        sheet=_sheet(raw.get("sheet"), f"{where}.sheet"),
        index=index,
    )


def _missing(raw: Any, where: str) -> tuple[str, ...]:
    tokens = [raw] if isinstance(raw, str) else raw
    if not isinstance(tokens, list) or not all(
        isinstance(m, str | int | float) and not isinstance(m, bool) for m in tokens
    ):
        raise _wrong_type(where, raw, "a list of tokens", "write e.g. missing = ['-99', 'n/a']")
    return tuple(dict.fromkeys([*DEFAULT_MISSING, *(str(m) for m in tokens)]))


def _date_formats(raw: Any, where: str) -> tuple[str, ...]:
    formats = [raw] if isinstance(raw, str) else raw
    if (
        not isinstance(formats, list)
        or not formats
        or not all(isinstance(f, str) and "%" in f for f in formats)
    ):
        raise _wrong_type(
            where, raw, "a list of strptime formats", "write e.g. date_formats = ['%d/%m/%Y']"
        )
    return tuple(formats)


def _delimiter(raw: Any, where: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) != 1:
        raise _wrong_type(where, raw, "one character", "write e.g. delimiter = ';' (or '\\t')")
    return raw


def _encoding(raw: Any, where: str) -> str | None:
    if raw is None:
        return None
    try:
        if not isinstance(raw, str):
            raise LookupError
        codecs.lookup(raw)
    except LookupError:
        raise _wrong_type(
            where, raw, "a known text encoding", "write e.g. encoding = 'latin-1' or 'utf-8'"
        ) from None
    return raw


def _sheet(raw: Any, where: str) -> str | int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int) or raw == "":
        raise _wrong_type(
            where, raw, "a sheet name (or a 0-based sheet number)", "write e.g. sheet = 'Visits'"
        )
    if isinstance(raw, int) and raw < 0:
        raise _wrong_type(where, raw, "a sheet number >= 0", "count sheets from 0")
    return raw


def _filters(raw: Any, where: str) -> tuple[FilterRule, ...]:
    items = [raw] if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        raise _wrong_type(
            where,
            raw,
            "a table or a list of tables",
            "write e.g. filter = { column = 'is_patient', keep = ['1'], reason = '...' }",
        )
    return tuple(
        _filter(f, f"{where}[{i}]" if len(items) > 1 else where) for i, f in enumerate(items)
    )


def _check_small_table(
    raw: Any,
    where: str,
    keys: tuple[str, ...],
    required: tuple[str, ...],
    example: str,
    written: str,
) -> None:
    """An inline table such as ``filter`` or ``timepoint``: a table (``write e.g. {written}``)
    of known keys with the ``required`` ones present (it ``must look like {example}``)."""
    if not isinstance(raw, dict):
        raise _wrong_type(where, raw, "a table", f"write e.g. {written}")
    _check_keys(raw, where, keys)
    if any(key not in raw for key in required):
        names = " and ".join(f"'{key}'" for key in required)
        raise MappingError(f"{where} must look like {example}: {names} are required.")


def _filter(raw: Any, where: str) -> FilterRule:
    example = "{ column = 'is_patient', keep = ['1'], reason = '...' }"
    _check_small_table(raw, where, _FILTER_KEYS, ("column", "keep"), example, example)
    column = _name(raw["column"], f"{where}.column", "a source column name", "column = 'group'")
    keep = raw["keep"]
    keep = [keep] if isinstance(keep, str | int | float) and not isinstance(keep, bool) else keep
    if (
        not isinstance(keep, list)
        or not keep
        or not all(isinstance(k, str | int | float) and not isinstance(k, bool) for k in keep)
    ):
        raise _wrong_type(
            f"{where}.keep", raw["keep"], "a non-empty list of values", "write e.g. keep = ['1']"
        )
    keep = [str(k) for k in keep]
    reason = raw.get("reason", f"excluded by filter: {column} not in {keep}")
    reason = _name(reason, f"{where}.reason", "a text", "reason = 'healthy control'")
    return FilterRule(column, tuple(keep), reason)


def _column(raw: Any, where: str) -> ColumnRule:
    shape = "a source column name or a table such as { column = '...', values = { ... } }"
    if isinstance(raw, str):
        return ColumnRule(column=_name(raw, where, "a source column name", "'Pt ID'"))
    if not isinstance(raw, dict):
        raise _wrong_type(where, raw, shape, "write e.g. { column = 'Pain' } or { value = '...' }")
    _check_keys(raw, where, _COLUMN_KEYS)
    if isinstance(raw.get("value"), dict | list):
        raise MappingError(
            f"{where}.value = {_show(raw['value'])} is {type_words(raw['value'])}; expected a "
            f"constant. Did you mean 'values' (a table recoding source values)? Fix: write "
            f"values = {{ 'source' = 'canonical' }} beside column = '...'."
        )
    if ("column" in raw) == ("value" in raw):
        raise MappingError(
            f"{where}: give exactly one of 'column' (a source column) or 'value' (a constant); "
            f"got {sorted(k for k in raw if k in ('column', 'value')) or 'neither'}. Fix: keep one."
        )
    if "value" in raw:
        extra = [k for k in ("values", "extract") if k in raw]
        if extra:
            raise MappingError(
                f"{where}: {extra[0]!r} needs a source column; a constant (value) is used as "
                f"it is. Fix: drop {extra[0]!r} or use column = '...'."
            )
        return ColumnRule(value=_text(raw["value"], f"{where}.value", "a constant"))
    column = _name(raw["column"], f"{where}.column", "a source column name", "column = 'Pain'")
    values = raw.get("values")
    if values is not None:
        if not isinstance(values, dict):
            raise _wrong_type(
                f"{where}.values",
                values,
                "a table of source value = canonical value",
                "write e.g. values = { 'F' = 'female', 'M' = 'male' }",
            )
        values = {
            _text(k, f"{where}.values", "a value"): _text(v, f"{where}.values.{k}", "a value")
            for k, v in values.items()
        }
    extract = raw.get("extract")
    if extract is not None:
        extract = _pattern(extract, f"{where}.extract")
    return ColumnRule(column=column, values=values, extract=extract)


def _pattern(raw: Any, where: str) -> str:
    example = "extract = '^(\\d+(?:\\.\\d+)?)\\s*/\\s*10$' for 7/10"
    if not isinstance(raw, str):
        raise _wrong_type(where, raw, "a regular expression", f"write e.g. {example}")
    try:
        groups = re.compile(raw).groups
    except re.error as exc:
        raise MappingError(
            f"{where} = {_show(raw)} is not a valid regular expression ({exc}). Fix: correct it, "
            f"e.g. {example}."
        ) from None
    if groups != 1:
        raise MappingError(
            f"{where} = {_show(raw)} has {groups} capture groups; expected exactly one (the "
            f"number to keep). Fix: wrap the number in (...) and make other groups (?:...)."
        )
    return raw


def _timepoint(raw: Any, where: str) -> TimepointRule:
    example = "{ column = 'time', weeks = { '1' = 0, '2' = 4 } }"
    _check_small_table(
        raw, where, _TIMEPOINT_KEYS, ("column", "weeks"), example, f"timepoint = {example}"
    )
    column = _name(raw["column"], f"{where}.column", "a source column name", "column = 'visit'")
    weeks = raw["weeks"]
    if not isinstance(weeks, dict) or not weeks:
        raise _wrong_type(
            f"{where}.weeks", weeks, "a table of code = week", "write e.g. weeks = { '1' = 0 }"
        )
    for code, week in weeks.items():
        if isinstance(week, bool) or not isinstance(week, int | float):
            raise _wrong_type(
                f"{where}.weeks.{code}", week, "a number of weeks", f"write '{code}' = 4"
            )
    start = raw.get("start", TimepointRule.start)
    if isinstance(start, dt.date):  # YAML reads 2000-01-03 as a date
        start = start.isoformat()
    try:
        dt.date.fromisoformat(start if isinstance(start, str) else "")
    except ValueError:
        raise _wrong_type(
            f"{where}.start", start, "an ISO date", "write e.g. start = '2000-01-03'"
        ) from None
    return TimepointRule(column, {str(k): float(v) for k, v in weeks.items()}, start)


def _table(name: str, raw: Any, where: str) -> TableRule:
    if not isinstance(raw, dict):
        raise _wrong_type(
            where, raw, "a table of canonical column = source column", f"write [{where}] keys"
        )
    known = TABLES[name].names
    columns, attributes, instruments, timepoint = {}, {}, {}, None
    keep_extra = False
    for key, value in raw.items():
        if key == "attributes":
            if name != "patients":
                raise MappingError(
                    f"{where}.attributes: only patients take extra attributes. Fix: move them to "
                    f"[sources.patients.attributes]."
                )
            if not isinstance(value, dict):
                raise _wrong_type(
                    f"{where}.attributes", value, "a table of name = source column",
                    "write e.g. attributes = { arm = 'Group' }",
                )  # fmt: skip
            attributes = {k: _column(v, f"{where}.attributes.{k}") for k, v in value.items()}
        elif key == "instruments":
            if name != "outcomes":
                raise MappingError(
                    f"{where}.instruments: only outcomes take instruments (wide layout). Fix: "
                    f"move them to [sources.outcomes]."
                )
            if not isinstance(value, dict) or not value:
                raise _wrong_type(
                    f"{where}.instruments", value, "a table of instrument = source column",
                    "write e.g. instruments = { NPRS = 'pain', ODI = 'odi_total' }",
                )  # fmt: skip
            instruments = {str(k): _column(v, f"{where}.instruments.{k}") for k, v in value.items()}
            for k, rule in instruments.items():
                if rule.column is None:
                    raise MappingError(
                        f"{where}.instruments.{k}: an instrument needs a source column. Fix: "
                        f"write {k} = 'column name'."
                    )
        elif key == "timepoint":
            timepoint = _timepoint(value, f"{where}.timepoint")
        elif key == "keep_extra_columns":
            if not isinstance(value, bool):
                meant = str(str(value).strip().lower() in TRUE_WORDS).lower()
                raise _wrong_type(
                    f"{where}.keep_extra_columns",
                    value,
                    "true or false (a boolean)",
                    f"write keep_extra_columns = {meant} (without quotes)",
                )
            if name != "patients":
                raise MappingError(
                    f"{where}.keep_extra_columns: only patients keep extra columns (as "
                    f"attributes). Fix: remove it here."
                )
            keep_extra = value
        elif key in known:
            columns[key] = _column(value, f"{where}.{key}")
        else:
            close = difflib.get_close_matches(str(key), [*known, *_TABLE_KEYS], n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise MappingError(
                f"{where}: {key!r} is not a column of '{name}'.{hint} (columns: "
                f"{', '.join(sorted(known))}; or {', '.join(_TABLE_KEYS)}). Fix: rename or remove "
                f"it."
            )
    return TableRule(name, columns, attributes, instruments, timepoint, keep_extra)
