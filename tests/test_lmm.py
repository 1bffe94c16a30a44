"""The fast mixed-model engine (ptanalytics.models.lmm) against lme4, statsmodels and itself.

Agreement targets (issue 7): fixed effects to >= 6 significant digits, variance components to
>= 4, REML/ML log-likelihood within 1e-4 of lme4 and of statsmodels, on balanced data, unbalanced
data with dropout, data with single-observation groups, and a variance at the boundary.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from ptanalytics.exceptions import ConfigError
from ptanalytics.models import lmm
from ptanalytics.studies import lme4 as lc

FORMULA, RE, LME4 = "y ~ t + x", "~ t", "y ~ t + x + (1 + t | g)"
CASES = [(kind, reml) for kind in lc.SCENARIOS for reml in (True, False)]
LME4_OK, LME4_WHY = lc.lme4_available()


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    return {kind: lc.scenario_data(kind, 300, 10, seed=7) for kind in lc.SCENARIOS}


@pytest.fixture(scope="module")
def fast(data) -> dict:
    return {
        (k, r): lmm.fit_lmm(data[k], FORMULA, group="g", re_formula=RE, reml=r) for k, r in CASES
    }


def _statsmodels(frame: pd.DataFrame, reml: bool):
    """statsmodels MixedLM, best of its optimisers (bfgs alone often stops short here)."""
    model = smf.mixedlm(FORMULA, frame, groups=frame["g"], re_formula=RE)
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method, options in (
            (["bfgs"], {"gtol": 1e-7, "maxiter": 1000}),
            (["lbfgs"], {}),
            (["powell", "lbfgs"], {}),
        ):
            res = model.fit(reml=reml, method=method, **options)
            if best is None or res.llf > best.llf:
                best = res
    return best


def test_scenarios_have_the_intended_shape(data):
    sizes = {k: d.groupby("g").size() for k, d in data.items()}
    assert (sizes["balanced"] == 10).all()
    assert sizes["dropout"].min() == 1 and sizes["dropout"].nunique() > 5
    assert 0.25 < (sizes["singletons"] == 1).mean() < 0.42
    assert lc.scenario_data("dropout", 50, 6, seed=3).equals(
        lc.scenario_data("dropout", 50, 6, seed=3)
    )


@pytest.mark.parametrize(("kind", "reml"), CASES)
def test_converges_with_small_gradient(fast, kind, reml):
    res = fast[(kind, reml)]
    assert res.converged, res.diagnostics
    assert res.diagnostics["projected_gradient_max"] < 1e-5
    assert res.singular == (kind == "boundary")
    if kind == "boundary":
        assert any("boundary" in n for n in res.notes)


@pytest.mark.skipif(not LME4_OK, reason=LME4_WHY)
@pytest.mark.parametrize(("kind", "reml"), CASES)
def test_agrees_with_lme4(data, fast, kind, reml):
    res = fast[(kind, reml)]
    ref = lc.fit_lme4(data[kind], LME4, reml=reml)
    fe = pd.Series(ref["fixed"]).set_axis(res.fe_params.index)
    se = pd.Series(ref["se"]).set_axis(res.fe_params.index)
    c = lc.compare(
        res.fe_params,
        fe,
        se,
        res.cov_re.to_numpy(),
        np.sqrt(res.scale),
        ref["cov_re"],
        ref["residual_sd"],
        res.llf,
        ref["loglik"],
    )
    assert c["fixed_digits"] >= 6, c
    assert c["variance_digits"] >= 4, c
    assert abs(c["loglik_diff"]) <= 1e-4, c
    # Standard errors are lme4's vcov: sigma^2 (X'V^-1 X)^-1.
    np.testing.assert_allclose(res.bse_fe.to_numpy(), se.to_numpy(), rtol=1e-5)
    assert res.singular == ref["singular"]
    if not res.singular:
        assert c["correlation_max_diff"] < 1e-4


@pytest.mark.parametrize(("kind", "reml"), CASES)
def test_agrees_with_statsmodels(data, fast, kind, reml):
    res = fast[(kind, reml)]
    sm = _statsmodels(data[kind], reml)
    c = lc.compare(
        res.fe_params,
        sm.fe_params,
        sm.bse_fe,
        res.cov_re.to_numpy(),
        np.sqrt(res.scale),
        sm.cov_re.to_numpy(),
        np.sqrt(sm.scale),
        res.llf,
        sm.llf,
    )
    assert abs(c["loglik_diff"]) <= 1e-4, c
    assert c["loglik_diff"] >= -1e-8, "statsmodels found a higher likelihood"
    assert c["fixed_digits"] >= 6 - 0.01, c
    if kind == "boundary":
        # statsmodels stops a little short of the boundary (its log-likelihood is lower, see the
        # assertion above); the criteria themselves agree (next test).
        assert c["variance_digits"] >= 3, c
    else:
        assert c["variance_digits"] >= 4, c
        blup_sm = pd.DataFrame(sm.random_effects).T.loc[res.random_effects.index]
        np.testing.assert_allclose(
            res.random_effects.to_numpy(), blup_sm.to_numpy(), rtol=0, atol=1e-4
        )


@pytest.mark.parametrize("reml", [True, False])
def test_same_criterion_as_statsmodels(data, fast, reml):
    """statsmodels' log-likelihood function at our estimates equals our log-likelihood."""
    from statsmodels.regression.mixed_linear_model import MixedLMParams

    # Not at the boundary: statsmodels' likelihood inverts cov_re, which is singular there.
    for kind in ("balanced", "dropout", "singletons"):
        res = fast[(kind, reml)]
        frame = data[kind]
        model = smf.mixedlm(FORMULA, frame, groups=frame["g"], re_formula=RE)
        # What MixedLM.fit sets before it evaluates the likelihood (no penalties).
        model.reml, model.fe_pen, model.cov_pen, model._cov_sing = reml, None, None, 0
        params = MixedLMParams.from_components(
            fe_params=res.fe_params.to_numpy(), cov_re=res.cov_re.to_numpy() / res.scale
        )
        assert model.loglike(params, profile_fe=False) == pytest.approx(res.llf, abs=1e-7)


def test_gradient_is_the_derivative(data):
    frame = data["dropout"]
    y, xd, zd, codes, _ = lmm.lmm_design(frame, FORMULA, group="g", re_formula=RE)
    prob = lmm._Problem(y, xd.to_numpy(), zd.to_numpy(), codes, int(codes.max()) + 1)
    theta = np.array([0.9, -0.2, 0.5])
    for reml in (True, False):
        grad = prob.gradient_from(prob.state(theta), reml)
        h = 1e-6
        fd = [
            (prob.deviance(theta + h * e, reml) - prob.deviance(theta - h * e, reml)) / (2 * h)
            for e in np.eye(3)
        ]
        np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-5)


def test_random_intercept_only_and_three_random_effects():
    frame = lc.scenario_data("balanced", 120, 8, seed=11)
    frame["t2"] = frame["t"] ** 2
    one = lmm.fit_lmm(frame, "y ~ t", group="g")
    assert one.cov_re.shape == (1, 1) and one.converged
    sm = smf.mixedlm("y ~ t", frame, groups=frame["g"]).fit(reml=True)
    assert one.llf == pytest.approx(sm.llf, abs=1e-6)
    np.testing.assert_allclose(one.fe_params, sm.fe_params, rtol=1e-6)
    three = lmm.fit_lmm(frame, "y ~ t + t2", group="g", re_formula="~ t + t2")
    assert three.cov_re.shape == (3, 3)
    assert three.diagnostics["projected_gradient_max"] < 1e-5


def test_predictions_blups_and_fitted_values(data, fast):
    frame = data["dropout"]
    res = fast[("dropout", True)]
    pred = res.predict(frame)
    np.testing.assert_allclose(pred, res.fittedvalues, atol=1e-10)
    np.testing.assert_allclose(res.resid, frame["y"].to_numpy() - pred, atol=1e-10)
    population = res.predict(frame, include_random=False)
    x = np.column_stack([np.ones(len(frame)), frame["t"], frame["x"]])
    np.testing.assert_allclose(population, x @ res.fe_params.to_numpy(), atol=1e-10)
    new = pd.DataFrame({"g": ["unseen"], "t": [1.0], "x": [0.0]})
    assert res.predict(new)[0] == pytest.approx(res.predict(new, include_random=False)[0])
    # Conditional covariances are symmetric positive semi-definite, one per group.
    cov = res.random_effects_cov
    assert cov.shape == (res.n_groups, 2, 2)
    assert np.all(np.linalg.eigvalsh(cov) > -1e-12)
    t = res.table
    assert list(t["term"]) == ["Intercept", "t", "x"]
    np.testing.assert_allclose(t["std_error"], res.bse_fe)
    np.testing.assert_allclose(t["ci_high"] - t["estimate"], 1.959964 * res.bse_fe, rtol=1e-6)
    vc = res.variance_components()
    assert list(vc["component"]) == ["sd(Intercept)", "sd(t)", "cor(Intercept,t)", "residual_sd"]


def test_result_protocol_table_n_notes_figure(data, fast):
    """LMMResult is a model result: table at the fitted alpha, n = groups, figure = forest plot."""
    from matplotlib.figure import Figure

    from ptanalytics.models._result import ModelResult

    frame = data["dropout"]
    res = fast[("dropout", True)]
    assert isinstance(res, ModelResult)
    assert res.n == res.n_groups == frame["g"].nunique() and res.nobs == len(frame)
    assert isinstance(res.figure(), Figure)
    wide = lmm.fit_lmm(frame, FORMULA, group="g", re_formula=RE, alpha=0.1)
    assert wide.alpha == 0.1
    np.testing.assert_allclose(wide.fe_params, res.fe_params, rtol=0, atol=0)
    z90 = 1.6448536269514722
    np.testing.assert_allclose(wide.table["ci_high"] - wide.table["estimate"], z90 * wide.bse_fe)
    # conf_int: the fitted level by default, any other on request.
    np.testing.assert_allclose(wide.conf_int()[1], wide.table["ci_high"].to_numpy())
    np.testing.assert_allclose(wide.conf_int(0.05)[1], res.table["ci_high"].to_numpy())
    with pytest.raises(ConfigError, match=r"alpha=1\.5; allowed"):
        lmm.fit_lmm(frame, FORMULA, group="g", re_formula=RE, alpha=1.5)


def test_same_input_same_output_and_row_order_does_not_matter(data):
    frame = data["singletons"]
    a = lmm.fit_lmm(frame, FORMULA, group="g", re_formula=RE)
    b = lmm.fit_lmm(frame, FORMULA, group="g", re_formula=RE)
    assert a.llf == b.llf and a.fe_params.equals(b.fe_params)
    shuffled = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    c = lmm.fit_lmm(shuffled, FORMULA, group="g", re_formula=RE)
    assert c.llf == pytest.approx(a.llf, abs=1e-8)
    np.testing.assert_allclose(c.fe_params, a.fe_params, rtol=1e-7)
    pd.testing.assert_frame_equal(c.random_effects, a.random_effects, atol=1e-6, rtol=0)


def test_bad_input_is_refused_with_the_fix(data):
    frame = data["balanced"].copy()
    with pytest.raises(ConfigError, match="grouping column 'patient'"):
        lmm.fit_lmm(frame, FORMULA, group="patient", re_formula=RE)
    bad = frame.copy()
    bad.loc[3, "x"] = np.nan
    with pytest.raises(ConfigError, match="missing values"):
        lmm.fit_lmm(bad, FORMULA, group="g", re_formula=RE)
    bad = frame.copy()
    bad.loc[5, "g"] = None
    with pytest.raises(ConfigError, match="row 5"):
        lmm.fit_lmm(bad, FORMULA, group="g", re_formula=RE)
    frame["x2"] = 2 * frame["x"]
    with pytest.raises(ConfigError, match="rank deficient"):
        lmm.fit_lmm(frame, "y ~ t + x + x2", group="g", re_formula=RE)
    with pytest.raises(ConfigError, match="theta0 must have 3"):
        lmm.fit_lmm(frame, FORMULA, group="g", re_formula=RE, theta0=[1.0])
    with pytest.raises(ConfigError, match="Fix: pass the data first"):
        lmm.fit_lmm(FORMULA, frame, group="g")


def test_array_interface_equals_the_formula_interface(data, fast):
    frame = data["dropout"]
    codes, _ = pd.factorize(frame["g"], sort=True)
    x = np.column_stack([np.ones(len(frame)), frame["t"], frame["x"]])
    res = lmm.fit_lmm_arrays(frame["y"].to_numpy(), x, x[:, :2], codes)
    ref = fast[("dropout", True)]
    assert res.llf == pytest.approx(ref.llf, abs=1e-9)
    np.testing.assert_allclose(res.fe_params.to_numpy(), ref.fe_params.to_numpy(), rtol=1e-9)
    assert list(res.fe_params.index) == ["x0", "x1", "x2"]
    with pytest.raises(ConfigError, match="same number of rows"):
        lmm.fit_lmm_arrays(frame["y"].to_numpy()[:-1], x, x[:, :2], codes)


def test_text_columns_give_patsys_own_design():
    """Text columns are coded as categoricals with sorted levels: the same matrices as patsy's
    own coding of the strings (levels in sorted order, not order of appearance)."""
    from patsy import dmatrices

    data = pd.DataFrame(
        {
            "y": [1.0, 2.0, 0.5, 3.0, 2.5, 1.5],
            "t": [0.0, 1.0, 0.0, 1.0, 0.0, 1.0],
            "sex": pd.Series(["m", "f", "m", "x", "f", "x"], dtype="string"),
            "site": ["b", "b", "a", "a", "c", "c"],
            "patient_id": ["p1", "p1", "p2", "p2", "p3", "p3"],
        }
    )
    y, x, z, codes, _ = lmm.lmm_design(data, "y ~ t + sex + site", group="patient_id")
    assert y.tolist() == data["y"].tolist() and z.shape == (6, 1)
    _, expected = dmatrices("y ~ t + sex + site", data.astype({"sex": object}), NA_action="raise")
    assert list(x.columns) == [
        "Intercept", "sex[T.m]", "sex[T.x]", "site[T.b]", "site[T.c]", "t"
    ]  # fmt: skip
    np.testing.assert_array_equal(x.to_numpy(), np.asarray(expected))
    assert x["sex[T.x]"].tolist() == [0, 0, 0, 1, 0, 1]
    assert codes.tolist() == [0, 0, 1, 1, 2, 2]
    assert data["sex"].dtype == "string"  # the caller's frame is not changed


def test_categoricals_inside_c_give_patsys_own_design():
    """``C(x)``, ``C(x, Treatment(...))`` and ``C(x, levels=...)`` of a text column: the same
    matrices and names as patsy's own coding (a categorical inside ``C()`` is coded from its
    codes, not by patsy's loop over the rows)."""
    from patsy import dmatrices

    rng = np.random.default_rng(3)
    n = 60
    data = pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "t": np.tile([0.0, 1.0, 2.0], n // 3),
            "sex": pd.Series(rng.choice(["f", "m"], size=n), dtype="string"),
            "band": rng.choice(["low", "medium", "high"], size=n),
            "weeks": rng.choice([6, 8, 12], size=n),
            "patient_id": np.repeat([f"p{i}" for i in range(n // 3)], 3),
        }
    )
    plain = data.astype({"sex": object})
    for formula in (
        "y ~ t + C(sex) + C(band)",
        "y ~ C(sex, Treatment('m')) + C(band, levels=['low', 'medium', 'high']) + C(weeks)",
        "y ~ t * C(band)",
    ):
        _, x, _, _, _ = lmm.lmm_design(data, formula, group="patient_id")
        _, expected = dmatrices(formula, plain, NA_action="raise", return_type="dataframe")
        assert list(x.columns) == list(expected.columns), formula
        np.testing.assert_array_equal(x.to_numpy(), expected.to_numpy())


def test_large_fits_start_from_a_sample_and_reach_the_same_optimum(monkeypatch):
    """Above WARM_START_GROUPS groups the fit starts from a systematic sample's fit and takes
    Newton steps with the sample's Hessian scaled to the data: the same optimum as the plain
    path (L-BFGS-B from the identity and the polish), to the criterion's rounding."""
    data = lc.scenario_data("dropout", 3000, 6, seed=11)
    monkeypatch.setattr(lmm, "WARM_START_GROUPS", 1000)
    monkeypatch.setattr(lmm, "WARM_START_SAMPLE", 600)
    warm = lmm.fit_lmm(data, FORMULA, group="g", re_formula=RE)
    monkeypatch.setattr(lmm, "WARM_START_GROUPS", 10**9)
    plain = lmm.fit_lmm(data, FORMULA, group="g", re_formula=RE)
    assert warm.diagnostics["warm_start"]["groups"] == 600
    assert warm.diagnostics["warm_start"]["scaled_newton_steps"] >= 1
    assert plain.diagnostics["warm_start"] is None
    assert warm.converged and plain.converged
    assert warm.diagnostics["evaluations"] < plain.diagnostics["evaluations"]
    assert abs(warm.llf - plain.llf) <= 1e-9 * abs(plain.llf)
    np.testing.assert_allclose(warm.fe_params, plain.fe_params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(warm.theta, plain.theta, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(warm.bse_fe, plain.bse_fe, rtol=1e-6)


def test_a_large_fit_on_the_boundary_falls_back_to_the_plain_path(monkeypatch):
    """A sample whose fit has a variance at 0 gives no scaled Hessian: L-BFGS-B and the
    polish run as without a sample (from the sample's start)."""
    data = lc.scenario_data("balanced", 2000, 5, seed=5)
    data = data.assign(y=data["y"] - data.groupby("g")["y"].transform("mean") + data["t"])
    monkeypatch.setattr(lmm, "WARM_START_GROUPS", 1000)
    monkeypatch.setattr(lmm, "WARM_START_SAMPLE", 500)
    fit = lmm.fit_lmm(data, "y ~ t", group="g", re_formula="1")
    monkeypatch.setattr(lmm, "WARM_START_GROUPS", 10**9)
    plain = lmm.fit_lmm(data, "y ~ t", group="g", re_formula="1")
    assert fit.singular and plain.singular
    assert fit.diagnostics["optimizer"] == plain.diagnostics["optimizer"]
    assert fit.diagnostics["lbfgs_iterations"] >= 0
    assert abs(fit.llf - plain.llf) <= 1e-9 * abs(plain.llf)
    np.testing.assert_allclose(fit.fe_params, plain.fe_params, rtol=1e-7, atol=1e-9)
