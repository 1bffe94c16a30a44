"""Benchmark: the causal estimators' speed on the program's weekly data (issue 15).

* the g-formula on 2,000 patients x 26 weekly periods (``history="summary"``: sessions done of
  those prescribed, weekly NPRS, censoring at dropout; five regimes; 10,000 simulated patients
  per regime; 200 bootstrap samples) — issue 15's budget: 60 s;
* the g-formula's full-history version on 2,000 patients x 5 periods (0/1 treatment, three
  regimes, 200 bootstrap samples);
* the target-trial emulation of the review's extension rule on 2,000 patients (200 bootstrap
  samples).

Each runs in a fresh child process (own peak memory); the simulation that makes the data is
not timed. No peer implementation installs beside pandas 3 (pygformula needs lifelines, which
pins pandas < 3; R's gfoRmula is not packaged for Debian): the ratio printed is to the budget.

Usage:
    python benchmarks/causal.py
"""

from __future__ import annotations

import sys
import time

from _harness import in_child, peak_mb, report

BUDGET_S = 60.0


def _child(which: str) -> None:
    import numpy as np

    import ptanalytics as pt
    from ptanalytics.models import extension_rule_trial, gformula, target_trial, weekly_history
    from ptanalytics.models.causal_frames import RULE_TRIAL, WEEKLY_GFORMULA
    from ptanalytics.simulate import scenario_config
    from ptanalytics.studies.causal_recovery import REGISTRY

    if which == "gformula_summary":
        cohort = pt.simulate_cohort(2000, seed=1, config=scenario_config("optimistic", **REGISTRY))
        long, final = weekly_history(cohort)
        long = long.merge(cohort.patients[["patient_id", "age"]].astype({"age": float}))
        t0 = time.perf_counter()
        gformula(
            long, outcome_data=final, baseline=["age"], **WEEKLY_GFORMULA,
            regimes=("natural", "natural+0.1", "natural+0.25*missed", "keep>=0.8", "always",
                     "never"),
            reference="natural", n_sim=10_000, bootstrap=200, seed=1,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
    elif which == "gformula_full":
        import pandas as pd

        rng = np.random.default_rng(0)
        n = 2000
        u, prev, rows, total = rng.normal(size=n), np.zeros(n), [], np.zeros(n)
        for t in range(5):
            pain = 0.8 * u - 0.6 * prev + rng.normal(size=n)
            a = (rng.random(n) < 1 / (1 + np.exp(0.2 - 0.9 * pain))).astype(float)
            rows.append(pd.DataFrame({"pid": range(n), "week": t, "a": a, "pain": pain}))
            total, prev = total + a, a
        out = pd.DataFrame({"pid": range(n), "y": -0.5 * total + 1.5 * u + rng.normal(size=n)})
        long = pd.concat(rows)
        t0 = time.perf_counter()
        gformula(
            long, id="pid", time="week", treatment="a", confounders=["pain"], outcome_data=out,
            outcome="y", n_sim=10_000, bootstrap=200, seed=1,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
    else:
        cohort = pt.simulate_cohort(2000, seed=1)
        frame = extension_rule_trial(cohort, 0.1)
        t0 = time.perf_counter()
        target_trial(frame, bootstrap=200, seed=1, **RULE_TRIAL)
        seconds = time.perf_counter() - t0
    report({"seconds": seconds, "peak_mb": peak_mb()})


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(sys.argv[2])
        return 0
    print(f"{'estimator':<55} {'seconds':>8} {'peak MB':>8} {'x budget':>9}")
    for which, label in (
        ("gformula_summary", "g-formula, 2,000 x 26 weeks, 6 regimes, 200 bootstraps"),
        ("gformula_full", "g-formula full history, 2,000 x 5, 3 regimes, 200 boots"),
        ("target_trial", "target trial (extension rule), 2,000, 200 bootstraps"),
    ):
        fig = in_child(__file__, which)
        print(
            f"{label:<55} {fig['seconds']:>8.1f} {fig['peak_mb']:>8.0f} "
            f"{fig['seconds'] / BUDGET_S:>9.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
