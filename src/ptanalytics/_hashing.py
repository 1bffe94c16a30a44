"""SHA-256 of files: the one implementation, shared by ingest (the hashes of the source files and
of the mapping it records) and the report's provenance (the hashes of a cohort folder's files).

It lives at the top of the package, apart from ``ingestion`` and ``report``, so that neither
depends on the other for it.
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["file_sha256", "frame_sha256", "tables_sha256"]


def file_sha256(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (hex), read in chunks of ``chunk`` bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------ tables in memory
#: Rows hashed at a time by :func:`frame_sha256` (bounded memory; the digest does not depend on it).
CHUNK_ROWS = 1_000_000


def _column_kind(series) -> str:
    """The canonical kind a column is hashed as: ``text``, ``category``, ``datetime``,
    ``bool`` or ``number`` (integers and floats alike: their values are hashed as float64)."""
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    return "text"


class _ColumnDigest:
    """The streams of one column: values, missing mask and (text) the length of each value."""

    def __init__(self, name: str, kind: str, categories=None):
        self.kind = kind
        self.head = hashlib.sha256(f"{name}\x00{kind}".encode())
        self.values, self.missing, self.lengths = (hashlib.sha256() for _ in range(3))
        self.rank = None
        if categories is not None:
            # Codes are hashed by the rank of their category in sorted order, so that the order
            # in which a file listed the categories does not change the digest.
            import numpy as np

            labels = [str(c) for c in categories]
            order = np.argsort(np.array(labels, dtype=object), kind="stable")
            self.rank = np.empty(len(labels), dtype=np.int64)
            self.rank[order] = np.arange(len(labels))
            self.head.update("\x00".join(sorted(labels)).encode())

    def update(self, series) -> None:
        import numpy as np

        missing = series.isna().to_numpy(dtype=bool)
        self.missing.update(missing.view(np.uint8).tobytes())
        if self.kind == "text":
            self._text(series)
            return
        if self.kind == "category":
            codes = series.cat.codes.to_numpy()
            values = np.where(codes < 0, -1, self.rank[np.maximum(codes, 0)])
        elif self.kind == "datetime":
            values = series.astype("datetime64[s]").to_numpy().view(np.int64)
        elif self.kind == "bool":
            values = series.to_numpy(dtype=np.int8, na_value=0)
        else:
            values = series.to_numpy(dtype=np.float64, na_value=0.0)
        values = np.where(missing, 0, values).astype(np.int64 if self.kind != "number" else float)
        self.values.update(np.ascontiguousarray(values).tobytes())

    def _text(self, series) -> None:
        import numpy as np
        import pyarrow as pa

        array = pa.array(series, type=pa.large_string(), from_pandas=True)
        for chunk in array.chunks if isinstance(array, pa.ChunkedArray) else [array]:
            chunk = chunk.cast(pa.large_string())
            offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)
            offsets = offsets[chunk.offset : chunk.offset + len(chunk) + 1]
            data = chunk.buffers()[2]
            if data is not None and len(offsets):
                self.values.update(memoryview(data)[offsets[0] : offsets[-1]])
            self.lengths.update(np.diff(offsets).astype(np.int64).tobytes())

    def digest(self) -> bytes:
        for stream in (self.values, self.missing, self.lengths):
            self.head.update(stream.digest())
        return self.head.digest()


def frame_sha256(frame, *, chunk_rows: int = CHUNK_ROWS) -> str:
    """SHA-256 of a table's content, independent of how it was stored or read.

    Each column contributes its name, its kind (:func:`_column_kind`: integer and float columns
    alike as numbers, dates to the second, categories by their labels whatever their order),
    its missing mask and its values (missing ones as 0; text as its UTF-8 bytes and lengths).
    The same data read from CSV or from Parquet by ``load_cohort`` has the same digest; the row
    order, a value, a missing cell or a column name changes it. Rows are hashed ``chunk_rows``
    at a time (bounded memory; the digest does not depend on ``chunk_rows``).
    """
    columns = []
    for name in frame.columns:
        col = frame[name]
        kind = _column_kind(col)
        cats = col.cat.categories if kind == "category" else None
        columns.append(_ColumnDigest(str(name), kind, cats))
    for start in range(0, len(frame), chunk_rows):
        part = frame.iloc[start : start + chunk_rows]
        for name, digest in zip(frame.columns, columns, strict=True):
            digest.update(part[name])
    total = hashlib.sha256(len(frame).to_bytes(8, "little"))
    for digest in columns:
        total.update(digest.digest())
    return total.hexdigest()


def tables_sha256(tables) -> str:
    """SHA-256 of named tables (``{name: DataFrame}``, in their order): each name and
    :func:`frame_sha256` of its table."""
    total = hashlib.sha256()
    for name, frame in tables.items():
        total.update(str(name).encode() + b"\x00" + bytes.fromhex(frame_sha256(frame)))
    return total.hexdigest()
