"""Multiple imputation of the follow-up score, Rubin's rules and the delta tipping point."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

import ptanalytics as pt
from ptanalytics.exceptions import ConfigError
from ptanalytics.models.missing_data import impute_followup, mi_responders, rubin, tipping_point


@pytest.fixture(scope="module")
def cohort():
    return pt.simulate_cohort(2000, seed=1)


@pytest.fixture(scope="module")
def summary(cohort):
    return pt.patient_summary(cohort)


@pytest.fixture(scope="module")
def completers(summary):
    """Patients with an observed follow-up: a data set without missing outcome."""
    return summary[summary["nprs_followup"].notna()].reset_index(drop=True)


def _pooled_mean(copies, col="nprs_followup"):
    means = [c[col].mean() for c in copies]
    variances = [c[col].var() / len(c) for c in copies]
    return rubin(means, variances, df_complete=len(copies[0]) - 1)


# ------------------------------------------------------------------------------------------
# Rubin's rules
# ------------------------------------------------------------------------------------------


def test_rubin_known_answer():
    # m = 5, estimates 10, 12, 11, 13, 14; variances 3, 4, 5, 4, 4.
    # Q-bar = 60 / 5 = 12; U-bar = 20 / 5 = 4
    # B = ((-2)^2 + 0^2 + (-1)^2 + 1^2 + 2^2) / (5 - 1) = 10 / 4 = 2.5
    # T = U-bar + (1 + 1/5) B = 4 + 1.2 * 2.5 = 7; SE = sqrt(7)
    # riv = 1.2 * 2.5 / 4 = 0.75; lambda = 3 / 7
    # classic df = (m - 1) / lambda^2 = 4 * 49 / 9 = 196 / 9 = 21.7778
    # fmi = (riv + 2 / (df + 3)) / (1 + riv) = (3/4 + 18/223) / (7/4) = 741 / 1561 = 0.474696
    # t = 12 / sqrt(7) = 4.5356; CI = 12 -/+ t_{0.975, 196/9} sqrt(7), t_{0.975} = 2.0751007
    res = rubin([10, 12, 11, 13, 14], [3, 4, 5, 4, 4])
    assert res.estimate == pytest.approx(12)
    assert res.within == pytest.approx(4)
    assert res.between == pytest.approx(2.5)
    assert res.total == pytest.approx(7)
    assert res.std_error == pytest.approx(np.sqrt(7))
    assert res.riv == pytest.approx(0.75)
    assert res.lambda_ == pytest.approx(3 / 7)
    assert res.df == pytest.approx(196 / 9)
    assert res.df_method == "rubin1987"
    assert res.fraction_missing_info == pytest.approx(741 / 1561)
    assert res.statistic == pytest.approx(12 / np.sqrt(7))
    half = 2.0751007 * np.sqrt(7)
    assert res.ci_low == pytest.approx(12 - half, abs=1e-6)
    assert res.ci_high == pytest.approx(12 + half, abs=1e-6)
    assert res.p_value == pytest.approx(2 * stats.t.sf(12 / np.sqrt(7), 196 / 9))
    assert res.m == 5

    # Barnard-Rubin with 10 complete-data degrees of freedom:
    # nu_obs = (10 + 1) / (10 + 3) * 10 * (1 - 3/7) = 440 / 91 = 4.835165
    # nu = nu_old nu_obs / (nu_old + nu_obs) = (196/9)(440/91) / (196/9 + 440/91)
    #    = 21560 / 5449 = 3.956689
    # fmi = (0.75 + 2 / (21560/5449 + 3)) / 1.75 = 157313 / 265349 = 0.592853
    br = rubin([10, 12, 11, 13, 14], [3, 4, 5, 4, 4], df_complete=10)
    assert br.df == pytest.approx(21560 / 5449)
    assert br.df_method == "barnard-rubin1999"
    assert br.fraction_missing_info == pytest.approx(157313 / 265349)
    assert br.std_error == pytest.approx(np.sqrt(7))


def test_rubin_without_between_variance():
    res = rubin([2.0, 2.0, 2.0], [0.25, 0.25, 0.25])
    assert res.between == 0 and res.fraction_missing_info == 0
    assert np.isinf(res.df)
    assert res.ci_low == pytest.approx(2 - stats.norm.ppf(0.975) * 0.5)
    # Barnard-Rubin with no missing information: nu = (nu_com + 1) / (nu_com + 3) * nu_com.
    assert rubin([2.0, 2.0], [0.25, 0.25], df_complete=20).df == pytest.approx(21 / 23 * 20)


@pytest.mark.parametrize(
    ("estimates", "variances", "kwargs"),
    [
        ([1.0], [1.0], {}),
        ([1.0, 2.0], [1.0], {}),
        ([1.0, np.nan], [1.0, 1.0], {}),
        ([1.0, 2.0], [1.0, -1.0], {}),
        ([1.0, 2.0], [1.0, 1.0], {"df_complete": 0}),
        ([1.0, 2.0], [1.0, 1.0], {"alpha": 1.5}),
    ],
)
def test_rubin_rejects_bad_input(estimates, variances, kwargs):
    with pytest.raises(ConfigError):
        rubin(estimates, variances, **kwargs)


# ------------------------------------------------------------------------------------------
# impute_followup
# ------------------------------------------------------------------------------------------


def test_no_missing_outcome_returns_the_input(completers):
    before = completers.copy()
    copies = impute_followup(completers, m=3, seed=1)
    assert len(copies) == 3
    for copy in copies:
        pd.testing.assert_frame_equal(copy, completers.assign(imputed=False))
    pd.testing.assert_frame_equal(completers, before)


def test_imputations_fill_only_the_missing_outcome(summary):
    before = summary.copy()
    copies = impute_followup(summary, m=4, seed=3)
    pd.testing.assert_frame_equal(summary, before)  # input not mutated
    missing = summary["nprs_followup"].isna().to_numpy()
    for copy in copies:
        assert copy.index.equals(summary.index)
        assert copy["imputed"].dtype == bool
        assert (copy["imputed"].to_numpy() == missing).all()
        assert copy["nprs_followup"].notna().all()
        pd.testing.assert_series_equal(
            copy.loc[~missing, "nprs_followup"], summary.loc[~missing, "nprs_followup"]
        )
        # Predictor draws are not written back.
        pd.testing.assert_frame_equal(
            copy.drop(columns=["nprs_followup", "imputed"]), summary.drop(columns="nprs_followup")
        )
        imputed = copy.loc[missing, "nprs_followup"].to_numpy()
        assert (imputed == np.round(imputed)).all()
        assert imputed.min() >= 0 and imputed.max() <= 10
    # The m copies are different draws.
    assert not copies[0]["nprs_followup"].equals(copies[1]["nprs_followup"])


def test_continuous_imputation_and_delta_shift(summary):
    mar = impute_followup(summary, m=2, seed=5, integer_scale=False)
    shifted = impute_followup(summary, m=2, seed=5, integer_scale=False, delta=1.5)
    missing = summary["nprs_followup"].isna().to_numpy()
    for a, b in zip(mar, shifted, strict=True):
        assert not (
            a.loc[missing, "nprs_followup"] == np.round(a.loc[missing, "nprs_followup"])
        ).all()
        # Same draws, shifted by exactly delta, observed values untouched.
        diff = (b["nprs_followup"] - a["nprs_followup"]).to_numpy()
        np.testing.assert_allclose(diff[missing], 1.5)
        assert (diff[~missing] == 0).all()


def test_imputation_is_deterministic(summary):
    a = impute_followup(summary, m=3, seed=42)
    b = impute_followup(summary, m=3, seed=42)
    c = impute_followup(summary, m=3, seed=43)
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x, y)
    assert any(not x["nprs_followup"].equals(z["nprs_followup"]) for x, z in zip(a, c, strict=True))


def test_mcar_mean_recovered(completers):
    # Delete 30% of the observed follow-up scores completely at random; MI should recover the
    # full-data mean within 2 pooled standard errors.
    rng = np.random.default_rng(2024)
    mcar = completers.copy()
    mcar.loc[rng.random(len(mcar)) < 0.3, "nprs_followup"] = np.nan
    pooled = _pooled_mean(impute_followup(mcar, m=20, seed=8))
    full_mean = completers["nprs_followup"].mean()
    assert abs(pooled.estimate - full_mean) < 2 * pooled.std_error
    assert 0 < pooled.fraction_missing_info < 1


def test_mar_imputation_moves_towards_the_latent_truth_under_mnar_dropout(cohort, summary):
    # Measured (2000 patients, seed 1): complete-case 3.34, MI 3.83 (SE 0.06), latent truth 3.89.
    # The latent score is unrounded and unclipped; on the recorded 0-10 scale (noise SD 0.9,
    # rounding, clipping at 0) the full-data mean would be about 4.0, so MAR imputation closes
    # most, not all, of the complete-case gap: the rest is the MNAR part delta addresses.
    latent = cohort.truth_patients["nprs_latent_followup"].mean()
    complete_case = summary["nprs_followup"].mean()
    pooled = _pooled_mean(impute_followup(summary, m=20, seed=9))
    assert abs(pooled.estimate - latent) < abs(complete_case - latent)
    assert abs(pooled.estimate - latent) < 0.25
    assert complete_case < pooled.estimate


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": -1},
        {"seed": 1.5},
        {"seed": 1, "m": 0},
        {"seed": 1, "delta": float("nan")},
        {"seed": 1, "outcome": "nope"},
        {"seed": 1, "predictors": ("nprs_baseline", "nprs_followup")},
        {"seed": 1, "predictors": ("sex",)},
        {"seed": 1, "outcome": "adherence_guided"},
        {"seed": 1, "integer_scale": "yes"},
    ],
)
def test_impute_rejects_bad_arguments(summary, kwargs):
    with pytest.raises(ConfigError):
        impute_followup(summary, **kwargs)


def test_impute_rejects_an_imputed_copy(summary):
    copy = impute_followup(summary, m=1, seed=1)[0]
    with pytest.raises(ConfigError, match="imputed"):
        impute_followup(copy, seed=1)


# ------------------------------------------------------------------------------------------
# mi_responders
# ------------------------------------------------------------------------------------------


def test_mi_responders_without_missing_equals_complete_case(completers):
    table = mi_responders(completers, m=3, seed=1).table
    flags = pt.flag_responders(completers, analysis="completers")
    expected = pt.responder_table(flags).table
    assert table.loc[0, "group"] == "all"
    assert table.loc[0, "estimate"] == pytest.approx(expected.loc[0, "proportion"])
    assert table.loc[0, "n"] == expected.loc[0, "n"]
    assert table.loc[0, "n_imputed"] == 0
    assert table.loc[0, "fraction_missing_info"] == 0
    assert table.loc[0, "analysis"] == "multiple imputation (MAR)"
    assert table.loc[0, "definition"] == expected.loc[0, "definition"]


def test_mi_responders_counts_everyone(summary):
    result = mi_responders(summary, m=10, seed=2, by="attendance_band")
    table = result.table
    assert result.n == len(summary)
    n_missing = summary["nprs_followup"].isna().sum()
    assert result.notes == [
        f"{n_missing} of {len(summary)} patients' nprs_followup imputed 10 times (multiple "
        "imputation (MAR))."
    ]
    assert list(table.columns[:2]) == ["attendance_band", "group"]
    assert table["n"].sum() == len(summary)
    assert table["n_imputed"].sum() == summary["nprs_followup"].isna().sum()
    assert (table["ci_low"] < table["estimate"]).all()
    assert (table["estimate"] < table["ci_high"]).all()
    assert table["estimate"].is_monotonic_increasing  # low < medium < high adherence
    assert ((table["fraction_missing_info"] > 0) & (table["fraction_missing_info"] < 1)).all()
    overall = mi_responders(summary, m=10, seed=2).table
    completers = pt.responder_table(pt.flag_responders(summary, analysis="completers")).table
    itt = pt.responder_table(pt.flag_responders(summary, analysis="itt")).table
    # Imputation sits between "missing = non-responder" and "missing = like completers".
    assert itt.loc[0, "proportion"] < overall.loc[0, "estimate"] < completers.loc[0, "proportion"]
    worse = mi_responders(summary, m=10, seed=2, delta=2.0).table
    assert worse.loc[0, "estimate"] < overall.loc[0, "estimate"]
    assert worse.loc[0, "analysis"] == "multiple imputation (MNAR delta=2)"


def test_mi_responders_other_timepoints_and_groupings(summary):
    guided = mi_responders(
        summary, m=3, seed=1, timepoint="end_guided", by=["sex", "dropout"]
    ).table
    assert guided["n"].sum() == len(summary)
    assert guided["n_imputed"].sum() == summary["nprs_end_guided"].isna().sum()
    assert guided["group"].str.contains(", ").all()
    odi = mi_responders(
        summary, m=3, seed=1, instrument="odi", preset="immpact", level="moderate"
    ).table
    assert odi.loc[0, "definition"] == "ODI improvement >= 30% (IMMPACT moderate)"
    assert 0 < odi.loc[0, "estimate"] < 1


def test_mi_responders_is_deterministic(summary):
    a = mi_responders(summary, m=5, seed=11).table
    pd.testing.assert_frame_equal(a, mi_responders(summary, m=5, seed=11).table)
    assert a.loc[0, "estimate"] != mi_responders(summary, m=5, seed=12).table.loc[0, "estimate"]


@pytest.mark.parametrize(
    "kwargs",
    [{"m": 1}, {"by": "nope"}, {"timepoint": "week3"}, {"instrument": "vas"}, {"lvl": "x"}],
)
def test_mi_responders_rejects_bad_arguments(summary, kwargs):
    with pytest.raises(ConfigError):
        mi_responders(summary, seed=1, **kwargs)


# ------------------------------------------------------------------------------------------
# tipping_point
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tipping(summary):
    return tipping_point(summary, deltas=(-10, -8, -6, -4, -2, 0, 1, 2, 3), m=10, seed=4).table


def test_tipping_point_direction(summary, tipping):
    # Derivation: adding delta to the imputed scores changes the OLS adherence coefficient by
    # delta times the adherence coefficient of the missingness indicator regressed on the same
    # covariates (before rounding/clipping). Missing follow-up is concentrated in low-adherence
    # patients, so that coefficient is negative and the estimate falls as delta rises.
    indicator = summary.assign(missing=summary["nprs_followup"].isna().astype(float))
    gamma = smf.ols("missing ~ adherence + nprs_baseline + age", indicator).fit()
    assert gamma.params["adherence"] < 0
    assert tipping["estimate"].is_monotonic_decreasing
    assert (tipping["estimate"].diff().dropna() < 0).all()
    assert list(tipping.columns) == [
        "delta",
        "estimate",
        "std_error",
        "ci_low",
        "ci_high",
        "p_value",
        "significant",
        "df",
        "fraction_missing_info",
        "n",
        "m",
        "tipping_delta",
    ]


def test_tipping_delta_reported(tipping):
    # Positive deltas only strengthen the (negative) association; it vanishes for a large
    # negative delta (missing patients doing much better than MAR predicts). Measured: -8.
    tip = tipping.attrs["tipping_delta"]
    assert tip is not None and tip < -4
    assert (tipping["tipping_delta"] == tip).all()
    row = tipping.set_index("delta").loc[tip]
    assert row["ci_low"] <= 0 <= row["ci_high"] and not row["significant"]
    closer = tipping[tipping["delta"].abs() < abs(tip)]
    assert closer["significant"].all()
    assert (tipping["significant"] == (tipping["p_value"] < 0.05)).all()


def test_no_tipping_for_positive_deltas(summary):
    result = tipping_point(summary, deltas=(0, 1.5, 3.0), m=5, seed=4)
    out = result.table
    assert result.tipping_delta is None and result.n == out["n"].iloc[0]
    assert "no delta in the grid" in result.notes[0]
    assert out.attrs["tipping_delta"] is None
    assert out["tipping_delta"].isna().all()
    assert out["significant"].all()


def test_tipping_delta_zero_is_the_mar_fit(summary, tipping):
    copies = impute_followup(summary, m=10, seed=4)
    coefs, variances = [], []
    for copy in copies:
        fit = smf.ols("I(nprs_followup - nprs_baseline) ~ adherence + nprs_baseline + age", copy)
        res = fit.fit()
        coefs.append(res.params["adherence"] / 10)
        variances.append((res.bse["adherence"] / 10) ** 2)
        df_resid = res.df_resid
    pooled = rubin(coefs, variances, df_complete=df_resid)
    row = tipping.set_index("delta").loc[0]
    for key in ("estimate", "std_error", "ci_low", "ci_high", "p_value"):
        assert row[key] == pytest.approx(getattr(pooled, key), rel=1e-9)
    assert row["n"] == len(summary)


def test_tipping_point_is_deterministic(summary):
    a = tipping_point(summary, deltas=(0, 1), m=3, seed=6).table
    pd.testing.assert_frame_equal(a, tipping_point(summary, deltas=(0, 1), m=3, seed=6).table)
    other = tipping_point(summary, deltas=(0,), m=3, seed=7).table
    assert a["estimate"].iloc[0] != other["estimate"][0]


@pytest.mark.parametrize(
    "kwargs", [{"deltas": ()}, {"deltas": (0, 0)}, {"deltas": "0"}, {"m": 1}, {"alpha": 0}]
)
def test_tipping_point_rejects_bad_arguments(summary, kwargs):
    with pytest.raises(ConfigError):
        tipping_point(summary, seed=1, **kwargs)


def test_results_follow_the_protocol(summary):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from ptanalytics.models._result import ModelResult

    pooled = rubin([10, 12, 11, 13, 14], [3, 4, 5, 4, 4], term="mean", n=40)
    assert list(pooled.table.columns[:6]) == [
        "term",
        "estimate",
        "std_error",
        "ci_low",
        "ci_high",
        "p_value",
    ]
    assert pooled.table.loc[0, "term"] == "mean"
    assert pooled.table.loc[0, "lambda"] == pytest.approx(3 / 7)
    assert pooled.n == 40 and pooled.notes == []
    assert rubin([2.0, 2.0], [1.0, 1.0]).notes == [
        "the 2 estimates agree exactly: no between-imputation variance."
    ]
    results = [
        pooled,
        mi_responders(summary, m=2, seed=1, by="sex"),
        tipping_point(summary, deltas=(-8, 0), m=2, seed=1),
    ]
    for result in results:
        assert isinstance(result, ModelResult)
        fig = result.figure()
        assert isinstance(fig, Figure)
        plt.close(fig)
