"""Recovery of the simulator's causal truths by the causal estimators, over many replications
(``ptanalytics recovery --analysis causal``).

Each replication simulates a randomised encouragement trial (half the patients encouraged,
:mod:`ptanalytics.simulate`'s ``encouragement_share``) under a named scenario, with its own seed
spawned from one seed, and compares with the trial's true complier effect of adherence
(``complier_effect[adherence][followup]`` in ``truth.json``, by common random numbers):

* the estimator: two-stage least squares with the arm as instrument
  (:func:`ptanalytics.models.causal.complier_effect`, baseline NPRS, age, sex and chronicity as
  covariates, complete cases);
* beside it, the naive association: the same covariate-adjusted OLS of the follow-up NPRS change
  on adherence, scored against the same truth.

Scored per scenario: bias, empirical SE, mean model SE and 95% coverage
(:func:`ptanalytics.studies.recovery.summarise_recovery`), with issue 15's targets (coverage
92-98%; |bias| below 10% of the effect or 0.1 NPRS points, whichever is larger). Replications run
in parallel across local cores; the result does not depend on the number of workers.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from ptanalytics._checks import check_number
from ptanalytics.studies.recovery import progress_line, summarise_recovery

__all__ = ["COVARIATES", "TRUTH_TERM", "causal_recovery", "targets"]

#: The truth the estimators are scored against.
TRUTH_TERM = "complier_effect[adherence][followup]"
#: Baseline covariates of both the 2SLS estimator and the naive regression.
COVARIATES = ("nprs_baseline", "age", "C(sex)", "C(chronicity)")


def _one(args: tuple[str, int, int, int]) -> list[dict]:
    """One replication: simulate the trial, fit both, compare with the truth."""
    import ptanalytics as pt
    from ptanalytics.models.causal import complier_effect
    from ptanalytics.simulate import scenario_config

    scenario, n_patients, seed, index = args
    cfg = scenario_config(scenario, encouragement_share=0.5)
    cohort = pt.simulate_cohort(n_patients, seed=seed, config=cfg)
    truth = {e["term"]: e["value"] for e in cohort.truth["effects"]}[TRUTH_TERM]
    fit = complier_effect(
        pt.patient_summary(cohort),
        outcome="nprs_change_followup",
        exposure="adherence",
        instrument="arm",
        instrument_level="encouraged",
        covariates=list(COVARIATES),
    )
    rows = []
    for label, table in (("complier effect (2SLS)", fit.table), ("naive (OLS)", fit.naive)):
        r = table.iloc[0]
        rows.append(
            {
                "term": f"{scenario}: {label}",
                "model_term": str(r["term"]),
                "truth": truth,
                "estimate": float(r["estimate"]),
                "std_error": float(r["std_error"]),
                "ci_low": float(r["ci_low"]),
                "ci_high": float(r["ci_high"]),
                "converged": True,
                "seed": seed,
                "replication": index,
                "first_stage_f": fit.first_stage_f,
            }
        )
    return rows


def targets(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with issue 15's targets: ``coverage_ok`` (92-98%), ``bias_ok`` (|bias| below
    10% of the true effect or 0.1 NPRS points, whichever is larger)."""
    limit = np.maximum(0.1 * summary["truth"].abs(), 0.1)
    return summary.assign(
        bias_limit=limit,
        bias_ok=summary["bias"].abs() < limit,
        coverage_ok=summary["coverage"].between(0.92, 0.98),
    )


def causal_recovery(
    n_patients: int = 2000,
    replications: int = 200,
    *,
    seed: int = 0,
    scenarios: tuple[str, ...] = ("optimistic", "null_adherence"),
    workers: int | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate, estimate and compare ``replications`` times per scenario.

    Returns
    -------
    (summary, fits)
        ``summary``: one row per scenario and method (:func:`summarise_recovery` plus
        :func:`targets`); ``fits``: one row per replication and method.
    """
    check_number("n_patients", n_patients, low=50, integer=True)
    check_number("replications", replications, low=2, integer=True)
    workers = workers or os.cpu_count() or 1
    seeds = np.random.SeedSequence(seed).generate_state(replications, dtype=np.uint32)
    jobs = [(s, n_patients, int(x), i) for s in scenarios for i, x in enumerate(seeds)]
    rows: list[dict] = []
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for done, part in enumerate(pool.map(_one, jobs, chunksize=4), start=1):
            rows += part
            if progress:
                progress_line("causal recovery", done, len(jobs), start)
    if progress:
        print(file=sys.stderr)
    fits = pd.DataFrame(rows)
    return targets(summarise_recovery(fits)), fits
