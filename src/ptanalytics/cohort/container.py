"""The ``Cohort`` container: the five canonical tables of one cohort, with its metadata.

Reading and writing a cohort folder is :mod:`ptanalytics.cohort.io`'s business
(:func:`~ptanalytics.cohort.io.load_cohort`, :meth:`Cohort.write`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from ptanalytics.cohort.schema import TABLES, empty_table

__all__ = ["TABLE_NAMES", "Cohort"]

#: The canonical tables, in data-dictionary order.
TABLE_NAMES: tuple[str, ...] = tuple(TABLES)


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
        self,
        path: str | os.PathLike,
        *,
        format: Literal["parquet", "csv"] = "parquet",
        overwrite: bool = False,
        inputs: Iterable[str | os.PathLike] = (),
    ) -> Path:
        """Write the cohort to the folder ``path`` and return it.

        The folder is written whole or not at all: files go to a hidden sibling folder that is
        swapped into place at the end (see :func:`~ptanalytics.cohort.io.atomic_folder`; a second
        writer to the same ``path`` is refused while this one runs). An existing non-empty
        ``path`` is an error unless ``overwrite=True``, which replaces it only when it is a
        cohort folder written by ptanalytics. Text cells of CSV files are neutralised against
        formula injection (:func:`~ptanalytics.cohort.io.safe_csv`). ``metadata`` becomes the
        ``cohort.json`` written.

        Parameters
        ----------
        path : path-like
            Destination folder.
        format : {"parquet", "csv"}
            File format of the tables (``cohort.json`` and ``truth.json`` are always JSON).
        overwrite : bool
            Replace an existing cohort folder written by ptanalytics.
        inputs : iterable of path-like
            Files the cohort was read from: ``path`` must not hold any of them.
        """
        # io builds on this container, so it is imported here, when a cohort is written.
        from ptanalytics.cohort.io import write_cohort

        return write_cohort(self, path, format=format, overwrite=overwrite, inputs=inputs)
