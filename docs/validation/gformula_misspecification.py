"""The g-formula's shift regimes at large n, and the spread of adherence in its natural course
(docs/causal.md, "Reading it").

One large registry (optimistic scenario, the causal recovery's REGISTRY config and encouragement
trial), optionally with nobody leaving; the g-formula's four contrasts against their truths with
40,000 simulated patients per regime, then the spread of adherence in the g-formula's natural
course against the data's (meaningful without dropout). ``--binomial`` sets the treatment
model's latent spread to 0 (the binomial model used before; it made adherence less spread and
less persistent than it is and biased the +0.10 and kept-at-80% regimes).

    python docs/validation/gformula_misspecification.py [N] [SEED] [--no-dropout] [--binomial]

Measured (N 10,000, seeds 11-16): see docs/causal.md. Takes about 20 s.
"""

import sys

import numpy as np

import ptanalytics as pt
import ptanalytics.models.causal as causal
from ptanalytics.models.causal_frames import WEEKLY_GFORMULA, weekly_history
from ptanalytics.simulate import scenario_config
from ptanalytics.studies.causal_recovery import REGIMES, REGISTRY

args = [a for a in sys.argv[1:] if not a.startswith("--")]
n, seed = (int(args[0]) if args else 10_000), (int(args[1]) if len(args) > 1 else 11)
extra = {"dropout_by_week8": 0.0} if "--no-dropout" in sys.argv else {}
natural = {}
simulate = causal._simulate_summary


def capture(models, w, l0, m, sched, regime, draws, trace=None):
    """The natural course's sessions, week by week (the first call only)."""
    if not natural and regime[0] == "natural":
        sessions = []
        out = simulate(models, w, l0, m, sched, regime, draws, sessions)
        natural.update(a=np.array(sessions).T, m=m)
        return out
    return simulate(models, w, l0, m, sched, regime, draws, trace)


causal._simulate_summary = capture
if "--binomial" in sys.argv:
    fit_summary = causal._fit_summary

    def binomial(designs, counts, start=None):
        models = fit_summary(designs, counts, start)
        return models | {"sigma": 0 * models["sigma"]} if "sigma" in models else models

    causal._fit_summary = binomial
cfg = scenario_config("optimistic", encouragement_share=0.5, **REGISTRY, **extra)
cohort = pt.simulate_cohort(n, seed=seed, config=cfg)
truths = {e["term"]: e["value"] for e in cohort.truth["effects"]}
summary = pt.patient_summary(cohort)
long, final = weekly_history(cohort)
base = summary[["patient_id", "age", "arm"]].assign(
    encouraged=lambda f: (f["arm"] == "encouraged").astype(float)
)
long = long.merge(base[["patient_id", "age", "encouraged"]], on="patient_id")
fit = causal.gformula(
    long,
    outcome_data=final,
    baseline=["age", "encouraged"],
    **WEEKLY_GFORMULA,
    regimes=("natural", *(term.split(" vs ")[0] for term in REGIMES), "never"),
    contrasts=[tuple(term.split(" vs ")) for term in REGIMES],
    n_sim=40_000,
    bootstrap=10,
    seed=seed,
).table.set_index("term")
print(
    f"{n} patients, seed {seed}, {'nobody leaving' if extra else 'with dropout'}"
    + (", binomial treatment model" if "--binomial" in sys.argv else "")
)
for term, (truth_term, _) in REGIMES.items():
    est, truth = float(fit.loc[term, "estimate"]), truths[truth_term]
    print(f"{term:32s} estimate {est:+.3f}  truth {truth:+.3f}  bias {est - truth:+.3f}")
a = long.pivot(index="patient_id", columns="week", values="sessions_completed").to_numpy()
m = long.pivot(index="patient_id", columns="week", values="sessions_prescribed").to_numpy()
sim_a, sim_m = natural["a"], natural["m"]
with np.errstate(invalid="ignore"):
    rate, sim_rate = (
        np.nansum(a, 1) / np.nansum(np.where(np.isnan(a), np.nan, m), 1),
        (sim_a.sum(1) / sim_m.sum(1)),
    )
print(
    f"SD of the final share done: data {np.nanstd(rate):.3f}, natural course {sim_rate.std():.3f}"
)
print(
    f"variance of week 0's share: data {np.nanvar(a[:, 0] / m[:, 0]):.3f}, natural course "
    f"{np.var(sim_a[:, 0] / sim_m[:, 0]):.3f}"
)
seen = ~np.isnan(a[:, 10])
print(
    f"correlation of week 0's and week 10's sessions: data "
    f"{np.corrcoef(a[seen, 0], a[seen, 10])[0, 1]:.2f}, natural course "
    f"{np.corrcoef(sim_a[:, 0], sim_a[:, 10])[0, 1]:.2f}"
)
