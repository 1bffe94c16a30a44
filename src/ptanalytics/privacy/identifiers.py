"""Direct identifiers: finding them in a table, and the keyed pseudonyms that replace them.

* :func:`find_identifier_columns` flags columns that look like names, addresses, phone numbers,
  e-mail addresses, record numbers, social security numbers, free text or birth dates, by their
  name (the word lists below) or by their values (the patterns below).
* The secret key (:func:`new_key`, :func:`read_key_file`, :func:`write_key_file`) and what it
  derives: HMAC-SHA256 pseudonyms of ids and names, and each patient's date shift.

:func:`ptanalytics.privacy.deidentification.deidentify` uses both. See
``docs/deidentification.md``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import os
import re
import secrets
import stat
from pathlib import Path

import pandas as pd

from ptanalytics.cohort.schema import TABLES
from ptanalytics.exceptions import ConfigError, PtAnalyticsError

__all__ = [
    "KEY_BYTES",
    "MAX_SHIFT_DAYS",
    "KeyFileError",
    "find_identifier_columns",
    "new_key",
    "read_key_file",
    "write_key_file",
]

#: Bytes of a key made by :func:`new_key`, and the fewest accepted (256 bits).
KEY_BYTES = 32
#: Fewest distinct byte values in an accepted key (32 random bytes have about 30).
MIN_DISTINCT_BYTES = 16
#: Largest date shift in days (either direction).
MAX_SHIFT_DAYS = 365
#: Non-null values per column examined by the value patterns.
SAMPLE_SIZE = 1_000

# (column, prefix, HMAC domain) of every identifier that is replaced by a pseudonym.
_ID_COLUMNS: tuple[tuple[str, str, bytes], ...] = (
    ("patient_id", "P", b"patient:"),
    ("clinic_id", "C", b"clinic:"),
    ("therapist_id", "T", b"therapist:"),
)
# Columns of the data dictionary: never flagged (the identifiers among them get pseudonyms).
_CANONICAL: frozenset[str] = frozenset(name for t in TABLES.values() for name in t.names)


class KeyFileError(PtAnalyticsError, ValueError):
    """The key file is missing, unreadable, not private, not a key, weak or in the wrong place."""


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
    **dict.fromkeys(("dob", "born", "birth", "birthdate", "birthday", "yob"), "birth_date"),
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
    ``exercise``, ``instrument``, the dates, ...; see :data:`ptanalytics.cohort.TABLES`) are never
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
# Keys
# --------------------------------------------------------------------------------------------

#: First line of a key file in the explicit format (``hex`` or ``base64`` follows it).
KEY_HEADER = "ptanalytics-key v1"
#: Largest key file read (a key file is a few dozen bytes).
_KEY_FILE_LIMIT = 4096
_KEY_FIX = "Fix: create a new key file with --new-key (new_key() in Python) and use that."


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


def _weakness(key: bytes) -> str | None:
    """Why ``key`` cannot be 32 random bytes, or None. Random keys fail with p < 1e-13."""
    if len(set(key)) == 1:
        return "every byte is the same"
    for period in range(1, len(key) // 2 + 1):
        if key == (key[:period] * (len(key) // period + 1))[: len(key)]:
            return f"it repeats a {period}-byte pattern"
    steps = {(b - a) % 256 for a, b in itertools.pairwise(key)}
    if len(steps) == 1:
        return "its bytes count up or down in equal steps"
    if len(set(key)) < MIN_DISTINCT_BYTES:
        return f"it has only {len(set(key))} distinct byte values (random keys have about 30)"
    if all(32 <= b < 127 for b in key):
        return "it is printable text (a password or phrase), not random bytes"
    return None


def _check_key(key: object, where: str = "key") -> bytes:
    if not isinstance(key, bytes | bytearray):
        raise TypeError(
            f"key must be bytes, got {type(key).__name__}. Fix: pass new_key() or the bytes of "
            f"your key file."
        )
    key = bytes(key)
    if len(key) < KEY_BYTES:
        raise ConfigError(
            f"{where} has {len(key)} bytes; at least {KEY_BYTES} random bytes (256 bits) are "
            f"needed. {_KEY_FIX}"
        )
    weak = _weakness(key)
    if weak:
        raise ConfigError(
            f"{where} is too weak to use: {weak}; a key must be {KEY_BYTES} random bytes. "
            f"{_KEY_FIX}"
        )
    return key


def _decode_key_text(path: Path, raw: bytes) -> bytes:
    """The key bytes of a key file's text (one of the two documented encodings)."""
    name = f"{path}: key file"
    expected = (
        f"expected 64 hexadecimal characters, or a first line '{KEY_HEADER} hex' or "
        f"'{KEY_HEADER} base64' followed by the key"
    )
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise KeyFileError(
            f"{name} is binary, not a ptanalytics key ({expected}). {_KEY_FIX}"
        ) from None
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) == 1 and re.fullmatch(r"[0-9A-Fa-f]+", lines[0]):
        if len(lines[0]) != 2 * KEY_BYTES:
            raise KeyFileError(
                f"{name} holds {len(lines[0])} hexadecimal characters; a hex key is exactly "
                f"{2 * KEY_BYTES}. {_KEY_FIX}"
            )
        return bytes.fromhex(lines[0])
    if len(lines) == 2 and lines[0] in (f"{KEY_HEADER} hex", f"{KEY_HEADER} base64"):
        body = lines[1]
        if lines[0].endswith("hex"):
            if not re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", body):
                raise KeyFileError(
                    f"{name}: the line after '{lines[0]}' is not an even number of hexadecimal "
                    f"characters. {_KEY_FIX}"
                )
            return bytes.fromhex(body)
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise KeyFileError(
                f"{name}: the line after '{lines[0]}' is not valid base64. {_KEY_FIX}"
            ) from None
    raise KeyFileError(f"{name} is not in a key format ({expected}). {_KEY_FIX}")


def read_key_file(path: str | os.PathLike) -> bytes:
    """The key held by the key file ``path``, after checking the file and the key.

    A key file is a regular file readable and writable by its owner only (mode 0600 or 0400)
    that holds either exactly 64 hexadecimal characters, or a first line
    ``ptanalytics-key v1 hex`` / ``ptanalytics-key v1 base64`` and the key on the second line
    (what :func:`write_key_file` writes). The key must be at least 32 bytes and look random:
    a key of one repeated byte, a repeated pattern, a counting sequence, few distinct bytes or
    printable text (a password) is refused.

    Raises
    ------
    KeyFileError
        The file is missing, unreadable, not a regular file, readable by group or others, not in
        a key format, or holds a short or low-entropy key. The message never shows the file's
        contents.
    """
    path = Path(path).expanduser()
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileError(
            f"{path}: key file not found. Fix: create one with --new-key (create_key=True) "
            f"and keep it secret, apart from the data."
        ) from None
    except OSError as exc:
        raise KeyFileError(
            f"{path}: key file cannot be read ({exc.strerror or exc}). Fix: check the path and "
            f"its permissions."
        ) from exc
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"{path}: key file is not a regular file. {_KEY_FIX}")
    if os.name == "posix" and st.st_mode & 0o077:
        raise KeyFileError(
            f"{path}: key file can be read or changed by group or others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); a key must be private to its owner. Fix: "
            f"chmod 600 {path} (and, if others may have read it, make a new key)."
        )
    if st.st_size > _KEY_FILE_LIMIT:
        raise KeyFileError(
            f"{path}: key file has {st.st_size} bytes, far more than a key. {_KEY_FIX}"
        )
    try:
        raw = path.read_bytes()[:_KEY_FILE_LIMIT]
    except OSError as exc:
        raise KeyFileError(
            f"{path}: key file cannot be read ({exc.strerror or exc}). Fix: check the path and "
            f"its permissions."
        ) from exc
    key = _decode_key_text(path, raw)
    try:
        return _check_key(key, where=f"{path}: the key")
    except ConfigError as exc:
        raise KeyFileError(str(exc)) from None


def write_key_file(path: str | os.PathLike) -> bytes:
    """Create the key file ``path`` with a :func:`new_key` and return the key.

    The file (mode 0600) holds ``ptanalytics-key v1 hex`` and the key as 64 hexadecimal
    characters. It is written beside its place, flushed to disk and linked into place, so that it
    appears whole or not at all, and it never replaces an existing file. A missing parent folder
    is created with mode 0700.

    Raises
    ------
    KeyFileError
        ``path`` exists already, or cannot be written.
    """
    path = Path(path).expanduser()
    key = new_key()
    text = f"{KEY_HEADER} hex\n{key.hex()}\n".encode("ascii")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, path)  # fails when path exists: never over an existing file
        finally:
            tmp.unlink(missing_ok=True)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except FileExistsError:
        raise KeyFileError(
            f"{path}: a file exists there already; a new key is never written over it. Fix: "
            f"use that key file, or choose another path for the new key."
        ) from None
    except OSError as exc:
        raise KeyFileError(
            f"{path}: the new key file cannot be written ({exc.strerror or exc}). Fix: choose a "
            f"folder you can write to."
        ) from exc
    return key


# --------------------------------------------------------------------------------------------
# Pseudonyms and date shifts
# --------------------------------------------------------------------------------------------


def _digest(key: bytes, domain: bytes, value: str) -> bytes:
    return hmac.new(key, domain + value.encode("utf-8"), hashlib.sha256).digest()


def _pseudonym(key: bytes, prefix: str, domain: bytes, value: str) -> str:
    return prefix + _digest(key, domain, value).hex()[:16]


def _shift_days(key: bytes, patient_id: str) -> int:
    """-365..-1 or 1..365 days: never 0, which would leave the real calendar dates."""
    digest = _digest(key, b"dateshift:", patient_id)
    v = int.from_bytes(digest, "big") % (2 * MAX_SHIFT_DAYS)
    return v - MAX_SHIFT_DAYS if v < MAX_SHIFT_DAYS else v - MAX_SHIFT_DAYS + 1


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
