"""Benchmark: patient-week aggregation by DuckDB (ptanalytics.metrics.sql) against the pandas path.

Cohorts of about 10^6, 10^7 and 10^8 session rows (~200 per patient) are written by
``simulate_to_disk`` as folders of Parquet parts; each measurement runs in a fresh process, so
peak memory (ru_maxrss) is that of the process doing the aggregation, DuckDB included.

* ``duckdb -> parquet``: ``patient_weeks_sql(folder, out=...)``, the streaming path.
* ``duckdb -> frame``: ``patient_weeks_sql(folder)`` returning a DataFrame.
* ``pandas``: ``load_cohort`` then ``frames.patient_weeks`` (skipped above 10^7 rows: the
  sessions table alone would not fit the 8 GB target).

Usage::

    python benchmarks/aggregate.py                    # 10^6 and 10^7 rows
    python benchmarks/aggregate.py --sizes 6 7 8      # add 10^8 (simulating it takes minutes)
    python benchmarks/aggregate.py --data-dir /big/cohorts --memory-limit 4GB --threads 2

Targets on the project's 2-core machine: 10^8 rows <= 60 s and <= 8 GB peak (DuckDB).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _harness import in_child, peak_mb, report

ROWS_PER_PATIENT = 200
PANDAS_MAX_ROWS = 10**7


def _child_duckdb(folder: str, out: str, memory_limit: str, threads: str) -> None:
    from ptanalytics.metrics.sql import patient_weeks_sql

    t0 = time.perf_counter()
    result = patient_weeks_sql(
        folder,
        out=out or None,
        memory_limit=memory_limit,
        threads=int(threads) if threads else None,
    )
    seconds = time.perf_counter() - t0
    if out:
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(out).metadata.num_rows
    else:
        rows = len(result)
    report({"seconds": seconds, "rows": rows, "peak_mb": peak_mb()})


def _child_pandas(folder: str) -> None:
    import ptanalytics as pt
    from ptanalytics.metrics import patient_weeks

    t0 = time.perf_counter()
    cohort = pt.load_cohort(folder)
    t1 = time.perf_counter()
    weeks = patient_weeks(cohort)
    t2 = time.perf_counter()
    report({"seconds": t2 - t0, "load_s": t1 - t0, "rows": len(weeks), "peak_mb": peak_mb()})


def _cohort(root: Path, exponent: int) -> tuple[Path, int]:
    """The cohort folder for 10^exponent session rows (reused when already written)."""
    import json

    from ptanalytics.simulate import simulate_to_disk

    patients = 10**exponent // ROWS_PER_PATIENT
    folder = root / f"sessions-1e{exponent}"
    if not (folder / "cohort.json").is_file():
        t0 = time.perf_counter()
        simulate_to_disk(folder, patients, seed=1, chunk_patients=min(patients, 50_000))
        print(f"  simulated {patients:,} patients in {time.perf_counter() - t0:.0f} s", flush=True)
    counts = json.loads((folder / "cohort.json").read_text(encoding="utf-8"))["row_counts"]
    return folder, int(counts["sessions"])


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ptanalytics-bench-") as tmp:
        root = Path(args.data_dir) if args.data_dir else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        lines = []
        for exponent in args.sizes:
            print(f"10^{exponent} session rows:", flush=True)
            folder, sessions = _cohort(root, exponent)
            out = str(Path(tmp) / f"weeks-1e{exponent}.parquet")
            opts = (args.memory_limit, str(args.threads or ""))
            runs = {"duckdb -> parquet": ("duckdb", str(folder), out, *opts)}
            if sessions <= PANDAS_MAX_ROWS:
                runs["duckdb -> frame"] = ("duckdb", str(folder), "", *opts)
                runs["pandas"] = ("pandas", str(folder))
            else:
                print(
                    f"  pandas skipped: {sessions:,} session rows > {PANDAS_MAX_ROWS:,} "
                    f"(the loaded cohort alone would exceed the 8 GB target)"
                )
            figures = {name: in_child(__file__, *argv) for name, argv in runs.items()}
            base = figures.get("pandas", {}).get("seconds")
            for name, r in figures.items():
                ratio = f"{base / r['seconds']:.1f}x" if base else "-"
                load = f" (load {r['load_s']:.1f} s)" if "load_s" in r else ""
                lines.append(
                    f"{sessions:>13,} {name:<18} {r['seconds']:>8.1f} s{load:<14} {ratio:>8} "
                    f"{r['peak_mb']:>9,.0f} MB {r['rows']:>12,}"
                )
                print("  " + lines[-1].strip(), flush=True)
        print()
        print(
            f"{'session rows':>13} {'path':<18} {'time':>10}{'':<14} {'vs pandas':>8} "
            f"{'peak mem':>12} {'pw rows':>12}"
        )
        print("\n".join(lines))
        print(f"(memory_limit {args.memory_limit}, threads {args.threads or 'all cores'})")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[6, 7],
        choices=range(4, 9),
        help="powers of ten of session rows (default: 6 7; 8 for 10^8 rows)",
    )
    parser.add_argument("--data-dir", help="keep (and reuse) the simulated cohorts here")
    parser.add_argument("--memory-limit", default="4GB", help="DuckDB memory_limit (4GB)")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: all cores)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        if sys.argv[2] == "duckdb":
            _child_duckdb(*sys.argv[3:7])
        else:
            _child_pandas(sys.argv[3])
    else:
        main(_parse(sys.argv[1:]))
