"""Effects under assumptions (issue 15, first estimators): the complier effect by two-stage least
squares and the E-value.

* :func:`complier_effect` against R's ``AER::ivreg`` and ``sandwich::vcovHC`` (the R call beside
  each assert; >= 6 significant digits), against the Wald estimator it reduces to without
  covariates, and against a known effect in simulated encouragement designs with non-compliance
  (recovery and 95% coverage over replications, where the naive association misses);
* :func:`e_value` against the worked examples of VanderWeele & Ding (2017, Ann Intern Med
  167:268) and the formulas of their approximations.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from ptanalytics.exceptions import ConfigError
from ptanalytics.models import causal
from ptanalytics.models.causal import complier_effect, e_value

TRUE_EFFECT = -1.5  # NPRS points for completing the program, among compliers


def encouragement(n: int, seed: int, *, strength: float = 0.8, missing: bool = False):
    """A randomised encouragement ``z`` raises completion of the program (``took``); an
    unmeasured trait ``u`` makes patients both complete it and have more pain, so the naive
    comparison is confounded. The effect of completing is ``TRUE_EFFECT`` for everyone."""
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, n)
    u = rng.normal(size=n)
    age = rng.normal(45, 12, n).round()
    sex = rng.choice(["female", "male"], size=n)
    base = np.clip(np.round(6 + 0.8 * u + rng.normal(size=n)), 0, 10)
    took = ((strength * z + 0.6 * u + rng.normal(size=n)) > 0.4).astype(float)
    change = (
        TRUE_EFFECT * took + 1.0 * u - 0.3 * (base - 6) + 0.01 * (age - 45) + rng.normal(size=n)
    )
    d = pd.DataFrame(
        {
            "arm": np.where(z == 1, "encouraged", "usual"),
            "z": z,
            "took": took,
            "nprs_baseline": base,
            "age": age,
            "sex": sex,
            "nprs_change_followup": change,
        }
    )
    if missing:
        d.loc[d.index[::17], "nprs_change_followup"] = np.nan
        d.loc[d.index[5::23], "age"] = np.nan
    return d


# ------------------------------------------------------------------------------------ recovery
def test_recovers_the_complier_effect_where_the_association_misses():
    data = encouragement(40_000, seed=3)
    fit = complier_effect(
        data,
        outcome="nprs_change_followup",
        exposure="took",
        instrument="z",
        covariates=["nprs_baseline", "age", "C(sex)"],
    )
    row = fit.table.iloc[0]
    assert row["term"] == "took" and fit.n == 40_000 and not fit.weak
    assert abs(row["estimate"] - TRUE_EFFECT) < 3 * row["std_error"]
    assert row["std_error"] < 0.1
    naive = fit.naive.iloc[0]
    assert abs(naive["estimate"] - TRUE_EFFECT) > 10 * naive["std_error"]  # confounded by u
    assert fit.first_stage_f > 1000
    assert any("exclusion restriction" in n for n in fit.notes)
    assert any("first-stage F" in n for n in fit.notes)


def test_intervals_cover_the_true_effect_about_95_percent_of_the_time():
    """200 replications of 600 patients: coverage of the 95% interval in 0.92-0.98 and the mean
    estimate within 0.1 points of the truth (bias)."""
    hits, estimates = 0, []
    for seed in range(200):
        fit = complier_effect(
            encouragement(600, seed=1000 + seed),
            outcome="nprs_change_followup",
            exposure="took",
            instrument="z",
            covariates=["nprs_baseline"],
        )
        row = fit.table.iloc[0]
        hits += row["ci_low"] <= TRUE_EFFECT <= row["ci_high"]
        estimates.append(row["estimate"])
    assert 0.92 <= hits / 200 <= 0.98
    assert abs(np.mean(estimates) - TRUE_EFFECT) < 0.1


def test_without_covariates_it_is_the_wald_estimator():
    data = encouragement(3000, seed=4)
    fit = complier_effect(data, outcome="nprs_change_followup", exposure="took", instrument="z")
    by = data.groupby("z")[["nprs_change_followup", "took"]].mean()
    wald = (by.loc[1, "nprs_change_followup"] - by.loc[0, "nprs_change_followup"]) / (
        by.loc[1, "took"] - by.loc[0, "took"]
    )
    assert fit.table.loc[0, "estimate"] == pytest.approx(wald, rel=1e-12)
    # A text arm with its active level gives the same fit.
    text = complier_effect(
        data,
        outcome="nprs_change_followup",
        exposure="took",
        instrument="arm",
        instrument_level="encouraged",
    )
    assert text.table.loc[0, "estimate"] == pytest.approx(wald, rel=1e-12)


def test_a_weak_instrument_is_flagged():
    data = encouragement(400, seed=5, strength=0.05)
    fit = complier_effect(data, outcome="nprs_change_followup", exposure="took", instrument="z")
    assert fit.weak and fit.first_stage_f < causal.WEAK_F
    assert any(n.startswith("weak instrument") for n in fit.notes)


def test_missing_values_are_left_out_and_counted():
    data = encouragement(2000, seed=6, missing=True)
    fit = complier_effect(
        data,
        outcome="nprs_change_followup",
        exposure="took",
        instrument="z",
        covariates=["age"],
    )
    complete = data.dropna(subset=["nprs_change_followup", "age"])
    assert fit.n == len(complete)
    assert any(f"{len(data) - len(complete)} patient(s)" in n for n in fit.notes)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outcome": "nope"}, "outcome='nope' is not a column"),
        ({"instrument": "arm"}, "instrument_level"),
        ({"instrument": "arm", "instrument_level": "placebo"}, "instrument_level"),
        ({"exposure": "z"}, "three different columns"),
        ({"robust": "HC3"}, "robust"),
        ({"alpha": 1.5}, "alpha"),
    ],
)
def test_bad_input_is_refused_with_the_fix(kwargs, message):
    data = encouragement(200, seed=7)
    args = {"outcome": "nprs_change_followup", "exposure": "took", "instrument": "z"} | kwargs
    with pytest.raises(ConfigError, match=message):
        complier_effect(data, **args)


def test_an_instrument_with_one_value_is_refused():
    data = encouragement(200, seed=8).assign(z=1)
    with pytest.raises(ConfigError, match="one value"):
        complier_effect(data, outcome="nprs_change_followup", exposure="took", instrument="z")


# ---------------------------------------------------------------------------------- R: AER::ivreg
R_IVREG = r"""
suppressPackageStartupMessages({library(AER); library(sandwich)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
d$sex <- factor(d$sex)
f <- ivreg(nprs_change_followup ~ took + nprs_baseline + age + sex |
           z + nprs_baseline + age + sex, data = d)
s <- summary(f, diagnostics = TRUE)
out <- rbind(
  data.frame(key = "coef", term = names(coef(f)), value = unname(coef(f))),
  data.frame(key = "se_classical", term = names(coef(f)), value = sqrt(diag(vcov(f)))),
  data.frame(key = "se_hc1", term = names(coef(f)),
             value = sqrt(diag(vcovHC(f, type = "HC1")))),
  data.frame(key = "se_hc0", term = names(coef(f)),
             value = sqrt(diag(vcovHC(f, type = "HC0")))),
  data.frame(key = "weak_f", term = "took",
             value = s$diagnostics["Weak instruments", "statistic"]),
  data.frame(key = "n", term = "took", value = nobs(f)))
write.csv(out, args[2], row.names = FALSE)
"""


@pytest.fixture(scope="module")
def r_ivreg(tmp_path_factory):
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript not found: cannot compare with R")
    ok = subprocess.run(
        ["Rscript", "-e", "suppressPackageStartupMessages(library(AER))"], capture_output=True
    )
    if ok.returncode != 0:
        pytest.skip("R package AER missing (apt: r-cran-aer)")
    tmp = tmp_path_factory.mktemp("ivreg")
    data = encouragement(1500, seed=9, missing=True)
    data.to_csv(tmp / "d.csv", index=False)
    (tmp / "ivreg.R").write_text(R_IVREG)
    subprocess.run(
        ["Rscript", str(tmp / "ivreg.R"), str(tmp / "d.csv"), str(tmp / "out.csv")],
        check=True,
        capture_output=True,
    )
    ref = pd.read_csv(tmp / "out.csv")
    return data, {k: g.set_index("term")["value"] for k, g in ref.groupby("key")}


R_TERMS = {"took": "took", "Intercept": "(Intercept)", "nprs_baseline": "nprs_baseline",
           "age": "age", "C(sex)[T.male]": "sexmale"}  # fmt: skip


@pytest.mark.parametrize("robust", ["HC1", "HC0", None])
def test_agrees_with_r_aer_ivreg(r_ivreg, robust):
    data, ref = r_ivreg
    fit = complier_effect(
        data,
        outcome="nprs_change_followup",
        exposure="took",
        instrument="z",
        covariates=["nprs_baseline", "age", "C(sex)"],
        robust=robust,
    )
    table = fit.table.set_index("term")
    # R: nobs(ivreg(...)) (complete cases, as lm's na.omit)
    assert fit.n == int(ref["n"]["took"])
    # R: coef(ivreg(nprs_change_followup ~ took + nprs_baseline + age + sex |
    #               z + nprs_baseline + age + sex, data = d))
    for ours, theirs in R_TERMS.items():
        assert table.loc[ours, "estimate"] == pytest.approx(ref["coef"][theirs], rel=1e-8)
    # R: sqrt(diag(vcovHC(fit, type = "HC1" / "HC0"))) and sqrt(diag(vcov(fit)))
    key = {"HC1": "se_hc1", "HC0": "se_hc0", None: "se_classical"}[robust]
    for ours, theirs in R_TERMS.items():
        assert table.loc[ours, "std_error"] == pytest.approx(ref[key][theirs], rel=1e-7)
    # R: summary(fit, diagnostics = TRUE)$diagnostics["Weak instruments", "statistic"]
    assert fit.first_stage_f == pytest.approx(ref["weak_f"]["took"], rel=1e-8)


# ---------------------------------------------------------------------------------------- E-value
def test_e_value_reproduces_vanderweele_and_ding():
    # VanderWeele & Ding (2017): RR 3.9 (95% CI 1.8 to 8.7) -> E-value 7.26, for the CI 3.0.
    row = e_value(3.9, 1.8, 8.7).iloc[0]
    assert row["e_value"] == pytest.approx(3.9 + np.sqrt(3.9 * 2.9)) and round(
        row["e_value"], 2
    ) == pytest.approx(7.26)
    assert row["e_value_ci"] == pytest.approx(3.0)
    # Protective: the E-value of 1/RR, and of the upper limit.
    row = e_value(0.5, 0.3, 0.8).iloc[0]
    assert row["e_value"] == pytest.approx(2 + np.sqrt(2))
    assert row["e_value_ci"] == pytest.approx(1.25 + np.sqrt(1.25 * 0.25))
    # An interval that includes the null: 1.
    assert e_value(1.3, 0.9, 1.9).iloc[0]["e_value_ci"] == 1.0
    assert np.isnan(e_value(1.3).iloc[0]["e_value_ci"])


def test_e_value_scales():
    # A common outcome's OR 4 is a risk ratio of about sqrt(4) = 2.
    assert e_value(4.0, scale="OR").iloc[0]["risk_ratio"] == pytest.approx(2.0)
    # A rare outcome's OR and HR are used as they are.
    assert e_value(4.0, scale="OR", rare=True).iloc[0]["risk_ratio"] == 4.0
    assert e_value(2.0, scale="HR", rare=True).iloc[0]["risk_ratio"] == 2.0
    hr = (1 - 0.5 ** np.sqrt(2.0)) / (1 - 0.5 ** np.sqrt(0.5))
    assert e_value(2.0, scale="HR").iloc[0]["risk_ratio"] == pytest.approx(hr)
    # A standardised difference d: exp(0.91 d); -0.5 SD of pain is the mirror of +0.5.
    up, down = e_value(0.5, scale="SMD").iloc[0], e_value(-0.5, -0.7, 0.3, scale="SMD").iloc[0]
    assert up["risk_ratio"] == pytest.approx(np.exp(0.455))
    assert down["e_value"] == pytest.approx(up["e_value"])
    assert down["e_value_ci"] == 1.0  # the interval crosses 0


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((-1.0,), {}), ((np.inf,), {}), ((2.0, 3.0, 1.0), {}), ((2.0,), {"scale": "logRR"})],
)
def test_e_value_refuses_bad_input(args, kwargs):
    with pytest.raises(ConfigError):
        e_value(*args, **kwargs)


# --------------------------------------------------------------- marginal structural model (IPW)
PSI = -0.5  # NPRS points per adherent week, for every patient (the MSM's true parameter)


def feedback(n: int, seed: int, *, periods: int = 5, censor: bool = False, strength: float = 0.9):
    """Treatment-confounder feedback: an unmeasured trait ``u`` raises last week's pain ``l``
    and the final pain; more pain makes a patient adhere more this week (``a``); adhering lowers
    next week's pain. ``E[Y^a] = PSI * (adherent weeks) + 0.5 age`` exactly, so the MSM is
    correctly specified; a regression on adherence is confounded (through ``l`` and ``u``).
    With ``censor``, patients in more pain leave early (their outcome is missing)."""
    from scipy.special import expit

    rng = np.random.default_rng(seed)
    u, age = rng.normal(size=n), rng.normal(size=n)
    rows, a_prev, total, alive = [], np.zeros(n), np.zeros(n), np.ones(n, dtype=bool)
    for t in range(periods):
        pain = 0.8 * u - 0.6 * a_prev + rng.normal(size=n)
        a = (rng.random(n) < expit(-0.2 + strength * pain + 0.3 * age)).astype(float)
        left = np.zeros(n)
        if censor and t < periods - 1:
            left = (rng.random(n) < expit(-3 + 0.8 * pain)).astype(float) * alive
        rows.append(
            pd.DataFrame(
                {
                    "pid": np.arange(n)[alive],
                    "week": t,
                    "adhered": a[alive],
                    "pain_last": pain[alive],
                    "age": age[alive],
                    "left": left[alive],
                }
            )
        )
        total, a_prev, alive = total + a, a, alive & (left == 0)
    y = PSI * total + 1.5 * u + 0.5 * age + rng.normal(size=n)
    out = pd.DataFrame({"pid": np.arange(n), "change": np.where(alive, y, np.nan)})
    return pd.concat(rows, ignore_index=True), out


def _msm(long, out, **kwargs):
    from ptanalytics.models.causal import ipw_msm

    args = {
        "id": "pid",
        "time": "week",
        "treatment": "adhered",
        "confounders": ["pain_last"],
        "baseline": ["age"],
        "outcome_data": out,
        "outcome": "change",
    }
    return ipw_msm(long, **(args | kwargs))


@pytest.mark.parametrize("censor", [False, True])
def test_msm_recovers_the_effect_where_the_association_misses(censor):
    long, out = feedback(20_000, seed=1, censor=censor)
    fit = _msm(long, out, censored="left" if censor else None)
    row = fit.table.set_index("term").loc["cumulative_treatment"]
    assert abs(row["estimate"] - PSI) < 3 * row["std_error"] and row["std_error"] < 0.06
    naive = fit.naive.set_index("term").loc["cumulative_treatment"]
    assert naive["estimate"] - PSI > 10 * naive["std_error"]  # confounded, the wrong sign
    assert abs(fit.weight_summary.loc[0, "mean"] - 1) < 0.1  # stabilised weights average 1
    assert fit.positivity["rows"] == len(long) and fit.positivity["extreme"] < 0.01
    assert fit.n == int(out["change"].notna().sum())
    assert any("no unmeasured confounding" in n for n in fit.notes)


def test_msm_intervals_cover_the_truth():
    """200 replications of 1,500 patients with moderate confounding: mean estimate within 0.02 of
    PSI and the robust (sandwich) interval covering it about 95% of the time (measured: mean
    -0.4998, empirical SD 0.082 against a mean SE of 0.076, coverage 92.5%). The sandwich ignores
    that the weights are estimated; with extreme weights it is too narrow (strength 0.9: coverage
    83%, largest weights over 100), which the notes flag."""
    hits, est = 0, []
    for seed in range(200):
        long, out = feedback(1500, seed=500 + seed, strength=0.5)
        row = _msm(long, out).table.set_index("term").loc["cumulative_treatment"]
        hits += row["ci_low"] <= PSI <= row["ci_high"]
        est.append(row["estimate"])
    assert hits / 200 >= 0.90
    assert abs(np.mean(est) - PSI) < 0.02
    long, out = feedback(1500, seed=500, strength=0.9)
    assert any("intervals may be too narrow" in n for n in _msm(long, out).notes)


def test_msm_truncation_and_bad_input():
    long, out = feedback(3000, seed=2)
    plain, cut = _msm(long, out), _msm(long, out, truncate=(1, 99))
    w = plain.weights["weight"]
    assert cut.weights["weight"].max() == pytest.approx(np.percentile(w, 99))
    assert cut.weights["weight"].min() == pytest.approx(np.percentile(w, 1))
    with pytest.raises(ConfigError, match="lacks column"):
        _msm(long, out, confounders=["pain_now"])
    with pytest.raises(ConfigError, match="0/1"):
        _msm(long.assign(adhered=long["adhered"] * 2), out)
    with pytest.raises(ConfigError, match="truncate"):
        _msm(long, out, truncate=(99, 1))


R_MSM = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(sandwich))
d <- read.csv(args[1]); o <- read.csv(args[2])
d <- d[order(d$pid, d$week), ]
d$lag <- ave(d$adhered, d$pid, FUN = function(a) c(0, head(a, -1)))
den <- glm(adhered ~ pain_last + lag + factor(week) + age, family = binomial, data = d)
num <- glm(adhered ~ lag + factor(week) + age, family = binomial, data = d)
pd <- ifelse(d$adhered == 1, fitted(den), 1 - fitted(den))
pn <- ifelse(d$adhered == 1, fitted(num), 1 - fitted(num))
sw <- tapply(pn / pd, d$pid, prod)
cum <- tapply(d$adhered, d$pid, sum)
age <- tapply(d$age, d$pid, function(x) x[1])
p <- data.frame(pid = as.integer(names(sw)), sw = as.numeric(sw), cum = as.numeric(cum),
                age = as.numeric(age))
p <- merge(p, o, by = "pid")
fit <- lm(change ~ cum + age, data = p, weights = sw)
out <- data.frame(key = c("coef", "coef", "se", "se", "mean_w"),
                  term = c("cum", "age", "cum", "age", "w"),
                  value = c(coef(fit)[c("cum", "age")],
                            sqrt(diag(vcovHC(fit, type = "HC0")))[c("cum", "age")],
                            mean(p$sw)))
write.csv(out, args[3], row.names = FALSE)
"""


def test_msm_agrees_with_glm_and_weighted_lm_in_r(tmp_path):
    """The same estimator written in R (Hernan & Robins' recipe: pooled logistic glm for the
    numerator and denominator, the product of the ratios per patient, lm with weights and
    sandwich's HC0 covariance)."""
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript not found: cannot compare with R")
    long, out = feedback(2000, seed=4)
    long.to_csv(tmp_path / "d.csv", index=False)
    out.to_csv(tmp_path / "o.csv", index=False)
    (tmp_path / "msm.R").write_text(R_MSM)
    run = subprocess.run(
        [
            "Rscript",
            str(tmp_path / "msm.R"),
            *(str(tmp_path / f) for f in ("d.csv", "o.csv", "r.csv")),
        ],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0 and "sandwich" in run.stderr:
        pytest.skip("R package sandwich missing (apt: r-cran-sandwich, with r-cran-aer)")
    assert run.returncode == 0, run.stderr
    ref = pd.read_csv(tmp_path / "r.csv").set_index(["key", "term"])["value"]
    fit = _msm(long, out)
    table = fit.table.set_index("term")
    # R: coef(lm(change ~ cum + age, data = p, weights = sw))
    assert table.loc["cumulative_treatment", "estimate"] == pytest.approx(
        ref[("coef", "cum")], rel=1e-6
    )
    assert table.loc["age", "estimate"] == pytest.approx(ref[("coef", "age")], rel=1e-6)
    # R: sqrt(diag(vcovHC(fit, type = "HC0")))
    assert table.loc["cumulative_treatment", "std_error"] == pytest.approx(
        ref[("se", "cum")], rel=1e-6
    )
    assert table.loc["age", "std_error"] == pytest.approx(ref[("se", "age")], rel=1e-6)
    # R: mean(sw)
    assert fit.weight_summary.loc[0, "mean"] == pytest.approx(ref[("mean_w", "w")], rel=1e-6)


# --------------------------------------------------------------------------- parametric g-formula
def _gf(long, out, **kwargs):
    from ptanalytics.models.causal import gformula

    args = {
        "id": "pid",
        "time": "week",
        "treatment": "adhered",
        "confounders": ["pain_last"],
        "baseline": ["age"],
        "outcome_data": out,
        "outcome": "change",
        "bootstrap": 30,
        "n_sim": 5000,
        "seed": 11,
    }
    return gformula(long, **(args | kwargs))


def test_gformula_recovers_always_vs_never_and_the_natural_course():
    """Treatment-confounder feedback (strong confounding, as the MSM test): the truth of
    'adherent every week' against 'never' is 5 x PSI = -2.5 NPRS points; the natural course
    reproduces the observed mean."""
    long, out = feedback(8000, seed=21)
    fit = _gf(long, out)
    t = fit.table.set_index("term")
    row = t.loc["always vs never"]
    assert abs(row["estimate"] - 5 * PSI) < 3 * row["std_error"]
    assert row["ci_low"] < 5 * PSI < row["ci_high"]
    observed = out["change"].mean()
    assert abs(t.loc["mean under natural", "estimate"] - observed) < 0.05
    assert fit.n == 8000 and any("correctly specified" in n for n in fit.notes)


def test_gformula_is_reproducible_and_refuses_bad_input():
    long, out = feedback(1500, seed=22)
    a, b = _gf(long, out, seed=5), _gf(long, out, seed=5)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert not a.table.equals(_gf(long, out, seed=6).table)
    with pytest.raises(ConfigError, match="regime"):
        _gf(long, out, regimes=["sometimes"])
    with pytest.raises(ConfigError, match="bootstrap"):
        _gf(long, out, bootstrap=2)
    with pytest.raises(ConfigError, match="too few"):
        _gf(long[long["pid"] < 30], out)
    gaps = long.drop(long.index[long["pid"] == 7][:1])  # patient 7 misses a week
    assert any("1 patient(s)" in n for n in _gf(gaps, out).notes)


def test_gformula_summary_history_recovers_the_simulators_regimes_under_feedback_and_dropout():
    """A simulated registry of 2,000 patients (weekly NPRS to week 26, adherence fed back from
    pain, dropout driven by pain): the pooled g-formula on summaries of the history, with
    sessions as binomial counts and censoring at dropout, against the regime truths by common
    random numbers, within the bias limits of issue 15 (the 200-replication study is in
    docs/validation/recovery_causal_2000x200.csv)."""
    import ptanalytics as pt
    from ptanalytics.models import weekly_history
    from ptanalytics.models.causal import gformula
    from ptanalytics.models.causal_frames import WEEKLY_GFORMULA
    from ptanalytics.simulate import scenario_config
    from ptanalytics.studies.causal_recovery import REGISTRY

    cohort = pt.simulate_cohort(2000, seed=2, config=scenario_config("optimistic", **REGISTRY))
    truth = {e["term"]: e["value"] for e in cohort.truth["effects"]}
    long, final = weekly_history(cohort)
    assert long["week"].max() == 25 and set(long["guided"].unique()) <= {0.0, 1.0}
    # Censored from the first week without an NPRS: no sessions counted after it.
    gone = long["nprs"].isna()
    assert long.loc[gone, "sessions_completed"].isna().all() and gone.any()
    long = long.merge(cohort.patients[["patient_id", "age"]].astype({"age": float}))
    fit = gformula(
        long, outcome_data=final, baseline=["age"], **WEEKLY_GFORMULA,
        regimes=("natural", "natural+0.1", "natural+0.25*missed", "keep>=0.8", "always",
                 "never"),
        contrasts=[("natural+0.1", "natural"), ("natural+0.25*missed", "natural"),
                   ("keep>=0.8", "natural"), ("always", "never")],
        n_sim=3000, bootstrap=20, seed=4,
    ).table.set_index("term")  # fmt: skip
    for term, truth_term, limit in (
        ("natural+0.1 vs natural", "regime[adherence_plus_0.10_vs_own][followup]", 0.1),
        ("natural+0.25*missed vs natural", "regime[adherence_make_up_0.25_vs_own][followup]", 0.1),
        ("keep>=0.8 vs natural", "regime[adherence_kept_at_0.8_vs_own][followup]", 0.1),
        ("always vs never", "regime[adherence_all_vs_none][followup]", 0.38),
    ):
        assert fit.loc[term, "estimate"] == pytest.approx(truth[truth_term], abs=limit), term


def test_overdispersion_recovers_a_known_latent_spread():
    """Sessions done of 1 to 5 prescribed (irregular, unlike the simulator's schedules), each
    patient-period with a latent log-odds normal around its linear predictor (SD 2.0 in the
    first period, 0.7 later): the moment estimator gets both SDs back from the rows' mean
    probabilities; binomial data give (about) 0, and rows with a single session cannot show
    overdispersion (0)."""
    from scipy.special import expit, logit

    from ptanalytics.models.causal import _overdispersion

    rng = np.random.default_rng(8)
    n, periods = 80_000, 4  # SD of the estimates over 12 seeds: 0.064 and 0.034
    period = np.repeat(np.arange(periods), n // periods)
    mu = rng.normal(0.5, 1.0, n)
    sigma = np.where(period == 0, 2.0, 0.7)
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    pbar = expit(mu[:, None] + sigma[:, None] * nodes) @ (weights / weights.sum())
    m = rng.integers(1, 6, n).astype(float)
    a = rng.binomial(m.astype(int), expit(mu + sigma * rng.standard_normal(n))).astype(float)
    got = _overdispersion(logit(pbar), a, m, period, np.ones(n))
    assert got[0] == pytest.approx(2.0, abs=0.2) and got[1] == pytest.approx(0.7, abs=0.1)
    assert (got[1:] == got[1]).all()  # the later periods pooled
    binomial = rng.binomial(m.astype(int), pbar).astype(float)
    assert _overdispersion(logit(pbar), binomial, m, period, np.ones(n)).max() < 0.25
    single = rng.binomial(1, pbar).astype(float)
    ones = np.ones(n)
    assert (_overdispersion(logit(pbar), single, ones, period, ones) == 0).all()


def test_gformula_summary_history_with_one_session_a_period_is_the_plain_logistic():
    """A 0/1 treatment (one session a period, the feedback design, not the simulator's) in the
    summary history: no pair of sessions, so no latent spread can be estimated; the notes say
    0 and the contrast still recovers the truth (5 x -0.5)."""
    long, out = feedback(6000, seed=23)
    fit = _gf(long.assign(due=1.0), out, history="summary", trials="due")
    assert any("0.00 in the first period, 0.00 later" in n for n in fit.notes)
    row = fit.table.set_index("term").loc["always vs never"]
    assert abs(row["estimate"] - 5 * PSI) < 3 * row["std_error"]


def test_gformula_natural_course_keeps_the_spread_and_persistence_of_adherence():
    """Without dropout the natural course should reproduce how adherence is spread across
    patients and how it persists; a binomial treatment model (no latent spread) did not: the SD
    of the share of sessions done was 0.246 against 0.284 at 10,000 patients (docs/causal.md)."""
    import ptanalytics as pt
    from ptanalytics.models import weekly_history
    from ptanalytics.models.causal import _summary_draws, _summary_fitter
    from ptanalytics.simulate import scenario_config
    from ptanalytics.studies.causal_recovery import REGISTRY

    cfg = scenario_config("optimistic", dropout_by_week8=0.0, **REGISTRY)
    long, final = weekly_history(pt.simulate_cohort(3000, seed=5, config=cfg))
    fitter = _summary_fitter(long, final, "patient_id", "week", "sessions_completed", ["nprs"],
                             "nprs_at_followup", [], "sessions_prescribed", ["guided"])  # fmt: skip
    a = long.pivot(index="patient_id", columns="week", values="sessions_completed").to_numpy()
    m = long.pivot(index="patient_id", columns="week", values="sessions_prescribed").to_numpy()
    models = fitter["fit"](np.ones(fitter["n"]), None)
    rows = np.random.default_rng(1).integers(0, fitter["n"], 20_000)
    draws = _summary_draws(len(rows), a.shape[1], 1, int(m.max()), np.random.default_rng(2))

    def natural(models):
        sessions = []
        fitter["simulate"](models, rows, ("natural", 0.0), draws, trace=sessions)
        return np.array(sessions).T

    def spread(sessions, due):
        share = sessions.sum(axis=1) / due.sum(axis=1)
        return share.std(), np.corrcoef(sessions[:, 0], sessions[:, 10])[0, 1]

    data_sd, data_corr = spread(a, m)
    sim_sd, sim_corr = spread(natural(models), m[rows])
    assert sim_sd == pytest.approx(data_sd, rel=0.06)
    assert sim_corr == pytest.approx(data_corr, abs=0.06)
    binomial = models | {"sigma": np.zeros_like(models["sigma"])}
    assert spread(natural(binomial), m[rows])[0] < 0.92 * data_sd


def test_gformula_regimes_options_and_refusals():
    from ptanalytics.models.causal import _parse_regime

    assert _parse_regime("natural+0.1") == ("add", 0.1)
    assert _parse_regime("natural + 0.25 * missed") == ("make_up", 0.25)
    assert _parse_regime("keep>=0.8") == ("keep", 0.8)
    for bad in ("natural+1.5", "keep>=0.8*missed", "sometimes", "natural-0.1", "keep>=0"):
        with pytest.raises(ConfigError, match="allowed: always, never, natural"):
            _parse_regime(bad)
    long, out = feedback(600, seed=3)
    with pytest.raises(ConfigError, match="need history='summary'"):
        _gf(long, out, trials="adhered")
    with pytest.raises(ConfigError, match="contrast"):
        _gf(long, out, contrasts=[("always", "natural+0.1")])
    with pytest.raises(ConfigError, match="history="):
        _gf(long, out, history="partial")
    with pytest.raises(ConfigError, match="more than one row"):
        _gf(pd.concat([long, long.head(1)]), out)
    counts = long.assign(sessions=2 * long["adhered"] + 1, due=2.0)
    with pytest.raises(ConfigError, match="whole number from 0"):
        _gf(counts, out, treatment="sessions", trials="due", history="summary")
    # Shifts in the full-history version too; the same seed gives the same table.
    a = _gf(long, out, regimes=("natural", "natural+0.1", "keep>=0.5"), reference="natural")
    b = _gf(long, out, regimes=("natural", "natural+0.1", "keep>=0.5"), reference="natural")
    pd.testing.assert_frame_equal(a.table, b.table)
    shift = a.table.set_index("term").loc["natural+0.1 vs natural", "estimate"]
    assert shift < 0  # treatment lowers the outcome in this design


# ------------------------------------------------------------------ target-trial emulation
def _confounded_decision(n: int, seed: int) -> pd.DataFrame:
    """A decision confounded by a covariate: care followed the rule for 80% of the patients with
    z = 1 and 20% of those with z = 0; the rule raises the outcome by 0.5 (the truth), and z
    raises it by 1 and makes it more often missing."""
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, n)
    rule = rng.random(n) < np.where(z == 1, 0.8, 0.2)
    y = 1.5 + 0.5 * rule + z + rng.normal(0, 1, n)
    y[rng.random(n) < np.where(z == 1, 0.4, 0.1)] = np.nan
    return pd.DataFrame(
        {
            "pid": np.arange(n),
            "z": z.astype(float),
            "followed_rule": rule.astype(float),
            "followed_fixed": (~rule).astype(float),
            "y": y,
        }
    )


def _tt(frame, **kwargs):
    from ptanalytics.models.causal import target_trial

    args = {
        "id": "pid",
        "outcome": "y",
        "strategies": {"rule": "followed_rule", "fixed": "followed_fixed"},
        "covariates": ["z"],
        "reference": "fixed",
        "bootstrap": 50,
        "seed": 3,
    }
    return target_trial(frame, **(args | kwargs))


def test_target_trial_removes_the_confounding_of_the_decision():
    """Truth 0.5; the per-protocol comparison is off by the covariate's imbalance (0.6)."""
    fit = _tt(_confounded_decision(6000, seed=1))
    t = fit.table.set_index("term")
    row = t.loc["rule vs fixed"]
    assert row["ci_low"] < 0.5 < row["ci_high"]
    assert abs(row["estimate"] - 0.5) < 3 * row["std_error"]
    assert t.loc["naive: rule vs fixed", "estimate"] > 0.9  # the association misses
    assert any("assumes no unmeasured confounding" in n for n in fit.notes)
    again = _tt(_confounded_decision(6000, seed=1))
    pd.testing.assert_frame_equal(fit.table, again.table)


def test_target_trial_refuses_bad_input_and_says_when_positivity_fails():
    frame = _confounded_decision(600, seed=2)
    with pytest.raises(ConfigError, match="reference"):
        _tt(frame, reference="sometimes")
    with pytest.raises(ConfigError, match="more than one row"):
        _tt(pd.concat([frame, frame.head(1)]))
    with pytest.raises(ConfigError, match="0/1"):
        _tt(frame.assign(followed_rule=frame["followed_rule"] * 2))
    with pytest.raises(ConfigError, match="lacks"):
        _tt(frame.drop(columns="y"))
    with pytest.raises(ConfigError, match="too few"):
        _tt(frame.head(30))
    with pytest.raises(ConfigError, match="bootstrap"):
        _tt(frame, bootstrap=3)
    # Nobody with z = 0 followed the rule: no estimate, and the notes say why.
    never = frame.assign(followed_rule=frame["followed_rule"] * frame["z"])
    fit = _tt(never)
    assert np.isnan(fit.table.set_index("term").loc["rule vs fixed", "estimate"])
    assert any("positivity fails for rule" in n for n in fit.notes)


def test_the_extension_rule_emulated_on_a_simulated_clinic():
    """The clinic's review extends half of the non-responders (< 10% better at week 4): the
    rule "extend every non-responder" is emulated among the patients planned 8 weeks and
    scored against its truth by common random numbers; the rule at 30%, which the clinic never
    followed for patients 10-30% better, is refused (positivity)."""
    import ptanalytics as pt
    from ptanalytics.models import extension_rule_trial, target_trial
    from ptanalytics.models.causal_frames import RULE_TRIAL
    from ptanalytics.studies.causal_recovery import RULE_TRUTH

    cohort = pt.simulate_cohort(2000, seed=2)
    truth = {e["term"]: e["value"] for e in cohort.truth["effects"]}
    frame = extension_rule_trial(cohort, 0.1)
    assert set(frame["review_band"]) >= {"[0.1, 0.3)", "[-inf, 0.1)", "[0.5, inf)"}
    assert (frame[frame["review_band"] == "left"][["followed_rule", "followed_fixed"]] == 1).all(
        axis=None
    )
    fit = target_trial(frame, bootstrap=100, seed=3, **RULE_TRIAL)
    row = fit.table.set_index("term").loc["rule vs fixed"]
    assert abs(row["estimate"] - truth[RULE_TRUTH]) < 3 * row["std_error"]
    wider = target_trial(extension_rule_trial(cohort, 0.3), bootstrap=50, seed=3, **RULE_TRIAL)
    assert np.isnan(wider.table.set_index("term").loc["rule vs fixed", "estimate"])
    with pytest.raises(ConfigError, match="review bands"):
        extension_rule_trial(cohort, 0.2)


# ------------------------------------------------------- the simulator's encouragement design
def test_the_encouragement_design_adds_an_arm_and_its_truths_and_leaves_the_rest():
    import ptanalytics as pt

    plain = pt.simulate_cohort(300, seed=31)
    trial = pt.simulate_cohort(300, seed=31, encouragement_share=0.5)
    assert "arm" not in plain.patients
    assert set(trial.patients["arm"]) == {"encouraged", "usual"}
    assert 0.4 < (trial.patients["arm"] == "encouraged").mean() < 0.6
    effects = {e["term"]: e["value"] for e in trial.truth["effects"]}
    itt = effects["encouragement_itt[followup]"]
    first = effects["encouragement_first_stage[adherence]"]
    assert first > 0.03  # encouragement raises adherence
    assert effects["complier_effect[adherence][followup]"] == pytest.approx(itt / first)
    assert not any(
        t.startswith("encouragement") for t in (e["term"] for e in plain.truth["effects"])
    )
    # Everything drawn before the arm is the same: same patients, same baseline.
    pd.testing.assert_frame_equal(plain.patients, trial.patients.drop(columns=["arm"]))
    summary = pt.patient_summary(trial)
    by_arm = summary.groupby("arm")["adherence"].mean()
    assert by_arm["encouraged"] > by_arm["usual"]


def test_complier_effect_recovers_the_simulators_complier_truth():
    """20 simulated trials of 3,000 patients (half encouraged): 2SLS of the follow-up NPRS
    change on overall adherence, the arm as instrument, complete cases, against the truth by
    common random numbers (on the recorded NPRS scale). Measured over 40 trials: mean estimate
    -3.47 against a mean truth of -3.40, empirical SD 0.64, mean SE 0.77, coverage 97.5%."""
    import ptanalytics as pt

    est, truth, hits = [], [], 0
    for seed in range(20):
        cohort = pt.simulate_cohort(3000, seed=100 + seed, encouragement_share=0.5)
        effects = {e["term"]: e["value"] for e in cohort.truth["effects"]}
        row = complier_effect(
            pt.patient_summary(cohort),
            outcome="nprs_change_followup",
            exposure="adherence",
            instrument="arm",
            instrument_level="encouraged",
            covariates=["nprs_baseline", "age", "C(sex)", "C(chronicity)"],
        ).table.iloc[0]
        value = effects["complier_effect[adherence][followup]"]
        est.append(row["estimate"])
        truth.append(value)
        hits += row["ci_low"] <= value <= row["ci_high"]
    bias = np.mean(est) - np.mean(truth)
    assert abs(bias) < 3 * np.std(est) / np.sqrt(len(est))
    assert hits / len(est) >= 0.85


# ---------------------------------------------------------------------------- named scenarios
def test_named_scenarios_and_the_null_scenario_has_no_effect_of_adherence(tmp_path):
    import ptanalytics as pt
    from ptanalytics.cli import main
    from ptanalytics.simulate import SCENARIOS, SimulationConfig, scenario_config

    assert scenario_config("optimistic") == SimulationConfig()
    null = scenario_config("null_adherence", horizon_weeks=12)
    assert null.benefit_max == 0 and null.horizon_weeks == 12
    with pytest.raises(ConfigError, match="Did you mean null_adherence"):
        scenario_config("null_adherance")
    assert set(SCENARIOS) >= {"optimistic", "null_adherence"}
    cohort = pt.simulate_cohort(400, seed=41, config=null, encouragement_share=0.5)
    effects = {e["term"]: e["value"] for e in cohort.truth["effects"]}
    assert effects["adherence_full_vs_none[followup]"] == 0.0
    assert effects["encouragement_itt[followup]"] == 0.0
    assert effects["complier_effect[adherence][followup]"] == 0.0
    # The command line: --scenario, and not together with --config.
    assert main(["simulate", "--patients", "30", "--scenario", "null_adherence",
                 "--out", str(tmp_path / "c"), "--format", "csv"]) == 0  # fmt: skip
    (tmp_path / "cfg.toml").write_text("horizon_weeks = 12\n")
    assert main(["simulate", "--patients", "30", "--scenario", "null_adherence", "--config",
                 str(tmp_path / "cfg.toml"), "--out", str(tmp_path / "d")]) == 2  # fmt: skip


def test_the_null_scenario_gives_complier_estimates_consistent_with_zero():
    """10 simulated encouragement trials of 3,000 patients in which exercise has no effect:
    the 95% intervals cover 0 in at least 8 of them and the mean estimate is near 0."""
    import ptanalytics as pt
    from ptanalytics.simulate import scenario_config

    cfg = scenario_config("null_adherence", encouragement_share=0.5)
    est, covered = [], 0
    for seed in range(10):
        row = complier_effect(
            pt.patient_summary(pt.simulate_cohort(3000, seed=300 + seed, config=cfg)),
            outcome="nprs_change_followup",
            exposure="adherence",
            instrument="arm",
            instrument_level="encouraged",
            covariates=["nprs_baseline", "age"],
        ).table.iloc[0]
        est.append(row["estimate"])
        covered += row["ci_low"] <= 0 <= row["ci_high"]
    assert covered >= 8
    assert abs(np.mean(est)) < 3 * np.std(est) / np.sqrt(len(est))


# ------------------------------------------------------------------------------ causal recovery
def test_causal_recovery_is_the_same_whatever_the_number_of_workers():
    from ptanalytics.studies.causal_recovery import causal_recovery

    one, fits_one = causal_recovery(600, 2, seed=9, workers=1, progress=False)
    two, fits_two = causal_recovery(600, 2, seed=9, workers=2, progress=False)
    pd.testing.assert_frame_equal(one, two)
    pd.testing.assert_frame_equal(fits_one, fits_two)
    from ptanalytics.studies.causal_recovery import REGIMES, RULE_TRUTH

    expected = set()
    for scenario in ("optimistic", "null_adherence"):
        expected |= {f"{scenario}: complier effect (2SLS)", f"{scenario}: naive (OLS)"}
        for truth, _ in REGIMES.values():
            expected |= {
                f"{scenario}: {truth}: g-formula",
                f"{scenario}: {truth}: naive (OLS x adherence change)",
            }
        expected |= {
            f"{scenario}: {RULE_TRUTH}: target trial (clone-censor-weight)",
            f"{scenario}: {RULE_TRUTH}: naive (per-protocol)",
        }
    assert set(one["term"]) == expected
    null = one[one["term"].str.startswith("null_adherence")]
    assert (null["truth"] == 0).all() and {"bias_ok", "coverage_ok"} <= set(one.columns)


def test_the_committed_causal_recovery_meets_the_targets():
    """docs/validation/recovery_causal_2000x200.csv (ptanalytics recovery --analysis causal
    --replications 200 --seed 0), as docs/causal.md reads it: 2SLS, the g-formula's every
    session against none and the target trial meet issue 15's targets in both scenarios; every
    g-formula regime does in the null scenario; the other regimes' bias is within its limit in
    the optimistic scenario but not their coverage (make-up 85.5%, kept at 80% 51%, +0.10 47%:
    documented); the naive associations miss."""
    from pathlib import Path

    from ptanalytics.studies.causal_recovery import REGIMES, RULE_TRUTH

    path = Path(__file__).resolve().parents[1] / "docs/validation/recovery_causal_2000x200.csv"
    summary = pd.read_csv(path).set_index("term")
    assert (summary["replications"] == 200).all()

    def met(term):
        row = summary.loc[term]
        return bool(row["bias_ok"]) and 0.92 <= row["coverage"] <= 0.98

    all_vs_none = "regime[adherence_all_vs_none][followup]"
    for scenario in ("optimistic", "null_adherence"):
        assert met(f"{scenario}: complier effect (2SLS)")
        assert met(f"{scenario}: {all_vs_none}: g-formula")
        assert met(f"{scenario}: {RULE_TRUTH}: target trial (clone-censor-weight)")
    for truth, _ in REGIMES.values():
        assert met(f"null_adherence: {truth}: g-formula")
        assert summary.loc[f"optimistic: {truth}: g-formula", "bias_ok"]
        assert summary.loc[f"optimistic: {truth}: naive (OLS x adherence change)", "coverage"] < 0.5
    assert summary.loc["optimistic: naive (OLS)", "coverage"] < 0.5
    assert summary.loc["null_adherence: naive (OLS)", "coverage"] < 0.5


def test_causal_frames_without_patients_followup_weeks_use_the_cohorts_follow_up():
    """An export without ``patients.followup_weeks`` (the simulator always writes it): the
    frames run to the follow-up the prescriptions give, the same frames as with the column."""
    import ptanalytics as pt
    from ptanalytics.models import extension_rule_trial, weekly_history

    cohort = pt.simulate_cohort(300, seed=1)
    long, final = weekly_history(cohort)
    rule = extension_rule_trial(cohort, 0.1)
    cohort.patients = cohort.patients.drop(columns="followup_weeks")
    long2, final2 = weekly_history(cohort)
    assert long2["week"].max() == 25
    pd.testing.assert_frame_equal(long.reset_index(drop=True), long2.reset_index(drop=True))
    pd.testing.assert_frame_equal(final.reset_index(drop=True), final2.reset_index(drop=True))
    pd.testing.assert_frame_equal(rule, extension_rule_trial(cohort, 0.1))
