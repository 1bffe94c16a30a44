"""Simulate a cohort chunk by chunk into a folder of Parquet parts: :func:`simulate_to_disk`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ptanalytics._checks import check_bool, check_number
from ptanalytics.cohort.container import TABLE_NAMES
from ptanalytics.cohort.io import (
    _TRUTH_PATIENTS,
    _write_json,
    _write_table,
    atomic_folder,
    cohort_json,
)
from ptanalytics.cohort.schema import coerce_table
from ptanalytics.exceptions import ConfigError
from ptanalytics.simulate._chunk import (
    Chunk,
    checked_config,
    id_width,
    metadata,
    simulate_chunk,
)
from ptanalytics.simulate._truth import pool_effects, realised_calibration, truth_document
from ptanalytics.simulate.config import SimulationConfig

__all__ = ["simulate_to_disk"]

_POOLING_NOTE = (
    "This cohort was simulated in {n_chunks} chunks of up to {chunk} patients, each with its own "
    "random stream. Cohort-average effects are the patient-weighted means of the chunks' exact "
    "contrasts (weighted by the patients each contrast averages over, e.g. the eligible patients "
    "of a substitution), which equals the contrast over the whole cohort. Realised calibration "
    "values are pooled exactly from the chunks' counts, means and sums of squared deviations, "
    "except that dropout is calibrated within each chunk (the weekly offset that keeps the "
    "hazard of those at risk at its target is solved per chunk)."
)


def _chunk_rng(seed: int, chunk: int, children: list[np.random.SeedSequence]):
    """Chunk 0 draws from ``default_rng(seed)``, as simulate_cohort; chunk c >= 1 from child c-1."""
    return np.random.default_rng(seed if chunk == 0 else children[chunk - 1])


def _as_str_ids(df: pd.DataFrame) -> pd.DataFrame:
    """``patient_id`` held as a Categorical, as canonical strings (via Arrow: 30x astype)."""
    ids = df["patient_id"]
    if not isinstance(ids.dtype, pd.CategoricalDtype):
        return df
    codes = pa.array(ids.cat.codes.to_numpy())
    values = pa.array(ids.cat.categories.to_numpy(dtype=str), pa.large_string())
    text = pa.DictionaryArray.from_arrays(codes, values).cast(pa.large_string())
    return df.assign(patient_id=pd.array(text, dtype="str"))


def _check_disk_args(chunk_patients: Any, format: Any, overwrite: Any) -> None:
    check_number(
        "chunk_patients",
        chunk_patients,
        low=1,
        integer=True,
        what="a whole number >= 1 (10,000 or more keeps the per-chunk dropout calibration "
        "tight; the default is 50,000)",
    )
    if format != "parquet":
        raise ConfigError(
            f"format={format!r} is not supported by simulate_to_disk, which writes each table as "
            f"a folder of Parquet parts. Fix: use format='parquet', or "
            f"simulate_cohort(...).write(path, format='csv') for a cohort that fits in memory."
        )
    check_bool("overwrite", overwrite)


def _write_parts(tmp: Path, file: str, part: Chunk, counts: dict[str, int]) -> None:
    """Write one chunk's tables and truth_patients as ``<table>/<file>``; add up the rows."""
    for name, df in part.tables.items():
        df = coerce_table(name, _as_str_ids(df), source=f"cohort table {name}")
        _write_table(df, tmp / name / file, "parquet")
        counts[name] += len(df)
    _write_table(part.truth_patients, tmp / _TRUTH_PATIENTS / file, "parquet")


def _chunking(chunk: int, n_chunks: int) -> dict[str, Any]:
    """The ``chunking`` entry of ``cohort.json``."""
    return {
        "chunk_patients": chunk,
        "n_chunks": n_chunks,
        "layout": "each table is a folder <table>/part-NNNNN.parquet, one part per chunk "
        "of patients, in patient order",
        "random_streams": "chunk 0: numpy default_rng(seed); chunk c >= 1: "
        "SeedSequence(seed).spawn(n_chunks - 1)[c - 1]",
    }


def simulate_to_disk(
    path: str | os.PathLike,
    n_patients: int,
    *,
    seed: int,
    config: SimulationConfig | dict | None = None,
    chunk_patients: int = 50_000,
    format: str = "parquet",
    overwrite: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
    **overrides: Any,
) -> Path:
    """Simulate a cohort chunk by chunk and write it to the folder ``path``, never whole in memory.

    Each table (and ``truth_patients``) is a folder of Parquet parts, one per chunk of patients,
    ``<path>/<table>/part-00000.parquet``, ``part-00001.parquet``, ..., with the columns and types
    :meth:`Cohort.write` gives the table; :func:`~ptanalytics.cohort.io.load_cohort` reads it.
    ``cohort.json`` has :meth:`Cohort.write`'s keys (row counts summed over the parts) and
    ``chunking``; ``truth.json`` pools the chunks (see its ``notes``). Memory is bounded by the
    chunk size (about 1.9 GB at peak for the default 50,000 patients and 26 weeks).

    Chunk 0 uses the random stream of ``simulate_cohort(n, seed=seed)`` and chunk ``c >= 1`` the
    child ``c - 1`` of ``numpy.random.SeedSequence(seed).spawn(...)``. A cohort of at most
    ``chunk_patients`` patients therefore has exactly the tables and truth of
    ``simulate_cohort(n_patients, seed=seed)``; a larger one is a different, equally valid draw,
    and so is the same cohort with another ``chunk_patients``. Patient ids run ``P000001``, ...
    over the whole cohort (width set by ``n_patients``), in order across parts.

    Parameters
    ----------
    path : path-like
        Destination folder. Written whole or not at all (a temporary sibling folder is renamed
        into place at the end).
    n_patients : int
        Number of patients (at least 1).
    seed : int
        Seed: the same seed, config and ``chunk_patients`` give byte-identical files.
    config : SimulationConfig or dict, optional
        Generating parameters, as for :func:`simulate_cohort`.
    chunk_patients : int
        Patients simulated and written at a time (at least 1; 10,000 or more keeps the dropout
        calibration, which is solved within each chunk, on target).
    format : {"parquet"}
        Only Parquet is written in parts.
    overwrite : bool
        Replace an existing non-empty folder; without it that is an error.
    progress : callable, optional
        Called after each chunk with a dict: ``chunk`` (1-based), ``n_chunks``, ``patients_done``,
        ``n_patients``, ``rows`` (rows written in this chunk, all tables) and ``seconds`` elapsed.
    **overrides
        Individual parameters, applied on top of ``config``.

    Returns
    -------
    pathlib.Path
        The folder written.

    Raises
    ------
    ConfigError
        When an argument or parameter is invalid.
    CohortFormatError
        When ``path`` exists and is not empty and ``overwrite`` is false, or is a file.
    """
    cfg = checked_config(n_patients, seed, config, overrides)
    _check_disk_args(chunk_patients, format, overwrite)
    n, seed, chunk = int(n_patients), int(seed), min(int(chunk_patients), int(n_patients))
    dest = Path(path)
    n_chunks = -(-n // chunk)
    children = np.random.SeedSequence(seed).spawn(n_chunks - 1)
    names = (*TABLE_NAMES, _TRUTH_PATIENTS)
    counts = dict.fromkeys(TABLE_NAMES, 0)
    effects, stats, t0 = [], None, time.perf_counter()
    with atomic_folder(dest, overwrite=overwrite) as tmp:
        for name in names:
            (tmp / name).mkdir()
        for c in range(n_chunks):
            size = min(chunk, n - c * chunk)
            part = simulate_chunk(
                size, cfg, _chunk_rng(seed, c, children), c * chunk + 1, id_width(n)
            )
            _write_parts(tmp, f"part-{c:05d}.parquet", part, counts)
            effects.append(part.effects)
            moments = part.stats.moments()
            stats = moments if stats is None else stats.pool(moments)
            calibration = realised_calibration(cfg, part.stats) if n_chunks == 1 else None
            if progress is not None:
                progress(
                    {
                        "chunk": c + 1,
                        "n_chunks": n_chunks,
                        "patients_done": c * chunk + size,
                        "n_patients": n,
                        "rows": sum(len(df) for df in part.tables.values()),
                        "seconds": time.perf_counter() - t0,
                    }
                )
            del part
        if n_chunks == 1:  # exactly simulate_cohort's truth
            truth = truth_document(seed, n, cfg, [e for e, _ in effects[0]], calibration)
        else:
            note = _POOLING_NOTE.format(n_chunks=n_chunks, chunk=chunk)
            pooled = realised_calibration(cfg, stats)
            truth = truth_document(seed, n, cfg, pool_effects(effects), pooled, (note,))
        meta = cohort_json(metadata(seed, n, cfg), "parquet", counts)
        meta["chunking"] = _chunking(chunk, n_chunks)
        _write_json(tmp / "cohort.json", meta)
        _write_json(tmp / "truth.json", truth)
    return dest
