"""Benchmark: simulate cohorts and write them as Parquet; print wall time and peak memory.

Each size runs in its own process so that its peak resident memory is its own.
Usage: python benchmarks/simulate.py [N ...]   (default: 10000 100000)
Targets on the project's 2-core machine: 10,000 patients x 26 weeks <= 10 s; 100,000 <= 90 s
with peak memory <= 6 GB.
"""

from __future__ import annotations

import sys
import tempfile
import time

from _harness import in_child, peak_mb, report


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


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(int(sys.argv[2]))
    else:
        main([int(a) for a in sys.argv[1:]] or [10_000, 100_000])
