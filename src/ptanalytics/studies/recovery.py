"""Recovery of the simulator's truth by the pain-trajectory model, over many replications.

Each replication simulates a cohort with its own seed (spawned from one seed), fits the default
pain-trajectory mixed model and compares every estimate that has a counterpart in ``truth.json``:

* fixed effects with exact structural truths: the six co-intervention effects
  (``cointervention[<kind>]`` in truth, ``co_<kind>`` in the model) — bias, empirical vs model
  standard error and 95% CI coverage;
* variance components: ``sd(Intercept|patient_id)`` and ``residual_sd`` — bias only (the model
  has no intervals for them; the truth of ``residual_sd`` is approximate: measurement noise plus
  rounding to integers).

The adherence and exercise-mix terms of the model are associations between patients, not the
simulator's causal contrasts, so they are not scored against them here (the notes in
``docs/models.md`` compare them).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from ptanalytics.cohort.schema import COINTERVENTION_KINDS
from ptanalytics.models.trajectory import fit_pain_model, pain_model_frame
from ptanalytics.simulate import simulate_cohort
from ptanalytics.studies._pool import progress_line

__all__ = ["FIXED_TERMS", "VARIANCE_TERMS", "recovery", "summarise_recovery"]

FIXED_TERMS = {f"cointervention[{k}]": f"co_{k}" for k in COINTERVENTION_KINDS}
VARIANCE_TERMS = {"sd(Intercept|patient_id)": "sd(Intercept)", "residual_sd": "residual_sd"}


def _one(n_patients: int, seed: int, config) -> list[dict]:
    cohort = simulate_cohort(n_patients, seed=seed, config=config)
    truth = {e["term"]: e["value"] for e in cohort.truth["effects"]}
    model = fit_pain_model(pain_model_frame(cohort))
    fe = model.table.set_index("term")
    var = model.variance.set_index("component")["estimate"]
    rows = []
    for t_term, m_term in FIXED_TERMS.items():
        if m_term in fe.index:
            r = fe.loc[m_term]
            rows.append(
                {
                    "term": t_term,
                    "model_term": m_term,
                    "truth": truth[t_term],
                    "estimate": r["estimate"],
                    "std_error": r["std_error"],
                    "ci_low": r["ci_low"],
                    "ci_high": r["ci_high"],
                    "converged": model.converged,
                    "seed": seed,
                }
            )
    for t_term, m_term in VARIANCE_TERMS.items():
        rows.append(
            {
                "term": t_term,
                "model_term": m_term,
                "truth": truth[t_term],
                "estimate": float(var[m_term]),
                "std_error": np.nan,
                "ci_low": np.nan,
                "ci_high": np.nan,
                "converged": model.converged,
                "seed": seed,
            }
        )
    return rows


def recovery(
    n_patients: int = 300,
    replications: int = 200,
    *,
    seed: int = 0,
    config=None,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate, fit and compare with the truth ``replications`` times.

    Returns
    -------
    (summary, fits)
        ``summary``: one row per truth term (see :func:`summarise_recovery`); ``fits``: one row
        per replication and term (``term``, ``model_term``, ``truth``, ``estimate``,
        ``std_error``, ``ci_low``, ``ci_high``, ``converged``, ``seed``).
    """
    seeds = np.random.SeedSequence(seed).generate_state(replications, dtype=np.uint32)
    rows: list[dict] = []
    start = time.perf_counter()
    for i, s in enumerate(seeds, start=1):
        rows += _one(n_patients, int(s), config)
        if progress:
            progress_line("recovery", i, replications, start)
    if progress:
        print(file=sys.stderr)
    fits = pd.DataFrame(rows)
    return summarise_recovery(fits), fits


def summarise_recovery(fits: pd.DataFrame) -> pd.DataFrame:
    """Per truth term: ``truth``, ``mean_estimate``, ``bias``, ``relative_bias`` (bias / truth),
    ``empirical_se`` (SD of estimates), ``mean_model_se``, ``coverage`` (share of 95% intervals
    containing the truth; missing for variance components), ``replications``, ``converged``
    (share of fits that converged)."""
    out = []
    for term, part in fits.groupby("term", sort=False):
        truth = float(part["truth"].mean())
        est = part["estimate"].astype(float)
        covered = (part["ci_low"] <= part["truth"]) & (part["truth"] <= part["ci_high"])
        has_ci = part["ci_low"].notna().any()
        out.append(
            {
                "term": term,
                "truth": truth,
                "mean_estimate": float(est.mean()),
                "bias": float(est.mean() - truth),
                "relative_bias": float((est.mean() - truth) / truth) if truth else np.nan,
                "empirical_se": float(est.std(ddof=1)) if len(est) > 1 else np.nan,
                "mean_model_se": float(part["std_error"].mean()) if has_ci else np.nan,
                "coverage": float(covered.mean()) if has_ci else np.nan,
                "replications": len(part),
                "converged": float(part["converged"].mean()),
            }
        )
    return pd.DataFrame(out)
