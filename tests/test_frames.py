"""Analysis frames: a hand-computed two-patient cohort, properties, truth recovery."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ptanalytics as pt
from ptanalytics.ingestion.pipeline import ingest
from ptanalytics.metrics import patient_summary, patient_weeks
from ptanalytics.metrics.composition import ilr, ilr_inverse, replace_zeros

D = pd.Timestamp


@pytest.fixture
def tiny():
    """A: adherent, two NPRS in week 2; B: one session then nothing (a dropout)."""
    patients = pd.DataFrame(
        {
            "patient_id": ["A", "B"],
            "enrolled_on": [D("2024-01-01"), D("2024-01-08")],
            "guided_weeks": [2, 2],
            "followup_weeks": [3, 3],
            "arm": ["x", "y"],
        }
    )
    rx = pd.DataFrame(
        {
            "patient_id": ["A", "A", "A", "B", "B"],
            "phase": ["guided", "guided", "maintenance", "guided", "maintenance"],
            "exercise": ["cat_cow", "hamstring_stretch", "cat_cow", "cat_cow", "cat_cow"],
            "category": ["flexibility"] * 5,
            "sessions_per_week": [2, 2, 1, 2, 1],
            "supervised_per_week": [1, 1, 0, 1, 0],
            "sets": [1, 1, 1, 1, 1],
            "start_on": [
                D("2024-01-01"),
                D("2024-01-01"),
                D("2024-01-15"),
                D("2024-01-08"),
                D("2024-01-22"),
            ],
            "end_on": [
                D("2024-01-14"),
                D("2024-01-14"),
                D("2024-01-21"),
                D("2024-01-21"),
                D("2024-01-28"),
            ],
        }
    )
    sessions = pd.DataFrame(
        {
            "patient_id": ["A", "A", "A", "A", "A", "B"],
            "performed_on": [
                D("2024-01-01"),
                D("2024-01-03"),
                D("2024-01-03"),
                D("2024-01-09"),
                D("2024-01-16"),
                D("2024-01-08"),
            ],
            "phase": ["guided"] * 4 + ["maintenance", "guided"],
            "exercise": [
                "cat_cow",
                "cat_cow",
                "hamstring_stretch",
                "cat_cow",
                "cat_cow",
                "curl_up",
            ],
            "category": ["flexibility"] * 5 + ["core_strengthening"],
            "supervised": [True, False, False, True, False, True],
            "sets": [1, 1, 1, 1, 1, 3],
            "reps": [20, 20, 3, 20, 20, 6],
            "hold_s": [0, 0, 30, 0, 0, 8],
            "duration_min": [1.5, 1.5, 3.5, 1.5, 1.5, 5.0],
        }
    )
    outcomes = pd.DataFrame(
        {
            "patient_id": ["A", "A", "A", "A", "A", "B", "B"],
            "assessed_on": [
                D("2024-01-01"),
                D("2024-01-15"),
                D("2024-01-17"),
                D("2024-01-22"),
                D("2024-01-01"),
                D("2024-01-08"),
                D("2024-01-08"),
            ],
            "instrument": ["NPRS", "NPRS", "NPRS", "NPRS", "ODI", "NPRS", "ODI"],
            "score": [6.0, 4.0, 3.0, 3.0, 40.0, 8.0, 50.0],
        }
    )
    return pt.Cohort(patients=patients, prescriptions=rx, sessions=sessions, outcomes=outcomes)


def test_patient_weeks_by_hand(tiny):
    pw = patient_weeks(tiny)
    a = pw[pw["patient_id"] == "A"].set_index("week")
    assert list(a.index) == [0, 1, 2, 3]
    assert list(a["phase"]) == ["guided", "guided", "maintenance", "none"]
    assert list(a["sessions_prescribed"]) == [2, 2, 1, 0]
    assert list(a["sessions_completed"]) == [2, 1, 1, 0]  # 01-03 has two exercises: one session
    np.testing.assert_array_equal(a["adherence"], [1.0, 0.5, 1.0, np.nan])
    assert list(a["supervised_sessions"]) == [1, 1, 0, 0]
    assert list(a["home_sessions"]) == [1, 0, 1, 0]
    assert list(a["sets_prescribed"]) == [4, 4, 1, 0]  # two exercises x 2 sessions x 1 set
    assert list(a["sets_completed"]) == [3, 1, 1, 0]
    assert list(a["minutes_flexibility"]) == [6.5, 1.5, 1.5, 0.0]
    assert a.loc[0, "share_flexibility"] == 1.0 and np.isnan(a.loc[3, "share_flexibility"])
    np.testing.assert_array_equal(a["nprs"], [6.0, np.nan, 3.5, 3.0])  # mean of 4 and 3
    assert not a["dropout"].any()
    b = pw[pw["patient_id"] == "B"].set_index("week")
    assert list(b.index) == [0, 1]  # stopped at the dropout week
    assert list(b["dropout"]) == [False, True]
    assert list(b["sessions_completed"]) == [1, 0]
    full = patient_weeks(tiny, truncate_at_dropout=False)
    assert list(full.loc[full["patient_id"] == "B", "week"]) == [0, 1, 2, 3]


def test_patient_summary_by_hand(tiny):
    s = patient_summary(tiny).set_index("patient_id")
    a, b = s.loc["A"], s.loc["B"]
    assert a["arm"] == "x"  # patient attributes come along
    assert (a["sessions_prescribed"], a["sessions_completed"]) == (5, 4)
    assert a["adherence"] == 0.8 and a["attendance_band"] == "high"
    assert a["adherence_guided"] == 0.75 and a["adherence_maintenance"] == 1.0
    assert a["adherence_slope"] == 0 and a["adherence_trajectory"] == "stable"
    assert not a["dropout"] and pd.isna(a["dropout_week"]) and a["last_active_week"] == 2
    assert a["longest_streak"] == 1
    assert a["share_flexibility"] == 1.0 and a["share_aerobic"] == 0.0
    assert (a["nprs_baseline"], a["nprs_end_guided"], a["nprs_followup"]) == (6, 4, 3)
    assert a["nprs_change_followup"] == -3 and a["nprs_pct_change_followup"] == -50
    assert a["odi_baseline"] == 40 and pd.isna(a["odi_followup"])
    assert b["adherence"] == pytest.approx(0.2) and b["attendance_band"] == "low"
    assert b["adherence_slope"] == pytest.approx(-0.25) and b["adherence_trajectory"] == (
        "declining"
    )
    assert b["dropout"] and b["dropout_week"] == 1
    assert b["share_core_strengthening"] == 1.0
    assert pd.isna(b["nprs_followup"]) and pd.isna(b["nprs_change_followup"])


def test_missed_supervised_rule(tiny):
    s = patient_summary(tiny, dropout_rule="missed_supervised", missed_sessions=1)
    s = s.set_index("patient_id")
    assert s.loc["B", "dropout_week"] == 1  # missed the week-1 supervised session
    with pytest.raises(pt.ConfigError, match="dropout_rule='never'"):
        patient_summary(tiny, dropout_rule="never")


def test_window_rule_and_targets(tiny):
    s = patient_summary(tiny, window_days=0).set_index("patient_id")
    assert s.loc["A", "nprs_end_guided"] == 4  # 01-15 is exactly day 14
    s = patient_summary(tiny, followup_week=2, window_days=1).set_index("patient_id")
    assert s.loc["A", "nprs_followup"] == 4  # day 14 is in the window; day 16 (2 days off) is not


def test_inputs_are_not_mutated(tiny):
    before = {k: v.copy() for k, v in tiny.tables.items()}
    patient_weeks(tiny)
    patient_summary(tiny)
    for name, df in tiny.tables.items():
        pd.testing.assert_frame_equal(df, before[name])


def test_outcomes_only_cohort(tmp_path):
    root = pt.__file__.rsplit("/src/", 1)[0]
    ex = f"{root}/examples/ashar2022"
    r = ingest([f"{ex}/Ashar2022_outcomes_demographics.csv"], mapping=f"{ex}/mapping.toml")
    s = patient_summary(r.cohort, followup_week=4)
    assert "adherence" not in s and "dropout" not in s and "share_aerobic" not in s
    assert s["nprs_baseline"].notna().sum() == 152
    pw = patient_weeks(r.cohort)
    assert list(pw.columns) == ["patient_id", "week", "nprs"]
    flags = pt.flag_responders(s, analysis="completers")
    table = pt.responder_table(flags, by="arm").table.set_index("arm")
    assert (
        table.loc["pain_reprocessing_therapy", "proportion"] > table.loc["usual_care", "proportion"]
    )


# ------------------------------------------------------------------------------ properties
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 30),
    seed=st.integers(0, 10_000),
    adherence=st.sampled_from([0.0, 0.4, 0.72, 1.0]),
    horizon=st.integers(2, 20),
)
def test_frame_properties(n, seed, adherence, horizon):
    c = pt.simulate_cohort(
        n,
        seed=seed,
        adherence_mean=adherence,
        horizon_weeks=horizon,
        guided_weeks_mix={6: 0.5, 8: 0.5},
        review_week=2,
    )
    pw = patient_weeks(c, truncate_at_dropout=False)
    assert not pw.duplicated(["patient_id", "week"]).any()
    assert (pw["adherence"].dropna() >= 0).all()
    assert (pw["adherence_capped"].dropna() <= 1).all()
    s = patient_summary(c).set_index("patient_id")
    # Nothing is done after the dropout week.
    dw = pw["patient_id"].map(s["dropout_week"]).astype("float")
    after = pw[dw.notna() & (pw["week"] >= dw)]
    assert (after["sessions_completed"] == 0).all()
    # Responder flags follow the changes.
    f = pt.flag_responders(s.reset_index(), timepoint="followup")
    ok = f["observed"] & ((f["improvement"] >= 2) | (f["improvement_pct"] >= 30))
    assert (f["responder"] == ok).all()
    # Adherence agrees with the simulator's own counts.
    tp = c.truth_patients.set_index("patient_id")
    np.testing.assert_allclose(s["adherence_guided"], tp["adherence_guided"], atol=1e-9)


# ------------------------------------------------------------------------------ truth
def test_dropout_week_recovered_from_the_simulator(large_cohort):
    """Measured on 20,000 simulated patients (docs/metrics.md gives the figures)."""
    s = patient_summary(large_cohort).set_index("patient_id")
    tp = large_cohort.truth_patients.set_index("patient_id")
    true, est = tp["dropout_week"].astype(float), s["dropout_week"].astype(float)
    dropped = true.notna()
    within = (est - true).abs() <= 1
    assert est.notna()[dropped].mean() >= 0.97  # sensitivity
    assert within[dropped].mean() >= 0.85
    regular = dropped & (tp["adherence_propensity"] >= 0.3)
    assert within[regular].mean() >= 0.95


def test_composition_helpers():
    x = pd.DataFrame([[0.2, 0.3, 0.1, 0.1, 0.3], [0.5, 0.0, 0.5, 0.0, 0.0]])
    r = replace_zeros(x)
    np.testing.assert_allclose(r.sum(axis=1), 1)
    assert r.iloc[1, 1] == pytest.approx(0.65 * 0.1)
    assert r.iloc[1, 0] / r.iloc[1, 2] == pytest.approx(1.0)  # ratios of non-zero parts kept
    z = ilr(r)
    np.testing.assert_allclose(ilr_inverse(z, parts=list(x.columns)), r)
    # Pivot coordinate 1: sqrt(4/5) * ln(x1 / gmean(x2..x5)).
    expect = np.sqrt(4 / 5) * np.log(0.2 / np.exp(np.mean(np.log([0.3, 0.1, 0.1, 0.3]))))
    assert z.iloc[0, 0] == pytest.approx(expect)


def test_a_grid_built_once_gives_the_same_frames_and_a_foreign_grid_is_refused():
    """The report builds the patient x week grid once and passes it on (``grid=``)."""
    import pandas.testing as pdt

    from ptanalytics.exceptions import ConfigError
    from ptanalytics.metrics.weeks import week_grid
    from ptanalytics.models.trajectory import pain_model_frame

    cohort = pt.simulate_cohort(80, seed=4)
    grid = week_grid(cohort)
    pdt.assert_frame_equal(pt.patient_weeks(cohort, grid=grid), pt.patient_weeks(cohort))
    pdt.assert_frame_equal(
        pt.patient_weeks(cohort, grid=grid, truncate_at_dropout=False),
        pt.patient_weeks(cohort, truncate_at_dropout=False),
    )
    summary = pt.patient_summary(cohort, grid=grid)
    pdt.assert_frame_equal(summary, pt.patient_summary(cohort))
    pdt.assert_frame_equal(
        pain_model_frame(cohort, summary=summary, grid=grid), pain_model_frame(cohort)
    )
    other = pt.simulate_cohort(80, seed=5)
    with pytest.raises(ConfigError, match="another cohort"):
        pt.patient_weeks(other, grid=grid)
    with pytest.raises(ConfigError, match="min_exercises=2"):
        pt.patient_summary(cohort, grid=grid, min_exercises=2)
    with pytest.raises(ConfigError, match="WeekGrid"):
        pt.patient_weeks(cohort, grid=summary)


def test_patient_weeks_columns_subset_is_the_same_values_and_unknown_names_are_refused():
    from ptanalytics.exceptions import ConfigError

    cohort = pt.simulate_cohort(60, seed=8)
    full = pt.patient_weeks(cohort, truncate_at_dropout=False)
    some = pt.patient_weeks(
        cohort, truncate_at_dropout=False, columns=["adherence_capped", "share_core_strengthening"]
    )
    pd.testing.assert_frame_equal(
        some, full[["patient_id", "week", "adherence_capped", "share_core_strengthening"]]
    )
    with pytest.raises(ConfigError, match="adherance"):
        pt.patient_weeks(cohort, columns=["adherance"])
