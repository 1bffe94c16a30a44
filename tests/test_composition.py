"""Exercise mix: zero replacement for any pattern of zeros, and patients with no exercise time.

Known answers are computed by hand in the comments (multiplicative replacement: each zero becomes
delta_r = min(delta, p / (1 + z p)), the non-zero parts are multiplied by 1 - z delta_r; p = the
row's smallest non-zero share, z = its number of zeros).
"""

import numpy as np
import pandas as pd
import pytest

import ptanalytics as pt
from ptanalytics.metrics.composition import has_composition, ilr, replace_zeros
from ptanalytics.models import outcomes as om
from ptanalytics.models.trajectory import fit_pain_model, pain_model_frame

SHARES = [f"share_{c}" for c in pt.CATEGORIES]


def _frame(rows):
    return pd.DataFrame(rows, columns=SHARES, dtype=float)


def test_two_parts_and_three_zeros():
    # zeros -> 0.01; 0.5 * (1 - 3 * 0.01) = 0.485
    out = replace_zeros(_frame([[0.5, 0.5, 0, 0, 0]]), delta=0.01)
    np.testing.assert_allclose(out.iloc[0], [0.485, 0.485, 0.01, 0.01, 0.01], rtol=1e-14)


def test_minutes_are_closed_first():
    # 30 and 10 minutes -> 0.75, 0.25; delta_r = min(0.05, 0.25 / 1.75) = 0.05;
    # 0.75 * 0.85 = 0.6375, 0.25 * 0.85 = 0.2125
    out = replace_zeros(_frame([[30, 10, 0, 0, 0]]), delta=0.05)
    np.testing.assert_allclose(out.iloc[0], [0.6375, 0.2125, 0.05, 0.05, 0.05], rtol=1e-14)


def test_all_zeros_but_one_with_a_large_delta_stays_positive():
    # delta = 0.3 would leave 1 - 4 * 0.3 = -0.2 for the only part; delta_r = 1 / (1 + 4) = 0.2
    out = replace_zeros(_frame([[1, 0, 0, 0, 0]]), delta=0.3)
    np.testing.assert_allclose(out.iloc[0], [0.2] * 5, rtol=1e-14)
    # delta = 0.1 is below the cap: 1 - 4 * 0.1 = 0.6
    out = replace_zeros(_frame([[1, 0, 0, 0, 0]]), delta=0.1)
    np.testing.assert_allclose(out.iloc[0], [0.6, 0.1, 0.1, 0.1, 0.1], rtol=1e-14)


def test_default_delta_on_a_one_patient_cohort():
    # The only positive share is 1, so the default delta is 0.65 and the cap (0.2) applies.
    out = replace_zeros(_frame([[0, 0, 1, 0, 0]]))
    assert (out.to_numpy() > 0).all()
    assert out.sum(axis=1).iloc[0] == pytest.approx(1.0, abs=1e-15)


def test_tiny_shares():
    # Default delta 0.65e-12; the cap 1e-12 / (1 + 3e-12) is above it.
    out = replace_zeros(_frame([[1e-12, 1 - 1e-12, 0, 0, 0]]))
    assert out.iloc[0, 2] == pytest.approx(0.65e-12, rel=1e-12)
    assert out.iloc[0, 0] == pytest.approx(1e-12 * (1 - 3 * 0.65e-12), rel=1e-12)
    assert np.isfinite(ilr(out).to_numpy()).all()


def test_any_pattern_of_zeros_gives_positive_parts_summing_to_one(rng):
    x = rng.dirichlet(np.full(5, 0.3), 2000)
    x[rng.random(x.shape) < 0.5] = 0.0
    x[x.sum(axis=1) == 0, rng.integers(0, 5)] = 1.0  # every row has some exercise time
    x[:50] *= 1e-9  # unclosed rows with tiny totals
    frame = _frame(x)
    for delta in (None, 1e-6, 0.01, 0.2, 0.6, 0.999):
        out = replace_zeros(frame, delta=delta).to_numpy()
        assert (out > 0).all(), delta
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=0, atol=1e-12)
        # The ratios of the non-zero parts are kept.
        i = np.flatnonzero((x > 0).sum(axis=1) >= 2)[0]
        a, b = np.flatnonzero(x[i] > 0)[:2]
        assert out[i, a] / out[i, b] == pytest.approx(x[i, a] / x[i, b], rel=1e-12)
        assert np.isfinite(ilr(pd.DataFrame(out)).to_numpy()).all()


def test_no_exercise_time_gives_missing_coordinates_never_negative_parts():
    frame = _frame([[0, 0, 0, 0, 0], [np.nan] * 5, [0.5, np.nan, 0.5, 0, 0], [0.2] * 5])
    out = replace_zeros(frame)
    assert out.iloc[:3].isna().all().all()
    np.testing.assert_allclose(out.iloc[3], [0.2] * 5)
    coords = ilr(out)
    assert coords.iloc[:3].isna().all().all()
    np.testing.assert_allclose(coords.iloc[3], 0.0, atol=1e-15)
    assert has_composition(frame).tolist() == [False, False, False, True]


def test_ilr_known_value():
    # ilr_1 = sqrt(4/5) ln(0.6 / 0.1); the other coordinates contrast equal parts: 0
    coords = ilr(_frame([[0.6, 0.1, 0.1, 0.1, 0.1]]))
    np.testing.assert_allclose(coords.iloc[0], [np.sqrt(0.8) * np.log(6), 0, 0, 0], atol=1e-15)


def test_bad_input_is_refused():
    with pytest.raises(pt.ConfigError, match=r"delta=1\.5; expected a share strictly between"):
        replace_zeros(_frame([[1, 0, 0, 0, 0]]), delta=1.5)
    with pytest.raises(pt.ConfigError, match="shares has negative values"):
        replace_zeros(_frame([[1.2, -0.2, 0, 0, 0]]))


def _mix_summary(rng, n=200):
    shares = rng.dirichlet(np.ones(5), n)
    shares[rng.random(shares.shape) < 0.3] = 0.0
    shares[shares.sum(axis=1) == 0, 0] = 1.0
    s = pd.DataFrame(shares / shares.sum(axis=1, keepdims=True), columns=SHARES)
    s["patient_id"] = [f"P{i:03d}" for i in range(n)]
    z = ilr(replace_zeros(s[SHARES]))
    s["nprs_change_end_guided"] = 1.5 * z["ilr_1"] + rng.normal(0, 0.1, n)
    return s


def test_substitution_leaves_out_patients_with_no_exercise_time(rng):
    s = _mix_summary(rng)
    full = om.category_substitution(s, pairs=[("flexibility", "core_strengthening")], covariates=())
    assert full.table.loc[0, "n_no_exercise_time"] == 0
    empty = pd.DataFrame({c: [0.0, np.nan] for c in SHARES})
    empty["patient_id"] = ["Z1", "Z2"]
    empty["nprs_change_end_guided"] = [-1.0, -2.0]
    both = pd.concat([s, empty], ignore_index=True)
    sub = om.category_substitution(
        both, pairs=[("flexibility", "core_strengthening")], covariates=()
    )
    assert sub.table.loc[0, "n_no_exercise_time"] == 2
    assert sub.n_no_exercise_time == 2 and sub.n == len(s)
    assert "2 patient(s) with no exercise time" in sub.notes[0]
    # The same estimate as without those two rows: they are left out, nothing else changes.
    assert sub.table.loc[0, "estimate"] == pytest.approx(full.table.loc[0, "estimate"], rel=1e-12)
    assert np.isfinite(sub.table.loc[0, ["estimate", "std_error"]].astype(float)).all()


def test_substitution_with_nobody_exercising_is_a_clear_error():
    s = pd.DataFrame({c: [0.0, 0.0] for c in SHARES})
    s["nprs_change_end_guided"] = [-1.0, 0.0]
    with pytest.raises(pt.ConfigError, match="no patient with nprs_change_end_guided has exercise"):
        om.category_substitution(s, covariates=())


def test_pain_model_leaves_out_patients_with_no_exercise_time():
    cohort = pt.simulate_cohort(120, seed=5)
    idle = cohort.patients["patient_id"].iloc[:3].tolist()
    sessions = cohort.sessions[~cohort.sessions["patient_id"].isin(idle)]
    cohort = pt.Cohort(
        patients=cohort.patients,
        prescriptions=cohort.prescriptions,
        sessions=sessions,
        outcomes=cohort.outcomes,
        cointerventions=cohort.cointerventions,
    )
    # The three made idle and any simulated patient who never exercised (with NPRS scores).
    nprs = cohort.outcomes.loc[cohort.outcomes["instrument"] == "NPRS", "patient_id"].unique()
    expected = len(set(nprs) - set(sessions["patient_id"]))
    assert expected >= 3
    frame = pain_model_frame(cohort)
    assert frame.attrs["n_no_exercise_time"] == expected
    assert not frame["patient_id"].isin(idle).any()
    assert frame[[f"ilr_{k}" for k in range(1, 5)]].notna().all().all()
    model = fit_pain_model(frame=frame)
    assert any(f"{expected} patient(s) with no exercise time" in n for n in model.notes)


def test_no_exercise_time_names_the_patients_the_substitution_model_leaves_out():
    """The report registers this set in its disclosure control, so it must be exactly the
    patients the model counts in n_no_exercise_time."""
    import ptanalytics as pt
    from ptanalytics.models.outcomes import category_substitution, no_exercise_time

    summary = pt.patient_summary(pt.simulate_cohort(120, seed=21))
    shares = [c for c in summary if c.startswith("share_")]
    chosen = summary.index[::9]
    summary.loc[chosen, shares] = 0.0
    ids = no_exercise_time(summary)
    result = category_substitution(summary)
    assert len(ids) == result.n_no_exercise_time > 0
    used = ["nprs_change_end_guided", "adherence", "nprs_baseline", "age", "sex", "chronicity"]
    complete = summary.loc[chosen].dropna(subset=used)
    assert set(complete["patient_id"]) <= set(ids)  # every emptied patient the model would use
    with_time = summary.loc[summary[shares].fillna(0).sum(axis=1) > 0, "patient_id"]
    assert not set(ids) & set(with_time)  # nobody with exercise time is counted
