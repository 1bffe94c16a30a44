import json
from pathlib import Path

import pytest

import ptanalytics as pt
from ptanalytics.simulate.config import SimulationConfig, load_config, parameters_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_valid_and_hash_is_stable():
    a, b = SimulationConfig(), SimulationConfig()
    assert a == b and a.sha256() == b.sha256()
    assert SimulationConfig(horizon_weeks=12).sha256() != a.sha256()
    assert 0 < a.latent_nprs_sd < a.nprs_baseline_sd
    # All weeks 1-8 guided: the closed form. Shorter programs put maintenance weeks (lower
    # hazard) before week 8, so the guided hazard must be higher to reach the same share.
    long = SimulationConfig(guided_weeks_mix={12: 1.0})
    assert long.weekly_dropout_hazard == pytest.approx(1 - (1 - 0.27) ** (1 / 8))
    assert a.weekly_dropout_hazard > long.weekly_dropout_hazard


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"horizon_weeks": 0}, r"horizon_weeks=0 is out of range; allowed: 1 to 260"),
        ({"horizon_weeks": 8.5}, r"horizon_weeks=8\.5 must be a whole number; allowed: 1 to 260"),
        ({"adherence_mean": 1.2}, r"adherence_mean=1\.2 is out of range; allowed: 0 to 1"),
        ({"dropout_by_week8": "lots"}, r"dropout_by_week8='lots' is not a number"),
        ({"measurement_sd": float("nan")}, r"measurement_sd=nan is out of range"),
        (
            {"trajectory_shares": {"declining": 0.5, "stable": 0.5, "increasing": 0.5}},
            r"trajectory_shares shares sum to 1\.5; allowed: shares that sum to 1",
        ),
        (
            {"trajectory_shares": {"declining": 0.5, "stable": 0.5}},
            r"trajectory_shares lacks key\(s\) increasing",
        ),
        ({"category_effectiveness": {"yoga": 1}}, r"category_effectiveness has unknown key 'yoga'"),
        (
            {
                "cointervention_probability": {
                    "heat_cold": 2,
                    "massage": 0,
                    "manual_therapy": 0,
                    "acupuncture": 0,
                    "epidural_injection": 0,
                    "analgesic": 0,
                }
            },
            r"cointervention_probability\['heat_cold'\]=2 is out of range; allowed: 0 to 1",
        ),
        ({"guided_weeks_mix": {"eight": 1.0}}, r"guided_weeks_mix key 'eight' is not a whole"),
        ({"guided_weeks_mix": {}}, r"guided_weeks_mix is empty"),
        ({"age_min": 60, "age_max": 40}, r"age_min=60 is above age_max=40"),
        ({"guided_supervised_per_week": 5, "guided_home_per_week": 3}, r"at most 7 sessions"),
        ({"start_date": "2024-13-01"}, r"start_date='2024-13-01' is not an ISO date"),
        (
            {"horizon_wekks": 12},
            r"unknown simulation parameter 'horizon_wekks'\. Did you mean "
            r"horizon_weeks",
        ),
    ],
)
def test_bad_config_names_parameter_and_allowed_range(overrides, message):
    with pytest.raises(pt.ConfigError, match=message):
        pt.simulate_cohort(5, seed=1, **overrides)


def test_bad_n_and_seed():
    with pytest.raises(pt.ConfigError, match=r"n_patients=0; allowed: a whole number >= 1"):
        pt.simulate_cohort(0, seed=1)
    with pytest.raises(pt.ConfigError, match=r"seed=-1; allowed: a whole number >= 0"):
        pt.simulate_cohort(3, seed=-1)
    with pytest.raises(pt.ConfigError, match=r"seed=1\.5"):
        pt.simulate_cohort(3, seed=1.5)


def test_config_files(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('horizon_weeks = 12\n[guided_weeks_mix]\n"6" = 0.5\n"8" = 0.5\n')
    cfg = load_config(toml)
    assert cfg.horizon_weeks == 12 and cfg.guided_weeks_mix == {6: 0.5, 8: 0.5}
    js = tmp_path / "c.json"
    js.write_text(json.dumps(cfg.to_dict()))
    assert load_config(js) == cfg
    bad = tmp_path / "bad.toml"
    bad.write_text("horizon_weeks = 0\n")
    with pytest.raises(pt.ConfigError, match=r"bad\.toml: horizon_weeks=0 is out of range"):
        load_config(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("horizon_weeks = \n")
    with pytest.raises(pt.ConfigError, match=r"broken\.toml: not valid TOML"):
        load_config(broken)
    with pytest.raises(pt.ConfigError, match=r"missing\.toml: cannot read the config file"):
        load_config(tmp_path / "missing.toml")


def test_simulator_doc_lists_every_parameter():
    doc = (ROOT / "docs" / "simulator.md").read_text(encoding="utf-8")
    assert parameters_markdown() in doc, (
        "docs/simulator.md parameter table is stale: run 'make docs'"
    )
