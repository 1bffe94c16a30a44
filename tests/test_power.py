"""Power by simulation (issue 16): agreement with analytic power, type-I error, reproducibility
whatever the workers or backend, simulator designs on tiny groups, and hostile designs."""

import math

import numpy as np
import pandas as pd
import pytest

import ptanalytics as pt
from ptanalytics.cli import main
from ptanalytics.exceptions import ConfigError
from ptanalytics.studies.power import (
    PowerResult,
    SimulatorDesign,
    TwoArmSlope,
    load_design,
    power,
)


# ------------------------------------------------------------------------- analytic power
def test_slope_variance_matches_the_closed_form_without_random_effects():
    # With no random effects the GLS slope is OLS: var = sigma^2 / sum (t - mean t)^2.
    d = TwoArmSlope(intercept_sd=0.0, slope_sd=0.0, residual_sd=1.3, weeks=(0, 1, 3, 6))
    t = np.array([0.0, 1, 3, 6])
    assert d.slope_variance() == pytest.approx(1.3**2 / ((t - t.mean()) ** 2).sum(), rel=1e-12)


def test_slope_variance_with_a_random_slope_only_adds_its_variance():
    # Random intercept + independent random slope, all patients on the same weeks: the GLS
    # slope of one patient has variance sigma_b^2 + sigma^2 / Sxx (balanced design).
    d = TwoArmSlope(intercept_sd=1.5, slope_sd=0.2, residual_sd=1.0, weeks=(0, 2, 4, 8))
    t = np.array([0.0, 2, 4, 8])
    expected = 0.2**2 + 1.0 / ((t - t.mean()) ** 2).sum()
    assert d.slope_variance() == pytest.approx(expected, rel=1e-10)


def test_analytic_power_is_alpha_at_no_difference_and_grows_with_n():
    d = TwoArmSlope(slope_difference=0.0)
    assert d.analytic_power(100) == pytest.approx(0.05, abs=1e-12)
    d = TwoArmSlope(slope_difference=-0.15)
    powers = [d.analytic_power(n) for n in (40, 80, 160)]
    assert powers == sorted(powers) and powers[-1] > 0.9


@pytest.fixture(scope="module")
def slope_power():
    design = TwoArmSlope(slope_difference=-0.15)
    return design, power(design, n=[60, 120, 200], replications=500, seed=20261205, workers=2)


def test_simulated_power_agrees_with_analytic_power_within_2_mc_se(slope_power):
    design, res = slope_power
    for row in res.table.itertuples():
        analytic = design.analytic_power(row.n)
        mc_se = math.sqrt(analytic * (1 - analytic) / row.replications)
        assert abs(row.power - analytic) <= 2 * mc_se, (row.n, row.power, analytic, mc_se)
        assert row.failed == 0
    # the estimates are unbiased and their model SEs match their spread
    assert np.allclose(res.table["mean_estimate"], -0.15, atol=0.006)
    ratio = res.table["mean_std_error"] / res.table["sd_estimate"]
    assert ratio.between(0.9, 1.1).all()
    # the analytic SE at the true variances is what the fits report on average
    se = [design.standard_error(n) for n in res.table["n"]]
    assert np.allclose(res.table["mean_std_error"], se, rtol=0.05)


def test_type_one_error_is_alpha_within_2_mc_se():
    res = power(TwoArmSlope(slope_difference=0.0), n=100, replications=2000, seed=7, workers=2)
    row = res.table.iloc[0]
    mc_se = math.sqrt(0.05 * 0.95 / 2000)
    assert abs(row["power"] - 0.05) <= 2 * mc_se, row["power"]


def test_n_for_interpolates_between_the_bracketing_sizes(slope_power):
    design, res = slope_power
    table = pd.DataFrame({"n": [50, 100, 150], "power": [0.5, 0.7, 0.9]})
    fake = PowerResult(table, 150, [], design, 0.05, 1)
    assert fake.n_for(0.8) == pytest.approx(125.0)
    assert fake.n_for(0.5) == 50.0
    assert math.isnan(fake.n_for(0.95))
    with pytest.raises(ConfigError, match="target"):
        fake.n_for(1.5)
    assert 60 < res.n_for(0.8) < 120


# -------------------------------------------------------------------------- reproducibility
def test_same_seed_same_table_whatever_the_workers():
    design = TwoArmSlope(slope_difference=-0.1, weeks=(0, 2, 4, 6, 8))
    one = power(design, n=[40, 80], replications=60, seed=3, workers=1)
    two = power(design, n=[40, 80], replications=60, seed=3, workers=2)
    pd.testing.assert_frame_equal(one.estimates, two.estimates)
    pd.testing.assert_frame_equal(one.table, two.table)
    # a size's replications do not depend on which other sizes are asked
    alone = power(design, n=80, replications=60, seed=3, workers=1)
    pd.testing.assert_frame_equal(
        alone.estimates.reset_index(drop=True),
        one.estimates[one.estimates["n"] == 80].reset_index(drop=True),
    )
    other = power(design, n=[40, 80], replications=60, seed=4, workers=1)
    assert not one.estimates["estimate"].equals(other.estimates["estimate"])


def test_the_dask_backend_gives_the_same_table_on_a_local_cluster():
    distributed = pytest.importorskip("distributed")
    design = TwoArmSlope(slope_difference=-0.1)
    local = power(design, n=[40, 80], replications=50, seed=5, workers=1)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = power(design, n=[40, 80], replications=50, seed=5, backend="dask", client=client)
    pd.testing.assert_frame_equal(local.estimates, on_dask.estimates)


def test_an_unreachable_dask_scheduler_is_a_clean_error():
    pytest.importorskip("distributed")
    from ptanalytics.studies._pool import connect

    with pytest.raises(ConfigError, match=r"no Dask scheduler answered at 'tcp://127\.0\.0\.1:1'"):
        connect("tcp://127.0.0.1:1", timeout="1s")


# ------------------------------------------------------------------------ simulator designs
@pytest.mark.parametrize(
    ("analysis", "parameters"),
    [
        ("slope", {"home_only_share": 0.5}),
        ("followup", {"length_trial_share": 0.5}),
        ("responder", {"length_trial_share": 0.5}),
        ("adherence", {}),
        ("category", {}),
        ("complier", {"encouragement_share": 0.5}),
    ],
)
def test_simulator_designs_run_every_analysis(analysis, parameters):
    design = SimulatorDesign(parameters=parameters, analysis=analysis)
    res = power(design, n=[60, 120], replications=10, seed=1, workers=1)
    assert list(res.table["n"]) == [60, 120]
    assert (res.table["replications"] == 10).all()
    assert res.table["power"].between(0, 1).all()
    assert res.table["mean_estimate"].notna().all()
    assert any(analysis in note or "tested" in note for note in res.notes)


def test_adherence_has_power_under_optimistic_and_not_under_null_adherence():
    # The dose effect exists in the optimistic scenario; under null_adherence adherence is
    # still associated with pain (feedback), so this is an association's power, as the notes say.
    opt = power(SimulatorDesign(analysis="adherence"), n=200, replications=20, seed=2, workers=1)
    assert opt.table["power"].iloc[0] >= 0.9
    assert any("association" in note for note in opt.notes)


def test_a_tiny_arm_counts_failed_fits_and_does_not_crash():
    # 2% randomised to home-only among 20 patients: often nobody is, and the slope cannot be
    # compared; those replications are counted as failed and not rejecting.
    design = SimulatorDesign(parameters={"home_only_share": 0.02}, analysis="slope")
    res = power(design, n=20, replications=10, seed=1, workers=1)
    row = res.table.iloc[0]
    assert row["replications"] == 10 and row["failed"] >= 1
    assert any("did not converge or could not be made" in note for note in res.notes)


# ------------------------------------------------------------------------- hostile designs
@pytest.mark.parametrize(
    ("design", "message"),
    [
        ({"kind": "two_arm_slope", "slope_diff": 0.1}, "unknown two_arm_slope design key"),
        ({"slope_difference": 0.1}, "kind"),
        ({"kind": "two_arm_slope", "weeks": [0, 1]}, "at least 3 distinct"),
        ({"kind": "two_arm_slope", "weeks": "0,1,2"}, "a list of numbers"),
        ({"kind": "two_arm_slope", "residual_sd": 0}, "residual_sd"),
        ({"kind": "two_arm_slope", "correlation": 1.0}, "correlation"),
        ({"kind": "two_arm_slope", "treated_share": 1.0}, "treated_share"),
        ({"kind": "simulator", "analysis": "slope"}, "no randomised design"),
        ({"kind": "simulator", "analysis": "anova"}, "analysis"),
        ({"kind": "simulator", "scenario": "pessimistic"}, "scenario"),
        ({"kind": "simulator", "parameters": {"dropout_by_week8": 2}}, "dropout_by_week8"),
        ({"kind": "simulator", "parameters": "home_only_share=0.5"}, "parameters"),
        ({"kind": "simulator", "analysis": "category", "substitution": ["core"]}, "substitution"),
    ],
)
def test_bad_designs_are_refused_with_a_clear_message(design, message):
    with pytest.raises(ConfigError, match=message):
        power(design, n=100, replications=10, seed=1, workers=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 4}, "n=4"),
        ({"n": [100, 100]}, "each sample size once"),
        ({"n": []}, "n=\\[\\]"),
        ({"n": "100"}, "a list of numbers"),
        ({"n": 100.5}, "whole number"),
        ({"replications": 5}, "replications"),
        ({"alpha": 0}, "alpha"),
        ({"seed": -1}, "seed"),
        ({"backend": "spark"}, "backend"),
        ({"workers": 0}, "workers"),
        ({"client": object()}, "client"),
        ({"analysis": "followup"}, "simulator designs"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    args = {"n": 100, "replications": 10, "seed": 1, "workers": 1, **kwargs}
    with pytest.raises(ConfigError, match=message):
        power(TwoArmSlope(), **args)


def test_design_files_are_read_and_bad_ones_named(tmp_path):
    good = tmp_path / "design.toml"
    good.write_text(
        'kind = "simulator"\nscenario = "null_adherence"\nanalysis = "followup"\n'
        "[parameters]\nlength_trial_share = 0.5\nlength_trial_weeks = 12\n"
    )
    design = load_design(good)
    assert design.config.trial == "length" and design.config.benefit_max == 0.0
    bad = tmp_path / "bad.toml"
    bad.write_text("kind = two_arm_slope\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_design(bad)
    with pytest.raises(ConfigError, match="cannot read the design file"):
        load_design(tmp_path / "missing.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00kind")
    with pytest.raises(ConfigError, match=r"binary\.toml"):
        load_design(binary)


# ------------------------------------------------------------------------------------- CLI
def test_cli_power_writes_its_table_and_curve_and_replaces_only_its_own(tmp_path, capsys):
    design = tmp_path / "d.toml"
    design.write_text('kind = "two_arm_slope"\nslope_difference = -0.15\n')
    out, fig = tmp_path / "power.csv", tmp_path / "power.png"
    args = ["power", "--design", str(design), "--n", "60", "120", "--replications", "20"]
    args += ["--seed", "1", "--workers", "1", "--quiet", "--out", str(out), "--figure", str(fig)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "analytic_power" in printed and "n for power 0.8" in printed
    first = out.read_bytes(), fig.read_bytes()
    assert main(args) == 0  # our own files: replaced, byte for byte the same
    assert (out.read_bytes(), fig.read_bytes()) == first
    table = pd.read_csv(out)
    assert list(table["n"]) == [60, 120] and table["power"].between(0, 1).all()
    foreign = tmp_path / "notes.csv"
    foreign.write_text("my,own,notes\n")
    assert main([*args[:-4], "--out", str(foreign)]) == 2
    assert "is not a ptanalytics power table" in capsys.readouterr().err
    assert foreign.read_text() == "my,own,notes\n"
    assert main([*args[:3], "--n", "60", "--replications", "20", "--seed", "1",
                 "--scheduler", "tcp://nowhere:1"]) == 2  # fmt: skip
    assert "--backend dask" in capsys.readouterr().err


def test_top_level_api():
    assert pt.power is power and pt.TwoArmSlope is TwoArmSlope


# ------------------------------------------------------------- a design from a cohort's data
def _outcomes_only(cohort, keep: float, seed: int):
    """The cohort's patients and a random share of its assessments: irregular visits, no
    sessions, prescriptions or minutes logged."""
    rng = np.random.default_rng(seed)
    outcomes = cohort.outcomes[rng.random(len(cohort.outcomes)) < keep]
    return pt.Cohort(patients=cohort.patients, outcomes=outcomes)


def test_design_from_an_outcomes_only_cohort_with_irregular_visits():
    cohort = _outcomes_only(pt.default_cohort(), keep=0.6, seed=1)
    design = TwoArmSlope.from_cohort(cohort, slope_difference=-0.1)
    assert design.residual_sd > 0 and design.intercept_sd > 0
    assert len(design.weeks) >= 3 and max(design.weeks) <= 8
    assert -1 < design.correlation < 1
    full = TwoArmSlope.from_cohort(pt.default_cohort(), slope_difference=-0.1)
    # the variance components do not depend much on which visits were kept
    assert design.residual_sd == pytest.approx(full.residual_sd, rel=0.1)
    assert design.intercept_sd == pytest.approx(full.intercept_sd, rel=0.1)
    assert 0 < design.analytic_power(200) < 1


def test_design_from_a_tiny_cohort_is_refused():
    cohort = pt.simulate_cohort(6, seed=1)
    with pytest.raises(ConfigError, match="too few to estimate"):
        TwoArmSlope.from_cohort(cohort, slope_difference=-0.1)
