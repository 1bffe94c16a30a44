"""Models: known answers on constructed data, and behaviour on simulated cohorts."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import ptanalytics as pt
from ptanalytics.metrics.composition import ilr, replace_zeros
from ptanalytics.models import outcomes as om
from ptanalytics.models._result import ModelResult
from ptanalytics.models.trajectory import (
    fit_pain_model,
    pain_model_frame,
    predicted_trajectories,
)
from ptanalytics.plotting import (
    plot_dose_response,
    plot_substitutions,
    plot_terms,
    plot_trajectories,
)
from ptanalytics.studies.recovery import recovery


@pytest.fixture(scope="module")
def default():
    cohort = pt.load_cohort(pt.__file__.rsplit("/src/", 1)[0] + "/data/synthetic/default")
    return cohort, pt.patient_summary(cohort)


# ------------------------------------------------------------------------------ mixed model
def test_lmm_recovers_a_known_mixed_model(rng):
    """Data drawn from the model itself: estimates within 3 SE of the truth."""
    n, t = 400, 8
    pid = np.repeat(np.arange(n), t)
    week = np.tile(np.arange(t), n).astype(float)
    between = np.repeat(rng.normal(0, 1, n), t)
    b0 = np.repeat(rng.normal(0, 1.2, n), t)
    b1 = np.repeat(rng.normal(0, 0.3, n), t)
    co = (rng.random(n * t) < 0.2).astype(float)
    months = week / 4
    y = (
        6
        + (-0.8 + b1) * months
        - 0.1 * between * months
        - 0.5 * co
        + b0
        + rng.normal(0, 0.9, n * t)
    )
    frame = pd.DataFrame(
        {
            "patient_id": pid.astype(str),
            "nprs": y,
            "months_guided": months,
            "adherence_between": between,
            "co_massage": co,
            "constant": 1.0,
        }
    )
    m = fit_pain_model(
        frame,
        formula="nprs ~ months_guided + adherence_between:months_guided + co_massage + constant",
        re_formula="~ months_guided",
    )
    assert m.converged
    assert "term constant dropped: it does not vary in this cohort" in m.notes
    assert m.formula == "nprs ~ months_guided + adherence_between:months_guided + co_massage"
    assert m.n == n
    # Not a pain_model_frame: no trajectories to draw, and the error says what to do instead.
    with pytest.raises(pt.ConfigError, match="plot_terms"):
        m.figure()
    assert isinstance(plot_terms(m.table), Figure)
    fe = m.table.set_index("term")
    for term, truth in {
        "months_guided": -0.8,
        "adherence_between:months_guided": -0.1,
        "co_massage": -0.5,
        "Intercept": 6.0,
    }.items():
        assert abs(fe.loc[term, "estimate"] - truth) < 3 * fe.loc[term, "std_error"], term
    var = m.variance.set_index("component")["estimate"]
    assert var["residual_sd"] == pytest.approx(0.9, abs=0.05)
    assert var["sd(Intercept)"] == pytest.approx(1.2, abs=0.15)


def test_pain_model_on_the_default_cohort(default):
    cohort, _ = default
    m = fit_pain_model(pain_model_frame(cohort))
    assert m.converged
    assert isinstance(m, ModelResult) and m.n == m.frame["patient_id"].nunique()
    # The only note: patients with no exercise time (no mix) left out, and counted.
    assert [n for n in m.notes if "with no exercise time" not in n] == []
    assert m.frame.attrs["n_no_exercise_time"] >= 0
    assert list(m.table.columns) == [
        "term",
        "estimate",
        "std_error",
        "ci_low",
        "ci_high",
        "p_value",
        "model",
    ]
    fe = m.table.set_index("term")
    # Adherent patients improve faster in the guided phase (an association).
    assert fe.loc["adherence_between:months_guided", "ci_high"] < 0
    # The co-intervention effects are the simulator's within 95% intervals.
    truth = {e["term"]: e["value"] for e in cohort.truth["effects"]}
    for kind in ("heat_cold", "analgesic", "epidural_injection"):
        r = fe.loc[f"co_{kind}"]
        assert r["ci_low"] <= truth[f"cointervention[{kind}]"] <= r["ci_high"]
    pred = predicted_trajectories(m)
    last = pred[pred["week"] == 26].set_index("attendance_band")["estimate"]
    assert last["high"] < last["medium"] < last["low"]
    assert isinstance(plot_trajectories(pred), Figure)
    assert isinstance(m.figure(), Figure)
    # alpha: the model's by default; the point estimates do not depend on it.
    wide = predicted_trajectories(m, alpha=0.5)
    assert (wide["ci_high"] <= pred["ci_high"]).all()
    pd.testing.assert_series_equal(wide["estimate"], pred["estimate"])


def test_pain_model_takes_the_frame_not_the_cohort(default):
    cohort, _ = default
    with pytest.raises(pt.ConfigError, match=r"Fix: fit_pain_model\(pain_model_frame\(cohort\)\)"):
        fit_pain_model(cohort)
    with pytest.raises(pt.ConfigError, match="alpha=0; allowed"):
        fit_pain_model(pain_model_frame(cohort), alpha=0)


def test_outcomes_only_cohort_cannot_fit_the_trajectory_model():
    patients = pd.DataFrame({"patient_id": ["A"], "enrolled_on": [pd.Timestamp("2024-01-01")]})
    with pytest.raises(pt.ConfigError, match="needs sessions and prescriptions"):
        pain_model_frame(pt.Cohort(patients=patients))


def test_unknown_engine_is_refused(default):
    cohort, _ = default
    frame = pain_model_frame(cohort)
    with pytest.raises(pt.ConfigError, match="engine='lme4'; allowed: 'fast', 'statsmodels'"):
        fit_pain_model(frame, engine="lme4")


# ------------------------------------------------------------------------------ patient level
def _summary(rng, n=500):
    adh = rng.uniform(0, 1, n)
    base = rng.integers(3, 10, n).astype(float)
    return pd.DataFrame(
        {
            "patient_id": np.arange(n).astype(str),
            "adherence_guided": adh,
            "adherence": adh,
            "nprs_baseline": base,
            "age": rng.integers(20, 80, n),
            "sex": rng.choice(["female", "male"], n),
            "chronicity": rng.choice(["acute", "chronic"], n),
        }
    )


def test_dose_response_known_linear_slope(rng):
    s = _summary(rng)
    s["nprs_change_end_guided"] = -0.3 * 10 * s["adherence"] + rng.normal(0, 0.5, len(s))
    dr = om.dose_response(s)
    lin = dr.linear.iloc[0]
    assert lin["ci_low"] < -0.3 < lin["ci_high"]
    assert dr.curve.loc[0, "estimate"] == 0
    assert dr.curve["estimate"].iloc[-1] == pytest.approx(
        -3 * dr.curve["adherence"].iloc[-1], abs=0.4
    )
    assert isinstance(plot_dose_response(dr), Figure)
    assert isinstance(dr.figure(), Figure) and isinstance(dr, ModelResult)


def test_substitution_equals_the_coefficient_times_the_ilr_shift(rng):
    n = 300
    shares = pd.DataFrame(
        rng.dirichlet(np.ones(5), n), columns=[f"share_{c}" for c in pt.CATEGORIES]
    )
    s = pd.concat([_summary(rng, n), shares], axis=1)
    z = ilr(replace_zeros(shares))
    s["nprs_change_end_guided"] = 1.5 * z["ilr_1"] - 0.5 * z["ilr_4"]  # no noise: exact fit
    sub = om.category_substitution(s, pairs=[("flexibility", "core_strengthening")], covariates=())
    moved = shares[shares["share_flexibility"] >= 0.1].copy()
    delta = 0.65 * shares.to_numpy().min()
    before = ilr(replace_zeros(moved, delta=delta))
    moved["share_flexibility"] -= 0.1
    moved["share_core_strengthening"] += 0.1
    after = ilr(replace_zeros(moved, delta=delta))
    expect = 1.5 * (after["ilr_1"] - before["ilr_1"]) - 0.5 * (after["ilr_4"] - before["ilr_4"])
    assert isinstance(sub, ModelResult) and sub.n == n and sub.n_no_exercise_time == 0
    t = sub.table
    assert t.loc[0, "estimate"] == pytest.approx(expect.mean(), abs=1e-8)
    assert t.loc[0, "n_patients"] == len(moved)
    assert isinstance(plot_substitutions(sub), Figure)
    assert isinstance(plot_substitutions(sub.table), Figure)
    assert isinstance(sub.figure(), Figure)


def test_program_length_known_difference(rng):
    s = _summary(rng, 400)
    s["guided_weeks"] = rng.choice([6, 8, 10, 12], len(s))
    s["guided_weeks_actual"] = s["guided_weeks"]
    s["nprs_change_followup"] = np.where(s["guided_weeks"] == 12, -0.5, 0.0) + rng.normal(
        0, 0.01, len(s)
    )
    res = om.program_length(s)
    assert isinstance(res, ModelResult) and res.n == 400 and res.reference == 8 and not res.notes
    t = res.table.set_index("term")
    assert t.loc["C(guided_weeks)[T.12]", "estimate"] == pytest.approx(-0.5, abs=0.01)
    assert t.loc["C(guided_weeks)[T.6]", "estimate"] == pytest.approx(0, abs=0.01)
    lengths = res.planned_vs_actual
    assert lengths["n"].sum() == 400 and (lengths["extended"] == 0).all()
    assert isinstance(res.figure(), Figure)
    other = om.program_length(s, reference=7)
    assert other.reference == 6 and "reference length 7" in other.notes[0]


def test_responder_logistic_known_odds_ratio(rng):
    s = _summary(rng, 3000)
    logit = -1.0 + np.log(1.5) * 10 * s["adherence"]
    responder = rng.random(len(s)) < 1 / (1 + np.exp(-logit))
    s["nprs_followup"] = np.where(responder, s["nprs_baseline"] - 3, s["nprs_baseline"])
    res = om.responder_logistic(s, covariates=())
    assert isinstance(res, ModelResult) and res.n == len(s) and res.notes == []
    r = res.table.set_index("term").loc["adherence (per 10 points)"]
    assert r["ci_low"] < 1.5 < r["ci_high"] and r["scale"] == "odds ratio"
    assert isinstance(res.figure(), Figure)
    # The definition is flag_responders' keywords: a custom one gives the same rows here.
    custom = om.responder_logistic(s, covariates=(), preset="custom", points=3)
    assert custom.table.loc[1, "definition"] == "NPRS improvement >= 3 points"
    assert custom.table.loc[1, "estimate"] == pytest.approx(r["estimate"], rel=1e-12)
    with pytest.raises(pt.ConfigError, match="completers only"):
        om.responder_logistic(s, analysis="itt")


def test_responder_models_on_the_default_cohort(default):
    cohort, summary = default
    logistic = om.responder_logistic(summary)
    lg = logistic.table.set_index("term").loc["adherence (per 10 points)"]
    assert lg["ci_low"] > 1
    assert logistic.n == lg["n"] and "left out" in logistic.notes[0]
    res = om.responder_gee(pain_model_frame(cohort, summary=summary))
    gee = res.table.set_index("term")
    assert gee.loc["adherence (per 10 points)", "ci_low"] > 1
    assert gee["n_patients"].iloc[0] > 250 and res.n == gee["n_patients"].iloc[0]


def test_recovery_small_run():
    summary, fits = recovery(150, 2, seed=3, progress=False)
    assert set(summary["term"]) >= {"cointervention[analgesic]", "residual_sd"}
    assert (summary["replications"] == 2).all()
    assert list(summary.columns) == [
        "term",
        "truth",
        "mean_estimate",
        "bias",
        "relative_bias",
        "empirical_se",
        "mean_model_se",
        "coverage",
        "replications",
        "converged",
    ]
    assert len(fits) == 16
