"""Benchmark: simulate cohorts and write them as Parquet; print wall time and peak memory.

Each size runs in its own process so that its peak resident memory is its own.

Usage::

    python benchmarks/simulate.py [N ...]            in memory, then to disk (default 10000 100000)
    python benchmarks/simulate.py --disk N [N ...]   to disk only (simulate_to_disk), e.g. 1000000
    python benchmarks/simulate.py --session-rows 100000000   to disk, patients for ~1e8 sessions
    python benchmarks/simulate.py --chunk K ...      patients per chunk on disk (default 50000)

Targets on the project's 2-core machine: 10,000 patients x 26 weeks <= 10 s; 100,000 <= 90 s
with peak memory <= 6 GB (in memory). To disk: 10^6 patients <= 10 min with peak memory bounded
by the chunk (not the cohort), and 10^8 session rows (about 500,000 patients) likewise.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

from _harness import in_child, peak_mb, report

DEFAULT_SIZES = [10_000, 100_000]
DEFAULT_CHUNK = 50_000


def _child(n: int) -> None:
    import ptanalytics as pt

    t0 = time.perf_counter()
    cohort = pt.simulate_cohort(n, seed=1)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cohort.write(f"{tmp}/cohort", format="parquet")
        t2 = time.perf_counter()
    peak = peak_mb()
    report(
        {
            "patients": n,
            "simulate_s": t1 - t0,
            "write_s": t2 - t1,
            "total_s": t2 - t0,
            "peak_mb": peak,
            "session_rows": len(cohort.sessions),
        }
    )


def _disk_child(n: int, chunk: int) -> None:
    from ptanalytics.simulate import simulate_to_disk

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        out = simulate_to_disk(f"{tmp}/cohort", n, seed=1, chunk_patients=chunk)
        seconds = time.perf_counter() - t0
        meta = json.loads((out / "cohort.json").read_text())
        truth = json.loads((out / "truth.json").read_text())
        size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
    counts = meta["row_counts"]
    report(
        {
            "patients": n,
            "chunk": chunk,
            "n_chunks": meta["chunking"]["n_chunks"],
            "seconds": seconds,
            "rows": sum(counts.values()),
            "session_rows": counts["sessions"],
            "peak_mb": peak_mb(),
            "disk_mb": size / 2**20,
            "dropout_by_week8": truth["calibration"]["dropout_by_week8"]["realised"],
        }
    )


def _sessions_per_patient() -> float:
    import ptanalytics as pt

    return len(pt.simulate_cohort(20_000, seed=1).sessions) / 20_000


def main(sizes: list[int]) -> None:
    print(
        f"{'patients':>10} {'session rows':>13} {'simulate s':>11} {'write s':>8} "
        f"{'total s':>8} {'peak MB':>8}"
    )
    for n in sizes:
        r = in_child(__file__, str(n))
        print(
            f"{r['patients']:>10,} {r['session_rows']:>13,} {r['simulate_s']:>11.1f} "
            f"{r['write_s']:>8.1f} {r['total_s']:>8.1f} {r['peak_mb']:>8.0f}",
            flush=True,
        )


def main_disk(sizes: list[int], chunk: int) -> None:
    print(f"\nsimulate to disk (simulate_to_disk, chunks of {chunk:,} patients)")
    print(
        f"{'patients':>10} {'chunks':>6} {'session rows':>13} {'rows written':>13} {'total s':>8} "
        f"{'rows/s':>10} {'peak MB':>8} {'disk MB':>8} {'dropout wk8':>11}"
    )
    for n in sizes:
        r = in_child(__file__, "--disk-child", str(n), str(chunk))
        print(
            f"{r['patients']:>10,} {r['n_chunks']:>6} {r['session_rows']:>13,} {r['rows']:>13,} "
            f"{r['seconds']:>8.1f} {r['rows'] / r['seconds']:>10,.0f} {r['peak_mb']:>8.0f} "
            f"{r['disk_mb']:>8.0f} {r['dropout_by_week8']:>11.4f}",
            flush=True,
        )


def _cli(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, help="patients, in memory and to disk")
    parser.add_argument("--disk", nargs="+", type=int, metavar="N", help="to disk only: patients")
    parser.add_argument(
        "--session-rows", type=float, metavar="ROWS", help="to disk only: about this many sessions"
    )
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="patients per chunk")
    args = parser.parse_args(argv)
    if args.disk or args.session_rows:
        sizes = list(args.disk or [])
        if args.session_rows:
            per_patient = _sessions_per_patient()
            n = math.ceil(1.01 * args.session_rows / per_patient)  # 1% margin: rows vary by seed
            print(
                f"{args.session_rows:,.0f} session rows: {n:,} patients "
                f"({per_patient:.1f} each in a pilot, plus 1%)"
            )
            sizes.append(n)
        main_disk(sizes, args.chunk)
        return
    sizes = args.sizes or DEFAULT_SIZES
    main(sizes)
    main_disk(sizes, args.chunk)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        if sys.argv[2] == "--disk-child":
            _disk_child(int(sys.argv[3]), int(sys.argv[4]))
        else:
            _child(int(sys.argv[2]))
    else:
        _cli(sys.argv[1:])
