"""Benchmark: render the HTML report on simulated cohorts; time and memory, whole and by section.

Usage::

    python benchmarks/report.py [--cache DIR] [SIZE ...]   # SIZE: default, 10000, 100000, ...

(default: 10000; CI never runs this). For each size it prints

* the whole render (``render_report``: papermill, the kernel and nbconvert) in a child process:
  seconds, and the peak resident memory of the kernel (where the sections run; the child's
  ``RUSAGE_CHILDREN``) and of the papermill process itself (``RUSAGE_SELF``);
* each step of the report run without papermill in another child (``prepare_report`` and every
  ``*_section`` of the report notebook, in its order), in seconds;

each with its ratio to the issue-14 target on the project's 2-core machine: 10^4 patients in
15 s, 10^5 in 60 s and 4 GB. A cohort is simulated once (``simulate_cohort(n, seed=1)``) and kept
as Parquet under ``--cache`` (default: a temporary folder removed at the end).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from _harness import in_child, report

#: Targets of issue 14: patients -> (seconds, peak MB); None where there is none.
TARGETS = {10_000: (15.0, None), 100_000: (60.0, 4096.0)}
#: The sections of report/report.ipynb, in its order.
SECTIONS = (
    "title",
    "cohort",
    "flow",
    "data_quality",
    "adherence",
    "outcomes",
    "models",
    "effects",
    "dropout",
    "methods",
    "software",
    "provenance",
)


def _load(folder: str):
    import ptanalytics as pt

    return pt.default_cohort() if folder == "default" else pt.load_cohort(folder)


def _render(folder: str) -> None:
    """Child: the whole render; seconds and peaks (the kernel is this process's child)."""
    from ptanalytics.report import render_report

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        render_report(None if folder == "default" else folder, Path(tmp) / "r.html", progress=False)
    kernel = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report({"seconds": time.perf_counter() - t0, "kernel_mb": kernel, "papermill_mb": own})


def _sections(folder: str) -> None:
    """Child: each step of the report without papermill, in seconds."""
    import matplotlib

    matplotlib.use("Agg")
    from ptanalytics.report import sections
    from ptanalytics.report.render import Blocks

    cohort = _load(folder)
    times = {}
    t0 = time.perf_counter()
    r = sections.prepare_report(cohort, out=Blocks(live=False))
    times["prepare_report"] = time.perf_counter() - t0
    for name in SECTIONS:
        fn = getattr(sections, f"{name}_section", None)
        if fn is None:
            continue
        t0 = time.perf_counter()
        fn(r)
        times[name] = time.perf_counter() - t0
    times["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report(times)


def _cohort(size: str, cache: Path) -> str:
    if size == "default":
        return "default"
    import ptanalytics as pt

    folder = cache / f"sim-{int(size)}-seed1"
    if not (folder / "cohort.json").exists():
        t0 = time.perf_counter()
        pt.simulate_cohort(int(size), seed=1).write(folder, format="parquet")
        print(f"  (simulated {int(size):,} patients in {time.perf_counter() - t0:.0f} s)")
    return str(folder)


def _ratio(value: float, target: float | None) -> str:
    return f"{value / target:5.2f} x target ({target:g})" if target else ""


def _measure(size: str, cache: Path) -> None:
    folder = _cohort(size, cache)
    n = None if size == "default" else int(size)
    seconds, mb = TARGETS.get(n, (None, None))
    label = "default (300)" if n is None else f"{n:,} patients"
    whole = in_child(__file__, "render", folder)
    print(f"{label}: whole render", flush=True)
    print(f"  {'seconds':<22} {whole['seconds']:9.1f}  {_ratio(whole['seconds'], seconds)}")
    print(f"  {'peak MB, kernel':<22} {whole['kernel_mb']:9.0f}  {_ratio(whole['kernel_mb'], mb)}")
    print(f"  {'peak MB, papermill':<22} {whole['papermill_mb']:9.0f}")
    steps = in_child(__file__, "sections", folder)
    peak = steps.pop("peak_mb")
    total = sum(steps.values())
    print(f"{label}: steps without papermill (peak {peak:.0f} MB)")
    for name, sec in steps.items():
        print(f"  {name:<22} {sec:9.2f}  {100 * sec / total:5.1f}%")
    print(f"  {'total':<22} {total:9.2f}  {_ratio(total, seconds)}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", default=["10000"], help="'default' or patients")
    parser.add_argument("--cache", type=Path, help="keep simulated cohorts here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        for size in args.sizes:
            _measure(size, cache)


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 3 and sys.argv[1] == "--child":
        {"render": _render, "sections": _sections}[sys.argv[2]](sys.argv[3])
    else:
        main()
