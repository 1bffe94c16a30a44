"""The cohort container and its on-disk format (one folder, one file per table, ``cohort.json``).

See ``docs/data_dictionary.md`` for the tables and columns.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ptanalytics.exceptions import CohortFormatError
from ptanalytics.schema import TABLES, coerce_table, empty_table

__all__ = ["FORMAT_VERSION", "Cohort", "load_cohort"]

#: Version of the on-disk cohort format written by this package.
FORMAT_VERSION = 1

TABLE_NAMES: tuple[str, ...] = tuple(TABLES)
_TRUTH_PATIENTS = "truth_patients"
FileFormat = Literal["parquet", "csv"]


def _version() -> str:
    from ptanalytics import __version__

    return __version__


@dataclass
class Cohort:
    """The canonical tables of one cohort, with its metadata.

    Parameters
    ----------
    patients, prescriptions, sessions, outcomes, cointerventions : pandas.DataFrame
        The canonical tables (see ``docs/data_dictionary.md``). Missing tables are empty frames
        with the canonical columns, so an outcomes-only cohort is valid.
    metadata : dict
        What ``cohort.json`` holds (source, seed, row counts, ...).
    truth : dict, optional
        Simulated cohorts only: the generating parameters and true effects (``truth.json``).
    truth_patients : pandas.DataFrame, optional
        Simulated cohorts only: per-patient latent values (one row per patient).
    quarantine : dict of str to DataFrame, optional
        Ingested cohorts: rows set aside, per table (and ``source_rows``), with their reasons;
        written as ``quarantine/<name>.csv``.
    """

    patients: pd.DataFrame = field(default_factory=lambda: empty_table("patients"))
    prescriptions: pd.DataFrame = field(default_factory=lambda: empty_table("prescriptions"))
    sessions: pd.DataFrame = field(default_factory=lambda: empty_table("sessions"))
    outcomes: pd.DataFrame = field(default_factory=lambda: empty_table("outcomes"))
    cointerventions: pd.DataFrame = field(default_factory=lambda: empty_table("cointerventions"))
    metadata: dict[str, Any] = field(default_factory=dict)
    truth: dict[str, Any] | None = None
    truth_patients: pd.DataFrame | None = None
    quarantine: dict[str, pd.DataFrame] | None = None

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The five canonical tables by name."""
        return {name: getattr(self, name) for name in TABLE_NAMES}

    def row_counts(self) -> dict[str, int]:
        """Rows per canonical table."""
        return {name: len(df) for name, df in self.tables.items()}

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.row_counts().items())
        source = self.metadata.get("source", "unknown source")
        return f"Cohort({source}; {counts})"

    def write(
        self, path: str | os.PathLike, *, format: FileFormat = "parquet", overwrite: bool = False
    ) -> Path:
        """Write the cohort to the folder ``path`` and return it.

        The folder is written whole or not at all: files go to a temporary sibling folder that is
        renamed into place at the end. An existing non-empty ``path`` is an error unless
        ``overwrite=True``, which replaces it.

        Parameters
        ----------
        path : path-like
            Destination folder.
        format : {"parquet", "csv"}
            File format of the tables (``cohort.json`` and ``truth.json`` are always JSON).
        overwrite : bool
            Replace an existing folder.
        """
        if format not in ("parquet", "csv"):
            raise CohortFormatError(f"format={format!r} is not supported; use 'parquet' or 'csv'.")
        dest = Path(path)
        with atomic_folder(dest, overwrite=overwrite) as tmp:
            for name, df in self.tables.items():
                _write_table(
                    coerce_table(name, df, source=f"cohort table {name}"),
                    tmp / f"{name}.{format}",
                    format,
                )
            if self.truth_patients is not None:
                _write_table(self.truth_patients, tmp / f"{_TRUTH_PATIENTS}.{format}", format)
            if self.quarantine:
                (tmp / "quarantine").mkdir()
                for name, df in self.quarantine.items():
                    _write_table(df, tmp / "quarantine" / f"{name}.csv", "csv")
            # A loaded chunked cohort is written back as one file per table.
            body = {k: v for k, v in self.metadata.items() if k != "chunking"}
            meta = cohort_json(
                {"source": "unknown", "created": None, **body}, format, self.row_counts()
            )
            _write_json(tmp / "cohort.json", meta)
            if self.truth is not None:
                _write_json(tmp / "truth.json", self.truth)
        self.metadata = meta
        return dest


def cohort_json(body: dict[str, Any], file_format: str, row_counts: dict[str, int]) -> dict:
    """The contents of ``cohort.json``: format version, ``body``, software version, counts."""
    return {
        "format_version": FORMAT_VERSION,
        **body,
        "ptanalytics_version": _version(),
        "file_format": file_format,
        "row_counts": row_counts,
    }


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, *, overwrite: bool):
    """Yield a temporary sibling folder that replaces ``path`` when the block ends without error.

    The cohort is then written whole or not at all: on any error the temporary folder is removed
    and ``path`` is untouched. An existing ``path`` that is a file, or a non-empty folder without
    ``overwrite=True``, is refused before anything is written.
    """
    dest = Path(path)
    if dest.exists() and not dest.is_dir():
        raise CohortFormatError(
            f"{dest}: exists and is not an empty folder (it is a file). Fix: choose a folder."
        )
    if dest.exists() and any(dest.iterdir()) and not overwrite:
        raise CohortFormatError(
            f"{dest}: folder exists and is not empty. Fix: choose another folder or pass "
            f"overwrite=True (--overwrite on the command line)."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        yield tmp
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_json(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"
    path.write_text(text, encoding="utf-8")


def _write_table(df: pd.DataFrame, path: Path, format: FileFormat) -> None:
    if format == "csv":
        df.to_csv(
            path,
            index=False,
            date_format="%Y-%m-%d",
            float_format="%.10g",
            lineterminator="\n",
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


def _parts(folder: Path) -> list[Path]:
    """The Parquet parts of a partitioned table, in part order (part-00009 before part-00010)."""
    parts = sorted(folder.glob("*.parquet"), key=lambda p: (len(p.name), p.name))
    if not parts:
        raise ValueError("the folder holds no .parquet parts")
    return parts


def _read_table(path: Path) -> pd.DataFrame:
    if path.is_dir():  # a table written in parts (simulate_to_disk)
        table = ds.dataset(_parts(path), format="parquet").to_table()
        return table.to_pandas(date_as_object=False)
    if path.suffix == ".csv":
        return pd.read_csv(
            path,
            dtype={"patient_id": "str", "clinic_id": "str", "therapist_id": "str"},
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8",
        )
    table = pq.read_table(path)
    return table.to_pandas(date_as_object=False)


def _find(folder: Path, name: str) -> Path | None:
    """``<name>.parquet``, ``<name>.csv`` or a folder ``<name>/`` of Parquet parts."""
    found = [folder / f"{name}.{ext}" for ext in ("parquet", "csv")]
    found = [p for p in found if p.exists()] + [p for p in [folder / name] if p.is_dir()]
    if len(found) > 1:
        raise CohortFormatError(
            f"{folder}: both {found[0].name} and {found[1].name} exist. "
            f"Fix: keep one file (or one folder of parts) per table."
        )
    return found[0] if found else None


def load_cohort(path: str | os.PathLike) -> Cohort:
    """Read a cohort folder written by :meth:`Cohort.write`, ``simulate`` or ``ingest``.

    A table is ``<table>.parquet``, ``<table>.csv`` or a folder ``<table>/`` of Parquet parts
    (``part-00000.parquet``, ... as :func:`~ptanalytics.simulate.simulate_to_disk` writes), read
    in part order into one frame.

    Every known column is coerced to its canonical type; row counts are checked against
    ``cohort.json``. A table whose file is absent is empty (an outcomes-only cohort is valid) unless
    ``cohort.json`` says it had rows.

    Raises
    ------
    CohortFormatError
        When the folder or ``cohort.json`` is missing, a file cannot be read, a required column
        is absent, a value cannot be represented, or a row count disagrees with ``cohort.json``.
    """
    folder = Path(path)
    meta_path = folder / "cohort.json"
    if not meta_path.is_file():
        raise CohortFormatError(
            f"{folder}: not a cohort folder (no cohort.json). Fix: point to a folder written by "
            f"'ptanalytics simulate' or 'ptanalytics ingest'."
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CohortFormatError(f"{meta_path}: not valid JSON ({exc}).") from exc
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CohortFormatError(
            f"{meta_path}: format_version {version!r} is not supported by this ptanalytics "
            f"(reads {FORMAT_VERSION}). Fix: re-create the cohort with this version."
        )
    counts = meta.get("row_counts", {})
    tables: dict[str, pd.DataFrame] = {}
    for name in TABLE_NAMES:
        file = _find(folder, name)
        if file is None:
            if counts.get(name, 0):
                raise CohortFormatError(
                    f"{folder}: cohort.json lists {counts[name]} rows of '{name}' but there is "
                    f"no {name}.parquet, {name}.csv or {name}/ folder of parts. Fix: restore it "
                    f"or re-create the cohort."
                )
            tables[name] = empty_table(name)
            continue
        try:
            raw = _read_table(file)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise CohortFormatError(f"{file}: cannot be read ({exc}).") from exc
        tables[name] = coerce_table(name, raw, source=str(file))
        if name in counts and counts[name] != len(tables[name]):
            raise CohortFormatError(
                f"{file}: has {len(tables[name])} rows but cohort.json lists {counts[name]}. "
                f"Fix: the file was changed or truncated; restore it or re-create the cohort."
            )
    truth = None
    if (folder / "truth.json").is_file():
        truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    truth_file = _find(folder, _TRUTH_PATIENTS)
    truth_patients = _read_table(truth_file) if truth_file is not None else None
    if truth_patients is not None:
        truth_patients = _coerce_truth_patients(truth_patients)
    quarantine = {
        f.stem: pd.read_csv(f, dtype="str", keep_default_na=False, na_values=[""])
        for f in sorted((folder / "quarantine").glob("*.csv"))
    } or None
    return Cohort(
        **tables, metadata=meta, truth=truth, truth_patients=truth_patients, quarantine=quarantine
    )


def _coerce_truth_patients(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["patient_id"] = df["patient_id"].astype("str")
    for col in df.columns:
        if col.endswith("_week"):  # nullable week numbers (e.g. no dropout)
            df[col] = df[col].astype("Int64")
        elif col.endswith("_on"):
            df[col] = pd.to_datetime(df[col]).astype("datetime64[s]")
    return df
