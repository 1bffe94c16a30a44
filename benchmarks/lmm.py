"""Benchmark: the fast mixed-model engine against statsmodels' MixedLM and R's lme4.

Model: ``y ~ t + x + (1 + t | g)`` (random intercept and slope, unstructured covariance, REML) on
balanced data with a known truth (``ptanalytics.studies.lme4.scenario_data``), at 1,000 /
10,000 / 50,000 patients x 20 weekly scores and 200,000 x 26. Each engine fits in a fresh child
process (so each has its own peak memory); the time is the fit from the data frame (formula,
design, cross-products, optimisation, BLUPs), median of ``--repeats`` runs (one for large
sizes). lme4 is timed inside R around ``lmer()`` with its default settings (reading the CSV and
R's start-up excluded); its estimates for the agreement columns come from a separate fit with
tight bobyqa tolerances.

Usage:
    python benchmarks/lmm.py [--sizes 1000x20,10000x20,50000x20,200000x26]
                             [--statsmodels-max 50000] [--no-lme4] [--repeats 3]

Targets on the project's 2-core machine: 50,000 x 20 <= 1.5 s and >= 10x faster than lme4;
200,000 x 26 <= 8 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

from _harness import in_child, peak_mb, report

SEED = 2026
FORMULA, RE, LME4 = "y ~ t + x", "~ t", "y ~ t + x + (1 + t | g)"


def _data(groups: int, per: int):
    from ptanalytics.studies.lme4 import scenario_data

    return scenario_data("balanced", groups, per, seed=SEED)


def _summary(fe, cov, scale, llf) -> dict:
    import numpy as np

    return {
        "fixed": [float(v) for v in np.asarray(fe)],
        "cov_re": np.asarray(cov, dtype=float).tolist(),
        "sigma": float(np.sqrt(scale)),
        "llf": float(llf),
    }


def _child(engine: str, groups: int, per: int, repeats: int) -> None:
    data = _data(groups, per)
    base = peak_mb()
    times = []
    if engine == "fast":
        from ptanalytics.models.lmm import fit_lmm

        for _ in range(repeats):
            t0 = time.perf_counter()
            res = fit_lmm(data, FORMULA, group="g", re_formula=RE)
            times.append(time.perf_counter() - t0)
        out = _summary(res.fe_params, res.cov_re, res.scale, res.llf)
        out["se"] = res.bse_fe.tolist()
        out["converged"] = res.converged
        out["evaluations"] = res.diagnostics["evaluations"]
        out["optimise_s"] = res.diagnostics["seconds_optimise"]
    elif engine == "statsmodels":
        import statsmodels.formula.api as smf

        for _ in range(repeats):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = smf.mixedlm(FORMULA, data, groups=data["g"], re_formula=RE)
                res = model.fit(reml=True)  # statsmodels' defaults, as a user would run it
            times.append(time.perf_counter() - t0)
        out = _summary(res.fe_params, res.cov_re, res.scale, res.llf)
        out["converged"] = bool(res.converged)
    else:
        from ptanalytics.studies.lme4 import fit_lme4

        fit = fit_lme4(data, LME4, reml=True, repeats=repeats)
        times = [fit["seconds"]]
        out = _summary(list(fit["fixed"].values()), fit["cov_re"], fit["residual_sd"] ** 2, 0.0)
        out["llf"] = fit["loglik"]
        out["se"] = list(fit["se"].values())
        out["messages"] = [m for m in fit["messages"] if m != "Normal exit from bobyqa"]
        out["converged"] = not out["messages"]
    out.update(
        {"seconds": statistics.median(times), "peak_mb": peak_mb(), "data_mb": base, "n": len(data)}
    )
    report(out)


def _agreement(a: dict, b: dict) -> str:
    import numpy as np
    import pandas as pd

    from ptanalytics.studies.lme4 import compare

    fb = pd.Series(b["fixed"])
    se = pd.Series(b.get("se", a["se"]))
    c = compare(
        pd.Series(a["fixed"]),
        fb,
        se,
        np.array(a["cov_re"]),
        a["sigma"],
        np.array(b["cov_re"]),
        b["sigma"],
        a["llf"],
        b["llf"],
    )
    return (
        f"fixed {c['fixed_digits']:.1f} d, SDs {c['variance_digits']:.1f} d, "
        f"dlogLik {c['loglik_diff']:+.1e}"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        engine, groups, per, repeats = sys.argv[2:6]
        _child(engine, int(groups), int(per), int(repeats))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000x20,10000x20,50000x20,200000x26")
    ap.add_argument("--statsmodels-max", type=int, default=50_000)
    ap.add_argument("--no-lme4", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from ptanalytics.studies.lme4 import lme4_available

    have_r, why = lme4_available()
    if args.no_lme4:
        have_r, why = False, "--no-lme4"
    print(f"lme4: {why if not have_r else 'lme4 ' + why}")
    print(
        f"{'patients x scores':>18} {'rows':>10} {'fast s':>8} {'(opt s)':>8} {'fast MB':>8} "
        f"{'statsm. s':>10} {'ratio':>7} {'lme4 s':>8} {'ratio':>7}"
    )
    notes = []
    for size in args.sizes.split(","):
        groups, per = (int(v) for v in size.lower().split("x"))
        reps = args.repeats if groups <= 50_000 else 1
        fast = in_child(__file__, "fast", str(groups), str(per), str(reps))
        sm = lme = None
        if groups <= args.statsmodels_max:
            sm = in_child(__file__, "statsmodels", str(groups), str(per), "1")
        if have_r:
            lme = in_child(__file__, "lme4", str(groups), str(per), "1" if groups > 10_000 else "3")
        line = (
            f"{groups:>10,} x {per:>5} {fast['n']:>10,} {fast['seconds']:>8.2f} "
            f"{fast['optimise_s']:>8.2f} {fast['peak_mb']:>8.0f} "
        )
        line += (
            f"{sm['seconds']:>10.1f} {sm['seconds'] / fast['seconds']:>6.0f}x "
            if sm
            else f"{'skipped':>10} {'':>7} "
        )
        line += (
            f"{lme['seconds']:>8.2f} {lme['seconds'] / fast['seconds']:>6.1f}x"
            if lme
            else f"{'skipped':>8} {'':>7}"
        )
        print(line, flush=True)
        if sm:
            notes.append(f"  {size} vs statsmodels: {_agreement(fast, sm)}")
        if lme:
            notes.append(f"  {size} vs lme4:        {_agreement(fast, lme)}")
        if not fast["converged"]:
            notes.append(f"  {size}: the fast engine did NOT converge")
        if lme and lme["messages"]:
            notes.append(f"  {size}: lme4 says: {'; '.join(lme['messages'])}")
        if sm and not sm["converged"]:
            notes.append(f"  {size}: statsmodels did not converge (its defaults)")
    print("Agreement of the fast engine (significant digits; logLik difference):")
    print("\n".join(notes))
    if args.statsmodels_max < 200_000:
        print(f"statsmodels skipped above {args.statsmodels_max:,} patients (--statsmodels-max).")


if __name__ == "__main__":
    main()
