"""The simulator's causal structure: adherence fed back from pain, regime truths by common random
numbers and the randomised designs (home-only guided phase, planned length)."""

import numpy as np
import pandas as pd
import pytest

import ptanalytics as pt
from ptanalytics.exceptions import ConfigError
from ptanalytics.simulate import scenario_config


def _effects(cohort) -> dict:
    return {e["term"]: e["value"] for e in cohort.truth["effects"]}


def _weekly_attendance_and_change(cohort) -> pd.DataFrame:
    """Per patient and guided week 1-7 with its NPRS recorded: sessions done that week and the
    recorded NPRS change since baseline at the assessment opening it."""
    nprs = cohort.outcomes[cohort.outcomes["instrument"] == "NPRS"].merge(
        cohort.patients[["patient_id", "enrolled_on"]]
    )
    nprs["week"] = (nprs["assessed_on"] - nprs["enrolled_on"]).dt.days // 7
    base = nprs[nprs["week"] == 0].set_index("patient_id")["score"]
    nprs["change"] = nprs["score"] - nprs["patient_id"].map(base)
    days = cohort.sessions.drop_duplicates(["patient_id", "performed_on"]).merge(
        cohort.patients[["patient_id", "enrolled_on"]]
    )
    days["week"] = (days["performed_on"] - days["enrolled_on"]).dt.days // 7
    done = days.groupby(["patient_id", "week"]).size().rename("sessions").reset_index()
    rows = nprs[(nprs["week"] >= 1) & (nprs["week"] <= 7)][["patient_id", "week", "change"]]
    rows = rows.merge(done, how="left").fillna({"sessions": 0})
    return rows


def test_adherence_responds_to_reported_pain_change():
    """Where exercise does nothing (the null scenario) sessions and pain change are linked only
    through the feedback: none without it, fewer sessions with worse pain with it."""
    slopes = {}
    for c in (0.0, -0.5):
        cohort = pt.simulate_cohort(
            3000, seed=5, config=scenario_config("null_adherence", adherence_per_nprs_change=c)
        )
        rows = _weekly_attendance_and_change(cohort)
        slopes[c] = np.polyfit(rows["change"], rows["sessions"], 1)[0]
    assert abs(slopes[0.0]) < 0.03
    assert slopes[-0.5] < -0.15


def test_feedback_defaults_are_non_zero_and_documented():
    cfg = pt.SimulationConfig()
    assert cfg.adherence_per_nprs_change < 0 and cfg.adherence_per_weekly_nprs_change < 0
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "simulator.md").read_text()
    assert "adherence_per_nprs_change" in doc and "adherence_per_weekly_nprs_change" in doc


def test_regime_truths_by_common_random_numbers():
    cohort = pt.simulate_cohort(2000, seed=8)
    effects = _effects(cohort)
    full = effects["regime[adherence_all_vs_none][followup]"]
    assert full > effects["adherence_full_vs_none[followup]"]  # the 0-10 scale compresses it
    kept = effects["regime[adherence_kept_at_0.8_vs_own][followup]"]
    shift = effects["regime[adherence_plus_0.10_vs_own][followup]"]
    make_up = effects["regime[adherence_make_up_0.25_vs_own][followup]"]
    # More exercise, less pain, and a partial regime moves pain less than all against none.
    assert full < kept < 0 and full < shift < 0 and full < make_up < 0
    assert "regime[adherence_kept_at_0.8_vs_own][week8]" in effects
    for below in ("0.1", "0.3"):
        value = effects[f"regime[extend_below_{below}_vs_fixed_8][followup]"]
        assert value <= 0  # extending non-responders adds guided sessions
    # Exactly: the same patients and random numbers run under the regime and under their own.
    from ptanalytics.simulate import _model, _truth

    cfg = pt.SimulationConfig()
    rng = np.random.default_rng(3)
    p = _model.draw_patients(500, cfg, rng)
    d = _model.draw_loop(500, cfg, rng)
    co = _model.cointervention_effect(p, cfg)
    own = _model.run(p, d, cfg, co, dropout=False)
    again = _model.run(p, d, cfg, co, dropout=False, adherence_add=0.0)
    np.testing.assert_array_equal(own.pain, again.pain)
    raised = _model.run(p, d, cfg, co, dropout=False, adherence_make_up=0.25)
    # Common random numbers: making up missed sessions never cancels one the patient did.
    assert (raised.attended | ~own.attended)[:, :4].all()
    assert raised.attended.sum() > own.attended.sum()
    terms = {e["term"]: e["value"] for e, _ in _truth.true_effects(p, d, cfg, co)}
    recorded = [_model.nprs_observed(r.pain[:, 26], d.noise[:, 26]) for r in (raised, own)]
    assert terms["regime[adherence_make_up_0.25_vs_own][followup]"] == pytest.approx(
        float(np.mean(recorded[0] - recorded[1]))
    )
    # Kept at 80%: from week 1, nobody opens a week behind without doing all of it.
    kept = _model.run(p, d, cfg, co, dropout=False, adherence_kept_at=0.8)
    _, _, act_g, act_m = _model.slots(cfg)
    for w in range(1, 26):
        guided = w < kept.guided_weeks
        due = np.where(guided[:, None], act_g, act_m)
        so_far = kept.attended[:, :w].sum(axis=(1, 2))
        presc = sum(np.where(v < kept.guided_weeks, act_g.sum(), act_m.sum()) for v in range(w))
        behind = so_far < 0.8 * presc
        assert (kept.attended[behind, w] == due[behind]).all()


def test_regimes_have_no_effect_in_the_null_scenario_and_are_absent_when_adherence_is_fixed():
    null = _effects(pt.simulate_cohort(300, seed=2, config=scenario_config("null_adherence")))
    assert null["regime[adherence_plus_0.10_vs_own][followup]"] == 0.0
    assert null["regime[extend_below_0.3_vs_fixed_8][followup]"] == 0.0
    fixed = _effects(pt.simulate_cohort(50, seed=2, adherence_mean=1.0))
    assert not any(t.startswith("regime[adherence") for t in fixed)
    short = _effects(pt.simulate_cohort(50, seed=2, horizon_weeks=4, review_week=4))
    assert not any(t.startswith("regime[extend") for t in short)


def test_home_only_design():
    plain = pt.simulate_cohort(600, seed=21)
    trial = pt.simulate_cohort(600, seed=21, home_only_share=0.5)
    assert set(trial.patients["arm"]) == {"home_only", "supervised"}
    # Everything drawn before the arm is the same.
    pd.testing.assert_frame_equal(plain.patients, trial.patients.drop(columns=["arm"]))
    home = trial.patients.loc[trial.patients["arm"] == "home_only", "patient_id"]
    sessions = trial.sessions[trial.sessions["patient_id"].isin(home)]
    assert not sessions["supervised"].any()
    others = trial.sessions[~trial.sessions["patient_id"].isin(home)]
    assert others["supervised"].any()
    guided = trial.prescriptions[trial.prescriptions["phase"] == "guided"]
    assert (guided[guided["patient_id"].isin(home)]["supervised_per_week"] == 0).all()
    effects = _effects(trial)
    first = effects["home_only_first_stage[adherence]"]
    assert first < 0  # without the supervised sessions' bonus, fewer sessions
    assert effects["complier_effect[adherence][followup]"] == pytest.approx(
        effects["home_only_itt[followup]"] / first
    )


def test_length_design():
    trial = pt.simulate_cohort(600, seed=22, length_trial_share=0.5, length_trial_weeks=12)
    planned = trial.patients.groupby("arm")["guided_weeks"].unique()
    assert list(planned["12_weeks"]) == [12] and list(planned["8_weeks"]) == [8]
    effects = _effects(trial)
    first = effects["length_first_stage[guided_weeks]"]
    assert 0 < first <= 4
    assert effects["complier_effect[guided_weeks][followup]"] == pytest.approx(
        effects["length_itt[followup]"] / first
    )
    actual = pt.patient_summary(trial).groupby("arm")["guided_weeks_actual"].mean()
    assert actual["12_weeks"] > actual["8_weeks"] + 3


def test_one_randomised_design_at_a_time():
    with pytest.raises(ConfigError, match="one randomised design at a time"):
        pt.SimulationConfig(encouragement_share=0.5, home_only_share=0.5)


@pytest.mark.parametrize(
    "design", [{"home_only_share": 0.5}, {"length_trial_share": 0.5}, {"encouragement_share": 0.5}]
)
def test_chunked_trial_truth_is_the_ratio_of_pooled_parts(tmp_path, design):
    pt.simulate_to_disk(tmp_path / "c", 900, seed=4, chunk_patients=300, **design)
    truth = pt.load_cohort(tmp_path / "c").truth
    effects = {e["term"]: e["value"] for e in truth["effects"]}
    (ratio,) = (t for t in effects if t.startswith("complier_effect["))
    (itt,) = (t for t in effects if t.endswith("_itt[followup]"))
    (first,) = (t for t in effects if "_first_stage[" in t)
    assert effects[ratio] == pytest.approx(effects[itt] / effects[first], rel=1e-12)
