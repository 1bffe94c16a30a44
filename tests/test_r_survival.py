"""Reference tests of :mod:`ptanalytics.models.survival` (and :mod:`ptanalytics.models.dropout`)
against R's ``survival`` package.

One Rscript run per session (``tests/r/survival_ref.R``) exports ``survival::lung``, ``veteran``
and ``heart`` to CSV, reads them back (R and Python fit the very same numbers), and fits the
reference models; it also fits ``coxph`` to the counting-process rows of the default synthetic
cohort (``data/synthetic/default``) that this test writes from :func:`dropout_intervals`. Each
assert names the R call beside it.

Tolerance: a relative difference <= 1e-9 (>= 9 significant digits; the issue asks for >= 5).
Measured on R 4.2 / survival 3.5-3: Kaplan-Meier, medians and log-rank within 3e-14, Cox
coefficients within 1e-13 and standard errors and log-likelihoods within 2e-15 (R and
:func:`cox_ph` take the same Newton-Raphson steps from 0 and stop by the same rule). Counts and
times are compared exactly.

Skipped when Rscript or the survival package is missing (CI installs r-cran-survival).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ptanalytics as pt
from ptanalytics.models.dropout import cox_dropout, dropout_intervals
from ptanalytics.models.survival import cox_ph, km_estimate, km_median, logrank_test
from ptanalytics.studies.lme4 import r_package_available

ROOT = Path(__file__).resolve().parents[1]
R_SCRIPT = ROOT / "tests" / "r" / "survival_ref.R"
RTOL = 1e-9


_OK, _WHY = r_package_available("survival")
if not _OK:
    pytest.skip(f"{_WHY}: cannot cross-check survival against R", allow_module_level=True)


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def default_cohort():
    cohort = pt.load_cohort(ROOT / "data" / "synthetic" / "default")
    return pt.patient_weeks(cohort), pt.patient_summary(cohort)


@pytest.fixture(scope="session")
def r_ref(tmp_path_factory, default_cohort):
    """Run the R script once: the datasets as CSV and every reference number (long form)."""
    out = tmp_path_factory.mktemp("r_survival")
    weeks, summary = default_cohort
    rows = dropout_intervals(weeks, summary, covariates=("age",))
    rows[["patient_id", "start", "stop", "event", "pain_change", "nprs_baseline", "age"]].to_csv(
        out / "dropout.csv", index=False
    )
    run = subprocess.run(
        ["Rscript", str(R_SCRIPT), str(out)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    ref = pd.read_csv(out / "ref.csv", keep_default_na=False, dtype={"row": str})
    ref["value"] = pd.to_numeric(ref["value"].mask(ref["value"] == "NA"))
    data = {name: pd.read_csv(out / f"{name}.csv") for name in ("lung", "veteran", "heart", "toy")}
    data["lung"]["dead"] = data["lung"]["status"] == 2  # Surv(time, status): 2 = dead
    data["dropout"] = rows
    return ref, data


def _section(ref: pd.DataFrame, name: str) -> pd.DataFrame:
    """One section of ref.csv as a frame: a column per key, rows in R's order."""
    part = ref[ref["section"] == name]
    assert len(part), f"no section {name} in R's output"
    order = list(dict.fromkeys(part["row"]))
    return part.pivot(index="row", columns="key", values="value").loc[order]


def _close(ours, theirs, rtol=RTOL):
    np.testing.assert_allclose(
        np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float), rtol=rtol, atol=0
    )


KM_CASES = {
    # label: (dataset, event column, by)
    "lung": ("lung", "dead", None),  # survfit(Surv(time, status) ~ 1, lung)
    "lung_sex": ("lung", "dead", "sex"),  # survfit(Surv(time, status) ~ sex, lung)
    "veteran_celltype": ("veteran", "status", "celltype"),  # ~ celltype, veteran
    "toy_arm": ("toy", "status", "arm"),  # two toy curves flat at exactly 0.5
}


# ------------------------------------------------------------------------------------ KM
@pytest.mark.parametrize("conf_type", ["log", "log-log", "plain"])
@pytest.mark.parametrize("label", list(KM_CASES))
def test_kaplan_meier_matches_survfit(r_ref, label, conf_type):
    ref, data = r_ref
    dataset, event, by = KM_CASES[label]
    km = km_estimate(data[dataset], time="time", event=event, by=by, conf_type=conf_type).table
    # s <- summary(survfit(..., conf.type = conf_type), censored = TRUE)
    r = _section(ref, f"km/{label}/{conf_type}")
    assert len(km) == len(r)
    codes = pd.factorize(km["group"])[0] + 1
    np.testing.assert_array_equal(codes, r["stratum"])  # as.integer(s$strata)
    np.testing.assert_array_equal(km["time"], r["time"])  # s$time
    np.testing.assert_array_equal(km["n_at_risk"], r["n_at_risk"])  # s$n.risk
    np.testing.assert_array_equal(km["events"], r["events"])  # s$n.event
    np.testing.assert_array_equal(km["censored"], r["censored"])  # s$n.censor
    _close(km["survival"], r["survival"])  # s$surv
    _close(km["std_error"], r["std_error"])  # s$std.err (Greenwood; NaN once S = 0)
    if conf_type == "log-log":
        # R gives no log-log interval while S = 1 (SE 0); we give [1, 1] (documented).
        one = km["survival"].to_numpy() == 1
        assert r.loc[one, ["ci_low", "ci_high"]].isna().all().all()
        assert (km.loc[one, ["ci_low", "ci_high"]] == 1).all().all()
        km, r = km[~one], r[~one]
    _close(km["ci_low"], r["ci_low"])  # s$lower
    _close(km["ci_high"], r["ci_high"])  # s$upper


@pytest.mark.parametrize("conf_type", ["log", "log-log", "plain"])
@pytest.mark.parametrize("label", list(KM_CASES))
def test_median_matches_print_survfit(r_ref, label, conf_type):
    ref, data = r_ref
    dataset, event, by = KM_CASES[label]
    km = km_estimate(data[dataset], time="time", event=event, by=by, conf_type=conf_type)
    med = km_median(km).table
    # tab <- summary(survfit(..., conf.type = conf_type))$table
    r = _section(ref, f"median/{label}/{conf_type}")
    np.testing.assert_array_equal(med["n"], r["n"])  # tab[, "records"]
    np.testing.assert_array_equal(med["events"], r["events"])  # tab[, "events"]
    _close(med["median"], r["median"])  # tab[, "median"]
    _close(med["ci_low"], r["ci_low"])  # tab[, "0.95LCL"]
    _close(med["ci_high"], r["ci_high"])  # tab[, "0.95UCL"]
    _close(med["median"], r["quantile_median"])  # quantile(fit, 0.5)$quantile


# ------------------------------------------------------------------------------------ log-rank
@pytest.mark.parametrize(
    ("label", "dataset", "event", "group"),
    [
        ("lung_sex", "lung", "dead", "sex"),  # survdiff(Surv(time, status) ~ sex, lung)
        ("veteran_celltype", "veteran", "status", "celltype"),  # ~ celltype, veteran
        ("veteran_trt", "veteran", "status", "trt"),  # ~ trt, veteran
    ],
)
def test_logrank_matches_survdiff(r_ref, label, dataset, event, group):
    ref, data = r_ref
    out = logrank_test(data[dataset], time="time", event=event, group=group).table
    r = _section(ref, f"logrank/{label}")  # d <- survdiff(...)
    np.testing.assert_array_equal(out["n"], r["n"])  # d$n
    np.testing.assert_array_equal(out["observed"], r["observed"])  # d$obs
    _close(out["expected"], r["expected"])  # d$exp
    _close(out["chisq"].iloc[0], r["chisq"].dropna().iloc[0])  # d$chisq
    assert out["df"].iloc[0] == r["df"].dropna().iloc[0]  # length(d$n) - 1
    _close(out["p_value"].iloc[0], r["p_value"].dropna().iloc[0])  # pchisq(d$chisq, df, lower = F)


# ------------------------------------------------------------------------------------ Cox
def _veteran_chosen(veteran: pd.DataFrame) -> pd.DataFrame:
    # R: factor(celltype, levels = c("smallcell", "squamous", "adeno", "large")), i.e. relevel
    # to smallcell; neither order is alphabetical.
    order = ["smallcell", "squamous", "adeno", "large"]
    return veteran.assign(celltype_chosen=pd.Categorical(veteran["celltype"], categories=order))


COX_CASES = {
    # label: (dataset, keyword arguments of cox_ph, R's term names in order)
    # coxph(Surv(time, status) ~ age + sex + ph.ecog, lung)  (one row with ph.ecog NA dropped)
    "lung": ("lung", dict(time="time", event="dead", covariates=["age", "sex", "ph.ecog"])),
    # coxph(Surv(time, status) ~ age + ph.ecog + strata(sex), lung)
    "lung_strata": (
        "lung",
        dict(time="time", event="dead", covariates=["age", "ph.ecog"], strata="sex"),
    ),
    # coxph(Surv(start, stop, event) ~ age + year + surgery + transplant, heart)
    "heart": (
        "heart",
        dict(
            time="stop",
            start="start",
            event="event",
            covariates=["age", "year", "surgery", "transplant"],
        ),
    ),
    # coxph(Surv(time, status) ~ karno + age + trt + celltype_chosen, veteran)
    "veteran_chosen": (
        "veteran",
        dict(time="time", event="status", covariates=["karno", "age", "trt", "celltype_chosen"]),
    ),
    # coxph(Surv(time, status) ~ karno + age + trt + factor(celltype), veteran): text, sorted
    "veteran_sorted": (
        "veteran",
        dict(time="time", event="status", covariates=["karno", "age", "trt", "celltype"]),
    ),
}


def _r_term(term: str) -> str:
    """Our term name in R's spelling: x[T.b] -> xb (factor(x)b for a text column)."""
    if "[T." not in term:
        return term
    name, level = term[:-1].split("[T.")
    return f"{name}{level}" if name == "celltype_chosen" else f"factor({name}){level}"


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("label", list(COX_CASES))
def test_cox_matches_coxph(r_ref, label, ties):
    ref, data = r_ref
    dataset, kwargs = COX_CASES[label]
    frame = _veteran_chosen(data[dataset]) if dataset == "veteran" else data[dataset]
    fit = cox_ph(frame, ties=ties, **kwargs)
    # fit <- coxph(..., ties = ties); s <- summary(fit)
    r = ref[ref["section"] == f"cox/{label}/{ties}"].set_index(["key", "row"])["value"]
    assert [_r_term(t) for t in fit.table["term"]] == list(r["coef"].index)  # names(coef(fit))
    assert fit.converged
    _close(fit.table["coef"], r["coef"])  # coef(fit)
    _close(fit.table["std_error"], r["se"])  # sqrt(diag(vcov(fit)))
    _close(fit.table["estimate"], np.exp(r["coef"]))  # exp(coef(fit))
    _close([fit.loglik_null, fit.loglik], r["loglik"])  # fit$loglik
    _close(fit.lr_chisq, r["lr"]["test"])  # s$logtest["test"]
    assert fit.lr_df == r["lr"]["df"]  # s$logtest["df"]
    _close(fit.lr_p_value, r["lr"]["pvalue"])  # s$logtest["pvalue"]
    _close(fit.wald_chisq, r["wald"]["test"])  # fit$wald.test
    _close(fit.score_chisq, r["score"]["test"])  # fit$score
    assert (fit.n, fit.n_events) == (r["n"]["n"], r["n"]["nevent"])  # fit$n, fit$nevent


def test_counting_process_is_not_double_counted_on_heart(r_ref):
    # The old statsmodels fit (entry = start) kept a row at risk at its own start time; with
    # heart's back-to-back rows (transplant splits a patient at the transplant day) that
    # differs from R. coxph(Surv(start, stop, event) ~ age + year + surgery + transplant, heart)
    ref, data = r_ref
    fit = cox_ph(data["heart"], **COX_CASES["heart"][1])
    r = ref[(ref["section"] == "cox/heart/efron") & (ref["key"] == "coef")]["value"]
    _close(fit.coef, r)  # coef(fit)


# ------------------------------------------------------------------------------------ dropout
@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_dropout_matches_coxph_on_the_default_cohort(r_ref, default_cohort, ties):
    # The acceptance criterion: the same rows (dropout_intervals of data/synthetic/
    # default), coxph(Surv(start, stop, event) ~ pain_change + nprs_baseline + age, rows).
    ref, _data = r_ref
    weeks, summary = default_cohort
    table = cox_dropout(weeks, summary, ties=ties).table
    r = ref[ref["section"] == f"cox/dropout/{ties}"].set_index(["key", "row"])["value"]
    assert list(table["term"]) == list(r["coef"].index)  # names(coef(fit))
    _close(table["estimate"], np.exp(r["coef"]))  # exp(coef(fit))
    _close(table["std_error"], r["se"])  # sqrt(diag(vcov(fit)))
    assert table["n_events"].iloc[0] == r["n"]["nevent"]  # fit$nevent
    if ties == "efron":
        # The figure the issue quotes, on the current default cohort: R's hazard ratio for pain
        # change is 1.179 (exp(coef(fit))["pain_change"] = 1.179353193741898, R 4.2.2, survival
        # 3.5-3). The issue quoted 1.185 on the cohort simulated before adherence depended on
        # the reported pain change, where the old statsmodels fit said 1.221.
        assert table["estimate"].iloc[0] == pytest.approx(1.179, abs=5e-4)
