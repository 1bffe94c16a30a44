"""Benchmark: ingest and validate about 1,000,000 session rows from CSV and from Parquet.

A simulated cohort is written once in both formats; each ingest runs in its own process so that
its peak memory is its own. Prints rows, wall time and peak resident memory.
Usage: python benchmarks/ingest.py [PATIENTS]   (default 5200, about 1.0 million session rows)
Targets on the project's 2-core machine: <= 15 s and <= 4 GB per format.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

from _harness import in_child, peak_mb, report


def _child(folder: str, fmt: str) -> None:
    from ptanalytics.ingestion.pipeline import ingest

    files = [Path(folder) / fmt / f"{t}.{fmt}" for t in ("patients", "prescriptions", "sessions")]
    t0 = time.perf_counter()
    result = ingest(files, today=dt.date(2030, 1, 1))
    seconds = time.perf_counter() - t0
    peak = peak_mb()
    t = result.tables.set_index("table")
    report(
        {
            "format": fmt,
            "seconds": seconds,
            "peak_mb": peak,
            "session_rows": int(t.loc["sessions", "records"]),
            "accepted": int(t.loc["sessions", "accepted"]),
            "quarantined": int(t["quarantined"].sum()),
        }
    )


def main(patients: int) -> None:
    import ptanalytics as pt

    with tempfile.TemporaryDirectory() as tmp:
        cohort = pt.simulate_cohort(patients, seed=1)
        for fmt in ("csv", "parquet"):
            cohort.write(Path(tmp) / fmt, format=fmt)
        print(f"{'format':>8} {'session rows':>13} {'accepted':>10} {'seconds':>8} {'peak MB':>8}")
        for fmt in ("csv", "parquet"):
            r = in_child(__file__, tmp, fmt)
            print(
                f"{fmt:>8} {r['session_rows']:>13,} {r['accepted']:>10,} {r['seconds']:>8.1f} "
                f"{r['peak_mb']:>8.0f}",
                flush=True,
            )


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3])
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 5200)
