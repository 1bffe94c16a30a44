"""A cohort folder on disk: finding, reading and writing its tables and ``cohort.json``.

One folder, one file per table (``<table>.parquet`` or ``<table>.csv``, or a folder ``<table>/``
of Parquet parts as :func:`ptanalytics.simulate_to_disk` writes), ``cohort.json`` and, for
simulated cohorts, ``truth.json``. :func:`find_table` is the one place that says where a table
is; writes are atomic (:func:`atomic_folder`, built on :mod:`ptanalytics.cohort._atomic`). The
in-memory container is :class:`ptanalytics.cohort.container.Cohort`. See
``docs/data_dictionary.md`` for the tables and columns.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ptanalytics.cohort._atomic import interrupted_hint, precheck_folder, replace_folder
from ptanalytics.cohort.container import TABLE_NAMES, Cohort
from ptanalytics.cohort.schema import coerce_table, empty_table
from ptanalytics.exceptions import CohortFormatError

__all__ = [
    "FORMAT_VERSION",
    "TableLocation",
    "find_table",
    "load_cohort",
    "safe_csv",
    "write_cohort",
]

#: Version of the on-disk cohort format written by this package.
FORMAT_VERSION = 1

_TRUTH_PATIENTS = "truth_patients"
FileFormat = Literal["parquet", "csv"]


def write_cohort(
    cohort: Cohort,
    path: str | os.PathLike,
    *,
    format: FileFormat = "parquet",
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike] = (),
) -> Path:
    """Write ``cohort`` to the folder ``path`` (what :meth:`Cohort.write` does); return ``path``.

    ``cohort.metadata`` is set to the ``cohort.json`` written.
    """
    if format not in ("parquet", "csv"):
        raise CohortFormatError(f"format={format!r} is not supported; use 'parquet' or 'csv'.")
    dest = Path(path)
    with atomic_folder(dest, overwrite=overwrite, inputs=inputs) as tmp:
        for name, df in cohort.tables.items():
            _write_table(
                coerce_table(name, df, source=f"cohort table {name}"),
                tmp / f"{name}.{format}",
                format,
            )
        if cohort.truth_patients is not None:
            _write_table(cohort.truth_patients, tmp / f"{_TRUTH_PATIENTS}.{format}", format)
        if cohort.quarantine:
            (tmp / "quarantine").mkdir()
            for name, df in cohort.quarantine.items():
                _write_table(df, tmp / "quarantine" / f"{name}.csv", "csv")
        # A loaded chunked cohort is written back as one file per table.
        body = {k: v for k, v in cohort.metadata.items() if k != "chunking"}
        body = {"source": "unknown", "created": None, **body}
        meta = cohort_json(body, format, cohort.row_counts())
        if cohort.truth is not None:
            _write_json(tmp / "truth.json", cohort.truth)
        _write_json(tmp / "cohort.json", meta)
    cohort.metadata = meta
    return dest


def _version() -> str:
    from ptanalytics import __version__

    return __version__


def cohort_json(body: dict[str, Any], file_format: str, row_counts: dict[str, int]) -> dict:
    """The contents of ``cohort.json``: format version, ``body``, software version, counts."""
    return {
        "format_version": FORMAT_VERSION,
        **body,
        "written_by": WRITTEN_BY,
        "ptanalytics_version": _version(),
        "csv_neutralised": CSV_NEUTRALISED,
        "file_format": file_format,
        "row_counts": row_counts,
    }


#: Marks ``cohort.json`` (and so the folder) as written by this package: ``--overwrite`` replaces
#: only a folder that carries it (or, for cohorts written before the marker, both
#: ``format_version`` and ``ptanalytics_version``).
WRITTEN_BY = "ptanalytics"
#: How text cells of every CSV in a cohort folder are neutralised (see :func:`safe_csv`).
CSV_NEUTRALISED = "quote-prefix-v1"
#: A text cell starting with one of these is prefixed with ``'`` in every CSV (OWASP CSV injection);
#: ``'`` itself is on the list so that reading back (strip one leading ``'``) is exact.
_CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")
_OWN_FILES = frozenset({"cohort.json", "truth.json"})


def _owned_cohort(folder: Path) -> str | None:
    """``None`` when ``folder`` holds only a cohort this package wrote, else the reason."""
    meta = folder / "cohort.json"
    if not meta.is_file():
        return "has no cohort.json"
    try:
        body = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "has a cohort.json that is not valid JSON"
    legacy = isinstance(body, dict) and {"format_version", "ptanalytics_version"} <= set(body)
    if not isinstance(body, dict) or not (body.get("written_by") == WRITTEN_BY or legacy):
        return "has a cohort.json without the ptanalytics marker"
    foreign = [p for p in folder.iterdir() if not _own_entry(p)]
    if foreign:
        return (
            f"also holds {len(foreign)} file(s) or folder(s) that ptanalytics did not write "
            f"(they would be deleted)"
        )
    return None


def _own_entry(path: Path) -> bool:
    """A file or folder that a cohort folder written by this package holds."""
    tables = (*TABLE_NAMES, _TRUTH_PATIENTS)
    if path.is_symlink():
        return False
    if path.is_file():
        if path.name in _OWN_FILES or (path.stem in tables and path.suffix in (".csv", ".parquet")):
            return True
        return path.suffix == ".html" and _is_report(path)
    if path.name == "quarantine":
        return all(p.is_file() and p.suffix == ".csv" for p in path.iterdir())
    if path.name in tables:
        return all(
            p.is_file() and p.name.startswith("part-") and p.suffix == ".parquet"
            for p in path.iterdir()
        )
    return False


#: The first line of the HTML head of every report this package writes.
REPORT_MARKER = b'<meta name="generator" content="ptanalytics report">'


def _is_report(path: Path) -> bool:
    """``path`` is an HTML report written by this package (its marker is near the top)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return REPORT_MARKER in head


@contextlib.contextmanager
def atomic_folder(
    path: str | os.PathLike, *, overwrite: bool, inputs: Iterable[str | os.PathLike] = ()
):
    """Yield a temporary sibling folder that replaces ``path`` when the block ends without error.

    The output is then written whole or not at all (see :mod:`ptanalytics.cohort._atomic`): a lock
    beside ``path`` refuses a second writer, leftovers of an interrupted earlier write are
    restored or removed (and reported on stderr), and the new folder is swapped in by renames.
    On any error the temporary folder is removed and ``path`` is untouched.

    Refused before anything is written: ``path`` is a file or a symlink; ``path`` is a non-empty
    folder and ``overwrite`` is false; ``path`` is a non-empty folder that is not a cohort written
    by ptanalytics (no marked ``cohort.json``, or files ptanalytics did not write); ``path`` holds
    one of ``inputs`` (the files being read).
    """
    with replace_folder(path, overwrite=overwrite, owned=_owned_cohort, inputs=inputs) as tmp:
        yield tmp


def check_destination(
    path: str | os.PathLike, *, overwrite: bool, inputs: Iterable[str | os.PathLike] = ()
) -> None:
    """Raise now what :func:`atomic_folder` would refuse (to fail before a long computation).

    Leftovers of an interrupted write are recovered first, as :func:`atomic_folder` does.
    """
    precheck_folder(path, overwrite=overwrite, owned=_owned_cohort, inputs=inputs)


def safe_csv(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every text cell that could start a spreadsheet formula neutralised.

    Following the OWASP CSV-injection guidance, a text cell (and a column name) starting with
    ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with a single quote, so a
    spreadsheet shows it as text instead of running it. A cell already starting with ``'`` gets
    one more, so reading back (:func:`load_cohort` strips exactly one leading ``'`` from text
    cells of a folder whose ``cohort.json`` says ``csv_neutralised``) returns every value as it
    was. Numbers are never touched: ``-3`` in a numeric column stays ``-3``; the text ``"-3"`` in
    a text column is written ``'-3`` (OWASP: prefix every such cell; a spreadsheet would
    otherwise read it as a number or formula). Every CSV the package writes goes through here.
    The caller's frame is not changed.
    """
    out = df.copy()
    out.columns = [_neutralise(c) if isinstance(c, str) else c for c in df.columns]
    for i in range(out.shape[1]):
        s = out.iloc[:, i]
        if isinstance(s.dtype, pd.CategoricalDtype):
            cats = s.cat.categories
            if cats.dtype == object or pd.api.types.is_string_dtype(cats.dtype):
                out.isetitem(i, s.cat.rename_categories([_neutralise(c) for c in cats]))
        elif s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            out.isetitem(i, _map_text(s, _CSV_TRIGGERS, _neutralise))
    return out


def _map_text(s: pd.Series, starts: tuple[str, ...], fn) -> pd.Series:
    """``fn`` applied to the text cells of ``s`` that start with one of ``starts`` (only those)."""
    try:
        hit = s.str.startswith(starts, na=False).astype(bool)
    except AttributeError:  # an object column without text
        return s
    if not hit.any():
        return s
    s = s.copy()
    s[hit] = [fn(v) for v in s[hit]]
    return s


def _neutralise(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_CSV_TRIGGERS):
        return "'" + value
    return value


def _restore(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("'"):
        return value[1:]
    return value


def _unneutralise(df: pd.DataFrame) -> pd.DataFrame:
    """Undo :func:`safe_csv` on a frame read from one of our CSVs."""
    df = df.rename(columns=lambda c: _restore(c) if isinstance(c, str) else c)
    for i in range(df.shape[1]):
        s = df.iloc[:, i]
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            df.isetitem(i, _map_text(s, ("'",), _restore))
    return df


def _write_json(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"
    path.write_text(text, encoding="utf-8")


def _write_table(df: pd.DataFrame, path: Path, format: FileFormat) -> None:
    if format == "csv":
        safe = safe_csv(df)
        safe.to_csv(
            path,
            index=False,
            date_format="%Y-%m-%d",
            float_format="%.10g",
            # The csv module quotes a field only for the characters of the line terminator: a
            # text cell holding a bare carriage return would otherwise split its row.
            lineterminator="\r\n" if _has_carriage_return(safe) else "\n",
            encoding="utf-8",
        )
        return
    table = pa.Table.from_pandas(df, preserve_index=False)
    # Dates are days: store them as the Parquet DATE type so that every engine reads them as such.
    fields = []
    for f in table.schema:
        fields.append(pa.field(f.name, pa.date32()) if pa.types.is_timestamp(f.type) else f)
    table = table.cast(pa.schema(fields, metadata=table.schema.metadata))
    pq.write_table(table, path, compression="zstd")


def _has_carriage_return(df: pd.DataFrame) -> bool:
    if any("\r" in str(c) for c in df.columns):
        return True
    for i in range(df.shape[1]):
        s = df.iloc[:, i]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = pd.Series(s.cat.categories)
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            try:
                if s.str.contains("\r", regex=False, na=False).any():
                    return True
            except AttributeError:
                continue
    return False


# ------------------------------------------------------------------------------------ finding
@dataclass(frozen=True)
class TableLocation:
    """Where one table of a cohort folder is stored, and in which file format.

    Attributes
    ----------
    name : str
        The table (``sessions``, ``truth_patients``, ...).
    path : pathlib.Path
        ``<name>.parquet``, ``<name>.csv`` or the folder ``<name>/`` of Parquet parts.
    format : {"parquet", "csv"}
        The file format (a folder of parts is Parquet).
    files : tuple of pathlib.Path
        The one file, or the parts of the folder in part order (``part-00009.parquet`` before
        ``part-00010.parquet``).
    """

    name: str
    path: Path
    format: FileFormat
    files: tuple[Path, ...]

    @property
    def in_parts(self) -> bool:
        """The table is a folder of Parquet parts."""
        return self.files != (self.path,)


#: Characters a table name never holds (it is a file name in the cohort folder, never a path).
_BAD_CHARS = ("/", "\\", "\0")


def find_table(folder: str | os.PathLike, name: str, *, rows: int = 0) -> TableLocation | None:
    """Where table ``name`` of the cohort folder ``folder`` is; ``None`` when it is absent.

    A table is ``<name>.parquet``, ``<name>.csv`` or a folder ``<name>/`` of Parquet parts
    (every ``*.parquet`` in it, in part order, as :func:`ptanalytics.simulate_to_disk` writes
    them); a folder of parts may also be named ``<name>.parquet`` or ``<name>.csv``. Only one of
    them may exist.

    Parameters
    ----------
    folder : path-like
        The cohort folder.
    name : str
        The table's name, a plain file name (no path separator).
    rows : int
        The rows ``cohort.json`` lists for the table: when above 0, an absent table is an error.

    Raises
    ------
    CohortFormatError
        The table is stored twice (two files, or a file and a folder), its folder holds no
        ``.parquet`` part, or it is absent although ``rows`` > 0.
    ValueError
        ``name`` is not a plain file name.
    """
    if not isinstance(name, str) or name in ("", ".", "..") or any(c in name for c in _BAD_CHARS):
        raise ValueError(f"name={name!r}; allowed: a table name such as 'sessions'.")
    folder = Path(folder)
    present = [p for p in (folder / f"{name}.parquet", folder / f"{name}.csv") if p.exists()]
    present += [p for p in (folder / name,) if p.is_dir()]
    if len(present) > 1:
        raise CohortFormatError(
            f"{folder}: both {present[0].name} and {present[1].name} exist. "
            f"Fix: keep one file (or one folder of parts) per table."
        )
    if not present:
        if rows:
            raise CohortFormatError(
                f"{folder}: cohort.json lists {rows} rows of '{name}' but there is "
                f"no {name}.parquet, {name}.csv or {name}/ folder of parts. Fix: restore it "
                f"or re-create the cohort."
            )
        return None
    path = present[0]
    if not path.is_dir():
        return TableLocation(name, path, "csv" if path.suffix == ".csv" else "parquet", (path,))
    parts = sorted(path.glob("*.parquet"), key=lambda p: (len(p.name), p.name))
    if not parts:
        raise CohortFormatError(
            f"{path}: the folder of table '{name}' holds no .parquet parts. Fix: restore its "
            f"parts ({name}/part-00000.parquet, ...) or re-create the cohort."
        )
    return TableLocation(name, path, "parquet", tuple(parts))


# ------------------------------------------------------------------------------------ reading
def _read_table(table: TableLocation, *, restore: bool = True) -> pd.DataFrame:
    """One table; ``restore`` undoes :func:`safe_csv` on a CSV."""
    if table.in_parts:  # a table written in parts (simulate_to_disk)
        return (
            ds.dataset(list(table.files), format="parquet")
            .to_table()
            .to_pandas(date_as_object=False)
        )
    if table.format == "csv":
        df = pd.read_csv(
            table.path,
            dtype={"patient_id": "str", "clinic_id": "str", "therapist_id": "str"},
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8",
        )
        return _unneutralise(df) if restore else df
    return pq.read_table(table.path).to_pandas(date_as_object=False)


def _read_quarantine(path: Path, *, restore: bool) -> pd.DataFrame:
    df = pd.read_csv(path, dtype="str", keep_default_na=False, na_values=[""])
    return _unneutralise(df) if restore else df


def read_cohort_json(folder: str | os.PathLike) -> dict[str, Any]:
    """``folder/cohort.json``, checked for everything :func:`load_cohort` relies on.

    It must be a JSON object with ``format_version`` equal to :data:`FORMAT_VERSION` and, when
    present, ``row_counts`` mapping table names to whole numbers >= 0.

    Raises
    ------
    CohortFormatError
        With a one-line message naming the file, what is wrong and the fix.
    """
    folder = Path(folder)
    meta_path = folder / "cohort.json"
    if not meta_path.is_file():
        raise CohortFormatError(
            f"{folder}: not a cohort folder (no cohort.json). Fix: point to a folder written by "
            f"'ptanalytics simulate' or 'ptanalytics ingest'.{interrupted_hint(folder)}"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CohortFormatError(
            f"{meta_path}: not valid JSON ({exc}). Fix: restore the file or re-create the cohort."
        ) from exc
    if not isinstance(meta, dict):
        raise CohortFormatError(
            f"{meta_path}: holds a JSON {type(meta).__name__}, not an object. Fix: restore the "
            f"file or re-create the cohort."
        )
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CohortFormatError(
            f"{meta_path}: format_version {version!r} is not supported by this ptanalytics "
            f"(reads {FORMAT_VERSION}). Fix: re-create the cohort with this version."
        )
    counts = meta.get("row_counts", {})
    bad = None if isinstance(counts, dict) else "row_counts"
    for name, n in counts.items() if bad is None else ():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            bad = f"row_counts.{name}"
            break
    if bad is not None:
        raise CohortFormatError(
            f"{meta_path}: {bad} must map the tables {list(TABLE_NAMES)} to whole numbers >= 0. "
            f"Fix: restore the file or re-create the cohort."
        )
    return meta


def load_cohort(path: str | os.PathLike) -> Cohort:
    """Read a cohort folder written by :meth:`Cohort.write`, ``simulate`` or ``ingest``.

    A table is ``<table>.parquet``, ``<table>.csv`` or a folder ``<table>/`` of Parquet parts
    (``part-00000.parquet``, ... as :func:`ptanalytics.simulate_to_disk` writes), read
    in part order into one frame.

    Every known column is coerced to its canonical type; row counts are checked against
    ``cohort.json``. A table whose file is absent is empty (an outcomes-only cohort is valid) unless
    ``cohort.json`` says it had rows.

    Raises
    ------
    CohortFormatError
        When the folder or ``cohort.json`` is missing, a file cannot be read, a required column
        is absent, a value cannot be represented, or a row count disagrees with ``cohort.json``.

    Examples
    --------
    >>> import ptanalytics as pt
    >>> cohort = pt.load_cohort("data/synthetic/default")  # doctest: +SKIP
    >>> cohort.row_counts()["patients"]  # doctest: +SKIP
    300
    """
    folder = Path(path)
    meta = read_cohort_json(folder)
    plain = meta.get("csv_neutralised") != CSV_NEUTRALISED  # written before neutralisation
    counts = meta.get("row_counts", {})
    tables: dict[str, pd.DataFrame] = {}
    for name in TABLE_NAMES:
        table = find_table(folder, name, rows=counts.get(name, 0))
        if table is None:
            tables[name] = empty_table(name)
            continue
        try:
            raw = _read_table(table, restore=not plain)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise CohortFormatError(
                f"{table.path}: cannot be read ({exc}). Fix: restore the file or re-create the "
                f"cohort."
            ) from exc
        tables[name] = coerce_table(name, raw, source=str(table.path))
        if name in counts and counts[name] != len(tables[name]):
            raise CohortFormatError(
                f"{table.path}: has {len(tables[name])} rows but cohort.json lists {counts[name]}. "
                f"Fix: the file was changed or truncated; restore it or re-create the cohort."
            )
    truth = None
    if (folder / "truth.json").is_file():
        truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    truth_file = find_table(folder, _TRUTH_PATIENTS)
    truth_patients = None if truth_file is None else _read_table(truth_file, restore=not plain)
    if truth_patients is not None:
        truth_patients = _coerce_truth_patients(truth_patients)
    quarantine = {
        f.stem: _read_quarantine(f, restore=not plain)
        for f in sorted((folder / "quarantine").glob("*.csv"))
    } or None
    return Cohort(
        **tables, metadata=meta, truth=truth, truth_patients=truth_patients, quarantine=quarantine
    )


def validation_sources(folder: str | os.PathLike, workdir: str | os.PathLike) -> list[Path]:
    """Check a cohort folder as :func:`load_cohort` does; return its table files for ingest.

    Beyond :func:`load_cohort` (``cohort.json`` parses, its format version, every table readable,
    of its schema and with the rows ``cohort.json`` lists), every table file present must have a
    row count in ``cohort.json``, so that a cut file cannot pass. A table stored as a folder of
    Parquet parts is returned as one link per part in ``workdir``, named
    ``<table>_part-NNNNN.parquet`` so that ingest knows its table.

    Raises
    ------
    CohortFormatError
        With a one-line message naming the file and the fix.
    """
    folder, workdir = Path(folder), Path(workdir)
    meta = read_cohort_json(folder)
    counts = meta.get("row_counts")
    files: list[Path] = []
    for name in TABLE_NAMES:
        table = find_table(folder, name)
        if table is None:
            continue
        if not isinstance(counts, dict) or name not in counts:
            raise CohortFormatError(
                f"{folder / 'cohort.json'}: has no row_counts entry for '{name}', so a cut "
                f"{table.path.name} cannot be detected. Fix: re-create the cohort with ptanalytics."
            )
        if not table.in_parts:
            files.append(table.path)
            continue
        for part in table.files:
            link = workdir / f"{name}_{part.name}"
            try:
                link.symlink_to(part.resolve())
            except OSError:  # no symlinks here (Windows without the privilege): copy
                shutil.copyfile(part, link)
            files.append(link)
    load_cohort(folder)
    return files


def _coerce_truth_patients(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["patient_id"] = df["patient_id"].astype("str")
    for col in df.columns:
        if col.endswith("_week"):  # nullable week numbers (e.g. no dropout)
            df[col] = df[col].astype("Int64")
        elif col.endswith("_on"):
            df[col] = pd.to_datetime(df[col]).astype("datetime64[s]")
    return df
