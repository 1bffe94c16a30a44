"""De-identification of a cohort: drop by default, keyed pseudonyms, per-patient date shifts.

:func:`deidentify` returns a new :class:`~ptanalytics.cohort.container.Cohort` in which

* only the canonical columns of the data dictionary and the extra attributes allowed explicitly
  (``keep_attributes``) survive; every other column is dropped;
* ``patient_id``, ``clinic_id`` and ``therapist_id`` are replaced by keyed HMAC-SHA256 pseudonyms
  (the same key gives the same pseudonyms, so exports made with one key can be linked), and
  source file names by keyed pseudonyms too;
* every date of a patient is shifted by the same number of days (-365 to 365, derived from the key
  and the patient's original id), so that intervals within a patient are kept;
* canonical text columns are checked against their vocabularies;
* ages of 90 and above are top-coded to 90, and birth dates never survive;
* a k-anonymity summary over age band, sex, clinic and program length is computed.

This is pseudonymisation, not anonymisation: quasi-identifiers (age, sex, clinic, program dates,
rare combinations) remain. Finding identifier columns, the key, pseudonyms and date shifts live in
:mod:`ptanalytics.privacy.identifiers`. See ``docs/deidentification.md``.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ptanalytics.cohort.container import TABLE_NAMES, Cohort
from ptanalytics.cohort.io import find_table, load_cohort
from ptanalytics.cohort.schema import TABLES
from ptanalytics.exceptions import CohortFormatError, ConfigError
from ptanalytics.privacy.identifiers import (
    _CANONICAL,
    _EMAIL,
    _ID_COLUMNS,
    _MRN,
    _SSN,
    MAX_SHIFT_DAYS,
    KeyFileError,
    _check_key,
    _digest,
    _kind_from_name,
    _kind_from_values,
    _pseudonym_map,
    _shift_days,
    _text_sample,
    _tokens,
    read_key_file,
    write_key_file,
)
from ptanalytics.vocab import INSTRUMENT_RANGES

__all__ = [
    "KNOWN_INSTRUMENTS",
    "QUASI_IDENTIFIERS",
    "DeidentificationReport",
    "deidentify",
    "deidentify_directory",
    "generalise",
    "k_anonymity",
]

#: Ages at or above this are top-coded to it (HIPAA Safe Harbor).
AGE_TOP_CODE = 90

METHOD = (
    "drop by default (canonical columns and allowed attributes only), HMAC-SHA256 pseudonyms "
    "(ids and source file names), per-patient date shift (-365..365 days, never 0), vocabularies "
    "checked, "
    "ages >= 90 top-coded, birth dates dropped"
)
QUARANTINE = "quarantine"
_TRUTH_PATIENTS = "truth_patients"


# --------------------------------------------------------------------------------------------
# Which columns survive
# --------------------------------------------------------------------------------------------

#: Instruments a de-identified ``outcomes.instrument`` may name without being allowed explicitly
#: (upper case; compared after stripping spaces and upper-casing): the instruments with a score
#: range (:data:`ptanalytics.vocab.INSTRUMENT_RANGES`), then other instruments in use.
KNOWN_INSTRUMENTS: tuple[str, ...] = (
    *INSTRUMENT_RANGES,
    "VAS",
    "NRS",
    "BPI",
    "PSFS",
    "PGIC",
    "GROC",
    "FABQ",
    "TSK",
    "TSK11",
    "PCS",
    "PSEQ",
    "HADS",
    "PHQ9",
    "GAD7",
    "SF12",
    "SF36",
    "EQ5D",
    "EQ5D5L",
    "STARTBACK",
    "QBPDS",
    "NDI",
    "CSI",
    "PROMIS_PI",
    "PROMIS_PF",
)
_KNOWN_INSTRUMENT_KEYS = frozenset(re.sub(r"[\s_-]+", "", i) for i in KNOWN_INSTRUMENTS)

# Tokens of a column name that mark a date, an age, a birth date.
_DATE_TOKENS = frozenset(
    (
        "date",
        "dates",
        "dt",
        "datetime",
        "timestamp",
        "time",
        "day",
        "month",
        "year",
        "yr",
        "when",
        "admitted",
        "discharged",
        "onset",
    )
)
_DATE_SUFFIXES = frozenset(("on", "at"))
_AGE_TOKENS = frozenset(("age", "ages", "aged"))
_BIRTH_TOKENS = frozenset(("dob", "born", "birth", "birthdate", "birthday", "yob", "natal"))

# Date-like text (whole value): ISO day or date-time (with or without an offset), d/m/y or m/d/y
# with / . or -, year-month, month names.
_DATE_VALUE = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?)?"
    r"|\d{4}[/.]\d{1,2}[/.]\d{1,2}"
    r"|\d{4}[-/.]\d{1,2}|\d{1,2}[-/.]\d{4}"
    r"|(?i:\d{1,2}\s+[a-z]{3,9}\.?\s+\d{4}|[a-z]{3,9}\.?\s+\d{1,2},?\s+\d{4}|[a-z]{3,9}\s+\d{4})"
)
# Identifying text anywhere inside a value (kept free text is searched for these).
_INSIDE = (
    ("email", re.compile(_EMAIL)),
    ("ssn", re.compile(_SSN)),
    ("mrn", re.compile(_MRN)),
    ("phone", re.compile(r"\+?\d[\d\s().-]{7,}\d")),
    ("date", re.compile(r"\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}")),
)
# Full-date formats tried, in order, for date-like text of a kept attribute.
_DAY_FORMATS = ("%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d", "%Y.%m.%d")


def _is_birth_name(column: str) -> bool:
    tokens = _tokens(column)
    joined = "".join(tokens)
    return bool(_BIRTH_TOKENS & set(tokens)) or "dateofbirth" in joined or "birth" in joined


def _is_age_name(column: str) -> bool:
    return bool(_AGE_TOKENS & set(_tokens(column)))


def _is_date_name(column: str) -> bool:
    tokens = _tokens(column)
    return bool(_DATE_TOKENS & set(tokens)) or (len(tokens) >= 2 and tokens[-1] in _DATE_SUFFIXES)


def _parse_dates(s: pd.Series) -> pd.Series | None:
    """``s`` as datetimes when every value is one full date (or date-time) in one known format,
    else None. Time-zone aware values become UTC (without a zone)."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert(None)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s
    sample = _text_sample(s)
    if sample is None:
        return None
    text = s.astype("str").str.strip().where(s.notna())
    if sample.str.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}(?:[T ].*)?").all():
        aware = bool(sample.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True).any())
        try:
            parsed = pd.to_datetime(text, format="ISO8601", utc=aware, errors="raise")
        except (ValueError, TypeError, OverflowError):
            return None
        return parsed.dt.tz_convert(None) if aware else parsed
    parsed = []
    for fmt in _DAY_FORMATS:
        p = pd.to_datetime(text, format=fmt, errors="coerce")
        if not (p.isna() & text.notna()).any():
            parsed.append(p)
    return parsed[0] if len(parsed) == 1 else None  # two readings (3/4/2024) are ambiguous


def _looks_like_dates(s: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return True
    sample = _text_sample(s)
    return sample is not None and bool(sample.str.fullmatch(_DATE_VALUE.pattern).any())


@dataclass(frozen=True)
class _Plan:
    """What happens to one column: kept as is, shifted, top-coded, or dropped (with a kind)."""

    action: str  # keep | shift | age | drop
    kind: str = ""
    dates: pd.Series | None = None


def _identifying_inside(s: pd.Series) -> str | None:
    """The kind of identifier found inside the text values of ``s`` (all values), or None."""
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        values = pd.to_numeric(s, errors="coerce").dropna()
        whole = values[values == np.floor(values)].abs()
        return "phone or record number" if bool((whole >= 10**8).any()) else None
    if _text_sample(s) is None:
        return None
    text = pd.Series(pd.unique(s.dropna().astype("str")), dtype="str")
    for kind, pattern in _INSIDE:
        if text.str.contains(pattern.pattern, regex=True).any():
            return kind
    return None


def _plan_kept(table: str, column: str, s: pd.Series) -> _Plan:
    """How an attribute the user allowed is de-identified; refuses what must never be kept."""
    where = f"keep_attributes: {table}.{column}"
    if _is_birth_name(column):
        raise ConfigError(
            f"{where} looks like a birth date; birth dates are always dropped. Fix: keep "
            f"'age' (top-coded at {AGE_TOP_CODE}) instead."
        )
    kind = _kind_from_name(column)
    if kind not in (None, "free_text"):
        raise ConfigError(
            f"{where} is named like a direct identifier ({kind}) and cannot be kept. Fix: do not "
            f"keep it."
        )
    if _is_age_name(column):
        return _Plan("age")
    if _is_date_name(column) or _looks_like_dates(s):
        dates = _parse_dates(s)
        if dates is None:
            return _Plan("drop", "date (cannot be shifted)")
        return _Plan("shift", dates=dates)
    found = _kind_from_values(s) or _identifying_inside(s)
    if found:
        raise ConfigError(
            f"{where}: some values hold a {found}; such a column cannot be kept. Fix: remove "
            f"that text from the column, or do not keep it."
        )
    return _Plan("keep")


def _parse_keep(keep: object, frames: dict[str, pd.DataFrame]) -> dict[str, set[str]]:
    """``keep_attributes`` as ``{table: {column}}``: ``"table.column"`` or a bare column."""
    if isinstance(keep, str):
        keep = [keep]
    if not isinstance(keep, list | tuple | set | frozenset):
        raise TypeError(
            f"keep_attributes must be a list of column names, got {type(keep).__name__}."
        )
    extras = {
        (t, c)
        for t, df in frames.items()
        for c in df.columns
        if t in TABLES and c not in TABLES[t].names
    }
    out: dict[str, set[str]] = {}
    for item in keep:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"keep_attributes: {item!r} is not a column name.")
        table, _, column = item.strip().rpartition(".")
        hits = {(t, c) for t, c in extras if c == column and (not table or t == table)}
        if not hits:
            listed = ", ".join(f"{t}.{c}" for t, c in sorted(extras)) or "none"
            raise ConfigError(
                f"keep_attributes: {item!r} is not an extra column of this cohort (extra "
                f"columns: {listed}). Fix: name one of them, as 'column' or 'table.column'."
            )
        for t, c in hits:
            out.setdefault(t, set()).add(c)
    return out


def _plan_frame(name: str, df: pd.DataFrame, keep: set[str], simulated: bool) -> dict[str, _Plan]:
    """Every column of one table and what happens to it."""
    canonical = set(TABLES[name].names) if name in TABLES else set()
    plans: dict[str, _Plan] = {}
    for column in df.columns:
        if column in canonical:
            plans[column] = _Plan("keep")
            continue
        if column in keep:
            plans[column] = _plan_kept(name, column, df[column])
            continue
        if name == _TRUTH_PATIENTS and simulated and column == "patient_id":
            plans[column] = _Plan("keep")
            continue
        if name == _TRUTH_PATIENTS and simulated and not _kind_from_name(column):
            if column.endswith("_on"):
                plans[column] = _Plan("shift", dates=_truth_dates(df[column], column))
            else:
                plans[column] = _Plan("keep")
            continue
        kind = (
            "birth_date"
            if _is_birth_name(column)
            else _kind_from_name(column) or _kind_from_values(df[column]) or "not allowed"
        )
        plans[column] = _Plan("drop", kind)
    return plans


def _truth_dates(s: pd.Series, column: str) -> pd.Series:
    parsed = pd.to_datetime(s, format="ISO8601", errors="coerce")
    bad = parsed.isna() & s.notna()
    if bad.any():
        raise CohortFormatError(
            f"table '{_TRUTH_PATIENTS}', column '{column}': {int(bad.sum())} value(s) are not "
            f"ISO 8601 dates, so the column cannot be date-shifted. Fix: correct or drop it."
        )
    return parsed


# --------------------------------------------------------------------------------------------
# Canonical values: vocabularies, dates, ages
# --------------------------------------------------------------------------------------------


def _vocabulary(name: str, column: str, instruments: frozenset[str]) -> frozenset[str] | None:
    col = TABLES[name].column(column)
    if col.kind == "category":
        return frozenset(col.allowed or ())
    if name == "outcomes" and column == "instrument":
        return _KNOWN_INSTRUMENT_KEYS | instruments
    return None


def _instrument_key(s: pd.Series) -> pd.Series:
    return s.astype("str").str.strip().str.upper().str.replace(r"[\s_-]+", "", regex=True)


def _check_vocabularies(
    name: str, df: pd.DataFrame, instruments: frozenset[str]
) -> tuple[pd.DataFrame, list[tuple[str, str, int, str]]]:
    """Values outside a closed vocabulary: blanked (optional column) or the row withheld.

    Returns the frame and ``(table, column, rows, action)`` per column with such values.
    """
    found = []
    if name not in TABLES:
        return df, found
    withhold = pd.Series(False, index=df.index)
    out = df
    for col in TABLES[name].columns:
        vocab = _vocabulary(name, col.name, instruments)
        if vocab is None or col.name not in out.columns:
            continue
        s = out[col.name]
        codes, uniques = pd.factorize(s)  # check each distinct value once
        values = pd.Series(np.asarray(uniques, dtype=object), dtype="str")
        keys = _instrument_key(values) if col.name == "instrument" else values
        bad_value = np.append(~keys.isin(vocab).to_numpy(), False)  # code -1 (missing) is fine
        bad = pd.Series(bad_value[codes], index=s.index)
        n = int(bad.sum())
        if not n:
            continue
        if col.required:
            withhold |= bad
            found.append((name, col.name, n, "rows withheld"))
        else:
            out = out.assign(**{col.name: s.astype(object).where(~bad)})
            if isinstance(s.dtype, pd.CategoricalDtype):
                out[col.name] = out[col.name].astype(s.dtype)
            found.append((name, col.name, n, "values blanked"))
    if withhold.any():
        out = out[~withhold]
    return out, found


def _canonical_dates(name: str, df: pd.DataFrame) -> dict[str, pd.Series]:
    """Canonical date columns of ``df`` as datetimes (ISO 8601 text is parsed)."""
    dates = {}
    if name not in TABLES:
        return dates
    for col in TABLES[name].columns:
        if col.kind != "date" or col.name not in df.columns:
            continue
        s = df[col.name]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            dates[col.name] = s
            continue
        parsed = pd.to_datetime(s, format="ISO8601", errors="coerce")
        bad = parsed.isna() & s.notna()
        if bad.any():
            value = s[bad].iloc[0]
            raise CohortFormatError(
                f"table '{name}', column '{col.name}': {value!r} is not an ISO 8601 date, so the "
                f"column cannot be date-shifted. Fix: correct the value or drop the column."
            )
        dates[col.name] = parsed
    return dates


def _top_code(name: str, column: str, age: pd.Series) -> tuple[pd.Series, int]:
    if not pd.api.types.is_numeric_dtype(age.dtype):
        num = pd.to_numeric(age, errors="coerce")
        if (num.isna() & age.notna()).any():
            raise CohortFormatError(
                f"table '{name}', column '{column}' holds values that are not numbers, so ages "
                f">= {AGE_TOP_CODE} cannot be top-coded. Fix: load the cohort with load_cohort() "
                f"or convert the column to integers."
            )
        age = num
    old = (age >= AGE_TOP_CODE).fillna(False).astype(bool)
    n = int(old.sum())
    return (age.mask(old, AGE_TOP_CODE) if n else age), n


def _replace_ids(s: pd.Series, mapping: dict[str, str]) -> pd.Series:
    codes, uniques = pd.factorize(s)
    pseudonyms = np.array([mapping[str(u)] for u in uniques], dtype=object)
    if isinstance(s.dtype, pd.CategoricalDtype):
        order = np.argsort(pseudonyms, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        new_codes = np.where(codes >= 0, rank[np.maximum(codes, 0)], -1)
        values = pd.Categorical.from_codes(new_codes, categories=pseudonyms[order])
        return pd.Series(values, index=s.index, name=s.name)
    values = pd.array(pseudonyms, dtype="str").take(codes, allow_fill=True)
    return pd.Series(values, index=s.index, name=s.name)


def _ids(frames: dict[str, pd.DataFrame], column: str) -> set[str]:
    values: set[str] = set()
    for df in frames.values():
        if column in df.columns:
            values.update(str(v) for v in pd.unique(df[column].dropna()))
    return values


# --------------------------------------------------------------------------------------------
# k-anonymity
# --------------------------------------------------------------------------------------------

#: Quasi-identifiers of the k-anonymity summary (columns of ``patients``).
QUASI_IDENTIFIERS: tuple[str, ...] = ("age", "sex", "clinic_id", "guided_weeks")
#: Smallest equivalence class below which the summary warns.
K_TARGET = 5
#: The merged clinic of :func:`generalise`.
MERGED_CLINIC = "C-merged"


def _age_bands(age: pd.Series, width: int) -> pd.Series:
    num = pd.to_numeric(age, errors="coerce").clip(upper=AGE_TOP_CODE)
    return (np.floor(num / width) * width).astype("Int64")


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ConfigError(f"{name}={value!r}; allowed: a whole number of at least {low}.")
    return int(value)


def generalise(
    patients: pd.DataFrame, *, age_band: int | None = None, merge_clinics_below: int = 0
) -> pd.DataFrame:
    """``patients`` with ages in bands and small clinics merged; the input is not changed.

    Parameters
    ----------
    patients : pandas.DataFrame
        A ``patients`` table.
    age_band : int, optional
        Band width in years: ``age`` becomes the band's lower bound (``age_band=10``: 37 -> 30;
        ages of 90 and above count as 90, so ``age_band=20`` puts them in the band 80). None
        keeps ages as they are.
    merge_clinics_below : int
        Clinics with fewer patients than this become one clinic, ``"C-merged"``.

    Returns
    -------
    pandas.DataFrame
        The same columns and rows.
    """
    out = patients.copy()
    if age_band is not None and "age" in out.columns:
        _check_int("age_band", age_band, 1)
        out["age"] = _age_bands(out["age"], age_band)
    _check_int("merge_clinics_below", merge_clinics_below, 0)
    if merge_clinics_below and "clinic_id" in out.columns:
        sizes = out["clinic_id"].astype("str").map(out["clinic_id"].astype("str").value_counts())
        small = out["clinic_id"].notna() & (sizes < merge_clinics_below)
        if small.any():
            out["clinic_id"] = out["clinic_id"].astype("str").where(~small, MERGED_CLINIC)
    return out


def k_anonymity(
    patients: pd.DataFrame,
    *,
    age_band: int | list[int] | tuple[int, ...] = 10,
    merge_clinics_below: int | list[int] | tuple[int, ...] = 0,
    quasi_identifiers: list[str] | tuple[str, ...] = QUASI_IDENTIFIERS,
    k: int = K_TARGET,
) -> pd.DataFrame:
    """The k-anonymity of ``patients`` over quasi-identifiers, for each generalisation asked.

    Patients are grouped by the quasi-identifiers present (age in bands of ``age_band`` years,
    sex, clinic with clinics below ``merge_clinics_below`` patients merged, planned program
    length); a missing value is a value of its own. The smallest group is ``k``: each patient
    shares every quasi-identifier with at least ``k - 1`` others. Holds counts only.

    Parameters
    ----------
    patients : pandas.DataFrame
        A ``patients`` table (de-identified or not).
    age_band, merge_clinics_below : int or sequence of int
        Generalisations to evaluate; one row per combination, in the order given.
    quasi_identifiers : sequence of str
        Columns of ``patients`` (absent ones are skipped).
    k : int
        The smallest class size wanted (default 5).

    Returns
    -------
    pandas.DataFrame
        One row per combination: ``quasi_identifiers`` (the columns used, joined by ``+``),
        ``age_band_years``, ``merge_clinics_below``, ``patients``, ``classes`` (equivalence
        classes), ``smallest_class``, ``classes_below_k``, ``patients_below_k``, ``k_target`` and
        ``meets_k`` (``smallest_class >= k_target``).
    """
    if not isinstance(patients, pd.DataFrame):
        raise TypeError(f"k_anonymity expects a pandas DataFrame, got {type(patients).__name__}.")
    k = _check_int("k", k, 1)
    bands = [age_band] if isinstance(age_band, int | np.integer) else list(age_band)
    merges = (
        [merge_clinics_below]
        if isinstance(merge_clinics_below, int | np.integer)
        else list(merge_clinics_below)
    )
    used = [q for q in quasi_identifiers if q in patients.columns]
    rows = []
    for band in bands:
        for merge in merges:
            gen = generalise(patients[used], age_band=band, merge_clinics_below=merge)
            keys = gen.astype("str").where(gen.notna(), "<missing>")
            sizes = keys.value_counts(sort=False) if used else pd.Series([len(gen)])
            sizes = sizes[sizes > 0]
            small = sizes[sizes < k]
            rows.append(
                {
                    "quasi_identifiers": "+".join(used),
                    "age_band_years": int(band),
                    "merge_clinics_below": int(merge),
                    "patients": len(patients),
                    "classes": len(sizes),
                    "smallest_class": int(sizes.min()) if len(sizes) else 0,
                    "classes_below_k": len(small),
                    "patients_below_k": int(small.sum()),
                    "k_target": k,
                    "meets_k": bool(len(sizes) and sizes.min() >= k),
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------

# Keys of cohort.json that a de-identified cohort keeps (others are dropped and listed).
_META_KEYS = frozenset(
    (
        "format_version",
        "source",
        "created",
        "ptanalytics_version",
        "file_format",
        "row_counts",
        "seed",
        "config_sha256",
        "n_patients",
        "ingest",
        "schedule",
        "chunking",
        "written_by",
        "csv_neutralised",
    )
)


def _file_names(metadata: dict) -> tuple[set[str], set[str]]:
    """Original source file (and mapping) names, and sheet names, of ``metadata["ingest"]``."""
    files: set[str] = set()
    sheets: set[str] = set()
    ingest = metadata.get("ingest")
    if not isinstance(ingest, dict):
        return files, sheets
    for s in ingest.get("sources") or ():
        if isinstance(s, dict):
            if isinstance(s.get("file"), str) and s["file"]:
                files.add(s["file"])
            if isinstance(s.get("sheet"), str) and s["sheet"]:
                sheets.add(s["sheet"])
    if isinstance(ingest.get("mapping"), str) and ingest["mapping"]:
        files.add(ingest["mapping"])
    return files, sheets


# Words a file stem may not replace in metadata text (they name tables and columns).
_PROTECTED_WORDS = frozenset(
    (*TABLE_NAMES, _TRUTH_PATIENTS, QUARANTINE, "source_rows", *_CANONICAL)
)


def _name_pseudonyms(
    key: bytes, files: set[str], sheets: set[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Replacements in metadata text (file names and their stems), and of sheet names."""
    text: dict[str, str] = {}
    for name in sorted(files):
        digest = _digest(key, b"file:", name).hex()[:10]
        text[name] = f"source-{digest}{Path(name).suffix.lower()}"
        stem = Path(name).stem
        if len(stem) >= 3 and stem.lower() not in _PROTECTED_WORDS:
            text.setdefault(stem, f"source-{digest}")
    sheet_map = {name: f"sheet-{_digest(key, b'sheet:', name).hex()[:10]}" for name in sheets}
    return text, sheet_map


def _replacer(replacements: dict[str, str]):
    """A function that rewrites a string, replacing whole-word occurrences (longest first)."""
    if not replacements:
        return lambda text: text
    alternatives = "|".join(re.escape(k) for k in sorted(replacements, key=len, reverse=True))
    pattern = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")
    return lambda text: pattern.sub(lambda m: replacements[m.group(0)], text)


def _rewrite(obj: Any, fn) -> Any:
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: _rewrite(v, fn) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_rewrite(v, fn) for v in obj]
    return obj


def _metadata(
    cohort: Cohort, key: bytes, id_maps: dict[str, dict[str, str]]
) -> tuple[dict[str, Any], list[str]]:
    """The de-identified ``cohort.json`` body and the keys it left out."""
    meta = cohort.metadata if isinstance(cohort.metadata, dict) else {}
    dropped = sorted(k for k in meta if k not in _META_KEYS and k != "deidentified")
    body = {k: copy.deepcopy(v) for k, v in meta.items() if k in _META_KEYS}
    names, sheets = _name_pseudonyms(key, *_file_names(body))
    # Original ids inside text become pseudonyms (all-digit ids are left: they read as counts).
    ids = {
        old: new
        for mapping in id_maps.values()
        for old, new in mapping.items()
        if not old.isdigit()
    }
    token = re.compile(r"[A-Za-z0-9_.:-]+")
    rename = _replacer(names)

    def clean(text: str) -> str:
        for old, new in sheets.items():  # sheets appear as file.xlsx[sheet]
            text = text.replace(f"[{old}]", f"[{new}]")
        return token.sub(lambda m: ids.get(m.group(0), m.group(0)), rename(text))

    body = _rewrite(body, clean)
    if isinstance(body.get("ingest"), dict):
        body["ingest"].pop("today", None)  # the day of the export: a real calendar date
        for source in body["ingest"].get("sources") or ():
            if isinstance(source, dict) and source.get("sheet") in sheets:
                source["sheet"] = sheets[source["sheet"]]
        files = [s.get("file") for s in body["ingest"].get("sources") or () if isinstance(s, dict)]
        body["source"] = "ingested: " + ", ".join(dict.fromkeys(f for f in files if f))
    elif body.get("source") not in (None, "simulated", "unknown"):
        body["source"] = "withheld (de-identified)"
    return body, dropped


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeidentificationReport:
    """What :func:`deidentify` (or :func:`deidentify_directory`) did. Holds no identifiers.

    Attributes
    ----------
    dropped_columns : list of (str, str, str)
        ``(table, column, kind)`` of every dropped column: ``kind`` as in
        :func:`~ptanalytics.privacy.identifiers.find_identifier_columns`, ``"birth_date"``,
        ``"not allowed"`` (an extra column not in ``keep_attributes``) or ``"date (cannot be
        shifted)"`` (a kept attribute whose dates are not full dates in one known format).
    ages_top_coded : int
        Number of age values (``age`` and kept age-like attributes) of 90 or more set to 90.
    patients : int
        Number of distinct patients (over all tables) that received a pseudonym and a date shift.
    shifted_columns : list of (str, str)
        ``(table, column)`` of every date column that was shifted.
    quarantine_skipped : bool
        The cohort had quarantined rows (``cohort.quarantine``, or a ``quarantine/`` folder in the
        source folder of :func:`deidentify_directory`): raw rejected rows that may hold
        identifiers, which were not copied.
    kept_attributes : list of (str, str)
        ``(table, column)`` of the extra columns kept because they were allowed.
    replaced_values : list of (str, str, int, str)
        ``(table, column, rows, action)`` for values outside a canonical vocabulary:
        ``"rows withheld"`` (required column) or ``"values blanked"`` (optional column).
    dropped_metadata : list of str
        Keys of ``cohort.json`` not carried over (unknown, possibly free-form).
    smallest_class : int or None
        k: the smallest equivalence class over the quasi-identifiers (:func:`k_anonymity`).
    k_anonymity : pandas.DataFrame or None
        The :func:`k_anonymity` table of the output at its generalisation, then wider ones.
    """

    dropped_columns: list[tuple[str, str, str]]
    ages_top_coded: int
    patients: int
    shifted_columns: list[tuple[str, str]] = field(default_factory=list)
    quarantine_skipped: bool = False
    kept_attributes: list[tuple[str, str]] = field(default_factory=list)
    replaced_values: list[tuple[str, str, int, str]] = field(default_factory=list)
    dropped_metadata: list[str] = field(default_factory=list)
    smallest_class: int | None = None
    k_anonymity: pd.DataFrame | None = field(default=None, compare=False, repr=False)

    @property
    def rows_withheld(self) -> int:
        """Rows left out because a required canonical value was outside its vocabulary."""
        return sum(n for _, _, n, action in self.replaced_values if action == "rows withheld")

    def summary(self) -> str:
        """A few lines for people: counts and column names only, never an identifier value."""
        dropped = ", ".join(f"{t}.{c} ({k})" for t, c, k in self.dropped_columns) or "none"
        shifted = ", ".join(f"{t}.{c}" for t, c in self.shifted_columns) or "none"
        kept = ", ".join(f"{t}.{c}" for t, c in self.kept_attributes) or "none"
        lines = [
            f"De-identified cohort: {self.patients} patients.",
            "Pseudonyms: patient_id, clinic_id and therapist_id replaced by keyed HMAC-SHA256 "
            "pseudonyms; source file and sheet names pseudonymised.",
            f"Dates shifted per patient by -{MAX_SHIFT_DAYS}..{MAX_SHIFT_DAYS} days "
            f"(intervals kept): {shifted}.",
            f"Columns dropped: {dropped}.",
            f"Extra attributes kept (allowed explicitly): {kept}.",
            f"Ages >= {AGE_TOP_CODE} top-coded to {AGE_TOP_CODE}: {self.ages_top_coded}.",
        ]
        for t, c, n, action in self.replaced_values:
            lines.append(f"Outside the vocabulary of {t}.{c}: {n} ({action}).")
        if self.dropped_metadata:
            lines.append(f"cohort.json keys not copied: {', '.join(self.dropped_metadata)}.")
        if self.quarantine_skipped:
            lines.append(
                f"Not copied: {QUARANTINE}/ of the source folder (raw rejected rows; may hold "
                f"identifiers). Keep it out of shared exports."
            )
        if self.k_anonymity is not None and len(self.k_anonymity):
            lines.append(_k_lines(self.k_anonymity))
        lines.append(
            "Not anonymous: quasi-identifiers (age, sex, clinic, dates) remain; keep the key "
            "secret and apart from the data."
        )
        return "\n".join(lines)


def _k_lines(table: pd.DataFrame) -> str:
    first = table.iloc[0]
    merged = (
        f"clinics below {first.merge_clinics_below} patients merged"
        if first.merge_clinics_below
        else "no clinics merged"
    )
    head = (
        f"k-anonymity over {first.quasi_identifiers or 'nothing'} (age bands of "
        f"{first.age_band_years} years, {merged}): smallest class k = {first.smallest_class}; "
        f"{first.classes_below_k} of {first.classes} classes ({first.patients_below_k} patients) "
        f"below {first.k_target}."
    )
    if first.meets_k:
        return head
    wider = table.iloc[1:]
    ok = wider[wider["meets_k"]]
    hint = (
        "Options: "
        + "; ".join(
            f"--age-band {r.age_band_years} --merge-clinics-below {r.merge_clinics_below} "
            f"gives k = {r.smallest_class}"
            for r in (ok if len(ok) else wider).head(3).itertuples()
        )
        if len(wider)
        else ""
    )
    table_text = table.to_string(index=False)
    return (
        f"WARNING: {head} Generalise before sharing. {hint}\n{table_text}"
        if hint
        else f"WARNING: {head}\n{table_text}"
    )


# --------------------------------------------------------------------------------------------
# De-identifying a cohort
# --------------------------------------------------------------------------------------------


def _check_arguments(cohort: object, key: object, age_band: object, merge: object) -> bytes:
    """Refuse a cohort that is not a Cohort and bad options; return the checked key."""
    if not isinstance(cohort, Cohort):
        raise TypeError(
            f"deidentify expects a Cohort, got {type(cohort).__name__}. Fix: load one with "
            f"ptanalytics.load_cohort(path)."
        )
    key = _check_key(key)
    if age_band is not None:
        _check_int("age_band", age_band, 1)
    _check_int("merge_clinics_below", merge, 0)
    return key


def _frames(cohort: Cohort, simulated: bool) -> dict[str, pd.DataFrame]:
    """The tables to de-identify: the canonical five, and ``truth_patients`` if simulated."""
    frames = dict(cohort.tables)
    if simulated and cohort.truth_patients is not None:
        frames[_TRUTH_PATIENTS] = cohort.truth_patients
    return frames


def _keyed_ids(
    key: bytes, frames: dict[str, pd.DataFrame], plans: dict[str, dict[str, _Plan]]
) -> tuple[dict[str, dict[str, str]], dict[str, int]]:
    """Pseudonyms of every id kept (per id column) and the date shift of every patient."""
    kept_frames = {
        name: df[[c for c, p in plans[name].items() if p.action != "drop"]]
        for name, df in frames.items()
    }
    maps = {
        column: _pseudonym_map(key, _ids(kept_frames, column), prefix, domain, column)
        for column, prefix, domain in _ID_COLUMNS
    }
    shifts = {pid: _shift_days(key, pid) for pid in maps["patient_id"]}
    return maps, shifts


def _dropped_and_kept(
    plans: dict[str, dict[str, _Plan]], keep: dict[str, set[str]]
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """``(table, column, kind)`` of the dropped columns, ``(table, column)`` of kept extras."""
    dropped = [
        (name, column, p.kind)
        for name, found in plans.items()
        for column, p in found.items()
        if p.action == "drop"
    ]
    kept = [
        (name, column)
        for name, found in plans.items()
        for column, p in found.items()
        if column in keep.get(name, ()) and p.action != "drop"
    ]
    return dropped, kept


def _k_summary(patients: pd.DataFrame, age_band: int | None, merge: int) -> pd.DataFrame:
    """:func:`k_anonymity` of the output at its generalisation, then at wider ones."""
    band = 10 if age_band is None else age_band
    everyone = len(patients) + 1  # merging clinics below this merges them all
    return k_anonymity(
        patients,
        age_band=[band, *(b for b in (20, 40, 100) if b > band)],
        merge_clinics_below=[merge] + [m for m in (20, everyone) if m > merge],
    )


def _deidentify_frame(
    name: str,
    df: pd.DataFrame,
    plans: dict[str, _Plan],
    maps: dict[str, dict[str, str]],
    shifts: dict[str, int],
) -> tuple[pd.DataFrame, int, list[str]]:
    drop = [c for c, p in plans.items() if p.action == "drop"]
    out = df.drop(columns=drop)
    n_aged = 0
    ages = [c for c, p in plans.items() if p.action == "age"]
    if "age" in out.columns and name == "patients":
        ages.insert(0, "age")
    for column in ages:
        out[column], n = _top_code(name, column, out[column])
        n_aged += n
    if "patient_id" not in out.columns:
        raise CohortFormatError(
            f"table '{name}' has no patient_id column, so its dates cannot be shifted per "
            f"patient. Fix: add patient_id (see docs/data_dictionary.md)."
        )
    codes, uniques = pd.factorize(out["patient_id"])
    missing = int((codes < 0).sum())
    if missing:
        raise CohortFormatError(
            f"table '{name}': {missing} row(s) have no patient_id, so their dates cannot be "
            f"shifted. Fix: complete or drop those rows before de-identifying."
        )
    dates = _canonical_dates(name, out)
    dates.update({c: p.dates.loc[out.index] for c, p in plans.items() if p.action == "shift"})
    if dates:
        days = np.array([shifts[str(u)] for u in uniques], dtype=np.int64)[codes]
        delta = pd.to_timedelta(days, unit="D").to_numpy()
        for column, s in dates.items():
            shifted = (s + delta).astype(s.dtype)
            out[column] = shifted.set_axis(out.index)
    for column, _prefix, _domain in _ID_COLUMNS:
        if column in out.columns:
            out[column] = _replace_ids(out[column], maps[column])
    out = out.sort_values("patient_id", kind="stable").reset_index(drop=True)
    return out, n_aged, list(dates)


def deidentify(
    cohort: Cohort,
    *,
    key: bytes,
    keep_attributes: list[str] | tuple[str, ...] = (),
    instruments: list[str] | tuple[str, ...] = (),
    age_band: int | None = None,
    merge_clinics_below: int = 0,
) -> tuple[Cohort, DeidentificationReport]:
    """A de-identified copy of ``cohort``; the input is not changed.

    * **Drop by default.** Only the canonical columns of each table (the data dictionary,
      :data:`ptanalytics.cohort.TABLES`) and the extra columns named in ``keep_attributes``
      survive. Study attributes such as a trial ``arm`` are kept only when named. A kept
      attribute named like a birth date or a direct identifier, or with an e-mail address, a
      phone or record number or a date inside its values, is refused.
    * ``patient_id`` becomes ``"P" + HMAC-SHA256(key, b"patient:" + id)`` (first 16 hex digits),
      in every table and in ``truth_patients``; ``clinic_id`` and ``therapist_id`` likewise, with
      prefixes ``"C"``/``"T"`` and domains ``b"clinic:"``/``b"therapist:"``.
    * Every date of a patient is shifted by the patient's offset,
      ``v - 365`` days if ``v < 365`` else ``v - 364``, where ``v = int.from_bytes(HMAC-SHA256(key,
      b"dateshift:" + id), "big") % 730`` (so -365..-1 or 1..365, never 0): the
      canonical dates and kept date-like attributes (ISO, time-zone aware, ``dd/mm/yyyy`` or
      ``mm/dd/yyyy`` when unambiguous). A kept date-like attribute that cannot be read as full
      dates (year-month, Excel serial numbers, ambiguous day/month) is dropped instead.
    * ``age`` and kept age-like attributes (``age_at_referral``, ...) of 90 or more become 90.
    * Canonical text columns are checked against their vocabularies (``phase``, ``exercise``,
      ``category``, ``sex``, ``chronicity``, ``kind``, and ``instrument`` against
      :data:`KNOWN_INSTRUMENTS` plus ``instruments``): a row with an unknown value in a required
      column is withheld, an unknown value in an optional column is blanked.
    * Source file and sheet names in the metadata become keyed pseudonyms; unknown
      ``cohort.json`` keys are dropped; original ids in metadata text become their pseudonyms.
    * Rows are re-ordered by pseudonym; quarantined rows (``cohort.quarantine``) are not carried.
    * Optional generalisation: ``age_band`` and ``merge_clinics_below`` as in :func:`generalise`.

    Parameters
    ----------
    cohort : Cohort
        The cohort, e.g. from :func:`~ptanalytics.cohort.io.load_cohort`.
    key : bytes
        Secret key, 32 random bytes (:func:`~ptanalytics.privacy.identifiers.new_key`). Keep it
        apart from the data.
    keep_attributes : sequence of str
        Extra columns to keep, as ``"column"`` (in any table) or ``"table.column"``.
    instruments : sequence of str
        Outcome instruments to accept besides :data:`KNOWN_INSTRUMENTS`.
    age_band : int, optional
        Put ages in bands of this many years (the band's lower bound).
    merge_clinics_below : int
        Merge clinics with fewer patients than this into one (``"C-merged"``).

    Returns
    -------
    cohort : Cohort
        New cohort; its ``metadata`` gains ``"deidentified"``: ``{"method", "dropped_columns",
        "kept_attributes", "replaced_values", "ages_top_coded", "age_band",
        "merge_clinics_below", "smallest_class"}``.
    report : DeidentificationReport
        What was done, with the :func:`k_anonymity` summary of the output.

    Raises
    ------
    TypeError
        ``cohort`` is not a Cohort or ``key`` is not bytes.
    ConfigError
        The key is short or low-entropy; a kept attribute is unknown or must not be kept; or
        (practically never) two ids collide under the key.
    CohortFormatError
        A table has rows without ``patient_id``, a non-numeric age, or a canonical date column
        with a value that is not a date.

    Examples
    --------
    >>> import ptanalytics as pt
    >>> from ptanalytics.privacy.identifiers import new_key
    >>> cohort = pt.simulate_cohort(60, seed=2)
    >>> safe, report = pt.deidentify(cohort, key=new_key())
    >>> len(safe.patients) == len(cohort.patients)
    True
    """
    key = _check_arguments(cohort, key, age_band, merge_clinics_below)
    allowed = frozenset(_instrument_key(pd.Series(list(instruments), dtype="str")))
    simulated = cohort.metadata.get("source") == "simulated" and cohort.truth is not None
    frames = _frames(cohort, simulated)
    keep = _parse_keep(keep_attributes, frames)
    replaced = []
    for name in list(frames):
        frames[name], found = _check_vocabularies(name, frames[name], allowed)
        replaced += found
    plans = {
        name: _plan_frame(name, df, keep.get(name, set()), simulated) for name, df in frames.items()
    }
    maps, shifts = _keyed_ids(key, frames, plans)
    new, n_aged, shifted = {}, 0, []
    for name, df in frames.items():
        new[name], n, columns = _deidentify_frame(name, df, plans[name], maps, shifts)
        n_aged += n
        shifted += [(name, c) for c in columns]
    new["patients"] = generalise(
        new["patients"], age_band=age_band, merge_clinics_below=merge_clinics_below
    )
    dropped, kept = _dropped_and_kept(plans, keep)
    table = _k_summary(new["patients"], age_band, merge_clinics_below)
    smallest = int(table["smallest_class"].iloc[0]) if len(new["patients"]) else None
    metadata, dropped_meta = _metadata(cohort, key, maps)
    metadata["deidentified"] = {
        "method": METHOD,
        "dropped_columns": [list(d) for d in dropped],
        "kept_attributes": [list(k) for k in kept],
        "replaced_values": [list(r) for r in replaced],
        "ages_top_coded": n_aged,
        "age_band": age_band,
        "merge_clinics_below": merge_clinics_below,
        "smallest_class": smallest,
    }
    result = Cohort(
        **{name: new[name] for name in TABLE_NAMES},
        metadata=metadata,
        truth=copy.deepcopy(cohort.truth) if simulated else None,
        truth_patients=new.get(_TRUTH_PATIENTS),
    )
    report = DeidentificationReport(
        dropped_columns=dropped,
        ages_top_coded=n_aged,
        patients=len(maps["patient_id"]),
        shifted_columns=shifted,
        quarantine_skipped=bool(getattr(cohort, "quarantine", None)),
        kept_attributes=kept,
        replaced_values=replaced,
        dropped_metadata=dropped_meta,
        smallest_class=smallest,
        k_anonymity=table,
    )
    return result, report


# --------------------------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------------------------


def _file_format(src: Path, cohort: Cohort) -> str:
    """The file format of ``src``: as its ``cohort.json`` says, else that of its patients table."""
    fmt = cohort.metadata.get("file_format")
    if fmt in ("parquet", "csv"):
        return fmt
    patients = find_table(src, "patients")
    return "parquet" if patients is None else patients.format


def deidentify_directory(
    src: str | os.PathLike,
    out: str | os.PathLike,
    key_file: str | os.PathLike,
    *,
    overwrite: bool = False,
    create_key: bool = False,
    keep_attributes: list[str] | tuple[str, ...] = (),
    instruments: list[str] | tuple[str, ...] = (),
    age_band: int | None = None,
    merge_clinics_below: int = 0,
) -> DeidentificationReport:
    """De-identify the cohort folder ``src`` into the new folder ``out``.

    Loads ``src`` with :func:`~ptanalytics.cohort.io.load_cohort`, applies :func:`deidentify` with
    the key in ``key_file`` (:func:`~ptanalytics.privacy.identifiers.read_key_file`) and writes
    the result to ``out`` in the file format of ``src``. Only the cohort (tables,
    ``cohort.json``, and for simulated cohorts ``truth.json`` and ``truth_patients``) is written:
    a ``quarantine/`` folder of ``src`` (raw rejected rows from ingest, which may hold
    identifiers) and any other file are not copied.

    Parameters
    ----------
    src : path-like
        Cohort folder to de-identify; left unchanged.
    out : path-like
        Destination folder; must not be ``src`` or a folder containing it.
    key_file : path-like
        Key file (see :func:`~ptanalytics.privacy.identifiers.read_key_file`); must not lie
        inside ``out``.
    overwrite : bool
        Replace an existing non-empty ``out``.
    create_key : bool
        When ``key_file`` does not exist, create it with
        :func:`~ptanalytics.privacy.identifiers.write_key_file`. An existing key file is read,
        never replaced.
    keep_attributes, instruments, age_band, merge_clinics_below
        As in :func:`deidentify`.

    Returns
    -------
    DeidentificationReport
        As from :func:`deidentify`, with ``quarantine_skipped`` set when ``src`` had a
        ``quarantine/`` folder.

    Raises
    ------
    KeyFileError
        ``key_file`` is missing (without ``create_key``), unreadable, not private to its owner,
        not in a key format, short or low-entropy, or inside ``out``.
    CohortFormatError
        ``out`` is ``src`` or contains it, ``out`` exists and is not empty (without
        ``overwrite``), or ``src`` is not a valid cohort folder.
    """
    src_path, out_path = Path(src).expanduser(), Path(out).expanduser()
    key_path = Path(key_file).expanduser()
    src_r, out_r, key_r = src_path.resolve(), out_path.resolve(), key_path.resolve()
    if src_r == out_r or src_r.is_relative_to(out_r):
        raise CohortFormatError(
            f"out={out_path} is the source folder {src_path} or contains it; writing there would "
            f"destroy the original. Fix: choose a separate output folder."
        )
    if key_r.is_relative_to(out_r):
        raise KeyFileError(
            f"{key_path}: key file lies inside the output folder {out_path}, so it would be "
            f"shared with (or deleted with) the export. Fix: keep the key in a separate place."
        )
    if key_r.is_relative_to(src_r):
        raise KeyFileError(
            f"{key_path}: key file lies inside the cohort folder {src_path}; a key kept with the "
            f"data it protects protects nothing. Fix: move it to a separate, private place."
        )
    if create_key and not os.path.lexists(key_path):
        key = write_key_file(key_path)
    else:
        key = read_key_file(key_path)
    cohort = load_cohort(src_path)
    result, report = deidentify(
        cohort,
        key=key,
        keep_attributes=keep_attributes,
        instruments=instruments,
        age_band=age_band,
        merge_clinics_below=merge_clinics_below,
    )
    result.write(out_path, format=_file_format(src_path, cohort), overwrite=overwrite)
    skipped = report.quarantine_skipped or (src_path / QUARANTINE).is_dir()
    return dataclasses.replace(report, quarantine_skipped=skipped)
