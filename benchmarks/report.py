"""Benchmark: render the HTML report for the default cohort and for a 10,000-patient cohort.

Usage: python benchmarks/report.py [PATIENTS ...]   (default: the default cohort, then 10000)
Targets on the project's 2-core machine: default cohort <= 60 s; 10,000 patients <= 180 s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from _harness import in_child, peak_mb, report


def _child(folder: str) -> None:
    from ptanalytics.report import render_report

    t0 = time.perf_counter()
    render_report(
        None if folder == "default" else folder, Path(tempfile.mkdtemp()) / "r.html", progress=False
    )
    report({"seconds": time.perf_counter() - t0, "peak_mb": peak_mb()})


def main(sizes: list[int]) -> None:
    import ptanalytics as pt

    print(f"{'cohort':>16} {'seconds':>8} {'peak MB (parent)':>17}")
    r = in_child(__file__, "default")
    print(f"{'default (300)':>16} {r['seconds']:>8.1f} {r['peak_mb']:>17.0f}", flush=True)
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            pt.simulate_cohort(n, seed=1).write(f"{tmp}/c", format="parquet")
            r = in_child(__file__, f"{tmp}/c")
        print(f"{n:>16,} {r['seconds']:>8.1f} {r['peak_mb']:>17.0f}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(sys.argv[2])
    else:
        main([int(a) for a in sys.argv[1:]] or [10_000])
