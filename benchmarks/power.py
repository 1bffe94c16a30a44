"""Benchmark: power by simulation (issue 16).

1. Small fits, side by side in one run: lme4's ``sleepstudy`` (180 rows, 18 patients),
   ``Reaction ~ Days + (Days | Subject)`` by REML:
   * lme4: ``lmer()`` with its default settings, timed inside R (median of ``--repeats``; R's
     start-up and reading the CSV excluded);
   * ptanalytics as a power run fits: the design arrays built once, each fit
     (``models.lmm.wald_term``) from the identity start, as lme4's;
   * and, for reference, ``fit_lmm`` from the formula (design, fit, BLUPs, result object).
   Target: the power run's fit at most half of lme4's time.
2. A power run of 1,000 replications of 500 patients x 26 weeks (the simulator's default
   cohort with a randomised home-only guided phase, the ``slope`` analysis), on every core.
   Target: 5 minutes on 2 cores.

Usage:
    python benchmarks/power.py [--repeats 200] [--replications 1000] [--no-lme4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def _sleepstudy():
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sleepstudy.csv"
        subprocess.run(
            ["Rscript", "-e", f'write.csv(lme4::sleepstudy, "{path}", row.names = FALSE)'],
            check=True,
            capture_output=True,
        )
        return pd.read_csv(path)


def _ours(data, repeats: int) -> dict:
    from ptanalytics.models.lmm import fit_lmm, lmm_design, wald_term

    y, xd, zd, codes, _ = lmm_design(data, "Reaction ~ Days", group="Subject", re_formula="~ Days")
    x, z = xd.to_numpy(dtype=float), zd.to_numpy(dtype=float)
    wald_term(y, x, z, codes, 1)  # warm the imports
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        est, se, ok, _ = wald_term(y, x, z, codes, 1)
        times.append(time.perf_counter() - t0)
    formula = []
    for _ in range(max(repeats // 4, 5)):
        t0 = time.perf_counter()
        fit_lmm(data, "Reaction ~ Days", group="Subject", re_formula="~ Days")
        formula.append(time.perf_counter() - t0)
    return {
        "fit": statistics.median(times),
        "formula": statistics.median(formula),
        "estimate": est,
        "se": se,
        "converged": ok,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--replications", type=int, default=1000)
    ap.add_argument("--no-lme4", action="store_true")
    args = ap.parse_args()

    from ptanalytics.studies.lme4 import fit_lme4, lme4_available
    from ptanalytics.studies.power import SimulatorDesign, power

    have_r, why = lme4_available()
    if args.no_lme4 or not have_r:
        print(f"lme4 not run: {'--no-lme4' if args.no_lme4 else why}")
    else:
        data = _sleepstudy()
        ours = _ours(data, args.repeats)
        lme4 = fit_lme4(data, "Reaction ~ Days + (Days | Subject)", repeats=args.repeats)
        ratio = ours["fit"] / lme4["seconds"]
        print(f"sleepstudy (180 rows), median of {args.repeats} fits, REML, one run:")
        print(f"  lme4 lmer()                       {lme4['seconds'] * 1e3:7.2f} ms")
        print(
            f"  ptanalytics, power run's fit      {ours['fit'] * 1e3:7.2f} ms   "
            f"ratio to lme4 {ratio:.2f} (target <= 0.5)"
        )
        print(
            f"  ptanalytics fit_lmm (formula)     {ours['formula'] * 1e3:7.2f} ms   "
            f"ratio to lme4 {ours['formula'] / lme4['seconds']:.2f}"
        )
        d_est = abs(ours["estimate"] - lme4["fixed"]["Days"])
        d_se = abs(ours["se"] - lme4["se"]["Days"])
        print(f"  Days: {ours['estimate']:.6f} (SE {ours['se']:.6f}); |diff| to lme4 "
              f"{d_est:.1e} ({d_se:.1e})")  # fmt: skip

    design = SimulatorDesign(parameters={"home_only_share": 0.5}, analysis="slope")
    cores = os.cpu_count()
    t0 = time.perf_counter()
    res = power(design, n=500, replications=args.replications, seed=2026, progress=False)
    seconds = time.perf_counter() - t0
    row = res.table.iloc[0]
    print(
        f"power run: {args.replications} x 500 patients x {design.config.horizon_weeks} weeks "
        f"(home-only vs supervised guided phase, slope analysis) on {cores} cores: "
        f"{seconds:.1f} s (target 300 s); power {row['power']:.3f} (MC SE {row['mc_se']:.3f}), "
        f"{int(row['failed'])} failed"
    )


if __name__ == "__main__":
    main()
