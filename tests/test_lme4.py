"""Cross-check of the pain-trajectory mixed model (statsmodels MixedLM, REML) against R's lme4.

For each cohort the model frame from :func:`pain_model_frame` is fitted with
:func:`fit_pain_model` and, through a CSV file, with ``lme4::lmer(..., REML = TRUE)`` by
``tests/lme4_fit.R`` (the same model transcribed by hand: same fixed effects and reference levels,
random part ``(1 + months_guided + months_maintenance | patient_id)``, bobyqa with tight
tolerances).

The REML log-likelihoods need no correction: both programs use the same profiled REML criterion,

    -2 l_R = log|V1| + log|X' V1^-1 X| + (n - p) * (1 + log(2 pi r2 / (n - p))),

with V1 = I + Z Psi Z' / sigma^2 the marginal covariance relative to the residual variance and
r2 = the generalised residual sum of squares: statsmodels ``MixedLM.loglike`` (its REML branch
adds -(n-p)/2 log(r2), -1/2 log|X'V1^-1 X|, -(n-p)/2 log(2 pi), +(n-p)/2 log(n-p) and -(n-p)/2
to -1/2 log|V1|) and lme4's profiled REML criterion (the ``lmer`` vignette, "The REML criterion":
|L_theta|^2 = |V1| and |R_X|^2 = |X'V1^-1 X|). Neither adds the +1/2 log|X'X| term of Harville's
form (which nlme's REML log-likelihood has), so the constant between them is 0; this is checked
directly by evaluating statsmodels' log-likelihood function at lme4's estimates
(``test_reml_loglik_functions_identical``). It holds because the two fixed-effects design
matrices are identical (same columns, same treatment contrasts); log|X'V1^-1 X| changes with a
reparametrisation of X.

Skipped when Rscript or lme4 is missing (CI installs them in ``.ci/run``).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.regression.mixed_linear_model import MixedLMParams

import ptanalytics as pt
from ptanalytics.models.trajectory import PainModel, fit_pain_model, pain_model_frame
from ptanalytics.studies.lme4 import lme4_available

ROOT = Path(__file__).resolve().parents[1]
R_SCRIPT = ROOT / "tests" / "lme4_fit.R"

_LME4_OK, _LME4_WHY = lme4_available()
if not _LME4_OK:
    pytest.skip(
        f"{_LME4_WHY}: cannot cross-check the mixed model against lme4", allow_module_level=True
    )

# Tolerances (not to be loosened to hide an optimiser stopping early; see the module docstring).
# Fixed effects, >= 4 significant digits: |sm - lme4| <= 5e-5 * max(|lme4|, 1), i.e. a relative
# difference <= 5e-5, or an absolute one <= 5e-5 for estimates near 0 (|estimate| < 1, NPRS points
# per unit) where a relative difference is meaningless.
FIXED_TOL = 5e-5
# Random-effect SDs and the residual SD, >= 3 significant digits: relative difference <= 5e-4.
SD_RTOL = 5e-4
# Correlations of the random effects (bounded by 1, can be near 0): 3 decimals, absolute <= 5e-4.
COR_ATOL = 5e-4
# REML log-likelihoods of the two fits (no constant between them, see the module docstring).
LOGLIK_ATOL = 1e-3
# The two log-likelihood *functions* at the same parameters: agreement to rounding.
LOGLIK_FUNCTION_ATOL = 1e-6
# Standard errors of the fixed effects given the covariance parameters, sigma^2 (X'V1^-1 X)^-1,
# >= 3 significant digits.
SE_RTOL = 5e-4


def lme4_name(term: str) -> str:
    """The lme4 name of a statsmodels fixed-effect term.

    ``Intercept`` -> ``(Intercept)``; ``C(sex)[T.male]`` -> ``factor(sex)male``; R writes an
    interaction's variables in the order of their first appearance in the formula, so
    ``adherence_between:months_guided`` -> ``months_guided:adherence_between``.
    """
    if term == "Intercept":
        return "(Intercept)"
    m = re.fullmatch(r"C\((\w+)\)\[T\.(.+)\]", term)
    if m:
        return f"factor({m[1]}){m[2]}"
    explicit = {
        "adherence_between:months_guided": "months_guided:adherence_between",
        "adherence_between:months_maintenance": "months_maintenance:adherence_between",
    }
    return explicit.get(term, term)


def lme4_re_name(name: str) -> str:
    """The lme4 name of a random-effect name (statsmodels' ``Group``, our ``Intercept``)."""
    return "(Intercept)" if name in ("Group", "Intercept") else name


@dataclass
class Pair:
    label: str
    model: PainModel  # statsmodels engine
    r: dict
    fast: PainModel  # the default engine (ptanalytics.models.lmm)


# Seed 1: the first optimiser (lbfgs) of fit_pain_model fails there and bfgs takes over.
CASES = {
    "simulated-300-seed-3": lambda: pt.simulate_cohort(300, seed=3),
    "simulated-300-seed-1": lambda: pt.simulate_cohort(300, seed=1),
    "default": lambda: pt.load_cohort(ROOT / "data" / "synthetic" / "default"),
}


@pytest.fixture(scope="module", params=list(CASES))
def pair(request, tmp_path_factory) -> Pair:
    frame = pain_model_frame(CASES[request.param]())
    model = fit_pain_model(frame=frame, engine="statsmodels")
    assert model.converged, model.notes
    fast = fit_pain_model(frame=frame)
    assert fast.converged, fast.notes
    tmp = tmp_path_factory.mktemp(f"lme4-{request.param}")
    csv, out = tmp / "frame.csv", tmp / "lme4.json"
    frame.to_csv(csv, index=False)
    proc = subprocess.run(
        ["Rscript", str(R_SCRIPT), str(csv), str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"lme4_fit.R failed:\n{proc.stdout}\n{proc.stderr}"
    r = json.loads(out.read_text())
    assert r["optimizer_code"] == 0, r["messages"]
    return Pair(request.param, model, r, fast)


def _fixed(p: Pair) -> pd.DataFrame:
    fe = p.model.result.fe_params
    lme4 = pd.Series({t: p.r["fixed"][lme4_name(t)] for t in fe.index})
    diff = (fe - lme4).abs()
    return pd.DataFrame(
        {
            "statsmodels": fe,
            "lme4": lme4,
            "abs_diff": diff,
            "rel_diff": diff / lme4.abs(),
            "tol": FIXED_TOL * np.maximum(lme4.abs(), 1.0),
        }
    )


def _vname(name: str) -> str:
    """The name in PainModel.variance (statsmodels' ``Group`` is reported as ``Intercept``)."""
    return "Intercept" if name == "Group" else name


def _sds(p: Pair) -> pd.DataFrame:
    var = p.model.variance.set_index("component")["estimate"]
    rows = {}
    for name in p.model.result.cov_re.index:
        rows[f"sd({name})"] = (var[f"sd({_vname(name)})"], p.r["sd"][lme4_re_name(name)])
    rows["residual_sd"] = (var["residual_sd"], p.r["residual_sd"])
    t = pd.DataFrame.from_dict(rows, orient="index", columns=["statsmodels", "lme4"])
    t["rel_diff"] = (t["statsmodels"] - t["lme4"]).abs() / t["lme4"].abs()
    return t


def _cors(p: Pair) -> pd.DataFrame:
    var = p.model.variance.set_index("component")["estimate"]
    names = list(p.model.result.cov_re.index)
    rows = {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            key = f"cor({lme4_re_name(a)},{lme4_re_name(b)})"
            rows[f"cor({a},{b})"] = (var[f"cor({_vname(a)},{_vname(b)})"], p.r["cor"][key])
    t = pd.DataFrame.from_dict(rows, orient="index", columns=["statsmodels", "lme4"])
    t["abs_diff"] = (t["statsmodels"] - t["lme4"]).abs()
    return t


def _lme4_relative_cov(p: Pair) -> np.ndarray:
    """lme4's random-effects covariance / sigma^2, in statsmodels' order of the effects."""
    names = list(p.model.result.cov_re.index)
    order = [p.r["re_names"].index(lme4_re_name(n)) for n in names]
    cov = np.asarray(p.r["relative_cov_re"], dtype=float)
    return cov[np.ix_(order, order)]


def test_same_terms_and_data(pair):
    res = pair.model.result
    assert sorted(lme4_name(t) for t in res.fe_params.index) == sorted(pair.r["fixed"])
    assert pair.r["nobs"] == res.nobs
    assert pair.r["p"] == len(res.fe_params)
    assert [lme4_re_name(n) for n in res.cov_re.index] == pair.r["re_names"]


def test_fixed_effects(pair):
    t = _fixed(pair)
    worst = t["rel_diff"].idxmax()
    print(
        f"\n[{pair.label}] fixed effects: max rel diff {t['rel_diff'].max():.2e} "
        f"({worst} = {t.loc[worst, 'lme4']:.5f}), max abs diff {t['abs_diff'].max():.2e}"
    )
    bad = t["abs_diff"] > t["tol"]
    assert not bad.any(), f"[{pair.label}] fixed effects differ:\n{t.to_string()}"


def test_variance_components(pair):
    sds, cors = _sds(pair), _cors(pair)
    print(
        f"\n[{pair.label}] variance components: max rel diff of SDs (incl. residual) "
        f"{sds['rel_diff'].max():.2e}; max abs diff of correlations {cors['abs_diff'].max():.2e}"
    )
    assert (sds["rel_diff"] <= SD_RTOL).all(), f"[{pair.label}] SDs differ:\n{sds.to_string()}"
    assert (cors["abs_diff"] <= COR_ATOL).all(), (
        f"[{pair.label}] correlations differ:\n{cors.to_string()}"
    )


def test_reml_loglik(pair):
    sm = pair.model.result.llf
    lme4 = pair.r["loglik_reml"]
    assert pair.r["reml_criterion"] == pytest.approx(-2 * lme4, rel=1e-12)
    delta = sm - lme4
    ahead = "statsmodels" if delta > 0 else "lme4"
    print(
        f"\n[{pair.label}] REML logLik: statsmodels {sm:.8f}, lme4 {lme4:.8f}, "
        f"|dlogLik| {abs(delta):.2e} (constant 0; larger: {ahead})"
    )
    assert abs(delta) <= LOGLIK_ATOL, (
        f"[{pair.label}] REML log-likelihoods differ by {delta:.3e} "
        f"(statsmodels {sm:.6f}, lme4 {lme4:.6f}); the larger one is {ahead}'s: tighten the "
        "other optimiser"
    )


def test_reml_loglik_functions_identical(pair):
    """statsmodels' REML log-likelihood at lme4's estimates is lme4's: the constant is 0."""
    res = pair.model.result
    params = MixedLMParams.from_components(
        fe_params=res.fe_params.to_numpy(), cov_re=_lme4_relative_cov(pair)
    )
    at_lme4 = res.model.loglike(params, profile_fe=True)
    delta = at_lme4 - pair.r["loglik_reml"]
    print(f"\n[{pair.label}] statsmodels loglike(theta_lme4) - lme4 logLik = {delta:.2e}")
    assert abs(delta) <= LOGLIK_FUNCTION_ATOL


def test_standard_errors(pair):
    """Fixed-effect SEs given the covariance parameters agree with lme4's ``vcov``.

    lme4's SEs are sigma^2 (X'V1^-1 X)^-1 at its estimates; these are computed here at statsmodels'
    estimates. statsmodels' own ``bse_fe`` comes from the inverse of the full observed Hessian,
    whose fixed-effects/covariance-parameter block is not zero in a finite sample, so it is a
    little larger (printed, not asserted).
    """
    res = pair.model.result
    mod = res.model
    psi = res.cov_re.to_numpy() / res.scale
    xtvx = np.zeros((mod.k_fe, mod.k_fe))
    for x, z in zip(mod.exog_li, mod.exog_re_li, strict=True):
        v = np.eye(len(x)) + z @ psi @ z.T
        xtvx += x.T @ np.linalg.solve(v, x)
    se = pd.Series(np.sqrt(res.scale * np.diag(np.linalg.inv(xtvx))), index=res.fe_params.index)
    lme4 = pd.Series({t: pair.r["se"][lme4_name(t)] for t in se.index})
    t = pd.DataFrame(
        {"gls": se, "statsmodels_bse": res.bse_fe, "lme4": lme4, "rel_diff": (se / lme4 - 1).abs()}
    )
    hess_diff = (res.bse_fe / lme4 - 1).abs().max()
    print(
        f"\n[{pair.label}] SEs: max rel diff {t['rel_diff'].max():.2e} (sigma^2 (X'V^-1X)^-1); "
        f"statsmodels' Hessian-based bse_fe vs lme4: max rel diff {hess_diff:.2e}"
    )
    assert (t["rel_diff"] <= SE_RTOL).all(), f"[{pair.label}] SEs differ:\n{t.to_string()}"


def test_fast_engine_agrees_with_lme4(pair):
    """The default engine: fixed effects >= 6 significant digits (relative to max(|beta|, SE)),
    SDs >= 4 (relative to the SD, floor the residual SD), REML logLik within 1e-4, and standard
    errors = lme4's vcov."""
    from ptanalytics.studies.lme4 import compare

    res = pair.fast.result
    fe = pd.Series({t: pair.r["fixed"][lme4_name(t)] for t in res.fe_params.index})
    se = pd.Series({t: pair.r["se"][lme4_name(t)] for t in res.fe_params.index})
    names = [lme4_re_name(n) for n in res.cov_re.index]
    order = [pair.r["re_names"].index(n) for n in names]
    rel = np.asarray(pair.r["relative_cov_re"], dtype=float)[np.ix_(order, order)]
    sigma = pair.r["residual_sd"]
    c = compare(
        res.fe_params,
        fe,
        se,
        res.cov_re.to_numpy(),
        np.sqrt(res.scale),
        rel * sigma**2,
        sigma,
        res.llf,
        pair.r["loglik_reml"],
    )
    print(
        f"\n[{pair.label}] fast engine vs lme4: fixed {c['fixed_digits']:.1f} digits, "
        f"SDs {c['variance_digits']:.1f} digits, correlations {c['correlation_max_diff']:.1e}, "
        f"dlogLik {c['loglik_diff']:.1e}"
    )
    assert c["fixed_digits"] >= 6, c
    assert c["variance_digits"] >= 4, c
    assert c["correlation_max_diff"] <= 1e-4, c
    assert abs(c["loglik_diff"]) <= 1e-4, c
    np.testing.assert_allclose(res.bse_fe.to_numpy(), se.to_numpy(), rtol=1e-5)


def test_fast_engine_agrees_with_statsmodels(pair):
    """Same estimates from both engines of fit_pain_model (within the 1e-4 logLik target)."""
    a, b = pair.fast.result, pair.model.result
    assert abs(a.llf - b.llf) <= 1e-4
    assert a.llf >= b.llf - 1e-8
    scale = np.maximum(b.fe_params.abs(), b.bse_fe)
    assert ((a.fe_params - b.fe_params).abs() / scale).max() <= 1e-5
    va = pair.fast.variance.set_index("component")["estimate"]
    vb = pair.model.variance.set_index("component")["estimate"]
    pd.testing.assert_series_equal(va, vb, rtol=1e-3, atol=1e-4)
