"""Benchmark: patient_weeks and patient_summary on a large simulated cohort.

The cohort is simulated and written as Parquet first; a separate process loads it and builds the
frames, so the figures are those of an analysis session. Prints rows, seconds and peak memory.
Usage: python benchmarks/frames.py [PATIENTS]   (default 100000, about 20 million session rows)
Targets on the project's 2-core machine: patient_weeks <= 30 s and <= 8 GB peak.
"""

from __future__ import annotations

import sys
import tempfile
import time

from _harness import in_child, peak_mb, report


def _child(folder: str) -> None:
    import ptanalytics as pt
    from ptanalytics.metrics import patient_summary, patient_weeks

    t0 = time.perf_counter()
    cohort = pt.load_cohort(folder)
    t1 = time.perf_counter()
    weeks = patient_weeks(cohort)
    t2 = time.perf_counter()
    summary = patient_summary(cohort)
    t3 = time.perf_counter()
    report(
        {
            "session_rows": len(cohort.sessions),
            "patient_week_rows": len(weeks),
            "patients": len(summary),
            "load_s": t1 - t0,
            "patient_weeks_s": t2 - t1,
            "patient_summary_s": t3 - t2,
            "peak_mb": peak_mb(),
        }
    )


def main(patients: int) -> None:
    import ptanalytics as pt

    with tempfile.TemporaryDirectory() as tmp:
        pt.simulate_cohort(patients, seed=1).write(f"{tmp}/cohort", format="parquet")
        r = in_child(__file__, f"{tmp}/cohort")
    print(
        f"patients {r['patients']:,}; session rows {r['session_rows']:,}; "
        f"patient-week rows {r['patient_week_rows']:,}"
    )
    print(
        f"load_cohort {r['load_s']:.1f} s; patient_weeks {r['patient_weeks_s']:.1f} s; "
        f"patient_summary {r['patient_summary_s']:.1f} s; peak memory {r['peak_mb']:,.0f} MB"
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(sys.argv[2])
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
