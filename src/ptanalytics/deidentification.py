"""De-identification of a cohort: keyed pseudonyms, per-patient date shifts, dropped identifiers.

:func:`deidentify` returns a new :class:`~ptanalytics.cohort.Cohort` in which

* ``patient_id``, ``clinic_id`` and ``therapist_id`` are replaced by keyed HMAC-SHA256 pseudonyms
  (the same key gives the same pseudonyms, so exports made with one key can be linked);
* every date of a patient is shifted by the same number of days (-365 to 365, derived from the key
  and the patient's original id), so that intervals within a patient are kept;
* columns that look like direct identifiers (names, addresses, phone numbers, e-mail addresses,
  record numbers, social security numbers, free text, birth dates) are dropped;
* ages of 90 and above are top-coded to 90.

This is pseudonymisation, not anonymisation: quasi-identifiers (age, sex, clinic, program dates,
rare combinations) remain. See ``docs/deidentification.md``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ptanalytics.cohort import TABLE_NAMES, Cohort, load_cohort
from ptanalytics.exceptions import CohortFormatError, ConfigError, PtAnalyticsError
from ptanalytics.schema import TABLES

__all__ = [
    "DeidentificationReport",
    "deidentify",
    "deidentify_directory",
    "find_identifier_columns",
    "new_key",
]

#: Bytes of a key made by :func:`new_key`.
KEY_BYTES = 32
#: Shortest key accepted.
MIN_KEY_BYTES = 16
#: Largest date shift in days (either direction).
MAX_SHIFT_DAYS = 365
#: Ages at or above this are top-coded to it (HIPAA Safe Harbor).
AGE_TOP_CODE = 90
#: Non-null values per column examined by the value patterns.
SAMPLE_SIZE = 1_000

METHOD = (
    "HMAC-SHA256 pseudonyms, per-patient date shift (-365..365 days), identifier columns dropped, "
    "ages >= 90 top-coded"
)
QUARANTINE = "quarantine"
_TRUTH_PATIENTS = "truth_patients"

# (column, prefix, HMAC domain) of every identifier that is replaced by a pseudonym.
_ID_COLUMNS: tuple[tuple[str, str, bytes], ...] = (
    ("patient_id", "P", b"patient:"),
    ("clinic_id", "C", b"clinic:"),
    ("therapist_id", "T", b"therapist:"),
)
_CANONICAL: frozenset[str] = frozenset(name for t in TABLES.values() for name in t.names)
_CANONICAL_DATES: frozenset[str] = frozenset(
    c.name for t in TABLES.values() for c in t.columns if c.kind == "date"
)


class KeyFileError(PtAnalyticsError, ValueError):
    """The key file is missing, unreadable, too short or in the wrong place."""


# --------------------------------------------------------------------------------------------
# Finding identifier columns
# --------------------------------------------------------------------------------------------

# Kinds in the order they win when a column name suggests more than one (``email_address`` is an
# e-mail address, ``street_name`` an address).
_KIND_ORDER = ("email", "ssn", "mrn", "phone", "birth_date", "address", "name", "free_text")

# Tokens (of the snake_case column name) that alone mark a kind.
_TOKENS: dict[str, str] = {
    **dict.fromkeys(("email", "emailaddress"), "email"),
    **dict.fromkeys(("ssn", "nhs", "passport"), "ssn"),
    **dict.fromkeys(("mrn", "mrns"), "mrn"),
    **dict.fromkeys(("phone", "telephone", "phonenumber", "cellphone", "fax", "tel"), "phone"),
    **dict.fromkeys(("dob", "birth", "birthdate", "birthday"), "birth_date"),
    **dict.fromkeys(
        (
            "address",
            "street",
            "city",
            "town",
            "county",
            "zip",
            "zipcode",
            "postcode",
            "postalcode",
        ),
        "address",
    ),
    **dict.fromkeys(
        ("surname", "firstname", "lastname", "fullname", "forename", "initials", "username"),
        "name",
    ),
    **dict.fromkeys(
        ("note", "notes", "comment", "comments", "narrative", "freetext", "remarks"), "free_text"
    ),
}
# Runs of consecutive tokens that mark a kind.
_PHRASES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("e", "mail"), "email"),
    (("social", "security"), "ssn"),
    (("national", "id"), "ssn"),
    (("medical", "record"), "mrn"),
    (("record", "number"), "mrn"),
    (("record", "no"), "mrn"),
    (("chart", "number"), "mrn"),
    (("chart", "no"), "mrn"),
    (("cell", "number"), "phone"),
    (("cell", "no"), "phone"),
    (("mobile", "number"), "phone"),
    (("mobile", "no"), "phone"),
    (("postal", "code"), "address"),
    (("post", "code"), "address"),
    (("free", "text"), "free_text"),
)
# Whole names that mark a kind (too ambiguous as tokens).
_EXACT: dict[str, str] = {"name": "name", "names": "name", "cell": "phone", "mobile": "phone"}
# ``<thing>_name`` columns that do not name a person or place.
_IMPERSONAL_NAMES = frozenset(
    (
        "exercise",
        "instrument",
        "category",
        "phase",
        "kind",
        "program",
        "programme",
        "protocol",
        "file",
        "column",
        "field",
        "variable",
        "table",
        "test",
        "measure",
        "scale",
        "item",
        "drug",
        "medication",
        "outcome",
        "study",
        "trial",
        "arm",
        "group",
        "cohort",
        "device",
        "app",
        "intervention",
        "cointervention",
        "condition",
        "diagnosis",
        "treatment",
        "source",
    )
)

_EMAIL = r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
_SSN = r"\d{3}-\d{2}-\d{4}"
_MRN = r"(?i:MRN)[\s:#_-]*[A-Za-z0-9][A-Za-z0-9-]{3,}"
_PHONE = (
    r"(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-]?)\d{3}[\s.-]?\d{4}"  # North American
    r"|\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5}"  # international, +country code
    r"|0\d{2,4}[\s.-]?\d{3,4}[\s.-]?\d{3,4}"  # national trunk prefix 0 (e.g. UK)
)
# Value patterns in the order they win when several match in one column.
_VALUE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("ssn", _SSN),
    ("email", _EMAIL),
    ("mrn", _MRN),
    ("phone", _PHONE),
)
_DATE_TEXT = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"


def _tokens(name: str) -> list[str]:
    """``'PatientEmail'``, ``'patient-email'``, ``'Patient E-mail'`` -> ``['patient', 'email']``."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name)).lower()
    return [t for t in re.split(r"[^0-9a-z]+", snake) if t]


def _kind_from_name(name: str) -> str | None:
    tokens = _tokens(name)
    joined = "_".join(tokens)
    found: set[str] = set()
    if joined in _EXACT:
        found.add(_EXACT[joined])
    found.update(_TOKENS[t] for t in tokens if t in _TOKENS)
    for phrase, kind in _PHRASES:
        n = len(phrase)
        if any(tuple(tokens[i : i + n]) == phrase for i in range(len(tokens) - n + 1)):
            found.add(kind)
    if len(tokens) >= 2 and tokens[-1] in ("name", "names") and tokens[-2] not in _IMPERSONAL_NAMES:
        found.add("name")
    return next((kind for kind in _KIND_ORDER if kind in found), None)


def _text_sample(s: pd.Series) -> pd.Series | None:
    """The first :data:`SAMPLE_SIZE` non-null values as strings, or None for non-text columns."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        if not pd.api.types.is_string_dtype(s.dtype.categories.dtype):
            return None
    elif not pd.api.types.is_string_dtype(s.dtype) and s.dtype != object:
        return None
    sample = s.dropna().head(SAMPLE_SIZE)
    if sample.empty:
        return None
    return sample.astype("str").str.strip()


def _kind_from_values(s: pd.Series) -> str | None:
    sample = _text_sample(s)
    if sample is None:
        return None
    for kind, pattern in _VALUE_PATTERNS:
        hits = sample.str.fullmatch(pattern)
        if kind == "phone":
            digits = sample.str.count(r"\d")
            hits = hits & digits.between(10, 15)
        if hits.any():
            return kind
    return None


def find_identifier_columns(df: pd.DataFrame) -> list[tuple[str, str]]:
    """Columns of ``df`` that look like direct identifiers.

    A column is flagged by its name (case-insensitive, in any of snake_case, camelCase or with
    spaces: ``first_name``, ``Surname``, ``home_address``, ``zip``, ``Phone``, ``e-mail``, ``mrn``,
    ``chart_number``, ``ssn``, ``nhs_number``, ``notes``, ``comments``, ``dob``,
    ``date_of_birth``, ...) or, failing that, by its values: among the first 1,000 non-null values
    of a text column, any value that is wholly an e-mail address, a US social security number
    (``123-45-6789``), an ``MRN``-prefixed record number or a phone number (10 to 15 digits in a
    usual layout) flags the column. One such value is enough: it is an identifier either way.

    Canonical columns of the data dictionary (``patient_id``, ``clinic_id``, ``therapist_id``,
    ``exercise``, ``instrument``, the dates, ...; see :data:`ptanalytics.schema.TABLES`) are never
    flagged; the identifiers among them are pseudonymised by :func:`deidentify` instead. The check
    is deterministic and looks at at most 1,000 values per column.

    Parameters
    ----------
    df : pandas.DataFrame
        Any table of a cohort, with its extra columns.

    Returns
    -------
    list of (str, str)
        ``(column, kind)`` in column order, where ``kind`` is one of ``"name"``, ``"address"``,
        ``"phone"``, ``"email"``, ``"mrn"``, ``"ssn"``, ``"free_text"``, ``"birth_date"``.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(
            f"find_identifier_columns expects a pandas DataFrame, got {type(df).__name__}."
        )
    found = []
    for column in df.columns:
        if column in _CANONICAL:
            continue
        kind = _kind_from_name(column) or _kind_from_values(df[column])
        if kind is not None:
            found.append((column, kind))
    return found


# --------------------------------------------------------------------------------------------
# Keys, pseudonyms and date shifts
# --------------------------------------------------------------------------------------------


def new_key() -> bytes:
    """A new random 32-byte secret key for :func:`deidentify`.

    This is the one deliberately unseeded random function of ptanalytics: the key must not be
    reproducible from a seed, or anyone knowing the seed could recompute every pseudonym and date
    shift. It comes from :func:`secrets.token_bytes` (the operating system's CSPRNG). Store it
    apart from the data and reuse it for every export that must link.

    Returns
    -------
    bytes
        32 random bytes.
    """
    return secrets.token_bytes(KEY_BYTES)


def _digest(key: bytes, domain: bytes, value: str) -> bytes:
    return hmac.new(key, domain + value.encode("utf-8"), hashlib.sha256).digest()


def _pseudonym(key: bytes, prefix: str, domain: bytes, value: str) -> str:
    return prefix + _digest(key, domain, value).hex()[:16]


def _shift_days(key: bytes, patient_id: str) -> int:
    digest = _digest(key, b"dateshift:", patient_id)
    return int.from_bytes(digest, "big") % (2 * MAX_SHIFT_DAYS + 1) - MAX_SHIFT_DAYS


def _check_key(key: object) -> bytes:
    if not isinstance(key, bytes | bytearray):
        raise TypeError(
            f"key must be bytes, got {type(key).__name__}. Fix: pass new_key() or the bytes of "
            f"your key file."
        )
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"key has {len(key)} bytes; at least {MIN_KEY_BYTES} are needed. Fix: use new_key() "
            f"({KEY_BYTES} bytes)."
        )
    return bytes(key)


def _pseudonym_map(
    key: bytes, values: set[str], prefix: str, domain: bytes, column: str
) -> dict[str, str]:
    mapping = {v: _pseudonym(key, prefix, domain, v) for v in sorted(values)}
    if len(set(mapping.values())) != len(mapping):
        raise ConfigError(
            f"two distinct {column} values got the same pseudonym under this key. Fix: use "
            f"another key (new_key())."
        )
    return mapping


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeidentificationReport:
    """What :func:`deidentify` (or :func:`deidentify_directory`) did. Holds no identifiers.

    Attributes
    ----------
    dropped_columns : list of (str, str, str)
        ``(table, column, kind)`` of every dropped identifier column; ``kind`` as in
        :func:`find_identifier_columns`.
    ages_top_coded : int
        Number of ``age`` values of 90 or more that were set to 90.
    patients : int
        Number of distinct patients (over all tables) that received a pseudonym and a date shift.
    shifted_columns : list of (str, str)
        ``(table, column)`` of every date column that was shifted.
    quarantine_skipped : bool
        The cohort had quarantined rows (``cohort.quarantine``, or a ``quarantine/`` folder in the
        source folder of :func:`deidentify_directory`): raw rejected rows that may hold
        identifiers, which were not copied.
    """

    dropped_columns: list[tuple[str, str, str]]
    ages_top_coded: int
    patients: int
    shifted_columns: list[tuple[str, str]] = field(default_factory=list)
    quarantine_skipped: bool = False

    def summary(self) -> str:
        """A few lines for people: counts and column names only, never an identifier value."""
        dropped = ", ".join(f"{t}.{c} ({k})" for t, c, k in self.dropped_columns) or "none"
        shifted = ", ".join(f"{t}.{c}" for t, c in self.shifted_columns) or "none"
        lines = [
            f"De-identified cohort: {self.patients} patients.",
            "Pseudonyms: patient_id, clinic_id and therapist_id replaced by keyed HMAC-SHA256 "
            "pseudonyms.",
            f"Dates shifted per patient by -{MAX_SHIFT_DAYS}..{MAX_SHIFT_DAYS} days "
            f"(intervals kept): {shifted}.",
            f"Identifier columns dropped: {dropped}.",
            f"Ages >= {AGE_TOP_CODE} top-coded to {AGE_TOP_CODE}: {self.ages_top_coded}.",
        ]
        if self.quarantine_skipped:
            lines.append(
                f"Not copied: {QUARANTINE}/ of the source folder (raw rejected rows; may hold "
                f"identifiers). Keep it out of shared exports."
            )
        lines.append(
            "Not anonymous: quasi-identifiers (age, sex, clinic, dates) remain; keep the key "
            "secret and apart from the data."
        )
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# De-identifying a cohort
# --------------------------------------------------------------------------------------------


def _frames(cohort: Cohort) -> dict[str, pd.DataFrame]:
    frames = dict(cohort.tables)
    if cohort.truth_patients is not None:
        frames[_TRUTH_PATIENTS] = cohort.truth_patients
    return frames


def _date_columns(name: str, df: pd.DataFrame) -> dict[str, pd.Series]:
    """Every date column of ``df`` as datetime64, including dates held as ISO 8601 text.

    Canonical date columns (and ``*_on`` columns of ``truth_patients``) must hold dates; other
    text columns count as dates when their first values are all ISO 8601 dates.
    """
    dates = {}
    for column in df.columns:
        s = df[column]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            dates[column] = s
            continue
        must = column in _CANONICAL_DATES or (name == _TRUTH_PATIENTS and column.endswith("_on"))
        sample = _text_sample(s)
        if sample is None or not (must or sample.str.fullmatch(_DATE_TEXT).all()):
            continue
        parsed = pd.to_datetime(s, format="ISO8601", errors="coerce")
        bad = parsed.isna() & s.notna()
        if bad.any():
            value = s[bad].iloc[0]
            raise CohortFormatError(
                f"table '{name}', column '{column}': {value!r} is not an ISO 8601 date, so the "
                f"column cannot be date-shifted. Fix: correct the value or drop the column."
            )
        dates[column] = parsed
    return dates


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


def _top_code_age(name: str, df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    if "age" not in df.columns:
        return df, 0
    age = df["age"]
    if not pd.api.types.is_numeric_dtype(age.dtype):
        raise CohortFormatError(
            f"table '{name}', column 'age' has dtype {age.dtype}, not numbers, so ages >= "
            f"{AGE_TOP_CODE} cannot be top-coded. Fix: load the cohort with load_cohort() or "
            f"convert the column to integers."
        )
    old = (age >= AGE_TOP_CODE).fillna(False).astype(bool)
    n = int(old.sum())
    if n:
        df = df.assign(age=age.mask(old, AGE_TOP_CODE))
    return df, n


def _deidentify_frame(
    name: str,
    df: pd.DataFrame,
    drop: list[str],
    maps: dict[str, dict[str, str]],
    shifts: dict[str, int],
) -> tuple[pd.DataFrame, int, list[str]]:
    out = df.drop(columns=drop)
    out, n_aged = _top_code_age(name, out)
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
    dates = _date_columns(name, out)
    if dates:
        days = np.array([shifts[str(u)] for u in uniques], dtype=np.int64)[codes]
        delta = pd.to_timedelta(days, unit="D")
        for column, s in dates.items():
            shifted = (s + delta.to_numpy()).astype(s.dtype)
            out[column] = shifted.set_axis(out.index)
    for column, _prefix, _domain in _ID_COLUMNS:
        if column in out.columns:
            out[column] = _replace_ids(out[column], maps[column])
    out = out.sort_values("patient_id", kind="stable").reset_index(drop=True)
    return out, n_aged, list(dates)


def deidentify(cohort: Cohort, *, key: bytes) -> tuple[Cohort, DeidentificationReport]:
    """A de-identified copy of ``cohort``; the input is not changed.

    * ``patient_id`` becomes ``"P" + HMAC-SHA256(key, b"patient:" + id)`` (first 16 hex digits),
      in every table and in ``truth_patients``; ``clinic_id`` and ``therapist_id`` likewise, with
      prefixes ``"C"``/``"T"`` and domains ``b"clinic:"``/``b"therapist:"``. The same key gives
      the same pseudonyms in every export.
    * Every date column of every table (datetime64 columns, canonical date columns and extra
      columns holding ISO 8601 dates as text) is shifted, row by row, by the patient's offset:
      ``int.from_bytes(HMAC-SHA256(key, b"dateshift:" + id), "big") % 731 - 365`` days. All
      dates of one patient move together, so every interval within a patient is kept.
    * Columns that :func:`find_identifier_columns` flags are dropped from every table.
    * ``age`` values of 90 or more become 90 (HIPAA Safe Harbor).
    * Rows are re-ordered by pseudonym (stable within a patient), so that row order does not
      reveal the order of the original ids.
    * Rows set aside by ingest (``cohort.quarantine``, raw rows that may hold identifiers) are not
      carried over.

    Parameters
    ----------
    cohort : Cohort
        The cohort, e.g. from :func:`~ptanalytics.cohort.load_cohort`.
    key : bytes
        Secret key of at least 16 bytes (:func:`new_key` makes 32). Keep it apart from the data.

    Returns
    -------
    cohort : Cohort
        New cohort with the same tables (minus dropped columns) and ``truth`` unchanged; its
        ``metadata`` is a copy of the input's plus ``"deidentified"``: ``{"method": str,
        "dropped_columns": [[table, column, kind], ...], "ages_top_coded": int}``.
    report : DeidentificationReport
        Dropped columns, number of top-coded ages, number of patients and shifted date columns.

    Raises
    ------
    TypeError
        ``cohort`` is not a Cohort or ``key`` is not bytes.
    ConfigError
        The key is shorter than 16 bytes, or (practically never) two ids collide under it.
    CohortFormatError
        A table has rows without ``patient_id``, a non-numeric ``age``, or a date column with a
        value that is not a date.
    """
    if not isinstance(cohort, Cohort):
        raise TypeError(
            f"deidentify expects a Cohort, got {type(cohort).__name__}. Fix: load one with "
            f"ptanalytics.load_cohort(path)."
        )
    key = _check_key(key)
    frames = _frames(cohort)
    drops = {name: find_identifier_columns(df) for name, df in frames.items()}
    kept = {name: df.drop(columns=[c for c, _ in drops[name]]) for name, df in frames.items()}
    maps = {
        column: _pseudonym_map(key, _ids(kept, column), prefix, domain, column)
        for column, prefix, domain in _ID_COLUMNS
    }
    shifts = {pid: _shift_days(key, pid) for pid in maps["patient_id"]}

    new: dict[str, pd.DataFrame] = {}
    n_aged = 0
    shifted: list[tuple[str, str]] = []
    for name, df in frames.items():
        new[name], n, columns = _deidentify_frame(
            name, df, [c for c, _ in drops[name]], maps, shifts
        )
        n_aged += n
        shifted += [(name, c) for c in columns]

    dropped = [(name, column, kind) for name, found in drops.items() for column, kind in found]
    metadata: dict[str, Any] = copy.deepcopy(cohort.metadata)
    metadata["deidentified"] = {
        "method": METHOD,
        "dropped_columns": [list(d) for d in dropped],
        "ages_top_coded": n_aged,
    }
    result = Cohort(
        **{name: new[name] for name in TABLE_NAMES},
        metadata=metadata,
        truth=copy.deepcopy(cohort.truth),
        truth_patients=new.get(_TRUTH_PATIENTS),
    )
    report = DeidentificationReport(
        dropped_columns=dropped,
        ages_top_coded=n_aged,
        patients=len(maps["patient_id"]),
        shifted_columns=shifted,
        quarantine_skipped=bool(getattr(cohort, "quarantine", None)),
    )
    return result, report


# --------------------------------------------------------------------------------------------
# Folders and key files
# --------------------------------------------------------------------------------------------


def _read_key(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(
            f"{path}: key file cannot be read ({exc.strerror or exc}). Fix: check the path and "
            f"its permissions."
        ) from exc
    text = raw.strip()
    if re.fullmatch(rb"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text.decode("ascii"))
    if len(raw) < MIN_KEY_BYTES:
        raise KeyFileError(
            f"{path}: key has {len(raw)} bytes; at least {MIN_KEY_BYTES} are needed. Fix: "
            f"create a new one with --new-key (create_key=True) after moving this file away."
        )
    return raw


def _create_key(path: Path) -> bytes:
    key = new_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.hex())
    return key


def _file_format(src: Path, cohort: Cohort) -> str:
    fmt = cohort.metadata.get("file_format")
    if fmt in ("parquet", "csv"):
        return fmt
    return "csv" if (src / "patients.csv").exists() else "parquet"


def deidentify_directory(
    src: str | os.PathLike,
    out: str | os.PathLike,
    key_file: str | os.PathLike,
    *,
    overwrite: bool = False,
    create_key: bool = False,
) -> DeidentificationReport:
    """De-identify the cohort folder ``src`` into the new folder ``out``.

    Loads ``src`` with :func:`~ptanalytics.cohort.load_cohort`, applies :func:`deidentify` with
    the key in ``key_file`` and writes the result to ``out`` in the file format of ``src``. Only
    the cohort (tables, ``cohort.json``, ``truth.json``, ``truth_patients``) is written: a
    ``quarantine/`` folder of ``src`` (raw rejected rows from ingest, which may hold identifiers)
    and any other file there are not copied.

    Parameters
    ----------
    src : path-like
        Cohort folder to de-identify; left unchanged.
    out : path-like
        Destination folder; must not be ``src`` or a folder containing it.
    key_file : path-like
        File holding the key: 64 hexadecimal characters (what ``create_key`` writes; surrounding
        whitespace is ignored) or raw bytes (at least 16). Must not lie inside ``out``.
    overwrite : bool
        Replace an existing non-empty ``out``.
    create_key : bool
        When ``key_file`` does not exist, create it (mode 0600) with a new key from
        :func:`new_key`, written as 64 hexadecimal characters.

    Returns
    -------
    DeidentificationReport
        As from :func:`deidentify`, with ``quarantine_skipped`` set when ``src`` had a
        ``quarantine/`` folder.

    Raises
    ------
    KeyFileError
        ``key_file`` is missing (without ``create_key``), unreadable, shorter than 16 bytes or
        inside ``out``.
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
    if key_path.exists():
        key = _read_key(key_path)
    elif create_key:
        key = _create_key(key_path)
    else:
        raise KeyFileError(
            f"{key_path}: key file not found. Fix: create one with --new-key (create_key=True) "
            f"and keep it secret, apart from the data."
        )
    cohort = load_cohort(src_path)
    result, report = deidentify(cohort, key=key)
    result.write(out_path, format=_file_format(src_path, cohort), overwrite=overwrite)
    skipped = report.quarantine_skipped or (src_path / QUARANTINE).is_dir()
    return dataclasses.replace(report, quarantine_skipped=skipped)
