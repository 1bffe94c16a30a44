"""Recovery of the complier effect in the simulator's two other randomised designs (issue 15).

The causal recovery (``ptanalytics recovery --analysis causal``) scores two-stage least squares
on the encouragement trial. This script scores it on the two other designs, each with half the
patients randomised, against ``complier_effect[<exposure>][followup]`` in ``truth.json`` (by
common random numbers):

* ``home_only``: a home-only guided phase, with overall ``adherence`` as the exposure;
* ``length``: a planned 12-week guided phase against 8, with the actual guided weeks
  (``guided_weeks_actual``) as the exposure.

It uses the same estimator settings as the encouragement recovery: baseline NPRS, age, sex and
chronicity as covariates, complete cases, HC1 SEs. It runs the ``optimistic`` and
``null_adherence`` scenarios, R replications of N patients, in parallel on local cores (same
seed, same table).

    python docs/validation/complier_designs.py [N] [R] [SEED]

Output: ``docs/validation/complier_designs_2000x200.csv`` (the summary; measured figures in
docs/causal.md).
"""

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

DESIGNS = {
    "home_only": ({"home_only_share": 0.5}, "adherence", "home_only"),
    "length": ({"length_trial_share": 0.5, "length_trial_weeks": 12}, "guided_weeks_actual", None),
}
TRUTH = {"adherence": "complier_effect[adherence][followup]",
         "guided_weeks_actual": "complier_effect[guided_weeks][followup]"}  # fmt: skip


def one(args):
    """One replication: (design, scenario, index, truth, estimate, SE, ci, first-stage F)."""
    import ptanalytics as pt
    from ptanalytics.models.causal import complier_effect
    from ptanalytics.simulate import scenario_config
    from ptanalytics.studies.causal_recovery import COVARIATES

    design, scenario, n, seed, index = args
    params, exposure, _ = DESIGNS[design]
    cfg = scenario_config(scenario, **params)
    cohort = pt.simulate_cohort(n, seed=seed, config=cfg)
    truth = {e["term"]: e["value"] for e in cohort.truth["effects"]}[TRUTH[exposure]]
    summary = pt.patient_summary(cohort)
    summary["guided_weeks_actual"] = summary["guided_weeks_actual"].astype(float)
    fit = complier_effect(
        summary,
        outcome="nprs_change_followup",
        exposure=exposure,
        instrument="arm",
        instrument_level=cfg.trial_arms[0],
        covariates=list(COVARIATES),
    )
    r = fit.table.iloc[0]
    naive = fit.naive.iloc[0]
    return {
        "design": design,
        "scenario": scenario,
        "replication": index,
        "truth": truth,
        "estimate": float(r["estimate"]),
        "std_error": float(r["std_error"]),
        "ci_low": float(r["ci_low"]),
        "ci_high": float(r["ci_high"]),
        "first_stage_f": float(fit.first_stage_f),
        "naive_estimate": float(naive["estimate"]),
        "naive_ci_low": float(naive["ci_low"]),
        "naive_ci_high": float(naive["ci_high"]),
    }


def summarise(fits: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (design, scenario), g in fits.groupby(["design", "scenario"], sort=False):
        truth = g["truth"].mean()
        est, ok = g["estimate"], g["estimate"].notna()
        # Median and median absolute deviation too: under a weak instrument 2SLS has no mean.
        rows.append(
            {
                "design": design,
                "scenario": scenario,
                "replications": len(g),
                "truth": truth,
                "bias": est.mean() - truth,
                "median_bias": est.median() - truth,
                "empirical_se": est.std(ddof=1),
                "mad_se": 1.4826 * (est - est.median()).abs().median(),
                "mean_model_se": g["std_error"].mean(),
                "coverage": ((g["ci_low"] <= g["truth"]) & (g["truth"] <= g["ci_high"]))[ok].mean(),
                "median_first_stage_f": g["first_stage_f"].median(),
                "weak_share": (g["first_stage_f"] < 10).mean(),
                "naive_bias": g["naive_estimate"].mean() - truth,
                "naive_coverage": (
                    (g["naive_ci_low"] <= g["truth"]) & (g["truth"] <= g["naive_ci_high"])
                ).mean(),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    from ptanalytics.studies._pool import run_tasks

    args = [int(a) for a in sys.argv[1:]]
    n, reps, seed = (args + [2000, 200, 0][len(args) :])[:3]
    seeds = np.random.SeedSequence(seed).generate_state(reps, dtype=np.uint32)
    tasks = [
        (design, scenario, n, int(s), i)
        for design in DESIGNS
        for scenario in ("optimistic", "null_adherence")
        for i, s in enumerate(seeds)
    ]
    start = time.perf_counter()
    fits = pd.DataFrame(run_tasks(one, tasks, label="complier designs", progress=True))
    summary = summarise(fits)
    took = time.perf_counter() - start
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(summary.round(4).to_string(index=False))
    print(f"{len(tasks)} replications of {n} patients in {took:.0f} s, seed {seed}")
    out = Path(__file__).with_name(f"complier_designs_{n}x{reps}.csv")
    summary.to_csv(out, index=False, float_format="%.6g")
    print(f"wrote {out.name}")


if __name__ == "__main__":
    main()
