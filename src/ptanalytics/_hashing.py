"""SHA-256 of files: the one implementation, shared by ingest (the hashes of the source files and
of the mapping it records) and the report's provenance (the hashes of a cohort folder's files).

It lives at the top of the package, apart from ``ingestion`` and ``report``, so that neither
depends on the other for it.
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["file_sha256"]


def file_sha256(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (hex), read in chunks of ``chunk`` bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
